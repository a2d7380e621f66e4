//! `--reconfigure-every-ms`: while the load runs, the harness changes the
//! spawned tradebridge's follows live, as an operator would with
//! `tradebridge follow add/remove`: it rewrites the configuration file and
//! sends SIGHUP, then reads the outcome the bridge writes
//! (`reload-status.json`). Spare slave accounts (outside the measured
//! fleet, never connected) get one follow added and one removed per
//! change, so the fleet's own copies stay checkable while the engine, the
//! journal and the account table change under the load.
//!
//! # Invariants
//! - Each change waits for the bridge's outcome (at most
//!   [`OUTCOME_WAIT`]) before the next; one not applied is a failure.
//! - The file is replaced whole (temporary file, rename), never half written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Spare slave accounts the changes follow and unfollow.
pub const SPARE_SLAVES: u64 = 10;

/// First spare slave login (far from the generated fleet's).
pub const SPARE_LOGIN_FIRST: u64 = 9_900_001;

/// Longest wait for the bridge to report one change.
pub const OUTCOME_WAIT: Duration = Duration::from_secs(5);

/// `[[account]]` tables of the spare slaves (their key is never used).
pub fn spare_accounts_toml(server: &str) -> String {
    let mut text = String::from("\n# Spare slaves for --reconfigure-every-ms (never connected).\n");
    for index in 0..SPARE_SLAVES {
        text.push_str(&format!(
            "[[account]]\nlogin = {}\nserver = \"{server}\"\nrole = \"slave\"\nkey_sha256 = \"{}\"\n\n",
            SPARE_LOGIN_FIRST + index,
            "5".repeat(64)
        ));
    }
    text
}

/// The follow active at change `step`: spare `step % 10` copies master
/// `step % masters`; each change removes the previous step's and adds this.
fn follow_of(step: u64, masters: &[u64]) -> String {
    let slave = SPARE_LOGIN_FIRST + step % SPARE_SLAVES;
    let master = masters[(step % masters.len() as u64) as usize];
    format!("\n[[follow]]\nslave = {slave}\nmaster = {master}\n")
}

/// What the changes did.
#[derive(Debug, Default)]
pub struct ReconfigureRecord {
    pub every_ms: u64,
    pub changes: u64,
    pub applied: u64,
    /// Outcomes other than applied (or none within the wait), first few.
    pub failures: Vec<String>,
    pub failed: u64,
    /// Signal to reported outcome, per change.
    pub latencies_ms: Vec<f64>,
}

impl ReconfigureRecord {
    pub fn json(&self) -> Value {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |quantile: f64| sorted.get(((sorted.len() as f64 - 1.0) * quantile).round() as usize).copied();
        json!({
            "every_ms": self.every_ms,
            "changes": self.changes,
            "applied": self.applied,
            "failed": self.failed,
            "failures": self.failures,
            "apply_ms": { "p50": at(0.5), "p99": at(0.99), "max": sorted.last().copied() },
            "what": "each change: one spare slave's follow removed, another's added (tradebridge reload via SIGHUP)",
        })
    }

    pub fn headline(&self) -> String {
        let max = self.latencies_ms.iter().copied().fold(0.0, f64::max);
        format!("reconfigured {} times ({} applied, {} failed, apply max {max:.1} ms)", self.changes, self.applied, self.failed)
    }
}

/// The thread that changes the configuration.
pub struct Reconfigurer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<ReconfigureRecord>,
}

impl Reconfigurer {
    /// Starts changing `config_path` (whose text without the changing
    /// follow is `base`) every `every`, signalling `pid`.
    pub fn start(config_path: PathBuf, base: String, journal_dir: PathBuf, pid: u32, masters: Vec<u64>, every: Duration) -> anyhow::Result<Reconfigurer> {
        anyhow::ensure!(!masters.is_empty(), "--reconfigure-every-ms needs at least one master");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("reconfigure".into()).spawn(move || {
            let mut record = ReconfigureRecord { every_ms: every.as_millis() as u64, ..ReconfigureRecord::default() };
            let mut next = Instant::now() + every;
            let mut step = 0;
            while !stopping.load(Ordering::Acquire) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(50)));
                    continue;
                }
                next += every;
                step += 1;
                record.changes += 1;
                match change(&config_path, &base, &journal_dir, pid, &follow_of(step, &masters)) {
                    Ok(latency_ms) => {
                        record.applied += 1;
                        record.latencies_ms.push(latency_ms);
                    }
                    Err(failure) => {
                        record.failed += 1;
                        if record.failures.len() < 5 {
                            record.failures.push(failure);
                        }
                    }
                }
            }
            record
        })?;
        Ok(Reconfigurer { stop, thread })
    }

    pub fn stop(self) -> ReconfigureRecord {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

fn reload_count(journal_dir: &Path) -> Option<u64> {
    let text = std::fs::read(journal_dir.join("reload-status.json")).ok()?;
    serde_json::from_slice::<Value>(&text).ok()?.get("reload")?.as_u64()
}

/// One change: write, signal, wait for the outcome; its latency in ms.
fn change(config_path: &Path, base: &str, journal_dir: &Path, pid: u32, follow: &str) -> Result<f64, String> {
    let before = reload_count(journal_dir);
    let temporary = config_path.with_extension("toml.tmp");
    std::fs::write(&temporary, format!("{base}{follow}")).map_err(|error| format!("writing {}: {error}", temporary.display()))?;
    std::fs::rename(&temporary, config_path).map_err(|error| format!("renaming onto {}: {error}", config_path.display()))?;
    let started = Instant::now();
    // SAFETY: kill sends a signal to the spawned bridge's process id.
    if unsafe { libc::kill(pid as i32, libc::SIGHUP) } != 0 {
        return Err(format!("SIGHUP to {pid}: {}", std::io::Error::last_os_error()));
    }
    while started.elapsed() < OUTCOME_WAIT {
        if reload_count(journal_dir) != before {
            let status: Value = std::fs::read(journal_dir.join("reload-status.json")).ok().and_then(|text| serde_json::from_slice(&text).ok()).unwrap_or_default();
            let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
            return match status.get("outcome").and_then(Value::as_str) {
                Some("applied") => Ok(latency_ms),
                other => Err(format!("outcome {other:?}: {status}")),
            };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(format!("no outcome within {} s", OUTCOME_WAIT.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_moves_the_spare_follow_to_another_slave_and_master() {
        // Shows: consecutive steps name different spare slaves (so each change removes one follow and adds another) across the masters, and the spare accounts parse as slave accounts of the given server.
        let masters = [10, 20, 30];
        let follows: Vec<String> = (1..=4).map(|step| follow_of(step, &masters)).collect();
        assert!(follows[0].contains(&format!("slave = {}", SPARE_LOGIN_FIRST + 1)) && follows[0].contains("master = 20"));
        assert!(follows[1].contains(&format!("slave = {}", SPARE_LOGIN_FIRST + 2)) && follows[1].contains("master = 30"));
        assert!(follows.windows(2).all(|pair| pair[0] != pair[1]));
        let text = format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/x\"\n[[account]]\nlogin = 10\nserver = \"S\"\nrole = \"master\"\nkey_sha256 = \"{}\"\n{}{}", "1".repeat(64), spare_accounts_toml("S"), follows[0]);
        let config = tradebridge_core::config::Config::from_toml_str(&text).expect("valid");
        assert_eq!(config.accounts.len(), 1 + SPARE_SLAVES as usize);
        assert_eq!(config.follows.len(), 1);
    }
}
