//! Media anchoring (SPEC M1, M2) through `trunkgate-media`: for each call with an SDP offer the
//! edge takes an RTP/RTCP port pair per leg, offers `RTP/SAVP` with fresh SDES keys on SRTP
//! trunks and `RTP/AVP` inside, maps the answer back, and relays RTP↔SRTP until the call ends.
//!
//! This is the one place where the core does I/O: a media session binds UDP ports when it is
//! created and the relay runs as a tokio task. With `[media] enabled = false` (and in the
//! in-memory core tests) SDP passes through untouched.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use trunkgate_media::{CryptoSuite, Direction, LegConfig, LegId, LegSecurity, MediaError, MediaManager, SrtpPolicy};
use trunkgate_sip::OwnedMessage;

use super::{Call, CallState, Core, LegSel, TimerKind};
use crate::config::Side;

/// How often idle media is looked for.
pub(crate) const MEDIA_CHECK: Duration = Duration::from_secs(5);

/// The SDP body of a message, when it has one.
pub(crate) fn sdp_body(msg: &OwnedMessage) -> Option<&[u8]> {
    let ct = msg.get("Content-Type")?;
    let is_sdp = trunkgate_sip::MediaType::parse(ct).is_ok_and(|m| m.matches("application", "sdp"));
    (is_sdp && !msg.body.is_empty()).then_some(msg.body.as_slice())
}

pub(crate) fn leg_id(sel: LegSel) -> LegId {
    match sel {
        LegSel::A => LegId::A,
        LegSel::B => LegId::B,
    }
}

impl Core {
    /// Gives the core its media manager (the runtime builds it; it owns the port pool).
    pub fn set_media(&mut self, manager: MediaManager) {
        self.media = Some(manager);
    }

