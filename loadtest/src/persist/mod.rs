//! `--persist`: the bridge's Postgres persister under load. A durable
//! throwaway Postgres cluster, the `[persist]` table of the spawned
//! bridge's configuration, the persister's lag sampled through the run,
//! an optional Postgres outage in the measured phase, the bounded wait for
//! the catch-up, and the zero-lost-rows check of what Postgres holds.
//!
//! # Layout
//! - [`PersistOptions`] and [`Outage`]: the flags, validated.
//! - [`PersistTable`]: the `[persist]` TOML written into the config.
//! - [`Database`]: the cluster (`tradebridge_persist::testing::TestCluster`,
//!   fsync on) and its one database.
//! - [`run_persisted`]: runs a load with the [`monitor::Monitor`] watching,
//!   then waits for the catch-up and counts the rows.
//! - [`PersistRecord`]: everything found, its failures, its JSON and its
//!   headline.
//! - [`timeline`]: samples, marks and the lag figures; [`check`]: the row
//!   counts against the harness's own.
//!
//! # Invariants
//! - The harness still loads the bridge only through the wire protocol;
//!   Postgres is reached only by `pg_ctl` and `psql` child processes of the
//!   test cluster, to stop it, start it and count rows after the load.
//! - Only a bridge the harness spawns gets `--persist` (it writes the
//!   config), and only tradebridge (the baseline has no persister).
//! - Every wait is bounded: the catch-up by `--persist-catchup-secs`, the
//!   cluster's commands by `pg_ctl`'s own 60 s.

pub mod check;
pub mod monitor;
pub mod timeline;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Map, Value};
use tradebridge_persist::testing::TestCluster;

use self::check::{compare, comparison_json, lost_rows, Comparison, Expected, RowCounts, COUNT_SQL};
use self::monitor::{Monitor, Watched};
use self::timeline::{LagSummary, Timeline, LAG_RECORDS};
use crate::bridge::BridgeKind;
use crate::cli::Arguments;
use crate::run::{PhaseObserver, TradingOutcome};
use crate::scenario::common::CommonOptions;

/// The database the bridge writes to, in the throwaway cluster.
pub const DATABASE_NAME: &str = "tradebridge";

/// Default bound on the wait for the catch-up after a trading scenario.
pub const CATCH_UP_SECS_DEFAULT: u64 = 120;

/// `CONFIG.md`'s default `retry_backoff_ms_min`; a lower
/// `--persist-retry-ms-max` lowers it too (it may not exceed the maximum).
const RETRY_BACKOFF_MS_MIN_DEFAULT: u64 = 200;

/// The bridge counters the row check compares with.
const EVENTS_JOURNALED: &str = "tradebridge_events_journaled_total";
const COPIES_JOURNALED: &str = "tradebridge_copies_journaled_total";

/// Persister counters that must stay 0 in a passing run.
const MUST_BE_ZERO: [&str; 3] = ["tradebridge_persist_dead_letters_total", "tradebridge_persist_gap_records_total", "tradebridge_persist_journal_overruns_total"];

/// How long the Postgres outage lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OutageLength {
    /// `--postgres-outage-secs`.
    Secs(f64),
    /// Until the run's EAs have left (`persist-catchup`): the backlog is
    /// everything the load journaled.
    UntilLoadEnds,
}

/// A planned Postgres outage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outage {
    /// Seconds after the measured phase began.
    pub at_secs: f64,
    pub length: OutageLength,
}

/// The `--persist` flags.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistOptions {
    /// `--persist-batch-rows`; `None` keeps the bridge's default.
    pub batch_rows_max: Option<u32>,
    /// `--persist-batch-ms`; `None` keeps the bridge's default.
    pub batch_interval_ms: Option<u64>,
    /// `--persist-retry-ms-max`; `None` keeps the bridge's default.
    pub retry_backoff_ms_max: Option<u64>,
    /// `--persist-catchup-secs`: the longest wait for lag 0 after the load.
    pub catch_up_timeout: Duration,
    pub outage: Option<Outage>,
    /// `--postgres-dir`: where the throwaway cluster lives (default: the
    /// temporary directory, on the same filesystem as the bridge's journal).
    pub postgres_dir: Option<PathBuf>,
    /// `--postgres-conf`: server settings appended to the throwaway
    /// cluster's `postgresql.conf` (default: none, Postgres' defaults).
    pub postgres_conf: PostgresConf,
}

