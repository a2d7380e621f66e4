//! The configured accounts as every shard sees them: who may log in (key
//! hash, server, role), which connection is the live one for each login, and
//! each account's rate-limit bucket.
//!
//! # Layout
//! - [`AccountTable`]: one [`AccountEntry`] per configured login, built once
//!   at start-up and shared read-only by the shards (`Arc`).
//! - [`AccountEntry`]: the account's fixed identity and its few mutable,
//!   thread-safe cells.
//! - [`SessionControl`]: how a newer login tells the older connection (on
//!   any shard) to close with 4004.
//! - [`authenticate`]: the `hello` check.
//!
//! # Invariants
//! - The table never changes size after start-up; logins not in the
//!   configuration are refused before any per-login state exists, so a peer
//!   cannot make the bridge allocate per guessed login.
//! - At most one [`SessionControl`] is live per login: [`AccountEntry::claim`]
//!   supersedes the previous one before installing the new one.
//! - Keys are compared as SHA-256 digests in constant time and never stored
//!   or logged in clear.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tradebridge_core::config::{Config, ServerConfig};
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
    /// The live connection of this slave (`shard::connection_id`), 0 when
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

/// One configured account, as the shards share it.
#[derive(Debug)]
pub struct AccountEntry {
    /// The account's login; fixed.
    pub login: u64,
    /// The broker server name the `hello` must carry; fixed. Shared by every
    /// account of the same server (most configurations name a few servers
    /// for thousands of accounts).
    pub server: Arc<str>,
    /// The role the `hello` must claim; fixed.
    pub role: Role,
    /// SHA-256 of the account's API key; fixed.
    key_sha256: [u8; 32],
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
    /// Makes `control` the live session of this login and supersedes the
    /// previous one (which then closes with 4004).
    pub fn claim(&self, control: Arc<SessionControl>) {
        let previous = lock(&self.live).replace(control);
        if let Some(previous) = previous {
            previous.request_close(crate::session::close_code::REPLACED);
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
/// The entries sit in one exact-size vector and a map from login to index
/// finds them: a hash map holding the entries themselves rounds up to a power
/// of two of ~190-byte slots (16,384 for 10,000 accounts, 3.2 MB), the index
/// rounds up 16-byte slots instead.
#[derive(Debug)]
pub struct AccountTable {
    /// One entry per `[[account]]`, in file order; never changes after
    /// [`AccountTable::new`].
    entries: Vec<AccountEntry>,
    /// Index in `entries` by login.
    index_by_login: HashMap<u64, u32>,
}

impl AccountTable {
    /// Builds the table from a validated configuration, each bucket full at
    /// `now_ms`.
    pub fn new(config: &Config, now_ms: u64) -> AccountTable {
        let server: &ServerConfig = &config.server;
        let mut servers: HashMap<&str, Arc<str>> = HashMap::new();
        let entries: Vec<AccountEntry> = config
            .accounts
            .iter()
            .map(|account| AccountEntry {
                login: account.login,
                server: Arc::clone(servers.entry(account.server.as_str()).or_insert_with(|| Arc::from(account.server.as_str()))),
                role: account.role,
                key_sha256: account.key_sha256,
                live: Mutex::new(None),
                bucket: Mutex::new(TokenBucket::new(server.rate_limit_per_second, server.rate_limit_burst, now_ms)),
                durable_event_seq: AtomicU64::new(0),
                delivery: Mutex::new(SlaveDelivery::default()),
            })
            .collect();
        let mut index_by_login = HashMap::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let index = u32::try_from(index).expect("a configuration holds far fewer than 2^32 accounts");
            let previous = index_by_login.insert(entry.login, index);
            assert!(previous.is_none(), "a validated configuration has unique logins");
        }
        assert_eq!(index_by_login.len(), entries.len());
        AccountTable { entries, index_by_login }
    }

    /// The account with this login, if configured.
    pub fn get(&self, login: u64) -> Option<&AccountEntry> {
        let index = *self.index_by_login.get(&login)?;
        Some(&self.entries[index as usize])
    }

    /// Every configured account, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &AccountEntry> {
        self.entries.iter()
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
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            AuthError::UnknownLogin => "field `login`: no account has this login",
            AuthError::WrongServer => "field `server`: expected the account's server",
            AuthError::WrongRole => "field `role`: expected the account's role",
            AuthError::WrongKey => "field `key`: its SHA-256 does not match the account's key_sha256",
        };
        formatter.write_str(text)
    }
}

/// Checks a `hello` against the table: the login must be configured, and the
/// server, role and key must be the account's.
pub fn authenticate<'table>(table: &'table AccountTable, hello: &Hello) -> Result<&'table AccountEntry, AuthError> {
    // The key is hashed even for an unknown login, so the reply time does not
    // tell which logins exist.
    let key_sha256: [u8; 32] = Sha256::digest(hello.key.as_bytes()).into();
    let entry = table.get(hello.login).ok_or(AuthError::UnknownLogin)?;
    let key_matches: bool = key_sha256.ct_eq(&entry.key_sha256).into();
    if !key_matches {
        return Err(AuthError::WrongKey);
    }
    if *entry.server != *hello.server {
        return Err(AuthError::WrongServer);
    }
    if entry.role != hello.role {
        return Err(AuthError::WrongRole);
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

    fn table() -> AccountTable {
        AccountTable::new(&Config::from_toml_str(CONFIG).expect("test config is valid"), 0)
    }

    // The demo key from the example configuration authenticates its account.
    #[test]
    fn right_key_login_server_role_is_accepted() {
        let table = table();
        let entry = authenticate(&table, &hello("demo-master-1", 100001, "Demo-Broker-A", Role::Master));
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
            assert_eq!(authenticate(&table, &hello).map(|entry| entry.login), Err(expected));
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
            assert_eq!(&*entry.server, if number % 3 == 0 { "Broker-A" } else { "Broker-B" });
            assert_eq!(entry.role, if number % 2 == 0 { Role::Master } else { Role::Slave });
            assert_eq!(entry.key_sha256[24..], login.to_be_bytes());
        }
        for unknown in [0, 1, 900_001, 899_999, logins[39] - 7] {
            assert!(table.get(unknown).is_none(), "{unknown}");
        }
        let listed: Vec<u64> = table.iter().map(|entry| entry.login).collect();
        assert_eq!(listed, logins, "each account once, in file order");
        let (first_b, second_b) = (table.get(logins[1]).unwrap(), table.get(logins[2]).unwrap());
        assert!(Arc::ptr_eq(&first_b.server, &second_b.server), "one name per server");
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
