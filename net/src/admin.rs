//! The operator's commands on a TOML configuration (`tradebridge account
//! ...`, `tradebridge follow ...`): each edits the file in place, keeping
//! its comments and layout (toml_edit), is validated exactly as the bridge
//! validates at start before anything is written, and is then applied by a
//! running bridge as a reload would be.
//!
//! # Layout
//! - [`Edit`]: the edits, applied to a parsed document by [`apply`].
//! - [`list_accounts`], [`show_account`], [`list_follows`]: read-only views.
//! - [`new_key`]: a random API key; only its SHA-256 is written.
//! - [`append_audit`]: the append-only audit file beside the journal.
//!
//! # Invariants
//! - A file is only ever replaced whole (temporary file, then rename), and
//!   only by text that validated; an edit that fails changes nothing.
//! - A clear key is printed once and never written anywhere.

use std::io::{Read as _, Write as _};
use std::path::Path;

use sha2::{Digest, Sha256};
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};
use tradebridge_core::config::{datetime_ms, rfc3339_of_ms, Config};

/// Milliseconds of a duration written `0`, `90s`, `30m`, `24h` or `7d`.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let split = text.find(|character: char| !character.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 24h"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?}: expected a unit of s, m, h or d, e.g. 24h")),
    };
    number.checked_mul(unit_ms).ok_or_else(|| format!("{text:?}: too long"))
}

/// An operator's change to the file.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    AddAccount { login: u64, role: String, server: String, platform: String, key_sha256: String, limits: Vec<(String, String)> },
    SetEnabled { login: u64, enabled: bool },
    /// The account and every follow naming it.
    RemoveAccount { login: u64 },
    /// A new key; the old one goes to `previous_keys` until `now_ms +
    /// grace_ms` (not at all with no grace), and expired ones leave it.
    RotateKey { login: u64, key_sha256: String, grace_ms: u64, now_ms: u64 },
    /// `rules`: TOML lines (`key = value`) of a `[[follow]]` table.
    AddFollow { master: u64, slave: u64, rules: Vec<String> },
    /// Sets (adds or replaces) the given rule keys; the others stay.
    SetFollow { master: u64, slave: u64, rules: Vec<String> },
    RemoveFollow { master: u64, slave: u64 },
    /// A bearer token of the admin API, by name and SHA-256.
    AddToken { name: String, token_sha256: String },
    RemoveToken { name: String },
}

impl Edit {
    /// For the audit file: the action and its subject.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Edit::AddAccount { login, .. } => ("account add", format!("account {login}")),
            Edit::SetEnabled { login, enabled: true } => ("account enable", format!("account {login}")),
            Edit::SetEnabled { login, enabled: false } => ("account disable", format!("account {login}")),
            Edit::RemoveAccount { login } => ("account remove", format!("account {login}")),
            Edit::RotateKey { login, .. } => ("key rotate", format!("account {login}")),
            Edit::AddFollow { master, slave, .. } => ("follow add", format!("follow {slave}<{master}")),
            Edit::SetFollow { master, slave, .. } => ("follow set", format!("follow {slave}<{master}")),
            Edit::RemoveFollow { master, slave } => ("follow remove", format!("follow {slave}<{master}")),
            Edit::AddToken { name, .. } => ("admin token add", format!("admin token {name}")),
            Edit::RemoveToken { name } => ("admin token remove", format!("admin token {name}")),
        }
    }
}

fn login_of(table: &Table, key: &str) -> Option<u64> {
    table.get(key).and_then(Item::as_integer).and_then(|login| u64::try_from(login).ok())
}

fn tables<'a>(document: &'a mut DocumentMut, name: &str) -> &'a mut ArrayOfTables {
    if document.get(name).and_then(Item::as_array_of_tables).is_none() {
        document.insert(name, Item::ArrayOfTables(ArrayOfTables::new()));
    }
    document.get_mut(name).and_then(Item::as_array_of_tables_mut).expect("just made")
}

