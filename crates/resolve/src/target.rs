//! What the user or the configuration names: a SIP URI, `host:port`, or a bare domain.

use std::net::IpAddr;

use crate::ResolveError;

/// The default port of SIP over TLS (RFC 3261 §19.1.2, SPEC T1).
pub const SIPS_PORT: u16 = 5061;

/// A TLS target before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// Host name (lower-case, no trailing dot) or IP address text.
    pub host: String,
    /// Explicit port, if any (an explicit port or an IP address skips NAPTR/SRV, RFC 3263 §4.2).
    pub port: Option<u16>,
    /// The host is an IP address.
    pub ip: Option<IpAddr>,
    /// How the target was written (for messages).
    pub original: String,
}

fn bad(input: &str, why: &str) -> ResolveError {
    ResolveError::BadTarget { target: input.to_string(), why: why.to_string() }
}

impl SipTarget {
    /// Parse `sips:host[:port][;params]`, `sip:host[:port];transport=tls`, `sip:user@host…`,
    /// `host:port`, `[v6]:port`, `host` or an IP address.
    pub fn parse(input: &str) -> Result<SipTarget, ResolveError> {
        let t = input.trim();
        let lower = t.to_ascii_lowercase();
        let (rest, is_sip_uri) = if let Some(r) = lower.strip_prefix("sips:") {
            (r, false)
        } else if let Some(r) = lower.strip_prefix("sip:") {
            (r, true)
        } else {
            (lower.as_str(), false)
        };
        let rest = rest.split('?').next().unwrap_or("");
        let mut parts = rest.split(';');
        let hostpart = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        if is_sip_uri && !params.contains(&"transport=tls") {
            return Err(bad(
                input,
                "a sip: URI without ;transport=tls is not a TLS target (use sips: or add ;transport=tls)",
            ));
        }
        let hostport = hostpart.rsplit('@').next().unwrap_or("");
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad(input, "unclosed [ in an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad(input, "the port is not a number 1-65535"))?),
                None if after.is_empty() => None,
                None => return Err(bad(input, "junk after the IPv6 address")),
            };
            (h.to_string(), port)
        } else if hostport.parse::<IpAddr>().is_ok() {
            (hostport.to_string(), None)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => {
                    (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad(input, "the port is not a number 1-65535"))?))
                }
                None => (hostport.to_string(), None),
            }
        };
        if port == Some(0) {
            return Err(bad(input, "port 0"));
        }
        let host = host.trim_end_matches('.').to_string();
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() {
            if host.is_empty() || host.len() > 253 {
                return Err(bad(input, "no host name"));
            }
            for label in host.split('.') {
                let ok = !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(bad(input, "host labels must be 1-63 letters, digits or hyphens"));
                }
            }
        }
        Ok(SipTarget { host, port, ip, original: t.to_string() })
    }

    /// Whether RFC 3263 NAPTR/SRV lookups apply (a host name without an explicit port).
    pub fn uses_srv(&self) -> bool {
        self.ip.is_none() && self.port.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn forms() {
        let t = SipTarget::parse("sips:LB01.Voice.example.NET:5062;transport=tls").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("lb01.voice.example.net", Some(5062)));
        let t = SipTarget::parse("sip:+1555@sbc.example.net;transport=tls").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.uses_srv()), ("sbc.example.net", None, true));
        let t = SipTarget::parse("sbc.example.net:5061").unwrap();
        assert_eq!(t.port, Some(5061));
        let t = SipTarget::parse("example.net.").unwrap();
        assert!(t.uses_srv());
        assert_eq!(t.host, "example.net");
        let t = SipTarget::parse("[::1]:5061").unwrap();
        assert_eq!(t.ip, Some("::1".parse().unwrap()));
        let t = SipTarget::parse("127.0.0.1").unwrap();
        assert!(t.ip.is_some() && !t.uses_srv());
    }

    #[test]
    fn refusals() {
        assert!(SipTarget::parse("sip:sbc.example.net").is_err());
        assert!(SipTarget::parse("sips:").is_err());
        assert!(SipTarget::parse("host:99999").is_err());
        assert!(SipTarget::parse("bad host").is_err());
        assert!(SipTarget::parse("[::1").is_err());
    }
}
