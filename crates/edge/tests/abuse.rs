//! Bad input and abuse (issue 7 "Bad input and abuse"; SPEC T1, T3): a partial message never
//! completed (slowloris), a message over `max_message_size`, more connections from one IP than
//! `max_connections_per_ip`, a TCP connection that never sends a ClientHello, garbage on TLS and
//! UDP — each is cut off, and afterwards the edge still answers OPTIONS (and completes a real
//! call). A byoc-cloud listener never sends CertificateRequest (T3), checked from outside with
//! `openssl s_client -msg`, with a mutual-TLS listener as the positive control.
//!
//! Outcomes are observed by order, never by elapsed time: e.g. the slowloris connection is
//! closed while a connection that sent whole messages stays open and is still answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use trunkgate_edge::demo::{ua, Lab};
use trunkgate_edge::{Edge, EdgeEvent};

use support::StreamEnd;

const LIMITS: &str = "partial_message_timeout_ms = 400
handshake_timeout_ms = 400
max_message_size = 4096
max_connections_per_ip = 3
idle_timeout_s = 600
handshakes_per_ip_per_second = 1000";

struct Abused {
    lab: Lab,
    edge: Edge,
    trunk: SocketAddr,
    inside: SocketAddr,
}

/// An edge with the abuse limits, a byoc-cloud trunk listener and a mutual one (`mutual`).
async fn edge_with(lab: Lab, inside_target: SocketAddr, trunks: &str) -> Abused {
    let d = lab.dir.display();
    let mutual = format!(
        r#"
[[listen]]
name = "mutual"
transport = "tls"
address = "127.0.0.1:0"
side = "trunk"
advertise = "{e}"
profile = "mutual"
certificate = "{d}/{e}.chain.pem"
key = "{d}/{e}.key"
client_ca = ["{d}/root.pem"]
"#,
        e = support::EDGE
    );
    let edge = support::start(support::config(&lab, LIMITS, inside_target, trunks, &mutual)).await;
    let (trunk, inside) = (edge.local_addr("trunk").unwrap(), edge.local_addr("inside").unwrap());
    Abused { lab, edge, trunk, inside }
}

async fn edge() -> Abused {
    let lab = Lab::new(&[support::EDGE]).unwrap();
    edge_with(lab, "127.0.0.1:9".parse().unwrap(), "").await
}

/// The edge answers an OPTIONS on a new TLS connection and over UDP.
async fn still_answers(a: &Abused, tag: &str) {
    let tag: String = tag.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let tag = tag.as_str();
    let mut tls = support::tls_connect(&a.lab, a.trunk).await.unwrap_or_else(|e| panic!("after {tag}: {e}"));
    let (got, end) = support::stream_exchange(&mut tls, b"", &format!("alive-tls-{tag}")).await;
    assert!(got.is_empty() && end == StreamEnd::Open, "after {tag}: {got:?} {end:?}");
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert!(support::udp_exchange(&sock, a.inside, b"", &format!("alive-udp-{tag}")).await.is_empty());
}

/// Slowloris: half a message is abandoned after `partial_message_timeout_ms` and the connection
/// closed, while a connection opened at the same time that sends whole messages stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_partial_message_is_closed() {
    let a = edge().await;
    let mut honest = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let (got, _) = support::stream_exchange(&mut honest, b"", "honest-1").await;
    assert!(got.is_empty());
    let mut slow = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let whole = support::options("slowloris", "TLS", "client.invalid:5061");
    slow.write_all(&whole[..whole.len() / 2]).await.unwrap();
    slow.flush().await.unwrap();
    let (end, bytes) = support::wait_closed(&mut slow, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "the half message was not abandoned");
    assert!(bytes.is_empty(), "nothing is answered to half a message: {:?}", String::from_utf8_lossy(&bytes));
    // The honest connection outlived the slowloris one and is still served.
    let (got, end) = support::stream_exchange(&mut honest, b"", "honest-2").await;
    assert!(got.is_empty() && end == StreamEnd::Open, "{got:?} {end:?}");
    // A message trickled in pieces is fine as long as it completes: the partial clock is per
    // message, and this one completes at once.
    let mut trickle = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let probe = support::options("trickle", "TLS", "client.invalid:5061");
    for chunk in probe.chunks(7) {
        trickle.write_all(chunk).await.unwrap();
        trickle.flush().await.unwrap();
    }
    let (got, _, _) = support::read_stream_until(&mut trickle, Some("trickle"), support::WAIT).await;
    assert_eq!(support::statuses(&got), vec![200]);
    still_answers(&a, "slowloris").await;
    a.edge.shutdown().await;
}

