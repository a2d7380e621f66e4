//! Builders shared by the engine test files: configs from TOML text, master
//! events, snapshots, slave states and results.
#![allow(dead_code)]

use tradebridge_core::config::Config;
use tradebridge_core::engine::{CopyInstruction, Decision, Engine, Outcome, SkipReason};
use tradebridge_core::protocol::{
    Event, EventKind, ResultStatus, Side, Snapshot, SnapshotPosition, State, StatePosition,
    SymbolSpec, TradeResult,
};

/// Any 64 hex digits: the engine never looks at key hashes.
pub const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// Master logins used throughout.
pub const MASTER: u64 = 100_000;
pub const MASTER_2: u64 = 200_000;
/// Slave logins used throughout (SLAVE_A < SLAVE_B so decisions come in that order).
pub const SLAVE_A: u64 = 150_000;
pub const SLAVE_B: u64 = 160_000;

/// 2024-01-01 12:00 UTC, a Monday noon: inside any ordinary trading window.
pub const NOON_MS: u64 = 1_704_110_400_000;

/// A config with two masters and two slaves, plus `follows` (TOML text with
/// `[[follow]]` tables) and extra keys for the slave accounts.
pub fn config_with(slave_a_keys: &str, slave_b_keys: &str, follows: &str) -> Config {
    let source = format!(
        r#"[server]
listen = "127.0.0.1:8080"
journal_dir = "./data/journal"

[[account]]
login = {MASTER}
server = "Master-Server"
role = "master"
key_sha256 = "{KEY}"
contracts = {{ XAUUSD = 100.0 }}

[[account]]
login = {MASTER_2}
server = "Master-Server"
role = "master"
key_sha256 = "{KEY}"

[[account]]
login = {SLAVE_A}
server = "Slave-Server"
role = "slave"
key_sha256 = "{KEY}"
{slave_a_keys}

[[account]]
login = {SLAVE_B}
server = "Slave-Server"
role = "slave"
key_sha256 = "{KEY}"
{slave_b_keys}

{follows}
"#
    );
    Config::from_toml_str(&source).unwrap_or_else(|error| panic!("test config: {error}\n{source}"))
}

/// One follow of MASTER by SLAVE_A with the given extra rule lines.
pub fn one_follow(rules: &str) -> Config {
    config_with(
        "",
        "",
        &format!("[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n{rules}\n"),
    )
}

pub fn engine(config: &Config) -> Engine {
    Engine::new(config)
}

fn event(seq: u64, kind: EventKind, pos: u64) -> Event {
    Event {
        seq,
        kind,
        pos,
        ticket: pos,
        symbol: String::new(),
        side: None,
        volume: 0.0,
        price: 0.0,
        sl: 0.0,
        tp: 0.0,
        magic: 0,
        comment: String::new(),
        time_ms: 0,
        remaining: None,
    }
}

/// A market open on EURUSD at 1.1 with stops 1.09 / 1.12.
pub fn open(pos: u64, side: Side, volume: f64) -> Event {
    open_on(pos, "EURUSD", side, volume)
}

pub fn open_on(pos: u64, symbol: &str, side: Side, volume: f64) -> Event {
    let mut event = event(pos, EventKind::Open, pos);
    event.symbol = symbol.to_string();
    event.side = Some(side);
    event.volume = volume;
    event.price = 1.1;
    event.sl = if side.is_long() { 1.09 } else { 1.12 };
    event.tp = if side.is_long() { 1.12 } else { 1.09 };
    event
}

pub fn pending(pos: u64, side: Side, volume: f64, price: f64) -> Event {
    let mut event = open(pos, side, volume);
    event.kind = EventKind::Pending;
    event.price = price;
    event
}

/// A close of `volume`; `remaining` as the Monitor reports it (or not).
pub fn close(pos: u64, volume: f64, remaining: Option<f64>) -> Event {
    let mut event = event(pos, EventKind::Close, pos);
    event.volume = volume;
    event.price = 1.105;
    event.remaining = remaining;
    event
}

pub fn modify(pos: u64, sl: f64, tp: f64, price: f64) -> Event {
    let mut event = event(pos, EventKind::Modify, pos);
    event.sl = sl;
    event.tp = tp;
    event.price = price;
    event
}

