//! The `Group` policy's flush on a thread of its own, so the appender never
//! waits for storage: it hands a closed group (the files that hold it and
//! its last sequence) to the flusher and keeps appending the next group
//! while the flusher's `fdatasync` runs. It learns of the outcome when it
//! next polls, and a notify callback (the router's doorbell) tells it at
//! once.
//!
//! On Linux, `msync(MS_SYNC)` of a shared file mapping is a data sync of
//! the file's range (`vfs_fsync_range`): pages written through the mapping
//! are marked dirty in the page cache by the write fault, so `fdatasync` of
//! the file makes them durable just the same. A request holds each file
//! opened a second time by the segment (an open file description of its
//! own, so a writeback error is reported to it and to the mapping's
//! msync alike), so a segment released meanwhile is only unlinked.
//!
//! # Invariants
//! - At most one request is in flight: the appender submits only when the
//!   previous outcome was collected (`busy` is false).
//! - An outcome names the request's `upto_seq`, every record up to which
//!   was in the mapping before the request was handed over.
//! - The thread exits when the `Flusher` is dropped, after finishing the
//!   request in flight (drop waits for it).
//! - The appender never waits for the thread: a flush it must finish
//!   itself (roll-over, an explicit `flush`) syncs on its own thread, and
//!   the thread's outcome, collected later, cannot move `synced_seq` back.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::error::{io_error, JournalError};

/// Called on the flusher's thread after each flush (success or failure).
pub type FlushNotify = Arc<dyn Fn() + Send + Sync>;

/// One group to make durable: the files holding its records, oldest first.
pub struct FlushRequest {
    /// Each segment file the group touches, with its path for errors. A
    /// data sync of each (`fdatasync`, or io_uring's `IORING_FSYNC_DATASYNC`)
    /// makes the group durable.
    pub files: Vec<(PathBuf, Arc<File>)>,
    /// The group's last sequence: durable once every file is synced.
    pub upto_seq: u64,
}

/// What the thread and the appender share.
struct Shared {
    /// The request waiting for the thread, the outcome waiting for the
    /// appender, and the stop flag.
    state: Mutex<State>,
    /// Signalled when a request or the stop flag is set.
    requested: Condvar,
    /// Set with the outcome, so a poll without one takes no lock.
    has_outcome: AtomicBool,
    /// Told after each flush; replaced by `set_notify`.
    notify: Mutex<Option<FlushNotify>>,
}

#[derive(Default)]
struct State {
    request: Option<FlushRequest>,
    outcome: Option<Result<u64, JournalError>>,
    stop: bool,
}

/// The appender's handle on the flush thread.
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// A request was handed over and its outcome not yet collected.
    busy: bool,
}

impl Flusher {
    /// Starts the thread; `set_notify` names who it tells.
    pub(crate) fn start() -> Result<Flusher, JournalError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            requested: Condvar::new(),
            has_outcome: AtomicBool::new(false),
            notify: Mutex::new(None),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("journal-flush".into())
            .spawn(move || run(&worker))
            .map_err(io_error(&PathBuf::from("journal-flush"), "spawn flush thread"))?;
        Ok(Flusher { shared, thread: Some(thread), busy: false })
    }

    /// True while a request is in flight or its outcome is uncollected.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy
    }

    /// True when an outcome waits to be collected by `poll`.
    pub(crate) fn has_outcome(&self) -> bool {
        self.busy && self.shared.has_outcome.load(Ordering::Acquire)
    }

    /// Hands a group over; the caller checked `is_busy()` is false.
    pub(crate) fn submit(&mut self, request: FlushRequest) {
        assert!(!self.busy, "one flush request at a time");
        let mut state = lock(&self.shared.state);
        state.request = Some(request);
        drop(state);
        self.shared.requested.notify_one();
        self.busy = true;
    }

    /// The outcome of the request in flight, when it is done: the synced
    /// sequence, or the error that poisons the journal.
    pub(crate) fn poll(&mut self) -> Option<Result<u64, JournalError>> {
        if !self.has_outcome() {
            return None;
        }
        self.take_outcome()
    }

    /// Replaces the callback told after each flush.
    pub(crate) fn set_notify(&self, notify: Option<FlushNotify>) {
        *lock(&self.shared.notify) = notify;
    }

    fn take_outcome(&mut self) -> Option<Result<u64, JournalError>> {
        let mut state = lock(&self.shared.state);
        let outcome = state.outcome.take();
        if outcome.is_some() {
            self.shared.has_outcome.store(false, Ordering::Release);
            self.busy = false;
        }
        outcome
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.requested.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic on the thread was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The critical sections only move values; a panic elsewhere leaves them
    // consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The thread: take a request, sync its files, publish the outcome, notify.
fn run(shared: &Shared) {
    loop {
        let request = {
            let mut state = lock(&shared.state);
            // Bounded: each wake either finds a request or the stop flag,
            // or waits again (spurious wake).
            loop {
                if let Some(request) = state.request.take() {
                    break request;
                }
                if state.stop {
                    return;
                }
                state = shared.requested.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A panic in the sync must not leave the appender waiting for an
        // outcome that never comes: it becomes an error, which poisons.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| request.sync_here())).unwrap_or_else(|_| {
            let path = request.files.first().map(|(path, _)| path.clone()).unwrap_or_default();
            Err(JournalError::Io { path, operation: "fdatasync (flush thread panicked)", source: std::io::Error::other("panic") })
        });
        {
            let mut state = lock(&shared.state);
            state.outcome = Some(outcome);
            shared.has_outcome.store(true, Ordering::Release);
        }
        let notify = lock(&shared.notify).clone();
        if let Some(notify) = notify {
            notify();
        }
    }
}

impl FlushRequest {
    /// Syncs every file of the request on this thread (`fdatasync`);
    /// returns `upto_seq` for `complete_flush`, or the first failure.
    pub fn sync_here(&self) -> Result<u64, JournalError> {
        for (path, file) in &self.files {
            file.sync_data().map_err(io_error(path, "fdatasync"))?;
        }
        Ok(self.upto_seq)
    }
}
