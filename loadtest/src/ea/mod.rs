//! Simulated EAs: Monitors (masters) and Executors (slaves) that speak
//! PROTOCOL.md to a real bridge over real sockets, many per client thread.
//!
//! # Layout
//! - [`link`]: connect, `hello`/`welcome`, send and receive.
//! - [`timer`]: a microsecond-precise sleep for the send schedule.
//! - [`shared`]: what every EA of a run shares (clock, plan, tables, counters).
//! - [`monitor`]: the Monitor: schedule, outbox, acks, snapshot.
//! - [`executor`]: the Executor: state, copies, results, `last_seq`.
//! - [`Link`]: one EA's connection state across reconnects (socket,
//!   connection attempt, backoff, heartbeat and churn timers), shared by
//!   both EAs; [`Churn`], [`Rng`], [`Reconnect`]: its parts.
//!
//! # Invariants
//! - An EA task owns its socket; nothing else writes to it.
//! - Every EA sends a frame at least every `hb_ms` while connected and not
//!   deliberately stalled.

pub mod executor;
pub mod link;
pub mod monitor;
pub mod shared;
pub mod timer;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tradebridge_core::protocol::{Message, Welcome};

use self::link::Socket;

/// First wait before reconnecting after a lost session; doubles per failed
/// attempt up to [`RECONNECT_BACKOFF_MAX`].
pub const RECONNECT_BACKOFF_FIRST: Duration = Duration::from_millis(50);

/// Longest wait between reconnect attempts: a real EA retries within a
/// couple of seconds, and a drain must not sit out long backoffs.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Longest wait for the close handshake when an EA leaves at the end.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Random disconnects of one EA.
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    /// Mean time between this EA's disconnects (exponentially distributed).
    pub mean_ms: u64,
    /// A reconnect waits a uniform 0..=this after the disconnect.
    pub reconnect_delay_ms_max: u64,
    /// Seed of this EA's random stream (the run's seed mixed with the login).
    pub seed: u64,
}

/// splitmix64: small, fast and good enough for disconnect timings; seeded
/// so a run's churn can be repeated.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in 0..=max.
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (max + 1)
    }

    /// Exponentially distributed with mean `mean_ms`, capped at 20 means.
    pub fn exponential_ms(&mut self, mean_ms: u64) -> u64 {
        let uniform = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let draw = -(1.0 - uniform).ln() * mean_ms as f64;
        draw.min(20.0 * mean_ms as f64) as u64
    }
}

impl Churn {
    /// When the next disconnect after `now` happens.
    pub fn next_disconnect(&self, rng: &mut Rng, now: Instant) -> Instant {
        now + Duration::from_millis(rng.exponential_ms(self.mean_ms).max(1))
    }
}

/// A connection attempt in progress (after an optional delay).
pub type Reconnect = Pin<Box<dyn Future<Output = anyhow::Result<(Socket, Welcome)>> + Send>>;

/// Connects to `url` with `hello` after waiting `delay`.
pub fn reconnect(url: String, hello: Message, delay: Duration) -> Reconnect {
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        link::connect(&url, &hello).await
    })
}

/// The backoff before attempt `failures + 1`.
pub fn backoff(failures: u32) -> Duration {
    RECONNECT_BACKOFF_FIRST.saturating_mul(1 << failures.min(10)).min(RECONNECT_BACKOFF_MAX)
}

/// Ends a session on purpose: half the time with a close frame, half the
/// time by dropping the TCP connection as a crashed terminal would.
pub async fn disconnect(mut socket: Socket, rng: &mut Rng) {
    if rng.next_u64().is_multiple_of(2) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "loadtest churn".into() };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(Some(frame))).await;
    }
    drop(socket);
}

/// One EA's connection across reconnects.
pub struct Link {
    /// The bridge's URL.
    url: String,
    /// The live session, if any.
    pub socket: Option<Socket>,
    /// A connection attempt in progress, if any (never both).
    pub connecting: Option<Reconnect>,
    /// Failed attempts since the last welcome (the backoff grows with it).
    failures: u32,
    /// Heartbeat interval from the last welcome.
    hb: Duration,
    /// When the next ping is due.
    pub ping_at: Instant,
    /// When the next churn disconnect is due (only while trading).
    pub churn_at: Option<Instant>,
    churn: Option<Churn>,
    rng: Rng,
}

