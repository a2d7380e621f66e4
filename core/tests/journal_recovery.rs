//! Recovery and retention of the journal, driven through its public API on
//! real files in temporary directories. Crashes are simulated by dropping
//! the journal without a flush (the mapped pages stay in the page cache, as
//! after kill -9) and by cutting or corrupting the files between runs.

mod journal_support;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journal_support::TempDirectory;
use tradebridge_core::journal::layout::{record_bytes, records_per_segment_max};
use tradebridge_core::journal::options::SEGMENT_BYTES_MAX;
use tradebridge_core::journal::{
    inspect, FullLimit, GroupFlush, Journal, JournalError, JournalOptions, RecordDefect, Recovery, SealedCorruption, SkippedSeqs,
    SegmentReport, SegmentState, SyncPolicy,
};


/// Small segments so that tests roll over often; `Os` so that tests do not
/// wait on the disk unless they are about flushing.
fn small_options() -> JournalOptions {
    JournalOptions {
        segment_bytes: 4096,
        record_bytes_max: 1024,
        sync: SyncPolicy::Os,
        ..JournalOptions::default()
    }
}

/// Deterministic payload of `length` bytes, different for each `seq`.
fn payload(seq: u64, length: usize) -> Vec<u8> {
    (0..length).map(|index| (seq as usize * 31 + index * 7 + 1) as u8).collect()
}

/// Kind stored with record `seq`, so that kinds are checked too.
fn kind_of(seq: u64) -> u16 {
    (seq % 7) as u16
}

/// Payload length of record `seq` in the varied-size tests: 0..1000 bytes.
fn varied_length(seq: u64) -> usize {
    (seq as usize * 389) % 1000
}

fn open(directory: &Path, options: JournalOptions) -> (Journal, Recovery) {
    Journal::open(directory, options).expect("journal opens")
}

fn append_varied(journal: &mut Journal, count: u64) {
    for _ in 0..count {
        let seq = journal.next_seq();
        let appended = journal.append(kind_of(seq), &payload(seq, varied_length(seq)), seq).expect("append");
        assert_eq!(appended, seq);
    }
}

fn assert_record(journal: &Journal, seq: u64, length: usize) {
    let entry = journal.read(seq).unwrap_or_else(|| panic!("seq {seq} readable"));
    assert_eq!((entry.seq, entry.kind), (seq, kind_of(seq)));
    assert_eq!(entry.payload, payload(seq, length).as_slice(), "payload of seq {seq}");
}

fn segment_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(directory)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

/// Writes records 1..=4 of 16 bytes and a fifth of `last_length`; returns the
/// segment file and the fifth record's offset and length.
fn journal_with_last_record(directory: &Path, last_length: usize) -> (PathBuf, u64, u64) {
    let (mut journal, _) = open(directory, small_options());
    for seq in 1..=4 {
        journal.append(kind_of(seq), &payload(seq, 16), 0).expect("append");
    }
    journal.append(kind_of(5), &payload(5, last_length), 0).expect("append");
    let (path, offset) = journal.location(5).expect("record 5 held");
    (path.to_path_buf(), offset, record_bytes(last_length as u32))
}

/// After a damaged fifth record: exactly 1..=expected_last survive, the next
/// append gets the next sequence, and a further reopen sees it cleanly.
fn check_survivors_then_append(directory: &Path, recovery: &Recovery, journal: Journal, expected_last: u64) {
    let mut journal = journal;
    assert_eq!(recovery.last_seq, expected_last);
    assert_eq!(recovery.records_count, expected_last);
    for seq in 1..=4 {
        assert_record(&journal, seq, 16);
    }
    assert_eq!(journal.read(5).is_some(), expected_last == 5);
    let next = journal.append(kind_of(expected_last + 1), &payload(expected_last + 1, 100), 0).expect("append");
    assert_eq!(next, expected_last + 1);
    drop(journal);
    let (journal, again) = open(directory, small_options());
    assert_eq!(again.truncation, None, "the second recovery finds a clean log");
    assert_eq!(again.last_seq, expected_last + 1);
    assert_record(&journal, expected_last + 1, 100);
}

// Cutting the file at every byte of its last record keeps exactly the records whose bytes are all present.
#[test]
fn cut_at_every_offset_of_the_last_record() {
    // 40 fills the record exactly; 37 leaves 3 bytes of padding.
    for last_length in [40usize, 37] {
        let record_length = record_bytes(last_length as u32);
        for cut in 0..record_length {
            let directory = TempDirectory::new("cut");
            let (path, offset, _) = journal_with_last_record(&directory.0, last_length);
            let file = OpenOptions::new().write(true).open(&path).expect("open segment");
            file.set_len(offset + cut).expect("cut");
            drop(file);

            let (journal, recovery) = open(&directory.0, small_options());
            // The record is whole once its header and payload are present;
            // padding is re-extended as zeros, which is what it held.
            let whole = cut >= 24 + last_length as u64;
            assert_eq!(recovery.reextended_bytes, 4096 - offset - cut, "cut {cut}");
            match (&recovery.truncation, whole, cut) {
                (None, true, _) | (None, false, 0) => {}
                (Some(truncation), false, _) => {
                    assert_eq!(truncation.offset, offset, "cut {cut}");
                    assert!(matches!(truncation.defect, RecordDefect::Torn { .. }), "cut {cut}: {truncation:?}");
                    assert_eq!(truncation.path, path);
                }
                (truncation, _, _) => panic!("cut {cut} of length {last_length}: unexpected {truncation:?}"),
            }
            check_survivors_then_append(&directory.0, &recovery, journal, if whole { 5 } else { 4 });
        }
    }
}

// Flipping any one byte of the last record drops that record and only it.
#[test]
fn flipped_byte_at_every_offset_of_the_last_record() {
    for last_length in [40usize, 37] {
        let record_length = record_bytes(last_length as u32);
        for flipped in 0..record_length {
            let directory = TempDirectory::new("flip");
            let (path, offset, _) = journal_with_last_record(&directory.0, last_length);
            flip_byte(&path, offset + flipped);
            let inspection = inspect(&directory.0).expect("inspect");
            assert!(matches!(inspection.segments[0].state, SegmentState::TornTail { offset: found, .. } if found == offset), "byte {flipped}: {inspection:?}");
            assert!(!inspection.refuses_open());

            let (journal, recovery) = open(&directory.0, small_options());
            let truncation = recovery.truncation.clone().unwrap_or_else(|| panic!("byte {flipped} flip detected"));
            assert_eq!(truncation.offset, offset, "byte {flipped}");
            assert!(truncation.bytes_zeroed > 0 && truncation.bytes_zeroed <= record_length);
            check_survivors_then_append(&directory.0, &recovery, journal, 4);
        }
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).expect("open segment");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset).expect("read byte");
    byte[0] ^= 0xFF;
    file.write_all_at(&byte, offset).expect("write byte");
}

