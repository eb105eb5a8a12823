//! Counters shared by the load tasks, a log-linear latency histogram (≈1.5 % resolution), and
//! the final [`Report`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Sub-buckets per power of two above [`LINEAR`].
const SUB: u64 = 64;
/// Values below this (µs) have a bucket each.
const LINEAR: u64 = 128;
/// Powers of two covered above `LINEAR` (up to ≈ 2^47 µs).
const OCTAVES: u64 = 40;

/// Latencies in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; (LINEAR + SUB * OCTAVES) as usize], total: 0, max: 0, sum: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // ≥ 7
    let sub = (v >> (e - 6)) & (SUB - 1);
    let idx = LINEAR + (e - 7) * SUB + sub;
    idx.min(LINEAR + SUB * OCTAVES - 1) as usize
}

fn bucket_value(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < LINEAR {
        return idx;
    }
    let e = (idx - LINEAR) / SUB + 7;
    let sub = (idx - LINEAR) % SUB;
    (1u64 << e) | (sub << (e - 6))
}

impl Histogram {
    /// Records one value (µs).
    pub fn record(&mut self, us: u64) {
        if let Some(c) = self.counts.get_mut(bucket(us)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(us);
        self.sum += u128::from(us);
    }

    /// Adds another histogram.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += *b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0–1), µs (lower edge of its bucket).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return self.max;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }

    /// Latency summary in milliseconds.
    pub fn summary(&self) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            samples: self.total,
            p50_ms: ms(self.quantile(0.50)),
            p90_ms: ms(self.quantile(0.90)),
            p99_ms: ms(self.quantile(0.99)),
            max_ms: ms(self.max),
            mean_ms: if self.total == 0 { 0.0 } else { self.sum as f64 / self.total as f64 / 1000.0 },
        }
    }
}

/// Latency percentiles of successful operations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// How many values.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// Counters and bounds shared by every load task.
#[derive(Debug)]
pub struct Shared {
    /// Operations started (slots claimed).
    pub started: AtomicU64,
    /// Operations that succeeded.
    pub ok: AtomicU64,
    /// Operations that failed.
    pub failed: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    hist: Mutex<Histogram>,
    stop: AtomicBool,
    count: Option<u64>,
    deadline: Instant,
    /// When the load began.
    pub began: Instant,
}

impl Shared {
    /// Bounds: at most `count` operations, none started after `duration`.
    pub fn new(count: Option<u64>, duration: Duration) -> Shared {
        let now = Instant::now();
        Shared {
            started: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            hist: Mutex::new(Histogram::default()),
            stop: AtomicBool::new(false),
            count,
            deadline: now + duration,
            began: now,
        }
    }

    /// Claims the next operation, or None when the count or the time is used up.
    pub fn claim(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            return None;
        }
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        match self.count {
            Some(c) if n >= c => {
                self.started.fetch_sub(1, Ordering::Relaxed);
                None
            }
            _ => Some(n),
        }
    }

    /// Like [`Shared::claim`], and also below `limit` (an idle run opens its connections in two
    /// phases).
    pub fn claim_within(&self, limit: Option<u64>) -> Option<u64> {
        let n = self.claim()?;
        if limit.is_some_and(|l| n >= l) {
            self.started.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(n)
    }

    /// Stops handing out operations.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// When no new operation starts.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A success with its latency.
    pub fn success(&self, latency: Duration) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.hist.lock() {
            h.record(latency.as_micros().min(u128::from(u64::MAX)) as u64);
        }
    }

    /// A failure, by cause.
    pub fn failure(&self, cause: impl Into<String>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.failures.lock() {
            *f.entry(cause.into()).or_insert(0) += 1;
        }
    }

    /// Failures by cause so far.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The latency histogram so far.
    pub fn histogram(&self) -> Histogram {
        self.hist.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// What the server under test used, read from /proc (its process and all descendants).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerUsage {
    /// The processes measured.
    pub pids: Vec<u32>,
    /// CPU seconds (user + system) spent during the run.
    pub cpu_s: f64,
    /// Successful operations per second of server CPU.
    pub ops_per_cpu_s: f64,
    /// Server CPU per successful operation, µs.
    pub cpu_us_per_op: f64,
    /// Resident memory before the run (sum of VmRSS, kB).
    pub rss_kb_before: u64,
    /// Resident memory at the end of the run (idle: with all connections open), kB.
    pub rss_kb_after: u64,
    /// Proportional set size before (shared pages split between processes), kB.
    pub pss_kb_before: u64,
    /// Proportional set size at the end, kB.
    pub pss_kb_after: u64,
    /// Idle mode: VmRSS with half of the connections open, kB.
    pub rss_kb_mid: Option<u64>,
    /// Idle mode: PSS with half of the connections open, kB.
    pub pss_kb_mid: Option<u64>,
}

