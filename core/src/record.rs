//! Trade records that cross between threads (and to outside readers) through
//! the mapped rings of [`crate::ring`]: rkyv 0.8 archives of master events,
//! copy instructions, results and acks, with conversions from and to the
//! protocol types of [`crate::protocol`].
//!
//! # Layout
//! - [`RecordKind`]: the `u32` tag a ring frame carries, so one ring can hold
//!   several record types.
//! - [`MasterEventRecord`] (shard -> router), [`CopyRecord`] (router ->
//!   shard), [`ResultRecord`] (shard -> router), [`AckRecord`] (router ->
//!   shard): the records. Each one is built by value from its protocol message
//!   plus the bridge's own metadata, so building one moves the strings the
//!   JSON parser already allocated instead of copying them.
//! - Enum codes: protocol enums travel as `u8` codes (see [`side_code`] and
//!   friends) with checked conversion back, so a reader in another process
//!   needs no Rust enum layout to interpret a record.
//! - [`RecordEncoder`]: serialises a record into a buffer allocated once.
//! - [`access_checked`], [`decode_checked`] (bytecheck-validated) and
//!   [`access_trusted`] (unchecked, only for rings this binary wrote): read an
//!   archived record in place, in memory no one else writes meanwhile.
//! - [`CopyingDecoder`]: copies a payload into a private aligned buffer,
//!   reused, before validating it; the path for memory another process may
//!   still write (a file ring whose producer is another process).
//!
//! An archived record is rkyv's relative-pointer layout: the fixed-size root
//! struct sits at the end of the bytes, string contents before it.
//!
//! ```text
//!   0                                   len - size_of::<Archived*Record>()   len
//!   +-----------------------------------+-------------------------------------+
//!   | string bytes (symbol, comment,    | root: u64/f64 fields, then strings  |
//!   | id, msg), each inline if <= 8 B   | (rel ptr + length), then u32, u8    |
//!   +-----------------------------------+-------------------------------------+
//! ```
//!
//! # Invariants
//! - Every archived record needs at most [`FRAME_ALIGNMENT_BYTES`] alignment
//!   (asserted at compile time below), so a ring payload, which starts on
//!   that alignment, can be accessed in place without copying.
//! - Enum codes start at 1: zeroed memory never decodes as a valid kind,
//!   side, action or status. Side code 0 means "no side" and is accepted only
//!   where the protocol field is optional.
//! - Validated bytes do not change until they are no longer read. Rings
//!   whose producer is in this process guarantee it (the producer never
//!   writes below the published position before the consumer releases);
//!   a producer in another process is outside Rust's rules and may write the
//!   payload while it is validated or afterwards, so validating it in place
//!   proves nothing about what is read next: such payloads go through
//!   [`CopyingDecoder`], whose copy nobody else can write.
//! - After its first use on a thread, [`RecordEncoder::encode`] allocates
//!   nothing: the output buffer is allocated once at `encoded_bytes_max` and
//!   rkyv's scratch arena is thread-local and reused (shown by the
//!   `encode_push_read_allocates_nothing_after_warm_up` test in
//!   `core/tests/ring_stress.rs`).

use rkyv::api::high::{to_bytes_in, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::ser::writer::Buffer;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Portable, Serialize};

use crate::protocol::{self, CopyAction, EventKind, ResultStatus, Side};
use crate::ring::{FRAME_ALIGNMENT_BYTES, PADDING_KIND};

/// Default bound on one encoded record. A protocol frame is at most 16 KiB
/// (the PROTOCOL.md default), so the strings a record carries from one frame
/// are under 16 KiB; the fixed part of every record is under 200 bytes; 20 KiB
/// leaves room for both with margin while staying well under half of a
/// 64 KiB ring.
pub const ENCODED_BYTES_MAX_DEFAULT: u32 = 20 * 1024;

/// Alignment of the encoder's buffer. rkyv lays out an archive relative to
/// the start of its buffer, so the buffer must be at least as aligned as the
/// most aligned archived type; 16 is rkyv's own default for `AlignedVec`.
const ENCODER_ALIGNMENT_BYTES: usize = 16;

/// The `u32` tag in a ring frame header saying which record the payload is.
/// Values start at 1 because the ring reserves [`PADDING_KIND`] (0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RecordKind {
    MasterEvent = 1,
    Copy = 2,
    Result = 3,
    Ack = 4,
}

const _: () = assert!(PADDING_KIND == 0, "record kinds start above the ring's padding kind");
const _: () = assert!(RecordKind::MasterEvent as u32 > PADDING_KIND);

impl RecordKind {
    /// The tag written into the ring frame header.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// Checked conversion from a frame header tag.
    pub fn from_code(code: u32) -> Result<RecordKind, RecordError> {
        match code {
            1 => Ok(RecordKind::MasterEvent),
            2 => Ok(RecordKind::Copy),
            3 => Ok(RecordKind::Result),
            4 => Ok(RecordKind::Ack),
            _ => Err(RecordError::UnknownKind { value: code }),
        }
    }
}

/// Why a record could not be encoded, validated or converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// A `u8` enum code outside its range.
    BadCode { field: &'static str, value: u8, expected: &'static str },
    /// A frame tag that is no [`RecordKind`].
    UnknownKind { value: u32 },
    /// bytecheck rejected the bytes (corrupt, truncated or misaligned).
    Invalid { record: &'static str, bytes: u64, reason: String },
    /// The record did not fit in the encoder's fixed buffer.
    Encode { record: &'static str, encoded_bytes_max: u32, reason: String },
    /// A payload longer than the [`CopyingDecoder`]'s buffer.
    TooLarge { record: &'static str, bytes: u64, bytes_max: u32 },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::BadCode { field, value, expected } => {
                write!(formatter, "record field `{field}` has code {value}, expected {expected}")
            }
            RecordError::UnknownKind { value } => {
                write!(formatter, "record kind {value} is unknown, expected 1 (master event), 2 (copy), 3 (result) or 4 (ack)")
            }
            RecordError::Invalid { record, bytes, reason } => {
                write!(formatter, "{bytes} bytes are not a valid {record}: {reason}")
            }
            RecordError::Encode { record, encoded_bytes_max, reason } => write!(
                formatter,
                "{record} did not encode within encoded_bytes_max = {encoded_bytes_max} bytes: {reason}"
            ),
            RecordError::TooLarge { record, bytes, bytes_max } => write!(
                formatter,
                "{record} payload of {bytes} bytes: expected at most the decoder's bytes_max = {bytes_max}"
            ),
        }
    }
}

impl std::error::Error for RecordError {}

// ---------------------------------------------------------------------------
// Enum codes. Each table's index + 1 is the code; the `*_code` functions and
// the tables agree, which the `enum_codes_round_trip` test checks.
// ---------------------------------------------------------------------------

/// Side code for an optional side that is absent.
pub const SIDE_CODE_NONE: u8 = 0;

const EVENT_KINDS: [EventKind; 5] =
    [EventKind::Open, EventKind::Modify, EventKind::Close, EventKind::Pending, EventKind::Cancel];
const SIDES: [Side; 6] =
    [Side::Buy, Side::Sell, Side::BuyLimit, Side::SellLimit, Side::BuyStop, Side::SellStop];
const COPY_ACTIONS: [CopyAction; 5] =
    [CopyAction::Open, CopyAction::Modify, CopyAction::Close, CopyAction::Pending, CopyAction::Cancel];
const RESULT_STATUSES: [ResultStatus; 3] =
    [ResultStatus::Filled, ResultStatus::Rejected, ResultStatus::Skipped];

pub fn event_kind_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Open => 1,
        EventKind::Modify => 2,
        EventKind::Close => 3,
        EventKind::Pending => 4,
        EventKind::Cancel => 5,
    }
}

pub fn event_kind_from_code(code: u8) -> Result<EventKind, RecordError> {
    let index = usize::from(code).wrapping_sub(1);
    EVENT_KINDS.get(index).copied().ok_or(RecordError::BadCode {
        field: "kind_code",
        value: code,
        expected: "1..=5 (open, modify, close, pending, cancel)",
    })
}

pub fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => 1,
        Side::Sell => 2,
        Side::BuyLimit => 3,
        Side::SellLimit => 4,
        Side::BuyStop => 5,
        Side::SellStop => 6,
    }
}

/// Code for an optional side: [`SIDE_CODE_NONE`] when absent.
pub fn optional_side_code(side: Option<Side>) -> u8 {
    side.map_or(SIDE_CODE_NONE, side_code)
}

/// A required side: code 0 (absent) is an error here.
pub fn side_from_code(code: u8) -> Result<Side, RecordError> {
    let index = usize::from(code).wrapping_sub(1);
    SIDES.get(index).copied().ok_or(RecordError::BadCode {
        field: "side_code",
        value: code,
        expected: "1..=6 (buy, sell, buy_limit, sell_limit, buy_stop, sell_stop)",
    })
}

