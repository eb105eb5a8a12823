//! `trunkgate check`: will my trunk come up, and if not, why? (issue 6, docs/check.md)
//!
//! Exit status: 0 no FAIL, 1 at least one FAIL, 2 could not run (the reason is printed).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use trunkgate_check::inbound::{check_inbound, InboundOptions};
use trunkgate_check::{check_outbound, load_profile, load_table, CheckOptions, Report, Trust};

/// Probe a SIP TLS endpoint against a TLS profile, or (with --listen) wait for a peer to connect.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// What to check: `sips:host[:port]`, `sip:host;transport=tls`, `host:port`, or a domain
    /// resolved per RFC 3263 (NAPTR → SRV → A/AAAA; every address is checked).
    #[arg(required_unless_present = "listen")]
    pub target: Option<String>,
    /// Connect to this address instead of resolving TARGET; the certificate is still validated
    /// against the name in TARGET (labs, hosts not in DNS).
    #[arg(long, value_name = "IP:PORT")]
    pub connect: Option<SocketAddr>,
    /// TLS profile: a shipped name (byoc-cloud, mutual, modern) or a profile file.
    #[arg(long, default_value = "byoc-cloud", value_name = "NAME|FILE")]
    pub profile: String,
    /// Extra trust anchors (PEM or DER root certificates); may be repeated.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Trust table naming the trusted roots by name and subject hash (SPEC T6).
    #[arg(long, default_value = "byoc-public-roots", value_name = "NAME|FILE")]
    pub trust_table: String,
    /// CA bundle the trust table's roots are taken from.
    #[arg(long, default_value = "/etc/ssl/certs/ca-certificates.crt", value_name = "FILE")]
    pub bundle: PathBuf,
    /// DNS server to ask instead of the system's (for NAPTR/SRV/A lookups).
    #[arg(long, value_name = "IP:PORT")]
    pub nameserver: Option<SocketAddr>,
    /// Timeout of each network step, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub timeout: u64,
    /// How long to wait for each SIP answer, in seconds.
    #[arg(long, default_value_t = 4, value_name = "SECONDS")]
    pub sip_timeout: u64,
    /// Pause before each probe connection, in milliseconds (about 50 connections are made per
    /// address): use it against servers that limit TLS handshakes per IP per second.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub pace_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No colours even on a terminal.
    #[arg(long)]
    pub no_color: bool,
    /// Inbound mode: listen here for one TLS connection from the peer under test.
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    pub listen: Option<SocketAddr>,
    /// Inbound mode: our certificate chain (leaf first, PEM or DER).
    #[arg(long, value_name = "CHAIN")]
    pub cert: Option<PathBuf>,
    /// Inbound mode: our private key.
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Inbound mode: how long to wait for the peer to connect, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub wait: u64,
}

/// A one-line progress indicator on stderr, only on a terminal.
struct Progress {
    on: bool,
    n: usize,
}

impl Progress {
    fn tell(&mut self, what: &str) {
        if self.on {
            const SPIN: [char; 4] = ['|', '/', '-', '\\'];
            self.n += 1;
            let c = SPIN.get(self.n % 4).copied().unwrap_or('|');
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[K{c} {what}");
            let _ = e.flush();
        }
    }

    fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

fn print(report: &Report, args: &CheckArgs) -> ExitCode {
    if args.json {
        println!("{}", report.to_json());
    } else {
        let colour = !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        print!("{}", report.to_text(colour));
    }
    ExitCode::from(report.exit_code())
}

fn could_not_run(args: &CheckArgs, reason: &str) -> ExitCode {
    if args.json {
        println!("{}", serde_json::json!({ "result": "ERROR", "error": reason }));
    }
    eprintln!("trunkgate check: could not run: {reason}");
    ExitCode::from(2)
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let profile = match load_profile(&args.profile) {
        Ok(p) => p,
        Err(e) => return Ok(could_not_run(&args, &e.to_string())),
    };
    let mut progress = Progress { on: !args.json && std::io::stderr().is_terminal(), n: 0 };
    let timeout = Duration::from_secs(args.timeout.max(1));
    if let (Some(listen), Some(cert), Some(key)) = (args.listen, &args.cert, &args.key) {
        let identity = match trunkgate_tls::Identity::from_files(cert, key, &[]) {
            Ok(i) => i,
            Err(e) => return Ok(could_not_run(&args, &e.to_string())),
        };
        let opts = InboundOptions { listen, identity, profile, wait: Duration::from_secs(args.wait), timeout };
        let mut ready = |a: SocketAddr| eprintln!("trunkgate check: listening on {a}, waiting for the peer to connect");
        return Ok(match check_inbound(&opts, &mut ready) {
            Ok(r) => print(&r, &args),
            Err(e) => could_not_run(&args, &e.to_string()),
        });
    }
    let Some(target) = args.target.clone() else {
        return Ok(could_not_run(&args, "no TARGET given; fix: give sips:HOST[:PORT], HOST:PORT or a domain"));
    };
    let table = match load_table(&args.trust_table) {
        Ok(t) => t,
        Err(e) => return Ok(could_not_run(&args, &e.to_string())),
    };
    let cas: Vec<&std::path::Path> = args.ca.iter().map(|p| p.as_path()).collect();
    let trust = match Trust::load(table, &args.bundle, &cas) {
        Ok(t) => t,
        Err(e) => return Ok(could_not_run(&args, &e.to_string())),
    };
    let opts = CheckOptions {
        target,
        connect: args.connect,
        profile,
        trust,
        nameserver: args.nameserver,
        timeout,
        sip_timeout: Duration::from_secs(args.sip_timeout.max(1)),
        pace: Duration::from_millis(args.pace_ms),
    };
    let result = check_outbound(&opts, &mut |w| progress.tell(w));
    progress.clear();
    Ok(match result {
        Ok(r) => print(&r, &args),
        Err(e) => could_not_run(&args, &e.to_string()),
    })
}