fn account_index(document: &mut DocumentMut, login: u64) -> Option<usize> {
    tables(document, "account").iter().position(|table| login_of(table, "login") == Some(login))
}

fn follow_index(document: &mut DocumentMut, master: u64, slave: u64) -> Option<usize> {
    tables(document, "follow").iter().position(|table| login_of(table, "master") == Some(master) && login_of(table, "slave") == Some(slave))
}

fn login_value(login: u64) -> Result<toml_edit::Value, String> {
    i64::try_from(login).map(toml_edit::Value::from).map_err(|_| format!("login {login}: expected at most {}", i64::MAX))
}

/// Parses `key = value` lines into (key, item) pairs, as a `[[follow]]` or
/// `[[account]]` table would hold them.
fn rule_items(rules: &[String]) -> Result<Vec<(String, Item)>, String> {
    let mut items = Vec::new();
    for rule in rules {
        let parsed: DocumentMut = rule.parse().map_err(|error| format!("--rule {rule:?}: not TOML `key = value`: {error}"))?;
        let mut any = false;
        for (key, item) in parsed.iter() {
            if matches!(key, "slave" | "master") {
                return Err(format!("--rule {rule:?}: `{key}` is given by --slave and --master"));
            }
            items.push((key.to_owned(), item.clone()));
            any = true;
        }
        if !any {
            return Err(format!("--rule {rule:?}: expected `key = value`"));
        }
    }
    Ok(items)
}

