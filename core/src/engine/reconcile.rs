//! Reconciliation: a master `snapshot` against the ledger, a slave `state`
//! against the ledger, and `on_limit = "close_all"` when a slave breaches a
//! limit.
//!
//! # Layout
//! - `Engine::reconcile_snapshot`: unknown positions open, missing ones
//!   close, lower volumes close partially, changed stops modify.
//! - `Engine::reconcile_state`: figures and symbols, `close_all`, then each
//!   follow's copies against the slave's tagged positions, then tagged
//!   positions the ledger no longer holds.
//! - `reconcile_copy`: one copy against what the slave reports of it.
//!
//! # Invariants
//! - When the master or slave agrees with the ledger, nothing is appended.
//! - Untagged slave positions, and tags of masters the slave does not
//!   follow, are never touched.
//! - A copy with an instruction in flight is not second-guessed (a close in
//!   flight is not yet visible in the slave's `state`), except an open whose
//!   result is overdue well past its expiry.
//! - A `state` never re-opens a copy the slave closed itself (its stop hit,
//!   or a manual close): only copies that never got opened are retried.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{CopyMode, FollowConfig};
use crate::protocol::{CopyAction, Side, Snapshot, SnapshotPosition, State};

use super::events::{
    decide_exit, exit_instruction, open_copy, MasterContext, NewPosition, OpenRequest,
};
use super::filters::effective_mode;
use super::ledger::{CopyStatus, MasterPosition, NoCopyCause, SlaveCopy};
use super::lots::{lots_to_units, units_to_lots, UNITS_MAX};
use super::risk::{AccountFigures, FollowSlot, SlaveBook};
use super::{copy_tag, parse_copy_tag, Decision, Engine, Outcome, SkipReason};
use crate::config::OnLimit;

/// What a slave's `state` shows of one tagged copy.
#[derive(Clone, Debug, PartialEq)]
struct Tagged {
    /// Volume summed over every position carrying the tag.
    units: u64,
    /// Slave symbol and side of the (first) tagged position.
    symbol: String,
    /// Slave side of the (first) tagged position.
    side: Side,
}

/// The tagged positions of a `state`, for the masters this slave follows.
fn tagged_positions(state: &State, follows: &[FollowSlot]) -> BTreeMap<(u64, u64), Tagged> {
    let mut tags = BTreeMap::new();
    for position in &state.positions {
        let Some((master, pos)) = parse_copy_tag(&position.comment) else {
            continue;
        };
        if position.symbol.is_empty() {
            // A position needs a symbol to be closed or counted; a broken or
            // hostile Executor's nameless entry is ignored.
            continue;
        }
        if follows
            .binary_search_by_key(&master, |slot| slot.master)
            .is_err()
        {
            continue;
        }
        let units = lots_to_units(position.volume).unwrap_or(0);
        if units == 0 {
            // A position of no volume (or not a number) holds nothing; taken
            // as held it would keep the copy active, and its max_positions
            // slot taken, with nothing to close.
            continue;
        }
        tags.entry((master, pos))
            .and_modify(|tagged: &mut Tagged| {
                // Saturate like every volume: a slave cannot make us overflow.
                tagged.units = (tagged.units + units).min(UNITS_MAX);
            })
            .or_insert_with(|| Tagged {
                units,
                symbol: position.symbol.clone(),
                side: position.side,
            });
    }
    assert!(tags.len() <= state.positions.len());
    assert!(tags
        .values()
        .all(|tagged| tagged.units > 0 && !tagged.symbol.is_empty()));
    tags
}

/// What reconciling one copy needs besides the copy itself.
struct CopyContext<'a> {
    /// The follower's rules.
    follow: &'a FollowConfig,
    /// The master's login, figures and contracts.
    master: &'a MasterContext<'a>,
    /// Master position id.
    pos: u64,
    /// The master position as the ledger holds it.
    position: &'a MasterPosition,
    /// Bridge time of the state.
    now_ms: u64,
}

