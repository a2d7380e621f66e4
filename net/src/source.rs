//! Where the bridge's accounts, keys and follows come from: the TOML file
//! (the embedded default, and `[persist] config_source = "file"`), or the
//! Postgres tables `config_accounts` and `config_follows` (with `[persist]`,
//! by default). Both give a [`Config`] through the same validation: the
//! tables' rows become `[[account]]` and `[[follow]]` tables beside the
//! file's `[server]`, `[persist]` and `[admin]`, and the whole is loaded
//! as a file is.
//!
//! # Layout
//! - [`Source`]: load the configuration, or apply an operator's [`Edit`]
//!   to it (the CLI, the admin API and SIGHUP go through it).
//! - [`compose`], [`rows_of`]: tables <-> TOML.
//!
//! # Invariants
//! - An edit is validated as the bridge validates at start before anything
//!   is written; a refused one writes nothing (but its audit).
//! - With Postgres, an edit and its `audit_log` row commit together, and
//!   the commit notifies a running bridge.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use toml_edit::{DocumentMut, Item};
use tradebridge_core::config::{Config, ConfigSource};
use tradebridge_persist::config_source::{self, AccountRow, Actor, ConfigRows, EditFailure, FollowRow};
use tradebridge_persist::db::Target;

use crate::admin::{apply, edit_file, Edit, EditError};
use crate::reload::{ReloadOutcome, RouterInbox, APPLY_WAIT};

/// Where the accounts, keys and follows live.
#[derive(Debug)]
pub enum Source {
    File { path: PathBuf },
    Postgres { path: PathBuf, target: Box<Target> },
}

/// Why a source could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// It cannot be read now (Postgres away, the file unreadable).
    Unreachable(String),
    /// It was read and does not validate.
    Invalid(String),
}

/// Runs `future` on a current-thread runtime of its own thread (callers
/// may be inside another runtime, as the admin API's handlers are).
pub fn on_own_runtime<T: Send>(future: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(future))
            .join()
            .expect("the Postgres thread panicked")
    })
}

impl Source {
    /// The source `config` (loaded from `path`) names.
    pub fn of(path: &Path, config: &Config) -> anyhow::Result<Source> {
        match &config.persist {
            Some(persist) if persist.config_source == ConfigSource::Postgres => {
                Ok(Source::Postgres { path: path.to_path_buf(), target: Box::new(Target::from_config(persist)?) })
            }
            _ => Ok(Source::File { path: path.to_path_buf() }),
        }
    }

