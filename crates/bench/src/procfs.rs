//! CPU time and memory of processes, read from /proc (Linux).

use std::collections::{BTreeSet, HashMap};

/// Clock ticks per second of /proc/*/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// Fields after the `(comm)` of /proc/PID/stat.
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds (user + system, all threads) a process has used; `self` for this process.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let f = stat_fields(pid)?;
    // After the comm: state(3) ppid(4) … utime(14) stime(15) → indexes 11 and 12.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}

/// `pids` and all their descendants that are alive now.
pub fn with_descendants(pids: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(pid) = name.parse::<u32>() else { continue };
            if let Some(ppid) = stat_fields(name).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok())) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<u32> = pids.to_vec();
    while let Some(p) = todo.pop() {
        if std::fs::metadata(format!("/proc/{p}")).is_ok() && out.insert(p) {
            todo.extend(children.get(&p).into_iter().flatten().copied());
        }
    }
    out.into_iter().collect()
}

/// A `kB` value of a `Name:   123 kB` line.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of a process, kB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    kb_field(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, "VmRSS:")
}

/// Proportional set size of a process, kB (shared pages divided between their users).
pub fn pss_kb(pid: u32) -> Option<u64> {
    kb_field(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?, "Pss:")
}

/// A snapshot of a process tree.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Processes seen.
    pub pids: Vec<u32>,
    /// CPU seconds of each.
    pub cpu: HashMap<u32, f64>,
    /// Sum of VmRSS, kB.
    pub rss_kb: u64,
    /// Sum of PSS, kB.
    pub pss_kb: u64,
}

impl Snapshot {
    /// Reads `roots` and their descendants.
    pub fn take(roots: &[u32]) -> Snapshot {
        let pids = with_descendants(roots);
        let mut s = Snapshot { pids: pids.clone(), ..Snapshot::default() };
        for p in pids {
            if let Some(c) = cpu_seconds(&p.to_string()) {
                s.cpu.insert(p, c);
            }
            s.rss_kb += rss_kb(p).unwrap_or(0);
            s.pss_kb += pss_kb(p).unwrap_or(0);
        }
        s
    }

    /// CPU seconds used between `self` and `later` (processes that appeared count from zero).
    pub fn cpu_until(&self, later: &Snapshot) -> f64 {
        later.cpu.iter().map(|(p, c)| (c - self.cpu.get(p).copied().unwrap_or(0.0)).max(0.0)).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(cpu_seconds("self").is_some());
        let me = std::process::id();
        assert!(rss_kb(me).unwrap() > 0);
        assert!(with_descendants(&[me]).contains(&me));
        assert!(with_descendants(&[u32::MAX]).is_empty());
    }
}
