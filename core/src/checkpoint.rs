//! Checkpoint files: the routing state as of one journal sequence number,
//! so the journal segments below it can be released.
//!
//! A file is `checkpoint-<seq, 20 digits>.bin` in the journal directory:
//! a fixed header (magic, format version, `seq`, payload length, CRC-32C
//! of the header fields and the payload), then the payload, the state in
//! postcard (serde's compact varint format, stable since postcard 1.0).
//! Postcard rather than rkyv: the state is a tree of maps and strings read
//! once at start, so zero-copy access buys nothing, while serde derives stay
//! one line on the engine's types and need no archived twins of them.
//!
//! # Layout
//! - [`encode`] / [`decode`]: state <-> file bytes, with the checks.
//! - [`write_file`]: temporary file, fsync, rename, directory fsync.
//! - [`list`], [`remove_all_but`]: the checkpoint files of a directory.
//!
//! # Invariants
//! - A file is only ever seen complete under its final name: it is written
//!   as `*.bin.tmp`, synced, then renamed, and the directory synced.
//! - [`decode`] returns a state only when the magic, the version, the
//!   length and the checksum all match.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// First bytes of every checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TBCHKPT\0";

/// Format version; raised whenever the state's layout changes, so an older
/// file is refused (and the journal replayed) rather than misread, unless
/// the reader knows its layout ([`decode_versioned`]). 2: the router's
/// state carries the configuration in effect (issue 14). 3: each account of
/// that configuration carries `allow_from`, `key_created_ms` and
/// `key_expires_ms` (issue 16; no landed build wrote another version 3).
pub const CHECKPOINT_VERSION: u32 = 3;

/// Header bytes: magic 8, version 4, crc 4, seq 8, payload length 8.
pub const CHECKPOINT_HEADER_BYTES: usize = 32;

/// Name prefix and extension of checkpoint files.
const FILE_PREFIX: &str = "checkpoint-";
const FILE_EXTENSION: &str = ".bin";
const TEMPORARY_EXTENSION: &str = ".tmp";

/// Why a checkpoint could not be written or read.
#[derive(Debug)]
pub enum CheckpointError {
    /// A file system call failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was done to it.
        operation: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
    /// The bytes are not a valid checkpoint.
    Invalid {
        /// What is wrong, with the value found and the one expected.
        reason: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { path, operation, source } => write!(formatter, "{operation} {}: {source}", path.display()),
            CheckpointError::Invalid { reason } => write!(formatter, "invalid checkpoint: {reason}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

fn invalid(reason: String) -> CheckpointError {
    CheckpointError::Invalid { reason }
}

fn io_error<'path>(path: &'path Path, operation: &'static str) -> impl FnOnce(std::io::Error) -> CheckpointError + 'path {
    move |source| CheckpointError::Io { path: path.to_path_buf(), operation, source }
}

/// The file name of the checkpoint at `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{FILE_PREFIX}{seq:020}{FILE_EXTENSION}")
}

/// The `seq` of a checkpoint file name; `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_EXTENSION)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The checksum of a file: the header after the checksum field, then the
/// payload.
fn checksum(header_tail: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_tail), payload)
}

/// The file bytes of `state` taken at journal sequence `seq`;
/// `capacity_bytes` is the expected size (the previous checkpoint's), so
/// the buffer is allocated once rather than grown by copying.
pub fn encode<T: Serialize>(seq: u64, state: &T, capacity_bytes: usize) -> Result<Vec<u8>, CheckpointError> {
    encode_version(CHECKPOINT_VERSION, seq, state, capacity_bytes)
}

