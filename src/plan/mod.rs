//! The planner: an experiment's grid expanded into runs, each with a stable id.

mod expand;
mod id;
mod run;
mod status;

pub use expand::{Plan, PlanError, plan};
pub use run::RunConfig;
pub use status::{PlanStatus, StatusCounts, plan_status};
