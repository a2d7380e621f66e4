//! End to end against the real bridge: the compiled Monitor EA on a
//! simulated master terminal and the compiled Executor EA on a simulated
//! slave terminal (mql/host's `ea_host`, one process each), the real
//! `tradebridge` binary between them, a scripted trading session with
//! dropped connections, a bridge kill -9, EA restarts, terminal restarts
//! that log in late and a slave whose broker link goes down, and the
//! slave's book checked against what the follow rules say. Both terminals
//! run `--strict`: they answer, fill, report and name things the way a
//! real MetaTrader and broker do (see ea_host.cpp), not the kind way.
//!
//! # Layout
//! - [`ea_host_binary`]: builds `ea_host` once per test process, under a
//!   file lock, in a build folder of its own (mql_host.rs builds in
//!   mql/host/build at the same time).
//! - [`BridgeProcess`]: the bridge on a fixed free port with its
//!   configuration and journal in a temporary folder; killed with SIGKILL
//!   and started again on the same journal and port.
//! - [`EaHost`]: one `ea_host` process: commands on stdin, answers up to
//!   `end` on stdout, the EA's log in a file; killed with SIGKILL and
//!   started again on the same Files folder and broker book.
//! - [`Book`] / [`Model`]: a terminal's `dump` parsed; what the slave must
//!   hold (tag -> symbol, side, volume, stops), kept by the script as it
//!   trades the master, from the follow rules alone.
//! - [`Session`]: one master/slave pair and its model; [`run_session`] is
//!   the script every pair runs.
//!
//! # Invariants
//! - Every wait polls a condition and is bounded by [`WAIT_MAX`]; no fixed
//!   sleep stands in for a condition that can be polled.
//! - Every child process is killed when its owner drops, and the
//!   temporary folder is removed when the session passes.
//! - A failure prints both terminals' books and the tails of the bridge's
//!   and both EAs' logs.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Bound on every wait: far above what a passing run needs (a few hundred
/// milliseconds per step), so only a broken copier reaches it.
const WAIT_MAX: Duration = Duration::from_secs(20);
/// Pause between two polls of a condition.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long the slave must keep matching after a last reconciliation: many
/// times the few milliseconds a copy takes from master to slave here.
const STABLE_WINDOW: Duration = Duration::from_millis(1000);
/// Lines of each log printed when a test fails.
const LOG_TAIL_LINES: usize = 40;
/// The follow's lot multiplier: the slave trades twice the master's volume.
const MULTIPLIER: f64 = 2.0;
/// The follow's symbol suffix: the slave's broker names EURUSD "EURUSD.m".
const SUFFIX: &str = ".m";
/// The slave symbol's volume step and minimum (ea_host's symbols).
const VOLUME_STEP: f64 = 0.01;
/// Broker server name of both accounts (ea_host --server).
const SERVER_NAME: &str = "E2E-Broker";
/// Tolerance when comparing prices and volumes printed with 10 digits.
const EPSILON: f64 = 1e-7;

/// Builds mql/host's ea_host into target/tmp/mql-e2e once per process; a
/// file lock serialises the build between test processes.
fn ea_host_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mql-e2e");
            std::fs::create_dir_all(&build).expect("create the ea_host build folder");
            let lock = File::create(build.join(".lock")).expect("create the build lock file");
            lock.lock().expect("lock the ea_host build");
            let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mql/host");
            let binary = build.join("ea_host");
            let output = Command::new("make")
                .arg("-C")
                .arg(&host)
                .arg("-j2")
                .arg(format!("BUILD={}", build.display()))
                .arg(&binary)
                .output()
                .expect("make must be installed");
            assert!(
                output.status.success(),
                "building ea_host failed with {}\n--- stdout\n{}\n--- stderr\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            binary
        })
        .clone()
}

/// A fresh temporary folder for one session.
fn session_directory(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("tradebridge-mql-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("create the session folder");
    directory
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// The last `count` lines of a log file, or a note that it is missing.
fn log_tail(path: &Path, count: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(count)..].join("\n")
        }
        Err(error) => format!("({}: {error})", path.display()),
    }
}

/// One master/slave pair of EAs and the slave account's options.
#[derive(Clone, Copy)]
struct PairSpec {
    /// Names the session's folder.
    name: &'static str,
    /// `monitor5` or `monitor4`.
    monitor: &'static str,
    /// `executor5` or `executor4`.
    executor: &'static str,
    /// The slave is an MT5 netting account.
    netting: bool,
    /// The master account; its digits count in the tag's length.
    master_login: u64,
    /// The master terminal's first ticket: large tickets make long tags.
    master_first_ticket: u64,
    /// The slave account.
    slave_login: u64,
}

const MASTER_KEY: &str = "e2e-master-key";
const SLAVE_KEY: &str = "e2e-slave-key";

/// The real bridge, on a port chosen once so that EAs find it again after
/// a restart.
struct BridgeProcess {
    /// The running binary; None between a kill and the next spawn.
    child: Option<Child>,
    /// The configuration file every start reads (same journal, same port).
    config: PathBuf,
    /// Standard output and error of every start, appended.
    log: PathBuf,
    /// The port in `listen`, chosen free at the first start.
    port: u16,
    /// How many times the bridge announced its listener in `log`.
    starts: usize,
}

