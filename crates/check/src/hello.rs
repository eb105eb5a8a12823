//! Hand-built TLS ClientHello probes (SSL 3.0 to TLS 1.2) and ClientHello parsing.
//!
//! Why by hand: to learn which versions and suites a server *accepts*, a probe offers exactly one
//! version, one suite or one group and reads the ServerHello (or the alert). Our OpenSSL cannot
//! offer SSL 3.0, RC4 or EXPORT suites at all, so a library handshake could only say "not
//! tested"; a raw hello tests them honestly, the way sslscan does. The handshake is never
//! completed: the probe closes after the server's first record. The same wire format is parsed
//! in inbound mode to report what a peer's ClientHello offers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// SSL 3.0 on the wire.
pub const SSL3: u16 = 0x0300;
/// TLS 1.0.
pub const TLS10: u16 = 0x0301;
/// TLS 1.1.
pub const TLS11: u16 = 0x0302;
/// TLS 1.2.
pub const TLS12: u16 = 0x0303;
/// TLS 1.3.
pub const TLS13: u16 = 0x0304;

/// A readable version name.
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSL 2.0".into(),
        SSL3 => "SSL 3.0".into(),
        TLS10 => "TLS 1.0".into(),
        TLS11 => "TLS 1.1".into(),
        TLS12 => "TLS 1.2".into(),
        TLS13 => "TLS 1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

/// What to offer.
#[derive(Debug, Clone)]
pub struct HelloSpec<'a> {
    /// The one version offered (client_version).
    pub version: u16,
    /// Cipher suite code points offered.
    pub suites: &'a [u16],
    /// Groups offered (supported_groups); empty omits the extension.
    pub groups: &'a [u16],
    /// SNI host name (never an IP address).
    pub sni: Option<&'a str>,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloOutcome {
    /// A ServerHello choosing this version and suite.
    Accepted {
        /// Version chosen.
        version: u16,
        /// Suite chosen.
        suite: u16,
    },
    /// An alert (its description code) or a closed connection (None).
    Refused(Option<u8>),
}

/// Signature algorithms we offer in TLS 1.2 hellos (RSA PKCS#1, ECDSA, RSA-PSS; SHA-1 last).
const SIGALGS: &[u16] = &[0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0201, 0x0203];

fn put16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

fn ext(out: &mut Vec<u8>, id: u16, body: &[u8]) {
    out.extend_from_slice(&id.to_be_bytes());
    put16(out, body.len());
    out.extend_from_slice(body);
}

/// The bytes of one ClientHello record.
pub fn client_hello(spec: &HelloSpec<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(&spec.version.to_be_bytes());
    let mut random = [0u8; 32];
    if openssl::rand::rand_bytes(&mut random).is_err() {
        random = [0x5a; 32];
    }
    body.extend_from_slice(&random);
    body.push(0); // no session id
    put16(&mut body, spec.suites.len() * 2 + 2);
    for s in spec.suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[0x00, 0xff]); // TLS_EMPTY_RENEGOTIATION_INFO_SCSV
    body.extend_from_slice(&[1, 0]); // null compression only
    if spec.version > SSL3 {
        let mut exts = Vec::new();
        if let Some(name) = spec.sni {
            let mut sn = Vec::new();
            put16(&mut sn, name.len() + 3);
            sn.push(0);
            put16(&mut sn, name.len());
            sn.extend_from_slice(name.as_bytes());
            ext(&mut exts, 0x0000, &sn);
        }
        if !spec.groups.is_empty() {
            let mut g = Vec::new();
            put16(&mut g, spec.groups.len() * 2);
            for id in spec.groups {
                g.extend_from_slice(&id.to_be_bytes());
            }
            ext(&mut exts, 0x000a, &g);
            ext(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
        }
        if spec.version >= TLS12 {
            let mut sa = Vec::new();
            put16(&mut sa, SIGALGS.len() * 2);
            for id in SIGALGS {
                sa.extend_from_slice(&id.to_be_bytes());
            }
            ext(&mut exts, 0x000d, &sa);
        }
        ext(&mut exts, 0x0017, &[]); // extended_master_secret
        put16(&mut body, exts.len());
        body.extend_from_slice(&exts);
    }
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![22u8];
    rec.extend_from_slice(&(if spec.version == SSL3 { SSL3 } else { TLS10 }).to_be_bytes());
    put16(&mut rec, hs.len());
    rec.extend_from_slice(&hs);
    rec
}

/// Why a probe could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {detail}")]
    Connect {
        /// Address.
        addr: SocketAddr,
        /// OS words.
        detail: String,
    },
    /// The server sent nothing within the timeout.
    #[error("{addr} sent nothing within {ms} ms after our ClientHello")]
    Timeout {
        /// Address.
        addr: SocketAddr,
        /// Timeout.
        ms: u128,
    },
    /// The answer is not TLS.
    #[error("{addr} answered with something that is not TLS ({detail})")]
    NotTls {
        /// Address.
        addr: SocketAddr,
        /// What came.
        detail: String,
    },
}