// Records of varied sizes roll over several segments and read back by seq and by iteration from any seq.
#[test]
fn roll_over_read_and_iterate_across_segments() {
    let directory = TempDirectory::new("rollover");
    let (mut journal, recovery) = open(&directory.0, small_options());
    assert!(recovery.created);
    append_varied(&mut journal, 120);
    assert!(journal.segments_count() >= 10, "{} segments", journal.segments_count());
    assert_eq!(journal.stats().segments_created_count, u64::from(journal.segments_count()) - 1);
    check_all_records(&journal, 1, 120);
    drop(journal);

    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.first_seq, recovery.last_seq, recovery.truncation), (1, 120, None));
    assert_eq!(recovery.segments_count as usize, segment_files(&directory.0).len());
    check_all_records(&journal, 1, 120);
}

fn check_all_records(journal: &Journal, first_seq: u64, last_seq: u64) {
    for seq in first_seq..=last_seq {
        assert_record(journal, seq, varied_length(seq));
        let seqs: Vec<u64> = journal.iter_from(seq).map(|entry| entry.seq).collect();
        assert_eq!(seqs, (seq..=last_seq).collect::<Vec<u64>>(), "iteration from {seq}");
    }
    for entry in journal.iter_from(0) {
        assert_eq!(entry.payload, payload(entry.seq, varied_length(entry.seq)).as_slice());
    }
    assert!(journal.read(last_seq + 1).is_none());
    assert!(journal.read(0).is_none());
    assert_eq!(journal.iter_from(last_seq + 1).count(), 0);
}

// Retention deletes only whole segments below the mark; deleted seqs read None; reopen continues the sequence.
#[test]
fn retention_deletes_only_whole_segments_below_the_mark() {
    let directory = TempDirectory::new("retention");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 80);
    let segments_before = journal.segments_count();
    let mark = 40;
    let (mark_path, _) = journal.location(mark).expect("mark held");
    let mark_path = mark_path.to_path_buf();

    let deleted = journal.truncate_before(mark).expect("truncate");
    assert_eq!(journal.segments_count(), segments_before - deleted);
    assert_eq!(segment_files(&directory.0).first(), Some(&mark_path), "the mark's segment is kept");
    let first_seq = journal.first_seq();
    assert!(first_seq <= mark && first_seq > 1, "first_seq {first_seq}");
    assert!((1..first_seq).all(|seq| journal.read(seq).is_none()));
    check_all_records(&journal, first_seq, 80);
    assert_eq!(journal.iter_from(1).next().map(|entry| entry.seq), Some(first_seq));
    drop(journal);

    let (mut journal, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.first_seq, recovery.last_seq), (first_seq, 80));
    journal.truncate_before(u64::MAX).expect("release everything");
    assert_eq!(journal.segments_count(), 1, "the active segment stays");
    assert_eq!(journal.next_seq(), 81);
    drop(journal);

    let (mut journal, recovery) = open(&directory.0, small_options());
    assert_eq!(recovery.last_seq, 80);
    assert_eq!(journal.append(1, b"after retention", 0).expect("append"), 81);
}

