//! The router's checkpoints: what the router knows as of one journal
//! sequence number, so the journal segments below it can be released and a
//! restart replays only the records above it.
//!
//! # Layout
//! - [`RouterStateRef`] / [`RouterState`]: the state written and read back
//!   (the engine's dynamic state, per-master progress, per-slave copy seqs,
//!   instructions awaiting results and kept copies).
//! - [`CheckpointWriter`]: the background thread that writes a serialized
//!   checkpoint durably and reports back, so no file I/O runs on the router.
//! - [`load`]: the newest usable checkpoint of the journal directory.
//!
//! # Invariants
//! - `RouterStateRef` and `RouterState` serialize field for field alike.
//! - A checkpoint at `seq` is used only when the journal holds every record
//!   above it: `seq + 1 >= first_seq` and `seq <= last_seq`.
//! - The writer removes the other checkpoint files only after the new one
//!   and its directory entry are durable.
//! - A checkpoint ahead of the journal is renamed aside at start, never
//!   loaded later.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context as _;
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};
use tradebridge_core::checkpoint;
use tradebridge_core::config::{ConfigDocument, ConfigDocumentV2};
use tradebridge_core::engine::{CopyInstruction, EngineState, EngineStateRef};
use tradebridge_core::protocol::{Copy, Role};

use crate::accounts::{AccountEntry, AccountTable};

/// One master's progress: (login, highest `event.seq` journaled, journal
/// seq of its record).
pub type MasterProgressEntry = (u64, u64, u64);

/// The router's state as of journal seq `S`, borrowed or built for
/// serialization on the router thread.
#[derive(Serialize)]
pub struct RouterStateRef<'router> {
    /// The engine's dynamic state.
    pub engine: EngineStateRef<'router>,
    /// Per-master progress, by login.
    pub masters: Vec<MasterProgressEntry>,
    /// Last copy `seq` per slave, by login.
    pub copy_seqs: Vec<(u64, u64)>,
    /// Copies awaiting their result per slave, by login then `seq`.
    pub instructions: Vec<(u64, &'router BTreeMap<u64, CopyInstruction>)>,
    /// Copies kept for replay per slave (journaled, not yet known finished),
    /// by login, each in `seq` order.
    pub kept: KeptCopies<'router>,
    /// The configuration the engine runs under, with its generation (0 and
    /// `None` before the journal held one).
    pub config: Option<(u64, &'router ConfigDocument)>,
}

/// Every slave's copies a restart must be able to replay, serialized in
/// place: each slave's delivery is locked while its copies are written, so
/// none is cloned (cloning 99,000 copies took as long as writing them).
pub struct KeptCopies<'router> {
    /// The accounts, whose slaves' deliveries hold the kept copies.
    pub accounts: &'router AccountTable,
    /// Copies journaled but not durable yet (so not kept yet), per slave,
    /// in `seq` order; they follow the kept ones.
    pub waiting: HashMap<u64, Vec<Copy>>,
}

impl Serialize for KeptCopies<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let slaves: Vec<std::sync::Arc<AccountEntry>> = self.accounts.iter().into_iter().filter(|account| account.role == Role::Slave).collect();
        let mut sequence = serializer.serialize_seq(Some(slaves.len()))?;
        for account in &slaves {
            sequence.serialize_element(&SlaveKept { account, waiting: self.waiting.get(&account.login).map_or(&[], Vec::as_slice) })?;
        }
        sequence.end()
    }
}

/// One slave's entry of [`KeptCopies`]: `(login, copies)`.
struct SlaveKept<'router> {
    /// The slave.
    account: &'router AccountEntry,
    /// Its copies not kept yet.
    waiting: &'router [Copy],
}

impl Serialize for SlaveKept<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let delivery = self.account.delivery();
        let copies = delivery.copies.iter().chain(self.waiting);
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.account.login)?;
        tuple.serialize_element(&CopiesOf(std::cell::Cell::new(Some(copies)), delivery.copies.len() + self.waiting.len()))?;
        tuple.end()
    }
}

