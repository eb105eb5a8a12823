//! URIs: `sip`, `sips` (RFC 3261 §19.1), `tel` (RFC 3966) with the trunk-group parameters of
//! RFC 4904 in the user part (SPEC S1), and any other absolute URI kept opaque (RFC 4475 §3.3.4).
//!
//! Parsed URIs borrow the input. Escapes (`%XX`) stay as sent; comparison ([`Uri::equivalent`])
//! is done on the unescaped form as RFC 3261 §19.1.4 requires.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::scan::{self, class};

/// The scheme of a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Anything else (`http:`, `isbn:`, `urn:` …); the rest is kept opaque.
    Other,
}

/// The host of a SIP URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name (compared case-insensitively).
    Domain(&'a [u8]),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (`[…]` in the URI).
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// Whether this is an IP address rather than a name (SPEC T7: never an identity on byoc-cloud).
    pub fn is_ip(&self) -> bool {
        !matches!(self, Host::Domain(_))
    }

    /// The host as text (IPv6 without brackets).
    pub fn to_text(&self) -> String {
        match self {
            Host::Domain(d) => String::from_utf8_lossy(d).into_owned(),
            Host::V4(a) => a.to_string(),
            Host::V6(a) => a.to_string(),
        }
    }
}

/// Why a URI did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI: {0}")]
pub struct UriError(pub &'static str);

/// A parsed URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI as sent.
    pub raw: &'a [u8],
    /// The scheme.
    pub scheme: Scheme,
    /// The scheme as sent.
    pub scheme_raw: &'a [u8],
    /// SIP: the user part (escaped, with any `;` user parameters). Tel: the number.
    pub user: Option<&'a [u8]>,
    /// SIP: the password.
    pub password: Option<&'a [u8]>,
    /// SIP: the host. `None` for tel and other schemes.
    pub host: Option<Host<'a>>,
    /// SIP: the port when given.
    pub port: Option<u16>,
    /// URI parameters without the leading `;` (may be empty). Tel: the tel parameters.
    pub params: &'a [u8],
    /// SIP: the `?headers` part without the `?`.
    pub headers: Option<&'a [u8]>,
    /// Everything after `scheme:`.
    pub opaque: &'a [u8],
}

impl<'a> Uri<'a> {
    /// Parses a URI. `sip`/`sips`/`tel` are checked against their grammar; other schemes need a
    /// valid scheme name and a non-empty remainder without white space.
    pub fn parse(raw: &'a [u8]) -> Result<Uri<'a>, UriError> {
        let colon = scan::find(raw, b':').ok_or(UriError("no scheme"))?;
        let scheme_raw = raw.get(..colon).unwrap_or_default();
        let rest = raw.get(colon + 1..).unwrap_or_default();
        let valid_scheme = scheme_raw.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme_raw.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(UriError("invalid scheme"));
        }
        let scheme = if scan::eq_ic(scheme_raw, b"sip") {
            Scheme::Sip
        } else if scan::eq_ic(scheme_raw, b"sips") {
            Scheme::Sips
        } else if scan::eq_ic(scheme_raw, b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let mut uri = Uri {
            raw,
            scheme,
            scheme_raw,
            user: None,
            password: None,
            host: None,
            port: None,
            params: b"",
            headers: None,
            opaque: rest,
        };
        if rest.is_empty() || rest.iter().any(|&b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>' || b == b'"') {
            return Err(UriError("empty or contains white space, control characters, <, > or \""));
        }
        match scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(&mut uri, rest)?,
            Scheme::Tel => {
                let semi = scan::find(rest, b';').unwrap_or(rest.len());
                let number = rest.get(..semi).unwrap_or_default();
                if number.is_empty() || check_escapes(number, class::USER, "").is_err() {
                    return Err(UriError("invalid telephone number"));
                }
                uri.user = Some(number);
                uri.params = rest.get(semi + 1..).unwrap_or_default();
                check_params(uri.params)?;
            }
            Scheme::Other => {}
        }
        Ok(uri)
    }

