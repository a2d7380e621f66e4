//! The session rules of shared/PROTOCOL.md, checked against the real
//! `tradebridge` binary over real sockets, one test per rule.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{elapsed_ms, hello_text, Bridge, MASTER_KEY, MASTER_LOGIN, SERVER_NAME, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::protocol::{ErrorCode, Message};

#[test]
fn good_hello_gets_welcome_with_hb_and_ack_seq() {
    // Shows: a master with the right key, login, server and role gets `welcome` with a session id, hb_ms and ack_seq.
    let bridge = Bridge::start(&[("hb_ms", "1500")]);
    let (_client, welcome) = bridge.login("master", 0);
    let Message::Welcome(welcome) = welcome else { unreachable!() };
    assert_eq!(welcome.version, 1);
    assert_eq!(welcome.hb_ms, 1500);
    assert_eq!(welcome.ack_seq, 0, "a fresh journal holds no event");
    assert!(!welcome.session.is_empty());
}

#[test]
fn ping_gets_pong() {
    // Shows: `ping` after welcome is answered with `pong`, repeatedly, by master and slave alike.
    let bridge = Bridge::start(&[]);
    let (mut master, _) = bridge.login("master", 0);
    let (mut slave, _) = bridge.login("slave", 0);
    for _ in 0..3 {
        master.expect_alive();
        slave.expect_alive();
    }
}

#[test]
fn no_hello_in_time_closes_4002() {
    // Shows: an EA that upgrades but sends nothing gets `error` and close 4002 after hello_timeout_ms, not before.
    let bridge = Bridge::start(&[("hello_timeout_ms", "500")]);
    let started = Instant::now();
    let mut client = bridge.connect();
    let message = client.expect_error(ErrorCode::BadMessage);
    assert!(message.contains("hello"), "{message}");
    client.expect_close(4002);
    assert!(elapsed_ms(started) >= 450, "closed after {} ms, well before the 500 ms timeout", elapsed_ms(started));
}

