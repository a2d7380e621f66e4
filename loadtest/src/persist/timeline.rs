//! The persister's lag over a run: samples of the bridge's `/metrics`, the
//! moments that matter (measured phase, load end, the Postgres outage,
//! caught up), and the figures the report quotes (maximum lag, rows/s over
//! the run, during the catch-up and after an outage).
//!
//! # Layout
//! - [`Sample`]: one scrape of the `tradebridge_persist_*` series.
//! - [`Marks`] and [`OutageWindow`]: when things happened.
//! - [`Timeline`]: samples and marks; [`Timeline::shifted`] puts the
//!   measured phase's start at 0, [`Timeline::summary`] gives
//!   [`LagSummary`], [`Timeline::tsv`] the table written beside the plot.
//! - [`window`] and [`caught_up_at`]: the two measurements everything else
//!   is made of.
//!
//! # Invariants
//! - Every time is in seconds after one origin, samples in time order.
//! - A rate is the difference of the bridge's own `rows_total` counter
//!   between two samples divided by the time between them; never an
//!   estimate. Its precision is one sampling period at each end.
//! - "Caught up" is two samples in a row with `lag_records` 0 and the same
//!   `persisted_journal_seq`: nothing durable waits and nothing moved.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

/// The `/metrics` series a sample is made of, by field.
pub const LAG_RECORDS: &str = "tradebridge_persist_lag_records";
pub const LAG_SECONDS: &str = "tradebridge_persist_lag_seconds";
pub const PERSISTED_SEQ: &str = "tradebridge_persist_persisted_journal_seq";
pub const ROWS_TOTAL: &str = "tradebridge_persist_rows_total";
pub const CONNECTED: &str = "tradebridge_persist_connected";
pub const FAILURES_TOTAL: &str = "tradebridge_persist_failures_total";

/// One scrape of the persister's figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// When it was taken (the scrape's answer), seconds after the origin.
    pub at_secs: f64,
    /// Journal records durable but not yet in Postgres.
    pub lag_records: u64,
    /// Age of the oldest of them.
    pub lag_seconds: f64,
    /// Highest journal seq committed to Postgres.
    pub persisted_journal_seq: u64,
    /// Rows committed so far, all tables.
    pub rows_total: u64,
    /// The persister had a working connection.
    pub connected: bool,
    /// Failed attempts so far (each is retried).
    pub failures_total: u64,
}

impl Sample {
    /// The sample in `values` (the `values` map of
    /// [`crate::bridge::parse_metrics`]); an error names a missing series
    /// (a bridge without `[persist]` has none of them).
    pub fn from_metrics(at_secs: f64, values: &Map<String, Value>) -> Result<Sample, String> {
        let value = |name: &str| values.get(name).and_then(Value::as_f64).ok_or_else(|| format!("{name} missing from /metrics (is [persist] in the bridge's config?)"));
        Ok(Sample {
            at_secs,
            lag_records: value(LAG_RECORDS)? as u64,
            lag_seconds: value(LAG_SECONDS)?,
            persisted_journal_seq: value(PERSISTED_SEQ)? as u64,
            rows_total: value(ROWS_TOTAL)? as u64,
            connected: value(CONNECTED)? >= 1.0,
            failures_total: value(FAILURES_TOTAL)? as u64,
        })
    }
}

/// The Postgres outage as it happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct OutageWindow {
    /// The plan: seconds after the measured phase began.
    pub planned_at_secs: f64,
    /// The plan: seconds down; `None` for "until the load ends".
    pub planned_secs: Option<f64>,
    /// `pg_ctl stop` called, and returned (the server is gone).
    pub stop_begun_secs: f64,
    pub stopped_secs: f64,
    /// `pg_ctl start` called, and returned (the server accepts again).
    pub restart_begun_secs: Option<f64>,
    pub restarted_secs: Option<f64>,
}

/// When the moments of a run happened, seconds after the origin.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Marks {
    /// The first recorded phase began.
    pub measure_start_secs: Option<f64>,
    /// The last phase ended: no more master events.
    pub load_end_secs: Option<f64>,
    /// The drain ended and the simulated EAs left.
    pub drained_secs: Option<f64>,
    pub outage: Option<OutageWindow>,
    /// Where the catch-up is timed from: the load's end, or the restart
    /// when Postgres came back after it.
    pub catch_up_from_secs: Option<f64>,
    pub caught_up_secs: Option<f64>,
}

