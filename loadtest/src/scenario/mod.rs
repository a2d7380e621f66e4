//! The scenarios, one command each, and the command dispatch.
//!
//! # Layout
//! - [`common`] holds the flags, the bridge under test, verdicts, report files.
//! - [`trading`] runs `fanout`, `churn`, `slow-slave` and `ramp`.
//! - [`capacity`] runs `capacity`.
//! - [`gen_config`] runs `gen-config`.
//! - [`persist_catchup`] runs `persist-catchup` (the persister catching up
//!   a backlog after Postgres was away for the whole measured phase).
//! - [`floor`] runs `floor` (no bridge: this machine's wake and send costs).
//!
//! # Invariants
//! - Exit codes: 0 pass, 1 the run failed its checks (loss, duplicates,
//!   wrong volumes, budget, unclean bridge exit, rows missing from Postgres
//!   or a persister that did not catch up), 2 a usage or setup error.

pub mod capacity;
pub mod common;
pub mod floor;
pub mod gen_config;
pub mod persist_catchup;
pub mod trading;

use crate::cli::Arguments;

/// Exit code of a usage or setup error.
pub const EXIT_USAGE: u8 = 2;

/// `loadtest help`.
pub const USAGE: &str = "\
usage: loadtest <scenario> [flags]

scenarios:
  fanout       M masters x K slaves at a given event rate      --masters 10 --slaves-per-master 10 --rate 1000 --secs 30 [--compare-baseline]
  capacity     N idle EAs with heartbeats: connect times, RSS   --eas 10000 --connect-concurrency 100 --hold-secs 10
  ramp         raise the rate until p99 breaks the budget       --rate-start 500 --rate-factor 1.5 --rate-max 64000 --step-secs 5
  churn        random disconnects/reconnects while trading      --churn-mean-ms 3000 --reconnect-delay-ms-max 500
  slow-slave   one slave stops reading; others must not move    --moved-p99-ratio-max 2 --moved-ms-min 5
  gen-config   write bridge.toml and keys.tsv for --url runs    --masters M --slaves-per-master K --out DIR [--listen ADDR]
  floor        no bridge: 2 thread wakes + K loopback sends, the  --copies 10 --rounds 10000 --gap-us 1000 [--out-dir --tag --notes]
               floor under the bridge's event_to_copy_sent here
  persist-catchup  fanout with Postgres stopped for the measured   --spawn --rows 1000000 [--rate 1000 --masters 10 --slaves-per-master 10 --secs S]
               phase, then the persister's catch-up timed to lag 0 (rows/s)

target (one of):
  --spawn                      generate a config and start the bridge (free ports, temp journal, SIGTERM at the end)
  --url ws://HOST:PORT/ea --config FILE [--keys FILE] [--bridge-pid PID]   a running bridge

common flags:
  --bridge tradebridge|baseline   which bridge --spawn starts (default tradebridge)
  --bridge-bin PATH               its binary (default: next to loadtest); --baseline-bin PATH for the baseline
  --fault KIND=N                  passed to a spawned baseline (lose-every, duplicate-every, volume-every)
  --baseline-threads N            passed to a spawned baseline
  --journal-sync group|os|every_record   --idle park|yield|spin   --routing auto|inline|thread
  --journal-flush auto|router|thread|uring   group sync: who flushes each group (the bridge's journal_flush)
  --hot-thread-slice-us N      the bridge's hot_thread_slice_us (0 = the kernel's slice, the default; or 100 to 100000)
  --shards N   --hb-ms MS (5000)
  --client-threads N (1)   --secs S   --warmup-secs S   --drain-secs S (10)
  --open-positions N (10)  --modifies-per-position N (1)  --snapshot-secs S (60)
  --budget-p99-ms MS (200) exit 1 when the end-to-end p99 breaks it
  --out-dir DIR (bench-results)  --tag TAG  --notes TEXT  --seed N  --no-progress

persister (fanout, churn, slow-slave, ramp; needs --spawn and tradebridge; persist-catchup implies --persist):
  --persist                       start a throwaway durable Postgres, write [persist] into the bridge's config, sample its
                                  lag every second, wait for the catch-up, check every row is in Postgres once
  --persist-batch-rows N          batch_rows_max (bridge default 5000)   --persist-batch-ms MS   batch_interval_ms (default 100)
  --persist-retry-ms-max MS       retry_backoff_ms_max (default 5000)
  --persist-catchup-secs S        longest wait for lag_records 0 after the load (120; persist-catchup 600)
  --postgres-outage-at S --postgres-outage-secs S   stop Postgres S s into the measured phase, restart it after S s
  --reconfigure-every-ms MS       (tradebridge, --spawn) rewrite its config every MS ms, moving a spare slave's follow, and SIGHUP it
  --postgres-dir DIR              make the throwaway cluster under DIR (default: the temporary directory, the journal's disk)
  --postgres-conf FILE            postgresql.conf lines appended to its settings (default: none, Postgres' defaults)
  e.g. loadtest fanout --spawn --rate 1000 --secs 60 --persist --postgres-outage-at 15 --postgres-outage-secs 30
       loadtest persist-catchup --spawn --rows 1000000

exit codes: 0 pass, 1 failed checks (lost/duplicated/wrong copies, budget, unclean bridge exit, rows missing from Postgres), 2 usage or setup error
See loadtest/README.md.";

/// Runs the command named by the first argument; the exit code.
pub fn dispatch(arguments: &Arguments) -> anyhow::Result<u8> {
    match arguments.command.as_str() {
        "fanout" => trading::fanout(arguments),
        "churn" => trading::churn(arguments),
        "slow-slave" => trading::slow_slave(arguments),
        "ramp" => trading::ramp(arguments),
        "capacity" => capacity::capacity(arguments),
        "gen-config" => gen_config::gen_config(arguments),
        "floor" => floor::floor(arguments),
        "persist-catchup" => persist_catchup::persist_catchup(arguments),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => anyhow::bail!("unknown scenario {other:?}; expected fanout, capacity, ramp, churn, slow-slave, gen-config, floor or persist-catchup (see `loadtest help`)"),
    }
}
