//! Reconciliation through the engine: master snapshots and slave states
//! against the ledger, including the "agree means silence" rule.

mod engine_support;

use engine_support::*;
use tradebridge_core::engine::ledger::{CopyStatus, NoCopyCause};
use tradebridge_core::engine::{Engine, SkipReason};
use tradebridge_core::protocol::{CopyAction, Side, StatePosition};

/// An engine with one copied, filled, open position: master 1.0 lot of pos 1.
fn with_filled_position(rules: &str) -> Engine {
    let mut engine = engine(&one_follow(rules));
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 10_000.0, 10_000.0),
        NOON_MS,
    );
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    engine
}

fn master_book(volume: f64) -> tradebridge_core::protocol::Snapshot {
    snapshot(
        vec![snapshot_position(1, Side::Buy, volume, 1.09, 1.12)],
        10_000.0,
        10_000.0,
    )
}

fn slave_book(volume: f64) -> tradebridge_core::protocol::State {
    state(
        1_000.0,
        1_000.0,
        vec![tagged(MASTER, 1, "EURUSD", Side::Buy, volume)],
        None,
    )
}

#[test]
fn unknown_snapshot_positions_are_opened_once() {
    // Shows that a snapshot position the engine did not know is copied as an open (expiring now + ttl), and a repeat is silent.
    let mut engine = engine(&one_follow(""));
    let out = on_snapshot(&mut engine, MASTER, &master_book(0.4), NOON_MS);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.volume, copy.sl, copy.expires_ms),
        (CopyAction::Open, 0.4, 1.09, NOON_MS + 5_000)
    );
    assert!(on_snapshot(&mut engine, MASTER, &master_book(0.4), NOON_MS + 1).is_empty());
}

#[test]
fn agreeing_snapshot_and_state_give_nothing() {
    // Shows that when master, ledger and slave agree, neither a snapshot nor a state yields any decision.
    let mut engine = with_filled_position("");
    assert!(on_snapshot(&mut engine, MASTER, &master_book(1.0), NOON_MS + 1).is_empty());
    assert!(on_state(&mut engine, SLAVE_A, &slave_book(1.0), NOON_MS + 2).is_empty());
    assert!(on_snapshot(&mut engine, MASTER, &master_book(1.0), NOON_MS + 3).is_empty());
}

#[test]
fn missing_snapshot_positions_are_closed() {
    // Shows that a known position missing from the snapshot is closed in full on the slave.
    let mut engine = with_filled_position("");
    let out = on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 10_000.0, 10_000.0),
        NOON_MS + 1,
    );
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.volume, copy.pos),
        (CopyAction::Close, 1.0, 1)
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 2);
    assert_eq!(engine.position_count(MASTER), 0);
    assert!(
        on_snapshot(&mut engine, MASTER, &master_book(1.0), NOON_MS + 3).is_empty(),
        "a stale entry for a closed pos"
    );
}

#[test]
fn lower_snapshot_volume_is_a_partial_close() {
    // Shows that a snapshot volume below the ledger's is a proportional partial close.
    let mut engine = with_filled_position("lot = { mode = \"multiplier\", value = 0.5 }");
    let out = on_snapshot(&mut engine, MASTER, &master_book(0.6), NOON_MS + 1);
    let copy = copy_of(&out[0]);
    assert_eq!((copy.action, copy.volume), (CopyAction::Close, 0.2));
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.3));
}

#[test]
fn changed_snapshot_stops_are_modified() {
    // Shows that a snapshot with a new stop-loss yields a modify, and the same snapshot again yields nothing.
    let mut engine = with_filled_position("");
    let moved = snapshot(
        vec![snapshot_position(1, Side::Buy, 1.0, 1.1, 1.12)],
        10_000.0,
        10_000.0,
    );
    let out = on_snapshot(&mut engine, MASTER, &moved, NOON_MS + 1);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.sl, copy.tp),
        (CopyAction::Modify, 1.1, 1.12)
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 2);
    assert!(on_snapshot(&mut engine, MASTER, &moved, NOON_MS + 3).is_empty());
}

