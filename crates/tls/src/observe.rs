//! Per-connection observation (SPEC O1, O2): what was negotiated, what the peer presented, the
//! verification result, whether a CertificateRequest was sent or received, alerts; and a debug
//! mode that logs handshake messages, state changes and errors (the equivalent of
//! `debug ssl openssl msg|states|errors`) through `tracing` at DEBUG level.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use openssl::ex_data::Index;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKeyRef};
use openssl::ssl::{NameType, Ssl, SslRef};
use openssl::x509::X509Ref;

use crate::certs;
use crate::error::FailureReason;
use crate::suites;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// We accepted the connection.
    Server,
    /// We opened the connection.
    Client,
}

/// A TLS alert seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// 1 = warning, 2 = fatal.
    pub level: u8,
    /// Description code (RFC 8446 §6).
    pub code: u8,
    /// Description name (`handshake_failure`).
    pub name: &'static str,
}

/// A certificate of the peer's chain, summarised.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertSummary {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// notBefore as OpenSSL prints it.
    pub not_before: String,
    /// notAfter as OpenSSL prints it.
    pub not_after: String,
    /// Serial number (hex).
    pub serial: String,
}

impl CertSummary {
    pub(crate) fn of(c: &X509Ref) -> CertSummary {
        CertSummary {
            subject: certs::subject(c),
            issuer: certs::name_to_string(c.issuer_name()),
            not_before: c.not_before().to_string(),
            not_after: c.not_after().to_string(),
            serial: certs::serial_hex(c),
        }
    }
}

/// The result of verifying the peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Verification {
    /// The peer presented no certificate and none was required (a client on byoc-cloud).
    NoPeerCertificate,
    /// Every check passed.
    Verified,
    /// A check failed.
    Failed(FailureReason),
}

/// What a connection negotiated and observed (SPEC O1/O2).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionInfo {
    /// Process-unique connection number (appears in debug logs as `conn`).
    pub id: u64,
    /// Our role.
    pub role: Role,
    /// `TLSv1.2`, `TLSv1.3` (None before the version is settled).
    pub version: Option<String>,
    /// Cipher suite, IANA name.
    pub cipher: Option<String>,
    /// Key-exchange group (`P-384`, `X25519`), None for TLS_RSA suites.
    pub group: Option<String>,
    /// The SNI host name (sent by us as client, or received as server).
    pub sni: Option<String>,
    /// The peer's chain, leaf first.
    pub peer_chain: Vec<CertSummary>,
    /// Verification result.
    pub verification: Verification,
    /// We sent a CertificateRequest (server role).
    pub certificate_request_sent: bool,
    /// We received a CertificateRequest (client role).
    pub certificate_request_received: bool,
    /// Alerts we sent.
    pub alerts_sent: Vec<Alert>,
    /// Alerts we received.
    pub alerts_received: Vec<Alert>,
    /// Groups the client offered (server role), names.
    pub client_offered_groups: Vec<String>,
    /// Warnings (e.g. a peer certificate expiring soon, T8; a soft CRL failure, T9).
    pub warnings: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct RecState {
    pub cert_request_sent: bool,
    pub cert_request_received: bool,
    pub alerts_sent: Vec<Alert>,
    pub alerts_received: Vec<Alert>,
    pub client_groups: Vec<u16>,
    pub client_suites: Vec<u16>,
    pub verify_failure: Option<FailureReason>,
    pub warnings: Vec<String>,
    pub messages: usize,
}

/// Per-connection recorder, attached to the `Ssl` as ex-data and shared with the verify
/// callback.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub id: u64,
    pub role: Role,
    pub debug: bool,
    pub state: Mutex<RecState>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static INDEX: OnceLock<Index<Ssl, Arc<Recorder>>> = OnceLock::new();

fn index() -> Option<Index<Ssl, Arc<Recorder>>> {
    if let Some(i) = INDEX.get() {
        return Some(*i);
    }
    let fresh = Ssl::new_ex_index::<Arc<Recorder>>().ok()?;
    Some(*INDEX.get_or_init(|| fresh))
}

