//! The EA host harness under the workspace test command: g++ builds the four
//! Expert Advisors' logic through `mql/host/mql_shim.h`, runs their unit tests
//! against the simulated terminals and real loopback sockets, then runs the
//! syntax and consistency pass over every `.mq4`, `.mq5` and `.mqh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tradebridge_core::protocol;

fn run_make(target: &str) {
    run_make_with(target, &[]);
}

/// Runs `make target` in mql/host with extra environment variables.
fn run_make_with(target: &str, environment: &[(&str, &Path)]) {
    let host = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mql/host");
    let output = Command::new("make")
        .arg("-C")
        .arg(&host)
        .arg("-j2")
        .arg(target)
        .envs(environment.iter().map(|(name, value)| (*name, *value)))
        .output()
        .expect("make must be installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "make {target} failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    // Every harness binary ends with "N passed, 0 failed"; a run that printed
    // no such line ran no test and must not count as a pass.
    let summaries: Vec<&str> = stdout.lines().filter(|line| line.contains(" passed, ")).collect();
    assert!(!summaries.is_empty(), "make {target} printed no test summary:\n{stdout}");
    for summary in summaries {
        assert!(summary.ends_with(" 0 failed"), "make {target}: {summary}");
    }
}

/// Every message of the EAs' fixture file, parsed and written again by the
/// Rust codec; panics if the Rust codec refuses a line, or reads its own
/// output as another message.
fn rust_written_fixture_lines() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mql/host/fixtures/messages.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut lines = String::new();
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.trim().is_empty()) {
        let message = protocol::parse(line.as_bytes()).unwrap_or_else(|error| panic!("the Rust codec refuses an EA fixture line: {error}\n{line}"));
        let mut written = Vec::new();
        protocol::write(&message, &mut written);
        let again = protocol::parse(&written).expect("the Rust codec reads its own output");
        assert_eq!(again, message, "the Rust codec's output reads back as another message:\n{line}");
        lines.push_str(std::str::from_utf8(&written).expect("the writer emits UTF-8"));
        lines.push('\n');
    }
    lines
}

#[test]
fn ea_logic_unit_tests_and_syntax_pass() {
    // Shows: the EAs' WebSocket, JSON, session, outbox, Monitor and Executor
    // logic pass their host tests (their JSON reader also reads every message
    // as the Rust codec writes it, losing nothing), and every MQL source passes
    // the syntax pass. One test, run in sequence, because every step builds
    // into mql/host/build.
    let rust_lines = rust_written_fixture_lines();
    assert!(rust_lines.lines().count() >= 21, "too few fixture messages:\n{rust_lines}");
    let fixture = std::env::temp_dir().join(format!("tradebridge-rust-messages-{}.jsonl", std::process::id()));
    std::fs::write(&fixture, &rust_lines).expect("write the Rust-written fixture");
    run_make_with("test", &[("TB_EXTRA_FIXTURES", fixture.as_path())]);
    let _ = std::fs::remove_file(&fixture);
    run_make("check");
}
