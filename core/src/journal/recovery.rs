//! Recovery on open: list the segment files, check each header and record,
//! cut the torn tail of the last segment, and hand back the mapped segments
//! with their index plus a report of what was found.
//!
//! # Layout
//! - [`Recovery`], [`Truncation`], [`StaleTail`]: the report `Journal::open`
//!   returns.
//! - `recover`: the procedure, one segment at a time (`recover_segment`).
//!
//! # Invariants
//! - Segments handed back are contiguous: each starts at the previous one's
//!   next sequence, or, when its header records a skip, the previous one
//!   ends at its `skipped_from_seq`; the last one ends at the first invalid
//!   record.
//! - After quarantining, the journal continues above every sequence number
//!   the quarantined files (or the records cut off) may have issued, so no
//!   number is ever issued twice; the numbers jumped over are reported in
//!   `Recovery::skipped_seqs` and recorded in the new segment's header.
//! - A torn tail is a defect in the last segment with no valid record after
//!   it (what a crash in the middle of a write leaves); it is cut. A defect
//!   with a valid record after it, in any segment, is damage in the middle:
//!   an error naming the file and offset, and no byte is changed (or, when
//!   the options say so, the point where the journal is cut and the later
//!   segments are quarantined, or, under `Salvage`, cut with every valid
//!   record after it kept); it is never silently skipped. A valid record
//!   after the defect is one whose checksum holds, at any aligned offset,
//!   with a seq above the last good one. The one defect
//!   accepted there is non-zero bytes after the end of a sealed segment whose
//!   successor starts right after its last record: no record can be missing,
//!   so the bytes are zeroed and reported in `Recovery::stale_tails_zeroed`.
//! - After recovery every segment's tail is zero, and any zeroing is flushed
//!   before new records can be written over it.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{io_error, JournalError, RecordDefect};
use super::layout::{
    parse_segment_file_name, SegmentHeader, records_per_segment_max, QUARANTINE_EXTENSION, SEGMENT_EXTENSION, TEMPORARY_EXTENSION,
};
use super::options::{JournalOptions, SealedCorruption, SyncPolicy, SEGMENT_BYTES_MAX};
use super::segment::{file_is_all_zero, quarantined_seq_bound, read_segment_header, record_skip_in_header, sync_directory, Segment};

/// What `Journal::open` found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files in use after recovery (created ones included).
    pub segments_count: u32,
    /// Valid records found.
    pub records_count: u64,
    /// Oldest sequence still held; equals `last_seq + 1` when none is held.
    pub first_seq: u64,
    /// Sequence of the last valid record ever appended (0 for a journal that
    /// never held one), or after a skip the last number skipped; appends
    /// continue at `last_seq + 1`.
    pub last_seq: u64,
    /// Where the log was cut and why; `None` when it ended cleanly.
    pub truncation: Option<Truncation>,
    /// Sealed segments that held non-zero bytes after their last record
    /// although the next segment starts right after it (what a reservation
    /// leaves behind when it is leaked, or abandoned after the kernel wrote
    /// its bytes back); the bytes were zeroed and flushed, no record lost.
    pub stale_tails_zeroed: Vec<StaleTail>,
    /// Zero bytes added to segment files found shorter than their header's
    /// `segment_bytes`.
    pub reextended_bytes: u64,
    /// A last segment whose creation never reached its header (the file was
    /// all zero) and that was created again.
    pub recreated_segment: Option<PathBuf>,
    /// Segments renamed to `*.seg.quarantine` under
    /// `SealedCorruption::TruncateAndQuarantine`.
    pub quarantined_segments: Vec<PathBuf>,
    /// Sequence numbers this open jumped over after quarantining, because
    /// records in the quarantined files, or cut off before them, may hold
    /// them; `None` when nothing was skipped.
    pub skipped_seqs: Option<SkippedSeqs>,
    /// Leftover `*.seg.tmp` files of interrupted segment creations, and a
    /// spare segment left by a journal that was not closed, removed.
    pub temporary_files_removed: u32,
    /// True when the directory held no segment and a first one was created.
    pub created: bool,
    /// Damage in the middle of a segment, set aside under
    /// `SealedCorruption::Salvage` with every valid record kept.
    pub salvaged: Vec<Salvaged>,
}

