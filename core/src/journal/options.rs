//! Journal configuration: sizes, retention bounds and the sync policy, with
//! their defaults and the bounds `validate` enforces.
//!
//! # Layout
//! - [`JournalOptions`]: every knob, `Default` gives a production setting.
//! - [`SyncPolicy`]: when appended records are flushed to storage.
//! - [`SealedCorruption`]: what recovery does with a corrupt sealed segment.
//!
//! # Invariants
//! - A validated `record_bytes_max` fits in an empty segment, so an append
//!   that passes the size check always fits after a roll-over.
//! - A validated retention bound leaves room for at least two segments, and
//!   the index bound for at least two segments of the smallest records, so
//!   releasing records can always make room again.

use super::error::JournalError;
use super::layout::{
    is_aligned, records_per_segment_max, RECORD_ALIGNMENT_BYTES, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};

/// Smallest segment: one page, the unit the kernel maps and writes back.
/// Small segments exist for tests that roll over often.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest segment: record offsets in the index are `u32`, and a segment is
/// preallocated (written with zeros) before use; 1 GiB bounds that work.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;
/// Default segment: 64 MiB holds about 300 000 records of 200 bytes; its
/// zeros took about 90 ms to write and sync here, done ahead on the spare.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// Default record bound: 64 KiB is far above any trade record (a few hundred
/// bytes) yet small next to a segment.
pub const RECORD_BYTES_MAX_DEFAULT: u32 = 64 << 10;
/// Default segment count bound: with 64 MiB segments, 4 GiB of disk.
pub const SEGMENTS_MAX_DEFAULT: u32 = 64;
/// Upper bound of `segments_max`: the segment list is scanned at open and
/// searched per read; 65 536 keeps both cheap.
pub const SEGMENTS_MAX_LIMIT: u32 = 1 << 16;
/// Default disk bound: 4 GiB, the same as 64 default segments.
pub const RETAINED_BYTES_MAX_DEFAULT: u64 = 4 << 30;
/// Default index memory bound: 64 MiB = 16 Mi records at 4 bytes each.
pub const INDEX_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// Memory of one index entry: a `u32` offset inside its segment.
pub const INDEX_BYTES_PER_RECORD: u64 = 4;
/// Upper bound of `SyncPolicy::Group::records_max`: a larger group adds
/// latency to every ack in it for no further throughput.
pub const GROUP_RECORDS_MAX_LIMIT: u32 = 1 << 20;
/// Upper bound of `SyncPolicy::Group::interval_ms`: acks wait up to this long.
pub const GROUP_INTERVAL_MS_LIMIT: u64 = 10_000;

/// When appended records are flushed (`msync`) to storage. What survives each
/// kind of failure is written in the `journal` module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Flush each record's bytes before `append` returns.
    EveryRecord,
    /// Flush once `records_max` records are unflushed, or once the oldest
    /// unflushed record is `interval_ms` old when `append` or `tick` runs.
    Group { records_max: u32, interval_ms: u64 },
    /// Never flush unless `flush` is called; the kernel writes dirty pages
    /// back on its own schedule.
    Os,
}

/// What recovery does when a record in a sealed (not last) segment, or the
/// chain of segments, is corrupt, or when a record in the middle of the last
/// segment is (valid records follow it: not a torn tail, which is always
/// cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedCorruption {
    /// Refuse to open, naming the file and offset. The default: dropping
    /// records that were once durable must be an operator's decision.
    Fail,
    /// Truncate the journal at the first corrupt record and rename every
    /// later segment to `*.seg.quarantine` (kept for inspection, never read).
    TruncateAndQuarantine,
    /// Keep every valid record: a damaged segment is copied aside whole to
    /// `<segment>.at-<offset>.quarantine`, cut at the damage, and the valid
    /// records found after it are moved to new segments whose headers
    /// record the numbers skipped (reported in `Recovery::salvaged`).
    /// Defects in the chain of segments are handled as under
    /// `TruncateAndQuarantine`. What `tradebridge journal quarantine` opens
    /// the journal with.
    Salvage,
}

