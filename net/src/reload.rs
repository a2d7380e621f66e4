//! Configuration changes for a running bridge: a validated configuration
//! handed to the router, which applies it between two inputs (journaled
//! first, so a replay meets it at the same point), and the outcome handed
//! back.
//!
//! # Layout
//! - [`RouterInbox`]: one request at a time for the router (a reload from
//!   SIGHUP or the admin API, or a view the API shows), and its answer back.
//! - [`record_reload`]: a reload's outcome where `tradebridge reload`
//!   reads it ([`STATUS_FILE`] in the journal directory); the reload
//!   itself is `source::reload_file`.
//!
//! # Invariants
//! - The router only ever looks at one atomic flag per pass when no change
//!   is asked for.
//! - An invalid file changes nothing: it never reaches the router.
//! - Requests are answered in the order they were made; a request whose
//!   caller stopped waiting is still applied and its outcome logged.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tradebridge_core::config::Config;

use crate::doorbell::Doorbell;

/// The file in the journal directory with the outcome of the last reload.
pub const STATUS_FILE: &str = "reload-status.json";

/// The file in the journal directory with the running bridge's process id.
pub const PID_FILE: &str = "tradebridge.pid";

/// Longest wait for the router to apply a change (it does between two
/// passes, normally within milliseconds).
pub const APPLY_WAIT: Duration = Duration::from_secs(10);

/// What became of a configuration handed to the router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ReloadOutcome {
    /// Applied from this point of the journal on.
    Applied {
        /// The configuration's generation (the journal's count of them).
        generation: u64,
        accounts_removed: usize,
        accounts_changed: usize,
        follows_removed: usize,
        follows_changed: usize,
        /// Closes and cancels sent for ended follows with `on_remove = "close"`.
        exits: usize,
        /// `[server]` or `[persist]` changed too: they apply at the next start.
        restart_needed: Vec<String>,
    },
    /// The accounts and follows are those already in effect.
    Unchanged { generation: u64, restart_needed: Vec<String> },
    /// Not applied; nothing changed.
    Refused { reason: String },
    /// The file did not load; nothing changed.
    Invalid { error: String },
}

impl ReloadOutcome {
    /// True when the bridge runs the file's accounts and follows now.
    pub fn is_success(&self) -> bool {
        matches!(self, ReloadOutcome::Applied { .. } | ReloadOutcome::Unchanged { .. })
    }
}

/// What the router is asked between two passes.
#[derive(Debug)]
pub enum RouterAsk {
    /// Apply this validated configuration; `source`: who asked (`reload`
    /// for SIGHUP, `api:<token name>` for the admin API).
    Reload { config: Box<Config>, source: String },
    /// Describe part of the engine's state (the admin API's read views).
    View(ViewQuery),
}

/// A read view only the router can give: it owns the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewQuery {
    /// A follower's copies against its masters' positions.
    Follower { slave: u64 },
    /// The latest skips, newest last, at most `limit`, of one account
    /// (slave or master) if given.
    Skips { limit: usize, login: Option<u64> },
}

/// The router's answer to a [`RouterAsk`].
#[derive(Debug)]
pub enum RouterAnswer {
    Reload(ReloadOutcome),
    View(ViewAnswer),
}

/// A view as the router hands it back: plain data, copied out; the caller
/// (the admin API's thread) makes JSON of it, not the router.
#[derive(Debug)]
pub enum ViewAnswer {
    Follower { slave: u64, known: bool, positions: Vec<tradebridge_core::engine::view::FollowerPosition> },
    Skips { kept_max: usize, skips: Vec<SkipView> },
}

/// One recent skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipView {
    /// Wall clock, ms since the epoch.
    pub at_ms: u64,
    pub slave: u64,
    pub master: u64,
    pub pos: u64,
    pub reason: &'static str,
}

/// A request for the router, and where its answer goes.
pub struct RouterRequest {
    pub ask: RouterAsk,
    pub reply: mpsc::SyncSender<RouterAnswer>,
}

/// The router's mailbox for configuration changes and views.
pub struct RouterInbox {
    /// True while `request` holds one; the router's only per-pass cost.
    pending: AtomicBool,
    request: Mutex<Option<RouterRequest>>,
    /// Wakes a parked router.
    bell: Arc<Doorbell>,
    /// Serializes requesters, so one is answered before the next is made.
    turn: Mutex<()>,
}

