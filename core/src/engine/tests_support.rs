//! Builders shared by the engine's unit tests.

use crate::config::{
    BelowMin, CopyMode, Direction, FollowConfig, LotRule, TradingHours,
};

/// A follow with every rule at its default.
pub(crate) fn follow(slave: u64, master: u64) -> FollowConfig {
    FollowConfig {
        slave,
        master,
        lot: LotRule::Multiplier { factor: 1.0 },
        below_min: BelowMin::Skip,
        max_lot: None,
        copy_sl: true,
        copy_tp: true,
        copy_pending: true,
        symbols: Default::default(),
        magic_allow: Default::default(),
        magic_deny: Default::default(),
        comment_contains: None,
        direction: Direction::Both,
        reverse: false,
        mode: CopyMode::Normal,
        hours: TradingHours::ALWAYS,
        ttl_ms: crate::config::defaults::TTL_MS,
        max_dev_points: crate::config::defaults::MAX_DEV_POINTS,
        reconcile_open_max_age_ms: crate::config::defaults::RECONCILE_OPEN_MAX_AGE_MS,
        on_remove: crate::config::OnRemove::Leave,
    }
}
