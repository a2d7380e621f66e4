//! The bridge's TOML configuration: parsed, validated, cross-checked.
//! `core/CONFIG.md` is the operator's reference for every key.
//!
//! # Layout
//! - [`Config`] and its parts ([`ServerConfig`], [`AccountConfig`],
//!   [`FollowConfig`]): the validated form the rest of the bridge reads.
//! - `raw`: the file as serde sees it, with spans for error lines.
//! - `validate`: raw to validated for `[server]` and `[[account]]`, range
//!   checks, and the checks across tables.
//! - `follow`: raw to validated for `[[follow]]`.
//! - `hours`: the trading-hours window of a follow.
//! - `error`: [`ConfigError`] and [`ConfigWarning`], which name the line
//!   and the key.
//!
//! # Invariants
//! - Unknown keys are errors everywhere.
//! - Every numeric setting is range-checked; a `Config` that exists is valid:
//!   logins are unique, a follow's slave and master differ, each is either
//!   an account of the right role or no configured account at all (the
//!   follow is then inert, with a warning in `Config::warnings`), and no
//!   (slave, master) pair repeats.

pub mod cidr;
mod diff;
mod document;
mod error;
mod follow;
mod hours;
mod raw;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::protocol::Role;

pub use cidr::Cidr;
pub use diff::{ConfigDiff, ConfigOp};
pub use document::{ConfigDocument, ConfigDocumentV2};
pub use error::{ConfigError, ConfigWarning};
pub use hours::{TradingHours, DAY_MS, WEEKDAYS_ALL};

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[server]`: listeners, limits, journal and loop settings.
    pub server: ServerConfig,
    /// `[persist]`: the Postgres record of the journal; `None` (no table)
    /// runs the bridge on its journal alone.
    pub persist: Option<PersistConfig>,
    /// `[admin]`: the admin HTTP API; `None` (no table) keeps it off.
    pub admin: Option<AdminConfig>,
    /// `[[account]]` entries in file order; logins are unique.
    pub accounts: Vec<AccountConfig>,
    /// `[[follow]]` entries in file order; (slave, master) pairs are unique.
    /// Shared, not copied, with the engine, which indexes its books by
    /// position in it (10,000 follows take about 3.4 MB).
    pub follows: Arc<[FollowConfig]>,
    /// What the operator should know about this accepted file (a follow
    /// naming a login with no `[[account]]`, which stays inert until the
    /// account is added), in file order. The bridge logs each at start-up.
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// Parses and validates a configuration from TOML text.
    pub fn from_toml_str(source: &str) -> Result<Config, ConfigError> {
        let raw: raw::RawFile =
            toml::from_str(source).map_err(|error| error::from_toml(source, &error))?;
        validate::config(source, raw)
    }

    /// Reads `path` and parses it with [`Config::from_toml_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        Config::from_toml_str(&source)
    }

    /// The account with this login, if configured.
    pub fn account(&self, login: u64) -> Option<&AccountConfig> {
        self.accounts.iter().find(|account| account.login == login)
    }
}

/// Where the routing core runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// `inline` on a machine of up to [`ROUTING_INLINE_CORES_MAX`] cores,
    /// `thread` above.
    Auto,
    /// As a task on the first shard's executor: an event is received,
    /// journaled, routed and its copies written on one thread, with no
    /// cross-thread wake (the default shard count is then 1).
    Inline,
    /// On a thread of its own, fed by every shard through the rings (the
    /// pipelined topology, for machines with cores to spare; the default
    /// shard count is then one per core but one).
    Thread,
}

/// The most cores on which `routing = "auto"` runs the routing core inline.
pub const ROUTING_INLINE_CORES_MAX: usize = 4;

impl Routing {
    /// `Inline` or `Thread`: `Auto` resolved for a machine of `cores` cores.
    pub fn resolve(self, cores: usize) -> Routing {
        match self {
            Routing::Auto if cores <= ROUTING_INLINE_CORES_MAX => Routing::Inline,
            Routing::Auto => Routing::Thread,
            other => other,
        }
    }
}

