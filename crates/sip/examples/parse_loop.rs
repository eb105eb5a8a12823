//! Parses (and optionally validates) the benchmark INVITE N times, for instruction counting
//! under `valgrind --tool=callgrind` (repeatable on a noisy machine, unlike wall time):
//! `cargo build --release -p trunkgate-sip --example parse_loop` then
//! `valgrind --tool=callgrind target/release/examples/parse_loop 100000 [validate]`.

use trunkgate_sip::{parse_stream_message, validate_request, Limits, Policy};

const INVITE: &[u8] = include_bytes!("../benches/data/invite.sip");

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let validate = args.next().as_deref() == Some("validate");
    let limits = Limits::default();
    let policy = Policy::default();
    let mut total = 0usize;
    for _ in 0..n {
        match parse_stream_message(std::hint::black_box(INVITE), &limits) {
            Ok(m) => {
                total += m.headers.len();
                if validate {
                    total += validate_request(&m, &policy).map_or(0, |i| i.vias.len());
                }
            }
            Err(e) => {
                eprintln!("bench INVITE failed to parse: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("{n} parses, {total} headers");
}
