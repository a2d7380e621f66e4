//! One segment file: creating it (preallocated, header written), opening and
//! checking an existing one, scanning its records into the offset index, and
//! writing records into its mapping.
//!
//! # Layout
//! - [`Segment`]: an open, mapped segment with its part of the index.
//! - [`scan_records`]: the record validator used by recovery, a pure
//!   function over bytes.
//!
//! # Invariants
//! - `end_offset` is 8-aligned, `>= SEGMENT_HEADER_BYTES`, `<= segment_bytes`.
//! - `end_offset <= reserved_end_offset <= segment_bytes`.
//! - Every byte in `[reserved_end_offset, segment_bytes)` is zero, in memory
//!   and on storage, once recovery has run, and appends keep it so (payload
//!   padding and unused reservation space are zeroed). Bytes in
//!   `[end_offset, reserved_end_offset)` may not be: a leaked `Reservation`
//!   (`mem::forget`) leaves its bytes there, and an abandoned or partly used
//!   reservation is zeroed in memory only, so the kernel may already have
//!   written its bytes back. Each later record still writes its whole
//!   header, payload and padding over them; sealing the segment at roll-over
//!   zeroes (and under a durable policy flushes) that range, so a sealed
//!   segment ends in zeros on storage.
//! - `record_offsets[i]` is the offset of the record with sequence
//!   `first_seq + i`; offsets strictly increase.
//! - The file is never shortened while mapped, so the mapping never faults
//!   on a missing page.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::cell::OnceCell;
use std::sync::Arc;

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::error::{io_error, JournalError, RecordDefect, SegmentDefect};
use super::layout::{
    SegmentHeader, decode_record_header, decode_segment_header, is_aligned, encode_record_header_fields, encode_segment_header,
    is_zero_header, record_bytes, record_checksum, records_per_segment_max, segment_file_name, store_record_checksum,
    RECORD_ALIGNMENT_BYTES, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, TEMPORARY_EXTENSION,
};
use super::options::{SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use super::Entry;

/// Granularity of released pages: the largest common base page (arm64 with
/// 64 KiB pages included), so the start of a release is always page-aligned.
const RELEASE_PAGE_BYTES: u64 = 64 * 1024;

/// Size of the zero buffer used to preallocate and re-extend files; large
/// enough that writing 64 MiB takes a thousand calls, small enough to sit on
/// the stack of no one (it is a static).
const ZERO_CHUNK_BYTES: usize = 64 << 10;
static ZERO_CHUNK: [u8; ZERO_CHUNK_BYTES] = [0; ZERO_CHUNK_BYTES];

/// An open, mapped segment file.
pub(crate) struct Segment {
    /// Where the file lives; named in every error about it.
    path: PathBuf,
    /// The open file; kept for `sync_data` and so the mapping's file stays
    /// open for the segment's life.
    file: File,
    /// The file opened again (an open file description of its own) for
    /// whoever syncs groups off this thread: Linux reports a writeback
    /// error once per open file description, so a failed sync there must
    /// not consume the error an msync of the mapping would see. Opened at
    /// the first hand-over.
    sync_file: OnceCell<Arc<File>>,
    /// The whole file mapped read-write; records are written and read here.
    map: MmapMut,
    /// Sequence of this segment's first record; fixed at creation.
    first_seq: u64,
    /// 0, or where the sequence numbers skipped before this segment start
    /// (the previous segment ends there); from the header, fixed.
    skipped_from_seq: u64,
    /// Length of the file and mapping; fixed at creation.
    segment_bytes: u32,
    /// Offset of each record, indexed by `seq - first_seq`; grows by one per
    /// append or per record found by the scan. 4 bytes per record.
    record_offsets: Vec<u32>,
    /// Logical end: where the next record goes; advances per record.
    end_offset: u32,
    /// High-water mark of bytes handed out for writing: the end of the
    /// furthest record or reservation ever placed in this segment. Bytes
    /// between `end_offset` and here may be non-zero in memory or on storage
    /// (see the module invariants). Raised by reservations and records,
    /// lowered to `end_offset` only by `seal_tail` and recovery's scan.
    reserved_end_offset: u32,
}

/// A segment opened from disk before its records are scanned.
pub(crate) struct OpenedSegment {
    /// The mapped segment, with an empty index and `end_offset` at the header.
    pub(crate) segment: Segment,
    /// Length of the file as found, before any re-extension.
    pub(crate) file_bytes: u64,
}

/// Where a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Offset just after the last valid record.
    pub(crate) end_offset: u32,
    /// Why the scan stopped, `None` for a clean end (zero header and zero
    /// tail, or a full segment).
    pub(crate) defect: Option<RecordDefect>,
}

impl Segment {
    /// Creates a segment file for `first_seq`, preallocated with zeros so the
    /// mapping can never fault for lack of disk space. The file is built
    /// under a temporary name and renamed, so a crash never leaves a
    /// half-made file under a segment name. With `durable`, the file and the
    /// directory are synced before returning (needed for the rename to
    /// survive power loss). `skipped_from_seq` is 0 except when recovery
    /// skips sequence numbers before this segment.
    pub(crate) fn create(
        directory: &Path,
        first_seq: u64,
        segment_bytes: u64,
        durable: bool,
        skipped_from_seq: u64,
    ) -> Result<Segment, JournalError> {
        assert!(first_seq >= 1);
        assert!(skipped_from_seq < first_seq, "skipped numbers lie below the new segment");
        assert!(valid_segment_bytes(segment_bytes), "segment_bytes {segment_bytes} validated by options");
        let path = directory.join(segment_file_name(first_seq));
        let temporary_path = path.with_extension(format!("seg.{TEMPORARY_EXTENSION}"));
        let header = encode_segment_header(first_seq, segment_bytes, skipped_from_seq);
        let result = write_new_segment_file(&temporary_path, &path, &header, segment_bytes, durable);
        let file = match result {
            Ok(file) => file,
            Err(error) => {
                // Best effort: a leftover temporary file is also removed on
                // the next open, so a failure here changes nothing.
                let _ = fs::remove_file(&temporary_path);
                return Err(error);
            }
        };
        if durable {
            sync_directory(directory)?;
        }
        let map = map_file(&file, &path, segment_bytes)?;
        Ok(Segment::from_parts(path, file, map, first_seq, segment_bytes, skipped_from_seq))
    }

