//! Transaction matching keys.
//!
//! * Responses find their client transaction by the top Via branch and the CSeq method
//!   (RFC 3261 §17.1.3): [`TransactionKey::for_response`]. The key of a client transaction is
//!   computed from the request this element sends ([`TransactionKey::for_outgoing`]), which
//!   always carries an RFC 3261 branch.
//! * Requests find their server transaction (§17.2.3) by the branch (when it starts with the
//!   magic cookie `z9hG4bK`), the sent-by of the top Via and the method, where ACK counts as
//!   INVITE: [`TransactionKey::for_request`]. CANCEL has its own key; [`TransactionKey::cancel_target`]
//!   gives the key of the INVITE it cancels (§9.2).
//! * Without the magic cookie (RFC 2543 peers) the key is the Request-URI, To tag, From tag,
//!   Call-ID, CSeq number and method (ACK counted as INVITE) and the top Via. An ACK's To tag
//!   is the one the server put in its response, not the INVITE's, so the table looks an ACK up
//!   twice (see [`TransactionKey::without_to_tag`]).
//!
//! Values are normalised where RFC 3261 makes them case-insensitive (branch, sent-by host, the
//! top Via of the RFC 2543 key); Call-ID, tags and the Request-URI are compared as sent, which
//! is what a retransmission carries.

use crate::builder::OwnedMessage;
use crate::headers::{CSeq, NameAddr, Via};
use crate::message::Message;
use crate::name::{HeaderName, Method};
use crate::scan;
use crate::uri::Host;

use super::build::{owned_branch, owned_cseq, owned_method, top_via};
use super::error::TransactionError;

/// What a message is matched on. Cheap to clone; hashable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionKey {
    /// A client transaction (§17.1.3): branch (lower-cased) and CSeq method.
    Client {
        /// The branch of the top Via, lower-cased.
        branch: Box<[u8]>,
        /// The CSeq method.
        method: Method,
    },
    /// A server transaction of an RFC 3261 peer (§17.2.3, magic cookie present).
    Server {
        /// The branch of the top Via, lower-cased.
        branch: Box<[u8]>,
        /// `host[:port]` of the top Via, host lower-cased.
        sent_by: Box<[u8]>,
        /// The method; ACK is stored as INVITE.
        method: Method,
    },
    /// A server transaction of an RFC 2543 peer (no magic cookie; §17.2.3 fallback).
    Rfc2543 {
        /// The Request-URI as sent.
        request_uri: Box<[u8]>,
        /// The To tag (of the request; for an ACK, of the response it acknowledges).
        to_tag: Option<Box<[u8]>>,
        /// The From tag.
        from_tag: Option<Box<[u8]>>,
        /// The Call-ID.
        call_id: Box<[u8]>,
        /// The CSeq number.
        cseq: u32,
        /// The CSeq method; ACK is stored as INVITE.
        method: Method,
        /// The top Via without white space, lower-cased.
        top_via: Box<[u8]>,
    },
}

fn bad(header: &'static str) -> impl Fn(crate::headers::HeaderError) -> TransactionError {
    move |e| TransactionError::BadHeader { header, reason: e.0 }
}

fn lower(b: &[u8]) -> Box<[u8]> {
    b.to_ascii_lowercase().into_boxed_slice()
}

fn sent_by(via: &Via<'_>) -> Box<[u8]> {
    let mut out = match via.host {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::V4(a) => a.to_string().into_bytes(),
        Host::V6(a) => format!("[{a}]").into_bytes(),
    };
    if let Some(p) = via.port {
        out.push(b':');
        out.extend_from_slice(p.to_string().as_bytes());
    }
    out.into_boxed_slice()
}

fn match_method(m: &Method) -> Method {
    if *m == Method::Ack {
        Method::Invite
    } else {
        m.clone()
    }
}

fn tag_of(value: Option<&[u8]>, label: &'static str) -> Result<Option<Box<[u8]>>, TransactionError> {
    let v = value.ok_or(TransactionError::MissingHeader(label))?;
    Ok(NameAddr::parse(v).map_err(bad(label))?.tag().map(Box::from))
}

