//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as amended by RFC 6026).
//!
//! ```text
//!   INVITE received -> Proceeding (Request to TU; 100 Trying if the TU sends it)
//!   Proceeding: INVITE again -> last provisional resent;  TU 1xx -> sent
//!               TU 2xx -> sent, Accepted (L=64*T1)       TU 300-699 -> sent, Completed (G=T1 UDP, H=64*T1)
//!   Completed:  INVITE again or G -> final resent (G = min(2G, T2));  H -> Timeout(H), Terminated
//!               ACK -> Confirmed (I=T4 UDP, 0 reliable), absorbed
//!   Confirmed:  ACKs absorbed; I -> Terminated
//!   Accepted:   INVITE again absorbed; TU 2xx retransmissions sent; ACK -> TU; L -> Terminated
//! ```

use std::time::{Duration, Instant};

use crate::builder::OwnedMessage;
use crate::message::Message;
use crate::name::Method;

use super::build::{owned_status, owned_to_tag, trying};
use super::error::TransactionError;
use super::timers::{Timer, TimerConfig, Timers};
use super::{Event, Outbox, Reliability};

/// States of Figure 7 plus Accepted (RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// The TU has the INVITE; provisional responses may have been sent.
    Proceeding,
    /// A 300–699 was sent; retransmitting it until the ACK (timers G, H).
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions (timer I).
    Confirmed,
    /// A 2xx was sent (RFC 6026); the ACK for it goes to the TU (timer L).
    Accepted,
    /// Done.
    Terminated,
}

impl ServerInviteState {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            ServerInviteState::Proceeding => "Proceeding",
            ServerInviteState::Completed => "Completed",
            ServerInviteState::Confirmed => "Confirmed",
            ServerInviteState::Accepted => "Accepted",
            ServerInviteState::Terminated => "Terminated",
        }
    }
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliability: Reliability,
    config: TimerConfig,
    request: OwnedMessage,
    last_response: Option<Vec<u8>>,
    response_to_tag: Option<Vec<u8>>,
    g_interval: Duration,
    timers: Timers,
    out: Outbox,
}

impl ServerInvite {
    /// Creates the transaction for a received INVITE and queues [`Event::Request`]. No timer
    /// runs until the TU answers.
    pub fn new(
        msg: &Message<'_>,
        reliability: Reliability,
        config: &TimerConfig,
    ) -> Result<ServerInvite, TransactionError> {
        match msg.method() {
            Some(Method::Invite) => {}
            Some(m) => return Err(TransactionError::WrongMethod { expected: "INVITE", got: m.as_str().to_owned() }),
            None => return Err(TransactionError::WrongKind { expected: "request" }),
        }
        let request = OwnedMessage::from_message(msg);
        let mut out = Outbox::default();
        out.emit(Event::Request(request.clone()));
        Ok(ServerInvite {
            state: ServerInviteState::Proceeding,
            reliability,
            config: *config,
            request,
            last_response: None,
            response_to_tag: None,
            g_interval: config.t1(),
            timers: Timers::default(),
            out,
        })
    }

