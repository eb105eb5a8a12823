//! Pieces shared by the server and client sides: an OpenSSL context from a profile, the key
//! log, and the classification of a failed handshake into a [`FailureReason`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::{SslContextBuilder, SslContextRef, SslMethod, SslOptions, SslRef};

use crate::crl::CrlStore;
use crate::error::{FailureReason, HandshakeError, TlsError};
use crate::observe::{self, ConnectionInfo, Recorder, Role};
use crate::profile::{Profile, Version};
use crate::suites::{self, KeyExchange};

/// Observation options (SPEC O2).
#[derive(Debug, Clone, Default)]
pub struct ObserveOptions {
    /// Log handshake messages, states and errors per connection at DEBUG level.
    pub debug: bool,
    /// Append NSS key-log lines (SSLKEYLOGFILE format) to this file, created with mode 0600.
    /// Anyone with this file can decrypt captured traffic: enable it only while debugging.
    pub keylog: Option<PathBuf>,
}

/// Open (create, append) a key log file with mode 0600.
pub(crate) fn open_keylog(path: &PathBuf) -> Result<Arc<Mutex<std::fs::File>>, TlsError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| TlsError::KeyLog { path: path.clone(), source };
    let f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(err)?;
    // An existing file keeps its mode on open: tighten it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(Arc::new(Mutex::new(f)))
}

/// A context builder with the profile's versions, suites, groups, options and observation
/// callbacks (no certificates, no verification).
pub(crate) fn builder(profile: &Profile, role: Role, observe: &ObserveOptions) -> Result<SslContextBuilder, TlsError> {
    let method = match role {
        Role::Server => SslMethod::tls_server(),
        Role::Client => SslMethod::tls_client(),
    };
    let mut b = SslContextBuilder::new(method).map_err(TlsError::ossl("a TLS context"))?;
    if profile.min_version < Version::Tls12 {
        // TLS 1.0/1.1 need SHA-1, which OpenSSL 3 allows only at security level 0.
        b.set_security_level(0);
    }
    b.set_min_proto_version(Some(profile.min_version.openssl())).map_err(TlsError::ossl("the minimum TLS version"))?;
    b.set_max_proto_version(Some(profile.max_version.openssl())).map_err(TlsError::ossl("the maximum TLS version"))?;
    let list = profile.openssl_cipher_list();
    if !list.is_empty() {
        b.set_cipher_list(&list).map_err(TlsError::ossl(format!("cipher list {list}")))?;
    }
    b.set_ciphersuites(&profile.openssl_tls13_suites()).map_err(TlsError::ossl("TLS 1.3 suites"))?;
    if !profile.groups.is_empty() {
        let groups = profile.groups.join(":");
        b.set_groups_list(&groups).map_err(TlsError::ossl(format!("groups {groups}")))?;
    }
    let mut opts = SslOptions::NO_COMPRESSION | SslOptions::NO_RENEGOTIATION;
    if role == Role::Server {
        opts |= SslOptions::CIPHER_SERVER_PREFERENCE;
    }
    b.set_options(opts);
    // Idle trunk connections are the common case (issue 9: memory per idle connection): give
    // the ~34 KiB of record buffers back to the allocator whenever a connection has nothing
    // buffered.
    b.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
    // Once the handshake is done (OpenSSL ignores read-ahead before), read everything the
    // socket holds in one `recv` instead of a 5-byte record header and then its body: half
    // the receive system calls of a SIP message, +18 % OPTIONS per core (docs/bench.md).
    b.set_read_ahead(true);
    crate::ffi::install_callbacks(&mut b);
    if let Some(path) = &observe.keylog {
        let file = open_keylog(path)?;
        b.set_keylog_callback(move |_ssl, line| {
            if let Ok(mut f) = file.lock() {
                let _ = writeln!(f, "{line}");
            }
        });
    }
    Ok(b)
}

