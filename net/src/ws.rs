//! The server side of WebSocket (RFC 6455) for the EA connections: the
//! HTTP upgrade on one path, masked client frames in, unmasked frames out.
//!
//! It replaces async-tungstenite on the shards because an idle connection
//! must cost little: tungstenite keeps a read buffer (1 KiB at our setting),
//! a write buffer and two waker `Arc`s per connection for its whole life.
//! Here an idle connection holds its `TcpStream` and a few words; its read
//! and write buffers exist only while bytes are in flight.
//!
//! # Layout
//! - [`accept`]: reads and checks the upgrade request, answers 101 or an
//!   HTTP error, and returns the [`WebSocket`].
//! - [`WebSocket`]: `next` yields [`WsMessage`]s, `feed_*` appends frames
//!   to the write buffer, `flush` writes them, `close` starts the closing
//!   handshake, `discard_until_end` ends it without a reset.
//! - Frame parsing (`parse_frame`) and frame writing (`write_header`).
//!
//! # Invariants
//! - Reads go through one scratch buffer per thread, so a connection waiting
//!   for bytes holds no read buffer; what a read brings is copied to the
//!   connection's own buffer until parsed, and that buffer is freed when all
//!   of it is. Its write buffer is freed after each flush.
//! - Every length is checked before it is buffered: a frame or a message
//!   above `frame_bytes_max` is [`WsError::TooBig`] once its header is read,
//!   and the upgrade request is bounded by [`REQUEST_BYTES_MAX`].
//! - `next` is cancel-safe: everything read is kept in the `WebSocket`, not
//!   in the future, so dropping a pending `next` (in a `select`) loses
//!   nothing.
//! - A ping is answered with a pong fed to the write buffer (sent with the
//!   next flush); a close is answered with a close and flushed at once.
//! - One `next` poll reads the socket at most [`READS_PER_POLL_MAX`] times,
//!   then wakes itself and yields.
//! - `next` writes the write buffer before parsing another message once it
//!   holds more than [`WRITE_BACKLOG_BYTES_MAX`]: pongs cannot pile up.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use sha1::{Digest, Sha1};
use tradebridge_core::protocol::close_code;

/// The largest upgrade request read: browsers and WebSocket libraries send
/// well under 1 KiB; 8 KiB leaves room for cookies and proxies' headers.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// Bytes read from a socket at once, into the thread's scratch buffer: room
/// for a batch of events or one large `state` frame in a single syscall.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Bytes fed and not yet written above which `next` writes them before it
/// parses another message: a peer that pings and does not read, or a
/// caller that only reads (as before `hello`), cannot grow the write buffer
/// with pongs; a batch of replies stays below it.
pub const WRITE_BACKLOG_BYTES_MAX: usize = 16 * 1024;

/// Socket reads one `next` poll makes for frames that complete no message
/// (a large frame's parts, empty fragments) before it yields: a peer that
/// keeps the socket full cannot hold the shard's other connections up.
/// Two chunks (32 KiB) keep a large frame to a few polls.
pub const READS_PER_POLL_MAX: usize = 2;

/// RFC 6455, 1.3: appended to the client's key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The longest frame header a server writes: 2 bytes, plus 8 of length.
const HEADER_BYTES_MAX: usize = 10;

/// The longest frame header a client writes: 2 bytes, 8 of length and 4 of
/// mask.
const FRAME_HEADER_BYTES_MAX: usize = 14;

/// RFC 6455, 5.5: a control frame carries at most 125 bytes.
const CONTROL_PAYLOAD_BYTES_MAX: usize = 125;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

thread_local! {
    /// The shard's read scratch: a socket is read into it, then what came is
    /// copied to the connection's buffer (freed again once parsed).
    static READ_SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK_BYTES].into_boxed_slice());
}

/// A message read from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum WsMessage {
    /// A complete text message, checked to be UTF-8.
    Text(String),
    /// A complete binary message (its payload is not kept: the bridge
    /// refuses binary frames).
    Binary,
    /// A ping and its payload; its pong is already fed.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The peer's close frame and its code, if it gave one; the answering
    /// close is already sent.
    Close(Option<u16>),
}

/// Why reading a message failed.
#[derive(Debug)]
pub enum WsError {
    /// The socket failed, or it ended inside a frame.
    Io(io::Error),
    /// The peer broke RFC 6455 (close 1002); says how.
    Protocol(&'static str),
    /// A frame or message longer than `frame_bytes_max` (close 1009).
    TooBig {
        /// The length the frame announced, or the message would reach.
        bytes: u64,
        /// The limit (`frame_bytes_max`).
        bytes_max: usize,
    },
    /// A text message that is not UTF-8 (close 1007).
    InvalidUtf8,
}

impl std::fmt::Display for WsError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Io(error) => write!(formatter, "socket: {error}"),
            WsError::Protocol(what) => write!(formatter, "WebSocket protocol error: {what}"),
            WsError::TooBig { bytes, bytes_max } => write!(formatter, "frame of {bytes} bytes above frame_bytes_max = {bytes_max}"),
            WsError::InvalidUtf8 => write!(formatter, "a text frame that is not UTF-8"),
        }
    }
}

/// Why an upgrade was refused; the HTTP answer is already sent (when the
/// socket allowed it).
#[derive(Debug)]
pub enum AcceptError {
    /// The socket failed or closed before a whole request arrived.
    Io(io::Error),
    /// The request was answered with this HTTP status and reason.
    Refused(u16, String),
}

impl std::fmt::Display for AcceptError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcceptError::Io(error) => write!(formatter, "socket: {error}"),
            AcceptError::Refused(status, reason) => write!(formatter, "HTTP {status}: {reason}"),
        }
    }
}

