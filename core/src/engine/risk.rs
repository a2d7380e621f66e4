//! What the engine knows of each slave account, and its account-wide risk
//! limits: equity floor, daily loss, open-copy counts.
//!
//! # Layout
//! - [`SlaveBook`]: one slave's figures, symbols, day start, counters.
//! - `record_figures`: balance and equity from `state`, rolling the UTC day.
//! - `limit_hit`, `check_open_risk`: the checks an open must pass.
//! - `activate` / `deactivate`: keep the open-copy counters in step with
//!   the ledger.
//!
//! # Invariants
//! - `active_total` equals the sum of `active_per_symbol` values, and both
//!   equal the number of this slave's copies with an active status in the
//!   ledger (open or pending, sent or confirmed).
//! - The day start belongs to the UTC day `day` and is set at most once per
//!   day, from the last figures known before that day's first `state`.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{AccountRisk, MoneyBasis, DAY_MS};

use super::skip::SkipReason;
use super::symbols::SymbolTable;

/// Balance and equity from the slave's last `state`, in account currency.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccountFigures {
    /// Balance: closed trades only.
    pub balance: f64,
    /// Equity: balance plus floating profit and loss.
    pub equity: f64,
}

/// The figures a UTC day's loss is measured from.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DayStart {
    /// UTC day index (`now_ms / DAY_MS`) these figures start.
    pub day: u64,
    /// Balance and equity as the day began.
    pub figures: AccountFigures,
}

/// Where one of this slave's follows sits in the master's book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FollowSlot {
    /// Master login of the follow.
    pub master: u64,
    /// Index of this follow among the master's followers (and of this
    /// slave's copy in each of the master's positions).
    pub slot: usize,
    /// Index of the follow in `Config::follows`.
    pub follow: usize,
}

/// One slave account.
#[derive(Clone, Debug)]
pub(crate) struct SlaveBook {
    /// Account-wide settings from the slave's `[[account]]`.
    pub risk: AccountRisk,
    /// Last figures from `state`; `None` until the first one ("state unknown").
    pub figures: Option<AccountFigures>,
    /// Symbol specs, merged from `state.symbols` and `symbols` frames.
    pub symbols: SymbolTable,
    /// Figures at the start of the current UTC day, for the daily loss limit.
    pub day: Option<DayStart>,
    /// Copies of this slave that are open or pending (sent or confirmed).
    pub active_total: u32,
    /// The same per slave symbol. Entries stay at zero once created (a
    /// slave trades a bounded set of symbols).
    pub active_per_symbol: BTreeMap<String, u32>,
    /// This slave's follows, sorted by master login.
    pub follows: Vec<FollowSlot>,
    /// Tagged slave positions with no ledger entry that reconciliation sent
    /// a close for; kept until the tag leaves the slave's `state` or the
    /// close fails, so one `state` after another does not close them twice.
    pub orphan_closes: BTreeSet<(u64, u64)>,
}

impl SlaveBook {
    pub(crate) fn new(risk: AccountRisk, symbols_max: u32) -> SlaveBook {
        SlaveBook {
            risk,
            figures: None,
            symbols: SymbolTable::new(symbols_max),
            day: None,
            active_total: 0,
            active_per_symbol: BTreeMap::new(),
            follows: Vec::new(),
            orphan_closes: BTreeSet::new(),
        }
    }

    /// Records balance and equity from a `state`. On the first `state` of a
    /// UTC day the day start becomes the previous figures (the account as it
    /// stood when the day began), or these figures when none came before.
    /// Figures that are not finite are ignored.
    pub(crate) fn record_figures(&mut self, balance: f64, equity: f64, now_ms: u64) {
        if !balance.is_finite() || !equity.is_finite() {
            return;
        }
        let incoming = AccountFigures { balance, equity };
        let today = now_ms / DAY_MS;
        let started_today = matches!(self.day, Some(start) if start.day == today);
        if !started_today {
            let figures = self.figures.unwrap_or(incoming);
            self.day = Some(DayStart {
                day: today,
                figures,
            });
        }
        self.figures = Some(incoming);
        assert!(self
            .figures
            .is_some_and(|figures| figures.equity.is_finite()));
        assert!(self.day.is_some_and(|start| start.day == today));
    }

