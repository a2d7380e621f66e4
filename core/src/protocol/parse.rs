//! [`parse`]: one text frame to one typed [`Message`], refusing anything
//! `shared/PROTOCOL.md` v1 and `core/PROTOCOL-NOTES.md` do not allow, with
//! an error that names the field.
//!
//! # Layout
//! - [`parse`]: size and UTF-8 checks; finds `t` (from the first member
//!   when it is `t`, as every frame this codec writes has it, otherwise by
//!   a first pass over the object); reads the body; refuses trailing bytes.
//! - `parse_*`: one function per message type. Each reads the fields it
//!   knows into `Option` slots, then applies the required/optional table
//!   and the value checks of `core/PROTOCOL-NOTES.md`.
//!
//! # Invariants
//! - `parse` never panics and never reads past the frame, whatever the bytes.
//! - A message `parse` returns satisfies every check below, so
//!   `parse(write(m)) == m` for it (the fuzz target checks exactly this).
//! - Allocation happens only for the message's own `String`s and `Vec`s.

use super::error::{Excerpt, FieldPath, ProtocolError};
use super::fields::{Field, Object};
use super::json::{KeyBuffer, Reader};
use super::message::*;

/// Longest frame `parse` accepts, in bytes. The transport already refuses
/// frames above its own limit (16 KiB by default); this bound keeps the
/// parser safe on its own, keeps byte offsets within u32, and stays far
/// above any transport limit worth configuring.
pub const FRAME_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Most elements accepted in a `positions` array. Far above any real
/// account (MetaTrader terminals hold hundreds of positions at most), and
/// it bounds the memory one frame can make the parser allocate.
pub const POSITIONS_MAX: u32 = 10_000;

/// Most elements accepted in a `symbols` array. A broker lists a few
/// thousand symbols at most, and a terminal sends only its Market Watch.
pub const SYMBOLS_MAX: u32 = 10_000;

/// Digits of a symbol that leaves `digits` out: the 5 of most FX pairs.
pub const SYMBOL_DIGITS_DEFAULT: u32 = 5;

/// Contract size of a symbol that leaves `contract` out: the 100000 units
/// per lot of most FX pairs.
pub const SYMBOL_CONTRACT_DEFAULT: f64 = 100_000.0;

const EXPECTED_ROLE: &str = "one of \"master\", \"slave\"";
const EXPECTED_SIDE: &str =
    "one of \"buy\", \"sell\", \"buy_limit\", \"sell_limit\", \"buy_stop\", \"sell_stop\"";
const EXPECTED_MARKET_SIDE: &str = "\"buy\" or \"sell\" for an open";
const EXPECTED_PENDING_SIDE: &str =
    "one of \"buy_limit\", \"sell_limit\", \"buy_stop\", \"sell_stop\" for a pending order";
const EXPECTED_KIND: &str = "one of \"open\", \"modify\", \"close\", \"pending\", \"cancel\"";
const EXPECTED_STATUS: &str = "one of \"filled\", \"rejected\", \"skipped\"";
const EXPECTED_CODE: &str = "one of \"bad_message\", \"unknown_type\", \"unauthorized\", \
     \"rate_limited\", \"too_large\", \"internal\"";
const EXPECTED_POSITIVE: &str = "finite number > 0";

/// The message types of protocol v1, as named by `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MessageType {
    Hello,
    Welcome,
    Ping,
    Pong,
    Event,
    Ack,
    Snapshot,
    Copy,
    Result,
    State,
    Symbols,
    Error,
}

impl MessageType {
    fn from_wire(name: &str) -> Option<MessageType> {
        Some(match name {
            "hello" => MessageType::Hello,
            "welcome" => MessageType::Welcome,
            "ping" => MessageType::Ping,
            "pong" => MessageType::Pong,
            "event" => MessageType::Event,
            "ack" => MessageType::Ack,
            "snapshot" => MessageType::Snapshot,
            "copy" => MessageType::Copy,
            "result" => MessageType::Result,
            "state" => MessageType::State,
            "symbols" => MessageType::Symbols,
            "error" => MessageType::Error,
            _ => return None,
        })
    }
}

