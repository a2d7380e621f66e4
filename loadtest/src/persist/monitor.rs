//! Watches the persister while a run loads the bridge: one thread samples
//! `/metrics` into the [`Timeline`], another stops and restarts Postgres at
//! the planned moments of the measured phase; afterwards the orchestrator
//! waits here, bounded, for the persister to catch up.
//!
//! # Invariants
//! - One mutex holds all the monitor's state and one condvar announces
//!   every change (a sample, a phase, the load's end, stop): every wait is
//!   a `wait_timeout` on it, so each loop ends within one sampling period
//!   of being told to.
//! - The observer callbacks only take the lock and notify; they never
//!   scrape or touch Postgres, so they return at once (the orchestrator
//!   samples CPU right after them).
//! - Postgres is only stopped and restarted by the outage thread, and only
//!   between the measured phase's start and the monitor's stop.

use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::timeline::{caught_up_at, Marks, OutageWindow, Sample, Timeline};
use super::{Database, Outage, OutageLength};
use crate::bridge::{parse_metrics, scrape_metrics};
use crate::run::PhaseObserver;
use crate::schedule::Phase;

/// Sampling period while the load runs: the "once per second".
pub const SAMPLE_PERIOD_LOAD: Duration = Duration::from_secs(1);

/// Sampling period from the load's end, while the catch-up is timed: ten
/// times finer, so its start and end are known to 0.1 s.
pub const SAMPLE_PERIOD_CATCH_UP: Duration = Duration::from_millis(100);

/// Error texts of failed scrapes kept for the report.
const SCRAPE_ERRORS_KEPT_MAX: usize = 3;

/// What the threads share.
#[derive(Default)]
struct State {
    timeline: Timeline,
    /// Current sampling period; lowered when the load ends.
    period: Duration,
    /// Take a sample at once, whatever the period: set at the moments
    /// windows are timed from (the load's end, Postgres stopped and back),
    /// so each has a sample within a scrape's time of it.
    sample_now: bool,
    /// Set once: the monitor's threads end.
    stopped: bool,
    /// When the first recorded phase began.
    measure_started: Option<Instant>,
    /// Set when sending ended (the drain began).
    load_ended: bool,
    /// Set when the run's EAs left: an outage "until the load ends" ends.
    drained: bool,
    scrape_failures: u64,
    scrape_errors: Vec<String>,
    /// What went wrong with the outage (stop or restart failed, or it
    /// never began).
    outage_errors: Vec<String>,
    /// The last metrics scraped, all series.
    last_values: Map<String, Value>,
}

/// The monitor of one run.
pub struct Monitor<'a> {
    metrics: SocketAddr,
    database: &'a Database,
    /// Time zero of the timeline.
    origin: Instant,
    state: Mutex<State>,
    changed: Condvar,
}

/// What the monitor saw, once stopped.
pub struct Watched {
    pub timeline: Timeline,
    pub scrape_failures: u64,
    pub scrape_errors: Vec<String>,
    pub outage_errors: Vec<String>,
}

impl<'a> Monitor<'a> {
    pub fn new(metrics: SocketAddr, database: &'a Database) -> Monitor<'a> {
        let state = State { period: SAMPLE_PERIOD_LOAD, ..State::default() };
        Monitor { metrics, database, origin: Instant::now(), state: Mutex::new(state), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }

    /// Waits on the condvar until `until` or a change; the guard back.
    fn wait_until<'guard>(&self, guard: MutexGuard<'guard, State>, until: Instant) -> MutexGuard<'guard, State> {
        let timeout = until.saturating_duration_since(Instant::now());
        self.changed.wait_timeout(guard, timeout).unwrap_or_else(|poisoned| poisoned.into_inner()).0
    }

