//! SPEC O2: the NSS key log decrypts a capture. Captures on `lo` with a port filter using
//! `dumpcap`, decrypts with `tshark` (Debian package `tshark`), all under `timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use common::*;
use trunkgate_tls::{ClientConfig, ObserveOptions, PeerOptions, TlsClient};

const HOST: &str = "lb01.voice.use1.example.net";
const PAYLOAD: &[u8] = b"OPTIONS sip:probe@lb01.voice.use1.example.net SIP/2.0\r\n";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decrypted(pcap: &std::path::Path, port: u16, keylog: Option<&std::path::Path>) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "tshark", "-r"]).arg(pcap).args(["-d", &format!("tcp.port=={port},tls")]);
    if let Some(k) = keylog {
        cmd.args(["-o", &format!("tls.keylog_file:{}", k.display())]);
    }
    let out =
        cmd.args(["-Y", "data", "-T", "fields", "-e", "data.data"]).output().expect("tshark (Debian package tshark)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn o2_key_log_decrypts_a_tshark_capture() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("keys.log");
    let pcap = dir.path().join("cap.pcapng");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();

    let child = Command::new("timeout")
        .args(["60", "dumpcap", "-q", "-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dumpcap (Debian package tshark)");
    let mut guard = ChildGuard(Some(child));
    let err = guard.0.as_mut().unwrap().stderr.take().unwrap();
    let mut lines = BufReader::new(err).lines();
    let started = lines.any(|l| l.map(|l| l.contains("Capturing on")).unwrap_or(false));
    assert!(started, "dumpcap did not start capturing (needs capture rights on lo)");
    std::thread::spawn(move || for _ in lines {});

    let srv = server(byoc("off"), w.identity(&w.spec(HOST)));
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (mut tls, _) = srv.accept_blocking(s, None, "c").unwrap();
        let mut b = vec![0u8; PAYLOAD.len()];
        tls.read_exact(&mut b).unwrap();
        tls.write_all(&b).unwrap();
        let _ = tls.shutdown();
    });
    let mut cfg = ClientConfig::new(byoc("off"), w.anchors());
    cfg.observe = ObserveOptions { debug: false, keylog: Some(keylog.clone()) };
    let cl = TlsClient::new(&cfg).unwrap();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (mut tls, _) = cl.connect_blocking(HOST, &PeerOptions::default(), s).unwrap();
    tls.write_all(PAYLOAD).unwrap();
    let mut b = vec![0u8; PAYLOAD.len()];
    tls.read_exact(&mut b).unwrap();
    let _ = tls.shutdown();
    t.join().unwrap();

    // dumpcap writes packets some time after they pass: read the growing file until the
    // payload shows up decrypted (bounded), then stop the capture.
    let mut with_keys = String::new();
    for _ in 0..25 {
        with_keys = decrypted(&pcap, port, Some(&keylog));
        if with_keys.contains(&hex(PAYLOAD)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pid = guard.0.as_ref().unwrap().id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    guard.0.take().unwrap().wait().unwrap();
    if !with_keys.contains(&hex(PAYLOAD)) {
        // On a loaded machine dumpcap may not have flushed while it ran; stopping it does.
        with_keys = decrypted(&pcap, port, Some(&keylog));
    }
    if !with_keys.contains(&hex(PAYLOAD)) {
        let list = Command::new("timeout").args(["60", "tshark", "-r"]).arg(&pcap).output().unwrap();
        panic!(
            "payload not decrypted: {with_keys:?}\ncapture:\n{}\nkey log lines: {}",
            String::from_utf8_lossy(&list.stdout),
            std::fs::read_to_string(&keylog).unwrap_or_default().lines().count()
        );
    }
    // Control: without the key log the payload stays encrypted.
    let without = decrypted(&pcap, port, None);
    assert!(!without.contains(&hex(PAYLOAD)));
}