/// Parses one text frame holding one JSON object into a [`Message`].
///
/// Unknown fields are checked for JSON validity and ignored; a field the
/// message type uses may appear only once. See `core/PROTOCOL-NOTES.md`
/// for every rule.
pub fn parse(frame: &[u8]) -> Result<Message, ProtocolError> {
    if frame.len() as u64 > FRAME_BYTES_MAX {
        return Err(ProtocolError::FrameTooLarge {
            frame_bytes: frame.len() as u64,
            frame_bytes_max: FRAME_BYTES_MAX,
        });
    }
    let text = std::str::from_utf8(frame).map_err(|error| ProtocolError::InvalidUtf8 {
        offset: error.valid_up_to() as u32,
    })?;
    let mut reader = Reader::new(text);
    let message = match read_leading_type(&mut reader)? {
        Some(message_type) => {
            let mut object = Object::top(&mut reader, false, true);
            parse_body(message_type, &mut object)?
        }
        None => {
            // `t` is not first: learn the type in a first pass, then read
            // the object again from its start.
            let message_type = scan_type(text)?;
            reader = Reader::new(text);
            reader.begin_object()?;
            let mut object = Object::top(&mut reader, true, false);
            parse_body(message_type, &mut object)?
        }
    };
    reader.finish()?;
    debug_assert!(reader.offset() == text.len());
    Ok(message)
}

/// Opens the object and reads its first member's value as the type when
/// its key is `t`; `None` when the first key is something else.
fn read_leading_type(reader: &mut Reader) -> Result<Option<MessageType>, ProtocolError> {
    reader.begin_object()?;
    let mut first = true;
    let mut scratch = KeyBuffer::new();
    let Some(key) = reader.next_key(&mut first, &mut scratch)? else {
        return Err(ProtocolError::MissingField {
            field: FieldPath::top("t"),
        });
    };
    debug_assert!(!first);
    if key != "t" {
        return Ok(None);
    }
    read_type(reader).map(Some)
}

/// Reads the whole object once, only to find `t`.
fn scan_type(text: &str) -> Result<MessageType, ProtocolError> {
    let mut reader = Reader::new(text);
    reader.begin_object()?;
    let mut first = true;
    let mut scratch = KeyBuffer::new();
    let mut found = None;
    while let Some(key) = reader.next_key(&mut first, &mut scratch)? {
        if key != "t" {
            reader.skip_value()?;
            continue;
        }
        if found.is_some() {
            return Err(ProtocolError::DuplicateField {
                field: FieldPath::top("t"),
            });
        }
        found = Some(read_type(&mut reader)?);
    }
    reader.finish()?;
    debug_assert!(reader.offset() == text.len());
    found.ok_or(ProtocolError::MissingField {
        field: FieldPath::top("t"),
    })
}

/// Reads the value of `t`, at the reader's offset.
fn read_type(reader: &mut Reader) -> Result<MessageType, ProtocolError> {
    let start = reader.offset();
    if reader.peek() != Some(b'"') {
        reader.skip_value()?;
        return Err(ProtocolError::InvalidField {
            field: FieldPath::top("t"),
            expected: "string",
            got: reader.excerpt_from(start),
        });
    }
    let mut scratch = KeyBuffer::new();
    let name = reader.read_name(&mut scratch)?;
    debug_assert!(reader.offset() >= start + 2, "a string has two quotes");
    MessageType::from_wire(name).ok_or_else(|| ProtocolError::UnknownType {
        got: reader.excerpt_from(start),
    })
}

fn parse_body(message_type: MessageType, object: &mut Object) -> Result<Message, ProtocolError> {
    Ok(match message_type {
        MessageType::Hello => Message::Hello(parse_hello(object)?),
        MessageType::Welcome => Message::Welcome(parse_welcome(object)?),
        MessageType::Ping => {
            skip_members(object)?;
            Message::Ping
        }
        MessageType::Pong => {
            skip_members(object)?;
            Message::Pong
        }
        MessageType::Event => Message::Event(parse_event(object)?),
        MessageType::Ack => Message::Ack(parse_ack(object)?),
        MessageType::Snapshot => Message::Snapshot(parse_snapshot(object)?),
        MessageType::Copy => Message::Copy(parse_copy(object)?),
        MessageType::Result => Message::Result(parse_result(object)?),
        MessageType::State => Message::State(parse_state(object)?),
        MessageType::Symbols => Message::Symbols(parse_symbols(object)?),
        MessageType::Error => Message::Error(parse_error(object)?),
    })
}