pub fn optional_side_from_code(code: u8) -> Result<Option<Side>, RecordError> {
    if code == SIDE_CODE_NONE {
        return Ok(None);
    }
    side_from_code(code).map(Some)
}

pub fn copy_action_code(action: CopyAction) -> u8 {
    match action {
        CopyAction::Open => 1,
        CopyAction::Modify => 2,
        CopyAction::Close => 3,
        CopyAction::Pending => 4,
        CopyAction::Cancel => 5,
    }
}

pub fn copy_action_from_code(code: u8) -> Result<CopyAction, RecordError> {
    let index = usize::from(code).wrapping_sub(1);
    COPY_ACTIONS.get(index).copied().ok_or(RecordError::BadCode {
        field: "action_code",
        value: code,
        expected: "1..=5 (open, modify, close, pending, cancel)",
    })
}

pub fn result_status_code(status: ResultStatus) -> u8 {
    match status {
        ResultStatus::Filled => 1,
        ResultStatus::Rejected => 2,
        ResultStatus::Skipped => 3,
    }
}

pub fn result_status_from_code(code: u8) -> Result<ResultStatus, RecordError> {
    let index = usize::from(code).wrapping_sub(1);
    RESULT_STATUSES.get(index).copied().ok_or(RecordError::BadCode {
        field: "status_code",
        value: code,
        expected: "1..=3 (filled, rejected, skipped)",
    })
}

// ---------------------------------------------------------------------------
// Records. Fields are ordered widest first (u64/f64, then strings, then u32,
// then u8) so the archived root struct carries as little padding as it can.
// ---------------------------------------------------------------------------

/// What the bridge knows about a master event besides the event itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasterEventMeta {
    /// Master account the event came from (from its `hello`).
    pub master_login: u64,
    /// Bridge wall clock at receipt; the base of every `copy.expires_ms`.
    pub received_ms: u64,
    /// Bridge monotonic clock at receipt, for latency histograms only.
    pub received_ns: u64,
    /// Shard that owns the master's connection; the ack goes back to it.
    pub shard_id: u32,
    /// Connection on that shard, so an ack for a replaced connection is dropped.
    pub connection_id: u64,
}

/// A master `event` on its way from a shard to the router.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
pub struct MasterEventRecord {
    /// Master account; set once from [`MasterEventMeta`].
    pub master_login: u64,
    /// Bridge wall clock at receipt (ms); set once from [`MasterEventMeta`].
    pub received_ms: u64,
    /// Bridge monotonic stamp at receipt (ns); set once, for latency only.
    pub received_ns: u64,
    /// Connection on the origin shard, for routing the ack back.
    pub connection_id: u64,
    /// `event.seq`.
    pub seq: u64,
    /// `event.pos`.
    pub pos: u64,
    /// `event.ticket`.
    pub ticket: u64,
    /// `event.volume`.
    pub volume: f64,
    /// `event.price`.
    pub price: f64,
    /// `event.sl`.
    pub sl: f64,
    /// `event.tp`.
    pub tp: f64,
    /// `event.magic`.
    pub magic: u64,
    /// `event.time_ms`, the master terminal's clock (informational).
    pub time_ms: u64,
    /// `event.remaining`.
    pub remaining: Option<f64>,
    /// `event.symbol`.
    pub symbol: String,
    /// `event.comment`.
    pub comment: String,
    /// Shard that owns the master's connection.
    pub shard_id: u32,
    /// `event.kind` as an [`event_kind_code`].
    pub kind_code: u8,
    /// `event.side` as an [`optional_side_code`].
    pub side_code: u8,
}

impl MasterEventRecord {
    /// Builds the record by moving the event's strings (no allocation).
    pub fn from_event(event: protocol::Event, meta: MasterEventMeta) -> MasterEventRecord {
        MasterEventRecord {
            master_login: meta.master_login,
            received_ms: meta.received_ms,
            received_ns: meta.received_ns,
            connection_id: meta.connection_id,
            seq: event.seq,
            pos: event.pos,
            ticket: event.ticket,
            volume: event.volume,
            price: event.price,
            sl: event.sl,
            tp: event.tp,
            magic: event.magic,
            time_ms: event.time_ms,
            remaining: event.remaining,
            symbol: event.symbol,
            comment: event.comment,
            shard_id: meta.shard_id,
            kind_code: event_kind_code(event.kind),
            side_code: optional_side_code(event.side),
        }
    }

    pub fn meta(&self) -> MasterEventMeta {
        MasterEventMeta {
            master_login: self.master_login,
            received_ms: self.received_ms,
            received_ns: self.received_ns,
            shard_id: self.shard_id,
            connection_id: self.connection_id,
        }
    }

    /// Gives the protocol event back, checking the enum codes.
    pub fn into_event(self) -> Result<protocol::Event, RecordError> {
        Ok(protocol::Event {
            seq: self.seq,
            kind: event_kind_from_code(self.kind_code)?,
            pos: self.pos,
            ticket: self.ticket,
            symbol: self.symbol,
            side: optional_side_from_code(self.side_code)?,
            volume: self.volume,
            price: self.price,
            sl: self.sl,
            tp: self.tp,
            magic: self.magic,
            comment: self.comment,
            time_ms: self.time_ms,
            remaining: self.remaining,
        })
    }
}

impl ArchivedMasterEventRecord {
    pub fn meta(&self) -> MasterEventMeta {
        MasterEventMeta {
            master_login: self.master_login.to_native(),
            received_ms: self.received_ms.to_native(),
            received_ns: self.received_ns.to_native(),
            shard_id: self.shard_id.to_native(),
            connection_id: self.connection_id.to_native(),
        }
    }

    /// Builds the protocol event from the archive in place, checking the
    /// enum codes. Allocates the two strings.
    pub fn to_event(&self) -> Result<protocol::Event, RecordError> {
        Ok(protocol::Event {
            seq: self.seq.to_native(),
            kind: event_kind_from_code(self.kind_code)?,
            pos: self.pos.to_native(),
            ticket: self.ticket.to_native(),
            symbol: self.symbol.as_str().to_owned(),
            side: optional_side_from_code(self.side_code)?,
            volume: self.volume.to_native(),
            price: self.price.to_native(),
            sl: self.sl.to_native(),
            tp: self.tp.to_native(),
            magic: self.magic.to_native(),
            comment: self.comment.as_str().to_owned(),
            time_ms: self.time_ms.to_native(),
            remaining: self.remaining.as_ref().map(|remaining| remaining.to_native()),
        })
    }
}

/// Where a copy instruction goes, besides the instruction itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyMeta {
    /// Follower account the copy is for.
    pub slave_login: u64,
    /// `received_ns` of the master event this copy follows (end-to-end latency).
    pub event_received_ns: u64,
    /// When the router issued the copy, on the same clock as
    /// `event_received_ns` (routed-to-written latency); 0 when unknown.
    pub routed_ns: u64,
    /// The follower's current connection on the destination shard, if the
    /// router knows one; `None` means "whichever is connected".
    pub connection_id: Option<u64>,
}

/// A `copy` on its way from the router to the shard that owns the follower.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
pub struct CopyRecord {
    /// Follower account; set once from [`CopyMeta`].
    pub slave_login: u64,
    /// Carried from the master event's `received_ns`, for end-to-end latency.
    pub event_received_ns: u64,
    /// When the router issued the copy; set once from [`CopyMeta`].
    pub routed_ns: u64,
    /// Destination connection if known; set once from [`CopyMeta`].
    pub connection_id: Option<u64>,
    /// `copy.seq`.
    pub seq: u64,
    /// `copy.master`.
    pub master: u64,
    /// `copy.pos`.
    pub pos: u64,
    /// `copy.volume`.
    pub volume: f64,
    /// `copy.price`.
    pub price: f64,
    /// `copy.max_dev`.
    pub max_dev: f64,
    /// `copy.sl`.
    pub sl: f64,
    /// `copy.tp`.
    pub tp: f64,
    /// `copy.magic`.
    pub magic: u64,
    /// `copy.expires_ms` (bridge clock).
    pub expires_ms: u64,
    /// `copy.id`.
    pub id: String,
    /// `copy.symbol`.
    pub symbol: String,
    /// `copy.comment`.
    pub comment: String,
    /// `copy.action` as a [`copy_action_code`].
    pub action_code: u8,
    /// `copy.side` as a [`side_code`] (required, never 0).
    pub side_code: u8,
}

