//! The position ledger: each master's open positions and, per position,
//! each follower's copy with its status and volumes.
//!
//! # Layout
//! - [`CopyStatus`], [`NoCopyCause`]: the life of one follower's copy.
//! - [`SlaveCopy`]: volumes in units, what is in flight, what was last sent.
//! - [`MasterPosition`]: the master's position and its copies, one per
//!   follower of the master, in follower order.
//! - [`MasterBook`]: one master's positions, figures, followers, and the
//!   bounded memory of recently closed position ids.
//! - `apply_result`: a slave `result` applied to its copy.
//!
//! # Invariants
//! - `MasterPosition::copies.len()` equals the master's follower count.
//! - A copy's `symbol` does not change while its status is active, so the
//!   slave's per-symbol counters stay exact.
//! - What a slave holds of a copy is `open_units - closed_units` (floored at
//!   0): closes in flight count as done, shortfalls reported in results add
//!   back. Sums are exact integers.
//! - Open positions (`positions.len() - closed_unsettled.len()`) number at
//!   most `positions_max`; closed ones still waiting for their copies to
//!   settle at most `closed_remembered_max` (the oldest is evicted, and
//!   counted, beyond it), so one offline follower never blocks the others.
//! - `closed_unsettled` holds exactly the ids of the closed positions in
//!   `positions`, and `closed_recent.len() <= closed_remembered_max`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::protocol::{CopyAction, ResultStatus, Side, TradeResult};

use super::lots::lots_to_units;
use super::risk::{AccountFigures, SlaveBook};
use super::skip::SkipReason;

/// How long past an open's expiry its result may still be on its way. The
/// Executor refuses expired opens, so a copy still missing from the slave's
/// `state` this long after `expires_ms` will not appear; its open is
/// treated as lost. Ten seconds covers a result and a `state` crossing on
/// a slow link.
pub(crate) const RESULT_OVERDUE_MS: u64 = 10_000;

/// Why a follower has no copy of a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoCopyCause {
    /// The engine skipped it for this reason.
    Skipped(SkipReason),
    /// The Executor answered `rejected` or `skipped` to the open.
    Refused,
    /// The open was sent, never confirmed, and the slave's `state` after its
    /// expiry did not show it.
    Lost,
}

impl NoCopyCause {
    /// True when a later `state` may open the copy after all: the open was
    /// lost, or skipped only for want of figures that may since have come.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            NoCopyCause::Lost
                | NoCopyCause::Skipped(
                    SkipReason::SlaveStateUnknown
                        | SkipReason::MasterBalanceUnknown
                        | SkipReason::MasterEquityUnknown
                )
        )
    }
}

/// The life of one follower's copy of one master position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CopyStatus {
    /// A market open was sent; its result has not come.
    OpenSent,
    /// The slave holds the position (by result, by `state`, or assumed
    /// because the copied pending order filled along with the master's).
    Open,
    /// A pending order was sent; its result has not come.
    PendingSent,
    /// The slave holds the pending order.
    PendingPlaced,
    /// Finished: closed or cancelled by the engine, or gone from the slave.
    Closed,
    /// There is no copy.
    NoCopy(NoCopyCause),
}

impl CopyStatus {
    /// True while the copy counts against the slave's position limits.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CopyStatus::OpenSent
                | CopyStatus::Open
                | CopyStatus::PendingSent
                | CopyStatus::PendingPlaced
        )
    }
}

/// One follower's copy of one master position.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SlaveCopy {
    /// Where the copy stands; changed only through `set_status`.
    pub status: CopyStatus,
    /// Slave symbol; set when an open or pending is sent.
    pub symbol: String,
    /// Slave side (reversed when the follow reverses).
    pub side: Side,
    /// Volume opened: the requested volume, replaced by the filled volume
    /// when the result or a `state` confirms it. Base of proportional closes.
    pub open_units: u64,
    /// Volume closed: every close sent, less any shortfall a result reports.
    pub closed_units: u64,
    /// True once a result or a `state` confirmed the open.
    pub open_confirmed: bool,
    /// The master's volume when this copy was opened (the denominator of
    /// proportional closes).
    pub master_base_units: u64,
    /// Opens, pendings, closes and cancels sent for this copy whose result
    /// has not come; reconciliation waits while it is above 0. Modifies are
    /// not counted: they change no volume, and one whose result is lost in
    /// a disconnect (never re-sent, being at or below the slave's
    /// `last_seq`) must not switch reconciliation off for the copy. A
    /// modify is tracked by `sent_sl`, `sent_tp` and `sent_price` instead.
    pub in_flight: u32,
    /// `expires_ms` of the last open or pending sent.
    pub open_expires_ms: u64,
    /// Stop-loss last sent; NaN when unknown (after a refused modify), so
    /// the next comparison sends it again.
    pub sent_sl: f64,
    /// Take-profit last sent; NaN when unknown.
    pub sent_tp: f64,
    /// Pending trigger price last sent (0 for market copies); NaN when unknown.
    pub sent_price: f64,
}

