//! The routing core, first cut: one thread that owns the journal, takes
//! master events from every shard through the shard -> router rings,
//! de-duplicates them by per-master `seq`, journals them, and sends each
//! `ack` back through the router -> shard ring once the journal holds the
//! event durably (group commit through `Journal::tick`).
//!
//! # Layout
//! - [`links`]: builds the two anonymous SPSC rings per shard.
//! - [`open_journal`]: the journal options from `[server]`.
//! - [`Router`]: recovery of per-master progress from the journal, then the
//!   poll loop ([`Router::run`]) with the configured idle strategy.
//!
//! # Invariants
//! - An `ack` for `seq` leaves the router only once `durable_seq()` covers
//!   the journal record holding that `seq` (or, for a duplicate, the record
//!   of the highest `seq` stored for that master).
//! - A master event whose `seq` is at or below the highest stored one is
//!   never appended again: it is only acked again.
//! - The engine and the copies to slaves are not wired yet: nothing is
//!   routed to slaves in this cut.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tradebridge_core::config::{self, Config, JournalSync};
use tradebridge_core::journal::{Journal, JournalOptions, SyncPolicy};
use tradebridge_core::record::{access_checked, AckRecord, MasterEventRecord, RecordEncoder, RecordKind};
use tradebridge_core::ring::{Consumer, IdleAction, IdleStrategy as RingIdle, Idler, Producer, Ring};

use crate::accounts::AccountTable;

/// Journal kind of a master event record: its ring tag, so a journal record
/// and a ring frame of the same record carry the same number.
pub const JOURNAL_KIND_MASTER_EVENT: u16 = RecordKind::MasterEvent.code() as u16;

/// Records read from one shard's ring before the router looks at the next
/// shard, so one busy shard cannot starve the others.
pub const RING_BATCH_RECORDS_MAX: u32 = 256;

/// Acks waiting for durability; beyond it the router stops reading events
/// until the journal catches up (back pressure into the rings).
pub const PENDING_ACKS_MAX: usize = 65_536;

/// Spin and yield steps of the `park` idle strategy before it sleeps.
const PARK_SPIN_STEPS_MAX: u32 = 64;
const PARK_YIELD_STEPS_MAX: u32 = 16;

/// The rings of one shard, as the shard holds them.
pub struct ShardLinks {
    /// Shard -> router: master events.
    pub to_router: Producer,
    /// Router -> shard: acks.
    pub from_router: Consumer,
}

/// The rings of every shard, as the router holds them (index = shard).
pub struct RouterLinks {
    /// Shard -> router consumers.
    from_shards: Vec<Consumer>,
    /// Router -> shard producers.
    to_shards: Vec<Producer>,
}

/// Two anonymous rings of `ring_bytes` per shard.
pub fn links(shards: u32, ring_bytes: u64) -> anyhow::Result<(RouterLinks, Vec<ShardLinks>)> {
    let mut router = RouterLinks { from_shards: Vec::new(), to_shards: Vec::new() };
    let mut shard_links = Vec::new();
    for shard in 0..shards {
        let ring = |direction: &str| {
            Ring::anonymous(ring_bytes).with_context(|| format!("server.ring_bytes = {ring_bytes}: {direction} ring of shard {shard}"))
        };
        let (to_router, from_shard) = ring("shard -> router")?.split()?;
        let (to_shard, from_router) = ring("router -> shard")?.split()?;
        router.from_shards.push(from_shard);
        router.to_shards.push(to_shard);
        shard_links.push(ShardLinks { to_router, from_router });
    }
    Ok((router, shard_links))
}

/// Opens the journal at `server.journal_dir` with the configured policy.
pub fn open_journal(config: &Config) -> anyhow::Result<Journal> {
    let server = &config.server;
    let sync = match server.journal_sync {
        JournalSync::EveryRecord => SyncPolicy::EveryRecord,
        JournalSync::Group => SyncPolicy::Group { records_max: server.journal_group_records, interval_ms: server.journal_group_ms },
        JournalSync::Os => SyncPolicy::Os,
    };
    let options = JournalOptions { segment_bytes: server.journal_segment_bytes, sync, ..JournalOptions::default() };
    let (journal, recovery) = Journal::open(&server.journal_dir, options)
        .with_context(|| format!("opening the journal in server.journal_dir = {}", server.journal_dir.display()))?;
    tracing::info!(records = recovery.records_count, last_seq = recovery.last_seq, "journal recovered");
    Ok(journal)
}

/// What the router knows of one master.
#[derive(Clone, Copy, Debug, Default)]
struct MasterProgress {
    /// Highest `event.seq` appended to the journal; only grows.
    event_seq: u64,
    /// Journal sequence of the record holding `event_seq`.
    journal_seq: u64,
}

/// An ack waiting until the journal is durable up to `journal_seq`.
#[derive(Clone, Copy, Debug)]
struct PendingAck {
    /// The journal record that must be durable first.
    journal_seq: u64,
    /// The shard owning the connection.
    shard: u32,
    /// What to send.
    ack: AckRecord,
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
    /// Where `welcome` reads each master's durable `ack_seq`.
    accounts: Arc<AccountTable>,
    /// Encodes acks for the router -> shard rings.
    encoder: RecordEncoder,
    /// The idle strategy of the poll loop, from `server.idle`.
    idle: config::IdleStrategy,
    /// Origin of the journal's `now_ms`.
    started: Instant,
}