/// A sequence of known length serialized from an iterator, once.
struct CopiesOf<I>(std::cell::Cell<Option<I>>, usize);

impl<'copy, I: Iterator<Item = &'copy Copy>> Serialize for CopiesOf<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let copies = self.0.take().expect("serialized once");
        let mut sequence = serializer.serialize_seq(Some(self.1))?;
        for copy in copies {
            sequence.serialize_element(copy)?;
        }
        sequence.end()
    }
}

/// The router's state read back from a checkpoint.
#[derive(Deserialize)]
pub struct RouterState {
    /// The engine's dynamic state.
    pub engine: EngineState,
    /// Per-master progress, by login.
    pub masters: Vec<MasterProgressEntry>,
    /// Last copy `seq` per slave, by login.
    pub copy_seqs: Vec<(u64, u64)>,
    /// Copies awaiting their result per slave, by login then `seq`.
    pub instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)>,
    /// Copies kept for replay per slave, by login, each in `seq` order.
    pub kept: Vec<(u64, Vec<Copy>)>,
    /// The configuration the engine ran under, with its generation; `None`
    /// for a checkpoint of version 1 or before the journal held one.
    pub config: Option<(u64, ConfigDocument)>,
}

/// [`RouterState`] as version 1 checkpoints hold it (no configuration).
#[derive(Deserialize)]
struct RouterStateV1 {
    engine: EngineState,
    masters: Vec<MasterProgressEntry>,
    copy_seqs: Vec<(u64, u64)>,
    instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)>,
    kept: Vec<(u64, Vec<Copy>)>,
}

/// [`RouterState`] as version 2 checkpoints hold it (accounts without
/// `allow_from`).
#[derive(Deserialize)]
struct RouterStateV2 {
    engine: EngineState,
    masters: Vec<MasterProgressEntry>,
    copy_seqs: Vec<(u64, u64)>,
    instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)>,
    kept: Vec<(u64, Vec<Copy>)>,
    config: Option<(u64, ConfigDocumentV2)>,
}

/// A checkpoint file's state, of this version or versions 1 and 2.
pub fn decode_state(bytes: &[u8]) -> Result<(u64, RouterState), checkpoint::CheckpointError> {
    checkpoint::decode_versioned(bytes, |version, payload| match version {
        checkpoint::CHECKPOINT_VERSION => postcard::from_bytes(payload).map_err(|error| error.to_string()),
        2 => {
            let old: RouterStateV2 = postcard::from_bytes(payload).map_err(|error| error.to_string())?;
            let config = old.config.map(|(generation, document)| (generation, ConfigDocument::from(document)));
            Ok(RouterState { engine: old.engine, masters: old.masters, copy_seqs: old.copy_seqs, instructions: old.instructions, kept: old.kept, config })
        }
        1 => {
            let old: RouterStateV1 = postcard::from_bytes(payload).map_err(|error| error.to_string())?;
            Ok(RouterState { engine: old.engine, masters: old.masters, copy_seqs: old.copy_seqs, instructions: old.instructions, kept: old.kept, config: None })
        }
        other => Err(format!("version {other}; expected {}, 2 or 1", checkpoint::CHECKPOINT_VERSION)),
    })
}

/// A serialized checkpoint handed to the writer.
struct Job {
    /// Journal seq the state is as of.
    seq: u64,
    /// The checkpoint to keep beside it (0: none).
    previous_seq: u64,
    /// The file's bytes.
    bytes: Vec<u8>,
}

/// What the writer reports for one job.
pub enum Written {
    /// The file at `seq` is durable; older ones are removed.
    Done {
        /// Journal seq of the checkpoint.
        seq: u64,
        /// Its path.
        path: PathBuf,
        /// Bytes written.
        bytes: u64,
        /// Time to write, fsync, rename and remove older files.
        write_ms: u64,
    },
    /// The write failed; the journal keeps its segments.
    Failed {
        /// Journal seq of the checkpoint.
        seq: u64,
        /// Why.
        error: String,
    },
}

