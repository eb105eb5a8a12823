//! Errors of the media layer, with the SIP status the edge answers for each (one place, DESIGN 3).

use std::net::SocketAddr;

/// Which call leg an error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegId {
    /// Leg A: by convention the leg the first offer came from (the caller's side).
    A,
    /// Leg B: the other leg (the callee's side).
    B,
}

impl LegId {
    /// The other leg of the call.
    pub fn other(self) -> LegId {
        match self {
            LegId::A => LegId::B,
            LegId::B => LegId::A,
        }
    }
}

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LegId::A => "leg A",
            LegId::B => "leg B",
        })
    }
}

/// What went wrong in an SDP body (no key material is ever carried here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    #[error("the SDP body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the SDP body has more than {limit} lines")]
    TooManyLines { limit: usize },
    #[error("the SDP body has more than {limit} media sections")]
    TooManyMedia { limit: usize },
    #[error("the SDP body is not UTF-8 text")]
    NotText,
    #[error("SDP line {line} is not of the form x=value")]
    BadLine { line: usize },
    #[error("the SDP body does not start with v=0")]
    NoVersion,
    #[error("SDP line {line}: bad {what}")]
    BadField { line: usize, what: &'static str },
    #[error("the SDP body has no audio stream the edge can relay (RTP over UDP)")]
    NoAudio,
    #[error("the SDP body gives no connection address for the relayed stream")]
    NoConnection,
}

/// Why an `a=crypto` line was not accepted (RFC 4568). Never carries the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("the a=crypto line is malformed: {0}")]
    Malformed(&'static str),
    #[error("crypto suite {0} is unknown")]
    UnknownSuite(String),
    #[error("crypto suite {0} is not supported by this relay")]
    UnsupportedSuite(&'static str),
    #[error("key method {0} is not supported (only inline)")]
    KeyMethod(String),
    #[error("the key is not valid base64")]
    KeyEncoding,
    #[error("the key and salt are {got} bytes, suite {suite} needs {want}")]
    KeyLength { suite: &'static str, want: usize, got: usize },
    #[error("the key lifetime is not a number or a power of two written 2^n")]
    BadLifetime,
    #[error("the key lifetime {lifetime} exceeds the limit of the suite ({limit} packets)")]
    LifetimeTooLong { lifetime: u64, limit: u64 },
    #[error("master key identifiers (MKI) are not supported by this relay")]
    MkiNotSupported,
    #[error("more than one key per crypto line (needs MKI) is not supported")]
    SeveralKeys,
    #[error("session parameter {0} is not supported")]
    SessionParam(String),
}

/// Errors of the media layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("{leg}: {source}")]
    Sdp { leg: LegId, source: SdpError },
    #[error("{leg}: requires SRTP but the SDP offers no acceptable a=crypto line ({reason})")]
    NoAcceptableCrypto { leg: LegId, reason: String },
    #[error("{leg}: is a plain RTP leg but the SDP asks for SRTP ({proto})")]
    UnexpectedSrtp { leg: LegId, proto: String },
    #[error("{leg}: the peer rejected the audio stream (port 0)")]
    StreamRejected { leg: LegId },
    #[error("{leg}: {what} is not possible in the current offer/answer state")]
    State { leg: LegId, what: &'static str },
    #[error("the configuration is invalid: {0}")]
    Config(String),
    #[error("no free media port pair in the range {min}-{max}")]
    PortsExhausted { min: u16, max: u16 },
    #[error("cannot bind a media socket on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("no random bytes available for SRTP keys")]
    Random,
    #[error("cannot create the SRTP context: {0}")]
    Srtp(String),
    #[error("the relay is not running")]
    RelayStopped,
    #[error("media socket error: {0}")]
    Io(#[from] std::io::Error),
}

impl MediaError {
    /// The SIP status the edge answers the offer with when this error ends a call attempt:
    /// 488 Not Acceptable Here for media the edge cannot accept (RFC 3261 §21.4.26), 503 for a
    /// lack of resources on the edge, 500 otherwise.
    pub fn sip_status(&self) -> u16 {
        match self {
            MediaError::Sdp { .. }
            | MediaError::NoAcceptableCrypto { .. }
            | MediaError::UnexpectedSrtp { .. }
            | MediaError::StreamRejected { .. } => 488,
            MediaError::PortsExhausted { .. } | MediaError::Bind { .. } => 503,
            _ => 500,
        }
    }

    /// The leg an error came from, when it came from one.
    pub fn leg(&self) -> Option<LegId> {
        match self {
            MediaError::Sdp { leg, .. }
            | MediaError::NoAcceptableCrypto { leg, .. }
            | MediaError::UnexpectedSrtp { leg, .. }
            | MediaError::StreamRejected { leg }
            | MediaError::State { leg, .. } => Some(*leg),
            _ => None,
        }
    }
}
