//! The B2BUA core without I/O, on a simulated clock: whole call flows in memory (SPEC S1, S2,
//! S3, T4; RFC 3261 §9, §13.3.1.4, §16.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use trunkgate_edge::config::{Config, Side, Transport};
use trunkgate_edge::core::{CallRecord, Core, Dest, Origin, Output};
use trunkgate_sip::{parse_datagram, response_to, HeaderName, Limits};

const CONFIG: &str = r#"
[[listen]]
name = "trunk"
transport = "tls"
address = "127.0.0.1:5061"
side = "trunk"
advertise = "edge.customer.test"
profile = "byoc-cloud"
certificate = "unused.pem"
key = "unused.key"

[[listen]]
name = "inside"
transport = "udp"
address = "127.0.0.1:5060"
side = "inside"

[inside]
target = "127.0.0.1:5070"

[[trunk]]
name = "cloud"
profile = "byoc-cloud"
peers = ["lb01.voice.use1.pure.cloud", "lb02.voice.use1.pure.cloud", "lb03.voice.use1.pure.cloud"]
tgrp = "TG-1"
trunk_context = "example.com"
options_interval_s = 0
down_after = 1
[trunk.inbound]
tgrp = "TG-1"
trunk_context = "example.com"
[trunk.outbound]
prefixes = ["+1"]

[[trunk]]
name = "inbound-only"
profile = "byoc-cloud"
[trunk.inbound]
dnis = ["+4989*"]

[[trunk]]
name = "mutual-carrier"
profile = "mutual"
allowed_subjects = ["sbc.carrier.test"]
[trunk.inbound]
dnis = ["+44*"]
"#;

fn core() -> Core {
    Core::new(Config::parse(CONFIG, "test.toml").unwrap(), false)
}

fn trunk_origin(names: &[&str]) -> Origin {
    Origin {
        reply: Dest::Conn(7),
        side: Side::Trunk,
        transport: Transport::Tls,
        peer: "192.0.2.10:40000".parse().unwrap(),
        verified_names: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn inside_origin() -> Origin {
    let peer: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    Origin {
        reply: Dest::Udp { listener: 1, addr: peer },
        side: Side::Inside,
        transport: Transport::Udp,
        peer,
        verified_names: vec![],
    }
}

/// Everything the core sent, parsed: (destination, message bytes).
fn sent(core: &mut Core) -> (Vec<(Dest, Vec<u8>)>, Vec<CallRecord>) {
    let (mut msgs, mut ended) = (Vec::new(), Vec::new());
    while let Some(o) = core.poll_output() {
        match o {
            Output::Send { dest, bytes, .. } => msgs.push((dest, bytes)),
            Output::CallEnded(r) => ended.push(r),
            _ => {}
        }
    }
    (msgs, ended)
}

fn start_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b).lines().next().unwrap_or_default().to_string()
}

fn header(b: &[u8], h: HeaderName) -> String {
    let m = parse_datagram(b, &Limits::default()).unwrap();
    String::from_utf8_lossy(m.header(h).unwrap_or_default()).into_owned()
}

fn invite(ruri: &str, transport: &str, max_forwards: u8) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/{transport} 192.0.2.10:5061;branch=z9hG4bKa1\r\nMax-Forwards: {max_forwards}\r\n\
         From: \"Carrier\" <sip:+18005550100@sbc.carrier.test>;tag=ft1\r\nTo: <sip:+13175551212@edge.customer.test>\r\n\
         Call-ID: call-1@carrier\r\nCSeq: 10 INVITE\r\nContact: <sip:carrier@sbc.carrier.test:5061;transport=tls>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn respond(to: &[u8], status: u16, reason: &str, tag: &str) -> Vec<u8> {
    let m = parse_datagram(to, &Limits::default()).unwrap();
    let mut r = response_to(&m, status, reason, Some(tag));
    r.push("Contact", "<sip:pbx@127.0.0.1:5070>");
    r.to_bytes()
}

const TGRP_URI: &str = "sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.customer.test:5061;transport=tls";

