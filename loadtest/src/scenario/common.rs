//! What every scenario shares: the common flags, the bridge under test
//! (spawned with a generated configuration, or running and described by
//! `--config` and `--keys`), the trading run's JSON and latency timeline
//! files, the verdict, and the report folder.
//!
//! # Invariants
//! - A spawned bridge gets free ports, a temporary journal removed after
//!   the run, `metrics_listen`, and rate limits above the scenario's need;
//!   it is stopped with SIGTERM and its exit status checked.
//! - A run fails (exit 1) on any lost, duplicated, wrongly sized or
//!   unexpected copy whatever the budget, and on an end-to-end p99 above
//!   the budget where the scenario applies it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::bridge::{default_binary, free_address, BridgeKind, Spawned, StopOutcome, TempDir};
use crate::cli::Arguments;
use crate::fleet::{Fleet, ServerSettings};
use crate::procfs;
use crate::report::timeline::{LatencyTimeline, MeasuredWindow};
use crate::report::timeline_plot::timeline_plot;
use crate::report::{self, latency_summary, RunFolder};
use crate::run::{PhaseOutcome, TradingConfig, TradingOutcome};
use crate::schedule::Phase;
use crate::stats::PhaseLatencies;

/// The product's end-to-end budget: a copy reaches the follower within
/// 200 ms of the master's event (the default of `--budget-p99-ms`).
pub const BUDGET_P99_MS_DEFAULT: f64 = 200.0;

/// Highest rate limit CONFIG.md accepts (`rate_limit_per_second`).
const RATE_LIMIT_PER_SECOND_MAX: u64 = 100_000;
/// Highest burst CONFIG.md accepts (`rate_limit_burst`).
const RATE_LIMIT_BURST_MAX: u64 = 1_000_000;

/// Flags every scenario takes.
#[derive(Clone, Debug)]
pub struct CommonOptions {
    pub spawn: bool,
    pub url: Option<String>,
    pub config: Option<PathBuf>,
    pub keys: Option<PathBuf>,
    pub bridge_pid: Option<u32>,
    pub bridge_bin: Option<PathBuf>,
    /// The baseline's binary for `--compare-baseline`.
    pub baseline_bin: Option<PathBuf>,
    /// Which bridge `--spawn` starts.
    pub bridge: BridgeKind,
    /// Passed to a spawned baseline: `--fault KIND=N`.
    pub fault: Option<String>,
    /// Passed to a spawned baseline: `--threads N`.
    pub baseline_threads: Option<u32>,
    pub journal_sync: Option<String>,
    /// The bridge's idle strategy for a spawned tradebridge.
    pub idle: Option<String>,
    /// Where a spawned tradebridge runs its routing core (`routing`).
    pub routing: Option<String>,
    /// `--journal-flush`: a spawned tradebridge's `journal_flush`.
    pub journal_flush: Option<String>,
    /// `--hot-thread-slice-us`: a spawned tradebridge's `hot_thread_slice_us`.
    pub hot_thread_slice_us: Option<u32>,
    pub shards: Option<u32>,
    pub hb_ms: u64,
    pub client_threads: u32,
    pub budget_p99_ms: f64,
    /// True when `--budget-p99-ms` was given (churn gates only then).
    pub budget_given: bool,
    pub out_dir: PathBuf,
    pub tag: Option<String>,
    pub notes: Option<String>,
    pub seed: u64,
    pub progress: bool,
    /// `--reconfigure-every-ms`: change the spawned tradebridge's follows live this often.
    pub reconfigure_every_ms: Option<u64>,
}

