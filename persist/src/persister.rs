//! The persister: a thread of its own with a single-threaded tokio runtime
//! that follows the journal (read-only, [`JournalReader`]) up to what the
//! router published as durable, turns records into rows ([`Decoder`]) and
//! commits them in batches together with `persist_progress`
//! ([`write_batch`]).
//!
//! # Layout
//! - [`start`]: spawns the thread; [`Persister::stop`] asks it to write
//!   what is durable (within a deadline) and end.
//! - `run`: connect (retrying with backoff), migrate if asked, read the
//!   progress, then read / decode / write until stopped; a lost connection
//!   keeps the batch and reconnects; a server refusal waits and retries.
//!
//! # Invariants
//! - Exactly once: a batch starts at `persist_progress + 1` and its rows
//!   commit with the new progress; after any failure the next attempt
//!   starts again from what is committed, so nothing is written twice or
//!   skipped. A gap (records the journal released unread) is recorded in
//!   `persist_gaps` and logged at ERROR before the position moves past it.
//! - Bounded memory: one batch of at most `batch_rows_max` journal records
//!   (each record's rows) is held at a time.
//! - The router never waits for this thread: they share only atomics
//!   ([`PersistFeed`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tradebridge_core::config::PersistConfig;
use tradebridge_core::journal::reader::{JournalReader, OwnedRecord, ReadOutcome};

use crate::db::Target;
use crate::feed::PersistFeed;
use crate::migrate::{migrate, MIGRATIONS};
use crate::rows::{Batch, Decoder, Gap};
use crate::writer::{read_progress, write_batch, Mode, WriteError};

/// How often a stopped or idle persister looks at its stop flag.
const STOP_POLL_MS: u64 = 20;
/// Refusals of one batch by the server before it is written row by row,
/// setting aside any row it refuses.
const REFUSALS_BEFORE_ROW_BY_ROW: u32 = 3;
/// Longest wait for one batch's transaction; past it the connection is
/// taken for lost and the batch written again on a new one.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// A failure is logged at most this often (the count is in the metrics).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The running persister.
pub struct Persister {
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set to ask the thread to write what is durable and end.
    stop: Arc<AtomicBool>,
    feed: Arc<PersistFeed>,
}

impl Persister {
    /// Asks the persister to write everything durable now and end; waits at
    /// most `deadline` for that (Postgres may be away), then leaves it.
    pub fn stop(mut self, deadline: Duration) {
        self.stop.store(true, Ordering::Release);
        let until = Instant::now() + deadline;
        while Instant::now() < until && self.thread.as_ref().is_some_and(|thread| !thread.is_finished()) {
            std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
        }
        let left = self.feed.durable().saturating_sub(self.feed.persisted());
        if let Some(thread) = self.thread.take() {
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!(records_not_persisted = left, "the persister did not finish within the shutdown deadline; the next start writes what is left");
            }
        }
    }
}

/// Starts the persister thread over the journal in `journal_dir`.
pub fn start(config: PersistConfig, target: Target, journal_dir: PathBuf, feed: Arc<PersistFeed>) -> anyhow::Result<Persister> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread_feed = Arc::clone(&feed);
    let thread = std::thread::Builder::new().name("persister".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "the persister cannot start its runtime; nothing is written to Postgres");
                return;
            }
        };
        runtime.block_on(run(config, target, journal_dir, thread_feed, thread_stop));
    })?;
    Ok(Persister { thread: Some(thread), stop, feed })
}

/// Grows a retry wait from `min` to `max`, doubling per failure.
struct Backoff {
    current: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(config: &PersistConfig) -> Backoff {
        let min = Duration::from_millis(config.retry_backoff_ms_min);
        Backoff { current: min, min, max: Duration::from_millis(config.retry_backoff_ms_max) }
    }
    fn reset(&mut self) {
        self.current = self.min;
    }
    fn next(&mut self) -> Duration {
        let wait = self.current;
        self.current = (self.current * 2).min(self.max);
        wait
    }
}

