//! `loadtest floor`: what this machine's kernel and scheduler cost the
//! bridge's internal path before the bridge does any work, measured
//! without a bridge.
//!
//! The bridge's `event_to_copy_sent` runs from a master frame received by a
//! shard to each follower's `copy` written to its socket: a wake of the
//! router, a wake of the follower's shard, and then one loopback `send` per
//! follower, one after the other on that shard. This scenario does exactly
//! that with no routing, no journal and no WebSocket layer in between:
//! - a "receiving" thread stamps the time and wakes a "router" thread
//!   (`std::thread::park` / `unpark`, a futex, as the bridge's shards wake
//!   its router);
//! - the router wakes a "writing" thread the same way (the bridge wakes a
//!   shard through a socket and io_uring, which is slower: this is a lower
//!   bound);
//! - the writing thread sends one copy-sized WebSocket frame to each of
//!   `--copies` TCP loopback connections, as one shard writes a master's
//!   followers, and stamps each send's return;
//! - one reader thread (a tokio current-thread runtime, like the harness's
//!   client thread) reads every connection.
//!
//! Rounds start `--gap-us` apart, so each wake finds its thread asleep, as
//! the bridge's threads are between events at 1,000 events/s.
//!
//! # Invariants
//! - Times are from the round's stamp on the receiving thread; `copy_written`
//!   holds one value per copy (the k-th send's return), `wake` one per round
//!   (the router's first instruction after its wake).
//! - The run fails only when a socket fails or the reader did not receive
//!   every byte sent; the figures themselves have no verdict.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::AsyncReadExt as _;
use tradebridge_core::protocol::{self, Copy, CopyAction, Message, Side};

use super::common::conclude;
use crate::cli::Arguments;
use crate::procfs;
use crate::report::{self, append_index_row, latency_summary, RunFolder};
use crate::stats::histogram;

/// Flags of the scenario.
struct Shape {
    copies: u32,
    rounds: u32,
    gap: Duration,
}

pub fn floor(arguments: &Arguments) -> anyhow::Result<u8> {
    let shape = Shape {
        copies: arguments.checked("--copies", 10u32, "1 to 1000 copies per round", |value| (1..=1_000).contains(&value))?,
        rounds: arguments.checked("--rounds", 10_000u32, "1 to 10000000 rounds", |value| (1..=10_000_000).contains(&value))?,
        gap: Duration::from_micros(arguments.checked("--gap-us", 1_000u64, "10 to 1000000 microseconds", |value| (10..=1_000_000).contains(&value))?),
    };
    let out_dir = std::path::PathBuf::from(arguments.text("--out-dir").unwrap_or_else(|| "bench-results".into()));
    let tag = arguments.text("--tag");
    let notes: Vec<String> = arguments.text("--notes").into_iter().collect();
    arguments.finish()?;
    let machine = procfs::machine();
    let frame = copy_frame();
    let outcome = measure(&shape, &frame)?;

    let mut failures = Vec::new();
    if outcome.bytes_received != outcome.bytes_sent {
        failures.push(format!("the reader received {} of {} bytes sent", outcome.bytes_received, outcome.bytes_sent));
    }
    let mut summary = json!({
        "scenario": "floor",
        "command": report::command_line(),
        "commit": report::commit(),
        "date_utc": report::utc_timestamp(),
        "machine": machine,
        "parameters": { "copies": shape.copies, "rounds": shape.rounds, "gap_us": shape.gap.as_micros() as u64, "frame_bytes": frame.len() },
        "notes": notes,
    });
    summary["floor"] = json!({
        "what": "no bridge: a futex wake to a router thread, a futex wake to a writing thread, then one loopback send per copy; times from the first wake's stamp",
        "wake_ms": latency_summary(&outcome.wake_us),
        "send_ms": latency_summary(&outcome.send_us),
        "copy_written_ms": latency_summary(&outcome.copy_written_us),
        "last_copy_written_ms": latency_summary(&outcome.last_copy_written_us),
        "bytes_sent": outcome.bytes_sent,
        "bytes_received": outcome.bytes_received,
    });
    summary["result"] = json!({ "pass": failures.is_empty(), "failures": failures });
    let folder = RunFolder::create(&out_dir, "floor", tag.as_deref())?;
    folder.write("commands.txt", &format!("$ {}\n", report::command_line()))?;
    folder.write_summary(&summary)?;
    folder.write_hgrm("wake", "one futex wake: stamp on the receiving thread -> the woken router thread runs", &outcome.wake_us)?;
    folder.write_hgrm("send", "one loopback send of a copy frame: call -> return", &outcome.send_us)?;
    folder.write_hgrm("copy_written", "per copy: stamp -> router woken -> writer woken -> this copy's send returned (the floor of the bridge's event_to_copy_sent)", &outcome.copy_written_us)?;
    folder.write_hgrm("last_copy_written", "per round: stamp -> the last copy's send returned", &outcome.last_copy_written_us)?;
    let title = format!("floor: 2 wakes + {} loopback sends per round, {} rounds {} us apart", shape.copies, shape.rounds, shape.gap.as_micros());
    folder.write_plot("floor", &title, &[("per copy", &outcome.copy_written_us), ("last copy", &outcome.last_copy_written_us), ("one wake", &outcome.wake_us)])?;
    let micros = |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile);
    let line = format!(
        "floor: wake p50 {} p99 {} us; one send p50 {} p99 {} us; per copy (2 wakes + up to {} sends) p50 {} p99 {} p99.9 {} us; last copy p99 {} us",
        micros(&outcome.wake_us, 0.5),
        micros(&outcome.wake_us, 0.99),
        micros(&outcome.send_us, 0.5),
        micros(&outcome.send_us, 0.99),
        shape.copies,
        micros(&outcome.copy_written_us, 0.5),
        micros(&outcome.copy_written_us, 0.99),
        micros(&outcome.copy_written_us, 0.999),
        micros(&outcome.last_copy_written_us, 0.99),
    );
    let verdict = if failures.is_empty() { "PASS" } else { "FAIL" };
    let cells = [format!("[{}]({}/)", folder.name, folder.name), title, format!("`{}`", report::command_line()), format!("{verdict}: {line}"), notes.join("; ")];
    append_index_row(&out_dir, &cells)?;
    Ok(conclude(&line, &failures, Some(&folder.path)))
}

