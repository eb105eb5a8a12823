//! Outbound to a trunk peer given as a bare domain: RFC 3263 NAPTR → SRV → A through a real DNS
//! server (dnsmasq on loopback); the first SRV target refuses connections, the call completes
//! through the second, whose certificate carries only the SRV domain (SPEC S3, S4, T7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate_edge::config::Config;
use trunkgate_edge::demo::{edge_config, free_port, ua, Lab};
use trunkgate_edge::{Edge, EdgeEvent, Options};
use trunkgate_testkit::{DnsRecords, Dnsmasq};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_failover_to_the_second_target_with_domain_identity() {
    let domain = "voice.example.test";
    let lab = Lab::new(&["edge.customer.test", domain]).unwrap();
    let (cloud_tls, dead_port, cust_tls, cust_in, cloud_in) =
        (free_port().unwrap(), free_port().unwrap(), free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
    let records = DnsRecords::new()
        .naptr(domain, 10, 10, "s", "SIPS+D2T", &format!("_sips._tcp.{domain}"))
        .srv(&format!("_sips._tcp.{domain}"), "dead.example.test", dead_port, 10, 0)
        .srv(&format!("_sips._tcp.{domain}"), "lb02.example.test", cloud_tls, 20, 0)
        .host("dead.example.test", "127.0.0.1".parse().unwrap())
        .host("lb02.example.test", "127.0.0.1".parse().unwrap());
    let dns = Dnsmasq::start(&records).expect("dnsmasq (Debian dnsmasq-base) must be installed");

    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The cloud edge presents the certificate of the SRV domain.
    let cloud_cfg = edge_config(
        &lab.dir,
        domain,
        cloud_tls,
        cloud_in,
        callee.local_addr().unwrap(),
        "edge.customer.test",
        cust_tls,
        false,
    )
    .unwrap();
    // Our edge: the trunk peer is the bare domain, no connect table: DNS decides.
    let d = lab.dir.display();
    let text = format!(
        r#"
[edge]
dns_server = "{dns}"
[[listen]]
name = "trunk"
transport = "tls"
address = "127.0.0.1:{cust_tls}"
side = "trunk"
advertise = "edge.customer.test"
profile = "byoc-cloud"
certificate = "{d}/edge.customer.test.chain.pem"
key = "{d}/edge.customer.test.key"
[[listen]]
name = "inside"
transport = "udp"
address = "127.0.0.1:{cust_in}"
side = "inside"
[inside]
target = "{caller}"
[[trunk]]
name = "byoc"
profile = "byoc-cloud"
peers = ["{domain}"]
trust = ["{d}/root.pem"]
crl_files = ["{d}/int.crl.pem", "{d}/root.crl.pem"]
tgrp = "TG-1"
trunk_context = "example.com"
options_interval_s = 0
[trunk.outbound]
prefixes = ["*"]
"#,
        dns = dns.addr,
        caller = caller.local_addr().unwrap(),
    );
    let cust_cfg = Config::parse(&text, "rfc3263 test").unwrap();
    let cloud = Edge::start(cloud_cfg, Options::default()).await.unwrap();
    let customer = Edge::start(cust_cfg, Options::default()).await.unwrap();
    let mut events = customer.subscribe();
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report = ua::call(&caller, customer.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert_eq!(report.bye_status, Some(200));
    assert_eq!(answer.await.unwrap().unwrap(), 1);
    let mut tls_up = None;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        if let EdgeEvent::TlsUp { info, inbound: false } = e {
            tls_up = Some(info);
        }
    }
    let info = tls_up.expect("an outbound TLS connection was made");
    assert_eq!(info.sni.as_deref(), Some(domain), "the certificate was checked for the SRV domain (S4)");
    customer.shutdown().await;
    cloud.shutdown().await;
}
