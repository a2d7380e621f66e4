//! Per-account and per-connection limits that the session rules enforce:
//! the token bucket behind `rate_limited` (close 4003) and the sliding
//! one-minute window of bad frames behind close 4002.
//!
//! # Layout
//! - [`TokenBucket`]: frames an account may send, refilled at a steady rate.
//! - [`BadFrameWindow`]: instants of the recent bad frames of one connection.
//!
//! # Invariants
//! - Both take time as `now_ms` from the caller and never read a clock, so
//!   the tests drive them with injected instants.
//! - Neither grows: the bucket is two integers and the window holds at most
//!   `bad_frames_max` instants.

use std::collections::VecDeque;

/// One token in thousandths, so that a rate of a few frames per second
/// refills smoothly from whole milliseconds without floating point.
const MILLI_TOKENS_PER_TOKEN: u64 = 1_000;

/// The window over which bad frames are counted (PROTOCOL.md: "10 bad frames
/// in a minute").
pub const BAD_FRAME_WINDOW_MS: u64 = 60_000;

/// A token bucket: `burst` tokens at most, refilled at `per_second`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens available now, in thousandths; decreases by one token per frame
    /// taken and grows with time up to `capacity_milli`.
    tokens_milli: u64,
    /// The bucket size (`rate_limit_burst`), in thousandths; fixed.
    capacity_milli: u64,
    /// Refill rate (`rate_limit_per_second`) in thousandths of a token per
    /// millisecond, which equals tokens per second; fixed.
    refill_milli_per_ms: u64,
    /// The instant of the last refill; only moves forward.
    refilled_ms: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_second`, starting at
    /// `now_ms`.
    pub fn new(per_second: u32, burst: u32, now_ms: u64) -> TokenBucket {
        let capacity_milli = u64::from(burst) * MILLI_TOKENS_PER_TOKEN;
        TokenBucket {
            tokens_milli: capacity_milli,
            capacity_milli,
            refill_milli_per_ms: u64::from(per_second),
            refilled_ms: now_ms,
        }
    }

    /// Takes one token at `now_ms`; false when the bucket is empty (the
    /// frame is over the limit). A clock that goes backwards refills nothing.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed_ms = now_ms.saturating_sub(self.refilled_ms);
        let refill_milli = elapsed_ms.saturating_mul(self.refill_milli_per_ms);
        self.tokens_milli = self.tokens_milli.saturating_add(refill_milli).min(self.capacity_milli);
        self.refilled_ms = self.refilled_ms.max(now_ms);
        debug_assert!(self.tokens_milli <= self.capacity_milli);
        if self.tokens_milli < MILLI_TOKENS_PER_TOKEN {
            return false;
        }
        self.tokens_milli -= MILLI_TOKENS_PER_TOKEN;
        true
    }
}

/// The instants of one connection's bad frames within the last minute.
#[derive(Clone, Debug)]
pub struct BadFrameWindow {
    /// Instants of bad frames not older than [`BAD_FRAME_WINDOW_MS`], oldest
    /// first; at most `bad_frames_max` of them.
    instants_ms: VecDeque<u64>,
    /// The bad frame count that closes the connection
    /// (`bad_frames_max_per_minute`); fixed, at least 1.
    bad_frames_max: u32,
}

impl BadFrameWindow {
    /// An empty window that trips at the `bad_frames_max`-th bad frame in a
    /// minute (0 is treated as 1: the first bad frame closes).
    pub fn new(bad_frames_max: u32) -> BadFrameWindow {
        let bad_frames_max = bad_frames_max.max(1);
        BadFrameWindow { instants_ms: VecDeque::new(), bad_frames_max }
    }

    /// Records a bad frame at `now_ms`; true when it is the
    /// `bad_frames_max`-th within the last minute, so the connection closes.
    pub fn record(&mut self, now_ms: u64) -> bool {
        while let Some(&oldest_ms) = self.instants_ms.front() {
            if now_ms.saturating_sub(oldest_ms) < BAD_FRAME_WINDOW_MS {
                break;
            }
            self.instants_ms.pop_front();
        }
        if self.instants_ms.len() + 1 >= self.bad_frames_max as usize {
            return true;
        }
        self.instants_ms.push_back(now_ms);
        debug_assert!(self.instants_ms.len() < self.bad_frames_max as usize);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A full bucket allows exactly `burst` frames at one instant, then refuses.
    #[test]
    fn bucket_allows_burst_then_refuses() {
        let mut bucket = TokenBucket::new(10, 3, 1_000);
        assert!(bucket.take(1_000));
        assert!(bucket.take(1_000));
        assert!(bucket.take(1_000));
        assert!(!bucket.take(1_000));
    }

    // An empty bucket refills at the configured rate: 10 per second is one
    // token every 100 ms, and never more than the burst.
    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let mut bucket = TokenBucket::new(10, 2, 0);
        assert!(bucket.take(0) && bucket.take(0));
        assert!(!bucket.take(99));
        assert!(bucket.take(100));
        assert!(!bucket.take(100));
        assert!(bucket.take(100_000) && bucket.take(100_000));
        assert!(!bucket.take(100_000), "refill is capped at the burst");
    }

    // A clock that goes backwards neither refills nor panics.
    #[test]
    fn bucket_ignores_backwards_clock() {
        let mut bucket = TokenBucket::new(1_000, 1, 5_000);
        assert!(bucket.take(5_000));
        assert!(!bucket.take(10));
    }

    // The tenth bad frame within a minute trips the window, the ninth does not.
    #[test]
    fn window_trips_at_tenth_bad_frame_in_a_minute() {
        let mut window = BadFrameWindow::new(10);
        for index in 0..9u64 {
            assert!(!window.record(index * 1_000), "bad frame {} must not trip", index + 1);
        }
        assert!(window.record(9_000));
    }

    // Bad frames older than a minute no longer count.
    #[test]
    fn window_forgets_frames_older_than_a_minute() {
        let mut window = BadFrameWindow::new(3);
        assert!(!window.record(0));
        assert!(!window.record(1));
        assert!(!window.record(60_001), "the frames at 0 and 1 ms are out of the window");
        assert!(!window.record(60_002));
        assert!(window.record(60_003));
    }
}
