//! `analyses.json`: the maps of each tapped layer (a value per channel) and whether each
//! is real (smoothness against shuffles, Moran's I, pinwheels), with what they were
//! computed from, so that a later `topo run` or `topo analyse` knows whether they stand.

use serde::{Deserialize, Serialize};

use crate::config::{Measure, ResponsePoint};
use crate::topography::{MapStatistics, PinwheelCount, Quantity};

/// `analyses.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysesRecord {
    /// Hash of the settings below, the analyses' version and the best checkpoint's bytes:
    /// the record stands while it matches.
    pub key: String,
    pub measures: Vec<Measure>,
    pub at: ResponsePoint,
    pub permutations: usize,
    /// The layout the maps lie on: the run's topography, or for the baseline the 2D grid.
    pub layout: String,
    /// The stimuli shown, where a measure used any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gratings: Option<GratingsRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tones: Option<Vec<f64>>,
    pub layers: Vec<LayerAnalyses>,
    /// Wall time of the analyses.
    pub seconds: f64,
}

/// The gratings shown: orientations (degrees), frequencies (cycles per image), phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GratingsRecord {
    pub orientations: Vec<f64>,
    pub frequencies: Vec<f64>,
    pub phases: usize,
}

/// One tapped layer's maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerAnalyses {
    pub layer: String,
    pub channels: usize,
    pub maps: Vec<MapRecord>,
    /// Pinwheels of the preferred-orientation map, on a 2D lattice layout only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinwheels: Option<PinwheelCount>,
}

/// One map: a value per channel (`null` where a channel has none: it did not respond) and
/// its statistics (`null` when fewer than 3 channels have a value or they do not vary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapRecord {
    pub map: MapKind,
    pub values: Vec<Option<f64>>,
    pub statistics: Option<MapStatistics>,
}

/// What a map holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MapKind {
    /// d′ of class `class` (named `name`) against the other classes.
    Dprime { class: usize, name: String },
    /// Preferred orientation, degrees in `[0, 180)`.
    PreferredOrientation,
    /// Orientation selectivity, `1 - circular variance`.
    OrientationSelectivity,
    /// Preferred spatial frequency, log2 of cycles per image.
    PreferredSpatialFrequency,
    /// Preferred frequency, log2 of Hz.
    PreferredFrequency,
    /// Frequency tuning width at half height, octaves.
    TuningWidth,
}

impl MapKind {
    /// How its values differ.
    pub fn quantity(&self) -> Quantity {
        match self {
            MapKind::PreferredOrientation => Quantity::Angle {
                period: crate::topography::ORIENTATION_PERIOD,
            },
            _ => Quantity::Linear,
        }
    }

    /// The measure it belongs to.
    pub fn measure(&self) -> Measure {
        match self {
            MapKind::Dprime { .. } => Measure::Category,
            MapKind::PreferredOrientation
            | MapKind::OrientationSelectivity
            | MapKind::PreferredSpatialFrequency => Measure::Orientation,
            MapKind::PreferredFrequency | MapKind::TuningWidth => Measure::Tonotopy,
        }
    }

    /// A short name for tables and file names.
    pub fn label(&self) -> String {
        match self {
            MapKind::Dprime { name, .. } => format!("d′ {name}"),
            MapKind::PreferredOrientation => "preferred orientation".into(),
            MapKind::OrientationSelectivity => "orientation selectivity".into(),
            MapKind::PreferredSpatialFrequency => "preferred spatial frequency".into(),
            MapKind::PreferredFrequency => "preferred frequency".into(),
            MapKind::TuningWidth => "tuning width".into(),
        }
    }
}
