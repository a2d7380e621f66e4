//! The journal: an append-only log of master events, copy instructions and
//! slave results, kept in memory-mapped segment files. The bridge acks a
//! master event only once the journal says it is durable, and rebuilds all
//! of its state from the journal on start-up.
//!
//! Records are opaque payloads (rkyv records made elsewhere) tagged with a
//! caller-defined `kind: u16`. Each gets a sequence number: global, starting
//! at 1, +1 per record across segments, never reused. The one jump: after
//! `SealedCorruption::TruncateAndQuarantine` sets segments aside, the
//! journal continues above every number they may hold (reported in
//! [`Recovery::skipped_seqs`]), since issuing one of those again would give
//! two records the same number.
//!
//! # Layout
//! - [`layout`]: on-disk format of segments and records (diagrams there).
//! - [`options`]: [`JournalOptions`], [`SyncPolicy`] and their bounds.
//! - `segment`: one mapped segment file: create, open, scan, write, read.
//! - `flusher`: the `Group` policy's flush thread ([`GroupFlush::Thread`])
//!   and [`FlushRequest`], a closed group handed to it or to the owner.
//! - `spare`: the next segment file, prepared by a background thread.
//! - [`recovery`]: what `open` does with what it finds; [`Recovery`] report.
//! - [`reader`]: a read-only follower of a journal directory (the Postgres
//!   persister), which takes no lock and never touches the writer's mapping.
//! - `sync`: the sync policy as a pure state machine with injected time.
//! - [`error`]: [`JournalError`] and the defects it names.
//! - This file: [`Journal`], [`Reservation`], [`Entry`], [`Entries`].
//!
//! # Durability
//! `durable_seq()` is the highest sequence that survives the failures the
//! policy protects against; `synced_seq()` is the highest one this journal
//! flushed to storage (`msync(MS_SYNC)` of its range, on Linux a data sync
//! of those pages, or under `Group` with [`GroupFlush::Thread`] or
//! [`GroupFlush::Owner`] an `fdatasync` of the segment files off the
//! appender's thread, counted only once it completed). For a master event,
//! `ack_seq` is taken from the `durable_seq()` of the record that holds it.
//!
//! | policy        | process crash (kill -9, panic, OOM kill)  | OS crash or power loss                        |
//! |---------------|-------------------------------------------|-----------------------------------------------|
//! | `EveryRecord` | every record whose `append` returned `Ok` | every record whose `append` returned `Ok`     |
//! | `Group`       | every record whose `append` returned `Ok` | every record up to `durable_seq()`; a suffix after it may be lost |
//! | `Os`          | every record whose `append` returned `Ok` | only what the kernel happened to write back (by default dirty pages are at most about 30 s old); see below |
//!
//! - A process crash loses nothing written to the mapping: the pages belong
//!   to the kernel's page cache, not to the process. So under every policy
//!   a record whose append returned survives kill -9. Under `Os`,
//!   `durable_seq() == last_seq()` for that reason: the policy promises
//!   survival of a process crash only.
//! - A power loss or OS crash keeps only what reached storage. Under
//!   `EveryRecord` that is every returned append; under `Group` everything
//!   up to `durable_seq()` (the records after it may survive in part, and
//!   recovery keeps the longest valid prefix, so what is lost is always a
//!   suffix, never a hole). Under `Os` the lost part is a suffix of each
//!   segment; when it belongs to a sealed segment, recovery reports a
//!   sequence gap and refuses to open unless the options allow truncation.
//! - These guarantees assume storage that honours flushes (no volatile write
//!   cache that ignores them) and one journal using the directory at a time.
//!   The second is enforced: `open` takes an exclusive lock (`flock`) on the
//!   directory's `LOCK` file and holds it until the journal is dropped, so a
//!   second open, in this process or another, fails with
//!   [`JournalError::Locked`]. (Network file systems may not honour it.)
//! - New segments are created under a temporary name, preallocated with
//!   zeros (so the mapping can never fault for lack of disk space), and
//!   renamed; with `spare_segment` the zeros are written (and synced) ahead
//!   by a background thread (`spare`), so roll-over only writes and syncs
//!   the header, renames, and syncs the directory (waiting for the spare if
//!   it is not ready yet). Except under `Os` the file and the directory are
//!   synced before the first record is written to it, and the previous
//!   segment is flushed before a new one is created, so a group never spans
//!   a segment boundary. Roll-over of a 64 MiB segment from a ready spare took 0.72
//!   ms under `Group` and 0.14 ms under `Os`; writing its zeros at
//!   roll-over took 126 and 29 ms (`cargo bench -p tradebridge-core --bench
//!   journal_roll_over`, one run; the paced spare was ready 1.3-1.4 s after
//!   the previous roll-over).
//! - Sealing a segment at roll-over zeroes whatever reservations left after
//!   its last record (a leaked one's bytes, or an abandoned one's that the
//!   kernel may have written back) and, except under `Os`, flushes that
//!   zeroing, so a sealed segment ends in zeros on storage. Recovery still
//!   accepts (and zeroes) stray bytes after the end of a sealed segment when
//!   the next segment starts right after its last record, since then no
//!   record can be missing.
//! - On open, except under `Os`, every recovered segment and the directory
//!   are synced before `durable_seq()` reports its records, since records
//!   (and directory entries) read back after a process crash may still sit
//!   only in the page cache; a directory `open` creates is synced into its
//!   parent. A torn tail is
//!   zeroed and that zeroing is flushed under every policy, so stale bytes
//!   can never reappear behind new records after a later power loss.
//! - A failed flush poisons the journal ([`JournalError::Poisoned`]): Linux
//!   may drop the dirty pages after reporting the error, so a retry could
//!   report success falsely. The record is in the mapping but not durable;
//!   reopening recovers what is really in the files.
//!
//! # Memory
//! The offset index costs 4 bytes per retained record (a `u32` offset per
//! record, grouped per segment, plus `Vec` growth slack of at most 2x).
//! It is bounded by `index_bytes_max` (default 64 MiB, 16 Mi records);
//! 200-byte records in 4 GiB of retained segments need about 77 MB.
//! Appends allocate nothing except that amortized index growth.
//!
//! # Invariants
//! - `segments` is never empty; the last one is the active one, and only it
//!   is written.
//! - Segments are contiguous: each one's `first_seq` is the previous one's
//!   next sequence, except after a skip recorded in the later segment's
//!   header (`skipped_from_seq`, where the earlier one ends);
//!   `first_seq() <= next_seq()`.
//! - `synced_seq() <= last_seq()`; `durable_seq() <= last_seq()`.
//! - Records are never deleted except by `truncate_before`, and then only
//!   whole sealed segments whose every record is below the given sequence.