/// A header that grows past `max_message_size` (4096) and a Content-Length announcing a body
/// past it both close the stream; the edge keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_max_message_size_closes_the_stream() {
    let a = edge().await;
    // 1: a header section that never ends, well past the limit.
    let mut tls = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let mut big = b"OPTIONS sip:edge.test SIP/2.0\r\nVia: SIP/2.0/TLS client.invalid;branch=z9hG4bKbig1\r\n".to_vec();
    big.extend_from_slice(format!("X-Pad: {}\r\n", "a".repeat(6000)).as_bytes());
    tls.write_all(&big).await.unwrap();
    tls.flush().await.unwrap();
    let (end, bytes) = support::wait_closed(&mut tls, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "an oversized header must close the stream");
    assert!(!String::from_utf8_lossy(&bytes).contains("SIP/2.0 200"), "{}", String::from_utf8_lossy(&bytes));
    // 2: a complete head announcing 100 000 bytes of body.
    let mut tls = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let head = String::from_utf8(support::options("bigbody", "TLS", "client.invalid:5061"))
        .unwrap()
        .replace("Content-Length: 0", "Content-Type: text/plain\r\nContent-Length: 100000");
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&vec![b'x'; 8000]).await.unwrap();
    tls.flush().await.unwrap();
    let (end, _) = support::wait_closed(&mut tls, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "a body past max_message_size must close the stream");
    // 3: a complete message just under the limit is served.
    let mut tls = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let pad = format!("X-Pad: {}\r\n", "b".repeat(3000));
    let ok = String::from_utf8(support::options("under-limit", "TLS", "client.invalid:5061"))
        .unwrap()
        .replace("Content-Length: 0\r\n", &format!("{pad}Content-Length: 0\r\n"));
    assert!(ok.len() < 4096);
    tls.write_all(ok.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let (got, _, _) = support::read_stream_until(&mut tls, Some("under-limit"), support::WAIT).await;
    assert_eq!(support::statuses(&got), vec![200], "a message under the limit is answered");
    // 4: an oversized datagram is not served either, and costs nothing.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let big_udp = String::from_utf8(support::options("big-udp", "UDP", &sock.local_addr().unwrap().to_string()))
        .unwrap()
        .replace("Content-Length: 0\r\n", &format!("X-Pad: {}\r\nContent-Length: 0\r\n", "c".repeat(6000)));
    let got = support::udp_exchange(&sock, a.inside, big_udp.as_bytes(), "after-big-udp").await;
    assert!(got.iter().all(|r| r.status != 200), "an oversized datagram was served: {got:?}");
    still_answers(&a, "oversize").await;
    a.edge.shutdown().await;
}

