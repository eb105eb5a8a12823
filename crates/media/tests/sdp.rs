//! SDP parsing, round trips and per-leg rewriting on real bodies (baresip 1.0 with SDES, the RFC
//! 4475 torture messages), and the offer/answer API of `MediaSession` (SPEC M1, M2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use proptest::prelude::*;
use trunkgate_media::{
    CryptoAttr, CryptoError, CryptoSuite, Direction, LegConfig, LegId, LegSecurity, MediaConfig, MediaError,
    MediaManager, MediaSession, Sdp, SrtpKey, SrtpPolicy,
};

const BARESIP_OFFER: &[u8] = include_bytes!("data/baresip-srtp-offer.sdp");
const BARESIP_ANSWER: &[u8] = include_bytes!("data/baresip-srtp-answer.sdp");
const TRUNK_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const INSIDE_IP: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn rfc4475_bodies() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/data/rfc4475");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let raw = std::fs::read(&p).unwrap();
        let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let body = &raw[i + 4..];
        if body.starts_with(b"v=0") {
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), body.to_vec()));
        }
    }
    out.sort();
    out
}

#[test]
fn rfc4475_sdp_bodies_round_trip_and_rewrite() {
    let bodies = rfc4475_bodies();
    assert!(bodies.len() >= 19, "found {} SDP bodies", bodies.len());
    for (name, body) in bodies {
        let sdp = Sdp::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = Sdp::parse(&sdp.to_bytes()).unwrap();
        assert_eq!(again, sdp, "{name}");
        // CRLF bodies come back byte for byte (modulo a missing final CRLF).
        let text = String::from_utf8(body.clone()).unwrap();
        assert_eq!(sdp.to_string().trim_end(), text.trim_end(), "{name}");
        let relayed = sdp.relayed_audio().unwrap();
        let out = sdp.rewrite(TRUNK_IP, relayed, 30000, false, &[]);
        assert_eq!(out.connection(relayed).unwrap(), TRUNK_IP, "{name}");
        assert_eq!(out.media[relayed].port, 30000);
        assert_eq!(out.media[relayed].fmts, sdp.media[relayed].fmts, "{name}: codecs pass through");
        for (i, m) in out.media.iter().enumerate() {
            if i != relayed {
                assert_eq!(m.port, 0, "{name}: other streams disabled");
            }
        }
    }
}

#[test]
fn baresip_offer_maps_to_plain_and_back_to_srtp() {
    let sdp = Sdp::parse(BARESIP_OFFER).unwrap();
    assert_eq!(sdp.to_bytes(), BARESIP_OFFER, "baresip body round-trips byte for byte");
    let crypto = sdp.media[0].crypto();
    assert_eq!(crypto.len(), 1);
    assert_eq!(crypto[0].as_ref().unwrap().suite, CryptoSuite::AesCm128HmacSha1_80);

    let plain = Sdp::parse(&sdp.rewrite(INSIDE_IP, 0, 40000, false, &[]).to_bytes()).unwrap();
    let text = plain.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{text}");
    assert!(text.contains("c=IN IP6 ::1\r\n") && text.contains("o=- 3457969550 931872150 IN IP6 ::1\r\n"), "{text}");
    assert!(!text.contains("crypto") && !text.contains("inline:"), "no key on the plain leg: {text}");
    assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"), "{text}");

    let key = CryptoAttr {
        tag: 1,
        suite: CryptoSuite::AeadAes128Gcm,
        key: SrtpKey::generate(CryptoSuite::AeadAes128Gcm).unwrap(),
        lifetime: Some(1 << 31),
        window_hint: None,
    };
    let secure = plain.rewrite(TRUNK_IP, 0, 40002, true, std::slice::from_ref(&key)).to_string();
    assert!(secure.contains("m=audio 40002 RTP/SAVP 0 101\r\n"), "{secure}");
    assert!(secure.contains(&format!("a=crypto:{}\r\n", key.to_sdp_value())), "{secure}");
    assert!(secure.contains("|2^31"));
}

