//! `trunkgate bench …` (issue 9): load-test any SIP server over TLS, TCP or UDP, answer calls
//! as a callee, and write the material of the side-by-side benchmark (`bench/`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use trunkgate_bench::{BenchConfig, Mode, TlsOptions, Transport};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// OPTIONS over N persistent connections, each with a window of outstanding requests.
    Options(LoadArgs),
    /// A new TLS connection (full handshake with the chosen suite and group) per OPTIONS
    /// transaction, or per handshake alone with --handshake-only; --connections workers at once.
    Handshakes(LoadArgs),
    /// Calls: INVITE, 200, ACK, --hold-ms, BYE, 200; --window calls at once per connection.
    Calls(LoadArgs),
    /// Open --connections TLS connections (--window handshakes at once), hold them --hold-ms,
    /// report the server's memory per connection (with --server-pid).
    Idle(LoadArgs),
    /// A stateless callee: answers INVITE with 200 + SDP, BYE/OPTIONS with 200, for --duration.
    Answer(AnswerArgs),
    /// Write the benchmark's throwaway PKI and an edge configuration into DIR (bench/run.sh).
    Setup(SetupArgs),
    /// The crypto bound of a full handshake on the OpenSSL trunkgate links: RSA-2048 private
    /// operation, P-384 key generation and ECDH, one thread (compare with `openssl speed rsa2048
    /// ecdhp384`, which measures the system library).
    Speed(SpeedArgs),
}

#[derive(Debug, Args)]
struct SpeedArgs {
    /// Seconds per operation.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Server address (IP:port).
    target: SocketAddr,
    /// udp, tcp or tls (handshakes and idle are always TLS).
    #[arg(long, short = 't', default_value = "tls")]
    transport: String,
    /// Persistent connections (options, calls), concurrent workers (handshakes), connections
    /// to open (idle).
    #[arg(long, short = 'c', default_value_t = 1)]
    connections: usize,
    /// Outstanding requests per connection (options), calls at once per connection (calls),
    /// handshakes at once (idle).
    #[arg(long, short = 'w', default_value_t = 32)]
    window: usize,
    /// Operations per second in total (default: as fast as the window allows).
    #[arg(long, short = 'r')]
    rate: Option<f64>,
    /// Stop after this many operations.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// No operation starts after this many seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// A transaction not answered within this many seconds fails.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Calls: ACK to BYE; idle: how long the connections are held after opening (ms).
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// OpenSSL cipher list for TLS ≤ 1.2 (ECDHE-RSA-AES256-GCM-SHA384, AES128-GCM-SHA256).
    #[arg(long)]
    ciphers: Option<String>,
    /// Key exchange groups (P-384, X25519:P-256).
    #[arg(long)]
    groups: Option<String>,
    /// TLS version: 1.2, 1.3 or any.
    #[arg(long)]
    tls_version: Option<String>,
    /// Verify the server against this CA file (default: no verification).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// SNI, and the name verified with --ca.
    #[arg(long)]
    sni: Option<String>,
    /// Local source addresses used in turn; a range 127.0.0.2-127.0.0.9 is allowed. Needed for
    /// more than ~28k connections to one server port.
    #[arg(long = "source")]
    sources: Vec<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Measure this server process (and its descendants): CPU per operation, memory.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Request-URI (default sip:TARGET, calls sip:+13175550100@TARGET).
    #[arg(long)]
    uri: Option<String>,
    /// handshakes: close each connection (close_notify) right after the handshake instead of
    /// sending an OPTIONS on it — the cost of the handshake alone.
    #[arg(long)]
    handshake_only: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No live progress line (it is only shown when stderr is a terminal).
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct AnswerArgs {
    /// UDP listener.
    #[arg(long)]
    udp: Option<SocketAddr>,
    /// TCP listener.
    #[arg(long)]
    tcp: Option<SocketAddr>,
    /// TLS listener (with --cert and --key).
    #[arg(long)]
    tls: Option<SocketAddr>,
    /// PEM certificate chain, leaf first.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// host[:port] for the Contact of 200 to INVITE (default: the listener's address).
    #[arg(long)]
    contact_host: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, short = 'd', default_value_t = 300.0)]
    duration: f64,
    /// Worker threads (default: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, Args)]
struct SetupArgs {
    /// Directory to write (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// The edge's TLS (trunk) listener port.
    #[arg(long, default_value_t = 15061)]
    edge_tls_port: u16,
    /// The edge's inside UDP listener port.
    #[arg(long, default_value_t = 15060)]
    edge_udp_port: u16,
    /// The callee's (bench answer) TLS port: the edge's trunk peer.
    #[arg(long, default_value_t = 15081)]
    answer_tls_port: u16,
    /// The callee's UDP port: the edge's inside target.
    #[arg(long, default_value_t = 15080)]
    answer_udp_port: u16,
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what} must be a non-negative number of seconds"))
}

fn sources(list: &[String]) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for s in list {
        match s.split_once('-') {
            Some((a, b)) => {
                let a: Ipv4Addr = a.parse().with_context(|| format!("bad address in range {s:?}"))?;
                let b: Ipv4Addr = b.parse().with_context(|| format!("bad address in range {s:?}"))?;
                let (a, b) = (u32::from(a), u32::from(b));
                anyhow::ensure!(a <= b && b - a < 65_536, "range {s:?} is empty or too large");
                out.extend((a..=b).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
            }
            None => out.push(s.parse().with_context(|| format!("bad source address {s:?}"))?),
        }
    }
    Ok(out)
}

