//! The CA directory: layout, modes, index, refusal to overwrite, the lock, and bad input that
//! must leave the directory exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::path::{Path, PathBuf};

use support::{mode, openssl_fails, openssl_ok, snapshot};
use trunkgate_pki::{
    Ca, CsrOptions, CsrProfile, EntryKind, Error, InitOptions, IssueKind, IssueRequest, KeyType, LeafSpec,
    RevocationReason, SignCsrRequest, Status, Validity, DAY,
};

fn init_opts(intermediate: bool) -> InitOptions {
    InitOptions {
        cn: "Lab Root".into(),
        key: KeyType::P256,
        intermediate,
        days: 3650,
        crl_url: Some("http://pki.lab.example/crl.der".into()),
        force: false,
    }
}

fn server(cn: &str, prefix: Option<PathBuf>, now: i64) -> IssueRequest {
    IssueRequest {
        kind: IssueKind::Server,
        spec: LeafSpec::server(cn, Validity::days_from(now, 365)).key(KeyType::P256),
        out_prefix: prefix,
        force: false,
    }
}

#[test]
fn p1_init_writes_the_documented_layout_with_private_keys_0600() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    drop(Ca::init(&dir, &init_opts(true), now).unwrap());
    for f in [
        "trunkgate-pki.json",
        ".lock",
        "root.crt",
        "root.der",
        "root.key",
        "intermediate.crt",
        "intermediate.key",
        "crl.pem",
        "crl.der",
        "root-crl.pem",
        "root-crl.der",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(mode(&dir.join("root.key")), 0o600);
    assert_eq!(mode(&dir.join("intermediate.key")), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // Root: CA, keyCertSign + cRLSign, SKI = AKI; intermediate pathlen 0; both verify.
    let root = openssl_ok(
        &dir,
        &[
            "x509",
            "-in",
            "root.crt",
            "-noout",
            "-ext",
            "basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier",
        ],
    );
    assert!(root.contains("CA:TRUE"), "{root}");
    assert!(root.contains("Certificate Sign, CRL Sign"), "{root}");
    let int = openssl_ok(&dir, &["x509", "-in", "intermediate.crt", "-noout", "-ext", "basicConstraints"]);
    assert!(int.contains("CA:TRUE, pathlen:0"), "{int}");
    openssl_ok(&dir, &["verify", "-CAfile", "root.crt", "intermediate.crt"]);
    // DER root equals PEM root.
    openssl_ok(&dir, &["x509", "-in", "root.der", "-inform", "DER", "-out", "from-der.pem"]);
    assert_eq!(std::fs::read(dir.join("from-der.pem")).unwrap(), std::fs::read(dir.join("root.crt")).unwrap());
    // The initial CRLs verify against their issuers (`openssl crl` says so on stderr).
    let text = openssl_ok(&dir, &["crl", "-in", "crl.der", "-inform", "DER", "-CAfile", "intermediate.crt", "-noout"]);
    assert!(text.contains("verify OK"), "{text}");
    let text = openssl_ok(&dir, &["crl", "-in", "root-crl.pem", "-CAfile", "root.crt", "-noout"]);
    assert!(text.contains("verify OK"), "{text}");
    let text = openssl_fails(&dir, &["crl", "-in", "root-crl.pem", "-CAfile", "intermediate.crt", "-noout"]);
    assert!(text.contains("CRL issuer"), "the root CRL is signed by the root, not the intermediate: {text}");
}

#[test]
fn issue_writes_key_cert_chain_and_index_and_never_overwrites_without_force() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    let mut ca = Ca::init(&dir, &init_opts(true), now).unwrap();
    let prefix = d.path().join("sbc");
    let r = ca.issue(&server("sbc.example.com", Some(prefix.clone()), now), now).unwrap();
    assert_eq!(mode(&d.path().join("sbc.key")), 0o600);
    openssl_ok(d.path(), &["verify", "-CAfile", "ca/root.crt", "-untrusted", "sbc.chain.pem", "sbc.crt"]);
    let chain = std::fs::read_to_string(d.path().join("sbc.chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf + intermediate (T5)");
    let cdp = openssl_ok(d.path(), &["x509", "-in", "sbc.crt", "-noout", "-ext", "crlDistributionPoints"]);
    assert!(cdp.contains("URI:http://pki.lab.example/crl.der"), "P4: {cdp}");
    assert!(dir.join("certs").join(format!("{}.pem", r.entry.serial)).is_file());
    assert_eq!(ca.entries().len(), 1);
    assert_eq!(ca.entries()[0].kind, EntryKind::Server);

    // Same prefix again: refused, nothing changed.
    let before = snapshot(d.path());
    let err = ca.issue(&server("sbc.example.com", Some(prefix.clone()), now), now).unwrap_err();
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(snapshot(d.path()), before);
    drop(ca);
    // Reopened from disk, the index still has one entry; --force replaces.
    let mut ca = Ca::open(&dir).unwrap();
    assert_eq!(ca.entries().len(), 1);
    let mut req = server("sbc.example.com", Some(prefix), now);
    req.force = true;
    ca.issue(&req, now).unwrap();
    assert_eq!(ca.entries().len(), 2);
    openssl_ok(d.path(), &["verify", "-CAfile", "ca/root.crt", "-untrusted", "sbc.chain.pem", "sbc.crt"]);
}

#[test]
fn p4_revoked_certificate_fails_openssl_crl_check() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    let mut ca = Ca::init(&dir, &init_opts(true), now).unwrap();
    let a = ca.issue(&server("a.example.com", Some(d.path().join("a")), now), now).unwrap();
    ca.issue(&server("b.example.com", Some(d.path().join("b")), now), now).unwrap();
    let serial = ca.serial_of_cert_file(&d.path().join("a.crt")).unwrap();
    assert_eq!(serial, a.entry.serial);
    ca.revoke(&serial, RevocationReason::KeyCompromise, now).unwrap();
    assert!(matches!(ca.revoke(&serial, RevocationReason::Unspecified, now), Err(Error::AlreadyRevoked { .. })));
    std::fs::write(
        d.path().join("bundle.pem"),
        [std::fs::read(dir.join("root.crt")).unwrap(), std::fs::read(dir.join("intermediate.crt")).unwrap()].concat(),
    )
    .unwrap();
    let out =
        openssl_fails(d.path(), &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "ca/crl.pem", "a.crt"]);
    assert!(out.contains("certificate revoked"), "{out}");
    openssl_ok(d.path(), &["verify", "-crl_check", "-CAfile", "bundle.pem", "-CRLfile", "ca/crl.pem", "b.crt"]);
    openssl_ok(
        d.path(),
        &[
            "verify",
            "-crl_check_all",
            "-CAfile",
            "bundle.pem",
            "-CRLfile",
            "ca/crl.pem",
            "-CRLfile",
            "ca/root-crl.pem",
            "b.crt",
        ],
    );
    // crl: the number grows, --out DER is what openssl reads.
    ca.crl(false, 7, now, Some((&d.path().join("out.crl"), true))).unwrap();
    let text = openssl_ok(d.path(), &["crl", "-in", "out.crl", "-inform", "DER", "-noout", "-text"]);
    assert!(text.contains("X509v3 CRL Number: \n                3"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert_eq!(ca.list(now).iter().filter(|(_, s)| *s == Status::Revoked).count(), 1);
}

#[test]
fn p3_sign_csr_from_openssl_req_new() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    let mut ca = Ca::init(&dir, &init_opts(false), now).unwrap();
    openssl_ok(
        d.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "phone.key",
            "-out",
            "phone.csr",
            "-subj",
            "/CN=phone-17",
        ],
    );
    let req = SignCsrRequest {
        csr_path: d.path().join("phone.csr"),
        options: CsrOptions {
            profile: CsrProfile::Client,
            client_auth: false,
            validity: Validity::days_from(now, 365),
            crl_url: None,
            extra_hosts: vec![],
        },
        out: d.path().join("phone.crt"),
        chain_out: None,
        force: false,
    };
    let (_, entry) = ca.sign_csr(&req, now).unwrap();
    assert!(entry.from_csr);
    openssl_ok(d.path(), &["verify", "-CAfile", "ca/root.crt", "-purpose", "sslclient", "phone.crt"]);
    let eku = openssl_ok(d.path(), &["x509", "-in", "phone.crt", "-noout", "-ext", "extendedKeyUsage"]);
    assert!(eku.contains("TLS Web Client Authentication") && !eku.contains("Server"), "{eku}");
}

