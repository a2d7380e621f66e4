//! Raw to validated for `[[follow]]`: the cross-reference to its accounts,
//! the lot rule, symbol rules, filters, trading hours and timing.
//!
//! # Layout
//! - `follow`: the entry point, one table.
//! - `check_account`, `lot`, `symbol_rules`, `magic_list`, `hours`: one
//!   function per group of keys.
//!
//! # Invariants
//! - A returned follow's slave and master differ, and each is an account of
//!   the right role or, with a warning, no configured account.
//! - Every list is bounded by `LIST_ENTRIES_MAX` and every symbol name by
//!   `SYMBOL_BYTES_MAX`.
//! - Follows of one file with equal symbol rules share one `Arc` of them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use toml::Spanned;

use super::error::{ConfigError, ConfigWarning};
use super::hours::{parse_weekday, parse_window, TradingHours, WEEKDAYS_ALL};
use super::raw::{RawFollow, RawLot, RawLotMode};
use super::validate::{
    entries_max, number, positive, symbol_name, text, Range, Table, SYMBOL_BYTES_MAX,
};
use super::{defaults, FollowConfig, LotRule, MoneyBasis, SymbolRules};
use crate::protocol::Role;

/// Largest lot figure accepted (fixed lots, multipliers, `max_lot`).
const LOTS_MAX: f64 = 100_000.0;

/// Longest `comment_contains`; MetaTrader comments are at most 31 characters.
const COMMENT_BYTES_MAX: usize = 256;

/// A signal older than an hour is never a "live" copy.
const TTL_MS: Range<u64> = Range {
    key: "ttl_ms",
    default: defaults::TTL_MS,
    min: 100,
    max: 3_600_000,
};
/// Up to a million points: effectively "no limit" stays expressible as 0.
const MAX_DEV_POINTS: Range<u32> = Range {
    key: "max_dev_points",
    default: defaults::MAX_DEV_POINTS,
    min: 0,
    max: 1_000_000,
};
/// At most a day: reconciliation never opens older signals.
const RECONCILE_OPEN_MAX_AGE_MS: Range<u64> = Range {
    key: "reconcile_open_max_age_ms",
    default: defaults::RECONCILE_OPEN_MAX_AGE_MS,
    min: 0,
    max: 86_400_000,
};

/// Symbol rules already built for earlier follows of the file, so follows
/// with equal rules share one copy. Holds at most one entry per follow.
pub(crate) type SharedSymbolRules = HashSet<Arc<SymbolRules>>;

/// The shared copy of `rules`: an earlier follow's when equal, else a new one.
fn share_symbol_rules(shared: &mut SharedSymbolRules, rules: SymbolRules) -> Arc<SymbolRules> {
    if let Some(existing) = shared.get(&rules) {
        return Arc::clone(existing);
    }
    let rules = Arc::new(rules);
    shared.insert(Arc::clone(&rules));
    rules
}

