//! The wire's field names and typed readers of field values whose errors
//! name the field: the layer between JSON's grammar (`json.rs`) and the
//! message types (`parse.rs`).
//!
//! # Layout
//! - [`Field`]: every key some message of protocol v1 uses, with its wire
//!   name, from one table.
//! - [`Object`]: iterates the members of one object, skipping keys that are
//!   not [`Field`]s, and reads typed values into `Option` slots, refusing a
//!   field met twice.
//!
//! # Invariants
//! - A slot is written at most once per object: a second occurrence of a
//!   field is [`ProtocolError::DuplicateField`] before its value is read.
//! - u64 and u32 values are computed from their digits, never through f64.
//! - Every f64 stored in a slot is finite.

use super::error::{FieldPath, ProtocolError};
use super::json::{KeyBuffer, Reader};

macro_rules! fields {
    ($($variant:ident => $name:literal,)*) => {
        /// A key that some message type of protocol v1 uses.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Field {
            $($variant,)*
        }

        impl Field {
            /// The key on the wire.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Field::$variant => $name,)*
                }
            }

            /// Every field, in declaration order: the perfect-hash table
            /// below is built from it.
            const TABLE_SOURCE: &'static [Field] = &[$(Field::$variant,)*];
        }
    };
}

fields! {
    Type => "t",
    Version => "v",
    Key => "key",
    Login => "login",
    Role => "role",
    Platform => "platform",
    Server => "server",
    Ea => "ea",
    LastSeq => "last_seq",
    Session => "session",
    HbMs => "hb_ms",
    AckSeq => "ack_seq",
    Notice => "notice",
    Seq => "seq",
    Kind => "kind",
    Pos => "pos",
    Ticket => "ticket",
    Symbol => "symbol",
    Side => "side",
    Volume => "volume",
    Price => "price",
    Sl => "sl",
    Tp => "tp",
    Magic => "magic",
    Comment => "comment",
    TimeMs => "time_ms",
    Remaining => "remaining",
    Positions => "positions",
    Balance => "balance",
    Equity => "equity",
    Currency => "currency",
    Id => "id",
    Master => "master",
    Action => "action",
    MaxDev => "max_dev",
    ExpiresMs => "expires_ms",
    Status => "status",
    Error => "error",
    Msg => "msg",
    ExecMs => "exec_ms",
    Symbols => "symbols",
    Name => "name",
    Min => "min",
    Max => "max",
    Step => "step",
    Digits => "digits",
    Contract => "contract",
    Code => "code",
}

/// Slots of the key lookup table; a power of two so the hash reduces cheaply.
const KEY_TABLE_SLOTS: usize = 128;

/// The key lookup hash: first byte, last byte and length, which happen to
/// tell all 48 keys (v1's and the bridge's `notice`) apart in 128 slots (checked when the table is
/// built, at compile time). One hash and one comparison replace a chain of
/// up to 48 string comparisons per key: keys are most of a frame's work.
const fn key_hash(key: &[u8]) -> usize {
    debug_assert!(!key.is_empty());
    let first = key[0] as usize;
    let last = key[key.len() - 1] as usize;
    (first + 5 * last + 45 * (key.len() % KEY_TABLE_SLOTS)) % KEY_TABLE_SLOTS
}

/// The field whose name hashes to each slot, with that name (kept beside
/// it so a lookup compares without a second dispatch on the field).
/// Building it fails the compilation if two names ever collide.
const KEY_TABLE: [(Option<Field>, &str); KEY_TABLE_SLOTS] = {
    let mut table = [(None, ""); KEY_TABLE_SLOTS];
    let mut index = 0;
    while index < Field::TABLE_SOURCE.len() {
        let field = Field::TABLE_SOURCE[index];
        let slot = key_hash(field.name().as_bytes());
        assert!(
            table[slot].0.is_none(),
            "two field names share a key hash: change key_hash"
        );
        table[slot] = (Some(field), field.name());
        index += 1;
    }
    table
};

