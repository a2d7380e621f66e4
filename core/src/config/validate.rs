//! Raw to validated, for `[server]` and `[[account]]`, plus the checks that
//! span tables (unique logins, unique follows). Follows are in `follow.rs`.
//!
//! # Layout
//! - `config`: the entry point, in file order: server, accounts, follows.
//! - [`Range`] and one constant per bounded `[server]` key, with its reason.
//! - `number`, `positive`, `address`, `text`: the checks every key goes through.
//! - `server`, `account`, `account_risk`: one function per table part.
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
use super::follow::{follow, SharedSymbolRules};
use super::raw::{RawAccount, RawAdmin, RawFile, RawIdle, RawPersist, RawRole, RawServer};
use super::{
    AccountConfig, AccountRisk, AdminConfig, Cidr, AdminToken, Config, IdleStrategy, JournalFlush, JournalSync, MoneyBasis, PersistConfig, Routing, ServerConfig,
    CONTRACT_SIZE_MAX, CONTRACT_SIZE_MIN,
};
use crate::protocol::Role;

/// A numeric key: its dotted name, default and inclusive range.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Range<T> {
    /// Key within its table, e.g. `hb_ms`; errors name it under the
    /// table's path (`server.hb_ms`, `account[1].max_positions`).
    pub key: &'static str,
    /// Value when the key is absent.
    pub default: T,
    /// Smallest accepted value.
    pub min: T,
    /// Largest accepted value.
    pub max: T,
}

/// One table of the file: the source its spans point into and its dotted
/// path (`server`, `account[1]`, `follow[2]`, counted from 0 in file
/// order), so that every error names the full key the same way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Table<'a> {
    /// The whole TOML text, for line numbers.
    pub source: &'a str,
    /// Dotted path of the table.
    pub path: &'a str,
}

impl Table<'_> {
    /// The full dotted key of `leaf` (which may itself be dotted, `lot.value`).
    pub(crate) fn key(&self, leaf: &str) -> String {
        assert!(!leaf.is_empty() && !self.path.is_empty());
        format!("{}.{leaf}", self.path)
    }

    /// An error about `leaf` of this table, found at byte `offset`.
    pub(crate) fn error(&self, offset: usize, leaf: &str, message: String) -> ConfigError {
        ConfigError::at(self.source, offset, &self.key(leaf), message)
    }
}

