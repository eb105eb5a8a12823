//! Trust: anchors from PEM/DER files and directories, and from a CA bundle filtered by a trust
//! table of names + OpenSSL subject hashes (SPEC T6, P6). Per-peer anchor sets (T4 trustpoints)
//! are just more [`TrustAnchors`] values.

use std::collections::BTreeMap;
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use serde::Deserialize;

use crate::certs;
use crate::error::TlsError;

/// Debian's CA bundle.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    #[serde(default)]
    source: String,
    root: Vec<RawRoot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoot {
    authority: String,
    name: String,
    subject_hash: String,
    #[serde(default)]
    also_known_as: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
}

/// One root of a trust table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustEntry {
    /// The CA company.
    pub authority: String,
    /// The root's name (and other names that share the subject hash).
    pub names: Vec<String>,
    /// OpenSSL subject hash (`X509_NAME_hash`), as `openssl x509 -subject_hash` prints it.
    pub subject_hash: u32,
    /// Regions that use this root (informational).
    pub regions: Vec<String>,
}

/// A trust table: a set of roots keyed by subject hash.
#[derive(Debug, Clone)]
pub struct TrustTable {
    /// Table name.
    pub name: String,
    /// Where the table comes from.
    pub source: String,
    /// Entries, one per subject hash (duplicates in the file are merged: the table is a set).
    pub entries: Vec<TrustEntry>,
}

/// What selecting a trust table from a bundle found.
#[derive(Debug, Clone, Default)]
pub struct TrustReport {
    /// `(entry name, subject hash, certificate subject)` of each trusted certificate.
    pub loaded: Vec<(String, u32, String)>,
    /// Entries with no certificate in the bundle.
    pub missing: Vec<TrustEntry>,
}

impl TrustTable {
    /// Load a trust table file.
    pub fn load(path: &Path) -> Result<TrustTable, TlsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?;
        TrustTable::parse(&text, &path.display().to_string())
    }

    /// Parse a trust table; `file` is used in messages.
    pub fn parse(text: &str, file: &str) -> Result<TrustTable, TlsError> {
        let raw: RawTable = toml::from_str(text).map_err(|e| TlsError::Config {
            file: file.to_string(),
            line: e.span().map(|s| crate::profile::line_of(text, s.start)).unwrap_or(0),
            message: e.message().to_string(),
            fix: "each [[root]] needs authority, name and subject_hash (8 hex digits)".into(),
        })?;
        let mut by_hash: BTreeMap<u32, usize> = BTreeMap::new();
        let mut entries: Vec<TrustEntry> = Vec::new();
        for r in raw.root {
            let hex = r.subject_hash.trim();
            let hash = if hex.len() == 8 { u32::from_str_radix(hex, 16).ok() } else { None };
            let Some(hash) = hash else {
                return Err(TlsError::Config {
                    file: file.to_string(),
                    line: find_line(text, &r.subject_hash),
                    message: format!("subject_hash {:?} of {} is not 8 hex digits", r.subject_hash, r.name),
                    fix: "copy the value printed by `openssl x509 -noout -subject_hash -in ROOT.pem`".into(),
                });
            };
            let mut names = vec![r.name];
            names.extend(r.also_known_as);
            match by_hash.get(&hash).and_then(|i| entries.get_mut(*i)) {
                Some(e) => {
                    for n in names {
                        if !e.names.contains(&n) {
                            e.names.push(n);
                        }
                    }
                }
                None => {
                    by_hash.insert(hash, entries.len());
                    entries.push(TrustEntry { authority: r.authority, names, subject_hash: hash, regions: r.regions });
                }
            }
        }
        Ok(TrustTable { name: raw.name, source: raw.source, entries })
    }

    /// Pick the table's roots out of a PEM bundle (e.g. [`SYSTEM_BUNDLE`]). Every certificate
    /// whose subject hash is listed is trusted; entries with no certificate are listed in the
    /// report (and logged), never skipped silently.
    pub fn select_from_bundle(&self, bundle: &Path) -> Result<(TrustAnchors, TrustReport), TlsError> {
        let all = certs::certs_from_file(bundle)?;
        let mut anchors = TrustAnchors::new(format!("{} from {}", self.name, bundle.display()));
        let mut report = TrustReport::default();
        for entry in &self.entries {
            let mut found = false;
            for c in &all {
                if c.subject_name_hash() == entry.subject_hash {
                    found = true;
                    let first = entry.names.first().cloned().unwrap_or_default();
                    report.loaded.push((first, entry.subject_hash, certs::subject(c)));
                    anchors.add(c.clone());
                }
            }
            if !found {
                tracing::warn!(
                    table = %self.name,
                    root = %entry.names.join(" / "),
                    hash = %format!("{:08x}", entry.subject_hash),
                    bundle = %bundle.display(),
                    "trust table root not found in the CA bundle"
                );
                report.missing.push(entry.clone());
            }
        }
        Ok((anchors, report))
    }
}

