//! The copy engine: from master events, snapshots and slave states to one
//! decision per follower. Pure logic: no sockets, no clock (`now_ms` is
//! passed in), deterministic (only ordered maps, followers in login order),
//! so replaying the journal with the recorded times rebuilds the same state
//! and the same decisions.
//!
//! # Layout
//! - This file: the API the bridge calls ([`Engine`], [`Decision`],
//!   [`Outcome`], [`CopyInstruction`]) and the copy tag `tc:<master>:<pos>`.
//! - [`checkpoint`]: the dynamic state a checkpoint holds, and its restore.
//! - `events`: master `event`s (open, pending, modify, close, cancel) and
//!   what each follower gets.
//! - `reconfigure`: a configuration change applied between two events
//!   ([`Engine::reconfigure`]).
//! - `reconcile`: master `snapshot`s and slave `state`s against the ledger,
//!   and `close_all` on a breached limit.
//! - [`ledger`]: master positions, slave copies, statuses, results.
//! - [`lots`]: integer volume arithmetic, open sizing to the step, closes
//!   with carried remainders.
//! - [`sizing`]: lot rules and contract normalisation.
//! - [`symbols`]: symbol mapping, allow/deny, slave symbol tables.
//! - [`filters`]: magic, comment, direction, hours, mode, reverse.
//! - `risk`: slave figures, daily loss, equity floor, open-copy counters.
//! - [`SkipReason`]: why a follower got no copy.
//!
//! # Invariants
//! - Decisions are appended in a deterministic order: positions by id,
//!   followers by slave login.
//! - At most one open is in flight per (master position, slave): an open is
//!   only sent for a copy whose status is not active.
//! - A slave's copy never closes more than the slave holds of it, and the
//!   closes of a position sum to what the slave opened (see [`lots`]).
//! - Untagged slave positions (manual trades) are never touched.

pub mod checkpoint;
mod events;
pub mod filters;
pub mod ledger;
pub mod lots;
mod reconcile;
mod reconfigure;
mod risk;
pub mod sizing;
mod skip;
pub mod symbols;
pub mod view;
#[cfg(test)]
pub(crate) mod tests_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::protocol::{
    Copy, CopyAction, Event, EventKind, Role, Side, Snapshot, State, Symbols, TradeResult,
};

use ledger::{CopyStatus, Follower, MasterBook};
use lots::lots_to_units;
use risk::{FollowSlot, SlaveBook};

pub use checkpoint::{EngineState, EngineStateRef, RestoreReport};
pub use reconfigure::ReconfigureReport;
pub use risk::AccountFigures;
pub use skip::SkipReason;

/// What the engine decided for one follower.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Slave login.
    pub slave: u64,
    /// Master login.
    pub master: u64,
    /// Master position id.
    pub pos: u64,
    /// The copy to send, or why not.
    pub outcome: Outcome,
}

/// A copy to send, or why not.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Copy(CopyInstruction),
    Skip(SkipReason),
}

/// An instruction for a slave, before the delivery layer gives it a
/// sequence number and an id.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CopyInstruction {
    /// Master login.
    pub master: u64,
    /// Master position id.
    pub pos: u64,
    /// Open, pending, modify, close or cancel.
    pub action: CopyAction,
    /// Slave symbol (after mapping).
    pub symbol: String,
    /// Slave side (after reversal).
    pub side: Side,
    /// Lots: to open, to place, or to close; 0 for modify and cancel.
    pub volume: f64,
    /// Master price: fill price for opens and closes, trigger price for
    /// pending orders and their modifies; 0 for a modify that keeps it.
    pub price: f64,
    /// Largest accepted distance from `price`, in price units; 0 = no limit
    /// (always 0 except for market opens).
    pub max_dev: f64,
    /// Slave stop-loss (after reverse and `copy_sl`); 0 for none.
    pub sl: f64,
    /// Slave take-profit (after reverse and `copy_tp`); 0 for none.
    pub tp: f64,
    /// Master magic number, passed on.
    pub magic: u64,
    /// `tc:<master>:<pos>`.
    pub comment: String,
    /// Bridge time after which the open or pending must not be sent; 0 for
    /// close, modify and cancel (they never expire).
    pub expires_ms: u64,
}

