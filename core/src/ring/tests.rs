//! Unit tests of the ring: single-threaded, deterministic, each driving the
//! producer and consumer handles in a fixed order.

use super::*;
use std::collections::VecDeque;
use std::sync::atomic::AtomicU32;

/// A unique path under /dev/shm (or the temp dir where there is none),
/// removed on drop so a failing test leaves nothing behind.
struct TempRingPath {
    path: PathBuf,
}

impl TempRingPath {
    fn new(name: &str) -> TempRingPath {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let shm = Path::new("/dev/shm");
        let directory = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = directory.join(format!("tradebridge-ring-unit-{}-{unique}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempRingPath { path }
    }
}

impl Drop for TempRingPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Payload of `length` bytes derived from `seed`, so each record is distinct.
fn payload(seed: u64, length: usize) -> Vec<u8> {
    (0..length).map(|index| (seed.wrapping_mul(31).wrapping_add(index as u64 * 7) % 251) as u8).collect()
}

fn small_ring() -> (Producer, Consumer) {
    Ring::anonymous(CAPACITY_BYTES_MIN).unwrap().split().unwrap()
}

fn read_one(consumer: &mut Consumer) -> Option<(u32, Vec<u8>)> {
    let record = consumer.read().unwrap().map(|record| (record.kind, record.payload.to_vec()));
    consumer.release();
    record
}

#[test]
fn empty_ring_reads_nothing() {
    // A fresh ring has no record: read, peek and read_batch all report empty.
    let (producer, mut consumer) = small_ring();
    assert_eq!(consumer.peek().unwrap(), None);
    assert_eq!(consumer.read().unwrap(), None);
    assert_eq!(consumer.read_batch(16, |_| panic!("no record expected")).unwrap(), 0);
    let metrics = producer.monitor().metrics();
    assert_eq!((metrics.producer_position, metrics.consumer_position, metrics.used_bytes), (0, 0, 0));
    assert_eq!(producer.full_count(), 0);
}

#[test]
fn pushed_record_reads_back_aligned_and_equal() {
    // One record comes back with the same kind and bytes, its payload 8-aligned, then the ring is empty.
    let (mut producer, mut consumer) = small_ring();
    let bytes = payload(1, 13);
    producer.try_push(7, &bytes).unwrap();
    let peeked = consumer.peek().unwrap().unwrap();
    assert_eq!((peeked.kind, peeked.payload), (7, &bytes[..]));
    let record = consumer.read().unwrap().unwrap();
    assert_eq!((record.kind, record.payload), (7, &bytes[..]));
    assert_eq!(record.payload.as_ptr() as usize % FRAME_ALIGNMENT_BYTES as usize, 0);
    assert_eq!(consumer.read().unwrap(), None);
    consumer.release();
    let metrics = consumer.monitor().metrics();
    assert_eq!(metrics.producer_position, Geometry::framed_length(13));
    assert_eq!(metrics.consumer_position, metrics.producer_position);
}

#[test]
fn wrap_around_with_varied_sizes_keeps_order_and_contents() {
    // Thousands of records of sizes 0..=200 through a 1 KiB ring wrap it many times without loss or change.
    let (mut producer, mut consumer) = small_ring();
    let mut expected: VecDeque<(u32, Vec<u8>)> = VecDeque::new();
    let mut seed = 0u64;
    let mut records_read = 0u64;
    let mut full_outcomes = 0u64;
    for round in 0..2_000u64 {
        // Push a few, read fewer or more, so the fill level wanders.
        for _ in 0..(round % 5 + 1) {
            let length = (seed * 37 % 201) as usize;
            let bytes = payload(seed, length);
            let kind = (seed % 9 + 1) as u32;
            match producer.try_push(kind, &bytes) {
                Ok(()) => expected.push_back((kind, bytes)),
                Err(PushError::Full) => {
                    full_outcomes += 1;
                    break;
                }
                Err(other) => panic!("unexpected push error {other}"),
            }
            seed += 1;
        }
        for _ in 0..(round % 4 + 1) {
            let Some(record) = read_one(&mut consumer) else { break };
            assert_eq!(Some(record), expected.pop_front());
            records_read += 1;
        }
    }
    while let Some(record) = read_one(&mut consumer) {
        assert_eq!(Some(record), expected.pop_front());
        records_read += 1;
    }
    assert!(expected.is_empty());
    assert_eq!(records_read, seed, "every accepted record was read once");
    assert_eq!(full_outcomes, producer.full_count());
    assert!(full_outcomes > 0, "this fixed pattern fills the ring at times");
    assert!(consumer.monitor().metrics().producer_position > 20 * CAPACITY_BYTES_MIN, "the ring wrapped many times");
}

/// Pushes and consumes filler records until the producer position is `index`
/// bytes into the next lap of the data region, never needing padding on the way.
fn advance_to_index(producer: &mut Producer, consumer: &mut Consumer, index: u64) {
    assert_eq!(index % FRAME_ALIGNMENT_BYTES, 0);
    let capacity = producer.capacity_bytes();
    let target = (producer.position / capacity + 1) * capacity + index;
    while producer.position < target {
        let room = (target - producer.position).min(producer.geometry.bytes_to_end(producer.position)).min(208);
        producer.try_push(1, &payload(0, (room - FRAME_HEADER_BYTES) as usize)).unwrap();
        while consumer.read().unwrap().is_some() {}
        consumer.release();
    }
    assert_eq!(producer.position, target);
}

#[test]
fn record_that_does_not_fit_the_tail_is_preceded_by_padding() {
    // A record longer than the tail starts at offset 0 after a padding frame the consumer skips.
    let (mut producer, mut consumer) = small_ring();
    let capacity = producer.capacity_bytes();
    advance_to_index(&mut producer, &mut consumer, capacity - 16);
    let start = producer.position;
    let bytes = payload(9, 40);
    producer.try_push(5, &bytes).unwrap();
    let padding = consumer.read_header(start);
    assert_eq!((padding.kind, u64::from(padding.length)), (PADDING_KIND, 16 - FRAME_HEADER_BYTES));
    assert_eq!(producer.position, start + 16 + Geometry::framed_length(40));
    assert_eq!(read_one(&mut consumer), Some((5, bytes)));
    assert_eq!(consumer.geometry.index(consumer.read_position.get()), Geometry::framed_length(40) as usize);
    assert_eq!(read_one(&mut consumer), None);
}

#[test]
fn record_that_exactly_fills_the_tail_needs_no_padding() {
    // A frame exactly as long as the tail is written there and the next one starts at offset 0.
    let (mut producer, mut consumer) = small_ring();
    let capacity = producer.capacity_bytes();
    advance_to_index(&mut producer, &mut consumer, capacity - 64);
    let start = producer.position;
    let exact = payload(3, 64 - FRAME_HEADER_BYTES as usize);
    producer.try_push(2, &exact).unwrap();
    assert_eq!(producer.position, start + 64);
    assert_eq!(producer.geometry.index(producer.position), 0);
    let header = consumer.read_header(start);
    assert_eq!((header.kind, u64::from(header.length)), (2, 64 - FRAME_HEADER_BYTES));
    let next = payload(4, 10);
    producer.try_push(3, &next).unwrap();
    assert_eq!(read_one(&mut consumer), Some((2, exact)));
    assert_eq!(read_one(&mut consumer), Some((3, next)));
}

#[test]
fn full_ring_refuses_counts_and_overwrites_nothing() {
    // On a full ring each push fails with Full, counts once, and every earlier record stays intact.
    let (mut producer, mut consumer) = small_ring();
    let mut pushed = Vec::new();
    loop {
        let bytes = payload(pushed.len() as u64, 56);
        match producer.try_push(1, &bytes) {
            Ok(()) => pushed.push(bytes),
            Err(PushError::Full) => break,
            Err(other) => panic!("unexpected push error {other}"),
        }
    }
    assert_eq!(pushed.len() as u64, CAPACITY_BYTES_MIN / Geometry::framed_length(56));
    assert_eq!(producer.full_count(), 1);
    assert_eq!(producer.try_push(1, &payload(99, 8)), Err(PushError::Full));
    assert_eq!(producer.try_push(1, &[]), Err(PushError::Full));
    assert_eq!(producer.full_count(), 3);
    assert_eq!(producer.monitor().metrics().full_count, 3);
    // Reading without releasing frees nothing.
    assert!(consumer.read().unwrap().is_some());
    assert_eq!(producer.try_push(1, &payload(99, 8)), Err(PushError::Full));
    assert_eq!(producer.full_count(), 4);
    consumer.release();
    producer.try_push(1, &payload(1000, 56)).unwrap();
    for bytes in pushed.iter().skip(1) {
        assert_eq!(read_one(&mut consumer), Some((1, bytes.clone())));
    }
    assert_eq!(read_one(&mut consumer), Some((1, payload(1000, 56))));
}

#[test]
fn empty_ring_accepts_the_largest_record_even_across_the_end() {
    // record_bytes_max fits an empty ring wherever the positions stand, padding included.
    let (mut producer, mut consumer) = small_ring();
    let largest = producer.record_bytes_max() as usize;
    assert_eq!(Geometry::framed_length(largest as u64), CAPACITY_BYTES_MIN / 2);
    for index in [0, 8, 504, 512, 520, CAPACITY_BYTES_MIN - 8] {
        advance_to_index(&mut producer, &mut consumer, index);
        let bytes = payload(index, largest);
        producer.try_push(4, &bytes).unwrap();
        assert_eq!(read_one(&mut consumer), Some((4, bytes)));
    }
    assert_eq!(producer.full_count(), 0);
}

#[test]
fn oversized_record_and_padding_kind_are_refused() {
    // A record over record_bytes_max is TooLarge and kind 0 is ReservedKind; neither is counted as Full.
    let (mut producer, consumer) = small_ring();
    let record_bytes_max = producer.record_bytes_max();
    let too_large = vec![0u8; record_bytes_max as usize + 1];
    assert_eq!(
        producer.try_push(1, &too_large),
        Err(PushError::TooLarge { length: u64::from(record_bytes_max) + 1, record_bytes_max })
    );
    assert_eq!(producer.try_push(PADDING_KIND, b"x"), Err(PushError::ReservedKind { kind: PADDING_KIND }));
    let message = producer.try_push(1, &too_large).unwrap_err().to_string();
    assert!(message.contains(&record_bytes_max.to_string()), "{message}");
    assert_eq!(producer.full_count(), 0);
    assert_eq!(consumer.peek().unwrap(), None);
}

#[test]
fn abandoned_reservation_publishes_nothing() {
    // Dropping a reservation without commit leaves the ring empty and the space reusable.
    let (mut producer, mut consumer) = small_ring();
    {
        let mut reservation = producer.try_reserve(3, 32).unwrap();
        reservation.payload_mut().fill(0xEE);
    }
    assert_eq!(consumer.read().unwrap(), None);
    let mut reservation = producer.try_reserve(3, 4).unwrap();
    reservation.payload_mut().copy_from_slice(b"abcd");
    reservation.commit();
    assert_eq!(read_one(&mut consumer), Some((3, b"abcd".to_vec())));
}

#[test]
fn read_batch_reads_at_most_the_limit_and_releases_once() {
    // read_batch stops at records_max, releases what it read, and leaves the rest for the next call.
    let (mut producer, mut consumer) = small_ring();
    for seed in 0..10u64 {
        producer.try_push(1, &payload(seed, 24)).unwrap();
    }
    let mut seen = Vec::new();
    let records_read = consumer.read_batch(4, |record| seen.push(record.payload.to_vec())).unwrap();
    assert_eq!(records_read, 4);
    assert_eq!(consumer.monitor().metrics().consumer_position, 4 * Geometry::framed_length(24));
    let records_read = consumer.read_batch(100, |record| seen.push(record.payload.to_vec())).unwrap();
    assert_eq!(records_read, 6);
    let expected: Vec<Vec<u8>> = (0..10).map(|seed| payload(seed, 24)).collect();
    assert_eq!(seen, expected);
    assert_eq!(consumer.monitor().metrics().used_bytes, 0);
}

#[test]
fn configuration_out_of_range_is_refused_with_a_clear_message() {
    // Capacities that are not powers of two or out of range, and oversized record limits, are refused by name.
    for capacity in [0, 1000, CAPACITY_BYTES_MIN / 2, CAPACITY_BYTES_MAX * 2] {
        let error = Ring::anonymous(capacity).err().expect("must be refused");
        assert!(error.to_string().contains("capacity_bytes"), "{error}");
    }
    let config = RingConfig { capacity_bytes: 4096, record_bytes_max: 2048 - 7 };
    let error = Ring::anonymous_with(config).err().expect("framed length over half the capacity");
    assert!(error.to_string().contains("record_bytes_max") && error.to_string().contains("2041"), "{error}");
    let config = RingConfig { capacity_bytes: 4096, record_bytes_max: 0 };
    assert!(Ring::anonymous_with(config).is_err());
    let config = RingConfig { capacity_bytes: 4096, record_bytes_max: 100 };
    assert_eq!(Ring::anonymous_with(config).unwrap().record_bytes_max(), 100);
}

#[test]
fn file_ring_written_by_one_mapping_is_read_by_another() {
    // Records pushed through one mapping of a /dev/shm file are read through a second, independent mapping.
    let temp = TempRingPath::new("two-mappings");
    let writer = Ring::create_file(&temp.path, 4096).unwrap();
    let reader = Ring::open_file(&temp.path).unwrap();
    assert_eq!((reader.capacity_bytes(), reader.record_bytes_max()), (4096, writer.record_bytes_max()));
    let (mut producer, _unused_consumer) = writer.split().unwrap();
    let (_unused_producer, mut consumer) = reader.split().unwrap();
    for seed in 0..200u64 {
        let bytes = payload(seed, (seed % 150) as usize);
        while producer.try_push(2, &bytes) == Err(PushError::Full) {
            assert!(read_one(&mut consumer).is_some(), "full ring must have something to read");
        }
    }
    let metrics = producer.monitor().metrics();
    assert!(metrics.producer_position > 4096, "the file ring wrapped");
    let mut drained = 0;
    while read_one(&mut consumer).is_some() {
        drained += 1;
    }
    assert!(drained > 0);
    assert_eq!(producer.monitor().metrics().used_bytes, 0);
}

#[test]
fn file_ring_reopened_continues_at_its_positions() {
    // Reopening a ring file keeps unread records and positions, so nothing is lost or repeated.
    let temp = TempRingPath::new("reopen");
    {
        let (mut producer, mut consumer) = Ring::create_file(&temp.path, 2048).unwrap().split().unwrap();
        for seed in 0..5u64 {
            producer.try_push(1, &payload(seed, 30)).unwrap();
        }
        assert_eq!(read_one(&mut consumer), Some((1, payload(0, 30))));
    }
    let (mut producer, mut consumer) = Ring::open_file(&temp.path).unwrap().split().unwrap();
    producer.try_push(1, &payload(5, 30)).unwrap();
    for seed in 1..=5u64 {
        assert_eq!(read_one(&mut consumer), Some((1, payload(seed, 30))));
    }
    assert_eq!(read_one(&mut consumer), None);
}

#[test]
fn create_file_refuses_to_replace_an_existing_file() {
    // create_file on an existing path fails instead of resetting a ring that may be in use.
    let temp = TempRingPath::new("exists");
    let _ring = Ring::create_file(&temp.path, 2048).unwrap();
    let error = Ring::create_file(&temp.path, 2048).err().expect("second create must fail");
    assert!(matches!(error, RingError::Io { operation: "create", .. }), "{error}");
}

#[test]
fn open_file_refuses_garbage_short_and_missing_files() {
    // Files that are not rings (garbage, too short, wrong length, missing) give clear errors, never a mapping.
    let temp = TempRingPath::new("garbage");
    std::fs::write(&temp.path, vec![0xA5u8; 4096 + 2048]).unwrap();
    let error = Ring::open_file(&temp.path).err().expect("garbage");
    assert!(matches!(error, RingError::Invalid { field: "magic", .. }), "{error}");

    std::fs::write(&temp.path, b"short").unwrap();
    let error = Ring::open_file(&temp.path).err().expect("short");
    assert!(matches!(error, RingError::Invalid { field: "file length", value: 5, .. }), "{error}");

    std::fs::remove_file(&temp.path).unwrap();
    drop(Ring::create_file(&temp.path, 2048).unwrap());
    let file = OpenOptions::new().write(true).open(&temp.path).unwrap();
    file.set_len(4096 + 4096).unwrap();
    let error = Ring::open_file(&temp.path).err().expect("length disagrees with capacity");
    assert!(matches!(error, RingError::Invalid { field: "file length", value: 8192, .. }), "{error}");

    let missing = TempRingPath::new("missing");
    let error = Ring::open_file(&missing.path).err().expect("missing");
    assert!(matches!(error, RingError::Io { operation: "open", .. }), "{error}");
}

/// Set in the child process of `create_file_removes_the_file_when_sizing_fails`:
/// the ring file path it must try to create under a file size limit.
const SIZING_CHILD_PATH_VARIABLE: &str = "TRADEBRIDGE_RING_SIZING_CHILD_PATH";

/// Printed by that child once its checks passed, so the parent knows the
/// child really ran them (libtest exits 0 when a filter matches no test).
const SIZING_CHILD_MARKER: &str = "sizing child: error reported and file removed";

#[test]
fn create_file_removes_the_file_when_sizing_fails() {
    // When set_len fails (under a 1 KiB file size limit, in a child process) create_file reports it and leaves no file behind.
    if let Some(path) = std::env::var_os(SIZING_CHILD_PATH_VARIABLE) {
        sizing_child(Path::new(&path));
        return;
    }
    let temp = TempRingPath::new("sizing-fails");
    let test_name = "ring::tests::create_file_removes_the_file_when_sizing_fails";
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(SIZING_CHILD_PATH_VARIABLE, &temp.path)
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the child failed: {printed}");
    assert!(printed.contains(SIZING_CHILD_MARKER), "the child did not run the check: {printed}");
    assert!(!temp.path.exists());
}

/// The child's half: limit file sizes for this process, then create a ring
/// file larger than the limit.
fn sizing_child(path: &Path) {
    // SAFETY: plain libc calls with valid arguments. This process runs only
    // this test on one thread (the parent asked for exactly that), so the
    // process-wide signal disposition and size limit touch nothing else.
    unsafe {
        // Without this, exceeding the limit kills the process with SIGXFSZ
        // instead of failing the call with EFBIG.
        assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = 1024;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let error = Ring::create_file(path, 2048).err().expect("a ring file above the size limit");
    assert!(matches!(error, RingError::Io { operation: "set length", .. }), "{error}");
    assert!(!path.exists(), "the half-made file was removed");
    println!("{SIZING_CHILD_MARKER}");
}

/// Overwrites bytes of a ring file through the file API (a foreign writer).
fn scribble(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

#[test]
fn open_file_refuses_bad_header_fields_and_positions() {
    // A wrong version, a non-power-of-two capacity or impossible positions are refused by field name.
    let temp = TempRingPath::new("bad-fields");
    drop(Ring::create_file(&temp.path, 2048).unwrap());
    scribble(&temp.path, 8, &2u32.to_ne_bytes());
    let error = Ring::open_file(&temp.path).err().expect("version");
    assert!(matches!(error, RingError::Invalid { field: "version", value: 2, .. }), "{error}");
    scribble(&temp.path, 8, &RING_VERSION.to_ne_bytes());
    scribble(&temp.path, 16, &3000u64.to_ne_bytes());
    let error = Ring::open_file(&temp.path).err().expect("capacity");
    assert!(matches!(error, RingError::Invalid { field: "capacity_bytes", value: 3000, .. }), "{error}");
    scribble(&temp.path, 16, &2048u64.to_ne_bytes());
    assert!(Ring::open_file(&temp.path).is_ok());
    scribble(&temp.path, CONSUMER_CURSOR_OFFSET as u64, &16u64.to_ne_bytes());
    let error = Ring::open_file(&temp.path).err().expect("consumer ahead of producer");
    assert!(matches!(error, RingError::Invalid { field: "consumer position", value: 16, .. }), "{error}");
    scribble(&temp.path, PRODUCER_CURSOR_OFFSET as u64, &(16u64 + 4096).to_ne_bytes());
    let error = Ring::open_file(&temp.path).err().expect("producer beyond capacity");
    assert!(matches!(error, RingError::Invalid { field: "producer position", .. }), "{error}");
}

#[test]
fn open_file_refuses_positions_above_the_headroom() {
    // Positions near u64::MAX are refused at open instead of overflowing on the first push; POSITION_MAX itself still works.
    let temp = TempRingPath::new("near-max");
    drop(Ring::create_file(&temp.path, 2048).unwrap());
    let near_max = u64::MAX - 7;
    scribble(&temp.path, PRODUCER_CURSOR_OFFSET as u64, &near_max.to_ne_bytes());
    scribble(&temp.path, CONSUMER_CURSOR_OFFSET as u64, &near_max.to_ne_bytes());
    let error = Ring::open_file(&temp.path).err().expect("positions above the headroom");
    assert!(matches!(error, RingError::Invalid { field: "producer position", value, .. } if value == near_max), "{error}");
    assert!(error.to_string().contains("at most 9223372036854775808"), "{error}");

    scribble(&temp.path, PRODUCER_CURSOR_OFFSET as u64, &POSITION_MAX.to_ne_bytes());
    scribble(&temp.path, CONSUMER_CURSOR_OFFSET as u64, &POSITION_MAX.to_ne_bytes());
    let (mut producer, mut consumer) = Ring::open_file(&temp.path).unwrap().split().unwrap();
    for seed in 0..100u64 {
        producer.try_push(3, &payload(seed, 100)).unwrap();
        assert_eq!(read_one(&mut consumer), Some((3, payload(seed, 100))));
    }
    assert!(consumer.monitor().metrics().consumer_position > POSITION_MAX + 2048, "ran past the headroom mark");
}

#[test]
fn split_validates_the_positions_it_loads() {
    // Positions a foreign writer changes after open_file checked them make split return an error, not panic.
    let temp = TempRingPath::new("split-recheck");
    drop(Ring::create_file(&temp.path, 2048).unwrap());
    let ring = Ring::open_file(&temp.path).unwrap();
    scribble(&temp.path, CONSUMER_CURSOR_OFFSET as u64, &16u64.to_ne_bytes());
    let error = ring.split().err().expect("consumer ahead of producer");
    assert!(matches!(error, RingError::Invalid { field: "consumer position", value: 16, .. }), "{error}");

    scribble(&temp.path, CONSUMER_CURSOR_OFFSET as u64, &0u64.to_ne_bytes());
    let ring = Ring::open_file(&temp.path).unwrap();
    scribble(&temp.path, PRODUCER_CURSOR_OFFSET as u64, &(POSITION_MAX + 8).to_ne_bytes());
    let error = ring.split().err().expect("producer above the headroom");
    assert!(matches!(error, RingError::Invalid { field: "producer position", .. }), "{error}");
}

#[test]
fn reserving_past_u64_max_is_corrupt_not_a_panic() {
    // A producer position that would overflow on reservation yields PushError::Corrupt naming it.
    let (mut producer, _consumer) = small_ring();
    let near_max = u64::MAX - 7;
    producer.position = near_max;
    producer.consumer_position_cached = near_max;
    let error = producer.try_push(1, &payload(1, 100)).unwrap_err();
    assert!(matches!(error, PushError::Corrupt(Corruption { field: "producer position", value, .. }) if value == near_max), "{error}");
    assert_eq!(producer.position, near_max, "nothing was published");
}

#[test]
fn corrupt_frame_from_a_foreign_writer_is_an_error_not_a_wild_read() {
    // A frame length or producer position scribbled by another writer yields ReadError::Corrupt.
    let temp = TempRingPath::new("corrupt-frame");
    let (mut producer, mut consumer) = Ring::create_file(&temp.path, 2048).unwrap().split().unwrap();
    producer.try_push(1, &payload(1, 16)).unwrap();
    scribble(&temp.path, HEADER_BYTES, &u32::MAX.to_ne_bytes());
    let error = consumer.read().unwrap_err();
    assert!(matches!(error, ReadError::Corrupt(Corruption { field: "frame length", .. })), "{error}");
    scribble(&temp.path, HEADER_BYTES, &16u32.to_ne_bytes());
    assert_eq!(read_one(&mut consumer), Some((1, payload(1, 16))));

    producer.try_push(1, &payload(2, 16)).unwrap();
    // A padding frame whose length does not reach the end of the region.
    scribble(&temp.path, HEADER_BYTES + 24, &[8, 0, 0, 0, 0, 0, 0, 0]);
    let error = consumer.read().unwrap_err();
    assert!(matches!(error, ReadError::Corrupt(Corruption { field: "padding length", .. })), "{error}");

    scribble(&temp.path, HEADER_BYTES + 24, &16u32.to_ne_bytes());
    scribble(&temp.path, HEADER_BYTES + 28, &1u32.to_ne_bytes());
    assert_eq!(read_one(&mut consumer), Some((1, payload(2, 16))));

    // A producer position beyond capacity of the consumer's is caught on reload.
    scribble(&temp.path, PRODUCER_CURSOR_OFFSET as u64, &(1u64 << 40).to_ne_bytes());
    let error = consumer.read().unwrap_err();
    assert!(matches!(error, ReadError::Corrupt(Corruption { field: "producer position", .. })), "{error}");
    assert!(Ring::open_file(&temp.path).is_err(), "open_file refuses the impossible position too");
}

#[test]
fn monitor_reports_positions_and_use() {
    // The monitor sees published bytes, released bytes and the Full count as they change.
    let (mut producer, mut consumer) = small_ring();
    let monitor = producer.monitor();
    producer.try_push(1, &payload(0, 100)).unwrap();
    let framed = Geometry::framed_length(100);
    assert_eq!(
        monitor.metrics(),
        RingMetrics { producer_position: framed, consumer_position: 0, used_bytes: framed, capacity_bytes: CAPACITY_BYTES_MIN, full_count: 0 }
    );
    assert!(consumer.read().unwrap().is_some());
    assert_eq!(monitor.metrics().consumer_position, 0, "not released yet");
    consumer.release();
    assert_eq!(monitor.metrics().used_bytes, 0);
}

#[test]
fn handles_are_send_and_not_clone() {
    // Producer and Consumer can move to other threads; the monitor can be shared.
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Producer>();
    assert_send::<Consumer>();
    assert_send_sync::<RingMonitor>();
    let (mut producer, consumer) = small_ring();
    let reader = std::thread::spawn(move || {
        let mut consumer = consumer;
        let mut records = Vec::new();
        while records.len() < 3 {
            consumer.read_batch(8, |record| records.push(record.payload.to_vec())).unwrap();
            std::thread::yield_now();
        }
        records
    });
    for seed in 0..3u64 {
        while producer.try_push(1, &payload(seed, 8)) == Err(PushError::Full) {
            std::thread::yield_now();
        }
    }
    let records = reader.join().unwrap();
    assert_eq!(records, (0..3).map(|seed| payload(seed, 8)).collect::<Vec<_>>());
}

#[test]
fn idler_backoff_spins_then_yields_then_parks_and_resets() {
    // Backoff returns exactly spin_steps_max spins, then yield_steps_max yields, then parks until reset.
    let mut idler = Idler::new(IdleStrategy::Backoff { spin_steps_max: 3, yield_steps_max: 2 });
    let actions: Vec<IdleAction> = (0..7).map(|_| idler.idle()).collect();
    use IdleAction::{Park, Spin, Yield};
    assert_eq!(actions, vec![Spin, Spin, Spin, Yield, Yield, Park, Park]);
    idler.reset();
    assert_eq!(idler.idle(), Spin);
    let mut spinner = Idler::new(IdleStrategy::Spin);
    let mut yielder = Idler::new(IdleStrategy::Yield);
    for _ in 0..10 {
        assert_eq!(spinner.idle(), Spin);
        assert_eq!(yielder.idle(), Yield);
    }
}
