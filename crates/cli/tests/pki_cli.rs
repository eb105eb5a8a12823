//! `trunkgate pki` end to end: every artifact the commands write is checked by the system
//! `openssl` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod pki_support;

use pki_support::{mode, openssl, openssl_ok, pki, pki_ok};

/// A CA with an intermediate and a CRL URL in a fresh temporary directory.
fn lab() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let out = pki_ok(
        d.path(),
        &[
            "init",
            "--dir",
            "ca",
            "--cn",
            "Lab Root",
            "--key",
            "p384",
            "--intermediate",
            "--crl-url",
            "http://pki.lab.example/crl.der",
        ],
    );
    assert!(out.contains("created CA in ca"), "{out}");
    d
}

#[test]
fn p1_t5_t11_h2_issue_server_and_verify_with_openssl() {
    let d = lab();
    let p = d.path();
    let out = pki_ok(
        p,
        &[
            "issue",
            "server",
            "--dir",
            "ca",
            "--cn",
            "pv.telco.net/mailto:admin@telco.net",
            "--san",
            "sbc.telco.net",
            "--sip-uri",
            "sip:telco.net",
            "--out",
            "sbc",
        ],
    );
    assert!(out.contains("issued server certificate"), "{out}");
    assert!(out.contains("names:    DNS:pv.telco.net, DNS:sbc.telco.net, URI:sip:telco.net"), "{out}");
    assert_eq!(mode(&p.join("sbc.key")), 0o600);
    assert_eq!(mode(&p.join("ca/root.key")), 0o600);
    // T5: the chain file (leaf + intermediate) completes the path to the root.
    let v = openssl_ok(
        p,
        &["verify", "-CAfile", "ca/root.crt", "-untrusted", "sbc.chain.pem", "-purpose", "sslserver", "sbc.crt"],
    );
    assert!(v.contains("sbc.crt: OK"), "{v}");
    let (ok, v) = openssl(p, &["verify", "-CAfile", "ca/root.crt", "sbc.crt"]);
    assert!(!ok && v.contains("unable to get local issuer certificate"), "{v}");
    // T11: serverAuth only; H2: the CN keeps its /part and its host is a SAN; RFC 5922 URI; P4 CDP.
    let x = openssl_ok(
        p,
        &[
            "x509",
            "-in",
            "sbc.crt",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage,subjectAltName,crlDistributionPoints",
        ],
    );
    assert!(x.contains("TLS Web Server Authentication") && !x.contains("Client"), "{x}");
    assert!(x.contains("CN = pv.telco.net/mailto:admin@telco.net"), "{x}");
    assert!(x.contains("DNS:pv.telco.net, DNS:sbc.telco.net, URI:sip:telco.net"), "{x}");
    assert!(x.contains("URI:http://pki.lab.example/crl.der"), "{x}");
    // The key belongs to the certificate.
    assert_eq!(
        openssl_ok(p, &["x509", "-in", "sbc.crt", "-noout", "-pubkey"]),
        openssl_ok(p, &["pkey", "-in", "sbc.key", "-pubout"])
    );
    // --client-auth adds clientAuth.
    pki_ok(
        p,
        &[
            "issue",
            "server",
            "--dir",
            "ca",
            "--cn",
            "both.telco.net",
            "--client-auth",
            "--key",
            "rsa2048",
            "--out",
            "both",
        ],
    );
    let x = openssl_ok(p, &["x509", "-in", "both.crt", "-noout", "-ext", "extendedKeyUsage"]);
    assert!(x.contains("TLS Web Server Authentication, TLS Web Client Authentication"), "{x}");
    // Never overwrite without --force.
    let r = pki(p, &["issue", "server", "--dir", "ca", "--cn", "x.telco.net", "--out", "sbc"]);
    assert!(!r.ok && r.stderr.contains("sbc.key already exists") && r.stderr.contains("--force"), "{r:?}");
    pki_ok(p, &["issue", "server", "--dir", "ca", "--cn", "x.telco.net", "--out", "sbc", "--force"]);
    let x = openssl_ok(p, &["x509", "-in", "sbc.crt", "-noout", "-subject"]);
    assert!(x.contains("CN = x.telco.net"), "{x}");
}

