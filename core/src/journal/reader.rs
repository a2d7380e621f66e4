//! A read-only follower of a journal directory that another part of the
//! process (or another process) writes: the Postgres persister tails the
//! router's journal through it without taking the journal's lock, touching
//! its mapping, or slowing its appends.
//!
//! # Layout
//! - [`JournalReader::read`]: from its position, copies out the records up
//!   to a bound the writer published (`durable_seq`), in sequence order,
//!   across segment files; validates every record (header, checksum,
//!   sequence) as recovery does.
//! - [`ReadOutcome`]: what a read found: records, nothing new yet, or a
//!   gap (the writer released segments the reader had not read).
//!
//! # Invariants
//! - Only records at or below the bound are read: the writer never writes
//!   their bytes again, so reading them with `pread` while it appends
//!   further on races with nothing.
//! - Records come out in sequence order, each once; a position the writer
//!   has released is never skipped silently: it comes out as a gap naming
//!   the released range.
//! - Memory is bounded by the caller's `records_max` times the journal's
//!   largest record, plus one read buffer of `READ_BUFFER_BYTES`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::layout::{
    decode_record_header, decode_segment_header, is_zero_header, parse_segment_file_name, record_bytes, record_checksum,
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};

/// Bytes read from a segment file at a time.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// One record copied out of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    pub seq: u64,
    pub kind: u16,
    pub payload: Vec<u8>,
}

/// What [`JournalReader::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many records were appended to the caller's vector.
    Records(usize),
    /// Nothing at or below the bound beyond the position.
    Nothing,
    /// The records `[from_seq, to_seq)` are not in the directory; the
    /// position moves to `to_seq`. `released`: the writer released them
    /// before they were read; otherwise they were never written (recovery
    /// set a damaged segment aside and numbered on above it).
    Gap { from_seq: u64, to_seq: u64, released: bool },
}

/// Why a read failed; the position stays where it was.
#[derive(Debug)]
pub enum ReadError {
    Io { path: PathBuf, error: std::io::Error },
    /// A segment header or record that does not check out.
    Corrupt { path: PathBuf, offset: u64, what: String },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io { path, error } => write!(formatter, "{}: {error}", path.display()),
            ReadError::Corrupt { path, offset, what } => write!(formatter, "{} at byte {offset}: {what}", path.display()),
        }
    }
}

impl std::error::Error for ReadError {}

/// The segment being read: its file and where its next record starts.
struct OpenSegment {
    path: PathBuf,
    file: File,
    file_bytes: u64,
    /// Offset of the record with sequence `next_seq`.
    offset: u64,
}

/// Follows one journal directory, read-only.
pub struct JournalReader {
    directory: PathBuf,
    /// Sequence of the next record to hand out.
    next_seq: u64,
    segment: Option<OpenSegment>,
    /// A window of the current segment: `buffer` holds its bytes from
    /// `buffer_offset` on.
    buffer: Vec<u8>,
    buffer_offset: u64,
}

impl JournalReader {
    /// A reader whose first record will be `next_seq` (1 for the start).
    pub fn new(directory: impl AsRef<Path>, next_seq: u64) -> JournalReader {
        assert!(next_seq >= 1, "journal sequences start at 1");
        JournalReader {
            directory: directory.as_ref().to_path_buf(),
            next_seq,
            segment: None,
            buffer: Vec::new(),
            buffer_offset: 0,
        }
    }

    /// The sequence of the next record [`read`](Self::read) hands out.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends to `out` the records from the position up to `bound_seq`
    /// (inclusive), at most `records_max`. On an error nothing of this call
    /// stays in `out` and the position is where it was, so no record read
    /// before the error is lost with it.
    pub fn read(&mut self, bound_seq: u64, records_max: usize, out: &mut Vec<OwnedRecord>) -> Result<ReadOutcome, ReadError> {
        assert!(records_max > 0, "read at least one record");
        let (out_len, next_seq) = (out.len(), self.next_seq);
        let read = self.read_on(bound_seq, records_max, out);
        if read.is_err() {
            out.truncate(out_len);
            self.next_seq = next_seq;
            self.segment = None;
        }
        read
    }

