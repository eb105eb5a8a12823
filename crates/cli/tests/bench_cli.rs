//! `trunkgate bench` end to end: `setup` writes an edge configuration that `serve --check`
//! accepts; `answer` + `calls` complete with exit 0 and a JSON report; a refusing server gives
//! exit 1 with the cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn trunkgate(args: &[&str]) -> Output {
    Command::new("timeout").arg("120").arg(env!("CARGO_BIN_EXE_trunkgate")).args(args).output().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn setup_writes_a_configuration_the_edge_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = trunkgate(&["bench", "setup", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["edge.toml", "root.pem", "cloud.trunkgate.test.chain.pem", "edge.bench.test.key"] {
        assert!(dir.path().join(f).exists(), "{f} written");
    }
    let cfg = dir.path().join("edge.toml");
    let check = trunkgate(&["serve", "--config", cfg.to_str().unwrap(), "--check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn answer_and_calls_complete_with_a_json_report() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut answer = Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_trunkgate"), "bench", "answer", "--udp", &addr, "-d", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(answer.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("answer udp {addr}"));
    let out = trunkgate(&["bench", "calls", &addr, "-t", "udp", "-n", "50", "-w", "5", "--json"]);
    // SIGTERM to `timeout`, which passes it on (SIGKILL would orphan the answerer).
    let _ = Command::new("kill").arg(answer.id().to_string()).status();
    let _ = answer.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["ok"].as_u64(), v["failed"].as_u64()), (Some(50), Some(0)));
    assert_eq!(v["mode"], "calls");
    assert!(v["latency"]["p99_ms"].as_f64().is_some() && v["client_cpu_s"].as_f64().is_some());
}

#[test]
fn a_refusing_server_exits_1_with_the_cause() {
    let addr = format!("127.0.0.1:{}", free_port());
    let out = trunkgate(&["bench", "options", &addr, "-n", "5", "-c", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 × connect: connection refused"), "{text}");
}