impl Recorder {
    pub(crate) fn attach(ssl: &mut SslRef, role: Role, debug: bool) -> Arc<Recorder> {
        let rec = Arc::new(Recorder {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            role,
            debug,
            state: Mutex::new(RecState::default()),
        });
        if let Some(idx) = index() {
            ssl.set_ex_data(idx, rec.clone());
        }
        rec
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut RecState) -> R) -> Option<R> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    pub(crate) fn fail(&self, reason: FailureReason) {
        self.with(|s| {
            if s.verify_failure.is_none() {
                s.verify_failure = Some(reason);
            }
        });
    }

    pub(crate) fn warn(&self, text: String) {
        tracing::warn!(conn = self.id, "{text}");
        self.with(|s| {
            if !s.warnings.contains(&text) {
                s.warnings.push(text)
            }
        });
    }
}

pub(crate) fn recorder(ssl: &SslRef) -> Option<&Arc<Recorder>> {
    ssl.ex_data(index()?)
}

/// Name of a handshake message type.
fn handshake_name(t: u8) -> &'static str {
    match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        _ => "Unknown",
    }
}

/// Name of an alert description.
pub fn alert_name(code: u8) -> &'static str {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown_alert",
    }
}

/// Parse a ClientHello body (after the 4-byte handshake header) for offered suites and groups.
/// Bounded, never panics; gives what it could read.
pub(crate) fn parse_client_hello(body: &[u8]) -> (Vec<u16>, Vec<u16>) {
    let mut out = (Vec::new(), Vec::new());
    // A truncated or malformed hello leaves what was read so far.
    let _complete: Option<()> = read_client_hello(body, &mut out.0, &mut out.1);
    out
}

fn u16_list(bytes: &[u8], into: &mut Vec<u16>) {
    into.extend(bytes.chunks_exact(2).filter_map(|p| match p {
        [a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }));
}

fn read_client_hello(body: &[u8], suites: &mut Vec<u16>, groups: &mut Vec<u16>) -> Option<()> {
    let mut r = Reader { b: body, p: 0 };
    r.skip(2 + 32)?; // legacy_version, random
    let sid = r.u8()? as usize;
    r.skip(sid)?;
    let n = r.u16()? as usize;
    u16_list(r.take(n)?, suites);
    let comp = r.u8()? as usize;
    r.skip(comp)?;
    let ext_len = r.u16()? as usize;
    let mut e = Reader { b: r.take(ext_len)?, p: 0 };
    while let (Some(t), Some(l)) = (e.u16(), e.u16()) {
        let data = e.take(l as usize)?;
        if t == 10 {
            // supported_groups
            let mut g = Reader { b: data, p: 0 };
            let gl = g.u16()? as usize;
            u16_list(g.take(gl)?, groups);
        }
    }
    Some(())
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|s| s.first().copied())
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }
}

/// Called by the message callback for every record-layer message (see `ffi`).
pub(crate) fn on_message(ssl: &SslRef, sent: bool, content_type: i32, data: &[u8]) {
    let Some(rec) = recorder(ssl) else { return };
    let dir = if sent { ">>>" } else { "<<<" };
    match content_type {
        22 => {
            let t = data.first().copied().unwrap_or(255);
            rec.with(|s| {
                s.messages += 1;
                if t == 13 {
                    if sent {
                        s.cert_request_sent = true;
                    } else {
                        s.cert_request_received = true;
                    }
                }
                if t == 1 && rec.role == Role::Server && !sent {
                    let (cs, gs) = parse_client_hello(data.get(4..).unwrap_or(&[]));
                    s.client_suites = cs;
                    s.client_groups = gs;
                }
            });
            if rec.debug {
                tracing::debug!(conn = rec.id, "{dir} handshake {} ({} bytes)", handshake_name(t), data.len());
            }
        }
        21 => {
            if let (Some(level), Some(code)) = (data.first(), data.get(1)) {
                let a = Alert { level: *level, code: *code, name: alert_name(*code) };
                if rec.debug || *level == 2 {
                    tracing::debug!(
                        conn = rec.id,
                        "{dir} alert {} {} ({})",
                        if *level == 2 { "fatal" } else { "warning" },
                        a.name,
                        a.code
                    );
                }
                rec.with(|s| if sent { s.alerts_sent.push(a) } else { s.alerts_received.push(a) });
            }
        }
        20 if rec.debug => tracing::debug!(conn = rec.id, "{dir} ChangeCipherSpec"),
        _ => {}
    }
}