/// Applies `edit` to `document`; an error names what is missing or wrong.
/// The result is not validated here (see [`edit_file`]).
pub fn apply(document: &mut DocumentMut, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::AddAccount { login, role, server, platform, key_sha256, limits } => {
            if account_index(document, *login).is_some() {
                return Err(EditError::Conflict(format!("account {login} exists already")));
            }
            let mut table = Table::new();
            table.insert("login", value(login_value(*login)?));
            table.insert("server", value(server.as_str()));
            table.insert("role", value(role.as_str()));
            table.insert("platform", value(platform.as_str()));
            table.insert("key_sha256", value(key_sha256.as_str()));
            for (key, item) in rule_items(&limits.iter().map(|(key, text)| format!("{key} = {text}")).collect::<Vec<_>>())? {
                table.insert(&key, item);
            }
            tables(document, "account").push(table);
        }
        Edit::SetEnabled { login, enabled } => {
            let index = account_index(document, *login).ok_or_else(|| EditError::Missing(format!("no account {login}")))?;
            let table = tables(document, "account").get_mut(index).expect("found");
            if *enabled {
                table.remove("enabled");
            } else {
                table.insert("enabled", value(false));
            }
        }
        Edit::RemoveAccount { login } => {
            let index = account_index(document, *login).ok_or_else(|| EditError::Missing(format!("no account {login}")))?;
            tables(document, "account").remove(index);
            tables(document, "follow").retain(|table| login_of(table, "master") != Some(*login) && login_of(table, "slave") != Some(*login));
        }
        Edit::RotateKey { login, key_sha256, grace_ms, now_ms } => {
            let index = account_index(document, *login).ok_or_else(|| EditError::Missing(format!("no account {login}")))?;
            let table = tables(document, "account").get_mut(index).expect("found");
            let old = table.get("key_sha256").and_then(Item::as_str).map(str::to_owned).ok_or_else(|| EditError::BadInput(format!("account {login} has no key_sha256 string")))?;
            let mut kept = toml_edit::Array::new();
            if let Some(array) = table.get("previous_keys").and_then(Item::as_array) {
                for entry in array.iter() {
                    let expires = entry.as_inline_table().and_then(|inline| inline.get("expires")).and_then(toml_edit::Value::as_datetime).and_then(datetime_ms);
                    if expires.is_some_and(|expires_ms| expires_ms > *now_ms) {
                        kept.push_formatted(entry.clone());
                    }
                }
            }
            if *grace_ms > 0 {
                let mut entry = toml_edit::InlineTable::new();
                entry.insert("key_sha256", old.into());
                let expires: toml_edit::Datetime = rfc3339_of_ms(now_ms.saturating_add(*grace_ms)).parse().map_err(|error| EditError::BadInput(format!("expiry: {error}")))?;
                entry.insert("expires", expires.into());
                kept.push(entry);
            }
            if kept.is_empty() {
                table.remove("previous_keys");
            } else {
                table.insert("previous_keys", value(kept));
            }
            table.insert("key_sha256", value(key_sha256.as_str()));
            // The new key's age starts now (key_max_age_days); an expiry set
            // for the old key does not carry over.
            let created: toml_edit::Datetime = rfc3339_of_ms(*now_ms).parse().map_err(|error| EditError::BadInput(format!("key_created: {error}")))?;
            table.insert("key_created", value(created));
            table.remove("key_expires");
        }
        Edit::AddFollow { master, slave, rules } => {
            if follow_index(document, *master, *slave).is_some() {
                return Err(EditError::Conflict(format!("slave {slave} follows master {master} already (follow set changes its rules)")));
            }
            let mut table = Table::new();
            table.insert("slave", value(login_value(*slave)?));
            table.insert("master", value(login_value(*master)?));
            for (key, item) in rule_items(rules)? {
                table.insert(&key, item);
            }
            tables(document, "follow").push(table);
        }
        Edit::SetFollow { master, slave, rules } => {
            let index = follow_index(document, *master, *slave).ok_or_else(|| EditError::Missing(format!("slave {slave} does not follow master {master}")))?;
            let items = rule_items(rules)?;
            let table = tables(document, "follow").get_mut(index).expect("found");
            for (key, item) in items {
                table.insert(&key, item);
            }
        }
        Edit::RemoveFollow { master, slave } => {
            let index = follow_index(document, *master, *slave).ok_or_else(|| EditError::Missing(format!("slave {slave} does not follow master {master}")))?;
            tables(document, "follow").remove(index);
        }
        Edit::AddToken { name, token_sha256 } => {
            let tokens = admin_tokens(document)?;
            if tokens.iter().any(|table| table.get("name").and_then(Item::as_str) == Some(name.as_str())) {
                return Err(EditError::Conflict(format!("admin token {name:?} exists already")));
            }
            let mut table = Table::new();
            table.insert("name", value(name.as_str()));
            table.insert("token_sha256", value(token_sha256.as_str()));
            tokens.push(table);
        }
        Edit::RemoveToken { name } => {
            let tokens = admin_tokens(document)?;
            let index = tokens
                .iter()
                .position(|table| table.get("name").and_then(Item::as_str) == Some(name.as_str()))
                .ok_or_else(|| EditError::Missing(format!("no admin token {name:?}")))?;
            tokens.remove(index);
        }
    }
    Ok(())
}

/// `[[admin.token]]`, with `[admin]` made when missing.
fn admin_tokens(document: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    if document.get("admin").is_none() {
        document.insert("admin", Item::Table(Table::new()));
    }
    let admin = document.get_mut("admin").and_then(Item::as_table_mut).ok_or_else(|| EditError::BadInput("`admin` is not a table".to_owned()))?;
    if admin.get("token").and_then(Item::as_array_of_tables).is_none() {
        admin.insert("token", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    Ok(admin.get_mut("token").and_then(Item::as_array_of_tables_mut).expect("just made"))
}

/// Why an edit of a file failed.
#[derive(Debug)]
pub enum EditError {
    /// The file could not be read or written.
    Io(String),
    /// The account or follow the edit names is not in the file.
    Missing(String),
    /// The account or follow the edit would add is there already.
    Conflict(String),
    /// The edit itself is malformed (a rule that is not `key = value`).
    BadInput(String),
    /// The edited file would not validate; nothing was written.
    Invalid(String),
}

impl From<String> for EditError {
    fn from(text: String) -> EditError {
        EditError::BadInput(text)
    }
}

impl std::fmt::Display for EditError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Io(text) | EditError::Missing(text) | EditError::Conflict(text) | EditError::BadInput(text) => formatter.write_str(text),
            EditError::Invalid(text) => write!(formatter, "the file would be invalid, so it was not changed: {text}"),
        }
    }
}

