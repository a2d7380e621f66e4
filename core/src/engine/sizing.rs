//! Sizing an open for one follower: the lot rule, contract-size
//! normalisation between brokers, then rounding to the slave's symbol.
//!
//! # Layout
//! - [`SizingInput`]: everything the rule looks at.
//! - [`sized_units`]: the rule's lots, normalised, rounded and clamped.
//!
//! # Invariants
//! - Ratio and risk modes never guess: unknown figures skip with a reason.
//! - A rule that gives 0 lots or less (or not a number) skips with
//!   `zero_volume`; only a positive size goes on to `below_min`.
//! - Fixed lots are never normalised by contract size (the trader chose
//!   the slave's lots directly); every other mode is.

use crate::config::{FollowConfig, LotRule, MoneyBasis};

use super::lots::{lots_to_units, open_units};
use super::risk::AccountFigures;
use super::skip::SkipReason;
use super::symbols::SlaveSymbol;

/// What sizing one follower's copy looks at.
#[derive(Clone, Copy, Debug)]
pub struct SizingInput<'a> {
    /// The follower's rules (lot rule, `below_min`, `max_lot`, `reverse`).
    pub follow: &'a FollowConfig,
    /// The slave's last figures; `None` while its state is unknown.
    pub slave_figures: Option<AccountFigures>,
    /// The master's figures from its last snapshot; `None` until then.
    pub master_figures: Option<AccountFigures>,
    /// Contract size of the master's symbol from config, if listed.
    pub master_contract: Option<f64>,
    /// The slave's symbol spec (the default while unknown).
    pub symbol: SlaveSymbol,
    /// Master volume to size from, in lots.
    pub master_lots: f64,
    /// Master open (or trigger) price, stop-loss and take-profit.
    pub price: f64,
    /// Master stop-loss; 0 for none.
    pub sl: f64,
    /// Master take-profit; 0 for none.
    pub tp: f64,
}

/// The slave volume in units, or why there is none.
pub fn sized_units(input: &SizingInput<'_>) -> Result<u64, SkipReason> {
    assert!(
        input.master_lots.is_finite() && input.master_lots > 0.0,
        "events with no volume are refused earlier"
    );
    let lots = rule_lots(input)?;
    if lots.is_nan() || lots <= 0.0 {
        // Nothing to size from (an account with no money, or figures that
        // gave not-a-number): `below_min = "min"` is for a small positive
        // size, not for opening the minimum on an empty account.
        return Err(SkipReason::ZeroVolume);
    }
    let cap_units = input.follow.max_lot.and_then(lots_to_units);
    let units = open_units(&input.symbol.lots, lots, input.follow.below_min, cap_units)?;
    assert!(units >= input.symbol.lots.min_units && units <= input.symbol.lots.max_units);
    Ok(units)
}

/// Master contract / slave contract; 1 when the slave's is unknown, and the
/// master's defaults to the slave's when the config does not list it. Both
/// sizes are bounded where they are accepted, so the ratio is finite; a
/// ratio that is not (from sizes that slipped past those bounds) skips the
/// copy rather than sizing it from infinity.
fn contract_ratio(input: &SizingInput<'_>) -> Result<f64, SkipReason> {
    let ratio = match (input.master_contract, input.symbol.contract) {
        (Some(master), Some(slave)) => master / slave,
        _ => 1.0,
    };
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(SkipReason::InvalidSymbol);
    }
    Ok(ratio)
}

fn rule_lots(input: &SizingInput<'_>) -> Result<f64, SkipReason> {
    let slave = || input.slave_figures.ok_or(SkipReason::SlaveStateUnknown);
    let lots = match input.follow.lot {
        LotRule::Fixed { lots } => return Ok(lots),
        LotRule::Multiplier { factor } => input.master_lots * factor,
        LotRule::BalanceRatio { factor } => {
            let slave_balance = slave()?.balance;
            let master_balance = input
                .master_figures
                .map(|figures| figures.balance)
                .filter(|balance| *balance > 0.0)
                .ok_or(SkipReason::MasterBalanceUnknown)?;
            input.master_lots * slave_balance.max(0.0) / master_balance * factor
        }
        LotRule::EquityRatio { factor } => {
            let slave_equity = slave()?.equity;
            let master_equity = input
                .master_figures
                .map(|figures| figures.equity)
                .filter(|equity| *equity > 0.0)
                .ok_or(SkipReason::MasterEquityUnknown)?;
            input.master_lots * slave_equity.max(0.0) / master_equity * factor
        }
        LotRule::RiskPercent {
            percent,
            basis,
            quote_to_account,
        } => {
            return risk_lots(input, slave()?, percent, basis, quote_to_account);
        }
    };
    let ratio = contract_ratio(input)?;
    assert!(ratio.is_finite() && ratio > 0.0);
    Ok(lots * ratio)
}

