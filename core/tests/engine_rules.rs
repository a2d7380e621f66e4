//! Follow rules through the engine: lot modes, contract normalisation,
//! symbols, filters, reverse, risk limits, modes, trading hours, unknown
//! slave state.

mod engine_support;

use engine_support::*;
use tradebridge_core::engine::ledger::CopyStatus;
use tradebridge_core::engine::{Engine, Outcome, SkipReason};
use tradebridge_core::protocol::{CopyAction, Side};

fn with_slave_state(
    config: &tradebridge_core::config::Config,
    balance: f64,
    equity: f64,
) -> Engine {
    let mut engine = engine(config);
    let symbols = vec![
        fx("EURUSD"),
        fx("EURUSD.m"),
        fx("GBPUSD"),
        spec("XAUUSD", 0.01, 50.0, 0.01, 2, 100.0),
        spec("GOLD", 0.01, 50.0, 0.01, 2, 10.0),
    ];
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(balance, equity, vec![], Some(symbols)),
        NOON_MS
    )
    .is_empty());
    engine
}

fn open_volume(
    engine: &mut Engine,
    event: &tradebridge_core::protocol::Event,
) -> Result<f64, SkipReason> {
    let out = on_event(engine, MASTER, event, NOON_MS + event.pos);
    match &out[0].outcome {
        Outcome::Copy(copy) => Ok(copy.volume),
        Outcome::Skip(reason) => Err(*reason),
    }
}

#[test]
fn default_lot_rule_copies_the_master_volume() {
    // Shows that a follow without `lot` copies 1:1.
    let mut engine = engine(&one_follow(""));
    assert_eq!(
        open_volume(&mut engine, &open(1, Side::Buy, 0.37)),
        Ok(0.37)
    );
}

#[test]
fn fixed_and_multiplier_work_without_slave_state() {
    // Shows that with no slave state, fixed and multiplier still copy using the default spec (step 0.01, max 100).
    let mut fixed = engine(&one_follow("lot = { mode = \"fixed\", value = 0.25 }"));
    assert_eq!(open_volume(&mut fixed, &open(1, Side::Buy, 3.0)), Ok(0.25));
    let mut multiplier = engine(&one_follow("lot = { mode = \"multiplier\", value = 1.5 }"));
    assert_eq!(
        open_volume(&mut multiplier, &open(1, Side::Buy, 0.333)),
        Ok(0.49)
    );
    assert_eq!(
        open_volume(&mut multiplier, &open(2, Side::Buy, 90.0)),
        Ok(100.0),
        "default max 100"
    );
}

#[test]
fn ratio_modes_need_both_accounts() {
    // Shows balance_ratio and equity_ratio: skipped until the slave state and master snapshot are known, then scaled.
    let mut engine = engine(&one_follow(
        "lot = { mode = \"balance_ratio\", value = 1.0 }",
    ));
    assert_eq!(
        open_volume(&mut engine, &open(1, Side::Buy, 1.0)),
        Err(SkipReason::SlaveStateUnknown)
    );
    on_state(
        &mut engine,
        SLAVE_A,
        &state(2_500.0, 2_400.0, vec![], None),
        NOON_MS,
    );
    assert_eq!(
        open_volume(&mut engine, &open(2, Side::Buy, 1.0)),
        Err(SkipReason::MasterBalanceUnknown)
    );
    on_snapshot(
        &mut engine,
        MASTER,
        &snapshot(vec![], 10_000.0, 8_000.0),
        NOON_MS,
    );
    assert_eq!(open_volume(&mut engine, &open(3, Side::Buy, 1.0)), Ok(0.25));
    let mut equity = engine_with("lot = { mode = \"equity_ratio\", value = 2.0 }");
    on_state(
        &mut equity,
        SLAVE_A,
        &state(2_500.0, 2_400.0, vec![], None),
        NOON_MS,
    );
    on_snapshot(
        &mut equity,
        MASTER,
        &snapshot(vec![], 10_000.0, 8_000.0),
        NOON_MS,
    );
    assert_eq!(
        open_volume(&mut equity, &open(1, Side::Buy, 1.0)),
        Ok(0.6),
        "2400 / 8000 x 2"
    );
}

