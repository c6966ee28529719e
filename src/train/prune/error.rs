//! Errors of the pruning stage; each names the parameter or file concerned.

use crate::results::ResultsError;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("cannot prune `{name}`: no such parameter in the model")]
    MissingParameter { name: String },
    #[error(
        "cannot prune `{name}`: expected (out_channels, ...) with at least one channel, got shape {shape:?}"
    )]
    Shape { name: String, shape: Vec<usize> },
    #[error("cannot prune `{name}`: bias has shape {shape:?}, expected ({channels},)")]
    BiasShape {
        name: String,
        shape: Vec<usize>,
        channels: usize,
    },
    #[error("tensor operation failed while pruning `{name}`")]
    Tensor {
        name: String,
        #[source]
        source: candle_core::Error,
    },
    #[error(transparent)]
    Results(#[from] ResultsError),
}

pub type Result<T> = std::result::Result<T, PruneError>;
