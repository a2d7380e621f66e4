//! The bridge with `[persist]` against a real Postgres (a throwaway cluster
//! per test): what the journal holds is what the tables hold, once, after a
//! kill -9 mid-stream; Postgres away keeps the journal until it is nearly
//! full, then the released range is recorded as a gap and routing never
//! stopped; a bad database_url stops the start without showing it.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{expect_copy, http_get, metric, open_event_text, Bridge, Client, SLAVE_KEY, SLAVE_LOGIN, STATE_TEXT};
use tradebridge_core::journal::reader::{JournalReader, OwnedRecord, ReadOutcome};
use tradebridge_core::protocol::{Ack, Copy, Message};
use tradebridge_core::record::journal_kind;
use tradebridge_persist::testing::TestCluster;

/// The `[persist]` table for `url`, fast batches and retries for a test.
fn persist_table(url: &str) -> String {
    format!(
        "\n[persist]\ndatabase_url = \"{url}\"\nmigrate_on_start = true\nbatch_rows_max = 500\nbatch_interval_ms = 20\nretry_backoff_ms_min = 50\nretry_backoff_ms_max = 500\n"
    )
}

/// A bridge on `cluster`'s database `bridge`; slave 2 never copies EURUSD
/// (every event gives it a skip).
fn start(overrides: &[(&str, &str)], cluster: &TestCluster) -> (Bridge, String) {
    let mut all = vec![("metrics_listen", "\"127.0.0.1:0\""), ("rate_limit_per_second", "100000"), ("rate_limit_burst", "100000"), ("hb_ms", "20000")];
    all.extend_from_slice(overrides);
    // The [persist] table follows the last [[follow]] of the test accounts.
    let slave2_follow = format!("symbols_deny = [\"EURUSD\"]\n{}", persist_table(&cluster.url("bridge")));
    let mut bridge = Bridge::start_with_follow_extra(&all, &slave2_follow);
    let metrics = bridge.read_metrics_address();
    (bridge, metrics)
}

/// Waits until the persister has read everything durable and committed it:
/// no lag, and the persisted seq steady over two looks.
fn wait_caught_up(metrics: &str, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut last = 0.0;
    loop {
        let text = http_get(metrics, "/metrics");
        let persisted = metric(&text, "tradebridge_persist_persisted_journal_seq");
        if metric(&text, "tradebridge_persist_lag_records") == 0.0 && persisted == last && persisted > 0.0 {
            return persisted as u64;
        }
        last = persisted;
        assert!(Instant::now() < deadline, "the persister did not catch up within {timeout:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn result_text(copy: &Copy) -> String {
    format!(
        r#"{{"t":"result","seq":{},"status":"filled","ticket":{},"price":1.08125,"volume":{},"error":0,"msg":"","exec_ms":3}}"#,
        copy.seq, copy.pos, copy.volume
    )
}

/// Every record of the journal in `directory`, from its first.
fn journal_records(directory: &Path) -> Vec<OwnedRecord> {
    let mut reader = JournalReader::new(directory, 1);
    let mut records = Vec::new();
    loop {
        match reader.read(u64::MAX, 10_000, &mut records).expect("read the journal") {
            ReadOutcome::Records(_) => {}
            ReadOutcome::Nothing => return records,
            ReadOutcome::Gap { .. } => {}
        }
    }
}

fn count_by_kind(records: &[OwnedRecord]) -> BTreeMap<u16, u64> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry(record.kind).or_insert(0) += 1;
    }
    counts
}

fn sql(cluster: &TestCluster, query: &str) -> String {
    cluster.psql("bridge", query).expect("psql")
}

