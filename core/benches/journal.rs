//! Append latency and throughput of the journal for 200-byte records under
//! each sync policy, with a memcpy baseline measured in the same run.
//!
//! Run: `cargo bench -p tradebridge-core --bench journal`
//! Environment knobs (all optional):
//! - `JOURNAL_BENCH_DIR`: where the journals are written (default: the
//!   system temporary directory). It must be a real disk, not tmpfs, for
//!   the flushing policies to mean anything.
//! - `JOURNAL_BENCH_RECORDS`: records per buffered scenario (default
//!   200 000); `JOURNAL_BENCH_SYNCED_RECORDS`: records for `EveryRecord`
//!   (default 2 000, as each one waits for the disk).
//!
//! Method: closed loop. Each append is timed on its own (`Instant` around
//! the call) into an HDR histogram at 3 significant figures, after a warm-up
//! of a tenth of the count that is not recorded. This is service time
//! back-to-back, not an open-loop rate, so there is no coordinated-omission
//! correction to make. CPU time is the thread's on-CPU time from
//! `/proc/thread-self/schedstat` (Linux), reported beside wall time: the
//! difference is time spent waiting for the disk.

use std::path::PathBuf;
use std::time::Instant;

use hdrhistogram::Histogram;
use tradebridge_core::journal::{Journal, JournalOptions, SyncPolicy};

/// The record size the brief asks about: a typical serialised trade record.
const PAYLOAD_BYTES: usize = 200;

/// One measured scenario.
struct Scenario {
    /// Label printed in the table.
    name: &'static str,
    /// `None` for the memcpy baseline.
    policy: Option<SyncPolicy>,
    /// Records measured (after a warm-up of a tenth as many).
    records: u64,
}

/// What a scenario measured.
struct Measurement {
    /// Latency of each measured append.
    latency_ns: Histogram<u64>,
    /// Wall time of the measured loop.
    wall_ns: u64,
    /// On-CPU time of the measured loop, when the platform reports it.
    cpu_ns: Option<u64>,
    /// Flushes during the measured loop.
    flushes_count: u64,
}

fn main() {
    let records = env_u64("JOURNAL_BENCH_RECORDS", 200_000);
    let synced_records = env_u64("JOURNAL_BENCH_SYNCED_RECORDS", 2_000);
    let base = std::env::var_os("JOURNAL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let scenarios = [
        Scenario { name: "baseline memcpy 200 B", policy: None, records },
        Scenario { name: "Os", policy: Some(SyncPolicy::Os), records },
        Scenario {
            name: "Group{records_max:64,interval_ms:1}",
            policy: Some(SyncPolicy::Group { records_max: 64, interval_ms: 1 }),
            records,
        },
        Scenario {
            name: "Group{records_max:1024,interval_ms:5}",
            policy: Some(SyncPolicy::Group { records_max: 1024, interval_ms: 5 }),
            records,
        },
        Scenario { name: "EveryRecord", policy: Some(SyncPolicy::EveryRecord), records: synced_records },
    ];
    println!(
        "command: JOURNAL_BENCH_DIR={} JOURNAL_BENCH_RECORDS={records} JOURNAL_BENCH_SYNCED_RECORDS={synced_records} \
         cargo bench -p tradebridge-core --bench journal",
        base.display()
    );
    println!("journal append, payload {PAYLOAD_BYTES} B, default options (64 MiB segments), closed loop");
    println!(
        "{:<40} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>8}",
        "scenario", "records", "records/s", "p50 us", "p99 us", "p99.9 us", "max us", "cpu ns/rec", "cpu/wall", "flushes"
    );
    for scenario in &scenarios {
        let measurement = match scenario.policy {
            None => measure_baseline(scenario.records),
            Some(policy) => measure_journal(&base, policy, scenario.records),
        };
        report(scenario, &measurement);
    }
}

fn measure_journal(base: &std::path::Path, policy: SyncPolicy, records: u64) -> Measurement {
    let directory = base.join(format!("tradebridge-journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let options = JournalOptions { sync: policy, ..JournalOptions::default() };
    let (mut journal, _) = Journal::open(&directory, options).expect("open journal");
    let payload = [0x5Au8; PAYLOAD_BYTES];
    let started = Instant::now();
    let warm_up = records / 10;
    for _ in 0..warm_up {
        let now_ms = started.elapsed().as_millis() as u64;
        journal.append(1, &payload, now_ms).expect("append");
    }
    let flushes_before = journal.stats().flushes_count;
    let mut latency_ns = new_histogram();
    let cpu_before = thread_cpu_ns();
    let measured_start = Instant::now();
    for _ in 0..records {
        let now_ms = started.elapsed().as_millis() as u64;
        let before = Instant::now();
        journal.append(1, &payload, now_ms).expect("append");
        latency_ns.record(before.elapsed().as_nanos() as u64).expect("in range");
    }
    let wall_ns = measured_start.elapsed().as_nanos() as u64;
    let cpu_ns = thread_cpu_ns().zip(cpu_before).map(|(after, before)| after - before);
    let flushes_count = journal.stats().flushes_count - flushes_before;
    drop(journal);
    let _ = std::fs::remove_dir_all(&directory);
    Measurement { latency_ns, wall_ns, cpu_ns, flushes_count }
}

/// The floor: copying the payload into a buffer, timed the same way.
fn measure_baseline(records: u64) -> Measurement {
    let payload = [0x5Au8; PAYLOAD_BYTES];
    let mut buffer = vec![0u8; 1 << 20];
    let mut offset = 0usize;
    let mut latency_ns = new_histogram();
    let cpu_before = thread_cpu_ns();
    let measured_start = Instant::now();
    for _ in 0..records {
        let before = Instant::now();
        if offset + PAYLOAD_BYTES > buffer.len() {
            offset = 0;
        }
        buffer[offset..offset + PAYLOAD_BYTES].copy_from_slice(std::hint::black_box(&payload));
        offset += PAYLOAD_BYTES;
        latency_ns.record(before.elapsed().as_nanos() as u64).expect("in range");
    }
    std::hint::black_box(&buffer);
    let wall_ns = measured_start.elapsed().as_nanos() as u64;
    let cpu_ns = thread_cpu_ns().zip(cpu_before).map(|(after, before)| after - before);
    Measurement { latency_ns, wall_ns, cpu_ns, flushes_count: 0 }
}

fn report(scenario: &Scenario, measurement: &Measurement) {
    let latency = &measurement.latency_ns;
    let microseconds = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1_000.0;
    let records_per_second = scenario.records as f64 / (measurement.wall_ns as f64 / 1e9);
    let (cpu_per_record, cpu_share) = match measurement.cpu_ns {
        Some(cpu_ns) => (
            format!("{:.0}", cpu_ns as f64 / scenario.records as f64),
            format!("{:.0}%", 100.0 * cpu_ns as f64 / measurement.wall_ns as f64),
        ),
        None => ("n/a".to_string(), "n/a".to_string()),
    };
    println!(
        "{:<40} {:>8} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9.1} {:>10} {:>10} {:>8}",
        scenario.name,
        scenario.records,
        records_per_second,
        microseconds(0.50),
        microseconds(0.99),
        microseconds(0.999),
        latency.max() as f64 / 1_000.0,
        cpu_per_record,
        cpu_share,
        measurement.flushes_count,
    );
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// On-CPU time of this thread in nanoseconds (Linux schedstat), if known.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}
