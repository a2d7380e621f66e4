//! The bridge under test as a child process: finding its binary, starting
//! it on free ports with a temporary journal, waiting until it accepts
//! connections, watching its CPU and memory, stopping it with SIGTERM and
//! checking how it exited; and scraping its `/metrics`.
//!
//! # Layout
//! - [`BridgeKind`]: tradebridge or the baseline bridge, their command
//!   lines and binary names.
//! - [`default_binary`], [`free_address`], [`TempDir`].
//! - [`Spawned`]: a running bridge; [`Spawned::stop`] gives [`StopOutcome`].
//! - [`scrape_metrics`] and [`parse_metrics`]: `GET /metrics` over a plain
//!   TCP stream and its Prometheus text as JSON.
//!
//! # Invariants
//! - A started bridge is never left behind: dropping [`Spawned`] kills a
//!   process still running, and [`TempDir`] removes its directory.
//! - Every wait is bounded ([`READY_TIMEOUT`], [`STOP_TIMEOUT`],
//!   [`METRICS_TIMEOUT`]); a timeout's error carries the bridge's last
//!   lines of standard error.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::procfs;

/// Longest wait for a started bridge to accept a TCP connection: it
/// preallocates a 64 MiB journal segment first, slow on a virtual disk.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest wait for the bridge to exit after SIGTERM: its own drain is
/// bounded by 5 s, plus the journal flush.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest wait for the metrics endpoint to answer.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(3);

/// Lines of the bridge's standard output and error kept for reports and
/// error messages.
pub const OUTPUT_TAIL_LINES_MAX: usize = 40;

/// Which bridge a run loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeKind {
    /// `tradebridge serve --config FILE` (crate tradebridge-net).
    Tradebridge,
    /// `loadtest-baseline --config FILE`: tokio, one task per connection,
    /// a mutex-guarded routing map; the comparison point.
    Baseline,
}

impl BridgeKind {
    /// File name of the binary.
    pub fn binary_name(self) -> &'static str {
        match self {
            BridgeKind::Tradebridge => "tradebridge",
            BridgeKind::Baseline => "loadtest-baseline",
        }
    }

    /// How to build the binary, for the error when it is missing.
    pub fn build_command(self) -> &'static str {
        match self {
            BridgeKind::Tradebridge => "cargo build --release -p tradebridge-net",
            BridgeKind::Baseline => "cargo build --release -p tradebridge-loadtest --bin loadtest-baseline",
        }
    }

    /// Name in reports.
    pub fn name(self) -> &'static str {
        self.binary_name()
    }

    fn arguments(self, config: &Path) -> Vec<OsString> {
        match self {
            BridgeKind::Tradebridge => vec!["serve".into(), "--config".into(), config.into()],
            BridgeKind::Baseline => vec!["--config".into(), config.into()],
        }
    }
}

/// The binary of `kind` next to the running `loadtest` executable
/// (target/release or target/debug), or an error saying how to build it.
pub fn default_binary(kind: BridgeKind) -> anyhow::Result<PathBuf> {
    let executable = std::env::current_exe().context("locating the running loadtest executable")?;
    let directory = executable.parent().ok_or_else(|| anyhow!("{} has no parent directory", executable.display()))?;
    let binary = directory.join(kind.binary_name());
    if !binary.is_file() {
        bail!("no {} binary at {}: build it with `{}`, or pass --bridge-bin PATH", kind.binary_name(), binary.display(), kind.build_command());
    }
    Ok(binary)
}

/// A loopback address with a port that was free a moment ago (bound to
/// port 0, read back, released).
pub fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?)
}

/// A directory removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(label: &str) -> anyhow::Result<TempDir> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let number = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("loadtest-{label}-{}-{number}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The last lines a stream printed.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running bridge process.
pub struct Spawned {
    pub kind: BridgeKind,
    pub binary: PathBuf,
    /// The child; `None` once it was waited for.
    child: Option<Child>,
    pub pid: u32,
    /// Where it accepts EA connections.
    pub address: SocketAddr,
    /// Its metrics endpoint, when configured.
    pub metrics: Option<SocketAddr>,
    stdout_tail: Tail,
    stderr_tail: Tail,
}

