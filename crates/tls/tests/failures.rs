//! Every failure reason, with its exact reason, on real loopback handshakes (SPEC T2–T11).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::*;
use trunkgate_tls::{ClientConfig, FailureReason, Identity, PeerOptions, Profile, ServerConfig, TlsClient, TlsServer};

const HOST: &str = "lb01.voice.use1.example.net";

fn opts() -> PeerOptions {
    PeerOptions::default()
}

fn reason(o: &Outcome) -> FailureReason {
    match o {
        Ok(i) => panic!("expected a failure, got {i:?}"),
        Err(e) => {
            // Every reason explains itself and says what to do.
            assert!(!e.reason.explanation().is_empty() && !e.reason.fix().is_empty());
            assert!(e.to_string().contains(e.reason.code()), "{e}");
            e.reason.clone()
        }
    }
}

#[test]
fn t6_unknown_ca() {
    let w = World::new();
    let other = World::new_with_root_key(3);
    let srv = server(byoc("off"), other.identity(&other.spec(HOST)));
    let (s, c) = pair(&srv, &client(byoc("off"), w.anchors()), HOST, &opts());
    match reason(&c) {
        FailureReason::UnknownCa { issuer, .. } => assert!(issuer.contains("Other Test Root 3"), "{issuer}"),
        r => panic!("{r:?}"),
    }
    // The server hears the client's unknown_ca alert.
    assert!(matches!(reason(&s), FailureReason::PeerAlert { ref alert } if alert.contains("unknown_ca")), "{s:?}");
}

#[test]
fn t5_incomplete_chain() {
    let w = World::new();
    let (leaf, key) = w.issue(&w.spec(HOST));
    let srv = server(byoc("off"), Identity::new(vec![leaf], key).unwrap());
    let (_, c) = pair(&srv, &client(byoc("off"), w.anchors()), HOST, &opts());
    let r = reason(&c);
    assert!(matches!(r, FailureReason::IncompleteChain { .. }), "{r:?}");
    assert!(r.fix().contains("send its intermediate chain"));
}

#[test]
fn t7_name_mismatch_and_cn_ignored_when_san_present() {
    let w = World::new();
    let cl = client(byoc("off"), w.anchors());
    let srv = server(byoc("off"), w.identity(&w.spec("lb02.voice.use1.example.net")));
    let (_, c) = pair(&srv, &cl, HOST, &opts());
    assert_eq!(
        reason(&c),
        FailureReason::NameMismatch { expected: HOST.into(), presented: vec!["lb02.voice.use1.example.net".into()] }
    );
    // CN carries the host, the SAN does not: the CN is not consulted (RFC 6125).
    let mut spec = w.spec(HOST);
    spec.dns = vec!["other.example.net".into()];
    let srv = server(byoc("off"), w.identity(&spec));
    let (_, c) = pair(&srv, &cl, HOST, &opts());
    assert_eq!(code(&c), "NameMismatch");
}

#[test]
fn t7_wildcards_only_where_the_profile_allows() {
    let w = World::new();
    let srv_spec = w.spec("*.voice.use1.example.net");
    let (s1, c1) = pair(&server(byoc("off"), w.identity(&srv_spec)), &client(byoc("off"), w.anchors()), HOST, &opts());
    assert_eq!(code(&c1), "NameMismatch");
    drop(s1);
    // modern allows wildcards.
    let (_, c2) =
        pair(&server(profile("modern"), w.identity(&srv_spec)), &client(profile("modern"), w.anchors()), HOST, &opts());
    assert!(c2.is_ok(), "{:?}", c2.err());
}

#[test]
fn t7_ip_identity_refused() {
    let w = World::new();
    let mut spec = w.spec(HOST);
    spec.ips = vec!["127.0.0.1".into()];
    let srv = server(byoc("off"), w.identity(&spec));
    let cl = client(byoc("off"), w.anchors());
    // Refused before any byte is sent: the server never sees a handshake.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let r = cl.connect_blocking("127.0.0.1", &opts(), s).map(|(_, i)| i);
    assert_eq!(reason(&r), FailureReason::IpIdentityRefused { target: "127.0.0.1".into() });
    let e = byoc("off").check_target("127.0.0.1").unwrap_err().to_string();
    assert!(e.contains("byoc-cloud") && e.contains("host name"), "{e}");
    drop(srv);
}

#[test]
fn t8_expired_and_not_yet_valid() {
    let w = World::new();
    let cl = client(byoc("off"), w.anchors());
    let mut spec = w.spec(HOST);
    spec.from_days = -60;
    spec.to_days = -2;
    let (leaf, key) = w.issue(&spec);
    let (port, h) = raw_server(vec![leaf, w.inter.cert.clone()], key);
    let c = connect_port(&cl, HOST, port);
    assert!(matches!(reason(&c), FailureReason::Expired { ref subject, .. } if subject.contains(HOST)), "{c:?}");
    h.join().unwrap();

    let mut spec = w.spec(HOST);
    spec.from_days = 2;
    spec.to_days = 60;
    let (leaf, key) = w.issue(&spec);
    let (port, h) = raw_server(vec![leaf, w.inter.cert.clone()], key);
    let c = connect_port(&cl, HOST, port);
    assert_eq!(code(&c), "NotYetValid");
    h.join().unwrap();
}