impl BridgeProcess {
    fn start(directory: &Path, spec: &PairSpec) -> BridgeProcess {
        let port = free_port();
        let config = directory.join("tradebridge.toml");
        let text = format!(
            r#"[server]
listen = "127.0.0.1:{port}"
shards = 1
journal_dir = "{journal}"
hb_ms = 1000
journal_sync = "every_record"
idle = "park"

[[account]]
login = {master}
server = "{SERVER_NAME}"
role = "master"
key_sha256 = "{master_hash}"

[[account]]
login = {slave}
server = "{SERVER_NAME}"
role = "slave"
key_sha256 = "{slave_hash}"

[[follow]]
slave = {slave}
master = {master}
lot = {{ mode = "multiplier", value = {MULTIPLIER:?} }}
symbol_suffix = "{SUFFIX}"
# Copies routed while the Executor is down must not expire on a loaded machine.
ttl_ms = 60000
# A pending order that fills while the slave is down reaches it as a late
# market open, guarded by max_dev from the master's fill price: the scripted
# market moves 6 pips (60 points) past the trigger, within this bound.
max_dev_points = 100
"#,
            journal = directory.join("journal").display(),
            master = spec.master_login,
            slave = spec.slave_login,
            master_hash = sha256_hex(MASTER_KEY),
            slave_hash = sha256_hex(SLAVE_KEY),
        );
        std::fs::write(&config, text).expect("write the bridge configuration");
        let mut bridge = BridgeProcess {
            child: None,
            config,
            log: directory.join("bridge.log"),
            port,
            starts: 0,
        };
        bridge.spawn();
        bridge
    }

