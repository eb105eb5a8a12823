//! A bounded table of transactions: routes each incoming message to its transaction, creates
//! server transactions for new requests, starts client transactions (and CANCELs) for the TU,
//! and forgets transactions once they terminate.
//!
//! The table is sans-IO like the machines it holds. `R` is the caller's handle for where a
//! transaction's messages go — a socket address, a connection id — stored with the transaction
//! and handed back with every [`Transmit`]. For a server transaction it is the handle given with
//! the request that created it.
//!
//! Deadlines are indexed in a `BTreeSet`, so [`TransactionTable::poll_timeout`] is O(log n) and
//! [`TransactionTable::handle_timeout`] touches only the transactions that are due.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use crate::builder::OwnedMessage;
use crate::message::Message;
use crate::name::Method;

use super::build::{owned_method, response_for};
use super::error::TransactionError;
use super::key::TransactionKey;
use super::timers::TimerConfig;
use super::{ClientInviteState, Event, Reliability, ServerInviteState, Transaction};

/// A message to send: which transaction it belongs to, where it goes, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<R> {
    /// The transaction that sends it.
    pub key: TransactionKey,
    /// The handle given when the transaction was created.
    pub remote: R,
    /// The serialized message.
    pub bytes: Vec<u8>,
}

/// An event for the TU, with the transaction it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEvent {
    /// The transaction.
    pub key: TransactionKey,
    /// What happened.
    pub event: Event,
}

/// What the table did with an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Given to an existing transaction (a response, a retransmission, an ACK). Any event for
    /// the TU is queued.
    Matched(TransactionKey),
    /// A new server transaction was created; its [`Event::Request`] is queued. For a CANCEL,
    /// `cancels` is the INVITE server transaction it targets, if that still exists.
    Created {
        /// The new transaction.
        key: TransactionKey,
        /// For a CANCEL: the INVITE server transaction it cancels.
        cancels: Option<TransactionKey>,
    },
    /// A response that matches no client transaction: late (after termination) or unknown. A
    /// 2xx to INVITE may still concern a dialog; anything else is normally dropped.
    StrayResponse,
    /// An ACK that matches no INVITE server transaction: the ACK for a 2xx (RFC 3261 §17.2.3
    /// gives it a new branch), for the dialog layer.
    StrayAck,
}

#[derive(Debug)]
struct Entry<R> {
    id: u64,
    remote: R,
    reliability: Reliability,
    txn: Transaction,
    deadline: Option<Instant>,
    cancel_pending: bool,
}

/// Transactions by key, bounded.
#[derive(Debug)]
pub struct TransactionTable<R> {
    config: TimerConfig,
    capacity: usize,
    entries: crate::FastMap<TransactionKey, Entry<R>>,
    by_id: crate::FastMap<u64, TransactionKey>,
    deadlines: BTreeSet<(Instant, u64)>,
    next_id: u64,
    transmits: VecDeque<Transmit<R>>,
    events: VecDeque<TableEvent>,
}

