//! The tokio runtime around the sans-IO core: binds the listeners, runs one task that owns the
//! [`Core`] (no locks on the call path), turns [`Output::Send`] into writes on UDP sockets and
//! stream connections, opens outbound connections on demand, and reports what happens as
//! [`EdgeEvent`]s for `trunkgate demo`, tests and operations.

mod conn;
mod listen;
mod outbound;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trunkgate_sip::FastMap;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use trunkgate_sip::TransactionKey;
use trunkgate_tls::{ConnectionInfo, TlsClient};

use crate::config::{Config, Side, Transport};
use crate::core::{CallRecord, ConnId, Core, Dest, Origin, Output, Trace};
use crate::tlsconf;
use conn::ConnHandle;

/// Something that happened, for observers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EdgeEvent {
    /// A call ended (the call log record).
    CallEnded(CallRecord),
    /// A message was received or sent (with tracing on).
    Trace(Trace),
    /// A trunk peer went up or down.
    PeerHealth {
        /// Trunk.
        trunk: String,
        /// Peer.
        peer: String,
        /// State.
        up: bool,
    },
    /// A TLS connection was established (O1).
    TlsUp {
        /// What was negotiated.
        info: Box<ConnectionInfo>,
        /// Whether the peer opened it.
        inbound: bool,
    },
    /// A TLS handshake failed, with the reason in plain words.
    TlsFailed {
        /// The peer.
        peer: String,
        /// Why, and the fix.
        reason: String,
    },
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] tlsconf::TlsSetupError),
    /// The media port range.
    #[error("[media]: {0}")]
    Media(trunkgate_media::MediaError),
    /// A listener could not bind.
    #[error("listener {name:?} cannot bind {addr}: {error}\n  fix: {fix}")]
    Bind {
        /// Listener.
        name: String,
        /// Address.
        addr: SocketAddr,
        /// Error (in the message, not chained).
        error: std::io::Error,
        /// What to do.
        fix: &'static str,
    },
}

pub(crate) enum Input {
    Message { origin: Origin, bytes: Vec<u8> },
    Unframable { origin: Origin, bytes: Vec<u8>, error: trunkgate_sip::ParseError },
    ConnOpened { id: ConnId, handle: ConnHandle, key: Option<Dest> },
    ConnClosed { id: ConnId },
    ConnectFailed { key: Dest, reason: String },
    Drain,
}

pub(crate) struct Shared {
    pub cfg: Config,
    pub inputs: mpsc::Sender<Input>,
    events: broadcast::Sender<EdgeEvent>,
    pub admission: Arc<listen::Admission>,
    pub resolver: Option<trunkgate_resolve::Resolver>,
    conn_ids: AtomicU64,
}

impl Shared {
    pub(crate) fn next_conn(&self) -> ConnId {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn publish(&self, e: EdgeEvent) {
        let _ = self.events.send(e);
    }
}

/// Options for [`Edge::start`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Publish [`EdgeEvent::Trace`] for every message (the call ladder).
    pub trace: bool,
}

/// A running edge.
#[derive(Debug)]
pub struct Edge {
    addrs: Vec<(String, SocketAddr)>,
    events: broadcast::Sender<EdgeEvent>,
    inputs: mpsc::Sender<Input>,
    core: JoinHandle<()>,
    listeners: Vec<JoinHandle<()>>,
}

