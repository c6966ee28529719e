//! The training recipe; every default is the paper's (docs/reference.md, "Training recipe").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topography::LayerReduction;

/// How a run is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Epochs, unless the data set sets its own.
    #[serde(default = "default_epochs")]
    #[schemars(range(min = 1))]
    pub epochs: u32,
    /// Examples per optimisation step.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Examples per evaluation batch; defaults to `batch_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub eval_batch_size: Option<usize>,
    /// The optimiser.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// The learning-rate schedule, stepped once per epoch.
    #[serde(default)]
    pub schedule: ScheduleSpec,
    /// How the topographic loss is computed.
    #[serde(default)]
    pub topographic: TopographicLossSpec,
}

impl TrainingSpec {
    /// Examples per evaluation batch: `eval_batch_size`, else `batch_size`.
    pub fn eval_batch(&self) -> usize {
        self.eval_batch_size.unwrap_or(self.batch_size).max(1)
    }
}

impl Default for TrainingSpec {
    fn default() -> Self {
        TrainingSpec {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            eval_batch_size: None,
            optimizer: OptimizerSpec::default(),
            schedule: ScheduleSpec::default(),
            topographic: TopographicLossSpec::default(),
        }
    }
}

fn default_epochs() -> u32 {
    100
}
fn default_batch_size() -> usize {
    256
}

/// Optimisers `topo` implements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent with PyTorch's momentum and weight-decay rules.
    #[default]
    Sgd,
}

/// The optimiser and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// Which optimiser.
    #[serde(default)]
    pub kind: OptimizerKind,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    #[schemars(range(min = 0.0))]
    pub lr: f64,
    /// Momentum.
    #[serde(default = "default_momentum")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub momentum: f64,
    /// L2 weight decay, added to the gradient as PyTorch does.
    #[serde(default = "default_weight_decay")]
    #[schemars(range(min = 0.0))]
    pub weight_decay: f64,
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec {
            kind: OptimizerKind::Sgd,
            lr: default_lr(),
            momentum: default_momentum(),
            weight_decay: default_weight_decay(),
        }
    }
}

fn default_lr() -> f64 {
    0.01
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    0.01
}

/// Learning-rate schedules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Linear warm-up from 0, then a cosine decay as the reference's scheduler steps it:
    /// it nears 0 without reaching it (the last epoch trains at about 0.05%, 0.4% and 4%
    /// of `lr` for 100, 36 and 12 epochs).
    #[default]
    WarmupCosine,
    /// The learning rate stays at `lr`.
    Constant,
}

/// The learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Which schedule.
    #[serde(default)]
    pub kind: ScheduleKind,
    /// Fraction of the epochs spent warming up.
    #[serde(default = "default_warmup")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub warmup: f64,
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        ScheduleSpec {
            kind: ScheduleKind::WarmupCosine,
            warmup: default_warmup(),
        }
    }
}

fn default_warmup() -> f64 {
    0.3
}

/// How the topographic loss is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopographicLossSpec {
    /// Combine the layers' losses by `sum` (the paper's published code) or `mean` (the paper's
    /// eq. 3, and TopoLoss's own code: with `mean` a TopoNets lambda means the same here).
    #[serde(default)]
    pub reduction: LayerReduction,
    /// Lower bound of the product of norms in the cosine similarity.
    #[serde(default = "default_eps")]
    #[schemars(range(min = 0.0))]
    pub eps: f64,
}

impl Default for TopographicLossSpec {
    fn default() -> Self {
        TopographicLossSpec {
            reduction: LayerReduction::Sum,
            eps: default_eps(),
        }
    }
}

fn default_eps() -> f64 {
    crate::topography::DEFAULT_EPS
}
