//! Signing certificate requests made elsewhere, e.g. by `openssl req -new` (SPEC P3).
//!
//! The CSR is checked first: its self-signature must verify, its key must be RSA ≥ 2048 bits or
//! EC on P-256/384/521, and it may not ask for `CA:true`. Of the extensions a CSR requests only
//! the subjectAltName is carried over (DNS, IP, URI, e-mail); key usage, EKU and basic
//! constraints always come from the profile, never from the requester.

use std::path::Path;

use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::x509::{X509Name, X509Req, X509ReqRef, X509};

use crate::der::{self, oid};
use crate::error::{CryptoContext, Error, Result};
use crate::issuer::{Issuer, LeafProfile};
use crate::key;
use crate::names::AltNames;
use crate::time::Validity;

/// The certificate profile a CSR is signed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CsrProfile {
    /// EKU serverAuth (plus clientAuth only when asked, SPEC T11).
    Server,
    /// EKU clientAuth.
    Client,
}

/// How to sign a CSR.
#[derive(Debug, Clone)]
pub struct CsrOptions {
    pub profile: CsrProfile,
    /// Server profile only: also carry EKU clientAuth.
    pub client_auth: bool,
    pub validity: Validity,
    pub crl_url: Option<String>,
    /// DNS names or IPs to add to what the CSR asks for.
    pub extra_hosts: Vec<String>,
}

/// A CSR that passed the checks.
pub struct CheckedCsr {
    pub subject: X509Name,
    pub public_key: PKey<Public>,
    /// The subjectAltName entries the CSR requests.
    pub names: AltNames,
}

impl std::fmt::Debug for CheckedCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCsr")
            .field("subject", &crate::issuer::subject_text(&self.subject))
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// Parse a CSR from PEM or DER bytes; `path` names the file in errors.
pub fn read_csr(bytes: &[u8], path: &Path) -> Result<X509Req> {
    let parsed =
        if crate::inspect::looks_like_pem(bytes) { X509Req::from_pem(bytes) } else { X509Req::from_der(bytes) };
    parsed.map_err(|_| Error::unreadable(path, "not a certificate signing request (expected PEM or DER PKCS#10)"))
}

/// Check a CSR's signature, key and requested extensions.
pub fn check_csr(req: &X509ReqRef, path: &Path) -> Result<CheckedCsr> {
    let public_key = req.public_key().map_err(|_| Error::unreadable(path, "the CSR's public key cannot be read"))?;
    if !req.verify(&public_key).unwrap_or(false) {
        return Err(Error::CsrBadSignature { path: path.to_path_buf() });
    }
    key::check_acceptable(&public_key, &format!("{}: CSR key", path.display()))?;
    let mut names = AltNames::default();
    // No extension request at all is normal for `openssl req -new`.
    let exts = req.extensions().map(|s| s.into_iter().collect::<Vec<_>>()).unwrap_or_default();
    for ext in exts {
        let bad = |e: der::DerError| Error::unreadable(path, format!("the CSR carries a malformed extension ({e})"));
        let der_ext = ext.to_der().ctx("encoding a CSR extension")?;
        let parsed = der::extension(&der_ext).map_err(bad)?;
        if parsed.oid == oid::BASIC_CONSTRAINTS && der::basic_constraints_ca(parsed.value).map_err(bad)? {
            return Err(Error::CsrAsksForCa { path: path.to_path_buf() });
        }
        if parsed.oid == oid::SUBJECT_ALT_NAME {
            let asked = AltNames::from_der(parsed.value).map_err(bad)?;
            for h in &asked.dns {
                names.add_host(h)?;
            }
            for ip in &asked.ips {
                names.add_host(&ip.to_string())?;
            }
            for u in &asked.uris {
                names.add_sip_uri(u)?;
            }
            for e in &asked.emails {
                names.add_email(e)?;
            }
        }
    }
    let subject = req.subject_name().to_owned().ctx("copying the CSR subject")?;
    Ok(CheckedCsr { subject, public_key, names })
}

impl Issuer {
    /// Check and sign a CSR. `path` names the CSR in errors.
    pub fn sign_csr(&self, req: &X509ReqRef, opts: &CsrOptions, path: &Path) -> Result<X509> {
        let csr = check_csr(req, path)?;
        let mut names = csr.names;
        let server = opts.profile == CsrProfile::Server;
        if server {
            if let Some(cn) = csr.subject.entries_by_nid(Nid::COMMONNAME).next() {
                names.add_cn_host(&cn.data().to_string().unwrap_or_default());
            }
        }
        for h in &opts.extra_hosts {
            names.add_host(h)?;
        }
        let profile = LeafProfile {
            names,
            server_auth: server,
            client_auth: !server || opts.client_auth,
            validity: opts.validity,
            crl_url: opts.crl_url.clone(),
        };
        self.sign_leaf(&csr.subject, &csr.public_key, &profile)
    }
}