/// Rows the persister committed between two samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Window {
    pub from_secs: f64,
    pub to_secs: f64,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// The catch-up after the load (or after Postgres came back).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CatchUp {
    pub from_secs: f64,
    /// `lag_records` of the sample nearest to `from_secs`.
    pub lag_records_at_start: u64,
    pub caught_up_secs: Option<f64>,
    /// From `from_secs` to caught up, reconnect waits included.
    pub seconds: Option<f64>,
    /// Rows from `from_secs` to caught up.
    pub whole: Option<Window>,
    /// Rows from the sample before the first that moved `rows_total` to
    /// caught up: the persister's writing rate, without the wait for its
    /// retry backoff to reconnect.
    pub writing: Option<Window>,
}

/// What the Postgres outage did to the lag.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OutageFigures {
    pub window: OutageWindow,
    /// Seconds Postgres was away: from `pg_ctl stop` called (a fast
    /// shutdown ends the persister's connection at once) to the restart
    /// returned.
    pub down_secs: Option<f64>,
    /// Highest `lag_records` in the measured phase before the stop: the
    /// level the lag must come back to.
    pub lag_records_before_max: u64,
    /// `lag_records` of the sample nearest to the restart's return.
    pub lag_records_at_restart: u64,
    /// First sample after the restart whose `rows_total` moved: the
    /// persister writes again (after its retry backoff). Taken from the
    /// rows, not from `tradebridge_persist_connected`, which need not
    /// drop while the persister waits out its backoff.
    pub first_write_secs: Option<f64>,
    /// First sample after the restart with `lag_records` back at or below
    /// `lag_records_before_max`.
    pub recovered_secs: Option<f64>,
    /// Rows from the restart to recovered.
    pub recovery: Option<Window>,
    /// Rows from the first write after the restart to recovered.
    pub writing: Option<Window>,
}

/// The figures of a run's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LagSummary {
    pub samples: usize,
    /// `rows_total` at the last sample.
    pub rows_total: u64,
    pub lag_records_max: u64,
    pub lag_records_max_at_secs: Option<f64>,
    pub lag_seconds_max: f64,
    pub lag_seconds_max_at_secs: Option<f64>,
    /// From the measured phase's start to caught up (or the last sample).
    pub run: Option<Window>,
    pub catch_up: Option<CatchUp>,
    pub outage: Option<OutageFigures>,
}

/// Samples and marks of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub samples: Vec<Sample>,
    pub marks: Marks,
}

/// The sample nearest to `at` (the earlier of two as near). The monitor
/// takes a sample right at the moments windows start from (the load's end,
/// Postgres back), so this is that sample, not one a period before.
fn sample_nearest(samples: &[Sample], at: f64) -> Option<&Sample> {
    samples.iter().min_by(|left, right| (left.at_secs - at).abs().total_cmp(&(right.at_secs - at).abs()))
}

/// The first sample at or after `at`, else the last one.
fn sample_after(samples: &[Sample], at: f64) -> Option<&Sample> {
    samples.iter().find(|sample| sample.at_secs >= at).or(samples.last())
}

/// Rows committed from the sample nearest to `from` to the first at or
/// after `to`; `None` without two distinct samples.
pub fn window(samples: &[Sample], from: f64, to: f64) -> Option<Window> {
    let (start, end) = (sample_nearest(samples, from)?, sample_after(samples, to)?);
    let seconds = end.at_secs - start.at_secs;
    if seconds <= 0.0 {
        return None;
    }
    let rows = end.rows_total.saturating_sub(start.rows_total);
    Some(Window { from_secs: start.at_secs, to_secs: end.at_secs, rows, seconds, rows_per_second: rows as f64 / seconds })
}

/// The first of two samples in a row, both at or after `since`, with
/// `lag_records` 0 and the same `persisted_journal_seq`.
pub fn caught_up_at(samples: &[Sample], since: f64) -> Option<f64> {
    let recent: Vec<&Sample> = samples.iter().filter(|sample| sample.at_secs >= since).collect();
    recent
        .windows(2)
        .find(|pair| pair[0].lag_records == 0 && pair[1].lag_records == 0 && pair[0].persisted_journal_seq == pair[1].persisted_journal_seq)
        .map(|pair| pair[0].at_secs)
}

