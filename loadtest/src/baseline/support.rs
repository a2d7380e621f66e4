//! What of the configuration the baseline implements, and the refusal of
//! everything else: a setting that changes what is copied and that the
//! baseline would silently ignore makes a comparison with tradebridge
//! meaningless, so it is refused at start-up, naming the table and the key.
//!
//! # Layout
//! - [`check`]: the whole file; the first unsupported setting is the error.
//! - `account_setting` and `follow_setting`: the first non-default key of one table.
//!
//! # Invariants
//! - A configuration [`check`] accepts has only `multiplier` and `fixed` lot
//!   rules, so `Hub::new` never meets another.

use tradebridge_core::config::{
    defaults, AccountConfig, AccountRisk, BelowMin, Config, CopyMode, Direction, FollowConfig, LotRule, SymbolRules,
    TradingHours,
};

/// `Ok` when the baseline implements every setting of `config`; otherwise
/// a message naming the table, the key, its value and what was expected.
pub fn check(config: &Config) -> Result<(), String> {
    for (index, account) in config.accounts.iter().enumerate() {
        if let Some((key, value)) = account_setting(account) {
            return Err(format!(
                "key `account[{index}].{key}` (account {}) = {value}: loadtest-baseline does not implement it; expected the key left out",
                account.login
            ));
        }
    }
    for (index, follow) in config.follows.iter().enumerate() {
        if let Some((key, value, expected)) = follow_setting(follow) {
            return Err(format!(
                "key `follow[{index}].{key}` (slave {}, master {}) = {value}: loadtest-baseline does not implement it; expected {expected}",
                follow.slave, follow.master
            ));
        }
    }
    Ok(())
}

/// The first account key that is not at its default, with its value.
fn account_setting(account: &AccountConfig) -> Option<(&'static str, String)> {
    let risk = &account.risk;
    let default = AccountRisk::default();
    let settings: [(&str, bool, String); 9] = [
        ("contracts", !account.contracts.is_empty(), format!("{:?}", account.contracts)),
        ("mode", risk.mode != default.mode, format!("{:?}", risk.mode)),
        ("max_positions", risk.max_positions.is_some(), format!("{:?}", risk.max_positions)),
        ("max_positions_per_symbol", risk.max_positions_per_symbol.is_some(), format!("{:?}", risk.max_positions_per_symbol)),
        ("daily_loss_money", risk.daily_loss_money.is_some(), format!("{:?}", risk.daily_loss_money)),
        ("daily_loss_percent", risk.daily_loss_percent.is_some(), format!("{:?}", risk.daily_loss_percent)),
        ("daily_loss_basis", risk.daily_loss_basis != default.daily_loss_basis, format!("{:?}", risk.daily_loss_basis)),
        ("equity_floor", risk.equity_floor.is_some(), format!("{:?}", risk.equity_floor)),
        ("on_limit", risk.on_limit != default.on_limit, format!("{:?}", risk.on_limit)),
    ];
    settings.into_iter().find(|(_, set, _)| *set).map(|(key, _, value)| (key, value))
}

