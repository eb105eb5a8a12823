//! The sans-IO relay core on a made-up clock: latching modes, key lifetimes (RFC 4568 §6.1),
//! malformed input, unknown destinations, re-INVITE updates. No sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use trunkgate_media::{
    CryptoSuite, DropReason, LatchMode, LegId, LegParams, Outcome, PacketKind, RelayCore, SrtpKey, SrtpParams,
};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn params(key: &SrtpKey, lifetime: Option<u64>) -> SrtpParams {
    SrtpParams { suite: CryptoSuite::AesCm128HmacSha1_80, key: key.clone(), lifetime, replay_window: 64 }
}

fn plain(p: u16) -> LegParams {
    LegParams { peer_rtp: Some(addr(p)), peer_rtcp: Some(addr(p + 1)), rx: None, tx: None }
}

#[test]
fn tx_key_lifetime_is_honoured() {
    let key = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    let rx_key = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    let b = LegParams { rx: Some(params(&rx_key, None)), tx: Some(params(&key, Some(3))), ..plain(6000) };
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &b).unwrap();
    let now = Instant::now();
    let mut out = Vec::new();
    for seq in 0..5 {
        out.push(core.handle(LegId::A, PacketKind::Rtp, addr(5000), &rtp(seq), now));
    }
    assert!(out[..3].iter().all(|o| matches!(o, Outcome::Forward { leg: LegId::B, to, .. } if *to == addr(6000))));
    assert_eq!(out[3], Outcome::Dropped(DropReason::KeyExpired));
    assert_eq!(out[4], Outcome::Dropped(DropReason::KeyExpired));
    assert_eq!(core.stats(LegId::B).rtp_out_packets, 3);
    assert_eq!(core.stats(LegId::A).dropped, 2);
    // A re-INVITE brings a fresh key: the flow goes on.
    let fresh = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    core.update(LegId::B, &LegParams { tx: Some(params(&fresh, None)), ..b }).unwrap();
    let o = core.handle(LegId::A, PacketKind::Rtp, addr(5000), &rtp(9), now);
    let Outcome::Forward { data, .. } = o else { panic!("{o:?}") };
    let mut peer = Context::new(fresh.key(), fresh.salt(), ProtectionProfile::Aes128CmHmacSha1_80, None, None).unwrap();
    assert_eq!(&peer.decrypt_rtp(&data).unwrap()[..], &rtp(9)[..]);
}

#[test]
fn rx_key_lifetime_is_honoured() {
    let key = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    let b = LegParams { rx: Some(params(&key, Some(2))), ..plain(6000) };
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &b).unwrap();
    let mut peer = Context::new(key.key(), key.salt(), ProtectionProfile::Aes128CmHmacSha1_80, None, None).unwrap();
    let now = Instant::now();
    let got: Vec<_> = (0..3)
        .map(|s| core.handle(LegId::B, PacketKind::Rtp, addr(6000), &peer.encrypt_rtp(&rtp(s)).unwrap(), now))
        .collect();
    assert!(matches!(got[0], Outcome::Forward { .. }) && matches!(got[1], Outcome::Forward { .. }));
    assert_eq!(got[2], Outcome::Dropped(DropReason::KeyExpired));
}