#[test]
fn empty_slave_account_is_skipped_not_opened_at_the_minimum() {
    // Shows that balance_ratio on a slave with a balance of 0 skips with zero_volume even with below_min = "min".
    let rules = "lot = { mode = \"balance_ratio\", value = 1.0 }\nbelow_min = \"min\"";
    let mut engine = with_slave_state(&one_follow(rules), 0.0, 0.0);
    on_snapshot(&mut engine, MASTER, &snapshot(vec![], 1e4, 1e4), NOON_MS);
    assert_eq!(
        open_volume(&mut engine, &open(1, Side::Buy, 1.0)),
        Err(SkipReason::ZeroVolume)
    );
    let mut funded = with_slave_state(&one_follow(rules), 10.0, 10.0);
    on_snapshot(&mut funded, MASTER, &snapshot(vec![], 1e4, 1e4), NOON_MS);
    assert_eq!(
        open_volume(&mut funded, &open(1, Side::Buy, 1.0)),
        Ok(0.01),
        "0.001 raised to the minimum"
    );
}

#[test]
fn follow_of_an_unconfigured_account_is_inert() {
    // Shows that a follow naming a slave or master with no [[account]] (accepted with a warning) gets no decisions,
    // while the configured follower of the same master is served as usual.
    let follows = format!(
        "[[follow]]\nslave = 999999\nmaster = {MASTER}\n\
         [[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n\
         [[follow]]\nslave = {SLAVE_B}\nmaster = 888888\n"
    );
    let config = config_with("", "", &follows);
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    let mut engine = engine(&config);
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].slave, copy_of(&out[0]).volume), (SLAVE_A, 0.1));
    assert!(on_event(&mut engine, 888_888, &open(1, Side::Buy, 0.1), NOON_MS).is_empty());
    assert!(on_state(
        &mut engine,
        SLAVE_B,
        &state(1e3, 1e3, vec![], None),
        NOON_MS
    )
    .is_empty());
}

fn engine_with(rules: &str) -> Engine {
    engine(&one_follow(rules))
}

#[test]
fn contract_sizes_are_normalised() {
    // Shows master contract (config) / slave contract (state) scaling for multiplier, and none for fixed.
    let mut engine = with_slave_state(&one_follow("symbol_map = { XAUUSD = \"GOLD\" }"), 1e4, 1e4);
    // Master XAUUSD is 100 oz per lot (config); the slave's GOLD is 10 oz per lot.
    assert_eq!(
        open_volume(&mut engine, &open_on(1, "XAUUSD", Side::Buy, 0.1)),
        Ok(1.0)
    );
    let mut fixed = with_slave_state(
        &one_follow("symbol_map = { XAUUSD = \"GOLD\" }\nlot = { mode = \"fixed\", value = 0.1 }"),
        1e4,
        1e4,
    );
    assert_eq!(
        open_volume(&mut fixed, &open_on(1, "XAUUSD", Side::Buy, 0.5)),
        Ok(0.1)
    );
    // A master symbol missing from `contracts` is taken to match the slave's.
    let mut same = with_slave_state(&one_follow(""), 1e4, 1e4);
    assert_eq!(
        open_volume(&mut same, &open_on(1, "GBPUSD", Side::Buy, 0.5)),
        Ok(0.5)
    );
}

#[test]
fn contract_sizes_out_of_bounds_are_refused_not_divided() {
    // Shows (review F5) that a slave symbol with a contract of 1e-307 is an invalid spec: ignored while the slave's
    // table is otherwise unknown (ratio 1), and a reason to skip with slave_lacks_symbol once the table is known.
    let mut engine = engine(&one_follow(""));
    let tiny = vec![spec("XAUUSD", 0.01, 100.0, 0.01, 2, 1e-307)];
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], Some(tiny.clone())),
        NOON_MS,
    );
    assert_eq!(
        open_volume(&mut engine, &open_on(1, "XAUUSD", Side::Buy, 0.1)),
        Ok(0.1),
        "no valid symbol known yet: the default spec, contract unknown"
    );
    let mut known = tiny;
    known.push(fx("EURUSD"));
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], Some(known)),
        NOON_MS + 1,
    );
    assert_eq!(
        open_volume(&mut engine, &open_on(2, "XAUUSD", Side::Buy, 0.1)),
        Err(SkipReason::SlaveLacksSymbol)
    );
    let huge = vec![spec("XAUUSD", 0.01, 100.0, 0.01, 2, 1e300)];
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, vec![], Some(huge)),
        NOON_MS + 2,
    );
    assert_eq!(
        open_volume(&mut engine, &open_on(3, "XAUUSD", Side::Buy, 0.1)),
        Err(SkipReason::SlaveLacksSymbol)
    );
}