impl CommonOptions {
    /// Reads the common flags.
    pub fn parse(arguments: &Arguments) -> anyhow::Result<CommonOptions> {
        let bridge = match arguments.text("--bridge").as_deref() {
            None | Some("tradebridge") => BridgeKind::Tradebridge,
            Some("baseline") => BridgeKind::Baseline,
            Some(other) => bail!("--bridge {other:?}: expected tradebridge or baseline"),
        };
        let journal_sync = arguments.text("--journal-sync");
        if let Some(sync) = &journal_sync {
            if !["group", "os", "every_record"].contains(&sync.as_str()) {
                bail!("--journal-sync {sync:?}: expected group, os or every_record");
            }
        }
        let idle = arguments.text("--idle");
        if let Some(idle) = &idle {
            if !["park", "yield", "spin"].contains(&idle.as_str()) {
                bail!("--idle {idle:?}: expected park, yield or spin");
            }
        }
        let routing = arguments.text("--routing");
        if let Some(routing) = &routing {
            if !["auto", "inline", "thread"].contains(&routing.as_str()) {
                bail!("--routing {routing:?}: expected auto, inline or thread");
            }
        }
        let journal_flush = arguments.text("--journal-flush");
        if let Some(flush) = &journal_flush {
            if !["auto", "router", "thread", "uring"].contains(&flush.as_str()) {
                bail!("--journal-flush {flush:?}: expected auto, router, thread or uring");
            }
        }
        let budget_given = arguments.text("--budget-p99-ms").is_some();
        let default_seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
        Ok(CommonOptions {
            spawn: arguments.switch("--spawn"),
            url: arguments.text("--url"),
            config: arguments.text("--config").map(PathBuf::from),
            keys: arguments.text("--keys").map(PathBuf::from),
            bridge_pid: arguments.text("--bridge-pid").map(|text| text.parse().map_err(|_| anyhow!("--bridge-pid {text:?}: expected a process id"))).transpose()?,
            bridge_bin: arguments.text("--bridge-bin").map(PathBuf::from),
            baseline_bin: arguments.text("--baseline-bin").map(PathBuf::from),
            bridge,
            fault: arguments.text("--fault"),
            baseline_threads: arguments.text("--baseline-threads").map(|text| text.parse().map_err(|_| anyhow!("--baseline-threads {text:?}: expected a thread count"))).transpose()?,
            journal_sync,
            idle,
            routing,
            journal_flush,
            hot_thread_slice_us: arguments
                .text("--hot-thread-slice-us")
                .map(|text| text.parse().ok().filter(|value| *value == 0 || (100..=100_000).contains(value)).ok_or_else(|| anyhow!("--hot-thread-slice-us {text:?}: expected 0 or 100 to 100000")))
                .transpose()?,
            shards: arguments.text("--shards").map(|text| text.parse().map_err(|_| anyhow!("--shards {text:?}: expected 0 to 256"))).transpose()?,
            hb_ms: arguments.checked("--hb-ms", 5_000u64, "milliseconds from 500 to 60000", |value| (500..=60_000).contains(&value))?,
            client_threads: arguments.checked("--client-threads", 1u32, "1 to 64 threads", |value| (1..=64).contains(&value))?,
            budget_p99_ms: arguments.checked("--budget-p99-ms", BUDGET_P99_MS_DEFAULT, "milliseconds above 0", |value: f64| value > 0.0 && value.is_finite())?,
            budget_given,
            out_dir: PathBuf::from(arguments.text("--out-dir").unwrap_or_else(|| "bench-results".into())),
            tag: arguments.text("--tag"),
            notes: arguments.text("--notes"),
            seed: arguments.value("--seed", default_seed, "an unsigned integer")?,
            progress: !arguments.switch("--no-progress"),
            reconfigure_every_ms: arguments
                .text("--reconfigure-every-ms")
                .map(|text| match text.parse::<u64>() {
                    Ok(value) if (100..=60_000).contains(&value) => Ok(value),
                    _ => Err(anyhow!("--reconfigure-every-ms {text:?}: expected 100 to 60000 milliseconds")),
                })
                .transpose()?,
        })
    }
}

/// The bridge a scenario loads, and what the harness knows of it.
pub struct Environment {
    pub kind: BridgeKind,
    pub fleet: Fleet,
    pub url: String,
    /// The spawned process; `None` against a running bridge.
    pub spawned: Option<Spawned>,
    /// The pid to watch (spawned, or `--bridge-pid`).
    pub pid: Option<u32>,
    pub metrics: Option<std::net::SocketAddr>,
    /// The configuration text (hashes only, no clear keys), for the report.
    pub config_text: String,
    /// The spawned binary's path, or a note that the bridge was running.
    pub binary: String,
    /// The spawned bridge's configuration file and journal directory.
    pub config_path: Option<std::path::PathBuf>,
    pub journal_dir: Option<std::path::PathBuf>,
    /// Holds the spawned bridge's config and journal; removed on drop.
    _directory: Option<TempDir>,
}

