//! A bounded single-producer single-consumer ring of variable-length records
//! over a memory mapping: anonymous, or a file (under `/dev/shm`) that an
//! outside process, such as a monitoring tool, can map and read.
//!
//! In the bridge, each (shard -> router) and (router -> shard) direction is
//! one of these rings; the payloads are rkyv archives from [`crate::record`].
//!
//! # Layout
//! ```text
//!  mapping offset
//!  0            128             256             384                   4096
//!  +------------+---------------+---------------+---- ... ------------+
//!  | Descriptor | ProducerCursor| ConsumerCursor| zero                |  header page
//!  | magic      | position  u64 | position  u64 |                     |
//!  | version    | full_count u64|               |                     |
//!  | capacity   |               |               |                     |
//!  | record max |               |               |                     |
//!  +------------+---------------+---------------+---- ... ------------+
//!  4096                                              4096 + capacity_bytes
//!  +--------+---------+-----+--------+---------+-----+ ... +---------------+
//!  | header | payload | pad | header | payload | pad |     | header | pad  |
//!  +--------+---------+-----+--------+---------+-----+ ... +---------------+
//!   \______ one frame ______/                               padding frame:
//!                                                           kind 0, fills
//!   frame header (8 bytes, FrameHeader):                    the tail so no
//!     length u32  payload bytes, without header or pad      frame straddles
//!     kind   u32  record tag; 0 = padding                   the end
//!   a frame starts and ends on FRAME_ALIGNMENT_BYTES (8), so every payload
//!   starts 8-aligned and an rkyv archive can be read in place.
//! ```
//!
//! Positions are byte counts since creation (u64, never wrapping: 2^64 bytes
//! at 10 GB/s is 58 years); a position's place in the data region is
//! `position & (capacity_bytes - 1)`, computed only in `Geometry`. A ring
//! file whose positions are above [`POSITION_MAX`] is refused, and the
//! producer's arithmetic is checked, so a corrupt file yields an error,
//! never an overflow.
//!
//! Publication (Aeron style): the producer reserves, writes the payload and
//! the frame header, then stores its position with `Release`: that store is
//! the commit point. The consumer loads it with `Acquire`, reads, and stores
//! its own position with `Release`; the producer loads that with `Acquire`
//! before reusing the bytes. Header integers are native-endian: the file is
//! shared between processes on one host, never across machines.
//!
//! # Payloads written by another process
//! A payload is handed out in place, and stays unchanged until released as
//! long as the producer keeps to the protocol. A producer in this process
//! does (ownership enforces it), so its payloads can be validated and read
//! in place. A producer in another process (a file ring opened with
//! [`Ring::open_file`] whose other end is elsewhere) is outside Rust's rules:
//! it may rewrite a payload while it is being read, so validating it in
//! place and then reading it is not sound. Copy such payloads before
//! validating them, with [`crate::record::CopyingDecoder`]. The frame
//! headers and positions the consumer itself relies on are read by value
//! and bounds-checked, so such a producer can make the consumer report
//! [`ReadError`] or hand out wrong bytes, never read outside the mapping.
//!
//! # Invariants
//! - `consumer position <= producer position <= consumer position + capacity`.
//! - Both positions are multiples of [`FRAME_ALIGNMENT_BYTES`].
//! - Bytes in `[consumer, producer)` are owned by the consumer; the rest of
//!   the data region by the producer. [`Reservation`] hands out only producer
//!   bytes, [`Consumer::read`] only consumer bytes.
//! - A frame never straddles the end of the data region.
//! - `framed length of record_bytes_max <= capacity / 2`, so an empty ring
//!   always accepts any record, even one that needs a padding frame first.
//! - One [`Producer`] and one [`Consumer`] per ring in a process, enforced by
//!   ownership: [`Ring::split`] consumes the ring (validating the positions
//!   it starts the handles from) and neither handle is
//!   `Clone`. Across processes (a file ring) it is the operator's contract;
//!   the consumer still bounds-checks every frame header it reads (copied by
//!   value), so a misbehaving writer yields [`ReadError`], never an access
//!   outside the mapping. Payload bytes are another matter: see "Payloads
//!   written by another process" above.
//! - The library never reads a clock or sleeps; [`Idler`] only decides what
//!   the caller should do when idle.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

/// Every frame starts and ends on this alignment. 8 because the archived
/// records carry u64/f64 fields (asserted in `record.rs`) and the frame
/// header is 8 bytes, so payloads land on 8 too.
pub const FRAME_ALIGNMENT_BYTES: u64 = 8;

/// Size of `FrameHeader`, the 8-byte header in front of every frame.
pub const FRAME_HEADER_BYTES: u64 = 8;

/// The frame kind that marks padding at the end of the data region. Record
/// kinds must differ from it (see `RecordKind`, which starts at 1).
pub const PADDING_KIND: u32 = 0;

/// "TBRING" plus two marker bytes; identifies a ring file and, read back in
/// the wrong byte order, shows up as a bad magic rather than garbage sizes.
pub const RING_MAGIC: u64 = u64::from_le_bytes(*b"TBRING\x00\x01");

/// Layout version of the header and frames; bumped on any layout change.
pub const RING_VERSION: u32 = 1;

/// Smallest data region: below this a ring holds so few records that it is
/// full most of the time; tests still get frequent wrap-around at this size.
pub const CAPACITY_BYTES_MIN: u64 = 1024;

/// Largest data region: a shard ring that needs more than 1 GiB means its
/// consumer has stalled, and a larger mapping only hides that.
pub const CAPACITY_BYTES_MAX: u64 = 1 << 30;

/// Default data region: 1 MiB holds about 5000 records of 200 bytes, many
/// milliseconds of a busy master's burst, and fits in L2 on most servers.
pub const CAPACITY_BYTES_DEFAULT: u64 = 1 << 20;

