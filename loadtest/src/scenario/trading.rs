//! The trading scenarios: `fanout`, `churn`, `slow-slave` and `ramp`. Each
//! is one trading run (two with `--compare-baseline`) shaped by its flags,
//! then its own judgement and report.
//!
//! # Invariants
//! - Every trading scenario checks exactly-once delivery; only the way it
//!   treats latency differs: `fanout` gates on the budget, `churn` only when
//!   `--budget-p99-ms` is given (its latency includes deliberate offline
//!   time), `slow-slave` on the others' latency not moving, `ramp` uses the
//!   budget to find the highest sustained rate.
//! - With `--persist`, the tradebridge run also passes only when the
//!   persister caught up and Postgres holds every row once (see
//!   [`crate::persist`]); a `--compare-baseline` run stays as it is (the
//!   baseline has no persister).

use anyhow::anyhow;
use serde_json::{json, Value};

use super::common::{
    conclude, cpu_headline, create_folder, events_per_master, failures, headline, measured, metadata, outcome_json, phase_json, trading_config, write_distributions, write_timeline,
    CommonOptions, Environment,
};
use crate::bridge::{BridgeKind, StopOutcome};
use crate::cli::Arguments;
use crate::fleet::Fleet;
use crate::persist::{run_persisted, Database, PersistOptions, PersistRecord};
use crate::procfs;
use crate::report::lag_plot::lag_plot;
use crate::report::{append_index_row, RunFolder};
use crate::run::{run_trading, ChurnSettings, NextPhase, PhaseOutcome, PhaseSpec, StallSettings, Target, TradingConfig, TradingOutcome};

/// A trading run's result against one bridge.
pub(super) struct Finished {
    pub environment: Environment,
    pub outcome: TradingOutcome,
    pub stop: Option<StopOutcome>,
    /// What `--persist` found (tradebridge's run only).
    pub persist: Option<PersistRecord>,
    /// What `--reconfigure-every-ms` did (tradebridge's run only).
    pub reconfigure: Option<crate::reconfigure::ReconfigureRecord>,
}

/// What one run loads: the fleet, the plan and its peak rate, how the EAs
/// behave.
pub(super) struct Load<'a> {
    pub fleet: &'a Fleet,
    /// The highest rate of the plan (sizes the bridge's rate limits).
    pub peak_rate: f64,
    pub config: &'a TradingConfig,
    pub phases: &'a [PhaseSpec],
}

/// The fleet size flags, with per-scenario defaults.
pub(super) fn fleet_size(arguments: &Arguments, masters: u32, slaves_per_master: u32) -> anyhow::Result<(u32, u32)> {
    Ok((
        arguments.checked("--masters", masters, "1 to 100000 masters", |value| (1..=100_000).contains(&value))?,
        arguments.checked("--slaves-per-master", slaves_per_master, "0 to 10000 slaves", |value| value <= 10_000)?,
    ))
}

pub(super) fn rate(arguments: &Arguments, default: f64) -> anyhow::Result<f64> {
    arguments.checked("--rate", default, "events per second above 0 (all masters together)", |value: f64| value > 0.0 && value <= 10_000_000.0)
}

pub(super) fn seconds(arguments: &Arguments, name: &str, default: f64) -> anyhow::Result<f64> {
    arguments.checked(name, default, "seconds from 0.1 to 86400", |value: f64| (0.1..=86_400.0).contains(&value))
}

