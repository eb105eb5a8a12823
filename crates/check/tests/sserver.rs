//! `trunkgate check` against `openssl s_server` (Debian `openssl`) set up wrong in each way,
//! each giving its specific FAIL (SPEC T2, T3, T5, T7, T8, T9), and set up right giving no TLS
//! FAIL (s_server speaks no SIP, so only the SIP checks fail there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use trunkgate_check::Status;
use trunkgate_pki::{LeafSpec, Validity, DAY};
use trunkgate_testkit::{SServer, SServerOptions};

const HOST: &str = "sbc.carrier.test";
const SIP_WAIT: Duration = Duration::from_secs(1);

fn server(files: &Files, chain: bool, extra: &[&str]) -> SServer {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.push("-quiet".into());
    SServer::start(&SServerOptions {
        cert: files.leaf.clone(),
        key: files.key.clone(),
        chain: chain.then(|| files.chain.clone()),
        args,
    })
    .expect("openssl s_server (Debian openssl)")
}

fn byoc_args() -> Vec<&'static str> {
    vec!["-tls1_2", "-cipher", T2_SUITES, "-groups", "P-384"]
}

#[test]
fn t2_t5_correct_server_has_no_tls_fail_and_s_server_answers_no_sip() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let f = pki.write("good", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    let fails = fails_except(&r, &["sip."]);
    assert!(fails.is_empty(), "unexpected FAILs {fails:?}\n{}", r.to_text(false));
    for suite in ["TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"] {
        assert_finding(&r, &format!("tls.suite.{suite}"), Status::Pass, "Accepted");
    }
    assert_finding(&r, "tls.version.1.2", Status::Pass, "Accepted");
    assert_finding(&r, "tls.version.SSL3.0", Status::Pass, "Refused");
    assert_finding(&r, "tls.group.P-384", Status::Pass, "Accepted");
    assert_finding(&r, "chain.complete", Status::Pass, "Complete");
    assert_finding(&r, "chain.trust", Status::Pass, "ExtraRoot");
    assert_finding(&r, "revocation", Status::Pass, "Good");
    assert_finding(&r, "tls.handshake", Status::Pass, "Connected");
    assert_finding(&r, "tls.certificate-request", Status::Pass, "None");
    assert_finding(&r, "sip.options", Status::Fail, "NoAnswer");
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn t5_missing_intermediate() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let f = pki.write("noint", &leaf);
    let s = server(&f, false, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "chain.complete", Status::Fail, "IncompleteChain");
    assert_finding(&r, "chain.trust", Status::Fail, "Untrusted");
    assert_finding(&r, "tls.handshake", Status::Fail, "IncompleteChain");
}

#[test]
fn t7_wrong_name() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server("other.carrier.test", pki.valid()));
    let f = pki.write("wrongname", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "names.match", Status::Fail, "NameMismatch");
    assert_finding(&r, "tls.handshake", Status::Fail, "NameMismatch");
    assert!(findings(&r, "names.match")[0].reason.contains("other.carrier.test"));
}

#[test]
fn t7_ip_only_certificate() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server("127.0.0.1", pki.valid()).san("127.0.0.1"));
    let f = pki.write("iponly", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "names.match", Status::Fail, "IpOnly");
    // And the IP itself is refused as a target on byoc-cloud.
    let r = check(&pki, "127.0.0.1", s.addr, SIP_WAIT);
    assert_finding(&r, "names.match", Status::Fail, "IpTarget");
    assert_finding(&r, "tls.handshake", Status::Fail, "IpIdentityRefused");
}

#[test]
fn t8_expired() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, Validity::new(pki.now - 90 * DAY, pki.now - DAY)));
    let f = pki.write("expired", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "dates.leaf", Status::Fail, "Expired");
    assert_finding(&r, "tls.handshake", Status::Fail, "Expired");
}

#[test]
fn t8_expiring_soon_warns() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, Validity::new(pki.now - DAY, pki.now + 10 * DAY)));
    let f = pki.write("soon", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "dates.leaf", Status::Warn, "ExpiresSoon");
}

