//! RFC 3261 §17 transactions driven through the [`TransactionTable`] on a simulated clock: one
//! `Instant` taken at the start, durations added to it, `handle_timeout` called at exactly the
//! deadlines `poll_timeout` returns. The peer is simulated by parsing what the table transmits
//! and answering with `response_to`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use trunkgate_sip::transaction::{
    response_for, ClientInviteState, Event, Incoming, Reliability, ServerInviteState, TableEvent, Timer, TimerConfig,
    Transaction, TransactionError, TransactionKey, TransactionTable, Transmit,
};
use trunkgate_sip::{parse_datagram, response_to, HeaderName, Limits, Method, OwnedMessage};

type Table = TransactionTable<&'static str>;
const UDP: Reliability = Reliability::Unreliable;
const TLS: Reliability = Reliability::Reliable;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn table() -> Table {
    TransactionTable::new(TimerConfig::default(), 64)
}

fn request(method: Method, branch: &str) -> OwnedMessage {
    OwnedMessage::request(method.clone(), "sip:+13175551212@lb01.voice.example.com;transport=tls")
        .with("Via", format!("SIP/2.0/UDP edge.example.net:5060;branch={branch}"))
        .with("Route", "<sip:proxy1.example.com;lr>")
        .with("Max-Forwards", "70")
        .with("From", "<sip:+15550001@edge.example.net>;tag=edge1")
        .with("To", "<sip:+13175551212@lb01.voice.example.com>")
        .with("Call-ID", format!("call-{branch}"))
        .with("CSeq", format!("1 {}", method.as_str()))
}

/// A request as a peer would send it to us.
fn incoming(method: &str, via: &str, to: &str, cseq: u32) -> Vec<u8> {
    let cseq_method = if method == "ACK" { "ACK" } else { method };
    format!(
        "{method} sip:edge@edge.example.net SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
         From: <sip:carrier@trunk.example.com>;tag=c1\r\nTo: {to}\r\nCall-ID: in-1@trunk\r\n\
         CSeq: {cseq} {cseq_method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

const PEER_VIA: &str = "SIP/2.0/UDP trunk.example.com:5060;branch=z9hG4bKpeer1";

/// The peer's response to a request we transmitted.
fn answer(sent: &[u8], status: u16, tag: Option<&str>) -> Vec<u8> {
    let req = parse_datagram(sent, &Limits::default()).unwrap();
    response_to(&req, status, "Reason", tag).to_bytes()
}

fn feed(t: &mut Table, now: Instant, bytes: &[u8], rel: Reliability) -> Incoming {
    t.handle_message(now, &parse_datagram(bytes, &Limits::default()).unwrap(), rel, "peer").unwrap()
}

fn transmits(t: &mut Table) -> Vec<Transmit<&'static str>> {
    std::iter::from_fn(|| t.poll_transmit()).collect()
}

fn events(t: &mut Table) -> Vec<TableEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

fn start_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.split(|&b| b == b'\r').next().unwrap()).into_owned()
}

/// Runs the clock from deadline to deadline up to `until`; returns when each transmit went out
/// (as an offset from `t0`) with its start line.
fn run(t: &mut Table, t0: Instant, until: Instant) -> Vec<(u128, String)> {
    let mut out = Vec::new();
    while let Some(at) = t.poll_timeout().filter(|&at| at <= until) {
        t.handle_timeout(at);
        for tx in transmits(t) {
            out.push(((at - t0).as_millis(), start_line(&tx.bytes)));
        }
    }
    out
}

fn offsets(v: &[(u128, String)]) -> Vec<u128> {
    v.iter().map(|(at, _)| *at).collect()
}

