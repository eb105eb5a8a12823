//! RFC 4475 torture messages: each of the 49 vectors (tests/data/rfc4475, copied from
//! shared/vectors) is handled as the RFC says — processed, answered with the right status, or
//! dropped — through the same path the edge uses: datagram parse, validation, disposition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use trunkgate_sip::{
    disposition, looks_like_request, parse_datagram, validate_request, validate_response, Disposition, HeaderName,
    Limits, Message, Policy, StreamFramer, Uri,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Process,
    Respond(u16),
    Drop,
}
use Expect::*;

const TABLE: &[(&str, Expect)] = &[
    ("wsinv", Process),
    ("intmeth", Process),
    ("esc01", Process),
    ("escnull", Process),
    ("esc02", Process),
    ("lwsdisp", Process),
    ("longreq", Process),
    ("dblreq", Process),
    ("semiuri", Process),
    ("transports", Process),
    ("mpart01", Process),
    ("unreason", Process),
    ("noreason", Process),
    ("badinv01", Respond(400)),
    ("clerr", Respond(400)),
    ("ncl", Respond(400)),
    ("scalar02", Respond(400)),
    ("scalarlg", Drop),
    ("quotbal", Respond(400)),
    ("ltgtruri", Respond(400)),
    ("lwsruri", Respond(400)),
    ("lwsstart", Respond(400)),
    ("trws", Respond(400)),
    ("escruri", Respond(400)),
    ("baddate", Process), // RFC 4475 §3.1.2.12 allows ignoring the Date value; we do.
    ("regbadct", Respond(400)),
    ("badaspec", Respond(400)),
    ("baddn", Respond(400)),
    ("badvers", Respond(505)),
    ("mismatch01", Respond(400)),
    ("mismatch02", Respond(400)),
    ("bigcode", Drop),
    ("badbranch", Process),
    ("insuf", Respond(400)),
    ("unkscm", Respond(416)),
    ("novelsc", Respond(416)),
    ("unksm2", Process),
    ("bext01", Respond(420)),
    ("invut", Respond(415)),
    ("regaut01", Process), // no authentication configured: processed, never a crash
    ("multi01", Respond(400)),
    ("mcl01", Respond(400)),
    ("bcast", Drop),
    ("zeromf", Process), // as the addressed UAS; a forwarding element answers 483 (below)
    ("cparam01", Process),
    ("cparam02", Process),
    ("regescrt", Process),
    ("sdp01", Respond(406)),
    ("inv2543", Process),
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/rfc4475/{name}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn handle(raw: &[u8], policy: &Policy) -> (Expect, Disposition) {
    let to_expect = |d: &Disposition| match d.status() {
        Some(s) => Respond(s),
        None => Drop,
    };
    let msg: Message<'_> = match parse_datagram(raw, &Limits::default()) {
        Ok(m) => m,
        Err(e) => {
            let d = disposition(&e, looks_like_request(raw), &policy.accept_header());
            return (to_expect(&d), d);
        }
    };
    let result =
        if msg.is_request() { validate_request(&msg, policy).map(|_| ()) } else { validate_response(&msg).map(|_| ()) };
    match result {
        Ok(()) => (Process, Disposition::Drop),
        Err(e) => {
            let d = disposition(&e, msg.is_request(), &policy.accept_header());
            (to_expect(&d), d)
        }
    }
}