impl SlaveCopy {
    /// A copy not yet decided.
    pub fn new(status: CopyStatus) -> SlaveCopy {
        assert!(
            !status.is_active(),
            "an active copy starts through begin_open"
        );
        SlaveCopy {
            status,
            symbol: String::new(),
            side: Side::Buy,
            open_units: 0,
            closed_units: 0,
            open_confirmed: false,
            master_base_units: 0,
            in_flight: 0,
            open_expires_ms: 0,
            sent_sl: 0.0,
            sent_tp: 0.0,
            sent_price: 0.0,
        }
    }

    /// What the slave holds (or will hold once what is in flight lands).
    pub fn held_units(&self) -> u64 {
        self.open_units.saturating_sub(self.closed_units)
    }

    /// Changes the status, keeping the slave's open-copy counters in step.
    pub(crate) fn set_status(&mut self, status: CopyStatus, slave: &mut SlaveBook) {
        let was_active = self.status.is_active();
        let will_be_active = status.is_active();
        if was_active && !will_be_active {
            slave.deactivate(&self.symbol);
        }
        if !was_active && will_be_active {
            assert!(!self.symbol.is_empty(), "an active copy has a symbol");
            slave.activate(&self.symbol);
        }
        self.status = status;
    }

    /// Records an open or pending order just sent.
    pub(crate) fn begin_open(&mut self, sent: SentOpen, slave: &mut SlaveBook) {
        assert!(
            !self.status.is_active(),
            "no second open while one is active or in flight"
        );
        assert!(sent.units > 0 && sent.master_base_units > 0);
        self.symbol = sent.symbol;
        self.side = sent.side;
        self.open_units = sent.units;
        self.closed_units = 0;
        self.open_confirmed = false;
        self.master_base_units = sent.master_base_units;
        self.in_flight += 1;
        self.open_expires_ms = sent.expires_ms;
        self.sent_sl = sent.sl;
        self.sent_tp = sent.tp;
        self.sent_price = sent.price;
        let status = if sent.side.is_pending() {
            CopyStatus::PendingSent
        } else {
            CopyStatus::OpenSent
        };
        self.set_status(status, slave);
    }

    /// True when an open (or pending) was sent, never confirmed, and is
    /// past its expiry by `RESULT_OVERDUE_MS`: it either never ran, or ran
    /// and its result was lost (then the slave's next `state` shows it).
    pub(crate) fn open_overdue(&self, now_ms: u64) -> bool {
        !self.open_confirmed
            && self.open_units > 0
            && !matches!(self.status, CopyStatus::NoCopy(_))
            && now_ms > self.open_expires_ms.saturating_add(RESULT_OVERDUE_MS)
    }

    /// Gives up an overdue open as lost: nothing held, nothing in flight
    /// (a close sent after it is moot; its late result finds nothing to
    /// change). If the open did run, the slave's next `state` shows the tag
    /// and reconciliation closes it.
    pub(crate) fn settle_lost(&mut self, slave: &mut SlaveBook) {
        assert!(!self.open_confirmed, "only an unconfirmed open is lost");
        self.open_units = 0;
        self.closed_units = 0;
        self.in_flight = 0;
        // A copy already closed (by `close_all`) stays closed, so that a
        // later `state` does not open it again.
        if self.status.is_active() {
            self.set_status(CopyStatus::NoCopy(NoCopyCause::Lost), slave);
        }
        assert_eq!(self.held_units(), 0);
        assert!(!self.status.is_active());
    }