/// Who makes each group durable under `journal_sync = "group"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalFlush {
    /// A group closed under load (by `journal_group_records` or
    /// `journal_group_ms`) as `uring` when the routing core runs inline and
    /// `thread` otherwise; a group closed because the routing core found
    /// nothing more to read is synced on its thread, as `router` does.
    Auto,
    /// `msync` on the routing core's thread, which waits for the disk.
    Router,
    /// `fdatasync` on a thread of the journal's own while the routing core
    /// goes on routing; it rings the router's doorbell when done.
    Thread,
    /// `fdatasync` submitted to io_uring by the routing core's executor
    /// (inline routing), which goes on routing and reaps the completion
    /// like a socket's; with the routing core on its own thread, `thread`.
    Uring,
}

impl JournalFlush {
    /// Who takes the groups closed under load: `Router`, `Thread` or
    /// `Uring`, with `Auto` (and `Uring` where it cannot run) resolved for
    /// the routing core's place, `routing` already resolved.
    pub fn resolve(self, routing: Routing) -> JournalFlush {
        match (self, routing) {
            (JournalFlush::Auto | JournalFlush::Uring, Routing::Inline) => JournalFlush::Uring,
            (JournalFlush::Auto | JournalFlush::Uring, Routing::Auto | Routing::Thread) => JournalFlush::Thread,
            (other, _) => other,
        }
    }
}

/// How the journal makes appended records durable (see the journal module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalSync {
    /// Flush after `journal_group_records` records or `journal_group_ms`.
    Group,
    /// Flush after every record before acking it.
    EveryRecord,
    /// Leave flushing to the operating system's page cache.
    Os,
}

/// What a poll loop does when it finds no work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Busy-poll: lowest latency, one full core per loop.
    Spin,
    /// Yield the thread to the scheduler between polls.
    Yield,
    /// Sleep with an exponential backoff capped at `backoff_us_max`.
    Park {
        /// Longest single sleep, in microseconds.
        backoff_us_max: u64,
    },
}

/// Bytes a frame of `frame_bytes_max` may need as one record: the event or
/// snapshot it is, or a copy made from it (which carries the event's symbol
/// and comment strings plus the follow's mapping). Twice the frame plus 4 KiB
/// for the fixed fields, and never below the record encoder's default.
pub fn record_bytes_max_for(frame_bytes_max: u32) -> u32 {
    let derived = frame_bytes_max.saturating_mul(2).saturating_add(RECORD_FIXED_BYTES);
    derived.max(crate::record::ENCODED_BYTES_MAX_DEFAULT)
}

/// Room for a record's fixed fields and framing, far above the 200 or so
/// bytes they take.
const RECORD_FIXED_BYTES: u32 = 4 * 1024;

/// The environment variable that gives the database URL when the file
/// does not (so no password need sit in the configuration file).
pub const DATABASE_URL_ENV: &str = "TRADEBRIDGE_DATABASE_URL";

/// `[persist]`, with every default applied.
#[derive(Clone, PartialEq)]
pub struct PersistConfig {
    /// `database_url`: a libpq-style URL or key=value string; `None` means
    /// "from [`DATABASE_URL_ENV`]". It may hold a password: never logged,
    /// and `Debug` shows only whether it is set.
    pub database_url: Option<String>,
    /// Apply pending migrations when the bridge starts.
    pub migrate_on_start: bool,
    /// Rows written in one transaction at most.
    pub batch_rows_max: u32,
    /// How long rows may wait for a batch to fill before it is written.
    pub batch_interval_ms: u64,
    /// First and longest wait before retrying after Postgres failed; the
    /// wait doubles per failure in between.
    pub retry_backoff_ms_min: u64,
    pub retry_backoff_ms_max: u64,
    /// Bound on connecting to Postgres.
    pub connect_timeout_ms: u64,
    /// Where accounts, keys and follows come from.
    pub config_source: ConfigSource,
    /// How often the bridge re-reads them from Postgres besides each
    /// notification (a safety net for a lost one).
    pub config_reread_ms: u64,
}

