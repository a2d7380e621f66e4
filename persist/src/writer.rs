//! Writing a [`Batch`] to Postgres: one transaction holding every row of
//! the batch and the new `persist_progress`, so the record and its position
//! commit together or not at all.
//!
//! # Layout
//! - [`TableRow`]: per table, its columns with their types, a row's values,
//!   and the row as JSON (for a dead letter).
//! - [`write_batch`]: the fast path, binary `COPY ... FROM STDIN` per table;
//!   a result the table has already (a follower answered twice) fails it,
//!   and the batch is written again with its results through a staging
//!   table that keeps the first.
//!   When Postgres refuses a value (SQLSTATE class 22, data exception) or a
//!   key (class 23: a result a slave sent twice), the batch is written
//!   again row by row, each in a savepoint, and each refused row goes to
//!   `dead_letters` with the server's reason instead of blocking the stream.
//! - [`WriteError`]: connection trouble (retry the same batch later) and
//!   anything else (also retried, loudly).
//!
//! # Invariants
//! - `persist_progress.journal_seq` moves from exactly the value this
//!   persister read to the batch's last seq, in the batch's transaction; a
//!   progress row another writer moved makes the transaction fail, so two
//!   persisters on one database can never both write a range.

use postgres_types::{ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::numeric::{Numeric, OptionalNumeric};
use crate::rows::{time_of_ms, Batch, CopyRow, Gap, MasterEventRow, ResultRow, SessionRow, SkipRow, SymbolRow, Undecodable, ENDED_BY_RESTART};

type Value = Box<dyn ToSql + Sync + Send>;

/// One table's rows.
pub trait TableRow: serde::Serialize {
    const TABLE: &'static str;
    /// A second row with the same key is expected and dropped (the first
    /// stays), rather than set aside as a dead letter: a follower answers a
    /// copy it had finished, replayed after a reconnection, with the same
    /// result again.
    const DUPLICATES_EXPECTED: bool = false;
    const COLUMNS: &'static [(&'static str, Type)];
    fn journal_seq(&self) -> i64;
    fn values(&self) -> Vec<Value>;
}

fn boxed<T: ToSql + Sync + Send + 'static>(value: T) -> Value {
    Box::new(value)
}

impl TableRow for MasterEventRow {
    const TABLE: &'static str = "master_events";
    const COLUMNS: &'static [(&'static str, Type)] = &[
        ("master_login", Type::NUMERIC),
        ("seq", Type::NUMERIC),
        ("journal_seq", Type::INT8),
        ("kind", Type::TEXT),
        ("pos", Type::NUMERIC),
        ("ticket", Type::NUMERIC),
        ("symbol", Type::TEXT),
        ("side", Type::TEXT),
        ("volume", Type::FLOAT8),
        ("price", Type::FLOAT8),
        ("sl", Type::FLOAT8),
        ("tp", Type::FLOAT8),
        ("magic", Type::NUMERIC),
        ("comment", Type::TEXT),
        ("remaining", Type::FLOAT8),
        ("terminal_time", Type::TIMESTAMPTZ),
        ("received_at", Type::TIMESTAMPTZ),
    ];
    fn journal_seq(&self) -> i64 {
        self.journal_seq
    }
    fn values(&self) -> Vec<Value> {
        vec![
            boxed(Numeric(self.master_login)),
            boxed(Numeric(self.seq)),
            boxed(self.journal_seq),
            boxed(self.kind),
            boxed(Numeric(self.pos)),
            boxed(Numeric(self.ticket)),
            boxed(self.symbol.clone()),
            boxed(self.side),
            boxed(self.volume),
            boxed(self.price),
            boxed(self.sl),
            boxed(self.tp),
            boxed(Numeric(self.magic)),
            boxed(self.comment.clone()),
            boxed(self.remaining),
            boxed(self.terminal_ms.map(time_of_ms)),
            boxed(time_of_ms(self.received_ms)),
        ]
    }
}

