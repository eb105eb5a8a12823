//! SIP over the verified TLS connection: an OPTIONS request gets a response (status and
//! Server/User-Agent reported), the RFC 5626 CRLF keepalive is answered, and the connection stays
//! open for a second request (reuse).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;
use trunkgate_sip::{parse_stream_message, Frame, HeaderName, Limits, Method, OwnedMessage, StreamFramer};

use crate::report::{Finding, Status};

/// Where the requests go.
#[derive(Debug, Clone)]
pub struct SipTarget<'a> {
    /// Host for the Request-URI (the name validated).
    pub host: &'a str,
    /// Port connected to.
    pub port: u16,
    /// Our local address (Via, Contact).
    pub local: SocketAddr,
    /// How long to wait for each answer.
    pub timeout: Duration,
}

enum Got {
    Response { status: u16, reason: String, agent: Option<String> },
    Pong,
    Closed(String),
    Timeout,
}

fn token() -> String {
    let mut b = [0u8; 8];
    let _ = openssl::rand::rand_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn options(t: &SipTarget<'_>, cseq: u32, call_id: &str, tag: &str) -> Vec<u8> {
    OwnedMessage::request(Method::Options, format!("sip:{}:{};transport=tls", t.host, t.port))
        .with("Via", format!("SIP/2.0/TLS {};branch=z9hG4bK{};rport", t.local, token()))
        .with("Max-Forwards", "70")
        .with("From", format!("<sip:trunkgate-check@{}>;tag={tag}", t.local.ip()))
        .with("To", format!("<sip:{}>", t.host))
        .with("Call-ID", call_id)
        .with("CSeq", format!("{cseq} OPTIONS"))
        .with("Contact", format!("<sip:trunkgate-check@{};transport=tls>", t.local))
        .with("User-Agent", "trunkgate-check")
        .with("Accept", "application/sdp")
        .to_bytes()
}

/// Read until a final response to `cseq` (or a pong when `want_pong`), at most `timeout`.
fn wait(s: &mut SslStream<TcpStream>, fr: &mut StreamFramer, cseq: u32, want_pong: bool, timeout: Duration) -> Got {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        loop {
            match fr.next_frame() {
                Ok(Some(Frame::Pong)) if want_pong => return Got::Pong,
                Ok(Some(Frame::Ping)) => {
                    let _ = s.write_all(trunkgate_sip::framing::PONG);
                }
                Ok(Some(Frame::Message(m))) => {
                    if let Ok(msg) = parse_stream_message(&m, &Limits::default()) {
                        let Some(status) = msg.status() else { continue };
                        let cs = msg.header(HeaderName::CSeq).map(|v| String::from_utf8_lossy(v).to_string());
                        let matches =
                            cs.as_deref().and_then(|c| c.split_whitespace().next()).and_then(|n| n.parse().ok())
                                == Some(cseq);
                        if status >= 200 && matches && !want_pong {
                            let agent = msg
                                .header(HeaderName::Server)
                                .or_else(|| msg.header(HeaderName::UserAgent))
                                .map(|v| String::from_utf8_lossy(v).to_string());
                            let reason = match &msg.start {
                                trunkgate_sip::StartLine::Response { reason, .. } => {
                                    String::from_utf8_lossy(reason).to_string()
                                }
                                _ => String::new(),
                            };
                            return Got::Response { status, reason, agent };
                        }
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Got::Closed(format!("unframeable data: {e}")),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Got::Timeout;
        }
        let _ = s.get_ref().set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => return Got::Closed("the server closed the connection".into()),
            Ok(n) => fr.push(buf.get(..n).unwrap_or_default()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Got::Timeout
            }
            Err(e) => return Got::Closed(e.to_string()),
        }
    }
}

/// The three SIP checks over an established, verified connection.
pub fn sip_checks(s: &mut SslStream<TcpStream>, t: &SipTarget<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut fr = StreamFramer::new(Limits::default());
    let call_id = format!("{}@trunkgate-check", token());
    let tag = token();
    let secs = t.timeout.as_secs_f32();
    // ---- OPTIONS
    if let Err(e) = s.write_all(&options(t, 1, &call_id, &tag)) {
        out.push(Finding::new(
            "sip.options",
            Status::Fail,
            "SendFailed",
            format!("cannot send OPTIONS: {e}"),
            "check the server's TLS and SIP logs",
        ));
        return out;
    }
    match wait(s, &mut fr, 1, false, t.timeout) {
        Got::Response { status, reason, agent } => {
            let who = agent.map(|a| format!(", server: {a}")).unwrap_or_else(|| ", no Server/User-Agent header".into());
            out.push(if (200..300).contains(&status) {
                Finding::pass("sip.options", "Answered", format!("OPTIONS answered {status} {reason}{who}"))
            } else {
                Finding::new("sip.options", Status::Warn, "Answered", format!("OPTIONS answered {status} {reason}{who}"), "the SIP service answers over TLS but refuses OPTIONS: check its ACLs or trunk configuration for our address")
            });
        }
        Got::Closed(why) => {
            out.push(Finding::new(
                "sip.options",
                Status::Fail,
                "Closed",
                format!("no answer to OPTIONS: {why}"),
                "check that a SIP service (not only TLS) listens on this port and accepts our address",
            ));
            return out;
        }
        Got::Timeout | Got::Pong => {
            out.push(Finding::new(
                "sip.options",
                Status::Fail,
                "NoAnswer",
                format!("no answer to OPTIONS within {secs:.0} s"),
                "check that a SIP service (not only TLS) listens on this port and accepts our address",
            ));
            return out;
        }
    }
    // ---- CRLF keepalive (RFC 5626 §4.4.1)
    fr.expect_pong();
    if s.write_all(trunkgate_sip::framing::PING).is_err() {
        out.push(Finding::new(
            "sip.keepalive",
            Status::Fail,
            "Closed",
            "the connection broke when sending the CRLF keepalive",
            "keep SIP TLS connections open for reuse (RFC 5626, 5923)",
        ));
        return out;
    }
    out.push(match wait(s, &mut fr, 0, true, t.timeout) {
        Got::Pong => {
            Finding::pass("sip.keepalive", "Pong", "CRLF keepalive (double CRLF) answered with CRLF (RFC 5626)")
        }
        Got::Closed(why) => {
            out.push(Finding::new(
                "sip.keepalive",
                Status::Fail,
                "Closed",
                format!("the connection closed after the CRLF keepalive: {why}"),
                "enable RFC 5626 CRLF keepalives on the server",
            ));
            return out;
        }
        _ => Finding::new(
            "sip.keepalive",
            Status::Warn,
            "NoPong",
            format!("CRLF keepalive not answered within {secs:.0} s"),
            "enable RFC 5626 CRLF keepalive answers on the server, or the trunk uses OPTIONS pings only",
        ),
    });
    // ---- reuse
    if s.write_all(&options(t, 2, &call_id, &tag)).is_err() {
        out.push(Finding::new(
            "sip.reuse",
            Status::Fail,
            "Closed",
            "the connection was closed after the first request",
            "keep SIP TLS connections open for reuse (RFC 5923)",
        ));
        return out;
    }
    out.push(match wait(s, &mut fr, 2, false, t.timeout) {
        Got::Response { status, .. } => Finding::pass(
            "sip.reuse",
            "Open",
            format!("the connection stays open: a second OPTIONS on it answered {status}"),
        ),
        Got::Closed(why) => Finding::new(
            "sip.reuse",
            Status::Fail,
            "Closed",
            format!("the connection did not stay open: {why}"),
            "keep SIP TLS connections open for reuse (RFC 5923); each new connection costs a handshake",
        ),
        _ => Finding::new(
            "sip.reuse",
            Status::Warn,
            "NoAnswer",
            format!("no answer to a second OPTIONS on the same connection within {secs:.0} s"),
            "keep SIP TLS connections open for reuse (RFC 5923)",
        ),
    });
    out
}