#[test]
fn avpf_feedback_profile_is_kept() {
    let body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVPF 111\r\nc=IN IP4 10.0.0.2\r\n\
a=rtcp:4009\r\na=rtcp-mux\r\na=candidate:1 1 udp 1 10.0.0.2 4000 typ host\r\na=rtpmap:111 opus/48000/2\r\n";
    let sdp = Sdp::parse(body).unwrap();
    assert_eq!(sdp.connection(0).unwrap(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(sdp.rtcp_port(0), Some(4009));
    let out = sdp.rewrite(TRUNK_IP, 0, 30000, false, &[]).to_string();
    assert!(out.contains("m=audio 30000 RTP/AVPF 111\r\n"), "{out}");
    assert!(!out.contains("rtcp") && !out.contains("candidate") && !out.contains("10.0.0.2"), "{out}");
    assert!(out.contains("c=IN IP4 127.0.0.1\r\nt=0 0\r\n"), "c= before t= (RFC 4566 order): {out}");
}

#[test]
fn malformed_bodies_are_typed_errors() {
    use trunkgate_media::SdpError;
    assert_eq!(Sdp::parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n"), Err(SdpError::NoVersion));
    assert_eq!(Sdp::parse(b"v=0\r\nbogus\r\n"), Err(SdpError::BadLine { line: 2 }));
    assert_eq!(Sdp::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::BadField { line: 2, what: "media port" }));
    assert_eq!(Sdp::parse(&[b'v', b'=', b'0', b'\n', 0xff]), Err(SdpError::NotText));
    let big = vec![b'a'; 20_000];
    assert!(matches!(Sdp::parse(&big), Err(SdpError::TooLarge { .. })));
    let many = "v=0\r\n".to_string() + &"a=x\r\n".repeat(600);
    assert!(matches!(Sdp::parse(many.as_bytes()), Err(SdpError::TooManyLines { .. })));
    let no_audio = Sdp::parse(b"v=0\r\nm=video 5 RTP/AVP 31\r\n").unwrap();
    assert_eq!(no_audio.relayed_audio(), Err(SdpError::NoAudio));
}

fn manager(min: u16) -> MediaManager {
    MediaManager::new(MediaConfig { port_min: min, port_max: min + 19, ..MediaConfig::default() }).unwrap()
}

fn session(mgr: &MediaManager, policy: SrtpPolicy) -> MediaSession {
    mgr.new_session(
        LegConfig { media_ip: INSIDE_IP, security: LegSecurity::Plain },
        LegConfig { media_ip: TRUNK_IP, security: LegSecurity::Srtp(policy) },
    )
    .unwrap()
}

const PBX_OFFER: &[u8] = b"v=0\r\no=pbx 5 5 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 0\r\n";

fn crypto_of(body: &[u8]) -> Vec<CryptoAttr> {
    Sdp::parse(body).unwrap().media[0].crypto().into_iter().map(Result::unwrap).collect()
}

#[test]
fn inside_to_trunk_offer_answer_and_fresh_keys_per_leg_and_direction() {
    let mgr = manager(27000);
    let policy = SrtpPolicy::new(&[CryptoSuite::AeadAes128Gcm]).unwrap();
    let mut s = session(&mgr, policy.clone());
    s.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
    let offer = s.offer_for_leg(LegId::B).unwrap();
    let offered = crypto_of(&offer);
    let suites: Vec<_> = offered.iter().map(|c| c.suite).collect();
    assert_eq!(suites, [CryptoSuite::AesCm128HmacSha1_80, CryptoSuite::AeadAes128Gcm], "SHA1_80 first");
    assert_eq!(offered.iter().map(|c| c.tag).collect::<Vec<_>>(), [1, 2]);
    // The trunk answers with GCM (tag 2) and its own key.
    let theirs = SrtpKey::generate(CryptoSuite::AeadAes128Gcm).unwrap();
    let answer = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9000 RTP/SAVP 8\r\na=crypto:{}\r\n",
        CryptoAttr { tag: 2, suite: CryptoSuite::AeadAes128Gcm, key: theirs.clone(), lifetime: None, window_hint: None }
            .to_sdp_value()
    );
    s.answer_from_leg(LegId::B, answer.as_bytes()).unwrap();
    assert_eq!(s.negotiated_suite(LegId::B), None, "nothing applies before the exchange completes");
    let back = String::from_utf8(s.answer_for_leg(LegId::A).unwrap()).unwrap();
    assert_eq!(s.negotiated_suite(LegId::B), Some(CryptoSuite::AeadAes128Gcm));
    assert!(back.contains(&format!("m=audio {} RTP/AVP 8\r\n", s.local_port(LegId::A))), "{back}");
    assert!(!back.contains("crypto"), "{back}");
    let p = s.relay_params(LegId::B);
    assert_eq!(p.rx.as_ref().unwrap().key, theirs, "receive with the trunk's key");
    assert_eq!(p.tx.as_ref().unwrap().key, offered[1].key, "send with the key the edge offered for GCM");
    assert_ne!(p.rx.unwrap().key, p.tx.unwrap().key, "directions have different keys");

    // A second call gets other keys; so does a re-offer on the same call.
    let mut s2 = session(&mgr, policy);
    s2.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
    let other = crypto_of(&s2.offer_for_leg(LegId::B).unwrap());
    s.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
    let reoffer = crypto_of(&s.offer_for_leg(LegId::B).unwrap());
    for (a, (b, c)) in offered.iter().zip(other.iter().zip(reoffer.iter())) {
        assert!(a.key != b.key && a.key != c.key && b.key != c.key);
    }
}

#[test]
fn trunk_to_inside_takes_the_first_acceptable_offered_crypto() {
    let mgr = manager(27100);
    let mut s = mgr
        .new_session(
            LegConfig { media_ip: TRUNK_IP, security: LegSecurity::Srtp(SrtpPolicy::default()) },
            LegConfig { media_ip: INSIDE_IP, security: LegSecurity::Plain },
        )
        .unwrap();
    // The trunk offers an MKI line first (refused), then a usable AES_CM_128 line with lifetime.
    let sdp = String::from_utf8(BARESIP_OFFER.to_vec()).unwrap();
    let k = "6oEkqkP7pJ8yUeuVMOFBt7S4PBFobggw2kUvTQXh";
    let sdp = sdp.replace(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80",
        &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80"),
    );
    let sdp = sdp.replace(&format!("inline:{k}\r\n"), &format!("inline:{k}|2^20\r\n"));
    s.offer_from_leg(LegId::A, sdp.as_bytes()).unwrap();
    let inside = String::from_utf8(s.offer_for_leg(LegId::B).unwrap()).unwrap();
    assert!(inside.contains("RTP/AVP 0 101") && !inside.contains("inline:"), "{inside}");
    s.answer_from_leg(
        LegId::B,
        b"v=0\r\no=p 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0\r\n",
    )
    .unwrap();
    let answer = s.answer_for_leg(LegId::A).unwrap();
    let ours = crypto_of(&answer);
    assert_eq!(ours.len(), 1);
    assert_eq!((ours[0].tag, ours[0].suite), (1, CryptoSuite::AesCm128HmacSha1_80));
    let rx = s.relay_params(LegId::A).rx.unwrap();
    assert_eq!(rx.lifetime, Some(1 << 20), "the peer's lifetime is honoured");
    assert_ne!(rx.key, ours[0].key);
}

#[test]
fn answers_without_acceptable_crypto_are_488_with_the_reason() {
    let mgr = manager(27200);
    let cases: Vec<(String, &str)> = vec![
        ("m=audio 9000 RTP/AVP 0\r\n".into(), "not RTP/SAVP"),
        ("m=audio 9000 RTP/SAVP 0\r\n".into(), "no a=crypto line"),
        (
            "m=audio 9000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
                .into(),
            "MKI",
        ),
        (
            "m=audio 9000 RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
                .into(),
            "tag 3 with AES_CM_128_HMAC_SHA1_80 was not offered",
        ),
        (
            "m=audio 9000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^50\r\n"
                .into(),
            "lifetime",
        ),
    ];
    for (m, why) in cases {
        let mut s = session(&mgr, SrtpPolicy::default());
        s.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
        s.offer_for_leg(LegId::B).unwrap();
        let body = format!("v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{m}");
        let err = s.answer_from_leg(LegId::B, body.as_bytes()).unwrap_err();
        assert!(matches!(err, MediaError::NoAcceptableCrypto { leg: LegId::B, .. }), "{err:?}");
        assert_eq!(err.sip_status(), 488);
        assert!(err.to_string().contains(why), "{err} should say {why}");
        assert!(!err.to_string().contains("WVNfX19"), "no key in the message: {err}");
    }
    // A rejected stream and SRTP on the plain leg are 488 too.
    let mut s = session(&mgr, SrtpPolicy::default());
    s.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
    s.offer_for_leg(LegId::B).unwrap();
    let err = s.answer_from_leg(LegId::B, b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/SAVP 0\r\n").unwrap_err();
    assert!(matches!(err, MediaError::StreamRejected { leg: LegId::B }) && err.sip_status() == 488);
    let mut s = session(&mgr, SrtpPolicy::default());
    let err = s.offer_from_leg(LegId::A, BARESIP_OFFER).unwrap_err();
    assert!(matches!(err, MediaError::UnexpectedSrtp { leg: LegId::A, .. }) && err.sip_status() == 488);
    // Out-of-order calls are state errors, not panics.
    assert!(matches!(s.answer_for_leg(LegId::A), Err(MediaError::State { .. })));
    assert!(matches!(s.offer_for_leg(LegId::A), Err(MediaError::State { .. })));
}

#[test]
fn policies_refuse_suites_the_relay_cannot_run() {
    for s in [CryptoSuite::AesCm128HmacSha1_32, CryptoSuite::Aes256CmHmacSha1_80, CryptoSuite::AeadAes256Gcm] {
        let e = SrtpPolicy::new(&[s]).unwrap_err();
        assert!(e.to_string().contains(s.name()), "{e}");
    }
    assert_eq!(SrtpPolicy::new(&[]).unwrap().suites(), [CryptoSuite::AesCm128HmacSha1_80]);
    // …but such suites parse, so a peer offering them is understood (and skipped).
    let k = SrtpKey::generate(CryptoSuite::AeadAes256Gcm).unwrap();
    let line = format!("4 AEAD_AES_256_GCM inline:{}", {
        let a = CryptoAttr { tag: 4, suite: CryptoSuite::AeadAes256Gcm, key: k, lifetime: None, window_hint: None };
        a.to_sdp_value().split("inline:").nth(1).unwrap().to_string()
    });
    assert_eq!(CryptoAttr::parse(&line).unwrap().suite, CryptoSuite::AeadAes256Gcm);
    assert_eq!(
        CryptoAttr::parse("4 AEAD_AES_256_GCM inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
        Err(CryptoError::KeyLength { suite: "AEAD_AES_256_GCM", want: 44, got: 30 })
    );
}

#[test]
fn keys_never_show_in_debug_output() {
    let mgr = manager(27300);
    let mut s = session(&mgr, SrtpPolicy::default());
    s.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
    let offer = s.offer_for_leg(LegId::B).unwrap();
    let parsed = Sdp::parse(&offer).unwrap();
    let dbg = format!("{s:?} {:?} {parsed:?} {:?}", s.relay_params(LegId::B), parsed.media);
    for c in crypto_of(&offer) {
        let b64 = c.to_sdp_value().split("inline:").nth(1).unwrap().to_string();
        assert!(!dbg.contains(&b64), "key in Debug output");
        assert!(!dbg.contains(&format!("{:?}", c.key.key())), "key bytes in Debug output");
    }
    assert!(dbg.contains("***"));
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]=[ -~]{0,30}".prop_filter("not m=", |s| !s.starts_with("m=") && !s.starts_with("v=")),
        (
            prop::sample::select(vec!["audio", "video", "image"]),
            0u16..,
            prop::sample::select(vec!["RTP/AVP", "RTP/SAVP", "udptl"]),
            "[0-9 ]{0,12}"
        )
            .prop_map(|(m, p, proto, f)| format!("m={m} {p} {proto} {f}")),
    ]
}

proptest! {
    #[test]
    fn any_parsed_body_round_trips(lines in prop::collection::vec(line_strategy(), 0..16)) {
        let body = format!("v=0\r\n{}", lines.iter().map(|l| format!("{l}\r\n")).collect::<String>());
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(&Sdp::parse(&sdp.to_bytes()).unwrap(), &sdp);
        if let Ok(i) = sdp.relayed_audio() {
            let out = sdp.rewrite(TRUNK_IP, i, 30000, true, &[]);
            prop_assert!(!out.to_string().contains("a=crypto"));
            prop_assert_eq!(Sdp::parse(&out.to_bytes()).unwrap(), out);
        }
    }
}

#[test]
fn baresip_answer_is_accepted_on_the_trunk_leg() {
    let sdp = Sdp::parse(BARESIP_ANSWER).unwrap();
    assert_eq!(sdp.to_bytes(), BARESIP_ANSWER);
    let mgr = manager(27400);
    let mut s = session(&mgr, SrtpPolicy::default());
    s.offer_from_leg(LegId::A, PBX_OFFER).unwrap();
    s.offer_for_leg(LegId::B).unwrap();
    s.answer_from_leg(LegId::B, BARESIP_ANSWER).unwrap();
    s.answer_for_leg(LegId::A).unwrap();
    assert_eq!(s.negotiated_suite(LegId::B), Some(CryptoSuite::AesCm128HmacSha1_80));
    let p = s.relay_params(LegId::B);
    assert_eq!(p.peer_rtp, Some("127.0.0.1:20874".parse().unwrap()));
    assert_eq!(p.peer_rtcp, Some("127.0.0.1:20875".parse().unwrap()));
    assert_eq!(p.rx.unwrap().key, sdp.media[0].crypto()[0].clone().unwrap().key);
}

#[test]
fn direction_of_the_completed_answer_tells_the_edge_about_hold() {
    let mgr = manager(27500);
    let mut s = session(&mgr, SrtpPolicy::default());
    assert_eq!(s.direction(), Direction::SendRecv);
    // Hold from the PBX: it offers sendonly, the trunk answers recvonly.
    s.offer_from_leg(LegId::A, &[PBX_OFFER, b"a=sendonly\r\n"].concat()).unwrap();
    let offer = s.offer_for_leg(LegId::B).unwrap();
    assert_eq!(Sdp::parse(&offer).unwrap().direction(0), Direction::SendOnly, "direction passes through");
    let tag1 = crypto_of(&offer).remove(0);
    let answer = String::from_utf8(BARESIP_ANSWER.to_vec())
        .unwrap()
        .replace("a=sendrecv", "a=recvonly")
        .replace("a=crypto:1 AES_CM_128_HMAC_SHA1_80", &format!("a=crypto:{} AES_CM_128_HMAC_SHA1_80", tag1.tag));
    s.answer_from_leg(LegId::B, answer.as_bytes()).unwrap();
    let back = s.answer_for_leg(LegId::A).unwrap();
    assert_eq!(Sdp::parse(&back).unwrap().direction(0), Direction::RecvOnly);
    assert_eq!(s.direction(), Direction::RecvOnly);
    // Session-level inactive applies to streams without their own attribute.
    let both =
        Sdp::parse(b"v=0\r\na=inactive\r\nm=audio 4 RTP/AVP 0\r\nm=audio 6 RTP/AVP 0\r\na=sendonly\r\n").unwrap();
    assert_eq!((both.direction(0), both.direction(1)), (Direction::Inactive, Direction::SendOnly));
}
