//! `loadtest capacity`: connect N idle EAs (masters and slaves, each with
//! its `hello`, then `snapshot` or `state`) in bounded-concurrency batches,
//! hold them with heartbeats, and report connect times and the bridge's
//! memory per connection.
//!
//! # Invariants
//! - At most `--connect-concurrency` handshakes are in flight at once.
//! - A connect time runs from the TCP connect to `welcome` (the wait for a
//!   concurrency permit is not in it; the total ramp time is reported apart).
//! - The run fails when any EA could not connect or lost its connection
//!   during the hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tradebridge_core::protocol::{Message, Role, Snapshot, State};

use super::common::{conclude, create_folder, metadata, CommonOptions, Environment};
use crate::bridge::parse_metrics;
use crate::cli::Arguments;
use crate::ea::link::{self, encode, Socket};
use crate::ea::{executor::ACCOUNT_BALANCE, leave};
use crate::fleet::{Account, Fleet};
use crate::procfs::{self, Memory};
use crate::report::{append_index_row, latency_summary};
use crate::stats::histogram;
use crate::trades::symbol_specs;

/// What the capacity EAs share.
struct Shared {
    url: String,
    permits: Semaphore,
    connected: AtomicU64,
    failed: AtomicU64,
    /// Connections lost after their welcome.
    lost: AtomicU64,
    /// True once the orchestrator ends the hold.
    stop: watch::Sender<bool>,
    errors: Mutex<Vec<String>>,
}

/// Errors kept for the report.
const ERRORS_KEPT_MAX: usize = 10;

impl Shared {
    fn note(&self, text: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if errors.len() < ERRORS_KEPT_MAX {
            errors.push(text);
        }
    }
}

/// Flags of the scenario.
struct Shape {
    eas: u32,
    slaves_per_master: u32,
    concurrency: u32,
    hold_secs: f64,
    connect_timeout: Duration,
}

pub fn capacity(arguments: &Arguments) -> anyhow::Result<u8> {
    let common = CommonOptions::parse(arguments)?;
    let shape = Shape {
        eas: arguments.checked("--eas", 10_000u32, "2 to 1000000 EAs", |value| (2..=1_000_000).contains(&value))?,
        slaves_per_master: arguments.checked("--slaves-per-master", 9u32, "0 to 10000", |value| value <= 10_000)?,
        concurrency: arguments.checked("--connect-concurrency", 100u32, "1 to 10000 handshakes at once", |value| (1..=10_000).contains(&value))?,
        hold_secs: arguments.checked("--hold-secs", 10.0f64, "0 to 86400 seconds", |value: f64| (0.0..=86_400.0).contains(&value))?,
        connect_timeout: Duration::from_secs(arguments.checked("--connect-timeout-secs", 300u64, "1 to 3600 seconds", |value| (1..=3600).contains(&value))?),
    };
    arguments.finish()?;
    let machine = procfs::machine();
    let open_files = procfs::raise_open_files_limit()?;
    let generate = || {
        let masters = shape.eas.div_ceil(1 + shape.slaves_per_master);
        let mut fleet = Fleet::generate(masters, shape.slaves_per_master)?;
        let slaves = shape.eas as usize - fleet.masters.len();
        fleet.slaves.truncate(slaves);
        fleet.follows.retain(|follow| (follow.slave as usize) < slaves);
        Ok(fleet)
    };
    let mut environment = Environment::prepare(&common, common.bridge, generate, 1.0)?;
    let accounts: Vec<Account> = environment.fleet.masters.iter().chain(&environment.fleet.slaves).cloned().collect();
    eprintln!("loadtest: capacity: {} EAs against {} (open files limit {open_files})", accounts.len(), environment.url);
    let outcome = hold(&environment, &accounts, &shape, &common)?;
    let stop = environment.stop();
    report(&common, &machine, &environment, &shape, outcome, stop.as_ref())
}

/// What the hold measured.
struct Outcome {
    connect_us: Histogram<u64>,
    ramp_seconds: f64,
    connected: u64,
    failed: u64,
    lost: u64,
    bridge_before: Option<Memory>,
    bridge_connected: Option<Memory>,
    bridge_after: Option<Memory>,
    bridge_hold_cpu_seconds: Option<f64>,
    harness_ramp_cpu_seconds: f64,
    harness_memory: Option<Memory>,
    errors: Vec<String>,
    metrics: Option<serde_json::Value>,
}

