//! One trading run against one bridge: start the simulated EAs on their
//! client threads, wait until all are connected, follow the plan phase by
//! phase (sampling CPU at each boundary), drain, stop, and account.
//!
//! # Layout
//! - [`TradingConfig`]: how the EAs behave (threads, positions, churn,
//!   stall, timeouts).
//! - [`PhaseSpec`] and [`NextPhase`]: the phases to run, and the hook a
//!   ramp uses to decide the next one from the last one's result.
//! - [`run_trading`]: the whole run; returns a [`TradingOutcome`].
//! - [`PhaseObserver`]: told when each phase begins and sending ends (the
//!   persister's monitor, `--persist`).
//! - `client_thread`: one thread, one current-thread tokio runtime, its
//!   share of the EAs.
//! - `Sampler`: once a second, the end-to-end latency of the second just
//!   ended as a [`TimelineSample`] (returned in
//!   [`TradingOutcome::timeline`]), and with `progress` the progress line.
//!
//! # Invariants
//! - Each client thread runs a current-thread runtime: an EA's tasks never
//!   move between threads, so `--client-threads` is exactly the harness's
//!   parallelism and its CPU is accountable; cross-thread state is only
//!   atomics and the per-thread stats mutexes.
//! - Every wait is bounded (ready, drain, thread join by the stage).
//! - The run stops its EAs before returning, whatever happened.
//! - The sampler runs through every run, from before the EAs start until
//!   they stop, on a fixed one-second grid (a late wake-up does not shift
//!   the following samples); it alone reads the interval histograms.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

use crate::accounting::{reconcile, Counts, SlaveAccount};
use crate::bridge::{parse_metrics, scrape_metrics};
use crate::ea::executor::{self, SlaveReport, SlaveSetup};
use crate::ea::monitor::{self, MasterReport, MasterSetup};
use crate::ea::shared::{Counters, MasterTable, PhaseCounters, RunShared, Stage};
use crate::ea::Churn;
use crate::fleet::Fleet;
use crate::procfs::{self, Memory};
use crate::schedule::{Phase, Plan};
use crate::stats::{merged_phase, take_interval, PhaseLatencies, SharedStats, TimelineSample};
use crate::trades::{expected_open_units, PositionTraits, Slot, SYMBOLS, TRAITS_PERIOD};

/// Time between the last EA's welcome and the first scheduled event: lets
/// the bridge take in every slave's `state` before copies are sized.
pub const START_LEAD: Duration = Duration::from_millis(500);

/// Gap before a phase the orchestrator adds after a decision (ramp).
pub const PHASE_GAP: Duration = Duration::from_millis(200);

/// Longest wait, after a ramp step, for its copies before judging it.
pub const STEP_SETTLE_MAX: Duration = Duration::from_secs(3);

/// Time between two samples of the latency timeline (and progress lines).
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// How the simulated EAs behave.
#[derive(Clone, Debug)]
pub struct TradingConfig {
    /// Client threads (each one current-thread runtime).
    pub client_threads: u32,
    /// Positions each master keeps open.
    pub open_positions_max: u32,
    /// Modifies per position before its close.
    pub modifies_per_position: u32,
    /// Unacked events a Monitor keeps at most.
    pub outbox_events_max: usize,
    /// Time between a Monitor's snapshots.
    pub snapshot_interval: Duration,
    /// Longest wait for every EA's first welcome.
    pub ready_timeout: Duration,
    /// Longest wait, after sending ends, for acks and copies.
    pub drain_timeout: Duration,
    /// Random disconnects of every EA during trading.
    pub churn: Option<ChurnSettings>,
    /// One slave stops reading during the phase with this name.
    pub stall: Option<StallSettings>,
    /// Seed of the churn's random streams.
    pub seed: u64,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Upper bound of events one master can generate (sizes its tables).
    pub events_per_master_max: u64,
}

/// Churn of every EA.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ChurnSettings {
    /// Mean time between one EA's disconnects.
    pub mean_ms: u64,
    /// Reconnect delay, uniform from 0 to this.
    pub reconnect_delay_ms_max: u64,
}

/// One stalled slave.
#[derive(Clone, Debug, Serialize)]
pub struct StallSettings {
    /// Index of the slave in the fleet.
    pub slave: u32,
    /// Name of the phase during which it stalls.
    pub phase: String,
}

/// A phase to run.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseSpec {
    pub name: String,
    /// Events per second, all masters together.
    pub rate_per_second: f64,
    pub seconds: f64,
    /// False for warm-up.
    pub recorded: bool,
}

