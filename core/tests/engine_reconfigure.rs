//! A configuration change applied to a running engine between two events
//! (`Engine::reconfigure`): follows begun, ended (their copies left or
//! closed as `on_remove` says), changed in place, and accounts removed;
//! and the same engine as a checkpoint restored under the new config.

mod engine_support;

use engine_support::*;
use tradebridge_core::config::Config;
use tradebridge_core::engine::ledger::{CopyStatus, NoCopyCause};
use tradebridge_core::engine::{Decision, Engine, EngineState, Outcome};
use tradebridge_core::protocol::{CopyAction, Side};

fn follows(pairs: &[(u64, u64, &str)]) -> String {
    pairs.iter().map(|(slave, master, rules)| format!("[[follow]]\nslave = {slave}\nmaster = {master}\n{rules}\n")).collect()
}

fn reconfigure(engine: &mut Engine, config: &Config) -> (tradebridge_core::engine::ReconfigureReport, Vec<Decision>) {
    let mut out = Vec::new();
    let report = engine.reconfigure(config, &mut out);
    (report, out)
}

/// SLAVE_A and SLAVE_B ready to trade EURUSD.
fn ready(engine: &mut Engine) {
    for slave in [SLAVE_A, SLAVE_B] {
        on_state(engine, slave, &state(1e4, 1e4, vec![], Some(vec![fx("EURUSD")])), NOON_MS);
    }
}

fn copies(decisions: &[Decision]) -> Vec<(u64, CopyAction, f64)> {
    decisions
        .iter()
        .filter_map(|decision| match &decision.outcome {
            Outcome::Copy(instruction) => Some((decision.slave, instruction.action, instruction.volume)),
            Outcome::Skip(_) => None,
        })
        .collect()
}

#[test]
fn a_follow_added_live_copies_the_next_open_and_not_the_positions_already_open() {
    // Shows: SLAVE_B's follow added between two events is reported as begun, the master's next open is copied to both slaves, and the position open before the change is not opened on SLAVE_B retroactively (a lost copy, as a restore gives it).
    let mut engine = engine(&config_with("", "", &follows(&[(SLAVE_A, MASTER, "")])));
    ready(&mut engine);
    let opened = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &opened[0], NOON_MS);
    let (report, out) = reconfigure(&mut engine, &config_with("", "", &follows(&[(SLAVE_A, MASTER, ""), (SLAVE_B, MASTER, "")])));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(report.follows_begun, vec![(SLAVE_B, MASTER)]);
    assert!(report.follows_ended.is_empty() && report.exits == 0);
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_A), Some(CopyStatus::Open), "the existing copy carries over");
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_B), Some(CopyStatus::NoCopy(NoCopyCause::Lost)));
    let next = on_event(&mut engine, MASTER, &open(8, Side::Sell, 0.2), NOON_MS + 1_000);
    assert_eq!(copies(&next), vec![(SLAVE_A, CopyAction::Open, 0.2), (SLAVE_B, CopyAction::Open, 0.2)]);
}

#[test]
fn a_follow_removed_with_on_remove_close_closes_its_open_copies_and_cancels_its_pending_orders() {
    // Shows: with on_remove = "close", removing the follow decides at once a close of everything SLAVE_A holds of the open position and a cancel of the placed pending order; SLAVE_B's follow is untouched, SLAVE_A's slots are free, and the master's later close sends SLAVE_A nothing more.
    let rules = "on_remove = \"close\"";
    let before = config_with("", "", &follows(&[(SLAVE_A, MASTER, rules), (SLAVE_B, MASTER, "")]));
    let mut engine = engine(&before);
    ready(&mut engine);
    for decision in on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.3), NOON_MS) {
        fill_exactly(&mut engine, &decision, NOON_MS);
    }
    for decision in on_event(&mut engine, MASTER, &pending(9, Side::BuyLimit, 0.1, 1.05), NOON_MS) {
        fill_exactly(&mut engine, &decision, NOON_MS);
    }
    assert_eq!(engine.active_copies(SLAVE_A), 2);
    let (report, out) = reconfigure(&mut engine, &config_with("", "", &follows(&[(SLAVE_B, MASTER, "")])));
    assert_eq!(report.follows_ended, vec![(SLAVE_A, MASTER)]);
    assert_eq!(report.exits, 2);
    assert_eq!(copies(&out), vec![(SLAVE_A, CopyAction::Close, 0.3), (SLAVE_A, CopyAction::Cancel, 0.0)]);
    assert!(out.iter().all(|decision| copy_of(decision).comment == format!("tc:{MASTER}:{}", decision.pos)));
    assert_eq!(engine.active_copies(SLAVE_A), 0, "the ended follow holds no slot");
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_A), None);
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_B), Some(CopyStatus::Open));
    let closed = on_event(&mut engine, MASTER, &close(7, 0.3, Some(0.0)), NOON_MS + 1_000);
    assert_eq!(copies(&closed), vec![(SLAVE_B, CopyAction::Close, 0.3)]);
}

#[test]
fn a_follow_removed_with_the_default_leaves_its_copies_to_the_slave() {
    // Shows: on_remove defaults to "leave": removing the follow decides nothing, the slave's tagged position is left alone by its next state (no orphan close), and the master's close of that position sends SLAVE_A nothing.
    let mut engine = engine(&config_with("", "", &follows(&[(SLAVE_A, MASTER, "")])));
    ready(&mut engine);
    let opened = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &opened[0], NOON_MS);
    let (report, out) = reconfigure(&mut engine, &config_with("", "", ""));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!((report.follows_ended, report.exits), (vec![(SLAVE_A, MASTER)], 0));
    let later = on_state(&mut engine, SLAVE_A, &state(1e4, 1e4, vec![tagged(MASTER, 7, "EURUSD", Side::Buy, 0.1)], None), NOON_MS + 500);
    assert!(copies(&later).is_empty(), "{later:?}");
    assert!(copies(&on_event(&mut engine, MASTER, &close(7, 0.1, Some(0.0)), NOON_MS + 1_000)).is_empty());
}

