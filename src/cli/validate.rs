//! `topo validate FILE`.

use crate::config::{LoadOptions, load};
use crate::plan::plan;

use super::{CliError, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

pub fn run(args: &ValidateArgs) -> Result<(), CliError> {
    let loaded = load_experiment(&args.experiment)?;
    let runs = plan(&loaded.experiment)
        .map_err(|e| CliError::Failed(e.into()))?
        .runs
        .len();
    println!(
        "{}: ok ({} run{})",
        args.experiment.file.display(),
        runs,
        if runs == 1 { "" } else { "s" }
    );
    Ok(())
}

/// Loads an experiment with the process environment and `--set` flags.
pub fn load_experiment(args: &ExperimentArgs) -> Result<crate::config::Loaded, CliError> {
    load(
        &args.file,
        &LoadOptions::with_process_env(args.sets.clone()),
    )
    .map_err(CliError::Invalid)
}
