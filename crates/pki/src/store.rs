//! Crash-safe files: every write goes to a temporary file in the destination's directory, is
//! fsynced, and is renamed over the destination only when every file of the operation has been
//! staged ([`Txn`]). A failure before the commit removes the temporary files, so a refused or
//! failed command leaves the disk as it found it. [`DirLock`] serialises commands on one CA
//! directory (an advisory `flock` on `DIR/.lock`, released when the process exits, even by a crash).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Name of the lock file inside a CA directory.
pub(crate) const LOCK_FILE: &str = ".lock";

/// How long a command waits for another one on the same directory.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An exclusive lock on a CA directory, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Lock `dir` (creating its lock file if needed), waiting up to 30 s for another command.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => return Err(Error::Locked { dir: dir.to_path_buf() }),
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }
}

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 0644 (less the umask): certificates, CRLs, the state file.
    Public,
    /// 0600: private keys.
    Private,
}

/// A set of files written all together or not at all.
#[derive(Debug, Default)]
pub(crate) struct Txn {
    /// (temporary, destination), in staging order; renamed in that order.
    staged: Vec<(PathBuf, PathBuf)>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Txn {
    pub(crate) fn new() -> Txn {
        Txn::default()
    }

    /// Refuse `path` if it exists and `force` is off.
    pub(crate) fn check_free(path: &Path, force: bool) -> Result<()> {
        if !force && path.symlink_metadata().is_ok() {
            return Err(Error::Exists { path: path.to_path_buf() });
        }
        Ok(())
    }

    /// Write `bytes` to a temporary file next to `dest`, fsynced, ready to be renamed.
    pub(crate) fn stage(&mut self, dest: &Path, bytes: &[u8], mode: Mode) -> Result<()> {
        let dir = parent(dest);
        let name = dest
            .file_name()
            .ok_or_else(|| Error::invalid("output path", dest.display().to_string(), "names no file"))?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(match mode {
                Mode::Public => 0o644,
                Mode::Private => 0o600,
            })
            .open(&tmp)
            .map_err(|e| Error::io(dest, e))?;
        self.staged.push((tmp.clone(), dest.to_path_buf()));
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        Ok(())
    }

    /// Rename every staged file into place (in staging order), then fsync the directories.
    pub(crate) fn commit(mut self) -> Result<()> {
        let staged = std::mem::take(&mut self.staged);
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (i, (tmp, dest)) in staged.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, dest) {
                // Put the rest back for Drop to clean up.
                self.staged = staged.iter().skip(i).cloned().collect();
                return Err(Error::io(dest, e));
            }
            let d = parent(dest);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        for d in dirs {
            // Make the renames durable; a directory that cannot be opened for fsync is not an error.
            if let Ok(f) = File::open(&d) {
                let _ = f.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// The directory a path is in (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write one file atomically (temporary file, fsync, rename), mode 0600 when `private`;
/// refuse to replace an existing file unless `force`.
pub fn write_file(path: &Path, bytes: &[u8], private: bool, force: bool) -> Result<()> {
    Txn::check_free(path, force)?;
    let mut txn = Txn::new();
    txn.stage(path, bytes, if private { Mode::Private } else { Mode::Public })?;
    txn.commit()
}

/// Create a directory with mode 0700 if it does not exist.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uncommitted_transaction_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut t = Txn::new();
            t.stage(&d.path().join("a"), b"one", Mode::Public).unwrap();
            t.stage(&d.path().join("b"), b"two", Mode::Private).unwrap();
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        let mut t = Txn::new();
        t.stage(&d.path().join("k"), b"secret", Mode::Private).unwrap();
        t.commit().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("k")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(Txn::check_free(&d.path().join("k"), false).is_err());
        assert!(Txn::check_free(&d.path().join("k"), true).is_ok());
    }

    #[test]
    fn second_lock_waits_for_the_first() {
        let d = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(d.path()).unwrap();
        let path = d.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let _second = DirLock::acquire(&path).unwrap();
            tx.send(()).unwrap();
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "second lock taken while the first is held");
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        h.join().unwrap();
    }
}
