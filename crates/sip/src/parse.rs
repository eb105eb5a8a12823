//! The message parser: start line, header lines (with folding), Content-Length and body.
//!
//! This layer checks the *syntax* that framing depends on; the semantics of individual headers
//! (mandatory fields, CSeq, URIs in From/To, …) are checked by [`crate::validate`]. The split
//! lets a malformed request still be read far enough to build its 400 answer.

use crate::error::ParseError;
use crate::message::{Header, Limits, Message, StartLine};
use crate::name::{HeaderName, Method};
use crate::scan;

/// The head of a message: everything before the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    /// Start line.
    pub start: StartLine<'a>,
    /// Header fields in order.
    pub headers: Vec<Header<'a>>,
    /// Offset of the first body byte.
    pub body_start: usize,
    /// The Content-Length value, when present.
    pub content_length: Option<usize>,
}

/// Whether raw bytes look like a request (anything not starting with `SIP/`), for choosing
/// between answering and dropping when even the start line does not parse.
pub fn looks_like_request(buf: &[u8]) -> bool {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    !buf.get(start..).unwrap_or_default().starts_with(b"SIP/")
}

/// Parses a message received as one datagram (RFC 3261 §18.3): the body is Content-Length bytes
/// (the rest of the datagram when the header is absent) and trailing octets are ignored
/// (RFC 4475 §3.1.1.8). A Content-Length larger than the bytes present is an error (§3.1.2.2).
pub fn parse_datagram<'a>(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    if buf.len() > limits.max_message_size {
        return Err(ParseError::TooLarge { what: "message size", limit: limits.max_message_size });
    }
    let head = parse_head(buf, limits)?;
    let available = buf.len().saturating_sub(head.body_start);
    let body_len = match head.content_length {
        Some(declared) if declared > available => {
            return Err(ParseError::ContentLengthExceedsBody { declared, available })
        }
        Some(declared) => declared,
        None => available,
    };
    let end = head.body_start + body_len;
    Ok(Message {
        start: head.start,
        headers: head.headers,
        body: buf.get(head.body_start..end).unwrap_or_default(),
        len: end,
    })
}

/// Parses one whole message from a stream (as delimited by [`crate::framing::StreamFramer`]).
/// RFC 3261 §18.3 requires Content-Length on streams; an absent one is read as 0, as the framer
/// does, so that both agree on where the next message starts.
pub fn parse_stream_message<'a>(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    let head = parse_head(buf, limits)?;
    let declared = head.content_length.unwrap_or(0);
    let available = buf.len().saturating_sub(head.body_start);
    if declared > available {
        return Err(ParseError::ContentLengthExceedsBody { declared, available });
    }
    let end = head.body_start + declared;
    Ok(Message {
        start: head.start,
        headers: head.headers,
        body: buf.get(head.body_start..end).unwrap_or_default(),
        len: end,
    })
}

/// Finds the end of the next line starting at `pos`: returns (content end, next line start).
fn line_at(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let rest = buf.get(pos..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let end = if nl > 0 && rest.get(nl - 1) == Some(&b'\r') { nl - 1 } else { nl };
    Some((pos + end, pos + nl + 1))
}

/// Parses the start line and header fields. Leading CRLFs are skipped (RFC 3261 §7.5).
pub fn parse_head<'a>(buf: &'a [u8], limits: &Limits) -> Result<Head<'a>, ParseError> {
    let Some(mut pos) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else { return Err(ParseError::Empty) };
    let Some((end, next)) = line_at(buf, pos) else { return Err(ParseError::Unterminated) };
    if end - pos > limits.max_line_length {
        return Err(ParseError::TooLarge { what: "line length", limit: limits.max_line_length });
    }
    let start = parse_start_line(buf.get(pos..end).unwrap_or_default())?;
    pos = next;

    let mut headers: Vec<Header<'a>> = Vec::with_capacity(20);
    // The field being read: (name, raw name, value start, value end). It is finished when the
    // next field (or the empty line) starts, so that folded lines can extend it.
    let mut open: Option<(HeaderName, &'a [u8], usize, usize)> = None;
    let mut content_length = None;
    let mut line_no = 1;
    let body_start = loop {
        line_no += 1;
        let Some((end, next)) = line_at(buf, pos) else { return Err(ParseError::Unterminated) };
        if end - pos > limits.max_line_length {
            return Err(ParseError::TooLarge { what: "line length", limit: limits.max_line_length });
        }
        let first = buf.get(pos).copied().unwrap_or(b'\n');
        if end != pos && scan::is_wsp(first) {
            // Folded continuation of the open field (RFC 3261 §7.3.1).
            let field = open
                .as_mut()
                .ok_or(ParseError::HeaderLine { line: line_no, reason: "continuation line before any header" })?;
            field.3 = end;
            pos = next;
            continue;
        }
        if let Some((name, raw_name, s, e)) = open.take() {
            let value = scan::trim_lws(buf.get(s..e).unwrap_or_default());
            if name == HeaderName::ContentLength {
                if content_length.is_some() {
                    return Err(ParseError::MultipleContentLength);
                }
                content_length = Some(content_length_value(value, limits)?);
            }
            headers.push(Header { name, raw_name, value });
        }
        if end == pos {
            break next;
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooLarge { what: "header count", limit: limits.max_headers });
        }
        let line = buf.get(pos..end).unwrap_or_default();
        // One pass over the name: check token characters and lower-case the first 24 bytes
        // for the name lookup.
        let mut lower = [0u8; 24];
        let mut after = 0;
        for (i, &b) in line.iter().enumerate() {
            if !scan::is_token(b) {
                break;
            }
            if let Some(slot) = lower.get_mut(i) {
                *slot = b.to_ascii_lowercase();
            }
            after = i + 1;
        }
        let name = line.get(..after).unwrap_or_default();
        if name.is_empty() {
            return Err(ParseError::HeaderLine { line: line_no, reason: "header name is not a token" });
        }
        let known = match lower.get(..after) {
            Some(l) => HeaderName::from_lower(l),
            None => HeaderName::Other,
        };
        let mut i = after;
        while line.get(i).is_some_and(|&b| scan::is_wsp(b)) {
            i += 1;
        }
        if line.get(i) != Some(&b':') {
            return Err(ParseError::HeaderLine { line: line_no, reason: "expected ':' after the header name" });
        }
        open = Some((known, name, pos + i + 1, end));
        pos = next;
    };
    if body_start + content_length.unwrap_or(0) > limits.max_message_size {
        return Err(ParseError::TooLarge { what: "message size", limit: limits.max_message_size });
    }
    Ok(Head { start, headers, body_start, content_length })
}

