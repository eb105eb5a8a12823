//! The API the edge drives: one [`MediaManager`] per process, one [`MediaSession`] per call.
//!
//! Offer/answer (RFC 3264) goes through the session leg by leg. For a call whose offer comes
//! from leg A (re-INVITEs repeat the same four steps, in either direction):
//!
//! 1. `offer_from_leg(A, body)` — learns A's address; on an SRTP leg picks A's first acceptable
//!    `a=crypto` and makes a fresh key for the answer (typed error → 488 otherwise);
//! 2. `offer_for_leg(B)` — the body to send on leg B: edge address and ports, `RTP/SAVP` with one
//!    fresh key per policy suite, or plain `RTP/AVP`;
//! 3. `answer_from_leg(B, body)` — learns B's address; on an SRTP leg takes the accepted suite
//!    and B's key (no acceptable crypto → `NoAcceptableCrypto`, 488);
//! 4. `answer_for_leg(A)` — the body to answer A with;
//!
//! then `start_relay()` (first time) or `update_relay(&handle)` (re-INVITE). Nothing changes for
//! the call until step 4 completes the exchange; `cancel_exchange()` forgets a failed one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::crypto::{CryptoAttr, CryptoSuite, SrtpKey};
use crate::error::{LegId, MediaError, SdpError};
use crate::ports::{PortPair, PortPool};
use crate::relay::{LatchMode, LegParams, RelayCore, SrtpParams};
use crate::runtime::RelayHandle;
use crate::sdp::{Direction, Sdp};

/// Which suites an SRTP leg offers and accepts, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpPolicy {
    suites: Vec<CryptoSuite>,
    /// Lifetime written into offered keys (packets), if any.
    pub lifetime: Option<u64>,
}

impl SrtpPolicy {
    /// A policy from a list of suites. AES_CM_128_HMAC_SHA1_80 is always first (the RFC 4568
    /// default every SDES peer has); it is added when missing. Suites the relay's SRTP engine
    /// does not implement are refused here, at configuration time, rather than at call time.
    pub fn new(suites: &[CryptoSuite]) -> Result<SrtpPolicy, MediaError> {
        let mut list = vec![CryptoSuite::AesCm128HmacSha1_80];
        for s in suites {
            if !s.relay_supported() {
                return Err(MediaError::Config(format!(
                    "crypto suite {s} is not supported by the relay (supported: AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM)"
                )));
            }
            if !list.contains(s) {
                list.push(*s);
            }
        }
        Ok(SrtpPolicy { suites: list, lifetime: None })
    }

    /// The suites in order.
    pub fn suites(&self) -> &[CryptoSuite] {
        &self.suites
    }
}

impl Default for SrtpPolicy {
    fn default() -> Self {
        SrtpPolicy { suites: vec![CryptoSuite::AesCm128HmacSha1_80, CryptoSuite::AeadAes128Gcm], lifetime: None }
    }
}

/// Whether a leg carries SRTP (trunk side, SPEC M1) or plain RTP (inside, SPEC M2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegSecurity {
    /// Plain `RTP/AVP`; an `RTP/SAVP` offer or answer on this leg is refused.
    Plain,
    /// `RTP/SAVP` with SDES keys is required.
    Srtp(SrtpPolicy),
}

/// One leg of a call as the edge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegConfig {
    /// The edge's media address on this leg's side (goes into `c=`).
    pub media_ip: IpAddr,
    /// SRTP or plain.
    pub security: LegSecurity,
}

/// Process-wide media settings.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Lowest port of the media range.
    pub port_min: u16,
    /// Highest port of the media range.
    pub port_max: u16,
    /// Symmetric RTP latching.
    pub latch: LatchMode,
    /// SRTP replay window (packets, 64 at least; a larger `WSH` from a peer is honoured).
    pub replay_window: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig { port_min: 30000, port_max: 39999, latch: LatchMode::ExpectedPeer, replay_window: 128 }
    }
}

/// Creates sessions and owns the port pool.
#[derive(Debug, Clone)]
pub struct MediaManager {
    config: MediaConfig,
    pool: PortPool,
}

impl MediaManager {
    /// Checks the configuration and makes the port pool.
    pub fn new(config: MediaConfig) -> Result<MediaManager, MediaError> {
        let pool = PortPool::new(config.port_min, config.port_max)?;
        Ok(MediaManager { config, pool })
    }

