//! Journal records turned into the rows of the schema (migrations/0001).
//!
//! # Layout
//! - [`Batch`]: the rows of consecutive journal records, per table, plus
//!   the records that could not be decoded (they become dead letters) and
//!   the last journal seq covered.
//! - [`Decoder`]: one record at a time, in journal order. It remembers the
//!   cause of the copies and skips that follow (the master event, result
//!   or update the router journals right before them), which gives each
//!   copy its issue time and the master event seq behind it.
//!
//! # Invariants
//! - Every journal record of a persisted kind yields its rows or a dead
//!   letter, never nothing: nothing is dropped silently.
//! - A copy's `issued_at` is its cause's bridge receive time plus the
//!   router's monotonic delay from that receipt (`routed_ns` minus the
//!   cause's `received_ns`, the same clock); when the copy carries no
//!   such stamp (a result's follow-ups, copies a restart issued again)
//!   it is the cause's receive time. The cause is the last
//!   master event, result or update before the copy in the journal; a
//!   decoder started mid-journal is primed on the records before its start
//!   (the persister's `prime`), and where even that did not reach the
//!   cause, `issued_at` (and a skip's `skipped_at`) is NULL, never a guess.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rkyv::util::AlignedVec;
use tradebridge_core::journal::reader::OwnedRecord;
use tradebridge_core::engine::SkipReason;
use tradebridge_core::protocol::{self, Message};
use tradebridge_core::record::{
    access_checked, decode_config_part, decode_session, decode_skips, decode_update, journal_kind, ConfigAssembler, CopyRecord, MasterEventRecord, ResultRecord,
    SessionEvent,
};
use tradebridge_core::config::ConfigDocument;

/// The latest time a row holds: 9999-12-31T23:59:59.999Z, within what
/// both `SystemTime` and Postgres' `timestamptz` can hold. A terminal's
/// `time_ms` past it is kept as NULL.
pub const TIME_MS_MAX: u64 = 253_402_300_799_999;

/// `slave_symbols.digits` at most (a terminal reports 0 to 8).
pub const DIGITS_MAX: u32 = 15;

/// A time in ms since the epoch (at most [`TIME_MS_MAX`]).
pub fn time_of_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.min(TIME_MS_MAX))
}

/// `master_events`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MasterEventRow {
    pub journal_seq: i64,
    pub master_login: u64,
    pub seq: u64,
    pub kind: &'static str,
    pub pos: u64,
    pub ticket: u64,
    pub symbol: String,
    pub side: Option<&'static str>,
    pub volume: f64,
    pub price: f64,
    pub sl: f64,
    pub tp: f64,
    pub magic: u64,
    pub comment: String,
    pub remaining: Option<f64>,
    /// The master terminal's `time_ms`; `None` when it sent 0.
    pub terminal_ms: Option<u64>,
    pub received_ms: u64,
}

/// `copies`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CopyRow {
    pub journal_seq: i64,
    pub slave_login: u64,
    pub seq: u64,
    pub copy_id: String,
    pub master_login: u64,
    pub master_pos: u64,
    /// The master event behind the copy; `None` for reconciliation and
    /// follow-ups of results.
    pub master_seq: Option<u64>,
    pub action: &'static str,
    pub symbol: String,
    pub side: &'static str,
    pub volume: f64,
    pub price: f64,
    pub max_dev: f64,
    pub sl: f64,
    pub tp: f64,
    pub magic: u64,
    pub comment: String,
    /// `None` for copies that never expire.
    pub expires_ms: Option<u64>,
    /// `None` when the cause was not found (see [`Decoder`]).
    pub issued_ms: Option<u64>,
}

/// `copy_results`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResultRow {
    pub journal_seq: i64,
    pub slave_login: u64,
    pub seq: u64,
    pub status: &'static str,
    pub ticket: u64,
    pub price: f64,
    pub volume: f64,
    pub error: i64,
    pub msg: String,
    pub exec_ms: u64,
    pub received_ms: u64,
}

