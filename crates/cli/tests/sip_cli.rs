//! `trunkgate sip parse` and `trunkgate sip uri` end to end: the real binary on the RFC 4475
//! vectors and on the SPEC S1 trunk URI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn vector(name: &str) -> String {
    format!("{}/../sip/tests/data/rfc4475/{name}.dat", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> (i32, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trunkgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), json)
}

#[test]
fn valid_invite_prints_headers_in_order_and_exits_0() {
    let (code, v) = run(&["sip", "parse", &vector("wsinv")], None);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["kind"], "request");
    assert_eq!(v["method"], "INVITE");
    assert_eq!(v["valid"], true);
    let headers = v["headers"].as_array().unwrap();
    assert_eq!(headers[0]["name"], "TO");
    assert_eq!(headers[0]["canonical"], "To");
    assert_eq!(headers[0]["value"], "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
    assert_eq!(headers.iter().filter(|h| h["canonical"] == "Via").count(), 2);
    assert_eq!(v["body_length"], 150);
    assert_eq!(v["request_uri"]["params"]["unknownparam"], Value::Null);
}

#[test]
fn malformed_messages_print_their_answer_and_exit_1() {
    for (name, status) in [("badvers", 505), ("unkscm", 416), ("bext01", 420), ("ncl", 400), ("invut", 415)] {
        let (code, v) = run(&["sip", "parse", "--datagram", &vector(name)], None);
        assert_eq!(code, 1, "{name}: {v}");
        assert_eq!(v["valid"], false);
        assert_eq!(v["answer"]["status"], status, "{name}: {v}");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    let (code, v) = run(&["sip", "parse", "--datagram", &vector("bigcode")], None);
    assert_eq!(code, 1);
    assert_eq!(v["answer"], "drop");
    let (_, v) = run(&["sip", "parse", "--datagram", &vector("bext01")], None);
    assert_eq!(v["answer"]["header"]["name"], "Unsupported");
}

#[test]
fn stdin_datagram_with_trailing_octets() {
    let raw = std::fs::read(vector("dblreq")).unwrap();
    let (code, v) = run(&["sip", "parse", "--datagram", "-"], Some(&raw));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["method"], "REGISTER");
    // The same bytes as one stream message are truncated (the trailing INVITE is incomplete),
    // but the first message frames fine on its own:
    let (code, v) = run(&["sip", "parse", "-"], Some(&raw));
    assert_eq!(code, 0, "{v}");
}

#[test]
fn forwarding_element_answers_483() {
    let (code, _) = run(&["sip", "parse", &vector("zeromf")], None);
    assert_eq!(code, 0);
    let (code, v) = run(&["sip", "parse", "--forwarding", &vector("zeromf")], None);
    assert_eq!(code, 1);
    assert_eq!(v["answer"]["status"], 483);
}

#[test]
fn oversized_input_is_refused_not_buffered() {
    let big = vec![b'a'; 5000];
    let (code, v) = run(&["sip", "parse", "--max-size", "1000", "-"], Some(&big));
    assert_eq!(code, 1, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"), "{v}");
}

#[test]
fn trunk_uri_of_spec_s1() {
    let (code, v) = run(
        &[
            "sip",
            "uri",
            "sip:+13175551212;tgrp=TG-1;trunk-context=example.com@lb01.voice.use1.pure.cloud:5061;transport=tls",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(v["user"], "+13175551212");
    assert_eq!(v["user_params"]["tgrp"], "TG-1");
    assert_eq!(v["user_params"]["trunk-context"], "example.com");
    assert_eq!(v["host"], "lb01.voice.use1.pure.cloud");
    assert_eq!(v["port"], 5061);
    assert_eq!(v["secure"], true);
    let (code, v) = run(&["sip", "uri", "sip:user@[::1"], None);
    assert_eq!(code, 1);
    assert!(v["error"].is_string());
}

#[test]
fn missing_file_is_a_clear_error() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_trunkgate")).args(["sip", "parse", "/nonexistent/x.sip"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/x.sip"));
}
