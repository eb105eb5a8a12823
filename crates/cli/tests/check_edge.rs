//! `trunkgate check` against trunkgate's own edge (`trunkgate serve`, started from the shipped
//! example configuration with loopback addresses and a test certificate): a byoc-cloud TLS
//! listener must pass every check, SIP included (SPEC T1-T3, T5, T7, T11, O3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use trunkgate_pki::{CaSpec, Issuer, KeyType, LeafSpec, Validity, DAY};
use trunkgate_testkit::{free_tcp_port, wait_tcp, ChildGuard};

#[test]
fn o3_edge_byoc_listener_passes_every_check() {
    let now = trunkgate_pki::unix_now();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let root = Issuer::new_root(&CaSpec::new("edge test root", KeyType::Rsa2048, Validity::days_from(now - DAY, 3650)))
        .unwrap();
    let int = root
        .new_intermediate(&CaSpec::new("edge test int", KeyType::Rsa2048, Validity::days_from(now - DAY, 3000)))
        .unwrap();
    let leaf = int.issue(&LeafSpec::server("edge.customer.test", Validity::new(now - DAY, now + 300 * DAY))).unwrap();
    std::fs::write(p("root.pem"), root.cert().to_pem().unwrap()).unwrap();
    std::fs::write(p("chain.pem"), leaf.chain_pem().unwrap()).unwrap();
    std::fs::write(p("key.pem"), leaf.key_pem().unwrap()).unwrap();
    // The checker's profile: byoc-cloud without CRL checks (these test certificates name no
    // distribution point; revocation has its own tests).
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = std::fs::read_to_string(manifest.join("../../profiles/byoc-cloud.toml")).unwrap();
    std::fs::write(p("profile.toml"), profile.replace("mode = \"hard\"", "mode = \"off\"")).unwrap();

    let (tls, udp, pbx) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let example = std::fs::read_to_string(manifest.join("../../examples/edge/byoc-cloud.toml")).unwrap();
    let config = example
        .replace("\"0.0.0.0:5061\"", &format!("\"127.0.0.1:{tls}\""))
        .replace("\"10.0.0.5:5060\"", &format!("\"127.0.0.1:{udp}\""))
        .replace("\"10.0.0.10:5060\"", &format!("\"127.0.0.1:{pbx}\""))
        .replace("edge.customer.example", "edge.customer.test")
        .replace("/etc/trunkgate/edge.chain.pem", &p("chain.pem").display().to_string())
        .replace("/etc/trunkgate/edge.key", &p("key.pem").display().to_string());
    assert!(config.contains(&format!("127.0.0.1:{tls}")), "the example's TLS listener moved; update this test");
    // The edge limits TLS handshakes per IP (50/s in the example) and the checker makes ~50
    // probe connections: unpaced, the edge refuses the later ones (seen in development).
    // --pace-ms 30 keeps it under the limit.
    assert!(config.contains("handshakes_per_ip_per_second = 50"), "the example's rate limit changed; update --pace-ms");
    std::fs::write(p("edge.toml"), config).unwrap();

    let bin = env!("CARGO_BIN_EXE_trunkgate");
    let args: Vec<String> = vec!["serve".into(), "--config".into(), p("edge.toml").display().to_string()];
    let log = std::fs::File::create(p("edge.log")).unwrap();
    let _edge = ChildGuard::spawn_limited(
        bin,
        "trunkgate",
        &args,
        120,
        Stdio::null(),
        Stdio::from(log.try_clone().unwrap()),
        Stdio::from(log),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], tls));
    if let Err(e) = wait_tcp(addr, Duration::from_secs(20)) {
        panic!("the edge did not listen: {e}\n{}", std::fs::read_to_string(p("edge.log")).unwrap_or_default());
    }
    let out = Command::new("timeout")
        .args(["120", bin, "check", "sips:edge.customer.test", "--connect", &addr.to_string(), "--pace-ms", "30"])
        .args(["--profile", &p("profile.toml").display().to_string(), "--ca", &p("root.pem").display().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        text.contains("PASS  sip.options"),
        "{text}\nedge log:\n{}",
        std::fs::read_to_string(p("edge.log")).unwrap_or_default()
    );
    assert!(text.contains("PASS  tls.certificate-request"), "{text}");
    assert!(text.contains("PASS  tls.group.P-384"), "{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\nedge log:\n{}",
        std::fs::read_to_string(p("edge.log")).unwrap_or_default()
    );
}