/// `skips`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SkipRow {
    pub journal_seq: i64,
    /// Its place among the skips of its record (one follower may have
    /// several, one per position a reconciliation looked at).
    pub entry: i32,
    pub slave_login: u64,
    pub master_login: u64,
    pub master_seq: Option<u64>,
    pub master_pos: u64,
    pub reason: &'static str,
    /// `None` when the cause was not found (see [`Decoder`]).
    pub skipped_ms: Option<u64>,
}

/// `slave_symbols` (the latest report of each symbol wins).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SymbolRow {
    pub journal_seq: i64,
    pub slave_login: u64,
    pub name: String,
    pub digits: i32,
    pub volume_min: f64,
    pub volume_max: f64,
    pub volume_step: f64,
    pub contract: f64,
    pub updated_ms: u64,
}

/// `sessions`: a session's start (its row).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SessionRow {
    pub journal_seq: i64,
    pub session_id: String,
    pub login: u64,
    pub role: &'static str,
    pub remote_address: String,
    pub connected_ms: u64,
}

/// `sessions`: a session's end, filled into its row.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SessionEnd {
    pub journal_seq: i64,
    pub session_id: String,
    pub disconnected_ms: u64,
    /// `None` when the peer went away without a close frame from the bridge.
    pub close_code: Option<i32>,
    pub close_reason: Option<String>,
}

/// The bridge started: sessions still open in `sessions` (all of an earlier
/// process, which stopped without recording their end) end at this time.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BridgeStart {
    pub journal_seq: i64,
    pub started_ms: u64,
}

/// An `audit_log` row: a configuration the bridge runs under from a journal
/// record on (at start or by a reload), with what changed since the one
/// before when the persister read that one too. Logins and follow pairs
/// only: never a key or its hash.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub journal_seq: i64,
    pub at_ms: u64,
    pub actor: String,
    pub action: &'static str,
    pub subject: String,
    /// JSON text.
    pub before: Option<String>,
    /// JSON text.
    pub after: String,
}

/// `audit_log.action` of a configuration applied.
pub const CONFIGURATION_APPLIED: &str = "configuration applied";

/// `audit_log.action` of a refused `hello`.
pub const AUTHENTICATION_FAILED: &str = "authentication failed";

/// What changed between two configurations, by key: `+account 5`,
/// `-account 3`, `~account 2` (changed), and the same for `follow S<M`, in
/// the order of core's [`ConfigDocument::diff`].
fn config_changes(before: &ConfigDocument, after: &ConfigDocument) -> Vec<String> {
    use tradebridge_core::config::ConfigOp;
    let had_account = |login: u64| before.accounts.iter().any(|account| account.login == login);
    let had_follow = |slave: u64, master: u64| before.follows.iter().any(|follow| (follow.slave, follow.master) == (slave, master));
    before
        .diff(after)
        .ops
        .iter()
        .map(|op| match op {
            ConfigOp::RemoveAccount { login } => format!("-account {login}"),
            ConfigOp::UpsertAccount { account } => format!("{}account {}", if had_account(account.login) { '~' } else { '+' }, account.login),
            ConfigOp::RemoveFollow { slave, master } => format!("-follow {slave}<{master}"),
            ConfigOp::UpsertFollow { follow } => format!("{}follow {}<{}", if had_follow(follow.slave, follow.master) { '~' } else { '+' }, follow.slave, follow.master),
        })
        .collect()
}

/// The reason `sessions.close_reason` gives to sessions a restart ended.
pub const ENDED_BY_RESTART: &str = "the bridge stopped (its restart recorded the end)";

/// A record that could not be turned into rows, kept as a dead letter.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    pub journal_seq: i64,
    pub kind: u16,
    pub reason: String,
}

/// Journal records `[from_seq, to_seq)` the persister could not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub from_seq: u64,
    pub to_seq: u64,
    /// True: the journal released them before they were read; false: they
    /// were never written (recovery set a damaged segment aside).
    pub released: bool,
}

impl Gap {
    /// `persist_gaps.reason`.
    pub fn reason(&self) -> &'static str {
        if self.released {
            "the journal released these records before the persister read them (Postgres was away while the journal neared journal_bytes_max)"
        } else {
            "the journal never held these records: recovery set a damaged segment aside and numbered on above it (see the bridge's log at that start)"
        }
    }
}

