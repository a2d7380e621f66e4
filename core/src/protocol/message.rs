//! Typed form of every message in `shared/PROTOCOL.md` v1.
//!
//! Conventions that hold for every type here:
//! - Tickets, position ids, logins, sequence numbers and magic numbers are
//!   `u64`, parsed without going through a double.
//! - Prices and volumes are `f64` as sent. A stop-loss or take-profit of
//!   `0.0` means "none" (the MetaTrader convention).
//! - Optional wire fields that have a natural neutral value (`comment`,
//!   `magic`, `sl`, `tp`) default to it; fields whose absence means something
//!   different are `Option`.

/// Which EA is speaking: the Monitor on a master account or the Executor on a
/// slave account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Slave,
}

/// Direction of a position, or type of a pending order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    Buy,
    Sell,
    BuyLimit,
    SellLimit,
    BuyStop,
    SellStop,
}

impl Side {
    /// True for the four pending-order types.
    pub fn is_pending(self) -> bool {
        !matches!(self, Side::Buy | Side::Sell)
    }

    /// True when the position or order, once filled, is long.
    pub fn is_long(self) -> bool {
        matches!(self, Side::Buy | Side::BuyLimit | Side::BuyStop)
    }

    /// The opposite direction, used by reverse copying. A pending order keeps
    /// its trigger price, so it must keep the side of the market it sits on:
    /// a buy limit (below the market) becomes a sell stop (also below), a buy
    /// stop (above) becomes a sell limit (also above).
    pub fn reversed(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
            Side::BuyLimit => Side::SellStop,
            Side::SellStop => Side::BuyLimit,
            Side::BuyStop => Side::SellLimit,
            Side::SellLimit => Side::BuyStop,
        }
    }
}

/// What a master `event` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Open,
    Modify,
    Close,
    Pending,
    Cancel,
}

/// What a `copy` asks the Executor to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CopyAction {
    Open,
    Modify,
    Close,
    Pending,
    Cancel,
}

/// Outcome the Executor reports for a `copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    Filled,
    Rejected,
    Skipped,
}

/// Machine-readable `error.code` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadMessage,
    UnknownType,
    Unauthorized,
    RateLimited,
    TooLarge,
    Internal,
}

/// `hello`: the first frame from every EA. Its `Debug` output shows the
/// key's length only, and the key's bytes are zeroed when it drops.
#[derive(Clone, PartialEq)]
pub struct Hello {
    /// Protocol version; 1 for this document.
    pub version: u32,
    /// The API key in clear; checked against a stored SHA-256 and never logged.
    pub key: String,
    pub login: u64,
    pub role: Role,
    /// `mt4` or `mt5` from our EAs; free text from other peers.
    pub platform: String,
    pub server: String,
    /// EA name and version, free text.
    pub ea: String,
    /// Slave: highest `copy.seq` this terminal has finished. 0 when absent.
    pub last_seq: u64,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Hello")
            .field("version", &self.version)
            .field("key", &format_args!("<redacted, {} bytes>", self.key.len()))
            .field("login", &self.login)
            .field("role", &self.role)
            .field("platform", &self.platform)
            .field("server", &self.server)
            .field("ea", &self.ea)
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// `welcome`: the bridge's reply to a good `hello`.
#[derive(Clone, Debug, PartialEq)]
pub struct Welcome {
    pub version: u32,
    pub session: String,
    pub hb_ms: u64,
    /// Master: highest `event.seq` held durably. Slave: 0.
    pub ack_seq: u64,
    /// Something the EA should show its user (the account's key expires
    /// soon); absent when there is nothing. Not in PROTOCOL.md v1: a peer
    /// that does not know it ignores it, as every unknown key.
    pub notice: Option<String>,
}

/// `event`: one change on the master account.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub kind: EventKind,
    /// Position id, stable across partial closes.
    pub pos: u64,
    /// Deal or order ticket that produced this event; equals `pos` for opens.
    pub ticket: u64,
    /// Required for `open` and `pending`; "" when a `modify`, `close` or
    /// `cancel` leaves it out (the bridge knows the position).
    pub symbol: String,
    /// Required for `open` and `pending`; `None` when left out of the others.
    pub side: Option<Side>,
    /// Open: opened volume. Close: volume closed by this event. Pending:
    /// order volume. 0 when a `modify` or `cancel` leaves it out.
    pub volume: f64,
    /// Open: fill price. Pending, or modify of a pending order: trigger
    /// price. 0 when left out (for a modify: trigger unchanged).
    pub price: f64,
    pub sl: f64,
    pub tp: f64,
    pub magic: u64,
    pub comment: String,
    /// Master terminal's clock; informational only (never trusted for expiry).
    pub time_ms: u64,
    /// Close: what stays open after it. `None` when the Monitor did not say.
    pub remaining: Option<f64>,
}

