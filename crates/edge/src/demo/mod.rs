//! `trunkgate demo`: the README's main command. It makes a throwaway PKI, starts two edges on
//! loopback — "customer" (ours) and "cloud" (playing the BYOC Cloud side) — joined by a
//! byoc-cloud TLS trunk (TLS 1.2, the eight suites, P-384, name and CRL checks), places a call
//! from a caller inside the customer edge to a callee inside the cloud edge, and reports the
//! handshake, the call ladder and the result. It succeeds only when the call really completed.

pub mod ua;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use trunkgate_pki::{CaSpec, CrlSpec, Issuer, KeyType, LeafSpec, Validity, DAY};

use crate::config::{Config, Side};
use crate::runtime::{Edge, EdgeEvent, Options};

/// Why the demo could not run (as opposed to: it ran and the call failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Making the PKI.
    #[error("demo PKI: {0}")]
    Pki(#[from] trunkgate_pki::Error),
    /// Files or sockets.
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    /// Configuration.
    #[error("demo configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// An edge did not start.
    #[error("demo edge: {0}")]
    Start(#[from] crate::runtime::StartError),
    /// OpenSSL (PEM encoding).
    #[error("demo PKI: {0}")]
    Openssl(openssl::error::ErrorStack),
    /// A test UA failed.
    #[error("{0}")]
    Ua(#[from] ua::UaError),
}

/// What the demo found.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Human-readable report.
    pub text: String,
    /// Whether the call completed end to end.
    pub success: bool,
}

/// An event with when and which edge saw it.
type Logged = (Instant, &'static str, EdgeEvent);

const CUSTOMER: &str = "edge.customer.test";
const CLOUD: &str = "cloud.trunkgate.test";

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn write(path: &Path, data: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if private { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    f.write_all(data)
}

/// A throwaway PKI in a temporary directory (removed on drop): a P-384 root and intermediate,
/// RSA-2048 server certificates (serverAuth only, T11) for the given host names with chain
/// files, and empty CRLs of both CAs. Used by the demo and by the edge's interop tests.
#[derive(Debug)]
pub struct Lab {
    /// The directory: `HOST.chain.pem`, `HOST.key` (0600), `root.pem`, `int.crl.pem`, `root.crl.pem`.
    pub dir: PathBuf,
    /// One line describing it.
    pub summary: String,
}

type Pki = Lab;

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make_pki() -> Result<Pki, DemoError> {
    Lab::new(&[CUSTOMER, CLOUD])
}

impl Lab {
    /// Makes the PKI for these host names.
    pub fn new(hosts: &[&str]) -> Result<Lab, DemoError> {
        let now = trunkgate_pki::unix_now();
        let dir =
            std::env::temp_dir().join(format!("trunkgate-demo-{}-{}", std::process::id(), crate::core::leg::token(4)));
        std::fs::create_dir(&dir)?;
        let pki = Pki { dir: dir.clone(), summary: String::new() };
        let root = Issuer::new_root(&CaSpec::new("trunkgate demo root", KeyType::P384, Validity::days_from(now, 365)))?;
        let int = root.new_intermediate(&CaSpec::new(
            "trunkgate demo intermediate",
            KeyType::P384,
            Validity::days_from(now, 365),
        ))?;
        for &host in hosts {
            // RSA keys: the byoc-cloud suites are all *_RSA_* (SPEC T2). serverAuth only (T11).
            let leaf = int.issue(&LeafSpec::server(host, Validity::days_from(now, 90)).key(KeyType::Rsa2048))?;
            write(&dir.join(format!("{host}.chain.pem")), &leaf.chain_pem()?, false)?;
            write(&dir.join(format!("{host}.key")), &leaf.key_pem()?, true)?;
        }
        write(&dir.join("root.pem"), &root.cert().to_pem().map_err(DemoError::Openssl)?, false)?;
        let crl = |issuer: &Issuer| {
            issuer.crl(&CrlSpec { number: 1, this_update: now - 60, next_update: now + DAY, revoked: vec![] })
        };
        write(&dir.join("int.crl.pem"), &crl(&int)?.to_pem().map_err(DemoError::Openssl)?, false)?;
        write(&dir.join("root.crl.pem"), &crl(&root)?.to_pem().map_err(DemoError::Openssl)?, false)?;
        let mut pki = pki;
        pki.summary = format!(
            "root \"trunkgate demo root\" (P-384) → intermediate (P-384) → {} (RSA 2048, serverAuth); empty CRLs",
            hosts.join(", ")
        );
        Ok(pki)
    }

    /// The chain file of a host.
    pub fn chain(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.chain.pem"))
    }

    /// The key file of a host.
    pub fn key(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.key"))
    }

    /// The root certificate.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root.pem")
    }
}

/// A demo-style edge configuration: TLS trunk listener with `me`'s certificate, inside UDP
/// listener, inside target, and one byoc-cloud trunk "byoc" to `peer` (mapped to 127.0.0.1 on
/// `peer_port`), TGRP TG-1 / example.com both ways, outbound prefix `*` when `outbound_prefix`.
#[allow(clippy::too_many_arguments)]
pub fn edge_config(
    dir: &Path,
    me: &str,
    tls_port: u16,
    inside_port: u16,
    inside_target: SocketAddr,
    peer: &str,
    peer_port: u16,
    outbound_prefix: bool,
) -> Result<Config, DemoError> {
    let d = dir.display();
    let text = format!(
        r#"
[edge]
name = "trunkgate-demo ({me})"
shutdown_grace_s = 2

[[listen]]
name = "trunk"
transport = "tls"
address = "127.0.0.1:{tls_port}"
side = "trunk"
advertise = "{me}"
profile = "byoc-cloud"
certificate = "{d}/{me}.chain.pem"
key = "{d}/{me}.key"

[[listen]]
name = "inside"
transport = "udp"
address = "127.0.0.1:{inside_port}"
side = "inside"

[inside]
target = "{inside_target}"

[[trunk]]
name = "byoc"
profile = "byoc-cloud"
peers = ["{peer}:{peer_port}"]
connect = {{ "{peer}" = "127.0.0.1:{peer_port}" }}
trust = ["{d}/root.pem"]
crl_files = ["{d}/int.crl.pem", "{d}/root.crl.pem"]
tgrp = "TG-1"
trunk_context = "example.com"
options_interval_s = 0
[trunk.inbound]
tgrp = "TG-1"
trunk_context = "example.com"
[trunk.outbound]
prefixes = [{prefixes}]
"#,
        prefixes = if outbound_prefix { "\"*\"" } else { "" },
    );
    Ok(Config::parse(&text, &format!("demo configuration of {me}"))?)
}

/// Runs the demo and reports.
pub async fn run(hold: Duration) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let pki = make_pki()?;
    let (caller_sock, callee_sock) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    let (cust_tls, cust_in, cloud_tls, cloud_in) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let cust_cfg =
        edge_config(&pki.dir, CUSTOMER, cust_tls, cust_in, caller_sock.local_addr()?, CLOUD, cloud_tls, true)?;
    let cloud_cfg =
        edge_config(&pki.dir, CLOUD, cloud_tls, cloud_in, callee_sock.local_addr()?, CUSTOMER, cust_tls, false)?;
    let customer = Edge::start(cust_cfg, Options { trace: true }).await?;
    let cloud = Edge::start(cloud_cfg, Options { trace: true }).await?;
    let log: Arc<Mutex<Vec<Logged>>> = Arc::new(Mutex::new(Vec::new()));
    let mut collectors = Vec::new();
    for (name, edge) in [("customer", &customer), ("cloud", &cloud)] {
        let mut rx = edge.subscribe();
        let log = log.clone();
        collectors.push(tokio::spawn(async move {
            while let Ok(e) = rx.recv().await {
                if let Ok(mut l) = log.lock() {
                    l.push((Instant::now(), name, e));
                }
            }
        }));
    }
    let inside = customer.local_addr("inside").unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], cust_in)));
    let callee = tokio::spawn(async move { ua::answer_with_media(&callee_sock, 1, Duration::from_secs(30)).await });
    let caller = ua::call(&caller_sock, inside, "+13175551212", hold).await;
    let callee = callee.await.map_err(|e| std::io::Error::other(e.to_string()))?;
    // Let both edges log the end of the call.
    for _ in 0..40 {
        let ended = log.lock().map_or(0, |l| l.iter().filter(|(_, _, e)| matches!(e, EdgeEvent::CallEnded(_))).count());
        if ended >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    customer.shutdown().await;
    cloud.shutdown().await;
    for c in collectors {
        c.abort();
    }
    let events = log.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(render(&pki.summary, &events, caller, callee, started))
}

