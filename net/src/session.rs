//! One EA connection on a shard: the WebSocket upgrade on `/ea`, the `hello`
//! check, `welcome`, and the session rules of `shared/PROTOCOL.md` until the
//! connection ends.
//!
//! # Layout
//! - [`serve_connection`]: the whole life of one accepted TCP stream.
//! - `Session`: the per-connection state after `welcome`.
//! - `Flow`: what handling one wake-up decided (go on, or close with a code).
//! - Close codes and the helpers that send `error` and close frames.
//!
//! # Invariants
//! - Nothing here logs an API key: `Hello` is never formatted with `Debug`.
//! - Every loop yields (`glommio::yield_if_needed`), because glommio's
//!   `TcpStream` gives no fairness between connections on its own.
//! - Replies are fed to the socket as they are made and flushed once per
//!   batch of frames read without waiting (write coalescing).
//! - Every wait is bounded: the upgrade and `hello` by `hello_timeout_ms`,
//!   the session by 3 x `hb_ms` without a frame, every socket write by
//!   3 x `hb_ms` without progress, the closing handshake by
//!   [`CLOSE_DRAIN_MS`].

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future::or;
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use tradebridge_core::protocol::{self, Ack, Copy, ErrorCode, ErrorMessage, Event, Hello, Message, Role, TradeResult, Welcome};
use tradebridge_core::record::{encode_session, journal_kind, MasterEventMeta, MasterEventRecord, Record, ResultMeta, ResultRecord, SessionEntry, SessionEvent};

use crate::accounts::{authenticate, is_valid_at, AccountEntry, AuthError, SessionControl, SessionDetails};
use crate::metrics::{Metrics, Stage};
use crate::links::{SlaveHello, Update, JOURNAL_KIND_SLAVE_SEQ, JOURNAL_KIND_UPDATE};
use crate::front_door::PendingSlot;
use crate::limits::BadFrameWindow;
use crate::context::{CopyTimes, Outbound, ShardContext, OUTBOX_MESSAGES_MAX};
use crate::ws::{self, WebSocket, WsError, WsMessage};

/// The WebSocket path the EAs connect to; any other path gets HTTP 404.
pub const EA_PATH: &str = "/ea";

/// How long the bridge waits for the peer's answer to its close frame before
/// dropping the socket; long enough for a peer on another continent, short
/// enough that a peer that never answers cannot hold the connection.
pub const CLOSE_DRAIN_MS: u64 = 2_000;

/// Frames handled between two flushes; bounds how long a fast peer can keep
/// its replies unflushed and how long one task runs between yields.
pub const BATCH_FRAMES_MAX: u32 = 64;

/// Missed heartbeats after which the connection closes with 4008
/// (PROTOCOL.md: "No frame from a peer for 3 x hb_ms").
pub const HEARTBEATS_MISSED_MAX: u64 = 3;

/// Pause between two tries to push a record the shard's ring to the router
/// had no room for. A session that waits reads nothing more, so its peer's
/// TCP window fills and the EA slows down; 1 ms keeps a thousand waiting
/// sessions from taking the router's thread with their wakes, and no
/// shorter glommio timer is used (net/README.md, runtime).
pub const RING_RETRY_MS: u64 = 1;

/// Live copies per slave connection whose write time is kept to time their
/// result: the outbox bound, since a slave further behind is closed anyway.
pub const COPIES_TIMED_MAX: usize = OUTBOX_MESSAGES_MAX;

/// Close codes of PROTOCOL.md and RFC 6455 (shared with every peer).
pub use tradebridge_core::protocol::close_code;

type Socket = WebSocket;

/// What handling one wake-up decided.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    /// Keep the connection.
    Continue,
    /// Send a close frame with this code and reason, then end.
    Close(u16, &'static str),
    /// The peer closed or the socket failed: end without a close frame.
    End,
}

/// A record the shard's ring to the router had no room for: the session
/// reads no further frame until it is pushed (see [`Session::push_held`]).
struct Held {
    /// Ring tag and payload, as they would have been pushed.
    kind: u32,
    bytes: Vec<u8>,
    /// The frame it came from (`event`, `result`, `state`, ...) and its
    /// `seq` (0 for an update), for the log and the error.
    name: &'static str,
    seq: u64,
}

/// What ended one pause of [`Session::push_held`].
enum HeldWake {
    CloseRequested(u16),
    Outbound(Option<Outbound>),
    Retry,
}

/// What woke the session loop.
enum Wake {
    /// The next WebSocket message, an error, or `None` at the end.
    Frame(Option<Result<WsMessage, WsError>>),
    /// A newer session of the same login took over (4004), or the bridge is
    /// shutting down (1001).
    CloseRequested(u16),
    /// The shard handed this connection something to send (`None`: the
    /// outbox was closed, which does not happen while the session runs).
    Outbound(Option<Outbound>),
    /// The heartbeat timer fired.
    Tick,
}

/// Serves one accepted TCP stream until it closes.
///
/// Not an `async fn`: the upgrade is boxed before the task starts, so the
/// task does not also keep a slot for the `TcpStream` it moved away.
/// `pending` is the connection's place in `pending_connections_max`, given
/// back at `welcome`.
pub fn serve_connection(stream: TcpStream, shard: Rc<ShardContext>, pending: PendingSlot) -> impl std::future::Future<Output = ()> {
    let hello_deadline_ms = shard.shared.now_ms() + shard.shared.config.server.hello_timeout_ms;
    let upgrading = Box::pin(upgrade(stream, Rc::clone(&shard)));
    serve_upgraded(upgrading, shard, hello_deadline_ms, pending)
}

/// The connection after [`serve_connection`] boxed its upgrade.
async fn serve_upgraded(
    upgrading: std::pin::Pin<Box<impl std::future::Future<Output = Option<Socket>>>>,
    shard: Rc<ShardContext>,
    hello_deadline_ms: u64,
    pending: PendingSlot,
) {
    // Every stage is its own boxed future, so the connection's task holds
    // the socket and the stage it is in, not the union of all stages' state
    // (an idle connection's task was 1,688 bytes, most of it the upgrade's
    // and the close's state).
    let Some(mut socket) = upgrading.await else {
        return;
    };
    let flow = Box::pin(greet_and_serve(&mut socket, &shard, hello_deadline_ms, pending)).await;
    Box::pin(finish(&mut socket, flow)).await;
}

