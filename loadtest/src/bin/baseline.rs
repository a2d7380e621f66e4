//! `loadtest-baseline --config FILE [--threads N] [--fault KIND=N]...`: the
//! baseline bridge (see `tradebridge_loadtest::baseline`). A usage or
//! configuration error exits with 2, naming the flag or the key.

use std::process::ExitCode;

use tradebridge_core::config::Config;
use tradebridge_loadtest::baseline::{self, support, Options, USAGE};

/// Exit code for a usage or configuration error, as for most Unix tools.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("loadtest-baseline: {message}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let path = options.config_path.display().to_string();
    let config = match Config::load(&options.config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("loadtest-baseline: configuration {path}: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(message) = support::check(&config) {
        eprintln!("loadtest-baseline: configuration {path}: {message}");
        return ExitCode::from(EXIT_USAGE);
    }
    for warning in &config.warnings {
        eprintln!("loadtest-baseline: configuration {path}: warning: {warning}");
    }
    if let Some(address) = config.server.metrics_listen {
        eprintln!("loadtest-baseline: server.metrics_listen = {address} is not served: the baseline has no metrics endpoint");
    }
    eprintln!("loadtest-baseline: no journal (acks are in memory only); faults active: {}", options.faults.describe());
    match baseline::serve(config, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadtest-baseline: {error}");
            ExitCode::FAILURE
        }
    }
}