/// Everything configurable about a journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// Size of each new segment file; existing segments keep the size in
    /// their header. Multiple of 8 in `SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX`.
    pub segment_bytes: u64,
    /// Largest record (header + payload + padding). Multiple of 8, at least
    /// one header plus 8, at most `segment_bytes - 64`. Only appends check
    /// it; recovery accepts any record that fits its segment, so lowering it
    /// never drops data.
    pub record_bytes_max: u32,
    /// When records are flushed; see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// Most segment files kept at once (2..=`SEGMENTS_MAX_LIMIT`).
    pub segments_max: u32,
    /// Most bytes of segment files kept at once (at least 2 segments).
    pub retained_bytes_max: u64,
    /// Most memory for the offset index (4 bytes per retained record).
    pub index_bytes_max: u64,
    /// What recovery does with a corrupt sealed segment.
    pub sealed_corruption: SealedCorruption,
    /// Prepare the next segment file (its zeros written, and synced under a
    /// durable policy) on a background thread while the active one fills,
    /// so roll-over only writes and syncs a header and renames, instead of
    /// writing `segment_bytes` of zeros on the appender's thread. The spare
    /// counts against `segments_max` and `retained_bytes_max`: it is
    /// prepared only when the next roll-over would be allowed.
    pub spare_segment: bool,
    /// Who flushes each group under `Group` (see [`GroupFlush`]).
    /// `EveryRecord` always flushes on the appender's thread; `Os` has no
    /// flush but an explicit one.
    pub group_flush: GroupFlush,
}

/// Who makes a closed group durable under [`SyncPolicy::Group`]. Explicit
/// `flush` calls, roll-over and open always flush on the caller's thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupFlush {
    /// `msync` of the group's range on the appender's thread, which waits.
    Appender,
    /// `fdatasync` of the group's files on a thread of the journal's own,
    /// while the appender goes on with the next group; it learns of the
    /// flush at its next `tick` (a notify callback tells it when).
    Thread,
    /// The owner takes each closed group with `take_flush_request`, syncs
    /// its files however it likes (io_uring on its own executor) and
    /// reports with `complete_flush`.
    Owner,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            // The bridge acks only durable events, so the safe policy is
            // the default; a deployment opts into Group for latency.
            sync: SyncPolicy::EveryRecord,
            segments_max: SEGMENTS_MAX_DEFAULT,
            retained_bytes_max: RETAINED_BYTES_MAX_DEFAULT,
            index_bytes_max: INDEX_BYTES_MAX_DEFAULT,
            sealed_corruption: SealedCorruption::Fail,
            spare_segment: true,
            group_flush: GroupFlush::Appender,
        }
    }
}

impl JournalOptions {
    /// Largest payload an append accepts under these options.
    pub fn payload_bytes_max(&self) -> u32 {
        self.record_bytes_max - RECORD_HEADER_BYTES
    }