/// Reconciles one copy with what the slave reports (`None`: no tagged
/// position). Returns the decision to append, if any.
fn reconcile_copy(
    context: &CopyContext<'_>,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
    reported: Option<&Tagged>,
) -> Option<Outcome> {
    let frozen = effective_mode(context.follow, &slave.risk) == CopyMode::Frozen;
    let open_settled = copy.open_confirmed || copy.open_units == 0;
    if copy.in_flight > 0
        && context.position.closed
        && reported.is_none()
        && copy.held_units() == 0
        && open_settled
    {
        // The master closed it, the ledger has sent closes for all of it,
        // and the slave shows none of it: whatever is in flight is done,
        // even if its result was lost in a disconnect. The position can go.
        copy.in_flight = 0;
    }
    if copy.in_flight > 0 && !settle_open_in_flight(context, slave, copy, reported) {
        return None;
    }
    assert_eq!(copy.in_flight, 0, "nothing in flight from here on");
    let position = context.position;
    match (copy.status, reported) {
        (_, Some(_)) if position.closed && frozen => None,
        (_, Some(tagged)) if position.closed => {
            Some(close_still_held(context, slave, copy, tagged))
        }
        (CopyStatus::Open | CopyStatus::PendingPlaced, Some(tagged)) => {
            if tagged.units != copy.held_units() {
                copy.set_held(tagged.units);
            }
            mark_filled_on_slave(copy, tagged, slave);
            None
        }
        (CopyStatus::Open, None) => {
            // The slave no longer holds it (its stop hit, or closed by hand).
            copy.closed_units = copy.open_units;
            copy.set_status(CopyStatus::Closed, slave);
            None
        }
        (CopyStatus::Closed, None) => {
            // Closed by the engine, nothing in flight, and the slave holds
            // none of it: a close that failed because the position was
            // already gone (its stop hit at the same moment) leaves nothing
            // to wait for, so the copy settles.
            copy.closed_units = copy.open_units;
            assert_eq!(copy.held_units(), 0);
            None
        }
        // The Executors list market positions only, never pending orders,
        // so a placed order's absence from `state` says nothing; once it
        // fills it shows as a position (see `mark_filled_on_slave`).
        (CopyStatus::PendingPlaced, None) => None,
        (_, Some(tagged)) => {
            // The slave holds a copy the ledger thought absent: adopt it.
            adopt(slave, copy, tagged, position);
            None
        }
        (CopyStatus::NoCopy(cause), None)
            if cause.is_retryable() && !position.closed && !frozen =>
        {
            retry_open(context, slave, copy, cause)
        }
        _ => None,
    }
}

/// The master closed the position and the slave still holds `tagged` of
/// it: takes that as the copy and closes it.
fn close_still_held(
    context: &CopyContext<'_>,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
    tagged: &Tagged,
) -> Outcome {
    assert!(context.position.closed && tagged.units > 0);
    adopt(slave, copy, tagged, context.position);
    copy.closed_units += tagged.units;
    copy.in_flight += 1;
    copy.set_status(CopyStatus::Closed, slave);
    assert_eq!(copy.held_units(), 0, "the close takes all the slave holds");
    Outcome::Copy(exit_instruction(
        context.master.login,
        context.pos,
        &context.position.tag,
        CopyAction::Close,
        copy,
        units_to_lots(tagged.units),
        0.0,
    ))
}

/// While an instruction is in flight: confirms an open the slave already
/// shows, or gives up on one whose result is overdue well past its expiry
/// (the Executor refuses expired opens, and the bridge does not deliver
/// them, so such an open never gets a result). Giving up also settles a
/// copy the master closed while its open was undelivered, so the position
/// leaves the ledger. Returns true when nothing is in flight any more and
/// the copy can be reconciled.
fn settle_open_in_flight(
    context: &CopyContext<'_>,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
    reported: Option<&Tagged>,
) -> bool {
    assert!(copy.in_flight > 0);
    let open_unconfirmed = !copy.open_confirmed
        && copy.open_units > 0
        && !matches!(copy.status, CopyStatus::NoCopy(_));
    if !open_unconfirmed {
        return false;
    }
    match reported {
        Some(tagged) => {
            // The result has not come but the slave shows the copy. A copy
            // already being closed waits for its close's result instead.
            if copy.status.is_active() {
                copy.set_held(tagged.units);
                let status = match copy.status {
                    CopyStatus::PendingSent => CopyStatus::PendingPlaced,
                    CopyStatus::OpenSent => CopyStatus::Open,
                    other => other,
                };
                copy.set_status(status, slave);
                mark_filled_on_slave(copy, tagged, slave);
            }
            false
        }
        None if copy.in_flight == 1 && copy.open_overdue(context.now_ms) => {
            copy.settle_lost(slave);
            true
        }
        None => false,
    }
}

