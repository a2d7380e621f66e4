//! Operational metrics: counters and HDR latency histograms per stage, and a
//! small blocking HTTP endpoint that serves them as Prometheus text on
//! `GET /metrics` at `server.metrics_listen`.
//!
//! # Layout
//! - [`Metrics`]: the counters (atomics) and histograms (each behind its own
//!   mutex: recorded by one thread at a time in practice, so uncontended).
//! - [`Stage`]: the measured stages of a trade's path.
//! - [`serve`]: the endpoint's thread body; off the hot path.
//!
//! # Invariants
//! - Latencies are monotonic nanoseconds from one origin shared by every
//!   thread ([`crate::context::Shared::now_ns`]), recorded in microseconds at
//!   3 significant figures; values above [`LATENCY_US_MAX`] are clamped.
//! - The endpoint reads at most [`REQUEST_BYTES_MAX`] of a request and waits
//!   at most [`REQUEST_TIMEOUT_MS`] for it, so a slow client cannot hold it.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a histogram holds: one minute, far above anything but a
/// stalled machine; higher values are clamped to it.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// Significant figures of every histogram (the house benchmark standard).
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// Bytes of a request the endpoint reads; a `GET /metrics` line and headers
/// fit many times over.
pub const REQUEST_BYTES_MAX: usize = 4_096;

/// How long the endpoint waits for a request or for the reply to drain.
pub const REQUEST_TIMEOUT_MS: u64 = 2_000;

/// The measured stages of a trade's path through the bridge. Together they
/// split the bridge-internal latency: frame received -> routed -> written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Master event frame received by its shard -> the router has journaled
    /// it and issued every copy it causes (not yet durable).
    FrameToRouted,
    /// Master event received by its shard -> its journal record durable and
    /// the `ack` handed to the shard.
    EventToDurable,
    /// Copy issued by the router -> read from the ring by the slave's shard
    /// (the wait for durability and the hop to the shard, its wake-up
    /// included): `routed_to_written` less the socket writes before it.
    RoutedToShard,
    /// Copy issued by the router -> written to the slave's socket (includes
    /// the wait for durability and the hop to the slave's shard).
    RoutedToWritten,
    /// Master event received -> the `copy` it caused written to a live slave
    /// connection's socket: the whole bridge-internal latency.
    EventToCopySent,
    /// Copy written to the slave's socket -> the slave's `result` for it
    /// received (the Executor's time plus the network both ways).
    CopyToResult,
}

impl Stage {
    /// Every stage, in path order.
    pub const ALL: [Stage; STAGES_COUNT] =
        [Stage::FrameToRouted, Stage::EventToDurable, Stage::RoutedToShard, Stage::RoutedToWritten, Stage::EventToCopySent, Stage::CopyToResult];

