//! The TOML file as serde sees it, before validation. Every value that is
//! checked after deserialising is `Spanned`, so its error can name the line.
//!
//! # Layout
//! - `RawFile`: `[server]`, `[persist]`, `[admin]`, `[[account]]`, `[[follow]]`.
//! - One raw struct per table and per inline table (`lot`).
//!
//! Field names are the TOML keys themselves; each is documented, with its
//! default and range, in `core/CONFIG.md` rather than repeated here.
//!
//! # Invariants
//! - Every struct refuses unknown keys (`deny_unknown_fields`), so a typo is
//!   an error rather than a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{BelowMin, CopyMode, Direction, JournalFlush, JournalSync, MoneyBasis, OnLimit, OnRemove, Routing};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub server: RawServer,
    pub persist: Option<RawPersist>,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub account: Vec<RawAccount>,
    #[serde(default)]
    pub follow: Vec<RawFollow>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Spanned<String>,
    pub shards: Option<Spanned<u32>>,
    pub journal_dir: Spanned<String>,
    pub metrics_listen: Option<Spanned<String>>,
    pub histograms_dir: Option<Spanned<String>>,
    pub hb_ms: Option<Spanned<u64>>,
    pub hello_timeout_ms: Option<Spanned<u64>>,
    pub frame_bytes_max: Option<Spanned<u32>>,
    pub bad_frames_max_per_minute: Option<Spanned<u32>>,
    pub rate_limit_per_second: Option<Spanned<u32>>,
    pub rate_limit_burst: Option<Spanned<u32>>,
    pub connections_max: Option<Spanned<u32>>,
    pub ring_bytes: Option<Spanned<u64>>,
    pub journal_sync: Option<JournalSync>,
    pub routing: Option<Routing>,
    pub journal_group_records: Option<Spanned<u32>>,
    pub journal_group_ms: Option<Spanned<u64>>,
    pub journal_segment_bytes: Option<Spanned<u64>>,
    pub journal_bytes_max: Option<Spanned<u64>>,
    pub checkpoint_journal_bytes: Option<Spanned<u64>>,
    pub idle: Option<RawIdle>,
    pub idle_park_backoff_us_max: Option<Spanned<u64>>,
    pub log_json: Option<bool>,
    pub journal_spare_segment: Option<bool>,
    pub journal_flush: Option<JournalFlush>,
    pub hot_thread_slice_us: Option<Spanned<u32>>,
    pub positions_per_master_max: Option<Spanned<u32>>,
    pub symbols_per_slave_max: Option<Spanned<u32>>,
    pub closed_positions_remembered_max: Option<Spanned<u32>>,
    pub pending_connections_max: Option<Spanned<u32>>,
    pub connections_per_address_max: Option<Spanned<u32>>,
    pub pending_connections_per_address_max: Option<Spanned<u32>>,
    pub new_connections_per_address_per_second: Option<Spanned<u32>>,
    pub hello_frame_bytes_max: Option<Spanned<u32>>,
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
    pub journal_records_quarantined_max: Option<Spanned<u32>>,
    pub auth_block_after_failures: Option<Spanned<u32>>,
    pub auth_block_seconds: Option<Spanned<u64>>,
    pub auth_delay_ms_max: Option<Spanned<u64>>,
    pub key_max_age_days: Option<Spanned<u32>>,
}

/// `[persist]`: the Postgres record of the journal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPersist {
    pub database_url: Option<Spanned<String>>,
    pub migrate_on_start: Option<bool>,
    pub batch_rows_max: Option<Spanned<u32>>,
    pub batch_interval_ms: Option<Spanned<u64>>,
    pub retry_backoff_ms_min: Option<Spanned<u64>>,
    pub retry_backoff_ms_max: Option<Spanned<u64>>,
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub config_source: Option<super::ConfigSource>,
    pub config_reread_ms: Option<Spanned<u64>>,
}

