//! Inbound mode: accept one TLS connection from a peer under test (a carrier's outbound SBC, a
//! cloud edge) and report what its ClientHello offers (versions, suites, groups, SNI), whether it
//! accepted our certificate or aborted (with which alert), and its first SIP request.
//!
//! The ClientHello is read with `MSG_PEEK` (left in the socket) and parsed by
//! [`crate::hello::parse_client_hello`]; then the untouched stream goes to trunkgate's TLS server
//! policy. OPTIONS is answered 200; any other first request 480, so the peer's call ends cleanly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use trunkgate_sip::{parse_stream_message, response_to, Frame, HeaderName, Limits, Method, StreamFramer};
use trunkgate_tls::suites::{self, KeyExchange};
use trunkgate_tls::{Identity, Profile, ServerConfig, TlsServer};

use crate::hello::{parse_client_hello, version_name, ClientHelloInfo, TLS10, TLS11, TLS12, TLS13};
use crate::report::{Finding, Report, Status, TargetReport};
use crate::CheckError;

/// Settings of an inbound check.
#[derive(Debug, Clone)]
pub struct InboundOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Our certificate chain and key.
    pub identity: Identity,
    /// The profile our side applies.
    pub profile: Profile,
    /// How long to wait for the peer to connect.
    pub wait: Duration,
    /// Timeout of each step after that (ClientHello, handshake, first request).
    pub timeout: Duration,
}

