//! baresip 1.0 (Debian `baresip-core`) headless as a SIP/TLS user agent, driven over its
//! `ctrl_tcp` module (netstring-framed JSON commands and events). Recipe and pitfalls in
//! shared/peers: TLS listens on the `sip_listen` port + 1, `sip_certificate` is one PEM with the
//! certificate and the key, `net_interface 127.0.0.1`, no `stdio` module without a TTY. Run under
//! `timeout` by testkit's `ChildGuard` (killed by PID on drop).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trunkgate_testkit::ChildGuard;

/// A running baresip.
pub struct Baresip {
    /// Its directory (config, accounts, log).
    pub dir: PathBuf,
    /// Its ctrl_tcp port.
    pub ctrl: u16,
    /// Its SIP/TLS listener (`sip_listen` port + 1).
    pub tls: SocketAddr,
    guard: ChildGuard,
}

/// A port p with p and p+1 free for UDP and TCP (baresip's SIP and SIP/TLS listeners).
pub fn port_pair() -> u16 {
    for _ in 0..500 {
        let p = trunkgate_testkit::free_tcp_port();
        if p < 65_000
            && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port pair");
}

impl Baresip {
    /// Starts baresip in `dir` with this account line; `cert_pem` (certificate then key) is its
    /// TLS identity, `ca` the roots it verifies servers with, `dns` its DNS server.
    pub fn start(dir: &Path, account: &str, cert_pem: &Path, ca: &Path, dns: SocketAddr) -> Baresip {
        std::fs::create_dir_all(dir).unwrap();
        let sip = port_pair();
        let ctrl = trunkgate_testkit::free_tcp_port();
        let rtp = 30_000 + (std::process::id() % 200) as u16 * 100;
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip}\nsip_certificate {cert}\nsip_cafile {ca}\n\
             call_local_timeout 30\ncall_max_calls 2\n\
             audio_player aubridge,nil\naudio_alert aubridge,nil\naudio_source ausine,1000\n\
             ausrc_srate 48000\nausrc_channels 2\naudio_level no\nausrc_format s16\nauplay_format s16\n\
             auenc_format s16\naudec_format s16\naudio_buffer 20-160\nrtp_ports {rtp}-{rtp_end}\nrtcp_mux no\n\
             jitter_buffer_delay 5-10\ndns_server {dns}\nnet_interface 127.0.0.1\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aubridge.so\nmodule ausine.so\nmodule srtp.so\n\
             module_tmp uuid.so\nmodule_tmp account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl}\n",
            cert = cert_pem.display(),
            ca = ca.display(),
            rtp_end = rtp + 99,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let args: Vec<String> = vec!["-f".into(), dir.display().to_string(), "-s".into(), "-v".into()];
        let mut guard = ChildGuard::spawn_limited(
            "baresip",
            "baresip-core",
            &args,
            120,
            Stdio::null(),
            Stdio::from(log.try_clone().unwrap()),
            Stdio::from(log),
        )
        .unwrap_or_else(|e| panic!("baresip must run (CI installs it): {e}"));
        guard.log = Some(dir.join("baresip.log"));
        let tls = SocketAddr::from(([127, 0, 0, 1], sip + 1));
        Baresip { dir: dir.to_path_buf(), ctrl, tls, guard }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("baresip.log")).unwrap_or_default()).into_owned()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        !self.guard.exited()
    }
}

/// baresip's ctrl_tcp connection.
pub struct Ctrl {
    s: TcpStream,
    buf: Vec<u8>,
    token: u32,
    /// Every message received, in order.
    pub seen: Vec<String>,
}

impl Ctrl {
    /// Connects (bounded retries while baresip starts).
    pub async fn connect(port: u16) -> Ctrl {
        for _ in 0..150 {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
                return Ctrl { s, buf: Vec::new(), token: 0, seen: Vec::new() };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("baresip ctrl_tcp on port {port} did not come up");
    }

    async fn next(&mut self, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b':') {
                let n: usize = std::str::from_utf8(&self.buf[..i]).ok()?.parse().ok()?;
                if self.buf.len() > i + n + 1 {
                    let msg = String::from_utf8_lossy(&self.buf[i + 1..i + 1 + n]).into_owned();
                    self.buf.drain(..i + n + 2);
                    self.seen.push(msg.clone());
                    return Some(msg);
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut b = [0u8; 4096];
            let n = tokio::time::timeout(left, self.s.read(&mut b)).await.ok()?.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    /// Sends a command.
    pub async fn send(&mut self, cmd: &str, params: &str) {
        self.token += 1;
        let body = format!(r#"{{"command":"{cmd}","params":"{params}","token":"{}"}}"#, self.token);
        self.s.write_all(format!("{}:{body},", body.len()).as_bytes()).await.unwrap();
    }

    /// Waits (bounded) for an event of this type; `Err` with what was seen when the call closed
    /// first or nothing came.
    pub async fn wait_event(&mut self, ty: &str, limit: Duration) -> Result<String, String> {
        let want = format!(r#""type":"{ty}""#);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(m) = self.next(left).await else {
                return Err(format!("no {ty}; seen: {:?}", self.seen));
            };
            if m.contains(&want) {
                return Ok(m);
            }
            if ty != "CALL_CLOSED" && m.contains(r#""type":"CALL_CLOSED""#) {
                return Err(format!("call closed while waiting for {ty}: {m}"));
            }
        }
    }
}