/// Up to 256 shards: more than any machine this runs on has cores.
const SHARDS: Range<u32> = Range {
    key: "shards",
    default: 0,
    min: 0,
    max: 256,
};
/// 5 s matches the protocol's example; below 0.5 s heartbeats cost more
/// than they tell, above a minute a dead peer goes unnoticed too long.
const HB_MS: Range<u64> = Range {
    key: "hb_ms",
    default: 5_000,
    min: 500,
    max: 60_000,
};
/// The protocol's 5 s, bounded like the heartbeat.
const HELLO_TIMEOUT_MS: Range<u64> = Range {
    key: "hello_timeout_ms",
    default: 5_000,
    min: 500,
    max: 60_000,
};
/// 16 KiB holds any event; a `symbols` frame of hundreds of names may need
/// more, so up to 1 MiB is allowed.
const FRAME_BYTES_MAX: Range<u32> = Range {
    key: "frame_bytes_max",
    default: 16_384,
    min: 1_024,
    max: 1 << 20,
};
/// The protocol's 10 bad frames a minute.
const BAD_FRAMES_MAX_PER_MINUTE: Range<u32> = Range {
    key: "bad_frames_max_per_minute",
    default: 10,
    min: 1,
    max: 1_000,
};
/// 200 frames a second is far above a busy scalper's rate.
const RATE_LIMIT_PER_SECOND: Range<u32> = Range {
    key: "rate_limit_per_second",
    default: 200,
    min: 1,
    max: 100_000,
};
/// Two seconds' worth, for the outbox re-send after a reconnect.
const RATE_LIMIT_BURST: Range<u32> = Range {
    key: "rate_limit_burst",
    default: 400,
    min: 1,
    max: 1_000_000,
};
/// The project's target of 20 000 connected terminals.
const CONNECTIONS_MAX: Range<u32> = Range {
    key: "connections_max",
    default: 20_000,
    min: 1,
    max: 1_000_000,
};
/// 4 MiB per ring holds tens of thousands of instructions in flight.
const RING_BYTES: Range<u64> = Range {
    key: "ring_bytes",
    default: 4 << 20,
    min: 64 << 10,
    max: 1 << 30,
};
/// 64 records or 2 ms per flush keeps acks well under the copy latency.
const JOURNAL_GROUP_RECORDS: Range<u32> = Range {
    key: "journal_group_records",
    default: 64,
    min: 1,
    max: 65_536,
};
const JOURNAL_GROUP_MS: Range<u64> = Range {
    key: "journal_group_ms",
    default: 2,
    min: 0,
    max: 1_000,
};
/// 4 GiB of journal by default (64 segments of 64 MiB); at most 1 TiB.
const JOURNAL_BYTES_MAX: Range<u64> = Range {
    key: "journal_bytes_max",
    default: 4 << 30,
    min: 1 << 20,
    max: 1 << 40,
};
/// 1 GiB of journal between checkpoints: a checkpoint of 10,000 accounts
/// with 99,000 open copies is 33 MB and blocks routing for 31 ms (bench
/// `checkpoint`), so one per gigabyte of traffic (over a million events) is
/// rare, and a restart replays at most that.
/// When unset it is lowered to `journal_bytes_max - journal_segment_bytes`.
const CHECKPOINT_JOURNAL_BYTES: Range<u64> = Range {
    key: "checkpoint_journal_bytes",
    default: 1 << 30,
    min: 1 << 20,
    max: 1 << 40,
};
/// 64 MiB segments: a day of a busy bridge in a few files.
const JOURNAL_SEGMENT_BYTES: Range<u64> = Range {
    key: "journal_segment_bytes",
    default: 64 << 20,
    min: 1 << 20,
    max: 4 << 30,
};
/// 10 ms: work wakes a parked loop at once through its doorbell, so this
/// only bounds how long a missed wake could delay it; shorter only costs idle
/// CPU (each timed-out park is a few syscalls).
const IDLE_PARK_BACKOFF_US_MAX: Range<u64> = Range {
    key: "idle_park_backoff_us_max",
    default: 10_000,
    min: 1,
    max: 100_000,
};
/// 0 (the kernel's slice) until a short slice is shown to help: see
/// `ServerConfig::hot_thread_slice_us` and net/README.md ("Sharing the
/// machine"). The kernel takes 100 to 100 000 (0.1 to 100 ms).
const HOT_THREAD_SLICE_US: Range<u32> = Range {
    key: "hot_thread_slice_us",
    default: 0,
    min: 0,
    max: 100_000,
};
/// 10 000 open positions per master is far above any real account.
const POSITIONS_PER_MASTER_MAX: Range<u32> = Range {
    key: "positions_per_master_max",
    default: 10_000,
    min: 1,
    max: 1_000_000,
};
/// A terminal's Market Watch rarely lists more than a few thousand symbols.
const SYMBOLS_PER_SLAVE_MAX: Range<u32> = Range {
    key: "symbols_per_slave_max",
    default: 5_000,
    min: 1,
    max: 100_000,
};
/// 4096 ids cover any re-sent outbox or stale snapshot.
const CLOSED_POSITIONS_REMEMBERED_MAX: Range<u32> = Range {
    key: "closed_positions_remembered_max",
    default: 4_096,
    min: 0,
    max: 1_000_000,
};
/// Connections still in their upgrade or `hello`: a fleet reconnecting at
/// once after a restart passes through in a few hundred milliseconds; a
/// flood of connections that never log in stops here, not at
/// `connections_max`. Lowered to `connections_max` when unset.
const PENDING_CONNECTIONS_MAX: Range<u32> = Range {
    key: "pending_connections_max",
    default: 1_024,
    min: 1,
    max: 1_000_000,
};
/// One VPS running many terminals shares one address; 256 of them is a
/// large one. Lowered to `connections_max` when unset.
const CONNECTIONS_PER_ADDRESS_MAX: Range<u32> = Range {
    key: "connections_per_address_max",
    default: 256,
    min: 1,
    max: 1_000_000,
};
/// A handshake takes milliseconds: 32 at a time from one address let a
/// VPS's terminals in quickly, and 32 addresses, not 4, to hold the default
/// pending budget. Lowered to `pending_connections_max` when unset.
const PENDING_CONNECTIONS_PER_ADDRESS_MAX: Range<u32> = Range {
    key: "pending_connections_per_address_max",
    default: 32,
    min: 1,
    max: 1_000_000,
};
/// A VPS's terminals reconnecting together after a network blip.
const NEW_CONNECTIONS_PER_ADDRESS_PER_SECOND: Range<u32> = Range {
    key: "new_connections_per_address_per_second",
    default: 64,
    min: 1,
    max: 1_000_000,
};
/// A `hello` is under 300 bytes; a few KiB bound what a connection that
/// has not logged in may make the bridge buffer. Lowered to
/// `frame_bytes_max` when unset.
const HELLO_FRAME_BYTES_MAX: Range<u32> = Range {
    key: "hello_frame_bytes_max",
    default: 4_096,
    min: 512,
    max: 1 << 20,
};
/// One bad record (a bug hit by one event) is set aside at a start; many
/// mean a fault of the binary, and the start is refused instead.
const JOURNAL_RECORDS_QUARANTINED_MAX: Range<u32> = Range {
    key: "journal_records_quarantined_max",
    default: 16,
    min: 0,
    max: 100_000,
};
/// A terminal retrying a mistyped key fails a few times a minute; a
/// scanner, hundreds.
const AUTH_BLOCK_AFTER_FAILURES: Range<u32> = Range {
    key: "auth_block_after_failures",
    default: 20,
    min: 0,
    max: 1_000_000,
};
/// Ten minutes: long enough to stop a scanner, short enough for an
/// operator's own typo.
const AUTH_BLOCK_SECONDS: Range<u64> = Range {
    key: "auth_block_seconds",
    default: 600,
    min: 1,
    max: 86_400,
};
/// Four seconds: below an EA's reconnect backoff, far above a guess's cost.
const AUTH_DELAY_MS_MAX: Range<u64> = Range {
    key: "auth_delay_ms_max",
    default: 4_000,
    min: 0,
    max: 60_000,
};
/// The seed's rotation every 30 days; up to ten years.
const KEY_MAX_AGE_DAYS: Range<u32> = Range {
    key: "key_max_age_days",
    default: 30,
    min: 0,
    max: 3_650,
};
/// Position-count limits of a slave account (absent means unlimited).
const MAX_POSITIONS: Range<u32> = Range {
    key: "max_positions",
    default: 1,
    min: 1,
    max: 100_000,
};
const MAX_POSITIONS_PER_SYMBOL: Range<u32> = Range {
    key: "max_positions_per_symbol",
    ..MAX_POSITIONS
};

/// Entries in a symbol list, symbol map, magic list or contracts table. A
/// broker lists a few thousand symbols at most.
pub(crate) const LIST_ENTRIES_MAX: usize = 10_000;

/// Longest symbol name or affix; MetaTrader names are at most 31 characters.
pub(crate) const SYMBOL_BYTES_MAX: usize = 64;

/// Largest money figure accepted (limits and floors), in account currency.
const MONEY_MAX: f64 = 1e12;

