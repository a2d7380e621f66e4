//! A run's end-to-end latency per second as an SVG file
//! (`<bridge>_timeline.svg`), drawn with plotters' SVG backend like
//! [`super::plot`] and [`super::lag_plot`]: the p50, p99, p99.9 and maximum
//! of each second as lines over seconds since the measured phase began, on
//! a logarithmic millisecond axis, the measured phase's start marked by a
//! dashed vertical line.
//!
//! # Invariants
//! - A second without a copy (warm-up, a pause) breaks every line instead
//!   of being drawn at 0 ms, which a logarithmic axis cannot show; a second
//!   alone between two gaps is drawn as a dot.
//! - Every range is finite and non-empty whatever the seconds (none, one,
//!   all without copies), so the file is always a well-formed drawing.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::plot::time_axis;
use super::timeline::{LatencyTimeline, Second};
use crate::stats::LatencyFigures;

/// Size of the SVG drawing, in pixels.
const WIDTH_PIXELS: u32 = 1000;
const HEIGHT_PIXELS: u32 = 600;

const MEASURE_COLOUR: RGBColor = RGBColor(44, 160, 44);

/// Lowest latency drawn, in milliseconds (a log axis has no 0).
const Y_FLOOR_MS: f64 = 0.0005;

/// The y axis spans this many times the curves' own span, in log scale,
/// above their lowest point: the top third is left for the legend.
const LEGEND_HEADROOM: f64 = 1.5;

/// The y range, in ms, when no second had a copy.
const Y_EMPTY_MS: std::ops::Range<f64> = 0.1..10.0;

/// One line: its label, colour and the figure it draws.
struct Curve {
    label: &'static str,
    colour: RGBColor,
    value: fn(&LatencyFigures) -> f64,
}

const CURVES: [Curve; 4] = [
    Curve { label: "p50", colour: RGBColor(31, 119, 180), value: |figures| figures.p50_ms },
    Curve { label: "p99", colour: RGBColor(255, 127, 14), value: |figures| figures.p99_ms },
    Curve { label: "p99.9", colour: RGBColor(214, 39, 40), value: |figures| figures.p99_9_ms },
    Curve { label: "max", colour: RGBColor(148, 103, 189), value: |figures| figures.max_ms },
];

/// Draws `timeline` into `path`.
pub fn timeline_plot(path: &Path, title: &str, timeline: &LatencyTimeline) -> anyhow::Result<()> {
    draw(path, title, timeline).map_err(|error| anyhow!("plot {}: {error}", path.display()))
}