    fn media_ip(&self, side: Side) -> IpAddr {
        let configured = match side {
            Side::Inside => self.cfg.media.inside_ip,
            Side::Trunk => self.cfg.media.trunk_ip,
        };
        configured
            .or_else(|| self.cfg.listeners.iter().find(|l| l.side == side).map(|l| l.address.ip()))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    fn leg_config(&self, side: Side, trunk: usize) -> Result<LegConfig, MediaError> {
        let security = match (side, self.cfg.trunks.get(trunk)) {
            (Side::Trunk, Some(t)) if t.srtp => {
                let suites: Vec<CryptoSuite> = t.srtp_suites.iter().filter_map(|s| CryptoSuite::from_name(s)).collect();
                LegSecurity::Srtp(if suites.is_empty() { SrtpPolicy::default() } else { SrtpPolicy::new(&suites)? })
            }
            _ => LegSecurity::Plain,
        };
        Ok(LegConfig { media_ip: self.media_ip(side), security })
    }

    /// At call creation: anchors the offer of leg A; returns the body to offer on leg B, or
    /// `Ok(None)` when there is nothing to anchor (media off, no SDP offer).
    pub(crate) fn media_offer(&mut self, call: &mut Call) -> Result<Option<Vec<u8>>, MediaError> {
        let Some(manager) = &self.media else { return Ok(None) };
        let Some(body) = sdp_body(&call.a_request).map(<[u8]>::to_vec) else { return Ok(None) };
        let a = self.leg_config(call.a.side, call.trunk)?;
        let b = self.leg_config(call.b.side, call.trunk)?;
        let mut session = manager.new_session(a, b)?;
        session.offer_from_leg(LegId::A, &body)?;
        let offer = session.offer_for_leg(LegId::B)?;
        call.media = Some(session);
        Ok(Some(offer))
    }

    /// An answer from leg B (18x or 2xx with SDP): the body for leg A. The first answer completes
    /// the exchange and starts the relay; later ones (the 200 after a 183) reuse its result.
    pub(crate) fn media_answer(&mut self, call: &mut Call, resp: &OwnedMessage) -> Result<Option<Vec<u8>>, MediaError> {
        let Some(session) = call.media.as_mut() else { return Ok(None) };
        if let Some(done) = &call.a_answer {
            return Ok(Some(done.clone()));
        }
        let Some(body) = sdp_body(resp) else { return Ok(None) };
        session.answer_from_leg(LegId::B, body)?;
        let for_a = session.answer_for_leg(LegId::A)?;
        call.relay = Some(session.start_relay()?);
        call.a_answer = Some(for_a.clone());
        Ok(Some(for_a))
    }

    /// A re-INVITE or UPDATE with SDP from leg `from`: the body to offer on the other leg.
    pub(crate) fn media_reoffer(call: &mut Call, from: LegSel, body: &[u8]) -> Result<Option<Vec<u8>>, MediaError> {
        let Some(session) = call.media.as_mut() else { return Ok(None) };
        session.offer_from_leg(leg_id(from), body)?;
        let other = leg_id(match from {
            LegSel::A => LegSel::B,
            LegSel::B => LegSel::A,
        });
        session.offer_for_leg(other).map(Some)
    }

    /// The answer to a re-offer (from the leg that was offered to): the body for the leg that
    /// offered, and the relay updated. A refusal forgets the exchange.
    pub(crate) fn media_reanswer(
        call: &mut Call,
        offerer: LegSel,
        resp: Option<&OwnedMessage>,
    ) -> Result<Option<Vec<u8>>, MediaError> {
        let Some(session) = call.media.as_mut() else { return Ok(None) };
        let Some(body) = resp.and_then(sdp_body) else {
            session.cancel_exchange();
            return Ok(None);
        };
        let answerer = match offerer {
            LegSel::A => LegSel::B,
            LegSel::B => LegSel::A,
        };
        session.answer_from_leg(leg_id(answerer), body)?;
        let out = session.answer_for_leg(leg_id(offerer))?;
        if let Some(relay) = &call.relay {
            session.update_relay(relay)?;
        }
        Ok(Some(out))
    }

    /// Ends calls whose media stopped (not on hold) after the inactivity timeout.
    pub(crate) fn media_check(&mut self, now: Instant) {
        self.timers.insert((now + MEDIA_CHECK, TimerKind::MediaCheck));
        let limit = Duration::from_secs(self.cfg.media.inactivity_timeout_s.max(1));
        let idle: Vec<u64> = self
            .calls
            .values()
            .filter(|c| c.state == CallState::Confirmed)
            .filter(|c| c.media.as_ref().is_some_and(|m| m.direction() != Direction::Inactive))
            .filter(|c| c.relay.as_ref().is_some_and(|r| r.idle_for(now) > limit))
            .map(|c| c.id)
            .collect();
        for id in idle {
            tracing::warn!(call = id, "no media for {limit:?}: ending the call");
            self.hangup_all(now, id);
            self.finish(now, id, 200, "media timeout");
        }
    }
}

/// One line per call for the call log: each leg's security and the relay counters.
pub(crate) fn summary(session: &trunkgate_media::MediaSession, relay: Option<&trunkgate_media::RelayHandle>) -> String {
    let leg = |id: LegId, name: &str| {
        let security = session.negotiated_suite(id).map_or("RTP".to_string(), |s| format!("SRTP {}", s.name()));
        let counters = relay.map(|r| r.stats(id)).map_or(String::from("no relay"), |st| {
            format!(
                "in {} / out {} packets, {} auth failures, {} replays",
                st.rtp_in_packets, st.rtp_out_packets, st.auth_failures, st.replays
            )
        });
        format!("leg {name} {security} port {} ({counters})", session.local_port(id))
    };
    format!("{}; {}", leg(LegId::A, "A"), leg(LegId::B, "B"))
}

/// Stops a relay in the background and logs its counters (ports return to the pool).
pub(crate) fn stop_relay(relay: trunkgate_media::RelayHandle, call_id: String) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let [a, b] = relay.stop().await;
            tracing::info!(call_id = %call_id, leg_a = ?a, leg_b = ?b, "media relay stopped");
        });
    }
}
