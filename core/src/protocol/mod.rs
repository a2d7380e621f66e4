//! The EA wire protocol v1 (`shared/PROTOCOL.md`): typed messages and the
//! JSON codec in both directions.

pub mod message;

pub use message::*;