// Retention bounds refuse the roll-over with a counted Full error, write nothing, and clear once records are released.
#[test]
fn full_journal_refuses_until_records_are_released() {
    let directory = TempDirectory::new("full");
    let options = JournalOptions { segments_max: 3, ..small_options() };
    let (mut journal, _) = open(&directory.0, options);
    let error = loop {
        let seq = journal.next_seq();
        match journal.append(1, &payload(seq, 500), 0) {
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    assert!(matches!(error, JournalError::Full { limit: FullLimit::Segments, value: 4, value_max: 3 }), "{error}");
    assert!(error.to_string().contains("segments_max"), "{error}");
    assert_eq!(journal.stats().full_count, 1);
    let last_seq = journal.last_seq();
    assert!(journal.append(1, &payload(0, 500), 0).is_err());
    assert_eq!((journal.last_seq(), journal.stats().full_count), (last_seq, 2));

    journal.truncate_before(last_seq + 1).expect("release");
    assert_eq!(journal.append(1, &payload(0, 500), 0).expect("room again"), last_seq + 1);
    drop(journal);

    let bytes_bound = JournalOptions { retained_bytes_max: 8192, ..small_options() };
    let (mut journal, _) = open(&directory.0, bytes_bound);
    let error = (0..100).find_map(|_| journal.append(1, &payload(0, 500), 0).err()).expect("bounded");
    assert!(matches!(error, JournalError::Full { limit: FullLimit::RetainedBytes, .. }), "{error}");
}

// The index bound refuses appends once the index would pass index_bytes_max.
#[test]
fn index_bound_refuses_appends() {
    let directory = TempDirectory::new("index");
    // Two segments of empty records: 2 * 4 * (4096 - 64) / 24 = 1344 bytes.
    let options = JournalOptions { index_bytes_max: 1344, ..small_options() };
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=336 {
        assert_eq!(journal.append(0, b"", 0).expect("fits"), seq);
    }
    let error = journal.append(0, b"", 0).expect_err("index full");
    assert!(matches!(error, JournalError::Full { limit: FullLimit::IndexBytes, value: 1348, .. }), "{error}");
    assert_eq!(journal.index_bytes(), 1344);
}

// Group flushed inline: durable_seq advances after records_max appends and on a tick once interval_ms passed, not before.
#[test]
fn group_policy_advances_durable_seq_by_count_and_by_tick() {
    let directory = TempDirectory::new("group");
    let options = JournalOptions {
        sync: SyncPolicy::Group { records_max: 4, interval_ms: 10 },
        group_flush: GroupFlush::Appender,
        ..small_options()
    };
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=3 {
        journal.append(1, &payload(seq, 50), 0).expect("append");
        assert_eq!(journal.durable_seq(), 0, "after {seq} appends");
    }
    journal.append(1, &payload(4, 50), 0).expect("append");
    assert_eq!((journal.durable_seq(), journal.synced_seq()), (4, 4));

    journal.append(1, &payload(5, 50), 100).expect("append");
    journal.append(1, &payload(6, 50), 105).expect("append");
    assert_eq!(journal.tick(109).expect("tick"), 4, "oldest unflushed is 9 ms old");
    assert_eq!(journal.tick(110).expect("tick"), 6, "oldest unflushed is 10 ms old");
    assert_eq!(journal.stats().flushes_count, 2);

    journal.append(1, &payload(7, 50), 200).expect("append");
    journal.append(1, &payload(8, 50), 215).expect("append");
    assert_eq!(journal.durable_seq(), 8, "an append that finds the interval passed flushes");
    journal.append(1, &payload(9, 50), 300).expect("append");
    assert_eq!(journal.flush().expect("flush"), 9);
    assert_eq!(journal.durable_seq(), 9);
}

/// Waits (at most 10 s) until the flush thread has told `flushes` flushes.
fn wait_for_flushes(notified: &AtomicU64, flushes: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while notified.load(Ordering::Acquire) < flushes {
        assert!(Instant::now() < deadline, "the flush thread told {} of {flushes} flushes in 10 s", notified.load(Ordering::Acquire));
        std::thread::sleep(Duration::from_millis(1));
    }
}

// Group with the flush thread: a complete group is handed over, not flushed by the append; durable_seq moves only once that flush completed and a tick collected it (the notify callback says when); appends meanwhile form the next group, which waits for the flush in flight; flush() waits for it and flushes the rest; every record survives a reopen.
#[test]
fn group_policy_with_the_flush_thread_is_durable_once_the_flush_completes() {
    let directory = TempDirectory::new("group-thread");
    let options =
        JournalOptions { sync: SyncPolicy::Group { records_max: 4, interval_ms: 10 }, group_flush: GroupFlush::Thread, ..small_options() };
    let (mut journal, _) = open(&directory.0, options);
    let notified = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&notified);
    journal.set_flush_notify(Arc::new(move || {
        counter.fetch_add(1, Ordering::AcqRel);
    }));
    for seq in 1..=4 {
        journal.append(1, &payload(seq, 50), 0).expect("append");
    }
    assert!(journal.is_flushing(), "the complete group was handed to the flush thread");
    assert_eq!(journal.durable_seq(), 0, "not durable before the flush is collected");
    wait_for_flushes(&notified, 1);
    assert!(journal.has_flush_outcome());
    assert_eq!(journal.tick(0).expect("tick"), 4);
    assert!(!journal.is_flushing());

    journal.append(1, &payload(5, 50), 100).expect("append");
    journal.append(1, &payload(6, 50), 105).expect("append");
    assert_eq!(journal.tick(109).expect("tick"), 4, "oldest unflushed is 9 ms old");
    assert!(!journal.is_flushing());
    assert_eq!(journal.tick(110).expect("tick"), 4, "handed over at 10 ms, not yet durable");
    assert!(journal.is_flushing());
    // Appended while that flush may run: the next group, not in it.
    journal.append(1, &payload(7, 50), 111).expect("append");
    wait_for_flushes(&notified, 2);
    assert_eq!(journal.tick(111).expect("tick"), 6, "the flush covered the group it was handed, no more");
    journal.close_group().expect("close the group of 7");
    assert!(journal.is_flushing());
    journal.append(1, &payload(8, 50), 112).expect("append");
    assert_eq!(journal.stats().flushes_count, 2);
    assert_eq!(journal.flush().expect("flush"), 8, "flush syncs 7 and 8 itself, without waiting for the thread");
    assert_eq!((journal.durable_seq(), journal.synced_seq()), (8, 8));
    // flush() collects the thread's flush of 7 first when it has already
    // completed (then it made 7 durable and counts); otherwise it is
    // overtaken.
    let after_flush = journal.stats().flushes_count;
    assert!(after_flush == 3 || after_flush == 4, "flush()'s own, and the thread's of 7 if it had completed: {after_flush}");
    wait_for_flushes(&notified, 3);
    assert_eq!(journal.tick(113).expect("tick"), 8, "the thread's later outcome for 7 does not move durable_seq back");
    assert!(!journal.is_flushing());
    assert_eq!(journal.stats().flushes_count, after_flush, "an overtaken flush made nothing durable and is not counted");
    drop(journal);
    let (journal, recovery) = open(&directory.0, options);
    assert_eq!((recovery.last_seq, journal.durable_seq()), (8, 8));
}

// Group flushed by the owner: a closed group becomes one request (files and upto_seq) that the owner takes once; no second request while it runs; durable_seq moves only at complete_flush; a roll-over meanwhile syncs on the appender's thread and the late completion does not move durable_seq back; a failed flush poisons the journal.
#[test]
fn group_policy_flushed_by_the_owner_is_durable_on_completion_and_poisoned_by_a_failure() {
    let directory = TempDirectory::new("group-owner");
    let options =
        JournalOptions { sync: SyncPolicy::Group { records_max: 2, interval_ms: 10 }, group_flush: GroupFlush::Owner, ..small_options() };
    let (mut journal, _) = open(&directory.0, options);
    journal.append(1, &payload(1, 50), 0).expect("append");
    assert!(journal.take_flush_request().is_none(), "the group is open");
    journal.append(1, &payload(2, 50), 0).expect("append");
    let request = journal.take_flush_request().expect("a complete group is a request");
    assert_eq!((request.upto_seq, request.files.len()), (2, 1));
    assert!(journal.take_flush_request().is_none(), "handed out once");
    journal.append(1, &payload(3, 50), 1).expect("append");
    journal.append(1, &payload(4, 50), 1).expect("append");
    assert_eq!(journal.tick(20).expect("tick"), 0, "no second request while the first runs");
    assert!(journal.take_flush_request().is_none());
    for (_, file) in &request.files {
        file.sync_data().expect("the owner's sync");
    }
    journal.complete_flush(Ok(request.upto_seq)).expect("complete");
    assert_eq!(journal.durable_seq(), 2);
    assert_eq!(journal.tick(20).expect("tick"), 2, "the full group of 3 and 4 is due now");
    let request = journal.take_flush_request().expect("the next group");
    assert_eq!(request.upto_seq, 4);
    // Records of 500 bytes roll the 4096-byte segment over within a few appends; roll-over syncs on this thread.
    for seq in 5..=12 {
        journal.append(1, &payload(seq, 500), 30).expect("append");
    }
    assert!(journal.segments_count() > 1);
    assert!(journal.durable_seq() > 4, "roll-over flushed the previous segment itself, past the group in flight");
    let durable = journal.durable_seq();
    journal.complete_flush(Ok(request.upto_seq)).expect("the late completion");
    assert_eq!(journal.durable_seq(), durable, "a late completion does not move durable_seq back");
    journal.close_group().expect("close");
    let request = journal.take_flush_request().expect("the open group");
    assert_eq!(request.upto_seq, 12);
    let source = std::io::Error::other("injected");
    let failed = journal.complete_flush(Err(JournalError::Io { path: directory.0.clone(), operation: "fdatasync", source }));
    assert!(matches!(failed, Err(JournalError::Io { .. })), "{failed:?}");
    assert!(matches!(journal.append(1, &payload(13, 50), 40), Err(JournalError::Poisoned)));
}

// EveryRecord: durable_seq equals last_seq after each append, across roll-overs.
#[test]
fn every_record_policy_is_durable_after_each_append() {
    let directory = TempDirectory::new("every");
    let options = JournalOptions { sync: SyncPolicy::EveryRecord, ..small_options() };
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=20 {
        journal.append(kind_of(seq), &payload(seq, varied_length(seq)), seq).expect("append");
        assert_eq!((journal.durable_seq(), journal.synced_seq()), (seq, seq));
    }
    assert!(journal.segments_count() > 1);
    assert_eq!(journal.stats().flushes_count, 20);
    // Retention under a flushing policy also syncs the directory.
    assert!(journal.truncate_before(15).expect("truncate") >= 1);
    let first_seq = journal.first_seq();
    drop(journal);
    let (_, recovery) = open(&directory.0, options);
    assert_eq!((recovery.first_seq, recovery.last_seq, recovery.truncation), (first_seq, 20, None));
}

// Os: durable_seq counts every append (process crashes only); synced_seq moves only on flush.
#[test]
fn os_policy_reports_appends_durable_and_syncs_on_flush() {
    let directory = TempDirectory::new("os");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 30);
    assert_eq!((journal.durable_seq(), journal.synced_seq()), (30, 0));
    assert_eq!(journal.tick(u64::MAX).expect("tick"), 30);
    assert_eq!(journal.stats().flushes_count, 0);
    assert_eq!(journal.flush().expect("flush"), 30, "flush covers records in sealed segments too");
    assert_eq!(journal.synced_seq(), 30);
}