/// `[admin]`: the admin HTTP API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub listen: Option<Spanned<String>>,
    #[serde(default)]
    pub token: Vec<RawAdminToken>,
    pub recent_skips_max: Option<Spanned<u32>>,
    pub request_bytes_max: Option<Spanned<u32>>,
}

/// `[[admin.token]]`: one bearer token, by the SHA-256 of its text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdminToken {
    pub name: Spanned<String>,
    pub token_sha256: Spanned<String>,
}

/// `idle` as written; the park backoff is a separate key.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawIdle {
    Spin,
    Yield,
    Park,
}

/// `role` as written.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawRole {
    Master,
    Slave,
}

/// One of `[[account]] previous_keys`: a replaced key, accepted until it expires.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPreviousKey {
    pub key_sha256: Spanned<String>,
    pub expires: Spanned<toml::value::Datetime>,
}

/// `[[account]]`. The risk keys are only valid on slave accounts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub login: Spanned<u64>,
    pub server: Spanned<String>,
    pub role: Spanned<RawRole>,
    pub key_sha256: Spanned<String>,
    pub enabled: Option<bool>,
    pub platform: Option<Spanned<String>>,
    pub previous_keys: Option<Vec<RawPreviousKey>>,
    pub allow_from: Option<Vec<Spanned<String>>>,
    pub key_created: Option<Spanned<toml::value::Datetime>>,
    pub key_expires: Option<Spanned<toml::value::Datetime>>,
    pub contracts: Option<Spanned<BTreeMap<String, Spanned<f64>>>>,
    pub mode: Option<Spanned<CopyMode>>,
    pub max_positions: Option<Spanned<u32>>,
    pub max_positions_per_symbol: Option<Spanned<u32>>,
    pub daily_loss_money: Option<Spanned<f64>>,
    pub daily_loss_percent: Option<Spanned<f64>>,
    pub daily_loss_basis: Option<Spanned<MoneyBasis>>,
    pub equity_floor: Option<Spanned<f64>>,
    pub on_limit: Option<Spanned<OnLimit>>,
}

/// `lot.mode` as written.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawLotMode {
    Fixed,
    Multiplier,
    BalanceRatio,
    EquityRatio,
    RiskPercent,
}

/// The inline table `lot = { mode = "...", value = ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLot {
    pub mode: Spanned<RawLotMode>,
    pub value: Spanned<f64>,
    pub basis: Option<Spanned<MoneyBasis>>,
    pub quote_to_account: Option<Spanned<f64>>,
}

/// `[[follow]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFollow {
    pub slave: Spanned<u64>,
    pub master: Spanned<u64>,
    pub lot: Option<Spanned<RawLot>>,
    pub below_min: Option<BelowMin>,
    pub max_lot: Option<Spanned<f64>>,
    pub copy_sl: Option<Spanned<bool>>,
    pub copy_tp: Option<bool>,
    pub copy_pending: Option<bool>,
    pub symbol_map: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub symbol_prefix: Option<Spanned<String>>,
    pub symbol_suffix: Option<Spanned<String>>,
    pub strip_prefix: Option<Spanned<String>>,
    pub strip_suffix: Option<Spanned<String>>,
    pub symbols_allow: Option<Spanned<Vec<String>>>,
    pub symbols_deny: Option<Spanned<Vec<String>>>,
    pub magic_allow: Option<Spanned<Vec<u64>>>,
    pub magic_deny: Option<Spanned<Vec<u64>>>,
    pub comment_contains: Option<Spanned<String>>,
    pub direction: Option<Direction>,
    pub reverse: Option<bool>,
    pub mode: Option<CopyMode>,
    pub hours_utc: Option<Spanned<String>>,
    pub days_utc: Option<Spanned<Vec<String>>>,
    pub ttl_ms: Option<Spanned<u64>>,
    pub max_dev_points: Option<Spanned<u32>>,
    pub reconcile_open_max_age_ms: Option<Spanned<u64>>,
    pub on_remove: Option<OnRemove>,
}
