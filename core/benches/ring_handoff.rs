//! ring_handoff: hand-off latency and throughput between two threads through
//! the mapped SPSC ring, with single-thread baselines from the same run.
//!
//! Run: `cargo bench -p tradebridge-core --bench ring_handoff`
//!
//! Environment:
//! - `RING_BENCH_HGRM=<path>`: also write each latency distribution in the
//!   HdrHistogram `.hgrm` percentile format (values in microseconds), one
//!   file per scenario: `<path>` with `.<scenario>` inserted before `.hgrm`.
//! - `RING_BENCH_SCALE=<factor>`: multiply every record count (default 1;
//!   0.1 for a quick look while iterating).
//! - `RING_BENCH_PIN=0`: do not pin the threads (on a machine whose cores
//!   are busy with other work, a pinned thread cannot move away from it).
//!
//! Method: the producer thread embeds two stamps in each record, nanoseconds
//! since a base `Instant` shared by both threads: the time the record was
//! *scheduled* (open loop: one record every interval, whatever happened to
//! the previous one) and the time it was actually pushed. The consumer spins
//! on the ring and records `now - scheduled` (coordinated-omission
//! corrected) and `now - pushed` (raw) into HDR histograms at 3 significant
//! figures. The first `WARM_UP_RECORDS` records are excluded. The threads are
//! pinned to CPUs 0 and 1 when the machine allows it. CPU time per thread
//! comes from `getrusage(RUSAGE_THREAD)`. The library reads no clock; only
//! this bench does.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use hdrhistogram::Histogram;
use tradebridge_core::protocol::{self, EventKind, Side};
use tradebridge_core::record::{access_checked, MasterEventMeta, MasterEventRecord, RecordEncoder};
use tradebridge_core::ring::{Consumer, Producer, PushError, Ring};

/// Records excluded from every latency histogram: page faults on the
/// mapping, cache warm-up and frequency ramp-up all land here.
const WARM_UP_RECORDS: u64 = 100_000;
/// Ring size for the two-thread scenarios: the 64 KiB of a small shard ring.
const RING_CAPACITY_BYTES: u64 = 64 * 1024;
/// Raw payload size: a small master event is about this size when archived.
const RAW_PAYLOAD_BYTES: usize = 64;
/// Records per consumer batch, as the router drains.
const BATCH_RECORDS_MAX: u32 = 256;
/// Largest latency the histograms hold (10 s); larger values saturate.
const LATENCY_NS_MAX: u64 = 10_000_000_000;
/// Delay before the first scheduled send, so both threads are running.
const START_DELAY_NS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum PayloadKind {
    /// 64 bytes: scheduled stamp, pushed stamp, index, filler.
    Raw,
    /// An encoded `MasterEventRecord`; the consumer validates it (bytecheck).
    MasterEvent,
}

/// What each record carries for the latency measurement.
#[derive(Clone, Copy, Debug)]
struct Stamps {
    /// Record number from 0; the consumer checks the order.
    index: u64,
    /// When the open-loop schedule said to send (ns since the shared base).
    scheduled_ns: u64,
    /// When the producer actually pushed (ns since the shared base).
    pushed_ns: u64,
}

fn scale() -> f64 {
    std::env::var("RING_BENCH_SCALE").ok().and_then(|text| text.parse().ok()).unwrap_or(1.0)
}

fn scaled(count: u64) -> u64 {
    ((count as f64 * scale()) as u64).max(1_000)
}

fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

