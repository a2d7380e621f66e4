//! One master `open` fanned out to 100 followers with mixed rules
//! (multiplier, balance ratio, symbol map, filters), then the matching
//! close. Each measured call is timed alone; the untimed rest of the
//! lifecycle (the other event and the slaves' results) keeps the ledger at
//! a steady size, so every iteration measures the same work.
//!
//! Run: `cargo bench -p tradebridge-core --bench engine`
//! (quicker: add `-- --warm-up-time 1 --measurement-time 3`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tradebridge_core::config::Config;
use tradebridge_core::engine::{Decision, Engine, Outcome};
use tradebridge_core::protocol::{
    Event, EventKind, ResultStatus, Side, Snapshot, State, SymbolSpec, TradeResult,
};

/// Followers of the one master.
const FOLLOWERS: u64 = 100;
const MASTER: u64 = 1_000;
const NOW_MS: u64 = 1_704_110_400_000;
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn config() -> Config {
    let mut source = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\njournal_dir = \"./j\"\n\n\
         [[account]]\nlogin = {MASTER}\nserver = \"M\"\nrole = \"master\"\nkey_sha256 = \"{KEY}\"\n"
    );
    for index in 0..FOLLOWERS {
        let slave = 10_000 + index;
        source.push_str(&format!(
            "\n[[account]]\nlogin = {slave}\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{KEY}\"\n"
        ));
        let rules = match index % 4 {
            0 => "lot = { mode = \"multiplier\", value = 1.5 }",
            1 => "lot = { mode = \"balance_ratio\", value = 1.0 }",
            2 => "symbol_map = { EURUSD = \"EURUSD.m\" }\nsymbols_deny = [\"BTCUSD\"]",
            _ => "magic_allow = [7, 42]\ncomment_contains = \"sig\"\ndirection = \"both\"\nmax_lot = 5.0",
        };
        source.push_str(&format!(
            "\n[[follow]]\nslave = {slave}\nmaster = {MASTER}\n{rules}\n"
        ));
    }
    Config::from_toml_str(&source).expect("bench config parses")
}

fn symbol(name: &str) -> SymbolSpec {
    SymbolSpec {
        name: name.to_string(),
        min: 0.01,
        max: 100.0,
        step: 0.01,
        digits: 5,
        contract: 100_000.0,
    }
}

fn ready_engine() -> Engine {
    let mut engine = Engine::new(&config());
    let mut out = Vec::new();
    let snapshot = Snapshot {
        positions: vec![],
        balance: 50_000.0,
        equity: 50_000.0,
        currency: "USD".into(),
    };
    engine.on_master_snapshot(MASTER, &snapshot, NOW_MS, &mut out);
    for index in 0..FOLLOWERS {
        let state = State {
            balance: 10_000.0,
            equity: 10_000.0,
            currency: "USD".into(),
            positions: vec![],
            symbols: Some(vec![symbol("EURUSD"), symbol("EURUSD.m"), symbol("GBPUSD")]),
        };
        engine.on_slave_state(10_000 + index, &state, NOW_MS, &mut out);
    }
    assert!(out.is_empty());
    engine
}

fn event(kind: EventKind, pos: u64) -> Event {
    Event {
        seq: pos,
        kind,
        pos,
        ticket: pos,
        symbol: "EURUSD".into(),
        side: Some(Side::Buy),
        volume: 1.0,
        price: 1.08123,
        sl: 1.079,
        tp: 1.086,
        magic: 42,
        comment: "sig-1".into(),
        time_ms: 0,
        remaining: Some(0.0),
    }
}

/// Feeds every copy's result back as filled exactly.
fn fill_all(engine: &mut Engine, decisions: &[Decision]) {
    for decision in decisions {
        if let Outcome::Copy(instruction) = &decision.outcome {
            let result = TradeResult {
                seq: 0,
                status: ResultStatus::Filled,
                ticket: 1,
                price: instruction.price,
                volume: instruction.volume,
                error: 0,
                msg: String::new(),
                exec_ms: 1,
            };
            engine.on_slave_result(decision.slave, instruction, &result, NOW_MS, &mut Vec::new());
        }
    }
}

/// Times `iterations` open+close lifecycles, counting only the open
/// (`time_open`) or only the close.
fn lifecycle(
    engine: &mut Engine,
    next_pos: &mut u64,
    iterations: u64,
    time_open: bool,
) -> Duration {
    let mut out = Vec::with_capacity(FOLLOWERS as usize);
    let mut measured = Duration::ZERO;
    for _ in 0..iterations {
        *next_pos += 1;
        let pos = *next_pos;
        out.clear();
        let start = Instant::now();
        engine.on_master_event(
            MASTER,
            black_box(&event(EventKind::Open, pos)),
            NOW_MS,
            &mut out,
        );
        if time_open {
            measured += start.elapsed();
        }
        assert_eq!(out.len() as u64, FOLLOWERS);
        fill_all(engine, &out);
        out.clear();
        let start = Instant::now();
        engine.on_master_event(
            MASTER,
            black_box(&event(EventKind::Close, pos)),
            NOW_MS,
            &mut out,
        );
        if !time_open {
            measured += start.elapsed();
        }
        fill_all(engine, &out);
    }
    measured
}

fn fan_out(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("engine_100_followers");
    // Elements are followers, so criterion also reports the per-follower rate.
    group.throughput(Throughput::Elements(FOLLOWERS));
    let mut engine = ready_engine();
    let mut next_pos = 0u64;
    group.bench_function("open", |bencher| {
        bencher.iter_custom(|iterations| lifecycle(&mut engine, &mut next_pos, iterations, true));
    });
    group.bench_function("close", |bencher| {
        bencher.iter_custom(|iterations| lifecycle(&mut engine, &mut next_pos, iterations, false));
    });
    group.finish();
    assert_eq!(engine.position_count(MASTER), 0, "every lifecycle settles");
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
