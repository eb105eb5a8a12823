//! The client side: connect to a trunk peer by host name (SIP URI host or SRV domain, S4),
//! verify its chain against the configured roots only (T6) or a per-peer trustpoint (T4), its
//! name (T7), dates (T8), CRL (T9) and EKU (T11). On byoc-cloud it presents no certificate
//! even when asked (T3).

use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use openssl::ssl::{Ssl, SslContext, SslVerifyMode};
use openssl::x509::X509PurposeId;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::certs::{self, Identity};
use crate::context::{self, ObserveOptions};
use crate::error::{FailureReason, HandshakeError, TlsError};
use crate::observe::{ConnectionInfo, Recorder, Role};
use crate::profile::{PeerName, Profile};
use crate::trust::TrustAnchors;
use crate::verify::PeerCheck;

/// Everything a TLS client needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The profile.
    pub profile: Profile,
    /// The roots we trust for servers (T6).
    pub trust: TrustAnchors,
    /// Our client certificate, presented only on profiles that say so (mutual trunks, T4).
    pub identity: Option<Identity>,
    /// Debug and key log.
    pub observe: ObserveOptions,
}

impl ClientConfig {
    /// A config with trust anchors and nothing else.
    pub fn new(profile: Profile, trust: TrustAnchors) -> ClientConfig {
        ClientConfig { profile, trust, identity: None, observe: ObserveOptions::default() }
    }
}

/// Per-peer options for one connection.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// Names the server certificate's CN/SAN must include one of (T4), in addition to the
    /// profile's.
    pub allowed_subjects: Vec<String>,
    /// Trust anchors for this peer instead of the configured ones (T4 trustpoint).
    pub trust: Option<TrustAnchors>,
    /// Debug-log this connection's handshake even when the client's debug mode is off (O2).
    pub debug: bool,
}

struct ClientState {
    ctx: SslContext,
    profile: Profile,
    crls: Arc<crate::crl::CrlStore>,
    debug: bool,
}

/// A TLS client policy; cheap to share among tasks.
pub struct TlsClient {
    state: RwLock<Arc<ClientState>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

fn build_state(cfg: &ClientConfig) -> Result<ClientState, TlsError> {
    let p = &cfg.profile;
    let mut b = context::builder(p, Role::Client, &cfg.observe)?;
    b.set_verify(SslVerifyMode::PEER);
    b.set_verify_cert_store(cfg.trust.to_store()?).map_err(TlsError::ossl("the trust store"))?;
    let purpose = if p.require_server_auth_eku { X509PurposeId::SSL_SERVER } else { X509PurposeId::ANY };
    b.verify_param_mut().set_purpose(purpose).map_err(TlsError::ossl("the verification purpose"))?;
    if p.present_client_cert {
        if let Some(id) = &cfg.identity {
            let leaf = id.leaf().ok_or_else(|| TlsError::BadIdentity {
                subject: "(none)".into(),
                why: "no client certificate".into(),
                fix: "configure the client certificate".into(),
            })?;
            b.set_certificate(leaf).map_err(TlsError::ossl("the client certificate"))?;
            for c in id.chain.iter().skip(1) {
                b.add_extra_chain_cert(c.clone()).map_err(TlsError::ossl("an intermediate certificate"))?;
            }
            b.set_private_key(&id.key).map_err(TlsError::ossl("the client key"))?;
            b.check_private_key().map_err(|_| TlsError::KeyMismatch { subject: certs::subject(leaf) })?;
        }
    }
    let ctx = b.build();
    context::check_exact_suites(&ctx, p)?;
    Ok(ClientState { ctx, profile: p.clone(), crls: context::crl_store(p)?, debug: cfg.observe.debug })
}

impl TlsClient {
    /// Build and check a client policy.
    pub fn new(cfg: &ClientConfig) -> Result<TlsClient, TlsError> {
        Ok(TlsClient { state: RwLock::new(Arc::new(build_state(cfg)?)) })
    }