#[test]
fn latch_modes_and_malformed_and_unknown_destination() {
    let now = Instant::now();
    // Peer B unknown (no SDP yet): nowhere to send.
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &LegParams::default()).unwrap();
    assert_eq!(
        core.handle(LegId::A, PacketKind::Rtp, addr(5000), &rtp(1), now),
        Outcome::Dropped(DropReason::NoDestination)
    );
    // Not RTP version 2, too short.
    let mut v1 = rtp(2);
    v1[0] = 0x40;
    assert_eq!(core.handle(LegId::A, PacketKind::Rtp, addr(5000), &v1, now), Outcome::Dropped(DropReason::Malformed));
    assert_eq!(
        core.handle(LegId::A, PacketKind::Rtcp, addr(5001), &[0x80, 200], now),
        Outcome::Dropped(DropReason::Malformed)
    );
    // Expected peer: another IP is refused before latching.
    let other_ip = SocketAddr::from(([127, 0, 0, 2], 5000));
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &plain(6000)).unwrap();
    assert_eq!(
        core.handle(LegId::A, PacketKind::Rtp, other_ip, &rtp(1), now),
        Outcome::Dropped(DropReason::UnexpectedSource)
    );
    assert_eq!(core.latched(LegId::A, PacketKind::Rtp), None);
    // Any source: the first one latches, whatever the SDP said.
    let mut core = RelayCore::new(LatchMode::AnySource, &plain(5000), &plain(6000)).unwrap();
    assert!(matches!(core.handle(LegId::A, PacketKind::Rtp, other_ip, &rtp(1), now), Outcome::Forward { .. }));
    assert_eq!(core.latched(LegId::A, PacketKind::Rtp), Some(other_ip));
    assert_eq!(
        core.handle(LegId::A, PacketKind::Rtp, addr(5000), &rtp(2), now),
        Outcome::Dropped(DropReason::UnexpectedSource)
    );
    // B → A goes to the latched address; the last packet instant follows the clock.
    let later = now + Duration::from_secs(7);
    let o = core.handle(LegId::B, PacketKind::Rtp, addr(6000), &rtp(3), later);
    assert!(matches!(o, Outcome::Forward { leg: LegId::A, to, .. } if to == other_ip), "{o:?}");
    assert_eq!(core.last_packet(LegId::B), Some(later));
    assert_eq!(core.last_packet(LegId::A), Some(now));
    // Short SRTP/SRTCP never reach the SRTP engine (its index lookup would slice out of range).
    let key = SrtpKey::generate(CryptoSuite::AeadAes128Gcm).unwrap();
    let p = SrtpParams { suite: CryptoSuite::AeadAes128Gcm, key, lifetime: None, replay_window: 64 };
    let b = LegParams { rx: Some(p), ..plain(6000) };
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &b).unwrap();
    for len in 8..28 {
        let mut d = vec![0u8; len];
        d[0] = 0x80;
        d[1] = 200;
        assert_eq!(
            core.handle(LegId::B, PacketKind::Rtcp, addr(6001), &d, now),
            Outcome::Dropped(DropReason::Malformed)
        );
    }
    // Garbage of the right size fails authentication.
    let mut d = vec![0x55u8; 40];
    d[0] = 0x80;
    d[1] = 200;
    assert_eq!(core.handle(LegId::B, PacketKind::Rtcp, addr(6001), &d, now), Outcome::Dropped(DropReason::AuthFailed));
    assert_eq!(core.stats(LegId::B).auth_failures, 1);
}

#[test]
fn update_with_the_same_key_keeps_srtp_state_and_a_failed_update_changes_nothing() {
    let key = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    let b = LegParams { rx: Some(params(&key, None)), ..plain(6000) };
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &b).unwrap();
    let mut peer = Context::new(key.key(), key.salt(), ProtectionProfile::Aes128CmHmacSha1_80, None, None).unwrap();
    let now = Instant::now();
    let p5 = peer.encrypt_rtp(&rtp(5)).unwrap();
    assert!(matches!(core.handle(LegId::B, PacketKind::Rtp, addr(6000), &p5, now), Outcome::Forward { .. }));
    // Re-INVITE keeping the key (RFC 4568 §7.1.4): replay state (and rollover counter) kept.
    core.update(LegId::B, &b).unwrap();
    assert_eq!(core.handle(LegId::B, PacketKind::Rtp, addr(6000), &p5, now), Outcome::Dropped(DropReason::Replay));
    // An update the relay cannot run is refused and the leg keeps working as before.
    let k256 = SrtpKey::generate(CryptoSuite::AeadAes256Gcm).unwrap();
    let bad = SrtpParams { suite: CryptoSuite::AeadAes256Gcm, key: k256, lifetime: None, replay_window: 64 };
    assert!(core.update(LegId::B, &LegParams { rx: Some(bad), ..plain(6000) }).is_err());
    let p6 = peer.encrypt_rtp(&rtp(6)).unwrap();
    assert!(matches!(core.handle(LegId::B, PacketKind::Rtp, addr(6000), &p6, now), Outcome::Forward { .. }));
    // A new key: packets under the old one fail authentication.
    let k2 = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    core.update(LegId::B, &LegParams { rx: Some(params(&k2, None)), ..plain(6000) }).unwrap();
    let p7 = peer.encrypt_rtp(&rtp(7)).unwrap();
    assert_eq!(core.handle(LegId::B, PacketKind::Rtp, addr(6000), &p7, now), Outcome::Dropped(DropReason::AuthFailed));
}

