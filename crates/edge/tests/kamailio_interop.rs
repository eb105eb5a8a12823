//! Interop with a real SIP/TLS peer: Kamailio 5.6 with its tls module (Debian `kamailio` +
//! `kamailio-tls-modules`, started by `trunkgate_testkit::Kamailio`) plays the carrier / cloud
//! side of a byoc-cloud trunk, in both directions (SPEC T1–T3, T5, T7, S1, S2; issue 7 "Tests
//! with real peers"):
//!
//! (a) outbound: an inside caller (UDP) → edge → TLS → Kamailio → UDP → a callee; the edge
//!     verifies Kamailio's certificate for `kamailio.test` and negotiates TLS 1.2 on P-384.
//! (b) inbound: sipp (Debian `sip-tester`, UDP only) → Kamailio → TLS → edge, which routes the
//!     call by TGRP to an inside callee (UDP); Kamailio verifies the edge's chain against the
//!     lab root.
//!
//! Also: CANCEL while ringing, mutual TLS (T4) with Kamailio's client certificate, ten sipp calls
//! over one persistent connection, OPTIONS health, and Kamailio as a record-routing carrier
//! proxy (`support::kamailio_proxy`): the edge copies Record-Route into its 2xx as UAS and sends
//! in-dialog requests with the route set as UAC (RFC 3261 §12.1.1, §12.1.2, §12.2.1.1).
//!
//! A missing Kamailio or sipp fails the test with the package to install.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate_edge::demo::{ua, Lab};
use trunkgate_edge::EdgeEvent;
use trunkgate_testkit::{Kamailio, KamailioOptions};
use trunkgate_tls::{ConnectionInfo, Verification};

const KAMAILIO: &str = "kamailio.test";

fn start_kamailio(o: &KamailioOptions) -> Kamailio {
    Kamailio::start(o).unwrap_or_else(|e| panic!("Kamailio with TLS must run (CI installs it): {e}"))
}

fn assert_byoc_cloud(info: &ConnectionInfo, who: &str) {
    assert_eq!(info.version.as_deref(), Some("TLSv1.2"), "{who}: {info:?}");
    assert_eq!(info.group.as_deref(), Some("P-384"), "{who}: {info:?}");
    let cipher = info.cipher.as_deref().unwrap_or("");
    assert!(cipher.starts_with("TLS_ECDHE_RSA_WITH_AES_"), "{who}: an ECDHE suite of T2, got {cipher}");
    assert!(!info.certificate_request_received && !info.certificate_request_sent, "{who}: one-way TLS (T3)");
}

