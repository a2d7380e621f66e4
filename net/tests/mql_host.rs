//! The EA host harness under the workspace test command: g++ builds the four
//! Expert Advisors' logic through `mql/host/mql_shim.h`, runs their unit tests
//! against the simulated terminals and real loopback sockets, then runs the
//! syntax and consistency pass over every `.mq4`, `.mq5` and `.mqh`.

use std::path::PathBuf;
use std::process::Command;

fn run_make(target: &str) {
    let host = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mql/host");
    let output = Command::new("make")
        .arg("-C")
        .arg(&host)
        .arg("-j2")
        .arg(target)
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

#[test]
fn ea_logic_unit_tests_and_syntax_pass() {
    // Shows: the EAs' WebSocket, JSON, session, outbox, Monitor and Executor
    // logic pass their host tests, and every MQL source passes the syntax pass.
    // One test, run in sequence, because both steps build into mql/host/build.
    run_make("test");
    run_make("check");
}
