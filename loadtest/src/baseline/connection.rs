//! One EA connection: the upgrade on `/ea`, `hello`, `welcome`, and the
//! session until it closes. Two tokio tasks per connection: this one reads
//! and decides, a writer task owns the socket's sending half and drains the
//! connection's bounded mpsc outbox (write coalescing: it flushes when the
//! outbox is empty or after [`BATCH_FRAMES_MAX`] frames).
//!
//! # Layout
//! - [`serve_connection`]: the whole life of one accepted TCP stream.
//! - `read_hello`, `authenticate`: the session start.
//! - `Session`: the loop after `welcome` and the handling of each frame.
//! - `write_loop`, `finish`: the writer task and the closing handshake.
//!
//! # Invariants
//! - The hub's mutex is never held across an `.await`.
//! - Every wait is bounded: the upgrade and `hello` by `hello_timeout_ms`,
//!   the session by 3 x `hb_ms` of silence, the closing by [`CLOSE_DRAIN_MS`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use tradebridge_core::protocol::{self, Ack, ErrorCode, ErrorMessage, Hello, Message, Role};

use super::hub::{Live, Outgoing, OUTBOX_MESSAGES_MAX};
use super::{close_code, wall_ms, Account, Shared};

type Socket = WebSocketStream<TcpStream>;
type Reader = SplitStream<Socket>;
type Writer = SplitSink<Socket, WsMessage>;

/// The WebSocket path of the EAs; any other path gets HTTP 404.
pub const EA_PATH: &str = "/ea";

/// How long a close waits for the writer and then for the peer's close
/// reply: enough for a distant peer, short enough that a silent one cannot
/// hold the connection (tradebridge's value).
pub const CLOSE_DRAIN_MS: u64 = 2_000;

/// Frames fed between two flushes; bounds how long a busy outbox delays a flush.
pub const BATCH_FRAMES_MAX: u32 = 64;

/// PROTOCOL.md: no frame from a peer for 3 x `hb_ms` closes it with 4008.
const HEARTBEATS_MISSED_MAX: u32 = 3;

/// PROTOCOL.md: bad frames are counted over a minute.
const BAD_FRAME_WINDOW: Duration = Duration::from_secs(60);

/// What handling a frame or a wake-up decided.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    /// Keep the connection.
    Continue,
    /// Send a close frame with this code and reason, then end.
    Close(u16, &'static str),
    /// The peer closed or the socket failed: end without a close frame.
    End,
}

/// Serves one accepted TCP stream until it closes.
pub async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let server = &shared.config.server;
    let frame_bytes_max = server.frame_bytes_max as usize;
    let websocket_config = WebSocketConfig::default().max_message_size(Some(frame_bytes_max)).max_frame_size(Some(frame_bytes_max));
    let hello_deadline = Instant::now() + Duration::from_millis(server.hello_timeout_ms);
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(websocket_config));
    let Ok(Ok(socket)) = timeout_at(hello_deadline, upgrade).await else {
        return;
    };
    let (sink, mut reader) = socket.split();
    let (outbox, outbox_receiver) = mpsc::channel(OUTBOX_MESSAGES_MAX);
    let writer = tokio::spawn(write_loop(sink, outbox_receiver));
    let flow = match read_hello(&mut reader, &outbox, &shared, &mut shutdown, hello_deadline).await {
        Ok(hello) => match authenticate(&shared, &hello) {
            Some(account) => run_session(&mut reader, &outbox, &shared, account, &hello, shutdown).await,
            None => refuse(&outbox, ErrorCode::Unauthorized, "login, server, role or key not accepted", close_code::UNAUTHORIZED).await,
        },
        Err(flow) => flow,
    };
    finish(reader, outbox, writer, flow).await;
}

/// The upgrade callback: only `/ea` is a WebSocket endpoint. The signature
/// is tungstenite's, so its large error type stays.
#[allow(clippy::result_large_err)]
fn check_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == EA_PATH {
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(Some(format!("no endpoint at this path; the EAs connect to {EA_PATH}\n")));
    *refusal.status_mut() = StatusCode::NOT_FOUND;
    Err(refusal)
}