#[test]
fn snapshot_shows_a_filled_pending_order() {
    // Shows that a snapshot listing a known pending order as a position treats it as filled (nothing to send).
    let mut engine = engine(&one_follow(""));
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(4, Side::BuyLimit, 0.2, 1.09),
        NOON_MS,
    );
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let filled_book = snapshot(
        vec![snapshot_position(4, Side::Buy, 0.2, 1.09, 1.12)],
        1e4,
        1e4,
    );
    assert!(on_snapshot(&mut engine, MASTER, &filled_book, NOON_MS + 1).is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 4, SLAVE_A),
        Some(CopyStatus::Open)
    );
}

#[test]
fn state_volumes_update_the_ledger() {
    // Shows that the slave's reported volume becomes what the ledger holds, and later closes follow it.
    let mut engine = with_filled_position("");
    assert!(on_state(&mut engine, SLAVE_A, &slave_book(0.7), NOON_MS + 1).is_empty());
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.7));
    let out = on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 2);
    assert_eq!(copy_of(&out[0]).volume, 0.7);
}

#[test]
fn zero_volume_tag_is_not_a_held_copy() {
    // Shows (review F6) that a tagged position reported with volume 0 (or NaN) counts as not held: the copy closes,
    // the master's close finds nothing to close, and the max_positions slot is free again.
    let config = config_with(
        "max_positions = 1",
        "",
        &format!("[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n"),
    );
    let mut engine = engine(&config);
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let zero = vec![
        tagged(MASTER, 1, "EURUSD", Side::Buy, 0.0),
        tagged(MASTER, 1, "EURUSD", Side::Buy, f64::NAN),
    ];
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, zero, None),
        NOON_MS + 10
    )
    .is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Closed)
    );
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 20);
    assert_eq!(skip_of(&out[0]), SkipReason::NoCopy);
    assert_eq!(engine.position_count(MASTER), 0);
    assert_eq!(engine.active_copies(SLAVE_A), 0);
    let out = on_event(&mut engine, MASTER, &open(2, Side::Buy, 0.1), NOON_MS + 30);
    assert_eq!(copy_of(&out[0]).action, CopyAction::Open);
}

#[test]
fn state_confirms_an_open_whose_result_is_late() {
    // Shows that a state showing the copy confirms an open still in flight, and the late result does not count it twice.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    assert!(on_state(&mut engine, SLAVE_A, &slave_book(0.9), NOON_MS + 1).is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Open)
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 2);
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.9));
}

#[test]
fn lost_open_is_reopened_while_young() {
    // Shows that an open never confirmed and missing from the slave well after its expiry is sent again.
    let mut engine = engine(&one_follow(""));
    on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    let empty = state(1_000.0, 1_000.0, vec![], None);
    assert!(
        on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 1_000).is_empty(),
        "in flight: wait"
    );
    assert!(
        on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 14_000).is_empty(),
        "not yet overdue"
    );
    let out = on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 20_000);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.volume, copy.expires_ms),
        (CopyAction::Open, 1.0, NOON_MS + 25_000)
    );
    assert!(
        on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 21_000).is_empty(),
        "no second open while one is in flight"
    );
}

#[test]
fn lost_open_of_an_old_position_expires() {
    // Shows that a position older than reconcile_open_max_age_ms is not opened by reconciliation: one expired skip, then silence.
    let mut engine = engine(&one_follow("reconcile_open_max_age_ms = 30000"));
    on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    let empty = state(1_000.0, 1_000.0, vec![], None);
    let out = on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 40_000);
    assert_eq!((out.len(), skip_of(&out[0])), (1, SkipReason::Expired));
    assert!(on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 41_000).is_empty());
    assert_eq!(
        skip_of(
            &on_event(
                &mut engine,
                MASTER,
                &close(1, 1.0, Some(0.0)),
                NOON_MS + 42_000
            )[0]
        ),
        SkipReason::NoCopy
    );
}

#[test]
fn unknown_slave_state_is_retried_when_it_arrives() {
    // Shows that a ratio-mode open skipped for unknown slave state is copied once the first state arrives.
    let mut engine = engine(&one_follow(
        "lot = { mode = \"balance_ratio\", value = 1.0 }",
    ));
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 10_000.0, 10_000.0),
        NOON_MS,
    );
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    assert_eq!(skip_of(&out[0]), SkipReason::SlaveStateUnknown);
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(5_000.0, 5_000.0, vec![], None),
        NOON_MS + 3_000,
    );
    let copy = copy_of(&out[0]);
    assert_eq!((copy.action, copy.volume), (CopyAction::Open, 0.5));
}