impl CopyInstruction {
    /// The wire `copy`, with the sequence number and id the delivery layer assigns.
    pub fn to_copy(&self, seq: u64, id: String) -> Copy {
        Copy {
            seq,
            id,
            master: self.master,
            pos: self.pos,
            action: self.action,
            symbol: self.symbol.clone(),
            side: self.side,
            volume: self.volume,
            price: self.price,
            max_dev: self.max_dev,
            sl: self.sl,
            tp: self.tp,
            magic: self.magic,
            comment: self.comment.clone(),
            expires_ms: self.expires_ms,
        }
    }
}

/// The tag that marks a slave position as the copy of a master position.
/// Written by hand rather than with `format!`: it is built for every copy,
/// and the formatting machinery was a tenth of the fan-out time.
pub fn copy_tag(master: u64, pos: u64) -> String {
    // "tc:" + two u64 of at most 20 digits + ":".
    let mut tag = String::with_capacity(44);
    tag.push_str("tc:");
    push_decimal(&mut tag, master);
    tag.push(':');
    push_decimal(&mut tag, pos);
    assert!(tag.len() <= 44 && tag.starts_with("tc:"));
    tag
}

/// Appends the decimal digits of `value`.
fn push_decimal(text: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    text.push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits are UTF-8"));
}

/// The (master, pos) of a copy tag; `None` for any other comment. Text after
/// the position id (a broker's `[sl]`, for instance) is ignored.
pub fn parse_copy_tag(comment: &str) -> Option<(u64, u64)> {
    let rest = comment.strip_prefix("tc:")?;
    let (master, rest) = rest.split_once(':')?;
    let digits_end = rest
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(rest.len());
    if master.is_empty() || digits_end == 0 || !master.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some((master.parse().ok()?, rest[..digits_end].parse().ok()?))
}

/// The routing core's pure logic. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    /// Follow rules in config order, shared with the [`Config`]; books refer
    /// to them by index.
    follows: Arc<[crate::config::FollowConfig]>,
    /// Every configured master, by login.
    masters: BTreeMap<u64, MasterBook>,
    /// Every configured slave, by login.
    slaves: BTreeMap<u64, SlaveBook>,
}

/// One live follow while the books are linked: (master, slave, index of the
/// follow in the config).
type FollowLink = (u64, u64, usize);

impl Engine {
    /// Builds the books of every configured account and indexes the follows.
    ///
    /// The account maps are built from sorted lists in one go, so their
    /// nodes are full (inserting one login after another leaves them about
    /// half empty), and each book's follower lists get their exact length:
    /// with 10,000 accounts that is several megabytes for accounts that may
    /// never trade.
    pub fn new(config: &Config) -> Engine {
        let server = &config.server;
        let masters: BTreeMap<u64, MasterBook> = config
            .accounts
            .iter()
            .filter(|account| account.role == Role::Master && account.enabled)
            .map(|account| {
                let book = MasterBook::new(
                    account.contracts.clone(),
                    server.positions_per_master_max as usize,
                    server.closed_positions_remembered_max as usize,
                );
                (account.login, book)
            })
            .collect();
        let slaves: BTreeMap<u64, SlaveBook> = config
            .accounts
            .iter()
            .filter(|account| account.role == Role::Slave && account.enabled)
            .map(|account| {
                let book = SlaveBook::new(account.risk.clone(), server.symbols_per_slave_max);
                (account.login, book)
            })
            .collect();
        let mut engine = Engine {
            follows: Arc::clone(&config.follows),
            masters,
            slaves,
        };
        engine.link_follows();
        engine
    }

