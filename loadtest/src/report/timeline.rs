//! A trading run's end-to-end latency second by second, as the report
//! writes it for each bridge: the seconds (`timeline` in `summary.json`,
//! `<bridge>_timeline.tsv`), a summary per minute of the measured phase
//! (`minutes`) and how the last minute's p99 compares with the first's
//! (`last_minute_p99_over_first`).
//!
//! # Layout
//! - [`MeasuredWindow`]: where the measured phase lies on the run's clock
//!   and which phases it is made of.
//! - [`Second`]: one sample, timed from the measured phase's start.
//! - [`Minute`] and [`minutes`]: the measured phase's minutes, each merged
//!   from the histograms of its seconds.
//! - [`LatencyTimeline`]: all of it for one run; its JSON and its table.
//!
//! # Invariants
//! - Every time is in seconds since the measured phase began (the first
//!   recorded phase's start); warm-up is negative. A second's time is the
//!   moment it ended, when the sampler took it.
//! - A second belongs to the measured phase when it was taken during one of
//!   the recorded phases, and to minute `floor(t / 60)`.
//! - A minute's percentiles come from its seconds' histograms merged, never
//!   from the seconds' percentiles.
//! - Minute 0 is always reported (partial when the measured phase is
//!   shorter than a minute), then every further whole minute, then a last
//!   partial minute when it lasts at least [`PARTIAL_MINUTE_SECS_MIN`] and
//!   at least two whole minutes precede it: a run shorter than two minutes
//!   has exactly one minute, and no ratio.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::schedule::Phase;
use crate::stats::{histogram, LatencyFigures, TimelineSample};

/// Seconds a last partial minute needs to be reported.
pub const PARTIAL_MINUTE_SECS_MIN: f64 = 30.0;

/// Seconds in a minute of the summary.
const MINUTE_SECS: f64 = 60.0;

/// The measured phase on the run's clock: from the first recorded phase's
/// start to the last one's end (a ramp's gaps between steps included).
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredWindow {
    /// Its start, seconds after the run's clock base.
    pub start_secs: f64,
    /// Its length in seconds.
    pub secs: f64,
    /// The names of the recorded phases.
    pub phases: Vec<String>,
}

impl MeasuredWindow {
    /// The window of the recorded phases among `phases` (in time order);
    /// `None` when none is recorded.
    pub fn of<'a>(phases: impl IntoIterator<Item = &'a Phase>) -> Option<MeasuredWindow> {
        let recorded: Vec<&Phase> = phases.into_iter().filter(|phase| phase.recorded).collect();
        let (first, last) = (recorded.first()?, recorded.last()?);
        Some(MeasuredWindow {
            start_secs: first.start_ns as f64 / 1e9,
            secs: (last.end_ns - first.start_ns) as f64 / 1e9,
            phases: recorded.iter().map(|phase| phase.name.clone()).collect(),
        })
    }

    /// True when a sample taken during `phase` belongs to the window.
    fn holds(&self, phase: &str) -> bool {
        self.phases.iter().any(|name| name == phase)
    }
}

/// One second of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Second {
    /// When it ended, seconds since the measured phase began.
    pub t_s: f64,
    /// The phase (or stage) it was taken in.
    pub phase: String,
    pub figures: LatencyFigures,
}

/// One minute of the measured phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Minute {
    /// From 0.
    pub minute: u32,
    /// Its span, seconds since the measured phase began.
    pub from_s: f64,
    pub to_s: f64,
    /// Shorter than a minute: the measured phase ended within it.
    pub partial: bool,
    /// Seconds (samples) merged into it.
    pub seconds: usize,
    /// The figures of the merged histogram.
    pub figures: LatencyFigures,
}

/// The minutes of `window` to report (see the module's invariants), each
/// merged from the samples of `samples` taken in it.
pub fn minutes(samples: &[TimelineSample], window: &MeasuredWindow) -> Vec<Minute> {
    let whole = (window.secs / MINUTE_SECS).floor() as u32;
    let rest = window.secs - f64::from(whole) * MINUTE_SECS;
    let spans: Vec<(u32, f64)> = if whole == 0 {
        if window.secs > 0.0 { vec![(0, window.secs)] } else { Vec::new() }
    } else {
        let last = (whole >= 2 && rest >= PARTIAL_MINUTE_SECS_MIN).then_some((whole, rest));
        (0..whole).map(|minute| (minute, MINUTE_SECS)).chain(last).collect()
    };
    spans.into_iter().map(|(minute, length)| merge_minute(samples, window, minute, length)).collect()
}