/// The rows of consecutive journal records.
#[derive(Debug, Default)]
pub struct Batch {
    pub master_events: Vec<MasterEventRow>,
    pub copies: Vec<CopyRow>,
    pub results: Vec<ResultRow>,
    pub skips: Vec<SkipRow>,
    pub symbols: Vec<SymbolRow>,
    pub sessions: Vec<SessionRow>,
    /// In journal order, applied after `sessions`.
    pub session_ends: Vec<SessionEnd>,
    /// In journal order, applied after `session_ends`.
    pub bridge_starts: Vec<BridgeStart>,
    /// In journal order.
    pub audits: Vec<AuditRow>,
    pub undecodable: Vec<Undecodable>,
    /// Records missing from the journal: the batch ends with them, and
    /// `persist_gaps` gets a row in its transaction.
    pub gap: Option<Gap>,
    /// Highest journal seq these rows cover (0: none yet).
    pub last_journal_seq: u64,
    /// Bridge receive time of the first record (for the lag gauge).
    pub first_received_ms: Option<u64>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.master_events.len()
            + self.copies.len()
            + self.results.len()
            + self.skips.len()
            + self.symbols.len()
            + self.sessions.len()
            + self.session_ends.len()
            + self.audits.len()
            + self.undecodable.len()
    }

    pub fn clear(&mut self) {
        self.master_events.clear();
        self.copies.clear();
        self.results.clear();
        self.skips.clear();
        self.symbols.clear();
        self.sessions.clear();
        self.session_ends.clear();
        self.bridge_starts.clear();
        self.audits.clear();
        self.undecodable.clear();
        self.gap = None;
        self.last_journal_seq = 0;
        self.first_received_ms = None;
    }
}

/// What caused the copies and skips that follow it in the journal.
#[derive(Clone, Copy, Debug, Default)]
struct Cause {
    received_ms: u64,
    /// The router's monotonic stamp of the receipt; 0 when unknown.
    received_ns: u64,
    /// The master event, when the cause is one: (login, seq).
    master_event: Option<(u64, u64)>,
}

/// Turns journal records into rows, in journal order.
#[derive(Default)]
pub struct Decoder {
    cause: Cause,
    /// Joins the parts of configuration records.
    config_parts: ConfigAssembler,
    /// The last configuration read, with its generation, to say what the
    /// next one changed.
    config_last: Option<(u64, ConfigDocument)>,
    /// An aligned copy of the payload being read (rkyv needs alignment).
    aligned: AlignedVec<16>,
}

impl Decoder {
    /// Forgets the cause: the records after a gap may follow one it lost.
    pub fn forget_cause(&mut self) {
        self.cause = Cause::default();
    }

    /// Adds the rows of `record` to `batch`.
    pub fn decode(&mut self, record: &OwnedRecord, batch: &mut Batch) {
        let journal_seq = record.seq as i64;
        let outcome = match record.kind {
            journal_kind::MASTER_EVENT => self.master_event(journal_seq, &record.payload, batch),
            journal_kind::COPY => self.copy(journal_seq, &record.payload, batch),
            journal_kind::RESULT => self.result(journal_seq, &record.payload, batch),
            journal_kind::UPDATE => self.update(journal_seq, &record.payload, batch),
            journal_kind::SKIPS => self.skips(journal_seq, &record.payload, batch),
            journal_kind::SESSION => Decoder::session(journal_seq, &record.payload, batch),
            journal_kind::CONFIG => self.config(journal_seq, &record.payload, batch),
            // A rebase is no row, but it is an input: the copies it issues
            // again follow it, with no master event and no known time.
            journal_kind::SLAVE_SEQ => {
                self.forget_cause();
                Ok(())
            }
            other => Err(format!("journal record kind {other} is unknown to this persister")),
        };
        if let Err(reason) = outcome {
            batch.undecodable.push(Undecodable { journal_seq, kind: record.kind, reason });
        }
        batch.last_journal_seq = batch.last_journal_seq.max(record.seq);
    }

    /// Copies `payload` into the aligned buffer (a field of its own, so
    /// the rest of `self` stays free while the archive is read).
    fn fill(aligned: &mut AlignedVec<16>, payload: &[u8]) {
        aligned.clear();
        aligned.extend_from_slice(payload);
    }