/// A segment damaged in the middle (valid records after the damage), cut at
/// the damage under `SealedCorruption::Salvage`, the valid records after it
/// moved to new segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvaged {
    /// The damaged segment; it now ends at `offset`.
    pub path: PathBuf,
    /// Offset of the first invalid record.
    pub offset: u64,
    /// Why the record there is invalid.
    pub defect: RecordDefect,
    /// A copy of the segment file as it was found, kept for inspection.
    pub evidence: PathBuf,
    /// Valid records found after the damage and kept, in `new_segments`.
    pub records_kept: u64,
    /// The segments created for them, oldest first.
    pub new_segments: Vec<PathBuf>,
    /// Sequence numbers no valid record holds any more, as `[from, to)`
    /// ranges: the damaged records' (and any garbage's) numbers.
    pub lost_seqs: Vec<(u64, u64)>,
}

/// Where recovery cut the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The segment that was cut.
    pub path: PathBuf,
    /// Offset of the first invalid record: the new logical end.
    pub offset: u64,
    /// Why the record there is invalid.
    pub defect: RecordDefect,
    /// Bytes zeroed, from `offset` to the last non-zero byte of the file.
    pub bytes_zeroed: u64,
}

/// A range of sequence numbers that will never be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkippedSeqs {
    /// First number skipped: where the kept records end (or the first
    /// quarantined segment's first number, when none is kept).
    pub from_seq: u64,
    /// First number issued after the skip: above anything the quarantined
    /// files may hold. The new segment starts here.
    pub next_seq: u64,
}

/// Stray bytes found, and zeroed, after the last record of a sealed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleTail {
    /// The sealed segment.
    pub path: PathBuf,
    /// Offset just after its last record: where the zeroing started.
    pub end_offset: u64,
    /// The first non-zero byte found after the end.
    pub nonzero_offset: u64,
    /// Bytes zeroed, from `end_offset` to the last non-zero byte.
    pub bytes_zeroed: u64,
}

/// The state recovery hands to the journal.
pub(crate) struct Recovered {
    /// Contiguous segments, oldest first, never empty.
    pub(crate) segments: VecDeque<Segment>,
    /// The report for the caller.
    pub(crate) recovery: Recovery,
}

/// What to do after one segment.
enum SegmentOutcome {
    /// Valid to its end; continue with the next segment.
    Intact(Segment),
    /// The journal now ends in this segment; later ones are quarantined.
    CutHere(Segment),
    /// This segment and all later ones are quarantined.
    QuarantineFromHere,
    /// This segment was cut at damage in its middle and the valid records
    /// after it moved to the new segments that follow it here; continue
    /// with the next listed segment.
    Salvaged(Vec<Segment>),
}