/// Waits for the first frame until `deadline` and accepts it only as a
/// `hello` of version 1; otherwise answers `error` and closes 4002.
async fn read_hello(
    reader: &mut Reader,
    outbox: &mpsc::Sender<Outgoing>,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    deadline: Instant,
) -> Result<Hello, Flow> {
    loop {
        let frame = tokio::select! {
            frame = reader.next() => frame,
            _ = tokio::time::sleep_until(deadline) => {
                let message = format!("no `hello` within hello_timeout_ms = {} ms of the upgrade", shared.config.server.hello_timeout_ms);
                return Err(refuse(outbox, ErrorCode::BadMessage, &message, close_code::PROTOCOL_ERROR).await);
            }
            _ = shutdown.changed() => return Err(Flow::Close(close_code::GOING_AWAY, "the bridge is shutting down")),
        };
        let text = match frame {
            Some(Ok(WsMessage::Text(text))) => text,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
            other => return Err(flow_of_non_text(other)),
        };
        let problem = match protocol::parse(text.as_bytes()) {
            Ok(Message::Hello(hello)) if hello.version == 1 => return Ok(hello),
            Ok(Message::Hello(hello)) => (ErrorCode::BadMessage, format!("field `v`: expected 1, got {}", hello.version)),
            Ok(other) => (ErrorCode::BadMessage, format!("field `t`: expected \"hello\" as the first frame, got \"{}\"", other.type_name())),
            Err(error) => (error.code(), error.to_string()),
        };
        return Err(refuse(outbox, problem.0, &problem.1, close_code::PROTOCOL_ERROR).await);
    }
}

/// The flow for anything read that is not a text frame.
fn flow_of_non_text(frame: Option<Result<WsMessage, WsError>>) -> Flow {
    match frame {
        Some(Ok(WsMessage::Binary(_))) => Flow::Close(close_code::UNSUPPORTED_DATA, "binary frames are refused"),
        Some(Err(WsError::Capacity(_))) => Flow::Close(close_code::MESSAGE_TOO_BIG, "frame above frame_bytes_max"),
        _ => Flow::End,
    }
}

/// Queues `error` and says to close with `code`.
async fn refuse(outbox: &mpsc::Sender<Outgoing>, code: ErrorCode, message: &str, close: u16) -> Flow {
    let error = Message::Error(ErrorMessage { code, msg: message.to_string() });
    match outbox.send(Outgoing::Frame(error)).await {
        Ok(()) => Flow::Close(close, "refused"),
        Err(_) => Flow::End,
    }
}

/// The account the `hello` logs in to, when its key hashes to the stored
/// SHA-256 and its server and role match. The digests are compared with a
/// fold over every byte, so the time taken does not depend on where they differ.
fn authenticate<'shared>(shared: &'shared Shared, hello: &Hello) -> Option<&'shared Account> {
    let key_sha256: [u8; 32] = Sha256::digest(hello.key.as_bytes()).into();
    let account = shared.accounts.get(&hello.login)?;
    let difference = key_sha256.iter().zip(account.key_sha256.iter()).fold(0u8, |folded, (a, b)| folded | (a ^ b));
    (difference == 0 && account.server == hello.server && account.role == hello.role).then_some(account)
}

/// Registers the login with the hub (welcome and replay queued), serves the
/// session, and unregisters.
async fn run_session(
    reader: &mut Reader,
    outbox: &mpsc::Sender<Outgoing>,
    shared: &Shared,
    account: &Account,
    hello: &Hello,
    shutdown: watch::Receiver<bool>,
) -> Flow {
    let connection_id = shared.next_connection_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (close, close_requests) = watch::channel(0u16);
    let live = Live { connection_id, outbox: outbox.clone(), close };
    let session_id = format!("baseline-{connection_id}");
    let hb_ms = shared.config.server.hb_ms;
    shared.hub().attach(hello, live, session_id, hb_ms, wall_ms());
    let now = Instant::now();
    let mut session = Session { shared, account, outbox, bad_frames: VecDeque::new(), heard: now, pinged: now };
    let flow = session.serve(reader, close_requests, shutdown).await;
    shared.hub().detach(account.login, connection_id);
    flow
}

