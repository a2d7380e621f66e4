//! The shards: one glommio executor per shard, pinned to a core, each with
//! its own listener on the same port (SO_REUSEPORT, which glommio's
//! `TcpListener::bind` sets) and owning the connections it accepts.
//!
//! # Layout
//! - [`Shared`]: what every shard reads (configuration, account table,
//!   connection count, the process clock).
//! - [`ShardContext`]: one shard's own state, used only on its thread.
//! - [`start`]: binds and starts every shard, returns once all listen.
//! - `pump_from_router`: per shard, moves acks from the router -> shard ring
//!   to the connection they are for, with the configured idle strategy.
//!
//! # Invariants
//! - Shard 0 binds first; the others bind the address it resolved, so a
//!   configured port 0 still gives one port for all shards.
//! - The number of open EA connections never exceeds `connections_max`: a
//!   connection over the limit is dropped before the upgrade.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use glommio::channels::local_channel::LocalSender;
use futures_lite::future::or;
use glommio::net::TcpListener;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use tradebridge_core::config::{Config, IdleStrategy};
use tradebridge_core::protocol::Copy;
use tradebridge_core::record::{access_checked, CopyRecord, AckRecord, RecordEncoder, RecordKind};
use tradebridge_core::ring::{Consumer, Producer};

use crate::accounts::{AccountTable, SessionControl};
use crate::doorbell::Doorbell;
use crate::metrics::{Metrics, Stage};
use crate::router::{ShardLinks, RING_BATCH_RECORDS_MAX};
use crate::session::serve_connection;

/// How long a shard's executor busy-polls before parking under the `spin`
/// idle strategy; under `yield` and `park` it parks at once in io_uring,
/// which costs no CPU while idle.
pub const SPIN_BEFORE_PARK_MS: u64 = 1_000;

/// Memory glommio registers with io_uring per shard for its file I/O: the
/// shards do none (the journal is the router's, through mmap), so the
/// default 10 MiB per shard would only be resident memory; glommio takes at
/// least 64 KiB.
pub const SHARD_IO_MEMORY_BYTES: usize = 64 * 1024;

/// Pause after a failed `accept` (for instance out of file descriptors), so
/// a persistent failure does not spin the shard.
pub const ACCEPT_RETRY_MS: u64 = 10;

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
}

/// Refused hellos one shard records per second at most (see
/// [`ShardContext::auth_failures_window`]); the log has every one.
pub const AUTH_FAILURES_RECORDED_PER_SECOND: u32 = 20;

pub use crate::clock::unix_ms;