    /// Replace trust, client certificate and CRLs; a configuration that does not validate
    /// leaves the old one in force and the error says why. Open connections are not touched.
    pub fn reload(&self, cfg: &ClientConfig) -> Result<(), TlsError> {
        match build_state(cfg) {
            Ok(s) => {
                if let Ok(mut w) = self.state.write() {
                    *w = Arc::new(s);
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!("TLS client reload refused, keeping the previous material: {e}");
                Err(e)
            }
        }
    }

    /// The profile in force.
    pub fn profile(&self) -> Option<Profile> {
        self.state.read().ok().map(|s| s.profile.clone())
    }

    fn prepare(
        &self,
        target: &str,
        opts: &PeerOptions,
    ) -> Result<(Ssl, Arc<Recorder>, Arc<ClientState>), HandshakeError> {
        let setup = |r: FailureReason| context::early_failure(target, Role::Client, r);
        let st = self
            .state
            .read()
            .map(|s| s.clone())
            .map_err(|_| setup(FailureReason::Other { detail: "client state unavailable".into() }))?;
        let name = st.profile.check_target(target).map_err(|e| match e {
            TlsError::IpTarget { target, .. } => setup(FailureReason::IpIdentityRefused { target }),
            other => setup(FailureReason::Other { detail: other.to_string() }),
        })?;
        let other = |e: openssl::error::ErrorStack| setup(FailureReason::Other { detail: e.to_string() });
        let mut ssl = Ssl::new(&st.ctx).map_err(other)?;
        if let PeerName::Dns(host) = &name {
            ssl.set_hostname(host).map_err(other)?;
        }
        if let Some(anchors) = &opts.trust {
            let store = anchors.to_store().map_err(|e| setup(FailureReason::Other { detail: e.to_string() }))?;
            ssl.set_verify_cert_store(store).map_err(other)?;
        }
        let rec = Recorder::attach(&mut ssl, Role::Client, st.debug || opts.debug);
        let p = &st.profile;
        let mut allowed = p.allowed_subjects.clone();
        allowed.extend(opts.allowed_subjects.iter().cloned());
        let check = PeerCheck {
            role: Role::Client,
            expected: Some(name),
            wildcards: p.wildcards,
            allowed,
            require_server_auth: p.require_server_auth_eku,
            require_client_auth: false,
            revocation: p.revocation,
            crls: st.crls.clone(),
            warn_days: p.expiry_warning_days,
        };
        let r = rec.clone();
        ssl.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| check.callback(&r, ok, ctx));
        Ok((ssl, rec, st))
    }

    /// Connect over an async stream to `target` (the host name from the SIP URI or SRV domain;
    /// an IP address only on profiles that allow IP identities). Put a timeout around this call.
    pub async fn connect<S>(
        &self,
        target: &str,
        opts: &PeerOptions,
        stream: S,
    ) -> Result<(tokio_openssl::SslStream<S>, ConnectionInfo), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (ssl, rec, st) = self.prepare(target, opts)?;
        let mut s = tokio_openssl::SslStream::new(ssl, stream).map_err(|e| {
            context::early_failure(target, Role::Client, FailureReason::Other { detail: e.to_string() })
        })?;
        let r = Pin::new(&mut s).connect().await;
        let info = context::finish(r, s.ssl(), &rec, &st.profile, target)?;
        Ok((s, info))
    }

    /// Connect over a blocking stream (tests, benchmarks, tools). Set socket timeouts first.
    pub fn connect_blocking<S: Read + Write>(
        &self,
        target: &str,
        opts: &PeerOptions,
        stream: S,
    ) -> Result<(openssl::ssl::SslStream<S>, ConnectionInfo), HandshakeError> {
        let (ssl, rec, st) = self.prepare(target, opts)?;
        let mut s = openssl::ssl::SslStream::new(ssl, stream).map_err(|e| {
            context::early_failure(target, Role::Client, FailureReason::Other { detail: e.to_string() })
        })?;
        let r = s.connect();
        let info = context::finish(r, s.ssl(), &rec, &st.profile, target)?;
        Ok((s, info))
    }
}
