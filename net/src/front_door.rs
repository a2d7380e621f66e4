//! The front door: what a connection must pass before it may log in, so
//! that connections that never do cannot take the room of the EAs that do.
//!
//! - A separate budget for connections not yet welcomed
//!   (`pending_connections_max`, within `connections_max`): a
//!   [`PendingSlot`] is taken at accept and given back at `welcome` or when
//!   the connection ends.
//! - Per address (an IPv6 /64 counts as one address): at most
//!   `connections_per_address_max` open at once and
//!   `new_connections_per_address_per_second` new ones (a token bucket of
//!   as many). Immediate peers in `trusted_proxies` are exempt.
//! - Refusals are counted per reason and logged at most once a second (with
//!   how many more there were), so a flood cannot flood the log.
//! - Failed logins ([`AuthFailures`]): the answer to each is held back
//!   longer (100 ms doubled per earlier failure of its login or address, up
//!   to `auth_delay_ms_max`), and an address that fails
//!   `auth_block_after_failures` times within `auth_block_seconds` is
//!   refused at accept for `auth_block_seconds`. A right key is never held
//!   back, and a login is never blocked (a stranger could lock a follower
//!   out), only an address.
//!
//! # Invariants
//! - The address table holds an entry per address with an open connection,
//!   plus ones refused or closed within the last second; it never holds more
//!   than `tracked_max` (twice `connections_max`, at least 1,024): a new
//!   address that finds it full after pruning is refused.
//! - Time is passed in (`now_ms`); nothing here reads a clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tradebridge_core::config::cidr::canonical;
use tradebridge_core::config::{Cidr, ServerConfig};

use crate::accounts::AuthError;
use crate::limits::TokenBucket;

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `connections_max` connections are open.
    ConnectionsMax,
    /// `pending_connections_max` connections are between accept and welcome.
    PendingMax,
    /// `connections_per_address_max` connections from this address are open.
    PerAddressMax,
    /// `pending_connections_per_address_max` of this address's are not
    /// welcomed yet.
    PendingPerAddressMax,
    /// More than `new_connections_per_address_per_second` new connections.
    PerAddressRate,
    /// The address is blocked after `auth_block_after_failures` failed
    /// logins.
    AuthBlocked,
    /// The address table is full (a flood from very many addresses).
    AddressesTracked,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::ConnectionsMax,
        Refusal::PendingMax,
        Refusal::PerAddressMax,
        Refusal::PendingPerAddressMax,
        Refusal::PerAddressRate,
        Refusal::AuthBlocked,
        Refusal::AddressesTracked,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::ConnectionsMax => "connections_max",
            Refusal::PendingMax => "pending_connections_max",
            Refusal::PerAddressMax => "connections_per_address_max",
            Refusal::PendingPerAddressMax => "pending_connections_per_address_max",
            Refusal::PerAddressRate => "new_connections_per_address_per_second",
            Refusal::AuthBlocked => "auth_blocked",
            Refusal::AddressesTracked => "addresses_tracked",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One address's connections and its budget of new ones.
#[derive(Debug)]
struct AddressEntry {
    /// Connections from it open now (pending or welcomed).
    open: u32,
    /// Of those, the ones not yet welcomed.
    pending: u32,
    /// New connections it may still open this second.
    bucket: TokenBucket,
    /// Its last connection attempt or close.
    last_ms: u64,
}

/// Open connections and recent attempts per address.
#[derive(Debug)]
pub struct AddressTable {
    per_address_max: u32,
    pending_per_address_max: u32,
    per_second: u32,
    tracked_max: usize,
    entries: HashMap<IpAddr, AddressEntry>,
    pruned_ms: u64,
    /// The latest `now_ms` an admission was given.
    latest_ms: u64,
}

/// How long an address with nothing open is remembered: its bucket (of one
/// second's worth) is full again by then.
const FORGET_AFTER_MS: u64 = 1_000;

/// A full table is pruned at most this often.
const PRUNE_FULL_MS: u64 = 100;

