//! Test support: start the real `tradebridge` binary on a free port with a
//! temporary configuration and journal directory, and speak raw WebSocket to
//! it with tungstenite's blocking client.
//!
//! # Invariants
//! - Every bridge is a child process killed when its [`Bridge`] drops, and
//!   its temporary directory is removed then.
//! - Every blocking read has a timeout ([`READ_TIMEOUT`]), so a broken
//!   bridge fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tradebridge_core::protocol::{self, Copy, ErrorCode, Message};
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message as WsMessage, WebSocket};

/// Longest wait for any single frame; far above every timeout the test
/// configurations use, so only a broken bridge reaches it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The demo keys of deploy/tradebridge.example.toml, in clear, with the
/// hashes the test configuration stores.
pub const MASTER_LOGIN: u64 = 100001;
pub const MASTER_KEY: &str = "demo-master-1";
pub const SLAVE_LOGIN: u64 = 200001;
pub const SLAVE_KEY: &str = "demo-slave-1";
pub const SERVER_NAME: &str = "Demo-Broker-A";

/// Server settings every test starts from; a test appends its own keys
/// after them (TOML refuses a key twice, so it replaces by filtering).
pub const SERVER_DEFAULTS: &[(&str, &str)] = &[
    ("shards", "2"),
    ("hb_ms", "1000"),
    ("hello_timeout_ms", "2000"),
    ("frame_bytes_max", "16384"),
    ("bad_frames_max_per_minute", "10"),
    ("rate_limit_per_second", "1000"),
    ("rate_limit_burst", "1000"),
    ("journal_sync", "\"every_record\""),
    ("idle", "\"park\""),
];

pub const SLAVE2_LOGIN: u64 = 200002;
pub const SLAVE2_KEY: &str = "demo-slave-2";

/// Accounts and follows of the test bridge: slave 1 copies the master at 2x,
/// slave 2 at 0.5x; `{slave2_follow_extra}` is replaced by extra keys of
/// slave 2's follow (empty by default).
pub const ACCOUNTS: &str = r#"
[[account]]
login = 100001
server = "Demo-Broker-A"
role = "master"
key_sha256 = "027ab56e7d6dd58a1d2af792a0e893afbeadaa1b9978c57d8ffe4b05531a15aa"

[[account]]
login = 200001
server = "Demo-Broker-A"
role = "slave"
key_sha256 = "b9a5a2f553b362d6600a5461589956d2672870b866df579f20b9165ebb1293b2"

[[account]]
login = 200002
server = "Demo-Broker-A"
role = "slave"
key_sha256 = "5be9b1e9441e77b4709302c501b9608f5e852061d507d6cb71bbeb78a310de93"

[[follow]]
slave = 200001
master = 100001
lot = { mode = "multiplier", value = 2.0 }

[[follow]]
slave = 200002
master = 100001
lot = { mode = "multiplier", value = 0.5 }
{slave2_follow_extra}
"#;

/// A running bridge process.
pub struct Bridge {
    /// The child process; killed on drop.
    child: Child,
    /// The temporary directory with the configuration and journal.
    pub directory: PathBuf,
    /// Where the bridge listens.
    pub address: SocketAddr,
    /// The configuration file, for a restart on the same journal.
    config_path: PathBuf,
    /// False once a restart took the directory over.
    owns_directory: bool,
    /// The bridge's standard output, after the listening line.
    stdout: BufReader<std::process::ChildStdout>,
}