    /// The user part before any `;` user parameters (RFC 4904: the telephone-subscriber number).
    pub fn user_number(&self) -> Option<&'a [u8]> {
        self.user.map(|u| u.get(..scan::find(u, b';').unwrap_or(u.len())).unwrap_or_default())
    }

    /// The user parameters after the number (`tgrp`, `trunk-context`, `isub` …).
    pub fn user_params(&self) -> Params<'a> {
        let u = self.user.unwrap_or_default();
        Params(scan::find(u, b';').and_then(|i| u.get(i + 1..)).unwrap_or_default())
    }

    /// RFC 4904 trunk group, from the user part.
    pub fn tgrp(&self) -> Option<Cow<'a, [u8]>> {
        self.user_params().get("tgrp").flatten().map(unescape)
    }

    /// RFC 4904 trunk context, from the user part.
    pub fn trunk_context(&self) -> Option<Cow<'a, [u8]>> {
        self.user_params().get("trunk-context").flatten().map(unescape)
    }

    /// The URI parameters.
    pub fn params(&self) -> Params<'a> {
        Params(self.params)
    }

    /// The value of `;transport=` when present.
    pub fn transport(&self) -> Option<&'a [u8]> {
        self.params().get("transport").flatten()
    }

    /// Whether the URI is secure: `sips:` or `;transport=tls` (SPEC S1).
    pub fn is_secure(&self) -> bool {
        self.scheme == Scheme::Sips || self.transport().is_some_and(|t| scan::eq_ic(t, b"tls"))
    }

    /// URI equivalence per RFC 3261 §19.1.4: scheme, unescaped user/password (case-sensitive),
    /// host (case-insensitive), port (absent differs from 5060), the parameters `user`, `ttl`,
    /// `method`, `maddr`, `transport` when either side has them, other parameters when both
    /// have them, and headers. Other schemes compare case-insensitively as a whole.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        match self.scheme {
            Scheme::Sip | Scheme::Sips => {}
            Scheme::Tel => {
                return self.user.map(unescape) == other.user.map(unescape)
                    && params_equivalent(self.params(), other.params(), &[]);
            }
            Scheme::Other => return scan::eq_ic(&unescape(self.opaque), &unescape(other.opaque)),
        }
        if self.user.map(unescape) != other.user.map(unescape)
            || self.password.map(unescape) != other.password.map(unescape)
            || self.port != other.port
        {
            return false;
        }
        let hosts_eq = match (self.host, other.host) {
            (Some(Host::Domain(a)), Some(Host::Domain(b))) => scan::eq_ic(&unescape(a), &unescape(b)),
            (a, b) => a == b,
        };
        if !hosts_eq {
            return false;
        }
        const MUST_MATCH: &[&str] = &["user", "ttl", "method", "maddr", "transport"];
        if !params_equivalent(self.params(), other.params(), MUST_MATCH) {
            return false;
        }
        headers_equivalent(self.headers, other.headers)
    }
}

fn params_equivalent(a: Params<'_>, b: Params<'_>, must: &[&str]) -> bool {
    for name in must {
        let (x, y) = (a.get(name), b.get(name));
        if x.is_some() != y.is_some() {
            return false;
        }
    }
    // A repeated name counts once, with its first value (as `Params::get` reads it), so that
    // equivalence stays reflexive.
    for (i, (name, va)) in a.iter().enumerate() {
        if a.iter().take(i).any(|(n, _)| scan::eq_ic(n, name)) {
            continue;
        }
        if let Some(vb) = b.get_bytes(name) {
            let same = match (va, vb) {
                (Some(x), Some(y)) => scan::eq_ic(&unescape(x), &unescape(y)),
                (None, None) => true,
                _ => false,
            };
            if !same {
                return false;
            }
        }
    }
    true
}

fn headers_equivalent(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    let collect = |h: Option<&[u8]>| {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = h
            .unwrap_or_default()
            .split(|&c| c == b'&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let eq = scan::find(p, b'=').unwrap_or(p.len());
                let name = unescape(p.get(..eq).unwrap_or_default()).to_ascii_lowercase();
                (name, unescape(p.get(eq + 1..).unwrap_or_default()).into_owned())
            })
            .collect();
        v.sort();
        v
    };
    collect(a) == collect(b)
}

