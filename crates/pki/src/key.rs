//! Key types we generate, the keys we accept from others, and the digest we sign with.

use std::fmt;
use std::str::FromStr;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;

use crate::error::{CryptoContext, Error, Result};

/// Smallest RSA modulus we issue for or accept in a CSR.
pub const MIN_RSA_BITS: u32 = 2048;

/// The key types trunkgate generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    /// ECDSA on NIST P-256 (prime256v1).
    P256,
    /// ECDSA on NIST P-384 (secp384r1).
    P384,
}

impl KeyType {
    /// Every key type, in the order the CLI lists them.
    pub const ALL: [KeyType; 5] = [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096, KeyType::P256, KeyType::P384];

    /// The name used on the command line and in the state file.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::P256 => "p256",
            KeyType::P384 => "p384",
        }
    }

    /// Make a fresh private key of this type.
    pub fn generate(self) -> Result<PKey<Private>> {
        let ec = |nid: Nid| -> Result<PKey<Private>> {
            let group = EcGroup::from_curve_name(nid).ctx("loading an EC group")?;
            let key = EcKey::generate(&group).ctx("generating an EC key")?;
            PKey::from_ec_key(key).ctx("wrapping an EC key")
        };
        let rsa = |bits: u32| -> Result<PKey<Private>> {
            let key = Rsa::generate(bits).ctx("generating an RSA key")?;
            PKey::from_rsa(key).ctx("wrapping an RSA key")
        };
        match self {
            KeyType::Rsa2048 => rsa(2048),
            KeyType::Rsa3072 => rsa(3072),
            KeyType::Rsa4096 => rsa(4096),
            KeyType::P256 => ec(Nid::X9_62_PRIME256V1),
            KeyType::P384 => ec(Nid::SECP384R1),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::invalid("key type", s, "expected one of rsa2048, rsa3072, rsa4096, p256, p384"))
    }
}

/// The curve of an EC key, if it is one.
fn curve<T: HasPublic>(key: &PKeyRef<T>) -> Option<Nid> {
    key.ec_key().ok().and_then(|k| k.group().curve_name())
}

/// The digest a key signs certificates and CRLs with: SHA-384 for P-384, SHA-512 for P-521,
/// SHA-256 otherwise.
pub(crate) fn digest_for<T: HasPublic>(key: &PKeyRef<T>) -> MessageDigest {
    match curve(key) {
        Some(Nid::SECP384R1) => MessageDigest::sha384(),
        Some(Nid::SECP521R1) => MessageDigest::sha512(),
        _ => MessageDigest::sha256(),
    }
}

/// Is this an RSA key (which needs keyEncipherment for the TLS_RSA_* suites of SPEC T2)?
pub(crate) fn is_rsa<T: HasPublic>(key: &PKeyRef<T>) -> bool {
    key.id() == Id::RSA
}

/// A one-line description: `RSA 2048 bits`, `EC P-384 (secp384r1)`.
pub fn describe<T: HasPublic>(key: &PKeyRef<T>) -> String {
    match key.id() {
        Id::RSA => format!("RSA {} bits", key.bits()),
        Id::EC => match curve(key) {
            Some(Nid::X9_62_PRIME256V1) => "EC P-256 (prime256v1)".to_string(),
            Some(Nid::SECP384R1) => "EC P-384 (secp384r1)".to_string(),
            Some(Nid::SECP521R1) => "EC P-521 (secp521r1)".to_string(),
            Some(nid) => format!("EC {}", nid.short_name().unwrap_or("unknown curve")),
            None => "EC (explicit curve parameters)".to_string(),
        },
        Id::ED25519 => "Ed25519".to_string(),
        Id::ED448 => "Ed448".to_string(),
        Id::DSA => format!("DSA {} bits", key.bits()),
        other => format!("key type {}", other.as_raw()),
    }
}

/// Refuse keys we will not certify: RSA under 2048 bits, EC off the NIST P-256/384/521 curves,
/// and anything else. `what` names the key's origin for the message.
pub(crate) fn check_acceptable<T: HasPublic>(key: &PKeyRef<T>, what: &str) -> Result<()> {
    let refuse = |reason: String| Err(Error::WeakKey { what: what.to_string(), reason });
    match key.id() {
        Id::RSA if key.bits() < MIN_RSA_BITS => refuse(format!(
            "RSA key of {} bits; trunkgate refuses RSA keys under {MIN_RSA_BITS} bits (make a new key, e.g. `openssl req -new -newkey rsa:2048`)",
            key.bits()
        )),
        Id::RSA => Ok(()),
        Id::EC => match curve(key) {
            Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1 | Nid::SECP521R1) => Ok(()),
            _ => refuse(format!("{}: only the P-256, P-384 and P-521 curves are accepted", describe(key))),
        },
        _ => refuse(format!("{}: only RSA and EC keys are accepted", describe(key))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in KeyType::ALL {
            assert_eq!(k.name().parse::<KeyType>().unwrap(), k);
        }
        assert!("rsa1024".parse::<KeyType>().is_err());
    }

    #[test]
    fn weak_rsa_is_refused() {
        let weak = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        let err = check_acceptable(&weak, "test key").unwrap_err().to_string();
        assert!(err.contains("1024 bits"), "{err}");
        let p384 = KeyType::P384.generate().unwrap();
        check_acceptable(&p384, "p384").unwrap();
        assert_eq!(describe(&p384), "EC P-384 (secp384r1)");
        assert_eq!(digest_for(&p384).type_(), MessageDigest::sha384().type_());
    }
}