    /// The sampling thread: one scrape per period until stopped.
    pub fn sample_loop(&self) {
        loop {
            let scraped = scrape_metrics(self.metrics).map(|text| parse_metrics(&text));
            let at = self.secs(Instant::now());
            let mut state = self.lock();
            match scraped {
                Ok(metrics) => {
                    let values = metrics["values"].as_object().cloned().unwrap_or_default();
                    match Sample::from_metrics(at, &values) {
                        Ok(sample) => state.timeline.samples.push(sample),
                        Err(error) => note_scrape_error(&mut state, error),
                    }
                    state.last_values = values;
                }
                Err(error) => note_scrape_error(&mut state, format!("{error:#}")),
            }
            self.changed.notify_all();
            let sampled = Instant::now();
            // The period is read again after every wake: when the load ends
            // and it drops to 0.1 s, the next sample comes at once.
            loop {
                if state.stopped {
                    return;
                }
                if state.sample_now {
                    state.sample_now = false;
                    break;
                }
                let next = sampled + state.period;
                if Instant::now() >= next {
                    break;
                }
                state = self.wait_until(state, next);
            }
        }
    }

    /// The outage thread: waits for the measured phase, stops Postgres at
    /// `outage.at_secs` into it, restarts it after `outage.length`.
    pub fn outage_loop(&self, outage: Outage) {
        let Some(measure_started) = self.wait_outage_start(&outage) else { return };
        let stop_begun = self.secs(Instant::now());
        let stopped_result = self.database.stop();
        let stopped_at = Instant::now();
        let mut window = OutageWindow {
            planned_at_secs: outage.at_secs,
            planned_secs: match outage.length {
                OutageLength::Secs(secs) => Some(secs),
                OutageLength::UntilLoadEnds => None,
            },
            stop_begun_secs: stop_begun,
            stopped_secs: self.secs(stopped_at),
            restart_begun_secs: None,
            restarted_secs: None,
        };
        let into_measure = |secs: f64| secs - self.secs(measure_started);
        eprintln!("loadtest: Postgres stopped: pg_ctl stop called {:.1} s into the measured phase, returned at {:.1} s", into_measure(window.stop_begun_secs), into_measure(window.stopped_secs));
        let mut state = self.lock();
        state.timeline.marks.outage = Some(window);
        state.sample_now = true;
        self.changed.notify_all();
        if let Err(error) = stopped_result {
            state.outage_errors.push(format!("stopping Postgres for the outage failed: {error:#}"));
            return;
        }
        drop(state);
        if !self.wait_outage_end(&outage, stopped_at) {
            // The run failed: the cluster is removed with the database.
            return;
        }
        window.restart_begun_secs = Some(self.secs(Instant::now()));
        let restarted = self.database.restart();
        window.restarted_secs = Some(self.secs(Instant::now()));
        eprintln!("loadtest: Postgres restarted {:.1} s after pg_ctl stop was called", window.restarted_secs.unwrap_or_default() - window.stop_begun_secs);
        let mut state = self.lock();
        state.timeline.marks.outage = Some(window);
        state.sample_now = true;
        if let Err(error) = restarted {
            state.outage_errors.push(format!("restarting Postgres after the outage failed: {error:#}"));
        }
        self.changed.notify_all();
    }

    /// Waits until the outage is due; the measured phase's start, or `None`
    /// when the run stopped first or the load ended before it was due (the
    /// latter noted as an outage error).
    fn wait_outage_start(&self, outage: &Outage) -> Option<Instant> {
        let mut state = self.lock();
        while state.measure_started.is_none() && !state.stopped {
            state = self.wait_until(state, Instant::now() + SAMPLE_PERIOD_LOAD);
        }
        let measure_started = state.measure_started?;
        let stop_at = measure_started + Duration::from_secs_f64(outage.at_secs);
        while Instant::now() < stop_at && !state.stopped && !state.load_ended {
            state = self.wait_until(state, stop_at);
        }
        if state.stopped {
            return None;
        }
        if Instant::now() < stop_at {
            let error = format!("the Postgres outage planned at {} s into the measured phase never began: the load ended first (--postgres-outage-at)", outage.at_secs);
            state.outage_errors.push(error);
            return None;
        }
        Some(measure_started)
    }