    /// The limit currently breached, if any: equity floor first, then the
    /// daily loss. Nothing is breached while the figures are unknown.
    pub(crate) fn limit_hit(&self, now_ms: u64) -> Option<SkipReason> {
        let figures = self.figures?;
        if self
            .risk
            .equity_floor
            .is_some_and(|floor| figures.equity < floor)
        {
            return Some(SkipReason::EquityFloor);
        }
        // Before the day's first state, the day start is the figures we hold,
        // so the loss so far is zero.
        let start = self
            .day
            .filter(|start| start.day == now_ms / DAY_MS)?
            .figures;
        let start_value = match self.risk.daily_loss_basis {
            MoneyBasis::Balance => start.balance,
            MoneyBasis::Equity => start.equity,
        };
        let loss = start_value - figures.equity;
        let money_hit = self
            .risk
            .daily_loss_money
            .is_some_and(|limit| loss >= limit);
        let percent_hit = self
            .risk
            .daily_loss_percent
            .is_some_and(|percent| start_value > 0.0 && loss >= start_value * percent / 100.0);
        (money_hit || percent_hit).then_some(SkipReason::DailyLossLimit)
    }

    /// The account-wide checks of an open on `symbol` (the slave's name).
    pub(crate) fn check_open_risk(&self, symbol: &str, now_ms: u64) -> Result<(), SkipReason> {
        if let Some(reason) = self.limit_hit(now_ms) {
            return Err(reason);
        }
        if self
            .risk
            .max_positions
            .is_some_and(|max| self.active_total >= max)
        {
            return Err(SkipReason::MaxPositions);
        }
        let on_symbol = self.active_per_symbol.get(symbol).copied().unwrap_or(0);
        assert!(
            on_symbol <= self.active_total,
            "a symbol's count is part of the total"
        );
        if self
            .risk
            .max_positions_per_symbol
            .is_some_and(|max| on_symbol >= max)
        {
            return Err(SkipReason::MaxPositionsSymbol);
        }
        Ok(())
    }

    /// Counts a copy that became active (open or pending, sent or confirmed).
    pub(crate) fn activate(&mut self, symbol: &str) {
        self.active_total += 1;
        // Look up before inserting so that the common case does not allocate.
        match self.active_per_symbol.get_mut(symbol) {
            Some(count) => *count += 1,
            None => {
                self.active_per_symbol.insert(symbol.to_string(), 1);
            }
        }
        assert!(self.active_total >= self.active_per_symbol[symbol]);
    }

