//! What the router and the persister tell each other, through atomics only:
//! the router never waits on the persister, nor the persister on the router.
//!
//! ```text
//!   router ──durable_seq──▶ persister     (what it may read)
//!   router ◀─persisted_seq── persister    (what the journal must keep)
//! ```
//!
//! # Invariants
//! - `durable_seq` only grows; the router stores it (Release) after each
//!   flush or tick, after the records it covers are in the journal's files,
//!   and the persister loads it (Acquire) before reading them.
//! - `persisted_seq` only grows; the persister stores it (Release) after
//!   the Postgres transaction covering it committed.
//! - The rest are counters and gauges for `/metrics`, written by the
//!   persister alone (Relaxed), but for `overruns`, which the router counts
//!   when it releases what the persister has not written.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared between the router, the persister and the metrics endpoint.
#[derive(Debug, Default)]
pub struct PersistFeed {
    /// Highest journal seq the router holds durably.
    pub durable_seq: AtomicU64,
    /// Highest journal seq committed to Postgres (with `persist_progress`).
    pub persisted_seq: AtomicU64,
    /// Bridge receive time (ms since the epoch) of the oldest record read
    /// and not yet committed; 0 when none is known to wait. The lag in
    /// seconds is its age, taken when the metrics are rendered, so it grows
    /// while Postgres is away.
    pub oldest_pending_ms: AtomicU64,
    /// Rows committed, all tables; only grows.
    pub rows_written: AtomicU64,
    /// Transactions committed; only grows.
    pub batches_written: AtomicU64,
    /// Failed attempts (connection lost, server refused); only grows.
    pub failures: AtomicU64,
    /// Rows Postgres refused, written to `dead_letters`; only grows.
    pub dead_letters: AtomicU64,
    /// Results a follower sent again for a copy already answered, dropped
    /// (the first is kept); only grows.
    pub duplicate_results: AtomicU64,
    /// Journal records released before they were persisted, as the
    /// persister found them; only grows.
    pub gap_records: AtomicU64,
    /// Times the router released journal segments the persister had not
    /// written (the journal neared `journal_bytes_max`); only grows. Set at
    /// once, while Postgres may still be away: the alarm to page on.
    pub overruns: AtomicU64,
    /// True while the persister has a working connection.
    pub connected: AtomicBool,
}

/// The wall clock now, in milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

impl PersistFeed {
    /// The router (the only writer): records up to `seq` are durable. A
    /// load and, when it moved, a store: no read-modify-write per pass.
    pub fn publish_durable(&self, seq: u64) {
        if seq > self.durable_seq.load(Ordering::Relaxed) {
            self.durable_seq.store(seq, Ordering::Release);
        }
    }

    /// Journal records durable but not yet in Postgres.
    pub fn lag_records(&self) -> u64 {
        self.durable().saturating_sub(self.persisted())
    }

    /// Seconds since the oldest record waiting was received; 0 when none waits.
    pub fn lag_seconds(&self, now_ms: u64) -> f64 {
        let oldest = self.oldest_pending_ms.load(Ordering::Relaxed);
        if oldest == 0 || self.lag_records() == 0 {
            return 0.0;
        }
        now_ms.saturating_sub(oldest) as f64 / 1_000.0
    }

    /// The persister, unable to reach Postgres while it holds no batch:
    /// records waiting are dated no later than `now_ms` (wall clock), so
    /// `lag_seconds` grows through an outage that began while it was idle.
    /// An earlier mark (a batch's first record) is kept.
    pub fn mark_waiting_since(&self, now_ms: u64) {
        let _ = self.oldest_pending_ms.compare_exchange(0, now_ms, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The persister: records up to `seq` are committed.
    pub fn publish_persisted(&self, seq: u64) {
        self.persisted_seq.fetch_max(seq, Ordering::Release);
    }

    pub fn durable(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    pub fn persisted(&self) -> u64 {
        self.persisted_seq.load(Ordering::Acquire)
    }

    /// The Prometheus text of these figures.
    pub fn render(&self, text: &mut String) {
        use std::fmt::Write as _;
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        for (name, help, value) in [
            ("tradebridge_persist_lag_records", "Journal records durable but not yet in Postgres.", self.lag_records()),
            ("tradebridge_persist_persisted_journal_seq", "Highest journal seq committed to Postgres.", self.persisted()),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let now_ms = unix_ms();
        let lag_seconds = self.lag_seconds(now_ms);
        let _ = writeln!(
            text,
            "# HELP tradebridge_persist_lag_seconds Age of the oldest durable journal record not yet in Postgres.\n# TYPE tradebridge_persist_lag_seconds gauge\ntradebridge_persist_lag_seconds {lag_seconds}"
        );
        let connected = u8::from(self.connected.load(Ordering::Relaxed));
        let _ = writeln!(
            text,
            "# HELP tradebridge_persist_connected 1 while the persister has a working Postgres connection.\n# TYPE tradebridge_persist_connected gauge\ntradebridge_persist_connected {connected}"
        );
        for (name, help, value) in [
            ("tradebridge_persist_rows_total", "Rows committed to Postgres.", &self.rows_written),
            ("tradebridge_persist_batches_total", "Postgres transactions committed by the persister.", &self.batches_written),
            ("tradebridge_persist_failures_total", "Persister attempts that failed (connection lost, server refused); each is retried.", &self.failures),
            ("tradebridge_persist_dead_letters_total", "Rows Postgres refused, kept in dead_letters with the reason.", &self.dead_letters),
            ("tradebridge_persist_duplicate_results_total", "Results a follower sent again for a copy already answered; the first is kept.", &self.duplicate_results),
            ("tradebridge_persist_gap_records_total", "Journal records released before the persister read them (see persist_gaps).", &self.gap_records),
            ("tradebridge_persist_journal_overruns_total", "Journal releases that let go of records not yet in Postgres, near journal_bytes_max.", &self.overruns),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", load(value));
        }
    }
}
