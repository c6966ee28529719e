//! What the measures after training read (`analyses:`): which test examples, and where
//! each tapped layer's response is taken.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TapPoint;

/// The measures' inputs, for every run of an experiment (not part of a run's identity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysesSpec {
    /// The probe set: a seeded, class-balanced sample of the test split.
    #[serde(default)]
    pub probe: ProbeSpec,
    /// Where each tapped layer's response is read: `relu`, after its batch norm and ReLU
    /// (a residual block's output after the sum), as the field measures (the default); or
    /// `conv`, the conv's output before batch norm, as `topo` measured before.
    #[serde(default)]
    pub at: ResponsePoint,
}

/// How many test examples of each class the measures read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Examples per class (a class with fewer gives all it has).
    #[serde(default = "default_per_class")]
    #[schemars(range(min = 1))]
    pub per_class: usize,
}

fn default_per_class() -> usize {
    50
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            per_class: default_per_class(),
        }
    }
}

/// Where a response is read for the measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponsePoint {
    /// After the tapped conv's batch norm and ReLU: its unit's output.
    #[default]
    Relu,
    /// The conv's own output, before batch norm.
    Conv,
}

impl ResponsePoint {
    /// The taps that read it.
    pub fn tap(self) -> TapPoint {
        match self {
            ResponsePoint::Relu => TapPoint::Block,
            ResponsePoint::Conv => TapPoint::Conv,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ResponsePoint::Relu => "relu",
            ResponsePoint::Conv => "conv",
        }
    }
}