    /// Uncounts a copy that stopped being active.
    pub(crate) fn deactivate(&mut self, symbol: &str) {
        assert!(self.active_total > 0, "deactivate follows an activate");
        self.active_total -= 1;
        let count = self
            .active_per_symbol
            .get_mut(symbol)
            .expect("the symbol was counted when activated");
        assert!(*count > 0);
        // A zero count stays in the map: the symbol is likely traded again,
        // and re-inserting would allocate its name each time.
        *count -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_10_NOON_MS: u64 = 10 * DAY_MS + DAY_MS / 2;

    fn book(risk: AccountRisk) -> SlaveBook {
        SlaveBook::new(risk, 100)
    }

    #[test]
    fn nothing_is_breached_while_figures_are_unknown() {
        // Shows that limits only apply once a state has given figures.
        let slave = book(AccountRisk {
            equity_floor: Some(1000.0),
            ..AccountRisk::default()
        });
        assert_eq!(slave.limit_hit(DAY_10_NOON_MS), None);
    }

    #[test]
    fn equity_floor_blocks_opens() {
        // Shows that equity below the floor blocks, and equity back above it unblocks.
        let mut slave = book(AccountRisk {
            equity_floor: Some(1000.0),
            ..AccountRisk::default()
        });
        slave.record_figures(1200.0, 999.0, DAY_10_NOON_MS);
        assert_eq!(
            slave.check_open_risk("EURUSD", DAY_10_NOON_MS),
            Err(SkipReason::EquityFloor)
        );
        slave.record_figures(1200.0, 1001.0, DAY_10_NOON_MS);
        assert_eq!(slave.check_open_risk("EURUSD", DAY_10_NOON_MS), Ok(()));
    }

    #[test]
    fn daily_loss_in_money_and_percent() {
        // Shows the daily loss limit in money and in percent of the day's starting balance.
        let mut slave = book(AccountRisk {
            daily_loss_money: Some(100.0),
            ..AccountRisk::default()
        });
        slave.record_figures(5000.0, 5000.0, DAY_10_NOON_MS);
        slave.record_figures(5000.0, 4901.0, DAY_10_NOON_MS + 1);
        assert_eq!(slave.limit_hit(DAY_10_NOON_MS + 1), None);
        slave.record_figures(5000.0, 4900.0, DAY_10_NOON_MS + 2);
        assert_eq!(
            slave.limit_hit(DAY_10_NOON_MS + 2),
            Some(SkipReason::DailyLossLimit)
        );
        let mut percent = book(AccountRisk {
            daily_loss_percent: Some(5.0),
            ..AccountRisk::default()
        });
        percent.record_figures(5000.0, 5000.0, DAY_10_NOON_MS);
        percent.record_figures(4800.0, 4760.0, DAY_10_NOON_MS + 1);
        assert_eq!(
            percent.limit_hit(DAY_10_NOON_MS + 1),
            None,
            "240 lost is below 5% of 5000"
        );
        percent.record_figures(4800.0, 4750.0, DAY_10_NOON_MS + 2);
        assert_eq!(
            percent.limit_hit(DAY_10_NOON_MS + 2),
            Some(SkipReason::DailyLossLimit)
        );
    }

    #[test]
    fn daily_loss_resets_with_the_utc_day() {
        // Shows that the next UTC day starts from the figures the account had when it began.
        let mut slave = book(AccountRisk {
            daily_loss_money: Some(100.0),
            ..AccountRisk::default()
        });
        slave.record_figures(5000.0, 5000.0, DAY_10_NOON_MS);
        slave.record_figures(4850.0, 4850.0, DAY_10_NOON_MS + 1);
        assert_eq!(
            slave.limit_hit(DAY_10_NOON_MS + 1),
            Some(SkipReason::DailyLossLimit)
        );
        let next_day_ms = DAY_10_NOON_MS + DAY_MS;
        assert_eq!(
            slave.limit_hit(next_day_ms),
            None,
            "a new day with no state yet has lost nothing"
        );
        slave.record_figures(4850.0, 4800.0, next_day_ms);
        assert_eq!(
            slave.day.unwrap().figures.balance,
            4850.0,
            "the day starts from the figures at midnight"
        );
        assert_eq!(slave.limit_hit(next_day_ms), None, "50 lost today");
        slave.record_figures(4850.0, 4740.0, next_day_ms + 1);
        assert_eq!(
            slave.limit_hit(next_day_ms + 1),
            Some(SkipReason::DailyLossLimit)
        );
    }

    #[test]
    fn daily_loss_basis_equity() {
        // Shows the percent limit taken of the day's starting equity.
        let risk = AccountRisk {
            daily_loss_percent: Some(10.0),
            daily_loss_basis: MoneyBasis::Equity,
            ..AccountRisk::default()
        };
        let mut slave = book(risk);
        slave.record_figures(10_000.0, 8_000.0, DAY_10_NOON_MS);
        slave.record_figures(10_000.0, 7_250.0, DAY_10_NOON_MS + 1);
        assert_eq!(
            slave.limit_hit(DAY_10_NOON_MS + 1),
            None,
            "750 is below 10% of 8000"
        );
        slave.record_figures(10_000.0, 7_200.0, DAY_10_NOON_MS + 2);
        assert_eq!(
            slave.limit_hit(DAY_10_NOON_MS + 2),
            Some(SkipReason::DailyLossLimit)
        );
    }

    #[test]
    fn max_positions_total_and_per_symbol() {
        // Shows the open-copy counters against max_positions and max_positions_per_symbol.
        let risk = AccountRisk {
            max_positions: Some(3),
            max_positions_per_symbol: Some(2),
            ..AccountRisk::default()
        };
        let mut slave = book(risk);
        slave.activate("EURUSD");
        slave.activate("EURUSD");
        assert_eq!(
            slave.check_open_risk("EURUSD", 0),
            Err(SkipReason::MaxPositionsSymbol)
        );
        assert_eq!(slave.check_open_risk("GBPUSD", 0), Ok(()));
        slave.activate("GBPUSD");
        assert_eq!(
            slave.check_open_risk("USDJPY", 0),
            Err(SkipReason::MaxPositions)
        );
        slave.deactivate("EURUSD");
        assert_eq!(slave.check_open_risk("EURUSD", 0), Ok(()));
        assert_eq!(slave.active_total, 2);
        assert_eq!(
            slave.active_per_symbol.values().sum::<u32>(),
            slave.active_total
        );
    }
}
