//! Messages the transaction layer (or its TU) builds from a request it holds: the ACK for a
//! non-2xx final response (RFC 3261 §17.1.1.3), CANCEL (§9.1), and responses to a server
//! transaction's request (§8.2.6), including the 100 Trying helper (§8.2.6.1).
//!
//! All of them work on [`OwnedMessage`], because that is what a transaction keeps: the request
//! outlives the buffer it was parsed from.

use crate::builder::OwnedMessage;
use crate::headers::{CSeq, NameAddr, Via};
use crate::message::Message;
use crate::name::{HeaderName, Method};
use crate::scan;

use super::error::TransactionError;

/// The value of every field of an owned message with this (known) name, in order.
fn owned_values<'m>(msg: &'m OwnedMessage, name: HeaderName) -> impl Iterator<Item = &'m [u8]> + 'm {
    msg.headers.iter().filter(move |(n, _)| HeaderName::from_bytes(n.as_bytes()) == name).map(|(_, v)| v.as_slice())
}

/// The first comma-separated element of the first Via field: the top Via.
pub(crate) fn top_via_owned(msg: &OwnedMessage) -> Option<&[u8]> {
    owned_values(msg, HeaderName::Via).next().and_then(first_element)
}

/// The top Via of a parsed message.
pub(crate) fn top_via<'a>(msg: &Message<'a>) -> Option<&'a [u8]> {
    msg.headers_named(HeaderName::Via).next().and_then(first_element)
}

fn first_element(v: &[u8]) -> Option<&[u8]> {
    scan::split_outside(v, b',').map(scan::trim_lws).find(|e| !e.is_empty())
}

/// The single value of a header an owned message must carry.
pub(crate) fn owned_header<'m>(
    msg: &'m OwnedMessage,
    name: HeaderName,
    label: &'static str,
) -> Result<&'m [u8], TransactionError> {
    owned_values(msg, name).next().map(scan::trim_lws).ok_or(TransactionError::MissingHeader(label))
}

/// CSeq of an owned message.
pub(crate) fn owned_cseq(msg: &OwnedMessage) -> Result<CSeq, TransactionError> {
    CSeq::parse(owned_header(msg, HeaderName::CSeq, "CSeq")?)
        .map_err(|e| TransactionError::BadHeader { header: "CSeq", reason: e.0 })
}

/// The branch of an owned request's top Via, which must carry the magic cookie: this element
/// only sends RFC 3261 branches.
pub(crate) fn owned_branch(msg: &OwnedMessage) -> Result<&[u8], TransactionError> {
    let via = top_via_owned(msg).ok_or(TransactionError::MissingHeader("Via"))?;
    let via = Via::parse(via).map_err(|e| TransactionError::BadHeader { header: "Via", reason: e.0 })?;
    match via.branch() {
        Some(b) if via.is_rfc3261_branch() && b.len() > 7 => Ok(b),
        _ => Err(TransactionError::MissingBranch),
    }
}

/// The To tag of an owned message, if any.
pub(crate) fn owned_to_tag(msg: &OwnedMessage) -> Option<Vec<u8>> {
    owned_values(msg, HeaderName::To).next().and_then(|v| NameAddr::parse(v).ok()?.tag().map(<[u8]>::to_vec))
}

/// The method of an owned request.
pub(crate) fn owned_method(msg: &OwnedMessage) -> Result<&Method, TransactionError> {
    match &msg.start {
        crate::builder::OwnedStart::Request { method, .. } => Ok(method),
        crate::builder::OwnedStart::Response { .. } => Err(TransactionError::WrongKind { expected: "request" }),
    }
}

/// The status of an owned response.
pub(crate) fn owned_status(msg: &OwnedMessage) -> Result<u16, TransactionError> {
    match &msg.start {
        crate::builder::OwnedStart::Response { status, .. } if (100..=699).contains(status) => Ok(*status),
        crate::builder::OwnedStart::Response { status, .. } => Err(TransactionError::InvalidStatus(*status)),
        crate::builder::OwnedStart::Request { .. } => Err(TransactionError::WrongKind { expected: "response" }),
    }
}

