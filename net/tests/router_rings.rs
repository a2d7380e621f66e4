//! The routing core over its real rings, with this test in the place of the
//! shards: a router -> shard ring that stays full (a shard that stopped
//! draining it) must hold up only that shard's acks and copies, and what
//! waited must arrive in order once the ring drains.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tradebridge_core::config::Config;
use tradebridge_core::protocol::{parse, Message};
use tradebridge_core::record::{access_checked, AckRecord, CopyRecord, MasterEventMeta, MasterEventRecord, RecordEncoder, RecordKind};
use tradebridge_core::ring::Consumer;
use tradebridge_net::accounts::{AccountTable, SessionControl};
use tradebridge_net::metrics::Metrics;
use tradebridge_net::links::{self, ShardLinks, SlaveHello, Update, JOURNAL_KIND_SLAVE_SEQ, JOURNAL_KIND_UPDATE};
use tradebridge_net::router::{self, Router};

const MASTER_1: u64 = 100_001;
const MASTER_2: u64 = 100_002;
const SLAVE: u64 = 200_001;
/// Small enough that a few dozen acks fill a ring.
const RING_BYTES: u64 = 4096;

fn config(journal_dir: &std::path::Path) -> Config {
    let hash = "1".repeat(64);
    let accounts: String = [(MASTER_1, "master"), (MASTER_2, "master"), (SLAVE, "slave")]
        .iter()
        .map(|(login, role)| format!("[[account]]\nlogin = {login}\nserver = \"S\"\nrole = \"{role}\"\nkey_sha256 = \"{hash}\"\n\n"))
        .collect();
    let source = format!(
        r#"[server]
listen = "127.0.0.1:0"
journal_dir = "{}"
journal_sync = "os"
journal_segment_bytes = 1048576
journal_bytes_max = 8388608
idle = "park"
idle_park_backoff_us_max = 1000

{accounts}[[follow]]
slave = {SLAVE}
master = {MASTER_1}
"#,
        journal_dir.display()
    );
    Config::from_toml_str(&source).expect("test config")
}

/// A fresh directory for one test, removed when dropped (a failing test's
/// too).
struct TempDirectory(PathBuf);

impl TempDirectory {
    fn new(label: &str) -> TempDirectory {
        let path = std::env::temp_dir().join(format!("tradebridge-router-rings-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp directory");
        TempDirectory(path)
    }
}

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Pushes master `login`'s open event `seq` from `shard` to the router.
fn push_event(links: &mut ShardLinks, encoder: &mut RecordEncoder, shard: u32, login: u64, seq: u64) {
    let text = format!(
        r#"{{"t":"event","seq":{seq},"kind":"open","pos":{seq},"ticket":{seq},"symbol":"EURUSD","side":"buy","volume":0.1,"price":1.1,"sl":0,"tp":0,"magic":0,"comment":"","time_ms":1732400000123}}"#
    );
    let Ok(Message::Event(event)) = parse(text.as_bytes()) else { panic!("an event frame") };
    let meta = MasterEventMeta { master_login: login, received_ms: 1_732_400_000_123, received_ns: 0, shard_id: shard, connection_id: 7 };
    let encoded = encoder.encode(&MasterEventRecord::from_event(event, meta)).expect("encode");
    // The small ring takes a dozen events; the router drains it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while links.to_router.try_push(encoded.kind.code(), encoded.bytes).is_err() {
        assert!(Instant::now() < deadline, "the router never drained the shard -> router ring");
        links.router_bell.ring();
        std::thread::sleep(Duration::from_millis(1));
    }
    links.router_bell.ring();
}

/// Reads every record waiting in a router -> shard ring: an ack as
/// (master, seq), a copy as (slave, seq).
fn drain_acks(from_router: &mut Consumer) -> Vec<(u64, u64)> {
    let mut read = Vec::new();
    while let Some(record) = from_router.read().expect("ring intact") {
        if record.kind == RecordKind::Copy.code() {
            let copy = access_checked::<CopyRecord>(record.payload).expect("a copy");
            read.push((copy.slave_login.to_native(), copy.seq.to_native()));
        } else {
            let ack = access_checked::<AckRecord>(record.payload).expect("an ack").to_record();
            read.push((ack.master_login, ack.seq));
        }
        from_router.release();
    }
    read
}

/// SLAVE's `state`: EURUSD, so the engine sizes its copies.
const STATE: &str = r#"{"t":"state","balance":10000.0,"equity":10000.0,"currency":"USD","positions":[],"symbols":[{"name":"EURUSD","min":0.01,"max":100.0,"step":0.01,"digits":5,"contract":100000.0}]}"#;

/// Makes SLAVE's connection on shard 1 its live one, as its session would.
fn slave_live_on_shard_1(accounts: &AccountTable) -> u64 {
    let slave_connection = tradebridge_net::links::connection_id(1, 3);
    let control = Arc::new(SessionControl::default());
    control.set_connection_id(slave_connection);
    let slave = accounts.get(SLAVE).expect("slave account");
    slave.claim(Arc::clone(&control));
    slave.delivery().live_connection_id = slave_connection;
    slave_connection
}

