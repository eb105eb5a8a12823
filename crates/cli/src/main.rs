//! `trunkgate`: the command-line front of the secure SIP trunking edge.
//!
//! This crate only parses arguments and wires the library crates together; every piece of
//! protocol or certificate logic lives in `crates/*` (see `../shared/DESIGN.md`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench_cmd;
mod check_cmd;
mod edge_cmd;
mod pki_cmd;
mod sip_cmd;

/// trunkgate: a secure SIP trunking edge (SIP over TLS on 5061 + SRTP toward carriers and
/// cloud contact centres, plain SIP/RTP toward the PBX inside), and the certificate tools voice
/// engineers need to get trunks up.
#[derive(Debug, Parser)]
#[command(name = "trunkgate", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a throwaway PKI, two edges joined by a byoc-cloud TLS trunk, and one call through
    /// them; print the handshake, the call ladder and the result (exit 0 only if the call
    /// completed).
    Demo(edge_cmd::DemoArgs),
    /// Run the edge: TLS trunks outside, plain SIP inside (see examples/edge/).
    Serve(edge_cmd::ServeArgs),
    /// Work with SIP messages offline: parse one and see how trunkgate reads it.
    Sip(sip_cmd::SipArgs),
    /// Run a private CA: roots, server/client/device certificates, CSRs, CRLs, rotation.
    Pki(pki_cmd::PkiArgs),
    /// Load-test any SIP server (TLS, TCP or UDP): OPTIONS floods, handshake storms, calls,
    /// idle connections; rates, latency percentiles, failures by cause, client CPU.
    Bench(bench_cmd::BenchArgs),
    /// Will my trunk come up? Probe a SIP TLS endpoint (or listen for one) against a profile.
    Check(check_cmd::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => edge_cmd::demo(args),
        Command::Serve(args) => edge_cmd::serve(args),
        Command::Sip(args) => sip_cmd::run(args),
        Command::Pki(args) => pki_cmd::run(args),
        Command::Check(args) => check_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("trunkgate: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
