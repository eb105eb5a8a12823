//! Each load against a real loopback server (the edge started in-process, the bench's own
//! answering UAS, Kamailio via testkit) completes its count with zero failures; refusals are
//! reported by cause. No timing thresholds: counts and causes only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use trunkgate_bench::answer::{AnswerConfig, Answerer};
use trunkgate_bench::{run, BenchConfig, Mode, Report, TlsOptions, Transport};
use trunkgate_edge::demo::{edge_config, free_port, Lab};
use trunkgate_edge::{Edge, Options};

const ME: &str = "edge.bench.test";
const PEER: &str = "cloud.trunkgate.test";

/// An edge (TLS trunk listener, UDP inside, trunk to PEER on `peer_port`) and its runtime.
struct EdgeUnderTest {
    rt: tokio::runtime::Runtime,
    edge: Option<Edge>,
    tls: SocketAddr,
    inside: SocketAddr,
}

impl Drop for EdgeUnderTest {
    fn drop(&mut self) {
        if let Some(e) = self.edge.take() {
            self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), e.shutdown()).await.ok() });
        }
    }
}

fn start_edge(lab: &Lab, peer_port: u16) -> EdgeUnderTest {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (tls, udp) = (free_port().unwrap(), free_port().unwrap());
    let cfg = edge_config(&lab.dir, ME, tls, udp, "127.0.0.1:9".parse().unwrap(), PEER, peer_port, true)
        .expect("edge config");
    let edge = rt.block_on(Edge::start(cfg, Options::default())).expect("edge starts");
    let (tls, inside) = (edge.local_addr("trunk").unwrap(), edge.local_addr("inside").unwrap());
    EdgeUnderTest { rt, edge: Some(edge), tls, inside }
}

fn cfg(mode: Mode, target: SocketAddr, count: u64) -> BenchConfig {
    let mut c = BenchConfig::new(mode, target);
    c.count = Some(count);
    c.duration = Duration::from_secs(60);
    c.threads = 2;
    c
}

fn assert_clean(r: &Report, count: u64) {
    assert_eq!(r.failures, Default::default(), "failures: {}", r.text());
    assert_eq!((r.ok, r.failed, r.started), (count, 0, count), "{}", r.text());
    assert_eq!(r.latency.samples, count);
    assert!(r.client_cpu_s >= 0.0);
}

#[test]
fn options_over_tls_against_the_edge_completes_with_window() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let e = start_edge(&lab, free_port().unwrap());
    let mut c = cfg(Mode::Options, e.tls, 600);
    c.connections = 2;
    c.window = 16;
    c.server_pids = vec![std::process::id()];
    let r = run(&c).unwrap();
    assert_clean(&r, 600);
    assert_eq!(r.transport, "tls");
    let s = r.server.expect("server usage measured");
    assert!(s.pids.contains(&std::process::id()));
    assert!(s.rss_kb_after > 0);
}

#[test]
fn handshakes_with_chosen_suite_and_group_against_the_edge() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let e = start_edge(&lab, free_port().unwrap());
    for (ciphers, groups) in [("ECDHE-RSA-AES256-GCM-SHA384", Some("P-384")), ("AES128-GCM-SHA256", None)] {
        let mut c = cfg(Mode::Handshakes, e.tls, 12);
        c.connections = 3;
        c.tls = TlsOptions {
            ciphers: Some(ciphers.into()),
            groups: groups.map(Into::into),
            version: Some("1.2".into()),
            ca: Some(lab.root()),
            server_name: Some(ME.into()),
        };
        assert_clean(&run(&c).unwrap(), 12);
        c.handshake_only = true;
        assert_clean(&run(&c).unwrap(), 12);
    }
}

#[test]
fn idle_connections_are_held_and_counted() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let e = start_edge(&lab, free_port().unwrap());
    let mut c = cfg(Mode::Idle, e.tls, 40);
    c.connections = 40;
    c.window = 8;
    c.server_pids = vec![std::process::id()];
    c.sources = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let r = run(&c).unwrap();
    assert_clean(&r, 40);
    assert_eq!(r.open_connections, 40);
    assert!(r.server_rss_bytes_per_conn.is_some() && r.server_pss_bytes_per_conn.is_some());
}

#[test]
fn calls_over_udp_and_tls_against_the_answering_uas() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ans = rt
        .block_on(Answerer::start(&AnswerConfig {
            udp: Some("127.0.0.1:0".parse().unwrap()),
            tls: Some("127.0.0.1:0".parse().unwrap()),
            cert: Some(lab.chain(PEER)),
            key: Some(lab.key(PEER)),
            ..AnswerConfig::default()
        }))
        .unwrap();
    let mut c = cfg(Mode::Calls, ans.udp.unwrap(), 100);
    c.transport = Transport::Udp;
    c.window = 10;
    c.hold = Duration::from_millis(5);
    assert_clean(&run(&c).unwrap(), 100);
    let mut c = cfg(Mode::Calls, ans.tls.unwrap(), 100);
    c.window = 10;
    assert_clean(&run(&c).unwrap(), 100);
    let n = ans.counts();
    assert!(n.invites >= 200 && n.byes >= 200 && n.acks >= 200, "{n:?}");
    assert_eq!(n.unparsable, 0);
    drop(ans);
}

