//! # trunkgate-sip: SIP without I/O
//!
//! What it does: parses and serializes SIP messages (RFC 3261 §7, §20, §25) zero-copy over
//! `&[u8]`; parses `sip`/`sips`/`tel` URIs including the trunk-group parameters of RFC 4904
//! (SPEC S1); gives typed views of the headers an SBC needs; frames byte streams by
//! Content-Length with RFC 5626 keepalives; checks messages the way RFC 4475 expects and maps
//! every rejection to the status to send or to "drop" in one function ([`disposition`]); and runs
//! RFC 3261 §17 transactions as state machines driven by the caller's clock.
//!
//! What it does not do: own a socket, read a clock, spawn a task, or resolve DNS. The edge
//! (`crates/edge`) feeds it bytes and `Instant`s and sends what it returns. That is what lets
//! the transaction timers be tested exhaustively on a simulated clock.
//!
//! ```
//! use trunkgate_sip::{parse_datagram, validate_request, Limits, Policy};
//! let raw = b"OPTIONS sip:+13175551212;tgrp=TG-1;trunk-context=example.com@lb01.voice.use1.pure.cloud;transport=tls SIP/2.0\r\n\
//! Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nTo: <sip:a@b>\r\n\
//! From: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
//! let msg = parse_datagram(raw, &Limits::default()).unwrap();
//! let info = validate_request(&msg, &Policy::default()).unwrap();
//! assert_eq!(info.uri.tgrp().as_deref(), Some(&b"TG-1"[..]));
//! ```

pub mod builder;
pub mod error;
pub mod framing;
pub mod headers;
pub mod message;
pub mod name;
pub mod parse;
pub mod scan;
pub mod transaction;
pub mod uri;
pub mod validate;

/// A hash map for keys that come from the network (branches, Call-IDs, tags): foldhash's
/// quality hasher, seeded at random per map, in place of SipHash, which cost 3 % of the CPU of an
/// OPTIONS over TLS (perf, docs/bench.md).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;

pub use builder::{response_to, OwnedMessage, OwnedStart};
pub use error::{disposition, Disposition, ParseError, Side};
pub use framing::{Frame, StreamFramer};
pub use headers::{allow, option_tags, CSeq, Contact, MediaType, NameAddr, RetryAfter, Via};
pub use message::{Header, Limits, Message, StartLine};
pub use name::{HeaderName, Method};
pub use parse::{looks_like_request, parse_datagram, parse_head, parse_stream_message};
pub use transaction::{
    Event, Incoming, Reliability, Timer, TimerConfig, Transaction, TransactionError, TransactionKey, TransactionTable,
};
pub use uri::{Host, Params, Scheme, Uri};
pub use validate::{validate_request, validate_response, Policy, RequestInfo, ResponseInfo};