/// `max_connections_per_ip` = 3: the fourth connection from 127.0.0.1 is closed at once (its
/// handshake fails), the three keep working, and a slot freed by a close is usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_per_ip_is_enforced() {
    let a = edge().await;
    let mut open = Vec::new();
    for i in 0..3 {
        let mut c = support::tls_connect(&a.lab, a.trunk).await.unwrap_or_else(|e| panic!("connection {i}: {e}"));
        let (got, end) = support::stream_exchange(&mut c, b"", &format!("slot-{i}")).await;
        assert!(got.is_empty() && end == StreamEnd::Open);
        open.push(c);
    }
    let fourth = support::tls_connect(&a.lab, a.trunk).await;
    assert!(fourth.is_err(), "a fourth connection from the same IP was accepted");
    // The limit counts TLS listeners together (the mutual one refuses too), and the inside
    // UDP listener is not a connection.
    let mut raw = TcpStream::connect(a.edge.local_addr("mutual").unwrap()).await.unwrap();
    let (end, _) = support::wait_closed(&mut raw, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "the mutual listener admitted a fourth connection");
    for (i, c) in open.iter_mut().enumerate() {
        let (got, end) = support::stream_exchange(c, b"", &format!("slot-again-{i}")).await;
        assert!(got.is_empty() && end == StreamEnd::Open, "connection {i} was disturbed");
    }
    // Close one (TLS close_notify + FIN): its slot comes back.
    let mut first = open.remove(0);
    let _ = first.shutdown().await;
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        match support::tls_connect(&a.lab, a.trunk).await {
            Ok(c) => {
                again = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut again = again.expect("a slot freed by a closed connection is given back");
    let (got, end) = support::stream_exchange(&mut again, b"", "slot-reused").await;
    assert!(got.is_empty() && end == StreamEnd::Open);
    drop(open);
    drop(again);
    a.edge.shutdown().await;
}

/// A TCP connection that never sends a ClientHello is closed after `handshake_timeout_ms`, and
/// one that sends bytes that are not TLS is closed; neither hurts the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_and_non_tls_bytes_close_the_connection() {
    let a = edge().await;
    let mut silent = TcpStream::connect(a.trunk).await.unwrap();
    let (end, bytes) = support::wait_closed(&mut silent, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "a silent TCP connection must not hold a slot forever");
    assert!(bytes.is_empty());
    // Plain SIP on the TLS port (a misconfigured peer), then binary noise.
    for (i, noise) in [support::options("plain", "TCP", "client.invalid:5060"), noise(3000, 7)].iter().enumerate() {
        let mut tcp = TcpStream::connect(a.trunk).await.unwrap();
        tcp.write_all(noise).await.unwrap();
        let (end, bytes) = support::wait_closed(&mut tcp, support::WAIT).await;
        assert_eq!(end, StreamEnd::Closed, "non-TLS bytes #{i} must close the connection");
        assert!(!String::from_utf8_lossy(&bytes).contains("SIP/2.0"), "plain SIP answered on the TLS port");
    }
    still_answers(&a, "handshake abuse").await;
    a.edge.shutdown().await;
}

/// Deterministic noise (xorshift), `len` bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Garbage inside a TLS connection and in UDP datagrams: never a crash, never an answer to
/// noise; afterwards the edge answers OPTIONS on both listeners and a real call completes
/// through it (to a second edge playing the cloud, over byoc-cloud TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_tls_and_udp_never_breaks_the_edge() {
    let lab = Lab::new(&[support::EDGE, "cloud.test"]).unwrap();
    let (caller, callee) =
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let cloud_trunk = support::trunk(&lab, "customer", &[], "options_interval_s = 0\n[trunk.inbound]\ntgrp = \"TG-1\"");
    let cloud =
        support::start(support::config_for(&lab, "cloud.test", "", callee.local_addr().unwrap(), &cloud_trunk, ""))
            .await;
    let port = cloud.local_addr("trunk").unwrap().port();
    let trunk = support::trunk(
        &lab,
        "cloud",
        &[("cloud.test", port)],
        "tgrp = \"TG-1\"\ntrunk_context = \"example.com\"\noptions_interval_s = 0\n[trunk.outbound]\nprefixes = [\"+1\"]",
    );
    let a = edge_with(lab, caller.local_addr().unwrap(), &trunk).await;

    // TLS: noise without an end of header (left to the partial timeout), noise with CRLFCRLF in
    // it (a "message" that does not parse), NULs, a start line and nothing else, bare CRLFs.
    let mut samples: Vec<Vec<u8>> = Vec::new();
    for seed in 1..6u64 {
        let mut n = noise(500 * seed as usize, seed);
        if seed % 2 == 0 {
            n.extend_from_slice(b"\r\n\r\n");
        }
        samples.push(n);
    }
    samples.push(vec![0u8; 2000]);
    samples.push(b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec());
    samples.push(b"\r\n\r\n\r\n\r\n\r\n\r\n".to_vec());
    samples.push(b"SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec());
    for (i, s) in samples.iter().enumerate() {
        let mut tls = support::tls_connect(&a.lab, a.trunk).await.unwrap_or_else(|e| panic!("sample {i}: {e}"));
        tls.write_all(s).await.unwrap();
        tls.flush().await.unwrap();
        let mut buf = vec![0u8; 4096];
        // Whatever the edge does with it (close, ignore, 400), it must answer nothing but SIP.
        let _ = tokio::time::timeout(Duration::from_millis(200), tls.read(&mut buf)).await;
        drop(tls);
        still_answers(&a, &format!("TLS garbage #{i}")).await;
    }
    // UDP: datagrams of noise, sizes 1 .. 65000, a lone CRLF pair, a start line with NULs.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for (i, len) in [1usize, 2, 50, 1400, 9000, 65_000].iter().enumerate() {
        let got = support::udp_exchange(&sock, a.inside, &noise(*len, 100 + i as u64), &format!("udp-noise-{i}")).await;
        assert!(got.is_empty(), "noise datagram #{i} was answered: {got:?}");
    }
    for (i, d) in [b"\r\n\r\n".to_vec(), b"OPTIONS \0\0\0 SIP/2.0\r\n\r\n".to_vec()].iter().enumerate() {
        let got = support::udp_exchange(&sock, a.inside, d, &format!("udp-odd-{i}")).await;
        assert!(got.iter().all(|r| r.status != 200), "odd datagram #{i}: {got:?}");
    }
    // And a real call still goes through.
    let answer = tokio::spawn(async move { ua::answer(&callee, 1, Duration::from_secs(30)).await });
    let report = ua::call(&caller, a.inside, "+13175551212", Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.invite_statuses.last(), Some(&200), "{report:?}");
    assert_eq!(report.bye_status, Some(200));
    assert_eq!(answer.await.unwrap().unwrap(), 1);
    a.edge.shutdown().await;
    cloud.shutdown().await;
}

