//! The WebSocket close codes of PROTOCOL.md and RFC 6455, shared by the
//! bridge, the baseline and the tests so every peer means the same by them.

/// RFC 6455: the server is going away (shutdown).
pub const GOING_AWAY: u16 = 1001;
/// RFC 6455: a normal closure (the answer to a peer's close without a code).
pub const NORMAL: u16 = 1000;
/// RFC 6455: the peer broke the WebSocket protocol (an unmasked frame, a
/// reserved bit or opcode, a fragmented control frame).
pub const WEBSOCKET_PROTOCOL_ERROR: u16 = 1002;
/// RFC 6455: a data type the endpoint cannot accept (binary frames).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// RFC 6455: a text message that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// RFC 6455: a message too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// RFC 6455 (IANA registry): try again later (the bridge is too busy for
/// this connection: its outbox overflowed, or an event was refused).
pub const TRY_AGAIN_LATER: u16 = 1013;
/// Bad key, login, server or role.
pub const UNAUTHORIZED: u16 = 4001;
/// Protocol error before `welcome`, or too many bad frames after it.
pub const PROTOCOL_ERROR: u16 = 4002;
/// The account exceeded its rate limit.
pub const RATE_LIMITED: u16 = 4003;
/// The same login connected again; this older connection lost.
pub const REPLACED: u16 = 4004;
/// The operator disabled or removed the account (or changed its role):
/// the session is closed, and a `hello` of a disabled account is refused
/// with it too. Reconnecting does not help until the operator acts.
pub const ACCOUNT_REVOKED: u16 = 4005;
/// No frame from the peer for 3 x `hb_ms`.
pub const HEARTBEAT_TIMEOUT: u16 = 4008;
