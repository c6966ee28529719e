//! `topo validate FILE`.

use crate::config::{LoadOptions, load};
use crate::plan::plan;
use crate::results::cache_dir;
use crate::runner::preflight::{PreflightEnv, preflight};

use super::{CliError, ExperimentArgs};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Also check what the runs read: each data set's files (every audio clip decoded,
    /// its features cached) and custom layout files, as `topo run` does before training.
    #[arg(long)]
    pub data: bool,
}

pub fn run(args: &ValidateArgs) -> Result<(), CliError> {
    let Planned { loaded, plan, .. } = load_plan(&args.experiment)?;
    if args.data {
        let all: Vec<_> = plan.runs.iter().collect();
        let problems = preflight(
            &all,
            &PreflightEnv {
                config_dir: loaded.dir.clone(),
                cache_dir: cache_dir(&args.experiment.results),
                results: None,
            },
        );
        if !problems.is_empty() {
            return Err(CliError::Preflight(problems));
        }
    }
    let runs = plan.runs.len();
    println!(
        "{}: ok ({} run{}{})",
        args.experiment.file.display(),
        runs,
        if runs == 1 { "" } else { "s" },
        if args.data { ", data checked" } else { "" }
    );
    Ok(())
}

/// What the commands that act on a plan start from: the loaded experiment, its runs and
/// its results folder.
pub struct Planned {
    pub loaded: crate::config::Loaded,
    pub plan: crate::plan::Plan,
    pub dir: crate::results::ExperimentDir,
}

/// Loads the experiment, expands it and names its results folder.
pub fn load_plan(args: &ExperimentArgs) -> Result<Planned, CliError> {
    let loaded = load_experiment(args)?;
    let plan = plan(&loaded.experiment).map_err(|e| CliError::Failed(e.into()))?;
    let dir = crate::results::ExperimentDir::new(&args.results, &plan.experiment);
    Ok(Planned { loaded, plan, dir })
}

/// Loads an experiment with the process environment and `--set` flags.
pub fn load_experiment(args: &ExperimentArgs) -> Result<crate::config::Loaded, CliError> {
    load(
        &args.file,
        &LoadOptions::with_process_env(args.sets.clone()),
    )
    .map_err(CliError::Invalid)
}
