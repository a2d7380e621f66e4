//! Property tests of the engine as a whole: random opens and partial-close
//! sequences close exactly what was opened, and a snapshot and states that
//! mirror the ledger yield no decisions.

mod engine_support;

use std::collections::BTreeMap;

use engine_support::*;
use proptest::prelude::*;
use tradebridge_core::engine::lots::{lots_to_units, units_to_lots};
use tradebridge_core::engine::{Decision, Engine, Outcome};
use tradebridge_core::protocol::{CopyAction, EventKind, ResultStatus, Side};

/// Lot step, minimum in steps, and maximum in steps of a random slave symbol.
fn symbol_strategy() -> impl Strategy<Value = (f64, u64, u64)> {
    (
        prop::sample::select(vec![0.01, 0.1, 1.0]),
        1u64..=5,
        20u64..=5_000,
    )
}

fn units(lots: f64) -> u64 {
    lots_to_units(lots).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn partial_closes_sum_to_the_open(
        (step, min_steps, max_steps) in symbol_strategy(),
        multiplier in 0.05f64..10.0,
        master_steps in 1u64..2_000,
        fractions in prop::collection::vec(0.01f64..0.99, 0..10),
        tell_remaining in any::<bool>(),
        results_late in any::<bool>(),
    ) {
        // Shows that through the engine, with results arriving at once or late, every close is non-zero, within what
        // the slave holds, at least min unless final, at most max, and all closes sum to the filled open exactly.
        let min = step * min_steps as f64;
        let max = min * max_steps as f64;
        let mut engine = engine(&one_follow(&format!("lot = {{ mode = \"multiplier\", value = {multiplier} }}")));
        let symbols = vec![spec("EURUSD", min, max, step, 5, 100_000.0)];
        on_state(&mut engine, SLAVE_A, &state(1e6, 1e6, vec![], Some(symbols)), NOON_MS);
        let master_volume = units_to_lots(master_steps * 1_000_000);
        let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, master_volume), NOON_MS);
        let Outcome::Copy(opened) = &out[0].outcome else { return Ok(()) };
        let opened_units = units(opened.volume);
        prop_assert!(opened_units >= units(min) && opened_units <= units(max));
        let mut late: Vec<Decision> = Vec::new();
        if results_late { late.push(out[0].clone()) } else { fill_exactly(&mut engine, &out[0], NOON_MS) }
        let mut master_remaining = units(master_volume);
        let mut held = opened_units;
        let mut closed_sum = 0u64;
        for (index, fraction) in fractions.iter().copied().chain(std::iter::once(1.0)).enumerate() {
            let closed = if fraction >= 1.0 { master_remaining } else { (master_remaining as f64 * fraction) as u64 / 1_000_000 * 1_000_000 };
            if closed == 0 { continue }
            master_remaining -= closed;
            let remaining = tell_remaining.then_some(units_to_lots(master_remaining));
            let out = on_event(&mut engine, MASTER, &close(1, units_to_lots(closed), remaining), NOON_MS + 1 + index as u64);
            prop_assert_eq!(out.len(), 1);
            if let Outcome::Copy(instruction) = &out[0].outcome {
                let close_units = units(instruction.volume);
                prop_assert_eq!(instruction.action, CopyAction::Close);
                prop_assert!(close_units > 0 && close_units <= held && close_units <= units(max));
                if master_remaining > 0 {
                    prop_assert!(close_units >= units(min), "a partial close is at least min");
                    prop_assert!(held - close_units >= units(min) || held == close_units);
                }
                held -= close_units;
                closed_sum += close_units;
                if results_late { late.push(out[0].clone()) } else { fill_exactly(&mut engine, &out[0], NOON_MS) }
            }
        }
        for decision in &late {
            fill_exactly(&mut engine, decision, NOON_MS + 100);
        }
        prop_assert_eq!(held, 0);
        prop_assert_eq!(closed_sum, opened_units);
        prop_assert_eq!(engine.position_count(MASTER), 0, "the position settles");
    }

    #[test]
    fn mirrored_books_give_no_decisions(operations in prop::collection::vec((0u8..4, 1u64..6, 1u64..40, any::<bool>()), 1..40)) {
        // Shows that after random opens, partial closes, closes and modifies (all results filled), a snapshot equal to the
        // master's book and states equal to what each slave holds yield no decision at all.
        let follows = format!(
            "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\nlot = {{ mode = \"multiplier\", value = 0.37 }}\n\
             [[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\nreverse = true\ncopy_tp = false\n"
        );
        let mut engine = engine(&config_with("", "", &follows));
        on_snapshot(&mut engine, MASTER, &snapshot(vec![], 1e4, 1e4), NOON_MS);
        // Master book: pos -> (side, units, sl, tp). Slave books: (slave, pos) -> (symbol, side, units).
        let mut master_book: BTreeMap<u64, (Side, u64, f64, f64)> = BTreeMap::new();
        let mut slave_books: BTreeMap<(u64, u64), (String, Side, u64)> = BTreeMap::new();
        for (step, (kind, pos, amount, flag)) in operations.into_iter().enumerate() {
            let now_ms = NOON_MS + 1 + step as u64;
            let event = match (kind, master_book.get(&pos).copied()) {
                (0, None) => {
                    let side = if flag { Side::Buy } else { Side::Sell };
                    let event = open(pos, side, amount as f64 / 10.0);
                    master_book.insert(pos, (side, units(event.volume), event.sl, event.tp));
                    event
                }
                (1, Some((side, volume, sl, tp))) => {
                    let closed = (volume * amount / 40).min(volume);
                    if closed == 0 { continue }
                    let remaining = volume - closed;
                    if remaining == 0 { master_book.remove(&pos); } else { master_book.insert(pos, (side, remaining, sl, tp)); }
                    close(pos, units_to_lots(closed), flag.then_some(units_to_lots(remaining)))
                }
                (2, Some(_)) => {
                    master_book.remove(&pos);
                    close(pos, 0.0, Some(0.0))
                }
                (3, Some((side, volume, _, tp))) => {
                    let sl = 1.0 + amount as f64 / 1000.0;
                    master_book.insert(pos, (side, volume, sl, tp));
                    modify(pos, sl, tp, 0.0)
                }
                _ => continue,
            };
            for decision in on_event(&mut engine, MASTER, &event, now_ms) {
                let Outcome::Copy(instruction) = &decision.outcome else { continue };
                let key = (decision.slave, decision.pos);
                match instruction.action {
                    CopyAction::Open => { slave_books.insert(key, (instruction.symbol.clone(), instruction.side, units(instruction.volume))); }
                    CopyAction::Close => {
                        let entry = slave_books.get_mut(&key).expect("a close follows an open");
                        entry.2 -= units(instruction.volume);
                        if entry.2 == 0 { slave_books.remove(&key); }
                    }
                    _ => {}
                }
                fill_exactly(&mut engine, &decision, now_ms);
            }
        }
        let later_ms = NOON_MS + 1_000;
        let positions = master_book
            .iter()
            .map(|(pos, (side, volume, sl, tp))| snapshot_position(*pos, *side, units_to_lots(*volume), *sl, *tp))
            .collect();
        let out = on_snapshot(&mut engine, MASTER, &snapshot(positions, 1e4, 1e4), later_ms);
        prop_assert!(out.is_empty(), "snapshot decisions: {:?}", out);
        for slave in [SLAVE_A, SLAVE_B] {
            let held = slave_books
                .iter()
                .filter(|((owner, _), _)| *owner == slave)
                .map(|((_, pos), (symbol, side, volume))| tagged(MASTER, *pos, symbol, *side, units_to_lots(*volume)))
                .collect();
            let out = on_state(&mut engine, slave, &state(1e3, 1e3, held, None), later_ms);
            prop_assert!(out.is_empty(), "state decisions for {}: {:?}", slave, out);
        }
    }
}