/// T3: a byoc-cloud listener never sends CertificateRequest — seen from outside by
/// `openssl s_client -msg`, which prints every handshake message; the handshake is TLS 1.2 on
/// P-384 (T2). The mutual-TLS listener of the same edge does send one (the check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byoc_cloud_listener_never_sends_certificate_request() {
    let a = edge().await;
    let s_client = |addr: SocketAddr| {
        vec![
            "s_client".to_string(),
            "-connect".into(),
            addr.to_string(),
            "-servername".into(),
            support::EDGE.into(),
            "-CAfile".into(),
            a.lab.root().display().to_string(),
            "-verify_return_error".into(),
            "-msg".into(),
        ]
    };
    let (ok, out) = support::run_limited("openssl", "openssl", &s_client(a.trunk), 20).await;
    assert!(ok, "s_client failed on the byoc-cloud listener:\n{out}");
    assert!(out.contains("ServerHelloDone"), "no full handshake seen:\n{out}");
    assert!(!out.contains("CertificateRequest"), "the byoc-cloud listener asked for a client certificate:\n{out}");
    assert!(out.contains("Protocol  : TLSv1.2") || out.contains("Protocol: TLSv1.2"), "{out}");
    assert!(out.contains("secp384r1"), "ECDHE on P-384 (T2):\n{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // Positive control: the mutual listener requests a certificate.
    let (_, out) =
        support::run_limited("openssl", "openssl", &s_client(a.edge.local_addr("mutual").unwrap()), 20).await;
    assert!(out.contains("CertificateRequest"), "the mutual listener did not request a certificate:\n{out}");
    a.edge.shutdown().await;
}

/// An edge with these `[edge]` lines instead of [`LIMITS`].
async fn edge_limits(lines: &str) -> Abused {
    let lab = Lab::new(&[support::EDGE]).unwrap();
    let edge = support::start(support::config(&lab, lines, "127.0.0.1:9".parse().unwrap(), "", "")).await;
    let (trunk, inside) = (edge.local_addr("trunk").unwrap(), edge.local_addr("inside").unwrap());
    Abused { lab, edge, trunk, inside }
}

const IP2: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const IP3: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

