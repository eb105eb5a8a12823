//! The server side: present the full chain (T5), choose the certificate by SNI, ask for a client
//! certificate only as the profile says (never on byoc-cloud, T3), verify client certificates
//! against the trunk's anchors or a per-peer trustpoint (T4), reload without dropping
//! connections.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use openssl::pkey::Id;
use openssl::ssl::{NameType, Ssl, SslContext, SslContextBuilder, SslVerifyMode};
use openssl::x509::{X509PurposeId, X509VerifyResult};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::certs::{self, Identity};
use crate::context::{self, ObserveOptions};
use crate::error::{FailureReason, HandshakeError, TlsError};
use crate::observe::{ConnectionInfo, Recorder, Role};
use crate::profile::{ClientCertPolicy, Profile};
use crate::suites::KeyExchange;
use crate::trust::TrustAnchors;
use crate::verify::PeerCheck;

/// Everything a TLS listener needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The profile.
    pub profile: Profile,
    /// Our certificates with chains and keys; the first is the default, the others are chosen
    /// when the client's SNI matches one of their names.
    pub identities: Vec<Identity>,
    /// Roots for client certificates (needed when the profile requests them).
    pub client_trust: Option<TrustAnchors>,
    /// Per-remote-address trust anchors (T4 trustpoints), used instead of `client_trust`.
    pub peer_trust: Vec<(IpAddr, TrustAnchors)>,
    /// Allowed client subjects (T4), in addition to the profile's.
    pub allowed_subjects: Vec<String>,
    /// Debug and key log.
    pub observe: ObserveOptions,
    /// Debug-log handshakes from these remote addresses even when debug mode is off (O2).
    pub debug_peers: Vec<IpAddr>,
}

impl ServerConfig {
    /// A config with one identity and nothing else.
    pub fn new(profile: Profile, identity: Identity) -> ServerConfig {
        ServerConfig {
            profile,
            identities: vec![identity],
            client_trust: None,
            peer_trust: Vec::new(),
            allowed_subjects: Vec::new(),
            observe: ObserveOptions::default(),
            debug_peers: Vec::new(),
        }
    }
}

struct ServerState {
    ctx: SslContext,
    profile: Profile,
    peer_trust: HashMap<IpAddr, TrustAnchors>,
    check: Option<PeerCheck>,
    debug: bool,
    debug_peers: Vec<IpAddr>,
}

