//! Observation (SPEC O2): the debug log shows messages, states and errors per connection;
//! server-side per-peer trust anchors (T4 trustpoints).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use trunkgate_tls::{ClientConfig, ObserveOptions, PeerOptions, ServerConfig, TlsClient, TlsServer};

const HOST: &str = "lb01.voice.use1.example.net";

/// `tracing` caches per-callsite interest process-wide: tests of this binary that log run one
/// at a time so a test without a subscriber cannot hide events from one with a subscriber.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// One process-wide subscriber (every thread, client and server side) writing into a buffer;
/// emptied for each test (tests hold `serial()`).
fn capture() -> Buf {
    static LOG: std::sync::OnceLock<Buf> = std::sync::OnceLock::new();
    let buf = LOG
        .get_or_init(|| {
            let buf = Buf::default();
            let b2 = buf.clone();
            let sub = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || b2.clone())
                .finish();
            tracing::subscriber::set_global_default(sub).unwrap();
            buf
        })
        .clone();
    buf.0.lock().unwrap().clear();
    buf
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn debug_client(w: &World, profile: trunkgate_tls::Profile, keylog: Option<std::path::PathBuf>) -> TlsClient {
    let mut cfg = ClientConfig::new(profile, w.anchors());
    cfg.observe = ObserveOptions { debug: true, keylog };
    TlsClient::new(&cfg).unwrap()
}

#[test]
fn o2_debug_log_has_messages_states_and_errors() {
    let _one = serial();
    let w = World::new();
    let buf = capture();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.log");
    {
        let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
        let (_, c) = pair(&srv, &debug_client(&w, byoc("off"), Some(keys.clone())), HOST, &PeerOptions::default());
        c.unwrap();
        // A failing one: wrong name.
        let (_, c) =
            pair(&srv, &debug_client(&w, byoc("off"), None), "lb02.voice.use1.example.net", &PeerOptions::default());
        assert_eq!(code(&c), "NameMismatch");
    }
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for needle in [
        ">>> handshake ClientHello",
        "<<< handshake ServerHello",
        "<<< handshake Certificate",
        "<<< handshake ServerKeyExchange",
        "state ",
        "handshake done",
        "verify error: NameMismatch",
        ">>> alert fatal",
        "TLS handshake failed",
        "conn=",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in:\n{log}");
    }
    // Keys go to the key log, never to the log.
    let secret = std::fs::read_to_string(&keys).unwrap();
    let master = secret.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    assert!(master.len() == 96, "{secret}");
    assert!(!log.contains("CLIENT_RANDOM") && !log.contains(&master));
}

#[test]
fn t4_server_side_per_peer_trustpoint() {
    let _one = serial();
    let w = World::new();
    let other = World::new_with_root_key(3);
    let mut cfg = ServerConfig::new(
        trunkgate_tls::Profile::parse(&shipped("mutual"), "mutual").unwrap(),
        w.identity(&w.spec(HOST)),
    );
    cfg.client_trust = Some(w.anchors());
    // Connections from 127.0.0.1 use the other PKI's anchors.
    cfg.peer_trust = vec![("127.0.0.1".parse().unwrap(), other.anchors())];
    let srv = Arc::new(TlsServer::new(&cfg).unwrap());
    let client_with = |issuer: &World| {
        let mut c = ClientConfig::new(profile("mutual"), w.anchors());
        c.identity = Some(issuer.identity(&LeafSpec::client("cucm1.example.net")));
        TlsClient::new(&c).unwrap()
    };
    let (s, _) = pair(&srv, &client_with(&other), HOST, &PeerOptions::default());
    assert!(s.is_ok(), "{:?}", s.err());
    let (s, _) = pair(&srv, &client_with(&w), HOST, &PeerOptions::default());
    assert_eq!(code(&s), "UnknownCa");
}

#[test]
fn o2_debug_per_peer_and_client_reload() {
    let _one = serial();
    let w = World::new();
    let buf = capture();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let cl = client(byoc("off"), w.anchors());
    {
        let quiet = PeerOptions::default();
        pair(&srv, &cl, HOST, &quiet).1.unwrap();
        assert!(!String::from_utf8_lossy(&buf.0.lock().unwrap()).contains("ClientHello"));
        let loud = PeerOptions { debug: true, ..Default::default() };
        pair(&srv, &cl, HOST, &loud).1.unwrap();
        assert!(String::from_utf8_lossy(&buf.0.lock().unwrap()).contains(">>> handshake ClientHello"));
    }
    // A client reload that does not validate keeps the old trust.
    let e = cl.reload(&ClientConfig::new(byoc("off"), trunkgate_tls::TrustAnchors::new("empty"))).unwrap_err();
    assert!(e.to_string().contains("holds no certificate"), "{e}");
    assert!(pair(&srv, &cl, HOST, &PeerOptions::default()).1.is_ok());
    // A good one switches trust for new connections.
    let other = World::new_with_root_key(3);
    cl.reload(&ClientConfig::new(byoc("off"), other.anchors())).unwrap();
    assert_eq!(code(&pair(&srv, &cl, HOST, &PeerOptions::default()).1), "UnknownCa");
}

#[test]
fn o1_connection_info_serializes_for_show_commands() {
    let _one = serial();
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let (s, c) = pair(&srv, &client(byoc("off"), w.anchors()), "lb02.voice.use1.example.net", &PeerOptions::default());
    let _ = s;
    let e = c.unwrap_err();
    let v: serde_json::Value = serde_json::to_value(&*e.info).unwrap();
    assert_eq!(v["role"], "Client");
    assert_eq!(v["version"], "TLSv1.2");
    assert_eq!(v["verification"]["Failed"]["NameMismatch"]["expected"], "lb02.voice.use1.example.net");
    assert_eq!(v["peer_chain"][0]["subject"], format!("O=trunkgate test, CN={HOST}"));
    assert_eq!(v["alerts_sent"][0]["name"], "bad_certificate");
}
