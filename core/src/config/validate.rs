//! Raw to validated: range checks with the line of each value, then the
//! cross-references between accounts and follows.
//!
//! # Layout
//! - `config`: the entry point, in file order: server, accounts, follows.
//! - `server`, `account`, `follow` and their helpers, one per table.
//! - `number`, `positive`: the range checks every key goes through.
//!
//! # Invariants
//! - Every error names the key and the line of the offending value.
//! - A returned `Config` satisfies every invariant listed in `config/mod.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Spanned;

use super::error::ConfigError;
use super::hours::{parse_weekday, parse_window, TradingHours, WEEKDAYS_ALL};
use super::raw::{RawAccount, RawFile, RawFollow, RawIdle, RawLot, RawLotMode, RawRole, RawServer};
use super::{
    defaults, AccountConfig, AccountRisk, Config, FollowConfig, IdleStrategy, JournalSync, LotRule,
    MoneyBasis, ServerConfig, SymbolRules,
};
use crate::protocol::Role;

/// Entries in a symbol list, symbol map, magic list or contracts table. A
/// broker lists a few thousand symbols at most.
const LIST_ENTRIES_MAX: usize = 10_000;

/// Longest symbol name or affix; MetaTrader names are at most 31 characters.
const SYMBOL_BYTES_MAX: usize = 64;

/// Largest lot figure accepted anywhere (fixed lots, multipliers, max_lot).
const LOTS_MAX: f64 = 100_000.0;

/// The hex text that example configs put where the key hash goes.
const KEY_PLACEHOLDER: &str = "<hex SHA-256 of the API key>";

pub(crate) fn config(source: &str, raw: RawFile) -> Result<Config, ConfigError> {
    let server = server(source, &raw.server)?;
    let mut accounts = Vec::with_capacity(raw.account.len());
    let mut logins = BTreeSet::new();
    for raw_account in &raw.account {
        let account = account(source, raw_account)?;
        if !logins.insert(account.login) {
            return Err(ConfigError::at(
                source,
                raw_account.login.span().start,
                "account.login",
                format!(
                    "login {} appears in two [[account]] tables; expected each login once",
                    account.login
                ),
            ));
        }
        accounts.push(account);
    }
    let roles: BTreeMap<u64, Role> = accounts
        .iter()
        .map(|account| (account.login, account.role))
        .collect();
    let mut follows = Vec::with_capacity(raw.follow.len());
    let mut pairs = BTreeSet::new();
    for raw_follow in &raw.follow {
        let follow = follow(source, raw_follow, &roles)?;
        if !pairs.insert((follow.slave, follow.master)) {
            return Err(ConfigError::at(
                source,
                raw_follow.slave.span().start,
                "follow.slave",
                format!(
                    "slave {} already follows master {}; expected each (slave, master) pair once",
                    follow.slave, follow.master
                ),
            ));
        }
        follows.push(follow);
    }
    assert_eq!(accounts.len(), logins.len(), "logins are unique");
    assert_eq!(follows.len(), pairs.len(), "follow pairs are unique");
    Ok(Config {
        server,
        accounts,
        follows,
    })
}

/// An optional integer key with a default and an inclusive range.
fn number<T: Copy + PartialOrd + Display>(
    source: &str,
    value: &Option<Spanned<T>>,
    key: &str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    assert!(
        min <= max && default >= min && default <= max,
        "the default of `{key}` lies in its range"
    );
    let Some(value) = value else {
        return Ok(default);
    };
    let inner = *value.get_ref();
    if inner < min || inner > max {
        return Err(ConfigError::at(
            source,
            value.span().start,
            key,
            format!("{inner} is out of range; expected {min} to {max}"),
        ));
    }
    Ok(inner)
}

/// A finite number above 0 and at most `max`.
fn positive(source: &str, value: &Spanned<f64>, key: &str, max: f64) -> Result<f64, ConfigError> {
    assert!(max > 0.0, "`{key}` has a positive upper bound");
    let inner = *value.get_ref();
    if !inner.is_finite() || inner <= 0.0 || inner > max {
        return Err(ConfigError::at(
            source,
            value.span().start,
            key,
            format!("{inner} is out of range; expected a number above 0 and at most {max}"),
        ));
    }
    Ok(inner)
}

