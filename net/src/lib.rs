//! tradebridge net: the sockets. Thread-per-core glommio shards accept the
//! EAs' WebSocket connections on `/ea` and enforce the session rules of
//! `shared/PROTOCOL.md`; the `tradebridge` binary (`src/main.rs`) starts them
//! from a configuration file.
//!
//! # Layout
//! - [`shard`]: one pinned glommio executor per shard, each listening on the
//!   same port with SO_REUSEPORT; [`shard::Shared`] holds what all read.
//! - [`session`]: one connection: upgrade, `hello`, `welcome`, heartbeat,
//!   bad frames, rate limit, close codes.
//! - [`accounts`]: the configured accounts, key check, which session is live
//!   per login (newer wins, older closes 4004) and the per-account bucket.
//! - [`router`]: the routing core's thread (first cut): owns the journal,
//!   takes master events from the shard -> router rings, de-duplicates by
//!   per-master `seq`, journals, and returns acks once durable through the
//!   router -> shard rings.
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
//! - Nothing is routed to slaves yet (engine and copies not wired): the
//!   other data messages (`snapshot`, `result`, `state`, `symbols`) are
//!   answered with `error` `internal` rather than pretending to handle them.

pub mod accounts;
pub mod limits;
pub mod router;
pub mod session;
pub mod shard;
