//! Master events over real sockets against the real binary: each is acked
//! once the journal holds it, duplicates are acked again without being
//! journaled twice, and `welcome` reports the durable `ack_seq`, also after
//! kill -9 and a restart on the same journal.

mod support;

use std::path::Path;

use support::{open_event_text, Bridge};
use tradebridge_core::journal::{Journal, JournalOptions};
use tradebridge_core::protocol::{Ack, Message};
use tradebridge_core::record::{access_checked, MasterEventRecord};
use tradebridge_net::links::JOURNAL_KIND_MASTER_EVENT;

/// The `seq` of every master event record in the journal at `directory`, in
/// order. The bridge must be stopped first (the journal is locked).
fn journaled_event_seqs(directory: &Path) -> Vec<u64> {
    let (journal, _) = Journal::open(directory, JournalOptions::default()).expect("open the journal");
    journal
        .iter_from(journal.first_seq())
        .filter(|entry| entry.kind == JOURNAL_KIND_MASTER_EVENT)
        .map(|entry| access_checked::<MasterEventRecord>(entry.payload).expect("valid record").seq.to_native())
        .collect()
}

fn ack_seq_of(welcome: Message) -> u64 {
    match welcome {
        Message::Welcome(welcome) => welcome.ack_seq,
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[test]
fn event_is_acked_under_every_record_sync() {
    // Shows: with journal_sync = every_record, each event gets `ack` with its own seq, in order.
    let bridge = Bridge::start(&[("journal_sync", "\"every_record\"")]);
    let (mut master, _) = bridge.login("master", 0);
    for seq in 1..=3 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
}

#[test]
fn event_is_acked_under_group_sync() {
    // Shows: with group commit, a lone event is still acked once the group interval makes it durable (journal tick).
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    for seq in 2..=20 {
        master.send(&open_event_text(seq, 9000 + seq));
    }
    for seq in 2..=20 {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
}

#[test]
fn duplicate_seq_is_acked_again_and_journaled_once() {
    // Shows: an event at or below the stored seq is acked again, and the journal holds each seq exactly once.
    let mut bridge = Bridge::start(&[]);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    bridge.kill();
    assert_eq!(journaled_event_seqs(&bridge.journal_directory()), vec![1, 2]);
}

#[test]
fn welcome_reports_the_durable_ack_seq() {
    // Shows: after events 1..=3 are acked, a reconnecting master gets ack_seq 3 in `welcome`.
    let bridge = Bridge::start(&[]);
    let (mut master, welcome) = bridge.login("master", 0);
    assert_eq!(ack_seq_of(welcome), 0);
    for seq in 1..=3 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    let (_master, welcome) = bridge.login("master", 0);
    assert_eq!(ack_seq_of(welcome), 3);
}

#[test]
fn kill_9_and_restart_keeps_ack_seq_and_dedup() {
    // Shows: after kill -9 and a restart on the same journal, welcome's ack_seq is the last acked seq, a re-sent event is acked but not journaled again, and the next seq is journaled.
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    let (mut master, _) = bridge.login("master", 0);
    for seq in 1..=5 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    let mut bridge = bridge.restart();
    let (mut master, welcome) = bridge.login("master", 0);
    assert_eq!(ack_seq_of(welcome), 5);
    master.send(&open_event_text(5, 9005));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 5 }));
    master.send(&open_event_text(6, 9006));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 6 }));
    bridge.kill();
    assert_eq!(journaled_event_seqs(&bridge.journal_directory()), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn slave_cannot_send_events() {
    // Shows: an `event` from a slave is a bad frame (error, session stays up), never journaled.
    let bridge = Bridge::start(&[]);
    let (mut slave, _) = bridge.login("slave", 0);
    slave.send(&open_event_text(1, 9001));
    let message = slave.expect_error(tradebridge_core::protocol::ErrorCode::BadMessage);
    assert!(message.contains("event"), "{message}");
    slave.expect_alive();
}

#[test]
fn sigterm_closes_sessions_with_1001_and_exits_0_keeping_the_journal() {
    // Shows: on SIGTERM every session is closed with 1001, the process exits with code 0, and a restart on the same journal reports the acked events in ack_seq.
    let mut bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    let (mut master, _) = bridge.login("master", 0);
    let (mut slave, _) = bridge.login("slave", 0);
    for seq in 1..=3 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    bridge.terminate();
    master.expect_close(1001);
    // The slave first receives the copies of the three opens.
    loop {
        match slave.next() {
            support::Received::Message(Message::Copy(_)) => continue,
            support::Received::Close(code) => {
                assert_eq!(code, Some(1001));
                break;
            }
            other => panic!("expected copies then close 1001, got {other:?}"),
        }
    }
    assert_eq!(bridge.wait_exit(std::time::Duration::from_secs(10)), Some(0));
    let bridge = bridge.restart();
    let (_master, welcome) = bridge.login("master", 0);
    assert_eq!(ack_seq_of(welcome), 3);
}
