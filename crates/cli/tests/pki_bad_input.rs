//! Bad input to `trunkgate pki`: a clear error, exit status 2, and nothing changed on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod pki_support;

use std::path::Path;

use pki_support::{openssl_ok, pki, pki_ok, snapshot};

/// Run `trunkgate pki ARGS` in `p`; it must fail with exit 2, mention `needle`, and leave every
/// file under `p` as it was.
fn refused(p: &Path, args: &[&str], needle: &str) {
    let before = snapshot(p);
    let r = pki(p, args);
    assert!(!r.ok, "{args:?} should fail: {r:?}");
    assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
    assert!(r.stderr.starts_with("trunkgate: error: "), "{args:?}: {r:?}");
    assert!(r.stderr.contains(needle), "{args:?}: expected {needle:?} in {:?}", r.stderr);
    assert_eq!(snapshot(p), before, "{args:?} changed the disk");
}

fn lab() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    pki_ok(
        d.path(),
        &["init", "--dir", "ca", "--cn", "Bad Input Root", "--key", "p256", "--intermediate", "--days", "30"],
    );
    pki_ok(d.path(), &["issue", "server", "--dir", "ca", "--cn", "ok.example.com", "--key", "p256", "--out", "ok"]);
    d
}

#[test]
fn garbage_files() {
    let d = lab();
    let p = d.path();
    std::fs::write(p.join("garbage"), b"\x30\x03\x02\x01this is not DER or PEM at all").unwrap();
    std::fs::write(p.join("badpem"), b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    refused(p, &["show", "garbage"], "not a certificate, CSR, CRL or private key");
    refused(p, &["hash", "garbage"], "not a certificate, CSR, CRL or private key");
    refused(p, &["show", "badpem"], "is damaged");
    refused(
        p,
        &["sign-csr", "--dir", "ca", "--csr", "garbage", "--profile", "server", "--out", "x.crt"],
        "not a certificate signing request",
    );
    refused(p, &["revoke", "--dir", "ca", "--cert", "garbage"], "not a certificate");
    refused(p, &["export", "--in", "garbage", "--pem", "--out", "x.pem"], "not a certificate");
    refused(p, &["show", "no-such-file"], "no-such-file");
    refused(p, &["hash", "ca/crl.pem"], "holds no certificate");
}

#[test]
fn bad_csrs() {
    let d = lab();
    let p = d.path();
    // A CSR whose signature was altered after signing.
    openssl_ok(
        p,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k",
            "-outform",
            "DER",
            "-out",
            "good.csr",
            "-subj",
            "/CN=x.example.com",
        ],
    );
    let mut der = std::fs::read(p.join("good.csr")).unwrap();
    let n = der.len() - 3;
    der[n] ^= 0x55;
    std::fs::write(p.join("tampered.csr"), der).unwrap();
    refused(
        p,
        &["sign-csr", "--dir", "ca", "--csr", "tampered.csr", "--profile", "server", "--out", "t.crt"],
        "signature does not verify",
    );
    // RSA under 2048 bits.
    openssl_ok(
        p,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "k2",
            "-out",
            "weak.csr",
            "-subj",
            "/CN=weak.example.com",
        ],
    );
    refused(
        p,
        &["sign-csr", "--dir", "ca", "--csr", "weak.csr", "--profile", "client", "--out", "w.crt"],
        "under 2048 bits",
    );
    // Asking for CA:true.
    openssl_ok(
        p,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k3",
            "-out",
            "ca.csr",
            "-subj",
            "/CN=evil",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    refused(p, &["sign-csr", "--dir", "ca", "--csr", "ca.csr", "--profile", "client", "--out", "e.crt"], "CA:true");
    // The good one still signs.
    pki_ok(p, &["sign-csr", "--dir", "ca", "--csr", "good.csr", "--profile", "server", "--out", "g.crt"]);
}

#[test]
fn wrong_key_expired_ca_missing_and_foreign_directories() {
    let d = lab();
    let p = d.path();
    // Expired CA (30 days): refuse to issue 31 days on.
    let later = format!("@{}", trunkgate_pki::unix_now() + 31 * trunkgate_pki::DAY);
    refused(p, &["issue", "client", "--dir", "ca", "--cn", "late", "--out", "late", "--now", &later], "expired on");
    refused(p, &["rotate", "--dir", "ca", "--authority", "Genesys", "--now", &later], "expired on");
    // Missing directory.
    refused(p, &["issue", "server", "--dir", "missing", "--cn", "a.example.com", "--out", "a"], "no such CA directory");
    refused(p, &["list", "--dir", "missing"], "no such CA directory");
    // Foreign directory: never touched, not even by init --force.
    std::fs::create_dir(p.join("foreign")).unwrap();
    std::fs::write(p.join("foreign/notes.txt"), b"keep me").unwrap();
    refused(p, &["list", "--dir", "foreign"], "not a trunkgate CA directory");
    refused(p, &["init", "--dir", "foreign", "--cn", "x", "--force"], "not a trunkgate CA directory");
    // Existing CA: init needs --force.
    refused(p, &["init", "--dir", "ca", "--cn", "again"], "--force");
    // Wrong key: the intermediate key replaced by an unrelated one.
    openssl_ok(p, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"]);
    let saved = std::fs::read(p.join("ca/intermediate.key")).unwrap();
    std::fs::copy(p.join("other.key"), p.join("ca/intermediate.key")).unwrap();
    refused(
        p,
        &["issue", "server", "--dir", "ca", "--cn", "a.example.com", "--out", "a"],
        "does not belong to intermediate.crt",
    );
    std::fs::write(p.join("ca/intermediate.key"), saved).unwrap();
    // Damaged state file.
    let state = std::fs::read(p.join("ca/trunkgate-pki.json")).unwrap();
    std::fs::write(p.join("ca/trunkgate-pki.json"), b"{ not json").unwrap();
    refused(p, &["list", "--dir", "ca"], "damaged");
    std::fs::write(p.join("ca/trunkgate-pki.json"), state).unwrap();
    // A certificate from another CA cannot be revoked here.
    let other = tempfile::tempdir().unwrap();
    pki_ok(other.path(), &["init", "--dir", "ca2", "--cn", "Other Root", "--key", "p256"]);
    pki_ok(other.path(), &["issue", "server", "--dir", "ca2", "--cn", "o.example.com", "--key", "p256", "--out", "o"]);
    std::fs::copy(other.path().join("o.crt"), p.join("foreign.crt")).unwrap();
    refused(p, &["revoke", "--dir", "ca", "--cert", "foreign.crt"], "not issued by this CA");
    refused(p, &["revoke", "--dir", "ca", "--serial", "0BADC0DE"], "was not issued by this CA");
    // Bad names and values.
    refused(
        p,
        &["issue", "server", "--dir", "ca", "--cn", "a.example.com", "--san", "bad name", "--out", "a"],
        "invalid DNS name",
    );
    refused(
        p,
        &["issue", "server", "--dir", "ca", "--cn", "a.example.com", "--sip-uri", "http://x", "--out", "a"],
        "sip:",
    );
    refused(p, &["issue", "device", "--dir", "ca", "--mac", "00:11", "--out", "a"], "invalid MAC address");
    refused(p, &["revoke", "--dir", "ca", "--serial", "zz"], "invalid serial number");
    refused(p, &["list", "--dir", "ca", "--now", "tomorrow"], "invalid time");
    // The CA still works afterwards.
    pki_ok(p, &["issue", "server", "--dir", "ca", "--cn", "after.example.com", "--key", "p256", "--out", "after"]);
}