    fn master_event(&mut self, journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        Decoder::fill(&mut self.aligned, payload);
        let record = access_checked::<MasterEventRecord>(&self.aligned).map_err(|error| error.to_string())?;
        let event = record.to_event().map_err(|error| error.to_string())?;
        let login = record.master_login.to_native();
        let received_ms = record.received_ms.to_native();
        self.cause = Cause { received_ms, received_ns: record.received_ns.to_native(), master_event: Some((login, event.seq)) };
        batch.first_received_ms.get_or_insert(received_ms);
        batch.master_events.push(MasterEventRow {
            journal_seq,
            master_login: login,
            seq: event.seq,
            kind: event.kind.as_str(),
            pos: event.pos,
            ticket: event.ticket,
            symbol: event.symbol,
            side: event.side.map(protocol::Side::as_str),
            volume: event.volume,
            price: event.price,
            sl: event.sl,
            tp: event.tp,
            magic: event.magic,
            comment: event.comment,
            remaining: event.remaining,
            terminal_ms: (event.time_ms != 0 && event.time_ms <= TIME_MS_MAX).then_some(event.time_ms),
            received_ms,
        });
        Ok(())
    }

    fn copy(&mut self, journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        Decoder::fill(&mut self.aligned, payload);
        let record = access_checked::<CopyRecord>(&self.aligned).map_err(|error| error.to_string())?;
        let copy = record.to_copy().map_err(|error| error.to_string())?;
        let routed_ns = record.routed_ns.to_native();
        let event_received_ns = record.event_received_ns.to_native();
        let cause = self.cause;
        let delay_ms = if cause.received_ns != 0 && event_received_ns == cause.received_ns && routed_ns >= event_received_ns {
            (routed_ns - event_received_ns) / 1_000_000
        } else {
            0
        };
        // The router journals a cause's copies right after it, so copies
        // after a master event are that event's (also those issued again by
        // a restart, which carry no monotonic stamp).
        let master_seq = cause.master_event.filter(|(login, _)| *login == copy.master).map(|(_, seq)| seq);
        batch.copies.push(CopyRow {
            journal_seq,
            slave_login: record.slave_login.to_native(),
            seq: copy.seq,
            copy_id: copy.id,
            master_login: copy.master,
            master_pos: copy.pos,
            master_seq,
            action: copy.action.as_str(),
            symbol: copy.symbol,
            side: copy.side.as_str(),
            volume: copy.volume,
            price: copy.price,
            max_dev: copy.max_dev,
            sl: copy.sl,
            tp: copy.tp,
            magic: copy.magic,
            comment: copy.comment,
            expires_ms: (copy.expires_ms != 0 && copy.expires_ms <= TIME_MS_MAX).then_some(copy.expires_ms),
            issued_ms: (cause.received_ms != 0).then_some(cause.received_ms + delay_ms),
        });
        Ok(())
    }

    fn result(&mut self, journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        Decoder::fill(&mut self.aligned, payload);
        let record = access_checked::<ResultRecord>(&self.aligned).map_err(|error| error.to_string())?;
        let result = record.to_result().map_err(|error| error.to_string())?;
        let received_ms = record.received_ms.to_native();
        // Follow-up copies of a result carry no monotonic stamp of it.
        self.cause = Cause { received_ms, received_ns: 0, master_event: None };
        batch.first_received_ms.get_or_insert(received_ms);
        batch.results.push(ResultRow {
            journal_seq,
            slave_login: record.slave_login.to_native(),
            seq: result.seq,
            status: result.status.as_str(),
            ticket: result.ticket,
            price: result.price,
            volume: result.volume,
            error: i64::from(result.error),
            msg: result.msg,
            exec_ms: result.exec_ms,
            received_ms,
        });
        Ok(())
    }

