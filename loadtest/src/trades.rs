//! The synthetic trading the simulated Monitors do, and what each follower
//! must receive for it.
//!
//! # Layout
//! - [`SYMBOLS`]: the symbols the harness trades and the specifications its
//!   Executors declare in `state` (one has a 0.1 lot step, so rounding and
//!   the minimum are really exercised).
//! - [`PositionTraits`]: symbol, side, volume, price and stops of a
//!   position, a pure function of its number.
//! - [`Slot`]: which event of a position (open, the `k`-th modify, close);
//!   [`Slot::from_copy`] recovers it from a `copy`.
//! - [`EventGenerator`]: the next event of a master (open until enough are
//!   open, then modify or close the oldest).
//! - [`expected_open_units`]: the volume a follower must be sent for an
//!   open, computed independently of the bridge's engine.
//!
//! # Invariants
//! - Position numbers count from 0 per master; the wire `pos` is
//!   `pos_base + number`, so a run never reuses a position id of an earlier
//!   run against the same bridge.
//! - Every modify changes the stop-loss, so the bridge must copy it.
//! - Volumes are compared in integer units of 1e-8 lot, the unit CONFIG.md
//!   defines sizing in; the harness's arithmetic is its own, so a bug in the
//!   engine's sizing shows up as `wrong_volume` instead of being shared.

use std::collections::VecDeque;

use tradebridge_core::config::{BelowMin, LotRule};
use tradebridge_core::protocol::{CopyAction, Side, SymbolSpec};

/// Units per lot, as CONFIG.md defines sizing ("integer units of 1e-8 lot").
pub const UNITS_PER_LOT: u64 = 100_000_000;

/// Modifies per position at most: the slot index is a small integer.
pub const MODIFIES_PER_POSITION_MAX: u32 = 8;

/// Position traits repeat with this period (3 symbols, 7 volumes, 2 sides),
/// so what a position means to each follower can be tabled once.
pub const TRAITS_PERIOD: u64 = 42;

/// A symbol the harness trades, with the specification its Executors send.
#[derive(Clone, Copy, Debug)]
pub struct SymbolInfo {
    /// Name on master and slave (the generated follows map nothing).
    pub name: &'static str,
    /// Smallest, largest and step volume on the slave, in lots.
    pub min_lots: f64,
    pub max_lots: f64,
    pub step_lots: f64,
    /// Price digits, and the price every position of this symbol opens at.
    pub digits: u32,
    pub price: f64,
    /// Units per lot on the slave; the master lists no contracts, so the
    /// contract ratio is 1.
    pub contract: f64,
}

/// The traded symbols. US30 has a 0.1 minimum and step, so some
/// multiplier x volume combinations round down and some fall below the
/// minimum (and are then skipped by the bridge, and expected to be).
pub const SYMBOLS: [SymbolInfo; 3] = [
    SymbolInfo { name: "EURUSD", min_lots: 0.01, max_lots: 100.0, step_lots: 0.01, digits: 5, price: 1.1, contract: 100_000.0 },
    SymbolInfo { name: "GBPUSD", min_lots: 0.01, max_lots: 100.0, step_lots: 0.01, digits: 5, price: 1.25, contract: 100_000.0 },
    SymbolInfo { name: "US30", min_lots: 0.1, max_lots: 50.0, step_lots: 0.1, digits: 1, price: 38_000.0, contract: 1.0 },
];

/// Master volumes, cycled by position number: round ones, and ones whose
/// products with the generated multipliers need rounding to the step.
pub const MASTER_VOLUMES_LOTS: [f64; 7] = [0.1, 0.25, 0.07, 1.0, 0.5, 0.33, 2.0];

/// The symbol list an Executor declares in `state`.
pub fn symbol_specs() -> Vec<SymbolSpec> {
    SYMBOLS
        .iter()
        .map(|symbol| SymbolSpec {
            name: symbol.name.to_string(),
            min: symbol.min_lots,
            max: symbol.max_lots,
            step: symbol.step_lots,
            digits: symbol.digits,
            contract: symbol.contract,
        })
        .collect()
}

/// Everything about a position that its number decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionTraits {
    /// Index into [`SYMBOLS`].
    pub symbol: usize,
    pub side: Side,
    pub volume_lots: f64,
    /// Open price; modifies carry no price (market positions).
    pub price: f64,
    /// Take-profit, unchanged by modifies.
    pub tp: f64,
}