/// Largest position a ring file may hold when it is opened or split. A real
/// ring reaches 2^63 bytes only after 29 years at 10 GB/s, so a larger value
/// is corruption; refusing it leaves 2^63 bytes of headroom, so that adding
/// a reservation (at most one capacity plus a padding tail) to a position
/// cannot overflow for decades of running. The producer still checks that
/// arithmetic and reports an overflow as [`PushError::Corrupt`].
pub const POSITION_MAX: u64 = 1 << 63;

/// Size of the header page; the data region starts here, page-aligned.
const HEADER_BYTES: u64 = 4096;

/// Alignment of the cursor structs: two cache lines, because the adjacent
/// line prefetcher on x86 pulls lines in pairs.
const CURSOR_ALIGNMENT_BYTES: usize = 128;

/// The first struct of the header page. Written once at creation, before
/// `magic` is published; read-only afterwards.
///
/// ```text
///  0       8        12                 16        24                28                    32      128
///  | magic | version| frame_alignment  | capacity | record_bytes_max| header_bytes | zero ... |
/// ```
#[repr(C, align(128))]
struct Descriptor {
    /// [`RING_MAGIC`]; stored last at creation with `Release`, so a reader
    /// that loads it with `Acquire` and sees the magic also sees every other
    /// field.
    magic: AtomicU64,
    /// [`RING_VERSION`] at creation.
    version: u32,
    /// [`FRAME_ALIGNMENT_BYTES`] at creation.
    frame_alignment_bytes: u32,
    /// Size of the data region; a power of two.
    capacity_bytes: u64,
    /// Largest payload one frame may carry.
    record_bytes_max: u32,
    /// Offset of the data region from the start of the mapping.
    header_bytes: u32,
}

/// The producer's side of the header; only the producer writes it.
#[repr(C, align(128))]
struct ProducerCursor {
    /// End of the last committed frame. Stored with `Release` after the
    /// frame's payload and header are written, so a consumer that loads it
    /// with `Acquire` sees those bytes (happens-before via release/acquire).
    position: AtomicU64,
    /// Number of `Full` outcomes since creation, for metrics. Relaxed: it
    /// orders nothing, and only the producer writes it.
    full_count: AtomicU64,
}

/// The consumer's side of the header; only the consumer writes it.
#[repr(C, align(128))]
struct ConsumerCursor {
    /// End of the last released frame. Stored with `Release` after the
    /// consumer's last read of those bytes, so a producer that loads it with
    /// `Acquire` overwrites them only after the reads (no torn records).
    position: AtomicU64,
}

/// The frame header in front of every payload.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct FrameHeader {
    /// Payload bytes, without header or padding. For a padding frame: the
    /// bytes from the end of this header to the end of the data region.
    length: u32,
    /// Record tag; [`PADDING_KIND`] for padding.
    kind: u32,
}

const DESCRIPTOR_OFFSET: usize = 0;
const PRODUCER_CURSOR_OFFSET: usize = DESCRIPTOR_OFFSET + std::mem::size_of::<Descriptor>();
const CONSUMER_CURSOR_OFFSET: usize = PRODUCER_CURSOR_OFFSET + std::mem::size_of::<ProducerCursor>();

const _: () = assert!(std::mem::size_of::<Descriptor>() == CURSOR_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::align_of::<Descriptor>() == CURSOR_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::size_of::<ProducerCursor>() == CURSOR_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::align_of::<ProducerCursor>() == CURSOR_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::size_of::<ConsumerCursor>() == CURSOR_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::align_of::<ConsumerCursor>() == CURSOR_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::size_of::<FrameHeader>() as u64 == FRAME_HEADER_BYTES);
const _: () = assert!(std::mem::align_of::<FrameHeader>() as u64 <= FRAME_ALIGNMENT_BYTES);
const _: () = assert!(FRAME_HEADER_BYTES & (FRAME_ALIGNMENT_BYTES - 1) == 0);
const _: () = assert!(FRAME_ALIGNMENT_BYTES.is_power_of_two());
const _: () = assert!(CONSUMER_CURSOR_OFFSET + std::mem::size_of::<ConsumerCursor>() <= HEADER_BYTES as usize);
const _: () = assert!(HEADER_BYTES & (CURSOR_ALIGNMENT_BYTES as u64 - 1) == 0);
const _: () = assert!(CAPACITY_BYTES_MIN.is_power_of_two() && CAPACITY_BYTES_MAX.is_power_of_two());
const _: () = assert!(CAPACITY_BYTES_MIN <= CAPACITY_BYTES_DEFAULT && CAPACITY_BYTES_DEFAULT <= CAPACITY_BYTES_MAX);
// The cursor atomics are accessed in the mapping as `AtomicU64`, which has the
// size of a u64 and the alignment of one; the offsets above keep it aligned.
const _: () = assert!(std::mem::size_of::<AtomicU64>() == 8 && std::mem::align_of::<AtomicU64>() == 8);

/// Sizes of a ring, validated once; every offset is computed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    /// Size of the data region; a power of two in the allowed range.
    capacity_bytes: u64,
    /// Largest payload; its framed length is at most half the capacity.
    record_bytes_max: u32,
}

impl Geometry {
    fn mask(self) -> u64 {
        self.capacity_bytes - 1
    }

    /// Offset of `position` inside the data region.
    fn index(self, position: u64) -> usize {
        (position & self.mask()) as usize
    }

    /// Bytes from `position` to the end of the data region (never 0).
    fn bytes_to_end(self, position: u64) -> u64 {
        self.capacity_bytes - (position & self.mask())
    }

    /// Header + payload, rounded up to the frame alignment.
    fn framed_length(payload_bytes: u64) -> u64 {
        (FRAME_HEADER_BYTES + payload_bytes + FRAME_ALIGNMENT_BYTES - 1) & !(FRAME_ALIGNMENT_BYTES - 1)
    }

