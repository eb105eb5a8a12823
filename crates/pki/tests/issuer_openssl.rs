//! In-memory issuing (the API other crates' tests use), every artifact checked by the system
//! `openssl` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::path::Path;

use support::{openssl_fails, openssl_ok, write_certs};
use trunkgate_pki::{
    inspect, CaSpec, CrlSpec, CsrOptions, CsrProfile, Error, Issuer, KeyType, LeafSpec, Revocation, RevocationReason,
    Serial, Validity, DAY,
};

fn ca(key: KeyType, intermediate: bool) -> Issuer {
    let now = trunkgate_pki::unix_now();
    let root = Issuer::new_root(&CaSpec::new("Test Root", key, Validity::days_from(now, 3650))).unwrap();
    if intermediate {
        root.new_intermediate(&CaSpec::new("Test Intermediate", key, Validity::days_from(now, 3650))).unwrap()
    } else {
        root
    }
}

/// Write root, chain (leaf + intermediates) and leaf; return their file names.
fn files(dir: &Path, issuer: &Issuer, issued: &trunkgate_pki::Issued) {
    write_certs(dir, "root.pem", &[issuer.root()]);
    std::fs::write(dir.join("chain.pem"), issued.chain_pem().unwrap()).unwrap();
    std::fs::write(dir.join("leaf.pem"), issued.cert_pem().unwrap()).unwrap();
    std::fs::write(dir.join("leaf.key"), issued.key_pem().unwrap()).unwrap();
}

#[test]
fn t5_server_chain_verifies_with_openssl_for_every_key_type() {
    let d = tempfile::tempdir().unwrap();
    let now = trunkgate_pki::unix_now();
    for key in [KeyType::Rsa2048, KeyType::P256, KeyType::P384] {
        let issuer = ca(key, true);
        let spec = LeafSpec::server("sbc.example.com", Validity::days_from(now, 30)).key(key);
        let issued = issuer.issue(&spec).unwrap();
        assert_eq!(issued.chain.len(), 1, "the chain holds the intermediate, not the root");
        files(d.path(), &issuer, &issued);
        let out = openssl_ok(
            d.path(),
            &["verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "-purpose", "sslserver", "leaf.pem"],
        );
        assert!(out.contains("leaf.pem: OK"), "{key}: {out}");
        // The key file is a valid key for the certificate.
        let pubkey_cert = openssl_ok(d.path(), &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
        let pubkey_key = openssl_ok(d.path(), &["pkey", "-in", "leaf.key", "-pubout"]);
        assert_eq!(pubkey_cert, pubkey_key);
        // Without the intermediate the chain is incomplete (T5: we never fetch it).
        let out = openssl_fails(d.path(), &["verify", "-CAfile", "root.pem", "leaf.pem"]);
        assert!(out.contains("unable to get local issuer certificate"), "{out}");
    }
}

#[test]
fn t11_server_eku_is_server_auth_only_unless_asked() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::P256, false);
    let v = Validity::days_from(trunkgate_pki::unix_now(), 30);
    let issued = issuer.issue(&LeafSpec::server("a.example.com", v).key(KeyType::P256)).unwrap();
    files(d.path(), &issuer, &issued);
    let ext = openssl_ok(
        d.path(),
        &["x509", "-in", "leaf.pem", "-noout", "-ext", "extendedKeyUsage,basicConstraints,keyUsage"],
    );
    assert!(ext.contains("TLS Web Server Authentication"), "{ext}");
    assert!(!ext.contains("Client Authentication"), "{ext}");
    assert!(ext.contains("CA:FALSE"), "{ext}");
    // An EC key gets no keyEncipherment.
    assert!(!ext.contains("Key Encipherment"), "{ext}");
    let out = openssl_fails(d.path(), &["verify", "-CAfile", "root.pem", "-purpose", "sslclient", "leaf.pem"]);
    assert!(out.contains("certificate purpose"), "{out}");

    let both = issuer.issue(&LeafSpec::server("a.example.com", v).key(KeyType::Rsa2048).client_auth(true)).unwrap();
    files(d.path(), &issuer, &both);
    let ext = openssl_ok(d.path(), &["x509", "-in", "leaf.pem", "-noout", "-ext", "extendedKeyUsage,keyUsage"]);
    assert!(ext.contains("TLS Web Server Authentication, TLS Web Client Authentication"), "{ext}");
    assert!(ext.contains("Key Encipherment"), "RSA server keys need it for TLS_RSA_* (T2): {ext}");
    openssl_ok(d.path(), &["verify", "-CAfile", "root.pem", "-purpose", "sslclient", "leaf.pem"]);
}

