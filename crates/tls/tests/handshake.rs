//! Successful handshakes on loopback between our server and our client (SPEC T2–T9, O2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::*;
use trunkgate_tls::{
    ClientConfig, Identity, ObserveOptions, PeerOptions, ServerConfig, TlsClient, TlsServer, TrustAnchors, Verification,
};

const HOST: &str = "lb01.voice.use1.example.net";

const T2_SUITES: [&str; 8] = [
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

#[test]
fn t2_each_of_the_8_suites_negotiated_with_hard_crl_checks() {
    let w = World::new();
    // Shipped byoc-cloud (hard CRL checking) on the server; a client offering one suite only.
    let srv = server(byoc("hard"), w.identity(&w.spec(HOST)));
    for suite in T2_SUITES {
        let text = shipped("byoc-cloud");
        let start = text.find("cipher_suites = [").unwrap();
        let end = start + text[start..].find(']').unwrap() + 1;
        let one = format!("{}cipher_suites = [\"{suite}\"]{}", &text[..start], &text[end..]);
        let p = trunkgate_tls::Profile::parse(&one, "one-suite").unwrap();
        let cl = client(p, w.anchors());
        let (s, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
        let (s, c) = (s.unwrap(), c.unwrap());
        for info in [&s, &c] {
            assert_eq!(info.cipher.as_deref(), Some(suite));
            assert_eq!(info.version.as_deref(), Some("TLSv1.2"));
            let want = if suite.contains("ECDHE") { Some("P-384") } else { None };
            assert_eq!(info.group.as_deref(), want, "{suite}");
        }
        assert_eq!(c.verification, Verification::Verified);
        assert_eq!(c.peer_chain.len(), 2, "T5: leaf and intermediate sent");
        assert_eq!(s.verification, Verification::NoPeerCertificate);
    }
    assert!(w.http.hits.load(std::sync::atomic::Ordering::SeqCst) >= 2, "CRLs fetched");
}

#[test]
fn t3_byoc_cloud_server_sends_no_certificate_request() {
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let cl = client(byoc("off"), w.anchors());
    let (s, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    let (s, c) = (s.unwrap(), c.unwrap());
    assert!(!s.certificate_request_sent);
    assert!(!c.certificate_request_received);
    assert_eq!(c.sni.as_deref(), Some(HOST));
    assert_eq!(s.sni.as_deref(), Some(HOST));

    // The observation is real: a mutual server does send one, and the client sees it.
    let mut cfg = ServerConfig::new(profile("mutual"), w.identity(&w.spec(HOST)));
    cfg.client_trust = Some(w.anchors());
    let msrv = Arc::new(TlsServer::new(&cfg).unwrap());
    let mut ccfg = ClientConfig::new(profile("mutual"), w.anchors());
    ccfg.identity = Some(w.identity(&LeafSpec::client("cucm1.example.net")));
    let mcl = TlsClient::new(&ccfg).unwrap();
    let (s, c) = pair(&msrv, &mcl, HOST, &PeerOptions::default());
    let (s, c) = (s.unwrap(), c.unwrap());
    assert!(s.certificate_request_sent);
    assert!(c.certificate_request_received);
    assert_eq!(s.verification, Verification::Verified);
    assert_eq!(s.peer_chain[0].subject, "O=trunkgate test, CN=cucm1.example.net");
}

#[test]
fn t4_mutual_allowed_subject_and_serverauth_only_client_cert_t11() {
    let w = World::new();
    let mut cfg = ServerConfig::new(profile("mutual"), w.identity(&w.spec(HOST)));
    cfg.client_trust = Some(w.anchors());
    cfg.allowed_subjects = vec!["cucm1.example.net".into()];
    let srv = Arc::new(TlsServer::new(&cfg).unwrap());
    // The client certificate carries serverAuth only (T11): accepted, clientAuth not required.
    let mut ccfg = ClientConfig::new(profile("mutual"), w.anchors());
    ccfg.identity = Some(w.identity(&LeafSpec::server("cucm1.example.net")));
    let cl = TlsClient::new(&ccfg).unwrap();
    let (s, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert_eq!(s.unwrap().verification, Verification::Verified);
    assert!(c.is_ok());
}

#[test]
fn t4_per_peer_trust_anchors_on_the_client() {
    let w = World::new();
    let other = World::new_with_root_key(3);
    let srv = server(byoc("off"), other.identity(&other.spec(HOST)));
    // Default anchors do not cover `other`; the per-peer trustpoint does.
    let cl = client(byoc("off"), w.anchors());
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert_eq!(code(&c), "UnknownCa");
    let opts = PeerOptions { trust: Some(other.anchors()), ..Default::default() };
    let (_, c) = pair(&srv, &cl, HOST, &opts);
    assert!(c.is_ok(), "{:?}", c.err());
}

#[test]
fn rfc5922_sip_uri_san_and_cn_only_certificates() {
    let w = World::new();
    let cl = client(byoc("off"), w.anchors());
    // SIP URI SAN only (no dNSName): matches by its host.
    let mut spec = w.spec("ignored-cn.example.net");
    spec.dns.clear();
    spec.uris = vec![format!("sip:{HOST}")];
    let srv = server(byoc("off"), w.identity(&spec));
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert!(c.is_ok(), "{:?}", c.err());
    // No SAN at all: the CN counts (RFC 6125).
    let mut spec = w.spec(HOST);
    spec.dns.clear();
    let srv = server(byoc("off"), w.identity(&spec));
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert!(c.is_ok(), "{:?}", c.err());
}

#[test]
fn sni_chooses_among_certificates() {
    let w = World::new();
    let mut cfg = ServerConfig::new(byoc("off"), w.identity(&w.spec("a.example.net")));
    cfg.identities.push(w.identity(&w.spec("b.example.net")));
    let srv = Arc::new(TlsServer::new(&cfg).unwrap());
    let cl = client(byoc("off"), w.anchors());
    for host in ["a.example.net", "b.example.net"] {
        let (s, c) = pair(&srv, &cl, host, &PeerOptions::default());
        let c = c.unwrap();
        assert_eq!(c.peer_chain[0].subject, format!("O=trunkgate test, CN={host}"));
        assert_eq!(s.unwrap().sni.as_deref(), Some(host));
    }
}

#[test]
fn t8_expiry_warning() {
    let w = World::new();
    let mut spec = w.spec(HOST);
    spec.to_days = 10;
    let srv = server(byoc("off"), w.identity(&spec));
    let cl = client(byoc("off"), w.anchors()); // warning_days = 30
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    let c = c.unwrap();
    assert!(c.warnings.iter().any(|x| x.contains("within 30 days")), "{:?}", c.warnings);
}

#[test]
fn t9_soft_revocation_accepts_with_warning_when_crl_unreachable() {
    let w = World::new();
    let mut spec = w.spec(HOST);
    spec.crl_url = Some("http://127.0.0.1:0/gone.crl".to_string());
    let srv = server(byoc("off"), w.identity(&spec));
    let cl = client(byoc("soft"), w.anchors());
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    let c = c.unwrap();
    assert!(c.warnings.iter().any(|x| x.contains("revocation is soft")), "{:?}", c.warnings);
}

#[test]
fn t9_crl_cached_until_next_update() {
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let cl = client(byoc("hard"), w.anchors());
    for _ in 0..3 {
        let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
        assert!(c.is_ok(), "{:?}", c.err());
    }
    // Two CRLs (intermediate's and root's), each fetched once.
    assert_eq!(w.http.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn reload_keeps_open_connections_and_refuses_bad_material() {
    use std::io::{Read, Write};
    let w = World::new();
    let cfg1 = ServerConfig::new(byoc("off"), w.identity(&w.spec(HOST)));
    let srv = Arc::new(TlsServer::new(&cfg1).unwrap());
    let cl = client(byoc("off"), w.anchors());

    // Open a connection and keep it.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let s2 = srv.clone();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (mut tls, _) = s2.accept_blocking(s, None, "first").unwrap();
        let mut buf = [0u8; 2];
        for _ in 0..2 {
            tls.read_exact(&mut buf).unwrap();
            tls.write_all(&buf).unwrap();
        }
    });
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (mut old, info) = cl.connect_blocking(HOST, &PeerOptions::default(), s).unwrap();
    let first_serial = info.peer_chain[0].serial.clone();
    old.write_all(b"1!").unwrap();
    let mut b = [0u8; 2];
    old.read_exact(&mut b).unwrap();

    // A reload with an expired certificate is refused; the old material stays.
    let mut bad = w.spec(HOST);
    bad.from_days = -30;
    bad.to_days = -1;
    let e = srv.reload(&ServerConfig::new(byoc("off"), w.identity(&bad))).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert_eq!(c.unwrap().peer_chain[0].serial, first_serial);

    // A good reload: new connections get the new certificate, the old one still works.
    srv.reload(&ServerConfig::new(byoc("off"), w.identity(&w.spec(HOST)))).unwrap();
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert_ne!(c.unwrap().peer_chain[0].serial, first_serial);
    old.write_all(b"2!").unwrap();
    old.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"2!");
    t.join().unwrap();
}

#[test]
fn o2_key_log_written_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.log");
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let mut cfg = ClientConfig::new(byoc("off"), w.anchors());
    cfg.observe = ObserveOptions { debug: true, keylog: Some(path.clone()) };
    let cl = TlsClient::new(&cfg).unwrap();
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    c.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().any(|l| l.starts_with("CLIENT_RANDOM ") && l.split(' ').count() == 3), "{text}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn async_accept_and_connect_with_tokio() {
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    // Hard CRL checking: the fetch runs under block_in_place on this multi-threaded runtime.
    let cl = client(byoc("hard"), w.anchors());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let s2 = srv.clone();
        let st = tokio::spawn(async move {
            let (tcp, peer) = l.accept().await.unwrap();
            let (mut tls, info) = s2.accept(tcp, Some(peer.ip()), "peer").await.unwrap();
            let mut b = [0u8; 4];
            tls.read_exact(&mut b).await.unwrap();
            tls.write_all(&b).await.unwrap();
            tls.shutdown().await.ok();
            info
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let opts = PeerOptions::default();
        let fut = cl.connect(HOST, &opts, tcp);
        let (mut tls, info) = tokio::time::timeout(TIMEOUT, fut).await.unwrap().unwrap();
        tls.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        tls.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        assert_eq!(info.cipher.as_deref(), Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
        let sinfo = tokio::time::timeout(TIMEOUT, st).await.unwrap().unwrap();
        assert_eq!(sinfo.group.as_deref(), Some("P-384"));
    });
    assert_eq!(w.http.hits.load(std::sync::atomic::Ordering::SeqCst), 2, "both CRLs fetched");
}

#[test]
fn t10_identity_and_anchors_from_pem_and_der_files() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (leaf, key) = w.issue(&w.spec(HOST));
    std::fs::write(dir.path().join("leaf.der"), leaf.to_der().unwrap()).unwrap();
    std::fs::write(dir.path().join("inter.pem"), w.inter.cert.to_pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("key.der"), key.private_key_to_der().unwrap()).unwrap();
    let anchors_dir = dir.path().join("roots");
    std::fs::create_dir(&anchors_dir).unwrap();
    std::fs::write(anchors_dir.join("root.der"), w.root.cert.to_der().unwrap()).unwrap();
    let inter_path = dir.path().join("inter.pem");
    let id = Identity::from_files(&dir.path().join("leaf.der"), &dir.path().join("key.der"), &[&inter_path]).unwrap();
    let anchors = TrustAnchors::from_dir(&anchors_dir).unwrap();
    assert_eq!(anchors.len(), 1);
    let srv = server(byoc("off"), id);
    let cl = client(byoc("off"), anchors);
    let (_, c) = pair(&srv, &cl, HOST, &PeerOptions::default());
    assert!(c.is_ok(), "{:?}", c.err());
    // A key that belongs to another certificate is refused at load.
    let other = rsa(5);
    assert!(Identity::new(vec![leaf], other).is_err());
}

#[test]
fn ec_server_key_on_modern_and_refused_on_byoc_cloud() {
    let w = World::new();
    let key = ec(openssl::nid::Nid::X9_62_PRIME256V1);
    let leaf = common::leaf(&w.inter, &w.spec(HOST), &key);
    let id = Identity::new(vec![leaf, w.inter.cert.clone()], key).unwrap();
    // modern: TLS 1.3 with an ECDSA certificate.
    let srv = server(profile("modern"), id.clone());
    let (s, c) = pair(&srv, &client(profile("modern"), w.anchors()), HOST, &PeerOptions::default());
    let (s, c) = (s.unwrap(), c.unwrap());
    assert_eq!(c.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(s.group.as_deref(), Some("X25519"));
    // byoc-cloud's suites are all RSA-signed: an EC key is refused at load, with the fix.
    let e = TlsServer::new(&ServerConfig::new(byoc("off"), id)).unwrap_err().to_string();
    assert!(e.contains("RSA"), "{e}");
}

#[test]
fn t2_exact_suites_checked_at_build() {
    let w = World::new();
    // GCM needs TLS 1.2: OpenSSL would silently drop it from a TLS 1.1 profile.
    let p = custom("\"1.1\"", "\"TLS_RSA_WITH_AES_256_CBC_SHA\", \"TLS_RSA_WITH_AES_256_GCM_SHA384\"", "\"P-384\"");
    let e = TlsClient::new(&ClientConfig::new(p, w.anchors())).unwrap_err().to_string();
    assert!(e.contains("not enabled [TLS_RSA_WITH_AES_256_GCM_SHA384]"), "{e}");
}

/// Read-ahead (issue 9: one `recv` for everything the socket holds once the handshake is done)
/// must not lose or stall records: 200 records sent back to back, in one burst and then one by
/// one, all arrive in order at an async reader that asks for small pieces.
#[tokio::test(flavor = "current_thread")]
async fn records_sent_back_to_back_all_arrive_with_read_ahead() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let cl = client(byoc("off"), w.anchors());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let records: Vec<Vec<u8>> =
        (0..200u32).map(|i| format!("record {i:03} {}\n", "x".repeat(i as usize)).into_bytes()).collect();
    let want: Vec<u8> = records.concat();
    let reader = tokio::spawn(async move {
        let (tcp, peer) = l.accept().await.unwrap();
        let (mut tls, _) = srv.accept(tcp, Some(peer.ip()), &peer.to_string()).await.unwrap();
        let mut got = Vec::new();
        let mut piece = [0u8; 7];
        while got.len() < 2 * want.len() {
            let n = tls.read(&mut piece).await.unwrap();
            assert!(n > 0, "connection closed after {} bytes", got.len());
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(&got[..want.len()], &want[..], "burst");
        assert_eq!(&got[want.len()..], &want[..], "one by one");
        tls.write_all(b"done").await.unwrap();
        tls.flush().await.unwrap();
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut tls, _) = cl.connect(HOST, &PeerOptions::default(), tcp).await.unwrap();
    // One write per record; OpenSSL makes each a TLS record, and the kernel hands them to the
    // server together.
    for r in &records {
        tls.write_all(r).await.unwrap();
    }
    tls.flush().await.unwrap();
    for r in &records {
        tls.write_all(r).await.unwrap();
        tls.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut ack = [0u8; 4];
    tokio::time::timeout(std::time::Duration::from_secs(20), tls.read_exact(&mut ack)).await.unwrap().unwrap();
    assert_eq!(&ack, b"done");
    reader.await.unwrap();
}