pub(crate) fn follow(
    table: Table<'_>,
    raw: &RawFollow,
    roles: &BTreeMap<u64, Role>,
    shared_rules: &mut SharedSymbolRules,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<FollowConfig, ConfigError> {
    let slave = check_account(table, &raw.slave, "slave", Role::Slave, roles, warnings)?;
    let master = check_account(table, &raw.master, "master", Role::Master, roles, warnings)?;
    if slave == master {
        let message = format!(
            "{slave} is also this follow's master; expected a slave login other than the master's"
        );
        return Err(table.error(raw.slave.span().start, "slave", message));
    }
    let comment_contains = text(
        table,
        raw.comment_contains.as_ref(),
        "comment_contains",
        COMMENT_BYTES_MAX,
    )?;
    let follow = FollowConfig {
        slave,
        master,
        lot: lot(table, raw.lot.as_ref())?,
        below_min: raw.below_min.unwrap_or_default(),
        max_lot: raw
            .max_lot
            .as_ref()
            .map(|value| positive(table, value, "max_lot", LOTS_MAX))
            .transpose()?,
        copy_sl: raw.copy_sl.as_ref().is_none_or(|value| *value.get_ref()),
        copy_tp: raw.copy_tp.unwrap_or(true),
        copy_pending: raw.copy_pending.unwrap_or(true),
        symbols: share_symbol_rules(shared_rules, symbol_rules(table, raw)?),
        magic_allow: magic_list(table, raw.magic_allow.as_ref(), "magic_allow")?,
        magic_deny: magic_list(table, raw.magic_deny.as_ref(), "magic_deny")?,
        comment_contains: comment_contains.filter(|text| !text.is_empty()),
        direction: raw.direction.unwrap_or_default(),
        reverse: raw.reverse.unwrap_or(false),
        mode: raw.mode.unwrap_or_default(),
        hours: hours(table, raw)?,
        ttl_ms: number(table, &raw.ttl_ms, TTL_MS)?,
        max_dev_points: number(table, &raw.max_dev_points, MAX_DEV_POINTS)?,
        reconcile_open_max_age_ms: number(
            table,
            &raw.reconcile_open_max_age_ms,
            RECONCILE_OPEN_MAX_AGE_MS,
        )?,
        on_remove: raw.on_remove.unwrap_or_default(),
    };
    if matches!(follow.lot, LotRule::RiskPercent { .. }) && !follow.copy_sl {
        let offset = raw.copy_sl.as_ref().map_or(0, |value| value.span().start);
        let message = "false with lot mode \"risk_percent\": the risk is measured at the slave's stop-loss, which copy_sl = false leaves off every trade; expected true, or another lot mode".to_string();
        return Err(table.error(offset, "copy_sl", message));
    }
    assert!(follow.slave != follow.master, "checked above");
    assert!(follow.ttl_ms > 0);
    Ok(follow)
}

/// The login, if it is above 0 and not an account of the other role. A
/// login with no `[[account]]` is accepted with a warning: the follow is
/// inert until the account is added (the brief's minimal form declares only
/// its master while its follow names a slave).
fn check_account(
    table: Table<'_>,
    login: &Spanned<u64>,
    key: &str,
    expected: Role,
    roles: &BTreeMap<u64, Role>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<u64, ConfigError> {
    let wanted = if expected == Role::Master {
        "master"
    } else {
        "slave"
    };
    let value = *login.get_ref();
    let offset = login.span().start;
    match roles.get(&value) {
        Some(role) if *role == expected => Ok(value),
        Some(_) => {
            let message = format!(
                "account {value} is not a {wanted}; expected an [[account]] with role = \"{wanted}\""
            );
            Err(table.error(offset, key, message))
        }
        None if value == 0 => {
            let message = "0 is not a login; expected an account number above 0".to_string();
            Err(table.error(offset, key, message))
        }
        None => {
            let message = format!(
                "{value} is not a configured account; this follow copies nothing until an [[account]] with login = {value} and role = \"{wanted}\" is added"
            );
            warnings.push(ConfigWarning::at(
                table.source,
                offset,
                &table.key(key),
                message,
            ));
            Ok(value)
        }
    }
}

fn lot(table: Table<'_>, raw: Option<&Spanned<RawLot>>) -> Result<LotRule, ConfigError> {
    let Some(raw) = raw else {
        return Ok(LotRule::Multiplier {
            factor: defaults::MULTIPLIER,
        });
    };
    let raw = raw.get_ref();
    let mode = *raw.mode.get_ref();
    if mode != RawLotMode::RiskPercent {
        let basis = raw
            .basis
            .as_ref()
            .map(|value| ("lot.basis", value.span().start));
        let quote = raw
            .quote_to_account
            .as_ref()
            .map(|value| ("lot.quote_to_account", value.span().start));
        if let Some((key, offset)) = basis.or(quote) {
            let message = "is only valid with mode = \"risk_percent\"".to_string();
            return Err(table.error(offset, key, message));
        }
    }
    let value = |max: f64| positive(table, &raw.value, "lot.value", max);
    let rule = match mode {
        RawLotMode::Fixed => LotRule::Fixed {
            lots: value(LOTS_MAX)?,
        },
        RawLotMode::Multiplier => LotRule::Multiplier {
            factor: value(LOTS_MAX)?,
        },
        RawLotMode::BalanceRatio => LotRule::BalanceRatio {
            factor: value(LOTS_MAX)?,
        },
        RawLotMode::EquityRatio => LotRule::EquityRatio {
            factor: value(LOTS_MAX)?,
        },
        RawLotMode::RiskPercent => LotRule::RiskPercent {
            percent: value(100.0)?,
            basis: raw
                .basis
                .as_ref()
                .map_or(MoneyBasis::Balance, |value| *value.get_ref()),
            quote_to_account: match &raw.quote_to_account {
                Some(value) => positive(table, value, "lot.quote_to_account", 1e9)?,
                None => 1.0,
            },
        },
    };
    Ok(rule)
}

fn symbol_list(
    table: Table<'_>,
    value: Option<&Spanned<Vec<String>>>,
    key: &str,
) -> Result<BTreeSet<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(BTreeSet::new());
    };
    entries_max(table, value.span().start, key, value.get_ref().len())?;
    for name in value.get_ref() {
        symbol_name(table, value.span().start, key, name)?;
    }
    Ok(value.get_ref().iter().cloned().collect())
}

