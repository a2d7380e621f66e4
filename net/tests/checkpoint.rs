//! Checkpoints against the real binary: a journal of the smallest size the
//! config allows (two 1 MiB segments) carries many times its size in
//! traffic, because each checkpoint releases the segments below it; after
//! SIGKILL the bridge restarts from the checkpoint and the journal above it.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::{close_event_text, expect_copy, http_get, metric, open_event_text, Bridge, Client, SLAVE_KEY, SLAVE_LOGIN, STATE_TEXT};
use tradebridge_core::protocol::{Ack, Copy, CopyAction, Message};

/// Events per batch: sent together, then their acks and copies read.
const BATCH_EVENTS: u64 = 100;

/// Batches before the crash: 8,000 events, each journaled with its copy and
/// its result (about 3 MiB per 4,000 events), several times what two 1 MiB
/// segments hold.
const BATCHES: u64 = 80;

/// What event `seq` is: odd seqs open position `(seq + 1) / 2`, even ones
/// close it. Slave 1 gets one copy per event, so its copy seq is the event
/// seq.
fn event_text(seq: u64) -> String {
    let pos = seq.div_ceil(2);
    if seq % 2 == 1 {
        open_event_text(seq, pos)
    } else {
        close_event_text(seq, pos, 0.1, 0.0)
    }
}

/// Checks that `copy` is the one event `copy.seq` makes for slave 1 (2x).
fn assert_copy_of_event(copy: &Copy) {
    let expected_action = if copy.seq % 2 == 1 { CopyAction::Open } else { CopyAction::Close };
    assert_eq!((copy.pos, copy.action), (copy.seq.div_ceil(2), expected_action), "copy {}", copy.seq);
    assert!((copy.volume - 0.2).abs() < 1e-9, "copy {} volume {}", copy.seq, copy.volume);
}

fn result_text(copy: &Copy) -> String {
    format!(
        r#"{{"t":"result","seq":{},"status":"filled","ticket":{},"price":1.08,"volume":{},"error":0,"msg":"","exec_ms":1}}"#,
        copy.seq, copy.pos, copy.volume
    )
}

/// (first seq by name, bytes) of each journal segment, and the checkpoint
/// seqs, in `directory`.
fn journal_files(directory: &Path) -> (Vec<(u64, u64)>, Vec<u64>) {
    let mut segments = Vec::new();
    let mut checkpoints = Vec::new();
    for entry in std::fs::read_dir(directory).expect("list the journal directory") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name.strip_suffix(".seg").and_then(|digits| digits.parse().ok()) {
            segments.push((seq, entry.metadata().expect("segment metadata").len()));
        } else if let Some(seq) = name.strip_prefix("checkpoint-").and_then(|rest| rest.strip_suffix(".bin")).and_then(|digits| digits.parse().ok()) {
            checkpoints.push(seq);
        }
    }
    segments.sort_unstable();
    (segments, checkpoints)
}

/// A bridge with `overrides` (and metrics) whose slave 1 copies frozen
/// (one copy per event, `assert_copy_of_event`), its slave logged in with
/// its state and its master logged in: the bridge, its journal directory,
/// its metrics address, the master and the slave.
fn start_trading(overrides: &[(&str, &str)]) -> (Bridge, std::path::PathBuf, String, Client, Client) {
    let mut overrides = overrides.to_vec();
    overrides.extend([("rate_limit_per_second", "100000"), ("rate_limit_burst", "100000"), ("hb_ms", "20000"), ("metrics_listen", "\"127.0.0.1:0\"")]);
    let mut bridge = Bridge::start_with_follow_extra(&overrides, "mode = \"frozen\"");
    let journal = bridge.journal_directory();
    let metrics_address = bridge.read_metrics_address();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 0);
    slave.send(STATE_TEXT);
    slave.expect_alive();
    let (master, _) = bridge.login("master", 0);
    (bridge, journal, metrics_address, master, slave)
}

