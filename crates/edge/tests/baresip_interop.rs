//! baresip 1.0 (Debian `baresip-core`) over TLS as a trunk-side user agent calling the edge
//! (issue 7 "Tests with real peers": baresip over TLS; SPEC T1–T3, S2). baresip resolves the
//! edge's name through dnsmasq (`edge.test` → 127.0.0.1), verifies the edge's chain against the
//! lab root (it does not check names), and dials the S1-style Request-URI with TGRP; the edge
//! routes it by TGRP to an inside UDP callee. baresip hangs up; the BYE must reach the callee,
//! which also proves that baresip reached the edge's Contact (`edge.test`) for ACK and BYE.
//! baresip runs with SDES SRTP (`srtp-mand` calling in, `srtp` called): with the edge anchoring
//! media, its log must show SRTP enabled on the trunk leg (M1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate_edge::demo::{ua, Lab};
use trunkgate_edge::EdgeEvent;
use trunkgate_testkit::{DnsRecords, Dnsmasq};
use trunkgate_tls::Verification;

use support::baresip::{Baresip, Ctrl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_the_edge_over_tls_routed_by_tgrp() {
    let lab = Lab::new(&[support::EDGE, "baresip.test"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dns = Dnsmasq::start(&DnsRecords::new().host(support::EDGE, "127.0.0.1".parse().unwrap()))
        .expect("dnsmasq (Debian dnsmasq-base) must be installed");
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk = support::trunk(
        &lab,
        "baresip-trunk",
        &[],
        "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"",
    );
    let edge = support::start(support::config(&lab, "", callee.local_addr().unwrap(), &trunk, "")).await;
    let mut events = edge.subscribe();
    let port = edge.local_addr("trunk").unwrap().port();

    let pem = work.path().join("baresip.pem");
    let mut identity = support::read(&lab.chain("baresip.test"));
    identity.extend_from_slice(&support::read(&lab.key("baresip.test")));
    std::fs::write(&pem, identity).unwrap();
    let mut b = Baresip::start(
        &work.path().join("baresip"),
        "<sip:caller@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU",
        &pem,
        &lab.root(),
        dns.addr,
    );
    let answer = tokio::spawn(async move { support::callee(&callee, 1, Duration::from_secs(60)).await });
    let mut ctrl = Ctrl::connect(b.ctrl).await;
    ctrl.send(
        "dial",
        &format!("sip:+13175551212;tgrp=TG-1;trunk-context=example.com@{}:{port};transport=tls", support::EDGE),
    )
    .await;
    if let Err(e) = ctrl.wait_event("CALL_ESTABLISHED", Duration::from_secs(30)).await {
        panic!("baresip's call was not established: {e}\nbaresip log:\n{}", b.log());
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // a little media; not a threshold
    ctrl.send("hangup", "").await;
    if let Err(e) = ctrl.wait_event("CALL_CLOSED", Duration::from_secs(20)).await {
        panic!("{e}\nbaresip log:\n{}", b.log());
    }
    assert_eq!(
        answer.await.unwrap().unwrap_or_else(|e| panic!("callee: {e}\nbaresip log:\n{}", b.log())),
        1,
        "baresip's BYE reached the inside callee"
    );
    let mut up = None;
    let mut record = None;
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(2), |_| true).await {
        match e {
            EdgeEvent::TlsUp { info, inbound: true } => up = Some(info),
            EdgeEvent::CallEnded(r) => record = Some(r),
            _ => {}
        }
    }
    let info = up.expect("baresip's TLS connection");
    assert_eq!(info.version.as_deref(), Some("TLSv1.2"), "{info:?}");
    assert_eq!(info.group.as_deref(), Some("P-384"), "{info:?}");
    assert!(matches!(info.verification, Verification::NoPeerCertificate), "no client certificate asked (T3): {info:?}");
    let record = record.expect("a call record");
    assert_eq!(
        (record.trunk.as_str(), record.direction, record.matched_by, record.result, record.status),
        ("baresip-trunk", "inbound", "tgrp", "completed", 200),
        "{record:?}"
    );
    assert!(b.running(), "baresip is still running:\n{}", b.log());
    // M1: the trunk leg's media is SRTP (SDES keys inside the TLS signalling), seen by baresip.
    assert!(b.log().contains("SRTP is Enabled"), "baresip did not enable SRTP:\n{}", b.log());
    ctrl.send("quit", "").await;
    edge.shutdown().await;
}

/// The other direction: an inside caller → edge → TLS → baresip (auto-answer) as the trunk
/// peer `baresip.test`; the edge verifies baresip's certificate for that name, negotiates
/// byoc-cloud TLS, and the call completes with the hang-up from the inside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_calls_baresip_over_tls() {
    let lab = Lab::new(&[support::EDGE, "baresip.test"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dns = Dnsmasq::start(&DnsRecords::new().host(support::EDGE, "127.0.0.1".parse().unwrap()))
        .expect("dnsmasq (Debian dnsmasq-base) must be installed");
    let pem = work.path().join("baresip.pem");
    let mut identity = support::read(&lab.chain("baresip.test"));
    identity.extend_from_slice(&support::read(&lab.key("baresip.test")));
    std::fs::write(&pem, identity).unwrap();
    let mut b = Baresip::start(
        &work.path().join("baresip"),
        "<sip:+13175551212@127.0.0.1;transport=tls>;regint=0;answermode=auto;mediaenc=srtp;audio_codecs=PCMU",
        &pem,
        &lab.root(),
        dns.addr,
    );
    let mut ctrl = Ctrl::connect(b.ctrl).await;
    trunkgate_testkit::wait_tcp(b.tls, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("baresip's TLS listener: {e}\n{}", b.log()));
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk = support::trunk(
        &lab,
        "baresip-peer",
        &[("baresip.test", b.tls.port())],
        // No tgrp: baresip finds its user agent by the whole Request-URI user part.
        "options_interval_s = 0\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let edge = support::start(support::config(&lab, "", caller.local_addr().unwrap(), &trunk, "")).await;
    let mut events = edge.subscribe();
    let report = ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(300))
        .await
        .unwrap_or_else(|e| panic!("caller: {e}\nbaresip log:\n{}", b.log()));
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}\nbaresip log:\n{}", b.log());
    assert!(report.got_answer_sdp, "baresip's SDP answer came back");
    assert_eq!(report.bye_status, Some(200), "{report:?}\nbaresip log:\n{}", b.log());
    if let Err(e) = ctrl.wait_event("CALL_CLOSED", Duration::from_secs(20)).await {
        panic!("baresip did not see the hang-up: {e}\nbaresip log:\n{}", b.log());
    }
    let mut up = None;
    let mut record = None;
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(2), |_| true).await {
        match e {
            EdgeEvent::TlsUp { info, inbound: false } => up = Some(info),
            EdgeEvent::CallEnded(r) => record = Some(r),
            _ => {}
        }
    }
    let info = up.expect("the edge's TLS connection to baresip");
    assert_eq!(info.sni.as_deref(), Some("baresip.test"));
    assert!(matches!(info.verification, Verification::Verified), "{info:?}");
    assert_eq!(info.version.as_deref(), Some("TLSv1.2"), "{info:?}");
    assert_eq!(info.group.as_deref(), Some("P-384"), "{info:?}");
    let record = record.expect("a call record");
    assert_eq!((record.direction, record.result, record.status), ("outbound", "completed", 200), "{record:?}");
    assert!(b.running(), "baresip is still running:\n{}", b.log());
    assert!(b.log().contains("SRTP is Enabled"), "the edge's offer did not bring SRTP up (M1):\n{}", b.log());
    ctrl.send("quit", "").await;
    edge.shutdown().await;
}