impl Field {
    /// The field a decoded key names, if any (case matters).
    #[inline]
    pub fn from_key(key: &str) -> Option<Field> {
        if key.is_empty() {
            return None;
        }
        let (field, name) = KEY_TABLE[key_hash(key.as_bytes())];
        // Keys are a few bytes long: a plain loop beats a call to memcmp.
        let (name, key) = (name.as_bytes(), key.as_bytes());
        if name.len() != key.len() {
            return None;
        }
        let mut index = 0;
        while index < key.len() {
            if name[index] != key[index] {
                return None;
            }
            index += 1;
        }
        field
    }

    /// Every field, for tests that walk them all.
    #[cfg(test)]
    pub const ALL: &'static [Field] = Field::TABLE_SOURCE;
}

/// What an unsigned integer field expects, for errors about its shape.
const EXPECTED_UNSIGNED: &str = "unsigned integer";
/// What a u64 field expects, for errors about its range.
const EXPECTED_U64_RANGE: &str = "unsigned integer up to 18446744073709551615";
/// What a u32 field expects, for errors about its range.
const EXPECTED_U32_RANGE: &str = "unsigned integer up to 4294967295";

/// The members of one JSON object being read into a message.
pub struct Object<'r, 'a> {
    /// The frame's reader, positioned inside this object.
    reader: &'r mut Reader<'a>,
    /// True until the first member has been read; `Reader::next_key` clears it.
    first: bool,
    /// The array field and index this object is an element of; `None` for
    /// the top-level object. Only used to name fields in errors.
    element: Option<(&'static str, u32)>,
    /// Top level only: set once `t` has been met in this pass over the
    /// object, so that a second `t` is a duplicate.
    type_seen: bool,
    /// Scratch space for a key written with escapes, rewritten by each
    /// `next`; keys without escapes are borrowed from the frame instead.
    key: KeyBuffer,
}

impl<'r, 'a> Object<'r, 'a> {
    /// The top-level object, after its `{` (and, when `type_seen`, after
    /// its leading `t` member).
    pub fn top(reader: &'r mut Reader<'a>, first: bool, type_seen: bool) -> Object<'r, 'a> {
        Object {
            reader,
            first,
            element: None,
            type_seen,
            key: KeyBuffer::new(),
        }
    }

    /// The field's path for errors.
    pub fn path(&self, field: Field) -> FieldPath {
        FieldPath {
            element: self.element,
            name: field.name(),
        }
    }

    /// The next member whose key is a [`Field`], with the reader at its
    /// value; `None` after the closing `}`. Members with other keys are
    /// checked and skipped (forward compatibility), and so is the top-level
    /// `t`, which the caller has already read.
    pub fn next(&mut self) -> Result<Option<Field>, ProtocolError> {
        // Each turn consumes at least one key, so the loop is bounded by the
        // frame's length.
        while let Some(key) = self.reader.next_key(&mut self.first, &mut self.key)? {
            match Field::from_key(key) {
                Some(Field::Type) if self.element.is_none() => {
                    if self.type_seen {
                        return Err(ProtocolError::DuplicateField {
                            field: self.path(Field::Type),
                        });
                    }
                    self.type_seen = true;
                    self.reader.skip_value()?;
                }
                Some(field) => return Ok(Some(field)),
                None => self.reader.skip_value()?,
            }
        }
        Ok(None)
    }

    /// Skips the current member's value: a field this message type does not use.
    pub fn skip(&mut self) -> Result<(), ProtocolError> {
        self.reader.skip_value()
    }

    /// The value of a required field, or the error naming it.
    pub fn required<T>(&self, slot: Option<T>, field: Field) -> Result<T, ProtocolError> {
        slot.ok_or(ProtocolError::MissingField {
            field: self.path(field),
        })
    }

    /// An error about a value the codec already holds (checks that need
    /// more than one field, made after the object is read).
    #[cold]
    pub fn invalid_number(
        &self,
        field: Field,
        expected: &'static str,
        value: f64,
    ) -> ProtocolError {
        ProtocolError::InvalidField {
            field: self.path(field),
            expected,
            got: super::error::Excerpt::from_f64(value),
        }
    }

