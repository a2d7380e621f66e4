//! Serializing a checkpoint of 10,000 accounts on the router thread (it
//! blocks routing while it runs): 100 masters with 99 followers each
//! (9,900 slaves, 30 symbols each), every master holding 10 open positions
//! copied to all its followers (99,000 copies in the ledger), and the
//! router-side tables a checkpoint adds: each slave's last copy seq, its 10
//! instructions awaiting results and its 10 kept copies.
//! `checkpoint_take_10k_accounts` is the whole of `Router::take_checkpoint`
//! (tables sorted, kept copies serialized under their locks);
//! `checkpoint_encode_*` time the serializer alone on prepared values.
//!
//! Run: `cargo bench -p tradebridge-core --bench checkpoint`
//! (quicker: add `-- --warm-up-time 1 --measurement-time 5`).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde::Serialize;
use tradebridge_core::config::Config;
use tradebridge_core::engine::{CopyInstruction, Engine, EngineStateRef, Outcome};
use tradebridge_core::protocol::{Copy, Event, EventKind, Side, Snapshot, State, SymbolSpec};

const MASTERS: u64 = 100;
const FOLLOWERS_PER_MASTER: u64 = 99;
const POSITIONS_PER_MASTER: u64 = 10;
const SYMBOLS_PER_SLAVE: usize = 30;
const NOW_MS: u64 = 1_704_110_400_000;
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn config() -> Config {
    let mut source = String::from("[server]\nlisten = \"127.0.0.1:8080\"\njournal_dir = \"./j\"\n");
    for master_index in 0..MASTERS {
        let master = 1_000 + master_index;
        source.push_str(&format!("\n[[account]]\nlogin = {master}\nserver = \"M\"\nrole = \"master\"\nkey_sha256 = \"{KEY}\"\n"));
        for follower in 0..FOLLOWERS_PER_MASTER {
            let slave = 100_000 + master_index * 1_000 + follower;
            source.push_str(&format!("\n[[account]]\nlogin = {slave}\nserver = \"S\"\nrole = \"slave\"\nkey_sha256 = \"{KEY}\"\n"));
            source.push_str(&format!("\n[[follow]]\nslave = {slave}\nmaster = {master}\n"));
        }
    }
    Config::from_toml_str(&source).expect("bench config parses")
}

fn symbol(name: String) -> SymbolSpec {
    SymbolSpec { name, min: 0.01, max: 100.0, step: 0.01, digits: 5, contract: 100_000.0 }
}

/// What the router adds to the engine's state (see net/src/checkpoint.rs).
#[derive(Serialize)]
struct RouterLike<'engine> {
    engine: EngineStateRef<'engine>,
    masters: Vec<(u64, u64, u64)>,
    copy_seqs: Vec<(u64, u64)>,
    instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)>,
    kept: Vec<(u64, Vec<Copy>)>,
}

/// Each slave's kept copies, serialized under its lock without cloning (as
/// `KeptCopies` in net/src/checkpoint.rs).
struct Kept<'a>(&'a [(u64, std::sync::Mutex<std::collections::VecDeque<Copy>>)]);

impl Serialize for Kept<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut sequence = serializer.serialize_seq(Some(self.0.len()))?;
        for (slave, delivery) in self.0 {
            let copies = delivery.lock().expect("unpoisoned");
            sequence.serialize_element(&(*slave, &*copies))?;
        }
        sequence.end()
    }
}

type RouterTables = (Vec<(u64, u64, u64)>, Vec<(u64, u64)>, Vec<(u64, BTreeMap<u64, CopyInstruction>)>, Vec<(u64, Vec<Copy>)>);