    /// Turns a prepared spare (a file of `segment_bytes` zeros at
    /// `spare_path`, synced when `durable`) into the segment for
    /// `first_seq`: writes the header in place, syncs it when `durable`, and
    /// renames the file to its segment name (syncing the directory when
    /// `durable`). The same file as [`Segment::create`] makes, without
    /// writing the zeros now.
    pub(crate) fn create_from_spare(
        directory: &Path,
        first_seq: u64,
        segment_bytes: u64,
        durable: bool,
        spare: File,
        spare_path: &Path,
    ) -> Result<Segment, JournalError> {
        use std::os::unix::fs::FileExt as _;
        assert!(first_seq >= 1);
        assert!(valid_segment_bytes(segment_bytes), "segment_bytes {segment_bytes} validated by options");
        let length = spare.metadata().map_err(io_error(spare_path, "stat spare"))?.len();
        if length != segment_bytes {
            return Err(JournalError::Io {
                path: spare_path.to_path_buf(),
                operation: "check spare length",
                source: std::io::Error::other(format!("spare is {length} bytes, the segment {segment_bytes}")),
            });
        }
        let path = directory.join(segment_file_name(first_seq));
        let header = encode_segment_header(first_seq, segment_bytes, 0);
        let prepared = (|| {
            spare.write_all_at(&header, 0).map_err(io_error(spare_path, "write header"))?;
            if durable {
                // Only the header's block changed since the spare was
                // synced; a data sync writes it.
                spare.sync_data().map_err(io_error(spare_path, "fsync header"))?;
            }
            fs::rename(spare_path, &path).map_err(io_error(&path, "rename spare"))
        })();
        if let Err(error) = prepared {
            // Not renamed: the spare is no segment and counts against no
            // bound, so it must not stay on disk (recovery would remove it
            // too, but only at the next start).
            let _ = fs::remove_file(spare_path);
            return Err(error);
        }
        if durable {
            sync_directory(directory)?;
        }
        let map = map_file(&spare, &path, segment_bytes)?;
        Ok(Segment::from_parts(path, spare, map, first_seq, segment_bytes, 0))
    }