fn address(source: &str, value: &Spanned<String>, key: &str) -> Result<SocketAddr, ConfigError> {
    value.get_ref().parse().map_err(|_| {
        ConfigError::at(
            source,
            value.span().start,
            key,
            format!(
                "\"{}\" is not an address; expected ip:port such as \"127.0.0.1:8080\"",
                value.get_ref()
            ),
        )
    })
}

fn server(source: &str, raw: &RawServer) -> Result<ServerConfig, ConfigError> {
    let listen = address(source, &raw.listen, "server.listen")?;
    let metrics_listen = match &raw.metrics_listen {
        Some(value) => Some(address(source, value, "server.metrics_listen")?),
        None => None,
    };
    if raw.journal_dir.get_ref().trim().is_empty() {
        return Err(ConfigError::at(
            source,
            raw.journal_dir.span().start,
            "server.journal_dir",
            "\"\" is empty; expected a directory path".to_string(),
        ));
    }
    let ring_bytes = number(
        source,
        &raw.ring_bytes,
        "server.ring_bytes",
        4 << 20,
        64 << 10,
        1 << 30,
    )?;
    if !ring_bytes.is_power_of_two() {
        let span = raw
            .ring_bytes
            .as_ref()
            .map_or(0, |value| value.span().start);
        return Err(ConfigError::at(
            source,
            span,
            "server.ring_bytes",
            format!("{ring_bytes} is not a power of two; expected one such as 4194304"),
        ));
    }
    let idle = match raw.idle.unwrap_or(RawIdle::Park) {
        RawIdle::Spin => IdleStrategy::Spin,
        RawIdle::Yield => IdleStrategy::Yield,
        RawIdle::Park => IdleStrategy::Park {
            backoff_us_max: number(
                source,
                &raw.idle_park_backoff_us_max,
                "server.idle_park_backoff_us_max",
                50,
                1,
                100_000,
            )?,
        },
    };
    let server = ServerConfig {
        listen,
        shards: number(source, &raw.shards, "server.shards", 0, 0, 256)?,
        journal_dir: PathBuf::from(raw.journal_dir.get_ref()),
        metrics_listen,
        hb_ms: number(source, &raw.hb_ms, "server.hb_ms", 5_000, 500, 60_000)?,
        hello_timeout_ms: number(
            source,
            &raw.hello_timeout_ms,
            "server.hello_timeout_ms",
            5_000,
            500,
            60_000,
        )?,
        frame_bytes_max: number(
            source,
            &raw.frame_bytes_max,
            "server.frame_bytes_max",
            16_384,
            1_024,
            1 << 20,
        )?,
        bad_frames_max_per_minute: number(
            source,
            &raw.bad_frames_max_per_minute,
            "server.bad_frames_max_per_minute",
            10,
            1,
            1_000,
        )?,
        rate_limit_per_second: number(
            source,
            &raw.rate_limit_per_second,
            "server.rate_limit_per_second",
            200,
            1,
            100_000,
        )?,
        rate_limit_burst: number(
            source,
            &raw.rate_limit_burst,
            "server.rate_limit_burst",
            400,
            1,
            1_000_000,
        )?,
        connections_max: number(
            source,
            &raw.connections_max,
            "server.connections_max",
            20_000,
            1,
            1_000_000,
        )?,
        ring_bytes,
        journal_sync: raw.journal_sync.unwrap_or(JournalSync::Group),
        journal_group_records: number(
            source,
            &raw.journal_group_records,
            "server.journal_group_records",
            64,
            1,
            65_536,
        )?,
        journal_group_ms: number(
            source,
            &raw.journal_group_ms,
            "server.journal_group_ms",
            2,
            0,
            1_000,
        )?,
        journal_segment_bytes: number(
            source,
            &raw.journal_segment_bytes,
            "server.journal_segment_bytes",
            64 << 20,
            1 << 20,
            4 << 30,
        )?,
        idle,
        log_json: raw.log_json.unwrap_or(false),
        positions_per_master_max: number(
            source,
            &raw.positions_per_master_max,
            "server.positions_per_master_max",
            10_000,
            1,
            1_000_000,
        )?,
        symbols_per_slave_max: number(
            source,
            &raw.symbols_per_slave_max,
            "server.symbols_per_slave_max",
            5_000,
            1,
            100_000,
        )?,
        closed_positions_remembered_max: number(
            source,
            &raw.closed_positions_remembered_max,
            "server.closed_positions_remembered_max",
            4_096,
            0,
            1_000_000,
        )?,
    };
    assert!(server.ring_bytes.is_power_of_two());
    assert!(server.hb_ms > 0 && server.frame_bytes_max > 0);
    Ok(server)
}