    /// Takes the slave's reported volume as the truth (from `state`).
    pub(crate) fn set_held(&mut self, units: u64) {
        // Keep the opened volume (the base of proportional closes) when the
        // report fits under it; a slave holding more than was opened grew
        // its copy, and that becomes the new opened volume.
        if units <= self.open_units {
            self.closed_units = self.open_units - units;
        } else {
            self.open_units = units;
            self.closed_units = 0;
        }
        self.open_confirmed = true;
        assert_eq!(self.held_units(), units);
    }
}

/// What `begin_open` records.
pub(crate) struct SentOpen {
    /// Slave symbol.
    pub symbol: String,
    /// Slave side.
    pub side: Side,
    /// Volume requested.
    pub units: u64,
    /// Master volume the copy was sized from.
    pub master_base_units: u64,
    /// Expiry of the instruction.
    pub expires_ms: u64,
    /// Stop-loss sent.
    pub sl: f64,
    /// Take-profit sent.
    pub tp: f64,
    /// Price sent.
    pub price: f64,
}

/// A master position (or pending order) and its copies.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MasterPosition {
    /// Master symbol.
    pub symbol: String,
    /// Master side; a pending side until the order fills.
    pub side: Side,
    /// Volume the master still holds, by the latest evidence (an event or a
    /// snapshot, whichever showed less); 0 once closed or cancelled.
    pub remaining_units: u64,
    /// The master's volume when the position opened: from its `open` or
    /// `pending` event (or the `open` of its fill), or from the first
    /// snapshot that showed it until such an event comes. A close event
    /// without `remaining` is measured from it.
    pub opened_units: u64,
    /// True once `opened_units` came from an event rather than a snapshot;
    /// from then on later events do not replace it.
    pub opened_from_event: bool,
    /// Sum of the volumes of the close events seen so far (saturating).
    /// Kept apart from `remaining_units`, which a snapshot may lower: events
    /// arrive in `seq` order and eventually all of them, so a re-sent close
    /// is compared against the events before it, never against a snapshot.
    pub closed_by_events_units: u64,
    /// Open price, or a pending order's trigger price (updated by modifies).
    pub price: f64,
    /// Stop-loss; 0 for none. Changed by modifies and snapshots.
    pub sl: f64,
    /// Take-profit; 0 for none. Changed by modifies and snapshots.
    pub tp: f64,
    /// Master magic number (copied to the slave, used by filters).
    pub magic: u64,
    /// Master comment (used by filters).
    pub comment: String,
    /// `tc:<master>:<pos>`, built once: every instruction for the position
    /// carries it.
    pub tag: String,
    /// Bridge time the engine first learned of the position.
    pub opened_ms: u64,
    /// True once the master closed or cancelled it; the entry stays until
    /// every copy is settled.
    pub closed: bool,
    /// One per follower of the master, in follower order.
    pub copies: Vec<SlaveCopy>,
}

impl MasterPosition {
    /// What the master holds by its events alone: the opened volume less
    /// every close event's volume.
    pub fn remaining_by_events_units(&self) -> u64 {
        self.opened_units
            .saturating_sub(self.closed_by_events_units)
    }

    /// True when nothing remains to be done for this position: the master
    /// closed it and no copy holds volume, waits for a result, or still
    /// counts as active (so pruning it never leaves a slave's open-copy
    /// counters too high).
    pub fn is_settled(&self) -> bool {
        // Results tend to arrive in follower order, so the last copies are
        // the likeliest to be unsettled: scanning from the back stops soonest.
        self.closed
            && self.copies.iter().rev().all(|copy| {
                copy.in_flight == 0 && copy.held_units() == 0 && !copy.status.is_active()
            })
    }
}

/// One follower of a master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Follower {
    /// Slave login.
    pub slave: u64,
    /// Index in `Config::follows`.
    pub follow: usize,
}

