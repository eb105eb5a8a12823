//! Property tests: generated URIs and messages survive build → serialize → parse → serialize
//! unchanged, and arbitrary bytes never panic the parser or the framer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use trunkgate_sip::{
    parse_datagram, parse_stream_message, Frame, Host, Limits, Method, OwnedMessage, Scheme, StreamFramer, Uri,
};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 0..3)
        .prop_flat_map(|labels| ("[a-z][a-z0-9]{0,6}", Just(labels)))
        .prop_map(|(top, mut labels)| {
            labels.push(top);
            labels.join(".")
        })
}

#[derive(Debug, Clone)]
struct UriParts {
    secure: bool,
    number: Option<String>,
    tgrp: Option<(String, String)>,
    host: String,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
}

fn uri_parts() -> impl Strategy<Value = UriParts> {
    (
        any::<bool>(),
        prop::option::of("\\+?[0-9]{3,15}"),
        prop::option::of(("[A-Za-z0-9-]{1,10}", domain())),
        prop_oneof![
            domain(),
            any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
            any::<[u16; 8]>().prop_map(|a| format!("[{}]", std::net::Ipv6Addr::from(a))),
        ],
        prop::option::of(1u16..),
        prop::collection::vec(("[a-z][a-z0-9-]{0,8}", prop::option::of("[A-Za-z0-9.-]{1,10}")), 0..4),
    )
        .prop_map(|(secure, number, tgrp, host, port, params)| UriParts {
            secure,
            tgrp: if number.is_some() { tgrp } else { None },
            number,
            host,
            port,
            params,
        })
}

fn render(p: &UriParts) -> String {
    let mut s = String::from(if p.secure { "sips:" } else { "sip:" });
    if let Some(n) = &p.number {
        s.push_str(n);
        if let Some((g, ctx)) = &p.tgrp {
            s.push_str(&format!(";tgrp={g};trunk-context={ctx}"));
        }
        s.push('@');
    }
    s.push_str(&p.host);
    if let Some(port) = p.port {
        s.push_str(&format!(":{port}"));
    }
    for (k, v) in &p.params {
        s.push(';');
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn uris_parse_back_to_their_parts(p in uri_parts()) {
        let raw = render(&p);
        let u = Uri::parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{raw}: {e}"));
        prop_assert_eq!(u.scheme, if p.secure { Scheme::Sips } else { Scheme::Sip });
        prop_assert_eq!(u.user_number(), p.number.as_deref().map(str::as_bytes));
        if let Some((g, ctx)) = &p.tgrp {
            prop_assert_eq!(u.tgrp().map(|c| c.into_owned()), Some(g.as_bytes().to_vec()));
            prop_assert_eq!(u.trunk_context().map(|c| c.into_owned()), Some(ctx.as_bytes().to_vec()));
        }
        let host = u.host.unwrap();
        let expect_host = p.host.trim_start_matches('[').trim_end_matches(']');
        match host {
            Host::Domain(d) => prop_assert_eq!(d, expect_host.as_bytes()),
            Host::V4(a) => prop_assert_eq!(a.to_string(), expect_host),
            Host::V6(a) => prop_assert_eq!(Some(a), expect_host.parse().ok()),
        }
        prop_assert_eq!(u.port, p.port);
        let got: Vec<_> = u.params().iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
        let want: Vec<_> = p.params.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.as_bytes().to_vec()))).collect();
        prop_assert_eq!(got, want);
        prop_assert!(u.equivalent(&Uri::parse(raw.as_bytes()).unwrap()));
    }

    #[test]
    fn messages_round_trip(
        p in uri_parts(),
        method in prop_oneof![Just(Method::Invite), Just(Method::Options), Just(Method::Bye), token().prop_map(|t| Method::from_bytes(t.as_bytes()).unwrap())],
        headers in prop::collection::vec((token(), "[ -~]{0,40}"), 0..20),
        body in prop::collection::vec(any::<u8>(), 0..300),
        status in prop::option::of((100u16..700, "[ -~]{0,20}")),
    ) {
        let mut m = match &status {
            Some((code, reason)) => OwnedMessage::response(*code, reason.trim()),
            None => OwnedMessage::request(method, render(&p)),
        };
        for (name, value) in &headers {
            m.push(name, value.trim());
        }
        m.body = body.clone();
        let bytes = m.to_bytes();
        for parsed in [parse_datagram(&bytes, &Limits::default()), parse_stream_message(&bytes, &Limits::default())] {
            let parsed = parsed.unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
            prop_assert_eq!(parsed.body, &body[..]);
            prop_assert_eq!(parsed.len, bytes.len());
            prop_assert_eq!(parsed.to_bytes(), bytes.clone());
            prop_assert_eq!(OwnedMessage::from_message(&parsed).to_bytes(), bytes.clone());
        }
        // And through the stream framer, split at every 7th byte.
        let mut f = StreamFramer::new(Limits::default());
        let mut got = None;
        for chunk in bytes.chunks(7) {
            f.push(chunk);
            if let Some(fr) = f.next_frame().unwrap() { got = Some(fr); }
        }
        prop_assert_eq!(got, Some(Frame::Message(bytes.clone())));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let limits = Limits::default();
        if let Ok(m) = parse_datagram(&data, &limits) {
            let _ = trunkgate_sip::validate_request(&m, &trunkgate_sip::Policy::default());
            let _ = trunkgate_sip::validate_response(&m);
            let again = m.to_bytes();
            prop_assert!(parse_datagram(&again, &limits).is_ok());
        }
        let mut f = StreamFramer::new(limits);
        f.push(&data);
        while let Ok(Some(_)) = f.next_frame() {}
    }

    #[test]
    fn sip_shaped_mutations_never_panic(
        base in prop::sample::select(vec![&b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nFrom: \"x\" <sip:c@d>;tag=1\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContact: <sip:c@[::1]:5060>;expires=3\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\r\n"[..]]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut data = base.to_vec();
        for (idx, byte) in edits {
            let i = idx.index(data.len());
            data[i] = byte;
        }
        if let Ok(m) = parse_datagram(&data, &Limits::default()) {
            let _ = trunkgate_sip::validate_request(&m, &trunkgate_sip::Policy::default());
        }
    }
}
