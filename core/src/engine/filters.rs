//! The follow's trade filters (magic, comment, direction, symbol lists,
//! pending orders, trading hours), its mode, and reverse copying.
//!
//! # Layout
//! - [`TradeFacts`]: what the filters look at in a master trade.
//! - [`effective_mode`]: the stricter of the follow's and the account's mode.
//! - [`check_open`]: the filters an open or pending order must pass, in a
//!   fixed order so the reported reason is predictable.
//! - [`slave_side`], [`slave_stops`]: reverse copying and `copy_sl`/`copy_tp`.
//!
//! # Invariants
//! - Filters look at the master's trade (symbol, magic, comment, direction)
//!   before any mapping or reversal.
//! - Only opens and pending orders are filtered; closes, modifies and
//!   cancels of a copied trade always flow (except in frozen mode).

use crate::config::{AccountRisk, CopyMode, Direction, FollowConfig};
use crate::protocol::Side;

use super::skip::SkipReason;
use super::symbols::symbol_allowed;

/// The parts of a master trade that filters look at.
#[derive(Clone, Copy, Debug)]
pub struct TradeFacts<'a> {
    /// Master symbol, before mapping.
    pub symbol: &'a str,
    /// Master side, before reversal.
    pub side: Side,
    /// Master magic number.
    pub magic: u64,
    /// Master comment.
    pub comment: &'a str,
}

/// The stricter of the follow's mode and the slave account's mode.
pub fn effective_mode(follow: &FollowConfig, account: &AccountRisk) -> CopyMode {
    follow.mode.max(account.mode)
}

/// Checks an open or pending order against the follow's filters, in this
/// order: mode, `copy_pending`, symbol lists, magic, comment, direction,
/// trading hours. The first failing rule gives the reason.
pub fn check_open(
    follow: &FollowConfig,
    mode: CopyMode,
    facts: &TradeFacts<'_>,
    now_ms: u64,
) -> Result<(), SkipReason> {
    match mode {
        CopyMode::Frozen => return Err(SkipReason::Frozen),
        CopyMode::CloseOnly => return Err(SkipReason::CloseOnly),
        CopyMode::Normal => {}
    }
    if facts.side.is_pending() && !follow.copy_pending {
        return Err(SkipReason::PendingNotCopied);
    }
    if !symbol_allowed(&follow.symbols, facts.symbol) {
        return Err(SkipReason::SymbolNotAllowed);
    }
    if follow.magic_deny.contains(&facts.magic)
        || (!follow.magic_allow.is_empty() && !follow.magic_allow.contains(&facts.magic))
    {
        return Err(SkipReason::MagicFiltered);
    }
    if let Some(needle) = &follow.comment_contains {
        if !facts.comment.contains(needle.as_str()) {
            return Err(SkipReason::CommentFiltered);
        }
    }
    let direction_ok = match follow.direction {
        Direction::Both => true,
        Direction::BuyOnly => facts.side.is_long(),
        Direction::SellOnly => !facts.side.is_long(),
    };
    if !direction_ok {
        return Err(SkipReason::DirectionFiltered);
    }
    if !follow.hours.allows(now_ms) {
        return Err(SkipReason::OutsideHours);
    }
    assert!(
        mode == CopyMode::Normal,
        "only the normal mode lets an open through"
    );
    assert!(!facts.side.is_pending() || follow.copy_pending);
    Ok(())
}

/// The slave's side: the master's, or its opposite when reversing.
pub fn slave_side(follow: &FollowConfig, master_side: Side) -> Side {
    if follow.reverse {
        master_side.reversed()
    } else {
        master_side
    }
}