fn account(source: &str, raw: &RawAccount) -> Result<AccountConfig, ConfigError> {
    let login = *raw.login.get_ref();
    if login == 0 {
        return Err(ConfigError::at(
            source,
            raw.login.span().start,
            "account.login",
            "0 is not a login; expected an account number above 0".to_string(),
        ));
    }
    if raw.server.get_ref().trim().is_empty() {
        return Err(ConfigError::at(
            source,
            raw.server.span().start,
            "account.server",
            "\"\" is empty; expected the broker's server name".to_string(),
        ));
    }
    let role = match raw.role.get_ref() {
        RawRole::Master => Role::Master,
        RawRole::Slave => Role::Slave,
    };
    let key_sha256 = key_hash(source, &raw.key_sha256)?;
    let contracts = match &raw.contracts {
        None => BTreeMap::new(),
        Some(table) if role == Role::Slave => {
            return Err(only_on(
                source,
                table.span().start,
                "account.contracts",
                "a master",
                "the slave's contract sizes come from its `state.symbols`",
            ));
        }
        Some(table) => contracts(source, table)?,
    };
    let risk = account_risk(source, raw, role)?;
    assert!(login > 0);
    assert!(
        role == Role::Slave || risk == AccountRisk::default(),
        "a master carries no risk settings"
    );
    Ok(AccountConfig {
        login,
        server: raw.server.get_ref().clone(),
        role,
        key_sha256,
        contracts,
        risk,
    })
}

fn only_on(source: &str, offset: usize, key: &str, role: &str, why: &str) -> ConfigError {
    ConfigError::at(
        source,
        offset,
        key,
        format!("is only valid on {role} account; {why}"),
    )
}

fn key_hash(source: &str, value: &Spanned<String>) -> Result<[u8; 32], ConfigError> {
    let text = value.get_ref().trim();
    let error =
        |detail: String| ConfigError::at(source, value.span().start, "account.key_sha256", detail);
    if text == KEY_PLACEHOLDER {
        return Err(error("is still the placeholder; expected the 64 hex digits of the key's SHA-256 (`printf %s KEY | sha256sum`)".to_string()));
    }
    if text.len() != 64 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(error(format!(
            "\"{text}\" has {} characters; expected 64 hex digits (a SHA-256)",
            text.len()
        )));
    }
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        // The text is ASCII hex, checked above, so every pair parses.
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16)
            .expect("hex digits were checked");
    }
    Ok(hash)
}

fn contracts(
    source: &str,
    table: &Spanned<BTreeMap<String, f64>>,
) -> Result<BTreeMap<String, f64>, ConfigError> {
    let key = "account.contracts";
    if table.get_ref().len() > LIST_ENTRIES_MAX {
        return Err(ConfigError::at(
            source,
            table.span().start,
            key,
            format!(
                "{} entries; expected at most {LIST_ENTRIES_MAX}",
                table.get_ref().len()
            ),
        ));
    }
    for (symbol, size) in table.get_ref() {
        if !size.is_finite() || *size <= 0.0 {
            return Err(ConfigError::at(
                source,
                table.span().start,
                key,
                format!("{symbol} = {size}; expected a contract size above 0"),
            ));
        }
    }
    Ok(table.get_ref().clone())
}