/// Checks that `s` holds only characters of the classes in `mask` and valid `%XX` escapes.
fn check_escapes(s: &[u8], mask: u8, what: &'static str) -> Result<(), UriError> {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if scan::is(b, mask) {
            i += 1;
        } else if b == b'%' && s.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            i += 3;
        } else {
            return Err(UriError(what));
        }
    }
    Ok(())
}

fn check_params(params: &[u8]) -> Result<(), UriError> {
    check_escapes(params, class::PARAM, "invalid character in URI parameters")
}

fn parse_sip<'a>(uri: &mut Uri<'a>, rest: &'a [u8]) -> Result<(), UriError> {
    let hostpart = match scan::find(rest, b'@') {
        Some(at) => {
            let userinfo = rest.get(..at).unwrap_or_default();
            let (user, password) = match scan::find(userinfo, b':') {
                Some(c) => (userinfo.get(..c).unwrap_or_default(), Some(userinfo.get(c + 1..).unwrap_or_default())),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err(UriError("empty user part"));
            }
            check_escapes(user, class::USER, "invalid character in the user part")?;
            if let Some(p) = password {
                check_escapes(p, class::PASSWORD, "invalid character in the password")?;
            }
            uri.user = Some(user);
            uri.password = password;
            rest.get(at + 1..).unwrap_or_default()
        }
        None => rest,
    };
    let (hostport, headers) = match scan::find(hostpart, b'?') {
        Some(q) => (hostpart.get(..q).unwrap_or_default(), Some(hostpart.get(q + 1..).unwrap_or_default())),
        None => (hostpart, None),
    };
    let (hostport, params) = match scan::find(hostport, b';') {
        Some(s) => (hostport.get(..s).unwrap_or_default(), hostport.get(s + 1..).unwrap_or_default()),
        None => (hostport, &b""[..]),
    };
    let (host, port) = if hostport.first() == Some(&b'[') {
        let close = scan::find(hostport, b']').ok_or(UriError("unterminated IPv6 reference"))?;
        let inner = std::str::from_utf8(hostport.get(1..close).unwrap_or_default())
            .map_err(|_| UriError("invalid IPv6 reference"))?;
        let addr: Ipv6Addr = inner.parse().map_err(|_| UriError("invalid IPv6 reference"))?;
        let after = hostport.get(close + 1..).unwrap_or_default();
        (Host::V6(addr), after)
    } else {
        let colon = scan::find(hostport, b':').unwrap_or(hostport.len());
        let name = hostport.get(..colon).unwrap_or_default();
        (parse_host_name(name)?, hostport.get(colon..).unwrap_or_default())
    };
    uri.host = Some(host);
    if !port.is_empty() {
        let digits = port.strip_prefix(b":").ok_or(UriError("garbage after the host"))?;
        let p = scan::parse_u64_max(digits, 65535).ok_or(UriError("invalid port"))?;
        uri.port = Some(p as u16);
    }
    check_params(params)?;
    uri.params = params;
    if let Some(h) = headers {
        check_escapes(h, class::HNV, "invalid character in URI headers")?;
        uri.headers = Some(h);
    }
    Ok(())
}

/// Parses a host name or IPv4 address (RFC 3261 §25.1 `hostname` / `IPv4address`).
pub fn parse_host_name(name: &[u8]) -> Result<Host<'_>, UriError> {
    if name.is_empty() {
        return Err(UriError("empty host"));
    }
    if name.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        let s = std::str::from_utf8(name).map_err(|_| UriError("invalid IPv4 address"))?;
        return s.parse().map(Host::V4).map_err(|_| UriError("invalid IPv4 address"));
    }
    let trimmed = name.strip_suffix(b".").unwrap_or(name);
    // One pass: labels of 1–63 host characters, not starting or ending with '-'; the top label
    // starts with a letter.
    let mut labels_ok = !trimmed.is_empty();
    let mut label_start = 0;
    for (i, &b) in trimmed.iter().enumerate() {
        if b == b'.' {
            let len = i - label_start;
            labels_ok &= len > 0 && len <= 63 && trimmed.get(i - 1) != Some(&b'-');
            label_start = i + 1;
        } else {
            labels_ok &= scan::is(b, class::HOST) && !(i == label_start && b == b'-');
        }
    }
    let last_len = trimmed.len() - label_start;
    labels_ok &= last_len > 0 && last_len <= 63 && trimmed.last() != Some(&b'-');
    let top_ok = trimmed.get(label_start).is_some_and(u8::is_ascii_alphabetic);
    if labels_ok && top_ok && name.len() <= 255 {
        Ok(Host::Domain(name))
    } else {
        Err(UriError("invalid host name"))
    }
}