    /// Opens an existing segment and checks its header against the file
    /// name's `name_seq`. A file shorter than its segment (cut) is extended
    /// with zeros back to full length.
    pub(crate) fn open(path: &Path, name_seq: u64) -> Result<OpenedSegment, JournalError> {
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io_error(path, "open"))?;
        let file_bytes = file.metadata().map_err(io_error(path, "stat"))?.len();
        let mut header_bytes = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
        (&mut file)
            .take(u64::from(SEGMENT_HEADER_BYTES))
            .read_to_end(&mut header_bytes)
            .map_err(io_error(path, "read header"))?;
        let header = check_segment_header(&header_bytes, name_seq, file_bytes)
            .map_err(|defect| JournalError::BadSegment { path: path.to_path_buf(), defect })?;
        let (skipped_from_seq, segment_bytes) = (header.skipped_from_seq, header.segment_bytes);
        if file_bytes < segment_bytes {
            file.seek(SeekFrom::End(0)).map_err(io_error(path, "seek"))?;
            write_zeros(&mut file, segment_bytes - file_bytes).map_err(io_error(path, "re-extend"))?;
        }
        let map = map_file(&file, path, segment_bytes)?;
        let segment = Segment::from_parts(path.to_path_buf(), file, map, name_seq, segment_bytes, skipped_from_seq);
        Ok(OpenedSegment { segment, file_bytes })
    }

    fn from_parts(
        path: PathBuf,
        file: File,
        map: MmapMut,
        first_seq: u64,
        segment_bytes: u64,
        skipped_from_seq: u64,
    ) -> Segment {
        let segment_bytes = u32::try_from(segment_bytes).expect("segment_bytes bounded by SEGMENT_BYTES_MAX");
        assert_eq!(map.len(), segment_bytes as usize);
        assert!(skipped_from_seq < first_seq);
        Segment {
            path,
            file,
            sync_file: OnceCell::new(),
            map,
            first_seq,
            skipped_from_seq,
            segment_bytes,
            record_offsets: Vec::new(),
            end_offset: SEGMENT_HEADER_BYTES,
            reserved_end_offset: SEGMENT_HEADER_BYTES,
        }
    }

    /// Validates the records from the header on, filling the index, and
    /// leaves `end_offset` after the last valid one. `file_bytes` is the
    /// length the file had before re-extension, so that a cut is reported as
    /// a torn record.
    pub(crate) fn scan(&mut self, file_bytes: u64) -> ScanEnd {
        assert!(self.record_offsets.is_empty(), "a segment is scanned once, before any append");
        let end = scan_records(&self.map, self.first_seq, file_bytes, &mut self.record_offsets);
        self.end_offset = end.end_offset;
        // The scan read every byte after the end to check it is zero, which
        // mapped the whole segment into this process: hand those pages back
        // (they stay in the page cache), so an empty journal does not count
        // a whole segment in the bridge's resident memory.
        self.release_pages_after(u64::from(end.end_offset));
        // A clean scan found a zero tail; a defect's tail is zeroed by the
        // caller (`zero_tail`) before anything is appended.
        self.reserved_end_offset = end.end_offset;
        debug_assert!(self.record_offsets.last().iter().all(|last| **last < end.end_offset));
        end
    }

    /// Unmaps the resident pages of `[offset rounded up to a page, end)` from
    /// this process. Advice only: a failure costs memory, never data.
    fn release_pages_after(&self, offset: u64) {
        let start = offset.next_multiple_of(RELEASE_PAGE_BYTES) as usize;
        if start >= self.map.len() {
            return;
        }
        let length = self.map.len() - start;
        // SAFETY: the mapping is a shared mapping of a file (MmapMut::map_mut
        // on the segment file), so MADV_DONTNEED only drops this process's
        // page table entries; the bytes stay in the page cache and the file,
        // and the next access faults them back in unchanged. Nothing holds a
        // reference into this range across the call.
        let advised = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, length) };
        debug_assert!(advised.is_ok(), "madvise on a mapped range: {advised:?}");
    }

    /// Zeroes every byte from the logical end to the last non-zero byte of
    /// the segment and flushes that range, so that a later power loss cannot
    /// bring the stale bytes back behind newly appended records. Returns how
    /// many bytes were zeroed (0 when the tail was already clean).
    pub(crate) fn zero_tail(&mut self) -> Result<u64, JournalError> {
        let start = self.end_offset as usize;
        let Some(last_nonzero) = self.map[start..].iter().rposition(|byte| *byte != 0) else {
            return Ok(0);
        };
        let end = start + last_nonzero + 1;
        self.map[start..end].fill(0);
        self.map.flush_range(start, end - start).map_err(io_error(&self.path, "msync zeroed tail"))?;
        debug_assert!(self.map[start..].iter().all(|byte| *byte == 0));
        Ok((end - start) as u64)
    }

    /// Seals the segment before the journal rolls over to the next one:
    /// zeroes `[end_offset, reserved_end_offset)`, the only bytes after the
    /// logical end that may not be zero, and with `flush` writes that range
    /// to storage. Without it a leaked reservation's bytes, or those of a
    /// reservation the kernel wrote back before it was abandoned, would sit
    /// after the end of a sealed segment, which recovery cannot tell from
    /// lost records. Returns the bytes covered (0 when no reservation ever
    /// reached past the end).
    pub(crate) fn seal_tail(&mut self, flush: bool) -> Result<u64, JournalError> {
        let start = self.end_offset as usize;
        let end = self.reserved_end_offset as usize;
        assert!(start <= end, "the high-water mark is never below the logical end");
        assert!(end <= self.segment_bytes as usize);
        if start == end {
            return Ok(0);
        }
        self.map[start..end].fill(0);
        if flush {
            self.map.flush_range(start, end - start).map_err(io_error(&self.path, "msync sealed tail"))?;
        }
        self.reserved_end_offset = self.end_offset;
        Ok((end - start) as u64)
    }

    /// Bytes left between the logical end and the end of the segment.
    pub(crate) fn room_bytes(&self) -> u64 {
        u64::from(self.segment_bytes - self.end_offset)
    }

    /// Writes one record at the logical end and indexes it. The caller has
    /// checked that it fits.
    pub(crate) fn append_record(&mut self, seq: u64, kind: u16, payload: &[u8]) {
        let payload_bytes = u32::try_from(payload.len()).expect("payload bounded by record_bytes_max");
        let length = record_bytes(payload_bytes);
        assert!(length <= self.room_bytes(), "record of {length} bytes checked to fit");
        assert_eq!(seq, self.next_seq(), "records are appended in sequence");
        let payload_start = (self.end_offset + RECORD_HEADER_BYTES) as usize;
        let payload_end = payload_start + payload.len();
        let record_end = self.end_offset as usize + length as usize;
        self.map[payload_start..payload_end].copy_from_slice(payload);
        // Zero the padding even though the tail should already be zero: a
        // leaked reservation may have scribbled there, and recovery rejects
        // records with non-zero padding.
        self.map[payload_end..record_end].fill(0);
        self.publish_record(seq, kind, payload_bytes);
    }

    /// The payload area of a record being reserved at the logical end.
    /// Raises the high-water mark over it: from here on its bytes may be
    /// written, and may reach storage, whatever becomes of the reservation.
    pub(crate) fn reserved_payload_mut(&mut self, capacity_bytes: u32) -> &mut [u8] {
        let length = record_bytes(capacity_bytes);
        assert!(length <= self.room_bytes(), "reservation checked to fit");
        let reserved_end = self.end_offset + length as u32;
        self.reserved_end_offset = self.reserved_end_offset.max(reserved_end);
        debug_assert!(self.reserved_end_offset <= self.segment_bytes);
        let start = (self.end_offset + RECORD_HEADER_BYTES) as usize;
        &mut self.map[start..start + capacity_bytes as usize]
    }

    /// Publishes a reserved record whose first `payload_bytes` bytes the
    /// caller wrote, zeroing the rest of the reservation.
    pub(crate) fn commit_reserved(&mut self, seq: u64, kind: u16, payload_bytes: u32, capacity_bytes: u32) {
        assert!(payload_bytes <= capacity_bytes, "commit checked against the reservation");
        assert_eq!(seq, self.next_seq(), "records are appended in sequence");
        let start = self.end_offset as usize;
        let payload_end = start + (RECORD_HEADER_BYTES + payload_bytes) as usize;
        let reserved_end = start + record_bytes(capacity_bytes) as usize;
        self.map[payload_end..reserved_end].fill(0);
        self.publish_record(seq, kind, payload_bytes);
    }

    /// Forgets a reservation: zeroes whatever the caller wrote into it.
    pub(crate) fn abandon_reserved(&mut self, capacity_bytes: u32) {
        self.reserved_payload_mut(capacity_bytes).fill(0);
        debug_assert!(is_zero_header(&self.map[self.end_offset as usize..]));
    }

    /// Writes the header (the commit point: until its checksum is stored the
    /// bytes are not a record) and advances the logical end.
    fn publish_record(&mut self, seq: u64, kind: u16, payload_bytes: u32) {
        let offset = self.end_offset;
        let start = offset as usize;
        // The slot is zero unless a reservation was leaked (`mem::forget`);
        // the header is written whole either way, so no assertion here.
        let (header, rest) = self.map[start..].split_at_mut(RECORD_HEADER_BYTES as usize);
        encode_record_header_fields(header, payload_bytes, seq, kind);
        let checksum = record_checksum(header, &rest[..payload_bytes as usize]);
        store_record_checksum(header, checksum);
        self.record_offsets.push(offset);
        self.end_offset = offset + record_bytes(payload_bytes) as u32;
        self.reserved_end_offset = self.reserved_end_offset.max(self.end_offset);
        assert!(self.end_offset <= self.segment_bytes);
        assert_eq!(self.end_offset % RECORD_ALIGNMENT_BYTES, 0);
    }

    /// The record with sequence `seq`, if this segment holds it.
    pub(crate) fn entry(&self, seq: u64) -> Option<Entry<'_>> {
        let offset = self.offset_of(seq)? as usize;
        let header = decode_record_header(&self.map[offset..]);
        // Cheap guard against an index bug handing out the wrong record.
        assert_eq!(header.seq, seq, "index of {} points at the wrong record", self.path.display());
        let payload_start = offset + RECORD_HEADER_BYTES as usize;
        let payload = &self.map[payload_start..payload_start + header.payload_bytes as usize];
        Some(Entry { seq, kind: header.kind, payload })
    }

    /// Flushes (msync) the bytes from the record `from_seq` (or the segment
    /// start when it precedes this segment) to the logical end.
    pub(crate) fn flush_from(&self, from_seq: u64) -> Result<(), JournalError> {
        let start = match from_seq.checked_sub(self.first_seq) {
            Some(index) => match self.record_offsets.get(index as usize) {
                Some(offset) => *offset as usize,
                None => return Ok(()),
            },
            None => 0,
        };
        let end = self.end_offset as usize;
        assert!(start <= end);
        assert!(end <= self.segment_bytes as usize);
        self.map.flush_range(start, end - start).map_err(io_error(&self.path, "msync"))
    }

    /// The segment's file for a sync off this thread (its own open file
    /// description, see `sync_file`), and its path for errors.
    pub(crate) fn sync_file(&self) -> Result<(PathBuf, Arc<File>), JournalError> {
        if let Some(file) = self.sync_file.get() {
            return Ok((self.path.clone(), Arc::clone(file)));
        }
        let file = Arc::new(OpenOptions::new().read(true).open(&self.path).map_err(io_error(&self.path, "open for sync"))?);
        // Set just above when empty: `get` found nothing and nothing else sets it.
        let _ = self.sync_file.set(Arc::clone(&file));
        Ok((self.path.clone(), file))
    }

    /// True when the segment holds records from `from_seq` on (a flush
    /// from there has bytes to write in it).
    pub(crate) fn holds_from(&self, from_seq: u64) -> bool {
        from_seq < self.next_seq()
    }

    /// Flushes the whole mapping and the file's data (used at open).
    pub(crate) fn sync(&self) -> Result<(), JournalError> {
        self.map.flush().map_err(io_error(&self.path, "msync"))?;
        self.file.sync_data().map_err(io_error(&self.path, "fdatasync"))
    }

    /// Sequence of the first record.
    pub(crate) fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// 0, or the first sequence number skipped before this segment: the
    /// segment before it ends there rather than at `first_seq`.
    pub(crate) fn skipped_from_seq(&self) -> u64 {
        self.skipped_from_seq
    }

    /// Sequence the next record appended here gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + self.record_offsets.len() as u64
    }

    /// Records held.
    pub(crate) fn records_count(&self) -> u64 {
        self.record_offsets.len() as u64
    }

    /// Length of the file.
    pub(crate) fn segment_bytes(&self) -> u64 {
        u64::from(self.segment_bytes)
    }

    /// Offset of the record `seq`, if this segment holds it.
    pub(crate) fn offset_of(&self, seq: u64) -> Option<u32> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.record_offsets.get(index).copied()
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The valid records after the logical end, when the scan stopped at a
    /// defect: see [`runs_after`]. `file_bytes` as for [`Segment::scan`].
    pub(crate) fn runs_after_end(&self, file_bytes: u64) -> Vec<Run> {
        runs_after(&self.map, self.end_offset, self.next_seq(), file_bytes)
    }

    /// The record at `offset` (one a scan validated): its seq, kind and
    /// payload.
    pub(crate) fn record_at(&self, offset: u32) -> (u64, u16, &[u8]) {
        let header = decode_record_header(&self.map[offset as usize..]);
        let start = (offset + RECORD_HEADER_BYTES) as usize;
        (header.seq, header.kind, &self.map[start..start + header.payload_bytes as usize])
    }
}

