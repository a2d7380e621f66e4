//! Master events and what each follower gets: open, pending, the fill of a
//! pending order, close (full or partial), modify, cancel.
//!
//! # Layout
//! - `OpenRequest`, `prepare_open`, `open_copy`: the whole pipeline of one
//!   follower's open (mode, filters, symbol, risk, sizing), the instruction
//!   it yields, and its record in the copy.
//! - `Engine::open_from_event`, `open_position`: a new master position.
//! - `Engine::fill_pending`: a master pending order filled.
//! - `Engine::close_position`, `decide_close`: full and partial closes, and
//!   cancels of pending orders.
//! - `Engine::modify_position`, `decide_modify`: stop and trigger changes.
//!
//! # Invariants
//! - Each change to a master position appends exactly one decision per
//!   follower, in follower order, except a pending fill (only followers
//!   that now get a market open hear of it) and a repeated modify (only
//!   copies whose last sent stops differ get one).
//! - An open is only sent for a copy that is not active, so there is never
//!   a second open in flight for the same copy.

use std::collections::BTreeMap;

use crate::config::{CopyMode, FollowConfig};
use crate::protocol::{CopyAction, Event, Side};

use super::filters::{check_open, effective_mode, slave_side, slave_stops, TradeFacts};
use super::ledger::{
    CopyStatus, Follower, MasterBook, MasterPosition, NoCopyCause, SentOpen, SlaveCopy,
};
use super::lots::{close_units, lots_to_units, units_to_lots};
use super::risk::{AccountFigures, SlaveBook};
use super::sizing::{sized_units, SizingInput};
use super::symbols::{map_symbol, SlaveSymbol};
use super::{copy_tag, CopyInstruction, Decision, Engine, Outcome, SkipReason};

/// What an open needs to know of the master.
pub(crate) struct MasterContext<'a> {
    /// Master login, for instructions and tags.
    pub login: u64,
    /// Balance and equity from the last snapshot, for ratio modes.
    pub figures: Option<AccountFigures>,
    /// Contract sizes of master symbols from config.
    pub contracts: &'a BTreeMap<String, f64>,
}

/// A new master position as reported by an event or a snapshot.
pub(crate) struct NewPosition<'a> {
    /// Master position id.
    pub pos: u64,
    /// Master symbol.
    pub symbol: &'a str,
    /// Master side: market, or a pending type.
    pub side: Side,
    /// Master volume in lots.
    pub volume: f64,
    /// Open price, or a pending order's trigger price.
    pub price: f64,
    /// Stop-loss; 0 for none.
    pub sl: f64,
    /// Take-profit; 0 for none.
    pub tp: f64,
    /// Master magic number, for filters.
    pub magic: u64,
    /// Master comment, for filters.
    pub comment: &'a str,
    /// True for a master event, false for a snapshot entry: only an event's
    /// volume is the opened volume that close events are measured from.
    pub from_event: bool,
}

/// One follower's open to decide: the follow, the master, the position,
/// and `base_units`, the master volume the copy is sized from (and the
/// denominator of its later proportional closes).
pub(crate) struct OpenRequest<'a> {
    /// The follower's rules.
    pub follow: &'a FollowConfig,
    /// The master's figures and contracts.
    pub master: &'a MasterContext<'a>,
    /// Master position id.
    pub pos: u64,
    /// The master position as the ledger holds it.
    pub position: &'a MasterPosition,
    /// Master volume to size from, in units.
    pub base_units: u64,
    /// Bridge time of the decision (filters, expiry).
    pub now_ms: u64,
}