impl TrustReport {
    /// Turn missing entries into an error (for deployments that want every root present).
    pub fn require_complete(&self, table: &str, bundle: &str) -> Result<(), TlsError> {
        if self.missing.is_empty() {
            return Ok(());
        }
        Err(TlsError::TrustMissing {
            table: table.to_string(),
            bundle: bundle.to_string(),
            missing: self
                .missing
                .iter()
                .map(|e| format!("{} ({:08x})", e.names.first().map(String::as_str).unwrap_or("?"), e.subject_hash))
                .collect(),
        })
    }
}

fn find_line(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map_or(0, |i| i + 1)
}

/// A set of trusted root certificates.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    /// Describes where the anchors came from (for messages).
    pub description: String,
    certs: Vec<X509>,
    fingerprints: Vec<Vec<u8>>,
}

impl TrustAnchors {
    /// An empty set.
    pub fn new(description: impl Into<String>) -> TrustAnchors {
        TrustAnchors { description: description.into(), certs: Vec::new(), fingerprints: Vec::new() }
    }

    /// Add one certificate (duplicates are ignored).
    pub fn add(&mut self, cert: X509) {
        let fp = cert.digest(MessageDigest::sha256()).map(|d| d.to_vec()).unwrap_or_default();
        if !fp.is_empty() && self.fingerprints.contains(&fp) {
            return;
        }
        self.fingerprints.push(fp);
        self.certs.push(cert);
    }

    /// Anchors from PEM text or DER bytes.
    pub fn from_bytes(data: &[u8], origin: &str) -> Result<TrustAnchors, TlsError> {
        let mut t = TrustAnchors::new(origin);
        for c in certs::certs_from_bytes(data, origin)? {
            t.add(c);
        }
        Ok(t)
    }

    /// Anchors from a PEM (one or many) or DER file.
    pub fn from_file(path: &Path) -> Result<TrustAnchors, TlsError> {
        TrustAnchors::from_bytes(&certs::read(path)?, &path.display().to_string())
    }

