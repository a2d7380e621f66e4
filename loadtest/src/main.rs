//! `loadtest`: the bundled load-test harness. See `loadtest help` and
//! loadtest/README.md.

use std::process::ExitCode;

use tradebridge_loadtest::cli::Arguments;
use tradebridge_loadtest::scenario::{dispatch, EXIT_USAGE};

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let result = Arguments::parse(&words).and_then(|arguments| dispatch(&arguments));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("loadtest: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
