//! The harness catches a broken bridge: against `loadtest-baseline` with
//! each `--fault`, it reports exactly that kind of failure (lost,
//! duplicated or wrong volume) and exits 1; without a fault the same run
//! passes, so the failures come from the faults and not from the harness.

mod harness_support;

use harness_support::{loadtest, read_summary, run, temp_directory};

/// Runs a small fanout against the baseline with `fault` (if any); the
/// exit code, stderr and the baseline's counts.
fn run_against_baseline(label: &str, fault: Option<&str>) -> (Option<i32>, String, serde_json::Value) {
    let out_dir = temp_directory(label);
    let mut command = loadtest();
    command.args(["fanout", "--spawn", "--bridge", "baseline", "--masters", "2", "--slaves-per-master", "2", "--rate", "50", "--secs", "2", "--warmup-secs", "1", "--drain-secs", "5", "--no-progress"]);
    command.args(["--bridge-bin", env!("CARGO_BIN_EXE_loadtest-baseline")]).arg("--out-dir").arg(&out_dir);
    if let Some(fault) = fault {
        command.args(["--fault", fault]);
    }
    let output = run(&mut command);
    let (_, summary) = read_summary(&out_dir);
    std::fs::remove_dir_all(&out_dir).expect("clean up");
    (output.status.code(), output.stderr, summary["loadtest-baseline"]["counts"].clone())
}

fn count(counts: &serde_json::Value, field: &str) -> u64 {
    counts[field].as_u64().unwrap_or_else(|| panic!("{field} missing in {counts}"))
}

#[test]
fn the_baseline_without_faults_passes() {
    // Shows: the control run: the same fanout against the fault-free baseline exits 0 with nothing lost, duplicated or wrong.
    let (code, stderr, counts) = run_against_baseline("fault-none", None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(count(&counts, "expected") > 0);
    assert_eq!((count(&counts, "lost"), count(&counts, "duplicated"), count(&counts, "wrong_volume")), (0, 0, 0), "{counts}");
}

#[test]
fn dropped_copies_are_reported_as_lost() {
    // Shows: lose-every=5 makes the harness count lost copies (and only lost ones) and exit 1.
    let (code, stderr, counts) = run_against_baseline("fault-lose", Some("lose-every=5"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(count(&counts, "lost") > 0, "{counts}");
    assert_eq!((count(&counts, "duplicated"), count(&counts, "wrong_volume")), (0, 0), "{counts}");
    assert!(stderr.contains("lost "), "{stderr}");
}

#[test]
fn duplicated_copies_are_reported_as_duplicated() {
    // Shows: duplicate-every=5 (a second send under the next seq) makes the harness count duplicates (and only those) and exit 1.
    let (code, stderr, counts) = run_against_baseline("fault-duplicate", Some("duplicate-every=5"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(count(&counts, "duplicated") > 0, "{counts}");
    assert_eq!((count(&counts, "lost"), count(&counts, "wrong_volume")), (0, 0), "{counts}");
}

#[test]
fn doubled_volumes_are_reported_as_wrong_volume() {
    // Shows: volume-every=5 (twice the volume) makes the harness count wrong volumes (and only those) and exit 1.
    let (code, stderr, counts) = run_against_baseline("fault-volume", Some("volume-every=5"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(count(&counts, "wrong_volume") > 0, "{counts}");
    assert_eq!((count(&counts, "lost"), count(&counts, "duplicated")), (0, 0), "{counts}");
}
