//! Failover across a trunk's peers (SPEC S3; issue 7 "fail over to the next target on connect or
//! handshake failure, 503, or timeout", "503 with Retry-After when a trunk is down", "Peer
//! health"). The trunk has three peers `lb01`–`lb03.test`; the live ones are real edges playing
//! the cloud side over byoc-cloud TLS, each with a UDP callee inside; a dead one is a port
//! nobody listens on; a peer "answering 503" is an edge whose `max_calls` is 0. A branch the
//! edge abandons on `invite_timeout_ms` is cancelled when it had answered 100 (RFC 3261 §9.1),
//! and a late 2xx from it is ACKed and hung up (§13.2.2.4) — lb01 is then a TLS SIP peer of the
//! test's own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate_edge::demo::{free_port, ua, Lab};
use trunkgate_edge::{Edge, EdgeEvent};

const PEERS: [&str; 3] = ["lb01.test", "lb02.test", "lb03.test"];

fn lab() -> Lab {
    Lab::new(&[support::EDGE, PEERS[0], PEERS[1], PEERS[2], "impostor.test"]).unwrap()
}

/// A cloud-side edge known as `me`, taking calls for TGRP TG-1 to `callee`; `max_calls = 0`
/// makes it refuse every call with 503.
async fn cloud(lab: &Lab, me: &str, callee: SocketAddr, refuse: bool) -> Edge {
    let trunk = support::trunk(
        lab,
        "customer",
        &[],
        "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"",
    );
    let edge_lines = if refuse { "max_calls = 0" } else { "" };
    support::start(support::config_for(lab, me, edge_lines, callee, &trunk, "")).await
}

/// Our edge with the three-peer trunk (ports in `PEERS` order).
async fn ours(lab: &Lab, ports: [u16; 3], caller: SocketAddr, health: &str) -> Edge {
    let peers: Vec<(&str, u16)> = PEERS.iter().copied().zip(ports).collect();
    let body =
        format!("tgrp = \"TG-1\"\ntrunk_context = \"example.com\"\n{health}\n[trunk.outbound]\nprefixes = [\"+1\"]");
    let trunk = support::trunk(lab, "cloud", &peers, &body);
    support::start(support::config(lab, "", caller, &trunk, "")).await
}

/// Where a peer whose callee must never be reached sends its calls (the discard port).
const DISCARD: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

/// A caller and a callee on loopback UDP.
async fn caller_and_callee() -> (UdpSocket, UdpSocket) {
    (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap())
}

fn port_of(e: &Edge) -> u16 {
    e.local_addr("trunk").unwrap().port()
}

/// Drains events already published (bounded) into a list.
async fn drain(rx: &mut tokio::sync::broadcast::Receiver<EdgeEvent>) -> Vec<EdgeEvent> {
    let mut out = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        out.push(e);
    }
    out
}

fn sent_invites_to(events: &[EdgeEvent], host: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, EdgeEvent::Trace(t) if !t.inbound && t.summary.starts_with("INVITE ") && t.summary.contains(&format!("@{host}:"))))
        .count()
}

/// lb01 has nothing listening: the connect fails and the call completes through lb02 (S3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_peer_down_call_completes_via_the_second() {
    let lab = lab();
    let (caller, callee) = caller_and_callee().await;
    let lb02 = cloud(&lab, PEERS[1], callee.local_addr().unwrap(), false).await;
    let lb03 = cloud(&lab, PEERS[2], DISCARD, false).await;
    let edge = ours(
        &lab,
        [free_port().unwrap(), port_of(&lb02), port_of(&lb03)],
        caller.local_addr().unwrap(),
        "options_interval_s = 0",
    )
    .await;
    let mut events = edge.subscribe();
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report =
        ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert_eq!(report.bye_status, Some(200), "{report:?}");
    assert_eq!(answer.await.unwrap().unwrap(), 1, "the callee behind lb02 took the call");
    let ended = support::wait_event(&mut events, support::WAIT, |e| matches!(e, EdgeEvent::CallEnded(_))).await;
    let Some(EdgeEvent::CallEnded(rec)) = ended else { panic!("no call record") };
    assert_eq!((rec.direction, rec.result, rec.status), ("outbound", "completed", 200), "{rec:?}");
    let rest = drain(&mut events).await;
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, EdgeEvent::TlsUp { info, inbound: false } if info.sni.as_deref() != Some(PEERS[1]))),
        "only lb02 was connected: {rest:?}"
    );
    edge.shutdown().await;
    lb02.shutdown().await;
    lb03.shutdown().await;
}

