//! Master events through the engine: fan-out, idempotence, partial closes
//! with carried remainders, results, pending orders, modifies, expiry.

mod engine_support;

use engine_support::*;
use tradebridge_core::engine::ledger::{CopyStatus, NoCopyCause};
use tradebridge_core::engine::{Engine, Outcome, SkipReason};
use tradebridge_core::protocol::{CopyAction, Side};

fn two_followers() -> Engine {
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\nlot = {{ mode = \"fixed\", value = 0.5 }}\n\
         [[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\nlot = {{ mode = \"multiplier\", value = 2.0 }}\n"
    );
    engine(&config_with("", "", &follows))
}

#[test]
fn open_fans_out_in_slave_login_order() {
    // Shows that one open gives one copy per follower, ordered by slave login, with every field set.
    let mut engine = two_followers();
    let out = on_event(&mut engine, MASTER, &open(9001, Side::Buy, 0.1), NOON_MS);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].slave, out[1].slave), (SLAVE_A, SLAVE_B));
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.master, copy.pos, copy.action),
        (MASTER, 9001, CopyAction::Open)
    );
    assert_eq!(
        (copy.symbol.as_str(), copy.side, copy.volume),
        ("EURUSD", Side::Buy, 0.2)
    );
    assert_eq!((copy.price, copy.sl, copy.tp), (1.1, 1.09, 1.12));
    assert_eq!(copy.comment, "tc:100000:9001");
    assert_eq!(copy.expires_ms, NOON_MS + 5_000);
    assert_eq!(copy.max_dev, 0.0003, "30 points on the default 5 digits");
    assert_eq!(copy_of(&out[1]).volume, 0.5);
    let wire = copy.to_copy(77, "c-77".into());
    assert_eq!(
        (
            wire.seq,
            wire.id.as_str(),
            wire.volume,
            wire.comment.as_str()
        ),
        (77, "c-77", 0.2, "tc:100000:9001")
    );
}

#[test]
fn repeated_open_and_unknown_close_change_nothing() {
    // Shows idempotence per pos: an open already held and a close for an unknown pos produce no decision.
    let mut engine = two_followers();
    assert_eq!(
        on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS).len(),
        2
    );
    assert!(on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS + 1).is_empty());
    assert!(on_event(&mut engine, MASTER, &close(2, 0.1, Some(0.0)), NOON_MS + 2).is_empty());
    assert!(on_event(&mut engine, MASTER, &modify(2, 1.0, 2.0, 0.0), NOON_MS + 2).is_empty());
    assert!(
        on_event(&mut engine, 999, &open(3, Side::Buy, 0.1), NOON_MS).is_empty(),
        "unknown master"
    );
    assert!(
        on_event(&mut engine, MASTER_2, &open(3, Side::Buy, 0.1), NOON_MS).is_empty(),
        "master without followers"
    );
}

#[test]
fn closed_position_is_not_reopened_by_a_late_open() {
    // Shows that once closed and settled, a late re-sent open for the same pos is ignored.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(5, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(&mut engine, MASTER, &close(5, 0.1, Some(0.0)), NOON_MS + 10);
    fill_exactly(&mut engine, &out[0], NOON_MS + 20);
    assert_eq!(
        engine.position_count(MASTER),
        0,
        "settled positions leave the ledger"
    );
    assert!(on_event(&mut engine, MASTER, &open(5, Side::Buy, 0.1), NOON_MS + 30).is_empty());
    assert!(on_event(&mut engine, MASTER, &close(5, 0.1, Some(0.0)), NOON_MS + 40).is_empty());
}

#[test]
fn partial_closes_are_proportional_and_carry() {
    // Shows a slave at 0.03 of a 1.0 master: closes that round to nothing carry until a later close catches up.
    let mut engine = engine(&one_follow("lot = { mode = \"multiplier\", value = 0.03 }"));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    assert_eq!(copy_of(&out[0]).volume, 0.03);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.9)), NOON_MS + 1);
    assert_eq!(
        skip_of(&out[0]),
        SkipReason::CloseCarried,
        "target 0.027 rounds to 0.03"
    );
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.8)), NOON_MS + 2);
    assert_eq!(copy_of(&out[0]).volume, 0.01, "target 0.024 rounds to 0.02");
    fill_exactly(&mut engine, &out[0], NOON_MS + 2);
    let out = on_event(&mut engine, MASTER, &close(1, 0.5, Some(0.3)), NOON_MS + 3);
    assert_eq!(copy_of(&out[0]).volume, 0.01, "target 0.009 rounds to 0.01");
    fill_exactly(&mut engine, &out[0], NOON_MS + 3);
    let out = on_event(&mut engine, MASTER, &close(1, 0.3, Some(0.0)), NOON_MS + 4);
    let last = copy_of(&out[0]);
    assert_eq!(
        (last.action, last.volume, last.expires_ms, last.max_dev),
        (CopyAction::Close, 0.01, 0, 0.0)
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 4);
    assert_eq!(engine.position_count(MASTER), 0);
}