/// Decides the phase after a finished one (ramp); `None` ends the plan.
pub type NextPhase<'a> = Box<dyn FnMut(&PhaseOutcome) -> Option<PhaseSpec> + 'a>;

/// Where the EAs connect and which process to watch.
pub struct Target<'a> {
    pub url: String,
    pub fleet: &'a Fleet,
    /// The bridge's pid, for CPU and memory; `None` when unknown.
    pub pid: Option<u32>,
    /// Its metrics endpoint, when known.
    pub metrics: Option<std::net::SocketAddr>,
    /// Told when each phase begins and when sending ends (the persister's
    /// monitor times its Postgres outage from the measured phase's start).
    pub observer: Option<&'a dyn PhaseObserver>,
}

/// Follows the run's progress from the orchestrating thread. Its methods
/// must return at once: the orchestrator samples CPU right after calling
/// them, and a slow observer would shift the phase's window.
pub trait PhaseObserver: Sync {
    /// `phase`'s window has just begun.
    fn phase_started(&self, phase: &Phase);
    /// The last phase ended: no more events are generated; the drain begins.
    fn sending_ended(&self);
}

/// What one phase measured.
#[derive(Clone, Debug)]
pub struct PhaseOutcome {
    pub phase: Phase,
    /// Merged over threads.
    pub latencies: PhaseLatencies,
    /// Events generated in this phase and copies they must cause.
    pub events: u64,
    pub copies_expected: u64,
    /// CPU seconds used during the phase's window.
    pub bridge_cpu_seconds: Option<f64>,
    pub harness_cpu_seconds: f64,
    /// CPU seconds the whole machine was busy during the window; what is
    /// left after the bridge and the harness ran elsewhere (other jobs).
    pub machine_busy_seconds: f64,
}

/// What a run measured and found.
pub struct TradingOutcome {
    pub phases: Vec<PhaseOutcome>,
    pub counts: Counts,
    /// Counter values at the end, by name.
    pub counters: BTreeMap<String, u64>,
    pub close_codes: BTreeMap<u16, u64>,
    pub error_examples: Vec<String>,
    /// True when every ack and expected copy arrived before the timeout.
    pub drained: bool,
    pub drain_ms: u64,
    pub events_unacked: u64,
    pub ack_seq_regressions: u64,
    /// The bridge's memory at the end of the last phase.
    pub bridge_memory: Option<Memory>,
    pub harness_memory: Option<Memory>,
    /// The bridge's /metrics after the drain, as JSON.
    pub bridge_metrics: Option<serde_json::Value>,
    /// The seed of the run's random streams.
    pub seed: u64,
    /// The end-to-end latency of each second of the run, in time order,
    /// from the EAs' start to their stop (warm-up and drain included).
    pub timeline: Vec<TimelineSample>,
}

/// Runs `phases` (then whatever `next` adds) against `target`.
pub fn run_trading(target: &Target<'_>, config: &TradingConfig, phases: &[PhaseSpec], next: Option<NextPhase<'_>>) -> anyhow::Result<TradingOutcome> {
    if phases.is_empty() {
        bail!("a run needs at least one phase");
    }
    let shared = Arc::new(new_shared(target, config)?);
    let thread_stats: Vec<SharedStats> = (0..config.client_threads).map(|_| SharedStats::default()).collect();
    let sampler = Sampler::start(Arc::clone(&shared), thread_stats.clone(), config.progress)?;
    let handles = match start_threads(&shared, target.fleet, config, &thread_stats) {
        Ok(handles) => handles,
        Err(error) => {
            let _ = sampler.stop();
            return Err(error);
        }
    };
    let result = drive(&shared, target, config, phases, next, &thread_stats);
    shared.stage.send_replace(Stage::Stopping);
    let timeline = sampler.stop();
    let mut masters = Vec::new();
    let mut slaves = Vec::new();
    for handle in handles {
        let (thread_masters, thread_slaves) = handle.join().map_err(|_| anyhow!("a client thread panicked"))?;
        masters.extend(thread_masters);
        slaves.extend(thread_slaves);
    }
    let mut outcome = result?;
    outcome.timeline = timeline?;
    let (copy_seqs_received, results_written) = account(&mut outcome, target.fleet, masters, slaves)?;
    let counters = &shared.counters;
    outcome.close_codes = counters.close_codes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    outcome.error_examples = counters.error_examples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    outcome.counters = counter_values(counters);
    outcome.counters.insert("copy_seqs_received".into(), copy_seqs_received);
    outcome.counters.insert("results_written".into(), results_written);
    Ok(outcome)
}

