//! Tests from the review of the bridge: each shows, over real sockets against
//! the real binary, that a defect the review found is gone.

mod support;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{hello_text, Bridge, Client, MASTER_KEY, MASTER_LOGIN, SERVER_NAME, SLAVE_LOGIN};
use tradebridge_core::protocol::{self, Copy, CopyAction, Message, Side};
use tradebridge_core::record::{CopyMeta, CopyRecord, MasterEventMeta, MasterEventRecord, RecordEncoder};

#[test]
fn a_symbols_frame_above_the_journal_record_limit_does_not_stop_the_bridge() {
    // Shows: with frame_bytes_max raised to 128 KiB, a valid 100 KiB `symbols` frame (above the journal's default 64 KiB record) is journaled and applied: the record bounds follow frame_bytes_max, and the bridge keeps running.
    let mut bridge = Bridge::start(&[("frame_bytes_max", "131072")]);
    let (mut slave, _) = bridge.login("slave", 0);
    let entries: Vec<String> = (0..1_300)
        .map(|index| format!(r#"{{"name":"SYMBOL{index:05}.m","min":0.01,"max":100.0,"step":0.01,"digits":5,"contract":100000.0}}"#))
        .collect();
    let frame = format!(r#"{{"t":"symbols","symbols":[{}]}}"#, entries.join(","));
    assert!(frame.len() > 100 * 1024 && frame.len() < 131_072, "frame of {} bytes", frame.len());
    slave.send(&frame);
    slave.expect_alive();
    assert_eq!(bridge.wait_exit(Duration::from_millis(500)), None, "the bridge exited after one valid symbols frame");
}

/// The length of a symbol for which the master's event record fits the
/// record encoder's default bound but the copy the router derives from it
/// does not.
fn symbol_bytes_between_the_event_and_copy_bounds() -> usize {
    let mut encoder = RecordEncoder::default();
    let meta = MasterEventMeta { master_login: MASTER_LOGIN, received_ms: 1, received_ns: 1, shard_id: 0, connection_id: 1 };
    for symbol_bytes in 20_000..21_000 {
        let symbol = "S".repeat(symbol_bytes);
        let event = match protocol::parse(open_event_with_symbol(1, 9001, &symbol).as_bytes()) {
            Ok(Message::Event(event)) => event,
            other => panic!("test event does not parse: {other:?}"),
        };
        let copy = Copy {
            seq: 1,
            id: format!("{SLAVE_LOGIN}-1"),
            master: MASTER_LOGIN,
            pos: 9001,
            action: CopyAction::Open,
            symbol: symbol.clone(),
            side: Side::Buy,
            volume: 0.2,
            price: 1.08123,
            max_dev: 0.0,
            sl: 0.0,
            tp: 0.0,
            magic: 0,
            comment: format!("tc:{MASTER_LOGIN}:9001"),
            expires_ms: 1,
        };
        let copy_meta = CopyMeta { slave_login: SLAVE_LOGIN, event_received_ns: 1, routed_ns: 1, connection_id: None };
        let event_fits = encoder.encode(&MasterEventRecord::from_event(event, meta)).is_ok();
        let copy_fits = encoder.encode(&CopyRecord::from_copy(copy, copy_meta)).is_ok();
        if event_fits && !copy_fits {
            return symbol_bytes;
        }
    }
    panic!("no symbol length between the two bounds");
}

fn open_event_with_symbol(seq: u64, pos: u64, symbol: &str) -> String {
    format!(
        r#"{{"t":"event","seq":{seq},"kind":"open","pos":{pos},"ticket":{pos},"symbol":"{symbol}","side":"buy","volume":0.1,"price":1.08123,"sl":0,"tp":0,"magic":0,"comment":"","time_ms":1732400000123}}"#
    )
}

#[test]
fn an_event_whose_copy_exceeds_the_default_record_bound_is_acked_and_copied() {
    // Shows: with frame_bytes_max = 32 KiB, an event whose copy is larger than the default 20 KiB record (a 20 KiB symbol) is acked and its copy reaches the slave: the encoders are sized from frame_bytes_max, so an accepted frame's records always fit.
    let symbol_bytes = symbol_bytes_between_the_event_and_copy_bounds();
    let bridge = Bridge::start(&[("frame_bytes_max", "32768")]);
    let (mut slave, _) = bridge.login("slave", 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_with_symbol(1, 9001, &"S".repeat(symbol_bytes)));
    assert_eq!(master.recv(), Message::Ack(tradebridge_core::protocol::Ack { seq: 1 }));
    match slave.recv() {
        Message::Copy(copy) => assert_eq!((copy.seq, copy.pos, copy.symbol.len()), (1, 9001, symbol_bytes)),
        other => panic!("expected the copy, got {other:?}"),
    }
}

/// A bridge whose shard -> router ring (64 KiB) fills within a burst, as
/// its router pays an msync per record, with the heartbeat given; with its
/// metrics address.
fn small_ring_bridge(hb_ms: &str) -> (Bridge, String) {
    let overrides = [
        ("hb_ms", hb_ms),
        ("frame_bytes_max", "1024"),
        ("ring_bytes", "65536"),
        ("journal_sync", "\"every_record\""),
        ("rate_limit_per_second", "100000"),
        ("rate_limit_burst", "100000"),
        ("metrics_listen", "\"127.0.0.1:0\""),
    ];
    let mut bridge = Bridge::start(&overrides);
    let metrics = bridge.read_metrics_address();
    (bridge, metrics)
}

#[test]
fn a_full_ring_slows_the_master_down_and_closes_nothing() {
    // Shows: when the shard -> router ring is full (a burst of events against a router paying an msync per record), the shard stops reading the master's socket until there is room (TCP pushes back on the sender) instead of refusing the event: no error, no close 1013, every event acked in order, the ring seen full (so the run is conclusive) and nothing refused. Before, the first event that found the ring full ended the session with 1013.
    let (bridge, metrics) = small_ring_bridge("1000");
    let (mut master, _) = bridge.login("master", 0);
    let burst_events: u64 = 3_000;
    for seq in 1..=burst_events {
        master.socket.send(tungstenite::Message::text(support::open_event_text(seq, 10_000 + seq))).expect("the bridge keeps the connection while it catches up");
    }
    let mut highest_ack = 0;
    while highest_ack < burst_events {
        match master.next() {
            support::Received::Message(Message::Ack(ack)) => {
                assert!(ack.seq > highest_ack, "ack {} after ack {highest_ack}", ack.seq);
                highest_ack = ack.seq;
            }
            other => panic!("expected acks up to {burst_events}, got {other:?} after ack {highest_ack}"),
        }
    }
    master.expect_alive();
    let text = support::http_get(&metrics, "/metrics");
    assert!(support::metric(&text, "tradebridge_ring_full_total") >= 1.0, "inconclusive: {burst_events} events never found the ring full");
    assert_eq!(support::metric(&text, "tradebridge_ring_full_refused_total"), 0.0);
    assert_eq!(support::metric(&text, "tradebridge_events_journaled_total"), burst_events as f64);
}

#[test]
fn a_full_ring_slows_a_slave_down_and_refuses_no_result() {
    // Shows: a slave's burst of results against a router paying an msync per record fills the ring the same way; its results wait for room instead of being refused with `error` internal (as before), its ping behind them is answered with nothing else before the pong, and while they wait (well over a second here) the bridge, which has nothing else for the slave, pings it every hb_ms.
    let (bridge, metrics) = small_ring_bridge("500");
    let (mut slave, _) = bridge.login("slave", 0);
    let started = Instant::now();
    for seq in 1..=6_000u64 {
        let result = format!(r#"{{"t":"result","seq":{seq},"status":"filled","ticket":{seq},"price":1.1,"volume":0.1,"error":0,"msg":"","exec_ms":1}}"#);
        slave.socket.send(tungstenite::Message::text(result)).expect("the bridge keeps the connection while it catches up");
    }
    slave.send(r#"{"t":"ping"}"#);
    // The results bring the slave nothing back, so while they wait for room
    // the bridge pings it every hb_ms (0.5 s here) to show it is there.
    let mut pings = 0;
    let answer = loop {
        match slave.socket.read().expect("a frame within the timeout") {
            tungstenite::Message::Ping(_) => pings += 1,
            tungstenite::Message::Text(text) => break protocol::parse(text.as_bytes()).expect("bridge JSON"),
            other => panic!("expected the pong, got {other:?}"),
        }
    };
    let waited = started.elapsed();
    assert_eq!(answer, Message::Pong, "the first answer after 6,000 results must be the pong: no result was refused");
    // A hold shorter than two heartbeats need not see a ping; a longer one must.
    assert!(waited < Duration::from_millis(1_000) || pings >= 1, "held for {waited:?} without a ping");
    let text = support::http_get(&metrics, "/metrics");
    assert!(support::metric(&text, "tradebridge_ring_full_total") >= 1.0, "inconclusive: 6,000 results never found the ring full");
    assert_eq!(support::metric(&text, "tradebridge_ring_full_refused_total"), 0.0);
}

/// A masked client ping frame with a 125-byte payload (mask key zero).
const PING_FRAME: [u8; 2 + 4 + 125] = {
    let mut frame = [0u8; 131];
    frame[0] = 0x89;
    frame[1] = 0x80 | 125;
    frame
};

#[test]
fn a_peer_that_never_reads_cannot_hold_a_connection_forever() {
    // Shows: a peer that floods pings before `hello` and never reads makes the bridge's pongs fill the socket (its Send-Q stays at 4 MB under zero-window probes); the hello timeout's error write then waits forever, and with connections_max = 1 nobody else can connect.
    let bridge = Bridge::start(&[("connections_max", "1"), ("hello_timeout_ms", "5000")]);
    let flood_started = Instant::now();
    let stream = TcpStream::connect(bridge.address).expect("tcp connect");
    let url = format!("ws://{}/ea", bridge.address);
    let (socket, _) = tungstenite::client::client(url, stream).expect("upgrade");
    let mut stream = socket.into_inner();
    // About 16 MB of pings: far more pongs than the two socket buffers hold.
    let burst: Vec<u8> = PING_FRAME.iter().copied().cycle().take(PING_FRAME.len() * 1024).collect();
    // Once the bridge stops reading (its hello deadline passed) the writes
    // block; the timeout ends the flood then.
    stream.set_write_timeout(Some(Duration::from_secs(1))).expect("write timeout");
    for _ in 0..120 {
        if stream.write_all(&burst).is_err() {
            break;
        }
    }
    assert!(
        flood_started.elapsed() < Duration::from_secs(4),
        "inconclusive: the flood took {:?}, so the hello deadline may have come before the socket filled",
        flood_started.elapsed()
    );
    // The stuck peer now sits idle. A well-behaved EA must get in well within
    // hello_timeout_ms + CLOSE_DRAIN_MS + any sane write timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(mut client) = try_login(&bridge) {
            client.expect_alive();
            break;
        }
        assert!(Instant::now() < deadline, "20 s after the flood the silent peer still holds the only connection slot");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stream);
}

/// Logs the master in, or `None` when the bridge dropped the connection
/// (connections_max reached).
fn try_login(bridge: &Bridge) -> Option<Client> {
    let stream = TcpStream::connect(bridge.address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let url = format!("ws://{}/ea", bridge.address);
    let (socket, _) = tungstenite::client::client(url, stream).ok()?;
    let mut client = Client { socket, pending: std::collections::VecDeque::new() };
    client.socket.send(tungstenite::Message::text(hello_text(MASTER_KEY, MASTER_LOGIN, SERVER_NAME, "master", 0))).ok()?;
    match client.socket.read().ok()? {
        tungstenite::Message::Text(text) if text.contains("\"welcome\"") => Some(client),
        _ => None,
    }
}
