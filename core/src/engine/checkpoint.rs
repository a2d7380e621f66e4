//! The engine's dynamic state, as a checkpoint holds it: what replaying the
//! journal rebuilds (books, positions and their copies, slave figures, day
//! starts, symbols, counters), never what [`Engine::new`] derives from the
//! config (follow rules, risk settings, contract sizes, bounds).
//!
//! # Layout
//! - [`EngineStateRef`]: borrows an engine and serializes its state without
//!   copying it (what the router does while routing waits).
//! - [`EngineState`]: the same state read back, owned.
//! - [`Engine::restore`]: moves an [`EngineState`] into an engine built from
//!   the current config, account by account.
//!
//! # Invariants
//! - `EngineStateRef` and `EngineState` serialize field for field alike,
//!   so one reads what the other wrote.
//! - A restored engine holds only accounts of the current config; an
//!   account new in the config keeps the empty book `Engine::new` gave it.
//! - Each restored position has exactly one copy per current follower of
//!   its master, in follower order (a copy is matched by slave login).
//! - Each slave's open-copy counters are recounted from the restored
//!   ledger, so they count exactly its active copies there.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::ledger::{CopyStatus, MasterBook, MasterPosition, NoCopyCause, SlaveCopy};
use super::risk::{AccountFigures, DayStart, SlaveBook};
use super::symbols::SymbolTable;
use super::Engine;

/// Borrows an engine to serialize its dynamic state.
pub struct EngineStateRef<'engine> {
    /// The engine serialized.
    engine: &'engine Engine,
}

/// One master's dynamic state, borrowed for serialization.
#[derive(Serialize)]
struct MasterStateRef<'book> {
    /// Last snapshot figures.
    figures: &'book Option<AccountFigures>,
    /// True once a snapshot was reconciled.
    snapshot_seen: bool,
    /// Positions with their copies, in the order of `follower_slaves`.
    positions: &'book BTreeMap<u64, MasterPosition>,
    /// The slave of each copy slot when the checkpoint was taken.
    follower_slaves: Vec<u64>,
    /// Closed positions whose copies have not settled.
    closed_unsettled: &'book VecDeque<u64>,
    /// Evicted unsettled positions; only grows.
    evicted_unsettled_total: u64,
    /// Recently settled position ids, oldest first.
    closed_recent: &'book VecDeque<u64>,
}

/// One master's dynamic state, read back.
#[derive(Deserialize)]
struct MasterState {
    /// Last snapshot figures.
    figures: Option<AccountFigures>,
    /// True once a snapshot was reconciled.
    snapshot_seen: bool,
    /// Positions with their copies, in the order of `follower_slaves`.
    positions: BTreeMap<u64, MasterPosition>,
    /// The slave of each copy slot when the checkpoint was taken.
    follower_slaves: Vec<u64>,
    /// Closed positions whose copies have not settled.
    closed_unsettled: VecDeque<u64>,
    /// Evicted unsettled positions; only grows.
    evicted_unsettled_total: u64,
    /// Recently settled position ids, oldest first.
    closed_recent: VecDeque<u64>,
}

/// One slave's dynamic state, borrowed for serialization.
#[derive(Serialize)]
struct SlaveStateRef<'book> {
    /// Last `state` figures.
    figures: &'book Option<AccountFigures>,
    /// Known symbols.
    symbols: &'book SymbolTable,
    /// Start of the current UTC day.
    day: &'book Option<DayStart>,
    /// Open or pending copies.
    active_total: u32,
    /// The same per symbol.
    active_per_symbol: &'book BTreeMap<String, u32>,
    /// Orphan closes in flight.
    orphan_closes: &'book BTreeSet<(u64, u64)>,
}

/// One slave's dynamic state, read back.
#[derive(Deserialize)]
struct SlaveState {
    /// Last `state` figures.
    figures: Option<AccountFigures>,
    /// Known symbols; its bound comes from the config on restore.
    symbols: SymbolTable,
    /// Start of the current UTC day.
    day: Option<DayStart>,
    /// Open or pending copies.
    active_total: u32,
    /// The same per symbol.
    active_per_symbol: BTreeMap<String, u32>,
    /// Orphan closes in flight.
    orphan_closes: BTreeSet<(u64, u64)>,
}

