//! The routing core: owns the journal and the engine, as a task on shard
//! 0's executor ([`Router::run_inline`]) or on a thread of its own
//! ([`Router::run`]). It takes master events and slave results from every shard
//! through the shard -> router rings (slave `state`/`symbols` and master
//! `snapshot` too, as [`JOURNAL_KIND_UPDATE`] records, so each connection's
//! frames are handled in the order they arrived), de-duplicates events by per-master `seq`, journals them, runs the engine,
//! gives each copy the slave's next `seq` and journals it, and once the
//! journal holds them durably (group commit through `Journal::tick`) sends
//! the `ack`s and `copy`s back through the router -> shard rings.
//!
//! # Layout
//! - The rings it reads and writes, the record kinds and the connection ids
//!   it addresses are in [`crate::links`], shared with the shards.
//! - [`open_journal`]: the journal options from `[server]`.
//! - [`Router`]: recovery (the newest checkpoint, then the journal above
//!   it), then the poll loop ([`Router::run`]) with the configured idle
//!   strategy; at `checkpoint_journal_bytes` it serializes a checkpoint,
//!   hands it to [`crate::checkpoint::CheckpointWriter`] once its seq is
//!   durable, and releases the journal below it once written.
//!
//! # Invariants
//! - An `ack` for `seq` leaves the router only once `durable_seq()` covers
//!   the journal record holding that `seq` (or, for a duplicate, the record
//!   of the highest `seq` stored for that master).
//! - A master event whose `seq` is at or below the highest stored one is
//!   never appended again: it is only acked again.
//! - A copy's `seq` is the slave's previous one plus 1, recovered from the
//!   journal at start; a copy leaves the router only once durable, so a
//!   crash can never make a `seq` be given to two different copies.
//! - Journal segments are released only below a checkpoint written
//!   durably, at a seq the journal held durably, so recovery always finds
//!   the state below the journal's first record in a checkpoint.
//! - Durable acks and copies wait for ring room in a queue per shard, so a
//!   full router -> shard ring holds up only its own shard, until all the
//!   queues and the acks awaiting durability reach [`PENDING_ACKS_MAX`]
//!   (a shard stuck that long stops the router's input, and is named in a
//!   warning first); each shard gets its items in the order they became
//!   durable (a slave's copies in `seq` order).
//! - A copy is kept in the slave's [`SlaveDelivery`] before the live
//!   connection is looked up (under one lock), so a session that starts
//!   meanwhile replays it or receives it, never neither.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::IntoRawFd as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tradebridge_core::config::{self, Config, ConfigDocument, JournalFlush, JournalSync};
use tradebridge_core::journal::options::RECORD_BYTES_MAX_DEFAULT;
use tradebridge_core::journal::{FlushRequest, GroupFlush, Journal, JournalError, JournalOptions, Recovery, SyncPolicy};

use tradebridge_core::engine::{CopyInstruction, Decision, Engine, Outcome, ReconfigureReport};
use tradebridge_core::protocol::{self, Copy, Message, TradeResult};
use tradebridge_core::record::{
    access_checked, decode_config_part, encode_config_parts, encode_session, encode_skips, ConfigAssembler, skips_per_record, AckRecord, CopyMeta, CopyRecord, MasterEventRecord, RecordEncoder, RecordKind,
    ResultRecord, SessionEntry, SessionEvent, SkipEntry,
};
use tradebridge_core::ring::{IdleAction, IdleStrategy as RingIdle, Idler};

use crate::accounts::{AccountTable, SlaveDelivery};
use crate::checkpoint::{CheckpointWriter, KeptCopies, RouterState, RouterStateRef, Written};
use crate::links::{RouterLinks, SlaveHello, Update, JOURNAL_KIND_CONFIG, JOURNAL_KIND_COPY, JOURNAL_KIND_MASTER_EVENT, JOURNAL_KIND_RESULT, JOURNAL_KIND_SESSION, JOURNAL_KIND_SKIPS, JOURNAL_KIND_SLAVE_SEQ, JOURNAL_KIND_UPDATE, RING_BATCH_RECORDS_MAX};
use crate::metrics::{Metrics, Stage};
use crate::reload::{ReloadOutcome, RouterAnswer, RouterAsk, RouterInbox, SkipView, ViewAnswer, ViewQuery};
use tradebridge_persist::feed::PersistFeed;

/// Copies remembered per slave until their result arrives, so the engine
/// can be told what each result is for; beyond it the oldest is forgotten
/// (its late result is then ignored).
pub const INSTRUCTIONS_PER_SLAVE_MAX: usize = 4_096;

/// Journaled when a slave's terminal has finished copy seqs above any this
/// journal gave it (a new or replaced journal, or one that lost its tail
/// under `journal_sync = "os"`): its numbering continues above `last_seq`.
/// With `reissue`, every copy still awaiting the slave's result is issued
/// again above `last_seq`, in its order: a copy the journal made but the
/// terminal never saw under that seq would otherwise be lost, and one it
/// did see comes again under a new seq (the Executor finds an open, a
/// pending order, a modify or a cancel it already carried out by its tag;
/// only a partial close would close again). `reissue` is set for the first
/// rebase of a slave in a process only, so a slave cannot make the router
/// re-issue its copies over and over. Replaying the record does the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeqRebase {
    slave: u64,
    last_seq: u64,
    reissue: bool,
}

impl SeqRebase {
    /// `slave`, `last_seq`, `reissue` as 0 or 1 (u64 LE each).
    fn encode(&self) -> [u8; 24] {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.slave.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.last_seq.to_le_bytes());
        bytes[16..].copy_from_slice(&u64::from(self.reissue).to_le_bytes());
        bytes
    }

    fn decode(payload: &[u8]) -> anyhow::Result<SeqRebase> {
        anyhow::ensure!(payload.len() == 24, "copy seq rebase of {} bytes: expected 24", payload.len());
        let reissue = match u64::from_le_bytes(payload[16..].try_into()?) {
            0 => false,
            1 => true,
            other => anyhow::bail!("copy seq rebase: reissue {other}, expected 0 or 1"),
        };
        Ok(SeqRebase { slave: u64::from_le_bytes(payload[..8].try_into()?), last_seq: u64::from_le_bytes(payload[8..16].try_into()?), reissue })
    }
}

/// Acks and copies waiting for durability or for room in their shard's
/// ring, together; beyond it the router stops reading the rings until the
/// journal and the shards catch up (back pressure).
pub const PENDING_ACKS_MAX: usize = 65_536;

/// Items waiting for one shard's ring at which a warning names the shard:
/// it is not draining its ring, and once all waiting items reach
/// [`PENDING_ACKS_MAX`] the router stops reading every shard.
const OUTGOING_WARN_ITEMS: usize = PENDING_ACKS_MAX / 8;

/// A journal record's header and alignment around its payload.
const JOURNAL_RECORD_OVERHEAD_BYTES: u32 = 64;

/// Share of `journal_bytes_max` past which each new segment logs a warning.
pub const JOURNAL_WARN_PERCENT: u64 = 80;

/// Shortest sleep of the inline router task, and its sleep under the `spin`
/// and `yield` idle strategies (the shard's executor spins or yields for
/// it; the task itself waits on its doorbell): bounds how late it sees the
/// stop flag or a checkpoint written, and keeps it off the short glommio
/// timers that stalled an executor (net/README.md, runtime).
const IDLE_TASK_WAIT_US_MIN: u64 = 1_000;

/// Spin steps of the `park` idle strategy before it sleeps. It does not
/// yield between spinning and parking: on 2 cores a `sched_yield` with the
/// shards runnable is a context switch (strace under fanout 10x10 at 1,000
/// events/s: 14.5 k yields in 5 s, 126 us each), and without them the bridge
/// took 55 instead of 62 us of CPU per copy.
const PARK_SPIN_STEPS_MAX: u32 = 64;
const PARK_YIELD_STEPS_MAX: u32 = 0;

/// Ends the process after the routing core failed: without it nothing more
/// can be acked, and exiting makes the EAs reconnect to a restarted bridge
/// that recovers the journal.
pub fn exit_stopped(error: &anyhow::Error) -> ! {
    tracing::error!("router stopped: {error:#}");
    eprintln!("tradebridge: router stopped: {error:#}");
    std::process::exit(1);
}

/// The segment files the io_uring flushes sync, as glommio files of their
/// own (duplicated descriptors), kept while the segment is being written.
type UringFiles = Rc<RefCell<Vec<(std::path::PathBuf, Rc<glommio::io::BufferedFile>)>>>;

/// Syncs the files of a journal flush request with io_uring on this
/// executor (`IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC`; the kernel runs
/// it on its own workers and posts the completion to this executor's ring),
/// then leaves the outcome in `flushed` and rings the router's bell.
fn spawn_uring_flush(
    request: FlushRequest,
    files: UringFiles,
    flushed: Rc<RefCell<Option<Result<u64, JournalError>>>>,
    bell: Arc<crate::doorbell::Doorbell>,
) {
    glommio::spawn_local(async move {
        let outcome = uring_sync_files(&request, &files).await;
        *flushed.borrow_mut() = Some(outcome);
        bell.ring();
    })
    .detach();
}

async fn uring_sync_files(request: &FlushRequest, files: &UringFiles) -> Result<u64, JournalError> {
    // Files of segments no longer flushed (rolled over, released) are
    // dropped; glommio closes them at its next I/O cycle.
    files.borrow_mut().retain(|(path, _)| request.files.iter().any(|(requested, _)| requested == path));
    for (path, file) in &request.files {
        let failed = |source: std::io::Error| JournalError::Io { path: path.clone(), operation: "fdatasync (io_uring)", source };
        let known = files.borrow().iter().find(|(known, _)| known == path).map(|(_, file)| Rc::clone(file));
        let uring_file = match known {
            Some(uring_file) => uring_file,
            None => {
                // glommio's file owns and closes its descriptor: give it a duplicate.
                let descriptor = file.try_clone().map_err(failed)?.into_raw_fd();
                // SAFETY: `descriptor` is a fresh duplicate that nothing else owns.
                let uring_file = Rc::new(unsafe { <glommio::io::BufferedFile as std::os::fd::FromRawFd>::from_raw_fd(descriptor) });
                files.borrow_mut().push((path.clone(), Rc::clone(&uring_file)));
                uring_file
            }
        };
        uring_file.fdatasync().await.map_err(|error| failed(error.into()))?;
    }
    Ok(request.upto_seq)
}

/// Opens the journal at `server.journal_dir` with the configured policy.
/// Damage recovery will not repair on its own (a bad record with valid
/// records after it, a bad segment header, a missing segment) is an error
/// that names the file and offset and the commands that deal with it.
pub fn open_journal(config: &Config) -> anyhow::Result<Journal> {
    let options = journal_options(config);
    let server = &config.server;
    let (journal, recovery) = match Journal::open(&server.journal_dir, options) {
        Ok(opened) => opened,
        Err(error @ (JournalError::CorruptRecord { .. } | JournalError::BadSegment { .. } | JournalError::SequenceGap { .. })) => {
            return Err(anyhow::anyhow!(
                "{error}. Nothing was changed. `tradebridge journal check --config <this file>` lists the damage; `tradebridge journal quarantine --config <this file>` copies the damaged segment aside, keeps every valid record and lets the bridge start"
            ))
            .with_context(|| format!("opening the journal in server.journal_dir = {}", server.journal_dir.display()));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("opening the journal in server.journal_dir = {}", server.journal_dir.display()))
        }
    };
    log_recovery(&recovery);
    Ok(journal)
}