/// (a) The edge calls out over TLS to Kamailio, which relays to a UDP callee; the call
/// completes, and the TLS connection is what byoc-cloud demands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_through_kamailio_over_tls() {
    let lab = Lab::new(&[support::EDGE, KAMAILIO]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let mut o = KamailioOptions::new(work.path(), &lab.chain(KAMAILIO), &lab.key(KAMAILIO));
    o.relay_to = Some(format!("sip:{}", callee.local_addr().unwrap()));
    let mut kam = start_kamailio(&o);
    let trunk = support::trunk(
        &lab,
        "carrier",
        &[(KAMAILIO, kam.tls_addr.port())],
        "tgrp = \"TG-7\"\ntrunk_context = \"carrier.example\"\noptions_interval_s = 0\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let edge = support::start(support::config(&lab, "", caller.local_addr().unwrap(), &trunk, "")).await;
    let mut events = edge.subscribe();
    // The callee also reports the Request-URI it was reached with.
    let answer = tokio::spawn(async move { support::callee(&callee, 1, Duration::from_secs(40)).await });
    let report = ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(200))
        .await
        .unwrap_or_else(|e| panic!("caller: {e}\nKamailio log:\n{}", kam.log_text()));
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}\nKamailio log:\n{}", kam.log_text());
    assert!(report.got_answer_sdp, "the callee's SDP answer came back through Kamailio");
    assert_eq!(report.bye_status, Some(200), "{report:?}");
    assert_eq!(answer.await.unwrap().unwrap(), 1, "the BYE reached the callee through Kamailio");
    let mut up = None;
    let mut trunk_invite = None;
    let mut record = None;
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(2), |_| true).await {
        match e {
            EdgeEvent::TlsUp { info, inbound: false } => up = Some(info),
            EdgeEvent::Trace(t) if !t.inbound && t.summary.starts_with("INVITE ") => trunk_invite = Some(t.summary),
            EdgeEvent::CallEnded(r) => record = Some(r),
            _ => {}
        }
    }
    let info = up.expect("an outbound TLS connection to Kamailio");
    assert_eq!(info.sni.as_deref(), Some(KAMAILIO), "SNI and name check for the peer's host name (T7)");
    assert!(matches!(info.verification, Verification::Verified), "{info:?}");
    assert!(info.peer_chain.len() >= 2, "Kamailio sent its intermediate (T5): {:?}", info.peer_chain);
    assert_byoc_cloud(&info, "edge → Kamailio");
    let invite = trunk_invite.expect("the INVITE sent on the trunk");
    assert!(
        invite.contains(&format!(
            "sip:+13175551212;tgrp=TG-7;trunk-context=carrier.example@{KAMAILIO}:{};transport=tls",
            kam.tls_addr.port()
        )),
        "S1 Request-URI: {invite}"
    );
    let record = record.expect("a call record");
    assert_eq!((record.direction, record.result, record.status), ("outbound", "completed", 200), "{record:?}");
    assert!(kam.running(), "Kamailio is still running:\n{}", kam.log_text());
    edge.shutdown().await;
}

fn sipp_uac() -> String {
    support::sipp::uac("trunkgate inbound call by TGRP", &support::sipp::ack_and_bye(false, 300))
}

/// (b) sipp → Kamailio (UDP) → TLS → edge → inside callee: Kamailio opens the TLS connection
/// (T3: the side that originates the call connects), the edge matches the trunk by TGRP (S2),
/// and the call completes end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_from_kamailio_over_tls_routed_by_tgrp() {
    let lab = Lab::new(&[support::EDGE, KAMAILIO]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A second trunk with a DNIS rule that would also match: TGRP is the better rule (S2).
    let trunks = format!(
        "{}{}",
        support::trunk(&lab, "dnis-trunk", &[], "options_interval_s = 0\n[trunk.inbound]\ndnis = [\"+1317*\"]"),
        support::trunk(
            &lab,
            "kamailio-carrier",
            &[],
            "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\""
        )
    );
    let edge = support::start(support::config(&lab, "", callee.local_addr().unwrap(), &trunks, "")).await;
    let mut events = edge.subscribe();
    let mut o = KamailioOptions::new(work.path(), &lab.chain(KAMAILIO), &lab.key(KAMAILIO));
    o.relay_to = Some(format!("sip:127.0.0.1:{};transport=tls", edge.local_addr("trunk").unwrap().port()));
    o.relay_server_name = Some(support::EDGE.into());
    o.ca_list = Some(lab.root()); // Kamailio verifies the edge's chain (it does not check names)
    let mut kam = start_kamailio(&o);
    let answer = tokio::spawn(async move { support::callee(&callee, 1, Duration::from_secs(40)).await });
    let scenario = work.path().join("uac.xml");
    std::fs::write(&scenario, sipp_uac()).unwrap();
    let messages = work.path().join("sipp-messages.log");
    let sipp_port = trunkgate_testkit::free_udp_port();
    let args = support::sipp::args(&scenario, sipp_port, &messages, "30s", Some(kam.udp_addr.to_string()));
    let (ok, out) = support::run_limited("sipp", "sip-tester", &args, 45).await;
    let trace = std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(ok, "sipp's call failed:\n{out}\nsipp messages:\n{trace}\nKamailio log:\n{}", kam.log_text());
    assert_eq!(answer.await.unwrap().unwrap(), 1, "the inside callee took the call and its BYE");
    let mut up = None;
    let mut record = None;
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(2), |_| true).await {
        match e {
            EdgeEvent::TlsUp { info, inbound: true } => up = Some(info),
            EdgeEvent::CallEnded(r) => record = Some(r),
            _ => {}
        }
    }
    let info = up.expect("Kamailio's TLS connection to the edge");
    // (Kamailio 5.6 sends no SNI from its [client:default] profile; the edge needs none.)
    assert!(info.peer_chain.is_empty(), "byoc-cloud asks the client for no certificate (T3)");
    assert!(matches!(info.verification, Verification::NoPeerCertificate), "{info:?}");
    assert_byoc_cloud(&info, "Kamailio → edge");
    let record = record.expect("a call record");
    assert_eq!(
        (record.trunk.as_str(), record.direction, record.matched_by, record.result, record.status),
        ("kamailio-carrier", "inbound", "tgrp", "completed", 200),
        "{record:?}"
    );
    assert!(kam.running(), "Kamailio is still running:\n{}", kam.log_text());
    edge.shutdown().await;
}