/// Rows per Postgres transaction: 1 writes each row alone (slow but
/// simple to watch); past 100,000 one transaction holds too much memory
/// and locks too long.
const BATCH_ROWS_MAX: Range<u32> = Range {
    key: "batch_rows_max",
    default: 5_000,
    min: 1,
    max: 100_000,
};
/// How long a row may wait for its batch: 100 ms keeps the record close
/// behind the journal without a transaction per event.
const BATCH_INTERVAL_MS: Range<u64> = Range {
    key: "batch_interval_ms",
    default: 100,
    min: 1,
    max: 60_000,
};
/// Retry waits after a Postgres failure: from 200 ms, doubling, to 5 s: a
/// connection attempt costs the server little, and a longer cap delays the
/// catch-up after Postgres returns by up to that much (27 s measured with
/// 30 s in the first outage load test).
const RETRY_BACKOFF_MS_MIN: Range<u64> = Range {
    key: "retry_backoff_ms_min",
    default: 200,
    min: 10,
    max: 600_000,
};
const RETRY_BACKOFF_MS_MAX: Range<u64> = Range {
    key: "retry_backoff_ms_max",
    default: 5_000,
    ..RETRY_BACKOFF_MS_MIN
};
/// Connecting to Postgres: 5 s covers a slow network, not a dead host.
const CONNECT_TIMEOUT_MS: Range<u64> = Range {
    key: "connect_timeout_ms",
    default: 5_000,
    min: 100,
    max: 600_000,
};
/// A database URL longer than this is a mistake (a pasted file).
const DATABASE_URL_BYTES_MAX: usize = 4_096;

/// SHA-256 of the demo keys printed in deploy/tradebridge.example.toml
/// (demo-master-1, demo-master-2, demo-slave-1, demo-slave-2,
/// demo-slave-3): public, so refused on a listener that is not loopback.
const DEMO_KEY_SHA256: [&str; 5] = [
    "027ab56e7d6dd58a1d2af792a0e893afbeadaa1b9978c57d8ffe4b05531a15aa",
    "4b5672f8ffea34d0ee22f1f40c275be1f2d9ab33731505f795ef12f628201e5b",
    "b9a5a2f553b362d6600a5461589956d2672870b866df579f20b9165ebb1293b2",
    "5be9b1e9441e77b4709302c501b9608f5e852061d507d6cb71bbeb78a310de93",
    "6969153bbfcd4da23bc6eaee0d1a2285f0e318f30c59a1d57767cfbf8debec3c",
];

/// The text that example configs put where the key hash goes.
const KEY_PLACEHOLDER: &str = "<hex SHA-256 of the API key>";

pub(crate) fn config(source: &str, raw: RawFile) -> Result<Config, ConfigError> {
    let server = server(
        Table {
            source,
            path: "server",
        },
        &raw.server,
    )?;
    let persist = raw
        .persist
        .as_ref()
        .map(|raw_persist| persist(Table { source, path: "persist" }, raw_persist))
        .transpose()?;
    let admin = raw
        .admin
        .as_ref()
        .map(|raw_admin| admin(Table { source, path: "admin" }, raw_admin))
        .transpose()?;
    let mut accounts = Vec::with_capacity(raw.account.len());
    let mut logins = BTreeSet::new();
    for (index, raw_account) in raw.account.iter().enumerate() {
        let path = format!("account[{index}]");
        let table = Table {
            source,
            path: &path,
        };
        let account = account(table, raw_account)?;
        let key_hex: String = account.key_sha256.iter().map(|byte| format!("{byte:02x}")).collect();
        if !server.listen.ip().is_loopback() && DEMO_KEY_SHA256.contains(&key_hex.as_str()) {
            let message = format!(
                "account {} has a public demo key of deploy/tradebridge.example.toml, and listen = \"{}\" is not loopback, so anyone could log in as it; expected a key of its own (for example `openssl rand -hex 24`, its SHA-256 here)",
                account.login, server.listen
            );
            return Err(table.error(raw_account.key_sha256.span().start, "key_sha256", message));
        }
        if !logins.insert(account.login) {
            let message = format!(
                "login {} appears in two [[account]] tables; expected each login once",
                account.login
            );
            return Err(table.error(raw_account.login.span().start, "login", message));
        }
        accounts.push(account);
    }
    let roles: BTreeMap<u64, Role> = accounts
        .iter()
        .map(|account| (account.login, account.role))
        .collect();
    let mut follows = Vec::with_capacity(raw.follow.len());
    let mut pairs = BTreeSet::new();
    let mut shared_rules = SharedSymbolRules::new();
    let mut warnings = Vec::new();
    for (index, raw_follow) in raw.follow.iter().enumerate() {
        let path = format!("follow[{index}]");
        let table = Table {
            source,
            path: &path,
        };
        let follow = follow(table, raw_follow, &roles, &mut shared_rules, &mut warnings)?;
        if !pairs.insert((follow.slave, follow.master)) {
            let message = format!(
                "slave {} already follows master {}; expected each (slave, master) pair once",
                follow.slave, follow.master
            );
            return Err(table.error(raw_follow.slave.span().start, "slave", message));
        }
        follows.push(follow);
    }
    assert_eq!(accounts.len(), logins.len(), "logins are unique");
    assert_eq!(follows.len(), pairs.len(), "follow pairs are unique");
    assert!(
        warnings.len() <= 2 * follows.len(),
        "at most two warnings per follow"
    );
    Ok(Config {
        server,
        persist,
        admin,
        accounts,
        follows: follows.into(),
        warnings,
    })
}

