//! tradebridge core: everything about copying trades that needs no socket and
//! no clock. Time is always passed in by the caller, so every behaviour here
//! is deterministic and tested with injected instants.
//!
//! # Layout
//! - [`protocol`]: typed messages of `shared/PROTOCOL.md` v1 and their JSON
//!   codec (parse and write, both directions).
//! - [`journal`]: append-only, memory-mapped log of events, copies and
//!   results with crash recovery; the bridge's single source of truth.
//! - [`checkpoint`]: checkpoint files of the routing state (header,
//!   checksum, durable write), so old journal segments can be released.
//! - [`ring`]: bounded single-producer single-consumer ring of variable-length
//!   records over a memory mapping (anonymous or a `/dev/shm` file).
//! - [`record`]: rkyv trade records carried by the rings (master events,
//!   copies, results, acks) and their conversions to the protocol types.
//! - [`hgrm`]: HdrHistogram's `.hgrm` percentile text, for reports.
//! - [`config`]: the TOML configuration, validated, with line-and-key errors.
//! - [`engine`]: the copy engine: follow rules, lot sizing, the position
//!   ledger and reconciliation, from master events to per-follower decisions.
//!
//! # Invariants
//! - No function in this crate opens a socket or reads a clock.
//! - Wire and record integers are `u32`/`u64`, never `usize`.

pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod hgrm;
pub mod journal;
pub mod protocol;
pub mod record;
pub mod ring;
