//! Why a follower did not get a copy: a machine-readable reason with a
//! stable snake_case code for logs, metrics and the dashboard.
//!
//! # Layout
//! - [`SkipReason`] and its `as_str()` codes; `ALL` lists every reason.
//!
//! # Invariants
//! - Codes are unique and never change once released (operators alert on them).

/// Why the engine produced no copy for one follower of a master event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum SkipReason {
    /// The master's symbol is not in `symbols_allow` or is in `symbols_deny`.
    SymbolNotAllowed,
    /// The mapped symbol is not among the slave's known symbols.
    SlaveLacksSymbol,
    /// `risk_percent` sizing needs a stop-loss and the master trade has none.
    NoStopLoss,
    /// The sized volume is below the slave's minimum and `below_min = "skip"`.
    BelowMinLot,
    /// The slave already has `max_positions` copies open.
    MaxPositions,
    /// The slave already has `max_positions_per_symbol` copies on this symbol.
    MaxPositionsSymbol,
    /// The slave's loss since the UTC day's start reached its limit.
    DailyLossLimit,
    /// The slave's equity is below its `equity_floor`.
    EquityFloor,
    /// The follow or the slave account is in close-only mode.
    CloseOnly,
    /// The follow or the slave account is frozen: nothing is sent.
    Frozen,
    /// The open came outside the follow's `hours_utc` / `days_utc`.
    OutsideHours,
    /// The master's magic number is filtered out.
    MagicFiltered,
    /// The master's comment does not contain `comment_contains`.
    CommentFiltered,
    /// The master's direction is filtered out by `direction`.
    DirectionFiltered,
    /// A balance-ratio or risk sizing needs the master's balance, not yet known.
    MasterBalanceUnknown,
    /// An equity-ratio sizing needs the master's equity, not yet known.
    MasterEquityUnknown,
    /// The slave has never sent `state`, and the sizing needs its balance,
    /// equity or contract size.
    SlaveStateUnknown,
    /// The follower has no copy of this position (it was skipped, refused
    /// by the Executor, or already closed), so a close or modify has nothing
    /// to act on.
    NoCopy,
    /// Reconciliation found the slave lacking the copy, but the master
    /// position is older than `reconcile_open_max_age_ms`.
    Expired,
    /// A pending order, and the follow has `copy_pending = false`; the trade
    /// is copied as a market open if it fills on the master.
    PendingNotCopied,
    /// A partial close that rounds to nothing on the slave (below its step or
    /// minimum); the remainder is carried to the next close.
    CloseCarried,
    /// A modify that changes nothing on this follower's copy (for instance
    /// only the take-profit moved and `copy_tp = false`).
    Unchanged,
    /// The master event lacks what its kind needs (side, symbol, volume).
    InvalidEvent,
    /// The master already has `positions_per_master_max` open positions tracked.
    LedgerFull,
    /// The slave symbol cannot be traded as sized: the master's symbol maps
    /// to an empty name, or the contract sizes give no finite ratio.
    InvalidSymbol,
    /// The lot rule sized the copy at 0 or less (a slave balance or equity of
    /// 0 or below, for instance); never raised to the minimum, whatever
    /// `below_min` says.
    ZeroVolume,
}

impl SkipReason {
    /// This reason's position in [`SkipReason::ALL`]: its code in journal
    /// records, stable because reasons are only ever added at the end.
    pub fn index(self) -> u8 {
        SkipReason::ALL.iter().position(|reason| *reason == self).expect("every reason is in ALL") as u8
    }

    /// The reason at `index` in [`SkipReason::ALL`].
    pub fn from_index(index: u8) -> Option<SkipReason> {
        SkipReason::ALL.get(usize::from(index)).copied()
    }

    /// Every reason, in declaration order. A new reason goes at the end:
    /// the index of each is written into journals ([`SkipReason::index`]).
    pub const ALL: [SkipReason; 26] = [
        SkipReason::SymbolNotAllowed,
        SkipReason::SlaveLacksSymbol,
        SkipReason::NoStopLoss,
        SkipReason::BelowMinLot,
        SkipReason::MaxPositions,
        SkipReason::MaxPositionsSymbol,
        SkipReason::DailyLossLimit,
        SkipReason::EquityFloor,
        SkipReason::CloseOnly,
        SkipReason::Frozen,
        SkipReason::OutsideHours,
        SkipReason::MagicFiltered,
        SkipReason::CommentFiltered,
        SkipReason::DirectionFiltered,
        SkipReason::MasterBalanceUnknown,
        SkipReason::MasterEquityUnknown,
        SkipReason::SlaveStateUnknown,
        SkipReason::NoCopy,
        SkipReason::Expired,
        SkipReason::PendingNotCopied,
        SkipReason::CloseCarried,
        SkipReason::Unchanged,
        SkipReason::InvalidEvent,
        SkipReason::LedgerFull,
        SkipReason::InvalidSymbol,
        SkipReason::ZeroVolume,
    ];

    /// The stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::SymbolNotAllowed => "symbol_not_allowed",
            SkipReason::SlaveLacksSymbol => "slave_lacks_symbol",
            SkipReason::NoStopLoss => "no_stop_loss",
            SkipReason::BelowMinLot => "below_min_lot",
            SkipReason::MaxPositions => "max_positions",
            SkipReason::MaxPositionsSymbol => "max_positions_symbol",
            SkipReason::DailyLossLimit => "daily_loss_limit",
            SkipReason::EquityFloor => "equity_floor",
            SkipReason::CloseOnly => "close_only",
            SkipReason::Frozen => "frozen",
            SkipReason::OutsideHours => "outside_hours",
            SkipReason::MagicFiltered => "magic_filtered",
            SkipReason::CommentFiltered => "comment_filtered",
            SkipReason::DirectionFiltered => "direction_filtered",
            SkipReason::MasterBalanceUnknown => "master_balance_unknown",
            SkipReason::MasterEquityUnknown => "master_equity_unknown",
            SkipReason::SlaveStateUnknown => "slave_state_unknown",
            SkipReason::NoCopy => "no_copy",
            SkipReason::Expired => "expired",
            SkipReason::PendingNotCopied => "pending_not_copied",
            SkipReason::CloseCarried => "close_carried",
            SkipReason::Unchanged => "unchanged",
            SkipReason::InvalidEvent => "invalid_event",
            SkipReason::LedgerFull => "ledger_full",
            SkipReason::InvalidSymbol => "invalid_symbol",
            SkipReason::ZeroVolume => "zero_volume",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        // Shows that every code is distinct and written in lower snake_case.
        let mut codes: Vec<&str> = SkipReason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        assert!(codes.iter().all(|code| code
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), SkipReason::ALL.len());
        assert_eq!(SkipReason::BelowMinLot.to_string(), "below_min_lot");
    }
}
