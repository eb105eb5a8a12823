//! What goes in and out of the B2BUA core.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{Side, Transport};

/// A stream connection's id, given by the runtime.
pub type ConnId = u64;

/// Where a message goes. The core names destinations; the runtime turns them into sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dest {
    /// A datagram through UDP listener `listener` to `addr`.
    Udp {
        /// Index of the listener in the configuration.
        listener: usize,
        /// The remote address.
        addr: SocketAddr,
    },
    /// An open stream connection (the one a request came in on: responses go back on it).
    Conn(ConnId),
    /// A trunk peer by host name: the runtime reuses a connection whose certificate was verified
    /// for this name, or opens one (resolving the name, or using the trunk's `connect` map) and
    /// verifies it with the trunk's profile. Failure comes back as
    /// [`crate::core::Core::send_failed`].
    Peer {
        /// Trunk index.
        trunk: usize,
        /// Host name (the certificate must carry it, T7).
        host: String,
        /// Port.
        port: u16,
    },
    /// The inside target over TCP: the runtime keeps a connection to it.
    InsideTcp(SocketAddr),
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Where responses to it go.
    pub reply: Dest,
    /// Which side.
    pub side: Side,
    /// Transport it arrived on.
    pub transport: Transport,
    /// The remote address.
    pub peer: SocketAddr,
    /// Names verified from the peer's client certificate (mutual TLS, T4); empty otherwise.
    pub verified_names: Vec<String>,
}

/// One line of the call ladder (for `trunkgate demo` and debugging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Received (`true`) or sent.
    pub inbound: bool,
    /// Which side.
    pub side: Side,
    /// Start line.
    pub summary: String,
}

/// How a call ended, for the call log (one structured line per call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Call-ID on the trunk side.
    pub call_id: String,
    /// Trunk name.
    pub trunk: String,
    /// `inbound` (trunk → inside) or `outbound`.
    pub direction: &'static str,
    /// Final status of the call setup (200 when answered), or 0 when it ended before any.
    pub status: u16,
    /// `completed`, `failed`, `cancelled`, `timeout`.
    pub result: &'static str,
    /// How long the call was connected.
    pub duration: Duration,
    /// Which rule chose the trunk.
    pub matched_by: &'static str,
    /// Media, when anchored: per leg the security and the relay counters (no keys).
    pub media: Option<String>,
}

/// What the core asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes.
    Send {
        /// Where.
        dest: Dest,
        /// The serialized message.
        bytes: Vec<u8>,
        /// The transaction, so that a failure can be reported back.
        txn: Option<trunkgate_sip::TransactionKey>,
    },
    /// A call ended.
    CallEnded(CallRecord),
    /// A peer's health changed.
    PeerHealth {
        /// Trunk name.
        trunk: String,
        /// `host:port`.
        peer: String,
        /// Up or down.
        up: bool,
    },
    /// A message was received or sent (only when tracing is on).
    Trace(Trace),
}