    /// Starts the binary and waits until it announces its listener.
    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the bridge log");
        let child = Command::new(env!("CARGO_BIN_EXE_tradebridge"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tradebridge");
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.matches("tradebridge listening on ws://").count() >= self.starts {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().expect("try_wait"))
            {
                panic!(
                    "the bridge exited with {status} before listening:\n{}",
                    log_tail(&self.log, LOG_TAIL_LINES)
                );
            }
            assert!(
                Instant::now() < deadline,
                "the bridge did not listen within {WAIT_MAX:?}:\n{}",
                log_tail(&self.log, LOG_TAIL_LINES)
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ea", self.port)
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One running ea_host: an EA on a simulated terminal.
struct EaHost {
    /// Names the host in failure messages.
    label: &'static str,
    /// The command line, for a restart on the same Files folder and book.
    arguments: Vec<String>,
    /// The ea_host process; killed on drop.
    child: Child,
    /// Where commands are written.
    stdin: ChildStdin,
    /// Lines of the host's standard output, read by a thread.
    lines: Receiver<String>,
    /// The EA's log (standard error, TB_SHIM_VERBOSE).
    log: PathBuf,
}

impl EaHost {
    fn spawn(label: &'static str, arguments: Vec<String>, log: PathBuf) -> EaHost {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the EA log");
        let mut child = Command::new(ea_host_binary())
            .args(&arguments)
            .env("TB_SHIM_VERBOSE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start ea_host");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut host = EaHost {
            label,
            arguments,
            child,
            stdin,
            lines,
            log,
        };
        let started = host.answer("(start)");
        let expected = if host.arguments.iter().any(|argument| argument == "--stopped") {
            "stopped"
        } else {
            "init 0"
        };
        assert_eq!(
            started,
            vec![expected.to_string()],
            "{label} did not start:\n{}",
            log_tail(&host.log, LOG_TAIL_LINES)
        );
        host
    }

    /// Lines of the next answer, up to its `end`.
    fn answer(&mut self, command: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT_MAX;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == "end" => return lines,
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "{} gave no answer to {command:?} within {WAIT_MAX:?} (got {lines:?}):\n{}",
                    self.label,
                    log_tail(&self.log, LOG_TAIL_LINES)
                ),
            }
        }
    }

    fn command(&mut self, command: &str) -> Vec<String> {
        writeln!(self.stdin, "{command}")
            .and_then(|_| self.stdin.flush())
            .expect("write a command to ea_host");
        self.answer(command)
    }

    /// A trade command that must succeed; its answer's first line.
    fn trade(&mut self, command: &str) -> String {
        let answer = self.command(command);
        assert!(
            answer.len() == 1 && !answer[0].starts_with("failed") && !answer[0].starts_with("unknown"),
            "{}: {command:?} answered {answer:?}",
            self.label
        );
        answer[0].clone()
    }

    /// Polls `status` until the terminal has logged in and is connected (a
    /// trader cannot trade before).
    fn wait_logged_in(&mut self) {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let status = self.command("status");
            if status.iter().any(|line| line == "connected 1") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log in within {WAIT_MAX:?} ({status:?})",
                self.label
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn book(&mut self) -> Book {
        Book::parse(&self.command("dump"))
    }

    /// SIGKILL: the terminal process dies; its Files folder and broker book stay.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the host and starts it again, with `extra` options for this
    /// start only (a late login, the EA not attached yet).
    fn restart_with(&mut self, extra: &[&str]) {
        self.kill();
        let mut arguments = self.arguments.clone();
        arguments.extend(extra.iter().map(|text| text.to_string()));
        let mut host = EaHost::spawn(self.label, arguments, self.log.clone());
        host.arguments = self.arguments.clone();
        *self = host;
    }
}

impl Drop for EaHost {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A position or pending order as `dump` prints it.
#[derive(Clone, Debug)]
struct Entry {
    /// MT5 position or order ticket, MT4 ticket.
    ticket: u64,
    symbol: String,
    /// buy, sell, buy_limit, sell_limit, buy_stop or sell_stop.
    side: String,
    /// Lots.
    volume: f64,
    /// Open price, or a pending order's trigger.
    price: f64,
    /// Stop-loss and take-profit, 0 for none.
    sl: f64,
    tp: f64,
    /// The comment the order was sent with ("" when none).
    origin: String,
}

/// A terminal's book: open positions, pending orders, and every accepted
/// order that opened exposure (ticket, comment).
#[derive(Debug, Default)]
struct Book {
    positions: Vec<Entry>,
    orders: Vec<Entry>,
    /// Every order the server accepted that opened exposure: (ticket, comment).
    opened: Vec<(u64, String)>,
    /// The dump as printed, for failure messages.
    text: String,
}

fn number(field: &str) -> f64 {
    field
        .parse()
        .unwrap_or_else(|error| panic!("dump field {field:?} is not a number: {error}"))
}

fn text_field(field: &str) -> String {
    if field == "-" {
        String::new()
    } else {
        field.to_string()
    }
}

impl Book {
    fn parse(lines: &[String]) -> Book {
        let mut book = Book {
            text: lines.join("\n"),
            ..Book::default()
        };
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.first().copied() {
                Some("position") if fields.len() >= 11 => book.positions.push(Book::entry(fields[1], &fields[3..])),
                Some("order") if fields.len() >= 9 => book.orders.push(Book::entry(fields[1], &fields[2..])),
                Some("opened") if fields.len() == 3 => {
                    book.opened.push((number(fields[1]) as u64, text_field(fields[2])))
                }
                _ => panic!("unexpected dump line {line:?}"),
            }
        }
        book
    }

    /// `fields`: symbol side volume price sl tp origin ...
    fn entry(ticket: &str, fields: &[&str]) -> Entry {
        Entry {
            ticket: ticket.parse().expect("ticket"),
            symbol: fields[0].to_string(),
            side: fields[1].to_string(),
            volume: number(fields[2]),
            price: number(fields[3]),
            sl: number(fields[4]),
            tp: number(fields[5]),
            origin: text_field(fields[6]),
        }
    }

    /// The ticket holding master position `pos` now: the position or
    /// order on `symbol` (the script keeps one per symbol on the master;
    /// MT4 renames a partially closed ticket).
    fn ticket_on(&self, symbol: &str) -> Option<u64> {
        self.positions
            .iter()
            .chain(self.orders.iter())
            .find(|entry| entry.symbol == symbol)
            .map(|entry| entry.ticket)
    }
}

/// The copy tag a slave order carries, from its comment: `tc:<master>:<pos>`
/// as the bridge sends it, or the Executor's compact form `tc#<master>:<pos>`
/// in base 36 (used when the tag is longer than the 31 characters a broker
/// keeps of a comment).
fn tag_of_comment(comment: &str) -> Option<String> {
    if comment.starts_with("tc:") {
        return Some(comment.to_string());
    }
    let (master, pos) = comment.strip_prefix("tc#")?.split_once(':')?;
    let master = u64::from_str_radix(master, 36).ok()?;
    let pos = u64::from_str_radix(pos, 36).ok()?;
    Some(format!("tc:{master}:{pos}"))
}

/// What the slave must hold for one master position or pending order.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    /// The slave's symbol (the master's with the follow's suffix).
    symbol: String,
    side: String,
    /// The master's volume times the multiplier, rounded to the step.
    volume: f64,
    /// Checked for pending orders only (a position fills at the market).
    price: f64,
    /// The master's stops (copy_sl and copy_tp are on).
    sl: f64,
    tp: f64,
}

/// The master's side of one position, to size proportional closes.
#[derive(Clone, Debug)]
struct MasterPosition {
    symbol: String,
    /// Lots the master opened, and what is still open.
    volume_opened: f64,
    volume_now: f64,
    /// What the slave's copy opened with.
    slave_volume_opened: f64,
}

/// What the slave must hold, by tag.
#[derive(Debug, Default)]
struct Model {
    /// Copied positions by tag.
    positions: BTreeMap<String, Expected>,
    /// Copied pending orders by tag.
    orders: BTreeMap<String, Expected>,
}

fn close_enough(left: f64, right: f64) -> bool {
    (left - right).abs() < EPSILON
}

/// Volume in lots rounded to the slave's step, as the engine sends it.
fn round_to_step(volume: f64) -> f64 {
    (volume / VOLUME_STEP).round() * VOLUME_STEP
}

impl Model {
    /// Every difference between `book` (the slave's) and the model; empty
    /// when the slave holds exactly what it should.
    fn differences(&self, book: &Book) -> Vec<String> {
        let mut differences = Vec::new();
        Model::compare("position", &self.positions, &book.positions, false, &mut differences);
        Model::compare("order", &self.orders, &book.orders, true, &mut differences);
        let mut opened: BTreeMap<String, usize> = BTreeMap::new();
        for (ticket, comment) in &book.opened {
            match tag_of_comment(comment) {
                Some(tag) => *opened.entry(tag).or_default() += 1,
                None => differences.push(format!(
                    "ticket {ticket} was opened without a copy tag (comment {comment:?})"
                )),
            }
        }
        for (tag, count) in opened.iter().filter(|(_, count)| **count > 1) {
            differences.push(format!("{tag} was opened {count} times"));
        }
        differences
    }