/// A copied pending order that the slave reports as a market position
/// filled on the slave (its price got there first): from now on it is an
/// open position with the slave's side, so exits close it rather than send
/// a `cancel` that cannot remove a position.
fn mark_filled_on_slave(copy: &mut SlaveCopy, tagged: &Tagged, slave: &mut SlaveBook) {
    if copy.status != CopyStatus::PendingPlaced || tagged.side.is_pending() {
        return;
    }
    copy.side = tagged.side;
    copy.set_status(CopyStatus::Open, slave);
    assert!(copy.status.is_active() && !copy.side.is_pending());
}

/// Takes a tagged slave position as this copy (the slave's volume is the truth).
fn adopt(slave: &mut SlaveBook, copy: &mut SlaveCopy, tagged: &Tagged, position: &MasterPosition) {
    if !copy.status.is_active() {
        copy.symbol.clone_from(&tagged.symbol);
        copy.side = tagged.side;
        if copy.master_base_units == 0 {
            copy.master_base_units = position.remaining_units;
        }
    }
    copy.set_held(tagged.units);
    assert!(
        !copy.symbol.is_empty(),
        "an adopted copy has the slave's symbol"
    );
    if !position.closed && !copy.status.is_active() && copy.master_base_units > 0 {
        let status = if tagged.side.is_pending() {
            CopyStatus::PendingPlaced
        } else {
            CopyStatus::Open
        };
        copy.set_status(status, slave);
    }
    assert_eq!(copy.held_units(), tagged.units);
}

/// Opens a copy the slave should have and lacks, if the master position is
/// young enough; a repeat of the same unknown-figures skip stays silent.
fn retry_open(
    context: &CopyContext<'_>,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
    cause: NoCopyCause,
) -> Option<Outcome> {
    assert!(cause.is_retryable() && !context.position.closed);
    let age_ms = context.now_ms.saturating_sub(context.position.opened_ms);
    let max_age_ms = context.follow.reconcile_open_max_age_ms;
    if max_age_ms == 0 || age_ms > max_age_ms || context.position.remaining_units == 0 {
        copy.status = CopyStatus::NoCopy(NoCopyCause::Skipped(SkipReason::Expired));
        return Some(Outcome::Skip(SkipReason::Expired));
    }
    let position = context.position;
    let request = OpenRequest {
        follow: context.follow,
        master: context.master,
        pos: context.pos,
        position,
        base_units: position.remaining_units,
        now_ms: context.now_ms,
    };
    match open_copy(&request, slave, copy) {
        // The same unknown figures as before: stay silent until they change.
        Outcome::Skip(reason) if cause == NoCopyCause::Skipped(reason) => None,
        outcome => Some(outcome),
    }
}

impl Engine {
    pub(crate) fn reconcile_snapshot(
        &mut self,
        master: u64,
        snapshot: &Snapshot,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(book) = self.masters.get_mut(&master) else {
            return;
        };
        if snapshot.balance.is_finite() && snapshot.equity.is_finite() {
            book.figures = Some(AccountFigures {
                balance: snapshot.balance,
                equity: snapshot.equity,
            });
        }
        book.snapshot_seen = true;
        let mut entries: Vec<&SnapshotPosition> = snapshot.positions.iter().collect();
        entries.sort_by_key(|entry| entry.pos);
        entries.dedup_by_key(|entry| entry.pos);
        let seen: BTreeSet<u64> = entries.iter().map(|entry| entry.pos).collect();
        for entry in entries {
            self.reconcile_snapshot_entry(master, entry, now_ms, out);
        }
        let book = &self.masters[&master];
        let missing: Vec<u64> = book
            .positions
            .iter()
            .filter(|(pos, position)| !position.closed && !seen.contains(pos))
            .map(|(pos, _)| *pos)
            .collect();
        for pos in missing {
            self.close_position(master, pos, 0, 0.0, now_ms, out);
        }
        self.settle_overdue_closed(master, now_ms);
        let book = &self.masters[&master];
        assert!(book.snapshot_seen);
        assert!(
            book.positions
                .iter()
                .all(|(pos, position)| position.closed || seen.contains(pos)),
            "every open position is in the snapshot"
        );
    }