    /// The port pool (for metrics and tests).
    pub fn pool(&self) -> &PortPool {
        &self.pool
    }

    /// A session for one call: binds an RTP/RTCP pair on each leg's media address now, so early
    /// media can flow. Dropping the session (and its relay) frees the ports.
    pub fn new_session(&self, a: LegConfig, b: LegConfig) -> Result<MediaSession, MediaError> {
        let pa = Arc::new(self.pool.allocate(a.media_ip)?);
        let pb = Arc::new(self.pool.allocate(b.media_ip)?);
        Ok(MediaSession {
            latch: self.config.latch,
            replay_window: self.config.replay_window.max(64),
            legs: [Leg::new(a, pa), Leg::new(b, pb)],
            pending: None,
            direction: Direction::SendRecv,
        })
    }
}

#[derive(Debug)]
struct Leg {
    config: LegConfig,
    ports: Arc<PortPair>,
    peer: Option<(SocketAddr, SocketAddr)>,
    /// Keys the edge offered on this leg (one per suite).
    offered: Vec<CryptoAttr>,
    /// The peer's key (what it sends), and the edge's key (what the edge sends).
    rx: Option<CryptoAttr>,
    tx: Option<CryptoAttr>,
}

impl Leg {
    fn new(config: LegConfig, ports: Arc<PortPair>) -> Leg {
        Leg { config, ports, peer: None, offered: Vec::new(), rx: None, tx: None }
    }
}

/// What one offer or answer negotiated for its leg, applied only when the exchange completes.
#[derive(Debug, Clone)]
struct Negotiated {
    peer: (SocketAddr, SocketAddr),
    rx: Option<CryptoAttr>,
    tx: Option<CryptoAttr>,
}

#[derive(Debug)]
struct Pending {
    from: LegId,
    offer: Sdp,
    relayed: usize,
    offerer: Negotiated,
    answer: Option<(Sdp, Negotiated)>,
}

/// The media of one call: two legs, their offer/answer state and ports.
#[derive(Debug)]
pub struct MediaSession {
    latch: LatchMode,
    replay_window: usize,
    legs: [Leg; 2],
    pending: Option<Pending>,
    direction: Direction,
}

impl MediaSession {
    fn leg(&self, id: LegId) -> &Leg {
        match id {
            LegId::A => &self.legs[0],
            LegId::B => &self.legs[1],
        }
    }

    fn leg_mut(&mut self, id: LegId) -> &mut Leg {
        match id {
            LegId::A => &mut self.legs[0],
            LegId::B => &mut self.legs[1],
        }
    }

    /// The edge's RTP port on a leg (RTCP is one more).
    pub fn local_port(&self, leg: LegId) -> u16 {
        self.leg(leg).ports.rtp_port()
    }

    /// The suite negotiated on an SRTP leg, once known.
    pub fn negotiated_suite(&self, leg: LegId) -> Option<CryptoSuite> {
        self.leg(leg).tx.as_ref().map(|c| c.suite)
    }

    /// Step 1: an offer arrived on `leg`.
    pub fn offer_from_leg(&mut self, leg: LegId, body: &[u8]) -> Result<(), MediaError> {
        let sdp = Sdp::parse(body).map_err(|source| MediaError::Sdp { leg, source })?;
        let relayed = sdp.relayed_audio().map_err(|source| MediaError::Sdp { leg, source })?;
        let peer = peer_of(&sdp, relayed).map_err(|source| MediaError::Sdp { leg, source })?;
        let (rx, tx) = match &self.leg(leg).config.security {
            LegSecurity::Plain => {
                check_plain(leg, &sdp, relayed)?;
                (None, None)
            }
            LegSecurity::Srtp(policy) => {
                let theirs = pick_offered(leg, &sdp, relayed, policy)?;
                let ours = CryptoAttr {
                    tag: theirs.tag,
                    suite: theirs.suite,
                    key: SrtpKey::generate(theirs.suite)?,
                    lifetime: policy.lifetime,
                    window_hint: None,
                };
                (Some(theirs), Some(ours))
            }
        };
        let offerer = Negotiated { peer, rx, tx };
        self.pending = Some(Pending { from: leg, offer: sdp, relayed, offerer, answer: None });
        Ok(())
    }

