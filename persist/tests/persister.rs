//! The persister against a real Postgres (a throwaway cluster per test) and
//! a real journal written here with the bridge's own record encoders: rows
//! match the journal field by field, refused rows become dead letters,
//! Postgres going away loses and doubles nothing, and records the journal
//! released unread are recorded as a gap.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tradebridge_core::config::PersistConfig;
use tradebridge_core::engine::SkipReason;
use tradebridge_core::journal::{Journal, JournalOptions, SyncPolicy};
use tradebridge_core::protocol::{Copy, CopyAction, Event, EventKind, ResultStatus, Role, Side, TradeResult};
use tradebridge_core::record::{
    encode_session, encode_skips, journal_kind, CopyMeta, CopyRecord, MasterEventMeta, MasterEventRecord, RecordEncoder, ResultMeta, ResultRecord,
    SessionEntry, SessionEvent, SkipEntry,
};
use tradebridge_persist::db::{Target, UrlSource};
use tradebridge_persist::feed::PersistFeed;
use tradebridge_persist::persister::{self, Persister};
use tradebridge_persist::testing::TestCluster;

/// A bridge receive time: 2026-11-24 01:20:00.200 UTC.
const RECEIVED_MS: u64 = 1_795_483_200_200;

fn config(url: &str) -> PersistConfig {
    PersistConfig {
        database_url: Some(url.to_string()),
        migrate_on_start: true,
        batch_rows_max: 64,
        batch_interval_ms: 20,
        retry_backoff_ms_min: 50,
        retry_backoff_ms_max: 400,
        connect_timeout_ms: 2_000,
        config_source: tradebridge_core::config::ConfigSource::File,
        config_reread_ms: 30_000,
    }
}

fn journal_options(segment_bytes: u64) -> JournalOptions {
    JournalOptions { segment_bytes, record_bytes_max: 16 * 1024, sync: SyncPolicy::Os, spare_segment: false, ..JournalOptions::default() }
}