/// The state of one connection after `welcome`.
struct Session<'run> {
    /// Everything the connections share; fixed.
    shared: &'run Shared,
    /// The account that logged in; fixed.
    account: &'run Account,
    /// This connection's writer queue; fixed.
    outbox: &'run mpsc::Sender<Outgoing>,
    /// Instants of the bad frames of the last minute, oldest first; at most
    /// `bad_frames_max_per_minute` of them.
    bad_frames: VecDeque<Instant>,
    /// When the peer last sent a frame; decides close 4008.
    heard: Instant,
    /// When the bridge last sent a ping control frame; moves every `hb_ms`.
    pinged: Instant,
}

impl Session<'_> {
    /// The session loop: frames, close requests, shutdown and the heartbeat.
    async fn serve(&mut self, reader: &mut Reader, mut close_requests: watch::Receiver<u16>, mut shutdown: watch::Receiver<bool>) -> Flow {
        // Two ticks per heartbeat: pings on time, 4008 within half a heartbeat.
        let tick = Duration::from_millis((self.shared.config.server.hb_ms / 2).max(1));
        let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flow = tokio::select! {
                frame = reader.next() => self.on_frame(frame).await,
                changed = close_requests.changed() => match (changed, *close_requests.borrow_and_update()) {
                    (Ok(()), close_code::REPLACED) => Flow::Close(close_code::REPLACED, "the same login connected again"),
                    (Ok(()), close_code::TRY_AGAIN_LATER) => Flow::Close(close_code::TRY_AGAIN_LATER, "too slow: outbox full; reconnect"),
                    (Ok(()), code) => Flow::Close(code, "the bridge is shutting down"),
                    // The hub dropped this connection because its writer is gone.
                    (Err(_), _) => Flow::End,
                },
                _ = shutdown.changed() => Flow::Close(close_code::GOING_AWAY, "the bridge is shutting down"),
                _ = ticker.tick() => self.on_tick().await,
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
    }

    /// The heartbeat: close 4008 after 3 x `hb_ms` of silence, else ping every `hb_ms`.
    async fn on_tick(&mut self) -> Flow {
        let heartbeat = Duration::from_millis(self.shared.config.server.hb_ms);
        if self.heard.elapsed() >= heartbeat * HEARTBEATS_MISSED_MAX {
            return Flow::Close(close_code::HEARTBEAT_TIMEOUT, "no frame for 3 x hb_ms");
        }
        if self.pinged.elapsed() >= heartbeat {
            self.pinged = Instant::now();
            return self.send(Outgoing::Ping).await;
        }
        Flow::Continue
    }

    /// Handles one frame read from the socket.
    async fn on_frame(&mut self, frame: Option<Result<WsMessage, WsError>>) -> Flow {
        match frame {
            Some(Ok(WsMessage::Text(text))) => {
                self.heard = Instant::now();
                self.on_text(text.as_bytes()).await
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                self.heard = Instant::now();
                Flow::Continue
            }
            other => flow_of_non_text(other),
        }
    }

    /// Rate limit, parse, and act on one text frame.
    async fn on_text(&mut self, bytes: &[u8]) -> Flow {
        if !self.account.take_token() {
            let server = &self.shared.config.server;
            let message = format!(
                "account {} sent more than rate_limit_per_second = {} frames per second (burst {})",
                self.account.login, server.rate_limit_per_second, server.rate_limit_burst
            );
            return refuse(self.outbox, ErrorCode::RateLimited, &message, close_code::RATE_LIMITED).await;
        }
        let message = match protocol::parse(bytes) {
            Ok(message) => message,
            Err(error) => return self.bad_frame(error.code(), error.to_string()).await,
        };
        let login = self.account.login;
        match (self.account.role, message) {
            (_, Message::Ping) => self.send(Outgoing::Frame(Message::Pong)).await,
            (_, Message::Pong) => Flow::Continue,
            (Role::Master, Message::Event(event)) => {
                // Acked at once: the baseline holds events in memory only.
                self.shared.hub().route(login, &event, wall_ms());
                self.send(Outgoing::Frame(Message::Ack(Ack { seq: event.seq }))).await
            }
            // The baseline does not reconcile: a snapshot changes nothing.
            (Role::Master, Message::Snapshot(_)) => Flow::Continue,
            (Role::Slave, Message::Result(result)) => {
                self.shared.results_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.shared.hub().finished(login, result.seq);
                Flow::Continue
            }
            (Role::Slave, Message::State(state)) => {
                if let Some(symbols) = state.symbols {
                    self.shared.hub().merge_symbols(login, symbols);
                }
                Flow::Continue
            }
            (Role::Slave, Message::Symbols(symbols)) => {
                self.shared.hub().merge_symbols(login, symbols.symbols);
                Flow::Continue
            }
            (role, other) => {
                let message = format!("field `t`: \"{}\" is not expected from a {} after welcome", other.type_name(), role.as_str());
                self.bad_frame(ErrorCode::BadMessage, message).await
            }
        }
    }

    /// Answers a bad frame with `error`; the `bad_frames_max_per_minute`-th
    /// within a minute closes the connection with 4002.
    async fn bad_frame(&mut self, code: ErrorCode, message: String) -> Flow {
        let now = Instant::now();
        while self.bad_frames.front().is_some_and(|instant| now.duration_since(*instant) >= BAD_FRAME_WINDOW) {
            self.bad_frames.pop_front();
        }
        self.bad_frames.push_back(now);
        let error = Outgoing::Frame(Message::Error(ErrorMessage { code, msg: message }));
        let flow = self.send(error).await;
        if flow == Flow::Continue && self.bad_frames.len() >= self.shared.config.server.bad_frames_max_per_minute as usize {
            return Flow::Close(close_code::PROTOCOL_ERROR, "too many bad frames");
        }
        flow
    }

    /// Queues `item` for the writer; the connection ends if the writer is gone.
    async fn send(&self, item: Outgoing) -> Flow {
        match self.outbox.send(item).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End,
        }
    }
}

