//! # trunkgate-bench: a SIP load generator
//!
//! What it does: drives any SIP server over TLS, TCP or UDP with one of four loads and reports
//! achieved rate, failures by cause, latency percentiles and CPU:
//! - [`Mode::Options`]: OPTIONS over N persistent connections, each with a window of
//!   outstanding requests;
//! - [`Mode::Handshakes`]: a new TLS connection per transaction (connect, full handshake with the
//!   chosen suite/group/version, one OPTIONS, close);
//! - [`Mode::Calls`]: INVITE–200–ACK, hold, BYE–200 over UDP, TCP or TLS; the callee can be
//!   [`answer::serve`] (`trunkgate bench answer`), a stateless answering UAS;
//! - [`Mode::Idle`]: open N TLS connections and hold them, measuring the server's resident memory
//!   per connection.
//!
//! Every load is bounded by a count and a duration, optionally paced at a rate, runs on a
//! multi-threaded tokio runtime and reports the generator's own CPU time (/proc/self/stat) so a
//! reader can tell whether it was the bottleneck; with `server_pids` it also reports the server's
//! CPU (its process and descendants, /proc/PID/stat) and memory (VmRSS, PSS) for figures per
//! core-second of server CPU.
//!
//! What it does not do: retransmit over UDP beyond a few bounded INVITE/BYE retries (loss counts
//! as a timeout), authenticate, send media, or verify the server certificate unless `ca` is set.
//! Traffic goes wherever the target says: keep it on loopback for benchmarks.

pub mod answer;
mod modes;
pub mod msg;
pub mod net;
pub mod procfs;
pub mod speed;
pub mod stats;

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use stats::{Latency, Report, ServerUsage};

/// Transport to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl std::str::FromStr for Transport {
    type Err = BenchError;
    fn from_str(s: &str) -> Result<Self, BenchError> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            _ => Err(BenchError::Usage(format!("unknown transport {s:?} (udp, tcp or tls)"))),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// The load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// OPTIONS over persistent connections with a window.
    Options,
    /// A new TLS connection (full handshake) per OPTIONS transaction.
    Handshakes,
    /// INVITE–200–ACK–hold–BYE.
    Calls,
    /// Open connections and hold them.
    Idle,
}

impl Mode {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Options => "options",
            Mode::Handshakes => "handshakes",
            Mode::Calls => "calls",
            Mode::Idle => "idle",
        }
    }
}

/// TLS client choices.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// OpenSSL cipher list for TLS ≤ 1.2 (`ECDHE-RSA-AES256-GCM-SHA384`, `AES128-GCM-SHA256`).
    pub ciphers: Option<String>,
    /// Groups (`P-384`, `X25519:P-256`).
    pub groups: Option<String>,
    /// `1.2`, `1.3` or `any` (None = any).
    pub version: Option<String>,
    /// Verify the server against this CA file (default: no verification).
    pub ca: Option<PathBuf>,
    /// SNI (and the name verified with `ca`).
    pub server_name: Option<String>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Load.
    pub mode: Mode,
    /// Server address.
    pub target: SocketAddr,
    /// Transport (handshakes and idle: always TLS).
    pub transport: Transport,
    /// Persistent connections (options, calls), concurrent workers (handshakes), connections to
    /// hold (idle).
    pub connections: usize,
    /// Outstanding requests per connection (options), calls at once per connection (calls),
    /// handshakes at once (idle).
    pub window: usize,
    /// Operations per second, all connections together (None: as fast as the window allows).
    pub rate: Option<f64>,
    /// Stop after this many operations (idle: defaults to `connections`).
    pub count: Option<u64>,
    /// No operation starts after this time.
    pub duration: Duration,
    /// A transaction not answered within this time fails ("timeout").
    pub timeout: Duration,
    /// Calls: time between ACK and BYE. Idle: how long all connections are held.
    pub hold: Duration,
    /// TLS choices.
    pub tls: TlsOptions,
    /// Local source addresses, used in turn (e.g. 127.0.0.2–127.0.0.9 for more than ~28k
    /// connections to one server port).
    pub sources: Vec<IpAddr>,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
    /// Print a live progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Server processes to measure (with their descendants).
    pub server_pids: Vec<u32>,
    /// Request-URI (default `sip:+13175550100@TARGET` for calls, `sip:TARGET` for OPTIONS).
    pub uri: Option<String>,
    /// Handshakes mode: close right after the handshake instead of sending an OPTIONS (the
    /// pure cost of a full handshake, issue 5).
    pub handshake_only: bool,
}

