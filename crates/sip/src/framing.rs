//! Splitting a byte stream (TCP, TLS) into SIP messages by Content-Length (RFC 3261 §18.3), and
//! the RFC 5626 §4.4.1 keepalive: a double CRLF ("ping") is answered with one CRLF ("pong"); a
//! single CRLF between messages is a pong (or stray) and is skipped.
//!
//! The buffer is bounded: if no complete message appears within [`Limits::max_message_size`]
//! bytes, [`StreamFramer::next_frame`] fails and the connection should be closed.

use crate::error::ParseError;
use crate::message::Limits;
use crate::scan;

/// What came next on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole message (head and Content-Length body). Parse it with
    /// [`crate::parse_stream_message`].
    Message(Vec<u8>),
    /// A CRLFCRLF keepalive ping: answer with [`PONG`].
    Ping,
    /// A single CRLF: a pong to our ping, or a stray line end; nothing to do.
    Pong,
}

/// The keepalive answer to a ping.
pub const PONG: &[u8] = b"\r\n";
/// A keepalive ping.
pub const PING: &[u8] = b"\r\n\r\n";

/// An incremental framer for one connection.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    start: usize,
    limits: Limits,
    expecting_pong: bool,
}

impl StreamFramer {
    /// A new, empty framer.
    pub fn new(limits: Limits) -> Self {
        StreamFramer { buf: Vec::new(), start: 0, limits, expecting_pong: false }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Tells the framer that we sent a ping, so that a lone CRLF is a pong at once. Otherwise a
    /// lone CRLF waits for the next byte: it may be the first half of a ping.
    pub fn expect_pong(&mut self) {
        self.expecting_pong = true;
    }

    /// Bytes received and not yet returned as a frame.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Frees the buffer when it holds nothing, so that an idle connection keeps no memory for a
    /// burst it has already framed; returns whether it did. A partial message is kept.
    pub fn release_if_empty(&mut self) -> bool {
        if self.has_partial() || self.buf.capacity() == 0 {
            return false;
        }
        self.buf = Vec::new();
        self.start = 0;
        true
    }

    /// Whether a partial message is waiting for more bytes (for idle/slowloris timeouts).
    pub fn has_partial(&self) -> bool {
        !self.pending().is_empty()
    }

    /// Returns the next complete frame, `Ok(None)` when more bytes are needed, or an error when
    /// the stream cannot be framed (the connection must then be closed).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        let pending = self.pending();
        if pending.starts_with(b"\r\n") {
            return Ok(Some(if pending.starts_with(PING) {
                self.start += 4;
                Frame::Ping
            } else if !self.expecting_pong && (pending.len() == 2 || pending == b"\r\n\r") {
                return Ok(None); // maybe the start of a ping split across reads
            } else {
                self.start += 2;
                self.expecting_pong = false;
                Frame::Pong
            }));
        }
        let Some(len) = frame_len(pending, &self.limits)? else {
            return Ok(None);
        };
        let msg = pending.get(..len).unwrap_or_default().to_vec();
        self.start += len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(Frame::Message(msg)))
    }
}

/// The length of the first complete message in `buf`, `None` when more bytes are needed.
pub fn frame_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
    let head_end = match memchr::memmem::find(buf, b"\r\n\r\n") {
        Some(i) => i + 4,
        None => {
            if buf.len() > limits.max_message_size {
                return Err(ParseError::TooLarge { what: "message size", limit: limits.max_message_size });
            }
            return Ok(None);
        }
    };
    if head_end > limits.max_message_size {
        return Err(ParseError::TooLarge { what: "message size", limit: limits.max_message_size });
    }
    let head = buf.get(..head_end).unwrap_or_default();
    let body = content_length(head, limits)?.unwrap_or(0);
    let total = head_end + body;
    if total > limits.max_message_size {
        return Err(ParseError::TooLarge { what: "message size", limit: limits.max_message_size });
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Finds the Content-Length value in a message head with a light scan of line starts.
fn content_length(head: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
    let mut found = None;
    let mut lines = head.split(|&b| b == b'\n').peekable();
    lines.next(); // start line
    while let Some(line) = lines.next() {
        let (name, after) = scan::token_at(line, 0);
        let is_cl = scan::eq_ic(name, b"content-length") || scan::eq_ic(name, b"l");
        if !is_cl {
            continue;
        }
        let mut i = after;
        while line.get(i).is_some_and(|&b| scan::is_wsp(b)) {
            i += 1;
        }
        if line.get(i) != Some(&b':') {
            continue;
        }
        let mut value = scan::trim_lws(line.get(i + 1..).unwrap_or_default());
        if value.is_empty() {
            if let Some(next) = lines.peek().filter(|l| l.first().is_some_and(|&b| scan::is_wsp(b))) {
                value = scan::trim_lws(next);
            }
        }
        if found.is_some() {
            return Err(ParseError::MultipleContentLength);
        }
        let v = scan::parse_u64_max(value, limits.max_message_size as u64).ok_or(ParseError::ContentLength)?;
        found = Some(v as usize);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn byte_by_byte_and_keepalives() {
        let mut f = StreamFramer::new(Limits::default());
        let mut stream = Vec::new();
        stream.extend_from_slice(PING);
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(MSG);
        let mut frames = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(fr) = f.next_frame().unwrap() {
                frames.push(fr);
            }
        }
        assert_eq!(frames, vec![Frame::Ping, Frame::Message(MSG.to_vec()), Frame::Pong, Frame::Message(MSG.to_vec())]);
        assert!(!f.has_partial());
        f.expect_pong();
        f.push(PONG);
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
    }

    #[test]
    fn waits_for_the_body_then_bounds_it() {
        let clerr = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 9999\r\n\r\nv=0\r\n";
        let mut f = StreamFramer::new(Limits::default());
        f.push(clerr);
        assert_eq!(f.next_frame().unwrap(), None, "stream: wait for more bytes");
        let mut f = StreamFramer::new(Limits { max_message_size: 1000, ..Limits::default() });
        f.push(clerr);
        assert!(f.next_frame().is_err(), "body beyond the size limit");
        let mut f = StreamFramer::new(Limits { max_message_size: 100, ..Limits::default() });
        f.push(&[b'a'; 101]);
        assert!(f.next_frame().is_err(), "no header end within the limit");
    }

    #[test]
    fn bad_content_length_is_fatal() {
        for raw in
            [&b"OPTIONS sip:a@b SIP/2.0\r\nl: -9\r\n\r\n"[..], b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\n"]
        {
            let mut f = StreamFramer::new(Limits::default());
            f.push(raw);
            assert!(f.next_frame().is_err());
        }
    }

    #[test]
    fn releases_its_buffer_only_when_nothing_is_pending() {
        let mut f = StreamFramer::new(Limits::default());
        assert!(!f.release_if_empty(), "nothing allocated yet");
        f.push(MSG);
        f.push(&MSG[..10]);
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())));
        assert!(!f.release_if_empty(), "a partial message is kept");
        f.push(&MSG[10..]);
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())));
        assert!(f.release_if_empty(), "an emptied buffer is freed");
        assert_eq!(f.buf.capacity(), 0);
        f.push(MSG);
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())), "and used again");
    }
}
