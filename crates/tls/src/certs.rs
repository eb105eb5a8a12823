//! Loading certificates, keys and CRLs from PEM or DER (SPEC T10), and our own identity
//! (leaf + intermediates + key) that a server presents in full (T5).

use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Crl, X509NameRef, X509Ref, X509};

use crate::error::TlsError;

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn looks_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Decode one or more certificates from PEM (several blocks) or DER (one certificate).
pub fn certs_from_bytes(data: &[u8], origin: &str) -> Result<Vec<X509>, TlsError> {
    let decode = |e: openssl::error::ErrorStack| TlsError::Decode {
        what: "certificate",
        origin: origin.to_string(),
        detail: e.to_string(),
    };
    if looks_pem(data) {
        let certs = X509::stack_from_pem(data).map_err(decode)?;
        if certs.is_empty() {
            return Err(TlsError::Decode {
                what: "certificate",
                origin: origin.to_string(),
                detail: "no CERTIFICATE block".into(),
            });
        }
        Ok(certs)
    } else {
        Ok(vec![X509::from_der(data).map_err(decode)?])
    }
}

/// Read certificates from a PEM or DER file.
pub fn certs_from_file(path: &Path) -> Result<Vec<X509>, TlsError> {
    certs_from_bytes(&read(path)?, &path.display().to_string())
}

/// Decode a private key (RSA or EC; PKCS#8 or traditional) from PEM or DER.
pub fn key_from_bytes(data: &[u8], origin: &str) -> Result<PKey<Private>, TlsError> {
    let r = if looks_pem(data) { PKey::private_key_from_pem(data) } else { PKey::private_key_from_der(data) };
    r.map_err(|e| TlsError::Decode { what: "private key", origin: origin.to_string(), detail: e.to_string() })
}

/// Decode a CRL from PEM or DER.
pub fn crl_from_bytes(data: &[u8], origin: &str) -> Result<X509Crl, TlsError> {
    let r = if looks_pem(data) { X509Crl::from_pem(data) } else { X509Crl::from_der(data) };
    r.map_err(|e| TlsError::Decode { what: "CRL", origin: origin.to_string(), detail: e.to_string() })
}

/// A distinguished name as one line (`CN=lb01.example.com, O=Example`).
pub fn name_to_string(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={val}")
        })
        .collect();
    parts.join(", ")
}

/// Subject of a certificate as one line.
pub fn subject(cert: &X509Ref) -> String {
    name_to_string(cert.subject_name())
}

/// A serial number in hex.
pub fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number().to_bn().and_then(|b| b.to_hex_str().map(|s| s.to_string())).unwrap_or_else(|_| "?".into())
}

/// Our own certificate chain and key.
#[derive(Clone)]
pub struct Identity {
    /// Leaf first, then intermediates in order (T5).
    pub chain: Vec<X509>,
    /// The leaf's private key.
    pub key: PKey<Private>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Identity")
            .field("chain", &self.chain.iter().map(|c| subject(c)).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Build from a chain (leaf first) and its key; checks that the key belongs to the leaf.
    pub fn new(chain: Vec<X509>, key: PKey<Private>) -> Result<Identity, TlsError> {
        let leaf = chain.first().ok_or_else(|| TlsError::BadIdentity {
            subject: "(none)".into(),
            why: "the certificate file holds no certificate".into(),
            fix: "put the leaf certificate first, then its intermediates".into(),
        })?;
        let pubkey = leaf.public_key().map_err(TlsError::ossl("leaf public key"))?;
        if !pubkey.public_eq(&key) {
            return Err(TlsError::KeyMismatch { subject: subject(leaf) });
        }
        Ok(Identity { chain, key })
    }

    /// Load from a certificate file (PEM chain, or one DER leaf plus optional DER/PEM
    /// intermediates in `extra`) and a key file (PEM or DER).
    pub fn from_files(cert: &Path, key: &Path, extra_chain: &[&Path]) -> Result<Identity, TlsError> {
        let mut chain = certs_from_file(cert)?;
        for p in extra_chain {
            chain.extend(certs_from_file(p)?);
        }
        let key = key_from_bytes(&read(key)?, &key.display().to_string())?;
        Identity::new(chain, key)
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> Option<&X509> {
        self.chain.first()
    }

    /// The DNS names of the leaf (SAN dNSName, or CN when there is no SAN), for SNI selection.
    pub fn names(&self) -> Vec<String> {
        self.leaf().map(|l| crate::names::presented_dns_names(l)).unwrap_or_default()
    }
}