/// The address an entry is kept under: IPv4 as it is, IPv6 by its /64 (one
/// host or one subscriber usually holds a whole /64).
fn address_key(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

impl AddressTable {
    pub fn new(per_address_max: u32, pending_per_address_max: u32, per_second: u32, tracked_max: usize) -> AddressTable {
        AddressTable { per_address_max, pending_per_address_max, per_second, tracked_max, entries: HashMap::new(), pruned_ms: 0, latest_ms: 0 }
    }

    /// Counts a new connection from `address` at `now_ms`, or says why not.
    pub fn admit(&mut self, address: IpAddr, now_ms: u64) -> Result<(), Refusal> {
        let key = address_key(address);
        self.latest_ms = self.latest_ms.max(now_ms);
        if now_ms.saturating_sub(self.pruned_ms) >= FORGET_AFTER_MS {
            self.prune(now_ms);
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.tracked_max {
            // Full: pruned at most every PRUNE_FULL_MS, so a flood of new
            // addresses cannot make every accept scan the table.
            if now_ms.saturating_sub(self.pruned_ms) >= PRUNE_FULL_MS {
                self.prune(now_ms);
            }
            if self.entries.len() >= self.tracked_max {
                return Err(Refusal::AddressesTracked);
            }
        }
        let per_second = self.per_second;
        let entry = self.entries.entry(key).or_insert_with(|| AddressEntry { open: 0, pending: 0, bucket: TokenBucket::new(per_second, per_second, now_ms), last_ms: now_ms });
        entry.last_ms = now_ms;
        if entry.open >= self.per_address_max {
            return Err(Refusal::PerAddressMax);
        }
        if entry.pending >= self.pending_per_address_max {
            return Err(Refusal::PendingPerAddressMax);
        }
        if !entry.bucket.take(now_ms) {
            return Err(Refusal::PerAddressRate);
        }
        entry.open += 1;
        entry.pending += 1;
        Ok(())
    }

    /// A connection `admit` counted was welcomed (or ended before): no
    /// longer pending.
    pub fn welcomed(&mut self, address: IpAddr) {
        let entry = self.entries.get_mut(&address_key(address)).expect("a pending connection's address has an entry");
        debug_assert!(entry.pending > 0 && entry.pending <= entry.open);
        entry.pending -= 1;
    }

    /// Uncounts a connection `admit` counted.
    pub fn release(&mut self, address: IpAddr, now_ms: u64) {
        let key = address_key(address);
        let entry = self.entries.get_mut(&key).expect("an admitted address has an entry until its last connection is released");
        debug_assert!(entry.open > 0);
        entry.open -= 1;
        entry.last_ms = now_ms;
    }

    /// Forgets addresses with nothing open and no attempt for a second.
    fn prune(&mut self, now_ms: u64) {
        self.entries.retain(|_, entry| entry.open > 0 || now_ms.saturating_sub(entry.last_ms) < FORGET_AFTER_MS);
        self.pruned_ms = now_ms;
    }

    /// Addresses held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Failed logins of one login or one address, counted over a window.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    /// Addresses: the distinct logins failed in the window, up to
    /// [`AUTH_BLOCK_DISTINCT_LOGINS`] (0 = none yet).
    logins: [u64; AUTH_BLOCK_DISTINCT_LOGINS],
    /// When the window of `count` began.
    first_ms: u64,
    /// The latest failure.
    last_ms: u64,
    /// Refused at accept until then (addresses only).
    blocked_until_ms: u64,
}

/// Failed logins per login and per address: how long a failed login's
/// answer is held back (growing with the failures), and which addresses
/// are blocked for a while.
#[derive(Debug)]
pub struct AuthFailures {
    block_after: u32,
    window_ms: u64,
    delay_ms_max: u64,
    tracked_max: usize,
    by_address: HashMap<IpAddr, Failures>,
    by_login: HashMap<u64, Failures>,
    pruned_ms: u64,
}

/// The first held-back answer (the second failure); doubled with each
/// further one.
const AUTH_DELAY_MS_FIRST: u64 = 100;

/// An address is blocked only when its failures name at least this many
/// logins: a scanner, not one terminal retrying a stale key (which a 4001
/// makes wait 15-30 s per try, and which would otherwise block every
/// account on its VPS).
const AUTH_BLOCK_DISTINCT_LOGINS: usize = 3;

impl AuthFailures {
    pub fn new(block_after: u32, window_ms: u64, delay_ms_max: u64, tracked_max: usize) -> AuthFailures {
        AuthFailures { block_after, window_ms, delay_ms_max, tracked_max, by_address: HashMap::new(), by_login: HashMap::new(), pruned_ms: 0 }
    }

    /// Records a failed login of `login` from `address` (`None`: a trusted
    /// proxy's, or unknown); returns how long to hold its answer back: 0 for
    /// the first failure, then 100 ms doubled per failure, up to the bound.
    /// `login`: the configured login whose key was wrong, `None` for a
    /// login no account has (not tracked per login: any number is free).
    pub fn failed(&mut self, address: Option<IpAddr>, login: Option<u64>, now_ms: u64) -> u64 {
        if now_ms.saturating_sub(self.pruned_ms) >= self.window_ms.min(60_000) {
            self.prune(now_ms);
        }
        let (window_ms, tracked_max) = (self.window_ms, self.tracked_max);
        let login_count = match login {
            Some(login) => bump(&mut self.by_login, login, now_ms, window_ms, tracked_max).map_or(1, |failures| failures.count),
            None => 0,
        };
        let address_count = match address.map(address_key) {
            Some(key) => match bump(&mut self.by_address, key, now_ms, window_ms, tracked_max) {
                Some(failures) => {
                    // Unknown logins count as one "login" each time (0 is
                    // never a configured login): a scanner of numbers.
                    let named = login.unwrap_or(0);
                    if let Some(slot) = failures.logins.iter_mut().find(|seen| **seen == 0 || (named != 0 && **seen == named)) {
                        if *slot == 0 {
                            *slot = if named == 0 { u64::MAX - u64::from(failures.count) } else { named };
                        }
                    }
                    let distinct = failures.logins.iter().filter(|seen| **seen != 0).count();
                    if self.block_after > 0 && failures.count >= self.block_after && distinct >= AUTH_BLOCK_DISTINCT_LOGINS {
                        failures.blocked_until_ms = now_ms + window_ms;
                    }
                    failures.count
                }
                None => 1,
            },
            None => 0,
        };
        let failures = login_count.max(address_count);
        if failures <= 1 || self.delay_ms_max == 0 {
            return 0;
        }
        (AUTH_DELAY_MS_FIRST << (failures - 2).min(20)).min(self.delay_ms_max)
    }

    /// A login succeeded: its own failures are forgotten (its address's are
    /// not: one good account does not excuse a scanner beside it).
    pub fn succeeded(&mut self, login: u64) {
        self.by_login.remove(&login);
    }

    /// True while `address` is blocked.
    pub fn is_blocked(&self, address: IpAddr, now_ms: u64) -> bool {
        self.by_address.get(&address_key(address)).is_some_and(|failures| now_ms < failures.blocked_until_ms)
    }

    fn prune(&mut self, now_ms: u64) {
        let window_ms = self.window_ms;
        let keep = |failures: &Failures| now_ms.saturating_sub(failures.last_ms) < window_ms || now_ms < failures.blocked_until_ms;
        self.by_address.retain(|_, failures| keep(failures));
        self.by_login.retain(|_, failures| keep(failures));
        self.pruned_ms = now_ms;
    }

    /// Logins and addresses tracked.
    pub fn len(&self) -> usize {
        self.by_address.len() + self.by_login.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts one failure of `key` in `map`, in a window of `window_ms` that
/// starts again after it; `None` when the map is full (not tracked).
fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, key: K, now_ms: u64, window_ms: u64, tracked_max: usize) -> Option<&mut Failures> {
    if !map.contains_key(&key) && map.len() >= tracked_max {
        return None;
    }
    let fresh = Failures { count: 0, logins: [0; AUTH_BLOCK_DISTINCT_LOGINS], first_ms: now_ms, last_ms: now_ms, blocked_until_ms: 0 };
    let failures = map.entry(key).or_insert(fresh);
    if now_ms.saturating_sub(failures.first_ms) >= window_ms {
        *failures = Failures { blocked_until_ms: failures.blocked_until_ms, ..fresh };
    }
    failures.count = failures.count.saturating_add(1);
    failures.last_ms = now_ms;
    Some(failures)
}

/// The shared state of the front door, across shards.
#[derive(Debug)]
pub struct FrontDoor {
    pending_max: u64,
    trusted_proxies: Vec<Cidr>,
    addresses: Mutex<AddressTable>,
    /// Connections between accept and welcome.
    pending: AtomicU64,
    /// Refusals per [`Refusal`], for the metrics.
    refused: [AtomicU64; 7],
    /// The second of the last refusal logged, and refusals not logged since.
    log_window: Mutex<(u64, u64)>,
    /// Failed logins per login and per address.
    auth: Mutex<AuthFailures>,
    /// Failed logins per [`AuthError`] (in `AuthError::ALL` order).
    auth_failures: [AtomicU64; 7],
}

impl FrontDoor {
    pub fn new(server: &ServerConfig) -> FrontDoor {
        let tracked_max = (2 * server.connections_max as usize).max(1_024);
        FrontDoor {
            pending_max: u64::from(server.pending_connections_max),
            trusted_proxies: server.trusted_proxies.clone(),
            addresses: Mutex::new(AddressTable::new(
                server.connections_per_address_max,
                server.pending_connections_per_address_max,
                server.new_connections_per_address_per_second,
                tracked_max,
            )),
            pending: AtomicU64::new(0),
            refused: Default::default(),
            log_window: Mutex::new((u64::MAX, 0)),
            auth: Mutex::new(AuthFailures::new(server.auth_block_after_failures, server.auth_block_seconds * 1_000, server.auth_delay_ms_max, tracked_max)),
            auth_failures: Default::default(),
        }
    }

    /// True when `peer` is a trusted proxy's address (exempt from the
    /// per-address limits and blocks).
    fn is_trusted(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|proxy| proxy.contains(peer))
    }

    /// Records a refused `hello` of `login` from `peer`; returns how long to
    /// hold the refusal back (growing with that login's and address's
    /// failures), and blocks the address once it failed
    /// `auth_block_after_failures` times.
    pub fn auth_failed(&self, reason: AuthError, peer: Option<IpAddr>, login: u64, now_ms: u64) -> u64 {
        let index = AuthError::ALL.iter().position(|known| *known == reason).expect("every reason is listed");
        self.auth_failures[index].fetch_add(1, Ordering::Relaxed);
        // Only a guess counts: a wrong key, or a login no account has. A
        // right key refused for another reason (disabled, expired, wrong
        // server or role, outside allow_from) is an EA to fix, and its
        // retries must not block the address for the others there.
        let login = match reason {
            AuthError::WrongKey => Some(login),
            AuthError::UnknownLogin => None,
            _ => return 0,
        };
        let address = peer.filter(|peer| !self.is_trusted(*peer));
        let mut auth = self.auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let delay_ms = auth.failed(address, login, now_ms);
        if let Some(address) = address {
            if auth.is_blocked(address, now_ms) {
                drop(auth);
                tracing::warn!(%address, login, "address blocked after too many failed logins (auth_block_after_failures); its connections are refused for auth_block_seconds");
            }
        }
        delay_ms
    }

    /// Records a `hello` accepted for `login`.
    pub fn auth_succeeded(&self, login: u64) {
        self.auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).succeeded(login);
    }

    /// Admits a connection from `peer` at `now_ms`: its pending slot and,
    /// unless the peer is a trusted proxy, its place in the address table.
    pub fn admit(self: &Arc<Self>, peer: Option<IpAddr>, now_ms: u64) -> Result<Admitted, Refusal> {
        let taken = self.pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| (pending < self.pending_max).then_some(pending + 1)).is_ok();
        if !taken {
            return Err(Refusal::PendingMax);
        }
        let mut pending = PendingSlot { door: Some(Arc::clone(self)), address: None };
        let tracked = match peer {
            Some(address) if !self.is_trusted(address) => {
                if self.auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_blocked(address, now_ms) {
                    return Err(Refusal::AuthBlocked);
                }
                self.lock_addresses().admit(address, now_ms)?;
                pending.address = Some(address);
                Some(address)
            }
            _ => None,
        };
        Ok(Admitted { pending, address: AddressSlot { door: Arc::clone(self), address: tracked } })
    }

    /// Counts a refusal and logs it, at most once a second (with the count
    /// of those not logged).
    pub fn refused(&self, refusal: Refusal, peer: Option<IpAddr>, shard: u32, now_ms: u64) {
        self.refused[refusal.index()].fetch_add(1, Ordering::Relaxed);
        let second = now_ms / 1_000;
        let mut window = self.log_window.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if window.0 == second {
            window.1 += 1;
            return;
        }
        let not_logged = std::mem::replace(&mut window.1, 0);
        window.0 = second;
        drop(window);
        let peer = peer.map(|address| address.to_string()).unwrap_or_default();
        tracing::warn!(shard, reason = refusal.label(), %peer, not_logged_before = not_logged, "connection refused at accept (logged at most once a second; tradebridge_connections_refused_total counts them all)");
    }

    /// Refusals of `refusal` so far.
    pub fn refused_count(&self, refusal: Refusal) -> u64 {
        self.refused[refusal.index()].load(Ordering::Relaxed)
    }

    /// Connections between accept and welcome now.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Appends the front door's series to a Prometheus text exposition.
    pub fn render(&self, text: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(text, "# HELP tradebridge_connections_refused_total Connections refused at accept, by the limit that refused them.\n# TYPE tradebridge_connections_refused_total counter");
        for refusal in Refusal::ALL {
            let _ = writeln!(text, "tradebridge_connections_refused_total{{reason=\"{}\"}} {}", refusal.label(), self.refused_count(refusal));
        }
        let _ = writeln!(
            text,
            "# HELP tradebridge_connections_pending Connections accepted and not yet welcomed (upgrade or hello in progress).\n# TYPE tradebridge_connections_pending gauge\ntradebridge_connections_pending {}",
            self.pending()
        );
        let _ = writeln!(text, "# HELP tradebridge_auth_failures_total Refused hellos, by reason.\n# TYPE tradebridge_auth_failures_total counter");
        for (index, reason) in AuthError::ALL.iter().enumerate() {
            let _ = writeln!(text, "tradebridge_auth_failures_total{{reason=\"{}\"}} {}", reason.label(), self.auth_failures[index].load(Ordering::Relaxed));
        }
        let addresses = self.lock_addresses().len();
        let _ = writeln!(
            text,
            "# HELP tradebridge_connection_addresses Addresses the per-address limits track now.\n# TYPE tradebridge_connection_addresses gauge\ntradebridge_connection_addresses {addresses}"
        );
    }

    fn lock_addresses(&self) -> std::sync::MutexGuard<'_, AddressTable> {
        self.addresses.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What an admitted connection holds until it ends.
pub struct Admitted {
    /// Given back at welcome (or at the end, when it never is).
    pub pending: PendingSlot,
    /// Given back when the connection ends.
    pub address: AddressSlot,
}

/// One connection not yet welcomed; dropping it uncounts it (globally and
/// for its address; dropped before its [`AddressSlot`]).
pub struct PendingSlot {
    door: Option<Arc<FrontDoor>>,
    address: Option<IpAddr>,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Some(door) = self.door.take() {
            let before = door.pending.fetch_sub(1, Ordering::AcqRel);
            debug_assert!(before > 0, "a pending slot was released twice");
            if let Some(address) = self.address.take() {
                door.lock_addresses().welcomed(address);
            }
        }
    }
}