/// How a stopped bridge ended.
#[derive(Clone, Debug, Serialize)]
pub struct StopOutcome {
    /// Exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// From SIGTERM to its exit.
    pub stop_ms: u64,
    /// True when it did not exit within STOP_TIMEOUT and was killed.
    pub killed: bool,
    /// Its last lines of standard error.
    pub stderr_tail: Vec<String>,
}

impl StopOutcome {
    /// True for the graceful exit: code 0 after SIGTERM.
    pub fn is_clean(&self) -> bool {
        self.exit_code == Some(0) && !self.killed
    }
}

impl Spawned {
    /// Starts `binary` as a `kind` bridge on `config` (which must listen on
    /// `address`) and waits until `address` accepts a connection.
    pub fn start(kind: BridgeKind, binary: &Path, config: &Path, address: SocketAddr, metrics: Option<SocketAddr>, extra_arguments: &[String]) -> anyhow::Result<Spawned> {
        let mut child = Command::new(binary)
            .args(kind.arguments(config))
            .args(extra_arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout_tail = keep_tail(child.stdout.take().expect("piped stdout"));
        let stderr_tail = keep_tail(child.stderr.take().expect("piped stderr"));
        let pid = child.id();
        let mut spawned = Spawned { kind, binary: binary.to_path_buf(), child: Some(child), pid, address, metrics, stdout_tail, stderr_tail };
        spawned.wait_ready()?;
        Ok(spawned)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait()? {
                bail!("{} exited with {status} before accepting connections; its standard error ended with:\n{}", self.binary.display(), self.stderr_text());
            }
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not accept connections on {} within {} s; its standard error ended with:\n{}", self.binary.display(), self.address, READY_TIMEOUT.as_secs(), self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// CPU seconds (user + system) the bridge has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        procfs::cpu_seconds(&self.pid.to_string())
    }

    /// Its resident memory now and at peak.
    pub fn memory(&self) -> anyhow::Result<procfs::Memory> {
        procfs::memory(&self.pid.to_string())
    }

    /// Its last lines of standard error, one string.
    pub fn stderr_text(&self) -> String {
        lock(&self.stderr_tail).iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Its last lines of standard output.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout_tail).iter().cloned().collect()
    }

