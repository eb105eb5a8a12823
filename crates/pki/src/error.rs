//! The one error type of the crate. Every message names the file or thing at fault and, where
//! there is one, the fix. Underlying I/O and OpenSSL errors are kept as `source()` (not repeated
//! in the message), so `anyhow`'s `{:#}` prints each cause once.

use std::path::PathBuf;

use openssl::error::ErrorStack;

/// What can go wrong in the PKI toolkit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// OpenSSL refused an operation (building, signing, encoding).
    #[error("OpenSSL failed while {what}")]
    Crypto {
        what: &'static str,
        #[source]
        source: ErrorStack,
    },
    /// The CA directory does not exist.
    #[error("{dir}: no such CA directory (create one with `trunkgate pki init --dir {dir}`)")]
    NoCaDir { dir: PathBuf },
    /// A directory that is not a trunkgate CA (no marker file, or someone else's marker).
    #[error("{dir}: not a trunkgate CA directory ({reason}); it was left untouched")]
    ForeignDir { dir: PathBuf, reason: String },
    /// A trunkgate CA directory whose files do not hang together.
    #[error("{path}: the CA directory is damaged ({reason}); it was left untouched")]
    Corrupt { path: PathBuf, reason: String },
    /// The state file was written by a newer trunkgate.
    #[error(
        "{path}: format version {found} is newer than this trunkgate understands ({supported}); upgrade trunkgate"
    )]
    NewerFormat { path: PathBuf, found: u64, supported: u64 },
    /// An output file exists and `force` was not given.
    #[error("{path} already exists; not overwriting it (pass --force to replace it)")]
    Exists { path: PathBuf },
    /// Another process holds the CA directory lock.
    #[error("{dir} is locked by another trunkgate process (lock file {dir}/.lock); try again when it has finished")]
    Locked { dir: PathBuf },
    /// A file held nothing we could read as the expected kind of object.
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// A value given by the caller is not acceptable.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid { what: &'static str, value: String, reason: String },
    /// The CSR's self-signature does not verify with the key it carries.
    #[error("{path}: the CSR's signature does not verify with its own public key (altered or damaged CSR); nothing was signed")]
    CsrBadSignature { path: PathBuf },
    /// The CSR asks for a CA certificate.
    #[error("{path}: the CSR asks for basicConstraints CA:true; trunkgate never issues a CA certificate from a CSR")]
    CsrAsksForCa { path: PathBuf },
    /// A key that is too weak or of a kind we do not issue for.
    #[error("{what}: {reason}")]
    WeakKey { what: String, reason: String },
    /// A private key that does not belong to the certificate it is used with.
    #[error("{what}: the private key does not belong to the certificate")]
    KeyMismatch { what: String },
    /// The signing CA certificate is not valid at the time of the operation.
    #[error(
        "the CA certificate {path} {reason}; nothing was issued (make a new CA, or use --now to act at another time)"
    )]
    CaNotValid { path: PathBuf, reason: String },
    /// A serial that this CA has not issued.
    #[error("serial {serial} was not issued by this CA (see `trunkgate pki list`)")]
    UnknownSerial { serial: String },
    /// The certificate is already revoked.
    #[error("serial {serial} is already revoked")]
    AlreadyRevoked { serial: String },
    /// A rotation authority request that contradicts the stored authority.
    #[error("authority {name:?}: {reason}")]
    Authority { name: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(what: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid { what, value: value.into(), reason: reason.into() }
    }

    pub(crate) fn unreadable(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Unreadable { path: path.into(), reason: reason.into() }
    }
}

/// Attach a description of the failing step to an OpenSSL error.
pub(crate) trait CryptoContext<T> {
    fn ctx(self, what: &'static str) -> Result<T, Error>;
}

impl<T> CryptoContext<T> for Result<T, ErrorStack> {
    fn ctx(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Crypto { what, source })
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
