//! Helpers for the `trunkgate pki` end-to-end tests: run the binary and the system `openssl`,
//! and snapshot directories for "nothing changed on disk" checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Exit status, stdout, stderr.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

fn run_in(program: &str, dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `trunkgate pki ARGS` in `dir`.
pub fn pki(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["pki"];
    all.extend_from_slice(args);
    run_in(env!("CARGO_BIN_EXE_trunkgate"), dir, &all)
}

/// `trunkgate pki ARGS`, which must succeed; returns stdout.
pub fn pki_ok(dir: &Path, args: &[&str]) -> String {
    let r = pki(dir, args);
    assert!(r.ok, "trunkgate pki {args:?} failed:\n{}{}", r.stdout, r.stderr);
    r.stdout
}

/// `openssl ARGS` in `dir`: stdout + stderr, and whether it succeeded.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let r = run_in("openssl", dir, args);
    (r.ok, r.stdout + &r.stderr)
}

pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

/// Every file under `dir` with its bytes and mode.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let bytes = if meta.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.insert(p, (bytes, meta.permissions().mode()));
        }
    }
    out
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