#[test]
fn a_fresh_engine_with_empty_books_is_silent() {
    // Shows the base case: empty snapshot and empty states on a fresh engine give nothing.
    let mut engine: Engine = engine(&one_follow(""));
    assert!(on_snapshot(&mut engine, MASTER, &snapshot(vec![], 1e4, 1e4), NOON_MS).is_empty());
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], None),
        NOON_MS
    )
    .is_empty());
}

/// Any f64 a peer could send, weighted toward the troublesome ones.
fn wild_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(1e300),
        Just(1e-300),
        0.0f64..5.0,
        any::<f64>(),
    ]
}

fn wild_side() -> impl Strategy<Value = Side> {
    prop::sample::select(vec![
        Side::Buy,
        Side::Sell,
        Side::BuyLimit,
        Side::SellLimit,
        Side::BuyStop,
        Side::SellStop,
    ])
}

/// One input to the engine, as a peer might send it.
#[derive(Clone, Debug)]
enum Input {
    Event {
        kind: u8,
        pos: u64,
        side: Option<Side>,
        volume: f64,
        price: f64,
        sl: f64,
        remaining: Option<f64>,
    },
    Snapshot {
        positions: Vec<(u64, Side, f64, f64)>,
        balance: f64,
    },
    State {
        slave_b: bool,
        positions: Vec<(u64, u64, Side, f64)>,
        balance: f64,
        spec: Option<(f64, f64, f64, u32, f64)>,
    },
    Result {
        pick: usize,
        status: u8,
        volume: f64,
    },
}