/// The server settings of the throwaway cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct PostgresConf {
    /// Where they came from, for the report.
    pub source: String,
    pub text: String,
}

impl PostgresConf {
    fn defaults() -> PostgresConf {
        PostgresConf { source: "Postgres' defaults".to_owned(), text: String::new() }
    }
}

/// A flag's value, if given, parsed and checked.
fn optional<T: FromStr + Copy>(arguments: &Arguments, name: &str, expected: &str, valid: impl Fn(T) -> bool) -> anyhow::Result<Option<T>> {
    let Some(text) = arguments.text(name) else { return Ok(None) };
    match text.parse::<T>() {
        Ok(value) if valid(value) => Ok(Some(value)),
        _ => bail!("{name} {text:?}: expected {expected}"),
    }
}

/// Refuses `flag` where the harness cannot write the bridge's `[persist]`.
pub fn require_spawned_tradebridge(common: &CommonOptions, flag: &str) -> anyhow::Result<()> {
    if !common.spawn {
        bail!("{flag} needs --spawn: the harness starts a throwaway Postgres and writes its [persist] table into the configuration of the tradebridge it spawns (a running bridge's database is not reachable from here)");
    }
    if common.bridge != BridgeKind::Tradebridge {
        bail!("{flag} with --bridge baseline: the baseline bridge has no persister; use --bridge tradebridge (the default)");
    }
    Ok(())
}