    /// Step 2: the offer to send on `leg` (the other leg's offer, rewritten).
    pub fn offer_for_leg(&mut self, leg: LegId) -> Result<Vec<u8>, MediaError> {
        let p = self.pending.as_ref().filter(|p| p.from == leg.other() && p.answer.is_none());
        let Some(p) = p else {
            return Err(MediaError::State { leg, what: "an offer for this leg (no offer from the other leg)" });
        };
        let (offer, relayed) = (p.offer.clone(), p.relayed);
        let l = self.leg_mut(leg);
        let (secure, offered) = match &l.config.security {
            LegSecurity::Plain => (false, Vec::new()),
            LegSecurity::Srtp(policy) => {
                let mut v = Vec::new();
                for (i, suite) in policy.suites().iter().enumerate() {
                    v.push(CryptoAttr {
                        tag: u32::try_from(i + 1).unwrap_or(u32::MAX),
                        suite: *suite,
                        key: SrtpKey::generate(*suite)?,
                        lifetime: policy.lifetime,
                        window_hint: None,
                    });
                }
                (true, v)
            }
        };
        let out = offer.rewrite(l.config.media_ip, relayed, l.ports.rtp_port(), secure, &offered);
        l.offered = offered;
        Ok(out.to_bytes())
    }

    /// Step 3: the answer arrived on `leg`.
    pub fn answer_from_leg(&mut self, leg: LegId, body: &[u8]) -> Result<(), MediaError> {
        let relayed = match &self.pending {
            Some(p) if p.from == leg.other() && p.answer.is_none() => p.relayed,
            _ => return Err(MediaError::State { leg, what: "an answer (no offer was sent on this leg)" }),
        };
        let sdp = Sdp::parse(body).map_err(|source| MediaError::Sdp { leg, source })?;
        let m = sdp.media.get(relayed).ok_or(MediaError::Sdp { leg, source: SdpError::NoAudio })?;
        if m.port == 0 {
            return Err(MediaError::StreamRejected { leg });
        }
        let peer = peer_of(&sdp, relayed).map_err(|source| MediaError::Sdp { leg, source })?;
        let (rx, tx) = match &self.leg(leg).config.security {
            LegSecurity::Plain => {
                check_plain(leg, &sdp, relayed)?;
                (None, None)
            }
            LegSecurity::Srtp(_) => {
                let (theirs, ours) = pick_answered(leg, m, &self.leg(leg).offered)?;
                (Some(theirs), Some(ours))
            }
        };
        if let Some(p) = self.pending.as_mut() {
            p.answer = Some((sdp, Negotiated { peer, rx, tx }));
        }
        Ok(())
    }

    /// Step 4: the answer to send on `leg` (the leg the offer came from). This completes the
    /// exchange: only now do both legs take the new addresses and keys (what `start_relay` and
    /// `update_relay` use), so a failed re-INVITE leaves the call as it was.
    pub fn answer_for_leg(&mut self, leg: LegId) -> Result<Vec<u8>, MediaError> {
        let ready = matches!(&self.pending, Some(p) if p.from == leg && p.answer.is_some());
        let Some(Pending { from, relayed, offerer, answer: Some((answer, answerer)), .. }) =
            self.pending.take().filter(|_| ready)
        else {
            return Err(MediaError::State { leg, what: "an answer for this leg (no answer from the other leg)" });
        };
        self.direction = answer.direction(relayed);
        for (id, n) in [(from, offerer), (from.other(), answerer)] {
            let l = self.leg_mut(id);
            l.peer = Some(n.peer);
            l.rx = n.rx;
            l.tx = n.tx;
        }
        let l = self.leg(from);
        let crypto: Vec<CryptoAttr> = l.tx.iter().cloned().collect();
        let secure = matches!(l.config.security, LegSecurity::Srtp(_));
        Ok(answer.rewrite(l.config.media_ip, relayed, l.ports.rtp_port(), secure, &crypto).to_bytes())
    }

    /// The direction of the relayed stream in the last completed answer, as its author (the
    /// answering leg) put it. When it is `Inactive` (a call on hold with no media either way) the
    /// edge should not end the call for media inactivity.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Forgets an offer/answer exchange in progress (the other leg refused it, or it was
    /// cancelled): the call keeps the addresses and keys of the last completed exchange.
    pub fn cancel_exchange(&mut self) {
        self.pending = None;
    }