/// `[persist] config_source`: where the accounts, keys and follows live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// The `config_accounts` and `config_follows` tables (the default with
    /// `[persist]`); the file's `[[account]]` and `[[follow]]` fill them
    /// once when they are empty.
    Postgres,
    /// The TOML file, as without `[persist]`.
    File,
}

impl std::fmt::Debug for PersistConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PersistConfig")
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("migrate_on_start", &self.migrate_on_start)
            .field("batch_rows_max", &self.batch_rows_max)
            .field("batch_interval_ms", &self.batch_interval_ms)
            .field("retry_backoff_ms_min", &self.retry_backoff_ms_min)
            .field("retry_backoff_ms_max", &self.retry_backoff_ms_max)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("config_source", &self.config_source)
            .field("config_reread_ms", &self.config_reread_ms)
            .finish()
    }
}

/// Where the admin HTTP API listens when `[admin]` gives no `listen`:
/// loopback only.
pub const ADMIN_LISTEN_DEFAULT: &str = "127.0.0.1:9108";

/// `[admin]`, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminConfig {
    /// `listen`: the API's address.
    pub listen: SocketAddr,
    /// `[[admin.token]]`: who may call it; at least one.
    pub tokens: Vec<AdminToken>,
    /// Skips the API keeps for `GET /v1/skips`, newest last.
    pub recent_skips_max: u32,
    /// Largest request body accepted.
    pub request_bytes_max: u32,
}

/// One bearer token of the admin API: its name (the audit's actor) and the
/// SHA-256 of its text (the text itself is never stored). `Debug` hides
/// the hash.
#[derive(Clone, PartialEq)]
pub struct AdminToken {
    pub name: String,
    pub token_sha256: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AdminToken").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// The largest record the bridge's encoders, rings and journal must take:
    /// see [`record_bytes_max_for`].
    pub fn record_bytes_max(&self) -> u32 {
        record_bytes_max_for(self.frame_bytes_max)
    }
}

