//! A slave whose terminal has finished copy seqs the bridge's journal does
//! not hold (a new or replaced journal, or one that lost its tail under
//! `journal_sync = "os"`): its Executor skips every copy at or below its
//! `last_seq` as already done, so the bridge must number the slave's copies
//! above it, over real sockets against the real binary.

mod support;

use support::{close_event_text, open_event_text, Bridge, Client, SLAVE_KEY, SLAVE_LOGIN, STATE_TEXT};
use tradebridge_core::protocol::{Ack, Copy, CopyAction, Message};

fn expect_copy(client: &mut Client) -> Copy {
    match client.recv() {
        Message::Copy(copy) => copy,
        other => panic!("expected a copy, got {other:?}"),
    }
}

fn slave_with_state(bridge: &Bridge, last_seq: u64) -> Client {
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", last_seq);
    slave.send(STATE_TEXT);
    slave.expect_alive();
    slave
}

#[test]
fn a_new_journal_numbers_copies_above_the_terminals_last_seq() {
    // Shows: on a fresh journal, a slave whose terminal finished up to seq 50 gets the next open as seq 51 and the close as 52 (before, they were numbered 1 and 2, dropped by the bridge as already sent and skipped by the Executor).
    let bridge = Bridge::start(&[]);
    let mut slave = slave_with_state(&bridge, 50);
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
    drop(slave_with_state(&bridge, 0));
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

#[test]
fn copies_the_journal_holds_are_not_sent_again_when_the_terminal_is_further() {
    // Shows: after a restart on a journal that holds copies 1 and 2 (but not the 3 and 4 the terminal also finished, as when an `os`-sync journal lost its tail), a slave saying last_seq 4 gets neither 1 nor 2 again (it finished them) and the next open as 5.
    let bridge = Bridge::start(&[("journal_sync", "\"group\""), ("journal_group_records", "64"), ("journal_group_ms", "2")]);
    let mut slave = slave_with_state(&bridge, 0);
    let (mut master, _) = bridge.login("master", 0);
    for seq in 1..=2 {
        master.send(&open_event_text(seq, 9000 + seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
        assert_eq!(expect_copy(&mut slave).seq, seq);
    }
    drop((slave, master));
    let bridge = bridge.restart();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 4);
    slave.expect_alive();
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(3, 9003));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 3 }));
    let next = expect_copy(&mut slave);
    assert_eq!((next.seq, next.pos), (5, 9003), "no copy the terminal finished came again");
}

#[test]
fn a_last_seq_no_bridge_could_reach_is_refused_by_name() {
    // Shows: a hello with last_seq above 2^62 (a damaged seq file; numbering above it would overflow) gets error bad_message naming `last_seq` and close 4002, and the bridge keeps serving: the same slave with a sane last_seq is welcomed.
    let bridge = Bridge::start(&[]);
    let mut client = bridge.connect();
    client.send(&support::hello_text(SLAVE_KEY, SLAVE_LOGIN, support::SERVER_NAME, "slave", u64::MAX));
    let text = client.expect_error(tradebridge_core::protocol::ErrorCode::BadMessage);
    assert!(text.contains("last_seq") && text.contains(&u64::MAX.to_string()), "{text}");
    client.expect_close(4002);
    let mut slave = slave_with_state(&bridge, 7);
    slave.expect_alive();
}