#[test]
fn risk_percent_sizes_from_the_stop() {
    // Shows risk_percent through the engine, and the no_stop_loss skip.
    let mut engine = with_slave_state(
        &one_follow("lot = { mode = \"risk_percent\", value = 1.0 }"),
        10_000.0,
        10_000.0,
    );
    // 1% of 10000 = 100; stop 0.01 away on 100000 units = 1000 per lot -> 0.1 lot.
    assert_eq!(open_volume(&mut engine, &open(1, Side::Buy, 5.0)), Ok(0.1));
    let mut no_stop = open(2, Side::Buy, 5.0);
    no_stop.sl = 0.0;
    assert_eq!(
        open_volume(&mut engine, &no_stop),
        Err(SkipReason::NoStopLoss)
    );
    let mut unknown = engine_with("lot = { mode = \"risk_percent\", value = 1.0 }");
    assert_eq!(
        open_volume(&mut unknown, &open(1, Side::Buy, 5.0)),
        Err(SkipReason::SlaveStateUnknown)
    );
}

#[test]
fn lot_step_min_and_max_come_from_the_slave_symbol() {
    // Shows rounding down to the slave's step, below_min skip/min, clamping to the symbol max and to max_lot.
    let coarse = vec![spec("EURUSD", 0.1, 2.0, 0.1, 5, 100_000.0)];
    let mut engine = engine_with("");
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1e4, 1e4, vec![], Some(coarse.clone())),
        NOON_MS,
    );
    assert_eq!(open_volume(&mut engine, &open(1, Side::Buy, 0.39)), Ok(0.3));
    assert_eq!(
        open_volume(&mut engine, &open(2, Side::Buy, 0.05)),
        Err(SkipReason::BelowMinLot)
    );
    assert_eq!(open_volume(&mut engine, &open(3, Side::Buy, 7.0)), Ok(2.0));
    let mut with_min = engine_with("below_min = \"min\"\nmax_lot = 1.25");
    on_state(
        &mut with_min,
        SLAVE_A,
        &state(1e4, 1e4, vec![], Some(coarse)),
        NOON_MS,
    );
    assert_eq!(
        open_volume(&mut with_min, &open(1, Side::Buy, 0.05)),
        Ok(0.1)
    );
    assert_eq!(
        open_volume(&mut with_min, &open(2, Side::Buy, 1.9)),
        Ok(1.2),
        "max_lot 1.25 on a 0.1 step"
    );
}

#[test]
fn symbols_are_mapped() {
    // Shows symbol_map, then suffix for unmapped symbols; the copy carries the slave's name.
    let mut engine = with_slave_state(
        &one_follow("symbol_suffix = \".m\"\nsymbol_map = { XAUUSD = \"GOLD\" }"),
        1e4,
        1e4,
    );
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert_eq!(copy_of(&out[0]).symbol, "EURUSD.m");
    let out = on_event(
        &mut engine,
        MASTER,
        &open_on(2, "XAUUSD", Side::Buy, 0.1),
        NOON_MS,
    );
    assert_eq!(copy_of(&out[0]).symbol, "GOLD");
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 1);
    assert_eq!(
        copy_of(&out[0]).symbol,
        "EURUSD.m",
        "closes use the copy's symbol"
    );
}

