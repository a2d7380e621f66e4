//! What the shards and the routing core hand each other, in one place both
//! depend on: the rings and doorbells between them, the kinds of the
//! records they carry (the same numbers as the journal's), the payloads
//! core has no record for, and the connection ids that address a copy or
//! an ack to one connection on one shard.
//!
//! # Layout
//! - `JOURNAL_KIND_*`: ring tags and journal kinds, one number for both.
//! - [`SlaveHello`], [`Update`]: payloads a shard encodes and the router
//!   decodes (and journals, for `Update`).
//! - [`ShardLinks`], [`RouterLinks`], [`links`]: two SPSC rings per shard
//!   and the doorbells that wake each side.
//! - [`connection_id`], [`connection_shard`]: a connection's id and the
//!   shard it lives on.
//!
//! # Invariants
//! - A ring record's tag is its journal kind, so a record moves from ring
//!   to journal without being re-encoded.
//! - No connection id is 0 (0 means "no connection" where ids are stored).

use std::sync::Arc;

use anyhow::Context as _;
use tradebridge_core::config::{Config, Routing};
use tradebridge_core::protocol::{self, Message};
use tradebridge_core::record::{journal_kind, UPDATE_HEADER_BYTES};
use tradebridge_core::ring::{Consumer, Producer, Ring};

use crate::doorbell::Doorbell;

/// Where the routing core runs: `server.routing`, `auto` resolved for this
/// machine's cores (inline on up to four).
pub fn routing(config: &Config) -> Routing {
    config.server.routing.resolve(cores())
}

/// The cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// Journal kind of a master event record: its ring tag, so a journal record
/// and a ring frame of the same record carry the same number.
pub const JOURNAL_KIND_MASTER_EVENT: u16 = journal_kind::MASTER_EVENT;

/// Journal kind of a copy record, likewise its ring tag.
pub const JOURNAL_KIND_COPY: u16 = journal_kind::COPY;

/// Journal kind of a journaled [`Update`]: above every ring record kind so
/// the two never collide. Payload: `received_ms` (u64 LE), `login` (u64 LE),
/// then the message as protocol JSON.
pub const JOURNAL_KIND_UPDATE: u16 = journal_kind::UPDATE;

/// Journal kind of a slave result record, its ring tag.
pub const JOURNAL_KIND_RESULT: u16 = journal_kind::RESULT;

/// Ring kind of a [`SlaveHello`] and journal kind of a [`SeqRebase`].
pub const JOURNAL_KIND_SLAVE_SEQ: u16 = journal_kind::SLAVE_SEQ;

/// Journal kind of the skips of one decision round (core's
/// `encode_skips`), journaled only with a persister; replay ignores it.
pub const JOURNAL_KIND_SKIPS: u16 = journal_kind::SKIPS;

/// Journal kind of an EA session's start or end (core's `encode_session`),
/// pushed by the shards and journaled only with a persister; replay
/// ignores it.
pub const JOURNAL_KIND_SESSION: u16 = journal_kind::SESSION;

/// Journal kind of one part of a configuration the engine runs under from
/// that point on (core's `encode_config_parts`); replay applies it there.
pub const JOURNAL_KIND_CONFIG: u16 = journal_kind::CONFIG;

/// A slave's `last_seq` from its `hello`, from its shard to the router: the
/// highest copy seq its terminal has finished, which the bridge's own
/// numbering must stay above (the Executor skips any copy at or below it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaveHello {
    pub login: u64,
    pub last_seq: u64,
}

impl SlaveHello {
    /// `login`, `last_seq` (u64 LE each).
    pub fn encode(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.login.to_le_bytes());
        bytes[8..].copy_from_slice(&self.last_seq.to_le_bytes());
        bytes
    }

    pub(crate) fn decode(payload: &[u8]) -> anyhow::Result<SlaveHello> {
        anyhow::ensure!(payload.len() == 16, "slave hello of {} bytes: expected 16", payload.len());
        Ok(SlaveHello { login: u64::from_le_bytes(payload[..8].try_into()?), last_seq: u64::from_le_bytes(payload[8..].try_into()?) })
    }
}

/// What a shard sends the router outside the rings: a master `snapshot`, a
/// slave `state` or `symbols` (core has no ring record for them).
#[derive(Debug)]
pub struct Update {
    /// The account that sent it.
    pub login: u64,
    /// The connection it came on: an update from a connection that is no
    /// longer the login's live one is dropped.
    pub connection_id: u64,
    /// Bridge wall clock at receipt, the engine's `now_ms` for it.
    pub received_ms: u64,
    /// The message: `Snapshot`, `State` or `Symbols`.
    pub message: Message,
}

impl Update {
    /// The payload of an update from its frame as received (the JSON is
    /// carried as the peer sent it, never re-encoded, so its size is the
    /// frame's plus the header): `received_ms`, `login`, `connection_id`
    /// (u64 LE each), then the frame.
    pub fn encode_frame(login: u64, connection_id: u64, received_ms: u64, frame: &[u8], buffer: &mut Vec<u8>) {
        buffer.clear();
        buffer.extend_from_slice(&received_ms.to_le_bytes());
        buffer.extend_from_slice(&login.to_le_bytes());
        buffer.extend_from_slice(&connection_id.to_le_bytes());
        buffer.extend_from_slice(frame);
    }