#[test]
fn kill_9_mid_stream_then_restart_leaves_every_journaled_record_in_postgres_once() {
    // Shows that with the bridge killed (SIGKILL) while events, copies and results stream and a batch is being written, the restarted bridge's persister writes the rest: each table holds exactly as many rows as the journal holds records of its kind, master events are 1..N without a hole, no row was refused as a duplicate, and the sessions of the killed process are ended by the restart.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let (bridge, metrics) = start(&[("journal_sync", "\"group\"")], &cluster);
    let journal = bridge.journal_directory();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 0);
    slave.send(STATE_TEXT);
    slave.expect_alive();
    let (mut master, _) = bridge.login("master", 0);
    let mut results_sent = 0;
    for seq in 1..=600 {
        master.send(&open_event_text(seq, seq));
    }
    for seq in 1..=600 {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    let mut last_copy = 0;
    for _ in 1..=600 {
        let copy = expect_copy(&mut slave);
        last_copy = copy.seq;
        slave.send(&result_text(&copy));
        results_sent += 1;
    }
    // Some of it is in Postgres already: the kill lands mid-stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&http_get(&metrics, "/metrics"), "tradebridge_persist_persisted_journal_seq") == 0.0 {
        assert!(Instant::now() < deadline, "nothing persisted");
        std::thread::sleep(Duration::from_millis(20));
    }
    for seq in 601..=1_400 {
        master.send(&open_event_text(seq, seq));
    }
    for seq in 601..=700 {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    // The clients stay open until the kill, so the bridge sees no end of their sessions.
    let mut bridge = bridge.restart();
    drop((master, slave));
    let metrics = bridge.read_metrics_address();
    let (mut master, welcome) = bridge.login("master", 0);
    let Message::Welcome(welcome) = welcome else { panic!("expected welcome, got {welcome:?}") };
    assert!(welcome.ack_seq >= 700, "ack_seq {}", welcome.ack_seq);
    for seq in welcome.ack_seq + 1..=1_500 {
        master.send(&open_event_text(seq, seq));
    }
    for seq in welcome.ack_seq + 1..=1_500 {
        assert_eq!(master.recv(), Message::Ack(Ack { seq }));
    }
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", last_copy);
    for expected in last_copy + 1..=1_500 {
        let copy = expect_copy(&mut slave);
        assert_eq!(copy.seq, expected);
        slave.send(&result_text(&copy));
        results_sent += 1;
    }
    slave.expect_alive();
    let persisted = wait_caught_up(&metrics, Duration::from_secs(60));
    // Open through the shutdown, so the bridge ends both sessions itself (1001).
    bridge.terminate();
    assert_eq!(bridge.wait_exit(Duration::from_secs(15)), Some(0));
    drop((master, slave));

    let records = journal_records(&journal);
    let counts = count_by_kind(&records);
    let last_seq = records.last().expect("a journal").seq;
    assert!(persisted <= last_seq);
    assert_eq!(sql(&cluster, "SELECT journal_seq FROM persist_progress"), format!("{last_seq}\n"), "the shutdown wrote the sessions' ends too");
    assert_eq!(sql(&cluster, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM master_events"), "1500|1500|1|1500\n");
    assert_eq!(counts[&journal_kind::MASTER_EVENT], 1_500);
    let copies = counts[&journal_kind::COPY];
    assert_eq!(sql(&cluster, "SELECT count(*) FROM copies"), format!("{copies}\n"));
    assert_eq!(sql(&cluster, "SELECT count(DISTINCT seq) FROM copies WHERE slave_login = 200001"), "1500\n");
    let results = counts[&journal_kind::RESULT];
    assert!(results <= results_sent, "{results} results journaled of {results_sent} sent");
    assert_eq!(sql(&cluster, "SELECT count(*) FROM copy_results"), format!("{results}\n"));
    // Slave 2 denies EURUSD: each event is a skip for it, with the reason and the event's seq.
    assert_eq!(sql(&cluster, "SELECT count(*), count(DISTINCT master_seq) FROM skips WHERE slave_login = 200002 AND reason = 'symbol_not_allowed'"), "1500|1500\n");
    assert_eq!(sql(&cluster, "SELECT count(*) FROM skips"), format!("{}\n", counts[&journal_kind::SKIPS]));
    assert_eq!(sql(&cluster, "SELECT count(*) FROM dead_letters"), "0\n");
    // Every copy of slave 1 names its master event, and its result's latency is there.
    assert_eq!(sql(&cluster, "SELECT count(*) FROM copy_outcomes WHERE slave_login = 200001 AND master_seq = seq AND end_to_end_ms IS NOT NULL"), format!("{results}\n"));
    // Sessions: four in two processes, the first two ended by the restart, the last two by the shutdown (1001).
    let sessions = sql(&cluster, "SELECT role, coalesce(close_code::text, '-'), close_reason FROM sessions ORDER BY connected_at");
    let lines: Vec<&str> = sessions.lines().collect();
    assert_eq!(lines.len(), 4, "{sessions}");
    assert!(lines[..2].iter().all(|line| line.ends_with(&format!("|-|{}", tradebridge_persist::rows::ENDED_BY_RESTART))), "{sessions}");
    assert!(lines[2..].iter().all(|line| line.contains("|1001|")), "{sessions}");
    assert_eq!(sql(&cluster, "SELECT count(*) FROM sessions WHERE remote_address LIKE '127.0.0.1:%'"), "4\n");
}

#[test]
fn postgres_away_keeps_the_journal_until_it_nears_its_bound_then_the_gap_is_recorded() {
    // Shows that with Postgres stopped the bridge keeps acking and copying, checkpoints stop releasing segments the persister has not written (the journal grows past where it would be released), and near journal_bytes_max it releases them anyway, says so, and after Postgres returns the persister records that range in persist_gaps, counts it, and writes everything after it.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let (bridge, metrics) = start(
        &[
            ("journal_sync", "\"group\""),
            ("journal_segment_bytes", "1048576"),
            ("journal_bytes_max", "6291456"),
            ("checkpoint_journal_bytes", "2097152"),
        ],
        &cluster,
    );
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 0);
    slave.send(STATE_TEXT);
    slave.expect_alive();
    let (mut master, _) = bridge.login("master", 0);
    let mut seq = 0;
    let stream = |master: &mut Client, slave: &mut Client, seq: &mut u64, count: u64| {
        for _ in 0..count / 100 {
            let base = *seq;
            for next in base + 1..=base + 100 {
                master.send(&open_event_text(next, next));
            }
            for next in base + 1..=base + 100 {
                assert_eq!(master.recv(), Message::Ack(Ack { seq: next }), "the bridge keeps acking");
            }
            for next in base + 1..=base + 100 {
                let copy = expect_copy(slave);
                assert_eq!(copy.seq, next, "and copying");
                slave.send(&result_text(&copy));
            }
            *seq += 100;
        }
    };
    stream(&mut master, &mut slave, &mut seq, 500);
    let persisted_before_outage = wait_caught_up(&metrics, Duration::from_secs(30));
    cluster.stop().unwrap();
    // Past 2 MiB a checkpoint is taken, but the segments the persister has
    // not written stay: the journal grows to 3 MiB (without a persister it
    // would drop back to the segment being written).
    let mut held = false;
    while !held {
        stream(&mut master, &mut slave, &mut seq, 500);
        let text = http_get(&metrics, "/metrics");
        held = metric(&text, "tradebridge_checkpoints_written_total") >= 1.0 && metric(&text, "tradebridge_journal_bytes") >= 3.0 * 1_048_576.0;
        assert!(seq < 100_000, "the journal never held more than a checkpoint allows:\n{text}");
    }
    let text = http_get(&metrics, "/metrics");
    assert_eq!(metric(&text, "tradebridge_persist_connected"), 0.0);
    assert!(metric(&text, "tradebridge_persist_lag_records") > 1_000.0, "{text}");
    assert!(metric(&text, "tradebridge_persist_failures_total") >= 1.0, "{text}");
    assert_eq!(metric(&text, "tradebridge_persist_journal_overruns_total"), 0.0, "{text}");
    // On to the bound: the journal lets the unwritten records go, and says so at once.
    let mut released = false;
    while !released {
        stream(&mut master, &mut slave, &mut seq, 500);
        let text = http_get(&metrics, "/metrics");
        released = metric(&text, "tradebridge_persist_journal_overruns_total") >= 1.0;
        assert!(metric(&text, "tradebridge_journal_bytes") <= 6.0 * 1_048_576.0, "{text}");
        assert!(seq < 200_000, "the journal was never released:\n{text}");
    }
    cluster.restart().unwrap();
    stream(&mut master, &mut slave, &mut seq, 200);
    wait_caught_up(&metrics, Duration::from_secs(60));
    let text = http_get(&metrics, "/metrics");
    let gap_records = metric(&text, "tradebridge_persist_gap_records_total") as u64;
    assert!(gap_records > 0, "{text}");
    let gaps = sql(&cluster, "SELECT from_journal_seq || '-' || to_journal_seq FROM persist_gaps");
    let (from, to) = gaps.trim().split_once('-').map(|(from, to)| (from.parse::<u64>().unwrap(), to.parse::<u64>().unwrap())).expect(&gaps);
    assert_eq!(to - from, gap_records, "the metric counts the recorded range: {gaps}");
    // The gap starts where the persister stood when the journal let go, which
    // is past what it wrote before the outage.
    assert!(from > persisted_before_outage, "gap {gaps}, persisted before the outage {persisted_before_outage}");
    // Around the gap nothing is missing: before it the master events run
    // from 1 without a hole, after it they run without a hole to the last.
    assert_eq!(
        sql(&cluster, &format!("SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM master_events WHERE journal_seq < {from}")),
        "t\n"
    );
    assert_eq!(
        sql(&cluster, &format!("SELECT count(*) = max(seq) - min(seq) + 1 AND count(DISTINCT seq) = count(*) FROM master_events WHERE journal_seq >= {to}")),
        "t\n"
    );
    let journaled_before_gap: u64 = sql(&cluster, &format!("SELECT count(*) FROM master_events WHERE journal_seq < {from}")).trim().parse().unwrap();
    let after_gap: u64 = sql(&cluster, &format!("SELECT count(*) FROM master_events WHERE journal_seq >= {to}")).trim().parse().unwrap();
    let max_seq: u64 = sql(&cluster, "SELECT max(seq) FROM master_events").trim().parse().unwrap();
    assert_eq!(max_seq, seq);
    assert!(journaled_before_gap >= 500 && after_gap >= 200, "{journaled_before_gap} before, {after_gap} after the gap");
    assert_eq!(sql(&cluster, "SELECT count(*) FROM master_events"), format!("{}\n", journaled_before_gap + after_gap));
    assert_eq!(sql(&cluster, "SELECT count(*) FROM dead_letters"), "0\n");
}