/// The writer task: sends what the outbox holds, in order, flushing once per
/// batch; stops after a close frame, a socket error, or the outbox's end.
async fn write_loop(mut sink: Writer, mut outbox: mpsc::Receiver<Outgoing>) {
    while let Some(first) = outbox.recv().await {
        let mut next = Some(first);
        let mut fed: u32 = 0;
        while let Some(item) = next.take() {
            let frame = match item {
                Outgoing::Frame(message) => {
                    let mut bytes = Vec::with_capacity(256);
                    protocol::write(&message, &mut bytes);
                    WsMessage::text(String::from_utf8(bytes).expect("the protocol writer emits UTF-8"))
                }
                Outgoing::Ping => WsMessage::Ping(Default::default()),
                Outgoing::Close(code, reason) => {
                    let close = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = sink.send(WsMessage::Close(Some(close))).await;
                    return;
                }
            };
            if sink.feed(frame).await.is_err() {
                return;
            }
            fed += 1;
            if fed < BATCH_FRAMES_MAX {
                next = outbox.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Ends the connection: queues the close frame (if any), lets the writer
/// finish, and waits for the peer's close reply, each within [`CLOSE_DRAIN_MS`].
async fn finish(mut reader: Reader, outbox: mpsc::Sender<Outgoing>, mut writer: tokio::task::JoinHandle<()>, flow: Flow) {
    let drain = Duration::from_millis(CLOSE_DRAIN_MS);
    let closing = matches!(flow, Flow::Close(..));
    if let Flow::Close(code, reason) = flow {
        let _ = timeout(drain, outbox.send(Outgoing::Close(code, reason))).await;
    }
    drop(outbox);
    if timeout(drain, &mut writer).await.is_err() {
        writer.abort();
    }
    if closing {
        let _ = timeout(drain, async { while let Some(Ok(_)) = reader.next().await {} }).await;
    }
}