/// Reads the upgrade request from `stream` and answers it: 101 when it is a
/// WebSocket upgrade (version 13) on `path`, 404 for another path, 400 or
/// 426 for a request that is not a valid upgrade, 431 for one larger than
/// [`REQUEST_BYTES_MAX`]. Bytes after the request (a first frame sent
/// early) are kept.
pub async fn accept(mut stream: TcpStream, path: &str, frame_bytes_max: usize) -> Result<WebSocket, AcceptError> {
    // One buffer for the whole request, zeroed once: a peer sending a byte
    // at a time costs a read per byte, not a refill and a re-parse of all
    // it sent so far per byte.
    let mut request = vec![0u8; REQUEST_BYTES_MAX];
    let mut filled = 0;
    let (header_bytes, key) = loop {
        if filled >= REQUEST_BYTES_MAX {
            let reason = format!("the upgrade request is above {REQUEST_BYTES_MAX} bytes");
            return Err(refuse(&mut stream, 431, reason).await);
        }
        let count = match stream.read(&mut request[filled..]).await {
            Ok(0) => return Err(AcceptError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(count) => count,
            Err(error) => return Err(AcceptError::Io(error)),
        };
        let first_read = filled == 0;
        let scan_from = filled.saturating_sub(HEADER_END_BYTES_MAX - 1);
        filled += count;
        // The first read is parsed whatever it holds, so a request that is
        // not HTTP (a TLS hello on the plain port) is refused at once; later
        // reads only once the blank line that ends the header may be there.
        if !first_read && !may_end_header(&request[scan_from..filled]) {
            continue;
        }
        match parse_upgrade(&request[..filled], path) {
            Upgrade::Partial => {}
            Upgrade::Accept { header_bytes, key } => break (header_bytes, key),
            Upgrade::Refuse(status, reason) => return Err(refuse(&mut stream, status, reason).await),
        }
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    stream.write_all(response.as_bytes()).await.map_err(AcceptError::Io)?;
    let early = request[header_bytes..filled].to_vec();
    Ok(WebSocket { stream, reader: Reader::new(early, frame_bytes_max), writer: Writer::default() })
}

/// The longest blank line that ends an HTTP header, with the line end before
/// it: `\n\r\n` (httparse also takes a bare `\n\n`).
const HEADER_END_BYTES_MAX: usize = 3;

/// True when `bytes` hold the end of a header: a line end followed by an
/// empty line.
fn may_end_header(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|pair| pair == b"\n\n") || bytes.windows(3).any(|triple| triple == b"\n\r\n")
}

/// What the request read so far amounts to.
enum Upgrade {
    /// Not all of the header yet.
    Partial,
    /// A valid upgrade: the header's length and the client's key.
    Accept { header_bytes: usize, key: String },
    /// Not an upgrade this server accepts: the HTTP status and why.
    Refuse(u16, String),
}

/// Checks the upgrade request in `request` (RFC 6455, 4.2.1).
fn parse_upgrade(request: &[u8], path: &str) -> Upgrade {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let header_bytes = match parsed.parse(request) {
        Ok(httparse::Status::Complete(bytes)) => bytes,
        Ok(httparse::Status::Partial) => return Upgrade::Partial,
        Err(error) => return Upgrade::Refuse(400, format!("not an HTTP request: {error}")),
    };
    if parsed.method != Some("GET") {
        return Upgrade::Refuse(400, format!("method {}: a WebSocket upgrade is a GET", parsed.method.unwrap_or("")));
    }
    let target = parsed.path.unwrap_or("");
    let target_path = path_of(target).split('?').next().unwrap_or("");
    if target_path != path {
        return Upgrade::Refuse(404, format!("no endpoint at {target_path}; the EAs connect to {path}"));
    }
    let header = |name: &str| {
        parsed.headers.iter().find(|header| header.name.eq_ignore_ascii_case(name)).map(|header| String::from_utf8_lossy(header.value).into_owned())
    };
    // A list header may come as several lines, which make one list
    // (RFC 7230, 3.2.2): every line of the name is searched.
    let has_token = |name: &str, token: &str| {
        parsed.headers.iter().filter(|header| header.name.eq_ignore_ascii_case(name)).any(|header| {
            header.value.split(|&byte| byte == b',').any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has_token("Upgrade", "websocket") {
        return Upgrade::Refuse(400, "header Upgrade: expected websocket".to_string());
    }
    if !has_token("Connection", "upgrade") {
        return Upgrade::Refuse(400, "header Connection: expected upgrade".to_string());
    }
    if header("Sec-WebSocket-Version").as_deref().map(str::trim) != Some("13") {
        return Upgrade::Refuse(426, "header Sec-WebSocket-Version: expected 13".to_string());
    }
    match header("Sec-WebSocket-Key") {
        Some(key) if !key.trim().is_empty() => Upgrade::Accept { header_bytes, key: key.trim().to_string() },
        _ => Upgrade::Refuse(400, "header Sec-WebSocket-Key: missing".to_string()),
    }
}

/// The path and query of a request target: `target` itself in origin form
/// (`/ea?x=1`); in absolute form (`ws://host:port/ea`, which RFC 7230,
/// 5.3.2 says a server must accept and proxies send), what follows the
/// authority.
fn path_of(target: &str) -> &str {
    match target.split_once("://") {
        Some((scheme, rest)) if !target.starts_with('/') && !scheme.is_empty() => &rest[rest.find(['/', '?']).unwrap_or(rest.len())..],
        _ => target,
    }
}

/// `Sec-WebSocket-Accept` for the client's key (RFC 6455, 4.2.2).
fn accept_key(key: &str) -> String {
    let mut hash = Sha1::new();
    hash.update(key.as_bytes());
    hash.update(ACCEPT_GUID);
    data_encoding::BASE64.encode(&hash.finalize()[..])
}

/// Answers a refused upgrade with `status` and `reason` as a plain-text body.
async fn refuse(stream: &mut TcpStream, status: u16, reason: String) -> AcceptError {
    let status_text = match status {
        404 => "Not Found",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let version_header = if status == 426 { "Sec-WebSocket-Version: 13\r\n" } else { "" };
    let response = format!(
        "HTTP/1.1 {status} {status_text}\r\n{version_header}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n",
        reason.len() + 1
    );
    match stream.write_all(response.as_bytes()).await {
        Ok(()) => AcceptError::Refused(status, reason),
        Err(error) => AcceptError::Io(error),
    }
}

/// One upgraded connection.
pub struct WebSocket {
    /// The socket; its write timeout bounds every flush.
    stream: TcpStream,
    /// What was read and not yet parsed, and the message being assembled.
    reader: Reader,
    /// What was fed and not yet written.
    writer: Writer,
}

/// The read side's state, apart from the socket so it can be tested alone.
struct Reader {
    /// Bytes read and not yet parsed, from `start` on; unallocated once all
    /// are parsed.
    buffer: Vec<u8>,
    /// Offset in `buffer` of the first byte not parsed yet.
    start: usize,
    /// A fragmented message being assembled: its opcode and payload so far.
    fragments: Option<(u8, Vec<u8>)>,
    /// The largest frame, and message, accepted (`frame_bytes_max`).
    frame_bytes_max: usize,
    /// True once the peer's close arrived, the stream ended or a read
    /// failed: nothing more is parsed.
    ended: bool,
}

/// The write side's state.
#[derive(Default)]
struct Writer {
    /// Frames fed and not yet written, from `start` on; unallocated after
    /// each flush.
    buffer: Vec<u8>,
    /// Offset in `buffer` of the first byte not written yet.
    start: usize,
    /// True once a close frame was fed; nothing is fed after it.
    close_sent: bool,
}

/// One frame parsed from the read buffer.
struct Frame {
    /// FIN: the last frame of its message.
    last: bool,
    /// The opcode.
    opcode: u8,
    /// The unmasked payload.
    payload: Vec<u8>,
}

impl WebSocket {
    /// The peer's address, as `ip:port`; `None` when the socket cannot say.
    pub fn peer_address(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Changes the largest frame accepted from here on (the session raises
    /// the small pre-`welcome` bound to `frame_bytes_max`).
    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.reader.frame_bytes_max = frame_bytes_max;
    }

    /// How long a write may make no progress before it fails.
    pub fn set_write_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        Ok(self.stream.set_write_timeout(Some(timeout))?)
    }

    /// The next message, `None` after the peer's close or the end of the
    /// stream. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<WsMessage, WsError>> {
        poll_fn(|context| self.poll_next(context)).await
    }

    /// Polls for the next message: parses what is buffered, and reads the
    /// socket only when no whole frame is. A ping's pong is fed; a close is
    /// answered and the answer written at once if the socket takes it.
    pub fn poll_next(&mut self, context: &mut Context<'_>) -> Poll<Option<Result<WsMessage, WsError>>> {
        let mut reads = 0;
        loop {
            if self.reader.ended {
                return Poll::Ready(None);
            }
            // Pongs are fed as pings arrive; a backlog is written before
            // another message is parsed, so it cannot grow while the peer
            // does not read (the write timeout then ends the connection).
            if self.writer.buffer.len() - self.writer.start > WRITE_BACKLOG_BYTES_MAX {
                match self.poll_flush(context) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(error)) => {
                        self.reader.ended = true;
                        return Poll::Ready(Some(Err(WsError::Io(error))));
                    }
                }
            }
            match self.reader.parse_message() {
                Ok(Some(message)) => {
                    match &message {
                        WsMessage::Ping(payload) => self.writer.feed_frame(OPCODE_PONG, payload),
                        WsMessage::Close(code) => {
                            self.writer.feed_close(code.unwrap_or(close_code::NORMAL), "");
                            // Best effort: a peer that closed may be gone.
                            let _ = self.poll_flush(context);
                        }
                        _ => {}
                    }
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
            if reads == READS_PER_POLL_MAX {
                // Yield to the shard's other tasks; what is read is kept.
                context.waker().wake_by_ref();
                return Poll::Pending;
            }
            reads += 1;
            match self.poll_read_more(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    self.reader.ended = true;
                    let incomplete = self.reader.buffer.len() > self.reader.start || self.reader.fragments.is_some();
                    return Poll::Ready(match error.kind() {
                        io::ErrorKind::UnexpectedEof if !incomplete => None,
                        _ => Some(Err(WsError::Io(error))),
                    });
                }
            }
        }
    }

    /// Reads once from the socket into the thread's scratch and appends what
    /// came to the read buffer; the end of the stream is `UnexpectedEof`.
    fn poll_read_more(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        READ_SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            match Pin::new(&mut self.stream).poll_read(context, &mut scratch[..]) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Poll::Ready(Ok(count)) => {
                    self.reader.append(&scratch[..count]);
                    Poll::Ready(Ok(()))
                }
            }
        })
    }

    /// Feeds a text frame whose payload `write` appends to the buffer it is
    /// given (an encoder writes straight into the write buffer).
    pub fn feed_text_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.writer.feed_text_with(write);
    }

    /// Sends the ACK of what was read at once instead of after the delayed
    /// ACK timer (TCP_QUICKACK; Linux sends a pending ACK when it is set).
    /// After a frame the bridge does not answer with data (a pong), a peer
    /// with Nagle's algorithm on would otherwise hold its next small frame
    /// until that ACK, up to 40 ms. A failure only loses the hint.
    pub fn quick_ack(&self) {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads one c_int from a live local, on the fd
        // this socket owns for its whole life.
        let _ = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }

    /// Feeds a WebSocket ping.
    pub fn feed_ping(&mut self) {
        self.writer.feed_frame(OPCODE_PING, &[]);
    }

    /// Feeds a close frame with `code` and `reason` (cut to fit a control
    /// frame); nothing is fed after it.
    pub fn feed_close(&mut self, code: u16, reason: &str) {
        self.writer.feed_close(code, reason);
    }

    /// Writes everything fed; the socket's write timeout bounds it.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|context| self.poll_flush(context)).await
    }

    /// Polls the write of everything fed, then frees the write buffer.
    pub fn poll_flush(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let writer = &mut self.writer;
        while writer.start < writer.buffer.len() {
            match Pin::new(&mut self.stream).poll_write(context, &writer.buffer[writer.start..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(count)) => writer.start += count,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            }
        }
        writer.buffer = Vec::new();
        writer.start = 0;
        Poll::Ready(Ok(()))
    }

    /// Ends the write side (after the close frame is flushed) and reads what
    /// the peer still sends, dropping it, until the peer ends the stream.
    /// Closing a socket with unread bytes sends a reset, and a reset can make
    /// the peer drop our close frame before it reads it (Windows does); after
    /// a broken or oversize frame nothing more is parsed, so the rest of it
    /// is only read. Bound it with a timer.
    pub async fn discard_until_end(&mut self) -> io::Result<()> {
        self.reader.buffer = Vec::new();
        self.reader.start = 0;
        self.reader.fragments = None;
        self.reader.ended = true;
        self.stream.shutdown(std::net::Shutdown::Write).await.map_err(io::Error::from)?;
        poll_fn(|context| self.poll_discard(context)).await
    }

    /// Reads into the thread's scratch and drops it, until the end of the
    /// stream; yields after [`READS_PER_POLL_MAX`] reads, as `next` does.
    fn poll_discard(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        for _ in 0..READS_PER_POLL_MAX {
            let read = READ_SCRATCH.with(|scratch| Pin::new(&mut self.stream).poll_read(context, &mut scratch.borrow_mut()[..]));
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            }
        }
        context.waker().wake_by_ref();
        Poll::Pending
    }

    /// Sends a close frame with `code` and `reason` and flushes it.
    pub async fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        self.writer.feed_close(code, reason);
        self.flush().await
    }
}

