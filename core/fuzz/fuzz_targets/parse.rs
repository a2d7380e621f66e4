//! Fuzz target `parse`: arbitrary bytes must never make `parse` panic, and
//! every message it accepts must survive `write` and `parse` again unchanged,
//! and re-encode to the very same bytes (which also checks floats bit for
//! bit: `PartialEq` alone cannot tell `-0.0` from `0.0`).
//!
//! Run: `cargo +nightly fuzz run parse` from `core/` (see PROTOCOL-NOTES.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tradebridge_core::protocol::{parse, write};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = parse(data) else {
        return;
    };
    let mut written = Vec::new();
    write(&message, &mut written);
    let reparsed = parse(&written);
    assert_eq!(
        reparsed.as_ref(),
        Ok(&message),
        "written: {}",
        String::from_utf8_lossy(&written)
    );
    let mut rewritten = Vec::new();
    write(&reparsed.unwrap(), &mut rewritten);
    assert_eq!(written, rewritten);
});