#[test]
fn inbound_call_by_tgrp_full_ladder() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(t0, trunk_origin(&[]), &invite(TGRP_URI, "TLS", 70));
    let (out, _) = sent(&mut c);
    assert_eq!(start_line(&out[0].1), "SIP/2.0 100 Trying");
    assert_eq!(out[0].0, Dest::Conn(7));
    let (dest, b_inv) = &out[1];
    assert_eq!(*dest, Dest::Udp { listener: 1, addr: "127.0.0.1:5070".parse().unwrap() });
    assert_eq!(start_line(b_inv), "INVITE sip:+13175551212@127.0.0.1:5070 SIP/2.0");
    assert_eq!(header(b_inv, HeaderName::MaxForwards), "69", "Max-Forwards decremented");
    assert_ne!(header(b_inv, HeaderName::CallId), "call-1@carrier", "B leg has its own Call-ID");
    assert!(header(b_inv, HeaderName::Via).starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"));
    assert!(String::from_utf8_lossy(b_inv).contains("m=audio 4000 RTP/AVP 0"), "SDP passes through");

    c.handle_message(t0, inside_origin(), &respond(b_inv, 180, "Ringing", "pbx1"));
    c.handle_message(t0, inside_origin(), &respond(b_inv, 200, "OK", "pbx1"));
    let (out, _) = sent(&mut c);
    let statuses: Vec<String> = out.iter().map(|(_, b)| start_line(b)).collect();
    assert_eq!(statuses, vec!["SIP/2.0 180 Ringing", "SIP/2.0 200 OK"]);
    let ok = &out[1].1;
    assert_eq!(out[1].0, Dest::Conn(7), "responses go back on the connection the INVITE came on");
    let to = header(ok, HeaderName::To);
    assert!(to.contains(";tag="), "{to}");
    assert_eq!(header(ok, HeaderName::Contact), "<sip:trunkgate@edge.customer.test:5061;transport=tls>");
    assert_eq!(header(ok, HeaderName::CallId), "call-1@carrier");

    // ACK for the 2xx from the trunk (new branch) → ACK on the inside leg.
    let ack = format!(
        "ACK sip:trunkgate@edge.customer.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKack\r\n\
         Max-Forwards: 70\r\nFrom: \"Carrier\" <sip:+18005550100@sbc.carrier.test>;tag=ft1\r\nTo: {to}\r\nCall-ID: call-1@carrier\r\n\
         CSeq: 10 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_message(t0, trunk_origin(&[]), ack.as_bytes());
    let (out, _) = sent(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(start_line(&out[0].1), "ACK sip:pbx@127.0.0.1:5070 SIP/2.0");

    // BYE from the inside → 200 inside, BYE toward the carrier's Contact host (verified by name).
    let b_call_id = header(b_inv, HeaderName::CallId);
    let b_from = header(b_inv, HeaderName::From);
    let bye = format!(
        "BYE sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbye\r\nMax-Forwards: 70\r\n\
         From: <sip:+13175551212@edge.customer.test>;tag=pbx1\r\nTo: {b_from}\r\nCall-ID: {b_call_id}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_message(t0 + Duration::from_secs(5), inside_origin(), bye.as_bytes());
    let (out, ended) = sent(&mut c);
    assert_eq!(start_line(&out[0].1), "SIP/2.0 200 OK");
    assert_eq!(start_line(&out[1].1), "BYE sip:carrier@sbc.carrier.test:5061;transport=tls SIP/2.0");
    assert_eq!(out[1].0, Dest::Peer { trunk: 0, host: "sbc.carrier.test".into(), port: 5061 });
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].direction, ended[0].result, ended[0].matched_by), ("inbound", "completed", "tgrp"));
    assert_eq!(ended[0].duration, Duration::from_secs(5));
    assert_eq!(c.calls_in_progress(), 0);
}

#[test]
fn no_route_is_404_and_max_forwards_zero_is_483() {
    let mut c = core();
    let now = Instant::now();
    c.handle_message(now, trunk_origin(&[]), &invite("sip:+4930123@other.example", "TLS", 70));
    let (out, ended) = sent(&mut c);
    assert_eq!(start_line(&out.last().unwrap().1), "SIP/2.0 404 Not Found");
    assert!(ended.is_empty(), "no call was created");
    c.handle_message(now, trunk_origin(&[]), &invite(TGRP_URI, "TLS", 0));
    let (out, _) = sent(&mut c);
    assert_eq!(start_line(&out[0].1), "SIP/2.0 483 Too Many Hops");
}

