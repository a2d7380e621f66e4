//! tradebridge core: everything about copying trades that needs no socket and
//! no clock. Time is always passed in by the caller, so every behaviour here
//! is deterministic and tested with injected instants.
//!
//! # Layout
//! - [`protocol`]: typed messages of `shared/PROTOCOL.md` v1 and their JSON
//!   codec (parse and write, both directions).
//! - [`config`]: the TOML configuration, validated, with line-and-key errors.
//! - [`engine`]: the copy engine: follow rules, lot sizing, the position
//!   ledger and reconciliation, from master events to per-follower decisions.
//!
//! # Invariants
//! - No function in this crate opens a socket or reads a clock.
//! - Wire and record integers are `u32`/`u64`, never `usize`.

pub mod config;
pub mod engine;
pub mod protocol;
