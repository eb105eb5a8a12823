//! Peer health (issue 7): OPTIONS pings to each trunk peer over TLS; a peer is marked down after
//! `down_after` consecutive failures (pings or INVITE transport failures) and skipped until it
//! answers again. Any response counts as an answer: a peer that says 404 or 405 to OPTIONS is up.

use std::time::{Duration, Instant};

use trunkgate_sip::{Method, OwnedMessage, Reliability};

use super::leg::token;
use super::{Core, Dest, Output, TimerKind, Use};
use crate::config::split_host_port;

/// The health of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerState {
    pub up: bool,
    pub failures: u32,
}

impl Default for PeerState {
    fn default() -> Self {
        PeerState { up: true, failures: 0 }
    }
}

impl Core {
    /// Whether a peer may be used.
    pub(crate) fn peer_up(&self, trunk: usize, peer: usize) -> bool {
        self.health.get(trunk).and_then(|t| t.get(peer)).is_none_or(|p| p.up)
    }

    /// The peer's destination.
    pub(crate) fn peer_dest(&self, trunk: usize, peer: usize) -> Option<(Dest, String)> {
        let spec = self.cfg.trunks.get(trunk)?.peers.get(peer)?;
        let (host, port) = split_host_port(spec);
        Some((Dest::Peer { trunk, host: host.to_string(), port }, spec.clone()))
    }

    pub(crate) fn peer_result(&mut self, trunk: usize, peer: usize, ok: bool) {
        let down_after = self.cfg.trunks.get(trunk).map_or(3, |t| t.down_after.max(1));
        let name = self.cfg.trunks.get(trunk).map(|t| t.name.clone()).unwrap_or_default();
        let spec = self.cfg.trunks.get(trunk).and_then(|t| t.peers.get(peer)).cloned().unwrap_or_default();
        let Some(state) = self.health.get_mut(trunk).and_then(|t| t.get_mut(peer)) else { return };
        let was_up = state.up;
        if ok {
            state.failures = 0;
            state.up = true;
        } else {
            state.failures = state.failures.saturating_add(1);
            if state.failures >= down_after {
                state.up = false;
            }
        }
        if was_up != state.up {
            tracing::warn!(trunk = %name, peer = %spec, up = state.up, "peer health changed");
            self.out.push_back(Output::PeerHealth { trunk: name, peer: spec, up: state.up });
        }
    }

    pub(crate) fn ping(&mut self, now: Instant, trunk: usize, peer: usize) {
        let Some(t) = self.cfg.trunks.get(trunk) else { return };
        let interval = Duration::from_secs(t.options_interval_s.max(1));
        self.timers.insert((now + interval, TimerKind::Ping { trunk, peer }));
        let (Some((dest, _)), Some(local)) = (self.peer_dest(trunk, peer), self.trunk_local.clone()) else { return };
        let Dest::Peer { host, port, .. } = &dest else { return };
        let (via, _) = local.via();
        let req = OwnedMessage::request(Method::Options, format!("sip:{host}:{port};transport=tls"))
            .with("Via", via)
            .with("Max-Forwards", "70")
            .with("From", format!("<sip:trunkgate@{}>;tag={}", local.host, token(6)))
            .with("To", format!("<sip:{host}>"))
            .with("Call-ID", format!("{}@trunkgate", token(10)))
            .with("CSeq", "1 OPTIONS")
            .with("User-Agent", &self.cfg.edge.name);
        match self.table.start_client(now, req, Reliability::Reliable, dest) {
            Ok(key) => {
                self.uses.insert(key, Use::Ping { trunk, peer });
            }
            Err(e) => tracing::warn!("OPTIONS ping not sent: {e}"),
        }
    }
}
