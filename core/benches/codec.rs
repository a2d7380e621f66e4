//! Codec benchmarks: parse and write of PROTOCOL.md's frames, with
//! serde_json measured in the same run as the baseline that justifies the
//! hand-written parser, and std's float formatting as the baseline for zmij.
//!
//! Run: `cargo bench -p tradebridge-core --bench codec`
//! (quick: append `-- --warm-up-time 1 --measurement-time 3`).
//!
//! Criterion reports wall time, which on a shared machine includes time the
//! process spent waiting for a core. After it, under `cargo bench`, a second
//! table reports CPU time per operation (from `/proc/self/schedstat`, Linux
//! only), which other processes' load does not inflate: compare the rows of
//! one table with each other, parser against baseline.

use std::hint::black_box;
use std::io::Write as _;

use criterion::{criterion_group, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use tradebridge_core::protocol::{parse, write, Message};

/// PROTOCOL.md's `event` example, verbatim (line breaks included).
const EVENT: &str = r#"{"t":"event","seq":42,"kind":"open","pos":9001,"ticket":9001,
     "symbol":"EURUSD","side":"buy","volume":0.10,"price":1.08123,
     "sl":1.07900,"tp":1.08600,"magic":0,"comment":"","time_ms":1732400000123}"#;

/// PROTOCOL.md's `copy` example, verbatim.
const COPY: &str = r#"{"t":"copy","seq":77,"id":"<copy id>","master":1234567,"pos":9001,
     "action":"open","symbol":"EURUSD.m","side":"buy","volume":0.20,
     "price":1.08123,"max_dev":0.0003,"sl":1.079,"tp":1.086,"magic":0,
     "comment":"tc:1234567:9001","expires_ms":1732400005123}"#;

/// PROTOCOL.md's `state` example with its one symbol replaced by 20.
fn state_with_20_symbols() -> String {
    let symbols: Vec<String> = (0..20)
        .map(|index| {
            format!(
                r#"{{"name":"SYM{index:02}.m","min":0.01,"max":100.0,"step":0.01,"digits":5,"contract":100000.0}}"#
            )
        })
        .collect();
    format!(
        r#"{{"t":"state","balance":5000.0,"equity":4990.0,"currency":"USD","positions":[{{"pos":55501,"symbol":"EURUSD.m","side":"buy","volume":0.2,"comment":"tc:1234567:9001"}}],"symbols":[{}]}}"#,
        symbols.join(",")
    )
}

/// The serde_json baseline: the same `event` into an equivalent derived
/// struct (typed enums, defaults for the optional fields; none of our checks).
#[allow(dead_code)]
#[derive(Deserialize)]
struct SerdeEvent {
    t: String,
    seq: u64,
    kind: SerdeKind,
    pos: u64,
    #[serde(default)]
    ticket: Option<u64>,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    side: Option<SerdeSide>,
    #[serde(default)]
    volume: f64,
    #[serde(default)]
    price: f64,
    #[serde(default)]
    sl: f64,
    #[serde(default)]
    tp: f64,
    #[serde(default)]
    magic: u64,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    time_ms: u64,
    #[serde(default)]
    remaining: Option<f64>,
}

#[derive(Deserialize, Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum SerdeKind {
    Open,
    Modify,
    Close,
    Pending,
    Cancel,
}

#[derive(Deserialize, Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum SerdeSide {
    Buy,
    Sell,
    BuyLimit,
    SellLimit,
    BuyStop,
    SellStop,
}

/// The serde_json baseline for writing: the `copy` example from a derived struct.
#[derive(Serialize)]
struct SerdeCopy<'a> {
    t: &'a str,
    seq: u64,
    id: &'a str,
    master: u64,
    pos: u64,
    action: SerdeKind,
    symbol: &'a str,
    side: SerdeSide,
    volume: f64,
    price: f64,
    max_dev: f64,
    sl: f64,
    tp: f64,
    magic: u64,
    comment: &'a str,
    expires_ms: u64,
}

fn bench_parse(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("parse");
    group.throughput(Throughput::Bytes(EVENT.len() as u64));
    group.bench_function("event_example", |bencher| {
        bencher.iter(|| parse(black_box(EVENT.as_bytes())).unwrap())
    });
    group.bench_function("event_example_serde_json_baseline", |bencher| {
        bencher.iter(|| serde_json::from_slice::<SerdeEvent>(black_box(EVENT.as_bytes())).unwrap())
    });
    let state = state_with_20_symbols();
    assert!(matches!(parse(state.as_bytes()), Ok(Message::State(_))));
    group.throughput(Throughput::Bytes(state.len() as u64));
    group.bench_function("state_20_symbols", |bencher| {
        bencher.iter(|| parse(black_box(state.as_bytes())).unwrap())
    });
    group.finish();
}