    fn update(&mut self, journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        let (received_ms, login, _connection, json) = decode_update(payload).map_err(|error| error.to_string())?;
        self.cause = Cause { received_ms, received_ns: 0, master_event: None };
        batch.first_received_ms.get_or_insert(received_ms);
        let message = protocol::parse(json).map_err(|error| format!("journaled update: {error}"))?;
        let symbols = match message {
            Message::State(state) => state.symbols.unwrap_or_default(),
            Message::Symbols(symbols) => symbols.symbols,
            // A master's snapshot: its effect is in the copies that follow.
            _ => Vec::new(),
        };
        for symbol in symbols {
            batch.symbols.push(SymbolRow {
                journal_seq,
                slave_login: login,
                name: symbol.name,
                // A terminal's digits are 0 to 8; beyond 15 a price has no
                // more digits to count in a double.
                digits: symbol.digits.min(DIGITS_MAX) as i32,
                volume_min: symbol.min,
                volume_max: symbol.max,
                volume_step: symbol.step,
                contract: symbol.contract,
                updated_ms: received_ms,
            });
        }
        Ok(())
    }

    fn skips(&mut self, journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        let entries = decode_skips(payload).map_err(|error| error.to_string())?;
        let cause = self.cause;
        for (index, entry) in entries.into_iter().enumerate() {
            let reason = SkipReason::from_index(entry.reason)
                .ok_or_else(|| format!("skip reason code {} is unknown to this persister (a newer bridge?)", entry.reason))?;
            let master_seq = cause.master_event.filter(|(login, _)| *login == entry.master).map(|(_, seq)| seq);
            batch.skips.push(SkipRow {
                journal_seq,
                entry: i32::try_from(index).unwrap_or(i32::MAX),
                slave_login: entry.slave,
                master_login: entry.master,
                master_seq,
                master_pos: entry.pos,
                reason: reason.as_str(),
                skipped_ms: (cause.received_ms != 0).then_some(cause.received_ms),
            });
        }
        Ok(())
    }

    /// One part of a configuration record; its audit row with the last part.
    fn config(&mut self, journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        let part = decode_config_part(payload).map_err(|error| error.to_string())?;
        let Some((generation, applied_ms, bytes)) = self.config_parts.push(&part).map_err(|error| error.to_string())? else {
            return Ok(());
        };
        let document: ConfigDocument = serde_json::from_slice(&bytes).map_err(|error| format!("configuration {generation}: {error}"))?;
        let summary = |generation: u64, document: &ConfigDocument| {
            serde_json::json!({ "generation": generation, "accounts": document.accounts.len(), "follows": document.follows.len() })
        };
        let mut after = summary(generation, &document);
        let before = self.config_last.as_ref().map(|(previous, old)| {
            after["changes"] = serde_json::json!(config_changes(old, &document));
            summary(*previous, old).to_string()
        });
        batch.audits.push(AuditRow {
            journal_seq,
            at_ms: applied_ms,
            actor: document.source.clone(),
            action: CONFIGURATION_APPLIED,
            subject: format!("configuration {generation}"),
            before,
            after: after.to_string(),
        });
        self.config_last = Some((generation, document));
        Ok(())
    }

    fn session(journal_seq: i64, payload: &[u8], batch: &mut Batch) -> Result<(), String> {
        let entry = decode_session(payload).map_err(|error| error.to_string())?;
        match entry.event {
            SessionEvent::Open => batch.sessions.push(SessionRow {
                journal_seq,
                session_id: entry.session_id,
                login: entry.login,
                role: entry.role.as_str(),
                remote_address: entry.remote_address,
                connected_ms: entry.time_ms,
            }),
            SessionEvent::Close => batch.session_ends.push(SessionEnd {
                journal_seq,
                session_id: entry.session_id,
                disconnected_ms: entry.time_ms,
                close_code: (entry.close_code != 0).then_some(i32::from(entry.close_code)),
                close_reason: (!entry.close_reason.is_empty()).then_some(entry.close_reason),
            }),
            SessionEvent::BridgeStart => batch.bridge_starts.push(BridgeStart { journal_seq, started_ms: entry.time_ms }),
            SessionEvent::AuthFailed => batch.audits.push(AuditRow {
                journal_seq,
                at_ms: entry.time_ms,
                actor: "ea".to_owned(),
                action: AUTHENTICATION_FAILED,
                subject: format!("account {}", entry.login),
                before: None,
                after: serde_json::json!({
                    "role": entry.role.as_str(),
                    "remote_address": entry.remote_address,
                    "reason": entry.close_reason,
                    "close_code": entry.close_code,
                })
                .to_string(),
            }),
        }
        Ok(())
    }
}