    /// The relay parameters of one leg as negotiated so far.
    pub fn relay_params(&self, leg: LegId) -> LegParams {
        let l = self.leg(leg);
        let params = |c: &CryptoAttr| SrtpParams {
            suite: c.suite,
            key: c.key.clone(),
            lifetime: c.lifetime,
            replay_window: self.replay_window.max(c.window_hint.unwrap_or(0).min(32768) as usize),
        };
        LegParams {
            peer_rtp: l.peer.map(|p| p.0),
            peer_rtcp: l.peer.map(|p| p.1),
            rx: l.rx.as_ref().map(params),
            tx: l.tx.as_ref().map(params),
        }
    }

    /// Starts relaying on the current tokio runtime. An SRTP leg must have its keys negotiated.
    pub fn start_relay(&self) -> Result<RelayHandle, MediaError> {
        self.check_ready()?;
        let core = RelayCore::new(self.latch, &self.relay_params(LegId::A), &self.relay_params(LegId::B))?;
        RelayHandle::spawn(core, Arc::clone(&self.legs[0].ports), Arc::clone(&self.legs[1].ports), Instant::now())
    }

    /// After a re-INVITE's offer/answer: new keys and addresses for the running relay.
    pub fn update_relay(&self, relay: &RelayHandle) -> Result<(), MediaError> {
        self.check_ready()?;
        relay.update(LegId::A, &self.relay_params(LegId::A))?;
        relay.update(LegId::B, &self.relay_params(LegId::B))
    }

    fn check_ready(&self) -> Result<(), MediaError> {
        for id in [LegId::A, LegId::B] {
            let l = self.leg(id);
            if matches!(l.config.security, LegSecurity::Srtp(_)) && (l.rx.is_none() || l.tx.is_none()) {
                return Err(MediaError::State { leg: id, what: "relaying (SRTP keys not negotiated)" });
            }
        }
        Ok(())
    }
}

fn peer_of(sdp: &Sdp, idx: usize) -> Result<(SocketAddr, SocketAddr), SdpError> {
    let ip = sdp.connection(idx)?;
    let m = sdp.media.get(idx).ok_or(SdpError::NoAudio)?;
    let rtcp = sdp.rtcp_port(idx).unwrap_or(m.port);
    Ok((SocketAddr::new(ip, m.port), SocketAddr::new(ip, rtcp)))
}

fn check_plain(leg: LegId, sdp: &Sdp, idx: usize) -> Result<(), MediaError> {
    match sdp.media.get(idx) {
        Some(m) if m.is_secure() => Err(MediaError::UnexpectedSrtp { leg, proto: m.proto.clone() }),
        _ => Ok(()),
    }
}

/// The first `a=crypto` of an offer, in the offerer's order, that the policy accepts.
fn pick_offered(leg: LegId, sdp: &Sdp, idx: usize, policy: &SrtpPolicy) -> Result<CryptoAttr, MediaError> {
    let m = sdp.media.get(idx).ok_or(MediaError::Sdp { leg, source: SdpError::NoAudio })?;
    if !m.is_secure() {
        return Err(MediaError::NoAcceptableCrypto { leg, reason: format!("the stream is {}, not RTP/SAVP", m.proto) });
    }
    let mut reasons = Vec::new();
    for c in m.crypto() {
        match c {
            Ok(c) if policy.suites().contains(&c.suite) => return Ok(c),
            Ok(c) => reasons.push(format!("{} not allowed by the policy", c.suite)),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if reasons.is_empty() {
        reasons.push("no a=crypto line".into());
    }
    Err(MediaError::NoAcceptableCrypto { leg, reason: reasons.join("; ") })
}

/// In an answer: the `a=crypto` whose tag and suite match one the edge offered.
fn pick_answered(
    leg: LegId,
    m: &crate::sdp::Media,
    offered: &[CryptoAttr],
) -> Result<(CryptoAttr, CryptoAttr), MediaError> {
    if !m.is_secure() {
        return Err(MediaError::NoAcceptableCrypto { leg, reason: format!("the answer is {}, not RTP/SAVP", m.proto) });
    }
    let mut reasons = Vec::new();
    for c in m.crypto() {
        match c {
            Ok(c) => match offered.iter().find(|o| o.tag == c.tag && o.suite == c.suite) {
                Some(o) => return Ok((c, o.clone())),
                None => reasons.push(format!("tag {} with {} was not offered", c.tag, c.suite)),
            },
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if reasons.is_empty() {
        reasons.push("no a=crypto line".into());
    }
    Err(MediaError::NoAcceptableCrypto { leg, reason: reasons.join("; ") })
}