impl PositionTraits {
    /// The traits of position `number`.
    pub fn of(number: u64) -> PositionTraits {
        let symbol = (number % SYMBOLS.len() as u64) as usize;
        let side = if number.is_multiple_of(2) { Side::Buy } else { Side::Sell };
        let volume_lots = MASTER_VOLUMES_LOTS[(number % MASTER_VOLUMES_LOTS.len() as u64) as usize];
        let price = SYMBOLS[symbol].price;
        let distance = price * 0.01;
        let tp = if side == Side::Buy { price + distance } else { price - distance };
        PositionTraits { symbol, side, volume_lots, price, tp }
    }

    /// Distance between successive stop-losses, in price units.
    fn stop_step(&self) -> f64 {
        self.price * 0.001
    }

    /// Stop-loss after `slot`: the open carries one step away from the
    /// price, the `k`-th modify `k + 2` steps, so every modify moves it.
    pub fn sl(&self, slot: Slot) -> f64 {
        let steps = match slot {
            Slot::Open | Slot::Close => 1.0,
            Slot::Modify(k) => f64::from(k) + 2.0,
        };
        let distance = steps * self.stop_step();
        let sl = if self.side == Side::Buy { self.price - distance } else { self.price + distance };
        round_to_digits(sl, SYMBOLS[self.symbol].digits)
    }

    /// The modify index a copy's stop-loss encodes, if it is one of ours.
    pub fn modify_index(&self, sl: f64) -> Option<u32> {
        let steps = ((sl - self.price).abs() / self.stop_step()).round();
        if !(2.0..=f64::from(MODIFIES_PER_POSITION_MAX) + 1.0).contains(&steps) {
            return None;
        }
        let index = steps as u32 - 2;
        (self.sl(Slot::Modify(index)) == sl).then_some(index)
    }
}

/// Rounds a price to `digits` decimals, as a terminal would quote it.
fn round_to_digits(price: f64, digits: u32) -> f64 {
    let scale = 10f64.powi(digits as i32);
    (price * scale).round() / scale
}

/// Which event of a position a copy belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Open,
    /// The `k`-th modify, from 0.
    Modify(u32),
    Close,
}

impl Slot {
    /// Index in a position's row of the intended-time table, given the
    /// modifies per position.
    pub fn index(self, modifies_per_position: u32) -> u32 {
        match self {
            Slot::Open => 0,
            Slot::Modify(k) => 1 + k,
            Slot::Close => 1 + modifies_per_position,
        }
    }

    /// The inverse of [`Slot::index`].
    pub fn from_index(index: u32, modifies_per_position: u32) -> Slot {
        match index {
            0 => Slot::Open,
            index if index <= modifies_per_position => Slot::Modify(index - 1),
            _ => Slot::Close,
        }
    }

    /// Slots per position: open, the modifies, close.
    pub fn per_position(modifies_per_position: u32) -> u32 {
        modifies_per_position + 2
    }

    /// The slot of a received copy; `None` for an action the harness never
    /// causes (pending, cancel) or a stop-loss it never sent.
    pub fn from_copy(action: CopyAction, sl: f64, traits: &PositionTraits) -> Option<Slot> {
        match action {
            CopyAction::Open => Some(Slot::Open),
            CopyAction::Close => Some(Slot::Close),
            CopyAction::Modify => traits.modify_index(sl).map(Slot::Modify),
            CopyAction::Pending | CopyAction::Cancel => None,
        }
    }

    /// Name in reports.
    pub fn action_name(self) -> &'static str {
        match self {
            Slot::Open => "open",
            Slot::Modify(_) => "modify",
            Slot::Close => "close",
        }
    }
}

/// One event a Monitor is about to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Position number (not the wire `pos`).
    pub position: u64,
    pub slot: Slot,
}

/// A master's event stream: opens until `open_positions_max` are open, then
/// alternately works the oldest open position: its modifies, then its close.
#[derive(Clone, Debug)]
pub struct EventGenerator {
    /// Open positions, oldest first, with the modifies each has had.
    open: VecDeque<(u64, u32)>,
    /// Number of the next new position.
    next_position: u64,
    /// Positions kept open at most.
    open_positions_max: u32,
    /// Modifies each position gets before its close.
    modifies_per_position: u32,
    /// Positions this generator may create (the intended-time table's rows).
    positions_max: u64,
}

impl EventGenerator {
    /// A generator with nothing open.
    pub fn new(open_positions_max: u32, modifies_per_position: u32, positions_max: u64) -> EventGenerator {
        assert!(open_positions_max >= 1, "at least one open position");
        assert!(modifies_per_position <= MODIFIES_PER_POSITION_MAX);
        EventGenerator { open: VecDeque::new(), next_position: 0, open_positions_max, modifies_per_position, positions_max }
    }

