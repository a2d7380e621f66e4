//! `loadtest persist-catchup`: the persister's throughput catching up a
//! backlog. A fanout trades with Postgres stopped from the start of the
//! measured phase, long enough for the journal to hold at least `--rows`
//! rows' worth; when the load has ended and the EAs have left, Postgres
//! restarts and the catch-up is timed until `lag_records` is 0.
//!
//! # Invariants
//! - The backlog is measured, not assumed: the rows the persister committed
//!   from the restart to lag 0 (its own `rows_total`) must reach `--rows`,
//!   or the run fails naming both numbers. The measured phase's length is
//!   only sized from a lower bound of rows per event (the event, and a copy
//!   and a result per follower that copies it; skips come on top).
//! - The load is checked like a fanout's (every copy exactly once), and
//!   Postgres afterwards like any `--persist` run (zero lost rows).
//! - Latency gates only when `--budget-p99-ms` is given: the question here
//!   is the persister's, which is off the copy path.

use serde_json::json;

use super::common::{events_per_master, failures, headline, metadata, outcome_json, trading_config, CommonOptions};
use super::trading::{bridge_parameters, config_json, finish_report, fleet_size, rate, run_once, seconds, steady_phases, Load};
use crate::bridge::BridgeKind;
use crate::cli::Arguments;
use crate::fleet::Fleet;
use crate::persist::PersistOptions;
use crate::procfs;
use crate::run::copies_per_position;

/// Default `--rows`: the "a backlog of at least 1,000,000 rows".
pub const ROWS_DEFAULT: u64 = 1_000_000;

/// Default bound on the catch-up: a million rows at a few thousand rows/s,
/// plus the persister's retry backoff (at most 30 s by default) before it
/// reconnects.
pub const CATCH_UP_SECS_DEFAULT: u64 = 600;

/// The measured phase is sized this much above the lower bound, so the
/// backlog passes `--rows` even when a few events come late.
const SIZING_MARGIN: f64 = 1.05;

/// Rows one master event causes at least, averaged over the fleet: the
/// event itself, and for each follower that copies it, its copy and the
/// result (skips, sessions and symbols come on top).
pub fn rows_per_event_min(fleet: &Fleet) -> anyhow::Result<f64> {
    let masters = fleet.masters.len().max(1);
    let mut copies_mean = 0.0;
    for master in 0..fleet.masters.len() as u32 {
        let copies = copies_per_position(fleet, master)?;
        copies_mean += copies.iter().map(|count| f64::from(*count)).sum::<f64>() / copies.len().max(1) as f64;
    }
    Ok(1.0 + 2.0 * copies_mean / masters as f64)
}

/// Seconds of load at `rate` events/s that journal at least `rows` rows at
/// `rows_per_event`, with [`SIZING_MARGIN`], rounded up to a second.
pub fn measured_secs_for(rows: u64, rate: f64, rows_per_event: f64) -> f64 {
    (rows as f64 * SIZING_MARGIN / (rate * rows_per_event.max(1.0))).ceil().max(1.0)
}