#[test]
fn p6_hash_prints_exactly_what_openssl_prints() {
    let d = lab();
    let p = d.path();
    pki_ok(p, &["issue", "client", "--dir", "ca", "--cn", "Agent 7", "--email", "a7@lab.example", "--out", "c"]);
    for file in ["ca/root.crt", "ca/intermediate.crt", "c.crt"] {
        let ours = pki_ok(p, &["hash", file]);
        let theirs = openssl_ok(p, &["x509", "-in", file, "-noout", "-subject_hash"]);
        assert_eq!(ours, theirs, "{file}");
        assert_eq!(ours.trim().len(), 8);
    }
    // DER input and a chain (first certificate) too.
    assert_eq!(
        pki_ok(p, &["hash", "ca/root.der"]),
        openssl_ok(p, &["x509", "-in", "ca/root.crt", "-noout", "-subject_hash"])
    );
    assert_eq!(
        pki_ok(p, &["hash", "c.chain.pem"]),
        openssl_ok(p, &["x509", "-in", "c.crt", "-noout", "-subject_hash"])
    );
}

#[test]
fn p3_sign_csr_from_openssl_req_new() {
    let d = lab();
    let p = d.path();
    openssl_ok(
        p,
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
            "/O=Telco/CN=prov.telco.net",
        ],
    );
    let v = openssl_ok(p, &["req", "-in", "prov.csr", "-noout", "-verify"]);
    assert!(v.contains("verify OK"), "{v}");
    let out = pki_ok(
        p,
        &[
            "sign-csr",
            "--dir",
            "ca",
            "--csr",
            "prov.csr",
            "--profile",
            "server",
            "--out",
            "prov.crt",
            "--chain-out",
            "prov.chain.pem",
        ],
    );
    assert!(out.contains("signed server certificate"), "{out}");
    let v = openssl_ok(p, &["verify", "-CAfile", "ca/root.crt", "-untrusted", "prov.chain.pem", "prov.crt"]);
    assert!(v.contains("prov.crt: OK"), "{v}");
    assert_eq!(
        openssl_ok(p, &["x509", "-in", "prov.crt", "-noout", "-pubkey"]),
        openssl_ok(p, &["pkey", "-in", "prov.key", "-pubout"])
    );
    let x = openssl_ok(p, &["x509", "-in", "prov.crt", "-noout", "-ext", "subjectAltName,basicConstraints"]);
    assert!(x.contains("DNS:prov.telco.net") && x.contains("CA:FALSE"), "{x}");
    let list = pki_ok(p, &["list", "--dir", "ca"]);
    assert!(list.contains("O=Telco, CN=prov.telco.net"), "{list}");
}

