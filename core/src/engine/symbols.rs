//! Symbols: mapping a master symbol to the slave's name, the allow and deny
//! lists, and each slave's symbol table (merged by name from `state` and
//! `symbols` frames).
//!
//! # Layout
//! - [`symbol_allowed`], [`map_symbol`]: the follow's symbol rules.
//! - [`SlaveSymbol`], `SymbolTable`: what the engine knows of a slave's symbols.
//!
//! # Invariants
//! - A symbol table holds at most `symbols_max` names; further names are
//!   ignored, never a reason to drop known ones.
//! - Every stored symbol has a valid [`LotSpec`], and a contract size within
//!   `CONTRACT_SIZE_MIN..=CONTRACT_SIZE_MAX` or none.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::config::{SymbolRules, CONTRACT_SIZE_MAX, CONTRACT_SIZE_MIN};
use crate::protocol::SymbolSpec;

use super::lots::LotSpec;

/// Digits assumed while a slave's symbol is unknown: 5, as on most FX
/// symbols. For other symbols this makes `max_dev` tight, so the Executor
/// refuses rather than fills at a bad price.
pub const DIGITS_DEFAULT: u32 = 5;

/// Largest digits a symbol may report; beyond it the spec is refused.
const DIGITS_MAX: u32 = 12;

/// True when the master's symbol passes the follow's allow and deny lists
/// (deny wins; an empty allow list allows everything).
pub fn symbol_allowed(rules: &SymbolRules, master_symbol: &str) -> bool {
    if rules.deny.contains(master_symbol) {
        return false;
    }
    rules.allow.is_empty() || rules.allow.contains(master_symbol)
}

/// The slave's name for a master symbol: the explicit map when it has the
/// symbol; otherwise strip the configured prefix and suffix (when present)
/// and add the slave's prefix and suffix.
pub fn map_symbol(rules: &SymbolRules, master_symbol: &str) -> String {
    if let Some(mapped) = rules.map.get(master_symbol) {
        return mapped.clone();
    }
    let mut core = master_symbol;
    if !rules.strip_prefix.is_empty() {
        core = core
            .strip_prefix(rules.strip_prefix.as_str())
            .unwrap_or(core);
    }
    if !rules.strip_suffix.is_empty() {
        core = core
            .strip_suffix(rules.strip_suffix.as_str())
            .unwrap_or(core);
    }
    let mut mapped = String::with_capacity(rules.prefix.len() + core.len() + rules.suffix.len());
    mapped.push_str(&rules.prefix);
    mapped.push_str(core);
    mapped.push_str(&rules.suffix);
    mapped
}

/// What the engine keeps of one slave symbol.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SlaveSymbol {
    /// Volume limits in units.
    pub lots: LotSpec,
    /// Price digits: a point is 10^-digits.
    pub digits: u32,
    /// Units per lot, within `CONTRACT_SIZE_MIN..=CONTRACT_SIZE_MAX`; `None`
    /// when the slave reported 0 (unknown).
    pub contract: Option<f64>,
}

impl SlaveSymbol {
    /// Validates a wire spec; `None` when it cannot describe a tradable
    /// symbol: bad lots, too many digits, an empty name, or a contract size
    /// other than 0 ("unknown") outside `CONTRACT_SIZE_MIN..=CONTRACT_SIZE_MAX`
    /// (a contract of 1e-307 would make the master/slave ratio infinite).
    pub fn from_spec(spec: &SymbolSpec) -> Option<SlaveSymbol> {
        let lots = LotSpec::from_lots(spec.min, spec.max, spec.step)?;
        if spec.digits > DIGITS_MAX || spec.name.is_empty() {
            return None;
        }
        let contract = if spec.contract == 0.0 {
            None
        } else if (CONTRACT_SIZE_MIN..=CONTRACT_SIZE_MAX).contains(&spec.contract) {
            Some(spec.contract)
        } else {
            return None;
        };
        assert!(contract.is_none_or(|size| size.is_finite() && size > 0.0));
        Some(SlaveSymbol {
            lots,
            digits: spec.digits,
            contract,
        })
    }

    /// What a slave whose symbols are unknown is assumed to trade with.
    pub const DEFAULT: SlaveSymbol = SlaveSymbol {
        lots: LotSpec::DEFAULT,
        digits: DIGITS_DEFAULT,
        contract: None,
    };
}