/// `[server]`, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Address the EA WebSocket listener binds (`ip:port`).
    pub listen: SocketAddr,
    /// Shard threads; 0 means one per core less the core left to the router
    /// (at least one).
    pub shards: u32,
    /// Directory holding the journal segments.
    pub journal_dir: PathBuf,
    /// Address of the metrics endpoint; `None` disables it.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the latency histograms are written as `.hgrm` files at
    /// shutdown; defaults to `histograms` beside the journal directory.
    pub histograms_dir: PathBuf,
    /// Heartbeat interval announced in `welcome`.
    pub hb_ms: u64,
    /// Time an EA has after the upgrade to send `hello`.
    pub hello_timeout_ms: u64,
    /// Largest accepted text frame.
    pub frame_bytes_max: u32,
    /// Bad frames tolerated per connection per minute before closing 4002.
    pub bad_frames_max_per_minute: u32,
    /// Steady frames per second allowed per account (token bucket rate).
    pub rate_limit_per_second: u32,
    /// Frames an account may send in a burst (token bucket size).
    pub rate_limit_burst: u32,
    /// Concurrent EA connections across all shards.
    pub connections_max: u32,
    /// Bytes of each shard ring, per direction; a power of two.
    pub ring_bytes: u64,
    /// Journal durability policy.
    pub journal_sync: JournalSync,
    /// Group policy: flush after this many unflushed records.
    pub journal_group_records: u32,
    /// Group policy: flush once the oldest unflushed record is this old.
    pub journal_group_ms: u64,
    /// Size of each preallocated journal segment.
    pub journal_segment_bytes: u64,
    /// Most bytes of journal segments held on disk; the bridge stops acking
    /// (and exits) when the journal would grow past it.
    pub journal_bytes_max: u64,
    /// Journal size (bytes of its segments) at which the router takes a
    /// checkpoint and releases the segments it covers; at most
    /// `journal_bytes_max - journal_segment_bytes`, so the journal can take
    /// one more segment while the checkpoint is written.
    pub checkpoint_journal_bytes: u64,
    /// Prepare the next journal segment in the background (its zeros
    /// written ahead, paced), so a roll-over does not write them on the
    /// router's thread.
    pub journal_spare_segment: bool,
    /// Who flushes each group under `journal_sync = "group"` (see
    /// [`JournalFlush`]).
    pub journal_flush: JournalFlush,
    /// Scheduler time slice asked of the Linux kernel (6.12 or later) for
    /// the hot-path threads (shards, the routing core's own thread), in
    /// microseconds; 0 leaves the kernel's default (about 0.7 ms times
    /// 1 + log2 of the cores). A short slice gives those threads an earlier
    /// deadline, so when one wakes (a frame, a sync done) on a core where
    /// another process (Postgres, say) is running, the kernel switches to
    /// it at once instead of at the running process's next tick.
    pub hot_thread_slice_us: u32,
    /// Idle strategy of the poll loops.
    pub idle: IdleStrategy,
    /// Where the routing core runs (see [`Routing`]).
    pub routing: Routing,
    /// Log lines as JSON objects instead of text.
    pub log_json: bool,
    /// Open positions the engine tracks per master; beyond it new positions
    /// are skipped with `ledger_full`. Closed positions waiting for their
    /// copies to settle do not count.
    pub positions_per_master_max: u32,
    /// Symbols remembered per slave; further names are ignored.
    pub symbols_per_slave_max: u32,
    /// Closed position ids remembered per master so that a stale re-sent
    /// open or snapshot entry for them is ignored; also the bound of closed
    /// positions kept while their copies settle (the oldest is evicted).
    pub closed_positions_remembered_max: u32,
    /// Connections accepted but not yet welcomed (upgrade, `hello`), all
    /// shards: a separate, smaller budget within `connections_max`, so
    /// connections that never log in cannot take the logged-in EAs' room.
    pub pending_connections_max: u32,
    /// Concurrent connections (pending or welcomed) from one address (an
    /// IPv6 /64 counts as one); peers in `trusted_proxies` are exempt.
    pub connections_per_address_max: u32,
    /// Of those, the ones not yet welcomed: a few addresses must not hold
    /// the whole `pending_connections_max`.
    pub pending_connections_per_address_max: u32,
    /// New connections per second from one address (a token bucket of as
    /// many); peers in `trusted_proxies` are exempt.
    pub new_connections_per_address_per_second: u32,
    /// Largest frame read before `welcome` (the `hello`); the session's own
    /// limit is `frame_bytes_max`.
    pub hello_frame_bytes_max: u32,
    /// Immediate peers that relay many EAs (a local nginx or haproxy): not
    /// limited per address. (Reading the client's address from the PROXY
    /// protocol or a forwarded header is not built yet.)
    pub trusted_proxies: Vec<Cidr>,
    /// Journal records one start may set aside because replaying them
    /// failed (the engine panicked, or the record did not decode); above
    /// it the start is refused and nothing is set aside.
    pub journal_records_quarantined_max: u32,
    /// Failed logins from one address (within `auth_block_seconds`) after
    /// which its connections are refused at accept for `auth_block_seconds`;
    /// 0: never blocked. Trusted proxies are exempt.
    pub auth_block_after_failures: u32,
    /// How long failures are counted, and an address stays blocked.
    pub auth_block_seconds: u64,
    /// Most a failed login's answer is held back: 100 ms doubled with each
    /// earlier failure of its login or address, up to this; 0: never.
    pub auth_delay_ms_max: u64,
    /// Days a key is accepted after its `key_created` (the seed's rotation
    /// every 30 days); 0: no age limit. `welcome` carries a notice in the
    /// last 7 days.
    pub key_max_age_days: u32,
}