/// `max_connections` counts every IP, `max_connections_per_ip` each one: with 3 and 2, two
/// connections from 127.0.0.1 fill its share, a third from it is refused, one from 127.0.0.2
/// still gets in (total 3), and one from 127.0.0.3 is refused (total reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_and_per_ip_limits_are_distinct() {
    let a = edge_limits("max_connections = 3\nmax_connections_per_ip = 2\nhandshakes_per_ip_per_second = 1000").await;
    let mut held = Vec::new();
    for i in 0..2 {
        let mut c = support::tls_connect(&a.lab, a.trunk).await.unwrap_or_else(|e| panic!("#{i} from .1: {e}"));
        assert!(support::stream_exchange(&mut c, b"", &format!("one-{i}")).await.0.is_empty());
        held.push(c);
    }
    assert!(support::tls_connect(&a.lab, a.trunk).await.is_err(), "a third connection from 127.0.0.1 got in");
    let mut c = support::tls_connect_from(&a.lab, a.trunk, Some(IP2))
        .await
        .unwrap_or_else(|e| panic!("127.0.0.2 has its own share: {e}"));
    assert!(support::stream_exchange(&mut c, b"", "two-0").await.0.is_empty());
    held.push(c);
    assert!(
        support::tls_connect_from(&a.lab, a.trunk, Some(IP3)).await.is_err(),
        "a fourth connection in total got in (max_connections = 3)"
    );
    drop(held);
    a.edge.shutdown().await;
}

/// `handshakes_per_ip_per_second` = 2: of eight handshakes started together from 127.0.0.1 some
/// are refused, while 127.0.0.2, with its own budget, gets in at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_rate_per_ip_is_limited() {
    let a = edge_limits("handshakes_per_ip_per_second = 2\nmax_connections_per_ip = 100").await;
    let lab = std::sync::Arc::new(a.lab);
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let (lab, trunk) = (lab.clone(), a.trunk);
            tokio::spawn(async move { support::tls_connect(&lab, trunk).await.map(|_| ()) })
        })
        .collect();
    let other = support::tls_connect_from(&lab, a.trunk, Some(IP2)).await;
    let mut refused = 0;
    for t in tries {
        if t.await.unwrap().is_err() {
            refused += 1;
        }
    }
    // Eight handshakes fit under 2 per second only if they spread over four seconds.
    assert!(refused >= 1, "eight simultaneous handshakes from one IP were all accepted");
    assert!(refused < 8, "none was accepted");
    assert!(other.is_ok(), "another IP is not limited by 127.0.0.1's rate: {:?}", other.err());
    a.edge.shutdown().await;
}

/// A message trickled one byte at a time and never completed is cut off by the partial-message
/// timer even though bytes keep arriving (the clock is not reset by traffic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_trickle_is_closed() {
    let a = edge().await;
    let mut slow = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    let header = b"OPTIONS sip:edge.test SIP/2.0\r\nX-Trickle: ";
    let mut closed = false;
    let mut buf = [0u8; 512];
    // At most 600 bytes (one per 50 ms); the edge must give up long before the header ends.
    for i in 0..600 {
        let byte = if i < header.len() { header[i] } else { b'a' };
        if slow.write_all(&[byte]).await.is_err() || slow.flush().await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    assert!(closed, "a message trickled for 30 s was never abandoned (partial_message_timeout_ms = 400)");
    still_answers(&a, "trickle").await;
    a.edge.shutdown().await;
}

/// A client that starts a ClientHello and stalls is closed by the handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_hello_is_closed() {
    let a = edge().await;
    let mut tcp = TcpStream::connect(a.trunk).await.unwrap();
    // TLS record header of a handshake record announcing 512 bytes, and 5 of them.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]).await.unwrap();
    let (end, _) = support::wait_closed(&mut tcp, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "a stalled ClientHello holds the connection");
    still_answers(&a, "stalled hello").await;
    a.edge.shutdown().await;
}

/// RFC 5626 §3.5.1: a CRLFCRLF ping on a TLS connection is answered with a CRLF pong, and the
/// connection stays usable; a connection with no traffic at all is closed after
/// `idle_timeout_s` (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_ping_is_answered_and_idle_connections_close() {
    let a = edge_limits("idle_timeout_s = 1").await;
    let mut c = support::tls_connect(&a.lab, a.trunk).await.unwrap();
    c.write_all(b"\r\n\r\n").await.unwrap();
    c.flush().await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(support::WAIT, c.read_exact(&mut pong)).await.expect("a pong").unwrap();
    assert_eq!(&pong, b"\r\n");
    let (got, end) = support::stream_exchange(&mut c, b"", "after-ping").await;
    assert!(got.is_empty() && end == StreamEnd::Open);
    let (end, bytes) = support::wait_closed(&mut c, support::WAIT).await;
    assert_eq!(end, StreamEnd::Closed, "an idle connection was kept past idle_timeout_s");
    assert!(bytes.is_empty(), "{bytes:?}");
    a.edge.shutdown().await;
}