impl Reader {
    /// A reader whose buffer starts with `early` (bytes that followed the
    /// upgrade request).
    fn new(early: Vec<u8>, frame_bytes_max: usize) -> Reader {
        Reader { buffer: early, start: 0, fragments: None, frame_bytes_max, ended: false }
    }

    /// Appends bytes read, first dropping those already parsed.
    fn append(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        // The buffer holds at most an incomplete frame and one read.
        let bytes_max = self.frame_bytes_max + FRAME_HEADER_BYTES_MAX + READ_CHUNK_BYTES;
        reserve_within(&mut self.buffer, bytes.len(), bytes_max);
        self.buffer.extend_from_slice(bytes);
    }

    /// Parses buffered frames until one completes a message; `None` when the
    /// buffer holds no whole frame. An error ends the reader.
    fn parse_message(&mut self) -> Result<Option<WsMessage>, WsError> {
        let parsed = self.parse_message_inner();
        if parsed.is_err() || matches!(parsed, Ok(Some(WsMessage::Close(_)))) {
            self.ended = true;
        }
        parsed
    }

    fn parse_message_inner(&mut self) -> Result<Option<WsMessage>, WsError> {
        while !self.ended {
            let Some(frame) = self.parse_frame()? else {
                break;
            };
            if let Some(message) = self.on_frame(frame)? {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    /// Turns one frame into a message, or keeps it as a fragment.
    fn on_frame(&mut self, frame: Frame) -> Result<Option<WsMessage>, WsError> {
        match frame.opcode {
            OPCODE_PING => Ok(Some(WsMessage::Ping(frame.payload))),
            OPCODE_PONG => Ok(Some(WsMessage::Pong)),
            OPCODE_CLOSE => close_of(&frame.payload).map(Some),
            OPCODE_CONTINUATION => {
                let Some((opcode, mut payload)) = self.fragments.take() else {
                    return Err(WsError::Protocol("a continuation frame with no message to continue"));
                };
                let bytes = payload.len() as u64 + frame.payload.len() as u64;
                if bytes > self.frame_bytes_max as u64 {
                    return Err(WsError::TooBig { bytes, bytes_max: self.frame_bytes_max });
                }
                reserve_within(&mut payload, frame.payload.len(), self.frame_bytes_max);
                payload.extend_from_slice(&frame.payload);
                if frame.last {
                    return message_of(opcode, payload).map(Some);
                }
                self.fragments = Some((opcode, payload));
                Ok(None)
            }
            opcode => {
                if self.fragments.is_some() {
                    return Err(WsError::Protocol("a new message began before the fragmented one ended"));
                }
                if frame.last {
                    return message_of(opcode, frame.payload).map(Some);
                }
                self.fragments = Some((opcode, frame.payload));
                Ok(None)
            }
        }
    }

    /// Parses one whole frame from the buffer, or `None` if it holds less; a
    /// header that breaks the protocol or the size limit fails as soon as it
    /// is read. Frees the buffer when all of it is parsed.
    fn parse_frame(&mut self) -> Result<Option<Frame>, WsError> {
        let buffered = &self.buffer[self.start..];
        if buffered.len() < 2 {
            return Ok(None);
        }
        let (first, second) = (buffered[0], buffered[1]);
        let last = first & 0x80 != 0;
        let opcode = first & 0x0F;
        if first & 0x70 != 0 {
            return Err(WsError::Protocol("a reserved bit is set (no extension was agreed)"));
        }
        if !matches!(opcode, OPCODE_CONTINUATION | OPCODE_TEXT | OPCODE_BINARY | OPCODE_CLOSE | OPCODE_PING | OPCODE_PONG) {
            return Err(WsError::Protocol("a reserved opcode"));
        }
        if second & 0x80 == 0 {
            return Err(WsError::Protocol("a client frame that is not masked"));
        }
        let (length, length_bytes) = match second & 0x7F {
            126 if buffered.len() >= 4 => (u64::from(u16::from_be_bytes([buffered[2], buffered[3]])), 2),
            127 if buffered.len() >= 10 => (u64::from_be_bytes(buffered[2..10].try_into().expect("8 bytes")), 8),
            126 | 127 => return Ok(None),
            short => (u64::from(short), 0),
        };
        let is_control = opcode & 0x08 != 0;
        if is_control && (!last || length > CONTROL_PAYLOAD_BYTES_MAX as u64) {
            return Err(WsError::Protocol("a control frame fragmented or above 125 bytes"));
        }
        // A continuation counts with the fragments before it, so its payload
        // is refused before it is buffered, not after.
        let assembled_bytes = match (&self.fragments, opcode) {
            (Some((_, payload)), OPCODE_CONTINUATION) => payload.len() as u64,
            _ => 0,
        };
        let bytes = assembled_bytes.saturating_add(length);
        if bytes > self.frame_bytes_max as u64 {
            return Err(WsError::TooBig { bytes, bytes_max: self.frame_bytes_max });
        }
        let header_bytes = 2 + length_bytes + 4;
        let frame_bytes = header_bytes + length as usize;
        if buffered.len() < frame_bytes {
            return Ok(None);
        }
        let mask: [u8; 4] = buffered[header_bytes - 4..header_bytes].try_into().expect("4 bytes");
        let mut payload = buffered[header_bytes..frame_bytes].to_vec();
        unmask(&mut payload, mask);
        self.start += frame_bytes;
        if self.start == self.buffer.len() {
            self.buffer = Vec::new();
            self.start = 0;
        }
        Ok(Some(Frame { last, opcode, payload }))
    }
}

impl Writer {
    /// Appends one unmasked frame to the buffer; nothing after a close.
    fn feed_frame(&mut self, opcode: u8, payload: &[u8]) {
        if self.close_sent {
            return;
        }
        let mut header = [0u8; HEADER_BYTES_MAX];
        let header_bytes = write_header(&mut header, opcode, payload.len());
        self.buffer.extend_from_slice(&header[..header_bytes]);
        self.buffer.extend_from_slice(payload);
    }

    /// Appends a text frame whose payload `write` appends: room for the
    /// longest header is left, the payload written after it, then moved
    /// down to sit right after the real header.
    fn feed_text_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.close_sent {
            return;
        }
        let start = self.buffer.len();
        self.buffer.resize(start + HEADER_BYTES_MAX, 0);
        write(&mut self.buffer);
        let payload_bytes = self.buffer.len() - start - HEADER_BYTES_MAX;
        let mut header = [0u8; HEADER_BYTES_MAX];
        let header_bytes = write_header(&mut header, OPCODE_TEXT, payload_bytes);
        self.buffer.copy_within(start + HEADER_BYTES_MAX.., start + header_bytes);
        self.buffer.truncate(start + header_bytes + payload_bytes);
        self.buffer[start..start + header_bytes].copy_from_slice(&header[..header_bytes]);
    }

    /// Appends a close frame with `code` and `reason` cut to fit; nothing
    /// is fed after it.
    fn feed_close(&mut self, code: u16, reason: &str) {
        if self.close_sent {
            return;
        }
        let mut reason_bytes = reason.len().min(CONTROL_PAYLOAD_BYTES_MAX - 2);
        while !reason.is_char_boundary(reason_bytes) {
            reason_bytes -= 1;
        }
        let mut payload = [0u8; CONTROL_PAYLOAD_BYTES_MAX];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        payload[2..2 + reason_bytes].copy_from_slice(&reason.as_bytes()[..reason_bytes]);
        self.feed_frame(OPCODE_CLOSE, &payload[..2 + reason_bytes]);
        self.close_sent = true;
    }
}

/// Unmasks `payload` in place with the frame's `mask` (RFC 6455, 5.3), a
/// word at a time: byte by byte through an iterator it ran at 0.7 GB/s.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let mask_word = u32::from_ne_bytes(mask);
    let mut words = payload.chunks_exact_mut(4);
    for word in &mut words {
        let unmasked = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]) ^ mask_word;
        word.copy_from_slice(&unmasked.to_ne_bytes());
    }
    for (byte, key) in words.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Makes room in `buffer` for `additional` more bytes, doubling its capacity