/// A TLS server policy; cheap to share (`Arc`) among listener tasks.
pub struct TlsServer {
    state: RwLock<Arc<ServerState>>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

fn check_identity(profile: &Profile, id: &Identity) -> Result<(), TlsError> {
    let Some(leaf) = id.leaf() else {
        return Err(TlsError::BadIdentity {
            subject: "(none)".into(),
            why: "no certificate".into(),
            fix: "configure the leaf certificate and its chain".into(),
        });
    };
    let subject = certs::subject(leaf);
    let bad = |why: String, fix: &str| TlsError::BadIdentity { subject: subject.clone(), why, fix: fix.to_string() };
    let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(TlsError::ossl("the clock"))?;
    for c in &id.chain {
        if c.not_after() < now {
            return Err(bad(
                format!("{} expired on {}", certs::subject(c), c.not_after()),
                "install a renewed certificate (SPEC T8)",
            ));
        }
        if c.not_before() > now {
            return Err(bad(
                format!("{} is not valid before {}", certs::subject(c), c.not_before()),
                "check the clock or wait for the certificate's start date (SPEC T8)",
            ));
        }
        if profile.expiry_warning_days > 0 {
            let soon = openssl::asn1::Asn1Time::days_from_now(profile.expiry_warning_days)
                .map_err(TlsError::ossl("the clock"))?;
            if c.not_after() < soon {
                tracing::warn!(
                    "our certificate {} expires {} (within {} days): renew it (SPEC T8)",
                    certs::subject(c),
                    c.not_after(),
                    profile.expiry_warning_days
                );
            }
        }
    }
    for pair in id.chain.windows(2) {
        if let [child, parent] = pair {
            if parent.issued(child) != X509VerifyResult::OK {
                return Err(bad(
                    format!(
                        "the chain is out of order: {} did not issue {}",
                        certs::subject(parent),
                        certs::subject(child)
                    ),
                    "list the leaf first, then each issuer in order (SPEC T5)",
                ));
            }
        }
    }
    if id.chain.len() == 1 && leaf.issued(leaf) != X509VerifyResult::OK {
        tracing::warn!(
            subject = %subject,
            "server certificate configured without its intermediates: peers that do not hold its issuer will refuse it (SPEC T5)"
        );
    }
    let rsa_only = profile
        .suites
        .iter()
        .all(|s| s.kx == KeyExchange::Rsa || (s.kx != KeyExchange::Tls13 && s.iana.contains("_RSA_WITH_")));
    let is_rsa = leaf.public_key().map(|k| k.id() == Id::RSA).unwrap_or(false);
    if rsa_only && !is_rsa {
        return Err(bad(
            format!("profile {} has only RSA-signed suites but the key is not RSA", profile.name),
            "use an RSA certificate for this profile (SPEC T2)",
        ));
    }
    Ok(())
}

fn context_for(
    cfg: &ServerConfig,
    id: &Identity,
    alternates: Vec<(Vec<String>, SslContext)>,
) -> Result<SslContext, TlsError> {
    let p = &cfg.profile;
    let mut b: SslContextBuilder = context::builder(p, Role::Server, &cfg.observe)?;
    let leaf = id.leaf().ok_or_else(|| TlsError::BadIdentity {
        subject: "(none)".into(),
        why: "no certificate".into(),
        fix: "configure the leaf certificate".into(),
    })?;
    b.set_certificate(leaf).map_err(TlsError::ossl("the server certificate"))?;
    for c in id.chain.iter().skip(1) {
        b.add_extra_chain_cert(c.clone()).map_err(TlsError::ossl("an intermediate certificate"))?;
    }
    b.set_private_key(&id.key).map_err(TlsError::ossl("the server key"))?;
    b.check_private_key().map_err(|_| TlsError::KeyMismatch { subject: certs::subject(leaf) })?;
    let mode = match p.client_cert {
        ClientCertPolicy::None => SslVerifyMode::NONE,
        ClientCertPolicy::Request => SslVerifyMode::PEER,
        ClientCertPolicy::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
    };
    b.set_verify(mode);
    if p.client_cert != ClientCertPolicy::None {
        let anchors = cfg.client_trust.as_ref().ok_or_else(|| TlsError::Config {
            file: format!("profile {}", p.name),
            line: 0,
            message: "the profile asks for client certificates but no client trust anchors are configured".into(),
            fix: "configure the roots that issue the peers' client certificates".into(),
        })?;
        b.set_verify_cert_store(anchors.to_store()?).map_err(TlsError::ossl("the client trust store"))?;
        // EKU is checked by us per profile (T11): OpenSSL's purpose check would demand
        // clientAuth of every client.
        let purpose = if p.require_client_auth_eku { X509PurposeId::SSL_CLIENT } else { X509PurposeId::ANY };
        b.verify_param_mut().set_purpose(purpose).map_err(TlsError::ossl("the verification purpose"))?;
        // Distinct session id context so sessions of different trunks are not mixed.
        b.set_session_id_context(p.name.as_bytes()).map_err(TlsError::ossl("the session id context"))?;
    }
    if !alternates.is_empty() {
        b.set_servername_callback(move |ssl, _alert| {
            let Some(name) = ssl.servername(NameType::HOST_NAME).map(str::to_ascii_lowercase) else {
                return Ok(());
            };
            let found = alternates.iter().find(|(names, _)| {
                names.iter().any(|n| {
                    n == &name
                        || n.strip_prefix("*.")
                            .is_some_and(|suffix| name.split_once('.').is_some_and(|(_, rest)| rest == suffix))
                })
            });
            if let Some((_, ctx)) = found {
                // On failure the default certificate stays: the client's name check decides.
                let _ = ssl.set_ssl_context(ctx);
            }
            Ok(())
        });
    }
    let ctx = b.build();
    context::check_exact_suites(&ctx, p)?;
    Ok(ctx)
}

fn build_state(cfg: &ServerConfig) -> Result<ServerState, TlsError> {
    let Some((default, others)) = cfg.identities.split_first() else {
        return Err(TlsError::BadIdentity {
            subject: "(none)".into(),
            why: "no server certificate configured".into(),
            fix: "configure at least one certificate, its chain and key".into(),
        });
    };
    for id in &cfg.identities {
        check_identity(&cfg.profile, id)?;
    }
    let mut alternates = Vec::new();
    for id in others {
        alternates.push((id.names(), context_for(cfg, id, Vec::new())?));
    }
    let ctx = context_for(cfg, default, alternates)?;
    let mut peer_trust = HashMap::new();
    for (ip, anchors) in &cfg.peer_trust {
        anchors.to_store()?; // fail now, not at the first connection
        peer_trust.insert(*ip, anchors.clone());
    }
    let p = &cfg.profile;
    let check = if p.client_cert == ClientCertPolicy::None {
        None
    } else {
        let mut allowed = p.allowed_subjects.clone();
        allowed.extend(cfg.allowed_subjects.iter().cloned());
        Some(PeerCheck {
            role: Role::Server,
            expected: None,
            wildcards: p.wildcards,
            allowed,
            require_server_auth: false,
            require_client_auth: p.require_client_auth_eku,
            revocation: p.revocation,
            crls: context::crl_store(p)?,
            warn_days: p.expiry_warning_days,
        })
    };
    Ok(ServerState {
        ctx,
        profile: cfg.profile.clone(),
        peer_trust,
        check,
        debug: cfg.observe.debug,
        debug_peers: cfg.debug_peers.clone(),
    })
}

impl TlsServer {
    /// Build and check a server policy.
    pub fn new(cfg: &ServerConfig) -> Result<TlsServer, TlsError> {
        Ok(TlsServer { state: RwLock::new(Arc::new(build_state(cfg)?)) })
    }

