//! SPEC P5: client-certificate rotation per authority, driven by an injected clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use support::{mode, openssl_ok};
use trunkgate_pki::{AuthorityOptions, Ca, InitOptions, KeyType, Rotation, Status, DAY, UPCOMING_WINDOW};

/// 2026-11-23T00:00:00Z, a fixed start for the simulated clock.
const T0: i64 = 1_795_392_000;

fn ca(dir: &std::path::Path) -> Ca {
    let opts = InitOptions {
        cn: "Rotation Root".into(),
        key: KeyType::P256,
        intermediate: true,
        days: 3650,
        crl_url: None,
        force: false,
    };
    Ca::init(dir, &opts, T0).unwrap()
}

fn opts(public: bool) -> AuthorityOptions {
    AuthorityOptions { public: Some(public), key: Some(KeyType::P256), ..AuthorityOptions::default() }
}

fn statuses(ca: &Ca, authority: &str, now: i64) -> Vec<Status> {
    ca.list(now).into_iter().filter(|(e, _)| e.authority.as_deref() == Some(authority)).map(|(_, s)| s).collect()
}

#[test]
fn p5_public_authority_gets_an_upcoming_certificate_under_90_days_only() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ca");
    let mut ca = ca(&dir);
    let Rotation::IssuedCurrent(first) = ca.rotate("DigiCert", &opts(true), T0).unwrap() else {
        panic!("a new authority gets a current certificate");
    };
    assert_eq!(first.not_after, T0 + 365 * DAY);
    let boundary = first.not_after - UPCOMING_WINDOW;

    // Exactly 90 days left: nothing yet.
    assert!(matches!(
        ca.rotate("DigiCert", &AuthorityOptions::default(), boundary).unwrap(),
        Rotation::Unchanged { .. }
    ));
    assert_eq!(statuses(&ca, "DigiCert", boundary), vec![Status::Current]);
    // One second later (under 90 days): an upcoming certificate.
    let Rotation::IssuedUpcoming(next) = ca.rotate("DigiCert", &AuthorityOptions::default(), boundary + 1).unwrap()
    else {
        panic!("under 90 days left: upcoming expected");
    };
    assert_eq!(statuses(&ca, "DigiCert", boundary + 1), vec![Status::Current, Status::Upcoming]);
    // Only one upcoming.
    assert!(matches!(
        ca.rotate("DigiCert", &AuthorityOptions::default(), boundary + DAY).unwrap(),
        Rotation::Unchanged { .. }
    ));
    assert_eq!(ca.list(boundary + DAY).len(), 2);

    // The last second of the current one (notAfter is inclusive), then it expires and the
    // upcoming one becomes current.
    assert_eq!(statuses(&ca, "DigiCert", first.not_after), vec![Status::Current, Status::Upcoming]);
    assert_eq!(statuses(&ca, "DigiCert", first.not_after + 1), vec![Status::Expired, Status::Current]);
    let current = ca.authority_certs(Some("DigiCert"), first.not_after + 1).unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].status, Status::Current);
    assert_eq!(current[0].entry.serial, next.serial);
    assert_eq!(mode(&current[0].key_path), 0o600);

    // The rotation certificate is a clientAuth certificate of this CA, and its chain verifies.
    std::fs::write(d.path().join("chain.pem"), &current[0].chain_pem).unwrap();
    let at = (boundary + 2).to_string();
    let out = openssl_ok(
        d.path(),
        &[
            "verify",
            "-attime",
            &at,
            "-CAfile",
            "ca/root.crt",
            "-untrusted",
            "chain.pem",
            "-purpose",
            "sslclient",
            "chain.pem",
        ],
    );
    assert!(out.contains("OK"), "{out}");

    // Reopened from disk, the roles are the same (they follow from the index and the clock).
    drop(ca);
    let ca = Ca::open(&dir).unwrap();
    assert_eq!(statuses(&ca, "DigiCert", first.not_after + 1), vec![Status::Expired, Status::Current]);
}

#[test]
fn p5_private_authority_never_gets_an_upcoming_certificate() {
    let d = tempfile::tempdir().unwrap();
    let mut ca = ca(&d.path().join("ca"));
    let Rotation::IssuedCurrent(first) = ca.rotate("Genesys", &opts(false), T0).unwrap() else {
        panic!("current expected");
    };
    for now in [first.not_after - UPCOMING_WINDOW + 1, first.not_after - DAY, first.not_after] {
        assert!(matches!(ca.rotate("Genesys", &AuthorityOptions::default(), now).unwrap(), Rotation::Unchanged { .. }));
        assert_eq!(statuses(&ca, "Genesys", now), vec![Status::Current]);
    }
    // After expiry: no current one, so a new current one is issued.
    let after = first.not_after + 1;
    assert!(ca.authority_certs(Some("Genesys"), after).unwrap().is_empty());
    assert!(matches!(ca.rotate("Genesys", &AuthorityOptions::default(), after).unwrap(), Rotation::IssuedCurrent(_)));
    assert_eq!(statuses(&ca, "Genesys", after), vec![Status::Expired, Status::Current]);
    // The public flag cannot be flipped.
    let err = ca.rotate("Genesys", &opts(true), after).unwrap_err().to_string();
    assert!(err.contains("cannot become public"), "{err}");
}

#[test]
fn p5_revoking_the_current_certificate_promotes_the_upcoming_one() {
    let d = tempfile::tempdir().unwrap();
    let mut ca = ca(&d.path().join("ca"));
    let Rotation::IssuedCurrent(first) = ca.rotate("DigiCert", &opts(true), T0).unwrap() else {
        panic!("current expected");
    };
    let now = first.not_after - 30 * DAY;
    assert!(matches!(ca.rotate("DigiCert", &AuthorityOptions::default(), now).unwrap(), Rotation::IssuedUpcoming(_)));
    ca.revoke(&first.serial, trunkgate_pki::RevocationReason::KeyCompromise, now).unwrap();
    assert_eq!(statuses(&ca, "DigiCert", now), vec![Status::Revoked, Status::Current]);
}
