//! Cross-thread stress of the mapped SPSC ring, and a check that the record
//! hot path (encode, push, read, checked access) allocates nothing after
//! warm-up.
//!
//! The stress tests push millions of records of varying length through a
//! small ring, so it wraps and fills constantly; each record carries its
//! sequence number and a CRC-32C of its contents, and the consumer checks
//! every one arrives in order, once, intact. Outcomes do not depend on
//! timing: the thread interleaving only changes how often the ring is full.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use tradebridge_core::protocol::{self, EventKind, Side};
use tradebridge_core::record::{access_checked, CopyingDecoder, MasterEventMeta, MasterEventRecord, RecordEncoder};
use tradebridge_core::ring::{Consumer, IdleAction, IdleStrategy, Idler, Producer, PushError, Ring, RingRecord};

/// Counts allocations per thread, so the allocation test sees only its own.
struct CountingAllocator;

thread_local! {
    /// Allocations (and reallocations) made by this thread so far.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // try_with: during thread teardown the slot may be gone; those
    // allocations are not the hot path's.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every method forwards to the system allocator with the caller's
// arguments unchanged; counting touches only a const-initialised thread-local
// Cell, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, forwarded unchanged.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours, forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours, forwarded unchanged.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Bytes of sequence number and checksum at the start of every payload.
const PREFIX_BYTES: usize = 12;
/// Payload lengths run over PREFIX_BYTES..=PAYLOAD_BYTES_MAX.
const PAYLOAD_BYTES_MAX: usize = 200;
/// Records per consumer batch, as the router drains.
const BATCH_RECORDS_MAX: u32 = 256;

/// A cheap, well-mixed hash (splitmix64 finaliser) of `value`.
fn mix(value: u64) -> u64 {
    let mut mixed = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

fn payload_length(seq: u64) -> usize {
    PREFIX_BYTES + (mix(seq) % (PAYLOAD_BYTES_MAX - PREFIX_BYTES + 1) as u64) as usize
}

fn record_kind(seq: u64) -> u32 {
    1 + (seq % 4) as u32
}

/// Fills `payload` for record `seq`: seq, CRC-32C of everything else, filler.
fn fill_payload(seq: u64, payload: &mut [u8]) {
    assert_eq!(payload.len(), payload_length(seq));
    payload[..8].copy_from_slice(&seq.to_le_bytes());
    let mut state = mix(seq ^ 0xA5A5);
    for byte in &mut payload[PREFIX_BYTES..] {
        state = mix(state);
        *byte = state as u8;
    }
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&payload[..8]), &payload[PREFIX_BYTES..]);
    payload[8..PREFIX_BYTES].copy_from_slice(&checksum.to_le_bytes());
}

/// Checks that `record` is exactly record `expected_seq`.
fn check_record(record: RingRecord<'_>, expected_seq: u64, scratch: &mut [u8; PAYLOAD_BYTES_MAX]) {
    let payload = record.payload;
    assert!(payload.len() >= PREFIX_BYTES, "record {expected_seq}: length {} below the prefix", payload.len());
    let seq = u64::from_le_bytes(payload[..8].try_into().unwrap());
    assert_eq!(seq, expected_seq, "records must arrive in order, each once");
    assert_eq!(record.kind, record_kind(seq), "record {seq}: kind");
    assert_eq!(payload.len(), payload_length(seq), "record {seq}: length");
    let checksum = u32::from_le_bytes(payload[8..PREFIX_BYTES].try_into().unwrap());
    let computed = crc32c::crc32c_append(crc32c::crc32c(&payload[..8]), &payload[PREFIX_BYTES..]);
    assert_eq!(checksum, computed, "record {seq}: checksum");
    let expected = &mut scratch[..payload.len()];
    fill_payload(seq, expected);
    assert_eq!(payload, &expected[..], "record {seq}: contents");
}

