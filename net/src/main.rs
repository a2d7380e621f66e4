//! The `tradebridge` binary:
//! - `tradebridge serve --config FILE` loads and validates the
//!   configuration (an error names its line and key, exit code 2), starts
//!   the shards and serves until SIGTERM or SIGINT;
//! - `tradebridge migrate --config FILE` applies the pending Postgres
//!   migrations of the database `[persist]` names (exit 1 when it cannot);
//! - `--help` and `--version` exit 0.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tradebridge_core::config::Config;
use tradebridge_net::metrics;
use tradebridge_net::router::{self, Router};
use tradebridge_net::shard::{self, Shared};

/// Exit code for a usage or configuration error, as for most Unix tools.
const EXIT_USAGE: u8 = 2;

/// Exit code after a panic on any thread (EX_SOFTWARE).
const EXIT_PANIC: i32 = 70;

/// A self-hosted, real-time trade copier for MetaTrader 4 and 5.
#[derive(Parser, Debug)]
#[command(name = "tradebridge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve EA connections: route every master trade to its followers.
    Serve {
        /// The configuration file (core/CONFIG.md).
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// Apply the pending Postgres migrations of the database [persist] names.
    Migrate {
        /// The configuration file; its [persist] table names the database.
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// Make the running bridge apply its configuration file again, live:
    /// validate FILE as at start, signal the bridge (SIGHUP) whose journal
    /// directory FILE names, and print what it did. Exit 0 applied or
    /// unchanged, 2 invalid file, 1 refused or no running bridge.
    Reload {
        /// The running bridge's configuration file.
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// Work with a configuration file without starting anything.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the file exactly as `serve` does at start: exit 0 (with a
    /// summary and any warnings) or 2 (with the line and key at fault).
    Check {
        /// The configuration file (core/CONFIG.md).
        #[arg(long, value_name = "FILE")]
        config: String,
    },
}

fn main() -> ExitCode {
    exit_on_panic();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version print and exit 0; a usage error exits 2.
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let (Command::Serve { config: config_path }
    | Command::Migrate { config: config_path }
    | Command::Reload { config: config_path }
    | Command::Config { command: ConfigCommand::Check { config: config_path } }) = &cli.command;
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tradebridge: configuration {config_path}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Command::Config { command: ConfigCommand::Check { .. } } = &cli.command {
        return config_check(config_path, &config);
    }
    if let Command::Reload { .. } = &cli.command {
        return reload(config_path, &config);
    }
    init_logging(config.server.log_json);
    let outcome = match cli.command {
        Command::Serve { config: path } => serve(config, std::path::PathBuf::from(path)),
        Command::Migrate { .. } => migrate(&config),
        Command::Config { .. } | Command::Reload { .. } => unreachable!("these commands return above"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tradebridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tradebridge config check`: the file loaded and validated (what `serve`
/// would start with); its warnings on standard error, a summary on
/// standard output.
fn config_check(path: &str, config: &Config) -> ExitCode {
    for warning in &config.warnings {
        eprintln!("tradebridge: configuration {path}: warning: {warning}");
    }
    let masters = config.accounts.iter().filter(|account| account.role == tradebridge_core::protocol::Role::Master).count();
    println!(
        "tradebridge config check: {path} is valid: {} accounts ({masters} masters, {} slaves), {} follows, {} warnings, [persist] {}",
        config.accounts.len(),
        config.accounts.len() - masters,
        config.follows.len(),
        config.warnings.len(),
        if config.persist.is_some() { "set" } else { "not set (journal only)" }
    );
    ExitCode::SUCCESS
}

/// Longest wait of `tradebridge reload` for the bridge's answer.
const RELOAD_WAIT: Duration = Duration::from_secs(15);

/// `tradebridge reload`: signals the bridge of the file's journal
/// directory and waits for the outcome it writes there.
fn reload(path: &str, config: &Config) -> ExitCode {
    use tradebridge_net::reload::{read_status, ReloadOutcome, PID_FILE};
    let journal_dir = &config.server.journal_dir;
    let pid_path = journal_dir.join(PID_FILE);
    let pid: i32 = match std::fs::read_to_string(&pid_path).ok().and_then(|text| text.trim().parse().ok()) {
        Some(pid) => pid,
        None => {
            eprintln!("tradebridge reload: no running bridge for {path}: {} is missing or unreadable", pid_path.display());
            return ExitCode::FAILURE;
        }
    };
    let before = read_status(journal_dir).map(|status| (status.pid, status.reload));
    // SAFETY: kill sends a signal to the process id read from the pid file.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        eprintln!("tradebridge reload: cannot signal process {pid} (from {}): {}", pid_path.display(), std::io::Error::last_os_error());
        return ExitCode::FAILURE;
    }
    let deadline = Instant::now() + RELOAD_WAIT;
    while Instant::now() < deadline {
        if let Some(status) = read_status(journal_dir) {
            if status.pid == pid as u32 && Some((status.pid, status.reload)) != before {
                let text = serde_json::to_string(&status.outcome).unwrap_or_default();
                return match &status.outcome {
                    outcome if outcome.is_success() => {
                        println!("tradebridge reload: {text}");
                        ExitCode::SUCCESS
                    }
                    ReloadOutcome::Invalid { error } => {
                        eprintln!("tradebridge reload: the bridge found {} invalid: {error}", status.file);
                        ExitCode::from(EXIT_USAGE)
                    }
                    _ => {
                        eprintln!("tradebridge reload: {text}");
                        ExitCode::FAILURE
                    }
                };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("tradebridge reload: process {pid} did not report within {} s (see its log)", RELOAD_WAIT.as_secs());
    ExitCode::FAILURE
}

/// `tradebridge migrate`: connects with `[persist]`, applies what is
/// pending, prints what it did.
fn migrate(config: &Config) -> anyhow::Result<()> {
    let Some(persist) = &config.persist else {
        anyhow::bail!("the configuration has no [persist] table, so there is no database to migrate (core/CONFIG.md, [persist])");
    };
    let target = tradebridge_persist::db::Target::from_config(persist)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let mut client = target.connect().await?;
        tradebridge_persist::migrate::migrate(&mut client, tradebridge_persist::migrate::MIGRATIONS).await
    })?;
    println!("tradebridge migrate: {report}");
    tracing::info!(%report, "migrations");
    Ok(())
}

/// A panic on any thread ends the process: a router or shard thread that
/// died would otherwise leave a bridge that still welcomes EAs but never
/// acks or copies. The supervisor restarts it, and recovery rebuilds
/// everything from the journal.
fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("tradebridge: a thread panicked; exiting (code {EXIT_PANIC}) so the bridge restarts on its journal");
        std::process::exit(EXIT_PANIC);
    }));
}

/// Logs go to standard error, as text or one JSON object per line.
fn init_logging(json: bool) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::INFO);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Binds the metrics endpoint and serves it on its own thread; announces
/// the bound address on standard output.
fn start_metrics(address: std::net::SocketAddr, shared: &Arc<Shared>) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(address).map_err(|error| anyhow::anyhow!("server.metrics_listen = {address}: {error}"))?;
    let bound = listener.local_addr()?;
    let render_shared = Arc::clone(shared);
    let render: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(move || render_shared.metrics.render(render_shared.connections_open()));
    std::thread::Builder::new().name("metrics".into()).spawn(move || metrics::serve(listener, render))?;
    println!("tradebridge metrics on http://{bound}/metrics");
    tracing::info!(address = %bound, "metrics listening");
    Ok(())
}

/// File descriptors the bridge needs besides its EA connections: journal
/// segments, listeners, io_uring rings, the metrics endpoint, logs.
const FILES_RESERVED: u64 = 256;

/// Raises the soft open-files limit towards the hard one, as far as
/// `connections_max` needs; a limit still too low is logged, not fatal (the
/// shards then refuse connections with a warning when `accept` fails).
fn raise_open_files_limit(connections_max: u32) {
    let wanted = u64::from(connections_max) + FILES_RESERVED;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-files limit");
        return;
    }
    if limit.rlim_cur >= wanted {
        return;
    }
    let raised = libc::rlimit { rlim_cur: wanted.min(limit.rlim_max), rlim_max: limit.rlim_max };
    // SAFETY: setrlimit reads one rlimit struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise the open-files limit");
        return;
    }
    if raised.rlim_cur < wanted {
        tracing::warn!(
            open_files_max = raised.rlim_cur,
            connections_max,
            "the hard open-files limit is below connections_max plus {FILES_RESERVED}; raise it (ulimit -Hn, LimitNOFILE=) to reach connections_max"
        );
    }
}

/// Gives the heap freed by start-up (the configuration's TOML tree, the
/// journal replay's buffers) back to the system, so a bridge with many
/// accounts does not keep it resident for its whole life.
fn release_startup_heap() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel; it
    // has no preconditions and touches no live allocation.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(released = released != 0, "start-up heap trimmed");
}

/// Longest wait, after SIGTERM or SIGINT, for the sessions to close before
/// the journal is flushed and the process exits; a peer that does not answer
/// its close frame is dropped after `CLOSE_DRAIN_MS` anyway.
const SHUTDOWN_DRAIN_MS_MAX: u64 = 5_000;

/// Longest wait at shutdown for the persister to write what is durable; what
/// it leaves is written by the next start (the journal keeps it).
const PERSIST_STOP_MS_MAX: u64 = 2_000;

/// Starts the router and the shards, announces the address on standard
/// output (tests and scripts wait for this line), serves until SIGTERM or
/// SIGINT, then drains: sessions close with 1001, the journal is flushed.
fn serve(config: Config, config_path: std::path::PathBuf) -> anyhow::Result<()> {
    raise_open_files_limit(config.server.connections_max);
    // Checked before anything opens, so a missing or bad database_url is an
    // exit at start, not a persister that retries forever.
    let persist_target = match &config.persist {
        Some(persist) => Some(tradebridge_persist::db::Target::from_config(persist)?),
        None => None,
    };
    let journal = router::open_journal(&config)?;
    let shared = Arc::new(Shared::new(config));
    let (router_links, shard_links) = router::links(shard::shard_count(&shared.config), shared.config.server.ring_bytes)?;
    let mut router = Router::new(
        journal,
        router_links,
        Arc::clone(&shared.accounts),
        &shared.config,
        shared.started,
        Arc::clone(&shared.metrics),
    )?;
    let persister = match (persist_target, &shared.config.persist) {
        (Some(target), Some(persist)) => {
            let feed = Arc::new(tradebridge_persist::feed::PersistFeed::default());
            router.attach_persister(Arc::clone(&feed))?;
            let _ = shared.metrics.persist.set(Arc::clone(&feed));
            let journal_dir = shared.config.server.journal_dir.clone();
            Some(tradebridge_persist::persister::start(persist.clone(), target, journal_dir, feed)?)
        }
        _ => None,
    };
    let config_inbox = router.config_inbox();
    release_startup_heap();
    let stop = Arc::new(AtomicBool::new(false));
    let router_stop = Arc::clone(&stop);
    let router_thread = std::thread::Builder::new().name("router".into()).spawn(move || {
        if let Err(error) = router.run(router_stop) {
            // Without the router nothing more can be acked; exiting makes
            // the EAs reconnect to a restarted bridge that recovers the journal.
            tracing::error!("router stopped: {error:#}");
            eprintln!("tradebridge: router stopped: {error:#}");
            std::process::exit(1);
        }
    })?;
    // Registered before the address is announced, so a signal sent as soon
    // as the bridge is up is never handled by the default action.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let journal_dir = shared.config.server.journal_dir.clone();
    let pid_file = tradebridge_net::reload::PidFile::create(&journal_dir).with_context(|| format!("writing the pid file in {}", journal_dir.display()))?;
    let shards = shard::start(Arc::clone(&shared), shard_links)?;
    println!("tradebridge listening on ws://{}/ea", shards.local_address);
    tracing::info!(address = %shards.local_address, "listening");
    if let Some(address) = shared.config.server.metrics_listen {
        start_metrics(address, &shared)?;
    }
    let mut signal = None;
    for received in signals.forever() {
        if received == SIGHUP {
            // Re-read and validate the file as at start; the router applies
            // the difference between two inputs.
            tradebridge_net::reload::reload_file(&config_path, &journal_dir, &config_inbox);
            continue;
        }
        signal = Some(received);
        break;
    }
    tracing::info!(?signal, connections = shared.connections_open(), "shutting down");
    shared.begin_shutdown();
    let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS_MAX);
    while shared.connections_open() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Release);
    router_thread.join().map_err(|_| anyhow::anyhow!("the router thread panicked"))?;
    tracing::info!(connections = shared.connections_open(), "stopped");
    if let Some(persister) = persister {
        persister.stop(Duration::from_millis(PERSIST_STOP_MS_MAX));
    }
    let histograms_dir = &shared.config.server.histograms_dir;
    match shared.metrics.write_hgrm(histograms_dir) {
        Ok(paths) => tracing::info!(directory = %histograms_dir.display(), files = paths.len(), "latency histograms written"),
        Err(error) => tracing::error!(directory = %histograms_dir.display(), %error, "cannot write the latency histograms"),
    }
    // exit skips destructors: the pid file goes first.
    drop(pid_file);
    // The shard threads park in their accept loops; exiting ends them.
    std::process::exit(0);
}
