//! Test PKI (trunkgate-pki, plus an intermediate with a CRL distribution point) written to a
//! temporary directory, CRLs served over HTTP, and a runner for `check_outbound`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::extension::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509Builder, X509Extension, X509NameBuilder};
use trunkgate_check::{check_outbound, load_profile, load_table, CheckOptions, Finding, Report, Status, Trust};
use trunkgate_pki::{CaSpec, CrlSpec, Issued, Issuer, KeyType, LeafSpec, Revocation, RevocationReason, Validity, DAY};
use trunkgate_testkit::HttpFiles;

/// A root, an intermediate (both with CRLs served over HTTP) and files on disk.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub root: Issuer,
    pub int: Issuer,
    pub http: HttpFiles,
    pub root_pem: PathBuf,
    pub now: i64,
}

fn intermediate(root: &Issuer, cn: &str, crl_url: &str, now: i64) -> Issuer {
    let key = KeyType::Rsa2048.generate().unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut bn = BigNum::new().unwrap();
    bn.rand(63, MsbOption::MAYBE_ZERO, false).unwrap();
    let serial: Asn1Integer = bn.to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(root.cert().subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now - DAY).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + 1800 * DAY).unwrap()).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build().unwrap()).unwrap();
    b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(root.cert()), None)).unwrap();
    b.append_extension(ski).unwrap();
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(root.cert()), None)).unwrap();
    b.append_extension(aki).unwrap();
    #[allow(deprecated)]
    let dp = X509Extension::new_nid(
        None,
        Some(&b.x509v3_context(None, None)),
        Nid::CRL_DISTRIBUTION_POINTS,
        &format!("URI:{crl_url}"),
    )
    .unwrap();
    b.append_extension(dp).unwrap();
    b.sign(root.key(), MessageDigest::sha256()).unwrap();
    Issuer::from_parts(b.build(), key, vec![root.cert().clone()]).unwrap()
}

impl Pki {
    pub fn new() -> Pki {
        let now = trunkgate_pki::unix_now();
        let dir = tempfile::tempdir().unwrap();
        let http = HttpFiles::start().unwrap();
        let root = Issuer::new_root(&CaSpec::new(
            "trunkgate test root",
            KeyType::Rsa2048,
            Validity::days_from(now - DAY, 3650),
        ))
        .unwrap();
        let int = intermediate(&root, "trunkgate test intermediate", &http.url("/root.crl"), now);
        let root_pem = dir.path().join("root.pem");
        std::fs::write(&root_pem, root.cert().to_pem().unwrap()).unwrap();
        let pki = Pki { dir, root, int, http, root_pem, now };
        pki.publish_crls(&[]);
        pki
    }

    /// Publish both CRLs, revoking these leaves.
    pub fn publish_crls(&self, revoked: &[&Issued]) {
        let spec = |revoked: Vec<Revocation>| CrlSpec {
            number: 1,
            this_update: self.now - 60,
            next_update: self.now + 7 * DAY,
            revoked,
        };
        let root_crl = self.root.crl(&spec(vec![])).unwrap();
        self.http.put("/root.crl", root_crl.to_der().unwrap());
        let rev = revoked
            .iter()
            .map(|i| Revocation {
                serial: i.serial().unwrap(),
                at: self.now - 60,
                reason: RevocationReason::KeyCompromise,
            })
            .collect();
        self.http.put("/int.crl", self.int.crl(&spec(rev)).unwrap().to_der().unwrap());
    }

    /// A server leaf from the intermediate, with its CRL distribution point.
    pub fn leaf(&self, spec: LeafSpec) -> Issued {
        self.int.issue(&spec.crl_url(&self.http.url("/int.crl"))).unwrap()
    }

    /// The default validity of a good leaf.
    pub fn valid(&self) -> Validity {
        Validity::new(self.now - DAY, self.now + 365 * DAY)
    }

    /// Write leaf.pem, key.pem, chain.pem (intermediates) and full.pem (leaf + chain) under `name`.
    pub fn write(&self, name: &str, leaf: &Issued) -> Files {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let f = Files {
            leaf: d.join("leaf.pem"),
            key: d.join("key.pem"),
            chain: d.join("chain.pem"),
            full: d.join("full.pem"),
        };
        std::fs::write(&f.leaf, leaf.cert_pem().unwrap()).unwrap();
        std::fs::write(&f.key, leaf.key_pem().unwrap()).unwrap();
        let ints: Vec<u8> = leaf.chain.iter().flat_map(|c| c.to_pem().unwrap()).collect();
        std::fs::write(&f.chain, &ints).unwrap();
        let mut full = leaf.cert_pem().unwrap();
        full.extend(ints);
        std::fs::write(&f.full, full).unwrap();
        f
    }

    /// Trust: the shipped public-roots table (no bundle needed) plus our root as --ca.
    pub fn trust(&self) -> Trust {
        let table = load_table("byoc-public-roots").unwrap();
        Trust::load(table, Path::new("/nonexistent-bundle"), &[self.root_pem.as_path()]).unwrap()
    }
}

pub struct Files {
    pub leaf: PathBuf,
    pub key: PathBuf,
    pub chain: PathBuf,
    pub full: PathBuf,
}

/// Check `target` at `addr` with byoc-cloud.
pub fn check(pki: &Pki, target: &str, addr: SocketAddr, sip_timeout: Duration) -> Report {
    let opts = CheckOptions {
        target: target.to_string(),
        connect: Some(addr),
        profile: load_profile("byoc-cloud").unwrap(),
        trust: pki.trust(),
        nameserver: None,
        timeout: Duration::from_secs(10),
        sip_timeout,
        pace: Duration::ZERO,
    };
    check_outbound(&opts, &mut |_| {}).unwrap()
}

/// The findings of one check (first target).
pub fn findings<'a>(r: &'a Report, check: &str) -> Vec<&'a Finding> {
    r.targets[0].get(check)
}

/// Assert that `check` has a finding with this status and code.
pub fn assert_finding(r: &Report, check: &str, status: Status, code: &str) {
    let f = findings(r, check);
    assert!(
        f.iter().any(|f| f.status == status && f.code == code),
        "expected {check} {status:?} {code}; got {f:?}\n\n{}",
        r.to_text(false)
    );
}

/// Non-FAIL findings except those whose check starts with one of `except`.
pub fn fails_except<'a>(r: &'a Report, except: &[&str]) -> Vec<&'a Finding> {
    r.all().filter(|f| f.status == Status::Fail && !except.iter().any(|e| f.check.starts_with(e))).collect()
}

/// The eight T2 suites in OpenSSL syntax.
pub const T2_SUITES: &str = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES256-SHA";