/// Logs what recovery found: the record counts, and at WARN or ERROR every
/// cut, repair, quarantine or skip.
pub fn log_recovery(recovery: &Recovery) {
    tracing::info!(records = recovery.records_count, last_seq = recovery.last_seq, "journal recovered");
    if let Some(truncation) = &recovery.truncation {
        tracing::warn!(path = %truncation.path.display(), offset = truncation.offset, defect = %truncation.defect, bytes_zeroed = truncation.bytes_zeroed, "journal: cut at a bad record (a torn tail: nothing valid after it)");
    }
    for stale in &recovery.stale_tails_zeroed {
        tracing::warn!(path = %stale.path.display(), offset = stale.end_offset, bytes_zeroed = stale.bytes_zeroed, "journal: stray bytes after the end of a sealed segment zeroed (no record missing)");
    }
    for salvaged in &recovery.salvaged {
        tracing::error!(
            path = %salvaged.path.display(),
            offset = salvaged.offset,
            defect = %salvaged.defect,
            evidence = %salvaged.evidence.display(),
            records_kept = salvaged.records_kept,
            lost_seqs = ?salvaged.lost_seqs,
            "journal: damaged segment salvaged: cut at the damage, the valid records after it kept in new segments, the file as found copied aside"
        );
    }
    for path in &recovery.quarantined_segments {
        tracing::error!(path = %path.display(), "journal: segment quarantined (renamed aside, its records no longer replayed)");
    }
    if let Some(skipped) = recovery.skipped_seqs {
        tracing::error!(from_seq = skipped.from_seq, next_seq = skipped.next_seq, "journal: sequence numbers skipped after quarantining");
    }
    if let Some(path) = &recovery.recreated_segment {
        tracing::warn!(path = %path.display(), "journal: a half-created last segment was created again");
    }
}

/// The journal's options from `[server]`.
pub fn journal_options(config: &Config) -> JournalOptions {
    let server = &config.server;
    let sync = match server.journal_sync {
        JournalSync::EveryRecord => SyncPolicy::EveryRecord,
        JournalSync::Group => SyncPolicy::Group { records_max: server.journal_group_records, interval_ms: server.journal_group_ms },
        JournalSync::Os => SyncPolicy::Os,
    };
    // The byte bound decides; the segment count follows from it, so one
    // never trips before the other.
    let segments_max = server.journal_bytes_max.div_ceil(server.journal_segment_bytes).clamp(2, u64::from(u32::MAX)) as u32;
    // A journal record holds one ring record (validated to fit a segment).
    let record_bytes_max = (server.record_bytes_max() + JOURNAL_RECORD_OVERHEAD_BYTES).next_multiple_of(8).max(RECORD_BYTES_MAX_DEFAULT);
    JournalOptions {
        segment_bytes: server.journal_segment_bytes,
        record_bytes_max,
        sync,
        segments_max,
        retained_bytes_max: server.journal_bytes_max,
        spare_segment: server.journal_spare_segment,
        group_flush: match server.journal_flush.resolve(crate::links::routing(config)) {
            JournalFlush::Router => GroupFlush::Appender,
            JournalFlush::Uring => GroupFlush::Owner,
            JournalFlush::Auto | JournalFlush::Thread => GroupFlush::Thread,
        },
        ..JournalOptions::default()
    }
}

/// What the router knows of one master.
#[derive(Clone, Copy, Debug, Default)]
struct MasterProgress {
    /// Highest `event.seq` appended to the journal; only grows.
    event_seq: u64,
    /// Journal sequence of the record holding `event_seq`.
    journal_seq: u64,
}

/// What waits until the journal is durable up to its record.
#[derive(Clone, Debug)]
enum Waiting {
    /// An ack for the master connection on `shard`; `event_received_ns` is
    /// the event's receipt time for the latency histogram, 0 for a duplicate.
    Ack { shard: u32, ack: AckRecord, event_received_ns: u64 },
    /// A copy for a slave, to keep for replay and push to its live
    /// connection.
    Copy(Box<CopyRecord>),
}

/// A durable ack, or a durable copy already kept for replay, waiting only
/// for room in its shard's ring.
#[derive(Clone, Debug)]
enum Outgoing {
    /// An ack for a master connection.
    Ack(AckRecord),
    /// A copy addressed to a slave's live connection.
    Copy(Box<CopyRecord>),
}

/// An ack or copy waiting until the journal is durable up to `journal_seq`.
#[derive(Clone, Debug)]
struct PendingAck {
    /// The journal record that must be durable first.
    journal_seq: u64,
    /// What to send then.
    waiting: Waiting,
}

/// Where the next checkpoint stands; at most one is in progress.
enum CheckpointStep {
    /// None in progress.
    Idle,
    /// Serialized as of journal `seq`, waiting until the journal holds
    /// `seq` durably (a checkpoint never names a record a crash could lose).
    Serialized { seq: u64, bytes: Vec<u8>, serialize_us: u64 },
    /// Handed to the writer thread.
    Writing { seq: u64, serialize_us: u64 },
}

/// The routing core's state; lives on its own thread.
pub struct Router {
    /// The journal; the router is its only writer.
    journal: Journal,
    /// The rings to and from every shard.
    links: RouterLinks,
    /// Per-master progress, rebuilt from the journal at start.
    masters: HashMap<u64, MasterProgress>,
    /// Acks in journal order, waiting for durability; at most
    /// [`PENDING_ACKS_MAX`].
    pending: VecDeque<PendingAck>,
    /// Per shard (index = shard), durable acks and copies in the order they
    /// became durable, waiting for room in that shard's ring: a full ring
    /// holds up only its own shard. Counted with `pending` against
    /// [`PENDING_ACKS_MAX`].
    outgoing: Vec<VecDeque<Outgoing>>,
    /// Per shard: warned that its queue passed [`OUTGOING_WARN_ITEMS`];
    /// cleared when the queue empties, so each backlog warns once.
    outgoing_warned: Vec<bool>,
    /// Where `welcome` reads each master's durable `ack_seq`.
    accounts: Arc<AccountTable>,
    /// Encodes acks for the router -> shard rings.
    encoder: RecordEncoder,
    /// The idle strategy of the poll loop, from `server.idle`.
    idle: config::IdleStrategy,
    /// `journal_flush = "auto"`: a group closed because every ring was
    /// empty is synced on this thread (nothing else waits for it then),
    /// while groups closed under load (`journal_group_records`,
    /// `journal_group_ms`) go to io_uring or the flush thread.
    flush_idle_groups_here: bool,
    /// The copy engine; fed every new master event, snapshot, slave state,
    /// symbols and result.
    engine: Engine,
    /// Last copy `seq` given to each slave; +1 per copy, recovered at start.
    copy_seqs: HashMap<u64, u64>,
    /// Slaves rebased by this process (see [`SeqRebase`]); only the first
    /// rebase of each re-issues copies.
    rebased: std::collections::HashSet<u64>,
    /// Copies sent per slave by `seq`, until their result arrives; at most
    /// [`INSTRUCTIONS_PER_SLAVE_MAX`] per slave.
    instructions: HashMap<u64, std::collections::BTreeMap<u64, CopyInstruction>>,
    /// Decisions of the last engine call; reused to avoid allocating.
    decisions: Vec<Decision>,
    /// Passes in which a router -> shard ring was found full (its items
    /// waited in the shard's outgoing queue); only grows. For the debug log.
    ring_full_count: u64,
    /// Origin of `now_ms` and of the latency clock, shared with the shards
    /// (`Shared::started`).
    started: Instant,
    /// Counters and latency histograms.
    metrics: Arc<Metrics>,
    /// The journal's segment count when its size was last published; 0
    /// before the first pass.
    segments_seen: u32,
    /// Writes checkpoints on its own thread.
    checkpoint_writer: CheckpointWriter,
    /// The checkpoint in progress, if any.
    checkpoint: CheckpointStep,
    /// `server.checkpoint_journal_bytes`: the journal size that calls for a
    /// checkpoint.
    checkpoint_journal_bytes: u64,
    /// The segment count when the last checkpoint failed (0 when none did):
    /// the next attempt waits until the journal takes another segment, so a
    /// failing disk is not retried on every pass.
    checkpoint_failed_segments: u32,
    /// Size of the last checkpoint serialized, the next one's first guess.
    checkpoint_bytes_last: usize,
    /// The Postgres persister reading this journal, when `[persist]` is
    /// set: it is told what is durable, and the journal is released below a
    /// checkpoint only as far as it has persisted (see [`Router::release`]).
    persist: Option<Arc<PersistFeed>>,
    /// Seq of the newest checkpoint, written or loaded at start (0: none).
    checkpointed_seq: u64,
    /// Seq of the checkpoint written before it (0: none): two are kept, and
    /// the journal is released only below this older one (and only as far
    /// as the persister has gone), so that a newest checkpoint that turns
    /// out unreadable at the next start leaves the older one and the
    /// journal above it. Below the newest only when the journal is near
    /// `journal_bytes_max` (`Router::release`).
    older_checkpoint_seq: u64,
    /// Logged that the journal, near full, was released below the newest
    /// checkpoint; cleared when it is released below the older again.
    single_checkpoint_logged: bool,
    /// Skips of the decision round being issued, journaled after its copies
    /// when a persister reads the journal; reused.
    skips: Vec<SkipEntry>,
    /// Encoding buffer of `skips`; reused.
    skips_bytes: Vec<u8>,
    /// The segment count when a release last waited for the persister: the
    /// next checkpoint waits for another segment, so an outage of Postgres
    /// does not make the router take a checkpoint on every pass.
    release_held_segments: u32,
    /// True once the persister's lag made the router release records it
    /// had not read (logged once per episode).
    persist_overrun_logged: bool,
    /// The persisted seq last looked at, to act only when it moves.
    persisted_seen: u64,
    /// The configuration the engine runs under: the journal's last one
    /// (the file's at the first start), with the file's `[server]`.
    config: Config,
    /// Its accounts and follows as journaled, for checkpoints.
    config_document: ConfigDocument,
    /// Its generation in the journal; 0 until the journal holds one.
    config_generation: u64,
    /// Configuration changes and views asked of the running router
    /// (SIGHUP, the admin API).
    config_inbox: Arc<RouterInbox>,
    /// The latest skips for the admin API, oldest first, at most
    /// `[admin] recent_skips_max` (none without `[admin]`).
    recent_skips: VecDeque<RecentSkip>,
    recent_skips_max: usize,
    /// Wall clock (ms since the epoch) at `started`, for the skips' times.
    started_wall_ms: u64,
}