#[test]
fn partial_close_whose_target_rounds_to_zero_leaves_the_minimum() {
    // Shows (review F10) that a slave at 0.01 of a 1.0 master keeps its 0.01 while the master keeps 0.3, and closes it
    // at the master's final close.
    let mut engine = engine(&one_follow("lot = { mode = \"multiplier\", value = 0.01 }"));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    assert_eq!(copy_of(&out[0]).volume, 0.01);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(&mut engine, MASTER, &close(1, 0.7, Some(0.3)), NOON_MS + 10);
    assert_eq!(skip_of(&out[0]), SkipReason::CloseCarried);
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.01));
    let out = on_event(&mut engine, MASTER, &close(1, 0.3, Some(0.0)), NOON_MS + 20);
    assert_eq!(copy_of(&out[0]).volume, 0.01);
}

#[test]
fn remaining_is_derived_from_the_ledger_when_absent() {
    // Shows that a close without `remaining` uses the master's open volume minus closes so far.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Sell, 0.3), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    for (step, expected) in [(1, 0.1), (2, 0.1), (3, 0.1)] {
        let out = on_event(&mut engine, MASTER, &close(1, 0.1, None), NOON_MS + step);
        let copy = copy_of(&out[0]);
        assert_eq!((copy.volume, copy.side), (expected, Side::Sell));
        fill_exactly(&mut engine, &out[0], NOON_MS + step);
    }
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        None,
        "fully closed and settled"
    );
}

/// The (action, volume) of every copy among `decisions`.
fn sent(decisions: &[tradebridge_core::engine::Decision]) -> Vec<(CopyAction, f64)> {
    decisions
        .iter()
        .filter_map(|decision| match &decision.outcome {
            Outcome::Copy(instruction) => Some((instruction.action, instruction.volume)),
            Outcome::Skip(_) => None,
        })
        .collect()
}

#[test]
fn resent_close_without_remaining_after_a_snapshot_is_not_applied_twice() {
    // Shows (review F1) that a snapshot already showing a partial close, then the outbox re-sending that close
    // without `remaining`, closes the slave once: the re-sent close is measured against the events, not the snapshot.
    let mut engine = engine(&one_follow(""));
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 10_000.0, 10_000.0),
        NOON_MS,
    );
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let book = snapshot(
        vec![snapshot_position(1, Side::Buy, 0.5, 1.09, 1.12)],
        10_000.0,
        10_000.0,
    );
    let out = on_snapshot(&mut engine, MASTER, &book, NOON_MS + 1_000);
    assert_eq!(sent(&out), vec![(CopyAction::Close, 0.5)]);
    fill_exactly(&mut engine, &out[0], NOON_MS + 1_001);
    let out = on_event(&mut engine, MASTER, &close(1, 0.5, None), NOON_MS + 1_002);
    assert!(
        out.is_empty(),
        "the re-sent close A changes nothing: {out:?}"
    );
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.5));
    // A new close B of 0.3, again without `remaining`: 1.0 - 0.5 - 0.3 = 0.2 stays on the master.
    let out = on_event(&mut engine, MASTER, &close(1, 0.3, None), NOON_MS + 2_000);
    assert_eq!(
        sent(&out),
        vec![(CopyAction::Close, 0.3)],
        "from 0.5 held to 0.2"
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 2_001);
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.2));
    // The final close, still without `remaining`, takes the rest.
    let out = on_event(&mut engine, MASTER, &close(1, 0.2, None), NOON_MS + 3_000);
    assert_eq!(sent(&out), vec![(CopyAction::Close, 0.2)]);
}