impl CopyRecord {
    /// Builds the record by moving the copy's strings (no allocation).
    pub fn from_copy(copy: protocol::Copy, meta: CopyMeta) -> CopyRecord {
        CopyRecord {
            slave_login: meta.slave_login,
            event_received_ns: meta.event_received_ns,
            routed_ns: meta.routed_ns,
            connection_id: meta.connection_id,
            seq: copy.seq,
            master: copy.master,
            pos: copy.pos,
            volume: copy.volume,
            price: copy.price,
            max_dev: copy.max_dev,
            sl: copy.sl,
            tp: copy.tp,
            magic: copy.magic,
            expires_ms: copy.expires_ms,
            id: copy.id,
            symbol: copy.symbol,
            comment: copy.comment,
            action_code: copy_action_code(copy.action),
            side_code: side_code(copy.side),
        }
    }

    pub fn meta(&self) -> CopyMeta {
        CopyMeta {
            slave_login: self.slave_login,
            event_received_ns: self.event_received_ns,
            routed_ns: self.routed_ns,
            connection_id: self.connection_id,
        }
    }

    /// Gives the protocol copy back, checking the enum codes.
    pub fn into_copy(self) -> Result<protocol::Copy, RecordError> {
        Ok(protocol::Copy {
            seq: self.seq,
            id: self.id,
            master: self.master,
            pos: self.pos,
            action: copy_action_from_code(self.action_code)?,
            symbol: self.symbol,
            side: side_from_code(self.side_code)?,
            volume: self.volume,
            price: self.price,
            max_dev: self.max_dev,
            sl: self.sl,
            tp: self.tp,
            magic: self.magic,
            comment: self.comment,
            expires_ms: self.expires_ms,
        })
    }
}

impl ArchivedCopyRecord {
    pub fn meta(&self) -> CopyMeta {
        CopyMeta {
            slave_login: self.slave_login.to_native(),
            event_received_ns: self.event_received_ns.to_native(),
            routed_ns: self.routed_ns.to_native(),
            connection_id: self.connection_id.as_ref().map(|connection| connection.to_native()),
        }
    }

    /// Builds the protocol copy from the archive in place, checking the enum
    /// codes. Allocates the three strings.
    pub fn to_copy(&self) -> Result<protocol::Copy, RecordError> {
        Ok(protocol::Copy {
            seq: self.seq.to_native(),
            id: self.id.as_str().to_owned(),
            master: self.master.to_native(),
            pos: self.pos.to_native(),
            action: copy_action_from_code(self.action_code)?,
            symbol: self.symbol.as_str().to_owned(),
            side: side_from_code(self.side_code)?,
            volume: self.volume.to_native(),
            price: self.price.to_native(),
            max_dev: self.max_dev.to_native(),
            sl: self.sl.to_native(),
            tp: self.tp.to_native(),
            magic: self.magic.to_native(),
            comment: self.comment.as_str().to_owned(),
            expires_ms: self.expires_ms.to_native(),
        })
    }
}

/// Who sent a result and when it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultMeta {
    /// Follower account that executed the copy.
    pub slave_login: u64,
    /// Bridge monotonic clock at receipt, for latency histograms only.
    pub received_ns: u64,
    /// Bridge wall clock at receipt (ms since the Unix epoch): the engine's
    /// `now_ms` for this result, live and when the journal is replayed.
    pub received_ms: u64,
}

/// A slave `result` on its way from a shard to the router.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ResultRecord {
    /// Follower account; set once from [`ResultMeta`].
    pub slave_login: u64,
    /// Bridge monotonic stamp at receipt (ns); set once, for latency only.
    pub received_ns: u64,
    /// Bridge wall clock at receipt (ms); set once from [`ResultMeta`].
    pub received_ms: u64,
    /// `result.seq` (the copy's seq).
    pub seq: u64,
    /// `result.ticket`.
    pub ticket: u64,
    /// `result.price`.
    pub price: f64,
    /// `result.volume`.
    pub volume: f64,
    /// `result.exec_ms` (the Executor's clock).
    pub exec_ms: u64,
    /// `result.msg`.
    pub msg: String,
    /// `result.error`.
    pub error: u32,
    /// `result.status` as a [`result_status_code`].
    pub status_code: u8,
}

impl ResultRecord {
    /// Builds the record by moving the result's message (no allocation).
    pub fn from_result(result: protocol::TradeResult, meta: ResultMeta) -> ResultRecord {
        ResultRecord {
            slave_login: meta.slave_login,
            received_ns: meta.received_ns,
            received_ms: meta.received_ms,
            seq: result.seq,
            ticket: result.ticket,
            price: result.price,
            volume: result.volume,
            exec_ms: result.exec_ms,
            msg: result.msg,
            error: result.error,
            status_code: result_status_code(result.status),
        }
    }

    pub fn meta(&self) -> ResultMeta {
        ResultMeta { slave_login: self.slave_login, received_ns: self.received_ns, received_ms: self.received_ms }
    }

    /// Gives the protocol result back, checking the status code.
    pub fn into_result(self) -> Result<protocol::TradeResult, RecordError> {
        Ok(protocol::TradeResult {
            seq: self.seq,
            status: result_status_from_code(self.status_code)?,
            ticket: self.ticket,
            price: self.price,
            volume: self.volume,
            error: self.error,
            msg: self.msg,
            exec_ms: self.exec_ms,
        })
    }
}

impl ArchivedResultRecord {
    pub fn meta(&self) -> ResultMeta {
        ResultMeta {
            slave_login: self.slave_login.to_native(),
            received_ns: self.received_ns.to_native(),
            received_ms: self.received_ms.to_native(),
        }
    }

    /// Builds the protocol result from the archive in place, checking the
    /// status code. Allocates the message.
    pub fn to_result(&self) -> Result<protocol::TradeResult, RecordError> {
        Ok(protocol::TradeResult {
            seq: self.seq.to_native(),
            status: result_status_from_code(self.status_code)?,
            ticket: self.ticket.to_native(),
            price: self.price.to_native(),
            volume: self.volume.to_native(),
            error: self.error.to_native(),
            msg: self.msg.as_str().to_owned(),
            exec_ms: self.exec_ms.to_native(),
        })
    }
}

/// Router -> shard: master event `seq` is durable; ack it on `connection_id`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AckRecord {
    /// Master account the ack is for.
    pub master_login: u64,
    /// Connection the event arrived on; the shard drops the ack if that
    /// connection has been replaced (the new one gets `ack_seq` in `welcome`).
    pub connection_id: u64,
    /// Highest durable `event.seq`.
    pub seq: u64,
}

impl AckRecord {
    pub fn to_ack(&self) -> protocol::Ack {
        protocol::Ack { seq: self.seq }
    }
}

impl ArchivedAckRecord {
    pub fn to_record(&self) -> AckRecord {
        AckRecord {
            master_login: self.master_login.to_native(),
            connection_id: self.connection_id.to_native(),
            seq: self.seq.to_native(),
        }
    }
}

// Ring payloads start on FRAME_ALIGNMENT_BYTES; every archived root must be
// accessible there in place.
const _: () = assert!(std::mem::align_of::<ArchivedMasterEventRecord>() as u64 <= FRAME_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::align_of::<ArchivedCopyRecord>() as u64 <= FRAME_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::align_of::<ArchivedResultRecord>() as u64 <= FRAME_ALIGNMENT_BYTES);
const _: () = assert!(std::mem::align_of::<ArchivedAckRecord>() as u64 <= FRAME_ALIGNMENT_BYTES);
const _: () = assert!(FRAME_ALIGNMENT_BYTES as usize <= ENCODER_ALIGNMENT_BYTES);
// Archived integers and floats are little-endian and aligned. rkyv picks the
// byte order and alignment by cargo feature, and features unify across the
// build: any crate that enables rkyv's `big_endian` (or `unaligned`) would
// silently change the format that outside readers of a ring and records
// written by another build rely on. These fail to compile instead.
const _: fn(rkyv::Archived<u64>) -> rkyv::rend::u64_le = |value| value;
const _: fn(rkyv::Archived<u32>) -> rkyv::rend::u32_le = |value| value;
const _: fn(rkyv::Archived<f64>) -> rkyv::rend::f64_le = |value| value;
// The fixed parts, pinned so a layout change is a deliberate, visible edit
// (an outside reader of a /dev/shm ring depends on them).
const _: () = assert!(std::mem::size_of::<ArchivedMasterEventRecord>() == 144);
const _: () = assert!(std::mem::size_of::<ArchivedCopyRecord>() == 152);
const _: () = assert!(std::mem::size_of::<ArchivedResultRecord>() == 80);
const _: () = assert!(std::mem::size_of::<ArchivedAckRecord>() == 24);

// ---------------------------------------------------------------------------
// Encoding and access.
// ---------------------------------------------------------------------------

/// A record type that can travel through a ring.
pub trait Record:
    Archive<Archived: Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>>
    + for<'a, 'b> Serialize<HighSerializer<Buffer<'b>, ArenaHandle<'a>, rancor::Error>>
{
    /// The frame tag this record travels under.
    const KIND: RecordKind;
    /// Name used in error messages.
    const NAME: &'static str;
}