/// User + system CPU time of the calling thread, in microseconds.
fn thread_cpu_us() -> u64 {
    // SAFETY: getrusage writes only into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let micros = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Pins the calling thread to `cpu`; returns false where that is refused
/// or RING_BENCH_PIN=0 turns pinning off.
fn pin_to_cpu(cpu: usize) -> bool {
    if std::env::var("RING_BENCH_PIN").is_ok_and(|value| value == "0") {
        return false;
    }
    // SAFETY: the cpu set is a plain bitmap initialised by CPU_ZERO; the call
    // only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

fn sample_record() -> MasterEventRecord {
    let event = protocol::Event {
        seq: 0,
        kind: EventKind::Open,
        pos: 9001,
        ticket: 9001,
        symbol: "EURUSD".to_owned(),
        side: Some(Side::Buy),
        volume: 0.10,
        price: 1.08123,
        sl: 1.079,
        tp: 1.086,
        magic: 0,
        comment: "copied by tradebridge".to_owned(),
        time_ms: 1_732_400_000_123,
        remaining: None,
    };
    let meta = MasterEventMeta { master_login: 1_234_567, received_ms: 0, received_ns: 0, shard_id: 1, connection_id: 7 };
    MasterEventRecord::from_event(event, meta)
}

/// The producer thread's record builder; reuses its buffers for every send.
struct Sender {
    /// What each record carries; fixed per run.
    kind: PayloadKind,
    /// Encoder for `MasterEvent` runs; its buffer is allocated once.
    encoder: RecordEncoder,
    /// Template master event; seq and stamps change per send.
    record: MasterEventRecord,
    /// Raw payload; its first 24 bytes change per send.
    raw: [u8; RAW_PAYLOAD_BYTES],
}

impl Sender {
    fn new(kind: PayloadKind) -> Sender {
        Sender { kind, encoder: RecordEncoder::default(), record: sample_record(), raw: [0x5A; RAW_PAYLOAD_BYTES] }
    }

    /// Writes one record carrying `stamps`, spinning while the ring is full.
    /// Returns the number of Full outcomes.
    fn send(&mut self, producer: &mut Producer, stamps: Stamps) -> u64 {
        let (kind, bytes): (u32, &[u8]) = match self.kind {
            PayloadKind::Raw => {
                self.raw[..8].copy_from_slice(&stamps.scheduled_ns.to_le_bytes());
                self.raw[8..16].copy_from_slice(&stamps.pushed_ns.to_le_bytes());
                self.raw[16..24].copy_from_slice(&stamps.index.to_le_bytes());
                (1, &self.raw)
            }
            PayloadKind::MasterEvent => {
                self.record.seq = stamps.index;
                self.record.received_ns = stamps.scheduled_ns;
                // The bench carries its push stamp in the terminal-time field,
                // which the bridge never interprets.
                self.record.time_ms = stamps.pushed_ns;
                let encoded = self.encoder.encode(&self.record).expect("sample record fits");
                (encoded.kind.code(), encoded.bytes)
            }
        };
        let mut full_outcomes = 0;
        loop {
            match producer.try_push(kind, bytes) {
                Ok(()) => return full_outcomes,
                Err(PushError::Full) => {
                    full_outcomes += 1;
                    std::hint::spin_loop();
                }
                Err(other) => panic!("push failed: {other}"),
            }
        }
    }
}

fn parse(kind: PayloadKind, payload: &[u8]) -> Stamps {
    match kind {
        PayloadKind::Raw => {
            let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().unwrap());
            Stamps { scheduled_ns: word(0), pushed_ns: word(8), index: word(16) }
        }
        PayloadKind::MasterEvent => {
            let archived = access_checked::<MasterEventRecord>(payload).expect("valid record");
            Stamps {
                index: archived.seq.to_native(),
                scheduled_ns: archived.received_ns.to_native(),
                pushed_ns: archived.time_ms.to_native(),
            }
        }
    }
}

/// What one two-thread run measured.
struct RunReport {
    /// Receive time minus scheduled time (coordinated-omission corrected).
    corrected: Histogram<u64>,
    /// Receive time minus actual push time.
    raw: Histogram<u64>,
    /// Records sent, warm-up included.
    records: u64,
    /// From the shared base instant to the end of the run.
    wall_ns: u64,
    producer_cpu_us: u64,
    consumer_cpu_us: u64,
    /// Pushes that found the ring full (and were retried).
    full_outcomes: u64,
    /// Both threads were pinned to their own CPU.
    pinned: bool,
}

/// Producer side: sends `records` records, one per `interval_ns` from its
/// schedule, or back to back when `interval_ns` is 0 (throughput).
fn run_producer(mut producer: Producer, kind: PayloadKind, records: u64, interval_ns: u64, base: Instant) -> (u64, u64, bool) {
    let pinned = pin_to_cpu(0);
    let cpu_start_us = thread_cpu_us();
    let mut sender = Sender::new(kind);
    let start_ns = now_ns(base) + START_DELAY_NS;
    let mut full_outcomes = 0;
    for index in 0..records {
        let scheduled_ns = if interval_ns == 0 { now_ns(base) } else { start_ns + index * interval_ns };
        let mut pushed_ns = now_ns(base);
        while pushed_ns < scheduled_ns {
            std::hint::spin_loop();
            pushed_ns = now_ns(base);
        }
        full_outcomes += sender.send(&mut producer, Stamps { index, scheduled_ns, pushed_ns });
    }
    assert_eq!(producer.full_count(), full_outcomes);
    (thread_cpu_us() - cpu_start_us, full_outcomes, pinned)
}

/// Consumer side: spins on the ring until `records` arrived, recording
/// latencies after the warm-up.
fn run_consumer(mut consumer: Consumer, kind: PayloadKind, records: u64, base: Instant) -> (Histogram<u64>, Histogram<u64>, u64, bool) {
    let pinned = pin_to_cpu(1);
    let cpu_start_us = thread_cpu_us();
    let mut corrected = histogram();
    let mut raw = histogram();
    let mut next_index = 0u64;
    while next_index < records {
        let records_read = consumer
            .read_batch(BATCH_RECORDS_MAX, |record| {
                let received_ns = now_ns(base);
                let stamps = parse(kind, record.payload);
                assert_eq!(stamps.index, next_index, "records arrive in order");
                if stamps.index >= WARM_UP_RECORDS {
                    corrected.saturating_record(received_ns.saturating_sub(stamps.scheduled_ns).max(1));
                    raw.saturating_record(received_ns.saturating_sub(stamps.pushed_ns).max(1));
                }
                next_index += 1;
            })
            .expect("ring not corrupt");
        if records_read == 0 {
            std::hint::spin_loop();
        }
    }
    (corrected, raw, thread_cpu_us() - cpu_start_us, pinned)
}

fn run_two_threads(kind: PayloadKind, records: u64, interval_ns: u64) -> RunReport {
    let (producer, consumer) = Ring::anonymous(RING_CAPACITY_BYTES).expect("ring").split().expect("split");
    let base = Instant::now();
    let consumer_thread = std::thread::spawn(move || run_consumer(consumer, kind, records, base));
    let producer_thread = std::thread::spawn(move || run_producer(producer, kind, records, interval_ns, base));
    let (producer_cpu_us, full_outcomes, producer_pinned) = producer_thread.join().expect("producer");
    let (corrected, raw, consumer_cpu_us, consumer_pinned) = consumer_thread.join().expect("consumer");
    RunReport {
        corrected,
        raw,
        records,
        wall_ns: now_ns(base),
        producer_cpu_us,
        consumer_cpu_us,
        full_outcomes,
        pinned: producer_pinned && consumer_pinned,
    }
}

fn print_latency_header() {
    println!(
        "{:<44} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "scenario (latency in ns)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
}

fn print_latency(name: &str, histogram: &Histogram<u64>) {
    println!(
        "{:<44} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9.1}",
        name,
        histogram.len(),
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.90),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
        histogram.mean()
    );
}

fn print_costs(report: &RunReport) {
    let wall_ms = report.wall_ns as f64 / 1e6;
    println!(
        "{:<44} wall {:.0} ms, producer cpu {:.0} ms, consumer cpu {:.0} ms, full outcomes {}, {:.2} M records/s{}",
        "",
        wall_ms,
        report.producer_cpu_us as f64 / 1e3,
        report.consumer_cpu_us as f64 / 1e3,
        report.full_outcomes,
        report.records as f64 / (report.wall_ns as f64 / 1e9) / 1e6,
        if report.pinned { "" } else { " (threads not pinned)" }
    );
}

/// Path for one scenario's .hgrm file, if RING_BENCH_HGRM is set.
fn hgrm_path(scenario: &str) -> Option<PathBuf> {
    let base = PathBuf::from(std::env::var_os("RING_BENCH_HGRM")?);
    let stem = base.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    Some(base.with_file_name(format!("{stem}.{scenario}.hgrm")))
}

/// Writes `histogram` (ns) in HdrHistogram's percentile-distribution format, in microseconds.
fn write_hgrm(scenario: &str, histogram: &Histogram<u64>) {
    let Some(path) = hgrm_path(scenario) else { return };
    let mut text = String::new();
    text.push_str(&format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)"));
    let mut total_count = 0u64;
    for value in histogram.iter_quantiles(5) {
        total_count += value.count_since_last_iteration();
        let quantile = value.quantile_iterated_to();
        let micros = value.value_iterated_to() as f64 / 1e3;
        if quantile < 1.0 {
            text.push_str(&format!("{micros:12.3} {quantile:2.12} {total_count:10} {:14.2}\n", 1.0 / (1.0 - quantile)));
        } else {
            text.push_str(&format!("{micros:12.3} {quantile:2.12} {total_count:10}\n"));
        }
    }
    let mean_us = histogram.mean() / 1e3;
    let deviation_us = histogram.stdev() / 1e3;
    text.push_str(&format!("#[Mean    = {mean_us:12.3}, StdDeviation   = {deviation_us:12.3}]\n"));
    text.push_str(&format!("#[Max     = {:12.3}, Total count    = {:12}]\n", histogram.max() as f64 / 1e3, histogram.len()));
    // HdrHistogram's sub-bucket count: the power of two covering 2 * 10^sigfig.
    let sub_buckets = (2 * 10u64.pow(u32::from(histogram.sigfig()))).next_power_of_two();
    text.push_str(&format!("#[Buckets = {:12}, SubBuckets     = {:12}]\n", histogram.buckets(), sub_buckets));
    let mut file = std::fs::File::create(&path).unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
    file.write_all(text.as_bytes()).expect("write hgrm");
    println!("{:<44} wrote {}", "", path.display());
}

fn open_loop(scenario: &str, kind: PayloadKind, interval_ns: u64, measured_records: u64) {
    let report = run_two_threads(kind, WARM_UP_RECORDS + measured_records, interval_ns);
    print_latency(&format!("{scenario} corrected"), &report.corrected);
    print_latency(&format!("{scenario} raw"), &report.raw);
    print_costs(&report);
    write_hgrm(scenario, &report.corrected);
    write_hgrm(&format!("{scenario}_raw"), &report.raw);
}

fn throughput(scenario: &str, kind: PayloadKind, records: u64) {
    let report = run_two_threads(kind, records, 0);
    print_latency(&format!("{scenario} (queueing, closed loop)"), &report.raw);
    print_costs(&report);
}

/// Times `operations` calls of `operation` in this thread; returns ns per call.
fn nanoseconds_per(operations: u64, mut operation: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for index in 0..operations {
        operation(index);
    }
    start.elapsed().as_nanos() as f64 / operations as f64
}

/// Same-run baselines: the clock the bench itself reads, and the single-thread
/// costs of each step (no cross-core traffic).
fn baselines() {
    let mut clock = histogram();
    let base = Instant::now();
    for _ in 0..scaled(1_000_000) {
        let first = now_ns(base);
        let second = now_ns(base);
        clock.saturating_record((second - first).max(1));
    }
    print_latency("baseline: clock read pair (Instant)", &clock);

    let operations = scaled(2_000_000);
    let (mut producer, mut consumer) = Ring::anonymous(RING_CAPACITY_BYTES).expect("ring").split().expect("split");
    let raw = [0x5Au8; RAW_PAYLOAD_BYTES];
    let push_read = nanoseconds_per(operations, |_| {
        producer.try_push(1, &raw).expect("room");
        assert!(consumer.read().expect("ok").is_some());
        consumer.release();
    });
    let mut encoder = RecordEncoder::default();
    let mut record = sample_record();
    let encode = nanoseconds_per(operations, |index| {
        record.seq = index;
        std::hint::black_box(encoder.encode(&record).expect("fits").bytes.len());
    });
    let encoded = encoder.encode(&record).expect("fits").bytes.to_vec();
    let push_record = nanoseconds_per(operations, |_| {
        producer.try_push(1, &encoded).expect("room");
        let record = consumer.read().expect("ok").expect("one record");
        std::hint::black_box(record.payload.len());
        consumer.release();
    });
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&encoded);
    let access = nanoseconds_per(operations, |_| {
        std::hint::black_box(access_checked::<MasterEventRecord>(&aligned).expect("valid").seq.to_native());
    });
    println!("baseline, single thread, ns per operation:");
    println!("  push + read + release, {RAW_PAYLOAD_BYTES} B raw        {push_read:8.1}");
    println!("  push + read + release, {} B master event {push_record:8.1}", encoded.len());
    println!("  encode MasterEventRecord (RecordEncoder)  {encode:8.1}");
    println!("  access_checked MasterEventRecord          {access:8.1}");
}

fn main() {
    println!("ring_handoff: ring {RING_CAPACITY_BYTES} B, warm-up {WARM_UP_RECORDS} records excluded, scale {}", scale());
    println!("cpus online: {}", std::thread::available_parallelism().map_or(0, |count| count.get()));
    print_latency_header();
    baselines();
    open_loop("open_loop_10us_raw64", PayloadKind::Raw, 10_000, scaled(300_000));
    open_loop("open_loop_1us_raw64", PayloadKind::Raw, 1_000, scaled(2_000_000));
    open_loop("open_loop_10us_master_event", PayloadKind::MasterEvent, 10_000, scaled(300_000));
    throughput("throughput_raw64", PayloadKind::Raw, scaled(10_000_000));
    throughput("throughput_master_event", PayloadKind::MasterEvent, scaled(5_000_000));
}
