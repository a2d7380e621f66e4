//! The shards: one glommio executor per shard, pinned to a core, each with
//! its own listener on the same port (SO_REUSEPORT, which glommio's
//! `TcpListener::bind` sets) and owning the connections it accepts.
//!
//! # Layout
//! - What the sessions work with ([`crate::context::Shared`],
//!   [`crate::context::ShardContext`]) is in [`crate::context`].
//! - [`start`]: binds and starts every shard, returns once all listen; with
//!   [`InlineRouter`] the routing core runs as a task on shard 0.
//! - `RouterDrain`: moves acks and copies from a router -> shard ring to the
//!   connections they are for.
//! - `pump_from_router`: a shard's task that runs the drain with the
//!   configured idle strategy; shard 0 has none when the router is inline
//!   (the router drains its ring after each pass).
//!
//! # Invariants
//! - Shard 0 binds first; the others bind the address it resolved, so a
//!   configured port 0 still gives one port for all shards.
//! - The number of open EA connections never exceeds `connections_max`: a
//!   connection over the limit is dropped before the upgrade, as is one
//!   over the front door's budgets (`crate::front_door`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_lite::future::or;
use glommio::net::TcpListener;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use tradebridge_core::config::{Config, IdleStrategy, Routing};
use tradebridge_core::record::{access_checked, CopyRecord, AckRecord, RecordKind};
use tradebridge_core::ring::Consumer;

use crate::context::{ConnectionSlot, CopyTimes, Outbound, ShardContext, Shared};
use crate::doorbell::Doorbell;
use crate::front_door::{Admitted, Refusal};
use crate::links::{cores, routing, ShardLinks, RING_BATCH_RECORDS_MAX};
use crate::metrics::Stage;
use crate::router::Router;
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
///
/// With the routing core inline (see [`routing`]) the default is one shard:
/// every session then shares the thread with the router, and no event
/// crosses threads.
pub fn shard_count(config: &Config) -> u32 {
    if config.server.shards > 0 {
        return config.server.shards;
    }
    default_shard_count(cores(), routing(config))
}

/// One shard with the router inline; one per core but one, at least one,
/// with the router on its own thread; see [`shard_count`].
fn default_shard_count(cores: usize, routing: Routing) -> u32 {
    match routing {
        Routing::Inline => 1,
        Routing::Auto | Routing::Thread => cores.saturating_sub(1).max(1) as u32,
    }
}

/// The routing core to run as a task on shard 0 (`routing = "inline"`).
pub struct InlineRouter {
    pub router: Router,
    /// Set to stop it; it then flushes the journal and reports on `done`.
    pub stop: Arc<AtomicBool>,
    /// Where the task reports how it ended (after `stop`; an error before
    /// ends the process, as a router thread's does).
    pub done: mpsc::Sender<anyhow::Result<()>>,
}