/// The run's shared state, its tables sized for `events_per_master_max`.
fn new_shared(target: &Target<'_>, config: &TradingConfig) -> anyhow::Result<RunShared> {
    let fleet = target.fleet;
    let unix_seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let positions_max = config.events_per_master_max + 1;
    // Position ids of this run: the second it started, times 1e9, plus the
    // position number, so a later run against the same bridge never reuses
    // an id the bridge remembers as closed.
    let pos_base = unix_seconds * 1_000_000_000;
    if positions_max >= 1_000_000_000 {
        bail!("{} events per master: expected fewer than 1e9 (shorten the run or lower the rate)", config.events_per_master_max);
    }
    let slots = Slot::per_position(config.modifies_per_position);
    let tables = (0..fleet.masters.len()).map(|_| MasterTable::new(positions_max, slots)).collect();
    let master_index = fleet.masters.iter().enumerate().map(|(index, account)| (account.login, index as u32)).collect::<HashMap<_, _>>();
    Ok(RunShared {
        base: Instant::now(),
        url: target.url.clone(),
        plan: tokio::sync::watch::Sender::new(Arc::new(Plan::default())),
        stage: tokio::sync::watch::Sender::new(Stage::Connecting),
        tables,
        master_index,
        pos_base,
        positions_max,
        modifies_per_position: config.modifies_per_position,
        counters: Counters::default(),
        phases: std::array::from_fn(|_| PhaseCounters::default()),
    })
}

/// Copies each position number (mod TRAITS_PERIOD) of master `master` must
/// cause: its followers that do not skip it, times its events.
pub fn copies_per_position(fleet: &Fleet, master: u32) -> anyhow::Result<Vec<u32>> {
    let mut copies = vec![0u32; TRAITS_PERIOD as usize];
    for follow in fleet.follows.iter().filter(|follow| follow.rule.master == master) {
        for (number, count) in copies.iter_mut().enumerate() {
            let traits = PositionTraits::of(number as u64);
            let rule = follow.rule;
            if expected_open_units(rule.lot, rule.below_min, rule.max_lot, traits.volume_lots, &SYMBOLS[traits.symbol]).map_err(|error| anyhow!(error))?.is_some() {
                *count += 1;
            }
        }
    }
    Ok(copies)
}

/// A client thread; it returns its EAs' reports.
type ClientThread = std::thread::JoinHandle<(Vec<MasterReport>, Vec<SlaveReport>)>;

/// Partitions the EAs over the client threads and starts them.
fn start_threads(
    shared: &Arc<RunShared>,
    fleet: &Fleet,
    config: &TradingConfig,
    thread_stats: &[SharedStats],
) -> anyhow::Result<Vec<ClientThread>> {
    let threads = config.client_threads.max(1) as usize;
    let mut masters: Vec<Vec<MasterSetup>> = vec![Vec::new(); threads];
    let mut slaves: Vec<Vec<SlaveSetup>> = vec![Vec::new(); threads];
    let churn = |login: u64| config.churn.map(|settings| Churn { mean_ms: settings.mean_ms, reconnect_delay_ms_max: settings.reconnect_delay_ms_max, seed: config.seed ^ login.wrapping_mul(0x9E37_79B9_7F4A_7C15) });
    for (index, account) in fleet.masters.iter().enumerate() {
        masters[index % threads].push(MasterSetup {
            index: index as u32,
            masters: fleet.masters.len() as u32,
            account: account.clone(),
            copies_per_position: copies_per_position(fleet, index as u32)?,
            open_positions_max: config.open_positions_max,
            outbox_events_max: config.outbox_events_max,
            snapshot_interval: config.snapshot_interval,
            churn: churn(account.login),
        });
    }
    for (index, account) in fleet.slaves.iter().enumerate() {
        let stall_phase = config.stall.as_ref().filter(|stall| stall.slave as usize == index).map(|stall| stall.phase.clone());
        slaves[index % threads].push(SlaveSetup { index: index as u32, account: account.clone(), stall_phase, churn: churn(account.login) });
    }
    let mut handles = Vec::with_capacity(threads);
    for (thread, (thread_masters, thread_slaves)) in masters.into_iter().zip(slaves).enumerate() {
        let shared = Arc::clone(shared);
        let stats = Arc::clone(&thread_stats[thread]);
        let handle = std::thread::Builder::new()
            .name(format!("loadtest-client-{thread}"))
            .spawn(move || client_thread(shared, stats, thread_masters, thread_slaves))?;
        handles.push(handle);
    }
    Ok(handles)
}