#[test]
fn t9_revoked_leaf_by_http_crl() {
    let w = World::new();
    let (leaf, key) = w.issue(&w.spec(HOST));
    w.publish_crls(&[], &[&leaf]);
    let srv = server(byoc("off"), Identity::new(vec![leaf.clone(), w.inter.cert.clone()], key).unwrap());
    let (_, c) = pair(&srv, &client(byoc("hard"), w.anchors()), HOST, &opts());
    match reason(&c) {
        FailureReason::Revoked { subject, serial } => {
            assert!(subject.contains(HOST));
            assert_eq!(serial, leaf.serial_number().to_bn().unwrap().to_hex_str().unwrap().to_string());
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn t9_revoked_intermediate_and_crl_file() {
    let w = World::new();
    // The root revokes the intermediate: caught through the intermediate's distribution point.
    w.publish_crls(&[&w.inter.cert], &[]);
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let (_, c) = pair(&srv, &client(byoc("hard"), w.anchors()), HOST, &opts());
    assert!(matches!(reason(&c), FailureReason::Revoked { ref subject, .. } if subject.contains("Issuing CA")));

    // A configured CRL file, with a leaf that names no distribution point.
    let w = World::new();
    let mut spec = w.spec(HOST);
    spec.crl_url = None;
    let (leaf, key) = w.issue(&spec);
    let dir = tempfile::tempdir().unwrap();
    let crl_path = dir.path().join("inter.crl.pem");
    std::fs::write(&crl_path, crl(&w.inter, &[&leaf], 7).to_pem().unwrap()).unwrap();
    let text =
        shipped("byoc-cloud").replace("crl_files = []", &format!("crl_files = [{:?}]", crl_path.display().to_string()));
    let p = Profile::parse(&text, "byoc-cloud+file").unwrap();
    let srv = server(byoc("off"), Identity::new(vec![leaf, w.inter.cert.clone()], key).unwrap());
    let (_, c) = pair(&srv, &client(p, w.anchors()), HOST, &opts());
    assert_eq!(code(&c), "Revoked");
}

#[test]
fn t9_crl_unavailable_under_hard_policy() {
    let w = World::new();
    let mut spec = w.spec(HOST);
    spec.crl_url = Some("http://127.0.0.1:0/gone.crl".to_string());
    let srv = server(byoc("off"), w.identity(&spec));
    let (_, c) = pair(&srv, &client(byoc("hard"), w.anchors()), HOST, &opts());
    match reason(&c) {
        FailureReason::CrlUnavailable { subject, detail } => {
            assert!(subject.contains(HOST));
            assert!(detail.contains("gone.crl"), "{detail}");
        }
        r => panic!("{r:?}"),
    }
    // A CRL that is not signed by the issuer is no CRL.
    let w2 = World::new_with_root_key(3);
    w.http.put("/forged.crl", crl(&w2.inter, &[], 7).to_der().unwrap());
    let mut spec = w.spec(HOST);
    spec.crl_url = Some(w.http.url("/forged.crl"));
    let srv = server(byoc("off"), w.identity(&spec));
    let (_, c) = pair(&srv, &client(byoc("hard"), w.anchors()), HOST, &opts());
    assert!(matches!(reason(&c), FailureReason::CrlUnavailable { ref detail, .. } if detail.contains("not signed")));
}

#[test]
fn t11_wrong_eku() {
    let w = World::new();
    let cl = client(byoc("off"), w.anchors());
    for eku in [Eku::Client, Eku::Absent] {
        let mut spec = w.spec(HOST);
        spec.eku = eku;
        let srv = server(byoc("off"), w.identity(&spec));
        let (_, c) = pair(&srv, &cl, HOST, &opts());
        assert!(matches!(reason(&c), FailureReason::WrongEku { required: "serverAuth", .. }), "{eku:?}: {c:?}");
    }
}

#[test]
fn t2_no_shared_cipher() {
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let p = custom("\"1.2\"", "\"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"", "\"P-384\"");
    let (s, c) = pair(&srv, &client(p, w.anchors()), HOST, &opts());
    assert_eq!(code(&s), "NoSharedCipher");
    assert_eq!(code(&c), "NoSharedCipher");
}

#[test]
fn t2_p256_only_client_refused_with_wrong_curve() {
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let p = custom(
        "\"1.2\"",
        "\"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"",
        "\"P-256\"",
    );
    let (s, c) = pair(&srv, &client(p, w.anchors()), HOST, &opts());
    assert_eq!(reason(&s), FailureReason::WrongCurve { offered: vec!["P-256".into()] });
    assert!(s.unwrap_err().info.alerts_sent.iter().any(|a| a.name == "handshake_failure"));
    assert_eq!(code(&c), "NoSharedCipher");
}

#[test]
fn t2_tls11_only_and_tls13_only_clients_refused() {
    let w = World::new();
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let tls11 =
        custom("\"1.1\"", "\"TLS_RSA_WITH_AES_256_CBC_SHA\", \"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA\"", "\"P-384\"");
    let tls13 = custom("\"1.3\"", "\"TLS_AES_256_GCM_SHA384\"", "\"P-384\"");
    for p in [tls11, tls13] {
        let (s, c) = pair(&srv, &client(p, w.anchors()), HOST, &opts());
        assert_eq!(code(&s), "ProtocolVersion");
        assert_eq!(code(&c), "ProtocolVersion");
        assert!(c.unwrap_err().info.alerts_received.iter().any(|a| a.name == "protocol_version"));
    }
}

fn mutual_server(w: &World, allowed: &[&str]) -> Arc<TlsServer> {
    let mut cfg = ServerConfig::new(profile("mutual"), w.identity(&w.spec(HOST)));
    cfg.client_trust = Some(w.anchors());
    cfg.allowed_subjects = allowed.iter().map(|s| s.to_string()).collect();
    Arc::new(TlsServer::new(&cfg).unwrap())
}

#[test]
fn t4_peer_cert_required() {
    let w = World::new();
    let srv = mutual_server(&w, &["cucm1.example.net"]);
    // TLS 1.3 client without a certificate: the server says certificate_required.
    let (s, c) = pair(&srv, &client(profile("mutual"), w.anchors()), HOST, &opts());
    assert_eq!(reason(&s), FailureReason::PeerCertRequired);
    assert_eq!(reason(&c), FailureReason::PeerCertRequired);
    // A byoc-cloud client (TLS 1.2, never presents a certificate, T3) against a mutual trunk.
    let (s, c) = pair(&srv, &client(byoc("off"), w.anchors()), HOST, &opts());
    assert_eq!(reason(&s), FailureReason::PeerCertRequired);
    assert_eq!(reason(&c), FailureReason::PeerCertRequired);
    assert!(c.unwrap_err().info.certificate_request_received);
    // byoc-cloud never presents a certificate, even when one is configured (T3, 002).
    let mut cfg = ClientConfig::new(byoc("off"), w.anchors());
    cfg.identity = Some(w.identity(&LeafSpec::client("cucm1.example.net")));
    let (s, _) = pair(&srv, &TlsClient::new(&cfg).unwrap(), HOST, &opts());
    assert_eq!(reason(&s), FailureReason::PeerCertRequired);
}

#[test]
fn t7_ip_identity_where_the_profile_allows_it() {
    let w = World::new();
    let text = shipped("byoc-cloud")
        .replace("ip_identities = false", "ip_identities = true")
        .replace("mode = \"hard\"", "mode = \"off\"");
    let p = Profile::parse(&text, "ip-ok").unwrap();
    let mut spec = w.spec(HOST);
    spec.ips = vec!["127.0.0.1".into()];
    let srv = server(byoc("off"), w.identity(&spec));
    let (s, c) = pair(&srv, &client(p.clone(), w.anchors()), "127.0.0.1", &opts());
    let (s, c) = (s.unwrap(), c.unwrap());
    assert_eq!(s.sni, None, "no SNI for an IP target");
    assert_eq!(c.verification, trunkgate_tls::Verification::Verified);
    // A certificate without that iPAddress SAN does not match, even if its CN or DNS names do.
    let srv = server(byoc("off"), w.identity(&w.spec("127.0.0.1")));
    let (_, c) = pair(&srv, &client(p, w.anchors()), "127.0.0.1", &opts());
    assert_eq!(code(&c), "NameMismatch");
}

#[test]
fn t4_peer_subject_not_allowed() {
    let w = World::new();
    let srv = mutual_server(&w, &["cucm1.example.net"]);
    let mut cfg = ClientConfig::new(profile("mutual"), w.anchors());
    cfg.identity = Some(w.identity(&LeafSpec::client("rogue.example.net")));
    let cl = TlsClient::new(&cfg).unwrap();
    let (s, _) = pair(&srv, &cl, HOST, &opts());
    assert_eq!(
        reason(&s),
        FailureReason::PeerSubjectNotAllowed {
            presented: vec!["rogue.example.net".into()],
            allowed: vec!["cucm1.example.net".into()]
        }
    );
    // Client side too: the server's certificate must carry an allowed subject.
    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let o = PeerOptions { allowed_subjects: vec!["lb09.example.net".into()], ..Default::default() };
    let (_, c) = pair(&srv, &client(byoc("off"), w.anchors()), HOST, &o);
    assert_eq!(code(&c), "PeerSubjectNotAllowed");
}