    fn mapping_bytes(self) -> u64 {
        HEADER_BYTES + self.capacity_bytes
    }
}

/// How large a ring is and the largest record it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Size of the data region; a power of two in
    /// [`CAPACITY_BYTES_MIN`]..=[`CAPACITY_BYTES_MAX`].
    pub capacity_bytes: u64,
    /// Largest payload; its framed length must be at most half the capacity.
    pub record_bytes_max: u32,
}

impl RingConfig {
    /// A ring of `capacity_bytes` whose records may use up to half of it.
    pub fn new(capacity_bytes: u64) -> RingConfig {
        let half = capacity_bytes / 2;
        let record_bytes_max = half.saturating_sub(FRAME_HEADER_BYTES).min(u64::from(u32::MAX)) as u32;
        RingConfig { capacity_bytes, record_bytes_max }
    }

    fn geometry(self) -> Result<Geometry, RingError> {
        let capacity_bytes = self.capacity_bytes;
        if !capacity_bytes.is_power_of_two()
            || !(CAPACITY_BYTES_MIN..=CAPACITY_BYTES_MAX).contains(&capacity_bytes)
        {
            return Err(RingError::invalid(
                "capacity_bytes",
                capacity_bytes,
                format!("a power of two in {CAPACITY_BYTES_MIN}..={CAPACITY_BYTES_MAX}"),
            ));
        }
        let framed_max = Geometry::framed_length(u64::from(self.record_bytes_max));
        if self.record_bytes_max == 0 || framed_max > capacity_bytes / 2 {
            return Err(RingError::invalid(
                "record_bytes_max",
                u64::from(self.record_bytes_max),
                format!(
                    "1..={} (framed length at most capacity_bytes / 2 = {})",
                    capacity_bytes / 2 - FRAME_HEADER_BYTES,
                    capacity_bytes / 2
                ),
            ));
        }
        let geometry = Geometry { capacity_bytes, record_bytes_max: self.record_bytes_max };
        assert!(Geometry::framed_length(u64::from(geometry.record_bytes_max)) <= geometry.capacity_bytes / 2);
        assert!(geometry.mapping_bytes() <= HEADER_BYTES + CAPACITY_BYTES_MAX);
        Ok(geometry)
    }
}

impl Default for RingConfig {
    fn default() -> RingConfig {
        RingConfig::new(CAPACITY_BYTES_DEFAULT)
    }
}

/// Why a ring could not be created or opened.
#[derive(Debug)]
pub enum RingError {
    /// A configuration value or a file header field is out of range.
    Invalid { field: &'static str, value: u64, expected: String },
    /// The file or the mapping could not be created, opened or sized.
    Io { operation: &'static str, path: PathBuf, source: std::io::Error },
}

impl RingError {
    fn invalid(field: &'static str, value: u64, expected: String) -> RingError {
        RingError::Invalid { field, value, expected }
    }

    fn io<'path>(operation: &'static str, path: &'path Path) -> impl FnOnce(std::io::Error) -> RingError + 'path {
        move |source| RingError::Io { operation, path: path.to_path_buf(), source }
    }
}

impl std::fmt::Display for RingError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::Invalid { field, value, expected } => {
                write!(formatter, "ring field `{field}` is {value} (0x{value:x}), expected {expected}")
            }
            RingError::Io { operation, path, source } => {
                write!(formatter, "ring file {}: {operation} failed: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RingError::Io { source, .. } => Some(source),
            RingError::Invalid { .. } => None,
        }
    }
}

/// A value in the shared mapping that breaks the ring's invariants. Only a
/// writer outside this process (or memory corruption) can cause one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// Which value: "producer position", "consumer position", "frame length"...
    pub field: &'static str,
    /// The value found.
    pub value: u64,
    /// Ring position at which it was found.
    pub position: u64,
    /// What was expected instead.
    pub expected: &'static str,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "ring {} is {} at position {}, expected {}",
            self.field, self.value, self.position, self.expected
        )
    }
}

/// Why a record was not accepted. `Full` is the normal back-pressure outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// Not enough free space now; nothing was written. Counted in `full_count`.
    Full,
    /// The payload exceeds the ring's `record_bytes_max`; it never fits.
    TooLarge { length: u64, record_bytes_max: u32 },
    /// The kind is [`PADDING_KIND`], which the ring reserves.
    ReservedKind { kind: u32 },
    /// The consumer position in the mapping breaks the invariants.
    Corrupt(Corruption),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Full => write!(formatter, "ring is full"),
            PushError::TooLarge { length, record_bytes_max } => write!(
                formatter,
                "record length {length} bytes exceeds record_bytes_max = {record_bytes_max}"
            ),
            PushError::ReservedKind { kind } => {
                write!(formatter, "record kind {kind} is reserved for padding, expected a kind other than {PADDING_KIND}")
            }
            PushError::Corrupt(corruption) => corruption.fmt(formatter),
        }
    }
}

impl std::error::Error for PushError {}

/// Why the consumer could not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The producer position or a frame header breaks the invariants.
    Corrupt(Corruption),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Corrupt(corruption) => corruption.fmt(formatter),
        }
    }
}

impl std::error::Error for ReadError {}

/// The mapping, shared by the ring's handles; lives until the last one drops.
struct Mapping {
    /// The raw mapping; never handed out as a Rust reference to its whole
    /// extent, only as the cursors (atomics) and disjoint byte ranges.
    raw: MmapRaw,
    /// Sizes, validated against `raw.len()` before this struct exists.
    geometry: Geometry,
}

impl Mapping {
    fn new(raw: MmapRaw, geometry: Geometry) -> Mapping {
        assert!(raw.len() as u64 >= geometry.mapping_bytes());
        assert_eq!(raw.as_ptr() as usize % CURSOR_ALIGNMENT_BYTES, 0, "mappings are page-aligned");
        Mapping { raw, geometry }
    }

