//! Reports: run folders under `bench-results/`, `summary.json`, `.hgrm`
//! percentile distributions, latency plots, and the README's index row.
//!
//! # Layout
//! - [`hgrm`]: HdrHistogram's percentile-distribution text.
//! - [`plot`]: the percentile-curve SVG.
//! - [`lag_plot`]: the persister's lag over time (`--persist`), with the
//!   Postgres outage shaded.
//! - [`timeline`]: a trading run's end-to-end latency per second and per
//!   minute of the measured phase; [`timeline_plot`] draws it.
//! - [`RunFolder`]: a new folder `<YYYY-MM-DD>_<scenario>[_<tag>]`, never an
//!   existing one (a `-2`, `-3` ... suffix is added instead).
//! - [`latency_summary`]: the percentiles `summary.json` quotes.
//! - [`append_index_row`]: one row in the README's table of runs.
//! - [`commit`], [`command_line`], [`utc_date`], [`utc_timestamp`].
//!
//! # Invariants
//! - An existing run folder is never written into: the folder is created
//!   with `create_dir`, which fails on an existing path, and the next
//!   suffix is tried.

pub mod hgrm;
pub mod lag_plot;
pub mod plot;
pub mod timeline;
pub mod timeline_plot;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Suffixes tried after the plain name before giving up.
pub const FOLDER_SUFFIXES_MAX: u32 = 1000;

/// A run's folder of reports.
#[derive(Debug)]
pub struct RunFolder {
    pub path: PathBuf,
    /// The folder's name (its last component), for the README row.
    pub name: String,
}

impl RunFolder {
    /// Creates `out_dir/<date>_<scenario>[_<tag>]`, or with `-2`, `-3` ...
    /// when that exists.
    pub fn create(out_dir: &Path, scenario: &str, tag: Option<&str>) -> anyhow::Result<RunFolder> {
        std::fs::create_dir_all(out_dir).with_context(|| format!("--out-dir {}: cannot create it", out_dir.display()))?;
        let base = match tag {
            Some(tag) => format!("{}_{scenario}_{tag}", utc_date()),
            None => format!("{}_{scenario}", utc_date()),
        };
        for number in 1..=FOLDER_SUFFIXES_MAX {
            let name = if number == 1 { base.clone() } else { format!("{base}-{number}") };
            let path = out_dir.join(&name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(RunFolder { path, name }),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("{}: {FOLDER_SUFFIXES_MAX} run folders named {base} already exist", out_dir.display());
    }

    /// Writes `text` to `name` in the folder.
    pub fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.path.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes `histogram` as `<name>.hgrm`.
    pub fn write_hgrm(&self, name: &str, title: &str, histogram: &Histogram<u64>) -> anyhow::Result<()> {
        self.write(&format!("{name}.hgrm"), &hgrm::percentile_distribution(histogram, title))
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &Value) -> anyhow::Result<()> {
        self.write("summary.json", &(serde_json::to_string_pretty(summary)? + "\n"))
    }

    /// Draws the curves into `<name>.svg`.
    pub fn write_plot(&self, name: &str, title: &str, curves: &[(&str, &Histogram<u64>)]) -> anyhow::Result<()> {
        plot::percentile_plot(&self.path.join(format!("{name}.svg")), title, curves)
    }
}

/// Percentiles of a histogram (microseconds) in milliseconds, for JSON.
pub fn latency_summary(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return json!({ "count": 0 });
    }
    let milliseconds = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    json!({
        "count": histogram.len(),
        "p50": milliseconds(0.5),
        "p90": milliseconds(0.9),
        "p99": milliseconds(0.99),
        "p99_9": milliseconds(0.999),
        "p99_99": milliseconds(0.9999),
        "max": histogram.max() as f64 / 1000.0,
        "mean": histogram.mean() / 1000.0,
    })
}

/// Appends a row to the table at the end of `out_dir/README.md`; false
/// when there is no README (a report written outside bench-results/).
pub fn append_index_row(out_dir: &Path, cells: &[String]) -> anyhow::Result<bool> {
    let path = out_dir.join("README.md");
    if !path.is_file() {
        return Ok(false);
    }
    let mut text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let cells: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|").replace('\n', " ")).collect();
    text.push_str(&format!("| {} |\n", cells.join(" | ")));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// `git rev-parse HEAD` of the current directory, with `-dirty` when the
/// tree has uncommitted changes; "unknown" outside a repository.
pub fn commit() -> String {
    let head = Command::new("git").args(["rev-parse", "HEAD"]).output().ok().filter(|output| output.status.success());
    let Some(head) = head else { return "unknown".into() };
    let mut commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let dirty = Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).output().ok().is_some_and(|output| !output.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    commit
}

/// This process's command line, quoted for a shell where needed.
pub fn command_line() -> String {
    std::env::args()
        .map(|argument| {
            if !argument.is_empty() && argument.chars().all(|character| character.is_ascii_alphanumeric() || "-_./=:,@".contains(character)) {
                argument
            } else {
                format!("'{}'", argument.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn unix_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Today's UTC date, `YYYY-MM-DD`.
pub fn utc_date() -> String {
    let (year, month, day) = civil_from_days(unix_seconds().div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Now in UTC, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_timestamp() -> String {
    let seconds = unix_seconds();
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        // Shows: day 0 is 1970-01-01, leap days and the 2000 leap century land right.
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn an_existing_run_folder_is_never_reused() {
        // Shows: a second folder of the same scenario and tag gets the -2 suffix, and the first keeps its file untouched.
        let out = std::env::temp_dir().join(format!("loadtest-folders-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let first = RunFolder::create(&out, "fanout", Some("x")).expect("first");
        first.write("summary.json", "first").expect("write");
        let second = RunFolder::create(&out, "fanout", Some("x")).expect("second");
        assert_eq!(second.name, format!("{}-2", first.name));
        assert_eq!(std::fs::read_to_string(first.path.join("summary.json")).expect("read"), "first");
        assert!(!append_index_row(&out, &["a".into()]).expect("no readme"), "no README: no row");
        std::fs::write(out.join("README.md"), "| run |\n|---|\n").expect("readme");
        assert!(append_index_row(&out, &["a|b".into()]).expect("row"));
        assert_eq!(std::fs::read_to_string(out.join("README.md")).expect("read"), "| run |\n|---|\n| a\\|b |\n");
        std::fs::remove_dir_all(&out).expect("clean up");
    }
}
