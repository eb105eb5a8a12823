//! SPEC P5 on the command line: `pki rotate` and `pki list --status` at chosen instants (`--now`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod pki_support;

use pki_support::{openssl_ok, pki_ok};

/// 2026-11-23T00:00:00Z.
const T0: i64 = 1_795_392_000;
const DAY: i64 = 86_400;

fn at(t: i64) -> String {
    format!("@{t}")
}

fn serials(p: &std::path::Path, status: &str, now: i64) -> Vec<String> {
    let json = pki_ok(p, &["list", "--dir", "ca", "--status", status, "--json", "--now", &at(now)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["entities"].as_array().unwrap().iter().map(|e| e["serial"].as_str().unwrap().to_string()).collect()
}

#[test]
fn p5_upcoming_at_the_90_day_boundary_then_promotion_at_expiry() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    pki_ok(p, &["init", "--dir", "ca", "--cn", "Data Actions Root", "--key", "p256", "--now", &at(T0)]);
    let out =
        pki_ok(p, &["rotate", "--dir", "ca", "--authority", "DigiCert", "--public", "--key", "p256", "--now", &at(T0)]);
    assert!(out.contains("issued current certificate"), "{out}");
    let out = pki_ok(p, &["rotate", "--dir", "ca", "--authority", "Genesys", "--key", "p256", "--now", &at(T0)]);
    assert!(out.contains("issued current certificate"), "{out}");
    let current = serials(p, "current", T0);
    assert_eq!(current.len(), 2, "one current per authority");

    // Both expire at T0 + 365 days; 90 days before that is the boundary.
    let end = T0 + 365 * DAY;
    let boundary = end - 90 * DAY;
    for auth in ["DigiCert", "Genesys"] {
        let out = pki_ok(p, &["rotate", "--dir", "ca", "--authority", auth, "--now", &at(boundary)]);
        assert!(out.contains("nothing to do"), "{auth} at exactly 90 days: {out}");
    }
    assert!(serials(p, "upcoming", boundary).is_empty());

    let out = pki_ok(p, &["rotate", "--dir", "ca", "--authority", "DigiCert", "--now", &at(boundary + 1)]);
    assert!(out.contains("issued upcoming certificate"), "{out}");
    let out = pki_ok(p, &["rotate", "--dir", "ca", "--authority", "Genesys", "--now", &at(boundary + 1)]);
    assert!(out.contains("nothing to do") && out.contains("private authority"), "{out}");
    let upcoming = serials(p, "upcoming", boundary + 1);
    assert_eq!(upcoming.len(), 1, "only the public authority gets an upcoming certificate");

    // The JSON of a current/upcoming certificate carries its PEM chain (SPEC W2 shape).
    let json = pki_ok(p, &["list", "--dir", "ca", "--authority", "DigiCert", "--json", "--now", &at(boundary + 1)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let up = v["entities"].as_array().unwrap().iter().find(|e| e["status"] == "upcoming").unwrap();
    assert_eq!(up["signingAuthority"], "DigiCert");
    std::fs::write(p.join("up.pem"), up["certificate"].as_str().unwrap()).unwrap();
    openssl_ok(
        p,
        &[
            "verify",
            "-attime",
            &(boundary + 10).to_string(),
            "-CAfile",
            "ca/root.crt",
            "-purpose",
            "sslclient",
            "up.pem",
        ],
    );

    // At the last second the old one is still current; one second later the upcoming one is.
    assert_eq!(serials(p, "upcoming", end), upcoming);
    assert_eq!(serials(p, "current", end + 1).iter().filter(|s| upcoming.contains(s)).count(), 1);
    assert!(serials(p, "upcoming", end + 1).is_empty());
    let expired = serials(p, "expired", end + 1);
    assert_eq!(expired.len(), 2, "both first certificates expired: {expired:?}");

    // The private authority gets a new current certificate once its old one has expired.
    let out = pki_ok(p, &["rotate", "--dir", "ca", "--authority", "Genesys", "--now", &at(end + 1)]);
    assert!(out.contains("issued current certificate"), "{out}");
    assert_eq!(serials(p, "current", end + 1).len(), 2);
    let table = pki_ok(p, &["list", "--dir", "ca", "--now", &at(end + 1)]);
    assert_eq!(table.matches(" current ").count(), 2, "{table}");
}
