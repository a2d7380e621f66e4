//! [`write`]: any [`Message`] to one compact JSON object with the wire
//! names of `shared/PROTOCOL.md`, `t` first.
//!
//! # Layout
//! - [`write`]: opens the object with `t`, writes the message's fields in
//!   the order of PROTOCOL.md's examples, closes it.
//! - `Members`: appends `"key":value` members (u64, u32, f64, string, enum
//!   name, array of objects) with the commas between them.
//! - `write_string`, `write_u64`, `write_f64`: the value encoders.
//!
//! # Invariants
//! - Nothing is allocated except by growing `out`: numbers are formatted in
//!   stack buffers and strings are escaped straight into `out`.
//! - Every field is written (optional ones with their value, even when it is
//!   the default), except `Option` fields that are `None`; so a peer that
//!   expects PROTOCOL.md's examples finds every field it knows.
//! - `t` is the first member, so `parse` takes its one-pass path.
//! - For every message `parse` can return, `parse(write(m)) == m`, floats
//!   bit for bit: they are written in their shortest round-trip form.

use super::message::*;

/// Appends `message` to `out` as one compact JSON object.
///
/// Floats must be finite, as every float `parse` returns is. A non-finite
/// float (only a bug in the caller can make one) trips a debug assertion;
/// release builds write `null`, which the peer's parser refuses naming the
/// field, rather than writing text that is not JSON or crashing the bridge.
pub fn write(message: &Message, out: &mut Vec<u8>) {
    let length_before = out.len();
    out.extend_from_slice(b"{\"t\":\"");
    out.extend_from_slice(message.type_name().as_bytes());
    out.push(b'"');
    let mut members = Members { out, first: false };
    match message {
        Message::Hello(hello) => write_hello(&mut members, hello),
        Message::Welcome(welcome) => write_welcome(&mut members, welcome),
        Message::Ping | Message::Pong => {}
        Message::Event(event) => write_event(&mut members, event),
        Message::Ack(ack) => members.u64("seq", ack.seq),
        Message::Snapshot(snapshot) => write_snapshot(&mut members, snapshot),
        Message::Copy(copy) => write_copy(&mut members, copy),
        Message::Result(result) => write_result(&mut members, result),
        Message::State(state) => write_state(&mut members, state),
        Message::Symbols(symbols) => members.array("symbols", &symbols.symbols, write_symbol_spec),
        Message::Error(error) => {
            members.name("code", error.code.as_str());
            members.text("msg", &error.msg);
        }
    }
    out.push(b'}');
    debug_assert!(out.len() > length_before + 8);
    debug_assert!(out[length_before] == b'{' && out[out.len() - 1] == b'}');
}

/// Appends the members of one object to `out`.
struct Members<'o> {
    /// The caller's buffer; only ever appended to.
    out: &'o mut Vec<u8>,
    /// True until the first member is written: no comma before it.
    first: bool,
}

impl Members<'_> {
    /// Writes `,"key":` (no comma before the first member). Keys are the
    /// codec's own ASCII names, which need no escaping.
    fn key(&mut self, key: &'static str) {
        debug_assert!(key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'));
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn u64(&mut self, key: &'static str, value: u64) {
        self.key(key);
        write_u64(self.out, value);
    }

    fn u32(&mut self, key: &'static str, value: u32) {
        self.key(key);
        write_u64(self.out, u64::from(value));
    }

    fn f64(&mut self, key: &'static str, value: f64) {
        self.key(key);
        write_f64(self.out, key, value);
    }

    fn text(&mut self, key: &'static str, value: &str) {
        self.key(key);
        write_string(self.out, value);
    }

    /// Writes an enum's wire name, which needs no escaping.
    fn name(&mut self, key: &'static str, value: &'static str) {
        debug_assert!(value
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte == b'_'));
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
    }

    /// Writes an array of objects, each written by `element`.
    fn array<T>(&mut self, key: &'static str, elements: &[T], element: fn(&mut Members, &T)) {
        self.key(key);
        self.out.push(b'[');
        for (index, value) in elements.iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            self.out.push(b'{');
            let mut members = Members {
                out: self.out,
                first: true,
            };
            element(&mut members, value);
            self.out.push(b'}');
        }
        self.out.push(b']');
    }
}

