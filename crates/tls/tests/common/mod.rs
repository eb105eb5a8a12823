//! Test PKI, a tiny HTTP server for CRLs, loopback handshake runners and child-process guards.
//! Certificates are made here with the `openssl` crate (crates/pki is not a dependency).
#![allow(dead_code, deprecated, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Builder, X509Crl, X509CrlBuilder, X509Extension, X509Name, X509NameBuilder, X509RevokedBuilder, X509,
};
use trunkgate_tls::{
    ClientConfig, ConnectionInfo, HandshakeError, Identity, PeerOptions, Profile, ServerConfig, TlsClient, TlsServer,
    TrustAnchors,
};

pub const TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- keys

static RSA_POOL: OnceLock<Mutex<HashMap<usize, PKey<Private>>>> = OnceLock::new();

/// RSA-2048 key number `i` (generated once per test binary).
pub fn rsa(i: usize) -> PKey<Private> {
    let pool = RSA_POOL.get_or_init(|| Mutex::new(HashMap::new()));
    let mut p = pool.lock().unwrap();
    p.entry(i).or_insert_with(|| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()).clone()
}

/// A fresh EC key on a curve.
pub fn ec(nid: Nid) -> PKey<Private> {
    let g = EcGroup::from_curve_name(nid).unwrap();
    PKey::from_ec_key(EcKey::generate(&g).unwrap()).unwrap()
}

// ---------------------------------------------------------------- certificates

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn time(days: i64) -> Asn1Time {
    Asn1Time::from_unix(now() + days * 86_400).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "trunkgate test").unwrap();
    b.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    b.build()
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(63, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// A CA: certificate and key.
#[derive(Clone)]
pub struct Ca {
    pub cert: X509,
    pub key: PKey<Private>,
}

fn crl_dp(b: &X509Builder, url: &str) -> X509Extension {
    let ctx = b.x509v3_context(None, None);
    X509Extension::new_nid(None, Some(&ctx), Nid::CRL_DISTRIBUTION_POINTS, &format!("URI:{url}")).unwrap()
}

/// A self-signed root.
pub fn root(cn: &str, key: PKey<Private>) -> Ca {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    let n = name(cn);
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&time(-30)).unwrap();
    b.set_not_after(&time(3650)).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Ca { cert: b.build(), key }
}

/// An intermediate signed by `parent`, naming `crl_url` (the parent's CRL) when given.
pub fn intermediate(parent: &Ca, cn: &str, key: PKey<Private>, crl_url: Option<&str>) -> Ca {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(parent.cert.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&time(-30)).unwrap();
    b.set_not_after(&time(1825)).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build().unwrap()).unwrap();
    b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&parent.cert), None)).unwrap();
    b.append_extension(ski).unwrap();
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(&parent.cert), None)).unwrap();
    b.append_extension(aki).unwrap();
    if let Some(u) = crl_url {
        let e = crl_dp(&b, u);
        b.append_extension(e).unwrap();
    }
    b.sign(&parent.key, MessageDigest::sha256()).unwrap();
    Ca { cert: b.build(), key }
}

/// Extended key usage of a leaf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Eku {
    Server,
    Client,
    Both,
    Absent,
}

/// What a leaf looks like.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    pub cn: String,
    pub dns: Vec<String>,
    pub uris: Vec<String>,
    pub ips: Vec<String>,
    pub eku: Eku,
    pub from_days: i64,
    pub to_days: i64,
    pub crl_url: Option<String>,
}

impl LeafSpec {
    pub fn server(dns: &str) -> LeafSpec {
        LeafSpec {
            cn: dns.to_string(),
            dns: vec![dns.to_string()],
            uris: vec![],
            ips: vec![],
            eku: Eku::Server,
            from_days: -1,
            to_days: 365,
            crl_url: None,
        }
    }
    pub fn client(cn: &str) -> LeafSpec {
        LeafSpec { eku: Eku::Client, ..LeafSpec::server(cn) }
    }
}

