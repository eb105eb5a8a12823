//! A real call with audio through the relay (SPEC M1, M2): baresip A (plain RTP, the "PBX
//! side", leg A) calls baresip B (SDES SRTP mandatory, the "trunk side", leg B). Between them
//! the test runs a minimal SIP-over-UDP forwarder that rewrites the SDP bodies with
//! `MediaSession` (offer A → offer B, answer B → answer A) and starts the relay; it is a test
//! harness, not the edge's B2BUA: it relies on baresip replying to the request's source (rport)
//! and lets ACK/BYE go straight to the Contact (they carry no SDP).
//!
//! A plays a 1000 Hz sine, B a 440 Hz sine (baresip `ausine`); the `sndfile` module records what
//! each side decoded. Pass: B's recording is a ~1 kHz tone, A's a ~440 Hz tone (sox `stat`: RMS,
//! rough frequency), the relay counted the packets with no auth failure, and a tshark capture on
//! lo shows clear PCMU on leg A and, for the same RTP sequence numbers, other bytes on leg B.
//! Needs Debian `baresip-core`, `sox`, `tshark`; every process runs under `timeout` and is killed
//! by PID when the test ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use trunkgate_media::{
    LegConfig, LegId, LegSecurity, MediaConfig, MediaManager, MediaSession, RelayHandle, SrtpPolicy,
};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const RELAY_MIN: u16 = 28000;
const RELAY_MAX: u16 = 28019;

