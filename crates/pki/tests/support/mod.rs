//! Helpers shared by the integration tests: the system `openssl` binary, PEM files in a
//! temporary directory, and directory snapshots for "nothing changed on disk" checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trunkgate_pki::openssl::x509::X509;

/// Run the system `openssl` with `args` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the system openssl binary must be installed (Debian package openssl)")
}

/// Run `openssl` and return stdout+stderr; panic with both if it fails.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

/// Run `openssl` expecting failure; return stdout+stderr.
pub fn openssl_fails(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "openssl {args:?} should have failed:\n{text}");
    text
}

/// Write PEM certificates to `dir/name`.
pub fn write_certs(dir: &Path, name: &str, certs: &[&X509]) -> PathBuf {
    let path = dir.join(name);
    let pem: Vec<u8> = certs.iter().flat_map(|c| c.to_pem().unwrap()).collect();
    std::fs::write(&path, pem).unwrap();
    path
}

/// Every file under `dir` (recursively) with its bytes and mode.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(p.clone(), (Vec::new(), meta.permissions().mode()));
                stack.push(p);
            } else {
                out.insert(p.clone(), (std::fs::read(&p).unwrap(), meta.permissions().mode()));
            }
        }
    }
    out
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
