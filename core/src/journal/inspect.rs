//! Read-only inspection of a journal directory: what `Journal::open` would
//! find in each segment, without changing a byte (no lock taken, no tail
//! zeroed, no file extended, renamed or removed). What `tradebridge journal
//! check` prints.
//!
//! # Layout
//! - [`inspect`]: the procedure; [`Inspection`], [`SegmentReport`],
//!   [`SegmentState`]: what it found.
//!
//! # Invariants
//! - A state is [`SegmentState::refuses_open`] exactly when `Journal::open`
//!   with the default `SealedCorruption::Fail` fails on that segment.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{io_error, JournalError, RecordDefect, SegmentDefect};
use super::layout::{parse_segment_file_name, SEGMENT_HEADER_BYTES};
use super::recovery::records_skip;
use super::segment::{check_segment_header, runs_after, scan_records};

/// What [`inspect`] found, segment by segment, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The directory inspected.
    pub directory: PathBuf,
    /// One report per `*.seg` file, in sequence order.
    pub segments: Vec<SegmentReport>,
    /// Files set aside by earlier recoveries (`*.quarantine`), by name.
    pub quarantined_files: Vec<PathBuf>,
}

impl Inspection {
    /// True when `Journal::open` (default options) would refuse the journal.
    pub fn refuses_open(&self) -> bool {
        self.segments.iter().any(|segment| segment.state.refuses_open())
    }
}

/// One segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    pub path: PathBuf,
    /// First sequence number, from the file name.
    pub first_seq: u64,
    /// Valid records from the start up to the first defect.
    pub records: u64,
    /// Numbers a recovery skipped before this segment (its header's
    /// `skipped_from_seq`), 0 for none.
    pub skipped_from_seq: u64,
    pub state: SegmentState,
}

/// What recovery would make of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentState {
    /// Every record valid, zeros after the last.
    Clean,
    /// The last segment ends in a record a crash cut short, with nothing
    /// valid after it: the next open cuts it (no acked record is there).
    TornTail { offset: u64, defect: RecordDefect },
    /// Non-zero bytes after the end of a sealed segment whose successor
    /// starts right after its last record: zeroed at the next open.
    StaleTail { offset: u64 },
    /// A bad record with valid records after it (`runs`: first seq and
    /// count of each run of valid records), or any bad record in a sealed
    /// segment: the next open refuses the journal.
    Damaged { offset: u64, defect: RecordDefect, runs: Vec<(u64, u64)> },
    /// The header cannot be used.
    BadHeader(SegmentDefect),
    /// The last segment's file is all zero: its creation never reached the
    /// header; the next open creates it again.
    HalfCreated,
    /// The segment does not start where the previous one ended, and its
    /// header records no skip from there (its records are counted, any
    /// defect in them not looked at).
    Gap { expected_seq: u64 },
}

impl SegmentState {
    /// True when the default open refuses a journal with this segment.
    pub fn refuses_open(&self) -> bool {
        matches!(self, SegmentState::Damaged { .. } | SegmentState::BadHeader(_) | SegmentState::Gap { .. })
    }
}

impl fmt::Display for SegmentState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentState::Clean => formatter.write_str("clean"),
            SegmentState::TornTail { offset, defect } => {
                write!(formatter, "torn tail at offset {offset} ({defect}); nothing valid after it, cut at the next start")
            }
            SegmentState::StaleTail { offset } => {
                write!(formatter, "stray bytes after its end at offset {offset}; no record missing, zeroed at the next start")
            }
            SegmentState::Damaged { offset, defect, runs } => {
                write!(formatter, "DAMAGED at offset {offset}: {defect}")?;
                if runs.is_empty() {
                    formatter.write_str("; a sealed segment")?;
                } else {
                    let kept: u64 = runs.iter().map(|(_, count)| count).sum();
                    write!(formatter, "; {kept} valid records after it (")?;
                    for (index, (first_seq, count)) in runs.iter().enumerate() {
                        let separator = if index == 0 { "" } else { ", " };
                        write!(formatter, "{separator}seq {first_seq}..={}", first_seq + count - 1)?;
                    }
                    formatter.write_str(")")?;
                }
                formatter.write_str("; the bridge refuses to start")
            }
            SegmentState::BadHeader(defect) => write!(formatter, "BAD HEADER: {defect}; the bridge refuses to start"),
            SegmentState::HalfCreated => formatter.write_str("all zero (creation interrupted); created again at the next start"),
            SegmentState::Gap { expected_seq } => write!(
                formatter,
                "GAP: expected a segment starting at seq {expected_seq} (one is missing); the bridge refuses to start"
            ),
        }
    }
}