fn account_risk(source: &str, raw: &RawAccount, role: Role) -> Result<AccountRisk, ConfigError> {
    if role == Role::Master {
        let present = [
            (
                "account.mode",
                raw.mode.as_ref().map(|value| value.span().start),
            ),
            (
                "account.max_positions",
                raw.max_positions.as_ref().map(|value| value.span().start),
            ),
            (
                "account.max_positions_per_symbol",
                raw.max_positions_per_symbol
                    .as_ref()
                    .map(|value| value.span().start),
            ),
            (
                "account.daily_loss_money",
                raw.daily_loss_money
                    .as_ref()
                    .map(|value| value.span().start),
            ),
            (
                "account.daily_loss_percent",
                raw.daily_loss_percent
                    .as_ref()
                    .map(|value| value.span().start),
            ),
            (
                "account.daily_loss_basis",
                raw.daily_loss_basis
                    .as_ref()
                    .map(|value| value.span().start),
            ),
            (
                "account.equity_floor",
                raw.equity_floor.as_ref().map(|value| value.span().start),
            ),
            (
                "account.on_limit",
                raw.on_limit.as_ref().map(|value| value.span().start),
            ),
        ];
        if let Some((key, Some(offset))) = present.into_iter().find(|(_, offset)| offset.is_some())
        {
            return Err(only_on(
                source,
                offset,
                key,
                "a slave",
                "risk limits protect the copying account",
            ));
        }
        return Ok(AccountRisk::default());
    }
    let optional_count =
        |value: &Option<Spanned<u32>>, key: &str| -> Result<Option<u32>, ConfigError> {
            value
                .as_ref()
                .map(|_| number(source, value, key, 1, 1, 100_000))
                .transpose()
        };
    let optional_money =
        |value: &Option<Spanned<f64>>, key: &str, max: f64| -> Result<Option<f64>, ConfigError> {
            value
                .as_ref()
                .map(|value| positive(source, value, key, max))
                .transpose()
        };
    let risk = AccountRisk {
        mode: raw
            .mode
            .as_ref()
            .map_or(Default::default(), |value| *value.get_ref()),
        max_positions: optional_count(&raw.max_positions, "account.max_positions")?,
        max_positions_per_symbol: optional_count(
            &raw.max_positions_per_symbol,
            "account.max_positions_per_symbol",
        )?,
        daily_loss_money: optional_money(&raw.daily_loss_money, "account.daily_loss_money", 1e12)?,
        daily_loss_percent: optional_money(
            &raw.daily_loss_percent,
            "account.daily_loss_percent",
            100.0,
        )?,
        daily_loss_basis: raw
            .daily_loss_basis
            .as_ref()
            .map_or(MoneyBasis::Balance, |value| *value.get_ref()),
        equity_floor: optional_money(&raw.equity_floor, "account.equity_floor", 1e12)?,
        on_limit: raw
            .on_limit
            .as_ref()
            .map_or(Default::default(), |value| *value.get_ref()),
    };
    Ok(risk)
}