/// Bytes of symbol names a table holds at most: entries locate their name
/// with 32-bit offsets. Far above any terminal's Market Watch (names of a few
/// to a few tens of bytes, `symbols_per_slave_max` at most 100,000).
const NAMES_BYTES_MAX: usize = u32::MAX as usize;

/// One stored symbol: its name's first bytes, where the whole name lies in
/// [`SymbolTable::names`], and its spec.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct SymbolEntry {
    /// The name's first 8 bytes, big-endian, zero-padded: most comparisons
    /// of a lookup end here, without reading `names`.
    name_prefix: u64,
    /// Byte offset of the name in `names`.
    name_start: u32,
    /// Length of the name in bytes.
    name_bytes: u32,
    /// The symbol's spec.
    symbol: SlaveSymbol,
}

/// Bytes of a name held in [`SymbolEntry::name_prefix`].
const NAME_PREFIX_BYTES: usize = 8;

/// A name as the table orders it: by its first 8 bytes, then its length,
/// then the rest. Two names compare equal only when they are the same bytes
/// (zero padding only stands for bytes past the end, which the length tells
/// apart).
#[derive(Clone, Copy)]
struct NameKey<'name> {
    /// The first 8 bytes, big-endian, zero-padded.
    prefix: u64,
    /// The whole name.
    bytes: &'name [u8],
}

impl<'name> NameKey<'name> {
    fn new(bytes: &'name [u8]) -> NameKey<'name> {
        let mut prefix = [0u8; NAME_PREFIX_BYTES];
        let head = bytes.len().min(NAME_PREFIX_BYTES);
        prefix[..head].copy_from_slice(&bytes[..head]);
        NameKey {
            prefix: u64::from_be_bytes(prefix),
            bytes,
        }
    }

    /// Orders a stored entry (whose name is in `names`) against this key.
    fn order_of(&self, entry: &SymbolEntry, names: &[u8]) -> Ordering {
        entry
            .name_prefix
            .cmp(&self.prefix)
            .then((entry.name_bytes as usize).cmp(&self.bytes.len()))
            .then_with(|| {
                if self.bytes.len() <= NAME_PREFIX_BYTES {
                    return Ordering::Equal;
                }
                let start = entry.name_start as usize + NAME_PREFIX_BYTES;
                let end = entry.name_start as usize + entry.name_bytes as usize;
                names[start..end].cmp(&self.bytes[NAME_PREFIX_BYTES..])
            })
    }
}

/// A slave's symbols, merged by name.
///
/// Two exact-size allocations whatever the count (a map node per few
/// symbols cost ~800 bytes for a slave with three): the entries sorted by
/// [`NameKey`] order and found by binary search, and their names laid end to
/// end. Names are only ever added, so the names buffer never has holes. The
/// inline name prefix makes a lookup among 300 symbols about twice as fast
/// as in the map it replaces.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct SymbolTable {
    /// Known symbols sorted by [`NameKey`] order, names unique; specs are
    /// replaced entry by entry on each merge. Once it holds one symbol, a
    /// symbol missing from it is a reason to skip (an empty list, or one of
    /// invalid specs, tells us nothing).
    entries: Box<[SymbolEntry]>,
    /// Every stored name, end to end, in the order they were added.
    names: Box<str>,
    /// Names kept at most (`symbols_per_slave_max`); from the config, so
    /// not in a checkpoint (0 once read back, until [`SymbolTable::bounded`]).
    #[serde(skip)]
    symbols_max: u32,
}

impl SymbolTable {
    pub(crate) fn new(symbols_max: u32) -> SymbolTable {
        assert!(symbols_max > 0, "a slave must be able to hold one symbol");
        SymbolTable {
            entries: Box::default(),
            names: Box::default(),
            symbols_max,
        }
    }

    /// Names kept at most.
    pub(crate) fn symbols_max(&self) -> u32 {
        self.symbols_max
    }

    /// A table read back from a checkpoint, given the configured bound;
    /// `None` when it holds more names than the bound now allows (the slave
    /// then starts with no symbols, and its next `state` brings them).
    pub(crate) fn bounded(mut self, symbols_max: u32) -> Option<SymbolTable> {
        assert!(symbols_max > 0, "a slave must be able to hold one symbol");
        let names_bytes = self.names.len() as u64;
        let in_bounds = self
            .entries
            .iter()
            .all(|entry| u64::from(entry.name_start) + u64::from(entry.name_bytes) <= names_bytes);
        if self.entries.len() > symbols_max as usize || !in_bounds {
            return None;
        }
        self.symbols_max = symbols_max;
        Some(self)
    }

