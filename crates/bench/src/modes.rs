//! The four loads.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::ssl::SslConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use trunkgate_sip::{Frame, Limits, StreamFramer};

use crate::msg::{self, Dialog, Received};
use crate::net::{self, Link, Waiter};
use crate::stats::Shared;
use crate::{BenchConfig, Transport};

/// Spaces one worker's operations at `rate` per second.
struct Pacer {
    start: Instant,
    rate: Option<f64>,
    k: u64,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Pacer {
        Pacer { start: Instant::now(), rate, k: 0 }
    }

    async fn wait(&mut self) {
        if let Some(r) = self.rate {
            let at = self.start + Duration::from_secs_f64(self.k as f64 / r);
            self.k += 1;
            if at > Instant::now() {
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            }
        }
    }
}

fn worker_rate(cfg: &BenchConfig, workers: usize) -> Option<f64> {
    cfg.rate.map(|r| r / workers.max(1) as f64)
}

/// Sends a request (retransmitting on UDP: 0.5, 1, 2, 4 s…) and waits for its final response.
async fn transact(
    link: &Link,
    w: &mut Waiter,
    bytes: Vec<u8>,
    method: &str,
    deadline: Instant,
) -> Result<Received, String> {
    let mut resend = Duration::from_millis(500);
    let mut provisional = false;
    link.send(bytes.clone()).await?;
    loop {
        let wake = if link.unreliable() && !provisional { (Instant::now() + resend).min(deadline) } else { deadline };
        match tokio::time::timeout_at(tokio::time::Instant::from_std(wake), w.rx.recv()).await {
            Ok(Some(r)) if r.method.eq_ignore_ascii_case(method) => match r.status {
                Some(s) if s >= 200 => return Ok(r),
                _ => provisional = true,
            },
            Ok(Some(_)) => {}
            Ok(None) => return Err("connection closed".into()),
            Err(_) if link.refused() => return Err(net::UDP_REFUSED.into()),
            Err(_) if Instant::now() >= deadline => return Err(format!("{method} timeout")),
            Err(_) => {
                link.send(bytes.clone()).await?;
                resend = (resend * 2).min(Duration::from_secs(4));
            }
        }
    }
}

async fn options_op(link: &Link, uri: &str, timeout: Duration) -> Result<(), String> {
    let d = Dialog::new(link.transport, link.local, uri);
    let mut w = link.register(&d.call_id);
    let r =
        transact(link, &mut w, d.request("OPTIONS", uri, 1, &[], None), "OPTIONS", Instant::now() + timeout).await?;
    match r.status {
        Some(200..=299) => Ok(()),
        Some(s) => Err(format!("OPTIONS status {s}")),
        None => Err("not a response".into()),
    }
}

/// One call; Ok(setup latency) when INVITE, ACK and BYE all went through.
async fn call_op(link: &Link, uri: &str, timeout: Duration, hold: Duration) -> Result<Duration, String> {
    let mut d = Dialog::new(link.transport, link.local, uri);
    let mut w = link.register(&d.call_id);
    let t0 = Instant::now();
    let r = transact(link, &mut w, d.request("INVITE", uri, 1, &[], Some(msg::SDP)), "INVITE", t0 + timeout).await?;
    let setup = t0.elapsed();
    match r.status {
        Some(200..=299) => {}
        Some(s) => {
            // Acknowledge the failure so the server's transaction ends (best effort).
            let _ = link.send(d.request("ACK", uri, 1, &[], None)).await;
            return Err(format!("INVITE status {s}"));
        }
        None => return Err("not a response".into()),
    }
    if let Some(tag) = &r.to_tag {
        d.to = format!("{};tag={tag}", d.to);
    }
    let routes: Vec<String> = r.record_route.iter().rev().cloned().collect();
    let target = r.contact.clone().unwrap_or_else(|| uri.to_owned());
    link.send(d.request("ACK", &target, 1, &routes, None)).await?;
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    let bye =
        transact(link, &mut w, d.request("BYE", &target, 2, &routes, None), "BYE", Instant::now() + timeout).await?;
    match bye.status {
        Some(200..=299) => Ok(setup),
        Some(s) => Err(format!("BYE status {s}")),
        None => Err("not a response".into()),
    }
}

