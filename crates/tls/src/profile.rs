//! TLS profiles as data (`profiles/*.toml`, SPEC T2–T4, T7–T9, T11).
//!
//! A profile says which versions, suites (IANA names), groups, client-certificate policy, peer
//! identity rules, revocation policy and expiry warning apply. Parsing is strict: unknown keys,
//! unknown suite or group names, and contradictions (TLS 1.3 enabled without a TLS 1.3 suite…)
//! are errors that name the file, the line and the fix.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::TlsError;
use crate::suites::{self, KeyExchange, Suite};

/// A TLS version a profile may enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// TLS 1.0 (only for tests of refusal).
    Tls10,
    /// TLS 1.1 (only for tests of refusal).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        match s {
            "1.0" | "TLSv1" | "TLSv1.0" => Some(Version::Tls10),
            "1.1" | "TLSv1.1" => Some(Version::Tls11),
            "1.2" | "TLSv1.2" => Some(Version::Tls12),
            "1.3" | "TLSv1.3" => Some(Version::Tls13),
            _ => None,
        }
    }

    pub(crate) fn openssl(self) -> openssl::ssl::SslVersion {
        use openssl::ssl::SslVersion;
        match self {
            Version::Tls10 => SslVersion::TLS1,
            Version::Tls11 => SslVersion::TLS1_1,
            Version::Tls12 => SslVersion::TLS1_2,
            Version::Tls13 => SslVersion::TLS1_3,
        }
    }
}

/// Whether a server asks for a client certificate (T3, T4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertPolicy {
    /// Never send CertificateRequest (byoc-cloud, T3).
    None,
    /// Ask, accept a client without one.
    Request,
    /// Ask and refuse a client without one (T4).
    Require,
}

/// CRL checking (T9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationMode {
    /// No CRL checking.
    Off,
    /// Check when a CRL can be had; an unavailable CRL is a warning.
    Soft,
    /// An unavailable CRL fails the handshake.
    Hard,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    versions: Vec<String>,
    cipher_suites: Vec<String>,
    groups: Vec<String>,
    client_certificate: RawClientCert,
    peer: RawPeer,
    revocation: RawRevocation,
    #[serde(default)]
    expiry: RawExpiry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientCert {
    policy: ClientCertPolicy,
    #[serde(default)]
    require_client_auth_eku: bool,
    #[serde(default)]
    present_own: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    ip_identities: bool,
    wildcards: bool,
    #[serde(default = "yes")]
    require_server_auth_eku: bool,
    #[serde(default)]
    allowed_subjects: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocation {
    mode: RevocationMode,
    #[serde(default)]
    crl_files: Vec<String>,
    #[serde(default = "default_fetch_timeout")]
    fetch_timeout_ms: u64,
    #[serde(default = "default_max_crl_bytes")]
    max_crl_bytes: usize,
}

fn default_fetch_timeout() -> u64 {
    5000
}

fn default_max_crl_bytes() -> usize {
    4 * 1024 * 1024
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpiry {
    #[serde(default)]
    warning_days: u32,
}

/// A checked profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Profile name (`byoc-cloud`).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Lowest version enabled.
    pub min_version: Version,
    /// Highest version enabled.
    pub max_version: Version,
    /// Suites in preference order.
    pub suites: Vec<&'static Suite>,
    /// Group names as OpenSSL takes them (`P-384`), in preference order.
    pub groups: Vec<&'static str>,
    /// Whether a server sends CertificateRequest.
    pub client_cert: ClientCertPolicy,
    /// Whether a client certificate must carry clientAuth (false on byoc-cloud, T11).
    pub require_client_auth_eku: bool,
    /// Whether our client side presents a certificate when asked (false on byoc-cloud, T3).
    pub present_client_cert: bool,
    /// Whether an IP address may be a peer identity (false on byoc-cloud, T7).
    pub ip_identities: bool,
    /// Whether `*.example.com` in a certificate matches (false on byoc-cloud, T7).
    pub wildcards: bool,
    /// Whether a server certificate must carry serverAuth (T11).
    pub require_server_auth_eku: bool,
    /// CN/SAN names a peer certificate must carry one of (T4); empty = no restriction.
    pub allowed_subjects: Vec<String>,
    /// CRL checking (T9).
    pub revocation: RevocationMode,
    /// CRL files to use in addition to distribution points (T9).
    pub crl_files: Vec<String>,
    /// Time limit for fetching one CRL over HTTP.
    pub crl_fetch_timeout_ms: u64,
    /// Size limit for one fetched CRL.
    pub max_crl_bytes: usize,
    /// Warn this many days before a peer certificate expires (T8); 0 = never.
    pub expiry_warning_days: u32,
}

/// Where a peer's identity comes from: a DNS name (SIP URI host or SRV domain, S4) or, on
/// profiles that allow it, an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerName {
    /// A host name, lower-case, without trailing dot.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl PeerName {
    /// The name as text.
    pub fn as_string(&self) -> String {
        match self {
            PeerName::Dns(d) => d.clone(),
            PeerName::Ip(ip) => ip.to_string(),
        }
    }
}