/// Inspects the journal in `directory` without changing anything.
pub fn inspect(directory: &Path) -> Result<Inspection, JournalError> {
    let mut listing = Vec::new();
    let mut quarantined_files = Vec::new();
    for entry in fs::read_dir(directory).map_err(io_error(directory, "list directory"))? {
        let entry = entry.map_err(io_error(directory, "list directory"))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(first_seq) = parse_segment_file_name(&name) {
            listing.push((first_seq, entry.path()));
        } else if name.ends_with(".quarantine") {
            quarantined_files.push(entry.path());
        }
    }
    listing.sort_unstable_by_key(|(first_seq, _)| *first_seq);
    quarantined_files.sort();
    let mut segments = Vec::with_capacity(listing.len());
    let mut expected_seq: Option<u64> = None;
    for (position, (name_seq, path)) in listing.iter().enumerate() {
        let is_last = position + 1 == listing.len();
        let next_name_seq = listing.get(position + 1).map(|(next, _)| *next);
        let report = inspect_segment(path, *name_seq, expected_seq, next_name_seq, is_last)?;
        // Where the next segment should start: after this one's last valid
        // record, or after the last valid run past its damage; unknown after
        // a header that does not read (the chain check resumes after it).
        expected_seq = match &report.state {
            SegmentState::BadHeader(_) | SegmentState::HalfCreated => None,
            SegmentState::Damaged { runs, .. } if !runs.is_empty() => runs.last().map(|(first_seq, count)| first_seq + count),
            SegmentState::Damaged { .. } => None,
            _ => Some(report.first_seq + report.records),
        };
        segments.push(report);
    }
    Ok(Inspection { directory: directory.to_path_buf(), segments, quarantined_files })
}

fn inspect_segment(
    path: &Path,
    name_seq: u64,
    expected_seq: Option<u64>,
    next_name_seq: Option<u64>,
    is_last: bool,
) -> Result<SegmentReport, JournalError> {
    let bytes = fs::read(path).map_err(io_error(path, "read"))?;
    let report = |records, skipped_from_seq, state| SegmentReport {
        path: path.to_path_buf(),
        first_seq: name_seq,
        records,
        skipped_from_seq,
        state,
    };
    let header_bytes = &bytes[..bytes.len().min(SEGMENT_HEADER_BYTES as usize)];
    let header = match check_segment_header(header_bytes, name_seq, bytes.len() as u64) {
        Ok(header) => header,
        Err(_) if is_last && bytes.iter().all(|byte| *byte == 0) => return Ok(report(0, 0, SegmentState::HalfCreated)),
        Err(defect) => return Ok(report(0, 0, SegmentState::BadHeader(defect))),
    };
    let gap = expected_seq.filter(|expected_seq| {
        name_seq != *expected_seq && !records_skip(&header, name_seq, *expected_seq)
    });
    let file_bytes = bytes.len() as u64;
    let mut padded = bytes;
    padded.resize(usize::try_from(header.segment_bytes).expect("segment_bytes bounded"), 0);
    let mut offsets = Vec::new();
    let end = scan_records(&padded, name_seq, file_bytes, &mut offsets);
    let records = offsets.len() as u64;
    let offset = u64::from(end.end_offset);
    let state = match end.defect {
        _ if gap.is_some() => SegmentState::Gap { expected_seq: gap.expect("checked") },
        None => SegmentState::Clean,
        Some(RecordDefect::BytesAfterEnd { .. }) if next_name_seq == Some(name_seq + records) => {
            SegmentState::StaleTail { offset }
        }
        Some(defect) => {
            let runs = runs_after(&padded, end.end_offset, name_seq + records, file_bytes);
            let runs: Vec<(u64, u64)> = runs.iter().map(|run| (run.first_seq, run.offsets.len() as u64)).collect();
            if is_last && runs.is_empty() {
                SegmentState::TornTail { offset, defect }
            } else {
                SegmentState::Damaged { offset, defect, runs }
            }
        }
    };
    Ok(report(records, header.skipped_from_seq, state))
}
