//! One side of a call as a dialog (RFC 3261 §12): identifiers, targets, sequence numbers, and
//! the requests and responses the B2BUA writes on it.

use trunkgate_sip::headers::NameAddr;
use trunkgate_sip::{Method, OwnedMessage};

use crate::config::{Side, Transport};
use crate::core::types::Dest;

/// Random bytes drawn from OpenSSL's CSPRNG in blocks: one DRBG call per 512 bytes instead of
/// one per tag (the DRBG re-keys AES on every call: 1.2 % of an OPTIONS, perf).
const POOL: usize = 512;

thread_local! {
    static RANDOM: std::cell::RefCell<([u8; POOL], usize)> = const { std::cell::RefCell::new(([0; POOL], POOL)) };
}

/// Fills `out` with CSPRNG bytes.
fn random(out: &mut [u8]) {
    RANDOM.with_borrow_mut(|(pool, used)| {
        for chunk in out.chunks_mut(POOL) {
            if *used + chunk.len() > POOL {
                if openssl::rand::rand_bytes(pool).is_err() {
                    // The CSPRNG failing is not recoverable in any useful way; fall back to
                    // time-based bytes rather than panic (tags need uniqueness, not secrecy).
                    let t =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                    for (i, b) in pool.iter_mut().enumerate() {
                        *b = (t >> ((i % 16) * 8)) as u8 ^ i as u8;
                    }
                }
                *used = 0;
            }
            let end = *used + chunk.len();
            if let Some(src) = pool.get_mut(*used..end) {
                chunk.copy_from_slice(src);
                // Used bytes are not kept: a later reader of memory learns nothing of earlier tags.
                src.fill(0);
            }
            *used = end;
        }
    });
}

/// A random token (hex) for tags, branches and Call-IDs.
pub fn token(bytes: usize) -> String {
    let hex = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 });
    let mut buf = [0u8; 32];
    let buf = buf.get_mut(..bytes.min(32)).unwrap_or_default();
    random(buf);
    let mut out = String::with_capacity(buf.len() * 2);
    for b in buf.iter() {
        out.push(hex(b >> 4));
        out.push(hex(b & 15));
    }
    out
}

/// A new RFC 3261 branch.
pub fn branch() -> String {
    format!("z9hG4bK{}", token(10))
}

