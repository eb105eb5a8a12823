//! The edge's configuration: a strict TOML file (`deny_unknown_fields`) checked at load, with
//! errors that name the file, the line and the fix. Commented examples are in `examples/edge/`.
//!
//! Policy is data (DESIGN.md §4): listeners, trunks, routing rules and limits all live here; TLS
//! profiles are referenced by name (the shipped `profiles/*.toml`, embedded in the binary) or by
//! path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {file}: {error}\n  fix: check the path given to --config and its permissions")]
    Read {
        /// The file.
        file: String,
        /// The I/O error (in the message, not chained).
        error: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type, unknown field, missing field.
    #[error("{file}:{line}: {message}\n  fix: {fix}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What the TOML parser said.
        message: String,
        /// What to do.
        fix: String,
    },
    /// A value that parses but makes no sense.
    #[error("{file}: {what}\n  fix: {fix}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, naming the section.
        what: String,
        /// What to do.
        fix: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Global settings and limits.
    #[serde(default)]
    pub edge: EdgeSection,
    /// Where the edge listens.
    #[serde(rename = "listen")]
    pub listeners: Vec<Listener>,
    /// Where calls from trunks go inside.
    pub inside: Inside,
    /// The trunks.
    #[serde(rename = "trunk", default)]
    pub trunks: Vec<Trunk>,
    /// Media anchoring (SPEC M1, M2).
    #[serde(default)]
    pub media: Media,
}

fn yes() -> bool {
    true
}
fn default_port_min() -> u16 {
    30000
}
fn default_port_max() -> u16 {
    39999
}
fn default_media_timeout() -> u64 {
    60
}

/// `[media]`: the edge anchors the media of every call with an SDP offer: `c=`/`m=` point at
/// the edge on each side, SRTP (SDES) on trunks that ask for it, plain RTP inside.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Anchor media (default true). Off: SDP passes through unchanged.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Lowest UDP port for RTP/RTCP pairs.
    #[serde(default = "default_port_min")]
    pub port_min: u16,
    /// Highest UDP port.
    #[serde(default = "default_port_max")]
    pub port_max: u16,
    /// The edge's media address toward the inside (default: the inside listener's address).
    #[serde(default)]
    pub inside_ip: Option<std::net::IpAddr>,
    /// The edge's media address toward the trunks (default: the TLS listener's address).
    #[serde(default)]
    pub trunk_ip: Option<std::net::IpAddr>,
    /// A call whose media stops for this long is ended with BYE on both legs (not while on hold).
    #[serde(default = "default_media_timeout")]
    pub inactivity_timeout_s: u64,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            enabled: true,
            port_min: default_port_min(),
            port_max: default_port_max(),
            inside_ip: None,
            trunk_ip: None,
            inactivity_timeout_s: default_media_timeout(),
        }
    }
}

fn default_name() -> String {
    "trunkgate".into()
}
fn default_max_connections() -> usize {
    10_000
}
fn default_per_ip() -> usize {
    256
}
fn default_handshakes_per_ip() -> u32 {
    50
}
fn default_handshake_timeout() -> u64 {
    5_000
}
fn default_idle_timeout() -> u64 {
    900
}
fn default_partial_timeout() -> u64 {
    10_000
}
fn default_max_message() -> usize {
    65_536
}
fn default_max_calls() -> usize {
    10_000
}
fn default_grace() -> u64 {
    30
}
fn default_transactions() -> usize {
    100_000
}

/// `[edge]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSection {
    /// Server / User-Agent header value.
    #[serde(default = "default_name")]
    pub name: String,
    /// Most stream connections (TCP + TLS) open at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most stream connections from one IP address.
    #[serde(default = "default_per_ip")]
    pub max_connections_per_ip: usize,
    /// TLS handshakes accepted per second from one IP address.
    #[serde(default = "default_handshakes_per_ip")]
    pub handshakes_per_ip_per_second: u32,
    /// A TLS handshake must finish within this time (ms).
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_ms: u64,
    /// A stream connection with no traffic is closed after this time (s).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// A message started but not completed within this time is abandoned and the connection
    /// closed (slowloris, ms).
    #[serde(default = "default_partial_timeout")]
    pub partial_message_timeout_ms: u64,
    /// Largest SIP message (bytes).
    #[serde(default = "default_max_message")]
    pub max_message_size: usize,
    /// Most calls at once; more get 503.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Most transactions at once; more get 503.
    #[serde(default = "default_transactions")]
    pub max_transactions: usize,
    /// On shutdown, how long calls may continue (s).
    #[serde(default = "default_grace")]
    pub shutdown_grace_s: u64,
    /// Write an NSS key log here (SSLKEYLOGFILE format, O2), for decrypting captures.
    #[serde(default)]
    pub tls_keylog: Option<PathBuf>,
    /// Log TLS handshake messages, states and errors per connection (O2).
    #[serde(default)]
    pub tls_debug: bool,
    /// Ask this DNS server for trunk peers (RFC 3263 NAPTR/SRV/A/AAAA) instead of the system's.
    #[serde(default)]
    pub dns_server: Option<SocketAddr>,
}