/// One master account.
#[derive(Clone, Debug)]
pub(crate) struct MasterBook {
    /// Contract size per master symbol from the master's `[[account]]`.
    pub contracts: BTreeMap<String, f64>,
    /// Balance and equity from the last `snapshot`; `None` until then.
    pub figures: Option<AccountFigures>,
    /// True once a `snapshot` was reconciled: from then on the ledger holds
    /// the master's whole book, and a slave's tag for an unknown position
    /// is known to be stale.
    pub snapshot_seen: bool,
    /// Open positions and closed ones not yet settled, by position id.
    pub positions: BTreeMap<u64, MasterPosition>,
    /// Followers sorted by slave login; position copies use this order.
    pub followers: Vec<Follower>,
    /// Ids of the positions the master closed whose copies have not all
    /// settled yet (they are still in `positions`), in the order the master
    /// closed them. Pushed when a close leaves a position unsettled; removed
    /// when it settles or is evicted.
    pub(crate) closed_unsettled: VecDeque<u64>,
    /// Closed positions evicted unsettled because `closed_unsettled` was
    /// full (a follower offline for long); only grows. For metrics.
    pub evicted_unsettled_total: u64,
    /// Recently settled (or evicted) position ids, oldest first, so that a
    /// late `open` or snapshot entry for them is not copied again.
    pub(crate) closed_recent: VecDeque<u64>,
    /// The same ids, for lookup.
    pub(crate) closed_recent_set: BTreeSet<u64>,
    /// Bound of the open positions (`positions_per_master_max`).
    pub positions_max: usize,
    /// Bound of `closed_recent` and of `closed_unsettled`
    /// (`closed_positions_remembered_max`).
    pub(crate) closed_remembered_max: usize,
}

impl MasterBook {
    pub(crate) fn new(
        contracts: BTreeMap<String, f64>,
        positions_max: usize,
        closed_remembered_max: usize,
    ) -> MasterBook {
        assert!(positions_max > 0);
        MasterBook {
            contracts,
            figures: None,
            snapshot_seen: false,
            positions: BTreeMap::new(),
            followers: Vec::new(),
            closed_unsettled: VecDeque::new(),
            evicted_unsettled_total: 0,
            closed_recent: VecDeque::new(),
            closed_recent_set: BTreeSet::new(),
            positions_max,
            closed_remembered_max,
        }
    }

    /// True when the position is in the ledger or was settled recently.
    pub(crate) fn knows(&self, pos: u64) -> bool {
        self.positions.contains_key(&pos) || self.closed_recent_set.contains(&pos)
    }

    /// True when the position was settled recently.
    pub(crate) fn recently_closed(&self, pos: u64) -> bool {
        self.closed_recent_set.contains(&pos)
    }

    /// The slot of `slave` among the followers, if it follows this master.
    pub(crate) fn slot_of(&self, slave: u64) -> Option<usize> {
        self.followers
            .binary_search_by_key(&slave, |follower| follower.slave)
            .ok()
    }

    /// Positions the master still holds open (closed ones waiting for
    /// their copies do not count against `positions_max`).
    pub(crate) fn open_count(&self) -> usize {
        assert!(self.closed_unsettled.len() <= self.positions.len());
        self.positions.len() - self.closed_unsettled.len()
    }

    /// Closed positions still waiting for their copies to settle.
    pub(crate) fn closed_unsettled(&self) -> &VecDeque<u64> {
        &self.closed_unsettled
    }

    /// Removes the position if it is settled, remembering its id.
    pub(crate) fn prune(&mut self, pos: u64) {
        if !self
            .positions
            .get(&pos)
            .is_some_and(MasterPosition::is_settled)
        {
            return;
        }
        self.positions.remove(&pos);
        // Positions tend to settle in the order they closed, so the id is
        // usually at the front.
        if let Some(index) = self.closed_unsettled.iter().position(|id| *id == pos) {
            self.closed_unsettled.remove(index);
        }
        self.remember_closed(pos);
        assert!(!self.positions.contains_key(&pos));
        assert!(self.closed_unsettled.len() <= self.positions.len());
    }

    /// Records that the master just closed `pos` and it did not settle at
    /// once. Returns the positions evicted to keep `closed_unsettled` within
    /// its bound, oldest first; the caller uncounts their active copies.
    pub(crate) fn note_unsettled_close(&mut self, pos: u64) -> Vec<(u64, MasterPosition)> {
        assert!(
            self.positions
                .get(&pos)
                .is_some_and(|position| position.closed),
            "only a closed position in the ledger waits to settle"
        );
        assert!(
            !self.closed_unsettled.contains(&pos),
            "a position closes once"
        );
        self.closed_unsettled.push_back(pos);
        let mut evicted = Vec::new();
        while self.closed_unsettled.len() > self.closed_remembered_max {
            let oldest = self
                .closed_unsettled
                .pop_front()
                .expect("over the bound, so not empty");
            let position = self
                .positions
                .remove(&oldest)
                .expect("closed_unsettled names positions in the ledger");
            self.evicted_unsettled_total += 1;
            self.remember_closed(oldest);
            evicted.push((oldest, position));
        }
        assert!(self.closed_unsettled.len() <= self.closed_remembered_max);
        evicted
    }