/// A From/To value without its `tag` (display name and URI in `<>`, other parameters kept).
pub fn without_tag(value: &[u8]) -> String {
    match NameAddr::parse(value) {
        Ok(na) => {
            let mut out = String::new();
            if let Some(d) = na.display {
                let d = String::from_utf8_lossy(d);
                if na.display_quoted {
                    out.push_str(&format!("\"{d}\" "));
                } else {
                    out.push_str(&format!("{d} "));
                }
            }
            out.push('<');
            out.push_str(&String::from_utf8_lossy(na.uri.raw));
            out.push('>');
            for (k, v) in na.params.iter() {
                if k.eq_ignore_ascii_case(b"tag") {
                    continue;
                }
                out.push(';');
                out.push_str(&String::from_utf8_lossy(k));
                if let Some(v) = v {
                    out.push('=');
                    out.push_str(&String::from_utf8_lossy(v));
                }
            }
            out
        }
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

/// A From/To value (without tag) with its host replaced (topology hiding on trunk legs): the
/// display name and user are kept, port and URI parameters dropped; non-SIP URIs are kept as
/// they are.
pub fn with_host(value: &str, host: &str) -> String {
    let Ok(na) = NameAddr::parse(value.as_bytes()) else { return value.to_string() };
    if !matches!(na.uri.scheme, trunkgate_sip::Scheme::Sip | trunkgate_sip::Scheme::Sips) {
        return value.to_string();
    }
    let scheme = String::from_utf8_lossy(na.uri.scheme_raw);
    let user = na.uri.user.map(|u| format!("{}@", String::from_utf8_lossy(u))).unwrap_or_default();
    let display = match na.display {
        Some(d) if na.display_quoted => format!("\"{}\" ", String::from_utf8_lossy(d)),
        Some(d) => format!("{} ", String::from_utf8_lossy(d)),
        None => String::new(),
    };
    format!("{display}<{scheme}:{user}{host}>")
}

/// The tag of a From/To value.
pub fn tag_of(value: &[u8]) -> Option<String> {
    NameAddr::parse(value).ok().and_then(|na| na.tag().map(|t| String::from_utf8_lossy(t).into_owned()))
}

/// The URI of the first Contact value.
pub fn contact_uri(msg: &OwnedMessage) -> Option<String> {
    let v = msg.get("Contact")?;
    let first = trunkgate_sip::scan::split_outside(v, b',').next()?;
    NameAddr::parse(first).ok().map(|na| String::from_utf8_lossy(na.uri.raw).into_owned())
}

/// Every Record-Route value of a message, in order (comma-separated values split).
pub fn record_routes(msg: &OwnedMessage) -> Vec<String> {
    msg.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Record-Route"))
        .flat_map(|(_, v)| {
            trunkgate_sip::scan::split_outside(v, b',')
                .map(|x| String::from_utf8_lossy(trunkgate_sip::scan::trim_lws(x)).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The URI inside a Route/Record-Route value.
pub fn route_uri(value: &str) -> Option<String> {
    NameAddr::parse(value.as_bytes()).ok().map(|na| String::from_utf8_lossy(na.uri.raw).into_owned())
}

/// The Request-URI of an owned request.
pub fn request_uri(msg: &OwnedMessage) -> Option<&str> {
    match &msg.start {
        trunkgate_sip::OwnedStart::Request { uri, .. } => Some(uri),
        trunkgate_sip::OwnedStart::Response { .. } => None,
    }
}

/// The method of an owned request.
pub fn method(msg: &OwnedMessage) -> Option<&Method> {
    match &msg.start {
        trunkgate_sip::OwnedStart::Request { method, .. } => Some(method),
        trunkgate_sip::OwnedStart::Response { .. } => None,
    }
}

/// The status of an owned response.
pub fn status(msg: &OwnedMessage) -> Option<u16> {
    match &msg.start {
        trunkgate_sip::OwnedStart::Response { status, .. } => Some(*status),
        trunkgate_sip::OwnedStart::Request { .. } => None,
    }
}

/// How the edge is addressed on one side: Via sent-by and Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    /// Host (advertised name or address).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
}

impl LocalAddr {
    /// A Via value with a new branch; returns (value, branch).
    pub fn via(&self) -> (String, String) {
        let b = branch();
        (format!("SIP/2.0/{} {}:{};branch={b};rport", self.transport.via(), self.host, self.port), b)
    }

    /// Our Contact on this side.
    pub fn contact(&self) -> String {
        match self.transport {
            Transport::Udp => format!("<sip:trunkgate@{}:{}>", self.host, self.port),
            Transport::Tcp => format!("<sip:trunkgate@{}:{};transport=tcp>", self.host, self.port),
            Transport::Tls => format!("<sip:trunkgate@{}:{};transport=tls>", self.host, self.port),
        }
    }
}

/// One dialog of a call.
#[derive(Debug, Clone)]
pub struct Leg {
    /// Which side it faces.
    pub side: Side,
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Their tag, once known.
    pub remote_tag: Option<String>,
    /// Our identity (From on requests we send), without tag.
    pub local_id: String,
    /// Their identity (To on requests we send), without tag.
    pub remote_id: String,
    /// Our last CSeq number on this leg.
    pub local_cseq: u32,
    /// Where in-dialog requests are addressed (their Contact), as the Request-URI.
    pub remote_target: String,
    /// The route set (RFC 3261 §12.1): Route values for in-dialog requests, in order.
    pub route_set: Vec<String>,
    /// Where in-dialog requests are sent.
    pub dest: Dest,
    /// How we are addressed on this leg.
    pub local: LocalAddr,
}

impl Leg {
    /// The From value we send (our identity with our tag).
    pub fn from_value(&self) -> String {
        format!("{};tag={}", self.local_id, self.local_tag)
    }

    /// The To value we send (their identity with their tag when known).
    pub fn to_value(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.remote_id),
            None => self.remote_id.clone(),
        }
    }

    /// A new in-dialog (or initial) request on this leg; bumps the CSeq except for ACK.
    pub fn request(&mut self, method: Method, max_forwards: u8, agent: &str) -> OwnedMessage {
        let cseq = if method == Method::Ack { self.local_cseq } else { self.next_cseq() };
        let (via, _) = self.local.via();
        let mut m = OwnedMessage::request(method.clone(), self.remote_target.clone());
        m.push("Via", via);
        m.push("Max-Forwards", max_forwards.to_string());
        m.push("From", self.from_value());
        m.push("To", self.to_value());
        for r in &self.route_set {
            m.push("Route", r);
        }
        m.push("Call-ID", &self.call_id);
        m.push("CSeq", format!("{cseq} {method}"));
        if matches!(method, Method::Invite | Method::Update | Method::Subscribe | Method::Refer) {
            m.push("Contact", self.local.contact());
        }
        m.push("User-Agent", agent);
        m
    }

    fn next_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        self.local_cseq
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_hex_of_the_asked_length_and_do_not_repeat_across_pool_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(3 * POOL / 6) {
            let t = token(6);
            assert_eq!(t.len(), 12);
            assert!(t.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{t}");
            assert!(seen.insert(t), "a 48-bit token repeated");
        }
        assert_eq!(token(40).len(), 64, "at most 32 bytes");
        assert_eq!(branch().len(), 7 + 20);
        assert!(branch().starts_with("z9hG4bK"));
        let mut big = [0u8; 2 * POOL + 7];
        random(&mut big);
        assert!(big.iter().filter(|&&b| b == 0).count() < big.len() / 16, "pool bytes handed out, not zeroes");
    }

    #[test]
    fn tags_are_stripped_and_found() {
        let v = b"\"Alice A\" <sip:alice@example.com>;tag=abc;x=1";
        assert_eq!(without_tag(v), "\"Alice A\" <sip:alice@example.com>;x=1");
        assert_eq!(tag_of(v).as_deref(), Some("abc"));
        assert_eq!(without_tag(b"sip:bob@example.com;tag=9"), "<sip:bob@example.com>");
    }

    #[test]
    fn hosts_are_hidden() {
        assert_eq!(
            with_host("\"Alice\" <sip:2001@10.0.0.10:5060;user=phone>", "edge.example"),
            "\"Alice\" <sip:2001@edge.example>"
        );
        assert_eq!(with_host("<sip:10.0.0.10>", "edge.example"), "<sip:edge.example>");
        assert_eq!(with_host("<tel:+13175551212>", "edge.example"), "<tel:+13175551212>");
    }

    #[test]
    fn tokens_are_unique_hex() {
        let (a, b) = (token(8), token(8));
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(branch().starts_with("z9hG4bK"));
    }

    #[test]
    fn leg_requests_carry_dialog_state() {
        let mut leg = Leg {
            side: Side::Inside,
            call_id: "c1".into(),
            local_tag: "l".into(),
            remote_tag: Some("r".into()),
            local_id: "<sip:a@x>".into(),
            remote_id: "<sip:b@y>".into(),
            local_cseq: 1,
            remote_target: "sip:b@192.0.2.1:5060".into(),
            route_set: vec!["<sip:proxy.example;lr>".into()],
            dest: Dest::Conn(1),
            local: LocalAddr { host: "127.0.0.1".into(), port: 5060, transport: Transport::Udp },
        };
        let bye = leg.request(Method::Bye, 70, "tg");
        assert_eq!(bye.get("CSeq"), Some(&b"2 BYE"[..]));
        assert_eq!(bye.get("To"), Some(&b"<sip:b@y>;tag=r"[..]));
        assert_eq!(bye.get("From"), Some(&b"<sip:a@x>;tag=l"[..]));
        assert_eq!(bye.get("Route"), Some(&b"<sip:proxy.example;lr>"[..]));
        let ack = leg.request(Method::Ack, 70, "tg");
        assert_eq!(ack.get("CSeq"), Some(&b"2 ACK"[..]));
    }
}