    fn read_on(&mut self, bound_seq: u64, records_max: usize, out: &mut Vec<OwnedRecord>) -> Result<ReadOutcome, ReadError> {
        // The window may hold bytes read before the writer finished records
        // that the new bound covers: read them again.
        self.buffer.clear();
        self.buffer_offset = 0;
        let mut count = 0;
        while count < records_max && self.next_seq <= bound_seq {
            if self.segment.is_none() {
                match self.open_segment_of(self.next_seq)? {
                    Located::Open => {}
                    Located::Gap { to_seq, released } if count == 0 => {
                        let from_seq = self.next_seq;
                        self.next_seq = to_seq;
                        return Ok(ReadOutcome::Gap { from_seq, to_seq, released });
                    }
                    // The gap is reported by the next read, after these records.
                    Located::Gap { .. } | Located::NotYet => break,
                }
            }
            match self.next_record()? {
                Some(record) => {
                    out.push(record);
                    count += 1;
                    self.next_seq += 1;
                }
                // The segment ends before `next_seq`: it is in the next file
                // (or not written yet, which the next open finds).
                None => self.segment = None,
            }
        }
        Ok(if count == 0 { ReadOutcome::Nothing } else { ReadOutcome::Records(count) })
    }

    /// Opens the segment that holds `seq` and walks to it.
    fn open_segment_of(&mut self, seq: u64) -> Result<Located, ReadError> {
        let mut firsts = self.segment_firsts()?;
        firsts.sort_unstable();
        let Some(&first_seq) = firsts.iter().rev().find(|first| **first <= seq) else {
            return Ok(match firsts.first() {
                Some(&oldest) => Located::Gap { to_seq: oldest, released: true },
                None => Located::NotYet,
            });
        };
        // A later segment: if the one found ends before `seq`, the numbers up
        // to it were never written (recovery set a damaged segment aside and
        // went on above it, `skipped_from_seq`), not "not yet written".
        let later = firsts.iter().find(|first| **first > seq).copied();
        let path = self.directory.join(super::layout::segment_file_name(first_seq));
        let file = match File::open(&path) {
            Ok(file) => file,
            // Released between the listing and the open.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Located::NotYet),
            Err(error) => return Err(ReadError::Io { path, error }),
        };
        let file_bytes = file.metadata().map_err(|error| ReadError::Io { path: path.clone(), error })?.len();
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        file.read_exact_at(&mut header, 0).map_err(|error| ReadError::Io { path: path.clone(), error })?;
        let decoded = decode_segment_header(&header)
            .map_err(|defect| ReadError::Corrupt { path: path.clone(), offset: 0, what: format!("segment header: {defect:?}") })?;
        if decoded.first_seq != first_seq {
            return Err(ReadError::Corrupt { path, offset: 0, what: format!("header first_seq {} differs from the name", decoded.first_seq) });
        }
        self.segment = Some(OpenSegment { path, file, file_bytes, offset: u64::from(SEGMENT_HEADER_BYTES) });
        self.buffer.clear();
        self.buffer_offset = 0;
        let mut walked = first_seq;
        while walked < seq {
            match self.next_record_at(walked)? {
                Some(_) => walked += 1,
                None => {
                    self.segment = None;
                    return Ok(match later {
                        Some(to_seq) => Located::Gap { to_seq, released: false },
                        None => Located::NotYet,
                    });
                }
            }
        }
        // The walk ends exactly at the segment's end: the same question.
        if self.next_record_at_peek(seq)?.is_none() {
            self.segment = None;
            return Ok(match later {
                Some(to_seq) => Located::Gap { to_seq, released: false },
                None => Located::NotYet,
            });
        }
        Ok(Located::Open)
    }

    /// Whether the open segment holds `seq` at its offset, without moving.
    fn next_record_at_peek(&mut self, seq: u64) -> Result<Option<()>, ReadError> {
        let offset = self.segment.as_ref().expect("a segment is open").offset;
        let found = self.next_record_at(seq)?.map(|_| ());
        self.segment.as_mut().expect("a segment is open").offset = offset;
        Ok(found)
    }

