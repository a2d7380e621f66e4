//! The `.hgrm` files of a report (through core's HdrHistogram
//! percentile-distribution writer, `tradebridge_core::hgrm`), and the same
//! percentile curve as points for the plot.
//!
//! # Invariants
//! - Histograms hold microseconds; files and plots show milliseconds with
//!   3 decimals (one microsecond), and each file's first lines say what was
//!   measured and in which unit.
//! - Percentile ticks are HdrHistogram's: 5 per half distance to 100 %.

use hdrhistogram::Histogram;
use tradebridge_core::hgrm::{write_percentiles, TICKS_PER_HALF_DISTANCE};

/// Microseconds per millisecond, the file's value unit scaling.
const MICROSECONDS_PER_MILLISECOND: f64 = 1_000.0;

/// The `.hgrm` text of `histogram` (values in microseconds), headed by a
/// comment line naming what was measured; values in milliseconds.
pub fn percentile_distribution(histogram: &Histogram<u64>, title: &str) -> String {
    let mut text = format!("# {title}\n");
    write_percentiles(histogram, MICROSECONDS_PER_MILLISECOND, "milliseconds (recorded in microseconds, 3 significant figures)", &mut text);
    text
}

/// The percentile curve of `histogram` as (1/(1-p), milliseconds) points,
/// the same ticks as the `.hgrm` file without the final 100 % point (its
/// x is infinite); for the plot.
pub fn percentile_curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    histogram
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .filter(|value| value.quantile_iterated_to() < 1.0)
        .map(|value| (1.0 / (1.0 - value.quantile_iterated_to()), value.value_iterated_to() as f64 / MICROSECONDS_PER_MILLISECOND))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_histogram_gives_known_lines() {
        // Shows: 1000, 2000, 3000 and 4000 us once each print as HdrHistogram's Java writer would: ms values, percentile ticks, running counts, 1/(1-p), and the footer.
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for value in [1000, 2000, 3000, 4000] {
            histogram.record(value).expect("in range");
        }
        let text = percentile_distribution(&histogram, "end-to-end");
        let expected = "\
# end-to-end
#[Values in milliseconds (recorded in microseconds, 3 significant figures)]
       Value     Percentile TotalCount 1/(1-Percentile)

       1.000 0.000000000000          1           1.00
       1.000 0.100000000000          1           1.11
       1.000 0.200000000000          1           1.25
       2.000 0.300000000000          2           1.43
       2.000 0.400000000000          2           1.67
       2.000 0.500000000000          2           2.00
       3.001 0.550000000000          3           2.22
       3.001 0.600000000000          3           2.50
       3.001 0.650000000000          3           2.86
       3.001 0.700000000000          3           3.33
       4.001 0.750000000000          4           4.00
       4.001 1.000000000000          4
#[Mean    =        2.501, StdDeviation   =        1.118]
#[Max     =        4.001, Total count    =            4]
";
        assert_eq!(text, expected);
    }

    #[test]
    fn curve_leaves_out_the_infinite_last_point() {
        // Shows: the plot's points are the file's percentiles below 100 %, x = 1/(1-p).
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for value in [1000, 2000, 3000, 4000] {
            histogram.record(value).expect("in range");
        }
        let curve = percentile_curve(&histogram);
        assert_eq!(curve.first(), Some(&(1.0, 1.0)));
        let (x, milliseconds) = *curve.last().expect("points");
        assert!((x - 4.0).abs() < 1e-9 && milliseconds == 4.001, "last point {x} {milliseconds}");
        assert_eq!(curve.len(), 11);
        assert!(percentile_curve(&Histogram::<u64>::new(3).expect("sigfig")).is_empty());
    }
}
