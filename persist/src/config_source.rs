//! Accounts, keys and follows kept in Postgres (`config_accounts`,
//! `config_follows`, migration 0002) as the bridge's configuration source:
//! read at start, changed by the admin CLI and API in one transaction with
//! their `audit_log` row, and watched by the running bridge (LISTEN on
//! `tradebridge_config`, which the tables' triggers notify at each commit,
//! with a periodic re-read as a safety net).
//!
//! The rows carry TOML: the bridge (net) builds `[[account]]` and
//! `[[follow]]` tables from them and validates the whole as it validates a
//! file, so both sources share one validation.
//!
//! # Layout
//! - [`ConfigRows`], [`AccountRow`], [`FollowRow`]: the tables' contents.
//! - [`load`], [`import`], [`edit_rows`]: reading and writing them
//!   (`config_source_state` marks tables filled once, so empty tables are
//!   never filled from the file again).
//! - [`watch`]: the watcher thread of a running bridge.
//!
//! # Invariants
//! - An edit reads, checks and writes the rows under a table lock in one
//!   transaction, so two editors never lose each other's change.
//! - No key hash goes into `audit_log`: a changed hash is shown as
//!   `"<changed>"`.
//! - The watcher never blocks the bridge: it hands whole row sets to a
//!   callback from its own thread, and only when they changed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use tokio_postgres::{AsyncMessage, Client, GenericClient};


use crate::db::{describe, Target};

/// The channel the tables' triggers notify.
pub const CHANNEL: &str = "tradebridge_config";

/// One `config_accounts` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountRow {
    pub login: u64,
    pub role: String,
    pub server: String,
    pub platform: Option<String>,
    pub key_sha256: String,
    pub enabled: bool,
    /// A TOML array of `{ key_sha256, expires }`, or empty.
    pub previous_keys: String,
    /// Further `[[account]]` keys as TOML lines.
    pub settings: String,
}

/// One `config_follows` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowRow {
    pub slave: u64,
    pub master: u64,
    /// The `[[follow]]` keys besides slave and master, as TOML lines.
    pub rules: String,
}

/// Both tables, accounts by login and follows by (slave, master).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigRows {
    pub accounts: Vec<AccountRow>,
    pub follows: Vec<FollowRow>,
}

impl ConfigRows {
    /// True when neither table has a row.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.follows.is_empty()
    }
}

/// Who made a change, for its `audit_log` row.
#[derive(Clone, Debug)]
pub struct Actor {
    /// `cli:<user>`, `api:<token name>`, `import`.
    pub name: String,
    /// `account add`, `follow set`, ...
    pub action: String,
    /// `account 42`, `follow 7<3`, ...
    pub subject: String,
}

fn login_of(text: &str, what: &str) -> anyhow::Result<u64> {
    text.parse().with_context(|| format!("{what} {text:?} is not an unsigned 64-bit login"))
}

/// Longest wait for the tables' lock, and for any statement, of a change
/// or a read: a stalled editor (a suspended CLI) fails the next one with
/// an error instead of hanging it.
const LOCK_TIMEOUT: &str = "5s";
const STATEMENT_TIMEOUT: &str = "15s";

/// Reads both tables as of one snapshot (one REPEATABLE READ transaction,
/// so accounts and follows come from the same commits), in key order.
pub async fn load(client: &mut Client) -> anyhow::Result<ConfigRows> {
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
    transaction.batch_execute(&format!("SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")).await.map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
    let rows = read_tables(&transaction).await?;
    transaction.commit().await.map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
    Ok(rows)
}