/// lb01 down, lb02 answers 503: the INVITE goes on to lb03 and the call completes there; the
/// caller never sees the 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_then_503_call_completes_via_the_third() {
    let lab = lab();
    let (caller, callee) = caller_and_callee().await;
    let lb02 = cloud(&lab, PEERS[1], DISCARD, true).await;
    let lb03 = cloud(&lab, PEERS[2], callee.local_addr().unwrap(), false).await;
    let mut lb02_events = lb02.subscribe();
    let edge = ours(
        &lab,
        [free_port().unwrap(), port_of(&lb02), port_of(&lb03)],
        caller.local_addr().unwrap(),
        "options_interval_s = 0",
    )
    .await;
    let mut events = edge.subscribe();
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report =
        ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert!(!report.invite_statuses.contains(&503), "{report:?}");
    assert_eq!(report.bye_status, Some(200));
    assert_eq!(answer.await.unwrap().unwrap(), 1, "the callee behind lb03 took the call");
    let refused = support::wait_event(
        &mut lb02_events,
        support::WAIT,
        |e| matches!(e, EdgeEvent::Trace(t) if !t.inbound && t.summary.starts_with("SIP/2.0 503")),
    )
    .await;
    assert!(refused.is_some(), "lb02 answered the INVITE with 503");
    let evs = drain(&mut events).await;
    assert_eq!(sent_invites_to(&evs, PEERS[1]), 1, "one INVITE to lb02");
    assert_eq!(sent_invites_to(&evs, PEERS[2]), 1, "then one to lb03");
    edge.shutdown().await;
    lb02.shutdown().await;
    lb03.shutdown().await;
}

/// Every peer down: the inside caller gets 503 with Retry-After (issue 7), after the edge tried
/// all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_peers_down_caller_gets_503_with_retry_after() {
    let lab = lab();
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ports = [free_port().unwrap(), free_port().unwrap(), free_port().unwrap()];
    let edge = ours(&lab, ports, caller.local_addr().unwrap(), "options_interval_s = 0").await;
    let mut events = edge.subscribe();
    let inside = edge.local_addr("inside").unwrap();
    let local = caller.local_addr().unwrap().to_string();
    let ruri = format!("sip:+13175551212@{inside}");
    caller.send_to(&support::invite(&ruri, "all-down-1", "UDP", &local), inside).await.unwrap();
    let mut finals = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while finals.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok((n, _))) = tokio::time::timeout(left, caller.recv_from(&mut buf)).await else {
            panic!("no final answer to the INVITE")
        };
        if let Some(r) = support::parse_resp(&buf[..n]) {
            if r.status >= 200 {
                finals.push(r);
            }
        }
    }
    let r = &finals[0];
    caller
        .send_to(&support::ack_for(&ruri, "all-down-1", "UDP", &local, r.header("To").unwrap()), inside)
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.raw);
    let retry = r.header("Retry-After").unwrap_or_else(|| panic!("503 without Retry-After:\n{}", r.raw));
    assert!(retry.trim().parse::<u32>().is_ok(), "Retry-After {retry:?}");
    let evs = drain(&mut events).await;
    for p in PEERS {
        assert_eq!(sent_invites_to(&evs, p), 1, "{p} was tried once");
    }
    edge.shutdown().await;
}

/// OPTIONS pings every second; lb01 (nothing listening) is reported down after `down_after` = 2
/// failures while lb02 stays up, and the next call skips lb01 entirely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_pings_mark_a_dead_peer_down_and_calls_skip_it() {
    let lab = lab();
    let (caller, callee) = caller_and_callee().await;
    let lb02 = cloud(&lab, PEERS[1], callee.local_addr().unwrap(), false).await;
    let lb03 = cloud(&lab, PEERS[2], DISCARD, false).await;
    let edge = ours(
        &lab,
        [free_port().unwrap(), port_of(&lb02), port_of(&lb03)],
        caller.local_addr().unwrap(),
        "options_interval_s = 1\ndown_after = 2",
    )
    .await;
    let mut events = edge.subscribe();
    let mut seen = Vec::new();
    let down = support::wait_event(&mut events, Duration::from_secs(30), |e| {
        seen.push(e.clone());
        matches!(e, EdgeEvent::PeerHealth { .. })
    })
    .await;
    let Some(EdgeEvent::PeerHealth { trunk, peer, up }) = down else { panic!("no PeerHealth event") };
    assert_eq!((trunk.as_str(), up), ("cloud", false), "{peer}");
    assert!(peer.starts_with("lb01.test:"), "the dead peer went down first: {peer}");
    // The live peers answered their pings (any answer counts).
    assert!(
        seen.iter().any(|e| matches!(e, EdgeEvent::Trace(t) if t.inbound && t.summary.starts_with("SIP/2.0 200"))),
        "a ping was answered 200"
    );
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report =
        ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert_eq!(answer.await.unwrap().unwrap(), 1);
    let evs = drain(&mut events).await;
    assert_eq!(sent_invites_to(&evs, PEERS[0]), 0, "the down peer is skipped: {evs:?}");
    assert_eq!(sent_invites_to(&evs, PEERS[1]), 1);
    assert!(
        !evs.iter().any(|e| matches!(e, EdgeEvent::PeerHealth { peer, .. } if !peer.starts_with("lb01"))),
        "no other peer changed state: {evs:?}"
    );
    edge.shutdown().await;
    lb02.shutdown().await;
    lb03.shutdown().await;
}