impl TableRow for CopyRow {
    const TABLE: &'static str = "copies";
    const COLUMNS: &'static [(&'static str, Type)] = &[
        ("slave_login", Type::NUMERIC),
        ("seq", Type::NUMERIC),
        ("journal_seq", Type::INT8),
        ("copy_id", Type::TEXT),
        ("master_login", Type::NUMERIC),
        ("master_pos", Type::NUMERIC),
        ("master_seq", Type::NUMERIC),
        ("action", Type::TEXT),
        ("symbol", Type::TEXT),
        ("side", Type::TEXT),
        ("volume", Type::FLOAT8),
        ("price", Type::FLOAT8),
        ("max_dev", Type::FLOAT8),
        ("sl", Type::FLOAT8),
        ("tp", Type::FLOAT8),
        ("magic", Type::NUMERIC),
        ("comment", Type::TEXT),
        ("expires_at", Type::TIMESTAMPTZ),
        ("issued_at", Type::TIMESTAMPTZ),
    ];
    fn journal_seq(&self) -> i64 {
        self.journal_seq
    }
    fn values(&self) -> Vec<Value> {
        vec![
            boxed(Numeric(self.slave_login)),
            boxed(Numeric(self.seq)),
            boxed(self.journal_seq),
            boxed(self.copy_id.clone()),
            boxed(Numeric(self.master_login)),
            boxed(Numeric(self.master_pos)),
            boxed(OptionalNumeric(self.master_seq)),
            boxed(self.action),
            boxed(self.symbol.clone()),
            boxed(self.side),
            boxed(self.volume),
            boxed(self.price),
            boxed(self.max_dev),
            boxed(self.sl),
            boxed(self.tp),
            boxed(Numeric(self.magic)),
            boxed(self.comment.clone()),
            boxed(self.expires_ms.map(time_of_ms)),
            boxed(self.issued_ms.map(time_of_ms)),
        ]
    }
}

impl TableRow for ResultRow {
    const TABLE: &'static str = "copy_results";
    const DUPLICATES_EXPECTED: bool = true;
    const COLUMNS: &'static [(&'static str, Type)] = &[
        ("slave_login", Type::NUMERIC),
        ("seq", Type::NUMERIC),
        ("journal_seq", Type::INT8),
        ("status", Type::TEXT),
        ("ticket", Type::NUMERIC),
        ("price", Type::FLOAT8),
        ("volume", Type::FLOAT8),
        ("error", Type::INT8),
        ("msg", Type::TEXT),
        ("exec_ms", Type::NUMERIC),
        ("received_at", Type::TIMESTAMPTZ),
    ];
    fn journal_seq(&self) -> i64 {
        self.journal_seq
    }
    fn values(&self) -> Vec<Value> {
        vec![
            boxed(Numeric(self.slave_login)),
            boxed(Numeric(self.seq)),
            boxed(self.journal_seq),
            boxed(self.status),
            boxed(Numeric(self.ticket)),
            boxed(self.price),
            boxed(self.volume),
            boxed(self.error),
            boxed(self.msg.clone()),
            boxed(Numeric(self.exec_ms)),
            boxed(time_of_ms(self.received_ms)),
        ]
    }
}

impl TableRow for SkipRow {
    const TABLE: &'static str = "skips";
    const COLUMNS: &'static [(&'static str, Type)] = &[
        ("journal_seq", Type::INT8),
        ("entry", Type::INT4),
        ("slave_login", Type::NUMERIC),
        ("master_login", Type::NUMERIC),
        ("master_seq", Type::NUMERIC),
        ("master_pos", Type::NUMERIC),
        ("reason", Type::TEXT),
        ("skipped_at", Type::TIMESTAMPTZ),
    ];
    fn journal_seq(&self) -> i64 {
        self.journal_seq
    }
    fn values(&self) -> Vec<Value> {
        vec![
            boxed(self.journal_seq),
            boxed(self.entry),
            boxed(Numeric(self.slave_login)),
            boxed(Numeric(self.master_login)),
            boxed(OptionalNumeric(self.master_seq)),
            boxed(Numeric(self.master_pos)),
            boxed(self.reason),
            boxed(self.skipped_ms.map(time_of_ms)),
        ]
    }
}

