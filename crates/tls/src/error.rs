//! Errors: [`TlsError`] for configuration and loading, [`FailureReason`] for handshakes.
//!
//! Every handshake failure is classified into one [`FailureReason`] (SPEC DESIGN "fail closed,
//! explain loudly"): each variant has a one-line [`FailureReason::explanation`] and a
//! [`FailureReason::fix`] that an operator can act on.

use std::path::PathBuf;

/// An error while loading or checking configuration (profiles, trust tables, certificates, keys,
/// CRLs) or building a TLS context from it. Nothing here comes from a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A TOML file (profile or trust table) is not valid.
    #[error("{file}:{line}: {message}; fix: {fix}")]
    Config {
        /// The file that holds the error (or `<inline>`).
        file: String,
        /// 1-based line of the offending key or value (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
        /// What to change.
        fix: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}; fix: check the path and its permissions")]
    Read {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate, key or CRL could not be decoded.
    #[error(
        "{what} in {origin} is neither valid PEM nor DER ({detail}); fix: export it again as PEM or DER (SPEC T10)"
    )]
    Decode {
        /// "certificate", "private key", "CRL".
        what: &'static str,
        /// Where it came from (a path or a description).
        origin: String,
        /// OpenSSL's words.
        detail: String,
    },
    /// The private key does not belong to the leaf certificate.
    #[error("the private key does not match the certificate {subject}; fix: pair each certificate with the key it was issued for")]
    KeyMismatch {
        /// Subject of the leaf.
        subject: String,
    },
    /// A configured target is a bare IP address on a profile that refuses IP identities (T7).
    #[error("target {target} is an IP address, and profile {profile} does not accept an IP address as a peer identity (SPEC T7); fix: configure the host name from the SIP URI or SRV domain")]
    IpTarget {
        /// The configured target.
        target: String,
        /// The profile name.
        profile: String,
    },
    /// A configured target is not a usable host name.
    #[error("target {target:?} is not a valid host name ({why}); fix: {fix}")]
    BadTarget {
        /// The configured target.
        target: String,
        /// What is wrong.
        why: String,
        /// What to change.
        fix: String,
    },
    /// Entries of a trust table were not found in the bundle they were to be taken from.
    #[error("trust table {table}: {} root(s) not found in {bundle}: {}; fix: install or update the CA bundle (Debian: ca-certificates), or remove the entries from the table", missing.len(), missing.join(", "))]
    TrustMissing {
        /// Table name.
        table: String,
        /// Bundle path.
        bundle: String,
        /// `name (hash)` of each missing entry.
        missing: Vec<String>,
    },
    /// A trust store ended up empty: nothing would verify.
    #[error("trust store {what} holds no certificate; fix: point it at the PEM/DER root certificates to trust")]
    EmptyTrust {
        /// Which store.
        what: String,
    },
    /// A certificate is unusable as our own identity.
    #[error("certificate {subject}: {why}; fix: {fix}")]
    BadIdentity {
        /// Subject of the leaf.
        subject: String,
        /// What is wrong.
        why: String,
        /// What to change.
        fix: String,
    },
    /// The key log file could not be opened.
    #[error("cannot open key log {path}: {source}; fix: choose a writable path")]
    KeyLog {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// OpenSSL refused a setting.
    #[error("OpenSSL refused {what}: {source}")]
    OpenSsl {
        /// The setting.
        what: String,
        /// OpenSSL's error stack.
        source: openssl::error::ErrorStack,
    },
}

impl TlsError {
    pub(crate) fn ossl(what: impl Into<String>) -> impl FnOnce(openssl::error::ErrorStack) -> Self {
        let what = what.into();
        move |source| TlsError::OpenSsl { what, source }
    }
}

