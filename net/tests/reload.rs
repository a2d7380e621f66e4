//! Configuration changes applied to a running bridge (issue 14), over real
//! sockets against the real binary: `tradebridge reload` (and SIGHUP)
//! re-reads the file, validates it as at start, and the router applies the
//! difference between two inputs, journaled, so a restart after kill -9
//! replays it where it was made.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{close_event_text, expect_copy, open_event_text, sha256_hex, slave_with_state, temp_directory, Bridge, Client, ACCOUNTS, SERVER_DEFAULTS, SLAVE2_KEY, SLAVE2_LOGIN, SLAVE_KEY, SLAVE_LOGIN};
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

fn filled(copy: &Copy) -> String {
    format!(r#"{{"t":"result","seq":{},"status":"filled","ticket":{},"price":1.08,"volume":{},"error":0,"msg":"","exec_ms":1}}"#, copy.seq, copy.pos, copy.volume)
}

#[test]
fn a_follow_added_by_reload_copies_the_next_open_and_no_session_is_closed() {
    // Shows: with slave 2 not following, an open reaches slave 1 only; after the file gains slave 2's follow and `tradebridge reload` reports it applied (exit 0), the next open reaches both, slave 2 first hears of the new position only, and every session stays up.
    let (bridge, path) = start(false, "");
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
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
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
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
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
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
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
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
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
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

const SLAVE2_KEY_SHA256: &str = "5be9b1e9441e77b4709302c501b9608f5e852061d507d6cb71bbeb78a310de93";
const SLAVE1_KEY_SHA256: &str = "b9a5a2f553b362d6600a5461589956d2672870b866df579f20b9165ebb1293b2";


fn expect_revoked(client: &mut Client) {
    match client.recv() {
        Message::Error(error) => assert!(error.msg.contains("disabled"), "{error:?}"),
        other => panic!("expected an error before the close, got {other:?}"),
    }
    client.expect_close(4005);
}

#[test]
fn an_account_added_live_logs_in_and_gets_copies() {
    // Shows: a slave account and its follow added to the file are applied by `reload` (exit 0); the new slave logs in with its key and gets the master's next open; no other session is closed.
    let (bridge, path) = start(true, "");
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    let mut file = config_text(&bridge.journal_directory(), true, "");
    file.push_str(&format!(
        "\n[[account]]\nlogin = 300001\nserver = \"Demo-Broker-A\"\nrole = \"slave\"\nkey_sha256 = \"{}\"\n\n[[follow]]\nslave = 300001\nmaster = 100001\n",
        sha256_hex("demo-slave-3-key")
    ));
    std::fs::write(&path, file).unwrap();
    let output = reload(&path);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("\"accounts_changed\":1"), "{}", text(&output.stdout));
    let mut slave3 = slave_with_state(&bridge, 300_001, "demo-slave-3-key", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9001);
    let copy = expect_copy(&mut slave3);
    assert_eq!((copy.seq, copy.pos), (1, 9001));
    master.expect_alive();
}

#[test]
fn a_disabled_account_is_closed_with_4005_and_refused_until_enabled_again() {
    // Shows: `enabled = false` on slave 2 closes its live session with an `error` and 4005, its next hello gets the same, the master's open goes to slave 1 only; enabled again, slave 2 logs in and gets the position it missed (reconciliation) and the next open.
    let (bridge, path) = start(true, "");
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    let disabled = config_text(&bridge.journal_directory(), true, "").replace(SLAVE2_KEY_SHA256, &format!("{SLAVE2_KEY_SHA256}\"\nenabled = false\n#\""));
    std::fs::write(&path, disabled).unwrap();
    assert!(reload(&path).status.success());
    expect_revoked(&mut slave2);
    let mut again = bridge.connect();
    again.send(&support::hello_text(SLAVE2_KEY, SLAVE2_LOGIN, support::SERVER_NAME, "slave", 0));
    expect_revoked(&mut again);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9001);
    rewrite(&path, &bridge, true, "");
    assert!(reload(&path).status.success());
    let (mut slave2, _) = bridge.login_as(SLAVE2_LOGIN, SLAVE2_KEY, "slave", 0);
    slave2.send(support::STATE_TEXT);
    // Its state showed no position 9001, opened seconds ago: reconciliation
    // opens it (as for any slave back within reconcile_open_max_age_ms).
    // Awaited before the next event: frames of two connections (possibly on
    // two shards) have no order between them.
    assert_eq!(expect_copy(&mut slave2).pos, 9001);
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    assert_eq!(expect_copy(&mut slave1).pos, 9002);
    assert_eq!(expect_copy(&mut slave2).pos, 9002);
}

