//! The topographic core: channel positions, distances, target similarities, the
//! topographic losses (the paper's, TDANN's, TopoLoss's, behind one trait) and the metrics of how topographic a layer is. Pure computation: no
//! file I/O beyond the CSV reader of custom layouts, no configuration types.

mod circular;
mod csv;
mod distance;
mod frequency;
mod kinds;
mod loss;
mod method;
mod metrics;
mod pinwheels;
mod positions;
mod probe;
mod selectivity;
mod spatial;
mod tdann;
mod topoloss;

pub use circular::{
    ORIENTATION_PERIOD, OrientationTuning, circular_difference, orientation_tuning,
};
pub use csv::{read_positions, read_positions_csv};
pub use distance::{distance, distance_matrix, target_similarity};
pub use frequency::{FrequencyTuning, frequency_tuning};
pub use kinds::{LayerReduction, Layout, Norm};
pub use loss::{DEFAULT_EPS, LossError, LossPath, TopographicLoss};
pub use method::{LayerLosses, StepInputs, TopoLossOutput, TopographicMethod, combine};
pub use metrics::{
    ChannelSimilarity, DistanceBin, LayerTopography, MetricsError, layer_topography, topography_of,
};
pub use pinwheels::{Lattice, Pinwheel, PinwheelCount, count_pinwheels};
pub use positions::{Positions, PositionsError, positions};
pub use probe::{MissingClasses, PROBE_SEED, ProbeSet};
pub use selectivity::{ClassResponses, NeighbourAgreement, Preference, neighbour_agreement};
pub use spatial::{MapStatistics, MapTest, Quantity, SmoothnessBin, map_statistics, morans_i};
pub use tdann::{Neighbourhood, Tdann, TdannError};
pub use topoloss::{TopoLoss, TopoLossError, sheet_for, sheet_positions, sheet_size};
