//! In-dialog requests across a TLS trunk and which connection carries them (issue 7: "a
//! connection the peer opened is reused for requests back to it (RFC 5923 style) only when its
//! certificate matches the target name"; SPEC T3, T7). Two edges on byoc-cloud (one-way TLS):
//! ours (`edge.test`) calls out to the cloud (`cloud.test`), whose inside callee hangs up. The
//! cloud edge must send that BYE back to `edge.test` over a connection it opens itself and
//! verifies for that name — the connection our edge opened carries no certificate of ours —
//! and our edge relays the BYE to the inside caller. On a mutual-TLS trunk (T4), where the
//! peer's connection carries a verified certificate, the hang-up goes back over that connection.
//! And connections the edge opens are persistent: kept up with RFC 5626 CRLF pings, not idled
//! out by the edge itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate_edge::demo::Lab;
use trunkgate_edge::EdgeEvent;
use trunkgate_sip::{parse_datagram, response_to, HeaderName, Limits, Method};

/// A callee that answers the INVITE, waits for the ACK, then hangs up with a BYE of its own and
/// waits for the 200. Returns the BYE's final status.
async fn hanging_up_callee(sock: UdpSocket) -> Result<u16, String> {
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut dialog: Option<(String, SocketAddr)> = None;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok((n, from))) = tokio::time::timeout(left, sock.recv_from(&mut buf)).await else {
            return Err(format!("callee: nothing more in time (dialog {dialog:?})"));
        };
        let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) else { continue };
        match (m.method(), m.status()) {
            (Some(Method::Invite), _) => {
                let contact = m.header(HeaderName::Contact).map(|c| String::from_utf8_lossy(c).into_owned());
                let target = contact
                    .as_deref()
                    .and_then(|c| c.split('<').nth(1))
                    .and_then(|c| c.split('>').next())
                    .unwrap_or_default()
                    .to_string();
                let mut ok = response_to(&m, 200, "OK", Some("hup1")).with("Contact", format!("<sip:callee@{local}>"));
                ok.set_body("application/sdp", support::sdp_answer_for(m.body, 40_004).into_bytes());
                sock.send_to(&ok.to_bytes(), from).await.unwrap();
                // The BYE we will send: our tag in From, theirs in To.
                let to = String::from_utf8_lossy(m.header(HeaderName::From).unwrap()).into_owned();
                let from_hdr = format!("{};tag=hup1", String::from_utf8_lossy(m.header(HeaderName::To).unwrap()));
                let call_id = String::from_utf8_lossy(m.header(HeaderName::CallId).unwrap()).into_owned();
                let bye = format!(
                    "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKhup-bye;rport\r\n\
                     Max-Forwards: 70\r\nFrom: {from_hdr}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 BYE\r\n\
                     Content-Length: 0\r\n\r\n"
                );
                dialog = Some((bye, from));
            }
            (Some(Method::Ack), _) => {
                if let Some((bye, to)) = &dialog {
                    sock.send_to(bye.as_bytes(), to).await.unwrap();
                }
            }
            (None, Some(s)) if s >= 200 && m.header(HeaderName::CSeq).is_some_and(|c| c.ends_with(b"BYE")) => {
                return Ok(s);
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hangup_comes_back_over_a_connection_verified_for_our_name() {
    let lab = Lab::new(&[support::EDGE, "cloud.test"]).unwrap();
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    // Our edge binds first (port known), then the cloud, whose trunk maps edge.test to it.
    let our_port = trunkgate_edge::demo::free_port().unwrap();
    let cloud_trunk = support::trunk(
        &lab,
        "customer",
        &[(support::EDGE, our_port)],
        "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"",
    );
    let cloud =
        support::start(support::config_for(&lab, "cloud.test", "", callee.local_addr().unwrap(), &cloud_trunk, ""))
            .await;
    let mut cloud_events = cloud.subscribe();
    let trunk = support::trunk(
        &lab,
        "cloud",
        &[("cloud.test", cloud.local_addr("trunk").unwrap().port())],
        "tgrp = \"TG-1\"\ntrunk_context = \"example.com\"\noptions_interval_s = 0\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let mut cfg = support::config(&lab, "", caller.local_addr().unwrap(), &trunk, "");
    cfg.listeners[0].address = SocketAddr::from(([127, 0, 0, 1], our_port));
    let edge = support::start(cfg).await;
    let mut events = edge.subscribe();
    let hangup = tokio::spawn(hanging_up_callee(callee));

    // The inside caller: INVITE, ACK the 200, then expect the BYE relayed from the far end.
    let inside = edge.local_addr("inside").unwrap();
    let local = caller.local_addr().unwrap().to_string();
    let ruri = format!("sip:+13175551212@{inside}");
    caller.send_to(&support::invite(&ruri, "hup-call", "UDP", &local), inside).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got_bye = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !got_bye {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok((n, from))) = tokio::time::timeout(left, caller.recv_from(&mut buf)).await else {
            panic!("the far end's BYE never reached the inside caller")
        };
        let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) else { continue };
        match (m.method(), m.status()) {
            (None, Some(200)) if m.header(HeaderName::CSeq).is_some_and(|c| c.ends_with(b"INVITE")) => {
                let to = String::from_utf8_lossy(m.header(HeaderName::To).unwrap()).into_owned();
                let contact = String::from_utf8_lossy(m.header(HeaderName::Contact).unwrap()).into_owned();
                let target = contact.split('<').nth(1).and_then(|c| c.split('>').next()).unwrap().to_string();
                let ack = format!(
                    "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKhup-ack;rport\r\nMax-Forwards: 70\r\n\
                     From: <sip:+18005550100@{local}>;tag=chup-call\r\nTo: {to}\r\nCall-ID: hup-call\r\nCSeq: 1 ACK\r\n\
                     Content-Length: 0\r\n\r\n"
                );
                caller.send_to(ack.as_bytes(), from).await.unwrap();
            }
            (Some(Method::Bye), _) => {
                got_bye = true;
                caller.send_to(&response_to(&m, 200, "OK", None).to_bytes(), from).await.unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(hangup.await.unwrap().unwrap(), 200, "the callee's BYE was answered 200");
    let ended = support::wait_event(&mut events, support::WAIT, |e| matches!(e, EdgeEvent::CallEnded(_))).await;
    let Some(EdgeEvent::CallEnded(rec)) = ended else { panic!("no call record on our edge") };
    assert_eq!((rec.direction, rec.result), ("outbound", "completed"), "{rec:?}");
    // The cloud opened its own connection to edge.test, verified for that name.
    let back =
        support::wait_event(&mut cloud_events, support::WAIT, |e| matches!(e, EdgeEvent::TlsUp { inbound: false, .. }))
            .await;
    let Some(EdgeEvent::TlsUp { info, .. }) = back else {
        panic!("the cloud edge sent the BYE without opening a connection verified for edge.test")
    };
    assert_eq!(info.sni.as_deref(), Some(support::EDGE));
    assert!(matches!(info.verification, trunkgate_tls::Verification::Verified), "{info:?}");
    edge.shutdown().await;
    cloud.shutdown().await;
}

fn sipp_uac_remote_bye() -> String {
    support::sipp::uac(
        "caller hung up by the far end",
        &format!("{}{}", support::sipp::answered_ack(false), support::sipp::BYE_ANSWERED),
    )
}

/// The other half of the rule: on a mutual-TLS trunk (T4) the peer's connection carries a
/// verified certificate, so a hang-up from the inside goes back over that same connection — no
/// new outbound handshake — through Kamailio (presenting `proxy.test`) to sipp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_reuses_the_verified_connection_of_a_mutual_peer() {
    use support::kamailio_proxy::{KamailioProxy, ProxyOptions};

    let lab = Lab::new(&[support::EDGE, "proxy.test"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let d = lab.dir.display();
    let trunk = format!(
        "\n[[trunk]]\nname = \"mtls-carrier\"\nprofile = \"mutual\"\ntrust = [\"{d}/root.pem\"]\n\
         allowed_subjects = [\"proxy.test\"]\ncertificate = \"{d}/edge.test.chain.pem\"\nkey = \"{d}/edge.test.key\"\n\
         options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"\n"
    );
    let mutual = format!(
        "\n[[listen]]\nname = \"mutual\"\ntransport = \"tls\"\naddress = \"127.0.0.1:0\"\nside = \"trunk\"\n\
         advertise = \"edge.test\"\nprofile = \"mutual\"\ncertificate = \"{d}/edge.test.chain.pem\"\n\
         key = \"{d}/edge.test.key\"\nclient_ca = [\"{d}/root.pem\"]\n"
    );
    let edge = support::start(support::config(&lab, "", callee.local_addr().unwrap(), &trunk, &mutual)).await;
    let mut events = edge.subscribe();
    let sipp_port = trunkgate_testkit::free_udp_port();
    let proxy = KamailioProxy::start(&ProxyOptions {
        dir: work.path(),
        chain: &lab.chain("proxy.test"),
        key: &lab.key("proxy.test"),
        ca: &lab.root(),
        edge_name: support::EDGE,
        edge_tls: edge.local_addr("mutual").unwrap(),
        ua: SocketAddr::from(([127, 0, 0, 1], sipp_port)),
        client_cert: true,
        record_route: false,
    });
    let hangup = tokio::spawn(hanging_up_callee(callee));
    let scenario = work.path().join("uac-remote-bye.xml");
    std::fs::write(&scenario, sipp_uac_remote_bye()).unwrap();
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
    assert!(ok, "sipp never got the far end's BYE:\n{out}\nproxy log:\n{}", proxy.log_text());
    assert_eq!(hangup.await.unwrap().unwrap(), 200, "the inside callee's BYE was answered 200");
    let mut outbound = 0;
    while let Some(e) = support::wait_event(&mut events, Duration::from_secs(1), |_| true).await {
        if matches!(e, EdgeEvent::TlsUp { inbound: false, .. }) {
            outbound += 1;
        }
    }
    assert_eq!(outbound, 0, "the BYE went over the peer's verified connection, not a new one");
    edge.shutdown().await;
}

/// Issue 7: "Connections are persistent with RFC 5626 CRLF keepalives". The edge opens a TLS
/// connection to a trunk peer (here for its first OPTIONS ping; the next is an hour away) and
/// then has nothing to say. With `idle_timeout_s` = 2 the edge must keep its own connection
/// alive (CRLFCRLF pings, RFC 5626 §4.4.1) rather than tear it down for idleness: the peer may
/// see keepalives or nothing at all for 15 s, but not a close without any keepalive first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_trunk_connection_is_kept_alive_not_idled_out() {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use trunkgate_sip::{parse_stream_message, response_to, Frame, Limits, Method, StreamFramer};

    let lab = Lab::new(&[support::EDGE, "peer.test"]).unwrap();
    let tls_peer = support::TlsPeer::bind(&lab, "peer.test").await;
    let port = tls_peer.port;
    let peer = tokio::spawn(async move {
        let mut s = tls_peer.accept().await;
        let mut framer = StreamFramer::new(Limits::default());
        let mut buf = vec![0u8; 65536];
        let (mut answered, mut pings) = (false, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let n = match tokio::time::timeout(left, s.read(&mut buf)).await {
                Err(_) => return (answered, pings, "quiet"),
                Ok(Ok(0)) | Ok(Err(_)) => return (answered, pings, "closed by the edge"),
                Ok(Ok(n)) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Ping)) => {
                        pings += 1;
                        s.write_all(b"\r\n").await.unwrap();
                    }
                    Ok(Some(Frame::Message(m))) => {
                        let msg = parse_stream_message(&m, &Limits::default()).unwrap();
                        if msg.method() == Some(&Method::Options) {
                            s.write_all(&response_to(&msg, 200, "OK", Some("p1")).to_bytes()).await.unwrap();
                            answered = true;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    });
    let trunk = support::trunk(&lab, "carrier", &[("peer.test", port)], "options_interval_s = 3600");
    let edge =
        support::start(support::config(&lab, "idle_timeout_s = 2", "127.0.0.1:9".parse().unwrap(), &trunk, "")).await;
    let (answered, pings, end) = peer.await.unwrap();
    assert!(answered, "the edge's OPTIONS ping opened the connection");
    assert!(
        end != "closed by the edge" || pings > 0,
        "the edge closed its own idle trunk connection without a single CRLF keepalive ({pings} pings, {end})"
    );
    edge.shutdown().await;
}