/// Starts every shard and returns once all of them listen; `inline`, when
/// given, runs on shard 0 in place of its pump.
pub fn start(shared: Arc<Shared>, links: Vec<ShardLinks>, inline: Option<InlineRouter>) -> anyhow::Result<Shards> {
    let count = shard_count(&shared.config);
    assert_eq!(links.len(), count as usize, "one pair of rings per shard");
    let mut links = links.into_iter();
    let mut inline = inline;
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
        let shard_inline = inline.take();
        let handle = builder
            .spawn(move || run_shard(index, shard_shared, shard_links, shard_inline, address, ready_sender))
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
    inline: Option<InlineRouter>,
    address: SocketAddr,
    ready: mpsc::Sender<Result<SocketAddr, String>>,
) {
    // The inline routing core runs on this thread too.
    crate::hot_thread::apply(shared.config.server.hot_thread_slice_us, "shard");
    let listener = match TcpListener::bind(address) {
        Ok(listener) => listener,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    let bound = listener.local_addr().map_err(|error| error.to_string());
    let _ = ready.send(bound);
    let context = Rc::new(ShardContext::new(index, shared, links.to_router, links.router_bell));
    if let Some(inline) = inline {
        // The router delivers to this shard's connections itself after each
        // pass: no pump, no wake between threads.
        let mut drain = RouterDrain::new(Rc::clone(&context), links.from_router);
        let deliver = move || {
            match drain.drain() {
                Some(read) => read > 0,
                // Logged by the drain; no ack or copy could reach this
                // shard again, so the process ends as for a failed router.
                None => crate::router::exit_stopped(&anyhow::anyhow!("the router -> shard 0 ring is corrupt")),
            }
        };
        glommio::spawn_local(async move {
            let result = inline.router.run_inline(inline.stop, deliver).await;
            if let Err(error) = &result {
                crate::router::exit_stopped(error);
            }
            let _ = inline.done.send(result);
        })
        .detach();
    } else {
        let bell_reader = match doorbell_reader(links.bell_reader) {
            Ok(reader) => reader,
            Err(error) => {
                tracing::error!(shard = index, %error, "cannot wait on the doorbell; acks and copies stop");
                return;
            }
        };
        glommio::spawn_local(pump_from_router(Rc::clone(&context), links.from_router, links.bell, bell_reader)).detach();
    }
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
        let peer = stream.peer_addr().ok().map(|address| address.ip());
        let now_ms = context.shared.now_ms();
        let front_door = &context.shared.front_door;
        let Some(slot) = ConnectionSlot::take(&context.shared) else {
            front_door.refused(Refusal::ConnectionsMax, peer, index, now_ms);
            continue;
        };
        let admitted = match front_door.admit(peer, now_ms) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                front_door.refused(refusal, peer, index, now_ms);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection_context = Rc::clone(&context);
        glommio::spawn_local(async move {
            let Admitted { pending, address } = admitted;
            serve_connection(stream, connection_context, pending).await;
            drop(address);
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
async fn pump_from_router(context: Rc<ShardContext>, from_router: Consumer, bell: Arc<Doorbell>, mut bell_reader: glommio::net::UnixStream) {
    use futures_lite::AsyncReadExt as _;
    let park_us_max = match context.shared.config.server.idle {
        IdleStrategy::Park { backoff_us_max } => Some(backoff_us_max.max(1)),
        IdleStrategy::Spin | IdleStrategy::Yield => None,
    };
    let mut drain = RouterDrain::new(Rc::clone(&context), from_router);
    let mut wakes = [0u8; DOORBELL_READ_BYTES];
    loop {
        let Some(read) = drain.drain() else {
            return;
        };
        if read > 0 {
            glommio::yield_if_needed().await;
            continue;
        }
        let Some(park_us_max) = park_us_max else {
            futures_lite::future::yield_now().await;
            continue;
        };
        bell.prepare_sleep();
        if drain.has_input() {
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

/// Moves what the router -> shard ring holds to the connections it is for:
/// the pump's work, and the inline router's after each of its passes.
struct RouterDrain {
    context: Rc<ShardContext>,
    from_router: Consumer,
    /// One batch, decoded; reused.
    received: Vec<(u64, Outbound)>,
}

impl RouterDrain {
    fn new(context: Rc<ShardContext>, from_router: Consumer) -> RouterDrain {
        RouterDrain { context, from_router, received: Vec::with_capacity(RING_BATCH_RECORDS_MAX as usize) }
    }

    /// Delivers up to [`RING_BATCH_RECORDS_MAX`] records; how many, or
    /// `None` when the ring is corrupt (logged: acks and copies stop).
    fn drain(&mut self) -> Option<u32> {
        let (context, received) = (&self.context, &mut self.received);
        received.clear();
        let read = self.from_router.read_batch(RING_BATCH_RECORDS_MAX, |record| match decode_outbound(record.kind, record.payload) {
            Ok(item) => received.push(item),
            Err(error) => tracing::error!(shard = context.index, %error, "invalid record on a router -> shard ring"),
        });
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(shard = context.index, %error, "router -> shard ring is corrupt; acks and copies stop");
                return None;
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
        Some(read)
    }

    /// True when the ring holds a record.
    fn has_input(&self) -> bool {
        matches!(self.from_router.peek(), Ok(Some(_)))
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
    fn the_default_leaves_one_core_to_a_router_thread_and_runs_one_shard_with_it_inline() {
        assert_eq!(default_shard_count(1, Routing::Thread), 1);
        assert_eq!(default_shard_count(2, Routing::Thread), 1);
        assert_eq!(default_shard_count(8, Routing::Thread), 7);
        assert_eq!(default_shard_count(8, Routing::Inline), 1);
    }
}