/// The background thread that writes checkpoints.
pub struct CheckpointWriter {
    /// Jobs to the thread; `None` once stopping.
    jobs: Option<mpsc::Sender<Job>>,
    /// Reports from the thread.
    reports: mpsc::Receiver<Written>,
    /// The thread, joined on drop so a write in progress completes.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckpointWriter {
    /// Starts the writer for checkpoints in `directory`; it calls `written`
    /// (on its thread) after each report, so a router that sleeps while a
    /// checkpoint holds its input wakes at once.
    pub fn start(directory: PathBuf, written: impl Fn() + Send + 'static) -> anyhow::Result<CheckpointWriter> {
        let (jobs, job_receiver) = mpsc::channel::<Job>();
        let (report_sender, reports) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                for job in job_receiver {
                    let report = write(&directory, job);
                    if report_sender.send(report).is_err() {
                        return;
                    }
                    written();
                }
            })
            .context("starting the checkpoint writer thread")?;
        Ok(CheckpointWriter { jobs: Some(jobs), reports, thread: Some(thread) })
    }

    /// Hands a serialized checkpoint to the thread.
    /// `previous_seq`: the checkpoint the router runs from now (written, or
    /// loaded at start; 0 for none), kept beside the new one; every other
    /// file is removed (an unreadable one the start skipped included).
    pub fn submit(&self, seq: u64, bytes: Vec<u8>, previous_seq: u64) -> anyhow::Result<()> {
        let jobs = self.jobs.as_ref().context("the checkpoint writer is stopping")?;
        jobs.send(Job { seq, bytes, previous_seq }).map_err(|_| anyhow::anyhow!("the checkpoint writer thread has stopped"))
    }

    /// The thread's next report, if one is in.
    pub fn try_report(&self) -> Option<Written> {
        self.reports.try_recv().ok()
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes one checkpoint durably, then removes all but it and the one the
/// router ran from before it.
fn write(directory: &Path, job: Job) -> Written {
    let started = Instant::now();
    let written = checkpoint::write_file(directory, job.seq, &job.bytes).and_then(|path| {
        checkpoint::remove_all_but(directory, &[job.seq, job.previous_seq])?;
        Ok(path)
    });
    match written {
        Ok(path) => Written::Done { seq: job.seq, path, bytes: job.bytes.len() as u64, write_ms: started.elapsed().as_millis() as u64 },
        Err(error) => Written::Failed { seq: job.seq, error: error.to_string() },
    }
}

/// Appended to the name of a checkpoint ahead of the journal.
const AHEAD_SUFFIX: &str = ".ahead";

/// The newest valid checkpoint in `directory` the journal can continue
/// (`seq + 1 >= first_seq`, `seq <= last_seq`); an invalid one is logged and
/// an older one tried. `Ok(None)` when there is none: the caller replays
/// the journal alone if it still starts at seq 1, and fails otherwise.
pub fn load(directory: &Path, first_seq: u64, last_seq: u64) -> anyhow::Result<Option<(u64, RouterState)>> {
    let files = checkpoint::list(directory).with_context(|| format!("listing checkpoints in {}", directory.display()))?;
    for (seq, path) in files {
        if seq > last_seq {
            // From a journal since lost or removed: set aside, so that once
            // the new journal passes its seq it is never taken for its state.
            let mut aside = path.clone().into_os_string();
            aside.push(AHEAD_SUFFIX);
            std::fs::rename(&path, &aside).with_context(|| format!("setting aside {}", path.display()))?;
            tracing::warn!(path = %path.display(), seq, last_seq, aside = ?aside, "checkpoint is ahead of the journal (its records are gone); set aside, trying an older one");
            continue;
        }
        if seq + 1 < first_seq {
            tracing::error!(path = %path.display(), seq, first_seq, "checkpoint is older than the journal's first record; no older checkpoint can be used either");
            break;
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "cannot read checkpoint; trying an older one");
                continue;
            }
        };
        match decode_state(&bytes) {
            Ok((stored_seq, state)) if stored_seq == seq => {
                tracing::info!(path = %path.display(), seq, bytes = bytes.len(), "checkpoint loaded");
                return Ok(Some((seq, state)));
            }
            Ok((stored_seq, _)) => {
                tracing::error!(path = %path.display(), seq, stored_seq, "checkpoint holds another seq than its name; trying an older one");
            }
            Err(error) => tracing::error!(path = %path.display(), %error, "corrupt checkpoint; trying an older one"),
        }
    }
    Ok(None)
}

