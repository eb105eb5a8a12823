//! Names that go into certificates: subjectAltName entries (DNS, IP, SIP URI per RFC 5922,
//! e-mail), common names (including the `FQDN/anything` form of SPEC H2), device MAC addresses
//! (P2) and rotation authority names. Everything is checked before it reaches OpenSSL, so a bad
//! name is a clear error instead of a malformed certificate.

use std::net::IpAddr;

use crate::der::{self, tag, DerError};
use crate::error::{Error, Result};

/// The subjectAltName entries of a certificate or CSR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
    pub emails: Vec<String>,
}

impl AltNames {
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty() && self.uris.is_empty() && self.emails.is_empty()
    }

    /// Add a host: an IP address literal becomes an IP entry, anything else must be a DNS name.
    pub fn add_host(&mut self, host: &str) -> Result<()> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !self.ips.contains(&ip) {
                self.ips.push(ip);
            }
            return Ok(());
        }
        check_dns_name(host)?;
        if !self.dns.iter().any(|d| d.eq_ignore_ascii_case(host)) {
            self.dns.push(host.to_string());
        }
        Ok(())
    }

    /// Add the host part of a server CN (`FQDN` or `FQDN/anything`, SPEC H2) when it is a DNS
    /// name or an IP address; RFC 5922/6125 clients ignore the CN once there are SANs.
    pub fn add_cn_host(&mut self, cn: &str) {
        let host = host_of_cn(cn);
        if host.parse::<IpAddr>().is_ok() || check_dns_name(host).is_ok() {
            // Cannot fail: the host was just checked.
            let _ = self.add_host(host);
        }
    }

    /// Add a SIP URI (RFC 5922 §7.1: `sip:` or `sips:` followed by a domain).
    pub fn add_sip_uri(&mut self, uri: &str) -> Result<()> {
        check_sip_uri(uri)?;
        if !self.uris.iter().any(|u| u == uri) {
            self.uris.push(uri.to_string());
        }
        Ok(())
    }

    /// Add an e-mail address (rfc822Name).
    pub fn add_email(&mut self, email: &str) -> Result<()> {
        let ok = email.is_ascii()
            && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && check_dns_name(d).is_ok())
            && !email.chars().any(|c| c.is_ascii_control() || c == ' ');
        if !ok {
            return Err(Error::invalid("e-mail address", email, "expected local@domain"));
        }
        if !self.emails.iter().any(|e| e == email) {
            self.emails.push(email.to_string());
        }
        Ok(())
    }

    /// Entries as `DNS:…`, `IP:…`, `URI:…`, `email:…`.
    pub fn describe(&self) -> Vec<String> {
        let dns = self.dns.iter().map(|d| format!("DNS:{d}"));
        let ips = self.ips.iter().map(|i| format!("IP:{i}"));
        let uris = self.uris.iter().map(|u| format!("URI:{u}"));
        let emails = self.emails.iter().map(|e| format!("email:{e}"));
        dns.chain(ips).chain(uris).chain(emails).collect()
    }

    /// `GeneralNames` DER (the subjectAltName extension value).
    pub(crate) fn to_der(&self) -> Vec<u8> {
        let mut items = Vec::new();
        items.extend(self.emails.iter().map(|e| der::tlv(tag::ctx(1), e.as_bytes())));
        items.extend(self.dns.iter().map(|d| der::tlv(tag::ctx(2), d.as_bytes())));
        items.extend(self.uris.iter().map(|u| der::tlv(tag::ctx(6), u.as_bytes())));
        items.extend(self.ips.iter().map(|ip| match ip {
            IpAddr::V4(v4) => der::tlv(tag::ctx(7), &v4.octets()),
            IpAddr::V6(v6) => der::tlv(tag::ctx(7), &v6.octets()),
        }));
        der::tlv(tag::SEQUENCE, &der::cat(&items))
    }

    /// Decode a subjectAltName extension value. Kinds other than DNS, IP, URI and e-mail
    /// (directoryName, otherName, …) are refused: we never copy what we cannot check.
    pub(crate) fn from_der(value: &[u8]) -> Result<Self, DerError> {
        let mut out = AltNames::default();
        for item in der::items(der::read_only(value, tag::SEQUENCE)?)? {
            let text = || {
                std::str::from_utf8(item.content)
                    .ok()
                    .filter(|s| s.is_ascii())
                    .map(str::to_string)
                    .ok_or(DerError("non-ASCII name in subjectAltName"))
            };
            match item.tag {
                t if t == tag::ctx(1) => out.emails.push(text()?),
                t if t == tag::ctx(2) => out.dns.push(text()?),
                t if t == tag::ctx(6) => out.uris.push(text()?),
                t if t == tag::ctx(7) => {
                    out.ips.push(ip_from_octets(item.content).ok_or(DerError("bad IP address in subjectAltName"))?);
                }
                _ => {
                    return Err(DerError(
                        "subjectAltName entry of a kind trunkgate does not issue (only DNS, IP, URI, e-mail)",
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// An IPv4 (4 octets) or IPv6 (16 octets) address from a subjectAltName.
pub fn ip_from_octets(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(octets).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A DNS name: LDH labels of 1–63 characters, at most 253 in all, optionally starting with `*.`.
pub fn check_dns_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid("DNS name", name, why.to_string()));
    let body = name.strip_prefix("*.").unwrap_or(name);
    let body = body.strip_suffix('.').unwrap_or(body);
    if body.is_empty() || name.len() > 253 {
        return bad("empty or longer than 253 characters");
    }
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each label must be 1 to 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad("only letters, digits, '-' and '_' are allowed (use punycode for IDNs)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with '-'");
        }
    }
    Ok(())
}

/// A SIP URI for a subjectAltName (RFC 5922 §7.1): `sip:domain` or `sips:domain`.
pub fn check_sip_uri(uri: &str) -> Result<()> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .ok_or_else(|| Error::invalid("SIP URI", uri, "must start with sip: or sips: (RFC 5922)"))?;
    if !uri.is_ascii() || rest.is_empty() || rest.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(Error::invalid("SIP URI", uri, "expected sip:domain, e.g. sip:example.com"));
    }
    Ok(())
}

/// A common name: 1 to 64 characters (RFC 5280 ub-common-name), no control characters.
pub fn check_cn(cn: &str) -> Result<()> {
    if cn.is_empty() || cn.chars().count() > 64 || cn.chars().any(char::is_control) {
        return Err(Error::invalid("common name", cn, "must be 1 to 64 characters without control characters"));
    }
    Ok(())
}

/// The host part of a CN of the form `FQDN` or `FQDN/anything` (SPEC H2).
pub fn host_of_cn(cn: &str) -> &str {
    cn.split_once('/').map_or(cn, |(host, _)| host)
}

/// A MAC address in any usual spelling (`00:11:22:AA:BB:CC`, `00-11-…`, `0011.22aa.bbcc`,
/// `001122aabbcc`), normalised to 12 lower-case hex digits.
pub fn normalize_mac(mac: &str) -> Result<String> {
    let hex: String = mac.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid("MAC address", mac, "expected 12 hex digits, e.g. 00:11:22:aa:bb:cc"));
    }
    Ok(hex.to_ascii_lowercase())
}

