//! The operator's view of a follower (`Engine::follower_positions`): its
//! copies set against its masters' positions, as the admin API shows them.

mod engine_support;

use engine_support::*;
use tradebridge_core::protocol::Side;

#[test]
fn a_followers_view_sets_each_copy_beside_the_masters_position() {
    // Shows: after two opens of which only one fills on SLAVE_A, the view lists both positions, the filled copy matching the master and the unanswered one in flight and not matching; a master close lists the position while the copy's close is in flight, and its result drops the position from the view; a position the slave could not copy (no GBPUSD there) is listed as not matching; an unknown slave has an empty view.
    let mut engine = engine(&one_follow(""));
    on_state(&mut engine, SLAVE_A, &state(1e4, 1e4, vec![], Some(vec![fx("EURUSD")])), NOON_MS);
    let first = on_event(&mut engine, MASTER, &open(7, Side::Buy, 0.3), NOON_MS);
    fill_exactly(&mut engine, &first[0], NOON_MS);
    on_event(&mut engine, MASTER, &open(8, Side::Sell, 0.2), NOON_MS + 1);
    let view = engine.follower_positions(SLAVE_A);
    assert_eq!(view.len(), 2, "{view:?}");
    assert_eq!((view[0].master, view[0].pos, view[0].side, view[0].master_lots, view[0].copy_lots), (MASTER, 7, "buy", 0.3, 0.3));
    assert_eq!(view[0].copy_status, "open");
    assert!(view[0].matches_master && view[0].in_flight == 0);
    assert_eq!((view[1].pos, view[1].copy_status.as_str(), view[1].in_flight), (8, "open_sent", 1));
    assert!(view[1].copy_lots > 0.0 && view[1].matches_master, "an open in flight is counted as held: {:?}", view[1]);
    let closed = on_event(&mut engine, MASTER, &close(7, 0.3, Some(0.0)), NOON_MS + 2);
    let during = engine.follower_positions(SLAVE_A);
    assert!(during[0].master_closed && during[0].in_flight == 1 && during[0].copy_lots == 0.0 && during[0].matches_master, "closed by the master, listed while the copy's close is in flight: {:?}", during[0]);
    fill_exactly(&mut engine, &closed[0], NOON_MS + 3);
    let after = engine.follower_positions(SLAVE_A);
    assert_eq!(after.iter().map(|row| row.pos).collect::<Vec<_>>(), vec![8]);
    on_event(&mut engine, MASTER, &open_on(9, "GBPUSD", Side::Buy, 0.1), NOON_MS + 4);
    let missing = engine.follower_positions(SLAVE_A).into_iter().find(|row| row.pos == 9).expect("the skipped position is listed");
    assert!(missing.copy_status.starts_with("no_copy:skipped:") && missing.copy_lots == 0.0 && !missing.matches_master, "{missing:?}");
    assert!(engine.follower_positions(SLAVE_B).is_empty() && engine.follower_positions(1).is_empty());
}