    #[cold]
    fn invalid_from(&self, field: Field, expected: &'static str, start: usize) -> ProtocolError {
        ProtocolError::InvalidField {
            field: self.path(field),
            expected,
            got: self.reader.excerpt_from(start),
        }
    }

    fn claim<T>(&self, slot: &Option<T>, field: Field) -> Result<usize, ProtocolError> {
        if slot.is_some() {
            return Err(ProtocolError::DuplicateField {
                field: self.path(field),
            });
        }
        Ok(self.reader.offset())
    }

    /// Reads an unsigned integer of at most `maximum`; `range` says so in errors.
    fn read_unsigned(
        &mut self,
        field: Field,
        maximum: u64,
        range: &'static str,
    ) -> Result<u64, ProtocolError> {
        let start = self.reader.offset();
        if !matches!(self.reader.peek(), Some(b'-' | b'0'..=b'9')) {
            self.reader.skip_value()?;
            return Err(self.invalid_from(field, EXPECTED_UNSIGNED, start));
        }
        let token = self.reader.scan_number()?;
        if token.negative || !token.integer {
            return Err(self.invalid_from(field, EXPECTED_UNSIGNED, start));
        }
        // An integer token's mantissa is its exact value, computed from its
        // digits with overflow checks, never through a double.
        debug_assert!(token.exponent == Some(0));
        match token.mantissa {
            Some(value) if value <= maximum => Ok(value),
            _ => Err(self.invalid_from(field, range, start)),
        }
    }

    /// Reads a u64 field.
    pub fn u64(&mut self, slot: &mut Option<u64>, field: Field) -> Result<(), ProtocolError> {
        self.claim(slot, field)?;
        *slot = Some(self.read_unsigned(field, u64::MAX, EXPECTED_U64_RANGE)?);
        Ok(())
    }

    /// Reads a u32 field.
    pub fn u32(&mut self, slot: &mut Option<u32>, field: Field) -> Result<(), ProtocolError> {
        self.claim(slot, field)?;
        let value = self.read_unsigned(field, u64::from(u32::MAX), EXPECTED_U32_RANGE)?;
        debug_assert!(value <= u64::from(u32::MAX));
        *slot = Some(value as u32);
        Ok(())
    }

    /// Reads a finite number field.
    pub fn f64(&mut self, slot: &mut Option<f64>, field: Field) -> Result<(), ProtocolError> {
        let start = self.claim(slot, field)?;
        let value = self.read_finite(field, start)?;
        *slot = Some(value);
        Ok(())
    }

    /// Reads a finite number field that must not be negative (prices,
    /// distances, volumes that may be 0).
    pub fn non_negative(
        &mut self,
        slot: &mut Option<f64>,
        field: Field,
    ) -> Result<(), ProtocolError> {
        let start = self.claim(slot, field)?;
        let value = self.read_finite(field, start)?;
        // `-0.0 >= 0.0` holds, so a negative zero is kept as sent.
        if value < 0.0 {
            return Err(self.invalid_from(field, "finite number >= 0", start));
        }
        *slot = Some(value);
        Ok(())
    }

    fn read_finite(&mut self, field: Field, start: usize) -> Result<f64, ProtocolError> {
        if !matches!(self.reader.peek(), Some(b'-' | b'0'..=b'9')) {
            self.reader.skip_value()?;
            return Err(self.invalid_from(field, "number", start));
        }
        let token = self.reader.scan_number()?;
        if let Some(value) = token.fast_value() {
            debug_assert!(value.is_finite());
            return Ok(value);
        }
        // The token matches JSON's number grammar, a subset of what Rust's
        // correctly rounded `f64` parser accepts; overflow gives infinity.
        let parsed = self.reader.text()[token.start..token.end].parse::<f64>();
        match parsed {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(self.invalid_from(field, "finite number", start)),
        }
    }