/// Runs the plan against one bridge of `kind`; with `persist` (and `kind`
/// tradebridge), with its persister writing to a throwaway Postgres.
pub(super) fn run_once(common: &CommonOptions, kind: BridgeKind, load: &Load<'_>, next: Option<NextPhase<'_>>, persist: Option<&PersistOptions>) -> anyhow::Result<Finished> {
    if let Some(options) = persist.filter(|_| kind == BridgeKind::Tradebridge) {
        return run_once_persisted(common, load, next, options);
    }
    let fleet = load.fleet.clone();
    let peak_rate = load.peak_rate;
    let reconfigure_every = common.reconfigure_every_ms.filter(|_| kind == BridgeKind::Tradebridge);
    if reconfigure_every.is_some() && !common.spawn {
        anyhow::bail!("--reconfigure-every-ms needs --spawn: the harness rewrites the configuration of the tradebridge it spawns");
    }
    let spares = reconfigure_every.map(|_| crate::reconfigure::spare_accounts_toml("Spare-Server"));
    let mut environment = if common.spawn { Environment::spawn_with(common, kind, fleet, peak_rate, spares.as_deref())? } else { Environment::prepare(common, kind, || Ok(fleet), peak_rate)? };
    announce(&environment);
    let reconfigurer = match reconfigure_every {
        Some(every_ms) => {
            let (Some(config_path), Some(journal_dir), Some(pid)) = (environment.config_path.clone(), environment.journal_dir.clone(), environment.pid) else {
                anyhow::bail!("--reconfigure-every-ms: the spawned bridge's configuration, journal or pid is unknown");
            };
            let masters = environment.fleet.masters.iter().map(|master| master.login).collect();
            eprintln!("loadtest: changing the bridge's follows live every {every_ms} ms (SIGHUP)");
            Some(crate::reconfigure::Reconfigurer::start(config_path, environment.config_text.clone(), journal_dir, pid, masters, std::time::Duration::from_millis(every_ms))?)
        }
        None => None,
    };
    let target = Target { url: environment.url.clone(), fleet: &environment.fleet, pid: environment.pid, metrics: environment.metrics, observer: None };
    let outcome = run_trading(&target, load.config, load.phases, next);
    let reconfigure = reconfigurer.map(crate::reconfigure::Reconfigurer::stop);
    let outcome = outcome?;
    let stop = environment.stop();
    Ok(Finished { environment, outcome, stop, persist: None, reconfigure })
}

fn announce(environment: &Environment) {
    let fleet = &environment.fleet;
    eprintln!("loadtest: {} at {} ({} masters, {} slaves, {} follows)", environment.kind.name(), environment.url, fleet.masters.len(), fleet.slaves.len(), fleet.follows.len());
}

/// [`run_once`] with the persister: Postgres first, the bridge with its
/// `[persist]` table, the load watched by the monitor, the catch-up and
/// row check before the bridge stops; the cluster goes last.
fn run_once_persisted(common: &CommonOptions, load: &Load<'_>, next: Option<NextPhase<'_>>, options: &PersistOptions) -> anyhow::Result<Finished> {
    let database = Database::start(options.postgres_dir.as_deref(), &options.postgres_conf.text)?;
    eprintln!(
        "loadtest: Postgres (throwaway cluster, fsync on, settings of {}) at {}{}",
        options.postgres_conf.source,
        database.url(),
        match &options.postgres_dir {
            Some(directory) => format!(", its files under {}", directory.display()),
            None => String::new(),
        }
    );
    let table = options.table(&database.url()).toml();
    let mut environment = Environment::spawn_with(common, BridgeKind::Tradebridge, load.fleet.clone(), load.peak_rate, Some(&table))?;
    announce(&environment);
    let metrics = environment.metrics.ok_or_else(|| anyhow!("--persist: the spawned tradebridge has no metrics endpoint to sample"))?;
    let (outcome, persisted) = run_persisted(&database, metrics, options, |observer| {
        let target = Target { url: environment.url.clone(), fleet: &environment.fleet, pid: environment.pid, metrics: environment.metrics, observer: Some(observer) };
        run_trading(&target, load.config, load.phases, next)
    })?;
    let stop = environment.stop();
    let record = PersistRecord::judge(options, database.url(), persisted, &outcome, load.config.churn.is_some());
    drop(database);
    Ok(Finished { environment, outcome, stop, persist: Some(record), reconfigure: None })
}

/// The persister's part of a run's headline, or nothing.
pub(super) fn persist_suffix(run: &Finished) -> String {
    let persist = run.persist.as_ref().map_or_else(String::new, |record| format!("; {}", record.headline()));
    let reconfigure = run.reconfigure.as_ref().map_or_else(String::new, |record| format!("; {}", record.headline()));
    format!("{persist}{reconfigure}")
}

/// The fleet of a run: generated for --spawn, loaded otherwise.
pub(super) fn fleet(common: &CommonOptions, masters: u32, slaves_per_master: u32) -> anyhow::Result<Fleet> {
    if common.spawn {
        Fleet::generate(masters, slaves_per_master)
    } else {
        Ok(Environment::prepare(common, common.bridge, || unreachable!("not spawning"), 0.0)?.fleet)
    }
}

