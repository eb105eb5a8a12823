//! `trunkgate bench answer`: a stateless answering UAS for call loads. On UDP, TCP and/or TLS it
//! answers INVITE with 200 and an SDP answer (To tag derived from the Call-ID, so a retransmitted
//! INVITE gets the same answer; Record-Route copied; Contact configurable), ignores ACK, and
//! answers every other request with 200.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslMode};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_openssl::SslStream;
use trunkgate_sip::{parse_datagram, response_to, Frame, HeaderName, Limits, Method, StreamFramer};

use crate::BenchError;

/// Where to listen and what to say.
#[derive(Debug, Clone, Default)]
pub struct AnswerConfig {
    /// UDP listener.
    pub udp: Option<SocketAddr>,
    /// TCP listener.
    pub tcp: Option<SocketAddr>,
    /// TLS listener (needs `cert` and `key`).
    pub tls: Option<SocketAddr>,
    /// PEM certificate chain (leaf first).
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Host[:port] put in the Contact of 200 to INVITE (default: the listener's address). A
    /// name lets a TLS client that checks names reach us for in-dialog requests.
    pub contact_host: Option<String>,
}

/// What was answered.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AnswerCounts {
    /// INVITEs answered (retransmissions included).
    pub invites: u64,
    /// BYEs answered.
    pub byes: u64,
    /// ACKs seen.
    pub acks: u64,
    /// Other requests answered.
    pub other: u64,
    /// Stream connections accepted.
    pub connections: u64,
    /// Messages that did not parse.
    pub unparsable: u64,
}

#[derive(Debug, Default)]
struct Counts {
    invites: AtomicU64,
    byes: AtomicU64,
    acks: AtomicU64,
    other: AtomicU64,
    connections: AtomicU64,
    unparsable: AtomicU64,
}