/// Recovers the journal in `directory` (which exists and whose lock the
/// caller holds), creating a first segment when there is none.
pub(crate) fn recover(directory: &Path, options: &JournalOptions) -> Result<Recovered, JournalError> {
    let durable = options.sync != SyncPolicy::Os;
    assert!(directory.is_dir(), "Journal::open creates the directory first");
    let mut recovery = Recovery::default();
    let listing = list_segments(directory, &mut recovery)?;
    let mut segments = VecDeque::with_capacity(listing.len());
    let mut quarantined = Vec::new();
    let mut expected_seq = None;
    // Segments a salvage just wrote again (an interrupted salvage's
    // leftovers in the listing): already in `segments`, not read twice.
    let mut salvaged_names = std::collections::BTreeSet::new();
    for (position, (name_seq, path)) in listing.iter().enumerate() {
        if salvaged_names.contains(name_seq) {
            continue;
        }
        let is_last = position + 1 == listing.len();
        let next_name_seq = listing.get(position + 1).map(|(next_name_seq, _)| *next_name_seq);
        let following = &listing[position + 1..];
        let context = SegmentContext {
            directory,
            path,
            name_seq: *name_seq,
            expected_seq,
            next_name_seq,
            following,
            is_last,
            options,
        };
        let outcome = recover_segment(&context, &mut recovery)?;
        if let SegmentOutcome::Salvaged(made) = &outcome {
            salvaged_names.extend(made.iter().skip(1).map(Segment::first_seq));
        }
        let (segment, cut) = match outcome {
            SegmentOutcome::Intact(segment) => (segment, false),
            SegmentOutcome::CutHere(segment) => (segment, true),
            SegmentOutcome::QuarantineFromHere => {
                quarantined = quarantine(&listing[position..], &mut recovery)?;
                break;
            }
            SegmentOutcome::Salvaged(mut salvaged) => {
                let last = salvaged.pop().expect("the cut segment at least");
                segments.extend(salvaged);
                (last, false)
            }
        };
        expected_seq = Some(segment.next_seq());
        segments.push_back(segment);
        if cut {
            quarantined = quarantine(&listing[position + 1..], &mut recovery)?;
            break;
        }
    }
    if listing.is_empty() {
        segments.push_back(Segment::create(directory, 1, options.segment_bytes, durable, 0)?);
        recovery.created = true;
    } else if !quarantined.is_empty() {
        continue_above_quarantined(directory, options, &quarantined, &mut segments, &mut recovery)?;
    }
    assert!(!segments.is_empty(), "every listed segment is kept, recreated or quarantined");
    debug_assert!(segments.iter().zip(segments.iter().skip(1)).all(|(a, b)| follows(a, b)));
    finish(directory, durable, &segments, &mut recovery)?;
    Ok(Recovered { segments, recovery })
}

/// Creates `directory` and its missing parents. Under a durable policy the
/// parent of each directory created is synced afterwards, top down: a
/// segment synced inside a directory whose own entry never reached storage
/// would be lost with it at a power loss. Returns how many were created.
pub(crate) fn create_directory(directory: &Path, durable: bool) -> Result<u32, JournalError> {
    let mut missing = Vec::new();
    let mut ancestor = Some(directory);
    // Bounded by the number of components of the path.
    while let Some(path) = ancestor {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path.to_path_buf());
        ancestor = path.parent();
    }
    assert!(missing.len() <= directory.components().count(), "one entry per missing component");
    fs::create_dir_all(directory).map_err(io_error(directory, "create directory"))?;
    assert!(directory.is_dir(), "create_dir_all succeeded");
    if durable {
        for created in missing.iter().rev() {
            let parent = created.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
            sync_directory(parent)?;
        }
    }
    Ok(u32::try_from(missing.len()).expect("path components fit in u32"))
}

/// True when segment `b` may come right after segment `a`: it starts at
/// `a`'s next sequence, or its header records a skip that starts there.
fn follows(a: &Segment, b: &Segment) -> bool {
    a.next_seq() == b.first_seq() || (b.skipped_from_seq() == a.next_seq() && a.next_seq() < b.first_seq())
}

/// After quarantining, makes the journal continue above every sequence
/// number the quarantined files may have issued (records cut off before them
/// lie below their numbers too), so that no number is issued twice: when
/// that is above where the kept segments end, or nothing is kept, a new
/// segment is created there, its header recording the skip.
fn continue_above_quarantined(
    directory: &Path,
    options: &JournalOptions,
    quarantined: &[(u64, PathBuf)],
    segments: &mut VecDeque<Segment>,
    recovery: &mut Recovery,
) -> Result<(), JournalError> {
    assert!(!quarantined.is_empty());
    let mut issued_bound = 0u64;
    // Bounded by the listing; each file is scanned once, read-only.
    for (position, (name_seq, path)) in quarantined.iter().enumerate() {
        let bound = match quarantined_seq_bound(path, *name_seq)? {
            Some(bound) => bound,
            // Unreadable header. Only the last segment is ever written, so a
            // segment's numbers lie below its successor's name; the last one
            // may hold as many records as the largest segment.
            None => match quarantined.get(position + 1) {
                Some((next_name_seq, _)) => *next_name_seq,
                None => name_seq.saturating_add(records_per_segment_max(SEGMENT_BYTES_MAX)),
            },
        };
        issued_bound = issued_bound.max(bound);
    }
    let kept_next_seq = segments.back().map(Segment::next_seq);
    let from_seq = kept_next_seq.unwrap_or(quarantined[0].0.max(1));
    let next_seq = issued_bound.max(from_seq);
    if kept_next_seq == Some(next_seq) {
        // The kept segments already end above every quarantined number.
        return Ok(());
    }
    let skipped_from_seq = if next_seq > from_seq { from_seq } else { 0 };
    let durable = options.sync != SyncPolicy::Os;
    segments.push_back(Segment::create(directory, next_seq, options.segment_bytes, durable, skipped_from_seq)?);
    if next_seq > from_seq {
        recovery.skipped_seqs = Some(SkippedSeqs { from_seq, next_seq });
    }
    assert!(next_seq >= from_seq && segments.back().expect("just pushed").first_seq() == next_seq);
    Ok(())
}