/// [`encode`] with another format version in the header: for tests of the
/// reading of older files.
pub fn encode_version<T: Serialize>(version: u32, seq: u64, state: &T, capacity_bytes: usize) -> Result<Vec<u8>, CheckpointError> {
    let mut bytes = Vec::with_capacity(capacity_bytes.max(CHECKPOINT_HEADER_BYTES));
    bytes.resize(CHECKPOINT_HEADER_BYTES, 0);
    let mut bytes = postcard::to_extend(state, bytes)
    .map_err(|error| invalid(format!("serializing the state at seq {seq}: {error}")))?;
    let payload_bytes = (bytes.len() - CHECKPOINT_HEADER_BYTES) as u64;
    bytes[..8].copy_from_slice(&CHECKPOINT_MAGIC);
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    bytes[16..24].copy_from_slice(&seq.to_le_bytes());
    bytes[24..32].copy_from_slice(&payload_bytes.to_le_bytes());
    let crc = checksum(&bytes[16..CHECKPOINT_HEADER_BYTES], &bytes[CHECKPOINT_HEADER_BYTES..]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}

/// Reads back a file written by [`encode`] of this version: its `seq` and state.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(u64, T), CheckpointError> {
    decode_versioned(bytes, |version, payload| {
        if version != CHECKPOINT_VERSION {
            return Err(format!("version {version}; expected {CHECKPOINT_VERSION}"));
        }
        postcard::from_bytes(payload).map_err(|error| error.to_string())
    })
}

/// Reads back a file of any version: after the magic, length and checksum
/// are checked, `read` turns the version and payload into a state (an
/// error for a version it does not know).
pub fn decode_versioned<T>(bytes: &[u8], read: impl FnOnce(u32, &[u8]) -> Result<T, String>) -> Result<(u64, T), CheckpointError> {
    if bytes.len() < CHECKPOINT_HEADER_BYTES {
        return Err(invalid(format!("{} bytes; expected at least the {CHECKPOINT_HEADER_BYTES}-byte header", bytes.len())));
    }
    let field = |range: std::ops::Range<usize>| -> [u8; 8] {
        let mut value = [0u8; 8];
        value[..range.len()].copy_from_slice(&bytes[range]);
        value
    };
    if bytes[..8] != CHECKPOINT_MAGIC {
        return Err(invalid(format!("magic {:?}; expected {:?}", &bytes[..8], CHECKPOINT_MAGIC)));
    }
    let version = u64::from_le_bytes(field(8..12)) as u32;
    let crc = u64::from_le_bytes(field(12..16)) as u32;
    let seq = u64::from_le_bytes(field(16..24));
    let payload_bytes = u64::from_le_bytes(field(24..32));
    let payload = &bytes[CHECKPOINT_HEADER_BYTES..];
    if payload.len() as u64 != payload_bytes {
        return Err(invalid(format!("payload of {} bytes; the header says {payload_bytes}", payload.len())));
    }
    let computed = checksum(&bytes[16..CHECKPOINT_HEADER_BYTES], payload);
    if computed != crc {
        return Err(invalid(format!("checksum {computed:#010x}; the header says {crc:#010x}")));
    }
    let state = read(version, payload).map_err(|error| invalid(format!("state at seq {seq}: {error}")))?;
    Ok((seq, state))
}

/// Writes `bytes` as the checkpoint at `seq` in `directory` durably: a
/// temporary file, fsync, rename, directory fsync. Returns the final path.
pub fn write_file(directory: &Path, seq: u64, bytes: &[u8]) -> Result<PathBuf, CheckpointError> {
    let path = directory.join(file_name(seq));
    let temporary = directory.join(format!("{}{TEMPORARY_EXTENSION}", file_name(seq)));
    let mut file = fs::File::create(&temporary).map_err(io_error(&temporary, "create"))?;
    file.write_all(bytes).map_err(io_error(&temporary, "write"))?;
    file.sync_all().map_err(io_error(&temporary, "fsync"))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(io_error(&path, "rename to"))?;
    sync_directory(directory)?;
    Ok(path)
}

/// Makes the directory's entries (a rename, a removal) durable.
fn sync_directory(directory: &Path) -> Result<(), CheckpointError> {
    fs::File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(directory, "fsync directory"))
}

