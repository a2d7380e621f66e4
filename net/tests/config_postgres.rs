//! Postgres as the configuration source (`[persist]`, issue 14) against a
//! real server (a throwaway cluster) and the real binary: the file's
//! accounts and follows fill the tables at the first start; the CLI and the
//! admin API change the tables (with their `audit_log` rows), and so does
//! plain SQL, which the running bridge applies as it is committed
//! (LISTEN/NOTIFY); rows that do not validate change nothing; a restart
//! with Postgres away starts on the journal's last configuration.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{expect_copy, open_event_text, sha256_hex, slave_with_state, temp_directory, Bridge, ACCOUNTS, MASTER_LOGIN, SERVER_DEFAULTS, SLAVE2_KEY, SLAVE2_LOGIN, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::protocol::{Ack, Message};
use tradebridge_persist::testing::TestCluster;

const TOKEN: &str = "postgres-test-admin-token";
const NEW_SLAVE: u64 = 300_001;


/// The file: the test accounts, `[persist]` on `cluster` (Postgres the
/// source by default) and `[admin]`.
fn write_config(directory: &Path, cluster: &TestCluster) -> PathBuf {
    let path = directory.join("tradebridge.toml");
    let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n", directory.join("journal").display());
    for (key, value) in SERVER_DEFAULTS {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text.push_str(&ACCOUNTS.replace("{slave2_follow_extra}", ""));
    text.push_str(&format!(
        "\n[persist]\ndatabase_url = \"{}\"\nmigrate_on_start = true\nbatch_interval_ms = 20\nretry_backoff_ms_min = 50\nretry_backoff_ms_max = 300\nconnect_timeout_ms = 1000\n",
        cluster.url("bridge")
    ));
    text.push_str(&format!("\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[[admin.token]]\nname = \"ops\"\ntoken_sha256 = \"{}\"\n", sha256_hex(TOKEN)));
    std::fs::write(&path, text).expect("write config");
    path
}

/// Reads the bridge's announcements up to the admin API's address.
fn admin_address(bridge: &mut Bridge) -> String {
    loop {
        let line = bridge.read_stdout_line();
        assert!(!line.is_empty(), "the bridge ended before announcing the admin API");
        if let Some(rest) = line.trim().strip_prefix("tradebridge admin API on http://") {
            return rest.strip_suffix("/v1").expect("/v1").to_owned();
        }
    }
}

fn tradebridge(arguments: &[&str], config: &Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(arguments).arg("--config").arg(config).output().expect("run tradebridge");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// One authenticated admin API call; the status and body.
fn api(address: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the admin API");
    stream.set_read_timeout(Some(support::READ_TIMEOUT)).unwrap();
    let body = body.unwrap_or("");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status");
    (status, response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

fn expect_revoked(client: &mut support::Client) {
    match client.recv() {
        Message::Error(error) => assert!(error.msg.contains("disabled"), "{error:?}"),
        other => panic!("expected an error before the close, got {other:?}"),
    }
    client.expect_close(4005);
}

#[test]
fn postgres_holds_the_accounts_and_a_committed_change_applies_live() {
    // Shows: the first start imports the file's 3 accounts and 2 follows into the tables; `account add` and `follow add` write rows (the key printed once, only its hash stored) with audit_log rows naming the CLI user, and the new slave logs in and gets the master's next open; an UPDATE in psql disabling it closes its session with 4005 at once (no reload, no signal); a row that does not validate changes nothing and the bridge keeps copying; the API's disable and enable write audit_log rows naming the token, and a refused token is an audit_log row without the text presented; kill -9 and a restart with Postgres stopped start on the journal's configuration (the new slave is known), and with Postgres back an SQL change applies again.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let directory = temp_directory("config-postgres");
    let path = write_config(&directory, &cluster);
    let mut bridge = Bridge::start_with_config_file(directory, path.clone());
    let address = admin_address(&mut bridge);
    assert_eq!(cluster.psql("bridge", "SELECT count(*) FROM config_accounts").unwrap(), "3\n");
    assert_eq!(cluster.psql("bridge", "SELECT count(*) FROM config_follows").unwrap(), "2\n");
    assert!(cluster.psql("bridge", "SELECT actor || ' ' || action FROM audit_log").unwrap().contains("import config import"));
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);

    let (ok, stdout, stderr) = tradebridge(&["account", "add", "--login", "300001", "--role", "slave", "--server", "Demo-Broker-A", "--platform", "mt4"], &path);
    assert!(ok, "{stdout}{stderr}");
    let key = stdout.lines().last().and_then(|line| line.strip_prefix("key=")).expect("key on the last line").to_owned();
    assert_eq!(cluster.psql("bridge", "SELECT key_sha256 || ' ' || platform FROM config_accounts WHERE login = 300001").unwrap(), format!("{} mt4\n", sha256_hex(&key)));
    let (ok, stdout, stderr) = tradebridge(&["follow", "add", "--master", "100001", "--slave", "300001", "--rule", "lot = { mode = \"multiplier\", value = 4.0 }"], &path);
    // Applied by the notification, or by the reload the CLI then asks for,
    // whichever comes first: either way the bridge runs it when the CLI returns.
    assert!(ok && (stdout.contains("\"outcome\":\"applied\"") || stdout.contains("\"outcome\":\"unchanged\"")), "{stdout}{stderr}");
    let audit = cluster.psql("bridge", "SELECT actor || '|' || action || '|' || subject FROM audit_log WHERE actor LIKE 'cli:%' ORDER BY id").unwrap();
    assert!(audit.contains("|account add|account 300001") && audit.contains("|follow add|follow 300001<100001"), "{audit}");
    assert!(!cluster.psql("bridge", "SELECT coalesce(before::text, '') || after::text FROM audit_log").unwrap().contains(&sha256_hex(&key)), "no key hash in audit_log");
    let (ok, listed, _) = tradebridge(&["account", "list"], &path);
    assert!(ok && listed.contains("300001\tslave"), "`account list` reads Postgres: {listed}");
    assert!(!std::fs::read_to_string(&path).unwrap().contains("300001"), "the file is not edited");

    let mut slave3 = slave_with_state(&bridge, NEW_SLAVE, &key, 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9001);
    assert_eq!(expect_copy(&mut slave2).pos, 9001);
    let copy = expect_copy(&mut slave3);
    assert_eq!(copy.pos, 9001);

    // Plain SQL, committed: the bridge hears it and applies it.
    let committed = Instant::now();
    cluster.psql("bridge", "UPDATE config_accounts SET enabled = false WHERE login = 300001").unwrap();
    expect_revoked(&mut slave3);
    // Within a second here (a few ms on a quiet machine); the bound leaves
    // room for a loaded CI host.
    eprintln!("the disable committed in psql closed the session {:?} after psql started", committed.elapsed());
    assert!(committed.elapsed() < Duration::from_secs(3), "applied {:?} after the commit", committed.elapsed());

    // A row that does not validate changes nothing.
    cluster.psql("bridge", "UPDATE config_accounts SET settings = 'max_positions = -1' WHERE login = 200002").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9002);
    assert_eq!(expect_copy(&mut slave2).pos, 9002);
    cluster.psql("bridge", "UPDATE config_accounts SET settings = '' WHERE login = 200002").unwrap();

    // The API changes the tables too.
    let (status, body) = api(&address, "POST", "/v1/accounts/200002/disable", None);
    assert_eq!(status, 200, "{body}");
    expect_revoked(&mut slave2);
    let (status, body) = api(&address, "POST", "/v1/accounts/200002/enable", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(&address, "GET", "/v1/accounts/300001", None);
    assert!(status == 200 && body.contains("\"enabled\":false"), "the API reads Postgres: {status} {body}");
    assert!(cluster.psql("bridge", "SELECT count(*) FROM audit_log WHERE actor = 'api:ops'").unwrap().trim().parse::<u32>().unwrap() >= 2);
    let refused = {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(stream, "GET /v1/sessions HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer not-the-token\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = cluster.psql("bridge", "SELECT actor || '|' || action || '|' || after::text FROM audit_log WHERE action = 'admin authentication failed'").unwrap();
        if rows.contains("api|admin authentication failed|") {
            assert!(!rows.contains("not-the-token"), "the presented token is not recorded: {rows}");
            break;
        }
        assert!(Instant::now() < deadline, "no audit_log row for the refused token");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Postgres away at a restart: the journal's configuration.
    drop((slave1, master));
    bridge.kill();
    cluster.stop().unwrap();
    let mut bridge = bridge.restart();
    let _ = admin_address(&mut bridge);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 2);
    let mut refused = bridge.connect();
    refused.send(&support::hello_text(&key, NEW_SLAVE, support::SERVER_NAME, "slave", 1));
    expect_revoked(&mut refused);
    cluster.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    cluster.psql("bridge", "UPDATE config_accounts SET enabled = true WHERE login = 300001").unwrap();
    let (mut master, _) = bridge.login_as(MASTER_LOGIN, support::MASTER_KEY, "master", 2);
    loop {
        let mut again = bridge.connect();
        again.send(&support::hello_text(&key, NEW_SLAVE, support::SERVER_NAME, "slave", 1));
        if matches!(again.recv(), Message::Welcome(_)) {
            break;
        }
        assert!(Instant::now() < deadline, "the change committed after Postgres came back was not applied");
        std::thread::sleep(Duration::from_millis(200));
    }
    master.send(&open_event_text(3, 9003));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    // Its state holds none of the master's positions: reconciliation opens
    // 9001 and 9002 (young enough) before the new 9003.
    let positions: Vec<u64> = (0..3).map(|_| expect_copy(&mut slave2).pos).collect();
    assert_eq!(positions, vec![9001, 9002, 9003]);
}