/// A rotation authority name (used as a directory name): 1 to 64 of `A-Z a-z 0-9 . _ -`, not
/// starting with a dot.
pub fn check_authority_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "authority name",
            name,
            "use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn alt_names_round_trip_through_der() {
        let mut names = AltNames::default();
        names.add_host("sbc.example.com").unwrap();
        names.add_host("SBC.example.com").unwrap(); // duplicate, case-insensitive
        names.add_host("127.0.0.1").unwrap();
        names.add_host("::1").unwrap();
        names.add_sip_uri("sip:example.com").unwrap();
        names.add_email("admin@example.com").unwrap();
        assert_eq!(names.dns.len(), 1);
        assert_eq!(AltNames::from_der(&names.to_der()).unwrap(), names);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(check_dns_name("exa mple.com").is_err());
        assert!(check_dns_name("-a.com").is_err());
        assert!(check_dns_name("").is_err());
        assert!(check_dns_name("*.example.com").is_ok());
        assert!(check_sip_uri("http://example.com").is_err());
        assert!(check_sip_uri("sip:").is_err());
        assert!(check_cn(&"x".repeat(65)).is_err());
        assert_eq!(host_of_cn("pv.telco.net/mailto:admin@telco.net"), "pv.telco.net");
        assert_eq!(normalize_mac("00:11:22:AA:BB:CC").unwrap(), "001122aabbcc");
        assert_eq!(normalize_mac("0011.22aa.bbcc").unwrap(), "001122aabbcc");
        assert!(normalize_mac("00:11:22:AA:BB").is_err());
        assert!(check_authority_name("../x").is_err());
        assert!(check_authority_name("DigiCert").is_ok());
    }
}
