//! Typed views of header values (RFC 3261 §20): name-addr headers (From, To, Contact, Route,
//! Record-Route), Via, CSeq, Max-Forwards, Expires, Content-Type, Accept, option-tag lists,
//! Allow and Retry-After. Each parser takes one header value (or one comma-separated element)
//! as borrowed bytes and returns a borrowed view, or a [`HeaderError`] naming what is wrong.

use crate::name::Method;
use crate::scan;
use crate::uri::{parse_host_name, Host, Params, Uri, UriError};

/// Why a header value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub &'static str);

impl From<UriError> for HeaderError {
    fn from(e: UriError) -> Self {
        HeaderError(e.0)
    }
}

/// `[display-name] <URI> *(;param)` or `addr-spec *(;param)` (From, To, Contact, Route …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name: the inner bytes of a quoted string (escapes kept) or the tokens as sent.
    pub display: Option<&'a [u8]>,
    /// Whether the display name was quoted.
    pub display_quoted: bool,
    /// The URI.
    pub uri: Uri<'a>,
    /// Whether the URI was written in `<>` (name-addr form).
    pub bracketed: bool,
    /// Header parameters after the URI (`tag`, `expires`, `q`, …).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one name-addr / addr-spec element.
    pub fn parse(value: &'a [u8]) -> Result<NameAddr<'a>, HeaderError> {
        let s = scan::trim_lws(value);
        let (display, display_quoted, lt) = if s.first() == Some(&b'"') {
            let (inner, next) = scan::quoted_at(s, 0).map_err(|_| HeaderError("unterminated quoted display name"))?;
            let lt = scan::skip_lws(s, next);
            if s.get(lt) != Some(&b'<') {
                return Err(HeaderError("a quoted display name must be followed by <URI>"));
            }
            (Some(inner), true, Some(lt))
        } else {
            match s.iter().position(|&b| b == b'<') {
                Some(lt) => {
                    let name = scan::trim_lws(s.get(..lt).unwrap_or_default());
                    if !name.iter().all(|&b| scan::is_token(b) || scan::is_wsp(b) || b == b'\r' || b == b'\n') {
                        return Err(HeaderError("an unquoted display name may hold only tokens"));
                    }
                    ((!name.is_empty()).then_some(name), false, Some(lt))
                }
                None => (None, false, None),
            }
        };
        let (uri_raw, rest, bracketed) = match lt {
            Some(lt) => {
                let gt =
                    s.get(lt..).and_then(|t| scan::find(t, b'>')).map(|g| g + lt).ok_or(HeaderError("missing '>'"))?;
                (s.get(lt + 1..gt).unwrap_or_default(), s.get(gt + 1..).unwrap_or_default(), true)
            }
            None => {
                let semi = scan::find(s, b';').unwrap_or(s.len());
                let spec = scan::trim_lws(s.get(..semi).unwrap_or_default());
                if spec.iter().any(|&b| b == b'?' || b == b',') {
                    return Err(HeaderError("a URI with '?' or ',' must be enclosed in <>"));
                }
                (spec, s.get(semi..).unwrap_or_default(), false)
            }
        };
        let uri = Uri::parse(uri_raw)?;
        let rest = scan::trim_lws(rest);
        let params = match rest.first() {
            None => Params(b""),
            Some(b';') => Params(rest.get(1..).unwrap_or_default()),
            Some(_) => return Err(HeaderError("unexpected text after the URI")),
        };
        check_header_params(params)?;
        Ok(NameAddr { display, display_quoted, uri, bracketed, params })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.params.get("tag").flatten()
    }

    /// The display name without quotes and escapes.
    pub fn display_text(&self) -> Option<Vec<u8>> {
        self.display.map(|d| if self.display_quoted { scan::unquote(d) } else { d.to_vec() })
    }
}

fn check_header_params(params: Params<'_>) -> Result<(), HeaderError> {
    if scan::trim_lws(params.0).is_empty() {
        return Ok(());
    }
    for piece in scan::split_outside(params.0, b';') {
        let p = scan::trim_lws(piece);
        let eq = scan::find(p, b'=').unwrap_or(p.len());
        if !scan::is_token_str(scan::trim_lws(p.get(..eq).unwrap_or_default())) {
            return Err(HeaderError("invalid header parameter name"));
        }
        if let Some(v) = p.get(eq + 1..).map(scan::trim_lws) {
            let ok = if v.first() == Some(&b'"') {
                scan::quoted_at(v, 0).is_ok_and(|(_, end)| end == v.len())
            } else {
                !v.is_empty() && v.iter().all(|&b| scan::is_token(b) || matches!(b, b':' | b'[' | b']'))
            };
            if !ok {
                return Err(HeaderError("invalid header parameter value"));
            }
        }
    }
    Ok(())
}