/// What the bridge must allow per account: the peak frames per second of
/// one master or one slave, from the scenario's peak event rate.
pub fn rate_limits(fleet: &Fleet, peak_events_per_second: f64) -> (u32, u32) {
    let masters = fleet.masters.len().max(1) as f64;
    let per_master = peak_events_per_second / masters;
    let follows_per_slave = (0..fleet.slaves.len() as u32).map(|slave| fleet.follows_of(slave).len()).max().unwrap_or(1).max(1) as f64;
    // 4x the steady need plus room for heartbeats, and a burst covering
    // ten seconds of it, so an outbox or replay burst after a reconnect is
    // never cut off (4003) by a limit the scenario did not mean to test.
    let need = per_master * follows_per_slave.max(1.0);
    let per_second = ((need * 4.0) as u64 + 100).clamp(1_000, RATE_LIMIT_PER_SECOND_MAX);
    let burst = (per_second * 10).min(RATE_LIMIT_BURST_MAX);
    (per_second as u32, burst as u32)
}

impl Environment {
    /// Spawns a bridge of `kind` for `fleet` (when --spawn), or describes the
    /// running one from --url, --config and --keys.
    pub fn prepare(common: &CommonOptions, kind: BridgeKind, generate: impl FnOnce() -> anyhow::Result<Fleet>, peak_events_per_second: f64) -> anyhow::Result<Environment> {
        if !common.spawn {
            return Environment::existing(common);
        }
        let fleet = generate()?;
        Environment::spawn(common, kind, fleet, peak_events_per_second)
    }

    /// Spawns a bridge of `kind` for an already generated `fleet`.
    pub fn spawn(common: &CommonOptions, kind: BridgeKind, fleet: Fleet, peak_events_per_second: f64) -> anyhow::Result<Environment> {
        Environment::spawn_with(common, kind, fleet, peak_events_per_second, None)
    }

    /// Like [`Environment::spawn`], with `extra_tables` (TOML, such as the
    /// `[persist]` table of `--persist`) appended to the generated config.
    pub fn spawn_with(common: &CommonOptions, kind: BridgeKind, fleet: Fleet, peak_events_per_second: f64, extra_tables: Option<&str>) -> anyhow::Result<Environment> {
        let directory = TempDir::new(kind.binary_name())?;
        let listen = free_address()?;
        // The baseline serves no metrics; only tradebridge gets an endpoint.
        let metrics = if kind == BridgeKind::Tradebridge { Some(free_address()?) } else { None };
        let (rate_limit_per_second, rate_limit_burst) = rate_limits(&fleet, peak_events_per_second);
        let accounts = (fleet.masters.len() + fleet.slaves.len()) as u32;
        let settings = ServerSettings {
            listen,
            journal_dir: directory.path.join("journal"),
            metrics_listen: metrics,
            journal_sync: common.journal_sync.clone(),
            idle: common.idle.clone(),
            routing: common.routing.clone(),
            journal_flush: common.journal_flush.clone(),
            hot_thread_slice_us: common.hot_thread_slice_us,
            shards: common.shards,
            hb_ms: common.hb_ms,
            rate_limit_per_second,
            rate_limit_burst,
            connections_max: accounts.saturating_mul(2).max(20_000),
        };
        let mut config_text = fleet.config_toml(&settings);
        config_text.push_str(extra_tables.unwrap_or_default());
        let config_path = directory.path.join("bridge.toml");
        std::fs::write(&config_path, &config_text).with_context(|| format!("writing {}", config_path.display()))?;
        let chosen = if kind == common.bridge { &common.bridge_bin } else { &common.baseline_bin };
        let binary = match chosen {
            Some(path) => path.clone(),
            None => default_binary(kind)?,
        };
        let mut extra = Vec::new();
        if kind == BridgeKind::Baseline {
            if let Some(threads) = common.baseline_threads {
                extra.extend(["--threads".to_string(), threads.to_string()]);
            }
            for fault in common.fault.iter().flat_map(|faults| faults.split(',')) {
                extra.extend(["--fault".to_string(), fault.to_string()]);
            }
        }
        let spawned = Spawned::start(kind, &binary, &config_path, listen, metrics, &extra)?;
        let pid = Some(spawned.pid);
        let binary = binary.display().to_string();
        let journal_dir = Some(directory.path.join("journal"));
        Ok(Environment { kind, fleet, url: format!("ws://{listen}/ea"), spawned: Some(spawned), pid, metrics, config_text, binary, config_path: Some(config_path), journal_dir, _directory: Some(directory) })
    }