/// as `Vec` does but not past `bytes_max` (unless the bytes need more):
/// doubling alone took a buffer at the limit to twice the limit.
fn reserve_within(buffer: &mut Vec<u8>, additional: usize, bytes_max: usize) {
    let needed_bytes = buffer.len() + additional;
    if needed_bytes > buffer.capacity() {
        let capacity = (buffer.capacity() * 2).min(bytes_max).max(needed_bytes);
        buffer.reserve_exact(capacity - buffer.len());
    }
}

/// The message of a close frame's payload, checked (RFC 6455, 5.5.1 and
/// 7.4): no code, or a code a peer may send, and a UTF-8 reason.
fn close_of(payload: &[u8]) -> Result<WsMessage, WsError> {
    let code = match payload.len() {
        0 => None,
        1 => return Err(WsError::Protocol("a close frame with a one-byte payload")),
        _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
    };
    if let Some(code) = code {
        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            return Err(WsError::Protocol("a close frame with a code RFC 6455 does not allow"));
        }
    }
    if std::str::from_utf8(payload.get(2..).unwrap_or(&[])).is_err() {
        return Err(WsError::InvalidUtf8);
    }
    Ok(WsMessage::Close(code))
}

/// A whole message of `opcode` with `payload`.
fn message_of(opcode: u8, payload: Vec<u8>) -> Result<WsMessage, WsError> {
    match opcode {
        OPCODE_TEXT => String::from_utf8(payload).map(WsMessage::Text).map_err(|_| WsError::InvalidUtf8),
        _ => Ok(WsMessage::Binary),
    }
}