#[test]
fn slave_closed_copy_is_not_reopened() {
    // Shows that a copy that vanished from the slave (its stop hit) is marked closed, not reopened, and the master's close is no_copy.
    let mut engine = with_filled_position("");
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 990.0, vec![], None),
        NOON_MS + 1
    )
    .is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Closed)
    );
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 990.0, vec![], None),
        NOON_MS + 2
    )
    .is_empty());
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 3)[0]),
        SkipReason::NoCopy
    );
}

#[test]
fn pending_copy_that_filled_on_the_slave_is_closed_by_the_master_cancel() {
    // Shows that a placed pending copy absent from the state stays placed, and once the state shows it as a position
    // it is open with the slave's side, so the master's cancel closes it.
    let mut engine = engine(&one_follow(""));
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(1, Side::SellStop, 0.2, 1.08),
        NOON_MS,
    );
    fill_exactly(&mut engine, &out[0], NOON_MS);
    // The Executor lists positions only: a placed order missing from its state is not taken as gone.
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], None),
        NOON_MS + 1
    )
    .is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::PendingPlaced)
    );
    let filled = vec![tagged(MASTER, 1, "EURUSD", Side::Sell, 0.2)];
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, filled, None),
        NOON_MS + 1
    )
    .is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Open)
    );
    let out = on_event(&mut engine, MASTER, &cancel(1), NOON_MS + 2);
    let exit = copy_of(&out[0]);
    assert_eq!(
        (exit.action, exit.side, exit.volume),
        (CopyAction::Close, Side::Sell, 0.2)
    );
}

#[test]
fn lost_modify_result_does_not_stop_reconciliation() {
    // Shows (review F3) that a modify whose result never comes does not keep the copy "in flight": the slave's stop
    // hit is still noticed and the copy stops counting against max_positions.
    let config = config_with(
        "max_positions = 1",
        "",
        &format!("[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n"),
    );
    let mut engine = engine(&config);
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.12, 0.0),
        NOON_MS + 1_000,
    );
    assert_eq!(copy_of(&out[0]).action, CopyAction::Modify);
    let empty = state(1_000.0, 1_000.0, vec![], None);
    assert!(on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 120_000).is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Closed)
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &open(2, Side::Buy, 0.1),
        NOON_MS + 130_000,
    );
    assert_eq!(
        copy_of(&out[0]).action,
        CopyAction::Open,
        "0 copies held, max_positions = 1"
    );
}

#[test]
fn modify_result_does_not_settle_a_close_in_flight() {
    // Shows that a modify's result, arriving while a partial close is in flight, leaves the close waited for: a state
    // still showing the old volume is not taken as the truth yet.
    let mut engine = with_filled_position("");
    let modify_out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.12, 0.0),
        NOON_MS + 1,
    );
    let close_out = on_event(&mut engine, MASTER, &close(1, 0.5, Some(0.5)), NOON_MS + 2);
    assert_eq!(copy_of(&close_out[0]).volume, 0.5);
    fill_exactly(&mut engine, &modify_out[0], NOON_MS + 3);
    assert!(on_state(&mut engine, SLAVE_A, &slave_book(1.0), NOON_MS + 4).is_empty());
    assert_eq!(
        engine.held_volume(MASTER, 1, SLAVE_A),
        Some(0.5),
        "the close is still on its way"
    );
}

#[test]
fn tagged_copy_of_a_closed_master_position_is_closed_once() {
    // Shows that what a slave still holds after the master closed (a short close) is closed by the next state, once.
    let mut engine = with_filled_position("");
    let out = on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 1);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &filled(0.75), NOON_MS + 2, &mut Vec::new());
    let out = on_state(&mut engine, SLAVE_A, &slave_book(0.25), NOON_MS + 3);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.volume, copy.comment.as_str()),
        (CopyAction::Close, 0.25, "tc:100000:1")
    );
    assert!(
        on_state(&mut engine, SLAVE_A, &slave_book(0.25), NOON_MS + 4).is_empty(),
        "the close is in flight"
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 5);
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], None),
        NOON_MS + 6
    )
    .is_empty());
    assert_eq!(engine.position_count(MASTER), 0);
}