/// True when the segment at `path`, named `name_seq` where `expected_seq`
/// was due, records in its header that recovery skipped from `expected_seq`
/// to it on purpose.
fn is_recorded_skip(path: &Path, name_seq: u64, expected_seq: u64) -> Result<bool, JournalError> {
    if name_seq <= expected_seq {
        return Ok(false);
    }
    let header = read_segment_header(path)?;
    Ok(header.is_some_and(|header| records_skip(&header, name_seq, expected_seq)))
}

/// True when `header`, of the segment named `name_seq` where `expected_seq`
/// was due, records that the numbers from `expected_seq` were skipped.
pub(super) fn records_skip(header: &SegmentHeader, name_seq: u64, expected_seq: u64) -> bool {
    name_seq > expected_seq && header.first_seq == name_seq && header.skipped_from_seq == expected_seq
}

/// Everything `recover_segment` needs to know about one listed file.
struct SegmentContext<'a> {
    /// The journal directory, where a half-made segment is created again.
    directory: &'a Path,
    /// The segment file.
    path: &'a Path,
    /// First sequence according to the file name.
    name_seq: u64,
    /// The sequence this segment must start at; `None` for the first.
    expected_seq: Option<u64>,
    /// First sequence of the next listed segment, by its file name; `None`
    /// for the last.
    next_name_seq: Option<u64>,
    /// The segments listed after this one.
    following: &'a [(u64, PathBuf)],
    /// True for the newest segment, whose torn tail is cut, not refused.
    is_last: bool,
    /// The options the journal is opened with.
    options: &'a JournalOptions,
}

