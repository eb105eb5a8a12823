//! Zero-copy SIP messages (RFC 3261 §7): the start line, the header fields in order as borrowed
//! spans of the input, and the body. Parsing is in [`crate::parse`]; typed views of header values
//! are in [`crate::headers`]; owned messages for sending are in [`crate::builder`].

use crate::name::{HeaderName, Method};
use crate::scan;

/// Hard limits applied while parsing anything that came from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (head + body) in bytes. Default 64 KiB.
    pub max_message_size: usize,
    /// Most header fields (lines, counting each folded field once). Default 256.
    pub max_headers: usize,
    /// Longest physical line in bytes. Default 16 KiB.
    pub max_line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message_size: 64 * 1024, max_headers: 256, max_line_length: 16 * 1024 }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version`
    Request {
        /// The method.
        method: Method,
        /// The Request-URI exactly as sent (parse it with [`crate::Uri::parse`]).
        uri: &'a [u8],
        /// The version as sent, e.g. `SIP/2.0`.
        version: &'a [u8],
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response {
        /// The version as sent.
        version: &'a [u8],
        /// 100–699.
        status: u16,
        /// The reason phrase (may be empty, may be UTF-8).
        reason: &'a [u8],
    },
}

/// One header field as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name if known (compact forms resolved), else [`HeaderName::Other`].
    pub name: HeaderName,
    /// The name exactly as sent.
    pub raw_name: &'a [u8],
    /// The value with leading/trailing white space removed; folds (CRLF + WSP) kept as sent.
    /// Not necessarily UTF-8.
    pub value: &'a [u8],
}

impl Header<'_> {
    /// Whether this header has the given name (for unknown headers, compares the raw name).
    pub fn is(&self, name: &str) -> bool {
        match HeaderName::from_bytes(name.as_bytes()) {
            HeaderName::Other => self.name == HeaderName::Other && scan::eq_ic(self.raw_name, name.as_bytes()),
            known => self.name == known,
        }
    }
}

/// A parsed SIP message borrowing the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Request-Line or Status-Line.
    pub start: StartLine<'a>,
    /// Header fields in the order received.
    pub headers: Vec<Header<'a>>,
    /// The body (exactly Content-Length bytes when the header is present).
    pub body: &'a [u8],
    /// How many bytes of the input this message occupies (trailing datagram octets excluded).
    pub len: usize,
}

impl<'a> Message<'a> {
    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, `None` for responses.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, `None` for requests.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// The raw Request-URI, `None` for responses.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first header field with this name.
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        self.headers.iter().find(|h| h.name == name).map(|h| h.value)
    }

    /// Every header field with this name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.headers.iter().filter(move |h| h.name == name).map(|h| h.value)
    }

    /// How many header fields carry this name.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    /// The first header with this raw name (case-insensitive), known or not.
    pub fn header_by_str(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|h| h.is(name)).map(|h| h.value)
    }

    /// Every comma-separated value of every header with this name, trimmed, in order
    /// (RFC 3261 §7.3.1: `H: a, b` is the same as `H: a` + `H: b`).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.headers_named(name)
            .flat_map(|v| scan::split_outside(v, b','))
            .map(scan::trim_lws)
            .filter(|v| !v.is_empty())
    }

    /// Serializes the message as it was received (names as sent, values with their folds, body).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri, version } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri);
                out.push(b' ');
                out.extend_from_slice(version);
            }
            StartLine::Response { version, status, reason } => {
                out.extend_from_slice(version);
                out.push(b' ');
                out.extend_from_slice(status.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason);
            }
        }
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(h.raw_name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
    }

    /// [`Message::write_to`] into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len + 16);
        self.write_to(&mut out);
        out
    }
}

/// A header value with folds replaced by a single space, for display.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'\r' || b == b'\n' {
            let next = scan::skip_lws(value, i);
            if next > i {
                if out.last() != Some(&b' ') {
                    out.push(b' ');
                }
                i = next;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}
