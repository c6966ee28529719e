//! Which variables of a `VarMap` the optimiser updates.

use candle_core::Var;
use candle_nn::VarMap;

/// Whether a variable name is a batch-norm running statistic: it lives in the `VarMap` so
/// checkpoints keep it, but it is updated by the forward pass, never by the optimiser.
pub fn is_running_statistic(name: &str) -> bool {
    name.ends_with(".running_mean")
        || name.ends_with(".running_var")
        || name == "running_mean"
        || name == "running_var"
}

/// The variables to optimise, sorted by name, without batch-norm running statistics.
pub fn trainable_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = crate::sync::lock(varmap.data());
    let mut vars: Vec<(String, Var)> = data
        .iter()
        .filter(|(name, _)| !is_running_statistic(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}