// Dropping the journal without a flush (as kill -9 would) loses no appended record under any policy.
#[test]
fn dropped_without_flush_recovers_every_record() {
    let policies = [SyncPolicy::Os, SyncPolicy::Group { records_max: 1000, interval_ms: 10_000 }];
    for policy in policies {
        let directory = TempDirectory::new("crash");
        let options = JournalOptions { sync: policy, ..small_options() };
        let (mut journal, _) = open(&directory.0, options);
        append_varied(&mut journal, 50);
        assert!(journal.durable_seq() < 50 || policy == SyncPolicy::Os);
        drop(journal);
        let (journal, recovery) = open(&directory.0, options);
        assert_eq!((recovery.last_seq, recovery.truncation.clone()), (50, None), "{policy:?}");
        assert_eq!(journal.durable_seq(), 50, "recovered records are synced at open");
        check_all_records(&journal, 1, 50);
    }
}

// A corrupt record in a middle segment is an error naming the file and offset; the option truncates, quarantines, and continues above every number issued.
#[test]
fn corrupt_middle_segment_is_an_error_or_quarantined() {
    let directory = TempDirectory::new("middle");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 60);
    let files = segment_files(&directory.0);
    assert!(files.len() >= 4);
    let middle = &files[1];
    let corrupt_seq = journal.iter_from(0).find(|entry| journal.location(entry.seq).unwrap().0 == middle.as_path()).unwrap().seq + 1;
    let (_, offset) = journal.location(corrupt_seq).expect("held");
    drop(journal);
    flip_byte(middle, offset + 30);
    let inspection = inspect(&directory.0).expect("inspect");
    let states: Vec<bool> = inspection.segments.iter().map(|segment| segment.state.refuses_open()).collect();
    assert_eq!(states.iter().filter(|refused| **refused).count(), 1, "{inspection:?}");
    assert!(matches!(&inspection.segments[1].state, SegmentState::Damaged { offset: found, .. } if *found == offset), "{inspection:?}");

    let error = Journal::open(&directory.0, small_options()).err().expect("corrupt sealed segment refused");
    let JournalError::CorruptRecord { path, offset: error_offset, defect } = &error else {
        panic!("expected CorruptRecord, got {error}");
    };
    assert_eq!((path, *error_offset), (middle, offset));
    assert!(matches!(defect, RecordDefect::ChecksumMismatch { .. }));
    let message = error.to_string();
    assert!(message.contains(&middle.display().to_string()) && message.contains(&format!("offset {offset}")), "{message}");
    assert_eq!(segment_files(&directory.0), files, "a refused open changes nothing");

    let quarantine = JournalOptions { sealed_corruption: SealedCorruption::TruncateAndQuarantine, ..small_options() };
    let (mut journal, recovery) = open(&directory.0, quarantine);
    // Records corrupt_seq..=60 were issued once: the journal continues at 61.
    assert_eq!(recovery.skipped_seqs, Some(SkippedSeqs { from_seq: corrupt_seq, next_seq: 61 }));
    assert_eq!((recovery.last_seq, recovery.records_count), (60, corrupt_seq - 1));
    assert_eq!(recovery.quarantined_segments.len(), files.len() - 2);
    assert_eq!(recovery.truncation.as_ref().map(|truncation| truncation.offset), Some(offset));
    assert_eq!(journal.append(1, b"continues", 0).expect("append"), 61);
    drop(journal);
    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.last_seq, recovery.truncation), (61, None), "the recorded skip is accepted, quarantined files ignored");
    assert_eq!(recovery.skipped_seqs, None, "this open skipped nothing");
    assert!((corrupt_seq..=60).all(|seq| journal.read(seq).is_none()));
    let held: Vec<u64> = journal.iter_from(0).map(|entry| entry.seq).collect();
    let expected: Vec<u64> = (1..corrupt_seq).chain([61]).collect();
    assert_eq!(held, expected, "iteration steps over the skip");
    assert_eq!(journal.iter_from(corrupt_seq).next().map(|entry| entry.seq), Some(61));
}

// A damaged header in the oldest segment quarantines every segment; the journal continues above every number issued, and reopens without the option.
#[test]
fn quarantine_from_the_first_segment_never_issues_a_number_twice() {
    let directory = TempDirectory::new("quarantine-first");
    let options = JournalOptions {
        sealed_corruption: SealedCorruption::TruncateAndQuarantine,
        ..roll_over_options(SyncPolicy::EveryRecord)
    };
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=10 {
        journal.append(kind_of(seq), &payload(seq, 1000), 0).expect("append");
    }
    assert_eq!(journal.segments_count(), 4, "segments 1, 4, 7, 10");
    drop(journal);
    flip_byte(&directory.0.join(format!("{:020}.seg", 1)), 20);
    let (mut journal, recovery) = open(&directory.0, options);
    assert_eq!(recovery.quarantined_segments.len(), 4);
    // The unreadable first segment is bounded by its successor's name; the
    // others scan cleanly, the last ending after record 10.
    assert_eq!(recovery.skipped_seqs, Some(SkippedSeqs { from_seq: 1, next_seq: 11 }));
    assert_eq!((recovery.first_seq, recovery.last_seq, recovery.records_count), (11, 10, 0));
    assert_eq!(journal.append(kind_of(11), &payload(11, 5), 0).expect("append"), 11);
    drop(journal);
    let (mut journal, recovery) = open(&directory.0, roll_over_options(SyncPolicy::EveryRecord));
    assert_eq!((recovery.first_seq, recovery.last_seq, recovery.skipped_seqs), (11, 11, None));
    assert_record(&journal, 11, 5);
    assert_eq!(journal.append(kind_of(12), &payload(12, 5), 0).expect("append"), 12);
}