    /// Checks every bound; the error names the first option out of range.
    pub fn validate(&self) -> Result<(), JournalError> {
        let alignment = u64::from(RECORD_ALIGNMENT_BYTES);
        let segment_ok = (SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes)
            && is_aligned(self.segment_bytes);
        check(segment_ok, "segment_bytes", self.segment_bytes, "a multiple of 8 in 4096..=1073741824")?;

        let record_bytes_max = u64::from(self.record_bytes_max);
        let record_ok = record_bytes_max >= u64::from(RECORD_HEADER_BYTES) + alignment
            && is_aligned(record_bytes_max)
            && record_bytes_max <= self.segment_bytes - u64::from(SEGMENT_HEADER_BYTES);
        check(record_ok, "record_bytes_max", record_bytes_max, "a multiple of 8, >= 32 and <= segment_bytes - 64")?;

        let segments_ok = (2..=SEGMENTS_MAX_LIMIT).contains(&self.segments_max);
        check(segments_ok, "segments_max", u64::from(self.segments_max), "2..=65536")?;

        let retained_ok = self.retained_bytes_max >= 2 * self.segment_bytes;
        check(retained_ok, "retained_bytes_max", self.retained_bytes_max, "at least 2 * segment_bytes")?;

        let index_ok = self.index_bytes_max >= 2 * index_bytes_per_segment_max(self.segment_bytes);
        check(
            index_ok,
            "index_bytes_max",
            self.index_bytes_max,
            "at least the index of two segments of empty records: 2 * 4 * (segment_bytes - 64) / 24",
        )?;

        if let SyncPolicy::Group { records_max, interval_ms } = self.sync {
            let records_ok = (1..=GROUP_RECORDS_MAX_LIMIT).contains(&records_max);
            check(records_ok, "sync.records_max", u64::from(records_max), "1..=1048576")?;
            let interval_ok = interval_ms <= GROUP_INTERVAL_MS_LIMIT;
            check(interval_ok, "sync.interval_ms", interval_ms, "0..=10000")?;
        }
        Ok(())
    }
}

/// Index memory of one segment filled with the smallest records (empty
/// payloads): the worst case the index bound must allow.
pub fn index_bytes_per_segment_max(segment_bytes: u64) -> u64 {
    records_per_segment_max(segment_bytes) * INDEX_BYTES_PER_RECORD
}

fn check(ok: bool, field: &'static str, value: u64, expected: &'static str) -> Result<(), JournalError> {
    if ok {
        Ok(())
    } else {
        Err(JournalError::InvalidOption { field, value, expected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(options: JournalOptions) -> &'static str {
        match options.validate() {
            Err(JournalError::InvalidOption { field, .. }) => field,
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    // The defaults are valid and each bound, once crossed, names its own field.
    #[test]
    fn validate_names_the_field_out_of_range() {
        let base = JournalOptions::default();
        base.validate().expect("defaults are valid");
        assert_eq!(base.payload_bytes_max(), 65_512);

        assert_eq!(field_of(JournalOptions { segment_bytes: 4095, ..base }), "segment_bytes");
        assert_eq!(field_of(JournalOptions { segment_bytes: 4100, ..base }), "segment_bytes");
        assert_eq!(field_of(JournalOptions { segment_bytes: 2 << 30, ..base }), "segment_bytes");
        assert_eq!(field_of(JournalOptions { record_bytes_max: 24, ..base }), "record_bytes_max");
        assert_eq!(field_of(JournalOptions { record_bytes_max: 36, ..base }), "record_bytes_max");
        let small = JournalOptions { segment_bytes: 4096, record_bytes_max: 4040, ..base };
        assert_eq!(field_of(small), "record_bytes_max");
        JournalOptions { record_bytes_max: 4032, ..small }.validate().expect("fits exactly");
        assert_eq!(field_of(JournalOptions { segments_max: 1, ..base }), "segments_max");
        assert_eq!(field_of(JournalOptions { retained_bytes_max: base.segment_bytes, ..base }), "retained_bytes_max");
        assert_eq!(field_of(JournalOptions { index_bytes_max: 1 << 20, ..base }), "index_bytes_max");
        let group = SyncPolicy::Group { records_max: 0, interval_ms: 1 };
        assert_eq!(field_of(JournalOptions { sync: group, ..base }), "sync.records_max");
        let group = SyncPolicy::Group { records_max: 8, interval_ms: 60_000 };
        assert_eq!(field_of(JournalOptions { sync: group, ..base }), "sync.interval_ms");
    }

    // The error message names the field, the value and what was expected.
    #[test]
    fn invalid_option_message_names_value_and_expectation() {
        let options = JournalOptions { segments_max: 1, ..JournalOptions::default() };
        let message = options.validate().expect_err("invalid").to_string();
        assert!(message.contains("segments_max = 1"), "{message}");
        assert!(message.contains("2..=65536"), "{message}");
    }
}