/// Edits the file at `path`: parse, apply, validate the whole new text as
/// at start, then replace the file (temporary file and rename). Returns the
/// new configuration.
pub fn edit_file(path: &Path, edit: &Edit) -> Result<Config, EditError> {
    // The CLI (another process) and the admin API (this one) may edit the
    // same file at once: each reads, edits and replaces it under this lock,
    // so neither loses the other's change.
    let _lock = EditLock::take(path).map_err(|error| EditError::Io(format!("locking {}: {error}", path.display())))?;
    let text = std::fs::read_to_string(path).map_err(|error| EditError::Io(format!("reading {}: {error}", path.display())))?;
    let mut document: DocumentMut = text.parse().map_err(|error| EditError::Invalid(format!("{}: {error}", path.display())))?;
    apply(&mut document, edit)?;
    let edited = document.to_string();
    let config = Config::from_toml_str(&edited).map_err(|error| EditError::Invalid(error.to_string()))?;
    let temporary = path.with_extension("toml.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        if let Ok(metadata) = std::fs::metadata(path) {
            file.set_permissions(metadata.permissions())?;
        }
        file.write_all(edited.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|error| EditError::Io(format!("writing {}: {error}", path.display())))?;
    Ok(config)
}

/// An exclusive advisory lock (flock) on `.<file name>.lock` beside a
/// configuration file, held while it is read, edited and replaced (the
/// file itself is replaced by a rename, so it cannot carry the lock).
struct EditLock {
    /// Closing it releases the lock.
    _file: std::fs::File,
}

impl EditLock {
    fn take(path: &Path) -> std::io::Result<EditLock> {
        use std::os::fd::AsRawFd as _;
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let lock_path = path.with_file_name(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_path)?;
        // SAFETY: flock on a descriptor this struct owns; released when it closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EditLock { _file: file })
    }
}

/// A new API key: 32 random bytes from the kernel, as 64 hex digits, and
/// its SHA-256 (what the file keeps).
pub fn new_key() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let key: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let hash: String = Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
    Ok((key, hash))
}

/// One line per account: login, role, server, enabled, follows as slave
/// and as master.
pub fn list_accounts(config: &Config) -> Vec<String> {
    let mut lines = vec!["login\trole\tserver\tenabled\tfollows".to_owned()];
    for account in &config.accounts {
        let follows = config.follows.iter().filter(|follow| follow.slave == account.login || follow.master == account.login).count();
        lines.push(format!("{}\t{}\t{}\t{}\t{follows}", account.login, account.role.as_str(), account.server, account.enabled));
    }
    lines
}

/// An account's settings (never its key hash) and its follows.
pub fn show_account(config: &Config, login: u64) -> Option<Vec<String>> {
    let account = config.account(login)?;
    let mut lines = vec![
        format!("login: {}", account.login),
        format!("role: {}", account.role.as_str()),
        format!("server: {}", account.server),
        format!("enabled: {}", account.enabled),
        format!("risk: {:?}", account.risk),
    ];
    if !account.contracts.is_empty() {
        lines.push(format!("contracts: {:?}", account.contracts));
    }
    for follow in config.follows.iter().filter(|follow| follow.slave == login || follow.master == login) {
        lines.push(format!("follow: slave {} copies master {} (lot {:?}, mode {:?}, on_remove {:?})", follow.slave, follow.master, follow.lot, follow.mode, follow.on_remove));
    }
    Some(lines)
}

