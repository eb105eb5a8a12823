//! `trunkgate serve` and `trunkgate demo`: the edge.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use trunkgate_edge::{Config, Edge, EdgeEvent, Options};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML). See examples/edge/*.toml for commented examples; a
    /// mistake is reported with the file, the line and the fix.
    #[arg(long, short)]
    config: PathBuf,
    /// Only check the configuration and the TLS material (certificates, keys, profiles, trust),
    /// then exit: 0 when the edge would start.
    #[arg(long)]
    check: bool,
    /// Log every SIP message's start line (the call ladder).
    #[arg(long)]
    trace: bool,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How long the demo call stays up before the caller hangs up, in milliseconds.
    #[arg(long, default_value_t = 300)]
    hold_ms: u64,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Logs to stderr; `RUST_LOG` (e.g. `trunkgate_edge=debug`) refines it.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let cfg = Config::load(&args.config)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let edge = Edge::start(cfg, Options { trace: args.trace }).await?;
        if args.check {
            println!("configuration {} is valid; TLS material loaded", args.config.display());
            edge.shutdown().await;
            return Ok(ExitCode::SUCCESS);
        }
        let mut events = edge.subscribe();
        tracing::info!("trunkgate edge running; Ctrl-C or SIGTERM for a graceful shutdown");
        let watcher = tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                match e {
                    EdgeEvent::Trace(t) => {
                        tracing::info!(side = ?t.side, inbound = t.inbound, "{}", t.summary)
                    }
                    EdgeEvent::TlsUp { info, inbound } => tracing::info!(
                        inbound, version = ?info.version, cipher = ?info.cipher, group = ?info.group, sni = ?info.sni,
                        "TLS connection established"
                    ),
                    _ => {}
                }
            }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: no new calls; calls in progress may finish");
        edge.shutdown().await;
        watcher.abort();
        Ok(ExitCode::SUCCESS)
    })
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging("warn");
    let rt = runtime()?;
    let report = rt.block_on(trunkgate_edge::demo::run(Duration::from_millis(args.hold_ms)))?;
    print!("{}", report.text);
    Ok(if report.success { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