fn sipp_uac_cancel() -> String {
    support::sipp::uac(
        "inbound call cancelled while ringing",
        r#"  <recv response="100" optional="true"/>
  <recv response="180"/>
  <send retrans="500">
    <![CDATA[
      CANCEL sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.test SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:+13175551212@edge.test>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
  <send>
    <![CDATA[
      ACK sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.test SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-6]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="500"/>
"#,
    )
}

/// A callee that rings and never answers: 180, then on CANCEL 200 + 487 for the INVITE; it
/// returns the methods it received, in order (ACK included).
async fn ringing_callee(sock: UdpSocket) -> Vec<String> {
    use trunkgate_sip::{parse_datagram, response_to, Limits, Method};
    let mut seen = Vec::new();
    let mut invite: Option<Vec<u8>> = None;
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|m| m == "ACK") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok((n, from))) = tokio::time::timeout(left, sock.recv_from(&mut buf)).await else { break };
        let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) else { continue };
        let Some(method) = m.method().cloned() else { continue };
        seen.push(method.as_str().to_string());
        let mut out = Vec::new();
        match method {
            Method::Invite => {
                invite = Some(buf[..n].to_vec());
                out.push(response_to(&m, 180, "Ringing", Some("ring1")).to_bytes());
            }
            Method::Cancel => {
                out.push(response_to(&m, 200, "OK", Some("ring1")).to_bytes());
                if let Some(inv) = &invite {
                    let inv = parse_datagram(inv, &Limits::default()).unwrap();
                    out.push(response_to(&inv, 487, "Request Terminated", Some("ring1")).to_bytes());
                }
            }
            _ => {}
        }
        for o in out {
            sock.send_to(&o, from).await.unwrap();
        }
    }
    seen
}