pub mod error;
mod flusher;
pub mod inspect;
pub mod layout;
pub mod options;
pub mod reader;
pub mod recovery;
mod segment;
mod spare;
mod sync;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

pub use error::{FullLimit, JournalError, RecordDefect, SegmentDefect};
pub use inspect::{inspect, Inspection, SegmentReport, SegmentState};
pub use layout::HeaderDefect;
pub use options::{GroupFlush, JournalOptions, SealedCorruption, SyncPolicy};
pub use recovery::{Recovery, Salvaged, SkippedSeqs, StaleTail, Truncation};

use error::io_error;
pub use flusher::{FlushNotify, FlushRequest};
use flusher::Flusher;
use layout::{record_bytes, LOCK_FILE_NAME};
use options::INDEX_BYTES_PER_RECORD;
use segment::Segment;
use spare::Spare;
pub use spare::SPARE_FILE_NAME;
use sync::SyncState;

/// One record read back from the journal; borrows the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'journal> {
    /// The record's sequence number.
    pub seq: u64,
    /// The caller-defined kind given at append.
    pub kind: u16,
    /// The payload bytes as appended, 8-byte aligned.
    pub payload: &'journal [u8],
}

/// Counters of what the journal did since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records appended (by `append` or a committed reservation).
    pub appends_count: u64,
    /// Flushes performed (each one may cover many records).
    pub flushes_count: u64,
    /// Appends or reservations refused with [`JournalError::Full`].
    pub full_count: u64,
    /// Segment files created by roll-over.
    pub segments_created_count: u64,
    /// Of those, the ones made from a spare prepared in the background.
    pub spares_used_count: u64,
    /// Segment files deleted by `truncate_before`.
    pub segments_deleted_count: u64,
}

/// An open journal. One owner appends; reads borrow it.
pub struct Journal {
    /// The next segment being prepared in the background, when
    /// `spare_segment` is on and the next roll-over is within the bounds.
    /// First field, so it is dropped (its worker joined) before the lock.
    spare: Option<Spare>,
    /// Who flushes a `Group` policy's groups (see [`GroupFlush`]); a flush
    /// thread is dropped (joined, its flush in flight finished) before the
    /// lock.
    flusher: GroupFlusher,
    /// Directory holding the segment files; fixed.
    directory: PathBuf,
    /// The directory's `LOCK` file, exclusively locked for the journal's
    /// life so that no other journal writes the directory; the lock goes
    /// when this is dropped (or the process dies). Never read.
    _lock: File,
    /// Validated options; fixed.
    options: JournalOptions,
    /// Retained segments, oldest first; the back one is active. Grows at
    /// roll-over, shrinks from the front in `truncate_before`.
    segments: VecDeque<Segment>,
    /// Flush bookkeeping; advanced by appends and flushes.
    sync: SyncState,
    /// Records indexed across all segments (for the index bound); follows
    /// appends and deletions.
    index_records: u64,
    /// Set by a failed flush; from then on writes are refused.
    poisoned: bool,
    /// Counters; only grow.
    stats: JournalStats,
}

