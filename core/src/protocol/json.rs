//! A strict RFC 8259 JSON reader over one frame of already validated UTF-8.
//! It knows JSON's grammar only; what the fields mean is in `fields.rs` and
//! `parse.rs`.
//!
//! # Layout
//! - [`Reader`]: a cursor over the frame: whitespace, objects and arrays
//!   (with the nesting depth bounded), strings, numbers, literals, and
//!   skipping whole values of fields nobody asked for.
//! - [`StringSink`]: where the decoded contents of a string go: a `String`,
//!   a fixed [`KeyBuffer`] for keys and enum values, or [`Discard`].
//!
//! # Invariants
//! - `offset <= text.len()` at all times, and `offset` only moves forward,
//!   so every loop here ends within `text.len()` steps.
//! - `depth <= DEPTH_MAX`; entering deeper is an error, never a panic, so
//!   the recursion in `skip_value` is bounded by `DEPTH_MAX` frames.
//! - Every slice of `text` taken here starts and ends next to an ASCII byte,
//!   which in UTF-8 is always a character boundary.

use super::error::{Excerpt, ProtocolError};

/// Deepest nesting of objects and arrays accepted, counting the top-level
/// object as 1. Protocol v1 needs 3 (`state` → `symbols` → one symbol); 32
/// leaves room for nested unknown fields of later versions while bounding
/// the reader's recursion (a few hundred bytes of stack per level).
pub const DEPTH_MAX: u32 = 32;

/// Longest key or enum value the codec needs to recognise, in bytes. The
/// longest in protocol v1 are `expires_ms` (10) and `rate_limited` (12);
/// anything longer cannot match and is only checked for validity.
pub const KEY_BYTES_MAX: usize = 16;

/// A JSON number as it appears in the frame, checked against the grammar
/// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`.
#[derive(Clone, Copy, Debug)]
pub struct NumberToken {
    /// Byte offset of the first character (the `-` or first digit).
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// True when the number starts with `-`.
    pub negative: bool,
    /// True when there is neither a fraction nor an exponent.
    pub integer: bool,
}

/// Receives a string's decoded contents in pieces: raw runs straight from
/// the frame and single characters decoded from escapes.
pub trait StringSink {
    fn push_run(&mut self, run: &str);
    fn push_char(&mut self, character: char);
}

impl StringSink for String {
    fn push_run(&mut self, run: &str) {
        self.push_str(run);
    }
    fn push_char(&mut self, character: char) {
        self.push(character);
    }
}

/// Throws a string's contents away (the string is still fully checked).
pub struct Discard;

impl StringSink for Discard {
    fn push_run(&mut self, _run: &str) {}
    fn push_char(&mut self, _character: char) {}
}

/// Holds a short decoded string without allocating: keys and enum values.
pub struct KeyBuffer {
    /// The decoded bytes; `bytes[..length]` is meaningful.
    bytes: [u8; KEY_BYTES_MAX],
    /// Bytes used; grows as pieces arrive, reset by `clear`.
    length: usize,
    /// Set when the string did not fit: it then matches no known name.
    overflowed: bool,
}

impl KeyBuffer {
    pub fn new() -> KeyBuffer {
        KeyBuffer {
            bytes: [0; KEY_BYTES_MAX],
            length: 0,
            overflowed: false,
        }
    }

    /// Makes the buffer ready for the next key.
    pub fn clear(&mut self) {
        self.length = 0;
        self.overflowed = false;
    }

    /// The decoded string, or `None` when it did not fit.
    pub fn as_str(&self) -> Option<&str> {
        if self.overflowed {
            return None;
        }
        // Whole pieces of a `&str` were appended, so this is valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.length]).ok()
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        let end = self.length + bytes.len();
        if self.overflowed || end > KEY_BYTES_MAX {
            self.overflowed = true;
            return;
        }
        self.bytes[self.length..end].copy_from_slice(bytes);
        self.length = end;
    }
}

impl Default for KeyBuffer {
    fn default() -> Self {
        KeyBuffer::new()
    }
}

impl StringSink for KeyBuffer {
    fn push_run(&mut self, run: &str) {
        self.push_bytes(run.as_bytes());
    }
    fn push_char(&mut self, character: char) {
        let mut encoded = [0u8; 4];
        self.push_bytes(character.encode_utf8(&mut encoded).as_bytes());
    }
}