/// `loadtest persist-catchup`.
pub fn persist_catchup(arguments: &Arguments) -> anyhow::Result<u8> {
    let common = CommonOptions::parse(arguments)?;
    let (masters, slaves_per_master) = fleet_size(arguments, 10, 10)?;
    let rate = rate(arguments, 1000.0)?;
    let rows_min = arguments.checked("--rows", ROWS_DEFAULT, "1000 to 100000000 rows of backlog", |value| (1_000..=100_000_000).contains(&value))?;
    let warmup = seconds(arguments, "--warmup-secs", 3.0)?;
    let options = PersistOptions::parse_catch_up(arguments, &common, CATCH_UP_SECS_DEFAULT)?;
    let fleet = Fleet::generate(masters, slaves_per_master)?;
    let rows_per_event = rows_per_event_min(&fleet)?;
    let secs = seconds(arguments, "--secs", measured_secs_for(rows_min, rate, rows_per_event))?;
    let config = trading_config(arguments, &common, events_per_master(masters as usize, &[(rate, warmup), (rate, secs)]))?;
    arguments.finish()?;
    let machine = procfs::machine();
    procfs::raise_open_files_limit()?;
    eprintln!("loadtest: persist-catchup: {secs} s at {rate} events/s with Postgres stopped (at least {rows_per_event:.1} rows per event), for a backlog of at least {rows_min} rows");
    let phases = steady_phases(rate, warmup, secs);
    let run = run_once(&common, BridgeKind::Tradebridge, &Load { fleet: &fleet, peak_rate: rate, config: &config, phases: &phases }, None, Some(&options))?;
    let budget = common.budget_given.then_some(common.budget_p99_ms);
    let mut failures = failures(run.environment.kind.name(), &run.environment, &run.outcome, run.stop.as_ref(), budget);
    let record = run.persist.as_ref().expect("a persisted run has its record");
    let catch_up = record.summary.catch_up;
    let backlog = catch_up.and_then(|catch_up| catch_up.whole).map_or(0, |window| window.rows);
    if backlog < rows_min {
        failures.push(format!("persist-catchup: the backlog caught up was {backlog} rows, below --rows {rows_min}; give a longer --secs or a higher --rate"));
    }
    let parameters = json!({
        "masters": masters, "slaves_per_master": slaves_per_master, "rate_events_per_second": rate, "secs": secs, "warmup_secs": warmup,
        "rows_min": rows_min, "rows_per_event_min": rows_per_event,
        "sizing": format!("measured phase of {secs} s: --rows x {SIZING_MARGIN} / (rate x rows per event at least), unless --secs is given"),
        "trading": config_json(&config), "bridge": bridge_parameters(&common),
        "latency_gate": if budget.is_some() { "on (--budget-p99-ms given)" } else { "off: the question is the persister's catch-up; give --budget-p99-ms to gate the copies' latency too" },
    });
    let mut summary = metadata("persist-catchup", &common, parameters, &machine);
    summary[run.environment.kind.name()] = outcome_json(&run.environment, &run.outcome, run.stop.as_ref());
    summary["catch_up"] = json!({
        "backlog_rows": backlog, "rows_min": rows_min, "restart_to_caught_up_secs": catch_up.and_then(|catch_up| catch_up.seconds),
        "rows_per_second_from_restart": catch_up.and_then(|catch_up| catch_up.whole).map(|window| window.rows_per_second),
        "rows_per_second_writing": catch_up.and_then(|catch_up| catch_up.writing).map(|window| window.rows_per_second),
        "lag_records_at_restart": catch_up.map(|catch_up| catch_up.lag_records_at_start),
        "meaning": "from_restart: rows_total from Postgres's restart to lag_records 0, the persister's reconnect wait (its retry backoff) included; writing: from the sample before rows_total first moved",
    });
    let title = format!("persist-catchup {masters}x{slaves_per_master} at {rate} events/s, Postgres down the {secs} s measured phase, backlog >= {rows_min} rows");
    let rate_of = |window: Option<crate::persist::timeline::Window>| window.map_or_else(|| "-".to_string(), |window| format!("{:.0}", window.rows_per_second));
    let line = format!(
        "persist-catchup: {backlog} rows caught up in {} s ({} rows/s writing, {} rows/s from the restart); {}; {}",
        catch_up.and_then(|catch_up| catch_up.seconds).map_or_else(|| "-".to_string(), |seconds| format!("{seconds:.1}")),
        rate_of(catch_up.and_then(|catch_up| catch_up.writing)),
        rate_of(catch_up.and_then(|catch_up| catch_up.whole)),
        headline(&run.outcome),
        record.headline()
    );
    finish_report(&common, "persist-catchup", &title, summary, &[run], failures, &line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_phase_is_sized_for_the_backlog() {
        // Shows: with 10 followers copying every event, an event is at least 21 rows; a million rows at 1000 events/s take 50 s with the 5 % margin.
        assert_eq!(measured_secs_for(1_000_000, 1000.0, 21.0), 50.0);
        assert_eq!(measured_secs_for(1_000, 1000.0, 0.5), 2.0, "fewer than one row per event counts as one");
        let fleet = Fleet::generate(2, 3).expect("fleet");
        let rows = rows_per_event_min(&fleet).expect("rows per event");
        assert!((1.0..=7.0).contains(&rows), "3 followers: between 1 and 1 + 2 x 3 rows per event, got {rows}");
        assert_eq!(rows_per_event_min(&Fleet::generate(1, 0).expect("fleet")).expect("rows"), 1.0, "no followers: the event alone");
    }
}