/// Called by the info callback on state changes (see `ffi`).
pub(crate) fn on_info(ssl: &SslRef, kind: i32, ret: i32) {
    let Some(rec) = recorder(ssl) else { return };
    if !rec.debug {
        return;
    }
    const LOOP: i32 = 0x01;
    const EXIT: i32 = 0x02;
    const START: i32 = 0x10;
    const DONE: i32 = 0x20;
    if kind & LOOP != 0 {
        tracing::debug!(conn = rec.id, "state {}", ssl.state_string_long());
    } else if kind & EXIT != 0 && ret <= 0 {
        tracing::debug!(conn = rec.id, "state {} (error)", ssl.state_string_long());
    } else if kind & START != 0 {
        tracing::debug!(conn = rec.id, "handshake start");
    } else if kind & DONE != 0 {
        tracing::debug!(conn = rec.id, "handshake done");
    }
}

fn group_of<T: openssl::pkey::HasParams>(key: &PKeyRef<T>) -> Option<String> {
    match key.id() {
        Id::X25519 => Some("X25519".into()),
        Id::X448 => Some("X448".into()),
        Id::EC => {
            let ec = key.ec_key().ok()?;
            let nid = ec.group().curve_name()?;
            Some(match nid {
                Nid::X9_62_PRIME256V1 => "P-256".into(),
                Nid::SECP384R1 => "P-384".into(),
                Nid::SECP521R1 => "P-521".into(),
                other => other.short_name().unwrap_or("?").to_string(),
            })
        }
        Id::DH => Some("ffdhe".into()),
        _ => None,
    }
}

/// Peer chain, leaf first (OpenSSL leaves the leaf out of the server-side peer chain).
pub(crate) fn peer_chain(ssl: &SslRef) -> Vec<CertSummary> {
    let mut out = Vec::new();
    let leaf = ssl.peer_certificate();
    if let Some(l) = &leaf {
        out.push(CertSummary::of(l));
    }
    if let Some(chain) = ssl.peer_cert_chain() {
        for c in chain {
            let s = CertSummary::of(c);
            if out.first() != Some(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Build the connection info from the SSL object and its recorder.
pub(crate) fn info(ssl: &SslRef, rec: &Recorder, failure: Option<&FailureReason>) -> ConnectionInfo {
    let cipher = ssl.current_cipher().map(|c| {
        suites::by_openssl(c.name())
            .map(|s| s.iana.to_string())
            .or_else(|| c.standard_name().map(str::to_string))
            .unwrap_or_else(|| c.name().to_string())
    });
    let group = crate::ffi::negotiated_group_nid(ssl)
        .and_then(|nid| nid.short_name().ok())
        .map(|n| suites::group_by_name(n).map(|g| g.name.to_string()).unwrap_or_else(|| n.to_string()))
        .or_else(|| match rec.role {
            Role::Server => ssl.tmp_key().ok().and_then(|k| group_of(&k)),
            Role::Client => ssl.peer_tmp_key().ok().and_then(|k| group_of(&k)),
        });
    let version = ssl.version2().map(|_| ssl.version_str().to_string());
    let peer_chain = peer_chain(ssl);
    let state = rec.with(|s| {
        (
            s.cert_request_sent,
            s.cert_request_received,
            s.alerts_sent.clone(),
            s.alerts_received.clone(),
            s.client_groups.iter().map(|g| suites::group_name(*g)).collect::<Vec<_>>(),
            s.warnings.clone(),
        )
    });
    let (req_sent, req_recv, a_sent, a_recv, groups, warnings) = state.unwrap_or_default();
    let verification = match failure {
        Some(f) => Verification::Failed(f.clone()),
        None if peer_chain.is_empty() => Verification::NoPeerCertificate,
        None => Verification::Verified,
    };
    ConnectionInfo {
        id: rec.id,
        role: rec.role,
        version,
        cipher,
        group,
        sni: ssl.servername(NameType::HOST_NAME).map(str::to_string),
        peer_chain,
        verification,
        certificate_request_sent: req_sent,
        certificate_request_received: req_recv,
        alerts_sent: a_sent,
        alerts_received: a_recv,
        client_offered_groups: groups,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_parser_is_bounded() {
        // version, random, sid len 0, suites (2) = c030, comp 1 (0), ext: supported_groups [24]
        let mut b = vec![3, 3];
        b.extend([0u8; 32]);
        b.push(0);
        b.extend([0, 2, 0xc0, 0x30]);
        b.extend([1, 0]);
        b.extend([0, 8, 0, 10, 0, 4, 0, 2, 0, 24]);
        let (s, g) = parse_client_hello(&b);
        assert_eq!(s, vec![0xc030]);
        assert_eq!(g, vec![24]);
        for cut in 0..b.len() {
            let _ = parse_client_hello(b.get(..cut).unwrap_or(&[]));
        }
    }
}
