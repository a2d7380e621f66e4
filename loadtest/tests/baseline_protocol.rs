//! The `loadtest-baseline` binary spoken to over real sockets: each test
//! starts the real binary with a temporary configuration on port 0, reads
//! its `listening on` line, and plays master and slave EAs with
//! tokio-tungstenite clients.
//!
//! Ordering argument used throughout: the baseline routes an event (queues
//! every copy on the slaves' outboxes) before it queues the master's `ack`,
//! and a connection's outbox is sent in order, so once the master has its
//! `ack`, a slave `ping` sent afterwards is answered with a `pong` that
//! follows every copy of that event. Everything before the `pong` is every
//! copy the slave got (see `copies_until_pong`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const MASTER: u64 = 100001;
const SLAVE_ONE: u64 = 200001;
const SLAVE_TWO: u64 = 200002;
const SERVER: &str = "Demo-Broker";

/// How long any single read waits; far above the milliseconds each step
/// takes, so only a real failure runs into it.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Temporary folders of the tests in this process.
static TEST_COUNTER: AtomicU32 = AtomicU32::new(0);

fn key_of(login: u64) -> String {
    format!("key-of-{login}")
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The accounts (one master, two slaves) and `[server]` with `server_extra`,
/// then `follows`.
fn config_text(server_extra: &str, follows: &str) -> String {
    let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/nonexistent/unused\"\n{server_extra}\n");
    for (login, role) in [(MASTER, "master"), (SLAVE_ONE, "slave"), (SLAVE_TWO, "slave")] {
        let hash = sha256_hex(&key_of(login));
        text += &format!("[[account]]\nlogin = {login}\nserver = \"{SERVER}\"\nrole = \"{role}\"\nkey_sha256 = \"{hash}\"\n");
    }
    text + follows
}