    /// Closed positions waiting on an open that was never confirmed and is
    /// long past its expiry (a follower offline): the open is settled as
    /// lost, like at the master's close, so the position can leave. Run at
    /// each snapshot, so such a position lingers about a snapshot period.
    fn settle_overdue_closed(&mut self, master: u64, now_ms: u64) {
        let Engine {
            masters, slaves, ..
        } = self;
        let book = masters
            .get_mut(&master)
            .expect("the caller found the master");
        let waiting: Vec<u64> = book.closed_unsettled().iter().copied().collect();
        for pos in waiting {
            let position = book
                .positions
                .get_mut(&pos)
                .expect("closed_unsettled names positions in the ledger");
            assert!(position.closed);
            for (follower, copy) in book.followers.iter().zip(position.copies.iter_mut()) {
                if copy.open_overdue(now_ms) {
                    let slave = slaves
                        .get_mut(&follower.slave)
                        .expect("every follower's slave has a book");
                    copy.settle_lost(slave);
                }
            }
            book.prune(pos);
        }
        assert!(book.closed_unsettled().len() <= book.positions.len());
    }

    fn reconcile_snapshot_entry(
        &mut self,
        master: u64,
        entry: &SnapshotPosition,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(units) = lots_to_units(entry.volume).filter(|units| *units > 0) else {
            return;
        };
        let new = NewPosition {
            pos: entry.pos,
            symbol: &entry.symbol,
            side: entry.side,
            volume: entry.volume,
            price: entry.price,
            sl: entry.sl,
            tp: entry.tp,
            magic: entry.magic,
            comment: &entry.comment,
            from_event: false,
        };
        let book = &self.masters[&master];
        let Some(position) = book.positions.get(&entry.pos) else {
            if !book.recently_closed(entry.pos) {
                self.open_position(master, &new, now_ms, out);
            }
            return;
        };
        if position.closed {
            return;
        }
        if position.side.is_pending() && !entry.side.is_pending() {
            self.fill_pending(master, &new, now_ms, out);
            return;
        }
        if !position.side.is_pending() && units < position.remaining_units {
            self.close_position(master, entry.pos, units, 0.0, now_ms, out);
        }
        self.modify_position(master, entry.pos, entry.sl, entry.tp, entry.price, out);
    }

    pub(crate) fn reconcile_state(
        &mut self,
        slave: u64,
        state: &State,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(slave_book) = self.slaves.get_mut(&slave) else {
            return;
        };
        slave_book.record_figures(state.balance, state.equity, now_ms);
        if let Some(symbols) = &state.symbols {
            slave_book.symbols.merge(symbols);
        }
        let mut tags = tagged_positions(state, &slave_book.follows);
        let still_tagged: BTreeSet<(u64, u64)> = tags.keys().copied().collect();
        slave_book
            .orphan_closes
            .retain(|key| still_tagged.contains(key));
        let slots = self.slaves[&slave].follows.len();
        for index in 0..slots {
            let slot = self.slaves[&slave].follows[index];
            self.reconcile_follow(slave, slot, &mut tags, now_ms, out);
        }
        // After reconciliation, so that a copy this state shows held again
        // (its close failed) is closed in the same round.
        self.enforce_limits(slave, now_ms, out);
        self.close_orphans(slave, tags, out);
        let slave_book = &self.slaves[&slave];
        assert!(
            slave_book.orphan_closes.len() <= still_tagged.len(),
            "only tags still shown are remembered"
        );
    }

    /// A pending copy the slave could not place although the master's order
    /// has filled meanwhile (typically a slave that was offline: its market
    /// is past the trigger by the time the order arrives). The slave lacks
    /// the position, so it is opened at market as reconciliation would a
    /// lost open: only while the position is younger than
    /// `reconcile_open_max_age_ms`, guarded by `max_dev`, else skipped as
    /// `expired`.
    pub(crate) fn open_after_refused_pending(
        &mut self,
        master: u64,
        pos: u64,
        slave: u64,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let (Some(book), Some(slave_book)) = (masters.get_mut(&master), slaves.get_mut(&slave)) else {
            return;
        };
        let Some(slot) = book.slot_of(slave) else {
            return;
        };
        let follow = &follows[book.followers[slot].follow];
        let master_context = MasterContext {
            login: master,
            figures: book.figures,
            contracts: &book.contracts,
        };
        let Some(position) = book.positions.get_mut(&pos) else {
            return;
        };
        assert!(!position.side.is_pending() && !position.closed, "only a filled, open position is opened late");
        let mut copies = std::mem::take(&mut position.copies);
        let copy = &mut copies[slot];
        assert_eq!(copy.status, CopyStatus::NoCopy(NoCopyCause::Lost));
        let context = CopyContext {
            follow,
            master: &master_context,
            pos,
            position,
            now_ms,
        };
        if let Some(outcome) = retry_open(&context, slave_book, copy, NoCopyCause::Lost) {
            out.push(Decision {
                slave,
                master,
                pos,
                outcome,
            });
        }
        position.copies = copies;
    }