impl PersistOptions {
    /// The batch, retry and catch-up flags, whether or not `--persist` was given.
    fn settings(arguments: &Arguments, catch_up_secs_default: u64) -> anyhow::Result<(PersistOptions, Vec<&'static str>)> {
        let batch_rows_max = optional(arguments, "--persist-batch-rows", "1 to 100000 rows per transaction (batch_rows_max)", |value: u32| (1..=100_000).contains(&value))?;
        let batch_interval_ms = optional(arguments, "--persist-batch-ms", "1 to 60000 ms (batch_interval_ms)", |value: u64| (1..=60_000).contains(&value))?;
        let retry_backoff_ms_max = optional(arguments, "--persist-retry-ms-max", "10 to 600000 ms (retry_backoff_ms_max)", |value: u64| (10..=600_000).contains(&value))?;
        let catch_up_secs = optional(arguments, "--persist-catchup-secs", "1 to 3600 seconds", |value: u64| (1..=3_600).contains(&value))?;
        let postgres_dir = arguments.text("--postgres-dir").map(PathBuf::from);
        if let Some(directory) = &postgres_dir {
            if !directory.is_dir() {
                bail!("--postgres-dir {}: expected an existing directory", directory.display());
            }
        }
        let postgres_conf = match arguments.text("--postgres-conf").as_deref() {
            None => PostgresConf::defaults(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("--postgres-conf {path}: expected a readable file of postgresql.conf lines"))?;
                PostgresConf { source: path.to_owned(), text }
            }
        };
        let mut given = Vec::new();
        for (name, present) in [
            ("--persist-batch-rows", batch_rows_max.is_some()),
            ("--persist-batch-ms", batch_interval_ms.is_some()),
            ("--persist-retry-ms-max", retry_backoff_ms_max.is_some()),
            ("--persist-catchup-secs", catch_up_secs.is_some()),
            ("--postgres-dir", postgres_dir.is_some()),
            ("--postgres-conf", arguments.text("--postgres-conf").is_some()),
        ] {
            if present {
                given.push(name);
            }
        }
        let options = PersistOptions {
            batch_rows_max,
            batch_interval_ms,
            retry_backoff_ms_max,
            catch_up_timeout: Duration::from_secs(catch_up_secs.unwrap_or(catch_up_secs_default)),
            outage: None,
            postgres_dir,
            postgres_conf,
        };
        Ok((options, given))
    }

    /// The flags of a trading scenario; `None` without `--persist`.
    /// `measured_secs` is the measured phase's length when it is known
    /// before the run (the outage must begin inside it).
    pub fn parse(arguments: &Arguments, common: &CommonOptions, measured_secs: Option<f64>) -> anyhow::Result<Option<PersistOptions>> {
        let enabled = arguments.switch("--persist");
        let (mut options, mut given) = PersistOptions::settings(arguments, CATCH_UP_SECS_DEFAULT)?;
        let outage_at = optional(arguments, "--postgres-outage-at", "seconds into the measured phase, 0 to 86400", |value: f64| (0.0..=86_400.0).contains(&value))?;
        let outage_secs = optional(arguments, "--postgres-outage-secs", "seconds Postgres stays down, 0.1 to 86400", |value: f64| (0.1..=86_400.0).contains(&value))?;
        if outage_at.is_some() {
            given.push("--postgres-outage-at");
        }
        if outage_secs.is_some() {
            given.push("--postgres-outage-secs");
        }
        if !enabled {
            if let Some(flag) = given.first() {
                bail!("{flag} needs --persist (the persister and its Postgres are only set up with --persist)");
            }
            return Ok(None);
        }
        require_spawned_tradebridge(common, "--persist")?;
        options.outage = match (outage_at, outage_secs) {
            (None, None) => None,
            (Some(_), None) => bail!("--postgres-outage-at needs --postgres-outage-secs: how long Postgres stays down"),
            (None, Some(_)) => bail!("--postgres-outage-secs needs --postgres-outage-at: when, in seconds into the measured phase, Postgres stops"),
            (Some(at_secs), Some(secs)) => {
                if let Some(measured) = measured_secs.filter(|measured| at_secs >= *measured) {
                    bail!("--postgres-outage-at {at_secs}: expected less than the measured phase's {measured} s, so the outage begins while the load runs");
                }
                Some(Outage { at_secs, length: OutageLength::Secs(secs) })
            }
        };
        Ok(Some(options))
    }

    /// The flags of `persist-catchup`: Postgres goes away when the measured
    /// phase begins and comes back when the load has ended.
    pub fn parse_catch_up(arguments: &Arguments, common: &CommonOptions, catch_up_secs_default: u64) -> anyhow::Result<PersistOptions> {
        // Accepted for symmetry with the trading scenarios: it is implied.
        let _ = arguments.switch("--persist");
        for flag in ["--postgres-outage-at", "--postgres-outage-secs"] {
            if arguments.text(flag).is_some() {
                bail!("{flag}: persist-catchup stops Postgres for the whole measured phase itself; use it with fanout, churn, slow-slave or ramp");
            }
        }
        require_spawned_tradebridge(common, "persist-catchup")?;
        let (mut options, _) = PersistOptions::settings(arguments, catch_up_secs_default)?;
        options.outage = Some(Outage { at_secs: 0.0, length: OutageLength::UntilLoadEnds });
        Ok(options)
    }

    /// The `[persist]` table pointing at `database_url`.
    pub fn table(&self, database_url: &str) -> PersistTable {
        PersistTable { database_url: database_url.to_string(), batch_rows_max: self.batch_rows_max, batch_interval_ms: self.batch_interval_ms, retry_backoff_ms_max: self.retry_backoff_ms_max }
    }

    /// The settings for the report; the bridge's defaults named as such.
    pub fn json(&self) -> Value {
        let or_default = |value: Option<u64>, default: &str| value.map_or_else(|| json!(format!("{default} (bridge default)")), |value| json!(value));
        json!({
            "batch_rows_max": or_default(self.batch_rows_max.map(u64::from), "5000"),
            "batch_interval_ms": or_default(self.batch_interval_ms, "100"),
            "retry_backoff_ms_max": or_default(self.retry_backoff_ms_max, "5000"),
            "catch_up_timeout_secs": self.catch_up_timeout.as_secs(),
            "postgres_dir": self.postgres_dir.as_ref().map_or_else(|| json!(format!("{} (the temporary directory)", std::env::temp_dir().display())), |directory| json!(directory.display().to_string())),
            "postgres_settings": { "source": self.postgres_conf.source, "text": self.postgres_conf.text },
            "outage": self.outage.map(|outage| json!({
                "at_secs_into_measured_phase": outage.at_secs,
                "secs": match outage.length { OutageLength::Secs(secs) => json!(secs), OutageLength::UntilLoadEnds => json!("until the load ends") },
            })),
        })
    }
}

/// The `[persist]` table of the spawned bridge's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistTable {
    pub database_url: String,
    pub batch_rows_max: Option<u32>,
    pub batch_interval_ms: Option<u64>,
    pub retry_backoff_ms_max: Option<u64>,
}