/// The whole pipeline of one follower's open: mode and filters, symbol,
/// account limits, sizing. Returns the instruction and its ledger record,
/// or the first reason to skip.
pub(crate) fn prepare_open(
    request: &OpenRequest<'_>,
    slave: &SlaveBook,
) -> Result<(CopyInstruction, SentOpen), SkipReason> {
    let OpenRequest {
        follow,
        master,
        position,
        now_ms,
        ..
    } = *request;
    assert!(
        request.base_units > 0,
        "a position with no volume is refused before"
    );
    let facts = TradeFacts {
        symbol: &position.symbol,
        side: position.side,
        magic: position.magic,
        comment: &position.comment,
    };
    check_open(follow, effective_mode(follow, &slave.risk), &facts, now_ms)?;
    let symbol_name = map_symbol(&follow.symbols, &position.symbol);
    if symbol_name.is_empty() {
        // The master's symbol was only an affix this follow strips (the
        // symbol "-ecn" with strip_suffix = "-ecn"): nothing to trade.
        return Err(SkipReason::InvalidSymbol);
    }
    let symbol = if slave.symbols.is_known() {
        *slave
            .symbols
            .get(&symbol_name)
            .ok_or(SkipReason::SlaveLacksSymbol)?
    } else {
        SlaveSymbol::DEFAULT
    };
    slave.check_open_risk(&symbol_name, now_ms)?;
    let units = sized_units(&SizingInput {
        follow,
        slave_figures: slave.figures,
        master_figures: master.figures,
        master_contract: master.contracts.get(&position.symbol).copied(),
        symbol,
        master_lots: units_to_lots(request.base_units),
        price: position.price,
        sl: position.sl,
        tp: position.tp,
    })?;
    let opened = open_instruction(request, symbol_name, symbol.digits, units);
    assert!(opened.0.volume > 0.0 && opened.0.expires_ms >= now_ms);
    Ok(opened)
}

/// Builds the open (or pending) instruction of a sized copy.
fn open_instruction(
    request: &OpenRequest<'_>,
    symbol_name: String,
    digits: u32,
    units: u64,
) -> (CopyInstruction, SentOpen) {
    let OpenRequest {
        follow,
        master,
        pos,
        position,
        now_ms,
        ..
    } = *request;
    let side = slave_side(follow, position.side);
    let (sl, tp) = slave_stops(follow, position.sl, position.tp);
    let max_dev = if side.is_pending() || follow.max_dev_points == 0 {
        0.0
    } else {
        // Dividing by the exact power of ten gives the clean decimal (0.0003).
        f64::from(follow.max_dev_points) / 10f64.powi(digits as i32)
    };
    let expires_ms = now_ms.saturating_add(follow.ttl_ms);
    let instruction = CopyInstruction {
        master: master.login,
        pos,
        action: if side.is_pending() {
            CopyAction::Pending
        } else {
            CopyAction::Open
        },
        symbol: symbol_name.clone(),
        side,
        volume: units_to_lots(units),
        price: position.price,
        max_dev,
        sl,
        tp,
        magic: position.magic,
        comment: position.tag.clone(),
        expires_ms,
    };
    let base_units = request.base_units;
    let sent = SentOpen {
        symbol: symbol_name,
        side,
        units,
        master_base_units: base_units,
        expires_ms,
        sl,
        tp,
        price: position.price,
    };
    (instruction, sent)
}

/// Decides one follower's open and records it in its (inactive) copy.
pub(crate) fn open_copy(
    request: &OpenRequest<'_>,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
) -> Outcome {
    assert!(
        !copy.status.is_active(),
        "no second open while one is active or in flight"
    );
    match prepare_open(request, slave) {
        Ok((instruction, sent)) => {
            copy.begin_open(sent, slave);
            Outcome::Copy(instruction)
        }
        Err(reason) => {
            copy.status = CopyStatus::NoCopy(NoCopyCause::Skipped(reason));
            Outcome::Skip(reason)
        }
    }
}

/// One follower's close after the master's position dropped to
/// `position.remaining_units`.
fn decide_close(
    follow: &FollowConfig,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
    master: u64,
    pos: u64,
    position: &MasterPosition,
    price: f64,
) -> Outcome {
    if effective_mode(follow, &slave.risk) == CopyMode::Frozen {
        return Outcome::Skip(SkipReason::Frozen);
    }
    if !matches!(copy.status, CopyStatus::OpenSent | CopyStatus::Open) {
        return Outcome::Skip(SkipReason::NoCopy);
    }
    let held_units = copy.held_units();
    let spec = slave.symbols.get_or_default(&copy.symbol).lots;
    let units = close_units(
        &spec,
        copy.open_units,
        held_units,
        copy.master_base_units,
        position.remaining_units,
    );
    if units == 0 {
        return Outcome::Skip(if held_units == 0 {
            SkipReason::NoCopy
        } else {
            SkipReason::CloseCarried
        });
    }
    assert!(units <= held_units);
    copy.closed_units += units;
    copy.in_flight += 1;
    assert!(
        copy.held_units() < held_units,
        "a sent close lowers what is held"
    );
    if position.closed || copy.held_units() == 0 {
        copy.set_status(CopyStatus::Closed, slave);
    }
    Outcome::Copy(exit_instruction(
        master,
        pos,
        &position.tag,
        CopyAction::Close,
        copy,
        units_to_lots(units),
        price,
    ))
}