fn write_hello(members: &mut Members, hello: &Hello) {
    members.u32("v", hello.version);
    members.text("key", &hello.key);
    members.u64("login", hello.login);
    members.name("role", hello.role.as_str());
    members.text("platform", &hello.platform);
    members.text("server", &hello.server);
    members.text("ea", &hello.ea);
    members.u64("last_seq", hello.last_seq);
}

fn write_welcome(members: &mut Members, welcome: &Welcome) {
    members.u32("v", welcome.version);
    members.text("session", &welcome.session);
    members.u64("hb_ms", welcome.hb_ms);
    members.u64("ack_seq", welcome.ack_seq);
    if let Some(notice) = &welcome.notice {
        members.text("notice", notice);
    }
}

fn write_event(members: &mut Members, event: &Event) {
    members.u64("seq", event.seq);
    members.name("kind", event.kind.as_str());
    members.u64("pos", event.pos);
    members.u64("ticket", event.ticket);
    // A modify, close or cancel may leave the symbol out (the EAs do); an
    // empty one is written as absent there, so both writers agree. An open
    // or pending always carries it.
    let symbol_optional = matches!(event.kind, EventKind::Modify | EventKind::Close | EventKind::Cancel);
    if !(symbol_optional && event.symbol.is_empty()) {
        members.text("symbol", &event.symbol);
    }
    if let Some(side) = event.side {
        members.name("side", side.as_str());
    }
    members.f64("volume", event.volume);
    members.f64("price", event.price);
    members.f64("sl", event.sl);
    members.f64("tp", event.tp);
    members.u64("magic", event.magic);
    members.text("comment", &event.comment);
    members.u64("time_ms", event.time_ms);
    if let Some(remaining) = event.remaining {
        members.f64("remaining", remaining);
    }
}

fn write_snapshot(members: &mut Members, snapshot: &Snapshot) {
    members.array("positions", &snapshot.positions, write_snapshot_position);
    members.f64("balance", snapshot.balance);
    members.f64("equity", snapshot.equity);
    members.text("currency", &snapshot.currency);
}

fn write_snapshot_position(members: &mut Members, position: &SnapshotPosition) {
    members.u64("pos", position.pos);
    members.text("symbol", &position.symbol);
    members.name("side", position.side.as_str());
    members.f64("volume", position.volume);
    members.f64("price", position.price);
    members.f64("sl", position.sl);
    members.f64("tp", position.tp);
    members.u64("magic", position.magic);
    members.text("comment", &position.comment);
}

fn write_copy(members: &mut Members, copy: &Copy) {
    members.u64("seq", copy.seq);
    members.text("id", &copy.id);
    members.u64("master", copy.master);
    members.u64("pos", copy.pos);
    members.name("action", copy.action.as_str());
    members.text("symbol", &copy.symbol);
    members.name("side", copy.side.as_str());
    members.f64("volume", copy.volume);
    members.f64("price", copy.price);
    members.f64("max_dev", copy.max_dev);
    members.f64("sl", copy.sl);
    members.f64("tp", copy.tp);
    members.u64("magic", copy.magic);
    members.text("comment", &copy.comment);
    members.u64("expires_ms", copy.expires_ms);
}

fn write_result(members: &mut Members, result: &TradeResult) {
    members.u64("seq", result.seq);
    members.name("status", result.status.as_str());
    members.u64("ticket", result.ticket);
    members.f64("price", result.price);
    members.f64("volume", result.volume);
    members.u32("error", result.error);
    members.text("msg", &result.msg);
    members.u64("exec_ms", result.exec_ms);
}

