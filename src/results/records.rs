//! The records a run leaves on disk.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{DatasetSpec, Lambda, ModelSpec, PruneMethod, Topography, TrainingSpec};

use super::Provenance;
use crate::topography::{DistanceBin, NeighbourAgreement, Preference};

/// The names a run's data set, model and topography have in the experiment's YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisNames {
    pub dataset: String,
    pub model: String,
    pub topography: String,
}

/// What a run is, typed and resolved: everything that determines its result besides its
/// lambda and seed, which its [`RunAxes`] hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub dataset: DatasetSpec,
    pub model: ModelSpec,
    /// With its loss, layout and layer weights; `kind: none` for the baseline.
    pub topography: Topography,
    /// The recipe, with the data set's epochs applied.
    pub training: TrainingSpec,
}

/// Where a run sits in its experiment's grid, by the names used in the YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAxes {
    pub dataset: String,
    pub model: String,
    pub topography: String,
    /// `None` for the baseline, whose lambda collapses.
    pub lambda: Option<Lambda>,
    pub seed: u64,
}

impl RunAxes {
    pub fn new(names: &AxisNames, lambda: Option<Lambda>, seed: u64) -> RunAxes {
        RunAxes {
            dataset: names.dataset.clone(),
            model: names.model.clone(),
            topography: names.topography.clone(),
            lambda,
            seed,
        }
    }
}

/// A data split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    Train,
    Validation,
    Test,
}

impl SplitKind {
    /// As messages name it: `training`, `validation`, `test`.
    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Train => "training",
            SplitKind::Validation => "validation",
            SplitKind::Test => "test",
        }
    }
}

/// One line of `metrics.jsonl`: one epoch on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch; the test record carries the best epoch.
    pub epoch: u32,
    pub split: SplitKind,
    /// `ce + lambda * topo`.
    pub loss: f64,
    /// Cross-entropy.
    pub ce: f64,
    /// Topographic loss (layers combined), absent for the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topo: Option<f64>,
    /// Topographic loss of each tapped layer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topo_layers: BTreeMap<String, f64>,
    /// Top-1 accuracy in [0, 1].
    pub accuracy: f64,
    /// Learning rate of the epoch (training only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// The topographic term's weight at the end of the epoch, where a `lambda_schedule`
    /// changes it (the loss above weighs by it); absent where lambda is constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Two-class data sets (BirdDCASE), evaluation splits: ROC-AUC of the predicted
    /// classes, as the reference computes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
    /// When the epoch ended (seconds since the Unix epoch), for the event file's time
    /// axis; absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time: Option<f64>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Done,
    Failed,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The epoch in flight, if training had started.
    pub epoch: Option<u32>,
    pub reason: String,
}

/// Versions that produced a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub topo: String,
    pub candle: String,
}

impl Versions {
    /// This build's: the crate's version and candle's, from `Cargo.lock` (see `build.rs`).
    pub fn of_this_build() -> Versions {
        Versions {
            topo: env!("CARGO_PKG_VERSION").into(),
            candle: env!("BUILD_CANDLE_VERSION").into(),
        }
    }
}

/// `summary.json`: written last; its presence means the run is finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub status: RunStatus,
    pub axes: RunAxes,
    /// Epochs planned.
    pub epochs: u32,
    pub epochs_completed: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<u32>,
    /// Validation accuracy of the best epoch, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
    /// Test accuracy of the best checkpoint, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Two-class data sets: the best checkpoint's test ROC-AUC (see `EpochRecord`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_roc_auc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Trainable parameters; absent for a run that failed before its model was built
    /// (summaries of earlier versions wrote 0 there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<usize>,
    /// Wall time of the session that finished the run (training, evaluation, pruning).
    pub seconds: f64,
    /// What the run is; absent in summaries written before it was recorded here (their
    /// `run.yaml` says it, which the report reads instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<RunIdentity>,
    /// Which build, machine and command produced it; absent in summaries written before
    /// it was recorded, which kept the versions alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Only in summaries written before `provenance`, which holds the versions now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
}

/// One row of `pruning.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruningRow {
    pub method: PruneMethod,
    pub proportion: f64,
    /// Channels zeroed over all topographic layers.
    pub channels_pruned: usize,
    pub channels_total: usize,
    /// Test accuracy in [0, 1].
    pub accuracy: f64,
}

/// How topographic one tapped layer is, as `topography.json` keeps it: the measures of
/// [`crate::topography`] with the layer's name and positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub layer: String,
    pub channels: usize,
    /// Correlation of pairwise similarity with `1/(d+1)` over all pairs; `None` where
    /// undefined (one channel, or a constant similarity).
    pub score: Option<f64>,
    /// Slope of channel similarity against distance (negative when near is alike);
    /// absent in records written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope: Option<f64>,
    pub bins: Vec<DistanceBin>,
    /// Each channel's position (`dim` coordinates per channel, row-major), for maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<ChannelPositions>,
    /// Each channel's preferred class and selectivity on the metric batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<Preference>,
    /// Share of nearest-neighbour pairs preferring the same class, against chance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbours: Option<NeighbourAgreement>,
}

/// Channel positions as a record keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelPositions {
    pub dim: usize,
    pub coords: Vec<f64>,
}

/// `topography.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopographyRecord {
    /// The layout the distances came from: the run's topography, or for the baseline
    /// the 2D grid every method is also measured on (one yardstick for all).
    pub layout: String,
    /// The test examples the layers were measured on; absent in records written when
    /// they were the test split's first 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::topography::ProbeSet>,
    /// Where the responses were read; absent in records written when it was the run's
    /// own tap (the conv output, unless the topography set `tap: block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<crate::config::ResponsePoint>,
    pub layers: Vec<LayerRecord>,
}