struct Fixture {
    cluster: TestCluster,
    directory: std::path::PathBuf,
    feed: Arc<PersistFeed>,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let cluster = TestCluster::start(false).expect("a test cluster");
        cluster.create_database("bridge").unwrap();
        let directory = std::env::temp_dir().join(format!("tradebridge-persister-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        Fixture { cluster, directory, feed: Arc::new(PersistFeed::default()) }
    }

    fn start(&self, batch_rows_max: u32) -> Persister {
        let config = PersistConfig { batch_rows_max, ..config(&self.cluster.url("bridge")) };
        let target = Target::parse(&self.cluster.url("bridge"), UrlSource::File, 2_000).unwrap();
        persister::start(config, target, self.directory.clone(), Arc::clone(&self.feed)).expect("start the persister")
    }

    fn sql(&self, query: &str) -> String {
        self.cluster.psql("bridge", query).expect("psql")
    }

    /// Waits until the persister has committed `seq`.
    fn wait_persisted(&self, seq: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.feed.persisted() < seq {
            assert!(Instant::now() < deadline, "persisted {} of {seq} after {timeout:?}", self.feed.persisted());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn event(seq: u64, comment: &str) -> Event {
    Event {
        seq,
        kind: EventKind::Open,
        pos: 9_001 + seq,
        ticket: u64::MAX - seq,
        symbol: "EURUSD".into(),
        side: Some(Side::Sell),
        volume: 0.25,
        price: 1.08123,
        sl: 1.09,
        tp: 0.0,
        magic: 77,
        comment: comment.into(),
        time_ms: RECEIVED_MS - 40,
        remaining: None,
    }
}

/// A journal being written, with the encoder the router uses.
struct Writer {
    journal: Journal,
    encoder: RecordEncoder,
}

impl Writer {
    fn open(directory: &Path, segment_bytes: u64) -> Writer {
        let (journal, _) = Journal::open(directory, journal_options(segment_bytes)).expect("open the journal");
        Writer { journal, encoder: RecordEncoder::new(16 * 1024) }
    }

    fn master_event(&mut self, login: u64, event: Event, received_ms: u64, received_ns: u64) -> u64 {
        let meta = MasterEventMeta { master_login: login, received_ms, received_ns, shard_id: 0, connection_id: 1 };
        let record = MasterEventRecord::from_event(event, meta);
        let bytes = self.encoder.encode(&record).unwrap().bytes.to_vec();
        self.journal.append(journal_kind::MASTER_EVENT, &bytes, 0).unwrap()
    }

    fn copy(&mut self, slave: u64, copy: Copy, event_received_ns: u64, routed_ns: u64) -> u64 {
        let record = CopyRecord::from_copy(copy, CopyMeta { slave_login: slave, event_received_ns, routed_ns, connection_id: None });
        let bytes = self.encoder.encode(&record).unwrap().bytes.to_vec();
        self.journal.append(journal_kind::COPY, &bytes, 0).unwrap()
    }

    fn result(&mut self, slave: u64, result: TradeResult, received_ms: u64) -> u64 {
        let record = ResultRecord::from_result(result, ResultMeta { slave_login: slave, received_ns: 5, received_ms });
        let bytes = self.encoder.encode(&record).unwrap().bytes.to_vec();
        self.journal.append(journal_kind::RESULT, &bytes, 0).unwrap()
    }

    fn update(&mut self, login: u64, received_ms: u64, json: &str) -> u64 {
        let mut payload = Vec::new();
        payload.extend_from_slice(&received_ms.to_le_bytes());
        payload.extend_from_slice(&login.to_le_bytes());
        payload.extend_from_slice(&3u64.to_le_bytes());
        payload.extend_from_slice(json.as_bytes());
        self.journal.append(journal_kind::UPDATE, &payload, 0).unwrap()
    }

    fn raw(&mut self, kind: u16, payload: &[u8]) -> u64 {
        self.journal.append(kind, payload, 0).unwrap()
    }

    fn durable(&mut self, feed: &PersistFeed) -> u64 {
        self.journal.flush().unwrap();
        let seq = self.journal.durable_seq();
        feed.publish_durable(seq);
        seq
    }
}

fn copy_of(seq: u64, master_pos: u64) -> Copy {
    Copy {
        seq,
        id: format!("200001-{seq}"),
        master: u64::MAX,
        pos: master_pos,
        action: CopyAction::Open,
        symbol: "EURUSD.m".into(),
        side: Side::Sell,
        volume: 0.5,
        price: 1.08123,
        max_dev: 0.0003,
        sl: 1.09,
        tp: 0.0,
        magic: 0,
        comment: "tb:9002".into(),
        expires_ms: RECEIVED_MS + 5_000,
    }
}

const STATE: &str = r#"{"t":"state","balance":10000.0,"equity":10000.0,"currency":"USD","positions":[],"symbols":[{"name":"EURUSD.m","min":0.01,"max":50.0,"step":0.01,"digits":5,"contract":100000.0},{"name":"XAUUSD","min":0.1,"max":10.0,"step":0.1,"digits":2,"contract":100.0}]}"#;

fn session(event: SessionEvent, login: u64, id: &str, time_ms: u64, close_code: u16, reason: &str) -> Vec<u8> {
    let entry = SessionEntry {
        event,
        role: Role::Slave,
        login,
        time_ms,
        close_code,
        session_id: id.into(),
        remote_address: if event == SessionEvent::Open { "127.0.0.1:50123".into() } else { String::new() },
        close_reason: reason.into(),
    };
    let mut bytes = Vec::new();
    encode_session(&entry, &mut bytes);
    bytes
}

#[test]
fn every_record_kind_becomes_its_rows_field_by_field() {
    // Shows that master events, copies (with issue time and master seq), results, skips, symbol reports, session starts and ends, and a bridge restart each land as rows whose every column holds what was journaled, including u64 values above bigint and zero times as NULL, and that persist_progress ends at the last journal seq.
    let fixture = Fixture::new("fields");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let master = u64::MAX;
    let slave = 200_001;
    let received_ns = 1_000_000_000;
    let event_seq = writer.master_event(master, event(1, "first, with 'quotes' and ünïcode"), RECEIVED_MS, received_ns);
    let copy_seq = writer.copy(slave, copy_of(1, 9_002), received_ns, received_ns + 3_600_000);
    let mut skipped = Vec::new();
    // One follower skipped twice in one record, as a reconciliation does per position.
    let skip_entries = [
        SkipEntry { slave: 200_002, master, pos: 9_002, reason: SkipReason::SlaveLacksSymbol.index() },
        SkipEntry { slave: 200_002, master, pos: 9_004, reason: SkipReason::Frozen.index() },
    ];
    encode_skips(&skip_entries, &mut skipped);
    let skips_seq = writer.raw(journal_kind::SKIPS, &skipped);
    let result = TradeResult { seq: 1, status: ResultStatus::Filled, ticket: 55_001, price: 1.08119, volume: 0.5, error: 0, msg: String::new(), exec_ms: 42 };
    let result_seq = writer.result(slave, result, RECEIVED_MS + 90);
    // A copy caused by a result (a follow-up): no master seq, issued at the result's receipt.
    let follow_up_seq = writer.copy(slave, Copy { action: CopyAction::Close, expires_ms: 0, ..copy_of(2, 9_002) }, 0, 0);
    let update_seq = writer.update(slave, RECEIVED_MS + 100, STATE);
    let rebase_seq = writer.raw(journal_kind::SLAVE_SEQ, &[0; 24]);
    // A copy a rebase issued again: no master event behind it, no time known.
    let reissued_seq = writer.copy(slave, Copy { action: CopyAction::Open, ..copy_of(3, 9_002) }, 0, 0);
    let open_seq = writer.raw(journal_kind::SESSION, &session(SessionEvent::Open, slave, "a-0-1", RECEIVED_MS - 1_000, 0, ""));
    writer.raw(journal_kind::SESSION, &session(SessionEvent::Open, slave, "a-0-2", RECEIVED_MS - 500, 0, ""));
    writer.raw(journal_kind::SESSION, &session(SessionEvent::Close, slave, "a-0-1", RECEIVED_MS + 200, 4008, "no frame for 3 x hb_ms"));
    let restart_seq = writer.raw(journal_kind::SESSION, &session(SessionEvent::BridgeStart, 0, "", RECEIVED_MS + 300, 0, ""));
    let last = writer.durable(&fixture.feed);
    let persister = fixture.start(3);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));

    let ms = |column: &str| format!("(extract(epoch FROM {column}) * 1000)::bigint");
    assert_eq!(
        fixture.sql(&format!(
            "SELECT master_login, seq, journal_seq, kind, pos, ticket, symbol, side, volume, price, sl, tp, magic, comment, remaining IS NULL, {}, {} FROM master_events",
            ms("terminal_time"),
            ms("received_at")
        )),
        format!("{master}|1|{event_seq}|open|9002|{}|EURUSD|sell|0.25|1.08123|1.09|0|77|first, with 'quotes' and ünïcode|t|{}|{RECEIVED_MS}\n", u64::MAX - 1, RECEIVED_MS - 40)
    );
    assert_eq!(
        fixture.sql(&format!(
            "SELECT slave_login, seq, journal_seq, copy_id, master_login, master_pos, coalesce(master_seq::text, 'null'), action, symbol, side, volume, price, max_dev, sl, tp, magic, comment, coalesce({}::text, 'null'), coalesce({}::text, 'null') FROM copies ORDER BY seq",
            ms("expires_at"),
            ms("issued_at")
        )),
        format!(
            "{slave}|1|{copy_seq}|200001-1|{master}|9002|1|open|EURUSD.m|sell|0.5|1.08123|0.0003|1.09|0|0|tb:9002|{}|{}\n\
             {slave}|2|{follow_up_seq}|200001-2|{master}|9002|null|close|EURUSD.m|sell|0.5|1.08123|0.0003|1.09|0|0|tb:9002|null|{}\n\
             {slave}|3|{reissued_seq}|200001-3|{master}|9002|null|open|EURUSD.m|sell|0.5|1.08123|0.0003|1.09|0|0|tb:9002|{}|null\n",
            RECEIVED_MS + 5_000,
            RECEIVED_MS + 3,
            RECEIVED_MS + 90,
            RECEIVED_MS + 5_000
        )
    );
    assert_eq!(
        fixture.sql(&format!("SELECT slave_login, seq, journal_seq, status, ticket, price, volume, error, msg, exec_ms, {} FROM copy_results", ms("received_at"))),
        format!("{slave}|1|{result_seq}|filled|55001|1.08119|0.5|0||42|{}\n", RECEIVED_MS + 90)
    );
    assert_eq!(
        fixture.sql(&format!("SELECT journal_seq, entry, slave_login, master_login, master_seq, master_pos, reason, {} FROM skips ORDER BY entry", ms("skipped_at"))),
        format!("{skips_seq}|0|200002|{master}|1|9002|slave_lacks_symbol|{RECEIVED_MS}\n{skips_seq}|1|200002|{master}|1|9004|frozen|{RECEIVED_MS}\n")
    );
    assert_eq!(
        fixture.sql(&format!("SELECT slave_login, name, digits, volume_min, volume_max, volume_step, contract, {} FROM slave_symbols ORDER BY name", ms("updated_at"))),
        format!("{slave}|EURUSD.m|5|0.01|50|0.01|100000|{0}\n{slave}|XAUUSD|2|0.1|10|0.1|100|{0}\n", RECEIVED_MS + 100)
    );
    assert_eq!(
        fixture.sql(&format!(
            "SELECT session_id, login, role, remote_address, {}, {}, coalesce(close_code::text, 'null'), close_reason FROM sessions ORDER BY session_id",
            ms("connected_at"),
            ms("disconnected_at")
        )),
        format!(
            "a-0-1|{slave}|slave|127.0.0.1:50123|{}|{}|4008|no frame for 3 x hb_ms\na-0-2|{slave}|slave|127.0.0.1:50123|{}|{}|null|{}\n",
            RECEIVED_MS - 1_000,
            RECEIVED_MS + 200,
            RECEIVED_MS - 500,
            RECEIVED_MS + 300,
            tradebridge_persist::rows::ENDED_BY_RESTART
        )
    );
    // The outcome view joins the three: a sell filled 4 points below the master's price is 4 points of slippage against the follower; the result came 90 ms after the master event.
    assert_eq!(fixture.sql("SELECT seq, slippage_points, end_to_end_ms::int, bridge_ms::int FROM copy_outcomes ORDER BY seq"), "1|4.0|90|3\n2|||\n3|||\n");
    assert_eq!(fixture.sql("SELECT journal_seq FROM persist_progress"), format!("{last}\n"));
    assert_eq!(fixture.sql("SELECT count(*) FROM dead_letters"), "0\n");
    assert!(update_seq < rebase_seq && rebase_seq < open_seq && open_seq < restart_seq && restart_seq == last);
}

#[test]
fn refused_and_undecodable_records_become_dead_letters_and_the_rest_is_written() {
    // Shows that a row Postgres refuses (a comment holding NUL) and a journal record of an unknown kind each land in dead_letters with the reason, while the rows around them in the same batch are written and the progress moves past all of them.
    let fixture = Fixture::new("dead");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    writer.master_event(100_001, event(1, "fine"), RECEIVED_MS, 7);
    let refused = writer.master_event(100_001, event(2, "nul \u{0} inside"), RECEIVED_MS, 8);
    writer.master_event(100_001, event(3, "fine again"), RECEIVED_MS, 9);
    // A result answered twice, here on the row-by-row path: the first stays, no dead letter.
    let result = TradeResult { seq: 1, status: ResultStatus::Filled, ticket: 1, price: 1.5, volume: 0.1, error: 0, msg: String::new(), exec_ms: 1 };
    writer.result(200_001, result.clone(), RECEIVED_MS);
    writer.result(200_001, TradeResult { price: 9.0, ..result }, RECEIVED_MS + 1);
    let unknown = writer.raw(99, b"from a newer bridge");
    let mut unknown_reason = Vec::new();
    encode_skips(&[SkipEntry { slave: 1, master: 2, pos: 3, reason: 250 }], &mut unknown_reason);
    let unknown_reason = writer.raw(journal_kind::SKIPS, &unknown_reason);
    let last = writer.master_event(100_001, event(4, "after"), RECEIVED_MS, 10);
    writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM master_events"), "1,3,4\n");
    let letters = fixture.sql("SELECT journal_seq || '|' || target_table || '|' || reason || '|' || row_json FROM dead_letters ORDER BY journal_seq");
    let lines: Vec<&str> = letters.lines().collect();
    assert_eq!(lines.len(), 3, "{letters}");
    assert!(lines[2].starts_with(&format!("{unknown_reason}|(undecodable journal record)|skip reason code 250 is unknown")), "{letters}");
    assert!(lines[0].starts_with(&format!("{refused}|master_events|")), "{letters}");
    assert!(lines[0].contains("22021") || lines[0].contains("0x00"), "the reason names what Postgres refused: {letters}");
    assert!(lines[0].contains(r#""comment":"nul \u0000 inside""#), "the row is kept as JSON: {letters}");
    assert!(lines[1].starts_with(&format!("{unknown}|(undecodable journal record)|journal record kind 99 is unknown")), "{letters}");
    assert_eq!(fixture.feed.dead_letters.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(fixture.sql("SELECT price FROM copy_results"), "1.5\n");
    assert_eq!(fixture.feed.duplicate_results.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(fixture.sql("SELECT journal_seq FROM persist_progress"), format!("{last}\n"));
}

#[test]
fn postgres_stopped_and_restarted_mid_stream_gets_every_row_once() {
    // Shows that while records keep being journaled, Postgres stopping (twice, once mid-batch) makes the persister retry and report failures and lag, and that after it returns every master event is in the table exactly once with the progress at the last seq.
    let fixture = Fixture::new("outage");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let persister = fixture.start(50);
    let mut seq = 0;
    let mut append = |writer: &mut Writer, count: u64| {
        for _ in 0..count {
            seq += 1;
            writer.master_event(100_001, event(seq, "stream"), RECEIVED_MS + seq, seq);
        }
        writer.durable(&fixture.feed)
    };
    for _ in 0..20 {
        append(&mut writer, 50);
        std::thread::sleep(Duration::from_millis(5));
    }
    fixture.cluster.stop().unwrap();
    let stopped_at = append(&mut writer, 500);
    std::thread::sleep(Duration::from_millis(600));
    assert!(fixture.feed.persisted() < stopped_at, "nothing can be committed while Postgres is down");
    assert!(fixture.feed.failures.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(!fixture.feed.connected.load(std::sync::atomic::Ordering::Relaxed), "a stopped server is a lost connection, whatever its last answer");
    assert!(fixture.feed.lag_records() > 0, "the lag is visible while Postgres is away");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(fixture.feed.lag_seconds(now_ms) > 0.0, "and its age");
    fixture.cluster.restart().unwrap();
    for _ in 0..10 {
        append(&mut writer, 30);
    }
    // Again, while a batch is likely in flight.
    fixture.cluster.stop().unwrap();
    fixture.cluster.restart().unwrap();
    let last = append(&mut writer, 200);
    fixture.wait_persisted(last, Duration::from_secs(60));
    persister.stop(Duration::from_secs(5));
    let total = last;
    assert_eq!(fixture.sql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM master_events"), format!("{total}|{total}|1|{total}\n"));
    assert_eq!(fixture.sql("SELECT count(*) FROM dead_letters"), "0\n");
}

#[test]
fn a_restarted_persister_resumes_after_the_committed_progress_knowing_the_cause_before_it() {
    // Shows that a persister stopped and started again (as after a bridge restart) reads on from persist_progress + 1, so the rows of both runs are all there once, and that copies right after the restart point still get their master event's seq and issue time (the decoder is primed on the records before).
    let mut fixture = Fixture::new("resume");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    for seq in 1..=300 {
        writer.master_event(100_001, event(seq, "first run"), RECEIVED_MS, seq);
    }
    let cause = writer.master_event(100_001, event(301, "its copies come after the restart"), RECEIVED_MS + 7, 1_000_000);
    let first = writer.durable(&fixture.feed);
    assert_eq!(first, cause);
    let persister = fixture.start(64);
    fixture.wait_persisted(first, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    for slave_seq in 1..=3 {
        writer.copy(200_000 + slave_seq, Copy { master: 100_001, ..copy_of(1, 9_302) }, 1_000_000, 3_000_000);
    }
    for seq in 302..=500 {
        writer.master_event(100_001, event(seq, "second run"), RECEIVED_MS, seq);
    }
    let last = writer.durable(&fixture.feed);
    // A new feed, as a new bridge process has.
    fixture.feed = Arc::new(PersistFeed::default());
    fixture.feed.publish_durable(last);
    let persister = fixture.start(64);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT count(*), count(DISTINCT seq) FROM master_events"), "500|500\n");
    let issued = fixture.sql("SELECT string_agg(master_seq || '@' || (extract(epoch FROM issued_at) * 1000)::bigint, ',') FROM copies");
    let expected = format!("301@{0},301@{0},301@{0}\n", RECEIVED_MS + 7 + 2);
    assert_eq!(issued, expected);
}

#[test]
fn records_released_before_they_were_read_are_recorded_as_a_gap() {
    // Shows that when the journal released segments the persister never read (Postgres away too long), the persister records the missing range in persist_gaps, counts it, and goes on with what the journal still holds.
    let fixture = Fixture::new("gap");
    let mut writer = Writer::open(&fixture.directory, 64 * 1024);
    let mut seq = 0;
    while writer.journal.segments_count() < 4 {
        seq += 1;
        writer.master_event(100_001, event(seq, "released unread"), RECEIVED_MS, seq);
    }
    writer.durable(&fixture.feed);
    let kept_from = writer.journal.next_seq() - 1;
    writer.journal.truncate_before(kept_from).unwrap();
    let first_kept = writer.journal.first_seq();
    assert!(first_kept > 1, "segments were released");
    for _ in 0..10 {
        seq += 1;
        writer.master_event(100_001, event(seq, "kept"), RECEIVED_MS, seq);
    }
    let last = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT from_journal_seq, to_journal_seq FROM persist_gaps"), format!("1|{first_kept}\n"));
    assert_eq!(fixture.feed.gap_records.load(std::sync::atomic::Ordering::Relaxed), first_kept - 1);
    let kept = last - first_kept + 1;
    assert_eq!(fixture.sql("SELECT count(*) FROM master_events"), format!("{kept}\n"));
    assert_eq!(fixture.sql("SELECT journal_seq FROM persist_progress"), format!("{last}\n"));
}

/// The first seq of each segment file in `directory`, in order.
fn segment_firsts(directory: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = std::fs::read_dir(directory)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    firsts.sort_unstable();
    firsts
}

#[test]
fn a_gap_met_in_the_middle_of_a_batch_is_recorded_with_the_rows_before_it() {
    // Shows that when the persister has read part of a segment and the journal then releases that segment and the next ones, the rest of the open segment, the released range (in persist_gaps, in the same transaction) and everything after it are written: nothing after the gap is lost and the gap is never silent.
    let fixture = Fixture::new("gap-mid-batch");
    let mut writer = Writer::open(&fixture.directory, 64 * 1024);
    let mut seq = 0;
    while writer.journal.segments_count() < 4 {
        seq += 1;
        writer.master_event(100_001, event(seq, "segment"), RECEIVED_MS, seq);
    }
    writer.journal.flush().unwrap();
    let firsts = segment_firsts(&fixture.directory);
    // The persister reads half of the first segment and waits there.
    let halfway = firsts[1] / 2;
    fixture.feed.publish_durable(halfway);
    let persister = fixture.start(100_000);
    fixture.wait_persisted(halfway, Duration::from_secs(30));
    // The segments before the last are released while it holds the first one open.
    writer.journal.truncate_before(firsts[3]).unwrap();
    assert_eq!(writer.journal.first_seq(), firsts[3]);
    let last = writer.durable(&fixture.feed);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT from_journal_seq, to_journal_seq FROM persist_gaps"), format!("{}|{}\n", firsts[1], firsts[3]));
    let expected = (firsts[1] - 1) + (last - firsts[3] + 1);
    assert_eq!(fixture.sql("SELECT count(*), count(DISTINCT seq) FROM master_events"), format!("{expected}|{expected}\n"));
    assert_eq!(fixture.sql(&format!("SELECT count(*) FROM master_events WHERE journal_seq >= {} AND journal_seq < {}", firsts[1], firsts[3])), "0\n");
}

/// The ```sql blocks of persist/SCHEMA.md.
fn schema_md_queries() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SCHEMA.md")).expect("persist/SCHEMA.md");
    let mut queries = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(query), "```") => {
                queries.push(std::mem::take(query));
                current = None;
            }
            (Some(query), line) => {
                query.push_str(line);
                query.push('\n');
            }
            (None, _) => {}
        }
    }
    queries
}

#[test]
fn schema_md_queries_run() {
    // Shows that every example query of persist/SCHEMA.md runs against a database the persister filled, and that each finds the rows it is about (a copy filled today with its slippage, the master's fan-out, the skip behind a position not copied, the follower's session, the bookkeeping).
    let fixture = Fixture::new("schema-md");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (master, slave) = (100_001, 200_001);
    writer.raw(journal_kind::SESSION, &session(SessionEvent::Open, slave, "b-0-1", now_ms - 60_000, 0, ""));
    writer.update(slave, now_ms - 50_000, STATE);
    writer.master_event(master, event(1, ""), now_ms - 2_000, 1_000);
    writer.copy(slave, Copy { master, ..copy_of(1, 9_002) }, 1_000, 2_000);
    let result = TradeResult { seq: 1, status: ResultStatus::Filled, ticket: 7, price: 1.08125, volume: 0.5, error: 0, msg: "done".into(), exec_ms: 30 };
    writer.result(slave, result, now_ms - 1_900);
    writer.master_event(master, event(2, ""), now_ms - 1_000, 3_000);
    let mut skipped = Vec::new();
    encode_skips(&[SkipEntry { slave, master, pos: 9_003, reason: SkipReason::MaxPositions.index() }], &mut skipped);
    writer.raw(journal_kind::SKIPS, &skipped);
    let last = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    let queries = schema_md_queries();
    assert_eq!(queries.len(), 5, "the example queries of SCHEMA.md");
    let outputs: Vec<String> = queries
        .iter()
        .map(|query| {
            let sql = query.replace(":slave", &slave.to_string()).replace(":master", &master.to_string());
            fixture.cluster.psql("bridge", &sql).unwrap_or_else(|error| panic!("{query}\n{error:#}"))
        })
        .collect();
    assert!(outputs[0].starts_with("200001-1|open|EURUSD.m|sell|0.5|1.08123|filled|1.08125|-2.0|100.0|done"), "{}", outputs[0]);
    assert!(outputs[1].ends_with("|2|1|1|0|0|100.0|1\n"), "{}", outputs[1]);
    assert!(outputs[2].ends_with("|2|open|EURUSD|max_positions\n"), "{}", outputs[2]);
    assert!(outputs[3].starts_with("b-0-1|slave|127.0.0.1:50123|"), "{}", outputs[3]);
    assert!(outputs[4].starts_with(&format!("{last}|")) && outputs[4].ends_with("|0|0\n"), "{}", outputs[4]);
}

#[test]
fn a_result_sent_again_keeps_the_first_and_is_no_dead_letter() {
    // Shows that when a follower answers a replayed copy with its result again (in the same batch and in a later one), copy_results keeps the first, the repeat is counted as a duplicate, and nothing lands in dead_letters.
    let fixture = Fixture::new("duplicate-results");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let result = TradeResult { seq: 1, status: ResultStatus::Filled, ticket: 1, price: 1.5, volume: 0.1, error: 0, msg: String::new(), exec_ms: 1 };
    writer.result(200_001, result.clone(), RECEIVED_MS);
    writer.result(200_001, TradeResult { price: 2.0, ..result.clone() }, RECEIVED_MS + 1);
    let first = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(first, Duration::from_secs(30));
    writer.result(200_001, TradeResult { price: 3.0, ..result.clone() }, RECEIVED_MS + 2);
    writer.result(200_001, TradeResult { seq: 2, ..result }, RECEIVED_MS + 3);
    let last = writer.durable(&fixture.feed);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT seq, price FROM copy_results ORDER BY seq"), "1|1.5\n2|1.5\n");
    assert_eq!(fixture.feed.duplicate_results.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(fixture.sql("SELECT count(*) FROM dead_letters"), "0\n");
}

#[test]
fn results_go_straight_into_copy_results_until_one_is_a_duplicate() {
    // Shows that results with new keys are copied into copy_results directly (the persister's session has made no staging table), and that only a result Postgres has already makes the batch go through the staging table that keeps the first.
    let fixture = Fixture::new("results-direct");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let result = TradeResult { seq: 1, status: ResultStatus::Filled, ticket: 1, price: 1.5, volume: 0.1, error: 0, msg: String::new(), exec_ms: 1 };
    for seq in 1..=50 {
        writer.result(200_001, TradeResult { seq, ..result.clone() }, RECEIVED_MS + seq);
    }
    let first = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(first, Duration::from_secs(30));
    let staging = "SELECT count(*) FROM pg_class WHERE relname = 'copy_results_incoming'";
    assert_eq!(fixture.sql(staging), "0\n", "no staging table while every result is new");
    writer.result(200_001, TradeResult { price: 9.0, ..result.clone() }, RECEIVED_MS + 100);
    writer.result(200_001, TradeResult { seq: 51, ..result }, RECEIVED_MS + 101);
    let last = writer.durable(&fixture.feed);
    fixture.wait_persisted(last, Duration::from_secs(30));
    assert_eq!(fixture.sql(staging), "1\n", "the duplicate's batch went through the staging table");
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT count(*), sum(price) FROM copy_results"), "51|76.5\n");
    assert_eq!(fixture.feed.duplicate_results.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_row_postgres_keeps_refusing_for_another_reason_is_set_aside_after_retries() {
    // Shows that a row refused with an error outside the data and integrity classes (here a trigger raising P0001) is retried, then, after a few refusals, the batch is written row by row and that row alone goes to dead_letters with the server's reason, so the rows after it still arrive.
    let fixture = Fixture::new("refused-other");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    writer.master_event(100_001, event(1, "before"), RECEIVED_MS, 1);
    let first = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(first, Duration::from_secs(30));
    fixture.sql(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
             IF NEW.comment = 'poison' THEN RAISE EXCEPTION 'a poisoned row' USING ERRCODE = 'P0001'; END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER poison BEFORE INSERT ON master_events FOR EACH ROW EXECUTE FUNCTION poison();",
    );
    let poisoned = writer.master_event(100_001, event(2, "poison"), RECEIVED_MS, 2);
    writer.master_event(100_001, event(3, "after"), RECEIVED_MS, 3);
    let last = writer.durable(&fixture.feed);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM master_events"), "1,3\n");
    let letters = fixture.sql("SELECT journal_seq || '|' || reason FROM dead_letters");
    assert!(letters.starts_with(&format!("{poisoned}|")) && letters.contains("a poisoned row") && letters.lines().count() == 1, "{letters}");
    assert!(fixture.feed.failures.load(std::sync::atomic::Ordering::Relaxed) >= 3);
}

#[test]
fn each_configuration_the_journal_holds_is_an_audit_log_row_with_what_changed() {
    // Shows: a configuration journaled in several parts, then a second that adds a follow and changes an account, become two audit_log rows (actor, action, subject, time); the second's `before` names the first and its `after` lists the changes by login, never a key hash; nothing lands in dead_letters.
    use tradebridge_core::config::Config;
    use tradebridge_core::record::{encode_config_parts, journal_kind};
    let fixture = Fixture::new("config-audit");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let key = "ab".repeat(32);
    let text = |extra_follow: &str, limit: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"/x\"\n[[account]]\nlogin = 1\nserver = \"S\"\nrole = \"master\"\nkey_sha256 = \"{key}\"\n[[account]]\nlogin = 2\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{key}\"\n{limit}\n[[account]]\nlogin = 3\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{key}\"\n[[follow]]\nslave = 2\nmaster = 1\n{extra_follow}"
        )
    };
    let first = Config::from_toml_str(&text("", "")).expect("valid");
    let second = Config::from_toml_str(&text("[[follow]]\nslave = 3\nmaster = 1\n", "max_positions = 4")).expect("valid");
    let at_ms = 1_765_000_000_000;
    for (generation, config, source) in [(1, &first, "start"), (2, &second, "reload")] {
        let document = serde_json::to_vec(&config.document(source)).unwrap();
        for payload in encode_config_parts(generation, at_ms + generation, &document, 200) {
            writer.raw(journal_kind::CONFIG, &payload);
        }
    }
    let last = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    let rows = fixture.sql(
        "SELECT actor, action, subject, (extract(epoch FROM at) * 1000)::bigint, coalesce(before->>'generation', '-'), after->>'generation', after->>'accounts', after->>'follows', coalesce(after->>'changes', '-') FROM audit_log ORDER BY id",
    );
    assert_eq!(
        rows,
        format!(
            "start|configuration applied|configuration 1|{}|-|1|3|1|-\nreload|configuration applied|configuration 2|{}|1|2|3|2|[\"~account 2\", \"+follow 3<1\"]\n",
            at_ms + 1,
            at_ms + 2
        )
    );
    let everything = fixture.sql("SELECT before::text, after::text FROM audit_log");
    assert!(!everything.contains(&key), "a key hash reached audit_log: {everything}");
    assert_eq!(fixture.sql("SELECT count(*) FROM dead_letters"), "0\n");
}

#[test]
fn the_lag_has_an_age_when_postgres_is_away_from_the_start() {
    // Shows: a persister that never reached Postgres (stopped before it started) has read no batch to date the lag by, yet lag_seconds grows from its first failed connection while records wait; after Postgres returns they arrive and the lag is 0 again.
    let fixture = Fixture::new("lag-age");
    fixture.cluster.stop().unwrap();
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let persister = fixture.start(100);
    std::thread::sleep(Duration::from_millis(400));
    writer.master_event(100_001, event(1, "waiting"), RECEIVED_MS, 1);
    let last = writer.durable(&fixture.feed);
    std::thread::sleep(Duration::from_millis(300));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert_eq!(fixture.feed.lag_records(), last);
    let age = fixture.feed.lag_seconds(now_ms);
    assert!(age >= 0.25, "the lag's age counts from the first failed connection: {age}");
    fixture.cluster.restart().unwrap();
    fixture.wait_persisted(last, Duration::from_secs(60));
    persister.stop(Duration::from_secs(5));
    assert_eq!(fixture.feed.lag_seconds(now_ms + 10_000), 0.0);
}

#[test]
fn a_refused_hello_is_an_audit_log_row_with_the_address_and_reason() {
    // Shows: an authentication-failure session record becomes an audit_log row: actor "ea", action "authentication failed", the account as subject, and the role, remote address, reason and close code in `after`; no sessions row is made for it.
    use tradebridge_core::record::journal_kind;
    let fixture = Fixture::new("auth-failed");
    let mut writer = Writer::open(&fixture.directory, 1 << 20);
    let entry = SessionEntry {
        event: SessionEvent::AuthFailed,
        role: Role::Slave,
        login: 200_009,
        time_ms: RECEIVED_MS,
        close_code: 4001,
        session_id: String::new(),
        remote_address: "203.0.113.7:40001".into(),
        close_reason: "field `key`: its SHA-256 does not match the account's key_sha256".into(),
    };
    let mut bytes = Vec::new();
    encode_session(&entry, &mut bytes);
    writer.raw(journal_kind::SESSION, &bytes);
    let last = writer.durable(&fixture.feed);
    let persister = fixture.start(100);
    fixture.wait_persisted(last, Duration::from_secs(30));
    persister.stop(Duration::from_secs(5));
    let row = fixture.sql("SELECT actor, action, subject, after->>'role', after->>'remote_address', after->>'close_code', after->>'reason' FROM audit_log");
    assert_eq!(row, "ea|authentication failed|account 200009|slave|203.0.113.7:40001|4001|field `key`: its SHA-256 does not match the account's key_sha256\n");
    assert_eq!(fixture.sql("SELECT count(*) FROM sessions"), "0\n");
}
