//! Peer certificate verification (SPEC T5–T9, T11) in OpenSSL's verify callback.
//!
//! OpenSSL builds and checks the chain against the trust store using only the certificates the
//! peer sent (no fetching of intermediates, T5), and checks signatures and dates (T8). Its
//! errors are classified here into [`FailureReason`]s. On the leaf, after OpenSSL is satisfied,
//! we add our own checks: the host name (RFC 5922/6125, T7), the extended key usage (T11), the
//! allowed subjects (T4), and revocation by CRL for every certificate below the root (T9).
//!
//! An OpenSSL "unable to get local issuer" error is classified by where it happens: at the leaf
//! it means the peer did not send its intermediate (IncompleteChain, T5: public CAs never sign
//! leaves directly from a root); at an intermediate it means the root is not trusted (UnknownCa).

use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::x509::{X509ExtendedKeyUsage, X509Ref, X509StoreContextRef};

use crate::certs;
use crate::crl::{CrlCheck, CrlStore};
use crate::error::FailureReason;
use crate::ffi::{verify_result, VerifyCode};
use crate::names;
use crate::observe::{Recorder, Role};
use crate::profile::{PeerName, RevocationMode};

/// What to check of the peer, for one connection.
#[derive(Debug, Clone)]
pub(crate) struct PeerCheck {
    /// Our role (a client verifies a server and vice versa).
    pub role: Role,
    /// The name we connected to (client role).
    pub expected: Option<PeerName>,
    pub wildcards: bool,
    pub allowed: Vec<String>,
    pub require_server_auth: bool,
    pub require_client_auth: bool,
    pub revocation: RevocationMode,
    pub crls: Arc<CrlStore>,
    pub warn_days: u32,
}

/// Classify an OpenSSL verification error at the current certificate.
pub(crate) fn classify_x509(ctx: &X509StoreContextRef) -> FailureReason {
    let err = ctx.error();
    let code = err.as_raw();
    let depth = ctx.error_depth();
    let (subject, issuer, nb, na) = match ctx.current_cert() {
        Some(c) => (
            certs::subject(c),
            certs::name_to_string(c.issuer_name()),
            c.not_before().to_string(),
            c.not_after().to_string(),
        ),
        None => Default::default(),
    };
    use openssl_sys as f;
    match code {
        f::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY | f::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT => {
            if depth == 0 {
                FailureReason::IncompleteChain { subject, issuer }
            } else {
                FailureReason::UnknownCa { subject, issuer }
            }
        }
        f::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT | f::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => {
            FailureReason::UnknownCa { subject, issuer }
        }
        f::X509_V_ERR_CERT_HAS_EXPIRED => FailureReason::Expired { subject, not_after: na },
        f::X509_V_ERR_CERT_NOT_YET_VALID => FailureReason::NotYetValid { subject, not_before: nb },
        f::X509_V_ERR_CERT_REVOKED => {
            FailureReason::Revoked { subject, serial: ctx.current_cert().map(certs::serial_hex).unwrap_or_default() }
        }
        f::X509_V_ERR_UNABLE_TO_GET_CRL
        | f::X509_V_ERR_CRL_HAS_EXPIRED
        | f::X509_V_ERR_CRL_NOT_YET_VALID
        | f::X509_V_ERR_CRL_SIGNATURE_FAILURE => {
            FailureReason::CrlUnavailable { subject, detail: err.error_string().to_string() }
        }
        f::X509_V_ERR_INVALID_PURPOSE => FailureReason::WrongEku { subject, required: "serverAuth" },
        f::X509_V_ERR_HOSTNAME_MISMATCH => {
            FailureReason::NameMismatch { expected: String::new(), presented: Vec::new() }
        }
        _ => FailureReason::BadCertificate { detail: format!("{} (at depth {depth}, {subject})", err.error_string()) },
    }
}

fn now_plus_days(days: u32) -> Option<Asn1Time> {
    Asn1Time::days_from_now(days).ok()
}