impl Journal {
    /// Opens (or creates) the journal in `directory`, recovering what it
    /// holds. One journal at a time may hold a directory: while this one
    /// lives, another open of the same directory fails with
    /// [`JournalError::Locked`].
    pub fn open(directory: impl AsRef<Path>, options: JournalOptions) -> Result<(Journal, Recovery), JournalError> {
        options.validate()?;
        let directory = directory.as_ref().to_path_buf();
        recovery::create_directory(&directory, options.sync != SyncPolicy::Os)?;
        // Locked before recovery, which rewrites tails, renames and creates
        // files: a second journal must not do that under a live one.
        let lock = lock_directory(&directory)?;
        let recovered = recovery::recover(&directory, &options)?;
        let recovery = recovered.recovery;
        let segments = recovered.segments;
        assert!(!segments.is_empty());
        // Recovery synced everything it found unless the policy is Os, in
        // which case nothing is known to be on storage.
        let synced_seq = if options.sync == SyncPolicy::Os { 0 } else { recovery.last_seq };
        let flusher = match (options.sync, options.group_flush) {
            (SyncPolicy::Group { .. }, GroupFlush::Thread) => GroupFlusher::Thread(Flusher::start()?),
            (SyncPolicy::Group { .. }, GroupFlush::Owner) => GroupFlusher::Owner { request: None, busy: false },
            _ => GroupFlusher::Appender,
        };
        let mut journal = Journal {
            spare: None,
            flusher,
            directory,
            _lock: lock,
            options,
            sync: SyncState::new(options.sync, recovery.last_seq, synced_seq),
            index_records: recovery.records_count,
            segments,
            poisoned: false,
            stats: JournalStats::default(),
        };
        assert_eq!(journal.last_seq(), recovery.last_seq);
        journal.start_spare();
        Ok((journal, recovery))
    }

    /// Appends one record and returns its sequence number. Under
    /// `EveryRecord` the record is on storage when this returns `Ok`. On an
    /// `Io` error from the flush, the record is written but not durable and
    /// the journal is poisoned.
    pub fn append(&mut self, kind: u16, payload: &[u8], now_ms: u64) -> Result<u64, JournalError> {
        self.check_not_poisoned()?;
        let payload_bytes = self.check_payload_bytes(payload.len() as u64)?;
        self.make_room(record_bytes(payload_bytes))?;
        let seq = self.next_seq();
        self.active_mut().append_record(seq, kind, payload);
        self.after_publish(seq, now_ms)?;
        Ok(seq)
    }