/// A leaf signed by `issuer`.
pub fn leaf(issuer: &Ca, spec: &LeafSpec, key: &PKey<Private>) -> X509 {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name(&spec.cn)).unwrap();
    b.set_issuer_name(issuer.cert.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&time(spec.from_days)).unwrap();
    b.set_not_after(&time(spec.to_days)).unwrap();
    b.append_extension(BasicConstraints::new().build().unwrap()).unwrap();
    b.append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().build().unwrap()).unwrap();
    let eku = match spec.eku {
        Eku::Server => Some(ExtendedKeyUsage::new().server_auth().build().unwrap()),
        Eku::Client => Some(ExtendedKeyUsage::new().client_auth().build().unwrap()),
        Eku::Both => Some(ExtendedKeyUsage::new().server_auth().client_auth().build().unwrap()),
        Eku::Absent => None,
    };
    if let Some(e) = eku {
        b.append_extension(e).unwrap();
    }
    if !(spec.dns.is_empty() && spec.uris.is_empty() && spec.ips.is_empty()) {
        let mut san = SubjectAlternativeName::new();
        for d in &spec.dns {
            san.dns(d);
        }
        for u in &spec.uris {
            san.uri(u);
        }
        for i in &spec.ips {
            san.ip(i);
        }
        let ext = san.build(&b.x509v3_context(Some(&issuer.cert), None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(&issuer.cert), None)).unwrap();
    b.append_extension(aki).unwrap();
    if let Some(u) = &spec.crl_url {
        let e = crl_dp(&b, u);
        b.append_extension(e).unwrap();
    }
    b.sign(&issuer.key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// A CRL from `issuer` revoking `revoked`, valid from yesterday for `next_days` days.
pub fn crl(issuer: &Ca, revoked: &[&X509], next_days: i64) -> X509Crl {
    let mut b = X509CrlBuilder::new().unwrap();
    b.set_issuer_name(issuer.cert.subject_name()).unwrap();
    b.set_last_update(&time(-1)).unwrap();
    b.set_next_update(&time(next_days)).unwrap();
    let xb = X509Builder::new().unwrap();
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&xb.x509v3_context(Some(&issuer.cert), None)).unwrap();
    b.append_extension(aki).unwrap();
    b.append_extension(CrlNumber::new(BigNum::from_u32(1).unwrap()).unwrap().build().unwrap()).unwrap();
    for c in revoked {
        let mut r = X509RevokedBuilder::new().unwrap();
        r.set_serial_number(c.serial_number()).unwrap();
        r.set_revocation_date(&time(-1)).unwrap();
        b.add_revoked(r.build()).unwrap();
    }
    b.sign(&issuer.key, MessageDigest::sha256()).unwrap();
    b.build().unwrap()
}

// ---------------------------------------------------------------- HTTP server for CRLs

/// Serves fixed bodies by path on 127.0.0.1 until dropped.
pub struct HttpServer {
    pub port: u16,
    pub files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, h, s) = (files.clone(), hits.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut buf = [0u8; 4096];
                        let n = c.read(&mut buf).unwrap_or(0);
                        let req = String::from_utf8_lossy(&buf[..n]).to_string();
                        let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                        h.fetch_add(1, Ordering::SeqCst);
                        let body = f.lock().unwrap().get(&path).cloned();
                        let _ = match body {
                            Some(b) => c
                                .write_all(format!("HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes())
                                .and_then(|_| c.write_all(&b)),
                            None => c.write_all(b"HTTP/1.0 404 Not Found\r\n\r\n"),
                        };
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpServer { port, files, hits, stop, handle: Some(handle) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), body);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------- a test world

/// Root -> intermediate -> leaves, with CRLs served over HTTP (T9).
pub struct World {
    pub http: HttpServer,
    pub root: Ca,
    pub inter: Ca,
}

impl World {
    pub fn new() -> World {
        World::build("Trunkgate Test Root", 0)
    }

    /// Another PKI (different root name and keys).
    pub fn new_with_root_key(k: usize) -> World {
        World::build(&format!("Other Test Root {k}"), k)
    }

    fn build(root_cn: &str, k: usize) -> World {
        let http = HttpServer::start();
        let root = root(root_cn, rsa(k));
        let inter = intermediate(&root, &format!("{root_cn} Issuing CA"), rsa(k + 1), Some(&http.url("/root.crl")));
        let w = World { http, root, inter };
        w.publish_crls(&[], &[]);
        w
    }

    /// Publish fresh CRLs: the root's (revoking intermediates) and the intermediate's.
    pub fn publish_crls(&self, root_revokes: &[&X509], inter_revokes: &[&X509]) {
        self.http.put("/root.crl", crl(&self.root, root_revokes, 7).to_der().unwrap());
        self.http.put("/inter.crl", crl(&self.inter, inter_revokes, 7).to_der().unwrap());
    }

    /// A server leaf spec whose CRL is the intermediate's.
    pub fn spec(&self, dns: &str) -> LeafSpec {
        LeafSpec { crl_url: Some(self.http.url("/inter.crl")), ..LeafSpec::server(dns) }
    }

    pub fn issue(&self, spec: &LeafSpec) -> (X509, PKey<Private>) {
        let key = rsa(2);
        (leaf(&self.inter, spec, &key), key)
    }

    /// Identity with the full chain (leaf + intermediate, T5).
    pub fn identity(&self, spec: &LeafSpec) -> Identity {
        let (c, k) = self.issue(spec);
        Identity::new(vec![c, self.inter.cert.clone()], k).unwrap()
    }

    pub fn anchors(&self) -> TrustAnchors {
        let mut t = TrustAnchors::new("test root");
        t.add(self.root.cert.clone());
        t
    }
}

// ---------------------------------------------------------------- profiles

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shipped(name: &str) -> String {
    std::fs::read_to_string(repo().join(format!("profiles/{name}.toml"))).unwrap()
}

/// The shipped byoc-cloud profile with another revocation mode.
pub fn byoc(revocation: &str) -> Profile {
    let text = shipped("byoc-cloud").replace("mode = \"hard\"", &format!("mode = \"{revocation}\""));
    Profile::parse(&text, "byoc-cloud.toml").unwrap()
}

pub fn profile(name: &str) -> Profile {
    Profile::parse(&shipped(name), name).unwrap()
}

/// A one-off client profile.
pub fn custom(versions: &str, suites: &str, groups: &str) -> Profile {
    let text = format!(
        "name = \"custom\"\nversions = [{versions}]\ncipher_suites = [{suites}]\ngroups = [{groups}]\n\
         [client_certificate]\npolicy = \"none\"\n[peer]\nip_identities = false\nwildcards = false\n\
         [revocation]\nmode = \"off\"\n"
    );
    Profile::parse(&text, "custom").unwrap()
}

// ---------------------------------------------------------------- handshakes

pub type Outcome = Result<ConnectionInfo, HandshakeError>;

/// One loopback handshake between our server and our client, with a byte echoed when it works.
pub fn pair(server: &Arc<TlsServer>, client: &TlsClient, target: &str, opts: &PeerOptions) -> (Outcome, Outcome) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let srv = server.clone();
    let t = std::thread::spawn(move || {
        let (s, peer) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        let r = match srv.accept_blocking(&s, Some(peer.ip()), &peer.to_string()) {
            Ok((mut tls, info)) => {
                let mut b = [0u8; 1];
                if tls.read_exact(&mut b).is_ok() {
                    let _ = tls.write_all(&b);
                }
                Ok(info)
            }
            Err(e) => Err(e),
        };
        // Lingering close: drain what the client still sends, so that closing does not reset
        // the connection and destroy our alert before the client reads it (TLS 1.3 refusals
        // arrive after the client's handshake has completed).
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        while matches!((&s).read(&mut sink), Ok(n) if n > 0) {}
        r
    });
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    let c = match client.connect_blocking(target, opts, s) {
        Ok((mut tls, info)) => {
            let mut b = [0u8; 1];
            match tls.write_all(b"x").and_then(|_| tls.read_exact(&mut b)) {
                Ok(()) => {
                    assert_eq!(&b, b"x");
                    Ok(info)
                }
                // TLS 1.3: the server refused us after our Finished.
                Err(e) => Err(HandshakeError {
                    peer: target.to_string(),
                    reason: trunkgate_tls::failure_after_handshake(tls.ssl())
                        .unwrap_or(trunkgate_tls::FailureReason::Io { detail: e.to_string() }),
                    info: Box::new(info),
                }),
            }
        }
        Err(e) => Err(e),
    };
    let s = t.join().unwrap();
    (s, c)
}

pub fn server(profile: Profile, id: Identity) -> Arc<TlsServer> {
    Arc::new(TlsServer::new(&ServerConfig::new(profile, id)).unwrap())
}

pub fn client(profile: Profile, anchors: TrustAnchors) -> TlsClient {
    TlsClient::new(&ClientConfig::new(profile, anchors)).unwrap()
}

/// The failure code of an outcome (panics on success).
pub fn code(o: &Outcome) -> &'static str {
    match o {
        Ok(i) => panic!("expected a failure, got success: {i:?}"),
        Err(e) => e.reason.code(),
    }
}

// ---------------------------------------------------------------- child processes

/// Kills and reaps a child process when dropped.
pub struct ChildGuard(pub Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Write PEM files for the openssl binary into `dir`.
pub fn write_pem(dir: &Path, name: &str, certs: &[&X509]) -> PathBuf {
    let mut pem = Vec::new();
    for c in certs {
        pem.extend(c.to_pem().unwrap());
    }
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

pub fn write_key(dir: &Path, name: &str, key: &PKey<Private>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    p
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait until something listens on the port (bounded).
pub fn wait_listening(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

// ---------------------------------------------------------------- foreign peers

/// A server built directly on the `openssl` crate (a "foreign" peer that may present what our
/// own server refuses to load: expired or not-yet-valid certificates). Serves one connection.
pub fn raw_server(chain: Vec<X509>, key: PKey<Private>) -> (u16, JoinHandle<()>) {
    use openssl::ssl::{SslAcceptor, SslMethod};
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    b.set_certificate(&chain[0]).unwrap();
    for c in chain.iter().skip(1) {
        b.add_extra_chain_cert(c.clone()).unwrap();
    }
    b.set_private_key(&key).unwrap();
    let acc = b.build();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            s.set_write_timeout(Some(TIMEOUT)).unwrap();
            let _ = acc.accept(s);
        }
    });
    (port, h)
}

/// Connect our client to a loopback port.
pub fn connect_port(client: &TlsClient, target: &str, port: u16) -> Outcome {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    client.connect_blocking(target, &PeerOptions::default(), s).map(|(_, i)| i)
}
