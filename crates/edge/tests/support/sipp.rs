//! sipp for the edge's tests: the inbound-call scenarios' shared pieces (the one INVITE they
//! send — TGRP `TG-1`, an SDES offer —, the answered-call ACK and our BYE, with or without a
//! route set, the far end's BYE answered) and sipp's command line.

/// A sipp scenario named `name` whose steps are `body` (sipp XML).
pub fn scenario(name: &str, body: &str) -> String {
    format!("{PROLOGUE}<scenario name=\"{name}\">\n{body}</scenario>\n")
}

/// A sipp UAC scenario named `name`: the shared INVITE, then `after` (sipp XML).
pub fn uac(name: &str, after: &str) -> String {
    scenario(name, &format!("{INVITE}{after}"))
}

/// The far end hangs up: receive its BYE and answer 200.
pub const BYE_ANSWERED: &str = r#"  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"#;

/// 100 and 180 optional, 200 (its Record-Route kept), then the ACK; `routed`: along the
/// route set the 200 gave (`[routes]`).
pub fn answered_ack(routed: bool) -> String {
    let routes = route_line(routed);
    format!(
        r#"  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
{routes}      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"#
    )
}

/// [`answered_ack`], then `pause_ms` later our BYE (along the route set if `routed`) and its 200.
pub fn ack_and_bye(routed: bool, pause_ms: u32) -> String {
    let routes = route_line(routed);
    format!(
        r#"{}  <pause milliseconds="{pause_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
{routes}      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"#,
        answered_ack(routed)
    )
}

fn route_line(routed: bool) -> &'static str {
    if routed {
        "      [routes]\n"
    } else {
        ""
    }
}

/// sipp's command line for one call over UDP from 127.0.0.1:`port`, its messages traced to
/// `messages`, failing after `timeout` (e.g. "30s"); `remote` is the address to call (none for
/// a UAS).
pub fn args(
    scenario: &std::path::Path,
    port: u16,
    messages: &std::path::Path,
    timeout: &str,
    remote: Option<String>,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "-sf",
        &scenario.display().to_string(),
        "-t",
        "u1",
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        timeout,
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        &messages.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(remote);
    a
}

const PROLOGUE: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
"#;

/// INVITE sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.test with an SDES offer.
const INVITE: &str = r#"  <send retrans="500">
    <![CDATA[
      INVITE sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.test SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:+13175551212@edge.test>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/SAVP 0
      a=rtpmap:0 PCMU/8000
      a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk

    ]]>
  </send>
"#;
