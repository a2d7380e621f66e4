//! The zero-lost-rows check: what Postgres holds after the catch-up,
//! against what the harness itself counted and what the bridge says it
//! journaled.
//!
//! # Layout
//! - [`COUNT_SQL`] and [`RowCounts`]: one `psql` query, one line of counts.
//! - [`Expected`]: the harness's and the bridge's counts to compare with.
//! - [`compare`]: one [`Comparison`] per checked figure; a failing one says
//!   which table, how many rows, how many were expected and from where.
//!
//! # Invariants
//! - Every table the load fills is compared with a count the harness made
//!   on its own side of the wire (acks received, copy seqs received,
//!   results written), and where the bridge exposes one, with the bridge's
//!   journal counter too: a row lost between journal and Postgres and a row
//!   never journaled both show.
//! - Duplicates are counted against the primary key's columns, dead letters
//!   and gaps must be absent, and no result or copy may lack the row it
//!   refers to.

use serde::Serialize;
use serde_json::{json, Value};

/// Every count in one statement, `|`-separated in [`RowCounts::FIELDS`] order.
pub const COUNT_SQL: &str = "SELECT \
    (SELECT count(*) FROM master_events), \
    (SELECT count(DISTINCT (master_login, seq)) FROM master_events), \
    (SELECT count(*) FROM copies), \
    (SELECT count(DISTINCT (slave_login, seq)) FROM copies), \
    (SELECT count(*) FROM copy_results), \
    (SELECT count(DISTINCT (slave_login, seq)) FROM copy_results), \
    (SELECT count(*) FROM skips), \
    (SELECT count(*) FROM sessions), \
    (SELECT count(*) FROM slave_symbols), \
    (SELECT count(*) FROM dead_letters), \
    (SELECT count(*) FROM persist_gaps), \
    (SELECT count(*) FROM copy_results r WHERE NOT EXISTS (SELECT 1 FROM copies c WHERE c.slave_login = r.slave_login AND c.seq = r.seq)), \
    (SELECT count(*) FROM copies c WHERE c.master_seq IS NOT NULL AND NOT EXISTS \
        (SELECT 1 FROM master_events e WHERE e.master_login = c.master_login AND e.seq = c.master_seq)), \
    (SELECT journal_seq FROM persist_progress WHERE id = 1)";

/// What the tables hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RowCounts {
    pub master_events: u64,
    pub master_events_distinct: u64,
    pub copies: u64,
    pub copies_distinct: u64,
    pub copy_results: u64,
    pub copy_results_distinct: u64,
    pub skips: u64,
    pub sessions: u64,
    pub slave_symbols: u64,
    pub dead_letters: u64,
    pub persist_gaps: u64,
    /// Results whose copy is not in `copies`.
    pub results_without_copy: u64,
    /// Copies naming a master event that is not in `master_events`.
    pub copies_without_event: u64,
    /// `persist_progress.journal_seq`.
    pub progress_journal_seq: u64,
}

impl RowCounts {
    /// Number of fields [`COUNT_SQL`] returns.
    pub const FIELDS: usize = 14;

    /// Parses psql's unaligned, tuples-only answer to [`COUNT_SQL`].
    pub fn parse(text: &str) -> Result<RowCounts, String> {
        let line = text.lines().map(str::trim).find(|line| !line.is_empty()).ok_or_else(|| "psql printed nothing for the row counts".to_string())?;
        let numbers = line.split('|').map(|field| field.trim().parse::<u64>()).collect::<Result<Vec<u64>, _>>().map_err(|error| format!("row counts {line:?}: {error}"))?;
        let [master_events, master_events_distinct, copies, copies_distinct, copy_results, copy_results_distinct, skips, sessions, slave_symbols, dead_letters, persist_gaps, results_without_copy, copies_without_event, progress_journal_seq] =
            numbers[..]
        else {
            return Err(format!("row counts {line:?}: expected {} numbers separated by |, got {}", RowCounts::FIELDS, numbers.len()));
        };
        Ok(RowCounts {
            master_events,
            master_events_distinct,
            copies,
            copies_distinct,
            copy_results,
            copy_results_distinct,
            skips,
            sessions,
            slave_symbols,
            dead_letters,
            persist_gaps,
            results_without_copy,
            copies_without_event,
            progress_journal_seq,
        })
    }
}

