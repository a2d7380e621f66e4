//! The simulated Executor EA of one slave account.
//!
//! After each `welcome` it sends `state` (balance, the copies it holds,
//! its symbol specifications), answers every `copy` at once with a
//! `result` (a fresh ticket, the copy's volume and price), pings every
//! `hb_ms`, and reports in `hello` the highest `seq` whose result it sent
//! (`last_seq`). It records each copy's first receipt for the accounting
//! and its end-to-end latency.
//!
//! # Invariants
//! - A copy is finished when its `result` was written and flushed; only
//!   then does `last_seq` move past it.
//! - The held positions sent in `state` are exactly the opens finished and
//!   not yet closed by a finished close.
//! - A stalled Executor neither reads nor writes (a frozen terminal).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures_util::SinkExt;
use tradebridge_core::protocol::{Copy, CopyAction, Message, ResultStatus, State, StatePosition, TradeResult, Welcome};

use super::link::{self, encode, Socket};
use super::shared::{Counters, RunShared, Stage};
use super::{leave, Churn, Link};
use crate::accounting::{volume_units, CopyKey, SlaveReceipts, Verdict};
use crate::fleet::Account;
use crate::schedule::Plan;
use crate::stats::{lock, Measure, SharedStats};
use crate::trades::{symbol_specs, PositionTraits, Slot};

/// Balance and equity every Executor reports.
pub const ACCOUNT_BALANCE: f64 = 10_000.0;

/// What an Executor needs to know.
#[derive(Clone, Debug)]
pub struct SlaveSetup {
    /// Index in the fleet.
    pub index: u32,
    pub account: Account,
    /// When set: stop reading and writing during the plan's phase of this
    /// name, then carry on.
    pub stall_phase: Option<String>,
    pub churn: Option<Churn>,
}

/// What an Executor hands in at the end.
#[derive(Debug, Default)]
pub struct SlaveReport {
    pub index: u32,
    pub receipts: SlaveReceipts,
}

/// The Executor's state across connections.
struct Executor {
    shared: Arc<RunShared>,
    setup: SlaveSetup,
    stats: SharedStats,
    receipts: SlaveReceipts,
    /// Slave ticket of each copy opened, by key.
    tickets: HashMap<CopyKey, u64>,
    /// Positions held, by the copy's tag (`tc:<master>:<pos>`).
    held: BTreeMap<String, StatePosition>,
    next_ticket: u64,
}

/// Runs one Executor until the run stops; returns its receipts.
pub async fn run(shared: Arc<RunShared>, setup: SlaveSetup, stats: SharedStats) -> SlaveReport {
    let next_ticket = u64::from(setup.index) * 1_000_000_000 + 1;
    let index = setup.index;
    let reserved = shared.events_reserved();
    let receipts = SlaveReceipts::with_capacity(reserved);
    let mut executor = Executor { shared, setup, stats, receipts, tickets: HashMap::with_capacity(reserved / 2), held: BTreeMap::new(), next_ticket };
    executor.serve().await;
    SlaveReport { index, receipts: executor.receipts }
}

impl Executor {
    fn hello(&self) -> Message {
        link::hello(&self.setup.account, self.receipts.finished_seq)
    }