/// Memory stays bounded under a request flood (issue 7): with `max_transactions` = 50, 150
/// distinct OPTIONS over UDP (each a server transaction that lingers for Timer J, 32 s) are all
/// answered, at most 50 of them 200 and the rest 503 — none silently dropped, none accepted
/// past the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_table_is_bounded_under_a_flood() {
    let a = edge_limits("max_transactions = 50").await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap().to_string();
    for i in 0..150 {
        sock.send_to(&support::options(&format!("flood-{i}"), "UDP", &local), a.inside).await.unwrap();
        if i % 25 == 24 {
            // Let the edge drain its socket buffer now and then (no outcome depends on it).
            tokio::task::yield_now().await;
        }
    }
    let mut answers = std::collections::HashMap::new();
    let mut buf = vec![0u8; 65536];
    while answers.len() < 150 {
        let Ok(Ok((n, _))) = tokio::time::timeout(support::WAIT, sock.recv_from(&mut buf)).await else { break };
        if let Some(r) = support::parse_resp(&buf[..n]) {
            answers.insert(r.call_id().to_string(), r);
        }
    }
    let ok = answers.values().filter(|r| r.status == 200).count();
    let busy: Vec<_> = answers.values().filter(|r| r.status == 503).collect();
    assert_eq!(answers.len(), 150, "every request is answered ({ok} × 200, {} × 503)", busy.len());
    assert!(ok <= 50, "{ok} transactions accepted past max_transactions = 50");
    assert!(ok >= 1, "nothing was served");
    assert_eq!(ok + busy.len(), 150, "only 200 or 503");
    a.edge.shutdown().await;
}

/// T2 on the edge's own listener, seen by a real client (`openssl s_client`): TLS 1.3, ECDHE
/// offered only on P-256, and only suites outside the eight are all refused, each reported as
/// `TlsFailed`; the allowed handshake (TLS 1.2, P-384, ECDHE-RSA-AES256-GCM) succeeds, and a
/// P-256-only client that also offers a TLS_RSA suite gets that suite — no ECDHE on P-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byoc_cloud_listener_refuses_what_t2_forbids() {
    let a = edge().await;
    let mut events = a.edge.subscribe();
    let base = |extra: &[&str]| {
        let mut v = vec![
            "s_client".to_string(),
            "-connect".into(),
            a.trunk.to_string(),
            "-servername".into(),
            support::EDGE.into(),
            "-CAfile".into(),
            a.lab.root().display().to_string(),
            "-verify_return_error".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let refused: [(&str, Vec<String>); 3] = [
        ("TLS 1.3", base(&["-tls1_3"])),
        ("ECDHE on P-256 only", base(&["-tls1_2", "-groups", "P-256", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"])),
        ("suites outside T2", base(&["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA256"])),
    ];
    for (what, args) in refused {
        let (ok, out) = support::run_limited("openssl", "openssl", &args, 20).await;
        assert!(!ok, "{what}: the byoc-cloud listener accepted it:\n{out}");
        let failed =
            support::wait_event(&mut events, support::WAIT, |e| matches!(e, EdgeEvent::TlsFailed { .. })).await;
        let Some(EdgeEvent::TlsFailed { reason, .. }) = failed else { panic!("{what}: no TlsFailed event") };
        assert!(!reason.is_empty(), "{what}: a reason in plain words");
    }
    let (ok, out) = support::run_limited(
        "openssl",
        "openssl",
        &base(&["-tls1_2", "-groups", "P-384", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"]),
        20,
    )
    .await;
    assert!(ok && out.contains("ECDHE-RSA-AES256-GCM-SHA384"), "the allowed handshake failed:\n{out}");
    let (ok, out) = support::run_limited("openssl", "openssl", &base(&["-tls1_2", "-groups", "P-256"]), 20).await;
    assert!(ok, "{out}");
    assert!(out.contains("Cipher is AES256-GCM-SHA384"), "TLS_RSA_WITH_AES_256_GCM_SHA384 expected:\n{out}");
    assert!(!out.contains("prime256v1") && !out.contains("P-256,"), "ECDHE on P-256 was used:\n{out}");
    a.edge.shutdown().await;
}