/// Logs a failure now and then (each is counted in the metrics).
struct FailureLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    fn report(&mut self, feed: &PersistFeed, what: &str, error: &dyn std::fmt::Display, retry_in: Duration) {
        feed.failures.fetch_add(1, Ordering::Relaxed);
        if self.last.is_some_and(|last| last.elapsed() < FAILURE_LOG_INTERVAL) {
            self.suppressed += 1;
            return;
        }
        tracing::error!(%error, retry_in_ms = retry_in.as_millis() as u64, failures_since_last_log = self.suppressed, "persister: {what}");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// Sleeps `wait`, in steps, returning early when asked to stop.
async fn pause(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(STOP_POLL_MS).min(until - Instant::now())).await;
    }
}

async fn run(config: PersistConfig, target: Target, journal_dir: PathBuf, feed: Arc<PersistFeed>, stop: Arc<AtomicBool>) {
    let mut backoff = Backoff::new(&config);
    let mut failures = FailureLog { last: None, suppressed: 0 };
    let mut migrated = !config.migrate_on_start;
    let mut reader: Option<JournalReader> = None;
    let mut decoder = Decoder::default();
    let mut batch = Batch::default();
    let mut records: Vec<OwnedRecord> = Vec::with_capacity(config.batch_rows_max as usize);
    // The first journal seq of a batch read and decoded but not committed
    // yet; it is written again as it is after a reconnection.
    let mut holding: Option<u64> = None;
    let batch_interval = Duration::from_millis(config.batch_interval_ms);
    // Times in a row Postgres refused the held batch (not the connection).
    let mut refusals = 0u32;
    // Read again from what Postgres holds at the next connection.
    let mut force_prime = false;
    while !stop.load(Ordering::Acquire) {
        let mut client = match target.connect().await {
            Ok(client) => client,
            Err(error) => {
                feed.connected.store(false, Ordering::Relaxed);
                // No batch read yet to date the lag by: it counts from now.
                feed.mark_waiting_since(crate::feed::unix_ms());
                let wait = backoff.next();
                failures.report(&feed, "cannot connect to Postgres", &error, wait);
                pause(wait, &stop).await;
                continue;
            }
        };
        if !migrated {
            match migrate(&mut client, MIGRATIONS).await {
                Ok(report) => {
                    tracing::info!(%report, "migrations at start");
                    migrated = true;
                }
                Err(error) => {
                    let wait = backoff.next();
                    failures.report(&feed, "migrate_on_start failed", &format!("{error:#}"), wait);
                    pause(wait, &stop).await;
                    continue;
                }
            }
        }
        let mut progress = match read_progress(&client).await {
            Ok(progress) => progress,
            Err(error) => {
                let wait = backoff.next();
                failures.report(&feed, "cannot read persist_progress (is the database migrated? `tradebridge migrate`)", &error, wait);
                pause(wait, &stop).await;
                continue;
            }
        };
        feed.publish_persisted(progress);
        let durable = feed.durable();
        if progress > durable && durable > 0 {
            // Postgres holds rows of journal seqs this journal has not reached:
            // a replaced journal, or one whose tail an OS crash took under
            // journal_sync = "os". Its records up to there would be taken
            // for written.
            tracing::error!(
                persisted_journal_seq = progress,
                journal_durable_seq = durable,
                "persister: Postgres holds journal seqs beyond this journal's end (was the journal directory replaced, or its tail lost?); records this journal numbers at or below persist_progress are not written until it passes it"
            );
        }
        let in_step = match holding {
            // The held batch starts right after what Postgres holds.
            Some(first) => first == progress + 1,
            // Read on from where the reader is, if that is where Postgres is.
            None => reader.as_ref().map(JournalReader::next_seq) == Some(progress + 1),
        };
        let committed_after_all = holding.is_some() && batch.last_journal_seq == progress;
        if committed_after_all {
            // The commit went through though its answer was lost: the reader
            // and decoder are already past it.
            if let Some(gap) = batch.gap {
                tracing::error!(from_seq = gap.from_seq, to_seq = gap.to_seq, "persister: journal records [{}, {}) are missing: {}; recorded in persist_gaps", gap.from_seq, gap.to_seq, gap.reason());
                feed.gap_records.fetch_add(gap.to_seq - gap.from_seq, Ordering::Relaxed);
            }
            batch.clear();
            holding = None;
        } else if !in_step || force_prime {
            force_prime = false;
            // First connection, or Postgres moved elsewhere: read from what
            // it holds, with the decoder primed on the records before.
            let (primed_reader, primed_decoder) = prime(&journal_dir, progress, &mut records);
            reader = Some(primed_reader);
            decoder = primed_decoder;
            batch.clear();
            holding = None;
        }
        feed.connected.store(true, Ordering::Relaxed);
        tracing::info!(persisted_journal_seq = progress, "persister connected");
        backoff.reset();
        let reader = reader.as_mut().expect("set above");
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if holding.is_none() {
                let first = reader.next_seq();
                match fill(reader, &mut decoder, &mut batch, &mut records, &feed, &config, batch_interval, &stop).await {
                    Ok(Filled::Rows) => {
                        holding = Some(first);
                        feed.oldest_pending_ms.store(batch.first_received_ms.unwrap_or(0), Ordering::Relaxed);
                    }
                    Ok(Filled::Nothing) => {
                        feed.oldest_pending_ms.store(0, Ordering::Relaxed);
                        if stopping {
                            feed.connected.store(false, Ordering::Relaxed);
                            return;
                        }
                        pause(batch_interval, &stop).await;
                        continue;
                    }
                    Err(error) => {
                        let wait = backoff.next();
                        failures.report(&feed, "cannot read the journal", &error, wait);
                        pause(wait, &stop).await;
                        continue;
                    }
                }
            }
            if holding != Some(progress + 1) {
                // Never expected: a batch must start right after what is
                // committed, or rows would be skipped. Read again from there.
                tracing::error!(progress, batch_first = ?holding, "persister: the batch does not start after persist_progress; reading again from it");
                holding = None;
                batch.clear();
                force_prime = true;
                break;
            }
            // A batch Postgres keeps refusing is written row by row, leniently,
            // so one bad row cannot hold the stream up forever.
            let mode = if refusals >= REFUSALS_BEFORE_ROW_BY_ROW { Mode::EachRowLenient } else { Mode::Fast };
            let written = match tokio::time::timeout(WRITE_TIMEOUT, write_batch(&mut client, &batch, progress, mode)).await {
                Ok(written) => written,
                Err(_) => Err(WriteError::Connection(format!("no answer to a batch within {} s", WRITE_TIMEOUT.as_secs()))),
            };
            match written {
                Ok(written) => {
                    refusals = 0;
                    if let Some(gap) = batch.gap {
                        tracing::error!(from_seq = gap.from_seq, to_seq = gap.to_seq, "persister: journal records [{}, {}) are missing: {}; recorded in persist_gaps", gap.from_seq, gap.to_seq, gap.reason());
                        feed.gap_records.fetch_add(gap.to_seq - gap.from_seq, Ordering::Relaxed);
                    }
                    progress = batch.last_journal_seq;
                    feed.publish_persisted(progress);
                    feed.rows_written.fetch_add(written.rows, Ordering::Relaxed);
                    feed.batches_written.fetch_add(1, Ordering::Relaxed);
                    feed.duplicate_results.fetch_add(written.duplicates, Ordering::Relaxed);
                    if written.dead_letters > 0 {
                        feed.dead_letters.fetch_add(written.dead_letters, Ordering::Relaxed);
                        tracing::error!(dead_letters = written.dead_letters, to_journal_seq = progress, "persister: Postgres refused rows; they are in dead_letters with the reason");
                    }
                    batch.clear();
                    holding = None;
                    backoff.reset();
                }
                Err(WriteError::Connection(error)) => {
                    feed.connected.store(false, Ordering::Relaxed);
                    let wait = backoff.next();
                    failures.report(&feed, "lost the Postgres connection; the batch is written again after reconnecting", &error, wait);
                    if stopping {
                        return;
                    }
                    pause(wait, &stop).await;
                    break;
                }
                Err(WriteError::Server(error)) => {
                    feed.connected.store(false, Ordering::Relaxed);
                    refusals += 1;
                    let wait = backoff.next();
                    failures.report(&feed, "Postgres refused the batch; retrying", &error, wait);
                    if stopping {
                        return;
                    }
                    pause(wait, &stop).await;
                    // Reconnect: the server may have been restarted or migrated.
                    break;
                }
            }
        }
    }
    feed.connected.store(false, Ordering::Relaxed);
}

