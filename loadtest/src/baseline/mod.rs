//! The baseline bridge: the trade copier "as most Rust services would be
//! written", run by the harness beside tradebridge so that the ratios show
//! what tradebridge's design buys. It is also the deliberately broken
//! bridge that proves the harness notices a lost, a duplicated or a
//! wrongly sized copy (`--fault`).
//!
//! # Why it is a fair baseline
//! It is the idiomatic design, written with care: the tokio multi-thread
//! runtime, tokio-tungstenite, a task per connection plus its writer task
//! fed by a bounded mpsc channel (with write coalescing), one
//! `Mutex<Hub>` holding the routing map from login to connection and the
//! per-account state, the same protocol codec as tradebridge
//! (`tradebridge_core::protocol`), and the same configuration file. It
//! speaks the protocol subset below exactly, so the same simulated EAs
//! drive both, and it is built in release mode like tradebridge.
//!
//! # What it deliberately does not do
//! - **No durability.** There is no journal: an event is acked as soon as
//!   it is routed, `welcome.ack_seq` is the highest `seq` held in memory,
//!   and a restart forgets everything (a crash loses copies not yet sent).
//!   tradebridge acks only once the event is journaled; the comparison
//!   counts this in the baseline's favour.
//! - **No copy engine rules.** Only the `multiplier` and `fixed` lot rules,
//!   normalised down to the slave's step, minimum and maximum (step and
//!   minimum 0.01 until the slave sends the symbol). No symbol mapping,
//!   filters, reverse, trading hours, risk limits, `max_dev` (always 0) or
//!   contract-size ratios: a configuration setting any of them is refused
//!   at start-up (see `support`), never silently ignored.
//! - **No machinery of tradebridge's own.** `shards`, `ring_bytes`, the
//!   `journal_*` keys, `idle` and `metrics_listen` are read and not used:
//!   `--threads` sizes the runtime, and there is no metrics endpoint. Past
//!   `connections_max`, a new TCP connection is dropped unanswered.
//! - **No reconciliation.** A master `snapshot` is accepted and ignored; a
//!   slave `state` is used only for its symbol specifications; `result`s
//!   are counted and release retained copies, nothing more.
//!
//! # Layout
//! - [`Options`] and [`Faults`]: the command line.
//! - `support`: refusal of configuration settings it does not implement.
//! - `hub`: the mutex-guarded routing state, sizing and fault injection.
//! - `connection`: one connection's session, reader and writer tasks.
//! - [`serve`]: the runtime, the listener, signals and shutdown.
//!
//! # Invariants
//! - Faults are counted over every copy routed, in a fixed order (events in
//!   arrival order, followers in slave-login order), so a test can predict
//!   exactly which copies misbehave.
//! - Standard output carries one line, `listening on <addr>`; everything
//!   else goes to standard error.

mod connection;
pub mod hub;
pub mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tradebridge_core::config::Config;
use tradebridge_core::protocol::Role;

use hub::Hub;

/// Close codes of PROTOCOL.md and RFC 6455.
pub use tradebridge_core::protocol::close_code;

/// Longest wait, after SIGTERM or SIGINT, for the connections to close; a
/// peer that does not answer its close frame is dropped sooner anyway.
const SHUTDOWN_DRAIN_MS_MAX: u64 = 5_000;

/// Deliberate misbehaviour, each counted over every copy routed (from 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every Nth copy is neither sent nor retained: a lost copy.
    pub lose_every: Option<u64>,
    /// Every Nth copy is sent twice, the second with the next `seq`.
    pub duplicate_every: Option<u64>,
    /// Every Nth copy carries twice its volume.
    pub volume_every: Option<u64>,
}

