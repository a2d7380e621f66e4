//! The persister's lag over a run as an SVG file (`persist_lag.svg`), drawn
//! with plotters' SVG backend like [`super::plot`]: two panels on one time
//! axis, `lag_records` above and `lag_seconds` below, the Postgres outage
//! shaded in both, and the measured phase's start, the load's end and the
//! catch-up marked by vertical lines.
//!
//! # Invariants
//! - The x axis is seconds since the measured phase began (the timeline is
//!   shifted before it is drawn); both panels share its range.
//! - Every range is finite and non-empty whatever the samples (none, one,
//!   all zero), so the file is always a well-formed drawing.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::plot::time_axis;
use crate::persist::timeline::{Sample, Timeline};

/// Size of the SVG drawing, in pixels.
const WIDTH_PIXELS: u32 = 1000;
const HEIGHT_PIXELS: u32 = 760;

const RECORDS_COLOUR: RGBColor = RGBColor(31, 119, 180);
const SECONDS_COLOUR: RGBColor = RGBColor(214, 39, 40);
const OUTAGE_COLOUR: RGBColor = RGBColor(255, 170, 170);
const MEASURE_COLOUR: RGBColor = RGBColor(44, 160, 44);
const LOAD_END_COLOUR: RGBColor = RGBColor(255, 127, 14);
const CAUGHT_UP_COLOUR: RGBColor = RGBColor(148, 103, 189);

/// The y axis reaches this many times the curve's peak: the top third of
/// each panel is left for the legend, so it never hides the curve.
const LEGEND_HEADROOM: f64 = 1.5;

/// One panel's series: its label, colour, value of a sample and how its
/// axis labels are written.
struct Panel {
    label: &'static str,
    axis: &'static str,
    colour: RGBColor,
    value: fn(&Sample) -> f64,
    tick: fn(&f64) -> String,
}

/// Draws `timeline` (already shifted to the measured phase's start) into `path`.
pub fn lag_plot(path: &Path, title: &str, timeline: &Timeline) -> anyhow::Result<()> {
    let failed = |error: &dyn std::fmt::Display| anyhow!("plot {}: {error}", path.display());
    let root = SVGBackend::new(path, (WIDTH_PIXELS, HEIGHT_PIXELS)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| failed(&error))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|error| failed(&error))?;
    let (upper, lower) = root.split_vertically(HEIGHT_PIXELS / 2 - 15);
    let panels = [
        Panel { label: "lag_records", axis: "journal records not yet in Postgres", colour: RECORDS_COLOUR, value: |sample| sample.lag_records as f64, tick: |value| format!("{value:.0}") },
        Panel { label: "lag_seconds", axis: "age of the oldest (s)", colour: SECONDS_COLOUR, value: |sample| sample.lag_seconds, tick: |value| format!("{value:.1}") },
    ];
    let x_range = x_range(timeline);
    for (area, panel) in [upper, lower].iter().zip(&panels) {
        draw_panel(area, panel, timeline, x_range.clone()).map_err(|error| failed(&error))?;
    }
    root.present().map_err(|error| failed(&error))?;
    Ok(())
}