// A damaged header in the last segment leaves its numbers unknown: the journal continues above all that the largest segment could hold.
#[test]
fn quarantined_last_segment_with_unreadable_header_is_bounded_by_the_largest_segment() {
    let directory = TempDirectory::new("quarantine-last");
    let options = JournalOptions {
        sealed_corruption: SealedCorruption::TruncateAndQuarantine,
        ..roll_over_options(SyncPolicy::EveryRecord)
    };
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=5 {
        journal.append(kind_of(seq), &payload(seq, 1000), 0).expect("append");
    }
    drop(journal);
    flip_byte(&directory.0.join(format!("{:020}.seg", 4)), 20);
    let (mut journal, recovery) = open(&directory.0, options);
    let records_max = records_per_segment_max(SEGMENT_BYTES_MAX);
    assert_eq!(recovery.skipped_seqs, Some(SkippedSeqs { from_seq: 4, next_seq: 4 + records_max }));
    assert_eq!((recovery.records_count, recovery.last_seq), (3, 3 + records_max));
    assert_eq!(journal.append(1, b"after", 0).expect("append"), 4 + records_max);
    drop(journal);
    let (journal, recovery) = open(&directory.0, roll_over_options(SyncPolicy::EveryRecord));
    assert_eq!((recovery.records_count, recovery.last_seq), (4, 4 + records_max));
    let held: Vec<u64> = journal.iter_from(2).map(|entry| entry.seq).collect();
    assert_eq!(held, vec![2, 3, 4 + records_max]);
}

// A missing middle segment is reported as a sequence gap naming the segment after it.
#[test]
fn missing_middle_segment_is_a_sequence_gap() {
    let directory = TempDirectory::new("gap");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 60);
    drop(journal);
    let files = segment_files(&directory.0);
    fs::remove_file(&files[1]).expect("remove");
    let inspection = inspect(&directory.0).expect("inspect");
    let refused: Vec<&SegmentReport> = inspection.segments.iter().filter(|segment| segment.state.refuses_open()).collect();
    assert_eq!(refused.len(), 1, "only the segment after the hole: {inspection:?}");
    assert!(refused[0].path == files[2] && matches!(refused[0].state, SegmentState::Gap { .. }), "{inspection:?}");
    let error = Journal::open(&directory.0, small_options()).err().expect("gap refused");
    assert!(matches!(&error, JournalError::SequenceGap { path, .. } if path == &files[2]), "{error}");
}

// A record corrupted in the middle of the last segment, with valid records after it, is refused (named by file and offset, nothing changed); Salvage keeps every valid record around it and copies the file aside; TruncateAndQuarantine drops them, and those bytes never come back.
#[test]
fn a_corrupt_record_in_the_middle_of_the_last_segment_is_refused_then_salvaged() {
    for flipped in [0u64, 8, 12, 20, 24, 40, 63] {
        let directory = TempDirectory::new("middle-last");
        let (mut journal, _) = open(&directory.0, small_options());
        for seq in 1..=6 {
            journal.append(kind_of(seq), &payload(seq, 40), 0).expect("append");
        }
        let (path, offset) = journal.location(3).expect("held");
        let path = path.to_path_buf();
        drop(journal);
        flip_byte(&path, offset + flipped);
        let damaged = fs::read(&path).expect("read segment");

        let inspection = inspect(&directory.0).expect("inspect");
        assert!(inspection.refuses_open(), "byte {flipped}: {inspection:?}");
        let SegmentState::Damaged { offset: found, runs, .. } = &inspection.segments[0].state else {
            panic!("byte {flipped}: {inspection:?}");
        };
        assert_eq!((*found, runs.as_slice(), inspection.segments[0].records), (offset, &[(4, 3)][..], 2));
        assert_eq!(fs::read(&path).expect("read"), damaged, "inspection changes no byte");
        let error = Journal::open(&directory.0, small_options()).err().unwrap_or_else(|| panic!("byte {flipped}: damage with valid records after it refused"));
        let JournalError::CorruptRecord { path: error_path, offset: error_offset, .. } = &error else {
            panic!("byte {flipped}: expected CorruptRecord, got {error}");
        };
        assert_eq!((error_path, *error_offset), (&path, offset), "byte {flipped}");
        assert_eq!(fs::read(&path).expect("read"), damaged, "byte {flipped}: a refused open changes no byte");
        assert_eq!(segment_files(&directory.0), vec![path.clone()]);

        let salvage = JournalOptions { sealed_corruption: SealedCorruption::Salvage, ..small_options() };
        let (mut journal, recovery) = open(&directory.0, salvage);
        assert_eq!(recovery.salvaged.len(), 1, "byte {flipped}");
        let salvaged = &recovery.salvaged[0];
        assert_eq!((&salvaged.path, salvaged.offset, salvaged.records_kept), (&path, offset, 3));
        assert_eq!(salvaged.lost_seqs, vec![(3, 4)]);
        assert_eq!(fs::read(&salvaged.evidence).expect("evidence"), damaged, "the file as found is kept aside");
        assert_eq!((recovery.last_seq, recovery.records_count, recovery.truncation.clone()), (6, 5, None));
        for seq in [1, 2, 4, 5, 6] {
            assert_record(&journal, seq, 40);
        }
        assert!(journal.read(3).is_none());
        assert_eq!(journal.append(kind_of(7), &payload(7, 40), 0).expect("append"), 7);
        drop(journal);
        let inspection = inspect(&directory.0).expect("inspect");
        assert!(!inspection.refuses_open() && inspection.segments.iter().all(|segment| segment.state == SegmentState::Clean), "{inspection:?}");
        assert_eq!(inspection.quarantined_files, vec![salvaged.evidence.clone()]);
        let (journal, recovery) = open(&directory.0, small_options());
        assert_eq!((recovery.last_seq, recovery.truncation, recovery.salvaged.len()), (7, None, 0), "byte {flipped}: clean once salvaged");
        let held: Vec<u64> = journal.iter_from(0).map(|entry| entry.seq).collect();
        assert_eq!(held, vec![1, 2, 4, 5, 6, 7]);
    }

    // The truncating option drops the valid records after the damage, for good.
    let directory = TempDirectory::new("stale");
    let (mut journal, _) = open(&directory.0, small_options());
    for seq in 1..=6 {
        journal.append(kind_of(seq), &payload(seq, 40), 0).expect("append");
    }
    let (path, offset) = journal.location(3).expect("held");
    let path = path.to_path_buf();
    drop(journal);
    flip_byte(&path, offset + 24);
    let truncate = JournalOptions { sealed_corruption: SealedCorruption::TruncateAndQuarantine, ..small_options() };
    let (mut journal, recovery) = open(&directory.0, truncate);
    let truncation = recovery.truncation.expect("truncated");
    assert_eq!((recovery.last_seq, truncation.offset, truncation.bytes_zeroed), (2, offset, 4 * 64));
    // New records of other sizes land where the stale ones were.
    for seq in 3..=8 {
        journal.append(kind_of(seq), &payload(seq, 8), 0).expect("append");
    }
    drop(journal);
    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.last_seq, recovery.truncation), (8, None));
    for seq in 3..=8 {
        assert_record(&journal, seq, 8);
    }
}