impl<R: Clone> TransactionTable<R> {
    /// An empty table that holds at most `capacity` transactions (CANCEL client transactions
    /// started by [`TransactionTable::cancel`] are always admitted: there is at most one per
    /// INVITE).
    pub fn new(config: TimerConfig, capacity: usize) -> Self {
        TransactionTable {
            config,
            capacity,
            entries: crate::FastMap::default(),
            by_id: crate::FastMap::default(),
            deadlines: BTreeSet::new(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// How many transactions are live.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bound given at construction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A live transaction, for inspection.
    pub fn get(&self, key: &TransactionKey) -> Option<&Transaction> {
        self.entries.get(key).map(|e| &e.txn)
    }

    fn insert(&mut self, now: Instant, key: TransactionKey, remote: R, reliability: Reliability, txn: Transaction) {
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(id, key.clone());
        self.entries.insert(key.clone(), Entry { id, remote, reliability, txn, deadline: None, cancel_pending: false });
        self.after(now, &key);
    }

    /// Starts a client transaction for `request` (INVITE or non-INVITE by method) and queues
    /// the request for sending to `remote`.
    pub fn start_client(
        &mut self,
        now: Instant,
        request: OwnedMessage,
        reliability: Reliability,
        remote: R,
    ) -> Result<TransactionKey, TransactionError> {
        if self.entries.len() >= self.capacity {
            return Err(TransactionError::TableFull { capacity: self.capacity });
        }
        self.start_client_unbounded(now, request, reliability, remote)
    }

    fn start_client_unbounded(
        &mut self,
        now: Instant,
        request: OwnedMessage,
        reliability: Reliability,
        remote: R,
    ) -> Result<TransactionKey, TransactionError> {
        let key = TransactionKey::for_outgoing(&request)?;
        if self.entries.contains_key(&key) {
            return Err(TransactionError::DuplicateKey);
        }
        let txn = Transaction::client(now, request, reliability, &self.config)?;
        self.insert(now, key.clone(), remote, reliability, txn);
        Ok(key)
    }

    /// Cancels a pending INVITE client transaction (RFC 3261 §9.1) and returns the key of the
    /// CANCEL's own client transaction, sent to the INVITE's `remote`. Before any provisional
    /// response the CANCEL is held back and sent when the first one arrives; if the INVITE
    /// completes first, there is nothing left to cancel and no CANCEL is sent.
    pub fn cancel(&mut self, now: Instant, invite: &TransactionKey) -> Result<TransactionKey, TransactionError> {
        let entry = self.entries.get_mut(invite).ok_or(TransactionError::NoSuchTransaction)?;
        let Transaction::ClientInvite(t) = &entry.txn else {
            return Err(TransactionError::NotCancellable);
        };
        let cancel_key = match invite {
            TransactionKey::Client { branch, .. } => {
                TransactionKey::Client { branch: branch.clone(), method: Method::Cancel }
            }
            _ => return Err(TransactionError::NotCancellable),
        };
        match t.state() {
            ClientInviteState::Calling => {
                entry.cancel_pending = true;
                Ok(cancel_key)
            }
            ClientInviteState::Proceeding => {
                let cancel = t.cancel_request()?;
                let (reliability, remote) = (entry.reliability, entry.remote.clone());
                self.start_client_unbounded(now, cancel, reliability, remote)
            }
            s => Err(TransactionError::InvalidState { state: s.name(), action: "CANCEL" }),
        }
    }

    /// Routes a parsed message received from `remote` over a transport of `reliability`.
    /// A request that matches nothing creates a server transaction (unless the table is full:
    /// [`TransactionError::TableFull`], answer 503 statelessly). A message that cannot be
    /// keyed (no Via, bad CSeq) is an error; answer or drop it as [`crate::disposition`] says.
    pub fn handle_message(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        reliability: Reliability,
        remote: R,
    ) -> Result<Incoming, TransactionError> {
        let Some(method) = msg.method() else {
            let key = TransactionKey::for_response(msg)?;
            let Some(entry) = self.entries.get_mut(&key) else {
                return Ok(Incoming::StrayResponse);
            };
            match &mut entry.txn {
                Transaction::ClientInvite(t) => t.handle_response(now, msg)?,
                Transaction::ClientNonInvite(t) => t.handle_response(now, msg)?,
                _ => return Ok(Incoming::StrayResponse),
            }
            self.after(now, &key);
            return Ok(Incoming::Matched(key));
        };
        let key = TransactionKey::for_request(msg)?;
        if *method == Method::Ack {
            return self.handle_ack(now, msg, key);
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            match &mut entry.txn {
                Transaction::ServerInvite(t) => t.handle_request(now, msg)?,
                Transaction::ServerNonInvite(t) => t.handle_request(now, msg)?,
                _ => return Err(TransactionError::DuplicateKey),
            }
            self.after(now, &key);
            return Ok(Incoming::Matched(key));
        }
        if self.entries.len() >= self.capacity {
            return Err(TransactionError::TableFull { capacity: self.capacity });
        }
        let txn = Transaction::server(msg, reliability, &self.config)?;
        self.insert(now, key.clone(), remote, reliability, txn);
        let cancels = if *method == Method::Cancel { self.cancel_target(&key) } else { None };
        Ok(Incoming::Created { key, cancels })
    }

    fn handle_ack(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        key: TransactionKey,
    ) -> Result<Incoming, TransactionError> {
        // RFC 2543: the ACK of an initial INVITE carries the response's To tag, which the
        // INVITE did not; look for the INVITE without a tag and check the tag the server sent.
        let ack_tag = key.to_tag().map(<[u8]>::to_vec);
        let candidates = [key.clone(), key.without_to_tag()];
        for (i, k) in candidates.iter().enumerate() {
            let Some(entry) = self.entries.get_mut(k) else { continue };
            let Transaction::ServerInvite(t) = &mut entry.txn else { continue };
            if i == 1 && (ack_tag.is_none() || t.response_to_tag() != ack_tag.as_deref()) {
                continue;
            }
            t.handle_request(now, msg)?;
            let k = k.clone();
            self.after(now, &k);
            return Ok(Incoming::Matched(k));
        }
        Ok(Incoming::StrayAck)
    }

    /// The INVITE server transaction that the CANCEL server transaction `cancel` targets
    /// (RFC 3261 §9.2), if it is still live.
    pub fn cancel_target(&self, cancel: &TransactionKey) -> Option<TransactionKey> {
        let target = cancel.cancel_target()?;
        matches!(self.entries.get(&target).map(|e| &e.txn), Some(Transaction::ServerInvite(_))).then_some(target)
    }

    /// Answers the CANCEL server transaction `cancel` as a UAS does (RFC 3261 §9.2): when its
    /// INVITE server transaction has not sent a final response yet, `200 OK` to the CANCEL and
    /// `487 Request Terminated` (with `to_tag`) to the INVITE, returning the INVITE's key;
    /// otherwise `481 Call/Transaction Does Not Exist` to the CANCEL and `None`.
    pub fn answer_cancel(
        &mut self,
        now: Instant,
        cancel: &TransactionKey,
        to_tag: Option<&str>,
    ) -> Result<Option<TransactionKey>, TransactionError> {
        let cancel_req = match self.get(cancel) {
            Some(Transaction::ServerNonInvite(t)) if owned_method(t.request()) == Ok(&Method::Cancel) => {
                t.request().clone()
            }
            Some(_) => {
                return Err(TransactionError::WrongMethod { expected: "CANCEL", got: cancel.method().to_string() })
            }
            None => return Err(TransactionError::NoSuchTransaction),
        };
        let pending = self.cancel_target(cancel).and_then(|k| match self.get(&k) {
            Some(Transaction::ServerInvite(t)) if t.state() == ServerInviteState::Proceeding => {
                Some((k, t.request().clone()))
            }
            _ => None,
        });
        match pending {
            Some((invite_key, invite)) => {
                self.send_response(now, cancel, response_for(&cancel_req, 200, "OK", to_tag))?;
                self.send_response(now, &invite_key, response_for(&invite, 487, "Request Terminated", to_tag))?;
                Ok(Some(invite_key))
            }
            None => {
                let r = response_for(&cancel_req, 481, "Call/Transaction Does Not Exist", to_tag);
                self.send_response(now, cancel, r)?;
                Ok(None)
            }
        }
    }

    /// Sends a response from the TU on the server transaction `key`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: OwnedMessage,
    ) -> Result<(), TransactionError> {
        let entry = self.entries.get_mut(key).ok_or(TransactionError::NoSuchTransaction)?;
        match &mut entry.txn {
            Transaction::ServerInvite(t) => t.send_response(now, response)?,
            Transaction::ServerNonInvite(t) => t.send_response(now, response)?,
            _ => return Err(TransactionError::WrongKind { expected: "server transaction" }),
        }
        self.after(now, key);
        Ok(())
    }

    /// Sends `100 Trying` on the INVITE server transaction `key`.
    pub fn send_trying(&mut self, now: Instant, key: &TransactionKey) -> Result<(), TransactionError> {
        match self.entries.get_mut(key).map(|e| &mut e.txn) {
            Some(Transaction::ServerInvite(t)) => t.send_trying(now)?,
            Some(_) => return Err(TransactionError::WrongMethod { expected: "INVITE", got: key.method().to_string() }),
            None => return Err(TransactionError::NoSuchTransaction),
        }
        self.after(now, key);
        Ok(())
    }

    /// Reports that sending a message of transaction `key` failed.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) -> Result<(), TransactionError> {
        self.entries.get_mut(key).ok_or(TransactionError::NoSuchTransaction)?.txn.handle_transport_error();
        self.after(now, key);
        Ok(())
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self.deadlines.iter().take_while(|(at, _)| *at <= now).map(|&(_, id)| id).collect();
        for id in due {
            let Some(key) = self.by_id.get(&id).cloned() else { continue };
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.txn.handle_timeout(now);
            }
            self.after(now, &key);
        }
    }