#[test]
fn prefix_and_strip_rules() {
    // Shows strip_suffix then symbol_prefix on the master's name.
    let mut engine = engine_with("strip_suffix = \"-ecn\"\nsymbol_prefix = \"m.\"");
    let out = on_event(
        &mut engine,
        MASTER,
        &open_on(1, "EURUSD-ecn", Side::Buy, 0.1),
        NOON_MS,
    );
    assert_eq!(copy_of(&out[0]).symbol, "m.EURUSD");
}

#[test]
fn symbol_mapped_to_nothing_is_skipped() {
    // Shows (review F4b) that a master symbol that is only the stripped affix maps to "" and is skipped with invalid_symbol.
    let mut engine = engine_with("strip_suffix = \"-ecn\"");
    let out = on_event(
        &mut engine,
        MASTER,
        &open_on(1, "-ecn", Side::Buy, 0.1),
        NOON_MS,
    );
    assert_eq!(skip_of(&out[0]), SkipReason::InvalidSymbol);
    assert_eq!(engine.active_copies(SLAVE_A), 0);
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 1)[0]),
        SkipReason::NoCopy
    );
}

#[test]
fn slave_lacking_the_symbol_is_skipped_once_symbols_are_known() {
    // Shows slave_lacks_symbol only after the slave told its symbols (via state or a symbols frame).
    let mut engine = engine_with("symbol_map = { XAUUSD = \"XAUUSD.pro\" }");
    assert!(
        open_volume(&mut engine, &open_on(1, "XAUUSD", Side::Buy, 0.1)).is_ok(),
        "unknown symbols: copied"
    );
    engine.on_slave_symbols(
        SLAVE_A,
        &tradebridge_core::protocol::Symbols {
            symbols: vec![fx("EURUSD")],
        },
    );
    assert_eq!(
        open_volume(&mut engine, &open_on(2, "XAUUSD", Side::Buy, 0.1)),
        Err(SkipReason::SlaveLacksSymbol)
    );
    let gold = spec("XAUUSD.pro", 0.01, 50.0, 0.01, 2, 100.0);
    engine.on_slave_symbols(
        SLAVE_A,
        &tradebridge_core::protocol::Symbols {
            symbols: vec![gold],
        },
    );
    assert_eq!(
        open_volume(&mut engine, &open_on(3, "XAUUSD", Side::Buy, 0.1)),
        Ok(0.1),
        "frames merge by name"
    );
    assert!(
        open_volume(&mut engine, &open_on(4, "EURUSD", Side::Buy, 0.1)).is_ok(),
        "the first frame's symbols stay"
    );
}

#[test]
fn symbol_allow_and_deny_lists() {
    // Shows the allow and deny lists on the master's symbol.
    let mut engine =
        engine_with("symbols_allow = [\"EURUSD\", \"GBPUSD\"]\nsymbols_deny = [\"GBPUSD\"]");
    assert!(open_volume(&mut engine, &open_on(1, "EURUSD", Side::Buy, 0.1)).is_ok());
    assert_eq!(
        open_volume(&mut engine, &open_on(2, "GBPUSD", Side::Buy, 0.1)),
        Err(SkipReason::SymbolNotAllowed)
    );
    assert_eq!(
        open_volume(&mut engine, &open_on(3, "USDJPY", Side::Buy, 0.1)),
        Err(SkipReason::SymbolNotAllowed)
    );
}

#[test]
fn magic_comment_and_direction_filters() {
    // Shows magic_deny, comment_contains and direction through the engine.
    let mut engine =
        engine_with("magic_deny = [13]\ncomment_contains = \"copy\"\ndirection = \"sell_only\"");
    let mut event = open(1, Side::Sell, 0.1);
    event.comment = "please copy me".into();
    assert!(open_volume(&mut engine, &event).is_ok());
    let mut magic = event.clone();
    magic.pos = 2;
    magic.magic = 13;
    assert_eq!(
        open_volume(&mut engine, &magic),
        Err(SkipReason::MagicFiltered)
    );
    let mut comment = event.clone();
    comment.pos = 3;
    comment.comment = "manual".into();
    assert_eq!(
        open_volume(&mut engine, &comment),
        Err(SkipReason::CommentFiltered)
    );
    let mut buy = open(4, Side::Buy, 0.1);
    buy.comment = "copy".into();
    assert_eq!(
        open_volume(&mut engine, &buy),
        Err(SkipReason::DirectionFiltered)
    );
}

