//! The simulated Monitor EA of one master account.
//!
//! It generates its events on the open-loop schedule whether or not it is
//! connected (a terminal keeps trading while its link is down), keeps every
//! unacked event in an outbox, re-sends the outbox above `ack_seq` after
//! each `welcome`, then sends a `snapshot` of its book (as the real
//! Monitor does: events first, then the snapshot), and another one every
//! snapshot interval.
//!
//! # Invariants
//! - `seq` starts at the first `welcome`'s `ack_seq + 1` and grows by one
//!   per event, across reconnects.
//! - An event's intended time is recorded before it is first written; its
//!   actual send time when it is first written.
//! - The outbox holds at most `outbox_events_max` events; when full, due
//!   events wait (their intended times kept), none is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tradebridge_core::protocol::{Event, EventKind, Message, Snapshot, SnapshotPosition, Welcome};

use super::link::{self, encode, Socket};
use super::shared::{Counters, RunShared, Stage};
use super::timer::PreciseTimer;
use super::{leave, Churn, Link};
use crate::fleet::Account;
use crate::schedule::{Cursor, Next, Plan};
use crate::stats::{lock, Measure, SharedStats};
use crate::trades::{EventGenerator, PlannedEvent, PositionTraits, Slot, SYMBOLS, TRAITS_PERIOD};

/// What a Monitor needs to know.
#[derive(Clone, Debug)]
pub struct MasterSetup {
    /// Index in the fleet (and in the plan's interleaving).
    pub index: u32,
    /// Masters sharing the plan's rate.
    pub masters: u32,
    pub account: Account,
    /// Copies each position must cause, by position number mod TRAITS_PERIOD.
    pub copies_per_position: Vec<u32>,
    /// Positions kept open at once.
    pub open_positions_max: u32,
    /// Unacked events kept at most.
    pub outbox_events_max: usize,
    /// Time between snapshots (PROTOCOL.md: at most 60 s).
    pub snapshot_interval: Duration,
    pub churn: Option<Churn>,
}

/// What a Monitor hands in at the end.
#[derive(Clone, Debug, Default)]
pub struct MasterReport {
    pub index: u32,
    /// Every event generated, in order.
    pub generated: Vec<PlannedEvent>,
    /// Events never acked by the end.
    pub unacked: u64,
    /// `welcome`s whose `ack_seq` was below an earlier one (events the
    /// bridge had acked and then forgot).
    pub ack_seq_regressions: u64,
}

/// One unacked event.
struct OutboxEntry {
    seq: u64,
    frame: WsMessage,
    position: u64,
    slot_index: u32,
    intended_ns: u64,
    phase: u32,
    /// Written on the current connection.
    sent: bool,
    /// Written on any connection (its first send time is recorded).
    ever_sent: bool,
}

/// The Monitor's state across connections.
struct Monitor {
    shared: Arc<RunShared>,
    setup: MasterSetup,
    stats: SharedStats,
    generator: EventGenerator,
    cursor: Cursor,
    outbox: VecDeque<OutboxEntry>,
    /// Next event's seq; 0 until the first welcome.
    next_seq: u64,
    /// Highest ack_seq seen in a welcome.
    welcome_ack_seq: u64,
    report: MasterReport,
}

/// Runs one Monitor until the run stops; returns its report.
pub async fn run(shared: Arc<RunShared>, setup: MasterSetup, stats: SharedStats) -> MasterReport {
    let generator = EventGenerator::new(setup.open_positions_max, shared.modifies_per_position, shared.positions_max);
    let report = MasterReport { index: setup.index, generated: Vec::with_capacity(shared.events_reserved()), ..MasterReport::default() };
    let mut monitor = Monitor { shared, setup, stats, generator, cursor: Cursor::default(), outbox: VecDeque::new(), next_seq: 0, welcome_ack_seq: 0, report };
    monitor.serve().await;
    monitor.report.unacked = monitor.outbox.len() as u64;
    monitor.report
}

impl Monitor {
    fn hello(&self) -> Message {
        link::hello(&self.setup.account, 0)
    }