impl TableRow for SymbolRow {
    const TABLE: &'static str = "slave_symbols";
    const COLUMNS: &'static [(&'static str, Type)] = &[
        ("slave_login", Type::NUMERIC),
        ("name", Type::TEXT),
        ("digits", Type::INT4),
        ("volume_min", Type::FLOAT8),
        ("volume_max", Type::FLOAT8),
        ("volume_step", Type::FLOAT8),
        ("contract", Type::FLOAT8),
        ("updated_at", Type::TIMESTAMPTZ),
    ];
    fn journal_seq(&self) -> i64 {
        self.journal_seq
    }
    fn values(&self) -> Vec<Value> {
        vec![
            boxed(Numeric(self.slave_login)),
            boxed(self.name.clone()),
            boxed(self.digits),
            boxed(self.volume_min),
            boxed(self.volume_max),
            boxed(self.volume_step),
            boxed(self.contract),
            boxed(time_of_ms(self.updated_ms)),
        ]
    }
}

impl TableRow for SessionRow {
    const TABLE: &'static str = "sessions";
    const COLUMNS: &'static [(&'static str, Type)] = &[
        ("session_id", Type::TEXT),
        ("login", Type::NUMERIC),
        ("role", Type::TEXT),
        ("remote_address", Type::TEXT),
        ("connected_at", Type::TIMESTAMPTZ),
    ];
    fn journal_seq(&self) -> i64 {
        self.journal_seq
    }
    fn values(&self) -> Vec<Value> {
        vec![
            boxed(self.session_id.clone()),
            boxed(Numeric(self.login)),
            boxed(self.role),
            boxed(self.remote_address.clone()),
            boxed(time_of_ms(self.connected_ms)),
        ]
    }
}

/// Why a write failed; the batch was not committed and is tried again.
#[derive(Debug)]
pub enum WriteError {
    /// The connection is gone or could not be made: reconnect, then retry.
    Connection(String),
    /// Postgres refused something that is not a row's fault (a missing
    /// table, a progress row another writer moved): retried after a wait,
    /// and logged at ERROR, since it needs an operator.
    Server(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Connection(message) => write!(formatter, "connection: {message}"),
            WriteError::Server(message) => write!(formatter, "{message}"),
        }
    }
}

/// What a committed batch wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub dead_letters: u64,
    /// Rows dropped as expected duplicates ([`TableRow::DUPLICATES_EXPECTED`]).
    pub duplicates: u64,
}

/// Reads `persist_progress.journal_seq`.
pub async fn read_progress(client: &Client) -> Result<u64, WriteError> {
    let row = client
        .query_one("SELECT journal_seq FROM persist_progress WHERE id = 1", &[])
        .await
        .map_err(|error| classify(&error, "reading persist_progress"))?;
    let seq: i64 = row.get(0);
    Ok(seq.max(0) as u64)
}

/// Records journal records the persister could not read.
async fn record_gap(client: &impl GenericClient, gap: Option<Gap>) -> Result<(), tokio_postgres::Error> {
    let Some(gap) = gap else {
        return Ok(());
    };
    client
        .execute(
            "INSERT INTO persist_gaps (from_journal_seq, to_journal_seq, noticed_at, reason) VALUES ($1, $2, now(), $3)",
            &[&(gap.from_seq as i64), &(gap.to_seq as i64), &gap.reason()],
        )
        .await?;
    Ok(())
}

/// How a batch is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// COPY per table; row by row when a row is refused (class 22 or 23).
    Fast,
    /// Row by row from the start, and any error of a row that is not the
    /// connection's or the server's state (classes 08, 40, 53, 55, 57,
    /// 58, XX) sets that row aside: for a batch Postgres keeps refusing,
    /// so one row cannot hold the stream up forever.
    EachRowLenient,
}

