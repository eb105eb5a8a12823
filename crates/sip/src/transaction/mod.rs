//! # Transactions (RFC 3261 §17, with the RFC 6026 amendments)
//!
//! Four state machines — INVITE client (Fig. 5), non-INVITE client (Fig. 6), INVITE server
//! (Fig. 7) and non-INVITE server (Fig. 8) — plus the keys that match messages to them
//! (§17.1.3, §17.2.3 with the RFC 2543 fallback) and a bounded [`TransactionTable`] that routes
//! incoming messages, creates server transactions and forgets terminated ones.
//!
//! ## Shape: sans-IO, as quinn-proto
//!
//! A machine owns no socket, task or clock. The caller feeds it:
//!
//! * messages (`handle_response` on clients, `handle_request` on servers, `send_response` from
//!   the TU on servers), each with the `Instant` it considers "now";
//! * `handle_timeout(now)` when the deadline from `poll_timeout()` has passed;
//! * `handle_transport_error(now)` when sending failed (ICMP error, connection lost).
//!
//! and drains, after every input:
//!
//! * `poll_transmit()` — serialized messages to send to the transaction's peer (requests,
//!   retransmissions, ACKs for non-2xx, responses);
//! * `poll_event()` — [`Event`]s for the transaction user (TU): responses, the request, an ACK
//!   for a 2xx, a timeout, a transport error, termination;
//! * `poll_timeout()` — the next deadline, or `None` once terminated.
//!
//! Tests therefore run on a simulated clock: take one `Instant`, add durations to it, call
//! `handle_timeout`. Timer intervals are recomputed from the `now` of the firing call, so a late
//! caller gets one retransmission, not a burst.
//!
//! ## Transport rules
//!
//! [`Reliability::Reliable`] (TCP, TLS) arms no retransmission timer (A, E, G) and gives timers
//! D, I, J and K a value of zero: the machine goes straight to Terminated where RFC 3261 would
//! wait for retransmissions that cannot happen.
//!
//! ## RFC 6026
//!
//! Implemented. A 2xx to an INVITE moves the client to *Accepted* (timer M = 64*T1), where further
//! 2xx responses (retransmissions, forks) are still passed to the TU, which ACKs each; the server
//! moves to *Accepted* (timer L = 64*T1), absorbs INVITE retransmissions, sends the 2xx
//! retransmissions its TU makes and passes the ACK for the 2xx to the TU. Retransmitting the 2xx
//! until the ACK (RFC 3261 §13.3.1.4) and sending the ACK for a 2xx stay the TU's job.
//!
//! ## What is not here
//!
//! Timer C (proxy INVITE timeout) and the 200 ms automatic 100 Trying: both are TU decisions; the
//! INVITE server offers [`ServerInvite::send_trying`]. Transport selection, DNS failover and the
//! Via `received`/`rport` return address are the caller's (it keeps them in the table's `R`).

/// The output side every machine shares (each keeps an `out: Outbox` and `timers: Timers`):
/// `poll_transmit`, `poll_event`, `poll_timeout`, `next_timer`.
macro_rules! machine_outputs {
    () => {
        /// The next message to send.
        pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
            self.out.next_transmit()
        }

        /// The next event for the TU.
        pub fn poll_event(&mut self) -> Option<Event> {
            self.out.next_event()
        }

        /// The next deadline; `None` once terminated.
        pub fn poll_timeout(&self) -> Option<Instant> {
            self.timers.next().map(|(_, at)| at)
        }

        /// The next timer and its deadline.
        pub fn next_timer(&self) -> Option<(Timer, Instant)> {
            self.timers.next()
        }
    };
}

mod build;
mod client_invite;
mod client_non_invite;
mod error;
mod key;
mod server_invite;
mod server_non_invite;
mod table;
mod timers;

use std::collections::VecDeque;
use std::time::Instant;

use crate::builder::OwnedMessage;
use crate::message::Message;

pub use build::{build_ack, build_cancel, response_for, trying};
pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use error::TransactionError;
pub use key::TransactionKey;
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use table::{Incoming, TableEvent, TransactionTable, Transmit};
pub use timers::{Timer, TimerConfig};

/// Whether the transport retransmits for us (TCP, TLS, SCTP) or not (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// UDP: the transaction retransmits and waits for stray retransmissions.
    Unreliable,
    /// TCP, TLS, SCTP, WebSocket: no retransmissions, zero wait timers.
    Reliable,
}

impl Reliability {
    /// From a Via transport token: `UDP` is unreliable, everything else reliable.
    pub fn from_via_transport(transport: &[u8]) -> Reliability {
        if transport.eq_ignore_ascii_case(b"UDP") {
            Reliability::Unreliable
        } else {
            Reliability::Reliable
        }
    }
}

