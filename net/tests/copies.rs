//! The data path over real sockets against the real binary: a master and two
//! slaves; opens and closes become `copy` frames with the follow's volumes,
//! per-slave seqs, replay on reconnect, and expiry.

mod support;

use std::time::Duration;

use support::{close_event_text, expect_copy, open_event_text, slave_with_state, Bridge, SLAVE2_KEY, SLAVE2_LOGIN, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::protocol::{Ack, Copy, CopyAction, Message, Side};

fn assert_volume(copy: &Copy, expected: f64) {
    assert!((copy.volume - expected).abs() < 1e-9, "copy {} volume {} expected {expected}", copy.seq, copy.volume);
}

#[test]
fn open_partial_close_close_reach_both_slaves_with_their_volumes() {
    // Shows: an open, a partial close and the final close reach both slaves as copies with seq 1, 2, 3 and the multiplier's volumes (2x and 0.5x).
    let bridge = Bridge::start(&[]);
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let (open1, open2) = (expect_copy(&mut slave1), expect_copy(&mut slave2));
    for copy in [&open1, &open2] {
        assert_eq!((copy.seq, copy.action, copy.side, copy.master, copy.pos), (1, CopyAction::Open, Side::Buy, 100001, 9001));
        assert_eq!(copy.symbol, "EURUSD");
        assert_eq!(copy.comment, "tc:100001:9001");
        assert!(copy.expires_ms > 0, "an open expires");
    }
    assert_volume(&open1, 0.2);
    assert_volume(&open2, 0.05);
    master.send(&close_event_text(2, 9001, 0.04, 0.06));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    let (partial1, partial2) = (expect_copy(&mut slave1), expect_copy(&mut slave2));
    assert_eq!((partial1.seq, partial1.action), (2, CopyAction::Close));
    assert_eq!((partial2.seq, partial2.action), (2, CopyAction::Close));
    assert_volume(&partial1, 0.08);
    assert_volume(&partial2, 0.02);
    master.send(&close_event_text(3, 9001, 0.06, 0.0));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    let (close1, close2) = (expect_copy(&mut slave1), expect_copy(&mut slave2));
    assert_eq!((close1.seq, close1.action), (3, CopyAction::Close));
    assert_volume(&close1, 0.12);
    assert_volume(&close2, 0.03);
    assert_eq!(close1.expires_ms, 0, "a close never expires");
}

#[test]
fn every_routing_and_shard_count_copies_in_order_and_restarts_on_the_journal() {
    // Shows: with the routing core inline (a task on shard 0) and on its own thread, with one shard and with two (the second shard then hands its events across threads), and each way of flushing a group (io_uring on the router's executor, a flush thread, msync on the router's thread; "uring" with the router on a thread falls back to the flush thread), a burst of opens reaches both slaves in order with consecutive seqs, every event is acked, and a restart on the same journal under the other routing acks the stored seq again in welcome: the topology changes no meaning.
    for (routing, other, shards, flush) in
        [("inline", "thread", "1", "uring"), ("inline", "thread", "2", "router"), ("thread", "inline", "1", "thread"), ("thread", "inline", "2", "uring")]
    {
        let routing_value = format!("\"{routing}\"");
        let flush_value = format!("\"{flush}\"");
        let bridge = Bridge::start(&[("routing", &routing_value), ("shards", shards), ("journal_sync", "\"group\""), ("journal_flush", &flush_value)]);
        let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
        let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
        let (mut master, _) = bridge.login("master", 0);
        let events = 50u64;
        for seq in 1..=events {
            master.send(&open_event_text(seq, 9_000 + seq));
        }
        let mut acked = 0;
        while acked < events {
            match master.recv() {
                Message::Ack(Ack { seq }) => {
                    assert!(seq > acked, "{routing}/{shards}: ack {seq} after {acked}");
                    acked = seq;
                }
                other => panic!("{routing}/{shards}: expected acks, got {other:?}"),
            }
        }
        for seq in 1..=events {
            for slave in [&mut slave1, &mut slave2] {
                let copy = expect_copy(slave);
                assert_eq!((copy.seq, copy.pos), (seq, 9_000 + seq), "{routing}/{shards}");
            }
        }
        drop((slave1, slave2, master));
        let config = std::fs::read_to_string(bridge.directory.join("tradebridge.toml")).expect("the test configuration");
        assert!(config.contains(&format!("routing = {routing_value}")), "{config}");
        std::fs::write(bridge.directory.join("tradebridge.toml"), config.replace(&format!("routing = {routing_value}"), &format!("routing = \"{other}\""))).unwrap();
        let bridge = bridge.restart();
        let (_, welcome) = bridge.login("master", 0);
        let Message::Welcome(welcome) = welcome else { panic!("expected welcome") };
        assert_eq!(welcome.ack_seq, events, "{routing}/{shards} then {other}");
    }
}

#[test]
fn duplicate_event_is_not_routed_twice() {
    // Shows: a re-sent event (same seq) is acked again but gives the slave no second copy.
    let bridge = Bridge::start(&[]);
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).seq, 1);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    let next = expect_copy(&mut slave1);
    assert_eq!((next.seq, next.pos), (2, 9002), "the copy after the duplicate is the next event's");
}