#[test]
fn h2_cn_with_slash_and_rfc5922_sip_uri() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::P384, false);
    let v = Validity::days_from(trunkgate_pki::unix_now(), 30);
    let spec = LeafSpec::server("pv.telco.net/mailto:admin@telco.net", v)
        .key(KeyType::P384)
        .san("10.0.0.5")
        .sip_uri("sip:telco.net")
        .crl_url("http://pki.telco.net/crl.der");
    let issued = issuer.issue(&spec).unwrap();
    files(d.path(), &issuer, &issued);
    let text = openssl_ok(
        d.path(),
        &["x509", "-in", "leaf.pem", "-noout", "-subject", "-ext", "subjectAltName,crlDistributionPoints"],
    );
    assert!(text.contains("CN = pv.telco.net/mailto:admin@telco.net"), "{text}");
    assert!(text.contains("DNS:pv.telco.net, URI:sip:telco.net, IP Address:10.0.0.5"), "{text}");
    assert!(text.contains("URI:http://pki.telco.net/crl.der"), "{text}");
    openssl_ok(d.path(), &["verify", "-CAfile", "root.pem", "leaf.pem"]);
}

#[test]
fn t8_expired_and_not_yet_valid_windows_are_honoured() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::P256, false);
    let now = trunkgate_pki::unix_now();
    let expired =
        LeafSpec::server("old.example.com", Validity::new(now - 400 * DAY, now - 35 * DAY)).key(KeyType::P256);
    files(d.path(), &issuer, &issuer.issue(&expired).unwrap());
    let out = openssl_fails(d.path(), &["verify", "-CAfile", "root.pem", "leaf.pem"]);
    assert!(out.contains("certificate has expired"), "{out}");
    let future = LeafSpec::server("new.example.com", Validity::new(now + 10 * DAY, now + 40 * DAY)).key(KeyType::P256);
    files(d.path(), &issuer, &issuer.issue(&future).unwrap());
    let out = openssl_fails(d.path(), &["verify", "-CAfile", "root.pem", "leaf.pem"]);
    assert!(out.contains("certificate is not yet valid"), "{out}");
    // The window is exactly what was asked for.
    let dates = openssl_ok(d.path(), &["x509", "-in", "leaf.pem", "-noout", "-startdate", "-enddate"]);
    let start = trunkgate_pki::format_time(now + 10 * DAY);
    assert!(dates.contains(&start[11..19]), "{dates} vs {start}");
}

#[test]
fn p4_crl_revokes_and_carries_number_next_update_and_reason() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::Rsa2048, true);
    let now = trunkgate_pki::unix_now();
    let v = Validity::days_from(now, 30);
    let good = issuer.issue(&LeafSpec::server("good.example.com", v)).unwrap();
    let bad = issuer.issue(&LeafSpec::server("bad.example.com", v)).unwrap();
    let crl = issuer
        .crl(&CrlSpec {
            number: 7,
            this_update: now - 60,
            next_update: now + 7 * DAY,
            revoked: vec![Revocation {
                serial: bad.serial().unwrap(),
                at: now - 60,
                reason: RevocationReason::KeyCompromise,
            }],
        })
        .unwrap();
    std::fs::write(d.path().join("crl.pem"), crl.to_pem().unwrap()).unwrap();
    write_certs(d.path(), "bundle.pem", &[issuer.root(), issuer.cert()]);
    std::fs::write(d.path().join("good.pem"), good.cert_pem().unwrap()).unwrap();
    std::fs::write(d.path().join("bad.pem"), bad.cert_pem().unwrap()).unwrap();

    openssl_ok(d.path(), &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "crl.pem", "good.pem"]);
    let out =
        openssl_fails(d.path(), &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "crl.pem", "bad.pem"]);
    assert!(out.contains("certificate revoked"), "{out}");
    let text = openssl_ok(d.path(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(text.contains("X509v3 CRL Number: \n                7"), "{text}");
    assert!(text.contains("Next Update:"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains(&bad.serial().unwrap().to_hex()), "{text}");
    assert!(text.contains("Authority Key Identifier"), "{text}");
    // Our own reading of the CRL agrees.
    let shown = inspect::describe(&[inspect::Object::Crl(crl)], inspect::Format::Pem, now).unwrap();
    assert!(shown.contains("CRL number:          7"), "{shown}");
    assert!(shown.contains("(keyCompromise)"), "{shown}");
}

#[test]
fn p6_subject_hash_matches_openssl() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::P256, true);
    for (name, cert) in [("root.pem", issuer.root()), ("int.pem", issuer.cert())] {
        write_certs(d.path(), name, &[cert]);
        let theirs = openssl_ok(d.path(), &["x509", "-in", name, "-noout", "-subject_hash"]);
        assert_eq!(theirs.trim(), inspect::subject_hash(cert));
    }
}

