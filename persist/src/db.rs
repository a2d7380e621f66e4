//! Connecting to Postgres with the `[persist]` settings.
//!
//! # Invariants
//! - The connection string never appears in an error: it may hold a
//!   password. Errors say which setting it came from and what failed.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tradebridge_core::config::{PersistConfig, DATABASE_URL_ENV};

/// Where the connection string came from, for errors that must name its
/// source without repeating it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlSource {
    /// `persist.database_url` in the configuration file.
    File,
    /// The environment variable [`DATABASE_URL_ENV`].
    Environment,
}

impl std::fmt::Display for UrlSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSource::File => formatter.write_str("persist.database_url"),
            UrlSource::Environment => write!(formatter, "the environment variable {DATABASE_URL_ENV}"),
        }
    }
}

/// A parsed connection string and where it came from. `Debug` shows the
/// source only.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    source: UrlSource,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Target").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Target {
    /// The connection string of `persist` (the file's, else the
    /// environment's), parsed; the error names the source, never the text.
    pub fn from_config(persist: &PersistConfig) -> anyhow::Result<Target> {
        let (text, source) = match &persist.database_url {
            Some(url) => (url.clone(), UrlSource::File),
            None => match std::env::var(DATABASE_URL_ENV) {
                Ok(url) if !url.is_empty() => (url, UrlSource::Environment),
                _ => anyhow::bail!(
                    "[persist] has no database_url and the environment variable {DATABASE_URL_ENV} is not set; set one of them"
                ),
            },
        };
        Target::parse(&text, source, persist.connect_timeout_ms)
    }

    /// Parses `text`; the error names `source` and what was wrong, not the text.
    pub fn parse(text: &str, source: UrlSource, connect_timeout_ms: u64) -> anyhow::Result<Target> {
        let mut config: tokio_postgres::Config =
            text.parse().map_err(|error: tokio_postgres::Error| anyhow::anyhow!("{source} is not a valid Postgres connection string: {}", redact(&error.to_string(), text)))?;
        config.connect_timeout(Duration::from_millis(connect_timeout_ms));
        // A Postgres host that vanishes without closing the connection (a
        // network cut) is noticed in about a minute, not after the OS's
        // two hours of keepalive idle: the persister then reconnects.
        // The server's NOTICEs (a temporary table that exists already) are
        // not the operator's business; warnings and errors still are.
        config.options("-c client_min_messages=warning");
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config.keepalives_interval(Duration::from_secs(10));
        config.keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name("tradebridge");
        }
        Ok(Target { config, source })
    }

    /// Where the string came from.
    pub fn source(&self) -> UrlSource {
        self.source
    }

    /// Connects and returns the connection for the caller to drive (to
    /// read its notifications).
    pub async fn connect_raw(&self) -> anyhow::Result<(Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>)> {
        self.config.connect(NoTls).await.map_err(|error| anyhow::anyhow!("cannot connect to Postgres ({}): {error}", self.source))
    }

    /// Connects and drives the connection on the current tokio runtime; a
    /// failed connection ends the spawned task with a log line.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let (client, connection) =
            self.config.connect(NoTls).await.map_err(|error| anyhow::anyhow!("cannot connect to Postgres ({}): {error}", self.source))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "Postgres connection ended");
            }
        });
        Ok(client)
    }
}

/// `message` with any run of `secret` text replaced: a parser error could
/// quote the input it choked on.
fn redact(message: &str, secret: &str) -> String {
    if secret.is_empty() || !message.contains(secret) {
        return message.to_string();
    }
    message.replace(secret, "<connection string>")
}

/// A Postgres error with the server's message, detail and code when there
/// are any (tokio-postgres's own `Display` says only "db error").
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            text
        }
        None => error.to_string(),
    }
}
