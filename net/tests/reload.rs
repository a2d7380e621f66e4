//! Configuration changes applied to a running bridge (issue 14), over real
//! sockets against the real binary: `tradebridge reload` (and SIGHUP)
//! re-reads the file, validates it as at start, and the router applies the
//! difference between two inputs, journaled, so a restart after kill -9
//! replays it where it was made.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{close_event_text, open_event_text, temp_directory, Bridge, Client, ACCOUNTS, SERVER_DEFAULTS, SLAVE2_KEY, SLAVE2_LOGIN, SLAVE_KEY, SLAVE_LOGIN, STATE_TEXT};
use tradebridge_core::protocol::{Ack, Copy, CopyAction, Message};

/// The test configuration; `slave2_follow`: slave 2's follow is in it,
/// with `extra` lines.
fn config_text(journal: &Path, slave2_follow: bool, extra: &str) -> String {
    let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n", journal.display());
    for (key, value) in SERVER_DEFAULTS {
        text.push_str(&format!("{key} = {value}\n"));
    }
    let accounts = ACCOUNTS.replace("{slave2_follow_extra}", extra);
    let accounts = if slave2_follow {
        accounts
    } else {
        let cut = accounts.find("[[follow]]\nslave = 200002").expect("slave 2's follow");
        accounts[..cut].to_string()
    };
    text.push_str(&accounts);
    text
}

/// A bridge on a configuration file the test rewrites.
fn start(slave2_follow: bool, extra: &str) -> (Bridge, PathBuf) {
    let directory = temp_directory("reload");
    let path = directory.join("tradebridge.toml");
    std::fs::write(&path, config_text(&directory.join("journal"), slave2_follow, extra)).expect("write config");
    (Bridge::start_with_config_file(directory, path.clone()), path)
}

fn rewrite(path: &Path, bridge: &Bridge, slave2_follow: bool, extra: &str) {
    std::fs::write(path, config_text(&bridge.journal_directory(), slave2_follow, extra)).expect("rewrite config");
}

fn reload(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["reload", "--config"]).arg(path).output().expect("run tradebridge reload")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn slave(bridge: &Bridge, login: u64, key: &str) -> Client {
    let (mut slave, _) = bridge.login_as(login, key, "slave", 0);
    slave.send(STATE_TEXT);
    slave.expect_alive();
    slave
}

fn expect_copy(client: &mut Client) -> Copy {
    match client.recv() {
        Message::Copy(copy) => copy,
        other => panic!("expected a copy, got {other:?}"),
    }
}

fn filled(copy: &Copy) -> String {
    format!(r#"{{"t":"result","seq":{},"status":"filled","ticket":{},"price":1.08,"volume":{},"error":0,"msg":"","exec_ms":1}}"#, copy.seq, copy.pos, copy.volume)
}

#[test]
fn a_follow_added_by_reload_copies_the_next_open_and_no_session_is_closed() {
    // Shows: with slave 2 not following, an open reaches slave 1 only; after the file gains slave 2's follow and `tradebridge reload` reports it applied (exit 0), the next open reaches both, slave 2 first hears of the new position only, and every session stays up.
    let (bridge, path) = start(false, "");
    let mut slave1 = slave(&bridge, SLAVE_LOGIN, SLAVE_KEY);
    let mut slave2 = slave(&bridge, SLAVE2_LOGIN, SLAVE2_KEY);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9001);
    rewrite(&path, &bridge, true, "");
    let output = reload(&path);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    let said = text(&output.stdout);
    assert!(said.contains("\"outcome\":\"applied\"") && said.contains("\"follows_changed\":1") && said.contains("\"generation\":2"), "{said}");
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    assert_eq!((expect_copy(&mut slave1).pos), 9002);
    let first = expect_copy(&mut slave2);
    assert_eq!((first.seq, first.pos, first.action), (1, 9002, CopyAction::Open), "slave 2's first copy is of the position opened after the change");
    assert!((first.volume - 0.05).abs() < 1e-9, "{first:?}");
    for client in [&mut slave1, &mut slave2, &mut master] {
        client.expect_alive();
    }
}

#[test]
fn an_invalid_file_changes_nothing_and_the_bridge_keeps_serving() {
    // Shows: `tradebridge reload` refuses a broken file with exit 2 naming its line and key, without signalling; a SIGHUP with the same file makes the bridge write an `invalid` outcome and change nothing: both slaves still get the next open.
    let (bridge, path) = start(true, "");
    let mut slave1 = slave(&bridge, SLAVE_LOGIN, SLAVE_KEY);
    let mut slave2 = slave(&bridge, SLAVE2_LOGIN, SLAVE2_KEY);
    let (mut master, _) = bridge.login("master", 0);
    let broken = config_text(&bridge.journal_directory(), false, "").replace("hb_ms = 1000", "hb_ms = \"soon\"");
    std::fs::write(&path, broken).unwrap();
    let output = reload(&path);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains("hb_ms") && text(&output.stderr).contains("line "), "{}", text(&output.stderr));
    let pid = std::fs::read_to_string(bridge.journal_directory().join("tradebridge.pid")).expect("pid file");
    assert!(Command::new("kill").args(["-HUP", pid.trim()]).status().unwrap().success());
    let status_path = bridge.journal_directory().join("reload-status.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !status_path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(&status_path).expect("the bridge wrote its outcome");
    assert!(status.contains("\"outcome\": \"invalid\"") && status.contains("hb_ms"), "{status}");
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9001);
    assert_eq!(expect_copy(&mut slave2).pos, 9001, "slave 2's follow, absent from the invalid file, still applies");
}

