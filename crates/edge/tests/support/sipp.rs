//! sipp scenarios of the inbound-call tests: the one INVITE they all send (TGRP `TG-1`, an SDES
//! offer) and the answered-call ACK, with what each test does after it.

/// A sipp UAC scenario named `name`: the shared INVITE, then `after` (sipp XML).
pub fn uac(name: &str, after: &str) -> String {
    format!("{PROLOGUE}<scenario name=\"{name}\">\n{INVITE}{after}</scenario>\n")
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

/// 100 and 180 optional, 200 (its Record-Route kept), then the ACK without a route set.
pub const ANSWERED_ACK: &str = r#"  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+18005550100@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"#;
