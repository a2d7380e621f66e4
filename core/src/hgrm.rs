//! The HdrHistogram percentile-distribution text format (`.hgrm`), as
//! HdrHistogram's `outputPercentileDistribution` writes it, so the bridge's
//! shutdown histograms and the load-test harness's reports open in the
//! usual plotters (for instance hdrhistogram.github.io/HdrHistogram/plotFiles.html).
//!
//! # Layout
//! - [`write_percentiles`]: one histogram to text, values divided by a
//!   scale (for instance recorded in microseconds, written in milliseconds).
//!
//! # Invariants
//! - Rows are in increasing percentile order and their `TotalCount` never
//!   decreases; the last row has percentile 1 and the histogram's total count.
//! - Pure: no clock, no file; the caller writes the text where it wants.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Rows per halving of the distance to 100 %: HdrHistogram's default, which
/// gives the familiar fine tail (99 %, 99.9 %, ... each get several rows).
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `histogram` as `.hgrm` text into `out`. Every value is divided by
/// `value_scale` (1.0 writes the recorded unit); `unit` names the unit written,
/// in a leading comment line (plotters skip lines starting with `#`).
pub fn write_percentiles(histogram: &Histogram<u64>, value_scale: f64, unit: &str, out: &mut String) {
    assert!(value_scale > 0.0 && value_scale.is_finite(), "value_scale {value_scale}: expected a positive finite number");
    let start_bytes = out.len();
    let _ = writeln!(out, "#[Values in {unit}]");
    let _ = writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total_count: u64 = 0;
    let mut last_percentile = 0.0_f64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total_count += step.count_since_last_iteration();
        let value = histogram.highest_equivalent(step.value_iterated_to()) as f64 / value_scale;
        let percentile = step.quantile_iterated_to();
        debug_assert!(percentile >= last_percentile, "percentiles only grow");
        last_percentile = percentile;
        if percentile < 1.0 {
            let inverse = 1.0 / (1.0 - percentile);
            let _ = writeln!(out, "{value:12.3} {percentile:14.12} {total_count:10} {inverse:14.2}");
        } else {
            let _ = writeln!(out, "{value:12.3} {percentile:14.12} {total_count:10}");
        }
    }
    let mean = histogram.mean() / value_scale;
    let deviation = histogram.stdev() / value_scale;
    let max = histogram.highest_equivalent(histogram.max()) as f64 / value_scale;
    let _ = writeln!(out, "#[Mean    = {mean:12.3}, StdDeviation   = {deviation:12.3}]");
    let _ = writeln!(out, "#[Max     = {max:12.3}, Total count    = {:12}]", histogram.len());
    debug_assert!(total_count == histogram.len() || histogram.is_empty(), "the last row counts every value");
    debug_assert!(out.len() > start_bytes, "something was written");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Vec<f64>> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty() && !line.contains("Value"))
            .map(|line| line.split_whitespace().map(|field| field.parse::<f64>().unwrap()).collect())
            .collect()
    }

    #[test]
    fn uniform_values_give_their_percentiles_and_totals() {
        // 1..=1000 recorded once each: the median row sits at 500, the last row holds the max and every count.
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        for value in 1..=1_000u64 {
            histogram.record(value).unwrap();
        }
        let mut text = String::new();
        write_percentiles(&histogram, 1.0, "microseconds", &mut text);
        assert!(text.starts_with("#[Values in microseconds]\n"), "{text}");
        let rows = rows(&text);
        let median = rows.iter().find(|row| row[1] >= 0.5).unwrap();
        assert_eq!(median[0], 500.0, "{text}");
        assert_eq!(median[2], 500.0, "{text}");
        let last = rows.last().unwrap();
        assert_eq!((last[0], last[1], last[2]), (1000.0, 1.0, 1000.0), "{text}");
        assert_eq!(last.len(), 3, "the 100 % row has no 1/(1-p) column: {text}");
        assert!(rows.windows(2).all(|pair| pair[0][1] <= pair[1][1] && pair[0][2] <= pair[1][2]), "{text}");
        assert!(text.contains("#[Max     =     1000.000, Total count    =         1000]"), "{text}");
    }

    #[test]
    fn scale_divides_every_value() {
        // Microseconds written as milliseconds: 2500 us is 2.5 ms, to the histogram's 3 figures.
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        histogram.record(2_500).unwrap();
        let mut text = String::new();
        write_percentiles(&histogram, 1_000.0, "milliseconds", &mut text);
        let rows = rows(&text);
        let written_ms = rows.last().unwrap()[0];
        assert!((2.5..=2.503).contains(&written_ms), "{text}");
    }
}