/// Reads both tables in the caller's transaction.
async fn read_tables(client: &impl GenericClient) -> anyhow::Result<ConfigRows> {
    let accounts = client
        .query("SELECT login::text, role, server, platform, key_sha256, enabled, previous_keys, settings FROM config_accounts ORDER BY login", &[])
        .await
        .map_err(|error| anyhow::anyhow!("reading config_accounts (is the database migrated? `tradebridge migrate`): {}", describe(&error)))?;
    let follows = client
        .query("SELECT slave::text, master::text, rules FROM config_follows ORDER BY slave, master", &[])
        .await
        .map_err(|error| anyhow::anyhow!("reading config_follows: {}", describe(&error)))?;
    let mut rows = ConfigRows::default();
    for row in accounts {
        rows.accounts.push(AccountRow {
            login: login_of(row.get(0), "config_accounts.login")?,
            role: row.get(1),
            server: row.get(2),
            platform: row.get(3),
            key_sha256: row.get(4),
            enabled: row.get(5),
            previous_keys: row.get(6),
            settings: row.get(7),
        });
    }
    for row in follows {
        rows.follows.push(FollowRow { slave: login_of(row.get(0), "config_follows.slave")?, master: login_of(row.get(1), "config_follows.master")?, rules: row.get(2) });
    }
    Ok(rows)
}

/// An account row as `audit_log` shows it: its hashes only as "changed".
fn account_audit(row: &AccountRow) -> serde_json::Value {
    serde_json::json!({
        "login": row.login, "role": row.role, "server": row.server, "platform": row.platform,
        "enabled": row.enabled, "previous_keys": !row.previous_keys.is_empty(), "settings": row.settings,
    })
}

/// Writes the difference between `before` (what the tables hold, under
/// lock) and `after`; returns the audit's before and after (the changed
/// rows only).
async fn write_difference(transaction: &tokio_postgres::Transaction<'_>, before: &ConfigRows, after: &ConfigRows) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
    let old_accounts: BTreeMap<u64, &AccountRow> = before.accounts.iter().map(|row| (row.login, row)).collect();
    let new_accounts: BTreeMap<u64, &AccountRow> = after.accounts.iter().map(|row| (row.login, row)).collect();
    let old_follows: BTreeMap<(u64, u64), &FollowRow> = before.follows.iter().map(|row| ((row.slave, row.master), row)).collect();
    let new_follows: BTreeMap<(u64, u64), &FollowRow> = after.follows.iter().map(|row| ((row.slave, row.master), row)).collect();
    let (mut audit_before, mut audit_after) = (Vec::new(), Vec::new());
    for (login, row) in &old_accounts {
        if !new_accounts.contains_key(login) {
            transaction.execute("DELETE FROM config_accounts WHERE login = $1::text::numeric", &[&login.to_string()]).await.map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
            audit_before.push(account_audit(row));
        }
    }
    for (login, row) in &new_accounts {
        let old = old_accounts.get(login);
        if old == Some(row) {
            continue;
        }
        transaction
            .execute(
                "INSERT INTO config_accounts (login, role, server, platform, key_sha256, enabled, previous_keys, settings, updated_at) \
                 VALUES ($1::text::numeric, $2, $3, $4, $5, $6, $7, $8, now()) \
                 ON CONFLICT (login) DO UPDATE SET role = EXCLUDED.role, server = EXCLUDED.server, platform = EXCLUDED.platform, key_sha256 = EXCLUDED.key_sha256, \
                 enabled = EXCLUDED.enabled, previous_keys = EXCLUDED.previous_keys, settings = EXCLUDED.settings, updated_at = now()",
                &[&login.to_string(), &row.role, &row.server, &row.platform, &row.key_sha256, &row.enabled, &row.previous_keys, &row.settings],
            )
            .await
            .map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
        let mut shown = account_audit(row);
        if old.is_some_and(|old| old.key_sha256 != row.key_sha256) {
            shown["key_sha256"] = serde_json::json!("<changed>");
        }
        if let Some(old) = old {
            audit_before.push(account_audit(old));
        }
        audit_after.push(shown);
    }
    for (pair, row) in &old_follows {
        if !new_follows.contains_key(pair) {
            transaction
                .execute("DELETE FROM config_follows WHERE slave = $1::text::numeric AND master = $2::text::numeric", &[&pair.0.to_string(), &pair.1.to_string()])
                .await
                .map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
            audit_before.push(serde_json::json!({ "slave": row.slave, "master": row.master, "rules": row.rules }));
        }
    }
    for (pair, row) in &new_follows {
        let old = old_follows.get(pair);
        if old == Some(row) {
            continue;
        }
        transaction
            .execute(
                "INSERT INTO config_follows (slave, master, rules, updated_at) VALUES ($1::text::numeric, $2::text::numeric, $3, now()) \
                 ON CONFLICT (slave, master) DO UPDATE SET rules = EXCLUDED.rules, updated_at = now()",
                &[&pair.0.to_string(), &pair.1.to_string(), &row.rules],
            )
            .await
            .map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
        if let Some(old) = old {
            audit_before.push(serde_json::json!({ "slave": old.slave, "master": old.master, "rules": old.rules }));
        }
        audit_after.push(serde_json::json!({ "slave": row.slave, "master": row.master, "rules": row.rules }));
    }
    Ok((serde_json::Value::Array(audit_before), serde_json::Value::Array(audit_after)))
}