/// CANCEL across real peers: sipp → Kamailio → TLS → edge → ringing inside callee; the caller
/// cancels while it rings. The edge answers the CANCEL, cancels leg B (the callee receives the
/// CANCEL, answers 200 and 487, and the edge ACKs the 487), and answers the caller's INVITE
/// 487; the call record says cancelled (RFC 3261 §9.1, §9.2 on each of the B2BUA's legs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_cancelled_while_ringing() {
    let lab = Lab::new(&[support::EDGE, KAMAILIO]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk = support::trunk(
        &lab,
        "kamailio-carrier",
        &[],
        "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"",
    );
    let edge = support::start(support::config(&lab, "", callee.local_addr().unwrap(), &trunk, "")).await;
    let mut events = edge.subscribe();
    let mut o = KamailioOptions::new(work.path(), &lab.chain(KAMAILIO), &lab.key(KAMAILIO));
    o.relay_to = Some(format!("sip:127.0.0.1:{};transport=tls", edge.local_addr("trunk").unwrap().port()));
    o.ca_list = Some(lab.root());
    let mut kam = start_kamailio(&o);
    let ringing = tokio::spawn(ringing_callee(callee));
    let scenario = work.path().join("uac-cancel.xml");
    std::fs::write(&scenario, sipp_uac_cancel()).unwrap();
    let messages = work.path().join("sipp-cancel.log");
    let args = support::sipp::args(
        &scenario,
        trunkgate_testkit::free_udp_port(),
        &messages,
        "30s",
        Some(kam.udp_addr.to_string()),
    );
    let (ok, out) = support::run_limited("sipp", "sip-tester", &args, 45).await;
    let trace = std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(ok, "sipp's cancelled call failed:\n{out}\n{trace}\nKamailio log:\n{}", kam.log_text());
    let seen = ringing.await.unwrap();
    assert_eq!(seen, vec!["INVITE", "CANCEL", "ACK"], "what the inside callee received");
    let ended = support::wait_event(&mut events, support::WAIT, |e| matches!(e, EdgeEvent::CallEnded(_))).await;
    let Some(EdgeEvent::CallEnded(record)) = ended else { panic!("no call record") };
    assert_eq!((record.direction, record.result, record.status), ("inbound", "cancelled", 487), "{record:?}");
    assert!(kam.running(), "Kamailio is still running:\n{}", kam.log_text());
    edge.shutdown().await;
}

