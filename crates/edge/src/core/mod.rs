//! The B2BUA core, sans-IO (DESIGN.md §1): bytes and `Instant`s in, [`Output`]s and the next
//! deadline out. It owns the transaction table (`trunkgate_sip::transaction`), the calls and
//! their two dialogs, peer health, and the edge's own timers (2xx retransmission on unreliable
//! legs, INVITE failover timeout, OPTIONS pings). It never touches a socket, so every call flow
//! can be tested in memory on a simulated clock; `crate::runtime` drives it with tokio.
//!
//! Roles: a request from the trunk side (TLS) starts an *inbound* call toward the inside
//! target; a request from the inside starts an *outbound* call over the trunk chosen by
//! [`crate::routing`]. Leg A is where the INVITE came from, leg B the one the edge originates.

mod call;
mod dialog;
mod health;
pub mod leg;
mod media;
mod stateless;
pub mod types;

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use trunkgate_sip::transaction::{Event, TableEvent};
use trunkgate_sip::FastMap;
use trunkgate_sip::{
    looks_like_request, parse_datagram, parse_stream_message, validate_request, validate_response, Incoming, Limits,
    Method, Policy, Reliability, Scheme, TimerConfig, TransactionKey, TransactionTable,
};

use crate::config::{Config, Side, Transport};
use crate::routing::MatchedBy;
pub use leg::LocalAddr;
use leg::{Leg, LocalAddr as Local};
pub use types::{CallRecord, ConnId, Dest, Origin, Output, Trace};

/// Which leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegSel {
    /// Where the INVITE came from.
    A,
    /// The leg the edge originated.
    B,
}

/// What a transaction is for.
#[derive(Debug, Clone)]
pub(crate) enum Use {
    AInvite(u64),
    BInvite(u64),
    Relay {
        call: u64,
        server: TransactionKey,
        reoffer: Option<LegSel>,
    },
    Bye,
    Ping {
        trunk: usize,
        peer: usize,
    },
    /// An INVITE the edge failed over from: a late 2xx is ACKed and hung up (§13.2.2.4). The
    /// leg as it was when that INVITE was sent.
    Abandoned(Box<Leg>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    Retransmit2xx { call: u64, interval_ms: u64 },
    InviteTimeout { call: u64, attempt: u32 },
    Ping { trunk: usize, peer: usize },
    MediaCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    Trying,
    Early,
    Answered,
    Confirmed,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub id: u64,
    pub inbound: bool,
    pub trunk: usize,
    pub matched_by: MatchedBy,
    pub a: Leg,
    pub b: Leg,
    pub a_invite: TransactionKey,
    pub a_request: trunkgate_sip::OwnedMessage,
    pub b_invite: Option<TransactionKey>,
    pub number: String,
    pub peer: usize,
    pub attempts: u32,
    pub state: CallState,
    pub cancelled: bool,
    pub answered_at: Option<Instant>,
    pub final_to_a: Option<trunkgate_sip::OwnedMessage>,
    pub b_ack: Option<trunkgate_sip::OwnedMessage>,
    pub max_forwards: u8,
    /// Anchored media (None: media off or no SDP offer).
    pub media: Option<trunkgate_media::MediaSession>,
    /// The running relay, once the answer came.
    pub relay: Option<trunkgate_media::RelayHandle>,
    /// The SDP offered on leg B.
    pub b_offer: Option<Vec<u8>>,
    /// The SDP answer given to leg A.
    pub a_answer: Option<Vec<u8>>,
}

/// Counters for operations and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received.
    pub received: u64,
    /// Messages that did not parse or validate (answered or dropped).
    pub rejected: u64,
    /// Calls started.
    pub calls: u64,
    /// Calls that were answered.
    pub answered: u64,
}

/// The B2BUA.
#[derive(Debug)]
pub struct Core {
    pub(crate) cfg: Config,
    pub(crate) trunk_local: Option<Local>,
    pub(crate) inside_local: Local,
    pub(crate) inside_dest: Dest,
    pub(crate) limits: Limits,
    pub(crate) policy: Policy,
    pub(crate) timers_cfg: TimerConfig,
    pub(crate) table: TransactionTable<Dest>,
    pub(crate) calls: FastMap<u64, Call>,
    pub(crate) dialogs: FastMap<(String, String), (u64, LegSel)>,
    pub(crate) uses: FastMap<TransactionKey, Use>,
    pub(crate) origins: FastMap<TransactionKey, Origin>,
    pub(crate) conn_sides: FastMap<ConnId, Side>,
    pub(crate) health: Vec<Vec<health::PeerState>>,
    pub(crate) timers: BTreeSet<(Instant, TimerKind)>,
    pub(crate) out: VecDeque<Output>,
    pub(crate) next_call: u64,
    pub(crate) trace: bool,
    pub(crate) draining: bool,
    pub(crate) stats: Stats,
    pub(crate) media: Option<trunkgate_media::MediaManager>,
}

