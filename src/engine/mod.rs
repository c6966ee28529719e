//! The training engine: data, models with topographic taps, the loss, SGD, checkpoints,
//! evaluation, topography metrics and pruning.

mod alloc;
pub mod checkpoint;
pub mod data;
mod error;
pub mod layouts;
pub mod lock;
pub mod models;
pub mod ops;
pub mod optim;
pub mod preflight;
pub mod prune;
pub mod runner;
pub mod seeds;
pub mod slurm;
pub mod stages;
pub mod train;
pub mod workers;

pub use alloc::Recycler;
pub use error::EngineError;