    /// The earliest deadline of any transaction.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<R>> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TableEvent> {
        self.events.pop_front()
    }

    /// Drains a transaction's outputs into the table's queues, re-indexes its deadline, starts
    /// a held-back CANCEL on the first provisional response and forgets a terminated one.
    fn after(&mut self, now: Instant, key: &TransactionKey) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        while let Some(bytes) = entry.txn.poll_transmit() {
            self.transmits.push_back(Transmit { key: key.clone(), remote: entry.remote.clone(), bytes });
        }
        let mut provisional = false;
        while let Some(event) = entry.txn.poll_event() {
            provisional |= matches!(event, Event::Provisional(_));
            self.events.push_back(TableEvent { key: key.clone(), event });
        }
        let deadline = entry.txn.poll_timeout();
        if deadline != entry.deadline {
            if let Some(old) = entry.deadline {
                self.deadlines.remove(&(old, entry.id));
            }
            if let Some(new) = deadline {
                self.deadlines.insert((new, entry.id));
            }
            entry.deadline = deadline;
        }
        let cancel = if provisional && entry.cancel_pending {
            entry.cancel_pending = false;
            match &entry.txn {
                Transaction::ClientInvite(t) => {
                    t.cancel_request().ok().map(|c| (c, entry.reliability, entry.remote.clone()))
                }
                _ => None,
            }
        } else {
            None
        };
        if entry.txn.is_terminated() {
            let id = entry.id;
            if let Some(old) = entry.deadline {
                self.deadlines.remove(&(old, id));
            }
            self.by_id.remove(&id);
            self.entries.remove(key);
        }
        if let Some((request, reliability, remote)) = cancel {
            // Cannot fail for a CANCEL built from a live INVITE with a unique branch.
            let _ = self.start_client_unbounded(now, request, reliability, remote);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use std::time::Duration;

    fn options(branch: &str) -> OwnedMessage {
        OwnedMessage::request(Method::Options, "sip:peer.example.com")
            .with("Via", format!("SIP/2.0/UDP edge;branch={branch}"))
            .with("From", "<sip:edge@example.net>;tag=a")
            .with("To", "<sip:peer.example.com>")
            .with("Call-ID", branch)
            .with("CSeq", "1 OPTIONS")
    }

    #[test]
    fn deadline_index_follows_the_transactions() {
        let t0 = Instant::now();
        let mut t: TransactionTable<u32> = TransactionTable::new(TimerConfig::default(), 100);
        for i in 0..50u32 {
            let start = t0 + Duration::from_millis(u64::from(i) * 10);
            let rel = if i % 2 == 0 { Reliability::Unreliable } else { Reliability::Reliable };
            t.start_client(start, options(&format!("z9hG4bK{i}")), rel, i).unwrap();
        }
        assert_eq!(t.len(), 50);
        assert_eq!(t.deadlines.len(), 50);
        // The earliest deadline is timer E of the first (UDP) transaction.
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        let mut fired = 0;
        while let Some(at) = t.poll_timeout() {
            t.handle_timeout(at);
            fired += 1;
            assert!(t.poll_timeout().is_none_or(|next| next > at), "nothing due at {at:?} is left");
            assert_eq!(t.by_id.len(), t.entries.len());
            assert_eq!(t.deadlines.len(), t.entries.iter().filter(|(_, e)| e.deadline.is_some()).count());
        }
        assert!(t.is_empty());
        assert!(t.by_id.is_empty() && t.deadlines.is_empty());
        assert!(fired >= 50);
        let timeouts =
            std::iter::from_fn(|| t.poll_event()).filter(|e| e.event == Event::Timeout(super::super::Timer::F));
        assert_eq!(timeouts.count(), 50);
        // 25 UDP transactions sent 1 + 10 copies each, 25 reliable ones 1 each.
        assert_eq!(std::iter::from_fn(|| t.poll_transmit()).count(), 25 * 11 + 25);
    }
}