    /// Waits until Postgres is due back; false when the run stopped first.
    fn wait_outage_end(&self, outage: &Outage, stopped_at: Instant) -> bool {
        let mut state = self.lock();
        match outage.length {
            OutageLength::Secs(secs) => {
                let restart_at = stopped_at + Duration::from_secs_f64(secs);
                while Instant::now() < restart_at && !state.stopped {
                    state = self.wait_until(state, restart_at);
                }
            }
            OutageLength::UntilLoadEnds => {
                while !state.drained && !state.stopped {
                    state = self.wait_until(state, Instant::now() + SAMPLE_PERIOD_LOAD);
                }
            }
        }
        !state.stopped
    }

    /// The run's EAs have left: an outage "until the load ends" ends.
    pub fn drained(&self) {
        let mut state = self.lock();
        state.drained = true;
        state.period = SAMPLE_PERIOD_CATCH_UP;
        state.sample_now = true;
        state.timeline.marks.drained_secs = Some(self.secs(Instant::now()));
        self.changed.notify_all();
    }

    /// Waits, at most `timeout`, until the persister has caught up with
    /// everything journaled after `from_secs`; the time it did.
    pub fn wait_caught_up(&self, from_secs: f64, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        state.period = SAMPLE_PERIOD_CATCH_UP;
        state.timeline.marks.catch_up_from_secs = Some(from_secs);
        loop {
            if let Some(at) = caught_up_at(&state.timeline.samples, from_secs) {
                state.timeline.marks.caught_up_secs = Some(at);
                return Some(at);
            }
            if Instant::now() >= deadline || state.stopped {
                return None;
            }
            state = self.wait_until(state, deadline);
        }
    }

    /// Where the catch-up is timed from: the load's end, or the restart
    /// when Postgres came back after it.
    pub fn catch_up_from(&self) -> f64 {
        let state = self.lock();
        let marks: &Marks = &state.timeline.marks;
        let load_end = marks.load_end_secs.or(marks.drained_secs).unwrap_or_else(|| self.secs(Instant::now()));
        let restarted = marks.outage.and_then(|outage| outage.restarted_secs).unwrap_or(f64::MIN);
        load_end.max(restarted)
    }

    /// Every series of a scrape taken now (the bridge's counters after the
    /// catch-up); the last sample's scrape when this one fails.
    pub fn values_now(&self) -> Map<String, Value> {
        let fresh = scrape_metrics(self.metrics).ok().map(|text| parse_metrics(&text));
        let mut state = self.lock();
        if let Some(values) = fresh.and_then(|metrics| metrics["values"].as_object().cloned()) {
            state.last_values = values;
        }
        state.last_values.clone()
    }

    /// Ends both threads and hands over what was seen.
    pub fn stop(&self) -> Watched {
        let mut state = self.lock();
        state.stopped = true;
        self.changed.notify_all();
        Watched {
            timeline: state.timeline.clone(),
            scrape_failures: state.scrape_failures,
            scrape_errors: state.scrape_errors.clone(),
            outage_errors: state.outage_errors.clone(),
        }
    }
}

fn note_scrape_error(state: &mut State, error: String) {
    state.scrape_failures += 1;
    if state.scrape_errors.len() < SCRAPE_ERRORS_KEPT_MAX {
        state.scrape_errors.push(error);
    }
}

impl PhaseObserver for Monitor<'_> {
    fn phase_started(&self, phase: &Phase) {
        let mut state = self.lock();
        if phase.recorded && state.measure_started.is_none() {
            let now = Instant::now();
            state.measure_started = Some(now);
            state.timeline.marks.measure_start_secs = Some(self.secs(now));
            self.changed.notify_all();
        }
    }

    fn sending_ended(&self) {
        let mut state = self.lock();
        state.load_ended = true;
        // The catch-up is timed from here: sample it now, then finely.
        state.period = SAMPLE_PERIOD_CATCH_UP;
        state.sample_now = true;
        state.timeline.marks.load_end_secs = Some(self.secs(Instant::now()));
        self.changed.notify_all();
    }
}