/// A `copy` frame as the bridge writes it: a server-to-client (unmasked)
/// WebSocket text frame around a typical `copy`.
fn copy_frame() -> Vec<u8> {
    let copy = Copy {
        seq: 123_456,
        id: "c-1a20db11855-123456-4000034".into(),
        master: 3_000_009,
        pos: 987_654_321,
        action: CopyAction::Open,
        symbol: "EURUSD".into(),
        side: Side::Buy,
        volume: 0.37,
        price: 1.08765,
        max_dev: 0.0005,
        sl: 1.08265,
        tp: 1.09765,
        magic: 20_261_124,
        comment: "tc:3000009:987654321".into(),
        expires_ms: 1_795_526_039_581,
    };
    let mut payload = Vec::with_capacity(512);
    protocol::write(&Message::Copy(copy), &mut payload);
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.push(0x81);
    if payload.len() < 126 {
        frame.push(payload.len() as u8);
    } else {
        frame.push(126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&payload);
    frame
}

/// What the threads measured.
struct Outcome {
    wake_us: Histogram<u64>,
    send_us: Histogram<u64>,
    copy_written_us: Histogram<u64>,
    last_copy_written_us: Histogram<u64>,
    bytes_sent: u64,
    bytes_received: u64,
}

/// What the writing thread measured.
struct Written {
    send_us: Histogram<u64>,
    copy_written_us: Histogram<u64>,
    last_copy_written_us: Histogram<u64>,
    bytes_sent: u64,
}

/// A thread's wake flag: set, then unpark; the sleeper parks until it sees
/// the flag (park may return spuriously).
struct Bell {
    rung: AtomicBool,
    thread: std::sync::OnceLock<Thread>,
}

impl Bell {
    fn new() -> Bell {
        Bell { rung: AtomicBool::new(false), thread: std::sync::OnceLock::new() }
    }

    fn attach(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn wait(&self) {
        while !self.rung.swap(false, Ordering::AcqRel) {
            std::thread::park();
        }
    }

    /// Like [`Bell::wait`], for at most `timeout`; false when it passed.
    fn wait_for(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.rung.swap(false, Ordering::AcqRel) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::park_timeout(deadline - now);
        }
        true
    }
}

/// What the receiving thread shares with the router and the writer.
struct Pipeline {
    started: Instant,
    /// The current round's stamp, nanoseconds since `started`.
    stamp_ns: AtomicU64,
    router: Bell,
    writer: Bell,
    /// Rung by the writer when a round is written, after its last stamp.
    done: Bell,
    stop: AtomicBool,
}

impl Pipeline {
    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

fn measure(shape: &Shape, frame: &[u8]) -> anyhow::Result<Outcome> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let address = listener.local_addr()?;
    let mut senders = Vec::with_capacity(shape.copies as usize);
    let mut receivers = Vec::with_capacity(shape.copies as usize);
    for _ in 0..shape.copies {
        let sender = TcpStream::connect(address).context("connecting a loopback socket")?;
        sender.set_nodelay(true)?;
        let (receiver, _) = listener.accept().context("accepting a loopback socket")?;
        receiver.set_nonblocking(true)?;
        senders.push(sender);
        receivers.push(receiver);
    }
    let bytes_received = Arc::new(AtomicU64::new(0));
    let reader = {
        let bytes_received = Arc::clone(&bytes_received);
        std::thread::Builder::new().name("floor-reader".into()).spawn(move || read_all(receivers, &bytes_received))?
    };

    let pipeline = Arc::new(Pipeline {
        started: Instant::now(),
        stamp_ns: AtomicU64::new(0),
        router: Bell::new(),
        writer: Bell::new(),
        done: Bell::new(),
        stop: AtomicBool::new(false),
    });
    let (attached_sender, attached) = std::sync::mpsc::channel::<()>();
    let router = {
        let pipeline = Arc::clone(&pipeline);
        let attached_sender = attached_sender.clone();
        std::thread::Builder::new().name("floor-router".into()).spawn(move || {
            pipeline.router.attach();
            let _ = attached_sender.send(());
            let mut wake_us = histogram();
            loop {
                pipeline.router.wait();
                let woken_ns = pipeline.now_ns();
                if pipeline.stop.load(Ordering::Acquire) {
                    return wake_us;
                }
                wake_us.saturating_record(woken_ns.saturating_sub(pipeline.stamp_ns.load(Ordering::Acquire)) / 1_000);
                pipeline.writer.ring();
            }
        })?
    };
    let writer = {
        let pipeline = Arc::clone(&pipeline);
        let frame = frame.to_vec();
        std::thread::Builder::new().name("floor-writer".into()).spawn(move || -> anyhow::Result<Written> {
            pipeline.writer.attach();
            let _ = attached_sender.send(());
            let (mut send_us, mut copy_written_us, mut last_copy_written_us) = (histogram(), histogram(), histogram());
            let mut bytes_sent = 0u64;
            loop {
                pipeline.writer.wait();
                if pipeline.stop.load(Ordering::Acquire) {
                    return Ok(Written { send_us, copy_written_us, last_copy_written_us, bytes_sent });
                }
                let stamp_ns = pipeline.stamp_ns.load(Ordering::Acquire);
                let mut written_ns = stamp_ns;
                for sender in &mut senders {
                    let before_ns = pipeline.now_ns();
                    sender.write_all(&frame).context("a loopback send failed")?;
                    written_ns = pipeline.now_ns();
                    bytes_sent += frame.len() as u64;
                    send_us.saturating_record((written_ns - before_ns) / 1_000);
                    copy_written_us.saturating_record(written_ns.saturating_sub(stamp_ns) / 1_000);
                }
                last_copy_written_us.saturating_record(written_ns.saturating_sub(stamp_ns) / 1_000);
                pipeline.done.ring();
            }
        })?
    };
    for _ in 0..2 {
        attached.recv().context("a floor thread ended before it started")?;
    }

    pipeline.done.attach();
    let mut failure = None;
    for round in 0..shape.rounds {
        std::thread::sleep(shape.gap);
        pipeline.stamp_ns.store(pipeline.now_ns(), Ordering::Release);
        pipeline.router.ring();
        // The next round starts a gap after this one is written, so each
        // wake finds its thread asleep.
        if !pipeline.done.wait_for(ROUND_TIMEOUT) {
            failure = Some(format!("round {round} was not written within {} s", ROUND_TIMEOUT.as_secs()));
            break;
        }
    }
    pipeline.stop.store(true, Ordering::Release);
    pipeline.router.ring();
    pipeline.writer.ring();
    let wake_us = router.join().map_err(|_| anyhow::anyhow!("the floor router thread panicked"))?;
    let Written { send_us, copy_written_us, last_copy_written_us, bytes_sent } = writer.join().map_err(|_| anyhow::anyhow!("the floor writer thread panicked"))??;
    if let Some(failure) = failure {
        bail!(failure);
    }
    // The writer's sockets closed with it: the reader sees every stream end.
    reader.join().map_err(|_| anyhow::anyhow!("the floor reader thread panicked"))??;
    Ok(Outcome { wake_us, send_us, copy_written_us, last_copy_written_us, bytes_sent, bytes_received: bytes_received.load(Ordering::Acquire) })
}

/// How long one round may take before the run is given up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads every connection to its end on one tokio current-thread runtime.
fn read_all(receivers: Vec<TcpStream>, bytes_received: &AtomicU64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().context("the reader's runtime")?;
    runtime.block_on(async {
        let mut tasks = Vec::with_capacity(receivers.len());
        for receiver in receivers {
            let mut stream = tokio::net::TcpStream::from_std(receiver).context("a loopback socket for the reader")?;
            tasks.push(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                let mut total = 0u64;
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) => return Ok::<u64, std::io::Error>(total),
                        Ok(read) => total += read as u64,
                        Err(error) => return Err(error),
                    }
                }
            });
        }
        for result in futures_util::future::join_all(tasks).await {
            bytes_received.fetch_add(result.context("reading a loopback socket")?, Ordering::AcqRel);
        }
        Ok(())
    })
}
