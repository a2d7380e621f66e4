//! `tradebridge journal check` and `tradebridge journal quarantine`: the
//! operator's supported way to look at a damaged journal and past it.
//!
//! - `check` reads every segment and checkpoint and changes nothing (it
//!   takes no lock, so it may run beside a live bridge, which then may be
//!   writing the last segment as it is read).
//! - `quarantine` opens the journal as the bridge would, but with
//!   `SealedCorruption::Salvage`: a damaged segment is copied aside whole,
//!   cut at the damage, and every valid record after it kept in new
//!   segments; a broken chain of segments is quarantined (renamed aside) and
//!   the journal continues above every number it may have issued. It needs
//!   the bridge stopped (the journal's lock).

use std::fmt::Write as _;

use anyhow::Context as _;
use tradebridge_core::checkpoint;
use tradebridge_core::config::Config;
use tradebridge_core::journal::{inspect, Journal, JournalError, SealedCorruption};

use crate::router::{journal_options, log_recovery};

/// What `journal check` found: the text to print, and whether the bridge
/// would refuse to start on this journal.
pub struct Checked {
    pub report: String,
    pub refuses_start: bool,
}

/// Inspects the journal and the checkpoints in `server.journal_dir`.
pub fn check(config: &Config) -> anyhow::Result<Checked> {
    let directory = &config.server.journal_dir;
    let inspection = inspect(directory).with_context(|| format!("inspecting the journal in server.journal_dir = {}", directory.display()))?;
    let mut report = String::new();
    let _ = writeln!(report, "journal {}: {} segments", directory.display(), inspection.segments.len());
    for segment in &inspection.segments {
        let name = segment.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let skip = if segment.skipped_from_seq > 0 { format!(" (numbers from {} skipped before it)", segment.skipped_from_seq) } else { String::new() };
        let _ = writeln!(report, "  {name}: seq {} + {} valid records{skip}: {}", segment.first_seq, segment.records, segment.state);
    }
    for path in &inspection.quarantined_files {
        let _ = writeln!(report, "  set aside earlier: {}", path.display());
    }
    let checkpoints = checkpoint::list(directory).with_context(|| format!("listing checkpoints in {}", directory.display()))?;
    if checkpoints.is_empty() {
        let _ = writeln!(report, "checkpoints: none (the journal is replayed from its first record)");
    }
    for (seq, path) in checkpoints {
        let state = match std::fs::read(&path) {
            Err(error) => format!("UNREADABLE: {error}"),
            Ok(bytes) => match crate::checkpoint::decode_state(&bytes) {
                Ok((stored_seq, _)) if stored_seq == seq => "valid".to_owned(),
                Ok((stored_seq, _)) => format!("CORRUPT: holds seq {stored_seq}, not its name's"),
                Err(error) => format!("CORRUPT: {error}; an older one is used"),
            },
        };
        let _ = writeln!(report, "checkpoint {}: seq {seq}: {state}", path.display());
    }
    let refuses_start = inspection.refuses_open();
    if refuses_start {
        let _ = writeln!(report, "the bridge refuses to start on this journal: `tradebridge journal quarantine --config <file>` sets the damage aside, keeping every valid record");
    } else {
        let _ = writeln!(report, "the bridge can start on this journal");
    }
    Ok(Checked { report, refuses_start })
}

/// Opens the journal with salvage; returns the report of what was done.
pub fn quarantine(config: &Config) -> anyhow::Result<String> {
    let directory = &config.server.journal_dir;
    let options = tradebridge_core::journal::JournalOptions { sealed_corruption: SealedCorruption::Salvage, ..journal_options(config) };
    let (journal, recovery) = match Journal::open(directory, options) {
        Ok(opened) => opened,
        Err(error @ JournalError::Locked { .. }) => {
            return Err(anyhow::anyhow!("{error}: stop the bridge first (systemctl stop tradebridge)"));
        }
        Err(error) => return Err(error).with_context(|| format!("opening the journal in server.journal_dir = {} to salvage it", directory.display())),
    };
    log_recovery(&recovery);
    drop(journal);
    let mut report = String::new();
    let changed = !recovery.salvaged.is_empty() || !recovery.quarantined_segments.is_empty() || recovery.truncation.is_some();
    for salvaged in &recovery.salvaged {
        let lost: Vec<String> = salvaged.lost_seqs.iter().map(|(from, to)| if to - from == 1 { format!("{from}") } else { format!("{from}..={}", to - 1) }).collect();
        let _ = writeln!(
            report,
            "salvaged {}: cut at offset {} ({}); {} valid records after it kept in {} new segments; journal seq {} no longer held; the file as found is {}",
            salvaged.path.display(),
            salvaged.offset,
            salvaged.defect,
            salvaged.records_kept,
            salvaged.new_segments.len(),
            if lost.is_empty() { "none".to_owned() } else { lost.join(", ") },
            salvaged.evidence.display()
        );
    }
    for path in &recovery.quarantined_segments {
        let _ = writeln!(report, "quarantined {} (its records are no longer replayed)", path.display());
    }
    if let Some(skipped) = recovery.skipped_seqs {
        let _ = writeln!(report, "numbers {}..{} skipped: the journal continues at {}", skipped.from_seq, skipped.next_seq, skipped.next_seq);
    }
    if let Some(truncation) = &recovery.truncation {
        let _ = writeln!(report, "cut {} at offset {} ({}), {} bytes zeroed", truncation.path.display(), truncation.offset, truncation.defect, truncation.bytes_zeroed);
    }
    if !changed {
        let _ = writeln!(report, "nothing to set aside: the journal opens as it is");
    }
    let _ = writeln!(report, "journal {}: {} records, last seq {}", directory.display(), recovery.records_count, recovery.last_seq);
    Ok(report)
}
