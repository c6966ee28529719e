//! The experiment file as written: the root of the YAML schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    AnalysesSpec, DatasetSpec, Lambda, ModelSpec, PruningSpec, ReportSpec, SlurmSpec,
    TopographySpec, TrainingSpec,
};

/// A `topo` experiment: data sets, models and topographies, crossed by `grid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Results go to `results/<name>/`: letters, digits, `-`, `_` and `.`.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// Another experiment file this one builds on, relative to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// Free text shown in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Data sets by name.
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetSpec>,
    /// Models by name; the grid may also name an architecture directly (`resnet18`).
    #[serde(default)]
    pub models: BTreeMap<String, ModelSpec>,
    /// Topographies by name; `{ kind: none }` is the baseline.
    #[serde(default)]
    pub topographies: BTreeMap<String, TopographySpec>,
    /// The axes crossed into runs.
    pub grid: Grid,
    /// The training recipe.
    #[serde(default)]
    pub training: TrainingSpec,
    /// Pruning of every trained run, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PruningSpec>,
    /// What the measures after training read: the probe set and the response point.
    #[serde(default)]
    pub analyses: AnalysesSpec,
    /// What `topo report` draws.
    #[serde(default)]
    pub report: ReportSpec,
    /// Resources for `topo slurm`.
    #[serde(default)]
    pub slurm: SlurmSpec,
}

/// The cross product of these axes is the plan; `lambda` collapses for the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Names from `datasets`.
    #[schemars(length(min = 1))]
    pub dataset: Vec<String>,
    /// Names from `models`, or architectures (`resnet18`, `vgg16_bn`, `densenet121`).
    #[schemars(length(min = 1))]
    pub model: Vec<String>,
    /// Names from `topographies`.
    #[schemars(length(min = 1))]
    pub topography: Vec<String>,
    /// Weights of the topographic loss; positive and finite.
    #[serde(default = "default_lambdas")]
    #[schemars(with = "Vec<f64>")]
    pub lambda: Vec<Lambda>,
    /// Seeds; each gives a full repetition.
    #[serde(default = "default_seeds")]
    #[schemars(length(min = 1))]
    pub seed: Vec<u64>,
    /// Combinations left out: a run is dropped when it matches every field a rule sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<ExcludeRule>,
}

/// A partial assignment of the grid's axes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExcludeRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topography: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<f64>")]
    pub lambda: Option<Lambda>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The paper's twelve lambdas (docs/reference.md).
pub const PAPER_LAMBDAS: [Lambda; 12] = [
    Lambda::known(1e-5),
    Lambda::known(5e-5),
    Lambda::known(1e-4),
    Lambda::known(5e-4),
    Lambda::known(1e-3),
    Lambda::known(5e-3),
    Lambda::known(1e-2),
    Lambda::known(5e-2),
    Lambda::known(0.1),
    Lambda::known(0.5),
    Lambda::known(1.0),
    Lambda::known(5.0),
];

fn default_lambdas() -> Vec<Lambda> {
    PAPER_LAMBDAS.to_vec()
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2, 3, 4]
}