/// Warm-up then measurement at one rate.
pub(super) fn steady_phases(rate: f64, warmup: f64, secs: f64) -> Vec<PhaseSpec> {
    vec![
        PhaseSpec { name: "warmup".into(), rate_per_second: rate, seconds: warmup, recorded: false },
        PhaseSpec { name: "measure".into(), rate_per_second: rate, seconds: secs, recorded: true },
    ]
}

/// `loadtest fanout`: M masters x K slaves at a rate; with
/// `--compare-baseline`, the same against the baseline right after.
pub fn fanout(arguments: &Arguments) -> anyhow::Result<u8> {
    let common = CommonOptions::parse(arguments)?;
    let (masters, slaves_per_master) = fleet_size(arguments, 10, 10)?;
    let rate = rate(arguments, 1000.0)?;
    let (secs, warmup) = (seconds(arguments, "--secs", 30.0)?, seconds(arguments, "--warmup-secs", 3.0)?);
    let compare = arguments.switch("--compare-baseline");
    if compare && (!common.spawn || common.bridge != BridgeKind::Tradebridge) {
        anyhow::bail!("--compare-baseline needs --spawn (it starts tradebridge, then loadtest-baseline, with the same fleet)");
    }
    let config = trading_config(arguments, &common, events_per_master(masters as usize, &[(rate, warmup), (rate, secs)]))?;
    let persist = PersistOptions::parse(arguments, &common, Some(secs))?;
    arguments.finish()?;
    let machine = procfs::machine();
    procfs::raise_open_files_limit()?;
    let fleet = fleet(&common, masters, slaves_per_master)?;
    let phases = steady_phases(rate, warmup, secs);
    let load = Load { fleet: &fleet, peak_rate: rate, config: &config, phases: &phases };
    let mut runs = vec![run_once(&common, common.bridge, &load, None, persist.as_ref())?];
    if compare {
        runs.push(run_once(&common, BridgeKind::Baseline, &load, None, None)?);
    }
    let parameters = json!({
        "masters": fleet.masters.len(), "slaves": fleet.slaves.len(), "follows": fleet.follows.len(), "rate_events_per_second": rate,
        "secs": secs, "warmup_secs": warmup, "compare_baseline": compare, "trading": config_json(&config), "bridge": bridge_parameters(&common),
    });
    let budget = Some(common.budget_p99_ms);
    let mut all_failures = Vec::new();
    for run in &runs {
        all_failures.extend(failures(run.environment.kind.name(), &run.environment, &run.outcome, run.stop.as_ref(), budget));
    }
    let mut summary = metadata("fanout", &common, parameters, &machine);
    for run in &runs {
        summary[run.environment.kind.name()] = outcome_json(&run.environment, &run.outcome, run.stop.as_ref());
    }
    if let [tradebridge, baseline] = runs.as_slice() {
        summary["ratios_baseline_over_tradebridge"] = ratios(tradebridge, baseline);
    }
    let title = format!("fanout {masters}x{slaves_per_master} at {rate} events/s, {secs} s");
    let line = runs.iter().map(|run| format!("fanout {}: {}; {}{}", run.environment.kind.name(), headline(&run.outcome), cpu_headline(&run.outcome), persist_suffix(run))).collect::<Vec<_>>().join(" | ");
    finish_report(&common, "fanout", &title, summary, &runs, all_failures, &line)
}