/// `[persist]`. The URL is only checked for shape here (the persister
/// parses it fully at start); no error repeats it, since it may hold a
/// password.
fn persist(table: Table<'_>, raw: &RawPersist) -> Result<PersistConfig, ConfigError> {
    if let Some(url) = &raw.database_url {
        let text = url.get_ref();
        let shaped = text.starts_with("postgres://") || text.starts_with("postgresql://") || text.contains('=');
        if text.is_empty() || text.len() > DATABASE_URL_BYTES_MAX || !shaped {
            let message = format!(
                "not a Postgres connection string ({} bytes); expected postgres://user@host/database or key=value pairs, at most {DATABASE_URL_BYTES_MAX} bytes",
                text.len()
            );
            return Err(table.error(url.span().start, "database_url", message));
        }
    }
    let retry_backoff_ms_min = number(table, &raw.retry_backoff_ms_min, RETRY_BACKOFF_MS_MIN)?;
    let retry_backoff_ms_max = number(table, &raw.retry_backoff_ms_max, RETRY_BACKOFF_MS_MAX)?;
    if retry_backoff_ms_max < retry_backoff_ms_min {
        let offset = raw.retry_backoff_ms_max.as_ref().or(raw.retry_backoff_ms_min.as_ref()).map_or(0, |value| value.span().start);
        let message = format!("{retry_backoff_ms_max} is below retry_backoff_ms_min ({retry_backoff_ms_min}); expected at least it");
        return Err(table.error(offset, "retry_backoff_ms_max", message));
    }
    Ok(PersistConfig {
        database_url: raw.database_url.as_ref().map(|url| url.get_ref().clone()),
        migrate_on_start: raw.migrate_on_start.unwrap_or(false),
        batch_rows_max: number(table, &raw.batch_rows_max, BATCH_ROWS_MAX)?,
        batch_interval_ms: number(table, &raw.batch_interval_ms, BATCH_INTERVAL_MS)?,
        retry_backoff_ms_min,
        retry_backoff_ms_max,
        connect_timeout_ms: number(table, &raw.connect_timeout_ms, CONNECT_TIMEOUT_MS)?,
        config_source: raw.config_source.unwrap_or(super::ConfigSource::Postgres),
        config_reread_ms: number(table, &raw.config_reread_ms, CONFIG_REREAD_MS)?,
    })
}

const CONFIG_REREAD_MS: Range<u64> = Range { key: "config_reread_ms", default: 30_000, min: 100, max: 3_600_000 };

/// `[admin]`: an address (loopback unless given), at least one token with
/// a unique name, and the bounds.
fn admin(table: Table<'_>, raw: &RawAdmin) -> Result<AdminConfig, ConfigError> {
    let listen = match &raw.listen {
        Some(value) => address(table, value, "listen")?,
        None => super::ADMIN_LISTEN_DEFAULT.parse().expect("the default admin address parses"),
    };
    if raw.token.is_empty() {
        let message = "has no [[admin.token]]; expected at least one (name and token_sha256), or no [admin] table to keep the API off".to_string();
        return Err(table.error(raw.listen.as_ref().map_or(0, |value| value.span().start), "token", message));
    }
    if raw.token.len() > ADMIN_TOKENS_MAX {
        let message = format!("has {} tokens; expected at most {ADMIN_TOKENS_MAX}", raw.token.len());
        return Err(table.error(raw.token[ADMIN_TOKENS_MAX].name.span().start, "token", message));
    }
    let mut tokens: Vec<AdminToken> = Vec::with_capacity(raw.token.len());
    for (index, token) in raw.token.iter().enumerate() {
        let path = format!("admin.token[{index}]");
        let token_table = Table { source: table.source, path: &path };
        let name = token.name.get_ref().trim();
        let name_ok = !name.is_empty() && name.len() <= ADMIN_TOKEN_NAME_BYTES_MAX && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.@".contains(&byte));
        if !name_ok {
            let message = format!("{name:?}: expected 1 to {ADMIN_TOKEN_NAME_BYTES_MAX} letters, digits or - _ . @");
            return Err(token_table.error(token.name.span().start, "name", message));
        }
        if tokens.iter().any(|other| other.name == name) {
            let message = format!("{name:?} names two tokens; expected each name once");
            return Err(token_table.error(token.name.span().start, "name", message));
        }
        let token_sha256 = key_hash(token_table, &token.token_sha256, "token_sha256")?;
        tokens.push(AdminToken { name: name.to_owned(), token_sha256 });
    }
    Ok(AdminConfig {
        listen,
        tokens,
        recent_skips_max: number(table, &raw.recent_skips_max, RECENT_SKIPS_MAX)?,
        request_bytes_max: number(table, &raw.request_bytes_max, REQUEST_BYTES_MAX)?,
    })
}

/// Tokens `[admin]` may name.
const ADMIN_TOKENS_MAX: usize = 64;
/// A token's name: an actor in the audit.
const ADMIN_TOKEN_NAME_BYTES_MAX: usize = 64;
const RECENT_SKIPS_MAX: Range<u32> = Range { key: "recent_skips_max", default: 1_000, min: 0, max: 100_000 };
const REQUEST_BYTES_MAX: Range<u32> = Range { key: "request_bytes_max", default: 65_536, min: 1_024, max: 16 * 1024 * 1024 };

/// An optional numeric key: its default when absent, else checked against
/// the inclusive range.
pub(crate) fn number<T: Copy + PartialOrd + Display>(
    table: Table<'_>,
    value: &Option<Spanned<T>>,
    range: Range<T>,
) -> Result<T, ConfigError> {
    let key = range.key;
    assert!(range.min <= range.max, "the range of `{key}` is not empty");
    assert!(
        range.default >= range.min && range.default <= range.max,
        "the default of `{key}` lies in its range"
    );
    let Some(value) = value else {
        return Ok(range.default);
    };
    let inner = *value.get_ref();
    if inner < range.min || inner > range.max {
        let message = format!(
            "{inner} is out of range; expected {} to {}",
            range.min, range.max
        );
        return Err(table.error(value.span().start, key, message));
    }
    Ok(inner)
}

/// A finite number above 0 and at most `max`.
pub(crate) fn positive(
    table: Table<'_>,
    value: &Spanned<f64>,
    key: &str,
    max: f64,
) -> Result<f64, ConfigError> {
    assert!(max > 0.0, "`{key}` has a positive upper bound");
    let inner = *value.get_ref();
    if !inner.is_finite() || inner <= 0.0 || inner > max {
        let message =
            format!("{inner} is out of range; expected a number above 0 and at most {max}");
        return Err(table.error(value.span().start, key, message));
    }
    Ok(inner)
}

