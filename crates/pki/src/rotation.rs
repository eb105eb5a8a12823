//! Client-certificate rotation per signing authority (SPEC P5, from seed 003):
//!
//! - an authority has exactly one *current* certificate: the oldest one (in issue order) that is
//!   valid now and not revoked;
//! - an *upcoming* certificate is made only when the current one has under 90 days left, and only
//!   for an authority marked public (003: "only for the DigiCert authority");
//! - when the current certificate expires (or is revoked), the upcoming one becomes current; if
//!   there is none (a private authority), [`Ca::rotate`] issues a new current one.
//!
//! Roles are never stored: they follow from the index and the clock, so `list` at any `now`
//! shows what `rotate` at that `now` would act on.

use std::path::PathBuf;

use crate::ca::{entry_for, Ca, AUTHORITIES_DIR};
use crate::error::{Error, Result};
use crate::issuer::{chain_pem, LeafSpec};
use crate::key::KeyType;
use crate::names;
use crate::state::{AuthoritySettings, EntryKind, IndexEntry, Status};
use crate::store::{ensure_private_dir, Mode, Txn};
use crate::time::{self, Validity, DAY};

/// An upcoming certificate is made when the current one has less than this left.
pub const UPCOMING_WINDOW: i64 = 90 * DAY;

/// Settings for [`Ca::rotate`]. `None` keeps the stored value (or the default, for a new
/// authority: private, CN = the authority name, 365 days, RSA 2048).
#[derive(Debug, Clone, Default)]
pub struct AuthorityOptions {
    /// Mark a new authority public. Cannot be changed once the authority exists.
    pub public: Option<bool>,
    pub cn: Option<String>,
    pub days: Option<u32>,
    pub key: Option<KeyType>,
}

/// What [`Ca::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// There was no current certificate; this one is now current.
    IssuedCurrent(IndexEntry),
    /// The current certificate has under 90 days left; this one is upcoming.
    IssuedUpcoming(IndexEntry),
    /// Nothing to do, and why.
    Unchanged { reason: String },
}

/// A current or upcoming certificate of an authority, as a certificates API lists it (SPEC W2).
#[derive(Debug, Clone)]
pub struct AuthorityCert {
    pub authority: String,
    pub public: bool,
    pub status: Status,
    pub entry: IndexEntry,
    /// Leaf followed by the intermediates, PEM.
    pub chain_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// The positions (in `certs`, issue order) of the current and upcoming certificates at `now`.
pub(crate) fn roles(certs: &[&IndexEntry], now: i64) -> (Option<usize>, Option<usize>) {
    let mut live = certs.iter().enumerate().filter(|(_, e)| e.revoked.is_none() && now <= e.not_after);
    let current = live.clone().find(|(_, e)| e.not_before <= now).map(|(i, _)| i);
    let upcoming = live.find(|(i, _)| Some(*i) != current).map(|(i, _)| i);
    (current, upcoming)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    IssueCurrent,
    IssueUpcoming,
    Nothing(String),
}

/// What rotation should do at `now`.
pub(crate) fn plan(public: bool, current: Option<&IndexEntry>, upcoming: Option<&IndexEntry>, now: i64) -> Plan {
    let Some(cur) = current else {
        return Plan::IssueCurrent;
    };
    let left = cur.not_after - now;
    let ends = time::format(cur.not_after);
    if let Some(up) = upcoming {
        return Plan::Nothing(format!(
            "current certificate {} ends {ends}; upcoming certificate {} is ready",
            cur.serial, up.serial
        ));
    }
    if !public {
        return Plan::Nothing(format!(
            "current certificate {} ends {ends} ({} days left); a private authority gets no upcoming certificate, run rotate again after it expires",
            cur.serial,
            left / DAY
        ));
    }
    if left < UPCOMING_WINDOW {
        return Plan::IssueUpcoming;
    }
    Plan::Nothing(format!(
        "current certificate {} ends {ends} ({} days left); an upcoming certificate is made from {} (under 90 days left)",
        cur.serial,
        left / DAY,
        time::format(cur.not_after - UPCOMING_WINDOW + 1)
    ))
}

impl Ca {
    fn authority_entries(&self, name: &str) -> Vec<&IndexEntry> {
        self.state
            .issued
            .iter()
            .filter(|e| e.kind == EntryKind::Rotation && e.authority.as_deref() == Some(name))
            .collect()
    }