#[test]
fn p4_revoke_then_openssl_crl_check_fails() {
    let d = lab();
    let p = d.path();
    pki_ok(p, &["issue", "server", "--dir", "ca", "--cn", "a.lab.example", "--out", "a"]);
    pki_ok(p, &["issue", "server", "--dir", "ca", "--cn", "b.lab.example", "--out", "b"]);
    std::fs::write(
        p.join("bundle.pem"),
        [std::fs::read(p.join("ca/root.crt")).unwrap(), std::fs::read(p.join("ca/intermediate.crt")).unwrap()].concat(),
    )
    .unwrap();
    openssl_ok(p, &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "ca/crl.pem", "a.crt"]);

    let out = pki_ok(p, &["revoke", "--dir", "ca", "--cert", "a.crt", "--reason", "keyCompromise"]);
    assert!(out.contains("revoked serial"), "{out}");
    let (ok, v) = openssl(p, &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "ca/crl.pem", "a.crt"]);
    assert!(!ok && v.contains("certificate revoked"), "{v}");
    openssl_ok(p, &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "ca/crl.pem", "b.crt"]);

    // Revoke by serial, as openssl prints it.
    let serial = openssl_ok(p, &["x509", "-in", "b.crt", "-noout", "-serial"]);
    let serial = serial.trim().strip_prefix("serial=").unwrap().to_string();
    pki_ok(p, &["revoke", "--dir", "ca", "--serial", &serial.to_lowercase()]);
    let r = pki(p, &["revoke", "--dir", "ca", "--serial", &serial]);
    assert!(!r.ok && r.stderr.contains("already revoked"), "{r:?}");

    // crl --out --der: CRL number and nextUpdate, read by openssl.
    pki_ok(p, &["crl", "--dir", "ca", "--out", "pub.crl", "--der", "--days", "7"]);
    let text = openssl_ok(
        p,
        &["crl", "-in", "pub.crl", "-inform", "DER", "-noout", "-text", "-CAfile", "ca/intermediate.crt"],
    );
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("X509v3 CRL Number: \n                4"), "init=1, two revokes, this one: {text}");
    assert!(text.contains("Next Update:") && text.contains("Key Compromise"), "{text}");
    assert!(text.contains(&serial), "{text}");
    // crl_check_all with the root CRL.
    pki_ok(p, &["crl", "--dir", "ca", "--root", "--out", "root.crl"]);
    pki_ok(p, &["issue", "server", "--dir", "ca", "--cn", "c.lab.example", "--out", "c"]);
    openssl_ok(
        p,
        &[
            "verify",
            "-crl_check_all",
            "-CAfile",
            "bundle.pem",
            "-CRLfile",
            "ca/crl.pem",
            "-CRLfile",
            "root.crl",
            "c.crt",
        ],
    );
    // show reads the CRL.
    let shown = pki_ok(p, &["show", "pub.crl"]);
    assert!(shown.contains("CRL number:          4") && shown.contains("(keyCompromise)"), "{shown}");
}

#[test]
fn p2_device_certificates_and_list() {
    let d = lab();
    let p = d.path();
    pki_ok(p, &["issue", "device", "--dir", "ca", "--mac", "00:11:22:AA:BB:CC", "--out", "phone"]);
    let x = openssl_ok(p, &["x509", "-in", "phone.crt", "-noout", "-subject", "-ext", "extendedKeyUsage"]);
    assert!(x.contains("CN = 001122aabbcc") && x.contains("TLS Web Client Authentication"), "{x}");
    openssl_ok(
        p,
        &["verify", "-CAfile", "ca/root.crt", "-untrusted", "phone.chain.pem", "-purpose", "sslclient", "phone.crt"],
    );
    let r = pki(p, &["issue", "device", "--dir", "ca", "--mac", "001122aabbcc", "--out", "phone2"]);
    assert!(!r.ok && r.stderr.contains("already has a valid certificate"), "{r:?}");
    pki_ok(
        p,
        &[
            "issue",
            "device",
            "--dir",
            "ca",
            "--mac",
            "001122aabbcc",
            "--cn",
            "SEP001122AABBCC",
            "--out",
            "phone2",
            "--force",
        ],
    );
    let list = pki_ok(p, &["list", "--dir", "ca"]);
    assert!(list.contains("[MAC 001122aabbcc]"), "{list}");
    assert_eq!(list.matches("revoked").count(), 1, "the old device certificate is superseded: {list}");
    let json: serde_json::Value =
        serde_json::from_str(&pki_ok(p, &["list", "--dir", "ca", "--json", "--status", "valid"])).unwrap();
    assert_eq!(json["total"], 1);
    assert_eq!(json["entities"][0]["subject"], "CN=SEP001122AABBCC");
    assert_eq!(json["entities"][0]["mac"], "001122aabbcc");
}