fn recover_segment(context: &SegmentContext<'_>, recovery: &mut Recovery) -> Result<SegmentOutcome, JournalError> {
    let quarantine_allowed = context.options.sealed_corruption != SealedCorruption::Fail;
    if let Some(expected_seq) = context.expected_seq {
        if context.name_seq != expected_seq && !is_recorded_skip(context.path, context.name_seq, expected_seq)? {
            if quarantine_allowed {
                return Ok(SegmentOutcome::QuarantineFromHere);
            }
            let path = context.path.to_path_buf();
            return Err(JournalError::SequenceGap { path, expected_seq, found_seq: context.name_seq });
        }
    }
    let mut opened = match Segment::open(context.path, context.name_seq) {
        Ok(opened) => opened,
        Err(JournalError::BadSegment { path, defect }) => {
            if context.is_last && file_is_all_zero(context.path)? {
                return recreate(context, recovery).map(SegmentOutcome::Intact);
            }
            if quarantine_allowed {
                return Ok(SegmentOutcome::QuarantineFromHere);
            }
            return Err(JournalError::BadSegment { path, defect });
        }
        Err(other) => return Err(other),
    };
    if let Some(expected_seq) = context.expected_seq {
        // Read again by `Segment::open`; this process holds the directory
        // alone, so only a storage fault could change it in between.
        let skip_ok = opened.segment.skipped_from_seq() == expected_seq;
        if context.name_seq != expected_seq && !skip_ok {
            let path = context.path.to_path_buf();
            return Err(JournalError::SequenceGap { path, expected_seq, found_seq: context.name_seq });
        }
    }
    let segment_bytes = opened.segment.segment_bytes();
    assert!(opened.file_bytes <= segment_bytes, "longer files are refused by Segment::open");
    recovery.reextended_bytes += segment_bytes - opened.file_bytes;
    let end = opened.segment.scan(opened.file_bytes);
    assert!(u64::from(end.end_offset) <= segment_bytes);
    assert_eq!(opened.segment.first_seq(), context.name_seq);
    let Some(defect) = end.defect else {
        return Ok(SegmentOutcome::Intact(opened.segment));
    };
    let offset = u64::from(end.end_offset);
    if let RecordDefect::BytesAfterEnd { nonzero_offset } = defect {
        if context.next_name_seq == Some(opened.segment.next_seq()) {
            // The next segment continues right after the last record here,
            // so the stray bytes hold no lost record: a reservation left them.
            let bytes_zeroed = opened.segment.zero_tail()?;
            assert!(bytes_zeroed > 0, "a non-zero byte was found after the end");
            let path = context.path.to_path_buf();
            recovery.stale_tails_zeroed.push(StaleTail { path, end_offset: offset, nonzero_offset, bytes_zeroed });
            return Ok(SegmentOutcome::Intact(opened.segment));
        }
    }
    // Valid records after the defect: damage in the middle, not a torn
    // tail (which ends the last segment with nothing valid after it).
    let runs = opened.segment.runs_after_end(opened.file_bytes);
    if context.options.sealed_corruption == SealedCorruption::Salvage && (!runs.is_empty() || !context.is_last) {
        return salvage(context, opened.segment, offset, defect, runs, recovery).map(SegmentOutcome::Salvaged);
    }
    if (!context.is_last || !runs.is_empty()) && !quarantine_allowed {
        return Err(JournalError::CorruptRecord { path: context.path.to_path_buf(), offset, defect });
    }
    let bytes_zeroed = opened.segment.zero_tail()?;
    recovery.truncation = Some(Truncation { path: context.path.to_path_buf(), offset, defect, bytes_zeroed });
    if context.is_last {
        Ok(SegmentOutcome::Intact(opened.segment))
    } else {
        Ok(SegmentOutcome::CutHere(opened.segment))
    }
}

/// Keeps every valid record of a segment damaged at `offset`: copies the
/// file aside as evidence, writes the `runs` found after the damage to new
/// segments (synced, and their headers recording the numbers skipped), and
/// only then zeroes the segment from the damage on. Returns the cut segment
/// followed by the new ones. Runs reaching the next listed segment's
/// numbers are trimmed (that segment holds them).
fn salvage(
    context: &SegmentContext<'_>,
    mut segment: Segment,
    offset: u64,
    defect: RecordDefect,
    mut runs: Vec<super::segment::Run>,
    recovery: &mut Recovery,
) -> Result<Vec<Segment>, JournalError> {
    // The next segment that is not one an interrupted salvage of this one
    // already wrote (those are written again, whole, below).
    let run_names: std::collections::BTreeSet<u64> = runs.iter().map(|run| run.first_seq).collect();
    let next_original = context.following.iter().find(|(name_seq, _)| !run_names.contains(name_seq));
    if let Some((next_name_seq, _)) = next_original {
        let next_name_seq = *next_name_seq;
        runs.retain(|run| run.first_seq < next_name_seq);
        for run in &mut runs {
            let room = usize::try_from(next_name_seq - run.first_seq).unwrap_or(usize::MAX);
            run.offsets.truncate(room);
        }
    }
    let mut evidence = context.path.to_path_buf().into_os_string();
    evidence.push(format!(".at-{offset}.{QUARANTINE_EXTENSION}"));
    let evidence = PathBuf::from(evidence);
    fs::copy(context.path, &evidence).map_err(io_error(&evidence, "copy damaged segment aside"))?;
    fs::File::open(&evidence).and_then(|file| file.sync_all()).map_err(io_error(&evidence, "fsync"))?;
    let mut new_segments: Vec<Segment> = Vec::with_capacity(runs.len());
    let mut lost_seqs = Vec::new();
    let mut next_seq = segment.next_seq();
    let mut records_kept = 0u64;
    // Bounded by the runs found, each record copied once.
    for run in &runs {
        assert!(run.first_seq >= next_seq, "runs are found in rising seq order");
        if run.first_seq > next_seq {
            lost_seqs.push((next_seq, run.first_seq));
        }
        let skipped_from_seq = if run.first_seq > next_seq { next_seq } else { 0 };
        // Always durable: the damaged bytes are zeroed next, so these
        // copies must be on storage first whatever the policy.
        let mut created = Segment::create(context.directory, run.first_seq, segment.segment_bytes(), true, skipped_from_seq)?;
        for record_offset in &run.offsets {
            let (seq, kind, payload) = segment.record_at(*record_offset);
            created.append_record(seq, kind, payload);
        }
        created.sync()?;
        records_kept += run.offsets.len() as u64;
        next_seq = created.next_seq();
        new_segments.push(created);
    }
    // The next segment must follow what is kept: when the damage took the
    // last numbers before it, its header records the skip (else the chain
    // check would set it, and every valid segment after it, aside).
    if let Some((next_name_seq, next_path)) = next_original {
        if next_seq < *next_name_seq {
            lost_seqs.push((next_seq, *next_name_seq));
            record_skip_in_header(next_path, *next_name_seq, next_seq)?;
        }
    }
    segment.zero_tail()?;
    let new_paths = new_segments.iter().map(|created| created.path().to_path_buf()).collect();
    let path = context.path.to_path_buf();
    recovery.salvaged.push(Salvaged { path, offset, defect, evidence, records_kept, new_segments: new_paths, lost_seqs });
    let mut segments = Vec::with_capacity(1 + new_segments.len());
    segments.push(segment);
    segments.extend(new_segments);
    Ok(segments)
}

