//! `topo trace FILE --out DIR`: the first steps of an experiment's runs with every
//! quantity they compute written to disk (`train::trace`), for step-level comparison
//! with another framework (`just parity --steps`).

use std::path::PathBuf;

use candle_core::DType;
use clap::ValueEnum;

use crate::kernels::Kernels;
use crate::plan::RunConfig;
use crate::results::cache_dir;
use crate::runner::preflight::{PreflightEnv, preflight};
use crate::train::TrainEnv;
use crate::train::trace::{TraceOptions, trace};

use super::run::{DeviceChoice, KernelsArg, only};
use super::validate::{Planned, load_plan};
use super::{CliError, ExperimentArgs};

/// The precision of the traced steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// What runs train in.
    #[default]
    F32,
    /// Every weight, activation and gradient in float64, on candle's kernels (the fast
    /// ones are float32 only): agreement to rounding.
    F64,
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Where to write: one folder per run, named by its id.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Trace only the run with this id (as `topo plan` prints it); repeat it for several.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Steps to trace from the first, across epochs.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    #[arg(long, value_enum, default_value_t)]
    pub precision: Precision,
    /// The kernels; float64 needs `candle` or `unfold`.
    #[arg(long, value_enum)]
    pub kernels: Option<KernelsArg>,
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

pub fn run(args: &TraceArgs) -> Result<(), CliError> {
    let (dtype, kernels) = match (args.precision, args.kernels) {
        (Precision::F64, Some(KernelsArg::Fast)) => {
            return Err(CliError::Usage(
                "--precision f64 --kernels fast: the fast kernels are float32 only; use \
                 --kernels candle (the default for f64) or --kernels unfold"
                    .to_owned(),
            ));
        }
        (Precision::F64, k) => (DType::F64, k.map_or(Kernels::Candle, Kernels::from)),
        (Precision::F32, k) => (DType::F32, k.map_or(Kernels::Fast, Kernels::from)),
    };
    let Planned { loaded, plan, dir } = load_plan(&args.experiment)?;
    let runs: Vec<&RunConfig> = if args.only.is_empty() {
        plan.runs.iter().collect()
    } else {
        only(&plan, &args.only, &args.experiment.file)?
    };
    let device = args.device.device().map_err(CliError::Failed)?;
    let cache_dir = cache_dir(&args.experiment.results);
    let problems = preflight(
        &runs,
        &PreflightEnv {
            config_dir: loaded.dir.clone(),
            cache_dir: cache_dir.clone(),
            results: None,
        },
    );
    if !problems.is_empty() {
        return Err(CliError::Preflight(problems));
    }
    for run in runs {
        let env = TrainEnv {
            // Nothing is written there: a trace writes only under `--out`.
            dir: dir.run(&run.id),
            device: device.clone(),
            kernels,
            cache_dir: cache_dir.clone(),
            config_dir: loaded.dir.clone(),
            verbose: false,
            on_epoch: None,
            keep_responses: false,
        };
        let options = TraceOptions {
            steps: args.steps,
            dtype,
        };
        let traced = trace(run, &env, options, &args.out.join(&run.id)).map_err(|e| {
            CliError::Failed(anyhow::anyhow!("{}: {}", run.id, crate::log::chain(&e)))
        })?;
        eprintln!(
            "{}: {} steps traced in {}",
            run.id,
            traced.steps,
            traced.dir.display()
        );
    }
    Ok(())
}