    fn compare(
        kind: &str,
        expected: &BTreeMap<String, Expected>,
        held: &[Entry],
        with_price: bool,
        differences: &mut Vec<String>,
    ) {
        let mut by_tag: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
        for entry in held {
            match tag_of_comment(&entry.origin) {
                Some(tag) => by_tag.entry(tag).or_default().push(entry),
                None => differences.push(format!(
                    "{kind} {} has no copy tag (comment {:?})",
                    entry.ticket, entry.origin
                )),
            }
        }
        for (tag, entries) in &by_tag {
            let Some(want) = expected.get(tag) else {
                differences.push(format!(
                    "{kind} {tag} is held ({} times) but should not be",
                    entries.len()
                ));
                continue;
            };
            if entries.len() != 1 {
                differences.push(format!("{kind} {tag} is held {} times", entries.len()));
                continue;
            }
            let entry = entries[0];
            let same = entry.symbol == want.symbol
                && entry.side == want.side
                && close_enough(entry.volume, want.volume)
                && close_enough(entry.sl, want.sl)
                && close_enough(entry.tp, want.tp)
                && (!with_price || close_enough(entry.price, want.price));
            if !same {
                differences.push(format!("{kind} {tag}: held {entry:?}, expected {want:?}"));
            }
        }
        for tag in expected.keys().filter(|tag| !by_tag.contains_key(*tag)) {
            differences.push(format!("{kind} {tag} is missing"));
        }
    }
}

/// One master/slave pair against one bridge, and the model of the slave.
struct Session {
    spec: PairSpec,
    /// Configuration, journal, Files folders, books and logs of the session.
    directory: PathBuf,
    bridge: BridgeProcess,
    /// The Monitor on the master terminal.
    master: EaHost,
    /// The Executor on the slave terminal.
    slave: EaHost,
    /// What the slave must hold.
    model: Model,
    /// Master positions by `pos`.
    master_positions: BTreeMap<u64, MasterPosition>,
    /// Master pending orders by `pos` (their ticket): symbol.
    master_orders: BTreeMap<u64, String>,
    /// Quotes the slave missed while its terminal was down, given to it
    /// when it is back (its broker filled the orders they reach meanwhile).
    slave_quotes_missed: Option<Vec<String>>,
}

/// EA inputs that make reconnects quick (the bridge is killed and
/// restarted), and a start-up settle time above the book delay of a late
/// login ([`LATE_LOGIN`]) but short enough for the many restarts here.
const EA_INPUTS: &[&str] = &["BackoffBaseMs=50", "BackoffMaxMs=300", "StartupSettleMs=1000"];
/// ea_host options of a terminal that starts logged out: the login comes
/// 700 ms after OnInit, the account's positions 300 ms after that.
const LATE_LOGIN: &[&str] = &["--login-delay-ms", "700", "--book-delay-ms", "300"];

fn ea_arguments(ea: &str, url: &str, key: &str, login: u64, files: &Path, book: &Path) -> Vec<String> {
    let mut arguments: Vec<String> = ["--ea", ea, "--url", url, "--key", key, "--server", SERVER_NAME, "--strict"]
        .iter()
        .map(|text| text.to_string())
        .collect();
    arguments.extend(["--login".to_string(), login.to_string()]);
    arguments.extend([
        "--files".to_string(),
        files.display().to_string(),
        "--book".to_string(),
        book.display().to_string(),
    ]);
    for input in EA_INPUTS {
        arguments.extend(["--input".to_string(), input.to_string()]);
    }
    arguments
}

impl Session {
    fn start(spec: PairSpec) -> Session {
        let directory = session_directory(spec.name);
        let bridge = BridgeProcess::start(&directory, &spec);
        let mut slave_arguments = ea_arguments(
            spec.executor,
            &bridge.url(),
            SLAVE_KEY,
            spec.slave_login,
            &directory.join("slave-files"),
            &directory.join("slave-book.txt"),
        );
        slave_arguments.extend(["--suffix".to_string(), SUFFIX.to_string()]);
        if spec.netting {
            slave_arguments.push("--netting".to_string());
        }
        let mut master_arguments = ea_arguments(
            spec.monitor,
            &bridge.url(),
            MASTER_KEY,
            spec.master_login,
            &directory.join("master-files"),
            &directory.join("master-book.txt"),
        );
        master_arguments.extend(["--first-ticket".to_string(), spec.master_first_ticket.to_string()]);
        let slave = EaHost::spawn("slave", slave_arguments, directory.join("slave.log"));
        let master = EaHost::spawn("master", master_arguments, directory.join("master.log"));
        Session {
            spec,
            directory,
            bridge,
            master,
            slave,
            model: Model::default(),
            master_positions: BTreeMap::new(),
            master_orders: BTreeMap::new(),
            slave_quotes_missed: None,
        }
    }