/// Writes `batch` and moves `persist_progress` from `progress` to the
/// batch's last seq, in one transaction.
pub async fn write_batch(client: &mut Client, batch: &Batch, progress: u64, mode: Mode) -> Result<Written, WriteError> {
    if mode == Mode::EachRowLenient {
        return write_each(client, batch, progress, true).await.map_err(|error| classify(&error, "writing a batch row by row"));
    }
    // Results go straight into `copy_results`; only when one of them is
    // there already (a follower answered twice) is the batch written again
    // through a staging table that keeps the first. The staging path costs
    // an extra copy of every result and, at each commit, a truncation that
    // frees disk blocks (a discard on a filesystem mounted with it).
    let first = match write_fast(client, batch, progress, Results::Direct).await {
        Err(error) if duplicate_result(&error) => write_fast(client, batch, progress, Results::KeepFirst).await,
        other => other,
    };
    match first {
        Ok(written) => Ok(written),
        Err(error) if refused_row(&error, false) => {
            tracing::warn!(error = %crate::db::describe(&error), from = progress + 1, to = batch.last_journal_seq, "Postgres refused a row; writing this batch row by row");
            write_each(client, batch, progress, false).await.map_err(|error| classify(&error, "writing a batch row by row"))
        }
        Err(error) => Err(classify(&error, "writing a batch")),
    }
}

/// A refusal that is one row's fault: a data exception (class 22) or an
/// integrity violation (class 23); `lenient`: anything but the state of
/// the connection or the server, including a value the client could not
/// encode.
fn refused_row(error: &tokio_postgres::Error, lenient: bool) -> bool {
    match error.as_db_error() {
        Some(db) => {
            let class = &db.code().code()[..2];
            if lenient {
                !matches!(class, "08" | "40" | "53" | "55" | "57" | "58" | "XX")
            } else {
                matches!(class, "22" | "23")
            }
        }
        None => lenient && !error.is_closed(),
    }
}

fn classify(error: &tokio_postgres::Error, doing: &str) -> WriteError {
    // Connection exceptions (08), a server shutting down or restarting (57),
    // out of resources (53): the connection's trouble, not the batch's.
    let server_away = error.as_db_error().is_some_and(|db| matches!(&db.code().code()[..2], "08" | "57" | "53"));
    if error.is_closed() || error.as_db_error().is_none() || server_away {
        WriteError::Connection(format!("{doing}: {error}"))
    } else {
        WriteError::Server(format!("{doing}: {}", crate::db::describe(error)))
    }
}

/// How [`write_fast`] writes `copy_results`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Results {
    /// COPY into the table: a duplicate key fails the transaction.
    Direct,
    /// COPY into a staging table, then insert keeping the row already there.
    KeepFirst,
}

/// A unique violation on `copy_results`: a result the table already has.
fn duplicate_result(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION && db.table() == Some(ResultRow::TABLE))
}

async fn write_fast(client: &mut Client, batch: &Batch, progress: u64, results: Results) -> Result<Written, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    copy_rows(&transaction, &batch.master_events).await?;
    copy_rows(&transaction, &batch.copies).await?;
    let results_kept = match results {
        Results::Direct => {
            copy_rows(&transaction, &batch.results).await?;
            batch.results.len() as u64
        }
        Results::KeepFirst => copy_rows_keeping_first(&transaction, &batch.results).await?,
    };
    copy_rows(&transaction, &batch.skips).await?;
    copy_rows(&transaction, &batch.sessions).await?;
    end_sessions(&transaction, batch).await?;
    insert_audits(&transaction, batch).await?;
    upsert_symbols(&transaction, &batch.symbols).await?;
    let mut dead_letters = 0;
    for undecodable in &batch.undecodable {
        dead_letter_undecodable(&transaction, undecodable).await?;
        dead_letters += 1;
    }
    record_gap(&transaction, batch.gap).await?;
    move_progress(&transaction, progress, batch.last_journal_seq).await?;
    transaction.commit().await?;
    let duplicates = batch.results.len() as u64 - results_kept;
    Ok(Written { rows: (batch.rows() - batch.undecodable.len()) as u64 - duplicates, dead_letters, duplicates })
}

