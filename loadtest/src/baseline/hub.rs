//! The baseline's routing state: every master's last event `seq` and open
//! volumes, every slave's copy `seq`, retained copies, symbol specifications
//! and held copies, and the map from login to its live connection. One
//! `std::sync::Mutex<Hub>` guards all of it; sessions lock it for a routing
//! decision and never across an `.await`.
//!
//! # Layout
//! - [`Hub`]: the state and its operations (`attach`, `detach`, `route`,
//!   `finished`, `merge_symbols`).
//! - [`Outgoing`]: what a session's writer task is handed.
//! - [`Live`]: how the hub reaches a logged-in connection.
//! - `decide` and `normalise_volume`: the sizing of one copy.
//! - `emit` and `deliver`: fault injection, the per-slave `seq`, retention.
//!
//! # Invariants
//! - A slave's copy `seq` grows by exactly 1 per copy delivered (a
//!   duplicated copy takes the next one) and is never reused.
//! - At most one [`Live`] per login; a newer login asks the older to close
//!   with 4004 before it replaces it.
//! - Nothing grows without a bound: retained copies per slave are at most
//!   [`COPIES_RETAINED_MAX`], master positions at most
//!   `positions_per_master_max`, held copies per slave at most the open
//!   positions of the masters it follows, symbols at most
//!   `symbols_per_slave_max`, a connection's outbox [`OUTBOX_MESSAGES_MAX`].

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tradebridge_core::config::{Config, LotRule};
use tradebridge_core::protocol::{Copy, CopyAction, Event, EventKind, Hello, Message, Role, Side, SymbolSpec, Welcome};

use super::close_code;
use super::Faults;

/// Copies kept per slave for replay to a reconnecting terminal (the same
/// bound as tradebridge's); beyond it the oldest is dropped and counted. A
/// terminal this many copies behind has been away far longer than an open
/// stays valid.
pub const COPIES_RETAINED_MAX: usize = 4_096;

/// Messages queued for one connection's writer. Above the retained copies,
/// so a `welcome` and the whole replay always fit in a fresh outbox; a live
/// slave whose outbox is full reads too slowly and is closed with 1013.
pub const OUTBOX_MESSAGES_MAX: usize = COPIES_RETAINED_MAX + 1_024;

/// Lot step used when the slave has not sent the symbol's specification:
/// the step of nearly every FX symbol.
const LOT_STEP_DEFAULT: f64 = 0.01;

/// Largest volume sent without a specification; the config's own lot bound.
const LOTS_MAX: f64 = 100_000.0;

/// Volumes closer than this are equal: far below any broker's lot step, far
/// above the rounding error of a few float operations on lots.
const VOLUME_EPSILON: f64 = 1e-9;

/// What a connection's writer task sends, in order.
#[derive(Debug)]
pub enum Outgoing {
    /// A protocol message, serialised by the writer.
    Frame(Message),
    /// A WebSocket ping control frame (the bridge side of the heartbeat).
    Ping,
    /// A close frame with this code and reason; the writer stops after it.
    Close(u16, &'static str),
}

/// A logged-in connection as the hub sees it.
#[derive(Debug)]
pub struct Live {
    /// Unique per process; tells a replaced session from its successor.
    pub connection_id: u64,
    /// The connection's writer queue.
    pub outbox: mpsc::Sender<Outgoing>,
    /// Set to a close code to make the session close (4004, 1013).
    pub close: watch::Sender<u16>,
}

/// How one follow sizes volumes; the baseline implements these two only.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lot {
    /// Master lots times the factor.
    Multiplier(f64),
    /// Always this many lots.
    Fixed(f64),
}

/// One slave following a master.
#[derive(Clone, Copy, Debug)]
struct Follower {
    /// The slave's login; a configured slave account.
    slave: u64,
    /// Sizing rule of the follow.
    lot: Lot,
    /// Lifetime of an open or pending copy (`expires_ms = now + ttl_ms`).
    ttl_ms: u64,
}