/// Replaces a last segment whose header never made it to the file (its
/// creation was interrupted by a power loss before the data reached disk).
fn recreate(context: &SegmentContext<'_>, recovery: &mut Recovery) -> Result<Segment, JournalError> {
    assert!(context.is_last, "only the last segment can be half-created");
    assert!(context.expected_seq.iter().all(|expected| *expected == context.name_seq));
    fs::remove_file(context.path).map_err(io_error(context.path, "remove"))?;
    let durable = context.options.sync != SyncPolicy::Os;
    let segment = Segment::create(context.directory, context.name_seq, context.options.segment_bytes, durable, 0)?;
    recovery.recreated_segment = Some(context.path.to_path_buf());
    Ok(segment)
}

/// Lists `*.seg` files sorted by first sequence, removing `*.seg.tmp`
/// leftovers. Other files (quarantined segments, anything else) are left
/// alone and ignored.
fn list_segments(directory: &Path, recovery: &mut Recovery) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let temporary_suffix = format!(".{SEGMENT_EXTENSION}.{TEMPORARY_EXTENSION}");
    let mut listing = Vec::new();
    let entries = fs::read_dir(directory).map_err(io_error(directory, "list directory"))?;
    for entry in entries {
        let entry = entry.map_err(io_error(directory, "list directory"))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(&temporary_suffix) {
            fs::remove_file(&path).map_err(io_error(&path, "remove temporary"))?;
            recovery.temporary_files_removed += 1;
        } else if let Some(first_seq) = parse_segment_file_name(&name) {
            listing.push((first_seq, path));
        }
    }
    listing.sort_unstable_by_key(|(first_seq, _)| *first_seq);
    debug_assert!(listing.windows(2).all(|pair| pair[0].0 < pair[1].0), "names are unique");
    Ok(listing)
}

/// Renames the listed segments aside; returns their first sequence (by
/// name) and new paths, in listing order.
fn quarantine(listing: &[(u64, PathBuf)], recovery: &mut Recovery) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut quarantined = Vec::with_capacity(listing.len());
    for (name_seq, path) in listing {
        let mut target = path.clone().into_os_string();
        target.push(format!(".{QUARANTINE_EXTENSION}"));
        fs::rename(path, &target).map_err(io_error(path, "quarantine"))?;
        recovery.quarantined_segments.push(PathBuf::from(&target));
        quarantined.push((*name_seq, PathBuf::from(target)));
    }
    assert_eq!(quarantined.len(), listing.len());
    Ok(quarantined)
}

