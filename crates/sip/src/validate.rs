//! Semantic checks a receiving element makes before it processes a message (RFC 3261 §8.2,
//! §18.1.2, §18.2.1; RFC 4475 §3.1.2–§3.3). What is acceptable is data ([`Policy`]); the outcome
//! is either a summary of the fields the transaction and dialog layers need, or a
//! [`ParseError`] that [`crate::error::disposition`] turns into a status or a drop.

use crate::error::ParseError;
use crate::headers::{parse_number, CSeq, Contact, MediaType, NameAddr, RetryAfter, Via};
use crate::message::Message;
use crate::name::{HeaderName, Method};
use crate::scan;
use crate::uri::{Host, Scheme, Uri};

/// What this element accepts. Policy as data: the edge builds it from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Request-URI schemes served (others get 416).
    pub schemes: Vec<Scheme>,
    /// Option tags supported (others in Require get 420).
    pub supported: Vec<String>,
    /// Body types accepted, as `type/subtype` (others get 415).
    pub accept: Vec<String>,
    /// Body types this element answers INVITEs with (an Accept ruling all out gets 406).
    pub answer_types: Vec<String>,
    /// Whether the element forwards requests (a proxy or B2BUA answers 483 at Max-Forwards 0;
    /// a UAS processes such a request, RFC 4475 §3.3.11).
    pub forwards: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            schemes: vec![Scheme::Sip, Scheme::Sips, Scheme::Tel],
            supported: Vec::new(),
            accept: vec!["application/sdp".into(), "multipart/mixed".into()],
            answer_types: vec!["application/sdp".into()],
            forwards: false,
        }
    }
}

impl Policy {
    /// The Accept header value to send with a 415.
    pub fn accept_header(&self) -> String {
        self.accept.join(", ")
    }
}

/// The fields of a valid request that the layers above need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo<'a> {
    /// Method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri<'a>,
    /// Via header values, topmost first.
    pub vias: Vec<Via<'a>>,
    /// From.
    pub from: NameAddr<'a>,
    /// To.
    pub to: NameAddr<'a>,
    /// Call-ID.
    pub call_id: &'a [u8],
    /// CSeq.
    pub cseq: CSeq,
    /// Max-Forwards.
    pub max_forwards: u8,
    /// Contact values.
    pub contacts: Vec<Contact<'a>>,
}

/// The fields of a valid response that the layers above need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseInfo<'a> {
    /// Status code.
    pub status: u16,
    /// Via header values, topmost first.
    pub vias: Vec<Via<'a>>,
    /// From.
    pub from: NameAddr<'a>,
    /// To.
    pub to: NameAddr<'a>,
    /// Call-ID.
    pub call_id: &'a [u8],
    /// CSeq.
    pub cseq: CSeq,
}

fn bad(header: &'static str) -> impl Fn(crate::headers::HeaderError) -> ParseError {
    move |e| ParseError::BadHeader { header, reason: e.0 }
}

/// The single-valued headers of a message, found in one pass over the header list.
#[derive(Default)]
struct Singles<'a> {
    to: Slot<'a>,
    from: Slot<'a>,
    call_id: Slot<'a>,
    cseq: Slot<'a>,
    max_forwards: Slot<'a>,
    content_type: Slot<'a>,
    expires: Slot<'a>,
}

#[derive(Default)]
struct Slot<'a> {
    value: Option<&'a [u8]>,
    repeated: bool,
}

impl<'a> Slot<'a> {
    fn see(&mut self, v: &'a [u8]) {
        if self.value.is_some() {
            self.repeated = true;
        } else {
            self.value = Some(v);
        }
    }

