//! Loopback latency of a running bridge, as an EA sees it: one master and one
//! slave of deploy/tradebridge.example.toml (logins 100001 and 200001, their
//! demo keys), closed loop with one event outstanding, alternating an open
//! and its close. Prints HDR percentiles (3 significant figures) of
//! event -> `ack` at the master and event -> `copy` at the slave.
//!
//! Run a bridge first, then:
//!
//!     cargo run --release -p tradebridge-net --example latency -- ws://127.0.0.1:8080/ea 2000 [GAP_US]
//!
//! `GAP_US` (default 0) pauses that long after each event's copy arrives, so
//! the bridge goes idle between events as under a light real load (it shows
//! how fast an idle bridge wakes).
//!
//! Not a load test (one event at a time, so no coordinated omission to
//! correct); the load test harness lives in loadtest/.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tradebridge_core::protocol::{self, Message};
use tungstenite::{Message as WsMessage, WebSocket};

/// Events sent before measuring, so caches, allocators and the journal's
/// first segment are warm.
const WARM_UP_PAIRS: u64 = 100;

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let url = arguments.first().cloned().unwrap_or_else(|| "ws://127.0.0.1:8080/ea".to_string());
    let pairs: u64 = arguments.get(1).and_then(|text| text.parse().ok()).unwrap_or(2_000);
    let gap = Duration::from_micros(arguments.get(2).and_then(|text| text.parse().ok()).unwrap_or(0));
    let mut slave = connect(&url, r#"{"t":"hello","v":1,"key":"demo-slave-1","login":200001,"role":"slave","server":"Demo-Broker-A","last_seq":0}"#);
    let slave_welcome = receive(&mut slave);
    let Message::Welcome(_) = slave_welcome else { panic!("slave not welcomed: {slave_welcome:?}") };
    send(
        &mut slave,
        r#"{"t":"state","balance":10000.0,"equity":10000.0,"currency":"USD","positions":[],"symbols":[{"name":"EURUSD","min":0.01,"max":100.0,"step":0.01,"digits":5,"contract":100000.0}]}"#,
    );
    let mut master = connect(&url, r#"{"t":"hello","v":1,"key":"demo-master-1","login":100001,"role":"master","server":"Demo-Broker-A"}"#);
    let Message::Welcome(welcome) = receive(&mut master) else { panic!("master not welcomed") };
    // The journal may hold earlier runs: continue above its seq, with new
    // position ids (closed ones are remembered and never reopened).
    let mut seq = welcome.ack_seq;
    let mut to_ack = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut to_copy = to_ack.clone();
    for pair in 0..WARM_UP_PAIRS + pairs {
        for kind in ["open", "close"] {
            seq += 1;
            let pos = 1_000_000 + seq - u64::from(kind == "close");
            let event = format!(
                r#"{{"t":"event","seq":{seq},"kind":"{kind}","pos":{pos},"symbol":"EURUSD","side":"buy","volume":0.1,"price":1.08123,"remaining":0}}"#
            );
            let started = Instant::now();
            send(&mut master, &event);
            let ack = receive(&mut master);
            let ack_us = started.elapsed().as_micros() as u64;
            assert!(matches!(ack, Message::Ack(ref ack) if ack.seq == seq), "expected ack {seq}, got {ack:?}");
            let copy = receive(&mut slave);
            let copy_us = started.elapsed().as_micros() as u64;
            assert!(matches!(copy, Message::Copy(_)), "expected a copy, got {copy:?}");
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
            if pair >= WARM_UP_PAIRS {
                let _ = to_ack.record(ack_us.max(1));
                let _ = to_copy.record(copy_us.max(1));
            }
        }
    }
    print_percentiles("event -> ack (master)", &to_ack);
    print_percentiles("event -> copy (slave)", &to_copy);
}

fn connect(url: &str, hello: &str) -> WebSocket<TcpStream> {
    let address = url.trim_start_matches("ws://").split('/').next().expect("host:port in the url");
    let stream = TcpStream::connect(address).expect("connect to the bridge");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let (mut socket, _) = tungstenite::client::client(url, stream).expect("websocket upgrade");
    send(&mut socket, hello);
    socket
}

fn send(socket: &mut WebSocket<TcpStream>, text: &str) {
    socket.send(WsMessage::text(text.to_string())).expect("send");
}

/// The next protocol message, skipping control frames.
fn receive(socket: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match socket.read().expect("read within 10 s") {
            WsMessage::Text(text) => return protocol::parse(text.as_bytes()).expect("bridge JSON"),
            WsMessage::Close(frame) => panic!("closed by the bridge: {frame:?}"),
            _ => continue,
        }
    }
}

fn print_percentiles(label: &str, histogram: &Histogram<u64>) {
    println!(
        "{label}: n={} p50={} us p90={} us p99={} us p99.9={} us max={} us",
        histogram.len(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.9),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
}
