//! `topo plan FILE`: one line per run and the totals.

use std::time::SystemTime;

use candle_core::Device;
use clap::ValueEnum;
use serde::Serialize;

use crate::config::Lambda;
use crate::kernels::Kernels;
use crate::plan::{StatusCounts, plan_status};
use crate::results::{ExperimentDir, Provenance, RunState, cache_dir};
use crate::train::checkpoint::read_loop_state;

use super::validate::{Planned, load_plan};
use super::{CliError, ExperimentArgs};

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum PlanFormat {
    /// Aligned columns for people.
    #[default]
    Text,
    /// One JSON document for scripts.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also print what the pending runs will cost: FLOPs per example, this machine's
    /// throughput (recorded by finished runs, else measured in a few steps and cached)
    /// and core-hours, in total and per axis.
    #[arg(long)]
    pub estimate: bool,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    id: &'a str,
    dataset: &'a str,
    model: &'a str,
    topography: &'a str,
    lambda: Option<Lambda>,
    seed: u64,
    status: RunState,
    /// Epochs committed in the run's last checkpoint; `null` before the first.
    epochs_done: Option<u32>,
    /// A done run produced by another build: how it differs (commit, kernels, ISA).
    #[serde(skip_serializing_if = "Option::is_none")]
    other_build: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    experiment: &'a str,
    results: String,
    runs: Vec<JsonRun<'a>>,
    total: usize,
    counts: &'a StatusCounts,
}

pub fn run(args: &PlanArgs) -> Result<(), CliError> {
    if args.estimate && matches!(args.format, PlanFormat::Json) {
        return Err(CliError::Usage(
            "--estimate prints text: drop --format json".into(),
        ));
    }
    let Planned { plan, dir, .. } = load_plan(&args.experiment)?;
    let here = Provenance::here(
        Kernels::Fast.on(&Device::Cpu),
        "cpu".into(),
        SystemTime::now(),
    );
    let status = plan_status(&plan, &dir, Some(&here));
    let other = &status.other_builds;
    let epochs_done: Vec<Option<u32>> = plan
        .runs
        .iter()
        .zip(&status.states)
        .map(|(r, s)| epochs_done(&dir, &r.id, *s))
        .collect();
    match args.format {
        PlanFormat::Json => {
            let runs = plan
                .runs
                .iter()
                .zip(&status.states)
                .zip(&epochs_done)
                .zip(other)
                .map(|(((r, s), e), o)| JsonRun {
                    id: &r.id,
                    dataset: &r.names.dataset,
                    model: &r.names.model,
                    topography: &r.names.topography,
                    lambda: r.objective.lambda(),
                    seed: r.seed,
                    status: *s,
                    epochs_done: *e,
                    other_build: o.as_deref(),
                })
                .collect();
            let doc = JsonPlan {
                experiment: &plan.experiment,
                results: dir.path().display().to_string(),
                runs,
                total: plan.runs.len(),
                counts: &status.counts,
            };
            let text =
                serde_json::to_string_pretty(&doc).map_err(|e| CliError::Failed(e.into()))?;
            println!("{text}");
        }
        PlanFormat::Text => {
            let width = plan.runs.iter().map(|r| r.id.len()).max().unwrap_or(2);
            println!(
                "{:width$}  {:<14} {:<12} {:<12} {:>8} {:>4}  status",
                "id", "dataset", "model", "topography", "lambda", "seed"
            );
            let runs = plan.runs.iter().zip(&status.states).zip(&epochs_done);
            for (((r, s), e), o) in runs.zip(other) {
                let lambda = r
                    .objective
                    .lambda()
                    .map_or_else(|| "-".into(), |l| l.to_string());
                println!(
                    "{:width$}  {:<14} {:<12} {:<12} {:>8} {:>4}  {}",
                    r.id,
                    r.names.dataset,
                    r.names.model,
                    r.names.topography,
                    lambda,
                    r.seed,
                    match (s, e, o) {
                        (RunState::Partial, Some(e), _) =>
                            format!("partial, {e}/{} epochs", r.training.epochs),
                        (RunState::Done, _, Some(o)) => format!("done (other build: {o})"),
                        _ => state_name(*s).to_string(),
                    }
                );
            }
            let c = &status.counts;
            println!(
                "{} runs in {}: {} new, {} partial, {} done, {} failed",
                plan.runs.len(),
                dir.path().display(),
                c.new,
                c.partial,
                c.done,
                c.failed
            );
            let others = other.iter().flatten().count();
            if others > 0 {
                println!(
                    "{others} done run{} came from another build (kept; delete a run's folder to train it again)",
                    if others == 1 { "" } else { "s" }
                );
            }
        }
    }
    if args.estimate {
        let runs: Vec<_> = plan.runs.iter().collect();
        let cache = cache_dir(&args.experiment.results).join("throughput.json");
        let estimate = crate::runner::estimate::estimate(&runs, &dir, &cache, false)
            .map_err(|e| CliError::Failed(e.into()))?;
        super::estimate::print(&estimate);
    }
    Ok(())
}

/// Where an unfinished run stands, from its checkpoint's header. A header that does not
/// read is reported here and again, as the run's error, when it resumes.
fn epochs_done(dir: &ExperimentDir, id: &str, state: RunState) -> Option<u32> {
    if state == RunState::New {
        return None;
    }
    match read_loop_state(&dir.run(id)) {
        Ok(loop_state) => loop_state.map(|l| l.epoch),
        Err(e) => {
            eprintln!("warning: {id}: {}", crate::log::chain(&e));
            None
        }
    }
}

pub fn state_name(s: RunState) -> &'static str {
    match s {
        RunState::New => "new",
        RunState::Partial => "partial",
        RunState::Done => "done",
        RunState::Failed => "failed",
    }
}
