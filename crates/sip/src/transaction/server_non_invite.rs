//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!   request received -> Trying (Request to TU)
//!   Trying:     request again -> absorbed;  TU 1xx -> sent, Proceeding;  TU 200-699 -> sent, Completed
//!   Proceeding: request again -> last provisional resent;  TU 1xx -> sent;  TU 200-699 -> Completed
//!   Completed:  request again -> final resent;  J (64*T1 UDP, 0 reliable) -> Terminated
//! ```

use std::time::Instant;

use crate::builder::OwnedMessage;
use crate::message::Message;
use crate::name::Method;

use super::build::owned_status;
use super::error::TransactionError;
use super::timers::{Timer, TimerConfig, Timers};
use super::{Event, Outbox, Reliability};

/// States of Figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// The TU has the request; nothing sent.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// The final response was sent; answering retransmissions with it (timer J).
    Completed,
    /// Done.
    Terminated,
}

impl ServerNonInviteState {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            ServerNonInviteState::Trying => "Trying",
            ServerNonInviteState::Proceeding => "Proceeding",
            ServerNonInviteState::Completed => "Completed",
            ServerNonInviteState::Terminated => "Terminated",
        }
    }
}

/// A non-INVITE server transaction (OPTIONS, BYE, CANCEL, REGISTER …).
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliability: Reliability,
    config: TimerConfig,
    request: OwnedMessage,
    last_response: Option<Vec<u8>>,
    timers: Timers,
    out: Outbox,
}

impl ServerNonInvite {
    /// Creates the transaction for a received request and queues [`Event::Request`]. INVITE and
    /// ACK are refused.
    pub fn new(
        msg: &Message<'_>,
        reliability: Reliability,
        config: &TimerConfig,
    ) -> Result<ServerNonInvite, TransactionError> {
        match msg.method() {
            None => return Err(TransactionError::WrongKind { expected: "request" }),
            Some(Method::Ack) => return Err(TransactionError::AckIsNotATransaction),
            Some(Method::Invite) => {
                return Err(TransactionError::WrongMethod { expected: "non-INVITE", got: "INVITE".into() })
            }
            Some(_) => {}
        }
        let request = OwnedMessage::from_message(msg);
        let mut out = Outbox::default();
        out.emit(Event::Request(request.clone()));
        Ok(ServerNonInvite {
            state: ServerNonInviteState::Trying,
            reliability,
            config: *config,
            request,
            last_response: None,
            timers: Timers::default(),
            out,
        })
    }

    /// The request; after the final response only its skeleton ([`OwnedMessage::shrink_to_skeleton`]).
    pub fn request(&self) -> &OwnedMessage {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// Whether the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }

    /// Feeds a retransmission of the request: absorbed, answered with the last response sent.
    pub fn handle_request(&mut self, _now: Instant, msg: &Message<'_>) -> Result<(), TransactionError> {
        if !msg.is_request() {
            return Err(TransactionError::WrongKind { expected: "request" });
        }
        if let (ServerNonInviteState::Proceeding | ServerNonInviteState::Completed, Some(r)) =
            (self.state, &self.last_response)
        {
            self.out.send(r.clone());
        }
        Ok(())
    }

    /// Sends a response from the TU; after the final response, [`TransactionError::InvalidState`].
    pub fn send_response(&mut self, now: Instant, response: OwnedMessage) -> Result<(), TransactionError> {
        let status = owned_status(&response)?;
        use ServerNonInviteState::*;
        if !matches!(self.state, Trying | Proceeding) {
            return Err(TransactionError::InvalidState { state: self.state.name(), action: "sending a response" });
        }
        let bytes = response.to_bytes();
        self.out.send(bytes.clone());
        self.last_response = Some(bytes);
        if status < 200 {
            self.state = Proceeding;
            return Ok(());
        }
        self.state = Completed;
        // Retransmissions are answered from `last_response`: keep only the request's skeleton.
        self.request.shrink_to_skeleton();
        match self.config.duration(Timer::J, self.reliability) {
            Some(d) if !d.is_zero() => self.timers.set(Timer::J, now + d),
            _ => self.terminate(),
        }
        Ok(())
    }

    fn terminate(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.state = ServerNonInviteState::Terminated;
            self.timers.clear_all();
            self.out.emit(Event::Terminated);
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            if timer == Timer::J && self.state == ServerNonInviteState::Completed {
                self.terminate();
            }
        }
    }

    /// The transport could not send a response: inform the TU and terminate.
    pub fn handle_transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
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
    use std::time::Duration;

    const BYE: &[u8] = b"BYE sip:edge@example.net SIP/2.0\r\nVia: SIP/2.0/UDP peer;branch=z9hG4bKsn1\r\n\
        From: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.net>;tag=a\r\nCall-ID: sn1\r\nCSeq: 2 BYE\r\n\r\n";

    fn new(rel: Reliability) -> ServerNonInvite {
        ServerNonInvite::new(&parse_datagram(BYE, &Limits::default()).unwrap(), rel, &TimerConfig::default()).unwrap()
    }

    fn retransmit(t: &mut ServerNonInvite, now: Instant) {
        t.handle_request(now, &parse_datagram(BYE, &Limits::default()).unwrap()).unwrap();
    }

    #[test]
    fn trying_absorbs_completed_resends_final() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Unreliable);
        retransmit(&mut t, t0);
        assert_eq!(t.poll_transmit(), None);
        t.send_response(t0, response_for(t.request(), 200, "OK", None)).unwrap();
        let ok = t.poll_transmit().unwrap();
        assert_eq!(t.next_timer(), Some((Timer::J, t0 + Duration::from_secs(32))));
        retransmit(&mut t, t0 + Duration::from_secs(3));
        assert_eq!(t.poll_transmit(), Some(ok));
        assert!(matches!(
            t.send_response(t0, response_for(t.request(), 500, "X", None)),
            Err(TransactionError::InvalidState { state: "Completed", .. })
        ));
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert!(t.is_terminated());
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events.len(), 2, "one Request, one Terminated: {events:?}");
    }

    #[test]
    fn proceeding_resends_provisional() {
        let t0 = Instant::now();
        let mut t = new(Reliability::Unreliable);
        t.send_response(t0, response_for(t.request(), 100, "Trying", None)).unwrap();
        let trying = t.poll_transmit().unwrap();
        assert_eq!(t.state(), ServerNonInviteState::Proceeding);
        retransmit(&mut t, t0);
        assert_eq!(t.poll_transmit(), Some(trying));
    }

    #[test]
    fn reliable_final_terminates_at_once() {
        let mut t = new(Reliability::Reliable);
        t.send_response(Instant::now(), response_for(t.request(), 200, "OK", None)).unwrap();
        assert!(t.is_terminated());
        assert_eq!(t.poll_timeout(), None);
    }
}
