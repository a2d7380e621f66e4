//! The bridge's own WebSocket layer (net/src/ws.rs) against raw bytes on a
//! real socket: what a client library may send that the other tests' client
//! never does (early data, fragments, unmasked or broken frames, a close of
//! its own), and upgrade requests that are not valid.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{hello_text, Bridge, MASTER_KEY, MASTER_LOGIN, SERVER_NAME};
use tungstenite::protocol::Role;
use tungstenite::Message as WsMessage;

/// A valid upgrade request for `/ea`.
const UPGRADE: &str = "GET /ea HTTP/1.1\r\nHost: bridge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A masked client frame.
fn client_frame(last: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![if last { 0x80 | opcode } else { opcode }];
    if payload.len() < 126 {
        frame.push(0x80 | payload.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(byte, key)| byte ^ key));
    frame
}

/// Connects and writes `bytes` in one write; returns the stream.
fn raw_connect(bridge: &Bridge, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(bridge.address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(bytes).expect("write");
    stream
}

/// Reads the HTTP response head, byte by byte so no frame after it is taken.
fn read_response_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).expect("read the response") == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an ASCII response head")
}

/// Upgrades with `after` sent in the same write, and returns a tungstenite
/// client on the stream plus a raw clone of it for hand-made frames.
fn upgrade_with(bridge: &Bridge, after: &[u8]) -> (tungstenite::WebSocket<TcpStream>, TcpStream) {
    let mut request = UPGRADE.as_bytes().to_vec();
    request.extend_from_slice(after);
    let mut stream = raw_connect(bridge, &request);
    let head = read_response_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455's example key: {head}");
    let raw = stream.try_clone().expect("clone");
    (tungstenite::WebSocket::from_raw_socket(stream, Role::Client, None), raw)
}

/// The next frame that is not a ping.
fn next_frame(socket: &mut tungstenite::WebSocket<TcpStream>) -> WsMessage {
    loop {
        match socket.read().expect("a frame") {
            WsMessage::Ping(_) => continue,
            other => return other,
        }
    }
}

/// Reads the bridge's `welcome` (pings skipped).
fn expect_welcome(socket: &mut tungstenite::WebSocket<TcpStream>) {
    match next_frame(socket) {
        WsMessage::Text(text) => assert!(text.as_str().contains("\"welcome\""), "{text}"),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// The close code the bridge sent next (data frames before it skipped).
fn close_code(socket: &mut tungstenite::WebSocket<TcpStream>) -> Option<u16> {
    loop {
        match socket.read() {
            Ok(WsMessage::Close(frame)) => return frame.map(|frame| u16::from(frame.code)),
            Ok(_) => continue,
            Err(error) => panic!("expected a close frame, got {error}"),
        }
    }
}

fn hello() -> String {
    hello_text(MASTER_KEY, MASTER_LOGIN, SERVER_NAME, "master", 0)
}

#[test]
fn early_fragmented_hello_with_a_ping_between_gets_pong_and_welcome() {
    // Shows: a hello sent with the upgrade request in one write, in three fragments with a ping between them, is assembled; the ping is answered first.
    let bridge = Bridge::start(&[]);
    let text = hello();
    let (first, rest) = text.as_bytes().split_at(10);
    let (middle, last) = rest.split_at(10);
    let mut frames = client_frame(false, 0x1, first);
    frames.extend(client_frame(true, 0x9, b"hb"));
    frames.extend(client_frame(false, 0x0, middle));
    frames.extend(client_frame(true, 0x0, last));
    let (mut socket, _raw) = upgrade_with(&bridge, &frames);
    assert_eq!(socket.read().expect("pong"), WsMessage::Pong(b"hb".to_vec().into()));
    expect_welcome(&mut socket);
}

#[test]
fn unmasked_frame_closes_1002() {
    // Shows: a client frame without a mask breaks RFC 6455 and closes with 1002.
    let bridge = Bridge::start(&[]);
    let (mut socket, mut raw) = upgrade_with(&bridge, &client_frame(true, 0x1, hello().as_bytes()));
    expect_welcome(&mut socket);
    let mut unmasked = vec![0x81, 2];
    unmasked.extend_from_slice(b"{}");
    raw.write_all(&unmasked).expect("write");
    assert_eq!(close_code(&mut socket), Some(1002));
}

#[test]
fn text_that_is_not_utf8_closes_1007() {
    // Shows: a text frame whose payload is not UTF-8 closes with 1007.
    let bridge = Bridge::start(&[]);
    let (mut socket, mut raw) = upgrade_with(&bridge, &client_frame(true, 0x1, hello().as_bytes()));
    expect_welcome(&mut socket);
    raw.write_all(&client_frame(true, 0x1, &[b'{', 0xff, b'}'])).expect("write");
    assert_eq!(close_code(&mut socket), Some(1007));
}

#[test]
fn peer_close_is_answered_with_its_code() {
    // Shows: a client's close frame is answered with a close frame carrying the same code, then the bridge closes the socket.
    let bridge = Bridge::start(&[]);
    let (mut socket, mut raw) = upgrade_with(&bridge, &client_frame(true, 0x1, hello().as_bytes()));
    expect_welcome(&mut socket);
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"done");
    raw.write_all(&client_frame(true, 0x8, &payload)).expect("write");
    assert_eq!(close_code(&mut socket), Some(4000));
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).expect("the bridge closes the socket after the handshake");
}