#[test]
fn orphan_tags_close_only_when_the_master_book_is_known() {
    // Shows that a tag for a position the ledger never held is closed only once a snapshot made the master's book complete, and only once.
    let mut engine = engine(&one_follow(""));
    let orphan = state(
        1e3,
        1e3,
        vec![tagged(MASTER, 77, "EURUSD", Side::Sell, 0.3)],
        None,
    );
    assert!(
        on_state(&mut engine, SLAVE_A, &orphan, NOON_MS).is_empty(),
        "book unknown: left alone"
    );
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 1e4, 1e4),
        NOON_MS + 1,
    );
    let out = on_state(&mut engine, SLAVE_A, &orphan, NOON_MS + 2);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.side, copy.volume, copy.pos),
        (CopyAction::Close, Side::Sell, 0.3, 77)
    );
    assert!(
        on_state(&mut engine, SLAVE_A, &orphan, NOON_MS + 3).is_empty(),
        "not closed twice"
    );
    engine.on_slave_result(SLAVE_A, copy, &rejected(), NOON_MS + 4, &mut Vec::new());
    assert_eq!(
        on_state(&mut engine, SLAVE_A, &orphan, NOON_MS + 5).len(),
        1,
        "a refused close is tried again"
    );
}

#[test]
fn manual_and_foreign_positions_are_never_touched() {
    // Shows that untagged positions and tags of a master this slave does not follow produce nothing.
    let mut engine = with_filled_position("");
    let positions = vec![
        tagged(MASTER, 1, "EURUSD", Side::Buy, 1.0),
        StatePosition {
            pos: 1,
            symbol: "EURUSD".into(),
            side: Side::Buy,
            volume: 2.0,
            comment: "my own trade".into(),
        },
        StatePosition {
            pos: 2,
            symbol: "GBPUSD".into(),
            side: Side::Sell,
            volume: 1.0,
            comment: String::new(),
        },
        tagged(MASTER_2, 5, "EURUSD", Side::Buy, 0.5),
        tagged(999, 5, "EURUSD", Side::Buy, 0.5),
    ];
    on_snapshot(&mut engine, MASTER_2, &snapshot(vec![], 1e4, 1e4), NOON_MS);
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, positions, None),
        NOON_MS + 1
    )
    .is_empty());
}

#[test]
fn adopted_copy_with_refused_open() {
    // Shows that a slave holding a copy the ledger thought refused adopts it, so the master's close reaches it.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 1, &mut Vec::new());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::NoCopy(NoCopyCause::Refused))
    );
    assert!(on_state(&mut engine, SLAVE_A, &slave_book(1.0), NOON_MS + 2).is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Open)
    );
    assert_eq!(
        copy_of(&on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 3)[0]).volume,
        1.0
    );
}

#[test]
fn tagged_position_without_a_symbol_is_ignored() {
    // Shows (review F4) that a state whose tagged position has an empty symbol neither panics nor adopts it.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 10, &mut Vec::new());
    let nameless = vec![tagged(MASTER, 1, "", Side::Buy, 0.1)];
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, nameless, None),
        NOON_MS + 20,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::NoCopy(NoCopyCause::Refused))
    );
    assert_eq!(engine.active_copies(SLAVE_A), 0);
    // Once the master's book is known, a nameless orphan is not closed either: there is nothing to name.
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 1e4, 1e4),
        NOON_MS + 30,
    );
    let orphan = vec![tagged(MASTER, 7, "", Side::Buy, 0.1)];
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, orphan, None),
        NOON_MS + 40
    )
    .is_empty());
}

#[test]
fn late_result_of_a_replaced_open_is_ignored() {
    // Shows that when a lost open was re-sent, the first open's late refusal does not undo the replacement.
    let mut engine = engine(&one_follow(""));
    let first = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    let empty = state(1_000.0, 1_000.0, vec![], None);
    let second = on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 20_000);
    assert_eq!(copy_of(&second[0]).action, CopyAction::Open);
    engine.on_slave_result(SLAVE_A, copy_of(&first[0]), &rejected(), NOON_MS + 20_001, &mut Vec::new());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::OpenSent)
    );
    fill_exactly(&mut engine, &second[0], NOON_MS + 20_002);
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Open)
    );
    assert_eq!(
        copy_of(
            &on_event(
                &mut engine,
                MASTER,
                &close(1, 1.0, Some(0.0)),
                NOON_MS + 20_003
            )[0]
        )
        .volume,
        1.0
    );
}

