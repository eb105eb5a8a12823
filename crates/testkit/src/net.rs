//! Free ports and bounded waits.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::child::KitError;

static NEXT: AtomicU16 = AtomicU16::new(0);

fn candidate() -> u16 {
    // Spread tests of parallel binaries over the range by PID, then walk it.
    let base = 20_000 + (std::process::id() % 2000) as u16 * 10;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    20_000 + (base - 20_000 + n.wrapping_mul(7)) % 40_000
}

/// A TCP port on 127.0.0.1 that nobody listens on right now (and its UDP twin is free too,
/// so Kamailio can use both).
pub fn free_tcp_port() -> u16 {
    for _ in 0..2000 {
        let p = candidate();
        let tcp = TcpListener::bind(("127.0.0.1", p));
        let udp = UdpSocket::bind(("127.0.0.1", p));
        if tcp.is_ok() && udp.is_ok() {
            return p;
        }
    }
    // The OS choice as a last resort.
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A UDP port on 127.0.0.1 that is free right now.
pub fn free_udp_port() -> u16 {
    free_tcp_port()
}

/// Wait until something accepts TCP connections on `addr`, at most `limit`.
pub fn wait_tcp(addr: SocketAddr, limit: Duration) -> Result<(), KitError> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(KitError::NotReady { what: format!("a listener on {addr}"), waited_ms: limit.as_millis(), detail: last })
}
