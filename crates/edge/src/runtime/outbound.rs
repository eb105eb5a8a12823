//! Opening connections the edge originates: TLS to a trunk peer by host name (resolved, or
//! mapped by the trunk's `connect` table; the certificate is verified for the host name, T7),
//! and plain TCP to the inside target.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use trunkgate_tls::{PeerOptions, TlsClient};

use super::{EdgeEvent, Input, Shared};
use crate::config::{Side, Transport};
use crate::core::Dest;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to connect for a peer, each with the name its certificate must carry: the trunk's
/// `connect` table first; then RFC 3263 — a peer configured as a bare domain goes through
/// NAPTR/SRV (certificate name: the domain, S4), `host:port` through A/AAAA only (§4.2).
async fn addresses(shared: &Shared, trunk: usize, host: &str, port: u16) -> Result<Vec<(SocketAddr, String)>, String> {
    let trunk_cfg = shared.cfg.trunks.get(trunk);
    if let Some(a) = trunk_cfg.and_then(|t| t.connect.get(host)) {
        return Ok(vec![(*a, host.to_string())]);
    }
    let bare = trunk_cfg.is_some_and(|t| t.peers.iter().any(|p| p == host));
    let text = if bare { host.to_string() } else { format!("{host}:{port}") };
    let target = trunkgate_resolve::SipTarget::parse(&text).map_err(|e| e.to_string())?;
    let resolver = shared.resolver.as_ref().ok_or("no DNS resolver (see the startup log)")?;
    let found = tokio::time::timeout(CONNECT_TIMEOUT * 2, resolver.resolve(&target))
        .await
        .map_err(|_| format!("DNS lookup of {host} timed out"))?
        .map_err(|e| e.to_string())?;
    Ok(found.into_iter().map(|t| (t.addr, t.cert_name)).collect())
}

/// Connects to a trunk peer and registers the connection, or reports why not.
pub(crate) async fn connect_peer(shared: Arc<Shared>, client: Arc<TlsClient>, key: Dest) {
    let Dest::Peer { trunk, host, port } = &key else { return };
    let hs_timeout = Duration::from_millis(shared.cfg.edge.handshake_timeout_ms.max(100));
    let addrs = match addresses(&shared, *trunk, host, *port).await {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(peer = %host, "cannot resolve trunk peer: {e}");
            let _ = shared.inputs.send(Input::ConnectFailed { key, reason: e }).await;
            return;
        }
    };
    let mut last = format!("{host} does not resolve (add it to DNS or to the trunk's connect table)");
    for (addr, cert_name) in addrs {
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                last = format!("TCP connect to {addr} failed: {e}");
                continue;
            }
            Err(_) => {
                last = format!("TCP connect to {addr} timed out");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        match tokio::time::timeout(hs_timeout, client.connect(&cert_name, &PeerOptions::default(), tcp)).await {
            Ok(Ok((stream, info))) => {
                shared.publish(EdgeEvent::TlsUp { info: Box::new(info), inbound: false });
                let id = shared.next_conn();
                let names = vec![cert_name.to_ascii_lowercase()];
                let handle = super::conn::spawn(
                    shared.clone(),
                    id,
                    stream,
                    Side::Trunk,
                    Transport::Tls,
                    addr,
                    names,
                    None,
                    true,
                );
                let _ = shared.inputs.send(Input::ConnOpened { id, handle, key: Some(key.clone()) }).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(peer = %host, %addr, reason = e.reason.code(), "TLS handshake failed: {e}");
                shared.publish(EdgeEvent::TlsFailed { peer: format!("{host} ({addr})"), reason: e.to_string() });
                last = e.to_string();
            }
            Err(_) => last = format!("TLS handshake with {addr} timed out"),
        }
    }
    tracing::warn!(peer = %host, "cannot reach trunk peer: {last}");
    let _ = shared.inputs.send(Input::ConnectFailed { key, reason: last }).await;
}

/// Connects to the inside target over TCP.
pub(crate) async fn connect_inside(shared: Arc<Shared>, key: Dest) {
    let Dest::InsideTcp(addr) = key else { return };
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            let id = shared.next_conn();
            let handle =
                super::conn::spawn(shared.clone(), id, tcp, Side::Inside, Transport::Tcp, addr, Vec::new(), None, true);
            let _ = shared.inputs.send(Input::ConnOpened { id, handle, key: Some(key) }).await;
        }
        _ => {
            let _ =
                shared.inputs.send(Input::ConnectFailed { key, reason: format!("TCP connect to {addr} failed") }).await;
        }
    }
}