#[test]
fn t10_show_and_export_pem_der() {
    let d = lab();
    let p = d.path();
    pki_ok(p, &["issue", "server", "--dir", "ca", "--cn", "s.lab.example", "--key", "p256", "--out", "s"]);
    let shown = pki_ok(p, &["show", "s.chain.pem"]);
    for needle in [
        "certificate 1/2 (PEM)",
        "subject:             CN=s.lab.example",
        "issuer:              CN=Lab Root Intermediate",
        "extended key usage:  serverAuth",
        "subject alt names:   DNS:s.lab.example",
        "days left",
        "CRL distribution:    http://pki.lab.example/crl.der",
        "key:                 EC P-256",
        "certificate 2/2 (PEM)",
    ] {
        assert!(shown.contains(needle), "missing {needle:?} in:\n{shown}");
    }
    let hash = openssl_ok(p, &["x509", "-in", "s.crt", "-noout", "-subject_hash"]);
    assert!(shown.contains(&format!("subject hash:        {}", hash.trim())), "{shown}");
    let key = pki_ok(p, &["show", "s.key"]);
    assert!(key.contains("EC P-256") && !key.contains("BEGIN"), "no key material: {key}");

    pki_ok(p, &["export", "--in", "s.crt", "--der", "--out", "s.der"]);
    let theirs = openssl_ok(p, &["x509", "-in", "s.der", "-inform", "DER", "-noout", "-fingerprint", "-sha256"]);
    let ours = openssl_ok(p, &["x509", "-in", "s.crt", "-noout", "-fingerprint", "-sha256"]);
    assert_eq!(theirs, ours);
    pki_ok(p, &["export", "--in", "s.der", "--pem", "--out", "back.pem"]);
    assert_eq!(std::fs::read(p.join("back.pem")).unwrap(), std::fs::read(p.join("s.crt")).unwrap());
    let shown = pki_ok(p, &["show", "s.der"]);
    assert!(shown.contains("certificate 1/1 (DER)"), "{shown}");
    // A key exported stays private.
    pki_ok(p, &["export", "--in", "s.key", "--der", "--out", "s.key.der"]);
    assert_eq!(mode(&p.join("s.key.der")), 0o600);
    openssl_ok(p, &["pkey", "-in", "s.key.der", "-inform", "DER", "-noout"]);
    // Never overwrite without --force; a chain cannot be one DER object.
    let r = pki(p, &["export", "--in", "s.crt", "--der", "--out", "s.der"]);
    assert!(!r.ok && r.stderr.contains("already exists"), "{r:?}");
    let r = pki(p, &["export", "--in", "s.chain.pem", "--der", "--out", "chain.der"]);
    assert!(!r.ok && r.stderr.contains("DER holds one"), "{r:?}");
    // A CSR is shown with its signature state.
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
            "-out",
            "r.csr",
            "-subj",
            "/CN=r.lab.example",
        ],
    );
    let shown = pki_ok(p, &["show", "r.csr"]);
    assert!(shown.contains("CSR 1/1 (PEM)") && shown.contains("verifies with its own key"), "{shown}");
}

#[test]
fn concurrent_processes_on_one_ca_directory_lose_nothing() {
    let d = lab();
    let p = d.path();
    let spawned: Vec<_> = (0..8)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_trunkgate"))
                .args(["pki", "issue", "client", "--dir", "ca", "--cn", &format!("agent {i}"), "--key", "p256"])
                .args(["--out", &format!("agent{i}")])
                .current_dir(p)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in spawned {
        assert!(c.wait().unwrap().success());
    }
    let json: serde_json::Value = serde_json::from_str(&pki_ok(p, &["list", "--dir", "ca", "--json"])).unwrap();
    assert_eq!(json["total"], 8, "every concurrent issue is in the index");
    assert_eq!(std::fs::read_dir(p.join("ca/certs")).unwrap().count(), 8);
}