/// Which accounts and follows a router starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartConfig {
    /// The configuration given (journaled when it differs from the
    /// journal's last).
    Given,
    /// The journal's last configuration; the given one when the journal
    /// holds none yet.
    Journal,
}

/// One skip as the admin API lists it.
#[derive(Clone, Copy, Debug)]
struct RecentSkip {
    /// Wall clock, ms since the epoch.
    at_ms: u64,
    slave: u64,
    master: u64,
    pos: u64,
    reason: tradebridge_core::engine::SkipReason,
}

impl Router {
    /// Builds the router and recovers each master's highest stored `seq`
    /// from the journal; publishes it as the masters' durable `ack_seq`.
    pub fn new(
        journal: Journal,
        links: RouterLinks,
        accounts: Arc<AccountTable>,
        config: &Config,
        started: Instant,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Router> {
        Router::new_with(journal, links, accounts, config, started, metrics, StartConfig::Given)
    }

    /// [`Router::new`], starting with the accounts and follows `start` says:
    /// `config`'s, or the journal's last (when the configuration source
    /// cannot be read at start: Postgres away), which the account table
    /// then takes.
    pub fn new_with(
        journal: Journal,
        links: RouterLinks,
        accounts: Arc<AccountTable>,
        config: &Config,
        started: Instant,
        metrics: Arc<Metrics>,
        start: StartConfig,
    ) -> anyhow::Result<Router> {
        let mut journal = journal;
        // The journal's flush thread (group sync) rings the router's bell
        // when a group is durable, so a sleeping router sends its acks and
        // copies at once.
        let flushed_bell = Arc::clone(&links.bell);
        journal.set_flush_notify(Arc::new(move || flushed_bell.ring()));
        let written_bell = Arc::clone(&links.bell);
        let checkpoint_writer = CheckpointWriter::start(journal.directory().to_path_buf(), move || written_bell.ring())?;
        let links_shards = links.to_shards.len();
        let config_inbox = Arc::new(RouterInbox::new(Arc::clone(&links.bell)));
        let recent_skips_max = config.admin.as_ref().map_or(0, |admin| admin.recent_skips_max as usize);
        let started_wall_ms = crate::clock::unix_ms().saturating_sub(started.elapsed().as_millis() as u64);
        let mut router = Router {
            journal,
            links,
            masters: HashMap::new(),
            pending: VecDeque::new(),
            outgoing: vec![VecDeque::new(); links_shards],
            outgoing_warned: vec![false; links_shards],
            accounts,
            encoder: RecordEncoder::new(config.server.record_bytes_max()),
            idle: config.server.idle,
            flush_idle_groups_here: config.server.journal_flush == JournalFlush::Auto,
            started,
            metrics,
            engine: Engine::new(config),
            copy_seqs: HashMap::new(),
            rebased: std::collections::HashSet::new(),
            instructions: HashMap::new(),
            decisions: Vec::new(),
            ring_full_count: 0,
            segments_seen: 0,
            checkpoint_writer,
            checkpoint: CheckpointStep::Idle,
            checkpoint_journal_bytes: config.server.checkpoint_journal_bytes,
            checkpoint_failed_segments: 0,
            checkpoint_bytes_last: 0,
            persist: None,
            checkpointed_seq: 0,
            older_checkpoint_seq: 0,
            single_checkpoint_logged: false,
            skips: Vec::new(),
            skips_bytes: Vec::new(),
            release_held_segments: 0,
            persist_overrun_logged: false,
            persisted_seen: 0,
            config: config.clone(),
            config_document: config.document("start"),
            config_generation: 0,
            config_inbox,
            recent_skips: VecDeque::with_capacity(recent_skips_max),
            recent_skips_max,
            started_wall_ms,
        };
        router.recover()?;
        if start == StartConfig::Journal && router.config_generation == 0 {
            tracing::warn!("the journal holds no configuration yet: starting on the one given (the file's accounts and follows)");
        } else if start == StartConfig::Journal {
            let table = router.accounts.apply(&router.config, router.now_ms());
            tracing::warn!(generation = router.config_generation, accounts_added = table.added, "started on the journal's last configuration; the source's applies once it can be read");
            return Ok(router);
        }
        // The file may differ from what the journal ran under last (edited
        // while the bridge was down), and a journal that never held a
        // configuration gets its first: from here on a replay needs no file.
        match router.change_config(config.clone(), "start", false)? {
            ReloadOutcome::Applied { generation, accounts_removed, accounts_changed, follows_removed, follows_changed, exits, .. } => {
                tracing::info!(generation, accounts_removed, accounts_changed, follows_removed, follows_changed, exits, "configuration journaled at start");
            }
            ReloadOutcome::Unchanged { generation, .. } => tracing::info!(generation, "configuration as the journal last ran it"),
            other => anyhow::bail!("the configuration at start was not applied: {other:?}"),
        }
        Ok(router)
    }

    /// Attaches the Postgres persister (before `run`): from now on skips are
    /// journaled for it, it is told what is durable, and the journal keeps
    /// what it has not persisted (up to the journal's bound).
    pub fn attach_persister(&mut self, feed: Arc<PersistFeed>) -> anyhow::Result<()> {
        feed.publish_durable(self.journal.durable_seq());
        self.persist = Some(feed);
        // The skips of the last input before a stop, if their record is missing.
        self.journal_skips().context("the skips of the last input before the stop")?;
        // Sessions of an earlier process ended when it stopped, unrecorded.
        let now_ms = self.now_ms();
        let wall_ms = crate::clock::unix_ms();
        let start = SessionEntry {
            event: SessionEvent::BridgeStart,
            role: protocol::Role::Master,
            login: 0,
            time_ms: wall_ms,
            close_code: 0,
            session_id: String::new(),
            remote_address: String::new(),
            close_reason: String::new(),
        };
        let mut bytes = Vec::new();
        encode_session(&start, &mut bytes);
        self.journal.append(JOURNAL_KIND_SESSION, &bytes, now_ms).context("journal append of the bridge start")?;
        self.journal.flush().context("journal flush of the bridge start")?;
        Ok(())
    }

    /// Releases journal segments below the older of the two checkpoints
    /// kept (below the newest when the journal is within two segments of
    /// `journal_bytes_max`), or, with a
    /// persister, below what it has persisted if that is lower, unless the
    /// journal is within two segments of `journal_bytes_max`: then routing
    /// goes on, the release is counted and logged, and the persister will
    /// find (and record) the gap. `at_checkpoint`: called for a checkpoint
    /// just written (a hold then waits for the next segment before the next
    /// checkpoint), not for the persister catching up.
    fn release(&mut self, at_checkpoint: bool) -> anyhow::Result<u32> {
        let options = self.journal.options();
        let near_full = self.journal.retained_bytes() + 2 * options.segment_bytes >= options.retained_bytes_max;
        // Below the older of the two checkpoints kept; below the newest when
        // the journal has no room for two checkpoints' worth, or is near
        // full (the older one is then no longer usable).
        let two = self.keeps_two_checkpoints();
        let checkpoint_seq = if near_full || !two { self.checkpointed_seq } else { self.older_checkpoint_seq };
        if checkpoint_seq == 0 {
            return Ok(0);
        }
        if two && near_full && self.older_checkpoint_seq != 0 && !self.single_checkpoint_logged {
            tracing::warn!(
                newest_seq = self.checkpointed_seq,
                older_seq = self.older_checkpoint_seq,
                journal_bytes = self.journal.retained_bytes(),
                "the journal is near journal_bytes_max: released below the newest checkpoint, so only it can be loaded at the next start (raise journal_bytes_max to about twice checkpoint_journal_bytes to keep two)"
            );
            self.single_checkpoint_logged = true;
        } else if !near_full {
            self.single_checkpoint_logged = false;
        }
        let mut below = checkpoint_seq + 1;
        let persisted_below = self.persist.as_ref().map(|feed| feed.persisted() + 1);
        if let Some(persisted_below) = persisted_below {
            if persisted_below >= below {
                self.release_held_segments = 0;
                self.persist_overrun_logged = false;
            } else {
                if !near_full {
                    below = persisted_below;
                    if at_checkpoint {
                        self.release_held_segments = self.journal.segments_count();
                    }
                } else {
                    self.release_held_segments = 0;
                }
            }
        }
        if below <= self.journal.first_seq() {
            return Ok(0);
        }
        let released = self.journal.truncate_before(below).context("releasing journal segments")?;
        // Counted by what was deleted: records the persister had not read.
        if let (Some(feed), Some(persisted_below)) = (&self.persist, persisted_below) {
            if released > 0 && self.journal.first_seq() > persisted_below {
                feed.overruns.fetch_add(1, Ordering::Relaxed);
                if !self.persist_overrun_logged {
                    tracing::error!(
                        persisted_seq = persisted_below - 1,
                        released_below = self.journal.first_seq(),
                        journal_bytes = self.journal.retained_bytes(),
                        "the journal is near journal_bytes_max while the persister is behind: released records it has not written to Postgres (it records the gap in persist_gaps); routing goes on"
                    );
                    self.persist_overrun_logged = true;
                }
            }
        }
        Ok(released)
    }

    /// Rebuilds per-master progress, the engine's book of master positions
    /// (by replaying the journaled events; the decisions are dropped, their
    /// copies are journaled already), each slave's last copy `seq` and its
    /// copies for replay; publishes each master's durable `ack_seq`.
    fn recover(&mut self) -> anyhow::Result<()> {
        let mut replay = Replay::default();
        let replay_from = self.restore_checkpoint()?;
        let last_seq = self.journal.last_seq();
        let quarantine = RecordQuarantine::open(self.journal.directory())?;
        tracing::info!(replay_from, last_seq, quarantined = quarantine.len(), "replaying the journal");
        let mut failed: Vec<(OwnedEntry, String)> = Vec::new();
        for journal_seq in replay_from..=last_seq {
            let Some(entry) = self.journal.read(journal_seq) else {
                continue;
            };
            // The payload is copied out so the engine and the tables can be
            // updated while the journal is borrowed no longer.
            let entry = OwnedEntry { seq: entry.seq, kind: entry.kind, payload: aligned_copy(entry.payload) };
            if quarantine.holds(entry.seq) {
                tracing::error!(seq = entry.seq, kind = entry.kind, "journal record quarantined at an earlier start; not replayed");
                continue;
            }
            // One record that makes the engine panic, or does not decode,
            // must not stop every start after it (a crash loop): it is
            // quarantined and the replay goes on without it.
            let outcome = crate::panic_guard::catch(|| self.replay_record(&entry, &mut replay));
            let failure = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => format!("{error:#}"),
                Err(panic) => format!("panicked: {panic}"),
            };
            replay.decisions.clear();
            tracing::error!(seq = entry.seq, kind = entry.kind, failure = %failure, "journal record not replayed");
            // Many failures are no longer one bad record but a fault of
            // this binary or of the state (a journal format it does not
            // read, a bug that breaks every event after one): the start is
            // refused at once, and nothing is set aside, so a fixed binary
            // replays them all.
            let quarantine_max = self.config.server.journal_records_quarantined_max as usize;
            if failed.len() + 1 > quarantine_max {
                anyhow::bail!(
                    "{} journal records could not be replayed, above journal_records_quarantined_max = {quarantine_max} (the last: seq {} kind {}: {failure}); that is not one bad record but a fault of this binary or of its state: refusing to start, nothing set aside",
                    failed.len() + 1,
                    entry.seq,
                    entry.kind
                );
            }
            failed.push((entry, failure));
        }
        for (entry, failure) in &failed {
            let path = quarantine.add(entry, failure)?;
            Metrics::count(&self.metrics.journal_records_quarantined);
            tracing::error!(seq = entry.seq, kind = entry.kind, failure = %failure, path = %path.display(), "journal record quarantined: the replay went on without it (its payload is kept in the file)");
        }
        let Replay { copies_due, skips_due, .. } = replay;
        if !copies_due.is_empty() {
            // The input is durable (its master may hold its ack) but the
            // bridge stopped before its copies were: issue them now, as the
            // engine, which replayed the input, counts them issued.
            tracing::warn!(copies = copies_due.len(), last_seq, "the journal ends before the copies of its last input; issuing them now");
            let mut due: Vec<Decision> = copies_due.into();
            self.issue_copies(&mut due, 0)?;
        }
        // A stop between the last input's copies and its skips record: the
        // skips are journaled when the persister attaches.
        self.skips = skips_due;
        for (login, progress) in &self.masters {
            if let Some(account) = self.accounts.get(*login) {
                account.durable_event_seq.store(progress.event_seq, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Replays one journal record into the engine and the tables.
    fn replay_record(&mut self, entry: &OwnedEntry, replay: &mut Replay) -> anyhow::Result<()> {
        if entry.kind == JOURNAL_KIND_MASTER_EVENT {
            let record = access_checked::<MasterEventRecord>(&entry.payload)
                .with_context(|| format!("journal record {} is not a valid master event", entry.seq))?;
            let login = record.master_login.to_native();
            let progress = self.masters.entry(login).or_default();
            progress.event_seq = progress.event_seq.max(record.seq.to_native());
            progress.journal_seq = entry.seq;
            let event = record.to_event().with_context(|| format!("journal record {}", entry.seq))?;
            injected_engine_fault(event.seq);
            self.engine.on_master_event(login, &event, record.received_ms.to_native(), &mut replay.decisions);
            replay.expect_copies(entry.seq);
        } else if entry.kind == JOURNAL_KIND_COPY {
            let record = access_checked::<CopyRecord>(&entry.payload)
                .with_context(|| format!("journal record {} is not a valid copy", entry.seq))?;
            let slave = record.slave_login.to_native();
            let copy = record.to_copy().with_context(|| format!("journal record {}", entry.seq))?;
            if replay.copies_due.front().is_some_and(|due| due.slave == slave) {
                replay.copies_due.pop_front();
            }
            self.copy_seqs.insert(slave, copy.seq);
            self.remember_instruction(slave, copy.seq, instruction_of(&copy));
            if let Some(account) = self.accounts.get(slave) {
                account.delivery().retain(copy);
            }
        } else if entry.kind == JOURNAL_KIND_UPDATE {
            let update = Update::decode(&entry.payload).with_context(|| format!("journal record {}", entry.seq))?;
            self.apply_update(&update, &mut replay.decisions);
            replay.expect_copies(entry.seq);
        } else if entry.kind == JOURNAL_KIND_SLAVE_SEQ {
            let rebase = SeqRebase::decode(&entry.payload).with_context(|| format!("journal record {}", entry.seq))?;
            self.apply_rebase(&rebase, &mut replay.decisions);
            replay.expect_copies(entry.seq);
        } else if entry.kind == JOURNAL_KIND_SKIPS {
            replay.skips_due.clear();
        } else if entry.kind == JOURNAL_KIND_CONFIG {
            let part = decode_config_part(&entry.payload).with_context(|| format!("journal record {}", entry.seq))?;
            match replay.assembler.push(&part) {
                Ok(None) => {}
                Ok(Some((generation, _applied_ms, bytes))) => {
                    let document: ConfigDocument = serde_json::from_slice(&bytes)
                        .with_context(|| format!("journal record {}: configuration {generation} does not read", entry.seq))?;
                    let report = self.apply_document(generation, document, &mut replay.decisions);
                    tracing::info!(seq = entry.seq, generation, ?report, "configuration replayed");
                    replay.expect_copies(entry.seq);
                }
                // A stop while its parts were written: the change was
                // never applied (that happens after its last part).
                Err(error) => tracing::warn!(seq = entry.seq, %error, "an unfinished configuration record is skipped"),
            }
        } else if entry.kind == JOURNAL_KIND_RESULT {
            let record = access_checked::<ResultRecord>(&entry.payload)
                .with_context(|| format!("journal record {} is not a valid result", entry.seq))?;
            let result = record.to_result().with_context(|| format!("journal record {}", entry.seq))?;
            // The copies this result caused were journaled after it.
            self.on_result(record.slave_login.to_native(), &result, record.received_ms.to_native(), &mut replay.decisions);
            replay.expect_copies(entry.seq);
        }
        Ok(())
    }

    /// Restores the newest usable checkpoint, if any; returns the first
    /// journal seq to replay. Without one, the journal must still start at
    /// seq 1.
    fn restore_checkpoint(&mut self) -> anyhow::Result<u64> {
        let first_seq = self.journal.first_seq();
        let last_seq = self.journal.last_seq();
        let directory = self.journal.directory().to_path_buf();
        match crate::checkpoint::load(&directory, first_seq, last_seq)? {
            Some((seq, state)) => {
                self.restore(seq, state);
                Ok(seq + 1)
            }
            None if first_seq > 1 => Err(crate::checkpoint::missing_error(&directory, first_seq)),
            None => Ok(first_seq),
        }
    }

    /// Moves a checkpoint's state into the fresh engine and tables; what
    /// belongs to logins the config no longer has is dropped (logged).
    fn restore(&mut self, seq: u64, state: RouterState) {
        self.checkpointed_seq = seq;
        if let Some((generation, document)) = state.config {
            // The engine ran under this configuration at the checkpoint.
            let effective = self.config.with_document(document.clone());
            self.engine = Engine::new(&effective);
            self.config = effective;
            self.config_document = document;
            self.config_generation = generation;
        }
        let report = self.engine.restore(state.engine);
        if report != Default::default() {
            tracing::warn!(seq, ?report, "checkpoint restored with accounts or follows changed since");
        }
        let mut dropped: Vec<u64> = Vec::new();
        for (login, event_seq, journal_seq) in state.masters {
            match self.accounts.get(login) {
                Some(_) => drop(self.masters.insert(login, MasterProgress { event_seq, journal_seq })),
                None => dropped.push(login),
            }
        }
        for (slave, copy_seq) in state.copy_seqs {
            match self.accounts.get(slave) {
                Some(account) => {
                    // Copies finished before the checkpoint are not among
                    // the kept ones restored below, but were kept once.
                    let mut delivery = account.delivery();
                    delivery.kept_seq = delivery.kept_seq.max(copy_seq);
                    drop(delivery);
                    self.copy_seqs.insert(slave, copy_seq);
                }
                None => dropped.push(slave),
            }
        }
        for (slave, sent) in state.instructions {
            if self.accounts.get(slave).is_some() {
                self.instructions.insert(slave, sent);
            }
        }
        for (slave, copies) in state.kept {
            match self.accounts.get(slave) {
                Some(account) => copies.into_iter().for_each(|copy| account.delivery().retain(copy)),
                None => dropped.push(slave),
            }
        }
        dropped.sort_unstable();
        dropped.dedup();
        if !dropped.is_empty() {
            tracing::warn!(seq, logins = ?dropped, "checkpoint accounts no longer configured: their progress, copy seqs and kept copies are dropped");
        }
        tracing::info!(seq, masters = self.masters.len(), slaves = self.copy_seqs.len(), "checkpoint restored");
    }

    /// True when `journal_bytes_max` holds two checkpoints' worth of
    /// journal (`2 x checkpoint_journal_bytes`) and two segments to spare:
    /// then the journal is kept from the older of two checkpoints. Else
    /// from the newest only: keeping more would fill the journal before the
    /// next checkpoint is due.
    fn keeps_two_checkpoints(&self) -> bool {
        let options = self.journal.options();
        2 * self.checkpoint_journal_bytes + 2 * options.segment_bytes <= options.retained_bytes_max
    }

    /// True when the journal is large enough to call for a checkpoint and
    /// has a sealed segment one would release.
    fn checkpoint_due(&self) -> bool {
        let segments = self.journal.segments_count();
        let waited = self.checkpoint_failed_segments.max(self.release_held_segments);
        // Measured from the newest checkpoint: the journal also holds the
        // records between the older one and it.
        segments >= 2 && segments > waited && self.journal.bytes_from(self.checkpointed_seq + 1) >= self.checkpoint_journal_bytes
    }

    /// True while a checkpoint is in progress and the journal is at its
    /// segment bound: the next segment could only be taken after the
    /// release that checkpoint brings, so the rings wait (back pressure)
    /// rather than fill the journal and stop the bridge. Only a journal of
    /// a few segments (`journal_bytes_max` near `checkpoint_journal_bytes`)
    /// ever waits here.
    fn checkpoint_holds_input(&self) -> bool {
        !matches!(self.checkpoint, CheckpointStep::Idle) && self.journal.segments_count() >= self.journal.options().segments_max
    }

    /// Moves the checkpoint on by one step: take it when due, hand it to
    /// the writer once its seq is durable, release the journal below it once
    /// written.
    fn advance_checkpoint(&mut self) -> anyhow::Result<()> {
        match std::mem::replace(&mut self.checkpoint, CheckpointStep::Idle) {
            CheckpointStep::Idle if self.checkpoint_due() => self.take_checkpoint()?,
            CheckpointStep::Idle => {}
            CheckpointStep::Serialized { seq, bytes, serialize_us } if self.journal.durable_seq() >= seq => {
                self.checkpoint_writer.submit(seq, bytes, self.checkpointed_seq)?;
                self.checkpoint = CheckpointStep::Writing { seq, serialize_us };
            }
            waiting @ CheckpointStep::Serialized { .. } => self.checkpoint = waiting,
            CheckpointStep::Writing { seq, serialize_us } => match self.checkpoint_writer.try_report() {
                None => self.checkpoint = CheckpointStep::Writing { seq, serialize_us },
                Some(Written::Done { seq, path, bytes, write_ms }) => {
                    let release_started = Instant::now();
                    self.older_checkpoint_seq = std::mem::replace(&mut self.checkpointed_seq, seq);
                    let released = self.release(true)?;
                    let release_ms = release_started.elapsed().as_secs_f64() * 1_000.0;
                    self.checkpoint_failed_segments = 0;
                    Metrics::count(&self.metrics.checkpoints_written);
                    tracing::info!(
                        seq,
                        path = %path.display(),
                        bytes,
                        serialize_ms = serialize_us as f64 / 1_000.0,
                        write_ms,
                        release_ms,
                        segments_released = released,
                        journal_bytes = self.journal.retained_bytes(),
                        "checkpoint written; journal released below it"
                    );
                }
                Some(Written::Failed { seq, error }) => {
                    self.checkpoint_failed_segments = self.journal.segments_count();
                    tracing::error!(seq, %error, "checkpoint not written; the journal keeps its segments and grows toward journal_bytes_max");
                }
            },
        }
        Ok(())
    }

    /// Serializes the router's state as of the journal's last record (this
    /// blocks routing while it runs).
    fn take_checkpoint(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let seq = self.journal.last_seq();
        let mut masters: Vec<_> = self.masters.iter().map(|(login, progress)| (*login, progress.event_seq, progress.journal_seq)).collect();
        masters.sort_unstable();
        let mut copy_seqs: Vec<(u64, u64)> = self.copy_seqs.iter().map(|(slave, seq)| (*slave, *seq)).collect();
        copy_seqs.sort_unstable();
        let mut instructions: Vec<_> = self.instructions.iter().map(|(slave, sent)| (*slave, sent)).collect();
        instructions.sort_unstable_by_key(|(slave, _)| *slave);
        let kept = self.kept_copies();
        let config = (self.config_generation != 0).then_some((self.config_generation, &self.config_document));
        let state = RouterStateRef { engine: self.engine.state(), masters, copy_seqs, instructions, kept, config };
        // An eighth above the previous size: the state changes little between
        // checkpoints, and one allocation beats growing tens of megabytes.
        let capacity_bytes = self.checkpoint_bytes_last + self.checkpoint_bytes_last / 8;
        let bytes = tradebridge_core::checkpoint::encode(seq, &state, capacity_bytes).with_context(|| format!("checkpoint at journal seq {seq}"))?;
        self.checkpoint_bytes_last = bytes.len();
        let serialize_us = started.elapsed().as_micros() as u64;
        tracing::debug!(seq, bytes = bytes.len(), serialize_us, "checkpoint serialized");
        self.checkpoint = CheckpointStep::Serialized { seq, bytes, serialize_us };
        Ok(())
    }

    /// Every slave's copies a restart must be able to replay: those kept
    /// for delivery (serialized in place), then those journaled but not yet
    /// durable (kept once they are), in `seq` order.
    fn kept_copies(&self) -> KeptCopies<'_> {
        let mut waiting: HashMap<u64, Vec<Copy>> = HashMap::new();
        for pending in &self.pending {
            if let Waiting::Copy(record) = &pending.waiting {
                match (**record).clone().into_copy() {
                    Ok(copy) => waiting.entry(record.slave_login).or_default().push(copy),
                    Err(error) => tracing::error!(%error, "invalid copy record left out of a checkpoint"),
                }
            }
        }
        KeptCopies { accounts: &self.accounts, waiting }
    }

    /// The poll loop; returns `Ok` once `stop` is set (after a last pass
    /// and a journal flush), or an error when the journal fails (the bridge
    /// must then stop acking, so the caller exits).
    pub fn run(mut self, stop: Arc<std::sync::atomic::AtomicBool>) -> anyhow::Result<()> {
        let mut idler = Idler::new(match self.idle {
            config::IdleStrategy::Spin => RingIdle::Spin,
            config::IdleStrategy::Yield => RingIdle::Yield,
            config::IdleStrategy::Park { .. } => {
                RingIdle::Backoff { spin_steps_max: PARK_SPIN_STEPS_MAX, yield_steps_max: PARK_YIELD_STEPS_MAX }
            }
        });
        let park_us_max = match self.idle {
            config::IdleStrategy::Park { backoff_us_max } => backoff_us_max.max(1),
            _ => 1,
        };
        self.links.bell.attach_thread();
        loop {
            if stop.load(Ordering::Acquire) {
                self.poll_once()?;
                return self.finish();
            }
            let mut worked = self.poll_once()?;
            // The routing core's own thread has no io_uring: a group handed
            // to the owner is synced here. `open_journal` never gives this
            // loop an owner-flushed journal (`uring` means `thread` with the
            // routing core on a thread), but a journal opened for the inline
            // loop and run here, as net/tests/router_rings.rs does, is.
            if let Some(request) = self.journal.take_flush_request() {
                self.journal.complete_flush(request.sync_here()).context("journal flush of a group")?;
                worked = true;
            }
            if worked {
                idler.reset();
                continue;
            }
            match idler.idle() {
                IdleAction::Spin => std::hint::spin_loop(),
                IdleAction::Yield => std::thread::yield_now(),
                IdleAction::Park => {
                    // The shards ring the bell after each push, and the
                    // journal's flush thread after each flush, so the park
                    // ends as soon as work arrives or a group is durable;
                    // the timeout bounds a missed wake, the wait for the
                    // stop flag, and how late a group nothing waits for
                    // (results, session records, skips) may be flushed
                    // after `journal_group_ms`: a pass that finds the rings
                    // empty closes only a group an ack or a copy waits for.
                    let bell = Arc::clone(&self.links.bell);
                    bell.prepare_sleep();
                    if !self.has_input() {
                        std::thread::park_timeout(Duration::from_micros(park_us_max));
                    }
                    bell.awake();
                }
            }
        }
    }

    /// The poll loop as a task on a shard's executor (`routing = "inline"`):
    /// each pass is followed by `deliver`, which hands what the pass put in
    /// that shard's ring to its connections on the same thread (true when
    /// it moved anything). After a pass that did work the task yields, so
    /// the sessions write the copies before the next pass; with nothing to
    /// do it sleeps on its doorbell, which the sessions ring after each
    /// push (a wake on the same thread only schedules the task), for at most
    /// `idle_park_backoff_us_max` (the stop flag, a checkpoint written, the
    /// persister's progress are looked at then). Returns when `stop` is
    /// set, with the journal flushed.
    pub async fn run_inline(mut self, stop: Arc<std::sync::atomic::AtomicBool>, mut deliver: impl FnMut() -> bool) -> anyhow::Result<()> {
        // Never a glommio timer under 1 ms (net/README.md, runtime).
        let park_us_max = match self.idle {
            config::IdleStrategy::Park { backoff_us_max } => backoff_us_max.max(IDLE_TASK_WAIT_US_MIN),
            _ => IDLE_TASK_WAIT_US_MIN,
        };
        let bell = Arc::clone(&self.links.bell);
        // The outcome of the io_uring flush in flight (`journal_flush =
        // "uring"`), set by its task on this executor.
        let flushed: Rc<RefCell<Option<Result<u64, JournalError>>>> = Rc::default();
        let uring_files: UringFiles = Rc::default();
        loop {
            let outcome = flushed.borrow_mut().take();
            if let Some(outcome) = outcome {
                self.journal.complete_flush(outcome).context("journal flush of a group (io_uring)")?;
            }
            if stop.load(Ordering::Acquire) {
                self.poll_once()?;
                deliver();
                return self.finish();
            }
            let worked = self.poll_once()?;
            if let Some(request) = self.journal.take_flush_request() {
                spawn_uring_flush(request, Rc::clone(&uring_files), Rc::clone(&flushed), Arc::clone(&bell));
            }
            let delivered = deliver();
            if worked || delivered {
                // The sessions write what this pass delivered; the next pass
                // then finds the rings empty (new input needs the executor to
                // poll the sockets, which it does once no task is runnable),
                // and the task sleeps below. A short timer here instead made
                // glommio 0.9's executor sleep through its timers and sockets
                // for seconds now and then (net/README.md, runtime).
                futures_lite::future::yield_now().await;
                continue;
            }
            bell.prepare_sleep();
            if !self.has_input() && flushed.borrow().is_none() {
                futures_lite::future::or(bell.rung(), glommio::timer::sleep(Duration::from_micros(park_us_max))).await;
            } else {
                // Every turn of this loop gives the executor a turn: it polls
                // the sockets and reaps io_uring completions (the flush in
                // flight) only between tasks, so a turn without an await
                // would wait forever for what only the executor can bring.
                futures_lite::future::yield_now().await;
            }
            bell.awake();
        }
    }

    /// The end of either loop after its last pass: the journal flushed, the
    /// persister told.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.journal.flush().context("journal flush at shutdown")?;
        if let Some(feed) = &self.persist {
            feed.publish_durable(self.journal.durable_seq());
        }
        tracing::info!(durable_seq = self.journal.durable_seq(), "router stopped; journal flushed");
        Ok(())
    }

    /// One pass: events from every shard, a journal tick, durable acks out.
    /// True when anything was done.
    fn poll_once(&mut self) -> anyhow::Result<bool> {
        let mut input = false;
        // Reading only adds to `pending`; the outgoing queues change after.
        for shard in 0..self.links.from_shards.len() {
            if self.input_held() {
                break;
            }
            input |= self.read_shard(shard as u32)?;
        }
        if self.config_inbox.has_request() {
            if let Some(request) = self.config_inbox.take() {
                let answer = match request.ask {
                    RouterAsk::Reload { config, source } => RouterAnswer::Reload(self.change_config(*config, &source, true)?),
                    RouterAsk::View(query) => RouterAnswer::View(self.view(&query)),
                };
                // The requester may have stopped waiting; a reload's outcome is logged there.
                let _ = request.reply.try_send(answer);
                input = true;
            }
        }
        let now_ms = self.now_ms();
        self.journal.tick(now_ms).context("journal tick")?;
        let durable_seq = self.journal.durable_seq();
        if !input && self.journal.has_open_group() && self.pending.iter().rev().any(|pending| pending.journal_seq > durable_seq) {
            // Group commit closes a group when its batch is complete: every
            // ring was empty in this pass, so no later record can join the
            // group, and waiting out `journal_group_ms` would only add latency
            // to acks and copies. Under sustained load the rings are rarely
            // empty, groups grow while a flush runs, and `records_max` and
            // `interval_ms` still bound them. Flushing early only adds
            // durability. Only a group that an ack or a copy waits for is
            // closed early: results, session records and skips wait for the
            // next such group or `journal_group_ms` (nothing is sent when
            // they are durable), which saved about 60 % of the flushes under
            // fanout load, each a disk write and a wake. With a flush thread
            // or io_uring this only hands the group over (or leaves it for
            // the tick after the flush in flight); the router goes on
            // routing meanwhile. Under `auto` the router syncs such a group
            // itself: it has nothing else to do (its rings are empty), and a
            // sync here answered sooner and cost less CPU than a hand-over
            // and a wake at 1,000 events/s (net/README.md, "Durable
            // writes").
            if self.flush_idle_groups_here {
                self.journal.flush().context("journal flush of a complete group")?;
            } else {
                self.journal.close_group().context("journal flush of a complete group")?;
            }
        }
        let persisted = self.persist.as_ref().map(|feed| {
            feed.publish_durable(self.journal.durable_seq());
            feed.persisted()
        });
        // The persister moved on while the journal was held for it: release
        // what the last checkpoint allows.
        if let Some(persisted) = persisted {
            if persisted != self.persisted_seen {
                self.persisted_seen = persisted;
                if self.release_held_segments != 0 && self.checkpointed_seq != 0 {
                    self.release(false)?;
                }
            }
        }
        self.metrics.journal_flushes.store(self.journal.stats().flushes_count, Ordering::Relaxed);
        let sent = self.send_durable_acks();
        self.advance_checkpoint()?;
        if self.journal.segments_count() != self.segments_seen {
            self.on_journal_grown();
        }
        Ok(input || sent)
    }

    /// Publishes the journal's size after it took or released a segment,
    /// and warns once the journal passes both [`JOURNAL_WARN_PERCENT`] of
    /// its bound and what checkpoints keep it to (they are then not keeping
    /// up; full, the bridge stops).
    fn on_journal_grown(&mut self) {
        self.segments_seen = self.journal.segments_count();
        let bytes = self.journal.retained_bytes();
        let bytes_max = self.journal.options().retained_bytes_max;
        self.metrics.journal_bytes.store(bytes, Ordering::Relaxed);
        self.metrics.journal_bytes_max.store(bytes_max, Ordering::Relaxed);
        // Up to a checkpoint's threshold plus the segment taken while it is
        // written, the journal is as checkpoints keep it; beyond, they are
        // not keeping up.
        let checkpointed_bytes_max = self.checkpoint_journal_bytes.saturating_add(self.journal.options().segment_bytes);
        if bytes > checkpointed_bytes_max && bytes.saturating_mul(100) >= bytes_max.saturating_mul(JOURNAL_WARN_PERCENT) {
            tracing::warn!(
                journal_bytes = bytes,
                journal_bytes_max = bytes_max,
                "the journal is past {JOURNAL_WARN_PERCENT} % of journal_bytes_max (checkpoints are not releasing it); when full the bridge stops acking and exits"
            );
        }
    }

    /// True while the shard rings are not read: a checkpoint holds them
    /// (`checkpoint_holds_input`), or acks and copies waiting for the
    /// journal or for room in a ring to a shard reach `PENDING_ACKS_MAX`.
    fn input_held(&self) -> bool {
        let outgoing_waiting: usize = self.outgoing.iter().map(VecDeque::len).sum();
        self.pending.len() + outgoing_waiting >= PENDING_ACKS_MAX || self.checkpoint_holds_input()
    }

    /// True when the next pass has something to do: a shard ring holds a
    /// record, a configuration request, or the flush thread's outcome. The
    /// check a sleeper makes after raising its doorbell. A ring a
    /// checkpoint holds is not input: the hold ends with a flush's outcome
    /// or the checkpoint written, and both ring the bell. A ring held by
    /// `PENDING_ACKS_MAX` is: room in a ring to a shard rings nothing, so
    /// the router keeps passing (each pass pushes what fits) rather than
    /// sleep out its park timeout under back pressure.
    fn has_input(&self) -> bool {
        self.config_inbox.has_request()
            || self.journal.has_flush_outcome()
            || (!self.checkpoint_holds_input() && self.links.from_shards.iter().any(|consumer| matches!(consumer.peek(), Ok(Some(_)))))
    }

    /// Answers a read view of the admin API between two passes: the data
    /// copied out (bounded by the follower's positions or
    /// `recent_skips_max`), made into JSON by the API's thread.
    fn view(&self, query: &ViewQuery) -> ViewAnswer {
        match *query {
            ViewQuery::Follower { slave } => ViewAnswer::Follower {
                slave,
                known: self.config.account(slave).is_some_and(|account| account.role == tradebridge_core::protocol::Role::Slave),
                positions: self.engine.follower_positions(slave),
            },
            ViewQuery::Skips { limit, login } => {
                let mut skips: Vec<SkipView> = self
                    .recent_skips
                    .iter()
                    .rev()
                    .filter(|skip| login.is_none_or(|login| skip.slave == login || skip.master == login))
                    .take(limit)
                    .map(|skip| SkipView { at_ms: skip.at_ms, slave: skip.slave, master: skip.master, pos: skip.pos, reason: skip.reason.as_str() })
                    .collect();
                skips.reverse();
                ViewAnswer::Skips { kept_max: self.recent_skips_max, skips }
            }
        }
    }

    /// Where configuration changes and views for this router are handed in.
    pub fn config_inbox(&self) -> Arc<RouterInbox> {
        Arc::clone(&self.config_inbox)
    }

    /// The generation of the configuration the engine runs under (0 before
    /// the journal held one).
    pub fn config_generation(&self) -> u64 {
        self.config_generation
    }

    /// Makes `next`'s accounts and follows the ones the engine runs under,
    /// from this point of the journal on: journaled first (as the parts of
    /// one document), then applied; the exits of ended follows with
    /// `on_remove = "close"` are issued as copies after it. The account
    /// table follows: new accounts may log in, and the live sessions of
    /// accounts removed, disabled or given another role are closed (4005).
    /// `live`: asked of a running bridge (`[server]` and `[persist]`
    /// changes are reported as needing a restart).
    fn change_config(&mut self, next: Config, source: &str, live: bool) -> anyhow::Result<ReloadOutcome> {
        let diff = self.config.diff(&next);
        let restart_needed: Vec<String> = if live { self.config.restart_keys(&next).into_iter().map(String::from).collect() } else { Vec::new() };
        if diff.is_empty() && self.config_generation != 0 {
            return Ok(ReloadOutcome::Unchanged { generation: self.config_generation, restart_needed });
        }
        let (accounts_removed, accounts_changed, follows_removed, follows_changed) = diff.counts();
        let document = next.document(source);
        let generation = self.journal_config(&document)?;
        let mut report = ReconfigureReport::default();
        self.decide_and_issue(0, |router, decisions| report = router.apply_document(generation, document, decisions))?;
        let table = self.accounts.apply(&self.config, self.now_ms());
        for entry in table.removed.iter().chain(&table.disabled) {
            entry.close_live(protocol::close_code::ACCOUNT_REVOKED);
        }
        tracing::info!(
            generation,
            source,
            accounts_removed,
            accounts_changed,
            follows_removed,
            follows_changed,
            follows_ended = ?report.follows_ended,
            follows_begun = ?report.follows_begun,
            exits = report.exits,
            accounts_added = table.added,
            accounts_closed = table.removed.len() + table.disabled.len(),
            credentials_changed = table.credentials_changed,
            "configuration applied"
        );
        Ok(ReloadOutcome::Applied { generation, accounts_removed, accounts_changed, follows_removed, follows_changed, exits: report.exits, restart_needed })
    }

    /// Appends `document` as the next generation's configuration records;
    /// returns that generation.
    fn journal_config(&mut self, document: &ConfigDocument) -> anyhow::Result<u64> {
        let bytes = serde_json::to_vec(document).context("serializing the configuration")?;
        let generation = self.config_generation + 1;
        let wall_ms = crate::clock::unix_ms();
        let payload_bytes_max = self.journal.options().payload_bytes_max() as usize;
        let now_ms = self.now_ms();
        for payload in encode_config_parts(generation, wall_ms, &bytes, payload_bytes_max) {
            self.journal.append(JOURNAL_KIND_CONFIG, &payload, now_ms).with_context(|| format!("journal append of configuration {generation}"))?;
        }
        Ok(generation)
    }

    /// Runs the engine under `document`'s accounts and follows from now on.
    fn apply_document(&mut self, generation: u64, document: ConfigDocument, decisions: &mut Vec<Decision>) -> ReconfigureReport {
        let effective = self.config.with_document(document.clone());
        let report = self.engine.reconfigure(&effective, decisions);
        self.config = effective;
        self.config_document = document;
        self.config_generation = generation;
        report
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Reads a batch of records from one shard's ring: master events and
    /// slave results, each handled in place in the ring (no copy, no
    /// allocation per batch).
    fn read_shard(&mut self, shard: u32) -> anyhow::Result<bool> {
        // The consumers are taken out for the batch so the callback can use
        // the rest of the router mutably.
        let mut consumers = std::mem::take(&mut self.links.from_shards);
        let mut failure: Option<anyhow::Error> = None;
        let read = consumers[shard as usize].read_batch(RING_BATCH_RECORDS_MAX, |record| {
            if failure.is_some() {
                return;
            }
            if let Err(error) = self.on_ring_record(shard, record.kind, record.payload) {
                failure = Some(error);
            }
        });
        self.links.from_shards = consumers;
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(read? > 0)
    }

    /// One record from a shard: a master event, a slave result, or a
    /// snapshot, state or symbols frame, in the order its connection sent
    /// them (so an older snapshot is never reconciled after a newer event,
    /// which would close the event's position, nor a newer one before
    /// re-sent older events). A record that does not decode is logged and
    /// dropped (a shard bug, not the peer's); a journal failure is returned.
    fn on_ring_record(&mut self, shard: u32, kind: u32, payload: &[u8]) -> anyhow::Result<()> {
        if kind == u32::from(JOURNAL_KIND_SESSION) {
            // Only for the persister; a session record is not an input of
            // the engine, and nothing waits for it to be durable.
            if self.persist.is_some() {
                let now_ms = self.now_ms();
                self.journal.append(JOURNAL_KIND_SESSION, payload, now_ms).context("journal append of a session record")?;
            }
            return Ok(());
        }
        if kind == u32::from(JOURNAL_KIND_UPDATE) {
            return match Update::decode(payload) {
                Ok(update) if !self.is_live(update.login, update.connection_id) => {
                    // A snapshot or state from a connection superseded (or
                    // closed) since: its successor sends its own after
                    // `welcome`, and this older one, reconciled after the
                    // successor's re-sent events, could close their positions.
                    tracing::debug!(login = update.login, connection_id = update.connection_id, "update from a connection no longer live dropped");
                    Ok(())
                }
                Ok(update) => self.journal_update(&update, payload),
                Err(error) => {
                    tracing::error!(shard, %error, "invalid update record on a ring");
                    Ok(())
                }
            };
        }
        if kind == u32::from(JOURNAL_KIND_SLAVE_SEQ) {
            return match SlaveHello::decode(payload) {
                Ok(hello) => self.on_slave_hello(hello),
                Err(error) => {
                    tracing::error!(shard, %error, "invalid slave hello record on a ring");
                    Ok(())
                }
            };
        }
        if kind == RecordKind::Result.code() {
            match access_checked::<ResultRecord>(payload).map(|record| (record.meta(), record.to_result())) {
                Ok((meta, Ok(result))) => self.journal_result(meta.slave_login, &result, meta.received_ms, payload)?,
                Ok((_, Err(error))) | Err(error) => tracing::error!(shard, %error, "invalid result record on a ring"),
            }
            return Ok(());
        }
        if kind != RecordKind::MasterEvent.code() {
            tracing::error!(shard, kind, "unexpected record kind on a shard -> router ring");
            return Ok(());
        }
        match access_checked::<MasterEventRecord>(payload) {
            Ok(event) => {
                let (login, connection_id, seq) = (event.master_login.to_native(), event.connection_id.to_native(), event.seq.to_native());
                self.on_master_event(shard, login, connection_id, seq, payload)
            }
            Err(error) => {
                tracing::error!(shard, %error, "invalid master event record on a ring");
                Ok(())
            }
        }
    }

    /// True while `connection_id` is the live session of `login`.
    fn is_live(&self, login: u64, connection_id: u64) -> bool {
        self.accounts.get(login).is_some_and(|account| account.live_connection_id() == connection_id)
    }

    /// Journals a snapshot, state or symbols frame (its ring record as is),
    /// feeds it to the engine and issues the copies it causes.
    fn journal_update(&mut self, update: &Update, payload: &[u8]) -> anyhow::Result<()> {
        let now_ms = self.now_ms();
        self.journal.append(JOURNAL_KIND_UPDATE, payload, now_ms).context("journal append of an update")?;
        self.decide_and_issue(0, |router, decisions| router.apply_update(update, decisions))
    }

    /// A slave said hello with `last_seq`: when its terminal has finished
    /// seqs above any this journal gave it, numbering moves above them (see
    /// [`SeqRebase`]), journaled first so a restart does the same.
    fn on_slave_hello(&mut self, hello: SlaveHello) -> anyhow::Result<()> {
        let current = self.copy_seqs.get(&hello.login).copied().unwrap_or(0);
        if hello.last_seq <= current {
            return Ok(());
        }
        let reissue = self.rebased.insert(hello.login);
        let rebase = SeqRebase { slave: hello.login, last_seq: hello.last_seq, reissue };
        let now_ms = self.now_ms();
        self.journal.append(JOURNAL_KIND_SLAVE_SEQ, &rebase.encode(), now_ms).context("journal append of a copy seq rebase")?;
        let awaiting = self.instructions.get(&hello.login).map_or(0, std::collections::BTreeMap::len);
        if reissue {
            tracing::warn!(
                slave = hello.login,
                terminal_last_seq = hello.last_seq,
                journal_last_seq = current,
                reissued = awaiting,
                "the slave's terminal has finished copies this journal does not hold (a new or replaced journal, or one that lost its tail under journal_sync = \"os\"); its copies are numbered above its last_seq from now on, and those awaiting its result are issued again"
            );
        } else {
            tracing::error!(
                slave = hello.login,
                terminal_last_seq = hello.last_seq,
                journal_last_seq = current,
                forgotten = awaiting,
                "the slave's terminal is ahead of the journal again since its last rebase (a terminal whose seq file was copied, or a second terminal on the same login?); numbering moves above it, and nothing is issued again"
            );
        }
        Metrics::count(&self.metrics.copy_seq_rebases);
        self.decide_and_issue(0, |router, decisions| router.apply_rebase(&rebase, decisions))
    }

    /// Moves a slave's numbering above `last_seq`: the copies at or below it
    /// awaiting a result are taken out and, with `reissue`, become decisions
    /// to issue again, in their order, with new seqs.
    fn apply_rebase(&mut self, rebase: &SeqRebase, decisions: &mut Vec<Decision>) {
        if let Some(sent) = self.instructions.get_mut(&rebase.slave) {
            let above = sent.split_off(&(rebase.last_seq + 1));
            let awaiting = std::mem::replace(sent, above);
            if rebase.reissue {
                decisions.extend(awaiting.into_values().map(|instruction| Decision {
                    slave: rebase.slave,
                    master: instruction.master,
                    pos: instruction.pos,
                    outcome: Outcome::Copy(instruction),
                }));
            }
        }
        let seq = self.copy_seqs.entry(rebase.slave).or_insert(0);
        *seq = (*seq).max(rebase.last_seq);
        if let Some(account) = self.accounts.get(rebase.slave) {
            let mut delivery = account.delivery();
            delivery.kept_seq = delivery.kept_seq.max(rebase.last_seq);
            delivery.finished_up_to(rebase.last_seq);
        }
    }

    /// Runs one engine step that fills the reused decisions buffer, then
    /// journals and queues the copies it decided (`event_received_ns`: the
    /// master event behind them, 0 when none).
    fn decide_and_issue(&mut self, event_received_ns: u64, decide: impl FnOnce(&mut Router, &mut Vec<Decision>)) -> anyhow::Result<()> {
        let mut decisions = std::mem::take(&mut self.decisions);
        decide(self, &mut decisions);
        let issued = self.issue_copies(&mut decisions, event_received_ns);
        self.decisions = decisions;
        issued
    }

    /// Remembers what copy `seq` of `slave` was, until its result.
    fn remember_instruction(&mut self, slave: u64, seq: u64, instruction: CopyInstruction) {
        let sent = self.instructions.entry(slave).or_default();
        if sent.len() >= INSTRUCTIONS_PER_SLAVE_MAX {
            sent.pop_first();
        }
        sent.insert(seq, instruction);
    }

    /// Feeds one update to the engine.
    fn apply_update(&mut self, update: &Update, decisions: &mut Vec<Decision>) {
        match &update.message {
            Message::Snapshot(snapshot) => self.engine.on_master_snapshot(update.login, snapshot, update.received_ms, decisions),
            Message::State(state) => self.engine.on_slave_state(update.login, state, update.received_ms, decisions),
            Message::Symbols(symbols) => self.engine.on_slave_symbols(update.login, symbols),
            other => tracing::error!(login = update.login, ?other, "not an update message"),
        }
    }

    /// Journals a slave result (its ring record as is), then applies it and
    /// issues the copies it causes (a refused pending order whose master
    /// order has filled is opened at market).
    fn journal_result(&mut self, slave: u64, result: &TradeResult, received_ms: u64, payload: &[u8]) -> anyhow::Result<()> {
        let now_ms = self.now_ms();
        self.journal.append(JOURNAL_KIND_RESULT, payload, now_ms).context("journal append of a result")?;
        self.decide_and_issue(0, |router, decisions| router.on_result(slave, result, received_ms, decisions))
    }

    /// A slave's result: tells the engine what became of the copy (at the
    /// result's receipt time), and forgets the copies the slave has
    /// finished. The engine's follow-up copies go into `decisions`.
    fn on_result(&mut self, slave: u64, result: &TradeResult, received_ms: u64, decisions: &mut Vec<Decision>) {
        let instruction = self.instructions.get_mut(&slave).and_then(|sent| sent.remove(&result.seq));
        if let Some(instruction) = instruction {
            self.engine.on_slave_result(slave, &instruction, result, received_ms, decisions);
        }
        if let Some(account) = self.accounts.get(slave) {
            account.delivery().finished_up_to(result.seq);
        }
    }

    /// Gives each copy decision the slave's next `seq`, journals it, and
    /// queues it to be sent once durable.
    fn issue_copies(&mut self, decisions: &mut Vec<Decision>, event_received_ns: u64) -> anyhow::Result<()> {
        self.skips.clear();
        let round_wall_ms = if self.recent_skips_max > 0 { self.started_wall_ms + self.now_ms() } else { 0 };
        for decision in decisions.drain(..) {
            let instruction = match decision.outcome {
                Outcome::Copy(instruction) => instruction,
                Outcome::Skip(reason) => {
                    tracing::debug!(slave = decision.slave, master = decision.master, pos = decision.pos, reason = reason.as_str(), "no copy");
                    if self.persist.is_some() {
                        self.skips.push(SkipEntry { slave: decision.slave, master: decision.master, pos: decision.pos, reason: reason.index() });
                    }
                    if self.recent_skips_max > 0 {
                        if self.recent_skips.len() >= self.recent_skips_max {
                            self.recent_skips.pop_front();
                        }
                        self.recent_skips.push_back(RecentSkip { at_ms: round_wall_ms, slave: decision.slave, master: decision.master, pos: decision.pos, reason });
                    }
                    continue;
                }
            };
            let seq = self.copy_seqs.get(&decision.slave).copied().unwrap_or(0) + 1;
            let copy = instruction.to_copy(seq, format!("{}-{}", decision.slave, seq));
            let routed_ns = self.started.elapsed().as_nanos() as u64;
            let meta = CopyMeta { slave_login: decision.slave, event_received_ns, routed_ns, connection_id: None };
            let record = CopyRecord::from_copy(copy, meta);
            let now_ms = self.now_ms();
            let encoded = match self.encoder.encode(&record) {
                Ok(encoded) => encoded,
                Err(error) => {
                    // Unreachable while the encoder's bound follows
                    // frame_bytes_max; were it reached, dropping this copy
                    // loudly is better than stopping every account's trading.
                    tracing::error!(slave = decision.slave, master = decision.master, pos = decision.pos, %error, "copy too large to encode; not sent");
                    continue;
                }
            };
            let journal_seq = self.journal.append(JOURNAL_KIND_COPY, encoded.bytes, now_ms).context("journal append of a copy")?;
            self.copy_seqs.insert(decision.slave, seq);
            Metrics::count(&self.metrics.copies_journaled);
            self.remember_instruction(decision.slave, seq, instruction);
            self.pending.push_back(PendingAck { journal_seq, waiting: Waiting::Copy(Box::new(record)) });
        }
        self.journal_skips()
    }

    /// Journals `skips` (then cleared), in as many records as they need: a
    /// master with thousands of followers all skipped fills more than one.
    fn journal_skips(&mut self) -> anyhow::Result<()> {
        if self.skips.is_empty() {
            return Ok(());
        }
        let per_record = skips_per_record(self.journal.options().payload_bytes_max());
        let now_ms = self.now_ms();
        for chunk in self.skips.chunks(per_record) {
            encode_skips(chunk, &mut self.skips_bytes);
            self.journal.append(JOURNAL_KIND_SKIPS, &self.skips_bytes, now_ms).context("journal append of skips")?;
        }
        self.skips.clear();
        Ok(())
    }

    /// De-duplicates, journals and queues the ack of one master event, and
    /// runs a new one through the engine.
    fn on_master_event(&mut self, shard: u32, login: u64, connection_id: u64, seq: u64, payload: &[u8]) -> anyhow::Result<()> {
        let now_ms = self.now_ms();
        let progress = self.masters.entry(login).or_default();
        let ack = AckRecord { master_login: login, connection_id, seq };
        if seq <= progress.event_seq {
            // A duplicate: acked again once what is stored is durable, and
            // not appended (nor routed) a second time.
            let journal_seq = progress.journal_seq;
            self.pending.push_back(PendingAck { journal_seq, waiting: Waiting::Ack { shard, ack, event_received_ns: 0 } });
            Metrics::count(&self.metrics.events_duplicate);
            return Ok(());
        }
        let journal_seq = self.journal.append(JOURNAL_KIND_MASTER_EVENT, payload, now_ms).context("journal append of a master event")?;
        progress.event_seq = seq;
        progress.journal_seq = journal_seq;
        Metrics::count(&self.metrics.events_journaled);
        let record = access_checked::<MasterEventRecord>(payload).context("master event record")?;
        let event_received_ns = record.received_ns.to_native();
        self.pending.push_back(PendingAck { journal_seq, waiting: Waiting::Ack { shard, ack, event_received_ns } });
        let event = record.to_event().context("master event record")?;
        let received_ms = record.received_ms.to_native();
        injected_engine_fault(event.seq);
        let issued = self.decide_and_issue(event_received_ns, |router, decisions| router.engine.on_master_event(login, &event, received_ms, decisions));
        self.metrics.record(Stage::FrameToRouted, event_received_ns, self.started.elapsed().as_nanos() as u64);
        issued
    }

    /// Moves every pending ack and copy the journal now holds durably, in
    /// order, to its shard's outgoing queue (publishing the ack's `ack_seq`,
    /// keeping the copy for replay), then pushes each shard's queue into its
    /// ring. True when anything moved.
    fn send_durable_acks(&mut self) -> bool {
        let durable_seq = self.journal.durable_seq();
        let mut moved = false;
        while self.pending.front().is_some_and(|pending| pending.journal_seq <= durable_seq) {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            match pending.waiting {
                Waiting::Ack { shard, ack, event_received_ns } => {
                    self.publish_ack(&ack);
                    if event_received_ns != 0 {
                        let now_ns = self.started.elapsed().as_nanos() as u64;
                        self.metrics.record(Stage::EventToDurable, event_received_ns, now_ns);
                    }
                    self.queue_outgoing(shard as usize, Outgoing::Ack(ack));
                }
                Waiting::Copy(record) => {
                    if let Some((shard, record)) = self.keep_copy(*record) {
                        self.queue_outgoing(shard, Outgoing::Copy(Box::new(record)));
                    }
                }
            }
            moved = true;
        }
        self.flush_outgoing() || moved
    }

    /// Publishes the master's durable `ack_seq`: the record covering this
    /// ack is durable, and it holds a seq at or above `ack.seq`, so
    /// `ack.seq` is a safe `ack_seq` for the next `welcome`.
    fn publish_ack(&self, ack: &AckRecord) {
        if let Some(account) = self.accounts.get(ack.master_login) {
            account.durable_event_seq.fetch_max(ack.seq, Ordering::AcqRel);
        }
    }

    /// Keeps a durable copy for replay; gives it back addressed to the
    /// slave's live connection, with that connection's shard, if any.
    fn keep_copy(&mut self, mut record: CopyRecord) -> Option<(usize, CopyRecord)> {
        let account = self.accounts.get(record.slave_login)?;
        let live_connection_id = {
            let mut delivery: std::sync::MutexGuard<'_, SlaveDelivery> = account.delivery();
            match record.clone().into_copy() {
                Ok(copy) => delivery.retain(copy),
                Err(error) => tracing::error!(%error, "invalid copy record"),
            }
            delivery.live_connection_id
        };
        if live_connection_id == 0 {
            return None;
        }
        record.connection_id = Some(live_connection_id);
        Some((crate::links::connection_shard(live_connection_id) as usize, record))
    }

    fn queue_outgoing(&mut self, shard: usize, item: Outgoing) {
        let Some(queue) = self.outgoing.get_mut(shard) else {
            tracing::error!(shard, "an ack or copy for a shard that does not exist; dropped");
            return;
        };
        queue.push_back(item);
    }

    /// Pushes each shard's outgoing queue into its ring, in order, until
    /// the ring is full, and rings the shard once if anything went in. A
    /// full ring holds up only its own shard (the slave never sees a gap in
    /// its copy seqs: what stays waits at the front of its queue). True
    /// when anything was pushed.
    fn flush_outgoing(&mut self) -> bool {
        let mut pushed_any = false;
        for shard in 0..self.outgoing.len() {
            let mut pushed = false;
            while let Some(item) = self.outgoing[shard].front() {
                let encoded = match item {
                    Outgoing::Ack(ack) => self.encoder.encode(ack),
                    Outgoing::Copy(record) => self.encoder.encode(&**record),
                };
                match encoded {
                    Ok(encoded) => {
                        if self.links.to_shards[shard].try_push(encoded.kind.code(), encoded.bytes).is_err() {
                            self.ring_full_count += 1;
                            tracing::debug!(shard, full_count = self.ring_full_count, waiting = self.outgoing[shard].len(), "router -> shard ring full; its acks and copies wait");
                            break;
                        }
                        pushed = true;
                    }
                    // Unreachable while the encoder's bound follows
                    // frame_bytes_max (the same record was encoded for the
                    // journal); dropping it loudly beats stopping the shard.
                    Err(error) => tracing::error!(shard, %error, "cannot encode an ack or copy; dropped"),
                }
                self.outgoing[shard].pop_front();
            }
            if pushed {
                self.links.shard_bells[shard].ring();
                pushed_any = true;
            }
            let waiting = self.outgoing[shard].len();
            if waiting == 0 {
                self.outgoing_warned[shard] = false;
            } else if waiting >= OUTGOING_WARN_ITEMS && !self.outgoing_warned[shard] {
                self.outgoing_warned[shard] = true;
                tracing::warn!(
                    shard,
                    waiting,
                    all_waiting_max = PENDING_ACKS_MAX,
                    "shard is not draining its router -> shard ring; its acks and copies wait, and when all waiting reach the bound the router stops reading every shard"
                );
            }
        }
        pushed_any
    }
}

/// The engine's instruction behind a journaled copy.
fn instruction_of(copy: &Copy) -> CopyInstruction {
    CopyInstruction {
        master: copy.master,
        pos: copy.pos,
        action: copy.action,
        symbol: copy.symbol.clone(),
        side: copy.side,
        volume: copy.volume,
        price: copy.price,
        max_dev: copy.max_dev,
        sl: copy.sl,
        tp: copy.tp,
        magic: copy.magic,
        comment: copy.comment.clone(),
        expires_ms: copy.expires_ms,
    }
}

/// Takes the copies a replayed input (journal record `seq`) decided as the
/// ones its next records must hold; leftovers of the input before it mean a
/// copy that was not journaled (too large to encode) and are dropped, logged.
/// Builds with debug assertions only (what the tests run): panics in place
/// of the engine for the master event whose seq the environment variable
/// `TRADEBRIDGE_TEST_ENGINE_PANIC_EVENT_SEQ` names, live and in the replay,
/// so a test can show that such a panic does not become a crash loop.
/// Nothing of it is in a release build.
#[cfg(debug_assertions)]
fn injected_engine_fault(event_seq: u64) {
    static SEQ: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let seq = SEQ.get_or_init(|| std::env::var("TRADEBRIDGE_TEST_ENGINE_PANIC_EVENT_SEQ").ok().and_then(|value| value.parse().ok()));
    if *seq == Some(event_seq) {
        panic!("injected engine fault on master event seq {event_seq} (TRADEBRIDGE_TEST_ENGINE_PANIC_EVENT_SEQ)");
    }
}

#[cfg(not(debug_assertions))]
fn injected_engine_fault(_event_seq: u64) {}

/// What the replay carries from one journal record to the next.
#[derive(Default)]
struct Replay {
    /// The decisions of the record being replayed; reused.
    decisions: Vec<Decision>,
    /// The copies the last replayed input (event, update or result) caused
    /// whose records have not followed it yet: the router journals them
    /// right after their cause, so only a stop between the two leaves some
    /// missing, and only at the journal's end.
    copies_due: VecDeque<Decision>,
    /// The skips the last replayed input decided, until its skips record
    /// (journaled with a persister, after its copies) is seen.
    skips_due: Vec<SkipEntry>,
    /// Assembles configuration records written in parts.
    assembler: ConfigAssembler,
}

impl Replay {
    fn expect_copies(&mut self, seq: u64) {
        if !self.copies_due.is_empty() {
            tracing::warn!(copies = self.copies_due.len(), before_seq = seq, "journaled copies fewer than their input decided; not re-issued");
            self.copies_due.clear();
        }
        self.skips_due.clear();
        self.skips_due.extend(self.decisions.iter().filter_map(|decision| match decision.outcome {
            Outcome::Skip(reason) => Some(SkipEntry { slave: decision.slave, master: decision.master, pos: decision.pos, reason: reason.index() }),
            Outcome::Copy(_) => None,
        }));
        self.copies_due.extend(self.decisions.drain(..).filter(|decision| matches!(decision.outcome, Outcome::Copy(_))));
    }
}

/// Journal records the replay could not apply (the engine panicked on one,
/// or it did not decode), kept as files in `<journal_dir>/quarantined-records/`
/// named by journal seq, so later starts skip them without trying again.
struct RecordQuarantine {
    directory: PathBuf,
    seqs: std::collections::BTreeSet<u64>,
}

/// Directory of quarantined records, inside the journal directory.
pub const QUARANTINED_RECORDS_DIRECTORY: &str = "quarantined-records";

impl RecordQuarantine {
    /// Reads the seqs quarantined by earlier starts.
    fn open(journal_directory: &Path) -> anyhow::Result<RecordQuarantine> {
        let directory = journal_directory.join(QUARANTINED_RECORDS_DIRECTORY);
        let mut seqs = std::collections::BTreeSet::new();
        match std::fs::read_dir(&directory) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.with_context(|| format!("listing {}", directory.display()))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some(seq) = name.split('-').next().and_then(|digits| digits.parse::<u64>().ok()) {
                        seqs.insert(seq);
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("listing {}", directory.display())),
        }
        Ok(RecordQuarantine { directory, seqs })
    }

    fn len(&self) -> usize {
        self.seqs.len()
    }

    fn holds(&self, seq: u64) -> bool {
        self.seqs.contains(&seq)
    }

    /// Writes the record's payload to `<seq>-kind<kind>.bin` (synced) and
    /// the failure beside it in `<seq>-kind<kind>.txt`; returns the payload
    /// file's path.
    fn add(&self, entry: &OwnedEntry, failure: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.directory).with_context(|| format!("creating {}", self.directory.display()))?;
        let stem = format!("{:020}-kind{}", entry.seq, entry.kind);
        // The payload first: the seq counts as quarantined once a file of
        // it exists, so that file must hold the record.
        let path = self.directory.join(format!("{stem}.bin"));
        let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut file, &entry.payload).with_context(|| format!("writing {}", path.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
        let reason = self.directory.join(format!("{stem}.txt"));
        std::fs::write(&reason, format!("journal seq {} kind {}: {failure}\n", entry.seq, entry.kind))
            .with_context(|| format!("writing {}", reason.display()))?;
        let directory = std::fs::File::open(&self.directory).with_context(|| format!("opening {}", self.directory.display()))?;
        directory.sync_all().with_context(|| format!("syncing {}", self.directory.display()))?;
        Ok(path)
    }
}

/// A journal record copied out of the mapping during recovery.
struct OwnedEntry {
    /// Journal sequence.
    seq: u64,
    /// Journal kind.
    kind: u16,
    /// The payload, in an 8-aligned buffer so rkyv can read it in place.
    payload: rkyv::util::AlignedVec<8>,
}

/// Copies `bytes` into an 8-aligned buffer.
fn aligned_copy(bytes: &[u8]) -> rkyv::util::AlignedVec<8> {
    let mut buffer = rkyv::util::AlignedVec::<8>::with_capacity(bytes.len());
    buffer.extend_from_slice(bytes);
    buffer
}
