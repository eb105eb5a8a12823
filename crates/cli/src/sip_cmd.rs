//! `trunkgate sip …`

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SipArgs {}

pub fn run(_args: SipArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
