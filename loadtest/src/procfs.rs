//! What Linux says about processes and the machine: CPU time and memory of
//! a process, the machine's description for reports, other busy jobs, and
//! the open-files limit.
//!
//! # Invariants
//! - CPU time is user + system time from `/proc/<pid>/stat` (fields 14 and
//!   15), in clock ticks converted with `sysconf(_SC_CLK_TCK)`.
//! - Memory figures are `/proc/<pid>/status` VmRSS and VmHWM, in KiB.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use serde::Serialize;

/// User + system CPU seconds used so far by process `pid` ("self" works).
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces, so
    // fields are counted after its closing parenthesis: field 3 is index 0.
    let after_name = text.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow!("{path}: no ')' after the command name"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> anyhow::Result<u64> {
        let text = fields.get(number - 3).ok_or_else(|| anyhow!("{path}: field {number} missing"))?;
        text.parse().map_err(|_| anyhow!("{path}: field {number} is {text:?}, expected an unsigned integer"))
    };
    let ticks = field(14)? + field(15)?;
    // SAFETY: sysconf has no memory effects; it only reads a constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_second <= 0 {
        return Err(anyhow!("sysconf(_SC_CLK_TCK) returned {ticks_per_second}, expected a positive tick rate"));
    }
    Ok(ticks as f64 / ticks_per_second as f64)
}

/// CPU seconds the whole machine has been busy (all CPUs: user, nice,
/// system, irq, softirq, steal; not idle or iowait), from /proc/stat.
/// Minus the bridge's and the harness's own, it shows what else ran.
pub fn machine_busy_seconds() -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text.lines().next().filter(|line| line.starts_with("cpu ")).ok_or_else(|| anyhow!("/proc/stat: no aggregate cpu line"))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(|field| field.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|index| ticks.get(*index)).sum();
    // SAFETY: sysconf has no memory effects; it only reads a constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    Ok(busy as f64 / ticks_per_second as f64)
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident set now (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set (VmHWM).
    pub hwm_kib: u64,
}

/// VmRSS and VmHWM of process `pid` ("self" works).
pub fn memory(pid: &str) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = |name: &str| -> anyhow::Result<u64> {
        let line = text.lines().find(|line| line.starts_with(name)).ok_or_else(|| anyhow!("{path}: no {name} line"))?;
        let number = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("{path}: {name} has no value"))?;
        number.parse().map_err(|_| anyhow!("{path}: {name} is {number:?}, expected KiB as an integer"))
    };
    Ok(Memory { rss_kib: kib("VmRSS:")?, hwm_kib: kib("VmHWM:")? })
}

/// The machine a report was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// `model name` of the first CPU in /proc/cpuinfo.
    pub model: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, in MiB.
    pub ram_mib: u64,
    /// 1, 5 and 15 minute load averages when the description was taken.
    pub load_average: String,
    /// Compilers, linkers and build tools running beside the harness, by
    /// name and count: their CPU use competes with the measurement.
    pub other_busy_processes: BTreeMap<String, u32>,
}

/// Process names that mean another job is building on the machine.
const BUILD_PROCESS_NAMES: [&str; 8] = ["rustc", "cargo", "cc1", "cc1plus", "ld", "clang", "cargo-nextest", "rust-analyzer"];

/// Describes the machine now.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, name)| name.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let ram_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| text.lines().find(|line| line.starts_with("MemTotal:")).and_then(|line| line.split_whitespace().nth(1)).and_then(|kib| kib.parse().ok()))
        .unwrap_or(0);
    Machine {
        cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|text| text.trim().to_string()).unwrap_or_else(|_| "unknown".into()),
        ram_mib: ram_kib / 1024,
        load_average: load_average(),
        other_busy_processes: busy_processes(),
    }
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// Build tools running now, by name (other users' and workers' included).
pub fn busy_processes() -> BTreeMap<String, u32> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) else { continue };
        let name = name.trim();
        if BUILD_PROCESS_NAMES.contains(&name) {
            *found.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    found
}

/// Raises this process's open-files soft limit to its hard limit (10 000
/// connections need as many descriptors); returns the new soft limit.
pub fn raise_open_files_limit() -> anyhow::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(anyhow!("getrlimit(RLIMIT_NOFILE): {}", std::io::Error::last_os_error()));
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads only the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(anyhow!("setrlimit(RLIMIT_NOFILE, {}): {}", limit.rlim_max, std::io::Error::last_os_error()));
        }
        limit.rlim_cur = limit.rlim_max;
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_and_memory_are_read_and_plausible() {
        // Shows: this process's CPU time is read and never goes back, and its resident memory is non-zero and at most its peak.
        let before = cpu_seconds("self").expect("stat");
        let work: u64 = (0..2_000_000u64).map(std::hint::black_box).sum();
        std::hint::black_box(work);
        let after = cpu_seconds("self").expect("stat");
        assert!(after >= before, "cpu time {before} -> {after}");
        let memory = memory("self").expect("status");
        assert!(memory.rss_kib > 0 && memory.rss_kib <= memory.hwm_kib, "{memory:?}");
        assert!(machine().cores >= 1);
    }
}