#[test]
fn non_invite_udp_timer_e_doubles_to_t2_then_timer_f() {
    let t0 = Instant::now();
    let mut t = table();
    let key = t.start_client(t0, request(Method::Options, "z9hG4bKe1"), UDP, "peer").unwrap();
    let first = transmits(&mut t);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].remote, "peer");
    assert_eq!(first[0].key, key);
    let sent = run(&mut t, t0, t0 + Duration::from_secs(40));
    // E: T1, 2T1, 4T1, then capped at T2 = 4 s; F = 64*T1 = 32 s.
    assert_eq!(offsets(&sent), vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert!(sent.iter().all(|(_, l)| l.starts_with("OPTIONS ")));
    let ev: Vec<Event> = events(&mut t).into_iter().map(|e| e.event).collect();
    assert_eq!(ev, vec![Event::Timeout(Timer::F), Event::Terminated]);
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn invite_udp_timer_a_doubles_without_cap_then_timer_b() {
    let t0 = Instant::now();
    let mut t = table();
    t.start_client(t0, request(Method::Invite, "z9hG4bKa1"), UDP, "peer").unwrap();
    assert_eq!(transmits(&mut t).len(), 1);
    let sent = run(&mut t, t0, t0 + Duration::from_secs(40));
    assert_eq!(offsets(&sent), vec![500, 1500, 3500, 7500, 15500, 31500]);
    let ev: Vec<Event> = events(&mut t).into_iter().map(|e| e.event).collect();
    assert_eq!(ev, vec![Event::Timeout(Timer::B), Event::Terminated]);
    assert!(t.is_empty());
}

#[test]
fn configured_timer_values_drive_the_schedule() {
    let cfg = TimerConfig::new(ms(100), ms(400), ms(1000)).unwrap();
    let t0 = Instant::now();
    let mut t: Table = TransactionTable::new(cfg, 8);
    t.start_client(t0, request(Method::Register, "z9hG4bKcfg"), UDP, "peer").unwrap();
    transmits(&mut t);
    let sent = run(&mut t, t0, t0 + Duration::from_secs(10));
    assert_eq!(&offsets(&sent)[..5], &[100, 300, 700, 1100, 1500]);
    assert_eq!(sent.len(), 17, "then E every 400 ms up to 6.3 s, F at 6.4 s: {sent:?}");
    assert_eq!(sent.last().map(|(at, _)| *at), Some(6300));
    assert_eq!(events(&mut t)[0].event, Event::Timeout(Timer::F));
}

#[test]
fn timer_d_absorbs_retransmitted_final_and_resends_the_ack() {
    let t0 = Instant::now();
    let mut t = table();
    let key = t.start_client(t0, request(Method::Invite, "z9hG4bKd1"), UDP, "peer").unwrap();
    let invite = transmits(&mut t).remove(0).bytes;
    assert_eq!(feed(&mut t, t0 + ms(80), &answer(&invite, 180, Some("uas7")), UDP), Incoming::Matched(key.clone()));
    let busy = answer(&invite, 486, Some("uas7"));
    assert_eq!(feed(&mut t, t0 + ms(900), &busy, UDP), Incoming::Matched(key.clone()));
    let ack = transmits(&mut t);
    assert_eq!(ack.len(), 1);
    let m = parse_datagram(&ack[0].bytes, &Limits::default()).unwrap();
    assert_eq!(m.method(), Some(&Method::Ack));
    assert_eq!(m.request_uri(), Some(&b"sip:+13175551212@lb01.voice.example.com;transport=tls"[..]));
    assert_eq!(m.header(HeaderName::Via), Some(&b"SIP/2.0/UDP edge.example.net:5060;branch=z9hG4bKd1"[..]));
    assert_eq!(m.header(HeaderName::CSeq), Some(&b"1 ACK"[..]));
    assert_eq!(m.header(HeaderName::To), Some(&b"<sip:+13175551212@lb01.voice.example.com>;tag=uas7"[..]));
    assert_eq!(m.header(HeaderName::Route), Some(&b"<sip:proxy1.example.com;lr>"[..]));
    let statuses: Vec<Option<u16>> = events(&mut t).iter().map(|e| e.event.status()).collect();
    assert_eq!(statuses, vec![Some(180), Some(486)]);
    assert_eq!(t.get(&key).unwrap().state_name(), "Completed");
    assert_eq!(t.poll_timeout(), Some(t0 + ms(900) + Duration::from_secs(32)), "timer D = 32 s");

    // The 486 again (our ACK was lost): the same ACK again, nothing for the TU.
    assert_eq!(feed(&mut t, t0 + ms(1900), &busy, UDP), Incoming::Matched(key.clone()));
    assert_eq!(transmits(&mut t).iter().map(|x| x.bytes.clone()).collect::<Vec<_>>(), vec![ack[0].bytes.clone()]);
    assert!(events(&mut t).is_empty());

    // Timer D ends it; a 486 after that is stray.
    t.handle_timeout(t0 + ms(900) + Duration::from_secs(32));
    assert_eq!(events(&mut t).into_iter().map(|e| e.event).collect::<Vec<_>>(), vec![Event::Terminated]);
    assert_eq!(feed(&mut t, t0 + Duration::from_secs(40), &busy, UDP), Incoming::StrayResponse);
    assert!(transmits(&mut t).is_empty());
}

#[test]
fn reliable_transports_never_retransmit_and_zero_the_wait_timers() {
    let t0 = Instant::now();
    let mut t = table();
    // INVITE client: only timer B; the non-2xx final is ACKed and ends the transaction (D = 0).
    let inv = t.start_client(t0, request(Method::Invite, "z9hG4bKr1"), TLS, "tls-conn-3").unwrap();
    let invite = transmits(&mut t).remove(0).bytes;
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    assert!(run(&mut t, t0, t0 + Duration::from_secs(31)).is_empty());
    feed(&mut t, t0 + Duration::from_secs(2), &answer(&invite, 503, Some("x")), TLS);
    let sent = transmits(&mut t);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].remote, "tls-conn-3");
    assert!(start_line(&sent[0].bytes).starts_with("ACK "));
    assert!(t.get(&inv).is_none(), "terminated at once");

    // Non-INVITE client: only F; the final ends it (K = 0).
    let opt = t.start_client(t0, request(Method::Options, "z9hG4bKr2"), TLS, "tls-conn-3").unwrap();
    let options = transmits(&mut t).remove(0).bytes;
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    assert!(run(&mut t, t0, t0 + Duration::from_secs(31)).is_empty());
    feed(&mut t, t0 + Duration::from_secs(31), &answer(&options, 200, Some("y")), TLS);
    assert!(t.get(&opt).is_none());

    // Servers: no G, J = 0, I = 0.
    let created = feed(&mut t, t0, &incoming("BYE", PEER_VIA, "<sip:edge@edge.example.net>;tag=e", 2), TLS);
    let Incoming::Created { key: bye, .. } = created else { panic!("{created:?}") };
    let bye_req = match t.get(&bye).unwrap() {
        Transaction::ServerNonInvite(s) => s.request().clone(),
        other => panic!("{other:?}"),
    };
    t.send_response(t0, &bye, response_for(&bye_req, 200, "OK", None)).unwrap();
    assert!(t.get(&bye).is_none(), "J = 0 on reliable transports");
    let Incoming::Created { key: sinv, .. } =
        feed(&mut t, t0, &incoming("INVITE", PEER_VIA, "<sip:edge@edge.example.net>", 1), TLS)
    else {
        panic!()
    };
    let sinv_req = match t.get(&sinv).unwrap() {
        Transaction::ServerInvite(s) => s.request().clone(),
        other => panic!("{other:?}"),
    };
    t.send_response(t0, &sinv, response_for(&sinv_req, 480, "Unavailable", Some("e"))).unwrap();
    assert_eq!(t.get(&sinv).unwrap().next_timer(), Some((Timer::H, t0 + Duration::from_secs(32))), "no timer G");
    transmits(&mut t);
    feed(&mut t, t0 + ms(50), &incoming("ACK", PEER_VIA, "<sip:edge@edge.example.net>;tag=e", 1), TLS);
    assert!(t.get(&sinv).is_none(), "I = 0 on reliable transports");
    assert!(transmits(&mut t).is_empty());
    assert!(t.is_empty());
}

