//! One planned run: everything the engine needs, fully resolved (saved as `run.yaml`).

use serde::{Deserialize, Serialize};

use super::Objective;
use crate::config::{DatasetSpec, ModelSpec, PruningSpec, TrainingSpec};
use crate::results::RunAxes;

/// A run, resolved: no names left to look up, no defaults left to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `<slug>-<hash>`; also the run's folder name.
    pub id: String,
    /// The experiment the run belongs to.
    pub experiment: String,
    /// The run's place in the grid, by the names used in the YAML.
    pub axes: RunAxes,
    pub dataset: DatasetSpec,
    pub model: ModelSpec,
    /// Written as the `topography` and `lambda` keys.
    #[serde(flatten)]
    pub objective: Objective,
    pub seed: u64,
    /// The recipe, with the data set's epochs applied.
    pub training: TrainingSpec,
    /// Pruning applied after training (not part of the run's identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PruningSpec>,
}
