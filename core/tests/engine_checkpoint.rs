//! Restoring an engine checkpoint into an engine built from a changed
//! config: accounts gone from the config are dropped, accounts new in it
//! start empty, and copies are matched to followers by slave login.

mod engine_support;

use engine_support::*;
use tradebridge_core::config::Config;
use tradebridge_core::engine::ledger::{CopyStatus, NoCopyCause};
use tradebridge_core::engine::{EngineState, RestoreReport};
use tradebridge_core::protocol::Side;

/// The two-master config with only `slave` among the slaves, following MASTER.
fn config_following(slave: u64) -> Config {
    let mut config = config_with("", "", &format!("[[follow]]\nslave = {slave}\nmaster = {MASTER}\n"));
    let other = if slave == SLAVE_A { SLAVE_B } else { SLAVE_A };
    config.accounts.retain(|account| account.login != other);
    config
}

#[test]
fn restore_drops_removed_accounts_and_leaves_new_ones_empty() {
    // Shows: a checkpoint with SLAVE_B holding a copy, restored under a config where SLAVE_B is gone and SLAVE_A follows instead, drops SLAVE_B (reported), keeps the master's position, and gives SLAVE_A a lost (retryable) copy and no active one, so the close that follows sends SLAVE_A nothing.
    let before = config_following(SLAVE_B);
    let mut engine = engine(&before);
    on_state(&mut engine, SLAVE_B, &state(1e4, 1e4, vec![], Some(vec![fx("EURUSD")])), NOON_MS);
    let opened = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS);
    assert_eq!(opened.len(), 1);
    fill_exactly(&mut engine, &opened[0], NOON_MS);
    assert_eq!(engine.copy_status(MASTER, 7, SLAVE_B), Some(CopyStatus::Open));
    let bytes = tradebridge_core::checkpoint::encode(3, &engine.state(), 0).expect("serializes");
    let (_, state): (u64, EngineState) = tradebridge_core::checkpoint::decode(&bytes).expect("reads back");

    let after = config_following(SLAVE_A);
    let mut restored = engine_support::engine(&after);
    let report = restored.restore(state);
    assert_eq!(
        report,
        RestoreReport { accounts_dropped: vec![SLAVE_B], symbol_tables_dropped: vec![], masters_refollowed: vec![MASTER] }
    );
    assert_eq!(restored.position_count(MASTER), 1, "the master's position survives");
    assert_eq!(restored.copy_status(MASTER, 7, SLAVE_B), None, "SLAVE_B no longer follows");
    assert_eq!(restored.copy_status(MASTER, 7, SLAVE_A), Some(CopyStatus::NoCopy(NoCopyCause::Lost)));
    assert_eq!(restored.active_copies(SLAVE_A), 0);
    let closed = on_event(&mut restored, MASTER, &close(7, 0.1, Some(0.0)), NOON_MS + 1_000);
    assert!(closed.iter().all(|decision| !matches!(decision.outcome, tradebridge_core::engine::Outcome::Copy(_))), "{closed:?}");
    assert_eq!(restored.open_position_count(MASTER), 0);
}

#[test]
fn a_follow_removed_since_the_checkpoint_frees_the_slaves_position_slots() {
    // Shows: SLAVE_B (max_positions = 1) holds an open copy of MASTER when the checkpoint is taken; restored under a config where SLAVE_B follows only MASTER_2, that copy is gone from MASTER's ledger, so it no longer counts against SLAVE_B's slots (as a replay of the journal under the new config would count it) and MASTER_2's open is copied instead of being skipped for max_positions.
    let follows = |masters: &[u64]| {
        masters.iter().map(|master| format!("[[follow]]\nslave = {SLAVE_B}\nmaster = {master}\n")).collect::<String>()
    };
    let before = config_with("", "max_positions = 1", &follows(&[MASTER, MASTER_2]));
    let mut engine = engine(&before);
    on_state(&mut engine, SLAVE_B, &state(1e4, 1e4, vec![], Some(vec![fx("EURUSD")])), NOON_MS);
    let opened = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.1), NOON_MS);
    assert_eq!(opened.len(), 1);
    fill_exactly(&mut engine, &opened[0], NOON_MS);
    assert_eq!(engine.active_copies(SLAVE_B), 1);
    let bytes = tradebridge_core::checkpoint::encode(3, &engine.state(), 0).expect("serializes");
    let (_, state): (u64, EngineState) = tradebridge_core::checkpoint::decode(&bytes).expect("reads back");

    let after = config_with("", "max_positions = 1", &follows(&[MASTER_2]));
    let mut restored = engine_support::engine(&after);
    let report = restored.restore(state);
    assert_eq!(report.masters_refollowed, vec![MASTER]);
    assert_eq!(restored.copy_status(MASTER, 7, SLAVE_B), None, "SLAVE_B no longer follows MASTER");
    assert_eq!(restored.active_copies(SLAVE_B), 0, "the dropped copy no longer takes a slot");
    let copied = on_event(&mut restored, MASTER_2, &open(9, Side::Buy, 0.1), NOON_MS + 1_000);
    assert!(
        copied.iter().any(|decision| matches!(decision.outcome, tradebridge_core::engine::Outcome::Copy(_))),
        "MASTER_2's open is copied: {copied:?}"
    );
    assert_eq!(restored.active_copies(SLAVE_B), 1);
}
