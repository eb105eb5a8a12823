//! Interop with the system `openssl s_client` / `openssl s_server` binaries (Debian `openssl`),
//! both ways, on loopback (SPEC T2, T3, T5). Every child runs under `timeout` and is killed by
//! a guard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::*;
use trunkgate_tls::{ConnectionInfo, HandshakeError, ServerConfig, TlsServer};

const HOST: &str = "lb01.voice.use1.example.net";

/// Start `openssl s_server` for one connection; returns its port once it listens.
fn s_server(dir: &Path, args: &[&str]) -> (u16, ChildGuard) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new("timeout")
            .args(["20", "openssl", "s_server", "-accept", &port.to_string(), "-naccept", "1"])
            .args(args)
            .current_dir(dir)
            // s_server quits when its stdin closes: keep the pipe open (held by the child).
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl binary (Debian package openssl)");
        let out = child.stdout.take().unwrap();
        let guard = ChildGuard(Some(child));
        let mut lines = BufReader::new(out).lines();
        // s_server prints ACCEPT once it listens; EOF means it failed (e.g. port taken).
        if lines.any(|l| l.map(|l| l.contains("ACCEPT")).unwrap_or(false)) {
            std::thread::spawn(move || for _ in lines {});
            return (port, guard);
        }
    }
    panic!("openssl s_server did not start");
}

/// Run `openssl s_client` against a port; returns its stdout + stderr.
fn s_client(dir: &Path, port: u16, args: &[&str]) -> String {
    let child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl binary (Debian package openssl)");
    let mut guard = ChildGuard(Some(child));
    let out = guard.0.take().unwrap().wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Our server accepting one connection in a thread.
fn serve_once(srv: Arc<TlsServer>) -> (u16, JoinHandle<Result<ConnectionInfo, HandshakeError>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, peer) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        srv.accept_blocking(s, Some(peer.ip()), &peer.to_string()).map(|(_, i)| i)
    });
    (port, h)
}

struct Files {
    dir: tempfile::TempDir,
    w: World,
}

fn files() -> Files {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (leaf, key) = w.issue(&w.spec(HOST));
    write_pem(dir.path(), "leaf.pem", &[&leaf]);
    write_pem(dir.path(), "chain.pem", &[&w.inter.cert]);
    write_pem(dir.path(), "root.pem", &[&w.root.cert]);
    write_key(dir.path(), "key.pem", &key);
    Files { dir, w }
}

#[test]
fn our_byoc_client_to_openssl_s_server() {
    let f = files();
    let d = f.dir.path();
    let (port, _g) = s_server(d, &["-cert", "leaf.pem", "-cert_chain", "chain.pem", "-key", "key.pem"]);
    let info = connect_port(&client(byoc("hard"), f.w.anchors()), HOST, port).unwrap();
    assert_eq!(info.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(info.cipher.as_deref(), Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
    assert_eq!(info.group.as_deref(), Some("P-384"));
    assert_eq!(info.peer_chain.len(), 2);
}

#[test]
fn openssl_s_server_without_intermediate_is_incomplete_chain() {
    let f = files();
    let d = f.dir.path();
    let (port, _g) = s_server(d, &["-cert", "leaf.pem", "-key", "key.pem"]);
    let r = connect_port(&client(byoc("off"), f.w.anchors()), HOST, port);
    assert_eq!(code(&r), "IncompleteChain");
}

#[test]
fn openssl_s_client_to_our_byoc_server_sees_no_certificate_request() {
    let f = files();
    let d = f.dir.path();
    let srv = server(byoc("off"), f.w.identity(&f.w.spec(HOST)));
    let (port, h) = serve_once(srv);
    let out = s_client(
        d,
        port,
        &["-servername", HOST, "-CAfile", "root.pem", "-verify_return_error", "-verify_hostname", HOST, "-msg"],
    );
    let info = h.join().unwrap().unwrap();
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("ECDHE-RSA-AES256-GCM-SHA384"), "{out}");
    assert!(out.contains("ServerHello"), "-msg output expected: {out}");
    assert!(!out.contains("CertificateRequest"), "{out}");
    assert!(!info.certificate_request_sent);
    assert_eq!(info.group.as_deref(), Some("P-384"));

    // Control: a mutual server does send one, and s_client prints it.
    let mut cfg = ServerConfig::new(profile("mutual"), f.w.identity(&f.w.spec(HOST)));
    cfg.client_trust = Some(f.w.anchors());
    let (port, h) = serve_once(Arc::new(TlsServer::new(&cfg).unwrap()));
    let out = s_client(d, port, &["-servername", HOST, "-CAfile", "root.pem", "-msg", "-tls1_2"]);
    let r = h.join().unwrap();
    assert!(out.contains("CertificateRequest"), "{out}");
    assert_eq!(code(&r), "PeerCertRequired");
}

#[test]
fn openssl_s_client_refusals_by_our_byoc_server() {
    let f = files();
    let d = f.dir.path();
    let cases: [(&[&str], &str); 4] = [
        (&["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], "ProtocolVersion"),
        (&["-tls1_3"], "ProtocolVersion"),
        (
            &["-tls1_2", "-groups", "P-256", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"],
            "WrongCurve",
        ),
        (&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"], "NoSharedCipher"),
    ];
    for (args, want) in cases {
        let srv = server(byoc("off"), f.w.identity(&f.w.spec(HOST)));
        let (port, h) = serve_once(srv);
        let mut a = vec!["-servername", HOST];
        a.extend_from_slice(args);
        let out = s_client(d, port, &a);
        let r = h.join().unwrap();
        assert_eq!(code(&r), want, "{args:?}: {out}");
        assert!(!out.contains("Verify return code: 0 (ok)") || out.contains("Cipher is (NONE)"), "{out}");
    }
}

#[test]
fn every_t2_suite_with_openssl_s_client() {
    let f = files();
    let d = f.dir.path();
    for (ossl, iana) in [
        ("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"),
        ("AES256-SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA256"),
        ("AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
        ("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
        ("ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ] {
        let srv = server(byoc("off"), f.w.identity(&f.w.spec(HOST)));
        let (port, h) = serve_once(srv);
        let out = s_client(d, port, &["-servername", HOST, "-CAfile", "root.pem", "-tls1_2", "-cipher", ossl]);
        let info = h.join().unwrap().unwrap();
        assert_eq!(info.cipher.as_deref(), Some(iana));
        assert!(out.contains(&format!("Cipher is {ossl}")), "{out}");
    }
}
