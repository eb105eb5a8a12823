//! Shared helpers of the edge's real-peer and robustness tests: edge configurations on a throwaway
//! PKI, a TLS client (openssl crate) that trusts the lab root and checks the edge's name, a plain
//! UDP SIP client, a loose reader of the edge's answers, and request builders. Every wait is
//! bounded; nothing here sleeps to decide an outcome.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_openssl::SslStream;
use trunkgate_edge::config::Config;
use trunkgate_edge::demo::Lab;
use trunkgate_edge::{Edge, EdgeEvent, Options};
use trunkgate_sip::{Frame, Limits, StreamFramer};

pub mod baresip;
pub mod kamailio_proxy;
pub mod sipp;

/// The host name of the edge under test (its certificate carries it).
pub const EDGE: &str = "edge.test";

/// Upper bound for any single wait in these tests (a hung edge fails the test, never hangs it).
pub const WAIT: Duration = Duration::from_secs(15);

/// A TLS peer played by hand (a carrier's SBC in the tests that need raw control of what it
/// sends): a listener on a free loopback port presenting `name`'s chain from the lab.
pub struct TlsPeer {
    listener: TcpListener,
    acceptor: SslAcceptor,
    /// The port the peer listens on (127.0.0.1).
    pub port: u16,
}

impl TlsPeer {
    pub async fn bind(lab: &Lab, name: &str) -> TlsPeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        acc.set_certificate_chain_file(lab.chain(name)).unwrap();
        acc.set_private_key_file(lab.key(name), SslFiletype::PEM).unwrap();
        TlsPeer { listener, acceptor: acc.build(), port }
    }

    /// Accept one connection (within [`WAIT`]) and complete the server handshake.
    pub async fn accept(&self) -> SslStream<TcpStream> {
        let (tcp, _) = tokio::time::timeout(WAIT, self.listener.accept()).await.unwrap().unwrap();
        let mut s = SslStream::new(openssl::ssl::Ssl::new(self.acceptor.context()).unwrap(), tcp).unwrap();
        Pin::new(&mut s).accept().await.unwrap();
        s
    }
}

/// An edge configuration: trunk TLS listener (`trunk`, byoc-cloud, certificate of `EDGE`) and
/// inside UDP listener (`inside`), both on port 0; `edge_lines` go into `[edge]`, `trunks` is
/// raw `[[trunk]]` TOML, `extra` more sections (listeners).
pub fn config(lab: &Lab, edge_lines: &str, inside_target: SocketAddr, trunks: &str, extra: &str) -> Config {
    config_for(lab, EDGE, edge_lines, inside_target, trunks, extra)
}