/// Validates records from the end of the segment header, pushing the offset
/// of each valid one. Stops at the first zero header (clean end), at the
/// first invalid record, or when no header fits. `file_bytes` is how much of
/// `bytes` came from the file before re-extension.
pub(crate) fn scan_records(bytes: &[u8], first_seq: u64, file_bytes: u64, offsets: &mut Vec<u32>) -> ScanEnd {
    scan_records_from(bytes, SEGMENT_HEADER_BYTES as usize, first_seq, file_bytes, offsets)
}

/// [`scan_records`] from the record at `offset`, whose seq must be
/// `first_seq`.
fn scan_records_from(bytes: &[u8], offset: usize, first_seq: u64, file_bytes: u64, offsets: &mut Vec<u32>) -> ScanEnd {
    assert!(bytes.len() as u64 <= SEGMENT_BYTES_MAX && is_aligned(bytes.len() as u64));
    assert!(bytes.len() > SEGMENT_HEADER_BYTES as usize);
    assert!(offset >= SEGMENT_HEADER_BYTES as usize && is_aligned(offset as u64));
    let mut offset = offset;
    let mut expected_seq = first_seq;
    // Bounded: every iteration advances `offset` by at least one header.
    while offset + RECORD_HEADER_BYTES as usize <= bytes.len() {
        if is_zero_header(&bytes[offset..]) {
            break;
        }
        match check_record(bytes, offset, expected_seq, file_bytes) {
            Ok(length) => {
                offsets.push(offset as u32);
                offset += length;
                expected_seq += 1;
            }
            Err(defect) => return ScanEnd { end_offset: offset as u32, defect: Some(defect) },
        }
    }
    let defect = bytes[offset..]
        .iter()
        .position(|byte| *byte != 0)
        .map(|position| RecordDefect::BytesAfterEnd { nonzero_offset: (offset + position) as u64 });
    ScanEnd { end_offset: offset as u32, defect }
}