/// The WebSocket upgrade within `hello_timeout_ms`; `None` when it failed or
/// timed out (logged).
async fn upgrade(stream: TcpStream, shard: Rc<ShardContext>) -> Option<Socket> {
    let server = &shard.shared.config.server;
    // A peer that stops reading (zero window) must not hold its connection,
    // and its slots, forever: before `welcome` a write that makes no
    // progress for hello_timeout_ms fails (after it, 3 x hb_ms).
    if let Err(error) = stream.set_write_timeout(Some(Duration::from_millis(server.hello_timeout_ms))) {
        tracing::warn!(shard = shard.index, %error, "cannot bound socket writes; a peer that never reads can hold its connection");
    }
    let hello_timeout_ms = server.hello_timeout_ms;
    // Until `welcome`, frames are held to hello_frame_bytes_max: a peer that
    // has not logged in makes the bridge buffer a few KiB at most.
    let upgrade = Box::pin(ws::accept(stream, EA_PATH, server.hello_frame_bytes_max as usize));
    let upgraded = or(async { Some(upgrade.await) }, async {
        Timer::new(Duration::from_millis(hello_timeout_ms)).await;
        None
    })
    .await;
    match upgraded {
        Some(Ok(socket)) => Some(socket),
        Some(Err(error)) => {
            tracing::debug!(shard = shard.index, %error, "upgrade refused");
            None
        }
        None => {
            tracing::debug!(shard = shard.index, "upgrade timed out");
            None
        }
    }
}

/// Reads and checks `hello`, then serves the session; returns how to close.
/// Its own state is the `hello` and the boxed stage it awaits.
async fn greet_and_serve(socket: &mut Socket, shard: &ShardContext, hello_deadline_ms: u64, pending: PendingSlot) -> Flow {
    let hello = match Box::pin(read_hello(socket, shard, hello_deadline_ms)).await {
        Ok(hello) => hello,
        Err(flow) => return flow,
    };
    let peer = socket.peer_address().map(|address| address.ip());
    let front_door = &shard.shared.front_door;
    let account = match authenticate(&shard.shared.accounts, &hello, shard.shared.wall_ms(), peer) {
        Ok(account) => {
            front_door.auth_succeeded(hello.login);
            account
        }
        Err(reason) => {
            // Each failure of this login or address is answered later than
            // the one before (bounded by auth_delay_ms_max): a guesser's
            // rate falls, an EA with a typo is answered within seconds.
            // Never past the hello's own deadline: the connection holds a
            // pending slot meanwhile.
            let now_ms = shard.shared.now_ms();
            let delay_ms = front_door.auth_failed(reason, peer, hello.login, now_ms).min(hello_deadline_ms.saturating_sub(now_ms));
            if delay_ms > 0 {
                Timer::new(Duration::from_millis(delay_ms)).await;
            }
            return refuse_hello(socket, shard, &hello, reason).await;
        }
    };
    // Logged in: no longer pending; the session's own bounds from here on.
    drop(pending);
    let server = &shard.shared.config.server;
    socket.set_frame_bytes_max(server.frame_bytes_max as usize);
    if let Err(error) = socket.set_write_timeout(Duration::from_millis(HEARTBEATS_MISSED_MAX * server.hb_ms)) {
        tracing::warn!(shard = shard.index, %error, "cannot bound socket writes; a peer that never reads can hold its connection");
    }
    Box::pin(run_session(socket, shard, &account, &hello)).await
}

/// A key is announced as expiring this long before it does.
pub const KEY_EXPIRY_NOTICE_MS: u64 = 7 * 86_400_000;

/// The `welcome` notice for a key that expires at `expiry_ms`, when that is
/// within [`KEY_EXPIRY_NOTICE_MS`] of `now_ms`.
pub fn key_expiry_notice(expiry_ms: Option<u64>, now_ms: u64) -> Option<String> {
    let expiry_ms = expiry_ms?;
    (expiry_ms.saturating_sub(now_ms) <= KEY_EXPIRY_NOTICE_MS).then(|| {
        format!(
            "this account's key expires {}; ask the operator for a new one (tradebridge key rotate)",
            tradebridge_core::config::rfc3339_of_ms(expiry_ms)
        )
    })
}

/// Answers a refused `hello` (logged and audited) and says how to close.
async fn refuse_hello(socket: &mut Socket, shard: &ShardContext, hello: &Hello, reason: AuthError) -> Flow {
    match reason {
        AuthError::Disabled => {
            record_auth_failure(shard, socket, hello, reason, close_code::ACCOUNT_REVOKED);
            let sent = send_error(socket, ErrorCode::Unauthorized, &format!("account {} is disabled by the operator", hello.login)).await;
            if sent { Flow::Close(close_code::ACCOUNT_REVOKED, "account disabled") } else { Flow::End }
        }
        AuthError::KeyExpired => {
            record_auth_failure(shard, socket, hello, reason, close_code::UNAUTHORIZED);
            let sent = send_error(socket, ErrorCode::Unauthorized, &format!("account {}'s key has expired; ask the operator for a new one", hello.login)).await;
            if sent { Flow::Close(close_code::UNAUTHORIZED, "key expired") } else { Flow::End }
        }
        _ => {
            record_auth_failure(shard, socket, hello, reason, close_code::UNAUTHORIZED);
            let sent = send_error(socket, ErrorCode::Unauthorized, "login, server, role or key not accepted").await;
            if sent { Flow::Close(close_code::UNAUTHORIZED, "unauthorized") } else { Flow::End }
        }
    }
}

/// Waits for the first frame until `deadline_ms` and accepts it only as a
/// `hello` of version 1; otherwise answers `error` and says how to close.
async fn read_hello(socket: &mut Socket, shard: &ShardContext, deadline_ms: u64) -> Result<Hello, Flow> {
    loop {
        glommio::yield_if_needed().await;
        let remaining_ms = deadline_ms.saturating_sub(shard.shared.now_ms());
        let frame = or(async { Some(socket.next().await) }, async {
            Timer::new(Duration::from_millis(remaining_ms)).await;
            None
        })
        .await;
        let mut text = match frame {
            None => {
                let message = format!("no `hello` within hello_timeout_ms = {} ms of the upgrade", shard.shared.config.server.hello_timeout_ms);
                return Err(refuse_before_welcome(socket, ErrorCode::BadMessage, &message).await);
            }
            Some(Some(Ok(WsMessage::Text(text)))) => text,
            Some(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong))) => continue,
            Some(other) => return Err(flow_of_non_text(other)),
        };
        let parsed = protocol::parse(text.as_bytes());
        // The frame holds the key in clear; the Hello zeroes its copy on drop.
        zeroize::Zeroize::zeroize(&mut text);
        let hello = match parsed {
            Ok(Message::Hello(hello)) => hello,
            Ok(other) => {
                let message = format!("field `t`: expected \"hello\" as the first frame, got \"{}\"", other.type_name());
                return Err(refuse_before_welcome(socket, ErrorCode::BadMessage, &message).await);
            }
            Err(error) => return Err(refuse_before_welcome(socket, error.code(), &error.to_string()).await),
        };
        if hello.version != 1 {
            let message = format!("field `v`: expected 1, got {}", hello.version);
            return Err(refuse_before_welcome(socket, ErrorCode::BadMessage, &message).await);
        }
        if hello.role == Role::Slave && hello.last_seq > LAST_SEQ_MAX {
            let message = format!("field `last_seq`: {} is above {LAST_SEQ_MAX}, more copies than a bridge ever numbers; the Executor's seq file is damaged", hello.last_seq);
            return Err(refuse_before_welcome(socket, ErrorCode::BadMessage, &message).await);
        }
        return Ok(hello);
    }
}