/// One client thread: a current-thread runtime running its EAs to the end.
fn client_thread(shared: Arc<RunShared>, stats: SharedStats, masters: Vec<MasterSetup>, slaves: Vec<SlaveSetup>) -> (Vec<MasterReport>, Vec<SlaveReport>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let slave_tasks: Vec<_> = slaves.into_iter().map(|setup| tokio::spawn(executor::run(Arc::clone(&shared), setup, Arc::clone(&stats)))).collect();
        let master_tasks: Vec<_> = masters.into_iter().map(|setup| tokio::spawn(monitor::run(Arc::clone(&shared), setup, Arc::clone(&stats)))).collect();
        let mut master_reports = Vec::with_capacity(master_tasks.len());
        for task in master_tasks {
            master_reports.push(task.await.expect("a Monitor task panicked"));
        }
        let mut slave_reports = Vec::with_capacity(slave_tasks.len());
        for task in slave_tasks {
            slave_reports.push(task.await.expect("an Executor task panicked"));
        }
        (master_reports, slave_reports)
    })
}

/// Waits for every EA, runs the phases, drains. The caller stops the EAs.
fn drive(shared: &Arc<RunShared>, target: &Target<'_>, config: &TradingConfig, phases: &[PhaseSpec], mut next: Option<NextPhase<'_>>, thread_stats: &[SharedStats]) -> anyhow::Result<TradingOutcome> {
    wait_ready(shared, target.fleet, config.ready_timeout)?;
    let start_ns = shared.now_ns() + START_LEAD.as_nanos() as u64;
    let mut plan = Plan::default();
    let mut start = start_ns;
    for spec in phases {
        start = plan.push(&spec.name, spec.rate_per_second, start, spec.seconds, spec.recorded).end_ns;
    }
    shared.publish(plan.clone());
    shared.stage.send_replace(Stage::Trading);
    let mut outcomes = Vec::new();
    let mut bridge_memory = None;
    let mut index = 0;
    while index < plan.phases.len() {
        let phase = plan.phases[index].clone();
        let outcome = run_phase(shared, target, &phase, thread_stats);
        bridge_memory = target.pid.and_then(|pid| procfs::memory(&pid.to_string()).ok()).or(bridge_memory);
        if index + 1 == plan.phases.len() {
            if let Some(decide) = next.as_mut() {
                settle(shared, &phase, thread_stats);
                let mut judged = outcome.clone();
                refresh(shared, thread_stats, &mut judged);
                if let Some(spec) = decide(&judged) {
                    let begin = shared.now_ns() + PHASE_GAP.as_nanos() as u64;
                    plan.push(&spec.name, spec.rate_per_second, begin, spec.seconds, spec.recorded);
                    shared.publish(plan.clone());
                }
            }
        }
        outcomes.push(outcome);
        index += 1;
    }
    plan.finished = true;
    shared.publish(plan.clone());
    shared.stage.send_replace(Stage::Draining);
    if let Some(observer) = target.observer {
        observer.sending_ended();
    }
    let drain_started = Instant::now();
    let drained = wait_drained(shared, config.drain_timeout);
    let drain_ms = drain_started.elapsed().as_millis() as u64;
    let bridge_metrics = target.metrics.map(|address| scrape_metrics(address).map(|text| parse_metrics(&text)).unwrap_or_else(|error| serde_json::json!({ "error": format!("{error:#}") })));
    for outcome in &mut outcomes {
        refresh(shared, thread_stats, outcome);
    }
    Ok(TradingOutcome {
        phases: outcomes,
        counts: Counts::default(),
        counters: BTreeMap::new(),
        close_codes: BTreeMap::new(),
        error_examples: Vec::new(),
        drained,
        drain_ms,
        events_unacked: 0,
        ack_seq_regressions: 0,
        bridge_memory,
        harness_memory: procfs::memory("self").ok(),
        bridge_metrics,
        seed: config.seed,
        timeline: Vec::new(),
    })
}

