//! trunkgate-check: answers the voice engineer's question "will my trunk come up, and if not,
//! why?" for a SIP TLS endpoint, against a TLS profile (default `byoc-cloud`).
//!
//! Outbound ([`check_outbound`]): resolve the target per RFC 3263 (`trunkgate-resolve`), then for
//! every address: probe versions, suites and groups ([`probe`]); fetch the chain as sent and
//! check it ([`chain`]); connect with trunkgate's own TLS client policy (`trunkgate-tls`, the
//! one the edge uses) and report its verdict and whether a CertificateRequest came; then speak
//! SIP over that connection ([`sip`]). Inbound ([`inbound`]): accept a peer's connection and
//! report its ClientHello, the handshake outcome and its first request.
//!
//! Each check gives PASS, WARN or FAIL with a one-line reason and the fix ([`report`]); INFO
//! lines report without judging (and say "not tested" honestly). Every network step has a
//! timeout. What it does not do: fix anything, fetch missing intermediates (T5), or depend on
//! the edge.

pub mod chain;
pub mod hello;
pub mod inbound;
mod outbound;
pub mod probe;
pub mod report;
pub mod sip;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use openssl::x509::X509;
use trunkgate_tls::{Profile, TrustTable};

pub use outbound::check_outbound;
pub use report::{Finding, Report, Status, TargetReport};

/// Why a check could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The profile could not be loaded.
    #[error("{0}")]
    Profile(String),
    /// Trust anchors could not be loaded.
    #[error("{0}")]
    Trust(String),
    /// The target is not usable or could not be resolved.
    #[error(transparent)]
    Resolve(#[from] trunkgate_resolve::ResolveError),
    /// Some other setup step failed.
    #[error("{what}: {detail}")]
    Setup {
        /// The step.
        what: String,
        /// Why.
        detail: String,
    },
}

/// Shipped profiles, by name.
const PROFILES: &[(&str, &str)] = &[
    ("byoc-cloud", include_str!("../../../profiles/byoc-cloud.toml")),
    ("mutual", include_str!("../../../profiles/mutual.toml")),
    ("modern", include_str!("../../../profiles/modern.toml")),
];

/// Shipped trust tables, by name.
const TABLES: &[(&str, &str)] = &[
    ("byoc-public-roots", include_str!("../../../trust/byoc-public-roots.toml")),
    ("byoc-cloud-digicert", include_str!("../../../trust/byoc-cloud-digicert.toml")),
];

/// A shipped profile by name, or a profile file.
pub fn load_profile(name_or_file: &str) -> Result<Profile, CheckError> {
    if let Some((n, text)) = PROFILES.iter().find(|(n, _)| *n == name_or_file) {
        return Profile::parse(text, &format!("profiles/{n}.toml")).map_err(|e| CheckError::Profile(e.to_string()));
    }
    let p = Path::new(name_or_file);
    if !p.exists() {
        let names: Vec<&str> = PROFILES.iter().map(|(n, _)| *n).collect();
        return Err(CheckError::Profile(format!(
            "no profile {name_or_file:?}; fix: use one of {} or the path of a profile file",
            names.join(", ")
        )));
    }
    Profile::load(p).map_err(|e| CheckError::Profile(e.to_string()))
}

/// A shipped trust table by name, or a table file.
pub fn load_table(name_or_file: &str) -> Result<TrustTable, CheckError> {
    if let Some((n, text)) = TABLES.iter().find(|(n, _)| *n == name_or_file) {
        return TrustTable::parse(text, &format!("trust/{n}.toml")).map_err(|e| CheckError::Trust(e.to_string()));
    }
    TrustTable::load(Path::new(name_or_file)).map_err(|e| CheckError::Trust(e.to_string()))
}

/// What to trust: the table's roots found in a CA bundle, plus `--ca` roots.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The table (names and subject hashes).
    pub table: TrustTable,
    /// Its roots found in the bundle.
    pub table_roots: Vec<X509>,
    /// Roots from `--ca`.
    pub extra_roots: Vec<X509>,
    /// Where the extra roots came from.
    pub extra_origin: String,
}

impl Trust {
    /// Select the table's roots from `bundle` (when it exists) and add the `--ca` files.
    pub fn load(table: TrustTable, bundle: &Path, ca_files: &[&Path]) -> Result<Trust, CheckError> {
        let table_roots = if bundle.exists() {
            let (anchors, _report) = table.select_from_bundle(bundle).map_err(|e| CheckError::Trust(e.to_string()))?;
            anchors.certs().to_vec()
        } else {
            Vec::new()
        };
        let mut extra_roots = Vec::new();
        for f in ca_files {
            let a = trunkgate_tls::TrustAnchors::from_file(f).map_err(|e| CheckError::Trust(e.to_string()))?;
            extra_roots.extend(a.certs().iter().cloned());
        }
        if table_roots.is_empty() && extra_roots.is_empty() {
            return Err(CheckError::Trust(format!(
                "no trust anchor: none of the roots of trust table {} is in {}, and no --ca was given; fix: install ca-certificates or give --ca ROOT.pem",
                table.name,
                bundle.display()
            )));
        }
        let names: Vec<String> = ca_files.iter().map(|p| p.display().to_string()).collect();
        Ok(Trust { table, table_roots, extra_roots, extra_origin: format!("--ca {}", names.join(", ")) })
    }

    /// All roots as trust anchors.
    pub fn anchors(&self) -> trunkgate_tls::TrustAnchors {
        let mut a =
            trunkgate_tls::TrustAnchors::new(format!("trust table {} and {}", self.table.name, self.extra_origin));
        for c in self.table_roots.iter().chain(self.extra_roots.iter()) {
            a.add(c.clone());
        }
        a
    }
}

/// Settings of an outbound check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `sips:host[:port]`, `sip:host;transport=tls`, `host:port` or a domain.
    pub target: String,
    /// Connect here instead of resolving (the name still comes from `target`).
    pub connect: Option<SocketAddr>,
    /// The profile.
    pub profile: Profile,
    /// What to trust.
    pub trust: Trust,
    /// DNS server to ask instead of the system's.
    pub nameserver: Option<SocketAddr>,
    /// Timeout of each network step (connect, handshake, probe, CRL fetch is the profile's).
    pub timeout: Duration,
    /// How long to wait for each SIP answer.
    pub sip_timeout: Duration,
    /// Pause before each probe connection (~50 are made per address): for servers that limit
    /// TLS handshakes per second and would otherwise refuse probes, which would read as
    /// "refused".
    pub pace: Duration,
}
