//! `trunkgate check …` (issue 6): not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub fn run(_args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`trunkgate check` is not built yet (issue 6)")
}