/// `ack`: the bridge holds master event `seq` durably.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
}

/// One open position in a master `snapshot`.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotPosition {
    pub pos: u64,
    pub symbol: String,
    pub side: Side,
    pub volume: f64,
    pub price: f64,
    pub sl: f64,
    pub tp: f64,
    pub magic: u64,
    /// Not in the PROTOCOL.md example; accepted when present, "" otherwise.
    pub comment: String,
}

/// `snapshot`: the master's full book, for reconciliation.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub positions: Vec<SnapshotPosition>,
    pub balance: f64,
    pub equity: f64,
    pub currency: String,
}

/// `copy`: one instruction for a slave.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Copy {
    /// Per slave login, strictly increasing by 1.
    pub seq: u64,
    /// Unique id of this copy instruction.
    pub id: String,
    pub master: u64,
    /// Master position id this copy follows.
    pub pos: u64,
    pub action: CopyAction,
    pub symbol: String,
    pub side: Side,
    pub volume: f64,
    pub price: f64,
    /// Largest accepted distance between `price` and the market, in price
    /// units; 0 means no limit.
    pub max_dev: f64,
    pub sl: f64,
    pub tp: f64,
    pub magic: u64,
    /// `tc:<master>:<pos>`: how the Executor finds its copy of a position.
    pub comment: String,
    /// Bridge clock; 0 for actions that never expire (close, modify, cancel).
    pub expires_ms: u64,
}

/// `result`: the Executor's outcome for copy `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct TradeResult {
    pub seq: u64,
    pub status: ResultStatus,
    /// Slave ticket (MT4) or position id (MT5); 0 when nothing was opened.
    pub ticket: u64,
    pub price: f64,
    pub volume: f64,
    /// Terminal error or retcode; 0 on success.
    pub error: u32,
    pub msg: String,
    /// Time the Executor spent, by its own clock.
    pub exec_ms: u64,
}

/// One open position in a slave `state`.
#[derive(Clone, Debug, PartialEq)]
pub struct StatePosition {
    pub pos: u64,
    pub symbol: String,
    pub side: Side,
    pub volume: f64,
    /// Carries the `tc:<master>:<pos>` tag for copies; anything for manual trades.
    pub comment: String,
}

/// Trading specification of one slave symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct SymbolSpec {
    pub name: String,
    /// Smallest volume, largest volume and volume step, in lots.
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub digits: u32,
    /// Units per lot (100000 for most FX symbols).
    pub contract: f64,
}

/// `state`: the slave's account, positions and (optionally) symbols.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub balance: f64,
    pub equity: f64,
    pub currency: String,
    pub positions: Vec<StatePosition>,
    /// `None` when the slave sends its symbols in separate `symbols` frames.
    pub symbols: Option<Vec<SymbolSpec>>,
}

/// `symbols`: part of the slave's symbol list, merged by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbols {
    pub symbols: Vec<SymbolSpec>,
}

/// `error`: sent by the bridge.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    pub msg: String,
}

/// Every message of protocol v1, in both directions.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Ping,
    Pong,
    Event(Event),
    Ack(Ack),
    Snapshot(Snapshot),
    Copy(Copy),
    Result(TradeResult),
    State(State),
    Symbols(Symbols),
    Error(ErrorMessage),
}

