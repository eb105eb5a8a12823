//! A small SDP model (RFC 4566) that keeps every line it does not change, so that codecs and
//! unknown attributes pass through unchanged, and the rewrite the edge applies per call leg
//! (RFC 3264 offer/answer, RFC 4568 `a=crypto`).
//!
//! The edge anchors one audio stream per call: the first `m=audio` over RTP with a non-zero port.
//! Other media sections keep their line with port 0 (RFC 3264 §6, §8.2: a rejected or disabled
//! stream); their attributes are left as they were except for keys, which never cross legs.

use std::net::IpAddr;

use crate::crypto::CryptoAttr;
use crate::error::{CryptoError, SdpError};

/// Largest body accepted.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most lines accepted.
pub const MAX_SDP_LINES: usize = 512;
/// Most media sections accepted.
pub const MAX_MEDIA: usize = 16;

/// One `x=value` line. `Debug` masks the value of `a=crypto` (it holds a key).
#[derive(Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter.
    pub kind: u8,
    /// Everything after `=`.
    pub value: String,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == b'a' && self.value.starts_with("crypto:") {
            write!(f, "a=crypto:***")
        } else {
            write!(f, "{}={}", self.kind as char, self.value)
        }
    }
}

/// One media section: its `m=` line and the lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Media type (`audio`, `video`, …).
    pub media: String,
    /// Transport port.
    pub port: u16,
    /// `/<number of ports>` when present.
    pub port_count: Option<u16>,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, …).
    pub proto: String,
    /// Formats, as written.
    pub fmts: String,
    /// The lines of the section after `m=`.
    pub lines: Vec<Line>,
}

/// A parsed SDP body. `Debug` shows only its size; `Display` is the body itself, keys included
/// (it goes into SIP messages, never into logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines, `v=` first.
    pub session: Vec<Line>,
    /// Media sections in order.
    pub media: Vec<Media>,
}

impl std::fmt::Debug for Sdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sdp").field("lines", &self.session.len()).field("media", &self.media.len()).finish()
    }
}

fn bad(line: usize, what: &'static str) -> SdpError {
    SdpError::BadField { line, what }
}

impl Sdp {
    /// Parses a body. LF or CRLF line ends; limits on size, lines and media sections.
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        if body.len() > MAX_SDP_BYTES {
            return Err(SdpError::TooLarge { limit: MAX_SDP_BYTES });
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let mut sdp = Sdp { session: Vec::new(), media: Vec::new() };
        let mut count = 0usize;
        for (i, raw) in text.split('\n').enumerate() {
            let no = i + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_SDP_LINES {
                return Err(SdpError::TooManyLines { limit: MAX_SDP_LINES });
            }
            let b = l.as_bytes();
            let (Some(&kind), Some(b'=')) = (b.first(), b.get(1)) else {
                return Err(SdpError::BadLine { line: no });
            };
            if !kind.is_ascii_lowercase() {
                return Err(SdpError::BadLine { line: no });
            }
            let value = l.get(2..).unwrap_or_default().to_string();
            if count == 1 && (kind != b'v' || value != "0") {
                return Err(SdpError::NoVersion);
            }
            if kind == b'm' {
                if sdp.media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooManyMedia { limit: MAX_MEDIA });
                }
                sdp.media.push(parse_m(&value, no)?);
            } else if let Some(m) = sdp.media.last_mut() {
                m.lines.push(Line { kind, value });
            } else {
                sdp.session.push(Line { kind, value });
            }
        }
        if count == 0 {
            return Err(SdpError::NoVersion);
        }
        Ok(sdp)
    }

    /// The body with CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Index of the audio stream the edge relays: the first `m=audio` over RTP with a port.
    pub fn relayed_audio(&self) -> Result<usize, SdpError> {
        self.media
            .iter()
            .position(|m| m.media == "audio" && m.port != 0 && m.proto.contains("RTP/"))
            .ok_or(SdpError::NoAudio)
    }

    /// The connection address of media section `idx`: its own `c=` or the session's.
    pub fn connection(&self, idx: usize) -> Result<IpAddr, SdpError> {
        let own = self.media.get(idx).and_then(|m| m.lines.iter().find(|l| l.kind == b'c'));
        let line = own.or_else(|| self.session.iter().find(|l| l.kind == b'c')).ok_or(SdpError::NoConnection)?;
        parse_c(&line.value).ok_or(SdpError::NoConnection)
    }

    /// The RTCP port of media section `idx` (`a=rtcp:`, RFC 3605), or RTP port + 1.
    pub fn rtcp_port(&self, idx: usize) -> Option<u16> {
        let m = self.media.get(idx)?;
        let attr = m.attrs("rtcp").next().and_then(|v| v.split_ascii_whitespace().next()?.parse().ok());
        attr.or_else(|| m.port.checked_add(1))
    }

    /// Rewrites the body for one leg: the edge's address in `o=` and `c=`, the relayed stream on
    /// `port` with `proto`, every other stream disabled (port 0), every `a=crypto` removed and
    /// `crypto` added to the relayed stream, and attributes that name the far peer's transport
    /// (`a=rtcp`, `a=rtcp-mux`, ICE, DTLS) removed. Codecs and other lines are kept as they are.
    pub fn rewrite(&self, addr: IpAddr, relayed: usize, port: u16, secure: bool, crypto: &[CryptoAttr]) -> Sdp {
        let c_value = format!("IN {} {}", ip_kind(addr), addr);
        let mut out = self.clone();
        for l in out.session.iter_mut() {
            if l.kind == b'o' {
                l.value = rewrite_origin(&l.value, addr);
            }
        }
        out.session.retain(|l| l.kind != b'c');
        let pos = out.session.iter().position(|l| matches!(l.kind, b'b' | b't' | b'r' | b'z' | b'k' | b'a'));
        out.session.insert(pos.unwrap_or(out.session.len()), Line { kind: b'c', value: c_value });
        out.session.retain(|l| !(l.kind == b'a' && (l.value.starts_with("crypto:") || is_transport_attr(&l.value))));
        for (i, m) in out.media.iter_mut().enumerate() {
            m.lines.retain(|l| !(l.kind == b'a' && (l.value.starts_with("crypto:") || is_transport_attr(&l.value))));
            if i == relayed {
                m.port = port;
                m.port_count = None;
                m.proto = map_proto(&m.proto, secure);
                m.lines.retain(|l| l.kind != b'c');
                for c in crypto {
                    m.lines.push(Line { kind: b'a', value: format!("crypto:{}", c.to_sdp_value()) });
                }
            } else {
                m.port = 0;
                m.port_count = None;
            }
        }
        out
    }
}