/// Reads and checks the members of a message without fields (`ping`, `pong`).
fn skip_members(object: &mut Object) -> Result<(), ProtocolError> {
    while object.next()?.is_some() {
        object.skip()?;
    }
    Ok(())
}

/// A `key` refused for its type says what was expected but not what came:
/// the value may be the key itself (in an array, say), and the error is
/// sent back and logged.
fn without_the_key(error: ProtocolError) -> ProtocolError {
    match error {
        ProtocolError::InvalidField { field, expected, .. } => ProtocolError::InvalidField { field, expected, got: Excerpt::new("a value not shown (keys are never echoed)") },
        other => other,
    }
}

fn parse_hello(object: &mut Object) -> Result<Hello, ProtocolError> {
    let (mut version, mut key, mut login, mut role) = (None, None, None, None);
    let (mut platform, mut server, mut ea, mut last_seq) = (None, None, None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Version => object.u32(&mut version, field)?,
            Field::Key => object.text(&mut key, field).map_err(without_the_key)?,
            Field::Login => object.u64(&mut login, field)?,
            Field::Role => object.wire_enum(&mut role, field, Role::from_wire, EXPECTED_ROLE)?,
            Field::Platform => object.text(&mut platform, field)?,
            Field::Server => object.text(&mut server, field)?,
            Field::Ea => object.text(&mut ea, field)?,
            Field::LastSeq => object.u64(&mut last_seq, field)?,
            _ => object.skip()?,
        }
    }
    Ok(Hello {
        version: object.required(version, Field::Version)?,
        key: object.required(key, Field::Key)?,
        login: object.required(login, Field::Login)?,
        role: object.required(role, Field::Role)?,
        server: object.required(server, Field::Server)?,
        platform: platform.unwrap_or_default(),
        ea: ea.unwrap_or_default(),
        last_seq: last_seq.unwrap_or(0),
    })
}

fn parse_welcome(object: &mut Object) -> Result<Welcome, ProtocolError> {
    let (mut version, mut session, mut hb_ms, mut ack_seq, mut notice) = (None, None, None, None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Version => object.u32(&mut version, field)?,
            Field::Session => object.text(&mut session, field)?,
            Field::HbMs => object.u64(&mut hb_ms, field)?,
            Field::AckSeq => object.u64(&mut ack_seq, field)?,
            Field::Notice => object.text(&mut notice, field)?,
            _ => object.skip()?,
        }
    }
    Ok(Welcome {
        version: object.required(version, Field::Version)?,
        session: object.required(session, Field::Session)?,
        hb_ms: object.required(hb_ms, Field::HbMs)?,
        ack_seq: object.required(ack_seq, Field::AckSeq)?,
        notice,
    })
}

/// The fields of an `event` as read, before the table of required fields
/// (which depends on `kind`) is applied.
#[derive(Default)]
struct EventSlots {
    seq: Option<u64>,
    kind: Option<EventKind>,
    pos: Option<u64>,
    ticket: Option<u64>,
    symbol: Option<String>,
    side: Option<Side>,
    volume: Option<f64>,
    price: Option<f64>,
    sl: Option<f64>,
    tp: Option<f64>,
    magic: Option<u64>,
    comment: Option<String>,
    time_ms: Option<u64>,
    remaining: Option<f64>,
}

