//! A CA kept in a directory (layout in `docs/pki.md`):
//!
//! ```text
//! DIR/trunkgate-pki.json   marker + settings + index of issued serials (the only mutable state)
//! DIR/.lock                lock file (flock) taken by every command
//! DIR/root.crt root.der    the root, PEM and DER (SPEC P1: what peers download and trust)
//! DIR/root.key             0600
//! DIR/intermediate.crt     with --intermediate: signs everything issued
//! DIR/intermediate.key     0600
//! DIR/crl.pem crl.der      latest CRL of the issuing CA (publish crl.der at the CRL URL)
//! DIR/root-crl.pem .der    with --intermediate: latest root CRL (for crl_check_all)
//! DIR/certs/SERIAL.pem     a copy of every certificate issued
//! DIR/authorities/NAME/SERIAL.key   keys of rotation client certificates (0600)
//! ```

use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::x509::{X509Crl, X509};

use crate::crl::{CrlSpec, Revocation, RevocationReason};
use crate::csr::{read_csr, CsrOptions, CsrProfile};
use crate::error::{CryptoContext, Error, Result};
use crate::issuer::{check_url, subject_text, CaSpec, Issued, Issuer, LeafSpec};
use crate::key::KeyType;
use crate::names;
use crate::serial::Serial;
use crate::state::{EntryKind, IndexEntry, RevokedInfo, State, FORMAT, STATE_FILE, VERSION};
use crate::store::{ensure_private_dir, DirLock, Mode, Txn, LOCK_FILE};
use crate::time::{self, Validity, DAY};

pub(crate) const ROOT_CERT: &str = "root.crt";
pub(crate) const ROOT_DER: &str = "root.der";
pub(crate) const ROOT_KEY: &str = "root.key";
pub(crate) const INT_CERT: &str = "intermediate.crt";
pub(crate) const INT_KEY: &str = "intermediate.key";
pub(crate) const CRL_PEM: &str = "crl.pem";
pub(crate) const CRL_DER: &str = "crl.der";
pub(crate) const ROOT_CRL_PEM: &str = "root-crl.pem";
pub(crate) const ROOT_CRL_DER: &str = "root-crl.der";
pub(crate) const CERTS_DIR: &str = "certs";
pub(crate) const AUTHORITIES_DIR: &str = "authorities";

/// How long a CRL is good for unless told otherwise.
pub const DEFAULT_CRL_DAYS: u32 = 30;

/// Settings for a new CA directory.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub cn: String,
    pub key: KeyType,
    /// Also make an intermediate that signs everything issued.
    pub intermediate: bool,
    /// Validity of the root (and the intermediate), in days.
    pub days: u32,
    /// CRL distribution point written into every certificate issued afterwards (SPEC P4).
    pub crl_url: Option<String>,
    /// Replace an existing trunkgate CA in `dir` (never a foreign directory).
    pub force: bool,
}

/// What kind of certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueKind {
    /// EKU serverAuth (+ clientAuth when the spec asks for it).
    Server,
    /// EKU clientAuth.
    Client,
    /// EKU clientAuth, listed in the index under its MAC (SPEC P2, H1).
    Device { mac: String },
}

/// One certificate to issue from a CA directory.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub kind: IssueKind,
    /// Subject, names, key type and validity. The EKU follows `kind` (plus `client_auth` for a
    /// server); the CRL URL is the CA's; the validity is cut at the CA's own expiry.
    pub spec: LeafSpec,
    /// Write `PREFIX.key` (0600), `PREFIX.crt` and `PREFIX.chain.pem` (leaf + intermediates).
    pub out_prefix: Option<PathBuf>,
    /// Overwrite existing output files; for a device, replace (revoke as superseded) its
    /// current certificate.
    pub force: bool,
}