/// Decodes `%XX` escapes; borrows when there are none. Invalid escapes are kept literally.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// `;name[=value]` parameters (URI parameters, or header parameters with LWS and quoted values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(pub &'a [u8]);

impl<'a> Params<'a> {
    /// Iterates `(name, value)`; names and values are trimmed of LWS. Empty pieces are skipped.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        scan::split_outside(self.0, b';').filter_map(|p| {
            let p = scan::trim_lws(p);
            if p.is_empty() {
                return None;
            }
            Some(match scan::find(p, b'=') {
                Some(eq) => (
                    scan::trim_lws(p.get(..eq).unwrap_or_default()),
                    Some(scan::trim_lws(p.get(eq + 1..).unwrap_or_default())),
                ),
                None => (p, None),
            })
        })
    }

    /// `Some(Some(value))`, `Some(None)` for a flag parameter, `None` when absent.
    /// Names compare case-insensitively.
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.get_bytes(name.as_bytes())
    }

    /// [`Params::get`] with a byte name.
    pub fn get_bytes(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter().find(|(n, _)| scan::eq_ic(n, name)).map(|(_, v)| v)
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn trunk_uri_of_spec_s1() {
        let raw = b"sip:+13175551212;tgrp=TG-1;trunk-context=example.com@lb01.voice.use1.pure.cloud:5061;transport=tls";
        let u = Uri::parse(raw).unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user_number(), Some(&b"+13175551212"[..]));
        assert_eq!(u.tgrp().as_deref(), Some(&b"TG-1"[..]));
        assert_eq!(u.trunk_context().as_deref(), Some(&b"example.com"[..]));
        assert_eq!(u.host, Some(Host::Domain(b"lb01.voice.use1.pure.cloud")));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some(&b"tls"[..]));
        assert!(u.is_secure());
    }

    #[test]
    fn ipv6_and_tel_and_other() {
        let u = Uri::parse(b"sips:[2001:db8::10]:5061;maddr=x").unwrap();
        assert_eq!(u.host, Some(Host::V6("2001:db8::10".parse().unwrap())));
        assert!(u.host.unwrap().is_ip());
        let t = Uri::parse(b"tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user, Some(&b"+1-201-555-0123"[..]));
        let o = Uri::parse(b"soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(o.scheme, Scheme::Other);
    }

    #[test]
    fn escapes_compare_unescaped() {
        let a = Uri::parse(b"sip:%61lice@ATLANTA.com;transport=TCP").unwrap();
        let b = Uri::parse(b"sip:alice@AtLanTa.CoM;Transport=tcp").unwrap();
        assert!(a.equivalent(&b));
        let c = Uri::parse(b"sip:alice@atlanta.com").unwrap();
        assert!(!a.equivalent(&c), "transport present on one side only");
        let d = Uri::parse(b"sip:alice@atlanta.com:5060").unwrap();
        assert!(!c.equivalent(&d), "absent port differs from 5060");
        let e = Uri::parse(b"sip:carol@chicago.com;newparam=5").unwrap();
        let f = Uri::parse(b"sip:carol@chicago.com;security=on").unwrap();
        assert!(e.equivalent(&f));
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            &b"sip:"[..],
            b"sip:@host",
            b"sip:a@",
            b"sip:a@host:99999",
            b"sip:a@[::1",
            b"sip:a b@c",
            b"1sip:x",
            b"sip:user@host;p=%zz",
        ] {
            assert!(Uri::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn header_params_with_lws_and_quotes() {
        let p = Params(b" tag    = 1918181833n ; x=\"a;b\"; lr");
        assert_eq!(p.get("TAG"), Some(Some(&b"1918181833n"[..])));
        assert_eq!(p.get("x"), Some(Some(&b"\"a;b\""[..])));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("nope"), None);
    }
}