    /// Status of an entry at `now`, with rotation roles (current/upcoming) for rotation entries.
    pub fn status_of(&self, entry: &IndexEntry, now: i64) -> Status {
        let base = entry.status(now);
        let Some(name) = entry.authority.as_deref() else {
            return base;
        };
        let certs = self.authority_entries(name);
        let (current, upcoming) = roles(&certs, now);
        let at = |i: Option<usize>| i.and_then(|i| certs.get(i)).is_some_and(|e| e.serial == entry.serial);
        if at(current) {
            Status::Current
        } else if at(upcoming) {
            Status::Upcoming
        } else {
            base
        }
    }

    /// Every issued certificate with its status at `now`.
    pub fn list(&self, now: i64) -> Vec<(IndexEntry, Status)> {
        self.state.issued.iter().map(|e| (e.clone(), self.status_of(e, now))).collect()
    }

    /// The names of the rotation authorities and whether each is public.
    pub fn authorities(&self) -> Vec<(String, bool)> {
        self.state.authorities.iter().map(|(n, s)| (n.clone(), s.public)).collect()
    }

    /// Rotate the client certificate of authority `name` at `now` (creating the authority if
    /// needed): see the module documentation for the rules.
    pub fn rotate(&mut self, name: &str, opts: &AuthorityOptions, now: i64) -> Result<Rotation> {
        names::check_authority_name(name)?;
        let mut state = self.state.clone();
        let settings = match state.authorities.get(name) {
            Some(s) => {
                if let Some(p) = opts.public.filter(|p| *p != s.public) {
                    return Err(Error::Authority {
                        name: name.to_string(),
                        reason: format!(
                            "it exists as a {} authority and cannot become {}",
                            if s.public { "public" } else { "private" },
                            if p { "public" } else { "private" }
                        ),
                    });
                }
                AuthoritySettings {
                    public: s.public,
                    cn: opts.cn.clone().unwrap_or_else(|| s.cn.clone()),
                    days: opts.days.unwrap_or(s.days),
                    key: opts.key.unwrap_or(s.key),
                }
            }
            None => AuthoritySettings {
                public: opts.public.unwrap_or(false),
                cn: opts.cn.clone().unwrap_or_else(|| name.to_string()),
                days: opts.days.unwrap_or(365),
                key: opts.key.unwrap_or(KeyType::Rsa2048),
            },
        };
        names::check_cn(&settings.cn)?;
        if settings.days == 0 {
            return Err(Error::invalid("days", "0", "a certificate must be valid for at least one day"));
        }
        let certs = self.authority_entries(name);
        let (current, upcoming) = roles(&certs, now);
        let pick = |i: Option<usize>| i.and_then(|i| certs.get(i).copied());
        let planned = plan(settings.public, pick(current), pick(upcoming), now);
        let upcoming_next = match planned {
            Plan::Nothing(reason) => {
                // Keep changed settings (CN, days, key) for the next certificate.
                if state.authorities.get(name) != Some(&settings) {
                    state.authorities.insert(name.to_string(), settings);
                    self.finish(state, Txn::new())?;
                }
                return Ok(Rotation::Unchanged { reason });
            }
            Plan::IssueCurrent => false,
            Plan::IssueUpcoming => true,
        };

        self.check_signing_ca(now)?;
        let mut spec = LeafSpec::client(&settings.cn, Validity::days_from(now, settings.days)).key(settings.key);
        spec.crl_url = state.crl_url.clone();
        spec.validity = self.clip(spec.validity)?.0;
        let issued = self.issuing().issue(&spec)?;
        let entry = entry_for(&issued.cert, EntryKind::Rotation, false, None, Some(name.to_string()))?;
        state.authorities.insert(name.to_string(), settings);
        state.issued.push(entry.clone());

        let key_dir = self.dir.join(AUTHORITIES_DIR).join(name);
        ensure_private_dir(&key_dir)?;
        let mut txn = Txn::new();
        txn.stage(&self.cert_copy_path(&entry.serial), &issued.cert_pem()?, Mode::Public)?;
        txn.stage(&key_dir.join(format!("{}.key", entry.serial)), &issued.key_pem()?, Mode::Private)?;
        self.finish(state, txn)?;
        Ok(if upcoming_next { Rotation::IssuedUpcoming(entry) } else { Rotation::IssuedCurrent(entry) })
    }

