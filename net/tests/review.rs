//! Failing tests found by the review of the bridge (wip/review): each shows
//! one defect over real sockets against the real binary.

mod support;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{hello_text, Bridge, Client, MASTER_KEY, MASTER_LOGIN, SERVER_NAME, SLAVE_LOGIN};
use tradebridge_core::protocol::{self, Copy, CopyAction, ErrorCode, Message, Side};
use tradebridge_core::record::{CopyMeta, CopyRecord, MasterEventMeta, MasterEventRecord, RecordEncoder};

/// An `open` event whose `comment` is `comment_bytes` long.
fn open_event_with_comment(seq: u64, pos: u64, comment_bytes: usize) -> String {
    let comment = "x".repeat(comment_bytes);
    format!(
        r#"{{"t":"event","seq":{seq},"kind":"open","pos":{pos},"ticket":{pos},"symbol":"EURUSD","side":"buy","volume":0.1,"price":1.08123,"sl":0,"tp":0,"magic":0,"comment":"{comment}","time_ms":1732400000123}}"#
    )
}

fn ack_seq_of(welcome: Message) -> u64 {
    match welcome {
        Message::Welcome(welcome) => welcome.ack_seq,
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[test]
fn a_symbols_frame_above_the_journal_record_limit_does_not_stop_the_bridge() {
    // Shows: with frame_bytes_max raised (the configuration allows up to 1 MiB, "for symbols frames"), one valid 100 KiB `symbols` frame passes the frame check but not the journal's 64 KiB record bound, and the router exits the whole bridge.
    let mut bridge = Bridge::start(&[("frame_bytes_max", "131072")]);
    let (mut slave, _) = bridge.login("slave", 0);
    let entries: Vec<String> = (0..1_300)
        .map(|index| format!(r#"{{"name":"SYMBOL{index:05}.m","min":0.01,"max":100.0,"step":0.01,"digits":5,"contract":100000.0}}"#))
        .collect();
    let frame = format!(r#"{{"t":"symbols","symbols":[{}]}}"#, entries.join(","));
    assert!(frame.len() > 100 * 1024 && frame.len() < 131_072, "frame of {} bytes", frame.len());
    slave.send(&frame);
    assert_eq!(bridge.wait_exit(Duration::from_secs(2)), None, "the bridge exited after one valid symbols frame");
    slave.expect_alive();
}

/// The length of a symbol for which the master's event record fits the
/// record encoder's bound but the copy the router derives from it does not.
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
fn an_event_whose_copy_does_not_encode_neither_stops_the_bridge_nor_loses_the_copy() {
    // Shows: an event that fits the shard's record bound is journaled, then its copy (a few bytes larger) fails the router's encoder; the router exits the bridge, and after the restart the event is inside ack_seq but no copy of it exists.
    let symbol_bytes = symbol_bytes_between_the_event_and_copy_bounds();
    let mut bridge = Bridge::start(&[("frame_bytes_max", "32768")]);
    let (_slave, _) = bridge.login("slave", 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_with_symbol(1, 9001, &"S".repeat(symbol_bytes)));
    let exited = bridge.wait_exit(Duration::from_secs(2));
    if exited.is_none() {
        return;
    }
    let bridge = bridge.restart();
    let (_, welcome) = bridge.login("master", 0);
    let (mut slave, _) = bridge.login("slave", 0);
    slave.socket.get_mut().set_read_timeout(Some(Duration::from_secs(2))).expect("read timeout");
    let replayed = loop {
        match slave.socket.read() {
            Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_)) => continue,
            other => break other.ok(),
        }
    };
    panic!(
        "the bridge exited ({exited:?}) on the copy of event 1; after the restart the master's welcome is {welcome:?} (the Monitor will not re-send event 1) and the slave's replay holds {replayed:?}"
    );
}

#[test]
fn a_refused_event_is_not_overtaken_by_the_next_one() {
    // Shows: an event the shard refuses (`error` internal, "re-send it") must not be skipped by the acks: once event 2 is acked, ack_seq 2 tells the Monitor that event 1 is held, and it is never re-sent.
    // Event 1 is refused deterministically here because it does not fit the shard's 20 KiB record encoder; a full shard -> router ring under load takes the same path with the default configuration.
    let bridge = Bridge::start(&[("frame_bytes_max", "65536")]);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_with_comment(1, 9001, 24 * 1024));
    master.expect_error(ErrorCode::Internal);
    master.send(&support::open_event_text(2, 9002));
    let answer = master.next();
    drop(master);
    let (_, welcome) = bridge.login("master", 0);
    let ack_seq = ack_seq_of(welcome);
    assert!(
        ack_seq == 0,
        "event 1 was refused and never journaled, yet after event 2 (answered {answer:?}) the bridge reports ack_seq {ack_seq}: the Monitor drops event 1 and its trade is never copied"
    );
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
    let mut client = Client { socket };
    client.socket.send(tungstenite::Message::text(hello_text(MASTER_KEY, MASTER_LOGIN, SERVER_NAME, "master", 0))).ok()?;
    match client.socket.read().ok()? {
        tungstenite::Message::Text(text) if text.contains("\"welcome\"") => Some(client),
        _ => None,
    }
}