    /// Remembers a settled or evicted id, forgetting the oldest beyond the bound.
    fn remember_closed(&mut self, pos: u64) {
        if self.closed_remembered_max == 0 {
            return;
        }
        if self.closed_recent.len() == self.closed_remembered_max {
            let oldest = self
                .closed_recent
                .pop_front()
                .expect("the queue is full, so not empty");
            self.closed_recent_set.remove(&oldest);
        }
        if self.closed_recent_set.insert(pos) {
            self.closed_recent.push_back(pos);
        }
        assert!(self.closed_recent.len() <= self.closed_remembered_max);
        assert_eq!(self.closed_recent.len(), self.closed_recent_set.len());
    }
}

/// True when a result means the instruction took effect. A `skipped` result
/// with a ticket and a volume is the Executor saying the tagged position is
/// already there, which is as good as filled.
fn succeeded(result: &TradeResult) -> bool {
    match result.status {
        ResultStatus::Filled => true,
        ResultStatus::Rejected => false,
        ResultStatus::Skipped => result.ticket != 0 && result.volume > 0.0,
    }
}

/// Applies a slave `result` for an instruction of `action` that asked for
/// `sent_units` to the copy it was sent for.
pub(crate) fn apply_result(
    copy: &mut SlaveCopy,
    slave: &mut SlaveBook,
    action: CopyAction,
    sent_units: u64,
    result: &TradeResult,
) {
    if action != CopyAction::Modify {
        copy.in_flight = copy.in_flight.saturating_sub(1);
    }
    let took_effect = succeeded(result);
    let reported_units = lots_to_units(result.volume).filter(|units| *units > 0);
    match action {
        CopyAction::Open | CopyAction::Pending => {
            if copy.open_confirmed || matches!(copy.status, CopyStatus::NoCopy(_)) {
                // Already settled: a `state` confirmed the open, or an
                // earlier result for it came (a repeated result changes
                // nothing; a later `state` shows what the slave holds).
                return;
            }
            if took_effect {
                copy.open_units = reported_units.unwrap_or(sent_units);
                copy.open_confirmed = true;
                match copy.status {
                    CopyStatus::OpenSent => copy.set_status(CopyStatus::Open, slave),
                    CopyStatus::PendingSent => copy.set_status(CopyStatus::PendingPlaced, slave),
                    _ => {}
                }
            } else {
                copy.open_units = 0;
                copy.closed_units = 0;
                if copy.status.is_active() {
                    copy.set_status(CopyStatus::NoCopy(NoCopyCause::Refused), slave);
                }
            }
        }
        CopyAction::Close => {
            let closed_units = if took_effect {
                reported_units.unwrap_or(sent_units).min(sent_units)
            } else {
                0
            };
            copy.closed_units = copy.closed_units.saturating_sub(sent_units - closed_units);
        }
        CopyAction::Modify => {
            if !took_effect {
                copy.sent_sl = f64::NAN;
                copy.sent_tp = f64::NAN;
                copy.sent_price = f64::NAN;
            }
        }
        // A refused cancel usually means the order filled on the slave; the
        // next `state` shows the tagged position and reconciliation closes it.
        CopyAction::Cancel => {}
    }
    assert!(
        !matches!(copy.status, CopyStatus::NoCopy(_)) || copy.held_units() == 0,
        "a follower with no copy holds nothing"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountRisk;

    fn slave() -> SlaveBook {
        SlaveBook::new(AccountRisk::default(), 10)
    }

    fn sent(units: u64) -> SentOpen {
        SentOpen {
            symbol: "EURUSD".into(),
            side: Side::Buy,
            units,
            master_base_units: units,
            expires_ms: 5_000,
            sl: 0.0,
            tp: 0.0,
            price: 1.1,
        }
    }

    fn result(status: ResultStatus, volume: f64) -> TradeResult {
        TradeResult {
            seq: 1,
            status,
            ticket: 9,
            price: 1.1,
            volume,
            error: 0,
            msg: String::new(),
            exec_ms: 1,
        }
    }

    #[test]
    fn filled_open_takes_the_filled_volume() {
        // Shows that a partially filled open becomes the base later closes are computed from.
        let mut book = slave();
        let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
        copy.begin_open(sent(20_000_000), &mut book);
        assert_eq!(
            (copy.status, book.active_total, copy.in_flight),
            (CopyStatus::OpenSent, 1, 1)
        );
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Open,
            20_000_000,
            &result(ResultStatus::Filled, 0.15),
        );
        assert_eq!(
            (copy.status, copy.open_units, copy.in_flight),
            (CopyStatus::Open, 15_000_000, 0)
        );
    }

    #[test]
    fn refused_open_leaves_no_copy() {
        // Shows that a rejected open uncounts the copy and holds nothing.
        let mut book = slave();
        let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
        copy.begin_open(sent(20_000_000), &mut book);
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Open,
            20_000_000,
            &result(ResultStatus::Rejected, 0.0),
        );
        assert_eq!(copy.status, CopyStatus::NoCopy(NoCopyCause::Refused));
        assert_eq!((copy.held_units(), book.active_total), (0, 0));
    }

    #[test]
    fn repeated_open_result_changes_nothing() {
        // Shows that a second result for the same open (filled after refused) leaves the copy refused and empty.
        let mut book = slave();
        let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
        copy.begin_open(sent(20_000_000), &mut book);
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Open,
            20_000_000,
            &result(ResultStatus::Rejected, 0.0),
        );
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Open,
            20_000_000,
            &result(ResultStatus::Filled, 0.2),
        );
        assert_eq!(copy.status, CopyStatus::NoCopy(NoCopyCause::Refused));
        assert_eq!((copy.held_units(), book.active_total), (0, 0));
    }

    #[test]
    fn skipped_as_already_present_counts_as_filled() {
        // Shows that "skipped" with a ticket and volume (already present) confirms the open.
        let mut book = slave();
        let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
        copy.begin_open(sent(20_000_000), &mut book);
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Open,
            20_000_000,
            &result(ResultStatus::Skipped, 0.2),
        );
        assert_eq!(copy.status, CopyStatus::Open);
    }

    #[test]
    fn close_result_shortfall_adds_back() {
        // Shows that a partial-close result updates the slave's remaining volume.
        let mut book = slave();
        let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
        copy.begin_open(sent(30_000_000), &mut book);
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Open,
            30_000_000,
            &result(ResultStatus::Filled, 0.3),
        );
        copy.closed_units += 10_000_000;
        copy.in_flight += 1;
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Close,
            10_000_000,
            &result(ResultStatus::Filled, 0.05),
        );
        assert_eq!(copy.held_units(), 25_000_000);
        copy.closed_units += 10_000_000;
        copy.in_flight += 1;
        apply_result(
            &mut copy,
            &mut book,
            CopyAction::Close,
            10_000_000,
            &result(ResultStatus::Rejected, 0.0),
        );
        assert_eq!((copy.held_units(), copy.in_flight), (25_000_000, 0));
    }

    #[test]
    fn set_held_matches_the_report() {
        // Shows that a reported volume, above or below what the ledger expected, becomes what is held.
        let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
        copy.open_units = 30;
        copy.closed_units = 10;
        copy.set_held(5);
        assert_eq!((copy.held_units(), copy.open_units), (5, 30));
        copy.set_held(40);
        assert_eq!((copy.held_units(), copy.open_units), (40, 40));
    }

    #[test]
    fn closed_ids_are_remembered_within_bounds() {
        // Shows that settled positions are pruned and the closed-id memory keeps only the newest ids.
        let mut book = MasterBook::new(BTreeMap::new(), 10, 2);
        for pos in 1..=3u64 {
            let position = MasterPosition {
                symbol: "EURUSD".into(),
                side: Side::Buy,
                remaining_units: 0,
                opened_units: 0,
                opened_from_event: true,
                closed_by_events_units: 0,
                price: 1.0,
                sl: 0.0,
                tp: 0.0,
                magic: 0,
                comment: String::new(),
                tag: String::new(),
                opened_ms: 0,
                closed: true,
                copies: Vec::new(),
            };
            book.positions.insert(pos, position);
            book.prune(pos);
        }
        assert!(book.positions.is_empty());
        assert!(!book.knows(1) && book.knows(2) && book.knows(3));
    }
}