    /// One follow's copies against the slave's tagged positions; the tags
    /// it accounts for are removed from `tags`.
    fn reconcile_follow(
        &mut self,
        slave: u64,
        slot: FollowSlot,
        tags: &mut BTreeMap<(u64, u64), Tagged>,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let book = masters
            .get_mut(&slot.master)
            .expect("a follow slot names a configured master");
        let slave_book = slaves.get_mut(&slave).expect("the caller found the slave");
        let follow = &follows[slot.follow];
        let master_context = MasterContext {
            login: slot.master,
            figures: book.figures,
            contracts: &book.contracts,
        };
        let mut settled = Vec::new();
        for (pos, position) in book.positions.iter_mut() {
            let reported = tags.remove(&(slot.master, *pos));
            let mut copies = std::mem::take(&mut position.copies);
            let context = CopyContext {
                follow,
                master: &master_context,
                pos: *pos,
                position,
                now_ms,
            };
            if let Some(outcome) = reconcile_copy(
                &context,
                slave_book,
                &mut copies[slot.slot],
                reported.as_ref(),
            ) {
                out.push(Decision {
                    slave,
                    master: slot.master,
                    pos: *pos,
                    outcome,
                });
            }
            position.copies = copies;
            if position.is_settled() {
                settled.push(*pos);
            }
        }
        for pos in settled {
            book.prune(pos);
        }
    }

    /// Tagged slave positions with no ledger entry: closed when the master
    /// position is known to be gone (closed recently, or absent from a
    /// snapshot-complete book); left alone otherwise.
    fn close_orphans(
        &mut self,
        slave: u64,
        tags: BTreeMap<(u64, u64), Tagged>,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let slave_book = slaves.get_mut(&slave).expect("the caller found the slave");
        for ((master, pos), tagged) in tags {
            let book = &masters[&master];
            let Some(slot) = slave_book.follows.iter().find(|slot| slot.master == master) else {
                continue;
            };
            let frozen =
                effective_mode(&follows[slot.follow], &slave_book.risk) == CopyMode::Frozen;
            let gone = book.recently_closed(pos) || book.snapshot_seen;
            if frozen || !gone || !slave_book.orphan_closes.insert((master, pos)) {
                continue;
            }
            let mut copy = SlaveCopy::new(CopyStatus::Closed);
            copy.symbol = tagged.symbol;
            copy.side = tagged.side;
            let instruction = exit_instruction(
                master,
                pos,
                &copy_tag(master, pos),
                CopyAction::Close,
                &copy,
                units_to_lots(tagged.units),
                0.0,
            );
            out.push(Decision {
                slave,
                master,
                pos,
                outcome: Outcome::Copy(instruction),
            });
        }
    }

    /// `on_limit = "close_all"`: while a limit is breached, ends every copy
    /// of the slave that is active. The first `state` of a breach ends them
    /// all; an exit makes its copy inactive, so later states send nothing
    /// unless a copy is active again (its close failed and this `state`
    /// re-adopted it), which is then closed again until the breach ends.
    fn enforce_limits(&mut self, slave: u64, now_ms: u64, out: &mut Vec<Decision>) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let slave_book = slaves.get_mut(&slave).expect("the caller found the slave");
        if slave_book.risk.on_limit != OnLimit::CloseAll || slave_book.limit_hit(now_ms).is_none() {
            return;
        }
        let active_before = slave_book.active_total;
        for index in 0..slave_book.follows.len() {
            let slot = slave_book.follows[index];
            let follow = &follows[slot.follow];
            let book = masters
                .get_mut(&slot.master)
                .expect("a follow slot names a configured master");
            for (pos, position) in book.positions.iter_mut() {
                let copy = &mut position.copies[slot.slot];
                if !copy.status.is_active() {
                    continue;
                }
                if let Outcome::Copy(instruction) =
                    decide_exit(follow, slave_book, copy, slot.master, *pos, &position.tag)
                {
                    out.push(Decision {
                        slave,
                        master: slot.master,
                        pos: *pos,
                        outcome: Outcome::Copy(instruction),
                    });
                }
            }
        }
        assert!(
            slave_book.active_total <= active_before,
            "closing everything never adds a copy"
        );
        assert!(slave_book.limit_hit(now_ms).is_some());
    }
}
