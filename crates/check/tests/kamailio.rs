//! `trunkgate check` against Kamailio 5.6 with its tls module (Debian `kamailio` +
//! `kamailio-tls-modules`), a real SIP TLS server set up right: every check PASSes, including
//! SIP OPTIONS, the RFC 5626 CRLF keepalive and connection reuse; and the same server found
//! through RFC 3263 (NAPTR → SRV → A served by dnsmasq) with the SRV-domain rule (SPEC S4).
//! Kamailio missing is a test failure, not a skip: CI installs it (.ci/packages.txt).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use trunkgate_check::{check_outbound, load_profile, CheckOptions, Status};
use trunkgate_pki::LeafSpec;
use trunkgate_testkit::{DnsRecords, Dnsmasq, Kamailio, KamailioOptions};

/// The checker's options for `target` on the byoc-cloud profile, resolving through `dns`.
fn byoc_through(pki: &Pki, dns: &Dnsmasq, target: &str) -> CheckOptions {
    CheckOptions {
        target: target.into(),
        connect: None,
        profile: load_profile("byoc-cloud").unwrap(),
        trust: pki.trust(),
        nameserver: Some(dns.addr),
        timeout: Duration::from_secs(10),
        sip_timeout: Duration::from_secs(5),
        pace: Duration::ZERO,
    }
}

#[test]
fn t2_t3_t5_t6_t7_t8_t9_t11_s4_kamailio_all_pass_with_sip() {
    let pki = Pki::new();
    // The certificate carries the SIP domain (S4) and the host.
    let leaf = pki.leaf(LeafSpec::server("sbc.voice.test", pki.valid()).san("voice.test"));
    let f = pki.write("kamailio", &leaf);
    let mut o = KamailioOptions::new(pki.dir.path(), &f.full, &f.key);
    o.cipher_list = Some(T2_SUITES.to_string());
    let k = Kamailio::start(&o).expect("kamailio with its tls module (Debian kamailio, kamailio-tls-modules)");

    let r = check(&pki, "sips:sbc.voice.test", k.tls_addr, Duration::from_secs(5));
    let text = r.to_text(false);
    println!("{text}");
    let bad: Vec<_> = r.all().filter(|f| matches!(f.status, Status::Fail | Status::Warn)).collect();
    assert!(bad.is_empty(), "expected all PASS, got {bad:?}\n{text}\nkamailio log:\n{}", k.log_text());
    assert_eq!(r.exit_code(), 0);
    assert_finding(&r, "sip.options", Status::Pass, "Answered");
    assert!(findings(&r, "sip.options")[0].reason.contains("kamailio (trunkgate testkit)"), "{text}");
    assert_finding(&r, "sip.keepalive", Status::Pass, "Pong");
    assert_finding(&r, "sip.reuse", Status::Pass, "Open");
    assert_finding(&r, "tls.certificate-request", Status::Pass, "None");
    assert_finding(&r, "tls.group.P-384", Status::Pass, "Accepted");
    for s in load_profile("byoc-cloud").unwrap().suites {
        assert_finding(&r, &format!("tls.suite.{}", s.iana), Status::Pass, "Accepted");
    }

    // The same server through NAPTR → SRV → A: the name validated is the domain (S4).
    let dns = Dnsmasq::start(
        &DnsRecords::new()
            .naptr("voice.test", 10, 10, "s", "SIPS+D2T", "_sips._tcp.voice.test")
            .srv("_sips._tcp.voice.test", "sbc.voice.test", k.tls_addr.port(), 10, 10)
            .host("sbc.voice.test", "127.0.0.1".parse().unwrap()),
    )
    .expect("dnsmasq (Debian dnsmasq-base)");
    let opts = byoc_through(&pki, &dns, "voice.test");
    let r = check_outbound(&opts, &mut |_| {}).unwrap();
    let text = r.to_text(false);
    assert_eq!(r.targets.len(), 1, "{text}");
    assert_eq!(r.targets[0].source, "naptr");
    assert_eq!(r.targets[0].name, "voice.test");
    assert_finding(&r, "names.srv-domain", Status::Pass, "Domain");
    assert_eq!(r.exit_code(), 0, "{text}");
}

#[test]
fn s4_srv_target_named_but_not_the_domain() {
    let pki = Pki::new();
    let leaf = pki.leaf(LeafSpec::server("lb01.voice.test", pki.valid()));
    let f = pki.write("lb01", &leaf);
    let mut o = KamailioOptions::new(pki.dir.path(), &f.full, &f.key);
    o.cipher_list = Some(T2_SUITES.to_string());
    let k = Kamailio::start(&o).expect("kamailio with its tls module (Debian kamailio, kamailio-tls-modules)");
    let dns = Dnsmasq::start(
        &DnsRecords::new()
            .srv("_sips._tcp.voice.test", "lb02.voice.test", k.tls_addr.port(), 20, 10)
            .srv("_sips._tcp.voice.test", "lb01.voice.test", k.tls_addr.port(), 10, 10)
            .host("lb01.voice.test", "127.0.0.1".parse().unwrap())
            .host("lb02.voice.test", "127.0.0.1".parse().unwrap()),
    )
    .expect("dnsmasq (Debian dnsmasq-base)");
    let opts = byoc_through(&pki, &dns, "sips:voice.test");
    let r = check_outbound(&opts, &mut |_| {}).unwrap();
    // Every address is checked, in SRV priority order.
    assert_eq!(r.targets.len(), 2, "{}", r.to_text(false));
    assert_eq!(r.targets[0].source, "srv");
    assert_finding(&r, "names.srv-domain", Status::Fail, "SrvTargetOnly");
    assert_finding(&r, "names.match", Status::Fail, "NameMismatch");
    // lb02's certificate (lb01's) names neither the domain nor lb02.
    let second = r.targets[1].get("names.srv-domain");
    assert!(second.iter().any(|f| f.status == Status::Fail && f.code == "NameMismatch"), "{second:?}");
}