/// One `via-parm` (RFC 3261 §20.42).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name, `SIP`.
    pub protocol: &'a [u8],
    /// Protocol version, `2.0`.
    pub version: &'a [u8],
    /// Transport (`UDP`, `TCP`, `TLS`, `SCTP`, or any token).
    pub transport: &'a [u8],
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl` …).
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one via-parm, allowing LWS around `/`, `;` and `=` as the grammar does.
    pub fn parse(value: &'a [u8]) -> Result<Via<'a>, HeaderError> {
        let s = scan::trim_lws(value);
        let mut pos = 0;
        let part = |pos: &mut usize, last: bool| -> Result<&'a [u8], HeaderError> {
            let (tok, end) = scan::token_at(s, *pos);
            if tok.is_empty() {
                return Err(HeaderError("malformed sent-protocol"));
            }
            *pos = scan::skip_lws(s, end);
            if !last {
                if s.get(*pos) != Some(&b'/') {
                    return Err(HeaderError("expected '/' in sent-protocol"));
                }
                *pos = scan::skip_lws(s, *pos + 1);
            }
            Ok(tok)
        };
        let protocol = part(&mut pos, false)?;
        let version = part(&mut pos, false)?;
        let transport = part(&mut pos, true)?;
        let rest = s.get(pos..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == b';' || scan::is_wsp(b) || b == b'\r').unwrap_or(rest.len());
        let sent_by = rest.get(..end).unwrap_or_default();
        let (host, port) = parse_host_port(sent_by)?;
        let after = scan::trim_lws(rest.get(end..).unwrap_or_default());
        let params = match after.first() {
            None => Params(b""),
            Some(b';') => Params(after.get(1..).unwrap_or_default()),
            Some(_) => return Err(HeaderError("unexpected text after sent-by")),
        };
        check_header_params(params)?;
        Ok(Via { protocol, version, transport, host, port, params })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.params.get("branch").flatten()
    }

    /// Whether the branch carries the RFC 3261 magic cookie (`z9hG4bK`).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(b"z9hG4bK"))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.params.get("received").flatten()
    }

    /// `rport`: `Some(None)` when present without a value (RFC 3581 request), `Some(Some(p))`
    /// when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| scan::parse_u64_max(p, 65535)).map(|p| p as u16))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.params.get("maddr").flatten()
    }
}

/// Parses `host[:port]` (host name, IPv4, or `[IPv6]`).
pub fn parse_host_port(s: &[u8]) -> Result<(Host<'_>, Option<u16>), HeaderError> {
    let (host, rest) = if s.first() == Some(&b'[') {
        let close = scan::find(s, b']').ok_or(HeaderError("unterminated IPv6 reference"))?;
        let inner = std::str::from_utf8(s.get(1..close).unwrap_or_default())
            .map_err(|_| HeaderError("invalid IPv6 address"))?;
        (
            Host::V6(inner.parse().map_err(|_| HeaderError("invalid IPv6 address"))?),
            s.get(close + 1..).unwrap_or_default(),
        )
    } else {
        let colon = scan::find(s, b':').unwrap_or(s.len());
        (parse_host_name(s.get(..colon).unwrap_or_default())?, s.get(colon..).unwrap_or_default())
    };
    let port = match rest.strip_prefix(b":") {
        None if rest.is_empty() => None,
        None => return Err(HeaderError("garbage after host")),
        Some(p) => Some(scan::parse_u64_max(p, 65535).ok_or(HeaderError("invalid port"))? as u16),
    };
    Ok((host, port))
}

/// `CSeq: number method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (32-bit unsigned, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(value: &[u8]) -> Result<CSeq, HeaderError> {
        let s = scan::trim_lws(value);
        let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
        let seq = scan::parse_u64_max(s.get(..end).unwrap_or_default(), u64::from(u32::MAX))
            .ok_or(HeaderError("sequence number is not a 32-bit number"))? as u32;
        let rest = s.get(end..).unwrap_or_default();
        let m = scan::skip_lws(rest, 0);
        if m == 0 {
            return Err(HeaderError("expected white space before the method"));
        }
        let method =
            Method::from_bytes(rest.get(m..).unwrap_or_default()).ok_or(HeaderError("method is not a token"))?;
        Ok(CSeq { seq, method })
    }
}

/// Parses a delta-seconds / small integer header value (`Max-Forwards` with max 255, `Expires`
/// and `Min-Expires` with max 2^32-1).
pub fn parse_number(value: &[u8], max: u64) -> Result<u64, HeaderError> {
    scan::parse_u64_max(scan::trim_lws(value), max).ok_or(HeaderError("not a number in range"))
}