/// Valid records found after a defect: `offsets[i]` holds seq
/// `first_seq + i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// Seq of the first record of the run.
    pub(crate) first_seq: u64,
    /// Offsets of its records, in sequence.
    pub(crate) offsets: Vec<u32>,
}

/// The valid records after the defect at `defect_offset`, where a record of
/// seq `expected_seq` was due: runs of consecutive records, each found by
/// trying every aligned offset after the previous defect for a record whose
/// checksum holds and whose seq is above the last one found (at least
/// `expected_seq`, at most a segment's worth of records above it). Empty
/// for a torn tail: nothing valid was written after the cut. Reads only.
///
/// A record found this way was written after the damaged one, so cutting
/// the segment at the defect would drop it: that is what tells corruption
/// in the middle of a segment from a torn tail.
pub(crate) fn runs_after(bytes: &[u8], defect_offset: u32, expected_seq: u64, file_bytes: u64) -> Vec<Run> {
    let limit = bytes.len().min(usize::try_from(file_bytes).unwrap_or(usize::MAX));
    let seq_max = expected_seq.saturating_add(records_per_segment_max(bytes.len() as u64));
    let mut runs = Vec::new();
    let mut seq_min = expected_seq;
    let mut offset = defect_offset as usize + RECORD_ALIGNMENT_BYTES as usize;
    // Bounded: each turn advances `offset` by at least one alignment unit.
    while offset + RECORD_HEADER_BYTES as usize <= limit {
        if is_zero_header(&bytes[offset..]) {
            // Skip the zeros (a torn tail is followed by megabytes of
            // them): the next header holding a non-zero byte starts at most
            // two aligned words before the word that holds it.
            let Some(position) = bytes[offset..limit].iter().position(|byte| *byte != 0) else {
                break;
            };
            let word = (offset + position) / RECORD_ALIGNMENT_BYTES as usize * RECORD_ALIGNMENT_BYTES as usize;
            offset = word.saturating_sub(2 * RECORD_ALIGNMENT_BYTES as usize).max(offset + RECORD_ALIGNMENT_BYTES as usize);
            continue;
        }
        let header = decode_record_header(&bytes[offset..]);
        let candidate = header.seq >= seq_min && header.seq <= seq_max;
        if !candidate || check_record(bytes, offset, header.seq, file_bytes).is_err() {
            offset += RECORD_ALIGNMENT_BYTES as usize;
            continue;
        }
        let mut offsets = Vec::new();
        let end = scan_records_from(bytes, offset, header.seq, file_bytes, &mut offsets);
        assert!(!offsets.is_empty(), "the first record was just checked");
        seq_min = header.seq + offsets.len() as u64;
        runs.push(Run { first_seq: header.seq, offsets });
        if end.defect.is_none() {
            break;
        }
        offset = end.end_offset as usize + RECORD_ALIGNMENT_BYTES as usize;
    }
    runs
}

/// Checks the record at `offset`; returns its full length.
fn check_record(bytes: &[u8], offset: usize, expected_seq: u64, file_bytes: u64) -> Result<usize, RecordDefect> {
    let header_end = offset + RECORD_HEADER_BYTES as usize;
    if header_end as u64 > file_bytes {
        return Err(RecordDefect::Torn { record_end_offset: header_end as u64, file_bytes });
    }
    let header = decode_record_header(&bytes[offset..]);
    let room_bytes = (bytes.len() - header_end) as u64;
    if u64::from(header.payload_bytes) > room_bytes {
        return Err(RecordDefect::LengthOutOfRange { payload_bytes: header.payload_bytes, room_bytes });
    }
    let payload_end = header_end + header.payload_bytes as usize;
    if payload_end as u64 > file_bytes {
        return Err(RecordDefect::Torn { record_end_offset: payload_end as u64, file_bytes });
    }
    let computed = record_checksum(&bytes[offset..header_end], &bytes[header_end..payload_end]);
    if computed != header.checksum {
        return Err(RecordDefect::ChecksumMismatch { stored: header.checksum, computed });
    }
    if header.seq != expected_seq {
        return Err(RecordDefect::SequenceOutOfOrder { expected_seq, found_seq: header.seq });
    }
    let record_end = offset + record_bytes(header.payload_bytes) as usize;
    assert!(record_end <= bytes.len(), "8-aligned record within an 8-aligned segment");
    if let Some(position) = bytes[payload_end..record_end].iter().position(|byte| *byte != 0) {
        return Err(RecordDefect::PaddingNotZero { offset: (payload_end + position) as u64 });
    }
    Ok(record_end - offset)
}

