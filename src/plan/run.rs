//! One planned run: everything the engine needs, fully resolved (saved as `run.yaml`).

use serde::{Deserialize, Serialize};

use crate::config::{AnalysesSpec, DatasetSpec, ModelSpec, Objective, PruningSpec, TrainingSpec};
use crate::results::{AxisNames, RunAxes, RunIdentity};

/// A run, resolved: no names left to look up, no defaults left to apply, each fact once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `<slug>-<hash>`; also the run's folder name.
    pub id: String,
    /// The experiment the run belongs to.
    pub experiment: String,
    /// The names of its data set, model and topography in the YAML.
    #[serde(rename = "axes")]
    pub names: AxisNames,
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
    /// What the measures after training read (not part of the run's identity).
    #[serde(default)]
    pub analyses: AnalysesSpec,
}

impl RunConfig {
    /// Its place in the grid: names, lambda and seed.
    pub fn axes(&self) -> RunAxes {
        RunAxes::new(&self.names, self.objective.lambda(), self.seed)
    }

    /// What it is, as its summary records it.
    pub fn identity(&self) -> RunIdentity {
        RunIdentity {
            dataset: self.dataset.clone(),
            model: self.model.clone(),
            topography: self.objective.topography(),
            training: self.training.clone(),
        }
    }
}
