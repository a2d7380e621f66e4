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
/// into a [`ConfigError`] naming the line and the full dotted key, as
/// validation errors do (`follow[0].lot.scale`, `account[1].login`).
pub(crate) fn from_toml(source: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim().to_string();
    let span = error.span();
    let leaf = key_from_message(&message)
        .or_else(|| span.clone().and_then(|span| key_before(source, span)));
    match span {
        // A key missing from the document itself comes with the whole
        // document as its span: it belongs to no table.
        Some(span) if span.start == 0 && span.end >= source.trim_end().len() => {
            ConfigError::at(source, 0, leaf.as_deref().unwrap_or("(document)"), message)
        }
        Some(span) => {
            let key = qualified_key(source, span.start, leaf.as_deref());
            ConfigError::at(source, span.start, &key, message)
        }
        None => ConfigError::nowhere(leaf.as_deref().unwrap_or("(document)"), message),
    }
}

/// The full dotted key of `leaf` found at byte `offset`: the path of the
/// table it sits in (from the headers above it), then the inline table it
/// sits in, if any, then the leaf itself.
fn qualified_key(source: &str, offset: usize, leaf: Option<&str>) -> String {
    let offset = offset.min(source.len());
    let mut parts: Vec<String> = Vec::with_capacity(3);
    let table = table_path_at(source, offset);
    if !table.is_empty() {
        parts.push(table);
    }
    // Between an inline table's `{` and its first `=`, the key before `=`
    // is the table's own name (a malformed `lot = {...}`): not named twice.
    if let Some((inline, brace)) = inline_table_at(source, offset) {
        let own_name = leaf == Some(inline.as_str()) && !source[brace..offset].contains('=');
        if !own_name {
            parts.push(inline);
        }
    }
    if let Some(leaf) = leaf {
        parts.push(leaf.to_string());
    }
    if parts.is_empty() {
        return "(document)".to_string();
    }
    assert!(parts.iter().all(|part| !part.is_empty()));
    parts.join(".")
}

/// The dotted path of the table holding byte `offset`, from the table
/// headers on the lines up to and including its own: `server`,
/// `account[1]` (arrays of tables counted from 0 in file order),
/// `follow[0].lot` for a `[follow.lot]` sub-table; "" before any header.
fn table_path_at(source: &str, offset: usize) -> String {
    let mut array_counts: Vec<(String, usize)> = Vec::new();
    let mut path = String::new();
    let mut line_start = 0;
    for line in source.split_inclusive('\n') {
        if line_start > offset {
            break;
        }
        line_start += line.len();
        let Some((name, is_array)) = table_header(line) else {
            continue;
        };
        if is_array {
            let index = match array_counts.iter_mut().find(|(array, _)| *array == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    array_counts.push((name.clone(), 1));
                    0
                }
            };
            path = format!("{name}[{index}]");
        } else {
            let (first, rest) = name.split_once('.').unwrap_or((name.as_str(), ""));
            path = match array_counts.iter().find(|(array, _)| array == first) {
                Some((_, count)) if rest.is_empty() => format!("{first}[{}]", count - 1),
                Some((_, count)) => format!("{first}[{}].{rest}", count - 1),
                None => name.clone(),
            };
        }
    }
    path
}

/// The name of a `[table]` or `[[array]]` header line and whether it is an
/// array; `None` for any other line. A name holds only bare-key characters
/// and dots, so a line of a multi-line array (`[1, 2],`) is not a header.
fn table_header(line: &str) -> Option<(String, bool)> {
    let trimmed = line.trim();
    let (inner, rest, is_array) = if let Some(after) = trimmed.strip_prefix("[[") {
        let end = after.find("]]")?;
        (&after[..end], &after[end + 2..], true)
    } else {
        let after = trimmed.strip_prefix('[')?;
        let end = after.find(']')?;
        (&after[..end], &after[end + 1..], false)
    };
    let rest = rest.trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let name: String = inner
        .split('.')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(".");
    let bare = |character: char| character.is_ascii_alphanumeric() || "_-.".contains(character);
    if name.is_empty() || !name.chars().all(bare) {
        return None;
    }
    Some((name, is_array))
}

/// The name of the inline table (`lot = { ... }`) that byte `offset` sits
/// in or starts, on its line, and the offset of its `{`; `None` outside any.
fn inline_table_at(source: &str, offset: usize) -> Option<(String, usize)> {
    let line_start = source[..offset].rfind('\n').map_or(0, |index| index + 1);
    let before = &source[line_start..offset];
    let brace = if source[offset..].starts_with('{') {
        before.len()
    } else {
        let open = before.rfind('{')?;
        if before[open..].contains('}') {
            return None;
        }
        open
    };
    let name_part = before[..brace].trim_end().strip_suffix('=')?;
    Some((last_word(name_part)?, line_start + brace))
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
/// precedes the span on its line (`lot = { value = -1 }` gives `value`;
/// `inline_table_at` adds the `lot`).
fn key_before(source: &str, span: Range<usize>) -> Option<String> {
    let start = span.start.min(source.len());
    let line_start = source[..start].rfind('\n').map_or(0, |index| index + 1);
    let before = &source[line_start..start];
    let equals = before.rfind('=')?;
    last_word(&before[..equals])
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
    fn keys_are_qualified_by_table_and_inline_table() {
        // Shows the full dotted key of a value: its table's path (arrays counted from 0), its inline table, its name.
        let source = "[server]\nhb_ms = \"x\"\n\n[[follow]]\nslave = 1\n\n[[follow]]  # second\n\
                      lot = { mode = \"fixed\", value = \"x\" }\n[follow.extra]\nkey = 1\n";
        let key_at = |needle: &str, nth: usize| {
            let start = source.match_indices(needle).nth(nth).unwrap().0;
            qualified_key(
                source,
                start,
                key_before(source, start..start + 1).as_deref(),
            )
        };
        assert_eq!(key_at("\"x\"", 0), "server.hb_ms");
        assert_eq!(key_at("\"x\"", 1), "follow[1].lot.value");
        assert_eq!(key_at("1\n", 0), "follow[0].slave");
        assert_eq!(key_at("1\n", 1), "follow[1].extra.key");
        let brace = source.find('{').unwrap();
        assert_eq!(
            qualified_key(source, brace, Some("value")),
            "follow[1].lot.value"
        );
        assert_eq!(
            qualified_key(source, 0, Some("server")),
            "server.server",
            "a header line belongs to its table"
        );
        assert_eq!(qualified_key("a = 1", 4, Some("a")), "a");
        assert_eq!(
            table_header("  [1, 2],"),
            None,
            "a line of a multi-line array is no header"
        );
        assert_eq!(
            table_header("[[ account ]] # note"),
            Some(("account".to_string(), true))
        );
    }
}
