//! How long the append that rolls the journal over to a new segment takes,
//! with the next segment prepared ahead on a spare (`spare_segment`, the
//! default) and without (its zeros written at roll-over, as before the
//! spare), under `Group` and `Os`; and how long the spare's paced
//! preparation takes.
//!
//! Run: `cargo bench -p tradebridge-core --bench journal_roll_over`
//! Environment knobs (optional): `JOURNAL_BENCH_DIR` (default: the system
//! temporary directory; it must be a real disk), `ROLL_OVER_SEGMENT_BYTES`
//! (default 64 MiB, the bridge's default segment), `ROLL_OVER_COUNT`
//! (roll-overs per scenario, default 6).
//!
//! Method: 200-byte records are appended back to back; each append is timed
//! (`Instant` around the call). The appends that created a segment
//! (`segments_created_count` grew) are reported on their own; the others as
//! a p99.9 and max. Under `Group` the journal is flushed every 64 records
//! (the clock passed in stands still, so the interval never closes a
//! group). With a spare, the rolling append is made only once the spare is
//! ready (at the bridge's rates a segment lasts tens of seconds, the spare
//! about a second), and the time from the previous roll-over until it was
//! ready is reported as "spare ready ms".

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hdrhistogram::Histogram;
use tradebridge_core::journal::{Journal, JournalOptions, SyncPolicy};

const PAYLOAD_BYTES: usize = 200;

fn main() {
    let base = std::env::var_os("JOURNAL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let segment_bytes = env_u64("ROLL_OVER_SEGMENT_BYTES", 64 << 20);
    let roll_overs = env_u64("ROLL_OVER_COUNT", 6);
    println!("segment_bytes {segment_bytes}, {roll_overs} roll-overs per scenario, in {}", base.display());
    println!("{:<44} {:>12} {:>12} {:>12} {:>16} {:>14} {:>12}", "scenario", "roll p50 us", "roll max us", "spares used", "spare ready ms", "other p99.9 us", "other max us");
    let group = SyncPolicy::Group { records_max: 64, interval_ms: 2 };
    for (name, policy, spare) in [
        ("Group, spare prepared in the background", group, true),
        ("Group, no spare (zeros written at roll-over)", group, false),
        ("Os, spare prepared in the background", SyncPolicy::Os, true),
        ("Os, no spare (zeros written at roll-over)", SyncPolicy::Os, false),
    ] {
        measure(&base, name, policy, spare, segment_bytes, roll_overs);
    }
}

fn measure(base: &Path, name: &str, policy: SyncPolicy, spare: bool, segment_bytes: u64, roll_overs: u64) {
    let directory = base.join(format!("tradebridge-roll-over-{}-{}", std::process::id(), name.len()));
    let _ = fs::remove_dir_all(&directory);
    let options = JournalOptions { segment_bytes, sync: policy, spare_segment: spare, ..JournalOptions::default() };
    let (mut journal, _) = Journal::open(&directory, options).expect("open the bench journal");
    let payload = vec![0x5Au8; PAYLOAD_BYTES];
    let mut rolls = Vec::new();
    let mut ready_ms = Vec::new();
    let mut others = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut last_roll = Instant::now();
    while (rolls.len() as u64) < roll_overs {
        let created = journal.stats().segments_created_count;
        let would_roll = journal.stats().appends_count > 0 && next_append_rolls(&journal, segment_bytes);
        if would_roll && spare {
            while !journal.is_spare_ready() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            ready_ms.push(last_roll.elapsed().as_millis() as u64);
        }
        let started = Instant::now();
        journal.append(1, &payload, 0).expect("append");
        let took_us = started.elapsed().as_nanos() as u64 / 1_000;
        if journal.stats().segments_created_count > created {
            rolls.push(took_us);
            last_roll = Instant::now();
        } else {
            others.record(took_us.max(1)).expect("record");
        }
    }
    let spares_used = journal.stats().spares_used_count;
    drop(journal);
    fs::remove_dir_all(&directory).expect("remove bench directory");
    rolls.sort_unstable();
    ready_ms.sort_unstable();
    let ready = if ready_ms.is_empty() { "-".to_owned() } else { format!("{}-{}", ready_ms[0], ready_ms[ready_ms.len() - 1]) };
    println!(
        "{:<44} {:>12} {:>12} {:>12} {:>16} {:>14} {:>12}",
        name,
        rolls[rolls.len() / 2],
        rolls[rolls.len() - 1],
        spares_used,
        format!("{ready} ({} waits)", ready_ms.len()),
        others.value_at_quantile(0.999),
        others.max()
    );
}

/// True when a record of the bench's size no longer fits the active segment:
/// from the bytes appended so far (every record the same size).
fn next_append_rolls(journal: &Journal, segment_bytes: u64) -> bool {
    use tradebridge_core::journal::layout::{record_bytes, SEGMENT_HEADER_BYTES};
    let per_segment = (segment_bytes - u64::from(SEGMENT_HEADER_BYTES)) / record_bytes(PAYLOAD_BYTES as u32);
    journal.stats().appends_count.is_multiple_of(per_segment)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}
