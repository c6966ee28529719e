//! The pruning stage (paper section 3.4): zero the weakest channels of each
//! topographic layer of a trained run, without retraining, and test.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How channels are ranked for pruning.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PruneMethod {
    /// Lowest L2 norm of the channel's weights first (the paper's figure 3).
    L2,
    /// Lowest L1 norm first.
    L1,
    /// Channels drawn at random (seeded): the control.
    Random,
}

/// Proportions of channels to prune: a list, or an evenly spaced range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Proportions {
    /// Explicit proportions in [0, 1].
    List(Vec<f64>),
    /// `steps` evenly spaced values from `from` to `to`, both included.
    Range(ProportionRange),
}

/// `{ from: 0, to: 1, steps: 101 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProportionRange {
    #[schemars(range(min = 0.0, max = 1.0))]
    pub from: f64,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub to: f64,
    #[schemars(range(min = 1))]
    pub steps: usize,
}

impl Proportions {
    /// The proportions, in the order given. A range's points are rounded to 12
    /// decimals, so `{ from: 0, to: 0.9, steps: 10 }` gives 0.3 and 0.9, not
    /// 0.30000000000000004 and 0.8999999999999999 (as `pruning.csv` would print them).
    pub fn values(&self) -> Vec<f64> {
        match self {
            Proportions::List(v) => v.clone(),
            Proportions::Range(r) if r.steps == 1 => vec![r.from],
            Proportions::Range(r) => {
                let last = (r.steps - 1) as f64;
                (0..r.steps)
                    .map(|i| round_decimals(r.from + (r.to - r.from) * (i as f64 / last)))
                    .collect()
            }
        }
    }
}

/// `v` rounded to 12 decimals: the nearest float to the decimal a user means.
fn round_decimals(v: f64) -> f64 {
    const SCALE: f64 = 1e12;
    (v * SCALE).round() / SCALE
}

/// The pruning stage of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruningSpec {
    /// Ranking methods to run.
    #[serde(default = "default_methods")]
    pub methods: Vec<PruneMethod>,
    /// Proportions of each topographic layer's channels to zero.
    #[serde(default = "default_proportions")]
    pub proportions: Proportions,
    /// Seed of the `random` method.
    #[serde(default)]
    pub seed: u64,
    /// How a data set evaluated on windows (BirdDCASE) is tested after pruning: every
    /// one-second window with the logits averaged per clip (`windows`, as during training;
    /// the default), or each clip whole in one input (`whole`, as the reference's
    /// `scripts/pruning/evaluate.py` does). Other data sets' examples are whole already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips: Option<ClipEvaluation>,
}

/// How clips longer than a second are evaluated after pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClipEvaluation {
    /// Every one-second window, the logits averaged per clip.
    #[default]
    Windows,
    /// The whole clip in one input (a batch's shorter clips padded with zeros after
    /// normalisation, as the reference pads short clips).
    Whole,
}

fn default_methods() -> Vec<PruneMethod> {
    vec![PruneMethod::L2]
}

fn default_proportions() -> Proportions {
    Proportions::Range(ProportionRange {
        from: 0.0,
        to: 1.0,
        steps: 101,
    })
}