/// `mode` of a follow or of a slave account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyMode {
    /// Everything is copied.
    #[default]
    Normal,
    /// No new opens or pending orders; closes, modifies and cancels flow.
    CloseOnly,
    /// Nothing is sent at all.
    Frozen,
}

/// Which of the master's trades a follow copies, by the master's direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    BuyOnly,
    SellOnly,
}

/// What to do when the sized volume is below the slave symbol's minimum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BelowMin {
    /// Skip the trade with `below_min_lot`.
    #[default]
    Skip,
    /// Open the minimum volume instead.
    Min,
}

/// Which account figure a percentage is taken of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyBasis {
    #[default]
    Balance,
    Equity,
}

/// What a slave account does when its daily loss limit or equity floor is hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// Block new opens and pending orders.
    #[default]
    Block,
    /// Block, and close every copied position of the slave once.
    CloseAll,
}

/// Slave-wide risk settings (keys on a slave's `[[account]]`). They apply to
/// the slave across all the masters it follows.
/// What happens to a follow's open copies when the follow ends while the
/// bridge runs (removed from the configuration, or one of its accounts
/// removed): the follow's own setting, from the configuration it had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRemove {
    /// The slave keeps them; the bridge no longer manages them (like the
    /// slave's own trades).
    #[default]
    Leave,
    /// The bridge closes them (and cancels copied pending orders) when the
    /// follow ends.
    Close,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountRisk {
    /// Mode of the whole account; the stricter of it and a follow's mode wins.
    pub mode: CopyMode,
    /// Copied positions and pending orders open at once, all masters.
    pub max_positions: Option<u32>,
    /// The same, per slave symbol.
    pub max_positions_per_symbol: Option<u32>,
    /// Loss since the UTC day's start, in account currency, that blocks opens.
    pub daily_loss_money: Option<f64>,
    /// The same as a percentage of the day's starting balance or equity.
    pub daily_loss_percent: Option<f64>,
    /// Whether `daily_loss_percent` is of the starting balance or equity.
    pub daily_loss_basis: MoneyBasis,
    /// Equity below which opens are blocked, in account currency.
    pub equity_floor: Option<f64>,
    /// Block only, or also close every copy once when a limit is hit.
    pub on_limit: OnLimit,
}

/// `[[account]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountConfig {
    /// Trading account number.
    pub login: u64,
    /// Broker server name the EA must report in `hello`.
    pub server: String,
    /// Master (Monitor EA) or slave (Executor EA).
    pub role: Role,
    /// SHA-256 of the API key; the clear key is never stored.
    pub key_sha256: [u8; 32],
    /// False: the account's `hello` is refused and its session closed
    /// (4005); to the engine it is absent (its follows are inert).
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// `"mt4"` or `"mt5"`, if given: the terminal the account runs, for the
    /// operator's lists (a `hello` is not checked against it).
    #[serde(default)]
    pub platform: Option<String>,
    /// Replaced keys still accepted until they expire (a rotation's grace).
    #[serde(default)]
    pub previous_keys: Vec<PreviousKey>,
    /// Master only: contract size per master symbol, for normalising lots
    /// between brokers. A symbol not listed is taken to match the slave's.
    pub contracts: BTreeMap<String, f64>,
    /// Slave only: account-wide limits (all defaults on a master).
    pub risk: AccountRisk,
    /// Addresses a `hello` of this account is accepted from (CIDR ranges,
    /// IPv4 and IPv6); empty: any. Checked against the connection's
    /// immediate peer.
    #[serde(default)]
    pub allow_from: Vec<Cidr>,
    /// When the current key was made (ms since the epoch, UTC), if known:
    /// with `key_max_age_days` it expires that many days later.
    #[serde(default)]
    pub key_created_ms: Option<u64>,
    /// When the current key expires regardless of its age, if set.
    #[serde(default)]
    pub key_expires_ms: Option<u64>,
}