/// A fresh, empty temporary directory unique to this process and call.
pub fn temp_directory(label: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let directory = std::env::temp_dir().join(format!("tradebridge-test-{label}-{}-{number}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("temp directory");
    directory
}

impl Bridge {
    /// Starts a bridge with the default test settings, `overrides` replacing
    /// or adding `[server]` keys.
    pub fn start(overrides: &[(&str, &str)]) -> Bridge {
        Bridge::start_with_follow_extra(overrides, "")
    }

    /// Like [`Bridge::start`], with extra TOML lines in slave 2's follow.
    pub fn start_with_follow_extra(overrides: &[(&str, &str)], slave2_follow_extra: &str) -> Bridge {
        let directory = temp_directory("bridge");
        let mut server = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
        server.push_str(&format!("journal_dir = \"{}\"\n", directory.join("journal").display()));
        for (key, value) in SERVER_DEFAULTS.iter().filter(|(key, _)| !overrides.iter().any(|(other, _)| other == key)) {
            server.push_str(&format!("{key} = {value}\n"));
        }
        for (key, value) in overrides {
            server.push_str(&format!("{key} = {value}\n"));
        }
        let config_path = directory.join("tradebridge.toml");
        let accounts = ACCOUNTS.replace("{slave2_follow_extra}", slave2_follow_extra);
        std::fs::write(&config_path, format!("{server}{accounts}")).expect("write config");
        Bridge::start_with_config_file(directory, config_path)
    }

    /// Starts a bridge on a configuration file written by the caller into
    /// `directory` (which the bridge then owns and removes).
    pub fn start_with_config_file(directory: PathBuf, config_path: PathBuf) -> Bridge {
        Bridge::start_with_environment(directory, config_path, &[])
    }

    /// Like [`Bridge::start_with_config_file`], with environment variables
    /// added to the bridge's.
    pub fn start_with_environment(directory: PathBuf, config_path: PathBuf, environment: &[(&str, &str)]) -> Bridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tradebridge"))
            .envs(environment.iter().copied())
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tradebridge");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the listening line");
        let address = line
            .trim()
            .strip_prefix("tradebridge listening on ws://")
            .and_then(|rest| rest.strip_suffix("/ea"))
            .and_then(|address| address.parse().ok());
        let Some(address) = address else {
            let _ = child.kill();
            panic!("the bridge did not announce its address; it printed {line:?}");
        };
        Bridge { child, directory, address, config_path, owns_directory: true, stdout }
    }

    /// The next line the bridge prints on standard output.
    pub fn read_stdout_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read a line of the bridge's output");
        line
    }

    /// Sends SIGTERM (the graceful shutdown) to the bridge.
    pub fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `timeout` for the bridge to exit; its exit code, or
    /// `None` when it is still running (or died of a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the bridge with SIGKILL (no shutdown code runs) and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the bridge and starts a new one on the same configuration and
    /// journal directory (it may listen on another port).
    pub fn restart(self) -> Bridge {
        self.restart_with_environment(&[])
    }

    /// [`Bridge::restart`] with environment variables added.
    pub fn restart_with_environment(mut self, environment: &[(&str, &str)]) -> Bridge {
        self.kill();
        self.owns_directory = false;
        Bridge::start_with_environment(self.directory.clone(), self.config_path.clone(), environment)
    }

    /// The journal directory of this bridge.
    /// The bridge's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn journal_directory(&self) -> PathBuf {
        self.directory.join("journal")
    }

    /// Opens a WebSocket on `path`.
    pub fn connect_path(&self, path: &str) -> Result<Client, tungstenite::Error> {
        let stream = TcpStream::connect(self.address).expect("tcp connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        let url = format!("ws://{}{path}", self.address);
        tungstenite::client::client(url, stream)
            .map(|(socket, _)| Client { socket, pending: std::collections::VecDeque::new() })
            .map_err(|error| match error {
                tungstenite::HandshakeError::Failure(error) => error,
                tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
            })
    }

    /// The address of the bridge's metrics endpoint, from the line it prints
    /// after the listening line (with `metrics_listen` set).
    pub fn read_metrics_address(&mut self) -> String {
        let line = self.read_stdout_line();
        line.trim()
            .strip_prefix("tradebridge metrics on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("expected the metrics line, got {line:?}"))
            .to_string()
    }

    /// Opens a WebSocket on `/ea` from the IPv4 loopback address `source`
    /// (127.0.0.2, say: every 127/8 address is this machine's).
    pub fn connect_from(&self, source: [u8; 4]) -> Client {
        let stream = connect_from(source, self.address, false).unwrap_or_else(|error| panic!("connect from {source:?}: {error}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        let url = format!("ws://{}/ea", self.address);
        match tungstenite::client::client(url, stream) {
            Ok((socket, _)) => Client { socket, pending: std::collections::VecDeque::new() },
            Err(error) => panic!("websocket upgrade on /ea from {source:?}: {error}"),
        }
    }

    /// Opens a WebSocket on `/ea`.
    pub fn connect(&self) -> Client {
        self.connect_path("/ea").expect("websocket upgrade on /ea")
    }

    /// Connects and logs in as the test master or slave; returns the client
    /// and its `welcome`.
    pub fn login(&self, role: &str, last_seq: u64) -> (Client, Message) {
        let (login, key) = if role == "master" { (MASTER_LOGIN, MASTER_KEY) } else { (SLAVE_LOGIN, SLAVE_KEY) };
        self.login_as(login, key, role, last_seq)
    }

    /// Connects and logs in as any configured account.
    pub fn login_as(&self, login: u64, key: &str, role: &str, last_seq: u64) -> (Client, Message) {
        let mut client = self.connect();
        client.send(&hello_text(key, login, SERVER_NAME, role, last_seq));
        let welcome = client.recv();
        assert!(matches!(welcome, Message::Welcome(_)), "expected welcome, got {welcome:?}");
        (client, welcome)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_directory {
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }
}

/// A TCP connection to `target` from the IPv4 address `source` (any port);
/// with `nonblocking`, the connect may still be in progress on return.
pub fn connect_from(source: [u8; 4], target: SocketAddr, nonblocking: bool) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd as _;
    let SocketAddr::V4(target) = target else { panic!("the test bridge listens on IPv4") };
    let flags = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain socket calls on a descriptor owned here (handed to the
    // TcpStream at once, which closes it on every path); the sockaddr
    // structs outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let mut local: libc::sockaddr_in = std::mem::zeroed();
        local.sin_family = libc::AF_INET as libc::sa_family_t;
        local.sin_addr.s_addr = u32::from_ne_bytes(source);
        if libc::bind(fd, std::ptr::addr_of!(local).cast(), length) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut remote: libc::sockaddr_in = std::mem::zeroed();
        remote.sin_family = libc::AF_INET as libc::sa_family_t;
        remote.sin_port = target.port().to_be();
        remote.sin_addr.s_addr = u32::from_ne_bytes(target.ip().octets());
        if libc::connect(fd, std::ptr::addr_of!(remote).cast(), length) != 0 {
            let error = std::io::Error::last_os_error();
            if !(nonblocking && error.raw_os_error() == Some(libc::EINPROGRESS)) {
                return Err(error);
            }
        }
        Ok(stream)
    }
}

/// SHA-256 of `text` in lowercase hex, as `key_sha256` holds an API key.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Logs a slave in, sends its state and waits for a pong, so the shard has
/// handed the state on before the test goes on.
pub fn slave_with_state(bridge: &Bridge, login: u64, key: &str, last_seq: u64) -> Client {
    let (mut slave, _) = bridge.login_as(login, key, "slave", last_seq);
    slave.send(STATE_TEXT);
    slave.expect_alive_keeping();
    slave
}

/// The next message, which must be a `copy`.
pub fn expect_copy(client: &mut Client) -> Copy {
    match client.recv() {
        Message::Copy(copy) => copy,
        other => panic!("expected a copy, got {other:?}"),
    }
}

/// A `hello` frame.
pub fn hello_text(key: &str, login: u64, server: &str, role: &str, last_seq: u64) -> String {
    format!(
        r#"{{"t":"hello","v":1,"key":"{key}","login":{login},"role":"{role}","platform":"mt5","server":"{server}","ea":"test/1.0","last_seq":{last_seq}}}"#
    )
}

/// A blocking WebSocket client.
pub struct Client {
    /// The socket, with a read timeout set.
    pub socket: WebSocket<TcpStream>,
    /// Messages read while waiting for a `pong` ([`Client::expect_alive_keeping`]),
    /// handed out first by [`Client::next`].
    pub pending: std::collections::VecDeque<Message>,
}

/// What the bridge sent next, ignoring its WebSocket pings.
#[derive(Debug)]
pub enum Received {
    Message(Message),
    Close(Option<u16>),
    Binary,
}

impl Client {
    /// Sends one text frame.
    pub fn send(&mut self, text: &str) {
        self.socket.send(WsMessage::text(text.to_string())).expect("send text frame");
    }

    /// The next data frame or close, skipping pings and pongs.
    pub fn next(&mut self) -> Received {
        if let Some(message) = self.pending.pop_front() {
            return Received::Message(message);
        }
        loop {
            match self.socket.read().expect("read a frame within the timeout") {
                WsMessage::Text(text) => {
                    let message = protocol::parse(text.as_bytes()).unwrap_or_else(|error| panic!("bridge sent bad JSON {text}: {error}"));
                    return Received::Message(message);
                }
                WsMessage::Close(frame) => return Received::Close(frame.map(|frame: CloseFrame| u16::from(frame.code))),
                WsMessage::Binary(_) => return Received::Binary,
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
            }
        }
    }

    /// The next message, which must not be a close.
    pub fn recv(&mut self) -> Message {
        match self.next() {
            Received::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Expects an `error` with `code`, then returns its text.
    pub fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv() {
            Message::Error(error) if error.code == code => error.msg,
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    /// Expects the bridge to close with `code`, within the read timeout.
    pub fn expect_close(&mut self, code: u16) {
        match self.next() {
            Received::Close(Some(received)) => assert_eq!(received, code, "close code"),
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    /// Sends `ping` and expects `pong` as the next message: the session is
    /// up and sent nothing else.
    pub fn expect_alive(&mut self) {
        self.send(r#"{"t":"ping"}"#);
        let reply = self.recv();
        assert_eq!(reply, Message::Pong);
    }

    /// Sends `ping` and waits for `pong`: the session is up. Messages the
    /// bridge sent before the pong (a copy the last frame caused, routed
    /// before the ping was read) are kept for [`Client::next`]; a close
    /// fails.
    pub fn expect_alive_keeping(&mut self) {
        self.send(r#"{"t":"ping"}"#);
        let mut before = std::collections::VecDeque::new();
        loop {
            match self.next() {
                Received::Message(Message::Pong) => break,
                Received::Message(message) => before.push_back(message),
                other => panic!("expected pong, got {other:?} after {before:?}"),
            }
        }
        before.extend(self.pending.drain(..));
        self.pending = before;
    }
}

/// Milliseconds since `start`.
pub fn elapsed_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// An `event` frame of kind `open` with sequence `seq` for position `pos`.
pub fn open_event_text(seq: u64, pos: u64) -> String {
    format!(
        r#"{{"t":"event","seq":{seq},"kind":"open","pos":{pos},"ticket":{pos},"symbol":"EURUSD","side":"buy","volume":0.1,"price":1.08123,"sl":0,"tp":0,"magic":0,"comment":"","time_ms":1732400000123}}"#
    )
}

/// A `state` frame with a 10 000 USD account, no positions, and EURUSD with
/// lot step 0.01.
pub const STATE_TEXT: &str = r#"{"t":"state","balance":10000.0,"equity":10000.0,"currency":"USD","positions":[],"symbols":[{"name":"EURUSD","min":0.01,"max":100.0,"step":0.01,"digits":5,"contract":100000.0}]}"#;

/// A `close` event of `volume` lots, leaving `remaining` open.
pub fn close_event_text(seq: u64, pos: u64, volume: f64, remaining: f64) -> String {
    format!(r#"{{"t":"event","seq":{seq},"kind":"close","pos":{pos},"volume":{volume},"remaining":{remaining},"price":1.081}}"#)
}

/// Sends one HTTP GET to `address` and returns the whole response.
pub fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = TcpStream::connect(address).expect("connect to metrics");
    stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

/// The value of the metric line `name <value>` in `text`.
pub fn metric(text: &str, name: &str) -> f64 {
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}
