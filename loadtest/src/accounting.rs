//! Exactly-once accounting: which copies each simulated Executor received,
//! and, at the end, what was lost, duplicated or wrongly sized.
//!
//! # Layout
//! - [`CopyKey`]: (master, position, slot), the identity of a copy.
//! - [`SlaveReceipts`]: one Executor's receipts and the sequence rules it
//!   applies as copies arrive ([`SlaveReceipts::on_copy`]).
//! - [`reconcile`]: expected copies (every generated master event times
//!   every follower, minus the ones the bridge must skip) against receipts.
//! - [`Counts`]: the totals a run reports and gates on.
//!
//! # Invariants
//! - A copy counts once per key, at its first receipt; later receipts of
//!   the same key under another `seq` are duplicates.
//! - A re-delivery (the same `seq`, not yet finished, after a reconnect) is
//!   legal and counted apart; a `seq` at or below the highest finished one
//!   (the `last_seq` the Executor reports in `hello`) is a duplicate.
//! - Every received key is either matched to an expected copy or counted as
//!   unexpected; `expected = received + lost`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tradebridge_core::config::{BelowMin, LotRule};
use tradebridge_core::protocol::Side;

use crate::trades::{expected_open_units, lots_to_units, PlannedEvent, PositionTraits, Slot, SYMBOLS};

/// Examples of each failure kept for the report; enough to start a diagnosis.
pub const EXAMPLES_MAX: usize = 8;

/// The identity of one copy: which master event of which position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CopyKey {
    /// Index of the master in the fleet.
    pub master: u32,
    /// Position number within the master's run (wire `pos` minus the base).
    pub position: u64,
    pub slot: Slot,
}

/// The first receipt of a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Receipt {
    /// The copy's `seq` at first receipt.
    pub seq: u64,
    /// Its volume in units of 1e-8 lot.
    pub volume_units: u64,
    /// Its side.
    pub side: Side,
    /// Receipts of the same key under another `seq` (each a duplicate).
    pub other_seqs: u32,
}

/// How a received copy was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First receipt of this key.
    New,
    /// The same `seq` again before it was finished: legal re-delivery.
    Redelivery,
    /// The key was received before under another `seq`.
    DuplicateKey,
    /// A `seq` at or below the highest finished one arrived again.
    FinishedSeqAgain,
    /// An unfinished `seq` came back carrying another key.
    SeqReused,
}

/// Sequence anomalies and side counts of one Executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReceiptCounts {
    /// Legal re-deliveries.
    pub redelivered: u64,
    /// Keys received again under another `seq`.
    pub duplicate_key: u64,
    /// Finished `seq`s received again.
    pub finished_seq_again: u64,
    /// Unfinished `seq`s received again with another key.
    pub seq_reused: u64,
    /// Copies of positions from outside this run (an earlier run's, when
    /// running against a long-lived bridge); answered, not judged.
    pub stale: u64,
    /// Copies of this run's positions the harness cannot place (an action
    /// it never causes, a stop-loss it never sent).
    pub undecodable: u64,
}

/// One Executor's receipts.
#[derive(Clone, Debug, Default)]
pub struct SlaveReceipts {
    /// First receipt of every key.
    pub receipts: HashMap<CopyKey, Receipt>,
    /// Copies received whose `result` was not yet sent, by `seq`; a
    /// reconnect may legally deliver these again.
    unfinished: BTreeMap<u64, Option<CopyKey>>,
    /// Highest `seq` finished (result written and flushed): `last_seq`.
    pub finished_seq: u64,
    /// Distinct copy seqs received: each seq the bridge issued to this
    /// slave counts once, whatever its verdict (what its journal and the
    /// `copies` table hold for this slave, once nothing is lost).
    pub seqs_received: u64,
    /// Distinct seqs whose `result` was written and flushed (a result sent
    /// again for a finished seq is not counted twice).
    pub results_written: u64,
    /// Anomalies and side counts.
    pub counts: ReceiptCounts,
}

impl SlaveReceipts {
    /// Receipts with room for `copies` keys before the map grows.
    pub fn with_capacity(copies: usize) -> SlaveReceipts {
        SlaveReceipts { receipts: HashMap::with_capacity(copies), ..SlaveReceipts::default() }
    }