    /// Sends SIGTERM, waits for the exit (killing it after STOP_TIMEOUT),
    /// and says how it ended.
    pub fn stop(mut self) -> StopOutcome {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        // SAFETY: kill only sends a signal to our own child's pid.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < STOP_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) | Err(_) => {
                    killed = true;
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        use std::os::unix::process::ExitStatusExt;
        // Let the output readers take the last lines.
        std::thread::sleep(Duration::from_millis(50));
        StopOutcome {
            exit_code: status.and_then(|status| status.code()),
            signal: status.and_then(|status| status.signal()),
            stop_ms: started.elapsed().as_millis() as u64,
            killed,
            stderr_tail: lock(&self.stderr_tail).iter().cloned().collect(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn lock(tail: &Tail) -> std::sync::MutexGuard<'_, VecDeque<String>> {
    tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads a child's stream on a thread, keeping its last lines.
fn keep_tail(stream: impl Read + Send + 'static) -> Tail {
    let tail: Tail = Arc::new(Mutex::new(VecDeque::with_capacity(OUTPUT_TAIL_LINES_MAX)));
    let writer = Arc::clone(&tail);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            let mut tail = lock(&writer);
            if tail.len() == OUTPUT_TAIL_LINES_MAX {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
    tail
}

/// `line` without ANSI escape sequences (the bridge colours its log lines
/// when it thinks it writes to a terminal).
pub fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        if character == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            if characters.next() == Some('[') {
                for next in characters.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(character);
    }
    plain
}

/// The body of `GET /metrics` at `address`.
pub fn scrape_metrics(address: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, METRICS_TIMEOUT).with_context(|| format!("connecting to the metrics endpoint {address}"))?;
    stream.set_read_timeout(Some(METRICS_TIMEOUT))?;
    stream.set_write_timeout(Some(METRICS_TIMEOUT))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response).with_context(|| format!("reading the metrics of {address}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| anyhow!("metrics of {address}: no blank line after the headers"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("metrics of {address}: status line {status:?}, expected 200");
    }
    Ok(body.to_string())
}

/// Prometheus text as JSON: `latency_us` maps stage -> quantile -> value
/// in microseconds for every `tradebridge_latency_seconds{stage,quantile}`
/// line (the bridge's unit since its metrics follow Prometheus base units;
/// `tradebridge_latency_us` of older bridges is read as it is), so reports
/// before and after that change compare; `values` maps every other series
/// (labels included in the key) to its value.
pub fn parse_metrics(text: &str) -> Value {
    let mut latency = Map::new();
    let mut values = Map::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let labels = series.split_once('{').map(|(name, rest)| (name, rest.trim_end_matches('}')));
        let to_microseconds = match labels {
            Some(("tradebridge_latency_seconds", _)) => Some(1e6),
            Some(("tradebridge_latency_us", _)) => Some(1.0),
            _ => None,
        };
        if let (Some(factor), Some((_, labels))) = (to_microseconds, labels) {
            let label = |wanted: &str| labels.split(',').find_map(|pair| pair.split_once('=').filter(|(key, _)| *key == wanted).map(|(_, value)| value.trim_matches('"').to_string()));
            if let (Some(stage), Some(quantile)) = (label("stage"), label("quantile")) {
                let stage = latency.entry(stage).or_insert_with(|| json!({}));
                stage[quantile] = json!((value * factor * 1000.0).round() / 1000.0);
                continue;
            }
        }
        values.insert(series.to_string(), json!(value));
    }
    json!({ "latency_us": latency, "values": values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_stripped_from_log_lines() {
        // Shows: the colour codes tracing writes around fields disappear, the text stays.
        assert_eq!(strip_ansi("\u{1b}[2mtime\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m listening"), "time  INFO listening");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn metrics_text_is_grouped_by_stage_and_quantile() {
        // Shows: latency lines become latency_us[stage][quantile], counters and other labelled series are kept under values, comments are skipped.
        let text = "# HELP x y\n# TYPE tradebridge_events_journaled_total counter\ntradebridge_events_journaled_total 42\n\
            tradebridge_latency_us{stage=\"event_to_copy_sent\",quantile=\"0.99\"} 512\n\
            tradebridge_latency_us{stage=\"event_to_copy_sent\",quantile=\"0.5\"} 300\n\
            tradebridge_latency_us_count{stage=\"event_to_copy_sent\"} 9\n";
        let parsed = parse_metrics(text);
        assert_eq!(parsed["latency_us"]["event_to_copy_sent"]["0.99"], json!(512.0));
        assert_eq!(parsed["latency_us"]["event_to_copy_sent"]["0.5"], json!(300.0));
        assert_eq!(parsed["values"]["tradebridge_events_journaled_total"], json!(42.0));
        assert_eq!(parsed["values"]["tradebridge_latency_us_count{stage=\"event_to_copy_sent\"}"], json!(9.0));
    }

    #[test]
    fn latency_in_seconds_is_reported_in_microseconds() {
        // Shows: the bridge's tradebridge_latency_seconds quantiles land in latency_us as microseconds, so old and new reports compare.
        let text = "tradebridge_latency_seconds{stage=\"event_to_durable\",quantile=\"0.99\"} 0.000512\n\
            tradebridge_latency_seconds_count{stage=\"event_to_durable\"} 9\n";
        let parsed = parse_metrics(text);
        assert_eq!(parsed["latency_us"]["event_to_durable"]["0.99"], json!(512.0));
        assert_eq!(parsed["values"]["tradebridge_latency_seconds_count{stage=\"event_to_durable\"}"], json!(9.0));
    }
}