    /// Merges specs by name. An invalid spec is ignored (the old one, if
    /// any, stays); new names beyond `symbols_max` (or beyond
    /// `NAMES_BYTES_MAX` bytes of names) are ignored. A name given twice
    /// keeps its last valid spec. Allocates only when a name is new.
    pub(crate) fn merge(&mut self, specs: &[SymbolSpec]) {
        // Names new to the table, each with its index in `added`; both stay
        // empty (no allocation) when every name is known.
        let mut added_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut added: Vec<(&str, SlaveSymbol)> = Vec::new();
        let mut added_bytes = 0usize;
        for spec in specs {
            let Some(symbol) = SlaveSymbol::from_spec(spec) else {
                continue;
            };
            if let Some(index) = self.position(&spec.name) {
                self.entries[index].symbol = symbol;
            } else if let Some(&index) = added_index.get(spec.name.as_str()) {
                added[index].1 = symbol;
            } else if self.entries.len() + added.len() < self.symbols_max as usize
                && self.names.len() + added_bytes + spec.name.len() <= NAMES_BYTES_MAX
            {
                added_index.insert(&spec.name, added.len());
                added.push((&spec.name, symbol));
                added_bytes += spec.name.len();
            }
        }
        if !added.is_empty() {
            self.insert(&added, added_bytes);
        }
        assert!(self.entries.len() <= self.symbols_max as usize);
    }

    /// Adds names not in the table yet, keeping both allocations exact and
    /// the entries sorted.
    fn insert(&mut self, added: &[(&str, SlaveSymbol)], added_bytes: usize) {
        let mut names = String::with_capacity(self.names.len() + added_bytes);
        names.push_str(&self.names);
        let mut entries = Vec::with_capacity(self.entries.len() + added.len());
        entries.extend_from_slice(&self.entries);
        for &(name, symbol) in added {
            let name_start = u32::try_from(names.len()).expect("merge keeps names within NAMES_BYTES_MAX");
            names.push_str(name);
            entries.push(SymbolEntry {
                name_prefix: NameKey::new(name.as_bytes()).prefix,
                name_start,
                name_bytes: u32::try_from(name.len()).expect("merge keeps names within NAMES_BYTES_MAX"),
                symbol,
            });
        }
        let bytes = names.as_bytes();
        let name_of = |entry: &SymbolEntry| &bytes[entry.name_start as usize..][..entry.name_bytes as usize];
        entries.sort_unstable_by(|left, right| NameKey::new(name_of(right)).order_of(left, bytes));
        debug_assert!(entries
            .windows(2)
            .all(|pair| NameKey::new(name_of(&pair[1])).order_of(&pair[0], bytes) == Ordering::Less));
        self.entries = entries.into_boxed_slice();
        self.names = names.into_boxed_str();
    }

    /// Index of `name` in `entries`, by binary search.
    fn position(&self, name: &str) -> Option<usize> {
        let key = NameKey::new(name.as_bytes());
        let names = self.names.as_bytes();
        self.entries
            .binary_search_by(|entry| key.order_of(entry, names))
            .ok()
    }

