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
//!   journal joins it before the file is used, and on drop (after telling
//!   it to stop at its next chunk) before the directory lock is released,
//!   so no worker outlives its journal.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// The worker preparing it; taken when the spare is used or dropped.
    worker: Option<JoinHandle<io::Result<File>>>,
    /// Set when the spare is dropped unused: the worker stops after its
    /// current chunk, so closing a journal never waits out the pacing.
    abandoned: Arc<AtomicBool>,
}

impl Spare {
    /// Starts preparing a spare of `segment_bytes` in `directory`; with
    /// `durable`, its zeros are synced before it counts as ready.
    pub(crate) fn start(directory: &Path, segment_bytes: u64, durable: bool) -> Spare {
        debug_assert!(SPARE_FILE_NAME.ends_with(&format!(".{SEGMENT_EXTENSION}.{TEMPORARY_EXTENSION}")));
        let path = directory.join(SPARE_FILE_NAME);
        let worker_path = path.clone();
        let abandoned = Arc::new(AtomicBool::new(false));
        let worker_abandoned = Arc::clone(&abandoned);
        let worker = std::thread::Builder::new()
            .name("journal-spare".to_owned())
            .spawn(move || prepare(&worker_path, segment_bytes, durable, &worker_abandoned));
        // No thread: roll-over prepares the segment itself, as without a
        // spare.
        let worker = worker.ok();
        Spare { path, worker, abandoned }
    }

    /// True once the worker is done (or could not start), so taking the
    /// spare will not wait.
    pub(crate) fn is_ready(&self) -> bool {
        self.worker.as_ref().is_none_or(JoinHandle::is_finished)
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
            self.abandoned.store(true, Ordering::Relaxed);
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
/// Stops early, with an `Interrupted` error, once `abandoned` is set.
fn prepare(path: &Path, segment_bytes: u64, durable: bool, abandoned: &AtomicBool) -> io::Result<File> {
    use std::os::fd::AsRawFd as _;
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    let mut written = 0;
    while written < segment_bytes {
        if abandoned.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "spare abandoned: the journal closed"));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::testing::TempDirectory;

    // An abandoned worker stops before its next chunk: nothing more is written and it reports Interrupted, so closing a journal does not wait out the pacing of a 64 MiB spare.
    #[test]
    fn an_abandoned_worker_stops_before_its_next_chunk() {
        let directory = TempDirectory::new("spare-abandoned");
        fs::create_dir_all(&directory.0).expect("directory");
        let path = directory.0.join(SPARE_FILE_NAME);
        let abandoned = AtomicBool::new(true);
        let error = prepare(&path, 64 << 20, true, &abandoned).expect_err("abandoned");
        assert_eq!(error.kind(), io::ErrorKind::Interrupted);
        assert_eq!(fs::metadata(&path).expect("created").len(), 0, "no chunk written");

        let not_abandoned = AtomicBool::new(false);
        let file = prepare(&path, 3 * PACE_CHUNK_BYTES + 8, true, &not_abandoned).expect("prepared");
        assert_eq!(file.metadata().expect("metadata").len(), 3 * PACE_CHUNK_BYTES + 8);
    }
}