#[test]
fn p2_device_certificates_are_indexed_by_mac_and_replaced_only_with_force() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    let mut ca = Ca::init(&dir, &init_opts(false), now).unwrap();
    let req = |force: bool, out: &str| IssueRequest {
        kind: IssueKind::Device { mac: "00:11:22:AA:BB:CC".into() },
        spec: LeafSpec::client("", Validity::days_from(now, 365)).key(KeyType::P256),
        out_prefix: Some(d.path().join(out)),
        force,
    };
    let first = ca.issue(&req(false, "p1"), now).unwrap();
    assert_eq!(first.entry.subject, "CN=001122aabbcc");
    assert_eq!(ca.find_device("0011.22aa.bbcc").unwrap().serial, first.entry.serial);
    let subject = openssl_ok(d.path(), &["x509", "-in", "p1.crt", "-noout", "-subject"]);
    assert!(subject.contains("CN = 001122aabbcc"), "{subject}");
    assert!(ca.issue(&req(false, "p2"), now).is_err());
    let second = ca.issue(&req(true, "p2"), now).unwrap();
    assert_eq!(second.superseded, Some(first.entry.serial.clone()));
    assert_eq!(ca.find_device("00-11-22-aa-bb-cc").unwrap().serial, second.entry.serial);
    let text = openssl_ok(&dir, &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(text.contains("Superseded") && text.contains(&first.entry.serial.to_hex()), "{text}");
}

