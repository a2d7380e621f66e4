//! Doorbells: how a producer wakes a consumer that went to sleep on an empty
//! ring, so an idle bridge costs no CPU and a lone event is not held for the
//! rest of a backoff sleep.
//!
//! # Layout
//! - [`Doorbell`]: the sleeping flag and the wake action, shared by the two
//!   sides: a thread unpark (the router on its own thread), one byte on a
//!   Unix socket pair (a shard, whose glommio executor waits on the socket
//!   in io_uring), or a task's waker (the router as a task on a shard).
//!
//! # Invariants
//! - No lost wake-up: the sleeper raises `sleeping`, then (after a SeqCst
//!   fence) looks at its inputs once more before it sleeps; the producer
//!   publishes its record, then (after a SeqCst fence) looks at `sleeping`.
//!   Of the two loads at least one sees the other side's store.
//! - One wake per sleep: the producer that swaps `sleeping` from true to
//!   false is the only one that wakes, so a burst costs one syscall.
//! - Every sleep is also bounded by a timeout, so even a bug here delays
//!   work by at most that timeout, never forever.

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;

use futures_util::task::AtomicWaker;

/// How a sleeping consumer is woken.
#[derive(Debug)]
enum Wake {
    /// The consumer is a thread parked with `park_timeout`; set once when
    /// that thread starts.
    Thread(OnceLock<Thread>),
    /// The consumer awaits a byte on the other end of this socket pair.
    Socket(UnixStream),
    /// The consumer is a task awaiting [`Doorbell::rung`]; woken from its
    /// own thread it is only scheduled, from another through its executor.
    Task(AtomicWaker),
}

/// A consumer's doorbell; see the module invariants.
#[derive(Debug)]
pub struct Doorbell {
    /// True while the consumer sleeps or is about to; raised by the consumer,
    /// lowered by whoever wakes it (or by the consumer when it wakes anyway).
    sleeping: AtomicBool,
    /// The wake action.
    wake: Wake,
    /// Wakes sent; only grows (a metric of how often the consumer slept).
    wakes_count: AtomicU64,
}

impl Doorbell {
    /// A doorbell for a thread that will call [`Doorbell::attach_thread`].
    pub fn for_thread() -> Doorbell {
        Doorbell { sleeping: AtomicBool::new(false), wake: Wake::Thread(OnceLock::new()), wakes_count: AtomicU64::new(0) }
    }

    /// A doorbell that writes to `writer`; the consumer reads the pair's
    /// other end. The writer is made non-blocking: a full socket already
    /// holds a wake.
    pub fn for_socket(writer: UnixStream) -> std::io::Result<Doorbell> {
        writer.set_nonblocking(true)?;
        Ok(Doorbell { sleeping: AtomicBool::new(false), wake: Wake::Socket(writer), wakes_count: AtomicU64::new(0) })
    }

    /// A doorbell for a task that awaits [`Doorbell::rung`].
    pub fn for_task() -> Doorbell {
        Doorbell { sleeping: AtomicBool::new(false), wake: Wake::Task(AtomicWaker::new()), wakes_count: AtomicU64::new(0) }
    }

    /// Task consumer, after [`Doorbell::prepare_sleep`] and a last look at
    /// its inputs: resolves once a producer rang (at once if one already
    /// did). Call [`Doorbell::awake`] after it, or after giving up on it.
    pub async fn rung(&self) {
        std::future::poll_fn(|context| {
            if let Wake::Task(waker) = &self.wake {
                waker.register(context.waker());
            }
            if self.sleeping.load(Ordering::Acquire) {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await
    }

    /// Records the calling thread as the one to unpark.
    pub fn attach_thread(&self) {
        if let Wake::Thread(thread) = &self.wake {
            let _ = thread.set(std::thread::current());
        }
    }

    /// Consumer: about to sleep. Check the inputs once more after this, and
    /// call [`Doorbell::awake`] when not sleeping after all, or on waking.
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Consumer: awake again (woken, timed out, or found work before sleeping).
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Producer: a record was just published; wakes the consumer if it
    /// sleeps. Costs a fence and a load when it does not.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if !self.sleeping.load(Ordering::Relaxed) || !self.sleeping.swap(false, Ordering::AcqRel) {
            return;
        }
        self.wakes_count.fetch_add(1, Ordering::Relaxed);
        match &self.wake {
            Wake::Thread(thread) => {
                if let Some(thread) = thread.get() {
                    thread.unpark();
                }
            }
            Wake::Task(waker) => waker.wake(),
            Wake::Socket(writer) => {
                // WouldBlock means the socket is full of earlier wakes, which
                // wake the consumer just as well; any other error leaves the
                // consumer to its sleep timeout.
                let _ = (&*writer).write(&[1]);
            }
        }
    }

    /// Wakes sent so far.
    pub fn wakes_count(&self) -> u64 {
        self.wakes_count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn ring_wakes_only_a_sleeper_and_only_once() {
        // A ring while awake sends nothing; the first ring after prepare_sleep writes one byte, the second none.
        let (writer, mut reader) = UnixStream::pair().unwrap();
        let bell = Doorbell::for_socket(writer).unwrap();
        bell.ring();
        assert_eq!(bell.wakes_count(), 0);
        bell.prepare_sleep();
        bell.ring();
        bell.ring();
        assert_eq!(bell.wakes_count(), 1);
        reader.set_nonblocking(true).unwrap();
        let mut buffer = [0u8; 8];
        assert_eq!(reader.read(&mut buffer).unwrap(), 1);
        assert!(reader.read(&mut buffer).is_err(), "exactly one byte was written");
    }

    #[test]
    fn a_parked_thread_is_unparked() {
        // The consumer thread parks for up to 60 s; the producer's ring ends the park long before.
        let bell = Arc::new(Doorbell::for_thread());
        let consumer_bell = Arc::clone(&bell);
        let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
        let consumer = std::thread::spawn(move || {
            consumer_bell.attach_thread();
            consumer_bell.prepare_sleep();
            ready_sender.send(()).unwrap();
            let started = std::time::Instant::now();
            while consumer_bell.sleeping.load(Ordering::Acquire) && started.elapsed() < Duration::from_secs(60) {
                std::thread::park_timeout(Duration::from_secs(60));
            }
            started.elapsed()
        });
        ready_receiver.recv().unwrap();
        bell.ring();
        let slept = consumer.join().unwrap();
        assert!(slept < Duration::from_secs(60), "the ring must end the park, slept {slept:?}");
        assert_eq!(bell.wakes_count(), 1);
    }
}