#[test]
fn a_removed_account_is_closed_and_a_rekeyed_one_keeps_its_session_but_needs_the_new_key() {
    // Shows: removing slave 2 (account and follow) closes its session with 4005 and its next hello is unauthorized (4001); slave 1's key replaced: its live session stays up, a hello with the old key is refused, one with the new key is welcomed.
    let (bridge, path) = start(true, "");
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    let text_now = config_text(&bridge.journal_directory(), false, "");
    let cut = text_now.find("[[account]]\nlogin = 200002").expect("slave 2's account");
    let end = text_now[cut..].find("\n\n").map_or(text_now.len(), |offset| cut + offset);
    let removed = format!("{}{}", &text_now[..cut], &text_now[end..]).replace(SLAVE1_KEY_SHA256, &sha256_hex("new-slave-1-key"));
    std::fs::write(&path, removed).unwrap();
    let output = reload(&path);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("\"accounts_removed\":1"), "{}", text(&output.stdout));
    expect_revoked(&mut slave2);
    let mut gone = bridge.connect();
    gone.send(&support::hello_text(SLAVE2_KEY, SLAVE2_LOGIN, support::SERVER_NAME, "slave", 0));
    assert!(matches!(gone.recv(), Message::Error(_)));
    gone.expect_close(4001);
    slave1.expect_alive();
    let mut old_key = bridge.connect();
    old_key.send(&support::hello_text(SLAVE_KEY, SLAVE_LOGIN, support::SERVER_NAME, "slave", 0));
    assert!(matches!(old_key.recv(), Message::Error(_)));
    old_key.expect_close(4001);
    let (_new_key, _) = bridge.login_as(SLAVE_LOGIN, "new-slave-1-key", "slave", 0);
}

fn cli(path: &Path, arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(arguments).arg("--config").arg(path).output().expect("run tradebridge")
}