impl AccountConfig {
    /// When the current key stops being accepted: the earlier of
    /// `key_expires` and `key_created` + `max_age_days` (0: no age limit);
    /// `None` when neither applies.
    pub fn key_expiry_ms(&self, max_age_days: u32) -> Option<u64> {
        let aged = self.key_created_ms.filter(|_| max_age_days > 0).map(|created| created.saturating_add(u64::from(max_age_days) * DAY_MS));
        match (aged, self.key_expires_ms) {
            (Some(aged), Some(expires)) => Some(aged.min(expires)),
            (aged, expires) => aged.or(expires),
        }
    }
}

/// [`AccountConfig`] as checkpoints of version 2 hold it (postcard is
/// positional: a field added is a new layout), read back with an empty
/// `allow_from`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountConfigV2 {
    pub login: u64,
    pub server: String,
    pub role: Role,
    pub key_sha256: [u8; 32],
    pub enabled: bool,
    pub platform: Option<String>,
    pub previous_keys: Vec<PreviousKey>,
    pub contracts: BTreeMap<String, f64>,
    pub risk: AccountRisk,
}

impl From<AccountConfigV2> for AccountConfig {
    fn from(old: AccountConfigV2) -> AccountConfig {
        AccountConfig {
            login: old.login,
            server: old.server,
            role: old.role,
            key_sha256: old.key_sha256,
            enabled: old.enabled,
            platform: old.platform,
            previous_keys: old.previous_keys,
            contracts: old.contracts,
            risk: old.risk,
            allow_from: Vec::new(),
            key_created_ms: None,
            key_expires_ms: None,
        }
    }
}

/// A replaced API key, accepted until `expires_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousKey {
    /// SHA-256 of the key.
    pub key_sha256: [u8; 32],
    /// Wall-clock expiry, ms since the Unix epoch (UTC): from then on the
    /// key is refused.
    pub expires_ms: u64,
}

/// Milliseconds since the Unix epoch of a TOML offset date-time
/// (`2026-12-08T04:00:00Z`); `None` unless it has a date, a time and an
/// offset, and is not before 1970.
pub fn datetime_ms(datetime: &toml::value::Datetime) -> Option<u64> {
    let date = datetime.date?;
    let time = datetime.time?;
    let offset_minutes: i64 = match datetime.offset? {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day));
    let ms = days * DAY_MS as i64
        + i64::from(time.hour) * 3_600_000
        + i64::from(time.minute) * 60_000
        + i64::from(time.second) * 1_000
        + i64::from(time.nanosecond) / 1_000_000
        - offset_minutes * 60_000;
    u64::try_from(ms).ok()
}

/// `2026-12-08T04:00:00Z` (whole seconds, UTC) of a time in ms since the epoch.
pub fn rfc3339_of_ms(ms: u64) -> String {
    let days = (ms / DAY_MS) as i64;
    let (year, month, day) = civil_from_days(days);
    let in_day = ms % DAY_MS / 1_000;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", in_day / 3_600, in_day / 60 % 60, in_day % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn enabled_default() -> bool {
    true
}

/// How a follow sizes the slave's volume.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotRule {
    /// Always this many lots.
    Fixed { lots: f64 },
    /// Master lots times `factor`.
    Multiplier { factor: f64 },
    /// Master lots times slave balance / master balance times `factor`.
    BalanceRatio { factor: f64 },
    /// Master lots times slave equity / master equity times `factor`.
    EquityRatio { factor: f64 },
    /// Risk `percent` of the slave's balance or equity at the master's stop.
    RiskPercent {
        /// Percentage of the basis risked per trade (0 to 100].
        percent: f64,
        /// Slave balance or equity as the basis.
        basis: MoneyBasis,
        /// Account-currency value of one unit of the symbol's quote currency.
        quote_to_account: f64,
    },
}