async fn copy_rows<R: TableRow>(transaction: &Transaction<'_>, rows: &[R]) -> Result<(), tokio_postgres::Error> {
    copy_rows_into(transaction, R::TABLE, rows).await
}

/// Binary COPY of `rows` through a temporary table, then an insert that
/// keeps the row already there on a duplicate key; the rows inserted.
async fn copy_rows_keeping_first<R: TableRow>(transaction: &Transaction<'_>, rows: &[R]) -> Result<u64, tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let staging = format!("{}_incoming", R::TABLE);
    let columns: Vec<&str> = R::COLUMNS.iter().map(|(name, _)| *name).collect();
    transaction
        .batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
            table = R::TABLE
        ))
        .await?;
    copy_rows_into(transaction, &staging, rows).await?;
    let columns = columns.join(", ");
    let inserted = transaction
        .execute(&format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING", table = R::TABLE), &[])
        .await?;
    Ok(inserted)
}

async fn copy_rows_into<R: TableRow>(transaction: &Transaction<'_>, table: &str, rows: &[R]) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns: Vec<&str> = R::COLUMNS.iter().map(|(name, _)| *name).collect();
    let types: Vec<Type> = R::COLUMNS.iter().map(|(_, kind)| kind.clone()).collect();
    let sink = transaction.copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", columns.join(", "))).await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for row in rows {
        let values = row.values();
        let references: Vec<&(dyn ToSql + Sync)> = values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&references).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// The slow path: each row in a savepoint; refused or duplicate rows become
/// dead letters.
async fn write_each(client: &mut Client, batch: &Batch, progress: u64, lenient: bool) -> Result<Written, tokio_postgres::Error> {
    let mut transaction = client.transaction().await?;
    let mut written = Written::default();
    insert_each(&mut transaction, &batch.master_events, &mut written, lenient).await?;
    insert_each(&mut transaction, &batch.copies, &mut written, lenient).await?;
    insert_each(&mut transaction, &batch.results, &mut written, lenient).await?;
    insert_each(&mut transaction, &batch.skips, &mut written, lenient).await?;
    insert_each(&mut transaction, &batch.sessions, &mut written, lenient).await?;
    end_sessions(&transaction, batch).await?;
    insert_audits(&transaction, batch).await?;
    written.rows += batch.session_ends.len() as u64;
    for symbol in &batch.symbols {
        let savepoint = transaction.savepoint("symbol").await?;
        match upsert_symbol(&savepoint, symbol).await {
            Ok(()) => {
                savepoint.commit().await?;
                written.rows += 1;
            }
            Err(error) if refused_row(&error, lenient) => {
                savepoint.rollback().await?;
                dead_letter(&transaction, symbol.journal_seq, SymbolRow::TABLE, &crate::db::describe(&error), &json_of(symbol)).await?;
                written.dead_letters += 1;
            }
            Err(error) => return Err(error),
        }
    }
    for undecodable in &batch.undecodable {
        dead_letter_undecodable(&transaction, undecodable).await?;
        written.dead_letters += 1;
    }
    record_gap(&transaction, batch.gap).await?;
    move_progress(&transaction, progress, batch.last_journal_seq).await?;
    transaction.commit().await?;
    Ok(written)
}