/// A call over a mutual-TLS trunk (T4): the edge's `mutual` listener requires a client certificate and the
/// trunk accepts only the subjects it names. Kamailio, as the carrier's proxy, presents the
/// certificate of `proxy.test`. With `allowed = proxy.test` sipp's call through it completes;
/// with another name the handshake is refused and reported, and no call reaches the inside.
async fn mutual_trunk_call(allowed: &str) -> (bool, String, Vec<EdgeEvent>, usize) {
    use support::kamailio_proxy::{KamailioProxy, ProxyOptions};

    let lab = Lab::new(&[support::EDGE, "proxy.test"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let d = lab.dir.display();
    let trunk = format!(
        r#"
[[trunk]]
name = "mtls-carrier"
profile = "mutual"
trust = ["{d}/root.pem"]
allowed_subjects = ["{allowed}"]
certificate = "{d}/edge.test.chain.pem"
key = "{d}/edge.test.key"
options_interval_s = 0
[trunk.inbound]
tgrp = "TG-1"
trunk_context = "example.com"
"#
    );
    let mutual = format!(
        "\n[[listen]]\nname = \"mutual\"\ntransport = \"tls\"\naddress = \"127.0.0.1:0\"\nside = \"trunk\"\n\
         advertise = \"edge.test\"\nprofile = \"mutual\"\ncertificate = \"{d}/edge.test.chain.pem\"\n\
         key = \"{d}/edge.test.key\"\nclient_ca = [\"{d}/root.pem\"]\n"
    );
    let edge = support::start(support::config(&lab, "", callee.local_addr().unwrap(), &trunk, &mutual)).await;
    let mut events = edge.subscribe();
    let proxy = KamailioProxy::start(&ProxyOptions {
        dir: work.path(),
        chain: &lab.chain("proxy.test"),
        key: &lab.key("proxy.test"),
        ca: &lab.root(),
        edge_name: support::EDGE,
        edge_tls: edge.local_addr("mutual").unwrap(),
        ua: "127.0.0.1:9".parse().unwrap(),
        client_cert: true,
        record_route: false,
    });
    let answer = tokio::spawn(async move { support::callee(&callee, 1, Duration::from_secs(30)).await });
    let scenario = work.path().join("uac.xml");
    std::fs::write(&scenario, sipp_uac()).unwrap();
    let args: Vec<String> = [
        "-sf",
        &scenario.display().to_string(),
        "-t",
        "u1",
        "-i",
        "127.0.0.1",
        "-p",
        &trunkgate_testkit::free_udp_port().to_string(),
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "20s",
        "-timeout_error",
        &proxy.udp_addr.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, out) = support::run_limited("sipp", "sip-tester", &args, 35).await;
    let out = format!("{out}\nproxy log:\n{}", proxy.log_text());
    let mut seen = Vec::new();
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(1), |_| true).await {
        seen.push(e);
    }
    answer.abort();
    let calls = seen.iter().filter(|e| matches!(e, EdgeEvent::CallEnded(r) if r.result == "completed")).count();
    edge.shutdown().await;
    (ok, out, seen, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_trunk_accepts_the_allowed_subject() {
    let (ok, out, events, calls) = mutual_trunk_call("proxy.test").await;
    assert!(ok, "the call over the mutual trunk failed:\n{out}");
    assert_eq!(calls, 1, "{events:?}");
    let info = events
        .iter()
        .find_map(|e| match e {
            EdgeEvent::TlsUp { info, inbound: true } => Some(info.clone()),
            _ => None,
        })
        .expect("Kamailio's TLS connection");
    assert!(info.certificate_request_sent, "the mutual listener asked for a certificate: {info:?}");
    assert!(matches!(info.verification, Verification::Verified), "{info:?}");
    assert!(
        info.peer_chain.first().is_some_and(|c| c.subject.contains("proxy.test")),
        "Kamailio's client certificate: {:?}",
        info.peer_chain
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_trunk_refuses_another_subject() {
    let (ok, out, events, calls) = mutual_trunk_call("sbc.carrier.test").await;
    assert!(!ok, "a call from a subject not allowed went through:\n{out}");
    assert_eq!(calls, 0, "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, EdgeEvent::TlsUp { inbound: true, .. })),
        "the handshake of a subject not allowed completed: {events:?}"
    );
    let reason = events.iter().find_map(|e| match e {
        EdgeEvent::TlsFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.is_some(), "the refusal is reported as TlsFailed: {events:?}");
}

fn sipp_inside_uac() -> String {
    support::sipp::scenario(
        "inside caller",
        &format!(
            "{}{}",
            r#"  <send retrans="500">
    <![CDATA[
      INVITE sip:+13175551212@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:+13175551212@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
"#,
            support::sipp::ack_and_bye(true, 500)
        ),
    )
}

/// sipp on the inside (UDP, as issue 7 asks: Debian's sipp has no TLS) places ten calls, five
/// per second, through the edge to Kamailio over TLS and on to a callee: all complete, and they
/// share one persistent TLS connection (one outbound handshake for ten calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_inside_calls_share_one_tls_connection_to_kamailio() {
    let lab = Lab::new(&[support::EDGE, KAMAILIO]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut o = KamailioOptions::new(work.path(), &lab.chain(KAMAILIO), &lab.key(KAMAILIO));
    o.relay_to = Some(format!("sip:{}", callee.local_addr().unwrap()));
    let mut kam = start_kamailio(&o);
    let sipp_port = trunkgate_testkit::free_udp_port();
    let trunk = support::trunk(
        &lab,
        "carrier",
        &[(KAMAILIO, kam.tls_addr.port())],
        "options_interval_s = 0\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let edge =
        support::start(support::config(&lab, "", std::net::SocketAddr::from(([127, 0, 0, 1], sipp_port)), &trunk, ""))
            .await;
    let mut events = edge.subscribe();
    let answer = tokio::spawn(async move { support::callee(&callee, 10, Duration::from_secs(60)).await });
    let scenario = work.path().join("inside.xml");
    std::fs::write(&scenario, sipp_inside_uac()).unwrap();
    let args: Vec<String> = [
        "-sf",
        &scenario.display().to_string(),
        "-t",
        "u1",
        "-i",
        "127.0.0.1",
        "-p",
        &sipp_port.to_string(),
        "-m",
        "10",
        "-r",
        "5",
        "-l",
        "10",
        "-nostdin",
        "-timeout",
        "40s",
        "-timeout_error",
        &edge.local_addr("inside").unwrap().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, out) = support::run_limited("sipp", "sip-tester", &args, 55).await;
    assert!(ok, "sipp's ten calls did not all complete:\n{out}\nKamailio log:\n{}", kam.log_text());
    assert_eq!(answer.await.unwrap().unwrap(), 10, "the callee saw ten calls hung up");
    let mut ups = 0;
    let mut completed = 0;
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(2), |_| true).await {
        match e {
            EdgeEvent::TlsUp { inbound: false, .. } => ups += 1,
            EdgeEvent::CallEnded(r) if r.result == "completed" => completed += 1,
            _ => {}
        }
    }
    assert_eq!(completed, 10, "ten call records say completed");
    assert_eq!(ups, 1, "ten calls, one TLS connection to the peer (reused, persistent)");
    assert!(kam.running(), "Kamailio is still running:\n{}", kam.log_text());
    edge.shutdown().await;
}

/// Peer health against a real peer (issue 7 "Peer health"): OPTIONS pings every second over
/// TLS are answered 200 by Kamailio and the peer stays up; once Kamailio is stopped the pings
/// fail and the edge reports the peer down after `down_after` = 2 failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_pings_track_kamailio_health() {
    let lab = Lab::new(&[support::EDGE, KAMAILIO]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let kam = start_kamailio(&KamailioOptions::new(work.path(), &lab.chain(KAMAILIO), &lab.key(KAMAILIO)));
    let trunk = support::trunk(
        &lab,
        "carrier",
        &[(KAMAILIO, kam.tls_addr.port())],
        "options_interval_s = 1\ndown_after = 2\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let edge = support::start(support::config(&lab, "", "127.0.0.1:9".parse().unwrap(), &trunk, "")).await;
    let mut events = edge.subscribe();
    // Two pings answered 200 by Kamailio, and no health change meanwhile.
    let mut answered = 0;
    let mut changes = Vec::new();
    let _ = support::wait_event(&mut events, Duration::from_secs(20), |e| {
        match e {
            EdgeEvent::Trace(t) if t.inbound && t.summary.starts_with("SIP/2.0 200") => answered += 1,
            EdgeEvent::PeerHealth { .. } => changes.push(e.clone()),
            _ => {}
        }
        answered >= 2
    })
    .await;
    assert_eq!(answered, 2, "Kamailio answered the OPTIONS pings");
    assert!(changes.is_empty(), "the live peer changed state: {changes:?}");
    drop(kam); // stopped by PID
    let down =
        support::wait_event(&mut events, Duration::from_secs(30), |e| matches!(e, EdgeEvent::PeerHealth { .. })).await;
    let Some(EdgeEvent::PeerHealth { peer, up, .. }) = down else { panic!("no PeerHealth after Kamailio stopped") };
    assert!(!up && peer.starts_with(KAMAILIO), "{peer} up={up}");
    edge.shutdown().await;
}

// Through a record-routing carrier proxy (route sets, RFC 3261 §12).

fn sipp_uac_rr() -> String {
    support::sipp::uac("inbound call through a record-routing proxy", &support::sipp::ack_and_bye(true, 300))
}

fn sipp_uas_rr() -> String {
    support::sipp::scenario(
        "callee behind a record-routing proxy",
        &format!(
            "{}{}",
            r#"  <recv request="INVITE" crlf="true" rrs="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/SAVP 0
      a=rtpmap:0 PCMU/8000
      a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
"#,
            support::sipp::BYE_ANSWERED
        ),
    )
}

/// Inbound through a record-routing carrier proxy (Kamailio): the edge, as the UAS of leg A,
/// must copy the INVITE's Record-Route into its 2xx (RFC 3261 §12.1.1) so that the caller's ACK
/// and BYE come back through the proxy with a route set; without it the proxy refuses the BYE
/// (404, no route set) and sipp's call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_2xx_copies_record_route() {
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use support::kamailio_proxy::{KamailioProxy, ProxyOptions};

    let lab = Lab::new(&[support::EDGE, "proxy.test"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk = support::trunk(
        &lab,
        "carrier",
        &[],
        "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"",
    );
    let edge = support::start(support::config(&lab, "", callee.local_addr().unwrap(), &trunk, "")).await;
    let proxy = KamailioProxy::start(&ProxyOptions {
        dir: work.path(),
        chain: &lab.chain("proxy.test"),
        key: &lab.key("proxy.test"),
        ca: &lab.root(),
        edge_name: support::EDGE,
        edge_tls: edge.local_addr("trunk").unwrap(),
        ua: "127.0.0.1:9".parse().unwrap(),
        client_cert: false,
        record_route: true,
    });
    let answer = tokio::spawn(async move { support::callee(&callee, 1, Duration::from_secs(40)).await });
    let scenario = work.path().join("uac-rr.xml");
    std::fs::write(&scenario, sipp_uac_rr()).unwrap();
    let messages = work.path().join("uac-rr.log");
    let args = support::sipp::args(
        &scenario,
        trunkgate_testkit::free_udp_port(),
        &messages,
        "25s",
        Some(proxy.udp_addr.to_string()),
    );
    let (ok, out) = support::run_limited("sipp", "sip-tester", &args, 40).await;
    let trace = std::fs::read_to_string(&messages).unwrap_or_default();
    let ok_200 = trace.split("----------").find(|m| m.contains("SIP/2.0 200 OK") && m.contains("INVITE")).unwrap_or("");
    assert!(
        ok_200.contains("Record-Route:"),
        "the edge's 200 to the INVITE carries no Record-Route (RFC 3261 §12.1.1):\n{ok_200}"
    );
    assert!(ok, "sipp's call through the proxy failed:\n{out}\n{trace}\nproxy log:\n{}", proxy.log_text());
    let _ = answer.await;
    edge.shutdown().await;
}

/// Outbound through a record-routing proxy: the callee's 2xx carries Record-Route; the edge, as
/// the UAC of leg B, must send its ACK and BYE with the route set as Route header fields (RFC
/// 3261 §12.1.2, §12.2.1.1). Without them the proxy drops the ACK and refuses the BYE, and the
/// callee (sipp) never sees either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_in_dialog_requests_follow_the_route_set() {
    use std::time::Duration;

    use tokio::net::UdpSocket;
    use trunkgate_edge::demo::ua;

    use support::kamailio_proxy::{KamailioProxy, ProxyOptions};

    let lab = Lab::new(&[support::EDGE, "proxy.test"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas_port = trunkgate_testkit::free_udp_port();
    let proxy = KamailioProxy::start(&ProxyOptions {
        dir: work.path(),
        chain: &lab.chain("proxy.test"),
        key: &lab.key("proxy.test"),
        ca: &lab.root(),
        edge_name: support::EDGE,
        edge_tls: "127.0.0.1:9".parse().unwrap(), // requests toward the edge: none in this call
        ua: std::net::SocketAddr::from(([127, 0, 0, 1], uas_port)),
        client_cert: false,
        record_route: true,
    });
    let scenario = work.path().join("uas-rr.xml");
    std::fs::write(&scenario, sipp_uas_rr()).unwrap();
    let messages = work.path().join("uas-rr.log");
    let args = support::sipp::args(&scenario, uas_port, &messages, "25s", None);
    let uas = tokio::spawn(async move { support::run_limited("sipp", "sip-tester", &args, 40).await });
    let trunk = support::trunk(
        &lab,
        "carrier",
        &[("proxy.test", proxy.tls_addr.port())],
        "options_interval_s = 0\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let edge = support::start(support::config(&lab, "", caller.local_addr().unwrap(), &trunk, "")).await;
    // sipp's UDP socket comes up quickly; the proxy retransmits the INVITE over UDP anyway.
    let report = ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}\nproxy log:\n{}", proxy.log_text());
    let (ok, out) = uas.await.unwrap();
    let trace = std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(
        ok,
        "the callee behind the proxy did not get the edge's ACK and BYE:\n{out}\n{trace}\nproxy log:\n{}",
        proxy.log_text()
    );
    edge.shutdown().await;
}
