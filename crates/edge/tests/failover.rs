//! Failover across a trunk's peers (SPEC S3; issue 7 "fail over to the next target on connect or
//! handshake failure, 503, or timeout", "503 with Retry-After when a trunk is down", "Peer
//! health"). The trunk has three peers `lb01`–`lb03.test`; the live ones are real edges playing
//! the cloud side over byoc-cloud TLS, each with a UDP callee inside; a dead one is a port
//! nobody listens on; a peer "answering 503" is an edge whose `max_calls` is 0.
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
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let lb02 = cloud(&lab, PEERS[1], callee.local_addr().unwrap(), false).await;
    let lb03 = cloud(&lab, PEERS[2], "127.0.0.1:9".parse().unwrap(), false).await;
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
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let lb02 = cloud(&lab, PEERS[1], "127.0.0.1:9".parse().unwrap(), true).await;
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
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let lb02 = cloud(&lab, PEERS[1], callee.local_addr().unwrap(), false).await;
    let lb03 = cloud(&lab, PEERS[2], "127.0.0.1:9".parse().unwrap(), false).await;
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
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
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
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let impostor = cloud(&lab, "impostor.test", "127.0.0.1:9".parse().unwrap(), false).await;
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
    let lb02 = cloud(&lab, PEERS[1], "127.0.0.1:9".parse().unwrap(), false).await;
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
