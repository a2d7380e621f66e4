//! The harness end to end against the real `tradebridge` binary over real
//! sockets: a small fanout passes with zero lost, duplicated or wrongly
//! sized copies; the budget gate fails a run that breaks it; a bridge
//! started by hand from `gen-config`'s files is loaded through `--url`.

mod harness_support;

use std::process::Command;

use harness_support::{loadtest, read_summary, run, temp_directory, tradebridge_binary};

/// The smoke scenario of the issue: 2 masters x 2 slaves at 50 events/s.
/// The journal acks at the page cache (`os`): the test runs beside the rest
/// of the suite, whose builds and journals make this virtual disk's flushes
/// take hundreds of milliseconds now and then, which would say nothing about
/// the harness or the gate.
fn smoke_arguments(out_dir: &std::path::Path) -> Vec<String> {
    let words = [
        "fanout", "--spawn", "--masters", "2", "--slaves-per-master", "2", "--rate", "50", "--secs", "3", "--warmup-secs", "1", "--drain-secs", "30",
        "--journal-sync", "os", "--no-progress",
    ];
    let mut arguments: Vec<String> = words.iter().map(|word| word.to_string()).collect();
    arguments.extend(["--bridge-bin".into(), tradebridge_binary().display().to_string(), "--out-dir".into(), out_dir.display().to_string()]);
    arguments
}

#[test]
fn smoke_fanout_passes_with_every_copy_exactly_once() {
    // Shows: 2x2 at 50 events/s for 3 s against tradebridge exits 0 under the default 200 ms budget, every expected copy arrived once with the right volume, and the report holds summary, .hgrm, plot and the latency timeline (per second, one minute for this short run, no ratio).
    let out_dir = temp_directory("smoke");
    let output = run(loadtest().args(smoke_arguments(&out_dir)));
    assert_eq!(output.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stdout.starts_with("PASS fanout"), "one-line summary: {}", output.stdout);
    let (folder, summary) = read_summary(&out_dir);
    let counts = &summary["tradebridge"]["counts"];
    let expected = counts["expected"].as_u64().expect("expected count");
    assert!(expected > 100, "at 50 events/s for 4 s with 2 followers each, hundreds of copies: {expected}");
    assert_eq!(counts["received"].as_u64(), Some(expected));
    for field in ["lost", "duplicated", "wrong_volume", "wrong_side", "unexpected"] {
        assert_eq!(counts[field].as_u64(), Some(0), "{field} in {counts}");
    }
    assert_eq!(summary["tradebridge"]["bridge_exit"]["exit_code"].as_i64(), Some(0), "the bridge exits 0 after SIGTERM");
    assert_eq!(summary["result"]["pass"].as_bool(), Some(true));
    assert!(summary["commit"].as_str().is_some_and(|commit| !commit.is_empty()));
    assert!(summary["tradebridge"]["bridge_metrics"]["latency_us"].is_object(), "bridge metrics scraped: {}", summary["tradebridge"]["bridge_metrics"]);
    let tradebridge = &summary["tradebridge"];
    assert!(tradebridge["timeline"].as_array().is_some_and(|seconds| seconds.len() >= 3), "a sample per second: {}", tradebridge["timeline"]);
    assert_eq!(tradebridge["minutes"].as_array().map(Vec::len), Some(1), "{}", tradebridge["minutes"]);
    assert!(tradebridge["last_minute_p99_over_first"].is_null());
    for file in ["end_to_end.hgrm", "ack.hgrm", "result.hgrm", "latency.svg", "tradebridge_timeline.tsv", "tradebridge_timeline.svg", "commands.txt", "bridge.toml"] {
        assert!(folder.join(file).is_file(), "{file} missing in {}", folder.display());
    }
    let hgrm = std::fs::read_to_string(folder.join("end_to_end.hgrm")).expect("hgrm");
    assert!(hgrm.contains("Values in milliseconds") && hgrm.contains("1/(1-Percentile)"), "{hgrm}");
    std::fs::remove_dir_all(&out_dir).expect("clean up");
}

#[test]
fn budget_gate_fails_a_run_that_breaks_it() {
    // Shows: the same smoke run with a 0.001 ms budget exits 1 and says which p99 broke which budget, though nothing was lost.
    let out_dir = temp_directory("gate");
    let mut arguments = smoke_arguments(&out_dir);
    arguments.extend(["--budget-p99-ms".into(), "0.001".into()]);
    let output = run(loadtest().args(arguments));
    assert_eq!(output.status.code(), Some(1), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert!(output.stderr.contains("end-to-end p99") && output.stderr.contains("breaks the budget of 0.001 ms"), "stderr:\n{}", output.stderr);
    assert!(output.stdout.starts_with("FAIL fanout"), "{}", output.stdout);
    let (_, summary) = read_summary(&out_dir);
    assert_eq!(summary["tradebridge"]["counts"]["lost"].as_u64(), Some(0));
    assert_eq!(summary["result"]["pass"].as_bool(), Some(false));
    std::fs::remove_dir_all(&out_dir).expect("clean up");
}

#[test]
fn a_running_bridge_is_loaded_through_url_with_gen_config_files() {
    // Shows: gen-config writes a config and a keys file; a bridge started on it by hand is loaded with --url/--config, and every copy arrives once.
    let directory = temp_directory("url");
    let listen = harness_support::free_address();
    let config_dir = directory.join("config");
    let generate = run(loadtest().args(["gen-config", "--masters", "2", "--slaves-per-master", "2", "--listen", &listen.to_string(), "--metrics-listen", "none"]).arg("--out").arg(&config_dir));
    assert_eq!(generate.status.code(), Some(0), "{}", generate.stderr);
    let keys = std::fs::read_to_string(config_dir.join("keys.tsv")).expect("keys file");
    let config = std::fs::read_to_string(config_dir.join("bridge.toml")).expect("config");
    let first_key = keys.lines().nth(1).and_then(|line| line.split('\t').nth(3)).expect("a key");
    assert!(!config.contains(first_key), "the configuration holds hashes, never clear keys");
    let mut bridge = harness_support::Bridge::start(&config_dir.join("bridge.toml"), listen);
    let output = run(loadtest()
        // gen-config keeps the product's default `group` sync, so each copy
        // waits for an msync; a build writing beside the suite stalled one
        // for 200-250 ms (measured). This test is about --url and the
        // counts; the latency gate is the smoke scenario's, under `os`.
        .args(["fanout", "--url", &format!("ws://{listen}/ea"), "--rate", "40", "--secs", "2", "--warmup-secs", "1", "--no-progress", "--budget-p99-ms", "60000", "--bridge-pid", &bridge.pid().to_string()])
        .arg("--config")
        .arg(config_dir.join("bridge.toml"))
        .arg("--out-dir")
        .arg(directory.join("out")));
    bridge.stop();
    assert_eq!(output.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    let (_, summary) = read_summary(&directory.join("out"));
    assert_eq!(summary["tradebridge"]["counts"]["lost"].as_u64(), Some(0));
    assert!(summary["tradebridge"]["measured"]["cpu"]["bridge_seconds"].is_number(), "--bridge-pid gives the bridge's CPU");
    let again = Command::new(env!("CARGO_BIN_EXE_loadtest")).args(["gen-config", "--out"]).arg(&config_dir).output().expect("run");
    assert_eq!(again.status.code(), Some(2), "gen-config never overwrites");
    std::fs::remove_dir_all(&directory).expect("clean up");
}