/// What [`Ca::issue`] did.
#[derive(Debug, Clone)]
pub struct IssueResult {
    pub issued: Issued,
    pub entry: IndexEntry,
    /// Files written outside the CA directory.
    pub files: Vec<PathBuf>,
    /// The validity was shortened to end with the issuing CA's.
    pub clipped: bool,
    /// A device certificate replaced by this one (revoked as superseded).
    pub superseded: Option<Serial>,
}

/// A CSR to sign from a CA directory (SPEC P3).
#[derive(Debug, Clone)]
pub struct SignCsrRequest {
    pub csr_path: PathBuf,
    /// Profile, validity and extra names; the CRL URL is the CA's.
    pub options: CsrOptions,
    /// Where to write the certificate (PEM).
    pub out: PathBuf,
    /// Where to write leaf + intermediates, if wanted.
    pub chain_out: Option<PathBuf>,
    pub force: bool,
}

/// An open CA directory, locked until dropped.
#[derive(Debug)]
pub struct Ca {
    pub(crate) dir: PathBuf,
    pub(crate) state: State,
    pub(crate) root: Issuer,
    pub(crate) intermediate: Option<Issuer>,
    _lock: DirLock,
}

impl Ca {
    /// Make a new CA in `dir` (created if missing, mode 0700). An existing trunkgate CA is only
    /// replaced with `force`; a non-empty foreign directory never is.
    pub fn init(dir: &Path, opts: &InitOptions, now: i64) -> Result<Ca> {
        names::check_cn(&opts.cn)?;
        if let Some(url) = &opts.crl_url {
            check_url(url)?;
        }
        if opts.days == 0 {
            return Err(Error::invalid("days", "0", "a CA must be valid for at least one day"));
        }
        // Checked before the lock (so a foreign directory gains no lock file) and again under it
        // (so two concurrent inits cannot both believe the directory is free).
        check_init_target(dir, opts.force, false)?;
        ensure_private_dir(dir)?;
        let lock = DirLock::acquire(dir)?;
        check_init_target(dir, opts.force, true)?;

        let validity = Validity::days_from(now, opts.days);
        let root = Issuer::new_root(&CaSpec::new(&opts.cn, opts.key, validity))?;
        let intermediate = if opts.intermediate {
            let cn = intermediate_cn(&opts.cn);
            Some(root.new_intermediate(&CaSpec::new(&cn, opts.key, validity))?)
        } else {
            None
        };
        let mut state = State {
            format: FORMAT.to_string(),
            version: VERSION,
            cn: opts.cn.clone(),
            key: opts.key,
            intermediate: opts.intermediate,
            crl_url: opts.crl_url.clone(),
            created: now,
            crl_number: 0,
            root_crl_number: 0,
            authorities: Default::default(),
            issued: Vec::new(),
        };
        let mut ca = Ca { dir: dir.to_path_buf(), state: state.clone(), root, intermediate, _lock: lock };
        ensure_private_dir(&dir.join(CERTS_DIR))?;
        ensure_private_dir(&dir.join(AUTHORITIES_DIR))?;
        let mut txn = Txn::new();
        let pem = |c: &X509| c.to_pem().ctx("encoding a certificate");
        let key_pem = |i: &Issuer| i.key().private_key_to_pem_pkcs8().ctx("encoding a private key");
        txn.stage(&dir.join(ROOT_CERT), &pem(ca.root.cert())?, Mode::Public)?;
        txn.stage(&dir.join(ROOT_DER), &ca.root.cert().to_der().ctx("encoding a certificate")?, Mode::Public)?;
        txn.stage(&dir.join(ROOT_KEY), &key_pem(&ca.root)?, Mode::Private)?;
        if let Some(int) = &ca.intermediate {
            txn.stage(&dir.join(INT_CERT), &pem(int.cert())?, Mode::Public)?;
            txn.stage(&dir.join(INT_KEY), &key_pem(int)?, Mode::Private)?;
            ca.stage_crl(&mut state, &mut txn, true, DEFAULT_CRL_DAYS, now)?;
        }
        ca.stage_crl(&mut state, &mut txn, false, DEFAULT_CRL_DAYS, now)?;
        ca.finish(state, txn)?;
        Ok(ca)
    }