impl PersistTable {
    /// The TOML text, to append after the generated config's last table.
    pub fn toml(&self) -> String {
        let mut text = String::with_capacity(256);
        text.push_str("\n# Written by loadtest --persist: a throwaway Postgres cluster (fsync on), removed after the run.\n[persist]\n");
        let _ = writeln!(text, "database_url = \"{}\"", self.database_url);
        text.push_str("migrate_on_start = true\n");
        // The fleet's accounts stay in the file the harness writes (and
        // --reconfigure-every-ms edits), not in Postgres's tables.
        text.push_str("config_source = \"file\"\n");
        if let Some(rows) = self.batch_rows_max {
            let _ = writeln!(text, "batch_rows_max = {rows}");
        }
        if let Some(interval) = self.batch_interval_ms {
            let _ = writeln!(text, "batch_interval_ms = {interval}");
        }
        if let Some(maximum) = self.retry_backoff_ms_max {
            if maximum < RETRY_BACKOFF_MS_MIN_DEFAULT {
                let _ = writeln!(text, "retry_backoff_ms_min = {maximum}");
            }
            let _ = writeln!(text, "retry_backoff_ms_max = {maximum}");
        }
        text
    }
}

/// The throwaway cluster and its database.
pub struct Database {
    cluster: TestCluster,
}

impl Database {
    /// Starts a durable cluster (fsync on: the persister's commits cost what
    /// they would in production) and creates [`DATABASE_NAME`].
    pub fn start(directory: Option<&Path>, settings: &str) -> anyhow::Result<Database> {
        let parent = directory.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        let cluster = TestCluster::start_in(true, &parent, settings).context("--persist: starting a throwaway Postgres cluster (initdb and pg_ctl of the newest /usr/lib/postgresql/<version>/bin, or TRADEBRIDGE_PG_BIN)")?;
        cluster.create_database(DATABASE_NAME).with_context(|| format!("--persist: creating database {DATABASE_NAME}"))?;
        Ok(Database { cluster })
    }

    /// The bridge's `database_url` (no password: the cluster trusts loopback).
    pub fn url(&self) -> String {
        self.cluster.url(DATABASE_NAME)
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        self.cluster.stop()
    }

    pub fn restart(&self) -> anyhow::Result<()> {
        self.cluster.restart()
    }

    /// Every count of the row check, in one statement.
    pub fn count_rows(&self) -> anyhow::Result<RowCounts> {
        let text = self.cluster.psql(DATABASE_NAME, COUNT_SQL)?;
        RowCounts::parse(&text).map_err(|error| anyhow!(error))
    }
}

/// What [`run_persisted`] found besides the load's own result.
pub struct Persisted {
    pub watched: Watched,
    /// When the catch-up was reached (the timeline's marks say from when).
    pub caught_up_secs: Option<f64>,
    pub catch_up_timeout: Duration,
    /// The bridge's series after the catch-up.
    pub values_after: Map<String, Value>,
    pub counts: Result<RowCounts, String>,
}

/// Stops the monitor's threads however the scope is left (a panic in the
/// load included), so the scope's join never waits on them forever.
struct StopOnDrop<'monitor, 'database>(&'monitor Monitor<'database>);