/// `risk money / (stop distance x contract x quote_to_account)`. The stop is
/// the one the slave's trade carries: the master's stop-loss, or its
/// take-profit when reversing. The money is in the slave's account currency
/// and the distance times contract in the symbol's quote currency;
/// `quote_to_account` converts (1.0 when they are the same), since the
/// protocol carries no tick value.
fn risk_lots(
    input: &SizingInput<'_>,
    slave: AccountFigures,
    percent: f64,
    basis: MoneyBasis,
    quote_to_account: f64,
) -> Result<f64, SkipReason> {
    assert!(
        percent > 0.0 && quote_to_account > 0.0,
        "validated by config"
    );
    let stop = if input.follow.reverse {
        input.tp
    } else {
        input.sl
    };
    let distance = (input.price - stop).abs();
    if stop <= 0.0 || input.price <= 0.0 || !distance.is_finite() || distance == 0.0 {
        return Err(SkipReason::NoStopLoss);
    }
    let contract = input
        .symbol
        .contract
        .or(input.master_contract)
        .ok_or(SkipReason::SlaveStateUnknown)?;
    let money = match basis {
        MoneyBasis::Balance => slave.balance,
        MoneyBasis::Equity => slave.equity,
    }
    .max(0.0)
        * percent
        / 100.0;
    Ok(money / (distance * contract * quote_to_account))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BelowMin;
    use crate::engine::lots::LotSpec;
    use crate::engine::tests_support::follow;

    fn gold() -> SlaveSymbol {
        SlaveSymbol {
            lots: LotSpec::DEFAULT,
            digits: 2,
            contract: Some(100.0),
        }
    }

    fn input(rule: &FollowConfig) -> SizingInput<'_> {
        SizingInput {
            follow: rule,
            slave_figures: Some(AccountFigures {
                balance: 5_000.0,
                equity: 4_000.0,
            }),
            master_figures: Some(AccountFigures {
                balance: 10_000.0,
                equity: 20_000.0,
            }),
            master_contract: None,
            symbol: gold(),
            master_lots: 1.0,
            price: 2_000.0,
            sl: 1_990.0,
            tp: 2_030.0,
        }
    }

    #[test]
    fn fixed_ignores_master_volume_and_contracts() {
        // Shows fixed lots: the value itself, whatever the master traded or the contracts.
        let mut rule = follow(2, 1);
        rule.lot = LotRule::Fixed { lots: 0.3 };
        let mut sizing = input(&rule);
        sizing.master_contract = Some(50.0);
        assert_eq!(sized_units(&sizing), Ok(30_000_000));
    }

    #[test]
    fn multiplier_scales_and_normalises_contracts() {
        // Shows the multiplier and the master/slave contract normalisation.
        let mut rule = follow(2, 1);
        rule.lot = LotRule::Multiplier { factor: 2.0 };
        let mut sizing = input(&rule);
        assert_eq!(
            sized_units(&sizing),
            Ok(200_000_000),
            "same contract when the config lists none"
        );
        sizing.master_contract = Some(10.0);
        assert_eq!(
            sized_units(&sizing),
            Ok(20_000_000),
            "master 10 oz per lot vs slave 100 oz"
        );
    }

    #[test]
    fn balance_and_equity_ratios() {
        // Shows balance_ratio and equity_ratio, and the skips when a balance or equity is unknown.
        let mut rule = follow(2, 1);
        rule.lot = LotRule::BalanceRatio { factor: 1.0 };
        assert_eq!(sized_units(&input(&rule)), Ok(50_000_000), "5000 / 10000");
        rule.lot = LotRule::EquityRatio { factor: 2.0 };
        assert_eq!(
            sized_units(&input(&rule)),
            Ok(40_000_000),
            "4000 / 20000 x 2"
        );
        let mut sizing = input(&rule);
        sizing.master_figures = None;
        assert_eq!(sized_units(&sizing), Err(SkipReason::MasterEquityUnknown));
        rule.lot = LotRule::BalanceRatio { factor: 1.0 };
        let mut sizing = input(&rule);
        sizing.master_figures = None;
        assert_eq!(sized_units(&sizing), Err(SkipReason::MasterBalanceUnknown));
        sizing.slave_figures = None;
        assert_eq!(sized_units(&sizing), Err(SkipReason::SlaveStateUnknown));
    }

    #[test]
    fn contract_ratio_that_is_not_finite_skips() {
        // Shows that sizes which slipped past the bounds (a slave contract of 1e-307) skip with invalid_symbol.
        let rule = follow(2, 1);
        let mut sizing = input(&rule);
        sizing.master_contract = Some(100.0);
        sizing.symbol.contract = Some(1e-307);
        assert_eq!(sized_units(&sizing), Err(SkipReason::InvalidSymbol));
    }

    #[test]
    fn risk_percent_from_the_stop_distance() {
        // Shows risk_percent: 1% of 5000 = 50 at a 10.0 stop on 100 oz = 0.05 lots; equity basis and quote factor.
        let mut rule = follow(2, 1);
        rule.lot = LotRule::RiskPercent {
            percent: 1.0,
            basis: MoneyBasis::Balance,
            quote_to_account: 1.0,
        };
        assert_eq!(sized_units(&input(&rule)), Ok(5_000_000));
        rule.lot = LotRule::RiskPercent {
            percent: 1.0,
            basis: MoneyBasis::Equity,
            quote_to_account: 0.5,
        };
        assert_eq!(
            sized_units(&input(&rule)),
            Ok(8_000_000),
            "40 / (10 x 100 x 0.5)"
        );
    }

    #[test]
    fn risk_percent_needs_a_stop() {
        // Shows that risk_percent skips with no_stop_loss when the master has none, and uses tp when reversing.
        let mut rule = follow(2, 1);
        rule.lot = LotRule::RiskPercent {
            percent: 1.0,
            basis: MoneyBasis::Balance,
            quote_to_account: 1.0,
        };
        let mut sizing = input(&rule);
        sizing.sl = 0.0;
        assert_eq!(sized_units(&sizing), Err(SkipReason::NoStopLoss));
        rule.reverse = true;
        let mut reversed = input(&rule);
        reversed.sl = 0.0;
        assert_eq!(
            sized_units(&reversed),
            Ok(1_000_000),
            "50 / (30 x 100) = 0.0166 -> 0.01"
        );
    }

    #[test]
    fn sizing_to_zero_or_less_is_skipped_even_with_below_min_min() {
        // Shows that a slave balance or equity at or below 0 skips with zero_volume rather than opening the minimum.
        let mut rule = follow(2, 1);
        rule.below_min = BelowMin::Min;
        rule.lot = LotRule::BalanceRatio { factor: 1.0 };
        for balance in [0.0, -50.0] {
            let mut sizing = input(&rule);
            sizing.slave_figures = Some(AccountFigures {
                balance,
                equity: balance,
            });
            assert_eq!(
                sized_units(&sizing),
                Err(SkipReason::ZeroVolume),
                "{balance}"
            );
        }
        rule.lot = LotRule::RiskPercent {
            percent: 1.0,
            basis: MoneyBasis::Equity,
            quote_to_account: 1.0,
        };
        let mut sizing = input(&rule);
        sizing.slave_figures = Some(AccountFigures {
            balance: 100.0,
            equity: -1.0,
        });
        assert_eq!(sized_units(&sizing), Err(SkipReason::ZeroVolume));
        rule.lot = LotRule::BalanceRatio { factor: 1.0 };
        let mut tiny = input(&rule);
        tiny.slave_figures = Some(AccountFigures {
            balance: 1.0,
            equity: 1.0,
        });
        assert_eq!(
            sized_units(&tiny),
            Ok(1_000_000),
            "a small positive size still opens the minimum"
        );
    }

    #[test]
    fn below_min_and_max_lot_apply_after_the_rule() {
        // Shows that the rule's lots go through below_min and max_lot.
        let mut rule = follow(2, 1);
        rule.lot = LotRule::Multiplier { factor: 0.001 };
        assert_eq!(sized_units(&input(&rule)), Err(SkipReason::BelowMinLot));
        rule.below_min = BelowMin::Min;
        assert_eq!(sized_units(&input(&rule)), Ok(1_000_000));
        rule.lot = LotRule::Multiplier { factor: 10.0 };
        rule.max_lot = Some(2.5);
        assert_eq!(sized_units(&input(&rule)), Ok(250_000_000));
    }
}
