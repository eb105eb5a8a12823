//! One stream connection (TLS or TCP, either direction), served by ONE task: it frames what it
//! reads (RFC 5626 keepalives answered here), enforces the idle and slowloris timeouts, and
//! writes what the core queued, coalesced into one write per burst (one TLS record, one syscall).
//!
//! Memory per idle connection is a goal (issue 9: ≤ 16 kB with 10,000 open), so an idle
//! connection holds no read buffer (it waits with a 1-byte read; OpenSSL keeps the record and
//! frees its buffer under `SSL_MODE_RELEASE_BUFFERS`), no write buffer, no framing buffer, no
//! channel block, and one task instead of a reader and a writer.

use std::collections::VecDeque;
use std::future::{poll_fn, Future as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;
use trunkgate_sip::framing::{PING, PONG};
use trunkgate_sip::{Frame, Limits, StreamFramer};

use super::{Input, Shared};
use crate::config::{Side, Transport};
use crate::core::{ConnId, Dest, Origin};

/// Messages waiting to be written to one connection; a peer that does not read is cut off
/// rather than buffered without bound.
pub(crate) const WRITE_QUEUE: usize = 512;

/// Bytes read per call while draining a burst.
const READ_CHUNK: usize = 4096;

/// Reads per burst before the frames are handed on (at most 64 KiB).
const READS_PER_BURST: usize = 16;

/// Queued messages coalesced into one write, up to about this many bytes.
const WRITE_BURST: usize = 16_000;

/// How long a closing connection still writes what the core queued for it (an answer to a
/// message that could not be framed, for instance).
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// What the runtime keeps about a live connection. Dropping it closes the connection once
/// everything queued is written.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub writer: Writer,
    pub side: Side,
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        self.writer.close();
    }
}

/// The write queue of a connection: bounded, never blocks the caller, allocates nothing while
/// empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct Writer(Arc<Queue>);

#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Vec<u8>>,
    closed: bool,
}

impl Writer {
    /// Queues bytes for the connection; gives them back when the queue is full or closed.
    pub fn try_send(&self, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        let Ok(mut st) = self.0.state.lock() else { return Err(bytes) };
        if st.closed || st.items.len() >= WRITE_QUEUE {
            return Err(bytes);
        }
        st.items.push_back(bytes);
        drop(st);
        self.0.wake.notify_one();
        Ok(())
    }

    /// No more messages: the connection writes what is queued and closes.
    fn close(&self) {
        if let Ok(mut st) = self.0.state.lock() {
            st.closed = true;
        }
        self.0.wake.notify_one();
    }

    /// Moves queued messages into `out` (empty on entry): a lone message by move, several
    /// coalesced up to [`WRITE_BURST`]. When nothing is queued: `Err(closed)`.
    fn take(&self, out: &mut Vec<u8>) -> Result<(), bool> {
        let Ok(mut st) = self.0.state.lock() else { return Err(true) };
        let Some(first) = st.items.pop_front() else {
            if st.items.capacity() > 4 {
                st.items = VecDeque::new();
            }
            return Err(st.closed);
        };
        // One allocation for the burst, sized first (appending to `first` would reallocate as
        // it grows).
        let (mut total, mut more) = (first.len(), 0);
        for m in &st.items {
            if total >= WRITE_BURST {
                break;
            }
            total += m.len();
            more += 1;
        }
        if more == 0 {
            *out = first;
            return Ok(());
        }
        let mut burst = Vec::with_capacity(total);
        burst.extend_from_slice(&first);
        for m in st.items.drain(..more) {
            burst.extend_from_slice(&m);
        }
        *out = burst;
        Ok(())
    }
}

/// What ended a wait on the connection.
enum Event {
    /// The probe read finished (`Ok(0)`: the peer closed).
    Read(std::io::Result<usize>),
    /// A write failed.
    WriteFailed,
    /// The runtime let go of the connection and everything queued has been written.
    Closed,
}

