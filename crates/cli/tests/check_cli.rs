//! `trunkgate check` end to end: exit status 0 / 1 / 2, JSON and text output, `--profile FILE`,
//! `--ca`, `--connect`, `--nameserver`, against real servers on loopback (Kamailio, openssl
//! s_server, dnsmasq).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trunkgate_pki::{CaSpec, Issuer, KeyType, LeafSpec, Validity, DAY};
use trunkgate_testkit::{DnsRecords, Dnsmasq, Kamailio, KamailioOptions, SServer, SServerOptions};

fn trunkgate(args: &[&str]) -> Output {
    Command::new("timeout").arg("120").arg(env!("CARGO_BIN_EXE_trunkgate")).arg("check").args(args).output().unwrap()
}

struct Material {
    dir: tempfile::TempDir,
    root: PathBuf,
    leaf: PathBuf,
    key: PathBuf,
    profile: PathBuf,
}

/// A root and a leaf for `host` signed by it directly; a copy of byoc-cloud without CRL checks
/// (these certificates name no distribution point).
fn material(host: &str) -> Material {
    let now = trunkgate_pki::unix_now();
    let dir = tempfile::tempdir().unwrap();
    let root = Issuer::new_root(&CaSpec::new("cli test root", KeyType::Rsa2048, Validity::days_from(now - DAY, 3650)))
        .unwrap();
    let leaf = root.issue(&LeafSpec::server(host, Validity::new(now - DAY, now + 200 * DAY))).unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("root.pem"), root.cert().to_pem().unwrap()).unwrap();
    std::fs::write(p("leaf.pem"), leaf.cert_pem().unwrap()).unwrap();
    std::fs::write(p("key.pem"), leaf.key_pem().unwrap()).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/byoc-cloud.toml");
    let text = std::fs::read_to_string(shipped).unwrap().replace("mode = \"hard\"", "mode = \"off\"");
    assert!(text.contains("mode = \"off\""));
    std::fs::write(p("profile.toml"), text).unwrap();
    Material { root: p("root.pem"), leaf: p("leaf.pem"), key: p("key.pem"), profile: p("profile.toml"), dir }
}

const T2: &str = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES256-SHA";

#[test]
fn exit_0_json_and_text_against_kamailio() {
    let m = material("sbc.cli.test");
    let mut o = KamailioOptions::new(m.dir.path(), &m.leaf, &m.key);
    o.cipher_list = Some(T2.into());
    let k = Kamailio::start(&o).expect("kamailio with its tls module (Debian kamailio, kamailio-tls-modules)");
    let addr = k.tls_addr.to_string();
    let (root, profile) = (m.root.display().to_string(), m.profile.display().to_string());
    let base = ["sips:sbc.cli.test", "--connect", &addr, "--profile", &profile, "--ca", &root];
    let out = trunkgate(&[&base[..], &["--json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["result"], "PASS");
    assert_eq!(j["counts"]["fail"], 0);
    let findings = j["targets"][0]["findings"].as_array().unwrap();
    let sip = findings.iter().find(|f| f["check"] == "sip.options").unwrap();
    assert_eq!(sip["status"], "PASS");

    let out = trunkgate(&base);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS  sip.keepalive"), "{text}");
    assert!(text.contains("result: PASS"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");
}

#[test]
fn exit_1_wrong_name_with_reason_and_fix() {
    let m = material("other.cli.test");
    let s = SServer::start(&SServerOptions {
        cert: m.leaf.clone(),
        key: m.key.clone(),
        chain: None,
        args: vec!["-tls1_2".into(), "-cipher".into(), T2.into(), "-groups".into(), "P-384".into()],
    })
    .expect("openssl s_server (Debian openssl)");
    let (addr, root, profile) = (s.addr.to_string(), m.root.display().to_string(), m.profile.display().to_string());
    let out = trunkgate(&[
        "sips:sbc.cli.test",
        "--connect",
        &addr,
        "--profile",
        &profile,
        "--ca",
        &root,
        "--sip-timeout",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  names.match"), "{text}");
    assert!(text.contains("fix: reissue the certificate with this host name"), "{text}");
}

#[test]
fn exit_2_when_it_cannot_run() {
    let out = trunkgate(&["sips:sbc.cli.test", "--profile", "no-such-profile"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not run") && err.contains("no profile"), "{err}");

    let m = material("sbc.cli.test");
    let dns = Dnsmasq::start(&DnsRecords::new()).expect("dnsmasq (Debian dnsmasq-base)");
    let (ns, root) = (dns.addr.to_string(), m.root.display().to_string());
    let out = trunkgate(&["nowhere.test", "--nameserver", &ns, "--ca", &root, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["result"], "ERROR");
    assert!(j["error"].as_str().unwrap().contains("no address for nowhere.test"), "{j}");
}

#[test]
fn inbound_listen_reports_the_peer_hello_and_request_as_json() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let m = material("edge.cli.test");
    let port = trunkgate_testkit::free_tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let (leaf, key) = (m.leaf.display().to_string(), m.key.display().to_string());
    let mut checker = Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_trunkgate"), "check", "--listen", &listen, "--cert", &leaf, "--key", &key])
        .args(["--wait", "30", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) for "listening on" before starting the peer.
    let err = checker.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line =
        rx.recv_timeout(std::time::Duration::from_secs(30)).expect("trunkgate check --listen says where it listens");
    assert!(line.contains(&listen), "{line}");
    let root = m.root.display().to_string();
    let mut peer = Command::new("timeout")
        .args(["30", "openssl", "s_client", "-connect", &listen, "-quiet", "-crlf", "-servername", "edge.cli.test"])
        .args(["-CAfile", &root, "-verify_return_error", "-tls1_2", "-groups", "P-384"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl (Debian openssl)");
    let mut stdin = peer.stdin.take().unwrap();
    stdin
        .write_all(
            b"OPTIONS sip:edge.cli.test;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKcli\n\
Max-Forwards: 70\nFrom: <sip:p@127.0.0.1>;tag=1\nTo: <sip:edge.cli.test>\nCall-ID: cli-inbound\nCSeq: 1 OPTIONS\n\
User-Agent: cli-peer\nContent-Length: 0\n\n",
        )
        .unwrap();
    let out = checker.wait_with_output().unwrap();
    drop(stdin);
    // Stop the peer by PID (SIGTERM through `timeout`, then SIGKILL).
    trunkgate_testkit::ChildGuard::new(peer).stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["mode"], "inbound");
    let findings = j["targets"][0]["findings"].as_array().unwrap();
    let get = |c: &str| findings.iter().find(|f| f["check"] == c).unwrap().clone();
    assert_eq!(get("hello.sni")["reason"], "SNI edge.cli.test");
    assert_eq!(get("inbound.handshake")["status"], "PASS");
    assert!(get("inbound.request")["reason"].as_str().unwrap().contains("cli-peer"), "{stdout}");
}