pub fn cancel(pos: u64) -> Event {
    event(pos, EventKind::Cancel, pos)
}

pub fn snapshot_position(pos: u64, side: Side, volume: f64, sl: f64, tp: f64) -> SnapshotPosition {
    SnapshotPosition {
        pos,
        symbol: "EURUSD".to_string(),
        side,
        volume,
        price: 1.1,
        sl,
        tp,
        magic: 0,
        comment: String::new(),
    }
}

pub fn snapshot(positions: Vec<SnapshotPosition>, balance: f64, equity: f64) -> Snapshot {
    Snapshot {
        positions,
        balance,
        equity,
        currency: "USD".to_string(),
    }
}

pub fn spec(name: &str, min: f64, max: f64, step: f64, digits: u32, contract: f64) -> SymbolSpec {
    SymbolSpec {
        name: name.to_string(),
        min,
        max,
        step,
        digits,
        contract,
    }
}

/// The usual FX spec: min 0.01, max 100, step 0.01, 5 digits.
pub fn fx(name: &str) -> SymbolSpec {
    spec(name, 0.01, 100.0, 0.01, 5, 100_000.0)
}

/// A tagged slave position copying (master, pos).
pub fn tagged(master: u64, pos: u64, symbol: &str, side: Side, volume: f64) -> StatePosition {
    StatePosition {
        pos: 50_000 + pos,
        symbol: symbol.to_string(),
        side,
        volume,
        comment: format!("tc:{master}:{pos}"),
    }
}

pub fn state(
    balance: f64,
    equity: f64,
    positions: Vec<StatePosition>,
    symbols: Option<Vec<SymbolSpec>>,
) -> State {
    State {
        balance,
        equity,
        currency: "USD".to_string(),
        positions,
        symbols,
    }
}

pub fn result(status: ResultStatus, volume: f64) -> TradeResult {
    let ticket = if status == ResultStatus::Filled {
        77
    } else {
        0
    };
    TradeResult {
        seq: 1,
        status,
        ticket,
        price: 1.1,
        volume,
        error: 0,
        msg: String::new(),
        exec_ms: 5,
    }
}

pub fn filled(volume: f64) -> TradeResult {
    result(ResultStatus::Filled, volume)
}

pub fn rejected() -> TradeResult {
    result(ResultStatus::Rejected, 0.0)
}

/// The instruction of a decision that must be a copy.
pub fn copy_of(decision: &Decision) -> &CopyInstruction {
    match &decision.outcome {
        Outcome::Copy(instruction) => instruction,
        Outcome::Skip(reason) => panic!("expected a copy, got skip {reason} in {decision:?}"),
    }
}

/// The reason of a decision that must be a skip.
pub fn skip_of(decision: &Decision) -> SkipReason {
    match &decision.outcome {
        Outcome::Skip(reason) => *reason,
        Outcome::Copy(instruction) => panic!("expected a skip, got copy {instruction:?}"),
    }
}

/// Runs a master event and returns its decisions.
pub fn on_event(engine: &mut Engine, master: u64, event: &Event, now_ms: u64) -> Vec<Decision> {
    let mut out = Vec::new();
    engine.on_master_event(master, event, now_ms, &mut out);
    out
}

pub fn on_snapshot(
    engine: &mut Engine,
    master: u64,
    snapshot: &Snapshot,
    now_ms: u64,
) -> Vec<Decision> {
    let mut out = Vec::new();
    engine.on_master_snapshot(master, snapshot, now_ms, &mut out);
    out
}

pub fn on_state(engine: &mut Engine, slave: u64, state: &State, now_ms: u64) -> Vec<Decision> {
    let mut out = Vec::new();
    engine.on_slave_state(slave, state, now_ms, &mut out);
    out
}

/// Feeds back a result that does exactly what the instruction asked.
pub fn fill_exactly(engine: &mut Engine, decision: &Decision, now_ms: u64) {
    let instruction = copy_of(decision);
    engine.on_slave_result(
        decision.slave,
        instruction,
        &filled(instruction.volume),
        now_ms,
        &mut Vec::new(),
    );
}