impl Router {
    /// Builds the router and recovers each master's highest stored `seq`
    /// from the journal; publishes it as the masters' durable `ack_seq`.
    pub fn new(journal: Journal, links: RouterLinks, accounts: Arc<AccountTable>, config: &Config) -> anyhow::Result<Router> {
        let mut masters: HashMap<u64, MasterProgress> = HashMap::new();
        for entry in journal.iter_from(journal.first_seq()) {
            if entry.kind != JOURNAL_KIND_MASTER_EVENT {
                continue;
            }
            let record = access_checked::<MasterEventRecord>(entry.payload)
                .with_context(|| format!("journal record {} is not a valid master event", entry.seq))?;
            let progress = masters.entry(record.master_login.to_native()).or_default();
            progress.event_seq = progress.event_seq.max(record.seq.to_native());
            progress.journal_seq = entry.seq;
        }
        for (login, progress) in &masters {
            if let Some(account) = accounts.get(*login) {
                account.durable_event_seq.store(progress.event_seq, Ordering::Release);
            }
        }
        Ok(Router {
            journal,
            links,
            masters,
            pending: VecDeque::new(),
            accounts,
            encoder: RecordEncoder::default(),
            idle: config.server.idle,
            started: Instant::now(),
        })
    }

    /// The poll loop; returns only when the journal fails (the bridge must
    /// then stop acking, so the caller exits).
    pub fn run(mut self) -> anyhow::Result<()> {
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
        let mut park_us: u64 = 1;
        loop {
            let worked = self.poll_once()?;
            if worked {
                idler.reset();
                park_us = 1;
                continue;
            }
            match idler.idle() {
                IdleAction::Spin => std::hint::spin_loop(),
                IdleAction::Yield => std::thread::yield_now(),
                IdleAction::Park => {
                    std::thread::sleep(Duration::from_micros(park_us));
                    park_us = (park_us * 2).min(park_us_max);
                }
            }
        }
    }

    /// One pass: events from every shard, a journal tick, durable acks out.
    /// True when anything was done.
    fn poll_once(&mut self) -> anyhow::Result<bool> {
        let mut worked = false;
        for shard in 0..self.links.from_shards.len() {
            if self.pending.len() >= PENDING_ACKS_MAX {
                break;
            }
            worked |= self.read_shard(shard as u32)?;
        }
        let now_ms = self.now_ms();
        self.journal.tick(now_ms).context("journal tick")?;
        worked |= self.send_durable_acks();
        Ok(worked)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Reads a batch of master events from one shard's ring.
    fn read_shard(&mut self, shard: u32) -> anyhow::Result<bool> {
        let mut events: Vec<(u64, u64, u64, Vec<u8>)> = Vec::new();
        let consumer = &mut self.links.from_shards[shard as usize];
        let read = consumer.read_batch(RING_BATCH_RECORDS_MAX, |record| {
            if record.kind != RecordKind::MasterEvent.code() {
                tracing::error!(shard, kind = record.kind, "unexpected record kind on a shard -> router ring");
                return;
            }
            match access_checked::<MasterEventRecord>(record.payload) {
                Ok(event) => events.push((
                    event.master_login.to_native(),
                    event.connection_id.to_native(),
                    event.seq.to_native(),
                    record.payload.to_vec(),
                )),
                Err(error) => tracing::error!(shard, %error, "invalid master event record on a ring"),
            }
        })?;
        for (login, connection_id, seq, payload) in events {
            self.on_master_event(shard, login, connection_id, seq, &payload)?;
        }
        Ok(read > 0)
    }

    /// De-duplicates, journals and queues the ack of one master event.
    fn on_master_event(&mut self, shard: u32, login: u64, connection_id: u64, seq: u64, payload: &[u8]) -> anyhow::Result<()> {
        let progress = self.masters.entry(login).or_default();
        let ack = AckRecord { master_login: login, connection_id, seq };
        if seq <= progress.event_seq {
            // A duplicate: acked again once what is stored is durable, and
            // not appended (nor routed) a second time.
            self.pending.push_back(PendingAck { journal_seq: progress.journal_seq, shard, ack });
            return Ok(());
        }
        let now_ms = self.started.elapsed().as_millis() as u64;
        let journal_seq = self.journal.append(JOURNAL_KIND_MASTER_EVENT, payload, now_ms).context("journal append of a master event")?;
        progress.event_seq = seq;
        progress.journal_seq = journal_seq;
        self.pending.push_back(PendingAck { journal_seq, shard, ack });
        Ok(())
    }

    /// Sends every pending ack the journal now holds durably, in order; an
    /// ack whose ring is full waits for the next pass.
    fn send_durable_acks(&mut self) -> bool {
        let durable_seq = self.journal.durable_seq();
        let mut sent = false;
        while let Some(pending) = self.pending.front().copied() {
            if pending.journal_seq > durable_seq {
                break;
            }
            // The record covering this ack is durable, and it holds a seq at
            // or above `ack.seq`, so `ack.seq` is a safe `ack_seq` for the
            // next `welcome`.
            if let Some(account) = self.accounts.get(pending.ack.master_login) {
                account.durable_event_seq.fetch_max(pending.ack.seq, Ordering::AcqRel);
            }
            let encoded = match self.encoder.encode(&pending.ack) {
                Ok(encoded) => encoded,
                Err(error) => {
                    tracing::error!(%error, "cannot encode an ack");
                    self.pending.pop_front();
                    continue;
                }
            };
            if self.links.to_shards[pending.shard as usize].try_push(encoded.kind.code(), encoded.bytes).is_err() {
                break;
            }
            self.pending.pop_front();
            sent = true;
        }
        sent
    }
}