/// Sends events `first..first + BATCH_EVENTS` together, reads each ack,
/// then each copy (once each, in seq order, the copy of its event) and
/// answers it with a result.
fn trade_batch(master: &mut Client, slave: &mut Client, first: u64) {
    let seqs = first..first + BATCH_EVENTS;
    seqs.clone().for_each(|seq| master.send(&event_text(seq)));
    for seq in seqs.clone() {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    for seq in seqs {
        let copy = expect_copy(slave);
        assert_eq!(copy.seq, seq, "copies arrive once each, in seq order");
        assert_copy_of_event(&copy);
        slave.send(&result_text(&copy));
    }
}

#[test]
fn checkpoints_keep_a_tiny_journal_bounded_and_a_killed_bridge_recovers_from_one() {
    // Shows: with a 2 MiB journal, 8,000 events (several times its size) are all acked and copied while the journal stays within 2 MiB and its segments are released after checkpoints; after SIGKILL mid-stream the restart (from a checkpoint: the journal no longer starts at seq 1) gives the right ack_seq, re-sends exactly the unconfirmed copies above the slave's last_seq, and routes nothing twice. Under every routing and every way a group is flushed: a checkpoint that holds the rings while its seq waits for an io_uring flush once made the inline router loop without giving the executor the turn that flush needed (6 of 10 runs hung under `uring`).
    for routing in ["inline", "thread"] {
        for journal_flush in ["auto", "uring", "thread", "router"] {
            eprintln!("routing {routing}, journal_flush {journal_flush}");
            checkpoints_bound_the_journal_and_a_restart_recovers(routing, journal_flush);
        }
    }
}

fn checkpoints_bound_the_journal_and_a_restart_recovers(routing: &str, journal_flush: &str) {
    let routing = format!("\"{routing}\"");
    let journal_flush = format!("\"{journal_flush}\"");
    let (bridge, journal, metrics_address, mut master, mut slave) = start_trading(&[
        ("journal_segment_bytes", "1048576"),
        ("journal_bytes_max", "2097152"),
        ("journal_sync", "\"group\""),
        ("routing", &routing),
        ("journal_flush", &journal_flush),
    ]);
    let mut segment_names_seen = BTreeSet::new();
    for batch in 0..BATCHES {
        trade_batch(&mut master, &mut slave, batch * BATCH_EVENTS + 1);
        let (segments, _) = journal_files(&journal);
        let bytes: u64 = segments.iter().map(|(_, bytes)| bytes).sum();
        assert!(bytes <= 2 << 20, "batch {batch}: the journal holds {bytes} bytes in {segments:?}");
        segment_names_seen.extend(segments.iter().map(|(seq, _)| *seq));
    }
    // Without releases the journal could never hold more than two segments.
    assert!(segment_names_seen.len() >= 4, "segments seen: {segment_names_seen:?}");
    let (segments, checkpoints) = journal_files(&journal);
    assert!(segments[0].0 > 1, "the journal was released below a checkpoint: {segments:?}");
    assert!(!checkpoints.is_empty(), "a checkpoint file is kept");
    // Two releases at least (four segments, two at a time), each after a checkpoint.
    let metrics = http_get(&metrics_address, "/metrics");
    let written = metric(&metrics, "tradebridge_checkpoints_written_total") as u64;
    assert!(written >= 2, "{metrics}");
    assert!(metric(&metrics, "tradebridge_journal_bytes") as u64 <= 2 << 20, "{metrics}");

    // Mid-stream: a batch is sent, half of its acks read; the slave takes
    // its copies but confirms (by result and by last_seq) only up to `confirmed`.
    let sent_last = (BATCHES + 1) * BATCH_EVENTS;
    let crash_first = BATCHES * BATCH_EVENTS + 1;
    (crash_first..=sent_last).for_each(|seq| master.send(&event_text(seq)));
    let acked_last = crash_first + BATCH_EVENTS / 2 - 1;
    for seq in crash_first..=acked_last {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    let confirmed = crash_first + 9;
    for seq in crash_first..=crash_first + 19 {
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.seq, seq);
        if seq <= confirmed {
            slave.send(&result_text(&copy));
        }
    }
    drop((slave, master));
    let bridge = bridge.restart();

    let (mut master, welcome) = bridge.login("master", 0);
    let Message::Welcome(welcome) = welcome else { panic!("expected welcome, got {welcome:?}") };
    assert!((acked_last..=sent_last).contains(&welcome.ack_seq), "ack_seq {} outside {acked_last}..={sent_last}", welcome.ack_seq);
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", confirmed);
    // Every copy of an event at or below ack_seq above `confirmed` is
    // re-sent once, in order.
    for seq in confirmed + 1..=welcome.ack_seq {
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.seq, seq, "replayed copies continue above last_seq");
        assert_copy_of_event(&copy);
    }
    slave.expect_alive();
    // As a Monitor does: everything above ack_seq again, and a few stored
    // events before it, which are acked again and not routed.
    for seq in welcome.ack_seq - 4..=sent_last + 2 {
        master.send(&event_text(seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    for seq in welcome.ack_seq + 1..=sent_last + 2 {
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.seq, seq, "no event was routed twice and none lost");
        assert_copy_of_event(&copy);
    }
    slave.expect_alive();
}

#[test]
fn a_corrupt_newest_checkpoint_falls_back_to_the_older_one_and_the_journal_above_it() {
    // Shows: two checkpoints are kept and the journal is released only below the older one, so after a byte of the newest is flipped a restart loads the older one, replays the journal above it, and acks, copies and copy seqs continue exactly; before, the journal below the newest was gone and the bridge could not start.
    let (mut bridge, journal, metrics_address, mut master, mut slave) = start_trading(&[
        ("journal_segment_bytes", "1048576"),
        ("journal_bytes_max", "16777216"),
        ("checkpoint_journal_bytes", "2097152"),
        ("journal_sync", "\"group\""),
    ]);
    let mut last = 0;
    // Bounded: 300 batches are about 22 MiB of journal, far past three checkpoints.
    for batch in 0..300 {
        trade_batch(&mut master, &mut slave, last + 1);
        last += BATCH_EVENTS;
        let written = metric(&http_get(&metrics_address, "/metrics"), "tradebridge_checkpoints_written_total") as u64;
        if written >= 3 {
            break;
        }
        assert!(batch < 299, "three checkpoints within 300 batches");
    }
    slave.expect_alive();
    drop((slave, master));
    bridge.kill();
    let (segments, checkpoints) = journal_files(&journal);
    assert_eq!(checkpoints.len(), 2, "two checkpoints kept: {checkpoints:?}");
    let (newest, older) = (checkpoints.iter().max().copied().unwrap(), checkpoints.iter().min().copied().unwrap());
    assert!(segments[0].0 > 1, "the journal was released below a checkpoint: {segments:?}");
    assert!(segments[0].0 <= older + 1, "the journal still holds every record above the older checkpoint {older}: {segments:?}");
    let newest_path = journal.join(format!("checkpoint-{newest:020}.bin"));
    let mut bytes = std::fs::read(&newest_path).expect("read the newest checkpoint");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&newest_path, &bytes).expect("write it back damaged");

    let mut bridge = bridge.restart();
    let metrics_address = bridge.read_metrics_address();
    let (mut master, welcome) = bridge.login("master", 0);
    let Message::Welcome(welcome) = welcome else { panic!("expected welcome, got {welcome:?}") };
    assert_eq!(welcome.ack_seq, last, "every acked event is known");
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", last);
    slave.expect_alive();
    for seq in last + 1..=last + 2 {
        master.send(&event_text(seq));
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.seq, seq, "copy seqs continue");
        assert_copy_of_event(&copy);
        slave.send(&result_text(&copy));
    }
    last += 2;
    // The next checkpoint keeps the one this start ran from (the older),
    // not the unreadable newest: that one goes.
    for _ in 0..300 {
        if metric(&http_get(&metrics_address, "/metrics"), "tradebridge_checkpoints_written_total") as u64 >= 1 {
            break;
        }
        trade_batch(&mut master, &mut slave, last + 1);
        last += BATCH_EVENTS;
    }
    slave.expect_alive();
    let (_, checkpoints_after) = journal_files(&journal);
    let mut checkpoints_after = checkpoints_after;
    checkpoints_after.sort_unstable();
    assert_eq!(checkpoints_after.len(), 2, "{checkpoints_after:?}");
    assert_eq!(checkpoints_after[0], older, "the checkpoint this start ran from is kept: {checkpoints_after:?}");
    assert!(!checkpoints_after.contains(&newest), "the unreadable one is removed: {checkpoints_after:?}");
}

