//! Certificate revocation lists (SPEC P4, T9): v2 CRLs with AKI, CRL number and nextUpdate, and a
//! reasonCode on each entry (left out for `unspecified`, as RFC 5280 §5.3.1 asks).

use std::fmt;
use std::str::FromStr;

use openssl::bn::BigNum;
use openssl::x509::extension::CrlNumber;
use openssl::x509::{X509Crl, X509CrlBuilder, X509Revoked, X509RevokedBuilder};

use crate::der::{self, oid, tag};
use crate::error::{CryptoContext, Error, Result};
use crate::issuer::{aki_extension, Issuer};
use crate::key;
use crate::serial::Serial;
use crate::time;

/// RFC 5280 CRLReason values we use (certificateHold is not offered: holds can be lifted, and
/// trunk peers rarely handle that well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 7] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }

    /// The RFC 5280 name (as `openssl crl -text` spells it, in camel case).
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    pub fn from_code(code: i64) -> Option<RevocationReason> {
        RevocationReason::ALL.into_iter().find(|r| i64::from(r.code()) == code)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RevocationReason {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let want: String = s.chars().filter(|c| *c != '-' && *c != '_').collect();
        RevocationReason::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(&want)).ok_or_else(|| {
            let all: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.name()).collect();
            Error::invalid("revocation reason", s, format!("expected one of {}", all.join(", ")))
        })
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub serial: Serial,
    /// When it was revoked (Unix seconds).
    pub at: i64,
    pub reason: RevocationReason,
}

/// What a CRL should say.
#[derive(Debug, Clone)]
pub struct CrlSpec {
    /// The CRL number; must grow with every CRL this CA issues.
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    pub revoked: Vec<Revocation>,
}

impl Issuer {
    /// Sign a CRL.
    pub fn crl(&self, spec: &CrlSpec) -> Result<X509Crl> {
        if spec.next_update <= spec.this_update {
            return Err(Error::invalid("CRL", "nextUpdate", "nextUpdate must be after thisUpdate"));
        }
        let mut b = X509CrlBuilder::new().ctx("building a CRL")?;
        b.set_issuer_name(self.cert().subject_name()).ctx("building a CRL")?;
        b.set_last_update(&*time::to_asn1(spec.this_update)?).ctx("setting thisUpdate")?;
        b.set_next_update(&*time::to_asn1(spec.next_update)?).ctx("setting nextUpdate")?;
        b.append_extension(aki_extension(&self.key_id()?)?).ctx("adding the CRL AKI")?;
        let number = BigNum::from_dec_str(&spec.number.to_string()).ctx("encoding the CRL number")?;
        let number = CrlNumber::new(number).ctx("encoding the CRL number")?;
        b.append_extension(number.build().ctx("encoding the CRL number")?).ctx("adding the CRL number")?;
        for r in &spec.revoked {
            b.add_revoked(revoked_entry(r)?).ctx("adding a revoked certificate")?;
        }
        b.sort().ctx("sorting the CRL")?;
        b.sign(self.key(), key::digest_for(self.key())).ctx("signing the CRL")?;
        b.build().ctx("finishing the CRL")
    }
}

/// A CRL entry. The `openssl` crate cannot add entry extensions, so the reasonCode is spliced
/// into the entry's DER: `SEQUENCE { serial, date, SEQUENCE { Extension } }`.
fn revoked_entry(r: &Revocation) -> Result<X509Revoked> {
    let mut b = X509RevokedBuilder::new().ctx("building a CRL entry")?;
    b.set_serial_number(&*r.serial.to_asn1()?).ctx("building a CRL entry")?;
    b.set_revocation_date(&*time::to_asn1(r.at)?).ctx("building a CRL entry")?;
    let entry = b.build();
    if r.reason == RevocationReason::Unspecified {
        return Ok(entry);
    }
    let der_entry = entry.to_der().ctx("encoding a CRL entry")?;
    let body = der::read_only(&der_entry, tag::SEQUENCE)
        .map_err(|e| Error::invalid("CRL entry", r.serial.to_hex(), e.to_string()))?;
    let reason = der::tlv(tag::OCTET_STRING, &der::tlv(tag::ENUMERATED, &[r.reason.code()]));
    let ext = der::tlv(tag::SEQUENCE, &der::cat(&[der::tlv(tag::OID, oid::CRL_REASON), reason]));
    let spliced = der::tlv(tag::SEQUENCE, &der::cat(&[body.to_vec(), der::tlv(tag::SEQUENCE, &ext)]));
    X509Revoked::from_der(&spliced).ctx("decoding a CRL entry")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reasons_parse_in_any_case() {
        assert_eq!("keycompromise".parse::<RevocationReason>().unwrap(), RevocationReason::KeyCompromise);
        assert_eq!("ca-compromise".parse::<RevocationReason>().unwrap(), RevocationReason::CaCompromise);
        assert!("hold".parse::<RevocationReason>().is_err());
        assert_eq!(RevocationReason::from_code(9), Some(RevocationReason::PrivilegeWithdrawn));
    }
}
