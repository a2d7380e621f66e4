//! Errors of the journal and the defects that recovery finds.
//!
//! # Layout
//! - [`JournalError`]: what a journal call can fail with.
//! - [`RecordDefect`]: why a record is not valid (shared by errors and by the
//!   recovery report, which names the defect that ended the log).
//! - [`SegmentDefect`]: why a segment file cannot be used.
//! - [`FullLimit`]: which retention bound refused an append.
//!
//! # Invariants
//! - Every message names the file, the offset or field, the value found and
//!   what was expected, so that an operator can act on it without a debugger.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::layout::HeaderDefect;

/// Why the bytes at a record position are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordDefect {
    /// The record runs past the bytes the file held when it was opened: the
    /// file was cut (a torn write).
    Torn { record_end_offset: u64, file_bytes: u64 },
    /// The length field points past the end of the segment.
    LengthOutOfRange { payload_bytes: u32, room_bytes: u64 },
    /// The stored checksum does not match the record bytes.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The record's sequence number is not the previous one plus one.
    SequenceOutOfOrder { expected_seq: u64, found_seq: u64 },
    /// A padding byte after the payload is not zero.
    PaddingNotZero { offset: u64 },
    /// The header is all zero (a clean end) but a later byte of the segment
    /// is not: data was written beyond the end, then its start was lost.
    BytesAfterEnd { nonzero_offset: u64 },
}

/// Why a segment file cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentDefect {
    /// The header itself is damaged or foreign.
    Header(HeaderDefect),
    /// The header's `first_seq` differs from the number in the file name.
    FirstSeqMismatch { name_seq: u64, header_seq: u64 },
    /// The header's `first_seq` is 0; sequence numbers start at 1.
    FirstSeqZero,
    /// The header's `segment_bytes` is outside the bounds this code maps.
    SegmentBytesOutOfRange { segment_bytes: u64, bytes_min: u64, bytes_max: u64 },
    /// The file is longer than the header says the segment is.
    FileTooLong { file_bytes: u64, segment_bytes: u64 },
    /// The header's `skipped_from_seq` is not below its `first_seq`.
    SkippedFromSeqNotBelowFirstSeq { skipped_from_seq: u64, first_seq: u64 },
}

/// Which retention bound an append would have crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullLimit {
    /// `JournalOptions::segments_max`: count of segment files.
    Segments,
    /// `JournalOptions::retained_bytes_max`: sum of segment file sizes.
    RetainedBytes,
    /// `JournalOptions::index_bytes_max`: memory of the offset index.
    IndexBytes,
}

/// What a journal call can fail with.
#[derive(Debug)]
pub enum JournalError {
    /// An operating-system call failed on `path`.
    Io { path: PathBuf, operation: &'static str, source: io::Error },
    /// An option is outside its bounds.
    InvalidOption { field: &'static str, value: u64, expected: &'static str },
    /// A payload larger than `record_bytes_max` allows.
    RecordTooLarge { payload_bytes: u64, payload_bytes_max: u64 },
    /// A reservation was committed with more bytes than it reserved.
    ReservationExceeded { payload_bytes: u32, capacity_bytes: u32 },
    /// Appending needs a new segment (or index memory) beyond a configured
    /// bound: the caller must release records with `truncate_before` first.
    /// Nothing was written.
    Full { limit: FullLimit, value: u64, value_max: u64 },
    /// A segment file cannot be used.
    BadSegment { path: PathBuf, defect: SegmentDefect },
    /// A record that is not at the end of the journal is invalid: records
    /// after it exist and would be lost by truncating, so recovery stops.
    CorruptRecord { path: PathBuf, offset: u64, defect: RecordDefect },
    /// A segment does not start where the previous one ended.
    SequenceGap { path: PathBuf, expected_seq: u64, found_seq: u64 },
    /// Another open journal (in this or another process) holds the lock on
    /// the directory's `LOCK` file.
    Locked { directory: PathBuf },
    /// An earlier flush failed. The kernel may have dropped the unwritten
    /// pages after reporting that error, so a retry could falsely succeed;
    /// the journal refuses further work and must be reopened (recovery then
    /// reads back what really is in the files).
    Poisoned,
}

impl fmt::Display for RecordDefect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordDefect::Torn { record_end_offset, file_bytes } => write!(
                formatter,
                "torn record: it ends at byte {record_end_offset} but the file held {file_bytes} bytes"
            ),
            RecordDefect::LengthOutOfRange { payload_bytes, room_bytes } => write!(
                formatter,
                "payload_bytes {payload_bytes} out of range: at most {room_bytes} bytes remain in the segment"
            ),
            RecordDefect::ChecksumMismatch { stored, computed } => write!(
                formatter,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            RecordDefect::SequenceOutOfOrder { expected_seq, found_seq } => {
                write!(formatter, "seq {found_seq} out of order: expected {expected_seq}")
            }
            RecordDefect::PaddingNotZero { offset } => {
                write!(formatter, "padding byte at offset {offset} is not zero")
            }
            RecordDefect::BytesAfterEnd { nonzero_offset } => write!(
                formatter,
                "zero header marks the end, but byte {nonzero_offset} after it is not zero"
            ),
        }
    }
}