#[test]
fn mutual_trunk_requires_an_allowed_certificate_subject() {
    let mut c = core();
    let now = Instant::now();
    c.handle_message(now, trunk_origin(&["rogue.test"]), &invite("sip:+442071234567@edge.customer.test", "TLS", 70));
    let (out, _) = sent(&mut c);
    assert_eq!(start_line(&out.last().unwrap().1), "SIP/2.0 403 Forbidden");
    // A new INVITE (new branch and Call-ID: the same ones would be a retransmission of the first).
    let second = String::from_utf8(invite("sip:+442071234567@edge.customer.test", "TLS", 70))
        .unwrap()
        .replace("z9hG4bKa1", "z9hG4bKa2")
        .replace("call-1@carrier", "call-2@carrier");
    c.handle_message(now, trunk_origin(&["sbc.carrier.test"]), second.as_bytes());
    let (out, _) = sent(&mut c);
    assert!(out.iter().any(|(_, b)| start_line(b).starts_with("INVITE sip:+442071234567@127.0.0.1:5070")));
}

#[test]
fn cancel_before_answer() {
    let mut c = core();
    let now = Instant::now();
    c.handle_message(now, trunk_origin(&[]), &invite(TGRP_URI, "TLS", 70));
    let (out, _) = sent(&mut c);
    let b_inv = out[1].1.clone();
    c.handle_message(now, inside_origin(), &respond(&b_inv, 180, "Ringing", "pbx1"));
    let _ = sent(&mut c);
    let cancel =
        "CANCEL sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.customer.test:5061;transport=tls SIP/2.0\r\n\
        Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKa1\r\nMax-Forwards: 70\r\n\
        From: \"Carrier\" <sip:+18005550100@sbc.carrier.test>;tag=ft1\r\nTo: <sip:+13175551212@edge.customer.test>\r\n\
        Call-ID: call-1@carrier\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n";
    c.handle_message(now, trunk_origin(&[]), cancel.as_bytes());
    let (out, _) = sent(&mut c);
    let lines: Vec<String> = out.iter().map(|(_, b)| start_line(b)).collect();
    assert!(lines.contains(&"SIP/2.0 200 OK".to_string()), "{lines:?}");
    assert!(lines.contains(&"SIP/2.0 487 Request Terminated".to_string()), "{lines:?}");
    let b_cancel = out.iter().find(|(_, b)| start_line(b).starts_with("CANCEL ")).expect("CANCEL on leg B");
    assert_eq!(header(&b_cancel.1, HeaderName::CSeq), header(&b_inv, HeaderName::CSeq).replace("INVITE", "CANCEL"));
    c.handle_message(now, inside_origin(), &respond(&b_inv, 487, "Request Terminated", "pbx1"));
    let (out, ended) = sent(&mut c);
    assert!(out.iter().any(|(_, b)| start_line(b).starts_with("ACK ")), "487 on leg B is acknowledged");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].result, "cancelled");
}