/// The first follow key that is not at its default (or, for `lot.mode`, not
/// a supported rule), with its value and what was expected.
fn follow_setting(follow: &FollowConfig) -> Option<(&'static str, String, &'static str)> {
    let symbols = &follow.symbols;
    let no_symbols = SymbolRules::default();
    let lot_supported = matches!(follow.lot, LotRule::Multiplier { .. } | LotRule::Fixed { .. });
    let left_out = "the key left out";
    let settings: [(&str, bool, String, &str); 20] = [
        ("lot.mode", !lot_supported, format!("{:?}", follow.lot), "\"multiplier\" or \"fixed\""),
        ("below_min", follow.below_min != BelowMin::Skip, format!("{:?}", follow.below_min), "\"skip\""),
        ("max_lot", follow.max_lot.is_some(), format!("{:?}", follow.max_lot), left_out),
        ("copy_sl", !follow.copy_sl, "false".into(), "true"),
        ("copy_tp", !follow.copy_tp, "false".into(), "true"),
        ("copy_pending", !follow.copy_pending, "false".into(), "true"),
        ("symbol_map", symbols.map != no_symbols.map, format!("{:?}", symbols.map), left_out),
        ("strip_prefix", !symbols.strip_prefix.is_empty(), format!("{:?}", symbols.strip_prefix), left_out),
        ("strip_suffix", !symbols.strip_suffix.is_empty(), format!("{:?}", symbols.strip_suffix), left_out),
        ("symbol_prefix", !symbols.prefix.is_empty(), format!("{:?}", symbols.prefix), left_out),
        ("symbol_suffix", !symbols.suffix.is_empty(), format!("{:?}", symbols.suffix), left_out),
        ("symbols_allow", !symbols.allow.is_empty(), format!("{:?}", symbols.allow), left_out),
        ("symbols_deny", !symbols.deny.is_empty(), format!("{:?}", symbols.deny), left_out),
        ("magic_allow", !follow.magic_allow.is_empty(), format!("{:?}", follow.magic_allow), left_out),
        ("magic_deny", !follow.magic_deny.is_empty(), format!("{:?}", follow.magic_deny), left_out),
        ("comment_contains", follow.comment_contains.is_some(), format!("{:?}", follow.comment_contains), left_out),
        ("direction", follow.direction != Direction::Both, format!("{:?}", follow.direction), "\"both\""),
        ("reverse", follow.reverse, "true".into(), "false"),
        ("mode", follow.mode != CopyMode::Normal, format!("{:?}", follow.mode), "\"normal\""),
        ("hours_utc", follow.hours != TradingHours::ALWAYS, format!("{:?}", follow.hours), "the keys hours_utc and days_utc left out"),
    ];
    let timing: [(&str, bool, String, &str); 2] = [
        // The baseline always sends max_dev = 0 (no price guard).
        ("max_dev_points", follow.max_dev_points != defaults::MAX_DEV_POINTS, follow.max_dev_points.to_string(), "the key left out (30)"),
        // The baseline never reconciles, so it never opens from a snapshot.
        (
            "reconcile_open_max_age_ms",
            follow.reconcile_open_max_age_ms != defaults::RECONCILE_OPEN_MAX_AGE_MS,
            follow.reconcile_open_max_age_ms.to_string(),
            "the key left out (60000)",
        ),
    ];
    settings.into_iter().chain(timing).find(|(_, set, _, _)| *set).map(|(key, _, value, expected)| (key, value, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\n\
        [[account]]\nlogin = 1\nserver = \"S\"\nrole = \"master\"\nkey_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n\
        [[account]]\nlogin = 2\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"0000000000000000000000000000000000000000000000000000000000000001\"\n\
        [[follow]]\nslave = 2\nmaster = 1\n";

    fn checked(follow_keys: &str) -> Result<(), String> {
        let config = Config::from_toml_str(&format!("{HEADER}{follow_keys}")).expect("test config loads");
        check(&config)
    }

    // Multiplier and fixed lots with a custom ttl are accepted; defaults written out are accepted too.
    #[test]
    fn supported_settings_pass() {
        assert_eq!(checked("lot = { mode = \"multiplier\", value = 2.0 }\nttl_ms = 3000\n"), Ok(()));
        assert_eq!(checked("lot = { mode = \"fixed\", value = 0.1 }\ncopy_tp = true\nmax_dev_points = 30\n"), Ok(()));
    }

    // Each unsupported follow key is refused, naming the follow and the key.
    #[test]
    fn unsupported_settings_are_named() {
        let cases = [
            ("lot = { mode = \"balance_ratio\", value = 1.0 }", "follow[0].lot.mode"),
            ("symbol_suffix = \".m\"", "follow[0].symbol_suffix"),
            ("symbol_map = { XAUUSD = \"GOLD\" }", "follow[0].symbol_map"),
            ("reverse = true", "follow[0].reverse"),
            ("magic_allow = [7]", "follow[0].magic_allow"),
            ("hours_utc = \"08:00-20:00\"", "follow[0].hours_utc"),
            ("max_lot = 2.0", "follow[0].max_lot"),
            ("max_dev_points = 0", "follow[0].max_dev_points"),
        ];
        for (keys, named) in cases {
            let error = checked(&format!("{keys}\n")).expect_err(keys);
            assert!(error.contains(named) && error.contains("slave 2, master 1"), "{keys}: {error}");
        }
    }
}