    fn tag(&self, pos: u64) -> String {
        format!("tc:{}:{pos}", self.spec.master_login)
    }

    /// Both books, the differences and every log's tail, for a failure.
    fn report(&mut self, what: &str, differences: &[String]) -> String {
        let master = self.master.command("dump").join("\n");
        let slave = self.slave.command("dump").join("\n");
        format!(
            "{}: {what}\n--- differences\n{}\n--- master book\n{master}\n--- slave book\n{slave}\n--- bridge log\n{}\n--- master EA log\n{}\n--- slave EA log\n{}",
            self.spec.name,
            differences.join("\n"),
            log_tail(&self.bridge.log, LOG_TAIL_LINES),
            log_tail(&self.master.log, LOG_TAIL_LINES),
            log_tail(&self.slave.log, LOG_TAIL_LINES)
        )
    }

    /// Polls the slave until it holds exactly the model.
    fn wait_slave_matches(&mut self, step: &str) {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let book = self.slave.book();
            let differences = self.model.differences(&book);
            if differences.is_empty() {
                let waited = WAIT_MAX.saturating_sub(deadline.saturating_duration_since(Instant::now()));
                eprintln!("{}: slave matched after {step} in {waited:?}", self.spec.name);
                return;
            }
            if Instant::now() >= deadline {
                let report = self.report(
                    &format!("after {step}, the slave does not hold what the follow rules say within {WAIT_MAX:?}"),
                    &differences,
                );
                panic!("{report}");
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Polls the Monitor's outbox until the bridge acknowledged every event
    /// (each is then durable and routed); `sync` first, so the Monitor has
    /// seen every trade made before.
    fn wait_master_acknowledged(&mut self, step: &str) {
        assert!(self.master.command("sync").is_empty());
        let outbox = self
            .directory
            .join("master-files")
            .join(format!("TradeBridge_outbox_{}.log", self.spec.master_login));
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let text = std::fs::read_to_string(&outbox).unwrap_or_default();
            if outbox_fully_acknowledged(&text) {
                return;
            }
            if Instant::now() >= deadline {
                let report = self.report(
                    &format!("after {step}, the bridge did not acknowledge every event within {WAIT_MAX:?}"),
                    &[text],
                );
                panic!("{report}");
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Opens a master position; the slave must hold its copy.
    fn open(&mut self, symbol: &str, side: &str, volume: f64) -> u64 {
        let answer = self.master.trade(&format!("open {symbol} {side} {volume}"));
        let pos: u64 = answer
            .strip_prefix("position ")
            .and_then(|text| text.parse().ok())
            .expect("position id");
        let slave_volume = round_to_step(volume * MULTIPLIER);
        let expected = Expected {
            symbol: format!("{symbol}{SUFFIX}"),
            side: side.to_string(),
            volume: slave_volume,
            price: 0.0,
            sl: 0.0,
            tp: 0.0,
        };
        self.model.positions.insert(self.tag(pos), expected);
        let master = MasterPosition {
            symbol: symbol.to_string(),
            volume_opened: volume,
            volume_now: volume,
            slave_volume_opened: slave_volume,
        };
        self.master_positions.insert(pos, master);
        pos
    }

    /// The master's current ticket for `pos` (MT4 renames partial closes).
    fn master_ticket(&mut self, symbol: &str) -> u64 {
        let book = self.master.book();
        book.ticket_on(symbol)
            .unwrap_or_else(|| panic!("the master holds nothing on {symbol}:\n{}", book.text))
    }

    /// Closes `volume` of a master position; the slave's copy keeps the
    /// proportional rest (rounded to the step, at least the minimum until
    /// the master's final close).
    fn close(&mut self, pos: u64, volume: f64) {
        let master = self
            .master_positions
            .get(&pos)
            .expect("a known master position")
            .clone();
        let ticket = self.master_ticket(&master.symbol);
        self.master.trade(&format!("close {ticket} {volume}"));
        let remaining = master.volume_now - volume;
        let tag = self.tag(pos);
        if remaining < EPSILON {
            self.master_positions.remove(&pos);
            self.model.positions.remove(&tag);
            return;
        }
        let target = round_to_step(master.slave_volume_opened * remaining / master.volume_opened).max(VOLUME_STEP);
        self.master_positions.get_mut(&pos).expect("known").volume_now = remaining;
        // A copy the slave closed by hand stays closed.
        if let Some(copy) = self.model.positions.get_mut(&tag) {
            copy.volume = target;
        }
    }

    /// Moves a master position's stops; the copy's follow.
    fn modify(&mut self, pos: u64, sl: f64, tp: f64) {
        let symbol = self.master_positions[&pos].symbol.clone();
        let ticket = self.master_ticket(&symbol);
        self.master.trade(&format!("modify {ticket} {sl} {tp}"));
        let tag = self.tag(pos);
        if let Some(copy) = self.model.positions.get_mut(&tag) {
            (copy.sl, copy.tp) = (sl, tp);
        }
    }

    /// Places a master pending order; the slave must hold its copy.
    fn pending(&mut self, symbol: &str, side: &str, volume: f64, price: f64) -> u64 {
        let answer = self.master.trade(&format!("pending {symbol} {side} {volume} {price}"));
        let pos: u64 = answer
            .strip_prefix("order ")
            .and_then(|text| text.parse().ok())
            .expect("order ticket");
        let slave_volume = round_to_step(volume * MULTIPLIER);
        let expected = Expected {
            symbol: format!("{symbol}{SUFFIX}"),
            side: side.to_string(),
            volume: slave_volume,
            price,
            sl: 0.0,
            tp: 0.0,
        };
        self.model.orders.insert(self.tag(pos), expected);
        self.master_orders.insert(pos, symbol.to_string());
        pos
    }

    /// Moves a master pending order's trigger and stops.
    fn move_order(&mut self, pos: u64, price: f64, sl: f64, tp: f64) {
        self.master.trade(&format!("move {pos} {price} {sl} {tp}"));
        let tag = self.tag(pos);
        let copy = self.model.orders.get_mut(&tag).expect("a copied order in the model");
        (copy.price, copy.sl, copy.tp) = (price, sl, tp);
    }

    /// Deletes a master pending order; the copy goes too.
    fn cancel(&mut self, pos: u64) {
        self.master.trade(&format!("cancel {pos}"));
        self.master_orders.remove(&pos);
        let tag = self.tag(pos);
        self.model.orders.remove(&tag);
    }

    /// The market moves on both terminals; pending orders it reaches fill on
    /// each, and the copied order becomes the copied position.
    fn quote(&mut self, symbol: &str, bid: f64, ask: f64) {
        for line in self.master.command(&format!("quote {symbol} {bid} {ask}")) {
            let pos: u64 = line
                .strip_prefix("filled ")
                .and_then(|text| text.parse().ok())
                .expect("a filled order");
            let master_symbol = self.master_orders.remove(&pos).expect("a known master order filled");
            let tag = self.tag(pos);
            let order = self.model.orders.remove(&tag).expect("a copied order in the model");
            let side = if order.side.starts_with("buy") { "buy" } else { "sell" };
            let master_volume = order.volume / MULTIPLIER;
            let master = MasterPosition {
                symbol: master_symbol,
                volume_opened: master_volume,
                volume_now: master_volume,
                slave_volume_opened: order.volume,
            };
            self.master_positions.insert(pos, master);
            self.model.positions.insert(
                tag,
                Expected {
                    side: side.to_string(),
                    price: 0.0,
                    ..order
                },
            );
        }
        let slave_quote = format!("quote {symbol}{SUFFIX} {bid} {ask}");
        match self.slave_quotes_missed.as_mut() {
            Some(missed) => missed.push(slave_quote),
            None => {
                self.slave.command(&slave_quote);
            }
        }
    }

    /// SIGKILL the slave terminal; its Files folder and broker book stay.
    fn kill_slave(&mut self) {
        self.slave.kill();
        self.slave_quotes_missed = Some(Vec::new());
    }

    /// Starts the slave terminal again, logged out at first ([`LATE_LOGIN`]),
    /// moves its market as it moved while it was down (its broker fills the
    /// orders that reaches), then attaches the Executor, which must wait for
    /// the login and the book before it trades or says hello.
    fn restart_slave(&mut self) {
        let mut extra = vec!["--stopped"];
        extra.extend_from_slice(LATE_LOGIN);
        self.slave.restart_with(&extra);
        for quote in self.slave_quotes_missed.take().unwrap_or_default() {
            self.slave.command(&quote);
        }
        assert_eq!(self.slave.command("start"), vec!["init 0".to_string()]);
    }

    /// The slave terminal loses its trade server link while the master
    /// trades: its copies reach the Executor and must wait there, not be
    /// refused and counted as done; once the link is back, they run.
    fn slave_broker_outage(&mut self, trades_while_down: impl FnOnce(&mut Session)) {
        let held = self.slave.book().text;
        assert!(self.slave.command("disconnect").is_empty());
        trades_while_down(self);
        self.wait_master_acknowledged("trades while the slave's broker is away");
        // Long enough for a copy to arrive and, before the fix, be refused.
        std::thread::sleep(STABLE_WINDOW);
        let during = self.slave.book().text;
        if during != held {
            let report = self.report("the slave traded while its terminal was not connected", &[during]);
            panic!("{report}");
        }
        assert!(self.slave.command("connect").is_empty());
    }

    /// SIGKILL the bridge and start it again on the same journal and port.
    fn restart_bridge_after<R>(&mut self, trades_while_down: impl FnOnce(&mut Session) -> R) -> R {
        self.bridge.kill();
        let made = trades_while_down(self);
        self.bridge.spawn();
        made
    }

    /// The slave's trader closes the copy of `pos` by hand (as a stop-loss
    /// would): the bridge must take it as closed and never open it again.
    fn slave_closes_copy(&mut self, pos: u64) {
        let tag = self.tag(pos);
        let book = self.slave.book();
        let copy = book
            .positions
            .iter()
            .find(|entry| tag_of_comment(&entry.origin).as_deref() == Some(tag.as_str()));
        let copy = copy
            .unwrap_or_else(|| panic!("the slave holds no copy tagged {tag}:\n{}", book.text))
            .clone();
        self.slave.trade(&format!("close {} {}", copy.ticket, copy.volume));
        self.model.positions.remove(&tag);
    }

    /// Drops both connections once more, so the bridge reconciles the
    /// master's snapshot and the slave's state again, then checks that the
    /// slave still holds exactly the model over STABLE_WINDOW: a copy the
    /// reconciliation re-opened or closed by mistake would show within it.
    fn reconcile_and_check_stable(&mut self) {
        assert_eq!(self.master.command("drop").len(), 1);
        assert_eq!(self.slave.command("drop").len(), 1);
        self.wait_master_acknowledged("a last reconnect");
        self.wait_slave_matches("a last reconnect");
        let until = Instant::now() + STABLE_WINDOW;
        while Instant::now() < until {
            let differences = self.model.differences(&self.slave.book());
            if !differences.is_empty() {
                let report = self.report("the slave changed after reconciliation", &differences);
                panic!("{report}");
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

/// True when every event line (`E`) of a Monitor outbox is numbered and at
/// or below the highest acknowledgement (`A`). See Outbox.mqh.
fn outbox_fully_acknowledged(text: &str) -> bool {
    let mut acknowledged = 0u64;
    let mut highest_event = 0u64;
    for line in text.lines() {
        if let Some(seq) = line.strip_prefix("A ") {
            acknowledged = acknowledged.max(seq.trim().parse().unwrap_or(0));
        } else if let Some(json) = line.strip_prefix("E ") {
            let seq = json
                .split("\"seq\":")
                .nth(1)
                .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>());
            match seq.and_then(|digits| digits.parse::<u64>().ok()) {
                Some(seq) if seq > 0 => highest_event = highest_event.max(seq),
                _ => return false,
            }
        }
    }
    highest_event <= acknowledged
}

/// The scripted session every pair runs; see the steps' comments. The
/// script keeps one master position or order per symbol, so a netting
/// slave holds one position per copy too.
fn run_session(spec: PairSpec) {
    let mut session = Session::start(spec);
    // Live: opens, stops, a partial close, a pending order placed, moved and deleted, another placed.
    let p1 = session.open("EURUSD", "buy", 0.3);
    let p2 = session.open("USDJPY", "sell", 0.2);
    session.wait_slave_matches("two opens");
    session.modify(p1, 1.07, 1.09);
    session.close(p1, 0.1);
    let o1 = session.pending("GBPUSD", "buy_limit", 0.1, 1.25);
    session.wait_slave_matches("a modify, a partial close and a pending order");
    session.move_order(o1, 1.255, 1.24, 1.28);
    session.wait_slave_matches("a pending order moved");
    session.cancel(o1);
    let o2 = session.pending("XAUUSD", "buy_limit", 0.05, 1980.0);
    session.wait_slave_matches("a pending order deleted and another placed");
    // Dropped connections: both EAs lose their sockets; a modify made meanwhile still arrives.
    assert_eq!(session.master.command("drop").len(), 1);
    session.modify(p2, 152.5, 150.0);
    assert_eq!(session.slave.command("drop").len(), 1);
    session.wait_slave_matches("both connections dropped");
    // The bridge dies (SIGKILL) while the master opens, closes and its pending order fills; it restarts on its journal.
    let p3 = session.restart_bridge_after(|session| {
        let p3 = session.open("AUDUSD", "sell", 0.1);
        session.close(p2, 0.2);
        session.quote("XAUUSD", 1979.5, 1979.8);
        p3
    });
    let o3 = session.pending("USDJPY", "sell_limit", 0.1, 152.0);
    session.wait_slave_matches("a bridge kill -9 and restart");
    let o5 = session.pending("NZDUSD", "sell_limit", 0.1, 0.615);
    let o6 = session.pending("USDCAD", "buy_stop", 0.1, 1.36);
    session.wait_slave_matches("two more pending orders");
    // The slave's broker link goes down while the master moves stops and closes part of a position: the copies wait
    // in the Executor and run once the link is back.
    session.slave_broker_outage(|session| {
        session.modify(p1, 1.071, 1.091);
        session.close(p3, 0.02);
    });
    session.wait_slave_matches("the slave's broker link back");
    // The slave terminal dies (SIGKILL); copies are routed while it is down and replayed when it is back, to a
    // terminal that logs in only after the Executor has started.
    session.kill_slave();
    let p5 = session.open("USDCHF", "buy", 0.5);
    session.close(p3, 0.05);
    session.modify(o2, 1970.0, 1995.0);
    session.wait_master_acknowledged("trades while the slave is down");
    // The Monitor restarts; what the master did meanwhile (stops moved, an open, a partial close, pending orders
    // deleted, placed, moved and filled) reaches the bridge through its snapshot only.
    assert!(session.master.command("stop").is_empty());
    session.modify(p1, 1.075, 1.095);
    let p6 = session.open("GBPUSD", "sell", 0.2);
    session.cancel(o3);
    let o4 = session.pending("USDJPY", "buy_stop", 0.1, 153.0);
    session.close(p3, 0.02);
    session.move_order(o5, 0.616, 0.62, 0.6);
    session.quote("USDCAD", 1.3605, 1.3606);
    assert_eq!(session.master.command("start"), vec!["init 0".to_string()]);
    session.restart_slave();
    session.wait_slave_matches("the Executor killed and restarted, the Monitor restarted");
    // The slave closes a copy by hand: it stays closed, whatever the master does to the position after.
    session.slave_closes_copy(p6);
    session.modify(p6, 1.28, 1.25);
    // After all that, closes and cancels still find their copies.
    session.close(p5, 0.5);
    session.close(o2, 0.05);
    session.cancel(o4);
    session.cancel(o5);
    session.close(o6, 0.1);
    session.wait_slave_matches("closes after the restarts");
    // The master terminal dies (SIGKILL) right after a trade, before or after its Monitor saw it, and comes back
    // logging in late; the outbox or the snapshot after the restart carries the trade, once.
    let p7 = session.open("XAUUSD", "sell", 0.1);
    session.close(p1, 0.2);
    session.master.restart_with(LATE_LOGIN);
    session.master.wait_logged_in();
    session.wait_slave_matches("the master terminal killed right after trading");
    session.close(p7, 0.1);
    session.wait_slave_matches("a close after the master's restart");
    session.reconcile_and_check_stable();
    finish(session);
}

/// Stops every process of a passed session and removes its folder
/// (TB_E2E_KEEP=1 keeps the logs, books and journal).
fn finish(session: Session) {
    let directory = session.directory.clone();
    drop(session);
    if std::env::var_os("TB_E2E_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(directory);
    }
}

#[test]
fn mt5_monitor_to_mt5_executor() {
    // Shows: MT5 master -> MT5 hedging slave (x2 lots, ".m" symbols) ends with exactly the follow's positions and orders, each opened once, through drops, a bridge kill -9, an Executor kill -9 and a Monitor restart.
    run_session(PairSpec {
        name: "mt5-mt5",
        monitor: "monitor5",
        executor: "executor5",
        netting: false,
        master_login: 51234567,
        master_first_ticket: 9001,
        slave_login: 2002,
    });
}

#[test]
fn mt4_monitor_to_mt4_executor() {
    // Shows: MT4 master -> MT4 slave ends with exactly the follow's positions and orders, each opened once, though MT4 renames partially closed tickets on both sides ("from #N"), through drops, a bridge kill -9 and both EAs restarting.
    run_session(PairSpec {
        name: "mt4-mt4",
        monitor: "monitor4",
        executor: "executor4",
        netting: false,
        master_login: 1001,
        master_first_ticket: 9001,
        slave_login: 2002,
    });
}

#[test]
fn mt4_monitor_to_mt5_netting_executor() {
    // Shows: an MT4 master copied onto an MT5 netting slave (one position per symbol, closes as opposite deals) ends with exactly the follow's positions, each opened once.
    run_session(PairSpec {
        name: "mt4-mt5-netting",
        monitor: "monitor4",
        executor: "executor5",
        netting: true,
        master_login: 2147480001,
        master_first_ticket: 9001,
        slave_login: 2002,
    });
}

#[test]
fn mt5_monitor_to_mt4_executor_with_tags_longer_than_a_comment() {
    // Shows: with a 19-digit master login and 10-digit position ids the tag (33 characters) no longer fits the 31 characters MT4 keeps of a comment, and the MT4 slave still holds exactly one copy of each position, found again after its restart.
    run_session(PairSpec {
        name: "mt5-mt4-long-tags",
        monitor: "monitor5",
        executor: "executor4",
        netting: false,
        master_login: 9000000000000000001,
        master_first_ticket: 5000000001,
        slave_login: 2002,
    });
}

#[test]
fn pending_order_filled_while_the_slave_was_down_reaches_the_slave() {
    // Shows: a master pending order placed and filled while the slave terminal is down ends as the copied position on the slave: the bridge replays the `pending` copy, the slave's broker refuses it (its market is past the trigger: retcode 10015), and the engine then opens the copy at market (within max_dev of the master's fill).
    let mut session = Session::start(PairSpec {
        name: "pending-filled-while-slave-down",
        monitor: "monitor5",
        executor: "executor5",
        netting: false,
        master_login: 51234567,
        master_first_ticket: 9001,
        slave_login: 2002,
    });
    session.open("EURUSD", "buy", 0.1);
    session.wait_slave_matches("an open");
    session.kill_slave();
    session.pending("USDCAD", "buy_stop", 0.1, 1.36);
    session.quote("USDCAD", 1.3605, 1.3606);
    session.wait_master_acknowledged("a pending order placed and filled while the slave is down");
    session.restart_slave();
    session.wait_slave_matches("the slave back after the master's pending order filled");
    finish(session);
}
