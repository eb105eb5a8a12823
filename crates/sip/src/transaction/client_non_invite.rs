//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! ```text
//!            request sent, E=T1 (UDP), F=64*T1
//!   Trying --1xx--> Proceeding --1xx--> Proceeding
//!     |                 |
//!     `--200-699--------+--200-699--> Completed (K=T4 UDP, 0 reliable) --K--> Terminated
//!   F fires in Trying or Proceeding -> Timeout(F), Terminated.
//!   E in Trying: retransmit, E = min(2E, T2).  E in Proceeding: retransmit, E = T2.
//! ```

use std::time::{Duration, Instant};

use crate::builder::OwnedMessage;
use crate::message::Message;
use crate::name::Method;

use super::build::owned_method;
use super::error::TransactionError;
use super::key::TransactionKey;
use super::timers::{Timer, TimerConfig, Timers};
use super::{Event, Outbox, Reliability};

/// States of Figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, nothing received.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// The final response arrived; absorbing its retransmissions (timer K).
    Completed,
    /// Done.
    Terminated,
}

impl ClientNonInviteState {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            ClientNonInviteState::Trying => "Trying",
            ClientNonInviteState::Proceeding => "Proceeding",
            ClientNonInviteState::Completed => "Completed",
            ClientNonInviteState::Terminated => "Terminated",
        }
    }
}

