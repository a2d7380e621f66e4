//! The fuzzer's committed corpus as a regression suite: every input the
//! fuzzer kept (core/fuzz/corpus/parse/) goes through the same property as the
//! fuzz target, under the ordinary test command and the stable toolchain.

use std::fs;
use std::path::PathBuf;

use tradebridge_core::protocol::{parse, write};

#[test]
fn every_corpus_input_parses_without_panic_and_round_trips() {
    // Shows: no corpus input panics the parser, and each accepted one writes
    // and re-parses to the same message and the same bytes.
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    let mut inputs_count = 0u32;
    let mut accepted_count = 0u32;
    for entry in fs::read_dir(&corpus).expect("the corpus folder is committed") {
        let path = entry.expect("readable corpus entry").path();
        let data = fs::read(&path).expect("readable corpus file");
        inputs_count += 1;
        let Ok(message) = parse(&data) else { continue };
        accepted_count += 1;
        let mut written = Vec::new();
        write(&message, &mut written);
        let reparsed = parse(&written).unwrap_or_else(|error| {
            panic!("{}: written form does not parse: {error}", path.display())
        });
        assert_eq!(reparsed, message, "{}", path.display());
        let mut rewritten = Vec::new();
        write(&reparsed, &mut rewritten);
        assert_eq!(written, rewritten, "{}", path.display());
    }
    // The corpus holds hundreds of inputs, the protocol's examples among them;
    // an empty or unreadable folder must not pass as a clean run.
    assert!(inputs_count >= 100, "only {inputs_count} corpus inputs found");
    assert!(accepted_count >= 12, "only {accepted_count} corpus inputs were valid messages");
}