fn read_exact_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Send one ClientHello to `addr` and classify the first record of the answer.
pub fn probe(addr: SocketAddr, spec: &HelloSpec<'_>, timeout: Duration) -> Result<HelloOutcome, ProbeError> {
    let deadline = Instant::now() + timeout;
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| ProbeError::Connect { addr, detail: e.to_string() })?;
    let _ = s.set_write_timeout(Some(timeout));
    let _ = s.set_nodelay(true);
    if s.write_all(&client_hello(spec)).is_err() {
        return Ok(HelloOutcome::Refused(None));
    }
    let mut head = [0u8; 5];
    match read_exact_by(&mut s, &mut head, deadline) {
        Ok(true) => {}
        Ok(false) => return Ok(HelloOutcome::Refused(None)),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            return Err(ProbeError::Timeout { addr, ms: timeout.as_millis() })
        }
        Err(_) => return Ok(HelloOutcome::Refused(None)), // reset
    }
    let [ctype, major, _, hi, lo] = head;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if !(ctype == 21 || ctype == 22) || major != 3 || len > 18 * 1024 {
        return Err(ProbeError::NotTls { addr, detail: format!("first bytes {head:02x?}") });
    }
    let mut body = vec![0u8; len];
    if !matches!(read_exact_by(&mut s, &mut body, deadline), Ok(true)) {
        return Ok(HelloOutcome::Refused(None));
    }
    if ctype == 21 {
        return Ok(HelloOutcome::Refused(body.get(1).copied()));
    }
    // Handshake: type 2 ServerHello, 3-byte length, version, random[32], session id, suite.
    if body.first() != Some(&2) {
        return Err(ProbeError::NotTls { addr, detail: "first handshake message is not ServerHello".into() });
    }
    let version = u16::from_be_bytes([body.get(4).copied().unwrap_or(0), body.get(5).copied().unwrap_or(0)]);
    let sid = usize::from(body.get(38).copied().unwrap_or(0));
    let at = 39 + sid;
    let suite = u16::from_be_bytes([body.get(at).copied().unwrap_or(0), body.get(at + 1).copied().unwrap_or(0)]);
    Ok(HelloOutcome::Accepted { version, suite })
}

/// What a ClientHello offers (inbound mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientHelloInfo {
    /// client_version field.
    pub legacy_version: u16,
    /// supported_versions extension (TLS 1.3 clients), empty when absent.
    pub supported_versions: Vec<u16>,
    /// Cipher suites, in the client's order (SCSV values included).
    pub suites: Vec<u16>,
    /// supported_groups.
    pub groups: Vec<u16>,
    /// server_name host name.
    pub sni: Option<String>,
}

impl ClientHelloInfo {
    /// The versions offered: supported_versions when present, else the legacy_version and below
    /// down to TLS 1.0.
    pub fn versions(&self) -> Vec<u16> {
        if !self.supported_versions.is_empty() {
            return self.supported_versions.iter().copied().filter(|v| v & 0x0f0f != 0x0a0a).collect();
        }
        (TLS10..=self.legacy_version.min(TLS12)).rev().collect()
    }
}

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }
    fn u16s(b: &[u8]) -> Vec<u16> {
        b.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0)]))
            .collect()
    }
}

/// Parse a ClientHello from the first TLS record (`rec` starts with the 5-byte record header).
/// `None` when it is not one (or is cut short).
pub fn parse_client_hello(rec: &[u8]) -> Option<ClientHelloInfo> {
    let mut c = Cur { b: rec, at: 0 };
    if c.u8()? != 22 {
        return None;
    }
    c.take(2)?;
    let len = usize::from(c.u16()?);
    let mut h = Cur { b: c.take(len)?, at: 0 };
    if h.u8()? != 1 {
        return None;
    }
    h.take(3)?;
    let mut info = ClientHelloInfo { legacy_version: h.u16()?, ..Default::default() };
    h.take(32)?;
    let sid = usize::from(h.u8()?);
    h.take(sid)?;
    let n = usize::from(h.u16()?);
    info.suites = Cur::u16s(h.take(n)?);
    let comp = usize::from(h.u8()?);
    h.take(comp)?;
    let Some(total) = h.u16() else { return Some(info) };
    let mut e = Cur { b: h.take(usize::from(total))?, at: 0 };
    while let (Some(id), Some(l)) = (e.u16(), e.u16()) {
        let body = e.take(usize::from(l))?;
        let mut x = Cur { b: body, at: 0 };
        match id {
            0x0000 => {
                x.take(2)?;
                if x.u8()? == 0 {
                    let n = usize::from(x.u16()?);
                    info.sni = Some(String::from_utf8_lossy(x.take(n)?).to_string());
                }
            }
            0x000a => {
                let n = usize::from(x.u16()?);
                info.groups = Cur::u16s(x.take(n)?);
            }
            0x002b => {
                let n = usize::from(x.u8()?);
                info.supported_versions = Cur::u16s(x.take(n)?);
            }
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn hello_round_trip() {
        let spec = HelloSpec { version: TLS12, suites: &[0xc030, 0x009d], groups: &[24], sni: Some("sbc.test") };
        let rec = client_hello(&spec);
        let info = parse_client_hello(&rec).unwrap();
        assert_eq!(info.legacy_version, TLS12);
        assert_eq!(info.suites, vec![0xc030, 0x009d, 0x00ff]);
        assert_eq!(info.groups, vec![24]);
        assert_eq!(info.sni.as_deref(), Some("sbc.test"));
        assert_eq!(info.versions(), vec![TLS12, TLS11, TLS10]);
        // SSL 3.0 hellos carry no extensions.
        let rec = client_hello(&HelloSpec { version: SSL3, suites: &[0x000a], groups: &[24], sni: Some("x") });
        let info = parse_client_hello(&rec).unwrap();
        assert_eq!((info.legacy_version, info.sni), (SSL3, None));
        assert!(parse_client_hello(b"OPTIONS sip:x SIP/2.0\r\n").is_none());
        assert!(parse_client_hello(&rec[..20]).is_none());
    }
}
