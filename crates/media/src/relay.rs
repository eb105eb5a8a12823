//! The sans-IO relay core: one call, two legs. Input: a datagram, the leg and socket (RTP or
//! RTCP) it arrived on, its source and the current instant. Output: where to send what, or why
//! it was dropped. No socket and no clock here (DESIGN convention 1); `runtime` drives it.
//!
//! Per leg the core holds the peer's transport addresses (from SDP, then latched from traffic:
//! symmetric RTP), the SRTP context that removes protection from what the peer sends (`rx`) and
//! the one that protects what the edge sends to it (`tx`), counters and the last packet instant.
//! Packets that fail authentication or the replay check are counted and dropped, never forwarded.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::Error as SrtpError;

use crate::crypto::{CryptoSuite, SrtpKey};
use crate::error::{LegId, MediaError};

/// Which of a leg's two sockets a datagram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP (even port).
    Rtp,
    /// RTCP (RTP port + 1).
    Rtcp,
}

/// How the relay learns a peer's transport address (symmetric RTP, RFC 4961).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatchMode {
    /// Latch on the first packet from the IP address the peer's SDP gave (any port, for NAT);
    /// before the SDP is known, from any address. Packets from elsewhere are dropped.
    #[default]
    ExpectedPeer,
    /// Latch on the first packet from any address.
    AnySource,
}

/// SRTP parameters of one direction of one leg.
#[derive(Debug, Clone)]
pub struct SrtpParams {
    /// The suite.
    pub suite: CryptoSuite,
    /// Master key and salt (`Debug` prints `***`).
    pub key: SrtpKey,
    /// Key lifetime in packets (SRTP and SRTCP together); the key is not used past it.
    pub lifetime: Option<u64>,
    /// Replay window in packets (64 minimum).
    pub replay_window: usize,
}

/// What the relay needs to know about one leg.
#[derive(Debug, Clone, Default)]
pub struct LegParams {
    /// The peer's RTP address from its SDP, when known.
    pub peer_rtp: Option<SocketAddr>,
    /// The peer's RTCP address from its SDP, when known.
    pub peer_rtcp: Option<SocketAddr>,
    /// Protection removed from what the peer sends (`None`: plain RTP).
    pub rx: Option<SrtpParams>,
    /// Protection applied to what the edge sends to the peer (`None`: plain RTP).
    pub tx: Option<SrtpParams>,
}

/// Counters of one leg. "in" is what the leg's peer sent to the edge, "out" what the edge sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    pub rtp_in_packets: u64,
    pub rtp_in_bytes: u64,
    pub rtcp_in_packets: u64,
    pub rtcp_in_bytes: u64,
    pub rtp_out_packets: u64,
    pub rtp_out_bytes: u64,
    pub rtcp_out_packets: u64,
    pub rtcp_out_bytes: u64,
    /// Received packets whose authentication tag did not verify.
    pub auth_failures: u64,
    /// Received packets refused by the replay check.
    pub replays: u64,
    /// Every received packet not forwarded, for any reason (includes the two above).
    pub dropped: u64,
}

/// Why a datagram was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// From an address other than the latched or expected peer.
    UnexpectedSource,
    /// The SRTP/SRTCP authentication tag did not verify.
    AuthFailed,
    /// Already received (or too old for the replay window).
    Replay,
    /// Not an RTP/RTCP packet, or too short.
    Malformed,
    /// The key's lifetime is used up (RFC 4568 §6.1): a re-key (re-INVITE) is needed.
    KeyExpired,
    /// The other leg's peer address is not known yet.
    NoDestination,
    /// Protecting the packet for the other leg failed.
    ProtectFailed,
}

/// The result of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send `data` from leg `leg`'s `kind` socket to `to`.
    Forward { leg: LegId, kind: PacketKind, to: SocketAddr, data: Bytes },
    /// Dropped and counted.
    Dropped(DropReason),
}

struct Engine {
    ctx: Context,
    suite: CryptoSuite,
    key: SrtpKey,
    left: Option<u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("suite", &self.suite).field("left", &self.left).finish()
    }
}

impl Engine {
    fn new(p: &SrtpParams) -> Result<Engine, MediaError> {
        let profile = p.suite.profile().map_err(|e| MediaError::Srtp(e.to_string()))?;
        let window = p.replay_window.clamp(64, 32768);
        let ctx = Context::new(
            p.key.key(),
            p.key.salt(),
            profile,
            Some(webrtc_srtp::option::srtp_replay_protection(window)),
            Some(webrtc_srtp::option::srtcp_replay_protection(window)),
        )
        .map_err(|e| MediaError::Srtp(e.to_string()))?;
        Ok(Engine { ctx, suite: p.suite, key: p.key.clone(), left: p.lifetime })
    }

    fn tag_len(&self) -> usize {
        match self.suite {
            CryptoSuite::AesCm128HmacSha1_32 => 4,
            CryptoSuite::AeadAes128Gcm | CryptoSuite::AeadAes256Gcm => 16,
            _ => 10,
        }
    }