fn follow(
    source: &str,
    raw: &RawFollow,
    roles: &BTreeMap<u64, Role>,
) -> Result<FollowConfig, ConfigError> {
    let slave = *raw.slave.get_ref();
    let master = *raw.master.get_ref();
    for (key, login, span, expected) in [
        ("follow.slave", slave, raw.slave.span().start, Role::Slave),
        (
            "follow.master",
            master,
            raw.master.span().start,
            Role::Master,
        ),
    ] {
        let wanted = if expected == Role::Master {
            "master"
        } else {
            "slave"
        };
        match roles.get(&login) {
            Some(role) if *role == expected => {}
            Some(_) => {
                return Err(ConfigError::at(source, span, key, format!("account {login} is not a {wanted}; expected an [[account]] with role = \"{wanted}\"")));
            }
            None => {
                return Err(ConfigError::at(source, span, key, format!("{login} is not a configured account; expected the login of an [[account]] with role = \"{wanted}\"")));
            }
        }
    }
    let hours = hours(source, raw)?;
    let follow = FollowConfig {
        slave,
        master,
        lot: lot(source, raw.lot.as_ref())?,
        below_min: raw.below_min.unwrap_or_default(),
        max_lot: raw
            .max_lot
            .as_ref()
            .map(|value| positive(source, value, "follow.max_lot", LOTS_MAX))
            .transpose()?,
        copy_sl: raw.copy_sl.unwrap_or(true),
        copy_tp: raw.copy_tp.unwrap_or(true),
        copy_pending: raw.copy_pending.unwrap_or(true),
        symbols: symbol_rules(source, raw)?,
        magic_allow: magic_list(source, raw.magic_allow.as_ref(), "follow.magic_allow")?,
        magic_deny: magic_list(source, raw.magic_deny.as_ref(), "follow.magic_deny")?,
        comment_contains: text(
            source,
            raw.comment_contains.as_ref(),
            "follow.comment_contains",
            256,
        )?
        .filter(|text| !text.is_empty()),
        direction: raw.direction.unwrap_or_default(),
        reverse: raw.reverse.unwrap_or(false),
        mode: raw.mode.unwrap_or_default(),
        hours,
        ttl_ms: number(
            source,
            &raw.ttl_ms,
            "follow.ttl_ms",
            defaults::TTL_MS,
            100,
            3_600_000,
        )?,
        max_dev_points: number(
            source,
            &raw.max_dev_points,
            "follow.max_dev_points",
            defaults::MAX_DEV_POINTS,
            0,
            1_000_000,
        )?,
        reconcile_open_max_age_ms: number(
            source,
            &raw.reconcile_open_max_age_ms,
            "follow.reconcile_open_max_age_ms",
            defaults::RECONCILE_OPEN_MAX_AGE_MS,
            0,
            86_400_000,
        )?,
    };
    assert!(
        follow.slave != follow.master,
        "roles differ, so the logins differ"
    );
    assert!(follow.ttl_ms > 0);
    Ok(follow)
}

fn lot(source: &str, raw: Option<&Spanned<RawLot>>) -> Result<LotRule, ConfigError> {
    let Some(raw) = raw else {
        return Ok(LotRule::Multiplier {
            factor: defaults::MULTIPLIER,
        });
    };
    let raw = raw.get_ref();
    let mode = *raw.mode.get_ref();
    if mode != RawLotMode::RiskPercent {
        for (key, value) in [
            (
                "lot.basis",
                raw.basis.as_ref().map(|value| value.span().start),
            ),
            (
                "lot.quote_to_account",
                raw.quote_to_account
                    .as_ref()
                    .map(|value| value.span().start),
            ),
        ] {
            if let Some(offset) = value {
                return Err(ConfigError::at(
                    source,
                    offset,
                    key,
                    "is only valid with mode = \"risk_percent\"".to_string(),
                ));
            }
        }
    }
    let rule = match mode {
        RawLotMode::Fixed => LotRule::Fixed {
            lots: positive(source, &raw.value, "lot.value", LOTS_MAX)?,
        },
        RawLotMode::Multiplier => LotRule::Multiplier {
            factor: positive(source, &raw.value, "lot.value", LOTS_MAX)?,
        },
        RawLotMode::BalanceRatio => LotRule::BalanceRatio {
            factor: positive(source, &raw.value, "lot.value", LOTS_MAX)?,
        },
        RawLotMode::EquityRatio => LotRule::EquityRatio {
            factor: positive(source, &raw.value, "lot.value", LOTS_MAX)?,
        },
        RawLotMode::RiskPercent => LotRule::RiskPercent {
            percent: positive(source, &raw.value, "lot.value", 100.0)?,
            basis: raw
                .basis
                .as_ref()
                .map_or(MoneyBasis::Balance, |value| *value.get_ref()),
            quote_to_account: match &raw.quote_to_account {
                Some(value) => positive(source, value, "lot.quote_to_account", 1e9)?,
                None => 1.0,
            },
        },
    };
    Ok(rule)
}

fn text(
    source: &str,
    value: Option<&Spanned<String>>,
    key: &str,
    bytes_max: usize,
) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    if value.get_ref().len() > bytes_max {
        return Err(ConfigError::at(
            source,
            value.span().start,
            key,
            format!(
                "{} bytes long; expected at most {bytes_max}",
                value.get_ref().len()
            ),
        ));
    }
    Ok(Some(value.get_ref().clone()))
}