impl Edge {
    /// Binds every listener, builds the TLS policies and starts the tasks. Listeners with port 0
    /// get a free port; [`Edge::local_addr`] tells which.
    pub async fn start(mut cfg: Config, opts: Options) -> Result<Edge, StartError> {
        let mut tcp = Vec::new();
        let mut udp: Vec<Option<Arc<UdpSocket>>> = Vec::new();
        let mut addrs = Vec::new();
        for l in cfg.listeners.iter_mut() {
            let bind_err = |error: std::io::Error| {
                let fix = match error.kind() {
                    std::io::ErrorKind::AddrInUse => "another program holds that port: stop it or choose another port",
                    std::io::ErrorKind::AddrNotAvailable => {
                        "this machine has no such address: use one of its own (see `ip addr`), or 0.0.0.0 with [media] addresses set"
                    }
                    std::io::ErrorKind::PermissionDenied => "ports below 1024 need root or CAP_NET_BIND_SERVICE",
                    _ => "check the address in the [[listen]] section",
                };
                StartError::Bind { name: l.name.clone(), addr: l.address, error, fix }
            };
            match l.transport {
                Transport::Udp => {
                    let s = UdpSocket::bind(l.address).await.map_err(bind_err)?;
                    l.address = s.local_addr().map_err(bind_err)?;
                    udp.push(Some(Arc::new(s)));
                    tcp.push(None);
                }
                Transport::Tcp | Transport::Tls => {
                    let s = TcpListener::bind(l.address).await.map_err(bind_err)?;
                    l.address = s.local_addr().map_err(bind_err)?;
                    tcp.push(Some(s));
                    udp.push(None);
                }
            }
            addrs.push((l.name.clone(), l.address));
        }
        let mut servers = Vec::new();
        for l in &cfg.listeners {
            servers.push(if l.transport == Transport::Tls {
                Some(Arc::new(tlsconf::server_for(l, &cfg)?))
            } else {
                None
            });
        }
        let mut clients = Vec::new();
        for t in &cfg.trunks {
            clients.push(Arc::new(tlsconf::client_for(t, &cfg)?));
        }
        let (inputs, rx) = mpsc::channel(8192);
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            inputs: inputs.clone(),
            events: events.clone(),
            admission: Arc::new(listen::Admission::default()),
            resolver: match trunkgate_resolve::Resolver::new(&trunkgate_resolve::ResolverOptions {
                nameserver: cfg.edge.dns_server,
                ..Default::default()
            }) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!("no DNS resolver, trunk peers must be in the connect table: {e}");
                    None
                }
            },
            conn_ids: AtomicU64::new(1),
        });
        let mut listeners = Vec::new();
        for (i, l) in cfg.listeners.iter().enumerate() {
            let sh = shared.clone();
            let task = match (l.transport, tcp.get_mut(i).and_then(Option::take), udp.get(i).cloned().flatten()) {
                (Transport::Tls, Some(lis), _) => match servers.get(i).cloned().flatten() {
                    Some(server) => tokio::spawn(listen::tls_loop(sh, lis, server)),
                    None => continue,
                },
                (Transport::Tcp, Some(lis), _) => tokio::spawn(listen::tcp_loop(sh, lis)),
                (Transport::Udp, _, Some(sock)) => tokio::spawn(listen::udp_loop(sh, i, sock, l.side)),
                _ => continue,
            };
            listeners.push(task);
        }
        let media = if cfg.media.enabled {
            Some(
                trunkgate_media::MediaManager::new(trunkgate_media::MediaConfig {
                    port_min: cfg.media.port_min,
                    port_max: cfg.media.port_max,
                    ..Default::default()
                })
                .map_err(StartError::Media)?,
            )
        } else {
            None
        };
        let mut core = Core::new(cfg, opts.trace);
        if let Some(m) = media {
            core.set_media(m);
        }
        let task = CoreTask {
            shared,
            core,
            rx,
            udp,
            clients,
            conns: FastMap::default(),
            by_key: FastMap::default(),
            pending: FastMap::default(),
        };
        let core = tokio::spawn(task.run());
        Ok(Edge { addrs, events, inputs, core, listeners })
    }

    /// The bound address of a listener.
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Subscribe to events.
    pub fn subscribe(&self) -> broadcast::Receiver<EdgeEvent> {
        self.events.subscribe()
    }

    /// Graceful shutdown: stop accepting connections and new calls, let calls in progress end
    /// (up to `edge.shutdown_grace_s`), then stop.
    pub async fn shutdown(self) {
        for l in &self.listeners {
            l.abort();
        }
        let _ = self.inputs.send(Input::Drain).await;
        let _ = self.core.await;
    }
}

/// A message waiting for its connection, with its transaction.
type Queued = (Vec<u8>, Option<TransactionKey>);

/// Messages queued for one destination while its connection is being opened.
const PENDING_PER_DEST: usize = 256;

struct CoreTask {
    shared: Arc<Shared>,
    core: Core,
    rx: mpsc::Receiver<Input>,
    udp: Vec<Option<Arc<UdpSocket>>>,
    clients: Vec<Arc<TlsClient>>,
    conns: FastMap<ConnId, ConnHandle>,
    by_key: FastMap<Dest, ConnId>,
    pending: FastMap<Dest, Vec<Queued>>,
}