/// Decodes the header of the segment file named `name_seq`, holding
/// `file_bytes`, and checks it is one this code can open.
pub(crate) fn check_segment_header(header_bytes: &[u8], name_seq: u64, file_bytes: u64) -> Result<SegmentHeader, SegmentDefect> {
    let header = decode_segment_header(header_bytes).map_err(SegmentDefect::Header)?;
    if header.first_seq == 0 {
        return Err(SegmentDefect::FirstSeqZero);
    }
    if header.first_seq != name_seq {
        return Err(SegmentDefect::FirstSeqMismatch { name_seq, header_seq: header.first_seq });
    }
    let skipped_from_seq = header.skipped_from_seq;
    if skipped_from_seq >= header.first_seq {
        let first_seq = header.first_seq;
        return Err(SegmentDefect::SkippedFromSeqNotBelowFirstSeq { skipped_from_seq, first_seq });
    }
    let segment_bytes = header.segment_bytes;
    if !valid_segment_bytes(segment_bytes) {
        let (bytes_min, bytes_max) = (SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX);
        return Err(SegmentDefect::SegmentBytesOutOfRange { segment_bytes, bytes_min, bytes_max });
    }
    if file_bytes > segment_bytes {
        return Err(SegmentDefect::FileTooLong { file_bytes, segment_bytes });
    }
    Ok(header)
}

/// True for sizes this code creates and maps.
fn valid_segment_bytes(segment_bytes: u64) -> bool {
    (SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&segment_bytes)
        && is_aligned(segment_bytes)
}

/// True when every byte of the file at `path` is zero (or it is empty): a
/// segment whose creation never reached its header.
pub(crate) fn file_is_all_zero(path: &Path) -> Result<bool, JournalError> {
    let mut file = File::open(path).map_err(io_error(path, "open"))?;
    let mut buffer = vec![0u8; ZERO_CHUNK_BYTES];
    // Bounded by the file length: each read consumes bytes until EOF.
    loop {
        let read = file.read(&mut buffer).map_err(io_error(path, "read"))?;
        if read == 0 {
            return Ok(true);
        }
        if buffer[..read].iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
    }
}

/// Best-effort bound on the sequence numbers a segment file that recovery
/// set aside may have issued: the first number it cannot hold. `None` when
/// its header cannot be read. A whole file whose records scan cleanly gives
/// the exact bound; otherwise the records after a defect are unknown, so the
/// bound is what the header's segment size could hold. The file is read
/// through a read-only mapping and never written: quarantined files are kept
/// as found, for inspection.
pub(crate) fn quarantined_seq_bound(path: &Path, name_seq: u64) -> Result<Option<u64>, JournalError> {
    let file = File::open(path).map_err(io_error(path, "open quarantined"))?;
    let file_bytes = file.metadata().map_err(io_error(path, "stat quarantined"))?.len();
    let Some(header) = read_usable_header(&file, path)? else {
        return Ok(None);
    };
    let base_seq = header.first_seq.max(name_seq);
    let size_bound = base_seq.saturating_add(records_per_segment_max(header.segment_bytes));
    if file_bytes != header.segment_bytes {
        // Cut or overlong: records may be missing from the file.
        return Ok(Some(size_bound));
    }
    // SAFETY: the mapping is read-only and the file lies in the journal
    // directory, which this journal holds alone (its LOCK); recovery has just renamed
    // it aside and nothing writes or shortens quarantined files.
    let map = unsafe { Mmap::map(&file) }.map_err(io_error(path, "mmap quarantined"))?;
    assert_eq!(map.len() as u64, file_bytes);
    let mut offsets = Vec::new();
    let end = scan_records(&map, header.first_seq, file_bytes, &mut offsets);
    if end.defect.is_some() {
        return Ok(Some(size_bound));
    }
    let scanned_bound = header.first_seq + offsets.len() as u64;
    debug_assert!(scanned_bound <= size_bound);
    Ok(Some(scanned_bound.max(name_seq)))
}

/// Rewrites the header of the segment at `path` (named `name_seq`) to
/// record that the numbers from `skipped_from_seq` up to it are skipped,
/// and syncs it. For a salvage whose damage took the last numbers of the
/// segment before this one. Only the header changes.
pub(crate) fn record_skip_in_header(path: &Path, name_seq: u64, skipped_from_seq: u64) -> Result<(), JournalError> {
    use std::os::unix::fs::FileExt as _;
    assert!(skipped_from_seq < name_seq);
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_error(path, "open"))?;
    let Some(header) = read_usable_header(&file, path)? else {
        // Unreadable: the chain check sets it aside as before.
        return Ok(());
    };
    if header.first_seq != name_seq || header.skipped_from_seq == skipped_from_seq {
        return Ok(());
    }
    let rewritten = encode_segment_header(name_seq, header.segment_bytes, skipped_from_seq);
    file.write_all_at(&rewritten, 0).map_err(io_error(path, "write header"))?;
    file.sync_data().map_err(io_error(path, "fsync header"))?;
    Ok(())
}