/// Records read back before the persisted position to learn the cause
/// (master event, result or update) of the copies and skips right after it:
/// one cause's copies follow it directly, one per follower.
const PRIME_RECORDS_MAX: u64 = 65_536;

/// A reader at `progress + 1` and a decoder that has seen the records
/// before it (up to [`PRIME_RECORDS_MAX`]), so the first copies read know
/// their cause. Released or unreadable records before it are passed over.
fn prime(journal_dir: &std::path::Path, progress: u64, records: &mut Vec<OwnedRecord>) -> (JournalReader, Decoder) {
    let mut decoder = Decoder::default();
    if progress == 0 {
        return (JournalReader::new(journal_dir, 1), decoder);
    }
    let mut reader = JournalReader::new(journal_dir, progress.saturating_sub(PRIME_RECORDS_MAX - 1).max(1));
    let mut scratch = Batch::default();
    while reader.next_seq() <= progress {
        records.clear();
        match reader.read(progress, 1_024, records) {
            Ok(ReadOutcome::Records(_)) => {
                for record in records.iter() {
                    decoder.decode(record, &mut scratch);
                }
                scratch.clear();
            }
            Ok(ReadOutcome::Gap { .. }) => {}
            Ok(ReadOutcome::Nothing) | Err(_) => break,
        }
    }
    records.clear();
    if reader.next_seq() != progress + 1 {
        return (JournalReader::new(journal_dir, progress + 1), Decoder::default());
    }
    (reader, decoder)
}