/// Pushes one record into `shard`'s ring to the router and rings the
/// router's doorbell; false, counted, when the ring is full.
fn push_to_router(shard: &ShardContext, kind: u32, bytes: &[u8]) -> bool {
    if try_push_to_router(shard, kind, bytes) {
        return true;
    }
    Metrics::count(&shard.shared.metrics.ring_full);
    false
}

/// [`push_to_router`] without counting a full ring (a retry).
fn try_push_to_router(shard: &ShardContext, kind: u32, bytes: &[u8]) -> bool {
    if shard.to_router.borrow_mut().try_push(kind, bytes).is_ok() {
        shard.router_bell.ring();
        return true;
    }
    false
}

/// How long a wait for room in the ring to the router has seen the router
/// take nothing from it: a router that reads, however slowly, is busy and
/// the wait goes on; one that has read nothing for `stalled_max` is stuck.
struct RouterProgress {
    consumed: u64,
    since: std::time::Instant,
}

impl RouterProgress {
    fn start(shard: &ShardContext) -> RouterProgress {
        RouterProgress { consumed: shard.to_router_monitor.metrics().consumer_position, since: std::time::Instant::now() }
    }

    /// True once the router has read nothing from the ring for `stalled_max`.
    fn stalled(&mut self, shard: &ShardContext, stalled_max: Duration) -> bool {
        let consumed = shard.to_router_monitor.metrics().consumer_position;
        if consumed != self.consumed {
            self.consumed = consumed;
            self.since = std::time::Instant::now();
        }
        self.since.elapsed() >= stalled_max
    }

    fn stalled_ms(&self) -> u64 {
        self.since.elapsed().as_millis() as u64
    }
}

/// Pushes one record into the ring to the router before `welcome`, waiting
/// for room (every [`RING_RETRY_MS`]) up to `waited_max` and while the
/// bridge is not shutting down; false, counted, when it gave up.
async fn push_to_router_waiting(shard: &ShardContext, kind: u32, bytes: &[u8], waited_max: Duration) -> bool {
    if push_to_router(shard, kind, bytes) {
        return true;
    }
    let started = std::time::Instant::now();
    while started.elapsed() < waited_max && !shard.shared.is_shutting_down() {
        glommio::timer::sleep(Duration::from_millis(RING_RETRY_MS)).await;
        if try_push_to_router(shard, kind, bytes) {
            return true;
        }
    }
    Metrics::count(&shard.shared.metrics.ring_full_refused);
    false
}

/// The largest `last_seq` a hello may carry (2^62): the bridge numbers a
/// slave's copies above it (see `router::SlaveHello`), and at a million
/// copies a second it would take 146,000 years to get there, so anything
/// above is a damaged counter, refused rather than let the numbering
/// overflow.
pub const LAST_SEQ_MAX: u64 = 1 << 62;

/// Sends `error` and asks for close 4002, the answer to any protocol error
/// before `welcome`.
async fn refuse_before_welcome(socket: &mut Socket, code: ErrorCode, message: &str) -> Flow {
    if send_error(socket, code, message).await {
        Flow::Close(close_code::PROTOCOL_ERROR, "protocol error before welcome")
    } else {
        Flow::End
    }
}

/// The flow for anything read that is not a text frame. The peer's close
/// is already answered; closing writes the answer if it is still queued.
fn flow_of_non_text(frame: Option<Result<WsMessage, WsError>>) -> Flow {
    match frame {
        Some(Ok(WsMessage::Binary)) => Flow::Close(close_code::UNSUPPORTED_DATA, "binary frames are refused"),
        Some(Ok(WsMessage::Close(_))) => Flow::Close(close_code::NORMAL, ""),
        Some(Err(WsError::TooBig { .. })) => Flow::Close(close_code::MESSAGE_TOO_BIG, "frame above frame_bytes_max"),
        Some(Err(WsError::InvalidUtf8)) => Flow::Close(close_code::INVALID_PAYLOAD, "a text frame that is not UTF-8"),
        Some(Err(WsError::Protocol(_))) => Flow::Close(close_code::WEBSOCKET_PROTOCOL_ERROR, "WebSocket protocol error"),
        _ => Flow::End,
    }
}

/// The state of one connection after `welcome`.
struct Session<'run> {
    /// The shard that owns this connection; fixed.
    shard: &'run ShardContext,
    /// The account that logged in; fixed.
    account: &'run AccountEntry,
    /// Master or slave; fixed.
    role: Role,
    /// Shared with any newer session of the login, which sets it; fixed.
    control: Arc<SessionControl>,
    /// This connection's id on the shard, carried by its master events so
    /// the router's acks come back here; fixed.
    connection_id: u64,
    /// What the shard hands this connection to send (acks, copies); fixed.
    outbox: LocalReceiver<Outbound>,
    /// Slave: the highest copy `seq` sent (or skipped as expired) on this
    /// connection, from `last_seq` and the replay on; a copy at or below it
    /// arriving live is a duplicate of the replay and is dropped.
    copy_sent_seq: u64,
    /// Slave: when each recent live copy was written (`seq`, `now_ns`), in
    /// `seq` order, until its result arrives; at most
    /// [`COPIES_TIMED_MAX`], the oldest forgotten first (its result is then
    /// not timed).
    copies_written: VecDeque<(u64, u64)>,
    /// Recent bad frames; grows with each bad frame, forgets after a minute.
    bad_frames: BadFrameWindow,
    /// When the peer last sent a text frame or a ping of its own; moves with
    /// every such frame and decides close 4008.
    heard_ms: u64,
    /// When the bridge last sent a WebSocket ping (moves every `hb_ms` while
    /// the peer is silent), or, while a frame is held, last wrote anything:
    /// either way the peer has heard from the bridge since.
    pinged_ms: u64,
    /// A frame's record waiting for room in the ring to the router; while
    /// it waits, no further frame is read.
    held: Option<Held>,
}