    /// The INVITE; after the final response only its skeleton ([`OwnedMessage::shrink_to_skeleton`]).
    pub fn request(&self) -> &OwnedMessage {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Whether the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    /// The To tag of the final response sent (what an RFC 2543 ACK must carry to match).
    pub fn response_to_tag(&self) -> Option<&[u8]> {
        self.response_to_tag.as_deref()
    }

    /// Feeds a retransmitted INVITE or an ACK matched to this transaction.
    pub fn handle_request(&mut self, now: Instant, msg: &Message<'_>) -> Result<(), TransactionError> {
        use ServerInviteState::*;
        match (msg.method(), self.state) {
            (Some(Method::Invite), Proceeding | Completed) => {
                if let Some(r) = &self.last_response {
                    self.out.send(r.clone());
                }
            }
            (Some(Method::Invite), _) => {}
            (Some(Method::Ack), Completed) => {
                self.timers.clear_all();
                self.state = Confirmed;
                match self.config.duration(Timer::I, self.reliability) {
                    Some(d) if !d.is_zero() => self.timers.set(Timer::I, now + d),
                    _ => self.terminate(),
                }
            }
            (Some(Method::Ack), Accepted) => self.out.emit(Event::Ack(OwnedMessage::from_message(msg))),
            (Some(Method::Ack), _) => {}
            (Some(m), _) => {
                return Err(TransactionError::WrongMethod { expected: "INVITE or ACK", got: m.as_str().to_owned() })
            }
            (None, _) => return Err(TransactionError::WrongKind { expected: "request" }),
        }
        Ok(())
    }

    /// Sends a response from the TU. In Proceeding any status; in Accepted only a 2xx (the
    /// TU's retransmission of it); elsewhere [`TransactionError::InvalidState`].
    pub fn send_response(&mut self, now: Instant, response: OwnedMessage) -> Result<(), TransactionError> {
        let status = owned_status(&response)?;
        use ServerInviteState::*;
        match (self.state, status) {
            (Proceeding, 100..=199) => {
                let bytes = response.to_bytes();
                self.out.send(bytes.clone());
                self.last_response = Some(bytes);
            }
            (Proceeding, 200..=299) => {
                self.response_to_tag = owned_to_tag(&response);
                self.out.send(response.to_bytes());
                self.last_response = None;
                self.state = Accepted;
                self.request.shrink_to_skeleton();
                self.timers.set(Timer::L, now + self.config.t1x64());
            }
            (Proceeding, _) => {
                self.response_to_tag = owned_to_tag(&response);
                let bytes = response.to_bytes();
                self.out.send(bytes.clone());
                self.last_response = Some(bytes);
                self.state = Completed;
                self.request.shrink_to_skeleton();
                if self.reliability == Reliability::Unreliable {
                    self.timers.set(Timer::G, now + self.g_interval);
                }
                self.timers.set(Timer::H, now + self.config.t1x64());
            }
            (Accepted, 200..=299) => self.out.send(response.to_bytes()),
            (s, _) => return Err(TransactionError::InvalidState { state: s.name(), action: "sending a response" }),
        }
        Ok(())
    }

    /// Sends `100 Trying` built from the INVITE (with its Timestamp). Call it on creation, or
    /// after 200 ms without another answer (RFC 3261 §17.2.1) — the TU's choice.
    pub fn send_trying(&mut self, now: Instant) -> Result<(), TransactionError> {
        let resp = trying(&self.request);
        self.send_response(now, resp)
    }

    fn terminate(&mut self) {
        if self.state != ServerInviteState::Terminated {
            self.state = ServerInviteState::Terminated;
            self.timers.clear_all();
            self.out.emit(Event::Terminated);
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::G, ServerInviteState::Completed) => {
                    if let Some(r) = &self.last_response {
                        self.out.send(r.clone());
                    }
                    self.g_interval = self.g_interval.saturating_mul(2).min(self.config.t2());
                    self.timers.set(Timer::G, now + self.g_interval);
                }
                (Timer::H, ServerInviteState::Completed) => {
                    self.out.emit(Event::Timeout(Timer::H));
                    self.terminate();
                }
                (Timer::I, ServerInviteState::Confirmed) | (Timer::L, ServerInviteState::Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send a response: inform the TU and terminate.
    pub fn handle_transport_error(&mut self) {
        if self.state != ServerInviteState::Terminated {
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
    use crate::transaction::build::response_for;

    fn raw(method: &str, to: &str) -> Vec<u8> {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc.example.net;branch=z9hG4bKsi1\r\n\
             From: <sip:alice@example.net>;tag=a\r\nTo: {to}\r\nCall-ID: si1\r\nCSeq: 1 {method}\r\n\
             Timestamp: 7\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn new(rel: Reliability) -> ServerInvite {
        let b = raw("INVITE", "<sip:bob@example.com>");
        ServerInvite::new(&parse_datagram(&b, &Limits::default()).unwrap(), rel, &TimerConfig::default()).unwrap()
    }

    fn feed(t: &mut ServerInvite, now: Instant, method: &str) {
        let b = raw(method, "<sip:bob@example.com>;tag=b");
        t.handle_request(now, &parse_datagram(&b, &Limits::default()).unwrap()).unwrap();
    }

    #[test]
    fn trying_helper_and_retransmitted_invite() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Unreliable);
        assert!(matches!(t.poll_event(), Some(Event::Request(_))));
        feed(&mut t, t0, "INVITE");
        assert_eq!(t.poll_transmit(), None, "nothing sent yet, nothing to resend");
        t.send_trying(t0).unwrap();
        let sent = t.poll_transmit().unwrap();
        assert!(sent.starts_with(b"SIP/2.0 100 Trying\r\n"));
        assert!(String::from_utf8_lossy(&sent).contains("Timestamp: 7\r\n"));
        feed(&mut t, t0, "INVITE");
        assert_eq!(t.poll_transmit(), Some(sent));
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn timer_g_caps_at_t2_and_h_times_out() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Unreliable);
        let resp = response_for(t.request(), 486, "Busy Here", Some("b"));
        t.send_response(t0, resp).unwrap();
        assert!(t.poll_transmit().is_some());
        let mut g_at = Vec::new();
        while let Some((timer, at)) = t.next_timer() {
            t.handle_timeout(at);
            if timer == Timer::G {
                assert!(t.poll_transmit().unwrap().starts_with(b"SIP/2.0 486"));
                g_at.push((at - t0).as_millis());
            }
        }
        assert_eq!(g_at, vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events[events.len() - 2..], [Event::Timeout(Timer::H), Event::Terminated]);
    }

    #[test]
    fn ack_confirms_then_i() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Unreliable);
        t.send_response(t0, response_for(t.request(), 404, "Not Found", Some("b"))).unwrap();
        assert_eq!(t.response_to_tag(), Some(&b"b"[..]));
        feed(&mut t, t0 + Duration::from_millis(10), "ACK");
        assert_eq!(t.state(), ServerInviteState::Confirmed);
        assert_eq!(t.next_timer(), Some((Timer::I, t0 + Duration::from_millis(5010))));
        feed(&mut t, t0 + Duration::from_millis(20), "ACK");
        t.handle_timeout(t0 + Duration::from_millis(5010));
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert!(matches!(events[..], [Event::Request(_), Event::Terminated]), "ACKs absorbed: {events:?}");
    }

    #[test]
    fn accepted_passes_ack_and_2xx_retransmissions() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Reliable);
        t.poll_event();
        let ok = response_for(t.request(), 200, "OK", Some("b"));
        t.send_response(t0, ok.clone()).unwrap();
        assert_eq!(t.state(), ServerInviteState::Accepted);
        t.send_response(t0, ok).unwrap();
        assert_eq!(std::iter::from_fn(|| t.poll_transmit()).count(), 2);
        feed(&mut t, t0, "INVITE");
        assert_eq!(t.poll_transmit(), None, "INVITE retransmission absorbed in Accepted");
        feed(&mut t, t0, "ACK");
        assert!(matches!(t.poll_event(), Some(Event::Ack(_))));
        assert_eq!(
            t.send_response(t0, response_for(t.request(), 500, "Oops", None)),
            Err(TransactionError::InvalidState { state: "Accepted", action: "sending a response" })
        );
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn reliable_has_no_g_and_zero_i() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Reliable);
        t.send_response(t0, response_for(t.request(), 603, "Decline", Some("b"))).unwrap();
        assert_eq!(t.next_timer(), Some((Timer::H, t0 + Duration::from_secs(32))));
        feed(&mut t, t0, "ACK");
        assert!(t.is_terminated());
    }
}
