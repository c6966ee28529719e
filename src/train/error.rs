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
    #[error("probe set: {0}")]
    Probe(crate::topography::MissingClasses),
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
    #[error("model.init: {path}: {message}")]
    Init { path: PathBuf, message: String },
    #[error("export of {path}: {message}")]
    Export { path: PathBuf, message: String },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("the {} split is empty", split.name())]
    EmptySplit { split: crate::results::SplitKind },
    /// A value of the run that cannot be turned into text (a float JSON cannot hold).
    #[error("cannot serialise {what}: {message}")]
    Serialise { what: &'static str, message: String },
    /// A `layer_weights` entry naming no tapped conv of the model.
    #[error(
        "layer_weights: `{layer}` is not a tapped conv of this model{hint}; its tapped convs: {taps}"
    )]
    UnknownLayerWeight {
        layer: String,
        /// ` (did you mean `x`?)`, or empty.
        hint: String,
        taps: String,
    },
    /// The worker pool failed: its threads could not start, or a worker panicked.
    #[error("the worker pool failed: {0}")]
    Workers(String),
}

/// Whose fault a failure is: the run's (its data, its numbers, its configuration), which
/// fails that run and lets the others go on, or the machine's (a results folder that
/// cannot be written, a broken worker pool), which stops the plan and leaves the run
/// resumable, since any other run would meet it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Run,
    Machine,
}

impl EngineError {
    pub fn fault(&self) -> Fault {
        match self {
            EngineError::Results(crate::results::ResultsError::Write { .. })
            | EngineError::Workers(_) => Fault::Machine,
            _ => Fault::Run,
        }
    }
}