impl Profile {
    /// Load and check a profile file.
    pub fn load(path: &Path) -> Result<Profile, TlsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Parse and check profile text; `file` is used in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Profile, TlsError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            TlsError::Config {
                file: file.to_string(),
                line,
                message: e.message().to_string(),
                fix: "see docs/tls.md for the profile keys and their values".to_string(),
            }
        })?;
        let err = |key: &str, message: String, fix: &str| TlsError::Config {
            file: file.to_string(),
            line: key_line(text, key),
            message,
            fix: fix.to_string(),
        };

        let mut versions = Vec::new();
        for v in &raw.versions {
            let parsed = Version::parse(v).ok_or_else(|| {
                err("versions", format!("unknown TLS version {v:?}"), "use \"1.0\", \"1.1\", \"1.2\" or \"1.3\"")
            })?;
            versions.push(parsed);
        }
        versions.sort();
        versions.dedup();
        let (min_version, max_version) = match (versions.first(), versions.last()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => {
                return Err(err(
                    "versions",
                    "no TLS version enabled".into(),
                    "list at least one version, e.g. versions = [\"1.2\"]",
                ))
            }
        };
        if versions.len() as i32 != max_version as i32 - min_version as i32 + 1 {
            return Err(err(
                "versions",
                "versions must be contiguous (OpenSSL enables a range)".into(),
                "list every version between the lowest and the highest",
            ));
        }

        let mut suites: Vec<&'static Suite> = Vec::new();
        for name in &raw.cipher_suites {
            let suite = suites::by_iana(name).ok_or_else(|| {
                let hint = suites::by_openssl(name)
                    .map(|s| format!("write the IANA name {}", s.iana))
                    .unwrap_or_else(|| "use an IANA suite name listed in docs/tls.md".into());
                err("cipher_suites", format!("unknown cipher suite {name:?}"), &hint)
            })?;
            if suites.contains(&suite) {
                return Err(err("cipher_suites", format!("cipher suite {name} listed twice"), "list each suite once"));
            }
            suites.push(suite);
        }
        let has13 = suites.iter().any(|s| s.kx == KeyExchange::Tls13);
        let has12 = suites.iter().any(|s| s.kx != KeyExchange::Tls13);
        if max_version == Version::Tls13 && !has13 {
            return Err(err(
                "cipher_suites",
                "TLS 1.3 is enabled but no TLS 1.3 suite is listed".into(),
                "add TLS_AES_128_GCM_SHA256 / TLS_AES_256_GCM_SHA384, or drop \"1.3\" from versions",
            ));
        }
        if max_version != Version::Tls13 && has13 {
            return Err(err(
                "cipher_suites",
                "TLS 1.3 suites are listed but TLS 1.3 is not enabled".into(),
                "add \"1.3\" to versions or remove the TLS 1.3 suites",
            ));
        }
        if min_version < Version::Tls13 && !has12 {
            return Err(err(
                "cipher_suites",
                "TLS 1.2 or older is enabled but no TLS 1.2 suite is listed".into(),
                "add TLS 1.2 suites or enable only \"1.3\"",
            ));
        }

        let mut groups = Vec::new();
        for g in &raw.groups {
            let group = suites::group_by_name(g).ok_or_else(|| {
                err(
                    "groups",
                    format!("unknown group {g:?}"),
                    "use P-256, P-384, P-521, X25519, X448, ffdhe2048 or ffdhe3072",
                )
            })?;
            if groups.contains(&group.name) {
                return Err(err("groups", format!("group {g} listed twice"), "list each group once"));
            }
            groups.push(group.name);
        }
        let needs_groups = has13 || suites.iter().any(|s| s.kx == KeyExchange::Ecdhe);
        if needs_groups && groups.is_empty() {
            return Err(err(
                "groups",
                "ECDHE or TLS 1.3 suites are listed but no group is".into(),
                "list the allowed groups, e.g. groups = [\"P-384\"]",
            ));
        }

        if raw.revocation.fetch_timeout_ms == 0 || raw.revocation.max_crl_bytes == 0 {
            return Err(err(
                "fetch_timeout_ms",
                "CRL fetch limits must be positive".into(),
                "set fetch_timeout_ms and max_crl_bytes above 0",
            ));
        }

        Ok(Profile {
            name: raw.name,
            description: raw.description,
            min_version,
            max_version,
            suites,
            groups,
            client_cert: raw.client_certificate.policy,
            require_client_auth_eku: raw.client_certificate.require_client_auth_eku,
            present_client_cert: raw.client_certificate.present_own,
            ip_identities: raw.peer.ip_identities,
            wildcards: raw.peer.wildcards,
            require_server_auth_eku: raw.peer.require_server_auth_eku,
            allowed_subjects: raw.peer.allowed_subjects,
            revocation: raw.revocation.mode,
            crl_files: raw.revocation.crl_files,
            crl_fetch_timeout_ms: raw.revocation.fetch_timeout_ms,
            max_crl_bytes: raw.revocation.max_crl_bytes,
            expiry_warning_days: raw.expiry.warning_days,
        })
    }

    /// The TLS 1.2 cipher list in OpenSSL syntax.
    pub fn openssl_cipher_list(&self) -> String {
        let names: Vec<&str> = self.suites.iter().filter(|s| s.kx != KeyExchange::Tls13).map(|s| s.openssl).collect();
        names.join(":")
    }

    /// The TLS 1.3 suites in OpenSSL syntax (may be empty).
    pub fn openssl_tls13_suites(&self) -> String {
        let names: Vec<&str> = self.suites.iter().filter(|s| s.kx == KeyExchange::Tls13).map(|s| s.openssl).collect();
        names.join(":")
    }

    /// Check a configured target (SIP URI host or SRV domain, S4) against this profile: a bare IP
    /// address is refused when the profile does not accept IP identities (T7).
    pub fn check_target(&self, target: &str) -> Result<PeerName, TlsError> {
        let t = target.trim();
        let unbracketed = t.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
        if let Ok(ip) = unbracketed.unwrap_or(t).parse::<IpAddr>() {
            if !self.ip_identities {
                return Err(TlsError::IpTarget { target: target.to_string(), profile: self.name.clone() });
            }
            return Ok(PeerName::Ip(ip));
        }
        let name = t.trim_end_matches('.').to_ascii_lowercase();
        let bad = |why: &str, fix: &str| TlsError::BadTarget {
            target: target.to_string(),
            why: why.to_string(),
            fix: fix.to_string(),
        };
        if name.is_empty() || name.len() > 253 {
            return Err(bad("empty or longer than 253 characters", "give the host name"));
        }
        for label in name.split('.') {
            if label.starts_with('_') {
                return Err(bad(
                    "it contains an SRV service label",
                    "validate the SRV domain (e.g. example.com), not _sips._tcp.example.com (SPEC S4)",
                ));
            }
            let ok =
                !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(bad(
                    "labels must be 1-63 letters, digits or hyphens",
                    "give the host name from the SIP URI or SRV domain",
                ));
            }
        }
        Ok(PeerName::Dns(name))
    }
}