/// Idles per `action`; parking is a yield here (the test owns no wake-up).
fn idle(action: IdleAction) {
    match action {
        IdleAction::Spin => std::hint::spin_loop(),
        IdleAction::Yield | IdleAction::Park => std::thread::yield_now(),
    }
}

/// Spins briefly, then yields: the machine has 2 cores shared with others.
const STRESS_IDLE: IdleStrategy = IdleStrategy::Backoff { spin_steps_max: 64, yield_steps_max: u32::MAX };

/// Pushes records 0..count, retrying on Full; returns the Full outcomes seen.
fn produce(mut producer: Producer, count: u64) -> (u64, u64) {
    let mut idler = Idler::new(STRESS_IDLE);
    let mut full_outcomes = 0;
    for seq in 0..count {
        let length = payload_length(seq) as u32;
        loop {
            match producer.try_reserve(record_kind(seq), length) {
                Ok(mut reservation) => {
                    fill_payload(seq, reservation.payload_mut());
                    reservation.commit();
                    idler.reset();
                    break;
                }
                Err(PushError::Full) => {
                    full_outcomes += 1;
                    idle(idler.idle());
                }
                Err(other) => panic!("record {seq}: unexpected push error: {other}"),
            }
        }
    }
    (full_outcomes, producer.full_count())
}

/// Reads until `count` records arrived, checking each; returns the batches.
fn consume(mut consumer: Consumer, count: u64) -> u64 {
    let mut idler = Idler::new(STRESS_IDLE);
    let mut scratch = [0u8; PAYLOAD_BYTES_MAX];
    let mut next_seq = 0u64;
    let mut batches = 0u64;
    while next_seq < count {
        let records_read = consumer
            .read_batch(BATCH_RECORDS_MAX, |record| {
                check_record(record, next_seq, &mut scratch);
                next_seq += 1;
            })
            .unwrap();
        if records_read == 0 {
            idle(idler.idle());
        } else {
            idler.reset();
            batches += 1;
        }
    }
    assert_eq!(consumer.read().unwrap(), None, "nothing beyond the last record");
    batches
}

fn run_stress(producer: Producer, consumer: Consumer, count: u64) {
    let monitor = producer.monitor();
    let producer_thread = std::thread::spawn(move || produce(producer, count));
    let consumer_thread = std::thread::spawn(move || consume(consumer, count));
    let (full_outcomes, full_count) = producer_thread.join().expect("producer thread");
    let batches = consumer_thread.join().expect("consumer thread");
    assert_eq!(full_outcomes, full_count, "every Full outcome is counted once");
    assert!(batches > 0 && batches <= count);
    let metrics = monitor.metrics();
    assert_eq!(metrics.used_bytes, 0, "everything read was released");
    assert!(metrics.producer_position > 100 * metrics.capacity_bytes, "the ring wrapped many times");
    eprintln!("{count} records, {batches} batches, {full_outcomes} Full outcomes, {} bytes through the ring", metrics.producer_position);
}

#[test]
fn five_million_records_cross_threads_in_order_and_intact() {
    // 5 million records of 12..=200 bytes through a 64 KiB anonymous ring arrive in order, once, intact.
    let (producer, consumer) = Ring::anonymous(64 * 1024).unwrap().split().unwrap();
    run_stress(producer, consumer, 5_000_000);
}

/// A unique /dev/shm path (temp dir where there is none), removed on drop.
struct TempRingPath {
    path: PathBuf,
}