impl Default for EdgeSection {
    fn default() -> Self {
        EdgeSection {
            name: default_name(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_per_ip(),
            handshakes_per_ip_per_second: default_handshakes_per_ip(),
            handshake_timeout_ms: default_handshake_timeout(),
            idle_timeout_s: default_idle_timeout(),
            partial_message_timeout_ms: default_partial_timeout(),
            max_message_size: default_max_message(),
            max_calls: default_max_calls(),
            max_transactions: default_transactions(),
            shutdown_grace_s: default_grace(),
            tls_keylog: None,
            tls_debug: false,
            dns_server: None,
        }
    }
}

/// Transport of a listener or target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (inside only).
    Udp,
    /// TCP (inside only).
    Tcp,
    /// TLS over TCP (trunks; T1).
    Tls,
}

impl Transport {
    /// The Via token.
    pub fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Which network a listener faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The TLS trunks outside.
    Trunk,
    /// The plain inside (PBX).
    Inside,
}

/// `[[listen]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Name for logs.
    pub name: String,
    /// Transport.
    pub transport: Transport,
    /// Address to bind.
    pub address: SocketAddr,
    /// Which side it faces.
    pub side: Side,
    /// The host name this listener is known by (Via sent-by, Contact, Record-Route): on trunk
    /// listeners the name in our certificate. Defaults to the bound address.
    #[serde(default)]
    pub advertise: Option<String>,
    /// TLS: profile name (`byoc-cloud`, `mutual`, `modern`) or path to a profile file.
    #[serde(default)]
    pub profile: Option<String>,
    /// TLS: certificate chain (PEM or DER; leaf first, then intermediates, T5).
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// TLS: private key (PEM or DER).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// TLS: roots for client certificates (mutual trunks, T4).
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
}

/// `[inside]`: where calls from the trunks go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inside {
    /// The PBX / call server address.
    pub target: SocketAddr,
    /// Its transport (udp or tcp).
    #[serde(default = "udp")]
    pub transport: Transport,
}

fn udp() -> Transport {
    Transport::Udp
}

fn default_options_interval() -> u64 {
    30
}
fn default_down_after() -> u32 {
    3
}
fn default_timeout_ms() -> u64 {
    32_000
}

/// `[[trunk]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Name for logs and metrics.
    pub name: String,
    /// TLS profile name or path.
    pub profile: String,
    /// Outbound peers, tried in order with failover (S3): `host:port` (the host's A/AAAA
    /// records; the certificate must carry the host name, T7), or a bare domain resolved per
    /// RFC 3263 (NAPTR → SRV → A/AAAA, each target tried in turn; the certificate must carry the
    /// domain, S4).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Connect to these addresses instead of resolving the host name (labs, hosts not in DNS);
    /// the certificate is still checked against the host name.
    #[serde(default)]
    pub connect: BTreeMap<String, SocketAddr>,
    /// Trust anchors (PEM/DER files) for this trunk's servers (T6). Empty: the profile's
    /// trust table over the system bundle.
    #[serde(default)]
    pub trust: Vec<PathBuf>,
    /// Allowed peer certificate subjects (CN or SAN) on mutual trunks (T4).
    #[serde(default)]
    pub allowed_subjects: Vec<String>,
    /// CRL files (PEM or DER) added to the profile's, for peers whose CRL is not reachable over
    /// HTTP (T9).
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// Client certificate chain presented on mutual trunks.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Its key.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Trunk group put into outbound Request-URIs (S1, RFC 4904).
    #[serde(default)]
    pub tgrp: Option<String>,
    /// Trunk context for `tgrp`.
    #[serde(default)]
    pub trunk_context: Option<String>,
    /// How calls arriving over TLS are matched to this trunk (S2).
    #[serde(default)]
    pub inbound: InboundMatch,
    /// Which inside calls leave over this trunk.
    #[serde(default)]
    pub outbound: OutboundMatch,
    /// Seconds between OPTIONS pings to each peer (0 = off).
    #[serde(default = "default_options_interval")]
    pub options_interval_s: u64,
    /// Consecutive failures before a peer is marked down.
    #[serde(default = "default_down_after")]
    pub down_after: u32,
    /// How long an INVITE to a peer may go unanswered before failover (ms).
    #[serde(default = "default_timeout_ms")]
    pub invite_timeout_ms: u64,
    /// Media on this trunk is SRTP with SDES keys (M1); an answer without acceptable crypto ends
    /// the attempt with 488. Default true.
    #[serde(default = "yes")]
    pub srtp: bool,
    /// SRTP suites offered, in order (AES_CM_128_HMAC_SHA1_80 always first). Empty: the default
    /// (AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM).
    #[serde(default)]
    pub srtp_suites: Vec<String>,
}

