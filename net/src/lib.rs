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
//! - [`limits`]: the token bucket and the one-minute bad-frame window, pure
//!   and clock-free.
//!
//! # Invariants
//! - No API key is logged or stored in clear; keys are compared as SHA-256
//!   digests in constant time.
//! - Every per-connection loop yields to the executor, and every wait of a
//!   connection is bounded by a timeout from the configuration.
//! - A connection never acks or routes what the bridge does not hold: the
//!   data path (journal, engine, copies) is not wired yet, so data messages
//!   are answered with `error` `internal`.

pub mod accounts;
pub mod limits;
pub mod session;
pub mod shard;