impl Drop for StopOnDrop<'_, '_> {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

/// Runs `load` (given the monitor as its phase observer) while the
/// persister is sampled and the outage, if any, happens; then waits for the
/// catch-up and counts the rows. The bridge is still running on return.
pub fn run_persisted<T>(database: &Database, metrics: SocketAddr, options: &PersistOptions, load: impl FnOnce(&dyn PhaseObserver) -> anyhow::Result<T>) -> anyhow::Result<(T, Persisted)> {
    let monitor = Monitor::new(metrics, database);
    std::thread::scope(|scope| {
        let monitor = &monitor;
        let guard = StopOnDrop(monitor);
        let sampler = scope.spawn(move || monitor.sample_loop());
        let outage = options.outage.map(|outage| scope.spawn(move || monitor.outage_loop(outage)));
        let loaded = load(monitor);
        if loaded.is_err() {
            let _ = monitor.stop();
        }
        monitor.drained();
        if let Some(handle) = outage {
            handle.join().map_err(|_| anyhow!("the Postgres outage thread panicked"))?;
        }
        let value = loaded?;
        let from = monitor.catch_up_from();
        eprintln!("loadtest: waiting (at most {} s) for the persister to catch up", options.catch_up_timeout.as_secs());
        let caught_up = monitor.wait_caught_up(from, options.catch_up_timeout);
        let values_after = monitor.values_now();
        let counts = database.count_rows().map_err(|error| format!("{error:#}"));
        let watched = monitor.stop();
        drop(guard);
        sampler.join().map_err(|_| anyhow!("the persister sampling thread panicked"))?;
        Ok((value, Persisted { watched, caught_up_secs: caught_up, catch_up_timeout: options.catch_up_timeout, values_after, counts }))
    })
}

/// Everything `--persist` found in one run, judged.
pub struct PersistRecord {
    pub database_url: String,
    pub settings: Value,
    /// With the measured phase's start at 0.
    pub timeline: Timeline,
    pub summary: LagSummary,
    pub counts: Option<RowCounts>,
    pub expected: Expected,
    pub comparisons: Vec<Comparison>,
    /// The bridge's `tradebridge_persist_*` series after the catch-up.
    pub bridge_values: Map<String, Value>,
    pub scrape_failures: u64,
    pub scrape_errors: Vec<String>,
    pub failures: Vec<String>,
}

impl PersistRecord {
    /// Judges what [`run_persisted`] found against the harness's counts.
    /// `results_may_be_fewer` under churn (see [`Expected`]).
    pub fn judge(options: &PersistOptions, database_url: String, persisted: Persisted, outcome: &TradingOutcome, results_may_be_fewer: bool) -> PersistRecord {
        let Persisted { watched, caught_up_secs, catch_up_timeout, values_after, counts } = persisted;
        let timeline = watched.timeline.shifted();
        let summary = timeline.summary();
        let counter = |name: &str| values_after.get(name).and_then(Value::as_f64).map(|value| value as u64);
        let harness = |name: &str| outcome.counters.get(name).copied().unwrap_or(0);
        let expected = Expected {
            events_acked: harness("events_acked"),
            events_journaled: counter(EVENTS_JOURNALED),
            copy_seqs_received: harness("copy_seqs_received"),
            copies_journaled: counter(COPIES_JOURNALED),
            results_written: harness("results_written"),
            results_may_be_fewer,
            persisted_journal_seq: timeline.samples.last().map(|sample| sample.persisted_journal_seq),
        };
        let mut failures = watched.outage_errors.iter().map(|error| format!("persist: {error}")).collect::<Vec<_>>();
        if timeline.samples.is_empty() {
            failures.push(format!("persist: no sample of the persister's metrics was taken ({} scrapes failed; first: {})", watched.scrape_failures, watched.scrape_errors.first().map_or("-", String::as_str)));
        }
        if caught_up_secs.is_none() {
            let lag = timeline.samples.last().map_or(0, |sample| sample.lag_records);
            failures.push(format!("persist: the persister had not caught up {} s after the load (or Postgres) came back: {LAG_RECORDS} still {lag} (--persist-catchup-secs)", catch_up_timeout.as_secs()));
        }
        for name in MUST_BE_ZERO {
            if let Some(value) = counter(name).filter(|value| *value > 0) {
                failures.push(format!("persist: {name} is {value}, expected 0"));
            }
        }
        let (counts, comparisons) = match counts {
            Ok(counts) => {
                let comparisons = compare(&counts, &expected);
                failures.extend(comparisons.iter().filter(|check| !check.ok).map(Comparison::failure));
                (Some(counts), comparisons)
            }
            Err(error) => {
                failures.push(format!("persist: counting the rows in Postgres failed: {error}"));
                (None, Vec::new())
            }
        };
        let bridge_values = values_after.into_iter().filter(|(name, _)| name.starts_with("tradebridge_persist_")).collect();
        PersistRecord {
            database_url,
            settings: options.json(),
            timeline,
            summary,
            counts,
            expected,
            comparisons,
            bridge_values,
            scrape_failures: watched.scrape_failures,
            scrape_errors: watched.scrape_errors,
            failures,
        }
    }

    /// Rows expected and missing; `None` when the rows could not be counted.
    pub fn lost_rows(&self) -> Option<u64> {
        self.counts.as_ref().map(|counts| lost_rows(counts, &self.expected))
    }

