//! Why a frame was refused: [`ProtocolError`], a small fixed-size value that
//! never allocates, carries the `error.code` to answer with, and displays as
//! the human-readable `error.msg` (for instance ``missing field `seq` ``).
//!
//! # Layout
//! - [`Excerpt`]: a bounded copy of the offending value's JSON text.
//! - [`FieldPath`]: which field, at the top level or inside an array element.
//! - [`ProtocolError`]: one variant per way a frame can be wrong.
//!
//! # Invariants
//! - An error never holds more than [`EXCERPT_BYTES_MAX`] bytes of the frame,
//!   so a hostile frame cannot make the reply (or a log line) large.
//! - Every variant about a value names the field, shows the value and says
//!   what was expected.
//! - Only [`ProtocolError::UnknownType`] maps to `unknown_type` and only
//!   [`ProtocolError::FrameTooLarge`] to `too_large`; everything else is
//!   `bad_message`.

use std::fmt;

use super::message::ErrorCode;

/// Longest excerpt of an offending value kept in an error, in bytes. Long
/// enough to recognise the value (a u64 has at most 20 digits, a price about
/// 10, a symbol name 12) while keeping the error a small fixed-size value that
/// never allocates, even for a 16 KiB string.
pub const EXCERPT_BYTES_MAX: usize = 32;

/// The start of the offending value's JSON text (strings keep their quotes),
/// cut at a character boundary to at most [`EXCERPT_BYTES_MAX`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Excerpt {
    /// The kept bytes; only `bytes[..length]` is meaningful. Always valid
    /// UTF-8 there, because the cut is made at a character boundary.
    bytes: [u8; EXCERPT_BYTES_MAX],
    /// How many bytes of `bytes` are used; set once at construction.
    length: u8,
    /// True when the value was longer than what is kept; Display then ends
    /// the excerpt with `…`.
    truncated: bool,
}

impl Excerpt {
    /// Keeps the start of `text`, cut at a character boundary.
    pub fn new(text: &str) -> Excerpt {
        let mut length = text.len().min(EXCERPT_BYTES_MAX);
        while !text.is_char_boundary(length) {
            length -= 1;
        }
        let mut bytes = [0u8; EXCERPT_BYTES_MAX];
        bytes[..length].copy_from_slice(&text.as_bytes()[..length]);
        let excerpt = Excerpt {
            bytes,
            length: length as u8,
            truncated: length < text.len(),
        };
        debug_assert!(excerpt.as_str().len() == length);
        debug_assert!(excerpt.truncated || length == text.len());
        excerpt
    }

    /// Shows a number the codec computed with (rather than read as text),
    /// in the same shortest round-trip form the writer uses.
    pub fn from_f64(value: f64) -> Excerpt {
        let mut buffer = zmij::Buffer::new();
        Excerpt::new(buffer.format(value))
    }

    /// Shows a name the codec decoded (an enum value) as the JSON string
    /// it came from, quotes included.
    pub fn quoted(name: &str) -> Excerpt {
        let mut quoted = [0u8; EXCERPT_BYTES_MAX];
        let mut length = name.len().min(EXCERPT_BYTES_MAX - 2);
        while !name.is_char_boundary(length) {
            length -= 1;
        }
        quoted[0] = b'"';
        quoted[1..=length].copy_from_slice(&name.as_bytes()[..length]);
        quoted[length + 1] = b'"';
        let text = std::str::from_utf8(&quoted[..length + 2]).unwrap_or("");
        debug_assert!(text.len() == length + 2);
        let mut excerpt = Excerpt::new(text);
        excerpt.truncated = length < name.len();
        excerpt
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        // The cut is made at a character boundary of a `&str`, so this cannot
        // fail; the fallback keeps Display total without a panic path.
        std::str::from_utf8(&self.bytes[..self.length as usize]).unwrap_or("")
    }

    /// True when the value was longer than the excerpt.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())?;
        if self.truncated {
            formatter.write_str("…")?;
        }
        Ok(())
    }
}

/// Which field an error is about: a top-level field (`seq`) or a field of
/// one element of an array field (`positions[3].volume`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldPath {
    /// The array field and the element's index (from 0) when the field sits
    /// inside an array element; `None` at the top level.
    pub element: Option<(&'static str, u32)>,
    /// The field's wire name.
    pub name: &'static str,
}