#[test]
fn reverse_copies_the_opposite_trade() {
    // Shows reverse: the slave sells when the master buys, with stop-loss and take-profit swapped, and closes on its own side.
    let mut engine = engine_with("reverse = true");
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    let copy = copy_of(&out[0]);
    assert_eq!((copy.side, copy.sl, copy.tp), (Side::Sell, 1.12, 1.09));
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.13, 0.0),
        NOON_MS + 1,
    );
    assert_eq!((copy_of(&out[0]).sl, copy_of(&out[0]).tp), (1.13, 1.095));
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 2);
    assert_eq!(copy_of(&out[0]).side, Side::Sell);
}

#[test]
fn reverse_maps_pending_orders_keeping_their_price() {
    // Shows (the reviewer's sanity check) reverse on pending orders: buy limit becomes sell stop and buy stop sell
    // limit at the same trigger price, stops swapped, no deviation limit, expiry ttl_ms from now.
    let mut engine = engine_with("reverse = true");
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(1, Side::BuyLimit, 0.1, 1.09),
        NOON_MS,
    );
    let copy = copy_of(&out[0]);
    assert_eq!(
        (
            copy.action,
            copy.side,
            copy.price,
            copy.sl,
            copy.tp,
            copy.max_dev,
            copy.expires_ms
        ),
        (
            CopyAction::Pending,
            Side::SellStop,
            1.09,
            1.12,
            1.09,
            0.0,
            NOON_MS + 5_000
        )
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(2, Side::BuyStop, 0.1, 1.11),
        NOON_MS,
    );
    assert_eq!(copy_of(&out[0]).side, Side::SellLimit);
}

fn two_master_config(slave_keys: &str, rules: &str) -> tradebridge_core::config::Config {
    config_with(
        slave_keys,
        "",
        &format!(
            "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n{rules}\n[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER_2}\n{rules}\n"
        ),
    )
}

#[test]
fn max_positions_counts_across_masters() {
    // Shows max_positions per slave across its masters, freed again by a close.
    let mut engine = engine(&two_master_config("max_positions = 2", ""));
    assert!(matches!(
        on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS)[0].outcome,
        Outcome::Copy(_)
    ));
    assert!(matches!(
        on_event(&mut engine, MASTER_2, &open(1, Side::Buy, 0.1), NOON_MS)[0].outcome,
        Outcome::Copy(_)
    ));
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(2, Side::Buy, 0.1), NOON_MS)[0]),
        SkipReason::MaxPositions
    );
    assert_eq!(engine.active_copies(SLAVE_A), 2);
    on_event(
        &mut engine,
        MASTER_2,
        &close(1, 0.1, Some(0.0)),
        NOON_MS + 1,
    );
    assert!(matches!(
        on_event(&mut engine, MASTER, &open(3, Side::Buy, 0.1), NOON_MS + 2)[0].outcome,
        Outcome::Copy(_)
    ));
}

#[test]
fn max_positions_per_symbol() {
    // Shows max_positions_per_symbol counted on the slave's symbol across masters.
    let mut engine = engine(&two_master_config("max_positions_per_symbol = 1", ""));
    assert!(matches!(
        on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS)[0].outcome,
        Outcome::Copy(_)
    ));
    let out = on_event(&mut engine, MASTER_2, &open(1, Side::Sell, 0.1), NOON_MS);
    assert_eq!(skip_of(&out[0]), SkipReason::MaxPositionsSymbol);
    assert!(matches!(
        on_event(
            &mut engine,
            MASTER_2,
            &open_on(2, "GBPUSD", Side::Buy, 0.1),
            NOON_MS
        )[0]
        .outcome,
        Outcome::Copy(_)
    ));
}