#[test]
fn all_49_vectors_handled_as_rfc4475_says() {
    let dir = format!("{}/tests/data/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!(files, 49);
    assert_eq!(TABLE.len(), 49);
    let mut failures = Vec::new();
    for (name, expected) in TABLE {
        let (got, _) = handle(&load(name), &Policy::default());
        if got != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bext01_lists_both_unsupported_tags() {
    let (_, d) = handle(&load("bext01"), &Policy::default());
    let Disposition::Respond { status: 420, extra_header: Some(("Unsupported", tags)), .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(tags, "nothingSupportsThis, nothingSupportsThisEither");
}

#[test]
fn invut_415_carries_accept() {
    let (_, d) = handle(&load("invut"), &Policy::default());
    let Disposition::Respond { status: 415, extra_header: Some(("Accept", accept)), .. } = d else { panic!("{d:?}") };
    assert!(accept.contains("application/sdp"));
}

#[test]
fn zeromf_gets_483_at_a_forwarding_element() {
    let policy = Policy { forwards: true, ..Policy::default() };
    assert_eq!(handle(&load("zeromf"), &policy).0, Respond(483));
}

#[test]
fn dblreq_ignores_trailing_octets() {
    let raw = load("dblreq");
    let msg = parse_datagram(&raw, &Limits::default()).unwrap();
    assert!(msg.body.is_empty());
    assert!(msg.len < raw.len());
    assert_eq!(msg.header(HeaderName::CallId), Some(&b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"[..]));
}

#[test]
fn clerr_on_a_stream_waits_for_more_bytes() {
    let mut f = StreamFramer::new(Limits::default());
    f.push(&load("clerr"));
    assert_eq!(f.next_frame().unwrap(), None);
}

#[test]
fn wsinv_values_survive_folding_and_compact_forms() {
    let raw = load("wsinv");
    let msg = parse_datagram(&raw, &Limits::default()).unwrap();
    let info = validate_request(&msg, &Policy::default()).unwrap();
    assert_eq!(info.max_forwards, 68);
    assert_eq!(info.cseq.seq, 9);
    assert_eq!(info.vias.len(), 3);
    assert_eq!(info.vias[1].branch(), Some(&b"z9hG4bK9ikj8"[..]));
    assert_eq!(info.to.tag(), Some(&b"1918181833n"[..]));
    assert_eq!(info.from.display_text().unwrap(), br#"J Rosenberg \""#.to_vec());
    assert_eq!(msg.body.len(), 150);
    assert_eq!(
        msg.header_by_str("newfangledheader").map(trunkgate_sip::message::unfold),
        Some(b"newfangled value continued newfangled value".to_vec())
    );
}

#[test]
fn esc01_escapes_compare_equal_unescaped() {
    let raw = load("esc01");
    let msg = parse_datagram(&raw, &Limits::default()).unwrap();
    let info = validate_request(&msg, &Policy::default()).unwrap();
    assert!(info.to.uri.equivalent(&Uri::parse(b"sip:user@example.com").unwrap()));
    assert_eq!(trunkgate_sip::uri::unescape(info.uri.user.unwrap()).as_ref(), b"sips:user@example.com");
}

#[test]
fn escnull_and_semiuri_user_parts() {
    let raw = load("escnull");
    let msg = parse_datagram(&raw, &Limits::default()).unwrap();
    let info = validate_request(&msg, &Policy::default()).unwrap();
    assert_eq!(trunkgate_sip::uri::unescape(info.to.uri.user.unwrap()).as_ref(), b"null-\0-null");
    let raw = load("semiuri");
    let msg = parse_datagram(&raw, &Limits::default()).unwrap();
    let info = validate_request(&msg, &Policy::default()).unwrap();
    assert_eq!(info.uri.user_number(), Some(&b"user"[..]));
    assert_eq!(
        info.uri.user_params().get("par").flatten().map(trunkgate_sip::uri::unescape).as_deref(),
        Some(&b"u@example.net"[..])
    );
}

#[test]
fn every_vector_round_trips() {
    for (name, _) in TABLE {
        let raw = load(name);
        let Ok(msg) = parse_datagram(&raw, &Limits::default()) else { continue };
        let bytes = msg.to_bytes();
        let again = parse_datagram(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.start, again.start, "{name}");
        assert_eq!(msg.headers, again.headers, "{name}");
        assert_eq!(msg.body, again.body, "{name}");
    }
}
