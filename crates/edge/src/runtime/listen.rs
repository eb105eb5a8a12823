//! Listeners: TLS (trunk side, T1) and TCP (inside) accept loops with connection limits (total,
//! per IP), a handshake rate limit per IP and a handshake timeout; UDP receive loops.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use trunkgate_tls::TlsServer;

use super::{Input, Shared};
use crate::config::{Side, Transport};
use crate::core::{Dest, Origin};

/// Connection accounting shared by all listeners.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    state: Mutex<AdmissionState>,
}

#[derive(Debug, Default)]
struct AdmissionState {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    handshakes: HashMap<IpAddr, (Instant, u32)>,
}

/// A counted connection; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.admission.state.lock() {
            s.total = s.total.saturating_sub(1);
            if let Some(n) = s.per_ip.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    s.per_ip.remove(&self.ip);
                }
            }
        }
    }
}

impl Admission {
    /// Admits a connection from `ip`, or says why not.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
        handshakes_per_s: Option<u32>,
    ) -> Result<Slot, &'static str> {
        let mut s = self.state.lock().map_err(|_| "internal lock poisoned")?;
        if s.total >= max_total {
            return Err("connection limit reached");
        }
        if s.per_ip.get(&ip).copied().unwrap_or(0) >= max_per_ip {
            return Err("per-IP connection limit reached");
        }
        if let Some(rate) = handshakes_per_s {
            let now = Instant::now();
            if s.handshakes.len() > 100_000 {
                s.handshakes.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(1));
            }
            let entry = s.handshakes.entry(ip).or_insert((now, 0));
            if now.duration_since(entry.0) >= Duration::from_secs(1) {
                *entry = (now, 0);
            }
            if entry.1 >= rate {
                return Err("handshake rate limit per IP reached");
            }
            entry.1 += 1;
        }
        s.total += 1;
        *s.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot { admission: self.clone(), ip })
    }
}

/// Names from a verified peer certificate: DNS SANs, URI SAN hosts, and the CN.
pub(crate) fn peer_names(ssl: &openssl::ssl::SslRef) -> Vec<String> {
    let Some(cert) = ssl.peer_certificate() else { return Vec::new() };
    let mut names = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for san in sans.iter() {
            if let Some(d) = san.dnsname() {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    for cn in cert.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME) {
        names.push(String::from_utf8_lossy(cn.data().as_slice()).to_ascii_lowercase());
    }
    names
}

/// Accepts TLS connections on a trunk listener.
pub(crate) async fn tls_loop(shared: Arc<Shared>, listener: TcpListener, server: Arc<TlsServer>) {
    let e = &shared.cfg.edge;
    let (max_total, max_ip, rate) = (e.max_connections, e.max_connections_per_ip, e.handshakes_per_ip_per_second);
    let hs_timeout = Duration::from_millis(e.handshake_timeout_ms.max(100));
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let slot = match shared.admission.admit(peer.ip(), max_total, max_ip, Some(rate)) {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(%peer, "TLS connection refused: {why}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (shared, server) = (shared.clone(), server.clone());
        tokio::spawn(async move {
            let name = peer.to_string();
            match tokio::time::timeout(hs_timeout, server.accept(tcp, Some(peer.ip()), &name)).await {
                Err(_) => tracing::warn!(%peer, "TLS handshake not completed within {hs_timeout:?}: closed"),
                Ok(Err(e)) => {
                    tracing::warn!(%peer, reason = e.reason.code(), "TLS handshake failed: {e}");
                    shared.publish(super::EdgeEvent::TlsFailed { peer: name, reason: e.to_string() });
                }
                Ok(Ok((stream, info))) => {
                    let names = if info.peer_chain.is_empty() { Vec::new() } else { peer_names(stream.ssl()) };
                    shared.publish(super::EdgeEvent::TlsUp { info: Box::new(info.clone()), inbound: true });
                    let id = shared.next_conn();
                    let handle = super::conn::spawn(
                        shared.clone(),
                        id,
                        stream,
                        Side::Trunk,
                        Transport::Tls,
                        peer,
                        names,
                        Some(slot),
                        false,
                    );
                    let _ = shared.inputs.send(Input::ConnOpened { id, handle, key: None }).await;
                }
            }
        });
    }
}

/// Accepts plain TCP connections on an inside listener.
pub(crate) async fn tcp_loop(shared: Arc<Shared>, listener: TcpListener) {
    let e = &shared.cfg.edge;
    let (max_total, max_ip) = (e.max_connections, e.max_connections_per_ip);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(slot) = shared.admission.admit(peer.ip(), max_total, max_ip, None) else {
            tracing::warn!(%peer, "TCP connection refused: limit reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let id = shared.next_conn();
        let handle = super::conn::spawn(
            shared.clone(),
            id,
            tcp,
            Side::Inside,
            Transport::Tcp,
            peer,
            Vec::new(),
            Some(slot),
            false,
        );
        let _ = shared.inputs.send(Input::ConnOpened { id, handle, key: None }).await;
    }
}

/// Receives datagrams on a UDP listener.
pub(crate) async fn udp_loop(shared: Arc<Shared>, index: usize, socket: Arc<UdpSocket>, side: Side) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
        if n == 0 {
            continue;
        }
        let origin = Origin {
            reply: Dest::Udp { listener: index, addr: peer },
            side,
            transport: Transport::Udp,
            peer: SocketAddr::new(peer.ip(), peer.port()),
            verified_names: Vec::new(),
        };
        let bytes = buf.get(..n).unwrap_or_default().to_vec();
        if shared.inputs.send(Input::Message { origin, bytes }).await.is_err() {
            break;
        }
    }
}