fn loaded_engine() -> (Engine, RouterTables) {
    let mut engine = Engine::new(&config());
    let mut out = Vec::new();
    let symbols: Vec<SymbolSpec> = std::iter::once("EURUSD".to_string())
        .chain((1..SYMBOLS_PER_SLAVE).map(|index| format!("SYMBOL{index:03}.m")))
        .map(symbol)
        .collect();
    let mut per_slave: BTreeMap<u64, Vec<(u64, CopyInstruction)>> = BTreeMap::new();
    for master_index in 0..MASTERS {
        let master = 1_000 + master_index;
        let snapshot = Snapshot { positions: vec![], balance: 50_000.0, equity: 50_000.0, currency: "USD".into() };
        engine.on_master_snapshot(master, &snapshot, NOW_MS, &mut out);
        for follower in 0..FOLLOWERS_PER_MASTER {
            let slave = 100_000 + master_index * 1_000 + follower;
            let state = State { balance: 10_000.0, equity: 10_000.0, currency: "USD".into(), positions: vec![], symbols: Some(symbols.clone()) };
            engine.on_slave_state(slave, &state, NOW_MS, &mut out);
        }
        out.clear();
        for pos in 1..=POSITIONS_PER_MASTER {
            let event = Event {
                seq: pos,
                kind: EventKind::Open,
                pos,
                ticket: pos,
                symbol: "EURUSD".into(),
                side: Some(Side::Buy),
                volume: 0.1,
                price: 1.08,
                sl: 0.0,
                tp: 0.0,
                magic: 0,
                comment: String::new(),
                time_ms: NOW_MS,
                remaining: None,
            };
            engine.on_master_event(master, &event, NOW_MS, &mut out);
            for decision in out.drain(..) {
                if let Outcome::Copy(instruction) = decision.outcome {
                    let sent = per_slave.entry(decision.slave).or_default();
                    sent.push((sent.len() as u64 + 1, instruction));
                }
            }
        }
    }
    let masters = (0..MASTERS).map(|index| (1_000 + index, POSITIONS_PER_MASTER, index * 100)).collect();
    let copy_seqs = per_slave.iter().map(|(slave, sent)| (*slave, sent.len() as u64)).collect();
    let kept = per_slave
        .iter()
        .map(|(slave, sent)| (*slave, sent.iter().map(|(seq, instruction)| instruction.to_copy(*seq, format!("{slave}-{seq}"))).collect()))
        .collect();
    let instructions = per_slave.into_iter().map(|(slave, sent)| (slave, sent.into_iter().collect())).collect();
    (engine, (masters, copy_seqs, instructions, kept))
}

fn checkpoint_10k(criterion: &mut Criterion) {
    let (engine, (masters, copy_seqs, instructions, kept)) = loaded_engine();
    let copies: usize = kept.iter().map(|(_, copies): &(u64, Vec<Copy>)| copies.len()).sum();
    assert_eq!(copies as u64, MASTERS * FOLLOWERS_PER_MASTER * POSITIONS_PER_MASTER, "every follower copied every open");
    // The router's own tables as it holds them: hash maps, and each slave's
    // kept copies behind its delivery lock; `take` rebuilds the sorted lists
    // and clones the copies as `Router::take_checkpoint` does.
    let copy_seq_map: std::collections::HashMap<u64, u64> = copy_seqs.iter().copied().collect();
    let instruction_map: std::collections::HashMap<u64, BTreeMap<u64, CopyInstruction>> = instructions.iter().cloned().collect();
    let deliveries: Vec<(u64, std::sync::Mutex<std::collections::VecDeque<Copy>>)> =
        kept.iter().map(|(slave, copies)| (*slave, std::sync::Mutex::new(copies.iter().cloned().collect()))).collect();
    let take = |capacity_bytes: usize| {
        let mut copy_seqs: Vec<(u64, u64)> = copy_seq_map.iter().map(|(slave, seq)| (*slave, *seq)).collect();
        copy_seqs.sort_unstable();
        let mut instructions: Vec<(u64, BTreeMap<u64, CopyInstruction>)> = Vec::new();
        let mut sorted: Vec<_> = instruction_map.iter().collect();
        sorted.sort_unstable_by_key(|(slave, _)| **slave);
        #[derive(Serialize)]
        struct Borrowed<'a> {
            engine: EngineStateRef<'a>,
            masters: &'a [(u64, u64, u64)],
            copy_seqs: Vec<(u64, u64)>,
            instructions: Vec<(u64, &'a BTreeMap<u64, CopyInstruction>)>,
            kept: Kept<'a>,
        }
        instructions.clear();
        let kept = Kept(&deliveries);
        let state = Borrowed { engine: engine.state(), masters: &masters, copy_seqs, instructions: sorted.into_iter().map(|(slave, sent)| (*slave, sent)).collect(), kept };
        tradebridge_core::checkpoint::encode(1, &state, capacity_bytes).expect("serializes")
    };
    let state = RouterLike { engine: engine.state(), masters: masters.clone(), copy_seqs, instructions, kept };
    let bytes = tradebridge_core::checkpoint::encode(1, &state, 0).expect("serializes");
    let engine_bytes = tradebridge_core::checkpoint::encode(1, &engine.state(), 0).expect("serializes");
    println!("checkpoint of 10,000 accounts: {} bytes ({} of them the engine's)", bytes.len(), engine_bytes.len());
    criterion.bench_function("checkpoint_encode_10k_accounts", |bencher| {
        bencher.iter(|| black_box(tradebridge_core::checkpoint::encode(1, black_box(&state), bytes.len()).expect("serializes")))
    });
    criterion.bench_function("checkpoint_take_10k_accounts", |bencher| bencher.iter(|| black_box(take(bytes.len()))));
    criterion.bench_function("checkpoint_encode_10k_accounts_engine_only", |bencher| {
        bencher.iter(|| black_box(tradebridge_core::checkpoint::encode(1, black_box(&engine.state()), engine_bytes.len()).expect("serializes")))
    });
}

criterion_group!(benches, checkpoint_10k);
criterion_main!(benches);