/// A running `loadtest-baseline`, killed and its folder removed on drop.
struct Baseline {
    child: Child,
    address: String,
    folder: PathBuf,
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn write_config(text: &str) -> (PathBuf, PathBuf) {
    let number = TEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let folder = std::env::temp_dir().join(format!("baseline-test-{}-{number}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("bridge.toml");
    std::fs::write(&path, text).unwrap();
    (folder, path)
}

/// Starts the binary on `config` with extra `arguments` and waits for its
/// `listening on` line.
fn start(config: &str, arguments: &[&str]) -> Baseline {
    let (folder, path) = write_config(config);
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadtest-baseline"))
        .arg("--config")
        .arg(&path)
        .args(["--threads", "2"])
        .args(arguments)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {line:?}")).to_string();
    Baseline { child, address, folder }
}

/// One master followed by slave one at multiplier 2 and slave two at a fixed 0.5 lots.
fn start_two_follows(arguments: &[&str]) -> Baseline {
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_ONE}\nmaster = {MASTER}\nlot = {{ mode = \"multiplier\", value = 2.0 }}\n\
         [[follow]]\nslave = {SLAVE_TWO}\nmaster = {MASTER}\nlot = {{ mode = \"fixed\", value = 0.5 }}\n"
    );
    start(&config_text("", &follows), arguments)
}

/// One master followed by slave one at multiplier 1.
fn start_one_follow(arguments: &[&str]) -> Baseline {
    let follows = format!("[[follow]]\nslave = {SLAVE_ONE}\nmaster = {MASTER}\n");
    start(&config_text("", &follows), arguments)
}

async fn connect(address: &str) -> Client {
    connect_async(format!("ws://{address}/ea")).await.unwrap().0
}

async fn send(client: &mut Client, value: Value) {
    client.send(WsMessage::text(value.to_string())).await.unwrap();
}

/// The next text frame as JSON, skipping control frames; panics on a close.
async fn receive(client: &mut Client) -> Value {
    loop {
        let frame = tokio::time::timeout(READ_TIMEOUT, client.next()).await.expect("a frame within the timeout");
        match frame {
            Some(Ok(WsMessage::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the close frame and returns its code; panics on text.
async fn close_code(client: &mut Client) -> u16 {
    loop {
        let frame = tokio::time::timeout(READ_TIMEOUT, client.next()).await.expect("a frame within the timeout");
        match frame {
            Some(Ok(WsMessage::Close(Some(close)))) => return u16::from(close.code),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn hello(login: u64, role: &str, last_seq: u64) -> Value {
    json!({"t": "hello", "v": 1, "key": key_of(login), "login": login, "role": role,
           "platform": "mt5", "server": SERVER, "ea": "test/1.0", "last_seq": last_seq})
}

/// Connects and logs in; returns the client and its `welcome`.
async fn login(address: &str, login: u64, role: &str, last_seq: u64) -> (Client, Value) {
    let mut client = connect(address).await;
    send(&mut client, hello(login, role, last_seq)).await;
    let welcome = receive(&mut client).await;
    assert_eq!(welcome["t"], "welcome", "{welcome}");
    (client, welcome)
}

fn open_event(seq: u64, pos: u64, volume: f64) -> Value {
    json!({"t": "event", "seq": seq, "kind": "open", "pos": pos, "ticket": pos, "symbol": "EURUSD",
           "side": "buy", "volume": volume, "price": 1.08123, "sl": 1.079, "tp": 1.086, "magic": 7,
           "comment": "", "time_ms": 1})
}

/// Sends the event and reads its `ack`.
async fn send_acked(master: &mut Client, event: Value) {
    let seq = event["seq"].clone();
    send(master, event).await;
    let ack = receive(master).await;
    assert_eq!(ack, json!({"t": "ack", "seq": seq}));
}

/// Every copy the slave was sent before a `pong` to a `ping` sent now.
async fn copies_until_pong(slave: &mut Client) -> Vec<Value> {
    send(slave, json!({"t": "ping"})).await;
    let mut copies = Vec::new();
    loop {
        let message = receive(slave).await;
        match message["t"].as_str() {
            Some("pong") => return copies,
            Some("copy") => copies.push(message),
            _ => panic!("expected copies then pong, got {message}"),
        }
    }
}

fn field_u64(copies: &[Value], name: &str) -> Vec<u64> {
    copies.iter().map(|copy| copy[name].as_u64().unwrap()).collect()
}

fn field_f64(copies: &[Value], name: &str) -> Vec<f64> {
    copies.iter().map(|copy| copy[name].as_f64().unwrap()).collect()
}

// A good hello gets welcome (v 1, the configured hb_ms, ack_seq 0); a wrong key, server, role or login gets error unauthorized and close 4001.
#[tokio::test]
async fn hello_gets_welcome_and_bad_credentials_get_4001() {
    let baseline = start_one_follow(&[]);
    let (_master, welcome) = login(&baseline.address, MASTER, "master", 0).await;
    assert_eq!(welcome["v"], 1);
    assert_eq!(welcome["hb_ms"], 5000);
    assert_eq!(welcome["ack_seq"], 0);
    assert!(welcome["session"].as_str().is_some_and(|session| !session.is_empty()));
    let mut wrong_key = hello(SLAVE_ONE, "slave", 0);
    wrong_key["key"] = json!("not-the-key");
    let mut wrong_server = hello(SLAVE_ONE, "slave", 0);
    wrong_server["server"] = json!("Other-Broker");
    let wrong_role = hello(SLAVE_ONE, "master", 0);
    let mut unknown_login = hello(SLAVE_ONE, "slave", 0);
    unknown_login["login"] = json!(999);
    for refused in [wrong_key, wrong_server, wrong_role, unknown_login] {
        let mut client = connect(&baseline.address).await;
        send(&mut client, refused.clone()).await;
        let error = receive(&mut client).await;
        assert_eq!(error["code"], "unauthorized", "{refused}");
        assert_eq!(close_code(&mut client).await, 4001, "{refused}");
    }
}

// An event is acked and copied to each follower with its own sizing (multiplier 2, fixed 0.5), and closes follow the open volume.
#[tokio::test]
async fn event_is_acked_and_copied_with_the_sized_volume() {
    let baseline = start_two_follows(&[]);
    let (mut one, _) = login(&baseline.address, SLAVE_ONE, "slave", 0).await;
    let (mut two, _) = login(&baseline.address, SLAVE_TWO, "slave", 0).await;
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    let before_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    send_acked(&mut master, open_event(1, 9001, 0.1)).await;
    let copy = receive(&mut one).await;
    assert_eq!(copy["t"], "copy");
    assert_eq!((copy["seq"].as_u64(), copy["master"].as_u64(), copy["pos"].as_u64()), (Some(1), Some(MASTER), Some(9001)));
    assert_eq!((copy["action"].as_str(), copy["symbol"].as_str(), copy["side"].as_str()), (Some("open"), Some("EURUSD"), Some("buy")));
    assert_eq!(copy["volume"].as_f64(), Some(0.2));
    assert_eq!((copy["price"].as_f64(), copy["sl"].as_f64(), copy["tp"].as_f64()), (Some(1.08123), Some(1.079), Some(1.086)));
    assert_eq!((copy["magic"].as_u64(), copy["max_dev"].as_f64()), (Some(7), Some(0.0)));
    assert_eq!(copy["comment"], format!("tc:{MASTER}:9001"));
    assert!(copy["expires_ms"].as_u64().unwrap() >= before_ms + 5000, "{copy}");
    assert_eq!(receive(&mut two).await["volume"].as_f64(), Some(0.5));
    // A partial close of half the master's volume closes half of each copy.
    send_acked(&mut master, json!({"t": "event", "seq": 2, "kind": "close", "pos": 9001, "volume": 0.05, "remaining": 0.05})).await;
    send_acked(&mut master, json!({"t": "event", "seq": 3, "kind": "close", "pos": 9001, "volume": 0.05, "remaining": 0.0})).await;
    let closes_one = copies_until_pong(&mut one).await;
    let closes_two = copies_until_pong(&mut two).await;
    assert_eq!(field_u64(&closes_one, "seq"), vec![2, 3]);
    assert!(closes_one.iter().chain(&closes_two).all(|copy| copy["action"] == "close" && copy["side"] == "buy"));
    assert_eq!(field_f64(&closes_one, "volume"), vec![0.1, 0.1]);
    assert_eq!(field_f64(&closes_two, "volume"), vec![0.25, 0.25]);
}

// An event whose seq is at or below the last one seen is acked again and not routed a second time.
#[tokio::test]
async fn duplicate_seq_is_acked_again_and_not_routed() {
    let baseline = start_one_follow(&[]);
    let (mut slave, _) = login(&baseline.address, SLAVE_ONE, "slave", 0).await;
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    send_acked(&mut master, open_event(1, 1, 0.1)).await;
    send_acked(&mut master, open_event(1, 1, 0.1)).await;
    send_acked(&mut master, open_event(2, 2, 0.1)).await;
    send_acked(&mut master, open_event(2, 3, 0.1)).await;
    let copies = copies_until_pong(&mut slave).await;
    assert_eq!(field_u64(&copies, "pos"), vec![1, 2]);
    assert_eq!(field_u64(&copies, "seq"), vec![1, 2]);
}

// Copies for an offline slave are kept and replayed above its last_seq at hello; a returning master's welcome carries the highest seq.
#[tokio::test]
async fn offline_slave_gets_queued_copies_above_last_seq() {
    let baseline = start_one_follow(&[]);
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    for seq in 1..=3 {
        send_acked(&mut master, open_event(seq, 100 + seq, 0.1)).await;
    }
    let (mut slave, _) = login(&baseline.address, SLAVE_ONE, "slave", 1).await;
    let replayed = copies_until_pong(&mut slave).await;
    assert_eq!(field_u64(&replayed, "seq"), vec![2, 3]);
    assert_eq!(field_u64(&replayed, "pos"), vec![102, 103]);
    drop(master);
    let (_master, welcome) = login(&baseline.address, MASTER, "master", 0).await;
    assert_eq!(welcome["ack_seq"], 3);
}

/// Runs four opens (pos 1 to 4, volume 0.1) through a baseline with
/// `arguments` and returns what the slave received.
async fn four_opens_with(arguments: &[&str]) -> Vec<Value> {
    let baseline = start_one_follow(arguments);
    let (mut slave, _) = login(&baseline.address, SLAVE_ONE, "slave", 0).await;
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    for seq in 1..=4 {
        send_acked(&mut master, open_event(seq, seq, 0.1)).await;
    }
    copies_until_pong(&mut slave).await
}

// Without faults, four events give four copies of the right volume (the control for the fault tests).
#[tokio::test]
async fn no_fault_copies_every_event_once() {
    let copies = four_opens_with(&[]).await;
    assert_eq!(field_u64(&copies, "pos"), vec![1, 2, 3, 4]);
    assert_eq!(field_f64(&copies, "volume"), vec![0.1; 4]);
}

// lose-every=2 withholds copies 2 and 4: the slave gets two copies, with no gap in its seq.
#[tokio::test]
async fn lose_every_loses_exactly_every_nth_copy() {
    let copies = four_opens_with(&["--fault", "lose-every=2"]).await;
    assert_eq!(field_u64(&copies, "pos"), vec![1, 3]);
    assert_eq!(field_u64(&copies, "seq"), vec![1, 2]);
}

// duplicate-every=2 sends copies 2 and 4 twice, the second time with the next seq.
#[tokio::test]
async fn duplicate_every_sends_every_nth_copy_twice() {
    let copies = four_opens_with(&["--fault", "duplicate-every=2"]).await;
    assert_eq!(field_u64(&copies, "pos"), vec![1, 2, 2, 3, 4, 4]);
    assert_eq!(field_u64(&copies, "seq"), vec![1, 2, 3, 4, 5, 6]);
}

// volume-every=3 doubles the volume of copy 3 only.
#[tokio::test]
async fn volume_every_doubles_every_nth_copy() {
    let copies = four_opens_with(&["--fault", "volume-every=3"]).await;
    assert_eq!(field_f64(&copies, "volume"), vec![0.1, 0.1, 0.2, 0.1]);
}

// Combined faults apply to the same copy counter: copy 2 is lost, copy 3 doubled.
#[tokio::test]
async fn faults_combine_on_one_counter() {
    let copies = four_opens_with(&["--fault", "lose-every=2", "--fault", "volume-every=3"]).await;
    assert_eq!(field_u64(&copies, "pos"), vec![1, 3]);
    assert_eq!(field_f64(&copies, "volume"), vec![0.1, 0.2]);
}

// A bad frame after welcome gets error bad_message and the connection stays up.
#[tokio::test]
async fn bad_json_gets_an_error_and_the_connection_stays_up() {
    let baseline = start_one_follow(&[]);
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    master.send(WsMessage::text("{\"t\":\"event\",")).await.unwrap();
    let error = receive(&mut master).await;
    assert_eq!(error["t"], "error");
    assert_eq!(error["code"], "bad_message");
    send(&mut master, json!({"t": "event", "seq": 1, "kind": "open", "pos": 1})).await;
    assert!(receive(&mut master).await["msg"].as_str().unwrap().contains("symbol"));
    send(&mut master, json!({"t": "ping"})).await;
    assert_eq!(receive(&mut master).await, json!({"t": "pong"}));
}

// A first frame other than hello gets error and close 4002.
#[tokio::test]
async fn first_frame_not_hello_closes_4002() {
    let baseline = start_one_follow(&[]);
    let mut client = connect(&baseline.address).await;
    send(&mut client, json!({"t": "ping"})).await;
    assert_eq!(receive(&mut client).await["code"], "bad_message");
    assert_eq!(close_code(&mut client).await, 4002);
}

// The same login connecting again closes the older connection with 4004; the newer one works.
#[tokio::test]
async fn second_login_closes_the_first_with_4004() {
    let baseline = start_one_follow(&[]);
    let (mut first, _) = login(&baseline.address, MASTER, "master", 0).await;
    let (mut second, _) = login(&baseline.address, MASTER, "master", 0).await;
    assert_eq!(close_code(&mut first).await, 4004);
    send_acked(&mut second, open_event(1, 1, 0.1)).await;
}

// A binary frame closes 1003, and a text frame above frame_bytes_max closes 1009.
#[tokio::test]
async fn binary_frame_closes_1003_and_large_frame_1009() {
    let baseline = start(&config_text("frame_bytes_max = 1024", ""), &[]);
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    master.send(WsMessage::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(close_code(&mut master).await, 1003);
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    let comment = "x".repeat(2000);
    master.send(WsMessage::text(format!("{{\"t\":\"ping\",\"pad\":\"{comment}\"}}"))).await.unwrap();
    assert_eq!(close_code(&mut master).await, 1009);
}

// A path other than /ea is refused with HTTP 404.
#[tokio::test]
async fn other_path_gets_404() {
    let baseline = start_one_follow(&[]);
    let refused = connect_async(format!("ws://{}/other", baseline.address)).await.unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 404),
        other => panic!("expected HTTP 404, got {other:?}"),
    }
}

// A peer silent for 3 x hb_ms (hb_ms = 500) is closed with 4008.
#[tokio::test]
async fn silence_closes_4008() {
    let baseline = start(&config_text("hb_ms = 500", ""), &[]);
    let (mut master, welcome) = login(&baseline.address, MASTER, "master", 0).await;
    assert_eq!(welcome["hb_ms"], 500);
    // Not polling the client: it neither sends frames nor answers the
    // bridge's pings (tungstenite answers them only while reading).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(close_code(&mut master).await, 4008);
}

// A follow setting the baseline does not implement is refused at start-up with exit 2, naming the follow and the key.
#[tokio::test]
async fn unsupported_follow_setting_is_refused_at_startup() {
    let follows = format!("[[follow]]\nslave = {SLAVE_ONE}\nmaster = {MASTER}\nsymbol_suffix = \".m\"\n");
    let (folder, path) = write_config(&config_text("", &follows));
    let output = Command::new(env!("CARGO_BIN_EXE_loadtest-baseline")).arg("--config").arg(&path).output().unwrap();
    let _ = std::fs::remove_dir_all(folder);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("follow[0].symbol_suffix") && stderr.contains("slave 200001, master 100001"), "{stderr}");
}

// SIGTERM closes every connection with 1001 and the process exits 0.
#[tokio::test]
async fn sigterm_closes_with_1001_and_exits_0() {
    let mut baseline = start_one_follow(&[]);
    let (mut master, _) = login(&baseline.address, MASTER, "master", 0).await;
    let (mut slave, _) = login(&baseline.address, SLAVE_ONE, "slave", 0).await;
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    let sent = unsafe { libc::kill(baseline.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    assert_eq!(close_code(&mut master).await, 1001);
    assert_eq!(close_code(&mut slave).await, 1001);
    drop((master, slave));
    let status = baseline.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