fn inside_invite(number: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKin1\r\nMax-Forwards: 70\r\n\
         From: <sip:2001@pbx>;tag=p1\r\nTo: <sip:{number}@pbx>\r\nCall-ID: out-1@pbx\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:2001@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn txn_of(core: &mut Core) -> Vec<(Dest, Vec<u8>, Option<trunkgate_sip::TransactionKey>)> {
    let mut v = Vec::new();
    while let Some(o) = core.poll_output() {
        if let Output::Send { dest, bytes, txn } = o {
            v.push((dest, bytes, txn));
        }
    }
    v
}

#[test]
fn outbound_fails_over_to_the_next_peer_then_503_when_all_are_down() {
    let mut c = core();
    let now = Instant::now();
    c.handle_message(now, inside_origin(), &inside_invite("+13175551212"));
    let out = txn_of(&mut c);
    let (dest, inv, key) = out.iter().find(|(_, b, _)| start_line(b).starts_with("INVITE")).cloned().unwrap();
    assert_eq!(dest, Dest::Peer { trunk: 0, host: "lb01.voice.use1.pure.cloud".into(), port: 5061 });
    assert_eq!(
        start_line(&inv),
        "INVITE sip:+13175551212;tgrp=TG-1;trunk-context=example.com@lb01.voice.use1.pure.cloud:5061;transport=tls SIP/2.0",
        "SPEC S1 Request-URI"
    );
    // Topology hiding: the trunk sees the edge's name and the peer's, not the PBX.
    assert_eq!(header(&inv, HeaderName::From).split(";tag=").next().unwrap(), "<sip:2001@edge.customer.test>");
    assert_eq!(header(&inv, HeaderName::To), "<sip:+13175551212@lb01.voice.use1.pure.cloud>");
    assert!(!String::from_utf8_lossy(&inv).contains("pbx"), "{}", String::from_utf8_lossy(&inv));
    // The runtime could not connect (refused / handshake failed): next peer.
    c.send_failed(now, key.as_ref());
    let out = txn_of(&mut c);
    let (dest, _, key) = out.iter().find(|(_, b, _)| start_line(b).starts_with("INVITE")).cloned().unwrap();
    assert_eq!(dest, Dest::Peer { trunk: 0, host: "lb02.voice.use1.pure.cloud".into(), port: 5061 });
    // lb02 answers 503: next peer.
    let resp = {
        let m = parse_datagram(
            &out.iter().find(|(_, b, _)| start_line(b).starts_with("INVITE")).unwrap().1,
            &Limits::default(),
        )
        .unwrap();
        response_to(&m, 503, "Service Unavailable", Some("x")).to_bytes()
    };
    let _ = key;
    c.handle_message(now, trunk_origin(&[]), &resp);
    let out = txn_of(&mut c);
    let (dest, _, key) = out.iter().find(|(_, b, _)| start_line(b).starts_with("INVITE")).cloned().unwrap();
    assert_eq!(dest, Dest::Peer { trunk: 0, host: "lb03.voice.use1.pure.cloud".into(), port: 5061 });
    // lb03 fails too: the inside gets 503 with Retry-After.
    c.send_failed(now, key.as_ref());
    let out = txn_of(&mut c);
    let last = out.iter().rev().find(|(_, b, _)| start_line(b).starts_with("SIP/2.0 5")).unwrap();
    assert_eq!(start_line(&last.1), "SIP/2.0 503 Service Unavailable");
    assert_eq!(header(&last.1, HeaderName::RetryAfter), "30");
    // With down_after = 1, lb01 and lb03 are now down (lb02 answered, so it is up): a new call
    // goes straight to lb02.
    let mut second = inside_invite("+13175551213");
    second = String::from_utf8(second)
        .unwrap()
        .replace("out-1@pbx", "out-2@pbx")
        .replace("z9hG4bKin1", "z9hG4bKin2")
        .into_bytes();
    c.handle_message(now, inside_origin(), &second);
    let out = txn_of(&mut c);
    let (dest, _, _) = out.iter().find(|(_, b, _)| start_line(b).starts_with("INVITE")).cloned().unwrap();
    assert_eq!(dest, Dest::Peer { trunk: 0, host: "lb02.voice.use1.pure.cloud".into(), port: 5061 });
}

#[test]
fn two_hundred_is_retransmitted_to_a_udp_caller_until_the_ack() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(t0, inside_origin(), &inside_invite("+13175551212"));
    let out = txn_of(&mut c);
    let inv = out.iter().find(|(_, b, _)| start_line(b).starts_with("INVITE")).unwrap().1.clone();
    let ok = {
        let m = parse_datagram(&inv, &Limits::default()).unwrap();
        let mut r = response_to(&m, 200, "OK", Some("cloud1"));
        r.push("Contact", "<sip:cloud@lb01.voice.use1.pure.cloud:5061;transport=tls>");
        r.to_bytes()
    };
    c.handle_message(t0, trunk_origin(&[]), &ok);
    let out = txn_of(&mut c);
    let first = out.iter().filter(|(_, b, _)| start_line(b) == "SIP/2.0 200 OK").count();
    assert_eq!(first, 1);
    let mut now = t0;
    let mut retransmits = 0;
    for _ in 0..3 {
        now = c.poll_timeout().unwrap().max(now);
        c.handle_timeout(now);
        retransmits += txn_of(&mut c).iter().filter(|(_, b, _)| start_line(b) == "SIP/2.0 200 OK").count();
    }
    assert!(retransmits >= 2, "the 2xx is repeated while no ACK arrives ({retransmits})");
    let to_tag = {
        let o: Vec<_> = out.iter().filter(|(_, b, _)| start_line(b) == "SIP/2.0 200 OK").collect();
        header(&o[0].1, HeaderName::To)
    };
    let ack = format!(
        "ACK sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack2\r\nMax-Forwards: 70\r\n\
         From: <sip:2001@pbx>;tag=p1\r\nTo: {to_tag}\r\nCall-ID: out-1@pbx\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_message(now, inside_origin(), ack.as_bytes());
    let out = txn_of(&mut c);
    assert!(out
        .iter()
        .any(|(d, b, _)| start_line(b).starts_with("ACK sip:cloud@lb01") && matches!(d, Dest::Peer { .. })));
    for _ in 0..3 {
        let Some(t) = c.poll_timeout() else { break };
        now = t.max(now) + Duration::from_millis(1);
        c.handle_timeout(now);
        assert!(txn_of(&mut c).iter().all(|(_, b, _)| start_line(b) != "SIP/2.0 200 OK"), "no 2xx after the ACK");
    }
}

#[test]
fn draining_refuses_new_calls_and_lets_calls_in_progress_finish() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(t0, trunk_origin(&[]), &invite(TGRP_URI, "TLS", 70));
    let (out, _) = sent(&mut c);
    let b_inv = out[1].1.clone();
    c.handle_message(t0, inside_origin(), &respond(&b_inv, 200, "OK", "pbx1"));
    let _ = sent(&mut c);
    c.drain();
    assert!(c.is_draining());
    // A new call is refused with 503 and Retry-After …
    let second = String::from_utf8(invite(TGRP_URI, "TLS", 70))
        .unwrap()
        .replace("z9hG4bKa1", "z9hG4bKa3")
        .replace("call-1@carrier", "call-3@carrier");
    c.handle_message(t0, trunk_origin(&[]), second.as_bytes());
    let (out, _) = sent(&mut c);
    let last = &out.last().unwrap().1;
    assert_eq!(start_line(last), "SIP/2.0 503 Service Unavailable");
    assert_eq!(header(last, HeaderName::RetryAfter), "30");
    // … while the call in progress still ends normally.
    assert_eq!(c.calls_in_progress(), 1);
    let b_call_id = header(&b_inv, HeaderName::CallId);
    let b_from = header(&b_inv, HeaderName::From);
    let bye = format!(
        "BYE sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbye9\r\nMax-Forwards: 70\r\n\
         From: <sip:+13175551212@edge.customer.test>;tag=pbx1\r\nTo: {b_from}\r\nCall-ID: {b_call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_message(t0, inside_origin(), bye.as_bytes());
    let (out, ended) = sent(&mut c);
    assert_eq!(start_line(&out[0].1), "SIP/2.0 200 OK");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].result, "completed");
    assert_eq!(c.calls_in_progress(), 0);
}