#[test]
fn calls_through_the_edge_udp_inside_to_tls_trunk() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let peer_port = free_port().unwrap();
    let e = start_edge(&lab, peer_port);
    let ans =
        e.rt.block_on(Answerer::start(&AnswerConfig {
            tls: Some(SocketAddr::from(([127, 0, 0, 1], peer_port))),
            cert: Some(lab.chain(PEER)),
            key: Some(lab.key(PEER)),
            contact_host: Some(format!("{PEER}:{peer_port}")),
            ..AnswerConfig::default()
        }))
        .unwrap();
    let mut c = cfg(Mode::Calls, e.inside, 60);
    c.transport = Transport::Udp;
    c.window = 10;
    let r = run(&c).unwrap();
    assert_clean(&r, 60);
    // The edge answers the caller's BYE at once and then sends its own across the trunk: the
    // last ones may still be in flight when the load ends. Wait for them (bounded).
    let mut n = ans.counts();
    for _ in 0..100 {
        if n.byes >= 60 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        n = ans.counts();
    }
    assert_eq!((n.invites, n.byes, n.acks), (60, 60, 60), "the trunk side saw every call once: {n:?}");
    assert_eq!(n.connections, 1, "one TLS connection from the edge carried them all");
}

#[test]
fn options_against_kamailio_over_tls() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let k = trunkgate_testkit::Kamailio::start(&trunkgate_testkit::KamailioOptions::new(
        dir.path(),
        &lab.chain(ME),
        &lab.key(ME),
    ))
    .expect("kamailio starts (Debian kamailio + kamailio-tls-modules)");
    let mut c = cfg(Mode::Options, k.tls_addr, 300);
    c.window = 8;
    assert_clean(&run(&c).unwrap(), 300);
    let mut c = cfg(Mode::Handshakes, k.tls_addr, 6);
    c.connections = 2;
    assert_clean(&run(&c).unwrap(), 6);
}

#[test]
fn a_refusing_server_is_reported_by_cause() {
    // Nothing listens on this port: every connection is refused.
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let mut c = cfg(Mode::Options, closed, 10);
    c.connections = 3;
    let r = run(&c).unwrap();
    assert_eq!(r.ok, 0);
    assert_eq!(r.failures.get("connect: connection refused"), Some(&3), "{:?}", r.failures);
    let mut c = cfg(Mode::Handshakes, closed, 4);
    c.connections = 2;
    let r = run(&c).unwrap();
    assert_eq!((r.ok, r.failed), (0, 4));
    assert_eq!(r.failures.get("connect: connection refused"), Some(&4), "{:?}", r.failures);
}

#[test]
fn a_tls_version_the_edge_refuses_is_a_handshake_failure() {
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let e = start_edge(&lab, free_port().unwrap());
    let mut c = cfg(Mode::Handshakes, e.tls, 3);
    c.tls.version = Some("1.3".into()); // byoc-cloud is TLS 1.2 only
    let r = run(&c).unwrap();
    assert_eq!((r.ok, r.failed), (0, 3));
    assert!(r.failures.keys().all(|k| k.starts_with("tls handshake:")), "{:?}", r.failures);
}

#[test]
fn a_server_answering_with_an_error_is_reported_by_status() {
    // The edge answers INVITE from the inside with an error when the trunk peer cannot be
    // reached (nothing listens on the peer port): calls fail "INVITE status 5xx", not timeouts.
    let lab = Lab::new(&[ME, PEER]).unwrap();
    let e = start_edge(&lab, free_port().unwrap());
    let mut c = cfg(Mode::Calls, e.inside, 3);
    c.transport = Transport::Udp;
    c.timeout = Duration::from_secs(20);
    let r = run(&c).unwrap();
    assert_eq!((r.ok, r.failed), (0, 3), "{}", r.text());
    assert!(r.failures.keys().all(|k| k.starts_with("INVITE status 5")), "{:?}", r.failures);
}

#[test]
fn a_closed_udp_port_is_reported_as_refused() {
    // Nothing listens: the kernel answers ICMP port unreachable; the connected socket reports it
    // (to the receive loop or to the retransmission, whichever comes first).
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let mut c = cfg(Mode::Options, closed, 2);
    c.transport = Transport::Udp;
    c.timeout = Duration::from_secs(3);
    let r = run(&c).unwrap();
    assert_eq!((r.ok, r.failed), (0, 2));
    assert_eq!(r.failures.get(trunkgate_bench::net::UDP_REFUSED), Some(&2), "{:?}", r.failures);
}