    /// Gives each master its followers (by slave login) and each slave its
    /// follow slots (by master login). A follow naming a login with no
    /// [[account]] is inert (the config carries a warning for it): it gets
    /// no follower slot.
    fn link_follows(&mut self) {
        let mut links: Vec<FollowLink> = self
            .follows
            .iter()
            .enumerate()
            .filter(|(_, follow)| {
                self.slaves.contains_key(&follow.slave) && self.masters.contains_key(&follow.master)
            })
            .map(|(index, follow)| (follow.master, follow.slave, index))
            .collect();
        // By master, then slave: (slave, master) pairs are unique.
        links.sort_unstable();
        let mut slots: Vec<(u64, FollowSlot)> = Vec::with_capacity(links.len());
        for run in links.chunk_by(|left, right| left.0 == right.0) {
            let master = run[0].0;
            let book = self.masters.get_mut(&master).expect("links name known masters");
            book.followers = run
                .iter()
                .map(|&(_, slave, follow)| Follower { slave, follow })
                .collect();
            for (slot, &(_, slave, follow)) in run.iter().enumerate() {
                slots.push((slave, FollowSlot { master, slot, follow }));
            }
        }
        // By slave, then master.
        slots.sort_unstable_by_key(|(slave, slot)| (*slave, slot.master));
        for run in slots.chunk_by(|left, right| left.0 == right.0) {
            let book = self.slaves.get_mut(&run[0].0).expect("links name known slaves");
            book.follows = run.iter().map(|(_, slot)| *slot).collect();
        }
        let linked: usize = self.masters.values().map(|book| book.followers.len()).sum();
        assert!(linked == links.len() && linked <= self.follows.len(), "one follower slot per follow at most");
        assert!(self.masters.values().all(|book| book
            .followers
            .windows(2)
            .all(|pair| pair[0].slave < pair[1].slave)));
        assert!(self.slaves.values().all(|slave| slave
            .follows
            .windows(2)
            .all(|pair| pair[0].master < pair[1].master)));
    }

    /// A master `event`, already de-duplicated by `seq` by the caller.
    /// Appends one decision per follower (in slave login order) for each
    /// change it makes. An `open` or `pending` for a position the engine
    /// already holds (or closed recently), a `close`, `modify` or `cancel`
    /// for one it does not hold, a `cancel` for a position that is not a
    /// pending order (any more), and an event from an unknown master change
    /// nothing and append nothing.
    pub fn on_master_event(
        &mut self,
        master: u64,
        event: &Event,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(book) = self.masters.get(&master) else {
            return;
        };
        let known = book.positions.get(&event.pos);
        match event.kind {
            EventKind::Open | EventKind::Pending => match known {
                Some(position)
                    if event.kind == EventKind::Open
                        && position.side.is_pending()
                        && !position.closed =>
                {
                    self.fill_pending_from_event(master, event, now_ms, out);
                }
                Some(_) => self.note_opening_event(master, event),
                None if book.knows(event.pos) => {}
                None => self.open_from_event(master, event, now_ms, out),
            },
            EventKind::Close => self.close_from_event(master, event, now_ms, out),
            EventKind::Modify => {
                self.modify_position(master, event.pos, event.sl, event.tp, event.price, out)
            }
            // A cancel deletes a pending order. For a position that is no
            // longer one (it filled, and the Monitor's event is stale or
            // wrong) it changes nothing and appends nothing: the position
            // ends with its own close, and a cancel must never close copies
            // of a position the master still holds.
            EventKind::Cancel => match known {
                Some(position) if position.side.is_pending() => {
                    self.close_position(master, event.pos, 0, 0.0, now_ms, out)
                }
                _ => {}
            },
        }
    }

    /// A master `snapshot`: reconciles the ledger with the master's book.
    /// Positions the engine did not know are opened, known ones missing are
    /// closed, lower volumes partially closed, changed stops modified. When
    /// the snapshot agrees with the ledger nothing is appended.
    pub fn on_master_snapshot(
        &mut self,
        master: u64,
        snapshot: &Snapshot,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        self.reconcile_snapshot(master, snapshot, now_ms, out);
    }

    /// A slave `state`: records its figures and symbols, then reconciles its
    /// tagged positions with the ledger (see `reconcile`). When the slave
    /// agrees with the ledger nothing is appended.
    pub fn on_slave_state(
        &mut self,
        slave: u64,
        state: &State,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        self.reconcile_state(slave, state, now_ms, out);
    }

    /// A slave `symbols` frame: merged by name into the slave's table.
    pub fn on_slave_symbols(&mut self, slave: u64, symbols: &Symbols) {
        if let Some(book) = self.slaves.get_mut(&slave) {
            book.symbols.merge(&symbols.symbols);
        }
    }