    /// Reads a string field.
    pub fn text(&mut self, slot: &mut Option<String>, field: Field) -> Result<(), ProtocolError> {
        let start = self.claim(slot, field)?;
        if self.reader.peek() != Some(b'"') {
            self.reader.skip_value()?;
            return Err(self.invalid_from(field, "string", start));
        }
        *slot = Some(self.reader.read_text()?);
        Ok(())
    }

    /// Reads a string field holding one of an enum's wire names;
    /// `expected` lists them for the error.
    pub fn wire_enum<T>(
        &mut self,
        slot: &mut Option<T>,
        field: Field,
        from_wire: fn(&str) -> Option<T>,
        expected: &'static str,
    ) -> Result<(), ProtocolError> {
        let start = self.claim(slot, field)?;
        if self.reader.peek() != Some(b'"') {
            self.reader.skip_value()?;
            return Err(self.invalid_from(field, expected, start));
        }
        let mut scratch = KeyBuffer::new();
        match from_wire(self.reader.read_name(&mut scratch)?) {
            Some(value) => {
                *slot = Some(value);
                Ok(())
            }
            None => Err(self.invalid_from(field, expected, start)),
        }
    }

    /// Reads an array of objects, each read by `element`, of at most
    /// `elements_max` elements.
    pub fn array<T>(
        &mut self,
        slot: &mut Option<Vec<T>>,
        field: Field,
        elements_max: u32,
        element: fn(&mut Object) -> Result<T, ProtocolError>,
    ) -> Result<(), ProtocolError> {
        debug_assert!(
            self.element.is_none(),
            "arrays of objects nest only one level in v1"
        );
        let start = self.claim(slot, field)?;
        if self.reader.peek() != Some(b'[') {
            self.reader.skip_value()?;
            return Err(self.invalid_from(field, "array of objects", start));
        }
        self.reader.begin_array()?;
        let mut elements = Vec::new();
        let mut first = true;
        while self.reader.next_element(&mut first)? {
            let index = elements.len() as u32;
            if index >= elements_max {
                return Err(ProtocolError::TooManyElements {
                    field: self.path(field),
                    elements_max,
                });
            }
            elements.push(self.read_element(field, index, element)?);
        }
        debug_assert!(elements.len() as u64 <= u64::from(elements_max));
        *slot = Some(elements);
        Ok(())
    }

    fn read_element<T>(
        &mut self,
        field: Field,
        index: u32,
        element: fn(&mut Object) -> Result<T, ProtocolError>,
    ) -> Result<T, ProtocolError> {
        let path = Some((field.name(), index));
        let start = self.reader.offset();
        if self.reader.peek() != Some(b'{') {
            self.reader.skip_value()?;
            return Err(ProtocolError::InvalidField {
                field: FieldPath {
                    element: path,
                    name: "",
                },
                expected: "object",
                got: self.reader.excerpt_from(start),
            });
        }
        self.reader.begin_object()?;
        let mut object = Object {
            reader: self.reader,
            first: true,
            element: path,
            type_seen: false,
            key: KeyBuffer::new(),
        };
        element(&mut object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every field's name maps back to the field, and no two fields share a name.
    #[test]
    fn field_names_round_trip() {
        for field in Field::ALL {
            assert_eq!(Field::from_key(field.name()), Some(*field));
            assert!(field.name().len() <= super::super::json::KEY_BYTES_MAX);
        }
        assert_eq!(Field::from_key("SEQ"), None);
        assert_eq!(Field::from_key(""), None);
    }

    // Integer tokens carry their exact value up to u64::MAX and none beyond.
    #[test]
    fn integers_convert_exactly() {
        for (text, value) in [
            ("0", Some(0)),
            ("9007199254740993", Some(9_007_199_254_740_993)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
        ] {
            let token = Reader::new(text).scan_number().unwrap();
            assert!(token.integer);
            assert_eq!(token.mantissa, value, "{text}");
        }
    }

    // Lookalike keys (same first and last byte and length as a field) are not taken for that field.
    #[test]
    fn lookalike_keys_are_unknown() {
        for key in ["sez", "sxq", "pas", "tickeT", "t ", "x", "symbolss"] {
            assert_eq!(Field::from_key(key), None, "{key}");
        }
    }
}
