//! Stochastic gradient descent with PyTorch's rules (`torch.optim.SGD` with dampening 0,
//! no Nesterov): `g = grad + wd * p`; `buf = g` on a variable's first step, else
//! `buf = momentum * buf + g`; `p -= lr * buf`. A variable without a gradient in a step
//! is skipped and keeps its buffer, as PyTorch skips parameters whose `grad` is `None`.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::config::OptimizerSpec;

/// Errors of the optimiser.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error("momentum buffer for unknown variable `{name}`")]
    UnknownVariable { name: String },
    #[error("momentum buffer for `{name}` has shape {found:?}, the variable has {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("SGD step on `{name}` failed")]
    Tensor {
        name: String,
        #[source]
        source: candle_core::Error,
    },
}

/// SGD hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl From<&OptimizerSpec> for SgdConfig {
    fn from(spec: &OptimizerSpec) -> Self {
        SgdConfig {
            lr: spec.lr,
            momentum: spec.momentum,
            weight_decay: spec.weight_decay,
        }
    }
}

/// SGD over named variables (see the module docs for the update rule).
pub struct Sgd {
    vars: Vec<(String, Var)>,
    config: SgdConfig,
    momenta: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// An optimiser over `vars` (usually [`crate::train::optim::trainable_vars`]), with empty momenta.
    pub fn new(vars: Vec<(String, Var)>, config: SgdConfig) -> Sgd {
        Sgd {
            vars,
            config,
            momenta: BTreeMap::new(),
        }
    }

    pub fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// One update of every variable that has a gradient in `grads`.
    pub fn step(&mut self, grads: &GradStore) -> Result<(), OptimError> {
        let SgdConfig {
            lr,
            momentum,
            weight_decay,
        } = self.config;
        for (name, var) in &self.vars {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let wrap = |source| OptimError::Tensor {
                name: name.clone(),
                source,
            };
            // After a variable's first step, on the CPU: the same arithmetic in place.
            if momentum != 0.0
                && let Some(buf) = self.momenta.get(name)
                && crate::kernels::sgd::applies(&[var.as_tensor(), grad, buf])
            {
                crate::kernels::sgd::step(var.as_tensor(), grad, buf, lr, momentum, weight_decay)
                    .map_err(wrap)?;
                continue;
            }
            let p = var.as_tensor().detach();
            let mut g = grad.detach();
            if weight_decay != 0.0 {
                g = (g + (&p * weight_decay).map_err(wrap)?).map_err(wrap)?;
            }
            if momentum != 0.0 {
                let buf = match self.momenta.get(name) {
                    Some(buf) => ((buf * momentum).map_err(wrap)? + &g).map_err(wrap)?,
                    // A copy: the in-place update must never write into the gradient.
                    None => g.copy().map_err(wrap)?,
                };
                self.momenta.insert(name.clone(), buf.clone());
                g = buf;
            }
            let updated = (&p - (g * lr).map_err(wrap)?).map_err(wrap)?;
            var.set(&updated).map_err(wrap)?;
        }
        Ok(())
    }

    /// The momentum buffers, sorted by variable name (variables never stepped have none).
    pub fn momenta(&self) -> Vec<(String, Tensor)> {
        self.momenta
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    /// Restores momentum buffers saved by [`Sgd::momenta`]; buffers not given are cleared.
    pub fn load_momenta(&mut self, momenta: Vec<(String, Tensor)>) -> Result<(), OptimError> {
        let mut loaded = BTreeMap::new();
        for (name, buf) in momenta {
            let Some((_, var)) = self.vars.iter().find(|(n, _)| *n == name) else {
                return Err(OptimError::UnknownVariable { name });
            };
            if var.dims() != buf.dims() {
                return Err(OptimError::ShapeMismatch {
                    name,
                    expected: var.dims().to_vec(),
                    found: buf.dims().to_vec(),
                });
            }
            let buf = buf
                .to_device(var.device())
                .and_then(|b| b.to_dtype(var.dtype()));
            let buf = buf.map_err(|source| OptimError::Tensor {
                name: name.clone(),
                source,
            })?;
            loaded.insert(name, buf);
        }
        self.momenta = loaded;
        Ok(())
    }
}