fn request_uri(msg: &OwnedMessage) -> Result<&str, TransactionError> {
    match &msg.start {
        crate::builder::OwnedStart::Request { uri, .. } => Ok(uri),
        crate::builder::OwnedStart::Response { .. } => Err(TransactionError::WrongKind { expected: "request" }),
    }
}

/// The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): same Request-URI,
/// Call-ID, From, CSeq number (method ACK) and top Via as the INVITE, the To of the response
/// (`response_to`, which carries the UAS's tag), and the INVITE's Route header fields. No body.
pub fn build_ack(invite: &OwnedMessage, response_to: &[u8]) -> Result<OwnedMessage, TransactionError> {
    build_sibling(invite, Method::Ack, Some(response_to))
}

/// A CANCEL for `invite` (RFC 3261 §9.1): same Request-URI, Call-ID, To, From and CSeq number
/// (method CANCEL), a single Via equal to the INVITE's top Via (so the same branch), and the
/// INVITE's Route header fields. Send it only once a provisional response has arrived.
pub fn build_cancel(invite: &OwnedMessage) -> Result<OwnedMessage, TransactionError> {
    build_sibling(invite, Method::Cancel, None)
}

fn build_sibling(invite: &OwnedMessage, method: Method, to: Option<&[u8]>) -> Result<OwnedMessage, TransactionError> {
    if owned_method(invite)? != &Method::Invite {
        return Err(TransactionError::WrongMethod {
            expected: "INVITE",
            got: owned_method(invite)?.as_str().to_owned(),
        });
    }
    let via = top_via_owned(invite).ok_or(TransactionError::MissingHeader("Via"))?;
    let cseq = owned_cseq(invite)?;
    let to = match to {
        Some(t) => t,
        None => owned_header(invite, HeaderName::To, "To")?,
    };
    let mut out = OwnedMessage::request(method.clone(), request_uri(invite)?)
        .with("Via", via)
        .with("Max-Forwards", "70")
        .with("From", owned_header(invite, HeaderName::From, "From")?)
        .with("To", to)
        .with("Call-ID", owned_header(invite, HeaderName::CallId, "Call-ID")?)
        .with("CSeq", format!("{} {}", cseq.seq, method.as_str()));
    for route in owned_values(invite, HeaderName::Route) {
        out.push("Route", route);
    }
    Ok(out)
}

