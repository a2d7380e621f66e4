//! The metrics endpoint of the real binary over a real socket.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{http_get, open_event_text, Bridge, SLAVE_KEY, SLAVE_LOGIN};
use tradebridge_core::protocol::{Ack, Message};

#[test]
fn metrics_endpoint_reports_counters_and_stage_latencies() {
    // Shows: GET /metrics answers Prometheus text with the journaled event and copy counts and a latency count per stage; other paths get 404.
    let mut bridge = Bridge::start(&[("metrics_listen", "\"127.0.0.1:0\"")]);
    let address = bridge.read_metrics_address();
    let (mut slave, _) = bridge.login_as(SLAVE_LOGIN, SLAVE_KEY, "slave", 0);
    let (mut master, _) = bridge.login("master", 0);
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    master.send(&open_event_text(1, 9001));
    assert_eq!(master.recv(), Message::Ack(Ack { seq: 1 }));
    let Message::Copy(copy) = slave.recv() else { panic!("expected the copy") };
    slave.send(&format!(r#"{{"t":"result","seq":{},"status":"filled","ticket":1,"price":1.1,"volume":0.2,"error":0,"msg":"","exec_ms":1}}"#, copy.seq));
    // The result is timed when its frame is read; a ping behind it on the
    // same connection is answered only after that.
    slave.send(r#"{"t":"ping"}"#);
    assert_eq!(slave.recv(), Message::Pong);
    let response = http_get(&address, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    for expected in [
        "tradebridge_events_journaled_total 1\n",
        "tradebridge_events_duplicate_total 1\n",
        "tradebridge_copies_sent_total 1\n",
        "tradebridge_connections 2\n",
        // The test bridge runs with the default 64 MiB segments and 4 GiB bound.
        "tradebridge_journal_bytes 67108864\n",
        "tradebridge_journal_bytes_max 4294967296\n",
        "tradebridge_latency_seconds_count{stage=\"frame_to_routed\"} 1\n",
        "tradebridge_latency_seconds_count{stage=\"event_to_durable\"} 1\n",
        "tradebridge_latency_seconds_count{stage=\"routed_to_shard\"} 1\n",
        "tradebridge_latency_seconds_count{stage=\"routed_to_written\"} 1\n",
        "tradebridge_latency_seconds_count{stage=\"event_to_copy_sent\"} 1\n",
        "tradebridge_latency_seconds_count{stage=\"copy_to_result\"} 1\n",
    ] {
        assert!(response.contains(expected), "missing {expected:?} in\n{response}");
    }
    assert!(http_get(&address, "/other").starts_with("HTTP/1.1 404"));
    // At shutdown every stage's histogram is written as an .hgrm file beside the journal.
    bridge.terminate();
    assert_eq!(bridge.wait_exit(Duration::from_secs(10)), Some(0));
    let histograms = bridge.journal_directory().with_file_name("histograms");
    for (stage, count) in [("frame_to_routed", 1), ("event_to_durable", 1), ("routed_to_shard", 1), ("routed_to_written", 1), ("event_to_copy_sent", 1), ("copy_to_result", 1)] {
        let path = histograms.join(format!("{stage}.hgrm"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert!(text.starts_with("#[Values in microseconds]\n"), "{}:\n{text}", path.display());
        let total = format!("Total count    = {count:12}]");
        assert!(text.contains(&total), "{} lacks {total:?}:\n{text}", path.display());
    }
}

#[test]
fn a_client_sending_a_byte_at_a_time_is_cut_off() {
    // Shows: the endpoint gives a whole request 2 s (REQUEST_TIMEOUT_MS), not 2 s per read: a client dripping one byte every 300 ms is disconnected long before its 30 bytes (9 s) are sent.
    let mut bridge = Bridge::start(&[("metrics_listen", "\"127.0.0.1:0\"")]);
    let address = bridge.read_metrics_address();
    let mut stream = TcpStream::connect(&address).expect("connect to metrics");
    stream.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let started = std::time::Instant::now();
    let mut cut_off = false;
    for byte in b"GET /metrics HTTP/1.1\r\nHost: x".iter().take(30) {
        if stream.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        // Each read waits 300 ms (the drip's pace): the server's close shows
        // as end of file or a reset, silence as a timeout.
        let mut buffer = [0u8; 64];
        match stream.read(&mut buffer) {
            Ok(0) => {
                cut_off = true;
                break;
            }
            Err(error) if !matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                cut_off = true;
                break;
            }
            _ => {}
        }
    }
    assert!(cut_off, "a client dripping one byte every 300 ms was served for {:?} without being cut off", started.elapsed());
}

#[test]
fn a_stalled_client_does_not_hold_up_other_scrapes() {
    // Shows: with three clients connected and silent (each holds a worker for up to 2 s), a fourth GET /metrics is still answered at once, well inside the 2 s a stalled client may hold its worker; with one worker it would wait for the first stall to time out.
    let mut bridge = Bridge::start(&[("metrics_listen", "\"127.0.0.1:0\"")]);
    let address = bridge.read_metrics_address();
    let stalled: Vec<TcpStream> = (0..tradebridge_net::metrics::WORKERS - 1).map(|_| TcpStream::connect(&address).expect("connect a stalled client")).collect();
    // Let the workers take the stalled connections first.
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let response = http_get(&address, "/metrics");
    let took = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(took < Duration::from_millis(1_000), "a scrape behind {} stalled clients took {took:?}", stalled.len());
    drop(stalled);
}
