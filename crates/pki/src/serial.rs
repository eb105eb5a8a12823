//! Certificate serial numbers: random, positive, at most 16 octets (RFC 5280 §4.1.2.2 allows 20),
//! shown in upper-case hex exactly as `openssl x509 -serial` shows them.

use std::fmt;
use std::str::FromStr;

use openssl::asn1::{Asn1Integer, Asn1IntegerRef};
use openssl::bn::BigNum;

use crate::error::{CryptoContext, Error, Result};

/// A serial number (big-endian magnitude, no leading zero octets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// 127 random bits: unique in practice, and never negative or zero.
    pub fn random() -> Result<Serial> {
        let mut bytes = [0u8; 16];
        openssl::rand::rand_bytes(&mut bytes).ctx("drawing a random serial number")?;
        if let Some(first) = bytes.first_mut() {
            *first = (*first & 0x7f).max(1);
        }
        Ok(Serial(bytes.to_vec()))
    }

    /// The serial of an ASN.1 integer (a certificate's or a CRL entry's).
    pub fn from_asn1(n: &Asn1IntegerRef) -> Result<Serial> {
        let bn = n.to_bn().ctx("reading a serial number")?;
        Ok(Serial(bn.to_vec()))
    }

    pub(crate) fn to_asn1(&self) -> Result<Asn1Integer> {
        let bn = BigNum::from_slice(&self.0).ctx("encoding a serial number")?;
        Asn1Integer::from_bn(&bn).ctx("encoding a serial number")
    }

    /// The serial in upper-case hex without separators (`openssl x509 -serial` style).
    pub fn to_hex(&self) -> String {
        if self.0.is_empty() {
            "00".to_string()
        } else {
            crate::der::hex(&self.0, "")
        }
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Serial {
    type Err = Error;

    /// Hex, with or without `0x`, colons or spaces; case-insensitive.
    fn from_str(s: &str) -> Result<Serial> {
        let bad = || Error::invalid("serial number", s, "expected hex digits, e.g. 4F2A09C1 or 4f:2a:09:c1");
        let t = s.trim();
        let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
        let digits: String = t.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        if digits.is_empty() || digits.len() > 40 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits };
        let bytes: Vec<u8> = padded
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        Ok(Serial(bytes.into_iter().skip_while(|b| *b == 0).collect()))
    }
}

impl serde::Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_show() {
        let s: Serial = "0x0a:1B:2c".parse().unwrap();
        assert_eq!(s.to_string(), "0A1B2C");
        assert_eq!("a1b2c".parse::<Serial>().unwrap().to_string(), "0A1B2C");
        assert!("xyz".parse::<Serial>().is_err());
        let r = Serial::random().unwrap();
        assert_eq!(Serial::from_asn1(&r.to_asn1().unwrap()).unwrap(), r);
    }
}