fn render(
    pki: &str,
    events: &[Logged],
    caller: Result<ua::CallerReport, ua::UaError>,
    callee: Result<ua::CalleeReport, ua::UaError>,
    started: Instant,
) -> DemoReport {
    let mut t = String::new();
    let _ = writeln!(t, "trunkgate demo: one call through two edges over a byoc-cloud TLS trunk (loopback)\n");
    let _ = writeln!(t, "PKI   {pki}");
    let _ = writeln!(t, "Edges customer ({CUSTOMER}) ⇄ TLS trunk \"byoc\" ⇄ cloud ({CLOUD}); caller inside customer, callee inside cloud\n");
    for (_, who, e) in events {
        match e {
            EdgeEvent::TlsUp { info, inbound: false } => {
                let _ = writeln!(
                    t,
                    "TLS   {who} → {}: {} {} group {}",
                    info.sni.as_deref().unwrap_or("?"),
                    info.version.as_deref().unwrap_or("?"),
                    info.cipher.as_deref().unwrap_or("?"),
                    info.group.as_deref().unwrap_or("none")
                );
                let _ = writeln!(
                    t,
                    "      verification: {:?}; CertificateRequest received: {}",
                    info.verification, info.certificate_request_received
                );
                for c in &info.peer_chain {
                    let _ =
                        writeln!(t, "      peer chain: {} (issuer {}, expires {})", c.subject, c.issuer, c.not_after);
                }
            }
            EdgeEvent::TlsFailed { peer, reason } => {
                let _ = writeln!(t, "TLS   {who}: handshake with {peer} FAILED: {reason}");
            }
            _ => {}
        }
    }
    let _ = writeln!(t, "\nCall ladder (as each edge saw it):");
    let t0 = events.first().map_or(started, |(i, _, _)| *i);
    for (at, who, e) in events {
        if let EdgeEvent::Trace(tr) = e {
            let side = match tr.side {
                Side::Trunk => "trunk ",
                Side::Inside => "inside",
            };
            let arrow = if tr.inbound { "←" } else { "→" };
            let _ = writeln!(
                t,
                "  {:>6.1} ms  {who:>8} {side} {arrow} {}",
                at.duration_since(t0).as_secs_f64() * 1000.0,
                tr.summary
            );
        }
    }
    let mut ended = Vec::new();
    for (_, who, e) in events {
        if let EdgeEvent::CallEnded(r) = e {
            ended.push((who, r.clone()));
            if let Some(m) = &r.media {
                let _ = writeln!(t, "\nMedia ({who}): {m}");
            }
            let _ = writeln!(
                t,
                "Call log ({who}): call-id {} trunk {} {} matched by {} → {} {} after {:?}",
                r.call_id, r.trunk, r.direction, r.matched_by, r.status, r.result, r.duration
            );
        }
    }
    let success = match (&caller, &callee) {
        (Ok(c), Ok(callee)) => {
            callee.calls == 1
                // Media crossed both relays (RTP → SRTP → RTP) intact; loopback UDP may drop a few.
                && callee.rtp_received > 0
                && callee.rtp_received * 5 >= c.rtp_sent * 4
                && callee.rtp_damaged == 0
                && c.invite_statuses.last() == Some(&200)
                && c.bye_status == Some(200)
                && c.got_answer_sdp
                && ended.len() == 2
                && ended.iter().all(|(_, r)| r.result == "completed")
        }
        _ => false,
    };
    let _ = writeln!(t);
    match (&caller, &callee) {
        (Ok(c), _) => {
            let _ = writeln!(
                t,
                "Caller: INVITE answered {:?}, SDP answer {}, BYE → {:?}",
                c.invite_statuses,
                if c.got_answer_sdp { "received" } else { "missing" },
                c.bye_status
            );
        }
        (Err(e), _) => {
            let _ = writeln!(t, "Caller: {e}");
        }
    }
    match &callee {
        Ok(r) => {
            let sent = caller.as_ref().map_or(0, |c| c.rtp_sent);
            let _ = writeln!(
                t,
                "Media: the caller sent {sent} RTP packets (plain, inside) → SRTP across the trunk → the callee received {} intact, {} damaged",
                r.rtp_received, r.rtp_damaged
            );
        }
        Err(e) => {
            let _ = writeln!(t, "Callee: {e}");
        }
    }
    let _ = writeln!(
        t,
        "Result: {}",
        if success { "PASS — the call completed end to end" } else { "FAIL — the call did not complete" }
    );
    DemoReport { text: t, success }
}