/// Opens the persistent links; failures are counted by cause.
async fn open_links(cfg: &BenchConfig, conn: &SslConnector, shared: &Shared) -> Vec<Arc<Link>> {
    let mut set = JoinSet::new();
    for i in 0..cfg.connections {
        let (conn, cfg2) = (conn.clone(), cfg.clone());
        set.spawn(async move {
            let tls = (cfg2.transport == Transport::Tls).then_some((&conn, &cfg2.tls));
            let fut = Link::open(cfg2.transport, cfg2.target, cfg2.source(i), tls);
            match tokio::time::timeout(cfg2.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err("connect: timeout".into()),
            }
        });
    }
    let mut links = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(l)) => links.push(Arc::new(l)),
            Ok(Err(cause)) => shared.failure(cause),
            Err(e) => shared.failure(format!("task: {e}")),
        }
    }
    links
}

#[derive(Clone, Copy)]
enum Op {
    Options,
    Call,
}

/// Runs `op` on each link with a window of `cfg.window` at once, until the bounds are reached.
async fn drive_links(cfg: &BenchConfig, conn: &SslConnector, shared: &Arc<Shared>, op: Op) {
    let links = open_links(cfg, conn, shared).await;
    let default_uri = match op {
        Op::Options => format!("sip:{}", cfg.target),
        Op::Call => format!("sip:+13175550100@{}", cfg.target),
    };
    let uri: Arc<str> = cfg.uri.clone().unwrap_or(default_uri).into();
    let rate = worker_rate(cfg, links.len());
    let mut drivers = JoinSet::new();
    for link in links {
        let (shared, uri, window, timeout, hold) = (shared.clone(), uri.clone(), cfg.window, cfg.timeout, cfg.hold);
        drivers.spawn(async move {
            let sem = Arc::new(Semaphore::new(window));
            let mut pacer = Pacer::new(rate);
            while shared.claim().is_some() {
                if link.closed() {
                    shared.failure("connection closed");
                    break;
                }
                pacer.wait().await;
                let Ok(permit) = sem.clone().acquire_owned().await else { break };
                let (link, shared, uri) = (link.clone(), shared.clone(), uri.clone());
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let r = match op {
                        Op::Options => options_op(&link, &uri, timeout).await.map(|()| t0.elapsed()),
                        Op::Call => call_op(&link, &uri, timeout, hold).await,
                    };
                    match r {
                        Ok(latency) => shared.success(latency),
                        Err(cause) => shared.failure(cause),
                    }
                    drop(permit);
                });
            }
            // Every operation ends within its timeouts: wait for the last ones.
            let _ = sem.acquire_many(window as u32).await;
        });
    }
    while drivers.join_next().await.is_some() {}
}

/// OPTIONS over persistent connections.
pub(crate) async fn options(cfg: &BenchConfig, conn: &SslConnector, shared: &Arc<Shared>) {
    drive_links(cfg, conn, shared, Op::Options).await;
}

/// Calls over persistent connections (or UDP sockets).
pub(crate) async fn calls(cfg: &BenchConfig, conn: &SslConnector, shared: &Arc<Shared>) {
    drive_links(cfg, conn, shared, Op::Call).await;
}

