//! The media port pool: RTP on an even port, RTCP on the next one (RFC 3550 §11), taken from a
//! configured range and bound at once. A [`PortPair`] gives its ports back when dropped, so every
//! path that loses it (call end, error, panic unwinding) frees them.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use crate::error::MediaError;

#[derive(Debug)]
struct PoolState {
    in_use: HashSet<u16>,
    next: u16,
}

/// A range of even media ports shared by all calls. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PortPool {
    min: u16,
    max: u16,
    state: Arc<Mutex<PoolState>>,
}

impl PortPool {
    /// A pool over `[min, max]`; RTP ports are the even ones whose `+1` is still in range.
    pub fn new(min: u16, max: u16) -> Result<PortPool, MediaError> {
        let first = min.checked_add(min % 2).ok_or_else(|| MediaError::Config("the port range is empty".into()))?;
        if min == 0 || first >= max {
            return Err(MediaError::Config(format!(
                "the media port range {min}-{max} holds no even/odd port pair (and port 0 is not allowed)"
            )));
        }
        Ok(PortPool { min: first, max, state: Arc::new(Mutex::new(PoolState { in_use: HashSet::new(), next: first })) })
    }

    /// How many RTP ports (pairs) the range holds.
    pub fn capacity(&self) -> usize {
        usize::from(self.max - self.min).div_ceil(2)
    }

    /// How many pairs are taken now.
    pub fn in_use(&self) -> usize {
        self.state.lock().map(|s| s.in_use.len()).unwrap_or(0)
    }

    /// Takes a free pair and binds both sockets on `ip`. Ports that another program holds are
    /// skipped. Fails with `PortsExhausted` when every pair was tried.
    pub fn allocate(&self, ip: IpAddr) -> Result<PortPair, MediaError> {
        let cap = self.capacity();
        for _ in 0..cap {
            let Some(port) = self.reserve() else {
                break;
            };
            match bind_pair(ip, port) {
                Ok((rtp, rtcp)) => {
                    return Ok(PortPair { rtp, rtcp, port, pool: self.clone() });
                }
                Err(_) => self.release(port),
            }
        }
        Err(MediaError::PortsExhausted { min: self.min, max: self.max })
    }

    fn reserve(&self) -> Option<u16> {
        let mut s = self.state.lock().ok()?;
        for _ in 0..self.capacity() {
            let p = s.next;
            let next = p.saturating_add(2);
            s.next = if next >= self.max { self.min } else { next };
            if s.in_use.insert(p) {
                return Some(p);
            }
        }
        None
    }

    fn release(&self, port: u16) {
        if let Ok(mut s) = self.state.lock() {
            s.in_use.remove(&port);
        }
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> Result<(UdpSocket, UdpSocket), MediaError> {
    let bind = |p: u16| {
        let addr = SocketAddr::new(ip, p);
        let s = UdpSocket::bind(addr).map_err(|source| MediaError::Bind { addr, source })?;
        s.set_nonblocking(true).map_err(MediaError::Io)?;
        Ok::<_, MediaError>(s)
    };
    let rtp = bind(port)?;
    let rtcp = bind(port.checked_add(1).ok_or(MediaError::Config("port out of range".into()))?)?;
    Ok((rtp, rtcp))
}

/// An RTP/RTCP socket pair from the pool; the ports return to the pool on drop.
#[derive(Debug)]
pub struct PortPair {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    port: u16,
    pool: PortPool,
}

impl PortPair {
    /// The RTP port (even); RTCP is this plus one.
    pub fn rtp_port(&self) -> u16 {
        self.port
    }

    /// The local RTP address.
    pub fn rtp_addr(&self) -> Result<SocketAddr, MediaError> {
        Ok(self.rtp.local_addr()?)
    }

    /// Clones of the two sockets (for the relay task). The pair keeps the pool reservation.
    pub(crate) fn try_clone(&self) -> Result<(UdpSocket, UdpSocket), MediaError> {
        Ok((self.rtp.try_clone()?, self.rtcp.try_clone()?))
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}