#[test]
fn absurd_slave_volumes_saturate_instead_of_crashing() {
    // Shows that a state reporting enormous tagged volumes is clamped, and the resulting close stays representable.
    let mut engine = engine(&one_follow(""));
    on_snapshot(&mut engine, MASTER, &snapshot(vec![], 1e4, 1e4), NOON_MS);
    let huge = vec![
        tagged(MASTER, 9, "EURUSD", Side::Buy, 9e6),
        tagged(MASTER, 9, "EURUSD", Side::Buy, 9e6),
        tagged(MASTER, 9, "EURUSD", Side::Buy, f64::INFINITY),
    ];
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, huge, None),
        NOON_MS + 1,
    );
    assert_eq!(
        copy_of(&out[0]).volume,
        1e7,
        "10 million lots, the largest volume represented"
    );
}

#[test]
fn undelivered_open_closed_by_the_master_settles() {
    // Shows that an open that never reached the slave (expired) and was closed by the master leaves the ledger once a state confirms it.
    let mut engine = engine(&one_follow(""));
    on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    let out = on_event(
        &mut engine,
        MASTER,
        &close(1, 1.0, Some(0.0)),
        NOON_MS + 1_000,
    );
    engine.on_slave_result(
        SLAVE_A,
        copy_of(&out[0]),
        &result(tradebridge_core::protocol::ResultStatus::Skipped, 0.0),
        NOON_MS + 60_000,
        &mut Vec::new(),
    );
    assert_eq!(
        engine.position_count(MASTER),
        1,
        "the open's result never comes"
    );
    let empty = state(1_000.0, 1_000.0, vec![], None);
    assert!(on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 60_001).is_empty());
    assert_eq!(engine.position_count(MASTER), 0);
    assert_eq!(engine.active_copies(SLAVE_A), 0);
}

#[test]
fn lost_close_result_does_not_keep_the_position_forever() {
    // Shows that when a close's result is lost, a state without the tag lets the closed position leave the ledger.
    let mut engine = with_filled_position("");
    on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 1);
    assert_eq!(engine.position_count(MASTER), 1, "the close is in flight");
    assert!(
        on_state(&mut engine, SLAVE_A, &slave_book(1.0), NOON_MS + 2).is_empty(),
        "the close has not run yet"
    );
    assert_eq!(engine.position_count(MASTER), 1);
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], None),
        NOON_MS + 3
    )
    .is_empty());
    assert_eq!(engine.position_count(MASTER), 0);
}

#[test]
fn failed_close_of_a_copy_the_slave_no_longer_holds_settles() {
    // Shows (review F2) that a close refused because the slave's copy was already gone settles once the slave's state
    // shows no tag, so such races do not fill the ledger and block new trades with ledger_full.
    let mut config = one_follow("");
    config.server.positions_per_master_max = 2;
    let mut engine = engine(&config);
    let empty = state(1_000.0, 1_000.0, vec![], None);
    for pos in 1..=2u64 {
        let out = on_event(&mut engine, MASTER, &open(pos, Side::Buy, 0.1), NOON_MS);
        fill_exactly(&mut engine, &out[0], NOON_MS);
        let out = on_event(
            &mut engine,
            MASTER,
            &close(pos, 0.1, Some(0.0)),
            NOON_MS + 10,
        );
        engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 20, &mut Vec::new());
        assert_eq!(
            engine.held_volume(MASTER, pos, SLAVE_A),
            Some(0.1),
            "the refused close adds back"
        );
        assert!(on_state(&mut engine, SLAVE_A, &empty, NOON_MS + 30).is_empty());
    }
    assert_eq!(engine.position_count(MASTER), 0);
    let out = on_event(
        &mut engine,
        MASTER,
        &open(3, Side::Buy, 0.1),
        NOON_MS + 70_000,
    );
    assert_eq!(copy_of(&out[0]).action, CopyAction::Open);
}

#[test]
fn failed_close_of_a_copy_the_slave_still_holds_is_sent_again() {
    // Shows the other side of the same rule: when the state still shows the copy, the close is sent again.
    let mut engine = with_filled_position("");
    let out = on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 1);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 2, &mut Vec::new());
    let out = on_state(&mut engine, SLAVE_A, &slave_book(1.0), NOON_MS + 3);
    let again = copy_of(&out[0]);
    assert_eq!((again.action, again.volume), (CopyAction::Close, 1.0));
}