impl Record for MasterEventRecord {
    const KIND: RecordKind = RecordKind::MasterEvent;
    const NAME: &'static str = "MasterEventRecord";
}

impl Record for CopyRecord {
    const KIND: RecordKind = RecordKind::Copy;
    const NAME: &'static str = "CopyRecord";
}

impl Record for ResultRecord {
    const KIND: RecordKind = RecordKind::Result;
    const NAME: &'static str = "ResultRecord";
}

impl Record for AckRecord {
    const KIND: RecordKind = RecordKind::Ack;
    const NAME: &'static str = "AckRecord";
}

/// One encoded record: its frame tag and archive bytes, ready for
/// `Producer::try_push(encoded.kind.code(), encoded.bytes)`. The bytes stay
/// valid until the next `encode`, so a push that finds the ring full can be
/// retried without encoding again.
#[derive(Clone, Copy, Debug)]
pub struct EncodedRecord<'a> {
    pub kind: RecordKind,
    pub bytes: &'a [u8],
}

/// Serialises records into a fixed buffer allocated once.
///
/// Chosen over serialising straight into a ring reservation because an
/// archive's length is known only after serialising it; the copy into the
/// ring that this costs is measured beside the encode in
/// `core/benches/ring_handoff.rs`.
pub struct RecordEncoder {
    /// Output buffer; allocated at `encoded_bytes_max` by `new`, never grown.
    /// Its first `encoded_bytes` bytes are the last encoded record.
    buffer: AlignedVec<ENCODER_ALIGNMENT_BYTES>,
    /// Bound on one encoded record, fixed at construction.
    encoded_bytes_max: u32,
}

impl RecordEncoder {
    pub fn new(encoded_bytes_max: u32) -> RecordEncoder {
        assert!(encoded_bytes_max > 0, "encoded_bytes_max must be positive");
        let mut buffer = AlignedVec::with_capacity(encoded_bytes_max as usize);
        buffer.resize(encoded_bytes_max as usize, 0);
        assert_eq!(buffer.len(), encoded_bytes_max as usize);
        RecordEncoder { buffer, encoded_bytes_max }
    }

    pub fn encoded_bytes_max(&self) -> u32 {
        self.encoded_bytes_max
    }

    /// Serialises `record`; fails (without growing anything) when the
    /// archive would exceed `encoded_bytes_max`.
    pub fn encode<R: Record>(&mut self, record: &R) -> Result<EncodedRecord<'_>, RecordError> {
        assert_eq!(self.buffer.len(), self.encoded_bytes_max as usize);
        let writer = Buffer::from(self.buffer.as_mut_slice());
        let written = to_bytes_in::<_, rancor::Error>(record, writer).map_err(|error| {
            RecordError::Encode {
                record: R::NAME,
                encoded_bytes_max: self.encoded_bytes_max,
                reason: error.to_string(),
            }
        })?;
        let encoded_bytes = written.len();
        assert!(encoded_bytes <= self.encoded_bytes_max as usize);
        assert!(encoded_bytes >= std::mem::size_of::<R::Archived>());
        Ok(EncodedRecord { kind: R::KIND, bytes: &self.buffer[..encoded_bytes] })
    }
}

impl Default for RecordEncoder {
    fn default() -> RecordEncoder {
        RecordEncoder::new(ENCODED_BYTES_MAX_DEFAULT)
    }
}

/// Validates `bytes` as an archived `R` (bytecheck) and returns it in place.
/// Use for bytes from a file, another binary, or an unknown writer, as long
/// as nobody can write them while the result is in use. For memory another
/// process may still write (a file ring whose producer is another process),
/// validating in place is not sound, since the bytes may change after the
/// check: use [`CopyingDecoder`].
pub fn access_checked<R: Record>(bytes: &[u8]) -> Result<&R::Archived, RecordError> {
    rkyv::access::<R::Archived, rancor::Error>(bytes).map_err(|error| RecordError::Invalid {
        record: R::NAME,
        bytes: bytes.len() as u64,
        reason: error.to_string(),
    })
}

/// Returns the archived `R` in `bytes` without validating it.
///
/// # Safety
/// `bytes` must be exactly the output of [`RecordEncoder::encode`] for an `R`
/// in this same binary (for instance a payload of a ring that only this
/// process writes, under the tag `R::KIND`), and must start on an address
/// aligned to `align_of::<R::Archived>()` (ring payloads are).
pub unsafe fn access_trusted<R: Record>(bytes: &[u8]) -> &R::Archived {
    debug_assert!(bytes.len() >= std::mem::size_of::<R::Archived>());
    debug_assert!((bytes.as_ptr() as usize) & (std::mem::align_of::<R::Archived>() - 1) == 0);
    // SAFETY: the caller guarantees these bytes are an `R` archive written by
    // this binary's encoder, so the root and every relative pointer are valid.
    unsafe { rkyv::access_unchecked::<R::Archived>(bytes) }
}

/// Validates payloads that live in memory another process may still write,
/// such as a `/dev/shm` ring file whose producer is another process: each
/// payload is first copied into a private, aligned buffer, then validated
/// and read there.
///
/// Validating such a payload in place is not sound: bytecheck could accept
/// it, then the other process change a string length or relative pointer,
/// and the reads that follow trust what was validated. The copy belongs to
/// this decoder alone, so what is validated is what is read. (A copy taken
/// while the other process writes may be garbage; validation then refuses
/// it.) Rings whose producer is in this process do not need this: their
/// payloads do not change until released, so [`access_checked`] in place is
/// sound there, and [`access_trusted`] too for this binary's own records.
///
/// The buffer is allocated once at `bytes_max` and reused: decoding
/// allocates nothing (shown by `encode_push_read_allocates_nothing_after_warm_up`
/// in `core/tests/ring_stress.rs`).
pub struct CopyingDecoder {
    /// Private copy of the last payload decoded; allocated at `bytes_max` by
    /// `new` and never grown. Overwritten by each `access` or `decode`.
    buffer: AlignedVec<ENCODER_ALIGNMENT_BYTES>,
    /// Largest payload accepted, fixed at construction.
    bytes_max: u32,
}

impl CopyingDecoder {
    pub fn new(bytes_max: u32) -> CopyingDecoder {
        assert!(bytes_max > 0, "bytes_max must be positive");
        let buffer = AlignedVec::with_capacity(bytes_max as usize);
        assert!(buffer.capacity() >= bytes_max as usize);
        CopyingDecoder { buffer, bytes_max }
    }

    pub fn bytes_max(&self) -> u32 {
        self.bytes_max
    }

    /// Copies `bytes`, then validates the copy as an archived `R`.
    pub fn access<R: Record>(&mut self, bytes: &[u8]) -> Result<&R::Archived, RecordError> {
        let copy = self.copy_in(R::NAME, bytes)?;
        access_checked::<R>(copy)
    }

    /// Checks the frame tag, copies `bytes`, then validates the copy as that
    /// record.
    pub fn decode(&mut self, kind_code: u32, bytes: &[u8]) -> Result<ArchivedRecordRef<'_>, RecordError> {
        let kind = RecordKind::from_code(kind_code)?;
        let copy = self.copy_in(kind_name(kind), bytes)?;
        decode_checked(kind_code, copy)
    }

    /// Replaces the buffer's contents with `bytes`, without growing it.
    fn copy_in(&mut self, record: &'static str, bytes: &[u8]) -> Result<&[u8], RecordError> {
        if bytes.len() > self.bytes_max as usize {
            return Err(RecordError::TooLarge { record, bytes: bytes.len() as u64, bytes_max: self.bytes_max });
        }
        let capacity = self.buffer.capacity();
        self.buffer.clear();
        self.buffer.extend_from_slice(bytes);
        assert_eq!(self.buffer.capacity(), capacity, "the buffer never grows");
        assert_eq!(self.buffer.len(), bytes.len());
        Ok(&self.buffer)
    }
}

impl Default for CopyingDecoder {
    fn default() -> CopyingDecoder {
        CopyingDecoder::new(ENCODED_BYTES_MAX_DEFAULT)
    }
}

/// The record name used in error messages for a frame tag.
fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::MasterEvent => MasterEventRecord::NAME,
        RecordKind::Copy => CopyRecord::NAME,
        RecordKind::Result => ResultRecord::NAME,
        RecordKind::Ack => AckRecord::NAME,
    }
}