#[test]
fn a_follow_changed_in_place_keeps_its_copies_and_sizes_new_opens_by_the_new_rule() {
    // Shows: changing a follow's lot rule is neither an end nor a begin; its open copy carries over (the master's close closes what the slave holds, 0.1), and the next open is sized by the new multiplier.
    let mut engine = engine(&config_with("", "", &follows(&[(SLAVE_A, MASTER, "")])));
    ready(&mut engine);
    let opened = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &opened[0], NOON_MS);
    let doubled = config_with("", "", &follows(&[(SLAVE_A, MASTER, "lot = { mode = \"multiplier\", value = 2.0 }")]));
    let (report, out) = reconfigure(&mut engine, &doubled);
    assert!(out.is_empty() && report.is_quiet(), "{report:?} {out:?}");
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_A), Some(CopyStatus::Open));
    assert_eq!(copies(&on_event(&mut engine, MASTER, &open(8, Side::Buy, 0.1), NOON_MS + 1_000)), vec![(SLAVE_A, CopyAction::Open, 0.2)]);
    assert_eq!(copies(&on_event(&mut engine, MASTER, &close(7, 0.1, Some(0.0)), NOON_MS + 2_000)), vec![(SLAVE_A, CopyAction::Close, 0.1)]);
}

#[test]
fn a_master_removed_ends_its_follows_and_closes_where_they_say_so() {
    // Shows: removing MASTER's account ends both its follows; SLAVE_A's (on_remove = "close") gets a close of its copy, SLAVE_B's (leave) nothing, and the report names the dropped account.
    let before = config_with("", "", &follows(&[(SLAVE_A, MASTER, "on_remove = \"close\""), (SLAVE_B, MASTER, "")]));
    let mut engine = engine(&before);
    ready(&mut engine);
    for decision in on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS) {
        fill_exactly(&mut engine, &decision, NOON_MS);
    }
    let mut after = config_with("", "", "");
    after.accounts.retain(|account| account.login != MASTER);
    let (report, out) = reconfigure(&mut engine, &after);
    assert_eq!(report.follows_ended, vec![(SLAVE_A, MASTER), (SLAVE_B, MASTER)]);
    assert_eq!(copies(&out), vec![(SLAVE_A, CopyAction::Close, 0.1)]);
    assert_eq!(report.restore.accounts_dropped, vec![MASTER]);
    assert_eq!(engine.position_count(MASTER), 0, "no book for a removed master");
    assert_eq!((engine.active_copies(SLAVE_A), engine.active_copies(SLAVE_B)), (0, 0));
}

#[test]
fn a_removed_slave_gets_no_exits_it_could_never_receive() {
    // Shows: removing SLAVE_A's account (its follow says on_remove = "close") decides nothing for it: its session is closed, so no close could reach it.
    let mut engine = engine(&config_with("", "", &follows(&[(SLAVE_A, MASTER, "on_remove = \"close\"")])));
    ready(&mut engine);
    let opened = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS);
    fill_exactly(&mut engine, &opened[0], NOON_MS);
    let mut after = config_with("", "", "");
    after.accounts.retain(|account| account.login != SLAVE_A);
    let (report, out) = reconfigure(&mut engine, &after);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!((report.follows_ended, report.exits, report.restore.accounts_dropped), (vec![(SLAVE_A, MASTER)], 0, vec![SLAVE_A]));
}

#[test]
fn a_live_change_gives_the_engine_a_checkpoint_restored_under_the_new_config_gives() {
    // Shows: reconfiguring live and restoring the same state from a checkpoint into an engine of the new config give byte-identical checkpoints, so a replay that meets the change where it was applied rebuilds the same engine.
    let before = config_with("", "max_positions = 3", &follows(&[(SLAVE_A, MASTER, ""), (SLAVE_B, MASTER, ""), (SLAVE_B, MASTER_2, "")]));
    let after = config_with("max_positions = 5", "", &follows(&[(SLAVE_B, MASTER, "lot = { mode = \"fixed\", value = 0.5 }"), (SLAVE_A, MASTER_2, "")]));
    let mut engine = engine(&before);
    ready(&mut engine);
    for (master, pos) in [(MASTER, 7), (MASTER_2, 8), (MASTER, 9)] {
        for decision in on_event(&mut engine, master, &open(pos, Side::Buy, 0.1), NOON_MS + pos) {
            fill_exactly(&mut engine, &decision, NOON_MS + pos);
        }
    }
    let bytes = tradebridge_core::checkpoint::encode(1, &engine.state(), 0).expect("serializes");
    let (_, state): (u64, EngineState) = tradebridge_core::checkpoint::decode(&bytes).expect("reads back");
    let mut restored = Engine::new(&after);
    let restore = restored.restore(state);
    let (report, out) = reconfigure(&mut engine, &after);
    assert!(out.is_empty());
    assert_eq!(report.restore, restore);
    let live = tradebridge_core::checkpoint::encode(2, &engine.state(), 0).expect("serializes");
    let replayed = tradebridge_core::checkpoint::encode(2, &restored.state(), 0).expect("serializes");
    assert!(live == replayed, "the live engine and the restored one differ");
    for engine in [&mut engine, &mut restored] {
        let next = on_event(engine, MASTER_2, &open(10, Side::Sell, 0.1), NOON_MS + 5_000);
        assert_eq!(copies(&next), vec![(SLAVE_A, CopyAction::Open, 0.1)]);
    }
}