#[test]
fn snapshot_first_position_measures_closes_from_its_open_event() {
    // Shows that a position first seen in a snapshot (open and a partial close still in the outbox) takes the
    // opened volume from its late `open` event, so the re-sent partial close without `remaining` is a no-op.
    let mut engine = engine(&one_follow(""));
    let book = snapshot(
        vec![snapshot_position(1, Side::Buy, 0.6, 1.09, 1.12)],
        10_000.0,
        10_000.0,
    );
    let out = on_snapshot(&mut engine, MASTER, &book, NOON_MS);
    assert_eq!(sent(&out), vec![(CopyAction::Open, 0.6)]);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    assert!(on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS + 1).is_empty());
    assert!(on_event(&mut engine, MASTER, &close(1, 0.4, None), NOON_MS + 2).is_empty());
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.6));
    let out = on_event(&mut engine, MASTER, &close(1, 0.3, None), NOON_MS + 3);
    assert_eq!(
        sent(&out),
        vec![(CopyAction::Close, 0.3)],
        "1.0 - 0.4 - 0.3 = 0.3 of 0.6"
    );
}

#[test]
fn remaining_when_present_is_used_as_sent() {
    // Shows that a close carrying `remaining` is applied against it, whatever the earlier events summed to.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.4)), NOON_MS + 1);
    assert_eq!(sent(&out), vec![(CopyAction::Close, 0.6)]);
}

#[test]
fn closes_follow_the_filled_volume() {
    // Shows that a partially filled open is what later closes are computed from.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &filled(0.6), NOON_MS + 1, &mut Vec::new());
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.6));
    let out = on_event(&mut engine, MASTER, &close(1, 0.5, Some(0.5)), NOON_MS + 2);
    assert_eq!(copy_of(&out[0]).volume, 0.3);
}

#[test]
fn close_result_updates_the_remaining_volume() {
    // Shows that a close result reporting less than asked leaves the rest held, and the final close takes it.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(&mut engine, MASTER, &close(1, 0.5, Some(0.5)), NOON_MS + 1);
    assert_eq!(copy_of(&out[0]).volume, 0.5);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &filled(0.4), NOON_MS + 2, &mut Vec::new());
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.6));
    let out = on_event(&mut engine, MASTER, &close(1, 0.5, Some(0.0)), NOON_MS + 3);
    assert_eq!(copy_of(&out[0]).volume, 0.6);
}

#[test]
fn close_while_open_in_flight_uses_the_requested_volume() {
    // Shows that closes sent before the open's result are computed from the requested volume.
    let mut engine = engine(&one_follow(""));
    let open_out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    let out = on_event(&mut engine, MASTER, &close(1, 0.4, Some(0.6)), NOON_MS + 1);
    assert_eq!(copy_of(&out[0]).volume, 0.4);
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::OpenSent)
    );
    fill_exactly(&mut engine, &open_out[0], NOON_MS + 2);
    fill_exactly(&mut engine, &out[0], NOON_MS + 3);
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.6));
}

#[test]
fn refused_open_gives_no_copy_later() {
    // Shows that after the Executor refuses an open, closes and modifies for it are skipped with no_copy.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 1, &mut Vec::new());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::NoCopy(NoCopyCause::Refused))
    );
    assert_eq!(engine.active_copies(SLAVE_A), 0);
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.08, 1.13, 0.0),
        NOON_MS + 2,
    );
    assert_eq!(skip_of(&out[0]), SkipReason::NoCopy);
    let out = on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 3);
    assert_eq!(skip_of(&out[0]), SkipReason::NoCopy);
    assert_eq!(engine.position_count(MASTER), 0);
}

#[test]
fn skipped_open_gives_no_copy_for_closes() {
    // Shows that a follower skipped at open time gets no_copy for the close.
    let mut engine = engine(&one_follow("symbols_deny = [\"EURUSD\"]"));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 1.0), NOON_MS);
    assert_eq!(skip_of(&out[0]), SkipReason::SymbolNotAllowed);
    let out = on_event(&mut engine, MASTER, &close(1, 1.0, Some(0.0)), NOON_MS + 1);
    assert_eq!(skip_of(&out[0]), SkipReason::NoCopy);
}