/// The checkpoint files of `directory`, newest (highest `seq`) first.
/// Leftover temporary files are removed.
pub fn list(directory: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    let mut found = Vec::new();
    let entries = fs::read_dir(directory).map_err(io_error(directory, "list"))?;
    for entry in entries {
        let entry = entry.map_err(io_error(directory, "list"))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(FILE_PREFIX) && name.ends_with(TEMPORARY_EXTENSION) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path, "remove temporary"))?;
        } else if let Some(seq) = parse_file_name(&name) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(found)
}

/// Removes every checkpoint file of `directory` whose seq is not in
/// `keep`, then syncs the directory. Returns how many were removed.
pub fn remove_all_but(directory: &Path, keep: &[u64]) -> Result<u32, CheckpointError> {
    let mut removed = 0u32;
    for (seq, path) in list(directory)? {
        if !keep.contains(&seq) {
            fs::remove_file(&path).map_err(io_error(&path, "remove"))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_directory(directory)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_any_flipped_byte_is_refused() {
        // Shows that decode gives back what encode wrote, and refuses a file with any single byte changed.
        let state: Vec<(u64, String)> = (0..50).map(|index| (index * 7, format!("state {index}"))).collect();
        let bytes = encode(42, &state, 0).unwrap();
        let (seq, decoded): (u64, Vec<(u64, String)>) = decode(&bytes).unwrap();
        assert_eq!((seq, &decoded), (42, &state));
        for index in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[index] ^= 0x20;
            assert!(decode::<Vec<(u64, String)>>(&corrupt).is_err(), "byte {index} flipped was accepted");
        }
        assert!(decode::<Vec<(u64, String)>>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn files_are_listed_newest_first_and_older_ones_removed() {
        // Shows the file naming, the listing order, the removal of leftovers and of every checkpoint but the kept one.
        let directory = crate::journal::testing::TempDirectory::new("checkpoint-files");
        let directory_path = directory.0.as_path();
        for seq in [5u64, 70, 12, 9] {
            write_file(directory_path, seq, &encode(seq, &seq, 0).unwrap()).unwrap();
        }
        fs::write(directory_path.join("checkpoint-00000000000000000099.bin.tmp"), b"partial").unwrap();
        fs::write(directory_path.join("00000000000000000001.seg"), b"not mine").unwrap();
        let seqs: Vec<u64> = list(directory_path).unwrap().into_iter().map(|(seq, _)| seq).collect();
        assert_eq!(seqs, vec![70, 12, 9, 5]);
        assert!(!directory_path.join("checkpoint-00000000000000000099.bin.tmp").exists());
        // The one just written (12) and the one the router ran from (9);
        // 70 is from a journal since replaced.
        assert_eq!(remove_all_but(directory_path, &[12, 9]).unwrap(), 2);
        let seqs: Vec<u64> = list(directory_path).unwrap().into_iter().map(|(seq, _)| seq).collect();
        assert_eq!(seqs, vec![12, 9]);
        assert_eq!(remove_all_but(directory_path, &[12, 0]).unwrap(), 1);
        let seqs: Vec<u64> = list(directory_path).unwrap().into_iter().map(|(seq, _)| seq).collect();
        assert_eq!(seqs, vec![12]);
        for seq in [20u64, 30] {
            write_file(directory_path, seq, &encode(seq, &seq, 0).unwrap()).unwrap();
        }
        // The new one (30) and the one the router ran from (12), not the
        // newer 20 (say, unreadable at start).
        assert_eq!(remove_all_but(directory_path, &[30, 12]).unwrap(), 1);
        let seqs: Vec<u64> = list(directory_path).unwrap().into_iter().map(|(seq, _)| seq).collect();
        assert_eq!(seqs, vec![30, 12]);
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("checkpoint-1.bin"), None);
    }
}