#[test]
fn t9_revoked_by_crl_over_http() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    pki.publish_crls(&[&leaf]);
    let f = pki.write("revoked", &leaf);
    let s = server(&f, true, &byoc_args());
    let hits = pki.http.hits();
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "revocation", Status::Fail, "Revoked");
    assert_finding(&r, "tls.handshake", Status::Fail, "Revoked");
    assert!(pki.http.hits() > hits, "the CRL was fetched over HTTP");
}

#[test]
fn t2_p256_only() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let f = pki.write("p256", &leaf);
    let s = server(&f, true, &["-tls1_2", "-cipher", T2_SUITES, "-groups", "P-256"]);
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "tls.group.P-384", Status::Fail, "Refused");
    assert!(r.targets[0].get("tls.groups.other").iter().any(|f| f.reason.contains("P-256")));
}

#[test]
fn t2_tls10_enabled() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let f = pki.write("tls10", &leaf);
    let s = server(
        &f,
        true,
        &[
            "-min_protocol",
            "TLSv1",
            "-max_protocol",
            "TLSv1.2",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-groups",
            "P-384:P-256",
        ],
    );
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "tls.version.1.0", Status::Fail, "Accepted");
    assert_finding(&r, "tls.version.1.2", Status::Pass, "Accepted");
    assert_finding(&r, "tls.version.SSL3.0", Status::Pass, "Refused");
}

#[test]
fn t3_client_certificate_requested() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let f = pki.write("certreq", &leaf);
    let mut args = byoc_args();
    args.extend(["-verify", "1"]);
    let s = server(&f, true, &args);
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "tls.certificate-request", Status::Fail, "CertificateRequest");
    let fix = &findings(&r, "tls.certificate-request")[0].fix;
    assert!(fix.contains("seed 002"), "{fix}");
}

#[test]
fn t5_chain_out_of_order() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let f = pki.write("order", &leaf);
    // -cert_chain with the leaf again before the intermediate: leaf, leaf, intermediate.
    let s = SServer::start(&SServerOptions {
        cert: f.leaf.clone(),
        key: f.key.clone(),
        chain: Some(f.full.clone()),
        args: byoc_args().iter().map(|s| s.to_string()).collect(),
    })
    .unwrap();
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "chain.order", Status::Fail, "OutOfOrder");
}

#[test]
fn t2_ec_key_on_an_rsa_only_profile() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()).key(trunkgate_pki::KeyType::P256));
    let f = pki.write("ec", &leaf);
    // The server offers its defaults: no suite of byoc-cloud can use an ECDSA certificate.
    let s = server(&f, true, &["-tls1_2"]);
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "chain.keys", Status::Fail, "WeakKey");
    assert!(findings(&r, "chain.keys")[0].reason.contains("not RSA"));
    assert_finding(&r, "tls.handshake", Status::Fail, "NoSharedCipher");
}

#[test]
fn t11_server_certificate_without_server_auth() {
    let pki = Pki::new();
    let mut spec = LeafSpec::server(HOST, pki.valid()).san(HOST).client_auth(true);
    spec.server_auth = false;
    let leaf = pki.leaf(spec);
    let f = pki.write("eku", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "eku.serverauth", Status::Fail, "WrongEku");
    assert_finding(&r, "tls.handshake", Status::Fail, "WrongEku");
}

#[test]
fn t7_wildcard_certificate_on_byoc_cloud() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server("*.carrier.test", pki.valid()));
    let f = pki.write("wildcard", &leaf);
    let s = server(&f, true, &byoc_args());
    let r = check(&pki, &format!("sips:{HOST}"), s.addr, SIP_WAIT);
    assert_finding(&r, "names.wildcard", Status::Warn, "Wildcard");
    // byoc-cloud does not accept wildcards (T7): the name does not match.
    assert_finding(&r, "names.match", Status::Fail, "NameMismatch");
    assert_finding(&r, "tls.handshake", Status::Fail, "NameMismatch");
}