/// A running answerer; its tasks stop when it is dropped.
#[derive(Debug)]
pub struct Answerer {
    /// Bound UDP address.
    pub udp: Option<SocketAddr>,
    /// Bound TCP address.
    pub tcp: Option<SocketAddr>,
    /// Bound TLS address.
    pub tls: Option<SocketAddr>,
    counts: Arc<Counts>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Answerer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The answer to one request, or None (ACK, garbage).
fn respond(raw: &[u8], contact: &str, counts: &Counts) -> Option<Vec<u8>> {
    let Ok(m) = parse_datagram(raw, &Limits::default()) else {
        counts.unparsable.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let method = m.method()?.clone();
    let tag = format!("a{:x}", fnv(m.header(HeaderName::CallId).unwrap_or_default()));
    let mut r = response_to(&m, 200, "OK", Some(&tag));
    match method {
        Method::Ack => {
            counts.acks.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Method::Invite => {
            counts.invites.fetch_add(1, Ordering::Relaxed);
            for v in m.values(HeaderName::RecordRoute) {
                r.push("Record-Route", v);
            }
            r.push("Contact", format!("<{contact}>"));
            r.set_body("application/sdp", sdp_answer(m.body).into_bytes());
        }
        Method::Bye => {
            counts.byes.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            counts.other.fetch_add(1, Ordering::Relaxed);
        }
    }
    Some(r.to_bytes())
}

/// An SDP answer to `offer`: the offered audio stream (profile and formats kept) on a dummy port,
/// and, when the offer has SDES `a=crypto` lines (RTP/SAVP), the first one with a fresh key of the
/// same length (RFC 4568). Without an offer: a plain RTP/AVP offer of our own.
pub fn sdp_answer(offer: &[u8]) -> String {
    let offer = String::from_utf8_lossy(offer);
    let Some(m) = offer.lines().find(|l| l.starts_with("m=audio ")) else {
        return crate::msg::SDP.to_owned();
    };
    let mut parts = m.split_whitespace().skip(2);
    let proto = parts.next().unwrap_or("RTP/AVP");
    let fmts: Vec<&str> = parts.collect();
    let mut out = format!(
        "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 {proto} {}\r\n",
        fmts.join(" ")
    );
    for l in offer.lines().map(str::trim_end) {
        if l.starts_with("a=rtpmap:") || l.starts_with("a=fmtp:") || l.starts_with("a=ptime:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    if let Some(c) = offer.lines().map(str::trim_end).find(|l| l.starts_with("a=crypto:")) {
        // a=crypto:TAG SUITE inline:KEY[|lifetime][|MKI] [session params]
        let mut f = c.splitn(3, ' ');
        let (tag, suite, key) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let b64 = key.strip_prefix("inline:").unwrap_or("").split('|').next().unwrap_or("");
        let len = openssl::base64::decode_block(b64).map(|k| k.len()).unwrap_or(30);
        let mut fresh = vec![0u8; len.clamp(1, 64)];
        if openssl::rand::rand_bytes(&mut fresh).is_ok() {
            out.push_str(&format!("{tag} {suite} inline:{}\r\n", openssl::base64::encode_block(&fresh)));
        }
    }
    out.push_str("a=sendrecv\r\n");
    out
}

fn contact_for(cfg: &AnswerConfig, addr: SocketAddr, tls: bool) -> String {
    let host = cfg.contact_host.clone().unwrap_or_else(|| addr.to_string());
    format!("sip:answer@{host}{}", if tls { ";transport=tls" } else { "" })
}

async fn serve_stream<S>(stream: S, contact: Arc<str>, counts: Arc<Counts>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(Limits { max_message_size: 65_536, ..Limits::default() });
    let mut buf = vec![0u8; 16_384];
    let mut out = Vec::new();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(buf.get(..n).unwrap_or_default());
        out.clear();
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    if let Some(a) = respond(&m, &contact, &counts) {
                        out.extend_from_slice(&a);
                    }
                }
                Ok(Some(Frame::Ping)) => out.extend_from_slice(trunkgate_sip::framing::PONG),
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn acceptor(cfg: &AnswerConfig) -> Result<SslAcceptor, BenchError> {
    let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) else {
        return Err(BenchError::Usage("a TLS listener needs --cert and --key".into()));
    };
    let tls = |e: openssl::error::ErrorStack| BenchError::Tls(e.to_string());
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(tls)?;
    b.set_certificate_chain_file(cert).map_err(tls)?;
    b.set_private_key_file(key, SslFiletype::PEM).map_err(tls)?;
    b.check_private_key().map_err(tls)?;
    b.set_mode(SslMode::RELEASE_BUFFERS);
    Ok(b.build())
}

impl Answerer {
    /// Binds the listeners (port 0: any free port) and starts answering.
    pub async fn start(cfg: &AnswerConfig) -> Result<Answerer, BenchError> {
        let counts = Arc::new(Counts::default());
        let mut a = Answerer { udp: None, tcp: None, tls: None, counts: counts.clone(), tasks: Vec::new() };
        if let Some(addr) = cfg.udp {
            let sock = UdpSocket::bind(addr).await?;
            let local = sock.local_addr()?;
            a.udp = Some(local);
            let contact = contact_for(cfg, local, false);
            let counts = counts.clone();
            a.tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 65_535];
                loop {
                    let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
                    if let Some(ans) = respond(buf.get(..n).unwrap_or_default(), &contact, &counts) {
                        let _ = sock.send_to(&ans, from).await;
                    }
                }
            }));
        }
        for (addr, tls) in [(cfg.tcp, false), (cfg.tls, true)] {
            let Some(addr) = addr else { continue };
            let acc = if tls { Some(Arc::new(acceptor(cfg)?)) } else { None };
            let lis = TcpListener::bind(addr).await?;
            let local = lis.local_addr()?;
            if tls {
                a.tls = Some(local);
            } else {
                a.tcp = Some(local);
            }
            let contact: Arc<str> = contact_for(cfg, local, tls).into();
            let counts = counts.clone();
            a.tasks.push(tokio::spawn(async move {
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        r = lis.accept() => {
                            let Ok((tcp, _)) = r else {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            };
                            let _ = tcp.set_nodelay(true);
                            counts.connections.fetch_add(1, Ordering::Relaxed);
                            let (contact, counts, acc) = (contact.clone(), counts.clone(), acc.clone());
                            conns.spawn(async move {
                                match acc {
                                    None => serve_stream(tcp, contact, counts).await,
                                    Some(acc) => {
                                        let Ok(ssl) = Ssl::new(acc.context()) else { return };
                                        let Ok(mut s) = SslStream::new(ssl, tcp) else { return };
                                        let hs = tokio::time::timeout(Duration::from_secs(10), std::pin::Pin::new(&mut s).accept());
                                        if matches!(hs.await, Ok(Ok(()))) {
                                            serve_stream(s, contact, counts).await;
                                        }
                                    }
                                }
                            });
                        }
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
            }));
        }
        if a.tasks.is_empty() {
            return Err(BenchError::Usage("answer: give at least one of --udp, --tcp, --tls".into()));
        }
        Ok(a)
    }

    /// What was answered so far.
    pub fn counts(&self) -> AnswerCounts {
        let c = &self.counts;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AnswerCounts {
            invites: l(&c.invites),
            byes: l(&c.byes),
            acks: l(&c.acks),
            other: l(&c.other),
            connections: l(&c.connections),
            unparsable: l(&c.unparsable),
        }
    }
}

/// Runs an answerer for `duration` (bounded), printing its addresses on stdout when ready
/// (`answer udp 127.0.0.1:5080`), and returns what it answered.
pub fn serve(cfg: &AnswerConfig, duration: Duration, threads: usize) -> Result<AnswerCounts, BenchError> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        rt.worker_threads(threads);
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async {
        let a = Answerer::start(cfg).await?;
        for (name, addr) in [("udp", a.udp), ("tcp", a.tcp), ("tls", a.tls)] {
            if let Some(addr) = addr {
                println!("answer {name} {addr}");
            }
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(a.counts())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn sdes_offer_gets_a_fresh_key_of_the_same_suite_and_length() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20\r\na=crypto:2 AEAD_AES_128_GCM inline:SmFja0ZyZWRIZXJyaW5nc0FuZEJpcmRzYWxs\r\n";
        let a = sdp_answer(offer.as_bytes());
        assert!(a.contains("m=audio 40002 RTP/SAVP 0 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        let c: Vec<&str> = a.lines().filter(|l| l.starts_with("a=crypto:")).collect();
        assert_eq!(c.len(), 1);
        assert!(c[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        let key = openssl::base64::decode_block(c[0].rsplit("inline:").next().unwrap()).unwrap();
        assert_eq!(key.len(), 30);
        assert!(!a.contains("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"));
        assert!(sdp_answer(b"").contains("RTP/AVP"));
    }
}