    fn descriptor(&self) -> *mut Descriptor {
        // The offset is inside the mapping (asserted in `new`) and aligned.
        self.raw.as_mut_ptr().wrapping_add(DESCRIPTOR_OFFSET).cast()
    }

    fn magic(&self) -> &AtomicU64 {
        // SAFETY: the descriptor lies inside the mapping, 128-aligned; `magic`
        // is an atomic, so a shared reference is sound while others write it.
        unsafe { &(*self.descriptor()).magic }
    }

    fn producer_cursor(&self) -> &ProducerCursor {
        // SAFETY: in bounds and aligned (see `new` and the const asserts); the
        // struct holds only atomics, so shared references are sound even while
        // another thread or process writes them.
        unsafe { &*self.raw.as_ptr().add(PRODUCER_CURSOR_OFFSET).cast::<ProducerCursor>() }
    }

    fn consumer_cursor(&self) -> &ConsumerCursor {
        // SAFETY: as for `producer_cursor`.
        unsafe { &*self.raw.as_ptr().add(CONSUMER_CURSOR_OFFSET).cast::<ConsumerCursor>() }
    }

    /// Start of the data region.
    fn data(&self) -> *mut u8 {
        self.raw.as_mut_ptr().wrapping_add(HEADER_BYTES as usize)
    }

    /// Writes the descriptor of a fresh (zeroed) mapping and publishes it.
    fn initialise(&self) {
        let descriptor = self.descriptor();
        let geometry = self.geometry;
        assert_eq!(self.magic().load(Ordering::Relaxed), 0, "a fresh mapping is zeroed");
        // SAFETY: nobody else can have read this mapping's fields yet: the
        // magic is still 0, so any reader refuses it before reading them.
        unsafe {
            std::ptr::addr_of_mut!((*descriptor).version).write(RING_VERSION);
            std::ptr::addr_of_mut!((*descriptor).frame_alignment_bytes).write(FRAME_ALIGNMENT_BYTES as u32);
            std::ptr::addr_of_mut!((*descriptor).capacity_bytes).write(geometry.capacity_bytes);
            std::ptr::addr_of_mut!((*descriptor).record_bytes_max).write(geometry.record_bytes_max);
            std::ptr::addr_of_mut!((*descriptor).header_bytes).write(HEADER_BYTES as u32);
        }
        self.magic().store(RING_MAGIC, Ordering::Release);
    }

    /// Validates the header of an existing mapping and returns its sizes.
    fn read_geometry(raw: &MmapRaw, path: &Path) -> Result<Geometry, RingError> {
        let mapping_bytes = raw.len() as u64;
        assert!(mapping_bytes >= HEADER_BYTES);
        let descriptor = raw.as_ptr().cast::<Descriptor>();
        // SAFETY: the mapping holds at least the header page (checked by the
        // caller and asserted above) and is page-aligned; `magic` is atomic.
        let magic = unsafe { &(*descriptor).magic }.load(Ordering::Acquire);
        if magic != RING_MAGIC {
            return Err(RingError::invalid("magic", magic, format!("0x{RING_MAGIC:x} (a tradebridge ring file: {})", path.display())));
        }
        // SAFETY: the Acquire load above saw the magic, which the creator
        // stored with Release after these fields, and they never change after.
        let (version, alignment, capacity_bytes, record_bytes_max, header_bytes) = unsafe {
            (
                std::ptr::addr_of!((*descriptor).version).read(),
                std::ptr::addr_of!((*descriptor).frame_alignment_bytes).read(),
                std::ptr::addr_of!((*descriptor).capacity_bytes).read(),
                std::ptr::addr_of!((*descriptor).record_bytes_max).read(),
                std::ptr::addr_of!((*descriptor).header_bytes).read(),
            )
        };
        check_field("version", u64::from(version), u64::from(RING_VERSION))?;
        check_field("frame_alignment_bytes", u64::from(alignment), FRAME_ALIGNMENT_BYTES)?;
        check_field("header_bytes", u64::from(header_bytes), HEADER_BYTES)?;
        let geometry = RingConfig { capacity_bytes, record_bytes_max }.geometry()?;
        check_field("file length", mapping_bytes, geometry.mapping_bytes())?;
        Ok(geometry)
    }

    /// Checks the two positions of an existing mapping against the invariants.
    fn check_positions(&self) -> Result<(), RingError> {
        let consumer = self.consumer_cursor().position.load(Ordering::Acquire);
        let producer = self.producer_cursor().position.load(Ordering::Acquire);
        check_positions(self.geometry, producer, consumer)
    }
}

/// Checks a producer and a consumer position read from a mapping against the
/// invariants: both multiples of the frame alignment, at most
/// [`POSITION_MAX`], the consumer at or below the producer and the producer
/// within one capacity of it.
fn check_positions(geometry: Geometry, producer: u64, consumer: u64) -> Result<(), RingError> {
    assert!(geometry.capacity_bytes.is_power_of_two());
    let alignment_mask = FRAME_ALIGNMENT_BYTES - 1;
    if producer > POSITION_MAX {
        return Err(RingError::invalid(
            "producer position",
            producer,
            format!("at most {POSITION_MAX} (2^63), the headroom that keeps position arithmetic from overflowing"),
        ));
    }
    if consumer & alignment_mask != 0 || consumer > producer {
        return Err(RingError::invalid("consumer position", consumer, format!("a multiple of 8 at or below the producer position {producer}")));
    }
    if producer & alignment_mask != 0 || producer - consumer > geometry.capacity_bytes {
        return Err(RingError::invalid(
            "producer position",
            producer,
            format!("a multiple of 8 within capacity_bytes = {} of the consumer position {consumer}", geometry.capacity_bytes),
        ));
    }
    debug_assert!(consumer <= producer && producer <= POSITION_MAX);
    Ok(())
}