/// What [`fill`] put into the batch.
enum Filled {
    /// Rows, or a gap (with the rows before it), to write.
    Rows,
    Nothing,
}

/// Reads records up to the durable bound into `batch` until it holds
/// `batch_rows_max` records or `batch_interval` has passed since its first.
#[allow(clippy::too_many_arguments)]
async fn fill(
    reader: &mut JournalReader,
    decoder: &mut Decoder,
    batch: &mut Batch,
    records: &mut Vec<OwnedRecord>,
    feed: &PersistFeed,
    config: &PersistConfig,
    batch_interval: Duration,
    stop: &AtomicBool,
) -> Result<Filled, tradebridge_core::journal::reader::ReadError> {
    let records_max = config.batch_rows_max as usize;
    let mut taken = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        records.clear();
        match reader.read(feed.durable(), records_max - taken, records)? {
            ReadOutcome::Records(count) => {
                for record in records.iter() {
                    decoder.decode(record, batch);
                }
                taken += count;
                deadline.get_or_insert_with(|| Instant::now() + batch_interval);
            }
            // The reader has moved past the gap: it is written with the rows
            // before it, in their transaction, and the batch ends there.
            ReadOutcome::Gap { from_seq, to_seq, released } => {
                batch.gap = Some(Gap { from_seq, to_seq, released });
                decoder.forget_cause();
                batch.last_journal_seq = batch.last_journal_seq.max(to_seq - 1);
                return Ok(Filled::Rows);
            }
            ReadOutcome::Nothing if taken == 0 => return Ok(Filled::Nothing),
            ReadOutcome::Nothing => {}
        }
        let full = taken >= records_max;
        let due = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if full || due || stop.load(Ordering::Acquire) {
            return Ok(Filled::Rows);
        }
        tokio::time::sleep(Duration::from_millis(STOP_POLL_MS.min(config.batch_interval_ms))).await;
    }
}