impl Faults {
    /// Adds one `KIND=N` of `--fault`.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let expected = "expected lose-every=N, duplicate-every=N or volume-every=N with N at least 1";
        let (kind, number) = text.split_once('=').ok_or_else(|| format!("--fault {text:?}: {expected}"))?;
        let every = number.parse::<u64>().ok().filter(|every| *every >= 1).ok_or_else(|| format!("--fault {text:?}: {expected}"))?;
        let slot = match kind {
            "lose-every" => &mut self.lose_every,
            "duplicate-every" => &mut self.duplicate_every,
            "volume-every" => &mut self.volume_every,
            _ => return Err(format!("--fault {text:?}: {expected}")),
        };
        *slot = Some(every);
        Ok(())
    }

    /// The active faults as written on the command line, or "none".
    pub fn describe(&self) -> String {
        let named = [("lose-every", self.lose_every), ("duplicate-every", self.duplicate_every), ("volume-every", self.volume_every)];
        let active: Vec<String> = named.iter().filter_map(|(kind, every)| every.map(|every| format!("{kind}={every}"))).collect();
        if active.is_empty() {
            "none".to_string()
        } else {
            active.join(", ")
        }
    }
}

/// The command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The tradebridge configuration file.
    pub config_path: PathBuf,
    /// Runtime worker threads; `None` is one per core.
    pub threads: Option<usize>,
    /// Deliberate misbehaviour.
    pub faults: Faults,
}

/// How to call the binary.
pub const USAGE: &str = "usage: loadtest-baseline --config FILE [--threads N] [--fault lose-every=N|duplicate-every=N|volume-every=N]...";

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(arguments: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut arguments = arguments.into_iter();
        let (mut config_path, mut threads, mut faults) = (None, None, Faults::default());
        while let Some(flag) = arguments.next() {
            let value = arguments.next().ok_or_else(|| format!("{flag}: expected a value after it"))?;
            match flag.as_str() {
                "--config" => config_path = Some(PathBuf::from(value)),
                "--threads" => {
                    let count = value.parse::<usize>().ok().filter(|count| (1..=1024).contains(count));
                    threads = Some(count.ok_or_else(|| format!("--threads {value:?}: expected a thread count from 1 to 1024"))?);
                }
                "--fault" => faults.add(&value)?,
                _ => return Err(format!("{flag:?}: expected --config, --threads or --fault")),
            }
        }
        let config_path = config_path.ok_or("--config: expected the configuration file")?;
        Ok(Options { config_path, threads, faults })
    }
}

/// One configured account as the sessions see it.
#[derive(Debug)]
pub struct Account {
    /// The account's login; fixed.
    pub login: u64,
    /// The broker server name `hello` must carry; fixed.
    pub server: String,
    /// The role `hello` must claim; fixed.
    pub role: Role,
    /// SHA-256 of the API key; fixed.
    pub key_sha256: [u8; 32],
    /// Frames the account may still send: (tokens, last refill); shared by
    /// its successive connections so a reconnect does not refill it.
    bucket: Mutex<(f64, Instant)>,
    /// `server.rate_limit_per_second`; fixed.
    rate_per_second: f64,
    /// `server.rate_limit_burst`, the bucket size; fixed.
    burst: f64,
}

impl Account {
    /// Takes one frame's token; false when the account is over its limit.
    fn take_token(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let refill = now.saturating_duration_since(bucket.1).as_secs_f64() * self.rate_per_second;
        *bucket = ((bucket.0 + refill).min(self.burst), now);
        if bucket.0 < 1.0 {
            return false;
        }
        bucket.0 -= 1.0;
        true
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The accepted configuration; fixed.
    pub config: Config,
    /// Every configured account, by login; fixed.
    pub accounts: HashMap<u64, Account>,
    /// The routing state, behind the one mutex.
    hub: Mutex<Hub>,
    /// Source of connection ids; only grows.
    next_connection_id: AtomicU64,
    /// Connections open, before or after `welcome`.
    connections_open: AtomicUsize,
    /// Slave `result`s received.
    results_total: AtomicU64,
}

impl Shared {
    /// The state for an accepted configuration.
    pub fn new(config: Config, faults: Faults) -> Shared {
        let server = &config.server;
        let now = Instant::now();
        let accounts = config
            .accounts
            .iter()
            .map(|account| {
                let entry = Account {
                    login: account.login,
                    server: account.server.clone(),
                    role: account.role,
                    key_sha256: account.key_sha256,
                    bucket: Mutex::new((f64::from(server.rate_limit_burst), now)),
                    rate_per_second: f64::from(server.rate_limit_per_second),
                    burst: f64::from(server.rate_limit_burst),
                };
                (account.login, entry)
            })
            .collect();
        let hub = Mutex::new(Hub::new(&config, faults));
        Shared { config, accounts, hub, next_connection_id: AtomicU64::new(1), connections_open: AtomicUsize::new(0), results_total: AtomicU64::new(0) }
    }