// Salvage in a sealed segment: the valid records after the damage move to a segment of their own between it and the next, and the chain reopens cleanly.
#[test]
fn salvage_in_a_sealed_segment_keeps_the_chain() {
    let directory = TempDirectory::new("middle-sealed");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 60);
    let files = segment_files(&directory.0);
    assert!(files.len() >= 4);
    let middle = files[1].clone();
    let seqs: Vec<u64> = journal.iter_from(0).map(|entry| entry.seq).filter(|seq| journal.location(*seq).unwrap().0 == middle.as_path()).collect();
    assert!(seqs.len() >= 3, "{seqs:?}");
    let corrupt_seq = seqs[1];
    let (_, offset) = journal.location(corrupt_seq).expect("held");
    drop(journal);
    flip_byte(&middle, offset + 4);
    let salvage = JournalOptions { sealed_corruption: SealedCorruption::Salvage, ..small_options() };
    let (journal, recovery) = open(&directory.0, salvage);
    assert!(recovery.quarantined_segments.is_empty(), "{recovery:?}");
    assert_eq!(recovery.salvaged.len(), 1);
    assert_eq!(recovery.salvaged[0].lost_seqs, vec![(corrupt_seq, corrupt_seq + 1)]);
    assert_eq!(recovery.salvaged[0].records_kept, seqs.len() as u64 - 2);
    assert_eq!((recovery.last_seq, recovery.records_count), (60, 59));
    for seq in (1..=60).filter(|seq| *seq != corrupt_seq) {
        assert_record(&journal, seq, varied_length(seq));
    }
    drop(journal);
    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.last_seq, recovery.records_count, recovery.salvaged.len()), (60, 59, 0));
    assert_eq!(journal.iter_from(0).count(), 59);
}

// Reservations publish in place, abandon without a trace, and refuse a commit beyond their capacity.
#[test]
fn reservation_commit_abandon_and_overrun() {
    let directory = TempDirectory::new("reserve");
    let (mut journal, _) = open(&directory.0, small_options());
    let mut reservation = journal.reserve(kind_of(1), 100).expect("reserve");
    assert!(reservation.payload_mut().iter().all(|byte| *byte == 0));
    reservation.payload_mut()[..100].fill(0xAB);
    reservation.payload_mut()[..60].copy_from_slice(&payload(1, 60));
    assert_eq!(reservation.commit(60, 0).expect("commit"), 1);
    assert_record(&journal, 1, 60);

    let mut abandoned = journal.reserve(1, 200).expect("reserve");
    abandoned.payload_mut().fill(0xCD);
    drop(abandoned);
    let mut overrun = journal.reserve(1, 16).expect("reserve");
    overrun.payload_mut().fill(0xEF);
    let error = overrun.commit(17, 0).expect_err("beyond capacity");
    assert!(matches!(error, JournalError::ReservationExceeded { payload_bytes: 17, capacity_bytes: 16 }));
    assert_eq!(journal.append(kind_of(2), &payload(2, 10), 0).expect("append"), 2);
    drop(journal);

    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.last_seq, recovery.truncation), (2, None), "unused reservation bytes were zeroed");
    assert_record(&journal, 1, 60);
    assert_record(&journal, 2, 10);
}

// Payloads up to payload_bytes_max fit, one byte more is refused with both sizes named.
#[test]
fn record_size_bound() {
    let directory = TempDirectory::new("size");
    let (mut journal, _) = open(&directory.0, small_options());
    let largest = small_options().payload_bytes_max() as usize;
    assert_eq!(journal.append(1, &vec![1u8; largest], 0).expect("fits"), 1);
    let error = journal.append(1, &vec![1u8; largest + 1], 0).expect_err("too large");
    assert!(matches!(error, JournalError::RecordTooLarge { payload_bytes: 1001, payload_bytes_max: 1000 }));
    assert!(journal.reserve(1, largest as u32 + 1).is_err());
}

// A nested directory that does not exist is created and the first record gets seq 1.
#[test]
fn missing_directory_is_created() {
    let directory = TempDirectory::new("fresh");
    let nested = directory.0.join("a").join("b");
    let (mut journal, recovery) = open(&nested, small_options());
    assert!(recovery.created);
    assert_eq!((recovery.first_seq, recovery.last_seq, recovery.records_count), (1, 0, 0));
    assert_eq!((journal.last_seq(), journal.durable_seq()), (0, 0));
    assert_eq!(journal.append(1, b"first", 0).expect("append"), 1);
    assert_eq!(segment_files(&nested).len(), 1);
}

// A last segment whose header never reached the file (all zero or empty) is recreated; leftover temporaries are removed.
#[test]
fn half_created_last_segment_and_temporaries() {
    for leftover_bytes in [0usize, 4096] {
        let directory = TempDirectory::new("halfmade");
        let (mut journal, _) = open(&directory.0, small_options());
        append_varied(&mut journal, 5);
        let next = journal.next_seq();
        drop(journal);
        let half_made = directory.0.join(format!("{next:020}.seg"));
        fs::write(&half_made, vec![0u8; leftover_bytes]).expect("write");
        fs::write(directory.0.join(format!("{:020}.seg.tmp", next + 100)), b"partial").expect("write");

        let (mut journal, recovery) = open(&directory.0, small_options());
        assert_eq!(recovery.recreated_segment.as_ref(), Some(&half_made));
        assert_eq!((recovery.temporary_files_removed, recovery.last_seq), (1, 5));
        assert_eq!(journal.append(1, b"x", 0).expect("append"), next);
        assert_eq!(journal.location(next).expect("held").0, half_made.as_path());
    }
}

// A last segment with a damaged header and data in it is refused, naming the file.
#[test]
fn damaged_header_with_data_is_refused() {
    let directory = TempDirectory::new("header");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 5);
    drop(journal);
    let file = segment_files(&directory.0).pop().expect("a segment");
    flip_byte(&file, 20);
    let error = Journal::open(&directory.0, small_options()).err().expect("refused");
    assert!(matches!(&error, JournalError::BadSegment { path, .. } if path == &file), "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");
}

// A journal reopened with another segment size keeps its old segments and makes new ones at the new size.
#[test]
fn segment_size_can_change_between_runs() {
    let directory = TempDirectory::new("resize");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 20);
    let old_segments = u64::from(journal.segments_count());
    drop(journal);
    let larger = JournalOptions { segment_bytes: 16384, ..small_options() };
    let (mut journal, _) = open(&directory.0, larger);
    append_varied(&mut journal, 40);
    let new_segments = u64::from(journal.segments_count()) - old_segments;
    assert!(new_segments >= 1);
    assert_eq!(journal.retained_bytes(), old_segments * 4096 + new_segments * 16384);
    check_all_records(&journal, 1, 60);
}

// A leaked reservation (mem::forget skips its cleanup) cannot corrupt the records appended after it.
#[test]
fn leaked_reservation_does_not_corrupt_later_records() {
    let directory = TempDirectory::new("leak");
    let (mut journal, _) = open(&directory.0, small_options());
    let mut leaked = journal.reserve(1, 512).expect("reserve");
    leaked.payload_mut().fill(0xFF);
    std::mem::forget(leaked);
    // 37 bytes leave 3 bytes of padding over the scribbled area, and the
    // second record's header slot lies inside it.
    journal.append(kind_of(1), &payload(1, 37), 0).expect("append");
    journal.append(kind_of(2), &payload(2, 37), 0).expect("append");
    drop(journal);
    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!(recovery.last_seq, 2);
    assert_record(&journal, 1, 37);
    assert_record(&journal, 2, 37);
    let truncation = recovery.truncation.expect("the scribbled tail is cleaned");
    assert_eq!(truncation.offset, 64 + 2 * 64, "{truncation:?}");
}

