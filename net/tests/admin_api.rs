//! The admin HTTP API (issue 14) against the real binary over real
//! sockets: every operation of `net/openapi.json` is called and its answer
//! checked against the status and schema the document gives it; a follow
//! added through the API copies the master's next open with no other
//! session closed; tokens are checked (every route answers 401 without
//! one) and a token added with the CLI works at once.

mod support;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::{expect_copy, open_event_text, sha256_hex, slave_with_state, temp_directory, Bridge, ACCOUNTS, MASTER_LOGIN, READ_TIMEOUT, SERVER_DEFAULTS, SLAVE2_KEY, SLAVE2_LOGIN, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::protocol::{Ack, CopyAction, ErrorCode, Message};

const TOKEN: &str = "test-admin-token-0123456789";
const NEW_SLAVE: u64 = 300_001;


/// A bridge with `[admin]` on a free loopback port, and the API's address.
fn start() -> (Bridge, PathBuf, String) {
    let directory = temp_directory("admin-api");
    let path = directory.join("tradebridge.toml");
    let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n", directory.join("journal").display());
    for (key, value) in SERVER_DEFAULTS {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text.push_str(&ACCOUNTS.replace("{slave2_follow_extra}", ""));
    text.push_str(&format!("\n[admin]\nlisten = \"127.0.0.1:0\"\nrecent_skips_max = 50\n\n[[admin.token]]\nname = \"ops\"\ntoken_sha256 = \"{}\"\n", sha256_hex(TOKEN)));
    std::fs::write(&path, text).expect("write config");
    let mut bridge = Bridge::start_with_config_file(directory, path.clone());
    let address = loop {
        let line = bridge.read_stdout_line();
        assert!(!line.is_empty(), "the bridge ended before announcing the admin API");
        if let Some(rest) = line.trim().strip_prefix("tradebridge admin API on http://") {
            break rest.strip_suffix("/v1").expect("the announced URL ends in /v1").to_owned();
        }
    };
    (bridge, path, address)
}

/// One HTTP/1.1 request; returns the status, the headers (lower case) and
/// the body as JSON (`Value::Null` when empty or not JSON).
fn request(address: &str, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(address).expect("connect to the admin API");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let body_text = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n", body_text.len());
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body_text.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the response");
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (headers, payload) = response.split_once("\r\n\r\n").expect("a response head");
    let status: u16 = headers.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    let headers = headers.to_ascii_lowercase();
    let payload = if headers.contains("transfer-encoding: chunked") { dechunk(payload) } else { payload.to_owned() };
    (status, headers, serde_json::from_str(&payload).unwrap_or(Value::Null))
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
    out
}

/// The document's schema at `#/components/schemas/<name>`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").expect("local references only");
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks `value` against the JSON Schema subset the document uses: $ref,
/// allOf, type (one or several), enum, required, properties,
/// additionalProperties = false, items. Returns what does not match.
fn mismatches(document: &Value, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    let schema = resolve(document, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            mismatches(document, part, value, at, found);
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(several) => several.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = types.iter().any(|kind| match *kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            found.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            found.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                found.push(format!("{at}: `{name}` is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in object {
            match properties.and_then(|properties| properties.get(name)) {
                Some(property) => mismatches(document, property, field, &format!("{at}.{name}"), found),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => found.push(format!("{at}: `{name}` is not documented")),
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            mismatches(document, items, item, &format!("{at}[{index}]"), found);
        }
    }
}

/// The API under test, with the document it is held to.
struct Api {
    address: String,
    document: Value,
    /// operationId -> (path template, method).
    operations: Vec<(String, String, String)>,
    called: BTreeSet<String>,
}

impl Api {
    fn new(address: String) -> Api {
        let document: Value = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).expect("net/openapi.json")).expect("the document is JSON");
        let mut operations = Vec::new();
        for (template, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let id = operation["operationId"].as_str().expect("every operation has an operationId");
                operations.push((id.to_owned(), template.clone(), method.to_uppercase()));
            }
        }
        Api { address, document, operations, called: BTreeSet::new() }
    }

    /// Calls operation `id` on `path` (its template filled in) and checks
    /// the answer: `expected` status, documented for the operation, with a
    /// body that fits the documented schema. Returns the body.
    fn call(&mut self, id: &str, path: &str, body: Option<Value>, expected: u16) -> Value {
        let (_, template, method) = self.operations.iter().find(|(operation, _, _)| operation == id).unwrap_or_else(|| panic!("{id} is not in the document")).clone();
        let bare = path.split('?').next().unwrap();
        let matches = template.split('/').count() == bare.split('/').count()
            && template.split('/').zip(bare.split('/')).all(|(want, have)| want.starts_with('{') || want == have);
        assert!(matches, "{path} is not an instance of {template}");
        let (status, headers, value) = request(&self.address, &method, path, Some(TOKEN), body.as_ref());
        assert_eq!(status, expected, "{method} {path}: {value}");
        let operation = &self.document["paths"][&template][method.to_lowercase()];
        let response = &operation["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {path} answered {status}, which the document does not give it");
        if let Some(schema) = response.pointer("/content/application~1json/schema") {
            assert!(headers.contains("content-type: application/json"), "{method} {path}: {headers}");
            let mut found = Vec::new();
            mismatches(&self.document, schema, &value, "body", &mut found);
            assert!(found.is_empty(), "{method} {path} ({status}) does not fit its schema: {found:?}\n{value:#}");
        }
        self.called.insert(id.to_owned());
        value
    }
}

fn filled_text(seq: u64, pos: u64, volume: f64) -> String {
    format!(r#"{{"t":"result","seq":{seq},"status":"filled","ticket":{pos},"price":1.08,"volume":{volume},"error":0,"msg":"","exec_ms":1}}"#)
}

fn audit_lines(journal: &Path) -> Vec<Value> {
    std::fs::read_to_string(journal.join("audit.jsonl")).unwrap_or_default().lines().map(|line| serde_json::from_str(line).expect("audit lines are JSON")).collect()
}

#[test]
fn every_documented_operation_answers_as_described_and_an_api_follow_copies_the_next_open() {
    // Shows: each of the document's operations is called, with success and the documented errors, and each answer has a documented status and fits its schema; through the API a slave is added (its key returned once), given a follow at 2x, logs in with that key and gets a copy of the master's next open while every other session stays up; the views show its session, its copy against the master's position, and the skips of a frozen follow; a key rotated with no grace refuses the old key; a disabled slave is closed with 4005; removals answer 404 the second time; no key hash is ever shown; and the audit file names the token for every change.
    let (bridge, _path, address) = start();
    let mut api = Api::new(address);
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);

    let served = api.call("getOpenApi", "/v1/openapi.json", None, 200);
    assert_eq!(served, api.document, "the server serves the document checked in");
    let accounts = api.call("listAccounts", "/v1/accounts", None, 200);
    assert_eq!(accounts["accounts"].as_array().map(Vec::len), Some(3));
    assert!(!accounts.to_string().contains("key_sha256"), "{accounts}");
    let shown = api.call("showAccount", &format!("/v1/accounts/{SLAVE_LOGIN}"), None, 200);
    assert_eq!((shown["connected"].as_bool(), shown["follow_list"][0]["master"].as_u64()), (Some(true), Some(MASTER_LOGIN)));
    api.call("showAccount", "/v1/accounts/999", None, 404);
    api.call("showAccount", "/v1/accounts/abc", None, 400);
    api.call("followerPositions", "/v1/followers/abc/positions", None, 400);

    // A new slave and its follow, through the API.
    let add = json!({ "login": NEW_SLAVE, "role": "slave", "server": "Demo-Broker-A", "platform": "mt5", "limits": ["max_positions=5"] });
    let added = api.call("addAccount", "/v1/accounts", Some(add.clone()), 201);
    let key = added["key"].as_str().expect("the new key").to_owned();
    assert_eq!(added["outcome"]["outcome"], "applied", "{added}");
    api.call("addAccount", "/v1/accounts", Some(add), 409);
    api.call("addAccount", "/v1/accounts", Some(json!({ "login": 300002, "role": "slave", "server": "S", "platform": "mt5", "colour": "red" })), 400);
    api.call("addAccount", "/v1/accounts", Some(json!({ "login": 300002, "role": "slave", "server": "S", "platform": "mt6" })), 422);
    let follow = json!({ "master": MASTER_LOGIN, "slave": NEW_SLAVE, "rules": ["lot = { mode = \"multiplier\", value = 3.0 }"] });
    api.call("addFollow", "/v1/follows", Some(follow.clone()), 201);
    api.call("addFollow", "/v1/follows", Some(follow), 409);
    let bad_rule = api.call("addFollow", "/v1/follows", Some(json!({ "master": MASTER_LOGIN, "slave": SLAVE2_LOGIN + 10, "rules": ["lot = 5"] })), 422);
    assert!(bad_rule["error"].as_str().unwrap().contains("lot"), "{bad_rule}");
    api.call("addFollow", "/v1/follows", Some(json!({ "master": "x" })), 400);
    api.call("addFollow", "/v1/follows", Some(json!({ "master": 1, "slave": 2, "rules": ["x".repeat(70_000)] })), 413);

    let mut slave3 = slave_with_state(&bridge, NEW_SLAVE, &key, 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let copy1 = expect_copy(&mut slave1);
    let _ = expect_copy(&mut slave2);
    let copy3 = expect_copy(&mut slave3);
    assert_eq!((copy3.seq, copy3.pos, copy3.action), (1, 9001, CopyAction::Open));
    assert!((copy3.volume - 3.0 * copy1.volume / 2.0).abs() < 1e-9, "3x the master against slave 1's 2x: {copy3:?} {copy1:?}");
    slave3.send(&filled_text(copy3.seq, copy3.pos, copy3.volume));
    for client in [&mut slave1, &mut slave2, &mut master, &mut slave3] {
        client.expect_alive();
    }

    // The views.
    let follows = api.call("listFollows", &format!("/v1/follows?slave={NEW_SLAVE}"), None, 200);
    assert_eq!(follows["follows"].as_array().map(Vec::len), Some(1), "{follows}");
    api.call("listFollows", "/v1/follows?slave=abc", None, 400);
    let sessions = api.call("listSessions", "/v1/sessions", None, 200);
    let logins: Vec<u64> = sessions["sessions"].as_array().unwrap().iter().filter_map(|row| row["login"].as_u64()).collect();
    assert_eq!(logins, vec![MASTER_LOGIN, SLAVE_LOGIN, SLAVE2_LOGIN, NEW_SLAVE]);
    assert!(sessions["sessions"][3]["remote_address"].as_str().unwrap().starts_with("127.0.0.1:"), "{sessions}");
    let view = api.call("followerPositions", &format!("/v1/followers/{NEW_SLAVE}/positions"), None, 200);
    let row = &view["positions"][0];
    assert_eq!((row["pos"].as_u64(), row["copy_status"].as_str(), row["matches_master"].as_bool()), (Some(9001), Some("open"), Some(true)), "{view}");
    api.call("followerPositions", "/v1/followers/999/positions", None, 404);
    api.call("setFollow", &format!("/v1/follows/{MASTER_LOGIN}/{NEW_SLAVE}"), Some(json!({ "rules": ["mode = \"frozen\""] })), 200);
    api.call("setFollow", &format!("/v1/follows/{MASTER_LOGIN}/999"), Some(json!({ "rules": ["mode = \"frozen\""] })), 404);
    api.call("setFollow", &format!("/v1/follows/{MASTER_LOGIN}/{NEW_SLAVE}"), Some(json!({ "rules": [] })), 422);
    api.call("setFollow", &format!("/v1/follows/{MASTER_LOGIN}/{NEW_SLAVE}"), Some(json!([])), 400);
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9002);
    assert_eq!(expect_copy(&mut slave2).pos, 9002);
    let skips = api.call("recentSkips", &format!("/v1/skips?login={NEW_SLAVE}"), None, 200);
    let skip = &skips["skips"][0];
    assert_eq!((skip["slave"].as_u64(), skip["pos"].as_u64(), skip["reason"].as_str()), (Some(NEW_SLAVE), Some(9002), Some("frozen")), "{skips}");
    assert_eq!(skips["kept_max"].as_u64(), Some(50));
    api.call("recentSkips", "/v1/skips?limit=0", None, 422);
    api.call("recentSkips", "/v1/skips?limit=many", None, 400);
    let view = api.call("followerPositions", &format!("/v1/followers/{NEW_SLAVE}/positions"), None, 200);
    let missing = view["positions"].as_array().unwrap().iter().find(|row| row["pos"] == 9002).expect("the skipped position is listed");
    assert_eq!(missing["matches_master"], false, "{view}");

    // Key rotation with no grace: the session stays, the old key is refused.
    let rotated = api.call("rotateKey", &format!("/v1/accounts/{NEW_SLAVE}/key"), Some(json!({ "grace": "0" })), 200);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    api.call("rotateKey", "/v1/accounts/999/key", Some(json!({})), 404);
    api.call("rotateKey", &format!("/v1/accounts/{NEW_SLAVE}/key"), Some(json!({ "grace": "soon" })), 422);
    api.call("rotateKey", &format!("/v1/accounts/{NEW_SLAVE}/key"), Some(json!({ "grace": 5 })), 400);
    slave3.expect_alive();
    let mut old = bridge.connect();
    old.send(&support::hello_text(&key, NEW_SLAVE, support::SERVER_NAME, "slave", 1));
    old.expect_error(ErrorCode::Unauthorized);
    old.expect_close(4001);

    // Disable closes with 4005; enable lets the new key in.
    api.call("disableAccount", &format!("/v1/accounts/{NEW_SLAVE}/disable"), None, 200);
    match slave3.recv() {
        Message::Error(error) => assert!(error.msg.contains("disabled"), "{error:?}"),
        other => panic!("expected an error before the close, got {other:?}"),
    }
    slave3.expect_close(4005);
    api.call("disableAccount", "/v1/accounts/999/disable", None, 404);
    api.call("enableAccount", &format!("/v1/accounts/{NEW_SLAVE}/enable"), None, 200);
    api.call("enableAccount", "/v1/accounts/999/enable", None, 404);
    let (_again, welcome) = bridge.login_as(NEW_SLAVE, &new_key, "slave", 1);
    assert!(matches!(welcome, Message::Welcome(_)), "{welcome:?}");

    api.call("removeFollow", &format!("/v1/follows/{MASTER_LOGIN}/{NEW_SLAVE}"), None, 200);
    api.call("removeFollow", &format!("/v1/follows/{MASTER_LOGIN}/{NEW_SLAVE}"), None, 404);
    api.call("removeAccount", &format!("/v1/accounts/{NEW_SLAVE}"), None, 200);
    api.call("removeAccount", &format!("/v1/accounts/{NEW_SLAVE}"), None, 404);
    let reloaded = api.call("reload", "/v1/reload", None, 200);
    assert_eq!(reloaded["outcome"]["outcome"], "unchanged", "{reloaded}");
    for client in [&mut slave1, &mut slave2, &mut master] {
        client.expect_alive();
    }

    let every: BTreeSet<String> = api.operations.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(api.called, every, "every documented operation was called");
    let audit = audit_lines(&bridge.journal_directory());
    let by_api: Vec<&Value> = audit.iter().filter(|line| line["actor"] == "api:ops").collect();
    for action in ["account add", "follow add", "follow set", "key rotate", "account disable", "account enable", "follow remove", "account remove", "reload"] {
        assert!(by_api.iter().any(|line| line["action"] == action), "no audit line for {action}: {audit:?}");
    }
    assert!(by_api.iter().any(|line| line["outcome"].as_str().is_some_and(|outcome| outcome.starts_with("refused"))), "refused changes are audited too");
    let text = std::fs::read_to_string(bridge.journal_directory().join("audit.jsonl")).unwrap();
    assert!(!text.contains(&key) && !text.contains(&new_key) && !text.contains(TOKEN), "no key or token in the audit file");
}

#[test]
fn every_route_refuses_a_missing_or_wrong_token_and_a_cli_token_works_at_once() {
    // Shows: each documented operation, and an unknown path, answers 401 with a JSON error and a WWW-Authenticate header to no token and to a wrong one (the token's hash presented as the token included), each answer documented; a valid token on an unknown path gets a JSON 404; `tradebridge admin token add` on the running bridge's file prints a token (last line) that the API accepts at once, and `admin token remove` refuses it again; failures are audited without the presented text.
    let (bridge, path, address) = start();
    let api = Api::new(address.clone());
    let wrong = sha256_hex(TOKEN);
    for (id, template, method) in &api.operations {
        let concrete = template.replace("{login}", "100001").replace("{master}", "100001").replace("{slave}", "200001");
        for token in [None, Some("nope"), Some(wrong.as_str())] {
            let (status, headers, body) = request(&address, method, &concrete, token, None);
            assert_eq!(status, 401, "{id}: {method} {concrete} with {token:?}: {body}");
            assert!(headers.contains("www-authenticate: bearer"), "{headers}");
            assert!(body["error"].as_str().is_some_and(|error| error.starts_with("unauthorized")), "{body}");
            assert!(api.document["paths"][template][method.to_lowercase()]["responses"]["401"].is_object(), "{id} documents 401");
        }
    }
    let (status, _, _) = request(&address, "GET", "/v1/nowhere", None, None);
    assert_eq!(status, 401);
    let (status, _, body) = request(&address, "GET", "/v1/nowhere", Some(TOKEN), None);
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("/v1/nowhere"), "{body}");

    let added = Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["admin", "token", "add", "--name", "ci", "--config"]).arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&added.stdout).into_owned();
    assert!(added.status.success(), "{stdout}{}", String::from_utf8_lossy(&added.stderr));
    let token = stdout.lines().last().and_then(|line| line.strip_prefix("token=")).expect("the token on the last line").to_owned();
    let (status, _, body) = request(&address, "GET", "/v1/sessions", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    let removed = Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["admin", "token", "remove", "--name", "ci", "--config"]).arg(&path).output().unwrap();
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    let (status, _, _) = request(&address, "GET", "/v1/sessions", Some(&token), None);
    assert_eq!(status, 401);
    let listed = Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["admin", "token", "list", "--config"]).arg(&path).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "ops");
    let text = std::fs::read_to_string(bridge.journal_directory().join("audit.jsonl")).unwrap();
    assert!(text.contains("admin authentication failed") && text.contains("admin token add"), "{text}");
    assert!(!text.contains("nope") && !text.contains(&wrong) && !text.contains(&token), "no presented token in the audit file");
}
