//! What `/proc` says about the instances and this process: memory of a live process, CPU of
//! the children reaped so far, of this process and of the calling thread.

use std::fs;

/// Memory figures of one live process, KiB.
#[derive(Default, Clone, Copy)]
pub struct Mem {
    pub rss: u64,
    /// Private pages: what the instance costs beyond the binary and libraries every instance
    /// maps (its `VmRSS` counts those too, so a sum of `VmRSS` counts them once per instance).
    pub anon: u64,
    /// The kernel's high-water mark of `VmRSS`.
    pub hwm: u64,
}

fn kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `None` once the process has exited (a zombie has no memory lines).
pub fn mem(pid: u32) -> Option<Mem> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Mem {
        rss: kib(&s, "VmRSS:")?,
        anon: kib(&s, "RssAnon:")?,
        hwm: kib(&s, "VmHWM:")?,
    })
}

/// Proportional set size, KiB: each shared page divided among the processes that map it.
pub fn pss(pid: u32) -> Option<u64> {
    kib(
        &fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?,
        "Pss:",
    )
}

/// CPU seconds of two adjacent clock-tick fields of a `stat` file, counted from the first field
/// after the command name (`utime` is 11, `cutime` 13).
fn stat_secs(path: &str, first: usize) -> f64 {
    let stat = fs::read_to_string(path).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let ticks: f64 = rest
        .split_whitespace()
        .skip(first)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// CPU of the children reaped so far: the kernel adds a child's to it when it is reaped.
pub fn children_cpu() -> f64 {
    stat_secs("/proc/self/stat", 13)
}

/// CPU of this process: the sandboxes and the monitor.
pub fn own_cpu() -> f64 {
    stat_secs("/proc/self/stat", 11)
}

/// CPU of the calling thread: the monitor's share of `own_cpu`.
pub fn thread_cpu() -> f64 {
    stat_secs("/proc/thread-self/stat", 11)
}