/// The counts the tables must match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Expected {
    /// Distinct master events the bridge acked (the harness's acks; each
    /// event once, whether acked by `ack` or by a `welcome`'s `ack_seq`).
    pub events_acked: u64,
    /// `tradebridge_events_journaled_total` after the catch-up.
    pub events_journaled: Option<u64>,
    /// Distinct (slave, seq) copies the harness's Executors received.
    pub copy_seqs_received: u64,
    /// `tradebridge_copies_journaled_total` after the catch-up.
    pub copies_journaled: Option<u64>,
    /// Distinct (slave, seq) results the Executors wrote and flushed.
    pub results_written: u64,
    /// Churn drops TCP connections on purpose: a result still in the
    /// kernel's send buffer when the harness closes a socket with unread
    /// copies in it is discarded with the RST, and never reaches the
    /// bridge. Then `copy_results` may hold fewer rows than were written
    /// (never more); otherwise it must hold exactly as many.
    pub results_may_be_fewer: bool,
    /// `persisted_journal_seq` of the last sample.
    pub persisted_journal_seq: Option<u64>,
}

/// One checked figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// What is compared, e.g. `master_events rows`.
    pub figure: String,
    pub actual: u64,
    pub expected: u64,
    /// Where `expected` comes from.
    pub expected_from: String,
    /// The rule: `=` or `<=` (actual at most expected).
    pub rule: &'static str,
    pub ok: bool,
}

impl Comparison {
    fn equal(figure: &str, actual: u64, expected: u64, expected_from: &str) -> Comparison {
        Comparison { figure: figure.into(), actual, expected, expected_from: expected_from.into(), rule: "=", ok: actual == expected }
    }

    fn at_most(figure: &str, actual: u64, expected: u64, expected_from: &str) -> Comparison {
        Comparison { figure: figure.into(), actual, expected, expected_from: expected_from.into(), rule: "<=", ok: actual <= expected }
    }

    /// The failure sentence, naming the numbers.
    pub fn failure(&self) -> String {
        let wanted = if self.rule == "=" { "expected" } else { "expected at most" };
        format!("persist: {} is {}, {wanted} {} ({})", self.figure, self.actual, self.expected, self.expected_from)
    }
}

/// Every comparison of `counts` with `expected`.
pub fn compare(counts: &RowCounts, expected: &Expected) -> Vec<Comparison> {
    let mut checks = vec![
        Comparison::equal("master_events rows", counts.master_events, expected.events_acked, "distinct master events the bridge acked to the harness's Monitors"),
        Comparison::equal("master_events distinct (master_login, seq)", counts.master_events_distinct, counts.master_events, "master_events rows: no duplicate"),
        Comparison::equal("copies rows", counts.copies, expected.copy_seqs_received, "distinct (slave, seq) copies the harness's Executors received"),
        Comparison::equal("copies distinct (slave_login, seq)", counts.copies_distinct, counts.copies, "copies rows: no duplicate"),
        Comparison::equal("copy_results distinct (slave_login, seq)", counts.copy_results_distinct, counts.copy_results, "copy_results rows: no duplicate"),
        Comparison::equal("dead_letters rows", counts.dead_letters, 0, "rows Postgres refused: none"),
        Comparison::equal("persist_gaps rows", counts.persist_gaps, 0, "journal ranges released before they were persisted: none"),
        Comparison::equal("copy_results without their copy", counts.results_without_copy, 0, "every result's (slave_login, seq) is in copies"),
        Comparison::equal("copies without their master event", counts.copies_without_event, 0, "every copy's (master_login, master_seq) is in master_events"),
    ];
    if let Some(journaled) = expected.events_journaled {
        checks.push(Comparison::equal("master_events rows", counts.master_events, journaled, "tradebridge_events_journaled_total"));
    }
    if let Some(journaled) = expected.copies_journaled {
        checks.push(Comparison::equal("copies rows", counts.copies, journaled, "tradebridge_copies_journaled_total"));
    }
    if expected.results_may_be_fewer {
        checks.push(Comparison::at_most(
            "copy_results rows",
            counts.copy_results,
            expected.results_written,
            "distinct results the harness's Executors wrote; churn's TCP drops may discard some before the bridge reads them",
        ));
    } else {
        checks.push(Comparison::equal("copy_results rows", counts.copy_results, expected.results_written, "distinct results the harness's Executors wrote and flushed"));
    }
    if let Some(persisted) = expected.persisted_journal_seq {
        checks.push(Comparison::equal("persist_progress.journal_seq", counts.progress_journal_seq, persisted, "tradebridge_persist_persisted_journal_seq"));
    }
    checks
}

/// Rows expected but missing, over the tables compared with the harness
/// (0 when every row is there; results only where they must be exact).
pub fn lost_rows(counts: &RowCounts, expected: &Expected) -> u64 {
    let missing = |actual: u64, wanted: u64| wanted.saturating_sub(actual);
    let results = if expected.results_may_be_fewer { 0 } else { missing(counts.copy_results, expected.results_written) };
    missing(counts.master_events, expected.events_acked) + missing(counts.copies, expected.copy_seqs_received) + results
}