    async fn serve(&mut self) {
        let mut stage_receiver = self.shared.stage.subscribe();
        let mut plan_receiver = self.shared.plan.subscribe();
        let mut stall_done = self.setup.stall_phase.is_none();
        let mut link = Link::new(self.shared.url.clone(), self.hello(), self.setup.churn);
        let mut first_welcome = true;
        loop {
            let stage = *stage_receiver.borrow_and_update();
            if stage == Stage::Stopping {
                break;
            }
            link.arm_churn(stage == Stage::Trading);
            let connected = link.socket.is_some();
            let stall = if stall_done { None } else { self.stall_window(&plan_receiver.borrow_and_update()) };
            let stall_at = stall.map(|(start_ns, _)| self.shared.instant(start_ns));
            let (ping_at, churn_at) = (link.ping_at, link.churn_at);
            tokio::select! {
                _ = stage_receiver.changed() => {}
                _ = plan_receiver.changed() => {}
                result = async { link.connecting.as_mut().expect("checked").await }, if link.connecting.is_some() => {
                    link.connecting = None;
                    if self.on_connected(&mut link, result).await && first_welcome {
                        first_welcome = false;
                        Counters::add(&self.shared.counters.ready, 1);
                    }
                }
                received = async { link::receive(link.socket.as_mut().expect("checked")).await }, if connected => {
                    let open = link.socket.as_mut().expect("checked");
                    if let Err((text, code)) = self.on_received(open, received).await {
                        self.lost(&mut link, text, code);
                    }
                }
                _ = tokio::time::sleep_until(ping_at.into()), if connected => {
                    if link.ping().await.is_err() {
                        self.lost(&mut link, "sending a ping failed".into(), None);
                    }
                }
                _ = tokio::time::sleep_until(stall_at.unwrap_or_else(Instant::now).into()), if stall_at.is_some() => {
                    // A frozen terminal: nothing is read or written until
                    // the stall ends; the bridge decides what happens to it.
                    let (_, end_ns) = stall.expect("checked");
                    stall_done = true;
                    tokio::time::sleep_until(self.shared.instant(end_ns).into()).await;
                    link.ping_at = Instant::now();
                }
                _ = tokio::time::sleep_until(churn_at.unwrap_or_else(Instant::now).into()), if connected && churn_at.is_some() => {
                    Counters::add(&self.shared.counters.disconnects_forced, 1);
                    link.churn_disconnect(self.hello()).await;
                }
            }
        }
        leave(link.socket).await;
    }

    /// A connection attempt ended: on a welcome, sends `state` (true when
    /// the session is up); otherwise schedules a retry.
    async fn on_connected(&mut self, link: &mut Link, result: anyhow::Result<(Socket, Welcome)>) -> bool {
        match result {
            Ok((mut socket, welcome)) => {
                if self.on_welcome(&mut socket, &welcome).await.is_ok() {
                    link.up(socket, &welcome);
                    return true;
                }
                self.lost(link, "sending state failed".into(), None);
            }
            Err(error) => {
                Counters::add(&self.shared.counters.connect_failures, 1);
                self.shared.counters.note_error(format!("slave {}: {error:#}", self.setup.account.login), None);
                link.failed(self.hello());
            }
        }
        false
    }

    /// The window of the phase this Executor stalls in, once it is planned.
    fn stall_window(&self, plan: &Plan) -> Option<(u64, u64)> {
        let name = self.setup.stall_phase.as_ref()?;
        plan.phases.iter().find(|phase| &phase.name == name).map(|phase| (phase.start_ns, phase.end_ns))
    }

    /// Counts a session the bridge or the network ended, and reconnects.
    fn lost(&self, link: &mut Link, text: String, code: Option<u16>) {
        Counters::add(&self.shared.counters.sessions_lost, 1);
        self.shared.counters.note_error(format!("slave {}: {text}", self.setup.account.login), code);
        link.lose(self.hello());
    }

    /// After a welcome: the `state` with the positions held and the symbols.
    async fn on_welcome(&mut self, socket: &mut Socket, _welcome: &Welcome) -> Result<(), ()> {
        Counters::add(&self.shared.counters.connects, 1);
        let state = Message::State(State {
            balance: ACCOUNT_BALANCE,
            equity: ACCOUNT_BALANCE,
            currency: "USD".into(),
            positions: self.held.values().cloned().collect(),
            symbols: Some(symbol_specs()),
        });
        socket.send(encode(&state)).await.map_err(|_| ())
    }

    /// Handles one received message; `Err` when the session ended.
    async fn on_received(&mut self, socket: &mut Socket, received: anyhow::Result<Option<Message>>) -> Result<(), (String, Option<u16>)> {
        match received {
            Ok(Some(Message::Copy(copy))) => {
                let (result, placed) = self.on_copy(&copy);
                if socket.send(encode(&Message::Result(result))).await.is_err() {
                    return Err(("sending a result failed".into(), None));
                }
                self.on_result_sent(&copy, placed);
            }
            Ok(Some(Message::Pong)) => {}
            Ok(Some(Message::Error(error))) => {
                Counters::add(&self.shared.counters.errors_received, 1);
                self.shared.counters.note_error(format!("slave {}: error {:?}: {}", self.setup.account.login, error.code, error.msg), None);
            }
            Ok(Some(other)) => {
                self.shared.counters.note_error(format!("slave {}: unexpected {other:?}", self.setup.account.login), None);
            }
            Ok(None) => return Err(("connection closed".into(), None)),
            Err(error) => {
                let code = link::close_code(&error);
                return Err((format!("{error:#}"), code));
            }
        }
        Ok(())
    }