async fn insert_each<R: TableRow>(transaction: &mut Transaction<'_>, rows: &[R], written: &mut Written, lenient: bool) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns: Vec<&str> = R::COLUMNS.iter().map(|(name, _)| *name).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|index| format!("${index}")).collect();
    let types: Vec<Type> = R::COLUMNS.iter().map(|(_, kind)| kind.clone()).collect();
    let sql = format!("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING", R::TABLE, columns.join(", "), placeholders.join(", "));
    let statement = transaction.prepare_typed(&sql, &types).await?;
    for row in rows {
        let values = row.values();
        let references: Vec<&(dyn ToSql + Sync)> = values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)).collect();
        let savepoint = transaction.savepoint("row").await?;
        match savepoint.execute(&statement, &references).await {
            Ok(1) => {
                savepoint.commit().await?;
                written.rows += 1;
            }
            Ok(_) if R::DUPLICATES_EXPECTED => {
                savepoint.commit().await?;
                written.duplicates += 1;
            }
            Ok(_) => {
                savepoint.commit().await?;
                let reason = format!("a {} row with this key is already there; it is kept and this one set aside", R::TABLE);
                dead_letter(transaction, row.journal_seq(), R::TABLE, &reason, &json_of(row)).await?;
                written.dead_letters += 1;
            }
            Err(error) if refused_row(&error, lenient) => {
                savepoint.rollback().await?;
                dead_letter(transaction, row.journal_seq(), R::TABLE, &crate::db::describe(&error), &json_of(row)).await?;
                written.dead_letters += 1;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Fills in the end of the sessions that ended, then ends, at each bridge
/// start, the sessions an earlier process left open.
async fn end_sessions(transaction: &Transaction<'_>, batch: &Batch) -> Result<(), tokio_postgres::Error> {
    if !batch.session_ends.is_empty() {
        let ids: Vec<&str> = batch.session_ends.iter().map(|end| end.session_id.as_str()).collect();
        let times: Vec<std::time::SystemTime> = batch.session_ends.iter().map(|end| time_of_ms(end.disconnected_ms)).collect();
        let codes: Vec<Option<i32>> = batch.session_ends.iter().map(|end| end.close_code).collect();
        let reasons: Vec<Option<&str>> = batch.session_ends.iter().map(|end| end.close_reason.as_deref()).collect();
        transaction
            .execute(
                "UPDATE sessions s SET disconnected_at = u.at, close_code = u.code, close_reason = u.reason
                 FROM unnest($1::text[], $2::timestamptz[], $3::int4[], $4::text[]) AS u(id, at, code, reason)
                 WHERE s.session_id = u.id AND s.disconnected_at IS NULL",
                &[&ids, &times, &codes, &reasons],
            )
            .await?;
    }
    for start in &batch.bridge_starts {
        let at = time_of_ms(start.started_ms);
        transaction
            .execute(
                "UPDATE sessions SET disconnected_at = $1, close_reason = $2 WHERE disconnected_at IS NULL AND connected_at < $1",
                &[&at, &ENDED_BY_RESTART],
            )
            .await?;
    }
    Ok(())
}

/// The batch's `audit_log` rows, one statement each (a configuration
/// change is rare).
async fn insert_audits(transaction: &Transaction<'_>, batch: &Batch) -> Result<(), tokio_postgres::Error> {
    for audit in &batch.audits {
        transaction
            .execute(
                "INSERT INTO audit_log (at, actor, action, subject, before, after) VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb)",
                &[&time_of_ms(audit.at_ms), &audit.actor, &audit.action, &audit.subject, &audit.before, &audit.after],
            )
            .await?;
    }
    Ok(())
}

/// Upserts the batch's symbol reports in one statement, the last report of
/// each (login, symbol) winning.
async fn upsert_symbols(transaction: &Transaction<'_>, symbols: &[SymbolRow]) -> Result<(), tokio_postgres::Error> {
    if symbols.is_empty() {
        return Ok(());
    }
    let mut latest: std::collections::HashMap<(u64, &str), &SymbolRow> = std::collections::HashMap::with_capacity(symbols.len());
    for symbol in symbols {
        latest.insert((symbol.slave_login, symbol.name.as_str()), symbol);
    }
    let rows: Vec<&SymbolRow> = latest.into_values().collect();
    let logins: Vec<Numeric> = rows.iter().map(|row| Numeric(row.slave_login)).collect();
    let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
    let digits: Vec<i32> = rows.iter().map(|row| row.digits).collect();
    let volume_min: Vec<f64> = rows.iter().map(|row| row.volume_min).collect();
    let volume_max: Vec<f64> = rows.iter().map(|row| row.volume_max).collect();
    let volume_step: Vec<f64> = rows.iter().map(|row| row.volume_step).collect();
    let contract: Vec<f64> = rows.iter().map(|row| row.contract).collect();
    let updated: Vec<std::time::SystemTime> = rows.iter().map(|row| time_of_ms(row.updated_ms)).collect();
    transaction
        .execute(
            "INSERT INTO slave_symbols (slave_login, name, digits, volume_min, volume_max, volume_step, contract, updated_at)
             SELECT * FROM unnest($1::numeric[], $2::text[], $3::int4[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::timestamptz[])
             ON CONFLICT (slave_login, name) DO UPDATE SET digits = EXCLUDED.digits, volume_min = EXCLUDED.volume_min,
                 volume_max = EXCLUDED.volume_max, volume_step = EXCLUDED.volume_step, contract = EXCLUDED.contract,
                 updated_at = EXCLUDED.updated_at
             WHERE slave_symbols.updated_at <= EXCLUDED.updated_at",
            &[&logins, &names, &digits, &volume_min, &volume_max, &volume_step, &contract, &updated],
        )
        .await?;
    Ok(())
}

async fn upsert_symbol(client: &impl GenericClient, symbol: &SymbolRow) -> Result<(), tokio_postgres::Error> {
    let values = symbol.values();
    let references: Vec<&(dyn ToSql + Sync)> = values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)).collect();
    client
        .execute(
            "INSERT INTO slave_symbols (slave_login, name, digits, volume_min, volume_max, volume_step, contract, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (slave_login, name) DO UPDATE SET digits = EXCLUDED.digits, volume_min = EXCLUDED.volume_min,
                 volume_max = EXCLUDED.volume_max, volume_step = EXCLUDED.volume_step, contract = EXCLUDED.contract,
                 updated_at = EXCLUDED.updated_at
             WHERE slave_symbols.updated_at <= EXCLUDED.updated_at",
            &references,
        )
        .await?;
    Ok(())
}

async fn move_progress(transaction: &Transaction<'_>, from: u64, to: u64) -> Result<(), tokio_postgres::Error> {
    let moved = transaction
        .execute(
            "UPDATE persist_progress SET journal_seq = $2, updated_at = now() WHERE id = 1 AND journal_seq = $1",
            &[&(from as i64), &(to as i64)],
        )
        .await?;
    if moved != 1 {
        // Another writer moved it: raise a server error so the batch rolls back.
        transaction
            .batch_execute("DO $$ BEGIN RAISE EXCEPTION 'persist_progress was moved by another writer; two persisters share this database' USING ERRCODE = '55000'; END $$")
            .await?;
    }
    Ok(())
}

async fn dead_letter(client: &impl GenericClient, journal_seq: i64, table: &str, reason: &str, row_json: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO dead_letters (journal_seq, target_table, reason, row_json) VALUES ($1, $2, $3, $4)",
            &[&journal_seq, &table, &reason, &row_json],
        )
        .await?;
    Ok(())
}

async fn dead_letter_undecodable(client: &impl GenericClient, undecodable: &Undecodable) -> Result<(), tokio_postgres::Error> {
    let row = serde_json::json!({ "journal_kind": undecodable.kind }).to_string();
    dead_letter(client, undecodable.journal_seq, "(undecodable journal record)", &undecodable.reason, &row).await
}

/// The row as JSON for a dead letter; the JSON text never holds a NUL
/// (serde escapes it), so Postgres takes it even when the row's text did not.
fn json_of<R: serde::Serialize>(row: &R) -> String {
    serde_json::to_string(row).unwrap_or_else(|error| format!("{{\"unserializable\":\"{error}\"}}"))
}
