//! The sync policy as a pure state machine: it is told about appends,
//! flushes and the time, and answers whether a flush is due. It touches no
//! file, so every policy decision is tested without I/O and with injected
//! time.
//!
//! # Invariants
//! - `synced_seq <= requested_seq <= appended_seq`.
//! - `unsynced_records` counts appends since the last flush was requested
//!   (inline or handed to the flush thread) or since open, so it is zero
//!   right after either: it is the open group.
//! - A flush is never due when nothing is unflushed.

use super::options::SyncPolicy;

/// Flush bookkeeping for one journal.
#[derive(Clone, Debug)]
pub(crate) struct SyncState {
    /// The configured policy; fixed for the journal's life.
    policy: SyncPolicy,
    /// Highest sequence appended; advances on every append.
    appended_seq: u64,
    /// Highest sequence flushed to storage by this journal (or found and
    /// synced at open); advances on every successful flush.
    synced_seq: u64,
    /// Highest sequence a flush was started for (done inline, or handed to
    /// the flush thread and maybe still running); `synced_seq` catches up
    /// when that flush completes.
    requested_seq: u64,
    /// Records appended since the last flush request; reset by one.
    unsynced_records: u32,
    /// `now_ms` passed with the oldest unflushed append; meaningful only
    /// while `unsynced_records > 0`.
    oldest_unsynced_ms: u64,
}

impl SyncState {
    /// State after opening a journal whose last record is `last_seq`, of
    /// which everything up to `synced_seq` is known to be on storage.
    pub(crate) fn new(policy: SyncPolicy, last_seq: u64, synced_seq: u64) -> SyncState {
        assert!(synced_seq <= last_seq, "synced_seq {synced_seq} above last_seq {last_seq}");
        SyncState { policy, appended_seq: last_seq, synced_seq, requested_seq: synced_seq, unsynced_records: 0, oldest_unsynced_ms: 0 }
    }

    /// Records an append; returns true when the policy wants a flush now.
    pub(crate) fn on_append(&mut self, seq: u64, now_ms: u64) -> bool {
        assert_eq!(seq, self.appended_seq + 1, "appends are consecutive");
        self.appended_seq = seq;
        if self.unsynced_records == 0 {
            self.oldest_unsynced_ms = now_ms;
        }
        self.unsynced_records = self.unsynced_records.saturating_add(1);
        debug_assert!(self.synced_seq < self.appended_seq);
        match self.policy {
            SyncPolicy::EveryRecord => true,
            SyncPolicy::Group { records_max, .. } => {
                self.unsynced_records >= records_max || self.interval_elapsed(now_ms)
            }
            SyncPolicy::Os => false,
        }
    }

    /// True when `tick` at `now_ms` should flush the open group: its oldest
    /// record has waited `interval_ms`, or it holds `records_max` records
    /// (an append found it complete while the previous group's flush was
    /// still running on the flush thread). Never true for the other
    /// policies (every record is already flushed, or flushing is left to
    /// the kernel).
    pub(crate) fn is_flush_due(&self, now_ms: u64) -> bool {
        match self.policy {
            SyncPolicy::Group { records_max, .. } => {
                self.unsynced_records > 0 && (self.unsynced_records >= records_max || self.interval_elapsed(now_ms))
            }
            SyncPolicy::EveryRecord | SyncPolicy::Os => false,
        }
    }

    /// Records that everything appended so far is on storage.
    pub(crate) fn on_flushed(&mut self) {
        assert!(self.synced_seq <= self.appended_seq);
        self.on_flush_requested();
        self.synced_seq = self.appended_seq;
    }

    /// Records that a flush of everything appended so far was handed to the
    /// flush thread: the open group is closed, a new one starts.
    pub(crate) fn on_flush_requested(&mut self) {
        self.requested_seq = self.appended_seq;
        self.unsynced_records = 0;
    }

    /// Records that the flush requested up to `seq` completed.
    pub(crate) fn on_flush_completed(&mut self, seq: u64) {
        assert!(seq <= self.requested_seq, "completed flush {seq} above the requested {}", self.requested_seq);
        self.synced_seq = self.synced_seq.max(seq);
    }

    /// True when records are appended but not flushed.
    pub(crate) fn has_unsynced(&self) -> bool {
        self.synced_seq < self.appended_seq
    }

    /// True when records are appended that no flush was started for.
    pub(crate) fn has_unrequested(&self) -> bool {
        self.requested_seq < self.appended_seq
    }

    /// Highest sequence a flush was started for.
    pub(crate) fn requested_seq(&self) -> u64 {
        self.requested_seq
    }

