//! Full TLS 1.2 handshakes per second on one core (server and client in one thread over an
//! in-memory duplex, through the crate's real async API), for ECDHE-RSA on P-384 and for a
//! TLS_RSA suite (SPEC T2). Compare with `openssl speed rsa2048 ecdhp384` (see docs/tls.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trunkgate_tls::PeerOptions;

const HOST: &str = "lb01.voice.use1.example.net";

fn one_suite(suite: &str) -> trunkgate_tls::Profile {
    let text = common::shipped("byoc-cloud").replace("mode = \"hard\"", "mode = \"off\"");
    let start = text.find("cipher_suites = [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let one = format!("{}cipher_suites = [\"{suite}\"]{}", &text[..start], &text[end..]);
    trunkgate_tls::Profile::parse(&one, suite).unwrap()
}

fn bench(c: &mut Criterion) {
    let w = common::World::new();
    let srv = common::server(common::byoc("off"), w.identity(&w.spec(HOST)));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group("full_handshake");
    g.throughput(Throughput::Elements(1));
    for suite in ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"] {
        let cl = common::client(one_suite(suite), w.anchors());
        let opts = PeerOptions::default();
        g.bench_function(suite, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (a, z) = tokio::io::duplex(64 * 1024);
                    let (s, c) = tokio::join!(srv.accept(a, None, "bench"), cl.connect(HOST, &opts, z));
                    let (_, si) = s.unwrap();
                    let (_, ci) = c.unwrap();
                    assert_eq!(ci.cipher.as_deref(), Some(suite));
                    si.id
                })
            })
        });
    }
    g.finish();

    // The crypto the handshakes cannot avoid, measured with the same (vendored) OpenSSL, to
    // compute the bound: ECDHE-RSA = 1 RSA sign + 2 x (P-384 keygen + ECDH) + 3 RSA verify;
    // TLS_RSA = 1 RSA decrypt + 1 RSA encrypt + 2 RSA verify (client checks leaf + intermediate).
    use openssl::derive::Deriver;
    use openssl::encrypt::{Decrypter, Encrypter};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::sign::{Signer, Verifier};
    let key = common::rsa(2);
    let mut g = c.benchmark_group("crypto");
    let msg = [7u8; 64];
    let sig = {
        let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
        s.update(&msg).unwrap();
        s.sign_to_vec().unwrap()
    };
    g.bench_function("rsa2048_sign_sha256", |b| {
        b.iter(|| {
            let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
            s.update(&msg).unwrap();
            s.sign_to_vec().unwrap()
        })
    });
    g.bench_function("rsa2048_verify_sha256", |b| {
        b.iter(|| {
            let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
            v.update(&msg).unwrap();
            assert!(v.verify(&sig).unwrap());
        })
    });
    let ct = {
        let e = Encrypter::new(&key).unwrap();
        let mut out = vec![0u8; e.encrypt_len(&[1u8; 48]).unwrap()];
        let n = e.encrypt(&[1u8; 48], &mut out).unwrap();
        out.truncate(n);
        out
    };
    g.bench_function("rsa2048_decrypt_pkcs1", |b| {
        b.iter(|| {
            let d = Decrypter::new(&key).unwrap();
            let mut out = vec![0u8; d.decrypt_len(&ct).unwrap()];
            d.decrypt(&ct, &mut out).unwrap()
        })
    });
    let peer = common::ec(Nid::SECP384R1);
    g.bench_function("p384_keygen_ecdh", |b| {
        b.iter(|| {
            let k = common::ec(Nid::SECP384R1);
            let mut d = Deriver::new(&k).unwrap();
            d.set_peer(&peer).unwrap();
            d.derive_to_vec().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