#[test]
fn late_responses_after_termination_are_stray() {
    let t0 = Instant::now();
    let mut t = table();
    let key = t.start_client(t0, request(Method::Options, "z9hG4bKlate"), UDP, "peer").unwrap();
    let sent = transmits(&mut t).remove(0).bytes;
    let ok = answer(&sent, 200, Some("p"));
    assert_eq!(feed(&mut t, t0 + ms(30), &ok, UDP), Incoming::Matched(key.clone()));
    // In Completed (timer K = T4) the retransmitted 200 is absorbed.
    assert_eq!(feed(&mut t, t0 + ms(530), &ok, UDP), Incoming::Matched(key.clone()));
    let ev = events(&mut t);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event.status(), Some(200));
    assert_eq!(t.poll_timeout(), Some(t0 + ms(5030)));
    t.handle_timeout(t0 + ms(5030));
    assert_eq!(events(&mut t)[0].event, Event::Terminated);
    assert_eq!(feed(&mut t, t0 + ms(6000), &ok, UDP), Incoming::StrayResponse);
    assert!(events(&mut t).is_empty());

    // A timed-out INVITE: the 200 that finally comes is stray too (the dialog layer decides).
    let inv = t.start_client(t0, request(Method::Invite, "z9hG4bKlate2"), UDP, "peer").unwrap();
    let invite = transmits(&mut t).remove(0).bytes;
    run(&mut t, t0, t0 + Duration::from_secs(32));
    assert!(t.get(&inv).is_none());
    assert_eq!(
        feed(&mut t, t0 + Duration::from_secs(33), &answer(&invite, 200, Some("u")), UDP),
        Incoming::StrayResponse
    );
}

