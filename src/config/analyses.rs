//! What the measures after training read (`analyses:`): which test examples, and where
//! each tapped layer's response is taken.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DatasetKind, TapPoint};

/// The measures' inputs, for every run of an experiment (not part of a run's identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysesSpec {
    /// Which measures to compute: `category` (d′ of each class on the probe set, any data
    /// set), `orientation` (sine gratings: preferred orientation and spatial frequency,
    /// selectivity and pinwheels; image data sets) and `tonotopy` (pure tones: preferred
    /// frequency and tuning width; audio data sets). Left out: every measure that applies
    /// to the data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures: Option<Vec<Measure>>,
    /// Seeded shuffles of each map over the positions, against which its smoothness,
    /// Moran's I and pinwheel count are tested (p-values no smaller than 1 / (1 + this)).
    #[serde(default = "default_permutations")]
    #[schemars(range(min = 1))]
    pub permutations: usize,
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

fn default_permutations() -> usize {
    200
}

impl Default for AnalysesSpec {
    fn default() -> Self {
        AnalysesSpec {
            measures: None,
            permutations: default_permutations(),
            probe: ProbeSpec::default(),
            at: ResponsePoint::default(),
        }
    }
}

impl AnalysesSpec {
    /// The measures to compute on a data set of `kind`: those asked for, or every one that
    /// applies (the preflight refuses one asked for that does not apply).
    pub fn measures_for(&self, kind: DatasetKind) -> Vec<Measure> {
        match &self.measures {
            Some(m) => m.clone(),
            None => Measure::ALL
                .iter()
                .copied()
                .filter(|m| m.applies_to(kind))
                .collect(),
        }
    }
}

/// One analysis of a trained model's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Category selectivity: d′ of each class against the rest, on the probe set.
    Category,
    /// Orientation and spatial-frequency tuning to sine gratings, and pinwheels.
    Orientation,
    /// Frequency tuning to pure tones.
    Tonotopy,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::Category, Measure::Orientation, Measure::Tonotopy];

    pub fn name(self) -> &'static str {
        match self {
            Measure::Category => "category",
            Measure::Orientation => "orientation",
            Measure::Tonotopy => "tonotopy",
        }
    }

    /// Whether the measure can be taken on a data set of `kind`.
    pub fn applies_to(self, kind: DatasetKind) -> bool {
        match self {
            Measure::Category => true,
            Measure::Orientation => !kind.is_audio(),
            Measure::Tonotopy => kind.is_audio(),
        }
    }

    /// What a data set needs for it, said when it is refused.
    pub fn needs(self) -> &'static str {
        match self {
            Measure::Category => "labelled examples",
            Measure::Orientation => "images",
            Measure::Tonotopy => "audio",
        }
    }
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
