//! The spare segment: roll-over takes the next segment file from a
//! background thread that wrote its zeros ahead. Driven through the public
//! API on real files: the files it makes must be exactly the ones the
//! synchronous roll-over makes, the spare must respect the journal's bounds,
//! and a spare left by a crash must never be read.

mod journal_support;

use std::fs;
use std::path::Path;

use journal_support::TempDirectory;
use tradebridge_core::journal::{Journal, JournalOptions, SyncPolicy, SPARE_FILE_NAME};


/// Small segments, a durable policy (so spares are synced, as in
/// production), group commit so tests do not sync each record.
fn options(spare_segment: bool) -> JournalOptions {
    JournalOptions {
        segment_bytes: 4096,
        record_bytes_max: 1024,
        sync: SyncPolicy::Group { records_max: 64, interval_ms: 1_000 },
        spare_segment,
        ..JournalOptions::default()
    }
}

fn payload(seq: u64) -> Vec<u8> {
    let length = (seq as usize * 389) % 700;
    (0..length).map(|index| (seq as usize * 31 + index * 7 + 1) as u8).collect()
}

fn append_up_to(journal: &mut Journal, last_seq: u64) {
    while journal.last_seq() < last_seq {
        let seq = journal.next_seq();
        assert_eq!(journal.append((seq % 5) as u16, &payload(seq), 0).expect("append"), seq);
    }
    journal.flush().expect("flush");
}

fn assert_records(journal: &Journal, first_seq: u64, last_seq: u64) {
    for seq in first_seq..=last_seq {
        let entry = journal.read(seq).unwrap_or_else(|| panic!("seq {seq} readable"));
        assert_eq!((entry.kind, entry.payload), ((seq % 5) as u16, payload(seq).as_slice()), "seq {seq}");
    }
}

/// Every file in `directory` by name, with its bytes.
fn files(directory: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(directory)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name != "LOCK"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&path).expect("read")))
        .collect();
    files.sort();
    files
}

// Shows: every roll-over takes the spare (none writes its zeros itself), the records read back before and after a reopen, and a closed journal leaves no spare file behind.
#[test]
fn roll_over_takes_the_spare_and_records_survive_a_reopen() {
    let directory = TempDirectory::new("takes");
    let (mut journal, _) = Journal::open(&directory.0, options(true)).expect("open");
    assert!(journal.has_spare(), "a spare is prepared at open");
    append_up_to(&mut journal, 200);
    let stats = journal.stats();
    assert!(stats.segments_created_count >= 5, "{stats:?}");
    assert_eq!(stats.spares_used_count, stats.segments_created_count, "{stats:?}");
    assert!(journal.has_spare(), "the next one is prepared after each roll-over");
    assert_records(&journal, 1, 200);
    drop(journal);
    assert!(!directory.0.join(SPARE_FILE_NAME).exists(), "an unused spare is removed at close");

    let (journal, recovery) = Journal::open(&directory.0, options(true)).expect("reopen");
    assert_eq!(recovery.last_seq, 200);
    assert_records(&journal, 1, 200);
}

// Shows: the segment files made from spares are byte for byte the ones the synchronous roll-over writes.
#[test]
fn spare_and_synchronous_roll_over_make_the_same_files() {
    let with_spare = TempDirectory::new("same-a");
    let without = TempDirectory::new("same-b");
    for (directory, spare) in [(&with_spare, true), (&without, false)] {
        let (mut journal, _) = Journal::open(&directory.0, options(spare)).expect("open");
        append_up_to(&mut journal, 150);
        let used = journal.stats().spares_used_count;
        assert_eq!(used > 0, spare, "spares used: {used}");
        assert_eq!(journal.has_spare(), spare);
    }
    let (a, b) = (files(&with_spare.0), files(&without.0));
    assert!(a.len() >= 4, "several segments: {:?}", a.iter().map(|file| &file.0).collect::<Vec<_>>());
    assert_eq!(a.iter().map(|file| &file.0).collect::<Vec<_>>(), b.iter().map(|file| &file.0).collect::<Vec<_>>());
    for ((name, bytes_a), (_, bytes_b)) in a.iter().zip(&b) {
        assert!(bytes_a == bytes_b, "{name} differs");
    }
}

// Shows: a spare is prepared only while one more segment fits segments_max and retained_bytes_max (so it never takes disk the bounds deny), and again once truncate_before makes room; the roll-over without a spare still works.
#[test]
fn spare_is_prepared_only_within_the_bounds() {
    let directory = TempDirectory::new("bounds");
    let bounded = JournalOptions { segments_max: 2, ..options(true) };
    let (mut journal, _) = Journal::open(&directory.0, bounded).expect("open");
    assert!(journal.has_spare(), "one segment held, a second allowed");
    while journal.segments_count() < 2 {
        let seq = journal.next_seq();
        journal.append(0, &payload(seq), 0).expect("append");
    }
    assert!(!journal.has_spare(), "two segments held, a third is not allowed");
    assert!(!directory.0.join(SPARE_FILE_NAME).exists());
    assert_eq!(journal.stats().spares_used_count, 1);

    let last = journal.last_seq();
    assert_eq!(journal.truncate_before(last).expect("truncate"), 1);
    assert!(journal.has_spare(), "room again after the release");
    while journal.segments_count() < 2 {
        let seq = journal.next_seq();
        journal.append(0, &payload(seq), 0).expect("append");
    }
    assert_eq!(journal.stats().spares_used_count, 2);

    // The same under retained_bytes_max: two segments' bytes, no third.
    let bytes_directory = TempDirectory::new("bounds-bytes");
    let bytes_bounded = JournalOptions { retained_bytes_max: 2 * 4096, ..options(true) };
    let (mut bytes_journal, _) = Journal::open(&bytes_directory.0, bytes_bounded).expect("open");
    assert!(bytes_journal.has_spare());
    while bytes_journal.segments_count() < 2 {
        let seq = bytes_journal.next_seq();
        bytes_journal.append(0, &payload(seq), 0).expect("append");
    }
    assert!(!bytes_journal.has_spare(), "a spare would take a third segment's bytes");
    drop(bytes_journal);

    // Without room for a spare, roll-over writes the segment itself.
    let unbounded_later = journal.last_seq();
    drop(journal);
    let (mut journal, _) = Journal::open(&directory.0, bounded).expect("reopen");
    assert!(!journal.has_spare());
    journal.truncate_before(unbounded_later).expect("truncate");
    assert!(journal.has_spare());
}

// Shows: a spare left behind by a crash (here garbage under the spare's name, as a half-written one could be) is removed at open and never read as a segment; the journal's records and its next segments are intact.
#[test]
fn spare_left_by_a_crash_is_never_read() {
    let directory = TempDirectory::new("crash");
    let (mut journal, _) = Journal::open(&directory.0, options(true)).expect("open");
    append_up_to(&mut journal, 40);
    drop(journal);
    fs::write(directory.0.join(SPARE_FILE_NAME), vec![0xA5u8; 4096]).expect("plant a garbage spare");

    let (mut journal, recovery) = Journal::open(&directory.0, options(true)).expect("reopen over a garbage spare");
    assert_eq!(recovery.last_seq, 40);
    assert_eq!(recovery.temporary_files_removed, 1, "recovery removed the leftover spare");
    append_up_to(&mut journal, 160);
    assert!(journal.stats().spares_used_count > 0);
    drop(journal);
    let (journal, recovery) = Journal::open(&directory.0, options(true)).expect("reopen");
    assert_eq!(recovery.last_seq, 160);
    assert_records(&journal, 1, 160);
}