/// `[trunk.inbound]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundMatch {
    /// TGRP in the Request-URI user part (best match, S2).
    #[serde(default)]
    pub tgrp: Option<String>,
    /// With `tgrp`: the trunk-context it must carry.
    #[serde(default)]
    pub trunk_context: Option<String>,
    /// Dialled numbers: exact, or a prefix ending in `*`.
    #[serde(default)]
    pub dnis: Vec<String>,
    /// Request-URI host names (FQDN routing, S2).
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// `[trunk.outbound]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundMatch {
    /// Dialled-number prefixes (longest wins); `*` matches everything.
    #[serde(default)]
    pub prefixes: Vec<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |t| t.bytes().filter(|&b| b == b'\n').count() + 1)
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { file: file.clone(), error })?;
        Config::parse(&text, &file)
    }

    /// Parses and checks configuration text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            let message = e.message().to_string();
            let fix = if message.contains("unknown field") {
                "remove or correct the field; the accepted fields are listed in the message".to_string()
            } else if message.contains("missing field") {
                "add the field; see examples/edge/*.toml for a commented configuration".to_string()
            } else {
                "correct the value's syntax or type (see examples/edge/*.toml)".to_string()
            };
            ConfigError::Syntax { file: file.to_string(), line, message, fix }
        })?;
        cfg.check(file)?;
        Ok(cfg)
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        let invalid = |what: String, fix: &str| ConfigError::Invalid { file: file.to_string(), what, fix: fix.into() };
        if self.listeners.is_empty() {
            return Err(invalid(
                "no [[listen]] section".into(),
                "add a TLS listener (side = \"trunk\") and an inside one",
            ));
        }
        for l in &self.listeners {
            match (l.side, l.transport) {
                (Side::Trunk, Transport::Tls) => {
                    if l.certificate.is_none() || l.key.is_none() || l.profile.is_none() {
                        return Err(invalid(
                            format!("listener {:?}: a TLS listener needs profile, certificate and key", l.name),
                            "set profile = \"byoc-cloud\", certificate = \"chain.pem\", key = \"key.pem\"",
                        ));
                    }
                }
                (Side::Trunk, t) => {
                    return Err(invalid(
                        format!(
                            "listener {:?}: trunks are secure; {t:?} is not allowed on the trunk side (T1)",
                            l.name
                        ),
                        "use transport = \"tls\" on trunk listeners",
                    ))
                }
                (Side::Inside, Transport::Tls) => {
                    return Err(invalid(
                        format!("listener {:?}: the inside speaks plain SIP (udp or tcp)", l.name),
                        "use transport = \"udp\" or \"tcp\" with side = \"inside\"",
                    ))
                }
                (Side::Inside, _) => {}
            }
        }
        if !self.listeners.iter().any(|l| l.side == Side::Inside && l.transport == self.inside.transport) {
            return Err(invalid(
                format!("[inside] uses {:?} but no inside listener has that transport", self.inside.transport),
                "add a [[listen]] with side = \"inside\" and the same transport",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for t in &self.trunks {
            if !names.insert(t.name.as_str()) {
                return Err(invalid(format!("two trunks are named {:?}", t.name), "give each trunk its own name"));
            }
            for p in &t.peers {
                let host = split_host_port(p).0;
                if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
                    return Err(invalid(
                        format!("trunk {:?}: peer {p:?} is an IP address; a certificate cannot prove an IP identity on a TLS trunk (T7)", t.name),
                        "name the peer by host name and, for a lab, map it with connect = { \"host\" = \"IP:PORT\" }",
                    ));
                }
            }
            if t.tgrp.is_some() != t.trunk_context.is_some() {
                return Err(invalid(
                    format!("trunk {:?}: tgrp and trunk_context go together (RFC 4904)", t.name),
                    "set both or neither",
                ));
            }
            if t.certificate.is_some() != t.key.is_some() {
                return Err(invalid(
                    format!("trunk {:?}: certificate without key or key without certificate", t.name),
                    "set both",
                ));
            }
        }
        for t in &self.trunks {
            for suite in &t.srtp_suites {
                if trunkgate_media::CryptoSuite::from_name(suite).is_none() {
                    return Err(invalid(
                        format!("trunk {:?}: unknown SRTP suite {suite:?}", t.name),
                        "use AES_CM_128_HMAC_SHA1_80 or AEAD_AES_128_GCM (RFC 4568 / RFC 7714 names)",
                    ));
                }
            }
        }
        let m = &self.media;
        if m.enabled {
            if m.port_min >= m.port_max || m.port_min < 1024 {
                return Err(invalid(
                    format!("[media] port range {}-{} is empty or below 1024", m.port_min, m.port_max),
                    "use a range such as 30000-39999",
                ));
            }
            for (side, ip) in [(Side::Inside, m.inside_ip), (Side::Trunk, m.trunk_ip)] {
                let listener_ip = self.listeners.iter().find(|l| l.side == side).map(|l| l.address.ip());
                if ip.is_none() && listener_ip.is_some_and(|a| a.is_unspecified()) {
                    return Err(invalid(
                        format!(
                            "[media] needs the edge's {side:?} media address: the listener binds {}",
                            listener_ip.map_or(String::new(), |a| a.to_string())
                        ),
                        "set [media] inside_ip / trunk_ip to the address peers send RTP to",
                    ));
                }
            }
        }
        if self.edge.max_message_size < 1024 {
            return Err(invalid("edge.max_message_size below 1024 bytes".into(), "use at least 4096 (default 65536)"));
        }
        Ok(())
    }
}

