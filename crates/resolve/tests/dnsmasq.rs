//! RFC 3263 resolution against a real DNS server (dnsmasq on 127.0.0.1, started by the test):
//! NAPTR → SRV → A/AAAA, SRV priorities, the `_sip._tls` fallback, A-only domains, and the
//! certificate name being the SIP domain (SPEC S3, S4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;

use trunkgate_resolve::{Resolver, ResolverOptions, SipTarget, Source};
use trunkgate_testkit::{DnsRecords, Dnsmasq};

fn lo() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn records() -> DnsRecords {
    DnsRecords::new()
        // NAPTR domain: two SIPS+D2T records (order 20 and 10) and a plain TCP one that is ignored.
        .naptr("voice.test", 20, 10, "s", "SIPS+D2T", "_sips._tcp.backup.voice.test")
        .naptr("voice.test", 10, 10, "s", "SIPS+D2T", "_sips._tcp.voice.test")
        .naptr("voice.test", 5, 10, "s", "SIP+D2T", "_sip._tcp.voice.test")
        .srv("_sips._tcp.voice.test", "lb02.voice.test", 5062, 20, 10)
        .srv("_sips._tcp.voice.test", "lb01.voice.test", 5061, 10, 10)
        .srv("_sips._tcp.backup.voice.test", "lb09.voice.test", 5069, 10, 10)
        .host("lb01.voice.test", lo())
        .host("lb02.voice.test", lo())
        .host("lb09.voice.test", lo())
        // SRV-only domain with the legacy _sip._tls name.
        .srv("_sip._tls.legacy.test", "sbc.legacy.test", 5071, 1, 1)
        .host("sbc.legacy.test", lo())
        // A-only domain.
        .host("plain.test", lo())
}

#[test]
fn s4_rfc3263_naptr_srv_a_in_failover_order() {
    let dns = Dnsmasq::start(&records()).expect("dnsmasq (Debian dnsmasq-base)");
    let r = Resolver::new(&ResolverOptions { nameserver: Some(dns.addr), ..Default::default() }).unwrap();

    let t = r.resolve_blocking(&SipTarget::parse("sips:voice.test").unwrap()).unwrap();
    let got: Vec<(&str, u16, Source)> = t.iter().map(|t| (t.host_name.as_str(), t.addr.port(), t.source)).collect();
    // NAPTR order 10 first → its SRV set, priority 10 before 20.
    assert_eq!(got, vec![("lb01.voice.test", 5061, Source::Naptr), ("lb02.voice.test", 5062, Source::Naptr)]);
    // S4: the certificate name is the SIP domain, not the SRV label or target.
    assert!(t.iter().all(|t| t.cert_name == "voice.test"), "{t:?}");
    assert_eq!(t[0].srv_name.as_deref(), Some("_sips._tcp.voice.test"));

    let t = r.resolve_blocking(&SipTarget::parse("legacy.test").unwrap()).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].host_name.as_str(), t[0].addr.port(), t[0].source), ("sbc.legacy.test", 5071, Source::Srv));
    assert_eq!(t[0].srv_name.as_deref(), Some("_sip._tls.legacy.test"));

    let t = r.resolve_blocking(&SipTarget::parse("plain.test").unwrap()).unwrap();
    assert_eq!((t[0].addr.port(), t[0].source, t[0].cert_name.as_str()), (5061, Source::Direct, "plain.test"));

    // Explicit port: no SRV even where SRV exists.
    let t = r.resolve_blocking(&SipTarget::parse("sips:lb02.voice.test:7000").unwrap()).unwrap();
    assert_eq!((t[0].addr.port(), t[0].source), (7000, Source::Direct));

    let e = r.resolve_blocking(&SipTarget::parse("nothing.test").unwrap()).unwrap_err();
    assert!(e.to_string().contains("no address for nothing.test"), "{e}");
}
