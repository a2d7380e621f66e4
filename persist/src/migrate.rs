//! Versioned SQL migrations: `persist/migrations/NNNN_name.sql`, embedded
//! in the binary, applied in order and recorded in `schema_migrations`.
//!
//! # Layout
//! - [`MIGRATIONS`]: every migration this binary knows, oldest first.
//! - [`migrate`]: applies the pending ones under an advisory lock, in one
//!   transaction, and says what it did ([`MigrationReport`]).
//!
//! # Invariants
//! - An applied migration is never edited: its SHA-256 is recorded, and a
//!   database whose recorded checksum differs from the binary's is refused
//!   with the version named.
//! - A database with a version this binary does not know (written by a
//!   newer binary) is refused: this binary would not know its schema.
//! - Running `migrate` again changes nothing; two bridges migrating at once
//!   take turns (`pg_advisory_xact_lock`), the second finds nothing to do.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// One migration: its version (the file's number), name and SQL.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first; a new one is a new file and a new entry.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "config_source", sql: include_str!("../migrations/0002_config_source.sql") },
];

/// Key of the advisory lock migrations hold ("tbmigrat" as ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7462_6d69_6772_6174;

/// What [`migrate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions and names applied now, in order.
    pub applied: Vec<(i32, String)>,
    /// Versions that were applied before.
    pub already_applied: Vec<i32>,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.applied.is_empty() {
            return write!(formatter, "the database is up to date ({} migrations applied before)", self.already_applied.len());
        }
        let names: Vec<String> = self.applied.iter().map(|(version, name)| format!("{version:04}_{name}")).collect();
        write!(formatter, "applied {} ({} applied before)", names.join(", "), self.already_applied.len())
    }
}

/// The SHA-256 of a migration's SQL, as recorded.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Applies every migration of `migrations` the database lacks, in order, in
/// one transaction; refuses an edited or unknown applied one.
pub async fn migrate(client: &mut Client, migrations: &[Migration]) -> anyhow::Result<MigrationReport> {
    for pair in migrations.windows(2) {
        anyhow::ensure!(pair[0].version < pair[1].version, "migrations out of order: {} before {}", pair[0].version, pair[1].version);
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 checksum   text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|error| anyhow::anyhow!("cannot create schema_migrations: {}", crate::db::describe(&error)))?;
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let rows = transaction.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version", &[]).await?;
    let mut report = MigrationReport::default();
    for row in &rows {
        let (version, name, recorded): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
        let Some(known) = migrations.iter().find(|migration| migration.version == version) else {
            let newest = migrations.last().map_or(0, |migration| migration.version);
            anyhow::bail!(
                "the database has migration {version:04}_{name}, which this binary does not know (it knows up to {newest:04}): it was migrated by a newer tradebridge"
            );
        };
        anyhow::ensure!(
            checksum(known.sql) == recorded,
            "migration {version:04}_{name} was changed after it was applied (its SHA-256 differs from the recorded one); applied migrations must never be edited: add a new one"
        );
        report.already_applied.push(version);
    }
    for migration in migrations.iter().filter(|migration| !report.already_applied.contains(&migration.version)) {
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(|error| anyhow::anyhow!("migration {:04}_{} failed: {}", migration.version, migration.name, crate::db::describe(&error)))?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &checksum(migration.sql)],
            )
            .await?;
        report.applied.push((migration.version, migration.name.to_string()));
    }
    transaction.commit().await?;
    Ok(report)
}
