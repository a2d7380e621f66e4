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
//!   persister alone (Relaxed).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared between the router, the persister and the metrics endpoint.
#[derive(Debug, Default)]
pub struct PersistFeed {
    /// Highest journal seq the router holds durably.
    pub durable_seq: AtomicU64,
    /// Highest journal seq committed to Postgres (with `persist_progress`).
    pub persisted_seq: AtomicU64,
    /// Journal records durable but not yet in Postgres.
    pub lag_records: AtomicU64,
    /// Age, in ms, of the oldest durable record not yet in Postgres (by the
    /// bridge clock it was received at); 0 when none waits.
    pub lag_ms: AtomicU64,
    /// Rows committed, all tables; only grows.
    pub rows_written: AtomicU64,
    /// Transactions committed; only grows.
    pub batches_written: AtomicU64,
    /// Failed attempts (connection lost, server refused); only grows.
    pub failures: AtomicU64,
    /// Rows Postgres refused, written to `dead_letters`; only grows.
    pub dead_letters: AtomicU64,
    /// Journal records released before they were persisted; only grows.
    pub gap_records: AtomicU64,
    /// True while the persister has a working connection.
    pub connected: AtomicBool,
}

impl PersistFeed {
    /// The router: records up to `seq` are durable.
    pub fn publish_durable(&self, seq: u64) {
        self.durable_seq.fetch_max(seq, Ordering::Release);
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
            ("tradebridge_persist_lag_records", "Journal records durable but not yet in Postgres.", load(&self.lag_records)),
            ("tradebridge_persist_persisted_journal_seq", "Highest journal seq committed to Postgres.", self.persisted()),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let lag_seconds = load(&self.lag_ms) as f64 / 1_000.0;
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
            ("tradebridge_persist_gap_records_total", "Journal records released before the persister read them (see persist_gaps).", &self.gap_records),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", load(value));
        }
    }
}
