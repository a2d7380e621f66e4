//! How long it takes on this machine to wake a thread that sleeps waiting
//! for work, by each mechanism the bridge could use between its router and
//! a shard. Nothing of the bridge runs: a std thread stamps the time and
//! wakes a sleeper once per gap; the sleeper records stamp -> running.
//!
//! - `futex`: a std thread parked (`std::thread::park`), woken by `unpark`;
//!   how a shard wakes the router.
//! - `io_uring`: a thread blocked in `io_uring_enter` on one `recv` of a
//!   unix socket, woken by a one-byte write; io_uring with nothing around it.
//! - `glommio_socket`: a task of a parked glommio executor reading a unix
//!   socket, woken by a one-byte write; how the router wakes a shard.
//! - `glommio_waker`: a task of a parked glommio executor woken through its
//!   `Waker` from the other thread (glommio's foreign wake).
//!
//!     cargo run --release -p tradebridge-net --example wake_probe -- [ROUNDS] [GAP_US]
//!
//! ROUNDS defaults to 5000, GAP_US (time between wakes, so each finds its
//! sleeper asleep) to 1000. Prints percentiles in microseconds.

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

/// Histogram unit: tenths of a microsecond.
const UNITS_PER_MICROSECOND: f64 = 10.0;

/// What the waking side and the sleeper share.
struct Probe {
    started: Instant,
    /// The current wake's stamp, nanoseconds since `started`.
    stamp_ns: AtomicU64,
    /// Wakes the sleeper has recorded.
    recorded: AtomicU64,
}

impl Probe {
    fn new() -> Arc<Probe> {
        Arc::new(Probe { started: Instant::now(), stamp_ns: AtomicU64::new(0), recorded: AtomicU64::new(0) })
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// The sleeper, once running: records stamp -> now.
    fn record(&self, histogram: &mut Histogram<u64>) {
        let elapsed_ns = self.now_ns().saturating_sub(self.stamp_ns.load(Ordering::Acquire));
        histogram.saturating_record(elapsed_ns / 100);
        self.recorded.fetch_add(1, Ordering::AcqRel);
    }

    /// The waking side: `rounds` wakes, `gap` apart, each after the previous
    /// one was recorded.
    fn drive(&self, rounds: u64, gap: Duration, mut wake: impl FnMut()) {
        std::thread::sleep(Duration::from_millis(100));
        for round in 0..rounds {
            std::thread::sleep(gap);
            self.stamp_ns.store(self.now_ns(), Ordering::Release);
            wake();
            while self.recorded.load(Ordering::Acquire) <= round {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let rounds: u64 = arguments.first().map_or(5_000, |text| text.parse().expect("ROUNDS: a count"));
    let gap = Duration::from_micros(arguments.get(1).map_or(1_000, |text| text.parse().expect("GAP_US: microseconds")));
    println!("{rounds} wakes, {} us apart; stamp -> sleeper running, in microseconds", gap.as_micros());
    report("futex", &futex(rounds, gap));
    report("io_uring", &io_uring(rounds, gap));
    report("glommio_socket", &glommio(rounds, gap, false));
    report("glommio_waker", &glommio(rounds, gap, true));
}

fn report(name: &str, histogram: &Histogram<u64>) {
    let at = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / UNITS_PER_MICROSECOND;
    println!("{name:>15}: p50 {:6.1}  p90 {:6.1}  p99 {:6.1}  p99.9 {:7.1}  max {:8.1}", at(0.5), at(0.9), at(0.99), at(0.999), histogram.max() as f64 / UNITS_PER_MICROSECOND);
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
}

fn futex(rounds: u64, gap: Duration) -> Histogram<u64> {
    let probe = Probe::new();
    let flag = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let (probe, flag) = (Arc::clone(&probe), Arc::clone(&flag));
        std::thread::spawn(move || {
            let mut histogram = histogram();
            for _ in 0..rounds {
                while !flag.swap(false, Ordering::AcqRel) {
                    std::thread::park();
                }
                probe.record(&mut histogram);
            }
            histogram
        })
    };
    let thread = sleeper.thread().clone();
    probe.drive(rounds, gap, || {
        flag.store(true, Ordering::Release);
        thread.unpark();
    });
    sleeper.join().expect("futex sleeper")
}

fn io_uring(rounds: u64, gap: Duration) -> Histogram<u64> {
    let probe = Probe::new();
    let (mut writer, reader) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    let sleeper = {
        let probe = Arc::clone(&probe);
        std::thread::spawn(move || {
            let mut ring = io_uring::IoUring::new(8).expect("io_uring");
            let mut buffer = [0u8; 64];
            let mut histogram = histogram();
            for _ in 0..rounds {
                let entry = io_uring::opcode::Recv::new(io_uring::types::Fd(reader.as_raw_fd()), buffer.as_mut_ptr(), buffer.len() as u32).build();
                // SAFETY: the buffer outlives the request, which completes
                // (submit_and_wait returns after its completion) before the
                // next one reuses it.
                unsafe { ring.submission().push(&entry).expect("a free submission slot") };
                ring.submit_and_wait(1).expect("io_uring_enter");
                let completion = ring.completion().next().expect("one completion");
                assert!(completion.result() > 0, "recv failed: {}", completion.result());
                probe.record(&mut histogram);
            }
            histogram
        })
    };
    probe.drive(rounds, gap, || writer.write_all(&[1]).expect("wake byte"));
    sleeper.join().expect("io_uring sleeper")
}

fn glommio(rounds: u64, gap: Duration, by_waker: bool) -> Histogram<u64> {
    let probe = Probe::new();
    let (mut writer, reader) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    reader.set_nonblocking(true).expect("nonblocking");
    let flag = Arc::new(AtomicBool::new(false));
    let waker = Arc::new(AtomicWaker::new());
    let executor = {
        let (probe, flag, waker) = (Arc::clone(&probe), Arc::clone(&flag), Arc::clone(&waker));
        LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                use futures_lite::AsyncReadExt as _;
                // SAFETY: the descriptor comes from a socket given up here,
                // so the glommio stream is its only owner.
                let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(reader.into_raw_fd()) };
                let mut buffer = [0u8; 64];
                let mut histogram = histogram();
                for _ in 0..rounds {
                    if by_waker {
                        futures_lite::future::poll_fn(|context| {
                            waker.register(context.waker());
                            if flag.swap(false, Ordering::AcqRel) {
                                std::task::Poll::Ready(())
                            } else {
                                std::task::Poll::Pending
                            }
                        })
                        .await;
                    } else {
                        let read = stream.read(&mut buffer).await.expect("wake byte");
                        assert!(read > 0, "the writer closed early");
                    }
                    probe.record(&mut histogram);
                }
                histogram
            })
            .expect("glommio executor")
    };
    probe.drive(rounds, gap, || {
        if by_waker {
            flag.store(true, Ordering::Release);
            waker.wake();
        } else {
            writer.write_all(&[1]).expect("wake byte");
        }
    });
    executor.join().expect("glommio sleeper")
}