fn wild_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (0u8..5, 1u64..6, prop::option::of(wild_side()), wild_number(), wild_number(), wild_number(), prop::option::of(wild_number()))
            .prop_map(|(kind, pos, side, volume, price, sl, remaining)| Input::Event { kind, pos, side, volume, price, sl, remaining }),
        1 => (prop::collection::vec((1u64..6, wild_side(), wild_number(), wild_number()), 0..4), wild_number())
            .prop_map(|(positions, balance)| Input::Snapshot { positions, balance }),
        1 => (any::<bool>(), prop::collection::vec((0u64..3, 1u64..6, wild_side(), wild_number()), 0..4), wild_number(),
              prop::option::of((wild_number(), wild_number(), wild_number(), 0u32..20, wild_number())))
            .prop_map(|(slave_b, positions, balance, spec)| Input::State { slave_b, positions, balance, spec }),
        3 => (any::<usize>(), 0u8..3, wild_number()).prop_map(|(pick, status, volume)| Input::Result { pick, status, volume }),
    ]
}

fn apply(engine: &mut Engine, input: &Input, now_ms: u64, sent: &[Decision]) -> Vec<Decision> {
    let masters = [MASTER, MASTER_2, 999];
    match input {
        Input::Event {
            kind,
            pos,
            side,
            volume,
            price,
            sl,
            remaining,
        } => {
            let mut event = open(*pos, Side::Buy, 0.1);
            event.kind = [
                EventKind::Open,
                EventKind::Modify,
                EventKind::Close,
                EventKind::Pending,
                EventKind::Cancel,
            ][*kind as usize];
            event.side = *side;
            event.volume = *volume;
            event.price = *price;
            event.sl = *sl;
            event.remaining = *remaining;
            on_event(engine, MASTER, &event, now_ms)
        }
        Input::Snapshot { positions, balance } => {
            let positions = positions
                .iter()
                .map(|(pos, side, volume, sl)| snapshot_position(*pos, *side, *volume, *sl, 0.0))
                .collect();
            on_snapshot(
                engine,
                MASTER,
                &snapshot(positions, *balance, *balance),
                now_ms,
            )
        }
        Input::State {
            slave_b,
            positions,
            balance,
            spec,
        } => {
            let positions = positions
                .iter()
                .map(|(master, pos, side, volume)| {
                    tagged(masters[*master as usize], *pos, "EURUSD", *side, *volume)
                })
                .collect();
            let symbols = spec.map(|(min, max, step, digits, contract)| {
                vec![tradebridge_core::protocol::SymbolSpec {
                    name: "EURUSD".into(),
                    min,
                    max,
                    step,
                    digits,
                    contract,
                }]
            });
            let slave = if *slave_b { SLAVE_B } else { SLAVE_A };
            on_state(
                engine,
                slave,
                &state(*balance, *balance, positions, symbols),
                now_ms,
            )
        }
        Input::Result {
            pick,
            status,
            volume,
        } => {
            if let Some(decision) = (!sent.is_empty()).then(|| sent[pick % sent.len()].clone()) {
                let status = [
                    ResultStatus::Filled,
                    ResultStatus::Rejected,
                    ResultStatus::Skipped,
                ][*status as usize];
                engine.on_slave_result(
                    decision.slave,
                    copy_of(&decision),
                    &result(status, *volume),
                    now_ms,
                    &mut Vec::new(),
                );
            }
            Vec::new()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn no_peer_input_crashes_the_engine(inputs in prop::collection::vec(wild_input(), 1..60), steps in prop::collection::vec(0u64..20_000, 60)) {
        // Shows that arbitrary events, snapshots, states and results (NaN, infinities, negatives, unknown
        // positions, duplicated or out-of-order results) never panic, and every copy sent is well formed.
        let follows = format!(
            "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\nlot = {{ mode = \"balance_ratio\", value = 2.0 }}\n\
             [[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\nreverse = true\nbelow_min = \"min\"\n\
             [[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER_2}\n"
        );
        let mut engine = engine(&config_with("daily_loss_money = 10.0\non_limit = \"close_all\"", "max_positions = 3", &follows));
        let mut sent: Vec<Decision> = Vec::new();
        let mut now_ms = NOON_MS;
        for (input, step) in inputs.iter().zip(steps.iter()) {
            now_ms += step;
            for decision in apply(&mut engine, input, now_ms, &sent) {
                if let Outcome::Copy(copy) = &decision.outcome {
                    prop_assert!(copy.volume.is_finite() && copy.volume >= 0.0);
                    prop_assert!(copy.max_dev.is_finite() && copy.max_dev >= 0.0);
                    prop_assert!(matches!(copy.action, CopyAction::Modify | CopyAction::Cancel) || copy.volume > 0.0);
                    prop_assert_eq!(&copy.comment, &format!("tc:{}:{}", decision.master, decision.pos));
                    sent.push(decision);
                }
            }
        }
    }
}
