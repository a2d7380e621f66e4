//! The scheduler slice of the hot-path threads (`[server]
//! hot_thread_slice_us`).
//!
//! Linux 6.12 and later (EEVDF) take a per-thread time slice for normal
//! threads through `sched_setattr`'s `sched_runtime`, without privileges.
//! A thread's deadline is its virtual runtime plus its slice, so a thread
//! with a short slice that wakes on a core where another process runs is
//! picked at once, where with the default slice (0.7 ms times 1 + log2 of
//! the cores) it often waited for that process's next tick. Measured here
//! with the persister's Postgres on the same two cores: the shard waited
//! over 0.5 ms for its core 77 times in 6 s with the default slice, 16
//! times with 100 us; end to end the runs did not improve, so the default
//! stays 0 (net/README.md, "Sharing the machine").
//!
//! # Layout
//! - [`apply`]: sets the calling thread's slice and reads it back.
//! - [`SliceOutcome`]: what the kernel did with it.

/// `struct sched_attr` of `sched_setattr(2)` (size 56, `SCHED_ATTR_SIZE_VER1`).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// What [`apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum SliceOutcome {
    /// The kernel runs the thread with this slice (microseconds).
    Applied(u32),
    /// `hot_thread_slice_us = 0`: nothing asked.
    KernelDefault,
    /// The kernel refused or ignored it (before Linux 6.12, or a policy
    /// other than the normal one set from outside): the default slice stays.
    Unsupported(String),
}

/// Reads the slice (`sched_runtime`, nanoseconds) of thread `tid` (0 for
/// the caller), and its policy.
pub fn slice_of(tid: i32) -> std::io::Result<(u32, u64)> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is a writable `struct sched_attr` of the size passed.
    let result = unsafe { libc::syscall(libc::SYS_sched_getattr, tid, &mut attr as *mut SchedAttr, std::mem::size_of::<SchedAttr>() as u32, 0u32) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((attr.sched_policy, attr.sched_runtime))
}

/// Asks the kernel for a slice of `slice_us` microseconds for the calling
/// thread, keeping its policy (normal) and nice value, and checks that it
/// took. `thread` names the thread in the log line.
pub fn apply(slice_us: u32, thread: &str) -> SliceOutcome {
    let outcome = set(slice_us);
    match &outcome {
        SliceOutcome::Applied(slice_us) => tracing::debug!(thread, slice_us, "hot-path thread's scheduler slice set"),
        SliceOutcome::KernelDefault => {}
        SliceOutcome::Unsupported(why) => tracing::info!(
            thread,
            slice_us,
            why = why.as_str(),
            "hot_thread_slice_us not applied (needs Linux 6.12 or later); the thread keeps the kernel's default slice"
        ),
    }
    outcome
}

fn set(slice_us: u32) -> SliceOutcome {
    if slice_us == 0 {
        return SliceOutcome::KernelDefault;
    }
    let (policy, _) = match slice_of(0) {
        Ok(found) => found,
        Err(error) => return SliceOutcome::Unsupported(format!("sched_getattr: {error}")),
    };
    if policy != libc::SCHED_OTHER as u32 {
        return SliceOutcome::Unsupported(format!("the thread runs under scheduling policy {policy}, not the normal one"));
    }
    // SAFETY: getpriority on the calling thread reads its nice value.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let runtime_ns = u64::from(slice_us) * 1_000;
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_nice: nice,
        sched_runtime: runtime_ns,
        ..SchedAttr::default()
    };
    // SAFETY: `attr` is a valid `struct sched_attr` of the size it states,
    // writable (the kernel writes `size` back when it expects another).
    let result = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &mut attr as *mut SchedAttr, 0u32) };
    if result != 0 {
        return SliceOutcome::Unsupported(format!("sched_setattr: {}", std::io::Error::last_os_error()));
    }
    match slice_of(0) {
        Ok((_, read)) if read == runtime_ns => SliceOutcome::Applied(slice_us),
        Ok((_, read)) => SliceOutcome::Unsupported(format!("the kernel kept a slice of {read} ns")),
        Err(error) => SliceOutcome::Unsupported(format!("sched_getattr: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_gets_the_slice_asked_and_zero_asks_nothing() {
        // On its own thread, so the test harness's threads keep theirs.
        std::thread::spawn(|| {
            let (_, before) = slice_of(0).expect("sched_getattr");
            assert_eq!(apply(0, "test"), SliceOutcome::KernelDefault);
            assert_eq!(slice_of(0).expect("sched_getattr").1, before, "0 changes nothing");
            // This machine's kernel (6.18) takes it; an older kernel says why not.
            match apply(250, "test") {
                SliceOutcome::Applied(250) => assert_eq!(slice_of(0).expect("sched_getattr").1, 250_000),
                other => panic!("expected the slice to be applied on this kernel, got {other:?}"),
            }
        })
        .join()
        .expect("the test thread");
    }
}
