//! Protocol probes: versions (SSL 3.0 to TLS 1.3), each suite of the profile (T2), suites
//! outside it, weak suites (RC4, 3DES, NULL, EXPORT, DES, anonymous) and groups (P-384 on
//! byoc-cloud, others reported). SSL 3.0 to TLS 1.2 are probed with raw hellos ([`crate::hello`]),
//! TLS 1.3 with a real OpenSSL handshake.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use trunkgate_tls::suites::{self, KeyExchange};
use trunkgate_tls::{Profile, Version};

use crate::hello::{self, version_name, HelloOutcome, HelloSpec, ProbeError, SSL3, TLS10, TLS11, TLS12, TLS13};
use crate::report::{Finding, Status};

/// Suites nobody should accept, with the reason.
pub const WEAK: &[(u16, &str, &str)] = &[
    (0x0001, "TLS_RSA_WITH_NULL_MD5", "NULL (no encryption)"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA", "NULL (no encryption)"),
    (0x003B, "TLS_RSA_WITH_NULL_SHA256", "NULL (no encryption)"),
    (0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA", "NULL (no encryption)"),
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", "EXPORT (40-bit)"),
    (0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", "EXPORT (40-bit)"),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "EXPORT (40-bit)"),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", "EXPORT (40-bit)"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5", "RC4"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA", "RC4"),
    (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "RC4"),
    (0x0009, "TLS_RSA_WITH_DES_CBC_SHA", "single DES"),
    (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES (Sweet32)"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", "3DES (Sweet32)"),
    (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "3DES (Sweet32)"),
    (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", "anonymous (no authentication)"),
    (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", "anonymous (no authentication)"),
    (0xC018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", "anonymous (no authentication)"),
];

/// More suites, only to name them in reports (DHE suites outside trunkgate's table).
const OTHER_NAMES: &[(u16, &str)] = &[
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0x00FF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
    (0x5600, "TLS_FALLBACK_SCSV"),
];

/// The IANA name of a suite code point (`0x1234` when unknown).
pub fn suite_label(id: u16) -> String {
    if let Some(s) = suites::by_id(id) {
        return s.iana.to_string();
    }
    WEAK.iter()
        .map(|w| (w.0, w.1))
        .chain(OTHER_NAMES.iter().copied())
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("0x{id:04x}"))
}

/// Groups probed: P-256, P-384, P-521, X25519, X448.
const GROUPS: &[u16] = &[23, 24, 25, 29, 30];

/// Where and how to probe.
#[derive(Debug, Clone)]
pub struct Prober {
    /// Address.
    pub addr: SocketAddr,
    /// SNI (a host name, never an IP).
    pub sni: Option<String>,
    /// Per-step timeout.
    pub timeout: Duration,
    /// Pause before each probe connection (for servers that limit handshakes per second).
    pub pace: Duration,
}

/// What the protocol probes learnt, for the later steps.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Versions accepted (wire codes).
    pub versions: Vec<u16>,
    /// Suites accepted at `probe_version`.
    pub suites: Vec<u16>,
}

fn all_suite_ids() -> Vec<u16> {
    let mut v: Vec<u16> = suites::SUITES.iter().filter(|s| s.kx != KeyExchange::Tls13).map(|s| s.id).collect();
    v.extend(WEAK.iter().map(|w| w.0));
    v
}

fn profile_versions(p: &Profile) -> Vec<u16> {
    let code = |v: Version| match v {
        Version::Tls10 => TLS10,
        Version::Tls11 => TLS11,
        Version::Tls12 => TLS12,
        Version::Tls13 => TLS13,
    };
    (code(p.min_version)..=code(p.max_version)).collect()
}

impl Prober {
    fn hello(&self, version: u16, suites: &[u16], groups: &[u16]) -> Result<HelloOutcome, ProbeError> {
        std::thread::sleep(self.pace);
        let spec = HelloSpec { version, suites, groups, sni: self.sni.as_deref() };
        hello::probe(self.addr, &spec, self.timeout)
    }

    fn accepts(&self, version: u16, suites: &[u16], groups: &[u16]) -> Result<Option<u16>, ProbeError> {
        Ok(match self.hello(version, suites, groups)? {
            HelloOutcome::Accepted { version: v, suite } if v == version && suites.contains(&suite) => Some(suite),
            _ => None,
        })
    }

    fn tls13(&self) -> Result<bool, ProbeError> {
        std::thread::sleep(self.pace);
        let other = |e: String| ProbeError::NotTls { addr: self.addr, detail: e };
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| other(e.to_string()))?;
        b.set_verify(SslVerifyMode::NONE);
        b.set_min_proto_version(Some(SslVersion::TLS1_3)).map_err(|e| other(e.to_string()))?;
        b.set_max_proto_version(Some(SslVersion::TLS1_3)).map_err(|e| other(e.to_string()))?;
        let conn = b.build();
        let tcp = TcpStream::connect_timeout(&self.addr, self.timeout)
            .map_err(|e| ProbeError::Connect { addr: self.addr, detail: e.to_string() })?;
        let _ = tcp.set_read_timeout(Some(self.timeout));
        let _ = tcp.set_write_timeout(Some(self.timeout));
        let mut cfg = conn.configure().map_err(|e| other(e.to_string()))?;
        cfg.set_verify_hostname(false);
        cfg.set_use_server_name_indication(self.sni.is_some());
        let r = cfg.connect(self.sni.as_deref().unwrap_or("invalid"), tcp);
        Ok(r.is_ok_and(|s| s.ssl().version2() == Some(SslVersion::TLS1_3)))
    }

    /// Probe versions, suites and groups; findings in report order.
    pub fn run(&self, profile: &Profile, progress: &mut dyn FnMut(&str)) -> Result<(Vec<Finding>, Facts), ProbeError> {
        let mut out = Vec::new();
        let mut facts = Facts::default();
        let wanted = profile_versions(profile);
        let every = all_suite_ids();
        // ---- versions
        let mut accepted = Vec::new();
        for v in [SSL3, TLS10, TLS11, TLS12] {
            progress(&format!("probing {}", version_name(v)));
            if self.accepts(v, &every, GROUPS)?.is_some() {
                accepted.push(v);
            }
        }
        progress("probing TLS 1.3");
        if self.tls13()? {
            accepted.push(TLS13);
        }
        let any_wanted = wanted.iter().any(|v| accepted.contains(v));
        for v in [SSL3, TLS10, TLS11, TLS12, TLS13] {
            let name = version_name(v);
            let check = format!("tls.version.{}", name.trim_start_matches("TLS ").replace(' ', ""));
            let yes = accepted.contains(&v);
            let f = match (wanted.contains(&v), yes) {
                (true, true) => Finding::pass(check, "Accepted", format!("{name} accepted (profile {})", profile.name)),
                (true, false) if any_wanted => Finding::info(
                    check,
                    "Refused",
                    format!("{name} refused; another version of the profile is accepted"),
                ),
                (true, false) => Finding::new(
                    check,
                    Status::Fail,
                    "Refused",
                    format!("{name} refused, and no version of profile {} is accepted", profile.name),
                    "enable the profile's TLS version on the server (TLS 1.2 on byoc-cloud, SPEC T2)",
                ),
                (false, true) if v < wanted.first().copied().unwrap_or(TLS12) => Finding::new(
                    check,
                    Status::Fail,
                    "Accepted",
                    format!("{name} accepted: obsolete and outside profile {}", profile.name),
                    "disable SSL 3.0, TLS 1.0 and TLS 1.1 on the server (SPEC T2)",
                ),
                (false, true) => Finding::new(
                    check,
                    Status::Warn,
                    "Accepted",
                    format!(
                        "{name} accepted: outside profile {} (a client of the profile will not use it)",
                        profile.name
                    ),
                    "disable it to match the profile exactly, or use a profile that includes it",
                ),
                (false, false) => {
                    Finding::pass(check, "Refused", format!("{name} refused (outside profile {})", profile.name))
                }
            };
            out.push(f);
        }
        facts.versions = accepted.clone();
        // ---- suites, at the best accepted version up to TLS 1.2
        let Some(pv) = accepted.iter().copied().filter(|v| *v <= TLS12).max() else {
            out.push(Finding::info(
                "tls.suites",
                "NotProbed",
                "no version up to TLS 1.2 accepted: TLS 1.2 suites not probed",
            ));
            return Ok((out, facts));
        };
        let profile_ids: Vec<u16> =
            profile.suites.iter().filter(|s| s.kx != KeyExchange::Tls13).map(|s| s.id).collect();
        let mut suites_ok = Vec::new();
        for s in profile.suites.iter().filter(|s| s.kx != KeyExchange::Tls13) {
            progress(&format!("probing {}", s.iana));
            if self.accepts(pv, &[s.id], GROUPS)?.is_some() {
                suites_ok.push(s.id);
            }
        }
        for s in profile.suites.iter().filter(|s| s.kx != KeyExchange::Tls13) {
            let check = format!("tls.suite.{}", s.iana);
            out.push(if suites_ok.contains(&s.id) {
                Finding::pass(check, "Accepted", format!("{} accepted", s.iana))
            } else if suites_ok.is_empty() {
                Finding::new(
                    check,
                    Status::Fail,
                    "Refused",
                    format!("{} refused", s.iana),
                    "enable the suites of the profile on the server (SPEC T2)",
                )
            } else {
                Finding::new(
                    check,
                    Status::Warn,
                    "Refused",
                    format!("{} refused (other suites of the profile are accepted)", s.iana),
                    "enable every suite of the profile so that any client of it connects (SPEC T2)",
                )
            });
        }
        let mut outside = Vec::new();
        for s in suites::SUITES.iter().filter(|s| s.kx != KeyExchange::Tls13 && !profile_ids.contains(&s.id)) {
            progress(&format!("probing {}", s.iana));
            if self.accepts(pv, &[s.id], GROUPS)?.is_some() {
                outside.push(s.iana);
                facts.suites.push(s.id);
            }
        }
        out.push(if outside.is_empty() {
            Finding::pass("tls.suites.outside", "None", format!("no other suite accepted at {}", version_name(pv)))
        } else {
            Finding::new(
                "tls.suites.outside",
                Status::Warn,
                "OutsideProfile",
                format!("suites outside profile {} accepted: {}", profile.name, outside.join(", ")),
                "restrict the server's cipher list to the profile's suites (SPEC T2)",
            )
        });
        let mut weak = Vec::new();
        for (id, name, why) in WEAK {
            progress(&format!("probing {name}"));
            let v = if why.starts_with("EXPORT") && accepted.contains(&TLS10) { TLS10 } else { pv };
            if self.accepts(v, &[*id], GROUPS)?.is_some() {
                weak.push(format!("{name} ({why})"));
            }
        }
        out.push(if weak.is_empty() {
            Finding::pass(
                "tls.suites.weak",
                "None",
                format!("no RC4, 3DES, DES, NULL, EXPORT or anonymous suite accepted ({} probed)", WEAK.len()),
            )
        } else {
            Finding::new(
                "tls.suites.weak",
                Status::Fail,
                "Weak",
                format!("weak suites accepted: {}", weak.join(", ")),
                "remove RC4, 3DES, DES, NULL, EXPORT and anonymous suites from the server's cipher list",
            )
        });
        facts.suites.extend(suites_ok.iter().copied());
        // ---- groups, with ECDHE suites only
        let ecdhe: Vec<u16> = suites::SUITES
            .iter()
            .filter(|s| s.kx == KeyExchange::Ecdhe)
            .map(|s| s.id)
            .filter(|id| facts.suites.contains(id))
            .collect();
        if ecdhe.is_empty() {
            let f = if profile.groups.is_empty() || profile.suites.iter().all(|s| s.kx != KeyExchange::Ecdhe) {
                Finding::info("tls.groups", "NoEcdhe", "no ECDHE suite accepted: groups not used")
            } else {
                Finding::new(
                    "tls.groups",
                    Status::Warn,
                    "NoEcdhe",
                    "no ECDHE suite accepted: only static-RSA key exchange, no forward secrecy",
                    "enable the profile's ECDHE suites (SPEC T2)",
                )
            };
            out.push(f);
            return Ok((out, facts));
        }
        let mut extra = Vec::new();
        for g in GROUPS {
            let name = suites::group_name(*g);
            progress(&format!("probing group {name}"));
            let ok = self.accepts(pv, &ecdhe, &[*g])?.is_some();
            let in_profile = profile.groups.iter().any(|p| *p == name);
            match (in_profile, ok) {
                (true, true) => out.push(Finding::pass(
                    format!("tls.group.{name}"),
                    "Accepted",
                    format!("ECDHE on {name} accepted"),
                )),
                (true, false) => out.push(Finding::new(
                    format!("tls.group.{name}"),
                    Status::Fail,
                    "Refused",
                    format!(
                        "ECDHE on {name} refused: profile {} uses ECDHE only on {}",
                        profile.name,
                        profile.groups.join(", ")
                    ),
                    "enable secp384r1 (P-384) for ECDHE on the server (SPEC T2)",
                )),
                (false, true) => extra.push(name),
                (false, false) => {}
            }
        }
        if !extra.is_empty() {
            out.push(Finding::info(
                "tls.groups.other",
                "Accepted",
                format!("also accepts {} (outside the profile; reported)", extra.join(", ")),
            ));
        }
        Ok((out, facts))
    }
}