/// Same as [`config`] for an edge known as `me`.
pub fn config_for(
    lab: &Lab,
    me: &str,
    edge_lines: &str,
    inside_target: SocketAddr,
    trunks: &str,
    extra: &str,
) -> Config {
    let d = lab.dir.display();
    let text = format!(
        r#"
[edge]
name = "trunkgate-test ({me})"
shutdown_grace_s = 1
{edge_lines}

[[listen]]
name = "trunk"
transport = "tls"
address = "127.0.0.1:0"
side = "trunk"
advertise = "{me}"
profile = "byoc-cloud"
certificate = "{d}/{me}.chain.pem"
key = "{d}/{me}.key"

[[listen]]
name = "inside"
transport = "udp"
address = "127.0.0.1:0"
side = "inside"
{extra}

[inside]
target = "{inside_target}"

{trunks}
"#
    );
    Config::parse(&text, &format!("test configuration of {me}")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A byoc-cloud `[[trunk]]` section with the lab's trust and CRLs.
#[allow(clippy::too_many_arguments)]
pub fn trunk(lab: &Lab, name: &str, peers: &[(&str, u16)], body: &str) -> String {
    let d = lab.dir.display();
    let list: Vec<String> = peers.iter().map(|(h, p)| format!("\"{h}:{p}\"")).collect();
    let connect: Vec<String> = peers.iter().map(|(h, p)| format!("\"{h}\" = \"127.0.0.1:{p}\"")).collect();
    format!(
        r#"
[[trunk]]
name = "{name}"
profile = "byoc-cloud"
peers = [{list}]
connect = {{ {connect} }}
trust = ["{d}/root.pem"]
crl_files = ["{d}/int.crl.pem", "{d}/root.crl.pem"]
{body}
"#,
        list = list.join(", "),
        connect = connect.join(", "),
    )
}

/// Starts an edge.
pub async fn start(cfg: Config) -> Edge {
    Edge::start(cfg, Options { trace: true }).await.expect("the edge starts")
}

/// A TLS client connection to an edge's trunk listener, verified for `EDGE` against the lab root.
pub type Tls = SslStream<TcpStream>;

/// Connects over TLS (TLS 1.2 client, default groups and suites of OpenSSL), verifying the edge.
pub async fn tls_connect(lab: &Lab, addr: SocketAddr) -> Result<Tls, String> {
    tls_connect_from(lab, addr, None).await
}

/// [`tls_connect`] from a chosen loopback source address (127.0.0.2, …: another "IP").
pub async fn tls_connect_from(lab: &Lab, addr: SocketAddr, from: Option<std::net::IpAddr>) -> Result<Tls, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_ca_file(lab.root()).map_err(|e| e.to_string())?;
    b.set_verify(SslVerifyMode::PEER);
    let connector = b.build();
    let ssl = connector.configure().and_then(|c| c.into_ssl(EDGE)).map_err(|e| e.to_string())?;
    let tcp = tokio::time::timeout(WAIT, tcp_from(addr, from))
        .await
        .map_err(|_| "TCP connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let mut s = SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    match tokio::time::timeout(WAIT, Pin::new(&mut s).connect()).await {
        Ok(Ok(())) => Ok(s),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

/// A TCP connection to `addr`, from `from` when given.
pub async fn tcp_from(addr: SocketAddr, from: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    match from {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(ip, 0))?;
            s.connect(addr).await
        }
    }
}

/// What came back on a connection while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The edge closed the connection (EOF, reset or TLS error).
    Closed,
    /// Still open at the end of the bounded wait.
    Open,
}

/// A response as seen on the wire (parsed loosely: the tests must see even odd answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Header fields in order (name as sent, value trimmed).
    pub headers: Vec<(String, String)>,
    /// The whole message as text (lossy).
    pub raw: String,
}

impl Resp {
    /// First value of a header (case-insensitive name, compact forms for Call-ID/CSeq/To).
    pub fn header(&self, name: &str) -> Option<&str> {
        let compact = match name.to_ascii_lowercase().as_str() {
            "call-id" => Some("i"),
            "to" => Some("t"),
            "from" => Some("f"),
            "via" => Some("v"),
            "content-length" => Some("l"),
            _ => None,
        };
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c)))
            .map(|(_, v)| v.as_str())
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or("")
    }
}

/// Parses a response loosely; `None` for requests and non-SIP bytes.
pub fn parse_resp(bytes: &[u8]) -> Option<Resp> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let rest = first.strip_prefix("SIP/2.0 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in lines {
        if l.starts_with(' ') || l.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(l.trim());
            }
            continue;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    Some(Resp { status, headers, raw: text })
}

/// Reads framed messages from a stream until a response with Call-ID `until` arrives (returns
/// everything before it and it), the stream closes, or `limit` passes.
pub async fn read_stream_until<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    until: Option<&str>,
    limit: Duration,
) -> (Vec<Resp>, StreamEnd, Vec<u8>) {
    let mut framer = StreamFramer::new(Limits { max_message_size: 1 << 20, ..Limits::default() });
    let mut got = Vec::new();
    let mut raw_all = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return (got, StreamEnd::Open, raw_all);
        }
        let n = match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (got, StreamEnd::Open, raw_all),
            Ok(Err(_)) | Ok(Ok(0)) => return (got, StreamEnd::Closed, raw_all),
            Ok(Ok(n)) => n,
        };
        raw_all.extend_from_slice(&buf[..n]);
        framer.push(&buf[..n]);
        while let Ok(Some(f)) = framer.next_frame() {
            if let Frame::Message(m) = f {
                if let Some(r) = parse_resp(&m) {
                    let done = until.is_some_and(|u| r.call_id() == u);
                    got.push(r);
                    if done {
                        return (got, StreamEnd::Open, raw_all);
                    }
                }
            }
        }
    }
}