#[test]
fn pending_orders_are_copied_modified_and_cancelled() {
    // Shows pending -> copy pending (sized like opens, expiring), a trigger modify, and cancel -> copy cancel.
    let mut engine = engine(&one_follow("lot = { mode = \"multiplier\", value = 2.0 }"));
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(7, Side::BuyLimit, 0.1, 1.095),
        NOON_MS,
    );
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.side, copy.volume, copy.price),
        (CopyAction::Pending, Side::BuyLimit, 0.2, 1.095)
    );
    assert_eq!((copy.expires_ms, copy.max_dev), (NOON_MS + 5_000, 0.0));
    fill_exactly(&mut engine, &out[0], NOON_MS);
    assert_eq!(
        engine.copy_status(MASTER, 7, SLAVE_A),
        Some(CopyStatus::PendingPlaced)
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(7, 1.09, 1.12, 1.094),
        NOON_MS + 1,
    );
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.price, copy.sl, copy.tp, copy.expires_ms),
        (CopyAction::Modify, 1.094, 1.09, 1.12, 0)
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 1);
    let out = on_event(&mut engine, MASTER, &cancel(7), NOON_MS + 2);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.expires_ms, copy.comment.as_str()),
        (CopyAction::Cancel, 0, "tc:100000:7")
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 3);
    assert_eq!(engine.position_count(MASTER), 0);
    assert_eq!(engine.active_copies(SLAVE_A), 0);
}

#[test]
fn pending_fill_sends_nothing_and_later_closes_flow() {
    // Shows that when the master's pending fills, the copied pending fills by itself (no decision) and is then closed like a position.
    let mut engine = engine(&one_follow(""));
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(7, Side::SellStop, 0.4, 1.09),
        NOON_MS,
    );
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let mut fill = open(7, Side::Sell, 0.4);
    fill.price = 1.09;
    assert!(on_event(&mut engine, MASTER, &fill, NOON_MS + 1).is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 7, SLAVE_A),
        Some(CopyStatus::Open)
    );
    let out = on_event(&mut engine, MASTER, &close(7, 0.2, Some(0.2)), NOON_MS + 2);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.side, copy.volume),
        (CopyAction::Close, Side::Sell, 0.2)
    );
}

#[test]
fn cancel_of_a_filled_pending_order_changes_nothing() {
    // Shows (review F8) that a `cancel` for a pending order that already filled on the master gives no decision and
    // leaves every copy open; only the position's close closes them.
    let mut engine = engine(&one_follow(""));
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(1, Side::BuyLimit, 0.1, 1.09),
        NOON_MS,
    );
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let mut fill = open(1, Side::Buy, 0.1);
    fill.price = 1.09;
    on_event(&mut engine, MASTER, &fill, NOON_MS + 1_000);
    assert!(on_event(&mut engine, MASTER, &cancel(1), NOON_MS + 1_001).is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Open)
    );
    assert_eq!(engine.held_volume(MASTER, 1, SLAVE_A), Some(0.1));
    assert!(
        on_event(&mut engine, MASTER, &cancel(99), NOON_MS + 1_002).is_empty(),
        "unknown position"
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &close(1, 0.1, Some(0.0)),
        NOON_MS + 2_000,
    );
    assert_eq!(copy_of(&out[0]).action, CopyAction::Close);
}

#[test]
fn pending_not_copied_becomes_a_market_open_on_fill() {
    // Shows copy_pending = false: the pending is skipped, and its fill on the master is copied as a market open.
    let mut engine = engine(&one_follow("copy_pending = false"));
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(7, Side::BuyStop, 0.3, 1.11),
        NOON_MS,
    );
    assert_eq!(skip_of(&out[0]), SkipReason::PendingNotCopied);
    let mut fill = open(7, Side::Buy, 0.3);
    fill.price = 1.11;
    let out = on_event(&mut engine, MASTER, &fill, NOON_MS + 60_000);
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.side, copy.volume, copy.price),
        (CopyAction::Open, Side::Buy, 0.3, 1.11)
    );
    assert_eq!(copy.expires_ms, NOON_MS + 65_000);
}

