//! A strict RFC 8259 JSON reader over one frame of already validated UTF-8.
//! It knows JSON's grammar only; what the fields mean is in `fields.rs` and
//! `parse.rs`.
//!
//! # Layout
//! - [`Reader`]: a cursor over the frame: whitespace, objects and arrays
//!   (with the nesting depth bounded), strings, numbers, literals, and
//!   skipping whole values of fields nobody asked for.
//! - Strings: `read_plain_string` borrows a string without escapes straight
//!   from the frame (the common case, no copy for keys); `read_string`
//!   decodes escapes into a [`StringSink`]: a `String`, a fixed
//!   [`KeyBuffer`] for keys and enum values, or [`Discard`].
//! - Numbers: `scan_number` checks the grammar and accumulates the digits
//!   into a [`NumberToken`]; integers need nothing more, and short decimals
//!   get their exact double from Clinger's fast path (`fast_value`).
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
/// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`, with its digits
/// already accumulated so that integers and short decimals need no second
/// pass.
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
    /// The digits of the integer part and the fraction, as one integer;
    /// `None` when they do not fit in a u64. For an integer token this is
    /// its exact value.
    pub mantissa: Option<u64>,
    /// The power of ten to apply to `mantissa`: the exponent minus the
    /// number of fraction digits; `None` when the exponent is too large to
    /// matter for the fast path (it then goes through the slow path).
    pub exponent: Option<i32>,
}

/// Largest integer a double holds exactly: 2^53.
const MANTISSA_EXACT_MAX: u64 = 1 << 53;

/// Powers of ten a double holds exactly: 10^0 to 10^22.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Exponent digits beyond this bound cannot change whether the fast path
/// applies; accumulating stops there so the exponent cannot overflow.
const EXPONENT_ACCUMULATED_MAX: i32 = 100_000;

impl NumberToken {
    /// The number's value when Clinger's fast path gives it exactly: a
    /// mantissa of at most 2^53 scaled by at most 10^22 is one correctly
    /// rounded IEEE multiplication or division of two exact doubles.
    /// `None` sends the caller to the general (correctly rounded) parser.
    #[inline]
    pub fn fast_value(&self) -> Option<f64> {
        let mantissa = self.mantissa?;
        let exponent = self.exponent?;
        if mantissa > MANTISSA_EXACT_MAX || !(-22..=22).contains(&exponent) {
            return None;
        }
        let power = POWERS_OF_TEN[exponent.unsigned_abs() as usize];
        let magnitude = if exponent < 0 {
            mantissa as f64 / power
        } else {
            mantissa as f64 * power
        };
        Some(if self.negative { -magnitude } else { magnitude })
    }
}

