//! The relay on loopback with real UDP sockets (SPEC M2): a plain RTP "PBX" on leg A, an SRTP
//! "carrier" on leg B that uses the keys the edge put in its SDP; auth failures and replays
//! injected by the test are dropped and counted; RTCP both ways; ports return to the pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use trunkgate_media::{
    CryptoAttr, CryptoSuite, LatchMode, LegConfig, LegId, LegSecurity, MediaConfig, MediaManager, Sdp, SrtpKey,
    SrtpPolicy,
};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(3);

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RTCP receiver report without report blocks (RFC 3550 §6.4.2), 8 bytes.
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn plain_offer(port: u16) -> String {
    format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

fn srtp_answer(port: u16, crypto: &CryptoAttr) -> String {
    format!(
        "v=0\r\no=carrier 9 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:{}\r\n",
        crypto.to_sdp_value()
    )
}

fn ctx(c: &CryptoAttr) -> Context {
    let profile = match c.suite {
        CryptoSuite::AeadAes128Gcm => webrtc_srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
        _ => webrtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
    };
    Context::new(
        c.key.key(),
        c.key.salt(),
        profile,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
    )
    .unwrap()
}

async fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = timeout(WAIT, s.recv_from(&mut buf)).await.expect("no datagram within 3 s").unwrap();
    buf[..n].to_vec()
}

struct Call {
    pbx: UdpSocket,
    pbx_rtcp: UdpSocket,
    carrier: UdpSocket,
    carrier_rtcp: UdpSocket,
    edge_a: SocketAddr,
    edge_b: SocketAddr,
    /// Carrier's contexts: decrypt what the edge sends, encrypt what it sends to the edge.
    carrier_rx: Context,
    carrier_tx: Context,
}

async fn even_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let s = UdpSocket::bind((LO, 0)).await.unwrap();
        let p = s.local_addr().unwrap().port();
        if p % 2 == 0 && p < u16::MAX {
            if let Ok(r) = UdpSocket::bind((LO, p + 1)).await {
                return (s, r);
            }
        }
    }
}

async fn setup(mgr: &MediaManager, suite: CryptoSuite) -> (trunkgate_media::MediaSession, Call) {
    let (pbx, pbx_rtcp) = even_pair().await;
    let (carrier, carrier_rtcp) = even_pair().await;
    let policy = SrtpPolicy::new(&[suite]).unwrap();
    let mut s = mgr
        .new_session(
            LegConfig { media_ip: LO, security: LegSecurity::Plain },
            LegConfig { media_ip: LO, security: LegSecurity::Srtp(policy) },
        )
        .unwrap();
    s.offer_from_leg(LegId::A, plain_offer(pbx.local_addr().unwrap().port()).as_bytes()).unwrap();
    let offer_b = Sdp::parse(&s.offer_for_leg(LegId::B).unwrap()).unwrap();
    let m = &offer_b.media[0];
    assert_eq!(m.proto, "RTP/SAVP");
    let edge_b = SocketAddr::new(LO, m.port);
    let edge_key = m.crypto().into_iter().map(Result::unwrap).find(|c| c.suite == suite).unwrap();
    let carrier_key = CryptoAttr {
        tag: edge_key.tag,
        suite,
        key: SrtpKey::generate(suite).unwrap(),
        lifetime: None,
        window_hint: None,
    };
    s.answer_from_leg(LegId::B, srtp_answer(carrier.local_addr().unwrap().port(), &carrier_key).as_bytes()).unwrap();
    let answer_a = Sdp::parse(&s.answer_for_leg(LegId::A).unwrap()).unwrap();
    assert_eq!(answer_a.media[0].proto, "RTP/AVP");
    assert!(answer_a.media[0].crypto().is_empty(), "no key crosses to the plain leg");
    let edge_a = SocketAddr::new(LO, answer_a.media[0].port);
    let call = Call {
        pbx,
        pbx_rtcp,
        carrier,
        carrier_rtcp,
        edge_a,
        edge_b,
        carrier_rx: ctx(&edge_key),
        carrier_tx: ctx(&carrier_key),
    };
    (s, call)
}

