//! The tokio part of the relay: one task per call reads the four sockets (RTP and RTCP of both
//! legs), runs each datagram through the sans-IO [`RelayCore`] and sends what it says.
//! Datagram buffers are fixed (2048 bytes); larger datagrams are truncated by the kernel and then
//! fail authentication or are relayed cut, as any RTP relay would.

use std::net::UdpSocket as StdUdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{LegId, MediaError};
use crate::ports::PortPair;
use crate::relay::{LegParams, LegStats, Outcome, PacketKind, RelayCore};

const BUF: usize = 2048;

#[derive(Debug)]
struct Shared {
    core: Mutex<RelayCore>,
    started: Instant,
}

/// A running relay. Dropping it stops the task (the ports return to the pool once the session
/// is dropped too). The edge polls [`RelayHandle::idle_for`] to end a silent call with BYE.
#[derive(Debug)]
pub struct RelayHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// Starts the relay task on the current tokio runtime.
    pub(crate) fn spawn(
        core: RelayCore,
        a: Arc<PortPair>,
        b: Arc<PortPair>,
        now: Instant,
    ) -> Result<RelayHandle, MediaError> {
        let (a_rtp, a_rtcp) = a.try_clone()?;
        let (b_rtp, b_rtcp) = b.try_clone()?;
        let conv = |s: StdUdpSocket| UdpSocket::from_std(s).map_err(MediaError::Io);
        let socks = [conv(a_rtp)?, conv(a_rtcp)?, conv(b_rtp)?, conv(b_rtcp)?];
        let shared = Arc::new(Shared { core: Mutex::new(core), started: now });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&shared), socks, stop_rx, [a, b]));
        Ok(RelayHandle { shared, stop, task: Some(task) })
    }

    /// Counters of one leg.
    pub fn stats(&self, leg: LegId) -> LegStats {
        self.shared.core.lock().map(|c| c.stats(leg)).unwrap_or_default()
    }

    /// When `leg`'s peer last sent an accepted packet.
    pub fn last_packet(&self, leg: LegId) -> Option<Instant> {
        self.shared.core.lock().ok().and_then(|c| c.last_packet(leg))
    }

    /// How long no accepted packet arrived from either peer (since the relay started if none
    /// did). The edge ends the call with BYE when this passes its media timeout.
    pub fn idle_for(&self, now: Instant) -> Duration {
        let last = [LegId::A, LegId::B].into_iter().filter_map(|l| self.last_packet(l)).max();
        now.saturating_duration_since(last.unwrap_or(self.shared.started).max(self.shared.started))
    }

    /// New parameters for one leg after a re-INVITE; the flow goes on.
    pub fn update(&self, leg: LegId, params: &LegParams) -> Result<(), MediaError> {
        let mut core = self.shared.core.lock().map_err(|_| MediaError::RelayStopped)?;
        core.update(leg, params)
    }

    /// Whether the task still runs.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the task and waits for it (bounded: it only has to leave its select).
    pub async fn stop(mut self) -> [LegStats; 2] {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        [self.stats(LegId::A), self.stats(LegId::B)]
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn run(shared: Arc<Shared>, socks: [UdpSocket; 4], mut stop: watch::Receiver<bool>, _keep: [Arc<PortPair>; 2]) {
    let [a_rtp, a_rtcp, b_rtp, b_rtcp] = &socks;
    let mut bufs = [[0u8; BUF]; 4];
    let [b0, b1, b2, b3] = &mut bufs;
    loop {
        let (idx, res) = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = a_rtp.recv_from(b0) => (0usize, r),
            r = a_rtcp.recv_from(b1) => (1, r),
            r = b_rtp.recv_from(b2) => (2, r),
            r = b_rtcp.recv_from(b3) => (3, r),
        };
        let (n, from) = match res {
            Ok(v) => v,
            Err(e) => {
                // ICMP errors surface here on some systems; the socket stays usable.
                tracing::debug!(error = %e, "media socket receive error");
                continue;
            }
        };
        let (leg, kind) = match idx {
            0 => (LegId::A, PacketKind::Rtp),
            1 => (LegId::A, PacketKind::Rtcp),
            2 => (LegId::B, PacketKind::Rtp),
            _ => (LegId::B, PacketKind::Rtcp),
        };
        let data = match idx {
            0 => b0.get(..n),
            1 => b1.get(..n),
            2 => b2.get(..n),
            _ => b3.get(..n),
        }
        .unwrap_or_default();
        let outcome = match shared.core.lock() {
            Ok(mut c) => c.handle(leg, kind, from, data, Instant::now()),
            Err(_) => return,
        };
        if let Outcome::Forward { leg, kind, to, data } = outcome {
            let sock = match (leg, kind) {
                (LegId::A, PacketKind::Rtp) => a_rtp,
                (LegId::A, PacketKind::Rtcp) => a_rtcp,
                (LegId::B, PacketKind::Rtp) => b_rtp,
                (LegId::B, PacketKind::Rtcp) => b_rtcp,
            };
            if let Err(e) = sock.send_to(&data, to).await {
                tracing::debug!(error = %e, %to, "media send error");
            }
        }
    }
}