/// The header of the segment file at `path` when it decodes and its sizes
/// are ones this code maps; `None` otherwise. Reads only; used where a
/// header is consulted before (or instead of) opening the segment.
pub(crate) fn read_segment_header(path: &Path) -> Result<Option<SegmentHeader>, JournalError> {
    let file = File::open(path).map_err(io_error(path, "open"))?;
    read_usable_header(&file, path)
}

fn read_usable_header(file: &File, path: &Path) -> Result<Option<SegmentHeader>, JournalError> {
    let mut header_bytes = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
    file.take(u64::from(SEGMENT_HEADER_BYTES))
        .read_to_end(&mut header_bytes)
        .map_err(io_error(path, "read header"))?;
    let Ok(header) = decode_segment_header(&header_bytes) else {
        return Ok(None);
    };
    let usable = header.first_seq != 0
        && header.skipped_from_seq < header.first_seq
        && valid_segment_bytes(header.segment_bytes);
    Ok(usable.then_some(header))
}

/// Fsyncs a directory so that file creations, renames and removals in it
/// survive power loss.
pub(crate) fn sync_directory(directory: &Path) -> Result<(), JournalError> {
    let handle = File::open(directory).map_err(io_error(directory, "open directory"))?;
    handle.sync_all().map_err(io_error(directory, "fsync directory"))?;
    #[cfg(test)]
    DIRECTORY_SYNCS.with(|syncs| syncs.borrow_mut().push(directory.to_path_buf()));
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Directories this thread synced, in order: lets tests check that a
    /// sync, which has no other visible effect, happened.
    pub(crate) static DIRECTORY_SYNCS: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes the list of directories this thread synced so far.
#[cfg(test)]
pub(crate) fn take_directory_syncs() -> Vec<PathBuf> {
    DIRECTORY_SYNCS.with(|syncs| std::mem::take(&mut *syncs.borrow_mut()))
}

fn write_new_segment_file(
    temporary_path: &Path,
    path: &Path,
    header: &[u8; SEGMENT_HEADER_BYTES as usize],
    segment_bytes: u64,
    durable: bool,
) -> Result<File, JournalError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(temporary_path)
        .map_err(io_error(temporary_path, "create"))?;
    file.write_all(header).map_err(io_error(temporary_path, "write header"))?;
    // Zeros written, not fallocate(2): fallocate's unwritten extents made
    // every later msync commit an extent conversion, which doubled the
    // bridge's event_to_durable p50 (162-176 against 297-493 us, alternating
    // 20 s fanout runs under group sync).
    write_zeros(&mut file, segment_bytes - header.len() as u64).map_err(io_error(temporary_path, "preallocate"))?;
    if durable {
        file.sync_all().map_err(io_error(temporary_path, "fsync"))?;
    }
    fs::rename(temporary_path, path).map_err(io_error(path, "rename"))?;
    Ok(file)
}

pub(crate) fn write_zeros(file: &mut File, count_bytes: u64) -> std::io::Result<()> {
    let mut remaining = count_bytes;
    while remaining > 0 {
        let chunk = remaining.min(ZERO_CHUNK_BYTES as u64) as usize;
        file.write_all(&ZERO_CHUNK[..chunk])?;
        remaining -= chunk as u64;
    }
    Ok(())
}

