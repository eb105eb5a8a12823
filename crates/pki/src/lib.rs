//! trunkgate-pki: a private CA toolkit (SPEC P1–P6, T5, T10, T11, H2).
//!
//! What it does:
//! - makes certificates in memory with every field under control ([`Issuer`], [`LeafSpec`]):
//!   roots, intermediates, server certificates (EKU serverAuth only unless asked, T11; CN of the
//!   form `FQDN/anything`, H2; SIP URI SANs, RFC 5922), client and device certificates, any
//!   validity window (including expired or not-yet-valid ones, for tests), CRL distribution
//!   points (P4), CRLs with CRL number and nextUpdate;
//! - signs CSRs from `openssl req -new` after checking them (P3, [`Issuer::sign_csr`]);
//! - keeps a CA in a directory ([`Ca`]): atomic writes, a lock, keys mode 0600, an index of
//!   issued serials, refusal to overwrite without `force`, detection of foreign or damaged
//!   directories; the layout is documented in `docs/pki.md`;
//! - rotates client certificates per authority (P5, [`Ca::rotate`]);
//! - reads, describes and converts PEM/DER files, and computes OpenSSL subject hashes (P6, T10,
//!   [`inspect`]).
//!
//! What it does not do: talk to the network (serving the CRL or the certificates API is the
//! edge's job), verify chains for TLS (that is `trunkgate-tls`), read the clock (every
//! time-dependent call takes `now`, Unix seconds; [`unix_now`] is the one place that reads it),
//! or encrypt private keys at rest (they are protected by file mode 0600).
//!
//! Test material in a few lines:
//!
//! ```
//! use trunkgate_pki::{CaSpec, CrlSpec, Issuer, KeyType, LeafSpec, Revocation, RevocationReason, Validity, DAY};
//!
//! # fn main() -> trunkgate_pki::Result<()> {
//! let now = trunkgate_pki::unix_now();
//! let root = Issuer::new_root(&CaSpec::new("Test Root", KeyType::P384, Validity::days_from(now, 3650)))?;
//! let int = root.new_intermediate(&CaSpec::new("Test Int", KeyType::P384, Validity::days_from(now, 3650)))?;
//! let server = int.issue(
//!     &LeafSpec::server("sbc.test", Validity::new(now - 40 * DAY, now - DAY)) // already expired
//!         .key(KeyType::Rsa2048)
//!         .san("127.0.0.1")
//!         .sip_uri("sip:sbc.test")
//!         .crl_url("http://127.0.0.1:8080/crl.der"),
//! )?;
//! let crl = int.crl(&CrlSpec {
//!     number: 1,
//!     this_update: now,
//!     next_update: now + 7 * DAY,
//!     revoked: vec![Revocation { serial: server.serial()?, at: now, reason: RevocationReason::KeyCompromise }],
//! })?;
//! assert_eq!(server.chain.len(), 1); // the intermediate (T5)
//! assert_eq!(crl.get_revoked().map(|r| r.len()), Some(1));
//! # Ok(())
//! # }
//! ```

mod ca;
mod crl;
mod csr;
mod der;
mod error;
pub mod inspect;
mod issuer;
mod key;
mod names;
mod rotation;
mod serial;
mod state;
mod store;
mod time;

/// The `openssl` crate this one is built on (same version), for callers that need its types.
pub use openssl;

pub use ca::{Ca, InitOptions, IssueKind, IssueRequest, IssueResult, SignCsrRequest};
pub use crl::{CrlSpec, Revocation, RevocationReason};
pub use csr::{check_csr, read_csr, CheckedCsr, CsrOptions, CsrProfile};
pub use error::{Error, Result};
pub use issuer::{check_url, subject_text, CaSpec, Issued, Issuer, LeafSpec};
pub use key::{describe as describe_key, KeyType, MIN_RSA_BITS};
pub use names::{check_dns_name, check_sip_uri, host_of_cn, normalize_mac, AltNames};
pub use rotation::{AuthorityCert, AuthorityOptions, Rotation, UPCOMING_WINDOW};
pub use serial::Serial;
pub use state::{EntryKind, IndexEntry, Status};
pub use store::write_file;
pub use time::{format as format_time, parse as parse_time, unix_now, Validity, DAY};