    /// Where a copy belongs: its key, or `None` with the reason counted.
    fn place(&mut self, copy: &Copy) -> Option<CopyKey> {
        let Some(&master) = self.shared.master_index.get(&copy.master) else {
            self.receipts.counts.stale += 1;
            return None;
        };
        let position = copy.pos.checked_sub(self.shared.pos_base).filter(|position| *position < self.shared.positions_max);
        let Some(position) = position else {
            self.receipts.counts.stale += 1;
            return None;
        };
        let traits = PositionTraits::of(position);
        let Some(slot) = Slot::from_copy(copy.action, copy.sl, &traits) else {
            self.receipts.counts.undecodable += 1;
            return None;
        };
        Some(CopyKey { master, position, slot })
    }

    /// Classifies a copy, records its latency on first receipt, and builds
    /// the result to send.
    fn on_copy(&mut self, copy: &Copy) -> (TradeResult, Option<(CopyKey, Verdict, u64)>) {
        let received_ns = self.shared.now_ns();
        let key = self.place(copy);
        let verdict = self.receipts.on_copy(copy.seq, key, volume_units(copy.volume), copy.side);
        let mut result = TradeResult { seq: copy.seq, status: ResultStatus::Filled, ticket: 0, price: copy.price, volume: copy.volume, error: 0, msg: String::new(), exec_ms: 0 };
        let Some(key) = key else {
            result.status = ResultStatus::Skipped;
            return (result, None);
        };
        let intended = self.shared.tables[key.master as usize].lookup(key.position, key.slot.index(self.shared.modifies_per_position));
        if verdict == Verdict::New {
            Counters::add(&self.shared.counters.copies_received, 1);
            // A stalled Executor's latency is its own stall, not the
            // bridge's: it records none (its copies are still accounted).
            let records = self.setup.stall_phase.is_none();
            if let Some((intended_ns, phase, sent_ns)) = intended.filter(|(_, phase, _)| records && self.shared.recorded(*phase)) {
                let mut stats = lock(&self.stats);
                stats.record(phase, Measure::EndToEnd, received_ns.saturating_sub(intended_ns));
                if sent_ns > 0 {
                    stats.record(phase, Measure::EndToEndUncorrected, received_ns.saturating_sub(sent_ns));
                }
            }
        }
        let open_key = CopyKey { slot: Slot::Open, ..key };
        result.ticket = match (copy.action, self.tickets.get(&open_key)) {
            (CopyAction::Open, None) => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.tickets.insert(open_key, ticket);
                ticket
            }
            (_, Some(ticket)) => *ticket,
            (_, None) => 0,
        };
        if matches!(verdict, Verdict::DuplicateKey | Verdict::FinishedSeqAgain | Verdict::SeqReused) {
            // "Already present": a skipped result with the ticket counts as filled.
            result.status = ResultStatus::Skipped;
        }
        let records = self.setup.stall_phase.is_none();
        let intended_ns = intended.map_or(0, |(intended_ns, phase, _)| if records && self.shared.recorded(phase) { intended_ns } else { 0 });
        (result, Some((key, verdict, intended_ns)))
    }

    /// After the result was flushed: the copy is finished, the held
    /// positions change, and the result latency is recorded.
    fn on_result_sent(&mut self, copy: &Copy, placed: Option<(CopyKey, Verdict, u64)>) {
        self.receipts.on_finished(copy.seq);
        let Some((key, verdict, intended_ns)) = placed else { return };
        if !matches!(verdict, Verdict::New | Verdict::Redelivery) {
            return;
        }
        match copy.action {
            CopyAction::Open => {
                let ticket = self.tickets.get(&key).copied().unwrap_or(0);
                let position = StatePosition { pos: ticket, symbol: copy.symbol.clone(), side: copy.side, volume: copy.volume, comment: copy.comment.clone() };
                self.held.insert(copy.comment.clone(), position);
            }
            CopyAction::Close => {
                self.held.remove(&copy.comment);
            }
            _ => {}
        }
        if verdict == Verdict::New && intended_ns > 0 {
            let phase = self.shared.tables[key.master as usize].lookup(key.position, key.slot.index(self.shared.modifies_per_position)).map_or(0, |(_, phase, _)| phase);
            lock(&self.stats).record(phase, Measure::Result, self.shared.now_ns().saturating_sub(intended_ns));
        }
    }
}