/// Found by the property test below: webrtc-srtp 0.15 returns an AES-CM SRTCP packet whose E
/// flag is clear without checking its tag, so plain RTCP (here baresip's RTCP BYE, sent in clear
/// at hangup) would have crossed into the inside unauthenticated. The relay refuses it.
#[test]
fn plain_rtcp_on_an_srtp_leg_is_refused_as_unauthenticated() {
    let bye: [u8; 48] = [
        0x81, 0xcb, 0x00, 0x03, 0xa6, 0x94, 0xf8, 0x7d, 0x04, 0x41, 0x64, 0x6a, 0x6f, 0x00, 0x00, 0x00, 0x81, 0xca,
        0x00, 0x07, 0xa6, 0x94, 0xf8, 0x7d, 0x01, 0x15, 0x73, 0x69, 0x70, 0x3a, 0x62, 0x40, 0x31, 0x32, 0x37, 0x2e,
        0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x35, 0x37, 0x30, 0x31, 0x38, 0x00,
    ];
    let key = SrtpKey::generate(CryptoSuite::AesCm128HmacSha1_80).unwrap();
    let b = LegParams { rx: Some(params(&key, None)), ..plain(6000) };
    let mut core = RelayCore::new(LatchMode::ExpectedPeer, &plain(5000), &b).unwrap();
    let o = core.handle(LegId::B, PacketKind::Rtcp, addr(6001), &bye, Instant::now());
    assert_eq!(o, Outcome::Dropped(DropReason::AuthFailed));
    // A genuine SRTCP packet under the same key still passes.
    let mut peer = Context::new(key.key(), key.salt(), ProtectionProfile::Aes128CmHmacSha1_80, None, None).unwrap();
    let srtcp = peer.encrypt_rtcp(&bye).unwrap();
    let o = core.handle(LegId::B, PacketKind::Rtcp, addr(6001), &srtcp, Instant::now());
    assert!(matches!(&o, Outcome::Forward { data, .. } if data[..] == bye[..]), "{o:?}");
}

mod random_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever arrives from the network, the core answers without panicking, and nothing
        /// that fails authentication is forwarded from an SRTP leg.
        #[test]
        fn random_datagrams_never_panic_and_unauthenticated_ones_are_dropped(
            data in prop::collection::vec(any::<u8>(), 0..300),
            v2 in any::<bool>(),
            gcm in any::<bool>(),
            rtcp in any::<bool>(),
        ) {
            let suite = if gcm { CryptoSuite::AeadAes128Gcm } else { CryptoSuite::AesCm128HmacSha1_80 };
            let key = SrtpKey::generate(suite).unwrap();
            let p = SrtpParams { suite, key, lifetime: None, replay_window: 64 };
            let b = LegParams { rx: Some(p.clone()), tx: Some(p), ..plain(6000) };
            let mut core = RelayCore::new(LatchMode::AnySource, &plain(5000), &b).unwrap();
            let mut d = data;
            if v2 && !d.is_empty() {
                d[0] = 0x80 | (d[0] & 0x3f);
            }
            let kind = if rtcp { PacketKind::Rtcp } else { PacketKind::Rtp };
            let o = core.handle(LegId::B, kind, addr(6000 + u16::from(rtcp)), &d, Instant::now());
            prop_assert!(matches!(o, Outcome::Dropped(_)), "{:?}", o);
            // Plain leg A: anything RTP-shaped is protected and sent on.
            let o = core.handle(LegId::A, kind, addr(5000 + u16::from(rtcp)), &d, Instant::now());
            if let Outcome::Forward { data, .. } = o {
                prop_assert!(data.len() > d.len());
            }
        }
    }
}
