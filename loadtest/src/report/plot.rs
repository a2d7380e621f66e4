//! The latency plot: percentile curves on a logarithmic "1/(1-p)" x axis,
//! the way HdrHistogram's plotter draws them, as an SVG file.
//!
//! # Invariants
//! - The x axis runs from 1 (p = 0) to the largest 1/(1-p) any curve
//!   reaches; its labels are percentiles (50 %, 90 %, 99 %, ...).
//! - The y axis is logarithmic, in milliseconds, so a sub-millisecond curve
//!   and a second-long tail are both readable on one plot.

use std::path::Path;

use anyhow::anyhow;
use hdrhistogram::Histogram;
use plotters::prelude::*;

use super::hgrm::percentile_curve;

/// Size of the SVG drawing, in pixels.
const WIDTH_PIXELS: u32 = 1000;
const HEIGHT_PIXELS: u32 = 600;

/// Colours of successive curves.
const COLOURS: [RGBColor; 6] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(255, 127, 14), RGBColor(148, 103, 189), RGBColor(140, 86, 75)];

/// Draws `curves` (label, histogram in microseconds) into `path`.
pub fn percentile_plot(path: &Path, title: &str, curves: &[(&str, &Histogram<u64>)]) -> anyhow::Result<()> {
    let points: Vec<(&str, Vec<(f64, f64)>)> = curves.iter().map(|(label, histogram)| (*label, percentile_curve(histogram))).filter(|(_, points)| !points.is_empty()).collect();
    let x_max = points.iter().flat_map(|(_, points)| points.iter().map(|(x, _)| *x)).fold(10.0f64, f64::max) * 1.5;
    let y_max = points.iter().flat_map(|(_, points)| points.iter().map(|(_, y)| *y)).fold(0.001f64, f64::max) * 1.5;
    let y_min = points.iter().flat_map(|(_, points)| points.iter().map(|(_, y)| *y)).filter(|y| *y > 0.0).fold(y_max, f64::min) / 1.5;
    let root = SVGBackend::new(path, (WIDTH_PIXELS, HEIGHT_PIXELS)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| anyhow!("plot {}: {error}", path.display()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0f64..x_max).log_scale(), (y_min.max(0.0005)..y_max).log_scale())
        .map_err(|error| anyhow!("plot {}: {error}", path.display()))?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1/(1-p))")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(|error| anyhow!("plot {}: {error}", path.display()))?;
    for (index, (label, curve)) in points.into_iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(curve.into_iter().map(|(x, y)| (x, y.max(0.0005))), colour.stroke_width(2)))
            .map_err(|error| anyhow!("plot {}: {error}", path.display()))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|error| anyhow!("plot {}: {error}", path.display()))?;
    root.present().map_err(|error| anyhow!("plot {}: {error}", path.display()))?;
    Ok(())
}

/// The percentile an x of 1/(1-p) stands for: 2 -> "50%", 100 -> "99%".
pub fn percentile_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percent:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// A time axis (seconds) over `times`, with 2 % margins (at least 0.5 s)
/// on each side; `empty` when there is no finite time, so the axis is
/// never empty or non-finite. Shared by the timeline drawings.
pub fn time_axis(times: impl Iterator<Item = f64>, empty: std::ops::Range<f64>) -> std::ops::Range<f64> {
    let (low, high) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), time| (low.min(time), high.max(time)));
    if !low.is_finite() || !high.is_finite() {
        return empty;
    }
    let margin = ((high - low) * 0.02).max(0.5);
    (low - margin)..(high + margin)
}

/// Draws with `draw` into a temporary SVG file named after `name` and
/// returns its text, the file removed (the drawings' tests).
#[cfg(test)]
pub fn drawn_svg(name: &str, draw: impl FnOnce(&Path) -> anyhow::Result<()>) -> String {
    let path = std::env::temp_dir().join(format!("loadtest-{name}-{}.svg", std::process::id()));
    draw(&path).expect("plot");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::remove_file(&path).expect("clean up");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_are_percentiles() {
        // Shows: x = 1/(1-p) is labelled with its percentile.
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
    }

    #[test]
    fn a_plot_is_an_svg_with_every_curve_named() {
        // Shows: the file is SVG and carries each curve's label in its legend.
        let mut histogram = crate::stats::histogram();
        for value in 1..=1000u64 {
            histogram.record(value * 10).expect("in range");
        }
        let path = std::env::temp_dir().join(format!("loadtest-plot-{}.svg", std::process::id()));
        percentile_plot(&path, "test", &[("end-to-end", &histogram), ("ack", &histogram)]).expect("plot");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::remove_file(&path).expect("clean up");
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        assert!(text.contains("end-to-end") && text.contains("ack"));
    }
}