    /// `summary.json`'s `persist` object.
    pub fn json(&self) -> Value {
        let summary = &self.summary;
        let catch_up = summary.catch_up.as_ref();
        json!({
            "database": format!("{} (a throwaway cluster, fsync on, removed after the run)", self.database_url),
            "settings": self.settings,
            "time_axis": "seconds since the measured phase began (warm-up negative)",
            "rows_written": summary.rows_total,
            "rows_per_second_over_run": summary.run.map(|window| window.rows_per_second),
            "max_lag_records": summary.lag_records_max,
            "max_lag_seconds": summary.lag_seconds_max,
            "catch_up_secs": catch_up.and_then(|catch_up| catch_up.seconds),
            "catch_up_rows_per_second": catch_up.and_then(|catch_up| catch_up.writing.or(catch_up.whole)).map(|window| window.rows_per_second),
            "lost_rows": self.lost_rows(),
            "outage_window": self.timeline.marks.outage,
            "lag": summary,
            "marks": self.timeline.marks,
            "rows": self.counts.as_ref().map(|counts| comparison_json(counts, &self.expected, &self.comparisons)),
            "bridge_persist_metrics": self.bridge_values,
            "scrape_failures": self.scrape_failures,
            "scrape_errors": self.scrape_errors,
            "files": { "plot": "persist_lag.svg", "timeline": "persist_timeline.tsv" },
            "failures": self.failures,
        })
    }