/// Splits `host[:port]` (IPv6 in brackets) with 5061 as the default port (T1).
pub fn split_host_port(s: &str) -> (&str, u16) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(5061);
            return (host, port);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().unwrap_or(5061)),
        _ => (s, 5061),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    const GOOD: &str = r#"
[[listen]]
name = "trunk"
transport = "tls"
address = "127.0.0.1:5061"
side = "trunk"
profile = "byoc-cloud"
certificate = "chain.pem"
key = "key.pem"

[[listen]]
name = "inside"
transport = "udp"
address = "127.0.0.1:5060"
side = "inside"

[inside]
target = "127.0.0.1:5070"

[[trunk]]
name = "cloud"
profile = "byoc-cloud"
peers = ["lb01.voice.use1.pure.cloud", "lb02.voice.use1.pure.cloud:5062"]
tgrp = "TG-1"
trunk_context = "example.com"
[trunk.inbound]
tgrp = "TG-1"
trunk_context = "example.com"
"#;

    #[test]
    fn good_config_loads_with_defaults() {
        let c = Config::parse(GOOD, "edge.toml").unwrap();
        assert_eq!(c.edge.max_message_size, 65536);
        assert_eq!(c.trunks[0].options_interval_s, 30);
        assert_eq!(split_host_port(&c.trunks[0].peers[1]), ("lb02.voice.use1.pure.cloud", 5062));
        assert_eq!(split_host_port("[::1]:5070"), ("::1", 5070));
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let bad = GOOD.replace("side = \"inside\"", "side = \"inside\"\ncolour = \"blue\"");
        let e = Config::parse(&bad, "edge.toml").unwrap_err().to_string();
        assert!(e.starts_with("edge.toml:1") || e.contains("edge.toml:"), "{e}");
        assert!(e.contains("colour") && e.contains("fix:"), "{e}");
        let ConfigError::Syntax { line, .. } = Config::parse(&bad, "edge.toml").unwrap_err() else { panic!() };
        assert_eq!(line, 16);
        let ip = GOOD.replace("\"lb01.voice.use1.pure.cloud\",", "\"192.0.2.1:5061\",");
        let e = Config::parse(&ip, "edge.toml").unwrap_err().to_string();
        assert!(e.contains("IP address") && e.contains("T7"), "{e}");
        let plain_trunk = GOOD.replacen("transport = \"tls\"", "transport = \"tcp\"", 1);
        assert!(Config::parse(&plain_trunk, "e.toml").unwrap_err().to_string().contains("T1"));
    }
}

#[cfg(test)]
mod example_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    /// The commented examples in `examples/edge/` are valid configurations.
    #[test]
    fn shipped_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/edge");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let c = Config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(!c.trunks.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 2);
        let byoc = Config::load(&dir.join("byoc-cloud.toml")).unwrap();
        assert_eq!(byoc.trunks[0].peers.len(), 4, "lb01-lb04 (S3)");
    }
}