/// A response to `request` (RFC 3261 §8.2.6.2): every Via in order, From, To (with `to_tag`
/// added when the request's To has none and the status is above 100), Call-ID, CSeq; for a 100
/// also the Timestamp (§8.2.6.1). No body; the TU adds Contact, SDP and so on.
pub fn response_for(request: &OwnedMessage, status: u16, reason: &str, to_tag: Option<&str>) -> OwnedMessage {
    let mut resp = OwnedMessage::response(status, reason);
    for (name, value) in &request.headers {
        match HeaderName::from_bytes(name.as_bytes()) {
            n @ (HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq) => {
                resp.headers.push((n.as_str().to_owned(), value.clone()));
            }
            HeaderName::Timestamp if status == 100 => resp.headers.push(("Timestamp".to_owned(), value.clone())),
            HeaderName::To => {
                let mut v = value.clone();
                let has_tag = NameAddr::parse(value).ok().and_then(|na| na.tag()).is_some();
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

/// `100 Trying` for `request` (the INVITE server transaction's TU decides whether and when to
/// send it; RFC 3261 §17.2.1 asks for one within 200 ms unless the TU answers sooner).
pub fn trying(request: &OwnedMessage) -> OwnedMessage {
    response_for(request, 100, "Trying", None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::message::Limits;
    use crate::parse::parse_datagram;

    fn invite() -> OwnedMessage {
        OwnedMessage::request(Method::Invite, "sip:+15551234@trunk.example.com;user=phone")
            .with("Via", "SIP/2.0/UDP edge.example.net:5060;branch=z9hG4bKabc, SIP/2.0/UDP inner;branch=z9hG4bKin")
            .with("Via", "SIP/2.0/UDP third;branch=z9hG4bK3")
            .with("Route", "<sip:p1.example.com;lr>")
            .with("Route", "<sip:p2.example.com;lr>")
            .with("Max-Forwards", "69")
            .with("f", "<sip:alice@example.net>;tag=a1")
            .with("t", "<sip:+15551234@trunk.example.com>")
            .with("i", "call-1@edge")
            .with("CSeq", "17 INVITE")
            .with("Timestamp", "54")
    }

    #[test]
    fn ack_follows_17_1_1_3() {
        let ack = build_ack(&invite(), b"<sip:+15551234@trunk.example.com>;tag=uas9").unwrap();
        let bytes = ack.to_bytes();
        let m = parse_datagram(&bytes, &Limits::default()).unwrap();
        assert_eq!(m.request_uri(), Some(&b"sip:+15551234@trunk.example.com;user=phone"[..]));
        assert_eq!(
            m.headers_named(HeaderName::Via).collect::<Vec<_>>(),
            vec![&b"SIP/2.0/UDP edge.example.net:5060;branch=z9hG4bKabc"[..]]
        );
        assert_eq!(m.header(HeaderName::CSeq), Some(&b"17 ACK"[..]));
        assert_eq!(m.header(HeaderName::To), Some(&b"<sip:+15551234@trunk.example.com>;tag=uas9"[..]));
        assert_eq!(m.header(HeaderName::From), Some(&b"<sip:alice@example.net>;tag=a1"[..]));
        assert_eq!(m.header(HeaderName::CallId), Some(&b"call-1@edge"[..]));
        assert_eq!(m.headers_named(HeaderName::Route).count(), 2);
        assert!(m.body.is_empty());
    }

    #[test]
    fn cancel_follows_9_1() {
        let c = build_cancel(&invite()).unwrap();
        assert_eq!(c.get("CSeq"), Some(&b"17 CANCEL"[..]));
        assert_eq!(c.get("To"), Some(&b"<sip:+15551234@trunk.example.com>"[..]));
        assert_eq!(owned_branch(&c).unwrap(), b"z9hG4bKabc");
        assert_eq!(c.headers.iter().filter(|(n, _)| n == "Route").count(), 2);
        let opts = OwnedMessage::request(Method::Options, "sip:a@b").with("Via", "SIP/2.0/UDP h;branch=z9hG4bK1");
        assert!(matches!(build_cancel(&opts), Err(TransactionError::WrongMethod { .. })));
    }

    #[test]
    fn responses_copy_dialog_headers() {
        let r = response_for(&invite(), 486, "Busy Here", Some("t9"));
        assert_eq!(r.get("To"), Some(&b"<sip:+15551234@trunk.example.com>;tag=t9"[..]));
        assert_eq!(r.headers.iter().filter(|(n, _)| n == "Via").count(), 2);
        assert_eq!(r.get("Timestamp"), None);
        let t = trying(&invite());
        assert_eq!(t.get("To"), Some(&b"<sip:+15551234@trunk.example.com>"[..]));
        assert_eq!(t.get("Timestamp"), Some(&b"54"[..]));
        assert_eq!(owned_status(&t), Ok(100));
    }

    #[test]
    fn branch_needs_cookie() {
        let m = OwnedMessage::request(Method::Options, "sip:a@b").with("Via", "SIP/2.0/UDP h;branch=1234");
        assert_eq!(owned_branch(&m), Err(TransactionError::MissingBranch));
        let m = OwnedMessage::request(Method::Options, "sip:a@b");
        assert_eq!(owned_branch(&m), Err(TransactionError::MissingHeader("Via")));
    }
}
