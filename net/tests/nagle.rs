//! A terminal whose socket keeps Nagle's algorithm on (as one that cannot set
//! TCP_NODELAY does) must never wait for the bridge's delayed ACK. Such a
//! client holds a small frame back while an earlier one is unacknowledged:
//! when it answers a WebSocket ping with a pong, its next event waits for the
//! bridge's ACK of the pong, which Linux delays by 40 ms when it has nothing
//! to send back. Real sockets, the real binary.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;
use tradebridge_core::protocol::Message;
use tungstenite::Message as WsMessage;

/// The shortest heartbeat the configuration allows: the most pings a run
/// of a few seconds can see.
const HB_MS: u64 = 500;

/// A round trip this long on loopback is a delayed-ACK stall (Linux's
/// shortest delayed ACK is 40 ms, counted from the pong, so an event sent
/// a few ms after it waits the rest); a healthy one takes under 1 ms.
const STALL_MS: u128 = 20;

/// Pause between a master's events: short, so an event held behind a pong
/// waits most of the delayed ACK.
const EVENT_GAP_MS: u64 = 2;

/// A master logged in over a socket with Nagle's algorithm on.
fn nagle_master(bridge: &Bridge) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(bridge.address).expect("tcp connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
    stream.set_nodelay(false).expect("Nagle on");
    let url = format!("ws://{}/ea", bridge.address);
    let (mut socket, _) = tungstenite::client::client(url, stream).unwrap_or_else(|_| panic!("websocket upgrade"));
    socket.send(WsMessage::text(hello_text(MASTER_KEY, MASTER_LOGIN, SERVER_NAME, "master", 0))).expect("send hello");
    match socket.read().expect("welcome") {
        WsMessage::Text(text) => assert!(text.contains("\"welcome\""), "expected welcome, got {text}"),
        other => panic!("expected welcome, got {other:?}"),
    }
    socket
}

#[test]
fn a_master_with_nagle_on_never_waits_for_a_delayed_ack() {
    // Shows that a master sending an event every 2 ms (after each ack) over a Nagle socket for eight heartbeats gets every ack back without a 40 ms stall, and that the bridge sends it no WebSocket ping (it speaks within hb_ms, so a ping would only make its pong hold up the next event). Before the fix, each heartbeat's ping stalled the next event by about 40 ms.
    let hb_ms = HB_MS.to_string();
    let bridge = Bridge::start(&[("hb_ms", &hb_ms), ("journal_sync", "\"os\""), ("shards", "1")]);
    let mut socket = nagle_master(&bridge);
    let started = Instant::now();
    let (mut round_trips, mut pings, mut seq) = (Vec::new(), 0u32, 0u64);
    while started.elapsed() < Duration::from_millis(8 * HB_MS) {
        seq += 1;
        let sent = Instant::now();
        socket.send(WsMessage::text(open_event_text(seq, 1_000 + seq))).expect("send event");
        loop {
            match socket.read().expect("the ack within the read timeout") {
                WsMessage::Text(text) => {
                    match tradebridge_core::protocol::parse(text.as_bytes()).expect("bridge JSON") {
                        Message::Ack(ack) if ack.seq == seq => break,
                        other => panic!("expected the ack of {seq}, got {other:?}"),
                    }
                }
                // tungstenite queues the pong and writes it before the next frame, as an EA's library would.
                WsMessage::Ping(_) => pings += 1,
                other => panic!("unexpected frame {other:?}"),
            }
        }
        round_trips.push(sent.elapsed().as_millis());
        std::thread::sleep(Duration::from_millis(EVENT_GAP_MS));
    }
    let stalled: Vec<u128> = round_trips.iter().copied().filter(|ms| *ms >= STALL_MS).collect();
    assert_eq!(pings, 0, "a master that speaks within hb_ms was sent WebSocket pings");
    // One slow round trip is allowed for a scheduling hiccup of a loaded test machine; the bug stalled one per heartbeat (eight here).
    assert!(stalled.len() <= 1, "{} of {} round trips stalled: {stalled:?} ms", stalled.len(), round_trips.len());
}

#[test]
fn a_silent_session_is_still_pinged_and_an_event_behind_its_pong_does_not_stall() {
    // Shows that a session silent for longer than hb_ms gets the WebSocket pings PROTOCOL.md promises, and that an event sent right behind the pong (Nagle on) is acked without waiting for a delayed ACK of the pong. (On loopback Linux acks at once after a silence longer than its retransmission timeout anyway, so this fails only if the bridge stops pinging or makes the event wait; the TCP_QUICKACK the bridge sets after a pong is for links whose timeout is longer than hb_ms.)
    let hb_ms = HB_MS.to_string();
    let bridge = Bridge::start(&[("hb_ms", &hb_ms), ("journal_sync", "\"os\""), ("shards", "1")]);
    let mut socket = nagle_master(&bridge);
    let mut round_trips = Vec::new();
    for seq in 1..=4u64 {
        // Silent until the bridge pings (within 2 x hb_ms: one heartbeat of silence, then the next tick).
        let waited = Instant::now();
        let message = socket.read().expect("a ping within the read timeout");
        assert!(matches!(message, WsMessage::Ping(_)), "expected a ping, got {message:?}");
        assert!(waited.elapsed() < Duration::from_millis(3 * HB_MS), "no ping for {:?}", waited.elapsed());
        // The pong is written first (queued by tungstenite), the event right behind it.
        let sent = Instant::now();
        socket.send(WsMessage::text(open_event_text(seq, 2_000 + seq))).expect("send event");
        loop {
            match socket.read().expect("the ack") {
                WsMessage::Text(text) if text.contains("\"ack\"") => break,
                WsMessage::Ping(_) => continue,
                other => panic!("expected the ack, got {other:?}"),
            }
        }
        round_trips.push(sent.elapsed().as_millis());
    }
    let stalled: Vec<u128> = round_trips.iter().copied().filter(|ms| *ms >= STALL_MS).collect();
    assert!(stalled.len() <= 1, "{} of {} round trips behind a pong stalled: {round_trips:?} ms", stalled.len(), round_trips.len());
}