fn printed_key(output: &std::process::Output) -> String {
    let stdout = text(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    last.strip_prefix("key=").unwrap_or_else(|| panic!("the last line is not key=: {stdout}")).to_owned()
}

#[test]
fn the_admin_commands_edit_the_file_and_the_running_bridge_applies_each() {
    // Shows: `account add` prints a new key last and only its hash reaches the file; `follow add` with a rule makes the next open reach the new slave at its multiplier; `account list` and `show` list it (never the key); `key rotate --grace 1h` keeps the old key working beside the new one, a second rotation with no grace refuses the second key at once while the first stays within its grace, and the live session stays; `account disable` closes the session with 4005; every action is a line in the audit file; the file keeps its comment.
    let (bridge, path) = start(true, "");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("# operator's note\n{original}")).unwrap();
    let (mut master, _) = bridge.login("master", 0);
    let added = cli(&path, &["account", "add", "--login", "300001", "--role", "slave", "--server", "Demo-Broker-A", "--platform", "mt5", "--limit", "max_positions=5"]);
    assert!(added.status.success(), "{}{}", text(&added.stdout), text(&added.stderr));
    let key = printed_key(&added);
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(file.starts_with("# operator's note") && !file.contains(&key) && file.contains(&sha256_hex(&key)), "{file}");
    let followed = cli(&path, &["follow", "add", "--master", "100001", "--slave", "300001", "--rule", "lot = { mode = \"multiplier\", value = 3.0 }"]);
    assert!(followed.status.success(), "{}", text(&followed.stderr));
    assert!(text(&followed.stdout).contains("\"outcome\":\"applied\""), "{}", text(&followed.stdout));
    let mut slave3 = slave_with_state(&bridge, 300_001, &key, 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let copy = expect_copy(&mut slave3);
    assert!((copy.volume - 0.3).abs() < 1e-9, "{copy:?}");
    let listed = text(&cli(&path, &["account", "list"]).stdout);
    assert!(listed.contains("300001\tslave\tDemo-Broker-A\ttrue\t1"), "{listed}");
    let shown = text(&cli(&path, &["account", "show", "300001"]).stdout);
    assert!(shown.contains("follow: slave 300001 copies master 100001") && !shown.contains(&sha256_hex(&key)), "{shown}");
    let rotated = cli(&path, &["key", "rotate", "300001", "--grace", "1h"]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let new_key = printed_key(&rotated);
    assert!(std::fs::read_to_string(&path).unwrap().contains("previous_keys"));
    slave3.expect_alive();
    let (_old_in_grace, _) = bridge.login_as(300_001, &key, "slave", 1);
    let (_new, _) = bridge.login_as(300_001, &new_key, "slave", 1);
    let again = cli(&path, &["key", "rotate", "300001", "--grace", "0"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let third_key = printed_key(&again);
    let mut refused = bridge.connect();
    refused.send(&support::hello_text(&new_key, 300_001, support::SERVER_NAME, "slave", 0));
    assert!(matches!(refused.recv(), Message::Error(_)));
    refused.expect_close(4001);
    let (_first_still_in_grace, _) = bridge.login_as(300_001, &key, "slave", 1);
    let (_renewed, _) = bridge.login_as(300_001, &third_key, "slave", 1);
    let disabled = cli(&path, &["account", "disable", "300001"]);
    assert!(disabled.status.success(), "{}", text(&disabled.stderr));
    let audit = std::fs::read_to_string(bridge.journal_directory().join("audit.jsonl")).expect("audit file");
    let actions: Vec<String> = audit.lines().map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["action"].as_str().unwrap().to_owned()).collect();
    let operator: Vec<&String> = actions.iter().filter(|action| *action != "authentication failed").collect();
    assert_eq!(operator, ["account add", "follow add", "key rotate", "key rotate", "account disable"]);
    assert_eq!(actions.iter().filter(|action| *action == "authentication failed").count(), 1, "the refused second key is audited by the bridge: {actions:?}");
    assert!(!audit.contains(&key) && !audit.contains(&new_key) && !audit.contains(&third_key));
    let missing = cli(&path, &["follow", "remove", "--master", "100001", "--slave", "999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("slave 999 does not follow master 100001"), "{}", text(&missing.stderr));
}

#[test]
fn an_admin_command_without_a_running_bridge_writes_the_file_for_its_next_start() {
    // Shows: with no bridge running, `account add` writes the file and says the change applies at the next start; a rule the bridge would refuse changes nothing and exits 2 naming the key.
    let directory = temp_directory("admin-offline");
    let path = directory.join("tradebridge.toml");
    std::fs::write(&path, config_text(&directory.join("journal"), true, "")).unwrap();
    let added = cli(&path, &["account", "add", "--login", "300002", "--role", "master", "--server", "B", "--platform", "mt4"]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stdout).contains("applies at its next start"), "{}", text(&added.stdout));
    printed_key(&added);
    let before = std::fs::read_to_string(&path).unwrap();
    let refused = cli(&path, &["follow", "set", "--master", "100001", "--slave", "200001", "--rule", "ttl_ms = 5"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(text(&refused.stderr).contains("ttl_ms"), "{}", text(&refused.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "a refused edit changes nothing");
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn a_refused_hello_is_a_line_of_the_audit_file_without_the_key() {
    // Shows: without [persist], a hello with a wrong key is refused (4001) and appended to audit.jsonl beside the journal with the login, the remote address and the reason, never the key sent.
    let (bridge, _path) = start(true, "");
    let mut client = bridge.connect();
    let local = client.socket.get_ref().local_addr().expect("local address").to_string();
    client.send(&support::hello_text("not-the-key-at-all", SLAVE_LOGIN, support::SERVER_NAME, "slave", 0));
    assert!(matches!(client.recv(), Message::Error(_)));
    client.expect_close(4001);
    let file = bridge.journal_directory().join("audit.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&file).is_ok_and(|text| text.contains("authentication failed")) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&file).expect("audit file");
    let line: serde_json::Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(line["action"], "authentication failed");
    assert_eq!(line["subject"], format!("account {SLAVE_LOGIN}"));
    assert_eq!(line["remote_address"], local.as_str());
    assert_eq!(line["close_code"], 4001);
    assert!(line["reason"].as_str().unwrap().contains("field `key`"), "{line}");
    assert!(!text.contains("not-the-key-at-all"), "the key reached the audit file: {text}");
}
