//! A microsecond-precise async sleep for the send schedule.
//!
//! tokio's timer wheel has a resolution of one millisecond, so a sender
//! woken by it goes out up to a millisecond late; measured from the
//! intended send time, that delay would be charged to the bridge (whose
//! whole budget is "well under a millisecond"). A Linux `timerfd` fires
//! from a high-resolution kernel timer and wakes the runtime's epoll
//! directly, so the sender runs within microseconds of its intended time.
//!
//! # Invariants
//! - One timer per sending task; it is armed for one deadline at a time.
//! - `sleep_until` returns at or after the deadline, never before.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A timerfd registered with the current tokio runtime.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// Creates the timer; must run inside a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: timerfd_create has no memory effects; the result is checked.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `owned` is an open descriptor that the AsyncFd now owns; it
        // stays open and the same until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }.map_err(|error| error.into_parts().1)?;
        Ok(PreciseTimer { fd })
    }

    /// Sleeps until `deadline` (returns at once when it has passed).
    pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(());
        }
        self.arm(remaining)?;
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into the 8-byte buffer.
            let read = unsafe { libc::read(guard.get_inner().as_raw_fd(), expirations.as_mut_ptr().cast(), expirations.len()) };
            if read == 8 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::WouldBlock {
                return Err(error);
            }
            guard.clear_ready();
        }
    }

    /// Arms the timer to fire once after `after` (relative to now).
    fn arm(&self, after: Duration) -> io::Result<()> {
        let value = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: after.as_secs() as libc::time_t, tv_nsec: after.subsec_nanos() as libc::c_long },
        };
        // SAFETY: timerfd_settime reads `value` and writes nothing (old value null).
        let result = unsafe { libc::timerfd_settime(self.fd.get_ref().as_raw_fd(), 0, &value, std::ptr::null_mut()) };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