/// What a transaction tells its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Client: a 1xx response.
    Provisional(OwnedMessage),
    /// Client: a final response. For INVITE in the Accepted state, every further 2xx too
    /// (RFC 6026), each of which the TU acknowledges.
    Final(OwnedMessage),
    /// Server: the request that created the transaction (retransmissions are absorbed).
    Request(OwnedMessage),
    /// INVITE server in the Accepted state: the ACK for a 2xx (RFC 6026).
    Ack(OwnedMessage),
    /// Timer B or F (no final response: the TU answers 408 upstream or fails over) or timer H
    /// (no ACK for a non-2xx final response).
    Timeout(Timer),
    /// The caller reported that a message of this transaction could not be sent.
    TransportError,
    /// The transaction has ended; it will produce nothing more. Always the last event.
    Terminated,
}

impl Event {
    /// The status of a response event.
    pub fn status(&self) -> Option<u16> {
        match self {
            Event::Provisional(m) | Event::Final(m) => match m.start {
                crate::builder::OwnedStart::Response { status, .. } => Some(status),
                crate::builder::OwnedStart::Request { .. } => None,
            },
            _ => None,
        }
    }
}

/// The output queues every machine has.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl Outbox {
    pub(crate) fn send(&mut self, bytes: Vec<u8>) {
        self.transmits.push_back(bytes);
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn next_transmit(&mut self) -> Option<Vec<u8>> {
        pop_or_release(&mut self.transmits)
    }

    fn next_event(&mut self) -> Option<Event> {
        pop_or_release(&mut self.events)
    }
}

/// The next item; a drained queue gives its storage back, so that a finished transaction waiting
/// out its timers holds no empty queue (issue 9, memory per call).
fn pop_or_release<T>(q: &mut VecDeque<T>) -> Option<T> {
    let next = q.pop_front();
    if next.is_none() && q.capacity() > 0 {
        *q = VecDeque::new();
    }
    next
}

/// Any of the four machines, for code (such as [`TransactionTable`]) that holds them together.
#[derive(Debug)]
#[non_exhaustive]
pub enum Transaction {
    /// INVITE client.
    ClientInvite(ClientInvite),
    /// Non-INVITE client.
    ClientNonInvite(ClientNonInvite),
    /// INVITE server.
    ServerInvite(ServerInvite),
    /// Non-INVITE server.
    ServerNonInvite(ServerNonInvite),
}

macro_rules! each {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            Transaction::ClientInvite($t) => $e,
            Transaction::ClientNonInvite($t) => $e,
            Transaction::ServerInvite($t) => $e,
            Transaction::ServerNonInvite($t) => $e,
        }
    };
}

impl Transaction {
    /// Starts a client transaction for `request`: INVITE or non-INVITE by its method.
    pub fn client(
        now: Instant,
        request: OwnedMessage,
        reliability: Reliability,
        config: &TimerConfig,
    ) -> Result<Transaction, TransactionError> {
        if build::owned_method(&request)? == &crate::name::Method::Invite {
            Ok(Transaction::ClientInvite(ClientInvite::new(now, request, reliability, config)?))
        } else {
            Ok(Transaction::ClientNonInvite(ClientNonInvite::new(now, request, reliability, config)?))
        }
    }

    /// Creates the server transaction for a received request: INVITE or non-INVITE by method.
    pub fn server(
        msg: &Message<'_>,
        reliability: Reliability,
        config: &TimerConfig,
    ) -> Result<Transaction, TransactionError> {
        if msg.method() == Some(&crate::name::Method::Invite) {
            Ok(Transaction::ServerInvite(ServerInvite::new(msg, reliability, config)?))
        } else {
            Ok(Transaction::ServerNonInvite(ServerNonInvite::new(msg, reliability, config)?))
        }
    }

    /// Feeds timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        each!(self, t => t.handle_timeout(now))
    }

    /// Reports that a message of this transaction could not be sent.
    pub fn handle_transport_error(&mut self) {
        each!(self, t => t.handle_transport_error())
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        each!(self, t => t.poll_transmit())
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        each!(self, t => t.poll_event())
    }

    /// The next deadline; `None` when no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, t => t.poll_timeout())
    }

    /// The next timer to fire and when.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        each!(self, t => t.next_timer())
    }

    /// Whether the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        each!(self, t => t.is_terminated())
    }

    /// The name of the current state (`"Calling"`, `"Completed"` …), for logs.
    pub fn state_name(&self) -> &'static str {
        each!(self, t => t.state().name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_outbox_holds_no_storage() {
        let mut o = Outbox::default();
        o.send(b"SIP/2.0 200 OK\r\n\r\n".to_vec());
        o.emit(Event::Terminated);
        assert!(o.transmits.capacity() > 0 && o.events.capacity() > 0);
        assert!(o.next_transmit().is_some() && o.next_event().is_some());
        assert!(o.next_transmit().is_none() && o.next_event().is_none());
        assert_eq!((o.transmits.capacity(), o.events.capacity()), (0, 0));
        o.send(Vec::new());
        assert_eq!(o.next_transmit(), Some(Vec::new()), "usable again");
    }
}