    /// Reserves room for a record of up to `capacity_bytes` of payload at
    /// the end of the journal, for the caller to serialise into in place
    /// (no copy). Unused capacity is zeroed at commit, so reserve about what
    /// is needed. Dropping the reservation without committing abandons it.
    pub fn reserve(&mut self, kind: u16, capacity_bytes: u32) -> Result<Reservation<'_>, JournalError> {
        self.check_not_poisoned()?;
        let capacity_bytes = self.check_payload_bytes(u64::from(capacity_bytes))?;
        self.make_room(record_bytes(capacity_bytes))?;
        Ok(Reservation { journal: self, kind, capacity_bytes, committed: false })
    }

    /// The record with sequence `seq`, or `None` when it was never appended
    /// or was deleted by `truncate_before`.
    pub fn read(&self, seq: u64) -> Option<Entry<'_>> {
        let position = self.segment_position(seq)?;
        self.segments[position].entry(seq)
    }

    /// Iterates records in order from `seq` (or from the oldest retained
    /// one, when `seq` is older) to the last.
    pub fn iter_from(&self, seq: u64) -> Entries<'_> {
        let seq = seq.max(self.first_seq());
        let position = self.segment_position(seq).unwrap_or(0);
        Entries { journal: self, position, seq }
    }

    /// The file and byte offset of the record `seq`, for error reports and
    /// tools; `None` when the record is not held.
    pub fn location(&self, seq: u64) -> Option<(&Path, u64)> {
        let segment = &self.segments[self.segment_position(seq)?];
        let offset = segment.offset_of(seq)?;
        Some((segment.path(), u64::from(offset)))
    }

    /// Oldest sequence still held; `next_seq()` when none is held.
    pub fn first_seq(&self) -> u64 {
        self.segments.front().expect("segments never empty").first_seq()
    }

    /// Sequence of the last record appended (0 before the first ever); right
    /// after recovery skipped numbers, the last number skipped.
    pub fn last_seq(&self) -> u64 {
        self.next_seq() - 1
    }

    /// Sequence the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.segments.back().expect("segments never empty").next_seq()
    }

    /// Highest sequence that survives the failures the sync policy protects
    /// against (see the module documentation).
    pub fn durable_seq(&self) -> u64 {
        self.sync.durable_seq()
    }

    /// Highest sequence flushed to storage by this journal (or synced at
    /// open); under `Os` only explicit `flush` calls advance it.
    pub fn synced_seq(&self) -> u64 {
        self.sync.synced_seq()
    }

    /// Flushes every unflushed record to storage; returns `synced_seq()`.
    pub fn flush(&mut self) -> Result<u64, JournalError> {
        self.check_not_poisoned()?;
        self.flush_unsynced()?;
        Ok(self.synced_seq())
    }

    /// Lets the `Group` policy flush a group whose oldest record has waited
    /// `interval_ms`; the caller calls this from its loop with its clock.
    /// With the flush thread, also collects the outcome of its flush (an
    /// error from it is returned here, and poisons the journal) and hands
    /// it the next group when one is due. Returns `durable_seq()`.
    pub fn tick(&mut self, now_ms: u64) -> Result<u64, JournalError> {
        self.check_not_poisoned()?;
        self.collect_flush()?;
        if self.sync.is_flush_due(now_ms) {
            self.flush_group()?;
        }
        Ok(self.durable_seq())
    }

    /// Closes the open group now (the caller knows no record will join it
    /// soon): with the flush thread or the owner, hands it over unless a
    /// flush is still running (the group then waits for the first `tick`
    /// that finds it due, or the next `close_group`, after that flush
    /// completes); without, flushes it before returning. Under `Os` and
    /// `EveryRecord` there is no open group and this does nothing.
    pub fn close_group(&mut self) -> Result<(), JournalError> {
        self.check_not_poisoned()?;
        if !matches!(self.options.sync, SyncPolicy::Group { .. }) {
            return Ok(());
        }
        self.collect_flush()?;
        if self.sync.has_unrequested() {
            self.flush_group()?;
        }
        Ok(())
    }

    /// True when records were appended that no flush was started for (the
    /// open group); false while only a handed-over group awaits its sync.
    pub fn has_open_group(&self) -> bool {
        self.sync.has_unrequested()
    }

    /// True when the flush thread finished a flush whose outcome the next
    /// `tick` collects (so `durable_seq()` is about to move): the check a
    /// caller makes before it sleeps.
    pub fn has_flush_outcome(&self) -> bool {
        match &self.flusher {
            GroupFlusher::Thread(flusher) => flusher.has_outcome(),
            GroupFlusher::Appender | GroupFlusher::Owner { .. } => false,
        }
    }

    /// True while a flush runs on the flush thread or the owner's (or its
    /// outcome waits to be collected).
    pub fn is_flushing(&self) -> bool {
        match &self.flusher {
            GroupFlusher::Thread(flusher) => flusher.is_busy(),
            GroupFlusher::Owner { busy, .. } => *busy,
            GroupFlusher::Appender => false,
        }
    }

    /// Sets the callback the flush thread calls (on its thread) after each
    /// flush, so an owner that sleeps between ticks wakes to collect it.
    pub fn set_flush_notify(&mut self, notify: FlushNotify) {
        if let GroupFlusher::Thread(flusher) = &self.flusher {
            flusher.set_notify(Some(notify));
        }
    }

    /// Under [`GroupFlush::Owner`], the group to make durable now, if one
    /// was closed (by an append, `tick` or `close_group`) and no flush of
    /// the owner's is running: the owner syncs every file in it (for
    /// example with io_uring on its own executor) and then calls
    /// [`Journal::complete_flush`]. Until then no other request is handed
    /// out. Always `None` under the other modes.
    pub fn take_flush_request(&mut self) -> Option<FlushRequest> {
        match &mut self.flusher {
            GroupFlusher::Owner { request, .. } => request.take(),
            GroupFlusher::Appender | GroupFlusher::Thread(_) => None,
        }
    }

    /// The owner's flush of the last request taken finished: `Ok` with the
    /// request's `upto_seq` makes the records up to it durable; an error
    /// poisons the journal and is returned.
    pub fn complete_flush(&mut self, outcome: Result<u64, JournalError>) -> Result<(), JournalError> {
        match &mut self.flusher {
            GroupFlusher::Owner { busy, request } if *busy && request.is_none() => *busy = false,
            _ => panic!("complete_flush without a flush request taken"),
        }
        self.apply_flush_outcome(Some(outcome))
    }

    /// Deletes every sealed segment whose records are all below `seq`; the
    /// caller calls this once it no longer needs them. The active segment is
    /// never deleted, so `next_seq()` is unchanged. The release is not
    /// recorded: records of segments kept (partly released) are found again
    /// on reopen. Segments are deleted oldest first and, except under `Os`,
    /// the directory is synced after each deletion: a power loss could
    /// otherwise keep a newer segment's deletion but undo an older one's,
    /// leaving an old segment followed by a sequence gap, which recovery
    /// refuses. Returns how many segments were deleted.
    pub fn truncate_before(&mut self, seq: u64) -> Result<u32, JournalError> {
        let durable = self.options.sync != SyncPolicy::Os;
        let mut deleted = 0u32;
        // Bounded by the segment count; oldest first, so an interruption
        // leaves a contiguous suffix.
        while self.segments.len() > 1 && self.segments[1].first_seq() <= seq {
            let path = self.segments[0].path().to_path_buf();
            fs::remove_file(&path).map_err(io_error(&path, "remove segment"))?;
            let segment = self.segments.pop_front().expect("more than one segment");
            assert!(segment.next_seq() <= seq, "only wholly released segments are deleted");
            self.index_records -= segment.records_count();
            self.stats.segments_deleted_count += 1;
            deleted += 1;
            if durable {
                segment::sync_directory(&self.directory)?;
            }
        }
        debug_assert_eq!(self.index_records, self.segments.iter().map(Segment::records_count).sum::<u64>());
        if deleted > 0 {
            self.start_spare();
        }
        Ok(deleted)
    }

    /// Counters since open.
    pub fn stats(&self) -> JournalStats {
        self.stats
    }

    /// Segment files held.
    pub fn segments_count(&self) -> u32 {
        self.segments.len() as u32
    }

    /// Bytes of segment files held.
    pub fn retained_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::segment_bytes).sum()
    }

    /// Bytes of the segments that hold `seq` or any later record (the
    /// active one always counted): what the journal has grown by since the
    /// record before `seq`, to a segment.
    pub fn bytes_from(&self, seq: u64) -> u64 {
        let last = self.segments.len() - 1;
        self.segments
            .iter()
            .enumerate()
            .filter(|(position, segment)| *position == last || segment.next_seq() > seq)
            .map(|(_, segment)| segment.segment_bytes())
            .sum()
    }

    /// Memory of the offset index (entries, not counting growth slack).
    pub fn index_bytes(&self) -> u64 {
        self.index_records * INDEX_BYTES_PER_RECORD
    }

    /// The options the journal was opened with.
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// The directory holding the segment files.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn check_not_poisoned(&self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        Ok(())
    }

    fn check_payload_bytes(&self, payload_bytes: u64) -> Result<u32, JournalError> {
        let payload_bytes_max = u64::from(self.options.payload_bytes_max());
        if payload_bytes > payload_bytes_max {
            return Err(JournalError::RecordTooLarge { payload_bytes, payload_bytes_max });
        }
        Ok(payload_bytes as u32)
    }

    /// Makes sure a record of `length` bytes fits at the end of the active
    /// segment, rolling over to a new segment when it does not. Nothing is
    /// written when a bound refuses.
    fn make_room(&mut self, length: u64) -> Result<(), JournalError> {
        assert!(length <= u64::from(self.options.record_bytes_max), "length checked by check_payload_bytes");
        let index_records_max = self.options.index_bytes_max / INDEX_BYTES_PER_RECORD;
        if self.index_records + 1 > index_records_max {
            let value = (self.index_records + 1) * INDEX_BYTES_PER_RECORD;
            return Err(self.full(FullLimit::IndexBytes, value, self.options.index_bytes_max));
        }
        if length <= self.active().room_bytes() {
            return Ok(());
        }
        self.roll_over()?;
        assert!(length <= self.active().room_bytes(), "a new segment holds any record up to record_bytes_max");
        Ok(())
    }

    fn roll_over(&mut self) -> Result<(), JournalError> {
        let segments_count = self.segments.len() as u64 + 1;
        let segments_max = u64::from(self.options.segments_max);
        if segments_count > segments_max {
            return Err(self.full(FullLimit::Segments, segments_count, segments_max));
        }
        let retained_bytes = self.retained_bytes() + self.options.segment_bytes;
        if retained_bytes > self.options.retained_bytes_max {
            return Err(self.full(FullLimit::RetainedBytes, retained_bytes, self.options.retained_bytes_max));
        }
        let durable = self.options.sync != SyncPolicy::Os;
        if durable {
            // Seal the old segment on storage first, so no group of unflushed
            // records spans two files.
            self.flush_unsynced()?;
        }
        // Zero what reservations left after the logical end before a newer
        // segment exists: from then on this segment is sealed, and recovery
        // refuses non-zero bytes after the end of a sealed segment unless it
        // can prove no record is missing.
        if let Err(error) = self.active_mut().seal_tail(durable) {
            self.poisoned = true;
            return Err(error);
        }
        let first_seq = self.next_seq();
        let segment_bytes = self.options.segment_bytes;
        // The spare was started with these same (fixed) options, so it has
        // this size; create_from_spare checks the file's length anyway.
        let prepared = self.spare.take().map(Spare::take);
        let segment = match prepared {
            Some(Ok((file, spare_path))) => {
                self.stats.spares_used_count += 1;
                Segment::create_from_spare(&self.directory, first_seq, segment_bytes, durable, file, &spare_path)?
            }
            // No spare, or one that could not be prepared: write the zeros
            // now, which also reports an I/O error that lasts.
            Some(Err(_)) | None => Segment::create(&self.directory, first_seq, segment_bytes, durable, 0)?,
        };
        self.segments.push_back(segment);
        self.stats.segments_created_count += 1;
        assert_eq!(self.next_seq(), first_seq, "a new segment continues the sequence");
        self.start_spare();
        Ok(())
    }

    /// Starts preparing the next segment when the options ask for a spare,
    /// none is held, and the next roll-over would be within `segments_max`
    /// and `retained_bytes_max` (so the spare never takes disk the bounds do
    /// not allow the journal).
    fn start_spare(&mut self) {
        if !self.options.spare_segment || self.spare.is_some() || self.poisoned {
            return;
        }
        let segments_ok = (self.segments.len() as u64) < u64::from(self.options.segments_max);
        let bytes_ok = self.retained_bytes() + self.options.segment_bytes <= self.options.retained_bytes_max;
        if segments_ok && bytes_ok {
            let durable = self.options.sync != SyncPolicy::Os;
            self.spare = Some(Spare::start(&self.directory, self.options.segment_bytes, durable));
        }
    }

    /// True while a spare segment is held (being prepared or ready).
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// True when a spare is held and prepared, so the next roll-over will
    /// not wait for it.
    pub fn is_spare_ready(&self) -> bool {
        self.spare.as_ref().is_some_and(Spare::is_ready)
    }

    fn full(&mut self, limit: FullLimit, value: u64, value_max: u64) -> JournalError {
        self.stats.full_count += 1;
        JournalError::Full { limit, value, value_max }
    }

    /// Bookkeeping shared by `append` and `Reservation::commit`, after the
    /// record is in the mapping.
    fn after_publish(&mut self, seq: u64, now_ms: u64) -> Result<(), JournalError> {
        assert_eq!(seq + 1, self.next_seq(), "the record just published is the last");
        self.index_records += 1;
        self.stats.appends_count += 1;
        if self.sync.on_append(seq, now_ms) {
            self.flush_group()?;
        }
        debug_assert!(self.durable_seq() <= self.last_seq());
        Ok(())
    }

    /// Collects the flush thread's outcome when it has one; an error poisons
    /// the journal.
    fn collect_flush(&mut self) -> Result<(), JournalError> {
        let outcome = match &mut self.flusher {
            GroupFlusher::Thread(flusher) => flusher.poll(),
            GroupFlusher::Appender | GroupFlusher::Owner { .. } => None,
        };
        self.apply_flush_outcome(outcome)
    }

    fn apply_flush_outcome(&mut self, outcome: Option<Result<u64, JournalError>>) -> Result<(), JournalError> {
        match outcome {
            None => Ok(()),
            Some(Ok(seq)) => {
                // A completion that an inline flush overtook made nothing
                // newly durable: not counted.
                if seq > self.sync.synced_seq() {
                    self.stats.flushes_count += 1;
                }
                self.sync.on_flush_completed(seq);
                Ok(())
            }
            Some(Err(error)) => {
                self.poisoned = true;
                Err(error)
            }
        }
    }

    /// Flushes the open group: hands it to the flush thread or the owner
    /// when one flushes groups and is idle (when busy, the group waits for
    /// the next `tick` after that flush), or flushes it inline.
    fn flush_group(&mut self) -> Result<(), JournalError> {
        let busy = match &self.flusher {
            GroupFlusher::Appender => return self.flush_unsynced(),
            GroupFlusher::Thread(flusher) => flusher.is_busy(),
            GroupFlusher::Owner { busy, .. } => *busy,
        };
        if busy || !self.sync.has_unrequested() {
            return Ok(());
        }
        let from_seq = self.sync.requested_seq() + 1;
        let start = self.segment_position(from_seq).unwrap_or(0);
        let files = self.segments.range(start..).filter(|segment| segment.holds_from(from_seq)).map(Segment::sync_file).collect();
        let Ok(files) = files else {
            // The file could not be opened again (out of descriptors, say):
            // this group is synced here instead, as `GroupFlush::Appender`
            // would, and the next one tries again.
            return self.flush_unsynced();
        };
        let request = FlushRequest { files, upto_seq: self.last_seq() };
        match &mut self.flusher {
            GroupFlusher::Thread(flusher) => flusher.submit(request),
            GroupFlusher::Owner { request: slot, busy } => {
                *slot = Some(request);
                *busy = true;
            }
            GroupFlusher::Appender => unreachable!("returned above"),
        }
        self.sync.on_flush_requested();
        Ok(())
    }

    /// Flushes every record after `synced_seq()` on this thread, possibly
    /// across segments (under `Os` roll-over does not flush). A flush of the
    /// thread's or the owner's still running may cover some of the same
    /// records: both are syncs of the same pages, and its outcome, when
    /// collected, cannot move `synced_seq()` back. A failure poisons the
    /// journal.
    fn flush_unsynced(&mut self) -> Result<(), JournalError> {
        // A failure the flush thread already saw is reported before this
        // flush could cover the same records (it has its own file
        // description, so the kernel reports the error here too).
        self.collect_flush()?;
        if !self.sync.has_unsynced() {
            return Ok(());
        }
        let from_seq = self.sync.synced_seq() + 1;
        // Records already deleted by truncate_before need no flush.
        let start = self.segment_position(from_seq).unwrap_or(0);
        for segment in self.segments.range(start..) {
            if let Err(error) = segment.flush_from(from_seq) {
                self.poisoned = true;
                return Err(error);
            }
        }
        self.sync.on_flushed();
        self.stats.flushes_count += 1;
        assert_eq!(self.synced_seq(), self.last_seq());
        Ok(())
    }

    /// Index in `segments` of the segment that holds (or would hold) `seq`;
    /// `None` when `seq` precedes the oldest retained segment.
    fn segment_position(&self, seq: u64) -> Option<usize> {
        let after = self.segments.partition_point(|segment| segment.first_seq() <= seq);
        after.checked_sub(1)
    }

    fn active(&self) -> &Segment {
        self.segments.back().expect("segments never empty")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.back_mut().expect("segments never empty")
    }
}

