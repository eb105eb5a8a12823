//! The one table that maps IANA cipher-suite names (used in profiles, SPEC T2) to OpenSSL's names,
//! and TLS group names to their IANA code points.
//!
//! Profiles name suites the way the standards and the carriers' documents do
//! (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`); OpenSSL wants its own names for TLS 1.2
//! (`ECDHE-RSA-AES256-GCM-SHA384`) and the IANA names for TLS 1.3.

/// How a suite exchanges keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyExchange {
    /// Static RSA key transport (TLS 1.2): no curve involved.
    Rsa,
    /// Finite-field DHE.
    Dhe,
    /// ECDHE: needs a group both sides allow.
    Ecdhe,
    /// TLS 1.3: the key exchange is chosen by groups, not by the suite.
    Tls13,
}

/// One cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// IANA name.
    pub iana: &'static str,
    /// OpenSSL name.
    pub openssl: &'static str,
    /// Two-byte code point.
    pub id: u16,
    /// Key exchange.
    pub kx: KeyExchange,
}

const fn s(iana: &'static str, openssl: &'static str, id: u16, kx: KeyExchange) -> Suite {
    Suite { iana, openssl, id, kx }
}

use KeyExchange::{Dhe, Ecdhe, Rsa, Tls13};

/// Every suite a profile may name.
pub const SUITES: &[Suite] = &[
    s("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", 0x1301, Tls13),
    s("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", 0x1302, Tls13),
    s("TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", 0x1303, Tls13),
    s("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", 0x002F, Rsa),
    s("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", 0x0035, Rsa),
    s("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", 0x003C, Rsa),
    s("TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256", 0x003D, Rsa),
    s("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", 0x009C, Rsa),
    s("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", 0x009D, Rsa),
    s("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256", 0x009E, Dhe),
    s("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384", 0x009F, Dhe),
    s("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", 0xC009, Ecdhe),
    s("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", 0xC00A, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", 0xC013, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", 0xC014, Ecdhe),
    s("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", 0xC023, Ecdhe),
    s("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384", 0xC024, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", 0xC027, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384", 0xC028, Ecdhe),
    s("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", 0xC02B, Ecdhe),
    s("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", 0xC02C, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", 0xC02F, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", 0xC030, Ecdhe),
    s("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", 0xCCA8, Ecdhe),
    s("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", 0xCCA9, Ecdhe),
];

/// Look a suite up by its IANA name.
pub fn by_iana(name: &str) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.iana == name)
}

/// Look a suite up by its OpenSSL name.
pub fn by_openssl(name: &str) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.openssl == name)
}

/// Look a suite up by its code point.
pub fn by_id(id: u16) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.id == id)
}

/// One key-exchange group: canonical name (as OpenSSL's `set_groups_list` takes it), accepted
/// spellings, and IANA code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// The name we print and pass to OpenSSL.
    pub name: &'static str,
    /// Other spellings a profile may use.
    pub aliases: &'static [&'static str],
    /// IANA code point.
    pub id: u16,
}

/// Every group a profile may name.
pub const GROUPS: &[Group] = &[
    Group { name: "P-256", aliases: &["secp256r1", "prime256v1"], id: 23 },
    Group { name: "P-384", aliases: &["secp384r1"], id: 24 },
    Group { name: "P-521", aliases: &["secp521r1"], id: 25 },
    Group { name: "X25519", aliases: &["x25519"], id: 29 },
    Group { name: "X448", aliases: &["x448"], id: 30 },
    Group { name: "ffdhe2048", aliases: &[], id: 256 },
    Group { name: "ffdhe3072", aliases: &[], id: 257 },
];

/// Look a group up by any of its spellings (case-insensitive).
pub fn group_by_name(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name.eq_ignore_ascii_case(name) || g.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

/// A readable name for a group code point (`0x11ec` for ones we do not know).
pub fn group_name(id: u16) -> String {
    match GROUPS.iter().find(|g| g.id == id) {
        Some(g) => g.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

/// A readable name for a suite code point.
pub fn suite_name(id: u16) -> String {
    match by_id(id) {
        Some(s) => s.iana.to_string(),
        None => format!("0x{id:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t2_suites_all_known() {
        for name in [
            "TLS_RSA_WITH_AES_256_CBC_SHA",
            "TLS_RSA_WITH_AES_256_CBC_SHA256",
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
            "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ] {
            assert!(by_iana(name).is_some(), "{name}");
        }
    }

    #[test]
    fn names_and_ids_unique() {
        for (i, a) in SUITES.iter().enumerate() {
            for b in SUITES.iter().skip(i + 1) {
                assert_ne!(a.iana, b.iana);
                assert_ne!(a.openssl, b.openssl);
                assert_ne!(a.id, b.id);
            }
        }
    }

    #[test]
    fn group_aliases() {
        assert_eq!(group_by_name("secp384r1").map(|g| g.id), Some(24));
        assert_eq!(group_by_name("P-384").map(|g| g.id), Some(24));
        assert_eq!(group_by_name("prime256v1").map(|g| g.name), Some("P-256"));
        assert!(group_by_name("brainpool").is_none());
        assert_eq!(group_name(0x11ec), "0x11ec");
    }
}
