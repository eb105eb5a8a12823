//! The CA's state file, `DIR/trunkgate-pki.json`: a marker (format name and version), the CA's
//! settings, the CRL numbers, the rotation authorities, and the index of every issued serial.
//! Statuses are not stored: they follow from the dates, the revocations and the clock
//! ([`IndexEntry::status`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::crl::RevocationReason;
use crate::error::{Error, Result};
use crate::key::KeyType;
use crate::serial::Serial;

/// The state file's name.
pub(crate) const STATE_FILE: &str = "trunkgate-pki.json";
/// The `format` marker.
pub(crate) const FORMAT: &str = "trunkgate-pki";
/// The version this code writes and reads.
pub(crate) const VERSION: u64 = 1;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    pub format: String,
    pub version: u64,
    /// The root's CN.
    pub cn: String,
    pub key: KeyType,
    /// Whether an intermediate signs everything issued.
    pub intermediate: bool,
    /// CRL distribution point written into every certificate issued (SPEC P4).
    pub crl_url: Option<String>,
    pub created: i64,
    /// Number of the last CRL of the issuing CA (0: none yet).
    pub crl_number: u64,
    /// Number of the last root CRL (only with an intermediate).
    pub root_crl_number: u64,
    pub authorities: BTreeMap<String, AuthoritySettings>,
    pub issued: Vec<IndexEntry>,
}

/// A rotation authority (SPEC P5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthoritySettings {
    /// Only a public authority gets an upcoming certificate.
    pub public: bool,
    pub cn: String,
    pub days: u32,
    pub key: KeyType,
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Server,
    Client,
    Device,
    /// A client certificate of a rotation authority (SPEC P5).
    Rotation,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Server => "server",
            EntryKind::Client => "client",
            EntryKind::Device => "device",
            EntryKind::Rotation => "rotation",
        }
    }
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    pub serial: Serial,
    pub kind: EntryKind,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    /// Signed from a CSR (the key is not ours).
    #[serde(default)]
    pub from_csr: bool,
    /// Device certificates: the MAC, 12 lower-case hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Rotation certificates: the authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<RevokedInfo>,
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedInfo {
    pub at: i64,
    pub reason: RevocationReason,
}

/// The status of an issued certificate at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Valid,
    NotYetValid,
    Expired,
    Revoked,
    /// The one current certificate of a rotation authority.
    Current,
    /// A rotation authority's next certificate.
    Upcoming,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::NotYetValid => "not-yet-valid",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Current => "current",
            Status::Upcoming => "upcoming",
        }
    }
}

impl IndexEntry {
    /// Status from dates and revocation alone (rotation roles come from [`crate::Ca`]).
    pub fn status(&self, now: i64) -> Status {
        if self.revoked.is_some() {
            Status::Revoked
        } else if now > self.not_after {
            Status::Expired
        } else if now < self.not_before {
            Status::NotYetValid
        } else {
            Status::Valid
        }
    }
}

impl State {
    /// Load and check the state file of `dir`.
    pub(crate) fn load(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ForeignDir { dir: dir.to_path_buf(), reason: format!("no {STATE_FILE}") })
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: path.clone(), reason: format!("not valid JSON: {e}") })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::ForeignDir {
                dir: dir.to_path_buf(),
                reason: format!("{STATE_FILE} is not a trunkgate-pki state file"),
            });
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(VERSION) => {}
            Some(found) if found > VERSION => return Err(Error::NewerFormat { path, found, supported: VERSION }),
            _ => return Err(Error::Corrupt { path, reason: "missing or unknown format version".to_string() }),
        }
        serde_json::from_value(value).map_err(|e| Error::Corrupt { path, reason: e.to_string() })
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Corrupt { path: STATE_FILE.into(), reason: e.to_string() })?;
        out.push(b'\n');
        Ok(out)
    }

    pub(crate) fn entry(&self, serial: &Serial) -> Option<&IndexEntry> {
        self.issued.iter().find(|e| &e.serial == serial)
    }

    pub(crate) fn entry_mut(&mut self, serial: &Serial) -> Option<&mut IndexEntry> {
        self.issued.iter_mut().find(|e| &e.serial == serial)
    }
}