/// Sends `welcome`, claims the login, and serves frames until the session
/// ends; returns how to close.
async fn run_session(socket: &mut Socket, shard: &ShardContext, account: &AccountEntry, hello: &Hello) -> Flow {
    let server = &shard.shared.config.server;
    let now_ms = shard.shared.now_ms();
    let session_id = shard.next_session_id();
    let ack_seq = match hello.role {
        Role::Master => account.durable_event_seq.load(std::sync::atomic::Ordering::Acquire),
        Role::Slave => 0,
    };
    // A terminal that has finished more than the journal gave it: the
    // router must number its copies above `last_seq`, or the Executor would
    // skip them as done (and this session drop them as already sent). Not
    // passed on (a full ring), the slave is told to come back, before it
    // displaces a session that works.
    if hello.role == Role::Slave && hello.last_seq > account.delivery().kept_seq {
        let report = SlaveHello { login: account.login, last_seq: hello.last_seq };
        // Bounded like the hello itself: the EA waits that long for welcome.
        let waited_max = Duration::from_millis(server.hello_timeout_ms);
        if !push_to_router_waiting(shard, u32::from(JOURNAL_KIND_SLAVE_SEQ), &report.encode(), waited_max).await {
            return Flow::Close(close_code::TRY_AGAIN_LATER, "busy: the bridge could not take the hello; reconnect");
        }
    }
    let notice = key_expiry_notice(account.key_expiry_ms(), shard.shared.wall_ms());
    if let Some(notice) = &notice {
        tracing::warn!(shard = shard.index, login = account.login, %notice, "welcome with a notice: the account's key expires soon");
    }
    let welcome = Message::Welcome(Welcome { version: 1, session: session_id.clone(), hb_ms: server.hb_ms, ack_seq, notice });
    let control = Arc::new(SessionControl::default());
    account.claim(Arc::clone(&control));
    if shard.shared.is_shutting_down() {
        control.request_close(close_code::GOING_AWAY);
    }
    // Unbounded in glommio's terms, bounded by `ShardContext::deliver`: a
    // bounded glommio channel preallocates its whole capacity, which an idle
    // connection would pay for.
    let (outbox_sender, outbox) = local_channel::new_unbounded();
    let Some(connection_id) = shard.register(outbox_sender, Arc::clone(&control)) else {
        account.release(&control);
        tracing::error!(shard = shard.index, login = account.login, "connection table full");
        return Flow::Close(close_code::TRY_AGAIN_LATER, "the bridge's connection table is full");
    };
    control.set_connection_id(connection_id);
    let remote_address = socket.peer_address().map(|address| address.to_string()).unwrap_or_default();
    let since_ms = shard.shared.wall_ms();
    control.heard(now_ms);
    control.set_details(SessionDetails { session_id: session_id.clone(), role: hello.role, remote_address: remote_address.clone(), since_ms });
    report_session(shard, || SessionEntry {
        event: SessionEvent::Open,
        role: hello.role,
        login: account.login,
        time_ms: since_ms,
        close_code: 0,
        session_id: session_id.clone(),
        remote_address,
        close_reason: String::new(),
    });
    let replay = match hello.role {
        Role::Slave => take_replay(account, &control, connection_id, hello.last_seq),
        Role::Master => Vec::new(),
    };
    let copy_sent_seq = replay.last().map_or(hello.last_seq, |copy| copy.seq.max(hello.last_seq));
    tracing::info!(shard = shard.index, login = account.login, role = hello.role.as_str(), session = %session_id, ack_seq, "welcome");
    let mut session = Session {
        shard,
        account,
        role: hello.role,
        control,
        connection_id,
        outbox,
        copy_sent_seq,
        copies_written: VecDeque::new(),
        bad_frames: BadFrameWindow::new(server.bad_frames_max_per_minute),
        heard_ms: now_ms,
        pinged_ms: now_ms,
        held: None,
    };
    // Boxed, as is the session loop: the idle session then holds neither the
    // welcome, nor the replay, nor the loop's state twice.
    let greeted = Box::pin(session.greet(socket, welcome, replay)).await;
    let flow = if greeted { Box::pin(session.serve(socket)).await } else { Flow::End };
    account.release(&session.control);
    shard.unregister(connection_id);
    if hello.role == Role::Slave {
        let mut delivery = account.delivery();
        if delivery.live_connection_id == connection_id {
            delivery.live_connection_id = 0;
        }
    }
    tracing::info!(shard = shard.index, login = account.login, session = %session_id, ?flow, "session ended");
    let (close_code, close_reason) = match flow {
        Flow::Close(code, reason) => (code, reason),
        _ => (0, ""),
    };
    report_session(shard, || SessionEntry {
        event: SessionEvent::Close,
        role: hello.role,
        login: account.login,
        time_ms: shard.shared.wall_ms(),
        close_code,
        session_id,
        remote_address: String::new(),
        close_reason: close_reason.to_string(),
    });
    flow
}

/// Hands a session's start or end to the router for the Postgres record,
/// only when a persister is configured (otherwise nothing reads it). A full
/// ring drops it, counted in `tradebridge_ring_full_total` and logged: the
/// session itself is not refused for its record.
fn report_session(shard: &ShardContext, entry: impl FnOnce() -> SessionEntry) {
    if shard.shared.config.persist.is_none() {
        return;
    }
    let entry = entry();
    let mut bytes = Vec::new();
    encode_session(&entry, &mut bytes);
    if !try_push_to_router(shard, u32::from(journal_kind::SESSION), &bytes) {
        Metrics::count(&shard.shared.metrics.session_records_dropped);
        tracing::warn!(shard = shard.index, login = entry.login, session = %entry.session_id, event = ?entry.event, "the shard -> router ring is full: this session event is not recorded in Postgres");
    }
}