/// A non-INVITE client transaction (OPTIONS, BYE, REGISTER, CANCEL …).
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliability: Reliability,
    config: TimerConfig,
    key: TransactionKey,
    request: OwnedMessage,
    request_bytes: Vec<u8>,
    e_interval: Duration,
    timers: Timers,
    out: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction: queues the request for sending and arms timers E (unreliable
    /// only) and F. INVITE and ACK are refused.
    pub fn new(
        now: Instant,
        request: OwnedMessage,
        reliability: Reliability,
        config: &TimerConfig,
    ) -> Result<ClientNonInvite, TransactionError> {
        match owned_method(&request)? {
            Method::Ack => return Err(TransactionError::AckIsNotATransaction),
            Method::Invite => {
                return Err(TransactionError::WrongMethod { expected: "non-INVITE", got: "INVITE".into() })
            }
            _ => {}
        }
        let key = TransactionKey::for_outgoing(&request)?;
        let request_bytes = request.to_bytes();
        let mut t = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            reliability,
            config: *config,
            key,
            request,
            request_bytes,
            e_interval: config.t1(),
            timers: Timers::default(),
            out: Outbox::default(),
        };
        t.out.send(t.request_bytes.clone());
        if reliability == Reliability::Unreliable {
            t.timers.set(Timer::E, now + t.e_interval);
        }
        t.timers.set(Timer::F, now + config.t1x64());
        Ok(t)
    }

    /// The key responses match (branch, method).
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The request; after the final response only its skeleton ([`OwnedMessage::shrink_to_skeleton`]).
    pub fn request(&self) -> &OwnedMessage {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// Whether the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    /// Feeds a response matched to this transaction; in Completed, retransmissions are absorbed.
    pub fn handle_response(&mut self, now: Instant, msg: &Message<'_>) -> Result<(), TransactionError> {
        let status = msg.status().ok_or(TransactionError::WrongKind { expected: "response" })?;
        use ClientNonInviteState::*;
        match (self.state, status) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.out.emit(Event::Provisional(OwnedMessage::from_message(msg)));
            }
            (Trying | Proceeding, _) => {
                self.timers.clear_all();
                self.out.emit(Event::Final(OwnedMessage::from_message(msg)));
                self.state = Completed;
                // No more retransmissions: free the request but its skeleton while Timer K runs.
                self.request_bytes = Vec::new();
                self.request.shrink_to_skeleton();
                match self.config.duration(Timer::K, self.reliability) {
                    Some(d) if !d.is_zero() => self.timers.set(Timer::K, now + d),
                    _ => self.terminate(),
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn terminate(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.state = ClientNonInviteState::Terminated;
            self.timers.clear_all();
            self.out.emit(Event::Terminated);
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::E, ClientNonInviteState::Trying) => {
                    self.out.send(self.request_bytes.clone());
                    self.e_interval = self.e_interval.saturating_mul(2).min(self.config.t2());
                    self.timers.set(Timer::E, now + self.e_interval);
                }
                (Timer::E, ClientNonInviteState::Proceeding) => {
                    self.out.send(self.request_bytes.clone());
                    self.timers.set(Timer::E, now + self.config.t2());
                }
                (Timer::F, ClientNonInviteState::Trying | ClientNonInviteState::Proceeding) => {
                    self.out.emit(Event::Timeout(Timer::F));
                    self.terminate();
                }
                (Timer::K, ClientNonInviteState::Completed) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send the request: inform the TU and terminate.
    pub fn handle_transport_error(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.out.emit(Event::TransportError);
            self.terminate();
        }
    }

    machine_outputs!();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::message::Limits;
    use crate::parse::parse_datagram;

    fn options() -> OwnedMessage {
        OwnedMessage::request(Method::Options, "sip:peer.example.com")
            .with("Via", "SIP/2.0/UDP edge.example.net;branch=z9hG4bKcn1")
            .with("From", "<sip:edge@example.net>;tag=a")
            .with("To", "<sip:peer.example.com>")
            .with("Call-ID", "cn1")
            .with("CSeq", "1 OPTIONS")
    }

    fn feed(t: &mut ClientNonInvite, now: Instant, status: u16) {
        let raw = format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP edge.example.net;branch=z9hG4bKcn1\r\nFrom: <sip:edge@example.net>;tag=a\r\n\
             To: <sip:peer.example.com>;tag=p\r\nCall-ID: cn1\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        t.handle_response(now, &parse_datagram(raw.as_bytes(), &Limits::default()).unwrap()).unwrap();
    }

    #[test]
    fn proceeding_retransmits_every_t2() {
        let t0 = Instant::now();
        let mut t = ClientNonInvite::new(t0, options(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        assert!(t.poll_transmit().is_some());
        t.handle_timeout(t0 + Duration::from_millis(500));
        assert!(t.poll_transmit().is_some());
        assert_eq!(t.next_timer(), Some((Timer::E, t0 + Duration::from_millis(1500))));
        feed(&mut t, t0 + Duration::from_millis(600), 100);
        assert_eq!(t.state(), ClientNonInviteState::Proceeding);
        // E keeps its deadline; once it fires in Proceeding it is re-armed with T2.
        t.handle_timeout(t0 + Duration::from_millis(1500));
        assert!(t.poll_transmit().is_some());
        assert_eq!(t.next_timer(), Some((Timer::E, t0 + Duration::from_millis(5500))));
    }

    #[test]
    fn final_then_k_on_udp_absorbs_retransmissions() {
        let t0 = Instant::now();
        let mut t = ClientNonInvite::new(t0, options(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        t.poll_transmit();
        feed(&mut t, t0, 200);
        assert_eq!(t.next_timer(), Some((Timer::K, t0 + Duration::from_secs(5))));
        feed(&mut t, t0 + Duration::from_secs(1), 200);
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events.len(), 1, "the retransmitted 200 is absorbed: {events:?}");
        t.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn reliable_final_terminates_at_once() {
        let t0 = Instant::now();
        let mut t = ClientNonInvite::new(t0, options(), Reliability::Reliable, &TimerConfig::default()).unwrap();
        assert_eq!(t.next_timer(), Some((Timer::F, t0 + Duration::from_secs(32))));
        feed(&mut t, t0, 404);
        assert!(t.is_terminated());
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn ack_and_invite_refused() {
        let ack = OwnedMessage::request(Method::Ack, "sip:a@b").with("Via", "SIP/2.0/UDP h;branch=z9hG4bK1");
        assert_eq!(
            ClientNonInvite::new(Instant::now(), ack, Reliability::Reliable, &TimerConfig::default()).err(),
            Some(TransactionError::AckIsNotATransaction)
        );
    }
}
