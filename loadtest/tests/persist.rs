//! `--persist` end to end: the real `loadtest` and `tradebridge` binaries,
//! a throwaway Postgres cluster from the installed server (as
//! `tradebridge_persist::testing` finds it), a Postgres outage in the middle
//! of the measured phase, and the report it leaves.

mod harness_support;

use harness_support::{loadtest, read_summary, run, temp_directory, tradebridge_binary};

#[test]
fn a_persisted_fanout_survives_a_postgres_outage_with_every_row_once() {
    // Shows: 2x2 at 50 events/s with Postgres stopped 1 s into the 4 s measured phase for 1 s exits 0; Postgres holds every acked event, received copy and written result once, the outage and catch-up are in summary.json, and the lag plot and timeline are written.
    let out_dir = temp_directory("persist");
    let words = [
        "fanout", "--spawn", "--masters", "2", "--slaves-per-master", "2", "--rate", "50", "--secs", "4", "--warmup-secs", "1", "--drain-secs", "30",
        "--journal-sync", "os", "--no-progress", "--persist", "--persist-retry-ms-max", "500", "--postgres-outage-at", "1", "--postgres-outage-secs", "1",
    ];
    let output = run(loadtest().args(words).arg("--bridge-bin").arg(tradebridge_binary()).arg("--out-dir").arg(&out_dir));
    assert_eq!(output.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("persister on: ") && output.stdout.contains("lost rows 0"), "{}", output.stdout);
    let (folder, summary) = read_summary(&out_dir);
    let persist = &summary["persist"];
    assert_eq!(persist["lost_rows"].as_u64(), Some(0), "{persist}");
    assert!(persist["rows"]["checks"].as_array().expect("checks").iter().all(|check| check["ok"] == true), "{}", persist["rows"]);
    let counts = &persist["rows"]["row_counts"];
    assert_eq!(counts["master_events"], summary["tradebridge"]["counters"]["events_acked"], "{counts}");
    assert_eq!(counts["copies"].as_u64(), summary["tradebridge"]["counts"]["received"].as_u64(), "no skips in the receipts: every copy issued was received once");
    assert!(persist["outage_window"]["restarted_secs"].as_f64().expect("restarted") > persist["outage_window"]["stopped_secs"].as_f64().expect("stopped"));
    assert!(persist["max_lag_records"].as_u64().expect("max lag") > 0, "Postgres away for a second leaves a lag: {persist}");
    assert!(persist["catch_up_secs"].as_f64().is_some(), "caught up: {persist}");
    assert_eq!(summary["parameters"]["persist"]["outage"]["at_secs_into_measured_phase"].as_f64(), Some(1.0));
    let svg = std::fs::read_to_string(folder.join("persist_lag.svg")).expect("persist_lag.svg");
    assert!(svg.starts_with("<svg") && svg.contains("Postgres down"), "the plot marks the outage");
    let timeline = std::fs::read_to_string(folder.join("persist_timeline.tsv")).expect("persist_timeline.tsv");
    assert!(timeline.lines().count() > 5, "a sample a second, then ten a second: {timeline}");
    assert!(std::fs::read_to_string(folder.join("bridge.toml")).expect("bridge.toml").contains("[persist]"));
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn persist_is_refused_for_the_baseline_before_anything_starts() {
    // Shows: --persist with --bridge baseline is a usage error (exit 2) that says why, and no report is written.
    let out_dir = temp_directory("persist-baseline");
    let output = run(loadtest().args(["fanout", "--spawn", "--bridge", "baseline", "--persist", "--no-progress", "--out-dir"]).arg(&out_dir));
    assert_eq!(output.status.code(), Some(2), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stderr.contains("--persist with --bridge baseline: the baseline bridge has no persister"), "{}", output.stderr);
    assert_eq!(std::fs::read_dir(&out_dir).expect("out dir").count(), 0);
    let _ = std::fs::remove_dir_all(&out_dir);
}
