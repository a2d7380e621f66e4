//! No peer input crashes the engine: random sequences of master events and
//! snapshots, slave states (with hostile symbols, volumes and contract
//! sizes) and results, under random follow rules and account limits. After
//! every step the slaves' open-copy counters must match the ledger, the open
//! positions must stay within their bound, and every instruction must be
//! well formed. Ported from the reviewer's throwaway fuzz, with the inputs
//! it had to leave out (empty and stripped-to-nothing symbols, tiny and
//! huge contract sizes, zero-volume tags) put back in.
//!
//! 256 cases by default; `ENGINE_FUZZ_CASES=20000 cargo test -p
//! tradebridge-core --test engine_fuzz` runs more.

mod engine_support;

use engine_support::*;
use proptest::prelude::*;
use tradebridge_core::config::Config;
use tradebridge_core::engine::{CopyInstruction, Engine, Outcome};
use tradebridge_core::protocol::{CopyAction, EventKind, ResultStatus, Side, TradeResult};

/// Master position ids the fuzz uses; the invariant checks walk them all.
const POSITIONS: [u64; 3] = [1, 2, 3];

/// Volumes, from ordinary to hostile.
const VOLUMES: [f64; 13] = [
    0.0,
    0.01,
    0.1,
    0.5,
    1.0,
    1e-9,
    5e-9,
    1e308,
    f64::NAN,
    f64::INFINITY,
    -1.0,
    0.03,
    0.07,
];

/// Prices, stops and take-profits, from ordinary to hostile.
const PRICES: [f64; 7] = [1.1, 0.0, 1.09, 1.12, f64::NAN, 1e308, -1.0];

const SIDES: [Side; 6] = [
    Side::Buy,
    Side::Sell,
    Side::BuyLimit,
    Side::SellLimit,
    Side::BuyStop,
    Side::SellStop,
];

/// Master symbols: "-ecn" maps to "" under the strip rule below, "" is invalid.
const MASTER_SYMBOLS: [&str; 4] = ["EURUSD", "XAUUSD", "-ecn", ""];

/// Symbols on slave tags, "" included.
const TAG_SYMBOLS: [&str; 3] = ["EURUSD", "XAUUSD", ""];

/// Slave contract sizes: ordinary, unknown (0), and out of every bound.
const CONTRACTS: [f64; 6] = [100.0, 0.0, f64::NAN, 1e-307, 1e300, -1.0];

const FOLLOW_RULES: [&str; 7] = [
    "",
    "reverse = true",
    "lot = { mode = \"risk_percent\", value = 1.0 }",
    "lot = { mode = \"balance_ratio\", value = 1.0 }\nbelow_min = \"min\"",
    "copy_pending = false\nmax_lot = 0.05",
    "strip_suffix = \"-ecn\"",
    "lot = { mode = \"multiplier\", value = 0.01 }\nmode = \"frozen\"",
];

const SLAVE_KEYS: [&str; 4] = [
    "",
    "max_positions = 2\non_limit = \"close_all\"\nequity_floor = 900.0",
    "daily_loss_money = 50.0\non_limit = \"close_all\"",
    "mode = \"close_only\"",
];