/// Minute `minute` (`length` seconds long): its samples' histograms merged.
fn merge_minute(samples: &[TimelineSample], window: &MeasuredWindow, minute: u32, length: f64) -> Minute {
    let from_s = f64::from(minute) * MINUTE_SECS;
    let mut merged = histogram();
    let mut seconds = 0;
    for sample in samples.iter().filter(|sample| window.holds(&sample.phase)) {
        let t_s = sample.at_secs - window.start_secs;
        if (from_s..from_s + MINUTE_SECS).contains(&t_s) {
            sample.add_to(&mut merged);
            seconds += 1;
        }
    }
    Minute { minute, from_s, to_s: from_s + length, partial: length < MINUTE_SECS, seconds, figures: LatencyFigures::of(&merged) }
}

/// The last minute's p99 over the first's; `None` with fewer than two
/// minutes or a minute without copies.
pub fn last_over_first_p99(minutes: &[Minute]) -> Option<f64> {
    let [first, .., last] = minutes else { return None };
    let (first, last) = (&first.figures, &last.figures);
    (first.count > 0 && last.count > 0 && first.p99_ms > 0.0).then(|| last.p99_ms / first.p99_ms)
}

/// One run's latency timeline as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTimeline {
    /// Every second of the run, in time order.
    pub seconds: Vec<Second>,
    /// The measured phase's length; `None` when no phase was recorded
    /// (then times are seconds after the run's clock base).
    pub measured_secs: Option<f64>,
    pub minutes: Vec<Minute>,
    pub last_minute_p99_over_first: Option<f64>,
}

impl LatencyTimeline {
    /// The timeline of `samples` around `window`.
    pub fn new(samples: &[TimelineSample], window: Option<&MeasuredWindow>) -> LatencyTimeline {
        let zero = window.map_or(0.0, |window| window.start_secs);
        let seconds = samples.iter().map(|sample| Second { t_s: sample.at_secs - zero, phase: sample.phase.clone(), figures: sample.figures }).collect();
        let minutes = window.map_or_else(Vec::new, |window| minutes(samples, window));
        let last_minute_p99_over_first = last_over_first_p99(&minutes);
        LatencyTimeline { seconds, measured_secs: window.map(|window| window.secs), minutes, last_minute_p99_over_first }
    }

    /// `summary.json`'s `timeline`: one object per second.
    pub fn seconds_json(&self) -> Value {
        self.seconds.iter().map(|second| with_figures(json!({ "t_s": millisecond_round(second.t_s), "phase": second.phase }), &second.figures)).collect()
    }

    /// `summary.json`'s `minutes`: one object per minute.
    pub fn minutes_json(&self) -> Value {
        self.minutes
            .iter()
            .map(|minute| with_figures(json!({ "minute": minute.minute, "from_s": minute.from_s, "to_s": millisecond_round(minute.to_s), "partial": minute.partial, "seconds": minute.seconds }), &minute.figures))
            .collect()
    }

    /// The seconds as a tab-separated table with a header line; `-` where
    /// a second had no copy.
    pub fn tsv(&self) -> String {
        let mut text = String::with_capacity(48 * (self.seconds.len() + 1));
        text.push_str("t_s\tphase\tcount\tp50_ms\tp99_ms\tp99_9_ms\tmax_ms\n");
        for second in &self.seconds {
            let figures = &second.figures;
            let cell = |milliseconds: f64| if figures.count == 0 { "-".to_string() } else { format!("{milliseconds:.3}") };
            let _ = writeln!(
                text,
                "{:.3}\t{}\t{}\t{}\t{}\t{}\t{}",
                second.t_s,
                second.phase,
                figures.count,
                cell(figures.p50_ms),
                cell(figures.p99_ms),
                cell(figures.p99_9_ms),
                cell(figures.max_ms)
            );
        }
        text
    }
}