/// The budget and verdict, files (each bridge's `.hgrm` distributions and
/// latency timeline), README row; the exit code. A run with `--persist`
/// adds its failures, the `persist` object, the lag plot and the
/// persister's timeline table.
pub(super) fn finish_report(common: &CommonOptions, scenario: &str, title: &str, mut summary: Value, runs: &[Finished], mut failures: Vec<String>, line: &str) -> anyhow::Result<u8> {
    let persist = runs.iter().find_map(|run| run.persist.as_ref());
    let plain_title = title;
    let title = match persist {
        Some(_) => format!("{title}, persister on"),
        None => title.to_string(),
    };
    let title = title.as_str();
    if let Some(record) = persist {
        failures.extend(record.failures.iter().cloned());
        summary["parameters"]["persist"] = record.settings.clone();
        summary["persist"] = record.json();
    }
    if let Some(run) = runs.iter().find(|run| run.reconfigure.is_some()) {
        let record = run.reconfigure.as_ref().expect("found");
        if record.failed > 0 || record.applied == 0 {
            failures.push(format!("--reconfigure-every-ms: {} of {} changes not applied: {:?}", record.failed, record.changes, record.failures));
        }
        let lost = run.outcome.counters.get("sessions_lost").copied().unwrap_or(0);
        if lost > 0 {
            failures.push(format!("--reconfigure-every-ms: {lost} sessions of the fleet were lost while only spare accounts' follows changed (close codes {:?})", run.outcome.close_codes));
        }
        summary["reconfigure"] = record.json();
        summary["reconfigure"]["fleet_sessions_lost"] = json!(lost);
    }
    summary["budget_p99_ms"] = json!(common.budget_p99_ms);
    summary["result"] = json!({ "pass": failures.is_empty(), "failures": failures });
    summary["machine_after"] = json!({ "load_average": procfs::load_average(), "other_busy_processes": procfs::busy_processes() });
    let folder = create_folder(common, scenario, &runs[0].environment.config_text)?;
    folder.write_summary(&summary)?;
    let prefixed = runs.len() > 1;
    let mut curves_owned = Vec::new();
    for run in runs {
        let latencies = measured(&run.outcome).latencies;
        let prefix = if prefixed { format!("{}_", run.environment.kind.name()) } else { String::new() };
        write_distributions(&folder, &prefix, &latencies)?;
        write_timeline(&folder, run.environment.kind.name(), title, &run.outcome)?;
        curves_owned.push((run.environment.kind.name(), latencies));
    }
    let mut curves: Vec<(String, &hdrhistogram::Histogram<u64>)> = Vec::new();
    for (name, latencies) in &curves_owned {
        curves.push((format!("{name} end-to-end"), &latencies.end_to_end));
        curves.push((format!("{name} end-to-end, uncorrected"), &latencies.end_to_end_uncorrected));
        curves.push((format!("{name} ack"), &latencies.ack));
    }
    let labelled: Vec<(&str, &hdrhistogram::Histogram<u64>)> = curves.iter().map(|(label, histogram)| (label.as_str(), *histogram)).collect();
    folder.write_plot("latency", title, &labelled)?;
    if let Some(record) = persist {
        folder.write("persist_timeline.tsv", &record.timeline.tsv())?;
        lag_plot(&folder.path.join("persist_lag.svg"), &format!("persister lag: {plain_title}"), &record.timeline)?;
    }
    index_row(common, &folder, title, line, &summary, runs)?;
    Ok(conclude(line, &failures_of(&summary), Some(&folder.path)))
}