    /// Replace certificates, keys, trust and CRLs. Connections already open keep the material
    /// they started with; new connections use the new one. When the new configuration does not
    /// validate, the old one stays in force and the error says why.
    pub fn reload(&self, cfg: &ServerConfig) -> Result<(), TlsError> {
        match build_state(cfg) {
            Ok(s) => {
                if let Ok(mut w) = self.state.write() {
                    *w = Arc::new(s);
                }
                tracing::info!(profile = %cfg.profile.name, "TLS server material reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::warn!("TLS server reload refused, keeping the previous material: {e}");
                Err(e)
            }
        }
    }

    fn current(&self) -> Option<Arc<ServerState>> {
        self.state.read().ok().map(|g| g.clone())
    }

    /// The profile in force.
    pub fn profile(&self) -> Option<Profile> {
        self.current().map(|s| s.profile.clone())
    }

    fn prepare(
        &self,
        peer_ip: Option<IpAddr>,
        peer: &str,
    ) -> Result<(Ssl, Arc<Recorder>, Arc<ServerState>), HandshakeError> {
        let setup = |e: String| context::early_failure(peer, Role::Server, FailureReason::Other { detail: e });
        let st = self.current().ok_or_else(|| setup("server state unavailable".into()))?;
        let mut ssl = Ssl::new(&st.ctx).map_err(|e| setup(e.to_string()))?;
        let debug = st.debug || peer_ip.is_some_and(|ip| st.debug_peers.contains(&ip));
        let rec = Recorder::attach(&mut ssl, Role::Server, debug);
        if let Some(check) = &st.check {
            if let Some(anchors) = peer_ip.and_then(|ip| st.peer_trust.get(&ip)) {
                let store = anchors.to_store().map_err(|e| setup(e.to_string()))?;
                ssl.set_verify_cert_store(store).map_err(|e| setup(e.to_string()))?;
            }
            let mode = match st.profile.client_cert {
                ClientCertPolicy::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
                _ => SslVerifyMode::PEER,
            };
            let check = check.clone();
            let r = rec.clone();
            ssl.set_verify_callback(mode, move |ok, ctx| check.callback(&r, ok, ctx));
        }
        Ok((ssl, rec, st))
    }

    /// Accept a TLS connection on an async stream (the edge's listener on 5061). `peer_ip`
    /// selects a per-peer trustpoint; `peer` names the peer in logs and errors. Put a timeout
    /// around this call.
    pub async fn accept<S>(
        &self,
        stream: S,
        peer_ip: Option<IpAddr>,
        peer: &str,
    ) -> Result<(tokio_openssl::SslStream<S>, ConnectionInfo), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (ssl, rec, st) = self.prepare(peer_ip, peer)?;
        let mut s = tokio_openssl::SslStream::new(ssl, stream)
            .map_err(|e| context::early_failure(peer, Role::Server, FailureReason::Other { detail: e.to_string() }))?;
        let r = Pin::new(&mut s).accept().await;
        let info = context::finish(r, s.ssl(), &rec, &st.profile, peer)?;
        Ok((s, info))
    }

    /// Accept on a blocking stream (tests, benchmarks, tools). Set socket timeouts first.
    pub fn accept_blocking<S: Read + Write>(
        &self,
        stream: S,
        peer_ip: Option<IpAddr>,
        peer: &str,
    ) -> Result<(openssl::ssl::SslStream<S>, ConnectionInfo), HandshakeError> {
        let (ssl, rec, st) = self.prepare(peer_ip, peer)?;
        let mut s = openssl::ssl::SslStream::new(ssl, stream)
            .map_err(|e| context::early_failure(peer, Role::Server, FailureReason::Other { detail: e.to_string() }))?;
        let r = s.accept();
        let info = context::finish(r, s.ssl(), &rec, &st.profile, peer)?;
        Ok((s, info))
    }
}