/// Who flushes groups under the `Group` policy (fixed at open).
enum GroupFlusher {
    /// `msync` on the appender's thread (and every other policy).
    Appender,
    /// The journal's flush thread.
    Thread(Flusher),
    /// The owner, from requests it takes; `busy` from the hand-out (the
    /// request put in `request`) until `complete_flush`.
    Owner { request: Option<FlushRequest>, busy: bool },
}

/// Opens (creating it if needed) the directory's `LOCK` file and takes an
/// exclusive lock on it without waiting; held as long as the file is open.
fn lock_directory(directory: &Path) -> Result<File, JournalError> {
    let path = directory.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error(&path, "open lock file"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(JournalError::Locked { directory: directory.to_path_buf() }),
        Err(TryLockError::Error(source)) => Err(JournalError::Io { path, operation: "lock", source }),
    }
}

/// Room for one record at the end of the journal, written in place. Commit
/// publishes it; dropping it uncommitted zeroes what was written.
pub struct Reservation<'journal> {
    /// The journal, borrowed exclusively until commit or drop.
    journal: &'journal mut Journal,
    /// Kind the record gets at commit.
    kind: u16,
    /// Payload bytes reserved; the committed payload is at most this.
    capacity_bytes: u32,
    /// Set by `commit`, so that drop leaves the record alone.
    committed: bool,
}