/// A cursor over one frame.
pub struct Reader<'a> {
    /// The whole frame, validated UTF-8.
    text: &'a str,
    /// Byte offset of the next unread byte; only moves forward.
    offset: usize,
    /// Objects and arrays currently open around `offset`.
    depth: u32,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            offset: 0,
            depth: 0,
        }
    }

    /// The whole frame.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Byte offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The next byte, without consuming it or skipping whitespace.
    pub fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.offset).copied()
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return only).
    pub fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.offset) {
            self.offset += 1;
        }
    }

    /// A syntax error at the current offset.
    pub fn syntax_error(&self, expected: &'static str) -> ProtocolError {
        self.syntax_error_at(self.offset, expected)
    }

    fn syntax_error_at(&self, offset: usize, expected: &'static str) -> ProtocolError {
        debug_assert!(offset <= self.text.len());
        // `offset` sits on a character boundary whenever the reader stops
        // on a byte it does not accept, except inside a multi-byte
        // character, where there is no character to show.
        let found = self.text.get(offset..).and_then(|rest| rest.chars().next());
        ProtocolError::Syntax {
            offset: offset as u32,
            expected,
            found,
        }
    }

    /// The JSON text from `start` to the current offset, bounded.
    pub fn excerpt_from(&self, start: usize) -> Excerpt {
        debug_assert!(start <= self.offset);
        Excerpt::new(self.text.get(start..self.offset).unwrap_or(""))
    }

    /// Checks that only whitespace is left.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        debug_assert!(self.depth == 0);
        self.skip_whitespace();
        if self.offset != self.text.len() {
            return Err(self.syntax_error("end of frame after the object"));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ProtocolError> {
        if self.depth >= DEPTH_MAX {
            return Err(ProtocolError::TooDeep {
                offset: self.offset as u32,
                depth_max: DEPTH_MAX,
            });
        }
        self.depth += 1;
        self.offset += 1;
        Ok(())
    }

    fn leave(&mut self) {
        debug_assert!(self.depth > 0);
        self.depth -= 1;
        self.offset += 1;
    }

    /// Consumes the `{` that opens an object.
    pub fn begin_object(&mut self) -> Result<(), ProtocolError> {
        self.skip_whitespace();
        if self.peek() != Some(b'{') {
            return Err(self.syntax_error("`{`"));
        }
        self.enter()
    }

    /// Moves to the next member of the object opened by `begin_object`:
    /// decodes its key into `key` and consumes the `:`. Returns false after
    /// consuming the closing `}`. `first` is true before the first member.
    pub fn next_key(
        &mut self,
        first: &mut bool,
        key: &mut KeyBuffer,
    ) -> Result<bool, ProtocolError> {
        self.skip_whitespace();
        if *first {
            if self.peek() == Some(b'}') {
                self.leave();
                return Ok(false);
            }
        } else {
            match self.peek() {
                Some(b'}') => {
                    self.leave();
                    return Ok(false);
                }
                Some(b',') => {
                    self.offset += 1;
                    self.skip_whitespace();
                }
                _ => return Err(self.syntax_error("`,` or `}`")),
            }
        }
        *first = false;
        if self.peek() != Some(b'"') {
            return Err(self.syntax_error("a string key"));
        }
        key.clear();
        self.read_string(key)?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.syntax_error("`:`"));
        }
        self.offset += 1;
        self.skip_whitespace();
        Ok(true)
    }

    /// Consumes the `[` that opens an array.
    pub fn begin_array(&mut self) -> Result<(), ProtocolError> {
        self.skip_whitespace();
        if self.peek() != Some(b'[') {
            return Err(self.syntax_error("`[`"));
        }
        self.enter()
    }

    /// Moves to the next element of the array opened by `begin_array`,
    /// leaving the reader at its value. Returns false after consuming `]`.
    pub fn next_element(&mut self, first: &mut bool) -> Result<bool, ProtocolError> {
        self.skip_whitespace();
        if *first {
            if self.peek() == Some(b']') {
                self.leave();
                return Ok(false);
            }
        } else {
            // After a comma a value must follow (`[1,]` is not JSON); the
            // caller's value reader reports a `]` found there.
            match self.peek() {
                Some(b']') => {
                    self.leave();
                    return Ok(false);
                }
                Some(b',') => {
                    self.offset += 1;
                    self.skip_whitespace();
                }
                _ => return Err(self.syntax_error("`,` or `]`")),
            }
        }
        *first = false;
        Ok(true)
    }

    /// Reads the string at the current offset (which must be its opening
    /// quote) into `sink`, decoding escapes.
    pub fn read_string<S: StringSink>(&mut self, sink: &mut S) -> Result<(), ProtocolError> {
        debug_assert!(self.peek() == Some(b'"'));
        let bytes = self.text.as_bytes();
        self.offset += 1;
        let mut run_start = self.offset;
        loop {
            match bytes.get(self.offset) {
                None => return Err(self.syntax_error("`\"` closing the string")),
                Some(b'"') => {
                    sink.push_run(&self.text[run_start..self.offset]);
                    self.offset += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    sink.push_run(&self.text[run_start..self.offset]);
                    let character = self.read_escape()?;
                    sink.push_char(character);
                    run_start = self.offset;
                }
                Some(0x00..=0x1F) => {
                    return Err(self
                        .syntax_error("a string character (control characters must be escaped)"))
                }
                Some(_) => self.offset += 1,
            }
        }
    }

    /// Decodes one escape starting at its backslash, including a surrogate
    /// pair written as two `\u` escapes.
    fn read_escape(&mut self) -> Result<char, ProtocolError> {
        debug_assert!(self.peek() == Some(b'\\'));
        let start = self.offset;
        self.offset += 1;
        let simple = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.read_unicode_escape(start),
            _ => {
                return Err(
                    self.syntax_error("an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u")
                )
            }
        };
        self.offset += 1;
        Ok(simple)
    }

    /// Decodes `\uXXXX` (and the low half after a high surrogate); `start`
    /// is the offset of the backslash, for errors.
    fn read_unicode_escape(&mut self, start: usize) -> Result<char, ProtocolError> {
        debug_assert!(self.peek() == Some(b'u'));
        self.offset += 1;
        let unit = self.read_hex4()?;
        let code_point = match unit {
            0xD800..=0xDBFF => {
                let bytes = self.text.as_bytes();
                if bytes.get(self.offset) != Some(&b'\\')
                    || bytes.get(self.offset + 1) != Some(&b'u')
                {
                    return Err(self.syntax_error_at(
                        start,
                        "a low surrogate `\\uDC00`-`\\uDFFF` after a high surrogate",
                    ));
                }
                self.offset += 2;
                let low = self.read_hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.syntax_error_at(
                        start,
                        "a low surrogate `\\uDC00`-`\\uDFFF` after a high surrogate",
                    ));
                }
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => {
                return Err(self.syntax_error_at(start, "a high surrogate before a low surrogate"));
            }
            _ => unit,
        };
        debug_assert!(code_point <= 0x10FFFF);
        char::from_u32(code_point)
            .ok_or_else(|| self.syntax_error_at(start, "a Unicode scalar value"))
    }

    fn read_hex4(&mut self) -> Result<u32, ProtocolError> {
        let mut unit = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(byte @ b'0'..=b'9') => byte - b'0',
                Some(byte @ b'a'..=b'f') => byte - b'a' + 10,
                Some(byte @ b'A'..=b'F') => byte - b'A' + 10,
                _ => return Err(self.syntax_error("a hexadecimal digit in `\\u` escape")),
            };
            unit = unit * 16 + u32::from(digit);
            self.offset += 1;
        }
        debug_assert!(unit <= 0xFFFF);
        Ok(unit)
    }

    /// Reads a number at the current offset, checking JSON's grammar.
    pub fn scan_number(&mut self) -> Result<NumberToken, ProtocolError> {
        let start = self.offset;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.offset += 1;
        }
        match self.peek() {
            Some(b'0') => self.offset += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.syntax_error("a digit")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.offset += 1;
            self.expect_digits("a digit after `.`")?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.offset += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.offset += 1;
            }
            self.expect_digits("a digit in the exponent")?;
        }
        debug_assert!(self.offset > start);
        Ok(NumberToken {
            start,
            end: self.offset,
            negative,
            integer,
        })
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.offset += 1;
        }
    }

    fn expect_digits(&mut self, expected: &'static str) -> Result<(), ProtocolError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.syntax_error(expected));
        }
        self.skip_digits();
        Ok(())
    }

    fn expect_literal(
        &mut self,
        literal: &'static str,
        expected: &'static str,
    ) -> Result<(), ProtocolError> {
        let end = self.offset + literal.len();
        if self.text.as_bytes().get(self.offset..end) != Some(literal.as_bytes()) {
            return Err(self.syntax_error(expected));
        }
        self.offset = end;
        Ok(())
    }

    /// Checks and skips the value at the current offset, whatever it is.
    pub fn skip_value(&mut self) -> Result<(), ProtocolError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.skip_object(),
            Some(b'[') => self.skip_array(),
            Some(b'"') => self.read_string(&mut Discard),
            Some(b'-' | b'0'..=b'9') => self.scan_number().map(drop),
            Some(b't') => self.expect_literal("true", "a JSON value"),
            Some(b'f') => self.expect_literal("false", "a JSON value"),
            Some(b'n') => self.expect_literal("null", "a JSON value"),
            _ => Err(self.syntax_error("a JSON value")),
        }
    }

    fn skip_object(&mut self) -> Result<(), ProtocolError> {
        let depth = self.depth;
        self.begin_object()?;
        let mut first = true;
        let mut key = KeyBuffer::new();
        while self.next_key(&mut first, &mut key)? {
            self.skip_value()?;
        }
        debug_assert!(self.depth == depth);
        Ok(())
    }

    fn skip_array(&mut self) -> Result<(), ProtocolError> {
        let depth = self.depth;
        self.begin_array()?;
        let mut first = true;
        while self.next_element(&mut first)? {
            self.skip_value()?;
        }
        debug_assert!(self.depth == depth);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_all(text: &str) -> Result<(), ProtocolError> {
        let mut reader = Reader::new(text);
        reader.skip_value()?;
        reader.finish()
    }

    fn decode(text: &str) -> Result<String, ProtocolError> {
        let mut reader = Reader::new(text);
        let mut decoded = String::new();
        reader.read_string(&mut decoded)?;
        reader.finish()?;
        Ok(decoded)
    }

    // Valid JSON of every shape is accepted and skipped to its end.
    #[test]
    fn skips_valid_json() {
        for text in [
            "{}",
            " { } ",
            "[]",
            "[1,-0,0.5,1e5,1E+5,-1.25e-7,true,false,null,\"x\"]",
            "{\"a\":{\"b\":[{},[],{\"c\":null}]},\"d\":\"\\u00e9\"}",
            "\t\r\n{\"a\" : 1 , \"b\" : [ 1 , 2 ] }\n",
        ] {
            assert!(skip_all(text).is_ok(), "{text}");
        }
    }

    // Every departure from RFC 8259's grammar is an error, never a panic.
    #[test]
    fn rejects_invalid_json() {
        for text in [
            "",
            "{",
            "}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,}",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "01",
            "-",
            "-01",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "0x10",
            "NaN",
            "Infinity",
            "-Infinity",
            "tru",
            "nul",
            "True",
            "'a'",
            "\"abc",
            "\"a\tb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "{a:1}",
            "[1]]",
            "{} {}",
            "\u{feff}{}",
        ] {
            assert!(skip_all(text).is_err(), "{text:?} was accepted");
        }
    }

    // Escapes decode to the characters they stand for, surrogate pairs included.
    #[test]
    fn decodes_escapes() {
        assert_eq!(
            decode(r#""a\"b\\c\/d\b\f\n\r\t""#).unwrap(),
            "a\"b\\c/d\u{8}\u{c}\n\r\t"
        );
        assert_eq!(decode(r#""\u0041\u00e9\u20AC""#).unwrap(), "Aé€");
        assert_eq!(decode(r#""\ud83d\ude00""#).unwrap(), "😀");
        assert_eq!(decode("\"😀 raw\"").unwrap(), "😀 raw");
        assert_eq!(decode(r#""\u0000""#).unwrap(), "\u{0}");
    }

    // A surrogate that is not part of a high-low pair is an error.
    #[test]
    fn rejects_lone_surrogates() {
        for text in [
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\ud83d\u0041""#,
            r#""\ude00""#,
            r#""\ude00\ud83d""#,
            r#""\ud83d\ud83d""#,
        ] {
            assert!(
                matches!(decode(text), Err(ProtocolError::Syntax { .. })),
                "{text} was accepted"
            );
        }
    }

    // Nesting up to DEPTH_MAX is accepted; one level more is refused, and very deep input does not overflow the stack.
    #[test]
    fn bounds_nesting_depth() {
        let depth = DEPTH_MAX as usize;
        let ok = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(skip_all(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(depth + 1), "]".repeat(depth + 1));
        assert!(matches!(
            skip_all(&deep),
            Err(ProtocolError::TooDeep { .. })
        ));
        let hostile = "[{\"a\":".repeat(100_000);
        assert!(matches!(
            skip_all(&hostile),
            Err(ProtocolError::TooDeep { .. })
        ));
    }

    // Number tokens record sign and integrality, and stop where the grammar stops.
    #[test]
    fn scans_numbers() {
        let mut reader = Reader::new("-12.5e3,");
        let token = reader.scan_number().unwrap();
        assert!(token.negative && !token.integer);
        assert_eq!((token.start, token.end), (0, 7));
        let mut reader = Reader::new("0123");
        let token = reader.scan_number().unwrap();
        assert!(token.integer && !token.negative);
        assert_eq!(token.end, 1);
    }

    // Keys longer than the buffer never match, and short keys decode exactly.
    #[test]
    fn key_buffer_bounds_keys() {
        let mut key = KeyBuffer::new();
        key.push_run("expires_ms");
        assert_eq!(key.as_str(), Some("expires_ms"));
        key.push_run("_and_much_more");
        assert_eq!(key.as_str(), None);
        key.clear();
        key.push_char('é');
        assert_eq!(key.as_str(), Some("é"));
    }
}