/// One master account.
#[derive(Debug, Default)]
struct MasterState {
    /// Its follows in slave-login order; fixed after start-up.
    followers: Vec<Follower>,
    /// Highest event `seq` seen; raised by each new event, never lowered.
    event_seq: u64,
    /// Open volume of each master position (or pending order), by `pos`;
    /// set by opens, lowered by partial closes, removed by full closes.
    volumes: HashMap<u64, f64>,
}

/// A copy the slave holds (or was sent), by (master, pos).
#[derive(Debug)]
struct Held {
    /// Symbol of the opening copy; later actions reuse it.
    symbol: String,
    /// Side of the opening copy; later actions reuse it.
    side: Side,
    /// Volume sent and not closed yet.
    volume: f64,
}

/// One slave account.
#[derive(Debug, Default)]
struct SlaveState {
    /// Last copy `seq` assigned; grows by 1 per delivered copy.
    copy_seq: u64,
    /// Copies not known finished, in `seq` order, for replay.
    retained: VecDeque<Copy>,
    /// Specifications from `state` and `symbols`, merged by name.
    symbols: HashMap<String, SymbolSpec>,
    /// Copies held per (master, pos).
    held: HashMap<(u64, u64), Held>,
}

/// Events the baseline counts; printed at shutdown.
#[derive(Debug, Default)]
pub struct Counters {
    /// Copies handed to a live connection's writer.
    pub copies_sent: u64,
    /// Copies withheld on purpose by `--fault lose-every`.
    pub copies_lost_to_fault: u64,
    /// Retained copies dropped because a slave's retention was full.
    pub copies_retention_dropped: u64,
    /// New master positions not routed because `positions_per_master_max`
    /// were already open.
    pub positions_refused: u64,
    /// Live slaves closed with 1013 because their outbox was full.
    pub slow_slaves_closed: u64,
}

/// The whole routing state; see the module documentation.
#[derive(Debug)]
pub struct Hub {
    /// Every configured master account, by login.
    masters: HashMap<u64, MasterState>,
    /// Every configured slave account, by login.
    slaves: HashMap<u64, SlaveState>,
    /// The live connection of each logged-in login.
    live: HashMap<u64, Live>,
    /// Deliberate misbehaviour; none by default.
    faults: Faults,
    /// Copies routed so far, over all slaves: the fault counter.
    copies_routed: u64,
    /// `server.positions_per_master_max`.
    positions_max: usize,
    /// `server.symbols_per_slave_max`.
    symbols_max: usize,
    /// What happened so far.
    pub counters: Counters,
}

impl Hub {
    /// The state for `config`, which `support::check` accepted.
    pub fn new(config: &Config, faults: Faults) -> Hub {
        let mut masters: HashMap<u64, MasterState> = HashMap::new();
        let mut slaves: HashMap<u64, SlaveState> = HashMap::new();
        for account in &config.accounts {
            match account.role {
                Role::Master => masters.insert(account.login, MasterState::default()).is_none(),
                Role::Slave => slaves.insert(account.login, SlaveState::default()).is_none(),
            };
        }
        let mut follows: Vec<_> = config.follows.iter().collect();
        follows.sort_by_key(|follow| follow.slave);
        for follow in follows {
            // A follow naming a login with no account is inert, as in tradebridge.
            let (Some(master), true) = (masters.get_mut(&follow.master), slaves.contains_key(&follow.slave)) else {
                continue;
            };
            let lot = match follow.lot {
                LotRule::Multiplier { factor } => Lot::Multiplier(factor),
                LotRule::Fixed { lots } => Lot::Fixed(lots),
                other => unreachable!("support::check refuses lot rule {other:?}"),
            };
            master.followers.push(Follower { slave: follow.slave, lot, ttl_ms: follow.ttl_ms });
        }
        Hub {
            masters,
            slaves,
            live: HashMap::new(),
            faults,
            copies_routed: 0,
            positions_max: config.server.positions_per_master_max as usize,
            symbols_max: config.server.symbols_per_slave_max as usize,
            counters: Counters::default(),
        }
    }

