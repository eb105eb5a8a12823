//! Connections: TLS client contexts with a chosen suite, group and version; TCP connects from a
//! rotating set of loopback source addresses; and [`Link`], one persistent connection (UDP
//! socket, TCP or TLS stream) whose received messages are handed to the waiting transaction
//! by Call-ID.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_openssl::SslStream;
use trunkgate_sip::{Frame, Limits, StreamFramer};

use crate::msg::{self, Received};
use crate::{BenchError, TlsOptions, Transport};

/// A TLS client context for these options.
pub fn connector(o: &TlsOptions) -> Result<SslConnector, BenchError> {
    let tls = |e: openssl::error::ErrorStack| BenchError::Tls(e.to_string());
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(tls)?;
    if let Some(c) = &o.ciphers {
        b.set_cipher_list(c).map_err(tls)?;
    }
    if let Some(g) = &o.groups {
        b.set_groups_list(g).map_err(tls)?;
    }
    match o.version.as_deref() {
        Some("1.2") => {
            b.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(tls)?;
            b.set_max_proto_version(Some(SslVersion::TLS1_2)).map_err(tls)?;
        }
        Some("1.3") => b.set_min_proto_version(Some(SslVersion::TLS1_3)).map_err(tls)?,
        None | Some("any") => {}
        Some(v) => return Err(BenchError::Usage(format!("unknown TLS version {v:?} (1.2, 1.3 or any)"))),
    }
    match &o.ca {
        Some(ca) => b.set_ca_file(ca).map_err(tls)?,
        None => b.set_verify(SslVerifyMode::NONE),
    }
    // Small buffers on idle connections (memory per connection on the client side too).
    b.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
    Ok(b.build())
}

/// Why one connection attempt failed, in words that group well.
pub fn io_cause(what: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => "connection refused".to_owned(),
        K::ConnectionReset => "connection reset".to_owned(),
        K::ConnectionAborted => "connection aborted".to_owned(),
        K::UnexpectedEof => "closed by server".to_owned(),
        K::BrokenPipe => "broken pipe".to_owned(),
        K::AddrNotAvailable => "no local address/port free (use more --source addresses)".to_owned(),
        K::TimedOut => "timeout".to_owned(),
        _ => match e.raw_os_error() {
            Some(24) => "too many open files (raise ulimit -n)".to_owned(),
            _ => e.to_string(),
        },
    };
    format!("{what}: {kind}")
}

fn ssl_cause(e: &openssl::ssl::Error) -> String {
    if let Some(io) = e.io_error() {
        return io_cause("tls handshake", io);
    }
    if let Some(stack) = e.ssl_error() {
        if let Some(r) = stack.errors().first().and_then(|x| x.reason()) {
            return format!("tls handshake: {r}");
        }
    }
    match e.code() {
        openssl::ssl::ErrorCode::ZERO_RETURN | openssl::ssl::ErrorCode::SYSCALL => {
            "tls handshake: closed by server".to_owned()
        }
        c => format!("tls handshake: error {}", c.as_raw()),
    }
}

/// Opens a TCP connection from `source` (port chosen by the kernel) or any address.
pub async fn tcp_connect(target: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let sock =
        if target.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| io_cause("socket", &e))?;
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0)).map_err(|e| io_cause("bind", &e))?;
    }
    let s = sock.connect(target).await.map_err(|e| io_cause("connect", &e))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// A TLS handshake on `tcp`.
pub async fn tls_handshake(
    tcp: TcpStream,
    conn: &SslConnector,
    o: &TlsOptions,
) -> Result<SslStream<TcpStream>, String> {
    let cfg = conn.configure().map_err(|e| format!("tls setup: {e}"))?;
    let name = o.server_name.clone().unwrap_or_else(|| "localhost".to_owned());
    let ssl = cfg
        .verify_hostname(o.ca.is_some() && o.server_name.is_some())
        .use_server_name_indication(o.server_name.is_some())
        .into_ssl(&name)
        .map_err(|e| format!("tls setup: {e}"))?;
    let mut s = SslStream::new(ssl, tcp).map_err(|e| format!("tls setup: {e}"))?;
    Pin::new(&mut s).connect().await.map_err(|e| ssl_cause(&e))?;
    Ok(s)
}

/// The cause reported when a UDP server's port is closed.
pub const UDP_REFUSED: &str = "udp: connection refused (ICMP port unreachable)";

/// Receivers waiting for messages of a Call-ID.
type Waiters = Mutex<HashMap<String, mpsc::UnboundedSender<Received>>>;

enum Tx {
    Udp(Arc<UdpSocket>, SocketAddr),
    Stream(mpsc::Sender<Vec<u8>>),
}

/// One persistent connection to the server.
pub struct Link {
    tx: Tx,
    refused: Arc<AtomicBool>,
    waiters: Arc<Waiters>,
    /// Our address on it.
    pub local: SocketAddr,
    /// Its transport.
    pub transport: Transport,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("local", &self.local).field("transport", &self.transport).finish()
    }
}

/// A registration of a Call-ID on a link; unregistered on drop.
#[derive(Debug)]
pub struct Waiter {
    /// Messages for the Call-ID.
    pub rx: mpsc::UnboundedReceiver<Received>,
    call_id: String,
    waiters: Arc<Waiters>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(&self.call_id);
        }
    }
}