/// Writes the header of an unmasked final frame into `header`; returns its
/// length.
fn write_header(header: &mut [u8; HEADER_BYTES_MAX], opcode: u8, payload_bytes: usize) -> usize {
    header[0] = 0x80 | opcode;
    if payload_bytes < 126 {
        header[1] = payload_bytes as u8;
        2
    } else if let Ok(short) = u16::try_from(payload_bytes) {
        header[1] = 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(payload_bytes as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        // Shows: the accept key is RFC 6455's worked example (section 1.3).
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn header_end_is_seen_across_read_boundaries() {
        // Shows: the blank line ending a header is found with CRLF or bare LF, and the 2 bytes kept before a read's new bytes catch one split across reads.
        assert!(may_end_header(b"Host: a\r\n\r\n"));
        assert!(may_end_header(b"Host: a\n\n"));
        assert!(!may_end_header(b"Host: a\r\nUpgrade: websocket\r\n"));
        let request = b"GET /ea HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 1..request.len() {
            let scan_from = split.saturating_sub(HEADER_END_BYTES_MAX - 1);
            assert!(may_end_header(&request[scan_from..]), "the end is missed when a read ends after byte {split}");
        }
    }

    #[test]
    fn headers_of_each_length_form() {
        // Shows: payloads below 126, up to 65,535 and above use the 2, 4 and 10 byte headers.
        let mut header = [0u8; HEADER_BYTES_MAX];
        assert_eq!(write_header(&mut header, OPCODE_TEXT, 125), 2);
        assert_eq!(header[..2], [0x81, 125]);
        assert_eq!(write_header(&mut header, OPCODE_TEXT, 126), 4);
        assert_eq!(header[..4], [0x81, 126, 0, 126]);
        assert_eq!(write_header(&mut header, OPCODE_PING, 70_000), 10);
        assert_eq!(header[..10], [0x89, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn upgrade_requests_are_checked() {
        // Shows: a valid upgrade is accepted with its key, and each broken part gets its own status.
        let valid = "GET /ea?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc==\r\n\r\n";
        match parse_upgrade(valid.as_bytes(), "/ea") {
            Upgrade::Accept { header_bytes, key } => {
                assert_eq!(header_bytes, valid.len());
                assert_eq!(key, "abc==");
            }
            _ => panic!("a valid upgrade was refused"),
        }
        assert!(matches!(parse_upgrade(&valid.as_bytes()[..30], "/ea"), Upgrade::Partial));
        let status = |request: String| match parse_upgrade(request.as_bytes(), "/ea") {
            Upgrade::Refuse(status, _) => status,
            _ => 0,
        };
        assert_eq!(status(valid.replace("/ea?x=1", "/other")), 404);
        assert_eq!(status(valid.replace("GET", "POST")), 400);
        assert_eq!(status(valid.replace("Upgrade: WebSocket", "Upgrade: h2c")), 400);
        assert_eq!(status(valid.replace("keep-alive, Upgrade", "keep-alive")), 400);
        assert_eq!(status(valid.replace("Version: 13", "Version: 8")), 426);
        assert_eq!(status(valid.replace("Sec-WebSocket-Key: abc==\r\n", "")), 400);
        assert_eq!(status("\u{1}\u{2} nonsense\r\n\r\n".to_string()), 400);
    }

    #[test]
    fn absolute_form_targets_are_accepted() {
        // Shows: a request target in absolute form (RFC 7230, 5.3.2, as proxies send it) is matched by its path.
        let request = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc==\r\n\r\n");
        for target in ["ws://bridge.example:8080/ea", "WSS://bridge.example/ea?x=1", "http://10.0.0.1:80/ea"] {
            assert!(matches!(parse_upgrade(request(target).as_bytes(), "/ea"), Upgrade::Accept { .. }), "{target}");
        }
        for target in ["ws://bridge.example/other", "ws://bridge.example", "ws://bridge.example?q=/ea", "ws:/ea"] {
            assert!(matches!(parse_upgrade(request(target).as_bytes(), "/ea"), Upgrade::Refuse(404, _)), "{target}");
        }
    }

    #[test]
    fn list_headers_split_over_lines_are_one_list() {
        // Shows: Connection and Upgrade sent as several header lines (RFC 7230, 3.2.2 makes them one comma-separated list) are accepted when any line holds the token.
        let request = "GET /ea HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nconnection: Upgrade\r\nUpgrade: h2c\r\nUPGRADE: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc==\r\n\r\n";
        assert!(matches!(parse_upgrade(request.as_bytes(), "/ea"), Upgrade::Accept { .. }));
        let without = request.replace("connection: Upgrade\r\n", "connection: close\r\n");
        assert!(matches!(parse_upgrade(without.as_bytes(), "/ea"), Upgrade::Refuse(400, _)));
    }

    /// A masked client frame, as a peer writes it.
    fn client_frame(last: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![if last { 0x80 | opcode } else { opcode }];
        match payload.len() {
            short @ 0..=125 => frame.push(0x80 | short as u8),
            medium @ 126..=65_535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(byte, key)| byte ^ key));
        frame
    }

    fn reader() -> Reader {
        Reader::new(Vec::new(), 1024)
    }

    #[test]
    fn frames_split_anywhere_parse_the_same() {
        // Shows: a text, a ping and a 300-byte text fed one byte at a time give the same messages, and the buffer is freed after.
        let long = "x".repeat(300);
        let mut stream = client_frame(true, OPCODE_TEXT, b"{\"t\":\"ping\"}");
        stream.extend(client_frame(true, OPCODE_PING, b"hb"));
        stream.extend(client_frame(true, OPCODE_TEXT, long.as_bytes()));
        let mut reader = reader();
        let mut messages = Vec::new();
        for byte in &stream {
            reader.append(std::slice::from_ref(byte));
            while let Some(message) = reader.parse_message().expect("valid frames") {
                messages.push(message);
            }
        }
        assert_eq!(messages, vec![WsMessage::Text("{\"t\":\"ping\"}".into()), WsMessage::Ping(b"hb".to_vec()), WsMessage::Text(long)]);
        assert_eq!(reader.buffer.capacity(), 0, "an idle reader holds no buffer");
    }

    #[test]
    fn fragments_assemble_with_control_frames_between() {
        // Shows: a text in three fragments with a ping between them is one message, the ping comes first.
        let mut reader = reader();
        reader.append(&client_frame(false, OPCODE_TEXT, b"ab"));
        reader.append(&client_frame(true, OPCODE_PING, b""));
        reader.append(&client_frame(false, OPCODE_CONTINUATION, b"cd"));
        reader.append(&client_frame(true, OPCODE_CONTINUATION, b"ef"));
        assert_eq!(reader.parse_message().unwrap(), Some(WsMessage::Ping(Vec::new())));
        assert_eq!(reader.parse_message().unwrap(), Some(WsMessage::Text("abcdef".into())));
        assert_eq!(reader.parse_message().unwrap(), None);
    }

    #[test]
    fn size_limits_hold_for_frames_and_messages() {
        // Shows: a frame just at the limit passes; one above fails from its header alone; fragments summing above fail.
        let mut reader = reader();
        reader.append(&client_frame(true, OPCODE_TEXT, &[b'a'; 1024]));
        assert!(matches!(reader.parse_message(), Ok(Some(WsMessage::Text(text))) if text.len() == 1024));
        let mut reader = self::reader();
        reader.append(&client_frame(true, OPCODE_TEXT, &[b'a'; 1025])[..8]);
        assert!(matches!(reader.parse_message(), Err(WsError::TooBig { bytes: 1025, bytes_max: 1024 })));
        let mut reader = self::reader();
        reader.append(&client_frame(false, OPCODE_TEXT, &[b'a'; 600]));
        reader.append(&client_frame(true, OPCODE_CONTINUATION, &[b'a'; 600]));
        assert!(matches!(reader.parse_message(), Err(WsError::TooBig { bytes: 1200, .. })));
        assert!(reader.ended);
    }

    #[test]
    fn continuation_above_the_message_limit_fails_from_its_header() {
        // Shows: a continuation whose length would take the message above frame_bytes_max fails once its header is read, before its payload is buffered.
        let mut reader = reader();
        reader.append(&client_frame(false, OPCODE_TEXT, &[b'a'; 1000]));
        reader.append(&client_frame(true, OPCODE_CONTINUATION, &[b'a'; 1000])[..8]);
        assert!(matches!(reader.parse_message(), Err(WsError::TooBig { bytes: 2000, bytes_max: 1024 })));
        // A 64-bit length near u64::MAX after a fragment does not overflow the sum.
        let mut reader = self::reader();
        reader.append(&client_frame(false, OPCODE_TEXT, &[b'a'; 10]));
        reader.append(&[OPCODE_CONTINUATION | 0x80, 0x80 | 127]);
        reader.append(&(u64::MAX - 5).to_be_bytes());
        assert!(matches!(reader.parse_message(), Err(WsError::TooBig { bytes: u64::MAX, bytes_max: 1024 })));
    }

    #[test]
    fn buffers_grow_no_further_than_the_limit_and_a_read() {
        // Shows: a frame of frame_bytes_max read in chunks, and a message of frame_bytes_max in two fragments, never hold more than frame_bytes_max plus one header and one read chunk (capacity doubling took the read buffer to 128 KiB here).
        let frame_bytes_max = 64 * 1024;
        let bytes_max = frame_bytes_max + 14 + READ_CHUNK_BYTES;
        let mut reader = Reader::new(Vec::new(), frame_bytes_max);
        let mut stream = client_frame(true, OPCODE_TEXT, &vec![b'a'; frame_bytes_max]);
        stream.extend(client_frame(true, OPCODE_TEXT, &[b'b'; 100]));
        let mut messages = 0;
        for chunk in stream.chunks(READ_CHUNK_BYTES) {
            reader.append(chunk);
            assert!(reader.buffer.capacity() <= bytes_max, "read buffer of {} bytes", reader.buffer.capacity());
            while reader.parse_message().expect("valid frames").is_some() {
                messages += 1;
            }
        }
        assert_eq!(messages, 2);
        let mut reader = Reader::new(Vec::new(), frame_bytes_max);
        reader.append(&client_frame(false, OPCODE_TEXT, &vec![b'a'; 40_000]));
        assert_eq!(reader.parse_message().expect("a fragment"), None);
        reader.append(&client_frame(true, OPCODE_CONTINUATION, &vec![b'a'; frame_bytes_max - 40_000]));
        let Ok(Some(WsMessage::Text(text))) = reader.parse_message() else {
            panic!("expected the assembled text");
        };
        assert_eq!(text.len(), frame_bytes_max);
        assert!(text.capacity() <= frame_bytes_max, "assembled message of {} bytes", text.capacity());
    }

    #[test]
    fn unmasking_by_words_matches_the_rfc_byte_by_byte() {
        // Shows: the word-at-a-time unmask gives RFC 6455's byte-by-byte result for every length remainder and mask.
        for payload_bytes in 0..=13 {
            let masked: Vec<u8> = (0..payload_bytes).map(|index| (index * 37 + 11) as u8).collect();
            let mask = [0x9c, 0x01, 0xff, 0x5a];
            let mut unmasked = masked.clone();
            unmask(&mut unmasked, mask);
            let expected: Vec<u8> = masked.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]).collect();
            assert_eq!(unmasked, expected, "{payload_bytes} bytes");
        }
    }

    #[test]
    fn protocol_violations_are_named() {
        // Shows: unmasked, reserved bit, reserved opcode, long or fragmented control, stray continuation, interleaved message, bad UTF-8 and bad close codes each fail with their own error.
        let fails = |bytes: Vec<u8>| {
            let mut reader = reader();
            reader.append(&bytes);
            match reader.parse_message() {
                Err(WsError::Protocol(what)) => what.to_string(),
                Err(WsError::InvalidUtf8) => "utf8".to_string(),
                other => panic!("expected an error, got {other:?}"),
            }
        };
        let mut unmasked = client_frame(true, OPCODE_TEXT, b"hi");
        unmasked[1] &= 0x7F;
        assert!(fails(unmasked).contains("not masked"));
        let mut reserved_bit = client_frame(true, OPCODE_TEXT, b"hi");
        reserved_bit[0] |= 0x40;
        assert!(fails(reserved_bit).contains("reserved bit"));
        assert!(fails(client_frame(true, 0x3, b"hi")).contains("reserved opcode"));
        assert!(fails(client_frame(true, OPCODE_PING, &[0; 126])).contains("control frame"));
        assert!(fails(client_frame(false, OPCODE_PING, b"")).contains("control frame"));
        assert!(fails(client_frame(true, OPCODE_CONTINUATION, b"x")).contains("no message to continue"));
        let mut interleaved = client_frame(false, OPCODE_TEXT, b"a");
        interleaved.extend(client_frame(true, OPCODE_TEXT, b"b"));
        assert!(fails(interleaved).contains("began before"));
        assert_eq!(fails(client_frame(true, OPCODE_TEXT, &[0xff, 0xfe])), "utf8");
        assert!(fails(client_frame(true, OPCODE_CLOSE, &[3])).contains("one-byte"));
        assert!(fails(client_frame(true, OPCODE_CLOSE, &1005u16.to_be_bytes())).contains("does not allow"));
    }

    #[test]
    fn close_ends_the_reader_and_binary_is_reported() {
        // Shows: a binary message is reported without its payload; a close with a code is reported and nothing after it is parsed.
        let mut reader = reader();
        reader.append(&client_frame(true, OPCODE_BINARY, b"\x00\x01"));
        let mut close = 4000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        reader.append(&client_frame(true, OPCODE_CLOSE, &close));
        reader.append(&client_frame(true, OPCODE_TEXT, b"late"));
        assert_eq!(reader.parse_message().unwrap(), Some(WsMessage::Binary));
        assert_eq!(reader.parse_message().unwrap(), Some(WsMessage::Close(Some(4000))));
        assert_eq!(reader.parse_message().unwrap(), None);
    }

    /// Runs `server` on the first connection to a glommio listener, in its
    /// own executor, while `client` runs on a thread with a blocking socket
    /// already connected to it.
    fn with_connection<Server, Done>(client: impl FnOnce(std::net::TcpStream) + Send + 'static, server: Server)
    where
        Server: FnOnce(WebSocket) -> Done + Send + 'static,
        Done: std::future::Future<Output = ()>,
    {
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(crate::shard::SHARD_IO_MEMORY_BYTES);
        let handle = executor
            .spawn(move || async move {
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let address = listener.local_addr().expect("address");
                let client = std::thread::spawn(move || client(std::net::TcpStream::connect(address).expect("connect")));
                let stream = listener.accept().await.expect("accept");
                let socket = accept(stream, "/ea", 1024).await.expect("a valid upgrade");
                server(socket).await;
                client.join().expect("the client thread");
            })
            .expect("an executor");
        handle.join().expect("the executor");
    }

    /// Writes a valid upgrade request and reads the 101 head, byte by byte.
    fn client_upgrade(stream: &mut std::net::TcpStream) {
        use std::io::{Read, Write};
        let request = "GET /ea HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc==\r\n\r\n";
        stream.write_all(request.as_bytes()).expect("write the request");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).expect("the response head");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
    }

    #[test]
    fn pongs_are_written_before_their_backlog_grows() {
        // Shows: a peer that sends pings while the caller only reads (as before `hello`) cannot grow the write buffer: pongs are written once a backlog builds.
        const PINGS: usize = 2_000;
        with_connection(
            |mut stream| {
                use std::io::{Read, Write};
                client_upgrade(&mut stream);
                let mut drain = stream.try_clone().expect("clone");
                let reader = std::thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
                for _ in 0..PINGS {
                    stream.write_all(&client_frame(true, OPCODE_PING, &[b'p'; 125])).expect("write a ping");
                }
                stream.write_all(&client_frame(true, OPCODE_CLOSE, &1000u16.to_be_bytes())).expect("write the close");
                let _ = reader.join();
                let _ = stream.read(&mut [0u8; 1]);
            },
            |mut socket| async move {
                let mut pings = 0;
                while let Some(message) = socket.next().await {
                    let backlog_bytes = socket.writer.buffer.len() - socket.writer.start;
                    assert!(backlog_bytes <= WRITE_BACKLOG_BYTES_MAX + 127, "{backlog_bytes} bytes of pongs queued after {pings} pings");
                    match message.expect("valid frames") {
                        WsMessage::Ping(_) => pings += 1,
                        WsMessage::Close(_) => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                assert_eq!(pings, PINGS);
            },
        );
    }

    /// A waker that counts its wakes.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn frames_that_complete_no_message_do_not_hold_the_shard() {
        // Shows: a poll that reads chunks of empty fragments ends after READS_PER_POLL_MAX reads and wakes itself, rather than reading for as long as the peer keeps the socket full.
        const FRAGMENTS: usize = 8_192;
        let queued_bytes = 6 * (FRAGMENTS + 1) + 7;
        with_connection(
            move |mut stream| {
                use std::io::{Read, Write};
                client_upgrade(&mut stream);
                let mut frames = client_frame(false, OPCODE_TEXT, b"");
                for _ in 0..FRAGMENTS {
                    frames.extend(client_frame(false, OPCODE_CONTINUATION, b""));
                }
                frames.extend(client_frame(true, OPCODE_CONTINUATION, b"x"));
                assert_eq!(frames.len(), queued_bytes);
                stream.write_all(&frames).expect("write the fragments");
                let _ = stream.read(&mut [0u8; 1]);
            },
            move |mut socket| async move {
                use std::os::fd::AsRawFd;
                // Waits (without timing anything) until every byte is in the socket's receive queue.
                loop {
                    let mut available: libc::c_int = 0;
                    // SAFETY: FIONREAD writes one c_int to the pointer given, a live local.
                    assert_eq!(unsafe { libc::ioctl(socket.stream.as_raw_fd(), libc::FIONREAD, &mut available) }, 0);
                    if available as usize >= queued_bytes {
                        break;
                    }
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
                assert!(queued_bytes > (READS_PER_POLL_MAX + 1) * READ_CHUNK_BYTES, "the test queues more than one poll reads");
                let waker = std::sync::Arc::new(CountingWaker(Default::default()));
                let waker_handle = std::task::Waker::from(std::sync::Arc::clone(&waker));
                assert!(socket.poll_next(&mut Context::from_waker(&waker_handle)).is_pending());
                let mut left: libc::c_int = 0;
                // SAFETY: as above.
                assert_eq!(unsafe { libc::ioctl(socket.stream.as_raw_fd(), libc::FIONREAD, &mut left) }, 0);
                let taken = queued_bytes - left as usize;
                assert!(taken <= READS_PER_POLL_MAX * READ_CHUNK_BYTES, "one poll took {taken} bytes, more than {READS_PER_POLL_MAX} reads");
                // glommio may answer the first read Pending (an early readiness
                // poll it armed after the upgrade's short read is not reaped
                // yet, on a loaded machine); when the poll did stop at the cap,
                // it must have woken itself.
                if taken == READS_PER_POLL_MAX * READ_CHUNK_BYTES {
                    assert_eq!(waker.0.load(std::sync::atomic::Ordering::Relaxed), 1, "the poll stopped with bytes left and woke itself");
                }
                assert_eq!(socket.next().await.expect("a message").expect("valid frames"), WsMessage::Text("x".into()));
            },
        );
    }

    #[test]
    fn writer_frames_and_close_rules() {
        // Shows: an encoded text lands behind its exact header for every length form, and nothing is fed after a close.
        for payload_bytes in [0usize, 125, 126, 65_535, 65_536] {
            let mut writer = Writer::default();
            writer.feed_text_with(|buffer| buffer.extend(std::iter::repeat_n(b'z', payload_bytes)));
            let mut header = [0u8; HEADER_BYTES_MAX];
            let header_bytes = write_header(&mut header, OPCODE_TEXT, payload_bytes);
            assert_eq!(writer.buffer.len(), header_bytes + payload_bytes);
            assert_eq!(writer.buffer[..header_bytes], header[..header_bytes]);
            assert!(writer.buffer[header_bytes..].iter().all(|&byte| byte == b'z'));
        }
        let mut writer = Writer::default();
        writer.feed_close(4004, &"é".repeat(100));
        let close_bytes = writer.buffer.len();
        assert_eq!(writer.buffer[..4], [0x88, 124, 0x0F, 0xA4], "the reason is cut at a character boundary within 125 bytes");
        writer.feed_frame(OPCODE_TEXT, b"late");
        writer.feed_text_with(|buffer| buffer.extend_from_slice(b"late"));
        assert_eq!(writer.buffer.len(), close_bytes);
    }
}
