//! Inbound mode against `openssl s_client` (Debian `openssl`) as the peer under test: what its
//! ClientHello offers, whether it accepted our certificate (or aborted with which alert), and
//! its first SIP request (SPEC T2, T6, T7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use trunkgate_check::inbound::{check_inbound, InboundOptions};
use trunkgate_check::{load_profile, Report, Status};
use trunkgate_pki::LeafSpec;
use trunkgate_testkit::ChildGuard;
use trunkgate_tls::Identity;

const HOST: &str = "edge.customer.test";

const OPTIONS: &str = "OPTIONS sip:edge.customer.test;transport=tls SIP/2.0\n\
Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKinbound1\n\
Max-Forwards: 70\n\
From: <sip:carrier@127.0.0.1>;tag=1\n\
To: <sip:edge.customer.test>\n\
Call-ID: inbound-test-1\n\
CSeq: 1 OPTIONS\n\
User-Agent: carrier-sbc-under-test\n\
Content-Length: 0\n\n";

/// Listen with our certificate; when ready, start `openssl s_client` with `args`, feeding it
/// `input` on stdin.
fn run(pki: &Pki, args: &[&str], input: &'static str) -> Report {
    let leaf = pki.leaf(LeafSpec::server(HOST, pki.valid()));
    let files = pki.write("ours", &leaf);
    let identity = Identity::from_files(&files.full, &files.key, &[]).unwrap();
    let opts = InboundOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity,
        profile: load_profile("byoc-cloud").unwrap(),
        wait: Duration::from_secs(20),
        timeout: Duration::from_secs(10),
    };
    let mut guard: Option<ChildGuard> = None;
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut ready = |a: SocketAddr| {
        let mut full = vec!["s_client".to_string(), "-connect".into(), a.to_string(), "-quiet".into(), "-crlf".into()];
        full.extend(args.iter().cloned());
        let mut g =
            ChildGuard::spawn_limited("openssl", "openssl", &full, 30, Stdio::piped(), Stdio::null(), Stdio::null())
                .expect("openssl (Debian openssl)");
        let mut stdin = g.child_mut().unwrap().stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
            // Keep stdin open a while: -quiet ignores EOF anyway.
            std::thread::sleep(Duration::from_secs(5));
        });
        guard = Some(g);
    };
    let r = check_inbound(&opts, &mut ready).unwrap();
    drop(guard);
    r
}

fn assert_inbound(r: &Report, check: &str, status: Status, code: &str) {
    let f = r.targets[0].get(check);
    assert!(f.iter().any(|f| f.status == status && f.code == code), "{check}: {f:?}\n{}", r.to_text(false));
}

#[test]
fn t2_peer_that_trusts_us_sends_options() {
    let pki = Pki::new();
    let root = pki.root_pem.display().to_string();
    let r = run(
        &pki,
        &[
            "-servername",
            HOST,
            "-CAfile",
            &root,
            "-verify_return_error",
            "-verify_hostname",
            HOST,
            "-tls1_2",
            "-groups",
            "P-384",
        ],
        OPTIONS,
    );
    println!("{}", r.to_text(false));
    assert_inbound(&r, "hello.versions", Status::Pass, "Offered");
    assert_inbound(&r, "hello.suites", Status::Pass, "Shared");
    assert_inbound(&r, "hello.groups", Status::Pass, "Shared");
    assert_inbound(&r, "hello.sni", Status::Pass, "Sent");
    assert!(r.targets[0].get("hello.sni")[0].reason.contains(HOST));
    assert_inbound(&r, "inbound.handshake", Status::Pass, "Accepted");
    assert_inbound(&r, "inbound.request", Status::Pass, "Received");
    let req = &r.targets[0].get("inbound.request")[0].reason;
    assert!(req.contains("OPTIONS sip:edge.customer.test") && req.contains("carrier-sbc-under-test"), "{req}");
    assert_eq!(r.exit_code(), 0, "{}", r.to_text(false));
}

#[test]
fn t6_peer_that_does_not_trust_us_aborts_with_alert() {
    let pki = Pki::new();
    let other = Pki::new();
    let root = other.root_pem.display().to_string();
    let r = run(&pki, &["-servername", HOST, "-CAfile", &root, "-verify_return_error"], OPTIONS);
    assert_inbound(&r, "inbound.handshake", Status::Fail, "PeerAlert");
    let why = &r.targets[0].get("inbound.handshake")[0].reason;
    assert!(why.contains("unknown_ca"), "{why}");
}

#[test]
fn t2_peer_offering_only_p256_with_ecdhe() {
    let pki = Pki::new();
    let r = run(
        &pki,
        &[
            "-servername",
            HOST,
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES256-GCM-SHA384:NULL-SHA:@SECLEVEL=0",
            "-groups",
            "P-256",
        ],
        OPTIONS,
    );
    assert_inbound(&r, "hello.groups", Status::Fail, "NoSharedGroup");
    assert_inbound(&r, "hello.weak", Status::Warn, "Weak");
    assert!(r.targets[0].get("hello.weak")[0].reason.contains("TLS_RSA_WITH_NULL_SHA"));
    assert!(r.targets[0].get("hello.groups")[0].reason.contains("P-256"));
    assert_inbound(&r, "inbound.handshake", Status::Fail, "WrongCurve");
}
