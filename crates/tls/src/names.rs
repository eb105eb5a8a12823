//! Peer identity checks: host names per RFC 5922 (SIP) and RFC 6125, allowed subjects (T4).
//!
//! The identities a certificate presents are its SAN dNSName entries and the host part of its
//! `sip:`/`sips:` URI SANs (RFC 5922 §7.1); the subject CN counts only when the certificate has
//! no such SAN (RFC 6125 §6.4.4). An IP address matches only an iPAddress SAN, and only on
//! profiles that allow IP identities (T7). Wildcards (`*.example.com`, one whole left-most
//! label) match only when the profile allows them.

use std::net::IpAddr;

use openssl::nid::Nid;
use openssl::x509::X509Ref;

use crate::profile::PeerName;

/// Host part of a SIP URI SAN (`sip:example.com`, `sips:example.com:5061;transport=tls`).
/// URIs with a user part are not domain identities (RFC 5922 §7.1) and give `None`.
fn sip_uri_host(uri: &str) -> Option<String> {
    let lower = uri.trim();
    let rest = if lower.len() > 5 && lower.get(..5)?.eq_ignore_ascii_case("sips:") {
        lower.get(5..)?
    } else if lower.len() > 4 && lower.get(..4)?.eq_ignore_ascii_case("sip:") {
        lower.get(4..)?
    } else {
        return None;
    };
    if rest.contains('@') {
        return None;
    }
    let hostport = rest.split([';', '?']).next()?;
    let host = if hostport.starts_with('[') {
        hostport.split(']').next()?.trim_start_matches('[')
    } else {
        hostport.split(':').next()?
    };
    if host.is_empty() {
        return None;
    }
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

fn common_names(cert: &X509Ref) -> Vec<String> {
    cert.subject_name().entries_by_nid(Nid::COMMONNAME).filter_map(|e| e.data().to_string().ok()).collect()
}

/// The DNS identities a certificate presents: SAN dNSName and SIP URI hosts, or the CN when
/// there is neither (lower-case, trailing dot removed).
pub fn presented_dns_names(cert: &X509Ref) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for gn in sans.iter() {
            if let Some(d) = gn.dnsname() {
                out.push(d.trim_end_matches('.').to_ascii_lowercase());
            } else if let Some(h) = gn.uri().and_then(sip_uri_host) {
                out.push(h);
            }
        }
    }
    if out.is_empty() {
        out = common_names(cert).into_iter().map(|c| c.trim_end_matches('.').to_ascii_lowercase()).collect();
    }
    out.dedup();
    out
}

fn presented_ips(cert: &X509Ref) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for gn in sans.iter() {
            match gn.ipaddress() {
                Some(b) if b.len() == 4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(b);
                    out.push(IpAddr::from(a));
                }
                Some(b) if b.len() == 16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    out.push(IpAddr::from(a));
                }
                _ => {}
            }
        }
    }
    out
}

/// Does pattern (from a certificate) match host (what we connected to)?
fn dns_match(pattern: &str, host: &str, wildcards: bool) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    if !wildcards {
        return false;
    }
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    // The wildcard stands for exactly one whole label, and the rest must have 2+ labels.
    if suffix.contains('*') || suffix.split('.').count() < 2 {
        return false;
    }
    match host.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
        None => false,
    }
}

/// Check that `cert` is for `expected`; `Err(presented identities)` when it is not.
pub fn check_host(cert: &X509Ref, expected: &PeerName, wildcards: bool) -> Result<(), Vec<String>> {
    match expected {
        PeerName::Dns(host) => {
            let names = presented_dns_names(cert);
            if names.iter().any(|n| dns_match(n, host, wildcards)) {
                Ok(())
            } else {
                Err(names)
            }
        }
        PeerName::Ip(ip) => {
            let ips = presented_ips(cert);
            if ips.contains(ip) {
                Ok(())
            } else {
                Err(ips.iter().map(|i| i.to_string()).collect())
            }
        }
    }
}

/// Every name a certificate carries: CN(s) and all SAN dNSName/URI/email/IP values, as text.
pub fn all_subject_names(cert: &X509Ref) -> Vec<String> {
    let mut out = common_names(cert);
    if let Some(sans) = cert.subject_alt_names() {
        for gn in sans.iter() {
            if let Some(d) = gn.dnsname() {
                out.push(d.to_string());
            } else if let Some(u) = gn.uri() {
                out.push(u.to_string());
            } else if let Some(e) = gn.email() {
                out.push(e.to_string());
            }
        }
    }
    out.extend(presented_ips(cert).iter().map(|i| i.to_string()));
    let mut seen: Vec<String> = Vec::new();
    out.retain(|n| {
        let k = n.to_ascii_lowercase();
        let fresh = !seen.contains(&k);
        seen.push(k);
        fresh
    });
    out
}

/// T4: does the certificate's CN or one of its SANs equal an allowed subject (ASCII
/// case-insensitive; a SIP URI SAN also matches by its host)? `Err(presented)` when not.
pub fn check_allowed(cert: &X509Ref, allowed: &[String]) -> Result<(), Vec<String>> {
    if allowed.is_empty() {
        return Ok(());
    }
    let presented = all_subject_names(cert);
    let hosts: Vec<String> = presented.iter().filter_map(|p| sip_uri_host(p)).collect();
    let ok = allowed.iter().any(|a| {
        presented.iter().any(|p| p.eq_ignore_ascii_case(a)) || hosts.iter().any(|h| h.eq_ignore_ascii_case(a))
    });
    if ok {
        Ok(())
    } else {
        Err(presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_hosts() {
        assert_eq!(sip_uri_host("sip:Example.COM"), Some("example.com".into()));
        assert_eq!(sip_uri_host("sips:lb01.example.com:5061;transport=tls"), Some("lb01.example.com".into()));
        assert_eq!(sip_uri_host("sip:alice@example.com"), None);
        assert_eq!(sip_uri_host("https://example.com"), None);
        assert_eq!(sip_uri_host("sip:"), None);
    }

    #[test]
    fn wildcard_rules() {
        assert!(dns_match("*.example.com", "a.example.com", true));
        assert!(!dns_match("*.example.com", "a.example.com", false));
        assert!(!dns_match("*.example.com", "a.b.example.com", true));
        assert!(!dns_match("*.example.com", "example.com", true));
        assert!(!dns_match("*.com", "example.com", true));
        assert!(!dns_match("a*.example.com", "ab.example.com", true));
        assert!(dns_match("LB01.example.com", "lb01.example.com", false));
    }
}