    /// True once the slave has told us at least one valid symbol.
    pub(crate) fn is_known(&self) -> bool {
        !self.entries.is_empty()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&SlaveSymbol> {
        self.position(name).map(|index| &self.entries[index].symbol)
    }

    /// The symbol if known, else the default spec.
    pub(crate) fn get_or_default(&self, name: &str) -> SlaveSymbol {
        self.get(name).copied().unwrap_or(SlaveSymbol::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SymbolRules {
        SymbolRules::default()
    }

    fn spec(name: &str, step: f64) -> SymbolSpec {
        SymbolSpec {
            name: name.to_string(),
            min: 0.01,
            max: 100.0,
            step,
            digits: 5,
            contract: 100_000.0,
        }
    }

    #[test]
    fn explicit_map_wins_over_affixes() {
        // Shows that symbol_map is used as is, and affixes apply to unmapped symbols only.
        let mut rules = rules();
        rules.map.insert("XAUUSD".into(), "GOLD".into());
        rules.suffix = ".m".into();
        assert_eq!(map_symbol(&rules, "XAUUSD"), "GOLD");
        assert_eq!(map_symbol(&rules, "EURUSD"), "EURUSD.m");
    }

    #[test]
    fn strip_then_add_affixes() {
        // Shows that strip_prefix/strip_suffix remove the master's affixes before the slave's are added.
        let mut rules = rules();
        rules.strip_suffix = "-ecn".into();
        rules.strip_prefix = "i".into();
        rules.prefix = "m.".into();
        assert_eq!(map_symbol(&rules, "iEURUSD-ecn"), "m.EURUSD");
        assert_eq!(
            map_symbol(&rules, "GBPUSD"),
            "m.GBPUSD",
            "absent affixes are left alone"
        );
    }

    #[test]
    fn allow_and_deny_lists() {
        // Shows that deny wins over allow and an empty allow list allows all.
        let mut rules = rules();
        assert!(symbol_allowed(&rules, "EURUSD"));
        rules.deny.insert("BTCUSD".into());
        assert!(!symbol_allowed(&rules, "BTCUSD"));
        rules.allow.insert("EURUSD".into());
        rules.allow.insert("BTCUSD".into());
        assert!(symbol_allowed(&rules, "EURUSD"));
        assert!(!symbol_allowed(&rules, "GBPUSD"));
        assert!(!symbol_allowed(&rules, "BTCUSD"));
    }

    #[test]
    fn contract_sizes_outside_the_bounds_make_the_spec_invalid() {
        // Shows that 0 means an unknown contract, and any other size outside 1e-6..=1e12 (or not a number) is refused.
        let with = |contract: f64| {
            let mut wire = spec("XAUUSD", 0.01);
            wire.contract = contract;
            SlaveSymbol::from_spec(&wire).map(|symbol| symbol.contract)
        };
        assert_eq!(with(0.0), Some(None));
        assert_eq!(with(100.0), Some(Some(100.0)));
        assert_eq!(with(CONTRACT_SIZE_MIN), Some(Some(CONTRACT_SIZE_MIN)));
        assert_eq!(with(CONTRACT_SIZE_MAX), Some(Some(CONTRACT_SIZE_MAX)));
        for refused in [1e-307, 1e-7, 1e13, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(with(refused), None, "{refused}");
        }
        let mut nameless = spec("", 0.01);
        nameless.contract = 100.0;
        assert_eq!(
            SlaveSymbol::from_spec(&nameless),
            None,
            "a symbol needs a name"
        );
    }

    #[test]
    fn table_merges_by_name_and_is_bounded() {
        // Shows merge-by-name, that invalid specs are ignored, and the symbols_max bound.
        let mut table = SymbolTable::new(2);
        table.merge(&[]);
        assert!(!table.is_known(), "an empty list tells nothing");
        table.merge(&[spec("EURUSD", 0.01)]);
        table.merge(&[
            spec("EURUSD", 0.1),
            spec("GBPUSD", 0.01),
            spec("USDJPY", 0.01),
        ]);
        assert!(table.is_known());
        assert_eq!(table.get("EURUSD").unwrap().lots.step_units, 10_000_000);
        assert!(table.get("GBPUSD").is_some());
        assert!(table.get("USDJPY").is_none(), "beyond symbols_max");
        table.merge(&[spec("EURUSD", 0.0)]);
        let mut tiny = spec("EURUSD", 0.01);
        tiny.contract = 1e-307;
        table.merge(&[tiny]);
        assert_eq!(
            table.get("EURUSD").unwrap().lots.step_units,
            10_000_000,
            "an invalid spec (a zero step, a contract of 1e-307) leaves the old one"
        );
        assert_eq!(table.get_or_default("XAUUSD"), SlaveSymbol::DEFAULT);
    }

    /// The merge semantics the table must keep, on an ordered map (what the
    /// table was before it became two flat allocations).
    fn model_merge(model: &mut BTreeMap<String, SlaveSymbol>, specs: &[SymbolSpec], symbols_max: usize) {
        for spec in specs {
            let Some(symbol) = SlaveSymbol::from_spec(spec) else {
                continue;
            };
            if let Some(existing) = model.get_mut(&spec.name) {
                *existing = symbol;
            } else if model.len() < symbols_max {
                model.insert(spec.name.clone(), symbol);
            }
        }
    }

    #[test]
    fn table_agrees_with_an_ordered_map_over_many_merges() {
        // Shows lookups (hit and miss), replacement, duplicates in a frame, invalid specs and the bound match the map semantics.
        let names: Vec<String> = (0..300)
            .map(|number| match number % 4 {
                0 => format!("S{number}"),
                1 => format!("S{number}.m"),
                2 => format!("{number}"),
                _ => format!("S{}X", number / 7),
            })
            .collect();
        let symbols_max = 180;
        let mut table = SymbolTable::new(symbols_max as u32);
        let mut model = BTreeMap::new();
        // A fixed linear congruential sequence: deterministic, scrambled order.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) % bound as u64) as usize
        };
        for round in 0..60 {
            let frame: Vec<SymbolSpec> = (0..next(40))
                .map(|_| {
                    let mut wire = spec(&names[next(names.len())], [0.01, 0.1, 1.0, 0.0][next(4)]);
                    wire.digits = round % 7;
                    wire
                })
                .collect();
            table.merge(&frame);
            model_merge(&mut model, &frame, symbols_max);
            assert_eq!(table.entries.len(), model.len(), "round {round}");
            for name in names.iter().chain([&String::new(), &"S".to_string(), &"zzz".to_string()]) {
                assert_eq!(table.get(name), model.get(name), "round {round}, name {name:?}");
            }
        }
        assert_eq!(model.len(), symbols_max, "the sequence reaches the bound");
        let stored_bytes: usize = model.keys().map(String::len).sum();
        assert_eq!(table.names.len(), stored_bytes, "each name is stored once");
    }

    #[test]
    fn a_name_twice_in_one_frame_keeps_its_last_spec_and_counts_once() {
        // Shows that a new name repeated in one frame takes one slot of the bound and its last valid spec.
        let mut table = SymbolTable::new(2);
        table.merge(&[
            spec("GBPUSD", 0.01),
            spec("GBPUSD", 0.1),
            spec("GBPUSD", 0.0),
            spec("AUDUSD", 1.0),
            spec("USDJPY", 0.01),
        ]);
        assert_eq!(table.get("GBPUSD").unwrap().lots.step_units, 10_000_000);
        assert_eq!(table.get("AUDUSD").unwrap().lots.step_units, 100_000_000);
        assert_eq!(table.get("USDJPY"), None, "beyond symbols_max");
        assert_eq!(&*table.names, "GBPUSDAUDUSD");
    }

    #[test]
    fn names_that_prefix_each_other_are_told_apart() {
        // Shows that lookups compare whole names: a prefix or an extension of a stored name misses.
        let mut table = SymbolTable::new(10);
        table.merge(&[spec("EURUSD.m", 0.1), spec("EUR", 1.0)]);
        table.merge(&[spec("EURUSD", 0.01)]);
        assert_eq!(table.get("EUR").unwrap().lots.step_units, 100_000_000);
        assert_eq!(table.get("EURUSD").unwrap().lots.step_units, 1_000_000);
        assert_eq!(table.get("EURUSD.m").unwrap().lots.step_units, 10_000_000);
        for missing in ["EU", "EURU", "EURUSD.", "EURUSD.mm", "eurusd", ""] {
            assert_eq!(table.get(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn names_alike_in_their_first_eight_bytes_are_told_apart() {
        // Shows that names sharing the inline 8-byte prefix, or differing only by trailing zero bytes, are distinct.
        let names = ["EURUSD.m", "EURUSD.mini", "EURUSD.micro", "EURUSD.m\0", "AB", "AB\0", "AB\0\0", "EURUSD.mini2"];
        let mut table = SymbolTable::new(20);
        for (number, name) in names.iter().enumerate() {
            let mut wire = spec(name, 0.01);
            wire.digits = number as u32;
            table.merge(&[wire]);
        }
        for (number, name) in names.iter().enumerate() {
            assert_eq!(table.get(name).map(|symbol| symbol.digits), Some(number as u32), "{name:?}");
        }
        for missing in ["EURUSD.mic", "EURUSD.minj", "EURUSD.m\0\0", "A", "AB\0\0\0", "EURUSD.mini22"] {
            assert_eq!(table.get(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn merging_known_names_replaces_in_place_without_allocating() {
        // Shows that a frame of known names (every later state) keeps both allocations and only replaces specs.
        let mut table = SymbolTable::new(10);
        table.merge(&[spec("EURUSD", 0.01), spec("XAUUSD", 0.01)]);
        let (entries, names) = (table.entries.as_ptr(), table.names.as_ptr());
        table.merge(&[spec("XAUUSD", 1.0), spec("EURUSD", 0.1)]);
        assert_eq!(table.entries.as_ptr(), entries);
        assert_eq!(table.names.as_ptr(), names);
        assert_eq!(table.get("XAUUSD").unwrap().lots.step_units, 100_000_000);
        assert_eq!(table.get("EURUSD").unwrap().lots.step_units, 10_000_000);
    }
}