/// A validated archived record of any kind, for dispatch on the frame tag.
#[derive(Debug, Clone, Copy)]
pub enum ArchivedRecordRef<'a> {
    MasterEvent(&'a ArchivedMasterEventRecord),
    Copy(&'a ArchivedCopyRecord),
    Result(&'a ArchivedResultRecord),
    Ack(&'a ArchivedAckRecord),
}

/// Checks the frame tag and validates the payload as that record.
pub fn decode_checked(kind_code: u32, bytes: &[u8]) -> Result<ArchivedRecordRef<'_>, RecordError> {
    let decoded = match RecordKind::from_code(kind_code)? {
        RecordKind::MasterEvent => ArchivedRecordRef::MasterEvent(access_checked::<MasterEventRecord>(bytes)?),
        RecordKind::Copy => ArchivedRecordRef::Copy(access_checked::<CopyRecord>(bytes)?),
        RecordKind::Result => ArchivedRecordRef::Result(access_checked::<ResultRecord>(bytes)?),
        RecordKind::Ack => ArchivedRecordRef::Ack(access_checked::<AckRecord>(bytes)?),
    };
    Ok(decoded)
}


/// The `kind` of every record the router journals, one registry for the
/// router that writes them and the persister that reads them.
pub mod journal_kind {
    use super::RecordKind;

    /// A [`super::MasterEventRecord`] (the ring tag, so both carry one number).
    pub const MASTER_EVENT: u16 = RecordKind::MasterEvent.code() as u16;
    /// A [`super::CopyRecord`].
    pub const COPY: u16 = RecordKind::Copy.code() as u16;
    /// A [`super::ResultRecord`].
    pub const RESULT: u16 = RecordKind::Result.code() as u16;
    /// A slave `state` / `symbols` or master `snapshot`: [`decode_update`](super::decode_update).
    pub const UPDATE: u16 = 16;
    /// A slave's copy seq rebase (net's `SeqRebase`).
    pub const SLAVE_SEQ: u16 = 17;
    /// The followers that got no copy of one decision round, with the
    /// engine's reasons: [`encode_skips`](super::encode_skips). Journaled only
    /// when a persister reads the journal; replay ignores it.
    pub const SKIPS: u16 = 19;
    /// An EA session opened or closed, or the bridge started (which ends
    /// every session of the process before): [`encode_session`](super::encode_session).
    /// Journaled only when a persister reads the journal; replay ignores it.
    pub const SESSION: u16 = 20;
    /// One part of a configuration the bridge runs under from here on (the
    /// accounts and follows, as JSON): [`encode_config_parts`](super::encode_config_parts).
    /// Replay applies it when its last part is read, where it was applied.
    pub const CONFIG: u16 = 21;
}

/// Bytes before the protocol JSON in an [`journal_kind::UPDATE`] payload:
/// `received_ms`, `login`, `connection_id` (u64 LE each).
pub const UPDATE_HEADER_BYTES: usize = 24;

/// The parts of an update payload: `received_ms`, `login`,
/// `connection_id`, and the frame's JSON as the peer sent it.
pub fn decode_update(payload: &[u8]) -> Result<(u64, u64, u64, &[u8]), RecordError> {
    if payload.len() <= UPDATE_HEADER_BYTES {
        return Err(RecordError::Invalid { record: "update", bytes: payload.len() as u64, reason: format!("expected more than {UPDATE_HEADER_BYTES} bytes") });
    }
    let word = |index: usize| u64::from_le_bytes(payload[index * 8..index * 8 + 8].try_into().expect("8 bytes"));
    Ok((word(0), word(1), word(2), &payload[UPDATE_HEADER_BYTES..]))
}

/// One follower that got no copy, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipEntry {
    pub slave: u64,
    pub master: u64,
    pub pos: u64,
    /// The engine's reason as its code (`SkipReason::index`); the record
    /// carries it and leaves its meaning to the engine, so this module does
    /// not depend on the engine, which depends on the configuration, which
    /// depends on this module.
    pub reason: u8,
}

/// Bytes of one skip entry: slave, master, pos (u64 LE), the reason's code
/// (u8), 7 zero bytes.
const SKIP_ENTRY_BYTES: usize = 32;
/// Bytes before the entries: their count (u32 LE) and 4 zero bytes.
const SKIPS_HEADER_BYTES: usize = 8;

/// The most skip entries one record of `payload_bytes_max` bytes holds;
/// more are journaled as several records.
pub fn skips_per_record(payload_bytes_max: u32) -> usize {
    ((payload_bytes_max as usize).saturating_sub(SKIPS_HEADER_BYTES) / SKIP_ENTRY_BYTES).max(1)
}

/// Writes a [`journal_kind::SKIPS`] payload into `out` (cleared first).
pub fn encode_skips(entries: &[SkipEntry], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    for entry in entries {
        out.extend_from_slice(&entry.slave.to_le_bytes());
        out.extend_from_slice(&entry.master.to_le_bytes());
        out.extend_from_slice(&entry.pos.to_le_bytes());
        out.push(entry.reason);
        out.extend_from_slice(&[0; 7]);
    }
    debug_assert_eq!(out.len(), SKIPS_HEADER_BYTES + entries.len() * SKIP_ENTRY_BYTES);
}

/// Reads back a payload written by [`encode_skips`].
pub fn decode_skips(payload: &[u8]) -> Result<Vec<SkipEntry>, RecordError> {
    let invalid = |reason: String| RecordError::Invalid { record: "skips", bytes: payload.len() as u64, reason };
    if payload.len() < SKIPS_HEADER_BYTES {
        return Err(invalid(format!("expected at least {SKIPS_HEADER_BYTES} bytes")));
    }
    let count = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
    if payload.len() != SKIPS_HEADER_BYTES + count * SKIP_ENTRY_BYTES {
        return Err(invalid(format!("{count} entries need {} bytes", SKIPS_HEADER_BYTES + count * SKIP_ENTRY_BYTES)));
    }
    let mut entries = Vec::with_capacity(count);
    for chunk in payload[SKIPS_HEADER_BYTES..].chunks_exact(SKIP_ENTRY_BYTES) {
        let word = |index: usize| u64::from_le_bytes(chunk[index * 8..index * 8 + 8].try_into().expect("8 bytes"));
        let reason = chunk[24];
        entries.push(SkipEntry { slave: word(0), master: word(1), pos: word(2), reason });
    }
    Ok(entries)
}

/// Bytes before the document's bytes in a [`journal_kind::CONFIG`] payload:
/// `generation` (u64), `part` (u32), `parts` (u32), `applied_ms` (u64), LE.
pub const CONFIG_HEADER_BYTES: usize = 24;

/// One part of a configuration record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigPart<'a> {
    /// The configuration's number: 1 for the first the journal holds, +1
    /// for each change.
    pub generation: u64,
    /// This part's index, from 0.
    pub part: u32,
    /// How many parts the document has (at least 1).
    pub parts: u32,
    /// Bridge wall time of the change, ms since the epoch.
    pub applied_ms: u64,
    /// This part's slice of the document.
    pub bytes: &'a [u8],
}

/// Splits `document` into payloads of at most `payload_bytes_max` bytes
/// each (header included), in order.
pub fn encode_config_parts(generation: u64, applied_ms: u64, document: &[u8], payload_bytes_max: usize) -> Vec<Vec<u8>> {
    assert!(payload_bytes_max > CONFIG_HEADER_BYTES, "a part must hold some of the document");
    let room = payload_bytes_max - CONFIG_HEADER_BYTES;
    let chunks: Vec<&[u8]> = if document.is_empty() { vec![&[][..]] } else { document.chunks(room).collect() };
    let parts = u32::try_from(chunks.len()).expect("a configuration fits in 2^32 parts");
    chunks
        .into_iter()
        .enumerate()
        .map(|(part, chunk)| {
            let mut payload = Vec::with_capacity(CONFIG_HEADER_BYTES + chunk.len());
            payload.extend_from_slice(&generation.to_le_bytes());
            payload.extend_from_slice(&(part as u32).to_le_bytes());
            payload.extend_from_slice(&parts.to_le_bytes());
            payload.extend_from_slice(&applied_ms.to_le_bytes());
            payload.extend_from_slice(chunk);
            payload
        })
        .collect()
}

/// Reads one part's header and slice.
pub fn decode_config_part(payload: &[u8]) -> Result<ConfigPart<'_>, RecordError> {
    let invalid = |reason: String| RecordError::Invalid { record: "config", bytes: payload.len() as u64, reason };
    if payload.len() < CONFIG_HEADER_BYTES {
        return Err(invalid(format!("expected at least {CONFIG_HEADER_BYTES} bytes")));
    }
    let word = |range: std::ops::Range<usize>| -> u64 {
        let mut bytes = [0u8; 8];
        bytes[..range.len()].copy_from_slice(&payload[range]);
        u64::from_le_bytes(bytes)
    };
    let part = ConfigPart {
        generation: word(0..8),
        part: word(8..12) as u32,
        parts: word(12..16) as u32,
        applied_ms: word(16..24),
        bytes: &payload[CONFIG_HEADER_BYTES..],
    };
    if part.parts == 0 || part.part >= part.parts || part.generation == 0 {
        return Err(invalid(format!("part {} of {} of generation {}: expected a part below a count of at least 1, generation above 0", part.part, part.parts, part.generation)));
    }
    Ok(part)
}