/// An optional text key no longer than `bytes_max`.
pub(crate) fn text(
    table: Table<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    bytes_max: usize,
) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    if value.get_ref().len() > bytes_max {
        let message = format!(
            "{} bytes long; expected at most {bytes_max}",
            value.get_ref().len()
        );
        return Err(table.error(value.span().start, key, message));
    }
    Ok(Some(value.get_ref().clone()))
}

/// Fails unless `name` can be a symbol: 1 to `SYMBOL_BYTES_MAX` bytes, no
/// whitespace (MetaTrader names have none, so a space is a typo).
pub(crate) fn symbol_name(
    table: Table<'_>,
    offset: usize,
    key: &str,
    name: &str,
) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > SYMBOL_BYTES_MAX || name.chars().any(char::is_whitespace) {
        let message = format!(
            "\"{name}\" is not a symbol name; expected 1 to {SYMBOL_BYTES_MAX} bytes without spaces"
        );
        return Err(table.error(offset, key, message));
    }
    Ok(())
}

/// Fails when a list or table has more than `LIST_ENTRIES_MAX` entries.
pub(crate) fn entries_max(
    table: Table<'_>,
    offset: usize,
    key: &str,
    entries: usize,
) -> Result<(), ConfigError> {
    if entries > LIST_ENTRIES_MAX {
        let message = format!("{entries} entries; expected at most {LIST_ENTRIES_MAX}");
        return Err(table.error(offset, key, message));
    }
    Ok(())
}

