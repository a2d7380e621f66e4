//! State shared by every simulated EA of a run, across client threads: the
//! clock base, the plan, the run's stage, the intended-time tables that let
//! an Executor find when the event behind a copy was meant to be sent, and
//! the counters behind the progress line and the drain.
//!
//! # Invariants
//! - One `Instant` base for masters and slaves: every time is nanoseconds
//!   after it, so latencies never mix clocks.
//! - A table cell is written by its master (Release) before the event goes
//!   out; a slave reads it (Acquire) after the copy arrived, which the
//!   bridge's round trip orders after the write. 0 means "not generated".
//! - Counters only grow.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::schedule::{Plan, PHASES_MAX};

/// Bits of a packed table cell holding the phase index (below the time).
const PHASE_BITS: u32 = 8;

/// The run's stage, published to every EA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// EAs connect; masters do not send yet.
    Connecting,
    /// Masters follow the plan; churn and stalls happen.
    Trading,
    /// Sending has ended; EAs reconnect if needed and take what is left.
    Draining,
    /// EAs close their connections and hand in their reports.
    Stopping,
}

/// When each event of one master was meant to go out and did go out.
pub struct MasterTable {
    /// Per (position, slot): intended send time << 8 | phase, 0 = none.
    intended: Box<[AtomicU64]>,
    /// Per (position, slot): actual first send time, 0 = not yet sent.
    sent: Box<[AtomicU64]>,
    /// Cells per position (open, modifies, close).
    slots_per_position: u32,
}

impl MasterTable {
    /// A table for `positions_max` positions.
    pub fn new(positions_max: u64, slots_per_position: u32) -> MasterTable {
        let cells = (positions_max * u64::from(slots_per_position)) as usize;
        let zeros = || (0..cells).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice();
        MasterTable { intended: zeros(), sent: zeros(), slots_per_position }
    }

    fn cell(&self, position: u64, slot_index: u32) -> Option<usize> {
        assert!(slot_index < self.slots_per_position);
        let cell = position.checked_mul(u64::from(self.slots_per_position))? + u64::from(slot_index);
        (cell < self.intended.len() as u64).then_some(cell as usize)
    }

    /// Records the intended time and phase of an event just generated.
    pub fn set_intended(&self, position: u64, slot_index: u32, intended_ns: u64, phase: u32) {
        let cell = self.cell(position, slot_index).expect("the generator stays within positions_max");
        assert!(intended_ns < 1 << (64 - PHASE_BITS) && (phase as usize) < PHASES_MAX);
        self.intended[cell].store((intended_ns << PHASE_BITS) | u64::from(phase), Ordering::Release);
    }

    /// Records the first actual send of an event.
    pub fn set_sent(&self, position: u64, slot_index: u32, sent_ns: u64) {
        let cell = self.cell(position, slot_index).expect("the generator stays within positions_max");
        let _ = self.sent[cell].compare_exchange(0, sent_ns.max(1), Ordering::Release, Ordering::Relaxed);
    }

    /// (intended time, phase, actual send time or 0) of an event, or `None`
    /// when it was never generated.
    pub fn lookup(&self, position: u64, slot_index: u32) -> Option<(u64, u32, u64)> {
        let cell = self.cell(position, slot_index)?;
        let packed = self.intended[cell].load(Ordering::Acquire);
        if packed == 0 {
            return None;
        }
        let phase = (packed & ((1 << PHASE_BITS) - 1)) as u32;
        Some((packed >> PHASE_BITS, phase, self.sent[cell].load(Ordering::Acquire)))
    }
}

/// Counters of a run (all only grow).
#[derive(Default)]
pub struct Counters {
    /// Master events generated on schedule.
    pub events_generated: AtomicU64,
    /// Events written to a socket for the first time.
    pub events_sent: AtomicU64,
    /// Events written again after a reconnect (outbox above `ack_seq`).
    pub events_resent: AtomicU64,
    /// Events acked (by `ack`, or by a `welcome` whose ack_seq covers them).
    pub events_acked: AtomicU64,
    /// Copies the followers must receive, as events are generated.
    pub copies_expected: AtomicU64,
    /// Distinct expected copies received so far.
    pub copies_received: AtomicU64,
    /// Successful `welcome`s (first connections and reconnects).
    pub connects: AtomicU64,
    /// Connection attempts that failed (refused, timeout, hello refused).
    pub connect_failures: AtomicU64,
    /// Disconnects the harness caused (churn, stalls ended by the bridge).
    pub disconnects_forced: AtomicU64,
    /// Sessions the bridge or the network ended.
    pub sessions_lost: AtomicU64,
    /// `error` frames received.
    pub errors_received: AtomicU64,
    /// Events a master could not generate on time because its position
    /// table was full (a sizing bug of the harness; fails the run).
    pub schedule_overflow: AtomicU64,
    /// EAs that completed their first `welcome` (and `state` for slaves).
    pub ready: AtomicU64,
    /// Close codes the bridge sent, with counts.
    pub close_codes: Mutex<BTreeMap<u16, u64>>,
    /// The first few errors, for the report.
    pub error_examples: Mutex<Vec<String>>,
}