/// Maps the whole file read-write, without pre-faulting (MAP_POPULATE):
/// populating a new segment took the 200-byte append p99 from about 2.75 us
/// to about 2.3 us (`cargo bench --bench journal`, Os policy), but mapped the
/// whole segment (64 MiB by default) into the bridge's resident memory from
/// its first record, which an idle bridge with thousands of connections
/// cannot afford. Pages are now mapped as appends reach them (a minor fault
/// per 4 KiB, a few records).
fn map_file(file: &File, path: &Path, segment_bytes: u64) -> Result<MmapMut, JournalError> {
    // SAFETY: the mapping is only sound while no one truncates or rewrites
    // the file behind it. The journal owns its directory (one journal at a
    // time, enforced by the exclusive lock on its LOCK file taken in
    // `Journal::open`) and never shortens a mapped file; the file was just
    // written to `segment_bytes`, so every mapped page exists. Retention
    // unlinks a segment before dropping its mapping, which is harmless: the
    // unlinked file and its pages live until the mapping is dropped.
    let map = unsafe {
        let mut options = MmapOptions::new();
        options.len(segment_bytes as usize);
        options.map_mut(file)
    };
    map.map_err(io_error(path, "mmap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::layout::encode_segment_header;
    use crate::journal::testing::TempDirectory;

    /// A segment image of `segment_bytes` holding records with the given payloads.
    fn image(segment_bytes: usize, first_seq: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = vec![0u8; segment_bytes];
        bytes[..64].copy_from_slice(&encode_segment_header(first_seq, segment_bytes as u64, 0));
        let mut offset = 64usize;
        for (index, payload) in payloads.iter().enumerate() {
            let payload_bytes = payload.len() as u32;
            let (header, rest) = bytes[offset..].split_at_mut(24);
            encode_record_header_fields(header, payload_bytes, first_seq + index as u64, 3);
            rest[..payload.len()].copy_from_slice(payload);
            let checksum = record_checksum(header, &rest[..payload.len()]);
            store_record_checksum(header, checksum);
            offset += record_bytes(payload_bytes) as usize;
        }
        bytes
    }

    // A clean image scans to the end of its last record with every offset indexed.
    #[test]
    fn scan_stops_cleanly_at_zero_header() {
        let bytes = image(4096, 10, &[b"a", b"bcdefghi", b""]);
        let mut offsets = Vec::new();
        let end = scan_records(&bytes, 10, 4096, &mut offsets);
        assert_eq!(offsets, vec![64, 96, 128]);
        assert_eq!(end, ScanEnd { end_offset: 152, defect: None });
    }

    // A non-zero byte after the zero header that ends the log is reported.
    #[test]
    fn scan_reports_bytes_after_end() {
        let mut bytes = image(4096, 1, &[b"a"]);
        bytes[4000] = 1;
        let mut offsets = Vec::new();
        let end = scan_records(&bytes, 1, 4096, &mut offsets);
        assert_eq!(end.end_offset, 96);
        assert_eq!(end.defect, Some(RecordDefect::BytesAfterEnd { nonzero_offset: 4000 }));
    }

    // Non-zero padding, a sequence out of order and a length past the segment are each named.
    #[test]
    fn scan_reports_each_record_defect() {
        let mut padded = image(4096, 1, &[b"a"]);
        padded[64 + 24 + 3] = 7;
        let end = scan_records(&padded, 1, 4096, &mut Vec::new());
        assert_eq!(end.defect, Some(RecordDefect::PaddingNotZero { offset: 91 }));

        let misnumbered = image(4096, 5, &[b"a"]);
        let end = scan_records(&misnumbered, 4, 4096, &mut Vec::new());
        assert_eq!(end.defect, Some(RecordDefect::SequenceOutOfOrder { expected_seq: 4, found_seq: 5 }));

        let mut long = image(4096, 1, &[b"a"]);
        long[64..68].copy_from_slice(&5000u32.to_le_bytes());
        let end = scan_records(&long, 1, 4096, &mut Vec::new());
        assert_eq!(end.defect, Some(RecordDefect::LengthOutOfRange { payload_bytes: 5000, room_bytes: 4008 }));
        assert_eq!(end.end_offset, 64);
    }

    // A record that runs past the length the file had is reported as torn, not as a bad checksum.
    #[test]
    fn scan_reports_torn_record_of_cut_file() {
        let mut bytes = image(4096, 1, &[b"first", b"second record"]);
        bytes[125..].fill(0);
        let mut offsets = Vec::new();
        let end = scan_records(&bytes, 1, 125, &mut offsets);
        assert_eq!(offsets, vec![64]);
        assert_eq!(end.defect, Some(RecordDefect::Torn { record_end_offset: 133, file_bytes: 125 }));

        bytes[110..].fill(0);
        let end = scan_records(&bytes, 1, 110, &mut Vec::new());
        assert_eq!(end.defect, Some(RecordDefect::Torn { record_end_offset: 120, file_bytes: 110 }), "cut in the header");
        assert_eq!(end.end_offset, 96);
    }

    // Sealing zeroes what abandoned and leaked reservations reached past the end, and only that.
    #[test]
    fn seal_tail_covers_every_reservation_past_the_end() {
        let directory = TempDirectory::new("seal");
        let mut segment = Segment::create(&directory.0, 1, 4096, false, 0).expect("create");
        assert_eq!(segment.seal_tail(false).expect("seal"), 0, "nothing was reserved");
        segment.append_record(1, 2, b"first");
        let end = segment.end_offset as usize;
        // An abandoned reservation is zeroed in memory, but the kernel may
        // have written its bytes back, so sealing must still cover it.
        segment.reserved_payload_mut(500).fill(0xEE);
        segment.abandon_reserved(500);
        // A smaller leaked one inside it, then a record over part of both.
        segment.reserved_payload_mut(100).fill(0xFF);
        segment.append_record(2, 2, b"second");
        let record_end = segment.end_offset as usize;
        assert!(segment.map[record_end..end + 24 + 100].contains(&0xFF), "leaked bytes remain");
        let covered = segment.seal_tail(true).expect("seal");
        assert_eq!(covered, (end as u64 + record_bytes(500)) - record_end as u64);
        assert!(segment.map[record_end..].iter().all(|byte| *byte == 0), "the whole tail is zero");
        assert_eq!(segment.seal_tail(true).expect("seal again"), 0, "the mark fell back to the end");
        let mut offsets = Vec::new();
        assert_eq!(scan_records(&segment.map, 1, 4096, &mut offsets).defect, None);
        assert_eq!(offsets.len(), 2);
    }

    // A header whose skipped_from_seq is not below its first_seq is refused, naming both numbers.
    #[test]
    fn open_refuses_a_skip_that_does_not_lie_below_the_segment() {
        let directory = TempDirectory::new("skip-above");
        let mut bytes = image(4096, 5, &[]);
        bytes[32..40].copy_from_slice(&5u64.to_le_bytes());
        let checksum = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&checksum.to_le_bytes());
        let path = directory.0.join(segment_file_name(5));
        fs::write(&path, &bytes).expect("write");
        let error = Segment::open(&path, 5).err().expect("refused");
        let message = error.to_string();
        let expected = SegmentDefect::SkippedFromSeqNotBelowFirstSeq { skipped_from_seq: 5, first_seq: 5 };
        assert!(matches!(error, JournalError::BadSegment { defect, .. } if defect == expected), "{message}");
        assert!(message.contains("skipped_from_seq 5") && message.contains("first_seq 5"), "{message}");
        assert_eq!(read_segment_header(&path).expect("read"), None, "not a usable header either");
    }

    // A segment filled to its last byte ends cleanly without reading past it.
    #[test]
    fn scan_handles_a_full_segment() {
        let payload = vec![9u8; 4096 - 64 - 24];
        let bytes = image(4096, 1, &[&payload]);
        let end = scan_records(&bytes, 1, 4096, &mut Vec::new());
        assert_eq!(end, ScanEnd { end_offset: 4096, defect: None });
    }
}