impl CoreTask {
    async fn run(mut self) {
        self.core.start(Instant::now());
        let mut draining_since: Option<Instant> = None;
        let grace = Duration::from_secs(self.shared.cfg.edge.shutdown_grace_s);
        loop {
            let deadline = self.core.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let deadline = match draining_since {
                Some(_) => deadline.min(Instant::now() + Duration::from_millis(200)),
                None => deadline,
            };
            tokio::select! {
                input = self.rx.recv() => match input {
                    None => break,
                    Some(input) => self.input(input),
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.core.handle_timeout(Instant::now());
                }
            }
            self.flush();
            if let Some(since) = draining_since {
                if self.core.calls_in_progress() == 0 || since.elapsed() >= grace {
                    break;
                }
            }
            if draining_since.is_none() && self.core_draining() {
                draining_since = Some(Instant::now());
            }
        }
        tracing::info!("edge stopped");
    }

    fn core_draining(&self) -> bool {
        self.core.is_draining()
    }

    fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Message { origin, bytes } => self.core.handle_message(now, origin, &bytes),
            Input::Unframable { origin, bytes, error } => self.core.handle_unframable(&origin, &bytes, &error),
            Input::ConnOpened { id, handle, key } => {
                self.core.connection_opened(id, handle.side);
                self.conns.insert(id, handle);
                if let Some(k) = key {
                    self.by_key.insert(k.clone(), id);
                    for (bytes, txn) in self.pending.remove(&k).unwrap_or_default() {
                        self.write_conn(id, bytes, txn);
                    }
                }
            }
            Input::ConnClosed { id } => {
                self.conns.remove(&id);
                self.by_key.retain(|_, v| *v != id);
                self.core.connection_closed(id);
            }
            Input::ConnectFailed { key, reason } => {
                tracing::debug!(?key, "connect failed: {reason}");
                for (_, txn) in self.pending.remove(&key).unwrap_or_default() {
                    self.core.send_failed(now, txn.as_ref());
                }
            }
            Input::Drain => self.core.drain(),
        }
    }

    fn write_conn(&mut self, id: ConnId, bytes: Vec<u8>, txn: Option<TransactionKey>) {
        let ok = self.conns.get(&id).is_some_and(|h| h.writer.try_send(bytes).is_ok());
        if !ok {
            self.core.send_failed(Instant::now(), txn.as_ref());
        }
    }

    fn flush(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { dest, bytes, txn } => self.send(dest, bytes, txn),
                Output::CallEnded(r) => self.shared.publish(EdgeEvent::CallEnded(r)),
                Output::Trace(t) => self.shared.publish(EdgeEvent::Trace(t)),
                Output::PeerHealth { trunk, peer, up } => {
                    self.shared.publish(EdgeEvent::PeerHealth { trunk, peer, up })
                }
            }
        }
    }

    fn send(&mut self, dest: Dest, bytes: Vec<u8>, txn: Option<TransactionKey>) {
        match &dest {
            Dest::Udp { listener, addr } => {
                let sent = self
                    .udp
                    .get(*listener)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.try_send_to(&bytes, *addr).is_ok());
                if !sent {
                    self.core.send_failed(Instant::now(), txn.as_ref());
                }
            }
            Dest::Conn(id) => self.write_conn(*id, bytes, txn),
            Dest::Peer { .. } | Dest::InsideTcp(_) => {
                if let Some(&id) = self.by_key.get(&dest) {
                    if self.conns.contains_key(&id) {
                        self.write_conn(id, bytes, txn);
                        return;
                    }
                }
                let queue = self.pending.entry(dest.clone()).or_default();
                if queue.len() >= PENDING_PER_DEST {
                    self.core.send_failed(Instant::now(), txn.as_ref());
                    return;
                }
                let first = queue.is_empty();
                queue.push((bytes, txn));
                if first {
                    let shared = self.shared.clone();
                    match &dest {
                        Dest::Peer { trunk, .. } => match self.clients.get(*trunk).cloned() {
                            Some(client) => {
                                tokio::spawn(outbound::connect_peer(shared, client, dest));
                            }
                            None => {
                                let _ = self
                                    .shared
                                    .inputs
                                    .try_send(Input::ConnectFailed { key: dest, reason: "no such trunk".into() });
                            }
                        },
                        _ => {
                            tokio::spawn(outbound::connect_inside(shared, dest));
                        }
                    }
                }
            }
        }
    }
}

/// Which side a listener faces, by index (for tests).
pub fn listener_side(cfg: &Config, index: usize) -> Option<Side> {
    cfg.listeners.get(index).map(|l| l.side)
}