impl Link {
    /// A link that starts connecting at once with `hello`.
    pub fn new(url: String, hello: Message, churn: Option<Churn>) -> Link {
        let connecting = Some(reconnect(url.clone(), hello, Duration::ZERO));
        let rng = Rng::new(churn.map_or(0, |churn| churn.seed));
        Link { url, socket: None, connecting, failures: 0, hb: Duration::from_secs(5), ping_at: Instant::now(), churn_at: None, churn, rng }
    }

    /// Draws the next churn disconnect while trading on a live session;
    /// clears it once trading is over.
    pub fn arm_churn(&mut self, trading: bool) {
        if !trading {
            self.churn_at = None;
        } else if let (Some(churn), true, None) = (self.churn, self.socket.is_some(), self.churn_at) {
            self.churn_at = Some(churn.next_disconnect(&mut self.rng, Instant::now()));
        }
    }

    /// A welcome arrived on `socket`.
    pub fn up(&mut self, socket: Socket, welcome: &Welcome) {
        self.failures = 0;
        self.hb = Duration::from_millis(welcome.hb_ms.max(100));
        self.ping_at = Instant::now() + self.hb;
        self.socket = Some(socket);
    }

    /// The session ended (or could not start): reconnect at once.
    pub fn lose(&mut self, hello: Message) {
        self.socket = None;
        self.churn_at = None;
        self.connecting = Some(reconnect(self.url.clone(), hello, backoff(0)));
    }

    /// A connection attempt failed: retry after a growing backoff.
    pub fn failed(&mut self, hello: Message) {
        self.failures += 1;
        self.connecting = Some(reconnect(self.url.clone(), hello, backoff(self.failures)));
    }

    /// Sends a ping and schedules the next; `Err` when the send failed.
    pub async fn ping(&mut self) -> Result<(), ()> {
        self.ping_at = Instant::now() + self.hb;
        let socket = self.socket.as_mut().ok_or(())?;
        socket.send(link::encode(&Message::Ping)).await.map_err(|_| ())
    }

    /// Ends the session on purpose (churn) and reconnects after a random delay.
    pub async fn churn_disconnect(&mut self, hello: Message) {
        let churn = self.churn.expect("churn_at is only set with churn");
        if let Some(socket) = self.socket.take() {
            disconnect(socket, &mut self.rng).await;
        }
        self.churn_at = None;
        let delay = Duration::from_millis(self.rng.up_to(churn.reconnect_delay_ms_max));
        self.connecting = Some(reconnect(self.url.clone(), hello, delay));
    }
}

/// Leaves at the end of a run with a close frame, bounded by CLOSE_TIMEOUT.
pub async fn leave(socket: Option<Socket>) {
    if let Some(mut socket) = socket {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "loadtest done".into() };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(Some(frame))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_repeatable_and_exponential_draws_average_near_the_mean() {
        // Shows: the same seed gives the same stream, and 20000 exponential draws of mean 100 ms average within 5 % of it.
        let (mut first, mut second) = (Rng::new(7), Rng::new(7));
        assert_eq!((0..5).map(|_| first.next_u64()).collect::<Vec<_>>(), (0..5).map(|_| second.next_u64()).collect::<Vec<_>>());
        let draws = 20_000;
        let total: u64 = (0..draws).map(|_| first.exponential_ms(100)).sum();
        let mean = total as f64 / f64::from(draws);
        assert!((95.0..=105.0).contains(&mean), "mean {mean}");
        assert!((0..1000).all(|_| first.up_to(3) <= 3));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        // Shows: reconnect waits grow 50, 100, 200 ms ... and stop at one second.
        assert_eq!(backoff(0), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(30), RECONNECT_BACKOFF_MAX);
    }
}
