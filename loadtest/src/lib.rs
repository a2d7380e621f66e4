//! The load-test crate's library: the parts its binaries share.
//!
//! # Layout
//! - [`baseline`]: the baseline bridge behind `loadtest-baseline`.
//!
//! # Invariants
//! - Nothing here speaks to tradebridge other than through the wire protocol.

pub mod baseline;