    /// Classifies a copy (`key` is `None` for one the harness cannot place)
    /// and records its first receipt.
    pub fn on_copy(&mut self, seq: u64, key: Option<CopyKey>, volume_units: u64, side: Side) -> Verdict {
        if seq <= self.finished_seq {
            self.counts.finished_seq_again += 1;
            return Verdict::FinishedSeqAgain;
        }
        if let Some(earlier) = self.unfinished.get(&seq) {
            if *earlier == key {
                self.counts.redelivered += 1;
                return Verdict::Redelivery;
            }
            self.counts.seq_reused += 1;
            return Verdict::SeqReused;
        }
        self.unfinished.insert(seq, key);
        self.seqs_received += 1;
        let Some(key) = key else {
            return Verdict::New;
        };
        if let Some(receipt) = self.receipts.get_mut(&key) {
            receipt.other_seqs += 1;
            self.counts.duplicate_key += 1;
            return Verdict::DuplicateKey;
        }
        self.receipts.insert(key, Receipt { seq, volume_units, side, other_seqs: 0 });
        Verdict::New
    }

    /// Notes that the result of every copy up to `seq` was sent.
    pub fn on_finished(&mut self, seq: u64) {
        if seq > self.finished_seq {
            self.results_written += 1;
        }
        self.finished_seq = self.finished_seq.max(seq);
        self.unfinished = self.unfinished.split_off(&(self.finished_seq + 1));
    }

    /// Duplicates of every kind this Executor saw.
    pub fn duplicates(&self) -> u64 {
        self.counts.duplicate_key + self.counts.finished_seq_again + self.counts.seq_reused
    }
}

/// What one follow relation means for the accounting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FollowRule {
    /// Index of the master in the fleet.
    pub master: u32,
    pub lot: LotRule,
    pub below_min: BelowMin,
    pub max_lot: Option<f64>,
}

/// One Executor's part of the final check.
pub struct SlaveAccount<'a> {
    /// Login, for examples in the report.
    pub login: u64,
    /// The masters it follows and how.
    pub follows: Vec<FollowRule>,
    pub receipts: &'a SlaveReceipts,
}

/// Totals of a run. `lost + duplicated + wrong_volume + wrong_side +
/// unexpected` must be 0 for the run to pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Copies the followers must receive.
    pub expected: u64,
    /// Expected copies received (each key once).
    pub received: u64,
    /// Expected copies never received by the end of the drain.
    pub lost: u64,
    /// Lost copies by action: open, modify, close.
    pub lost_by_action: BTreeMap<String, u64>,
    /// Lost modifies of positions whose close did arrive: the follower
    /// ended flat as the master did, but never saw the stop change (for
    /// instance when the bridge applied a snapshot that already showed the
    /// position closed before the modify). Included in `lost`.
    pub lost_modifies_superseded: u64,
    /// Keys received twice under different seqs, finished seqs received
    /// again, and seqs reused for another key.
    pub duplicated: u64,
    /// Opens and closes whose volume differs from the harness's sizing.
    pub wrong_volume: u64,
    /// Opens and closes on the wrong side.
    pub wrong_side: u64,
    /// Received copies of this run's positions that no event called for
    /// (including ones the harness could not place).
    pub unexpected: u64,
    /// Legal re-deliveries (same seq, unfinished, after a reconnect).
    pub redelivered: u64,
    /// Copies of earlier runs' positions (not judged).
    pub stale: u64,
    /// A few examples of each failure, for the report.
    pub examples: Vec<String>,
}

impl Counts {
    /// True when nothing was lost, duplicated, wrongly sized or unexpected.
    pub fn is_exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.wrong_volume == 0 && self.wrong_side == 0 && self.unexpected == 0
    }

    fn example(&mut self, text: String) {
        if self.examples.len() < EXAMPLES_MAX {
            self.examples.push(text);
        }
    }
}