    /// The stage's name in metrics labels and `.hgrm` file names.
    pub fn name(self) -> &'static str {
        match self {
            Stage::FrameToRouted => "frame_to_routed",
            Stage::EventToDurable => "event_to_durable",
            Stage::RoutedToShard => "routed_to_shard",
            Stage::RoutedToWritten => "routed_to_written",
            Stage::EventToCopySent => "event_to_copy_sent",
            Stage::CopyToResult => "copy_to_result",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Number of [`Stage`]s.
pub const STAGES_COUNT: usize = 6;

/// Counters and histograms shared by the shards, the router and the
/// endpoint.
pub struct Metrics {
    /// One histogram per [`Stage`], in microseconds.
    histograms: [Mutex<Histogram<u64>>; STAGES_COUNT],
    /// Master events journaled (duplicates excluded); only grows.
    pub events_journaled: AtomicU64,
    /// Duplicate master events acked again; only grows.
    pub events_duplicate: AtomicU64,
    /// Copies journaled; only grows.
    pub copies_journaled: AtomicU64,
    /// Copies written to a slave socket (live or replay); only grows.
    pub copies_sent: AtomicU64,
    /// Frames that found a shard -> router ring full and waited for room;
    /// only grows.
    pub ring_full: AtomicU64,
    /// Frames refused because the shard -> router ring stayed full while
    /// the router read nothing from it for 3 x `hb_ms` (stuck, not busy);
    /// only grows.
    pub ring_full_refused: AtomicU64,
    /// Session starts and ends not recorded for Postgres because the shard
    /// -> router ring was full at that moment; only grows.
    pub session_records_dropped: AtomicU64,
    /// Acks or copies dropped because a connection's outbox was full; only grows.
    pub outbox_full: AtomicU64,
    /// Checkpoints written (after which journal segments are released);
    /// only grows.
    pub checkpoints_written: AtomicU64,
    /// Journal records the replay at start could not apply and set aside.
    pub journal_records_quarantined: AtomicU64,
    /// Slaves whose terminal had finished copy seqs above the journal's,
    /// whose numbering moved above them; only grows.
    pub copy_seq_rebases: AtomicU64,
    /// Journal flushes to storage (each covers a group of records); set by
    /// the router from the journal's count.
    pub journal_flushes: AtomicU64,
    /// Bytes of journal segments held; set by the router when it changes.
    pub journal_bytes: AtomicU64,
    /// `journal_bytes_max`; set by the router.
    pub journal_bytes_max: AtomicU64,
    /// The Postgres persister's figures, when `[persist]` is set.
    pub persist: std::sync::OnceLock<std::sync::Arc<tradebridge_persist::feed::PersistFeed>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let histogram = || {
            let histogram = Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_FIGURES)
                .expect("bounds 1..LATENCY_US_MAX at 3 figures are valid");
            Mutex::new(histogram)
        };
        Metrics {
            histograms: std::array::from_fn(|_| histogram()),
            events_journaled: AtomicU64::new(0),
            events_duplicate: AtomicU64::new(0),
            copies_journaled: AtomicU64::new(0),
            copies_sent: AtomicU64::new(0),
            ring_full: AtomicU64::new(0),
            ring_full_refused: AtomicU64::new(0),
            session_records_dropped: AtomicU64::new(0),
            outbox_full: AtomicU64::new(0),
            checkpoints_written: AtomicU64::new(0),
            journal_records_quarantined: AtomicU64::new(0),
            copy_seq_rebases: AtomicU64::new(0),
            journal_flushes: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
            journal_bytes_max: AtomicU64::new(0),
            persist: std::sync::OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Records one latency of `stage`, from `start_ns` to `end_ns`.
    pub fn record(&self, stage: Stage, start_ns: u64, end_ns: u64) {
        let latency_us = (end_ns.saturating_sub(start_ns) / 1_000).clamp(1, LATENCY_US_MAX);
        let mut histogram = self.histograms[stage.index()].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Clamped into the histogram's bounds above, so recording cannot fail.
        let _ = histogram.record(latency_us);
    }

    /// Adds one to a counter.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of everything, plus the open
    /// connection count given by the caller.
    pub fn render(&self, connections_open: u32) -> String {
        let mut text = String::with_capacity(2_048);
        let counters = [
            ("tradebridge_events_journaled_total", "Master events journaled.", &self.events_journaled),
            ("tradebridge_events_duplicate_total", "Duplicate master events acked again.", &self.events_duplicate),
            ("tradebridge_copies_journaled_total", "Copies journaled.", &self.copies_journaled),
            ("tradebridge_copies_sent_total", "Copies written to slave sockets.", &self.copies_sent),
            ("tradebridge_ring_full_total", "Frames that found the shard->router ring full and waited for room; their session read nothing more meanwhile.", &self.ring_full),
            ("tradebridge_session_records_dropped_total", "Session starts and ends not recorded for Postgres: the shard->router ring was full.", &self.session_records_dropped),
            ("tradebridge_ring_full_refused_total", "Frames refused because the shard->router ring stayed full while the router read nothing from it for 3 x hb_ms.", &self.ring_full_refused),
            ("tradebridge_outbox_full_total", "Messages dropped on a full connection outbox.", &self.outbox_full),
            ("tradebridge_checkpoints_written_total", "Checkpoints written; each releases the journal segments below the one before it.", &self.checkpoints_written),
            ("tradebridge_journal_records_quarantined_total", "Journal records the replay at start could not apply (the engine panicked on one, or it did not decode), set aside in journal_dir/quarantined-records.", &self.journal_records_quarantined),
            ("tradebridge_journal_flushes_total", "Journal flushes to storage; each makes a group of records durable.", &self.journal_flushes),
            ("tradebridge_copy_seq_rebases_total", "Slaves whose terminal had finished copy seqs the journal does not hold; their copies were numbered above them.", &self.copy_seq_rebases),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", counter.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            text,
            "# HELP tradebridge_connections Open EA connections.\n# TYPE tradebridge_connections gauge\ntradebridge_connections {connections_open}"
        );
        for (name, help, gauge) in [
            ("tradebridge_journal_bytes", "Bytes of journal segments held on disk.", &self.journal_bytes),
            ("tradebridge_journal_bytes_max", "journal_bytes_max: the bridge stops acking when the journal would pass it.", &self.journal_bytes_max),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}", gauge.load(Ordering::Relaxed));
        }
        // Recorded in microseconds, exposed in seconds (Prometheus base units).
        let _ = writeln!(text, "# HELP tradebridge_latency_seconds Latency per stage.\n# TYPE tradebridge_latency_seconds summary");
        for stage in Stage::ALL {
            let histogram = self.histograms[stage.index()].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for quantile in [0.5, 0.9, 0.99, 0.999, 1.0] {
                let seconds = histogram.value_at_quantile(quantile) as f64 / 1e6;
                let _ = writeln!(text, "tradebridge_latency_seconds{{stage=\"{}\",quantile=\"{quantile}\"}} {seconds}", stage.name());
            }
            let sum_seconds = histogram.mean() * histogram.len() as f64 / 1e6;
            let _ = writeln!(text, "tradebridge_latency_seconds_sum{{stage=\"{}\"}} {sum_seconds}", stage.name());
            let _ = writeln!(text, "tradebridge_latency_seconds_count{{stage=\"{}\"}} {}", stage.name(), histogram.len());
        }
        if let Some(feed) = self.persist.get() {
            feed.render(&mut text);
        }
        text
    }
}

impl Metrics {
    /// Writes one `<stage>.hgrm` file per stage into `directory` (created if
    /// missing), values in microseconds; returns the paths written.
    pub fn write_hgrm(&self, directory: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        std::fs::create_dir_all(directory)?;
        let mut written = Vec::with_capacity(STAGES_COUNT);
        for stage in Stage::ALL {
            let mut text = String::with_capacity(8_192);
            {
                let histogram = self.histograms[stage.index()].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                tradebridge_core::hgrm::write_percentiles(&histogram, 1.0, "microseconds", &mut text);
            }
            let path = directory.join(format!("{}.hgrm", stage.name()));
            std::fs::write(&path, text)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Requests the endpoint answers at once: each worker thread takes the next
/// connection from the shared listener and answers it within
/// [`REQUEST_TIMEOUT_MS`], so a client that stalls holds one worker, and
/// only for that long, while Prometheus and an engineer's curl are still
/// answered by the others.
pub const WORKERS: usize = 4;

/// Serves `GET /metrics` on `listener` forever with [`WORKERS`] threads
/// (the caller's and `WORKERS - 1` more); `render` makes the body.
pub fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    for worker in 1..WORKERS {
        let Ok(listener) = listener.try_clone() else {
            tracing::warn!(workers = worker, "metrics: cannot share the listener; fewer workers");
            break;
        };
        let render = Arc::clone(&render);
        if std::thread::Builder::new().name(format!("metrics-{worker}")).spawn(move || accept_forever(&listener, render.as_ref())).is_err() {
            tracing::warn!(workers = worker, "metrics: cannot start a worker thread; fewer workers");
            break;
        }
    }
    accept_forever(&listener, render.as_ref());
}

/// One worker: accepts and answers one connection at a time.
fn accept_forever(listener: &TcpListener, render: &(dyn Fn() -> String + Send + Sync)) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            continue;
        };
        if let Err(error) = answer(stream, render) {
            tracing::debug!(%error, "metrics request failed");
        }
    }
}

