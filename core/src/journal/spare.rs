//! The spare segment: the next segment file, its zeros written (and synced
//! under a durable policy) by a background thread while the active segment
//! fills, so that roll-over only writes a header, syncs it and renames the
//! file. Writing a 64 MiB segment's zeros and syncing them took 89-126 ms
//! here (`cargo bench -p tradebridge-core --bench journal_roll_over`); done
//! at roll-over, on the router's thread, every ack and copy waited for it.
//!
//! The worker paces its writes ([`PACE_CHUNK_BYTES`], written back and
//! waited for, then a pause of [`PACE_PAUSE_MS`]): written in one burst, the
//! zeros queued ahead of the journal's own flushes on the disk, and
//! group-sync acks waited up to 17 ms behind them. Zeros, not
//! `fallocate(2)`: its unwritten extents made every later msync also commit
//! an extent conversion, which doubled the bridge's event_to_durable p50.
//!
//! # Invariants
//! - At most one spare exists per journal, under [`SPARE_FILE_NAME`], a
//!   temporary name: recovery removes it like any half-made segment, so a
//!   crash while it is written (or before it is used) loses nothing.
//! - The worker only ever writes the spare's own file, which it creates; the
//!   journal joins it before the file is used, and on drop before the
//!   directory lock is released, so no worker outlives its journal.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::layout::{SEGMENT_EXTENSION, TEMPORARY_EXTENSION};
use super::segment::write_zeros;

/// File name of the spare in the journal directory: a temporary segment
/// name, so recovery removes a spare it finds.
/// (`Spare::start` asserts it ends in the extensions recovery removes.)
pub const SPARE_FILE_NAME: &str = "spare.seg.tmp";

/// A spare segment being prepared, or ready.
pub(crate) struct Spare {
    /// Where the spare file is.
    path: PathBuf,
    /// Size it is prepared to; a spare of another size is not used.
    segment_bytes: u64,
    /// The worker preparing it; taken when the spare is used or dropped.
    worker: Option<JoinHandle<io::Result<File>>>,
}

impl Spare {
    /// Starts preparing a spare of `segment_bytes` in `directory`; with
    /// `durable`, its zeros are synced before it counts as ready.
    pub(crate) fn start(directory: &Path, segment_bytes: u64, durable: bool) -> Spare {
        debug_assert!(SPARE_FILE_NAME.ends_with(&format!(".{SEGMENT_EXTENSION}.{TEMPORARY_EXTENSION}")));
        let path = directory.join(SPARE_FILE_NAME);
        let worker_path = path.clone();
        let worker = std::thread::Builder::new()
            .name("journal-spare".to_owned())
            .spawn(move || prepare(&worker_path, segment_bytes, durable));
        // No thread: roll-over prepares the segment itself, as without a
        // spare.
        let worker = worker.ok();
        Spare { path, segment_bytes, worker }
    }

    /// True once the worker is done (or could not start), so taking the
    /// spare will not wait.
    pub(crate) fn is_ready(&self) -> bool {
        self.worker.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Size the spare is prepared to.
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Waits for the worker and hands over the prepared file and its path;
    /// `Err` when it could not be prepared (the caller then creates the
    /// segment itself, which reports any lasting I/O error).
    pub(crate) fn take(mut self) -> io::Result<(File, PathBuf)> {
        let worker = self.worker.take().ok_or_else(|| io::Error::other("no spare worker thread"))?;
        let file = worker.join().map_err(|_| io::Error::other("spare worker panicked"))??;
        Ok((file, std::mem::take(&mut self.path)))
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        // An unused spare is removed (best effort: recovery removes it too),
        // so a closed journal leaves only its segments behind.
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Bytes of zeros the worker writes, and waits to be written back, between
/// pauses: the most of its I/O a journal flush can find queued ahead of it.
pub const PACE_CHUNK_BYTES: u64 = 256 << 10;
/// Pause after each chunk: at most 256 KiB per 5 ms (50 MiB/s), so a 64 MiB
/// spare takes at least 1.3 s, far less than the 20 s or so a segment
/// lasted at 10,000 copies a second.
pub const PACE_PAUSE_MS: u64 = 5;

/// Prepares the spare: `segment_bytes` of zeros written in paced chunks,
/// each written back before the next under a durable policy, then synced.
fn prepare(path: &Path, segment_bytes: u64, durable: bool) -> io::Result<File> {
    use std::os::fd::AsRawFd as _;
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    let mut written = 0;
    while written < segment_bytes {
        let chunk = (segment_bytes - written).min(PACE_CHUNK_BYTES);
        write_zeros(&mut file, chunk)?;
        if durable {
            // Write this chunk back now and wait for it, so at most one
            // chunk of the spare is ever queued on the disk ahead of a
            // journal flush, and the final sync has little left. Advice: a
            // failure here is caught by that sync.
            // SAFETY: sync_file_range on an open descriptor owned by `file`,
            // over bytes of the file; it touches no memory of this process.
            let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), written as i64, chunk as i64, flags) };
        }
        written += chunk;
        if written < segment_bytes {
            std::thread::sleep(std::time::Duration::from_millis(PACE_PAUSE_MS));
        }
    }
    if durable {
        file.sync_all()?;
    }
    Ok(file)
}