    /// `the file PATH` or `Postgres (config_accounts, config_follows)`.
    pub fn describe(&self) -> String {
        match self {
            Source::File { path } => format!("the file {}", path.display()),
            Source::Postgres { .. } => "Postgres (config_accounts, config_follows)".to_owned(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Source::Postgres { .. })
    }

    fn path(&self) -> &Path {
        match self {
            Source::File { path } | Source::Postgres { path, .. } => path,
        }
    }

    /// The configuration as the source holds it now, validated as at start.
    pub fn load(&self) -> Result<Config, String> {
        self.load_checked().map_err(|error| match error {
            LoadError::Unreachable(text) | LoadError::Invalid(text) => text,
        })
    }

    /// [`Source::load`], telling a source that cannot be read from one
    /// that does not validate.
    pub fn load_checked(&self) -> Result<Config, LoadError> {
        match self {
            Source::File { path } => Config::load(path).map_err(|error| LoadError::Invalid(error.to_string())),
            Source::Postgres { path, target } => {
                let text = read(path).map_err(LoadError::Unreachable)?;
                let rows = on_own_runtime(async {
                    let mut client = target.connect().await?;
                    config_source::load(&mut client).await
                })
                .map_err(|error| LoadError::Unreachable(format!("{error:#}")))?;
                if let Ok(file_rows) = rows_of_file(&text) {
                    if !file_rows.is_empty() && file_rows != rows {
                        tracing::warn!("the file's [[account]] and [[follow]] tables differ from config_accounts and config_follows and are not used ([persist] config_source = \"postgres\"): change accounts with `tradebridge account|follow|key`, the admin API or SQL");
                    }
                }
                config_of_rows(&text, &rows).map_err(LoadError::Invalid)
            }
        }
    }

    /// Loads the source and has the router apply it as a change by `actor`.
    /// One at a time in this process, each loading after the previous one
    /// applied: a slower reader never applies rows older than what a
    /// faster one already applied.
    pub fn apply(&self, inbox: &RouterInbox, actor: &str) -> ReloadOutcome {
        static APPLYING: Mutex<()> = Mutex::new(());
        let _turn = APPLYING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match self.load_checked() {
            Err(LoadError::Invalid(error)) => ReloadOutcome::Invalid { error },
            Err(LoadError::Unreachable(reason)) => ReloadOutcome::Refused { reason: format!("cannot read the configuration: {reason}") },
            Ok(config) => {
                for warning in &config.warnings {
                    tracing::warn!(source = %self.describe(), %warning, "configuration warning");
                }
                inbox.submit(config, actor, APPLY_WAIT).unwrap_or_else(|| ReloadOutcome::Refused {
                    reason: format!("the router did not answer within {} s; the change may still apply (see the log)", APPLY_WAIT.as_secs()),
                })
            }
        }
    }

    /// Applies `edit` for `actor` (`cli:<user>`, `api:<token>`); returns the
    /// configuration the source holds after it.
    pub fn edit(&self, edit: &Edit, actor: &str) -> Result<Config, EditError> {
        match self {
            Source::File { path } => edit_file(path, edit),
            Source::Postgres { path, target } => {
                let text = read(path).map_err(EditError::Io)?;
                let (action, subject) = edit.describe();
                let who = Actor { name: actor.to_owned(), action: action.to_owned(), subject: subject.clone() };
                let outcome = on_own_runtime(async {
                    let mut client = target.connect().await.map_err(|error| EditError::Io(format!("{error:#}")))?;
                    let committed = config_source::edit_rows(&mut client, &who, |rows| {
                        let mut document = document_of_rows(&text, rows).map_err(EditError::Invalid)?;
                        apply(&mut document, edit)?;
                        Config::from_toml_str(&document.to_string()).map_err(|error| EditError::Invalid(error.to_string()))?;
                        rows_of(&document).map_err(EditError::BadInput)
                    })
                    .await;
                    match committed {
                        Ok(rows) => Ok(rows),
                        Err(EditFailure::Database(error)) => Err(EditError::Io(format!("{error:#}"))),
                        Err(EditFailure::Refused(refused)) => {
                            let refusal = Actor { action: format!("{action} refused"), ..who.clone() };
                            if let Err(error) = config_source::audit(&client, &refusal, &refused.to_string()).await {
                                tracing::error!(error = %format!("{error:#}"), "cannot record a refused change in audit_log");
                            }
                            Err(refused)
                        }
                    }
                })?;
                config_of_rows(&text, &outcome).map_err(EditError::Invalid)
            }
        }
    }

    /// What SIGHUP, `tradebridge reload` and the admin API do: [`Source::apply`],
    /// then the outcome logged and written where `tradebridge reload` reads it.
    pub fn reload(&self, journal_dir: &Path, inbox: &RouterInbox, actor: &str) -> ReloadOutcome {
        let outcome = self.apply(inbox, actor);
        crate::reload::record_reload(journal_dir, self.describe(), actor, &outcome);
        outcome
    }

    /// The file's text (for composing with the tables' rows).
    pub fn file_text(&self) -> Result<String, String> {
        read(self.path())
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("reading {}: {error}", path.display()))
}

/// A TOML value as `key = value` text, without the file's spacing.
fn line(key: &str, item: &Item) -> Result<String, String> {
    let mut value = item.clone().into_value().map_err(|_| format!("`{key}` is not a value"))?;
    value.decor_mut().clear();
    Ok(format!("{key} = {value}"))
}

/// Checks that `text` holds only `key = value` lines (no table headers),
/// so a row cannot reach outside its own table.
fn check_lines(text: &str, what: &str) -> Result<(), String> {
    let document: DocumentMut = text.parse().map_err(|error: toml_edit::TomlError| format!("{what}: not TOML `key = value` lines: {}", brief(&error, text)))?;
    for (key, item) in document.iter() {
        if !item.is_value() {
            return Err(format!("{what}: `{key}` is a table; expected `key = value` lines"));
        }
    }
    Ok(())
}

/// The file's text with its `[[account]]` and `[[follow]]` tables replaced
/// by the rows'. An error names the row whose text is not TOML lines.
pub fn compose(file_text: &str, rows: &ConfigRows) -> Result<String, String> {
    let mut document: DocumentMut = file_text.parse().map_err(|error: toml_edit::TomlError| format!("the configuration file: {}", brief(&error, file_text)))?;
    document.remove("account");
    document.remove("follow");
    let mut text = document.to_string();
    let quoted = |text: &str| toml_edit::Value::from(text).to_string();
    for account in &rows.accounts {
        let what = format!("config_accounts login {}", account.login);
        check_lines(&account.settings, &format!("{what}: settings"))?;
        if !account.previous_keys.is_empty() {
            let entry = format!("previous_keys = {}", account.previous_keys);
            check_lines(&entry, &format!("{what}: previous_keys"))?;
            if entry.parse::<DocumentMut>().map_or(0, |document| document.len()) != 1 {
                return Err(format!("{what}: previous_keys: expected one TOML array"));
            }
        }
        text.push_str(&format!("\n# {what}\n[[account]]\nlogin = {}\nrole = {}\nserver = {}\nkey_sha256 = {}\n", account.login, quoted(&account.role), quoted(&account.server), quoted(&account.key_sha256)));
        if let Some(platform) = &account.platform {
            text.push_str(&format!("platform = {}\n", quoted(platform)));
        }
        if !account.enabled {
            text.push_str("enabled = false\n");
        }
        if !account.previous_keys.is_empty() {
            text.push_str(&format!("previous_keys = {}\n", account.previous_keys));
        }
        text.push_str(account.settings.trim());
        text.push('\n');
    }
    for follow in &rows.follows {
        let what = format!("config_follows slave {} master {}", follow.slave, follow.master);
        check_lines(&follow.rules, &format!("{what}: rules"))?;
        text.push_str(&format!("\n# {what}\n[[follow]]\nslave = {}\nmaster = {}\n{}\n", follow.slave, follow.master, follow.rules.trim()));
    }
    Ok(text)
}

fn document_of_rows(file_text: &str, rows: &ConfigRows) -> Result<DocumentMut, String> {
    let text = compose(file_text, rows)?;
    text.parse().map_err(|error: toml_edit::TomlError| brief(&error, &text))
}

/// A TOML error as its message and line, without the text it quotes (a
/// row may hold key hashes).
fn brief(error: &toml_edit::TomlError, text: &str) -> String {
    let line = error.span().map_or(0, |span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    format!("line {line}: {}", error.message().trim())
}

/// The configuration of the file's text with the rows' accounts and
/// follows, validated as at start.
pub fn config_of_rows(file_text: &str, rows: &ConfigRows) -> Result<Config, String> {
    let text = compose(file_text, rows)?;
    Config::from_toml_str(&text).map_err(|error| format!("the accounts and follows in Postgres do not validate: {error}"))
}

fn login(table: &toml_edit::Table, key: &str, what: &str) -> Result<u64, String> {
    table.get(key).and_then(Item::as_integer).and_then(|login| u64::try_from(login).ok()).ok_or_else(|| format!("{what}: `{key}` is not a login"))
}

fn text_of(table: &toml_edit::Table, key: &str, what: &str) -> Result<String, String> {
    table.get(key).and_then(Item::as_str).map(str::to_owned).ok_or_else(|| format!("{what}: `{key}` is not a string"))
}

/// The rows of a document's `[[account]]` and `[[follow]]` tables.
pub fn rows_of(document: &DocumentMut) -> Result<ConfigRows, String> {
    let mut rows = ConfigRows::default();
    for (index, table) in document.get("account").and_then(Item::as_array_of_tables).into_iter().flat_map(|tables| tables.iter()).enumerate() {
        let what = format!("account[{index}]");
        let mut account = AccountRow {
            login: login(table, "login", &what)?,
            role: text_of(table, "role", &what)?,
            server: text_of(table, "server", &what)?,
            platform: table.get("platform").and_then(Item::as_str).map(str::to_owned),
            key_sha256: text_of(table, "key_sha256", &what)?.to_ascii_lowercase(),
            enabled: table.get("enabled").and_then(Item::as_bool).unwrap_or(true),
            previous_keys: String::new(),
            settings: String::new(),
        };
        let mut settings = Vec::new();
        for (key, item) in table.iter() {
            match key {
                "login" | "role" | "server" | "platform" | "key_sha256" | "enabled" => {}
                "previous_keys" => {
                    let mut value = item.clone().into_value().map_err(|_| format!("{what}: previous_keys is not an array"))?;
                    value.decor_mut().clear();
                    account.previous_keys = value.to_string();
                }
                _ => settings.push(line(key, item)?),
            }
        }
        account.settings = settings.join("\n");
        rows.accounts.push(account);
    }
    for (index, table) in document.get("follow").and_then(Item::as_array_of_tables).into_iter().flat_map(|tables| tables.iter()).enumerate() {
        let what = format!("follow[{index}]");
        let mut rules = Vec::new();
        for (key, item) in table.iter() {
            if !matches!(key, "slave" | "master") {
                rules.push(line(key, item)?);
            }
        }
        rows.follows.push(FollowRow { slave: login(table, "slave", &what)?, master: login(table, "master", &what)?, rules: rules.join("\n") });
    }
    rows.accounts.sort_by_key(|row| row.login);
    rows.follows.sort_by_key(|row| (row.slave, row.master));
    Ok(rows)
}

/// The file's own `[[account]]` and `[[follow]]` tables as rows (what a
/// first start on Postgres imports).
pub fn rows_of_file(file_text: &str) -> Result<ConfigRows, String> {
    let document: DocumentMut = file_text.parse().map_err(|error: toml_edit::TomlError| format!("the configuration file: {}", brief(&error, file_text)))?;
    rows_of(&document)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# The bridge.
[server]
listen = "127.0.0.1:0"
journal_dir = "/tmp/unused"

[[account]]
login = 1
server = "S"
role = "master"
key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
contracts = { XAUUSD = 100.0 }

[[account]]
login = 2
server = "S \"quoted\""
role = "slave"
platform = "mt5"
key_sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
enabled = false
max_positions = 3
previous_keys = [{ key_sha256 = "2222222222222222222222222222222222222222222222222222222222222222", expires = 2030-01-01T00:00:00Z }]

[[follow]]
slave = 2
master = 1
lot = { mode = "multiplier", value = 2.0 }
mode = "frozen"
"#;

    #[test]
    fn a_parse_error_names_its_line_without_quoting_it() {
        // Shows: settings that are not TOML give an error with the row and line, without the text (which may hold a hash); previous_keys with a second key is refused.
        let mut rows = rows_of_file(FILE).unwrap();
        rows.accounts[0].settings = "secret-hash-abcdef = = 1".into();
        let error = config_of_rows(FILE, &rows).unwrap_err();
        assert!(error.contains("config_accounts login 1: settings") && error.contains("line 1") && !error.contains("abcdef"), "{error}");
        let mut rows = rows_of_file(FILE).unwrap();
        rows.accounts[1].previous_keys = "[]\nenabled = true".into();
        assert!(config_of_rows(FILE, &rows).unwrap_err().contains("expected one TOML array"));
    }

    #[test]
    fn rows_made_from_a_file_give_back_the_same_configuration() {
        // Shows: a file's accounts and follows as rows, composed again with the file's [server], load as the same accounts and follows (every key kept: contracts, risk limit, platform, enabled, previous key, lot rule, mode); the rows of the composed text are the same rows.
        let config = Config::from_toml_str(FILE).unwrap();
        let rows = rows_of_file(FILE).unwrap();
        assert_eq!(rows.accounts.len(), 2);
        assert_eq!(rows.accounts[1].settings, "max_positions = 3");
        let again = config_of_rows(FILE, &rows).unwrap();
        assert_eq!(again.accounts, config.accounts);
        assert_eq!(&*again.follows, &*config.follows);
        assert_eq!(rows_of_file(&compose(FILE, &rows).unwrap()).unwrap(), rows);
    }

    #[test]
    fn a_row_cannot_reach_outside_its_table_and_a_bad_value_names_the_key() {
        // Shows: settings holding a table header are refused naming the row; a risk limit out of range fails the validation naming the key.
        let mut rows = rows_of_file(FILE).unwrap();
        rows.accounts[1].settings = "[server]\nlisten = \"0.0.0.0:1\"".into();
        let error = config_of_rows(FILE, &rows).unwrap_err();
        assert!(error.contains("config_accounts login 2: settings"), "{error}");
        let mut rows = rows_of_file(FILE).unwrap();
        rows.accounts[1].settings = "max_positions = -1".into();
        let error = config_of_rows(FILE, &rows).unwrap_err();
        assert!(error.contains("max_positions"), "{error}");
    }
}