/// One transaction on a new TLS connection.
async fn handshake_op(cfg: &BenchConfig, conn: &SslConnector, i: usize) -> Result<(), String> {
    let tcp = net::tcp_connect(cfg.target, cfg.source(i)).await?;
    let local = tcp.local_addr().map_err(|e| net::io_cause("tcp", &e))?;
    let mut s = net::tls_handshake(tcp, conn, &cfg.tls).await?;
    if cfg.handshake_only {
        // The server's part is done once the client has its Finished: say goodbye and close.
        let _ = tokio::time::timeout(Duration::from_millis(200), s.shutdown()).await;
        return Ok(());
    }
    let uri = cfg.uri.clone().unwrap_or_else(|| format!("sip:{}", cfg.target));
    let d = Dialog::new(Transport::Tls, local, &uri);
    s.write_all(&d.request("OPTIONS", &uri, 1, &[], None)).await.map_err(|e| net::io_cause("write", &e))?;
    let mut framer = StreamFramer::new(Limits { max_message_size: 65_536, ..Limits::default() });
    let mut buf = vec![0u8; 4096];
    let status = 'outer: loop {
        let n = s.read(&mut buf).await.map_err(|e| net::io_cause("read", &e))?;
        if n == 0 {
            return Err("read: closed by server".into());
        }
        framer.push(buf.get(..n).unwrap_or_default());
        while let Ok(Some(f)) = framer.next_frame() {
            if let Frame::Message(m) = f {
                if let Some(r) = msg::read(&m) {
                    if let Some(st) = r.status.filter(|st| *st >= 200) {
                        break 'outer st;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), s.shutdown()).await;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("OPTIONS status {status}"))
    }
}

/// A new TLS connection (full handshake) per OPTIONS transaction, `connections` at once.
pub(crate) async fn handshakes(cfg: &BenchConfig, conn: &SslConnector, shared: &Arc<Shared>) {
    let rate = worker_rate(cfg, cfg.connections);
    let mut set = JoinSet::new();
    for w in 0..cfg.connections {
        let (cfg, conn, shared) = (cfg.clone(), conn.clone(), shared.clone());
        set.spawn(async move {
            let mut pacer = Pacer::new(rate);
            while let Some(i) = shared.claim() {
                pacer.wait().await;
                let t0 = Instant::now();
                match tokio::time::timeout(cfg.timeout, handshake_op(&cfg, &conn, i as usize + w)).await {
                    Ok(Ok(())) => shared.success(t0.elapsed()),
                    Ok(Err(cause)) => shared.failure(cause),
                    Err(_) => shared.failure("timeout"),
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// Opens TLS connections up to `count` (and below `upto`), `window` handshakes at once, and
/// returns them (as bare sockets: the client keeps no TLS state for an idle connection, so it
/// can hold many).
pub(crate) async fn idle_open(
    cfg: &BenchConfig,
    conn: &SslConnector,
    shared: &Arc<Shared>,
    upto: Option<u64>,
) -> Vec<OwnedFd> {
    let held = Arc::new(Mutex::new(Vec::new()));
    let rate = worker_rate(cfg, cfg.window);
    let mut set = JoinSet::new();
    for _ in 0..cfg.window {
        let (cfg, conn, shared, held) = (cfg.clone(), conn.clone(), shared.clone(), held.clone());
        set.spawn(async move {
            let mut pacer = Pacer::new(rate);
            while let Some(i) = shared.claim_within(upto) {
                pacer.wait().await;
                let t0 = Instant::now();
                let open = async {
                    let tcp = net::tcp_connect(cfg.target, cfg.source(i as usize)).await?;
                    let s = net::tls_handshake(tcp, &conn, &cfg.tls).await?;
                    s.get_ref().as_fd().try_clone_to_owned().map_err(|e| net::io_cause("dup", &e))
                };
                match tokio::time::timeout(cfg.timeout, open).await {
                    Ok(Ok(fd)) => {
                        shared.success(t0.elapsed());
                        if let Ok(mut h) = held.lock() {
                            h.push(fd);
                        }
                    }
                    Ok(Err(cause)) => shared.failure(cause),
                    Err(_) => shared.failure("timeout"),
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let mut h = held.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
    h.shrink_to_fit();
    h
}