/// Joins the parts of configuration records read in journal order.
#[derive(Debug, Default)]
pub struct ConfigAssembler {
    /// Generation and parts of the document being joined.
    current: Option<(u64, u32)>,
    /// The next part expected.
    next_part: u32,
    bytes: Vec<u8>,
}

impl ConfigAssembler {
    /// Adds `part`; returns the generation, time and whole document once
    /// its last part is in. A part out of order (a stop between two parts
    /// leaves the document unfinished) starts over at the part's own
    /// generation, dropping the unfinished one (its change was never applied).
    pub fn push(&mut self, part: &ConfigPart<'_>) -> Result<Option<(u64, u64, Vec<u8>)>, RecordError> {
        if part.part == 0 {
            self.current = Some((part.generation, part.parts));
            self.next_part = 0;
            self.bytes.clear();
        }
        if self.current != Some((part.generation, part.parts)) || part.part != self.next_part {
            let reason = format!("part {} of {} of generation {} out of order (expected part {} of {:?})", part.part, part.parts, part.generation, self.next_part, self.current);
            self.current = None;
            self.bytes.clear();
            return Err(RecordError::Invalid { record: "config", bytes: part.bytes.len() as u64, reason });
        }
        self.bytes.extend_from_slice(part.bytes);
        self.next_part += 1;
        if self.next_part < part.parts {
            return Ok(None);
        }
        self.current = None;
        Ok(Some((part.generation, part.applied_ms, std::mem::take(&mut self.bytes))))
    }
}

/// What a [`journal_kind::SESSION`] record says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session was welcomed.
    Open = 1,
    /// A session ended (`close_code` 0: the peer went away without one).
    Close = 2,
    /// The bridge process started: every session of an earlier process
    /// ended, unrecorded, when it stopped.
    BridgeStart = 3,
    /// A `hello` was refused (`close_reason`: why; never the key).
    AuthFailed = 4,
}

/// One session record: who, from where, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEntry {
    pub event: SessionEvent,
    /// 0 master, 1 slave (unused for `BridgeStart`).
    pub role: crate::protocol::Role,
    pub login: u64,
    /// Bridge wall time, ms since the epoch.
    pub time_ms: u64,
    /// The close code the bridge sent; 0 when none (the peer went away).
    pub close_code: u16,
    pub session_id: String,
    /// The peer's address (`ip:port`) as the bridge's socket saw it.
    pub remote_address: String,
    /// Why the bridge closed (its close frame's reason), empty otherwise.
    pub close_reason: String,
}

/// Bytes before the strings of a session record: event, role (u8), close
/// code (u16 LE), 4 zero bytes, login, time_ms (u64 LE), the three string
/// lengths (u16 LE) and 2 zero bytes.
const SESSION_HEADER_BYTES: usize = 32;
/// The longest string a session record keeps (longer ones are cut at a
/// character boundary).
pub const SESSION_STRING_BYTES_MAX: usize = 256;

