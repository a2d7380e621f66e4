//! The EA wire protocol v1 (`shared/PROTOCOL.md`): typed messages and the
//! JSON codec in both directions. The choices PROTOCOL.md leaves open
//! (required fields, defaults, number grammar, limits) are written down in
//! `core/PROTOCOL-NOTES.md`.
//!
//! # Layout
//! - `message`: the typed messages and the wire names of their enums.
//! - [`close_code`]: the WebSocket close codes PROTOCOL.md and RFC 6455 use.
//! - `error`: [`ProtocolError`], why a frame was refused.
//! - `json`: a strict RFC 8259 reader (grammar only, depth bounded).
//! - `fields`: field names and typed field readers whose errors name the field.
//! - `parse`: [`parse`], one frame to one [`Message`].
//! - `write`: [`write`], one [`Message`] to compact JSON.
//!
//! # Invariants
//! - [`parse`] never panics, whatever the bytes.
//! - For every `m` that [`parse`] returns, `parse(write(m)) == Ok(m)`, with
//!   floats equal bit for bit and u64s never passed through a double.

pub mod close_code;
pub mod error;
mod fields;
mod json;
pub mod message;
mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use error::{Excerpt, FieldPath, ProtocolError, EXCERPT_BYTES_MAX};
pub use json::DEPTH_MAX;
pub use message::*;
pub use parse::{
    parse, FRAME_BYTES_MAX, POSITIONS_MAX, SYMBOLS_MAX, SYMBOL_CONTRACT_DEFAULT,
    SYMBOL_DIGITS_DEFAULT,
};
pub use write::write;