/// Options of the roll-over tests: three 1000-byte records (1024 bytes with
/// their header) fill a 4096-byte segment but for 960 bytes.
fn roll_over_options(sync: SyncPolicy) -> JournalOptions {
    JournalOptions { sync, ..small_options() }
}

// A reservation leaked just before a roll-over leaves the sealed segment clean: the journal reopens with every record.
#[test]
fn leaked_reservation_then_roll_over_reopens() {
    for sync in [SyncPolicy::EveryRecord, SyncPolicy::Os] {
        let directory = TempDirectory::new("leak-roll");
        let (mut journal, _) = open(&directory.0, roll_over_options(sync));
        for seq in 1..=3 {
            journal.append(kind_of(seq), &payload(seq, 1000), 0).expect("append");
        }
        let mut leaked = journal.reserve(1, 900).expect("reserve");
        leaked.payload_mut().fill(0xFF);
        std::mem::forget(leaked);
        // 1024 bytes do not fit the 960 left: the first segment is sealed.
        assert_eq!(journal.append(kind_of(4), &payload(4, 1000), 0).expect("append"), 4);
        assert_eq!(journal.segments_count(), 2);
        let sealed = segment_files(&directory.0)[0].clone();
        drop(journal);
        let bytes = fs::read(&sealed).expect("read sealed segment");
        assert!(bytes[64 + 3 * 1024..].iter().all(|byte| *byte == 0), "{sync:?}: sealing zeroed the leaked bytes");
        let (journal, recovery) = Journal::open(&directory.0, roll_over_options(sync))
            .unwrap_or_else(|error| panic!("{sync:?}: a journal of 4 intact records refuses to open: {error}"));
        assert_eq!(recovery.last_seq, 4, "{sync:?}");
        assert_eq!((recovery.truncation, recovery.stale_tails_zeroed), (None, Vec::new()), "{sync:?}");
        for seq in 1..=4 {
            assert_record(&journal, seq, 1000);
        }
    }
}

// Stray bytes after the end of a sealed segment, as a power loss can leave them behind an abandoned reservation, are zeroed and reported when the next segment continues right after its last record.
#[test]
fn stray_bytes_after_a_sealed_segment_with_no_missing_record_are_zeroed() {
    let directory = TempDirectory::new("stray-sealed");
    let options = roll_over_options(SyncPolicy::EveryRecord);
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=5 {
        journal.append(kind_of(seq), &payload(seq, 1000), 0).expect("append");
    }
    drop(journal);
    let sealed = segment_files(&directory.0)[0].clone();
    let end_offset = 64 + 3 * 1024;
    let file = OpenOptions::new().write(true).open(&sealed).expect("open");
    file.write_all_at(&[0xAB; 100], end_offset + 24).expect("scribble");
    let (journal, recovery) = open(&directory.0, options);
    assert_eq!((recovery.last_seq, recovery.truncation.clone()), (5, None));
    let stale = recovery.stale_tails_zeroed.first().expect("reported");
    assert_eq!(recovery.stale_tails_zeroed.len(), 1);
    assert_eq!((&stale.path, stale.end_offset, stale.nonzero_offset), (&sealed, end_offset, end_offset + 24));
    assert_eq!(stale.bytes_zeroed, 124);
    for seq in 1..=5 {
        assert_record(&journal, seq, 1000);
    }
    drop(journal);
    assert!(fs::read(&sealed).expect("read")[end_offset as usize..].iter().all(|byte| *byte == 0));
    let (_, again) = open(&directory.0, options);
    assert!(again.stale_tails_zeroed.is_empty(), "zeroed for good");
}

// Bytes after a zero header in a sealed segment whose successor does not continue right after it mean lost records: still refused.
#[test]
fn stray_bytes_after_a_sealed_segment_with_a_missing_record_are_refused() {
    let directory = TempDirectory::new("lost-sealed");
    let options = roll_over_options(SyncPolicy::EveryRecord);
    let (mut journal, _) = open(&directory.0, options);
    for seq in 1..=5 {
        journal.append(kind_of(seq), &payload(seq, 1000), 0).expect("append");
    }
    drop(journal);
    let sealed = segment_files(&directory.0)[0].clone();
    // Record 3's header lost (zero), its payload still there.
    let third = 64 + 2 * 1024;
    let file = OpenOptions::new().write(true).open(&sealed).expect("open");
    file.write_all_at(&[0; 24], third).expect("zero header");
    let error = Journal::open(&directory.0, options).err().expect("refused");
    assert!(
        matches!(&error, JournalError::CorruptRecord { path, offset, defect: RecordDefect::BytesAfterEnd { .. } }
            if path == &sealed && *offset == third),
        "{error}"
    );
}

// A second open of a directory in use fails with Locked naming the directory and changes nothing; once the first journal is dropped the directory opens again.
#[test]
fn second_open_of_a_directory_in_use_is_refused() {
    let directory = TempDirectory::new("locked");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 5);
    let files = segment_files(&directory.0);
    let error = Journal::open(&directory.0, small_options()).err().expect("second open refused");
    assert!(matches!(&error, JournalError::Locked { directory: locked } if locked == &directory.0), "{error}");
    assert!(error.to_string().contains(&directory.0.display().to_string()), "{error}");
    assert_eq!(segment_files(&directory.0), files, "the refused open changed nothing");
    append_varied(&mut journal, 1);
    drop(journal);
    let (journal, recovery) = open(&directory.0, small_options());
    assert_eq!(recovery.last_seq, 6);
    check_all_records(&journal, 1, 6);
}

