//! SDES (RFC 4568) `a=crypto` attributes, crypto suites (RFC 4568 §6.2, RFC 6188, RFC 7714) and
//! key material that never shows in `Debug` output or logs.
//!
//! Grammar handled (RFC 4568 §9.1):
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<mki>:<len>][;inline:...] [<session-params>]`.
//! Lifetimes are honoured (the relay stops using a key after that many packets); MKI and several
//! keys per line are refused with a typed error, as are session parameters other than `WSH`.

use crate::error::{CryptoError, MediaError};

/// An SRTP crypto suite as named in SDES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// RFC 4568 §6.2.1; the mandatory default.
    AesCm128HmacSha1_80,
    /// RFC 4568 §6.2.2.
    AesCm128HmacSha1_32,
    /// RFC 6188.
    Aes256CmHmacSha1_80,
    /// RFC 7714 §14.2.
    AeadAes128Gcm,
    /// RFC 7714 §14.2.
    AeadAes256Gcm,
}

impl CryptoSuite {
    /// Every suite, in the order the edge prefers them.
    pub const ALL: [CryptoSuite; 5] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
        CryptoSuite::Aes256CmHmacSha1_80,
        CryptoSuite::AeadAes128Gcm,
        CryptoSuite::AeadAes256Gcm,
    ];

    /// The SDES name.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            CryptoSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Parses an SDES suite name (case-sensitive, as registered).
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::AesCm128HmacSha1_32 | CryptoSuite::AeadAes128Gcm => 16,
            CryptoSuite::Aes256CmHmacSha1_80 | CryptoSuite::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes (112 bits for AES-CM, 96 bits for AEAD, RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        match self {
            CryptoSuite::AeadAes128Gcm | CryptoSuite::AeadAes256Gcm => 12,
            _ => 14,
        }
    }

    /// The largest key lifetime the suite allows, in packets (2^48 for SRTP; RFC 7714 keeps it).
    pub fn max_lifetime(self) -> u64 {
        1u64 << 48
    }

    /// Whether the relay's SRTP engine (`webrtc-srtp` 0.15) implements this suite. The others are
    /// recognised in SDP but refused in a policy and never selected from a peer's offer.
    pub fn relay_supported(self) -> bool {
        matches!(self, CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::AeadAes128Gcm)
    }

    pub(crate) fn profile(self) -> Result<webrtc_srtp::protection_profile::ProtectionProfile, CryptoError> {
        use webrtc_srtp::protection_profile::ProtectionProfile as P;
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => Ok(P::Aes128CmHmacSha1_80),
            CryptoSuite::AeadAes128Gcm => Ok(P::AeadAes128Gcm),
            other => Err(CryptoError::UnsupportedSuite(other.name())),
        }
    }
}

impl std::fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and salt. `Debug` prints `***`; the bytes are zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    key: Vec<u8>,
    salt: Vec<u8>,
}

impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Drop for SrtpKey {
    fn drop(&mut self) {
        self.key.iter_mut().chain(self.salt.iter_mut()).for_each(|b| *b = 0);
    }
}

impl SrtpKey {
    /// Fresh random key and salt for `suite` from OpenSSL's CSPRNG.
    pub fn generate(suite: CryptoSuite) -> Result<SrtpKey, MediaError> {
        let mut key = vec![0u8; suite.key_len()];
        let mut salt = vec![0u8; suite.salt_len()];
        openssl::rand::rand_bytes(&mut key).map_err(|_| MediaError::Random)?;
        openssl::rand::rand_bytes(&mut salt).map_err(|_| MediaError::Random)?;
        Ok(SrtpKey { key, salt })
    }

    /// A key from its parts (tests and peers that hand keys over out of band).
    pub fn from_parts(suite: CryptoSuite, key: &[u8], salt: &[u8]) -> Result<SrtpKey, CryptoError> {
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(CryptoError::KeyLength {
                suite: suite.name(),
                want: suite.key_len() + suite.salt_len(),
                got: key.len() + salt.len(),
            });
        }
        Ok(SrtpKey { key: key.to_vec(), salt: salt.to_vec() })
    }

    /// The master key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The master salt bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    fn to_base64(&self) -> String {
        let mut both = Vec::with_capacity(self.key.len() + self.salt.len());
        both.extend_from_slice(&self.key);
        both.extend_from_slice(&self.salt);
        let s = openssl::base64::encode_block(&both);
        both.iter_mut().for_each(|b| *b = 0);
        s
    }
}

/// One parsed `a=crypto` attribute (value after `crypto:`). `Debug` never shows the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag (1 to 9 digits) that the answer must repeat.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// The master key and salt.
    pub key: SrtpKey,
    /// Key lifetime in packets, when given.
    pub lifetime: Option<u64>,
    /// Replay window size hint (session parameter `WSH`, RFC 4568 §6.3.7), when given.
    pub window_hint: Option<u64>,
}

impl CryptoAttr {
    /// Parses the value of an `a=crypto` attribute (everything after `a=crypto:`).
    ///
    /// Refuses, with a typed error: unknown suites, non-`inline` methods, bad base64 or key
    /// lengths, lifetimes over the suite's limit, MKI, several keys, unknown session parameters.
    pub fn parse(value: &str) -> Result<CryptoAttr, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let tag_s = fields.next().ok_or(CryptoError::Malformed("no tag"))?;
        if tag_s.is_empty() || tag_s.len() > 9 || !tag_s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::Malformed("the tag is not 1 to 9 digits"));
        }
        let tag: u32 = tag_s.parse().map_err(|_| CryptoError::Malformed("the tag is not a number"))?;
        let suite_s = fields.next().ok_or(CryptoError::Malformed("no crypto suite"))?;
        let suite = CryptoSuite::from_name(suite_s).ok_or_else(|| CryptoError::UnknownSuite(short(suite_s)))?;
        let key_params = fields.next().ok_or(CryptoError::Malformed("no key parameters"))?;
        let mut window_hint = None;
        for p in fields {
            match p.split_once('=') {
                Some(("WSH", v)) => {
                    let w: u64 = v.parse().map_err(|_| CryptoError::Malformed("WSH is not a number"))?;
                    window_hint = Some(w);
                }
                _ => return Err(CryptoError::SessionParam(short(p))),
            }
        }
        if key_params.contains(';') {
            return Err(CryptoError::SeveralKeys);
        }
        let (method, info) = key_params.split_once(':').ok_or(CryptoError::Malformed("no key method"))?;
        if method != "inline" {
            return Err(CryptoError::KeyMethod(short(method)));
        }
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        let lifetime = match parts.next() {
            None => None,
            Some(p) if p.contains(':') => return Err(CryptoError::MkiNotSupported),
            Some(p) => Some(parse_lifetime(p)?),
        };
        if parts.next().is_some() {
            return Err(CryptoError::MkiNotSupported);
        }
        if let Some(l) = lifetime {
            if l > suite.max_lifetime() {
                return Err(CryptoError::LifetimeTooLong { lifetime: l, limit: suite.max_lifetime() });
            }
            if l == 0 {
                return Err(CryptoError::BadLifetime);
            }
        }
        let key = decode_key(suite, b64)?;
        Ok(CryptoAttr { tag, suite, key, lifetime, window_hint })
    }

    /// The attribute value (for `a=crypto:`), key included: only for SDP bodies, never for logs.
    pub fn to_sdp_value(&self) -> String {
        let mut s = format!("{} {} inline:{}", self.tag, self.suite.name(), self.key.to_base64());
        if let Some(l) = self.lifetime {
            if l.is_power_of_two() {
                s.push_str(&format!("|2^{}", l.trailing_zeros()));
            } else {
                s.push_str(&format!("|{l}"));
            }
        }
        if let Some(w) = self.window_hint {
            s.push_str(&format!(" WSH={w}"));
        }
        s
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_lifetime(p: &str) -> Result<u64, CryptoError> {
    if let Some(exp) = p.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| CryptoError::BadLifetime)?;
        if e > 63 {
            return Err(CryptoError::LifetimeTooLong { lifetime: u64::MAX, limit: 1 << 48 });
        }
        Ok(1u64 << e)
    } else if !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()) {
        p.parse().map_err(|_| CryptoError::LifetimeTooLong { lifetime: u64::MAX, limit: 1 << 48 })
    } else {
        Err(CryptoError::BadLifetime)
    }
}

fn decode_key(suite: CryptoSuite, b64: &str) -> Result<SrtpKey, CryptoError> {
    let want = suite.key_len() + suite.salt_len();
    // Base64 of `want` bytes is at most 64 characters for every suite: refuse longer input early.
    if b64.is_empty() || b64.len() > 64 || !b64.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
        return Err(CryptoError::KeyEncoding);
    }
    let mut raw = openssl::base64::decode_block(b64).map_err(|_| CryptoError::KeyEncoding)?;
    let result = if raw.len() != want {
        Err(CryptoError::KeyLength { suite: suite.name(), want, got: raw.len() })
    } else {
        let (k, s) = raw.split_at(suite.key_len());
        SrtpKey::from_parts(suite, k, s)
    };
    raw.iter_mut().for_each(|b| *b = 0);
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    // RFC 4568 §9.1 example key (30 bytes for AES_CM_128).
    const RFC_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn parses_the_rfc4568_example_with_lifetime() {
        let a = CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20")).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(a.lifetime, Some(1 << 20));
        assert_eq!(a.key.key().len(), 16);
        assert_eq!(a.key.salt().len(), 14);
        assert_eq!(a.to_sdp_value(), format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20"));
    }

    #[test]
    fn decimal_lifetime_and_wsh() {
        let a = CryptoAttr::parse(&format!("7 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|1000 WSH=128")).unwrap();
        assert_eq!(a.lifetime, Some(1000));
        assert_eq!(a.window_hint, Some(128));
        assert_eq!(CryptoAttr::parse(&a.to_sdp_value()).unwrap(), a);
    }

    #[test]
    fn refusals_are_typed() {
        let k = RFC_KEY;
        let cases: Vec<(String, CryptoError)> = vec![
            (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4"), CryptoError::MkiNotSupported),
            (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:4"), CryptoError::MkiNotSupported),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^49"),
                CryptoError::LifetimeTooLong { lifetime: 1 << 49, limit: 1 << 48 },
            ),
            (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^x"), CryptoError::BadLifetime),
            (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|0"), CryptoError::BadLifetime),
            (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k};inline:{k}"), CryptoError::SeveralKeys),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k} UNENCRYPTED_SRTP"),
                CryptoError::SessionParam("UNENCRYPTED_SRTP".into()),
            ),
            (format!("1 F8_128_HMAC_SHA1_80 inline:{k}"), CryptoError::UnknownSuite("F8_128_HMAC_SHA1_80".into())),
            (format!("1 AES_CM_128_HMAC_SHA1_80 mikey:{k}"), CryptoError::KeyMethod("mikey".into())),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:%%%%".into(), CryptoError::KeyEncoding),
            (
                format!("1 AEAD_AES_128_GCM inline:{k}"),
                CryptoError::KeyLength { suite: "AEAD_AES_128_GCM", want: 28, got: 30 },
            ),
            (
                format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{k}"),
                CryptoError::Malformed("the tag is not 1 to 9 digits"),
            ),
            ("1 AES_CM_128_HMAC_SHA1_80".into(), CryptoError::Malformed("no key parameters")),
        ];
        for (line, want) in cases {
            assert_eq!(CryptoAttr::parse(&line).unwrap_err(), want, "{line}");
        }
    }

    #[test]
    fn generated_keys_round_trip_for_every_suite_and_differ() {
        for suite in CryptoSuite::ALL {
            let a =
                CryptoAttr { tag: 3, suite, key: SrtpKey::generate(suite).unwrap(), lifetime: None, window_hint: None };
            let b = CryptoAttr { key: SrtpKey::generate(suite).unwrap(), ..a.clone() };
            assert_ne!(a.key, b.key);
            assert_eq!(CryptoAttr::parse(&a.to_sdp_value()).unwrap(), a);
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let a = CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}")).unwrap();
        let d = format!("{a:?}");
        assert!(d.contains("***"), "{d}");
        assert!(!d.contains(RFC_KEY) && !d.contains("89, 83"), "{d}");
    }
}
