//! The SIP messages the load generator sends and what it reads from the answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use trunkgate_sip::headers::NameAddr;
use trunkgate_sip::{parse_datagram, HeaderName, Limits, Message};

/// Unique tokens: process id, a per-process counter.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// A token unique within this process and (with the pid) across runs.
pub fn token() -> String {
    format!("{:x}-{:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The SDP offer and answer (media is not the point here).
pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";

/// What the load generator needs from a received message.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Status of a response; None for a request.
    pub status: Option<u16>,
    /// Method of a request, or the CSeq method of a response.
    pub method: String,
    /// CSeq number.
    pub cseq: u32,
    /// Call-ID.
    pub call_id: String,
    /// Tag of To.
    pub to_tag: Option<String>,
    /// URI of the first Contact.
    pub contact: Option<String>,
    /// Record-Route values in order.
    pub record_route: Vec<String>,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim().to_owned()
}

/// Reads a message (datagram or framed stream message); None when it does not parse.
pub fn read(buf: &[u8]) -> Option<Received> {
    let limits = Limits { max_message_size: 65_536, ..Limits::default() };
    let m: Message<'_> = parse_datagram(buf, &limits).ok()?;
    let cseq = text(m.header(HeaderName::CSeq)?);
    let mut parts = cseq.split_whitespace();
    let num = parts.next()?.parse().ok()?;
    let cseq_method = parts.next()?.to_owned();
    let method = match m.method() {
        Some(meth) => meth.as_str().to_owned(),
        None => cseq_method,
    };
    let to_tag = m.header(HeaderName::To).and_then(|v| NameAddr::parse(v).ok()?.tag().map(text));
    let contact = m.header(HeaderName::Contact).and_then(|v| {
        let v = text(v);
        match (v.find('<'), v.find('>')) {
            (Some(a), Some(b)) if a < b => v.get(a + 1..b).map(str::to_owned),
            _ => v.split(';').next().map(str::to_owned),
        }
    });
    let record_route = m
        .values(HeaderName::RecordRoute)
        .flat_map(|v| text(v).split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    Some(Received {
        status: m.status(),
        method,
        cseq: num,
        call_id: text(m.header(HeaderName::CallId)?),
        to_tag,
        contact,
        record_route,
    })
}

/// The transport token of a Via.
pub fn via_transport(t: crate::Transport) -> &'static str {
    match t {
        crate::Transport::Udp => "UDP",
        crate::Transport::Tcp => "TCP",
        crate::Transport::Tls => "TLS",
    }
}

/// Headers common to the requests of one dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Via transport.
    pub transport: crate::Transport,
    /// Our address (Via sent-by, Contact).
    pub local: SocketAddr,
    /// Call-ID.
    pub call_id: String,
    /// From header value with tag.
    pub from: String,
    /// To header value (with the peer's tag once known).
    pub to: String,
}

impl Dialog {
    /// A new dialog (or transaction) toward `uri`.
    pub fn new(transport: crate::Transport, local: SocketAddr, uri: &str) -> Dialog {
        let t = token();
        Dialog {
            transport,
            local,
            call_id: format!("{t}@trunkgate-bench"),
            from: format!("<sip:bench@{local}>;tag={t}"),
            to: format!("<{uri}>"),
        }
    }

    /// A request with a new branch, `Content-Length` set, body appended.
    pub fn request(&self, method: &str, uri: &str, cseq: u32, routes: &[String], body: Option<&str>) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut m = String::with_capacity(512);
        let tr = via_transport(self.transport);
        let _ = write!(
            m,
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{tr} {};branch=z9hG4bK{};rport\r\nMax-Forwards: 70\r\n",
            self.local,
            token()
        );
        for r in routes {
            let _ = write!(m, "Route: {r}\r\n");
        }
        let _ = write!(
            m,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            self.from, self.to, self.call_id
        );
        if method == "INVITE" {
            let param = if self.transport == crate::Transport::Tls { ";transport=tls" } else { "" };
            let _ = write!(m, "Contact: <sip:bench@{}{param}>\r\n", self.local);
        }
        let _ = write!(m, "User-Agent: trunkgate-bench\r\n");
        match body {
            Some(b) => {
                let _ = write!(m, "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}", b.len());
            }
            None => m.push_str("Content-Length: 0\r\n\r\n"),
        }
        m.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_reads_back() {
        let d = Dialog::new(crate::Transport::Tls, "127.0.0.1:5000".parse().unwrap(), "sip:+1@127.0.0.1:5061");
        let inv = d.request("INVITE", "sip:+1@127.0.0.1:5061", 1, &["<sip:p;lr>".into()], Some(SDP));
        let r = read(&inv).unwrap();
        assert_eq!((r.status, r.method.as_str(), r.cseq), (None, "INVITE", 1));
        assert_eq!(r.call_id, d.call_id);
        assert_eq!(r.contact.as_deref(), Some("sip:bench@127.0.0.1:5000;transport=tls"));
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nRecord-Route: <sip:a;lr>, <sip:b;lr>\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=zz\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContact: <sip:u@h:1>\r\nContent-Length: 0\r\n\r\n";
        let r = read(resp).unwrap();
        assert_eq!((r.status, r.method.as_str(), r.cseq), (Some(200), "BYE", 2));
        assert_eq!(r.to_tag.as_deref(), Some("zz"));
        assert_eq!(r.record_route, vec!["<sip:a;lr>", "<sip:b;lr>"]);
        assert!(read(b"garbage").is_none());
    }
}
