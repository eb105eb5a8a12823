//! A minimal SIP user agent over UDP for the demo and the tests: a caller that places one call
//! (INVITE with SDP, ACK, hold, BYE) and a callee that answers it (180, 200 with SDP, BYE → 200).
//! It retransmits over UDP as RFC 3261 timers would, within bounded counts and times.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate_sip::{parse_datagram, response_to, HeaderName, Limits, Message, Method, OwnedMessage};

use crate::core::leg::{branch, tag_of, token};

/// What the caller saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerReport {
    /// Statuses received for the INVITE, in order (retransmissions collapsed).
    pub invite_statuses: Vec<u16>,
    /// Status of the BYE.
    pub bye_status: Option<u16>,
    /// The SDP answer arrived.
    pub got_answer_sdp: bool,
}

/// Why a UA step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UaError {
    /// Socket trouble.
    #[error("UA socket: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing arrived in time.
    #[error("UA: no answer to {0} in time")]
    Timeout(&'static str),
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";

async fn recv(sock: &UdpSocket, buf: &mut [u8], wait: Duration) -> Option<(usize, SocketAddr)> {
    tokio::time::timeout(wait, sock.recv_from(buf)).await.ok().and_then(Result::ok)
}

fn parse(buf: &[u8]) -> Option<Message<'_>> {
    parse_datagram(buf, &Limits::default()).ok()
}

/// Places one call to `number` through the edge at `edge` and hangs up after `hold`.
pub async fn call(sock: &UdpSocket, edge: SocketAddr, number: &str, hold: Duration) -> Result<CallerReport, UaError> {
    let local = sock.local_addr()?;
    let call_id = format!("{}@demo-caller", token(8));
    let from = format!("\"Demo Caller\" <sip:+18005550100@{local}>;tag={}", token(4));
    let to = format!("<sip:{number}@{edge}>");
    let inv_branch = branch();
    let invite = OwnedMessage::request(Method::Invite, format!("sip:{number}@{edge}"))
        .with("Via", format!("SIP/2.0/UDP {local};branch={inv_branch};rport"))
        .with("Max-Forwards", "70")
        .with("From", &from)
        .with("To", &to)
        .with("Call-ID", &call_id)
        .with("CSeq", "1 INVITE")
        .with("Contact", format!("<sip:caller@{local}>"))
        .with("Content-Type", "application/sdp");
    let mut invite = invite;
    invite.body = SDP.as_bytes().to_vec();
    let bytes = invite.to_bytes();
    let mut report = CallerReport::default();
    let mut buf = vec![0u8; 65_535];
    let mut to_with_tag = None;
    sock.send_to(&bytes, edge).await?;
    let mut resend = Duration::from_millis(500);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while to_with_tag.is_none() {
        if tokio::time::Instant::now() > deadline {
            return Err(UaError::Timeout("INVITE"));
        }
        let Some((n, _)) = recv(sock, &mut buf, resend).await else {
            if report.invite_statuses.is_empty() {
                sock.send_to(&bytes, edge).await?;
                resend = (resend * 2).min(Duration::from_secs(4));
            }
            continue;
        };
        let Some(m) = parse(buf.get(..n).unwrap_or_default()) else { continue };
        let Some(s) = m.status() else { continue };
        if report.invite_statuses.last() != Some(&s) {
            report.invite_statuses.push(s);
        }
        if s >= 200 {
            if (200..300).contains(&s) {
                report.got_answer_sdp = !m.body.is_empty();
                to_with_tag = m.header(HeaderName::To).map(|t| String::from_utf8_lossy(t).into_owned());
            } else {
                // ACK the failure (same branch) and stop.
                let ack = OwnedMessage::request(Method::Ack, format!("sip:{number}@{edge}"))
                    .with("Via", format!("SIP/2.0/UDP {local};branch={inv_branch};rport"))
                    .with("Max-Forwards", "70")
                    .with("From", &from)
                    .with(
                        "To",
                        m.header(HeaderName::To).map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default(),
                    )
                    .with("Call-ID", &call_id)
                    .with("CSeq", "1 ACK");
                sock.send_to(&ack.to_bytes(), edge).await?;
                return Ok(report);
            }
        }
    }
    let to_tagged = to_with_tag.unwrap_or_default();
    let in_dialog = |method: Method, cseq: u32| {
        OwnedMessage::request(method.clone(), format!("sip:{number}@{edge}"))
            .with("Via", format!("SIP/2.0/UDP {local};branch={};rport", branch()))
            .with("Max-Forwards", "70")
            .with("From", &from)
            .with("To", &to_tagged)
            .with("Call-ID", &call_id)
            .with("CSeq", format!("{cseq} {method}"))
    };
    sock.send_to(&in_dialog(Method::Ack, 1).to_bytes(), edge).await?;
    tokio::time::sleep(hold).await;
    let bye = in_dialog(Method::Bye, 2).to_bytes();
    sock.send_to(&bye, edge).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while report.bye_status.is_none() {
        if tokio::time::Instant::now() > deadline {
            return Err(UaError::Timeout("BYE"));
        }
        let Some((n, _)) = recv(sock, &mut buf, Duration::from_millis(500)).await else {
            sock.send_to(&bye, edge).await?;
            continue;
        };
        let Some(m) = parse(buf.get(..n).unwrap_or_default()) else { continue };
        if let (Some(s), Some(cseq)) = (m.status(), m.header(HeaderName::CSeq)) {
            if cseq.ends_with(b"BYE") && s >= 200 {
                report.bye_status = Some(s);
            } else if cseq.ends_with(b"INVITE") && (200..300).contains(&s) {
                // A retransmitted 2xx: our ACK was lost; send it again.
                sock.send_to(&in_dialog(Method::Ack, 1).to_bytes(), edge).await?;
            }
        }
    }
    Ok(report)
}

/// Answers calls until `calls` have ended or `limit` passes: 180, then 200 with SDP; 200 to BYE.
/// Returns how many calls it answered and saw hung up.
pub async fn answer(sock: &UdpSocket, calls: usize, limit: Duration) -> Result<usize, UaError> {
    let local = sock.local_addr()?;
    let mut buf = vec![0u8; 65_535];
    let mut ended = 0;
    let mut tags: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + limit;
    while ended < calls {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(UaError::Timeout("calls to the callee"));
        }
        let Some((n, from)) = recv(sock, &mut buf, left).await else { continue };
        let Some(m) = parse(buf.get(..n).unwrap_or_default()) else { continue };
        let call_id = m.header(HeaderName::CallId).map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
        match m.method() {
            Some(Method::Invite) => {
                let tag = tags.entry(call_id).or_insert_with(|| token(4)).clone();
                let ringing =
                    response_to(&m, 180, "Ringing", Some(&tag)).with("Contact", format!("<sip:callee@{local}>"));
                sock.send_to(&ringing.to_bytes(), from).await?;
                let mut ok = response_to(&m, 200, "OK", Some(&tag)).with("Contact", format!("<sip:callee@{local}>"));
                ok.set_body("application/sdp", SDP.replace("40000", "40002").into_bytes());
                sock.send_to(&ok.to_bytes(), from).await?;
            }
            Some(Method::Bye) => {
                let tag = m.header(HeaderName::To).and_then(tag_of);
                let ok = response_to(&m, 200, "OK", tag.as_deref());
                sock.send_to(&ok.to_bytes(), from).await?;
                ended += 1;
            }
            Some(Method::Ack) | None => {}
            Some(_) => {
                let ok = response_to(&m, 200, "OK", Some(&token(4)));
                sock.send_to(&ok.to_bytes(), from).await?;
            }
        }
    }
    Ok(ended)
}