#[test]
fn reinvite_and_info_are_relayed_within_the_dialog() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(t0, trunk_origin(&[]), &invite(TGRP_URI, "TLS", 70));
    let (out, _) = sent(&mut c);
    let b_inv = out[1].1.clone();
    c.handle_message(t0, inside_origin(), &respond(&b_inv, 200, "OK", "pbx1"));
    let (out, _) = sent(&mut c);
    let to = header(&out[0].1, HeaderName::To);
    // The carrier sends a re-INVITE (hold) in the dialog: it goes to the PBX with the B leg's
    // identifiers and the next CSeq, and the PBX's 200 comes back with the edge's Contact.
    let hold_sdp = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
    let reinvite = format!(
        "INVITE sip:trunkgate@edge.customer.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKre1\r\n\
         Max-Forwards: 70\r\nFrom: \"Carrier\" <sip:+18005550100@sbc.carrier.test>;tag=ft1\r\nTo: {to}\r\nCall-ID: call-1@carrier\r\n\
         CSeq: 11 INVITE\r\nContact: <sip:carrier@sbc.carrier.test:5061;transport=tls>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{hold_sdp}",
        hold_sdp.len()
    );
    c.handle_message(t0, trunk_origin(&[]), reinvite.as_bytes());
    let (out, _) = sent(&mut c);
    let (dest, re_b) = out.iter().find(|(_, b)| start_line(b).starts_with("INVITE")).cloned().unwrap();
    assert_eq!(dest, Dest::Udp { listener: 1, addr: "127.0.0.1:5070".parse().unwrap() });
    assert_eq!(start_line(&re_b), "INVITE sip:pbx@127.0.0.1:5070 SIP/2.0", "to the PBX's Contact");
    assert_eq!(header(&re_b, HeaderName::CallId), header(&b_inv, HeaderName::CallId));
    assert_eq!(header(&re_b, HeaderName::CSeq), "2 INVITE");
    assert!(header(&re_b, HeaderName::To).ends_with(";tag=pbx1"));
    assert!(String::from_utf8_lossy(&re_b).contains("a=sendonly"), "the SDP is relayed");
    c.handle_message(t0, inside_origin(), &respond(&re_b, 200, "OK", "pbx1"));
    let (out, _) = sent(&mut c);
    let ok = out.iter().find(|(_, b)| start_line(b) == "SIP/2.0 200 OK").unwrap();
    assert_eq!(ok.0, Dest::Conn(7));
    assert_eq!(header(&ok.1, HeaderName::CSeq), "11 INVITE");
    assert_eq!(header(&ok.1, HeaderName::Contact), "<sip:trunkgate@edge.customer.test:5061;transport=tls>");
    // INFO (DTMF) from the PBX goes to the carrier; its 200 comes back to the PBX.
    let b_call_id = header(&b_inv, HeaderName::CallId);
    let b_from = header(&b_inv, HeaderName::From);
    let body = "Signal=5\r\nDuration=160\r\n";
    let info = format!(
        "INFO sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinfo1\r\nMax-Forwards: 70\r\n\
         From: <sip:+13175551212@edge.customer.test>;tag=pbx1\r\nTo: {b_from}\r\nCall-ID: {b_call_id}\r\nCSeq: 3 INFO\r\n\
         Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.handle_message(t0, inside_origin(), info.as_bytes());
    let (out, _) = sent(&mut c);
    let (dest, info_a) = out.iter().find(|(_, b)| start_line(b).starts_with("INFO")).cloned().unwrap();
    assert_eq!(dest, Dest::Peer { trunk: 0, host: "sbc.carrier.test".into(), port: 5061 });
    assert_eq!(header(&info_a, HeaderName::CallId), "call-1@carrier");
    assert!(String::from_utf8_lossy(&info_a).ends_with(body));
    let resp = {
        let m = parse_datagram(&info_a, &Limits::default()).unwrap();
        response_to(&m, 200, "OK", None).to_bytes()
    };
    c.handle_message(t0, trunk_origin(&[]), &resp);
    let (out, _) = sent(&mut c);
    let back = out.iter().find(|(_, b)| start_line(b) == "SIP/2.0 200 OK").unwrap();
    assert_eq!(header(&back.1, HeaderName::CSeq), "3 INFO");
    assert!(matches!(back.0, Dest::Udp { .. }));
}