/// Why [`edit_rows`] did not commit.
#[derive(Debug)]
pub enum EditFailure<E> {
    /// `change` refused (the edit does not apply, or would not validate).
    Refused(E),
    /// Postgres failed.
    Database(anyhow::Error),
}

/// Takes both tables and the import marker for the transaction, waiting
/// at most [`LOCK_TIMEOUT`]; every statement after is bounded too.
async fn lock_tables(transaction: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    transaction
        .batch_execute(&format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'; \
             LOCK TABLE config_accounts, config_follows, config_source_state IN EXCLUSIVE MODE"
        ))
        .await
}

/// The change's `audit_log` row, in its transaction.
async fn insert_audit(transaction: &tokio_postgres::Transaction<'_>, actor: &Actor, before: Option<&serde_json::Value>, after: &serde_json::Value) -> Result<u64, tokio_postgres::Error> {
    transaction
        .execute(
            "INSERT INTO audit_log (actor, action, subject, before, after) VALUES ($1, $2, $3, $4::text::jsonb, $5::text::jsonb)",
            &[&actor.name, &actor.action, &actor.subject, &before.map(serde_json::Value::to_string), &after.to_string()],
        )
        .await
}

/// Reads the rows under an exclusive lock of both tables, hands them to
/// `change`, writes what it returns and the `audit_log` row, and commits:
/// the commit notifies a running bridge. Returns the rows committed.
pub async fn edit_rows<E>(client: &mut Client, actor: &Actor, change: impl FnOnce(&ConfigRows) -> Result<ConfigRows, E>) -> Result<ConfigRows, EditFailure<E>> {
    let database = |error: tokio_postgres::Error| EditFailure::Database(anyhow::anyhow!("{}", describe(&error)));
    let transaction = client.transaction().await.map_err(database)?;
    lock_tables(&transaction).await.map_err(database)?;
    let before = read_tables(&transaction).await.map_err(EditFailure::Database)?;
    // Whatever an operator's tool puts in the tables, they are the source
    // from now on: the file is never imported over them.
    transaction.execute("INSERT INTO config_source_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING", &[]).await.map_err(database)?;
    let after = change(&before).map_err(EditFailure::Refused)?;
    let (audit_before, audit_after) = write_difference(&transaction, &before, &after).await.map_err(EditFailure::Database)?;
    insert_audit(&transaction, actor, Some(&audit_before), &audit_after).await.map_err(database)?;
    transaction.commit().await.map_err(database)?;
    Ok(after)
}

/// An `audit_log` row of something refused (a change, a token): `after`
/// is `{"refused": <refusal>}`; nothing else is written.
pub async fn audit(client: &Client, actor: &Actor, refusal: &str) -> anyhow::Result<()> {
    let after = serde_json::json!({ "refused": refusal }).to_string();
    client
        .execute("INSERT INTO audit_log (actor, action, subject, after) VALUES ($1, $2, $3, $4::text::jsonb)", &[&actor.name, &actor.action, &actor.subject, &after])
        .await
        .map_err(|error| anyhow::anyhow!("{}", describe(&error)))?;
    Ok(())
}