/// A media type (`Content-Type`, elements of `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// `application`, `*` …
    pub kind: &'a [u8],
    /// `sdp`, `*` …
    pub subtype: &'a [u8],
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses `type/subtype *(;param)`.
    pub fn parse(value: &'a [u8]) -> Result<MediaType<'a>, HeaderError> {
        let s = scan::trim_lws(value);
        let (kind, e) = scan::token_at(s, 0);
        let slash = scan::skip_lws(s, e);
        if kind.is_empty() || s.get(slash) != Some(&b'/') {
            return Err(HeaderError("expected type/subtype"));
        }
        let (subtype, e2) = scan::token_at(s, scan::skip_lws(s, slash + 1));
        if subtype.is_empty() {
            return Err(HeaderError("expected type/subtype"));
        }
        let rest = scan::trim_lws(s.get(e2..).unwrap_or_default());
        let params = match rest.first() {
            None => Params(b""),
            Some(b';') => Params(rest.get(1..).unwrap_or_default()),
            Some(_) => return Err(HeaderError("unexpected text after the media type")),
        };
        Ok(MediaType { kind, subtype, params })
    }

    /// Whether this (possibly wildcard) range matches `kind/subtype`.
    pub fn matches(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == b"*" || scan::eq_ic(self.kind, kind.as_bytes()))
            && (self.subtype == b"*" || scan::eq_ic(self.subtype, subtype.as_bytes()))
    }
}

/// `Retry-After: delta-seconds [comment] *(;param)` (RFC 3261 §20.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Seconds to wait.
    pub seconds: u32,
    /// The comment without its parentheses, when present.
    pub comment: Option<&'a [u8]>,
    /// The `duration` parameter (seconds), when present.
    pub duration: Option<u32>,
}