// Wire names. Each enum has `as_str` (the exact string on the wire) and
// `from_wire` (its inverse, `None` for anything else); the codec uses these,
// so the spelling of every enum value lives in one place.

impl Role {
    /// The wire spelling of this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }

    /// Parses the wire spelling; `None` for anything else (case matters).
    pub fn from_wire(text: &str) -> Option<Role> {
        match text {
            "master" => Some(Role::Master),
            "slave" => Some(Role::Slave),
            _ => None,
        }
    }
}

impl Side {
    /// The wire spelling of this side.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
            Side::BuyLimit => "buy_limit",
            Side::SellLimit => "sell_limit",
            Side::BuyStop => "buy_stop",
            Side::SellStop => "sell_stop",
        }
    }

    /// Parses the wire spelling; `None` for anything else (case matters).
    pub fn from_wire(text: &str) -> Option<Side> {
        match text {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            "buy_limit" => Some(Side::BuyLimit),
            "sell_limit" => Some(Side::SellLimit),
            "buy_stop" => Some(Side::BuyStop),
            "sell_stop" => Some(Side::SellStop),
            _ => None,
        }
    }
}

impl EventKind {
    /// The wire spelling of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Open => "open",
            EventKind::Modify => "modify",
            EventKind::Close => "close",
            EventKind::Pending => "pending",
            EventKind::Cancel => "cancel",
        }
    }

    /// Parses the wire spelling; `None` for anything else (case matters).
    pub fn from_wire(text: &str) -> Option<EventKind> {
        match text {
            "open" => Some(EventKind::Open),
            "modify" => Some(EventKind::Modify),
            "close" => Some(EventKind::Close),
            "pending" => Some(EventKind::Pending),
            "cancel" => Some(EventKind::Cancel),
            _ => None,
        }
    }
}

impl CopyAction {
    /// The wire spelling of this action.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyAction::Open => "open",
            CopyAction::Modify => "modify",
            CopyAction::Close => "close",
            CopyAction::Pending => "pending",
            CopyAction::Cancel => "cancel",
        }
    }

    /// Parses the wire spelling; `None` for anything else (case matters).
    pub fn from_wire(text: &str) -> Option<CopyAction> {
        match text {
            "open" => Some(CopyAction::Open),
            "modify" => Some(CopyAction::Modify),
            "close" => Some(CopyAction::Close),
            "pending" => Some(CopyAction::Pending),
            "cancel" => Some(CopyAction::Cancel),
            _ => None,
        }
    }
}

impl ResultStatus {
    /// The wire spelling of this status.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Filled => "filled",
            ResultStatus::Rejected => "rejected",
            ResultStatus::Skipped => "skipped",
        }
    }

    /// Parses the wire spelling; `None` for anything else (case matters).
    pub fn from_wire(text: &str) -> Option<ResultStatus> {
        match text {
            "filled" => Some(ResultStatus::Filled),
            "rejected" => Some(ResultStatus::Rejected),
            "skipped" => Some(ResultStatus::Skipped),
            _ => None,
        }
    }
}

impl ErrorCode {
    /// The wire spelling of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Internal => "internal",
        }
    }

    /// Parses the wire spelling; `None` for anything else (case matters).
    pub fn from_wire(text: &str) -> Option<ErrorCode> {
        match text {
            "bad_message" => Some(ErrorCode::BadMessage),
            "unknown_type" => Some(ErrorCode::UnknownType),
            "unauthorized" => Some(ErrorCode::Unauthorized),
            "rate_limited" => Some(ErrorCode::RateLimited),
            "too_large" => Some(ErrorCode::TooLarge),
            "internal" => Some(ErrorCode::Internal),
            _ => None,
        }
    }
}

impl Message {
    /// The wire value of `t` for this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Welcome(_) => "welcome",
            Message::Ping => "ping",
            Message::Pong => "pong",
            Message::Event(_) => "event",
            Message::Ack(_) => "ack",
            Message::Snapshot(_) => "snapshot",
            Message::Copy(_) => "copy",
            Message::Result(_) => "result",
            Message::State(_) => "state",
            Message::Symbols(_) => "symbols",
            Message::Error(_) => "error",
        }
    }
}