/// Error texts kept for the report.
pub const ERROR_EXAMPLES_MAX: usize = 10;

impl Counters {
    /// Adds one to `counter`.
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Remembers an error text (the first few) and a close code, if any.
    pub fn note_error(&self, text: String, close_code: Option<u16>) {
        if let Some(code) = close_code {
            *self.close_codes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(code).or_insert(0) += 1;
        }
        let mut examples = self.error_examples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if examples.len() < ERROR_EXAMPLES_MAX {
            examples.push(text);
        }
    }
}

/// Per-phase counters.
#[derive(Default)]
pub struct PhaseCounters {
    /// Events generated with an intended time in this phase.
    pub events: AtomicU64,
    /// Copies those events must cause.
    pub copies_expected: AtomicU64,
    /// True when latencies of this phase are recorded (not warm-up).
    pub recorded: AtomicBool,
}

/// Everything the EAs of a run share.
pub struct RunShared {
    /// The clock base of every time in the run.
    pub base: Instant,
    /// The bridge's EA URL.
    pub url: String,
    /// The plan; masters follow it, the orchestrator extends it.
    pub plan: watch::Sender<Arc<Plan>>,
    /// The run's stage.
    pub stage: watch::Sender<Stage>,
    /// By master index.
    pub tables: Vec<MasterTable>,
    /// Master login -> index.
    pub master_index: HashMap<u64, u32>,
    /// Wire `pos` of position number 0 of every master in this run.
    pub pos_base: u64,
    /// Positions per master the tables hold.
    pub positions_max: u64,
    /// Modifies per position.
    pub modifies_per_position: u32,
    pub counters: Counters,
    pub phases: [PhaseCounters; PHASES_MAX],
}

/// Most entries reserved up front per EA for what it keeps per event
/// (events generated, copies received, tickets): 2^17 covers a 5-minute run
/// at 1,000 events/s to 10 masters; longer or faster runs grow past it.
pub const EVENTS_RESERVED_MAX: u64 = 1 << 17;

impl RunShared {
    /// Entries to reserve up front for what an EA keeps per event of one
    /// master: the run's bound on them, at most [`EVENTS_RESERVED_MAX`].
    /// Growing such a map or list by doubling rehashes or copies it at
    /// once; with every EA of a thread growing at the same rate they did so
    /// in the same second, which stalled the client thread for tens of ms
    /// and showed as the same slow seconds in every bridge's timeline
    /// (net/README.md, "Durable writes").
    pub fn events_reserved(&self) -> usize {
        self.positions_max.min(EVENTS_RESERVED_MAX) as usize
    }

    /// Nanoseconds since the clock base.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The instant `nanoseconds` after the clock base.
    pub fn instant(&self, nanoseconds: u64) -> Instant {
        self.base + Duration::from_nanos(nanoseconds)
    }

    /// True when latencies of `phase` are recorded.
    pub fn recorded(&self, phase: u32) -> bool {
        self.phases[phase as usize].recorded.load(Ordering::Acquire)
    }

    /// Publishes a new plan, marking its recorded phases first.
    pub fn publish(&self, plan: Plan) {
        for phase in &plan.phases {
            self.phases[phase.index as usize].recorded.store(phase.recorded, Ordering::Release);
        }
        self.plan.send_replace(Arc::new(plan));
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        *self.stage.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_pack_time_and_phase_and_refuse_out_of_range() {
        // Shows: a cell returns the intended time, phase and first send time written to it; unwritten cells and positions beyond the table are None.
        let table = MasterTable::new(4, 3);
        assert_eq!(table.lookup(1, 2), None);
        table.set_intended(1, 2, 123_456_789, 5);
        assert_eq!(table.lookup(1, 2), Some((123_456_789, 5, 0)));
        table.set_sent(1, 2, 123_999_999);
        table.set_sent(1, 2, 200_000_000);
        assert_eq!(table.lookup(1, 2), Some((123_456_789, 5, 123_999_999)), "the first send wins");
        assert_eq!(table.lookup(4, 0), None);
        assert_eq!(table.lookup(u64::MAX, 0), None);
    }
}
