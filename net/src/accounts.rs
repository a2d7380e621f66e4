//! The configured accounts as every shard sees them: who may log in (key
//! hash, server, role), which connection is the live one for each login, and
//! each account's rate-limit bucket.
//!
//! # Layout
//! - [`AccountTable`]: one [`AccountEntry`] per configured login, built at
//!   start-up and changed by the router when a configuration applies
//!   ([`AccountTable::apply`]); the shards look logins up at `hello`.
//! - [`AccountEntry`]: the account's fixed identity and its few mutable,
//!   thread-safe cells.
//! - [`SessionControl`]: how a newer login tells the older connection (on
//!   any shard) to close with 4004.
//! - [`authenticate`]: the `hello` check.
//!
//! # Invariants
//! - The table holds exactly the configured accounts; logins not in the
//!   configuration are refused before any per-login state exists, so a peer
//!   cannot make the bridge allocate per guessed login.
//! - An account keeps its entry (sessions, copies, budget) across a change
//!   of its server, key or `enabled` flag; one removed, or whose role
//!   changed, gets a new entry, and the old one's live session is closed.
//! - At most one [`SessionControl`] is live per login: [`AccountEntry::claim`]
//!   supersedes the previous one before installing the new one.
//! - Keys are compared as SHA-256 digests in constant time and never stored
//!   or logged in clear.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tradebridge_core::config::{Cidr, Config, ServerConfig};
use tradebridge_core::protocol::{Copy, CopyAction, Hello, Role};

use crate::limits::TokenBucket;

/// The shared cell through which a newer session of the same login (close
/// 4004) or the shutdown (close 1001) closes a session, whichever shard
/// owns it.
#[derive(Debug, Default)]
pub struct SessionControl {
    /// The close code asked for, 0 while none; set once (the first request
    /// wins). Stored with `Release` before waking, loaded with `Acquire` by
    /// the owner, so the owner sees it when woken.
    close_code: AtomicU32,
    /// The owner's task waker, registered each time it waits; woken (from any
    /// thread: glommio queues foreign wakes) when `close_code` is set.
    waker: AtomicWaker,
    /// The session's connection id once registered on its shard, 0 before;
    /// set once.
    connection_id: AtomicU64,
    /// Who the session is, for the operator's view; set once at `welcome`.
    details: std::sync::OnceLock<SessionDetails>,
    /// When the peer was last heard (a text frame or its own ping), on the
    /// shard's monotonic clock (`Shared::now_ms`); stored by the owner only.
    heard_ms: AtomicU64,
}

/// A welcomed session as the operator sees it.
#[derive(Clone, Debug)]
pub struct SessionDetails {
    pub session_id: String,
    pub role: Role,
    pub remote_address: String,
    /// Wall clock at `welcome`, ms since the Unix epoch.
    pub since_ms: u64,
}

impl SessionControl {
    /// The close code asked for, if any.
    pub fn close_requested(&self) -> Option<u16> {
        let code = self.close_code.load(Ordering::Acquire);
        (code != 0).then_some(code as u16)
    }