/// One input to the engine.
#[derive(Clone, Debug)]
enum Step {
    /// A master event: kind, position, symbol, side (or none), volume,
    /// price, stops, and `remaining` (or none).
    Event {
        kind: EventKind,
        pos: u64,
        symbol: &'static str,
        side: Option<Side>,
        volume: f64,
        price: f64,
        sl: f64,
        tp: f64,
        remaining: Option<f64>,
    },
    /// A master snapshot: (pos, side, volume, price, stop) entries, balance.
    Snapshot {
        entries: Vec<(u64, Side, f64, f64, f64)>,
        balance: f64,
    },
    /// A slave state: which slave, tagged (pos, symbol, side, volume)
    /// entries, figures, and maybe an XAUUSD spec (min, step, contract).
    State {
        second_slave: bool,
        tags: Vec<(u64, &'static str, Side, f64)>,
        balance: f64,
        equity: f64,
        spec: Option<(f64, f64, f64)>,
    },
    /// The result of one instruction sent so far (index modulo their count).
    Result {
        pick: usize,
        status: ResultStatus,
        ticket: u64,
        volume: f64,
    },
}

const KINDS: [EventKind; 5] = [
    EventKind::Open,
    EventKind::Pending,
    EventKind::Close,
    EventKind::Modify,
    EventKind::Cancel,
];

const STATUSES: [ResultStatus; 3] = [
    ResultStatus::Filled,
    ResultStatus::Rejected,
    ResultStatus::Skipped,
];

fn event_step() -> impl Strategy<Value = Step> {
    (
        (
            prop::sample::select(&KINDS[..]),
            prop::sample::select(&POSITIONS[..]),
        ),
        prop::sample::select(&MASTER_SYMBOLS[..]),
        prop::option::weighted(0.8, prop::sample::select(&SIDES[..])),
        prop::sample::select(&VOLUMES[..]),
        prop::array::uniform3(prop::sample::select(&PRICES[..])),
        prop::option::of(prop::sample::select(&VOLUMES[..])),
    )
        .prop_map(
            |((kind, pos), symbol, side, volume, [price, sl, tp], remaining)| Step::Event {
                kind,
                pos,
                symbol,
                side,
                volume,
                price,
                sl,
                tp,
                remaining,
            },
        )
}

fn snapshot_step() -> impl Strategy<Value = Step> {
    let entry = (
        prop::sample::select(&POSITIONS[..]),
        prop::sample::select(&SIDES[..]),
        prop::sample::select(&VOLUMES[..]),
        prop::sample::select(&PRICES[..]),
        prop::sample::select(&PRICES[..]),
    );
    (
        prop::collection::vec(entry, 0..3),
        prop::sample::select(vec![1e4, 0.0, f64::NAN, 1e-300]),
    )
        .prop_map(|(entries, balance)| Step::Snapshot { entries, balance })
}

fn state_step() -> impl Strategy<Value = Step> {
    let tag = (
        prop::sample::select(&POSITIONS[..]),
        prop::sample::select(&TAG_SYMBOLS[..]),
        prop::sample::select(&SIDES[..]),
        prop::sample::select(vec![0.01, 0.1, 0.5, 1.0, 0.03, 0.0, f64::NAN, -0.1, 1e308]),
    );
    let spec = (
        prop::sample::select(vec![0.01, 0.1, 1.0]),
        prop::sample::select(vec![0.01, 0.1]),
        prop::sample::select(&CONTRACTS[..]),
    );
    (
        any::<bool>(),
        prop::collection::vec(tag, 0..3),
        prop::sample::select(vec![1e3, 0.0, -5.0, f64::NAN]),
        prop::sample::select(vec![1e3, 850.0, 0.0]),
        prop::option::of(spec),
    )
        .prop_map(|(second_slave, tags, balance, equity, spec)| Step::State {
            second_slave,
            tags,
            balance,
            equity,
            spec,
        })
}

fn result_step() -> impl Strategy<Value = Step> {
    (
        any::<usize>(),
        prop::sample::select(&STATUSES[..]),
        prop::sample::select(vec![0u64, 7]),
        prop::sample::select(&VOLUMES[..]),
    )
        .prop_map(|(pick, status, ticket, volume)| Step::Result {
            pick,
            status,
            ticket,
            volume,
        })
}

/// A step and the milliseconds elapsed before it.
fn timed_step() -> impl Strategy<Value = (u64, Step)> {
    (
        prop::sample::select(vec![0u64, 1, 1_000, 20_000, 120_000]),
        prop_oneof![
            2 => event_step(),
            1 => snapshot_step(),
            2 => state_step(),
            2 => result_step(),
        ],
    )
}

/// Two follows of MASTER with the given rules, slave keys, and small
/// ledger bounds so that `ledger_full` and eviction are reached.
fn fuzz_config(rules: [&str; 2], keys: [&str; 2], positions_max: u32, closed_max: u32) -> Config {
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n{}\n\
         [[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\n{}\n",
        rules[0], rules[1]
    );
    let mut config = config_with(keys[0], keys[1], &follows);
    config.server.positions_per_master_max = positions_max;
    config.server.closed_positions_remembered_max = closed_max;
    config
}

/// Feeds one step to the engine; returns the instructions it produced.
fn run_step(
    engine: &mut Engine,
    step: &Step,
    sent: &mut Vec<(u64, CopyInstruction)>,
    now_ms: u64,
) -> Vec<(u64, CopyInstruction)> {
    let mut out = Vec::new();
    match step {
        Step::Event {
            kind,
            pos,
            symbol,
            side,
            volume,
            price,
            sl,
            tp,
            remaining,
        } => {
            let mut event = open_on(*pos, symbol, Side::Buy, *volume);
            (event.kind, event.side, event.price, event.sl, event.tp) =
                (*kind, *side, *price, *sl, *tp);
            event.remaining = *remaining;
            engine.on_master_event(MASTER, &event, now_ms, &mut out);
        }
        Step::Snapshot { entries, balance } => {
            let positions = entries
                .iter()
                .map(|(pos, side, volume, price, stop)| {
                    let mut entry = snapshot_position(*pos, *side, *volume, *stop, *stop);
                    entry.price = *price;
                    entry
                })
                .collect();
            engine.on_master_snapshot(
                MASTER,
                &snapshot(positions, *balance, 1e4),
                now_ms,
                &mut out,
            );
        }
        Step::State {
            second_slave,
            tags,
            balance,
            equity,
            spec: xau,
        } => {
            let slave = if *second_slave { SLAVE_B } else { SLAVE_A };
            let positions = tags
                .iter()
                .map(|(pos, symbol, side, volume)| tagged(MASTER, *pos, symbol, *side, *volume))
                .collect();
            let symbols = xau.map(|(min, step, contract)| {
                vec![fx("EURUSD"), spec("XAUUSD", min, 100.0, step, 2, contract)]
            });
            engine.on_slave_state(
                slave,
                &state(*balance, *equity, positions, symbols),
                now_ms,
                &mut out,
            );
        }
        Step::Result {
            pick,
            status,
            ticket,
            volume,
        } => {
            if !sent.is_empty() {
                let (slave, instruction) = sent.remove(pick % sent.len());
                let result = TradeResult {
                    seq: 1,
                    status: *status,
                    ticket: *ticket,
                    price: 1.1,
                    volume: *volume,
                    error: 0,
                    msg: String::new(),
                    exec_ms: 1,
                };
                engine.on_slave_result(slave, &instruction, &result, now_ms, &mut Vec::new());
            }
        }
    }
    out.into_iter()
        .filter_map(|decision| match decision.outcome {
            Outcome::Copy(instruction) => Some((decision.slave, instruction)),
            Outcome::Skip(_) => None,
        })
        .collect()
}

/// The invariants every step must keep.
fn check(
    engine: &Engine,
    produced: &[(u64, CopyInstruction)],
    positions_max: u32,
) -> Result<(), TestCaseError> {
    for slave in [SLAVE_A, SLAVE_B] {
        let counted = POSITIONS
            .iter()
            .filter(|pos| {
                engine
                    .copy_status(MASTER, **pos, slave)
                    .is_some_and(|status| status.is_active())
            })
            .count() as u32;
        prop_assert_eq!(
            engine.active_copies(slave),
            counted,
            "slave {}: counter against ledger",
            slave
        );
    }
    prop_assert!(engine.open_position_count(MASTER) <= positions_max as usize);
    for (_, instruction) in produced {
        prop_assert!(
            instruction.volume.is_finite() && instruction.volume >= 0.0,
            "{:?}",
            instruction
        );
        let sized = matches!(
            instruction.action,
            CopyAction::Open | CopyAction::Pending | CopyAction::Close
        );
        prop_assert!(!sized || instruction.volume > 0.0, "{:?}", instruction);
        prop_assert!(!instruction.symbol.is_empty(), "{:?}", instruction);
        prop_assert_eq!(
            &instruction.comment,
            &format!("tc:{MASTER}:{}", instruction.pos)
        );
    }
    Ok(())
}

/// Cases per run: 256, or `ENGINE_FUZZ_CASES`.
fn cases() -> u32 {
    std::env::var("ENGINE_FUZZ_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics_and_counters_stay_exact(
        rules in prop::array::uniform2(prop::sample::select(&FOLLOW_RULES[..])),
        keys in prop::array::uniform2(prop::sample::select(&SLAVE_KEYS[..])),
        positions_max in 1u32..=3,
        closed_max in 0u32..=3,
        steps in prop::collection::vec(timed_step(), 1..60),
    ) {
        // Shows that no sequence of hostile peer frames panics the engine, and that after every step the open-copy
        // counters equal the ledger's active copies, open positions stay bounded, and instructions are well formed.
        let mut engine = engine(&fuzz_config(rules, keys, positions_max, closed_max));
        let mut sent: Vec<(u64, CopyInstruction)> = Vec::new();
        let mut now_ms = NOON_MS;
        for (elapsed_ms, step) in &steps {
            now_ms += elapsed_ms;
            let produced = run_step(&mut engine, step, &mut sent, now_ms);
            check(&engine, &produced, positions_max)?;
            sent.extend(produced);
        }
    }
}

/// Serialized engine state: two engines are in the same state exactly when
/// these bytes are equal (every map is ordered, floats are written bit for
/// bit, NaN included).
fn state_bytes(engine: &Engine) -> Vec<u8> {
    tradebridge_core::checkpoint::encode(0, &engine.state(), 0).expect("the state serializes")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn a_checkpoint_restored_and_its_tail_replayed_equals_replaying_everything(
        rules in prop::array::uniform2(prop::sample::select(&FOLLOW_RULES[..])),
        keys in prop::array::uniform2(prop::sample::select(&SLAVE_KEYS[..])),
        positions_max in 1u32..=3,
        closed_max in 0u32..=3,
        steps in prop::collection::vec(timed_step(), 1..60),
        split in any::<prop::sample::Index>(),
        following in event_step(),
    ) {
        // Shows that a checkpoint taken mid-sequence, restored into a fresh engine with the tail replayed, gives the same state and the same copies for each tail step and a following event as replaying every step.
        let config = fuzz_config(rules, keys, positions_max, closed_max);
        let split = split.index(steps.len() + 1);
        let mut whole = engine(&config);
        let mut whole_sent: Vec<(u64, CopyInstruction)> = Vec::new();
        let mut head = engine(&config);
        let mut head_sent: Vec<(u64, CopyInstruction)> = Vec::new();
        let mut now_ms = NOON_MS;
        let mut whole_tail = Vec::new();
        for (index, (elapsed_ms, step)) in steps.iter().enumerate() {
            now_ms += elapsed_ms;
            let produced = run_step(&mut whole, step, &mut whole_sent, now_ms);
            whole_sent.extend(produced.clone());
            if index < split {
                let produced = run_step(&mut head, step, &mut head_sent, now_ms);
                head_sent.extend(produced);
            } else {
                whole_tail.push(produced);
            }
        }
        let bytes = tradebridge_core::checkpoint::encode(split as u64, &head.state(), 0).expect("the state serializes");
        drop(head);
        let (seq, state): (u64, tradebridge_core::engine::EngineState) =
            tradebridge_core::checkpoint::decode(&bytes).expect("the checkpoint reads back");
        prop_assert_eq!(seq, split as u64);
        let mut restored = engine(&config);
        let report = restored.restore(state);
        prop_assert_eq!(report, tradebridge_core::engine::RestoreReport::default());
        let mut restored_sent = head_sent;
        let mut now_ms = NOON_MS + steps[..split].iter().map(|(elapsed_ms, _)| elapsed_ms).sum::<u64>();
        for ((elapsed_ms, step), whole_produced) in steps[split..].iter().zip(&whole_tail) {
            now_ms += elapsed_ms;
            let produced = run_step(&mut restored, step, &mut restored_sent, now_ms);
            prop_assert_eq!(&produced, whole_produced);
            restored_sent.extend(produced);
        }
        prop_assert!(state_bytes(&restored) == state_bytes(&whole), "states differ after the tail");
        now_ms += 1_000;
        let after_whole = run_step(&mut whole, &following, &mut whole_sent, now_ms);
        let after_restored = run_step(&mut restored, &following, &mut restored_sent, now_ms);
        prop_assert_eq!(after_restored, after_whole);
        prop_assert!(state_bytes(&restored) == state_bytes(&whole), "states differ after the following event");
    }
}