/// One line per follow, optionally of one master or one slave.
pub fn list_follows(config: &Config, master: Option<u64>, slave: Option<u64>) -> Vec<String> {
    let mut lines = vec!["slave\tmaster\tlot\tmode\ton_remove".to_owned()];
    for follow in config.follows.iter() {
        if master.is_some_and(|login| login != follow.master) || slave.is_some_and(|login| login != follow.slave) {
            continue;
        }
        lines.push(format!("{}\t{}\t{:?}\t{:?}\t{:?}", follow.slave, follow.master, follow.lot, follow.mode, follow.on_remove));
    }
    lines
}

/// Appends one JSON line to `journal_dir`'s audit file
/// ([`crate::audit::AUDIT_FILE`]): who, what, when (ms since the epoch),
/// and the outcome. Never a key.
pub fn append_audit(journal_dir: &Path, actor: &str, edit: &Edit, outcome: &str) -> std::io::Result<()> {
    let (action, subject) = edit.describe();
    let at_ms = crate::clock::unix_ms();
    crate::audit::append_audit_line(journal_dir, &serde_json::json!({ "at_ms": at_ms, "actor": actor, "action": action, "subject": subject, "outcome": outcome }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# The bridge.
[server]
listen = "127.0.0.1:0"
journal_dir = "/tmp/unused"

# Our master.
[[account]]
login = 1
server = "S"
role = "master"
key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    fn edited(edits: &[Edit]) -> Result<(String, Config), String> {
        let mut document: DocumentMut = FILE.parse().unwrap();
        for edit in edits {
            apply(&mut document, edit).map_err(|error| error.to_string())?;
        }
        let text = document.to_string();
        let config = Config::from_toml_str(&text).map_err(|error| error.to_string())?;
        Ok((text, config))
    }

    #[test]
    fn edits_keep_the_comments_and_validate_as_the_bridge_does() {
        // Shows: adding a slave with a limit and a follow with a lot rule, disabling and enabling, setting a rule and removing give files that keep the operator's comments and load with the expected accounts and follows; removing an account removes its follows too.
        let add = Edit::AddAccount { login: 2, role: "slave".into(), server: "S".into(), platform: "mt5".into(), key_sha256: "ab".repeat(32), limits: vec![("max_positions".into(), "3".into())] };
        let follow = Edit::AddFollow { master: 1, slave: 2, rules: vec!["lot = { mode = \"multiplier\", value = 2.0 }".into()] };
        let (text, config) = edited(&[add.clone(), follow.clone()]).expect("valid");
        assert!(text.contains("# The bridge.") && text.contains("# Our master."), "{text}");
        assert_eq!(config.account(2).map(|account| account.risk.max_positions), Some(Some(3)));
        assert_eq!(config.follows[0].lot, tradebridge_core::config::LotRule::Multiplier { factor: 2.0 });
        let (_, disabled) = edited(&[add.clone(), Edit::SetEnabled { login: 2, enabled: false }]).unwrap();
        assert!(!disabled.account(2).unwrap().enabled);
        let (text, enabled) = edited(&[add.clone(), Edit::SetEnabled { login: 2, enabled: false }, Edit::SetEnabled { login: 2, enabled: true }]).unwrap();
        assert!(enabled.account(2).unwrap().enabled && !text.contains("enabled"), "{text}");
        let set = Edit::SetFollow { master: 1, slave: 2, rules: vec!["mode = \"frozen\"".into()] };
        let (_, frozen) = edited(&[add.clone(), follow.clone(), set]).unwrap();
        assert_eq!(frozen.follows[0].mode, tradebridge_core::config::CopyMode::Frozen);
        assert_eq!(frozen.follows[0].lot, tradebridge_core::config::LotRule::Multiplier { factor: 2.0 }, "set keeps the other rules");
        let (_, removed) = edited(&[add.clone(), follow.clone(), Edit::RemoveAccount { login: 2 }]).unwrap();
        assert!(removed.account(2).is_none() && removed.follows.is_empty());
        let (_, unfollowed) = edited(&[add, follow, Edit::RemoveFollow { master: 1, slave: 2 }]).unwrap();
        assert!(unfollowed.follows.is_empty() && unfollowed.account(2).is_some());
    }

    #[test]
    fn wrong_edits_are_refused_by_name() {
        // Shows: an existing login, a missing account or follow, a rule naming slave or master, a rule that is not TOML, and a rule the bridge's validation refuses each give an error naming the problem.
        let add = Edit::AddAccount { login: 1, role: "slave".into(), server: "S".into(), platform: "mt5".into(), key_sha256: "ab".repeat(32), limits: vec![] };
        assert_eq!(edited(&[add]).unwrap_err(), "account 1 exists already");
        assert_eq!(edited(&[Edit::SetEnabled { login: 9, enabled: false }]).unwrap_err(), "no account 9");
        assert_eq!(edited(&[Edit::RemoveFollow { master: 1, slave: 9 }]).unwrap_err(), "slave 9 does not follow master 1");
        let naming = edited(&[Edit::AddFollow { master: 1, slave: 9, rules: vec!["slave = 3".into()] }]).unwrap_err();
        assert!(naming.contains("`slave` is given by --slave"), "{naming}");
        let not_toml = edited(&[Edit::AddFollow { master: 1, slave: 9, rules: vec!["lot = {".into()] }]).unwrap_err();
        assert!(not_toml.contains("not TOML"), "{not_toml}");
        let out_of_range = edited(&[Edit::AddFollow { master: 1, slave: 9, rules: vec!["lot = { mode = \"multiplier\", value = -1.0 }".into()] }]).unwrap_err();
        assert!(out_of_range.contains("follow[0].lot.value"), "{out_of_range}");
    }

    #[test]
    fn a_rotation_keeps_the_old_key_for_its_grace_and_drops_expired_ones() {
        // Shows: a rotation with a 24 h grace keeps the old hash in previous_keys until then; a second rotation 25 h later drops that expired one and keeps the second; with no grace nothing is kept; durations parse.
        let now = 1_796_702_400_000; // 2026-12-08T04:00:00Z
        let rotate = |key: &str, grace_ms: u64, now_ms: u64| Edit::RotateKey { login: 1, key_sha256: key.repeat(64), grace_ms, now_ms };
        let (text, config) = edited(&[rotate("a", 86_400_000, now)]).unwrap();
        assert!(text.contains("expires = 2026-12-09T04:00:00Z"), "{text}");
        let account = config.account(1).unwrap();
        assert_eq!((account.key_sha256, account.previous_keys.len()), ([0xaa; 32], 1));
        assert_eq!(account.key_created_ms, Some(now - now % 1_000), "the new key's age starts at the rotation (whole seconds)");
        assert_eq!((account.previous_keys[0].key_sha256, account.previous_keys[0].expires_ms), ([0; 32], now + 86_400_000));
        let (_, again) = edited(&[rotate("a", 86_400_000, now), rotate("b", 3_600_000, now + 25 * 3_600_000)]).unwrap();
        let previous = &again.account(1).unwrap().previous_keys;
        assert_eq!(previous.len(), 1, "{previous:?}");
        assert_eq!(previous[0].key_sha256, [0xaa; 32]);
        let (text, at_once) = edited(&[rotate("c", 0, now)]).unwrap();
        assert!(at_once.account(1).unwrap().previous_keys.is_empty() && !text.contains("previous_keys"), "{text}");
        assert_eq!((parse_duration_ms("24h"), parse_duration_ms("0"), parse_duration_ms("90s")), (Ok(86_400_000), Ok(0), Ok(90_000)));
        assert!(parse_duration_ms("1w").unwrap_err().contains("unit"));
    }

    #[test]
    fn a_new_key_is_random_and_only_its_hash_is_kept() {
        // Shows: two keys differ, are 64 hex digits, and the hash is the SHA-256 of the key's text.
        let (first, hash) = new_key().unwrap();
        let (second, _) = new_key().unwrap();
        assert_ne!(first, second);
        assert_eq!(first.len(), 64);
        let expected: String = Sha256::digest(first.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hash, expected);
    }
}
