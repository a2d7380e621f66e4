//! One byte flipped in the middle of the active journal segment (a master
//! event with acked records after it): the bridge refuses to start and
//! names the segment and offset, changing nothing; `tradebridge journal
//! check` shows the damage; `tradebridge journal quarantine` sets it aside
//! keeping every valid record, and the bridge starts with those records.

mod support;

use std::fs;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{expect_copy, slave_with_state, Bridge, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::config::Config;
use tradebridge_core::protocol::Message;
use tradebridge_core::record::{access_checked, MasterEventRecord};
use tradebridge_net::links::JOURNAL_KIND_MASTER_EVENT;
use tradebridge_net::router::open_journal;

/// Runs `tradebridge ARGUMENTS --config CONFIG` to its end; one still
/// running after 20 s (a `serve` that started) is killed and fails the test.
fn tradebridge(arguments: &[&str], config: &Path) -> Output {
    tradebridge_with_environment(arguments, config, &[])
}

/// [`tradebridge`] with environment variables added.
fn tradebridge_with_environment(arguments: &[&str], config: &Path, environment: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradebridge"))
        .envs(environment.iter().copied())
        .args(arguments)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tradebridge");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!("tradebridge {arguments:?} still running after 20 s; it printed {}", String::from_utf8_lossy(&output.stdout));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Every file of the journal directory and its bytes.
fn snapshot(directory: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(directory)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The segment and offset of the journal record holding master event `seq`.
fn locate_event(config: &Config, event_seq: u64) -> (PathBuf, u64) {
    let journal = open_journal(config).expect("the stopped bridge's journal opens");
    for entry in journal.iter_from(0) {
        if entry.kind != JOURNAL_KIND_MASTER_EVENT {
            continue;
        }
        let mut payload = rkyv::util::AlignedVec::<8>::new();
        payload.extend_from_slice(entry.payload);
        let record = access_checked::<MasterEventRecord>(&payload).expect("a master event");
        if record.seq.to_native() == event_seq {
            let (path, offset) = journal.location(entry.seq).expect("held");
            return (path.to_path_buf(), offset);
        }
    }
    panic!("master event {event_seq} not journaled");
}

#[test]
fn a_flipped_byte_in_the_active_segment_refuses_the_start_until_quarantined_and_loses_no_valid_record() {
    // Shows: the damage is named (file, offset) and nothing changes; journal check exits 1 naming it; quarantine keeps the records after it; the bridge then starts with the master's ack_seq and the follower's copies after the damage intact.
    let bridge = Bridge::start(&[]);
    let (mut master, _) = bridge.login("master", 0);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    let mut copies = Vec::new();
    for seq in 1..=6u64 {
        master.send(&support::open_event_text(seq, 10 + seq));
        match master.recv() {
            Message::Ack(ack) => assert_eq!(ack.seq, seq),
            other => panic!("expected the ack of event {seq}, got {other:?}"),
        }
        copies.push(expect_copy(&mut slave));
    }
    drop((master, slave));
    let mut bridge = bridge;
    bridge.kill();
    let config_path = bridge.directory.join("tradebridge.toml");
    let config = Config::load(&config_path).expect("config loads");
    let journal_directory = bridge.journal_directory();

    let (segment, offset) = locate_event(&config, 3);
    let file = fs::OpenOptions::new().read(true).write(true).open(&segment).expect("open segment");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset + 40).expect("read");
    file.write_all_at(&[byte[0] ^ 0x5A], offset + 40).expect("write");
    drop(file);
    let damaged = snapshot(&journal_directory);

    let refused = tradebridge(&["serve"], &config_path);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "the bridge refuses to start: {stderr}");
    let segment_name = segment.file_name().expect("name").to_string_lossy().into_owned();
    assert!(stderr.contains(&segment_name) && stderr.contains(&format!("offset {offset}")), "names the segment and offset: {stderr}");
    assert!(stderr.contains("journal quarantine"), "names the way out: {stderr}");
    println!("refused start:\n{}", stderr.lines().last().unwrap_or_default());
    assert_eq!(snapshot(&journal_directory), damaged, "a refused start changes no byte of the journal");

    let checked = tradebridge(&["journal", "check"], &config_path);
    let report = String::from_utf8_lossy(&checked.stdout);
    println!("journal check:\n{report}");
    assert_eq!(checked.status.code(), Some(1), "{report}");
    assert!(report.contains(&format!("DAMAGED at offset {offset}")) && report.contains(&segment_name), "{report}");
    assert_eq!(snapshot(&journal_directory), damaged, "check changes nothing");

    let quarantined = tradebridge(&["journal", "quarantine"], &config_path);
    let report = String::from_utf8_lossy(&quarantined.stdout);
    println!("journal quarantine:\n{report}");
    assert_eq!(quarantined.status.code(), Some(0), "{report}{}", String::from_utf8_lossy(&quarantined.stderr));
    assert!(report.contains(&format!("salvaged {}: cut at offset {offset}", segment.display())), "{report}");
    let evidence = journal_directory.join(format!("{segment_name}.at-{offset}.quarantine"));
    let original = damaged.iter().find(|(path, _)| *path == segment).expect("the segment").1.clone();
    assert_eq!(fs::read(&evidence).expect("the damaged segment is kept aside"), original);
    let checked = tradebridge(&["journal", "check"], &config_path);
    assert_eq!(checked.status.code(), Some(0), "{}", String::from_utf8_lossy(&checked.stdout));

    let bridge = Bridge::start_with_config_file(bridge.directory.clone(), config_path.clone());
    let (mut master, welcome) = bridge.login("master", 6);
    let Message::Welcome(welcome) = welcome else { unreachable!() };
    assert_eq!(welcome.ack_seq, 6, "events after the damaged one are still held");
    // The follower, as of its second copy, gets the four after it again:
    // the copies journaled after the damaged event were kept.
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", copies[1].seq);
    for expected in &copies[2..] {
        let copy = expect_copy(&mut slave);
        assert_eq!((copy.seq, copy.pos), (expected.seq, expected.pos));
    }
    master.send(&support::open_event_text(7, 17));
    assert!(matches!(master.recv(), Message::Ack(ack) if ack.seq == 7));
    let copy = expect_copy(&mut slave);
    assert_eq!((copy.seq, copy.pos), (copies[5].seq + 1, 17), "and copying goes on");
}

/// A bridge with `overrides` whose master has sent events 1 and 2, each
/// acked and copied to the slave; both sessions closed again.
fn bridge_with_two_copied_events(overrides: &[(&str, &str)]) -> Bridge {
    let bridge = Bridge::start(overrides);
    let (mut master, _) = bridge.login("master", 0);
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 0);
    for seq in 1..=2u64 {
        master.send(&support::open_event_text(seq, 10 + seq));
        assert!(matches!(master.recv(), Message::Ack(ack) if ack.seq == seq));
        expect_copy(&mut slave);
    }
    bridge
}