#[test]
fn daily_loss_limit_blocks_opens_but_not_closes() {
    // Shows the daily loss limit in money: opens blocked, closes still flow.
    let mut engine = engine(&two_master_config("daily_loss_money = 100.0", ""));
    on_state(
        &mut engine,
        SLAVE_A,
        &state(5_000.0, 5_000.0, vec![], None),
        NOON_MS,
    );
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS + 1);
    fill_exactly(&mut engine, &out[0], NOON_MS + 1);
    let tagged_copy = tagged(MASTER, 1, "EURUSD", Side::Buy, 0.1);
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(5_000.0, 4_880.0, vec![tagged_copy], None),
        NOON_MS + 2
    )
    .is_empty());
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(2, Side::Buy, 0.1), NOON_MS + 3)[0]),
        SkipReason::DailyLossLimit
    );
    assert_eq!(
        copy_of(&on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 4)[0]).action,
        CopyAction::Close
    );
    let next_day = NOON_MS + 86_400_000;
    assert!(matches!(
        on_event(&mut engine, MASTER, &open(3, Side::Buy, 0.1), next_day)[0].outcome,
        Outcome::Copy(_)
    ));
}

#[test]
fn daily_loss_percent_close_all_closes_every_copy_once() {
    // Shows on_limit = close_all: one close per copied position of the slave across masters, pendings cancelled, issued once.
    let mut engine = engine(&two_master_config(
        "daily_loss_percent = 2.0\non_limit = \"close_all\"",
        "",
    ));
    on_state(
        &mut engine,
        SLAVE_A,
        &state(10_000.0, 10_000.0, vec![], None),
        NOON_MS,
    );
    let first = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.3), NOON_MS);
    fill_exactly(&mut engine, &first[0], NOON_MS);
    let second = on_event(&mut engine, MASTER_2, &open(8, Side::Sell, 0.2), NOON_MS);
    fill_exactly(&mut engine, &second[0], NOON_MS);
    let order = on_event(
        &mut engine,
        MASTER_2,
        &pending(9, Side::BuyLimit, 0.1, 1.05),
        NOON_MS,
    );
    fill_exactly(&mut engine, &order[0], NOON_MS);
    let positions = vec![
        tagged(MASTER, 1, "EURUSD", Side::Buy, 0.3),
        tagged(MASTER_2, 8, "EURUSD", Side::Sell, 0.2),
    ];
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(10_000.0, 9_790.0, positions.clone(), None),
        NOON_MS + 5,
    );
    let actions: Vec<(u64, u64, CopyAction, f64)> = out
        .iter()
        .map(|decision| {
            (
                decision.master,
                decision.pos,
                copy_of(decision).action,
                copy_of(decision).volume,
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            (MASTER, 1, CopyAction::Close, 0.3),
            (MASTER_2, 8, CopyAction::Close, 0.2),
            (MASTER_2, 9, CopyAction::Cancel, 0.0)
        ]
    );
    assert!(
        on_state(
            &mut engine,
            SLAVE_A,
            &state(10_000.0, 9_780.0, positions, None),
            NOON_MS + 6
        )
        .is_empty(),
        "once per breach"
    );
    assert_eq!(engine.active_copies(SLAVE_A), 0);
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &close(1, 0.3, Some(0.0)), NOON_MS + 7)[0]),
        SkipReason::NoCopy
    );
}

/// An engine whose SLAVE_A has equity_floor = 900 with on_limit = close_all, and a state at equity 1000.
fn close_all_engine() -> Engine {
    let config = config_with(
        "equity_floor = 900.0\non_limit = \"close_all\"",
        "",
        &format!("[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n"),
    );
    let mut engine = engine(&config);
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 1_000.0, vec![], None),
        NOON_MS,
    );
    engine
}

/// The number of close instructions among `decisions`.
fn closes(decisions: &[tradebridge_core::engine::Decision]) -> usize {
    decisions
        .iter()
        .filter(|decision| matches!(&decision.outcome, Outcome::Copy(instruction) if instruction.action == CopyAction::Close))
        .count()
}

