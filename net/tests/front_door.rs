//! The front door under a flood, on real sockets: 5,000 connections that
//! never send a byte and 200 that send their upgrade request one byte a
//! second, each flood from one address of its own (127.0.0.2, 127.0.0.3),
//! while 20 EAs (10 masters, 10 slaves) log in from 127.0.0.1 and trade.
//! The EAs are welcomed within 1 s and lose no copy; every flood connection
//! is refused at accept or closed by `hello_timeout_ms`; the bridge's
//! memory stays bounded. Also: a `hello` above `hello_frame_bytes_max` is
//! refused (1009) where the same frame after `welcome` is not.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{connect_from, expect_copy, hello_text, http_get, metric, open_event_text, sha256_hex, temp_directory, Bridge, Client, STATE_TEXT};
use tradebridge_core::protocol::Message;

const SERVER: &str = "Flood-Server";
const MASTERS: u64 = 10;
const EVENTS_PER_MASTER: u64 = 20;
const HELLO_TIMEOUT_MS: u64 = 2_000;
const SILENT_FLOOD: usize = 5_000;
const SLOW_FLOOD: usize = 200;

fn master_login(index: u64) -> u64 {
    300_001 + index
}

fn slave_login(index: u64) -> u64 {
    400_001 + index
}

fn key_of(login: u64) -> String {
    format!("front-door-test-key-{login}-0123456789abcdef")
}

/// A bridge with 10 masters, each followed 1:1 by a slave.
fn start_bridge(extra_server: &str) -> Bridge {
    let directory = temp_directory("front-door");
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\nhello_timeout_ms = {HELLO_TIMEOUT_MS}\nhb_ms = 5000\njournal_sync = \"group\"\n{extra_server}\n",
        directory.join("journal").display()
    );
    for index in 0..MASTERS {
        for (login, role) in [(master_login(index), "master"), (slave_login(index), "slave")] {
            let hash = sha256_hex(&key_of(login));
            text.push_str(&format!("\n[[account]]\nlogin = {login}\nserver = \"{SERVER}\"\nrole = \"{role}\"\nkey_sha256 = \"{hash}\"\n"));
        }
        text.push_str(&format!("\n[[follow]]\nslave = {}\nmaster = {}\nlot = {{ mode = \"multiplier\", value = 1.0 }}\n", slave_login(index), master_login(index)));
    }
    let config_path = directory.join("tradebridge.toml");
    std::fs::write(&config_path, text).expect("write config");
    Bridge::start_with_config_file(directory, config_path)
}

/// True once the bridge has closed (or reset, or refused) the connection.
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 64];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) if error.kind() == ErrorKind::WouldBlock => false,
        Err(error) if error.kind() == ErrorKind::NotConnected => false,
        Err(_) => true,
    }
}

/// The bridge's resident memory, in KiB (VmRSS), and its peak (VmHWM).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the bridge's status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|line| line.starts_with(name)).expect("field");
        line.split_whitespace().nth(1).expect("value").parse().expect("number")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A flood: connects `count` sockets from `source`, then, until every one
