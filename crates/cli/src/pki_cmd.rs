//! `trunkgate pki …` (issue 4): not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct PkiArgs {}

pub fn run(_args: PkiArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`trunkgate pki` is not built yet (issue 4)")
}