/// Brings a phase's latencies and counts up to date: a late sender
/// generates some of a phase's events (and copies arrive) after its window.
fn refresh(shared: &RunShared, thread_stats: &[SharedStats], outcome: &mut PhaseOutcome) {
    let counters = &shared.phases[outcome.phase.index as usize];
    outcome.latencies = merged_phase(thread_stats, outcome.phase.index);
    outcome.events = Counters::get(&counters.events);
    outcome.copies_expected = Counters::get(&counters.copies_expected);
}

/// Waits until every EA had its first welcome.
fn wait_ready(shared: &RunShared, fleet: &Fleet, timeout: Duration) -> anyhow::Result<()> {
    let expected = (fleet.masters.len() + fleet.slaves.len()) as u64;
    let deadline = Instant::now() + timeout;
    while Counters::get(&shared.counters.ready) < expected {
        if Instant::now() > deadline {
            let examples = shared.counters.error_examples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).join("\n  ");
            bail!("only {} of {expected} EAs were welcomed within {} s; first errors:\n  {examples}", Counters::get(&shared.counters.ready), timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Sleeps through one phase, sampling CPU at its start and end.
fn run_phase(shared: &RunShared, target: &Target<'_>, phase: &Phase, thread_stats: &[SharedStats]) -> PhaseOutcome {
    sleep_until_ns(shared, phase.start_ns);
    if let Some(observer) = target.observer {
        observer.phase_started(phase);
    }
    let bridge_before = target.pid.and_then(|pid| procfs::cpu_seconds(&pid.to_string()).ok());
    let harness_before = procfs::cpu_seconds("self").unwrap_or(0.0);
    let machine_before = procfs::machine_busy_seconds().unwrap_or(0.0);
    sleep_until_ns(shared, phase.end_ns);
    let bridge_after = target.pid.and_then(|pid| procfs::cpu_seconds(&pid.to_string()).ok());
    let harness_after = procfs::cpu_seconds("self").unwrap_or(0.0);
    let machine_after = procfs::machine_busy_seconds().unwrap_or(0.0);
    let counters = &shared.phases[phase.index as usize];
    PhaseOutcome {
        phase: phase.clone(),
        latencies: merged_phase(thread_stats, phase.index),
        events: Counters::get(&counters.events),
        copies_expected: Counters::get(&counters.copies_expected),
        bridge_cpu_seconds: bridge_before.zip(bridge_after).map(|(before, after)| after - before),
        harness_cpu_seconds: harness_after - harness_before,
        machine_busy_seconds: machine_after - machine_before,
    }
}

fn sleep_until_ns(shared: &RunShared, time_ns: u64) {
    let now_ns = shared.now_ns();
    if time_ns > now_ns {
        std::thread::sleep(Duration::from_nanos(time_ns - now_ns));
    }
}

/// After a ramp step: waits (bounded) until its copies have arrived.
fn settle(shared: &RunShared, phase: &Phase, thread_stats: &[SharedStats]) {
    let deadline = Instant::now() + STEP_SETTLE_MAX;
    let expected = Counters::get(&shared.phases[phase.index as usize].copies_expected);
    while Instant::now() < deadline && merged_phase(thread_stats, phase.index).end_to_end.len() < expected {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every event is acked and every expected copy received, or
/// the timeout; true when drained.
fn wait_drained(shared: &RunShared, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let counters = &shared.counters;
    loop {
        let acked = Counters::get(&counters.events_acked) >= Counters::get(&counters.events_generated);
        let copied = Counters::get(&counters.copies_received) >= Counters::get(&counters.copies_expected);
        if acked && copied {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fills the accounting from the EAs' reports; returns the distinct copy
/// seqs the slaves received and the distinct results they wrote, all
/// slaves together (what the bridge's `copies` and `copy_results` hold).
fn account(outcome: &mut TradingOutcome, fleet: &Fleet, mut masters: Vec<MasterReport>, mut slaves: Vec<SlaveReport>) -> anyhow::Result<(u64, u64)> {
    masters.sort_by_key(|report| report.index);
    slaves.sort_by_key(|report| report.index);
    outcome.events_unacked = masters.iter().map(|report| report.unacked).sum();
    outcome.ack_seq_regressions = masters.iter().map(|report| report.ack_seq_regressions).sum();
    let logins: Vec<u64> = fleet.masters.iter().map(|account| account.login).collect();
    let generated: Vec<_> = masters.into_iter().map(|report| report.generated).collect();
    let accounts: Vec<SlaveAccount<'_>> = slaves
        .iter()
        .map(|report| SlaveAccount { login: fleet.slaves[report.index as usize].login, follows: fleet.follows_of(report.index), receipts: &report.receipts })
        .collect();
    outcome.counts = reconcile(&generated, &logins, &accounts).map_err(|error| anyhow!(error))?;
    let copy_seqs_received = slaves.iter().map(|report| report.receipts.seqs_received).sum();
    let results_written = slaves.iter().map(|report| report.receipts.results_written).sum();
    Ok((copy_seqs_received, results_written))
}

fn counter_values(counters: &Counters) -> BTreeMap<String, u64> {
    let pairs = [
        ("events_generated", &counters.events_generated),
        ("events_sent", &counters.events_sent),
        ("events_resent", &counters.events_resent),
        ("events_acked", &counters.events_acked),
        ("copies_expected", &counters.copies_expected),
        ("copies_received", &counters.copies_received),
        ("connects", &counters.connects),
        ("connect_failures", &counters.connect_failures),
        ("disconnects_forced", &counters.disconnects_forced),
        ("sessions_lost", &counters.sessions_lost),
        ("errors_received", &counters.errors_received),
        ("schedule_overflow", &counters.schedule_overflow),
    ];
    pairs.iter().map(|(name, counter)| (name.to_string(), Counters::get(counter))).collect()
}

/// The once-a-second sampler: its thread and the flag that stops it.
struct Sampler {
    thread: std::thread::JoinHandle<Vec<TimelineSample>>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    /// Starts the thread: every [`SAMPLE_PERIOD`] it takes the interval's
    /// end-to-end histogram as a sample, and with `progress` prints the
    /// progress line to stderr.
    fn start(shared: Arc<RunShared>, thread_stats: Vec<SharedStats>, progress: bool) -> anyhow::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("loadtest-sampler".into())
            .spawn(move || sample_every_period(&shared, &thread_stats, &flag, progress))
            .context("starting the latency sampler thread")?;
        Ok(Sampler { thread, stop })
    }

    /// Stops the thread at once (it sleeps no further) and returns its
    /// samples; the second under way when it stops is not sampled.
    fn stop(self) -> anyhow::Result<Vec<TimelineSample>> {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread.join().map_err(|_| anyhow!("the latency sampler thread panicked"))
    }
}

/// The sampler's loop: a sample at each tick of a fixed grid until `stop`.
fn sample_every_period(shared: &RunShared, thread_stats: &[SharedStats], stop: &AtomicBool, progress: bool) -> Vec<TimelineSample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut last_copies = 0;
    let mut tick = started;
    loop {
        // The next tick after now: a late wake-up skips ticks instead of
        // taking a burst of near-empty samples.
        while tick <= Instant::now() {
            tick += SAMPLE_PERIOD;
        }
        if !sleep_until_or_stopped(tick, stop) {
            return samples;
        }
        let interval = take_interval(thread_stats);
        let now_ns = shared.now_ns();
        let phase = phase_name(shared, now_ns);
        if progress {
            last_copies = print_progress(shared, started, &phase, &interval, last_copies);
        }
        samples.push(TimelineSample::new(now_ns as f64 / 1e9, phase, &interval));
    }
}

/// Sleeps until `deadline`; false as soon as `stop` is set (the stopper
/// unparks the thread).
fn sleep_until_or_stopped(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// The phase at `time_ns`, or the run's stage in lower case outside every phase.
fn phase_name(shared: &RunShared, time_ns: u64) -> String {
    let plan = shared.plan.borrow().clone();
    plan.phase_at(time_ns).map_or_else(|| format!("{:?}", shared.stage()).to_lowercase(), |phase| phase.name.clone())
}

/// Prints one progress line to stderr; returns the copies received so far.
fn print_progress(shared: &RunShared, started: Instant, phase: &str, interval: &hdrhistogram::Histogram<u64>, last_copies: u64) -> u64 {
    let counters = &shared.counters;
    let copies = Counters::get(&counters.copies_received);
    let p99 = if interval.is_empty() { "-".to_string() } else { format!("{:.3} ms", interval.value_at_quantile(0.99) as f64 / 1000.0) };
    eprintln!(
        "[{:>4} s] {phase:<9} sent {} acked {} copies {}/{} (+{}/s) p99 {p99} (last 1 s)",
        started.elapsed().as_secs(),
        Counters::get(&counters.events_sent),
        Counters::get(&counters.events_acked),
        copies,
        Counters::get(&counters.copies_expected),
        copies - last_copies,
    );
    copies
}
