//! Owned messages: what trunkgate builds and sends (a B2BUA writes new messages on each side),
//! with Content-Length always computed from the body.

use crate::message::{Message, StartLine};
use crate::name::{HeaderName, Method};

/// The start line of an owned message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedStart {
    /// A request.
    Request {
        /// Method.
        method: Method,
        /// Request-URI.
        uri: String,
    },
    /// A response.
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// An owned SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    /// Start line (always written as SIP/2.0).
    pub start: OwnedStart,
    /// Header fields in order, name as it will be written. Content-Length is not kept here: it is
    /// written from the body.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl OwnedMessage {
    /// A new request with no headers.
    pub fn request(method: Method, uri: impl Into<String>) -> Self {
        OwnedMessage { start: OwnedStart::Request { method, uri: uri.into() }, headers: Vec::new(), body: Vec::new() }
    }

    /// A new response with no headers.
    pub fn response(status: u16, reason: impl Into<String>) -> Self {
        OwnedMessage {
            start: OwnedStart::Response { status, reason: reason.into() },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Builder form of [`OwnedMessage::push`].
    #[must_use]
    pub fn with(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.push(name, value);
        self
    }

    /// Appends a header field (a Content-Length given here is ignored: it is computed).
    pub fn push(&mut self, name: &str, value: impl AsRef<[u8]>) {
        if HeaderName::from_bytes(name.as_bytes()) != HeaderName::ContentLength {
            self.headers.push((name.to_owned(), value.as_ref().to_vec()));
        }
    }

    /// Inserts a header field before all others (e.g. a new top Via).
    pub fn push_front(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers.insert(0, (name.to_owned(), value.as_ref().to_vec()));
    }

    /// Replaces every field of this name with one value (appended where the first one was).
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        let key = HeaderName::from_bytes(name.as_bytes());
        let pos = self.headers.iter().position(|(n, _)| same_name(n, name, key));
        self.remove(name);
        let entry = (name.to_owned(), value.as_ref().to_vec());
        match pos {
            Some(p) if p <= self.headers.len() => self.headers.insert(p, entry),
            _ => self.headers.push(entry),
        }
    }

    /// Removes every field of this name (compact forms included).
    pub fn remove(&mut self, name: &str) {
        let key = HeaderName::from_bytes(name.as_bytes());
        self.headers.retain(|(n, _)| !same_name(n, name, key));
    }

    /// The first value of a header (compact forms included).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let key = HeaderName::from_bytes(name.as_bytes());
        self.headers.iter().find(|(n, _)| same_name(n, name, key)).map(|(_, v)| v.as_slice())
    }

    /// Sets the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Vec<u8>>) {
        self.set("Content-Type", content_type);
        self.body = body.into();
    }

    /// Copies a parsed message (names as sent; Content-Length recomputed).
    pub fn from_message(msg: &Message<'_>) -> Self {
        let start = match &msg.start {
            StartLine::Request { method, uri, .. } => {
                OwnedStart::Request { method: method.clone(), uri: String::from_utf8_lossy(uri).into_owned() }
            }
            StartLine::Response { status, reason, .. } => {
                OwnedStart::Response { status: *status, reason: String::from_utf8_lossy(reason).into_owned() }
            }
        };
        let mut out = OwnedMessage { start, headers: Vec::with_capacity(msg.headers.len()), body: msg.body.to_vec() };
        for h in &msg.headers {
            if h.name != HeaderName::ContentLength {
                out.headers.push((String::from_utf8_lossy(h.raw_name).into_owned(), h.value.to_vec()));
            }
        }
        out
    }

    /// Keeps only the start line and the headers a response is built and matched from (Via,
    /// From, To, Call-ID, CSeq, in any form): what a transaction still needs of its request once
    /// it is done with the rest and waits out its timers (RFC 3261 §17: Timers D, J, K, L, M hold
    /// a finished transaction for up to 32 s). Frees the body and every other header.
    pub fn shrink_to_skeleton(&mut self) {
        self.headers.retain(|(name, _)| {
            use HeaderName::*;
            matches!(HeaderName::from_bytes(name.as_bytes()), Via | From | To | CallId | CSeq)
        });
        self.headers.shrink_to_fit();
        self.body = Vec::new();
    }

    /// Serializes, writing `Content-Length` last among the headers.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            OwnedStart::Request { method, uri } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            OwnedStart::Response { status, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                out.extend_from_slice(status.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(self.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
    }

    /// [`OwnedMessage::write_to`] into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        self.write_to(&mut out);
        out
    }
}