/// Syncs what recovery found, so that records read back from the page cache
/// after a process crash count as durable only once they are on storage,
/// and fills in the report's totals. The directory is synced too, always
/// under a durable policy: entries the previous run (or this recovery)
/// created, renamed or removed may still be only in memory after a process
/// crash, and records in a segment whose entry is lost are lost with it.
fn finish(
    directory: &Path,
    durable: bool,
    segments: &VecDeque<Segment>,
    recovery: &mut Recovery,
) -> Result<(), JournalError> {
    assert!(!segments.is_empty(), "recovery always leaves an active segment");
    if durable {
        for segment in segments {
            segment.sync()?;
        }
        sync_directory(directory)?;
    }
    let back = segments.back().expect("not empty");
    recovery.segments_count = u32::try_from(segments.len()).expect("segments bounded by the directory listing");
    recovery.records_count = segments.iter().map(Segment::records_count).sum();
    recovery.first_seq = segments.front().expect("not empty").first_seq();
    recovery.last_seq = back.next_seq() - 1;
    let numbers_count = recovery.last_seq + 1 - recovery.first_seq;
    let skipped_count: u64 =
        segments.iter().zip(segments.iter().skip(1)).map(|(a, b)| b.first_seq() - a.next_seq()).sum();
    assert_eq!(numbers_count, recovery.records_count + skipped_count, "segments are contiguous but for skips");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::segment::take_directory_syncs;
    use crate::journal::testing::TempDirectory;
    use crate::journal::Journal;

    fn options(sync: SyncPolicy) -> JournalOptions {
        JournalOptions { segment_bytes: 4096, record_bytes_max: 1024, sync, ..JournalOptions::default() }
    }

    // Under a durable policy every open syncs the journal directory, even when recovery changed nothing in it; under Os none does.
    #[test]
    fn durable_open_always_syncs_the_directory() {
        let directory = TempDirectory::new("open-sync");
        let (mut journal, _) = Journal::open(&directory.0, options(SyncPolicy::EveryRecord)).expect("create");
        journal.append(1, b"record", 0).expect("append");
        drop(journal);
        let group = SyncPolicy::Group { records_max: 4, interval_ms: 10 };
        for sync in [SyncPolicy::EveryRecord, group] {
            take_directory_syncs();
            let (_, recovery) = Journal::open(&directory.0, options(sync)).expect("reopen");
            assert!(!recovery.created && recovery.quarantined_segments.is_empty() && recovery.recreated_segment.is_none());
            assert_eq!(take_directory_syncs(), vec![directory.0.clone()], "{sync:?}");
        }
        take_directory_syncs();
        Journal::open(&directory.0, options(SyncPolicy::Os)).expect("reopen");
        assert_eq!(take_directory_syncs(), Vec::<PathBuf>::new(), "Os syncs nothing");
    }

    // Creating a nested journal directory syncs the parent of every directory created, top down, under a durable policy only.
    #[test]
    fn created_directories_are_synced_into_their_parents() {
        let base = TempDirectory::new("nested-sync");
        let nested = base.0.join("a").join("b");
        take_directory_syncs();
        let (_, recovery) = Journal::open(&nested, options(SyncPolicy::EveryRecord)).expect("create");
        assert!(recovery.created);
        let syncs = take_directory_syncs();
        assert_eq!(syncs[..2], [base.0.clone(), base.0.join("a")], "{syncs:?}");
        assert!(syncs[2..].iter().all(|synced| synced == &nested), "then only the journal directory: {syncs:?}");

        let unsynced = base.0.join("c").join("d");
        assert_eq!(create_directory(&unsynced, false).expect("create"), 2);
        assert_eq!(take_directory_syncs(), Vec::<PathBuf>::new());
        assert_eq!(create_directory(&unsynced, true).expect("exists"), 0, "nothing created, nothing synced");
        assert_eq!(take_directory_syncs(), Vec::<PathBuf>::new());
    }
}
