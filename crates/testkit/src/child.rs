//! A child process stopped by PID when its guard is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a harness could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// A program is not installed.
    #[error("cannot run {program}: {source}; fix: install the Debian package {package} (listed in .ci/packages.txt)")]
    Missing {
        /// The program.
        program: String,
        /// The Debian package that has it.
        package: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program started but did not become ready in time.
    #[error("{what} did not become ready within {waited_ms} ms: {detail}")]
    NotReady {
        /// What was started.
        what: String,
        /// How long we waited.
        waited_ms: u128,
        /// Its output or the last error.
        detail: String,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl KitError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KitError {
        let what = what.into();
        move |source| KitError::Io { what, source }
    }
}

/// Owns a child process; dropping it stops the process (SIGTERM by PID, then SIGKILL).
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    /// Files the child writes its output to (for error messages).
    pub log: Option<PathBuf>,
}

impl ChildGuard {
    /// Wrap a spawned child.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child: Some(child), log: None }
    }

    /// Spawn `program args…` under `timeout lifetime_s`, so that it ends on its own.
    pub fn spawn_limited(
        program: &str,
        package: &str,
        args: &[String],
        lifetime_s: u64,
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<ChildGuard, KitError> {
        // Check the program exists first: `timeout` would report a missing one only by exit code.
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
            .unwrap_or(false)
            || std::path::Path::new(program).is_file();
        if !found {
            return Err(KitError::Missing {
                program: program.to_string(),
                package: package.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"),
            });
        }
        let child = Command::new("timeout")
            .arg(lifetime_s.to_string())
            .arg(program)
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| KitError::Missing { program: "timeout".into(), package: "coreutils".into(), source })?;
        Ok(ChildGuard::new(child))
    }

    /// The PID of the direct child (the `timeout` wrapper when spawned by [`Self::spawn_limited`]).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Mutable access to the child (to take its pipes).
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Stop the process now: SIGTERM (which `timeout` forwards to its program), a bounded wait,
    /// then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