#[test]
fn a_follow_removed_with_on_remove_close_closes_its_open_copy_at_once() {
    // Shows: slave 2 holds a filled copy when its follow (on_remove = "close") leaves the file; the reload sends it a close of everything it holds, and the master's later close goes to slave 1 only.
    let (bridge, path) = start(true, "on_remove = \"close\"");
    let mut slave1 = slave(&bridge, SLAVE_LOGIN, SLAVE_KEY);
    let mut slave2 = slave(&bridge, SLAVE2_LOGIN, SLAVE2_KEY);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let open1 = expect_copy(&mut slave1);
    let open2 = expect_copy(&mut slave2);
    slave1.send(&filled(&open1));
    slave2.send(&filled(&open2));
    slave2.expect_alive();
    rewrite(&path, &bridge, false, "");
    let output = reload(&path);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("\"exits\":1"), "{}", text(&output.stdout));
    let exit = expect_copy(&mut slave2);
    assert_eq!((exit.seq, exit.pos, exit.action), (2, 9001, CopyAction::Close));
    assert!((exit.volume - 0.05).abs() < 1e-9, "{exit:?}");
    master.send(&close_event_text(2, 9001, 0.1, 0.0));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    assert_eq!(expect_copy(&mut slave1).action, CopyAction::Close);
    master.send(&open_event_text(3, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9002);
    slave2.expect_alive();
}

#[test]
fn after_kill_9_the_change_is_replayed_where_it_was_made() {
    // Shows: an open before slave 2's follow was added (reconcile_open_max_age_ms = 0, so its state never opens an earlier position), the reload, then kill -9 and a restart on the same file: the restart reports the journal's configuration unchanged (generation 2, no new one), and the master's close of the earlier position sends slave 2 nothing (its follow began after the open; replayed from the start it would hold a copy), while slave 1 gets its close.
    let (bridge, path) = start(false, "");
    let mut slave1 = slave(&bridge, SLAVE_LOGIN, SLAVE_KEY);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let open1 = expect_copy(&mut slave1);
    slave1.send(&filled(&open1));
    slave1.expect_alive();
    rewrite(&path, &bridge, true, "reconcile_open_max_age_ms = 0");
    assert!(reload(&path).status.success());
    drop((slave1, master));
    let bridge = bridge.restart();
    let again = reload(&path);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("\"outcome\":\"unchanged\"") && text(&again.stdout).contains("\"generation\":2"), "{}", text(&again.stdout));
    let (mut slave1, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 1);
    let mut slave2 = slave(&bridge, SLAVE2_LOGIN, SLAVE2_KEY);
    let (mut master, _) = bridge.login("master", 1);
    master.send(&close_event_text(2, 9001, 0.1, 0.0));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    let close1 = expect_copy(&mut slave1);
    assert_eq!((close1.pos, close1.action), (9001, CopyAction::Close));
    master.send(&open_event_text(3, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    let first = expect_copy(&mut slave2);
    assert_eq!((first.pos, first.action), (9002, CopyAction::Open), "slave 2 got no close of a position it never copied");
}

#[test]
fn adding_an_account_live_is_refused_and_changes_nothing() {
    // Shows: a file that adds an account is refused by the running bridge (exit 1 naming the login and the restart it needs), and the follows in effect are untouched.
    let (bridge, path) = start(true, "");
    let mut slave1 = slave(&bridge, SLAVE_LOGIN, SLAVE_KEY);
    let (mut master, _) = bridge.login("master", 0);
    let mut added = config_text(&bridge.journal_directory(), false, "");
    added.push_str("\n[[account]]\nlogin = 300001\nserver = \"Demo-Broker-A\"\nrole = \"slave\"\nkey_sha256 = \"5be9b1e9441e77b4709302c501b9608f5e852061d507d6cb71bbeb78a310de93\"\n");
    std::fs::write(&path, added).unwrap();
    let output = reload(&path);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let said = text(&output.stderr);
    assert!(said.contains("refused") && said.contains("account 300001 added") && said.contains("restart"), "{said}");
    let mut slave2 = slave(&bridge, SLAVE2_LOGIN, SLAVE2_KEY);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9001);
    assert_eq!(expect_copy(&mut slave2).pos, 9001, "slave 2's follow, dropped by the refused file, still applies");
}