#[test]
fn first_frame_other_than_hello_closes_4002() {
    // Shows: a first frame that is not `hello` (a ping, then malformed JSON) gets `error` and close 4002.
    let bridge = Bridge::start(&[]);
    let mut client = bridge.connect();
    client.send(r#"{"t":"ping"}"#);
    client.expect_error(ErrorCode::BadMessage);
    client.expect_close(4002);
    let mut client = bridge.connect();
    client.send("{not json");
    client.expect_error(ErrorCode::BadMessage);
    client.expect_close(4002);
}

#[test]
fn wrong_key_login_server_or_role_closes_4001() {
    // Shows: each of a wrong key, unknown login, wrong server and wrong role gets `error` unauthorized and close 4001.
    let bridge = Bridge::start(&[]);
    let hellos = [
        hello_text(SLAVE_KEY, MASTER_LOGIN, SERVER_NAME, "master", 0),
        hello_text(MASTER_KEY, 999, SERVER_NAME, "master", 0),
        hello_text(MASTER_KEY, MASTER_LOGIN, "Other-Broker", "master", 0),
        hello_text(MASTER_KEY, MASTER_LOGIN, SERVER_NAME, "slave", 0),
        hello_text(SLAVE_KEY, SLAVE_LOGIN, SERVER_NAME, "master", 0),
    ];
    for hello in hellos {
        let mut client = bridge.connect();
        client.send(&hello);
        let message = client.expect_error(ErrorCode::Unauthorized);
        assert!(!message.contains(MASTER_KEY) && !message.contains(SLAVE_KEY), "the reply must not echo a key");
        client.expect_close(4001);
    }
}

#[test]
fn same_login_again_closes_the_older_with_4004() {
    // Shows: a second login of the same account wins; the first connection is closed with 4004, across shards.
    let bridge = Bridge::start(&[("shards", "2")]);
    // Several rounds, so that with two shards both the same-shard and the
    // cross-shard case are very likely exercised.
    let (mut older, _) = bridge.login("master", 0);
    for _ in 0..4 {
        let (mut newer, _) = bridge.login("master", 0);
        older.expect_close(4004);
        newer.expect_alive();
        older = newer;
    }
}

#[test]
fn bad_frame_after_welcome_gets_error_and_stays_up() {
    // Shows: malformed JSON, an unknown type and a missing field each get `error` with the codec's code, and the session goes on.
    let bridge = Bridge::start(&[]);
    let (mut client, _) = bridge.login("master", 0);
    client.send("{\"t\":");
    client.expect_error(ErrorCode::BadMessage);
    client.send(r#"{"t":"fill"}"#);
    client.expect_error(ErrorCode::UnknownType);
    client.send(r#"{"t":"event","kind":"open","pos":1}"#);
    let message = client.expect_error(ErrorCode::BadMessage);
    assert_eq!(message, "missing field `seq`");
    client.send(r#"{"t":"copy","seq":1,"id":"x","master":1,"pos":1,"action":"close","symbol":"A","side":"buy","volume":1}"#);
    client.expect_error(ErrorCode::BadMessage);
    client.expect_alive();
}

#[test]
fn tenth_bad_frame_in_a_minute_closes_4002() {
    // Shows: nine bad frames leave the session up; the tenth within a minute gets `error` and close 4002.
    let bridge = Bridge::start(&[("bad_frames_max_per_minute", "10")]);
    let (mut client, _) = bridge.login("slave", 0);
    for _ in 0..9 {
        client.send("nonsense");
        client.expect_error(ErrorCode::BadMessage);
    }
    client.expect_alive();
    client.send("nonsense");
    client.expect_error(ErrorCode::BadMessage);
    client.expect_close(4002);
}

#[test]
fn binary_frame_closes_1003() {
    // Shows: a binary frame after welcome closes the connection with 1003.
    let bridge = Bridge::start(&[]);
    let (mut client, _) = bridge.login("master", 0);
    client.socket.send(tungstenite::Message::binary(b"{\"t\":\"ping\"}".to_vec())).expect("send binary");
    client.expect_close(1003);
}

#[test]
fn oversize_frame_closes_1009() {
    // Shows: a text frame above frame_bytes_max closes with 1009, while one just below the limit is handled.
    let bridge = Bridge::start(&[("frame_bytes_max", "1024")]);
    let (mut client, _) = bridge.login("master", 0);
    let padded_ping = |bytes: usize| format!("{{\"t\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(bytes - 21));
    assert_eq!(padded_ping(1000).len(), 1000);
    client.send(&padded_ping(1000));
    assert_eq!(client.recv(), Message::Pong);
    client.send(&padded_ping(2000));
    client.expect_close(1009);
}

#[test]
fn rate_limit_exceeded_closes_4003() {
    // Shows: an account that sends more frames than its bucket holds gets `error` rate_limited and close 4003.
    let bridge = Bridge::start(&[("rate_limit_per_second", "1"), ("rate_limit_burst", "5")]);
    let (mut client, _) = bridge.login("master", 0);
    // Five frames fit the burst (the refill of one per second adds at most a
    // few more if the machine is slow), so sending far more must trip it.
    let mut pongs: u32 = 0;
    for _ in 0..50 {
        client.send(r#"{"t":"ping"}"#);
    }
    loop {
        match client.recv() {
            Message::Pong => pongs += 1,
            Message::Error(error) => {
                assert_eq!(error.code, ErrorCode::RateLimited);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((5..50).contains(&pongs), "{pongs} pongs before the limit");
    client.expect_close(4003);
}

#[test]
fn rate_limit_is_per_account_across_reconnects() {
    // Shows: reconnecting does not refill the account's bucket: the new connection of the same login is limited at once.
    let bridge = Bridge::start(&[("rate_limit_per_second", "1"), ("rate_limit_burst", "3")]);
    let (mut client, _) = bridge.login("slave", 0);
    client.expect_alive();
    client.expect_alive();
    client.expect_alive();
    drop(client);
    let (mut client, _) = bridge.login("slave", 0);
    for _ in 0..10 {
        client.send(r#"{"t":"ping"}"#);
    }
    let mut limited = false;
    for _ in 0..10 {
        match client.recv() {
            Message::Pong => continue,
            Message::Error(error) if error.code == ErrorCode::RateLimited => {
                limited = true;
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(limited, "ten pings after an exhausted bucket must hit the limit");
}

#[test]
fn silence_for_three_heartbeats_closes_4008() {
    // Shows: an EA that sends nothing after welcome (its library still answers the bridge's pings) is closed with 4008 after 3 x hb_ms.
    let bridge = Bridge::start(&[("hb_ms", "500")]);
    let (mut client, _) = bridge.login("slave", 0);
    let started = Instant::now();
    client.expect_close(4008);
    assert!(elapsed_ms(started) >= 1_450, "closed after {} ms, before 3 x hb_ms", elapsed_ms(started));
}

#[test]
fn pings_keep_the_session_alive_past_three_heartbeats() {
    // Shows: an EA that sends `ping` every hb_ms stays connected well past 3 x hb_ms.
    let bridge = Bridge::start(&[("hb_ms", "500")]);
    let (mut client, _) = bridge.login("master", 0);
    let started = Instant::now();
    while elapsed_ms(started) < 2_500 {
        client.expect_alive();
        std::thread::sleep(Duration::from_millis(250));
    }
    client.expect_alive();
}

#[test]
fn bridge_sends_websocket_pings() {
    // Shows: the bridge sends WebSocket ping control frames to an idle EA.
    let bridge = Bridge::start(&[("hb_ms", "500")]);
    let (mut client, _) = bridge.login("master", 0);
    let frame = client.socket.read().expect("a frame within the timeout");
    assert!(matches!(frame, tungstenite::Message::Ping(_)), "expected a ping, got {frame:?}");
}

#[test]
fn other_path_gets_http_404() {
    // Shows: an upgrade on any path but /ea is refused with HTTP 404.
    let bridge = Bridge::start(&[]);
    match bridge.connect_path("/other") {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 404),
        Err(other) => panic!("expected HTTP 404, got {other}"),
        Ok(_) => panic!("expected HTTP 404, got an upgrade"),
    }
    bridge.login("master", 0).0.expect_alive();
}

#[test]
fn bad_config_exits_2_naming_line_and_key() {
    // Shows: an invalid configuration makes `serve` exit with code 2 and a message naming the line and the key.
    let directory = support::temp_directory("badconfig");
    let path = directory.join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/x\"\nhb_ms = \"fast\"\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["serve", "--config"]).arg(&path).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 4") && stderr.contains("hb_ms"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["serve"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&directory);
}