impl TransactionKey {
    /// The server-side key of a received request (§17.2.3). An ACK gets the key of the INVITE
    /// it acknowledges.
    pub fn for_request(msg: &Message<'_>) -> Result<TransactionKey, TransactionError> {
        let method = msg.method().ok_or(TransactionError::WrongKind { expected: "request" })?;
        let raw_via = top_via(msg).ok_or(TransactionError::MissingHeader("Via"))?;
        let via = Via::parse(raw_via).map_err(bad("Via"))?;
        let cseq = CSeq::parse(msg.header(HeaderName::CSeq).ok_or(TransactionError::MissingHeader("CSeq"))?)
            .map_err(bad("CSeq"))?;
        if let Some(branch) = via.branch().filter(|_| via.is_rfc3261_branch()) {
            return Ok(TransactionKey::Server {
                branch: lower(branch),
                sent_by: sent_by(&via),
                method: match_method(method),
            });
        }
        let mut top: Vec<u8> = raw_via.iter().filter(|b| !b.is_ascii_whitespace()).copied().collect();
        top.make_ascii_lowercase();
        Ok(TransactionKey::Rfc2543 {
            request_uri: msg.request_uri().unwrap_or_default().into(),
            to_tag: tag_of(msg.header(HeaderName::To), "To")?,
            from_tag: tag_of(msg.header(HeaderName::From), "From")?,
            call_id: scan::trim_lws(msg.header(HeaderName::CallId).ok_or(TransactionError::MissingHeader("Call-ID"))?)
                .into(),
            cseq: cseq.seq,
            method: match_method(&cseq.method),
            top_via: top.into_boxed_slice(),
        })
    }

    /// The client-side key a received response matches (§17.1.3): top Via branch and CSeq
    /// method.
    pub fn for_response(msg: &Message<'_>) -> Result<TransactionKey, TransactionError> {
        if msg.is_request() {
            return Err(TransactionError::WrongKind { expected: "response" });
        }
        let via = Via::parse(top_via(msg).ok_or(TransactionError::MissingHeader("Via"))?).map_err(bad("Via"))?;
        let branch = via.branch().ok_or(TransactionError::MissingBranch)?;
        let cseq = CSeq::parse(msg.header(HeaderName::CSeq).ok_or(TransactionError::MissingHeader("CSeq"))?)
            .map_err(bad("CSeq"))?;
        Ok(TransactionKey::Client { branch: lower(branch), method: cseq.method })
    }

    /// The key of the client transaction that sends `request` (which must carry an RFC 3261
    /// branch and a CSeq whose method is the request's).
    pub fn for_outgoing(request: &OwnedMessage) -> Result<TransactionKey, TransactionError> {
        let method = owned_method(request)?;
        let cseq = owned_cseq(request)?;
        if &cseq.method != method {
            return Err(TransactionError::BadHeader { header: "CSeq", reason: "method differs from the request's" });
        }
        Ok(TransactionKey::Client { branch: lower(owned_branch(request)?), method: cseq.method })
    }

    /// The method the key matches on (INVITE for an ACK).
    pub fn method(&self) -> &Method {
        match self {
            TransactionKey::Client { method, .. }
            | TransactionKey::Server { method, .. }
            | TransactionKey::Rfc2543 { method, .. } => method,
        }
    }

    /// Whether this is the key of a server transaction.
    pub fn is_server(&self) -> bool {
        !matches!(self, TransactionKey::Client { .. })
    }

    /// For the key of a CANCEL, the key of the INVITE it cancels (RFC 3261 §9.2: the same
    /// matching rules with the method INVITE). `None` for other methods.
    pub fn cancel_target(&self) -> Option<TransactionKey> {
        if *self.method() != Method::Cancel {
            return None;
        }
        Some(self.with_method(Method::Invite))
    }

    fn with_method(&self, m: Method) -> TransactionKey {
        let mut k = self.clone();
        match &mut k {
            TransactionKey::Client { method, .. }
            | TransactionKey::Server { method, .. }
            | TransactionKey::Rfc2543 { method, .. } => *method = m,
        }
        k
    }

    /// The RFC 2543 key with no To tag: where an ACK to an initial INVITE (sent without a To
    /// tag) looks for its transaction. Other keys are returned unchanged.
    pub fn without_to_tag(&self) -> TransactionKey {
        let mut k = self.clone();
        if let TransactionKey::Rfc2543 { to_tag, .. } = &mut k {
            *to_tag = None;
        }
        k
    }

