//! tradebridge net: the sockets. Thread-per-core glommio shards accept the
//! EAs' WebSocket connections on `/ea` and enforce the session rules of
//! `shared/PROTOCOL.md`; the routing core journals and routes; the
//! `tradebridge` binary (`src/main.rs`) starts them from a configuration
//! file and drains them on SIGTERM.
//!
//! # Layout
//! - [`shard`]: one pinned glommio executor per shard, each listening on the
//!   same port with SO_REUSEPORT, running the sessions and the pump that
//!   hands them the router's acks and copies.
//! - [`session`]: one connection: upgrade, `hello`, `welcome`, heartbeat,
//!   bad frames, rate limit, close codes.
//! - [`context`]: what sessions work with: [`context::Shared`] (what all
//!   shards read) and [`context::ShardContext`] (one shard's own).
//! - [`links`]: what shards and router hand each other: the rings and
//!   doorbells, the record kinds, connection ids.
//! - [`accounts`]: the configured accounts, key check, which session is live
//!   per login (newer wins, older closes 4004) and the per-account bucket.
//! - [`router`]: the routing core, a task on shard 0's executor
//!   (`routing = "inline"`, the default on up to four cores) or a thread of
//!   its own (`"thread"`): owns the journal and the engine; takes master events and slave results from the
//!   shard -> router rings (snapshots, states and symbols too, in order),
//!   de-duplicates events by per-master `seq`, journals everything, gives
//!   copies per-slave seqs, and returns acks and copies once durable through
//!   the router -> shard rings. Rebuilds all of it at start from the newest
//!   checkpoint and the journal above it.
//! - [`checkpoint`]: the router's state as of one journal seq, written by a
//!   background thread, so old journal segments are released and a restart
//!   replays only the journal above it.
//! - [`doorbell`]: how a producer wakes the router or a shard's pump that
//!   sleeps on empty rings (thread unpark, or a byte on a socket pair).
//! - [`metrics`]: counters and HDR latency histograms per stage, served as
//!   Prometheus text on `GET /metrics` at `server.metrics_listen`.
//! - [`api`]: the admin HTTP API (`[admin]`), on its own thread and tokio
//!   runtime: the CLI's account, key and follow commands, and read views
//!   (sessions, a follower's copies against its masters' positions, skips).
//! - [`source`]: where accounts, keys and follows come from (the file, or
//!   Postgres's `config_accounts` and `config_follows`), one validation.
//! - [`limits`]: the token bucket and the one-minute bad-frame window, pure
//!   and clock-free.
//!
//! # Invariants
//! - No API key is logged or stored in clear; keys are compared as SHA-256
//!   digests in constant time.
//! - Every per-connection loop yields to the executor, and every wait of a
//!   connection is bounded by a timeout from the configuration.
//! - A master event is acked only once the journal holds it durably; one
//!   at or below the stored `seq` is acked again and never journaled twice.
//! - A copy is sent only once journaled durably, with the slave's previous
//!   `seq` + 1; a reconnecting slave gets every kept copy above its
//!   `last_seq` that has not expired, each once per connection.
//! - SIGTERM or SIGINT drains: no new connection, every session closed with
//!   1001 (bounded wait), the journal flushed, exit code 0.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod audit;
pub mod checkpoint;
pub mod clock;
pub mod context;
pub mod doorbell;
pub mod front_door;
pub mod hot_thread;
pub mod journal_tool;
pub mod limits;
pub mod links;
pub mod metrics;
pub mod panic_guard;
pub mod reload;
pub mod router;
pub mod session;
pub mod shard;
pub mod source;
pub mod ws;