    /// The next event, or `None` when the table of positions is full and
    /// nothing is left open to close.
    pub fn next_event(&mut self) -> Option<PlannedEvent> {
        let room = self.next_position < self.positions_max;
        if room && (self.open.len() as u32) < self.open_positions_max {
            let position = self.next_position;
            self.next_position += 1;
            self.open.push_back((position, 0));
            return Some(PlannedEvent { position, slot: Slot::Open });
        }
        let (position, modifies) = self.open.pop_front()?;
        if modifies < self.modifies_per_position {
            self.open.push_back((position, modifies + 1));
            return Some(PlannedEvent { position, slot: Slot::Modify(modifies) });
        }
        Some(PlannedEvent { position, slot: Slot::Close })
    }

    /// Positions open now, oldest first (the snapshot's content).
    pub fn open_positions(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.open.iter().copied()
    }

    /// Positions created so far.
    pub fn positions_created(&self) -> u64 {
        self.next_position
    }
}

/// Lots to units of 1e-8 lot, rounded to the nearest unit.
pub fn lots_to_units(lots: f64) -> u64 {
    assert!(lots.is_finite() && lots >= 0.0, "volume {lots} must be a finite number >= 0");
    (lots * UNITS_PER_LOT as f64).round() as u64
}

/// The open volume a follower must receive, in units, or `None` when the
/// bridge must skip it (below the symbol's minimum with `below_min = "skip"`).
/// Only the two lot modes the generated configurations use are modelled.
pub fn expected_open_units(rule: LotRule, below_min: BelowMin, max_lot: Option<f64>, master_lots: f64, symbol: &SymbolInfo) -> Result<Option<u64>, String> {
    let sized_lots = match rule {
        LotRule::Multiplier { factor } => master_lots * factor,
        LotRule::Fixed { lots } => lots,
        other => return Err(format!("lot rule {other:?}: the harness checks volumes of multiplier and fixed only")),
    };
    let step = lots_to_units(symbol.step_lots);
    let minimum = lots_to_units(symbol.min_lots).max(step);
    let cap_lots = max_lot.map_or(symbol.max_lots, |cap| cap.min(symbol.max_lots));
    let cap = lots_to_units(cap_lots) / step * step;
    let sized = (lots_to_units(sized_lots) / step * step).min(cap);
    if sized >= minimum {
        return Ok(Some(sized));
    }
    Ok(match below_min {
        BelowMin::Min if minimum <= cap => Some(minimum),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EURUSD: &SymbolInfo = &SYMBOLS[0];
    const US30: &SymbolInfo = &SYMBOLS[2];

    fn multiplier(factor: f64) -> LotRule {
        LotRule::Multiplier { factor }
    }

    #[test]
    fn multiplier_volumes_are_rounded_down_to_the_step() {
        // Shows: master lots x multiplier is rounded down to the slave's step (0.07 x 0.5 = 0.035 -> 0.03; 0.33 x 0.3 -> 0.09) and exact products stay exact.
        let skip = BelowMin::Skip;
        assert_eq!(expected_open_units(multiplier(2.0), skip, None, 0.1, EURUSD), Ok(Some(20_000_000)));
        assert_eq!(expected_open_units(multiplier(0.5), skip, None, 0.07, EURUSD), Ok(Some(3_000_000)));
        assert_eq!(expected_open_units(multiplier(0.3), skip, None, 0.33, EURUSD), Ok(Some(9_000_000)));
        assert_eq!(expected_open_units(multiplier(0.3), skip, None, 0.5, EURUSD), Ok(Some(15_000_000)));
        assert_eq!(expected_open_units(multiplier(1.5), skip, None, 0.07, EURUSD), Ok(Some(10_000_000)));
    }

    #[test]
    fn below_the_minimum_is_skipped_or_raised_and_the_maximum_clamps() {
        // Shows: on a 0.1-step symbol 0.07 x 1.0 is below the minimum (skip: no copy expected; min: 0.1), 0.25 x 1.0 rounds to 0.2, and max_lot and the symbol's max clamp.
        assert_eq!(expected_open_units(multiplier(1.0), BelowMin::Skip, None, 0.07, US30), Ok(None));
        assert_eq!(expected_open_units(multiplier(1.0), BelowMin::Min, None, 0.07, US30), Ok(Some(10_000_000)));
        assert_eq!(expected_open_units(multiplier(1.0), BelowMin::Skip, None, 0.25, US30), Ok(Some(20_000_000)));
        assert_eq!(expected_open_units(multiplier(2.0), BelowMin::Skip, Some(1.55), 2.0, EURUSD), Ok(Some(155_000_000)));
        assert_eq!(expected_open_units(multiplier(100.0), BelowMin::Skip, None, 2.0, US30), Ok(Some(5_000_000_000)));
    }

    #[test]
    fn fixed_lots_ignore_the_master_volume_and_ratio_modes_are_refused() {
        // Shows: a fixed rule gives its lots whatever the master traded; a ratio rule is reported as not modelled rather than guessed.
        let fixed = LotRule::Fixed { lots: 0.3 };
        assert_eq!(expected_open_units(fixed, BelowMin::Skip, None, 2.0, EURUSD), Ok(Some(30_000_000)));
        assert_eq!(expected_open_units(fixed, BelowMin::Skip, None, 0.01, US30), Ok(Some(30_000_000)));
        let ratio = LotRule::BalanceRatio { factor: 1.0 };
        assert!(expected_open_units(ratio, BelowMin::Skip, None, 1.0, EURUSD).unwrap_err().contains("multiplier and fixed only"));
    }

    #[test]
    fn generator_opens_then_modifies_and_closes_the_oldest() {
        // Shows: with 2 positions open at most and 1 modify each, the stream is open 0, open 1, modify 0, modify 1, close 0, open 2, close 1, ...
        let mut generator = EventGenerator::new(2, 1, 100);
        let events: Vec<(u64, Slot)> = (0..8).map(|_| generator.next_event().expect("room")).map(|event| (event.position, event.slot)).collect();
        assert_eq!(
            events,
            vec![
                (0, Slot::Open),
                (1, Slot::Open),
                (0, Slot::Modify(0)),
                (1, Slot::Modify(0)),
                (0, Slot::Close),
                (2, Slot::Open),
                (1, Slot::Close),
                (3, Slot::Open),
            ]
        );
        assert_eq!(generator.open_positions().collect::<Vec<_>>(), vec![(2, 0), (3, 0)]);
    }

    #[test]
    fn generator_closes_everything_then_stops_when_the_table_is_full() {
        // Shows: once positions_max positions were created the generator only closes, then returns None; nothing is reopened.
        let mut generator = EventGenerator::new(3, 0, 2);
        let events: Vec<(u64, Slot)> = std::iter::from_fn(|| generator.next_event()).map(|event| (event.position, event.slot)).collect();
        assert_eq!(events, vec![(0, Slot::Open), (1, Slot::Open), (0, Slot::Close), (1, Slot::Close)]);
    }

    #[test]
    fn modify_stops_encode_their_index_and_decode_back() {
        // Shows: every modify of a buy and a sell moves the stop-loss, and the index is recovered from the copy's sl; the open's sl is not a modify.
        for number in [0, 1, 2, 5] {
            let traits = PositionTraits::of(number);
            assert_eq!(traits.modify_index(traits.sl(Slot::Open)), None);
            for k in 0..MODIFIES_PER_POSITION_MAX {
                let sl = traits.sl(Slot::Modify(k));
                assert_ne!(sl, traits.sl(Slot::Open));
                assert_eq!(Slot::from_copy(CopyAction::Modify, sl, &traits), Some(Slot::Modify(k)));
            }
        }
        assert_eq!(Slot::from_copy(CopyAction::Cancel, 0.0, &PositionTraits::of(0)), None);
    }

    #[test]
    fn traits_repeat_with_their_period() {
        // Shows: position n and n + TRAITS_PERIOD have the same symbol, side and volume, so per-period tables are exact.
        for number in 0..TRAITS_PERIOD {
            assert_eq!(PositionTraits::of(number), PositionTraits::of(number + TRAITS_PERIOD));
            assert_eq!(PositionTraits::of(number), PositionTraits::of(number + 1000 * TRAITS_PERIOD));
        }
    }

    #[test]
    fn slot_indices_round_trip() {
        // Shows: open, each modify and close map to distinct table indices 0..modifies+2 and back.
        for modifies in [0, 1, 3] {
            let slots = Slot::per_position(modifies);
            for index in 0..slots {
                assert_eq!(Slot::from_index(index, modifies).index(modifies), index);
            }
            assert_eq!(Slot::Close.index(modifies), slots - 1);
        }
    }
}
