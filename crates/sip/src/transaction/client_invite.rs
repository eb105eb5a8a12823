//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as amended by RFC 6026).
//!
//! ```text
//!              INVITE sent, A=T1 (UDP), B=64*T1
//!   Calling --1xx--> Proceeding --1xx--> Proceeding
//!      |  \                |
//!      |   `-2xx-------+---+--2xx--> Accepted (M=64*T1; 2xx -> TU) --M--> Terminated
//!      |               |
//!      `--300-699------+--300-699--> Completed (ACK sent, D) --D--> Terminated
//!   B fires in Calling -> Timeout(B), Terminated.   Retransmitted 300-699 in Completed -> ACK again.
//! ```
//!
//! Timer A doubles without a cap (T2 only bounds non-INVITE requests and INVITE responses).

use std::time::{Duration, Instant};

use crate::builder::OwnedMessage;
use crate::message::Message;
use crate::name::{HeaderName, Method};
use crate::scan;

use super::build::{build_ack, build_cancel, owned_header, owned_method};
use super::error::TransactionError;
use super::key::TransactionKey;
use super::timers::{Timer, TimerConfig, Timers};
use super::{Event, Outbox, Reliability};

/// States of Figure 5 plus Accepted (RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing received.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300–699 arrived and was ACKed; waiting for its retransmissions (timer D).
    Completed,
    /// A 2xx arrived (RFC 6026); further 2xx are passed to the TU until timer M.
    Accepted,
    /// Done.
    Terminated,
}

impl ClientInviteState {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            ClientInviteState::Calling => "Calling",
            ClientInviteState::Proceeding => "Proceeding",
            ClientInviteState::Completed => "Completed",
            ClientInviteState::Accepted => "Accepted",
            ClientInviteState::Terminated => "Terminated",
        }
    }
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliability: Reliability,
    config: TimerConfig,
    key: TransactionKey,
    request: OwnedMessage,
    request_bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    a_interval: Duration,
    timers: Timers,
    out: Outbox,
}

impl ClientInvite {
    /// Starts the transaction: queues the INVITE for sending and arms timers A (unreliable
    /// only) and B. The request must carry an RFC 3261 branch, From, To, Call-ID and a CSeq
    /// with method INVITE (everything the ACK and CANCEL are built from).
    pub fn new(
        now: Instant,
        request: OwnedMessage,
        reliability: Reliability,
        config: &TimerConfig,
    ) -> Result<ClientInvite, TransactionError> {
        let method = owned_method(&request)?;
        if method != &Method::Invite {
            return Err(TransactionError::WrongMethod { expected: "INVITE", got: method.as_str().to_owned() });
        }
        let key = TransactionKey::for_outgoing(&request)?;
        build_cancel(&request)?;
        let request_bytes = request.to_bytes();
        let mut t = ClientInvite {
            state: ClientInviteState::Calling,
            reliability,
            config: *config,
            key,
            request,
            request_bytes,
            ack: None,
            a_interval: config.t1(),
            timers: Timers::default(),
            out: Outbox::default(),
        };
        t.out.send(t.request_bytes.clone());
        if reliability == Reliability::Unreliable {
            t.timers.set(Timer::A, now + t.a_interval);
        }
        t.timers.set(Timer::B, now + config.t1x64());
        Ok(t)
    }