    /// Present exactly once.
    fn one(&self, label: &'static str) -> Result<&'a [u8], ParseError> {
        match (self.value, self.repeated) {
            (None, _) => Err(ParseError::MissingHeader(label)),
            (Some(_), true) => Err(ParseError::DuplicateHeader(label)),
            (Some(v), false) => Ok(v),
        }
    }

    /// Present at most once.
    fn optional(&self, label: &'static str) -> Result<Option<&'a [u8]>, ParseError> {
        if self.repeated {
            return Err(ParseError::DuplicateHeader(label));
        }
        Ok(self.value)
    }
}

impl<'a> Singles<'a> {
    fn of(msg: &Message<'a>) -> Singles<'a> {
        let mut s = Singles::default();
        for h in &msg.headers {
            let slot = match h.name {
                HeaderName::To => &mut s.to,
                HeaderName::From => &mut s.from,
                HeaderName::CallId => &mut s.call_id,
                HeaderName::CSeq => &mut s.cseq,
                HeaderName::MaxForwards => &mut s.max_forwards,
                HeaderName::ContentType => &mut s.content_type,
                HeaderName::Expires => &mut s.expires,
                _ => continue,
            };
            slot.see(h.value);
        }
        s
    }
}

fn check_version(version: &[u8]) -> Result<(), ParseError> {
    if scan::eq_ic(version, b"SIP/2.0") {
        Ok(())
    } else {
        Err(ParseError::VersionNotSupported(String::from_utf8_lossy(version.get(4..).unwrap_or_default()).into_owned()))
    }
}

fn check_call_id(v: &[u8]) -> Result<&[u8], ParseError> {
    let mut parts = v.splitn(2, |&b| b == b'@');
    let ok = parts.all(|p| !p.is_empty() && p.iter().all(|&b| scan::is_word(b)));
    if ok {
        Ok(v)
    } else {
        Err(ParseError::BadHeader { header: "Call-ID", reason: "not a word[@word]" })
    }
}

fn vias<'a>(msg: &Message<'a>) -> Result<Vec<Via<'a>>, ParseError> {
    let vias: Vec<Via<'a>> =
        msg.values(HeaderName::Via).map(Via::parse).collect::<Result<_, _>>().map_err(bad("Via"))?;
    if vias.is_empty() {
        return Err(ParseError::MissingHeader("Via"));
    }
    Ok(vias)
}

/// The dialog-identifying headers common to requests and responses.
struct Common<'a> {
    vias: Vec<Via<'a>>,
    from: NameAddr<'a>,
    to: NameAddr<'a>,
    call_id: &'a [u8],
    cseq: CSeq,
}

fn common<'a>(msg: &Message<'a>, singles: &Singles<'a>) -> Result<Common<'a>, ParseError> {
    let to = singles.to.one("To")?;
    let from = singles.from.one("From")?;
    let call_id = singles.call_id.one("Call-ID")?;
    let cseq = singles.cseq.one("CSeq")?;
    let vias = vias(msg)?;
    let to = NameAddr::parse(to).map_err(bad("To"))?;
    let from = NameAddr::parse(from).map_err(bad("From"))?;
    let call_id = check_call_id(call_id)?;
    let cseq = CSeq::parse(cseq).map_err(bad("CSeq"))?;
    Ok(Common { vias, from, to, call_id, cseq })
}