#[test]
fn reconnecting_slave_gets_missed_copies_exactly_once() {
    // Shows: copies made while a slave was away are replayed after `welcome` above its last_seq, each once, and nothing it finished is re-sent.
    let bridge = Bridge::start(&[]);
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).seq, 1);
    drop(slave1);
    for seq in 2..=3 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    let (mut slave1, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 1);
    let replayed: Vec<(u64, u64)> = (0..2).map(|_| expect_copy(&mut slave1)).map(|copy| (copy.seq, copy.pos)).collect();
    assert_eq!(replayed, vec![(2, 9002), (3, 9003)]);
    slave1.expect_alive();
    master.send(&open_event_text(4, 9004));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 4 }));
    assert_eq!(expect_copy(&mut slave1).seq, 4, "live copies continue the sequence with no repeat");
}

#[test]
fn expired_open_is_not_replayed() {
    // Shows: an open whose expires_ms passed while the slave was away is not replayed, while a close made meanwhile is.
    let bridge = Bridge::start_with_follow_extra(&[], "ttl_ms = 100");
    let slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    drop(slave2);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    master.send(&close_event_text(2, 9001, 0.1, 0.0));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    std::thread::sleep(Duration::from_millis(400));
    let (mut slave2, _) = bridge.login_as(SLAVE2_LOGIN, SLAVE2_KEY, "slave", 0);
    let close = expect_copy(&mut slave2);
    assert_eq!((close.seq, close.action), (2, CopyAction::Close), "the open (seq 1) expired and is skipped");
    slave2.expect_alive();
}

#[test]
fn slave_results_are_accepted() {
    // Shows: a `result` for a copy is taken without error and the session goes on.
    let bridge = Bridge::start(&[]);
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let copy = expect_copy(&mut slave1);
    slave1.send(&format!(
        r#"{{"t":"result","seq":{},"status":"filled","ticket":55501,"price":1.08125,"volume":0.2,"error":0,"msg":"","exec_ms":38}}"#,
        copy.seq
    ));
    slave1.expect_alive();
}