impl Shared {
    /// Builds the shared state; reads the clocks once.
    pub fn new(config: Config) -> Shared {
        let started_wall_ms = unix_ms();
        let accounts = Arc::new(AccountTable::new(&config, 0));
        Shared {
            config,
            accounts,
            connections: AtomicU32::new(0),
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            metrics: Arc::new(Metrics::default()),
            started_wall_ms,
            audit: None,
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
            account.close_live(crate::session::close_code::GOING_AWAY);
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
struct ConnectionSlot {
    /// The shared state holding the counter.
    shared: Arc<Shared>,
}

impl ConnectionSlot {
    /// Takes a slot, or `None` when `connections_max` are open.
    fn take(shared: &Arc<Shared>) -> Option<ConnectionSlot> {
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

/// Bits of a connection id below the shard number.
const CONNECTION_KEY_BITS: u32 = 48;

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
    fn deliver(&self, connection_id: u64, message: Outbound) {
        let Some(connection) = self.connections.get(connection_key(connection_id)) else {
            return;
        };
        let (outbox, control) = &*connection;
        if outbox.len() >= OUTBOX_MESSAGES_MAX || outbox.try_send(message).is_err() {
            Metrics::count(&self.shared.metrics.outbox_full);
            control.request_close(crate::session::close_code::TRY_AGAIN_LATER);
        }
    }
}

/// A connection id: the shard number plus 1 in the top 16 bits, so no id is
/// 0 (which means "no connection" where ids are stored), and the slab key in
/// the 48 bits below.
pub fn connection_id(shard: u32, key: u64) -> u64 {
    debug_assert!(shard < u32::from(u16::MAX), "shard {shard} fits the 16 bits beside the key");
    (u64::from(shard + 1) << CONNECTION_KEY_BITS) | key
}

/// The shard that owns a connection id.
pub fn connection_shard(connection_id: u64) -> u32 {
    ((connection_id >> CONNECTION_KEY_BITS) as u32).saturating_sub(1)
}

/// The slab key inside a connection id.
fn connection_key(connection_id: u64) -> usize {
    (connection_id & ((1 << CONNECTION_KEY_BITS) - 1)) as usize
}

/// The running shards.
pub struct Shards {
    /// The address every shard listens on (the resolved one when the
    /// configuration says port 0).
    pub local_address: SocketAddr,
    /// One handle per shard thread.
    handles: Vec<ExecutorJoinHandle<()>>,
}

impl Shards {
    /// Blocks until every shard thread ends (they end only on a fatal error).
    pub fn join(self) -> anyhow::Result<()> {
        for handle in self.handles {
            handle.join().map_err(|error| anyhow::anyhow!("shard thread failed: {error}"))?;
        }
        Ok(())
    }
}

/// How many shards to start: `server.shards`, or, when 0, one per core
/// less the core left to the router (at least one).
///
/// The router is busy on every event, so a shard on every core shares its
/// core with the router, and every event wakes every shard that holds one
/// of its followers. On this 2-core machine, fanout 10 x 10 at 1,000
/// events/s under group sync, one shard instead of two took the bridge from
/// 73-91 to 54 us of CPU per copy and the end-to-end p99 from 1.1-3.8 to
/// 0.73-0.78 ms (bench-results `_fanout_shards-1`, `-1b`, `-2`, `-2b`).
pub fn shard_count(config: &Config) -> u32 {
    if config.server.shards > 0 {
        return config.server.shards;
    }
    default_shard_count(std::thread::available_parallelism().map_or(1, |cores| cores.get()))
}

/// One shard per core but one, at least one; see [`shard_count`].
fn default_shard_count(cores: usize) -> u32 {
    cores.saturating_sub(1).max(1) as u32
}

/// Starts every shard and returns once all of them listen.
pub fn start(shared: Arc<Shared>, links: Vec<ShardLinks>) -> anyhow::Result<Shards> {
    let count = shard_count(&shared.config);
    assert_eq!(links.len(), count as usize, "one pair of rings per shard");
    let mut links = links.into_iter();
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let mut handles = Vec::with_capacity(count as usize);
    let mut address = shared.config.server.listen;
    for index in 0..count {
        let (ready_sender, ready_receiver) = mpsc::channel();
        let shard_shared = Arc::clone(&shared);
        let shard_links = links.next().context("one pair of rings per shard")?;
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(index as usize % cores))
            .name(&format!("shard-{index}"))
            .io_memory(SHARD_IO_MEMORY_BYTES);
        if shared.config.server.idle == IdleStrategy::Spin {
            builder = builder.spin_before_park(Duration::from_millis(SPIN_BEFORE_PARK_MS));
        }
        let handle = builder
            .spawn(move || run_shard(index, shard_shared, shard_links, address, ready_sender))
            .map_err(|error| anyhow::anyhow!("starting shard {index}: {error}"))?;
        handles.push(handle);
        let bound = ready_receiver.recv().context("a shard ended before listening")?;
        address = bound.map_err(|error| anyhow::anyhow!("shard {index} cannot listen on {address}: {error}"))?;
    }
    Ok(Shards { local_address: address, handles })
}

/// One shard: bind, report the bound address, accept forever.
async fn run_shard(
    index: u32,
    shared: Arc<Shared>,
    links: ShardLinks,
    address: SocketAddr,
    ready: mpsc::Sender<Result<SocketAddr, String>>,
) {
    let listener = match TcpListener::bind(address) {
        Ok(listener) => listener,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    let bound = listener.local_addr().map_err(|error| error.to_string());
    let _ = ready.send(bound);
    let record_bytes_max = shared.config.server.record_bytes_max();
    let context = Rc::new(ShardContext {
        index,
        shared,
        sessions_started: Cell::new(0),
        auth_failures_window: Cell::new((0, 0)),
        to_router: RefCell::new(links.to_router),
        router_bell: links.router_bell,
        update_buffer: RefCell::new(Vec::new()),
        encoder: RefCell::new(RecordEncoder::new(record_bytes_max)),
        connections: sharded_slab::Slab::new_with_config::<ConnectionTableConfig>(),
    });
    let bell_reader = match doorbell_reader(links.bell_reader) {
        Ok(reader) => reader,
        Err(error) => {
            tracing::error!(shard = index, %error, "cannot wait on the doorbell; acks and copies stop");
            return;
        }
    };
    glommio::spawn_local(pump_from_router(Rc::clone(&context), links.from_router, links.bell, bell_reader)).detach();
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(shard = index, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        if context.shared.is_shutting_down() {
            continue;
        }
        let Some(slot) = ConnectionSlot::take(&context.shared) else {
            tracing::warn!(shard = index, connections_max = context.shared.config.server.connections_max, "connection refused: connections_max reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection_context = Rc::clone(&context);
        glommio::spawn_local(async move {
            serve_connection(stream, connection_context).await;
            drop(slot);
        })
        .detach();
    }
}

/// The doorbell's reading end as a glommio stream (must run on the shard's
/// executor, whose reactor it registers with).
fn doorbell_reader(reader: std::os::unix::net::UnixStream) -> std::io::Result<glommio::net::UnixStream> {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    reader.set_nonblocking(true)?;
    // SAFETY: the descriptor comes from a socket we own and give up here, so
    // the glommio stream is its only owner.
    Ok(unsafe { glommio::net::UnixStream::from_raw_fd(reader.into_raw_fd()) })
}

/// Bytes of doorbell wakes read at once; wakes are one byte each, so this
/// takes any backlog in one read.
const DOORBELL_READ_BYTES: usize = 64;

/// Moves acks and copies from the router -> shard ring to their
/// connections. When the ring is empty it waits as `server.idle` says:
/// `spin` and `yield` only yield to the shard's other tasks (the executor
/// then never parks); `park` raises the shard's doorbell and waits for the
/// router's wake byte (in io_uring, no CPU) or, at most,
/// `idle_park_backoff_us_max`.
async fn pump_from_router(context: Rc<ShardContext>, mut from_router: Consumer, bell: Arc<Doorbell>, mut bell_reader: glommio::net::UnixStream) {
    use futures_lite::AsyncReadExt as _;
    let park_us_max = match context.shared.config.server.idle {
        IdleStrategy::Park { backoff_us_max } => Some(backoff_us_max.max(1)),
        IdleStrategy::Spin | IdleStrategy::Yield => None,
    };
    let mut received: Vec<(u64, Outbound)> = Vec::with_capacity(RING_BATCH_RECORDS_MAX as usize);
    let mut wakes = [0u8; DOORBELL_READ_BYTES];
    loop {
        received.clear();
        let read = from_router.read_batch(RING_BATCH_RECORDS_MAX, |record| match decode_outbound(record.kind, record.payload) {
            Ok(item) => received.push(item),
            Err(error) => tracing::error!(shard = context.index, %error, "invalid record on a router -> shard ring"),
        });
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(shard = context.index, %error, "router -> shard ring is corrupt; acks and copies stop");
                return;
            }
        };
        let now_ns = context.shared.now_ns();
        for (connection_id, message) in received.drain(..) {
            if let Outbound::Copy(_, times) = &message {
                if times.routed_ns != 0 {
                    context.shared.metrics.record(Stage::RoutedToShard, times.routed_ns, now_ns);
                }
            }
            context.deliver(connection_id, message);
        }
        if read > 0 {
            glommio::yield_if_needed().await;
            continue;
        }
        let Some(park_us_max) = park_us_max else {
            futures_lite::future::yield_now().await;
            continue;
        };
        bell.prepare_sleep();
        if matches!(from_router.peek(), Ok(Some(_))) {
            bell.awake();
            continue;
        }
        or(
            async {
                // Any outcome ends the wait: a wake byte, or an error that the
                // timeout would end anyway.
                let _ = bell_reader.read(&mut wakes).await;
            },
            glommio::timer::sleep(Duration::from_micros(park_us_max)),
        )
        .await;
        bell.awake();
    }
}

/// Decodes one router -> shard record into its connection and message.
fn decode_outbound(kind: u32, payload: &[u8]) -> Result<(u64, Outbound), String> {
    if kind == RecordKind::Ack.code() {
        let ack = access_checked::<AckRecord>(payload).map_err(|error| error.to_string())?;
        return Ok((ack.connection_id.to_native(), Outbound::Ack(ack.seq.to_native())));
    }
    if kind == RecordKind::Copy.code() {
        let record = access_checked::<CopyRecord>(payload).map_err(|error| error.to_string())?;
        let connection_id = record.connection_id.as_ref().map(|id| id.to_native()).unwrap_or(0);
        let copy = record.to_copy().map_err(|error| error.to_string())?;
        let times = CopyTimes { event_received_ns: record.event_received_ns.to_native(), routed_ns: record.routed_ns.to_native() };
        return Ok((connection_id, Outbound::Copy(Box::new(copy), times)));
    }
    Err(format!("record kind {kind}: expected an ack ({}) or a copy ({})", RecordKind::Ack.code(), RecordKind::Copy.code()))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_one_core_to_the_router() {
        assert_eq!(default_shard_count(1), 1);
        assert_eq!(default_shard_count(2), 1);
        assert_eq!(default_shard_count(8), 7);
    }

    #[test]
    fn connection_ids_are_never_zero_and_decode_to_shard_and_key() {
        // The first key of shard 0 is 0; its connection id must still not be 0 ("no connection").
        for (shard, key) in [(0u32, 0u64), (0, 7), (3, (1 << CONNECTION_KEY_BITS) - 1), (65_534, 42)] {
            let id = connection_id(shard, key);
            assert_ne!(id, 0);
            assert_eq!((connection_shard(id), connection_key(id) as u64), (shard, key));
        }
    }

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