fn address(
    table: Table<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<SocketAddr, ConfigError> {
    value.get_ref().parse().map_err(|_| {
        let message = format!(
            "\"{}\" is not an address; expected ip:port such as \"127.0.0.1:8080\"",
            value.get_ref()
        );
        table.error(value.span().start, key, message)
    })
}

fn ring_bytes(table: Table<'_>, raw: &RawServer) -> Result<u64, ConfigError> {
    let ring_bytes = number(table, &raw.ring_bytes, RING_BYTES)?;
    if !ring_bytes.is_power_of_two() {
        let offset = raw
            .ring_bytes
            .as_ref()
            .map_or(0, |value| value.span().start);
        let message = format!("{ring_bytes} is not a power of two; expected one such as 4194304");
        return Err(table.error(offset, RING_BYTES.key, message));
    }
    // Every record a frame causes (the event, its copies, a snapshot or
    // state) crosses a ring whole, and a ring takes records of up to half
    // its size.
    let frame_bytes_max = number(table, &raw.frame_bytes_max, FRAME_BYTES_MAX)?;
    let needed = (2 * u64::from(super::record_bytes_max_for(frame_bytes_max))).next_power_of_two();
    if ring_bytes < needed {
        let offset = match (&raw.ring_bytes, &raw.frame_bytes_max) {
            (Some(value), _) => value.span().start,
            (None, Some(value)) => value.span().start,
            (None, None) => 0,
        };
        let message = format!(
            "{ring_bytes} cannot carry the records of a frame of frame_bytes_max = {frame_bytes_max} bytes; expected at least {needed} (a ring takes records of up to half its size)"
        );
        return Err(table.error(offset, RING_BYTES.key, message));
    }
    Ok(ring_bytes)
}



fn idle(table: Table<'_>, raw: &RawServer) -> Result<IdleStrategy, ConfigError> {
    Ok(match raw.idle.unwrap_or(RawIdle::Park) {
        RawIdle::Spin => IdleStrategy::Spin,
        RawIdle::Yield => IdleStrategy::Yield,
        RawIdle::Park => IdleStrategy::Park {
            backoff_us_max: number(
                table,
                &raw.idle_park_backoff_us_max,
                IDLE_PARK_BACKOFF_US_MAX,
            )?,
        },
    })
}

fn hot_thread_slice_us(table: Table<'_>, raw: &RawServer) -> Result<u32, ConfigError> {
    let slice_us = number(table, &raw.hot_thread_slice_us, HOT_THREAD_SLICE_US)?;
    if let (Some(value), 1..=99) = (&raw.hot_thread_slice_us, slice_us) {
        let message = format!("{slice_us} is below the kernel's shortest slice; expected 0 (the kernel's default) or 100 to 100000");
        return Err(table.error(value.span().start, HOT_THREAD_SLICE_US.key, message));
    }
    Ok(slice_us)
}

/// Name of the default `histograms_dir`, beside the journal directory, so
/// one data directory holds all the bridge writes.
const HISTOGRAMS_DIR_DEFAULT_NAME: &str = "histograms";

fn server(table: Table<'_>, raw: &RawServer) -> Result<ServerConfig, ConfigError> {
    if raw.journal_dir.get_ref().trim().is_empty() {
        let message = "\"\" is empty; expected a directory path".to_string();
        return Err(table.error(raw.journal_dir.span().start, "journal_dir", message));
    }
    let metrics_listen = match &raw.metrics_listen {
        Some(value) => Some(address(table, value, "metrics_listen")?),
        None => None,
    };
    let journal_dir = PathBuf::from(raw.journal_dir.get_ref());
    let histograms_dir = match &raw.histograms_dir {
        Some(value) if value.get_ref().trim().is_empty() => {
            let message = "\"\" is empty; expected a directory path".to_string();
            return Err(table.error(value.span().start, "histograms_dir", message));
        }
        Some(value) => PathBuf::from(value.get_ref()),
        // "./data/journal" gives "./data/histograms".
        None => journal_dir.with_file_name(HISTOGRAMS_DIR_DEFAULT_NAME),
    };
    let mut server = ServerConfig {
        listen: address(table, &raw.listen, "listen")?,
        shards: number(table, &raw.shards, SHARDS)?,
        journal_dir,
        metrics_listen,
        histograms_dir,
        hb_ms: number(table, &raw.hb_ms, HB_MS)?,
        hello_timeout_ms: number(table, &raw.hello_timeout_ms, HELLO_TIMEOUT_MS)?,
        frame_bytes_max: number(table, &raw.frame_bytes_max, FRAME_BYTES_MAX)?,
        bad_frames_max_per_minute: number(
            table,
            &raw.bad_frames_max_per_minute,
            BAD_FRAMES_MAX_PER_MINUTE,
        )?,
        rate_limit_per_second: number(table, &raw.rate_limit_per_second, RATE_LIMIT_PER_SECOND)?,
        rate_limit_burst: number(table, &raw.rate_limit_burst, RATE_LIMIT_BURST)?,
        connections_max: number(table, &raw.connections_max, CONNECTIONS_MAX)?,
        ring_bytes: ring_bytes(table, raw)?,
        journal_sync: raw.journal_sync.unwrap_or(JournalSync::Group),
        journal_group_records: number(table, &raw.journal_group_records, JOURNAL_GROUP_RECORDS)?,
        journal_group_ms: number(table, &raw.journal_group_ms, JOURNAL_GROUP_MS)?,
        journal_segment_bytes: number(table, &raw.journal_segment_bytes, JOURNAL_SEGMENT_BYTES)?,
        journal_bytes_max: number(table, &raw.journal_bytes_max, JOURNAL_BYTES_MAX)?,
        checkpoint_journal_bytes: number(table, &raw.checkpoint_journal_bytes, CHECKPOINT_JOURNAL_BYTES)?,
        idle: idle(table, raw)?,
        routing: raw.routing.unwrap_or(Routing::Auto),
        log_json: raw.log_json.unwrap_or(false),
        journal_spare_segment: raw.journal_spare_segment.unwrap_or(true),
        journal_flush: raw.journal_flush.unwrap_or(JournalFlush::Auto),
        hot_thread_slice_us: hot_thread_slice_us(table, raw)?,
        positions_per_master_max: number(
            table,
            &raw.positions_per_master_max,
            POSITIONS_PER_MASTER_MAX,
        )?,
        symbols_per_slave_max: number(table, &raw.symbols_per_slave_max, SYMBOLS_PER_SLAVE_MAX)?,
        closed_positions_remembered_max: number(
            table,
            &raw.closed_positions_remembered_max,
            CLOSED_POSITIONS_REMEMBERED_MAX,
        )?,
        pending_connections_max: number(table, &raw.pending_connections_max, PENDING_CONNECTIONS_MAX)?,
        connections_per_address_max: number(table, &raw.connections_per_address_max, CONNECTIONS_PER_ADDRESS_MAX)?,
        pending_connections_per_address_max: number(table, &raw.pending_connections_per_address_max, PENDING_CONNECTIONS_PER_ADDRESS_MAX)?,
        new_connections_per_address_per_second: number(
            table,
            &raw.new_connections_per_address_per_second,
            NEW_CONNECTIONS_PER_ADDRESS_PER_SECOND,
        )?,
        hello_frame_bytes_max: number(table, &raw.hello_frame_bytes_max, HELLO_FRAME_BYTES_MAX)?,
        trusted_proxies: cidrs(table, raw.trusted_proxies.as_deref().unwrap_or_default(), "trusted_proxies")?,
        journal_records_quarantined_max: number(table, &raw.journal_records_quarantined_max, JOURNAL_RECORDS_QUARANTINED_MAX)?,
        auth_block_after_failures: number(table, &raw.auth_block_after_failures, AUTH_BLOCK_AFTER_FAILURES)?,
        auth_block_seconds: number(table, &raw.auth_block_seconds, AUTH_BLOCK_SECONDS)?,
        auth_delay_ms_max: number(table, &raw.auth_delay_ms_max, AUTH_DELAY_MS_MAX)?,
        key_max_age_days: number(table, &raw.key_max_age_days, KEY_MAX_AGE_DAYS)?,
    };
    front_door_bounds(table, raw, &mut server)?;
    // A journal record holds one ring record, and a segment its largest
    // record (with the segment header).
    let record_bytes_max = u64::from(server.record_bytes_max());
    if server.journal_segment_bytes < 2 * record_bytes_max {
        let offset = raw.journal_segment_bytes.as_ref().map_or(0, |value| value.span().start);
        let message = format!(
            "{} cannot hold the records of a frame of frame_bytes_max = {} bytes; expected at least {}",
            server.journal_segment_bytes,
            server.frame_bytes_max,
            2 * record_bytes_max
        );
        return Err(table.error(offset, JOURNAL_SEGMENT_BYTES.key, message));
    }
    journal_bounds(table, raw, &mut server)?;
    assert!(server.ring_bytes.is_power_of_two());
    assert!(server.hb_ms > 0 && server.frame_bytes_max > 0);
    Ok(server)
}

/// A list of addresses or ranges; an error names the entry's position.
fn cidrs(table: Table<'_>, values: &[Spanned<String>], key: &str) -> Result<Vec<Cidr>, ConfigError> {
    let mut ranges = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let range = value.get_ref().trim().parse::<Cidr>().map_err(|error| table.error(value.span().start, &format!("{key}[{index}]"), error.to_string()))?;
        ranges.push(range);
    }
    Ok(ranges)
}

/// The front door's budgets lie within `connections_max` and the hello's
/// frame within `frame_bytes_max`: unset ones are lowered to them, set ones
/// above them are refused.
fn front_door_bounds(table: Table<'_>, raw: &RawServer, server: &mut ServerConfig) -> Result<(), ConfigError> {
    let connections_max = server.connections_max;
    let frame_bytes_max = server.frame_bytes_max;
    let bounded = [
        (&raw.pending_connections_max, &mut server.pending_connections_max, PENDING_CONNECTIONS_MAX.key, connections_max, "connections_max"),
        (&raw.connections_per_address_max, &mut server.connections_per_address_max, CONNECTIONS_PER_ADDRESS_MAX.key, connections_max, "connections_max"),
        (&raw.hello_frame_bytes_max, &mut server.hello_frame_bytes_max, HELLO_FRAME_BYTES_MAX.key, frame_bytes_max, "frame_bytes_max"),
    ];
    for (raw_value, value, key, bound, bound_key) in bounded {
        within(table, raw_value, value, key, bound, bound_key)?;
    }
    // After the loop: bounded by pending_connections_max as lowered there.
    let pending_max = server.pending_connections_max;
    let key = PENDING_CONNECTIONS_PER_ADDRESS_MAX.key;
    within(table, &raw.pending_connections_per_address_max, &mut server.pending_connections_per_address_max, key, pending_max, "pending_connections_max")
}