    /// Open and lock an existing CA directory, checking that its files hang together.
    pub fn open(dir: &Path) -> Result<Ca> {
        if !dir.exists() {
            return Err(Error::NoCaDir { dir: dir.to_path_buf() });
        }
        if !dir.is_dir() {
            return Err(Error::ForeignDir { dir: dir.to_path_buf(), reason: "it is not a directory".to_string() });
        }
        // Check the marker before taking the lock, so a foreign directory gains no lock file.
        State::load(dir)?;
        let lock = DirLock::acquire(dir)?;
        let state = State::load(dir)?;
        let root = load_issuer(dir, ROOT_CERT, ROOT_KEY, Vec::new())?;
        let intermediate = if state.intermediate {
            let int = load_issuer(dir, INT_CERT, INT_KEY, vec![root.cert().clone()])?;
            let signed_by_root =
                root.cert().public_key().ok().and_then(|k| int.cert().verify(&k).ok()).unwrap_or(false);
            if !signed_by_root {
                return Err(Error::Corrupt {
                    path: dir.join(INT_CERT),
                    reason: format!("it is not signed by {ROOT_CERT}"),
                });
            }
            Some(int)
        } else {
            None
        };
        Ok(Ca { dir: dir.to_path_buf(), state, root, intermediate, _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn root(&self) -> &Issuer {
        &self.root
    }

    /// The CA that signs what this directory issues (the intermediate, if there is one).
    pub fn issuing(&self) -> &Issuer {
        self.intermediate.as_ref().unwrap_or(&self.root)
    }

    pub fn crl_url(&self) -> Option<&str> {
        self.state.crl_url.as_deref()
    }

    /// Every certificate issued, in issue order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.state.issued
    }

    /// The newest unrevoked certificate of a device (SPEC H1: identify a device by its MAC).
    pub fn find_device(&self, mac: &str) -> Option<&IndexEntry> {
        let mac = names::normalize_mac(mac).ok()?;
        self.state
            .issued
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::Device && e.mac.as_deref() == Some(mac.as_str()) && e.revoked.is_none())
    }

    /// The stored copy of an issued certificate.
    pub fn certificate(&self, serial: &Serial) -> Result<X509> {
        let path = self.cert_copy_path(serial);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        X509::from_pem(&bytes).map_err(|_| Error::Corrupt { path, reason: "not a PEM certificate".to_string() })
    }

    pub(crate) fn cert_copy_path(&self, serial: &Serial) -> PathBuf {
        self.dir.join(CERTS_DIR).join(format!("{serial}.pem"))
    }

    /// Fail unless the issuing CA (and the root above it) is valid at `now`.
    pub(crate) fn check_signing_ca(&self, now: i64) -> Result<()> {
        let mut pairs = vec![(ROOT_CERT, &self.root)];
        if let Some(int) = &self.intermediate {
            pairs.push((INT_CERT, int));
        }
        for (file, issuer) in pairs {
            let v = issuer.validity()?;
            let reason = if now > v.not_after {
                format!("expired on {}", time::format(v.not_after))
            } else if now < v.not_before {
                format!("is not valid before {}", time::format(v.not_before))
            } else {
                continue;
            };
            return Err(Error::CaNotValid { path: self.dir.join(file), reason });
        }
        Ok(())
    }

    /// Cut a validity window at the issuing CA's expiry; says whether it was cut.
    pub(crate) fn clip(&self, v: Validity) -> Result<(Validity, bool)> {
        let ca_end = self.issuing().validity()?.not_after;
        if v.not_after > ca_end {
            Ok((Validity::new(v.not_before, ca_end), true))
        } else {
            Ok((v, false))
        }
    }

    /// Issue a server, client or device certificate.
    pub fn issue(&mut self, req: &IssueRequest, now: i64) -> Result<IssueResult> {
        self.check_signing_ca(now)?;
        let mut spec = req.spec.clone();
        let (kind, mac) = match &req.kind {
            IssueKind::Server => (EntryKind::Server, None),
            IssueKind::Client => (EntryKind::Client, None),
            IssueKind::Device { mac } => (EntryKind::Device, Some(names::normalize_mac(mac)?)),
        };
        spec.server_auth = kind == EntryKind::Server;
        spec.client_auth = kind != EntryKind::Server || spec.client_auth;
        if let Some(mac) = &mac {
            if spec.cn.is_empty() {
                spec.cn = mac.clone();
            }
        }
        spec.crl_url = self.state.crl_url.clone();
        let (validity, clipped) = self.clip(spec.validity)?;
        spec.validity = validity;

        let superseded = match &mac {
            Some(m) => match self.find_device(m) {
                Some(old) if old.status(now) == crate::state::Status::Valid && !req.force => {
                    return Err(Error::invalid(
                        "device",
                        m.clone(),
                        format!(
                            "already has a valid certificate (serial {}); pass --force to issue a new one and revoke the old one as superseded",
                            old.serial
                        ),
                    ))
                }
                Some(old) if old.status(now) == crate::state::Status::Valid => Some(old.serial.clone()),
                _ => None,
            },
            None => None,
        };
        let outputs = match &req.out_prefix {
            Some(p) => {
                let files = [with_suffix(p, ".key"), with_suffix(p, ".crt"), with_suffix(p, ".chain.pem")];
                for f in &files {
                    Txn::check_free(f, req.force)?;
                }
                files.to_vec()
            }
            None => Vec::new(),
        };

        let issued = self.issuing().issue(&spec)?;
        let entry = entry_for(&issued.cert, kind, false, mac, None)?;
        let mut state = self.state.clone();
        if let Some(old) = &superseded {
            if let Some(e) = state.entry_mut(old) {
                e.revoked = Some(RevokedInfo { at: now, reason: RevocationReason::Superseded });
            }
        }
        state.issued.push(entry.clone());
        let mut txn = Txn::new();
        txn.stage(&self.cert_copy_path(&entry.serial), &issued.cert_pem()?, Mode::Public)?;
        if let [key, crt, chain] = outputs.as_slice() {
            txn.stage(key, &issued.key_pem()?, Mode::Private)?;
            txn.stage(crt, &issued.cert_pem()?, Mode::Public)?;
            txn.stage(chain, &issued.chain_pem()?, Mode::Public)?;
        }
        if superseded.is_some() {
            self.stage_crl(&mut state, &mut txn, false, DEFAULT_CRL_DAYS, now)?;
        }
        self.finish(state, txn)?;
        Ok(IssueResult { issued, entry, files: outputs, clipped, superseded })
    }

    /// Check and sign a CSR file (SPEC P3).
    pub fn sign_csr(&mut self, req: &SignCsrRequest, now: i64) -> Result<(X509, IndexEntry)> {
        self.check_signing_ca(now)?;
        let bytes = std::fs::read(&req.csr_path).map_err(|e| Error::io(&req.csr_path, e))?;
        let csr = read_csr(&bytes, &req.csr_path)?;
        Txn::check_free(&req.out, req.force)?;
        if let Some(chain) = &req.chain_out {
            Txn::check_free(chain, req.force)?;
        }
        let mut opts = req.options.clone();
        opts.crl_url = self.state.crl_url.clone();
        opts.validity = self.clip(opts.validity)?.0;
        let cert = self.issuing().sign_csr(&csr, &opts, &req.csr_path)?;
        let kind = match opts.profile {
            CsrProfile::Server => EntryKind::Server,
            CsrProfile::Client => EntryKind::Client,
        };
        let entry = entry_for(&cert, kind, true, None, None)?;
        let mut state = self.state.clone();
        state.issued.push(entry.clone());
        let pem = cert.to_pem().ctx("encoding a certificate")?;
        let mut txn = Txn::new();
        txn.stage(&self.cert_copy_path(&entry.serial), &pem, Mode::Public)?;
        txn.stage(&req.out, &pem, Mode::Public)?;
        if let Some(chain) = &req.chain_out {
            txn.stage(chain, &crate::issuer::chain_pem(&cert, &self.issuing().intermediates())?, Mode::Public)?;
        }
        self.finish(state, txn)?;
        Ok((cert, entry))
    }

    /// Revoke an issued certificate and publish a new CRL (`DIR/crl.pem`, `DIR/crl.der`).
    pub fn revoke(&mut self, serial: &Serial, reason: RevocationReason, now: i64) -> Result<(IndexEntry, X509Crl)> {
        let mut state = self.state.clone();
        let entry = state.entry_mut(serial).ok_or_else(|| Error::UnknownSerial { serial: serial.to_hex() })?;
        if entry.revoked.is_some() {
            return Err(Error::AlreadyRevoked { serial: serial.to_hex() });
        }
        entry.revoked = Some(RevokedInfo { at: now, reason });
        let entry = entry.clone();
        let mut txn = Txn::new();
        let crl = self.stage_crl(&mut state, &mut txn, false, DEFAULT_CRL_DAYS, now)?;
        self.finish(state, txn)?;
        Ok((entry, crl))
    }

    /// The serial of a certificate file, if this CA issued it.
    pub fn serial_of_cert_file(&self, path: &Path) -> Result<Serial> {
        let cert = crate::inspect::first_certificate(path)?;
        let ours = self.issuing().cert().public_key().ok().and_then(|k| cert.verify(&k).ok()).unwrap_or(false);
        let serial = Serial::from_asn1(cert.serial_number())?;
        if !ours || self.state.entry(&serial).is_none() {
            return Err(Error::unreadable(
                path,
                format!("the certificate ({}) was not issued by this CA", subject_text(cert.subject_name())),
            ));
        }
        Ok(serial)
    }

    /// Make a new CRL (the root's with `root`, else the issuing CA's), store it in the CA
    /// directory, and also write it to `out` (PEM, or DER with `der`).
    pub fn crl(&mut self, root: bool, days: u32, now: i64, out: Option<(&Path, bool)>) -> Result<X509Crl> {
        if root && self.intermediate.is_none() {
            return Err(Error::invalid("CRL", "--root", "this CA has no intermediate: its root CRL is the only CRL"));
        }
        if days == 0 {
            return Err(Error::invalid("days", "0", "a CRL must be valid for at least one day"));
        }
        let mut state = self.state.clone();
        let mut txn = Txn::new();
        let crl = self.stage_crl(&mut state, &mut txn, root, days, now)?;
        if let Some((path, der)) = out {
            let bytes = if der { crl.to_der() } else { crl.to_pem() }.ctx("encoding a CRL")?;
            txn.stage(path, &bytes, Mode::Public)?;
        }
        self.finish(state, txn)?;
        Ok(crl)
    }

    /// Sign the next CRL, bump its number in the state, and stage its PEM and DER files.
    pub(crate) fn stage_crl(
        &self,
        state: &mut State,
        txn: &mut Txn,
        root: bool,
        days: u32,
        now: i64,
    ) -> Result<X509Crl> {
        let spec = |number: u64, revoked: Vec<Revocation>| CrlSpec {
            number,
            this_update: now,
            next_update: now + i64::from(days) * DAY,
            revoked,
        };
        let (crl, pem_name, der_name) = if root {
            state.root_crl_number += 1;
            (self.root.crl(&spec(state.root_crl_number, Vec::new()))?, ROOT_CRL_PEM, ROOT_CRL_DER)
        } else {
            state.crl_number += 1;
            let revoked = state
                .issued
                .iter()
                .filter_map(|e| e.revoked.map(|r| Revocation { serial: e.serial.clone(), at: r.at, reason: r.reason }))
                .collect();
            (self.issuing().crl(&spec(state.crl_number, revoked))?, CRL_PEM, CRL_DER)
        };
        txn.stage(&self.dir.join(pem_name), &crl.to_pem().ctx("encoding a CRL")?, Mode::Public)?;
        txn.stage(&self.dir.join(der_name), &crl.to_der().ctx("encoding a CRL")?, Mode::Public)?;
        Ok(crl)
    }

    /// Stage the new state last, commit every staged file, and adopt the new state.
    pub(crate) fn finish(&mut self, state: State, mut txn: Txn) -> Result<()> {
        txn.stage(&self.dir.join(STATE_FILE), &state.to_json()?, Mode::Public)?;
        txn.commit()?;
        self.state = state;
        Ok(())
    }
}

/// May `init` write into `dir`? Only if it is missing, empty, or a trunkgate CA and `force` is
/// given. An empty directory may hold the leftovers of an interrupted init (our lock file, empty
/// `certs/` and `authorities/`, temporary files). Without the lock, a directory that has our lock
/// file is left for the check under the lock: another init may be writing it right now.
fn check_init_target(dir: &Path, force: bool, locked: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Error::ForeignDir { dir: dir.to_path_buf(), reason: "it is not a directory".to_string() });
    }
    if dir.join(STATE_FILE).exists() {
        State::load(dir)?;
        return Txn::check_free(&dir.join(STATE_FILE), force);
    }
    if !locked && dir.join(LOCK_FILE).exists() {
        return Ok(());
    }
    let leftover = |name: &str| {
        let empty_dir = |d: &str| std::fs::read_dir(dir.join(d)).is_ok_and(|mut e| e.next().is_none());
        name == LOCK_FILE
            || (name.starts_with('.') && name.contains(".tmp-"))
            || ((name == CERTS_DIR || name == AUTHORITIES_DIR) && empty_dir(name))
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned());
    if names.any(|n| !leftover(&n)) {
        return Err(Error::ForeignDir {
            dir: dir.to_path_buf(),
            reason: format!("it is not empty and has no {STATE_FILE}"),
        });
    }
    Ok(())
}