/// A close or cancel instruction for a copy (never expires, no deviation limit).
pub(crate) fn exit_instruction(
    master: u64,
    pos: u64,
    tag: &str,
    action: CopyAction,
    copy: &SlaveCopy,
    volume: f64,
    price: f64,
) -> CopyInstruction {
    assert!(matches!(action, CopyAction::Close | CopyAction::Cancel));
    CopyInstruction {
        master,
        pos,
        action,
        symbol: copy.symbol.clone(),
        side: copy.side,
        volume,
        price,
        max_dev: 0.0,
        sl: 0.0,
        tp: 0.0,
        magic: 0,
        comment: tag.to_string(),
        expires_ms: 0,
    }
}

/// Ends one follower's copy whatever the master still holds: cancels a
/// copied pending order, or closes everything held of a position. Used for
/// master cancels and for `on_limit = "close_all"`.
pub(crate) fn decide_exit(
    follow: &FollowConfig,
    slave: &mut SlaveBook,
    copy: &mut SlaveCopy,
    master: u64,
    pos: u64,
    tag: &str,
) -> Outcome {
    if effective_mode(follow, &slave.risk) == CopyMode::Frozen {
        return Outcome::Skip(SkipReason::Frozen);
    }
    let action = match copy.status {
        CopyStatus::PendingSent | CopyStatus::PendingPlaced => CopyAction::Cancel,
        CopyStatus::OpenSent | CopyStatus::Open if copy.held_units() > 0 => CopyAction::Close,
        _ => return Outcome::Skip(SkipReason::NoCopy),
    };
    let held_units = copy.held_units();
    copy.closed_units = copy.open_units;
    copy.in_flight += 1;
    copy.set_status(CopyStatus::Closed, slave);
    assert_eq!(copy.held_units(), 0, "an exit leaves nothing held");
    assert!(!copy.status.is_active());
    let volume = if action == CopyAction::Close {
        units_to_lots(held_units)
    } else {
        0.0
    };
    Outcome::Copy(exit_instruction(
        master, pos, tag, action, copy, volume, 0.0,
    ))
}

/// One follower's modify after the master's stops or trigger changed. With
/// `changed` false (a repeat), only a copy whose last sent values differ
/// gets a decision; otherwise every follower gets one.
fn decide_modify(
    follow: &FollowConfig,
    slave: &SlaveBook,
    copy: &mut SlaveCopy,
    master: u64,
    pos: u64,
    position: &MasterPosition,
    changed: bool,
) -> Option<Outcome> {
    if effective_mode(follow, &slave.risk) == CopyMode::Frozen {
        return changed.then_some(Outcome::Skip(SkipReason::Frozen));
    }
    if !copy.status.is_active() {
        return changed.then_some(Outcome::Skip(SkipReason::NoCopy));
    }
    let (sl, tp) = slave_stops(follow, position.sl, position.tp);
    let is_pending = matches!(
        copy.status,
        CopyStatus::PendingSent | CopyStatus::PendingPlaced
    );
    let price = if is_pending { position.price } else { 0.0 };
    // NaN (a refused modify) never compares equal, so it is sent again.
    let same_price = !is_pending || price == copy.sent_price;
    if sl == copy.sent_sl && tp == copy.sent_tp && same_price {
        return changed.then_some(Outcome::Skip(SkipReason::Unchanged));
    }
    assert!(copy.status.is_active(), "only an active copy is modified");
    copy.sent_sl = sl;
    copy.sent_tp = tp;
    copy.sent_price = price;
    let instruction = CopyInstruction {
        master,
        pos,
        action: CopyAction::Modify,
        symbol: copy.symbol.clone(),
        side: copy.side,
        volume: 0.0,
        price,
        max_dev: 0.0,
        sl,
        tp,
        magic: position.magic,
        comment: position.tag.clone(),
        expires_ms: 0,
    };
    Some(Outcome::Copy(instruction))
}

/// After the master closed `pos`: removes it if every copy is settled;
/// otherwise keeps it among the closed-unsettled positions, evicting the
/// oldest of those beyond their bound.
pub(crate) fn settle_or_hold(
    book: &mut MasterBook,
    slaves: &mut BTreeMap<u64, SlaveBook>,
    pos: u64,
) {
    book.prune(pos);
    if !book.positions.contains_key(&pos) {
        return;
    }
    for (_, position) in book.note_unsettled_close(pos) {
        uncount_copies(&book.followers, &position, slaves);
    }
    assert!(book
        .positions
        .get(&pos)
        .is_none_or(|position| position.closed));
}

