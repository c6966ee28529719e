//! Optimisation: the trainable variables of a model, SGD with PyTorch's rules, and the
//! reference's learning-rate schedule.

mod schedule;
mod sgd;
mod vars;

pub use schedule::learning_rate;
pub use sgd::{OptimError, Sgd, SgdConfig};
pub use vars::{is_running_statistic, trainable_vars};
