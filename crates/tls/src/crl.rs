//! Revocation (SPEC T9): CRLs from configured files or fetched over HTTP from the certificate's
//! distribution point, verified against the issuer's key, cached until their nextUpdate.
//!
//! The fetch is a deliberately small blocking HTTP/1.0 GET over `std::net::TcpStream` with a
//! total time limit and a size limit. It runs inside the certificate-verification callback; on a
//! multi-threaded tokio runtime it runs under `block_in_place` (the worker's other tasks move to
//! another thread), on a current-thread runtime it blocks that thread for at most the time limit.
//! CRLs are cached, so this happens once per CRL per nextUpdate period.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::x509::{CrlStatus, X509Crl, X509CrlRef, X509Ref};

use crate::certs;
use crate::error::TlsError;

/// The outcome of checking one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlCheck {
    /// A current CRL from the issuer does not list the certificate.
    Good,
    /// A current CRL from the issuer lists the certificate.
    Revoked,
    /// No current, correctly signed CRL could be had (why).
    Unavailable(String),
}

struct Cached {
    crl: X509Crl,
}

/// CRL sources and cache, shared by every connection of a context.
pub struct CrlStore {
    files: Vec<X509Crl>,
    cache: Mutex<HashMap<String, Cached>>,
    timeout: Duration,
    max_bytes: usize,
}

impl std::fmt::Debug for CrlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlStore")
            .field("files", &self.files.len())
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn is_current(crl: &X509CrlRef, now: &Asn1Time) -> bool {
    let started = crl.last_update().compare(now).is_ok_and(|o| o != std::cmp::Ordering::Greater);
    let fresh = crl.next_update().is_some_and(|n| n.compare(now).is_ok_and(|o| o == std::cmp::Ordering::Greater));
    started && fresh
}

impl CrlStore {
    /// A store with CRLs already decoded, and limits for HTTP fetches.
    pub fn new(files: Vec<X509Crl>, timeout: Duration, max_bytes: usize) -> CrlStore {
        CrlStore { files, cache: Mutex::new(HashMap::new()), timeout, max_bytes }
    }

    /// A store from CRL files (PEM or DER).
    pub fn from_files(paths: &[impl AsRef<Path>], timeout: Duration, max_bytes: usize) -> Result<CrlStore, TlsError> {
        let mut files = Vec::new();
        for p in paths {
            let p = p.as_ref();
            files.push(certs::crl_from_bytes(&certs::read(p)?, &p.display().to_string())?);
        }
        Ok(CrlStore::new(files, timeout, max_bytes))
    }

    /// Number of cached (fetched) CRLs.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Check `cert`, issued by `issuer`.
    pub fn check(&self, cert: &X509Ref, issuer: &X509Ref) -> CrlCheck {
        let Ok(now) = Asn1Time::days_from_now(0) else {
            return CrlCheck::Unavailable("cannot read the clock".into());
        };
        let Ok(issuer_key) = issuer.public_key() else {
            return CrlCheck::Unavailable("issuer public key unreadable".into());
        };
        let same_issuer = |crl: &X509CrlRef| {
            crl.issuer_name().try_cmp(cert.issuer_name()).is_ok_and(|o| o == std::cmp::Ordering::Equal)
                && crl.verify(&issuer_key).unwrap_or(false)
        };
        let mut problems: Vec<String> = Vec::new();
        for crl in &self.files {
            if same_issuer(crl) {
                if is_current(crl, &now) {
                    return status(crl, cert);
                }
                problems.push("the configured CRL file is past its nextUpdate".into());
            }
        }
        let urls = distribution_points(cert);
        if urls.is_empty() && problems.is_empty() {
            problems.push(
                "the certificate names no HTTP CRL distribution point and no configured CRL file covers its issuer"
                    .into(),
            );
        }
        for url in urls {
            if let Ok(cache) = self.cache.lock() {
                if let Some(c) = cache.get(&url) {
                    if is_current(&c.crl, &now) {
                        return status(&c.crl, cert);
                    }
                }
            }
            let fetched = off_the_runtime(|| http_get(&url, self.timeout, self.max_bytes))
                .and_then(|body| certs::crl_from_bytes(&body, &url).map_err(|e| e.to_string()));
            match fetched {
                Ok(crl) if !same_issuer(&crl) => {
                    problems.push(format!("CRL from {url} is not signed by the certificate's issuer"))
                }
                Ok(crl) if !is_current(&crl, &now) => problems.push(format!("CRL from {url} is past its nextUpdate")),
                Ok(crl) => {
                    let result = status(&crl, cert);
                    tracing::debug!(%url, "CRL fetched and cached until its nextUpdate");
                    if let Ok(mut cache) = self.cache.lock() {
                        cache.insert(url, Cached { crl });
                    }
                    return result;
                }
                Err(e) => problems.push(format!("fetching {url}: {e}")),
            }
        }
        CrlCheck::Unavailable(problems.join("; "))
    }
}

/// Run a blocking fetch. On a multi-threaded tokio runtime the worker hands its other tasks to
/// another thread first (`block_in_place`), so one CRL fetch does not stall unrelated calls.
fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn status(crl: &X509CrlRef, cert: &X509Ref) -> CrlCheck {
    match crl.get_by_serial(cert.serial_number()) {
        CrlStatus::Revoked(_) => CrlCheck::Revoked,
        CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => CrlCheck::Good,
    }
}

/// The `http://` URLs of a certificate's CRL distribution points.
pub fn distribution_points(cert: &X509Ref) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(dps) = cert.crl_distribution_points() {
        for dp in dps.iter() {
            if let Some(names) = dp.distpoint().and_then(|n| n.fullname()) {
                for gn in names.iter() {
                    if let Some(u) = gn.uri() {
                        if u.starts_with("http://") {
                            out.push(u.to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

/// A minimal HTTP/1.0 GET: `http://host[:port]/path`, no redirects, no TLS, 200 only, the
/// whole exchange within `timeout`, the body at most `max_bytes`.
pub fn http_get(url: &str, timeout: Duration, max_bytes: usize) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are fetched")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if hostport.is_empty() || hostport.contains('@') {
        return Err("bad host in URL".into());
    }
    let addr_text =
        if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !hostport.ends_with(']') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
    let addrs: Vec<_> = addr_text.to_socket_addrs().map_err(|e| format!("cannot resolve {hostport}: {e}"))?.collect();
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    let mut stream = None;
    let mut last = String::from("no address");
    for a in addrs {
        let t = left(deadline);
        if t.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&a, t) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let host = hostport;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: trunkgate\r\nAccept: application/pkix-crl\r\nConnection: close\r\n\r\n");
    s.set_write_timeout(Some(left(deadline).max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
    s.write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let limit = max_bytes.saturating_add(16 * 1024);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let t = left(deadline);
        if t.is_zero() {
            return Err(format!("no complete answer within {} ms", timeout.as_millis()));
        }
        s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                if buf.len() > limit {
                    return Err(format!("answer larger than {max_bytes} bytes"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or("answer has no header end")?;
    let head = String::from_utf8_lossy(buf.get(..split).unwrap_or(&[])).to_string();
    let status_line = head.lines().next().unwrap_or("");
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        return Err(format!("HTTP status {status_line:?}"));
    }
    let body = buf.get(split + 4..).unwrap_or(&[]).to_vec();
    if body.len() > max_bytes {
        return Err(format!("CRL larger than {max_bytes} bytes"));
    }
    Ok(body)
}