fn check_field(field: &'static str, value: u64, expected: u64) -> Result<(), RingError> {
    if value == expected {
        return Ok(());
    }
    Err(RingError::invalid(field, value, expected.to_string()))
}

/// A ring before it is split into its two handles.
pub struct Ring {
    /// Shared with the handles made by `split` and with every monitor.
    mapping: Arc<Mapping>,
}

impl Ring {
    /// A ring in anonymous memory, with `record_bytes_max` at half the capacity.
    pub fn anonymous(capacity_bytes: u64) -> Result<Ring, RingError> {
        Ring::anonymous_with(RingConfig::new(capacity_bytes))
    }

    pub fn anonymous_with(config: RingConfig) -> Result<Ring, RingError> {
        let geometry = config.geometry()?;
        let mapping_bytes = geometry.mapping_bytes() as usize;
        let mapped = MmapOptions::new()
            .len(mapping_bytes)
            .map_anon()
            .map_err(RingError::io("map anonymous memory", Path::new("(anonymous)")))?;
        let mapping = Mapping::new(MmapRaw::from(mapped), geometry);
        mapping.initialise();
        Ok(Ring { mapping: Arc::new(mapping) })
    }

    /// Creates a new ring file (refusing to replace an existing one, which
    /// may be in use: reopen that with [`Ring::open_file`]).
    pub fn create_file(path: &Path, capacity_bytes: u64) -> Result<Ring, RingError> {
        Ring::create_file_with(path, RingConfig::new(capacity_bytes))
    }

    /// As [`Ring::create_file`], with a chosen `record_bytes_max`. When
    /// sizing or mapping the new file fails, the file is removed again, so
    /// that a retry does not find it in the way.
    pub fn create_file_with(path: &Path, config: RingConfig) -> Result<Ring, RingError> {
        let geometry = config.geometry()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(RingError::io("create", path))?;
        Ring::map_new_file(&file, path, geometry).inspect_err(|_| {
            // Best effort: `create_new` made this file and it holds no ring
            // yet, so nobody else can be using it; the error reported is the
            // one that matters.
            let _ = std::fs::remove_file(path);
        })
    }

    /// Sizes a file just created, maps it and writes the descriptor.
    fn map_new_file(file: &std::fs::File, path: &Path, geometry: Geometry) -> Result<Ring, RingError> {
        assert_eq!(file.metadata().map(|metadata| metadata.len()).unwrap_or(0), 0, "a new file is empty");
        file.set_len(geometry.mapping_bytes()).map_err(RingError::io("set length", path))?;
        let raw = MmapOptions::new()
            .len(geometry.mapping_bytes() as usize)
            .map_raw(file)
            .map_err(RingError::io("map", path))?;
        let mapping = Mapping::new(raw, geometry);
        mapping.initialise();
        Ok(Ring { mapping: Arc::new(mapping) })
    }

    /// Maps an existing ring file, validating its header and positions; a
    /// file that is not a valid ring is an error, never undefined behaviour.
    /// When the producer is another process, copy payloads before
    /// validating them (see "Payloads written by another process" above).
    /// The positions persist in the file, so a reopened ring continues
    /// where it stopped.
    pub fn open_file(path: &Path) -> Result<Ring, RingError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(RingError::io("open", path))?;
        let file_bytes = file.metadata().map_err(RingError::io("read metadata", path))?.len();
        let file_bytes_max = HEADER_BYTES + CAPACITY_BYTES_MAX;
        if !(HEADER_BYTES + CAPACITY_BYTES_MIN..=file_bytes_max).contains(&file_bytes) {
            return Err(RingError::invalid(
                "file length",
                file_bytes,
                format!("{}..={file_bytes_max} bytes (header page plus data region)", HEADER_BYTES + CAPACITY_BYTES_MIN),
            ));
        }
        let raw = MmapOptions::new().len(file_bytes as usize).map_raw(&file).map_err(RingError::io("map", path))?;
        let geometry = Mapping::read_geometry(&raw, path)?;
        let mapping = Mapping::new(raw, geometry);
        mapping.check_positions()?;
        Ok(Ring { mapping: Arc::new(mapping) })
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.mapping.geometry.capacity_bytes
    }

    pub fn record_bytes_max(&self) -> u32 {
        self.mapping.geometry.record_bytes_max
    }

    /// A read-only view of the positions and counters, for metrics.
    pub fn monitor(&self) -> RingMonitor {
        RingMonitor { mapping: Arc::clone(&self.mapping) }
    }

    /// Splits the ring into its only producer and its only consumer, each
    /// starting at the positions stored in the mapping. The positions are
    /// loaded again here and validated as loaded: another process may have
    /// written a file ring since `open_file` checked it, and the handles
    /// must start from values that hold the invariants.
    pub fn split(self) -> Result<(Producer, Consumer), RingError> {
        let mapping = self.mapping;
        let geometry = mapping.geometry;
        let producer_position = mapping.producer_cursor().position.load(Ordering::Acquire);
        let consumer_position = mapping.consumer_cursor().position.load(Ordering::Acquire);
        check_positions(geometry, producer_position, consumer_position)?;
        debug_assert!(producer_position - consumer_position <= geometry.capacity_bytes);
        let producer = Producer {
            mapping: Arc::clone(&mapping),
            geometry,
            position: producer_position,
            consumer_position_cached: consumer_position,
        };
        let consumer = Consumer {
            mapping,
            geometry,
            read_position: std::cell::Cell::new(consumer_position),
            released_position: consumer_position,
            producer_position_cached: std::cell::Cell::new(producer_position),
        };
        Ok((producer, consumer))
    }
}