/// Seconds covered by the samples and marks, never empty.
fn x_range(timeline: &Timeline) -> std::ops::Range<f64> {
    let marks = &timeline.marks;
    let times = timeline.samples.iter().map(|sample| sample.at_secs).chain([marks.measure_start_secs, marks.load_end_secs, marks.caught_up_secs].into_iter().flatten());
    time_axis(times, 0.0..1.0)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(area: &Area<'_>, panel: &Panel, timeline: &Timeline, x_range: std::ops::Range<f64>) -> Result<(), Box<dyn std::error::Error>> {
    let top = timeline.samples.iter().map(panel.value).fold(0.0f64, f64::max);
    // Headroom above the curve's peak for the legend box.
    let y_top = if top > 0.0 { top * LEGEND_HEADROOM } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.clone(), 0.0..y_top)?;
    chart.configure_mesh().x_desc("seconds since the measured phase began").y_desc(panel.axis).y_label_formatter(&panel.tick).draw()?;
    if let Some(outage) = timeline.marks.outage {
        let end = outage.restarted_secs.unwrap_or(x_range.end);
        chart
            .draw_series(std::iter::once(Rectangle::new([(outage.stop_begun_secs, 0.0), (end, y_top)], OUTAGE_COLOUR.mix(0.5).filled())))?
            .label(format!("Postgres down: {:.1} s to {end:.1} s", outage.stop_begun_secs))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], OUTAGE_COLOUR.mix(0.5).filled()));
    }
    let marks = &timeline.marks;
    for (label, at, colour) in [("measured phase begins", marks.measure_start_secs, MEASURE_COLOUR), ("load ends", marks.load_end_secs, LOAD_END_COLOUR), ("caught up", marks.caught_up_secs, CAUGHT_UP_COLOUR)] {
        let Some(at) = at else { continue };
        chart
            .draw_series(DashedLineSeries::new([(at, 0.0), (at, y_top)], 6, 4, colour.stroke_width(1)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(1)));
    }
    let colour = panel.colour;
    chart
        .draw_series(LineSeries::new(timeline.samples.iter().map(|sample| (sample.at_secs, (panel.value)(sample))), colour.stroke_width(2)))?
        .label(panel.label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::drawn_svg;
    use crate::persist::timeline::{Marks, OutageWindow};

    fn sample(at_secs: f64, lag_records: u64) -> Sample {
        Sample { at_secs, lag_records, lag_seconds: lag_records as f64 / 1000.0, persisted_journal_seq: 0, rows_total: 0, connected: true, failures_total: 0 }
    }

    /// The drawing's text, the file removed.
    fn draw(name: &str, timeline: &Timeline) -> String {
        drawn_svg(&format!("lag-{name}"), |path| lag_plot(path, "persister lag", timeline))
    }

    /// True when every element opened is closed in order (self-closing
    /// ones count as both): enough of XML to catch a truncated drawing.
    fn balanced(text: &str) -> bool {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else { return false };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name = |tag: &str| tag.split_whitespace().next().unwrap_or_default().to_string();
            if let Some(closing) = tag.strip_prefix('/') {
                if open.pop().map(name) != Some(name(closing)) {
                    return false;
                }
            } else {
                open.push(tag);
            }
        }
        open.is_empty()
    }

    #[test]
    fn a_lag_plot_is_well_formed_svg_with_the_outage_marked() {
        // Shows: with an outage the file is one balanced <svg> element holding both series, the shaded outage and the marks, and no NaN.
        let samples: Vec<Sample> = (0..30).map(|second| sample(f64::from(second) - 3.0, if (10..16).contains(&second) { 1000 * u64::from(second as u32 - 9) } else { 5 })).collect();
        let outage = OutageWindow { planned_at_secs: 7.0, planned_secs: Some(5.0), stop_begun_secs: 6.9, stopped_secs: 7.0, restart_begun_secs: Some(12.0), restarted_secs: Some(12.2) };
        let marks = Marks { measure_start_secs: Some(0.0), load_end_secs: Some(20.0), drained_secs: Some(20.5), outage: Some(outage), catch_up_from_secs: Some(20.0), caught_up_secs: Some(21.0) };
        let text = draw("outage", &Timeline { samples, marks });
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{}", &text[..60.min(text.len())]);
        assert!(balanced(&text), "unbalanced SVG");
        for label in ["lag_records", "lag_seconds", "Postgres down: 6.9 s to 12.2 s", "measured phase begins", "load ends", "caught up", "<rect", "<polyline"] {
            assert!(text.contains(label), "{label} missing");
        }
        assert!(!text.contains("NaN") && !text.contains("inf"), "non-finite coordinates");
    }

    #[test]
    fn an_empty_or_flat_timeline_still_draws() {
        // Shows: no samples, or all-zero lag, give a well-formed drawing with finite axes instead of an error.
        for (name, timeline) in [("empty", Timeline::default()), ("flat", Timeline { samples: vec![sample(0.0, 0), sample(1.0, 0)], marks: Marks::default() })] {
            let text = draw(name, &timeline);
            assert!(text.starts_with("<svg") && balanced(&text), "{name}");
            assert!(!text.contains("NaN"), "{name}");
        }
    }
}