/// A refused `hello`: logged (login, role, remote address, reason; never
/// the key) and recorded, within the shard's per-second bound: with
/// `[persist]` as a session record the persister turns into an `audit_log`
/// row, without it as a line of the audit file.
fn record_auth_failure(shard: &ShardContext, socket: &Socket, hello: &Hello, reason: AuthError, close_code: u16) {
    let remote_address = socket.peer_address().map(|address| address.to_string()).unwrap_or_default();
    tracing::warn!(shard = shard.index, login = hello.login, role = hello.role.as_str(), remote = %remote_address, %reason, "hello refused");
    let now_ms = shard.shared.wall_ms();
    let (second, count) = shard.auth_failures_window.get();
    let this_second = now_ms / 1_000;
    let count = if second == this_second { count + 1 } else { 1 };
    shard.auth_failures_window.set((this_second, count));
    if count > crate::context::AUTH_FAILURES_RECORDED_PER_SECOND {
        if count == crate::context::AUTH_FAILURES_RECORDED_PER_SECOND + 1 {
            tracing::warn!(shard = shard.index, per_second = crate::context::AUTH_FAILURES_RECORDED_PER_SECOND, "more refused hellos this second than are recorded; the log has them all");
        }
        return;
    }
    if let Some(audit) = &shard.shared.audit {
        audit.record(serde_json::json!({
            "at_ms": now_ms,
            "actor": "ea",
            "action": "authentication failed",
            "subject": format!("account {}", hello.login),
            "role": hello.role.as_str(),
            "remote_address": remote_address,
            "reason": reason.to_string(),
            "close_code": close_code,
        }));
    }
    report_session(shard, || SessionEntry {
        event: SessionEvent::AuthFailed,
        role: hello.role,
        login: hello.login,
        time_ms: now_ms,
        close_code,
        session_id: String::new(),
        remote_address,
        close_reason: reason.to_string(),
    });
}

/// Makes `connection_id` the slave's live connection, forgets the copies it
/// finished (`last_seq`), and returns the rest for replay. One lock with the
/// router's "keep, then look up the connection", so no copy falls between.
/// A session superseded since its claim does not take the connection over:
/// two logins racing on two shards may reach here in the opposite order of
/// their claims, and the live one must keep receiving copies.
fn take_replay(account: &AccountEntry, control: &Arc<SessionControl>, connection_id: u64, last_seq: u64) -> Vec<Copy> {
    let mut delivery = account.delivery();
    if account.is_live(control) {
        delivery.live_connection_id = connection_id;
    }
    delivery.finished_up_to(last_seq);
    delivery.copies.iter().cloned().collect()
}

