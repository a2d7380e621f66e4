//! Read-only views of the engine for operators (the admin API): a
//! follower's copies set against its masters' positions.
//!
//! # Invariants
//! - A view is built from the books as they are; it changes nothing.
//! - Its size is bounded by the slave's follows times
//!   `positions_per_master_max` plus `closed_positions_remembered_max`.

use serde::Serialize;

use super::ledger::CopyStatus;
use super::lots::units_to_lots;
use super::Engine;

/// One master position a follower's copy is measured against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FollowerPosition {
    pub master: u64,
    /// The master's position (or pending order) id.
    pub pos: u64,
    /// The master's symbol and side.
    pub symbol: String,
    pub side: &'static str,
    /// Lots the master still holds, by the latest evidence; 0 once closed.
    pub master_lots: f64,
    /// True once the master closed or cancelled it.
    pub master_closed: bool,
    /// Where the follower's copy stands (`open`, `open_sent`, `no_copy:...`).
    pub copy_status: String,
    /// The follower's symbol and the lots it holds (or will once what is
    /// in flight lands).
    pub copy_symbol: String,
    pub copy_lots: f64,
    /// Instructions sent whose result has not come.
    pub in_flight: u32,
    /// True when the copy holds volume exactly while the master does: an
    /// open master position with an open copy, or a closed one with none.
    /// False for a copy that is missing, partial by rule, or left behind.
    pub matches_master: bool,
}

fn status_text(status: CopyStatus) -> String {
    // The variant names in snake_case (`OpenSent` -> `open_sent`), with a
    // cause in parentheses for `NoCopy(Lost)`.
    let debug = format!("{status:?}");
    let mut text = String::with_capacity(debug.len() + 4);
    let mut previous = None;
    for character in debug.chars() {
        match character {
            '(' => text.push(':'),
            ')' => {}
            upper if upper.is_ascii_uppercase() => {
                if previous.is_some_and(|before| before != '(') {
                    text.push('_');
                }
                text.push(upper.to_ascii_lowercase());
            }
            other => text.push(other),
        }
        previous = Some(character);
    }
    text
}

impl Engine {
    /// Every position of every master `slave` follows that is open, or
    /// closed with the copy not yet settled, with the slave's copy of it;
    /// by master, then position id. Empty for an unknown slave.
    pub fn follower_positions(&self, slave: u64) -> Vec<FollowerPosition> {
        let Some(book) = self.slaves.get(&slave) else {
            return Vec::new();
        };
        let mut view = Vec::new();
        for follow in &book.follows {
            let Some(master) = self.masters.get(&follow.master) else {
                continue;
            };
            for (pos, position) in &master.positions {
                let Some(copy) = position.copies.get(follow.slot) else {
                    continue;
                };
                let held = copy.held_units();
                if position.closed && held == 0 && copy.in_flight == 0 && !copy.status.is_active() {
                    continue;
                }
                let master_open = !position.closed && position.remaining_units > 0;
                view.push(FollowerPosition {
                    master: follow.master,
                    pos: *pos,
                    symbol: position.symbol.clone(),
                    side: position.side.as_str(),
                    master_lots: units_to_lots(position.remaining_units),
                    master_closed: position.closed,
                    copy_status: status_text(copy.status),
                    copy_symbol: copy.symbol.clone(),
                    copy_lots: units_to_lots(held),
                    in_flight: copy.in_flight,
                    matches_master: master_open == (held > 0),
                });
            }
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ledger::NoCopyCause;

    #[test]
    fn statuses_read_as_snake_case_with_their_cause() {
        // Shows the status words the admin API prints.
        assert_eq!(status_text(CopyStatus::OpenSent), "open_sent");
        assert_eq!(status_text(CopyStatus::Open), "open");
        assert_eq!(status_text(CopyStatus::NoCopy(NoCopyCause::Lost)), "no_copy:lost");
    }
}
