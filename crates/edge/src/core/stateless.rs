//! Answers sent without a transaction: to messages that do not parse or do not validate
//! (RFC 4475 handling on every listener), using [`trunkgate_sip::disposition`].

use trunkgate_sip::{disposition, response_to, Disposition, Message, OwnedMessage, ParseError};

use super::leg::token;
use super::{Core, Origin};

impl Core {
    /// A parsed request failed validation: answer as the disposition says (responses: drop).
    pub(crate) fn reject(&mut self, origin: &Origin, msg: &Message<'_>, err: &ParseError) {
        tracing::debug!(peer = %origin.peer, error = %err, "rejected message");
        match disposition(err, msg.is_request(), &self.policy.accept_header()) {
            Disposition::Respond { status, reason, extra_header } => {
                self.answer_stateless(origin, msg, status, reason, extra_header);
            }
            Disposition::Drop => {}
        }
    }

    pub(crate) fn answer_stateless(
        &mut self,
        origin: &Origin,
        msg: &Message<'_>,
        status: u16,
        reason: &str,
        extra: Option<(&'static str, String)>,
    ) {
        let mut resp = response_to(msg, status, reason, Some(&token(6)));
        if let Some((name, value)) = extra {
            resp.push(name, value);
        }
        resp.push("Server", &self.cfg.edge.name);
        self.send(origin.reply.clone(), resp.to_bytes(), None);
    }

    /// A message that did not even parse: a request gets its answer when enough of its header
    /// fields can be salvaged to address one (Via, From, To, Call-ID, CSeq); otherwise, and for
    /// responses, it is dropped.
    pub(crate) fn reject_unparsed(&mut self, origin: &Origin, raw: &[u8], err: &ParseError, is_request: bool) {
        tracing::debug!(peer = %origin.peer, error = %err, "unparsable message");
        let Disposition::Respond { status, reason, extra_header } =
            disposition(err, is_request, &self.policy.accept_header())
        else {
            return;
        };
        if let Some(mut resp) = salvage_response(raw, status, reason, self.limits.max_message_size) {
            if let Some((name, value)) = extra_header {
                resp.push(name, value);
            }
            resp.push("Server", &self.cfg.edge.name);
            self.send(origin.reply.clone(), resp.to_bytes(), None);
        }
    }
}

/// Builds a response from the raw header lines of a message that does not parse: the Via, From,
/// To (with a tag added), Call-ID and CSeq lines are copied as they are. `None` when any of them
/// is missing (there is nobody to address the answer to).
pub fn salvage_response(raw: &[u8], status: u16, reason: &str, max: usize) -> Option<OwnedMessage> {
    let raw = raw.get(..raw.len().min(max))?;
    let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
    let mut it = raw.split(|&b| b == b'\n').skip(1);
    for line in it.by_ref() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(last) = lines.last_mut() {
                last.1.push(b' ');
                last.1.extend_from_slice(trunkgate_sip::scan::trim_lws(line));
            }
            continue;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = String::from_utf8_lossy(trunkgate_sip::scan::trim_lws(line.get(..colon)?)).to_ascii_lowercase();
        let value = trunkgate_sip::scan::trim_lws(line.get(colon + 1..)?).to_vec();
        lines.push((name, value));
    }
    let canonical = |n: &str| match n {
        "via" | "v" => Some("Via"),
        "from" | "f" => Some("From"),
        "to" | "t" => Some("To"),
        "call-id" | "i" => Some("Call-ID"),
        "cseq" => Some("CSeq"),
        _ => None,
    };
    let mut resp = OwnedMessage::response(status, reason);
    let mut seen = [false; 5];
    for (name, value) in lines {
        let Some(c) = canonical(&name) else { continue };
        let idx = ["Via", "From", "To", "Call-ID", "CSeq"].iter().position(|x| *x == c)?;
        if let Some(s) = seen.get_mut(idx) {
            if *s && c != "Via" {
                continue;
            }
            *s = true;
        }
        let mut v = value;
        if c == "To" && !v.windows(4).any(|w| w.eq_ignore_ascii_case(b"tag=")) {
            v.extend_from_slice(format!(";tag={}", token(6)).as_bytes());
        }
        resp.push(c, v);
    }
    seen.iter().all(|&s| s).then_some(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn salvage_from_a_broken_request_line() {
        let raw = b"INVITE  sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\ni: c\r\nCSeq: 1\r\n INVITE\r\nl: -5\r\n\r\n";
        let r = salvage_response(raw, 400, "Bad Request", 65536).unwrap();
        let bytes = r.to_bytes();
        let m = trunkgate_sip::parse_datagram(&bytes, &trunkgate_sip::Limits::default()).unwrap();
        assert_eq!(m.status(), Some(400));
        assert_eq!(m.header(trunkgate_sip::HeaderName::CSeq), Some(&b"1 INVITE"[..]));
        assert!(trunkgate_sip::validate_response(&m).is_ok());
        assert!(salvage_response(b"INVITE x\r\nFrom: a\r\n\r\n", 400, "Bad Request", 65536).is_none());
    }
}