/// Reads one request and answers it.
fn answer(mut stream: TcpStream, render: &(dyn Fn() -> String + Send + Sync)) -> std::io::Result<()> {
    stream.set_write_timeout(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))?;
    // One deadline for the whole request, not a timeout per read: a client
    // sending a byte at a time must not hold a worker for longer.
    let deadline = std::time::Instant::now() + Duration::from_millis(REQUEST_TIMEOUT_MS);
    let mut request = [0u8; REQUEST_BYTES_MAX];
    let mut length = 0;
    // Read until the end of the headers, the buffer is full, or the peer stops.
    while length < request.len() && !request[..length].windows(4).any(|window| window == b"\r\n\r\n") {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "request not complete within REQUEST_TIMEOUT_MS"));
        }
        stream.set_read_timeout(Some(remaining))?;
        let read = stream.read(&mut request[length..])?;
        if read == 0 {
            break;
        }
        length += read;
    }
    let request_line = request[..length].split(|byte| *byte == b'\r').next().unwrap_or_default();
    let (status, body) = if request_line.starts_with(b"GET /metrics ") {
        ("200 OK", render())
    } else {
        ("404 Not Found", "not found; metrics are at GET /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded latencies show up in the exposition with their count and quantiles.
    #[test]
    fn render_shows_counters_and_quantiles() {
        let metrics = Metrics::default();
        metrics.record(Stage::EventToDurable, 1_000, 51_000);
        metrics.record(Stage::EventToDurable, 1_000, 151_000);
        Metrics::count(&metrics.events_journaled);
        let text = metrics.render(7);
        assert!(text.contains("tradebridge_events_journaled_total 1\n"), "{text}");
        assert!(text.contains("tradebridge_connections 7\n"), "{text}");
        assert!(text.contains("tradebridge_latency_seconds_count{stage=\"event_to_durable\"} 2\n"), "{text}");
        assert!(text.contains("tradebridge_latency_seconds{stage=\"event_to_durable\",quantile=\"1\"} 0.00015\n"), "{text}");
        assert!(text.contains("tradebridge_latency_seconds_count{stage=\"event_to_copy_sent\"} 0\n"), "{text}");
    }

    // A latency beyond the bound, or a clock that went backwards, is clamped rather than lost.
    #[test]
    fn out_of_range_latencies_are_clamped() {
        let metrics = Metrics::default();
        metrics.record(Stage::EventToCopySent, 10, 5);
        metrics.record(Stage::EventToCopySent, 0, u64::MAX);
        let text = metrics.render(0);
        assert!(text.contains("tradebridge_latency_seconds_count{stage=\"event_to_copy_sent\"} 2\n"), "{text}");
    }
}