fn cut(text: &str) -> &str {
    if text.len() <= SESSION_STRING_BYTES_MAX {
        return text;
    }
    let mut end = SESSION_STRING_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Writes a [`journal_kind::SESSION`] payload into `out` (cleared first).
pub fn encode_session(entry: &SessionEntry, out: &mut Vec<u8>) {
    let (id, remote, reason) = (cut(&entry.session_id), cut(&entry.remote_address), cut(&entry.close_reason));
    out.clear();
    out.push(entry.event as u8);
    out.push(match entry.role {
        crate::protocol::Role::Master => 0,
        crate::protocol::Role::Slave => 1,
    });
    out.extend_from_slice(&entry.close_code.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entry.login.to_le_bytes());
    out.extend_from_slice(&entry.time_ms.to_le_bytes());
    for text in [id, remote, reason] {
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&[0; 2]);
    for text in [id, remote, reason] {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Reads back a payload written by [`encode_session`].
pub fn decode_session(payload: &[u8]) -> Result<SessionEntry, RecordError> {
    let invalid = |reason: String| RecordError::Invalid { record: "session", bytes: payload.len() as u64, reason };
    if payload.len() < SESSION_HEADER_BYTES {
        return Err(invalid(format!("expected at least {SESSION_HEADER_BYTES} bytes")));
    }
    let event = match payload[0] {
        1 => SessionEvent::Open,
        2 => SessionEvent::Close,
        3 => SessionEvent::BridgeStart,
        4 => SessionEvent::AuthFailed,
        value => return Err(RecordError::BadCode { field: "session event", value, expected: "1 (open), 2 (close), 3 (bridge start) or 4 (authentication failed)" }),
    };
    let role = match payload[1] {
        0 => crate::protocol::Role::Master,
        1 => crate::protocol::Role::Slave,
        value => return Err(RecordError::BadCode { field: "session role", value, expected: "0 (master) or 1 (slave)" }),
    };
    let close_code = u16::from_le_bytes([payload[2], payload[3]]);
    let word = |offset: usize| u64::from_le_bytes(payload[offset..offset + 8].try_into().expect("8 bytes"));
    let length = |offset: usize| usize::from(u16::from_le_bytes([payload[offset], payload[offset + 1]]));
    let lengths = [length(24), length(26), length(28)];
    if payload.len() != SESSION_HEADER_BYTES + lengths.iter().sum::<usize>() {
        return Err(invalid(format!("strings of {lengths:?} bytes need {} bytes", SESSION_HEADER_BYTES + lengths.iter().sum::<usize>())));
    }
    let mut offset = SESSION_HEADER_BYTES;
    let mut strings = Vec::with_capacity(3);
    for bytes in lengths {
        let text = std::str::from_utf8(&payload[offset..offset + bytes]).map_err(|error| invalid(format!("a string is not UTF-8: {error}")))?;
        strings.push(text.to_owned());
        offset += bytes;
    }
    let close_reason = strings.pop().expect("three strings");
    let remote_address = strings.pop().expect("three strings");
    let session_id = strings.pop().expect("three strings");
    Ok(SessionEntry { event, role, login: word(8), time_ms: word(16), close_code, session_id, remote_address, close_reason })
}

#[cfg(test)]
mod config_part_tests {
    use super::*;

    #[test]
    fn a_document_split_into_parts_joins_back_and_a_broken_sequence_is_named() {
        // Shows: a 1,000-byte document in parts of at most 124 payload bytes joins back whole only at its last part; a part out of order is an error naming it, and a new first part starts over; an empty document is one part.
        let document: Vec<u8> = (0..1_000u32).map(|value| value as u8).collect();
        let parts = encode_config_parts(7, 1_234, &document, 124);
        assert_eq!(parts.len(), 10);
        assert!(parts.iter().all(|payload| payload.len() <= 124));
        let mut assembler = ConfigAssembler::default();
        for (index, payload) in parts.iter().enumerate() {
            let part = decode_config_part(payload).expect("valid part");
            assert_eq!((part.generation, part.part, part.parts, part.applied_ms), (7, index as u32, 10, 1_234));
            let joined = assembler.push(&part).expect("in order");
            assert_eq!(joined.is_some(), index == 9);
            if let Some((generation, applied_ms, bytes)) = joined {
                assert_eq!((generation, applied_ms), (7, 1_234));
                assert_eq!(bytes, document);
            }
        }
        let mut broken = ConfigAssembler::default();
        broken.push(&decode_config_part(&parts[0]).unwrap()).unwrap();
        let error = broken.push(&decode_config_part(&parts[2]).unwrap()).unwrap_err().to_string();
        assert!(error.contains("part 2 of 10 of generation 7 out of order"), "{error}");
        let restart = encode_config_parts(8, 5, b"{}", 124);
        assert_eq!(restart.len(), 1);
        assert_eq!(broken.push(&decode_config_part(&restart[0]).unwrap()).unwrap(), Some((8, 5, b"{}".to_vec())));
        assert_eq!(encode_config_parts(9, 0, b"", 124).len(), 1);
        assert!(decode_config_part(&[0u8; 10]).is_err());
        let mut zero_parts = parts[0].clone();
        zero_parts[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert!(decode_config_part(&zero_parts).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn skips_split_to_fit_a_record() {
        // Shows that the entries one record holds fill it without passing the journal's payload bound, so a master with thousands of skipped followers is journaled in several records instead of failing the append.
        for payload_bytes_max in [36_840u32, 16_384, 1_000, 40] {
            let per_record = skips_per_record(payload_bytes_max);
            let entries = vec![SkipEntry { slave: 1, master: 2, pos: 3, reason: 9 }; per_record];
            let mut bytes = Vec::new();
            encode_skips(&entries, &mut bytes);
            assert!(bytes.len() <= payload_bytes_max as usize || per_record == 1, "{payload_bytes_max}: {} bytes", bytes.len());
            assert!(bytes.len() + SKIP_ENTRY_BYTES > payload_bytes_max as usize, "{payload_bytes_max}: one more would have fitted");
        }
    }

    #[test]
    fn session_round_trip_and_refusals() {
        let entry = SessionEntry {
            event: SessionEvent::Close,
            role: crate::protocol::Role::Slave,
            login: u64::MAX,
            time_ms: 1_732_400_000_123,
            close_code: 4008,
            session_id: "19a3f-0-12".into(),
            remote_address: "[::1]:50123".into(),
            close_reason: "no frame for 3 x hb_ms".into(),
        };
        let mut bytes = Vec::new();
        encode_session(&entry, &mut bytes);
        assert_eq!(decode_session(&bytes).unwrap(), entry);
        // A long string is cut at a character boundary, not refused.
        let long = SessionEntry { remote_address: "é".repeat(300), ..entry.clone() };
        encode_session(&long, &mut bytes);
        let decoded = decode_session(&bytes).unwrap();
        assert_eq!(decoded.remote_address, "é".repeat(SESSION_STRING_BYTES_MAX / 2));
        // A truncated payload and a bad code are named.
        assert!(decode_session(&bytes[..bytes.len() - 1]).unwrap_err().to_string().contains("session"));
        bytes[0] = 9;
        assert!(decode_session(&bytes).unwrap_err().to_string().contains("session event"));
    }

    fn sample_event() -> protocol::Event {
        protocol::Event {
            seq: 42,
            kind: EventKind::Close,
            pos: 9001,
            ticket: u64::MAX,
            symbol: "EURUSD".to_owned(),
            side: Some(Side::Buy),
            volume: 0.10,
            price: 1.08123,
            sl: 1.079,
            tp: 1.086,
            magic: 7,
            comment: "a comment longer than eight bytes, stored out of line".to_owned(),
            time_ms: 1_732_400_000_123,
            remaining: Some(0.05),
        }
    }

    fn sample_meta() -> MasterEventMeta {
        MasterEventMeta {
            master_login: 1_234_567,
            received_ms: 1_732_400_000_200,
            received_ns: 987_654_321,
            shard_id: 3,
            connection_id: 77,
        }
    }

    fn sample_copy() -> protocol::Copy {
        protocol::Copy {
            seq: 77,
            id: "c-1234567-9001-1".to_owned(),
            master: 1_234_567,
            pos: 9001,
            action: CopyAction::Open,
            symbol: "EURUSD.m".to_owned(),
            side: Side::SellStop,
            volume: 0.20,
            price: 1.08123,
            max_dev: 0.0003,
            sl: 1.079,
            tp: 1.086,
            magic: 0,
            comment: "tc:1234567:9001".to_owned(),
            expires_ms: 1_732_400_005_123,
        }
    }

    fn sample_result() -> protocol::TradeResult {
        protocol::TradeResult {
            seq: 77,
            status: ResultStatus::Rejected,
            ticket: 55501,
            price: 1.08125,
            volume: 0.20,
            error: 10_004,
            msg: "requote".to_owned(),
            exec_ms: 38,
        }
    }

    #[test]
    fn enum_codes_round_trip() {
        // Every protocol enum value maps to a code in range and back to itself; 0 is refused.
        for kind in EVENT_KINDS {
            assert_eq!(event_kind_from_code(event_kind_code(kind)), Ok(kind));
        }
        for side in SIDES {
            assert_ne!(side_code(side), SIDE_CODE_NONE);
            assert_eq!(side_from_code(side_code(side)), Ok(side));
            assert_eq!(optional_side_from_code(optional_side_code(Some(side))), Ok(Some(side)));
        }
        for action in COPY_ACTIONS {
            assert_eq!(copy_action_from_code(copy_action_code(action)), Ok(action));
        }
        for status in RESULT_STATUSES {
            assert_eq!(result_status_from_code(result_status_code(status)), Ok(status));
        }
        assert_eq!(optional_side_from_code(SIDE_CODE_NONE), Ok(None));
        assert!(event_kind_from_code(0).is_err());
        assert!(side_from_code(0).is_err());
        assert!(copy_action_from_code(0).is_err());
        assert!(result_status_from_code(0).is_err());
    }

    #[test]
    fn out_of_range_codes_name_field_and_value() {
        // A bad code is an error whose message names the field, the value and the expected range.
        let error = side_from_code(7).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("side_code") && message.contains('7') && message.contains("1..=6"), "{message}");
        assert!(event_kind_from_code(6).is_err());
        assert!(copy_action_from_code(6).is_err());
        assert!(result_status_from_code(4).is_err());
        assert_eq!(RecordKind::from_code(0), Err(RecordError::UnknownKind { value: 0 }));
        assert_eq!(RecordKind::from_code(5), Err(RecordError::UnknownKind { value: 5 }));
    }

    #[test]
    fn record_kind_codes_round_trip() {
        // Each record kind's tag converts back to the same kind and none collides with padding.
        for kind in [RecordKind::MasterEvent, RecordKind::Copy, RecordKind::Result, RecordKind::Ack] {
            assert_ne!(kind.code(), PADDING_KIND);
            assert_eq!(RecordKind::from_code(kind.code()), Ok(kind));
        }
    }

    #[test]
    fn master_event_round_trips_through_checked_access() {
        // An event and its metadata survive encode -> checked access -> protocol event, every field equal.
        let record = MasterEventRecord::from_event(sample_event(), sample_meta());
        let mut encoder = RecordEncoder::default();
        let encoded = encoder.encode(&record).unwrap();
        assert_eq!(encoded.kind, RecordKind::MasterEvent);
        let archived = access_checked::<MasterEventRecord>(encoded.bytes).unwrap();
        assert_eq!(archived.meta(), sample_meta());
        assert_eq!(archived.to_event().unwrap(), sample_event());
        let owned: MasterEventRecord = rkyv::deserialize::<_, rancor::Error>(archived).unwrap();
        assert_eq!(owned, record);
        assert_eq!(owned.into_event().unwrap(), sample_event());
    }

    #[test]
    fn master_event_without_side_or_remaining_round_trips() {
        // Absent optional fields (side, remaining) stay absent through the archive.
        let mut event = sample_event();
        event.kind = EventKind::Modify;
        event.side = None;
        event.remaining = None;
        event.symbol = String::new();
        let record = MasterEventRecord::from_event(event.clone(), sample_meta());
        assert_eq!(record.side_code, SIDE_CODE_NONE);
        let mut encoder = RecordEncoder::default();
        let encoded = encoder.encode(&record).unwrap();
        let archived = access_checked::<MasterEventRecord>(encoded.bytes).unwrap();
        assert_eq!(archived.to_event().unwrap(), event);
    }

    #[test]
    fn copy_round_trips_through_checked_access() {
        // A copy and its routing metadata survive the archive, with and without a connection id.
        let mut encoder = RecordEncoder::default();
        for connection_id in [Some(5), None] {
            let meta = CopyMeta { slave_login: 42, event_received_ns: 123_456, routed_ns: 234_567, connection_id };
            let record = CopyRecord::from_copy(sample_copy(), meta);
            let encoded = encoder.encode(&record).unwrap();
            assert_eq!(encoded.kind, RecordKind::Copy);
            let archived = access_checked::<CopyRecord>(encoded.bytes).unwrap();
            assert_eq!(archived.meta(), meta);
            assert_eq!(archived.to_copy().unwrap(), sample_copy());
            assert_eq!(record.into_copy().unwrap(), sample_copy());
        }
    }

    #[test]
    fn result_and_ack_round_trip_through_checked_access() {
        // A result and an ack survive the archive with every field equal.
        let mut encoder = RecordEncoder::default();
        let meta = ResultMeta { slave_login: 42, received_ns: 55, received_ms: 1_732_400_000_123 };
        let record = ResultRecord::from_result(sample_result(), meta);
        let encoded = encoder.encode(&record).unwrap();
        let archived = access_checked::<ResultRecord>(encoded.bytes).unwrap();
        assert_eq!(archived.meta(), meta);
        assert_eq!(archived.to_result().unwrap(), sample_result());
        assert_eq!(record.into_result().unwrap(), sample_result());

        let ack = AckRecord { master_login: 1, connection_id: 2, seq: u64::MAX };
        let encoded = encoder.encode(&ack).unwrap();
        assert_eq!(encoded.kind, RecordKind::Ack);
        let archived = access_checked::<AckRecord>(encoded.bytes).unwrap();
        assert_eq!(archived.to_record(), ack);
        assert_eq!(ack.to_ack(), protocol::Ack { seq: u64::MAX });
    }

    #[test]
    fn decode_checked_dispatches_on_the_tag() {
        // decode_checked picks the record type from the tag and refuses unknown tags.
        let mut encoder = RecordEncoder::default();
        let ack = AckRecord { master_login: 1, connection_id: 2, seq: 3 };
        let encoded = encoder.encode(&ack).unwrap();
        match decode_checked(encoded.kind.code(), encoded.bytes).unwrap() {
            ArchivedRecordRef::Ack(archived) => assert_eq!(archived.to_record(), ack),
            other => panic!("expected an ack, got {other:?}"),
        }
        assert_eq!(decode_checked(99, encoded.bytes).unwrap_err(), RecordError::UnknownKind { value: 99 });
    }

    #[test]
    fn checked_access_refuses_garbage_and_truncation() {
        // Truncated, wrong-type and random bytes are refused by bytecheck, never read.
        let record = MasterEventRecord::from_event(sample_event(), sample_meta());
        let mut encoder = RecordEncoder::default();
        let encoded = encoder.encode(&record).unwrap().bytes.to_vec();
        let mut aligned = AlignedVec::<16>::new();

        aligned.extend_from_slice(&encoded[..encoded.len() - 8]);
        assert!(access_checked::<MasterEventRecord>(&aligned).is_err());

        aligned.clear();
        aligned.extend_from_slice(&[0xA5; 200]);
        let error = access_checked::<MasterEventRecord>(&aligned).unwrap_err();
        assert!(matches!(error, RecordError::Invalid { record: "MasterEventRecord", bytes: 200, .. }));

        aligned.clear();
        aligned.extend_from_slice(&[]);
        assert!(access_checked::<AckRecord>(&aligned).is_err());
    }

    #[test]
    fn archived_integers_are_little_endian() {
        // An encoded ack holds each u64 field as its little-endian bytes, in field order, in the 24-byte root at the end.
        let ack = AckRecord { master_login: 0x0102_0304_0506_0708, connection_id: 0x1112_1314_1516_1718, seq: 0x2122_2324_2526_2728 };
        let mut encoder = RecordEncoder::default();
        let bytes = encoder.encode(&ack).unwrap().bytes;
        let root = &bytes[bytes.len() - std::mem::size_of::<ArchivedAckRecord>()..];
        assert_eq!(root.len(), 24);
        assert_eq!(&root[0..8], &ack.master_login.to_le_bytes());
        assert_eq!(&root[8..16], &ack.connection_id.to_le_bytes());
        assert_eq!(&root[16..24], &ack.seq.to_le_bytes());
    }

    #[test]
    fn copying_decoder_reads_its_own_copy() {
        // The copying decoder returns the same fields as in-place access, from a copy that later writes to the source cannot reach.
        let record = MasterEventRecord::from_event(sample_event(), sample_meta());
        let mut encoder = RecordEncoder::default();
        let mut shared = encoder.encode(&record).unwrap().bytes.to_vec();
        let mut decoder = CopyingDecoder::default();
        let archived = decoder.access::<MasterEventRecord>(&shared).unwrap();
        // Another process rewriting the shared bytes after validation.
        shared.fill(0xA5);
        assert_eq!(archived.to_event().unwrap(), sample_event());
        assert_eq!(archived.meta(), sample_meta());
        assert!(decoder.access::<MasterEventRecord>(&shared).is_err(), "the rewritten bytes are refused");

        let ack = AckRecord { master_login: 7, connection_id: 8, seq: 9 };
        let encoded = encoder.encode(&ack).unwrap();
        let ArchivedRecordRef::Ack(archived) = decoder.decode(RecordKind::Ack.code(), encoded.bytes).unwrap() else {
            panic!("an ack decodes as an ack");
        };
        assert_eq!(archived.to_record(), ack);
        assert_eq!(decoder.decode(99, encoded.bytes).unwrap_err(), RecordError::UnknownKind { value: 99 });
    }

    #[test]
    fn copying_decoder_refuses_payloads_over_its_bound() {
        // A payload longer than bytes_max is refused by name and size, without growing the buffer; smaller ones still decode.
        let record = MasterEventRecord::from_event(sample_event(), sample_meta());
        let mut encoder = RecordEncoder::default();
        let encoded = encoder.encode(&record).unwrap();
        let mut decoder = CopyingDecoder::new(64);
        let error = decoder.access::<MasterEventRecord>(encoded.bytes).unwrap_err();
        let expected = RecordError::TooLarge { record: "MasterEventRecord", bytes: encoded.bytes.len() as u64, bytes_max: 64 };
        assert_eq!(error, expected);
        assert!(error.to_string().contains("bytes_max = 64"), "{error}");
        let ack = encoder.encode(&AckRecord { master_login: 1, connection_id: 3, seq: 2 }).unwrap();
        assert!(decoder.access::<AckRecord>(ack.bytes).is_ok());
        assert_eq!(decoder.bytes_max(), 64);
    }

    #[test]
    fn bad_enum_code_in_a_valid_archive_is_refused_on_conversion() {
        // bytecheck accepts any u8, so the conversion to the protocol type is what refuses a bad code.
        let mut record = MasterEventRecord::from_event(sample_event(), sample_meta());
        record.kind_code = 0;
        let mut encoder = RecordEncoder::default();
        let encoded = encoder.encode(&record).unwrap();
        let archived = access_checked::<MasterEventRecord>(encoded.bytes).unwrap();
        let error = archived.to_event().unwrap_err();
        assert!(matches!(error, RecordError::BadCode { field: "kind_code", value: 0, .. }));
    }

    #[test]
    fn encoder_refuses_a_record_over_its_bound_and_recovers() {
        // A record larger than encoded_bytes_max is an Encode error; the encoder keeps working afterwards.
        let mut encoder = RecordEncoder::new(256);
        let mut event = sample_event();
        event.comment = "x".repeat(300);
        let record = MasterEventRecord::from_event(event, sample_meta());
        let error = encoder.encode(&record).unwrap_err();
        assert!(error.to_string().contains("encoded_bytes_max = 256"), "{error}");
        let small = MasterEventRecord::from_event(sample_event(), sample_meta());
        let encoded = encoder.encode(&small).unwrap();
        assert!(access_checked::<MasterEventRecord>(encoded.bytes).is_ok());
    }

    #[test]
    fn trusted_access_reads_what_the_encoder_wrote() {
        // The unchecked path returns the same fields as the checked one on bytes this binary encoded.
        let record = MasterEventRecord::from_event(sample_event(), sample_meta());
        let mut encoder = RecordEncoder::default();
        let encoded = encoder.encode(&record).unwrap();
        // SAFETY: the bytes were just produced by this binary's encoder for a
        // MasterEventRecord, in the encoder's 16-byte-aligned buffer.
        let archived = unsafe { access_trusted::<MasterEventRecord>(encoded.bytes) };
        assert_eq!(archived.to_event().unwrap(), sample_event());
        assert_eq!(archived.meta(), sample_meta());
    }

    fn side_strategy() -> impl Strategy<Value = Side> {
        proptest::sample::select(SIDES.to_vec())
    }

    prop_compose! {
        fn event_strategy()(
            seq in any::<u64>(), kind in proptest::sample::select(EVENT_KINDS.to_vec()),
            pos in any::<u64>(), ticket in any::<u64>(), symbol in ".{0,40}",
            side in proptest::option::of(side_strategy()),
            volume in -1e9f64..1e9, price in -1e9f64..1e9, sl in -1e9f64..1e9, tp in -1e9f64..1e9,
            magic in any::<u64>(), comment in ".{0,80}", time_ms in any::<u64>(),
            remaining in proptest::option::of(-1e9f64..1e9),
        ) -> protocol::Event {
            protocol::Event { seq, kind, pos, ticket, symbol, side, volume, price, sl, tp, magic, comment, time_ms, remaining }
        }
    }

    proptest! {
        #[test]
        fn any_event_round_trips(event in event_strategy(), login in any::<u64>(), shard_id in any::<u32>(), stamp in any::<u64>()) {
            // Arbitrary events (unicode strings, extreme integers) survive encode and checked access unchanged.
            let meta = MasterEventMeta { master_login: login, received_ms: stamp, received_ns: !stamp, shard_id, connection_id: stamp / 3 };
            let record = MasterEventRecord::from_event(event.clone(), meta);
            let mut encoder = RecordEncoder::default();
            let encoded = encoder.encode(&record).unwrap();
            let archived = access_checked::<MasterEventRecord>(encoded.bytes).unwrap();
            prop_assert_eq!(archived.meta(), meta);
            prop_assert_eq!(archived.to_event().unwrap(), event);
        }
    }

    #[test]
    fn skips_round_trip_and_refuse_bad_bytes() {
        // Shows that entries with every reason code survive encode and decode, and that a short or miscounted payload is refused.
        let entries: Vec<SkipEntry> =
            (0..=u8::MAX).map(|code| SkipEntry { slave: u64::MAX - u64::from(code), master: 7, pos: u64::from(code), reason: code }).collect();
        let mut bytes = Vec::new();
        encode_skips(&entries, &mut bytes);
        assert_eq!(decode_skips(&bytes).unwrap(), entries);
        assert!(decode_skips(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_skips(&bytes[..4]).is_err());
    }
}
