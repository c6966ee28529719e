//! `topo analyse FILE | DIR`: compute or refresh the analyses of finished runs from their
//! best checkpoints, without training, then write the report.

use std::path::PathBuf;
use std::time::Duration;

use crate::results::lock::LockPolicy;
use crate::results::{ExperimentDir, cache_dir};
use crate::runner::analyse::analyse_plan;
use crate::runner::{RunOptions, Workers};

use super::run::{failures, only, write_report};
use super::validate::{Planned, load_plan};
use super::{CliError, DeviceChoice, ExperimentArgs, KernelsArg};

#[derive(Debug, clap::Args)]
pub struct AnalyseArgs {
    /// An experiment file, or a results folder (`results/<experiment>`) whose
    /// `experiment.resolved.yaml` says how its runs were made.
    pub target: PathBuf,
    /// Override a field, e.g. `--set analyses.permutations=1000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Root of the results tree, for an experiment file.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "results",
        env = "TOPO_RESULTS_ROOT"
    )]
    pub results: PathBuf,
    /// Analyse only the run with this id (repeatable).
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Recompute analyses that already stand for their settings and checkpoint.
    #[arg(long)]
    pub force: bool,
    /// Also write each analysed run's raw responses (`responses.safetensors`: per tapped
    /// layer, every probe example's, grating's and tone's spatially averaged response), for
    /// checking the measures elsewhere (`bench/analyses.py`).
    #[arg(long)]
    pub responses: bool,
    /// Skip writing the report afterwards.
    #[arg(long)]
    pub no_report: bool,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    #[arg(long, value_enum, default_value_t = KernelsArg::Fast)]
    pub kernels: KernelsArg,
}

pub fn run(args: &AnalyseArgs) -> Result<(), CliError> {
    // A results folder: its resolved experiment, its runs where they are.
    let (file, results, folder) = if args.target.is_dir() {
        let dir = ExperimentDir::at(&args.target);
        let file = dir.resolved_yaml();
        if !file.exists() {
            return Err(CliError::Usage(format!(
                "{} has no experiment.resolved.yaml: give a results folder written by \
                 `topo run` (results/<experiment>), or the experiment file",
                args.target.display()
            )));
        }
        let root = args
            .target
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        (file, root, Some(dir))
    } else {
        (args.target.clone(), args.results.clone(), None)
    };
    let experiment = ExperimentArgs {
        file,
        sets: args.sets.clone(),
        results,
    };
    let Planned { loaded, plan, dir } = load_plan(&experiment)?;
    let dir = folder.unwrap_or(dir);
    let runs: Vec<_> = if args.only.is_empty() {
        plan.runs.iter().collect()
    } else {
        only(&plan, &args.only, &experiment.file)?
    };
    let options = RunOptions {
        device: args.device.device().map_err(CliError::Failed)?,
        kernels: args.kernels.into(),
        experiment_dir: dir.clone(),
        config_dir: loaded.dir.clone(),
        cache_dir: cache_dir(&experiment.results),
        retry_failed: false,
        fail_fast: false,
    };
    let workers = Workers::new(
        1,
        LockPolicy {
            stale_after: Duration::from_secs(600),
        },
    );
    let report = analyse_plan(&runs, &options, &workers, args.force, args.responses)
        .map_err(|e| CliError::Failed(e.into()))?;
    eprintln!(
        "{}: {} analysed, {} already current, {} not finished, {} in use elsewhere, {} failed",
        dir.path().display(),
        report.analysed,
        report.current,
        report.unfinished,
        report.locked,
        report.failed.len()
    );
    if !args.no_report {
        write_report(dir.path());
    }
    failures(&report.failed, "could not be analysed")
}