/// Uncounts the active copies of a position leaving the ledger unsettled,
/// so the slaves' open-copy counters stay exact.
pub(crate) fn uncount_copies(
    followers: &[Follower],
    position: &MasterPosition,
    slaves: &mut BTreeMap<u64, SlaveBook>,
) {
    assert_eq!(followers.len(), position.copies.len());
    for (follower, copy) in followers.iter().zip(&position.copies) {
        if copy.status.is_active() {
            slaves
                .get_mut(&follower.slave)
                .expect("every follower's slave has a book")
                .deactivate(&copy.symbol);
        }
    }
}

/// Turns a pending master position into the market position it filled as;
/// returns its volume (the fill's, or the order's when the fill gives none).
fn apply_fill(position: &mut MasterPosition, fill: &NewPosition<'_>) -> u64 {
    assert!(
        position.side.is_pending() && !position.closed,
        "only an open pending order fills"
    );
    assert!(!fill.side.is_pending(), "a fill is a market side");
    let units = lots_to_units(fill.volume)
        .filter(|units| *units > 0)
        .unwrap_or(position.remaining_units);
    position.side = fill.side;
    position.remaining_units = units;
    position.opened_units = units;
    position.opened_from_event = fill.from_event;
    position.closed_by_events_units = 0;
    if fill.price.is_finite() && fill.price > 0.0 {
        position.price = fill.price;
    }
    if fill.sl.is_finite() && fill.tp.is_finite() {
        position.sl = fill.sl;
        position.tp = fill.tp;
    }
    units
}

impl Engine {
    /// An `open` or `pending` event for a position the engine does not know.
    pub(crate) fn open_from_event(
        &mut self,
        master: u64,
        event: &Event,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let side_fits = match event.side {
            Some(side) => side.is_pending() == (event.kind == crate::protocol::EventKind::Pending),
            None => false,
        };
        let new = NewPosition {
            pos: event.pos,
            symbol: &event.symbol,
            side: event.side.unwrap_or(Side::Buy),
            volume: event.volume,
            price: event.price,
            sl: event.sl,
            tp: event.tp,
            magic: event.magic,
            comment: &event.comment,
            from_event: true,
        };
        if !side_fits {
            self.skip_all(master, event.pos, SkipReason::InvalidEvent, out);
            return;
        }
        self.open_position(master, &new, now_ms, out);
    }

    /// Appends the same skip for every follower of `master`.
    pub(crate) fn skip_all(
        &self,
        master: u64,
        pos: u64,
        reason: SkipReason,
        out: &mut Vec<Decision>,
    ) {
        let Some(book) = self.masters.get(&master) else {
            return;
        };
        for follower in &book.followers {
            out.push(Decision {
                slave: follower.slave,
                master,
                pos,
                outcome: Outcome::Skip(reason),
            });
        }
    }