/// The direction of a stream (RFC 3264 §5.1, RFC 4566 §6): what the SDP's author will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Sends and receives (the default).
    #[default]
    SendRecv,
    /// Only sends.
    SendOnly,
    /// Only receives (e.g. the held side).
    RecvOnly,
    /// Neither (e.g. both sides on hold).
    Inactive,
}

impl Direction {
    fn from_attr(v: &str) -> Option<Direction> {
        match v {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

impl Sdp {
    /// The direction of media section `idx`: its own attribute, else the session's, else
    /// `sendrecv`.
    pub fn direction(&self, idx: usize) -> Direction {
        let find = |lines: &[Line]| {
            lines.iter().filter(|l| l.kind == b'a').find_map(|l| Direction::from_attr(l.value.as_str()))
        };
        self.media.get(idx).and_then(|m| find(&m.lines)).or_else(|| find(&self.session)).unwrap_or_default()
    }
}

impl Media {
    /// Values of `a=<name>:value` (or `a=<name>` with an empty value) in this section.
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines.iter().filter(|l| l.kind == b'a').filter_map(move |l| {
            let rest = l.value.strip_prefix(name)?;
            if rest.is_empty() {
                Some("")
            } else {
                rest.strip_prefix(':')
            }
        })
    }

    /// Whether the protocol is a secure RTP profile (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVP…`).
    pub fn is_secure(&self) -> bool {
        self.proto.contains("SAVP")
    }

    /// The `a=crypto` attributes of this section, each parsed or refused.
    pub fn crypto(&self) -> Vec<Result<CryptoAttr, CryptoError>> {
        self.attrs("crypto").map(CryptoAttr::parse).collect()
    }
}

impl std::fmt::Display for Sdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.session {
            write!(f, "{}={}\r\n", l.kind as char, l.value)?;
        }
        for m in &self.media {
            match m.port_count {
                Some(n) => write!(f, "m={} {}/{} {} {}", m.media, m.port, n, m.proto, m.fmts)?,
                None => write!(f, "m={} {} {} {}", m.media, m.port, m.proto, m.fmts)?,
            }
            f.write_str("\r\n")?;
            for l in &m.lines {
                write!(f, "{}={}\r\n", l.kind as char, l.value)?;
            }
        }
        Ok(())
    }
}

fn parse_m(value: &str, no: usize) -> Result<Media, SdpError> {
    let mut it = value.splitn(4, ' ');
    let media = it.next().filter(|s| !s.is_empty()).ok_or(bad(no, "media type"))?;
    let port_s = it.next().ok_or(bad(no, "media port"))?;
    let proto = it.next().filter(|s| !s.is_empty()).ok_or(bad(no, "media protocol"))?;
    let fmts = it.next().unwrap_or_default();
    let (port, port_count) = match port_s.split_once('/') {
        Some((p, n)) => (p, Some(n.parse::<u16>().map_err(|_| bad(no, "number of ports"))?)),
        None => (port_s, None),
    };
    let port = port.parse::<u16>().map_err(|_| bad(no, "media port"))?;
    Ok(Media {
        media: media.to_string(),
        port,
        port_count,
        proto: proto.to_string(),
        fmts: fmts.to_string(),
        lines: Vec::new(),
    })
}

fn parse_c(value: &str) -> Option<IpAddr> {
    let mut it = value.split_ascii_whitespace();
    if it.next()? != "IN" {
        return None;
    }
    let kind = it.next()?;
    let addr = it.next()?.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (kind, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

fn ip_kind(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn rewrite_origin(value: &str, addr: IpAddr) -> String {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    match f.as_slice() {
        [user, id, version, _net, _kind, _addr] => {
            format!("{user} {id} {version} IN {} {addr}", ip_kind(addr))
        }
        _ => value.to_string(),
    }
}

fn is_transport_attr(value: &str) -> bool {
    let name = value.split(':').next().unwrap_or_default();
    matches!(
        name,
        "rtcp"
            | "rtcp-mux"
            | "candidate"
            | "remote-candidates"
            | "end-of-candidates"
            | "ice-ufrag"
            | "ice-pwd"
            | "ice-lite"
            | "ice-options"
            | "fingerprint"
            | "setup"
    )
}

/// The protocol for the rewritten stream: secure or plain RTP, keeping AVPF feedback.
fn map_proto(proto: &str, secure: bool) -> String {
    let feedback = proto.ends_with("AVPF");
    match (secure, feedback) {
        (true, false) => "RTP/SAVP",
        (true, true) => "RTP/SAVPF",
        (false, false) => "RTP/AVP",
        (false, true) => "RTP/AVPF",
    }
    .to_string()
}