    /// Locks the routing state. A panic while it was held is a bug that
    /// already ended one connection; the others go on with the state as left.
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Wall-clock milliseconds since the Unix epoch (for `expires_ms`).
fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Counts an open connection for as long as it lives.
struct ConnectionCount(Arc<Shared>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs the baseline until SIGTERM or SIGINT: builds the runtime, binds,
/// prints `listening on <addr>`, serves, then closes every connection with
/// 1001 and returns.
pub fn serve(config: Config, options: &Options) -> std::io::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    let shared = Arc::new(Shared::new(config, options.faults));
    runtime.block_on(serve_until_signal(Arc::clone(&shared)))?;
    let results_total = shared.results_total.load(Ordering::Relaxed);
    eprintln!("loadtest-baseline: stopped; {:?}, results received {results_total}", shared.hub().counters);
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn serve_until_signal(shared: Arc<Shared>) -> std::io::Result<()> {
    let server = &shared.config.server;
    // Registered before the address is announced, so a signal sent as soon
    // as the line appears is never handled by the default action.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind(server.listen).await.map_err(|error| std::io::Error::new(error.kind(), format!("server.listen = {}: {error}", server.listen)))?;
    let address = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {address}")?;
    stdout.flush()?;
    drop(stdout);
    let (shutdown, shutdown_receiver) = watch::channel(false);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    eprintln!("loadtest-baseline: accept failed: {error}");
                    continue;
                }
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        if shared.connections_open.load(Ordering::Relaxed) >= server.connections_max as usize {
            continue; // Over connections_max: the stream is dropped unanswered.
        }
        let _ = stream.set_nodelay(true);
        shared.connections_open.fetch_add(1, Ordering::Relaxed);
        let count = ConnectionCount(Arc::clone(&shared));
        let receiver = shutdown_receiver.clone();
        tokio::spawn(async move {
            connection::serve_connection(stream, Arc::clone(&count.0), receiver).await;
            drop(count);
        });
    }
    drop(listener);
    shutdown.send_replace(true);
    let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS_MAX);
    while shared.connections_open.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Options, String> {
        Options::parse(words.iter().map(|word| word.to_string()))
    }

    // Flags combine, and a fault is counted from its N.
    #[test]
    fn options_parse_faults_and_threads() {
        let options = parse(&["--config", "a.toml", "--threads", "2", "--fault", "lose-every=3", "--fault", "volume-every=5"]).unwrap();
        assert_eq!(options.threads, Some(2));
        assert_eq!(options.faults, Faults { lose_every: Some(3), duplicate_every: None, volume_every: Some(5) });
        assert_eq!(options.faults.describe(), "lose-every=3, volume-every=5");
        assert_eq!(Faults::default().describe(), "none");
    }

    // Bad flags are refused with a message naming the flag and what was expected.
    #[test]
    fn options_refuse_bad_flags() {
        assert!(parse(&["--threads", "2"]).unwrap_err().contains("--config"));
        assert!(parse(&["--config", "a", "--fault", "lose-every=0"]).unwrap_err().contains("lose-every=N"));
        assert!(parse(&["--config", "a", "--fault", "drop=2"]).unwrap_err().contains("\"drop=2\""));
        assert!(parse(&["--config", "a", "--threads", "x"]).unwrap_err().contains("--threads"));
        assert!(parse(&["--config"]).unwrap_err().contains("expected a value"));
    }
}