/// From the sample before the first one after `since` whose `rows_total`
/// moved, to `to`: the rate while rows were being written.
fn writing_window(samples: &[Sample], since: f64, to: f64) -> Option<Window> {
    let base = sample_nearest(samples, since)?;
    let first_moved = samples.iter().position(|sample| sample.at_secs > base.at_secs && sample.rows_total > base.rows_total)?;
    let start = samples[first_moved.saturating_sub(1)].at_secs.max(base.at_secs);
    window(samples, start, to)
}

impl Timeline {
    /// The same timeline with the measured phase's start at 0 (warm-up
    /// negative); unchanged when the measured phase never began.
    pub fn shifted(&self) -> Timeline {
        let zero = self.marks.measure_start_secs.unwrap_or(0.0);
        let shift = |value: f64| value - zero;
        let samples = self.samples.iter().map(|sample| Sample { at_secs: shift(sample.at_secs), ..*sample }).collect();
        let marks = &self.marks;
        let outage = marks.outage.map(|outage| OutageWindow {
            stop_begun_secs: shift(outage.stop_begun_secs),
            stopped_secs: shift(outage.stopped_secs),
            restart_begun_secs: outage.restart_begun_secs.map(shift),
            restarted_secs: outage.restarted_secs.map(shift),
            ..outage
        });
        let marks = Marks {
            measure_start_secs: marks.measure_start_secs.map(shift),
            load_end_secs: marks.load_end_secs.map(shift),
            drained_secs: marks.drained_secs.map(shift),
            outage,
            catch_up_from_secs: marks.catch_up_from_secs.map(shift),
            caught_up_secs: marks.caught_up_secs.map(shift),
        };
        Timeline { samples, marks }
    }

    /// The figures the report quotes.
    pub fn summary(&self) -> LagSummary {
        let samples = &self.samples;
        let records_max = samples.iter().max_by_key(|sample| sample.lag_records);
        let seconds_max = samples.iter().max_by(|left, right| left.lag_seconds.total_cmp(&right.lag_seconds));
        let last_at = samples.last().map_or(0.0, |sample| sample.at_secs);
        let marks = &self.marks;
        let run = marks.measure_start_secs.and_then(|start| window(samples, start, marks.caught_up_secs.unwrap_or(last_at)));
        LagSummary {
            samples: samples.len(),
            rows_total: samples.last().map_or(0, |sample| sample.rows_total),
            lag_records_max: records_max.map_or(0, |sample| sample.lag_records),
            lag_records_max_at_secs: records_max.map(|sample| sample.at_secs),
            lag_seconds_max: seconds_max.map_or(0.0, |sample| sample.lag_seconds),
            lag_seconds_max_at_secs: seconds_max.map(|sample| sample.at_secs),
            run,
            catch_up: self.catch_up(),
            outage: self.outage(),
        }
    }

    fn catch_up(&self) -> Option<CatchUp> {
        let from = self.marks.catch_up_from_secs?;
        let caught_up = self.marks.caught_up_secs;
        let samples = &self.samples;
        Some(CatchUp {
            from_secs: from,
            lag_records_at_start: sample_nearest(samples, from).map_or(0, |sample| sample.lag_records),
            caught_up_secs: caught_up,
            seconds: caught_up.map(|to| to - from),
            whole: caught_up.and_then(|to| window(samples, from, to)),
            writing: caught_up.and_then(|to| writing_window(samples, from, to)),
        })
    }

    fn outage(&self) -> Option<OutageFigures> {
        let happened = self.marks.outage?;
        let samples = &self.samples;
        let measure_start = self.marks.measure_start_secs.unwrap_or(f64::MIN);
        let before_max =
            samples.iter().filter(|sample| sample.at_secs >= measure_start && sample.at_secs < happened.stop_begun_secs).map(|sample| sample.lag_records).max().unwrap_or(0);
        let mut figures = OutageFigures {
            window: happened,
            down_secs: None,
            lag_records_before_max: before_max,
            lag_records_at_restart: 0,
            first_write_secs: None,
            recovered_secs: None,
            recovery: None,
            writing: None,
        };
        let Some(restarted) = happened.restarted_secs else { return Some(figures) };
        let at_restart = sample_nearest(samples, restarted);
        let rows_at_restart = at_restart.map_or(0, |sample| sample.rows_total);
        let mut after = samples.iter().filter(|sample| sample.at_secs >= restarted);
        let recovered = after.clone().find(|sample| sample.lag_records <= before_max).map(|sample| sample.at_secs);
        figures.down_secs = Some(restarted - happened.stop_begun_secs);
        figures.lag_records_at_restart = at_restart.map_or(0, |sample| sample.lag_records);
        figures.first_write_secs = after.find(|sample| sample.rows_total > rows_at_restart).map(|sample| sample.at_secs);
        figures.recovered_secs = recovered;
        figures.recovery = recovered.and_then(|to| window(samples, restarted, to));
        figures.writing = recovered.and_then(|to| writing_window(samples, restarted, to));
        Some(figures)
    }

