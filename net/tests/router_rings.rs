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
use tradebridge_core::record::{access_checked, AckRecord, MasterEventMeta, MasterEventRecord, RecordEncoder};
use tradebridge_core::ring::Consumer;
use tradebridge_net::accounts::AccountTable;
use tradebridge_net::metrics::Metrics;
use tradebridge_net::router::{self, Router, ShardLinks};

const MASTER_1: u64 = 100_001;
const MASTER_2: u64 = 100_002;
/// Small enough that a few dozen acks fill a ring.
const RING_BYTES: u64 = 4096;

fn config(journal_dir: &std::path::Path) -> Config {
    let hash = "1".repeat(64);
    let source = format!(
        r#"[server]
listen = "127.0.0.1:0"
journal_dir = "{}"
journal_sync = "os"
idle = "park"
idle_park_backoff_us_max = 1000

[[account]]
login = {MASTER_1}
server = "S"
role = "master"
key_sha256 = "{hash}"

[[account]]
login = {MASTER_2}
server = "S"
role = "master"
key_sha256 = "{hash}"
"#,
        journal_dir.display()
    );
    Config::from_toml_str(&source).expect("test config")
}

fn temp_directory() -> PathBuf {
    let path = std::env::temp_dir().join(format!("tradebridge-router-rings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("temp directory");
    path
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

/// Reads every ack waiting in a router -> shard ring: (master, seq) each.
fn drain_acks(from_router: &mut Consumer) -> Vec<(u64, u64)> {
    let mut acks = Vec::new();
    while let Some(record) = from_router.read().expect("ring intact") {
        let ack = access_checked::<AckRecord>(record.payload).expect("an ack").to_record();
        acks.push((ack.master_login, ack.seq));
        from_router.release();
    }
    acks
}

#[test]
fn a_full_shard_ring_holds_up_only_that_shards_acks() {
    // Shows: with shard 0's router -> shard ring left full (200 acks of MASTER_1 owed, a ring that holds a few dozen), MASTER_2's event on shard 1 is still acked; once shard 0 drains its ring, all 200 of MASTER_1's acks arrive, in order, none twice.
    let directory = temp_directory();
    let config = config(&directory.join("journal"));
    let accounts = Arc::new(AccountTable::new(&config, 0));
    let journal = router::open_journal(&config).expect("journal");
    let (router_links, mut shards) = router::links(2, RING_BYTES).expect("links");
    let router = Router::new(journal, router_links, accounts, &config, Instant::now(), Arc::new(Metrics::default())).expect("router");
    let stop = Arc::new(AtomicBool::new(false));
    let router_stop = Arc::clone(&stop);
    let router_thread = std::thread::spawn(move || router.run(router_stop));

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
    let _ = std::fs::remove_dir_all(&directory);
}