#[test]
fn close_all_retries_a_close_that_failed_while_the_breach_lasts() {
    // Shows (review F7) that with on_limit = close_all a refused close is sent again at the next state that still
    // shows the copy below the floor, and not once the copy is gone or the breach is over.
    let mut engine = close_all_engine();
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let held = vec![tagged(MASTER, 1, "EURUSD", Side::Buy, 0.1)];
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 850.0, held.clone(), None),
        NOON_MS + 10,
    );
    assert_eq!(closes(&out), 1);
    engine.on_slave_result(SLAVE_A, copy_of(&out[0]), &rejected(), NOON_MS + 20, &mut Vec::new());
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 840.0, held.clone(), None),
        NOON_MS + 1_000,
    );
    assert_eq!(
        closes(&out),
        1,
        "the copy is still held below the floor: {out:?}"
    );
    assert_eq!(copy_of(&out[0]).volume, 0.1);
    assert!(
        on_state(
            &mut engine,
            SLAVE_A,
            &state(1_000.0, 840.0, held, None),
            NOON_MS + 2_000
        )
        .is_empty(),
        "the second close is in flight"
    );
    fill_exactly(&mut engine, &out[0], NOON_MS + 2_001);
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 840.0, vec![], None),
        NOON_MS + 3_000
    )
    .is_empty());
    assert_eq!(engine.active_copies(SLAVE_A), 0);
}

#[test]
fn close_all_closes_a_pending_copy_that_filled_on_the_slave() {
    // Shows (review F7b) that a copied pending order the slave's state shows as a market position is marked open with
    // that side, so close_all sends a close (a cancel cannot remove a position).
    let mut engine = close_all_engine();
    let out = on_event(
        &mut engine,
        MASTER,
        &pending(1, Side::BuyLimit, 0.1, 1.09),
        NOON_MS,
    );
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let held = vec![tagged(MASTER, 1, "EURUSD", Side::Buy, 0.1)];
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 1_000.0, held.clone(), None),
        NOON_MS + 5
    )
    .is_empty());
    assert_eq!(
        engine.copy_status(MASTER, 1, SLAVE_A),
        Some(CopyStatus::Open)
    );
    let out = on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 850.0, held, None),
        NOON_MS + 10,
    );
    let exit = copy_of(&out[0]);
    assert_eq!(
        (exit.action, exit.side, exit.volume),
        (CopyAction::Close, Side::Buy, 0.1)
    );
}

#[test]
fn equity_floor_blocks_opens() {
    // Shows the equity floor blocking opens until equity recovers.
    let mut engine = engine(&two_master_config("equity_floor = 900.0", ""));
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 850.0, vec![], None),
        NOON_MS,
    );
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS)[0]),
        SkipReason::EquityFloor
    );
    on_state(
        &mut engine,
        SLAVE_A,
        &state(1_000.0, 950.0, vec![], None),
        NOON_MS + 1,
    );
    assert!(matches!(
        on_event(&mut engine, MASTER, &open(2, Side::Buy, 0.1), NOON_MS + 2)[0].outcome,
        Outcome::Copy(_)
    ));
}

#[test]
fn close_only_mode_lets_closes_and_modifies_through() {
    // Shows close_only on a follow: opens and pendings skipped, while closes, modifies and cancels of earlier copies flow.
    let follows = format!(
        "[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n[[follow]]\nslave = {SLAVE_B}\nmaster = {MASTER}\nmode = \"close_only\"\n"
    );
    let mut engine = engine(&config_with("", "", &follows));
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert!(matches!(out[0].outcome, Outcome::Copy(_)));
    assert_eq!(skip_of(&out[1]), SkipReason::CloseOnly);
    assert_eq!(
        skip_of(
            &on_event(
                &mut engine,
                MASTER,
                &pending(2, Side::BuyStop, 0.1, 1.2),
                NOON_MS
            )[1]
        ),
        SkipReason::CloseOnly
    );
    // A slave account in close_only still closes what it holds.
    let mut account = engine_for_account_mode("close_only");
    let out = on_event(&mut account, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    assert_eq!(skip_of(&out[0]), SkipReason::CloseOnly);
}

fn engine_for_account_mode(mode: &str) -> Engine {
    engine(&config_with(
        &format!("mode = \"{mode}\""),
        "",
        &format!("[[follow]]\nslave = {SLAVE_A}\nmaster = {MASTER}\n"),
    ))
}

#[test]
fn close_only_still_closes_and_modifies_what_the_slave_holds() {
    // Shows close_only after a restart: the replayed open is skipped, the slave's state shows the copy, and modifies and closes flow.
    let mut engine = engine_with("mode = \"close_only\"");
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.2), NOON_MS)[0]),
        SkipReason::CloseOnly
    );
    let held = vec![tagged(MASTER, 1, "EURUSD", Side::Buy, 0.2)];
    assert!(
        on_state(
            &mut engine,
            SLAVE_A,
            &state(1e3, 1e3, held, None),
            NOON_MS + 1
        )
        .is_empty(),
        "adopted silently"
    );
    let out = on_event(
        &mut engine,
        MASTER,
        &modify(1, 1.095, 1.12, 0.0),
        NOON_MS + 2,
    );
    assert_eq!(copy_of(&out[0]).action, CopyAction::Modify);
    let out = on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.1)), NOON_MS + 3);
    assert_eq!(
        (copy_of(&out[0]).action, copy_of(&out[0]).volume),
        (CopyAction::Close, 0.1)
    );
}