#[test]
fn concurrent_commands_on_one_directory_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    drop(Ca::init(&dir, &init_opts(false), now).unwrap());
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut ca = Ca::open(&dir).unwrap();
                ca.issue(&server(&format!("h{i}.example.com"), None, now), now).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ca = Ca::open(&dir).unwrap();
    assert_eq!(ca.entries().len(), 6, "every concurrent issue is in the index");
    assert_eq!(std::fs::read_dir(dir.join("certs")).unwrap().count(), 6);
}

#[test]
fn concurrent_inits_of_one_directory_make_one_ca() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let now = trunkgate_pki::unix_now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || Ca::init(&dir, &init_opts(false), now).map(drop))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, Error::Exists { .. })));
    Ca::open(&dir).unwrap();
}

/// Run `f` and check it fails and leaves `root` exactly as it was.
fn refused(root: &Path, what: &str, f: impl FnOnce() -> Result<(), Error>) -> String {
    let before = snapshot(root);
    let err = f().expect_err(what);
    assert_eq!(snapshot(root), before, "{what}: the disk changed");
    err.to_string()
}

#[test]
fn bad_input_gives_a_clear_error_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let dir = root.join("ca");
    let now = trunkgate_pki::unix_now();
    drop(Ca::init(&dir, &init_opts(true), now).unwrap());
    openssl_ok(
        root,
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
    let mut der = std::fs::read(root.join("good.csr")).unwrap();
    let n = der.len() - 3;
    der[n] ^= 0x55;
    std::fs::write(root.join("tampered.csr"), der).unwrap();
    std::fs::write(root.join("garbage"), b"\x00\x01garbage, not PEM nor DER").unwrap();
    let csr_req = |file: &str| SignCsrRequest {
        csr_path: root.join(file),
        options: CsrOptions {
            profile: CsrProfile::Server,
            client_auth: false,
            validity: Validity::days_from(now, 30),
            crl_url: None,
            extra_hosts: vec![],
        },
        out: root.join("out.crt"),
        chain_out: None,
        force: false,
    };

    let msg = refused(root, "garbage CSR", || Ca::open(&dir)?.sign_csr(&csr_req("garbage"), now).map(drop));
    assert!(msg.contains("not a certificate signing request"), "{msg}");
    let msg = refused(root, "tampered CSR", || Ca::open(&dir)?.sign_csr(&csr_req("tampered.csr"), now).map(drop));
    assert!(msg.contains("signature does not verify"), "{msg}");
    let msg = refused(root, "missing dir", || Ca::open(&root.join("nope")).map(drop));
    assert!(msg.contains("no such CA directory"), "{msg}");
    let msg = refused(root, "expired CA", || {
        Ca::open(&dir)?
            .issue(&server("late.example.com", Some(root.join("late")), now + 4000 * DAY), now + 4000 * DAY)
            .map(drop)
    });
    assert!(msg.contains("expired on"), "{msg}");
    let msg = refused(root, "unknown serial", || {
        Ca::open(&dir)?.revoke(&"0123".parse().unwrap(), RevocationReason::Unspecified, now).map(drop)
    });
    assert!(msg.contains("was not issued by this CA"), "{msg}");
    let msg = refused(root, "bad DNS name", || {
        Ca::open(&dir)?.issue(&server("bad name!", Some(root.join("x")), now), now).map(drop)
    });
    assert!(msg.contains("needs a host name"), "{msg}");

    // Wrong key: the intermediate key replaced by another key.
    openssl_ok(root, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"]);
    let saved = std::fs::read(dir.join("intermediate.key")).unwrap();
    std::fs::copy(root.join("other.key"), dir.join("intermediate.key")).unwrap();
    let msg = refused(root, "wrong key", || Ca::open(&dir).map(drop));
    assert!(msg.contains("does not belong to intermediate.crt"), "{msg}");
    std::fs::write(dir.join("intermediate.key"), saved).unwrap();

    // Damaged and foreign state files.
    let state = std::fs::read(dir.join("trunkgate-pki.json")).unwrap();
    std::fs::write(dir.join("trunkgate-pki.json"), &state[..state.len() / 2]).unwrap();
    let msg = refused(root, "truncated state", || Ca::open(&dir).map(drop));
    assert!(msg.contains("damaged"), "{msg}");
    std::fs::write(dir.join("trunkgate-pki.json"), br#"{"format":"trunkgate-pki","version":9}"#).unwrap();
    let msg = refused(root, "newer state", || Ca::open(&dir).map(drop));
    assert!(msg.contains("newer"), "{msg}");
    std::fs::write(dir.join("trunkgate-pki.json"), state).unwrap();
    Ca::open(&dir).unwrap();

    let foreign = root.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    let msg = refused(root, "foreign open", || Ca::open(&foreign).map(drop));
    assert!(msg.contains("not a trunkgate CA directory"), "{msg}");
    let mut force = init_opts(false);
    force.force = true;
    let msg = refused(root, "foreign init, even with force", || Ca::init(&foreign, &force, now).map(drop));
    assert!(msg.contains("left untouched"), "{msg}");
    let msg = refused(root, "init over a CA", || Ca::init(&dir, &init_opts(false), now).map(drop));
    assert!(msg.contains("--force"), "{msg}");
}