/// The slave's stop-loss and take-profit: swapped when reversing (the
/// master's stop-loss level is where the reversed trade takes profit), then
/// each dropped to 0 ("none") when its `copy_sl` / `copy_tp` is off.
pub fn slave_stops(follow: &FollowConfig, master_sl: f64, master_tp: f64) -> (f64, f64) {
    let (sl, tp) = if follow.reverse {
        (master_tp, master_sl)
    } else {
        (master_sl, master_tp)
    };
    let sl = if follow.copy_sl { sl } else { 0.0 };
    let tp = if follow.copy_tp { tp } else { 0.0 };
    (sl, tp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TradingHours, DAY_MS};
    use crate::engine::tests_support::follow;

    fn facts(side: Side) -> TradeFacts<'static> {
        TradeFacts {
            symbol: "EURUSD",
            side,
            magic: 7,
            comment: "grid #3",
        }
    }

    #[test]
    fn mode_comes_first() {
        // Shows that frozen and close_only refuse opens before any other filter, and the stricter mode wins.
        let mut rule = follow(2, 1);
        rule.magic_allow.insert(99);
        assert_eq!(
            check_open(&rule, CopyMode::Frozen, &facts(Side::Buy), 0),
            Err(SkipReason::Frozen)
        );
        assert_eq!(
            check_open(&rule, CopyMode::CloseOnly, &facts(Side::Buy), 0),
            Err(SkipReason::CloseOnly)
        );
        let account = AccountRisk {
            mode: CopyMode::Frozen,
            ..AccountRisk::default()
        };
        rule.mode = CopyMode::CloseOnly;
        assert_eq!(effective_mode(&rule, &account), CopyMode::Frozen);
    }

    #[test]
    fn magic_allow_and_deny() {
        // Shows magic allow and deny lists, deny winning.
        let mut rule = follow(2, 1);
        rule.magic_allow.insert(7);
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), 0),
            Ok(())
        );
        rule.magic_deny.insert(7);
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), 0),
            Err(SkipReason::MagicFiltered)
        );
        let mut only_eight = follow(2, 1);
        only_eight.magic_allow.insert(8);
        assert_eq!(
            check_open(&only_eight, CopyMode::Normal, &facts(Side::Buy), 0),
            Err(SkipReason::MagicFiltered)
        );
    }

    #[test]
    fn comment_contains() {
        // Shows that comment_contains needs the text somewhere in the master's comment.
        let mut rule = follow(2, 1);
        rule.comment_contains = Some("grid".into());
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), 0),
            Ok(())
        );
        rule.comment_contains = Some("scalp".into());
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), 0),
            Err(SkipReason::CommentFiltered)
        );
    }

    #[test]
    fn direction_filter_uses_the_master_side() {
        // Shows buy_only and sell_only against market and pending sides.
        let mut rule = follow(2, 1);
        rule.direction = Direction::BuyOnly;
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::BuyLimit), 0),
            Ok(())
        );
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Sell), 0),
            Err(SkipReason::DirectionFiltered)
        );
        rule.direction = Direction::SellOnly;
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::SellStop), 0),
            Ok(())
        );
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), 0),
            Err(SkipReason::DirectionFiltered)
        );
    }

    #[test]
    fn pending_orders_can_be_left_out() {
        // Shows that copy_pending = false refuses pending orders but not market opens.
        let mut rule = follow(2, 1);
        rule.copy_pending = false;
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::BuyStop), 0),
            Err(SkipReason::PendingNotCopied)
        );
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), 0),
            Ok(())
        );
    }

    #[test]
    fn hours_filter_opens() {
        // Shows that an open outside hours_utc is refused with outside_hours.
        let mut rule = follow(2, 1);
        rule.hours = TradingHours {
            start_minute: 8 * 60,
            end_minute: 20 * 60,
            weekdays: crate::config::WEEKDAYS_ALL,
        };
        let noon = 10 * DAY_MS + 12 * 3_600_000;
        let night = 10 * DAY_MS + 22 * 3_600_000;
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), noon),
            Ok(())
        );
        assert_eq!(
            check_open(&rule, CopyMode::Normal, &facts(Side::Buy), night),
            Err(SkipReason::OutsideHours)
        );
    }

    #[test]
    fn reverse_swaps_side_and_stops() {
        // Shows reverse copying: opposite side, stop-loss and take-profit swapped; copy_sl/copy_tp apply after.
        let mut rule = follow(2, 1);
        assert_eq!(slave_stops(&rule, 1.07, 1.09), (1.07, 1.09));
        rule.reverse = true;
        assert_eq!(slave_side(&rule, Side::Buy), Side::Sell);
        assert_eq!(slave_side(&rule, Side::BuyLimit), Side::SellStop);
        assert_eq!(slave_stops(&rule, 1.07, 1.09), (1.09, 1.07));
        rule.copy_tp = false;
        assert_eq!(slave_stops(&rule, 1.07, 1.09), (1.09, 0.0));
        rule.copy_sl = false;
        assert_eq!(slave_stops(&rule, 1.07, 1.09), (0.0, 0.0));
    }
}
