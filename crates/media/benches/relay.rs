//! Packets per second through the sans-IO relay core (no sockets), one core, 172-byte RTP
//! packets (12-byte header + 160 bytes of G.711, 20 ms): plain RTP → SRTP (protect) and
//! SRTP → plain RTP (unprotect with replay check), for AES_CM_128_HMAC_SHA1_80 and
//! AEAD_AES_128_GCM. Goal (issue 8): at least 1,000,000 packets/s per core.
//!
//! `cargo bench -p trunkgate-media --bench relay`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trunkgate_media::{CryptoSuite, LatchMode, LegId, LegParams, Outcome, PacketKind, RelayCore, SrtpKey, SrtpParams};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PBX: u16 = 5000;
const CARRIER: u16 = 6000;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    assert_eq!(p.len(), 172);
    p
}

fn profile(s: CryptoSuite) -> ProtectionProfile {
    match s {
        CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        _ => ProtectionProfile::Aes128CmHmacSha1_80,
    }
}

fn core(suite: CryptoSuite, rx: &SrtpKey, tx: &SrtpKey) -> RelayCore {
    let p = |k: &SrtpKey| SrtpParams { suite, key: k.clone(), lifetime: None, replay_window: 128 };
    let a = LegParams { peer_rtp: Some(addr(PBX)), peer_rtcp: Some(addr(PBX + 1)), rx: None, tx: None };
    let b = LegParams {
        peer_rtp: Some(addr(CARRIER)),
        peer_rtcp: Some(addr(CARRIER + 1)),
        rx: Some(p(rx)),
        tx: Some(p(tx)),
    };
    RelayCore::new(LatchMode::ExpectedPeer, &a, &b).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay_172B");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(4));
    for suite in [CryptoSuite::AesCm128HmacSha1_80, CryptoSuite::AeadAes128Gcm] {
        let rx = SrtpKey::generate(suite).unwrap();
        let tx = SrtpKey::generate(suite).unwrap();
        g.bench_function(format!("rtp_to_srtp/{suite}"), |bch| {
            let mut relay = core(suite, &rx, &tx);
            let pkts: Vec<Vec<u8>> = (0..=u16::MAX).map(packet).collect();
            let mut i = 0usize;
            let now = Instant::now();
            bch.iter(|| {
                let o = relay.handle(LegId::A, PacketKind::Rtp, addr(PBX), &pkts[i & 0xffff], now);
                i += 1;
                assert!(matches!(o, Outcome::Forward { .. }));
                o
            })
        });
        // The crypto alone (webrtc-srtp protecting the same packets), for the relay's overhead.
        g.bench_function(format!("crypto_only_protect/{suite}"), |bch| {
            let mut ctx = Context::new(tx.key(), tx.salt(), profile(suite), None, None).unwrap();
            let pkts: Vec<Vec<u8>> = (0..=u16::MAX).map(packet).collect();
            let mut i = 0usize;
            bch.iter(|| {
                let o = ctx.encrypt_rtp(&pkts[i & 0xffff]).unwrap();
                i += 1;
                o
            })
        });
        g.bench_function(format!("srtp_to_rtp/{suite}"), |bch| {
            bch.iter_custom(|iters| {
                // Fresh relay and peer per sample; encrypt outside the timed loop, in order, so
                // every packet passes the replay check.
                let mut relay = core(suite, &rx, &tx);
                let mut peer = Context::new(rx.key(), rx.salt(), profile(suite), None, None).unwrap();
                let pkts: Vec<_> = (0..iters).map(|n| peer.encrypt_rtp(&packet(n as u16)).unwrap()).collect();
                let start = Instant::now();
                for p in &pkts {
                    let o = relay.handle(LegId::B, PacketKind::Rtp, addr(CARRIER), p, start);
                    assert!(matches!(o, Outcome::Forward { .. }));
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