#[test]
fn p3_csr_from_openssl_req_is_signed_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::Rsa2048, true);
    openssl_ok(
        d.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "prov.key",
            "-out",
            "prov.csr",
            "-subj",
            "/C=US/O=Telco/CN=prov.telco.net",
            "-addext",
            "subjectAltName=DNS:alt.telco.net",
        ],
    );
    openssl_ok(d.path(), &["req", "-in", "prov.csr", "-noout", "-verify"]);
    let csr =
        trunkgate_pki::read_csr(&std::fs::read(d.path().join("prov.csr")).unwrap(), Path::new("prov.csr")).unwrap();
    let opts = CsrOptions {
        profile: CsrProfile::Server,
        client_auth: false,
        validity: Validity::days_from(trunkgate_pki::unix_now(), 90),
        crl_url: Some("http://pki.telco.net/crl.der".into()),
        extra_hosts: vec![],
    };
    let cert = issuer.sign_csr(&csr, &opts, Path::new("prov.csr")).unwrap();
    write_certs(d.path(), "prov.crt", &[&cert]);
    write_certs(d.path(), "root.pem", &[issuer.root()]);
    write_certs(d.path(), "int.pem", &[issuer.cert()]);
    openssl_ok(d.path(), &["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "prov.crt"]);
    let text = openssl_ok(
        d.path(),
        &["x509", "-in", "prov.crt", "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage"],
    );
    assert!(text.contains("C = US, O = Telco, CN = prov.telco.net"), "{text}");
    assert!(text.contains("DNS:alt.telco.net, DNS:prov.telco.net"), "{text}");
    assert!(!text.contains("Client"), "{text}");
    // The certificate is for the CSR's key.
    let a = openssl_ok(d.path(), &["x509", "-in", "prov.crt", "-noout", "-pubkey"]);
    let b = openssl_ok(d.path(), &["pkey", "-in", "prov.key", "-pubout"]);
    assert_eq!(a, b);
}

#[test]
fn p3_bad_csrs_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::P256, false);
    let opts = CsrOptions {
        profile: CsrProfile::Client,
        client_auth: false,
        validity: Validity::days_from(trunkgate_pki::unix_now(), 90),
        crl_url: None,
        extra_hosts: vec![],
    };
    let sign = |file: &str| {
        let bytes = std::fs::read(d.path().join(file)).unwrap();
        let csr = trunkgate_pki::read_csr(&bytes, Path::new(file))?;
        issuer.sign_csr(&csr, &opts, Path::new(file))
    };
    // CA:true requested.
    openssl_ok(
        d.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k1",
            "-out",
            "ca.csr",
            "-subj",
            "/CN=evil",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    assert!(matches!(sign("ca.csr"), Err(Error::CsrAsksForCa { .. })));
    // RSA 1024.
    openssl_ok(
        d.path(),
        &["req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "k2", "-out", "weak.csr", "-subj", "/CN=weak"],
    );
    let err = sign("weak.csr").unwrap_err().to_string();
    assert!(err.contains("1024 bits"), "{err}");
    // A CSR whose signature was altered: parse fine, signature does not verify.
    openssl_ok(
        d.path(),
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
            "-outform",
            "DER",
            "-out",
            "ok.der",
            "-subj",
            "/CN=ok",
        ],
    );
    let mut der = std::fs::read(d.path().join("ok.der")).unwrap();
    let last = der.len() - 3;
    der[last] ^= 0x55;
    std::fs::write(d.path().join("tampered.der"), &der).unwrap();
    assert!(matches!(sign("tampered.der"), Err(Error::CsrBadSignature { .. })));
    // openssl 3.0 `req -verify` reports the failure but may still exit 0: read what it says.
    let out = support::openssl(d.path(), &["req", "-in", "tampered.der", "-inform", "DER", "-noout", "-verify"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verify failure"), "{text}");
    assert!(sign("ok.der").is_ok());
    // Garbage.
    std::fs::write(d.path().join("garbage"), b"not a csr at all").unwrap();
    assert!(matches!(sign("garbage"), Err(Error::Unreadable { .. })));
}

#[test]
fn t10_pem_and_der_round_trip_through_openssl() {
    let d = tempfile::tempdir().unwrap();
    let issuer = ca(KeyType::P256, false);
    let der = issuer.root().to_der().unwrap();
    std::fs::write(d.path().join("root.der"), &der).unwrap();
    let (format, objects) = inspect::read_file(&d.path().join("root.der")).unwrap();
    assert_eq!(format, inspect::Format::Der);
    let pem = inspect::encode(&objects, inspect::Format::Pem, Path::new("root.der")).unwrap();
    std::fs::write(d.path().join("root.pem"), &pem).unwrap();
    openssl_ok(d.path(), &["x509", "-in", "root.der", "-inform", "DER", "-out", "theirs.pem"]);
    assert_eq!(std::fs::read(d.path().join("theirs.pem")).unwrap(), pem);
    let serial = Serial::from_asn1(issuer.root().serial_number()).unwrap();
    let theirs = openssl_ok(d.path(), &["x509", "-in", "root.pem", "-noout", "-serial"]);
    assert_eq!(theirs.trim(), format!("serial={serial}"));
}