fn write_state(members: &mut Members, state: &State) {
    members.f64("balance", state.balance);
    members.f64("equity", state.equity);
    members.text("currency", &state.currency);
    members.array("positions", &state.positions, write_state_position);
    if let Some(symbols) = &state.symbols {
        members.array("symbols", symbols, write_symbol_spec);
    }
}

fn write_state_position(members: &mut Members, position: &StatePosition) {
    members.u64("pos", position.pos);
    members.text("symbol", &position.symbol);
    members.name("side", position.side.as_str());
    members.f64("volume", position.volume);
    members.text("comment", &position.comment);
}

fn write_symbol_spec(members: &mut Members, spec: &SymbolSpec) {
    members.text("name", &spec.name);
    members.f64("min", spec.min);
    members.f64("max", spec.max);
    members.f64("step", spec.step);
    members.u32("digits", spec.digits);
    members.f64("contract", spec.contract);
}

/// Appends the decimal digits of `value`, exactly.
pub fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    // u64::MAX has 20 decimal digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    debug_assert!(start < digits.len());
    out.extend_from_slice(&digits[start..]);
}

/// Appends `value` in its shortest form that parses back to the same bits
/// (`0.1`, `1.08123`, `1e300`, `-0.0`). `key` names the field in the
/// assertion that the value is finite.
pub fn write_f64(out: &mut Vec<u8>, key: &str, value: f64) {
    debug_assert!(
        value.is_finite(),
        "field `{key}`: expected a finite number, got {value}"
    );
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let mut buffer = zmij::Buffer::new();
    out.extend_from_slice(buffer.format_finite(value).as_bytes());
}

/// Appends `value` as a JSON string: `"` and `\` escaped with a backslash,
/// control characters (below U+0020) as `\u00XX`, everything else as is
/// (the frame is UTF-8, so no other character needs escaping).
pub fn write_string(out: &mut Vec<u8>, value: &str) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    let length_before = out.len();
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut run_start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x00..=0x1F => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_DIGITS[usize::from(byte >> 4)],
                HEX_DIGITS[usize::from(byte & 0xF)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..index]);
        out.extend_from_slice(escape);
        run_start = index + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
    debug_assert!(out.len() >= length_before + value.len() + 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_of(value: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    // Quotes, backslashes and control characters are escaped; other text, unicode included, is kept as is.
    #[test]
    fn escapes_strings() {
        assert_eq!(string_of("plain"), "\"plain\"");
        assert_eq!(string_of("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            string_of("\n\t\u{0}\u{1f}"),
            "\"\\u000a\\u0009\\u0000\\u001f\""
        );
        assert_eq!(string_of("é😀\u{7f}/"), "\"é😀\u{7f}/\"");
    }

    // Integers are written exactly, including those a double cannot hold.
    #[test]
    fn writes_u64_exactly() {
        for (value, text) in [
            (0, "0"),
            (7, "7"),
            (9_007_199_254_740_993, "9007199254740993"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut out = Vec::new();
            write_u64(&mut out, value);
            assert_eq!(out, text.as_bytes());
        }
    }

    // Floats use the shortest round-trip form, in JSON's grammar.
    #[test]
    fn writes_f64_shortest() {
        for (value, text) in [
            (0.1, "0.1"),
            (1.08123, "1.08123"),
            (100000.0, "100000.0"),
            (-0.0, "-0.0"),
        ] {
            let mut out = Vec::new();
            write_f64(&mut out, "price", value);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
        for value in [
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.5e-7,
            123456789012345680.0,
        ] {
            let mut out = Vec::new();
            write_f64(&mut out, "price", value);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                value.to_bits(),
                "{text}"
            );
        }
    }

    // Ping writes only its type, with nothing allocated beyond the output.
    #[test]
    fn writes_ping() {
        let mut out = Vec::new();
        write(&Message::Ping, &mut out);
        assert_eq!(out, b"{\"t\":\"ping\"}");
    }
}
