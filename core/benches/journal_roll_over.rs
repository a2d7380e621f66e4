//! How long the append that rolls the journal over to a new segment takes,
//! with the next segment prepared ahead on a spare (`spare_segment`, the
//! default) and without, under `Group` and `Os`; beside it, what the
//! roll-over did before segments were preallocated with `fallocate`: write
//! the segment's zeros (and fsync them under a durable policy).
//!
//! Run: `cargo bench -p tradebridge-core --bench journal_roll_over`
//! Environment knobs (optional): `JOURNAL_BENCH_DIR` (default: the system
//! temporary directory; it must be a real disk), `ROLL_OVER_SEGMENT_BYTES`
//! (default 64 MiB, the bridge's default segment), `ROLL_OVER_COUNT`
//! (roll-overs per scenario, default 6).
//!
//! Method: 200-byte records are appended back to back; each append is timed
//! (`Instant` around the call). The appends that created a segment
//! (`segments_created_count` grew) are reported on their own, every time;
//! the others as a p99.9 and max. Under `Group` the journal is flushed
//! every 64 records (the clock passed in stands still, so the interval
//! never closes a group). Between roll-overs the spare has as
//! long as filling a segment takes here (well under a second for `Os`), far
//! less than at the bridge's rate, so a spare that is not ready yet shows up
//! as a slow roll-over rather than being hidden.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
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
    println!("{:<44} {:>12} {:>12} {:>12} {:>14} {:>12}", "scenario", "roll p50 us", "roll max us", "spares used", "other p99.9 us", "other max us");
    let group = SyncPolicy::Group { records_max: 64, interval_ms: 2 };
    for (name, policy, spare) in [
        ("Group, spare prepared in the background", group, true),
        ("Group, no spare (fallocate at roll-over)", group, false),
        ("Os, spare prepared in the background", SyncPolicy::Os, true),
        ("Os, no spare (fallocate at roll-over)", SyncPolicy::Os, false),
    ] {
        measure(&base, name, policy, spare, segment_bytes, roll_overs);
    }
    for durable in [true, false] {
        let directory = base.join(format!("tradebridge-roll-over-zeros-{}", std::process::id()));
        fs::create_dir_all(&directory).expect("bench directory");
        let mut times = Vec::new();
        for _ in 0..roll_overs {
            let path = directory.join("zeros.seg.tmp");
            let started = Instant::now();
            write_zeros(&path, segment_bytes, durable);
            times.push(started.elapsed().as_micros() as u64);
            fs::remove_file(&path).expect("remove");
        }
        fs::remove_dir_all(&directory).expect("remove bench directory");
        times.sort_unstable();
        let name = if durable { "before: write zeros + fsync (Group)" } else { "before: write zeros (Os)" };
        println!("{:<44} {:>12} {:>12} {:>12} {:>14} {:>12}", name, times[times.len() / 2], times[times.len() - 1], "-", "-", "-");
    }
}

fn measure(base: &Path, name: &str, policy: SyncPolicy, spare: bool, segment_bytes: u64, roll_overs: u64) {
    let directory = base.join(format!("tradebridge-roll-over-{}-{}", std::process::id(), name.len()));
    let _ = fs::remove_dir_all(&directory);
    let options = JournalOptions { segment_bytes, sync: policy, spare_segment: spare, ..JournalOptions::default() };
    let (mut journal, _) = Journal::open(&directory, options).expect("open the bench journal");
    let payload = vec![0x5Au8; PAYLOAD_BYTES];
    let mut rolls = Vec::new();
    let mut others = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    while (rolls.len() as u64) < roll_overs {
        let created = journal.stats().segments_created_count;
        let started = Instant::now();
        journal.append(1, &payload, 0).expect("append");
        let took_us = started.elapsed().as_nanos() as u64 / 1_000;
        if journal.stats().segments_created_count > created {
            rolls.push(took_us);
        } else {
            others.record(took_us.max(1)).expect("record");
        }
    }
    let spares_used = journal.stats().spares_used_count;
    drop(journal);
    fs::remove_dir_all(&directory).expect("remove bench directory");
    rolls.sort_unstable();
    println!(
        "{:<44} {:>12} {:>12} {:>12} {:>14} {:>12}",
        name,
        rolls[rolls.len() / 2],
        rolls[rolls.len() - 1],
        spares_used,
        others.value_at_quantile(0.999),
        others.max()
    );
}

fn write_zeros(path: &Path, bytes: u64, durable: bool) {
    let zeros = vec![0u8; 64 << 10];
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(path).expect("create");
    let mut remaining = bytes;
    while remaining > 0 {
        let chunk = remaining.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..chunk]).expect("write zeros");
        remaining -= chunk as u64;
    }
    if durable {
        file.sync_all().expect("fsync");
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}
