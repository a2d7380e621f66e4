//! Latency histograms: per client thread, per phase, per measure; merged
//! at the end and read once a second by the run's sampler, which keeps each
//! second's end-to-end histogram as a [`TimelineSample`].
//!
//! # Layout
//! - [`histogram`]: a histogram with the harness's bounds.
//! - [`PhaseLatencies`]: one phase's histograms, one per [`Measure`].
//! - [`ThreadStats`] and [`SharedStats`]: one client thread's histograms;
//!   [`merged_phase`] and [`take_interval`] sum them over threads.
//! - [`LatencyFigures`]: the figures (count, p50, p99, p99.9, max) a
//!   histogram is quoted by.
//! - [`TimelineSample`]: one second of end-to-end latency, its figures and
//!   its histogram stored by bucket.
//!
//! # Invariants
//! - Every histogram holds microseconds at 3 significant figures, from 0 to
//!   [`LATENCY_US_MAX`]; larger values are clamped to it (and still counted).
//! - A thread's histograms sit behind one mutex that only that thread's
//!   tasks and, once a second, the sampler take: uncontended.
//! - A [`TimelineSample`] restores exactly the histogram it was taken from
//!   (same buckets, same counts), so merged seconds give exact percentiles.

use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;

use crate::schedule::PHASES_MAX;

/// Highest latency a histogram holds: one hour, beyond any run's length.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Significant figures of every histogram (the house benchmark standard).
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// A histogram with the harness's bounds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_FIGURES).expect("1 us to 1 h at 3 figures are valid bounds")
}

/// What a latency measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Intended send of the master event -> the copy received by a slave
    /// (corrected for coordinated omission).
    EndToEnd,
    /// Actual send of the master event -> the copy received: the same
    /// without the correction, for comparison only.
    EndToEndUncorrected,
    /// Intended send of the event -> its `ack` received by the master.
    Ack,
    /// Intended send of the event -> the slave's `result` written to its
    /// socket: end-to-end plus the Executor's turnaround, the last point
    /// the harness observes (the bridge answers nothing to a result).
    Result,
    /// Intended send -> actual send of the event: how late the harness
    /// itself was. Large values mean the harness, not the bridge, is the
    /// bottleneck.
    SendLag,
}

/// The histograms of one phase.
#[derive(Clone, Debug)]
pub struct PhaseLatencies {
    pub end_to_end: Histogram<u64>,
    pub end_to_end_uncorrected: Histogram<u64>,
    pub ack: Histogram<u64>,
    pub result: Histogram<u64>,
    pub send_lag: Histogram<u64>,
}

impl Default for PhaseLatencies {
    fn default() -> PhaseLatencies {
        PhaseLatencies { end_to_end: histogram(), end_to_end_uncorrected: histogram(), ack: histogram(), result: histogram(), send_lag: histogram() }
    }
}

impl PhaseLatencies {
    /// The histogram of `measure`.
    pub fn of(&mut self, measure: Measure) -> &mut Histogram<u64> {
        match measure {
            Measure::EndToEnd => &mut self.end_to_end,
            Measure::EndToEndUncorrected => &mut self.end_to_end_uncorrected,
            Measure::Ack => &mut self.ack,
            Measure::Result => &mut self.result,
            Measure::SendLag => &mut self.send_lag,
        }
    }

    /// Adds another thread's histograms of the same phase.
    pub fn add(&mut self, other: &PhaseLatencies) {
        for (mine, theirs) in [
            (&mut self.end_to_end, &other.end_to_end),
            (&mut self.end_to_end_uncorrected, &other.end_to_end_uncorrected),
            (&mut self.ack, &other.ack),
            (&mut self.result, &other.result),
            (&mut self.send_lag, &other.send_lag),
        ] {
            mine.add(theirs).expect("histograms of equal bounds add");
        }
    }
}

/// One client thread's histograms.
#[derive(Debug)]
pub struct ThreadStats {
    /// By phase index; grown on first use, at most PHASES_MAX.
    pub phases: Vec<PhaseLatencies>,
    /// End-to-end latencies since the sampler last read them.
    pub interval_end_to_end: Histogram<u64>,
}

impl Default for ThreadStats {
    fn default() -> ThreadStats {
        ThreadStats { phases: Vec::new(), interval_end_to_end: histogram() }
    }
}

impl ThreadStats {
    /// Records `nanoseconds` of `measure` in phase `phase`.
    pub fn record(&mut self, phase: u32, measure: Measure, nanoseconds: u64) {
        let phase = phase as usize;
        assert!(phase < PHASES_MAX, "phase {phase} beyond {PHASES_MAX}");
        if self.phases.len() <= phase {
            self.phases.resize_with(phase + 1, PhaseLatencies::default);
        }
        let microseconds = nanoseconds / 1_000;
        self.phases[phase].of(measure).saturating_record(microseconds);
        if measure == Measure::EndToEnd {
            self.interval_end_to_end.saturating_record(microseconds);
        }
    }
}

/// A thread's stats as shared with the sampler.
pub type SharedStats = Arc<Mutex<ThreadStats>>;

