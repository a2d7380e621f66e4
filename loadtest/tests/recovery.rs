//! Exactly-once delivery across disconnects, against the real `tradebridge`:
//! under churn (masters and slaves dropping and reconnecting while trading,
//! outboxes re-sent above `ack_seq`, copies replayed above `last_seq`) and
//! after a slave that froze mid-run comes back. Latency gates are opened
//! wide here: these tests check correctness only.

mod harness_support;

use harness_support::{loadtest, read_summary, run, temp_directory, tradebridge_binary};

fn run_scenario(label: &str, words: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let out_dir = temp_directory(label);
    let output = run(loadtest()
        .args(words)
        .args(["--spawn", "--no-progress", "--drain-secs", "30", "--budget-p99-ms", "100000"])
        .arg("--bridge-bin")
        .arg(tradebridge_binary())
        .arg("--out-dir")
        .arg(&out_dir));
    let (_, summary) = read_summary(&out_dir);
    std::fs::remove_dir_all(&out_dir).expect("clean up");
    (output.status.code(), format!("stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr), summary)
}

#[test]
fn churn_of_opens_and_closes_loses_and_duplicates_nothing() {
    // Shows: 3x3 at 100 events/s for 6 s, every EA disconnecting about once a second (seeded), still delivers every open and close exactly once with the right volume.
    let words = ["churn", "--masters", "3", "--slaves-per-master", "3", "--rate", "100", "--secs", "6", "--churn-mean-ms", "1000", "--modifies-per-position", "0", "--seed", "7"];
    let (code, output, summary) = run_scenario("churn", &words);
    assert_eq!(code, Some(0), "{output}");
    let bridge = &summary["tradebridge"];
    let counts = &bridge["counts"];
    assert!(counts["expected"].as_u64().unwrap_or(0) > 1000, "{counts}");
    for field in ["lost", "duplicated", "wrong_volume", "unexpected"] {
        assert_eq!(counts[field].as_u64(), Some(0), "{field}: {counts}");
    }
    assert!(bridge["counters"]["disconnects_forced"].as_u64().unwrap_or(0) > 10, "churn happened: {}", bridge["counters"]);
}

#[test]
fn a_frozen_slave_gets_every_copy_once_after_it_resumes() {
    // Shows: a slave that neither reads nor writes for 4 s (the bridge's heartbeat limit is 3 s) receives every copy exactly once after it resumes, and the others lose nothing.
    let words = ["slow-slave", "--masters", "2", "--slaves-per-master", "3", "--rate", "100", "--secs", "8", "--hb-ms", "1000", "--moved-ms-min", "100000"];
    let (code, output, summary) = run_scenario("frozen", &words);
    assert_eq!(code, Some(0), "{output}");
    let counts = &summary["tradebridge"]["counts"];
    assert_eq!(counts["received"], counts["expected"], "{counts}");
    for field in ["lost", "duplicated", "wrong_volume", "unexpected"] {
        assert_eq!(counts[field].as_u64(), Some(0), "{field}: {counts}");
    }
}