/// Answer to an in-dialog request the server sends us (BYE, OPTIONS…): 200, built from the
/// request's bytes.
fn auto_answer(raw: &[u8]) -> Option<Vec<u8>> {
    let limits = Limits::default();
    let m = trunkgate_sip::parse_datagram(raw, &limits).ok()?;
    let meth = m.method()?.as_str().to_owned();
    if meth == "ACK" {
        return None;
    }
    Some(trunkgate_sip::response_to(&m, 200, "OK", Some("bench")).to_bytes())
}

fn dispatch(waiters: &Waiters, raw: &[u8]) -> Option<Vec<u8>> {
    let r = msg::read(raw)?;
    if r.status.is_none() {
        return auto_answer(raw);
    }
    if let Ok(w) = waiters.lock() {
        if let Some(tx) = w.get(&r.call_id) {
            let _ = tx.send(r);
        }
    }
    None
}

impl Link {
    /// Opens a link of `transport` to `target`.
    pub async fn open(
        transport: Transport,
        target: SocketAddr,
        source: Option<IpAddr>,
        tls: Option<(&SslConnector, &TlsOptions)>,
    ) -> Result<Link, String> {
        let waiters: Arc<Waiters> = Arc::new(Mutex::new(HashMap::new()));
        match transport {
            Transport::Udp => {
                let any = if target.is_ipv4() { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u16; 8]) };
                let sock = UdpSocket::bind(SocketAddr::new(source.unwrap_or(any), 0))
                    .await
                    .map_err(|e| io_cause("udp bind", &e))?;
                // Connected: the kernel picks the source address toward the target (our Via), and
                // only the target's datagrams are received.
                sock.connect(target).await.map_err(|e| io_cause("udp connect", &e))?;
                let sock = Arc::new(sock);
                let local = sock.local_addr().map_err(|e| io_cause("udp", &e))?;
                let refused = Arc::new(AtomicBool::new(false));
                let (rs, w, rf) = (sock.clone(), waiters.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_535];
                    loop {
                        let (n, from) = match rs.recv_from(&mut buf).await {
                            Ok(x) => x,
                            Err(e) => {
                                // ICMP port unreachable, reported on the connected socket.
                                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                                    rf.store(true, Ordering::Relaxed);
                                }
                                continue;
                            }
                        };
                        if let Some(ans) = dispatch(&w, buf.get(..n).unwrap_or_default()) {
                            let _ = rs.send_to(&ans, from).await;
                        }
                        if Arc::strong_count(&rs) == 1 {
                            break;
                        }
                    }
                });
                Ok(Link { tx: Tx::Udp(sock, target), refused, waiters, local, transport })
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = tcp_connect(target, source).await?;
                let local = tcp.local_addr().map_err(|e| io_cause("tcp", &e))?;
                let tx = match (transport, tls) {
                    (Transport::Tls, Some((c, o))) => spawn_stream(tls_handshake(tcp, c, o).await?, waiters.clone()),
                    _ => spawn_stream(tcp, waiters.clone()),
                };
                Ok(Link { tx: Tx::Stream(tx), refused: Arc::new(AtomicBool::new(false)), waiters, local, transport })
            }
        }
    }

    /// Registers interest in the messages of a Call-ID.
    pub fn register(&self, call_id: &str) -> Waiter {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(call_id.to_owned(), tx);
        }
        Waiter { rx, call_id: call_id.to_owned(), waiters: self.waiters.clone() }
    }

    /// Sends one message.
    pub async fn send(&self, bytes: Vec<u8>) -> Result<(), String> {
        match &self.tx {
            Tx::Udp(s, to) => s.send_to(&bytes, *to).await.map(|_| ()).map_err(|e| {
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    self.refused.store(true, Ordering::Relaxed);
                    return UDP_REFUSED.to_owned();
                }
                io_cause("send", &e)
            }),
            Tx::Stream(tx) => tx.send(bytes).await.map_err(|_| "connection closed".to_owned()),
        }
    }

    /// Whether the server's host said its UDP port is closed (ICMP port unreachable).
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether messages may be lost (and should be retransmitted).
    pub fn unreliable(&self) -> bool {
        matches!(self.tx, Tx::Udp(..))
    }

    /// Whether the connection is gone.
    pub fn closed(&self) -> bool {
        match &self.tx {
            Tx::Udp(..) => false,
            Tx::Stream(tx) => tx.is_closed(),
        }
    }
}

/// Starts the writer (coalescing queued messages into one write) and the reader of a stream.
fn spawn_stream<S>(stream: S, waiters: Arc<Waiters>) -> mpsc::Sender<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4096);
    let answers = tx.clone();
    let writer = tokio::spawn(async move {
        let mut out = Vec::with_capacity(16_384);
        while let Some(first) = rx.recv().await {
            out.clear();
            out.extend_from_slice(&first);
            while out.len() < 60_000 {
                match rx.try_recv() {
                    Ok(more) => out.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if wr.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    });
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(Limits { max_message_size: 65_536, ..Limits::default() });
        let mut buf = vec![0u8; 16_384];
        'read: loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(buf.get(..n).unwrap_or_default());
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(m))) => {
                        if let Some(ans) = dispatch(&waiters, &m) {
                            let _ = answers.try_send(ans);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'read,
                }
            }
        }
        // The connection is gone: wake every waiting transaction (their channels close).
        if let Ok(mut w) = waiters.lock() {
            w.clear();
        }
        writer.abort();
    });
    tx
}