impl RouterInbox {
    pub fn new(bell: Arc<Doorbell>) -> RouterInbox {
        RouterInbox { pending: AtomicBool::new(false), request: Mutex::new(None), bell, turn: Mutex::new(()) }
    }

    /// Router: true when a request waits.
    pub fn has_request(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Router: the waiting request, if any.
    pub fn take(&self) -> Option<RouterRequest> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.request.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    /// Hands `ask` to the router and waits (at most `wait`) for its answer;
    /// `None` when the router did not answer in time (a change may still
    /// apply).
    pub fn ask(&self, ask: RouterAsk, wait: Duration) -> Option<RouterAnswer> {
        let _turn = self.turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A request whose asker stopped waiting may still sit here: it is
        // taken before this one is placed, never replaced (a change must
        // not be lost to a later view).
        let deadline = std::time::Instant::now() + wait;
        while self.pending.load(Ordering::Acquire) {
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        let (reply, answer) = mpsc::sync_channel(1);
        *self.request.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(RouterRequest { ask, reply });
        self.pending.store(true, Ordering::Release);
        self.bell.ring();
        answer.recv_timeout(wait).ok()
    }

    /// Hands `config` to the router and waits (at most `wait`) for its
    /// outcome; `None` when the router did not answer in time (it may still
    /// apply it).
    pub fn submit(&self, config: Config, source: &str, wait: Duration) -> Option<ReloadOutcome> {
        match self.ask(RouterAsk::Reload { config: Box::new(config), source: source.to_owned() }, wait)? {
            RouterAnswer::Reload(outcome) => Some(outcome),
            RouterAnswer::View(_) => None,
        }
    }

    /// Asks the router for a view; `None` when it did not answer in time.
    pub fn view(&self, query: ViewQuery, wait: Duration) -> Option<ViewAnswer> {
        match self.ask(RouterAsk::View(query), wait)? {
            RouterAnswer::View(value) => Some(value),
            RouterAnswer::Reload(_) => None,
        }
    }
}

/// The outcome of a reload as written to [`STATUS_FILE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Counts reloads of this bridge process; `tradebridge reload` waits
    /// for it to move.
    pub reload: u64,
    /// The process that wrote it.
    pub pid: u32,
    pub file: String,
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
}

/// Reloads handled by this process.
static RELOADS: AtomicU64 = AtomicU64::new(0);

/// Logs a reload's outcome and records it in the journal directory's
/// [`STATUS_FILE`], where `tradebridge reload` reads it; `described`: the
/// source it came from.
pub fn record_reload(journal_dir: &Path, described: String, actor: &str, outcome: &ReloadOutcome) {
    match outcome {
        ReloadOutcome::Invalid { error } => tracing::error!(source = %described, %error, "reload: the configuration is invalid; nothing changed"),
        ReloadOutcome::Refused { reason } => tracing::error!(source = %described, %reason, "reload refused; nothing changed"),
        other => tracing::info!(source = %described, actor, outcome = ?other, "reload done"),
    }
    let status = ReloadStatus {
        reload: RELOADS.fetch_add(1, Ordering::Relaxed) + 1,
        pid: std::process::id(),
        file: described,
        outcome: outcome.clone(),
    };
    if let Err(error) = write_status(journal_dir, &status) {
        tracing::error!(%error, "cannot write the reload status file");
    }
}

fn write_status(journal_dir: &Path, status: &ReloadStatus) -> std::io::Result<()> {
    let path = journal_dir.join(STATUS_FILE);
    let temporary = journal_dir.join(format!("{STATUS_FILE}.tmp"));
    std::fs::write(&temporary, serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?)?;
    std::fs::rename(&temporary, &path)
}

/// The last reload's status, if the file exists and reads.
pub fn read_status(journal_dir: &Path) -> Option<ReloadStatus> {
    let bytes = std::fs::read(journal_dir.join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the process id file; removed by [`PidFile`]'s drop.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn create(journal_dir: &Path) -> std::io::Result<PidFile> {
        let path = journal_dir.join(PID_FILE);
        std::fs::write(&path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