/// `<root CN> Intermediate`, kept within the 64-character CN limit.
fn intermediate_cn(root_cn: &str) -> String {
    let suffix = " Intermediate";
    let keep: String = root_cn.chars().take(64 - suffix.len()).collect();
    format!("{keep}{suffix}")
}

/// `PREFIX` + suffix (`out/sbc` → `out/sbc.key`).
pub(crate) fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn entry_for(
    cert: &X509,
    kind: EntryKind,
    from_csr: bool,
    mac: Option<String>,
    authority: Option<String>,
) -> Result<IndexEntry> {
    Ok(IndexEntry {
        serial: Serial::from_asn1(cert.serial_number())?,
        kind,
        subject: subject_text(cert.subject_name()),
        not_before: time::from_asn1(cert.not_before())?,
        not_after: time::from_asn1(cert.not_after())?,
        from_csr,
        mac,
        authority,
        revoked: None,
    })
}

fn load_issuer(dir: &Path, cert_file: &str, key_file: &str, parents: Vec<X509>) -> Result<Issuer> {
    let corrupt = |file: &str, reason: &str| Error::Corrupt { path: dir.join(file), reason: reason.to_string() };
    let read = |file: &str| {
        std::fs::read(dir.join(file)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => corrupt(file, "missing"),
            _ => Error::io(dir.join(file), e),
        })
    };
    let cert = X509::from_pem(&read(cert_file)?).map_err(|_| corrupt(cert_file, "not a PEM certificate"))?;
    let key = PKey::private_key_from_pem_callback(&read(key_file)?, |_| Ok(0))
        .map_err(|_| corrupt(key_file, "not an unencrypted PEM private key"))?;
    Issuer::from_parts(cert, key, parents)
        .map_err(|_| corrupt(key_file, &format!("this key does not belong to {cert_file} (wrong key)")))
}