    /// The key responses match (branch, INVITE).
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The INVITE; after the final response only its skeleton ([`OwnedMessage::shrink_to_skeleton`]).
    pub fn request(&self) -> &OwnedMessage {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// Whether the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    /// Feeds a response matched to this transaction. Responses the state does not expect
    /// (a 1xx after the final response, a non-2xx in Accepted) are absorbed.
    pub fn handle_response(&mut self, now: Instant, msg: &Message<'_>) -> Result<(), TransactionError> {
        let status = msg.status().ok_or(TransactionError::WrongKind { expected: "response" })?;
        use ClientInviteState::*;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timers.clear(Timer::A);
                self.timers.clear(Timer::B);
                self.out.emit(Event::Provisional(OwnedMessage::from_message(msg)));
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.shed();
                self.timers.clear_all();
                self.timers.set(Timer::M, now + self.config.t1x64());
                self.out.emit(Event::Final(OwnedMessage::from_message(msg)));
            }
            (Calling | Proceeding, _) => {
                let invite_to = owned_header(&self.request, HeaderName::To, "To")?;
                let to = msg.header(HeaderName::To).map(scan::trim_lws).unwrap_or(invite_to);
                let ack = build_ack(&self.request, to)?.to_bytes();
                self.timers.clear_all();
                self.out.send(ack.clone());
                self.ack = Some(ack);
                self.out.emit(Event::Final(OwnedMessage::from_message(msg)));
                self.state = Completed;
                self.shed();
                self.arm_or_terminate(now, Timer::D);
            }
            (Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.out.send(ack.clone());
                }
            }
            (Accepted, 200..=299) => self.out.emit(Event::Final(OwnedMessage::from_message(msg))),
            _ => {}
        }
        Ok(())
    }

    /// Builds the CANCEL for this INVITE (RFC 3261 §9.1). Allowed in Proceeding only: before a
    /// provisional response the CANCEL must wait, after a final one there is nothing to cancel.
    pub fn cancel_request(&self) -> Result<OwnedMessage, TransactionError> {
        match self.state {
            ClientInviteState::Proceeding => build_cancel(&self.request),
            s => Err(TransactionError::InvalidState { state: s.name(), action: "CANCEL" }),
        }
    }

    /// After the final response: no more retransmissions or CANCEL, so the request's bytes and
    /// all but its skeleton are freed while the timers run out.
    fn shed(&mut self) {
        self.request_bytes = Vec::new();
        self.request.shrink_to_skeleton();
    }

    fn arm_or_terminate(&mut self, now: Instant, timer: Timer) {
        match self.config.duration(timer, self.reliability) {
            Some(d) if !d.is_zero() => self.timers.set(timer, now + d),
            _ => self.terminate(),
        }
    }

    fn terminate(&mut self) {
        if self.state != ClientInviteState::Terminated {
            self.state = ClientInviteState::Terminated;
            self.timers.clear_all();
            self.out.emit(Event::Terminated);
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::A, ClientInviteState::Calling) => {
                    self.out.send(self.request_bytes.clone());
                    self.a_interval = self.a_interval.saturating_mul(2);
                    self.timers.set(Timer::A, now + self.a_interval);
                }
                (Timer::B, ClientInviteState::Calling) => {
                    self.out.emit(Event::Timeout(Timer::B));
                    self.terminate();
                }
                (Timer::D, ClientInviteState::Completed) | (Timer::M, ClientInviteState::Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send the INVITE or the ACK: inform the TU and terminate.
    pub fn handle_transport_error(&mut self) {
        if self.state != ClientInviteState::Terminated {
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

    const MS: Duration = Duration::from_millis(1);

    fn invite() -> OwnedMessage {
        OwnedMessage::request(Method::Invite, "sip:bob@example.com")
            .with("Via", "SIP/2.0/UDP edge.example.net;branch=z9hG4bKci1")
            .with("Max-Forwards", "70")
            .with("From", "<sip:alice@example.net>;tag=a")
            .with("To", "<sip:bob@example.com>")
            .with("Call-ID", "ci1")
            .with("CSeq", "1 INVITE")
    }

    fn resp(status: u16) -> Vec<u8> {
        format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP edge.example.net;branch=z9hG4bKci1\r\n\
             From: <sip:alice@example.net>;tag=a\r\nTo: <sip:bob@example.com>;tag=b\r\nCall-ID: ci1\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn feed(t: &mut ClientInvite, now: Instant, status: u16) {
        let raw = resp(status);
        t.handle_response(now, &parse_datagram(&raw, &Limits::default()).unwrap()).unwrap();
    }

    fn drain(t: &mut ClientInvite) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    #[test]
    fn timer_a_doubles_without_cap_until_b() {
        let t0 = Instant::now();
        let mut t = ClientInvite::new(t0, invite(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        assert_eq!(drain(&mut t).len(), 1);
        let mut sent_at = Vec::new();
        while let Some((timer, at)) = t.next_timer() {
            t.handle_timeout(at);
            if timer == Timer::A {
                assert_eq!(drain(&mut t).len(), 1);
                sent_at.push((at - t0).as_millis());
            }
        }
        // A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (intervals 0.5, 1, 2, 4, 8, 16 s: beyond T2), then B at 32 s.
        assert_eq!(sent_at, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(t.poll_event(), Some(Event::Timeout(Timer::B)));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
        assert!(t.is_terminated());
    }

    #[test]
    fn provisional_stops_retransmission_and_timer_b() {
        let t0 = Instant::now();
        let mut t = ClientInvite::new(t0, invite(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        drain(&mut t);
        feed(&mut t, t0 + 100 * MS, 180);
        assert_eq!(t.state(), ClientInviteState::Proceeding);
        assert_eq!(t.poll_event().unwrap().status(), Some(180));
        assert_eq!(t.poll_timeout(), None);
        t.handle_timeout(t0 + Duration::from_secs(60));
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.state(), ClientInviteState::Proceeding);
        assert!(t.cancel_request().is_ok());
    }

    #[test]
    fn cancel_only_in_proceeding() {
        let t0 = Instant::now();
        let t = ClientInvite::new(t0, invite(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        assert_eq!(t.cancel_request(), Err(TransactionError::InvalidState { state: "Calling", action: "CANCEL" }));
    }

    #[test]
    fn accepted_passes_every_2xx_until_m() {
        let t0 = Instant::now();
        let mut t = ClientInvite::new(t0, invite(), Reliability::Reliable, &TimerConfig::default()).unwrap();
        drain(&mut t);
        feed(&mut t, t0, 200);
        assert_eq!(t.state(), ClientInviteState::Accepted);
        assert_eq!(t.next_timer(), Some((Timer::M, t0 + Duration::from_secs(32))));
        feed(&mut t, t0 + MS, 200);
        feed(&mut t, t0 + MS, 486);
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events.iter().filter_map(Event::status).collect::<Vec<_>>(), vec![200, 200]);
        assert!(drain(&mut t).is_empty(), "no ACK for 2xx from the transaction");
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn a_finished_invite_keeps_only_its_skeleton_and_still_acks_retransmitted_finals() {
        let t0 = Instant::now();
        let with_body = || invite().with("Contact", "<sip:edge.example.net>").with("Content-Type", "application/sdp");
        let mut ok = ClientInvite::new(t0, with_body(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        ok.request.body = b"v=0\r\n".to_vec();
        drain(&mut ok);
        feed(&mut ok, t0, 200);
        assert!(ok.request_bytes.is_empty() && ok.request().body.is_empty());
        assert_eq!(ok.request().get("Contact"), None);
        assert_eq!(ok.request().get("Call-ID"), Some(&b"ci1"[..]));

        let mut busy = ClientInvite::new(t0, with_body(), Reliability::Unreliable, &TimerConfig::default()).unwrap();
        drain(&mut busy);
        feed(&mut busy, t0, 486);
        let ack = drain(&mut busy);
        assert_eq!(ack.len(), 1);
        assert!(busy.request_bytes.is_empty() && busy.request().get("Max-Forwards").is_none());
        feed(&mut busy, t0 + MS, 486);
        assert_eq!(drain(&mut busy), ack, "the stored ACK answers a retransmitted final response");
    }

    #[test]
    fn wrong_method_and_kind() {
        let opts = OwnedMessage::request(Method::Options, "sip:a@b").with("Via", "SIP/2.0/UDP h;branch=z9hG4bK1");
        assert!(matches!(
            ClientInvite::new(Instant::now(), opts, Reliability::Unreliable, &TimerConfig::default()),
            Err(TransactionError::WrongMethod { .. })
        ));
        let no_to = OwnedMessage::request(Method::Invite, "sip:a@b")
            .with("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
            .with("CSeq", "1 INVITE");
        assert!(matches!(
            ClientInvite::new(Instant::now(), no_to, Reliability::Unreliable, &TimerConfig::default()),
            Err(TransactionError::MissingHeader(_))
        ));
    }
}
