//! A slave whose terminal has finished copy seqs the bridge's journal does
//! not hold (a new or replaced journal, or one that lost its tail under
//! `journal_sync = "os"`): its Executor skips every copy at or below its
//! `last_seq` as already done, so the bridge must number the slave's copies
//! above it, over real sockets against the real binary.

mod support;

use support::{close_event_text, expect_copy, open_event_text, slave_with_state, Bridge, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::protocol::{Ack, CopyAction, Message};

#[test]
fn a_new_journal_numbers_copies_above_the_terminals_last_seq() {
    // Shows: on a fresh journal, a slave whose terminal finished up to seq 50 gets the next open as seq 51 and the close as 52 (before, they were numbered 1 and 2, dropped by the bridge as already sent and skipped by the Executor).
    let bridge = Bridge::start(&[]);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 50);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let open = expect_copy(&mut slave);
    assert_eq!((open.seq, open.pos, open.action), (51, 9001, CopyAction::Open));
    master.send(&close_event_text(2, 9001, 0.1, 0.0));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    let close = expect_copy(&mut slave);
    assert_eq!((close.seq, close.pos, close.action), (52, 9001, CopyAction::Close));
}

#[test]
fn copies_made_before_the_slaves_first_hello_are_renumbered_and_delivered() {
    // Shows: copies this bridge made for a slave it had not yet seen since its journal began (seq 1 and 2 here) are re-issued above the terminal's last_seq (41, 42) when it says hello with last_seq 40, in their order, and the numbering survives a kill -9 and restart: the next copy is 43.
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    // The slave's state once, with last_seq 0, as a terminal that had never traded; then it goes away.
    drop(slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0));
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    // The terminal comes back having finished seq 40 elsewhere (a journal it no longer shares with this bridge).
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 40);
    let renumbered: Vec<(u64, u64)> = (0..2).map(|_| expect_copy(&mut slave)).map(|copy| (copy.seq, copy.pos)).collect();
    assert_eq!(renumbered, vec![(41, 9001), (42, 9002)]);
    slave.expect_alive();
    drop((slave, master));
    let bridge = bridge.restart();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 42);
    slave.expect_alive();
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(3, 9003));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    let next = expect_copy(&mut slave);
    assert_eq!((next.seq, next.pos), (43, 9003), "the renumbering was journaled");
}

/// The Executor's `result` for copy `seq`: filled.
fn result_text(seq: u64) -> String {
    format!(r#"{{"t":"result","seq":{seq},"status":"filled","ticket":{},"price":1.08125,"volume":0.2,"error":0,"msg":"","exec_ms":38}}"#, 55_500 + seq)
}

#[test]
fn copies_the_journal_holds_results_for_are_not_sent_again_when_the_terminal_is_further() {
    // Shows: after a restart on a journal that holds copies 1 to 3 and the results of 1 and 2 (not the copy 4 the terminal also finished, as when an `os`-sync journal lost its tail), a slave saying last_seq 4 gets neither 1 nor 2 again; copy 3, whose result the journal lacks, comes again as 5 (the Executor finds that open by its tag), and the next open is 6.
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let (mut master, _) = bridge.login("master", 0);
    for seq in 1..=2 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
        assert_eq!(expect_copy(&mut slave).seq, seq);
        slave.send(&result_text(seq));
    }
    slave.expect_alive();
    // Both results were in the router's ring before this event was sent, so
    // they are journaled by the time it is acked.
    master.send(&open_event_text(3, 9003));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    assert_eq!(expect_copy(&mut slave).seq, 3);
    drop((slave, master));
    let bridge = bridge.restart();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 4);
    let again = expect_copy(&mut slave);
    assert_eq!((again.seq, again.pos), (5, 9003), "only the copy without a result comes again");
    slave.expect_alive();
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(4, 9004));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 4 }));
    let next = expect_copy(&mut slave);
    assert_eq!((next.seq, next.pos), (6, 9004));
}

#[test]
fn copies_made_before_a_restart_and_the_first_hello_are_not_lost() {
    // Shows: copies made for a slave that had not said hello to this journal, then a restart, then its hello with last_seq 40: both copies come as 41 and 42 (found in review: the first cut-off re-issued only copies made since the last start).
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    drop(slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0));
    let (mut master, _) = bridge.login("master", 0);
    for seq in 1..=2 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    drop(master);
    let bridge = bridge.restart();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 40);
    let renumbered: Vec<(u64, u64)> = (0..2).map(|_| expect_copy(&mut slave)).map(|copy| (copy.seq, copy.pos)).collect();
    assert_eq!(renumbered, vec![(41, 9001), (42, 9002)]);
    slave.expect_alive();
}

#[test]
fn a_second_jump_ahead_moves_the_numbering_but_issues_nothing_again() {
    // Shows: after a first rebase (last_seq 40, the waiting copy re-issued as 41), the same slave saying last_seq 100 in the same run (a copied seq file, or a second terminal) moves the numbering to 101 without issuing its waiting copies a second time, so a slave cannot make the bridge re-issue over and over.
    let bridge = Bridge::start(&[]);
    drop(slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0));
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 40);
    assert_eq!(expect_copy(&mut slave).seq, 41);
    drop(slave);
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 100);
    slave.expect_alive();
    master.send(&open_event_text(2, 9002));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 2 }));
    let next = expect_copy(&mut slave);
    assert_eq!((next.seq, next.pos), (101, 9002), "nothing issued again before the next copy");
}

#[test]
fn a_last_seq_no_bridge_could_reach_is_refused_by_name() {
    // Shows: a slave hello with last_seq above 2^62 (a damaged seq file; numbering above it could overflow) gets error bad_message naming `last_seq` and close 4002, and the bridge keeps serving: the same slave with a sane last_seq is welcomed.
    let bridge = Bridge::start(&[]);
    let mut client = bridge.connect();
    client.send(&support::hello_text(SLAVE_KEY, SLAVE_LOGIN, support::SERVER_NAME, "slave", u64::MAX));
    let text = client.expect_error(tradebridge_core::protocol::ErrorCode::BadMessage);
    assert!(text.contains("last_seq") && text.contains(&u64::MAX.to_string()), "{text}");
    client.expect_close(4002);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 7);
    slave.expect_alive();
}