/// Body types the edge passes through.
const ACCEPT: &[&str] =
    &["application/sdp", "multipart/mixed", "application/dtmf-relay", "application/dtmf", "text/plain"];

impl Core {
    /// A core for this configuration. `trace` turns on [`Output::Trace`] for every message.
    pub fn new(cfg: Config, trace: bool) -> Core {
        let local = |side: Side, transport: Option<Transport>| {
            cfg.listeners.iter().find(|l| l.side == side && transport.is_none_or(|t| l.transport == t)).map(|l| Local {
                host: l.advertise.clone().unwrap_or_else(|| l.address.ip().to_string()),
                port: l.address.port(),
                transport: l.transport,
            })
        };
        let trunk_local = local(Side::Trunk, Some(Transport::Tls));
        let inside_local = local(Side::Inside, Some(cfg.inside.transport)).unwrap_or(Local {
            host: "127.0.0.1".into(),
            port: 5060,
            transport: Transport::Udp,
        });
        let inside_dest = match cfg.inside.transport {
            Transport::Tcp => Dest::InsideTcp(cfg.inside.target),
            _ => Dest::Udp {
                listener: cfg
                    .listeners
                    .iter()
                    .position(|l| l.side == Side::Inside && l.transport == Transport::Udp)
                    .unwrap_or(0),
                addr: cfg.inside.target,
            },
        };
        let limits = Limits { max_message_size: cfg.edge.max_message_size, ..Limits::default() };
        let policy = Policy {
            schemes: vec![Scheme::Sip, Scheme::Sips, Scheme::Tel],
            supported: Vec::new(),
            accept: ACCEPT.iter().map(|s| s.to_string()).collect(),
            answer_types: vec!["application/sdp".into()],
            forwards: true,
        };
        let timers_cfg = TimerConfig::default();
        let table = TransactionTable::new(timers_cfg, cfg.edge.max_transactions);
        let health =
            cfg.trunks.iter().map(|t| t.peers.iter().map(|_| health::PeerState::default()).collect()).collect();
        Core {
            cfg,
            trunk_local,
            inside_local,
            inside_dest,
            limits,
            policy,
            timers_cfg,
            table,
            calls: FastMap::default(),
            dialogs: FastMap::default(),
            uses: FastMap::default(),
            origins: FastMap::default(),
            conn_sides: FastMap::default(),
            health,
            timers: BTreeSet::new(),
            out: VecDeque::new(),
            next_call: 1,
            trace,
            draining: false,
            stats: Stats::default(),
            media: None,
        }
    }