/// `object` with `count`, `p50_ms`, `p99_ms`, `p99_9_ms` and `max_ms`
/// added; the latencies are null when there was no copy.
fn with_figures(mut object: Value, figures: &LatencyFigures) -> Value {
    let milliseconds = |value: f64| if figures.count == 0 { Value::Null } else { json!(value) };
    object["count"] = json!(figures.count);
    object["p50_ms"] = milliseconds(figures.p50_ms);
    object["p99_ms"] = milliseconds(figures.p99_ms);
    object["p99_9_ms"] = milliseconds(figures.p99_9_ms);
    object["max_ms"] = milliseconds(figures.max_ms);
    object
}

/// `seconds` rounded to the millisecond, for the JSON.
fn millisecond_round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A measured window starting 10 s into the run, `secs` long, phase "measure".
    fn window(secs: f64) -> MeasuredWindow {
        MeasuredWindow { start_secs: 10.0, secs, phases: vec!["measure".into()] }
    }

    /// A sample `t_s` seconds after the window's start holding `latencies_us`.
    fn sample(t_s: f64, phase: &str, latencies_us: &[u64]) -> TimelineSample {
        let mut second = histogram();
        for &latency in latencies_us {
            second.record(latency).expect("in range");
        }
        TimelineSample::new(10.0 + t_s, phase, &second)
    }

    /// `seconds` measured seconds ending at 0.5, 1.5, ...: second `s` holds `s + 1` latencies of (s + 1) ms.
    fn measured_seconds(seconds: u32) -> Vec<TimelineSample> {
        (0..seconds).map(|second| sample(f64::from(second) + 0.5, "measure", &vec![u64::from(second + 1) * 1000; second as usize + 1])).collect()
    }

    #[test]
    fn a_run_of_150_seconds_has_two_whole_minutes_and_a_partial_one() {
        // Shows: 150 measured seconds (and warm-up and drain samples around them) give minutes 0 and 1 of 60 seconds and a partial minute 2 of 30; each minute counts only its own seconds.
        let mut samples = vec![sample(-1.5, "warmup", &[]), sample(-0.5, "warmup", &[])];
        samples.extend(measured_seconds(150));
        samples.push(sample(150.5, "draining", &[900_000]));
        let minutes = minutes(&samples, &window(150.0));
        let shape: Vec<(u32, f64, f64, bool, usize)> = minutes.iter().map(|minute| (minute.minute, minute.from_s, minute.to_s, minute.partial, minute.seconds)).collect();
        assert_eq!(shape, vec![(0, 0.0, 60.0, false, 60), (1, 60.0, 120.0, false, 60), (2, 120.0, 150.0, true, 30)]);
        assert_eq!(minutes[0].figures.count, (1..=60).sum::<u64>());
        assert_eq!(minutes[2].figures.count, (121..=150).sum::<u64>());
        assert!(minutes[2].figures.max_ms < 151.0, "the drain's 900 ms is not in the measured phase: {}", minutes[2].figures.max_ms);
    }

    #[test]
    fn a_short_last_minute_is_left_out_and_a_short_run_has_one_minute() {
        // Shows: 140 s leaves out the last 20 s; 90 s (shorter than two minutes) reports only minute 0; 20 s and 30 s report one partial minute; no measured time, no minute.
        let count = |secs: f64| minutes(&measured_seconds(secs as u32), &window(secs)).iter().map(|minute| (minute.minute, minute.partial)).collect::<Vec<_>>();
        assert_eq!(count(140.0), vec![(0, false), (1, false)]);
        assert_eq!(count(90.0), vec![(0, false)]);
        assert_eq!(count(30.0), vec![(0, true)]);
        assert_eq!(count(20.0), vec![(0, true)]);
        assert_eq!(count(0.0), vec![]);
    }

    #[test]
    fn a_minute_p99_is_the_merged_histogram_p99_not_an_average() {
        // Shows: 59 quiet seconds (100 x 1 ms) and one slow second (100 x 500 ms) give the minute the p99 of all 6000 latencies (500 ms), far from the mean of the per-second p99s (about 9.3 ms).
        let mut samples: Vec<TimelineSample> = (0..59).map(|second| sample(f64::from(second) + 0.5, "measure", &[1_000; 100])).collect();
        samples.push(sample(59.5, "measure", &[500_000; 100]));
        let mut all = histogram();
        all.record_n(1_000, 5_900).expect("in range");
        all.record_n(500_000, 100).expect("in range");
        let minute = &minutes(&samples, &window(60.0))[0];
        assert_eq!(minute.figures.p99_ms, all.value_at_quantile(0.99) as f64 / 1000.0);
        assert_eq!(minute.figures.count, 6_000);
        let mean_of_p99s = samples.iter().map(|sample| sample.figures.p99_ms).sum::<f64>() / 60.0;
        assert!(minute.figures.p99_ms > 400.0 && mean_of_p99s < 10.0, "minute {} ms, mean of seconds {mean_of_p99s} ms", minute.figures.p99_ms);
    }

    #[test]
    fn the_ratio_is_last_minute_over_first_and_null_below_two_minutes() {
        // Shows: with three minutes the ratio is the last (partial) minute's p99 over the first's; one minute gives None, and so does a first minute without copies.
        let mut samples: Vec<TimelineSample> = (0..150).map(|second| sample(f64::from(second) + 0.5, "measure", &[if second < 60 { 2_000 } else { 8_000 }; 10])).collect();
        let timeline = LatencyTimeline::new(&samples, Some(&window(150.0)));
        let expected = timeline.minutes[2].figures.p99_ms / timeline.minutes[0].figures.p99_ms;
        assert_eq!(timeline.last_minute_p99_over_first, Some(expected));
        assert!((expected - 4.0).abs() < 0.01, "{expected}");
        let short = LatencyTimeline::new(&samples[..90], Some(&window(90.0)));
        assert_eq!((short.minutes.len(), short.last_minute_p99_over_first), (1, None));
        for sample in samples.iter_mut().take(60) {
            *sample = TimelineSample::new(sample.at_secs, "measure", &histogram());
        }
        assert_eq!(LatencyTimeline::new(&samples, Some(&window(150.0))).last_minute_p99_over_first, None);
    }

    #[test]
    fn the_window_spans_the_recorded_phases() {
        // Shows: the measured window runs from the first recorded phase's start to the last one's end and names them; warm-up alone gives no window.
        let phase = |index: u32, name: &str, start_s: u64, end_s: u64, recorded: bool| Phase { index, name: name.into(), rate_per_second: 1.0, start_ns: start_s * 1_000_000_000, end_ns: end_s * 1_000_000_000, recorded };
        let phases = [phase(0, "warmup", 2, 5, false), phase(1, "normal", 5, 15, true), phase(2, "stalled", 15, 25, true)];
        let window = MeasuredWindow::of(&phases).expect("recorded phases");
        assert_eq!(window, MeasuredWindow { start_secs: 5.0, secs: 20.0, phases: vec!["normal".into(), "stalled".into()] });
        assert_eq!(MeasuredWindow::of(&phases[..1]), None);
    }

    #[test]
    fn seconds_are_timed_from_the_measured_start_in_json_and_table() {
        // Shows: t_s is relative to the measured phase's start (warm-up negative); an empty second has count 0 and null (JSON) or "-" (table) latencies; the table has a header and a row per second.
        let samples = vec![sample(-0.75, "warmup", &[]), sample(0.25, "measure", &[1_000, 2_000])];
        let timeline = LatencyTimeline::new(&samples, Some(&window(30.0)));
        let json = timeline.seconds_json();
        assert_eq!(json[0]["t_s"], json!(-0.75));
        assert_eq!((json[0]["phase"].as_str(), json[0]["count"].as_u64(), json[0]["p99_ms"].is_null()), (Some("warmup"), Some(0), true));
        assert_eq!((json[1]["count"].as_u64(), json[1]["max_ms"].as_f64()), (Some(2), Some(2.0)));
        assert_eq!(timeline.minutes_json()[0]["partial"], json!(true));
        let table = timeline.tsv();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "t_s\tphase\tcount\tp50_ms\tp99_ms\tp99_9_ms\tmax_ms");
        assert_eq!(lines[1], "-0.750\twarmup\t0\t-\t-\t-\t-");
        assert!(lines[2].starts_with("0.250\tmeasure\t2\t1.000\t") && lines[2].ends_with("\t2.000"), "{}", lines[2]);
    }
}