    /// Highest sequence flushed to storage.
    pub(crate) fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    /// Highest sequence that survives the failures the policy protects
    /// against: the synced sequence, except under `Os`, which protects
    /// against a process crash only, and every appended record survives that
    /// in the page cache.
    pub(crate) fn durable_seq(&self) -> u64 {
        match self.policy {
            SyncPolicy::Os => self.appended_seq,
            SyncPolicy::EveryRecord | SyncPolicy::Group { .. } => self.synced_seq,
        }
    }

    fn interval_elapsed(&self, now_ms: u64) -> bool {
        let SyncPolicy::Group { interval_ms, .. } = self.policy else {
            return false;
        };
        // A clock that steps backwards yields zero elapsed time, never an
        // underflow into an immediate flush storm.
        now_ms.saturating_sub(self.oldest_unsynced_ms) >= interval_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Group flushes exactly when records_max records are unflushed, not one before.
    #[test]
    fn group_flushes_at_records_max() {
        let mut state = SyncState::new(SyncPolicy::Group { records_max: 3, interval_ms: 1_000 }, 0, 0);
        assert!(!state.on_append(1, 10));
        assert!(!state.on_append(2, 10));
        assert!(state.on_append(3, 10));
        assert_eq!(state.durable_seq(), 0);
        state.on_flushed();
        assert_eq!((state.durable_seq(), state.synced_seq()), (3, 3));
        assert!(!state.on_append(4, 11), "the count restarts after a flush");
    }

    // Group flushes on tick once the oldest unflushed record is interval_ms old, not before.
    #[test]
    fn group_flushes_on_tick_after_interval() {
        let mut state = SyncState::new(SyncPolicy::Group { records_max: 100, interval_ms: 5 }, 0, 0);
        assert!(!state.is_flush_due(1_000), "nothing unflushed, nothing due");
        assert!(!state.on_append(1, 1_000));
        assert!(!state.on_append(2, 1_003));
        assert!(!state.is_flush_due(1_004));
        assert!(state.is_flush_due(1_005), "measured from the oldest record");
        state.on_flushed();
        assert!(!state.is_flush_due(2_000));
    }

    // An append that finds the interval elapsed flushes even without a tick.
    #[test]
    fn group_flushes_on_append_after_interval() {
        let mut state = SyncState::new(SyncPolicy::Group { records_max: 100, interval_ms: 5 }, 7, 7);
        assert!(!state.on_append(8, 100));
        assert!(state.on_append(9, 105));
    }

    // A group closed by a request is durable only once its flush completes; appends meanwhile open the next group, which is due at records_max even without a tick's interval.
    #[test]
    fn requested_flush_is_durable_on_completion() {
        let mut state = SyncState::new(SyncPolicy::Group { records_max: 2, interval_ms: 1_000 }, 0, 0);
        assert!(!state.on_append(1, 10));
        assert!(state.on_append(2, 10));
        state.on_flush_requested();
        assert!(!state.has_unrequested());
        assert!(state.has_unsynced());
        assert_eq!(state.durable_seq(), 0, "not durable before the flush completes");
        assert!(!state.is_flush_due(10), "the closed group is not due again");
        assert!(!state.on_append(3, 11));
        assert!(state.on_append(4, 11));
        assert!(state.is_flush_due(11), "a full group is due while the previous flush runs");
        state.on_flush_completed(2);
        assert_eq!((state.durable_seq(), state.synced_seq()), (2, 2));
        assert!(state.has_unrequested());
        state.on_flush_requested();
        state.on_flush_completed(4);
        assert_eq!(state.durable_seq(), 4);
        assert!(!state.has_unsynced());
    }

    // A clock that steps backwards does not make a flush due.
    #[test]
    fn group_tolerates_time_going_backwards() {
        let mut state = SyncState::new(SyncPolicy::Group { records_max: 100, interval_ms: 5 }, 0, 0);
        assert!(!state.on_append(1, 1_000));
        assert!(!state.on_append(2, 10));
        assert!(!state.is_flush_due(0));
        assert!(state.is_flush_due(1_005));
    }

    // EveryRecord asks for a flush on every append; Os never does and counts appends as durable.
    #[test]
    fn every_record_and_os_policies() {
        let mut every = SyncState::new(SyncPolicy::EveryRecord, 0, 0);
        assert!(every.on_append(1, 0));
        assert_eq!(every.durable_seq(), 0, "durable only once flushed");
        every.on_flushed();
        assert_eq!(every.durable_seq(), 1);

        let mut os = SyncState::new(SyncPolicy::Os, 5, 0);
        assert!(!os.on_append(6, 0));
        assert!(!os.is_flush_due(u64::MAX));
        assert_eq!((os.durable_seq(), os.synced_seq()), (6, 0));
        assert!(os.has_unsynced());
        os.on_flushed();
        assert!(!os.has_unsynced());
    }
}