fn rtcp_addr(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip(), a.port() + 1)
}

async fn plain_to_srtp_and_back(suite: CryptoSuite) {
    let mgr = MediaManager::new(MediaConfig { port_min: 26000, port_max: 26099, ..MediaConfig::default() }).unwrap();
    let (session, mut c) = setup(&mgr, suite).await;
    let relay = session.start_relay().unwrap();

    // PBX → edge (plain) → carrier (SRTP): the carrier decrypts with the edge's key.
    for seq in 1..=20u16 {
        let payload = vec![seq as u8; 160];
        let sent = rtp(seq, 0x1111, &payload);
        c.pbx.send_to(&sent, c.edge_a).await.unwrap();
        let got = recv(&c.carrier).await;
        assert_ne!(&got[12..], &sent[12..], "payload must not travel in clear on the SRTP leg");
        assert_eq!(&c.carrier_rx.decrypt_rtp(&got).unwrap()[..], &sent[..]);
    }
    // Carrier → edge (SRTP) → PBX (plain).
    let mut last = Vec::new();
    for seq in 100..120u16 {
        let sent = rtp(seq, 0x2222, &[0x55; 160]);
        last = c.carrier_tx.encrypt_rtp(&sent).unwrap().to_vec();
        c.carrier.send_to(&last, c.edge_b).await.unwrap();
        assert_eq!(recv(&c.pbx).await, sent);
    }
    // A replay of the last packet and a tampered packet are dropped and counted.
    c.carrier.send_to(&last, c.edge_b).await.unwrap();
    let mut tampered = c.carrier_tx.encrypt_rtp(&rtp(120, 0x2222, &[0x66; 160])).unwrap().to_vec();
    tampered[20] ^= 0x01;
    c.carrier.send_to(&tampered, c.edge_b).await.unwrap();
    // A later good packet is the next thing the PBX sees: nothing of the two above was forwarded.
    let good = rtp(121, 0x2222, &[0x77; 160]);
    c.carrier.send_to(&c.carrier_tx.encrypt_rtp(&good).unwrap(), c.edge_b).await.unwrap();
    assert_eq!(recv(&c.pbx).await, good);

    // RTCP both ways.
    c.pbx_rtcp.send_to(&rtcp_rr(0x1111), rtcp_addr(c.edge_a)).await.unwrap();
    let srtcp = recv(&c.carrier_rtcp).await;
    assert!(srtcp.len() > 8, "SRTCP adds index and tag");
    assert_eq!(&c.carrier_rx.decrypt_rtcp(&srtcp).unwrap()[..], &rtcp_rr(0x1111)[..]);
    let srtcp_in = c.carrier_tx.encrypt_rtcp(&rtcp_rr(0x2222)).unwrap().to_vec();
    c.carrier_rtcp.send_to(&srtcp_in, rtcp_addr(c.edge_b)).await.unwrap();
    assert_eq!(recv(&c.pbx_rtcp).await, rtcp_rr(0x2222));
    // SRTCP replay and tampering.
    c.carrier_rtcp.send_to(&srtcp_in, rtcp_addr(c.edge_b)).await.unwrap();
    let mut bad = c.carrier_tx.encrypt_rtcp(&rtcp_rr(0x2222)).unwrap().to_vec();
    bad[4] ^= 0x80;
    c.carrier_rtcp.send_to(&bad, rtcp_addr(c.edge_b)).await.unwrap();
    let ok = c.carrier_tx.encrypt_rtcp(&rtcp_rr(0x2222)).unwrap();
    c.carrier_rtcp.send_to(&ok, rtcp_addr(c.edge_b)).await.unwrap();
    assert_eq!(recv(&c.pbx_rtcp).await, rtcp_rr(0x2222));

    let a = relay.stats(LegId::A);
    let b = relay.stats(LegId::B);
    assert_eq!((a.rtp_in_packets, a.rtp_out_packets), (20, 21));
    assert_eq!((b.rtp_in_packets, b.rtp_out_packets), (21, 20));
    assert_eq!((a.rtcp_in_packets, a.rtcp_out_packets, b.rtcp_in_packets, b.rtcp_out_packets), (1, 2, 2, 1));
    assert_eq!((b.replays, b.auth_failures, b.dropped), (2, 2, 4), "{b:?}");
    assert_eq!((a.replays, a.auth_failures, a.dropped), (0, 0, 0));
    assert!(relay.last_packet(LegId::A).is_some() && relay.last_packet(LegId::B).is_some());

    // Stop, drop: the ports return to the pool and can be bound again.
    let stats = relay.stop().await;
    assert_eq!(stats[1].replays, 2);
    assert_eq!(mgr.pool().in_use(), 2);
    drop(session);
    assert_eq!(mgr.pool().in_use(), 0);
    for p in [c.edge_a, c.edge_b] {
        std::net::UdpSocket::bind(p).expect("RTP port free after the call");
        std::net::UdpSocket::bind(rtcp_addr(p)).expect("RTCP port free after the call");
    }
}