    fn existing(common: &CommonOptions) -> anyhow::Result<Environment> {
        let url = common.url.clone().ok_or_else(|| anyhow!("give --spawn, or --url ws://HOST:PORT/ea with --config FILE (and --keys FILE) of the running bridge"))?;
        let config = common.config.clone().ok_or_else(|| anyhow!("--url needs --config FILE: the bridge's configuration (accounts and follows)"))?;
        let keys = common.keys.clone().unwrap_or_else(|| config.with_file_name("keys.tsv"));
        let fleet = Fleet::load(&config, &keys)?;
        let config_text = std::fs::read_to_string(&config)?;
        let metrics = tradebridge_core::config::Config::load(&config).ok().and_then(|parsed| parsed.server.metrics_listen);
        let binary = "(a running bridge, not started by the harness)".to_string();
        Ok(Environment { kind: common.bridge, fleet, url, spawned: None, pid: common.bridge_pid, metrics, config_text, binary, config_path: None, journal_dir: None, _directory: None })
    }

    /// Stops a spawned bridge with SIGTERM; `None` for a running one.
    pub fn stop(&mut self) -> Option<StopOutcome> {
        self.spawned.take().map(Spawned::stop)
    }

    /// The binary's path, for the report.
    pub fn binary(&self) -> String {
        self.binary.clone()
    }
}

/// The default trading behaviour, overridable by flags.
pub fn trading_config(arguments: &Arguments, common: &CommonOptions, events_per_master_max: u64) -> anyhow::Result<TradingConfig> {
    Ok(TradingConfig {
        client_threads: common.client_threads,
        open_positions_max: arguments.checked("--open-positions", 10u32, "1 to 1000 positions per master", |value| (1..=1000).contains(&value))?,
        modifies_per_position: arguments.checked("--modifies-per-position", 1u32, "0 to 8", |value| value <= crate::trades::MODIFIES_PER_POSITION_MAX)?,
        outbox_events_max: arguments.checked("--outbox-events-max", 100_000usize, "1 to 10000000 events", |value| (1..=10_000_000).contains(&value))?,
        snapshot_interval: Duration::from_secs(arguments.checked("--snapshot-secs", 60u64, "1 to 60 seconds (PROTOCOL.md: at most 60)", |value| (1..=60).contains(&value))?),
        ready_timeout: Duration::from_secs(arguments.checked("--ready-secs", 60u64, "1 to 3600 seconds", |value| (1..=3600).contains(&value))?),
        drain_timeout: Duration::from_secs_f64(arguments.checked("--drain-secs", 10.0f64, "0 to 600 seconds", |value: f64| (0.0..=600.0).contains(&value))?),
        churn: None,
        stall: None,
        seed: common.seed,
        progress: common.progress,
        events_per_master_max,
    })
}

/// Events one master generates at most over `phases` of (rate, seconds).
pub fn events_per_master(masters: usize, phases: &[(f64, f64)]) -> u64 {
    let total: f64 = phases.iter().map(|(rate, seconds)| rate * seconds / masters.max(1) as f64 + 1.0).sum();
    total.ceil() as u64 + 16
}