impl PeerCheck {
    /// The verify callback body.
    pub(crate) fn callback(&self, rec: &Recorder, ok: bool, ctx: &mut X509StoreContextRef) -> bool {
        if !ok {
            let reason = match classify_x509(ctx) {
                FailureReason::WrongEku { subject, .. } if self.role == Role::Server => {
                    FailureReason::WrongEku { subject, required: "clientAuth" }
                }
                r => r,
            };
            if rec.debug {
                tracing::debug!(conn = rec.id, "verify error: {reason}");
            }
            rec.fail(reason);
            return false;
        }
        if self.warn_days > 0 {
            if let (Some(c), Some(limit)) = (ctx.current_cert(), now_plus_days(self.warn_days)) {
                if c.not_after().compare(&limit).is_ok_and(|o| o == std::cmp::Ordering::Less) {
                    rec.warn(format!(
                        "peer certificate {} expires {} (within {} days, SPEC T8)",
                        certs::subject(c),
                        c.not_after(),
                        self.warn_days
                    ));
                }
            }
        }
        if ctx.error_depth() != 0 {
            return true;
        }
        match self.check_leaf(rec, ctx) {
            Ok(()) => true,
            Err((reason, code)) => {
                if rec.debug {
                    tracing::debug!(conn = rec.id, "verify error: {reason}");
                }
                ctx.set_error(verify_result(code));
                rec.fail(reason);
                false
            }
        }
    }

    fn check_leaf(&self, rec: &Recorder, ctx: &X509StoreContextRef) -> Result<(), (FailureReason, VerifyCode)> {
        let Some(leaf) = ctx.current_cert() else {
            return Err((
                FailureReason::BadCertificate { detail: "no leaf certificate".into() },
                VerifyCode::Application,
            ));
        };
        let subject = certs::subject(leaf);
        // T11: EKU of the peer's role.
        let (needed, flag, name) = match self.role {
            Role::Client => (self.require_server_auth, X509ExtendedKeyUsage::SSL_SERVER, "serverAuth"),
            Role::Server => (self.require_client_auth, X509ExtendedKeyUsage::SSL_CLIENT, "clientAuth"),
        };
        if needed && !leaf.extended_key_usage().is_some_and(|e| e.contains(flag)) {
            return Err((FailureReason::WrongEku { subject, required: name }, VerifyCode::InvalidPurpose));
        }
        // T7: the name we connected to.
        if let Some(expected) = &self.expected {
            if let Err(presented) = names::check_host(leaf, expected, self.wildcards) {
                return Err((
                    FailureReason::NameMismatch { expected: expected.as_string(), presented },
                    VerifyCode::HostnameMismatch,
                ));
            }
        }
        // T4: allowed subjects.
        if let Err(presented) = names::check_allowed(leaf, &self.allowed) {
            return Err((
                FailureReason::PeerSubjectNotAllowed { presented, allowed: self.allowed.clone() },
                VerifyCode::Application,
            ));
        }
        // T9: revocation of every certificate below the root.
        if self.revocation != RevocationMode::Off {
            if let Some(chain) = ctx.chain() {
                let list: Vec<&X509Ref> = chain.iter().collect();
                for pair in list.windows(2) {
                    let (Some(cert), Some(issuer)) = (pair.first(), pair.get(1)) else {
                        continue;
                    };
                    match self.crls.check(cert, issuer) {
                        CrlCheck::Good => {}
                        CrlCheck::Revoked => {
                            return Err((
                                FailureReason::Revoked {
                                    subject: certs::subject(cert),
                                    serial: certs::serial_hex(cert),
                                },
                                VerifyCode::Revoked,
                            ))
                        }
                        CrlCheck::Unavailable(detail) => {
                            if self.revocation == RevocationMode::Hard {
                                return Err((
                                    FailureReason::CrlUnavailable { subject: certs::subject(cert), detail },
                                    VerifyCode::UnableToGetCrl,
                                ));
                            }
                            rec.warn(format!(
                                "no CRL for {} ({detail}); accepted because revocation is soft",
                                certs::subject(cert)
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