/// lb01 completes the TLS handshake but never answers the INVITE (`openssl s_server` holding
/// the connection): after `invite_timeout_ms` the edge fails over to lb02 and the call completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_invite_times_out_and_fails_over() {
    let lab = lab();
    let hole = trunkgate_testkit::SServer::start(&trunkgate_testkit::SServerOptions {
        cert: lab.chain(PEERS[0]),
        key: lab.key(PEERS[0]),
        chain: Some(lab.chain(PEERS[0])),
        args: vec!["-quiet".into()],
    })
    .expect("openssl s_server (Debian openssl)");
    let (caller, callee) = caller_and_callee().await;
    let lb02 = cloud(&lab, PEERS[1], callee.local_addr().unwrap(), false).await;
    let edge = ours(
        &lab,
        [hole.addr.port(), port_of(&lb02), free_port().unwrap()],
        caller.local_addr().unwrap(),
        "options_interval_s = 0\ninvite_timeout_ms = 1000",
    )
    .await;
    let mut events = edge.subscribe();
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report =
        ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert_eq!(report.bye_status, Some(200));
    assert_eq!(answer.await.unwrap().unwrap(), 1);
    let evs = drain(&mut events).await;
    let ups: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::TlsUp { info, inbound: false } => info.sni.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(ups, vec![PEERS[0].to_string(), PEERS[1].to_string()], "TLS to lb01 (silent), then lb02");
    assert_eq!(sent_invites_to(&evs, PEERS[0]), 1, "{evs:?}");
    assert_eq!(sent_invites_to(&evs, PEERS[1]), 1);
    edge.shutdown().await;
    lb02.shutdown().await;
}

/// lb01's address answers with a certificate for another name (same CA): the handshake fails
/// the name check (T7), the failure is reported, and the call completes via lb02.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificate_name_fails_over() {
    let lab = lab();
    let (caller, callee) = caller_and_callee().await;
    let impostor = cloud(&lab, "impostor.test", DISCARD, false).await;
    let mut impostor_events = impostor.subscribe();
    let lb02 = cloud(&lab, PEERS[1], callee.local_addr().unwrap(), false).await;
    let edge = ours(
        &lab,
        [port_of(&impostor), port_of(&lb02), free_port().unwrap()],
        caller.local_addr().unwrap(),
        "options_interval_s = 0",
    )
    .await;
    let mut events = edge.subscribe();
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report =
        ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert_eq!(answer.await.unwrap().unwrap(), 1);
    let evs = drain(&mut events).await;
    let failed: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::TlsFailed { peer, reason } => Some((peer.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0.starts_with(PEERS[0]), "{failed:?}");
    assert_eq!(sent_invites_to(&evs, PEERS[1]), 1);
    // Nothing reached the impostor's SIP layer.
    let leaked = support::wait_event(
        &mut impostor_events,
        Duration::from_millis(300),
        |e| matches!(e, EdgeEvent::Trace(t) if t.inbound),
    )
    .await;
    assert!(leaked.is_none(), "the impostor received SIP: {leaked:?}");
    edge.shutdown().await;
    lb02.shutdown().await;
    impostor.shutdown().await;
}

/// A callee that answers every INVITE 486 Busy Here (and absorbs the ACK).
async fn busy_callee(sock: UdpSocket) -> usize {
    use trunkgate_sip::{parse_datagram, response_to, Limits, Method};
    let mut buf = vec![0u8; 65536];
    let mut invites = 0;
    while let Ok(Ok((n, from))) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf)).await {
        let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) else { continue };
        if m.method() == Some(&Method::Invite) {
            invites += 1;
            sock.send_to(&response_to(&m, 486, "Busy Here", Some("busy")).to_bytes(), from).await.unwrap();
        }
    }
    invites
}