fn parse_event(object: &mut Object) -> Result<Event, ProtocolError> {
    let mut slots = EventSlots::default();
    while let Some(field) = object.next()? {
        match field {
            Field::Seq => object.u64(&mut slots.seq, field)?,
            Field::Kind => {
                object.wire_enum(&mut slots.kind, field, EventKind::from_wire, EXPECTED_KIND)?
            }
            Field::Pos => object.u64(&mut slots.pos, field)?,
            Field::Ticket => object.u64(&mut slots.ticket, field)?,
            Field::Symbol => object.text(&mut slots.symbol, field)?,
            Field::Side => {
                object.wire_enum(&mut slots.side, field, Side::from_wire, EXPECTED_SIDE)?
            }
            Field::Volume => object.f64(&mut slots.volume, field)?,
            Field::Price => object.non_negative(&mut slots.price, field)?,
            Field::Sl => object.non_negative(&mut slots.sl, field)?,
            Field::Tp => object.non_negative(&mut slots.tp, field)?,
            Field::Magic => object.u64(&mut slots.magic, field)?,
            Field::Comment => object.text(&mut slots.comment, field)?,
            Field::TimeMs => object.u64(&mut slots.time_ms, field)?,
            Field::Remaining => object.non_negative(&mut slots.remaining, field)?,
            _ => object.skip()?,
        }
    }
    build_event(object, slots)
}

/// Applies the event table: which fields each `kind` requires, and the
/// checks that depend on `kind`.
fn build_event(object: &Object, slots: EventSlots) -> Result<Event, ProtocolError> {
    let seq = object.required(slots.seq, Field::Seq)?;
    let kind = object.required(slots.kind, Field::Kind)?;
    let pos = object.required(slots.pos, Field::Pos)?;
    match kind {
        EventKind::Open | EventKind::Pending => {
            object.required(slots.symbol.as_ref(), Field::Symbol)?;
            let side = object.required(slots.side, Field::Side)?;
            check_side(object, side, kind == EventKind::Pending)?;
            object.required(slots.volume, Field::Volume)?;
            object.required(slots.price, Field::Price)?;
        }
        EventKind::Close => {
            object.required(slots.volume, Field::Volume)?;
        }
        EventKind::Modify => {
            // The Monitor always sends both current stops; a missing one
            // must not be read as "remove the stop".
            object.required(slots.sl, Field::Sl)?;
            object.required(slots.tp, Field::Tp)?;
        }
        EventKind::Cancel => {}
    }
    if let Some(volume) = slots.volume {
        let opens_or_closes = matches!(
            kind,
            EventKind::Open | EventKind::Pending | EventKind::Close
        );
        check_volume(object, volume, opens_or_closes)?;
    }
    let event = Event {
        seq,
        kind,
        pos,
        ticket: slots.ticket.unwrap_or(pos),
        symbol: slots.symbol.unwrap_or_default(),
        side: slots.side,
        volume: slots.volume.unwrap_or(0.0),
        price: slots.price.unwrap_or(0.0),
        sl: slots.sl.unwrap_or(0.0),
        tp: slots.tp.unwrap_or(0.0),
        magic: slots.magic.unwrap_or(0),
        comment: slots.comment.unwrap_or_default(),
        time_ms: slots.time_ms.unwrap_or(0),
        remaining: slots.remaining,
    };
    debug_assert!(event.side.is_some() || !matches!(kind, EventKind::Open | EventKind::Pending));
    debug_assert!(event.volume >= 0.0 && event.price >= 0.0);
    Ok(event)
}

/// An open takes a market side; a pending order one of the four pending types.
fn check_side(object: &Object, side: Side, pending: bool) -> Result<(), ProtocolError> {
    if side.is_pending() == pending {
        return Ok(());
    }
    Err(ProtocolError::InvalidField {
        field: object.path(Field::Side),
        expected: if pending {
            EXPECTED_PENDING_SIDE
        } else {
            EXPECTED_MARKET_SIDE
        },
        got: Excerpt::quoted(side.as_str()),
    })
}

/// A volume that opens, places or closes something (`positive`) must be
/// above zero; any other volume (a modify's or cancel's, 0 when unused)
/// must not be negative.
fn check_volume(object: &Object, volume: f64, positive: bool) -> Result<(), ProtocolError> {
    if positive {
        return check_positive(object, volume, Field::Volume);
    }
    debug_assert!(volume.is_finite());
    if volume >= 0.0 {
        return Ok(());
    }
    Err(object.invalid_number(Field::Volume, "finite number >= 0", volume))
}

