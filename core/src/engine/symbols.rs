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
#[derive(Clone, Copy, Debug, PartialEq)]
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

/// A slave's symbols, merged by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct SymbolTable {
    /// Known symbols by slave name; replaced entry by entry on each merge.
    /// Once it holds one symbol, a symbol missing from it is a reason to
    /// skip (an empty list, or one of invalid specs, tells us nothing).
    symbols: BTreeMap<String, SlaveSymbol>,
    /// Names kept at most (`symbols_per_slave_max`).
    symbols_max: usize,
}

impl SymbolTable {
    pub(crate) fn new(symbols_max: usize) -> SymbolTable {
        assert!(symbols_max > 0, "a slave must be able to hold one symbol");
        SymbolTable {
            symbols: BTreeMap::new(),
            symbols_max,
        }
    }

    /// Merges specs by name. An invalid spec is ignored (the old one, if
    /// any, stays); new names beyond `symbols_max` are ignored.
    pub(crate) fn merge(&mut self, specs: &[SymbolSpec]) {
        for spec in specs {
            let Some(symbol) = SlaveSymbol::from_spec(spec) else {
                continue;
            };
            if let Some(existing) = self.symbols.get_mut(&spec.name) {
                *existing = symbol;
            } else if self.symbols.len() < self.symbols_max {
                self.symbols.insert(spec.name.clone(), symbol);
            }
        }
        assert!(self.symbols.len() <= self.symbols_max);
    }

    /// True once the slave has told us at least one valid symbol.
    pub(crate) fn is_known(&self) -> bool {
        !self.symbols.is_empty()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&SlaveSymbol> {
        self.symbols.get(name)
    }

    /// The symbol if known, else the default spec.
    pub(crate) fn get_or_default(&self, name: &str) -> SlaveSymbol {
        self.symbols
            .get(name)
            .copied()
            .unwrap_or(SlaveSymbol::DEFAULT)
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
}
