//! What a shard's sessions work with: the state every shard shares
//! ([`Shared`]), one shard's own ([`ShardContext`]: its ring to the router,
//! its table of welcomed connections and their outboxes), and what the shard
//! hands a connection to send ([`Outbound`]). The shard's executor
//! ([`crate::shard`]) builds these and runs the sessions
//! ([`crate::session`]) on them.
//!
//! # Invariants
//! - The number of open EA connections never exceeds `connections_max`
//!   ([`ConnectionSlot`]).
//! - A connection's outbox holds at most [`OUTBOX_MESSAGES_MAX`] messages.
//! - A stale connection id finds nothing: the slab key carries a generation.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use glommio::channels::local_channel::LocalSender;
use tradebridge_core::config::Config;
use tradebridge_core::protocol::close_code;
use tradebridge_core::protocol::Copy;
use tradebridge_core::record::RecordEncoder;
use tradebridge_core::ring::{Producer, RingMonitor};

use crate::accounts::{AccountTable, SessionControl};
use crate::clock::unix_ms;
use crate::doorbell::Doorbell;
use crate::links::{connection_id, connection_key, CONNECTION_KEY_BITS};
use crate::metrics::Metrics;

/// What every shard shares, read-only but for atomic counters.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration; fixed.
    pub config: Config,
    /// The configured accounts and their live sessions.
    pub accounts: Arc<AccountTable>,
    /// Open EA connections across all shards; +1 on accept, -1 on close.
    connections: AtomicU32,
    /// Set once by [`Shared::begin_shutdown`]; from then on no connection
    /// is accepted and no session stays welcomed.
    shutting_down: AtomicBool,
    /// Process start, the origin of [`Shared::now_ms`] and
    /// [`Shared::now_ns`] for every thread; fixed.
    pub started: Instant,
    /// Counters and latency histograms.
    pub metrics: Arc<Metrics>,
    /// Wall clock at start, in ms since the Unix epoch; makes session ids
    /// unique across restarts; fixed.
    started_wall_ms: u64,
    /// Without `[persist]`: the append-only audit file beside the journal
    /// (refused hellos), written by its own thread.
    pub audit: Option<crate::audit::AuditFile>,
    /// Budgets a connection must pass before it may log in.
    pub front_door: Arc<crate::front_door::FrontDoor>,
}

/// Refused hellos one shard records per second at most (see
/// [`ShardContext::auth_failures_window`]); the log has every one.
pub const AUTH_FAILURES_RECORDED_PER_SECOND: u32 = 20;


impl Shared {
    /// Builds the shared state; reads the clocks once.
    pub fn new(config: Config) -> Shared {
        let started_wall_ms = unix_ms();
        let accounts = Arc::new(AccountTable::new(&config, 0));
        Shared {
            accounts,
            connections: AtomicU32::new(0),
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            metrics: Arc::new(Metrics::default()),
            started_wall_ms,
            audit: None,
            front_door: Arc::new(crate::front_door::FrontDoor::new(&config.server)),
            config,
        }
    }

    /// True once the shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Starts the drain: stops accepting, and asks every welcomed session
    /// to close with 1001. A session welcomed concurrently checks the flag
    /// after claiming its login (both under the account's lock), so it
    /// closes too.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        for account in self.accounts.iter() {
            account.close_live(close_code::GOING_AWAY);
        }
    }

    /// Open EA connections across all shards.
    pub fn connections_open(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }

    /// Wall-clock milliseconds since the Unix epoch, from the monotonic
    /// clock and the wall clock read once at start (so it never goes back);
    /// the base of `copy.expires_ms`.
    pub fn wall_ms(&self) -> u64 {
        self.started_wall_ms + self.now_ms()
    }

    /// The wall clock (ms since the epoch) of a monotonic `now_ms` reading.
    pub fn wall_ms_of(&self, monotonic_ms: u64) -> u64 {
        self.started_wall_ms + monotonic_ms
    }

    /// Monotonic nanoseconds since the process started; the latency clock.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Monotonic milliseconds since the process started.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// Counts one open connection; dropping it uncounts it.
pub(crate) struct ConnectionSlot {
    /// The shared state holding the counter.
    shared: Arc<Shared>,
}

impl ConnectionSlot {
    /// Takes a slot, or `None` when `connections_max` are open.
    pub(crate) fn take(shared: &Arc<Shared>) -> Option<ConnectionSlot> {
        let connections_max = shared.config.server.connections_max;
        let taken = shared
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < connections_max).then_some(open + 1))
            .is_ok();
        taken.then(|| ConnectionSlot { shared: Arc::clone(shared) })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let before = self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "a connection slot was released twice");
    }
}

/// What the shard hands to one connection's task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Master event `seq` is durable: send `ack`.
    Ack(u64),
    /// A durable copy for this slave connection, with its latency marks.
    Copy(Box<Copy>, CopyTimes),
}

/// When a copy passed the earlier stages, on the `Shared::now_ns` clock;
/// 0 when unknown (a copy issued by a snapshot or state, not by an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyTimes {
    /// The master event behind it was received by its shard.
    pub event_received_ns: u64,
    /// The router issued it.
    pub routed_ns: u64,
}

/// Messages a connection's outbox holds before its task sends them; a
/// connection that falls this far behind is slow or stuck, and its acks are
/// dropped (counted) rather than buffered without bound.
pub const OUTBOX_MESSAGES_MAX: usize = 1_024;

/// What the shard keeps of a welcomed connection: its outbox and the
/// control that closes it.
type ConnectionHandle = (LocalSender<Outbound>, Arc<SessionControl>);

/// The connection table's slab layout: the top 16 bits of every key stay
/// free for the shard number of the connection id; the other 48 hold the
/// thread id, the slot address and a generation.
#[derive(Debug)]
struct ConnectionTableConfig;