/// Check that OpenSSL enables exactly the profile's suites (T2: "exactly"): a suite dropped
/// by the version range, the security level or the OpenSSL build is an error, not a surprise.
pub(crate) fn check_exact_suites(ctx: &SslContextRef, profile: &Profile) -> Result<(), TlsError> {
    let ssl = openssl::ssl::Ssl::new(ctx).map_err(TlsError::ossl("a test connection"))?;
    let enabled = crate::ffi::supported_cipher_names(&ssl);
    let wanted: Vec<&str> = profile.suites.iter().map(|s| s.openssl).collect();
    let missing: Vec<&str> = wanted.iter().filter(|w| !enabled.iter().any(|e| e == *w)).copied().collect();
    let extra: Vec<&String> = enabled.iter().filter(|e| !wanted.contains(&e.as_str())).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let name = |o: &str| suites::by_openssl(o).map_or(o.to_string(), |s| s.iana.to_string());
    Err(TlsError::Config {
        file: format!("profile {}", profile.name),
        line: 0,
        message: format!(
            "OpenSSL would not use exactly the listed suites: not enabled [{}], enabled but not listed [{}]",
            missing.iter().map(|m| name(m)).collect::<Vec<_>>().join(", "),
            extra.iter().map(|e| name(e)).collect::<Vec<_>>().join(", ")
        ),
        fix: "list only suites usable with the profile's versions (e.g. no SHA-256/GCM suites with TLS 1.1)".into(),
    })
}

/// The CRL store a profile asks for.
pub(crate) fn crl_store(profile: &Profile) -> Result<Arc<CrlStore>, TlsError> {
    Ok(Arc::new(CrlStore::from_files(
        &profile.crl_files,
        Duration::from_millis(profile.crl_fetch_timeout_ms),
        profile.max_crl_bytes,
    )?))
}

// OpenSSL SSL library reason codes (include/openssl/sslerr.h, stable across 3.x).
const NO_SHARED_CIPHER: i32 = 193;
const NO_SHARED_GROUPS: i32 = 410;
const NO_SUITABLE_KEY_SHARE: i32 = 101;
const WRONG_CURVE: i32 = 378;
const UNSUPPORTED_PROTOCOL: i32 = 258;
const VERSION_TOO_LOW: i32 = 396;
const VERSION_TOO_HIGH: i32 = 166;
const WRONG_VERSION_NUMBER: i32 = 267;
const NO_PROTOCOLS_AVAILABLE: i32 = 191;
const PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;
const CERTIFICATE_VERIFY_FAILED: i32 = 134;
const ERR_LIB_SSL: i32 = 20;

fn wrong_curve(profile: &Profile, rec: &Recorder) -> Option<FailureReason> {
    let (client_suites, client_groups) = rec.with(|s| (s.client_suites.clone(), s.client_groups.clone()))?;
    let ours =
        |kx: &dyn Fn(KeyExchange) -> bool| profile.suites.iter().any(|s| kx(s.kx) && client_suites.contains(&s.id));
    let shared_curve_suites = ours(&|k| matches!(k, KeyExchange::Ecdhe | KeyExchange::Tls13));
    let shared_other = ours(&|k| matches!(k, KeyExchange::Rsa | KeyExchange::Dhe));
    let our_groups: Vec<u16> = profile.groups.iter().filter_map(|g| suites::group_by_name(g).map(|g| g.id)).collect();
    let shared_group = client_groups.iter().any(|g| our_groups.contains(g));
    if shared_curve_suites && !shared_other && !shared_group {
        Some(FailureReason::WrongCurve { offered: client_groups.iter().map(|g| suites::group_name(*g)).collect() })
    } else {
        None
    }
}

/// A reason from the last fatal alert the peer sent, if any.
pub(crate) fn from_alerts(rec: &Recorder) -> Option<FailureReason> {
    let (alert, req_received) = rec
        .with(|s| (s.alerts_received.iter().rev().find(|a| a.level == 2).cloned(), s.cert_request_received))
        .unwrap_or((None, false));
    let a = alert?;
    Some(match a.code {
        70 => FailureReason::ProtocolVersion { detail: "the peer answered protocol_version".into() },
        116 => FailureReason::PeerCertRequired,
        40 if req_received && rec.role == Role::Client => FailureReason::PeerCertRequired,
        40 | 71 => FailureReason::NoSharedCipher {
            detail: format!("the peer answered {}: no suite or curve in common", a.name),
        },
        _ => FailureReason::PeerAlert { alert: format!("{} ({})", a.name, a.code) },
    })
}