/// Kills a child by PID (SIGTERM, then SIGKILL) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port p with p and p+1 free for UDP and TCP (baresip listens on both).
fn free_port() -> u16 {
    for _ in 0..200 {
        let s = std::net::UdpSocket::bind((LO, 0)).unwrap();
        let p = s.local_addr().unwrap().port();
        if p < 60000 && std::net::TcpListener::bind((LO, p)).is_ok() && std::net::TcpListener::bind((LO, p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port");
}

fn baresip(dir: &Path, sip: u16, ctrl: u16, rtp: u16, account: &str, tone: u32) -> Guard {
    std::fs::create_dir_all(dir).unwrap();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip}\ncall_local_timeout 30\ncall_max_calls 2\n\
         audio_player aubridge,nil\naudio_alert aubridge,nil\naudio_source ausine,{tone}\n\
         ausrc_srate 48000\nausrc_channels 2\naudio_level no\nausrc_format s16\nauplay_format s16\n\
         auenc_format s16\naudec_format s16\naudio_buffer 20-160\nrtp_ports {rtp}-{}\nrtcp_mux no\n\
         jitter_buffer_delay 5-10\nrtp_stats yes\ndns_server 127.0.0.1:53\nnet_interface 127.0.0.1\n\
         snd_path {}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aubridge.so\n\
         module ausine.so\nmodule sndfile.so\nmodule srtp.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n\
         module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl}\n",
        rtp + 99,
        dir.display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
    let child = Command::new("timeout")
        .args(["90", "baresip", "-f"])
        .arg(dir)
        .args(["-s", "-v"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("baresip (Debian package baresip-core)");
    Guard(child)
}

/// baresip's ctrl_tcp: netstring-framed JSON commands and events.
struct Ctrl {
    s: TcpStream,
    buf: Vec<u8>,
    token: u32,
}

impl Ctrl {
    async fn connect(port: u16) -> Ctrl {
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect((LO, port)).await {
                return Ctrl { s, buf: Vec::new(), token: 0 };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("baresip ctrl_tcp on port {port} did not come up within 10 s");
    }

    async fn next(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b':') {
                let n: usize = std::str::from_utf8(&self.buf[..i]).unwrap().parse().unwrap();
                if self.buf.len() > i + n + 1 {
                    let msg = String::from_utf8_lossy(&self.buf[i + 1..i + 1 + n]).into_owned();
                    self.buf.drain(..i + n + 2);
                    return msg;
                }
            }
            let mut b = [0u8; 4096];
            let n = timeout(Duration::from_secs(20), self.s.read(&mut b)).await.expect("ctrl_tcp silent 20 s").unwrap();
            assert!(n > 0, "ctrl_tcp closed");
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    async fn send(&mut self, cmd: &str, params: &str) {
        self.token += 1;
        let body = format!(r#"{{"command":"{cmd}","params":"{params}","token":"{}"}}"#, self.token);
        self.s.write_all(format!("{}:{body},", body.len()).as_bytes()).await.unwrap();
    }

    async fn wait_event(&mut self, ty: &str) {
        let want = format!(r#""type":"{ty}""#);
        timeout(Duration::from_secs(20), async {
            loop {
                let m = self.next().await;
                if m.contains(&want) {
                    return;
                }
                assert!(!m.contains(r#""type":"CALL_CLOSED""#), "call closed while waiting for {ty}: {m}");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {ty} within 20 s"));
    }
}

/// Replaces the body of a SIP message and its Content-Length.
fn with_body(msg: &str, body: &[u8]) -> Vec<u8> {
    let (head, _) = msg.split_once("\r\n\r\n").unwrap();
    let mut out = String::new();
    for l in head.split("\r\n") {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("content-length:") || lower.starts_with("l:") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    let mut v = out.into_bytes();
    v.extend_from_slice(body);
    v
}

struct Forwarder {
    session: MediaSession,
    relay: Option<RelayHandle>,
    answers: HashMap<Vec<u8>, Vec<u8>>,
}

/// Forwards SIP between A (on `pa`) and B (from `pb`), rewriting SDP with the media session.
async fn forward(pa: UdpSocket, pb: UdpSocket, b_sip: SocketAddr, f: Arc<Mutex<Forwarder>>) {
    let mut a_addr = None;
    let (mut ba, mut bb) = ([0u8; 8192], [0u8; 8192]);
    loop {
        tokio::select! {
            r = pa.recv_from(&mut ba) => {
                let (n, from) = r.unwrap();
                a_addr = Some(from);
                let msg = String::from_utf8_lossy(&ba[..n]).into_owned();
                let (head, body) = msg.split_once("\r\n\r\n").unwrap();
                let mut out = msg.as_bytes().to_vec();
                if head.starts_with("INVITE ") && !body.is_empty() {
                    let mut g = f.lock().unwrap();
                    g.session.offer_from_leg(LegId::A, body.as_bytes()).unwrap();
                    let offer = g.session.offer_for_leg(LegId::B).unwrap();
                    out = with_body(&msg, &offer);
                }
                // Request-URI to B's own address.
                let text = String::from_utf8(out).unwrap();
                let out = text.replacen(&format!("127.0.0.1:{}", pa.local_addr().unwrap().port()), &b_sip.to_string(), 1);
                pb.send_to(out.as_bytes(), b_sip).await.unwrap();
            }
            r = pb.recv_from(&mut bb) => {
                let (n, _) = r.unwrap();
                let msg = String::from_utf8_lossy(&bb[..n]).into_owned();
                let (head, body) = msg.split_once("\r\n\r\n").unwrap();
                let mut out = msg.as_bytes().to_vec();
                if head.starts_with("SIP/2.0 200") && head.contains(" INVITE") && !body.is_empty() {
                    let mut g = f.lock().unwrap();
                    let answer = match g.answers.get(body.as_bytes()) {
                        Some(a) => a.clone(),
                        None => {
                            g.session.answer_from_leg(LegId::B, body.as_bytes()).unwrap();
                            let a = g.session.answer_for_leg(LegId::A).unwrap();
                            let relay = g.session.start_relay().unwrap();
                            g.relay = Some(relay);
                            g.answers.insert(body.as_bytes().to_vec(), a.clone());
                            a
                        }
                    };
                    out = with_body(&msg, &answer);
                }
                if let Some(to) = a_addr {
                    pa.send_to(&out, to).await.unwrap();
                }
            }
        }
    }
}

fn sox_stat(wav: &Path) -> (f64, f64) {
    let out = Command::new("timeout").args(["30", "sox"]).arg(wav).args(["-n", "stat"]).output().expect("sox");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let field = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        line.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    (field("RMS     amplitude"), field("Rough   frequency"))
}

fn recording(dir: &Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("no decoded recording in {}", dir.display()))
}

/// `(udp src port, udp dst port, rtp seq, payload hex)` of every RTP packet to or from `ports`.
fn rtp_fields(pcap: &Path, ports: &[u16]) -> Vec<(u16, u16, u16, String)> {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "tshark", "-r"]).arg(pcap);
    for p in ports {
        cmd.args(["-d", &format!("udp.port=={p},rtp")]);
    }
    let out = cmd
        .args([
            "-Y",
            "rtp",
            "-T",
            "fields",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "rtp.seq",
            "-e",
            "rtp.payload",
        ])
        .output();
    let out = out.expect("tshark (Debian package tshark)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.replace(':', ""),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_tone_crosses_plain_to_srtp_and_back() {
    let work = tempfile::tempdir().unwrap();
    let (a_sip, b_sip, a_ctrl, b_ctrl) = (free_port(), free_port(), free_port(), free_port());
    let mgr =
        MediaManager::new(MediaConfig { port_min: RELAY_MIN, port_max: RELAY_MAX, ..MediaConfig::default() }).unwrap();
    let session = mgr
        .new_session(
            LegConfig { media_ip: LO, security: LegSecurity::Plain },
            LegConfig { media_ip: LO, security: LegSecurity::Srtp(SrtpPolicy::default()) },
        )
        .unwrap();
    let (edge_a, edge_b) = (session.local_port(LegId::A), session.local_port(LegId::B));

    // Capture the relay ports on lo.
    let pcap = work.path().join("call.pcapng");
    let mut cap = Command::new("timeout")
        .args(["60", "dumpcap", "-q", "-i", "lo", "-f", &format!("udp portrange {RELAY_MIN}-{RELAY_MAX}"), "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dumpcap (Debian package tshark)");
    let err = cap.stderr.take().unwrap();
    let cap = Guard(cap);
    let started = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(err).lines();
        let ok = lines.any(|l| l.map(|l| l.contains("Capturing on")).unwrap_or(false));
        std::thread::spawn(move || for _ in lines {});
        ok
    });
    assert!(timeout(Duration::from_secs(20), started).await.unwrap().unwrap(), "dumpcap did not start");

    let b = baresip(
        &work.path().join("B"),
        b_sip,
        b_ctrl,
        22000,
        "<sip:b@127.0.0.1>;regint=0;answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU",
        440,
    );
    let a = baresip(&work.path().join("A"), a_sip, a_ctrl, 21000, "<sip:a@127.0.0.1>;regint=0;audio_codecs=PCMU", 1000);
    let mut ca = Ctrl::connect(a_ctrl).await;
    let mut cb = Ctrl::connect(b_ctrl).await;

    let pa = UdpSocket::bind((LO, 0)).await.unwrap();
    let pb = UdpSocket::bind((LO, 0)).await.unwrap();
    let fwd_port = pa.local_addr().unwrap().port();
    let f = Arc::new(Mutex::new(Forwarder { session, relay: None, answers: HashMap::new() }));
    let fwd = tokio::spawn(forward(pa, pb, SocketAddr::new(LO, b_sip), Arc::clone(&f)));

    ca.send("dial", &format!("sip:b@127.0.0.1:{fwd_port}")).await;
    ca.wait_event("CALL_ESTABLISHED").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    ca.send("hangup", "").await;
    ca.wait_event("CALL_CLOSED").await;
    ca.send("quit", "").await;
    cb.send("quit", "").await;
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(cap);
    fwd.abort();

    let (relay, suite) = {
        let mut g = f.lock().unwrap();
        (g.relay.take().expect("the 200 OK started the relay"), g.session.negotiated_suite(LegId::B))
    };
    let stats = relay.stop().await;
    println!("negotiated {suite:?}; leg A {:?}; leg B {:?}", stats[0], stats[1]);
    assert!(suite.is_some());
    for s in stats {
        assert!(s.rtp_in_packets > 100 && s.rtp_out_packets > 100, "{s:?}");
        assert!(s.rtcp_in_packets + s.rtcp_out_packets > 0, "{s:?}");
        assert_eq!(s.replays, 0, "{s:?}");
    }
    let [a, b] = stats;
    assert_eq!(a.auth_failures, 0, "plain leg");
    // Every SRTP packet B sent was authenticated and relayed to A, and the reverse.
    assert_eq!(a.rtp_out_packets, b.rtp_in_packets);
    assert_eq!(b.rtp_out_packets, a.rtp_in_packets);
    // baresip sends its RTCP BYE in clear when it hangs up (after its SRTP is gone): the relay
    // drops it as unauthenticated, so at most that one failure on leg B.
    assert!(b.auth_failures <= 1, "{b:?}");
    let log_b = std::fs::read_to_string(work.path().join("B/baresip.log")).unwrap();
    assert!(log_b.contains("SRTP is Enabled"), "B runs SRTP");

    let (rms_b, freq_b) = sox_stat(&recording(&work.path().join("B")));
    let (rms_a, freq_a) = sox_stat(&recording(&work.path().join("A")));
    println!("B heard rms={rms_b} freq={freq_b} Hz; A heard rms={rms_a} freq={freq_a} Hz");
    assert!(rms_b > 0.05 && (900.0..1100.0).contains(&freq_b), "B: rms {rms_b} freq {freq_b}");
    assert!(rms_a > 0.05 && (380.0..500.0).contains(&freq_a), "A: rms {rms_a} freq {freq_a}");

    // On the wire, per RTP sequence number: what A sent to leg A is clear PCMU, and what leg B
    // sent on to B carries other bytes, longer by the tag (SRTP); the same for B → A.
    let pkts = rtp_fields(&pcap, &[edge_a, edge_b]);
    let flow = |src: Option<u16>, dst: Option<u16>| -> HashMap<u16, String> {
        pkts.iter()
            .filter(|p| src.is_none_or(|s| p.0 == s) && dst.is_none_or(|d| p.1 == d))
            .map(|p| (p.2, p.3.clone()))
            .collect()
    };
    for (clear, secure, what) in [
        (flow(None, Some(edge_a)), flow(Some(edge_b), None), "A to B"),
        (flow(Some(edge_a), None), flow(None, Some(edge_b)), "B to A"),
    ] {
        let mut compared = 0;
        for (seq, c) in &clear {
            if let Some(s) = secure.get(seq) {
                compared += 1;
                assert_eq!(c.len(), 320, "{what}: 160 bytes of PCMU in clear on leg A");
                assert!(s.len() > c.len(), "{what}: SRTP adds the tag");
                assert!(!s.contains(c.as_str()), "{what}: clear payload of seq {seq} seen on the SRTP leg");
            }
        }
        assert!(compared > 100, "{what}: compared {compared} packets (captured {})", pkts.len());
    }
}