/// The writing end. `Send` (move it to the producer thread), not `Clone`.
pub struct Producer {
    /// Keeps the mapping alive; shared with the consumer.
    mapping: Arc<Mapping>,
    /// Copy of the mapping's sizes, kept here to avoid an indirection.
    geometry: Geometry,
    /// End of the last committed frame; always equal to the published
    /// producer position. Advances on every commit.
    position: u64,
    /// Consumer position as last loaded. It can only be behind the real one,
    /// which makes the free space look smaller, never larger, so it is
    /// reloaded only when it says "full" (saves a shared cache line read).
    consumer_position_cached: u64,
}

impl Producer {
    pub fn record_bytes_max(&self) -> u32 {
        self.geometry.record_bytes_max
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.geometry.capacity_bytes
    }

    /// `Full` outcomes since the ring was created.
    pub fn full_count(&self) -> u64 {
        self.mapping.producer_cursor().full_count.load(Ordering::Relaxed)
    }

    pub fn monitor(&self) -> RingMonitor {
        RingMonitor { mapping: Arc::clone(&self.mapping) }
    }

    /// Reserves room for a payload of `length` bytes with tag `kind`.
    /// Nothing is visible to the consumer until [`Reservation::commit`];
    /// dropping the reservation abandons it.
    pub fn try_reserve(&mut self, kind: u32, length: u32) -> Result<Reservation<'_>, PushError> {
        if kind == PADDING_KIND {
            return Err(PushError::ReservedKind { kind });
        }
        if length > self.geometry.record_bytes_max {
            return Err(PushError::TooLarge { length: u64::from(length), record_bytes_max: self.geometry.record_bytes_max });
        }
        let framed = Geometry::framed_length(u64::from(length));
        let to_end = self.geometry.bytes_to_end(self.position);
        // A frame that does not fit before the end needs a padding frame
        // over the tail first, so it costs the tail as well.
        let needs_padding = framed > to_end;
        let needed = if needs_padding { to_end + framed } else { framed };
        assert!(needed <= self.geometry.capacity_bytes, "record_bytes_max bounds the framed length");
        let end = self.check_room(needed)?;
        let start = if needs_padding {
            self.write_header(self.position, FrameHeader { length: (to_end - FRAME_HEADER_BYTES) as u32, kind: PADDING_KIND });
            self.position + to_end
        } else {
            self.position
        };
        assert!(self.geometry.index(start) as u64 + framed <= self.geometry.capacity_bytes);
        assert_eq!(start + framed, end, "check_room computed the end without overflow");
        Ok(Reservation { producer: self, start, end, length, kind })
    }

    /// Copies `payload` into the ring as one record of tag `kind`.
    pub fn try_push(&mut self, kind: u32, payload: &[u8]) -> Result<(), PushError> {
        let length = u32::try_from(payload.len()).map_err(|_| PushError::TooLarge {
            length: payload.len() as u64,
            record_bytes_max: self.geometry.record_bytes_max,
        })?;
        let mut reservation = self.try_reserve(kind, length)?;
        reservation.payload_mut().copy_from_slice(payload);
        reservation.commit();
        Ok(())
    }

    /// Makes sure `needed` bytes past `position` are free, reloading the
    /// consumer position only when the cached one says they are not, and
    /// returns the position after them. A position so large that adding
    /// `needed` overflows can only come from a corrupt file: `Corrupt`.
    fn check_room(&mut self, needed: u64) -> Result<u64, PushError> {
        let capacity = self.geometry.capacity_bytes;
        assert!(needed > 0 && needed <= capacity);
        assert!(self.consumer_position_cached <= self.position);
        let Some(end) = self.position.checked_add(needed) else {
            return Err(PushError::Corrupt(Corruption {
                field: "producer position",
                value: self.position,
                position: self.position,
                expected: "at most POSITION_MAX (2^63), so that reserving cannot overflow",
            }));
        };
        if end - self.consumer_position_cached <= capacity {
            return Ok(end);
        }
        // Acquire pairs with the consumer's Release store: the consumer's
        // reads of the bytes we are about to reuse happened before.
        let consumer = self.mapping.consumer_cursor().position.load(Ordering::Acquire);
        if consumer < self.consumer_position_cached || consumer > self.position {
            return Err(PushError::Corrupt(Corruption {
                field: "consumer position",
                value: consumer,
                position: self.position,
                expected: "between its previous value and the producer position",
            }));
        }
        self.consumer_position_cached = consumer;
        if end - consumer <= capacity {
            return Ok(end);
        }
        let cursor = &self.mapping.producer_cursor().full_count;
        cursor.store(cursor.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Err(PushError::Full)
    }

    fn write_header(&mut self, position: u64, header: FrameHeader) {
        let index = self.geometry.index(position);
        assert!(index as u64 + FRAME_HEADER_BYTES <= self.geometry.capacity_bytes);
        assert_eq!(index as u64 % FRAME_ALIGNMENT_BYTES, 0);
        // SAFETY: `index` is inside the data region with room for a header
        // (asserted) and 8-aligned; the bytes at `position` are free (checked
        // by `check_room`), so the consumer does not read them concurrently.
        unsafe { self.mapping.data().add(index).cast::<FrameHeader>().write(header) };
    }
}

/// Room reserved for one record; write the payload, then `commit`.
pub struct Reservation<'a> {
    /// The producer, borrowed so that only one reservation exists at a time.
    producer: &'a mut Producer,
    /// Position of this frame's header (after any padding frame).
    start: u64,
    /// Position after this frame: the producer position `commit` publishes.
    /// Computed with checked arithmetic at reservation.
    end: u64,
    /// Payload bytes reserved.
    length: u32,
    /// Tag written into the header at commit.
    kind: u32,
}