/// The comparisons and counts as JSON for `summary.json`.
pub fn comparison_json(counts: &RowCounts, expected: &Expected, comparisons: &[Comparison]) -> Value {
    json!({
        "row_counts": counts,
        "expected": expected,
        "checks": comparisons,
        "lost_rows": lost_rows(counts, expected),
        "results_not_in_postgres": expected.results_written.saturating_sub(counts.copy_results),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact() -> (RowCounts, Expected) {
        let counts = RowCounts {
            master_events: 100,
            master_events_distinct: 100,
            copies: 900,
            copies_distinct: 900,
            copy_results: 900,
            copy_results_distinct: 900,
            skips: 100,
            sessions: 12,
            slave_symbols: 30,
            progress_journal_seq: 2000,
            ..RowCounts::default()
        };
        let expected = Expected {
            events_acked: 100,
            events_journaled: Some(100),
            copy_seqs_received: 900,
            copies_journaled: Some(900),
            results_written: 900,
            results_may_be_fewer: false,
            persisted_journal_seq: Some(2000),
        };
        (counts, expected)
    }

    #[test]
    fn psql_output_parses_and_a_short_line_is_refused() {
        // Shows: the |-separated line fills every field in order; a line with too few numbers names what was expected.
        let counts = RowCounts::parse("\n1|1|2|2|3|3|4|5|6|0|0|0|0|77\n").expect("parses");
        assert_eq!((counts.master_events, counts.copies, counts.copy_results, counts.skips, counts.progress_journal_seq), (1, 2, 3, 4, 77));
        let error = RowCounts::parse("1|2|3").expect_err("short");
        assert!(error.contains("expected 14 numbers") && error.contains("got 3"), "{error}");
        assert!(RowCounts::parse("").expect_err("empty").contains("nothing"));
        assert!(RowCounts::parse("1|x|3").expect_err("not a number").contains("row counts"));
    }

    #[test]
    fn exact_counts_pass_every_check() {
        // Shows: when every table holds what the harness and the bridge counted, every comparison holds and no row is lost.
        let (counts, expected) = exact();
        let checks = compare(&counts, &expected);
        assert!(checks.iter().all(|check| check.ok), "{checks:?}");
        assert_eq!(lost_rows(&counts, &expected), 0);
    }

    #[test]
    fn a_missing_row_fails_with_the_numbers_named() {
        // Shows: one master event short fails twice (against the acks and the journal counter), each sentence naming table, rows, expectation and source.
        let (mut counts, expected) = exact();
        counts.master_events = 99;
        counts.master_events_distinct = 99;
        let failures: Vec<String> = compare(&counts, &expected).iter().filter(|check| !check.ok).map(Comparison::failure).collect();
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert_eq!(failures[0], "persist: master_events rows is 99, expected 100 (distinct master events the bridge acked to the harness's Monitors)");
        assert!(failures[1].contains("tradebridge_events_journaled_total"), "{failures:?}");
        assert_eq!(lost_rows(&counts, &expected), 1);
    }

    #[test]
    fn duplicates_dead_letters_gaps_and_orphans_fail() {
        // Shows: a duplicated copy, a dead letter, a gap and a result without its copy each fail by name.
        let (mut counts, expected) = exact();
        counts.copies_distinct = 899;
        counts.dead_letters = 1;
        counts.persist_gaps = 2;
        counts.results_without_copy = 3;
        let failed: Vec<String> = compare(&counts, &expected).into_iter().filter(|check| !check.ok).map(|check| check.figure).collect();
        assert_eq!(failed, ["copies distinct (slave_login, seq)", "dead_letters rows", "persist_gaps rows", "copy_results without their copy"]);
    }

    #[test]
    fn churn_allows_fewer_results_but_never_more() {
        // Shows: under churn, results the bridge never read may be missing (not counted as lost rows), but more rows than were written fail.
        let (mut counts, mut expected) = exact();
        expected.results_may_be_fewer = true;
        counts.copy_results = 897;
        counts.copy_results_distinct = 897;
        assert!(compare(&counts, &expected).iter().all(|check| check.ok));
        assert_eq!(lost_rows(&counts, &expected), 0);
        counts.copy_results = 901;
        counts.copy_results_distinct = 901;
        let failed: Vec<Comparison> = compare(&counts, &expected).into_iter().filter(|check| !check.ok).collect();
        assert_eq!(failed.len(), 1);
        assert!(failed[0].failure().contains("is 901, expected at most 900"), "{}", failed[0].failure());
    }
}