fn same_name(n: &str, name: &str, key: HeaderName) -> bool {
    match key {
        HeaderName::Other => n.eq_ignore_ascii_case(name),
        k => HeaderName::from_bytes(n.as_bytes()) == k,
    }
}

/// Builds a response to a request as RFC 3261 §8.2.6.2 says: the Via fields in order, From,
/// To (with `to_tag` added when the request's To has none and the status is above 100),
/// Call-ID and CSeq copied; no body.
pub fn response_to(req: &Message<'_>, status: u16, reason: &str, to_tag: Option<&str>) -> OwnedMessage {
    let mut resp = OwnedMessage::response(status, reason);
    for h in &req.headers {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                resp.headers.push((h.name.as_str().to_owned(), h.value.to_vec()));
            }
            HeaderName::To => {
                let mut v = h.value.to_vec();
                let has_tag = crate::headers::NameAddr::parse(h.value).ok().and_then(|na| na.tag()).is_some();
                if let (Some(tag), false, true) = (to_tag, has_tag, status > 100) {
                    v.extend_from_slice(b";tag=");
                    v.extend_from_slice(tag.as_bytes());
                }
                resp.headers.push(("To".to_owned(), v));
            }
            _ => {}
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::message::Limits;
    use crate::parse::parse_datagram;

    #[test]
    fn response_copies_dialog_headers_and_adds_tag() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP h2;branch=z9hG4bK2\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\ni: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n";
        let req = parse_datagram(raw, &Limits::default()).unwrap();
        let resp = response_to(&req, 200, "OK", Some("abc"));
        let bytes = resp.to_bytes();
        let parsed = parse_datagram(&bytes, &Limits::default()).unwrap();
        assert_eq!(parsed.status(), Some(200));
        assert_eq!(parsed.count(HeaderName::Via), 2);
        assert_eq!(parsed.header(HeaderName::To), Some(&b"<sip:a@b>;tag=abc"[..]));
        assert_eq!(parsed.header(HeaderName::ContentLength), Some(&b"0"[..]));
    }

    #[test]
    fn skeleton_keeps_what_a_response_is_built_from() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nRoute: <sip:p;lr>\r\n\
            f: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\ni: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
            Contact: <sip:x@h1>\r\nc: application/sdp\r\nl: 5\r\n\r\nv=0\r\n";
        let req = parse_datagram(raw, &Limits::default()).unwrap();
        let mut m = OwnedMessage::from_message(&req);
        let before = response_to(&req, 487, "Request Terminated", Some("t")).to_bytes();
        m.shrink_to_skeleton();
        let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["v", "f", "To", "i", "CSeq"]);
        assert!(m.body.is_empty());
        let bytes = m.to_bytes();
        let parsed = parse_datagram(&bytes, &Limits::default()).unwrap();
        assert_eq!(crate::transaction::response_for(&m, 487, "Request Terminated", Some("t")).to_bytes(), before);
        assert_eq!(parsed.method(), Some(&Method::Invite));
    }

    #[test]
    fn set_remove_and_compact_names() {
        let mut m =
            OwnedMessage::request(Method::Invite, "sip:a@b").with("v", "SIP/2.0/UDP h").with("Content-Length", "99");
        assert_eq!(m.get("Via"), Some(&b"SIP/2.0/UDP h"[..]));
        m.set("Via", "SIP/2.0/TLS x");
        assert_eq!(m.headers.len(), 1);
        m.set_body("application/sdp", b"v=0\r\n".to_vec());
        let out = String::from_utf8(m.to_bytes()).unwrap();
        assert!(out.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"), "{out}");
    }
}