/// Checks a value that must be above zero (volumes that open or close,
/// lot limits and steps).
fn check_positive(object: &Object, value: f64, field: Field) -> Result<(), ProtocolError> {
    debug_assert!(value.is_finite());
    if value > 0.0 {
        return Ok(());
    }
    Err(object.invalid_number(field, EXPECTED_POSITIVE, value))
}

fn parse_ack(object: &mut Object) -> Result<Ack, ProtocolError> {
    let mut seq = None;
    while let Some(field) = object.next()? {
        match field {
            Field::Seq => object.u64(&mut seq, field)?,
            _ => object.skip()?,
        }
    }
    Ok(Ack {
        seq: object.required(seq, Field::Seq)?,
    })
}

fn parse_snapshot(object: &mut Object) -> Result<Snapshot, ProtocolError> {
    let (mut positions, mut balance, mut equity, mut currency) = (None, None, None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Positions => object.array(
                &mut positions,
                field,
                POSITIONS_MAX,
                parse_snapshot_position,
            )?,
            Field::Balance => object.f64(&mut balance, field)?,
            Field::Equity => object.f64(&mut equity, field)?,
            Field::Currency => object.text(&mut currency, field)?,
            _ => object.skip()?,
        }
    }
    Ok(Snapshot {
        positions: object.required(positions, Field::Positions)?,
        balance: object.required(balance, Field::Balance)?,
        equity: object.required(equity, Field::Equity)?,
        currency: currency.unwrap_or_default(),
    })
}

fn parse_snapshot_position(object: &mut Object) -> Result<SnapshotPosition, ProtocolError> {
    let (mut pos, mut symbol, mut side, mut volume, mut price) = (None, None, None, None, None);
    let (mut sl, mut tp, mut magic, mut comment) = (None, None, None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Pos => object.u64(&mut pos, field)?,
            Field::Symbol => object.text(&mut symbol, field)?,
            Field::Side => object.wire_enum(&mut side, field, Side::from_wire, EXPECTED_SIDE)?,
            Field::Volume => object.f64(&mut volume, field)?,
            Field::Price => object.non_negative(&mut price, field)?,
            Field::Sl => object.non_negative(&mut sl, field)?,
            Field::Tp => object.non_negative(&mut tp, field)?,
            Field::Magic => object.u64(&mut magic, field)?,
            Field::Comment => object.text(&mut comment, field)?,
            _ => object.skip()?,
        }
    }
    let position = SnapshotPosition {
        pos: object.required(pos, Field::Pos)?,
        symbol: object.required(symbol, Field::Symbol)?,
        side: object.required(side, Field::Side)?,
        volume: object.required(volume, Field::Volume)?,
        price: price.unwrap_or(0.0),
        sl: sl.unwrap_or(0.0),
        tp: tp.unwrap_or(0.0),
        magic: magic.unwrap_or(0),
        comment: comment.unwrap_or_default(),
    };
    check_volume(object, position.volume, true)?;
    Ok(position)
}

/// The fields of a `copy` as read, before the table is applied.
#[derive(Default)]
struct CopySlots {
    seq: Option<u64>,
    id: Option<String>,
    master: Option<u64>,
    pos: Option<u64>,
    action: Option<CopyAction>,
    symbol: Option<String>,
    side: Option<Side>,
    volume: Option<f64>,
    price: Option<f64>,
    max_dev: Option<f64>,
    sl: Option<f64>,
    tp: Option<f64>,
    magic: Option<u64>,
    comment: Option<String>,
    expires_ms: Option<u64>,
}