#[test]
fn frozen_mode_sends_nothing() {
    // Shows frozen: every decision is a skip, including closes; the slave's copy is left as it is.
    let mut engine = engine_for_account_mode("frozen");
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS)[0]),
        SkipReason::Frozen
    );
    let mut follow_frozen = engine_with("mode = \"frozen\"");
    assert_eq!(
        skip_of(
            &on_event(
                &mut follow_frozen,
                MASTER,
                &open(1, Side::Buy, 0.1),
                NOON_MS
            )[0]
        ),
        SkipReason::Frozen
    );
    let tags = vec![tagged(MASTER, 1, "EURUSD", Side::Buy, 0.1)];
    on_snapshot(
        &mut follow_frozen,
        MASTER,
        &snapshot(vec![], 1e4, 1e4),
        NOON_MS + 1,
    );
    assert!(
        on_state(
            &mut follow_frozen,
            SLAVE_A,
            &state(1e3, 1e3, tags, None),
            NOON_MS + 2
        )
        .is_empty(),
        "no close while frozen"
    );
}

#[test]
fn frozen_close_is_skipped_and_the_copy_kept() {
    // Shows that a frozen account's copy (seen in its state) is not closed when the master closes: a frozen skip, nothing sent.
    let mut engine = engine_for_account_mode("frozen");
    on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    let held = vec![tagged(MASTER, 1, "EURUSD", Side::Buy, 0.1)];
    assert!(on_state(
        &mut engine,
        SLAVE_A,
        &state(1e3, 1e3, held, None),
        NOON_MS + 1
    )
    .is_empty());
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), NOON_MS + 2)[0]),
        SkipReason::Frozen
    );
    assert_eq!(
        engine.held_volume(MASTER, 1, SLAVE_A),
        Some(0.1),
        "the ledger still knows the slave holds it"
    );
}

#[test]
fn trading_hours_block_opens_not_closes() {
    // Shows hours_utc: an open outside the window is skipped, a close outside it still flows.
    let mut engine = engine_with("hours_utc = \"08:00-13:00\"");
    let out = on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &out[0], NOON_MS);
    let evening = NOON_MS + 6 * 3_600_000;
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(2, Side::Buy, 0.1), evening)[0]),
        SkipReason::OutsideHours
    );
    assert_eq!(
        copy_of(&on_event(&mut engine, MASTER, &close(1, 0.1, Some(0.0)), evening)[0]).action,
        CopyAction::Close
    );
}

#[test]
fn trading_days_block_weekends() {
    // Shows days_utc: a Saturday open is skipped when only weekdays are listed.
    let mut engine = engine_with("days_utc = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]");
    let saturday = NOON_MS + 5 * 86_400_000;
    assert_eq!(
        skip_of(&on_event(&mut engine, MASTER, &open(1, Side::Buy, 0.1), saturday)[0]),
        SkipReason::OutsideHours
    );
    assert!(matches!(
        on_event(&mut engine, MASTER, &open(2, Side::Buy, 0.1), NOON_MS)[0].outcome,
        Outcome::Copy(_)
    ));
}