    /// Makes `live` the connection of the accepted `hello`'s login (the
    /// older one closes with 4004), queues `welcome` and, for a slave, the
    /// replay of every retained copy above `last_seq` still valid at `now_ms`.
    pub fn attach(&mut self, hello: &Hello, live: Live, session: String, hb_ms: u64, now_ms: u64) {
        let (login, role, last_seq) = (hello.login, hello.role, hello.last_seq);
        if let Some(older) = self.live.remove(&login) {
            older.close.send_replace(close_code::REPLACED);
        }
        let ack_seq = match role {
            Role::Master => self.masters.get(&login).map_or(0, |master| master.event_seq),
            Role::Slave => 0,
        };
        let welcome = Message::Welcome(Welcome { version: 1, session, hb_ms, ack_seq, notice: None });
        // A fresh outbox holds OUTBOX_MESSAGES_MAX > 1 + COPIES_RETAINED_MAX
        // messages, so neither the welcome nor the replay can be refused.
        let queued = live.outbox.try_send(Outgoing::Frame(welcome)).is_ok();
        if let (Role::Slave, Some(slave)) = (role, self.slaves.get_mut(&login)) {
            slave.retained.retain(|copy| copy.seq > last_seq);
            // The terminal finished `last_seq`; new copies must come above it.
            slave.copy_seq = slave.copy_seq.max(last_seq);
            for copy in slave.retained.iter().filter(|copy| is_valid_at(copy, now_ms)) {
                let sent = live.outbox.try_send(Outgoing::Frame(Message::Copy(copy.clone()))).is_ok();
                self.counters.copies_sent += u64::from(sent);
            }
        }
        if queued {
            self.live.insert(login, live);
        }
    }

    /// Forgets the login's connection if it is still `connection_id`.
    pub fn detach(&mut self, login: u64, connection_id: u64) {
        if self.live.get(&login).is_some_and(|live| live.connection_id == connection_id) {
            self.live.remove(&login);
        }
    }

    /// Routes one master event to every follower; false when `seq` is at or
    /// below the highest seen (a duplicate: acked again, not routed).
    pub fn route(&mut self, master_login: u64, event: &Event, now_ms: u64) -> bool {
        let Some(master) = self.masters.get_mut(&master_login) else {
            return false;
        };
        if event.seq <= master.event_seq {
            return false;
        }
        master.event_seq = event.seq;
        let master_volume = master.volumes.get(&event.pos).copied();
        let opens = matches!(event.kind, EventKind::Open | EventKind::Pending);
        if opens && master_volume.is_none() && master.volumes.len() >= self.positions_max {
            self.counters.positions_refused += 1;
            return true;
        }
        let followers = std::mem::take(&mut master.followers);
        for follower in &followers {
            if let Some(draft) = self.decide(master_login, follower, event, master_volume, now_ms) {
                self.emit(follower.slave, draft);
            }
        }
        let master = self.masters.get_mut(&master_login).expect("looked up above");
        master.followers = followers;
        update_master_volume(&mut master.volumes, event, master_volume);
        true
    }

    /// The slave finished copy `seq`: it and those before it leave retention.
    pub fn finished(&mut self, slave_login: u64, seq: u64) {
        if let Some(slave) = self.slaves.get_mut(&slave_login) {
            while slave.retained.front().is_some_and(|copy| copy.seq <= seq) {
                slave.retained.pop_front();
            }
        }
    }

    /// Merges symbol specifications by name; new names beyond
    /// `symbols_per_slave_max` are ignored.
    pub fn merge_symbols(&mut self, slave_login: u64, specs: Vec<SymbolSpec>) {
        let Some(slave) = self.slaves.get_mut(&slave_login) else {
            return;
        };
        for spec in specs {
            if slave.symbols.len() < self.symbols_max || slave.symbols.contains_key(&spec.name) {
                slave.symbols.insert(spec.name.clone(), spec);
            }
        }
    }

