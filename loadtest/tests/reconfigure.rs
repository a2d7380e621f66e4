//! `--reconfigure-every-ms` end to end: the real `loadtest` and
//! `tradebridge` binaries; the harness moves a spare slave's follow every
//! 200 ms by rewriting the configuration and sending SIGHUP, while the
//! fleet's copies are checked as always.

mod harness_support;

use harness_support::{loadtest, read_summary, run, temp_directory, tradebridge_binary};

#[test]
fn live_follow_changes_under_load_lose_no_copy_and_no_session() {
    // Shows: 2x2 at 50 events/s for 3 s with a follow change every 200 ms exits 0; every change was applied (the bridge's reload outcome), no copy of the fleet was lost, duplicated or wrong, no fleet session was lost, and summary.json has the changes and their apply times.
    let out_dir = temp_directory("reconfigure");
    let words = [
        "fanout", "--spawn", "--masters", "2", "--slaves-per-master", "2", "--rate", "50", "--secs", "3", "--warmup-secs", "1", "--drain-secs", "30",
        "--journal-sync", "os", "--no-progress", "--reconfigure-every-ms", "200",
    ];
    let output = run(loadtest().args(words).arg("--bridge-bin").arg(tradebridge_binary()).arg("--out-dir").arg(&out_dir));
    assert_eq!(output.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("lost 0 dup 0 wrong 0") && output.stdout.contains("reconfigured "), "{}", output.stdout);
    let (folder, summary) = read_summary(&out_dir);
    let record = &summary["reconfigure"];
    assert!(record["changes"].as_u64().expect("changes") >= 10, "{record}");
    assert_eq!(record["applied"], record["changes"], "{record}");
    assert_eq!(record["failed"].as_u64(), Some(0));
    assert_eq!(record["fleet_sessions_lost"].as_u64(), Some(0));
    assert!(record["apply_ms"]["max"].as_f64().expect("max") > 0.0);
    assert!(std::fs::read_to_string(folder.join("bridge.toml")).expect("bridge.toml").contains("Spare slaves"));
    let _ = std::fs::remove_dir_all(&out_dir);
}