#[test]
fn invalid_upgrades_get_their_http_status() {
    // Shows: no version 13 gets 426 naming the version, a POST 400, a header above 8 KiB 431; none is upgraded.
    let bridge = Bridge::start(&[]);
    let status_of = |request: &[u8]| {
        let mut stream = raw_connect(&bridge, request);
        read_response_head(&mut stream)
    };
    let old_version = status_of(UPGRADE.replace("Version: 13", "Version: 8").as_bytes());
    assert!(old_version.starts_with("HTTP/1.1 426") && old_version.contains("Sec-WebSocket-Version: 13"), "{old_version}");
    assert!(status_of(UPGRADE.replace("GET", "POST").as_bytes()).starts_with("HTTP/1.1 400"));
    let padding = format!("X-Padding: {}\r\n", "p".repeat(9 * 1024));
    let huge = UPGRADE.replace("Host: bridge\r\n", &format!("Host: bridge\r\n{padding}"));
    assert!(status_of(huge.as_bytes()).starts_with("HTTP/1.1 431"));
}

#[test]
fn proxied_upgrade_offering_extensions_and_subprotocols_gets_plain_websocket() {
    // Shows: an upgrade as a client behind a proxy may send it (absolute-form target, lower-case names, Connection on two lines) offering permessage-deflate and subprotocols is accepted with neither, and the session works.
    let bridge = Bridge::start(&[]);
    let request = "GET ws://bridge.example/ea HTTP/1.1\r\nhost: bridge.example\r\nconnection: keep-alive\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-extensions: permessage-deflate; client_max_window_bits\r\nsec-websocket-protocol: tradebridge, json\r\n\r\n";
    let mut stream = raw_connect(&bridge, request.as_bytes());
    let head = read_response_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("sec-websocket-extensions") && !lower.contains("sec-websocket-protocol"), "nothing offered is agreed: {head}");
    stream.write_all(&client_frame(true, 0x1, hello().as_bytes())).expect("write hello");
    let mut socket = tungstenite::WebSocket::from_raw_socket(stream, Role::Client, None);
    expect_welcome(&mut socket);
}

#[test]
fn oversize_frame_is_closed_1009_without_a_reset() {
    // Shows: after a frame far above frame_bytes_max, the peer reads close 1009 and then the end of the stream, not a reset (a reset can make a peer drop the close frame unread, as Windows does).
    let bridge = Bridge::start(&[]);
    let (mut socket, mut raw) = upgrade_with(&bridge, &client_frame(true, 0x1, hello().as_bytes()));
    expect_welcome(&mut socket);
    let payload_bytes: u64 = 256 * 1024;
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&payload_bytes.to_be_bytes());
    frame.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    frame.resize(frame.len() + payload_bytes as usize, b'x');
    // The bridge stops parsing at the header; the write may fail once it closes.
    let _ = raw.write_all(&frame);
    assert_eq!(close_code(&mut socket), Some(1009));
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).expect("the end of the stream, not a reset");
}

#[test]
fn an_upgrade_sent_a_byte_at_a_time_is_accepted() {
    // Shows: a request trickled one byte per write (each a TCP segment, no delay) is still read whole and upgraded, and its hello answered.
    let bridge = Bridge::start(&[]);
    let mut stream = TcpStream::connect(bridge.address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    for byte in UPGRADE.as_bytes() {
        stream.write_all(std::slice::from_ref(byte)).expect("write a byte");
    }
    let head = read_response_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.write_all(&client_frame(true, 0x1, hello().as_bytes())).expect("write hello");
    let mut socket = tungstenite::WebSocket::from_raw_socket(stream, Role::Client, None);
    expect_welcome(&mut socket);
}