impl Session<'_> {
    /// Sends `welcome` and the replay, and flushes them; false when the
    /// socket failed.
    async fn greet(&mut self, socket: &mut Socket, welcome: Message, replay: Vec<Copy>) -> bool {
        feed(socket, &welcome);
        self.replay(socket, replay);
        socket.flush().await.is_ok()
    }

    /// Sends the replay after `welcome`: every kept copy above `last_seq`
    /// that is still valid (an expired open or pending is skipped).
    fn replay(&mut self, socket: &mut Socket, copies: Vec<Copy>) {
        let now_ms = self.shard.shared.wall_ms();
        for copy in copies {
            if !is_valid_at(&copy, now_ms) {
                tracing::info!(login = self.account.login, seq = copy.seq, "expired copy not replayed");
                continue;
            }
            feed(socket, &Message::Copy(copy));
            Metrics::count(&self.shard.shared.metrics.copies_sent);
        }
    }

    /// The session loop: frames, supersession and heartbeat, until a close.
    async fn serve(&mut self, socket: &mut Socket) -> Flow {
        let hb_ms = self.shard.shared.config.server.hb_ms;
        // The timer wakes twice per heartbeat: often enough to ping on time
        // and to close 4008 within half a heartbeat of the deadline.
        let tick = Duration::from_millis((hb_ms / 2).max(1));
        // The first tick comes at a phase of its own, so sessions that
        // connected together (a fleet reconnecting after a restart) do not
        // tick, and ping, in the same millisecond.
        let mut timer = Timer::new(tick + tick_phase(self.connection_id, tick));
        loop {
            glommio::yield_if_needed().await;
            let control = Arc::clone(&self.control);
            let outbox = &self.outbox;
            let wake = or(
                async {
                    Wake::CloseRequested(control.wait_close_request().await)
                },
                or(
                    async { Wake::Outbound(outbox.recv().await) },
                    or(async { Wake::Frame(socket.next().await) }, async {
                        (&mut timer).await;
                        Wake::Tick
                    }),
                ),
            )
            .await;
            let flow = match wake {
                Wake::CloseRequested(code) => self.on_close_request(socket, code).await,
                // The handlers are boxed: an idle session's task then holds only
                // the wait below, not the largest handler's state.
                Wake::Outbound(outbound) => match Box::pin(self.on_outbound(socket, outbound)).await {
                    // The outbox wins the wait whenever it holds something;
                    // frames already read are handled too, so a stream of
                    // copies cannot hold up the slave's results and pings.
                    Flow::Continue => match futures_lite::future::poll_once(socket.next()).await {
                        Some(frame) => Box::pin(self.on_frames(socket, frame)).await,
                        None => Flow::Continue,
                    },
                    flow => flow,
                },
                Wake::Tick => {
                    timer.reset(tick);
                    Box::pin(self.on_tick(socket)).await
                }
                Wake::Frame(frame) => Box::pin(self.on_frames(socket, frame)).await,
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
    }

    /// How to end for a close asked of the session (supersession, the
    /// operator, a full outbox, the drain).
    async fn on_close_request(&mut self, socket: &mut Socket, code: u16) -> Flow {
        match code {
            close_code::REPLACED => Flow::Close(close_code::REPLACED, "the same login connected again"),
            close_code::ACCOUNT_REVOKED => {
                let message = format!("account {} was disabled or removed by the operator", self.account.login);
                if send_error(socket, ErrorCode::Unauthorized, &message).await {
                    Flow::Close(close_code::ACCOUNT_REVOKED, "account disabled or removed")
                } else {
                    Flow::End
                }
            }
            close_code::TRY_AGAIN_LATER => Flow::Close(close_code::TRY_AGAIN_LATER, "too slow: outbox full; reconnect"),
            code => Flow::Close(code, "the bridge is shutting down"),
        }
    }

    /// Handles `first` and then every frame already buffered, up to
    /// [`BATCH_FRAMES_MAX`], and flushes the replies once.
    /// A frame whose record the ring to the router has no room for is held,
    /// and no further frame is read until it is pushed.
    async fn on_frames(&mut self, socket: &mut Socket, first: Option<Result<WsMessage, WsError>>) -> Flow {
        let mut flow = self.on_frame(socket, first);
        let mut handled: u32 = 1;
        loop {
            if flow == Flow::Continue && self.held.is_some() {
                flow = Box::pin(self.push_held(socket)).await;
            }
            if flow != Flow::Continue || handled >= BATCH_FRAMES_MAX {
                break;
            }
            let Some(next) = futures_lite::future::poll_once(socket.next()).await else {
                break;
            };
            flow = self.on_frame(socket, next);
            handled += 1;
        }
        if flow != Flow::End && socket.flush().await.is_err() {
            return Flow::End;
        }
        flow
    }

    /// Handles one frame read from the socket; replies are fed, not flushed.
    fn on_frame(&mut self, socket: &mut Socket, frame: Option<Result<WsMessage, WsError>>) -> Flow {
        let now_ms = self.shard.shared.now_ms();
        let text = match frame {
            Some(Ok(WsMessage::Text(text))) => text,
            Some(Ok(WsMessage::Ping(_))) => {
                // The WebSocket layer queued the pong; the peer's own ping
                // shows it is alive.
                self.heard(now_ms);
                return Flow::Continue;
            }
            // A pong only answers the bridge's ping (peers' libraries send it
            // on their own), so it does not show that the EA itself is alive.
            // Nothing answers it, so its ACK goes out now: a peer with Nagle
            // on would hold its next frame until then.
            Some(Ok(WsMessage::Pong)) => {
                socket.quick_ack();
                return Flow::Continue;
            }
            other => return flow_of_non_text(other),
        };
        self.heard(now_ms);
        if !self.account.take_token(now_ms) {
            tracing::warn!(shard = self.shard.index, login = self.account.login, "rate limit exceeded");
            let message = format!(
                "account {} sent more than rate_limit_per_second = {} frames per second (burst {})",
                self.account.login, self.shard.shared.config.server.rate_limit_per_second, self.shard.shared.config.server.rate_limit_burst
            );
            feed_error(socket, ErrorCode::RateLimited, &message);
            return Flow::Close(close_code::RATE_LIMITED, "rate limit exceeded");
        }
        match protocol::parse(text.as_bytes()) {
            Ok(message) => self.on_message(socket, message, text.as_str(), now_ms),
            Err(error) => self.on_bad_frame(socket, error.code(), &error.to_string(), now_ms),
        }
    }

    /// Dispatches one well-formed message by type and role.
    /// `frame` is the frame's text, carried as is for the updates.
    fn on_message(&mut self, socket: &mut Socket, message: Message, frame: &str, now_ms: u64) -> Flow {
        match (&message, self.role) {
            (Message::Ping, _) => {
                feed(socket, &Message::Pong);
                Flow::Continue
            }
            (Message::Event(_), Role::Master) => {
                let Message::Event(event) = message else { unreachable!("matched above") };
                self.on_event(socket, event)
            }
            (Message::Result(_), Role::Slave) => {
                let Message::Result(result) = message else { unreachable!("matched above") };
                self.on_result(socket, result)
            }
            (Message::Snapshot(_), Role::Master) | (Message::State(_) | Message::Symbols(_), Role::Slave) => {
                self.hand_update_to_router(frame, message.type_name())
            }
            _ => {
                let text = format!(
                    "field `t`: \"{}\" is not a message a {} sends after welcome",
                    message.type_name(),
                    self.role.as_str()
                );
                self.on_bad_frame(socket, ErrorCode::BadMessage, &text, now_ms)
            }
        }
    }

    /// Hands a master event to the router through the shard's ring; the
    /// `ack` comes back through the outbox once the event is durable. A full
    /// ring holds it ([`Session::push_held`]).
    fn on_event(&mut self, socket: &mut Socket, event: Event) -> Flow {
        let meta = MasterEventMeta {
            master_login: self.account.login,
            received_ms: self.shard.shared.wall_ms(),
            received_ns: self.shard.shared.now_ns(),
            shard_id: self.shard.index,
            connection_id: self.connection_id,
        };
        let seq = event.seq;
        let record = MasterEventRecord::from_event(event, meta);
        self.hand_to_router(socket, &record, "event", seq)
    }

    /// Hands a slave result to the router through the shard's ring; a full
    /// ring holds it ([`Session::push_held`]).
    fn on_result(&mut self, socket: &mut Socket, result: TradeResult) -> Flow {
        let seq = result.seq;
        self.time_result(seq);
        let meta = ResultMeta { slave_login: self.account.login, received_ns: self.shard.shared.now_ns(), received_ms: self.shard.shared.wall_ms() };
        let record = ResultRecord::from_result(result, meta);
        self.hand_to_router(socket, &record, "result", seq)
    }

    /// Pushes a snapshot, state or symbols frame into the same ring as the
    /// connection's events and results, so the router sees every frame of a
    /// connection in the order it arrived (a snapshot sent after re-sent
    /// events is reconciled after them). A full ring holds it like an event.
    fn hand_update_to_router(&mut self, frame: &str, name: &'static str) -> Flow {
        let mut buffer = self.shard.update_buffer.borrow_mut();
        Update::encode_frame(self.account.login, self.connection_id, self.shard.shared.wall_ms(), frame.as_bytes(), &mut buffer);
        if !self.push_to_router(u32::from(JOURNAL_KIND_UPDATE), &buffer) {
            self.held = Some(Held { kind: u32::from(JOURNAL_KIND_UPDATE), bytes: buffer.clone(), name, seq: 0 });
        }
        Flow::Continue
    }

    /// Pushes one record into the shard's ring to the router; see
    /// [`push_to_router`].
    fn push_to_router(&self, kind: u32, bytes: &[u8]) -> bool {
        push_to_router(self.shard, kind, bytes)
    }

    /// Pushes `record` (the `name` frame with `seq`) into the shard's ring to
    /// the router and rings its doorbell. A full ring holds it: the session
    /// reads nothing more until it is pushed ([`Session::push_held`]), so
    /// the peer's sends back up in TCP instead of being refused.
    fn hand_to_router<R: Record>(&mut self, socket: &mut Socket, record: &R, name: &'static str, seq: u64) -> Flow {
        let mut encoder = self.shard.encoder.borrow_mut();
        let encoded = match encoder.encode(record) {
            Ok(encoded) => encoded,
            Err(error) => {
                // A frame the ring records cannot carry (validated sizes make
                // this a bug): refused, never held.
                tracing::error!(shard = self.shard.index, login = self.account.login, seq, %error, "cannot encode a {name}");
                drop(encoder);
                return self.refuse_busy(socket, name, seq);
            }
        };
        if !self.push_to_router(encoded.kind.code(), encoded.bytes) {
            self.held = Some(Held { kind: encoded.kind.code(), bytes: encoded.bytes.to_vec(), name, seq });
        }
        Flow::Continue
    }

    /// Refuses a frame the router cannot take with `error` internal and
    /// close 1013, whatever the role: no later frame of the connection may
    /// reach the router after it (a master's acks are cumulative, so the
    /// next event's ack would cover this one and the Monitor would drop it
    /// from its outbox; a slave's results and states keep their order). On
    /// reconnecting, a master re-sends everything above the `ack_seq` of
    /// its welcome (a slave's refused result is not sent again).
    fn refuse_busy(&mut self, socket: &mut Socket, name: &str, seq: u64) -> Flow {
        let text = match seq {
            0 => format!("`{name}` not accepted: the bridge is busy; reconnect and send it again"),
            seq => format!("{name} seq {seq} not accepted: the bridge is busy; reconnect and send it again"),
        };
        feed_error(socket, ErrorCode::Internal, &text);
        Flow::Close(close_code::TRY_AGAIN_LATER, "busy: a frame was not accepted; reconnect")
    }

    /// Waits until the held record fits the ring to the router, reading no
    /// frame meanwhile (TCP pushes back on the EA, which keeps its outbox)
    /// but sending what the shard hands over (acks, copies), which is what
    /// lets the EA go on. Replies fed so far are flushed first. The wait
    /// goes on as long as the router keeps reading the ring, however slowly;
    /// only a router that has read nothing from it for 3 x `hb_ms` (stuck,
    /// not busy) makes it refuse the frame ([`Session::refuse_busy`]).
    async fn push_held(&mut self, socket: &mut Socket) -> Flow {
        if socket.flush().await.is_err() {
            return Flow::End;
        }
        let hb_ms = self.shard.shared.config.server.hb_ms;
        let stalled_max = Duration::from_millis(HEARTBEATS_MISSED_MAX * hb_ms);
        let mut progress = RouterProgress::start(self.shard);
        while let Some(held) = self.held.take() {
            if try_push_to_router(self.shard, held.kind, &held.bytes) {
                // The peer's frames waited unread in the socket: it was not
                // silent, the bridge was not listening.
                self.heard(self.shard.shared.now_ms());
                return Flow::Continue;
            }
            if progress.stalled(self.shard, stalled_max) {
                Metrics::count(&self.shard.shared.metrics.ring_full_refused);
                tracing::warn!(shard = self.shard.index, login = self.account.login, frame = held.name, seq = held.seq, stalled_ms = progress.stalled_ms(), "the router has read nothing from the full ring for 3 x hb_ms; frame refused");
                return self.refuse_busy(socket, held.name, held.seq);
            }
            self.held = Some(held);
            // The peer hears from the bridge at least every hb_ms while it
            // waits (acks and copies, else a WebSocket ping), so it does not
            // take the bridge for gone.
            let now_ms = self.shard.shared.now_ms();
            if now_ms.saturating_sub(self.pinged_ms) >= hb_ms && !self.ping(socket, now_ms).await {
                return Flow::End;
            }
            let (outbox, control) = (&self.outbox, &self.control);
            let wake = or(async { HeldWake::CloseRequested(control.wait_close_request().await) }, or(async { HeldWake::Outbound(outbox.recv().await) }, async {
                glommio::timer::sleep(Duration::from_millis(RING_RETRY_MS)).await;
                HeldWake::Retry
            }))
            .await;
            let flow = match wake {
                // The held frame is dropped unacknowledged: the EA sends it
                // again on its next connection, and no later frame was read.
                HeldWake::CloseRequested(code) => self.on_close_request(socket, code).await,
                HeldWake::Outbound(outbound) => {
                    // What was just written is news enough: no ping is due
                    // for another hb_ms.
                    self.pinged_ms = self.shard.shared.now_ms();
                    Box::pin(self.on_outbound(socket, outbound)).await
                }
                HeldWake::Retry => Flow::Continue,
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// Sends what the shard handed over, and everything else already in the
    /// outbox (up to [`BATCH_FRAMES_MAX`]), then flushes once: an ack is what
    /// the Monitor waits on, a copy what the Executor waits on, and one
    /// flush per batch keeps the syscalls down under load.
    async fn on_outbound(&mut self, socket: &mut Socket, first: Option<Outbound>) -> Flow {
        let mut next = first;
        let mut handled: u32 = 0;
        loop {
            let Some(outbound) = next else {
                return Flow::End;
            };
            if let Some(message) = self.outbound_message(outbound) {
                feed(socket, &message);
            }
            handled += 1;
            if handled >= BATCH_FRAMES_MAX {
                break;
            }
            match futures_lite::future::poll_once(self.outbox.recv()).await {
                Some(more) => next = more,
                None => break,
            }
        }
        if socket.flush().await.is_ok() {
            Flow::Continue
        } else {
            Flow::End
        }
    }

    /// The message to send for what the shard handed over; `None` for a copy
    /// already sent by the replay, or expired.
    fn outbound_message(&mut self, outbound: Outbound) -> Option<Message> {
        match outbound {
            Outbound::Ack(seq) => Some(Message::Ack(Ack { seq })),
            Outbound::Copy(copy, times) => {
                if copy.seq <= self.copy_sent_seq {
                    return None;
                }
                self.copy_sent_seq = copy.seq;
                if !is_valid_at(&copy, self.shard.shared.wall_ms()) {
                    tracing::info!(login = self.account.login, seq = copy.seq, "expired copy not sent");
                    return None;
                }
                self.time_written(copy.seq, times);
                Some(Message::Copy(*copy))
            }
        }
    }

    /// Counts a live copy as written and records its latencies; remembers
    /// when, to time its result.
    fn time_written(&mut self, seq: u64, times: CopyTimes) {
        let metrics = &self.shard.shared.metrics;
        let now_ns = self.shard.shared.now_ns();
        Metrics::count(&metrics.copies_sent);
        if times.event_received_ns != 0 {
            metrics.record(Stage::EventToCopySent, times.event_received_ns, now_ns);
        }
        if times.routed_ns != 0 {
            metrics.record(Stage::RoutedToWritten, times.routed_ns, now_ns);
        }
        if self.copies_written.len() >= COPIES_TIMED_MAX {
            self.copies_written.pop_front();
        }
        self.copies_written.push_back((seq, now_ns));
    }

    /// Records copy-to-result for the copy `seq` answers, and forgets it and
    /// every older one (the Executor finishes copies in order).
    fn time_result(&mut self, seq: u64) {
        while let Some(&(written_seq, written_ns)) = self.copies_written.front() {
            if written_seq > seq {
                break;
            }
            self.copies_written.pop_front();
            if written_seq == seq {
                self.shard.shared.metrics.record(Stage::CopyToResult, written_ns, self.shard.shared.now_ns());
            }
        }
    }

    /// Answers a bad frame with `error`; the bad frame that fills the window
    /// closes with 4002.
    fn on_bad_frame(&mut self, socket: &mut Socket, code: ErrorCode, message: &str, now_ms: u64) -> Flow {
        feed_error(socket, code, message);
        if self.bad_frames.record(now_ms) {
            tracing::warn!(shard = self.shard.index, login = self.account.login, "too many bad frames");
            return Flow::Close(close_code::PROTOCOL_ERROR, "too many bad frames in a minute");
        }
        Flow::Continue
    }

    /// The heartbeat: close 4008 after 3 x `hb_ms` of silence, otherwise
    /// send a WebSocket ping once per `hb_ms` while the peer is silent. A
    /// peer heard within `hb_ms` gets none: its protocol pings and frames
    /// show it is alive, and a ping would only make it write a pong, behind
    /// which a peer with Nagle's algorithm on holds its next frame.
    async fn on_tick(&mut self, socket: &mut Socket) -> Flow {
        let hb_ms = self.shard.shared.config.server.hb_ms;
        let now_ms = self.shard.shared.now_ms();
        if now_ms.saturating_sub(self.heard_ms) >= HEARTBEATS_MISSED_MAX * hb_ms {
            tracing::info!(shard = self.shard.index, login = self.account.login, "heartbeat timeout");
            return Flow::Close(close_code::HEARTBEAT_TIMEOUT, "no frame for 3 x hb_ms");
        }
        if now_ms.saturating_sub(self.heard_ms.max(self.pinged_ms)) >= hb_ms && !self.ping(socket, now_ms).await {
            return Flow::End;
        }
        Flow::Continue
    }

    /// Records that the peer showed it is alive at `now_ms` (decides 4008).
    fn heard(&mut self, now_ms: u64) {
        self.heard_ms = now_ms;
        self.control.heard(now_ms);
    }

    /// Sends a WebSocket ping now; false when the socket failed.
    async fn ping(&mut self, socket: &mut Socket, now_ms: u64) -> bool {
        self.pinged_ms = now_ms;
        socket.feed_ping();
        socket.flush().await.is_ok()
    }
}

/// Where in the tick period a connection's heartbeat ticks: spread evenly
/// over `tick` by a multiplicative hash of its id (ids are consecutive).
fn tick_phase(connection_id: u64, tick: Duration) -> Duration {
    let tick_us = (tick.as_micros() as u64).max(1);
    let hashed = connection_id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The high 32 bits of the hash, scaled to the tick.
    Duration::from_micros(((hashed >> 32) * tick_us) >> 32)
}

/// Ends the connection as `flow` says: a close frame and a bounded wait for
/// the peer's answer, or nothing.
async fn finish(socket: &mut Socket, flow: Flow) {
    let Flow::Close(code, reason) = flow else {
        return;
    };
    if socket.close(code, reason).await.is_err() {
        return;
    }
    // Reading until the peer's close frame completes the closing handshake,
    // so the peer sees our close frame rather than a reset.
    let drain = async {
        while let Some(Ok(_)) = socket.next().await {
            glommio::yield_if_needed().await;
        }
        // Whatever the peer still sends (the rest of a frame too big to
        // parse) is read and dropped until it ends the stream: closing with
        // bytes unread would reset the connection, which can lose the close
        // frame at the peer.
        let _ = socket.discard_until_end().await;
    };
    or(drain, async {
        Timer::new(Duration::from_millis(CLOSE_DRAIN_MS)).await;
    })
    .await;
}

/// Encodes `message` straight into the socket's write buffer, without
/// flushing.
fn feed(socket: &mut Socket, message: &Message) {
    socket.feed_text_with(|buffer| protocol::write(message, buffer));
}

/// Feeds an `error` message without flushing.
fn feed_error(socket: &mut Socket, code: ErrorCode, message: &str) {
    feed(socket, &Message::Error(ErrorMessage { code, msg: message.to_string() }));
}

/// Sends an `error` message and flushes it; false when the socket failed.
async fn send_error(socket: &mut Socket, code: ErrorCode, message: &str) -> bool {
    feed_error(socket, code, message);
    socket.flush().await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountTable;
    use tradebridge_core::config::Config;

    const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
journal_dir = "/tmp/unused"

[[account]]
login = 200001
server = "Demo-Broker-A"
role = "slave"
key_sha256 = "b9a5a2f553b362d6600a5461589956d2672870b866df579f20b9165ebb1293b2"
"#;

    #[test]
    fn copies_go_to_the_session_that_holds_the_login_when_two_logins_race() {
        // Shows: two logins of one slave on two shards interleave as claim(older), claim(newer), replay(newer), replay(older); live copies must then go to the newer session, not to the older one that is closing with 4004.
        let table = AccountTable::new(&Config::from_toml_str(CONFIG).expect("test config is valid"), 0);
        let account = table.get(200001).expect("configured");
        let (older, newer) = (Arc::new(SessionControl::default()), Arc::new(SessionControl::default()));
        let (older_id, newer_id) = (crate::links::connection_id(0, 1), crate::links::connection_id(1, 1));
        account.claim(Arc::clone(&older));
        account.claim(Arc::clone(&newer));
        take_replay(&account, &newer, newer_id, 0);
        take_replay(&account, &older, older_id, 0);
        assert_eq!(older.close_requested(), Some(close_code::REPLACED));
        assert_eq!(account.delivery().live_connection_id, newer_id, "copies are addressed to the superseded session");
    }

    #[test]
    fn a_fleet_connected_at_once_ticks_spread_over_the_period() {
        // Shows that 10,000 sessions accepted in the same instant on two shards (consecutive ids) tick, and so ping, spread over the whole half-heartbeat of the default hb_ms (2.5 s): never more than a few in one millisecond, where without the phase all 10,000 would tick together.
        let tick = Duration::from_millis(2_500);
        let mut per_ms = vec![0u32; 2_500];
        for number in 1..=5_000u64 {
            for shard in 0..2 {
                let phase = tick_phase(crate::links::connection_id(shard, number), tick);
                assert!(phase < tick, "phase {phase:?} beyond the tick");
                per_ms[phase.as_millis() as usize] += 1;
            }
        }
        let busiest = per_ms.iter().copied().max().unwrap_or(0);
        let empty = per_ms.iter().filter(|count| **count == 0).count();
        assert!(busiest <= 8, "{busiest} sessions tick in one millisecond (4 on average)");
        assert!(empty <= 25, "{empty} of 2,500 milliseconds hold no tick: the phases bunch up");
    }
}