#[test]
fn duplicate_requests_are_absorbed_and_answered_with_the_last_response() {
    let t0 = Instant::now();
    let mut t = table();
    let options = incoming("OPTIONS", PEER_VIA, "<sip:edge@edge.example.net>", 9);
    let Incoming::Created { key, cancels: None } = feed(&mut t, t0, &options, UDP) else { panic!() };
    assert_eq!(feed(&mut t, t0 + ms(500), &options, UDP), Incoming::Matched(key.clone()));
    assert!(transmits(&mut t).is_empty(), "nothing to resend before the TU answers");
    let ev = events(&mut t);
    assert_eq!(ev.len(), 1, "one Request event for two copies");
    let Event::Request(req) = &ev[0].event else { panic!("{ev:?}") };
    t.send_response(t0 + ms(600), &key, response_for(req, 200, "OK", Some("e1"))).unwrap();
    let ok = transmits(&mut t).remove(0);
    assert_eq!(ok.remote, "peer");
    assert!(start_line(&ok.bytes).starts_with("SIP/2.0 200"));
    assert_eq!(feed(&mut t, t0 + ms(1500), &options, UDP), Incoming::Matched(key.clone()));
    assert_eq!(transmits(&mut t).remove(0).bytes, ok.bytes);
    assert!(events(&mut t).is_empty());
    assert_eq!(t.poll_timeout(), Some(t0 + ms(600) + Duration::from_secs(32)), "timer J = 64*T1");

    // INVITE: the retransmission gets the last provisional response.
    let invite = incoming("INVITE", "SIP/2.0/UDP trunk.example.com;branch=z9hG4bKdupinv", "<sip:edge@x>", 1);
    let Incoming::Created { key: ikey, .. } = feed(&mut t, t0, &invite, UDP) else { panic!() };
    t.send_trying(t0, &ikey).unwrap();
    let trying = transmits(&mut t).remove(0).bytes;
    assert!(start_line(&trying).starts_with("SIP/2.0 100"));
    assert_eq!(feed(&mut t, t0 + ms(500), &invite, UDP), Incoming::Matched(ikey));
    assert_eq!(transmits(&mut t).remove(0).bytes, trying);
}