    fn segment_firsts(&self) -> Result<Vec<u64>, ReadError> {
        let entries = std::fs::read_dir(&self.directory).map_err(|error| ReadError::Io { path: self.directory.clone(), error })?;
        let mut firsts = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| ReadError::Io { path: self.directory.clone(), error })?;
            if let Some(first) = entry.file_name().to_str().and_then(parse_segment_file_name) {
                firsts.push(first);
            }
        }
        Ok(firsts)
    }

    fn next_record(&mut self) -> Result<Option<OwnedRecord>, ReadError> {
        self.next_record_at(self.next_seq)
    }

    /// Reads the record at the segment's offset, which must be `expected_seq`;
    /// `None` at the segment's clean end.
    fn next_record_at(&mut self, expected_seq: u64) -> Result<Option<OwnedRecord>, ReadError> {
        let (offset, file_bytes, path) = {
            let segment = self.segment.as_ref().expect("a segment is open");
            (segment.offset, segment.file_bytes, segment.path.clone())
        };
        if offset + u64::from(RECORD_HEADER_BYTES) > file_bytes {
            return Ok(None);
        }
        let header_bytes = self.bytes_at(offset, RECORD_HEADER_BYTES as usize)?.to_vec();
        if is_zero_header(&header_bytes) {
            return Ok(None);
        }
        let header = decode_record_header(&header_bytes);
        let corrupt = |what: String| ReadError::Corrupt { path: path.clone(), offset, what };
        if header.seq != expected_seq {
            return Err(corrupt(format!("record seq {} where {expected_seq} was expected", header.seq)));
        }
        let total = record_bytes(header.payload_bytes);
        if offset + total > file_bytes {
            return Err(corrupt(format!("record of {} payload bytes runs past the file's end", header.payload_bytes)));
        }
        let payload = self.bytes_at(offset + u64::from(RECORD_HEADER_BYTES), header.payload_bytes as usize)?.to_vec();
        let computed = record_checksum(&header_bytes, &payload);
        if computed != header.checksum {
            return Err(corrupt(format!("checksum {:#010x} where the record says {:#010x}", computed, header.checksum)));
        }
        self.segment.as_mut().expect("a segment is open").offset = offset + total;
        Ok(Some(OwnedRecord { seq: header.seq, kind: header.kind, payload }))
    }

    /// `length` bytes of the open segment at `offset`, through the window.
    fn bytes_at(&mut self, offset: u64, length: usize) -> Result<&[u8], ReadError> {
        let in_window = offset >= self.buffer_offset && offset + length as u64 <= self.buffer_offset + self.buffer.len() as u64;
        if !in_window {
            let segment = self.segment.as_ref().expect("a segment is open");
            let wanted = length.max(READ_BUFFER_BYTES).min((segment.file_bytes - offset) as usize);
            self.buffer.resize(wanted, 0);
            segment.file.read_exact_at(&mut self.buffer, offset).map_err(|error| ReadError::Io { path: segment.path.clone(), error })?;
            self.buffer_offset = offset;
        }
        let start = (offset - self.buffer_offset) as usize;
        Ok(&self.buffer[start..start + length])
    }
}

/// Where [`JournalReader::open_segment_of`] found a sequence.
enum Located {
    Open,
    /// Not written yet, or its segment is being created or released.
    NotYet,
    /// Not there: the next record is `to_seq` (see [`ReadOutcome::Gap`]).
    Gap { to_seq: u64, released: bool },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::testing::TempDirectory;
    use crate::journal::{Journal, JournalOptions, SyncPolicy};

    fn options() -> JournalOptions {
        JournalOptions { segment_bytes: 64 * 1024, record_bytes_max: 4096, sync: SyncPolicy::Os, spare_segment: false, ..JournalOptions::default() }
    }

    /// A payload of `seq`'s own bytes, of a length that varies with it.
    fn payload(seq: u64) -> Vec<u8> {
        let mut bytes = seq.to_le_bytes().to_vec();
        bytes.resize(8 + (seq as usize * 37) % 900, (seq % 251) as u8);
        bytes
    }

    fn append(journal: &mut Journal, count: u64) {
        for _ in 0..count {
            let seq = journal.next_seq();
            journal.append((seq % 7) as u16 + 1, &payload(seq), 0).unwrap();
        }
    }

    fn read_all(reader: &mut JournalReader, bound: u64, chunk: usize) -> Vec<OwnedRecord> {
        let mut out = Vec::new();
        while let ReadOutcome::Records(_) = reader.read(bound, chunk, &mut out).unwrap() {}
        out
    }

    #[test]
    fn reads_every_record_up_to_the_bound_across_segments() {
        // Shows that records come out once each, in order, with their kind and payload, across segment files, never past the bound, and that a later read picks up what was appended since.
        let directory = TempDirectory::new("reader-across");
        let (mut journal, _) = Journal::open(&directory.0, options()).unwrap();
        append(&mut journal, 3_000);
        assert!(journal.segments_count() >= 3, "the test needs several segments");
        let mut reader = JournalReader::new(&directory.0, 1);
        let first = read_all(&mut reader, 1_234, 100);
        assert_eq!(first.len(), 1_234);
        append(&mut journal, 500);
        let rest = read_all(&mut reader, journal.last_seq(), 333);
        for (index, record) in first.iter().chain(rest.iter()).enumerate() {
            let seq = index as u64 + 1;
            assert_eq!((record.seq, record.kind), (seq, (seq % 7) as u16 + 1));
            assert_eq!(record.payload, payload(seq), "payload of {seq}");
        }
        assert_eq!(first.len() + rest.len(), 3_500);
        assert_eq!(reader.read(journal.last_seq(), 10, &mut Vec::new()).unwrap(), ReadOutcome::Nothing);
        // A bound past the end (a reader of a stopped journal) ends at the last record.
        assert_eq!(reader.read(u64::MAX, 10, &mut Vec::new()).unwrap(), ReadOutcome::Nothing);
        let mut whole = JournalReader::new(&directory.0, 3_490);
        assert_eq!(read_all(&mut whole, u64::MAX, 4).len(), 11);
        // A reader placed in the middle starts there.
        let mut middle = JournalReader::new(&directory.0, 2_001);
        let records = read_all(&mut middle, 2_010, 4);
        assert_eq!(records.iter().map(|record| record.seq).collect::<Vec<_>>(), (2_001..=2_010).collect::<Vec<_>>());
    }

