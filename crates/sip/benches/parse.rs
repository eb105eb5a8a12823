//! Parse and serialize throughput on a typical trunk INVITE with SDP (SPEC S1 Request-URI,
//! SDES crypto line) and on a 200 OK. Goal (issue 3): ≥ 1,000,000 INVITEs parsed per second
//! per core. Run: `cargo bench -p trunkgate-sip --bench parse`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use trunkgate_sip::{
    parse_datagram, parse_stream_message, response_to, validate_request, Limits, OwnedMessage, Policy, StreamFramer,
};

const INVITE: &[u8] = include_bytes!("data/invite.sip");

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let policy = Policy::default();
    let invite = parse_datagram(INVITE, &limits).expect("bench INVITE parses");
    let ok = response_to(&invite, 200, "OK", Some("8321234356")).to_bytes();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("invite_sdp", |b| {
        b.iter(|| parse_stream_message(black_box(INVITE), &limits).unwrap().headers.len())
    });
    g.bench_function("invite_sdp+validate", |b| {
        b.iter(|| {
            let m = parse_stream_message(black_box(INVITE), &limits).unwrap();
            validate_request(&m, &policy).unwrap().cseq.seq
        })
    });
    g.bench_function("200_ok", |b| b.iter(|| parse_stream_message(black_box(&ok), &limits).unwrap().headers.len()));
    g.bench_function("invite_framed_from_stream", |b| {
        let mut f = StreamFramer::new(limits);
        b.iter(|| {
            f.push(black_box(INVITE));
            f.next_frame().unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("serialize");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(2048);
    g.bench_function("invite_sdp_borrowed", |b| {
        b.iter(|| {
            out.clear();
            invite.write_to(&mut out);
            out.len()
        })
    });
    let owned = OwnedMessage::from_message(&invite);
    g.bench_function("invite_sdp_owned", |b| {
        b.iter(|| {
            out.clear();
            owned.write_to(&mut out);
            out.len()
        })
    });
    g.bench_function("200_ok_build", |b| b.iter(|| response_to(black_box(&invite), 200, "OK", Some("x")).to_bytes()));
    g.finish();
}

criterion_group!(sip, benches);
criterion_main!(sip);