/// The measured (recorded) phases merged into one outcome named
/// "measured", its window as long as theirs together.
pub fn measured(outcome: &TradingOutcome) -> PhaseOutcome {
    let mut merged = PhaseOutcome {
        phase: Phase { index: 0, name: "measured".into(), rate_per_second: 0.0, start_ns: 0, end_ns: 0, recorded: true },
        latencies: PhaseLatencies::default(),
        events: 0,
        copies_expected: 0,
        bridge_cpu_seconds: Some(0.0),
        harness_cpu_seconds: 0.0,
        machine_busy_seconds: 0.0,
    };
    for phase in outcome.phases.iter().filter(|phase| phase.phase.recorded) {
        merged.latencies.add(&phase.latencies);
        merged.phase.end_ns += phase.phase.end_ns - phase.phase.start_ns;
        merged.events += phase.events;
        merged.copies_expected += phase.copies_expected;
        merged.bridge_cpu_seconds = merged.bridge_cpu_seconds.zip(phase.bridge_cpu_seconds).map(|(total, more)| total + more);
        merged.harness_cpu_seconds += phase.harness_cpu_seconds;
        merged.machine_busy_seconds += phase.machine_busy_seconds;
    }
    merged.phase.rate_per_second = merged.events as f64 / merged.phase.seconds().max(1e-9);
    merged
}

/// The JSON of a phase (or of the merged measured phases).
pub fn phase_json(phase: &PhaseOutcome) -> Value {
    let seconds = phase.phase.seconds().max(1e-9);
    let latencies = &phase.latencies;
    let copies = latencies.end_to_end.len();
    let (bridge_cpu, harness_cpu, machine_busy) = (phase.bridge_cpu_seconds, phase.harness_cpu_seconds, phase.machine_busy_seconds);
    json!({
        "name": phase.phase.name,
        "recorded": phase.phase.recorded,
        "seconds": phase.phase.seconds(),
        "rate_offered_events_per_second": phase.phase.rate_per_second,
        "events": phase.events,
        "events_per_second": phase.events as f64 / seconds,
        "copies_expected": phase.copies_expected,
        "copies_measured": copies,
        "copies_per_second": copies as f64 / seconds,
        "latency_ms": {
            "end_to_end": latency_summary(&latencies.end_to_end),
            "end_to_end_uncorrected": latency_summary(&latencies.end_to_end_uncorrected),
            "ack": latency_summary(&latencies.ack),
            "result": latency_summary(&latencies.result),
            "send_lag": latency_summary(&latencies.send_lag),
        },
        "cpu": {
            "bridge_seconds": bridge_cpu,
            "bridge_cores": bridge_cpu.map(|cpu| cpu / seconds),
            "bridge_us_per_copy": bridge_cpu.filter(|_| copies > 0).map(|cpu| cpu * 1e6 / copies as f64),
            "harness_seconds": harness_cpu,
            "harness_cores": harness_cpu / seconds,
            "machine_busy_cores": machine_busy / seconds,
            "other_processes_cores": bridge_cpu.map(|bridge| ((machine_busy - bridge - harness_cpu) / seconds).max(0.0)),
        },
    })
}

/// Everything a trading run found, as JSON (without the verdict).
pub fn outcome_json(environment: &Environment, outcome: &TradingOutcome, stop: Option<&StopOutcome>) -> Value {
    let timeline = latency_timeline(outcome);
    json!({
        "bridge": environment.kind.name(),
        "binary": environment.binary(),
        "url": environment.url,
        "measured": phase_json(&measured(outcome)),
        "phases": outcome.phases.iter().map(phase_json).collect::<Vec<_>>(),
        "counts": outcome.counts,
        "counters": outcome.counters,
        "drained": outcome.drained,
        "drain_ms": outcome.drain_ms,
        "events_unacked": outcome.events_unacked,
        "ack_seq_regressions": outcome.ack_seq_regressions,
        "close_codes": outcome.close_codes.iter().map(|(code, count)| (code.to_string(), json!(count))).collect::<serde_json::Map<_, _>>(),
        "error_examples": outcome.error_examples,
        "memory_kib": { "bridge": outcome.bridge_memory, "harness": outcome.harness_memory },
        "bridge_metrics": outcome.bridge_metrics,
        "bridge_exit": stop,
        "seed": outcome.seed,
        "timeline": timeline.seconds_json(),
        "minutes": timeline.minutes_json(),
        "last_minute_p99_over_first": timeline.last_minute_p99_over_first,
    })
}

