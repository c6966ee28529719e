//! What `results/` says about each planned run.

use serde::Serialize;

use crate::results::{ExperimentDir, Provenance, RunState};

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
    /// For each done run whose summary says another build produced it (another commit,
    /// kernels or instruction set than the build compared with), how it differs. Such a
    /// run is not trained again; this only says its numbers may not be this build's. A summary
    /// without provenance (earlier versions) is not marked.
    pub other_builds: Vec<Option<String>>,
}

/// Reads the state of every run of `plan` under `dir`, each summary once; with `current`,
/// also which done runs another build produced.
pub fn plan_status(plan: &Plan, dir: &ExperimentDir, current: Option<&Provenance>) -> PlanStatus {
    let (states, other_builds): (Vec<RunState>, Vec<Option<String>>) = plan
        .runs
        .iter()
        .map(|r| {
            let (state, summary) = dir.run(&r.id).read_state();
            let other = match (state, summary, current) {
                (RunState::Done, Some(s), Some(current)) => {
                    s.provenance.and_then(|p| p.differs_from(current))
                }
                _ => None,
            };
            (state, other)
        })
        .unzip();
    let mut counts = StatusCounts::default();
    for s in &states {
        match s {
            RunState::New => counts.new += 1,
            RunState::Partial => counts.partial += 1,
            RunState::Done => counts.done += 1,
            RunState::Failed => counts.failed += 1,
        }
    }
    PlanStatus {
        states,
        counts,
        other_builds,
    }
}
