//! dnsmasq (Debian `dnsmasq-base`) as an authoritative-enough DNS server on 127.0.0.1 with the
//! NAPTR, SRV and A/AAAA records a test needs (RFC 3263 resolution tests).

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::child::{ChildGuard, KitError};
use crate::net::free_udp_port;

/// Records to serve.
#[derive(Debug, Clone, Default)]
pub struct DnsRecords {
    args: Vec<String>,
}

impl DnsRecords {
    /// No records.
    pub fn new() -> DnsRecords {
        DnsRecords::default()
    }

    /// A NAPTR record: `name order preference flags service replacement` (empty regexp).
    pub fn naptr(mut self, name: &str, order: u16, pref: u16, flags: &str, service: &str, replacement: &str) -> Self {
        self.args.push(format!("--naptr-record={name},{order},{pref},{flags},{service},,{replacement}"));
        self
    }

    /// An SRV record: `_service._proto.domain → target:port` with priority and weight.
    pub fn srv(mut self, name: &str, target: &str, port: u16, priority: u16, weight: u16) -> Self {
        self.args.push(format!("--srv-host={name},{target},{port},{priority},{weight}"));
        self
    }

    /// An A or AAAA record (by the address family).
    pub fn host(mut self, name: &str, addr: std::net::IpAddr) -> Self {
        self.args.push(format!("--host-record={name},{addr}"));
        self
    }
}

/// A running dnsmasq; stopped on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    /// Its UDP (and TCP) address on 127.0.0.1.
    pub addr: SocketAddr,
    guard: ChildGuard,
}

/// A DNS query for `ready.invalid` type A, for the readiness probe.
fn probe_query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["ready", "invalid"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

impl Dnsmasq {
    /// Start dnsmasq on a free port, serving only `records` (no upstream, no /etc/hosts), and
    /// wait (bounded) until it answers a query.
    pub fn start(records: &DnsRecords) -> Result<Dnsmasq, KitError> {
        let mut last = String::from("no answer");
        for _ in 0..3 {
            let port = free_udp_port();
            let mut args: Vec<String> = vec![
                "--keep-in-foreground".into(),
                "--conf-file=/dev/null".into(),
                "--no-resolv".into(),
                "--no-hosts".into(),
                "--no-poll".into(),
                "--bind-interfaces".into(),
                "--listen-address=127.0.0.1".into(),
                "--except-interface=nonexistent0".into(),
                format!("--port={port}"),
                "--pid-file".into(),
                "--user=root".into(),
                "--log-facility=-".into(),
            ];
            args.extend(records.args.iter().cloned());
            // Debian puts it in /usr/sbin, which a non-root PATH may lack.
            let program =
                if std::path::Path::new("/usr/sbin/dnsmasq").is_file() { "/usr/sbin/dnsmasq" } else { "dnsmasq" };
            let mut guard = ChildGuard::spawn_limited(
                program,
                "dnsmasq-base",
                &args,
                crate::CHILD_LIFETIME_S,
                Stdio::null(),
                Stdio::null(),
                Stdio::null(),
            )?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let sock = UdpSocket::bind("127.0.0.1:0").map_err(KitError::io("binding a UDP socket"))?;
            sock.set_read_timeout(Some(Duration::from_millis(200))).map_err(KitError::io("socket timeout"))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut buf = [0u8; 512];
            while Instant::now() < deadline {
                if guard.exited() {
                    last = "dnsmasq exited (port taken or bad option)".into();
                    break;
                }
                let _ = sock.send_to(&probe_query(), addr);
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    if n >= 12 && buf.first() == Some(&0x12) {
                        return Ok(Dnsmasq { addr, guard });
                    }
                }
            }
            guard.stop();
        }
        Err(KitError::NotReady { what: "dnsmasq".into(), waited_ms: 10_000, detail: last })
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        !self.guard.exited()
    }
}