#[test]
fn kill_9_and_restart_resends_unfinished_copies_and_routes_nothing_twice() {
    // Shows: after kill -9 and a restart on the same journal, the master's ack_seq is right, the slave gets exactly the copy above its last_seq, a re-sent event makes no copy, and a later close still finds the copied position (engine state rebuilt from the journal).
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    let mut slave1 = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    assert_eq!(expect_copy(&mut slave1).seq, 1);
    slave1.send(r#"{"t":"result","seq":1,"status":"filled","ticket":55501,"price":1.08125,"volume":0.2,"error":0,"msg":"","exec_ms":38}"#);
    slave1.expect_alive();
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    assert_eq!(expect_copy(&mut slave1).seq, 2);
    drop((slave1, master));
    let bridge = bridge.restart();
    let (mut master, welcome) = bridge.login("master", 0);
    assert!(matches!(welcome, Message::Welcome(ref welcome) if welcome.ack_seq == 2), "{welcome:?}");
    let (mut slave1, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 1);
    let replayed = expect_copy(&mut slave1);
    assert_eq!((replayed.seq, replayed.pos, replayed.action), (2, 9002, CopyAction::Open));
    slave1.expect_alive();
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    master.send(&close_event_text(3, 9001, 0.1, 0.0));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    let close = expect_copy(&mut slave1);
    assert_eq!((close.seq, close.pos, close.action), (3, 9001, CopyAction::Close), "the re-sent event made no copy; the close continues the seq");
    assert_volume(&close, 0.2);
}

/// A master `snapshot` listing `positions` (EURUSD buys of 0.1 lot).
fn snapshot_text(positions: &[u64]) -> String {
    let listed: Vec<String> = positions
        .iter()
        .map(|pos| format!(r#"{{"pos":{pos},"symbol":"EURUSD","side":"buy","volume":0.1,"price":1.08123,"sl":0,"tp":0,"magic":0}}"#))
        .collect();
    format!(r#"{{"t":"snapshot","positions":[{}],"balance":10000.0,"equity":10000.0,"currency":"USD"}}"#, listed.join(","))
}

#[test]
fn snapshot_sent_before_an_event_never_closes_that_events_position() {
    // Shows: a snapshot immediately followed by an open on the same connection is reconciled first, so the older snapshot never closes the newer position on the slave.
    let bridge = Bridge::start(&[]);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    let opened_max: u64 = 30;
    for pos in 1..=opened_max {
        let earlier: Vec<u64> = (1..pos).collect();
        master.send(&snapshot_text(&earlier));
        master.send(&open_event_text(pos, pos));
    }
    for seq in 1..=opened_max {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    master.send(&open_event_text(opened_max + 1, 999));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: opened_max + 1 }));
    let mut opened = Vec::new();
    loop {
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.action, CopyAction::Open, "copy {} acts on pos {}: a stale snapshot closed it", copy.seq, copy.pos);
        if copy.pos == 999 {
            break;
        }
        opened.push(copy.pos);
    }
    assert_eq!(opened, (1..=opened_max).collect::<Vec<_>>());
}

#[test]
fn minimal_config_of_the_core_issue_serves_and_copies() {
    // Shows: the minimal configuration form independent tests generate (only listen, shards, journal_dir; no state from the slave) runs the bridge, which acks an open and copies it at the multiplier.
    let directory = support::temp_directory("minimal");
    let hash = |key: &str| -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
    };
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
shards = 0                      # 0 = one per core
journal_dir = "{journal}"

[[account]]
login = 100000
server = "Probe-Server"
role = "master"                 # or "slave"
key_sha256 = "{master_hash}"

[[account]]
login = 150000
server = "Probe-Server"
role = "slave"
key_sha256 = "{slave_hash}"

[[follow]]
slave = 150000
master = 100000
lot = {{ mode = "multiplier", value = 2.0 }}
"#,
        journal = directory.join("journal").display(),
        master_hash = hash("probe-master-key"),
        slave_hash = hash("probe-slave-key"),
    );
    let config_path = directory.join("minimal.toml");
    std::fs::write(&config_path, config).expect("write the config");
    let bridge = Bridge::start_with_config_file(directory, config_path);
    let mut slave = bridge.connect();
    slave.send(&support::hello_text("probe-slave-key", 150000, "Probe-Server", "slave", 0));
    assert!(matches!(slave.recv(), Message::Welcome(_)));
    let mut master = bridge.connect();
    master.send(&support::hello_text("probe-master-key", 100000, "Probe-Server", "master", 0));
    assert!(matches!(master.recv(), Message::Welcome(welcome) if welcome.ack_seq == 0));
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let copy = expect_copy(&mut slave);
    assert_eq!((copy.seq, copy.action, copy.master, copy.pos, copy.symbol.as_str()), (1, CopyAction::Open, 100000, 9001, "EURUSD"));
    assert_volume(&copy, 0.2);
}

#[test]
fn a_superseded_connections_snapshot_never_closes_positions() {
    // Shows: a snapshot queued behind a backlog on an old master connection (every_record sync: one flush per record) reaches the router after a new connection of the same login took over; it is dropped, so its stale view (no positions) closes none of the positions the events opened.
    // hb_ms is raised: the test client sends no heartbeat while it waits for
    // 501 copies behind ~1,000 msyncs, which took over 3 s (3 x the suite's
    // 1 s heartbeat, so close 4008) with a build writing beside it.
    // The router runs on its own thread: the test needs it still busy with
    // the backlog when the new login is welcomed. Inline, the router holds
    // the shard's thread through each pass, so it reaches the snapshot
    // before the new login gets in, and the snapshot is then the live
    // connection's, in order after its events (correctly applied).
    let bridge = Bridge::start(&[
        ("journal_sync", "\"every_record\""),
        ("rate_limit_per_second", "100000"),
        ("rate_limit_burst", "100000"),
        ("hb_ms", "20000"),
        ("routing", "\"thread\""),
    ]);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut old, _) = bridge.login("master", 0);
    let opened: u64 = 500;
    for seq in 1..=opened {
        old.send(&open_event_text(seq, seq));
    }
    // Sent last on the old connection: a view older than the events above
    // once they are applied.
    old.send(&snapshot_text(&[]));
    let (mut new, welcome) = bridge.login("master", 0);
    let Message::Welcome(welcome) = welcome else { panic!("expected welcome, got {welcome:?}") };
    drop(old);
    // As a Monitor does: re-send everything above ack_seq (the old session
    // stopped reading once superseded; what it pushed already is acked again
    // and not routed twice).
    for seq in welcome.ack_seq + 1..=opened {
        new.send(&open_event_text(seq, seq));
    }
    new.send(&open_event_text(opened + 1, 999));
    let mut opens = 0;
    loop {
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.action, CopyAction::Open, "copy {} acts on pos {}: a superseded connection's snapshot closed it", copy.seq, copy.pos);
        opens += 1;
        if copy.pos == 999 {
            break;
        }
    }
    assert_eq!(opens, opened + 1);
}