/// is closed by the bridge or `patience` passes, optionally sends the next
/// byte of an upgrade request on each every second. Returns how many were
/// closed and the longest a closed one stayed open (ms).
fn flood(source: [u8; 4], target: SocketAddr, count: usize, trickle: bool, patience: Duration) -> (usize, usize, u64) {
    let request = format!("GET /ea HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    let started = Instant::now();
    let mut sockets: Vec<(TcpStream, Instant, bool)> = Vec::with_capacity(count);
    let mut refused_at_connect = 0;
    for index in 0..count {
        match connect_from(source, target, true) {
            Ok(stream) => sockets.push((stream, Instant::now(), false)),
            Err(_) => refused_at_connect += 1,
        }
        if index % 500 == 499 {
            // Lets the accept loop keep up, so the kernel's backlog never
            // drops a SYN (whose retry would come seconds later).
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut longest_open_ms = 0u64;
    let mut sent = 0usize;
    let mut next_byte_at = Instant::now();
    while started.elapsed() < patience {
        let mut open = 0;
        for (stream, opened, closed) in sockets.iter_mut().filter(|(_, _, closed)| !*closed) {
            if closed_by_peer(stream) {
                *closed = true;
                longest_open_ms = longest_open_ms.max(opened.elapsed().as_millis() as u64);
            } else {
                open += 1;
            }
        }
        if open == 0 {
            break;
        }
        if trickle && Instant::now() >= next_byte_at && sent < request.len() {
            for (stream, _, _) in sockets.iter_mut().filter(|(_, _, closed)| !*closed) {
                let _ = stream.write(&request.as_bytes()[sent..sent + 1]);
            }
            sent += 1;
            next_byte_at += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed = sockets.iter().filter(|(_, _, closed)| *closed).count();
    (closed + refused_at_connect, count, longest_open_ms)
}

#[test]
fn a_flood_of_silent_and_slow_connections_from_one_address_does_not_keep_the_eas_out() {
    // Shows: with the defaults (pending 1024 and 32 per address, 256 open per address, 64 new a second per address), 5,000 silent and 200 one-byte-a-second connections from their own addresses are all refused or closed within hello_timeout_ms (plus scheduling), while 20 EAs from another address are each welcomed within 1 s and every copy arrives; the refusals are counted per reason; the bridge's peak memory stays under 64 MiB above its start.
    let mut bridge = start_bridge("");
    let metrics_address = bridge.read_metrics_address();
    let pid = bridge.pid();
    let (rss_before_kib, _) = memory_kib(pid);
    let target = bridge.address;
    let peak_rss_kib = Arc::new(AtomicU64::new(rss_before_kib));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak_rss_kib), Arc::clone(&sampling));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(memory_kib(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let patience = Duration::from_millis(HELLO_TIMEOUT_MS + 6_000);
    let silent = std::thread::spawn(move || flood([127, 0, 0, 2], target, SILENT_FLOOD, false, patience));
    let slow = std::thread::spawn(move || flood([127, 0, 0, 3], target, SLOW_FLOOD, true, patience));
    std::thread::sleep(Duration::from_millis(200));

    // The EAs, while the floods are on.
    let login = |login: u64, role: &str| -> (Client, u64) {
        let started = Instant::now();
        let mut client = bridge.connect();
        client.send(&hello_text(&key_of(login), login, SERVER, role, 0));
        let welcome = client.recv();
        assert!(matches!(welcome, Message::Welcome(_)), "{login}: expected welcome, got {welcome:?}");
        (client, started.elapsed().as_millis() as u64)
    };
    let mut slaves = Vec::new();
    let mut masters = Vec::new();
    let mut welcome_ms_max = 0;
    for index in 0..MASTERS {
        let (mut slave, slave_ms) = login(slave_login(index), "slave");
        slave.send(STATE_TEXT);
        slave.expect_alive_keeping();
        let (master, master_ms) = login(master_login(index), "master");
        welcome_ms_max = welcome_ms_max.max(slave_ms).max(master_ms);
        slaves.push(slave);
        masters.push(master);
    }
    for seq in 1..=EVENTS_PER_MASTER {
        for master in &mut masters {
            master.send(&open_event_text(seq, 100 + seq));
        }
        for master in &mut masters {
            assert!(matches!(master.recv(), Message::Ack(ack) if ack.seq == seq));
        }
    }
    for (index, slave) in slaves.iter_mut().enumerate() {
        for seq in 1..=EVENTS_PER_MASTER {
            let copy = expect_copy(slave);
            assert_eq!((copy.seq, copy.pos), (seq, 100 + seq), "slave {index}: every copy, in order");
        }
    }
    assert!(welcome_ms_max < 1_000, "every EA welcomed within 1 s during the flood: the slowest took {welcome_ms_max} ms");

    let (silent_closed, silent_count, silent_longest_ms) = silent.join().expect("silent flood");
    let (slow_closed, slow_count, slow_longest_ms) = slow.join().expect("slow flood");
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let (_, peak_hwm_kib) = memory_kib(pid);
    let peak_kib = peak_rss_kib.load(Ordering::Relaxed).max(peak_hwm_kib);
    let metrics = http_get(&metrics_address, "/metrics");
    let refused = |reason: &str| metric(&metrics, &format!("tradebridge_connections_refused_total{{reason=\"{reason}\"}}")) as u64;
    println!(
        "front door flood: EAs welcomed within {welcome_ms_max} ms (slowest of 20); silent flood {silent_closed}/{silent_count} refused or closed, longest open {silent_longest_ms} ms; slow flood {slow_closed}/{slow_count}, longest open {slow_longest_ms} ms; refused at accept: per-address pending {}, per-address rate {}, per-address concurrent {}, pending {}; bridge RSS {rss_before_kib} KiB before, peak {peak_kib} KiB",
        refused("pending_connections_per_address_max"),
        refused("new_connections_per_address_per_second"),
        refused("connections_per_address_max"),
        refused("pending_connections_max"),
    );
    assert_eq!(silent_closed, silent_count, "every silent connection refused or closed");
    assert_eq!(slow_closed, slow_count, "every slow connection refused or closed");
    // Closed by the upgrade's deadline (hello_timeout_ms), with scheduling slack.
    assert!(silent_longest_ms <= HELLO_TIMEOUT_MS + 1_500, "a silent connection stayed open {silent_longest_ms} ms");
    assert!(slow_longest_ms <= HELLO_TIMEOUT_MS + 1_500, "a slow connection stayed open {slow_longest_ms} ms");
    let per_address = refused("pending_connections_per_address_max") + refused("new_connections_per_address_per_second") + refused("connections_per_address_max");
    assert!(per_address > 4_000, "{metrics}");
    assert!(peak_kib < rss_before_kib + 64 * 1024, "bridge memory {rss_before_kib} KiB -> peak {peak_kib} KiB");
    assert_eq!(metric(&metrics, "tradebridge_connections_pending") as u64, 0, "nothing pending once the floods ended");
}

#[test]
fn a_hello_above_hello_frame_bytes_max_is_refused_and_the_session_limit_applies_after_welcome() {
    // Shows: before welcome a frame above hello_frame_bytes_max (1 KiB here) closes with 1009; after welcome a frame of the same size is within frame_bytes_max and answered.
    let bridge = start_bridge("hello_frame_bytes_max = 1024");
    let padding = "x".repeat(1_200);
    let mut client = bridge.connect();
    let login = master_login(0);
    let big_hello = hello_text(&key_of(login), login, SERVER, "master", 0).replace("\"ea\":\"test/1.0\"", &format!("\"ea\":\"{padding}\""));
    assert!(big_hello.len() > 1_024);
    client.send(&big_hello);
    client.expect_close(1009);

    let mut client = bridge.connect();
    client.send(&hello_text(&key_of(login), login, SERVER, "master", 0));
    assert!(matches!(client.recv(), Message::Welcome(_)));
    let big_ping = format!("{{\"t\":\"ping\",\"pad\":\"{padding}\"}}");
    assert!(big_ping.len() > 1_024);
    client.send(&big_ping);
    assert_eq!(client.recv(), Message::Pong, "after welcome frame_bytes_max applies");
}

#[test]
fn failed_logins_are_answered_later_each_time_and_then_block_the_address_only() {
    // Shows: wrong keys for three logins from 127.0.0.2 are refused (4001) later each time (the 2nd after >= 100 ms, the 3rd after >= 200 ms), the 3rd blocks that address so its next connection is closed at accept (within 0.5 s, not by the 2 s hello timeout), while an EA from 127.0.0.1 logs in meanwhile with its right key; counted by reason.
    let mut bridge = start_bridge("auth_block_after_failures = 3\nauth_delay_ms_max = 300\nauth_block_seconds = 60");
    let metrics_address = bridge.read_metrics_address();
    let login = master_login(0);
    let mut answered_ms = Vec::new();
    // Three logins: one terminal retrying one stale key is only delayed,
    // never blocked (it would block every account on its VPS).
    for index in 0..3 {
        let mut client = bridge.connect_from([127, 0, 0, 2]);
        let started = Instant::now();
        client.send(&hello_text("not-the-key-0123456789abcdef", master_login(index), SERVER, "master", 0));
        client.expect_error(tradebridge_core::protocol::ErrorCode::Unauthorized);
        answered_ms.push(started.elapsed().as_millis() as u64);
        client.expect_close(4001);
    }
    assert!(answered_ms[1] >= 100 && answered_ms[2] >= 200, "held back longer each time: {answered_ms:?}");
    let mut blocked = connect_from([127, 0, 0, 2], bridge.address, true).expect("connect");
    // Well inside hello_timeout_ms (2 s), which would close it anyway.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !closed_by_peer(&mut blocked) {
        assert!(Instant::now() < deadline, "a blocked address's connection is closed at accept");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut ea = bridge.connect();
    ea.send(&hello_text(&key_of(login), login, SERVER, "master", 0));
    assert!(matches!(ea.recv(), Message::Welcome(_)), "another address, the right key: welcomed");
    let metrics = http_get(&metrics_address, "/metrics");
    assert_eq!(metric(&metrics, "tradebridge_auth_failures_total{reason=\"wrong_key\"}"), 3.0, "{metrics}");
    assert!(metric(&metrics, "tradebridge_connections_refused_total{reason=\"auth_blocked\"}") >= 1.0, "{metrics}");
}