/// Waits (bounded) until the peer closes the stream; returns the bytes that arrived before.
pub async fn wait_closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S, limit: Duration) -> (StreamEnd, Vec<u8>) {
    let (_, end, raw) = read_stream_until(s, None, limit).await;
    (end, raw)
}

/// An OPTIONS request from `local` with this Call-ID (a probe: the edge answers it 200 itself).
pub fn options(call_id: &str, transport: &str, local: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{EDGE} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{call_id};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p{call_id}\r\nTo: <sip:{EDGE}>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\nContact: <sip:probe@{local}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The SDP offer of the raw callers.
pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// An INVITE to `ruri` with an SDP offer.
pub fn invite(ruri: &str, call_id: &str, transport: &str, local: &str) -> Vec<u8> {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{call_id};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:+18005550100@{local}>;tag=c{call_id}\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// The ACK for a non-2xx final response to [`invite`] (same branch, the response's To).
pub fn ack_for(ruri: &str, call_id: &str, transport: &str, local: &str, to: &str) -> Vec<u8> {
    format!(
        "ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{call_id};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:+18005550100@{local}>;tag=c{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Receives datagrams on `sock` until a response with Call-ID `until` arrives, or `limit`.
pub async fn recv_udp_until(sock: &UdpSocket, until: &str, limit: Duration) -> (Vec<Resp>, bool) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        match tokio::time::timeout(left, sock.recv_from(&mut buf)).await {
            Err(_) | Ok(Err(_)) => return (got, false),
            Ok(Ok((n, _))) => {
                if let Some(r) = parse_resp(&buf[..n]) {
                    let done = r.call_id() == until;
                    got.push(r);
                    if done {
                        return (got, true);
                    }
                }
            }
        }
    }
}

/// Sends `bytes` over UDP to `to`, then an OPTIONS probe, and returns every response that came
/// back before the probe's 200 (the edge handles a socket's messages in order, so anything it
/// answers to `bytes` arrives first). Panics when the probe is not answered: the edge must stay
/// alive whatever `bytes` was.
pub async fn udp_exchange(sock: &UdpSocket, to: SocketAddr, bytes: &[u8], probe_id: &str) -> Vec<Resp> {
    let local = sock.local_addr().unwrap().to_string();
    sock.send_to(bytes, to).await.unwrap();
    sock.send_to(&options(probe_id, "UDP", &local), to).await.unwrap();
    let (mut got, answered) = recv_udp_until(sock, probe_id, WAIT).await;
    assert!(answered, "the probe OPTIONS {probe_id} was not answered: the edge is not responsive; got {got:?}");
    let probe = got.pop().unwrap();
    assert_eq!(probe.status, 200, "probe: {}", probe.raw);
    got
}

/// Sends `bytes` on an open stream, then a probe, and returns the responses before the probe's.
pub async fn stream_exchange<S>(s: &mut S, bytes: &[u8], probe_id: &str) -> (Vec<Resp>, StreamEnd)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    s.write_all(bytes).await.unwrap();
    s.write_all(&options(probe_id, "TLS", "client.invalid:5061")).await.unwrap();
    s.flush().await.unwrap();
    let (mut got, end, _) = read_stream_until(s, Some(probe_id), WAIT).await;
    if got.last().is_some_and(|r| r.call_id() == probe_id) {
        let probe = got.pop().unwrap();
        assert_eq!(probe.status, 200, "probe: {}", probe.raw);
        (got, StreamEnd::Open)
    } else {
        (got, if end == StreamEnd::Closed { StreamEnd::Closed } else { StreamEnd::Open })
    }
}

/// Statuses in order, retransmissions collapsed.
pub fn statuses(rs: &[Resp]) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for r in rs {
        if out.last() != Some(&r.status) {
            out.push(r.status);
        }
    }
    out
}

/// Collects events from an edge until `pred` matches one (returned) or `limit` passes.
pub async fn wait_event(
    rx: &mut tokio::sync::broadcast::Receiver<EdgeEvent>,
    limit: Duration,
    mut pred: impl FnMut(&EdgeEvent) -> bool,
) -> Option<EdgeEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        match tokio::time::timeout(left, rx.recv()).await {
            Err(_) => return None,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => return None,
            Ok(Ok(e)) => {
                if pred(&e) {
                    return Some(e);
                }
            }
        }
    }
}

