//! The sync policy as a pure state machine: it is told about appends,
//! flushes and the time, and answers whether a flush is due. It touches no
//! file, so every policy decision is tested without I/O and with injected
//! time.
//!
//! # Invariants
//! - `synced_seq <= appended_seq`.
//! - `unsynced_records` counts appends since the last flush or since open,
//!   so it is zero right after either.
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
    /// Records appended since the last flush; reset by a flush.
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
        SyncState { policy, appended_seq: last_seq, synced_seq, unsynced_records: 0, oldest_unsynced_ms: 0 }
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

    /// True when `tick` at `now_ms` should flush: the group's oldest record
    /// has waited `interval_ms`. Never true for the other policies (every
    /// record is already flushed, or flushing is left to the kernel).
    pub(crate) fn is_flush_due(&self, now_ms: u64) -> bool {
        match self.policy {
            SyncPolicy::Group { .. } => self.unsynced_records > 0 && self.interval_elapsed(now_ms),
            SyncPolicy::EveryRecord | SyncPolicy::Os => false,
        }
    }

    /// Records that everything appended so far is on storage.
    pub(crate) fn on_flushed(&mut self) {
        assert!(self.synced_seq <= self.appended_seq);
        self.synced_seq = self.appended_seq;
        self.unsynced_records = 0;
    }

    /// True when records are appended but not flushed.
    pub(crate) fn has_unsynced(&self) -> bool {
        self.synced_seq < self.appended_seq
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