/// Why a handshake failed, from the point of view of the side that reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum FailureReason {
    /// The chain ends at a root we do not trust (T6).
    UnknownCa {
        /// Subject of the last certificate we could place.
        subject: String,
        /// Its issuer, which is not among our roots.
        issuer: String,
    },
    /// The peer sent its leaf without the intermediate(s) (T5).
    IncompleteChain {
        /// Subject of the certificate whose issuer is missing.
        subject: String,
        /// The missing issuer.
        issuer: String,
    },
    /// The certificate does not carry the host name we connected to (T7, RFC 5922/6125).
    NameMismatch {
        /// The name we expected.
        expected: String,
        /// The identities the certificate presents (SAN dNSName, SIP URI, or CN when no SAN).
        presented: Vec<String>,
    },
    /// The target is an IP address and the profile refuses IP identities (T7).
    IpIdentityRefused {
        /// The target.
        target: String,
    },
    /// A certificate in the chain has expired (T8).
    Expired {
        /// Its subject.
        subject: String,
        /// Its notAfter.
        not_after: String,
    },
    /// A certificate in the chain is not valid yet (T8).
    NotYetValid {
        /// Its subject.
        subject: String,
        /// Its notBefore.
        not_before: String,
    },
    /// A certificate in the chain is revoked (T9).
    Revoked {
        /// Its subject.
        subject: String,
        /// Its serial number (hex).
        serial: String,
    },
    /// No current CRL could be obtained under a hard revocation policy (T9).
    CrlUnavailable {
        /// Subject of the certificate that could not be checked.
        subject: String,
        /// Why (no distribution point, fetch failed, stale, bad signature…).
        detail: String,
    },
    /// The certificate lacks the extended key usage its role needs (T11).
    WrongEku {
        /// Its subject.
        subject: String,
        /// `serverAuth` or `clientAuth`.
        required: &'static str,
    },
    /// No cipher suite in common.
    NoSharedCipher {
        /// What we know about it.
        detail: String,
    },
    /// The only shared suites are ECDHE and there is no curve in common (T2: P-384 only).
    WrongCurve {
        /// The groups the client offered (names).
        offered: Vec<String>,
    },
    /// No protocol version in common (T2: TLS 1.2 only).
    ProtocolVersion {
        /// What we know about it.
        detail: String,
    },
    /// The server requires a client certificate and none was presented (T4).
    PeerCertRequired,
    /// The peer certificate's CN/SAN is not among the allowed subjects (T4).
    PeerSubjectNotAllowed {
        /// CN and SANs of the certificate.
        presented: Vec<String>,
        /// The configured allowed subjects.
        allowed: Vec<String>,
    },
    /// Any other certificate problem (bad signature, not a CA, path too long…).
    BadCertificate {
        /// OpenSSL's words.
        detail: String,
    },
    /// The peer aborted with an alert we cannot narrow down further.
    PeerAlert {
        /// The alert description.
        alert: String,
    },
    /// The connection broke (reset, EOF, timeout) during the handshake.
    Io {
        /// The error.
        detail: String,
    },
    /// Anything else OpenSSL reported.
    Other {
        /// OpenSSL's words.
        detail: String,
    },
}

