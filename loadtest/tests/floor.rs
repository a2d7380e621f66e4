//! `loadtest floor` as a user runs it: the real binary, real threads and
//! real loopback sockets, no bridge.

mod harness_support;

use harness_support::{loadtest, read_summary, run, temp_directory};

#[test]
fn floor_measures_every_wake_and_copy_and_writes_its_report() {
    // Shows: 40 rounds of 3 copies give 40 wakes, 120 per-copy times and 40 last-copy times, every byte sent was read, the last copy is never earlier than a round's wake, and the .hgrm files exist.
    let out_dir = temp_directory("floor");
    let output = run(loadtest().args(["floor", "--rounds", "40", "--copies", "3", "--gap-us", "200", "--tag", "test", "--out-dir"]).arg(&out_dir));
    assert_eq!(output.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stdout.starts_with("PASS floor: wake p50 "), "{}", output.stdout);
    let (folder, summary) = read_summary(&out_dir);
    let floor = &summary["floor"];
    assert_eq!(floor["wake_ms"]["count"].as_u64(), Some(40), "{floor}");
    assert_eq!(floor["send_ms"]["count"].as_u64(), Some(120), "{floor}");
    assert_eq!(floor["copy_written_ms"]["count"].as_u64(), Some(120), "{floor}");
    assert_eq!(floor["last_copy_written_ms"]["count"].as_u64(), Some(40), "{floor}");
    let sent = floor["bytes_sent"].as_u64().expect("bytes_sent");
    assert!(sent > 120 * 200, "120 copy frames of a few hundred bytes: {sent}");
    assert_eq!(floor["bytes_received"].as_u64(), Some(sent));
    let max = |field: &str| floor[field]["max"].as_f64().expect("max");
    let last_p50 = floor["last_copy_written_ms"]["p50"].as_f64().expect("p50");
    assert!(last_p50 >= floor["wake_ms"]["p50"].as_f64().expect("p50"), "a copy is written after the router woke: {floor}");
    assert!(max("last_copy_written_ms") >= max("copy_written_ms") - 1e-9, "the last copy bounds every copy of its round: {floor}");
    assert_eq!(summary["parameters"]["copies"].as_u64(), Some(3));
    for file in ["wake.hgrm", "send.hgrm", "copy_written.hgrm", "last_copy_written.hgrm", "floor.svg", "commands.txt"] {
        assert!(folder.join(file).is_file(), "{file} in {}", folder.display());
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn floor_refuses_a_bad_flag_by_name() {
    // Shows: --copies 0 is a usage error (exit 2) that names the flag and the allowed range, and nothing is written.
    let out_dir = temp_directory("floor-bad");
    let output = run(loadtest().args(["floor", "--copies", "0", "--out-dir"]).arg(&out_dir));
    assert_eq!(output.status.code(), Some(2), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stderr.contains("--copies") && output.stderr.contains("1 to 1000"), "{}", output.stderr);
    assert_eq!(std::fs::read_dir(&out_dir).expect("out dir").count(), 0);
    let _ = std::fs::remove_dir_all(&out_dir);
}
