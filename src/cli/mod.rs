//! The command line: `topo validate | plan | run | analyse | export | report | positions | schema | slurm | splits | trace`.

mod analyse;
mod estimate;
mod exit;
mod export;
mod plan;
mod positions;
mod report;
mod run;
mod schema;
mod slurm;
mod splits;
mod trace;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::CliError;
pub use run::{DeviceChoice, KernelsArg};

/// Topographic convolutional networks: experiments from YAML to the paper's tables.
#[derive(Debug, Parser)]
#[command(name = "topo", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where and how an experiment file is read, shared by the commands that take one.
#[derive(Debug, Clone, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment file (YAML).
    pub file: PathBuf,
    /// Override a field: `--set training.epochs=2` (repeatable; applied after the file
    /// and `TOPO_SECTION__FIELD` environment variables).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Root of the results tree; each experiment writes to `<results>/<name>/`.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "results",
        env = "TOPO_RESULTS_ROOT"
    )]
    pub results: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an experiment file against the schema and by meaning; every problem at once.
    Validate(validate::ValidateArgs),
    /// List the runs an experiment implies, with their status in `results/`.
    Plan(plan::PlanArgs),
    /// Train every pending run of an experiment (resuming interrupted ones).
    Run(run::RunArgs),
    /// Compute or refresh the analyses (maps, smoothness and Moran's I against shuffles,
    /// pinwheels, tonotopy) of finished runs from their best checkpoints, without training.
    Analyse(analyse::AnalyseArgs),
    /// Write a finished run's best model for PyTorch: weights under torchvision's names,
    /// channel positions and input preparation (`python/topo_torch` loads it).
    Export(export::ExportArgs),
    /// Write tables and figures for finished runs under `DIR/report/`.
    Report(report::ReportArgs),
    /// Print or draw channel positions of a layout (the paper's figure 2).
    Positions(positions::PositionsArgs),
    /// Write the JSON schemas of experiment files into `schemas/` (or check them).
    Schema(schema::SchemaArgs),
    /// Write (and optionally submit) a Slurm job array running an experiment.
    Slurm(slurm::SlurmArgs),
    /// Print which examples of a data set's files each split takes (JSON), so another
    /// framework can train and test on the same ones.
    Splits(splits::SplitsArgs),
    /// Write the first training steps of runs in full (inputs, losses, gradients,
    /// weights, momenta, batch-norm statistics) for step-level comparison with PyTorch.
    Trace(trace::TraceArgs),
}

/// Parses the command line, runs the command, maps the outcome to an exit code:
/// 0 success, 1 failure, 2 invalid input.
pub fn main() -> ExitCode {
    // Before any thread starts: candle's elementwise ops on the caller, not a second pool.
    crate::kernels::threads::candle_elementwise_on_caller();
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn dispatch(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Run(a) => run::run(a),
        Command::Analyse(a) => analyse::run(a),
        Command::Export(a) => export::run(a).map_err(CliError::Failed),
        Command::Report(a) => report::run(a).map_err(CliError::Failed),
        Command::Positions(a) => positions::run(a).map_err(CliError::Failed),
        Command::Schema(a) => schema::run(a),
        Command::Slurm(a) => slurm::run(a),
        Command::Splits(a) => splits::run(a),
        Command::Trace(a) => trace::run(a),
    }
}