fn bench_write(criterion: &mut Criterion) {
    let copy = parse(COPY.as_bytes()).unwrap();
    let Message::Copy(fields) = &copy else {
        unreachable!("the copy example parses to a copy")
    };
    let serde_copy = SerdeCopy {
        t: "copy",
        seq: fields.seq,
        id: &fields.id,
        master: fields.master,
        pos: fields.pos,
        action: SerdeKind::Open,
        symbol: &fields.symbol,
        side: SerdeSide::Buy,
        volume: fields.volume,
        price: fields.price,
        max_dev: fields.max_dev,
        sl: fields.sl,
        tp: fields.tp,
        magic: fields.magic,
        comment: &fields.comment,
        expires_ms: fields.expires_ms,
    };
    let mut out = Vec::with_capacity(1024);
    let mut group = criterion.benchmark_group("write");
    group.bench_function("copy_example", |bencher| {
        bencher.iter(|| {
            out.clear();
            write(black_box(&copy), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("copy_example_serde_json_baseline", |bencher| {
        bencher.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&serde_copy)).unwrap();
            black_box(out.len())
        })
    });
    // The six floats of a copy, formatted by zmij (what `write` uses) and by
    // std's shortest round-trip `{:?}`: the reason for the zmij dependency.
    let floats = [
        fields.volume,
        fields.price,
        fields.max_dev,
        fields.sl,
        fields.tp,
        10012.5,
    ];
    group.bench_function("six_floats_zmij", |bencher| {
        bencher.iter(|| {
            out.clear();
            for value in black_box(&floats) {
                out.extend_from_slice(zmij::Buffer::new().format_finite(*value).as_bytes());
            }
            black_box(out.len())
        })
    });
    group.bench_function("six_floats_std_debug_baseline", |bencher| {
        bencher.iter(|| {
            out.clear();
            for value in black_box(&floats) {
                write!(out, "{value:?}").unwrap();
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_write);

/// Operations per row of the CPU-time table: enough for about a second of
/// CPU per row, so the 1 ns clock's granularity and scheduler noise vanish.
const CPU_TIME_OPERATIONS: u32 = 1_000_000;

/// Nanoseconds this process has spent on a CPU, or `None` where the kernel
/// does not expose it.
fn cpu_time_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time per call of `operation`, averaged over `operations` calls.
fn cpu_time_per_operation_ns(operations: u32, mut operation: impl FnMut()) -> Option<f64> {
    for _ in 0..operations / 10 {
        operation();
    }
    let before = cpu_time_ns()?;
    for _ in 0..operations {
        operation();
    }
    let after = cpu_time_ns()?;
    Some((after - before) as f64 / f64::from(operations))
}

/// Prints CPU time per operation for the same cases criterion timed.
fn report_cpu_time() {
    let state = state_with_20_symbols();
    let copy = parse(COPY.as_bytes()).unwrap();
    let mut out = Vec::with_capacity(1024);
    let rows: [(&str, u32, &mut dyn FnMut()); 4] = [
        ("parse/event_example", CPU_TIME_OPERATIONS, &mut || {
            black_box(parse(black_box(EVENT.as_bytes())).unwrap());
        }),
        (
            "parse/event_example_serde_json_baseline",
            CPU_TIME_OPERATIONS,
            &mut || {
                black_box(
                    serde_json::from_slice::<SerdeEvent>(black_box(EVENT.as_bytes())).unwrap(),
                );
            },
        ),
        (
            "parse/state_20_symbols",
            CPU_TIME_OPERATIONS / 10,
            &mut || {
                black_box(parse(black_box(state.as_bytes())).unwrap());
            },
        ),
        ("write/copy_example", CPU_TIME_OPERATIONS, &mut || {
            out.clear();
            write(black_box(&copy), &mut out);
            black_box(out.len());
        }),
    ];
    println!("\nCPU time per operation ({CPU_TIME_OPERATIONS} operations, state: a tenth):");
    for (name, operations, operation) in rows {
        match cpu_time_per_operation_ns(operations, operation) {
            Some(nanoseconds) => println!("  {name:<42} {nanoseconds:>9.1} ns"),
            None => println!("  {name:<42} unavailable (no /proc/self/schedstat)"),
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // only wants each benchmark run once.
    if std::env::args().any(|argument| argument == "--bench") {
        report_cpu_time();
    }
}