    /// Resolves with the close code once a close is asked for.
    pub async fn wait_close_request(&self) -> u16 {
        poll_fn(|context| {
            self.waker.register(context.waker());
            match self.close_requested() {
                Some(code) => Poll::Ready(code),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Records the session's connection id (once, at registration).
    pub fn set_connection_id(&self, connection_id: u64) {
        debug_assert!(connection_id != 0, "connection ids are never 0");
        self.connection_id.store(connection_id, Ordering::Release);
    }

    /// Records who the session is (once, at `welcome`).
    pub fn set_details(&self, details: SessionDetails) {
        let _ = self.details.set(details);
    }

    /// Who the session is, once welcomed.
    pub fn details(&self) -> Option<&SessionDetails> {
        self.details.get()
    }

    /// Notes that the peer was heard at `now_ms` (the shard's clock).
    pub fn heard(&self, now_ms: u64) {
        self.heard_ms.store(now_ms, Ordering::Relaxed);
    }

    /// When the peer was last heard (the shard's clock).
    pub fn heard_ms(&self) -> u64 {
        self.heard_ms.load(Ordering::Relaxed)
    }

    /// Asks the owning session to close with `code` (not 0).
    pub fn request_close(&self, code: u16) {
        debug_assert!(code != 0, "0 means no close request");
        let _ = self.close_code.compare_exchange(0, u32::from(code), Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }
}

/// Copies kept per slave for replay to a reconnecting terminal; beyond it
/// the oldest is dropped (counted in the log). A terminal that is this many
/// copies behind has been away far longer than any open stays valid.
pub const COPIES_RETAINED_MAX: usize = 4_096;

/// Where the router leaves a slave's copies and where the shards find them.
#[derive(Debug, Default)]
pub struct SlaveDelivery {
    /// Copies not yet known finished, in `seq` order; pushed by the router
    /// once journaled durably, pruned by the slave's `last_seq` and results.
    pub copies: std::collections::VecDeque<Copy>,
    /// The live connection of this slave (`links::connection_id`), 0 when
    /// none; set at `welcome`, cleared when that session ends.
    pub live_connection_id: u64,
    /// The highest copy `seq` ever kept (durable, and sent when the slave is
    /// connected); only grows. A terminal can only have finished copies that
    /// were kept, so a hello whose `last_seq` is above it is passed to the
    /// router: the terminal is further on than the journal.
    pub kept_seq: u64,
}

impl SlaveDelivery {
    /// Keeps `copy` for replay, dropping the oldest beyond the bound.
    pub fn retain(&mut self, copy: Copy) {
        debug_assert!(self.copies.back().is_none_or(|last| last.seq < copy.seq), "copies are kept in seq order");
        if self.copies.len() >= COPIES_RETAINED_MAX {
            if let Some(dropped) = self.copies.pop_front() {
                tracing::warn!(
                    seq = dropped.seq,
                    master = dropped.master,
                    pos = dropped.pos,
                    action = dropped.action.as_str(),
                    retained_max = COPIES_RETAINED_MAX,
                    "a slave away this long loses its oldest kept copy"
                );
            }
        }
        self.kept_seq = self.kept_seq.max(copy.seq);
        self.copies.push_back(copy);
    }

    /// Forgets every copy at or below `seq` (the terminal finished them).
    pub fn finished_up_to(&mut self, seq: u64) {
        while self.copies.front().is_some_and(|copy| copy.seq <= seq) {
            self.copies.pop_front();
        }
    }
}

/// True when `copy` may still be sent at wall-clock `now_ms`: opens and
/// pending orders expire, the other actions never do.
pub fn is_valid_at(copy: &Copy, now_ms: u64) -> bool {
    let expires = matches!(copy.action, CopyAction::Open | CopyAction::Pending) && copy.expires_ms != 0;
    !expires || now_ms <= copy.expires_ms
}

/// What a `hello` is checked against; replaced when a configuration
/// changes it.
#[derive(Clone, Debug)]
struct Credentials {
    /// The broker server name the `hello` must carry. Shared by every
    /// account of the same server (most configurations name a few servers
    /// for thousands of accounts).
    server: Arc<str>,
    /// SHA-256 of the account's API key.
    key_sha256: [u8; 32],
    /// Replaced keys with their expiry (wall clock, ms since the epoch),
    /// accepted until then.
    previous: Vec<([u8; 32], u64)>,
    /// False: every `hello` is refused (`enabled = false`).
    enabled: bool,
    /// Addresses a `hello` is accepted from; empty: any.
    allow_from: Vec<Cidr>,
    /// When the current key stops being accepted (`key_expires`, or
    /// `key_created` + `key_max_age_days`), ms since the epoch.
    key_expiry_ms: Option<u64>,
}

/// One configured account, as the shards share it.
#[derive(Debug)]
pub struct AccountEntry {
    /// The account's login; fixed.
    pub login: u64,
    /// The role the `hello` must claim; fixed (a change makes a new entry).
    pub role: Role,
    /// Server, key and the enabled flag.
    credentials: Mutex<Credentials>,
    /// The live session of this login, if any; replaced by each successful
    /// login and cleared by [`AccountEntry::release`] of that same session.
    live: Mutex<Option<Arc<SessionControl>>>,
    /// The account's frame budget; shared by its successive connections so a
    /// reconnect does not refill it.
    bucket: Mutex<TokenBucket>,
    /// Master: the highest `event.seq` held durably, sent as `ack_seq` in
    /// `welcome`; raised by the data path once an event is durable.
    pub durable_event_seq: AtomicU64,
    /// Slave: its copies and live connection. One lock orders the router's
    /// "keep, then look up the connection" against the session's "set the
    /// connection, then read the copies to replay", so no copy is missed.
    pub delivery: Mutex<SlaveDelivery>,
}

impl AccountEntry {
    /// The broker server name the `hello` must carry.
    pub fn server(&self) -> Arc<str> {
        Arc::clone(&lock(&self.credentials).server)
    }

    /// When the current key stops being accepted, if it ever does.
    pub fn key_expiry_ms(&self) -> Option<u64> {
        lock(&self.credentials).key_expiry_ms
    }

    /// False while the account is disabled.
    pub fn is_enabled(&self) -> bool {
        lock(&self.credentials).enabled
    }

    /// Makes `control` the live session of this login and supersedes the
    /// previous one (which then closes with 4004).
    pub fn claim(&self, control: Arc<SessionControl>) {
        let previous = lock(&self.live).replace(control);
        if let Some(previous) = previous {
            previous.request_close(tradebridge_core::protocol::close_code::REPLACED);
        }
    }

    /// Clears the live session if it is still `control` (a superseded session
    /// ending must not clear its successor).
    pub fn release(&self, control: &Arc<SessionControl>) {
        let mut live = lock(&self.live);
        if live.as_ref().is_some_and(|current| Arc::ptr_eq(current, control)) {
            *live = None;
        }
    }

    /// True while `control` is the live session of this login (no newer
    /// login has claimed it since).
    pub fn is_live(&self, control: &Arc<SessionControl>) -> bool {
        lock(&self.live).as_ref().is_some_and(|current| Arc::ptr_eq(current, control))
    }

    /// The connection id of the live session, 0 when none (or not yet
    /// registered).
    pub fn live_connection_id(&self) -> u64 {
        lock(&self.live).as_ref().map_or(0, |live| live.connection_id.load(Ordering::Acquire))
    }

    /// The live session, if any.
    pub fn live_session(&self) -> Option<Arc<SessionControl>> {
        lock(&self.live).clone()
    }

    /// Asks the live session, if any, to close with `code`.
    pub fn close_live(&self, code: u16) {
        if let Some(live) = lock(&self.live).as_ref() {
            live.request_close(code);
        }
    }

    /// Locks the slave's delivery state.
    pub fn delivery(&self) -> MutexGuard<'_, SlaveDelivery> {
        lock(&self.delivery)
    }

    /// Takes one frame from the account's budget at `now_ms`; false when the
    /// account is over its rate limit.
    pub fn take_token(&self, now_ms: u64) -> bool {
        lock(&self.bucket).take(now_ms)
    }
}

/// A poisoned lock here only means another connection's task panicked while
/// holding it; the guarded values (an `Option<Arc>` and a bucket) are valid
/// after any partial update, so the connection goes on with them.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every configured account, by login.
///
/// The map holds pointers (16-byte slots plus the key), each entry its own
/// allocation: a map of the ~190-byte entries themselves would round up to
/// a power of two of them (16,384 for 10,000 accounts, 3.2 MB).
#[derive(Debug)]
pub struct AccountTable {
    /// One entry per `[[account]]`. Read at each `hello` and by the router
    /// per copy; written only when a configuration applies.
    entries: RwLock<HashMap<u64, Arc<AccountEntry>>>,
    /// The rate limit new entries start with (`[server]`, fixed).
    rate_limit_per_second: u32,
    rate_limit_burst: u32,
}

/// What [`AccountTable::apply`] changed.
#[derive(Debug, Default)]
pub struct TableChange {
    /// Entries gone (the account removed, or replaced for a role change):
    /// their live sessions are to be closed.
    pub removed: Vec<Arc<AccountEntry>>,
    /// Entries kept whose account is now disabled.
    pub disabled: Vec<Arc<AccountEntry>>,
    pub added: usize,
    /// Entries kept with another server or key.
    pub credentials_changed: usize,
}

impl AccountTable {
    /// Builds the table from a validated configuration, each bucket full at
    /// `now_ms`.
    pub fn new(config: &Config, now_ms: u64) -> AccountTable {
        let server: &ServerConfig = &config.server;
        let table = AccountTable {
            entries: RwLock::new(HashMap::with_capacity(config.accounts.len())),
            rate_limit_per_second: server.rate_limit_per_second,
            rate_limit_burst: server.rate_limit_burst,
        };
        let change = table.apply(config, now_ms);
        assert!(change.removed.is_empty() && change.added == config.accounts.len(), "a validated configuration has unique logins");
        table
    }

    /// Makes the table hold `config`'s accounts: new ones get entries (their
    /// budget full at `now_ms`), kept ones take the new server, key and
    /// enabled flag, and removed ones, or ones whose role changed, are
    /// returned so their sessions can be closed (a role change gets a new
    /// entry). Accounts of one server share its name.
    /// Accounts whose current key expires within `within_ms` of `now_ms`
    /// (not yet expired), and those whose key has expired.
    pub fn key_expiry_counts(&self, now_ms: u64, within_ms: u64) -> (u64, u64) {
        let (mut expiring, mut expired) = (0, 0);
        for account in self.iter() {
            match account.key_expiry_ms() {
                Some(expiry_ms) if expiry_ms <= now_ms => expired += 1,
                Some(expiry_ms) if expiry_ms - now_ms <= within_ms => expiring += 1,
                _ => {}
            }
        }
        (expiring, expired)
    }

    pub fn apply(&self, config: &Config, now_ms: u64) -> TableChange {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut servers: HashMap<String, Arc<str>> = HashMap::new();
        for entry in entries.values() {
            let server = entry.server();
            servers.entry(server.to_string()).or_insert(server);
        }
        let mut change = TableChange::default();
        let mut kept: std::collections::HashSet<u64> = std::collections::HashSet::with_capacity(config.accounts.len());
        for account in &config.accounts {
            kept.insert(account.login);
            let server = Arc::clone(servers.entry(account.server.clone()).or_insert_with(|| Arc::from(account.server.as_str())));
            let previous = account.previous_keys.iter().map(|key| (key.key_sha256, key.expires_ms)).collect();
            let credentials = Credentials {
                server,
                key_sha256: account.key_sha256,
                previous,
                enabled: account.enabled,
                allow_from: account.allow_from.clone(),
                key_expiry_ms: account.key_expiry_ms(config.server.key_max_age_days),
            };
            match entries.get(&account.login).cloned() {
                Some(entry) if entry.role == account.role => {
                    let mut current = lock(&entry.credentials);
                    if *current.server != *credentials.server
                        || current.key_sha256 != credentials.key_sha256
                        || current.previous != credentials.previous
                        || current.allow_from != credentials.allow_from
                        || current.key_expiry_ms != credentials.key_expiry_ms
                    {
                        change.credentials_changed += 1;
                    }
                    if current.enabled && !credentials.enabled {
                        change.disabled.push(Arc::clone(&entry));
                    }
                    *current = credentials;
                }
                existing => {
                    let added = existing.is_none();
                    change.removed.extend(existing);
                    let entry = AccountEntry {
                        login: account.login,
                        role: account.role,
                        credentials: Mutex::new(credentials),
                        live: Mutex::new(None),
                        bucket: Mutex::new(TokenBucket::new(self.rate_limit_per_second, self.rate_limit_burst, now_ms)),
                        durable_event_seq: AtomicU64::new(0),
                        delivery: Mutex::new(SlaveDelivery::default()),
                    };
                    entries.insert(account.login, Arc::new(entry));
                    change.added += usize::from(added);
                }
            }
        }
        let gone: Vec<u64> = entries.keys().filter(|login| !kept.contains(login)).copied().collect();
        for login in gone {
            change.removed.extend(entries.remove(&login));
        }
        assert_eq!(entries.len(), config.accounts.len(), "one entry per configured account");
        change
    }

    /// The account with this login, if configured.
    pub fn get(&self, login: u64) -> Option<Arc<AccountEntry>> {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&login).cloned()
    }

    /// Every configured account, by login.
    pub fn iter(&self) -> Vec<Arc<AccountEntry>> {
        let mut entries: Vec<Arc<AccountEntry>> = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner()).values().cloned().collect();
        entries.sort_unstable_by_key(|entry| entry.login);
        entries
    }
}

/// Why a `hello` was refused. The peer only ever hears `unauthorized`; the
/// reason goes to the log (without the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    UnknownLogin,
    WrongServer,
    WrongRole,
    WrongKey,
    Disabled,
    AddressNotAllowed,
    KeyExpired,
}

impl AuthError {
    pub const ALL: [AuthError; 7] = [
        AuthError::UnknownLogin,
        AuthError::WrongServer,
        AuthError::WrongRole,
        AuthError::WrongKey,
        AuthError::Disabled,
        AuthError::AddressNotAllowed,
        AuthError::KeyExpired,
    ];

