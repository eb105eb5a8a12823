//! TLS material for the edge, built from the configuration with `trunkgate-tls`: profiles by name
//! (the shipped `profiles/*.toml`, embedded so that the binary works anywhere) or by path, the
//! listener identity, and each trunk's client policy and trust (T6: the trunk's own anchors, or
//! by default the DigiCert roots of the BYOC Cloud table taken from the system bundle).

use std::path::Path;

use trunkgate_tls::{
    ClientConfig, Identity, ObserveOptions, Profile, ServerConfig, TlsClient, TlsServer, TrustAnchors,
};

use crate::config::{Config, Listener, Trunk};

const BUILTIN: &[(&str, &str)] = &[
    ("byoc-cloud", include_str!("../../../profiles/byoc-cloud.toml")),
    ("mutual", include_str!("../../../profiles/mutual.toml")),
    ("modern", include_str!("../../../profiles/modern.toml")),
];

const DIGICERT_TABLE: &str = include_str!("../../../trust/byoc-cloud-digicert.toml");

/// The system CA bundle on Debian.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why TLS material could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// From `trunkgate-tls` (it names the file and the fix).
    #[error("{context}: {error}")]
    Tls {
        /// Which listener or trunk.
        context: String,
        /// The error (in the message, not chained).
        error: trunkgate_tls::TlsError,
    },
    /// A setting is missing.
    #[error("{context}: {what}\n  fix: {fix}")]
    Missing {
        /// Which listener or trunk.
        context: String,
        /// What.
        what: String,
        /// What to do.
        fix: String,
    },
}

/// Loads a profile by built-in name or file path.
pub fn load_profile(name_or_path: &str) -> Result<Profile, trunkgate_tls::TlsError> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return Profile::parse(text, &format!("profiles/{name}.toml (built in)"));
    }
    Profile::load(Path::new(name_or_path))
}

/// The server policy of a TLS listener.
pub fn server_for(listener: &Listener, cfg: &Config) -> Result<TlsServer, TlsSetupError> {
    let context = format!("listener {:?}", listener.name);
    let tls = |error| TlsSetupError::Tls { context: context.clone(), error };
    let missing = |what: &str| TlsSetupError::Missing {
        context: context.clone(),
        what: format!("no {what}"),
        fix: format!("set {what} in the [[listen]] section"),
    };
    let profile = load_profile(listener.profile.as_deref().ok_or_else(|| missing("profile"))?).map_err(tls)?;
    let cert = listener.certificate.as_deref().ok_or_else(|| missing("certificate"))?;
    let key = listener.key.as_deref().ok_or_else(|| missing("key"))?;
    let identity = Identity::from_files(cert, key, &[]).map_err(tls)?;
    let mut sc = ServerConfig::new(profile, identity);
    if !listener.client_ca.is_empty() {
        let mut anchors = TrustAnchors::new(format!("client CAs of {}", listener.name));
        for f in &listener.client_ca {
            anchors.extend(&TrustAnchors::from_file(f).map_err(tls)?);
        }
        sc.client_trust = Some(anchors);
    }
    // Mutual trunks (T4): the union of their allowed subjects is checked at the handshake; the
    // core then checks the subject against the trunk the call routes to.
    for t in &cfg.trunks {
        sc.allowed_subjects.extend(t.allowed_subjects.iter().cloned());
    }
    sc.observe = observe(cfg);
    TlsServer::new(&sc).map_err(tls)
}

fn observe(cfg: &Config) -> ObserveOptions {
    ObserveOptions { debug: cfg.edge.tls_debug, keylog: cfg.edge.tls_keylog.clone() }
}

/// The client policy of a trunk.
pub fn client_for(trunk: &Trunk, cfg: &Config) -> Result<TlsClient, TlsSetupError> {
    let context = format!("trunk {:?}", trunk.name);
    let tls = |error| TlsSetupError::Tls { context: context.clone(), error };
    let mut profile = load_profile(&trunk.profile).map_err(tls)?;
    profile.crl_files.extend(trunk.crl_files.iter().map(|p| p.display().to_string()));
    let trust = if trunk.trust.is_empty() {
        let table = trunkgate_tls::TrustTable::parse(DIGICERT_TABLE, "trust/byoc-cloud-digicert.toml (built in)")
            .map_err(tls)?;
        let (anchors, report) = table.select_from_bundle(Path::new(SYSTEM_BUNDLE)).map_err(tls)?;
        tracing::info!(trunk = %trunk.name, "trust: {report:?}");
        anchors
    } else {
        let mut anchors = TrustAnchors::new(format!("trust of trunk {}", trunk.name));
        for f in &trunk.trust {
            anchors.extend(&TrustAnchors::from_file(f).map_err(tls)?);
        }
        anchors
    };
    let mut cc = ClientConfig::new(profile, trust);
    if let (Some(c), Some(k)) = (&trunk.certificate, &trunk.key) {
        cc.identity = Some(Identity::from_files(c, k, &[]).map_err(tls)?);
    }
    cc.observe = observe(cfg);
    TlsClient::new(&cc).map_err(tls)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN {
            let p = load_profile(name).unwrap();
            assert_eq!(p.name, *name);
        }
        assert!(load_profile("/nonexistent/profile.toml").is_err());
    }
}