/// The final report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Mode.
    pub mode: String,
    /// Transport.
    pub transport: String,
    /// Target.
    pub target: String,
    /// Wall time of the load, s.
    pub elapsed_s: f64,
    /// Operations started.
    pub started: u64,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Failures by cause.
    pub failures: BTreeMap<String, u64>,
    /// Successful operations per second of wall time.
    pub rate_per_s: f64,
    /// Latency of successful operations (options: request→response; handshakes: connect→
    /// response on the new connection; calls: INVITE→200; idle: connect→handshake done).
    pub latency: Latency,
    /// CPU seconds the load generator itself used (/proc/self/stat), so a reader can tell
    /// whether it was the bottleneck.
    pub client_cpu_s: f64,
    /// Client CPU per wall second (1.0 = one core busy).
    pub client_cores: f64,
    /// Idle mode: connections open at the end.
    pub open_connections: u64,
    /// Idle mode: server memory growth per open connection, bytes (VmRSS based).
    pub server_rss_bytes_per_conn: Option<f64>,
    /// Idle mode: server memory growth per open connection, bytes (PSS based).
    pub server_pss_bytes_per_conn: Option<f64>,
    /// Idle mode: connections open at the midpoint measurement.
    pub open_at_mid: u64,
    /// Idle mode: growth from the midpoint to the end per connection opened in between, bytes
    /// (VmRSS): the marginal cost of one more connection, without one-time costs such as
    /// thread stacks, allocator arenas and bounded rings filling up in the first half.
    pub server_rss_bytes_per_conn_marginal: Option<f64>,
    /// Idle mode: the same, PSS based.
    pub server_pss_bytes_per_conn_marginal: Option<f64>,
    /// The server, when `--server-pid` was given.
    pub server: Option<ServerUsage>,
}

impl Report {
    /// Human-readable text.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let _ = writeln!(t, "trunkgate bench {} over {} to {}", self.mode, self.transport, self.target);
        let _ = writeln!(
            t,
            "  done      {} ok, {} failed of {} started in {:.2} s → {:.1}/s",
            self.ok, self.failed, self.started, self.elapsed_s, self.rate_per_s
        );
        for (cause, n) in &self.failures {
            let _ = writeln!(t, "  failure   {n} × {cause}");
        }
        let l = &self.latency;
        let _ = writeln!(
            t,
            "  latency   p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} samples)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.samples
        );
        let _ = writeln!(t, "  client    {:.2} CPU s ({:.2} cores)", self.client_cpu_s, self.client_cores);
        if self.mode == "idle" {
            let _ = writeln!(t, "  open      {} connections", self.open_connections);
        }
        if let Some(s) = &self.server {
            let _ = writeln!(
                t,
                "  server    pids {:?}: {:.2} CPU s → {:.0} ok per core-second ({:.1} µs each)",
                s.pids, s.cpu_s, s.ops_per_cpu_s, s.cpu_us_per_op
            );
            let _ = writeln!(
                t,
                "  memory    VmRSS {} → {} kB, PSS {} → {} kB",
                s.rss_kb_before, s.rss_kb_after, s.pss_kb_before, s.pss_kb_after
            );
        }
        if let (Some(r), Some(p)) = (self.server_rss_bytes_per_conn, self.server_pss_bytes_per_conn) {
            let _ = writeln!(t, "  per conn  {r:.0} B (VmRSS), {p:.0} B (PSS)");
        }
        if let (Some(r), Some(p)) = (self.server_rss_bytes_per_conn_marginal, self.server_pss_bytes_per_conn_marginal) {
            let _ = writeln!(
                t,
                "  marginal  {r:.0} B (VmRSS), {p:.0} B (PSS) per connection from {} to {} open",
                self.open_at_mid, self.open_connections
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantiles_within_two_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn claim_stops_at_count() {
        let s = Shared::new(Some(3), Duration::from_secs(60));
        assert_eq!((s.claim(), s.claim(), s.claim(), s.claim()), (Some(0), Some(1), Some(2), None));
        assert_eq!(s.started.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn claim_within_stops_at_the_phase_limit_then_the_count() {
        let s = Shared::new(Some(4), Duration::from_secs(60));
        assert_eq!(
            (s.claim_within(Some(2)), s.claim_within(Some(2)), s.claim_within(Some(2))),
            (Some(0), Some(1), None)
        );
        assert_eq!((s.claim_within(None), s.claim_within(None), s.claim_within(None)), (Some(2), Some(3), None));
        assert_eq!(s.started.load(Ordering::Relaxed), 4);
    }
}