#[test]
fn modifies_follow_copy_sl_and_copy_tp() {
    // Shows modify -> copy modify; with copy_tp off a tp-only change is skipped as unchanged; a repeat sends nothing.
    let mut engine = engine(&one_follow("copy_tp = false"));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert_eq!((copy_of(&out[0]).sl, copy_of(&out[0]).tp), (1.09, 0.0));
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.12, 0.0),
        NOON_MS + 1,
    );
    let copy = copy_of(&out[0]);
    assert_eq!(
        (copy.action, copy.sl, copy.tp, copy.price, copy.volume),
        (CopyAction::Modify, 1.095, 0.0, 0.0, 0.0)
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 1);
    assert!(
        on_event(
            &mut engine,
            MASTER,
            &modify(1, 1.095, 1.12, 0.0),
            NOON_MS + 2
        )
        .is_empty(),
        "a repeat"
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.13, 0.0),
        NOON_MS + 3,
    );
    assert_eq!(skip_of(&out[0]), SkipReason::Unchanged);
}

#[test]
fn refused_modify_is_sent_again_on_repeat() {
    // Shows that a modify the Executor refused is re-sent when the master repeats its stops.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.12, 0.0),
        NOON_MS + 1,
    );
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 2, &mut Vec::new());
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.12, 0.0),
        NOON_MS + 3,
    );
    assert_eq!(copy_of(&out[0]).sl, 1.095);
}

#[test]
fn max_dev_uses_the_slave_digits() {
    // Shows max_dev = points x 10^-digits of the slave symbol, and 0 when max_dev_points = 0.
    let mut engine = engine(&one_follow("max_dev_points = 25"));
    on_state(
        &mut engine,
        SLAVE_A,
        &state(
            1000.0,
            1000.0,
            vec![],
            Some(vec![spec("USDJPY", 0.01, 50.0, 0.01, 3, 100_000.0)]),
        ),
        NOON_MS,
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &open_on(1, "USDJPY", Side::Buy, 0.1),
        NOON_MS,
    );
    assert_eq!(copy_of(&out[0]).max_dev, 0.025);
    let mut engine = engine_with_no_limit();
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert_eq!(copy_of(&out[0]).max_dev, 0.0);
}

fn engine_with_no_limit() -> Engine {
    engine(&one_follow("max_dev_points = 0"))
}

#[test]
fn ttl_sets_expiry_of_opens_only() {
    // Shows expires_ms = now + ttl_ms for opens and pendings, and 0 for closes.
    let mut engine = engine(&one_follow("ttl_ms = 2500"));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert_eq!(copy_of(&out[0]).expires_ms, NOON_MS + 2_500);
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(2, Side::SellLimit, 0.1, 1.2),
        NOON_MS + 7,
    );
    assert_eq!(copy_of(&out[0]).expires_ms, NOON_MS + 2_507);
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 9);
    assert_eq!(copy_of(&out[0]).expires_ms, 0);
}

#[test]
fn invalid_events_are_skipped_for_everyone() {
    // Shows that an open without a side, with a pending side, or with no volume is skipped as invalid_event.
    let mut engine = two_followers();
    let mut no_side = open(1, Side::Buy, 0.1);
    no_side.side = None;
    let out = on_event(&mut engine, MASTER, &no_side, NOON_MS);
    assert!(out
        .iter()
        .all(|decision| decision.outcome == Outcome::Skip(SkipReason::InvalidEvent)));
    assert_eq!(out.len(), 2);
    let mut wrong_side = open(2, Side::BuyLimit, 0.1);
    wrong_side.kind = tradebridge_core::protocol::EventKind::Open;
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &wrong_side, NOON_MS)[0]),
        SkipReason::InvalidEvent
    );
    let out = on_event(&mut engine, MASTER, &open(3, Side::Buy, 0.0), NOON_MS);
    assert_eq!(skip_of(&out[0]), SkipReason::InvalidEvent);
    assert_eq!(engine.position_count(MASTER), 0);
}

#[test]
fn ledger_is_bounded() {
    // Shows that beyond positions_per_master_max new positions are skipped with ledger_full.
    let mut config = one_follow("");
    config.server.positions_per_master_max = 2;
    let mut engine = engine(&config);
    for pos in 1..=2 {
        assert!(matches!(
            on_event(&mut engine, MASTER, &open(pos, Side::Buy, 0.1), NOON_MS)[0].outcome,
            Outcome::Copy(_)
        ));
    }
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(3, Side::Buy, 0.1), NOON_MS)[0]),
        SkipReason::LedgerFull
    );
    assert_eq!(engine.position_count(MASTER), 2);
}