#[test]
fn an_unverified_inbound_connection_is_never_reused_for_requests() {
    // Inbound on a trunk without peers, from a peer with no client certificate whose Contact is an
    // IP address: the BYE must not go back over the unverified inbound connection (issue 7, RFC
    // 5923 rule); it is addressed to the IP, which the trunk's TLS profile will have to verify.
    let mut c = core();
    let t0 = Instant::now();
    let inv = String::from_utf8(invite("sip:+4989123456@edge.customer.test", "TLS", 70))
        .unwrap()
        .replace("<sip:carrier@sbc.carrier.test:5061;transport=tls>", "<sip:carrier@192.0.2.10:5061;transport=tls>");
    c.handle_message(t0, trunk_origin(&[]), inv.as_bytes());
    let (out, _) = sent(&mut c);
    let b_inv = out.iter().find(|(_, b)| start_line(b).starts_with("INVITE")).unwrap().1.clone();
    c.handle_message(t0, inside_origin(), &respond(&b_inv, 200, "OK", "pbx1"));
    let _ = sent(&mut c);
    let b_call_id = header(&b_inv, HeaderName::CallId);
    let b_from = header(&b_inv, HeaderName::From);
    let bye = format!(
        "BYE sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbye7\r\nMax-Forwards: 70\r\n\
         From: <sip:+4989123456@edge.customer.test>;tag=pbx1\r\nTo: {b_from}\r\nCall-ID: {b_call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_message(t0, inside_origin(), bye.as_bytes());
    let (out, _) = sent(&mut c);
    let (dest, _) = out.iter().find(|(_, b)| start_line(b).starts_with("BYE")).unwrap();
    assert_ne!(*dest, Dest::Conn(7), "never over the unverified inbound connection");
    assert_eq!(*dest, Dest::Peer { trunk: 1, host: "192.0.2.10".into(), port: 5061 });
}