/// 1-based line number of byte offset `pos`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    text.get(..pos).map(|s| s.bytes().filter(|b| *b == b'\n').count() + 1).unwrap_or(0)
}

/// Line of the first `key =` in the text (0 when absent).
pub(crate) fn key_line(text: &str, key: &str) -> usize {
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if let Some(rest) = l.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const GOOD: &str = r#"
name = "t"
versions = ["1.2"]
cipher_suites = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_256_CBC_SHA"]
groups = ["secp384r1"]
[client_certificate]
policy = "none"
[peer]
ip_identities = false
wildcards = false
[revocation]
mode = "off"
"#;

    #[test]
    fn parses_and_maps_names() {
        let p = Profile::parse(GOOD, "t.toml").unwrap();
        assert_eq!(p.openssl_cipher_list(), "ECDHE-RSA-AES256-GCM-SHA384:AES256-SHA");
        assert_eq!(p.groups, vec!["P-384"]);
        assert_eq!(p.min_version, Version::Tls12);
        assert_eq!(p.max_version, Version::Tls12);
    }

    #[test]
    fn unknown_key_names_line() {
        let text = GOOD.replace("wildcards = false", "wildcards = false\nwildcard = true");
        let e = Profile::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:11:"), "{e}");
        assert!(e.contains("wildcard"), "{e}");
    }

    #[test]
    fn openssl_name_gets_iana_hint() {
        let text = GOOD.replace("TLS_RSA_WITH_AES_256_CBC_SHA\"", "AES256-SHA\"");
        let e = Profile::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("t.toml:4:"), "{e}");
        assert!(e.contains("TLS_RSA_WITH_AES_256_CBC_SHA"), "{e}");
    }

    #[test]
    fn tls13_without_suites_refused() {
        let text = GOOD.replace("[\"1.2\"]", "[\"1.2\", \"1.3\"]");
        let e = Profile::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("no TLS 1.3 suite"), "{e}");
    }

    #[test]
    fn gap_in_versions_refused() {
        let text = GOOD.replace("[\"1.2\"]", "[\"1.0\", \"1.2\"]");
        assert!(Profile::parse(&text, "t.toml").is_err());
    }

    #[test]
    fn shipped_profiles_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
        for name in ["byoc-cloud", "mutual", "modern"] {
            let p = Profile::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(p.name, name);
        }
        let b = Profile::load(&dir.join("byoc-cloud.toml")).unwrap();
        assert_eq!(b.suites.len(), 8, "T2: exactly the 8 suites");
        assert_eq!(b.groups, vec!["P-384"]);
        assert_eq!((b.min_version, b.max_version), (Version::Tls12, Version::Tls12));
        assert_eq!(b.client_cert, ClientCertPolicy::None);
        assert!(!b.ip_identities && !b.wildcards && !b.present_client_cert);
        assert_eq!(b.revocation, RevocationMode::Hard);
    }

    #[test]
    fn t7_ip_target_refused() {
        let p = Profile::parse(GOOD, "t.toml").unwrap();
        let e = p.check_target("192.0.2.7").unwrap_err();
        assert!(matches!(e, TlsError::IpTarget { .. }));
        assert!(p.check_target("[::1]").is_err());
        assert_eq!(
            p.check_target("LB01.voice.use1.pure.cloud.").unwrap(),
            PeerName::Dns("lb01.voice.use1.pure.cloud".into())
        );
        assert!(p.check_target("_sips._tcp.example.com").is_err());
    }
}
