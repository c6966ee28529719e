//! The topographic core: channel positions, distances, target similarities, the
//! topographic loss and the metrics of how topographic a layer is. Pure computation: no
//! file I/O beyond the CSV reader of custom layouts, no configuration types.

mod csv;
mod distance;
mod kinds;
mod loss;
mod metrics;
mod positions;

pub use csv::{read_positions, read_positions_csv};
pub use distance::{distance, distance_matrix, target_similarity};
pub use kinds::{LayerReduction, Layout, Norm};
pub use loss::{DEFAULT_EPS, LossError, LossPath, TopoLossOutput, TopographicLoss};
pub use metrics::{
    ChannelSimilarity, DistanceBin, LayerTopography, MetricsError, layer_topography, topography_of,
};
pub use positions::{Positions, PositionsError, positions};