/// Compares every expected copy with the receipts. `generated[m]` lists the
/// events master `m` generated (each sent at least once or still in its
/// outbox), `master_logins[m]` its login.
pub fn reconcile(generated: &[Vec<PlannedEvent>], master_logins: &[u64], slaves: &[SlaveAccount<'_>]) -> Result<Counts, String> {
    assert_eq!(generated.len(), master_logins.len(), "one login per master");
    let mut counts = Counts::default();
    for slave in slaves {
        let mut matched = 0u64;
        for follow in &slave.follows {
            let events = generated.get(follow.master as usize).ok_or_else(|| format!("follow of master index {}: no such master", follow.master))?;
            for event in events {
                let traits = PositionTraits::of(event.position);
                let Some(volume_units) = expected_open_units(follow.lot, follow.below_min, follow.max_lot, traits.volume_lots, &SYMBOLS[traits.symbol])? else {
                    continue;
                };
                counts.expected += 1;
                let key = CopyKey { master: follow.master, position: event.position, slot: event.slot };
                let where_ = || format!("slave {} master {} position {} {}", slave.login, master_logins[follow.master as usize], event.position, event.slot.action_name());
                let Some(receipt) = slave.receipts.receipts.get(&key) else {
                    counts.lost += 1;
                    *counts.lost_by_action.entry(event.slot.action_name().to_string()).or_default() += 1;
                    let closed = slave.receipts.receipts.contains_key(&CopyKey { slot: Slot::Close, ..key });
                    let superseded = matches!(event.slot, Slot::Modify(_)) && closed;
                    counts.lost_modifies_superseded += u64::from(superseded);
                    counts.example(format!("lost: {}{}", where_(), if superseded { " (its close arrived)" } else { "" }));
                    continue;
                };
                matched += 1;
                counts.received += 1;
                if matches!(event.slot, Slot::Open | Slot::Close) {
                    if receipt.volume_units != volume_units {
                        counts.wrong_volume += 1;
                        counts.example(format!("wrong volume: {} got {} units, expected {volume_units}", where_(), receipt.volume_units));
                    }
                    if receipt.side != traits.side {
                        counts.wrong_side += 1;
                        counts.example(format!("wrong side: {} got {:?}, expected {:?}", where_(), receipt.side, traits.side));
                    }
                }
                if receipt.other_seqs > 0 {
                    counts.example(format!("duplicated: {} first seq {} and {} more", where_(), receipt.seq, receipt.other_seqs));
                }
            }
        }
        let unplaced = slave.receipts.receipts.len() as u64 - matched + slave.receipts.counts.undecodable;
        if unplaced > 0 {
            counts.example(format!("unexpected: slave {} received {unplaced} copies no event called for", slave.login));
        }
        counts.unexpected += unplaced;
        counts.duplicated += slave.receipts.duplicates();
        if slave.receipts.counts.finished_seq_again + slave.receipts.counts.seq_reused > 0 {
            counts.example(format!("duplicated: slave {} received {} finished seqs again", slave.login, slave.receipts.counts.finished_seq_again + slave.receipts.counts.seq_reused));
        }
        counts.redelivered += slave.receipts.counts.redelivered;
        counts.stale += slave.receipts.counts.stale;
    }
    assert_eq!(counts.expected, counts.received + counts.lost);
    Ok(counts)
}

/// A received copy's volume in units, as [`Receipt::volume_units`] holds it.
pub fn volume_units(volume_lots: f64) -> u64 {
    if volume_lots.is_finite() && volume_lots >= 0.0 {
        lots_to_units(volume_lots)
    } else {
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(position: u64, slot: Slot) -> Option<CopyKey> {
        Some(CopyKey { master: 0, position, slot })
    }

    fn follow(factor: f64) -> FollowRule {
        FollowRule { master: 0, lot: LotRule::Multiplier { factor }, below_min: BelowMin::Skip, max_lot: None }
    }

    /// Position 0: EURUSD buy 0.1; position 3: EURUSD sell 1.0 (see trades::PositionTraits).
    fn events() -> Vec<Vec<PlannedEvent>> {
        let event = |position, slot| PlannedEvent { position, slot };
        vec![vec![event(0, Slot::Open), event(3, Slot::Open), event(0, Slot::Modify(0)), event(0, Slot::Close)]]
    }

    #[test]
    fn redelivery_of_an_unfinished_seq_is_legal_and_a_finished_one_is_a_duplicate() {
        // Shows: seq 5 received twice before its result is a re-delivery; after the result, seq 5 again is a duplicate, and a new seq for a known key is a duplicate.
        let mut receipts = SlaveReceipts::default();
        assert_eq!(receipts.on_copy(5, key(0, Slot::Open), 20_000_000, Side::Buy), Verdict::New);
        assert_eq!(receipts.on_copy(5, key(0, Slot::Open), 20_000_000, Side::Buy), Verdict::Redelivery);
        receipts.on_finished(5);
        assert_eq!(receipts.on_copy(5, key(0, Slot::Open), 20_000_000, Side::Buy), Verdict::FinishedSeqAgain);
        assert_eq!(receipts.on_copy(6, key(0, Slot::Open), 20_000_000, Side::Buy), Verdict::DuplicateKey);
        assert_eq!(receipts.on_copy(6, key(3, Slot::Open), 1, Side::Sell), Verdict::SeqReused);
        assert_eq!(receipts.counts, ReceiptCounts { redelivered: 1, duplicate_key: 1, finished_seq_again: 1, seq_reused: 1, stale: 0, undecodable: 0 });
        assert_eq!(receipts.duplicates(), 3);
        assert_eq!((receipts.seqs_received, receipts.results_written), (2, 1), "seqs 5 and 6 were issued; only 5's result was written");
    }

    #[test]
    fn distinct_seqs_and_results_count_each_seq_once() {
        // Shows: a re-delivered seq and a result sent again for a finished seq count once, as the copies and copy_results tables hold them once.
        let mut receipts = SlaveReceipts::default();
        receipts.on_copy(1, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_copy(1, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_finished(1);
        receipts.on_copy(1, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_finished(1);
        receipts.on_copy(2, None, 0, Side::Buy);
        receipts.on_finished(2);
        assert_eq!((receipts.seqs_received, receipts.results_written), (2, 2));
    }

    #[test]
    fn exact_delivery_counts_nothing_wrong() {
        // Shows: every event received once with the multiplier's volume (0.1 x 2 = 0.2, 1.0 x 2 = 2.0) gives expected = received and no failure.
        let mut receipts = SlaveReceipts::default();
        receipts.on_copy(1, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_copy(2, key(3, Slot::Open), 200_000_000, Side::Sell);
        receipts.on_copy(3, key(0, Slot::Modify(0)), 0, Side::Buy);
        receipts.on_copy(4, key(0, Slot::Close), 20_000_000, Side::Buy);
        receipts.on_finished(4);
        let slaves = [SlaveAccount { login: 7, follows: vec![follow(2.0)], receipts: &receipts }];
        let counts = reconcile(&events(), &[100], &slaves).expect("modelled rules");
        assert_eq!((counts.expected, counts.received, counts.lost), (4, 4, 0));
        assert!(counts.is_exact(), "{counts:?}");
    }

    #[test]
    fn lost_duplicated_and_wrong_volume_are_each_counted() {
        // Shows: a missing close is lost (by action), an open received under two seqs is duplicated, a doubled volume is wrong_volume, and a copy for a never-opened position is unexpected.
        let mut receipts = SlaveReceipts::default();
        receipts.on_copy(1, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_copy(2, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_copy(3, key(3, Slot::Open), 400_000_000, Side::Sell);
        receipts.on_copy(4, key(0, Slot::Modify(0)), 0, Side::Buy);
        receipts.on_copy(5, key(9, Slot::Open), 20_000_000, Side::Sell);
        receipts.on_finished(5);
        let slaves = [SlaveAccount { login: 7, follows: vec![follow(2.0)], receipts: &receipts }];
        let counts = reconcile(&events(), &[100], &slaves).expect("modelled rules");
        assert_eq!((counts.expected, counts.received, counts.lost), (4, 3, 1));
        assert_eq!(counts.lost_by_action.get("close"), Some(&1));
        assert_eq!(counts.lost_modifies_superseded, 0, "the lost close is no superseded modify");
        assert_eq!((counts.duplicated, counts.wrong_volume, counts.unexpected), (1, 1, 1));
        assert!(!counts.is_exact());
        assert!(counts.examples.iter().any(|example| example.starts_with("lost: slave 7 master 100 position 0 close")), "{:?}", counts.examples);
    }

    #[test]
    fn a_lost_modify_whose_close_arrived_is_lost_and_marked_superseded() {
        // Shows: open and close of position 0 arrived but its modify did not: lost 1, of which 1 superseded, and the example says the close arrived.
        let mut receipts = SlaveReceipts::default();
        receipts.on_copy(1, key(0, Slot::Open), 20_000_000, Side::Buy);
        receipts.on_copy(2, key(3, Slot::Open), 200_000_000, Side::Sell);
        receipts.on_copy(3, key(0, Slot::Close), 20_000_000, Side::Buy);
        receipts.on_finished(3);
        let slaves = [SlaveAccount { login: 7, follows: vec![follow(2.0)], receipts: &receipts }];
        let counts = reconcile(&events(), &[100], &slaves).expect("modelled rules");
        assert_eq!((counts.lost, counts.lost_modifies_superseded), (1, 1));
        assert!(counts.examples[0].ends_with("modify (its close arrived)"), "{:?}", counts.examples);
    }

    #[test]
    fn a_copy_the_bridge_must_skip_is_not_expected_and_is_unexpected_if_sent() {
        // Shows: position 2 (US30, 0.07 lots) x 1.0 is below US30's 0.1 minimum, so no copy is expected; one that arrives anyway is unexpected.
        let generated = vec![vec![PlannedEvent { position: 2, slot: Slot::Open }]];
        let mut receipts = SlaveReceipts::default();
        let slaves = [SlaveAccount { login: 7, follows: vec![follow(1.0)], receipts: &receipts }];
        let counts = reconcile(&generated, &[100], &slaves).expect("modelled rules");
        assert_eq!((counts.expected, counts.unexpected), (0, 0));
        receipts.on_copy(1, key(2, Slot::Open), 10_000_000, Side::Buy);
        let slaves = [SlaveAccount { login: 7, follows: vec![follow(1.0)], receipts: &receipts }];
        let counts = reconcile(&generated, &[100], &slaves).expect("modelled rules");
        assert_eq!((counts.expected, counts.unexpected), (0, 1));
    }
}