    #[test]
    fn released_records_come_out_as_a_gap() {
        // Shows that when the writer releases segments the reader has not read, the next read reports exactly the released range and then goes on from the oldest kept record.
        let directory = TempDirectory::new("reader-gap");
        let (mut journal, _) = Journal::open(&directory.0, options()).unwrap();
        append(&mut journal, 3_000);
        let mut reader = JournalReader::new(&directory.0, 10);
        let mut out = Vec::new();
        reader.read(journal.last_seq(), 5, &mut out).unwrap();
        assert!(journal.truncate_before(2_000).unwrap() >= 1);
        let oldest = journal.first_seq();
        // The open segment may still be the one being read: drop it by reading on.
        let mut reader = JournalReader::new(&directory.0, 15);
        let outcome = reader.read(journal.last_seq(), 5, &mut out).unwrap();
        assert_eq!(outcome, ReadOutcome::Gap { from_seq: 15, to_seq: oldest, released: true });
        out.clear();
        reader.read(journal.last_seq(), 1, &mut out).unwrap();
        assert_eq!(out[0].seq, oldest);
    }

    #[test]
    fn a_damaged_record_is_an_error_that_names_the_file_and_offset() {
        // Shows that a flipped payload byte is reported as corruption with the file and byte offset, and the position does not move past it.
        let directory = TempDirectory::new("reader-corrupt");
        let (mut journal, _) = Journal::open(&directory.0, options()).unwrap();
        append(&mut journal, 20);
        let (path, offset) = {
            let (path, offset) = journal.location(7).unwrap();
            (path.to_path_buf(), offset)
        };
        drop(journal);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut byte = [0u8; 1];
        file.read_exact_at(&mut byte, offset + 30).unwrap();
        byte[0] ^= 0xFF;
        file.write_all_at(&byte, offset + 30).unwrap();
        let mut reader = JournalReader::new(&directory.0, 1);
        let mut out = Vec::new();
        let error = loop {
            match reader.read(20, 4, &mut out) {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        assert!(matches!(&error, ReadError::Corrupt { what, .. } if what.contains("checksum")), "{error}");
        assert!(error.to_string().contains(&path.display().to_string()));
        // The read that met the damage (5 and 6, then 7) handed out nothing
        // and left the position at its start: 5 and 6 are not lost with it.
        assert_eq!(reader.next_seq(), 5);
        assert_eq!(out.len(), 4);
        assert!(reader.read(20, 4, &mut out).is_err(), "the damage is met again, not skipped");
        assert_eq!((reader.next_seq(), out.len()), (5, 4));
    }

    #[test]
    fn numbers_recovery_skipped_come_out_as_a_gap_not_a_stall() {
        // Shows that when a later segment starts above the end of the one holding the position (recovery set a damaged segment aside and numbered on, `skipped_from_seq`), the reader reports the skipped numbers as a gap that was never written and goes on, instead of waiting at the end of the earlier segment forever.
        let directory = TempDirectory::new("reader-skip");
        let (mut journal, _) = Journal::open(&directory.0, options()).unwrap();
        append(&mut journal, 20);
        journal.flush().unwrap();
        drop(journal);
        let segment_bytes = options().segment_bytes;
        let header = crate::journal::layout::encode_segment_header(30, segment_bytes, 21);
        let mut bytes = header.to_vec();
        bytes.resize(segment_bytes as usize, 0);
        std::fs::write(directory.0.join(crate::journal::layout::segment_file_name(30)), bytes).unwrap();
        let mut reader = JournalReader::new(&directory.0, 1);
        let mut out = Vec::new();
        assert_eq!(reader.read(u64::MAX, 100, &mut out).unwrap(), ReadOutcome::Records(20));
        assert_eq!(reader.read(u64::MAX, 100, &mut out).unwrap(), ReadOutcome::Gap { from_seq: 21, to_seq: 30, released: false });
        assert_eq!(reader.read(u64::MAX, 100, &mut out).unwrap(), ReadOutcome::Nothing);
        // A reader placed inside the skipped numbers too.
        let mut inside = JournalReader::new(&directory.0, 25);
        assert_eq!(inside.read(u64::MAX, 100, &mut out).unwrap(), ReadOutcome::Gap { from_seq: 25, to_seq: 30, released: false });
    }
}
