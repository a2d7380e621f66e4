//! `loadtest gen-config`: writes a bridge configuration for M masters x K
//! slaves and the keys file the harness reads, for runs against a bridge
//! started by hand (`--url ... --config ...`).
//!
//! # Invariants
//! - Existing files are never overwritten.
//! - The keys file is readable by its owner only (it holds clear keys).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::common::rate_limits;
use crate::cli::Arguments;
use crate::fleet::{Fleet, ServerSettings};

pub fn gen_config(arguments: &Arguments) -> anyhow::Result<u8> {
    let masters = arguments.checked("--masters", 10u32, "1 to 100000 masters", |value| (1..=100_000).contains(&value))?;
    let slaves_per_master = arguments.checked("--slaves-per-master", 10u32, "0 to 10000 slaves", |value| value <= 10_000)?;
    let out = PathBuf::from(arguments.text("--out").ok_or_else(|| anyhow::anyhow!("--out DIR is required: where bridge.toml and keys.tsv go"))?);
    let listen = arguments.value("--listen", "127.0.0.1:8080".parse()?, "ip:port")?;
    let metrics = arguments.text("--metrics-listen").unwrap_or_else(|| "127.0.0.1:9100".into());
    let metrics_listen = if metrics == "none" { None } else { Some(metrics.parse().map_err(|_| anyhow::anyhow!("--metrics-listen {metrics:?}: expected ip:port or none"))?) };
    let journal_dir = PathBuf::from(arguments.text("--journal-dir").unwrap_or_else(|| out.join("journal").display().to_string()));
    let journal_sync = arguments.text("--journal-sync");
    let hb_ms = arguments.checked("--hb-ms", 5_000u64, "milliseconds from 500 to 60000", |value| (500..=60_000).contains(&value))?;
    let rate = arguments.checked("--rate", 1000.0f64, "the peak events per second the config must allow", |value: f64| value > 0.0)?;
    arguments.finish()?;
    let fleet = Fleet::generate(masters, slaves_per_master)?;
    let (rate_limit_per_second, rate_limit_burst) = rate_limits(&fleet, rate);
    let accounts = (fleet.masters.len() + fleet.slaves.len()) as u32;
    let settings = ServerSettings { listen, journal_dir, metrics_listen, journal_sync, idle: None, routing: None, journal_flush: None, hot_thread_slice_us: None, shards: None, hb_ms, rate_limit_per_second, rate_limit_burst, connections_max: accounts.saturating_mul(2).max(20_000) };
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}: cannot create it", out.display()))?;
    let config_path = out.join("bridge.toml");
    let keys_path = out.join("keys.tsv");
    write_new(&config_path, &fleet.config_toml(&settings), 0o644)?;
    write_new(&keys_path, &fleet.keys_text(), 0o600)?;
    println!("wrote {} and {} ({masters} masters, {} slaves)", config_path.display(), keys_path.display(), fleet.slaves.len());
    println!("start the bridge:  tradebridge serve --config {}", config_path.display());
    println!("then load it:      loadtest fanout --url ws://{listen}/ea --config {} --masters {masters} --slaves-per-master {slaves_per_master}", config_path.display());
    Ok(0)
}

/// Creates `path` with `text`, refusing an existing file.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => bail!("{} exists; gen-config never overwrites (choose another --out)", path.display()),
        Err(error) => return Err(error).with_context(|| format!("creating {}", path.display())),
    };
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