/// Bytes that end a run of plain string content: the closing quote, the
/// escape character, and the control characters JSON forbids raw.
const STRING_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

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
    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.offset).copied()
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return only).
    #[inline]
    pub fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.offset) {
            self.offset += 1;
        }
    }

    /// A syntax error at the current offset.
    #[cold]
    pub fn syntax_error(&self, expected: &'static str) -> ProtocolError {
        self.syntax_error_at(self.offset, expected)
    }

    #[cold]
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
    /// reads its key (see `read_name`) and consumes the `:`. Returns `None`
    /// after consuming the closing `}`. `first` is true before the first
    /// member.
    pub fn next_key<'s>(
        &mut self,
        first: &mut bool,
        scratch: &'s mut KeyBuffer,
    ) -> Result<Option<&'s str>, ProtocolError>
    where
        'a: 's,
    {
        self.skip_whitespace();
        if *first {
            if self.peek() == Some(b'}') {
                self.leave();
                return Ok(None);
            }
        } else {
            match self.peek() {
                Some(b'}') => {
                    self.leave();
                    return Ok(None);
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
        let key = self.read_name(scratch)?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.syntax_error("`:`"));
        }
        self.offset += 1;
        self.skip_whitespace();
        Ok(Some(key))
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

    /// Reads the string at the current offset (its opening quote) when it
    /// holds no escape, returning it borrowed from the frame. Returns `None`
    /// with the offset unchanged when it holds an escape: the caller then
    /// decodes it with `read_string`.
    #[inline]
    pub fn read_plain_string(&mut self) -> Result<Option<&'a str>, ProtocolError> {
        debug_assert!(self.peek() == Some(b'"'));
        let bytes = self.text.as_bytes();
        let start = self.offset + 1;
        let mut end = start;
        while let Some(&byte) = bytes.get(end) {
            if !STRING_SPECIAL[usize::from(byte)] {
                end += 1;
                continue;
            }
            return match byte {
                b'"' => {
                    self.offset = end + 1;
                    Ok(Some(&self.text[start..end]))
                }
                b'\\' => Ok(None),
                _ => {
                    self.offset = end;
                    Err(self
                        .syntax_error("a string character (control characters must be escaped)"))
                }
            };
        }
        self.offset = end;
        Err(self.syntax_error("`\"` closing the string"))
    }

    /// Reads a short string (a key or an enum value) at the current offset:
    /// borrowed from the frame, or decoded into `scratch` when it has
    /// escapes. A decoded string longer than `KEY_BYTES_MAX` reads as the
    /// empty string, which names no field and no enum value either.
    #[inline]
    pub fn read_name<'s>(&mut self, scratch: &'s mut KeyBuffer) -> Result<&'s str, ProtocolError>
    where
        'a: 's,
    {
        if let Some(plain) = self.read_plain_string()? {
            return Ok(plain);
        }
        scratch.clear();
        self.read_string(scratch)?;
        Ok(scratch.as_str().unwrap_or(""))
    }

    /// Reads a string value at the current offset into a new `String`.
    #[inline]
    pub fn read_text(&mut self) -> Result<String, ProtocolError> {
        if let Some(plain) = self.read_plain_string()? {
            return Ok(plain.to_owned());
        }
        let mut value = String::new();
        self.read_string(&mut value)?;
        Ok(value)
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

    /// Reads a number at the current offset, checking JSON's grammar and
    /// accumulating its digits.
    pub fn scan_number(&mut self) -> Result<NumberToken, ProtocolError> {
        let start = self.offset;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.offset += 1;
        }
        let mut mantissa = Some(0u64);
        match self.peek() {
            Some(b'0') => self.offset += 1,
            Some(b'1'..=b'9') => self.accumulate_digits(&mut mantissa),
            _ => return Err(self.syntax_error("a digit")),
        }
        let mut integer = true;
        let mut fraction_digits = 0i32;
        if self.peek() == Some(b'.') {
            integer = false;
            self.offset += 1;
            let fraction_start = self.offset;
            self.expect_digit("a digit after `.`")?;
            self.accumulate_digits(&mut mantissa);
            // At most the frame's length, far below i32::MAX (FRAME_BYTES_MAX).
            fraction_digits = (self.offset - fraction_start) as i32;
        }
        let mut exponent = Some(0i32);
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.offset += 1;
            exponent = self.scan_exponent()?;
        }
        debug_assert!(self.offset > start);
        debug_assert!(!integer || fraction_digits == 0);
        Ok(NumberToken {
            start,
            end: self.offset,
            negative,
            integer,
            mantissa,
            exponent: exponent.map(|exponent| exponent - fraction_digits),
        })
    }

    /// Consumes digits, folding them into `mantissa` (`None` once it
    /// overflows u64).
    #[inline]
    fn accumulate_digits(&mut self, mantissa: &mut Option<u64>) {
        let bytes = self.text.as_bytes();
        while let Some(&byte @ b'0'..=b'9') = bytes.get(self.offset) {
            *mantissa = mantissa
                .and_then(|value| value.checked_mul(10))
                .and_then(|value| value.checked_add(u64::from(byte - b'0')));
            self.offset += 1;
        }
    }

    /// Reads an exponent after its `e`; `None` when its magnitude is too
    /// large for the fast path to matter.
    fn scan_exponent(&mut self) -> Result<Option<i32>, ProtocolError> {
        let negative = self.peek() == Some(b'-');
        if let Some(b'+' | b'-') = self.peek() {
            self.offset += 1;
        }
        self.expect_digit("a digit in the exponent")?;
        let mut magnitude = 0i32;
        while let Some(byte @ b'0'..=b'9') = self.peek() {
            magnitude = (magnitude * 10 + i32::from(byte - b'0')).min(EXPONENT_ACCUMULATED_MAX);
            self.offset += 1;
        }
        debug_assert!((0..=EXPONENT_ACCUMULATED_MAX).contains(&magnitude));
        if magnitude == EXPONENT_ACCUMULATED_MAX {
            return Ok(None);
        }
        Ok(Some(if negative { -magnitude } else { magnitude }))
    }

    fn expect_digit(&self, expected: &'static str) -> Result<(), ProtocolError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.syntax_error(expected));
        }
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
            Some(b'"') => match self.read_plain_string()? {
                Some(_) => Ok(()),
                None => self.read_string(&mut Discard),
            },
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
        while self.next_key(&mut first, &mut key)?.is_some() {
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

    // Prices as the EAs send them take the fast path and get the correctly rounded value.
    #[test]
    fn common_prices_take_the_fast_path() {
        for text in [
            "1.08123",
            "0.10",
            "100000.0",
            "-0.0",
            "0",
            "1732400000123",
            "0.0003",
            "1.5e-3",
        ] {
            let token = Reader::new(text).scan_number().unwrap();
            let fast = token.fast_value().expect(text);
            assert_eq!(
                fast.to_bits(),
                text.parse::<f64>().unwrap().to_bits(),
                "{text}"
            );
        }
        for text in [
            "12345678901234567890",
            "1e23",
            "1.7976931348623157e308",
            "4.9e-324",
        ] {
            let token = Reader::new(text).scan_number().unwrap();
            assert!(token.fast_value().is_none(), "{text}");
        }
    }

    proptest::proptest! {
        // Whenever the fast path applies it gives the same bits as Rust's correctly rounded parser.
        #[test]
        fn fast_path_matches_std(
            integer in proptest::prop_oneof![0u64..1000, 0u64..(1 << 53), proptest::num::u64::ANY],
            fraction in "[0-9]{0,20}",
            exponent in proptest::option::of(-40i32..40),
            negative in proptest::bool::ANY,
        ) {
            let sign = if negative { "-" } else { "" };
            let fraction = if fraction.is_empty() { String::new() } else { format!(".{fraction}") };
            let exponent = exponent.map(|value| format!("e{value}")).unwrap_or_default();
            let text = format!("{sign}{integer}{fraction}{exponent}");
            let token = Reader::new(&text).scan_number().unwrap();
            proptest::prop_assert_eq!(token.end, text.len());
            let expected: f64 = text.parse().unwrap();
            if let Some(fast) = token.fast_value() {
                proptest::prop_assert_eq!(fast.to_bits(), expected.to_bits(), "{}", text);
            }
        }
    }
}