/// After a handshake that completed, the first read or write can still fail because the peer
/// refused us late (TLS 1.3: a server checks the client certificate after the client has
/// finished). Call this on such a failure to get the reason from the peer's alert.
pub fn failure_after_handshake(ssl: &SslRef) -> Option<FailureReason> {
    let rec = observe::recorder(ssl)?;
    from_alerts(rec)
}

/// Classify a failed handshake.
pub(crate) fn classify(err: &openssl::ssl::Error, ssl: &SslRef, rec: &Recorder, profile: &Profile) -> FailureReason {
    if let Some(Some(r)) = rec.with(|s| s.verify_failure.clone()) {
        return r;
    }
    let stack_reasons: Vec<(i32, String)> = err
        .ssl_error()
        .map(|st| {
            st.errors()
                .iter()
                .filter(|e| e.library_code() == ERR_LIB_SSL)
                .map(|e| (e.reason_code(), e.reason().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (code, text) in &stack_reasons {
        match *code {
            NO_SHARED_CIPHER => {
                return wrong_curve(profile, rec).unwrap_or(FailureReason::NoSharedCipher {
                    detail: "the client offered none of the profile's suites".into(),
                })
            }
            NO_SHARED_GROUPS | NO_SUITABLE_KEY_SHARE | WRONG_CURVE => {
                let offered =
                    rec.with(|s| s.client_groups.iter().map(|g| suites::group_name(*g)).collect()).unwrap_or_default();
                return FailureReason::WrongCurve { offered };
            }
            UNSUPPORTED_PROTOCOL
            | VERSION_TOO_LOW
            | VERSION_TOO_HIGH
            | WRONG_VERSION_NUMBER
            | NO_PROTOCOLS_AVAILABLE => return FailureReason::ProtocolVersion { detail: text.clone() },
            PEER_DID_NOT_RETURN_A_CERTIFICATE => return FailureReason::PeerCertRequired,
            CERTIFICATE_VERIFY_FAILED => {
                return FailureReason::BadCertificate { detail: ssl.verify_result().error_string().to_string() }
            }
            _ => {}
        }
    }
    if let Some(r) = from_alerts(rec) {
        return r;
    }
    if let Some(io) = err.io_error() {
        return FailureReason::Io { detail: io.to_string() };
    }
    if stack_reasons.is_empty() && err.code() == openssl::ssl::ErrorCode::SYSCALL {
        return FailureReason::Io { detail: "the peer closed the connection".into() };
    }
    FailureReason::Other { detail: err.to_string() }
}

/// Turn a handshake result into ConnectionInfo or a classified error, and log the outcome.
pub(crate) fn finish(
    result: Result<(), openssl::ssl::Error>,
    ssl: &SslRef,
    rec: &Recorder,
    profile: &Profile,
    peer: &str,
) -> Result<ConnectionInfo, HandshakeError> {
    match result {
        Ok(()) => {
            let info = observe::info(ssl, rec, None);
            tracing::debug!(
                conn = info.id, %peer,
                version = info.version.as_deref().unwrap_or("?"),
                cipher = info.cipher.as_deref().unwrap_or("?"),
                group = info.group.as_deref().unwrap_or("-"),
                "TLS handshake complete"
            );
            Ok(info)
        }
        Err(e) => {
            let reason = classify(&e, ssl, rec, profile);
            let info = observe::info(ssl, rec, Some(&reason));
            tracing::info!(conn = info.id, %peer, reason = reason.code(), "TLS handshake failed: {reason}");
            if rec.debug {
                tracing::debug!(conn = info.id, "OpenSSL: {e}");
            }
            Err(HandshakeError { peer: peer.to_string(), reason, info: Box::new(info) })
        }
    }
}

/// A handshake that failed before it started (bad target, setup error).
pub(crate) fn early_failure(peer: &str, role: Role, reason: FailureReason) -> HandshakeError {
    HandshakeError {
        peer: peer.to_string(),
        info: Box::new(ConnectionInfo {
            id: 0,
            role,
            version: None,
            cipher: None,
            group: None,
            sni: None,
            peer_chain: Vec::new(),
            verification: crate::observe::Verification::Failed(reason.clone()),
            certificate_request_sent: false,
            certificate_request_received: false,
            alerts_sent: Vec::new(),
            alerts_received: Vec::new(),
            client_offered_groups: Vec::new(),
            warnings: Vec::new(),
        }),
        reason,
    }
}