    /// Records a new master position and decides each follower's open.
    pub(crate) fn open_position(
        &mut self,
        master: u64,
        new: &NewPosition<'_>,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let units = lots_to_units(new.volume).unwrap_or(0);
        let valid =
            units > 0 && !new.symbol.is_empty() && new.price.is_finite() && new.price >= 0.0;
        if !valid || !new.sl.is_finite() || !new.tp.is_finite() {
            self.skip_all(master, new.pos, SkipReason::InvalidEvent, out);
            return;
        }
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let Some(book) = masters.get_mut(&master) else {
            return;
        };
        assert!(!book.knows(new.pos), "callers open only unknown positions");
        if book.open_count() >= book.positions_max {
            self.skip_all(master, new.pos, SkipReason::LedgerFull, out);
            return;
        }
        let mut position = MasterPosition {
            symbol: new.symbol.to_string(),
            side: new.side,
            remaining_units: units,
            opened_units: units,
            opened_from_event: new.from_event,
            closed_by_events_units: 0,
            price: new.price,
            sl: new.sl,
            tp: new.tp,
            magic: new.magic,
            comment: new.comment.to_string(),
            tag: copy_tag(master, new.pos),
            opened_ms: now_ms,
            closed: false,
            copies: Vec::with_capacity(book.followers.len()),
        };
        let context = MasterContext {
            login: master,
            figures: book.figures,
            contracts: &book.contracts,
        };
        let mut copies = Vec::with_capacity(book.followers.len());
        for follower in &book.followers {
            let slave = slaves
                .get_mut(&follower.slave)
                .expect("every follower's slave has a book");
            let request = OpenRequest {
                follow: &follows[follower.follow],
                master: &context,
                pos: new.pos,
                position: &position,
                base_units: units,
                now_ms,
            };
            let mut copy = SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost));
            let outcome = open_copy(&request, slave, &mut copy);
            copies.push(copy);
            out.push(Decision {
                slave: follower.slave,
                master,
                pos: new.pos,
                outcome,
            });
        }
        position.copies = copies;
        assert_eq!(position.copies.len(), book.followers.len());
        book.positions.insert(new.pos, position);
    }

    /// A master pending order filled (an `open` for a known pending `pos`,
    /// or a snapshot showing it as a position). Followers holding the copied
    /// pending order get nothing: their order fills by itself on the slave,
    /// and the copy is from now on treated as an open position of the
    /// order's volume. Followers that skipped the pending only because
    /// `copy_pending = false` get a market open now.
    pub(crate) fn fill_pending(
        &mut self,
        master: u64,
        fill: &NewPosition<'_>,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let Some(book) = masters.get_mut(&master) else {
            return;
        };
        let Some(position) = book.positions.get_mut(&fill.pos) else {
            return;
        };
        let units = apply_fill(position, fill);
        // A filled order opens the position now: late opens (reconciliation,
        // a refused pending copy) count their age from the fill.
        position.opened_ms = now_ms;
        let context = MasterContext {
            login: master,
            figures: book.figures,
            contracts: &book.contracts,
        };
        let mut copies = std::mem::take(&mut position.copies);
        for (follower, copy) in book.followers.iter().zip(copies.iter_mut()) {
            let slave = slaves
                .get_mut(&follower.slave)
                .expect("every follower's slave has a book");
            let follow = &follows[follower.follow];
            match copy.status {
                CopyStatus::PendingSent | CopyStatus::PendingPlaced => {
                    copy.side = slave_side(follow, position.side);
                    copy.set_status(CopyStatus::Open, slave);
                }
                CopyStatus::NoCopy(NoCopyCause::Skipped(SkipReason::PendingNotCopied)) => {
                    let request = OpenRequest {
                        follow,
                        master: &context,
                        pos: fill.pos,
                        position,
                        base_units: units,
                        now_ms,
                    };
                    let outcome = open_copy(&request, slave, copy);
                    out.push(Decision {
                        slave: follower.slave,
                        master,
                        pos: fill.pos,
                        outcome,
                    });
                }
                _ => {}
            }
        }
        position.copies = copies;
    }

    /// An `open` event for a position held as a pending order: the order
    /// filled. The side falls back to the order's direction when the event
    /// names none (or a pending one).
    pub(crate) fn fill_pending_from_event(
        &mut self,
        master: u64,
        event: &Event,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(position) = self
            .masters
            .get(&master)
            .and_then(|book| book.positions.get(&event.pos))
        else {
            return;
        };
        assert!(position.side.is_pending() && !position.closed);
        let fallback = if position.side.is_long() {
            Side::Buy
        } else {
            Side::Sell
        };
        let fill = NewPosition {
            pos: event.pos,
            symbol: &event.symbol,
            side: event
                .side
                .filter(|side| !side.is_pending())
                .unwrap_or(fallback),
            volume: event.volume,
            price: event.price,
            sl: event.sl,
            tp: event.tp,
            magic: event.magic,
            comment: &event.comment,
            from_event: true,
        };
        assert!(!fill.side.is_pending());
        self.fill_pending(master, &fill, now_ms, out);
    }

    /// An `open` or `pending` event for a position the ledger already holds
    /// (first seen in a snapshot, or a repeat): it sends nothing, but the
    /// event's volume becomes the opened volume if only a snapshot gave it.
    pub(crate) fn note_opening_event(&mut self, master: u64, event: &Event) {
        let Some(position) = self
            .masters
            .get_mut(&master)
            .and_then(|book| book.positions.get_mut(&event.pos))
        else {
            return;
        };
        let Some(units) = lots_to_units(event.volume).filter(|units| *units > 0) else {
            return;
        };
        if position.closed || position.opened_from_event {
            return;
        }
        position.opened_units = units;
        position.opened_from_event = true;
        assert!(position.opened_units > 0);
    }

    /// A `close` event. With `remaining`, the master says what stays open.
    /// Without it, what stays is derived from events only: the opened volume
    /// less every close event so far. A snapshot may already have shown (and
    /// applied) the same close; comparing against the events keeps a re-sent
    /// close from being applied twice, and `close_position` acts only when
    /// the result is below what the ledger already believes.
    pub(crate) fn close_from_event(
        &mut self,
        master: u64,
        event: &Event,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(position) = self
            .masters
            .get_mut(&master)
            .and_then(|book| book.positions.get_mut(&event.pos))
        else {
            return;
        };
        if position.closed {
            return;
        }
        let closed_units = lots_to_units(event.volume).unwrap_or(0);
        position.closed_by_events_units =
            position.closed_by_events_units.saturating_add(closed_units);
        let remaining_units = match event.remaining.and_then(lots_to_units) {
            Some(remaining_units) => remaining_units,
            None => position.remaining_by_events_units(),
        };
        assert!(position.closed_by_events_units >= closed_units);
        self.close_position(master, event.pos, remaining_units, event.price, now_ms, out);
    }

    /// The master's position dropped to `remaining_units` (0: closed or
    /// cancelled). Nothing happens unless it dropped.
    pub(crate) fn close_position(
        &mut self,
        master: u64,
        pos: u64,
        remaining_units: u64,
        price: f64,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let Some(book) = masters.get_mut(&master) else {
            return;
        };
        let Some(position) = book.positions.get_mut(&pos) else {
            return;
        };
        if position.closed
            || (remaining_units >= position.remaining_units && !position.side.is_pending())
        {
            return;
        }
        let is_pending = position.side.is_pending();
        position.remaining_units = if is_pending { 0 } else { remaining_units };
        position.closed = position.remaining_units == 0;
        let price = if price.is_finite() && price > 0.0 {
            price
        } else {
            0.0
        };
        // The copies move out while the position is read, and move back after.
        let mut copies = std::mem::take(&mut position.copies);
        for (follower, copy) in book.followers.iter().zip(copies.iter_mut()) {
            let slave = slaves
                .get_mut(&follower.slave)
                .expect("every follower's slave has a book");
            let follow = &follows[follower.follow];
            let outcome = if position.closed && copy.open_overdue(now_ms) {
                // An open the slave never confirmed, long expired (the slave
                // is offline): nothing to close. Were it to have run, the
                // slave's next `state` shows the tag and reconciliation
                // closes it; waiting instead would pin the position.
                copy.settle_lost(slave);
                Outcome::Skip(SkipReason::NoCopy)
            } else if is_pending {
                decide_exit(follow, slave, copy, master, pos, &position.tag)
            } else {
                decide_close(follow, slave, copy, master, pos, position, price)
            };
            out.push(Decision {
                slave: follower.slave,
                master,
                pos,
                outcome,
            });
        }
        position.copies = copies;
        assert!(
            !is_pending || position.closed,
            "a cancelled pending order is closed"
        );
        if position.closed {
            settle_or_hold(book, slaves, pos);
        }
    }

    /// The master changed stops (or a pending order's trigger). A modify
    /// that changes nothing on the master only resends what a copy lacks.
    pub(crate) fn modify_position(
        &mut self,
        master: u64,
        pos: u64,
        sl: f64,
        tp: f64,
        price: f64,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            follows,
            masters,
            slaves,
        } = self;
        let Some(book) = masters.get_mut(&master) else {
            return;
        };
        let Some(position) = book.positions.get_mut(&pos) else {
            return;
        };
        if position.closed || !sl.is_finite() || !tp.is_finite() {
            return;
        }
        let price_changed = position.side.is_pending()
            && price.is_finite()
            && price > 0.0
            && price != position.price;
        let changed = sl != position.sl || tp != position.tp || price_changed;
        position.sl = sl;
        position.tp = tp;
        if price_changed {
            position.price = price;
        }
        let mut copies = std::mem::take(&mut position.copies);
        for (follower, copy) in book.followers.iter().zip(copies.iter_mut()) {
            let slave = slaves
                .get(&follower.slave)
                .expect("every follower's slave has a book");
            let follow = &follows[follower.follow];
            if let Some(outcome) =
                decide_modify(follow, slave, copy, master, pos, position, changed)
            {
                out.push(Decision {
                    slave: follower.slave,
                    master,
                    pos,
                    outcome,
                });
            }
        }
        position.copies = copies;
    }
}