    async fn serve(&mut self) {
        let mut timer = PreciseTimer::new().expect("a timerfd for the send schedule");
        let mut plan_receiver = self.shared.plan.subscribe();
        let mut stage_receiver = self.shared.stage.subscribe();
        let mut link = Link::new(self.shared.url.clone(), self.hello(), self.setup.churn);
        let mut snapshot_at = Instant::now();
        loop {
            let stage = *stage_receiver.borrow_and_update();
            if stage == Stage::Stopping {
                break;
            }
            link.arm_churn(stage == Stage::Trading);
            let plan = Arc::clone(&plan_receiver.borrow_and_update());
            let due = match self.cursor.peek(&plan, self.setup.masters, self.setup.index) {
                Next::Event { intended_ns, .. } if self.outbox.len() < self.setup.outbox_events_max => Some(self.shared.instant(intended_ns)),
                _ => None,
            };
            let connected = link.socket.is_some();
            let (ping_at, churn_at) = (link.ping_at, link.churn_at);
            tokio::select! {
                _ = stage_receiver.changed() => {}
                _ = plan_receiver.changed() => {}
                result = async { link.connecting.as_mut().expect("checked").await }, if link.connecting.is_some() => {
                    link.connecting = None;
                    if self.on_connected(&mut link, result).await {
                        snapshot_at = Instant::now() + self.setup.snapshot_interval;
                    }
                }
                received = async { link::receive(link.socket.as_mut().expect("checked")).await }, if connected => {
                    if let Err((text, code)) = self.on_received(received) {
                        self.lost(&mut link, text, code);
                    }
                }
                result = timer.sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    result.expect("the timerfd works");
                    self.generate_due(&plan);
                    if let Some(open) = link.socket.as_mut() {
                        if self.send_unsent(open).await.is_err() {
                            self.lost(&mut link, "sending an event failed".into(), None);
                        }
                    }
                }
                _ = tokio::time::sleep_until(ping_at.into()), if connected => {
                    if link.ping().await.is_err() {
                        self.lost(&mut link, "sending a ping failed".into(), None);
                    }
                }
                _ = tokio::time::sleep_until(snapshot_at.into()), if connected => {
                    snapshot_at = Instant::now() + self.setup.snapshot_interval;
                    let snapshot = encode(&self.snapshot());
                    if link.socket.as_mut().expect("checked").send(snapshot).await.is_err() {
                        self.lost(&mut link, "sending a snapshot failed".into(), None);
                    }
                }
                _ = tokio::time::sleep_until(churn_at.unwrap_or_else(Instant::now).into()), if connected && churn_at.is_some() => {
                    Counters::add(&self.shared.counters.disconnects_forced, 1);
                    link.churn_disconnect(self.hello()).await;
                }
            }
        }
        leave(link.socket).await;
    }

    /// A connection attempt ended: on a welcome, re-sends and snapshots
    /// (true when the session is up); otherwise schedules a retry.
    async fn on_connected(&mut self, link: &mut Link, result: anyhow::Result<(Socket, Welcome)>) -> bool {
        match result {
            Ok((mut socket, welcome)) => {
                if self.on_welcome(&mut socket, &welcome).await.is_ok() {
                    link.up(socket, &welcome);
                    return true;
                }
                self.lost(link, "sending after welcome failed".into(), None);
            }
            Err(error) => {
                Counters::add(&self.shared.counters.connect_failures, 1);
                self.shared.counters.note_error(format!("master {}: {error:#}", self.setup.account.login), None);
                link.failed(self.hello());
            }
        }
        false
    }

    /// Counts a session the bridge or the network ended, and reconnects.
    fn lost(&self, link: &mut Link, text: String, code: Option<u16>) {
        Counters::add(&self.shared.counters.sessions_lost, 1);
        self.shared.counters.note_error(format!("master {}: {text}", self.setup.account.login), code);
        link.lose(self.hello());
    }

    /// After a welcome: drops what `ack_seq` covers, re-sends the rest of
    /// the outbox, then sends the snapshot.
    async fn on_welcome(&mut self, socket: &mut Socket, welcome: &Welcome) -> Result<(), ()> {
        Counters::add(&self.shared.counters.connects, 1);
        if self.next_seq == 0 {
            self.next_seq = welcome.ack_seq + 1;
            Counters::add(&self.shared.counters.ready, 1);
        }
        if welcome.ack_seq < self.welcome_ack_seq {
            self.report.ack_seq_regressions += 1;
        }
        self.welcome_ack_seq = self.welcome_ack_seq.max(welcome.ack_seq);
        self.acknowledge(welcome.ack_seq);
        let resent = self.outbox.iter().filter(|entry| entry.ever_sent).count() as u64;
        Counters::add(&self.shared.counters.events_resent, resent);
        for entry in self.outbox.iter_mut() {
            entry.sent = false;
        }
        self.send_unsent(socket).await?;
        socket.send(encode(&self.snapshot())).await.map_err(|_| ())
    }

    /// Handles one received message; `Err` when the session ended.
    fn on_received(&mut self, received: anyhow::Result<Option<Message>>) -> Result<(), (String, Option<u16>)> {
        match received {
            Ok(Some(Message::Ack(ack))) => self.acknowledge(ack.seq),
            Ok(Some(Message::Pong)) => {}
            Ok(Some(Message::Error(error))) => {
                Counters::add(&self.shared.counters.errors_received, 1);
                self.shared.counters.note_error(format!("master {}: error {:?}: {}", self.setup.account.login, error.code, error.msg), None);
            }
            Ok(Some(other)) => {
                self.shared.counters.note_error(format!("master {}: unexpected {other:?}", self.setup.account.login), None);
            }
            Ok(None) => return Err(("connection closed".into(), None)),
            Err(error) => {
                let code = link::close_code(&error);
                return Err((format!("{error:#}"), code));
            }
        }
        Ok(())
    }

    /// Drops every outbox event up to `seq`, recording ack latencies.
    fn acknowledge(&mut self, seq: u64) {
        let now_ns = self.shared.now_ns();
        let mut stats = lock(&self.stats);
        while self.outbox.front().is_some_and(|entry| entry.seq <= seq) {
            let entry = self.outbox.pop_front().expect("checked");
            Counters::add(&self.shared.counters.events_acked, 1);
            if self.shared.recorded(entry.phase) {
                stats.record(entry.phase, Measure::Ack, now_ns.saturating_sub(entry.intended_ns));
            }
        }
    }

    /// Generates every event whose intended time has come.
    fn generate_due(&mut self, plan: &Plan) {
        let now_ns = self.shared.now_ns();
        while self.outbox.len() < self.setup.outbox_events_max {
            let Next::Event { phase, intended_ns } = self.cursor.peek(plan, self.setup.masters, self.setup.index) else { break };
            if intended_ns > now_ns {
                break;
            }
            self.cursor.advance();
            let Some(planned) = self.generator.next_event() else {
                Counters::add(&self.shared.counters.schedule_overflow, 1);
                continue;
            };
            assert!(self.next_seq > 0, "events are generated only after the first welcome");
            let seq = self.next_seq;
            self.next_seq += 1;
            let slot_index = planned.slot.index(self.shared.modifies_per_position);
            self.shared.tables[self.setup.index as usize].set_intended(planned.position, slot_index, intended_ns, phase);
            let frame = encode(&self.event(seq, planned));
            self.outbox.push_back(OutboxEntry { seq, frame, position: planned.position, slot_index, intended_ns, phase, sent: false, ever_sent: false });
            self.report.generated.push(planned);
            let copies = u64::from(self.setup.copies_per_position[(planned.position % TRAITS_PERIOD) as usize]);
            let counters = &self.shared.counters;
            Counters::add(&counters.events_generated, 1);
            Counters::add(&counters.copies_expected, copies);
            Counters::add(&self.shared.phases[phase as usize].events, 1);
            Counters::add(&self.shared.phases[phase as usize].copies_expected, copies);
        }
    }

    /// Writes every outbox event not yet written on this connection.
    async fn send_unsent(&mut self, socket: &mut Socket) -> Result<(), ()> {
        let mut wrote = false;
        for entry in self.outbox.iter_mut().filter(|entry| !entry.sent) {
            socket.feed(entry.frame.clone()).await.map_err(|_| ())?;
            entry.sent = true;
            wrote = true;
        }
        if !wrote {
            return Ok(());
        }
        socket.flush().await.map_err(|_| ())?;
        let now_ns = self.shared.now_ns();
        let table = &self.shared.tables[self.setup.index as usize];
        let mut stats = lock(&self.stats);
        // Events never sent before are the newest ones: a suffix of the outbox.
        for entry in self.outbox.iter_mut().rev().take_while(|entry| !entry.ever_sent) {
            entry.ever_sent = true;
            table.set_sent(entry.position, entry.slot_index, now_ns);
            Counters::add(&self.shared.counters.events_sent, 1);
            if self.shared.recorded(entry.phase) {
                stats.record(entry.phase, Measure::SendLag, now_ns.saturating_sub(entry.intended_ns));
            }
        }
        Ok(())
    }

    /// The wire event of `planned`.
    fn event(&self, seq: u64, planned: PlannedEvent) -> Message {
        let traits = PositionTraits::of(planned.position);
        let pos = self.shared.pos_base + planned.position;
        let (kind, volume, price, remaining) = match planned.slot {
            Slot::Open => (EventKind::Open, traits.volume_lots, traits.price, None),
            Slot::Modify(_) => (EventKind::Modify, 0.0, 0.0, None),
            Slot::Close => (EventKind::Close, traits.volume_lots, traits.price, Some(0.0)),
        };
        let time_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64);
        Message::Event(Event {
            seq,
            kind,
            pos,
            ticket: pos,
            symbol: SYMBOLS[traits.symbol].name.to_string(),
            side: Some(traits.side),
            volume,
            price,
            sl: traits.sl(planned.slot),
            tp: traits.tp,
            magic: 0,
            comment: String::new(),
            time_ms,
            remaining,
        })
    }

    /// The master's book now: every open position with its current stops.
    fn snapshot(&self) -> Message {
        let positions = self
            .generator
            .open_positions()
            .map(|(position, modifies)| {
                let traits = PositionTraits::of(position);
                let slot = if modifies == 0 { Slot::Open } else { Slot::Modify(modifies - 1) };
                SnapshotPosition {
                    pos: self.shared.pos_base + position,
                    symbol: SYMBOLS[traits.symbol].name.to_string(),
                    side: traits.side,
                    volume: traits.volume_lots,
                    price: traits.price,
                    sl: traits.sl(slot),
                    tp: traits.tp,
                    magic: 0,
                    comment: String::new(),
                }
            })
            .collect();
        Message::Snapshot(Snapshot { positions, balance: 100_000.0, equity: 100_000.0, currency: "USD".into() })
    }
}