/// Reads a file of the lab or panics with its name.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `program args…` under `timeout lifetime_s` (testkit's [`trunkgate_testkit::ChildGuard`]:
/// killed by PID if still running when the guard drops), stdin closed, and returns its exit
/// success and its stdout + stderr. The wait is bounded by `lifetime_s` + 10 s.
pub async fn run_limited(program: &str, package: &str, args: &[String], lifetime_s: u64) -> (bool, String) {
    let (program, package, args) = (program.to_string(), package.to_string(), args.to_vec());
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let out_path = dir.path().join("out.txt");
        let out = std::fs::File::create(&out_path).unwrap();
        let err = out.try_clone().unwrap();
        let mut guard = trunkgate_testkit::ChildGuard::spawn_limited(
            &program,
            &package,
            &args,
            lifetime_s,
            std::process::Stdio::null(),
            std::process::Stdio::from(out),
            std::process::Stdio::from(err),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(lifetime_s + 10);
        let mut status = None;
        while std::time::Instant::now() < deadline {
            if let Some(c) = guard.child_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    status = Some(s);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(guard);
        let text = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned();
        (status.is_some_and(|s| s.success()), text)
    })
    .await
    .unwrap()
}

/// An SDP answer to `offer` from 127.0.0.1:`port`: the same profile as the offer's first
/// audio line (`RTP/AVP` or `RTP/SAVP`), PCMU, and when the offer carries SDES `a=crypto`
/// lines, one of ours with the first offered suite (RFC 4568 §5.1.2: tag and suite of the
/// accepted line, our own key).
pub fn sdp_answer_for(offer: &[u8], port: u16) -> String {
    let text = String::from_utf8_lossy(offer);
    let proto = text
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("RTP/AVP")
        .to_string();
    let mut sdp = format!(
        "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    if let Some(c) = text.lines().find_map(|l| l.trim_end().strip_prefix("a=crypto:")) {
        let mut parts = c.split_whitespace();
        let (tag, suite) = (parts.next().unwrap_or("1"), parts.next().unwrap_or("AES_CM_128_HMAC_SHA1_80"));
        // 30 bytes (16 key + 14 salt) for AES_CM_128; GCM-128 takes 28 (16 + 12).
        let key = if suite.contains("GCM") {
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYg=="
        } else {
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"
        };
        sdp.push_str(&format!("a=crypto:{tag} {suite} inline:{key}\r\n"));
    }
    sdp
}

/// A callee like `ua::answer` (180, then 200; 200 to BYE) whose SDP answer follows the offer's
/// profile and crypto ([`sdp_answer_for`]), so that it works whether the edge passes SDP through
/// or anchors media. Returns how many calls it saw hung up.
pub async fn callee(sock: &UdpSocket, calls: usize, limit: Duration) -> Result<usize, String> {
    use trunkgate_sip::{parse_datagram, response_to, HeaderName, Method};
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65_535];
    let mut ended = 0;
    let deadline = tokio::time::Instant::now() + limit;
    while ended < calls {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok((n, from))) = tokio::time::timeout(left, sock.recv_from(&mut buf)).await else {
            return Err(format!("callee: {ended} of {calls} calls ended in time"));
        };
        let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) else { continue };
        let call_id = m.header(HeaderName::CallId).map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
        let tag: String = call_id.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
        let out = match m.method() {
            Some(Method::Invite) => {
                let contact = format!("<sip:callee@{local}>");
                let ringing = response_to(&m, 180, "Ringing", Some(&tag)).with("Contact", &contact);
                sock.send_to(&ringing.to_bytes(), from).await.map_err(|e| e.to_string())?;
                let mut ok = response_to(&m, 200, "OK", Some(&tag)).with("Contact", &contact);
                ok.set_body("application/sdp", sdp_answer_for(m.body, 40_002).into_bytes());
                ok
            }
            Some(Method::Bye) => {
                ended += 1;
                response_to(&m, 200, "OK", None)
            }
            Some(Method::Ack) | None => continue,
            Some(_) => response_to(&m, 200, "OK", Some(&tag)),
        };
        sock.send_to(&out.to_bytes(), from).await.map_err(|e| e.to_string())?;
    }
    Ok(ended)
}