impl fmt::Display for SegmentDefect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SegmentDefect::Header(HeaderDefect::ShortFile { file_bytes }) => write!(
                formatter,
                "file holds {file_bytes} bytes, fewer than the {} of a segment header",
                super::layout::SEGMENT_HEADER_BYTES
            ),
            SegmentDefect::Header(HeaderDefect::BadMagic) => {
                write!(formatter, "magic is not {:?}: not a journal segment", "TBJOURNL")
            }
            SegmentDefect::Header(HeaderDefect::UnsupportedVersion { version }) => write!(
                formatter,
                "version {version} unsupported: expected {}",
                super::layout::SEGMENT_VERSION
            ),
            SegmentDefect::Header(HeaderDefect::ChecksumMismatch { stored, computed }) => write!(
                formatter,
                "header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            SegmentDefect::Header(HeaderDefect::HeaderBytes { header_bytes }) => write!(
                formatter,
                "header_bytes {header_bytes}: expected {}",
                super::layout::SEGMENT_HEADER_BYTES
            ),
            SegmentDefect::FirstSeqMismatch { name_seq, header_seq } => write!(
                formatter,
                "header first_seq {header_seq} differs from the file name's {name_seq}"
            ),
            SegmentDefect::FirstSeqZero => {
                formatter.write_str("header first_seq 0: expected at least 1 (sequence numbers start at 1)")
            }
            SegmentDefect::SegmentBytesOutOfRange { segment_bytes, bytes_min, bytes_max } => write!(
                formatter,
                "header segment_bytes {segment_bytes}: expected a multiple of 8 in {bytes_min}..={bytes_max}"
            ),
            SegmentDefect::FileTooLong { file_bytes, segment_bytes } => write!(
                formatter,
                "file holds {file_bytes} bytes, more than its header's segment_bytes {segment_bytes}"
            ),
            SegmentDefect::SkippedFromSeqNotBelowFirstSeq { skipped_from_seq, first_seq } => write!(
                formatter,
                "header skipped_from_seq {skipped_from_seq}: expected 0 or below first_seq {first_seq}"
            ),
        }
    }
}

impl fmt::Display for FullLimit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            FullLimit::Segments => "segments_max",
            FullLimit::RetainedBytes => "retained_bytes_max",
            FullLimit::IndexBytes => "index_bytes_max",
        })
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { path, operation, source } => {
                write!(formatter, "journal {operation} failed on {}: {source}", path.display())
            }
            JournalError::InvalidOption { field, value, expected } => {
                write!(formatter, "journal option {field} = {value}: expected {expected}")
            }
            JournalError::RecordTooLarge { payload_bytes, payload_bytes_max } => write!(
                formatter,
                "payload of {payload_bytes} bytes too large: expected at most {payload_bytes_max} (record_bytes_max)"
            ),
            JournalError::ReservationExceeded { payload_bytes, capacity_bytes } => write!(
                formatter,
                "commit of payload_bytes {payload_bytes}: expected at most the {capacity_bytes} reserved"
            ),
            JournalError::Full { limit, value, value_max } => write!(
                formatter,
                "journal full: appending needs {limit} {value}, above the bound {value_max}; release records with truncate_before"
            ),
            JournalError::BadSegment { path, defect } => {
                write!(formatter, "bad journal segment {}: {defect}", path.display())
            }
            JournalError::CorruptRecord { path, offset, defect } => write!(
                formatter,
                "corrupt journal record in {} at offset {offset}: {defect}; later records exist, so recovery refuses to drop them",
                path.display()
            ),
            JournalError::SequenceGap { path, expected_seq, found_seq } => write!(
                formatter,
                "journal segment {} starts at seq {found_seq}: expected {expected_seq} (a segment is missing or its tail was lost)",
                path.display()
            ),
            JournalError::Locked { directory } => write!(
                formatter,
                "journal directory {} is in use: another open journal holds the lock on its LOCK file; expected one owner at a time",
                directory.display()
            ),
            JournalError::Poisoned => formatter.write_str(
                "journal poisoned by an earlier flush failure: reopen it to recover what is on disk",
            ),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Builds the `Io` variant; a closure for `map_err` that names the path and
/// the operation.
pub(crate) fn io_error(path: &std::path::Path, operation: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { path, operation, source }
}