/// Fills the tables with `rows` (a file's accounts and follows) once: when
/// they were never filled before (no `config_source_state` row) and are
/// empty. Returns false, writing nothing, otherwise; after a first fill
/// (or rows an operator wrote), empty tables mean no accounts, and the
/// file is never imported again.
pub async fn import(client: &mut Client, rows: &ConfigRows, actor: &Actor) -> anyhow::Result<bool> {
    let database = |error: tokio_postgres::Error| anyhow::anyhow!("{}", describe(&error));
    let transaction = client.transaction().await.map_err(database)?;
    lock_tables(&transaction).await.map_err(database)?;
    let marked = !transaction.query("SELECT 1 FROM config_source_state", &[]).await.map_err(database)?.is_empty();
    let before = read_tables(&transaction).await?;
    if marked || !before.is_empty() || rows.is_empty() {
        if !marked && !before.is_empty() {
            transaction.execute("INSERT INTO config_source_state (id) VALUES (1)", &[]).await.map_err(database)?;
            transaction.commit().await.map_err(database)?;
        }
        return Ok(false);
    }
    let (_, audit_after) = write_difference(&transaction, &before, rows).await?;
    transaction.execute("INSERT INTO config_source_state (id) VALUES (1)", &[]).await.map_err(database)?;
    insert_audit(&transaction, actor, None, &audit_after).await.map_err(database)?;
    transaction.commit().await.map_err(database)?;
    Ok(true)
}

/// Connects and subscribes to [`CHANNEL`]; returns the client and a stream
/// of notifications (it ends when the connection does).
async fn listen(target: &Target) -> anyhow::Result<(Client, tokio::sync::mpsc::UnboundedReceiver<()>)> {
    let (client, mut connection) = target.connect_raw().await?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |context| connection.poll_message(context));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if sender.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %describe(&error), "the configuration watcher's Postgres connection ended");
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(|error| anyhow::anyhow!("LISTEN {CHANNEL}: {}", describe(&error)))?;
    Ok((client, receiver))
}

/// Watches the tables from its own thread: `on_rows` gets every row set
/// that differs from the last one it got, after each notification and at
/// least every `reread`; a lost connection is retried after `retry`.
pub fn watch(target: Target, reread: Duration, retry: Duration, import_rows: ConfigRows, mut on_rows: impl FnMut(ConfigRows) -> bool + Send + 'static) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("config-watch".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "the configuration watcher cannot start its runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let mut last: Option<ConfigRows> = None;
            loop {
                let (mut client, mut notifications) = match listen(&target).await {
                    Ok(listening) => listening,
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), retry_ms = retry.as_millis() as u64, "the configuration watcher cannot reach Postgres; the bridge keeps its configuration");
                        tokio::time::sleep(retry).await;
                        continue;
                    }
                };
                // Tables made after the bridge started (a migration run
                // later) get the file's accounts first, never read empty.
                let importer = Actor { name: "import".into(), action: "config import".into(), subject: "the configuration file's accounts and follows".into() };
                if let Err(error) = import(&mut client, &import_rows, &importer).await {
                    tracing::warn!(error = %format!("{error:#}"), "the configuration watcher cannot check the tables");
                    tokio::time::sleep(retry).await;
                    continue;
                }
                loop {
                    match load(&mut client).await {
                        Ok(rows) => {
                            // Remembered only once applied: a change the
                            // bridge could not take is tried again at the
                            // next notification or re-read.
                            if last.as_ref() != Some(&rows) && on_rows(rows.clone()) {
                                last = Some(rows);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(error = %format!("{error:#}"), "the configuration watcher cannot read the tables");
                            break;
                        }
                    }
                    match tokio::time::timeout(reread, notifications.recv()).await {
                        // The connection ended: reconnect.
                        Ok(None) => break,
                        // A commit, or the safety re-read: read again, and
                        // take the notifications that queued meanwhile with it.
                        Ok(Some(())) | Err(_) => while notifications.try_recv().is_ok() {},
                    }
                }
                tokio::time::sleep(retry).await;
            }
        });
    })
}
