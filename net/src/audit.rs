//! The append-only audit file of a bridge without `[persist]`
//! (`audit.jsonl` in the journal directory, the file the operator's
//! commands append to as well): one JSON line per refused `hello` (login,
//! remote address, reason; never the key). Written by its own thread, so a
//! shard never waits on the disk; a line that finds the queue full is
//! dropped and counted.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// The append-only audit file of TOML mode, in the journal directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// Appends one JSON line to the audit file and syncs it (the operator's
/// commands and the admin API, which are not on a shard).
pub fn append_audit_line(journal_dir: &Path, line: &serde_json::Value) -> std::io::Result<()> {
    std::fs::create_dir_all(journal_dir)?;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(journal_dir.join(AUDIT_FILE))?;
    // One write per line: the bridge and CLI processes append to the same
    // file, and O_APPEND keeps whole writes from interleaving.
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()
}

/// Lines waiting for the writer at most.
pub const AUDIT_QUEUE_LINES_MAX: usize = 1_024;

/// The writer's end, shared by the shards.
#[derive(Debug)]
pub struct AuditFile {
    sender: mpsc::SyncSender<String>,
    /// Lines dropped because the queue was full; only grows.
    pub dropped: AtomicU64,
    path: PathBuf,
}

impl AuditFile {
    /// Starts the writer of `journal_dir`'s [`AUDIT_FILE`].
    pub fn start(journal_dir: &Path) -> std::io::Result<AuditFile> {
        let path = journal_dir.join(AUDIT_FILE);
        let (sender, lines) = mpsc::sync_channel::<String>(AUDIT_QUEUE_LINES_MAX);
        let target = path.clone();
        std::thread::Builder::new().name("audit".into()).spawn(move || {
            while let Ok(first) = lines.recv() {
                let mut batch = vec![first];
                batch.extend(lines.try_iter());
                let written = std::fs::OpenOptions::new().create(true).append(true).open(&target).and_then(|mut file| {
                    let text: String = batch.iter().map(|line| format!("{line}\n")).collect();
                    file.write_all(text.as_bytes())?;
                    file.sync_data()
                });
                if let Err(error) = written {
                    tracing::error!(path = %target.display(), %error, lines = batch.len(), "cannot append to the audit file");
                }
            }
        })?;
        Ok(AuditFile { sender, dropped: AtomicU64::new(0), path })
    }

    /// Queues one JSON value as a line; never blocks.
    pub fn record(&self, line: serde_json::Value) {
        if self.sender.try_send(line.to_string()).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(path = %self.path.display(), dropped, "the audit file's queue is full: lines dropped");
            }
        }
    }
}