impl BenchConfig {
    /// Defaults for a mode and target.
    pub fn new(mode: Mode, target: SocketAddr) -> BenchConfig {
        BenchConfig {
            mode,
            target,
            transport: Transport::Tls,
            connections: 1,
            window: 32,
            rate: None,
            count: None,
            duration: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            hold: Duration::from_millis(0),
            tls: TlsOptions::default(),
            sources: Vec::new(),
            threads: 0,
            progress: false,
            server_pids: Vec::new(),
            uri: None,
            handshake_only: false,
        }
    }

    fn source(&self, i: usize) -> Option<IpAddr> {
        if self.sources.is_empty() {
            None
        } else {
            self.sources.get(i % self.sources.len()).copied()
        }
    }
}

/// Why the benchmark could not run (as opposed to: it ran and operations failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// TLS setup.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Runtime or socket setup.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the load and reports.
pub fn run(cfg: &BenchConfig) -> Result<Report, BenchError> {
    if cfg.connections == 0 || cfg.window == 0 {
        return Err(BenchError::Usage("connections and window must be at least 1".into()));
    }
    if matches!(cfg.rate, Some(r) if r.is_nan() || r <= 0.0) {
        return Err(BenchError::Usage("rate must be positive".into()));
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if cfg.threads > 0 {
        rt.worker_threads(cfg.threads);
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(run_async(cfg))
}

/// Runs the load on the current tokio runtime (multi-threaded) and reports.
pub async fn run_async(cfg: &BenchConfig) -> Result<Report, BenchError> {
    let connector = net::connector(&cfg.tls)?;
    let count = match cfg.mode {
        Mode::Idle => Some(cfg.count.unwrap_or(cfg.connections as u64)),
        _ => cfg.count,
    };
    let shared = Arc::new(stats::Shared::new(count, cfg.duration));
    let server_before = (!cfg.server_pids.is_empty()).then(|| procfs::Snapshot::take(&cfg.server_pids));
    let cpu_before = procfs::cpu_seconds("self").unwrap_or(0.0);
    let progress = if cfg.progress && std::io::stderr().is_terminal() {
        Some(tokio::spawn(progress_line(shared.clone(), cfg.mode)))
    } else {
        None
    };
    let mut server_after = None;
    let (mut server_mid, mut open_mid) = (None::<procfs::Snapshot>, 0u64);
    let mut open = 0;
    let cfg2 = cfg.clone();
    match cfg.mode {
        Mode::Options => modes::options(&cfg2, &connector, &shared).await,
        Mode::Handshakes => modes::handshakes(&cfg2, &connector, &shared).await,
        Mode::Calls => modes::calls(&cfg2, &connector, &shared).await,
        Mode::Idle => {
            // Two phases with a measurement after each: the growth in the second half is the
            // marginal cost of a connection.
            let half = count.map(|c| c / 2).filter(|&h| h > 0);
            let mut held = modes::idle_open(&cfg2, &connector, &shared, half).await;
            if half.is_some() {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                open_mid = held.len() as u64;
                server_mid = (!cfg.server_pids.is_empty()).then(|| procfs::Snapshot::take(&cfg.server_pids));
                held.extend(modes::idle_open(&cfg2, &connector, &shared, None).await);
            }
            open = held.len() as u64;
            // Let the server settle, measure with everything open, then hold.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            server_after = (!cfg.server_pids.is_empty()).then(|| procfs::Snapshot::take(&cfg.server_pids));
            tokio::time::sleep(cfg.hold).await;
            drop(held);
        }
    }
    let elapsed = shared.began.elapsed();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let client_cpu = procfs::cpu_seconds("self").unwrap_or(0.0) - cpu_before;
    let server_after =
        server_after.or_else(|| (!cfg.server_pids.is_empty()).then(|| procfs::Snapshot::take(&cfg.server_pids)));
    let ok = shared.ok.load(std::sync::atomic::Ordering::Relaxed);
    let server = match (&server_before, &server_after) {
        (Some(b), Some(a)) => {
            let cpu = b.cpu_until(a);
            Some(ServerUsage {
                pids: a.pids.clone(),
                cpu_s: cpu,
                ops_per_cpu_s: if cpu > 0.0 { ok as f64 / cpu } else { 0.0 },
                cpu_us_per_op: if ok > 0 { cpu * 1e6 / ok as f64 } else { 0.0 },
                rss_kb_before: b.rss_kb,
                rss_kb_after: a.rss_kb,
                pss_kb_before: b.pss_kb,
                pss_kb_after: a.pss_kb,
                rss_kb_mid: server_mid.as_ref().map(|m| m.rss_kb),
                pss_kb_mid: server_mid.as_ref().map(|m| m.pss_kb),
            })
        }
        _ => None,
    };
    // Growth in bytes per connection opened between two measurements (kB figures).
    let growth = |from_kb: u64, to_kb: u64, conns: u64| {
        (cfg.mode == Mode::Idle && conns > 0).then(|| (to_kb as f64 - from_kb as f64) * 1024.0 / conns as f64)
    };
    let per_conn = |before: u64, after: u64| growth(before, after, open);
    let marginal = |mid: u64, after: u64| growth(mid, after, open.saturating_sub(open_mid));
    let elapsed_s = elapsed.as_secs_f64();
    Ok(Report {
        mode: cfg.mode.name().into(),
        transport: match cfg.mode {
            Mode::Handshakes | Mode::Idle => "tls".into(),
            _ => cfg.transport.to_string(),
        },
        target: cfg.target.to_string(),
        elapsed_s,
        started: shared.started.load(std::sync::atomic::Ordering::Relaxed),
        ok,
        failed: shared.failed.load(std::sync::atomic::Ordering::Relaxed),
        failures: shared.failures(),
        rate_per_s: if elapsed_s > 0.0 { ok as f64 / elapsed_s } else { 0.0 },
        latency: shared.histogram().summary(),
        client_cpu_s: client_cpu,
        client_cores: if elapsed_s > 0.0 { client_cpu / elapsed_s } else { 0.0 },
        open_connections: open,
        server_rss_bytes_per_conn: server.as_ref().and_then(|s| per_conn(s.rss_kb_before, s.rss_kb_after)),
        server_pss_bytes_per_conn: server.as_ref().and_then(|s| per_conn(s.pss_kb_before, s.pss_kb_after)),
        open_at_mid: open_mid,
        server_rss_bytes_per_conn_marginal: server.as_ref().and_then(|s| marginal(s.rss_kb_mid?, s.rss_kb_after)),
        server_pss_bytes_per_conn_marginal: server.as_ref().and_then(|s| marginal(s.pss_kb_mid?, s.pss_kb_after)),
        server,
    })
}

async fn progress_line(shared: Arc<stats::Shared>, mode: Mode) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ok = shared.ok.load(std::sync::atomic::Ordering::Relaxed);
        let failed = shared.failed.load(std::sync::atomic::Ordering::Relaxed);
        let now = Instant::now();
        let rate = (ok - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, ok);
        eprint!(
            "\r{} {:>6.1} s  ok {ok:>9}  failed {failed:>6}  {rate:>9.0}/s   ",
            mode.name(),
            shared.began.elapsed().as_secs_f64()
        );
    }
}