fn hold(environment: &Environment, accounts: &[Account], shape: &Shape, common: &CommonOptions) -> anyhow::Result<Outcome> {
    let memory = |pid: Option<u32>| pid.and_then(|pid| procfs::memory(&pid.to_string()).ok());
    let cpu = |pid: Option<u32>| pid.and_then(|pid| procfs::cpu_seconds(&pid.to_string()).ok());
    let bridge_before = memory(environment.pid);
    let shared = Arc::new(Shared {
        url: environment.url.clone(),
        permits: Semaphore::new(shape.concurrency as usize),
        connected: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        stop: watch::Sender::new(false),
        errors: Mutex::new(Vec::new()),
    });
    let harness_before = procfs::cpu_seconds("self")?;
    let started = Instant::now();
    let threads = common.client_threads as usize;
    let mut handles = Vec::new();
    for thread in 0..threads {
        let mine: Vec<Account> = accounts.iter().skip(thread).step_by(threads).cloned().collect();
        let shared = Arc::clone(&shared);
        handles.push(std::thread::Builder::new().name(format!("loadtest-capacity-{thread}")).spawn(move || client_thread(shared, mine))?);
    }
    let total = accounts.len() as u64;
    let mut last_print = Instant::now();
    while shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < total && started.elapsed() < shape.connect_timeout {
        std::thread::sleep(Duration::from_millis(5));
        if common.progress && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!("[{:>4} s] connected {} failed {} of {total}", started.elapsed().as_secs(), shared.connected.load(Ordering::Relaxed), shared.failed.load(Ordering::Relaxed));
        }
    }
    let ramp_seconds = started.elapsed().as_secs_f64();
    let harness_ramp_cpu_seconds = procfs::cpu_seconds("self")? - harness_before;
    let bridge_connected = memory(environment.pid);
    let cpu_before = cpu(environment.pid);
    std::thread::sleep(Duration::from_secs_f64(shape.hold_secs));
    let bridge_hold_cpu_seconds = cpu_before.zip(cpu(environment.pid)).map(|(before, after)| after - before);
    let bridge_after = memory(environment.pid);
    let metrics = environment.metrics.map(|address| crate::bridge::scrape_metrics(address).map(|text| parse_metrics(&text)).unwrap_or_else(|error| json!({ "error": format!("{error:#}") })));
    let harness_memory = procfs::memory("self").ok();
    shared.stop.send_replace(true);
    let mut connect_us = histogram();
    for handle in handles {
        let thread_histogram = handle.join().map_err(|_| anyhow::anyhow!("a capacity client thread panicked"))?;
        connect_us.add(&thread_histogram).expect("equal bounds");
    }
    let errors = shared.errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    Ok(Outcome {
        connect_us,
        ramp_seconds,
        connected: shared.connected.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        lost: shared.lost.load(Ordering::Relaxed),
        bridge_before,
        bridge_connected,
        bridge_after,
        bridge_hold_cpu_seconds,
        harness_ramp_cpu_seconds,
        harness_memory,
        errors,
        metrics,
    })
}

/// One client thread's EAs; returns its connect-time histogram.
fn client_thread(shared: Arc<Shared>, accounts: Vec<Account>) -> Histogram<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let connect_us = Arc::new(Mutex::new(histogram()));
    runtime.block_on(async {
        let tasks: Vec<_> = accounts.into_iter().map(|account| tokio::spawn(idle_ea(Arc::clone(&shared), account, Arc::clone(&connect_us)))).collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    let histogram = connect_us.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    histogram
}

/// One idle EA: connect, introduce itself, ping until the stop.
async fn idle_ea(shared: Arc<Shared>, account: Account, connect_us: Arc<Mutex<Histogram<u64>>>) {
    let permit = shared.permits.acquire().await.expect("the semaphore is never closed");
    let started = Instant::now();
    let connected = link::connect(&shared.url, &link::hello(&account, 0)).await;
    let (mut socket, welcome) = match connected {
        Ok(pair) => pair,
        Err(error) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            shared.note(format!("{} {}: {error:#}", account.role.as_str(), account.login));
            return;
        }
    };
    let introduction = match account.role {
        Role::Master => Message::Snapshot(Snapshot { positions: Vec::new(), balance: 100_000.0, equity: 100_000.0, currency: "USD".into() }),
        Role::Slave => Message::State(State { balance: ACCOUNT_BALANCE, equity: ACCOUNT_BALANCE, currency: "USD".into(), positions: Vec::new(), symbols: Some(symbol_specs()) }),
    };
    if socket.send(encode(&introduction)).await.is_err() {
        shared.failed.fetch_add(1, Ordering::Relaxed);
        shared.note(format!("{} {}: sending the introduction failed", account.role.as_str(), account.login));
        return;
    }
    connect_us.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).saturating_record(started.elapsed().as_micros() as u64);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let socket = idle(&shared, &account, socket, Duration::from_millis(welcome.hb_ms.max(100))).await;
    leave(socket).await;
}

/// Pings every `hb` and reads until the stop; returns the socket if it is
/// still open.
async fn idle(shared: &Shared, account: &Account, mut socket: Socket, hb: Duration) -> Option<Socket> {
    let mut stop = shared.stop.subscribe();
    let mut ping_at = Instant::now() + hb;
    loop {
        if *stop.borrow_and_update() {
            return Some(socket);
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep_until(ping_at.into()) => {
                ping_at = Instant::now() + hb;
                if socket.send(encode(&Message::Ping)).await.is_err() {
                    shared.lost.fetch_add(1, Ordering::Relaxed);
                    shared.note(format!("{} {}: sending a ping failed", account.role.as_str(), account.login));
                    return None;
                }
            }
            received = link::receive(&mut socket) => match received {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    shared.lost.fetch_add(1, Ordering::Relaxed);
                    let reason = received.err().map_or_else(|| "closed".to_string(), |error| format!("{error:#}"));
                    shared.note(format!("{} {}: lost during the hold: {reason}", account.role.as_str(), account.login));
                    return None;
                }
            },
        }
    }
}

