//! A configuration change applied to a running engine, at one point in the
//! stream of events: accounts and follows added, changed or removed, with
//! no restart.
//!
//! The engine's dynamic state moves into an engine built from the new
//! configuration by the same [`Engine::restore`] a checkpoint uses, so a
//! change applied live and the same change met again by a replay of the
//! journal give the same engine. Before the move, the copies of each
//! follow that ends are left or closed as that follow's `on_remove` says.
//!
//! # Invariants
//! - Deterministic: the same engine and configuration give the same
//!   report, decisions and engine (ordered maps, follows in login order).
//! - Exits are decided only for follows that end while their slave stays
//!   configured (a removed slave's session is closed: nothing could reach
//!   it), and only with `on_remove = "close"`.
//! - After the move, every position has exactly one copy per current
//!   follower of its master and every slave's open-copy counters count its
//!   active copies (both from [`Engine::restore`]).

use std::collections::BTreeSet;

use super::events::decide_exit;
use super::{Decision, Engine, Outcome, RestoreReport};
use crate::config::{Config, OnRemove};

/// What [`Engine::reconfigure`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// Follows, as (slave, master), linked before and not after: removed,
    /// or an account of theirs removed or of another role now.
    pub follows_ended: Vec<(u64, u64)>,
    /// Follows linked after and not before.
    pub follows_begun: Vec<(u64, u64)>,
    /// Closes and cancels decided for ended follows with `on_remove = "close"`.
    pub exits: usize,
    /// What the move of the state did not carry over (accounts removed,
    /// masters whose followers changed).
    pub restore: RestoreReport,
}

impl ReconfigureReport {
    /// True when the change touched no follow and dropped no account.
    pub fn is_quiet(&self) -> bool {
        self.follows_ended.is_empty() && self.follows_begun.is_empty() && self.restore.accounts_dropped.is_empty()
    }
}

impl Engine {
    /// Applies `config` from now on. Ended follows with `on_remove =
    /// "close"` get their exits in `out` (closes of open copies, cancels of
    /// placed pending orders), decided under the follow's old rules; the
    /// rest of the state carries over as a checkpoint's restore would.
    pub fn reconfigure(&mut self, config: &Config, out: &mut Vec<Decision>) -> ReconfigureReport {
        let next = Engine::new(config);
        let before = self.links();
        let after = next.links();
        let mut report = ReconfigureReport {
            follows_ended: before.difference(&after).copied().collect(),
            follows_begun: after.difference(&before).copied().collect(),
            ..ReconfigureReport::default()
        };
        let decided_before = out.len();
        for &(slave, master) in &report.follows_ended {
            if next.slaves.contains_key(&slave) {
                report.exits += self.exit_follow(slave, master, out);
            }
        }
        assert_eq!(out.len() - decided_before, report.exits, "one decision per exit");
        let state = std::mem::replace(self, next).into_state();
        report.restore = self.restore(state);
        report
    }

    /// Linked follows as (slave, master), ascending.
    fn links(&self) -> BTreeSet<(u64, u64)> {
        self.slaves.iter().flat_map(|(slave, book)| book.follows.iter().map(move |slot| (*slave, slot.master))).collect()
    }

    /// Ends the copies of one follow that is ending, if its `on_remove`
    /// says so; the number of exits decided.
    fn exit_follow(&mut self, slave: u64, master: u64, out: &mut Vec<Decision>) -> usize {
        let Engine { follows, masters, slaves } = self;
        let slave_book = slaves.get_mut(&slave).expect("a linked follow's slave has a book");
        let slot = *slave_book.follows.iter().find(|slot| slot.master == master).expect("the follow is linked");
        let follow = &follows[slot.follow];
        if follow.on_remove != OnRemove::Close {
            return 0;
        }
        let book = masters.get_mut(&master).expect("a linked follow's master has a book");
        let mut exits = 0;
        for (pos, position) in book.positions.iter_mut() {
            let copy = &mut position.copies[slot.slot];
            if !copy.status.is_active() {
                continue;
            }
            if let Outcome::Copy(instruction) = decide_exit(follow, slave_book, copy, master, *pos, &position.tag) {
                out.push(Decision { slave, master, pos: *pos, outcome: Outcome::Copy(instruction) });
                exits += 1;
            }
        }
        exits
    }
}