impl TempRingPath {
    fn new(name: &str) -> TempRingPath {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let shm = std::path::Path::new("/dev/shm");
        let directory = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = directory.join(format!("tradebridge-ring-stress-{}-{unique}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempRingPath { path }
    }
}

impl Drop for TempRingPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn shm_file_ring_across_two_mappings_in_order_and_intact() {
    // Through a /dev/shm file, a producer on one mapping and a consumer on another pass 2 million records intact.
    let temp = TempRingPath::new("two-mappings");
    let (producer, _unused_consumer) = Ring::create_file(&temp.path, 64 * 1024).unwrap().split().unwrap();
    let (_unused_producer, consumer) = Ring::open_file(&temp.path).unwrap().split().unwrap();
    run_stress(producer, consumer, 2_000_000);
}

#[test]
fn split_never_panics_while_another_writer_changes_the_positions() {
    // While another thread keeps rewriting the consumer position of a ring file, open_file and split return rings or errors, never panic.
    use std::os::unix::fs::FileExt;
    /// Offset of the consumer position in a ring file: after the descriptor
    /// and the producer cursor, 128 bytes each.
    const CONSUMER_CURSOR_OFFSET: u64 = 256;
    const ATTEMPTS: u32 = 10_000;
    let temp = TempRingPath::new("split-race");
    drop(Ring::create_file(&temp.path, 2048).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scribbler = {
        let (stop, path) = (stop.clone(), temp.path.clone());
        std::thread::spawn(move || {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut value = 0u64;
            // Bounded by the main thread's ATTEMPTS, after which it sets `stop`.
            while !stop.load(Ordering::Relaxed) {
                // 16 puts the consumer ahead of the producer (at 0): corrupt.
                value ^= 16;
                file.write_all_at(&value.to_ne_bytes(), CONSUMER_CURSOR_OFFSET).unwrap();
            }
        })
    };
    let mut panics = 0u32;
    let mut refusals = 0u32;
    for _ in 0..ATTEMPTS {
        let outcome = std::panic::catch_unwind(|| Ring::open_file(&temp.path).and_then(Ring::split).map(drop));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(_)) => refusals += 1,
            Err(_) => panics += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    eprintln!("{ATTEMPTS} opens and splits, {refusals} refused as corrupt");
    assert_eq!(panics, 0, "open_file or split panicked on positions another writer changed");
}

fn hot_path_event(seq: u64) -> protocol::Event {
    protocol::Event {
        seq,
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
        comment: "a comment too long to be stored inline".to_owned(),
        time_ms: 1_732_400_000_123,
        remaining: None,
    }
}

#[test]
fn encode_push_read_allocates_nothing_after_warm_up() {
    // After warm-up, encode + push + read + checked access (in place and through the copying decoder) + release of a master event makes zero allocations.
    let (mut producer, mut consumer) = Ring::anonymous(64 * 1024).unwrap().split().unwrap();
    let mut encoder = RecordEncoder::default();
    let mut decoder = CopyingDecoder::default();
    let meta = MasterEventMeta { master_login: 1, received_ms: 2, received_ns: 3, shard_id: 0, connection_id: 4 };
    let mut record = MasterEventRecord::from_event(hot_path_event(0), meta);
    let mut round_trip = |record: &MasterEventRecord| -> u64 {
        let encoded = encoder.encode(record).unwrap();
        producer.try_push(encoded.kind.code(), encoded.bytes).unwrap();
        let ring_record = consumer.read().unwrap().expect("the record just pushed");
        let archived = access_checked::<MasterEventRecord>(ring_record.payload).unwrap();
        let seq = archived.seq.to_native();
        assert_eq!(archived.symbol.as_str(), "EURUSD");
        let copied = decoder.access::<MasterEventRecord>(ring_record.payload).unwrap();
        assert_eq!((copied.seq.to_native(), copied.comment.as_str()), (seq, "a comment too long to be stored inline"));
        consumer.release();
        seq
    };
    for seq in 0..1_000 {
        record.seq = seq;
        assert_eq!(round_trip(&record), seq);
    }
    let before = allocations();
    for seq in 1_000..101_000 {
        record.seq = seq;
        assert_eq!(round_trip(&record), seq);
    }
    let after = allocations();
    assert_eq!(after - before, 0, "allocations on the hot path after warm-up");
    // The counter itself works: building a record from an event allocates its strings.
    let before = allocations();
    drop(MasterEventRecord::from_event(hot_path_event(1), meta));
    assert!(allocations() > before);
}