/// An engine's dynamic state read back from a checkpoint.
#[derive(Deserialize)]
pub struct EngineState {
    /// Masters by login, ascending.
    masters: Vec<(u64, MasterState)>,
    /// Slaves by login, ascending.
    slaves: Vec<(u64, SlaveState)>,
}

/// What [`Engine::restore`] did not carry over, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Logins in the checkpoint that the config no longer has.
    pub accounts_dropped: Vec<u64>,
    /// Slaves whose symbol table exceeded `symbols_per_slave_max` and
    /// starts empty.
    pub symbol_tables_dropped: Vec<u64>,
    /// Masters whose followers changed since the checkpoint: copies of
    /// removed follows were dropped, new follows start with a lost copy.
    pub masters_refollowed: Vec<u64>,
}

impl Serialize for EngineStateRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let masters = self.engine.masters.iter().map(|(login, book)| (*login, MasterStateRef::of(book)));
        let slaves = self.engine.slaves.iter().map(|(login, book)| (*login, SlaveStateRef::of(book)));
        let mut state = serializer.serialize_struct("EngineState", 2)?;
        state.serialize_field("masters", &Sequence::new(masters))?;
        state.serialize_field("slaves", &Sequence::new(slaves))?;
        state.end()
    }
}

/// Serializes an iterator as a sequence of known length, without
/// collecting it.
struct Sequence<I>(std::cell::Cell<Option<I>>);

impl<I> Sequence<I> {
    fn new(items: I) -> Sequence<I> {
        Sequence(std::cell::Cell::new(Some(items)))
    }
}

impl<I: ExactSizeIterator<Item = T>, T: Serialize> Serialize for Sequence<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items = self.0.take().expect("a sequence is serialized once");
        serializer.collect_seq(items)
    }
}

impl<'book> MasterStateRef<'book> {
    fn of(book: &'book MasterBook) -> MasterStateRef<'book> {
        MasterStateRef {
            figures: &book.figures,
            snapshot_seen: book.snapshot_seen,
            positions: &book.positions,
            follower_slaves: book.followers.iter().map(|follower| follower.slave).collect(),
            closed_unsettled: &book.closed_unsettled,
            evicted_unsettled_total: book.evicted_unsettled_total,
            closed_recent: &book.closed_recent,
        }
    }
}

impl<'book> SlaveStateRef<'book> {
    fn of(book: &'book SlaveBook) -> SlaveStateRef<'book> {
        SlaveStateRef {
            figures: &book.figures,
            symbols: &book.symbols,
            day: &book.day,
            active_total: book.active_total,
            active_per_symbol: &book.active_per_symbol,
            orphan_closes: &book.orphan_closes,
        }
    }
}

impl MasterState {
    /// Moves a live book's dynamic state out (for a reconfiguration).
    fn taken_from(book: MasterBook) -> MasterState {
        MasterState {
            figures: book.figures,
            snapshot_seen: book.snapshot_seen,
            positions: book.positions,
            follower_slaves: book.followers.iter().map(|follower| follower.slave).collect(),
            closed_unsettled: book.closed_unsettled,
            evicted_unsettled_total: book.evicted_unsettled_total,
            closed_recent: book.closed_recent,
        }
    }
}

impl SlaveState {
    /// Moves a live book's dynamic state out (for a reconfiguration).
    fn taken_from(book: SlaveBook) -> SlaveState {
        SlaveState {
            figures: book.figures,
            symbols: book.symbols,
            day: book.day,
            active_total: book.active_total,
            active_per_symbol: book.active_per_symbol,
            orphan_closes: book.orphan_closes,
        }
    }
}

impl Engine {
    /// The engine's dynamic state, moved out rather than serialized: what
    /// [`Engine::restore`] takes, as a checkpoint would give it.
    pub(super) fn into_state(self) -> EngineState {
        EngineState {
            masters: self.masters.into_iter().map(|(login, book)| (login, MasterState::taken_from(book))).collect(),
            slaves: self.slaves.into_iter().map(|(login, book)| (login, SlaveState::taken_from(book))).collect(),
        }
    }