/// The run's end-to-end latency per second and per minute, timed from its
/// measured phase's start.
pub fn latency_timeline(outcome: &TradingOutcome) -> LatencyTimeline {
    let window = MeasuredWindow::of(outcome.phases.iter().map(|phase| &phase.phase));
    LatencyTimeline::new(&outcome.timeline, window.as_ref())
}

/// Why a trading run fails, one sentence each; empty when it passes.
/// `budget_ms` is `None` where the scenario does not gate on latency.
pub fn failures(label: &str, environment: &Environment, outcome: &TradingOutcome, stop: Option<&StopOutcome>, budget_ms: Option<f64>) -> Vec<String> {
    let mut failures = Vec::new();
    let counts = &outcome.counts;
    if !counts.is_exact() {
        failures.push(format!(
            "{label}: lost {}, duplicated {}, wrong_volume {}, wrong_side {}, unexpected {} of {} expected copies (first: {})",
            counts.lost,
            counts.duplicated,
            counts.wrong_volume,
            counts.wrong_side,
            counts.unexpected,
            counts.expected,
            counts.examples.first().map_or("-", String::as_str)
        ));
    }
    if !outcome.drained {
        failures.push(format!("{label}: not drained within the drain timeout: {} of {} events acked, {} of {} copies received", outcome.counters["events_acked"], outcome.counters["events_generated"], outcome.counters["copies_received"], outcome.counters["copies_expected"]));
    }
    if outcome.counters["schedule_overflow"] > 0 || outcome.ack_seq_regressions > 0 {
        failures.push(format!("{label}: {} events beyond the harness's tables, {} ack_seq regressions", outcome.counters["schedule_overflow"], outcome.ack_seq_regressions));
    }
    let latencies = measured(outcome).latencies;
    if latencies.end_to_end.is_empty() {
        failures.push(format!("{label}: no copy was measured"));
    } else if let Some(budget_ms) = budget_ms {
        let p99_ms = latencies.end_to_end.value_at_quantile(0.99) as f64 / 1000.0;
        if p99_ms > budget_ms {
            failures.push(format!("{label}: end-to-end p99 {p99_ms:.3} ms breaks the budget of {budget_ms} ms (--budget-p99-ms)"));
        }
    }
    if let Some(stop) = stop {
        let clean = stop.is_clean() || (environment.kind == BridgeKind::Baseline && stop.signal == Some(libc::SIGTERM));
        if !clean {
            failures.push(format!("{label}: {} did not exit cleanly after SIGTERM: exit code {:?}, signal {:?}, killed {} (expected exit code 0)", environment.kind.name(), stop.exit_code, stop.signal, stop.killed));
        }
    }
    failures
}

/// The `metadata` every summary starts with.
pub fn metadata(scenario: &str, common: &CommonOptions, parameters: Value, machine_before: &procfs::Machine) -> Value {
    let mut notes: Vec<String> = common.notes.iter().cloned().collect();
    if !machine_before.other_busy_processes.is_empty() {
        notes.push(format!("other build processes were running when the run started: {:?}; they share the CPUs", machine_before.other_busy_processes));
    }
    json!({
        "scenario": scenario,
        "command": report::command_line(),
        "commit": report::commit(),
        "date_utc": report::utc_timestamp(),
        "machine": machine_before,
        "parameters": parameters,
        "notes": notes,
    })
}

/// Writes the common files of a report and returns the folder.
pub fn create_folder(common: &CommonOptions, scenario: &str, config_text: &str) -> anyhow::Result<RunFolder> {
    let folder = RunFolder::create(&common.out_dir, scenario, common.tag.as_deref())?;
    folder.write("commands.txt", &format!("$ {}\n", report::command_line()))?;
    folder.write("bridge.toml", config_text)?;
    Ok(folder)
}

