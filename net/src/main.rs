//! The `tradebridge` binary:
//! - `tradebridge serve --config FILE` loads and validates the
//!   configuration (an error names its line and key, exit code 2), starts
//!   the shards and serves until SIGTERM or SIGINT;
//! - `tradebridge migrate --config FILE` applies the pending Postgres
//!   migrations of the database `[persist]` names (exit 1 when it cannot);
//! - `tradebridge journal check|quarantine --config FILE` looks at the
//!   journal, or sets its damage aside (`tradebridge_net::journal_tool`);
//! - `--help` and `--version` exit 0.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tradebridge_core::config::{Config, Routing};
use tradebridge_net::metrics;
use tradebridge_net::router::{self, Router};
use tradebridge_net::context::Shared;
use tradebridge_net::shard;
use tradebridge_net::source::Source;

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
    /// Add, list, show, disable, enable or remove accounts in the file; a
    /// running bridge applies each change at once (as `reload`).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Add, change, remove or list follows in the file; a running bridge
    /// applies each change at once (as `reload`).
    Follow {
        #[command(subcommand)]
        command: FollowCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The admin HTTP API's settings.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Look at the journal, or set its damage aside.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
    /// Read every segment and checkpoint of server.journal_dir and say what
    /// the bridge would do with each, changing nothing. Exit 0 when the
    /// bridge can start, 1 when it would refuse (damage named by file and
    /// offset).
    Check {
        /// The configuration file; server.journal_dir names the journal.
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// With the bridge stopped: copy a damaged segment aside, cut it at the
    /// damage and keep every valid record after it (a broken chain of
    /// segments is renamed aside), so the bridge starts; prints what was
    /// done and which journal numbers are no longer held.
    Quarantine {
        /// The configuration file; server.journal_dir names the journal.
        #[arg(long, value_name = "FILE")]
        config: String,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Bearer tokens of the admin HTTP API ([[admin.token]]).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// An admin token of the file, by name.
#[derive(clap::Args, Debug)]
struct TokenName {
    #[arg(long, value_name = "FILE")]
    config: String,
    /// The token's name: who the audit says acted (`api:<name>`).
    #[arg(long)]
    name: String,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Add a token; prints it once (last line `token=<token>`); the file
    /// keeps only its SHA-256. Adds `[admin]` (loopback) when missing.
    Add(TokenName),
    /// Remove a token; requests bearing it are refused from the reload on.
    Remove(TokenName),
    /// The tokens' names.
    List {
        #[arg(long, value_name = "FILE")]
        config: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    Master,
    Slave,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PlatformArg {
    Mt4,
    Mt5,
}

/// An account of the file, by login.
#[derive(clap::Args, Debug)]
struct AccountLogin {
    login: u64,
    #[arg(long, value_name = "FILE")]
    config: String,
}

/// A follow of the file, by its master and slave.
#[derive(clap::Args, Debug)]
struct FollowPair {
    #[arg(long, value_name = "FILE")]
    config: String,
    #[arg(long)]
    master: u64,
    #[arg(long)]
    slave: u64,
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// Add an account; prints its new API key once (last line `key=<key>`);
    /// the file keeps only its SHA-256.
    Add {
        #[arg(long, value_name = "FILE")]
        config: String,
        #[arg(long)]
        login: u64,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The broker server name the EA reports.
        #[arg(long)]
        server: String,
        #[arg(long, value_enum)]
        platform: PlatformArg,
        /// An account key of core/CONFIG.md, e.g. `--limit max_positions=5`
        /// or `--limit 'mode="close_only"'` (repeatable).
        #[arg(long = "limit", value_name = "KEY=VALUE")]
        limits: Vec<String>,
    },
    /// One line per account.
    List {
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// An account's settings and follows (never its key).
    Show(AccountLogin),
    /// Refuse the account's logins and close its session (4005).
    Disable(AccountLogin),
    /// Let a disabled account log in again.
    Enable(AccountLogin),
    /// Remove the account and every follow naming it.
    Remove(AccountLogin),
}

#[derive(Subcommand, Debug)]
enum FollowCommand {
    /// Make SLAVE copy MASTER; rules as in a [[follow]] table (defaults of
    /// core/CONFIG.md for the rest).
    Add {
        #[command(flatten)]
        pair: FollowPair,
        /// A `[[follow]]` key, e.g. `--rule 'lot = { mode = "multiplier", value = 2.0 }'` (repeatable).
        #[arg(long = "rule", value_name = "KEY = VALUE")]
        rules: Vec<String>,
    },
    /// Set rules of an existing follow (the others stay).
    Set {
        #[command(flatten)]
        pair: FollowPair,
        #[arg(long = "rule", value_name = "KEY = VALUE", required = true)]
        rules: Vec<String>,
    },
    /// Stop SLAVE copying MASTER (its open copies as the follow's on_remove says).
    Remove(FollowPair),
    /// One line per follow, of one master or slave if given.
    List {
        #[arg(long, value_name = "FILE")]
        config: String,
        #[arg(long)]
        master: Option<u64>,
        #[arg(long)]
        slave: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Give the account a new API key, printed once (last line `key=<key>`);
    /// the old key keeps working until the grace ends, then is refused
    /// (sessions up stay).
    Rotate {
        login: u64,
        #[arg(long, value_name = "FILE")]
        config: String,
        /// How long the old key still works: `0`, `90s`, `30m`, `24h`, `7d`.
        #[arg(long, default_value = "24h")]
        grace: String,
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
    let config_path = match &cli.command {
        Command::Serve { config }
        | Command::Migrate { config }
        | Command::Reload { config }
        | Command::Config { command: ConfigCommand::Check { config } } => config,
        Command::Account { command } => match command {
            AccountCommand::Add { config, .. } | AccountCommand::List { config } => config,
            AccountCommand::Show(account) | AccountCommand::Disable(account) | AccountCommand::Enable(account) | AccountCommand::Remove(account) => &account.config,
        },
        Command::Follow { command } => match command {
            FollowCommand::Add { pair, .. } | FollowCommand::Set { pair, .. } | FollowCommand::Remove(pair) => &pair.config,
            FollowCommand::List { config, .. } => config,
        },
        Command::Key { command: KeyCommand::Rotate { config, .. } } => config,
        Command::Journal { command: JournalCommand::Check { config } | JournalCommand::Quarantine { config } } => config,
        Command::Admin { command: AdminCommand::Token { command } } => match command {
            TokenCommand::Add(token) | TokenCommand::Remove(token) => &token.config,
            TokenCommand::List { config } => config,
        },
    };
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
    match &cli.command {
        Command::Reload { .. } => return reload(config_path, &config),
        Command::Account { command } => return account(config_path, &config, command),
        Command::Follow { command } => return follow(config_path, &config, command),
        Command::Key { command: KeyCommand::Rotate { login, grace, .. } } => return key_rotate(config_path, &config, *login, grace),
        Command::Admin { command: AdminCommand::Token { command } } => return admin_token(config_path, &config, command),
        _ => {}
    }
    if let Command::Journal { command: JournalCommand::Check { .. } } = &cli.command {
        return journal_check(&config);
    }
    init_logging(config.server.log_json);
    let outcome = match cli.command {
        Command::Serve { config: path } => serve(config, std::path::PathBuf::from(path)),
        Command::Migrate { .. } => migrate(&config),
        Command::Journal { command: JournalCommand::Quarantine { .. } } => {
            tradebridge_net::journal_tool::quarantine(&config).map(|report| print!("{report}"))
        }
        Command::Config { .. }
        | Command::Reload { .. }
        | Command::Account { .. }
        | Command::Follow { .. }
        | Command::Key { .. }
        | Command::Admin { .. }
        | Command::Journal { command: JournalCommand::Check { .. } } => {
            unreachable!("these commands return above")
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tradebridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tradebridge journal check`: the report on standard output; exit 0 when
/// the bridge can start on the journal, 1 when it would refuse or the
/// journal cannot be read.
fn journal_check(config: &Config) -> ExitCode {
    match tradebridge_net::journal_tool::check(config) {
        Ok(checked) => {
            print!("{}", checked.report);
            if checked.refuses_start {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
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
        match &config.persist {
            None => "not set (journal only)",
            Some(persist) if persist.config_source == tradebridge_core::config::ConfigSource::Postgres => {
                "set (accounts and follows in Postgres; the file's fill its empty tables at the first start)"
            }
            Some(_) => "set (accounts and follows in this file)",
        }
    );
    ExitCode::SUCCESS
}

/// Who ran an admin command, for the audit file: the invoking user.
fn actor() -> String {
    let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| login_name());
    format!("cli:{user}")
}

/// The name of this process's user from the password database, else `uid:N`.
fn login_name() -> String {
    // SAFETY: getuid has no preconditions; getpwuid returns null or a
    // pointer to a static record, read at once (this program is single-
    // threaded here).
    unsafe {
        let uid = libc::getuid();
        let record = libc::getpwuid(uid);
        if record.is_null() || (*record).pw_name.is_null() {
            return format!("uid:{uid}");
        }
        std::ffi::CStr::from_ptr((*record).pw_name).to_string_lossy().into_owned()
    }
}

/// Applies `edit` to the file, records it in the audit file, and has a
/// running bridge apply it; `key`: printed last (`key=<key>`) once written.
fn run_edit(path: &str, config: &Config, edit: tradebridge_net::admin::Edit, key: Option<String>) -> ExitCode {
    run_edit_printing(path, config, edit, key.map(|key| format!("key={key}")))
}

/// [`run_edit`], printing `last_line` (a new secret) last once written.
fn run_edit_printing(path: &str, config: &Config, edit: tradebridge_net::admin::Edit, last_line: Option<String>) -> ExitCode {
    use tradebridge_net::admin::{append_audit, EditError};
    let journal_dir = &config.server.journal_dir;
    let (action, subject) = edit.describe();
    // Admin tokens live in the file whatever the accounts' source.
    let source = match &edit {
        tradebridge_net::admin::Edit::AddToken { .. } | tradebridge_net::admin::Edit::RemoveToken { .. } => Source::File { path: path.into() },
        _ => match Source::of(std::path::Path::new(path), config) {
            Ok(source) => source,
            Err(error) => {
                eprintln!("tradebridge {action}: {error:#}");
                return ExitCode::FAILURE;
            }
        },
    };
    // With Postgres the change commits its own audit_log row.
    let audit_file = !source.is_postgres();
    match source.edit(&edit, &actor()) {
        Err(error) => {
            if audit_file {
                let _ = append_audit(journal_dir, &actor(), &edit, &format!("refused: {error}"));
            }
            eprintln!("tradebridge {action}: {subject}: {error}");
            return ExitCode::from(if matches!(error, EditError::Invalid(_) | EditError::BadInput(_)) { EXIT_USAGE } else { 1 });
        }
        Ok(_) => {
            if audit_file {
                if let Err(error) = append_audit(journal_dir, &actor(), &edit, "written") {
                    eprintln!("tradebridge {action}: warning: cannot append to the audit file in {}: {error}", journal_dir.display());
                }
            }
            println!("tradebridge {action}: {subject}: written to {}", source.describe());
        }
    }
    let code = if journal_dir.join(tradebridge_net::reload::PID_FILE).exists() {
        reload(path, config)
    } else {
        println!("tradebridge {action}: no bridge is running for {path}; the change applies at its next start");
        ExitCode::SUCCESS
    };
    if let Some(line) = last_line {
        println!("{line}");
    }
    code
}

fn account(path: &str, config: &Config, command: &AccountCommand) -> ExitCode {
    use tradebridge_net::admin::{list_accounts, new_key, show_account, Edit};
    let edit = match command {
        AccountCommand::List { .. } => {
            let Some(config) = source_config(path, config) else { return ExitCode::FAILURE };
            list_accounts(&config).iter().for_each(|line| println!("{line}"));
            return ExitCode::SUCCESS;
        }
        AccountCommand::Show(AccountLogin { login, .. }) => {
            let Some(config) = source_config(path, config) else { return ExitCode::FAILURE };
            return match show_account(&config, *login) {
                Some(lines) => {
                    lines.iter().for_each(|line| println!("{line}"));
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("tradebridge account show: no account {login} in {path}");
                    ExitCode::FAILURE
                }
            };
        }
        AccountCommand::Add { login, role, server, platform, limits, .. } => {
            let mut pairs = Vec::new();
            for limit in limits {
                match limit.split_once('=') {
                    Some((key, value)) if !key.trim().is_empty() => pairs.push((key.trim().to_owned(), value.trim().to_owned())),
                    _ => {
                        eprintln!("tradebridge account add: --limit {limit:?}: expected KEY=VALUE, e.g. max_positions=5");
                        return ExitCode::from(EXIT_USAGE);
                    }
                }
            }
            let (key, key_sha256) = match new_key() {
                Ok(pair) => pair,
                Err(error) => {
                    eprintln!("tradebridge account add: cannot read random bytes for the key: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let role = match role {
                RoleArg::Master => "master",
                RoleArg::Slave => "slave",
            };
            let platform = match platform {
                PlatformArg::Mt4 => "mt4",
                PlatformArg::Mt5 => "mt5",
            };
            let edit = Edit::AddAccount { login: *login, role: role.into(), server: server.clone(), platform: platform.into(), key_sha256, limits: pairs };
            return run_edit(path, config, edit, Some(key));
        }
        AccountCommand::Disable(account) => Edit::SetEnabled { login: account.login, enabled: false },
        AccountCommand::Enable(account) => Edit::SetEnabled { login: account.login, enabled: true },
        AccountCommand::Remove(account) => Edit::RemoveAccount { login: account.login },
    };
    run_edit(path, config, edit, None)
}

fn follow(path: &str, config: &Config, command: &FollowCommand) -> ExitCode {
    use tradebridge_net::admin::{list_follows, Edit};
    let edit = match command {
        FollowCommand::List { master, slave, .. } => {
            let Some(config) = source_config(path, config) else { return ExitCode::FAILURE };
            list_follows(&config, *master, *slave).iter().for_each(|line| println!("{line}"));
            return ExitCode::SUCCESS;
        }
        FollowCommand::Add { pair, rules } => Edit::AddFollow { master: pair.master, slave: pair.slave, rules: rules.clone() },
        FollowCommand::Set { pair, rules } => Edit::SetFollow { master: pair.master, slave: pair.slave, rules: rules.clone() },
        FollowCommand::Remove(pair) => Edit::RemoveFollow { master: pair.master, slave: pair.slave },
    };
    run_edit(path, config, edit, None)
}

fn key_rotate(path: &str, config: &Config, login: u64, grace: &str) -> ExitCode {
    let grace_ms = match tradebridge_net::admin::parse_duration_ms(grace) {
        Ok(grace_ms) => grace_ms,
        Err(error) => {
            eprintln!("tradebridge key rotate: --grace {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let now_ms = tradebridge_net::clock::unix_ms();
    let (key, key_sha256) = match tradebridge_net::admin::new_key() {
        Ok(pair) => pair,
        Err(error) => {
            eprintln!("tradebridge key rotate: cannot read random bytes for the key: {error}");
            return ExitCode::FAILURE;
        }
    };
    run_edit(path, config, tradebridge_net::admin::Edit::RotateKey { login, key_sha256, grace_ms, now_ms }, Some(key))
}

fn admin_token(path: &str, config: &Config, command: &TokenCommand) -> ExitCode {
    use tradebridge_net::admin::{new_key, Edit};
    match command {
        TokenCommand::List { .. } => {
            for token in config.admin.iter().flat_map(|admin| admin.tokens.iter()) {
                println!("{}", token.name);
            }
            ExitCode::SUCCESS
        }
        TokenCommand::Add(TokenName { name, .. }) => {
            let (token, token_sha256) = match new_key() {
                Ok(pair) => pair,
                Err(error) => {
                    eprintln!("tradebridge admin token add: cannot read random bytes for the token: {error}");
                    return ExitCode::FAILURE;
                }
            };
            if config.admin.is_none() {
                println!("tradebridge admin token add: [admin] added; the API listens on {} from the next start", tradebridge_core::config::ADMIN_LISTEN_DEFAULT);
            }
            run_edit_printing(path, config, Edit::AddToken { name: name.clone(), token_sha256 }, Some(format!("token={token}")))
        }
        TokenCommand::Remove(TokenName { name, .. }) => run_edit(path, config, Edit::RemoveToken { name: name.clone() }, None),
    }
}

/// The configuration the file's source holds (the file itself, or with
/// Postgres's accounts and follows); `None`, with the error printed, when
/// it cannot be read.
fn source_config(path: &str, config: &Config) -> Option<Config> {
    let loaded = Source::of(std::path::Path::new(path), config).map_err(|error| format!("{error:#}")).and_then(|source| source.load());
    match loaded {
        Ok(config) => Some(config),
        Err(error) => {
            eprintln!("tradebridge: {error}");
            None
        }
    }
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
                        if matches!(outcome, ReloadOutcome::Unchanged { .. }) && status.file.starts_with("Postgres") {
                            println!("tradebridge reload: the bridge runs this change already: it applied the commit as Postgres notified it");
                        }
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
        if tradebridge_net::panic_guard::is_catching() {
            // The replay of one journal record: it is quarantined and the
            // start goes on (router::Router::recover).
            return;
        }
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
    let render: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(move || {
        let mut text = render_shared.metrics.render(render_shared.connections_open());
        render_shared.front_door.render(&mut text);
        let (expiring, expired) = render_shared.accounts.key_expiry_counts(render_shared.wall_ms(), tradebridge_net::session::KEY_EXPIRY_NOTICE_MS);
        let _ = std::fmt::Write::write_fmt(
            &mut text,
            format_args!(
                "# HELP tradebridge_keys_expiring Accounts whose key expires within 7 days (key_expires, or key_created + key_max_age_days).\n# TYPE tradebridge_keys_expiring gauge\ntradebridge_keys_expiring {expiring}\n# HELP tradebridge_keys_expired Accounts whose key has expired: their EAs are refused until it is rotated.\n# TYPE tradebridge_keys_expired gauge\ntradebridge_keys_expired {expired}\n"
            ),
        );
        text
    });
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

/// The accounts and follows to start with: the file's, or with Postgres
/// as the source its tables' (filled from the file's own tables at the
/// first start); `None` when Postgres cannot be read or its rows do not
/// validate: the bridge then starts on the journal's last configuration
/// and applies Postgres's once it can read it.
fn start_config(source: &Source, file_config: &Config) -> anyhow::Result<Option<Config>> {
    use tradebridge_persist::config_source::{import, load, Actor};
    let (Source::Postgres { target, .. }, Some(persist)) = (source, &file_config.persist) else {
        return Ok(Some(file_config.clone()));
    };
    let text = source.file_text().map_err(anyhow::Error::msg)?;
    let file_rows = tradebridge_net::source::rows_of_file(&text).map_err(anyhow::Error::msg)?;
    let migrate_first = persist.migrate_on_start;
    let loaded = tradebridge_net::source::on_own_runtime(async {
        let mut client = target.connect().await?;
        if migrate_first {
            let report = tradebridge_persist::migrate::migrate(&mut client, tradebridge_persist::migrate::MIGRATIONS).await?;
            tracing::info!(%report, "migrations at start");
        }
        let importer = Actor { name: "import".into(), action: "config import".into(), subject: "the configuration file's accounts and follows".into() };
        let imported = !file_rows.is_empty() && import(&mut client, &file_rows, &importer).await?;
        anyhow::Ok((imported, load(&mut client).await?))
    });
    let (imported, rows) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "cannot read the accounts and follows from Postgres at start; starting on the journal's last configuration");
            return Ok(None);
        }
    };
    if imported {
        tracing::info!(accounts = rows.accounts.len(), follows = rows.follows.len(), "the file's accounts and follows were imported into config_accounts and config_follows; Postgres holds them from now on");
    } else if !file_rows.is_empty() && file_rows != rows {
        tracing::warn!(
            file_accounts = file_rows.accounts.len(),
            file_follows = file_rows.follows.len(),
            "the file's [[account]] and [[follow]] tables are not used: [persist] config_source = \"postgres\" takes them from config_accounts and config_follows"
        );
    }
    match tradebridge_net::source::config_of_rows(&text, &rows) {
        Ok(config) => {
            tracing::info!(accounts = config.accounts.len(), follows = config.follows.len(), "configuration from Postgres");
            Ok(Some(config))
        }
        Err(error) => {
            tracing::error!(%error, "starting on the journal's last configuration");
            Ok(None)
        }
    }
}

/// Applies every committed change of Postgres's accounts and follows (a
/// notification, or the periodic re-read) through the router, as a reload
/// does ([`Source::apply`]: one at a time, each reading the latest rows).
fn watch_postgres(source: &Arc<Source>, persist: &tradebridge_core::config::PersistConfig, inbox: Arc<tradebridge_net::reload::RouterInbox>) -> anyhow::Result<()> {
    use tradebridge_net::reload::ReloadOutcome;
    let Source::Postgres { target, .. } = &**source else {
        return Ok(());
    };
    let text = source.file_text().map_err(anyhow::Error::msg)?;
    let import_rows = tradebridge_net::source::rows_of_file(&text).map_err(anyhow::Error::msg)?;
    let reread = Duration::from_millis(persist.config_reread_ms);
    let retry = Duration::from_millis(persist.retry_backoff_ms_max);
    let applier = Arc::clone(source);
    tradebridge_persist::config_source::watch((**target).clone(), reread, retry, import_rows, move |_rows| {
        let outcome = applier.apply(&inbox, "postgres");
        match &outcome {
            ReloadOutcome::Unchanged { .. } => {}
            ReloadOutcome::Applied { .. } => tracing::info!(?outcome, "configuration from Postgres applied"),
            ReloadOutcome::Invalid { error } => tracing::error!(%error, "the accounts and follows in Postgres do not validate; the bridge keeps its configuration"),
            ReloadOutcome::Refused { reason } => tracing::error!(%reason, "configuration from Postgres not applied; tried again at the next change or re-read"),
        }
        // Invalid rows are not retried until they change; a refusal is.
        !matches!(outcome, ReloadOutcome::Refused { .. })
    })?;
    Ok(())
}

/// Where the routing core runs, to stop it at the end.
enum RouterRunning {
    /// Its own thread (`routing = "thread"`).
    Thread(std::thread::JoinHandle<()>),
    /// A task on shard 0, which reports here once stopped.
    Inline(std::sync::mpsc::Receiver<anyhow::Result<()>>),
}

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
    let source = Arc::new(Source::of(&config_path, &config)?);
    let (config, start) = match start_config(&source, &config)? {
        Some(config) => (config, router::StartConfig::Given),
        None => (config, router::StartConfig::Journal),
    };
    let journal = router::open_journal(&config)?;
    let mut shared = Shared::new(config);
    if shared.config.persist.is_none() {
        shared.audit = Some(tradebridge_net::audit::AuditFile::start(&shared.config.server.journal_dir).context("starting the audit file's writer")?);
    }
    let shared = Arc::new(shared);
    let routing = tradebridge_net::links::routing(&shared.config);
    let (router_links, shard_links) = tradebridge_net::links::links(shard::shard_count(&shared.config), shared.config.server.ring_bytes, routing)?;
    let mut router = Router::new_with(
        journal,
        router_links,
        Arc::clone(&shared.accounts),
        &shared.config,
        shared.started,
        Arc::clone(&shared.metrics),
        start,
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
    tracing::info!(routing = ?routing, shards = shard::shard_count(&shared.config), "routing core");
    let (router_running, inline) = match routing {
        Routing::Inline => {
            let (done, router_done) = std::sync::mpsc::channel();
            (RouterRunning::Inline(router_done), Some(shard::InlineRouter { router, stop: router_stop, done }))
        }
        Routing::Auto | Routing::Thread => {
            let slice_us = shared.config.server.hot_thread_slice_us;
            let thread = std::thread::Builder::new().name("router".into()).spawn(move || {
                tradebridge_net::hot_thread::apply(slice_us, "router");
                if let Err(error) = router.run(router_stop) {
                    router::exit_stopped(&error);
                }
            })?;
            (RouterRunning::Thread(thread), None)
        }
    };
    // Registered before the address is announced, so a signal sent as soon
    // as the bridge is up is never handled by the default action.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let journal_dir = shared.config.server.journal_dir.clone();
    let pid_file = tradebridge_net::reload::PidFile::create(&journal_dir).with_context(|| format!("writing the pid file in {}", journal_dir.display()))?;
    let shards = shard::start(Arc::clone(&shared), shard_links, inline)?;
    println!("tradebridge listening on ws://{}/ea", shards.local_address);
    tracing::info!(address = %shards.local_address, "listening");
    if let Some(address) = shared.config.server.metrics_listen {
        start_metrics(address, &shared)?;
    }
    if let (Source::Postgres { .. }, Some(persist)) = (&*source, &shared.config.persist) {
        watch_postgres(&source, persist, Arc::clone(&config_inbox))?;
    }
    let admin_tokens = Arc::new(tradebridge_net::api::AdminTokens::new(shared.config.admin.as_ref().map(|admin| admin.tokens.clone()).unwrap_or_default()));
    if shared.config.admin.is_some() {
        let api = tradebridge_net::api::start(Arc::clone(&shared), Arc::clone(&config_inbox), Arc::clone(&source), config_path.clone(), Arc::clone(&admin_tokens))?;
        println!("tradebridge admin API on http://{}/v1", api.local_address);
        if !api.local_address.ip().is_loopback() {
            tracing::warn!(address = %api.local_address, "the admin API listens beyond loopback over plain HTTP: put it behind a TLS proxy or a firewall");
        }
        tracing::info!(address = %api.local_address, "admin API listening");
    }
    let mut signal = None;
    for received in signals.forever() {
        if received == SIGHUP {
            // Re-read and validate the file as at start; the router applies
            // the difference between two inputs.
            source.reload(&journal_dir, &config_inbox, "reload");
            // The admin tokens apply at once too (the address at the next
            // start), whatever became of the accounts: a token removed
            // from the file stops working even while Postgres is away.
            if let Ok(Some(admin)) = Config::load(&config_path).map(|config| config.admin) {
                admin_tokens.replace(admin.tokens);
            }
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
    match router_running {
        RouterRunning::Thread(thread) => thread.join().map_err(|_| anyhow::anyhow!("the router thread panicked"))?,
        RouterRunning::Inline(done) => done.recv().context("the router task ended without a word")??,
    }
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