impl Reservation<'_> {
    /// The reserved payload bytes, 8-byte aligned. They are usually zero but
    /// not always: after a leaked reservation (`mem::forget`) they still
    /// hold its bytes. Write every byte that the commit will publish.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let capacity_bytes = self.capacity_bytes;
        self.journal.active_mut().reserved_payload_mut(capacity_bytes)
    }

    /// Payload bytes reserved.
    pub fn capacity_bytes(&self) -> u32 {
        self.capacity_bytes
    }

    /// Publishes the first `payload_bytes` bytes written as one record and
    /// returns its sequence; the rest of the reservation is zeroed. Sync
    /// behaviour and errors are those of [`Journal::append`].
    pub fn commit(mut self, payload_bytes: u32, now_ms: u64) -> Result<u64, JournalError> {
        if payload_bytes > self.capacity_bytes {
            let capacity_bytes = self.capacity_bytes;
            return Err(JournalError::ReservationExceeded { payload_bytes, capacity_bytes });
        }
        self.committed = true;
        let seq = self.journal.next_seq();
        let (kind, capacity_bytes) = (self.kind, self.capacity_bytes);
        self.journal.active_mut().commit_reserved(seq, kind, payload_bytes, capacity_bytes);
        self.journal.after_publish(seq, now_ms)?;
        Ok(seq)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let capacity_bytes = self.capacity_bytes;
            self.journal.active_mut().abandon_reserved(capacity_bytes);
        }
    }
}

