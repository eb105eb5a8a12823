//! `trunkgate bench …` (issue 9): not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`trunkgate bench` is not built yet (issue 9)")
}