    /// Reads back a payload written by [`Update::encode_frame`].
    pub(crate) fn decode(payload: &[u8]) -> anyhow::Result<Update> {
        anyhow::ensure!(payload.len() > UPDATE_HEADER_BYTES, "update of {} bytes: expected more than {UPDATE_HEADER_BYTES}", payload.len());
        let (header, json) = payload.split_at(UPDATE_HEADER_BYTES);
        let received_ms = u64::from_le_bytes(header[..8].try_into()?);
        let login = u64::from_le_bytes(header[8..16].try_into()?);
        let connection_id = u64::from_le_bytes(header[16..].try_into()?);
        let message = protocol::parse(json).map_err(|error| anyhow::anyhow!("journaled update: {error}"))?;
        Ok(Update { login, connection_id, received_ms, message })
    }
}

/// Records read from one shard's ring before the router looks at the next
/// shard, so one busy shard cannot starve the others.
pub const RING_BATCH_RECORDS_MAX: u32 = 256;

/// The rings of one shard, as the shard holds them, with the doorbells.
pub struct ShardLinks {
    /// Shard -> router: master events and results.
    pub to_router: Producer,
    /// Router -> shard: acks and copies.
    pub from_router: Consumer,
    /// Rung after every push to `to_router` (and every update sent).
    pub router_bell: Arc<Doorbell>,
    /// This shard's doorbell, raised by its pump before it sleeps.
    pub bell: Arc<Doorbell>,
    /// The end of the doorbell's socket pair the pump waits on.
    pub bell_reader: std::os::unix::net::UnixStream,
}

/// The rings of every shard, as the router holds them (index = shard).
pub struct RouterLinks {
    /// Shard -> router consumers.
    pub(crate) from_shards: Vec<Consumer>,
    /// Router -> shard producers.
    pub(crate) to_shards: Vec<Producer>,
    /// The router's own doorbell.
    pub(crate) bell: Arc<Doorbell>,
    /// Each shard's doorbell, rung after every push to its ring.
    pub(crate) shard_bells: Vec<Arc<Doorbell>>,
}

/// Two anonymous rings of `ring_bytes` per shard, and the doorbells.
/// The router's doorbell wakes a thread, or a task with `routing =
/// "inline"` (`routing` resolved).
pub fn links(shards: u32, ring_bytes: u64, routing: Routing) -> anyhow::Result<(RouterLinks, Vec<ShardLinks>)> {
    let bell = Arc::new(match routing {
        Routing::Inline => Doorbell::for_task(),
        Routing::Auto | Routing::Thread => Doorbell::for_thread(),
    });
    let mut router = RouterLinks { from_shards: Vec::new(), to_shards: Vec::new(), bell: Arc::clone(&bell), shard_bells: Vec::new() };
    let mut shard_links = Vec::new();
    for shard in 0..shards {
        let ring = |direction: &str| {
            Ring::anonymous(ring_bytes).with_context(|| format!("server.ring_bytes = {ring_bytes}: {direction} ring of shard {shard}"))
        };
        let (to_router, from_shard) = ring("shard -> router")?.split()?;
        let (to_shard, from_router) = ring("router -> shard")?.split()?;
        let (bell_writer, bell_reader) = std::os::unix::net::UnixStream::pair().context("doorbell socket pair")?;
        let shard_bell = Arc::new(Doorbell::for_socket(bell_writer).context("doorbell socket")?);
        router.from_shards.push(from_shard);
        router.to_shards.push(to_shard);
        router.shard_bells.push(Arc::clone(&shard_bell));
        shard_links.push(ShardLinks { to_router, from_router, router_bell: Arc::clone(&bell), bell: shard_bell, bell_reader });
    }
    Ok((router, shard_links))
}

/// Bits of a connection id below the shard number.
pub(crate) const CONNECTION_KEY_BITS: u32 = 48;

/// A connection id: the shard number plus 1 in the top 16 bits, so no id is
/// 0 (which means "no connection" where ids are stored), and the slab key in
/// the 48 bits below.
pub fn connection_id(shard: u32, key: u64) -> u64 {
    debug_assert!(shard < u32::from(u16::MAX), "shard {shard} fits the 16 bits beside the key");
    (u64::from(shard + 1) << CONNECTION_KEY_BITS) | key
}

/// The shard that owns a connection id.
pub fn connection_shard(connection_id: u64) -> u32 {
    ((connection_id >> CONNECTION_KEY_BITS) as u32).saturating_sub(1)
}

/// The slab key inside a connection id.
pub(crate) fn connection_key(connection_id: u64) -> usize {
    (connection_id & ((1 << CONNECTION_KEY_BITS) - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_never_zero_and_decode_to_shard_and_key() {
        // The first key of shard 0 is 0; its connection id must still not be 0 ("no connection").
        for (shard, key) in [(0u32, 0u64), (0, 7), (3, (1 << CONNECTION_KEY_BITS) - 1), (65_534, 42)] {
            let id = connection_id(shard, key);
            assert_ne!(id, 0);
            assert_eq!((connection_shard(id), connection_key(id) as u64), (shard, key));
        }
    }
}