fn failures_of(summary: &Value) -> Vec<String> {
    summary["result"]["failures"].as_array().map(|list| list.iter().filter_map(|item| item.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Appends the run to the README table of the output folder, if it has one.
fn index_row(common: &CommonOptions, folder: &RunFolder, title: &str, line: &str, summary: &Value, runs: &[Finished]) -> anyhow::Result<()> {
    let mut caveats: Vec<String> = summary["notes"].as_array().map(|notes| notes.iter().filter_map(|note| note.as_str().map(String::from)).collect()).unwrap_or_default();
    caveats.push(format!("{} cores; load {}", summary["machine"]["cores"], summary["machine"]["load_average"].as_str().unwrap_or("?")));
    for run in runs {
        let other = measured(&run.outcome);
        let busy = (other.machine_busy_seconds - other.bridge_cpu_seconds.unwrap_or(0.0) - other.harness_cpu_seconds) / other.phase.seconds().max(1e-9);
        caveats.push(format!("other processes used {:.2} cores during {}'s measured window", busy.max(0.0), run.environment.kind.name()));
    }
    let verdict = if summary["result"]["pass"].as_bool() == Some(true) { "PASS" } else { "FAIL" };
    let cells = [format!("[{}]({}/)", folder.name, folder.name), title.to_string(), format!("`{}`", crate::report::command_line()), format!("{verdict}: {line}"), caveats.join("; ")];
    let _ = append_index_row(&common.out_dir, &cells)?;
    Ok(())
}

/// Ratios baseline / tradebridge of the headline figures.
fn ratios(tradebridge: &Finished, baseline: &Finished) -> Value {
    let figures = |run: &Finished| {
        let merged = measured(&run.outcome);
        let (latencies, bridge_cpu) = (&merged.latencies, merged.bridge_cpu_seconds);
        let copies = latencies.end_to_end.len().max(1) as f64;
        let quantile = |q: f64| latencies.end_to_end.value_at_quantile(q) as f64;
        (quantile(0.5), quantile(0.99), quantile(0.999), bridge_cpu.map(|cpu| cpu / copies), run.outcome.bridge_memory.map(|memory| memory.hwm_kib as f64))
    };
    let (ours, theirs) = (figures(tradebridge), figures(baseline));
    let ratio = |theirs: f64, ours: f64| if ours > 0.0 { json!(theirs / ours) } else { Value::Null };
    json!({
        "end_to_end_p50": ratio(theirs.0, ours.0),
        "end_to_end_p99": ratio(theirs.1, ours.1),
        "end_to_end_p99_9": ratio(theirs.2, ours.2),
        "cpu_per_copy": theirs.3.zip(ours.3).map(|(theirs, ours)| ratio(theirs, ours)),
        "rss_peak": theirs.4.zip(ours.4).map(|(theirs, ours)| ratio(theirs, ours)),
        "meaning": "baseline figure divided by tradebridge's: above 1 means tradebridge is lower (better)",
    })
}

pub(super) fn config_json(config: &TradingConfig) -> Value {
    json!({
        "client_threads": config.client_threads, "open_positions_per_master": config.open_positions_max, "modifies_per_position": config.modifies_per_position,
        "outbox_events_max": config.outbox_events_max, "snapshot_secs": config.snapshot_interval.as_secs(), "drain_timeout_secs": config.drain_timeout.as_secs_f64(),
        "churn": config.churn, "stall": config.stall, "seed": config.seed,
    })
}

pub(super) fn bridge_parameters(common: &CommonOptions) -> Value {
    json!({
        "spawn": common.spawn, "bridge": common.bridge.name(), "journal_sync": common.journal_sync.as_deref().unwrap_or("group (default)"), "idle": common.idle.as_deref().unwrap_or("park (default)"), "routing": common.routing.as_deref().unwrap_or("auto (default)"), "journal_flush": common.journal_flush.as_deref().unwrap_or("auto (default)"), "hot_thread_slice_us": common.hot_thread_slice_us.map_or("0 (default)".to_string(), |slice_us| slice_us.to_string()),
        "shards": common.shards.map_or_else(|| json!("default (1 with the router inline, else one per core less one)"), |shards| json!(shards)), "hb_ms": common.hb_ms, "fault": common.fault, "baseline_threads": common.baseline_threads,
    })
}

/// `loadtest churn`: random disconnects and reconnects of masters and
/// slaves while trading; lost and duplicated copies must be zero.
pub fn churn(arguments: &Arguments) -> anyhow::Result<u8> {
    let common = CommonOptions::parse(arguments)?;
    let (masters, slaves_per_master) = fleet_size(arguments, 5, 5)?;
    let rate = rate(arguments, 200.0)?;
    let (secs, warmup) = (seconds(arguments, "--secs", 30.0)?, seconds(arguments, "--warmup-secs", 2.0)?);
    let mean_ms = arguments.checked("--churn-mean-ms", 3_000u64, "10 to 3600000 ms between one EA's disconnects", |value| (10..=3_600_000).contains(&value))?;
    let reconnect_delay_ms_max = arguments.checked("--reconnect-delay-ms-max", 500u64, "0 to 60000 ms", |value| value <= 60_000)?;
    let mut config = trading_config(arguments, &common, events_per_master(masters as usize, &[(rate, warmup), (rate, secs)]))?;
    config.churn = Some(ChurnSettings { mean_ms, reconnect_delay_ms_max });
    let persist = PersistOptions::parse(arguments, &common, Some(secs))?;
    arguments.finish()?;
    let machine = procfs::machine();
    procfs::raise_open_files_limit()?;
    let fleet = fleet(&common, masters, slaves_per_master)?;
    let phases = steady_phases(rate, warmup, secs);
    let run = run_once(&common, common.bridge, &Load { fleet: &fleet, peak_rate: rate, config: &config, phases: &phases }, None, persist.as_ref())?;
    let budget = common.budget_given.then_some(common.budget_p99_ms);
    let failures = failures(run.environment.kind.name(), &run.environment, &run.outcome, run.stop.as_ref(), budget);
    let parameters = json!({
        "masters": masters, "slaves_per_master": slaves_per_master, "rate_events_per_second": rate, "secs": secs, "warmup_secs": warmup,
        "trading": config_json(&config), "bridge": bridge_parameters(&common),
        "latency_gate": if budget.is_some() { "on (--budget-p99-ms given)" } else { "off: churn latency includes the time a disconnected EA is away; give --budget-p99-ms to gate on it" },
    });
    let mut summary = metadata("churn", &common, parameters, &machine);
    summary[run.environment.kind.name()] = outcome_json(&run.environment, &run.outcome, run.stop.as_ref());
    let counters = &run.outcome.counters;
    let title = format!("churn {masters}x{slaves_per_master} at {rate} events/s, {secs} s, one disconnect per EA every {mean_ms} ms on average");
    let line = format!(
        "churn: {}; {} forced disconnects, {} reconnects, {} events re-sent, {} re-deliveries{}",
        headline(&run.outcome),
        counters["disconnects_forced"],
        counters["connects"].saturating_sub((fleet.masters.len() + fleet.slaves.len()) as u64),
        counters["events_resent"],
        run.outcome.counts.redelivered,
        persist_suffix(&run)
    );
    finish_report(&common, "churn", &title, summary, &[run], failures, &line)
}

/// `loadtest slow-slave`: one slave stops reading (and writing) during the
/// second half; the other slaves' latency must not move.
pub fn slow_slave(arguments: &Arguments) -> anyhow::Result<u8> {
    let common = CommonOptions::parse(arguments)?;
    let (masters, slaves_per_master) = fleet_size(arguments, 2, 5)?;
    let rate = rate(arguments, 200.0)?;
    let (secs, warmup) = (seconds(arguments, "--secs", 20.0)?, seconds(arguments, "--warmup-secs", 2.0)?);
    let ratio_max = arguments.checked("--moved-p99-ratio-max", 2.0f64, "a ratio above 1", |value: f64| value > 1.0)?;
    let moved_ms_min = arguments.checked("--moved-ms-min", 5.0f64, "milliseconds >= 0", |value: f64| value >= 0.0)?;
    if slaves_per_master == 0 {
        anyhow::bail!("--slaves-per-master 0: slow-slave needs at least one slave");
    }
    let mut config = trading_config(arguments, &common, events_per_master(masters as usize, &[(rate, warmup), (rate, secs)]))?;
    config.stall = Some(StallSettings { slave: 0, phase: "stalled".into() });
    let persist = PersistOptions::parse(arguments, &common, Some(secs))?;
    arguments.finish()?;
    let machine = procfs::machine();
    procfs::raise_open_files_limit()?;
    let fleet = fleet(&common, masters, slaves_per_master)?;
    let phases = vec![
        PhaseSpec { name: "warmup".into(), rate_per_second: rate, seconds: warmup, recorded: false },
        PhaseSpec { name: "normal".into(), rate_per_second: rate, seconds: secs / 2.0, recorded: true },
        PhaseSpec { name: "stalled".into(), rate_per_second: rate, seconds: secs / 2.0, recorded: true },
    ];
    let run = run_once(&common, common.bridge, &Load { fleet: &fleet, peak_rate: rate, config: &config, phases: &phases }, None, persist.as_ref())?;
    let mut failures = failures(run.environment.kind.name(), &run.environment, &run.outcome, run.stop.as_ref(), Some(common.budget_p99_ms));
    let p99 = |name: &str| run.outcome.phases.iter().find(|phase| phase.phase.name == name).map_or(0.0, |phase| phase.latencies.end_to_end.value_at_quantile(0.99) as f64 / 1000.0);
    let (normal_ms, stalled_ms) = (p99("normal"), p99("stalled"));
    let moved = stalled_ms > normal_ms * ratio_max && stalled_ms - normal_ms > moved_ms_min;
    if moved {
        failures.push(format!("the other slaves' end-to-end p99 moved from {normal_ms:.3} ms to {stalled_ms:.3} ms while slave {} stalled (allowed: x{ratio_max} or +{moved_ms_min} ms)", fleet.slaves[0].login));
    }
    let parameters = json!({
        "masters": masters, "slaves_per_master": slaves_per_master, "rate_events_per_second": rate, "secs": secs, "warmup_secs": warmup,
        "stalled_slave": fleet.slaves[0].login, "moved_p99_ratio_max": ratio_max, "moved_ms_min": moved_ms_min, "trading": config_json(&config), "bridge": bridge_parameters(&common),
    });
    let mut summary = metadata("slow-slave", &common, parameters, &machine);
    summary[run.environment.kind.name()] = outcome_json(&run.environment, &run.outcome, run.stop.as_ref());
    summary["others_p99_ms"] = json!({ "normal": normal_ms, "stalled": stalled_ms, "ratio": if normal_ms > 0.0 { json!(stalled_ms / normal_ms) } else { Value::Null }, "moved": moved,
        "note": "latencies are the other slaves' only: the stalled slave records none; its copies are still checked for loss and duplicates after it resumes" });
    let title = format!("slow-slave {masters}x{slaves_per_master} at {rate} events/s: slave {} stops reading for {} s", fleet.slaves[0].login, secs / 2.0);
    let line = format!("slow-slave: others' e2e p99 {normal_ms:.3} ms normal, {stalled_ms:.3} ms while one slave stalled; {}{}", headline(&run.outcome), persist_suffix(&run));
    finish_report(&common, "slow-slave", &title, summary, &[run], failures, &line)
}

/// `loadtest ramp`: raises the rate step by step until the end-to-end p99
/// of a step breaks the budget; reports the highest sustained copies/s.
pub fn ramp(arguments: &Arguments) -> anyhow::Result<u8> {
    let common = CommonOptions::parse(arguments)?;
    let (masters, slaves_per_master) = fleet_size(arguments, 10, 10)?;
    let rate_start = arguments.checked("--rate-start", 500.0f64, "events per second above 0", |value: f64| value > 0.0)?;
    let factor = arguments.checked("--rate-factor", 1.5f64, "a factor above 1", |value: f64| value > 1.0)?;
    let rate_max = arguments.checked("--rate-max", 64_000.0f64, "events per second above --rate-start", |value: f64| value >= rate_start)?;
    let step_secs = seconds(arguments, "--step-secs", 5.0)?;
    let warmup = seconds(arguments, "--warmup-secs", 2.0)?;
    let steps = ramp_rates(rate_start, factor, rate_max);
    let plan: Vec<(f64, f64)> = std::iter::once((rate_start, warmup)).chain(steps.iter().map(|rate| (*rate, step_secs))).collect();
    let config = trading_config(arguments, &common, events_per_master(masters as usize, &plan))?;
    let persist = PersistOptions::parse(arguments, &common, None)?;
    arguments.finish()?;
    let machine = procfs::machine();
    procfs::raise_open_files_limit()?;
    let fleet = fleet(&common, masters, slaves_per_master)?;
    let budget_ms = common.budget_p99_ms;
    let mut remaining = steps.clone().into_iter().skip(1);
    let mut step_number = 1;
    let next: NextPhase<'_> = Box::new(move |finished: &PhaseOutcome| {
        let p99_ms = finished.latencies.end_to_end.value_at_quantile(0.99) as f64 / 1000.0;
        let complete = finished.latencies.end_to_end.len() >= finished.copies_expected;
        eprintln!("loadtest: {} at {:.0} events/s: p99 {p99_ms:.3} ms, {} of {} copies", finished.phase.name, finished.phase.rate_per_second, finished.latencies.end_to_end.len(), finished.copies_expected);
        if finished.phase.recorded && (p99_ms > budget_ms || !complete) {
            return None;
        }
        let rate = remaining.next()?;
        step_number += 1;
        Some(PhaseSpec { name: format!("step-{step_number}"), rate_per_second: rate, seconds: step_secs, recorded: true })
    });
    let first = vec![
        PhaseSpec { name: "warmup".into(), rate_per_second: rate_start, seconds: warmup, recorded: false },
        PhaseSpec { name: "step-1".into(), rate_per_second: steps[0], seconds: step_secs, recorded: true },
    ];
    let peak = *steps.last().expect("at least one step");
    let run = run_once(&common, common.bridge, &Load { fleet: &fleet, peak_rate: peak, config: &config, phases: &first }, Some(next), persist.as_ref())?;
    ramp_report(&common, &machine, run, masters, slaves_per_master, (rate_start, factor, rate_max, step_secs, warmup), &config)
}

/// The step rates of a ramp: start, start x factor, ... up to rate_max.
pub fn ramp_rates(start: f64, factor: f64, max: f64) -> Vec<f64> {
    let mut rates = vec![start];
    while let Some(last) = rates.last().copied() {
        let next = (last * factor).round();
        if next > max || rates.len() >= crate::schedule::PHASES_MAX - 2 {
            break;
        }
        rates.push(next);
    }
    rates
}

fn ramp_report(common: &CommonOptions, machine: &procfs::Machine, run: Finished, masters: u32, slaves_per_master: u32, shape: (f64, f64, f64, f64, f64), config: &TradingConfig) -> anyhow::Result<u8> {
    let (rate_start, factor, rate_max, step_secs, warmup) = shape;
    let budget_ms = common.budget_p99_ms;
    let steps: Vec<&PhaseOutcome> = run.outcome.phases.iter().filter(|phase| phase.phase.recorded).collect();
    let sustained = |phase: &PhaseOutcome| phase.latencies.end_to_end.value_at_quantile(0.99) as f64 / 1000.0 <= budget_ms && phase.latencies.end_to_end.len() >= phase.copies_expected;
    let best = steps.iter().take_while(|phase| sustained(phase)).last();
    let best_copies = best.map_or(0.0, |phase| phase.latencies.end_to_end.len() as f64 / phase.phase.seconds());
    let best_rate = best.map_or(0.0, |phase| phase.phase.rate_per_second);
    let broke = steps.iter().find(|phase| !sustained(phase)).map(|phase| phase.phase.name.clone());
    // The ramp's latency verdict is its result, not a failure: only
    // correctness and a clean exit fail it.
    let failures = failures(run.environment.kind.name(), &run.environment, &run.outcome, run.stop.as_ref(), None);
    let parameters = json!({
        "masters": masters, "slaves_per_master": slaves_per_master, "rate_start": rate_start, "rate_factor": factor, "rate_max": rate_max, "step_secs": step_secs, "warmup_secs": warmup,
        "trading": config_json(config), "bridge": bridge_parameters(common),
    });
    let mut summary = metadata("ramp", common, parameters, machine);
    summary[run.environment.kind.name()] = outcome_json(&run.environment, &run.outcome, run.stop.as_ref());
    summary["ramp"] = json!({
        "highest_sustained_events_per_second": best_rate, "highest_sustained_copies_per_second": best_copies, "first_step_over_budget": broke,
        "rule": "a step is sustained when its end-to-end p99 is within --budget-p99-ms and every copy of its events was measured",
        "steps": steps.iter().map(|phase| phase_json(phase)).collect::<Vec<_>>(),
    });
    let title = format!("ramp {masters}x{slaves_per_master} from {rate_start} events/s x{factor} per {step_secs} s step until p99 > {budget_ms} ms");
    let line = format!(
        "ramp: highest sustained {best_rate:.0} events/s = {best_copies:.0} copies/s (p99 within {budget_ms} ms); first step over budget: {}{}",
        broke.as_deref().unwrap_or("none up to --rate-max"),
        persist_suffix(&run)
    );
    finish_report(common, "ramp", &title, summary, &[run], failures, &line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_rates_grow_by_the_factor_up_to_the_max() {
        // Shows: steps start at the start rate, grow by the factor (rounded) and stop before exceeding the maximum.
        assert_eq!(ramp_rates(1000.0, 2.0, 8000.0), vec![1000.0, 2000.0, 4000.0, 8000.0]);
        assert_eq!(ramp_rates(500.0, 1.5, 2000.0), vec![500.0, 750.0, 1125.0, 1688.0]);
        assert_eq!(ramp_rates(10.0, 2.0, 10.0), vec![10.0]);
    }
}
