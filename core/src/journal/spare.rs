//! The spare segment: the next segment file, preallocated (and synced under
//! a durable policy) by a background thread while the active segment fills,
//! so that roll-over only writes a header, syncs it and renames the file.
//! With `fallocate` the preparation is mostly a metadata sync; on a file
//! system without it, the zeros are written, 64 MiB of disk work that must
//! not stall every ack and copy behind the appender's thread.
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
use super::segment::preallocate;

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

/// Prepares the spare: `segment_bytes` of allocated zeros, synced when
/// `durable`.
fn prepare(path: &Path, segment_bytes: u64, durable: bool) -> io::Result<File> {
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    preallocate(&mut file, 0, segment_bytes)?;
    if durable {
        file.sync_all()?;
    }
    Ok(file)
}
