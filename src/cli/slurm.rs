//! `topo slurm FILE`: not yet built (issue: scale-out).

use super::{CliError, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Submit the script with `sbatch` and print the job id.
    #[arg(long)]
    pub submit: bool,
}

pub fn run(_args: &SlurmArgs) -> Result<(), CliError> {
    Err(CliError::Failed(anyhow::anyhow!(
        "`topo slurm` is not yet built"
    )))
}
