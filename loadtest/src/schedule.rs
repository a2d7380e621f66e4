//! The open-loop schedule: when each master event is meant to be sent.
//!
//! # Layout
//! - [`Phase`]: a window of the run with one offered event rate (warm-up,
//!   measurement, a ramp step, the stalled half of `slow-slave`).
//! - [`Plan`]: the phases published so far, in time order.
//! - [`intended_ns`]: the intended send time of one master's `j`-th event of
//!   a phase.
//! - [`Cursor`]: one master's place in the plan; yields its next intended
//!   send time.
//!
//! # Invariants
//! - An intended time depends only on the phase, the master's index and the
//!   event's number within the phase, never on when the sender actually ran.
//!   A sender that stalls sends its late events as soon as it can, and each
//!   keeps the time it was meant to go out; latency is measured from that
//!   time, so queueing behind a stall is counted instead of hidden
//!   (coordinated-omission correction).
//! - Within a phase the masters' events interleave evenly: the global event
//!   `i = j x masters + master` is due at `start + i / rate`.
//! - Phases do not overlap, and a cursor never goes back in time.

/// Phases a run may hold: warm-up, measurement and ramp steps fit many times
/// over; bounds the per-phase counters and histograms.
pub const PHASES_MAX: usize = 64;

/// One window of a run at one offered rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Position in the plan, from 0; also the index of its histograms.
    pub index: u32,
    /// Name in reports: `warmup`, `measure`, `step-3`, `stalled`.
    pub name: String,
    /// Events per second offered by all masters together.
    pub rate_per_second: f64,
    /// First instant of the window, nanoseconds after the run's clock base.
    pub start_ns: u64,
    /// End of the window (exclusive), nanoseconds after the clock base.
    pub end_ns: u64,
    /// False for warm-up: its events are checked for correctness but their
    /// latencies are not recorded.
    pub recorded: bool,
}

impl Phase {
    /// Length of the window in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end_ns - self.start_ns) as f64 / 1e9
    }
}

/// The phases published so far. Trading ends when `finished` is set and
/// every cursor has passed the last phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Phases in time order, indexed by `Phase::index`.
    pub phases: Vec<Phase>,
    /// No phase will be added: a cursor past the last one is done.
    pub finished: bool,
}

impl Plan {
    /// Appends a phase after the last one; panics if it overlaps (a bug in
    /// the scenario code, not an input error).
    pub fn push(&mut self, name: &str, rate_per_second: f64, start_ns: u64, seconds: f64, recorded: bool) -> &Phase {
        assert!(self.phases.len() < PHASES_MAX, "at most {PHASES_MAX} phases per run");
        assert!(rate_per_second > 0.0 && rate_per_second.is_finite(), "rate {rate_per_second} must be a positive number");
        let end_ns = start_ns + (seconds * 1e9).round() as u64;
        assert!(end_ns > start_ns, "a phase lasts more than 0 s");
        if let Some(last) = self.phases.last() {
            assert!(start_ns >= last.end_ns, "phase {name} starts before the previous one ends");
        }
        let index = self.phases.len() as u32;
        self.phases.push(Phase { index, name: name.to_string(), rate_per_second, start_ns, end_ns, recorded });
        self.phases.last().expect("just pushed")
    }

    /// The phase whose window holds `time_ns`, if any.
    pub fn phase_at(&self, time_ns: u64) -> Option<&Phase> {
        self.phases.iter().find(|phase| phase.start_ns <= time_ns && time_ns < phase.end_ns)
    }
}

/// Intended send time of master `master`'s `j`-th event in `phase`, when
/// `masters` masters share the phase's rate.
pub fn intended_ns(phase: &Phase, masters: u32, master: u32, j: u64) -> u64 {
    assert!(master < masters, "master {master} of {masters}");
    let global_index = j as f64 * f64::from(masters) + f64::from(master);
    phase.start_ns + (global_index * 1e9 / phase.rate_per_second).round() as u64
}

/// Where one master stands in the plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Index of the phase the next event belongs to.
    pub phase: usize,
    /// Number of the next event within that phase.
    pub j: u64,
}