#[test]
fn offline_follower_does_not_stop_copying_for_the_others() {
    // Shows (review F9) that a follower that never answers does not pin closed positions: at the master's close its
    // long-expired, unconfirmed open is settled as lost, so new trades keep reaching the online follower.
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n[[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\n"
    );
    let mut config = config_with("", "", &follows);
    config.server.positions_per_master_max = 3;
    let mut engine = engine(&config);
    let mut now = NOON_MS;
    for pos in 1..=3u64 {
        let out = on_event(&mut engine, MASTER, &open(pos, Side::Buy, 0.1), now);
        fill_exactly(&mut engine, &out[0], now);
        now += 60_000;
        let out = on_event(&mut engine, MASTER, &close(pos, 0.1, Some(0.0)), now);
        assert_eq!(
            skip_of(&out[1]),
            SkipReason::NoCopy,
            "SLAVE_B's open expired unanswered"
        );
        fill_exactly(&mut engine, &out[0], now);
        on_state(
            &mut engine,
            SLAVE_A,
            &state(1e3, 1e3, vec![], None),
            now + 1,
        );
        on_snapshot(&mut engine, MASTER, &snapshot(vec![], 1e4, 1e4), now + 2);
        now += 3_600_000;
    }
    assert_eq!(engine.position_count(MASTER), 0);
    assert_eq!(
        (engine.active_copies(SLAVE_A), engine.active_copies(SLAVE_B)),
        (0, 0)
    );
    let out = on_event(&mut engine, MASTER, &open(4, Side::Buy, 0.1), now);
    assert!(
        matches!(out[0].outcome, Outcome::Copy(_)),
        "{:?}",
        out[0].outcome
    );
    // Had the lost open run after all, the slave's next state shows the tag, and it is closed as an orphan.
    let late = vec![tagged(MASTER, 2, "EURUSD", Side::Buy, 0.1)];
    let out = on_state(&mut engine, SLAVE_B, &state(1e3, 1e3, late, None), now + 1);
    assert_eq!(
        (out[0].pos, copy_of(&out[0]).action, copy_of(&out[0]).volume),
        (2, CopyAction::Close, 0.1)
    );
}

#[test]
fn overdue_open_of_a_closed_position_settles_at_the_next_snapshot() {
    // Shows that when the master closes before an offline follower's open is overdue, the master's next snapshot
    // after the overdue point settles it, so the position leaves the ledger.
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n[[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\n"
    );
    let mut engine = engine(&config_with("", "", &follows));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(
        &mut engine,
        MASTER,
        &close(1, 0.1, Some(0.0)),
        NOON_MS + 1_000,
    );
    assert_eq!(
        copy_of(&out[1]).action,
        CopyAction::Close,
        "not overdue yet: SLAVE_B gets its close"
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 1_001);
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 1e4, 1e4),
        NOON_MS + 2_000,
    );
    assert_eq!(
        engine.position_count(MASTER),
        1,
        "SLAVE_B's open may still run"
    );
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 1e4, 1e4),
        NOON_MS + 60_000,
    );
    assert_eq!(engine.position_count(MASTER), 0);
    assert_eq!(engine.copy_status(MASTER, 1, SLAVE_B), None);
}

#[test]
fn closed_unsettled_positions_are_bounded_apart_from_open_ones() {
    // Shows that closed positions waiting on a follower do not count against positions_per_master_max, are bounded
    // by closed_positions_remembered_max with the oldest evicted and counted, and eviction uncounts active copies.
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n\
         [[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\nmode = \"frozen\"\n"
    );
    let mut config = config_with("", "", &follows);
    config.server.positions_per_master_max = 1;
    config.server.closed_positions_remembered_max = 2;
    let mut engine = engine(&config);
    let mut held = Vec::new();
    for pos in 1..=3u64 {
        let now = NOON_MS + pos * 10;
        let out = on_event(&mut engine, MASTER, &open(pos, Side::Buy, 0.1), now);
        assert!(
            matches!(out[0].outcome, Outcome::Copy(_)),
            "pos {pos}: {:?}",
            out[0].outcome
        );
        fill_exactly(&mut engine, &out[0], now);
        // The frozen SLAVE_B holds a copy by hand-made tag: adopted, active, and never closed while frozen.
        held.push(tagged(MASTER, pos, "EURUSD", Side::Buy, 0.1));
        on_state(
            &mut engine,
            SLAVE_B,
            &state(1e3, 1e3, held.clone(), None),
            now + 1,
        );
        let out = on_event(&mut engine, MASTER, &close(pos, 0.1, Some(0.0)), now + 2);
        assert_eq!(skip_of(&out[1]), SkipReason::Frozen);
        fill_exactly(&mut engine, &out[0], now + 2);
    }
    assert_eq!(engine.open_position_count(MASTER), 0);
    assert_eq!(
        engine.position_count(MASTER),
        2,
        "positions 2 and 3 wait for SLAVE_B"
    );
    assert_eq!(engine.evicted_unsettled_total(MASTER), 1);
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_B),
        None,
        "the oldest was evicted"
    );
    assert_eq!(
        engine.active_copies(SLAVE_B),
        2,
        "the evicted copy is uncounted"
    );
    assert!(
        on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS + 100).is_empty(),
        "an evicted id is remembered like a settled one"
    );
}

