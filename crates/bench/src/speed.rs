//! `trunkgate bench speed`: the crypto bound of a full TLS handshake, measured on one thread
//! with the OpenSSL trunkgate links (issue 5 and 9: handshakes are judged against "the crypto
//! cost that `openssl speed` measures"; the system `openssl speed` measures the system library,
//! which may differ from the vendored one, so both are printed).
//!
//! A TLS 1.2 server's private-key work per full handshake: ECDHE-RSA — one RSA-2048 signature
//! (ServerKeyExchange), one P-384 key generation and one P-384 derivation; TLS_RSA — one
//! RSA-2048 private operation (decrypting the premaster secret). The decryption is counted at the
//! cost of a signature, as `openssl speed rsa2048` counts it: TLS decrypts with OpenSSL's
//! constant-time TLS padding check, whose cost beside the modular exponentiation is negligible
//! (perf: 1 % of a TLS_RSA handshake), while a plain PKCS#1 v1.5 decryption in OpenSSL ≥ 3.2
//! adds implicit rejection (a KDF per call) that TLS does not use.

use std::time::{Duration, Instant};

use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use serde::Serialize;

use crate::BenchError;

/// Operations per second of one thread, by operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Speed {
    /// The OpenSSL measured (`OpenSSL_version`).
    pub library: String,
    /// RSA-2048 PKCS#1 v1.5 signatures of a SHA-256 digest.
    pub rsa2048_sign_per_s: f64,
    /// P-384 key pairs generated.
    pub p384_keygen_per_s: f64,
    /// P-384 ECDH derivations (with a fixed peer key).
    pub p384_derive_per_s: f64,
    /// Full ECDHE-RSA P-384 handshakes per core-second if the server did nothing but this crypto:
    /// 1 / (1/sign + 1/keygen + 1/derive).
    pub bound_ecdhe_rsa_p384: f64,
    /// Full TLS_RSA handshakes per core-second if the server did nothing but the RSA private
    /// operation.
    pub bound_tls_rsa: f64,
}

/// Runs `op` for about `time` and returns operations per second.
fn rate(time: Duration, mut op: impl FnMut() -> Result<(), BenchError>) -> Result<f64, BenchError> {
    // Warm up (caches, lazy tables), then count.
    for _ in 0..8 {
        op()?;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        for _ in 0..8 {
            op()?;
        }
        n += 8;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn ssl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> BenchError {
    move |e| BenchError::Tls(format!("{what}: {e}"))
}

/// Measures each operation for `time` on the calling thread.
pub fn measure(time: Duration) -> Result<Speed, BenchError> {
    let rsa = PKey::from_rsa(Rsa::generate(2048).map_err(ssl("RSA key"))?).map_err(ssl("RSA key"))?;
    let digest = [0x5au8; 32];
    let sign = rate(time, || {
        let mut s = Signer::new_without_digest(&rsa).map_err(ssl("sign"))?;
        s.set_rsa_padding(Padding::PKCS1).map_err(ssl("sign"))?;
        // PKCS#1 v1.5 over a DigestInfo-less 32-byte value, as `openssl speed rsa2048` does.
        s.sign_oneshot_to_vec(&digest).map(drop).map_err(ssl("sign"))
    })?;
    let group = EcGroup::from_curve_name(Nid::SECP384R1).map_err(ssl("P-384"))?;
    let keygen = rate(time, || EcKey::generate(&group).map(drop).map_err(ssl("P-384 key")))?;
    let mine: PKey<Private> =
        PKey::from_ec_key(EcKey::generate(&group).map_err(ssl("P-384 key"))?).map_err(ssl("P-384 key"))?;
    let theirs = EcKey::generate(&group).map_err(ssl("P-384 key"))?;
    let theirs = PKey::from_ec_key(EcKey::from_public_key(&group, theirs.public_key()).map_err(ssl("P-384 key"))?)
        .map_err(ssl("P-384 key"))?;
    let mut shared = vec![0u8; 48];
    let derive = rate(time, || {
        let mut d = Deriver::new(&mine).map_err(ssl("ECDH"))?;
        d.set_peer(&theirs).map_err(ssl("ECDH"))?;
        d.derive(&mut shared).map(drop).map_err(ssl("ECDH"))
    })?;
    Ok(Speed {
        library: openssl::version::version().to_string(),
        rsa2048_sign_per_s: sign,
        p384_keygen_per_s: keygen,
        p384_derive_per_s: derive,
        bound_ecdhe_rsa_p384: 1.0 / (1.0 / sign + 1.0 / keygen + 1.0 / derive),
        bound_tls_rsa: sign,
    })
}

impl Speed {
    /// Human-readable text.
    pub fn text(&self) -> String {
        format!(
            "crypto on one thread, {}\n  RSA-2048 sign     {:>8.0}/s\n  \
             P-384 keygen      {:>8.0}/s\n  P-384 ECDH derive {:>8.0}/s\n  bound ECDHE-RSA P-384 (sign + keygen + derive) \
             {:.0} handshakes per core-second\n  bound TLS_RSA (one RSA private operation) {:.0} handshakes per core-second\n",
            self.library,
            self.rsa2048_sign_per_s,
            self.p384_keygen_per_s,
            self.p384_derive_per_s,
            self.bound_ecdhe_rsa_p384,
            self.bound_tls_rsa
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_operation_runs_and_the_bounds_follow_from_the_rates() {
        let s = measure(Duration::from_millis(30)).unwrap();
        for r in [s.rsa2048_sign_per_s, s.p384_keygen_per_s, s.p384_derive_per_s] {
            assert!(r.is_finite() && r > 0.0, "{s:?}");
        }
        assert!(s.bound_ecdhe_rsa_p384 < s.rsa2048_sign_per_s.min(s.p384_keygen_per_s).min(s.p384_derive_per_s));
        assert_eq!(s.bound_tls_rsa, s.rsa2048_sign_per_s);
        assert!(s.text().contains("bound TLS_RSA"));
        assert!(s.library.contains("OpenSSL"), "{}", s.library);
    }
}