#[test]
fn timer_g_retransmits_the_final_response_and_h_times_out_without_ack() {
    let t0 = Instant::now();
    let mut t = table();
    let invite = incoming("INVITE", PEER_VIA, "<sip:edge@edge.example.net>", 1);
    let Incoming::Created { key, .. } = feed(&mut t, t0, &invite, UDP) else { panic!() };
    let Event::Request(req) = events(&mut t).remove(0).event else { panic!() };
    t.send_response(t0, &key, response_for(&req, 404, "Not Found", Some("e"))).unwrap();
    transmits(&mut t);
    let sent = run(&mut t, t0, t0 + Duration::from_secs(40));
    assert_eq!(offsets(&sent), vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert!(sent.iter().all(|(_, l)| l.starts_with("SIP/2.0 404")));
    let ev: Vec<Event> = events(&mut t).into_iter().map(|e| e.event).collect();
    assert_eq!(ev, vec![Event::Timeout(Timer::H), Event::Terminated]);
}

#[test]
fn ack_for_non_2xx_matches_the_invite_server_transaction() {
    let t0 = Instant::now();
    let mut t = table();
    let Incoming::Created { key, .. } =
        feed(&mut t, t0, &incoming("INVITE", PEER_VIA, "<sip:edge@edge.example.net>", 4), UDP)
    else {
        panic!()
    };
    let Event::Request(req) = events(&mut t).remove(0).event else { panic!() };
    t.send_response(t0, &key, response_for(&req, 486, "Busy Here", Some("e4"))).unwrap();
    transmits(&mut t);
    let ack = incoming("ACK", PEER_VIA, "<sip:edge@edge.example.net>;tag=e4", 4);
    assert_eq!(TransactionKey::for_request(&parse_datagram(&ack, &Limits::default()).unwrap()).unwrap(), key);
    assert_eq!(feed(&mut t, t0 + ms(40), &ack, UDP), Incoming::Matched(key.clone()));
    let Some(Transaction::ServerInvite(s)) = t.get(&key) else { panic!() };
    assert_eq!(s.state(), ServerInviteState::Confirmed);
    assert!(events(&mut t).is_empty(), "the ACK of a non-2xx is absorbed");
    assert_eq!(t.poll_timeout(), Some(t0 + ms(40) + Duration::from_secs(5)), "timer I = T4");
    assert!(run(&mut t, t0, t0 + Duration::from_secs(10)).is_empty(), "no G after the ACK");
    assert!(t.is_empty());

    // An ACK with another branch (the ACK for a 2xx) belongs to the dialog layer.
    let other = incoming("ACK", "SIP/2.0/UDP trunk.example.com:5060;branch=z9hG4bKnew", "<sip:e@x>;tag=e4", 4);
    assert_eq!(feed(&mut t, t0, &other, UDP), Incoming::StrayAck);
}

#[test]
fn rfc6026_accepted_states() {
    let t0 = Instant::now();
    let mut t = table();
    // Client: every 2xx goes to the TU until timer M; none is ACKed by the transaction.
    let key = t.start_client(t0, request(Method::Invite, "z9hG4bKacc"), UDP, "peer").unwrap();
    let invite = transmits(&mut t).remove(0).bytes;
    let ok = answer(&invite, 200, Some("u1"));
    feed(&mut t, t0 + ms(100), &ok, UDP);
    feed(&mut t, t0 + ms(600), &ok, UDP);
    let Some(Transaction::ClientInvite(c)) = t.get(&key) else { panic!() };
    assert_eq!(c.state(), ClientInviteState::Accepted);
    let ev = events(&mut t);
    assert_eq!(ev.iter().map(|e| e.event.status()).collect::<Vec<_>>(), vec![Some(200), Some(200)]);
    assert!(transmits(&mut t).is_empty(), "no retransmission and no ACK from the transaction");
    t.handle_timeout(t0 + ms(100) + Duration::from_secs(32));
    assert!(t.get(&key).is_none(), "timer M");
    assert_eq!(events(&mut t).remove(0).event, Event::Terminated);

    // Server: INVITE retransmissions absorbed, a same-branch ACK goes to the TU, L ends it.
    let invite_in = incoming("INVITE", PEER_VIA, "<sip:edge@edge.example.net>", 1);
    let Incoming::Created { key: s, .. } = feed(&mut t, t0, &invite_in, UDP) else { panic!() };
    let Event::Request(req) = events(&mut t).remove(0).event else { panic!() };
    t.send_response(t0, &s, response_for(&req, 200, "OK", Some("e9"))).unwrap();
    assert_eq!(transmits(&mut t).len(), 1);
    feed(&mut t, t0 + ms(500), &invite_in, UDP);
    assert!(transmits(&mut t).is_empty());
    feed(&mut t, t0 + ms(600), &incoming("ACK", PEER_VIA, "<sip:edge@edge.example.net>;tag=e9", 1), UDP);
    assert!(matches!(events(&mut t)[..], [TableEvent { event: Event::Ack(_), .. }]));
    t.handle_timeout(t0 + Duration::from_secs(32));
    assert!(t.is_empty(), "timer L");
}

#[test]
fn cancel_finds_its_invite_server_transaction() {
    let t0 = Instant::now();
    let mut t = table();
    let to = "<sip:edge@edge.example.net>";
    let Incoming::Created { key: inv, .. } = feed(&mut t, t0, &incoming("INVITE", PEER_VIA, to, 7), UDP) else {
        panic!()
    };
    t.send_trying(t0, &inv).unwrap();
    let created = feed(&mut t, t0 + ms(300), &incoming("CANCEL", PEER_VIA, to, 7), UDP);
    let Incoming::Created { key: cancel, cancels } = created else { panic!() };
    assert_ne!(cancel, inv, "CANCEL is its own transaction");
    assert_eq!(cancels, Some(inv.clone()));
    assert_eq!(t.cancel_target(&cancel), Some(inv.clone()));
    transmits(&mut t);
    assert_eq!(t.answer_cancel(t0 + ms(310), &cancel, Some("e7")).unwrap(), Some(inv.clone()));
    let sent: Vec<String> = transmits(&mut t).iter().map(|x| start_line(&x.bytes)).collect();
    assert_eq!(sent, vec!["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]);
    // The caller ACKs the 487 on the INVITE's branch.
    feed(&mut t, t0 + ms(400), &incoming("ACK", PEER_VIA, "<sip:edge@edge.example.net>;tag=e7", 7), UDP);
    let Some(Transaction::ServerInvite(s)) = t.get(&inv) else { panic!() };
    assert_eq!(s.state(), ServerInviteState::Confirmed);

    // A CANCEL for nothing: 481.
    let via = "SIP/2.0/UDP trunk.example.com:5060;branch=z9hG4bKnothing";
    let Incoming::Created { key: lone, cancels: None } = feed(&mut t, t0, &incoming("CANCEL", via, to, 1), UDP) else {
        panic!()
    };
    assert_eq!(t.answer_cancel(t0, &lone, None).unwrap(), None);
    assert_eq!(start_line(&transmits(&mut t).remove(0).bytes), "SIP/2.0 481 Call/Transaction Does Not Exist");
}

#[test]
fn client_cancel_waits_for_a_provisional_response() {
    let t0 = Instant::now();
    let mut t = table();
    let inv = t.start_client(t0, request(Method::Invite, "z9hG4bKcx"), UDP, "peer").unwrap();
    let invite = transmits(&mut t).remove(0).bytes;
    let cancel = t.cancel(t0 + ms(100), &inv).unwrap();
    assert_eq!(cancel, TransactionKey::Client { branch: Box::from(&b"z9hg4bkcx"[..]), method: Method::Cancel });
    assert!(transmits(&mut t).is_empty(), "no CANCEL before a provisional response");
    assert!(t.get(&cancel).is_none());
    feed(&mut t, t0 + ms(200), &answer(&invite, 183, Some("u")), UDP);
    let sent = transmits(&mut t);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key, cancel);
    let m = parse_datagram(&sent[0].bytes, &Limits::default()).unwrap();
    assert_eq!(m.method(), Some(&Method::Cancel));
    assert_eq!(m.header(HeaderName::CSeq), Some(&b"1 CANCEL"[..]));
    assert_eq!(m.header(HeaderName::Via), Some(&b"SIP/2.0/UDP edge.example.net:5060;branch=z9hG4bKcx"[..]));
    assert_eq!(m.header(HeaderName::To), Some(&b"<sip:+13175551212@lb01.voice.example.com>"[..]));
    assert_eq!(m.header(HeaderName::Route), Some(&b"<sip:proxy1.example.com;lr>"[..]));
    // The CANCEL's 200 and the INVITE's 487 each reach their own transaction.
    let cancel_bytes = sent[0].bytes.clone();
    assert_eq!(feed(&mut t, t0 + ms(250), &answer(&cancel_bytes, 200, Some("u")), UDP), Incoming::Matched(cancel));
    assert_eq!(feed(&mut t, t0 + ms(260), &answer(&invite, 487, Some("u")), UDP), Incoming::Matched(inv.clone()));
    assert!(start_line(&transmits(&mut t).remove(0).bytes).starts_with("ACK "));
    // Nothing left to cancel once the INVITE completed.
    assert_eq!(
        t.cancel(t0 + ms(300), &inv),
        Err(TransactionError::InvalidState { state: "Completed", action: "CANCEL" })
    );
}

#[test]
fn rfc2543_peers_are_matched_on_dialog_fields() {
    let t0 = Instant::now();
    let mut t = table();
    let via = "SIP/2.0/UDP old-pbx.example.com:5060"; // no branch at all
    let to = "<sip:edge@edge.example.net>";
    let invite = incoming("INVITE", via, to, 3);
    let Incoming::Created { key, .. } = feed(&mut t, t0, &invite, UDP) else { panic!() };
    assert!(matches!(key, TransactionKey::Rfc2543 { cseq: 3, .. }));
    assert_eq!(feed(&mut t, t0 + ms(500), &invite, UDP), Incoming::Matched(key.clone()));
    let Incoming::Created { cancels, .. } = feed(&mut t, t0 + ms(600), &incoming("CANCEL", via, to, 3), UDP) else {
        panic!()
    };
    assert_eq!(cancels, Some(key.clone()));
    let Event::Request(req) = events(&mut t).remove(0).event else { panic!() };
    t.send_response(t0, &key, response_for(&req, 603, "Decline", Some("old9"))).unwrap();
    // An ACK with the wrong To tag is not ours; with the tag we sent, it confirms.
    let wrong = incoming("ACK", via, "<sip:edge@edge.example.net>;tag=other", 3);
    assert_eq!(feed(&mut t, t0 + ms(700), &wrong, UDP), Incoming::StrayAck);
    let right = incoming("ACK", via, "<sip:edge@edge.example.net>;tag=old9", 3);
    assert_eq!(feed(&mut t, t0 + ms(800), &right, UDP), Incoming::Matched(key.clone()));
    assert_eq!(t.get(&key).unwrap().state_name(), "Confirmed");
    // Another CSeq is another transaction.
    assert!(matches!(feed(&mut t, t0, &incoming("INVITE", via, to, 4), UDP), Incoming::Created { .. }));
}

#[test]
fn table_is_bounded_with_a_typed_error() {
    let t0 = Instant::now();
    let mut t: Table = TransactionTable::new(TimerConfig::default(), 1);
    let a = incoming("OPTIONS", "SIP/2.0/UDP h;branch=z9hG4bKfull1", "<sip:e@x>", 1);
    let b = incoming("OPTIONS", "SIP/2.0/UDP h;branch=z9hG4bKfull2", "<sip:e@x>", 1);
    let Incoming::Created { key, .. } = feed(&mut t, t0, &a, TLS) else { panic!() };
    let err = t.handle_message(t0, &parse_datagram(&b, &Limits::default()).unwrap(), TLS, "peer").unwrap_err();
    assert_eq!(err, TransactionError::TableFull { capacity: 1 });
    assert_eq!(
        t.start_client(t0, request(Method::Options, "z9hG4bKfull3"), TLS, "peer"),
        Err(TransactionError::TableFull { capacity: 1 })
    );
    // The retransmission of a live one still matches.
    assert_eq!(feed(&mut t, t0, &a, TLS), Incoming::Matched(key.clone()));
    let Event::Request(req) = events(&mut t).remove(0).event else { panic!() };
    t.send_response(t0, &key, response_for(&req, 200, "OK", None)).unwrap();
    assert!(matches!(feed(&mut t, t0, &b, TLS), Incoming::Created { .. }), "room again after termination");
}

#[test]
fn transport_error_terminates_and_informs_the_tu() {
    let t0 = Instant::now();
    let mut t = table();
    let key = t.start_client(t0, request(Method::Invite, "z9hG4bKte"), TLS, "gone").unwrap();
    transmits(&mut t);
    t.handle_transport_error(t0 + ms(5), &key).unwrap();
    let ev: Vec<Event> = events(&mut t).into_iter().map(|e| e.event).collect();
    assert_eq!(ev, vec![Event::TransportError, Event::Terminated]);
    assert!(t.is_empty());
    assert_eq!(t.handle_transport_error(t0, &key), Err(TransactionError::NoSuchTransaction));
}

#[test]
fn unkeyable_and_misused_inputs_are_typed_errors() {
    let t0 = Instant::now();
    let mut t = table();
    let no_via = b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let m = parse_datagram(no_via, &Limits::default()).unwrap();
    assert_eq!(t.handle_message(t0, &m, UDP, "p"), Err(TransactionError::MissingHeader("Via")));
    let ack = OwnedMessage::request(Method::Ack, "sip:a@b")
        .with("Via", "SIP/2.0/UDP h;branch=z9hG4bKack")
        .with("CSeq", "1 ACK");
    assert_eq!(t.start_client(t0, ack, UDP, "p"), Err(TransactionError::AckIsNotATransaction));
    let key = t.start_client(t0, request(Method::Options, "z9hG4bKdup"), UDP, "p").unwrap();
    assert_eq!(
        t.start_client(t0, request(Method::Options, "z9hG4bKdup"), UDP, "p"),
        Err(TransactionError::DuplicateKey)
    );
    assert_eq!(t.cancel(t0, &key), Err(TransactionError::NotCancellable));
    let resp = OwnedMessage::response(200, "OK");
    assert_eq!(t.send_response(t0, &key, resp), Err(TransactionError::WrongKind { expected: "server transaction" }));
}

mod properties {
    //! Random input sequences against all four machines on both transports: the invariants
    //! every caller relies on hold whatever the peer and the clock do.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A response from the peer (clients) or from the TU (servers).
        Status(u16),
        /// Advance the clock by this many ms and fire due timers.
        Advance(u64),
        /// A retransmission of the request (servers) or of the last response (clients).
        Retransmit,
        /// An ACK from the peer (INVITE server).
        Ack,
        TransportError,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (100u16..700).prop_map(Op::Status),
            (0u64..20_000).prop_map(Op::Advance),
            Just(Op::Retransmit),
            Just(Op::Ack),
            Just(Op::TransportError),
        ]
    }

    fn machine(kind: usize, rel: Reliability, t0: Instant) -> Transaction {
        let cfg = TimerConfig::default();
        match kind {
            0 => Transaction::client(t0, request(Method::Invite, "z9hG4bKp0"), rel, &cfg).unwrap(),
            1 => Transaction::client(t0, request(Method::Bye, "z9hG4bKp1"), rel, &cfg).unwrap(),
            2 => {
                let raw = incoming("INVITE", PEER_VIA, "<sip:edge@edge.example.net>", 1);
                Transaction::server(&parse_datagram(&raw, &Limits::default()).unwrap(), rel, &cfg).unwrap()
            }
            _ => {
                let raw = incoming("OPTIONS", PEER_VIA, "<sip:edge@edge.example.net>", 1);
                Transaction::server(&parse_datagram(&raw, &Limits::default()).unwrap(), rel, &cfg).unwrap()
            }
        }
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_input_sequence(
            kind in 0usize..4,
            reliable in any::<bool>(),
            ops in prop::collection::vec(op(), 0..40),
        ) {
            let t0 = Instant::now();
            let rel = if reliable { TLS } else { UDP };
            let mut m = machine(kind, rel, t0);
            let mut now = t0;
            let mut terminated = false;
            let mut sent: Vec<Vec<u8>> = std::iter::from_fn(|| m.poll_transmit()).collect();
            let mut last_response: Option<Vec<u8>> = None;
            for op in ops {
                match op {
                    Op::Status(s) => {
                        match &mut m {
                            Transaction::ClientInvite(c) => {
                                let raw = answer(&sent[0], s, Some("t"));
                                c.handle_response(now, &parse_datagram(&raw, &Limits::default()).unwrap()).unwrap();
                                last_response = Some(raw);
                            }
                            Transaction::ClientNonInvite(c) => {
                                let raw = answer(&sent[0], s, Some("t"));
                                c.handle_response(now, &parse_datagram(&raw, &Limits::default()).unwrap()).unwrap();
                                last_response = Some(raw);
                            }
                            Transaction::ServerInvite(srv) => {
                                let r = response_for(srv.request(), s, "R", Some("t"));
                                let res = srv.send_response(now, r);
                                let allowed = res.is_ok() || matches!(res, Err(TransactionError::InvalidState { .. }));
                                prop_assert!(allowed, "only InvalidState may be refused");
                            }
                            Transaction::ServerNonInvite(srv) => {
                                let r = response_for(srv.request(), s, "R", Some("t"));
                                let res = srv.send_response(now, r);
                                let allowed = res.is_ok() || matches!(res, Err(TransactionError::InvalidState { .. }));
                                prop_assert!(allowed, "only InvalidState may be refused");
                            }
                            _ => {}
                        }
                    }
                    Op::Advance(d) => {
                        now += ms(d);
                        m.handle_timeout(now);
                        let out: Vec<Vec<u8>> = std::iter::from_fn(|| m.poll_transmit()).collect();
                        prop_assert!(out.len() <= 1, "one retransmission per timer call");
                        prop_assert!(!reliable || out.is_empty(), "no timer-driven sends on reliable transports");
                        prop_assert!(m.poll_timeout().is_none_or(|at| at > now), "nothing left due at now");
                        sent.extend(out);
                    }
                    Op::Retransmit | Op::Ack => {
                        let method = if matches!(op, Op::Ack) { "ACK" } else { "INVITE" };
                        match &mut m {
                            Transaction::ServerInvite(srv) => {
                                let raw = incoming(method, PEER_VIA, "<sip:edge@edge.example.net>;tag=t", 1);
                                srv.handle_request(now, &parse_datagram(&raw, &Limits::default()).unwrap()).unwrap();
                            }
                            Transaction::ServerNonInvite(srv) => {
                                let raw = incoming("OPTIONS", PEER_VIA, "<sip:edge@edge.example.net>", 1);
                                srv.handle_request(now, &parse_datagram(&raw, &Limits::default()).unwrap()).unwrap();
                            }
                            Transaction::ClientInvite(c) => {
                                if let Some(raw) = &last_response {
                                    c.handle_response(now, &parse_datagram(raw, &Limits::default()).unwrap()).unwrap();
                                }
                            }
                            Transaction::ClientNonInvite(c) => {
                                if let Some(raw) = &last_response {
                                    c.handle_response(now, &parse_datagram(raw, &Limits::default()).unwrap()).unwrap();
                                }
                            }
                            _ => {}
                        }
                    }
                    Op::TransportError => m.handle_transport_error(),
                }
                let out: Vec<Vec<u8>> = std::iter::from_fn(|| m.poll_transmit()).collect();
                let events: Vec<Event> = std::iter::from_fn(|| m.poll_event()).collect();
                if terminated {
                    prop_assert!(out.is_empty() && events.is_empty(), "silent after Terminated: {out:?} {events:?}");
                }
                let ends = events.iter().filter(|e| **e == Event::Terminated).count();
                prop_assert!(ends <= 1);
                if ends == 1 {
                    prop_assert_eq!(events.last(), Some(&Event::Terminated));
                    terminated = true;
                }
                prop_assert_eq!(m.is_terminated(), terminated);
                if terminated {
                    prop_assert_eq!(m.poll_timeout(), None);
                }
                sent.extend(out);
            }
            if kind < 2 {
                let request_line = start_line(&sent[0]);
                let copies = sent.iter().filter(|b| start_line(b) == request_line).count();
                prop_assert!(!reliable || copies == 1, "the request is sent once on reliable transports");
            }
        }
    }
}