/// One connection counted against its address; dropping it uncounts it.
pub struct AddressSlot {
    door: Arc<FrontDoor>,
    address: Option<IpAddr>,
}

impl Drop for AddressSlot {
    /// Gives the slot back, dated as the table's latest admission (the drop
    /// has no clock; an address is then forgotten a second after it).
    fn drop(&mut self) {
        if let Some(address) = self.address.take() {
            let mut table = self.door.lock_addresses();
            let now_ms = table.latest_ms;
            table.release(address, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_are_answered_later_each_time_and_block_the_address_not_the_login() {
        // Shows the held-back answer grows (0, 100, 200, 400 ms, up to the bound) with the failures of a login or an address, a success clears the login's count, the address is blocked at the threshold for the window and then forgotten, another address is not blocked, and failures of one address for many logins still block it.
        let mut auth = AuthFailures::new(5, 10_000, 300, 100);
        let scanner = Some(ip("198.51.100.7"));
        assert_eq!(auth.failed(scanner, Some(1), 0), 0);
        assert_eq!(auth.failed(scanner, Some(1), 0), 100);
        assert_eq!(auth.failed(scanner, Some(1), 0), 200);
        assert_eq!(auth.failed(scanner, Some(2), 0), 300, "the address's fourth failure, capped at 300 ms");
        assert!(!auth.is_blocked(ip("198.51.100.7"), 0));
        assert_eq!(auth.failed(scanner, Some(3), 0), 300);
        assert!(auth.is_blocked(ip("198.51.100.7"), 0), "the fifth failure, naming a third login, blocks the address");
        assert!(auth.is_blocked(ip("198.51.100.7"), 9_999) && !auth.is_blocked(ip("198.51.100.7"), 10_000));
        assert!(!auth.is_blocked(ip("198.51.100.8"), 0));
        let typo = Some(ip("203.0.113.1"));
        assert_eq!(auth.failed(typo, Some(9), 0), 0);
        assert_eq!(auth.failed(typo, Some(9), 0), 100);
        auth.succeeded(9);
        assert_eq!(auth.failed(Some(ip("203.0.113.2")), Some(9), 0), 0, "a success forgot login 9's failures");
        assert_eq!(auth.failed(None, Some(1), 0), 300, "a trusted proxy's: only the login counts (its fourth: 400 ms, capped)");
        // One terminal retrying a stale key never blocks its address.
        let stale = Some(ip("203.0.113.77"));
        for _ in 0..10 {
            auth.failed(stale, Some(42), 0);
        }
        assert!(!auth.is_blocked(ip("203.0.113.77"), 0), "one login only: delayed, not blocked");
        // Unknown logins each count as another login, and are not tracked per login.
        let numbers = Some(ip("203.0.113.88"));
        for _ in 0..5 {
            auth.failed(numbers, None, 0);
        }
        assert!(auth.is_blocked(ip("203.0.113.88"), 0), "a scanner of login numbers is blocked");
        assert!(!auth.is_empty());
        auth.prune(20_001);
        assert!(auth.is_empty(), "all forgotten a window after their last failure and block");
        let mut small = AuthFailures::new(0, 10_000, 0, 2);
        for login in 0..10 {
            assert_eq!(small.failed(Some(ip("192.0.2.1")), Some(login), 0), 0, "no delay configured");
        }
        assert!(small.len() <= 4, "bounded: {}", small.len());
        assert!(!small.is_blocked(ip("192.0.2.1"), 0), "0 never blocks");
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_held_to_its_concurrent_and_per_second_budgets() {
        // Shows the concurrent bound (released slots count again), the per-second bucket refilling with time, other addresses unaffected, an IPv6 /64 counted as one address and a mapped IPv4 peer as its IPv4 address.
        let mut table = AddressTable::new(3, 3, 4, 100);
        let one = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(table.admit(one, 0), Ok(()));
            table.welcomed(one);
        }
        assert_eq!(table.admit(one, 0), Err(Refusal::PerAddressMax));
        table.release(one, 0);
        assert_eq!(table.admit(ip("::ffff:192.0.2.1"), 0), Ok(()), "the mapped peer is the same address, and a slot came back");
        table.welcomed(one);
        table.release(one, 0);
        assert_eq!(table.admit(one, 0), Err(Refusal::PerAddressRate), "four new ones this second already");
        assert_eq!(table.admit(one, 250), Ok(()), "a token refilled after 250 ms at 4 a second");
        assert_eq!(table.admit(ip("192.0.2.2"), 250), Ok(()), "another address has its own budget");
        // Not yet welcomed: at most 2 pending per address, however many open.
        let mut pending = AddressTable::new(10, 2, 100, 100);
        let vps = ip("203.0.113.50");
        assert!(pending.admit(vps, 0).is_ok() && pending.admit(vps, 0).is_ok());
        assert_eq!(pending.admit(vps, 0), Err(Refusal::PendingPerAddressMax));
        pending.welcomed(vps);
        assert_eq!(pending.admit(vps, 0), Ok(()), "one was welcomed: room for another pending");
        for index in 0..3 {
            assert_eq!(table.admit(ip(&format!("2001:db8:1:2::{index}")), 250), Ok(()));
        }
        assert_eq!(table.admit(ip("2001:db8:1:2:ffff::9"), 250), Err(Refusal::PerAddressMax), "one /64");
        assert_eq!(table.admit(ip("2001:db8:1:3::1"), 250), Ok(()), "the next /64");
    }

    #[test]
    fn the_table_forgets_idle_addresses_and_never_grows_past_its_bound() {
        // Shows addresses with nothing open are forgotten a second after their last attempt, and a new address that finds the table full is refused until then.
        let mut table = AddressTable::new(10, 10, 10, 4);
        for index in 0..4 {
            let address = ip(&format!("198.51.100.{index}"));
            table.admit(address, 0).unwrap();
            table.welcomed(address);
            if index < 3 {
                table.release(address, 0);
            }
        }
        assert_eq!(table.len(), 4);
        assert_eq!(table.admit(ip("198.51.100.9"), 500), Err(Refusal::AddressesTracked));
        assert_eq!(table.admit(ip("198.51.100.9"), 1_000), Ok(()), "the three idle ones were forgotten");
        assert_eq!(table.len(), 2, "the one still open and the new one");
    }

    #[test]
    fn the_front_door_counts_pending_connections_exempts_trusted_proxies_and_counts_refusals() {
        // Shows pending slots bound connections before welcome and come back when dropped; a trusted proxy's connections are not limited per address while others are; refusals are counted per reason.
        let mut server = tradebridge_core::config::Config::from_toml_str(
            "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/tmp/unused\"\npending_connections_max = 3\nconnections_per_address_max = 1\ntrusted_proxies = [\"127.0.0.1\"]\n",
        )
        .unwrap()
        .server;
        server.new_connections_per_address_per_second = 100;
        let door = Arc::new(FrontDoor::new(&server));
        let proxy = Some(ip("127.0.0.1"));
        let first = door.admit(proxy, 0).unwrap();
        let second = door.admit(proxy, 0).unwrap();
        assert_eq!(door.pending(), 2);
        let Admitted { pending, address } = door.admit(Some(ip("203.0.113.5")), 0).unwrap();
        assert!(matches!(door.admit(proxy, 0), Err(Refusal::PendingMax)));
        drop(pending);
        assert_eq!(door.pending(), 2, "welcomed: no longer pending");
        assert!(matches!(door.admit(Some(ip("203.0.113.5")), 0), Err(Refusal::PerAddressMax)), "its address slot is still held");
        drop(address);
        let again = door.admit(Some(ip("203.0.113.5")), 10).unwrap();
        drop((first, second, again));
        assert_eq!(door.pending(), 0);
        door.refused(Refusal::PendingMax, proxy, 0, 0);
        door.refused(Refusal::PendingMax, proxy, 0, 1);
        assert_eq!((door.refused_count(Refusal::PendingMax), door.refused_count(Refusal::PerAddressRate)), (2, 0));
    }
}
