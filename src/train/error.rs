//! Why a run could not be trained; each variant says what and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::nn::ModelError),
    #[error(transparent)]
    Optim(#[from] crate::train::optim::OptimError),
    #[error(transparent)]
    Prune(#[from] crate::train::prune::PruneError),
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
    #[error(transparent)]
    Loss(#[from] crate::topography::LossError),
    #[error(transparent)]
    Tdann(#[from] crate::topography::TdannError),
    #[error(transparent)]
    TopoLoss(#[from] crate::topography::TopoLossError),
    #[error("TopoLoss: the tapped conv `{0}` has no weight `{0}.weight`")]
    MissingWeight(String),
    #[error(transparent)]
    Positions(#[from] crate::topography::PositionsError),
    #[error(transparent)]
    Metrics(#[from] crate::topography::MetricsError),
    #[error("tensor computation failed")]
    Tensor(#[from] candle_core::Error),
    #[error(
        "epoch {epoch}: the {what} loss is {value} (not finite); lower the learning rate or lambda"
    )]
    NonFinite {
        epoch: u32,
        what: &'static str,
        value: f64,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("the {split} split is empty")]
    EmptySplit { split: &'static str },
    #[error("{0}")]
    Other(String),
}