fn parse_copy(object: &mut Object) -> Result<Copy, ProtocolError> {
    let mut slots = CopySlots::default();
    while let Some(field) = object.next()? {
        match field {
            Field::Seq => object.u64(&mut slots.seq, field)?,
            Field::Id => object.text(&mut slots.id, field)?,
            Field::Master => object.u64(&mut slots.master, field)?,
            Field::Pos => object.u64(&mut slots.pos, field)?,
            Field::Action => object.wire_enum(
                &mut slots.action,
                field,
                CopyAction::from_wire,
                EXPECTED_KIND,
            )?,
            Field::Symbol => object.text(&mut slots.symbol, field)?,
            Field::Side => {
                object.wire_enum(&mut slots.side, field, Side::from_wire, EXPECTED_SIDE)?
            }
            Field::Volume => object.f64(&mut slots.volume, field)?,
            Field::Price => object.non_negative(&mut slots.price, field)?,
            Field::MaxDev => object.non_negative(&mut slots.max_dev, field)?,
            Field::Sl => object.non_negative(&mut slots.sl, field)?,
            Field::Tp => object.non_negative(&mut slots.tp, field)?,
            Field::Magic => object.u64(&mut slots.magic, field)?,
            Field::Comment => object.text(&mut slots.comment, field)?,
            Field::ExpiresMs => object.u64(&mut slots.expires_ms, field)?,
            _ => object.skip()?,
        }
    }
    build_copy(object, slots)
}

/// Applies the copy table and the checks that depend on `action`.
fn build_copy(object: &Object, slots: CopySlots) -> Result<Copy, ProtocolError> {
    let copy = Copy {
        seq: object.required(slots.seq, Field::Seq)?,
        id: object.required(slots.id, Field::Id)?,
        master: object.required(slots.master, Field::Master)?,
        pos: object.required(slots.pos, Field::Pos)?,
        action: object.required(slots.action, Field::Action)?,
        symbol: object.required(slots.symbol, Field::Symbol)?,
        side: object.required(slots.side, Field::Side)?,
        volume: object.required(slots.volume, Field::Volume)?,
        price: slots.price.unwrap_or(0.0),
        max_dev: slots.max_dev.unwrap_or(0.0),
        sl: slots.sl.unwrap_or(0.0),
        tp: slots.tp.unwrap_or(0.0),
        magic: slots.magic.unwrap_or(0),
        comment: slots.comment.unwrap_or_default(),
        expires_ms: slots.expires_ms.unwrap_or(0),
    };
    if let CopyAction::Open | CopyAction::Pending = copy.action {
        check_side(object, copy.side, copy.action == CopyAction::Pending)?;
    }
    let opens_or_closes = matches!(
        copy.action,
        CopyAction::Open | CopyAction::Pending | CopyAction::Close
    );
    check_volume(object, copy.volume, opens_or_closes)?;
    debug_assert!(copy.volume >= 0.0 && copy.price >= 0.0 && copy.max_dev >= 0.0);
    debug_assert!(copy.action != CopyAction::Open || !copy.side.is_pending());
    Ok(copy)
}

fn parse_result(object: &mut Object) -> Result<TradeResult, ProtocolError> {
    let (mut seq, mut status, mut ticket, mut price) = (None, None, None, None);
    let (mut volume, mut error, mut msg, mut exec_ms) = (None, None, None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Seq => object.u64(&mut seq, field)?,
            Field::Status => {
                object.wire_enum(&mut status, field, ResultStatus::from_wire, EXPECTED_STATUS)?
            }
            Field::Ticket => object.u64(&mut ticket, field)?,
            Field::Price => object.non_negative(&mut price, field)?,
            Field::Volume => object.non_negative(&mut volume, field)?,
            Field::Error => object.u32(&mut error, field)?,
            Field::Msg => object.text(&mut msg, field)?,
            Field::ExecMs => object.u64(&mut exec_ms, field)?,
            _ => object.skip()?,
        }
    }
    Ok(TradeResult {
        seq: object.required(seq, Field::Seq)?,
        status: object.required(status, Field::Status)?,
        ticket: ticket.unwrap_or(0),
        price: price.unwrap_or(0.0),
        volume: volume.unwrap_or(0.0),
        error: error.unwrap_or(0),
        msg: msg.unwrap_or_default(),
        exec_ms: exec_ms.unwrap_or(0),
    })
}

