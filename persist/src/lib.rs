//! tradebridge persist: the only code that speaks to Postgres. It keeps a
//! queryable record of everything the bridge journals, off the hot path.
//!
//! # Layout
//! - [`migrate`]: the versioned SQL migrations of `persist/migrations/`,
//!   embedded in the binary, applied in order and recorded in
//!   `schema_migrations` (`tradebridge migrate --config FILE`).
//! - [`config_source`]: accounts, keys and follows kept in Postgres
//!   (`config_accounts`, `config_follows`): read, edited with their
//!   `audit_log` row, and watched (LISTEN/NOTIFY and a periodic re-read).
//! - [`db`]: connecting with the `[persist]` settings; errors that never
//!   repeat the connection string.
//! - [`testing`]: a throwaway Postgres cluster on a free loopback port,
//!   started from the installed binaries, for the tests that need a real
//!   server (`initdb` + `pg_ctl`, removed when dropped).
//!
//! # Invariants
//! - Nothing here is ever called from the hot path: the bridge's router
//!   and shards never wait for Postgres, and run exactly as before without
//!   `[persist]`.
//! - No connection string (it may hold a password) appears in a log line,
//!   an error or a `Debug` output.

pub mod config_source;
pub mod db;
pub mod feed;
pub mod migrate;
pub mod numeric;
pub mod persister;
pub mod rows;
pub mod writer;
pub mod testing;