/// Symbol mapping and allow/deny lists of a follow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SymbolRules {
    /// Master symbol to slave symbol; wins over prefix and suffix rules.
    pub map: BTreeMap<String, String>,
    /// Removed from the front of the master symbol when present.
    pub strip_prefix: String,
    /// Removed from the end of the master symbol when present.
    pub strip_suffix: String,
    /// Added in front after stripping.
    pub prefix: String,
    /// Added at the end after stripping.
    pub suffix: String,
    /// Master symbols copied; empty means all.
    pub allow: BTreeSet<String>,
    /// Master symbols never copied; wins over `allow`.
    pub deny: BTreeSet<String>,
}

/// `[[follow]]`: one slave copying one master, with its rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FollowConfig {
    /// Slave login (an account with role slave).
    pub slave: u64,
    /// Master login (an account with role master).
    pub master: u64,
    /// Volume sizing.
    pub lot: LotRule,
    /// Below the slave's minimum volume: skip or use the minimum.
    pub below_min: BelowMin,
    /// Largest volume per copied trade, in lots; larger volumes are clamped.
    pub max_lot: Option<f64>,
    /// Copy the stop-loss (of the slave's order, after `reverse`).
    pub copy_sl: bool,
    /// Copy the take-profit (of the slave's order, after `reverse`).
    pub copy_tp: bool,
    /// Copy pending orders; when off, a pending order is copied as a market
    /// open once it fills on the master.
    pub copy_pending: bool,
    /// Symbol mapping and filters. Follows with equal rules share one copy
    /// (168 bytes each otherwise; most follows of a large configuration use
    /// the defaults or a few rule sets).
    pub symbols: Arc<SymbolRules>,
    /// Master magic numbers copied; empty means all.
    pub magic_allow: BTreeSet<u64>,
    /// Master magic numbers never copied; wins over `magic_allow`.
    pub magic_deny: BTreeSet<u64>,
    /// Only master trades whose comment contains this text are copied.
    pub comment_contains: Option<String>,
    /// Which master directions are copied.
    pub direction: Direction,
    /// Copy in the opposite direction, with stop-loss and take-profit swapped.
    pub reverse: bool,
    /// Mode of this follow; the stricter of it and the slave account's wins.
    pub mode: CopyMode,
    /// UTC window in which opens are copied.
    pub hours: TradingHours,
    /// Lifetime of an open or pending copy: `expires_ms = now_ms + ttl_ms`.
    pub ttl_ms: u64,
    /// Largest price deviation accepted by the Executor, in slave points; 0
    /// means no limit.
    pub max_dev_points: u32,
    /// A master position older than this is not opened on a slave by
    /// reconciliation (only by the live event); 0 disables such opens.
    pub reconcile_open_max_age_ms: u64,
    /// What ending this follow does to its open copies.
    pub on_remove: OnRemove,
}

/// Smallest contract size (units of the underlying per lot) accepted from
/// the config or a slave's symbol list. Real instruments range from 0.01
/// (some index and crypto CFDs) to a few million (FX on some brokers);
/// 1e-6 leaves ample room below.
pub const CONTRACT_SIZE_MIN: f64 = 1e-6;

/// Largest contract size accepted. Together with [`CONTRACT_SIZE_MIN`] it
/// keeps the master/slave ratio within 1e-18..=1e18, so sizing never
/// divides into infinity or not-a-number.
pub const CONTRACT_SIZE_MAX: f64 = 1e12;

/// Defaults of the follow rules, shared by validation and the docs tests.
pub mod defaults {
    /// Five seconds: long enough for a reconnecting Executor, short enough
    /// that a trader would still call the price current.
    pub const TTL_MS: u64 = 5_000;
    /// 30 points is 3 pips on a 5-digit FX symbol: a typical slippage bound.
    pub const MAX_DEV_POINTS: u32 = 30;
    /// One minute: a slave that reconnects within a minute still gets the
    /// trade (the Executor's `max_dev` check guards the price); a signal
    /// hours old is not opened.
    pub const RECONCILE_OPEN_MAX_AGE_MS: u64 = 60_000;
    /// Lot multiplier when a follow has no `lot` table.
    pub const MULTIPLIER: f64 = 1.0;
}

#[cfg(test)]
mod tests;