fn draw(path: &Path, title: &str, timeline: &LatencyTimeline) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (WIDTH_PIXELS, HEIGHT_PIXELS)).into_drawing_area();
    root.fill(&WHITE)?;
    let y_ms = y_range(&timeline.seconds);
    let x_axis = if timeline.measured_secs.is_some() { "seconds since the measured phase began" } else { "seconds since the run began (no measured phase)" };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range(timeline), y_ms.clone().log_scale())?;
    chart.configure_mesh().x_desc(x_axis).y_desc("end-to-end latency per second (ms, log scale)").draw()?;
    if timeline.measured_secs.is_some() {
        chart
            .draw_series(DashedLineSeries::new([(0.0, y_ms.start), (0.0, y_ms.end)], 6, 4, MEASURE_COLOUR.stroke_width(1)))?
            .label("measured phase begins")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MEASURE_COLOUR.stroke_width(1)));
    }
    for curve in &CURVES {
        let colour = curve.colour;
        let pieces = runs(&timeline.seconds, curve.value);
        chart
            .draw_series(pieces.iter().filter(|points| points.len() > 1).map(|points| PathElement::new(points.clone(), colour.stroke_width(2))))?
            .label(curve.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(pieces.iter().filter(|points| points.len() == 1).map(|points| Circle::new(points[0], 2, colour.filled())))?;
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// The points of one figure, split where a second had no copy.
fn runs(seconds: &[Second], value: fn(&LatencyFigures) -> f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for second in seconds {
        if second.figures.count == 0 {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push((second.t_s, value(&second.figures).max(Y_FLOOR_MS)));
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Seconds covered by the samples and the measured start, never empty.
fn x_range(timeline: &LatencyTimeline) -> std::ops::Range<f64> {
    let start = timeline.measured_secs.map(|_| 0.0);
    time_axis(timeline.seconds.iter().map(|second| second.t_s).chain(start), -1.0..1.0)
}

/// Milliseconds from below the lowest p50 to above the highest maximum,
/// with the legend's headroom; never empty.
fn y_range(seconds: &[Second]) -> std::ops::Range<f64> {
    let values = seconds.iter().filter(|second| second.figures.count > 0).flat_map(|second| CURVES.iter().map(|curve| (curve.value)(&second.figures).max(Y_FLOOR_MS)));
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| (low.min(value), high.max(value)));
    if !low.is_finite() || !high.is_finite() {
        return Y_EMPTY_MS;
    }
    let (low, high) = (low / 1.5, high * 1.5);
    low..low * (high / low).powf(LEGEND_HEADROOM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::drawn_svg;
    use crate::report::timeline::MeasuredWindow;
    use crate::stats::{histogram, TimelineSample};

    /// `count` seconds from 3 s before the measured start, the first three
    /// (warm-up) without copies, the others with copies of 1 to 20 ms.
    fn timeline(count: u32) -> LatencyTimeline {
        let samples: Vec<TimelineSample> = (0..count)
            .map(|second| {
                let mut latencies = histogram();
                if second >= 3 {
                    for value in 1..=200u64 {
                        latencies.record(value * 100 * u64::from(second % 7 + 1)).expect("in range");
                    }
                }
                TimelineSample::new(f64::from(second) + 0.5, if second < 3 { "warmup" } else { "measure" }, &latencies)
            })
            .collect();
        let window = MeasuredWindow { start_secs: 3.0, secs: f64::from(count.saturating_sub(3)), phases: vec!["measure".into()] };
        LatencyTimeline::new(&samples, Some(&window))
    }

    /// The drawing's text, the file removed.
    fn draw(name: &str, timeline: &LatencyTimeline) -> String {
        drawn_svg(&format!("timeline-{name}"), |path| timeline_plot(path, "end-to-end latency per second", timeline))
    }

    /// Lines (legend included) and dots drawn in each curve's colour.
    fn marks_per_curve(text: &str) -> Vec<(usize, usize)> {
        let hex = |colour: RGBColor| format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
        CURVES.iter().map(|curve| (text.matches(&format!("stroke=\"{}\"", hex(curve.colour))).count(), text.matches(&format!("fill=\"{}\"", hex(curve.colour))).count())).collect()
    }

    #[test]
    fn a_timeline_plot_is_drawn_for_no_one_and_many_seconds() {
        // Shows: with no second, one second and 123 seconds the file is a complete <svg> drawing with the four curves and the measured start in its legend and no NaN; each curve is only its legend entry with no second, a dot with one, a line with many.
        let one = LatencyTimeline { seconds: timeline(4).seconds[3..].to_vec(), ..timeline(4) };
        for (name, timeline, lines, dots) in [("none", timeline(0), 1, 0), ("one", one, 1, 1), ("many", timeline(123), 2, 0)] {
            let text = draw(name, &timeline);
            assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{name}: {}", &text[..60.min(text.len())]);
            for label in ["p50", "p99", "p99.9", "max", "measured phase begins"] {
                assert!(text.contains(label), "{name}: {label} missing");
            }
            assert!(!text.contains("NaN") && !text.contains("inf"), "{name}: non-finite coordinates");
            assert_eq!(marks_per_curve(&text), vec![(lines, dots); 4], "{name}: (lines, dots) of each curve");
        }
    }

    #[test]
    fn lines_break_where_a_second_had_no_copy() {
        // Shows: seconds without copies split a curve into runs and are not drawn; no copy at all gives no run and the default y range.
        let mut timeline = timeline(10);
        timeline.seconds[6].figures = LatencyFigures::default();
        let pieces = runs(&timeline.seconds, |figures| figures.p99_ms);
        assert_eq!(pieces.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3]);
        assert!(runs(&timeline.seconds[..3], |figures| figures.max_ms).is_empty());
        assert_eq!(y_range(&timeline.seconds[..3]), Y_EMPTY_MS);
        let range = y_range(&timeline.seconds);
        assert!(range.start > 0.0 && range.start < range.end, "{range:?}");
    }
}
