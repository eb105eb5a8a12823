//! Load tool for `bench/media/compare.sh`: relays through real UDP sockets on loopback.
//!
//! `relay_load serve --pbx ADDR --carrier ADDR --seconds N`
//!     runs one call through trunkgate's relay (leg A plain toward `--pbx`, leg B SRTP
//!     AES_CM_128_HMAC_SHA1_80 toward `--carrier`) on a current-thread runtime (one core) and
//!     prints `edge_a=ADDR edge_b=ADDR`, then the relay counters when done.
//! `relay_load load --from ADDR --to ADDR --sink ADDR --seconds N [--rate PPS]`
//!     sends 172-byte RTP packets (G.711, 20 ms) from `--from` to `--to` (as fast as it can, or
//!     at `--rate`), receives what comes out at `--sink`, and prints sent, received, packets/s
//!     and, with `--rate`, the one-way latency p50/p99 through the relay (matched by sequence
//!     number, which SRTP leaves in clear).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trunkgate_media::{
    CryptoAttr, CryptoSuite, LegConfig, LegId, LegSecurity, MediaConfig, MediaManager, SrtpKey, SrtpPolicy,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(&args),
        Some("load") => load(&args),
        _ => {
            eprintln!("usage: relay_load serve --pbx ADDR --carrier ADDR --seconds N | load --from A --to A --sink A --seconds N [--rate PPS]");
            std::process::exit(2);
        }
    }
}

fn serve(args: &[String]) {
    let pbx: SocketAddr = arg(args, "--pbx").expect("--pbx").parse().unwrap();
    let carrier: SocketAddr = arg(args, "--carrier").expect("--carrier").parse().unwrap();
    let secs: u64 = arg(args, "--seconds").unwrap_or_else(|| "10".into()).parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mgr =
            MediaManager::new(MediaConfig { port_min: 29000, port_max: 29099, ..MediaConfig::default() }).unwrap();
        let ip = pbx.ip();
        let mut s = mgr
            .new_session(
                LegConfig { media_ip: ip, security: LegSecurity::Plain },
                LegConfig { media_ip: ip, security: LegSecurity::Srtp(SrtpPolicy::default()) },
            )
            .unwrap();
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
            pbx.port()
        );
        s.offer_from_leg(LegId::A, offer.as_bytes()).unwrap();
        s.offer_for_leg(LegId::B).unwrap();
        let suite = CryptoSuite::AesCm128HmacSha1_80;
        let key =
            CryptoAttr { tag: 1, suite, key: SrtpKey::generate(suite).unwrap(), lifetime: None, window_hint: None };
        let answer = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/SAVP 0\r\na=crypto:{}\r\n",
            carrier.port(),
            key.to_sdp_value()
        );
        s.answer_from_leg(LegId::B, answer.as_bytes()).unwrap();
        s.answer_for_leg(LegId::A).unwrap();
        let relay = s.start_relay().unwrap();
        println!("edge_a={ip}:{} edge_b={ip}:{}", s.local_port(LegId::A), s.local_port(LegId::B));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let st = relay.stop().await;
        println!("relay leg A {:?}", st[0]);
        println!("relay leg B {:?}", st[1]);
    });
}

fn load(args: &[String]) {
    let from: SocketAddr = arg(args, "--from").expect("--from").parse().unwrap();
    let to: SocketAddr = arg(args, "--to").expect("--to").parse().unwrap();
    let sink: SocketAddr = arg(args, "--sink").expect("--sink").parse().unwrap();
    let secs: u64 = arg(args, "--seconds").unwrap_or_else(|| "5".into()).parse().unwrap();
    let rate: Option<u64> = arg(args, "--rate").map(|r| r.parse().unwrap());
    let tx = UdpSocket::bind(from).unwrap();
    let rx = UdpSocket::bind(sink).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..65536).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (sent_at, done) = (Arc::clone(&sent_at), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (mut n, mut lat, mut bytes) = (0u64, Vec::new(), 0u64);
            let mut first = None;
            let mut last = start;
            loop {
                match rx.recv_from(&mut buf) {
                    Ok((len, _)) if len >= 12 => {
                        let now = Instant::now();
                        first.get_or_insert(now);
                        last = now;
                        n += 1;
                        bytes += len as u64;
                        let seq = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                        let t = sent_at[seq].load(Ordering::Relaxed);
                        let ns = now.duration_since(start).as_nanos() as u64;
                        if rate.is_some() && t > 0 && ns >= t {
                            lat.push(ns - t);
                        }
                    }
                    Ok(_) => {}
                    Err(_) if done.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            (n, first.map(|f| last.duration_since(f)), lat, bytes)
        })
    };
    let mut pkt = vec![0x80u8, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    pkt.extend_from_slice(&[0xd5; 160]);
    let end = start + Duration::from_secs(secs);
    let mut sent = 0u64;
    let mut seq: u16 = 0;
    while Instant::now() < end {
        if let Some(r) = rate {
            let due = start + Duration::from_nanos(sent * 1_000_000_000 / r.max(1));
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        sent_at[usize::from(seq)].store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if tx.send_to(&pkt, to).is_ok() {
            sent += 1;
        }
        seq = seq.wrapping_add(1);
    }
    let send_time = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let (received, span, mut lat, bytes) = receiver.join().unwrap();
    // Delivered rate over the sending time (a relay that stops forwarding early is not credited
    // with its short burst); the span between first and last packet received is shown too.
    let span = span.unwrap_or_default().as_secs_f64();
    println!(
        "sent={sent} ({:.0}/s) received={received} ({:.0}/s; received during {span:.2} s; {} bytes each) loss={:.2}%",
        sent as f64 / send_time.as_secs_f64(),
        received as f64 / send_time.as_secs_f64(),
        bytes.checked_div(received).unwrap_or(0),
        100.0 * (sent.saturating_sub(received)) as f64 / sent.max(1) as f64
    );
    if rate.is_some() && !lat.is_empty() {
        lat.sort_unstable();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
        println!("latency_us p50={:.1} p99={:.1} (n={})", p(0.5), p(0.99), lat.len());
    }
}