/// The startup error when the journal no longer starts at seq 1 and no
/// checkpoint covers its start.
pub fn missing_error(directory: &Path, first_seq: u64) -> anyhow::Error {
    let files: Vec<String> = checkpoint::list(directory)
        .map(|files| files.into_iter().map(|(_, path)| path.display().to_string()).collect())
        .unwrap_or_default();
    anyhow::anyhow!(
        "the journal in {} starts at seq {first_seq} (older segments were released) and no valid checkpoint at or above seq {} exists (checkpoint files: [{}]); the state before seq {first_seq} cannot be rebuilt: restore the checkpoint file or start from an empty journal directory",
        directory.display(),
        first_seq - 1,
        files.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradebridge_core::config::Config;
    use tradebridge_core::engine::Engine;

    const CONFIG: &str = r#"[server]
listen = "127.0.0.1:0"
journal_dir = "./unused"

[[account]]
login = 100
server = "S"
role = "master"
key_sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
"#;

    /// Writes a checkpoint at `seq` whose master progress is `seq` too.
    fn write_checkpoint(directory: &Path, engine: &Engine, seq: u64) -> PathBuf {
        let accounts = AccountTable::new(&Config::from_toml_str(CONFIG).expect("config"), 0);
        let kept = KeptCopies { accounts: &accounts, waiting: HashMap::new() };
        let state = RouterStateRef { engine: engine.state(), masters: vec![(100, seq, seq)], copy_seqs: vec![], instructions: vec![], kept, config: None };
        checkpoint::write_file(directory, seq, &checkpoint::encode(seq, &state, 0).expect("serializes")).expect("writes")
    }

    #[test]
    fn a_version_1_checkpoint_still_loads_without_a_configuration() {
        // Shows: a checkpoint written before the configuration was part of the state (version 1) loads, with no configuration, and the current version round-trips one.
        #[derive(Serialize)]
        struct V1<'engine> {
            engine: EngineStateRef<'engine>,
            masters: Vec<MasterProgressEntry>,
            copy_seqs: Vec<(u64, u64)>,
            instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)>,
            kept: Vec<(u64, Vec<Copy>)>,
        }
        let config = Config::from_toml_str(CONFIG).expect("config");
        let engine = Engine::new(&config);
        let old = V1 { engine: engine.state(), masters: vec![(100, 7, 7)], copy_seqs: vec![(5, 3)], instructions: vec![], kept: vec![] };
        let bytes = checkpoint::encode_version(1, 7, &old, 0).expect("serializes");
        let (seq, state) = decode_state(&bytes).expect("version 1 reads");
        assert_eq!((seq, state.masters, state.copy_seqs, state.config.is_none()), (7, vec![(100, 7, 7)], vec![(5, 3)], true));
        let accounts = AccountTable::new(&config, 0);
        let document = config.document("test");
        let kept = KeptCopies { accounts: &accounts, waiting: HashMap::new() };
        let now = RouterStateRef { engine: engine.state(), masters: vec![], copy_seqs: vec![], instructions: vec![], kept, config: Some((3, &document)) };
        let (_, state) = decode_state(&checkpoint::encode(8, &now, 0).expect("serializes")).expect("reads");
        assert_eq!(state.config, Some((3, document)));
        match decode_state(&checkpoint::encode_version(9, 1, &old, 0).expect("serializes")) {
            Err(error) => assert!(error.to_string().contains("version 9"), "{error}"),
            Ok(_) => panic!("an unknown version was read"),
        }
    }

    #[test]
    fn a_version_2_checkpoint_loads_its_accounts_without_allow_from() {
        // Shows: a checkpoint of version 2 (accounts before allow_from) loads, its configuration's accounts read back with an empty allow_from.
        #[derive(Serialize)]
        struct V2<'engine> {
            engine: EngineStateRef<'engine>,
            masters: Vec<MasterProgressEntry>,
            copy_seqs: Vec<(u64, u64)>,
            instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)>,
            kept: Vec<(u64, Vec<Copy>)>,
            config: Option<(u64, ConfigDocumentV2)>,
        }
        let config = Config::from_toml_str(CONFIG).expect("config");
        let engine = Engine::new(&config);
        let document = config.document("test");
        let accounts = document
            .accounts
            .iter()
            .map(|account| tradebridge_core::config::AccountConfigV2 {
                login: account.login,
                server: account.server.clone(),
                role: account.role,
                key_sha256: account.key_sha256,
                enabled: account.enabled,
                platform: account.platform.clone(),
                previous_keys: account.previous_keys.clone(),
                contracts: account.contracts.clone(),
                risk: account.risk.clone(),
            })
            .collect();
        let old_document = ConfigDocumentV2 { source: document.source.clone(), accounts, follows: document.follows.clone() };
        let old = V2 { engine: engine.state(), masters: vec![(100, 7, 7)], copy_seqs: vec![], instructions: vec![], kept: vec![], config: Some((4, old_document)) };
        let (seq, state) = decode_state(&checkpoint::encode_version(2, 7, &old, 0).expect("serializes")).expect("version 2 reads");
        assert_eq!((seq, state.config), (7, Some((4, document))));
    }

    #[test]
    fn load_falls_back_from_a_corrupt_or_unusable_checkpoint() {
        // Shows: the newest valid checkpoint the journal continues is loaded; a corrupt newest one falls back to an older one; one ahead of the journal or below its first seq is not used, and the startup error names the files.
        let directory = std::env::temp_dir().join(format!("tradebridge-net-checkpoint-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("temp directory");
        let engine = Engine::new(&Config::from_toml_str(CONFIG).expect("config"));
        write_checkpoint(&directory, &engine, 10);
        let newest = write_checkpoint(&directory, &engine, 20);
        let seq_of = |first_seq, last_seq| load(&directory, first_seq, last_seq).expect("load").map(|(seq, state)| (seq, state.masters));
        assert_eq!(seq_of(5, 30), Some((20, vec![(100, 20, 20)])));
        let mut bytes = std::fs::read(&newest).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&newest, bytes).expect("corrupt");
        assert_eq!(seq_of(5, 30), Some((10, vec![(100, 10, 10)])), "a corrupt newest falls back");
        assert_eq!(seq_of(12, 30), None, "checkpoint 10 leaves a gap before journal seq 12");
        write_checkpoint(&directory, &engine, 40);
        assert_eq!(seq_of(5, 30), Some((10, vec![(100, 10, 10)])), "a checkpoint ahead of the journal is skipped");
        assert!(directory.join("checkpoint-00000000000000000040.bin.ahead").exists(), "and set aside");
        assert_eq!(seq_of(5, 50), Some((10, vec![(100, 10, 10)])), "never loaded once the journal passes it");
        let message = missing_error(&directory, 12).to_string();
        assert!(message.contains("starts at seq 12") && message.contains("checkpoint-00000000000000000010.bin"), "{message}");
        let _ = std::fs::remove_dir_all(&directory);
    }
}