impl FailureReason {
    /// A stable short name (the variant name), for logs, metrics and `check` output.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::UnknownCa { .. } => "UnknownCa",
            FailureReason::IncompleteChain { .. } => "IncompleteChain",
            FailureReason::NameMismatch { .. } => "NameMismatch",
            FailureReason::IpIdentityRefused { .. } => "IpIdentityRefused",
            FailureReason::Expired { .. } => "Expired",
            FailureReason::NotYetValid { .. } => "NotYetValid",
            FailureReason::Revoked { .. } => "Revoked",
            FailureReason::CrlUnavailable { .. } => "CrlUnavailable",
            FailureReason::WrongEku { .. } => "WrongEku",
            FailureReason::NoSharedCipher { .. } => "NoSharedCipher",
            FailureReason::WrongCurve { .. } => "WrongCurve",
            FailureReason::ProtocolVersion { .. } => "ProtocolVersion",
            FailureReason::PeerCertRequired => "PeerCertRequired",
            FailureReason::PeerSubjectNotAllowed { .. } => "PeerSubjectNotAllowed",
            FailureReason::BadCertificate { .. } => "BadCertificate",
            FailureReason::PeerAlert { .. } => "PeerAlert",
            FailureReason::Io { .. } => "Io",
            FailureReason::Other { .. } => "Other",
        }
    }

    /// One line saying what happened.
    pub fn explanation(&self) -> String {
        match self {
            FailureReason::UnknownCa { subject, issuer } => {
                format!("the chain of {subject} ends at {issuer}, which is not one of the trusted roots")
            }
            FailureReason::IncompleteChain { subject, issuer } => {
                format!("the peer sent only its leaf certificate ({subject}); its issuer {issuer} was not sent")
            }
            FailureReason::NameMismatch { expected, presented } => {
                format!("the certificate is for [{}], not for {expected}", presented.join(", "))
            }
            FailureReason::IpIdentityRefused { target } => {
                format!("the target {target} is an IP address, and this profile accepts only host names as identities")
            }
            FailureReason::Expired { subject, not_after } => {
                format!("the certificate {subject} expired on {not_after}")
            }
            FailureReason::NotYetValid { subject, not_before } => {
                format!("the certificate {subject} is not valid before {not_before}")
            }
            FailureReason::Revoked { subject, serial } => {
                format!("the certificate {subject} (serial {serial}) is revoked by its CA")
            }
            FailureReason::CrlUnavailable { subject, detail } => {
                format!("no current CRL for {subject} ({detail}), and the profile's revocation checking is hard")
            }
            FailureReason::WrongEku { subject, required } => {
                format!("the certificate {subject} does not allow {required} in its extended key usage")
            }
            FailureReason::NoSharedCipher { detail } => {
                format!("the two sides have no cipher suite in common ({detail})")
            }
            FailureReason::WrongCurve { offered } => format!(
                "the only usable suites are ECDHE and the client offered curves [{}], none of which the profile allows",
                offered.join(", ")
            ),
            FailureReason::ProtocolVersion { detail } => {
                format!("the two sides have no TLS version in common ({detail})")
            }
            FailureReason::PeerCertRequired => {
                "the server requires a client certificate and none was presented".to_string()
            }
            FailureReason::PeerSubjectNotAllowed { presented, allowed } => format!(
                "the peer certificate names [{}], none of which is an allowed subject [{}]",
                presented.join(", "),
                allowed.join(", ")
            ),
            FailureReason::BadCertificate { detail } => {
                format!("the peer certificate chain is invalid: {detail}")
            }
            FailureReason::PeerAlert { alert } => format!("the peer aborted with alert {alert}"),
            FailureReason::Io { detail } => {
                format!("the connection failed during the handshake: {detail}")
            }
            FailureReason::Other { detail } => format!("the handshake failed: {detail}"),
        }
    }

    /// One line saying what to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            FailureReason::UnknownCa { .. } => "add the peer's root CA to the trust table, or have the peer use a certificate from a CA we trust (SPEC T6)",
            FailureReason::IncompleteChain { .. } => "the peer sent only its leaf certificate; configure it to send its intermediate chain (SPEC T5)",
            FailureReason::NameMismatch { .. } => "connect using a host name the certificate carries (SIP URI host or SRV domain), or reissue the certificate with that name in its SAN (SPEC T7)",
            FailureReason::IpIdentityRefused { .. } => "configure the trunk with the peer's host name instead of its IP address (SPEC T7)",
            FailureReason::Expired { .. } => "renew the certificate and install it with its chain (SPEC T8)",
            FailureReason::NotYetValid { .. } => "check the clocks on both sides, or wait until the certificate's notBefore (SPEC T8)",
            FailureReason::Revoked { .. } => "the CA revoked this certificate: install a newly issued one (SPEC T9)",
            FailureReason::CrlUnavailable { .. } => "make the CRL distribution point reachable, configure a current CRL file, or choose revocation = \"soft\" (SPEC T9)",
            FailureReason::WrongEku { .. } => "reissue the certificate with the needed extended key usage (serverAuth for servers) (SPEC T11)",
            FailureReason::NoSharedCipher { .. } => "enable at least one of the profile's cipher suites on the peer (SPEC T2)",
            FailureReason::WrongCurve { .. } => "enable secp384r1 (P-384) on the peer, or use a profile that allows its curves (SPEC T2)",
            FailureReason::ProtocolVersion { .. } => "enable a TLS version the profile allows on the peer (TLS 1.2 on byoc-cloud) (SPEC T2)",
            FailureReason::PeerCertRequired => "configure the client with a certificate and key for this trunk (SPEC T4)",
            FailureReason::PeerSubjectNotAllowed { .. } => "add the peer's certificate name to the trunk's allowed subjects, or give the peer a certificate with an allowed name (SPEC T4)",
            FailureReason::BadCertificate { .. } => "reissue or reinstall the peer certificate chain",
            FailureReason::PeerAlert { .. } => "read the peer's logs: it refused our hello or our certificate",
            FailureReason::Io { .. } => "check reachability, firewalls and that the peer speaks TLS on this port",
            FailureReason::Other { .. } => "turn on TLS debug for this peer and read the handshake log",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; fix: {}", self.code(), self.explanation(), self.fix())
    }
}

/// A failed handshake: the reason, plus what was observed up to the failure.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake with {peer} failed: {reason}")]
pub struct HandshakeError {
    /// The remote address or configured target.
    pub peer: String,
    /// The classified reason.
    pub reason: FailureReason,
    /// What was seen before the failure (alerts, CertificateRequest, peer chain…).
    pub info: Box<crate::observe::ConnectionInfo>,
}