#[tokio::test]
async fn aes_cm_128_hmac_sha1_80_both_ways_with_drops() {
    plain_to_srtp_and_back(CryptoSuite::AesCm128HmacSha1_80).await;
}

#[tokio::test]
async fn aead_aes_128_gcm_both_ways_with_drops() {
    plain_to_srtp_and_back(CryptoSuite::AeadAes128Gcm).await;
}

#[tokio::test]
async fn symmetric_rtp_latches_and_drops_other_sources() {
    let mgr = MediaManager::new(MediaConfig {
        port_min: 26100,
        port_max: 26199,
        latch: LatchMode::ExpectedPeer,
        ..MediaConfig::default()
    })
    .unwrap();
    let (session, c) = setup(&mgr, CryptoSuite::AesCm128HmacSha1_80).await;
    let relay = session.start_relay().unwrap();
    // The PBX sends from another port than its SDP said (NAT): same IP, so the relay latches on
    // it and answers there (symmetric RTP), not to the SDP port.
    let natted = UdpSocket::bind((LO, 0)).await.unwrap();
    natted.send_to(&rtp(1, 7, &[1; 160]), c.edge_a).await.unwrap();
    let _ = recv(&c.carrier).await;
    // A second source on the same IP after latching is dropped.
    let intruder = UdpSocket::bind((LO, 0)).await.unwrap();
    intruder.send_to(&rtp(2, 7, &[2; 160]), c.edge_a).await.unwrap();
    natted.send_to(&rtp(3, 7, &[3; 160]), c.edge_a).await.unwrap();
    let mut rx = c.carrier_rx;
    let got = rx.decrypt_rtp(&recv(&c.carrier).await).unwrap();
    assert_eq!(got[12], 3, "the intruder's packet was not forwarded");
    assert_eq!(relay.stats(LegId::A).dropped, 1);
    // Carrier → PBX goes to the latched (NAT) address.
    let mut tx = c.carrier_tx;
    c.carrier.send_to(&tx.encrypt_rtp(&rtp(9, 8, &[9; 160])).unwrap(), c.edge_b).await.unwrap();
    assert_eq!(recv(&natted).await, rtp(9, 8, &[9; 160]));
    // Dropping the handle (no stop) aborts the task; the ports come back once it has unwound.
    drop(relay);
    drop(session);
    timeout(WAIT, async {
        while mgr.pool().in_use() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("ports back in the pool after the aborted relay task ended");
}

#[tokio::test]
async fn ports_are_freed_on_error_paths() {
    let mgr = MediaManager::new(MediaConfig { port_min: 26200, port_max: 26209, ..MediaConfig::default() }).unwrap();
    let policy = SrtpPolicy::default();
    let legs = || {
        (
            LegConfig { media_ip: LO, security: LegSecurity::Plain },
            LegConfig { media_ip: LO, security: LegSecurity::Srtp(policy.clone()) },
        )
    };
    // A failed answer (no crypto → 488) ends the attempt: dropping the session frees the ports.
    {
        let (a, b) = legs();
        let mut s = mgr.new_session(a, b).unwrap();
        s.offer_from_leg(LegId::A, plain_offer(5000).as_bytes()).unwrap();
        s.offer_for_leg(LegId::B).unwrap();
        let err = s.answer_from_leg(LegId::B, plain_offer(6000).as_bytes()).unwrap_err();
        assert_eq!(err.sip_status(), 488);
        assert!(s.start_relay().is_err(), "no relay without negotiated keys");
        assert_eq!(mgr.pool().in_use(), 2);
    }
    assert_eq!(mgr.pool().in_use(), 0);
    // Exhaustion is a typed error (503) and leaks nothing: 5 pairs = 2 sessions + 1 spare pair.
    let (a, b) = legs();
    let s1 = mgr.new_session(a, b).unwrap();
    let (a, b) = legs();
    let s2 = mgr.new_session(a, b).unwrap();
    let (a, b) = legs();
    let err = mgr.new_session(a, b).unwrap_err();
    assert_eq!(err.sip_status(), 503, "{err}");
    assert_eq!(mgr.pool().in_use(), 4, "the half-made session gave its first pair back");
    drop((s1, s2));
    assert_eq!(mgr.pool().in_use(), 0);
}

/// A re-INVITE from the trunk side with new keys (and a new carrier port) keeps the call flowing;
/// the inactivity clock follows the packets.
#[tokio::test]
async fn reinvite_with_new_keys_keeps_the_flow_and_idle_time_follows_packets() {
    let mgr = MediaManager::new(MediaConfig { port_min: 26300, port_max: 26399, ..MediaConfig::default() }).unwrap();
    let (mut session, mut c) = setup(&mgr, CryptoSuite::AesCm128HmacSha1_80).await;
    let relay = session.start_relay().unwrap();
    let t0 = std::time::Instant::now();
    assert!(relay.idle_for(t0 + Duration::from_secs(30)) >= Duration::from_secs(30), "idle from the start");
    c.pbx.send_to(&rtp(1, 1, &[1; 160]), c.edge_a).await.unwrap();
    let first = recv(&c.carrier).await;
    c.carrier_rx.decrypt_rtp(&first).unwrap();
    let seen = relay.last_packet(LegId::A).unwrap();
    assert!(seen >= t0);
    assert_eq!(relay.idle_for(seen + Duration::from_secs(5)), Duration::from_secs(5));

    // Re-INVITE from leg B (the carrier): new port, new key; the edge answers with a new key.
    let (carrier2, _carrier2_rtcp) = even_pair().await;
    let their_new = CryptoAttr {
        tag: 7,
        suite: CryptoSuite::AesCm128HmacSha1_80,
        key: SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap(),
        lifetime: None,
        window_hint: None,
    };
    let reoffer = srtp_answer(carrier2.local_addr().unwrap().port(), &their_new);
    session.offer_from_leg(LegId::B, reoffer.as_bytes()).unwrap();
    let to_pbx = session.offer_for_leg(LegId::A).unwrap();
    let port_a = Sdp::parse(&to_pbx).unwrap().media[0].port;
    assert_eq!(SocketAddr::new(LO, port_a), c.edge_a, "the inside leg keeps its port");
    session.answer_from_leg(LegId::A, plain_offer(c.pbx.local_addr().unwrap().port()).as_bytes()).unwrap();
    let answer = Sdp::parse(&session.answer_for_leg(LegId::B).unwrap()).unwrap();
    let edge_new = answer.media[0].crypto().pop().unwrap().unwrap();
    assert_eq!(edge_new.tag, 7);
    session.update_relay(&relay).unwrap();

    // PBX → carrier now reaches the new port under the new key; carrier → PBX with its new key.
    c.pbx.send_to(&rtp(2, 1, &[2; 160]), c.edge_a).await.unwrap();
    let got = recv(&carrier2).await;
    let mut rx2 = ctx(&edge_new);
    assert_eq!(&rx2.decrypt_rtp(&got).unwrap()[..], &rtp(2, 1, &[2; 160])[..]);
    assert!(c.carrier_rx.decrypt_rtp(&got).is_err(), "the old key no longer applies");
    let mut tx2 = ctx(&their_new);
    carrier2.send_to(&tx2.encrypt_rtp(&rtp(50, 2, &[5; 160])).unwrap(), c.edge_b).await.unwrap();
    assert_eq!(recv(&c.pbx).await, rtp(50, 2, &[5; 160]));
    // The carrier's old key is refused now (authentication fails), even from the latched address.
    carrier2.send_to(&c.carrier_tx.encrypt_rtp(&rtp(51, 2, &[6; 160])).unwrap(), c.edge_b).await.unwrap();
    carrier2.send_to(&tx2.encrypt_rtp(&rtp(52, 2, &[7; 160])).unwrap(), c.edge_b).await.unwrap();
    assert_eq!(recv(&c.pbx).await, rtp(52, 2, &[7; 160]));
    let b = relay.stats(LegId::B);
    assert_eq!((b.auth_failures, b.dropped), (1, 1), "{b:?}");
    relay.stop().await;
}

/// A re-INVITE that the trunk refuses (answer without crypto → 488) leaves the call as it was:
/// the relay goes on with the keys of the last completed exchange.
#[tokio::test]
async fn refused_reinvite_leaves_the_call_as_it_was() {
    let mgr = MediaManager::new(MediaConfig { port_min: 26400, port_max: 26499, ..MediaConfig::default() }).unwrap();
    let (mut session, mut c) = setup(&mgr, CryptoSuite::AesCm128HmacSha1_80).await;
    let relay = session.start_relay().unwrap();
    let before = session.relay_params(LegId::B);
    // The PBX re-offers; the trunk answers in clear: refused with 488.
    let other = UdpSocket::bind((LO, 0)).await.unwrap();
    session.offer_from_leg(LegId::A, plain_offer(other.local_addr().unwrap().port()).as_bytes()).unwrap();
    session.offer_for_leg(LegId::B).unwrap();
    let err = session.answer_from_leg(LegId::B, plain_offer(9).as_bytes()).unwrap_err();
    assert_eq!(err.sip_status(), 488);
    assert!(session.answer_for_leg(LegId::A).is_err(), "no answer to give");
    session.cancel_exchange();
    let after = session.relay_params(LegId::B);
    assert_eq!(after.tx.unwrap().key, before.tx.unwrap().key);
    assert_eq!(session.relay_params(LegId::A).peer_rtp, Some(c.pbx.local_addr().unwrap()));
    session.update_relay(&relay).unwrap();
    // Media still flows both ways under the old keys.
    c.pbx.send_to(&rtp(1, 1, &[1; 160]), c.edge_a).await.unwrap();
    assert_eq!(&c.carrier_rx.decrypt_rtp(&recv(&c.carrier).await).unwrap()[..], &rtp(1, 1, &[1; 160])[..]);
    c.carrier.send_to(&c.carrier_tx.encrypt_rtp(&rtp(2, 2, &[2; 160])).unwrap(), c.edge_b).await.unwrap();
    assert_eq!(recv(&c.pbx).await, rtp(2, 2, &[2; 160]));
    relay.stop().await;
}

/// The edge keeps sessions and relays in its call table across awaits.
#[test]
fn api_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<MediaManager>();
    check::<trunkgate_media::MediaSession>();
    check::<trunkgate_media::RelayHandle>();
    check::<trunkgate_media::MediaError>();
}