fn parse_state(object: &mut Object) -> Result<State, ProtocolError> {
    let (mut balance, mut equity, mut currency) = (None, None, None);
    let (mut positions, mut symbols) = (None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Balance => object.f64(&mut balance, field)?,
            Field::Equity => object.f64(&mut equity, field)?,
            Field::Currency => object.text(&mut currency, field)?,
            Field::Positions => {
                object.array(&mut positions, field, POSITIONS_MAX, parse_state_position)?
            }
            Field::Symbols => object.array(&mut symbols, field, SYMBOLS_MAX, parse_symbol_spec)?,
            _ => object.skip()?,
        }
    }
    Ok(State {
        balance: object.required(balance, Field::Balance)?,
        equity: object.required(equity, Field::Equity)?,
        positions: object.required(positions, Field::Positions)?,
        currency: currency.unwrap_or_default(),
        symbols,
    })
}

fn parse_state_position(object: &mut Object) -> Result<StatePosition, ProtocolError> {
    let (mut pos, mut symbol, mut side) = (None, None, None);
    let (mut volume, mut comment) = (None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Pos => object.u64(&mut pos, field)?,
            Field::Symbol => object.text(&mut symbol, field)?,
            Field::Side => object.wire_enum(&mut side, field, Side::from_wire, EXPECTED_SIDE)?,
            Field::Volume => object.f64(&mut volume, field)?,
            Field::Comment => object.text(&mut comment, field)?,
            _ => object.skip()?,
        }
    }
    let position = StatePosition {
        pos: object.required(pos, Field::Pos)?,
        symbol: object.required(symbol, Field::Symbol)?,
        side: object.required(side, Field::Side)?,
        volume: object.required(volume, Field::Volume)?,
        comment: comment.unwrap_or_default(),
    };
    check_volume(object, position.volume, true)?;
    Ok(position)
}

fn parse_symbols(object: &mut Object) -> Result<Symbols, ProtocolError> {
    let mut symbols = None;
    while let Some(field) = object.next()? {
        match field {
            Field::Symbols => object.array(&mut symbols, field, SYMBOLS_MAX, parse_symbol_spec)?,
            _ => object.skip()?,
        }
    }
    Ok(Symbols {
        symbols: object.required(symbols, Field::Symbols)?,
    })
}

fn parse_symbol_spec(object: &mut Object) -> Result<SymbolSpec, ProtocolError> {
    let (mut name, mut min, mut max, mut step) = (None, None, None, None);
    let (mut digits, mut contract) = (None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Name => object.text(&mut name, field)?,
            Field::Min => object.f64(&mut min, field)?,
            Field::Max => object.f64(&mut max, field)?,
            Field::Step => object.f64(&mut step, field)?,
            Field::Digits => object.u32(&mut digits, field)?,
            Field::Contract => object.f64(&mut contract, field)?,
            _ => object.skip()?,
        }
    }
    let spec = SymbolSpec {
        name: object.required(name, Field::Name)?,
        min: object.required(min, Field::Min)?,
        max: object.required(max, Field::Max)?,
        step: object.required(step, Field::Step)?,
        digits: digits.unwrap_or(SYMBOL_DIGITS_DEFAULT),
        contract: contract.unwrap_or(SYMBOL_CONTRACT_DEFAULT),
    };
    check_positive(object, spec.min, Field::Min)?;
    check_positive(object, spec.step, Field::Step)?;
    if spec.max < spec.min {
        return Err(object.invalid_number(Field::Max, "finite number >= min", spec.max));
    }
    debug_assert!(spec.min > 0.0 && spec.step > 0.0 && spec.max >= spec.min);
    Ok(spec)
}

fn parse_error(object: &mut Object) -> Result<ErrorMessage, ProtocolError> {
    let (mut code, mut msg) = (None, None);
    while let Some(field) = object.next()? {
        match field {
            Field::Code => {
                object.wire_enum(&mut code, field, ErrorCode::from_wire, EXPECTED_CODE)?
            }
            Field::Msg => object.text(&mut msg, field)?,
            _ => object.skip()?,
        }
    }
    Ok(ErrorMessage {
        code: object.required(code, Field::Code)?,
        msg: object.required(msg, Field::Msg)?,
    })
}
