//! `topo run FILE`: train every pending run, resuming interrupted ones.

use clap::ValueEnum;

use crate::engine::runner::{RunOptions, run_plan};
use crate::plan::plan;
use crate::results::{ExperimentDir, write_atomic};

use super::validate::load_experiment;
use super::{CliError, ExperimentArgs};

/// Where tensors live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// The first NVIDIA GPU (needs a build with `--features cuda`).
    Cuda,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Run only the run with this id (as `topo plan` prints it).
    #[arg(long, value_name = "ID")]
    pub only: Option<String>,
    /// Try runs that failed before again (they resume from their last checkpoint).
    #[arg(long)]
    pub retry_failed: bool,
    /// Skip writing the report (tables, figures) once the runs are done.
    #[arg(long)]
    pub no_report: bool,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let loaded = load_experiment(&args.experiment)?;
    let plan = plan(&loaded.experiment).map_err(|e| CliError::Failed(e.into()))?;
    let dir = ExperimentDir::new(&args.experiment.results, &plan.experiment);
    let runs: Vec<_> = match &args.only {
        Some(id) => {
            let found: Vec<_> = plan.runs.iter().filter(|r| &r.id == id).collect();
            if found.is_empty() {
                return Err(CliError::Usage(format!(
                    "no run `{id}` in {}: `topo plan {}` lists the ids",
                    args.experiment.file.display(),
                    args.experiment.file.display()
                )));
            }
            found
        }
        None => plan.runs.iter().collect(),
    };
    let device = match args.device {
        DeviceChoice::Cpu => candle_core::Device::Cpu,
        DeviceChoice::Cuda => candle_core::Device::new_cuda(0).map_err(|e| {
            CliError::Failed(anyhow::anyhow!(
                "no CUDA device (build with `--features cuda`): {e}"
            ))
        })?,
    };
    let resolved =
        serde_yaml::to_string(&loaded.experiment).map_err(|e| CliError::Failed(e.into()))?;
    write_atomic(&dir.resolved_yaml(), resolved.as_bytes())
        .map_err(|e| CliError::Failed(e.into()))?;
    let options = RunOptions {
        device,
        experiment_dir: dir.clone(),
        config_dir: loaded.dir.clone(),
        cache_dir: args.experiment.results.join(".cache"),
        retry_failed: args.retry_failed,
    };
    let report = run_plan(&plan, &runs, &options).map_err(|e| CliError::Failed(e.into()))?;
    eprintln!(
        "{}: {} trained, {} already done, {} running elsewhere, {} failed",
        dir.path().display(),
        report.trained,
        report.skipped_done,
        report.skipped_locked,
        report.failed.len()
    );
    if !args.no_report {
        // The report is a view of the results: failing to draw it loses nothing.
        match crate::report::report(dir.path()) {
            Ok(outcome) => eprintln!(
                "report: {} ({})",
                outcome.index.display(),
                outcome.summary_line()
            ),
            Err(e) => eprintln!("warning: the report could not be written: {e:#}"),
        }
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        for (id, reason) in &report.failed {
            eprintln!("  failed: {id}: {reason}");
        }
        Err(CliError::Failed(anyhow::anyhow!(
            "{} run(s) failed",
            report.failed.len()
        )))
    }
}