fn load(mode: Mode, a: LoadArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = BenchConfig::new(mode, a.target);
    cfg.transport = a.transport.parse()?;
    if matches!(mode, Mode::Handshakes | Mode::Idle) {
        cfg.transport = Transport::Tls;
    }
    cfg.connections = a.connections;
    cfg.window = a.window;
    cfg.rate = a.rate;
    cfg.count = a.count;
    cfg.duration = secs(a.duration, "--duration")?;
    cfg.timeout = secs(a.timeout, "--timeout")?;
    cfg.hold = Duration::from_millis(a.hold_ms);
    cfg.tls = TlsOptions { ciphers: a.ciphers, groups: a.groups, version: a.tls_version, ca: a.ca, server_name: a.sni };
    cfg.sources = sources(&a.sources)?;
    cfg.threads = a.threads;
    cfg.progress = !a.quiet;
    cfg.server_pids = a.server_pids;
    cfg.uri = a.uri;
    if a.handshake_only && mode != Mode::Handshakes {
        anyhow::bail!("--handshake-only applies to `trunkgate bench handshakes` only");
    }
    cfg.handshake_only = a.handshake_only;
    let report = trunkgate_bench::run(&cfg)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(if report.failed == 0 && report.ok > 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn speed(a: SpeedArgs) -> anyhow::Result<ExitCode> {
    let time = secs(a.seconds, "--seconds")?;
    anyhow::ensure!(
        !time.is_zero() && time <= Duration::from_secs(60),
        "--seconds must be more than 0 and at most 60 (got {})",
        a.seconds
    );
    let s = trunkgate_bench::speed::measure(time)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", s.text());
    }
    Ok(ExitCode::SUCCESS)
}

fn answer(a: AnswerArgs) -> anyhow::Result<ExitCode> {
    let cfg = trunkgate_bench::answer::AnswerConfig {
        udp: a.udp,
        tcp: a.tcp,
        tls: a.tls,
        cert: a.cert,
        key: a.key,
        contact_host: a.contact_host,
    };
    let counts = trunkgate_bench::answer::serve(&cfg, secs(a.duration, "--duration")?, a.threads)?;
    eprintln!("answer: {}", serde_json::to_string(&counts)?);
    Ok(ExitCode::SUCCESS)
}

/// The trunk peer's name (the callee's certificate) and the edge's own name.
const PEER: &str = "cloud.trunkgate.test";
const EDGE: &str = "edge.bench.test";

fn setup(a: SetupArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let dir = a.dir.canonicalize()?;
    let lab = trunkgate_edge::demo::Lab::new(&[PEER, EDGE]).map_err(|e| anyhow::anyhow!("{e}"))?;
    for f in [
        format!("{PEER}.chain.pem"),
        format!("{PEER}.key"),
        format!("{EDGE}.chain.pem"),
        format!("{EDGE}.key"),
        "root.pem".into(),
        "int.crl.pem".into(),
        "root.crl.pem".into(),
    ] {
        std::fs::copy(lab.dir.join(&f), dir.join(&f)).with_context(|| format!("copying {f}"))?;
    }
    let d = dir.display();
    let text = format!(
        r#"# trunkgate edge for bench/run.sh (written by `trunkgate bench setup`): limits raised so the
# benchmark measures cost, not admission control.
[edge]
name = "trunkgate-bench-edge"
max_connections = 250000
max_connections_per_ip = 250000
handshakes_per_ip_per_second = 1000000
handshake_timeout_ms = 10000
idle_timeout_s = 3600
max_calls = 100000
max_transactions = 400000
shutdown_grace_s = 1

[[listen]]
name = "trunk"
transport = "tls"
address = "127.0.0.1:{tls}"
side = "trunk"
advertise = "{EDGE}"
profile = "byoc-cloud"
certificate = "{d}/{EDGE}.chain.pem"
key = "{d}/{EDGE}.key"

[[listen]]
name = "inside"
transport = "udp"
address = "127.0.0.1:{udp}"
side = "inside"

[inside]
target = "127.0.0.1:{answer_udp}"

[[trunk]]
name = "cloud"
profile = "byoc-cloud"
peers = ["{PEER}:{answer_tls}"]
connect = {{ "{PEER}" = "127.0.0.1:{answer_tls}" }}
trust = ["{d}/root.pem"]
crl_files = ["{d}/int.crl.pem", "{d}/root.crl.pem"]
tgrp = "TG-1"
trunk_context = "example.com"
options_interval_s = 0
invite_timeout_ms = 8000
[trunk.inbound]
tgrp = "TG-1"
trunk_context = "example.com"
[trunk.outbound]
prefixes = ["*"]
"#,
        tls = a.edge_tls_port,
        udp = a.edge_udp_port,
        answer_udp = a.answer_udp_port,
        answer_tls = a.answer_tls_port,
    );
    trunkgate_edge::Config::parse(&text, "bench edge configuration").map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(dir.join("edge.toml"), text)?;
    println!("{d}: root.pem, {PEER}.chain.pem/.key (callee), {EDGE}.chain.pem/.key (servers), CRLs, edge.toml");
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.cmd {
        BenchCmd::Options(a) => load(Mode::Options, a),
        BenchCmd::Handshakes(a) => load(Mode::Handshakes, a),
        BenchCmd::Calls(a) => load(Mode::Calls, a),
        BenchCmd::Idle(a) => load(Mode::Idle, a),
        BenchCmd::Answer(a) => answer(a),
        BenchCmd::Setup(a) => setup(a),
        BenchCmd::Speed(a) => speed(a),
    }
}