impl Reservation<'_> {
    /// The reserved payload bytes. They hold whatever an older record left;
    /// the caller overwrites all `length` of them.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let index = self.producer.geometry.index(self.start) + FRAME_HEADER_BYTES as usize;
        assert!(index as u64 + u64::from(self.length) <= self.producer.geometry.capacity_bytes);
        assert!(self.start >= self.producer.position, "a reservation lies past the published position");
        // SAFETY: the range lies inside the data region (asserted), belongs
        // to the producer (past the published position and within capacity of
        // the consumer position, checked at reservation), and `&mut self`
        // borrows the only producer, so this is the only reference to it.
        unsafe { std::slice::from_raw_parts_mut(self.producer.mapping.data().add(index), self.length as usize) }
    }

    /// Publishes the record: writes its header, then stores the producer
    /// position with `Release` (the commit point).
    pub fn commit(self) {
        let producer = self.producer;
        producer.write_header(self.start, FrameHeader { length: self.length, kind: self.kind });
        let end = self.end;
        assert_eq!(end - self.start, Geometry::framed_length(u64::from(self.length)));
        assert!(end > producer.position);
        assert!(end - producer.consumer_position_cached <= producer.geometry.capacity_bytes);
        producer.position = end;
        producer.mapping.producer_cursor().position.store(end, Ordering::Release);
    }
}

/// One record as read from the ring, borrowed until the consumer releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingRecord<'a> {
    /// The tag given at push (never [`PADDING_KIND`]).
    pub kind: u32,
    /// Exactly the pushed bytes, starting 8-aligned, in the mapping. When
    /// the producer is another process they may change while borrowed: copy
    /// them before validating (see the module documentation).
    pub payload: &'a [u8],
}

/// The reading end. `Send` (move it to the consumer thread), not `Sync`
/// and not `Clone`.
///
/// Records returned by [`Consumer::read`] borrow the consumer immutably;
/// [`Consumer::release`] takes it mutably, so the borrow checker proves no
/// record is still in use when its bytes are handed back to the producer.
pub struct Consumer {
    /// Keeps the mapping alive; shared with the producer.
    mapping: Arc<Mapping>,
    /// Copy of the mapping's sizes, kept here to avoid an indirection.
    geometry: Geometry,
    /// Next frame to read. Runs ahead of `released_position` by what was
    /// read since the last release.
    read_position: std::cell::Cell<u64>,
    /// The consumer position as last published; changes only in `release`.
    released_position: u64,
    /// Producer position as last loaded; it can only be behind the real one,
    /// so it is reloaded only when the reader catches up with it.
    producer_position_cached: std::cell::Cell<u64>,
}

/// Bound on frames examined for one record: at most one padding frame can
/// precede a record, because after padding the next frame is at offset 0.
const FRAMES_PER_READ_MAX: u32 = 2;

impl Consumer {
    pub fn capacity_bytes(&self) -> u64 {
        self.geometry.capacity_bytes
    }

    pub fn monitor(&self) -> RingMonitor {
        RingMonitor { mapping: Arc::clone(&self.mapping) }
    }

    /// The next record without consuming it, or `None` when empty.
    pub fn peek(&self) -> Result<Option<RingRecord<'_>>, ReadError> {
        Ok(self.next_frame()?.map(|(record, _)| record))
    }

    /// The next record, or `None` when empty. Its bytes stay valid (and
    /// unreclaimed by the producer) until [`Consumer::release`].
    pub fn read(&self) -> Result<Option<RingRecord<'_>>, ReadError> {
        let Some((record, next)) = self.next_frame()? else {
            return Ok(None);
        };
        assert!(next > self.read_position.get());
        assert!(next <= self.producer_position_cached.get(), "only published frames are read");
        self.read_position.set(next);
        Ok(Some(record))
    }

    /// Hands every record read so far back to the producer, with one
    /// `Release` store of the consumer position.
    pub fn release(&mut self) {
        let read = self.read_position.get();
        assert!(read >= self.released_position);
        assert!(read <= self.producer_position_cached.get());
        if read == self.released_position {
            return;
        }
        self.released_position = read;
        self.mapping.consumer_cursor().position.store(read, Ordering::Release);
    }

    /// Reads up to `records_max` records, passing each to `handler`, then
    /// releases them all at once. Returns how many were read.
    pub fn read_batch(
        &mut self,
        records_max: u32,
        mut handler: impl FnMut(RingRecord<'_>),
    ) -> Result<u32, ReadError> {
        assert!(records_max > 0, "records_max must be positive");
        let mut records_read = 0;
        let mut outcome = Ok(());
        while records_read < records_max {
            match self.read() {
                Ok(Some(record)) => handler(record),
                Ok(None) => break,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
            records_read += 1;
        }
        // Records already handed to the handler are released even when a
        // later frame is corrupt, so they are not delivered twice.
        self.release();
        assert!(records_read <= records_max);
        outcome.map(|()| records_read)
    }

    /// Finds the next record after `read_position`, skipping a padding frame,
    /// and returns it with the position after it.
    fn next_frame(&self) -> Result<Option<(RingRecord<'_>, u64)>, ReadError> {
        let mut position = self.read_position.get();
        assert!(position >= self.released_position);
        assert!(position & (FRAME_ALIGNMENT_BYTES - 1) == 0);
        for _ in 0..FRAMES_PER_READ_MAX {
            let available = self.available_from(position)?;
            if available == 0 {
                return Ok(None);
            }
            let header = self.read_header(position);
            let to_end = self.geometry.bytes_to_end(position);
            if header.kind == PADDING_KIND {
                self.check_padding(position, header, to_end, available)?;
                position += to_end;
                continue;
            }
            let framed = self.check_frame(position, header, to_end, available)?;
            let index = self.geometry.index(position) + FRAME_HEADER_BYTES as usize;
            // SAFETY: `check_frame` proved the payload lies inside the data
            // region and below the published producer position, so it is
            // initialised, owned by the consumer, and not written until the
            // consumer releases it, which needs `&mut self` and so ends this
            // borrow first.
            let payload = unsafe { std::slice::from_raw_parts(self.mapping.data().add(index), header.length as usize) };
            return Ok(Some((RingRecord { kind: header.kind, payload }, position + framed)));
        }
        Err(ReadError::Corrupt(Corruption {
            field: "frame kind",
            value: u64::from(PADDING_KIND),
            position,
            expected: "a record after at most one padding frame",
        }))
    }

    /// Published bytes from `position`, reloading the producer position
    /// (Acquire) only when the cached one is used up.
    fn available_from(&self, position: u64) -> Result<u64, ReadError> {
        let cached = self.producer_position_cached.get();
        if position < cached {
            return Ok(cached - position);
        }
        assert_eq!(position, cached);
        // Acquire pairs with the producer's Release in `commit`: the frames
        // below the loaded position are fully written before we read them.
        let producer = self.mapping.producer_cursor().position.load(Ordering::Acquire);
        let within_capacity = producer.wrapping_sub(self.released_position) <= self.geometry.capacity_bytes;
        if producer < cached || producer & (FRAME_ALIGNMENT_BYTES - 1) != 0 || !within_capacity {
            return Err(ReadError::Corrupt(Corruption {
                field: "producer position",
                value: producer,
                position,
                expected: "a multiple of 8, not decreasing, within capacity of the consumer position",
            }));
        }
        self.producer_position_cached.set(producer);
        Ok(producer - position)
    }

    fn read_header(&self, position: u64) -> FrameHeader {
        let index = self.geometry.index(position);
        assert!(index as u64 + FRAME_HEADER_BYTES <= self.geometry.capacity_bytes);
        assert_eq!(index as u64 % FRAME_ALIGNMENT_BYTES, 0);
        // SAFETY: in bounds and 8-aligned (asserted); the header is below the
        // published producer position, so it was written before the Release
        // store we observed with Acquire.
        unsafe { self.mapping.data().add(index).cast::<FrameHeader>().read() }
    }

    fn check_padding(&self, position: u64, header: FrameHeader, to_end: u64, available: u64) -> Result<(), ReadError> {
        if u64::from(header.length) + FRAME_HEADER_BYTES != to_end || to_end > available {
            return Err(ReadError::Corrupt(Corruption {
                field: "padding length",
                value: u64::from(header.length),
                position,
                expected: "the bytes to the end of the data region, all published",
            }));
        }
        Ok(())
    }

    /// Checks a record frame and returns its framed length.
    fn check_frame(&self, position: u64, header: FrameHeader, to_end: u64, available: u64) -> Result<u64, ReadError> {
        let framed = Geometry::framed_length(u64::from(header.length));
        if header.length > self.geometry.record_bytes_max || framed > to_end || framed > available {
            return Err(ReadError::Corrupt(Corruption {
                field: "frame length",
                value: u64::from(header.length),
                position,
                expected: "at most record_bytes_max, inside the data region and published",
            }));
        }
        Ok(framed)
    }
}

/// Positions and counters of a ring at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingMetrics {
    pub producer_position: u64,
    pub consumer_position: u64,
    /// Bytes published and not yet released (including padding frames).
    pub used_bytes: u64,
    pub capacity_bytes: u64,
    /// `Full` outcomes since creation.
    pub full_count: u64,
}

