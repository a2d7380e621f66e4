//! Configuration errors and the helpers that turn a byte offset in the TOML
//! source into "line N: key `x`".
//!
//! # Layout
//! - [`ConfigError`]: the one error type of `config`; its message always
//!   names the key and, when the source is known, the line.
//! - [`ConfigWarning`]: something odd in an accepted configuration, with
//!   the same line and key.
//! - `line_of` and `from_toml`: map offsets and toml's own errors.
//!
//! # Invariants
//! - Every error names a key (never empty) and, for errors found in a TOML
//!   source, a line counted from 1.

use std::fmt;
use std::ops::Range;

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The path as given to `Config::load`.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The TOML is malformed, has an unknown key, a wrong type, or a value
    /// that fails validation.
    Invalid {
        /// Line of the offending key or value, counted from 1; `None` when
        /// the problem has no single place (for example a missing table).
        line: Option<u32>,
        /// Dotted key, such as `server.hb_ms` or `lot.value`.
        key: String,
        /// What is wrong: the value seen and what was expected.
        message: String,
    },
}

impl ConfigError {
    /// An error about `key` found at byte `offset` of `source`.
    pub(crate) fn at(source: &str, offset: usize, key: &str, message: String) -> ConfigError {
        assert!(!key.is_empty(), "a config error must name its key");
        ConfigError::Invalid {
            line: Some(line_of(source, offset)),
            key: key.to_string(),
            message,
        }
    }

    /// An error about `key` with no single place in the source.
    pub(crate) fn nowhere(key: &str, message: String) -> ConfigError {
        assert!(!key.is_empty(), "a config error must name its key");
        ConfigError::Invalid {
            line: None,
            key: key.to_string(),
            message,
        }
    }

    /// The line this error points at, when it has one.
    pub fn line(&self) -> Option<u32> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// The key this error names (empty for a read error).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "",
            ConfigError::Invalid { key, .. } => key,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, message } => {
                write!(formatter, "cannot read config file `{path}`: {message}")
            }
            ConfigError::Invalid {
                line: Some(line),
                key,
                message,
            } => {
                write!(formatter, "line {line}: key `{key}`: {message}")
            }
            ConfigError::Invalid {
                line: None,
                key,
                message,
            } => {
                write!(formatter, "key `{key}`: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something in an accepted configuration that the operator should know:
/// the bridge logs each one at start-up. The configuration is still valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Line of the key, counted from 1.
    pub line: u32,
    /// Dotted key, such as `follow[0].slave`.
    pub key: String,
    /// What is odd, and what it means for the bridge.
    pub message: String,
}

impl ConfigWarning {
    /// A warning about `key` found at byte `offset` of `source`.
    pub(crate) fn at(source: &str, offset: usize, key: &str, message: String) -> ConfigWarning {
        assert!(!key.is_empty(), "a config warning must name its key");
        assert!(!message.is_empty());
        ConfigWarning {
            line: line_of(source, offset),
            key: key.to_string(),
            message,
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}: key `{}`: {}",
            self.line, self.key, self.message
        )
    }
}

/// The 1-based line holding byte `offset` of `source`.
pub(crate) fn line_of(source: &str, offset: usize) -> u32 {
    let end = offset.min(source.len());
    let newlines = source.as_bytes()[..end]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count();
    // A config has far fewer than 4 billion lines; saturate rather than wrap.
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Turns toml's own error (syntax, unknown key, wrong type, missing key)
/// into a [`ConfigError`] naming the line and the key.
pub(crate) fn from_toml(source: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim().to_string();
    let span = error.span();
    let key = key_from_message(&message)
        .or_else(|| span.clone().and_then(|span| key_before(source, span)))
        .unwrap_or_else(|| "(document)".to_string());
    match span {
        Some(span) => ConfigError::at(source, span.start, &key, message),
        None => ConfigError::nowhere(&key, message),
    }
}

/// The key named in backquotes by the "unknown field", "missing field" and
/// "duplicate key" messages.
fn key_from_message(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))
        .or_else(|| message.strip_prefix("duplicate key `"))?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// The key whose value sits at `span`: the name before the last `=` that
/// precedes the span on its line, qualified by the inline table it sits in
/// (`lot = { value = -1 }` gives `lot.value`).
fn key_before(source: &str, span: Range<usize>) -> Option<String> {
    let start = span.start.min(source.len());
    let line_start = source[..start].rfind('\n').map_or(0, |index| index + 1);
    let before = &source[line_start..start];
    let equals = before.rfind('=')?;
    let inner = last_word(&before[..equals])?;
    let first_equals = before.find('=')?;
    if first_equals < equals && before[first_equals..equals].contains('{') {
        let outer = last_word(&before[..first_equals])?;
        return Some(format!("{outer}.{inner}"));
    }
    Some(inner)
}

/// The trailing bare-key word of `text` (letters, digits, `_`, `-`, `.`).
fn last_word(text: &str) -> Option<String> {
    let trimmed = text.trim_end();
    let start = trimmed
        .rfind(|character: char| {
            !(character.is_ascii_alphanumeric()
                || character == '_'
                || character == '-'
                || character == '.')
        })
        .map_or(0, |index| index + 1);
    let word = &trimmed[start..];
    if word.is_empty() {
        None
    } else {
        Some(word.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_counts_from_one() {
        // Shows that offsets map to 1-based lines, including the last line.
        let source = "a = 1\nb = 2\nc = 3";
        assert_eq!(line_of(source, 0), 1);
        assert_eq!(line_of(source, 6), 2);
        assert_eq!(line_of(source, source.len()), 3);
    }

    #[test]
    fn key_before_qualifies_inline_tables() {
        // Shows that a value inside an inline table is named by its dotted key.
        let source = "lot = { mode = \"fixed\", value = \"x\" }";
        let start = source.find("\"x\"").unwrap();
        assert_eq!(
            key_before(source, start..start + 3).as_deref(),
            Some("lot.value")
        );
        let plain = "hb_ms = \"x\"";
        assert_eq!(key_before(plain, 8..11).as_deref(), Some("hb_ms"));
    }
}
