//! One stream connection (TLS or TCP, either direction): a reader task that frames messages
//! (RFC 5626 keepalives answered here) with idle and slowloris timeouts, and a writer task fed
//! by a bounded channel.

use std::future::Future as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use trunkgate_sip::framing::PONG;
use trunkgate_sip::{Frame, Limits, StreamFramer};

use super::{Input, Shared};
use crate::config::{Side, Transport};
use crate::core::{ConnId, Dest, Origin};

/// Messages waiting for one connection's writer; a peer that does not read is cut off rather
/// than buffered without bound.
pub(crate) const WRITE_QUEUE: usize = 512;

/// Bytes read per call.
const READ_CHUNK: usize = 4096;

/// What the runtime keeps about a live connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub writer: mpsc::Sender<Vec<u8>>,
    pub side: Side,
}

/// Starts the reader and writer tasks of a connection and registers it with the core task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn<S>(
    shared: Arc<Shared>,
    id: ConnId,
    stream: S,
    side: Side,
    transport: Transport,
    peer: SocketAddr,
    verified_names: Vec<String>,
    slot: Option<super::listen::Slot>,
    keepalive: bool,
) -> ConnHandle
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let handle = ConnHandle { writer: tx.clone(), side };
    tokio::spawn(async move {
        // E1: coalesce what is queued into one write (one TLS record, one syscall per burst).
        let mut out: Vec<u8> = Vec::new();
        while let Some(bytes) = rx.recv().await {
            let ok = match rx.try_recv() {
                Err(_) => wr.write_all(&bytes).await.is_ok(),
                Ok(next) => {
                    out.clear();
                    out.extend_from_slice(&bytes);
                    out.extend_from_slice(&next);
                    while out.len() < 16_000 {
                        match rx.try_recv() {
                            Ok(more) => out.extend_from_slice(&more),
                            Err(_) => break,
                        }
                    }
                    let r = wr.write_all(&out).await.is_ok();
                    if out.capacity() > 65_536 {
                        out = Vec::new();
                    }
                    r
                }
            };
            if !ok {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let limits = Limits { max_message_size: shared.cfg.edge.max_message_size, ..Limits::default() };
    let idle = Duration::from_secs(shared.cfg.edge.idle_timeout_s.max(1));
    let partial = Duration::from_millis(shared.cfg.edge.partial_message_timeout_ms.max(100));
    let inputs = shared.inputs.clone();
    tokio::spawn(async move {
        let _slot = slot; // released when the connection ends
        let origin = Origin { reply: Dest::Conn(id), side, transport, peer, verified_names };
        let mut framer = StreamFramer::new(limits);
        // Small: an idle connection keeps this buffer for as long as it is open (memory per idle
        // connection, issue 9); the framer accumulates larger messages across reads.
        // E2: no per-connection read buffer while idle: wait with a 1-byte read (OpenSSL keeps the
        // record and frees it under RELEASE_BUFFERS), then drain what is ready into a buffer that
        // lives only for this burst.
        let mut probe = [0u8; 1];
        let mut partial_since: Option<Instant> = None;
        // Connections the edge opened are kept up with RFC 5626 §4.4.1 pings (CRLFCRLF) when
        // quiet; one is closed only when a ping goes unanswered for a whole interval. Connections
        // peers opened are theirs to keep alive: they close when idle.
        let ping_every = (idle / 2).max(Duration::from_millis(500));
        let mut ping_outstanding = false;
        let reason = loop {
            let wait = match partial_since {
                Some(t) => partial.saturating_sub(t.elapsed()),
                None if keepalive => ping_every,
                None => idle,
            };
            let n = match tokio::time::timeout(wait, rd.read(&mut probe)).await {
                Err(_) if partial_since.is_some() => break "a message was started and not completed in time",
                Err(_) if keepalive && !ping_outstanding => {
                    if tx.try_send(trunkgate_sip::framing::PING.to_vec()).is_err() {
                        break "keepalive could not be sent";
                    }
                    framer.expect_pong();
                    ping_outstanding = true;
                    continue;
                }
                Err(_) if keepalive => break "keepalive ping unanswered",
                Err(_) => break "idle timeout",
                Ok(Err(_)) => break "read error",
                Ok(Ok(0)) => break "closed by peer",
                Ok(Ok(n)) => n,
            };
            ping_outstanding = false;
            framer.push(probe.get(..n).unwrap_or_default());
            let mut buf = vec![0u8; READ_CHUNK];
            let mut eof = false;
            for _ in 0..16 {
                // bounded: at most 64 KiB per burst before framing
                let fut = rd.read(&mut buf);
                tokio::pin!(fut);
                match std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await {
                    std::task::Poll::Ready(Ok(0)) | std::task::Poll::Ready(Err(_)) => {
                        eof = true;
                        break;
                    }
                    std::task::Poll::Ready(Ok(n)) => framer.push(buf.get(..n).unwrap_or_default()),
                    std::task::Poll::Pending => break,
                }
            }
            drop(buf);
            let mut fatal = None;
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(m))) => {
                        if inputs.send(Input::Message { origin: origin.clone(), bytes: m }).await.is_err() {
                            fatal = Some("edge stopping");
                            break;
                        }
                    }
                    Ok(Some(Frame::Ping)) => {
                        let _ = tx.try_send(PONG.to_vec());
                    }
                    Ok(Some(Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(error) => {
                        // Answer it (400, 513 …) from what can be salvaged, then close: the
                        // writer sends what is queued before the connection goes away.
                        let bytes = framer.pending().to_vec();
                        let _ = inputs.send(Input::Unframable { origin: origin.clone(), bytes, error }).await;
                        fatal = Some("stream cannot be framed (bad Content-Length or message too large)");
                        break;
                    }
                }
            }
            if let Some(r) = fatal {
                break r;
            }
            if eof {
                break "closed by peer";
            }
            partial_since = if framer.has_partial() { partial_since.or(Some(Instant::now())) } else { None };
        };
        tracing::debug!(conn = id, %peer, reason, "connection closed");
        let _ = inputs.send(Input::ConnClosed { id }).await;
    });
    handle
}