impl FieldPath {
    /// A field of the top-level object.
    pub fn top(name: &'static str) -> FieldPath {
        FieldPath {
            element: None,
            name,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.element {
            None => write!(formatter, "`{}`", self.name),
            // An empty name stands for the element itself (wrong type).
            Some((array, index)) if self.name.is_empty() => write!(formatter, "`{array}[{index}]`"),
            Some((array, index)) => write!(formatter, "`{array}[{index}].{}`", self.name),
        }
    }
}

/// Why [`parse`](super::parse) refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame is longer than the codec accepts on its own (the transport
    /// normally refuses such frames first).
    FrameTooLarge {
        frame_bytes: u64,
        frame_bytes_max: u64,
    },
    /// The frame is not UTF-8; `offset` is the first byte that is not.
    InvalidUtf8 { offset: u32 },
    /// The frame is not JSON: at byte `offset` the reader expected
    /// `expected` but found `found` (`None`: the frame ended).
    Syntax {
        offset: u32,
        expected: &'static str,
        found: Option<char>,
    },
    /// Objects and arrays nest deeper than `depth_max` at byte `offset`.
    TooDeep { offset: u32, depth_max: u32 },
    /// A required field is absent.
    MissingField { field: FieldPath },
    /// A field the message type uses appears twice in one object.
    DuplicateField { field: FieldPath },
    /// A field holds a value of the wrong type or out of range.
    InvalidField {
        field: FieldPath,
        expected: &'static str,
        got: Excerpt,
    },
    /// An array field holds more than `elements_max` elements.
    TooManyElements { field: FieldPath, elements_max: u32 },
    /// `t` names no message type of protocol v1.
    UnknownType { got: Excerpt },
}

impl ProtocolError {
    /// The `error.code` to answer this frame with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::FrameTooLarge { .. } => ErrorCode::TooLarge,
            ProtocolError::UnknownType { .. } => ErrorCode::UnknownType,
            _ => ErrorCode::BadMessage,
        }
    }

    /// The field this error is about, if it is about one.
    pub fn field(&self) -> Option<FieldPath> {
        match self {
            ProtocolError::MissingField { field }
            | ProtocolError::DuplicateField { field }
            | ProtocolError::InvalidField { field, .. }
            | ProtocolError::TooManyElements { field, .. } => Some(*field),
            ProtocolError::UnknownType { .. } => Some(FieldPath::top("t")),
            _ => None,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::FrameTooLarge {
                frame_bytes,
                frame_bytes_max,
            } => write!(
                formatter,
                "frame of {frame_bytes} bytes: expected at most {frame_bytes_max}"
            ),
            ProtocolError::InvalidUtf8 { offset } => {
                write!(
                    formatter,
                    "frame is not UTF-8: invalid byte at offset {offset}"
                )
            }
            ProtocolError::Syntax {
                offset,
                expected,
                found,
            } => {
                write!(
                    formatter,
                    "malformed JSON at byte {offset}: expected {expected}, got "
                )?;
                match found {
                    Some(character) => write!(formatter, "{:?}", character),
                    None => formatter.write_str("end of frame"),
                }
            }
            ProtocolError::TooDeep { offset, depth_max } => write!(
                formatter,
                "malformed JSON at byte {offset}: objects and arrays nested deeper than {depth_max}"
            ),
            ProtocolError::MissingField { field } => write!(formatter, "missing field {field}"),
            ProtocolError::DuplicateField { field } => {
                write!(formatter, "duplicate field {field}")
            }
            ProtocolError::InvalidField {
                field,
                expected,
                got,
            } => write!(formatter, "field {field}: expected {expected}, got {got}"),
            ProtocolError::TooManyElements {
                field,
                elements_max,
            } => write!(
                formatter,
                "field {field}: expected at most {elements_max} elements"
            ),
            ProtocolError::UnknownType { got } => {
                write!(formatter, "field `t`: unknown message type {got}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    // An excerpt of a long multi-byte string is cut at a character boundary and marked as cut.
    #[test]
    fn excerpt_cuts_at_char_boundary() {
        let text = "\"ééééééééééééééééééééé\"";
        let excerpt = Excerpt::new(text);
        assert!(excerpt.is_truncated());
        assert!(excerpt.as_str().len() <= EXCERPT_BYTES_MAX);
        assert!(text.starts_with(excerpt.as_str()));
        assert!(excerpt.to_string().ends_with('…'));
        let short = Excerpt::new("\"abc\"");
        assert!(!short.is_truncated());
        assert_eq!(short.to_string(), "\"abc\"");
    }

    // The messages match PROTOCOL.md's example and name field, value and expectation.
    #[test]
    fn display_names_field_value_and_expectation() {
        let missing = ProtocolError::MissingField {
            field: FieldPath::top("seq"),
        };
        assert_eq!(missing.to_string(), "missing field `seq`");
        assert_eq!(missing.code(), ErrorCode::BadMessage);
        let invalid = ProtocolError::InvalidField {
            field: FieldPath {
                element: Some(("positions", 3)),
                name: "volume",
            },
            expected: "number > 0",
            got: Excerpt::new("-1"),
        };
        assert_eq!(
            invalid.to_string(),
            "field `positions[3].volume`: expected number > 0, got -1"
        );
        let unknown = ProtocolError::UnknownType {
            got: Excerpt::new("\"fill\""),
        };
        assert_eq!(unknown.code(), ErrorCode::UnknownType);
        assert_eq!(
            unknown.to_string(),
            "field `t`: unknown message type \"fill\""
        );
    }

    // The error stays small enough to return by value on the hot path.
    #[test]
    fn error_is_small() {
        assert!(std::mem::size_of::<ProtocolError>() <= 96);
    }
}
