//! The closed choices of the topographic core, shared with the configuration.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How channel positions are laid out (the paper's figure 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Regular grid (`hypercube` in the reference): `ceil(n^(1/d))` points per axis.
    Grid,
    /// Nested boxes with points at vertices and edge midpoints, denser at the centre.
    Nested,
    /// Circle in 2D, Fibonacci sphere in 3D (`hypersphere` in the reference).
    Sphere,
    /// TopoLoss's cortical sheet, 2D only: `h x w` cells, `h` the largest divisor of the
    /// channel count at most its square root, equally spaced on both axes. The 2D grid
    /// itself on a square count; a full rectangle where the grid would be partly filled.
    Sheet,
}

/// Distance between two channel positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Euclidean distance (the paper's choice).
    #[default]
    Euclidean,
    /// Manhattan distance.
    L1,
}

/// How the per-layer topographic losses are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LayerReduction {
    /// Sum over layers, as the published code does (and so the published tables).
    #[default]
    Sum,
    /// Mean over layers, as the paper's equation 3 writes it.
    Mean,
}
