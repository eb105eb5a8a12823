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
    /// RTP packets sent to the media address of the answer during the hold.
    pub rtp_sent: u32,
}

/// What the callee saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalleeReport {
    /// Calls answered and hung up.
    pub calls: usize,
    /// RTP packets received whose payload was the caller's, intact.
    pub rtp_received: u32,
    /// RTP packets received with a damaged payload.
    pub rtp_damaged: u32,
}

/// The payload every demo RTP packet carries (G.711-sized), so the far end can check it.
fn payload(seq: u16) -> Vec<u8> {
    (0..160u16).map(|i| (i.wrapping_mul(7) ^ seq) as u8).collect()
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
    p.extend_from_slice(&payload(seq));
    p
}

/// The audio address in an SDP body (`c=` and the first `m=audio` port).
pub fn sdp_audio_addr(sdp: &[u8]) -> Option<SocketAddr> {
    let text = String::from_utf8_lossy(sdp);
    let ip = text.lines().find_map(|l| l.strip_prefix("c=IN IP4 ").or_else(|| l.strip_prefix("c=IN IP6 ")))?;
    let port = text.lines().find_map(|l| l.strip_prefix("m=audio "))?.split(' ').next()?;
    format!("{}:{}", ip.trim(), port).parse().ok().or_else(|| format!("[{}]:{}", ip.trim(), port).parse().ok())
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

fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
}

async fn recv(sock: &UdpSocket, buf: &mut [u8], wait: Duration) -> Option<(usize, SocketAddr)> {
    tokio::time::timeout(wait, sock.recv_from(buf)).await.ok().and_then(Result::ok)
}

fn parse(buf: &[u8]) -> Option<Message<'_>> {
    parse_datagram(buf, &Limits::default()).ok()
}

/// Places one call to `number` through the edge at `edge` and hangs up after `hold`.
/// During the hold, 20 ms RTP packets go to the answer's media address.
pub async fn call(sock: &UdpSocket, edge: SocketAddr, number: &str, hold: Duration) -> Result<CallerReport, UaError> {
    let local = sock.local_addr()?;
    let rtp = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
    let mut answer_addr = None;
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
    invite.body = sdp(rtp.local_addr()?.port()).into_bytes();
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
                answer_addr = sdp_audio_addr(m.body);
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
    let until = tokio::time::Instant::now() + hold;
    let mut seq: u16 = 1;
    while tokio::time::Instant::now() < until {
        if let Some(to) = answer_addr {
            if rtp.send_to(&rtp_packet(seq), to).await.is_ok() {
                report.rtp_sent += 1;
            }
            seq = seq.wrapping_add(1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    answer_with_media(sock, calls, limit).await.map(|r| r.calls)
}

/// [`answer`], also receiving RTP on the port of its SDP answer and checking each payload.
pub async fn answer_with_media(sock: &UdpSocket, calls: usize, limit: Duration) -> Result<CalleeReport, UaError> {
    let local = sock.local_addr()?;
    let rtp = std::sync::Arc::new(UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?);
    let rtp_port = rtp.local_addr()?.port();
    let counts = std::sync::Arc::new(std::sync::Mutex::new((0u32, 0u32)));
    let receiver = {
        let (rtp, counts) = (rtp.clone(), counts.clone());
        tokio::spawn(async move {
            let mut b = vec![0u8; 2048];
            while let Ok((n, _)) = rtp.recv_from(&mut b).await {
                let pkt = b.get(..n).unwrap_or_default();
                let seq = u16::from_be_bytes([pkt.get(2).copied().unwrap_or(0), pkt.get(3).copied().unwrap_or(0)]);
                let intact = pkt.len() == 12 + 160 && pkt.get(12..) == Some(&payload(seq)[..]);
                if let Ok(mut c) = counts.lock() {
                    if intact {
                        c.0 += 1;
                    } else {
                        c.1 += 1;
                    }
                }
            }
        })
    };
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
        let _ = &receiver;
        let Some(m) = parse(buf.get(..n).unwrap_or_default()) else { continue };
        let call_id = m.header(HeaderName::CallId).map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
        match m.method() {
            Some(Method::Invite) => {
                let tag = tags.entry(call_id).or_insert_with(|| token(4)).clone();
                let ringing =
                    response_to(&m, 180, "Ringing", Some(&tag)).with("Contact", format!("<sip:callee@{local}>"));
                sock.send_to(&ringing.to_bytes(), from).await?;
                let mut ok = response_to(&m, 200, "OK", Some(&tag)).with("Contact", format!("<sip:callee@{local}>"));
                ok.set_body("application/sdp", sdp(rtp_port).into_bytes());
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
    receiver.abort();
    let (good, bad) = counts.lock().map(|c| *c).unwrap_or((0, 0));
    Ok(CalleeReport { calls: ended, rtp_received: good, rtp_damaged: bad })
}