/// `value` (of `key`, set as `raw_value`) lowered to `bound` when unset,
/// refused naming `bound_key` when set above it.
fn within(table: Table<'_>, raw_value: &Option<Spanned<u32>>, value: &mut u32, key: &str, bound: u32, bound_key: &str) -> Result<(), ConfigError> {
    match raw_value {
        None => *value = (*value).min(bound),
        Some(set) if *value > bound => {
            let message = format!("{} is above {bound_key} = {bound}; expected at most that", *value);
            return Err(table.error(set.span().start, key, message));
        }
        Some(_) => {}
    }
    Ok(())
}

/// The journal holds two segments at least, and a checkpoint is taken while
/// one more segment still fits (an unset `checkpoint_journal_bytes` is
/// lowered to that).
fn journal_bounds(table: Table<'_>, raw: &RawServer, server: &mut ServerConfig) -> Result<(), ConfigError> {
    let segment_bytes = server.journal_segment_bytes;
    if server.journal_bytes_max < 2 * segment_bytes {
        let offset = raw.journal_bytes_max.as_ref().map_or(0, |value| value.span().start);
        let message = format!(
            "{} cannot hold two segments of journal_segment_bytes = {segment_bytes}; expected at least {}",
            server.journal_bytes_max,
            2 * segment_bytes
        );
        return Err(table.error(offset, JOURNAL_BYTES_MAX.key, message));
    }
    let checkpoint_bytes_max = server.journal_bytes_max - segment_bytes;
    match &raw.checkpoint_journal_bytes {
        None => server.checkpoint_journal_bytes = server.checkpoint_journal_bytes.min(checkpoint_bytes_max),
        Some(value) if server.checkpoint_journal_bytes > checkpoint_bytes_max => {
            let message = format!(
                "{} leaves no room for a segment while the checkpoint is written; expected at most journal_bytes_max - journal_segment_bytes = {checkpoint_bytes_max}",
                server.checkpoint_journal_bytes
            );
            return Err(table.error(value.span().start, CHECKPOINT_JOURNAL_BYTES.key, message));
        }
        Some(_) => {}
    }
    Ok(())
}

fn account(table: Table<'_>, raw: &RawAccount) -> Result<AccountConfig, ConfigError> {
    let login = *raw.login.get_ref();
    if login == 0 {
        let message = "0 is not a login; expected an account number above 0".to_string();
        return Err(table.error(raw.login.span().start, "login", message));
    }
    if raw.server.get_ref().trim().is_empty() {
        let message = "\"\" is empty; expected the broker's server name".to_string();
        return Err(table.error(raw.server.span().start, "server", message));
    }
    let role = match raw.role.get_ref() {
        RawRole::Master => Role::Master,
        RawRole::Slave => Role::Slave,
    };
    let contracts = match &raw.contracts {
        None => BTreeMap::new(),
        Some(sizes) if role == Role::Slave => {
            let why = "the slave's contract sizes come from its `state.symbols`";
            return Err(only_on(
                table,
                sizes.span().start,
                "contracts",
                "a master",
                why,
            ));
        }
        Some(sizes) => contracts(table, sizes)?,
    };
    let risk = if role == Role::Slave {
        account_risk(table, raw)?
    } else {
        refuse_risk_on_master(table, raw)?
    };
    assert!(login > 0);
    assert!(
        role == Role::Slave || risk == AccountRisk::default(),
        "a master carries no risk settings"
    );
    let key_sha256 = key_hash(table, &raw.key_sha256, "key_sha256")?;
    let mut previous_keys = Vec::new();
    for (index, previous) in raw.previous_keys.iter().flatten().enumerate() {
        let key_sha256 = key_hash(table, &previous.key_sha256, &format!("previous_keys[{index}].key_sha256"))?;
        let expires_ms = super::datetime_ms(previous.expires.get_ref()).ok_or_else(|| {
            table.error(
                previous.expires.span().start,
                &format!("previous_keys[{index}].expires"),
                format!("{}: expected a date and time with an offset, e.g. 2026-12-08T04:00:00Z", previous.expires.get_ref()),
            )
        })?;
        previous_keys.push(super::PreviousKey { key_sha256, expires_ms });
    }
    if previous_keys.len() > PREVIOUS_KEYS_MAX {
        return Err(table.error(raw.login.span().start, "previous_keys", format!("{} keys; expected at most {PREVIOUS_KEYS_MAX}", previous_keys.len())));
    }
    Ok(AccountConfig {
        login,
        server: raw.server.get_ref().clone(),
        role,
        key_sha256,
        enabled: raw.enabled.unwrap_or(true),
        previous_keys,
        platform: match &raw.platform {
            None => None,
            Some(platform) if matches!(platform.get_ref().as_str(), "mt4" | "mt5") => Some(platform.get_ref().clone()),
            Some(platform) => {
                return Err(table.error(platform.span().start, "platform", format!("{:?}: expected \"mt4\" or \"mt5\"", platform.get_ref())));
            }
        },
        contracts,
        risk,
        allow_from: allow_from(table, raw)?,
        key_created_ms: key_date(table, raw.key_created.as_ref(), "key_created")?,
        key_expires_ms: key_date(table, raw.key_expires.as_ref(), "key_expires")?,
    })
}

/// A key's date: a TOML offset date-time (`2026-12-08T04:00:00Z`).
fn key_date(table: Table<'_>, value: Option<&Spanned<toml::value::Datetime>>, key: &str) -> Result<Option<u64>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    super::datetime_ms(value.get_ref()).map(Some).ok_or_else(|| {
        table.error(value.span().start, key, format!("{}: expected a date-time with an offset, such as 2026-12-08T04:00:00Z", value.get_ref()))
    })
}