/// Locks a thread's stats; a panic elsewhere never hides the numbers.
pub fn lock(stats: &SharedStats) -> MutexGuard<'_, ThreadStats> {
    stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sums every thread's histograms of phase `phase`.
pub fn merged_phase(threads: &[SharedStats], phase: u32) -> PhaseLatencies {
    let mut total = PhaseLatencies::default();
    for stats in threads {
        if let Some(latencies) = lock(stats).phases.get(phase as usize) {
            total.add(latencies);
        }
    }
    total
}

/// Takes and clears every thread's interval histogram (for the sampler).
pub fn take_interval(threads: &[SharedStats]) -> Histogram<u64> {
    let mut total = histogram();
    for stats in threads {
        let mut stats = lock(stats);
        total.add(&stats.interval_end_to_end).expect("equal bounds");
        stats.interval_end_to_end.reset();
    }
    total
}

/// The figures a histogram (microseconds) is quoted by, in milliseconds:
/// what each second and each minute of the latency timeline reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencyFigures {
    /// Latencies recorded; when 0, every other figure is 0 and means "none".
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
}

impl LatencyFigures {
    /// The figures of `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> LatencyFigures {
        if histogram.is_empty() {
            return LatencyFigures::default();
        }
        let milliseconds = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
        LatencyFigures { count: histogram.len(), p50_ms: milliseconds(0.5), p99_ms: milliseconds(0.99), p99_9_ms: milliseconds(0.999), max_ms: histogram.max() as f64 / 1000.0 }
    }
}

/// One second of the run's end-to-end latency, as the sampler took it.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineSample {
    /// When the second ended (the sample was taken), seconds after the
    /// run's clock base (the time base of every [`crate::schedule::Phase`]).
    pub at_secs: f64,
    /// The phase running at that moment, or the run's stage in lower case
    /// outside every phase (`connecting`, `trading` between two ramp steps,
    /// `draining`).
    pub phase: String,
    /// The figures of the second's histogram.
    pub figures: LatencyFigures,
    /// The second's histogram by bucket: (highest value of the bucket in
    /// microseconds, count), non-empty buckets only. A full histogram of
    /// the harness's bounds is about 184 KiB; this is a few KiB, so a run of
    /// hours keeps every second.
    buckets: Vec<(u64, u64)>,
}

impl TimelineSample {
    /// The sample of `histogram` (of the harness's bounds), taken `at_secs`
    /// during `phase`.
    pub fn new(at_secs: f64, phase: impl Into<String>, histogram: &Histogram<u64>) -> TimelineSample {
        let buckets = histogram.iter_recorded().map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value())).collect();
        TimelineSample { at_secs, phase: phase.into(), figures: LatencyFigures::of(histogram), buckets }
    }

    /// Adds the second's latencies to `total` (of the harness's bounds):
    /// each bucket's count lands in the same bucket it was taken from.
    pub fn add_to(&self, total: &mut Histogram<u64>) {
        for &(value, count) in &self.buckets {
            total.saturating_record_n(value, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_land_in_their_phase_and_merge_across_threads() {
        // Shows: a latency goes to its phase and measure in microseconds, end-to-end also to the interval, and two threads' phases add up.
        let first: SharedStats = Arc::default();
        let second: SharedStats = Arc::default();
        lock(&first).record(1, Measure::EndToEnd, 2_500_000);
        lock(&second).record(1, Measure::EndToEnd, 1_000_000);
        lock(&second).record(1, Measure::Ack, 700_000);
        let merged = merged_phase(&[Arc::clone(&first), Arc::clone(&second)], 1);
        assert_eq!(merged.end_to_end.len(), 2);
        assert_eq!(merged.end_to_end.max(), merged.end_to_end.highest_equivalent(2_500));
        assert_eq!(merged.ack.len(), 1);
        assert_eq!(merged_phase(std::slice::from_ref(&first), 0).end_to_end.len(), 0);
        assert_eq!(take_interval(&[first.clone(), second]).len(), 2);
        assert_eq!(take_interval(&[first]).len(), 0, "the interval restarts after each read");
    }

    #[test]
    fn a_timeline_sample_restores_its_histogram_exactly() {
        // Shows: a sample's figures are the histogram's in ms, and adding it to an empty histogram gives back the same buckets and counts (so minutes merge exactly); an empty second has count 0.
        let mut second = histogram();
        for value in [90u64, 1_000, 1_234, 1_234, 56_789, 2_000_000] {
            second.record(value).expect("in range");
        }
        let sample = TimelineSample::new(12.5, "measure", &second);
        assert_eq!(sample.figures.count, 6);
        assert_eq!(sample.figures.max_ms, second.highest_equivalent(2_000_000) as f64 / 1000.0);
        assert_eq!(sample.figures.p50_ms, second.value_at_quantile(0.5) as f64 / 1000.0);
        let mut restored = histogram();
        sample.add_to(&mut restored);
        assert_eq!(restored, second);
        assert_eq!(restored.value_at_quantile(0.99), second.value_at_quantile(0.99));
        let empty = TimelineSample::new(13.5, "measure", &histogram());
        assert_eq!(empty.figures, LatencyFigures::default());
    }
}