    /// Anchors from every `*.pem`, `*.crt`, `*.cer`, `*.der` file of a directory.
    pub fn from_dir(dir: &Path) -> Result<TrustAnchors, TlsError> {
        let rd = std::fs::read_dir(dir).map_err(|source| TlsError::Read { path: dir.to_path_buf(), source })?;
        let mut paths: Vec<_> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "pem" | "crt" | "cer" | "der"))
            })
            .collect();
        paths.sort();
        let mut t = TrustAnchors::new(dir.display().to_string());
        for p in paths {
            for c in certs::certs_from_file(&p)? {
                t.add(c);
            }
        }
        Ok(t)
    }

    /// Merge another set into this one.
    pub fn extend(&mut self, other: &TrustAnchors) {
        for c in &other.certs {
            self.add(c.clone());
        }
    }

    /// The certificates.
    pub fn certs(&self) -> &[X509] {
        &self.certs
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// An OpenSSL store holding these anchors; an empty set is an error (fail closed).
    pub fn to_store(&self) -> Result<X509Store, TlsError> {
        if self.certs.is_empty() {
            return Err(TlsError::EmptyTrust { what: self.description.clone() });
        }
        let mut b = X509StoreBuilder::new().map_err(TlsError::ossl("X509 store"))?;
        for c in &self.certs {
            b.add_cert(c.clone()).map_err(TlsError::ossl(format!("trust anchor {}", certs::subject(c))))?;
        }
        Ok(b.build())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn t6_table_is_a_set() {
        let text = r#"
name = "x"
[[root]]
authority = "NS"
name = "A (2029)"
subject_hash = "4304c5e5"
[[root]]
authority = "NS"
name = "A (2030)"
subject_hash = "4304c5e5"
[[root]]
authority = "ISRG"
name = "ISRG Root X1"
subject_hash = "4042bcee"
"#;
        let t = TrustTable::parse(text, "x.toml").unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].names, vec!["A (2029)", "A (2030)"]);
        assert_eq!(t.entries[1].subject_hash, 0x4042bcee);
    }

    #[test]
    fn bad_hash_names_line() {
        let text = "name = \"x\"\n[[root]]\nauthority = \"a\"\nname = \"b\"\nsubject_hash = \"zz\"\n";
        let e = TrustTable::parse(text, "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml:5:"), "{e}");
    }

    #[test]
    fn unknown_key_refused() {
        let text = "name = \"x\"\n[[root]]\nauthority = \"a\"\nname = \"b\"\nsubject_hash = \"4042bcee\"\nhash = 1\n";
        assert!(TrustTable::parse(text, "x.toml").is_err());
    }

    #[test]
    fn t6_shipped_tables() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../trust");
        let t = TrustTable::load(&dir.join("byoc-public-roots.toml")).unwrap();
        // 87 rows in the seed, 4 duplicates (SSL.com x3, Network Solutions 4304c5e5).
        assert_eq!(t.entries.len(), 83);
        assert!(t.entries.iter().any(|e| e.subject_hash == 0x4042bcee));
        let d = TrustTable::load(&dir.join("byoc-cloud-digicert.toml")).unwrap();
        let hashes: Vec<u32> = d.entries.iter().map(|e| e.subject_hash).collect();
        assert_eq!(hashes, vec![0x244b5494, 0x607986c7, 0xdd8e9d41]);
    }

    #[test]
    fn t6_system_bundle_selection_reports_missing() {
        let bundle = Path::new(SYSTEM_BUNDLE);
        if !bundle.exists() {
            // CI installs ca-certificates (.ci/packages.txt); without it there is nothing to read.
            eprintln!("skipped: {SYSTEM_BUNDLE} absent");
            return;
        }
        let text = "name = \"x\"\n[[root]]\nauthority = \"ISRG\"\nname = \"ISRG Root X1\"\nsubject_hash = \"4042bcee\"\n[[root]]\nauthority = \"none\"\nname = \"Not A Root\"\nsubject_hash = \"00000001\"\n";
        let t = TrustTable::parse(text, "x").unwrap();
        let (anchors, report) = t.select_from_bundle(bundle).unwrap();
        assert_eq!(anchors.len(), 1);
        assert_eq!(anchors.certs()[0].subject_name_hash(), 0x4042bcee);
        assert_eq!(report.missing.len(), 1);
        assert_eq!(report.missing[0].names[0], "Not A Root");
        let e = report.require_complete("x", SYSTEM_BUNDLE).unwrap_err().to_string();
        assert!(e.contains("Not A Root (00000001)"), "{e}");
    }

    #[test]
    fn empty_store_refused() {
        assert!(matches!(TrustAnchors::new("nothing").to_store(), Err(TlsError::EmptyTrust { .. })));
    }
}