    /// The copy `follower` gets for `event` (seq and id still unset), or
    /// `None`: an open of a position already held, a later action for one
    /// not held, a volume below the slave's minimum, a close too small.
    fn decide(&mut self, master: u64, follower: &Follower, event: &Event, master_volume: Option<f64>, now_ms: u64) -> Option<Copy> {
        let slave = self.slaves.get_mut(&follower.slave)?;
        let key = (master, event.pos);
        let draft = |action, held: &Held, volume, expires_ms| Copy {
            seq: 0,
            id: String::new(),
            master,
            pos: event.pos,
            action,
            symbol: held.symbol.clone(),
            side: held.side,
            volume,
            price: event.price,
            max_dev: 0.0,
            sl: event.sl,
            tp: event.tp,
            magic: event.magic,
            comment: format!("tc:{master}:{}", event.pos),
            expires_ms,
        };
        match event.kind {
            EventKind::Open | EventKind::Pending if !slave.held.contains_key(&key) => {
                let wanted = match follower.lot {
                    Lot::Multiplier(factor) => event.volume * factor,
                    Lot::Fixed(lots) => lots,
                };
                let volume = normalise_volume(wanted, slave.symbols.get(&event.symbol))?;
                let held = Held { symbol: event.symbol.clone(), side: event.side?, volume };
                let action = if event.kind == EventKind::Open { CopyAction::Open } else { CopyAction::Pending };
                let copy = draft(action, &held, volume, now_ms + follower.ttl_ms);
                slave.held.insert(key, held);
                Some(copy)
            }
            EventKind::Open | EventKind::Pending => None,
            EventKind::Modify => slave.held.get(&key).map(|held| draft(CopyAction::Modify, held, held.volume, 0)),
            EventKind::Cancel => slave.held.remove(&key).map(|held| draft(CopyAction::Cancel, &held, held.volume, 0)),
            EventKind::Close => {
                let step = slave.symbols.get(&slave.held.get(&key)?.symbol).map_or(LOT_STEP_DEFAULT, |spec| spec.step);
                let held = slave.held.get_mut(&key)?;
                let full = event.remaining.is_some_and(|remaining| remaining <= VOLUME_EPSILON)
                    || master_volume.is_none_or(|open| event.volume >= open - VOLUME_EPSILON);
                let volume = if full {
                    held.volume
                } else {
                    let wanted = match follower.lot {
                        Lot::Multiplier(factor) => event.volume * factor,
                        Lot::Fixed(_) => held.volume * event.volume / master_volume?,
                    };
                    floor_to_step(wanted.min(held.volume), step)
                };
                if volume <= VOLUME_EPSILON {
                    return None;
                }
                held.volume = round_lots(held.volume - volume);
                let copy = draft(CopyAction::Close, held, volume, 0);
                if full || held.volume <= VOLUME_EPSILON {
                    slave.held.remove(&key);
                }
                Some(copy)
            }
        }
    }

    /// Counts the copy for the faults and delivers it: not at all, with a
    /// doubled volume, or twice, as the active faults say.
    fn emit(&mut self, slave_login: u64, mut copy: Copy) {
        self.copies_routed += 1;
        let number = self.copies_routed;
        if hits(self.faults.lose_every, number) {
            self.counters.copies_lost_to_fault += 1;
            return;
        }
        if hits(self.faults.volume_every, number) {
            copy.volume *= 2.0;
        }
        if hits(self.faults.duplicate_every, number) {
            self.deliver(slave_login, copy.clone());
        }
        self.deliver(slave_login, copy);
    }

    /// Gives the copy the slave's next `seq`, retains it, and queues it on
    /// the slave's live connection, if any. A full outbox closes that
    /// connection (1013); the copy stays retained for its replay.
    fn deliver(&mut self, slave_login: u64, mut copy: Copy) {
        let slave = self.slaves.get_mut(&slave_login).expect("followers are configured slaves");
        slave.copy_seq += 1;
        copy.seq = slave.copy_seq;
        copy.id = format!("{slave_login}-{}", copy.seq);
        if slave.retained.len() >= COPIES_RETAINED_MAX {
            slave.retained.pop_front();
            self.counters.copies_retention_dropped += 1;
        }
        slave.retained.push_back(copy.clone());
        let Some(live) = self.live.get(&slave_login) else {
            return;
        };
        match live.outbox.try_send(Outgoing::Frame(Message::Copy(copy))) {
            Ok(()) => self.counters.copies_sent += 1,
            Err(TrySendError::Full(_)) => {
                live.close.send_replace(close_code::TRY_AGAIN_LATER);
                self.live.remove(&slave_login);
                self.counters.slow_slaves_closed += 1;
            }
            Err(TrySendError::Closed(_)) => {
                self.live.remove(&slave_login);
            }
        }
    }
}