fn content_length_value(value: &[u8], limits: &Limits) -> Result<usize, ParseError> {
    match scan::parse_u64_max(value, limits.max_message_size as u64) {
        Some(v) => Ok(v as usize),
        None if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
            Err(ParseError::TooLarge { what: "message size", limit: limits.max_message_size })
        }
        None => Err(ParseError::ContentLength),
    }
}

fn is_version(v: &[u8]) -> bool {
    // "SIP" "/" 1*DIGIT "." 1*DIGIT
    let Some(rest) = v.get(..4).filter(|p| scan::eq_ic(p, b"SIP/")).and(v.get(4..)) else {
        return false;
    };
    let mut parts = rest.splitn(2, |&b| b == b'.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    !major.is_empty()
        && !minor.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && minor.iter().all(u8::is_ascii_digit)
}

fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, ParseError> {
    if line.len() >= 4 && scan::eq_ic(line.get(..4).unwrap_or_default(), b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = scan::find(line, b' ').ok_or(ParseError::StartLine("status line has no status code"))?;
        let version = line.get(..sp).unwrap_or_default();
        if !is_version(version) {
            return Err(ParseError::StartLine("malformed SIP version"));
        }
        let rest = line.get(sp + 1..).unwrap_or_default();
        let code_end = scan::find(rest, b' ').unwrap_or(rest.len());
        let code = rest.get(..code_end).unwrap_or_default();
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::StatusCode);
        }
        let status = scan::parse_u64_max(code, 999).ok_or(ParseError::StatusCode)? as u16;
        if !(100..=699).contains(&status) {
            return Err(ParseError::StatusCode);
        }
        let reason = rest.get(code_end + 1..).unwrap_or_default();
        if reason.iter().any(|&b| b == b'\r' || b == 0) {
            return Err(ParseError::StartLine("control character in the reason phrase"));
        }
        return Ok(StartLine::Response { version, status, reason });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces only.
    let Some(first) = memchr::memchr(b' ', line) else {
        return Err(ParseError::StartLine("request line has no Request-URI"));
    };
    let last = memchr::memrchr(b' ', line).unwrap_or(first);
    if last == first {
        return Err(ParseError::StartLine("request line has no SIP version"));
    }
    let method_raw = line.get(..first).unwrap_or_default();
    let uri = line.get(first + 1..last).unwrap_or_default();
    let version = line.get(last + 1..).unwrap_or_default();
    let method = Method::from_bytes(method_raw).ok_or(ParseError::StartLine("method is not a token"))?;
    if version.is_empty() {
        return Err(ParseError::StartLine("white space at the end of the request line"));
    }
    if !is_version(version) {
        return Err(ParseError::StartLine("malformed SIP version"));
    }
    if uri.is_empty() || memchr::memchr2(b' ', b'\t', uri).is_some() {
        return Err(ParseError::RequestUri("white space in or around the Request-URI"));
    }
    if uri.first() == Some(&b'<') {
        return Err(ParseError::RequestUri("the Request-URI must not be enclosed in <>"));
    }
    Ok(StartLine::Request { method, uri, version })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n";

    #[test]
    fn minimal_request() {
        let m = parse_datagram(OPTIONS, &Limits::default()).unwrap();
        assert_eq!(m.method(), Some(&Method::Options));
        assert_eq!(m.request_uri(), Some(&b"sip:a@b"[..]));
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.len, OPTIONS.len());
    }

    #[test]
    fn folded_value_is_joined() {
        let raw = b"SIP/2.0 200 OK\r\nSubject: a\r\n b\r\nContent-Length: 0\r\n\r\n";
        let m = parse_datagram(raw, &Limits::default()).unwrap();
        assert_eq!(m.header(HeaderName::Subject), Some(&b"a\r\n b"[..]));
        assert_eq!(crate::message::unfold(m.headers[0].value), b"a b".to_vec());
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits { max_headers: 1, ..Limits::default() };
        assert!(matches!(parse_datagram(OPTIONS, &limits), Err(ParseError::TooLarge { what: "header count", .. })));
        let limits = Limits { max_message_size: 10, ..Limits::default() };
        assert!(matches!(parse_datagram(OPTIONS, &limits), Err(ParseError::TooLarge { .. })));
    }

    #[test]
    fn start_line_errors() {
        let l = Limits::default();
        for bad in [
            &b"INVITE  sip:a@b SIP/2.0\r\n\r\n"[..],
            b"INVITE sip:a@b SIP/2.0 \r\n\r\n",
            b"INVITE <sip:a@b> SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b\r\n\r\n",
            b"SIP/2.0 20 OK\r\n\r\n",
            b"SIP/2.0 4294967301 big\r\n\r\n",
        ] {
            assert!(parse_head(bad, &l).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