    fn spend(&mut self) -> Result<(), DropReason> {
        match &mut self.left {
            Some(0) => Err(DropReason::KeyExpired),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn unprotect(&mut self, kind: PacketKind, data: &[u8]) -> Result<Bytes, DropReason> {
        // Minimum sizes checked here: the SRTCP index lookup of webrtc-srtp slices without checks.
        let min = match kind {
            PacketKind::Rtp => 12 + self.tag_len(),
            PacketKind::Rtcp => 8 + 4 + self.tag_len(),
        };
        if data.len() < min {
            return Err(DropReason::Malformed);
        }
        if self.left == Some(0) {
            return Err(DropReason::KeyExpired);
        }
        // webrtc-srtp 0.15 returns an AES-CM SRTCP packet whose E flag is clear without checking
        // its tag. SRTCP is always authenticated (RFC 3711 §3.4) and the edge never agrees to
        // UNENCRYPTED_SRTCP, so such a packet is refused here as unauthenticated.
        if kind == PacketKind::Rtcp && !matches!(self.suite, CryptoSuite::AeadAes128Gcm | CryptoSuite::AeadAes256Gcm) {
            let e_flag = data.len().checked_sub(self.tag_len() + 4).and_then(|i| data.get(i));
            if e_flag.is_none_or(|b| b & 0x80 == 0) {
                return Err(DropReason::AuthFailed);
            }
        }
        let r = match kind {
            PacketKind::Rtp => self.ctx.decrypt_rtp(data),
            PacketKind::Rtcp => self.ctx.decrypt_rtcp(data),
        };
        let out = r.map_err(|e| match e {
            SrtpError::SrtpSsrcDuplicated(..) | SrtpError::SrtcpSsrcDuplicated(..) => DropReason::Replay,
            SrtpError::RtpFailedToVerifyAuthTag
            | SrtpError::RtcpFailedToVerifyAuthTag
            | SrtpError::ErrFailedToVerifyAuthTag
            | SrtpError::RtcpInvalidLengthAuthTag(..) => DropReason::AuthFailed,
            // The AEAD crate reports a failed tag as its own opaque error.
            SrtpError::AesGcm(_) => DropReason::AuthFailed,
            _ => DropReason::Malformed,
        })?;
        self.spend()?;
        Ok(out)
    }

    fn protect(&mut self, kind: PacketKind, data: &[u8]) -> Result<Bytes, DropReason> {
        self.spend()?;
        match kind {
            PacketKind::Rtp => self.ctx.encrypt_rtp(data),
            PacketKind::Rtcp => self.ctx.encrypt_rtcp(data),
        }
        .map_err(|_| DropReason::ProtectFailed)
    }
}

#[derive(Debug, Default)]
struct Latch {
    expected: Option<SocketAddr>,
    latched: Option<SocketAddr>,
}

impl Latch {
    fn accept(&mut self, from: SocketAddr, mode: LatchMode) -> bool {
        if let Some(l) = self.latched {
            return l == from;
        }
        let ok = match (mode, self.expected) {
            (LatchMode::ExpectedPeer, Some(e)) => same_ip(e.ip(), from.ip()),
            _ => true,
        };
        if ok {
            self.latched = Some(from);
        }
        ok
    }

    fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.expected)
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.to_canonical() == b.to_canonical()
}

#[derive(Debug, Default)]
struct LegCore {
    rtp: Latch,
    rtcp: Latch,
    rx: Option<Engine>,
    tx: Option<Engine>,
    stats: LegStats,
    last_rx: Option<Instant>,
}

impl LegCore {
    fn latch(&mut self, kind: PacketKind) -> &mut Latch {
        match kind {
            PacketKind::Rtp => &mut self.rtp,
            PacketKind::Rtcp => &mut self.rtcp,
        }
    }
}

/// The relay state of one call.
#[derive(Debug)]
pub struct RelayCore {
    legs: [LegCore; 2],
    mode: LatchMode,
}

impl RelayCore {
    /// A relay for one call with both legs' parameters.
    pub fn new(mode: LatchMode, a: &LegParams, b: &LegParams) -> Result<RelayCore, MediaError> {
        let mut core = RelayCore { legs: [LegCore::default(), LegCore::default()], mode };
        core.update(LegId::A, a)?;
        core.update(LegId::B, b)?;
        Ok(core)
    }