impl<'a> RetryAfter<'a> {
    /// Parses a Retry-After value.
    pub fn parse(value: &'a [u8]) -> Result<RetryAfter<'a>, HeaderError> {
        let s = scan::trim_lws(value);
        let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
        let seconds = parse_retry_after(s)?;
        let mut rest = scan::trim_lws(s.get(end..).unwrap_or_default());
        let mut comment = None;
        if rest.first() == Some(&b'(') {
            // Comments nest (RFC 3261 §25.1); find the matching parenthesis.
            let mut depth = 0usize;
            let mut close = None;
            for (i, &b) in rest.iter().enumerate() {
                match b {
                    b'(' => depth += 1,
                    b')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            close = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let close = close.ok_or(HeaderError("unterminated comment"))?;
            comment = rest.get(1..close);
            rest = scan::trim_lws(rest.get(close + 1..).unwrap_or_default());
        }
        let params = match rest.first() {
            None => Params(b""),
            Some(b';') => Params(rest.get(1..).unwrap_or_default()),
            Some(_) => return Err(HeaderError("unexpected text after delta-seconds")),
        };
        let duration = match params.get("duration") {
            Some(Some(d)) => Some(parse_number(d, u64::from(u32::MAX))? as u32),
            Some(None) => return Err(HeaderError("duration without a value")),
            None => None,
        };
        Ok(RetryAfter { seconds, comment, duration })
    }
}

/// The option tags of `Require`, `Proxy-Require`, `Supported` or `Unsupported` (all fields of
/// that name, comma-separated), each checked to be a token.
pub fn option_tags<'a>(msg: &crate::Message<'a>, name: crate::HeaderName) -> Result<Vec<&'a [u8]>, HeaderError> {
    msg.values(name)
        .map(|t| if scan::is_token_str(t) { Ok(t) } else { Err(HeaderError("an option tag is not a token")) })
        .collect()
}

/// The methods of `Allow` (all fields, comma-separated).
pub fn allow(msg: &crate::Message<'_>) -> Result<Vec<Method>, HeaderError> {
    msg.values(crate::HeaderName::Allow)
        .map(|m| Method::from_bytes(m).ok_or(HeaderError("a method is not a token")))
        .collect()
}

/// `Retry-After` delta-seconds only (see [`RetryAfter`] for the whole value).
pub fn parse_retry_after(value: &[u8]) -> Result<u32, HeaderError> {
    let s = scan::trim_lws(value);
    let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    scan::parse_u64_max(s.get(..end).unwrap_or_default(), u64::from(u32::MAX))
        .map(|v| v as u32)
        .ok_or(HeaderError("delta-seconds out of range"))
}

/// A `Contact` value: `*` or name-addrs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removal of all bindings).
    Star,
    /// One contact.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one comma-separated element of Contact, checking `expires` (32-bit) and `q`.
    pub fn parse(value: &'a [u8]) -> Result<Contact<'a>, HeaderError> {
        if scan::trim_lws(value) == b"*" {
            return Ok(Contact::Star);
        }
        let na = NameAddr::parse(value)?;
        if let Some(Some(e)) = na.params.get("expires") {
            scan::parse_u64_max(e, u64::from(u32::MAX)).ok_or(HeaderError("expires parameter out of range"))?;
        }
        if let Some(q) = na.params.get("q") {
            let q = q.ok_or(HeaderError("q parameter without a value"))?;
            let ok = matches!(q.first(), Some(b'0' | b'1'))
                && q.len() <= 5
                && q.iter().skip(1).enumerate().all(|(i, &b)| if i == 0 { b == b'.' } else { b.is_ascii_digit() });
            if !ok {
                return Err(HeaderError("q parameter is not a qvalue"));
            }
        }
        Ok(Contact::Addr(na))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn name_addr_forms() {
        let na = NameAddr::parse(br#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#).unwrap();
        assert_eq!(na.display_text().unwrap(), br#"J Rosenberg \""#.to_vec());
        assert_eq!(na.tag(), Some(&b"98asjd8"[..]));
        let na = NameAddr::parse(b"sip:caller@example.net;tag=93334").unwrap();
        assert!(!na.bracketed);
        assert_eq!(na.tag(), Some(&b"93334"[..]));
        let na = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(na.display, Some(&b"caller"[..]));
        assert!(NameAddr::parse(b"Bell, Alexander <sip:a@b>").is_err());
        assert!(NameAddr::parse(b"\"Watson\" < sip:t@example.org >").is_err());
        assert!(NameAddr::parse(b"\"Mr. J. User <sip:j@example.com>").is_err());
        assert!(NameAddr::parse(b"sip:user@example.com?Route=%3Csip:x%3E").is_err());
        assert!(NameAddr::parse(b"isbn:2983792873").is_ok());
    }

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        let v = Via::parse(b"SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8").unwrap();
        assert_eq!(v.branch(), Some(&b"z9hG4bK9ikj8"[..]));
        assert!(v.is_rfc3261_branch());
        let v = Via::parse(b"SIP/2.0/UDP [2001:db8::9]:5070;rport;received=192.0.2.1").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse(b"SIP/2.0 host").is_err());
    }

    #[test]
    fn scalars() {
        assert_eq!(CSeq::parse(b"0009\r\n  INVITE").unwrap(), CSeq { seq: 9, method: Method::Invite });
        assert!(CSeq::parse(b"36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse(b"9INVITE").is_err());
        assert_eq!(parse_number(b"0068", 255).unwrap(), 68);
        assert!(parse_number(b"300", 255).is_err());
        assert!(parse_retry_after(b"949302838503028349304023988").is_err());
        assert_eq!(parse_retry_after(b"120 (I'm in a meeting);duration=3600").unwrap(), 120);
    }

    #[test]
    fn retry_after_option_tags_and_allow() {
        let r = RetryAfter::parse(b"18000 (in a (nested) meeting) ;duration=3600").unwrap();
        assert_eq!((r.seconds, r.comment, r.duration), (18000, Some(&b"in a (nested) meeting"[..]), Some(3600)));
        assert_eq!(RetryAfter::parse(b"30").unwrap().comment, None);
        assert!(RetryAfter::parse(b"30 (unterminated").is_err());
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nRequire: 100rel, timer\r\nk: replaces\r\nAllow: INVITE, ACK,BYE\r\nAllow: OPTIONS\r\nl: 0\r\n\r\n";
        let m = crate::parse_datagram(raw, &crate::Limits::default()).unwrap();
        assert_eq!(option_tags(&m, crate::HeaderName::Require).unwrap(), vec![&b"100rel"[..], b"timer"]);
        assert_eq!(option_tags(&m, crate::HeaderName::Supported).unwrap(), vec![&b"replaces"[..]]);
        assert_eq!(allow(&m).unwrap(), vec![Method::Invite, Method::Ack, Method::Bye, Method::Options]);
    }

    #[test]
    fn media_types() {
        let m = MediaType::parse(b"application/SDP").unwrap();
        assert!(m.matches("application", "sdp"));
        assert!(MediaType::parse(b"*/*").unwrap().matches("text", "plain"));
        assert!(MediaType::parse(b"nonsense").is_err());
    }

    #[test]
    fn contacts() {
        assert_eq!(Contact::parse(b" * ").unwrap(), Contact::Star);
        assert!(Contact::parse(b"<sip:u@h>;expires=280297596632815").is_err());
        assert!(Contact::parse(b"<sip:u@h> ; q = 0.33").is_ok());
    }
}