/// What a cursor finds next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The next event: its phase and intended send time.
    Event { phase: u32, intended_ns: u64 },
    /// Past every published phase; more may come.
    Wait,
    /// Past the last phase of a finished plan.
    Done,
}

impl Cursor {
    /// The next event of master `master` (of `masters`), moving past phases
    /// whose windows it has used up.
    pub fn peek(&mut self, plan: &Plan, masters: u32, master: u32) -> Next {
        while let Some(phase) = plan.phases.get(self.phase) {
            let time_ns = intended_ns(phase, masters, master, self.j);
            if time_ns < phase.end_ns {
                return Next::Event { phase: phase.index, intended_ns: time_ns };
            }
            self.phase += 1;
            self.j = 0;
        }
        if plan.finished {
            Next::Done
        } else {
            Next::Wait
        }
    }

    /// Moves past the event `peek` returned.
    pub fn advance(&mut self) {
        self.j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of_two() -> Plan {
        let mut plan = Plan::default();
        plan.push("warmup", 100.0, 1_000_000_000, 0.05, false);
        plan.push("measure", 1000.0, 1_050_000_000, 0.01, true);
        plan
    }

    #[test]
    fn masters_interleave_evenly_at_the_phase_rate() {
        // Shows: at 100 events/s over 2 masters, master 0 is due every 20 ms from the start and master 1 10 ms after it.
        let plan = plan_of_two();
        let warmup = &plan.phases[0];
        assert_eq!(intended_ns(warmup, 2, 0, 0), 1_000_000_000);
        assert_eq!(intended_ns(warmup, 2, 1, 0), 1_010_000_000);
        assert_eq!(intended_ns(warmup, 2, 0, 1), 1_020_000_000);
        assert_eq!(intended_ns(warmup, 2, 1, 2), 1_050_000_000);
    }

    #[test]
    fn cursor_walks_phases_and_keeps_intended_times_whatever_the_sender_did() {
        // Shows: the cursor yields every intended time of each phase in order, moves to the next phase at its window's end, and waits or ends after the last.
        let mut plan = plan_of_two();
        let mut cursor = Cursor::default();
        let mut times = Vec::new();
        // The sender "stalls": it asks for all events at once, long after
        // they were due; the times are the schedule's, not the asking time.
        while let Next::Event { phase, intended_ns } = cursor.peek(&plan, 2, 0) {
            times.push((phase, intended_ns));
            cursor.advance();
        }
        let warmup: Vec<(u32, u64)> = (0..3).map(|j| (0, 1_000_000_000 + j * 20_000_000)).collect();
        let measure: Vec<(u32, u64)> = (0..5).map(|j| (1, 1_050_000_000 + j * 2_000_000)).collect();
        assert_eq!(times, [warmup, measure].concat());
        assert_eq!(cursor.peek(&plan, 2, 0), Next::Wait);
        plan.finished = true;
        assert_eq!(cursor.peek(&plan, 2, 0), Next::Done);
    }

    #[test]
    fn phase_at_finds_the_window_and_nothing_between_windows() {
        // Shows: phase_at maps a time to the phase holding it, and a time in a gap or after the last window to none.
        let mut plan = plan_of_two();
        plan.push("step", 10.0, 2_000_000_000, 1.0, true);
        assert_eq!(plan.phase_at(1_049_999_999).map(|phase| phase.index), Some(0));
        assert_eq!(plan.phase_at(1_050_000_000).map(|phase| phase.index), Some(1));
        assert_eq!(plan.phase_at(1_500_000_000), None);
        assert_eq!(plan.phase_at(2_999_999_999).map(|phase| phase.index), Some(2));
        assert_eq!(plan.phase_at(3_000_000_000), None);
    }

    #[test]
    #[should_panic(expected = "starts before the previous one ends")]
    fn overlapping_phases_are_refused() {
        // Shows: a phase starting inside the previous window is a bug caught at once.
        let mut plan = plan_of_two();
        plan.push("late", 10.0, 1_055_000_000, 1.0, true);
    }
}