#[test]
fn a_checkpoint_threshold_above_half_the_journal_keeps_one_checkpoint_and_never_fills_the_journal() {
    // Shows: with checkpoint_journal_bytes (8 MiB) above half of journal_bytes_max (12 MiB), two checkpoints' worth of journal cannot fit, so the journal is released below the newest checkpoint and traffic of several times the journal's size flows through; keeping two there filled the journal and stopped the router (found by review).
    let (_bridge, journal, metrics_address, mut master, mut slave) = start_trading(&[
        ("journal_segment_bytes", "1048576"),
        ("journal_bytes_max", "12582912"),
        ("checkpoint_journal_bytes", "8388608"),
        ("journal_sync", "\"group\""),
    ]);
    let mut last = 0;
    let mut written = 0;
    // Bounded: 800 batches are about 60 MiB of journal, five times its bound.
    for _ in 0..800 {
        trade_batch(&mut master, &mut slave, last + 1);
        last += BATCH_EVENTS;
        let metrics = http_get(&metrics_address, "/metrics");
        assert!(metric(&metrics, "tradebridge_journal_bytes") as u64 <= 12 << 20, "{metrics}");
        written = metric(&metrics, "tradebridge_checkpoints_written_total") as u64;
        if written >= 4 {
            break;
        }
    }
    assert!(written >= 4, "four checkpoints within 800 batches: {written}");
    let (segments, _) = journal_files(&journal);
    let bytes: u64 = segments.iter().map(|(_, bytes)| bytes).sum();
    assert!(bytes <= 12 << 20, "{segments:?}");
    slave.expect_alive();
}
