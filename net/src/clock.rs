//! The wall clock, for what the bridge dates (audit lines, skips, key
//! expiries, session times); latency uses the monotonic clock of
//! `context::Shared`.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock now, in milliseconds since the Unix epoch (0 before it).
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}