/// A definitive answer is not a reason to fail over (S3 fails over on connect/handshake
/// failure, 503, 408/timeout): lb01's 486 reaches the caller and lb02 never sees the INVITE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_is_relayed_not_failed_over() {
    let lab = lab();
    let (caller, busy) = (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let lb01 = cloud(&lab, PEERS[0], busy.local_addr().unwrap(), false).await;
    let lb02 = cloud(&lab, PEERS[1], DISCARD, false).await;
    let mut lb02_events = lb02.subscribe();
    let edge = ours(
        &lab,
        [port_of(&lb01), port_of(&lb02), free_port().unwrap()],
        caller.local_addr().unwrap(),
        "options_interval_s = 0",
    )
    .await;
    let mut events = edge.subscribe();
    let busy = tokio::spawn(busy_callee(busy));
    let report =
        ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&486), "{report:?}");
    let ended = support::wait_event(&mut events, support::WAIT, |e| matches!(e, EdgeEvent::CallEnded(_))).await;
    let Some(EdgeEvent::CallEnded(rec)) = ended else { panic!("no call record") };
    assert_eq!((rec.status, rec.result), (486, "failed"), "{rec:?}");
    let evs = drain(&mut events).await;
    assert_eq!(sent_invites_to(&evs, PEERS[1]), 0, "no failover on 486: {evs:?}");
    let at_lb02 = support::wait_event(
        &mut lb02_events,
        Duration::from_millis(300),
        |e| matches!(e, EdgeEvent::Trace(t) if t.inbound && t.summary.starts_with("INVITE ")),
    )
    .await;
    assert!(at_lb02.is_none(), "lb02 received an INVITE");
    assert_eq!(busy.await.unwrap(), 1, "one INVITE reached the busy callee");
    edge.shutdown().await;
    lb01.shutdown().await;
    lb02.shutdown().await;
}

/// What lb01 does with the INVITE in [`failover_from_a_slow_lb01`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lb01 {
    /// Says nothing; answers 200 once lb02 has the INVITE (after the edge failed over).
    LateAnswer,
    /// Answers 100 Trying at once, then nothing (answers CANCEL 200 + INVITE 487 if it comes).
    TryingThenSilent,
}

