//! tradebridge's bundled load-test harness: simulated Monitor and Executor
//! EAs that speak `shared/PROTOCOL.md`, scenarios that load a real bridge
//! process the way thousands of terminals would, honest latency measurement
//! and reports under `bench-results/`.
//!
//! # Layout
//! - [`schedule`]: the open-loop schedule (phases, intended send times).
//! - [`trades`]: the synthetic trading (positions, events, expected volumes).
//! - [`accounting`]: exactly-once accounting of copies (lost, duplicated,
//!   wrong volume).
//! - [`fleet`]: accounts, keys, follows; the generated bridge config.
//! - [`bridge`]: the bridge under test as a child process; its metrics.
//! - [`procfs`]: CPU time, memory, machine description.
//! - [`ea`]: the simulated Monitor and Executor EAs.
//! - [`stats`]: latency histograms per thread and phase.
//! - [`run`]: one trading run: threads, phases, drain, accounting.
//! - [`persist`]: `--persist`: a throwaway Postgres for the bridge's
//!   persister, its lag sampled through the run, an optional outage, the
//!   catch-up and the zero-lost-rows check.
//! - [`report`]: run folders, `summary.json`, `.hgrm` files and plots.
//! - [`cli`]: flag parsing; [`scenario`]: the commands.
//! - [`baseline`]: the baseline bridge behind `loadtest-baseline` (tokio,
//!   one task per connection, a mutex-guarded routing map), the comparison
//!   point of `fanout --compare-baseline`.
//!
//! # Invariants
//! - The harness only speaks the wire protocol to the bridge; it never links
//!   the bridge's code (the protocol codec and config parser of `core` are
//!   shared, the engine is not: volumes are computed independently).
//! - Latency is measured from the intended send time of each master event.
//! - Nothing here speaks to tradebridge other than through the wire protocol
//!   (and its `/metrics`). With `--persist`, Postgres is only started,
//!   stopped and counted through the test cluster's `pg_ctl` and `psql`.

pub mod accounting;
pub mod baseline;
pub mod bridge;
pub mod cli;
pub mod ea;
pub mod fleet;
pub mod persist;
pub mod procfs;
pub mod reconfigure;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod stats;
pub mod trades;
