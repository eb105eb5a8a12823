//! Typed errors for everything this crate rejects, and the one place that maps each of them to
//! what an element does about it: answer with a status, or drop (RFC 3261 §8.2, §16.3, §18;
//! RFC 4475).

use thiserror::Error;

/// Why a message (or a part of one) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty or holds only line ends.
    #[error("empty message")]
    Empty,
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// The Request-URI has white space in it, angle brackets around it, or does not parse.
    #[error("malformed Request-URI: {0}")]
    RequestUri(&'static str),
    /// A response's status code is not three digits.
    #[error("status code is not three digits")]
    StatusCode,
    /// A header line has no colon or its name is not a token.
    #[error("malformed header line {line}: {reason}")]
    HeaderLine {
        /// 1-based line number within the message.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The header section never ends with an empty line.
    #[error("header section not terminated by an empty line")]
    Unterminated,
    /// Content-Length is not a non-negative decimal number within limits.
    #[error("invalid Content-Length value")]
    ContentLength,
    /// Several Content-Length header fields (RFC 4475 §3.3.9).
    #[error("several Content-Length header fields")]
    MultipleContentLength,
    /// A datagram holds fewer body bytes than Content-Length says (RFC 4475 §3.1.2.2).
    #[error("Content-Length {declared} exceeds the {available} body bytes present")]
    ContentLengthExceedsBody {
        /// What the header says.
        declared: usize,
        /// What the datagram holds.
        available: usize,
    },
    /// A limit of [`crate::Limits`] was exceeded.
    #[error("message exceeds the {what} limit of {limit}")]
    TooLarge {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
    /// The SIP version is well-formed but not 2.0 (RFC 4475 §3.1.2.16).
    #[error("SIP version {0} is not supported")]
    VersionNotSupported(String),
    /// A mandatory header field is missing (RFC 3261 §8.1.1).
    #[error("missing mandatory header field {0}")]
    MissingHeader(&'static str),
    /// A header that may appear only once appears several times (RFC 4475 §3.3.8).
    #[error("header field {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// A typed header value does not parse.
    #[error("malformed {header} header: {reason}")]
    BadHeader {
        /// The header's canonical name.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The CSeq method differs from the Request-Line method (RFC 4475 §3.1.2.17).
    #[error("CSeq method does not match the Request-Line method")]
    CSeqMethodMismatch,
    /// The Request-URI scheme is not one we serve (RFC 3261 §8.2.2.1, 416).
    #[error("unsupported Request-URI scheme {0:?}")]
    UnsupportedScheme(String),
    /// A SIP Request-URI carries `?headers` (RFC 4475 §3.1.2.11).
    #[error("a SIP Request-URI must not carry header parameters")]
    HeadersInRequestUri,
    /// Require names extensions we do not support (RFC 3261 §8.2.2.3, 420).
    #[error("unsupported extensions required: {}", .0.join(", "))]
    BadExtension(Vec<String>),
    /// The body's Content-Type is not one we accept (RFC 3261 §8.2.3, 415).
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    /// Accept rules out every body we could answer with (RFC 3261 §21.4.7, 406).
    #[error("Accept does not allow a body we can produce")]
    NotAcceptable,
    /// Max-Forwards reached zero at an element that forwards (RFC 3261 §16.3, 483).
    #[error("Max-Forwards exhausted")]
    TooManyHops,
    /// A response names a broadcast address in a Via (RFC 4475 §3.3.10).
    #[error("response Via names a broadcast address")]
    BroadcastVia,
}

/// What to do about a rejected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Answer the request with this status and reason phrase (plus, for 420 and 415, the header
    /// listed in `extra_header`).
    Respond {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: &'static str,
        /// An extra header the answer must carry (`Unsupported: …`, `Accept: …`).
        extra_header: Option<(&'static str, String)>,
    },
    /// Discard silently (responses that cannot be processed, garbage).
    Drop,
}

impl Disposition {
    /// The status code, or `None` for drop.
    pub fn status(&self) -> Option<u16> {
        match self {
            Disposition::Respond { status, .. } => Some(*status),
            Disposition::Drop => None,
        }
    }
}

fn respond(status: u16, reason: &'static str) -> Disposition {
    Disposition::Respond { status, reason, extra_header: None }
}

/// Where an error came from, for logs and metrics (DESIGN.md convention 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The TLS trunk side (carrier, cloud).
    Trunk,
    /// The inside network (PBX).
    Inside,
    /// trunkgate itself.
    Internal,
}

/// The one mapping from a rejection to what the receiving element does.
///
/// `is_request` says whether the message was a request (only requests get answers; a response
/// that cannot be processed is dropped, RFC 4475 §3.1.2.5, §3.1.2.19, §3.3.10). When even that is
/// unknown (garbage), pass `false`.
pub fn disposition(err: &ParseError, is_request: bool, accept: &str) -> Disposition {
    if !is_request {
        return Disposition::Drop;
    }
    match err {
        ParseError::Empty | ParseError::StatusCode => Disposition::Drop,
        ParseError::VersionNotSupported(_) => respond(505, "Version Not Supported"),
        ParseError::UnsupportedScheme(_) => respond(416, "Unsupported URI Scheme"),
        ParseError::BadExtension(tags) => Disposition::Respond {
            status: 420,
            reason: "Bad Extension",
            extra_header: Some(("Unsupported", tags.join(", "))),
        },
        ParseError::UnsupportedMediaType(_) => Disposition::Respond {
            status: 415,
            reason: "Unsupported Media Type",
            extra_header: Some(("Accept", accept.to_owned())),
        },
        ParseError::NotAcceptable => respond(406, "Not Acceptable"),
        ParseError::TooManyHops => respond(483, "Too Many Hops"),
        ParseError::TooLarge { what: "message size", .. } => respond(513, "Message Too Large"),
        ParseError::BroadcastVia => Disposition::Drop,
        _ => respond(400, "Bad Request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_dropped_requests_answered() {
        assert_eq!(disposition(&ParseError::ContentLength, false, ""), Disposition::Drop);
        assert_eq!(disposition(&ParseError::ContentLength, true, "").status(), Some(400));
        assert_eq!(disposition(&ParseError::VersionNotSupported("7.0".into()), true, "").status(), Some(505));
        let d = disposition(&ParseError::BadExtension(vec!["a".into(), "b".into()]), true, "");
        assert_eq!(
            d,
            Disposition::Respond {
                status: 420,
                reason: "Bad Extension",
                extra_header: Some(("Unsupported", "a, b".into()))
            }
        );
    }
}