    /// The slave's result for an instruction this engine produced (the
    /// caller maps the copy's `seq` back to the instruction).
    pub fn on_slave_result(
        &mut self,
        slave: u64,
        instruction: &CopyInstruction,
        result: &TradeResult,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let Some(slave_book) = self.slaves.get_mut(&slave) else {
            return;
        };
        let Some(book) = self.masters.get_mut(&instruction.master) else {
            return;
        };
        let Some(slot) = book.slot_of(slave) else {
            return;
        };
        let sent_units = lots_to_units(instruction.volume).unwrap_or(0);
        let Some(position) = book.positions.get_mut(&instruction.pos) else {
            // A close reconciliation sent for a position without a ledger
            // entry: once it fails, the next state may try again.
            if instruction.action == CopyAction::Close
                && result.status != crate::protocol::ResultStatus::Filled
            {
                slave_book
                    .orphan_closes
                    .remove(&(instruction.master, instruction.pos));
            }
            return;
        };
        let copy = &mut position.copies[slot];
        let is_open = matches!(instruction.action, CopyAction::Open | CopyAction::Pending);
        if is_open && instruction.expires_ms != copy.open_expires_ms {
            // The result of an open that reconciliation gave up as lost and
            // replaced: the replacement's own result settles the copy.
            return;
        }
        // The master's order filled while this pending copy was on its way
        // (the fill moved the copy to `Open`, expecting the slave's order to
        // fill too).
        let pending_of_filled = instruction.action == CopyAction::Pending && copy.status == CopyStatus::Open && !copy.open_confirmed;
        ledger::apply_result(copy, slave_book, instruction.action, sent_units, result);
        if pending_of_filled && copy.status == CopyStatus::NoCopy(ledger::NoCopyCause::Refused) && !position.closed {
            // Refused: the slave lacks the position the master now holds.
            copy.status = CopyStatus::NoCopy(ledger::NoCopyCause::Lost);
            self.open_after_refused_pending(instruction.master, instruction.pos, slave, now_ms, out);
            return;
        }
        // Only a copy that just settled can settle its position.
        if position.closed && copy.in_flight == 0 && copy.held_units() == 0 {
            book.prune(instruction.pos);
        }
        assert!(book.open_count() <= book.positions_max);
    }

    /// The status of `slave`'s copy of a master position, if the ledger
    /// holds the position (for tests, metrics and the dashboard).
    pub fn copy_status(&self, master: u64, pos: u64, slave: u64) -> Option<CopyStatus> {
        let book = self.masters.get(&master)?;
        Some(book.positions.get(&pos)?.copies[book.slot_of(slave)?].status)
    }

    /// Lots the ledger believes `slave` holds of a master position.
    pub fn held_volume(&self, master: u64, pos: u64, slave: u64) -> Option<f64> {
        let book = self.masters.get(&master)?;
        let copy = &book.positions.get(&pos)?.copies[book.slot_of(slave)?];
        Some(lots::units_to_lots(copy.held_units()))
    }

    /// Positions (open, or closed and not yet settled) the ledger holds for a master.
    pub fn position_count(&self, master: u64) -> usize {
        self.masters
            .get(&master)
            .map_or(0, |book| book.positions.len())
    }

    /// Positions the master holds open in the ledger (what
    /// `positions_per_master_max` bounds).
    pub fn open_position_count(&self, master: u64) -> usize {
        self.masters.get(&master).map_or(0, MasterBook::open_count)
    }

    /// Closed positions of a master evicted from the ledger before every
    /// copy settled, because `closed_positions_remembered_max` of them were
    /// already waiting (a follower offline for long). For metrics.
    pub fn evicted_unsettled_total(&self, master: u64) -> u64 {
        self.masters
            .get(&master)
            .map_or(0, |book| book.evicted_unsettled_total)
    }

    /// Copies of `slave` currently open or pending, across all masters.
    pub fn active_copies(&self, slave: u64) -> u32 {
        self.slaves.get(&slave).map_or(0, |book| book.active_total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tag_round_trips() {
        // Shows the tag format and that parsing accepts a trailing broker note but not other comments.
        assert_eq!(copy_tag(1_234_567, 9001), "tc:1234567:9001");
        assert_eq!(parse_copy_tag("tc:1234567:9001"), Some((1_234_567, 9001)));
        assert_eq!(parse_copy_tag("tc:1:2[sl]"), Some((1, 2)));
        assert_eq!(
            parse_copy_tag(&copy_tag(u64::MAX, u64::MAX)),
            Some((u64::MAX, u64::MAX))
        );
        for other in [
            "", "manual", "tc:", "tc:1", "tc::2", "tc:x:2", "tc:1:", "tc:1:x", "TC:1:2",
        ] {
            assert_eq!(parse_copy_tag(other), None, "{other}");
        }
    }
}