mod model {
    //! Random sequences of appends, reservations, releases, flushes and
    //! reopens against a plain vector of what was appended.

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Operation {
        Append { length: usize },
        Reserve { capacity: u32, used: u32, commit: bool },
        TruncateBefore { back: u64 },
        Flush,
        Reopen,
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            6 => (0usize..1100).prop_map(|length| Operation::Append { length }),
            2 => (0u32..1000, 0u32..1000, any::<bool>())
                .prop_map(|(capacity, used, commit)| Operation::Reserve { capacity, used: used.min(capacity), commit }),
            1 => (0u64..40).prop_map(|back| Operation::TruncateBefore { back }),
            1 => Just(Operation::Flush),
            1 => Just(Operation::Reopen),
        ]
    }

    /// What was committed, and the highest mark released so far.
    struct Model {
        payloads: Vec<Vec<u8>>,
        released_before: u64,
    }

    fn apply(journal: &mut Journal, model: &mut Model, operation: &Operation) {
        let seq = model.payloads.len() as u64 + 1;
        match *operation {
            Operation::Append { length } => {
                let bytes = payload(seq, length);
                match journal.append(kind_of(seq), &bytes, seq) {
                    Ok(appended) => {
                        assert_eq!(appended, seq);
                        model.payloads.push(bytes);
                    }
                    Err(JournalError::RecordTooLarge { .. }) => assert!(length > 1000),
                    Err(error) => panic!("append: {error}"),
                }
            }
            Operation::Reserve { capacity, used, commit } => {
                let mut reservation = journal.reserve(kind_of(seq), capacity).expect("reserve");
                reservation.payload_mut().fill(0x5A);
                let bytes = payload(seq, used as usize);
                reservation.payload_mut()[..used as usize].copy_from_slice(&bytes);
                if commit {
                    assert_eq!(reservation.commit(used, seq).expect("commit"), seq);
                    model.payloads.push(bytes);
                }
            }
            Operation::TruncateBefore { back } => {
                let mark = seq.saturating_sub(back);
                journal.truncate_before(mark).expect("truncate");
                model.released_before = model.released_before.max(mark);
            }
            Operation::Flush => {
                assert_eq!(journal.flush().expect("flush"), seq - 1);
            }
            Operation::Reopen => unreachable!("handled by the caller"),
        }
    }

    fn check(journal: &Journal, model: &Model) {
        let model_last_seq = model.payloads.len() as u64;
        assert_eq!(journal.last_seq(), model_last_seq);
        let first_seq = journal.first_seq();
        assert!(first_seq <= model.released_before.max(1), "no unreleased record is deleted");
        assert!(journal.read(first_seq.saturating_sub(1)).is_none() || first_seq == 1);
        let entries: Vec<(u64, Vec<u8>)> =
            journal.iter_from(0).map(|entry| (entry.seq, entry.payload.to_vec())).collect();
        let expected: Vec<(u64, Vec<u8>)> =
            (first_seq..=model_last_seq).map(|seq| (seq, model.payloads[seq as usize - 1].clone())).collect();
        assert_eq!(entries, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        // Whatever the order of operations, the journal holds exactly the committed records from first_seq on.
        #[test]
        fn journal_matches_model(operations in prop::collection::vec(operation(), 1..120)) {
            let directory = TempDirectory::new("model");
            let (mut journal, _) = open(&directory.0, small_options());
            let mut model = Model { payloads: Vec::new(), released_before: 0 };
            for operation in &operations {
                if let Operation::Reopen = operation {
                    drop(journal);
                    let (reopened, recovery) = open(&directory.0, small_options());
                    prop_assert!(recovery.truncation.is_none(), "{:?}", recovery.truncation);
                    journal = reopened;
                } else {
                    apply(&mut journal, &mut model, operation);
                }
                check(&journal, &model);
            }
        }
    }
}

// A segment whose file name disagrees with the first_seq in its header is refused with both numbers.
#[test]
fn renamed_segment_is_refused() {
    let directory = TempDirectory::new("renamed");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 3);
    drop(journal);
    let file = segment_files(&directory.0).pop().expect("a segment");
    fs::rename(&file, directory.0.join(format!("{:020}.seg", 7))).expect("rename");
    let error = Journal::open(&directory.0, small_options()).err().expect("refused");
    let message = error.to_string();
    assert!(matches!(
        error,
        JournalError::BadSegment { defect: tradebridge_core::journal::SegmentDefect::FirstSeqMismatch { name_seq: 7, header_seq: 1 }, .. }
    ), "{message}");
}

// Damage that takes the last record of a sealed segment leaves nothing valid after it there: salvage records the skip in the next segment's header instead of setting that segment, and every later one, aside.
#[test]
fn salvage_of_a_sealed_segments_last_record_keeps_the_segments_after_it() {
    let directory = TempDirectory::new("salvage-sealed-last");
    let (mut journal, _) = open(&directory.0, small_options());
    append_varied(&mut journal, 60);
    let files = segment_files(&directory.0);
    assert!(files.len() >= 4);
    let middle = files[1].clone();
    let last_of_middle = journal.iter_from(0).map(|entry| entry.seq).filter(|seq| journal.location(*seq).unwrap().0 == middle.as_path()).max().unwrap();
    let (_, offset) = journal.location(last_of_middle).expect("held");
    drop(journal);
    flip_byte(&middle, offset + 4);
    let salvage = JournalOptions { sealed_corruption: SealedCorruption::Salvage, ..small_options() };
    let (journal, recovery) = open(&directory.0, salvage);
    assert!(recovery.quarantined_segments.is_empty(), "no valid segment set aside: {recovery:?}");
    assert_eq!(recovery.salvaged.len(), 1);
    assert_eq!((recovery.salvaged[0].records_kept, recovery.salvaged[0].lost_seqs.clone()), (0, vec![(last_of_middle, last_of_middle + 1)]));
    assert_eq!((recovery.last_seq, recovery.records_count), (60, 59));
    for seq in (1..=60).filter(|seq| *seq != last_of_middle) {
        assert_record(&journal, seq, varied_length(seq));
    }
    drop(journal);
    let (_, recovery) = open(&directory.0, small_options());
    assert_eq!((recovery.last_seq, recovery.records_count, recovery.salvaged.len()), (60, 59, 0), "the recorded skip reads back");
}

// A salvage interrupted after writing the first of its new segments (a crash) loses nothing when it is run again: the new segment is written again, and the later valid records are still moved out before the damage is cut.
#[test]
fn an_interrupted_salvage_run_again_keeps_every_valid_record() {
    let build = |label: &str| {
        let directory = TempDirectory::new(label);
        let (mut journal, _) = open(&directory.0, small_options());
        for seq in 1..=10 {
            journal.append(kind_of(seq), &payload(seq, 40), 0).expect("append");
        }
        let (path, offset_3) = journal.location(3).map(|(path, offset)| (path.to_path_buf(), offset)).expect("held");
        let (_, offset_6) = journal.location(6).expect("held");
        drop(journal);
        flip_byte(&path, offset_3 + 30);
        flip_byte(&path, offset_6 + 30);
        (directory, path)
    };
    let salvage = JournalOptions { sealed_corruption: SealedCorruption::Salvage, ..small_options() };
    // A finished salvage, for the file its first new segment becomes.
    let (finished, _) = build("salvage-finished");
    let (_, recovery) = open(&finished.0, salvage);
    assert_eq!(recovery.salvaged[0].lost_seqs, vec![(3, 4), (6, 7)]);
    let first_new = recovery.salvaged[0].new_segments[0].clone();
    // The interrupted one: the damaged segment as found, and that first new segment beside it.
    let (interrupted, _) = build("salvage-interrupted");
    fs::copy(&first_new, interrupted.0.join(first_new.file_name().unwrap())).expect("copy the first new segment");
    let (journal, recovery) = open(&interrupted.0, salvage);
    assert!(recovery.quarantined_segments.is_empty(), "{recovery:?}");
    assert_eq!(recovery.salvaged[0].records_kept, 6);
    let held: Vec<u64> = journal.iter_from(0).map(|entry| entry.seq).collect();
    assert_eq!(held, vec![1, 2, 4, 5, 7, 8, 9, 10]);
    for seq in [1, 2, 4, 5, 7, 8, 9, 10] {
        assert_record(&journal, seq, 40);
    }
}