/// Starts a router over `config`'s journal with `accounts`; its shards'
/// links, its stop flag and its thread.
fn start_router(config: &Config, accounts: Arc<AccountTable>) -> (Vec<ShardLinks>, Arc<AtomicBool>, std::thread::JoinHandle<anyhow::Result<()>>) {
    let journal = router::open_journal(config).expect("journal");
    let (router_links, shards) = links::links(2, RING_BYTES, tradebridge_core::config::Routing::Thread).expect("links");
    let router = Router::new(journal, router_links, accounts, config, Instant::now(), Arc::new(Metrics::default())).expect("router");
    let stop = Arc::new(AtomicBool::new(false));
    let router_stop = Arc::clone(&stop);
    (shards, stop, std::thread::spawn(move || router.run(router_stop)))
}

/// A router on `directory`'s journal with SLAVE live on shard 1 and its
/// state sent: the config, the accounts, the shards' links, the stop flag
/// and the router's thread.
type RouterRun = (Config, Arc<AccountTable>, Vec<ShardLinks>, Arc<AtomicBool>, std::thread::JoinHandle<anyhow::Result<()>>);

fn router_with_live_slave(directory: &TempDirectory) -> RouterRun {
    let config = config(&directory.0.join("journal"));
    let accounts = Arc::new(AccountTable::new(&config, 0));
    // The test stands in for SLAVE's session on shard 1.
    let slave_connection = slave_live_on_shard_1(&accounts);
    let (mut shards, stop, router_thread) = start_router(&config, Arc::clone(&accounts));
    push_update(&mut shards[1], SLAVE, slave_connection, STATE);
    (config, accounts, shards, stop, router_thread)
}

/// Pushes `frame` (a slave `state`) from `shard` as the account's update.
fn push_update(links: &mut ShardLinks, login: u64, connection_id: u64, frame: &str) {
    let mut payload = Vec::new();
    Update::encode_frame(login, connection_id, 1_732_400_000_000, frame.as_bytes(), &mut payload);
    links.to_router.try_push(u32::from(JOURNAL_KIND_UPDATE), &payload).expect("room for the update");
    links.router_bell.ring();
}

/// Drains `from_router` until `count` records came or 10 s passed.
fn drain_until(from_router: &mut Consumer, count: usize) -> Vec<(u64, u64)> {
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read.len() < count && Instant::now() < deadline {
        read.extend(drain_acks(from_router));
        std::thread::sleep(Duration::from_millis(2));
    }
    read
}

#[test]
fn a_full_shard_ring_holds_up_only_that_shards_acks() {
    // Shows: with shard 0's router -> shard ring left full (200 acks of MASTER_1 owed, a ring that holds a few dozen), MASTER_2's event on shard 1 is still acked; once shard 0 drains its ring, all 200 of MASTER_1's acks arrive, in order, none twice.
    let directory = TempDirectory::new("acks");
    let config = config(&directory.0.join("journal"));
    let accounts = Arc::new(AccountTable::new(&config, 0));
    let (mut shards, stop, router_thread) = start_router(&config, accounts);

    let mut encoder = RecordEncoder::new(config.server.record_bytes_max());
    const OWED: u64 = 200;
    for seq in 1..=OWED {
        push_event(&mut shards[0], &mut encoder, 0, MASTER_1, seq);
    }
    // Wait until the router has found shard 0's ring full.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shards[0].from_router.monitor().metrics().full_count == 0 {
        assert!(Instant::now() < deadline, "shard 0's ring never filled");
        std::thread::sleep(Duration::from_millis(2));
    }

    push_event(&mut shards[1], &mut encoder, 1, MASTER_2, 1);
    let mut shard_1_acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while shard_1_acks.is_empty() && Instant::now() < deadline {
        shard_1_acks.extend(drain_acks(&mut shards[1].from_router));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(shard_1_acks, vec![(MASTER_2, 1)], "shard 1's ack must not wait behind shard 0's full ring");

    let mut shard_0_acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while shard_0_acks.len() < OWED as usize && Instant::now() < deadline {
        shard_0_acks.extend(drain_acks(&mut shards[0].from_router));
        std::thread::sleep(Duration::from_millis(2));
    }
    let expected: Vec<(u64, u64)> = (1..=OWED).map(|seq| (MASTER_1, seq)).collect();
    assert_eq!(shard_0_acks, expected, "every owed ack, in order, once");

    stop.store(true, Ordering::Release);
    router_thread.join().expect("router thread").expect("router stops cleanly");
}