/// The master's open volume of `event.pos` after the event.
fn update_master_volume(volumes: &mut HashMap<u64, f64>, event: &Event, before: Option<f64>) {
    match (event.kind, before) {
        (EventKind::Open | EventKind::Pending, None) => {
            volumes.insert(event.pos, event.volume);
        }
        (EventKind::Close, Some(open)) => {
            let remaining = event.remaining.unwrap_or(open - event.volume);
            if remaining <= VOLUME_EPSILON {
                volumes.remove(&event.pos);
            } else {
                volumes.insert(event.pos, remaining);
            }
        }
        (EventKind::Cancel, _) => {
            volumes.remove(&event.pos);
        }
        _ => {}
    }
}

/// True when copy number `number` (from 1) is an Nth one for `every`.
fn hits(every: Option<u64>, number: u64) -> bool {
    every.is_some_and(|every| number.is_multiple_of(every))
}

/// Opens and pending orders expire; closes, modifies and cancels never do.
fn is_valid_at(copy: &Copy, now_ms: u64) -> bool {
    !matches!(copy.action, CopyAction::Open | CopyAction::Pending) || now_ms <= copy.expires_ms
}

/// `wanted` lots clamped to the symbol's maximum and rounded down to its
/// step; `None` below its minimum. Without a specification: step and
/// minimum 0.01.
pub fn normalise_volume(wanted: f64, spec: Option<&SymbolSpec>) -> Option<f64> {
    let (step, minimum, maximum) = spec.map_or((LOT_STEP_DEFAULT, LOT_STEP_DEFAULT, LOTS_MAX), |spec| (spec.step, spec.min, spec.max));
    let volume = floor_to_step(wanted.min(maximum), step);
    (volume > VOLUME_EPSILON && volume >= minimum - VOLUME_EPSILON).then_some(volume)
}

/// Rounds down to a whole number of steps; the epsilon keeps 0.7 / 0.01
/// (69.99999999999999 in binary) at 70 steps.
fn floor_to_step(volume: f64, step: f64) -> f64 {
    round_lots((volume / step + VOLUME_EPSILON).floor() * step)
}

/// Cuts float noise (0.30000000000000004) so the wire shows 0.3.
fn round_lots(volume: f64) -> f64 {
    (volume * 1e8).round() / 1e8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(step: f64, min: f64, max: f64) -> SymbolSpec {
        SymbolSpec { name: "EURUSD".into(), min, max, step, digits: 5, contract: 100_000.0 }
    }

    // Sizing rounds down to the step, survives binary fractions, and refuses below the minimum.
    #[test]
    fn volumes_round_down_to_the_step() {
        assert_eq!(normalise_volume(0.1 * 2.0, None), Some(0.2));
        assert_eq!(normalise_volume(0.1 * 3.0, None), Some(0.3));
        assert_eq!(normalise_volume(0.7, None), Some(0.7));
        assert_eq!(normalise_volume(0.019, None), Some(0.01));
        assert_eq!(normalise_volume(0.009, None), None);
        assert_eq!(normalise_volume(0.37, Some(&spec(0.1, 0.1, 50.0))), Some(0.3));
        assert_eq!(normalise_volume(0.15, Some(&spec(0.1, 0.2, 50.0))), None);
        assert_eq!(normalise_volume(80.0, Some(&spec(0.1, 0.1, 50.0))), Some(50.0));
    }

    // Fault counters hit exactly every Nth copy and nothing when off.
    #[test]
    fn faults_hit_every_nth_copy() {
        let hit: Vec<u64> = (1..=6).filter(|number| hits(Some(3), *number)).collect();
        assert_eq!(hit, vec![3, 6]);
        assert!(!(1..=100).any(|number| hits(None, number)));
    }
}
