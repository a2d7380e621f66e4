//! Test support for the harness's integration tests: the `loadtest` and
//! `tradebridge` binaries, bounded runs, temporary folders, summaries.
//!
//! # Invariants
//! - Every child process is waited for with a deadline and killed past it,
//!   so a hung run fails its test instead of hanging the suite.
//! - Temporary folders are unique per process and call.

#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest a harness run may take in a test: the runs are a few seconds,
/// plus start-up, drain and a debug build on a loaded 2-core machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The `loadtest` binary under test.
pub fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
}

/// The `tradebridge` binary: beside `loadtest` when the whole workspace
/// was built (cargo nextest run --workspace); otherwise built once here.
pub fn tradebridge_binary() -> PathBuf {
    sibling_binary("tradebridge", &["build", "-p", "tradebridge-net", "--bin", "tradebridge"])
}

/// A binary of this workspace beside `loadtest`, built with `build_arguments`
/// (same profile) when it is missing.
pub fn sibling_binary(name: &str, build_arguments: &[&str]) -> PathBuf {
    static BUILD_LOCK: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let directory = Path::new(env!("CARGO_BIN_EXE_loadtest")).parent().expect("target directory").to_path_buf();
    let binary = directory.join(name);
    let _guard = BUILD_LOCK.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(build_arguments);
        if directory.ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "building {name} failed");
    }
    assert!(binary.is_file(), "{} still missing after the build", binary.display());
    binary
}

/// What a finished run printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end (killing it after RUN_TIMEOUT).
pub fn run(command: &mut Command) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let status = wait(&mut child, RUN_TIMEOUT);
    Output { status, stdout: stdout.join().expect("stdout reader"), stderr: stderr.join().expect("stderr reader") }
}

fn drain(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

fn wait(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not finish within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh, empty temporary directory.
pub fn temp_directory(label: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let directory = std::env::temp_dir().join(format!("loadtest-test-{label}-{}-{number}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("temp directory");
    directory
}

/// The only run folder in `out_dir` and its summary.json.
pub fn read_summary(out_dir: &Path) -> (PathBuf, serde_json::Value) {
    let folders: Vec<PathBuf> = std::fs::read_dir(out_dir).expect("out dir").flatten().map(|entry| entry.path()).filter(|path| path.is_dir()).collect();
    assert_eq!(folders.len(), 1, "one run folder in {}: {folders:?}", out_dir.display());
    let text = std::fs::read_to_string(folders[0].join("summary.json")).expect("summary.json");
    (folders[0].clone(), serde_json::from_str(&text).expect("summary.json is JSON"))
}

/// A loopback address whose port was free a moment ago.
pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address")
}

/// A tradebridge started by the test itself (not by the harness).
pub struct Bridge {
    child: Child,
}

impl Bridge {
    /// Starts `tradebridge serve --config CONFIG` and waits until `listen`
    /// accepts connections.
    pub fn start(config: &Path, listen: SocketAddr) -> Bridge {
        let child = Command::new(tradebridge_binary()).arg("serve").arg("--config").arg(config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start tradebridge");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "tradebridge did not listen on {listen}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bridge { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait.
    pub fn stop(&mut self) {
        // SAFETY: kill only signals our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = wait(&mut self.child, Duration::from_secs(20));
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