/// Checks a parsed request for the element described by `policy`.
pub fn validate_request<'a>(msg: &Message<'a>, policy: &Policy) -> Result<RequestInfo<'a>, ParseError> {
    let crate::message::StartLine::Request { method, uri, version } = &msg.start else {
        return Err(ParseError::StartLine("not a request"));
    };
    check_version(version)?;
    // Presence and uniqueness first (RFC 4475 §3.3.1, §3.3.8), so that the 400 names them.
    // Max-Forwards is mandatory for a UAC (RFC 3261 §8.1.1.6) but RFC 2543 peers omit it
    // (RFC 4475 §3.4.1): absent means the RFC 3261 default of 70.
    let singles = Singles::of(msg);
    singles.to.one("To")?;
    singles.from.one("From")?;
    singles.call_id.one("Call-ID")?;
    singles.cseq.one("CSeq")?;
    let content_type = singles.content_type.optional("Content-Type")?;
    let expires = singles.expires.optional("Expires")?;
    let max_forwards = singles.max_forwards.optional("Max-Forwards")?;
    let uri = Uri::parse(uri).map_err(|e| ParseError::RequestUri(e.0))?;
    if !policy.schemes.contains(&uri.scheme) {
        return Err(ParseError::UnsupportedScheme(String::from_utf8_lossy(uri.scheme_raw).into_owned()));
    }
    if matches!(uri.scheme, Scheme::Sip | Scheme::Sips) && uri.headers.is_some() {
        return Err(ParseError::HeadersInRequestUri);
    }
    let Common { vias, from, to, call_id, cseq } = common(msg, &singles)?;
    if &cseq.method != method {
        return Err(ParseError::CSeqMethodMismatch);
    }
    let max_forwards = match max_forwards {
        Some(v) => parse_number(v, 255).map_err(bad("Max-Forwards"))? as u8,
        None => 70,
    };
    if let Some(e) = expires {
        parse_number(e, u64::from(u32::MAX)).map_err(bad("Expires"))?;
    }
    let contacts: Vec<Contact<'a>> =
        msg.values(HeaderName::Contact).map(Contact::parse).collect::<Result<_, _>>().map_err(bad("Contact"))?;
    for route in msg.values(HeaderName::Route).chain(msg.values(HeaderName::RecordRoute)) {
        let na = NameAddr::parse(route).map_err(bad("Route"))?;
        if !na.bracketed {
            return Err(ParseError::BadHeader { header: "Route", reason: "route URIs must be in <>" });
        }
    }
    if !matches!(method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<String> = msg
            .values(HeaderName::Require)
            .filter(|tag| !policy.supported.iter().any(|s| scan::eq_ic(s.as_bytes(), tag)))
            .map(|tag| String::from_utf8_lossy(tag).into_owned())
            .collect();
        if !unsupported.is_empty() {
            return Err(ParseError::BadExtension(unsupported));
        }
    }
    if let Some(ct) = content_type {
        let mt = MediaType::parse(ct).map_err(bad("Content-Type"))?;
        let accepted = policy.accept.iter().any(|a| {
            let (k, s) = a.split_once('/').unwrap_or((a, ""));
            scan::eq_ic(mt.kind, k.as_bytes()) && scan::eq_ic(mt.subtype, s.as_bytes())
        });
        if !msg.body.is_empty() && !accepted {
            return Err(ParseError::UnsupportedMediaType(String::from_utf8_lossy(ct).into_owned()));
        }
    } else if !msg.body.is_empty() {
        return Err(ParseError::MissingHeader("Content-Type"));
    }
    if *method == Method::Invite && msg.count(HeaderName::Accept) > 0 {
        let ranges: Vec<MediaType<'a>> =
            msg.values(HeaderName::Accept).map(MediaType::parse).collect::<Result<_, _>>().map_err(bad("Accept"))?;
        let answerable = policy.answer_types.iter().any(|t| {
            let (k, s) = t.split_once('/').unwrap_or((t, ""));
            ranges.iter().any(|r| r.matches(k, s))
        });
        if !answerable {
            return Err(ParseError::NotAcceptable);
        }
    }
    if policy.forwards && max_forwards == 0 {
        return Err(ParseError::TooManyHops);
    }
    Ok(RequestInfo { method: method.clone(), uri, vias, from, to, call_id, cseq, max_forwards, contacts })
}

/// Checks a parsed response; any error means the response is dropped (RFC 4475 §3.1.2.5,
/// §3.1.2.19, §3.3.10).
pub fn validate_response<'a>(msg: &Message<'a>) -> Result<ResponseInfo<'a>, ParseError> {
    let crate::message::StartLine::Response { version, status, .. } = msg.start else {
        return Err(ParseError::StartLine("not a response"));
    };
    check_version(version)?;
    let Common { vias, from, to, call_id, cseq } = common(msg, &Singles::of(msg))?;
    if vias.iter().any(|v| matches!(v.host, Host::V4(a) if a.is_broadcast())) {
        return Err(ParseError::BroadcastVia);
    }
    if let Some(r) = msg.header(HeaderName::RetryAfter) {
        RetryAfter::parse(r).map_err(bad("Retry-After"))?;
    }
    Ok(ResponseInfo { status, vias, from, to, call_id, cseq })
}