    /// The persister's part of the one-line summary and the README row.
    pub fn headline(&self) -> String {
        let summary = &self.summary;
        let lost = self.lost_rows().map_or_else(|| "unknown".to_string(), |lost| lost.to_string());
        let mut line = format!(
            "persister on: {} rows written, lost rows {lost}, max lag {} records / {:.1} s",
            summary.rows_total, summary.lag_records_max, summary.lag_seconds_max
        );
        if let Some(outage) = &summary.outage {
            let down = outage.down_secs.map_or_else(|| "?".to_string(), |secs| format!("{secs:.1}"));
            let _ = write!(line, "; Postgres down {down} s from {:.1} s", outage.window.stop_begun_secs);
            if let (Some(first_write), Some(restarted)) = (outage.first_write_secs, outage.window.restarted_secs) {
                let _ = write!(line, ", persister writing again {:.1} s after the restart", first_write - restarted);
            }
            match (outage.recovered_secs, outage.window.restarted_secs) {
                (Some(recovered), Some(restarted)) => {
                    let rate = outage.writing.map_or_else(String::new, |window| format!(", {:.0} rows/s writing", window.rows_per_second));
                    let _ = write!(line, ", lag back to {} records {:.1} s after the restart{rate}", outage.lag_records_before_max, recovered - restarted);
                }
                _ => line.push_str(", lag not back to its level before the outage"),
            }
        }
        // After an outage that outlasted the load, the catch-up is the
        // outage's recovery, already said above.
        let restarted = summary.outage.and_then(|outage| outage.window.restarted_secs);
        if let Some(catch_up) = summary.catch_up.filter(|catch_up| catch_up.lag_records_at_start > 0 && Some(catch_up.from_secs) != restarted) {
            match (catch_up.seconds, catch_up.whole, catch_up.writing) {
                (Some(seconds), Some(whole), writing) => {
                    let writing = writing.map_or_else(String::new, |window| format!(", {:.0} rows/s writing", window.rows_per_second));
                    let _ = write!(line, "; catch-up {} rows in {seconds:.1} s{writing}", whole.rows);
                }
                _ => line.push_str("; never caught up"),
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(text: &str) -> Arguments {
        Arguments::parse(&text.split_whitespace().map(String::from).collect::<Vec<_>>()).expect("parses")
    }

    fn parse(text: &str, measured_secs: Option<f64>) -> anyhow::Result<Option<PersistOptions>> {
        let arguments = arguments(text);
        let common = CommonOptions::parse(&arguments)?;
        let options = PersistOptions::parse(&arguments, &common, measured_secs)?;
        arguments.finish()?;
        Ok(options)
    }

    fn error(text: &str, measured_secs: Option<f64>) -> String {
        format!("{:#}", parse(text, measured_secs).expect_err("refused"))
    }

    #[test]
    fn flags_parse_into_options_and_the_table() {
        // Shows: --persist with batch, retry and outage flags gives those settings, and the table carries them beside migrate_on_start.
        let options = parse("fanout --spawn --persist --persist-batch-rows 2000 --persist-batch-ms 50 --persist-retry-ms-max 100 --postgres-outage-at 10 --postgres-outage-secs 30", Some(30.0))
            .expect("valid")
            .expect("enabled");
        assert_eq!(options.outage, Some(Outage { at_secs: 10.0, length: OutageLength::Secs(30.0) }));
        assert_eq!(options.catch_up_timeout, Duration::from_secs(CATCH_UP_SECS_DEFAULT));
        let toml = options.table("postgres://postgres@127.0.0.1:5/tradebridge").toml();
        for line in ["[persist]", "database_url = \"postgres://postgres@127.0.0.1:5/tradebridge\"", "migrate_on_start = true", "batch_rows_max = 2000", "batch_interval_ms = 50", "retry_backoff_ms_min = 100", "retry_backoff_ms_max = 100"] {
            assert!(toml.lines().any(|candidate| candidate == line), "{line:?} missing in\n{toml}");
        }
        assert_eq!(parse("fanout --spawn", None).expect("valid"), None, "no --persist, no options");
    }

    #[test]
    fn postgres_directory_and_settings_flags() {
        // Shows: --postgres-dir takes an existing directory and refuses a missing one by name; --postgres-conf reads its file into the settings the report names; without them, Postgres' defaults in the temporary directory.
        let directory = std::env::temp_dir().join(format!("loadtest-pgconf-test-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("mkdir");
        let conf = directory.join("extra.conf");
        std::fs::write(&conf, "wal_writer_delay = 10ms\n").expect("write");
        let options = parse(&format!("fanout --spawn --persist --postgres-dir {} --postgres-conf {}", directory.display(), conf.display()), None).expect("valid").expect("enabled");
        assert_eq!(options.postgres_dir.as_deref(), Some(directory.as_path()));
        assert_eq!(options.postgres_conf.text, "wal_writer_delay = 10ms\n");
        assert_eq!(options.json()["postgres_settings"]["source"], json!(conf.display().to_string()));
        let missing = error(&format!("fanout --spawn --persist --postgres-dir {}/nope", directory.display()), None);
        assert!(missing.contains("--postgres-dir") && missing.contains("nope") && missing.contains("existing directory"), "{missing}");
        let unreadable = error(&format!("fanout --spawn --persist --postgres-conf {}/nope.conf", directory.display()), None);
        assert!(unreadable.contains("--postgres-conf") && unreadable.contains("nope.conf"), "{unreadable}");
        assert!(error(&format!("fanout --spawn --postgres-dir {}", directory.display()), None).contains("needs --persist"));
        let plain = parse("fanout --spawn --persist", None).expect("valid").expect("enabled");
        assert_eq!((plain.postgres_dir, plain.postgres_conf.text.as_str()), (None, ""));
        std::fs::remove_dir_all(&directory).expect("rm");
    }

    #[test]
    fn default_settings_are_left_to_the_bridge() {
        // Shows: without batch flags the table sets only the URL and migrate_on_start, so the bridge's defaults apply and the report says so.
        let options = parse("churn --spawn --persist", None).expect("valid").expect("enabled");
        let toml = options.table("postgres://x@127.0.0.1:1/db").toml();
        assert!(!toml.contains("batch_") && !toml.contains("retry_"), "{toml}");
        assert_eq!(options.json()["batch_rows_max"], json!("5000 (bridge default)"));
    }

    #[test]
    fn the_generated_config_with_the_table_loads_in_the_bridge_parser() {
        // Shows: the fleet's config with the [persist] table appended is a valid tradebridge config whose [persist] holds what the flags said.
        let fleet = crate::fleet::Fleet::generate(2, 2).expect("fleet");
        let settings = crate::fleet::ServerSettings {
            listen: "127.0.0.1:1".parse().expect("address"),
            journal_dir: std::path::PathBuf::from("/tmp/journal"),
            metrics_listen: Some("127.0.0.1:2".parse().expect("address")),
            journal_sync: None,
            idle: None,
            routing: None,
            journal_flush: None,
            hot_thread_slice_us: None,
            shards: None,
            hb_ms: 5000,
            rate_limit_per_second: 1000,
            rate_limit_burst: 2000,
            connections_max: 20_000,
        };
        let table = PersistTable { database_url: "postgres://postgres@127.0.0.1:5432/tradebridge".into(), batch_rows_max: Some(700), batch_interval_ms: Some(25), retry_backoff_ms_max: Some(1000) };
        let text = fleet.config_toml(&settings) + &table.toml();
        let config = tradebridge_core::config::Config::from_toml_str(&text).expect("a valid config");
        let persist = config.persist.expect("[persist] present");
        assert_eq!(persist.database_url.as_deref(), Some("postgres://postgres@127.0.0.1:5432/tradebridge"));
        assert!(persist.migrate_on_start);
        assert_eq!((persist.batch_rows_max, persist.batch_interval_ms, persist.retry_backoff_ms_max), (700, 25, 1000));
        assert_eq!(persist.retry_backoff_ms_min, 200, "the default minimum stays when the maximum is above it");
        assert_eq!(config.accounts.len(), 6, "the accounts before the table are intact");
    }

    #[test]
    fn persist_is_refused_where_the_harness_cannot_write_the_config() {
        // Shows: without --spawn, or for the baseline bridge, --persist is refused with what to do instead.
        let without_spawn = error("fanout --url ws://127.0.0.1:1/ea --config /tmp/x.toml --persist", None);
        assert!(without_spawn.starts_with("--persist needs --spawn"), "{without_spawn}");
        let baseline = error("fanout --spawn --bridge baseline --persist", None);
        assert!(baseline.contains("--persist with --bridge baseline") && baseline.contains("no persister"), "{baseline}");
    }

    #[test]
    fn persist_flags_without_persist_and_half_an_outage_are_named() {
        // Shows: a persister flag without --persist names that flag; an outage needs both its flags; bad values name flag, value and range.
        assert_eq!(error("fanout --spawn --persist-batch-rows 10", None), "--persist-batch-rows needs --persist (the persister and its Postgres are only set up with --persist)");
        assert!(error("fanout --spawn --postgres-outage-secs 3", None).starts_with("--postgres-outage-secs needs --persist"));
        assert_eq!(error("fanout --spawn --persist --postgres-outage-at 3", None), "--postgres-outage-at needs --postgres-outage-secs: how long Postgres stays down");
        assert!(error("fanout --spawn --persist --postgres-outage-secs 3", None).starts_with("--postgres-outage-secs needs --postgres-outage-at"));
        assert_eq!(error("fanout --spawn --persist --persist-batch-rows 0", None), "--persist-batch-rows \"0\": expected 1 to 100000 rows per transaction (batch_rows_max)");
        assert!(error("fanout --spawn --persist --postgres-outage-at 3 --postgres-outage-secs 0", None).contains("0.1 to 86400"));
    }

    #[test]
    fn an_outage_must_begin_inside_the_measured_phase() {
        // Shows: an outage at or after the measured phase's end is refused with both numbers; inside it is accepted; with no known length (ramp) any start is.
        let late = error("fanout --spawn --persist --postgres-outage-at 30 --postgres-outage-secs 5", Some(30.0));
        assert_eq!(late, "--postgres-outage-at 30: expected less than the measured phase's 30 s, so the outage begins while the load runs");
        assert!(parse("fanout --spawn --persist --postgres-outage-at 29.5 --postgres-outage-secs 5", Some(30.0)).is_ok());
        assert!(parse("ramp --spawn --persist --postgres-outage-at 300 --postgres-outage-secs 5", None).is_ok());
    }

    #[test]
    fn catch_up_scenario_stops_postgres_for_the_whole_measured_phase() {
        // Shows: persist-catchup plans an outage from 0 s until the load ends, refuses the outage flags, and needs a spawned tradebridge.
        let arguments = arguments("persist-catchup --spawn --persist-batch-rows 5000");
        let common = CommonOptions::parse(&arguments).expect("common");
        let options = PersistOptions::parse_catch_up(&arguments, &common, 600).expect("valid");
        assert_eq!(options.outage, Some(Outage { at_secs: 0.0, length: OutageLength::UntilLoadEnds }));
        assert_eq!((options.batch_rows_max, options.catch_up_timeout), (Some(5000), Duration::from_secs(600)));
        let arguments = self::arguments("persist-catchup --spawn --postgres-outage-at 1");
        let common = CommonOptions::parse(&arguments).expect("common");
        let error = PersistOptions::parse_catch_up(&arguments, &common, 600).expect_err("refused").to_string();
        assert!(error.starts_with("--postgres-outage-at: persist-catchup stops Postgres"), "{error}");
        let arguments = self::arguments("persist-catchup --url ws://127.0.0.1:1/ea --config /tmp/x.toml");
        let common = CommonOptions::parse(&arguments).expect("common");
        assert!(PersistOptions::parse_catch_up(&arguments, &common, 600).expect_err("refused").to_string().starts_with("persist-catchup needs --spawn"));
    }
}