#[test]
fn an_engine_panic_on_one_record_is_quarantined_at_the_next_start_instead_of_a_crash_loop() {
    // Shows: the engine panicking on a master event (injected, test builds only) ends the bridge with 70 after the event is journaled; the restart, with the same fault still there, quarantines that record (file and reason kept, logged) and starts with the master's ack_seq including it; copying goes on; a later start skips the quarantined record without trying it again.
    const FAULT: (&str, &str) = ("TRADEBRIDGE_TEST_ENGINE_PANIC_EVENT_SEQ", "3");
    let bridge = bridge_with_two_copied_events(&[("metrics_listen", "\"127.0.0.1:0\"")]);
    let mut bridge = bridge.restart_with_environment(&[FAULT]);
    let (mut master, welcome) = bridge.login("master", 2);
    assert!(matches!(welcome, Message::Welcome(ref welcome) if welcome.ack_seq == 2), "{welcome:?}");
    master.send(&support::open_event_text(3, 13));
    assert_eq!(bridge.wait_exit(Duration::from_secs(10)), Some(70), "the live panic ends the process (its service manager restarts it)");
    drop(master);
    let quarantined = bridge.journal_directory().join("quarantined-records");
    assert!(!quarantined.exists());

    let bridge = bridge.restart_with_environment(&[FAULT]);
    let files: Vec<String> = fs::read_dir(&quarantined).expect("the record was quarantined").map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let reason_file = files.iter().find(|name| name.ends_with(".txt")).expect("the reason");
    let reason = fs::read_to_string(quarantined.join(reason_file)).expect("read the reason");
    assert!(reason.contains("injected engine fault on master event seq 3"), "{reason}");
    let (mut master, welcome) = bridge.login("master", 3);
    assert!(matches!(welcome, Message::Welcome(ref welcome) if welcome.ack_seq == 3), "the quarantined event stays acked: {welcome:?}");
    let mut slave = slave_with_state(&bridge, SLAVE_LOGIN, SLAVE_KEY, 2);
    master.send(&support::open_event_text(4, 14));
    assert!(matches!(master.recv(), Message::Ack(ack) if ack.seq == 4));
    let copy = expect_copy(&mut slave);
    assert_eq!((copy.seq, copy.pos), (3, 14), "copying goes on after the quarantined event");
    drop((master, slave));

    // Started again with the fault still there: the record is skipped, not
    // replayed (which would panic) and quarantined a second time.
    let mut bridge = bridge.restart_with_environment(&[FAULT]);
    let metrics_address = bridge.read_metrics_address();
    let (_master, welcome) = bridge.login("master", 4);
    assert!(matches!(welcome, Message::Welcome(ref welcome) if welcome.ack_seq == 4), "{welcome:?}");
    let metrics = support::http_get(&metrics_address, "/metrics");
    assert_eq!(support::metric(&metrics, "tradebridge_journal_records_quarantined_total"), 0.0, "skipped, not quarantined again: {metrics}");
    assert_eq!(fs::read_dir(&quarantined).expect("list").count(), 2);
}

#[test]
fn more_failed_records_than_the_bound_refuse_the_start_and_set_nothing_aside() {
    // Shows: with journal_records_quarantined_max = 0 a record the engine panics on refuses the start (exit 1, the bound named) instead of being set aside, and nothing is written to quarantined-records; without the fault the same journal replays that record and starts with it.
    const FAULT: (&str, &str) = ("TRADEBRIDGE_TEST_ENGINE_PANIC_EVENT_SEQ", "2");
    let mut bridge = bridge_with_two_copied_events(&[("journal_records_quarantined_max", "0")]);
    bridge.kill();
    let config_path = bridge.directory.join("tradebridge.toml");
    let refused = tradebridge_with_environment(&["serve"], &config_path, &[FAULT]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("above journal_records_quarantined_max = 0") && stderr.contains("nothing set aside"), "{stderr}");
    assert!(!bridge.journal_directory().join("quarantined-records").exists());
    let bridge = Bridge::start_with_config_file(bridge.directory.clone(), config_path);
    let (_master, welcome) = bridge.login("master", 2);
    assert!(matches!(welcome, Message::Welcome(ref welcome) if welcome.ack_seq == 2), "{welcome:?}");
}