/// Writes the four latency distributions of `latencies` with `prefix`.
pub fn write_distributions(folder: &RunFolder, prefix: &str, latencies: &PhaseLatencies) -> anyhow::Result<()> {
    folder.write_hgrm(&format!("{prefix}end_to_end"), "end-to-end latency: intended send of the master event -> copy received by the slave (coordinated-omission corrected)", &latencies.end_to_end)?;
    folder.write_hgrm(&format!("{prefix}end_to_end_uncorrected"), "end-to-end latency from the ACTUAL send (not corrected; for comparison only)", &latencies.end_to_end_uncorrected)?;
    folder.write_hgrm(&format!("{prefix}ack"), "ack latency: intended send of the master event -> ack received by the master", &latencies.ack)?;
    folder.write_hgrm(&format!("{prefix}result"), "result latency: intended send of the master event -> the slave's result written", &latencies.result)?;
    folder.write_hgrm(&format!("{prefix}send_lag"), "harness send lag: intended -> actual send of the master event", &latencies.send_lag)?;
    Ok(())
}

/// Writes `<bridge>_timeline.tsv` and `<bridge>_timeline.svg`: `outcome`'s
/// end-to-end latency per second, the plot titled with `title`.
pub fn write_timeline(folder: &RunFolder, bridge: &str, title: &str, outcome: &TradingOutcome) -> anyhow::Result<()> {
    let timeline = latency_timeline(outcome);
    folder.write(&format!("{bridge}_timeline.tsv"), &timeline.tsv())?;
    timeline_plot(&folder.path.join(format!("{bridge}_timeline.svg")), &format!("end-to-end latency per second, {bridge}: {title}"), &timeline)
}

/// Prints failures to stderr and the one-line summary to stdout; the
/// process's exit code (0 pass, 1 fail).
pub fn conclude(line: &str, failures: &[String], folder: Option<&Path>) -> u8 {
    for failure in failures {
        eprintln!("FAIL: {failure}");
    }
    let verdict = if failures.is_empty() { "PASS" } else { "FAIL" };
    let location = folder.map(|path| format!(" report {}", path.display())).unwrap_or_default();
    println!("{verdict} {line}{location}");
    u8::from(!failures.is_empty())
}

/// The headline of a trading run for the one-line summary and the README.
pub fn headline(outcome: &TradingOutcome) -> String {
    let merged = measured(outcome);
    let (latencies, seconds) = (&merged.latencies, merged.phase.seconds());
    let counts = &outcome.counts;
    let milliseconds = |quantile: f64| latencies.end_to_end.value_at_quantile(quantile) as f64 / 1000.0;
    format!(
        "{}/{} copies, lost {} dup {} wrong {}; e2e p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms; {:.0} copies/s",
        counts.received,
        counts.expected,
        counts.lost,
        counts.duplicated,
        counts.wrong_volume + counts.wrong_side + counts.unexpected,
        milliseconds(0.5),
        milliseconds(0.99),
        milliseconds(0.999),
        latencies.end_to_end.max() as f64 / 1000.0,
        latencies.end_to_end.len() as f64 / seconds.max(1e-9)
    )
}

/// The CPU part of a headline: bridge and harness cores used.
pub fn cpu_headline(outcome: &TradingOutcome) -> String {
    let merged = measured(outcome);
    let (seconds, bridge_cpu, harness_cpu) = (merged.phase.seconds(), merged.bridge_cpu_seconds, merged.harness_cpu_seconds);
    let latencies = &merged.latencies;
    let copies = latencies.end_to_end.len().max(1) as f64;
    match bridge_cpu {
        Some(cpu) => format!("bridge {:.2} cores ({:.1} us/copy), harness {:.2} cores", cpu / seconds.max(1e-9), cpu * 1e6 / copies, harness_cpu / seconds.max(1e-9)),
        None => format!("harness {:.2} cores (bridge CPU unknown: give --bridge-pid)", harness_cpu / seconds.max(1e-9)),
    }
}