fn symbol_name(source: &str, offset: usize, key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > SYMBOL_BYTES_MAX || name.chars().any(char::is_whitespace) {
        return Err(ConfigError::at(source, offset, key, format!("\"{name}\" is not a symbol name; expected 1 to {SYMBOL_BYTES_MAX} bytes without spaces")));
    }
    Ok(())
}

fn symbol_list(
    source: &str,
    value: Option<&Spanned<Vec<String>>>,
    key: &str,
) -> Result<BTreeSet<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(BTreeSet::new());
    };
    if value.get_ref().len() > LIST_ENTRIES_MAX {
        return Err(ConfigError::at(
            source,
            value.span().start,
            key,
            format!(
                "{} entries; expected at most {LIST_ENTRIES_MAX}",
                value.get_ref().len()
            ),
        ));
    }
    for name in value.get_ref() {
        symbol_name(source, value.span().start, key, name)?;
    }
    Ok(value.get_ref().iter().cloned().collect())
}

fn symbol_rules(source: &str, raw: &RawFollow) -> Result<SymbolRules, ConfigError> {
    let mut map = BTreeMap::new();
    if let Some(table) = &raw.symbol_map {
        if table.get_ref().len() > LIST_ENTRIES_MAX {
            return Err(ConfigError::at(
                source,
                table.span().start,
                "follow.symbol_map",
                format!(
                    "{} entries; expected at most {LIST_ENTRIES_MAX}",
                    table.get_ref().len()
                ),
            ));
        }
        for (master_symbol, slave_symbol) in table.get_ref() {
            symbol_name(
                source,
                table.span().start,
                "follow.symbol_map",
                master_symbol,
            )?;
            symbol_name(
                source,
                table.span().start,
                "follow.symbol_map",
                slave_symbol,
            )?;
        }
        map = table.get_ref().clone();
    }
    let affix = |value: Option<&Spanned<String>>, key: &str| -> Result<String, ConfigError> {
        Ok(text(source, value, key, SYMBOL_BYTES_MAX)?.unwrap_or_default())
    };
    Ok(SymbolRules {
        map,
        strip_prefix: affix(raw.strip_prefix.as_ref(), "follow.strip_prefix")?,
        strip_suffix: affix(raw.strip_suffix.as_ref(), "follow.strip_suffix")?,
        prefix: affix(raw.symbol_prefix.as_ref(), "follow.symbol_prefix")?,
        suffix: affix(raw.symbol_suffix.as_ref(), "follow.symbol_suffix")?,
        allow: symbol_list(source, raw.symbols_allow.as_ref(), "follow.symbols_allow")?,
        deny: symbol_list(source, raw.symbols_deny.as_ref(), "follow.symbols_deny")?,
    })
}

fn magic_list(
    source: &str,
    value: Option<&Spanned<Vec<u64>>>,
    key: &str,
) -> Result<BTreeSet<u64>, ConfigError> {
    let Some(value) = value else {
        return Ok(BTreeSet::new());
    };
    if value.get_ref().len() > LIST_ENTRIES_MAX {
        return Err(ConfigError::at(
            source,
            value.span().start,
            key,
            format!(
                "{} entries; expected at most {LIST_ENTRIES_MAX}",
                value.get_ref().len()
            ),
        ));
    }
    Ok(value.get_ref().iter().copied().collect())
}

fn hours(source: &str, raw: &RawFollow) -> Result<TradingHours, ConfigError> {
    let mut hours = TradingHours::ALWAYS;
    if let Some(window) = &raw.hours_utc {
        let (start_minute, end_minute) = parse_window(window.get_ref()).map_err(|message| {
            ConfigError::at(source, window.span().start, "follow.hours_utc", message)
        })?;
        hours.start_minute = start_minute;
        hours.end_minute = end_minute;
    }
    if let Some(days) = &raw.days_utc {
        let error = |message: String| {
            ConfigError::at(source, days.span().start, "follow.days_utc", message)
        };
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
