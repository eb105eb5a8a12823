//! `openssl s_server` (Debian `openssl`) as a TLS server under test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::child::{ChildGuard, KitError};
use crate::net::free_tcp_port;

/// How to start `openssl s_server`.
#[derive(Debug, Clone, Default)]
pub struct SServerOptions {
    /// Leaf certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Intermediates sent after the leaf (`-cert_chain`); None sends the leaf alone.
    pub chain: Option<PathBuf>,
    /// More arguments (`-tls1_2`, `-cipher …`, `-groups P-256`, `-verify 1`, …).
    pub args: Vec<String>,
}

/// A running `openssl s_server`; stopped on drop.
#[derive(Debug)]
pub struct SServer {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    guard: ChildGuard,
}

impl SServer {
    /// Start it on a free port and wait (bounded) until it prints `ACCEPT`. It serves any number
    /// of connections one after the other until dropped.
    pub fn start(opts: &SServerOptions) -> Result<SServer, KitError> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_tcp_port();
            let mut args: Vec<String> = vec![
                "s_server".into(),
                "-accept".into(),
                format!("127.0.0.1:{port}"),
                "-cert".into(),
                opts.cert.display().to_string(),
                "-key".into(),
                opts.key.display().to_string(),
            ];
            if let Some(c) = &opts.chain {
                args.push("-cert_chain".into());
                args.push(c.display().to_string());
            }
            args.extend(opts.args.iter().cloned());
            // s_server quits when its stdin closes: the pipe stays open, held by the guard.
            let mut guard = ChildGuard::spawn_limited(
                "openssl",
                "openssl",
                &args,
                crate::CHILD_LIFETIME_S,
                Stdio::piped(),
                Stdio::piped(),
                Stdio::piped(),
            )?;
            let Some(child) = guard.child_mut() else { continue };
            let (out, err) = (child.stdout.take(), child.stderr.take());
            let (tx, rx) = mpsc::channel::<String>();
            if let Some(out) = out {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        let _ = tx.send(line);
                    }
                });
            }
            if let Some(err) = err {
                std::thread::spawn(move || {
                    for line in BufReader::new(err).lines().map_while(Result::ok) {
                        let _ = tx.send(line);
                    }
                });
            }
            // Ready when it prints ACCEPT, or (with -quiet, which prints nothing) when it
            // accepts a TCP connection; bounded either way.
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(line) if line.contains("ACCEPT") => return Ok(SServer { addr, guard }),
                    Ok(line) => last = line,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if guard.exited() {
                    break;
                }
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Ok(SServer { addr, guard });
                }
            }
            guard.stop();
        }
        Err(KitError::NotReady { what: "openssl s_server".into(), waited_ms: 10_000, detail: last })
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        !self.guard.exited()
    }
}
