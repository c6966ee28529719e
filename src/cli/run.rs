//! `topo run FILE`: train every pending run, resuming interrupted ones.

use std::time::Duration;

use clap::ValueEnum;

use crate::kernels::Kernels;
use crate::plan::RunConfig;
use crate::results::lock::LockPolicy;
use crate::results::{cache_dir, write_atomic};
use crate::runner::preflight::{PreflightEnv, ResultsCheck, preflight};
use crate::runner::workers::Shard;
use crate::runner::{RunOptions, Workers, run_plan_with};

use super::validate::{Planned, load_plan};
use super::{CliError, ExperimentArgs};

/// The `--kernels` choice (the library's [`Kernels`] knows nothing of the command line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum KernelsArg {
    /// This crate's CPU kernels (im2col + gemm convolution with its backward, fused
    /// batch norm); on CUDA, `unfold`.
    #[default]
    Fast,
    /// candle's own ops everywhere, for comparison.
    Candle,
    /// Convolutions as a column matrix times the weights, candle's other ops: what `fast`
    /// becomes on a GPU (on the CPU, to test that path).
    Unfold,
}

impl From<KernelsArg> for Kernels {
    fn from(k: KernelsArg) -> Kernels {
        match k {
            KernelsArg::Fast => Kernels::Fast,
            KernelsArg::Candle => Kernels::Candle,
            KernelsArg::Unfold => Kernels::Unfold,
        }
    }
}

/// Where tensors live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// The first NVIDIA GPU (needs a build with `--features cuda`).
    Cuda,
}

impl DeviceChoice {
    /// The device, or why there is none (a build without the `cuda` feature, no GPU or
    /// driver).
    pub fn device(self) -> anyhow::Result<candle_core::Device> {
        match self {
            DeviceChoice::Cpu => Ok(candle_core::Device::Cpu),
            DeviceChoice::Cuda if !cfg!(feature = "cuda") => Err(anyhow::anyhow!(
                "--device cuda: this binary was built without CUDA (build with `--features cuda`)"
            )),
            DeviceChoice::Cuda => candle_core::Device::new_cuda(0)
                .map_err(|e| anyhow::anyhow!("--device cuda: no usable NVIDIA GPU: {e}")),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Run only the run with this id (as `topo plan` prints it); repeat it to run several.
    #[arg(long, value_name = "ID", conflicts_with = "shard")]
    pub only: Vec<String>,
    /// Train N runs at once on this machine, the cores shared between them.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
    /// Take slice I of N of the plan: the runs whose position in plan order, modulo N,
    /// is I-1 (for N machines sharing one results folder).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Seconds without a heartbeat after which another host's lock on a run is taken
    /// over (locks of this host are taken over as soon as their process is gone).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub lock_timeout: u64,
    /// Try runs that failed before again (they resume from their last checkpoint).
    #[arg(long)]
    pub retry_failed: bool,
    /// Start no other run once one fails (runs already training, with `--jobs`, finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// Skip writing the report (tables, figures) once the runs are done.
    #[arg(long)]
    pub no_report: bool,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Kernels of the layers: this crate's fast CPU ones, or candle's own (to compare;
    /// the two agree to float rounding). A run resumes bit-identically only on the
    /// kernels it started with.
    #[arg(long, value_enum, default_value_t = KernelsArg::Fast)]
    pub kernels: KernelsArg,
    /// Resume runs that began on other kernels (refused by default: their results
    /// would differ from an uninterrupted run's by float rounding).
    #[arg(long)]
    pub allow_kernel_change: bool,
}

/// The runs of `plan` whose ids `ids` names, in plan order; an id the plan lacks is a
/// usage error naming it (and how to list the ids).
pub fn only<'p>(
    plan: &'p crate::plan::Plan,
    ids: &[String],
    file: &std::path::Path,
) -> Result<Vec<&'p RunConfig>, CliError> {
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !plan.runs.iter().any(|r| &r.id == *id))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(CliError::Usage(format!(
            "no run `{}` in {}: `topo plan {}` lists the ids",
            unknown.join("`, `"),
            file.display(),
            file.display()
        )));
    }
    Ok(plan.runs.iter().filter(|r| ids.contains(&r.id)).collect())
}

pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let Planned { loaded, plan, dir } = load_plan(&args.experiment)?;
    let runs: Vec<&RunConfig> = if args.only.is_empty() {
        let all: Vec<_> = plan.runs.iter().collect();
        match args.shard {
            Some(shard) => {
                let mine = shard.select(&all);
                eprintln!("shard {shard}: {} of the {} runs", mine.len(), all.len());
                mine
            }
            None => all,
        }
    } else {
        only(&plan, &args.only, &args.experiment.file)?
    };
    let device = args.device.device().map_err(CliError::Failed)?;
    let cache_dir = cache_dir(&args.experiment.results);
    let pending: Vec<&RunConfig> = runs
        .iter()
        .copied()
        .filter(|r| dir.run(&r.id).state_on_disk().is_pending(args.retry_failed))
        .collect();
    let problems = preflight(
        &pending,
        &PreflightEnv {
            config_dir: loaded.dir.clone(),
            cache_dir: cache_dir.clone(),
            results: Some(ResultsCheck {
                dir: dir.clone(),
                kernels: Kernels::from(args.kernels).on(&device),
                allow_kernel_change: args.allow_kernel_change,
            }),
        },
    );
    if !problems.is_empty() {
        return Err(CliError::Preflight(problems));
    }
    let resolved = crate::config::to_yaml(&loaded.experiment.experiment).map_err(|e| {
        CliError::Failed(anyhow::anyhow!("cannot write the resolved experiment: {e}"))
    })?;
    write_atomic(&dir.resolved_yaml(), resolved.as_bytes())
        .map_err(|e| CliError::Failed(e.into()))?;
    let options = RunOptions {
        device,
        kernels: args.kernels.into(),
        experiment_dir: dir.clone(),
        config_dir: loaded.dir.clone(),
        cache_dir,
        retry_failed: args.retry_failed,
        fail_fast: args.fail_fast,
    };
    let workers = Workers::new(
        args.jobs as usize,
        LockPolicy {
            stale_after: Duration::from_secs(args.lock_timeout),
        },
    );
    let report =
        run_plan_with(&runs, &options, &workers).map_err(|e| CliError::Failed(e.into()))?;
    eprintln!(
        "{}: {} trained, {} already done, {} running elsewhere, {} failed",
        dir.path().display(),
        report.trained,
        report.skipped_done,
        report.skipped_locked,
        report.failed.len()
    );
    if report.not_started > 0 {
        eprintln!(
            "--fail-fast: {} run(s) not started; `topo run` again resumes the plan",
            report.not_started
        );
    }
    if !args.no_report {
        write_report(dir.path());
    }
    failures(&report.failed, "failed")
}

/// Writes the report of the experiment folder `dir`, saying where; a report that cannot be
/// written is a warning, since it is a view of the results and loses nothing.
pub(super) fn write_report(dir: &std::path::Path) {
    match crate::report::report(dir) {
        Ok(outcome) => eprintln!(
            "report: {} ({})",
            outcome.index.display(),
            outcome.summary_line()
        ),
        Err(e) => eprintln!("warning: the report could not be written: {e:#}"),
    }
}

/// Ok when no run `failed`; otherwise each one's reason, and an error saying how many
/// runs `what` ("failed", "could not be analysed").
pub(super) fn failures(failed: &[(String, String)], what: &str) -> Result<(), CliError> {
    if failed.is_empty() {
        return Ok(());
    }
    for (id, reason) in failed {
        eprintln!("  failed: {id}: {reason}");
    }
    Err(CliError::Failed(anyhow::anyhow!(
        "{} run(s) {what}",
        failed.len()
    )))
}