fn peek_hello(s: &TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 16 * 1024 + 5];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let _ = s.set_read_timeout(Some(left));
        let n = s.peek(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        let want = match (buf.get(3), buf.get(4)) {
            (Some(h), Some(l)) if n >= 5 => 5 + usize::from(u16::from_be_bytes([*h, *l])),
            _ => usize::MAX,
        };
        if n >= want || n == buf.len() {
            buf.truncate(n);
            return Some(buf);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn hello_findings(h: &ClientHelloInfo, p: &Profile, out: &mut Vec<Finding>) {
    let versions = h.versions();
    let names: Vec<String> = if h.supported_versions.is_empty() {
        // A legacy hello says only the highest version it accepts.
        vec![format!("up to {} (no supported_versions extension)", version_name(h.legacy_version))]
    } else {
        versions.iter().map(|v| version_name(*v)).collect()
    };
    let code = |v: trunkgate_tls::Version| match v {
        trunkgate_tls::Version::Tls10 => TLS10,
        trunkgate_tls::Version::Tls11 => TLS11,
        trunkgate_tls::Version::Tls12 => TLS12,
        trunkgate_tls::Version::Tls13 => TLS13,
    };
    let wanted = code(p.min_version)..=code(p.max_version);
    out.push(if versions.iter().any(|v| wanted.contains(v)) {
        Finding::pass("hello.versions", "Offered", format!("offers {}", names.join(", ")))
    } else {
        Finding::new(
            "hello.versions",
            Status::Fail,
            "NoProfileVersion",
            format!("offers {} — none of profile {}", names.join(", "), p.name),
            "enable TLS 1.2 on the peer (SPEC T2)",
        )
    });
    let offered: Vec<String> = h
        .suites
        .iter()
        .filter(|s| **s != 0x00ff && (**s & 0x0f0f) != 0x0a0a)
        .map(|s| crate::probe::suite_label(*s))
        .collect();
    let weak: Vec<&str> = crate::probe::WEAK.iter().filter(|w| h.suites.contains(&w.0)).map(|w| w.1).collect();
    if !weak.is_empty() {
        out.push(Finding::new(
            "hello.weak",
            Status::Warn,
            "Weak",
            format!("offers weak suites: {}", weak.join(", ")),
            "remove RC4, 3DES, DES, NULL, EXPORT and anonymous suites from the peer's cipher list",
        ));
    }
    let common: Vec<&str> = p.suites.iter().filter(|s| h.suites.contains(&s.id)).map(|s| s.iana).collect();
    out.push(if common.is_empty() {
        Finding::new(
            "hello.suites",
            Status::Fail,
            "NoSharedSuite",
            format!("offers [{}], none of profile {}", offered.join(", "), p.name),
            "enable the profile's suites on the peer (SPEC T2)",
        )
    } else {
        Finding::pass(
            "hello.suites",
            "Shared",
            format!(
                "{} of the profile's suites offered ({}); all offered: {}",
                common.len(),
                common.join(", "),
                offered.join(", ")
            ),
        )
    });
    let groups: Vec<String> =
        h.groups.iter().filter(|g| (**g & 0x0f0f) != 0x0a0a).map(|g| suites::group_name(*g)).collect();
    let need_group = p
        .suites
        .iter()
        .filter(|s| h.suites.contains(&s.id))
        .all(|s| s.kx == KeyExchange::Ecdhe || s.kx == KeyExchange::Tls13);
    let has_group = p.groups.iter().any(|g| groups.iter().any(|o| o == g));
    out.push(match (has_group, need_group && !common.is_empty()) {
        (true, _) => Finding::pass("hello.groups", "Shared", format!("offers groups {}", groups.join(", "))),
        (false, true) => Finding::new(
            "hello.groups",
            Status::Fail,
            "NoSharedGroup",
            format!(
                "offers groups [{}], none of {} and only ECDHE suites are shared",
                groups.join(", "),
                p.groups.join(", ")
            ),
            "enable secp384r1 (P-384) on the peer (SPEC T2)",
        ),
        (false, false) => Finding::new(
            "hello.groups",
            Status::Warn,
            "NoSharedGroup",
            format!(
                "offers groups [{}], none of {}: only static-RSA suites can be used",
                groups.join(", "),
                p.groups.join(", ")
            ),
            "enable secp384r1 (P-384) on the peer (SPEC T2)",
        ),
    });
    out.push(match &h.sni {
        Some(n) => Finding::pass("hello.sni", "Sent", format!("SNI {n}")),
        None => Finding::new(
            "hello.sni",
            Status::Warn,
            "Absent",
            "no SNI (server_name) sent",
            "configure the peer to send the host name it connects to as SNI",
        ),
    });
}

/// Wait for one connection and report on it. `ready` gets the bound address once listening.
pub fn check_inbound(opts: &InboundOptions, ready: &mut dyn FnMut(SocketAddr)) -> Result<Report, CheckError> {
    let setup = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| CheckError::Setup { what, detail: e.to_string() }
    };
    let server = TlsServer::new(&ServerConfig::new(opts.profile.clone(), opts.identity.clone()))
        .map_err(|e| CheckError::Setup { what: "our TLS server".into(), detail: e.to_string() })?;
    let listener = TcpListener::bind(opts.listen).map_err(setup("listening"))?;
    let local = listener.local_addr().map_err(setup("listening"))?;
    listener.set_nonblocking(true).map_err(setup("listening"))?;
    ready(local);
    let deadline = Instant::now() + opts.wait;
    let (tcp, peer) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(CheckError::Setup {
                        what: format!("waiting for a connection on {local}"),
                        detail: format!(
                            "nobody connected within {} s; fix: point the peer at {local}",
                            opts.wait.as_secs()
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(CheckError::Setup { what: "accepting".into(), detail: e.to_string() }),
        }
    };
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_write_timeout(Some(opts.timeout));
    let mut findings = vec![Finding::info("inbound.connect", "Connected", format!("{peer} connected to {local}"))];
    match peek_hello(&tcp, opts.timeout).as_deref().and_then(parse_client_hello) {
        Some(h) => hello_findings(&h, &opts.profile, &mut findings),
        None => findings.push(Finding::new(
            "hello",
            Status::Fail,
            "NoClientHello",
            "no TLS ClientHello received",
            "configure the peer for TLS (SIPS) on this port",
        )),
    }
    let _ = tcp.set_read_timeout(Some(opts.timeout));
    let report = |findings| Report {
        target: local.to_string(),
        mode: "inbound",
        profile: opts.profile.name.clone(),
        general: Vec::new(),
        targets: vec![TargetReport {
            name: peer.to_string(),
            address: peer.to_string(),
            source: "inbound".into(),
            findings,
        }],
    };
    let mut tls = match server.accept_blocking(tcp, Some(peer.ip()), &peer.to_string()) {
        Ok((s, info)) => {
            findings.push(Finding::pass(
                "inbound.handshake",
                "Accepted",
                format!(
                    "the peer accepted our certificate: {} {}{}",
                    info.version.as_deref().unwrap_or("?"),
                    info.cipher.as_deref().unwrap_or("?"),
                    info.group.as_deref().map(|g| format!(" {g}")).unwrap_or_default()
                ),
            ));
            s
        }
        Err(e) => {
            let alert = e.info.alerts_received.first().map(|a| a.name);
            findings.push(match alert {
                Some(name) => Finding::new(
                    "inbound.handshake",
                    Status::Fail,
                    "PeerAlert",
                    format!("the peer aborted with alert {name}: it did not accept our certificate or our parameters"),
                    "make the peer trust our root (and our name), or use a certificate it trusts (SPEC T6, T7)",
                ),
                None => Finding::new(
                    "inbound.handshake",
                    Status::Fail,
                    e.reason.code(),
                    e.reason.explanation(),
                    e.reason.fix(),
                ),
            });
            return Ok(report(findings));
        }
    };
    // ---- first SIP request
    let mut fr = StreamFramer::new(Limits::default());
    let mut buf = [0u8; 4096];
    let end = Instant::now() + opts.timeout;
    let f = loop {
        match fr.next_frame() {
            Ok(Some(Frame::Message(m))) => match parse_stream_message(&m, &Limits::default()) {
                Ok(msg) if msg.is_request() => {
                    let line = String::from_utf8_lossy(m.split(|b| *b == b'\r').next().unwrap_or_default()).to_string();
                    let ua = msg
                        .header(HeaderName::UserAgent)
                        .map(|v| format!(", User-Agent: {}", String::from_utf8_lossy(v)))
                        .unwrap_or_default();
                    let (status, reason) = if msg.method() == Some(&Method::Options) {
                        (200, "OK")
                    } else {
                        (480, "Temporarily Unavailable")
                    };
                    let _ = tls.write_all(&response_to(&msg, status, reason, Some("trunkgate-check")).to_bytes());
                    break Finding::pass(
                        "inbound.request",
                        "Received",
                        format!("first request: {line}{ua} (answered {status})"),
                    );
                }
                _ => {}
            },
            Ok(Some(Frame::Ping)) => {
                let _ = tls.write_all(trunkgate_sip::framing::PONG);
            }
            Ok(Some(Frame::Pong)) => {}
            Ok(None) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Finding::new(
                        "inbound.request",
                        Status::Warn,
                        "NoRequest",
                        format!("no SIP request within {} s after the handshake", opts.timeout.as_secs()),
                        "send a request (OPTIONS ping or a test call) from the peer",
                    );
                }
                let _ = tls.get_ref().set_read_timeout(Some(left));
                match tls.read(&mut buf) {
                    Ok(0) => {
                        break Finding::new(
                            "inbound.request",
                            Status::Warn,
                            "Closed",
                            "the peer closed the connection without a SIP request",
                            "send a request (OPTIONS ping or a test call) from the peer",
                        )
                    }
                    Ok(n) => fr.push(buf.get(..n).unwrap_or_default()),
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(e) => {
                        break Finding::new(
                            "inbound.request",
                            Status::Warn,
                            "Closed",
                            format!("the connection broke: {e}"),
                            "check the peer's logs",
                        )
                    }
                }
            }
            Err(e) => {
                break Finding::new(
                    "inbound.request",
                    Status::Fail,
                    "Unframeable",
                    format!("the peer sent data that is not SIP: {e}"),
                    "check that the peer speaks SIP over this TLS connection",
                )
            }
        }
    };
    findings.push(f);
    Ok(report(findings))
}
