//! Command-line parsing: `loadtest <scenario> [--flag value] [--switch]`.
//!
//! # Invariants
//! - Every flag is read at most once by the scenario that knows it; any
//!   flag left unread at [`Arguments::finish`] is an error naming it, so a
//!   typo never silently falls back to a default.
//! - A bad value's error names the flag, the value and what was expected.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use anyhow::{anyhow, bail};

/// Flags that take no value.
const SWITCHES: [&str; 5] = ["--spawn", "--compare-baseline", "--no-progress", "--persist", "--help"];

/// Parsed arguments of one invocation.
#[derive(Debug)]
pub struct Arguments {
    /// The first word: the scenario or command.
    pub command: String,
    values: BTreeMap<String, String>,
    switches: BTreeSet<String>,
    /// Flags read so far.
    used: RefCell<BTreeSet<String>>,
}

impl Arguments {
    /// Parses `words` (without the program name).
    pub fn parse(words: &[String]) -> anyhow::Result<Arguments> {
        let mut words = words.iter();
        let command = words.next().cloned().unwrap_or_else(|| "help".into());
        let mut values = BTreeMap::new();
        let mut switches = BTreeSet::new();
        while let Some(word) = words.next() {
            if !word.starts_with("--") {
                bail!("unexpected argument {word:?}; expected --flag value");
            }
            let (name, inline) = match word.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (word.clone(), None),
            };
            if SWITCHES.contains(&name.as_str()) {
                if inline.is_some() {
                    bail!("{name} takes no value");
                }
                switches.insert(name);
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => words.next().cloned().ok_or_else(|| anyhow!("{name} needs a value"))?,
            };
            if values.insert(name.clone(), value).is_some() {
                bail!("{name} given twice");
            }
        }
        Ok(Arguments { command, values, switches, used: RefCell::new(BTreeSet::new()) })
    }

    /// True when `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.used.borrow_mut().insert(name.to_string());
        self.switches.contains(name)
    }

    /// The raw value of `--name`, if given.
    pub fn text(&self, name: &str) -> Option<String> {
        self.used.borrow_mut().insert(name.to_string());
        self.values.get(name).cloned()
    }

    /// The value of `--name` parsed, or `default`; `expected` says what a
    /// good value is, for the error.
    pub fn value<T: FromStr>(&self, name: &str, default: T, expected: &str) -> anyhow::Result<T> {
        match self.text(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| anyhow!("{name} {text:?}: expected {expected}")),
        }
    }

    /// Like [`Arguments::value`], then checks `valid`.
    pub fn checked<T: FromStr + Copy>(&self, name: &str, default: T, expected: &str, valid: impl Fn(T) -> bool) -> anyhow::Result<T> {
        let value = self.value(name, default, expected)?;
        if !valid(value) {
            bail!("{name} {}: expected {expected}", self.text(name).unwrap_or_default());
        }
        Ok(value)
    }

    /// Errors when a flag was given that no one read.
    pub fn finish(&self) -> anyhow::Result<()> {
        let used = self.used.borrow();
        let unknown: Vec<&String> = self.values.keys().chain(&self.switches).filter(|name| !used.contains(*name)).collect();
        if !unknown.is_empty() {
            bail!("`loadtest {}` does not know {}; see `loadtest help`", self.command, unknown.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Arguments {
        Arguments::parse(&text.split_whitespace().map(String::from).collect::<Vec<_>>()).expect("parses")
    }

    #[test]
    fn values_switches_and_defaults() {
        // Shows: --flag value and --flag=value both parse, switches take no value, and absent flags take their defaults.
        let arguments = parse("fanout --rate 50 --secs=3 --spawn");
        assert_eq!(arguments.command, "fanout");
        assert_eq!(arguments.value("--rate", 1.0, "a rate").expect("rate"), 50.0);
        assert_eq!(arguments.value("--secs", 30u64, "seconds").expect("secs"), 3);
        assert_eq!(arguments.value("--masters", 10u32, "a count").expect("default"), 10);
        assert!(arguments.switch("--spawn"));
        assert!(!arguments.switch("--compare-baseline"));
        arguments.finish().expect("all read");
    }

    #[test]
    fn bad_and_unknown_flags_are_named() {
        // Shows: a value that does not parse names the flag, value and expectation; an unread flag is refused by name.
        let arguments = parse("fanout --rate fast --colour blue");
        let error = arguments.value("--rate", 1.0, "events per second above 0").expect_err("bad").to_string();
        assert_eq!(error, "--rate \"fast\": expected events per second above 0");
        let error = arguments.finish().expect_err("unknown").to_string();
        assert!(error.contains("--colour") && !error.contains("--rate"), "{error}");
        let error = arguments.checked("--rate", 5.0, "above 0", |rate: f64| rate > 0.0).expect_err("still bad").to_string();
        assert!(error.contains("fast"));
    }
}