    /// The metric label (`tradebridge_auth_failures_total{reason}`).
    pub fn label(self) -> &'static str {
        match self {
            AuthError::UnknownLogin => "unknown_login",
            AuthError::WrongServer => "wrong_server",
            AuthError::WrongRole => "wrong_role",
            AuthError::WrongKey => "wrong_key",
            AuthError::Disabled => "disabled",
            AuthError::AddressNotAllowed => "address_not_allowed",
            AuthError::KeyExpired => "key_expired",
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            AuthError::UnknownLogin => "field `login`: no account has this login",
            AuthError::WrongServer => "field `server`: expected the account's server",
            AuthError::WrongRole => "field `role`: expected the account's role",
            AuthError::WrongKey => "field `key`: its SHA-256 does not match the account's key_sha256",
            AuthError::Disabled => "the account is disabled (enabled = false)",
            AuthError::AddressNotAllowed => "the connection's address is not in the account's allow_from",
            AuthError::KeyExpired => "the account's key has expired (key_expires, or key_created + key_max_age_days): rotate it",
        };
        formatter.write_str(text)
    }
}

/// Checks a `hello` against the table: the login must be configured, and the
/// server, role and key must be the account's.
/// `now_ms`: the wall clock (ms since the epoch), for the expiry of
/// replaced keys; `peer`: the connection's immediate peer, for
/// `allow_from` (unknown: refused when the account has a list).
pub fn authenticate(table: &AccountTable, hello: &Hello, now_ms: u64, peer: Option<IpAddr>) -> Result<Arc<AccountEntry>, AuthError> {
    // The key is hashed even for an unknown login, so the reply time does not
    // tell which logins exist.
    let key_sha256: [u8; 32] = Sha256::digest(hello.key.as_bytes()).into();
    let entry = table.get(hello.login).ok_or(AuthError::UnknownLogin)?;
    let credentials = lock(&entry.credentials).clone();
    // Every key is compared, in constant time each, whichever matches.
    let current_matches: bool = key_sha256.ct_eq(&credentials.key_sha256).into();
    let mut previous_matches = false;
    for (previous, expires_ms) in &credentials.previous {
        let matches: bool = key_sha256.ct_eq(previous).into();
        previous_matches |= matches && now_ms < *expires_ms;
    }
    if !current_matches && !previous_matches {
        return Err(AuthError::WrongKey);
    }
    if current_matches && !previous_matches && credentials.key_expiry_ms.is_some_and(|expiry_ms| now_ms >= expiry_ms) {
        return Err(AuthError::KeyExpired);
    }
    if *credentials.server != *hello.server {
        return Err(AuthError::WrongServer);
    }
    if entry.role != hello.role {
        return Err(AuthError::WrongRole);
    }
    if !credentials.enabled {
        return Err(AuthError::Disabled);
    }
    if !credentials.allow_from.is_empty() && !peer.is_some_and(|peer| credentials.allow_from.iter().any(|range| range.contains(peer))) {
        return Err(AuthError::AddressNotAllowed);
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
journal_dir = "/tmp/unused"

[[account]]
login = 100001
server = "Demo-Broker-A"
role = "master"
key_sha256 = "027ab56e7d6dd58a1d2af792a0e893afbeadaa1b9978c57d8ffe4b05531a15aa"
"#;

    fn hello(key: &str, login: u64, server: &str, role: Role) -> Hello {
        Hello {
            version: 1,
            key: key.to_string(),
            login,
            role,
            platform: String::new(),
            server: server.to_string(),
            ea: String::new(),
            last_seq: 0,
        }
    }

    /// `key_sha256` of `key`, as the configuration holds it.
    fn hash(key: &str) -> String {
        Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn authenticate_now(table: &AccountTable, hello: &Hello) -> Result<Arc<AccountEntry>, AuthError> {
        authenticate(table, hello, 0, None)
    }

    fn table() -> AccountTable {
        AccountTable::new(&Config::from_toml_str(CONFIG).expect("test config is valid"), 0)
    }

    // The demo key from the example configuration authenticates its account.
    #[test]
    fn right_key_login_server_role_is_accepted() {
        let table = table();
        let entry = authenticate_now(&table, &hello("demo-master-1", 100001, "Demo-Broker-A", Role::Master));
        assert_eq!(entry.map(|entry| entry.login), Ok(100001));
    }

    // Each mismatch is refused with its own reason.
    #[test]
    fn each_mismatch_is_refused() {
        let table = table();
        let cases = [
            (hello("demo-master-2", 100001, "Demo-Broker-A", Role::Master), AuthError::WrongKey),
            (hello("demo-master-1", 100002, "Demo-Broker-A", Role::Master), AuthError::UnknownLogin),
            (hello("demo-master-1", 100001, "Demo-Broker-B", Role::Master), AuthError::WrongServer),
            (hello("demo-master-1", 100001, "Demo-Broker-A", Role::Slave), AuthError::WrongRole),
        ];
        for (hello, expected) in cases {
            assert_eq!(authenticate_now(&table, &hello).map(|entry| entry.login), Err(expected));
        }
    }

    // Every configured login finds its own entry, others find none, and accounts of one server share its name.
    #[test]
    fn each_login_finds_its_entry_and_servers_are_shared() {
        let mut source = String::from("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\n");
        let logins: Vec<u64> = (0..40).map(|number| 900_000 - number * 7).collect();
        for (number, login) in logins.iter().enumerate() {
            let server = if number % 3 == 0 { "Broker-A" } else { "Broker-B" };
            let role = if number % 2 == 0 { "master" } else { "slave" };
            source.push_str(&format!(
                "[[account]]\nlogin = {login}\nserver = \"{server}\"\nrole = \"{role}\"\nkey_sha256 = \"{:064x}\"\n",
                login
            ));
        }
        let table = AccountTable::new(&Config::from_toml_str(&source).expect("test config is valid"), 0);
        for (number, login) in logins.iter().enumerate() {
            let entry = table.get(*login).expect("configured");
            assert_eq!(entry.login, *login);
            assert_eq!(&*entry.server(), if number % 3 == 0 { "Broker-A" } else { "Broker-B" });
            assert_eq!(entry.role, if number % 2 == 0 { Role::Master } else { Role::Slave });
            assert_eq!(lock(&entry.credentials).key_sha256[24..], login.to_be_bytes());
        }
        for unknown in [0, 1, 900_001, 899_999, logins[39] - 7] {
            assert!(table.get(unknown).is_none(), "{unknown}");
        }
        let listed: Vec<u64> = table.iter().iter().map(|entry| entry.login).collect();
        let mut sorted = logins.clone();
        sorted.sort_unstable();
        assert_eq!(listed, sorted, "each account once, by login");
        let (first_b, second_b) = (table.get(logins[1]).unwrap(), table.get(logins[2]).unwrap());
        assert!(Arc::ptr_eq(&first_b.server(), &second_b.server()), "one name per server");
    }

    // A configuration applied to the table: an account added, one removed, one re-keyed (same entry, old key refused), one disabled (same entry, hello refused), one whose role changed (a new entry, the old one returned for closing).
    #[test]
    fn apply_adds_removes_rekeys_disables_and_replaces_entries() {
        let base = |accounts: &str| Config::from_toml_str(&format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\n{accounts}")).expect("valid");
        let account = |login: u64, role: &str, key: &str, extra: &str| {
            let hash: String = Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
            format!("[[account]]\nlogin = {login}\nserver = \"S\"\nrole = \"{role}\"\nkey_sha256 = \"{hash}\"\n{extra}\n")
        };
        let table = AccountTable::new(&base(&[account(1, "master", "k1", ""), account(2, "slave", "k2", ""), account(3, "slave", "k3", ""), account(4, "slave", "k4", "")].concat()), 0);
        let (two, three, four) = (table.get(2).unwrap(), table.get(3).unwrap(), table.get(4).unwrap());
        let next = base(&[account(2, "slave", "k2-new", ""), account(3, "slave", "k3", "enabled = false"), account(4, "master", "k4", ""), account(5, "slave", "k5", "")].concat());
        let change = table.apply(&next, 10);
        let mut removed: Vec<u64> = change.removed.iter().map(|entry| entry.login).collect();
        removed.sort_unstable();
        assert_eq!(removed, vec![1, 4], "account 1 removed, account 4 replaced");
        assert_eq!((change.added, change.credentials_changed), (1, 1));
        assert_eq!(change.disabled.iter().map(|entry| entry.login).collect::<Vec<_>>(), vec![3]);
        assert!(Arc::ptr_eq(&table.get(2).unwrap(), &two) && Arc::ptr_eq(&table.get(3).unwrap(), &three), "kept accounts keep their entries");
        assert!(!Arc::ptr_eq(&table.get(4).unwrap(), &four) && table.get(4).unwrap().role == Role::Master);
        assert!(table.get(1).is_none());
        assert_eq!(authenticate_now(&table, &hello("k2", 2, "S", Role::Slave)).map(|entry| entry.login), Err(AuthError::WrongKey));
        assert_eq!(authenticate_now(&table, &hello("k2-new", 2, "S", Role::Slave)).map(|entry| entry.login), Ok(2));
        assert_eq!(authenticate_now(&table, &hello("k3", 3, "S", Role::Slave)).map(|entry| entry.login), Err(AuthError::Disabled));
        assert_eq!(authenticate_now(&table, &hello("k5", 5, "S", Role::Slave)).map(|entry| entry.login), Ok(5));
        assert_eq!(table.iter().len(), 4);
    }

    // A replaced key is accepted until its expiry and refused from then on, beside the current key (time injected).
    #[test]
    fn a_previous_key_works_until_it_expires() {
        let source = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\n[[account]]\nlogin = 7\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{}\"\nprevious_keys = [{{ key_sha256 = \"{}\", expires = 2026-12-08T04:00:00Z }}]\n",
            hash("new"),
            hash("old")
        );
        let table = AccountTable::new(&Config::from_toml_str(&source).expect("valid"), 0);
        let expiry = 1_796_702_400_000; // 2026-12-08T04:00:00Z
        let login = |key: &str, now_ms: u64| authenticate(&table, &hello(key, 7, "S", Role::Slave), now_ms, None).map(|entry| entry.login);
        assert_eq!(login("old", expiry - 1), Ok(7));
        assert_eq!(login("new", expiry - 1), Ok(7));
        assert_eq!(login("old", expiry), Err(AuthError::WrongKey));
        assert_eq!(login("new", expiry + 86_400_000), Ok(7));
        assert_eq!(login("other", expiry - 1), Err(AuthError::WrongKey));
    }

    // An account with allow_from accepts a hello only from an address in it (v4, v6, a mapped v4 peer), after the key; one without accepts any; a reload that changes the list counts as a credentials change.
    #[test]
    fn allow_from_limits_the_addresses_a_hello_is_accepted_from() {
        let source = |allow: &str| {
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\n[[account]]\nlogin = 7\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{}\"\n{allow}\n[[account]]\nlogin = 8\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{}\"\n",
                hash("seven"),
                hash("eight")
            )
        };
        let config = Config::from_toml_str(&source("allow_from = [\"203.0.113.0/24\", \"2001:db8::/32\"]")).expect("valid");
        let table = AccountTable::new(&config, 0);
        let login = |key: &str, login: u64, peer: Option<&str>| {
            authenticate(&table, &hello(key, login, "S", Role::Slave), 0, peer.map(|peer| peer.parse().unwrap())).map(|entry| entry.login)
        };
        assert_eq!(login("seven", 7, Some("203.0.113.9")), Ok(7));
        assert_eq!(login("seven", 7, Some("::ffff:203.0.113.9")), Ok(7));
        assert_eq!(login("seven", 7, Some("2001:db8::5")), Ok(7));
        assert_eq!(login("seven", 7, Some("198.51.100.1")), Err(AuthError::AddressNotAllowed));
        assert_eq!(login("seven", 7, None), Err(AuthError::AddressNotAllowed), "an unknown peer is not in any list");
        assert_eq!(login("wrong", 7, Some("198.51.100.1")), Err(AuthError::WrongKey), "the key is checked first");
        assert_eq!(login("eight", 8, Some("198.51.100.1")), Ok(8), "no list: any address");
        let change = table.apply(&Config::from_toml_str(&source("")).expect("valid"), 0);
        assert_eq!(change.credentials_changed, 1);
        assert_eq!(login("seven", 7, Some("198.51.100.1")), Ok(7), "the list was lifted by the reload");
    }

    // A current key past its expiry (key_expires, or key_created + key_max_age_days) is refused as expired, not as wrong; a previous key within its grace still works; counts of expiring and expired keys follow the clock.
    #[test]
    fn an_expired_key_is_refused_and_counted() {
        let source = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\nkey_max_age_days = 30\n[[account]]\nlogin = 7\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{}\"\nkey_created = 2026-12-08T04:00:00Z\nprevious_keys = [{{ key_sha256 = \"{}\", expires = 2027-01-09T04:00:00Z }}]\n",
            hash("new"),
            hash("old")
        );
        let table = AccountTable::new(&Config::from_toml_str(&source).expect("valid"), 0);
        let created = 1_796_702_400_000; // 2026-12-08T04:00:00Z
        let expiry = created + 30 * 86_400_000;
        let login = |key: &str, now_ms: u64| authenticate(&table, &hello(key, 7, "S", Role::Slave), now_ms, None).map(|entry| entry.login);
        assert_eq!(table.get(7).unwrap().key_expiry_ms(), Some(expiry));
        assert_eq!(login("new", expiry - 1), Ok(7));
        assert_eq!(login("new", expiry), Err(AuthError::KeyExpired));
        assert_eq!(login("old", expiry), Ok(7), "the previous key keeps its own grace");
        assert_eq!(login("other", expiry), Err(AuthError::WrongKey));
        let week = 7 * 86_400_000;
        assert_eq!(table.key_expiry_counts(expiry - week - 1, week), (0, 0));
        assert_eq!(table.key_expiry_counts(expiry - week, week), (1, 0));
        assert_eq!(table.key_expiry_counts(expiry, week), (0, 1));
    }

    // Claiming a login supersedes the previous session, and only the live
    // session's release clears the slot.
    #[test]
    fn claim_supersedes_the_previous_session() {
        let table = table();
        let entry = table.get(100001).expect("configured");
        let older = Arc::new(SessionControl::default());
        let newer = Arc::new(SessionControl::default());
        entry.claim(older.clone());
        entry.claim(newer.clone());
        assert_eq!(older.close_requested(), Some(4004));
        assert_eq!(newer.close_requested(), None);
        entry.close_live(1001);
        assert_eq!(newer.close_requested(), Some(1001));
        assert_eq!(older.close_requested(), Some(4004), "the first close request wins");
        entry.release(&older);
        assert!(lock(&entry.live).as_ref().is_some_and(|live| Arc::ptr_eq(live, &newer)));
        entry.release(&newer);
        assert!(lock(&entry.live).is_none());
    }
}