/// A read-only view of a ring for metrics; any number, from any thread.
#[derive(Clone)]
pub struct RingMonitor {
    /// Keeps the mapping alive; only loads from it.
    mapping: Arc<Mapping>,
}

impl RingMonitor {
    pub fn metrics(&self) -> RingMetrics {
        // Consumer first: it only grows, so the producer loaded after it is
        // at least as far and `used_bytes` never underflows in practice.
        let consumer_position = self.mapping.consumer_cursor().position.load(Ordering::Acquire);
        let producer_position = self.mapping.producer_cursor().position.load(Ordering::Acquire);
        RingMetrics {
            producer_position,
            consumer_position,
            used_bytes: producer_position.saturating_sub(consumer_position),
            capacity_bytes: self.mapping.geometry.capacity_bytes,
            full_count: self.mapping.producer_cursor().full_count.load(Ordering::Relaxed),
        }
    }
}

/// How a poll loop waits when its ring has nothing for it. Configured by the
/// caller; see [`Idler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Busy-spin: lowest latency, burns a core.
    Spin,
    /// Give the core to another thread each time.
    Yield,
    /// Spin, then yield, then park, with a bounded number of steps of each.
    Backoff { spin_steps_max: u32, yield_steps_max: u32 },
}

/// What the caller should do on this idle step. Parking (and how long, and
/// how to wake) belongs to the caller, which owns clocks and wake-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleAction {
    /// `std::hint::spin_loop()`.
    Spin,
    /// `std::thread::yield_now()`.
    Yield,
    /// Block until woken or until the caller's own timeout.
    Park,
}

/// Counts consecutive idle steps and turns them into actions; clock-free.
#[derive(Clone, Copy, Debug)]
pub struct Idler {
    /// Configured once.
    strategy: IdleStrategy,
    /// Idle steps since the last `reset`; saturates.
    idle_steps: u32,
}

impl Idler {
    pub fn new(strategy: IdleStrategy) -> Idler {
        Idler { strategy, idle_steps: 0 }
    }

    /// Call when a poll found nothing; returns what to do now.
    pub fn idle(&mut self) -> IdleAction {
        let step = self.idle_steps;
        self.idle_steps = self.idle_steps.saturating_add(1);
        match self.strategy {
            IdleStrategy::Spin => IdleAction::Spin,
            IdleStrategy::Yield => IdleAction::Yield,
            IdleStrategy::Backoff { spin_steps_max, yield_steps_max } => {
                if step < spin_steps_max {
                    IdleAction::Spin
                } else if step - spin_steps_max < yield_steps_max {
                    IdleAction::Yield
                } else {
                    IdleAction::Park
                }
            }
        }
    }

    /// Call when a poll found work.
    pub fn reset(&mut self) {
        self.idle_steps = 0;
    }
}

#[cfg(test)]
mod tests;