    /// Applies new parameters to one leg (a re-INVITE): new contexts, and the latch starts over
    /// when the peer's address changed. Counters and the last packet instant are kept.
    pub fn update(&mut self, leg: LegId, p: &LegParams) -> Result<(), MediaError> {
        let l = self.leg_mut(leg);
        // Fresh contexts are made before anything changes: on error the leg keeps its old state.
        let fresh = |e: &Option<Engine>, p: Option<&SrtpParams>| match (e, p) {
            (Some(e), Some(p)) if e.suite == p.suite && e.key == p.key => Ok(None),
            (_, Some(p)) => Engine::new(p).map(Some),
            (_, None) => Ok(None),
        };
        let new_rx = fresh(&l.rx, p.rx.as_ref())?;
        let new_tx = fresh(&l.tx, p.tx.as_ref())?;
        let rx = if p.rx.is_none() { None } else { new_rx.or_else(|| l.rx.take()) };
        let tx = if p.tx.is_none() { None } else { new_tx.or_else(|| l.tx.take()) };
        if l.rtp.expected != p.peer_rtp {
            l.rtp = Latch { expected: p.peer_rtp, latched: None };
        }
        if l.rtcp.expected != p.peer_rtcp {
            l.rtcp = Latch { expected: p.peer_rtcp, latched: None };
        }
        l.rx = rx;
        l.tx = tx;
        Ok(())
    }

    fn leg_mut(&mut self, leg: LegId) -> &mut LegCore {
        match leg {
            LegId::A => &mut self.legs[0],
            LegId::B => &mut self.legs[1],
        }
    }

    fn leg(&self, leg: LegId) -> &LegCore {
        match leg {
            LegId::A => &self.legs[0],
            LegId::B => &self.legs[1],
        }
    }

    /// Counters of one leg.
    pub fn stats(&self, leg: LegId) -> LegStats {
        self.leg(leg).stats
    }

    /// When the leg's peer last sent a packet that was accepted.
    pub fn last_packet(&self, leg: LegId) -> Option<Instant> {
        self.leg(leg).last_rx
    }

    /// The address currently latched for a leg's RTP or RTCP peer.
    pub fn latched(&self, leg: LegId, kind: PacketKind) -> Option<SocketAddr> {
        let l = self.leg(leg);
        match kind {
            PacketKind::Rtp => l.rtp.latched,
            PacketKind::Rtcp => l.rtcp.latched,
        }
    }

    /// Handles one datagram received on `leg`'s `kind` socket from `from`.
    pub fn handle(&mut self, leg: LegId, kind: PacketKind, from: SocketAddr, data: &[u8], now: Instant) -> Outcome {
        match self.forward(leg, kind, from, data, now) {
            Ok(o) => o,
            Err((drop_leg, reason)) => {
                let s = &mut self.leg_mut(drop_leg).stats;
                s.dropped += 1;
                match reason {
                    DropReason::AuthFailed => s.auth_failures += 1,
                    DropReason::Replay => s.replays += 1,
                    _ => {}
                }
                Outcome::Dropped(reason)
            }
        }
    }

    fn forward(
        &mut self,
        leg: LegId,
        kind: PacketKind,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<Outcome, (LegId, DropReason)> {
        let mode = self.mode;
        let len = data.len() as u64;
        if !well_formed(kind, data) {
            return Err((leg, DropReason::Malformed));
        }
        let inbound = self.leg_mut(leg);
        if !inbound.latch(kind).accept(from, mode) {
            return Err((leg, DropReason::UnexpectedSource));
        }
        // Plain input is not copied: it goes straight to the other leg's protection.
        let clear = match &mut inbound.rx {
            Some(e) => Some(e.unprotect(kind, data).map_err(|r| (leg, r))?),
            None => None,
        };
        inbound.last_rx = Some(now);
        match kind {
            PacketKind::Rtp => {
                inbound.stats.rtp_in_packets += 1;
                inbound.stats.rtp_in_bytes += len;
            }
            PacketKind::Rtcp => {
                inbound.stats.rtcp_in_packets += 1;
                inbound.stats.rtcp_in_bytes += len;
            }
        }
        let out_leg = leg.other();
        let outbound = self.leg_mut(out_leg);
        let to = outbound.latch(kind).destination().ok_or((leg, DropReason::NoDestination))?;
        let data = match (&mut outbound.tx, clear) {
            (Some(e), Some(c)) => e.protect(kind, &c).map_err(|r| (leg, r))?,
            (Some(e), None) => e.protect(kind, data).map_err(|r| (leg, r))?,
            (None, Some(c)) => c,
            (None, None) => Bytes::copy_from_slice(data),
        };
        let n = data.len() as u64;
        match kind {
            PacketKind::Rtp => {
                outbound.stats.rtp_out_packets += 1;
                outbound.stats.rtp_out_bytes += n;
            }
            PacketKind::Rtcp => {
                outbound.stats.rtcp_out_packets += 1;
                outbound.stats.rtcp_out_bytes += n;
            }
        }
        Ok(Outcome::Forward { leg: out_leg, kind, to, data })
    }
}

/// Version 2 and the fixed header present (RFC 3550 §5.1, §6.4).
fn well_formed(kind: PacketKind, data: &[u8]) -> bool {
    let min = match kind {
        PacketKind::Rtp => 12,
        PacketKind::Rtcp => 8,
    };
    data.len() >= min && data.first().is_some_and(|b| b >> 6 == 2)
}