/// At most this many ranges per account: a list an operator reads.
const ALLOW_FROM_MAX: usize = 64;

fn allow_from(table: Table<'_>, raw: &RawAccount) -> Result<Vec<Cidr>, ConfigError> {
    let values = raw.allow_from.as_deref().unwrap_or_default();
    if values.len() > ALLOW_FROM_MAX {
        let message = format!("{} ranges; expected at most {ALLOW_FROM_MAX}", values.len());
        return Err(table.error(values[ALLOW_FROM_MAX].span().start, "allow_from", message));
    }
    cidrs(table, values, "allow_from")
}

fn only_on(table: Table<'_>, offset: usize, key: &str, role: &str, why: &str) -> ConfigError {
    table.error(
        offset,
        key,
        format!("is only valid on {role} account; {why}"),
    )
}

/// Replaced keys an account may keep (each rotation adds one; expired
/// ones are dropped by the next rotation).
pub const PREVIOUS_KEYS_MAX: usize = 16;

fn key_hash(table: Table<'_>, value: &Spanned<String>, leaf: &str) -> Result<[u8; 32], ConfigError> {
    let text = value.get_ref().trim();
    let error = |detail: String| table.error(value.span().start, leaf, detail);
    if text == KEY_PLACEHOLDER {
        return Err(error(
            "is still the placeholder; expected the 64 hex digits of the key's SHA-256 (`printf %s KEY | sha256sum`)"
                .to_string(),
        ));
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
    assert_eq!(hash.len() * 2, text.len());
    Ok(hash)
}

/// The master's contract sizes: symbol names like any symbol list, sizes
/// within `CONTRACT_SIZE_MIN..=CONTRACT_SIZE_MAX` (the engine divides by
/// them, so a size of 1e-300 would make lots infinite).
fn contracts(
    table: Table<'_>,
    sizes: &Spanned<BTreeMap<String, Spanned<f64>>>,
) -> Result<BTreeMap<String, f64>, ConfigError> {
    let key = "contracts";
    entries_max(table, sizes.span().start, key, sizes.get_ref().len())?;
    let mut accepted = BTreeMap::new();
    for (symbol, size) in sizes.get_ref() {
        symbol_name(table, size.span().start, key, symbol)?;
        let inner = *size.get_ref();
        if !(CONTRACT_SIZE_MIN..=CONTRACT_SIZE_MAX).contains(&inner) {
            let message = format!(
                "{symbol} = {inner} is out of range; expected a contract size from {CONTRACT_SIZE_MIN} to {CONTRACT_SIZE_MAX}"
            );
            return Err(table.error(size.span().start, key, message));
        }
        accepted.insert(symbol.clone(), inner);
    }
    assert_eq!(accepted.len(), sizes.get_ref().len());
    assert!(accepted
        .values()
        .all(|size| size.is_finite() && *size > 0.0));
    Ok(accepted)
}

/// Where an optional key's value starts, if the key is present.
fn start<T>(value: &Option<Spanned<T>>) -> Option<usize> {
    value.as_ref().map(|value| value.span().start)
}

/// Risk keys protect the copying account; on a master they are a mistake.
fn refuse_risk_on_master(table: Table<'_>, raw: &RawAccount) -> Result<AccountRisk, ConfigError> {
    let present = [
        ("mode", start(&raw.mode)),
        ("max_positions", start(&raw.max_positions)),
        (
            "max_positions_per_symbol",
            start(&raw.max_positions_per_symbol),
        ),
        ("daily_loss_money", start(&raw.daily_loss_money)),
        ("daily_loss_percent", start(&raw.daily_loss_percent)),
        ("daily_loss_basis", start(&raw.daily_loss_basis)),
        ("equity_floor", start(&raw.equity_floor)),
        ("on_limit", start(&raw.on_limit)),
    ];
    match present
        .into_iter()
        .find_map(|(key, offset)| offset.map(|offset| (key, offset)))
    {
        Some((key, offset)) => Err(only_on(
            table,
            offset,
            key,
            "a slave",
            "risk limits protect the copying account",
        )),
        None => Ok(AccountRisk::default()),
    }
}

fn account_risk(table: Table<'_>, raw: &RawAccount) -> Result<AccountRisk, ConfigError> {
    let count =
        |value: &Option<Spanned<u32>>, range: Range<u32>| -> Result<Option<u32>, ConfigError> {
            value
                .as_ref()
                .map(|_| number(table, value, range))
                .transpose()
        };
    let money =
        |value: &Option<Spanned<f64>>, key: &str, max: f64| -> Result<Option<f64>, ConfigError> {
            value
                .as_ref()
                .map(|value| positive(table, value, key, max))
                .transpose()
        };
    let risk = AccountRisk {
        mode: raw
            .mode
            .as_ref()
            .map_or(Default::default(), |value| *value.get_ref()),
        max_positions: count(&raw.max_positions, MAX_POSITIONS)?,
        max_positions_per_symbol: count(&raw.max_positions_per_symbol, MAX_POSITIONS_PER_SYMBOL)?,
        daily_loss_money: money(&raw.daily_loss_money, "daily_loss_money", MONEY_MAX)?,
        daily_loss_percent: money(&raw.daily_loss_percent, "daily_loss_percent", 100.0)?,
        daily_loss_basis: raw
            .daily_loss_basis
            .as_ref()
            .map_or(MoneyBasis::Balance, |value| *value.get_ref()),
        equity_floor: money(&raw.equity_floor, "equity_floor", MONEY_MAX)?,
        on_limit: raw
            .on_limit
            .as_ref()
            .map_or(Default::default(), |value| *value.get_ref()),
    };
    assert!(risk.max_positions != Some(0) && risk.max_positions_per_symbol != Some(0));
    assert!(!matches!(risk.daily_loss_percent, Some(percent) if percent > 100.0));
    Ok(risk)
}
