//! `[server] hot_thread_slice_us` against the real binary: the shard thread
//! (where the routing core runs inline) and the routing core's own thread
//! run with the slice configured, as the kernel reports it for their thread
//! ids; 0 leaves the kernel's default, the slice of the main thread.

mod support;

use support::Bridge;
use tradebridge_net::hot_thread::slice_of;

/// Slice (ns) of each thread of `pid` whose name starts with `prefix`.
fn slices_of_threads(pid: u32, prefix: &str) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the bridge's threads") {
        let entry = entry.expect("a thread entry");
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_string();
        if !name.starts_with(prefix) {
            continue;
        }
        let tid: i32 = entry.file_name().to_string_lossy().parse().expect("a thread id");
        let (_, slice_ns) = slice_of(tid).expect("sched_getattr of a bridge thread");
        found.push((name, slice_ns));
    }
    found
}

#[test]
fn hot_path_threads_run_with_the_configured_slice_and_zero_keeps_the_kernels() {
    // Shows: with hot_thread_slice_us = 300 every shard thread (inline routing) and the routing core's thread (thread routing) run with a 300 us slice while the main thread keeps the kernel's; with 0 the shard's slice is the main thread's.
    for (routing, hot_prefix) in [("inline", "shard-"), ("thread", "router")] {
        let routing_value = format!("\"{routing}\"");
        let bridge = Bridge::start(&[("hot_thread_slice_us", "300"), ("routing", &routing_value), ("shards", "2")]);
        let (_, default_ns) = slice_of(bridge.pid() as i32).expect("sched_getattr of the main thread");
        assert_ne!(default_ns, 300_000, "the main thread keeps the kernel's slice");
        let hot = slices_of_threads(bridge.pid(), hot_prefix);
        assert!(!hot.is_empty(), "{routing}: no thread named {hot_prefix}*");
        // glommio names each shard's executor thread and its blocking-pool
        // thread alike; the executor is the first of each name.
        let mut seen = std::collections::BTreeSet::new();
        let first_of_each: Vec<_> = hot.into_iter().filter(|(name, _)| seen.insert(name.clone())).collect();
        for (name, slice_ns) in &first_of_each {
            assert_eq!(*slice_ns, 300_000, "{routing}: thread {name}");
        }
        if routing == "thread" {
            for (name, slice_ns) in slices_of_threads(bridge.pid(), "shard-").into_iter().filter(|(name, _)| seen.insert(name.clone())) {
                assert_eq!(slice_ns, 300_000, "{routing}: thread {name}");
            }
        }
    }
    let bridge = Bridge::start(&[("hot_thread_slice_us", "0")]);
    let (_, default_ns) = slice_of(bridge.pid() as i32).expect("sched_getattr of the main thread");
    let shards = slices_of_threads(bridge.pid(), "shard-");
    assert!(!shards.is_empty(), "no shard thread found");
    for (name, slice_ns) in shards {
        assert_eq!(slice_ns, default_ns, "thread {name} keeps the kernel's slice");
    }
}