    /// Starts the periodic work (OPTIONS pings to trunk peers, the media inactivity check).
    pub fn start(&mut self, now: Instant) {
        if self.media.is_some() {
            self.timers.insert((now + media::MEDIA_CHECK, TimerKind::MediaCheck));
        }
        for (t, trunk) in self.cfg.trunks.iter().enumerate() {
            if trunk.options_interval_s == 0 {
                continue;
            }
            for p in 0..trunk.peers.len() {
                // Spread the first pings a little so that they don't all go at once.
                let delay = Duration::from_millis(200 + 100 * (p as u64));
                self.timers.insert((now + delay, TimerKind::Ping { trunk: t, peer: p }));
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Calls in progress.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }

    /// Stop taking new calls (graceful shutdown); calls in progress continue.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether [`Core::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Tells the core which side a stream connection faces (for traces).
    pub fn connection_opened(&mut self, conn: ConnId, side: Side) {
        self.conn_sides.insert(conn, side);
    }

    /// Forgets a closed connection.
    pub fn connection_closed(&mut self, conn: ConnId) {
        self.conn_sides.remove(&conn);
    }

    /// The next output for the runtime.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let core = self.timers.first().map(|(t, _)| *t);
        match (self.table.poll_timeout(), core) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A message (one datagram, or one framed stream message) arrived.
    pub fn handle_message(&mut self, now: Instant, origin: Origin, bytes: &[u8]) {
        self.stats.received += 1;
        let parsed = match origin.transport {
            Transport::Udp => parse_datagram(bytes, &self.limits),
            Transport::Tcp | Transport::Tls => parse_stream_message(bytes, &self.limits),
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                self.stats.rejected += 1;
                self.reject_unparsed(&origin, bytes, &e, looks_like_request(bytes));
                return;
            }
        };
        if self.trace {
            self.trace_in(&origin, bytes);
        }
        let is_ack = msg.method() == Some(&Method::Ack);
        let checked = if msg.is_request() {
            validate_request(&msg, &self.policy).map(|_| ())
        } else {
            validate_response(&msg).map(|_| ())
        };
        if let Err(e) = checked {
            self.stats.rejected += 1;
            if !is_ack {
                self.reject(&origin, &msg, &e);
            }
            return;
        }
        let reliability =
            if origin.transport == Transport::Udp { Reliability::Unreliable } else { Reliability::Reliable };
        match self.table.handle_message(now, &msg, reliability, origin.reply.clone()) {
            Ok(Incoming::Created { key, .. }) => {
                self.origins.insert(key, origin);
            }
            Ok(Incoming::StrayAck) => self.on_dialog_ack(now, &msg),
            Ok(Incoming::StrayResponse) => self.on_stray_response(&msg),
            Ok(_) => {}
            Err(e) => {
                if let (true, false, Some(status)) = (msg.is_request(), is_ack, e.status_for_request()) {
                    self.answer_stateless(&origin, &msg, status, reason_for(status), None);
                }
            }
        }
        self.pump(now);
    }

    /// A stream that cannot be framed (bad or repeated Content-Length, too large): the request
    /// is answered from what can be salvaged (RFC 4475 §3.1.2.3, §3.3.9); the runtime then
    /// closes the connection.
    pub fn handle_unframable(&mut self, origin: &Origin, bytes: &[u8], err: &trunkgate_sip::ParseError) {
        self.stats.received += 1;
        self.stats.rejected += 1;
        self.reject_unparsed(origin, bytes, err, looks_like_request(bytes));
    }

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.table.handle_timeout(now);
        while let Some(&(at, kind)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match kind {
                TimerKind::Retransmit2xx { call, interval_ms } => self.retransmit_2xx(now, call, interval_ms),
                TimerKind::InviteTimeout { call, attempt } => self.invite_timeout(now, call, attempt),
                TimerKind::Ping { trunk, peer } => self.ping(now, trunk, peer),
                TimerKind::MediaCheck => self.media_check(now),
            }
        }
        self.pump(now);
    }

    /// The runtime could not deliver a message (connection refused, handshake failed, closed).
    pub fn send_failed(&mut self, now: Instant, txn: Option<&TransactionKey>) {
        if let Some(key) = txn {
            if self.table.handle_transport_error(now, key).is_ok() {
                self.pump(now);
            }
        }
    }

    /// Drains table events and transmits into outputs, until both are empty.
    pub(crate) fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(ev) = self.table.poll_event() {
                progressed = true;
                self.on_event(now, ev);
            }
            while let Some(t) = self.table.poll_transmit() {
                progressed = true;
                self.send(t.remote, t.bytes, Some(t.key));
            }
            if !progressed {
                break;
            }
        }
    }

    pub(crate) fn send(&mut self, dest: Dest, bytes: Vec<u8>, txn: Option<TransactionKey>) {
        if self.trace {
            let side = self.side_of(&dest);
            let summary = first_line(&bytes);
            self.out.push_back(Output::Trace(Trace { inbound: false, side, summary }));
        }
        self.out.push_back(Output::Send { dest, bytes, txn });
    }

    fn side_of(&self, dest: &Dest) -> Side {
        match dest {
            Dest::Peer { .. } => Side::Trunk,
            Dest::InsideTcp(_) => Side::Inside,
            Dest::Udp { listener, .. } => self.cfg.listeners.get(*listener).map_or(Side::Inside, |l| l.side),
            Dest::Conn(c) => self.conn_sides.get(c).copied().unwrap_or(Side::Trunk),
        }
    }

    fn trace_in(&mut self, origin: &Origin, bytes: &[u8]) {
        self.out.push_back(Output::Trace(Trace { inbound: true, side: origin.side, summary: first_line(bytes) }));
    }

    fn on_event(&mut self, now: Instant, ev: TableEvent) {
        let TableEvent { key, event } = ev;
        match event {
            Event::Request(req) => self.on_request(now, key, req),
            Event::Provisional(resp) => self.on_provisional(now, &key, resp),
            Event::Final(resp) => self.on_final(now, &key, resp),
            Event::Ack(ack) => self.on_dialog_ack_owned(now, &ack),
            Event::Timeout(_) => self.on_failure(now, &key, true),
            Event::TransportError => self.on_failure(now, &key, false),
            Event::Terminated => {
                self.uses.remove(&key);
                self.origins.remove(&key);
            }
            _ => {}
        }
    }
}

pub(crate) fn first_line(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(bytes.len()).min(200);
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

pub(crate) fn reason_for(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