#[test]
fn copies_wait_in_order_behind_a_full_ring_while_the_masters_acks_flow() {
    // Shows: SLAVE's live connection is on shard 1, whose ring is left full; MASTER_1 (on shard 0) sends 200 opens and gets all 200 acks meanwhile, and once shard 1 drains, SLAVE's copies arrive with seqs 1..=200 in order, no gap, none twice.
    let directory = TempDirectory::new("copies");
    let (config, _accounts, mut shards, stop, router_thread) = router_with_live_slave(&directory);
    let mut encoder = RecordEncoder::new(config.server.record_bytes_max());
    const EVENTS: u64 = 200;
    let mut acks = Vec::new();
    for seq in 1..=EVENTS {
        push_event(&mut shards[0], &mut encoder, 0, MASTER_1, seq);
        acks.extend(drain_acks(&mut shards[0].from_router));
    }
    acks.extend(drain_until(&mut shards[0].from_router, EVENTS as usize - acks.len()));
    let expected: Vec<(u64, u64)> = (1..=EVENTS).map(|seq| (MASTER_1, seq)).collect();
    assert_eq!(acks, expected, "every ack while shard 1's ring is full");
    assert!(shards[1].from_router.monitor().metrics().full_count > 0, "shard 1's ring was full: the test shows nothing otherwise");

    let copies = drain_until(&mut shards[1].from_router, EVENTS as usize);
    let expected: Vec<(u64, u64)> = (1..=EVENTS).map(|seq| (SLAVE, seq)).collect();
    assert_eq!(copies, expected, "SLAVE's copies in seq order, none missing or twice");

    stop.store(true, Ordering::Release);
    router_thread.join().expect("router thread").expect("router stops cleanly");
}

#[test]
fn a_terminal_ahead_of_the_journal_moves_the_numbering_even_when_the_rebase_is_the_journals_last_record() {
    // Shows: SLAVE gets copies 1 and 2; a hello saying last_seq 40 makes the router re-issue them as 41 and 42. Then, on a journal that holds the same two copies and the rebase as its last record (a stop right after it was journaled), a restarted router issues 41 and 42 itself from the replayed rebase, and keeps no copy at or below 40 for replay.
    let directory = TempDirectory::new("rebase");
    let (config, _accounts, mut shards, stop, router_thread) = router_with_live_slave(&directory);
    let mut encoder = RecordEncoder::new(config.server.record_bytes_max());
    for seq in 1..=2 {
        push_event(&mut shards[0], &mut encoder, 0, MASTER_1, seq);
    }
    assert_eq!(drain_until(&mut shards[1].from_router, 2), vec![(SLAVE, 1), (SLAVE, 2)]);
    shards[1].to_router.try_push(u32::from(JOURNAL_KIND_SLAVE_SEQ), &SlaveHello { login: SLAVE, last_seq: 40 }.encode()).expect("room");
    shards[1].router_bell.ring();
    assert_eq!(drain_until(&mut shards[1].from_router, 2), vec![(SLAVE, 41), (SLAVE, 42)], "re-issued above the terminal's last_seq");
    stop.store(true, Ordering::Release);
    router_thread.join().expect("router thread").expect("router stops cleanly");
    drop(shards);

    // The same history, stopped right after the rebase was journaled: the
    // journal of a second run holds copies 1 and 2 and then the rebase.
    let second = TempDirectory::new("rebase-cut");
    let (config, _accounts, mut shards, stop, router_thread) = router_with_live_slave(&second);
    for seq in 1..=2 {
        push_event(&mut shards[0], &mut encoder, 0, MASTER_1, seq);
    }
    assert_eq!(drain_until(&mut shards[1].from_router, 2), vec![(SLAVE, 1), (SLAVE, 2)]);
    stop.store(true, Ordering::Release);
    router_thread.join().expect("router thread").expect("router stops cleanly");
    drop(shards);
    {
        let mut journal = router::open_journal(&config).expect("journal");
        let mut rebase = Vec::with_capacity(24);
        // SLAVE, last_seq 40, reissue (the first rebase of the slave).
        for value in [SLAVE, 40, 1] {
            rebase.extend_from_slice(&value.to_le_bytes());
        }
        journal.append(JOURNAL_KIND_SLAVE_SEQ, &rebase, 0).expect("append the rebase");
        journal.flush().expect("flush");
    }
    let accounts = Arc::new(AccountTable::new(&config, 0));
    slave_live_on_shard_1(&accounts);
    let (mut shards, stop, router_thread) = start_router(&config, Arc::clone(&accounts));
    assert_eq!(drain_until(&mut shards[1].from_router, 2), vec![(SLAVE, 41), (SLAVE, 42)], "issued at restart from the replayed rebase");
    let kept: Vec<u64> = accounts.get(SLAVE).expect("slave").delivery().copies.iter().map(|copy| copy.seq).collect();
    assert_eq!(kept, vec![41, 42], "nothing at or below the terminal's last_seq kept for replay");
    stop.store(true, Ordering::Release);
    router_thread.join().expect("router thread").expect("router stops cleanly");
}