/// A trunk lb01 (a TLS SIP peer of this test) + lb02 (a cloud-side edge with the callee),
/// `invite_timeout_ms` = 1000: an inside call fails over from lb01 to lb02 and completes; returns
/// what lb01 received (start lines) and whether it sent its late 200.
async fn failover_from_a_slow_lb01(mode: Lb01) -> (bool, Vec<String>) {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use trunkgate_edge::demo::ua;
    use trunkgate_edge::EdgeEvent;
    use trunkgate_sip::{parse_stream_message, response_to, Frame, Limits, Method, StreamFramer};

    let lab = Lab::new(&[support::EDGE, "lb01.test", "lb02.test"]).unwrap();
    let (caller, callee) = caller_and_callee().await;
    let cloud_trunk = support::trunk(
        &lab,
        "customer",
        &[],
        "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"\ntrunk_context = \"example.com\"",
    );
    let lb02 =
        support::start(support::config_for(&lab, "lb02.test", "", callee.local_addr().unwrap(), &cloud_trunk, ""))
            .await;
    let mut lb02_events = lb02.subscribe();
    // lb01 learns that the edge failed over when lb02 receives the INVITE (order, not time).
    let go = Arc::new(tokio::sync::Notify::new());
    tokio::spawn({
        let go = go.clone();
        async move {
            let got = support::wait_event(
                &mut lb02_events,
                support::WAIT,
                |e| matches!(e, EdgeEvent::Trace(t) if t.inbound && t.summary.starts_with("INVITE ")),
            )
            .await;
            if got.is_some() {
                go.notify_one();
            }
        }
    });
    let tls_peer = support::TlsPeer::bind(&lab, "lb01.test").await;
    let lb01_port = tls_peer.port;
    let peer = tokio::spawn(async move {
        let mut s = tls_peer.accept().await;
        let mut framer = StreamFramer::new(Limits::default());
        let (mut seen, mut invite): (Vec<String>, Option<Vec<u8>>) = (Vec::new(), None);
        let mut buf = vec![0u8; 65536];
        let mut answered = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let done = |seen: &[String]| match mode {
            Lb01::LateAnswer => seen.iter().any(|m| m.starts_with("BYE ")),
            Lb01::TryingThenSilent => seen.iter().any(|m| m.starts_with("ACK ")),
        };
        while !done(&seen) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::select! {
                r = s.read(&mut buf) => {
                    let n = match r { Ok(0) | Err(_) => break, Ok(n) => n };
                    framer.push(&buf[..n]);
                    while let Ok(Some(Frame::Message(m))) = framer.next_frame() {
                        let msg = parse_stream_message(&m, &Limits::default()).unwrap();
                        seen.push(String::from_utf8_lossy(&m).lines().next().unwrap_or("").to_string());
                        let mut out = Vec::new();
                        match msg.method() {
                            Some(Method::Invite) => {
                                invite = Some(m.clone());
                                if mode == Lb01::TryingThenSilent {
                                    out.push(response_to(&msg, 100, "Trying", None).to_bytes());
                                }
                            }
                            Some(Method::Bye) => out.push(response_to(&msg, 200, "OK", None).to_bytes()),
                            Some(Method::Cancel) => {
                                out.push(response_to(&msg, 200, "OK", None).to_bytes());
                                if let Some(inv) = &invite {
                                    let inv = parse_stream_message(inv, &Limits::default()).unwrap();
                                    out.push(response_to(&inv, 487, "Request Terminated", Some("t487")).to_bytes());
                                }
                            }
                            _ => {}
                        }
                        for o in out {
                            s.write_all(&o).await.unwrap();
                        }
                    }
                }
                _ = go.notified(), if !answered && mode == Lb01::LateAnswer => {
                    answered = true;
                    let inv = invite.clone().expect("lb01 got the INVITE first");
                    let msg = parse_stream_message(&inv, &Limits::default()).unwrap();
                    let mut ok = response_to(&msg, 200, "OK", Some("late01"))
                        .with("Contact", format!("<sip:late@lb01.test:{lb01_port};transport=tls>"));
                    ok.set_body("application/sdp", support::sdp_answer_for(msg.body, 40_010).into_bytes());
                    s.write_all(&ok.to_bytes()).await.unwrap();
                }
                _ = tokio::time::sleep(left) => break,
            }
        }
        (answered, seen)
    });
    let trunk = support::trunk(
        &lab,
        "cloud",
        &[("lb01.test", lb01_port), ("lb02.test", lb02.local_addr("trunk").unwrap().port())],
        "tgrp = \"TG-1\"\ntrunk_context = \"example.com\"\noptions_interval_s = 0\ninvite_timeout_ms = 1000\n\
         [trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let edge = support::start(support::config(&lab, "", caller.local_addr().unwrap(), &trunk, "")).await;
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report = ua::call(&caller, edge.local_addr("inside").unwrap(), "+13175551212", Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "the call completed via lb02: {report:?}");
    assert_eq!(answer.await.unwrap().unwrap(), 1);
    let out = peer.await.unwrap();
    edge.shutdown().await;
    lb02.shutdown().await;
    out
}

/// A late 2xx from a peer the edge failed over from must be ACKed and then hung up (RFC 3261
/// §13.2.2.4: "the UAC core MUST generate an ACK request for each 2xx … and then, if it doesn't
/// want to continue with that dialog, send a BYE"); otherwise lb01 holds a ghost call until its
/// own 2xx retransmissions time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_2xx_from_an_abandoned_peer_is_acked_and_hung_up() {
    let (answered, seen) = failover_from_a_slow_lb01(Lb01::LateAnswer).await;
    assert!(answered, "lb01 got to send its late 200");
    let acks = seen.iter().filter(|m| m.starts_with("ACK ")).count();
    let byes = seen.iter().filter(|m| m.starts_with("BYE ")).count();
    assert!(acks == 1 && byes == 1, "lb01's late 200 must be ACKed and then BYEd; lb01 saw {seen:?}");
}

/// A peer that said 100 Trying and then nothing: when the edge fails over on
/// `invite_timeout_ms`, it must CANCEL the INVITE it abandons (RFC 3261 §9.1: the pending
/// INVITE is still alive at lb01, which could go on to ring and answer), and ACK the 487.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_invite_with_a_provisional_is_cancelled_on_failover() {
    let (_, seen) = failover_from_a_slow_lb01(Lb01::TryingThenSilent).await;
    assert!(
        seen.iter().any(|m| m.starts_with("CANCEL ")),
        "the INVITE to lb01 was abandoned without a CANCEL; lb01 saw {seen:?}"
    );
    assert!(seen.iter().any(|m| m.starts_with("ACK ")), "the 487 was not ACKed; lb01 saw {seen:?}");
}