    /// The engine's dynamic state, to serialize into a checkpoint.
    pub fn state(&self) -> EngineStateRef<'_> {
        EngineStateRef { engine: self }
    }

    /// Moves a checkpoint's state into this engine, freshly built by
    /// [`Engine::new`] from the current config. Accounts the config no
    /// longer has are dropped; accounts new in it keep their empty books.
    pub fn restore(&mut self, state: EngineState) -> RestoreReport {
        let mut report = RestoreReport::default();
        for (login, master) in state.masters {
            match self.masters.get_mut(&login) {
                Some(book) => {
                    if restore_master(book, master) {
                        report.masters_refollowed.push(login);
                    }
                }
                None => report.accounts_dropped.push(login),
            }
        }
        for (login, slave) in state.slaves {
            let Some(book) = self.slaves.get_mut(&login) else {
                report.accounts_dropped.push(login);
                continue;
            };
            book.figures = slave.figures;
            book.day = slave.day;
            book.active_total = slave.active_total;
            book.active_per_symbol = slave.active_per_symbol;
            book.orphan_closes = slave.orphan_closes;
            match slave.symbols.bounded(book.symbols.symbols_max()) {
                Some(symbols) => book.symbols = symbols,
                None => report.symbol_tables_dropped.push(login),
            }
        }
        self.recount_active_copies();
        report
    }

    /// Sets every slave's open-copy counters from the restored ledger
    /// rather than the checkpoint's: a follow removed since the checkpoint
    /// took that master's copies out of the ledger, and the counters must
    /// not keep them (they would hold the slave's position slots forever,
    /// as no close of those copies will come). A journal replay under the
    /// new config counts the same way.
    fn recount_active_copies(&mut self) {
        for book in self.slaves.values_mut() {
            book.active_total = 0;
            book.active_per_symbol.values_mut().for_each(|count| *count = 0);
        }
        for master in self.masters.values() {
            for position in master.positions.values() {
                for (follower, copy) in master.followers.iter().zip(&position.copies) {
                    if copy.status.is_active() {
                        if let Some(slave) = self.slaves.get_mut(&follower.slave) {
                            slave.activate(&copy.symbol);
                        }
                    }
                }
            }
        }
    }
}

/// Restores one master's book; true when its followers changed since the
/// checkpoint (copies were matched by slave login).
fn restore_master(book: &mut MasterBook, state: MasterState) -> bool {
    let current: Vec<u64> = book.followers.iter().map(|follower| follower.slave).collect();
    let refollowed = current != state.follower_slaves;
    book.figures = state.figures;
    book.snapshot_seen = state.snapshot_seen;
    book.positions = state.positions;
    if refollowed {
        for position in book.positions.values_mut() {
            let mut old: BTreeMap<u64, SlaveCopy> = state.follower_slaves.iter().copied().zip(position.copies.drain(..)).collect();
            position.copies = current
                .iter()
                .map(|slave| old.remove(slave).unwrap_or_else(|| SlaveCopy::new(CopyStatus::NoCopy(NoCopyCause::Lost))))
                .collect();
        }
    }
    book.closed_unsettled = state.closed_unsettled;
    book.evicted_unsettled_total = state.evicted_unsettled_total;
    // A lowered `closed_positions_remembered_max` forgets the oldest ids.
    let mut closed_recent = state.closed_recent;
    while closed_recent.len() > book.closed_remembered_max {
        closed_recent.pop_front();
    }
    book.closed_recent_set = closed_recent.iter().copied().collect();
    book.closed_recent = closed_recent;
    // A lowered `positions_per_master_max` must not fail the ledger's bound
    // on what it already holds: new positions are refused until it is met.
    book.positions_max = book.positions_max.max(book.open_count());
    refollowed
}
