//! A journal that ends after a master event but before the copies it
//! caused (the bridge stopped between the two appends, with the event
//! durable and maybe acked) must not lose those copies at restart.

mod support;

use std::time::Duration;

use support::{open_event_text, slave_with_state, Bridge, MASTER_LOGIN, SLAVE2_KEY, SLAVE2_LOGIN, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::config::Config;
use tradebridge_core::protocol::{self, CopyAction, Message};
use tradebridge_core::record::{MasterEventMeta, MasterEventRecord, RecordEncoder};
use tradebridge_net::links::JOURNAL_KIND_MASTER_EVENT;
use tradebridge_net::router::open_journal;

/// Appends master event `seq` (an open of `pos`) to the stopped bridge's
/// journal, as the router would, and nothing after it.
fn append_event_alone(bridge: &Bridge, seq: u64, pos: u64) {
    let config = Config::load(bridge.directory.join("tradebridge.toml")).expect("the test config loads");
    let mut journal = open_journal(&config).expect("the journal reopens");
    let Ok(Message::Event(event)) = protocol::parse(open_event_text(seq, pos).as_bytes()) else { panic!("an event") };
    let wall_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    let meta = MasterEventMeta { master_login: MASTER_LOGIN, received_ms: wall_ms, received_ns: 0, shard_id: 0, connection_id: 1 };
    let record = MasterEventRecord::from_event(event, meta);
    let mut encoder = RecordEncoder::new(64 * 1024);
    let encoded = encoder.encode(&record).expect("encodes");
    journal.append(JOURNAL_KIND_MASTER_EVENT, encoded.bytes, wall_ms).expect("append");
    journal.flush().expect("flush");
}

#[test]
fn copies_missing_after_the_last_event_are_issued_at_restart() {
    // Shows: an event journaled without its copies (a stop between the appends) is acked at restart and each follower gets its copy once, with the next seq.
    let bridge = Bridge::start(&[]);
    let (mut master, _) = bridge.login("master", 0);
    // Both slaves' states are journaled first, so the engine sizes their copies.
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut slave2 = slave_with_state(&bridge, SLAVE2_LOGIN, SLAVE2_KEY, 0);
    master.send(&open_event_text(1, 11));
    let first = match slave.recv() {
        Message::Copy(copy) => copy,
        other => panic!("expected a copy, got {other:?}"),
    };
    assert!(matches!(slave2.recv(), Message::Copy(_)));
    drop((master, slave, slave2));
    bridge.terminate();
    let mut bridge = bridge;
    assert_eq!(bridge.wait_exit(Duration::from_secs(10)), Some(0));
    append_event_alone(&bridge, 2, 22);
    let bridge = bridge.restart();
    let (_master, welcome) = bridge.login("master", 0);
    let Message::Welcome(welcome) = welcome else { unreachable!() };
    assert_eq!(welcome.ack_seq, 2, "the event journaled alone is known");
    for (login, key) in [(SLAVE_LOGIN, SLAVE_KEY), (SLAVE2_LOGIN, SLAVE2_KEY)] {
        let (mut slave, _) = bridge.login_as(login, key, "slave", first.seq);
        let copy = match slave.recv() {
            Message::Copy(copy) => copy,
            other => panic!("slave {login}: expected the missing copy, got {other:?}"),
        };
        assert_eq!((copy.seq, copy.pos, copy.action), (first.seq + 1, 22, CopyAction::Open), "slave {login}");
        slave.send(r#"{"t":"ping"}"#);
        assert_eq!(slave.recv(), Message::Pong, "slave {login}: the copy comes once");
    }
}