#[test]
fn replay_gives_identical_decisions() {
    // Shows determinism: two engines fed the same inputs with the same times give identical decisions.
    let run = || {
        let mut engine = two_followers();
        let mut all = Vec::new();
        all.extend(on_event(
            &mut engine,
            MASTER,
            &open(3, Side::Buy, 0.7),
            NOON_MS,
        ));
        all.extend(on_event(
            &mut engine,
            MASTER,
            &open(1, Side::Sell, 0.2),
            NOON_MS + 1,
        ));
        all.extend(on_snapshot(
            &mut engine,
            MASTER,
            &snapshot(
                vec![snapshot_position(3, Side::Buy, 0.3, 1.09, 1.12)],
                1e4,
                1e4,
            ),
            NOON_MS + 2,
        ));
        all.extend(on_state(
            &mut engine,
            SLAVE_A,
            &state(
                1e3,
                1e3,
                vec![tagged(MASTER, 1, "EURUSD", Side::Sell, 0.4)],
                None,
            ),
            NOON_MS + 3,
        ));
        all
    };
    let first = run();
    assert!(first.len() >= 6);
    assert_eq!(first, run());
}

#[test]
fn refused_pending_copy_of_a_filled_order_is_opened_at_market() {
    // Shows: the master's pending fills while its copy is on the way; the slave refuses the pending (its market is past the trigger), so the engine opens the copy at market.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &pending(7, Side::BuyStop, 0.3, 1.11), NOON_MS);
    let pending_copy = copy_of(&out[0]).clone();
    assert_eq!(pending_copy.action, CopyAction::Pending);
    let mut fill = open(7, Side::Buy, 0.3);
    fill.price = 1.11;
    assert!(on_event(&mut engine, MASTER, &fill, NOON_MS + 1).is_empty());
    let mut out = Vec::new();
    engine.on_slave_result(SLAVE_A, &pending_copy, &rejected(), NOON_MS + 5_000, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let copy = copy_of(&out[0]);
    assert_eq!((copy.action, copy.side, copy.volume, copy.pos), (CopyAction::Open, Side::Buy, 0.3, 7));
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_A), Some(CopyStatus::OpenSent));
}

#[test]
fn refused_pending_copy_of_a_fill_older_than_the_reconcile_age_is_skipped_as_expired() {
    // Shows: the same refusal arriving after reconcile_open_max_age_ms (default 60 s) from the fill opens nothing and says expired.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &pending(7, Side::BuyStop, 0.3, 1.11), NOON_MS);
    let pending_copy = copy_of(&out[0]).clone();
    assert!(on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.3), NOON_MS + 1).is_empty());
    let mut out = Vec::new();
    engine.on_slave_result(SLAVE_A, &pending_copy, &rejected(), NOON_MS + 1 + 60_001, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(skip_of(&out[0]), SkipReason::Expired);
}

#[test]
fn refused_pending_copy_of_an_order_still_pending_opens_nothing() {
    // Shows: a refused pending whose master order has not filled stays refused: nothing is opened at market.
    let mut engine = engine(&one_follow(""));
    let out = on_event(&mut engine, MASTER, &pending(7, Side::BuyStop, 0.3, 1.11), NOON_MS);
    let pending_copy = copy_of(&out[0]).clone();
    let mut out = Vec::new();
    engine.on_slave_result(SLAVE_A, &pending_copy, &rejected(), NOON_MS + 5, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert!(matches!(engine.copy_status(MASTER, 7, SLAVE_A), Some(CopyStatus::NoCopy(_))));
}
