//! Batch norm (PyTorch's `BatchNorm2d` defaults) with an optional fused ReLU, on either
//! kernel set.

use candle_core::{ModuleT, Result, Tensor, Var};
use candle_nn::{BatchNorm, BatchNormConfig, VarBuilder};

use crate::kernels::{self, Kernels};

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// Eps 1e-5, momentum 0.1, affine, weight 1, bias 0; running mean and unbiased running
/// variance are `Var`s of the `VarMap` (so checkpoints hold them), updated in training
/// and used in evaluation. Gradients flow through the batch statistics.
pub(crate) struct Norm {
    /// candle-nn's layer: the candle kernels' path.
    bn: BatchNorm,
    running_mean: Var,
    running_var: Var,
    kernels: Kernels,
}

pub(crate) fn batch_norm(channels: usize, kernels: Kernels, vb: VarBuilder) -> Result<Norm> {
    let config = BatchNormConfig {
        eps: EPS,
        remove_mean: true,
        affine: true,
        momentum: MOMENTUM,
    };
    let bn = candle_nn::batch_norm(channels, config, vb)?;
    // The same storage as the layer's (and the VarMap's) running statistics.
    let running_mean = Var::from_tensor(bn.running_mean())?;
    let running_var = Var::from_tensor(bn.running_var())?;
    Ok(Norm {
        bn,
        running_mean,
        running_var,
        kernels,
    })
}

impl Norm {
    pub(crate) fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward(xs, train, false)
    }

    /// `relu(batch_norm(xs))`, one pass on the fast kernels.
    pub(crate) fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward(xs, train, true)
    }

    /// `relu(batch_norm(xs) + residual)`, ResNet's block ending; one op (forward and
    /// backward) when training on the fast kernels.
    pub(crate) fn forward_add_relu_t(
        &self,
        xs: &Tensor,
        residual: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        match (self.kernels, train, self.bn.weight_and_bias()) {
            (Kernels::Fast, true, Some((weight, bias))) => {
                let (ys, stats) =
                    kernels::batch_norm_add_relu_train(xs, weight, bias, residual, EPS)?;
                self.update_running(&stats)?;
                Ok(ys)
            }
            (Kernels::Fast, false, Some((weight, bias))) => kernels::batch_norm_add_relu_eval(
                xs,
                weight,
                bias,
                self.running_mean.as_tensor(),
                self.running_var.as_tensor(),
                residual,
                EPS,
            ),
            _ => (self.forward_t(xs, train)? + residual)?.relu(),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let ys = match (self.kernels, train, self.bn.weight_and_bias()) {
            (Kernels::Fast, true, Some((weight, bias))) => {
                let (ys, stats) = kernels::batch_norm_train(xs, weight, bias, EPS, relu)?;
                self.update_running(&stats)?;
                return Ok(ys);
            }
            (Kernels::Fast, false, Some((weight, bias))) => {
                return kernels::batch_norm_eval(
                    xs,
                    weight,
                    bias,
                    self.running_mean.as_tensor(),
                    self.running_var.as_tensor(),
                    EPS,
                    relu,
                );
            }
            _ => self.bn.forward_t(xs, train)?,
        };
        if relu { ys.relu() } else { Ok(ys) }
    }

    /// candle-nn's update, term for term: `r = r (1 - m) + s m`, the variance's batch
    /// term unbiased by `n / (n - 1)`.
    fn update_running(&self, stats: &kernels::BatchStats) -> Result<()> {
        let n = stats.count as f64;
        let device = self.running_mean.device();
        let mean = Tensor::from_slice(&stats.mean, stats.mean.len(), device)?;
        let var = Tensor::from_slice(&stats.var, stats.var.len(), device)?;
        self.running_mean
            .set(&((self.running_mean.as_tensor() * (1.0 - MOMENTUM))? + (mean * MOMENTUM)?)?)?;
        self.running_var.set(
            &((self.running_var.as_tensor() * (1.0 - MOMENTUM))?
                + (var * (MOMENTUM * n / (n - 1.0)))?)?,
        )?;
        Ok(())
    }
}
