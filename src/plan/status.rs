//! What `results/` says about each planned run.

use serde::Serialize;

use crate::results::{ExperimentDir, Provenance, RunState, Summary, read_json};

use super::Plan;

/// Totals by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub new: usize,
    pub partial: usize,
    pub done: usize,
    pub failed: usize,
}

/// Each run's state, in plan order, and the totals.
#[derive(Debug, Clone)]
pub struct PlanStatus {
    pub states: Vec<RunState>,
    pub counts: StatusCounts,
}

/// Reads the state of every run of `plan` under `dir`.
pub fn plan_status(plan: &Plan, dir: &ExperimentDir) -> PlanStatus {
    let states: Vec<RunState> = plan
        .runs
        .iter()
        .map(|r| dir.run(&r.id).state_on_disk())
        .collect();
    let mut counts = StatusCounts::default();
    for s in &states {
        match s {
            RunState::New => counts.new += 1,
            RunState::Partial => counts.partial += 1,
            RunState::Done => counts.done += 1,
            RunState::Failed => counts.failed += 1,
        }
    }
    PlanStatus { states, counts }
}

/// For each done run of `plan` whose summary says another build produced it (another
/// commit, kernels or instruction set than `current`), how it differs. Such a run is
/// not trained again: this only says that its numbers may not be this build's. A run
/// whose summary predates provenance, or does not read, is not marked.
pub fn other_builds(
    plan: &Plan,
    dir: &ExperimentDir,
    states: &[RunState],
    current: &Provenance,
) -> Vec<Option<String>> {
    plan.runs
        .iter()
        .zip(states)
        .map(|(run, state)| {
            if *state != RunState::Done {
                return None;
            }
            let summary: Summary = read_json(&dir.run(&run.id).summary()).ok()?;
            summary.provenance?.differs_from(current)
        })
        .collect()
}