    /// The To tag of an RFC 2543 key.
    pub fn to_tag(&self) -> Option<&[u8]> {
        match self {
            TransactionKey::Rfc2543 { to_tag, .. } => to_tag.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::message::Limits;
    use crate::parse::parse_datagram;

    fn req(method: &str, via: &str, to: &str, cseq: &str) -> Vec<u8> {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nTo: {to}\r\nFrom: <sip:a@x>;tag=f1\r\n\
             Call-ID: c1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn key(raw: &[u8]) -> TransactionKey {
        TransactionKey::for_request(&parse_datagram(raw, &Limits::default()).unwrap()).unwrap()
    }

    #[test]
    fn ack_and_invite_share_a_key_cancel_does_not() {
        let via = "SIP/2.0/UDP Host.Example.com:5060;branch=z9hG4bKx1";
        let inv = key(&req("INVITE", via, "<sip:bob@example.com>", "1 INVITE"));
        let ack = key(&req("ACK", via, "<sip:bob@example.com>;tag=9", "1 ACK"));
        let cancel = key(&req("CANCEL", via, "<sip:bob@example.com>", "1 CANCEL"));
        assert_eq!(inv, ack);
        assert_ne!(inv, cancel);
        assert_eq!(cancel.cancel_target(), Some(inv.clone()));
        assert_eq!(inv.cancel_target(), None);
        match inv {
            TransactionKey::Server { sent_by, .. } => assert_eq!(&*sent_by, b"host.example.com:5060"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sent_by_and_branch_distinguish() {
        let a = key(&req("OPTIONS", "SIP/2.0/UDP h1;branch=z9hG4bKx", "<sip:b@c>", "1 OPTIONS"));
        let b = key(&req("OPTIONS", "SIP/2.0/UDP h2;branch=z9hG4bKx", "<sip:b@c>", "1 OPTIONS"));
        let c = key(&req("OPTIONS", "SIP/2.0/UDP h1;branch=z9hG4bKy", "<sip:b@c>", "1 OPTIONS"));
        let d = key(&req("OPTIONS", "SIP/2.0/UDP H1;BRANCH=z9hG4bKX", "<sip:b@c>", "1 OPTIONS"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, d, "branch and parameter names compare case-insensitively");
    }

    #[test]
    fn rfc2543_fallback_uses_dialog_fields() {
        let via = "SIP/2.0/UDP old.example.com;branch=1234";
        let inv = key(&req("INVITE", via, "<sip:bob@example.com>", "5 INVITE"));
        assert!(matches!(inv, TransactionKey::Rfc2543 { cseq: 5, .. }));
        let again =
            key(&req("INVITE", "SIP/2.0/UDP  old.example.com ;branch=1234", "<sip:bob@example.com>", "5 INVITE"));
        assert_eq!(inv, again, "white space in the Via does not matter");
        let other_cseq = key(&req("INVITE", via, "<sip:bob@example.com>", "6 INVITE"));
        assert_ne!(inv, other_cseq);
        let ack = key(&req("ACK", via, "<sip:bob@example.com>;tag=uas", "5 ACK"));
        assert_ne!(inv, ack);
        assert_eq!(ack.to_tag(), Some(&b"uas"[..]));
        assert_eq!(inv, ack.without_to_tag());
        let cancel = key(&req("CANCEL", via, "<sip:bob@example.com>", "5 CANCEL"));
        assert_eq!(cancel.cancel_target(), Some(inv));
    }

    #[test]
    fn response_key_is_branch_and_cseq_method() {
        let raw =
            b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq;received=192.0.2.1\r\nTo: <sip:b@c>;tag=2\r\n\
                    From: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 3 INVITE\r\n\r\n";
        let k = TransactionKey::for_response(&parse_datagram(raw, &Limits::default()).unwrap()).unwrap();
        assert_eq!(k, TransactionKey::Client { branch: Box::from(&b"z9hg4bkq"[..]), method: Method::Invite });
        let out = OwnedMessage::request(Method::Invite, "sip:b@c")
            .with("Via", "SIP/2.0/UDP h;branch=z9hG4bKq")
            .with("CSeq", "3 INVITE");
        assert_eq!(TransactionKey::for_outgoing(&out).unwrap(), k);
        let bad = OwnedMessage::request(Method::Invite, "sip:b@c")
            .with("Via", "SIP/2.0/UDP h;branch=z9hG4bKq")
            .with("CSeq", "3 BYE");
        assert!(matches!(TransactionKey::for_outgoing(&bad), Err(TransactionError::BadHeader { .. })));
    }

    #[test]
    fn unkeyable_requests_are_typed_errors() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let m = parse_datagram(raw, &Limits::default()).unwrap();
        assert_eq!(TransactionKey::for_request(&m), Err(TransactionError::MissingHeader("Via")));
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: one OPTIONS\r\n\r\n";
        let m = parse_datagram(raw, &Limits::default()).unwrap();
        assert!(matches!(TransactionKey::for_request(&m), Err(TransactionError::BadHeader { header: "CSeq", .. })));
    }
}