impl sharded_slab::Config for ConnectionTableConfig {
    /// Thread ids are global to the process across every sharded-slab
    /// (tracing's registry uses one too), so this covers every thread the
    /// bridge starts, not only the one shard that uses this table.
    const MAX_THREADS: usize = 256;
    /// 32 slots in the first page, doubling: about 2 million connections per
    /// shard, far above `connections_max`.
    const MAX_PAGES: usize = 16;
    const RESERVED_BITS: usize = (u64::BITS - CONNECTION_KEY_BITS) as usize;
}

/// One shard's own state, used only on its executor thread.
pub struct ShardContext {
    /// The shard number, from 0; fixed.
    pub index: u32,
    /// What all shards share.
    pub shared: Arc<Shared>,
    /// Sessions this shard has welcomed; +1 per session id.
    sessions_started: Cell<u64>,
    /// Refused hellos recorded (Postgres or the audit file) in the current
    /// second: (second, count); beyond [`AUTH_FAILURES_RECORDED_PER_SECOND`]
    /// they are only counted, so a flood of bad logins cannot flood the
    /// journal or the disk.
    pub auth_failures_window: Cell<(u64, u32)>,
    /// The shard -> router ring; connection tasks push master events.
    pub to_router: RefCell<Producer>,
    /// A view of the same ring: how far the router has read it, so a
    /// session waiting for room can tell a busy router from a stuck one.
    pub to_router_monitor: RingMonitor,
    /// Rung after every push to `to_router` and every update sent, so a
    /// sleeping router wakes at once.
    pub router_bell: Arc<Doorbell>,
    /// Encodes snapshots, states and symbols for `to_router`; reused.
    pub update_buffer: RefCell<Vec<u8>>,
    /// Encodes records for `to_router`; allocated once.
    pub encoder: RefCell<RecordEncoder>,
    /// The outbox of every welcomed connection on this shard, with the
    /// session's control (to close a connection that cannot keep up);
    /// inserted at `welcome`, removed when the session ends. The slab key,
    /// with its generation bits, is the low 48 bits of the connection id, so
    /// an id outlives its slot safely: a stale id finds nothing.
    connections: sharded_slab::Slab<ConnectionHandle, ConnectionTableConfig>,
}

impl std::fmt::Debug for ShardContext {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ShardContext").field("index", &self.index).finish_non_exhaustive()
    }
}

impl ShardContext {
    /// Shard `index`'s context, with its end of the shard -> router ring.
    pub fn new(index: u32, shared: Arc<Shared>, to_router: Producer, router_bell: Arc<Doorbell>) -> ShardContext {
        let record_bytes_max = shared.config.server.record_bytes_max();
        ShardContext {
            index,
            shared,
            sessions_started: Cell::new(0),
            auth_failures_window: Cell::new((0, 0)),
            to_router_monitor: to_router.monitor(),
            to_router: RefCell::new(to_router),
            router_bell,
            update_buffer: RefCell::new(Vec::new()),
            encoder: RefCell::new(RecordEncoder::new(record_bytes_max)),
            connections: sharded_slab::Slab::new_with_config::<ConnectionTableConfig>(),
        }
    }

    /// A new session's id, unique across shards and restarts
    /// (`<start ms hex>-<shard>-<n>`).
    pub fn next_session_id(&self) -> String {
        let number = self.sessions_started.get() + 1;
        self.sessions_started.set(number);
        format!("{:x}-{}-{}", self.shared.started_wall_ms, self.index, number)
    }

    /// Registers the outbox of a welcomed connection; returns its connection
    /// id (see [`connection_id`]), or `None` when the table is full (far
    /// beyond `connections_max`).
    pub fn register(&self, outbox: LocalSender<Outbound>, control: Arc<SessionControl>) -> Option<u64> {
        let key = self.connections.insert((outbox, control))? as u64;
        debug_assert!(key < 1 << CONNECTION_KEY_BITS, "slab keys leave the shard bits free");
        Some(connection_id(self.index, key))
    }

    /// Removes a connection's outbox when its session ends.
    pub fn unregister(&self, connection_id: u64) {
        let removed = self.connections.remove(connection_key(connection_id));
        debug_assert!(removed, "connection id {connection_id} unregistered twice");
    }

    /// Hands `message` to the connection's task; a connection gone since is
    /// skipped (its successor learns `ack_seq` in `welcome`, or gets the
    /// copy in its replay). A connection whose outbox is full cannot keep up:
    /// it is closed with 1013 (try again later), and on reconnecting it gets
    /// `ack_seq` or the replay, so nothing is lost and no seq is skipped.
    pub(crate) fn deliver(&self, connection_id: u64, message: Outbound) {
        let Some(connection) = self.connections.get(connection_key(connection_id)) else {
            return;
        };
        let (outbox, control) = &*connection;
        if outbox.len() >= OUTBOX_MESSAGES_MAX || outbox.try_send(message).is_err() {
            Metrics::count(&self.shared.metrics.outbox_full);
            control.request_close(close_code::TRY_AGAIN_LATER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_connections_id_finds_nothing_after_its_slot_is_reused() {
        // A stale id (the session ended, its slot taken by a new one) must not reach the new connection.
        let slab = sharded_slab::Slab::new_with_config::<ConnectionTableConfig>();
        let first = slab.insert(1u32).unwrap();
        assert!(slab.remove(first));
        let second = slab.insert(2u32).unwrap();
        assert_ne!(first, second, "the generation bits tell the two apart");
        assert!(slab.get(first).is_none());
        assert_eq!(slab.get(second).map(|entry| *entry), Some(2));
    }
}