#[test]
fn a_database_url_that_does_not_parse_stops_the_start_and_is_not_shown() {
    // Shows that a [persist] database_url that is not a connection string ends the start with exit 1 and an error naming the key, without printing the value (it may hold a password).
    let directory = support::temp_directory("bad-url");
    let config = directory.join("tradebridge.toml");
    let secret = "postgres://tb:hunter2@[::1:5432/x";
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n{}\n[persist]\ndatabase_url = \"{secret}\"\n",
            directory.join("journal").display(),
            support::ACCOUNTS.replace("{slave2_follow_extra}", "")
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tradebridge")).args(["serve", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("database_url"), "{stderr}");
    assert!(!stderr.contains("hunter2") && !String::from_utf8_lossy(&output.stdout).contains("hunter2"), "{stderr}");
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn metrics_with_a_persister_pass_promtool() {
    // Shows that /metrics of a bridge with [persist], the persister's gauges and counters included, passes `promtool check metrics` (Prometheus naming and format) without a lint problem.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let (_bridge, metrics) = start(&[], &cluster);
    wait_caught_up(&metrics, Duration::from_secs(30));
    let response = http_get(&metrics, "/metrics");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body).expect("an HTTP response");
    for name in ["tradebridge_persist_lag_records", "tradebridge_persist_lag_seconds", "tradebridge_persist_journal_overruns_total", "tradebridge_persist_connected 1"] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    use std::io::Write as _;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (./test.sh installs prometheus)");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let output = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "promtool: {said}\n{body}");
}