    /// The samples as a tab-separated table with a header line.
    pub fn tsv(&self) -> String {
        let mut text = String::with_capacity(64 * (self.samples.len() + 1));
        text.push_str("secs\tlag_records\tlag_seconds\tpersisted_journal_seq\trows_total\tconnected\tfailures_total\n");
        for sample in &self.samples {
            let _ = writeln!(
                text,
                "{:.3}\t{}\t{:.3}\t{}\t{}\t{}\t{}",
                sample.at_secs,
                sample.lag_records,
                sample.lag_seconds,
                sample.persisted_journal_seq,
                sample.rows_total,
                u8::from(sample.connected),
                sample.failures_total
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_secs: f64, lag_records: u64, rows_total: u64) -> Sample {
        Sample { at_secs, lag_records, lag_seconds: lag_records as f64 / 100.0, persisted_journal_seq: rows_total, rows_total, connected: true, failures_total: 0 }
    }

    /// 10 s measured from t = 2, Postgres down from 5 to 8 (rows stop), load
    /// ends at 12, caught up at 13.
    fn outage_timeline() -> Timeline {
        let mut samples = Vec::new();
        let mut rows = 0;
        for second in 0..=14 {
            let at = f64::from(second);
            let lag = match second {
                5..=7 => 1000 * (second as u64 - 4),
                8 => 1500,
                9 => 300,
                13.. => 0,
                _ => 20,
            };
            rows += match second {
                5..=7 => 0,
                8 => 2000,
                9 => 1500,
                _ => 500,
            };
            let mut sample = sample(at, lag, rows);
            sample.connected = !(5..=7).contains(&second);
            samples.push(sample);
        }
        // Two samples with the same persisted seq after the catch-up.
        samples[14].rows_total = samples[13].rows_total;
        samples[14].persisted_journal_seq = samples[13].persisted_journal_seq;
        let outage = OutageWindow { planned_at_secs: 3.0, planned_secs: Some(3.0), stop_begun_secs: 4.9, stopped_secs: 5.0, restart_begun_secs: Some(7.9), restarted_secs: Some(8.0) };
        let marks = Marks {
            measure_start_secs: Some(2.0),
            load_end_secs: Some(12.0),
            drained_secs: Some(12.5),
            outage: Some(outage),
            catch_up_from_secs: Some(12.0),
            caught_up_secs: caught_up_at(&samples, 12.0),
        };
        Timeline { samples, marks }
    }

    #[test]
    fn caught_up_needs_two_quiet_samples_with_the_same_seq() {
        // Shows: one zero-lag sample is not enough, two with the same persisted seq are, and a later start only looks at later samples.
        let samples = [sample(0.0, 5, 10), sample(1.0, 0, 20), sample(2.0, 0, 30), sample(3.0, 0, 30), sample(4.0, 0, 30)];
        assert_eq!(caught_up_at(&samples, 0.0), Some(2.0), "1.0 and 2.0 differ in persisted seq");
        assert_eq!(caught_up_at(&samples, 3.5), None, "one sample after 3.5");
        assert_eq!(caught_up_at(&samples[..3], 0.0), None);
    }

    #[test]
    fn windows_take_the_counter_difference_between_samples() {
        // Shows: a window starts at the sample nearest its start (the earlier on a tie) and ends at the first at or after its end; rows/s is the counter's difference over that time.
        let samples = [sample(0.0, 0, 0), sample(1.0, 0, 100), sample(2.0, 0, 300), sample(3.0, 0, 600)];
        let window = window(&samples, 0.5, 2.5).expect("window");
        assert_eq!((window.from_secs, window.to_secs, window.rows), (0.0, 3.0, 600));
        assert!((window.rows_per_second - 200.0).abs() < 1e-9);
        assert_eq!(super::window(&samples, 3.0, 3.0), None, "no time, no rate");
        assert_eq!(super::window(&[], 0.0, 1.0), None);
    }

    #[test]
    fn summary_of_an_outage_finds_the_lag_the_recovery_and_the_catch_up() {
        // Shows: max lag and its time, the pre-outage level (20), the lag at restart, the first write after it, recovery at the first sample back at that level, the writing rate from the first write after the restart, and the run's rows/s from the measured start to caught up.
        let summary = outage_timeline().summary();
        assert_eq!((summary.lag_records_max, summary.lag_records_max_at_secs), (3000, Some(7.0)));
        assert_eq!(summary.samples, 15);
        let outage = summary.outage.expect("outage figures");
        assert_eq!(outage.lag_records_before_max, 20);
        assert_eq!(outage.lag_records_at_restart, 1500, "the sample at 8.0 is at the restart");
        assert!((outage.down_secs.expect("down") - 3.1).abs() < 1e-9, "from the stop called at 4.9 to the restart at 8.0");
        assert_eq!(outage.first_write_secs, Some(9.0), "the sample at the restart already counts the rows before it");
        assert_eq!(outage.recovered_secs, Some(10.0), "9 still has 300 > 20");
        let recovery = outage.recovery.expect("recovery window");
        assert_eq!((recovery.from_secs, recovery.to_secs, recovery.rows), (8.0, 10.0, 2000));
        let catch_up = summary.catch_up.expect("catch-up");
        assert_eq!((catch_up.from_secs, catch_up.caught_up_secs, catch_up.lag_records_at_start), (12.0, Some(13.0), 20));
        assert_eq!(catch_up.whole.expect("whole").rows, 500);
        let run = summary.run.expect("run window");
        assert_eq!((run.from_secs, run.to_secs), (2.0, 13.0));
    }

    #[test]
    fn writing_rate_excludes_the_reconnect_wait() {
        // Shows: after a restart at 10, rows only move from 13 (the retry backoff); the writing window starts at 12, the sample before, so the idle seconds do not dilute the rate.
        let samples = [sample(10.0, 900, 100), sample(11.0, 900, 100), sample(12.0, 900, 100), sample(13.0, 400, 600), sample(14.0, 0, 1000), sample(15.0, 0, 1000)];
        let window = writing_window(&samples, 10.0, 14.0).expect("writing");
        assert_eq!((window.from_secs, window.to_secs, window.rows), (12.0, 14.0, 900));
        let whole = super::window(&samples, 10.0, 14.0).expect("whole");
        assert!(whole.rows_per_second < window.rows_per_second);
    }

    #[test]
    fn shifting_puts_the_measured_start_at_zero() {
        // Shows: every sample and mark moves by the measured phase's start; planned figures (relative already) do not.
        let shifted = outage_timeline().shifted();
        assert_eq!(shifted.samples[0].at_secs, -2.0);
        assert_eq!(shifted.marks.measure_start_secs, Some(0.0));
        let outage = shifted.marks.outage.expect("outage");
        assert_eq!((outage.stopped_secs, outage.restarted_secs, outage.planned_at_secs), (3.0, Some(6.0), 3.0));
        assert_eq!(shifted.marks.caught_up_secs, Some(11.0));
    }

    #[test]
    fn samples_come_from_the_metrics_and_a_missing_series_is_named() {
        // Shows: the six series fill a sample; without [persist] the error names the first missing series.
        let text = "tradebridge_persist_lag_records 7\ntradebridge_persist_lag_seconds 0.5\ntradebridge_persist_persisted_journal_seq 99\n\
            tradebridge_persist_rows_total 1234\ntradebridge_persist_connected 1\ntradebridge_persist_failures_total 2\n";
        let metrics = crate::bridge::parse_metrics(text);
        let values = metrics["values"].as_object().expect("values");
        let sample = Sample::from_metrics(1.5, values).expect("sample");
        assert_eq!(sample, Sample { at_secs: 1.5, lag_records: 7, lag_seconds: 0.5, persisted_journal_seq: 99, rows_total: 1234, connected: true, failures_total: 2 });
        let error = Sample::from_metrics(0.0, &Map::new()).expect_err("no persist series");
        assert!(error.contains(LAG_RECORDS) && error.contains("[persist]"), "{error}");
    }

    #[test]
    fn the_table_has_a_header_and_a_line_per_sample() {
        // Shows: the TSV beside the plot has one header and one line per sample, connected as 0/1.
        let timeline = outage_timeline();
        let text = timeline.tsv();
        assert_eq!(text.lines().count(), 16);
        assert!(text.starts_with("secs\tlag_records\t"));
        assert!(text.lines().nth(6).expect("t = 5").ends_with("\t0\t0"), "{text}");
    }
}