    /// The current and upcoming certificates of every authority (or of one), with their chains.
    pub fn authority_certs(&self, name: Option<&str>, now: i64) -> Result<Vec<AuthorityCert>> {
        let mut out = Vec::new();
        for (auth, settings) in &self.state.authorities {
            if name.is_some_and(|n| n != auth) {
                continue;
            }
            let certs = self.authority_entries(auth);
            let (current, upcoming) = roles(&certs, now);
            for (idx, status) in [(current, Status::Current), (upcoming, Status::Upcoming)] {
                let Some(entry) = idx.and_then(|i| certs.get(i)) else {
                    continue;
                };
                let cert = self.certificate(&entry.serial)?;
                let chain = chain_pem(&cert, &self.issuing().intermediates())?;
                out.push(AuthorityCert {
                    authority: auth.clone(),
                    public: settings.public,
                    status,
                    entry: (*entry).clone(),
                    chain_pem: String::from_utf8_lossy(&chain).into_owned(),
                    cert_path: self.cert_copy_path(&entry.serial),
                    key_path: self.dir.join(AUTHORITIES_DIR).join(auth).join(format!("{}.key", entry.serial)),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::serial::Serial;

    fn cert(serial: &str, not_before: i64, not_after: i64) -> IndexEntry {
        IndexEntry {
            serial: serial.parse::<Serial>().unwrap(),
            kind: EntryKind::Rotation,
            subject: "CN=x".to_string(),
            not_before,
            not_after,
            from_csr: false,
            mac: None,
            authority: Some("A".to_string()),
            revoked: None,
        }
    }

    #[test]
    fn upcoming_only_under_90_days_and_only_public() {
        let end = 1_000 * DAY;
        let cur = cert("01", 0, end);
        // Exactly 90 days left: not yet.
        assert!(matches!(plan(true, Some(&cur), None, end - UPCOMING_WINDOW), Plan::Nothing(_)));
        // One second under 90 days: upcoming.
        assert_eq!(plan(true, Some(&cur), None, end - UPCOMING_WINDOW + 1), Plan::IssueUpcoming);
        // Private authority: never.
        assert!(matches!(plan(false, Some(&cur), None, end - DAY), Plan::Nothing(_)));
        assert_eq!(plan(false, None, None, end + 1), Plan::IssueCurrent);
    }

    #[test]
    fn upcoming_becomes_current_when_current_expires() {
        let a = cert("01", 0, 100);
        let b = cert("02", 50, 500);
        let certs = [&a, &b];
        assert_eq!(roles(&certs, 60), (Some(0), Some(1)));
        assert_eq!(roles(&certs, 100), (Some(0), Some(1))); // notAfter is inclusive
        assert_eq!(roles(&certs, 101), (Some(1), None));
        assert_eq!(roles(&certs, 501), (None, None));
        let mut revoked = a.clone();
        revoked.revoked =
            Some(crate::state::RevokedInfo { at: 10, reason: crate::crl::RevocationReason::KeyCompromise });
        assert_eq!(roles(&[&revoked, &b], 60), (Some(1), None));
    }
}