/// Writes what is queued, as far as the socket takes it, and (with `probe`) waits for the next
/// received byte. Returns on a read, a write failure, or closure.
async fn next_event<S: AsyncRead + AsyncWrite>(
    mut stream: Pin<&mut S>,
    writer: &Writer,
    out: &mut Vec<u8>,
    sent: &mut usize,
    mut probe: Option<&mut [u8; 1]>,
) -> Event {
    let mut wake = std::pin::pin!(writer.0.wake.notified());
    poll_fn(|cx| {
        loop {
            if let Some(rest) = out.get(*sent..).filter(|r| !r.is_empty()) {
                match stream.as_mut().poll_write(cx, rest) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Event::WriteFailed),
                    Poll::Ready(Ok(n)) => {
                        *sent += n;
                        continue;
                    }
                    Poll::Pending => break,
                }
            }
            // Everything written: free the buffer, take the next burst.
            *out = Vec::new();
            *sent = 0;
            match writer.take(out) {
                Ok(()) => continue,
                Err(true) => return Poll::Ready(Event::Closed),
                Err(false) => {}
            }
            match wake.as_mut().poll(cx) {
                Poll::Ready(()) => wake.set(writer.0.wake.notified()),
                Poll::Pending => break,
            }
        }
        if let Some(p) = probe.as_deref_mut() {
            let mut rb = ReadBuf::new(p);
            if let Poll::Ready(r) = stream.as_mut().poll_read(cx, &mut rb) {
                return Poll::Ready(Event::Read(r.map(|()| rb.filled().len())));
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads what is ready now, without waiting.
async fn read_ready<S: AsyncRead>(mut stream: Pin<&mut S>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    poll_fn(|cx| {
        Poll::Ready(match stream.as_mut().poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        })
    })
    .await
}

/// Starts the task of a connection; the caller registers the handle with the core task.
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
    let writer = Writer::default();
    let handle = ConnHandle { writer: writer.clone(), side };
    let limits = Limits { max_message_size: shared.cfg.edge.max_message_size, ..Limits::default() };
    let idle = Duration::from_secs(shared.cfg.edge.idle_timeout_s.max(1));
    let partial = Duration::from_millis(shared.cfg.edge.partial_message_timeout_ms.max(100));
    let inputs = shared.inputs.clone();
    drop(shared);
    tokio::spawn(async move {
        let _slot = slot; // released when the connection ends
        let mut stream = std::pin::pin!(stream);
        let origin = Origin { reply: Dest::Conn(id), side, transport, peer, verified_names };
        let mut framer = StreamFramer::new(limits);
        let mut probe = [0u8; 1];
        let (mut out, mut sent) = (Vec::new(), 0usize);
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
            let event = next_event(stream.as_mut(), &writer, &mut out, &mut sent, Some(&mut probe));
            let n = match tokio::time::timeout(wait, event).await {
                Err(_) if partial_since.is_some() => break "a message was started and not completed in time",
                Err(_) if keepalive && !ping_outstanding => {
                    if writer.try_send(PING.to_vec()).is_err() {
                        break "keepalive could not be sent";
                    }
                    framer.expect_pong();
                    ping_outstanding = true;
                    continue;
                }
                Err(_) if keepalive => break "keepalive ping unanswered",
                Err(_) => break "idle timeout",
                Ok(Event::WriteFailed) => break "write error",
                Ok(Event::Closed) => break "closed by the edge",
                Ok(Event::Read(Err(_))) => break "read error",
                Ok(Event::Read(Ok(0))) => break "closed by peer",
                Ok(Event::Read(Ok(n))) => n,
            };
            ping_outstanding = false;
            framer.push(probe.get(..n).unwrap_or_default());
            let mut buf = vec![0u8; READ_CHUNK];
            let mut eof = false;
            for _ in 0..READS_PER_BURST {
                match read_ready(stream.as_mut(), &mut buf).await {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        eof = true;
                        break;
                    }
                    Poll::Ready(Ok(n)) => framer.push(buf.get(..n).unwrap_or_default()),
                    Poll::Pending => break,
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
                        let _ = writer.try_send(PONG.to_vec());
                    }
                    Ok(Some(Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(error) => {
                        // Answer it (400, 513 …) from what can be salvaged, then close: what the
                        // core queues in answer is written before the connection goes away.
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
            framer.release_if_empty();
            partial_since = if framer.has_partial() { partial_since.or(Some(Instant::now())) } else { None };
        };
        tracing::debug!(conn = id, %peer, reason, "connection closed");
        drop(framer);
        let _ = inputs.send(Input::ConnClosed { id }).await;
        // The core lets go of the handle when it handles ConnClosed; until then it may still queue
        // an answer for this connection. Write that (bounded), then close the stream.
        let flush = next_event(stream.as_mut(), &writer, &mut out, &mut sent, None);
        let _ = tokio::time::timeout(CLOSE_FLUSH, flush).await;
        let _ = tokio::time::timeout(CLOSE_FLUSH, stream.shutdown()).await;
    });
    handle
}
