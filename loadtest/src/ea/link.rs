//! One EA's WebSocket to the bridge: connect, `hello`, `welcome`; sending
//! and receiving protocol messages.
//!
//! # Invariants
//! - Per-connection memory is small (a 4 KiB read buffer instead of
//!   tungstenite's 128 KiB), so one process holds 10 000 connections.
//! - Connecting and waiting for `welcome` are bounded by
//!   [`HANDSHAKE_TIMEOUT`].
//! - Text is encoded and decoded only by `tradebridge_core::protocol`, the
//!   codec that implements PROTOCOL.md.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tradebridge_core::protocol::{self, Hello, Message, Role, Welcome};

use crate::fleet::Account;

/// The WebSocket of one simulated EA.
pub type Socket = WebSocketStream<TcpStream>;

/// Longest wait for the TCP connect, the upgrade and `welcome` together.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// tungstenite's read buffer per connection: every frame the bridge sends
/// an EA fits, and 10 000 idle connections cost 40 MiB instead of 1.3 GiB.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Largest frame accepted from the bridge: far above any `copy` or `error`.
pub const FRAME_BYTES_MAX: usize = 1024 * 1024;

/// The harness's EA name in `hello`.
pub const EA_NAME: &str = "tradebridge-loadtest/0.1";

/// The small-buffer WebSocket configuration of every harness connection.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(Some(FRAME_BYTES_MAX))
        .max_frame_size(Some(FRAME_BYTES_MAX))
}

/// The host:port part of a `ws://host:port/path` URL.
pub fn socket_address(url: &str) -> anyhow::Result<&str> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| anyhow!("--url {url:?}: expected ws://host:port/path (TLS is not supported by the harness)"))?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

/// Encodes one protocol message as a text frame.
pub fn encode(message: &Message) -> WsMessage {
    let mut bytes = Vec::with_capacity(256);
    protocol::write(message, &mut bytes);
    WsMessage::Text(Utf8Bytes::try_from(bytes).expect("the protocol writer produces UTF-8"))
}

/// The `hello` of `account`; `last_seq` for an Executor.
pub fn hello(account: &Account, last_seq: u64) -> Message {
    Message::Hello(Hello {
        version: 1,
        key: account.key.clone(),
        login: account.login,
        role: account.role,
        platform: "mt5".into(),
        server: account.server.clone(),
        ea: EA_NAME.into(),
        last_seq: if account.role == Role::Slave { last_seq } else { 0 },
    })
}

/// Connects, sends `hello` and waits for `welcome`.
pub async fn connect(url: &str, hello: &Message) -> anyhow::Result<(Socket, Welcome)> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, connect_unbounded(url, hello))
        .await
        .map_err(|_| anyhow!("no welcome from {url} within {} s", HANDSHAKE_TIMEOUT.as_secs()))?
}

async fn connect_unbounded(url: &str, hello: &Message) -> anyhow::Result<(Socket, Welcome)> {
    let address = socket_address(url)?;
    let stream = TcpStream::connect(address).await.with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(websocket_config())).await.with_context(|| format!("WebSocket upgrade at {url}"))?;
    socket.send(encode(hello)).await.context("sending hello")?;
    match receive(&mut socket).await? {
        Some(Message::Welcome(welcome)) => Ok((socket, welcome)),
        Some(Message::Error(error)) => bail!("hello refused: {:?} {}", error.code, error.msg),
        Some(other) => bail!("expected welcome, got {other:?}"),
        None => bail!("the bridge closed the connection before welcome"),
    }
}

/// The next protocol message; `None` when the connection closed. Control
/// frames are skipped (tungstenite answers pings itself).
pub async fn receive(socket: &mut Socket) -> anyhow::Result<Option<Message>> {
    loop {
        match socket.next().await {
            None => return Ok(None),
            Some(Err(error)) => return Err(anyhow!("reading from the bridge: {error}")),
            Some(Ok(WsMessage::Text(text))) => {
                return protocol::parse(text.as_bytes()).map(Some).map_err(|error| anyhow!("bridge frame refused by the codec: {error}: {}", text.as_str()));
            }
            Some(Ok(WsMessage::Close(frame))) => {
                return Err(anyhow!("closed by the bridge: {}", frame.map(|frame| format!("{} {}", u16::from(frame.code), frame.reason)).unwrap_or_else(|| "no close frame".into())));
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// The close code in a `receive` error, if the bridge closed with one.
pub fn close_code(error: &anyhow::Error) -> Option<u16> {
    let text = error.to_string();
    text.strip_prefix("closed by the bridge: ")?.split(' ').next()?.parse().ok()
}