fn report(common: &CommonOptions, machine: &procfs::Machine, environment: &Environment, shape: &Shape, outcome: Outcome, stop: Option<&crate::bridge::StopOutcome>) -> anyhow::Result<u8> {
    let total = u64::from(shape.eas);
    let mut failures = Vec::new();
    if outcome.connected < total {
        failures.push(format!("only {} of {total} EAs connected ({} failed; first error: {})", outcome.connected, outcome.failed, outcome.errors.first().map_or("-", String::as_str)));
    }
    if outcome.lost > 0 {
        failures.push(format!("{} connections were lost after their welcome (first: {})", outcome.lost, outcome.errors.first().map_or("-", String::as_str)));
    }
    if let Some(stop) = stop.filter(|stop| !stop.is_clean() && environment.kind == crate::bridge::BridgeKind::Tradebridge) {
        failures.push(format!("tradebridge did not exit cleanly after SIGTERM: exit code {:?}, signal {:?}, killed {}", stop.exit_code, stop.signal, stop.killed));
    }
    let per_connection_kib = outcome.bridge_before.zip(outcome.bridge_connected).map(|(before, after)| (after.rss_kib as f64 - before.rss_kib as f64) / outcome.connected.max(1) as f64);
    let parameters = json!({ "eas": shape.eas, "slaves_per_master": shape.slaves_per_master, "connect_concurrency": shape.concurrency, "hold_secs": shape.hold_secs, "client_threads": common.client_threads, "hb_ms": common.hb_ms });
    let mut summary = metadata("capacity", common, parameters, machine);
    summary["capacity"] = json!({
        "bridge": environment.kind.name(), "binary": environment.binary(), "connected": outcome.connected, "failed": outcome.failed, "lost_during_hold": outcome.lost,
        "ramp_seconds": outcome.ramp_seconds, "connect_ms": latency_summary(&outcome.connect_us),
        "bridge_memory_kib": { "before": outcome.bridge_before, "all_connected": outcome.bridge_connected, "after_hold": outcome.bridge_after },
        "bridge_rss_kib_per_connection": per_connection_kib, "bridge_hold_cpu_seconds": outcome.bridge_hold_cpu_seconds,
        "bridge_hold_cores": outcome.bridge_hold_cpu_seconds.map(|cpu| cpu / shape.hold_secs.max(1e-9)),
        "harness_ramp_cpu_seconds": outcome.harness_ramp_cpu_seconds, "harness_memory_kib": outcome.harness_memory,
        "error_examples": outcome.errors, "bridge_metrics": outcome.metrics, "bridge_exit": stop,
        "budget_gate": "not applicable: no trades in this scenario",
    });
    summary["result"] = json!({ "pass": failures.is_empty(), "failures": failures });
    let folder = create_folder(common, "capacity", &environment.config_text)?;
    folder.write_summary(&summary)?;
    folder.write_hgrm("connect_time", "connect time: TCP connect -> welcome received (and the snapshot or state sent)", &outcome.connect_us)?;
    let title = format!("capacity: {} idle EAs, {} handshakes at once", shape.eas, shape.concurrency);
    folder.write_plot("connect_time", &title, &[("connect time", &outcome.connect_us)])?;
    let milliseconds = |quantile: f64| outcome.connect_us.value_at_quantile(quantile) as f64 / 1000.0;
    let rss = outcome.bridge_connected.map_or_else(|| "bridge RSS unknown".into(), |memory| format!("bridge RSS {:.1} MiB ({:.1} KiB per connection)", memory.rss_kib as f64 / 1024.0, per_connection_kib.unwrap_or(0.0)));
    let line = format!(
        "capacity: {}/{} connected in {:.1} s, connect p50 {:.2} p99 {:.2} max {:.2} ms, {} lost during {} s hold; {rss}",
        outcome.connected,
        total,
        outcome.ramp_seconds,
        milliseconds(0.5),
        milliseconds(0.99),
        outcome.connect_us.max() as f64 / 1000.0,
        outcome.lost,
        shape.hold_secs
    );
    let verdict = if failures.is_empty() { "PASS" } else { "FAIL" };
    let notes: Vec<String> = summary["notes"].as_array().map(|notes| notes.iter().filter_map(|note| note.as_str().map(String::from)).collect()).unwrap_or_default();
    let cells = [format!("[{}]({}/)", folder.name, folder.name), title, format!("`{}`", crate::report::command_line()), format!("{verdict}: {line}"), notes.join("; ")];
    append_index_row(&common.out_dir, &cells)?;
    Ok(conclude(&line, &failures, Some(&folder.path)))
}