/// Iterator over records in sequence order; see [`Journal::iter_from`].
pub struct Entries<'journal> {
    /// The journal read from.
    journal: &'journal Journal,
    /// Segment holding `seq` (or the one before it when `seq` starts the
    /// next segment or lies in a skip before it); advances at segment ends.
    position: usize,
    /// Next sequence to yield.
    seq: u64,
}

impl<'journal> Iterator for Entries<'journal> {
    type Item = Entry<'journal>;

    fn next(&mut self) -> Option<Entry<'journal>> {
        let segments = &self.journal.segments;
        // Bounded: each step either yields or moves to a later segment.
        while self.position < segments.len() {
            let segment = &segments[self.position];
            // After a recorded skip a segment starts above the previous
            // one's end: continue at its first record.
            self.seq = self.seq.max(segment.first_seq());
            if let Some(entry) = segment.entry(self.seq) {
                self.seq += 1;
                return Some(entry);
            }
            self.position += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::segment::take_directory_syncs;
    use crate::journal::testing::TempDirectory;

    // A roll-over that takes the spare under a durable policy syncs the directory after its rename (the new segment's name must survive a power loss before its records count as durable); under Os it does not.
    #[test]
    fn roll_over_from_the_spare_syncs_the_directory() {
        for sync in [SyncPolicy::Group { records_max: 64, interval_ms: 1_000 }, SyncPolicy::Os] {
            let directory = TempDirectory::new("spare-sync");
            let options = JournalOptions { segment_bytes: 4096, record_bytes_max: 1024, sync, ..JournalOptions::default() };
            let (mut journal, _) = Journal::open(&directory.0, options).expect("open");
            for _ in 0..3 {
                journal.append(1, &[7u8; 1000], 0).expect("append");
            }
            assert_eq!(journal.segments_count(), 1);
            take_directory_syncs();
            journal.append(1, &[7u8; 1000], 0).expect("append that rolls over");
            assert_eq!((journal.segments_count(), journal.stats().spares_used_count), (2, 1));
            let expected = if sync == SyncPolicy::Os { Vec::new() } else { vec![directory.0.clone()] };
            assert_eq!(take_directory_syncs(), expected, "{sync:?}");
        }
    }

    // A spare that could not be prepared (here its directory does not exist, so the worker's create fails) is not used: roll-over writes the segment itself, the records survive a reopen, the failed spare leaves no file, and the next spare is prepared again.
    #[test]
    fn roll_over_after_a_failed_spare_writes_the_segment_itself() {
        for sync in [SyncPolicy::Group { records_max: 64, interval_ms: 1_000 }, SyncPolicy::Os] {
            let directory = TempDirectory::new("spare-failed");
            let options = JournalOptions { segment_bytes: 4096, record_bytes_max: 1024, sync, ..JournalOptions::default() };
            let (mut journal, _) = Journal::open(&directory.0, options).expect("open");
            for byte in 0..3u8 {
                journal.append(1, &[byte; 1000], 0).expect("append");
            }
            let missing = directory.0.join("missing");
            let durable = sync != SyncPolicy::Os;
            // The real spare is dropped (and its file removed); the failing one takes its place.
            journal.spare = Some(Spare::start(&missing, options.segment_bytes, durable));
            assert!(!directory.0.join(SPARE_FILE_NAME).exists(), "the replaced spare's file is removed");
            journal.append(1, &[3u8; 1000], 0).expect("append that rolls over without a spare");
            let stats = journal.stats();
            assert_eq!((journal.segments_count(), stats.segments_created_count, stats.spares_used_count), (2, 1, 0), "{sync:?}");
            assert!(journal.has_spare(), "the next spare is prepared again");
            journal.append(1, &[4u8; 1000], 0).expect("append");
            journal.flush().expect("flush");
            drop(journal);
            let (journal, _) = Journal::open(&directory.0, options).expect("reopen");
            let payloads: Vec<u8> = journal.iter_from(1).map(|entry| entry.payload[0]).collect();
            assert_eq!(payloads, vec![0, 1, 2, 3, 4], "{sync:?}");
            assert!(!missing.exists());
        }
    }

    // Under a durable policy retention syncs the directory once per deleted segment, so deletions reach storage in order; under Os it syncs nothing.
    #[test]
    fn truncate_before_syncs_the_directory_after_each_deletion() {
        for sync in [SyncPolicy::EveryRecord, SyncPolicy::Os] {
            let directory = TempDirectory::new("truncate-sync");
            let options = JournalOptions { segment_bytes: 4096, record_bytes_max: 1024, sync, ..JournalOptions::default() };
            let (mut journal, _) = Journal::open(&directory.0, options).expect("open");
            // Three 1000-byte records per segment: segments start at 1, 4, 7, 10.
            for _ in 0..10 {
                journal.append(1, &[7u8; 1000], 0).expect("append");
            }
            assert_eq!(journal.segments_count(), 4);
            take_directory_syncs();
            assert_eq!(journal.truncate_before(10).expect("truncate"), 3);
            let expected = if sync == SyncPolicy::Os { Vec::new() } else { vec![directory.0.clone(); 3] };
            assert_eq!(take_directory_syncs(), expected, "{sync:?}");
            assert_eq!(journal.first_seq(), 10);
        }
    }
}