/// A prefix or suffix: at most `SYMBOL_BYTES_MAX` bytes and, like the
/// symbol names it is part of, without whitespace; "" (none) when absent.
fn affix(
    table: Table<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
) -> Result<String, ConfigError> {
    let text = text(table, value, key, SYMBOL_BYTES_MAX)?.unwrap_or_default();
    if let (Some(value), true) = (value, text.chars().any(char::is_whitespace)) {
        let message = format!(
            "\"{text}\" contains whitespace; expected an affix without spaces (symbol names have none)"
        );
        return Err(table.error(value.span().start, key, message));
    }
    assert!(!text.chars().any(char::is_whitespace));
    Ok(text)
}

fn symbol_rules(table: Table<'_>, raw: &RawFollow) -> Result<SymbolRules, ConfigError> {
    let mut map = BTreeMap::new();
    if let Some(pairs) = &raw.symbol_map {
        let key = "symbol_map";
        entries_max(table, pairs.span().start, key, pairs.get_ref().len())?;
        for (master_symbol, slave_symbol) in pairs.get_ref() {
            let offset = slave_symbol.span().start;
            symbol_name(table, offset, key, master_symbol)?;
            symbol_name(table, offset, key, slave_symbol.get_ref())?;
            map.insert(master_symbol.clone(), slave_symbol.get_ref().clone());
        }
    }
    Ok(SymbolRules {
        map,
        strip_prefix: affix(table, raw.strip_prefix.as_ref(), "strip_prefix")?,
        strip_suffix: affix(table, raw.strip_suffix.as_ref(), "strip_suffix")?,
        prefix: affix(table, raw.symbol_prefix.as_ref(), "symbol_prefix")?,
        suffix: affix(table, raw.symbol_suffix.as_ref(), "symbol_suffix")?,
        allow: symbol_list(table, raw.symbols_allow.as_ref(), "symbols_allow")?,
        deny: symbol_list(table, raw.symbols_deny.as_ref(), "symbols_deny")?,
    })
}

fn magic_list(
    table: Table<'_>,
    value: Option<&Spanned<Vec<u64>>>,
    key: &str,
) -> Result<BTreeSet<u64>, ConfigError> {
    let Some(value) = value else {
        return Ok(BTreeSet::new());
    };
    entries_max(table, value.span().start, key, value.get_ref().len())?;
    Ok(value.get_ref().iter().copied().collect())
}

fn hours(table: Table<'_>, raw: &RawFollow) -> Result<TradingHours, ConfigError> {
    let mut hours = TradingHours::ALWAYS;
    if let Some(window) = &raw.hours_utc {
        let (start_minute, end_minute) = parse_window(window.get_ref())
            .map_err(|message| table.error(window.span().start, "hours_utc", message))?;
        hours.start_minute = start_minute;
        hours.end_minute = end_minute;
    }
    if let Some(days) = &raw.days_utc {
        let error = |message: String| table.error(days.span().start, "days_utc", message);
        if days.get_ref().is_empty() {
            return Err(error(
                "[] is empty; expected at least one weekday, or leave the key out for every day"
                    .to_string(),
            ));
        }
        let mut weekdays = 0u8;
        for name in days.get_ref() {
            let bit = parse_weekday(name).map_err(error)?;
            if weekdays & bit != 0 {
                return Err(error(format!(
                    "\"{name}\" is listed twice; expected each weekday once"
                )));
            }
            weekdays |= bit;
        }
        hours.weekdays = weekdays;
    }
    assert!(hours.weekdays != 0 && hours.weekdays & !WEEKDAYS_ALL == 0);
    assert!(hours.start_minute != hours.end_minute);
    Ok(hours)
}
