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
    // A poisoned lock only means another thread panicked while holding it; the map itself
    // is still whole, so read it anyway rather than fail.
    let data = match varmap.data().lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut vars: Vec<(String, Var)> = data
        .iter()
        .filter(|(name, _)| !is_running_statistic(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}
