//! Training-mode batch normalisation, optionally followed by ReLU, as one CPU op with
//! its backward.
//!
//! candle-nn's `BatchNorm` in training copies the input into channel-major order, runs a
//! dozen element-wise passes (each result kept for the backward), and copies back; ReLU
//! is one more pass and one more kept tensor. Here the forward reads the input twice
//! (statistics, then output) and keeps only the input and the output; the backward
//! reads them twice more. Per-channel sums run in parallel over channels, in f64, in a
//! fixed order, so results do not depend on scheduling.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::storage::f32_slice;

/// Per-channel batch statistics of one forward pass.
#[derive(Debug, Clone, Default)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    /// Biased (divided by the element count), as used to normalise.
    pub var: Vec<f32>,
    /// Elements per channel (`batch * height * width`).
    pub count: usize,
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    channels: usize,
    plane: usize,
}

impl Dims {
    fn of(shape: &Shape) -> Result<Dims> {
        let dims = shape.dims();
        if dims.len() < 2 {
            bail!("batch_norm: input must have a channel dimension, got {dims:?}")
        }
        Ok(Dims {
            batch: dims[0],
            channels: dims[1],
            plane: dims[2..].iter().product(),
        })
    }

    fn count(&self) -> usize {
        self.batch * self.plane
    }

    /// Sum over channel `c`'s elements of `f(index)`, in f64.
    fn channel_sum(&self, c: usize, f: impl Fn(usize) -> f64) -> f64 {
        let mut total = 0f64;
        for n in 0..self.batch {
            let start = (n * self.channels + c) * self.plane;
            total += (start..start + self.plane).map(&f).sum::<f64>();
        }
        total
    }
}

/// `y = [relu](gamma * (x - mean) / sqrt(var + eps) + beta)` with the batch's statistics.
struct Forward {
    eps: f64,
    relu: bool,
    /// Filled by the forward: read by the layer (running statistics) and the backward.
    stats: Arc<Mutex<BatchStats>>,
}

impl Forward {
    fn stats(&self) -> Result<BatchStats> {
        self.stats
            .lock()
            .map(|s| s.clone())
            .map_err(|_| candle_core::Error::Msg("batch_norm: poisoned statistics".into()))
    }
}

impl CustomOp3 for Forward {
    fn name(&self) -> &'static str {
        "fast-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(l1.shape())?;
        let x = f32_slice(s1, l1, "batch_norm", "input")?;
        let gamma = f32_slice(s2, l2, "batch_norm", "weight")?;
        let beta = f32_slice(s3, l3, "batch_norm", "bias")?;
        if gamma.len() != d.channels || beta.len() != d.channels {
            bail!(
                "batch_norm: {} channels but weight {} and bias {}",
                d.channels,
                gamma.len(),
                beta.len()
            )
        }
        if d.count() < 2 {
            bail!("batch_norm: training needs more than one value per channel")
        }
        let m = d.count() as f64;
        let (mean, var): (Vec<f32>, Vec<f32>) = (0..d.channels)
            .into_par_iter()
            .map(|c| {
                let mean = d.channel_sum(c, |i| f64::from(x[i])) / m;
                let var = d.channel_sum(c, |i| (f64::from(x[i]) - mean).powi(2)) / m;
                (mean as f32, var as f32)
            })
            .unzip();
        // y = x * scale + shift per channel.
        let (scale, shift): (Vec<f32>, Vec<f32>) = (0..d.channels)
            .map(|c| {
                let invstd = 1.0 / (f64::from(var[c]) + self.eps).sqrt();
                let scale = f64::from(gamma[c]) * invstd;
                (
                    scale as f32,
                    (f64::from(beta[c]) - f64::from(mean[c]) * scale) as f32,
                )
            })
            .unzip();
        let y = affine_channels(x, d, &scale, &shift, self.relu);
        let mut stats = self
            .stats
            .lock()
            .map_err(|_| candle_core::Error::Msg("batch_norm: poisoned statistics".into()))?;
        *stats = BatchStats {
            mean,
            var,
            count: d.count(),
        };
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats()?;
        let channels = stats.mean.len();
        let op = Backward {
            eps: self.eps,
            relu: self.relu,
            stats,
            gamma: gamma.to_vec1::<f32>()?,
        };
        let packed = x.apply_op3_no_bwd(res, &grad.contiguous()?, &op)?;
        let n = x.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dgamma = packed.narrow(0, n, channels)?;
        let dbeta = packed.narrow(0, n + channels, channels)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// `(x, y, dy)` to `dx`, `dgamma`, `dbeta`, packed in one flat tensor (an op has one
/// output).
struct Backward {
    eps: f64,
    relu: bool,
    stats: BatchStats,
    gamma: Vec<f32>,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "fast-batch-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(l1.shape())?;
        let x = f32_slice(s1, l1, "batch_norm", "input")?;
        let y = f32_slice(s2, l2, "batch_norm", "output")?;
        let dy = f32_slice(s3, l3, "batch_norm", "output gradient")?;
        if y.len() != x.len() || dy.len() != x.len() || self.stats.mean.len() != d.channels {
            bail!("batch_norm backward: shapes do not match the forward's")
        }
        let m = d.count() as f64;
        let invstd: Vec<f64> = self
            .stats
            .var
            .iter()
            .map(|&v| 1.0 / (f64::from(v) + self.eps).sqrt())
            .collect();
        let mean = &self.stats.mean;
        let relu = self.relu;
        // Gradient before the ReLU: dy where the output is positive.
        let dz = |i: usize| -> f64 {
            if relu && y[i] <= 0.0 {
                0.0
            } else {
                f64::from(dy[i])
            }
        };
        // dbeta = sum dz, dgamma = sum dz * xhat.
        let (dbeta, dgamma): (Vec<f64>, Vec<f64>) = (0..d.channels)
            .into_par_iter()
            .map(|c| {
                let mu = f64::from(mean[c]);
                let dbeta = d.channel_sum(c, dz);
                let dxhat = d.channel_sum(c, |i| dz(i) * (f64::from(x[i]) - mu)) * invstd[c];
                (dbeta, dxhat)
            })
            .unzip();
        // dx = gamma * invstd / m * (m * dz - dbeta - xhat * dgamma)
        let coef: Vec<(f32, f32, f32, f32)> = (0..d.channels)
            .map(|c| {
                let k = f64::from(self.gamma[c]) * invstd[c];
                (
                    k as f32,
                    (k * dbeta[c] / m) as f32,
                    (k * dgamma[c] * invstd[c] / m) as f32,
                    mean[c],
                )
            })
            .collect();
        let total = x.len();
        let mut out = vec![0f32; total + 2 * d.channels];
        let (dx, rest) = out.split_at_mut(total);
        dx.par_chunks_mut(d.plane.max(1))
            .enumerate()
            .for_each(|(p, dx)| {
                let (k, kb, kg, mu) = coef[p % d.channels];
                let start = p * d.plane;
                for (j, dx) in dx.iter_mut().enumerate() {
                    let i = start + j;
                    let g = if relu && y[i] <= 0.0 { 0.0 } else { dy[i] };
                    *dx = k * g - kb - (x[i] - mu) * kg;
                }
            });
        for c in 0..d.channels {
            rest[c] = dgamma[c] as f32;
            rest[d.channels + c] = dbeta[c] as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from(total + 2 * d.channels)))
    }
}

/// `[relu](x * scale_c + shift_c)` for every channel `c`, in parallel over planes.
fn affine_channels(x: &[f32], d: Dims, scale: &[f32], shift: &[f32], relu: bool) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(d.plane.max(1))
        .zip(x.par_chunks(d.plane.max(1)))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let (a, b) = (scale[i % d.channels], shift[i % d.channels]);
            for (y, &x) in y.iter_mut().zip(x) {
                let v = x * a + b;
                *y = if relu { v.max(0.0) } else { v };
            }
        });
    y
}

/// Evaluation-mode batch norm: a fixed affine map per channel, then ReLU if asked.
/// Its backward reaches the input only (the folded weights are constants here), which
/// is all evaluation needs.
struct Eval {
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl CustomOp1 for Eval {
    fn name(&self) -> &'static str {
        "fast-batch-norm-eval"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(layout.shape())?;
        if d.channels != self.scale.len() {
            bail!(
                "batch_norm: input has {} channels, the layer {}",
                d.channels,
                self.scale.len()
            )
        }
        let x = f32_slice(storage, layout, "batch_norm", "input")?;
        let y = affine_channels(x, d, &self.scale, &self.shift, self.relu);
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let shape: Vec<usize> = (0..res.rank())
            .map(|i| if i == 1 { self.scale.len() } else { 1 })
            .collect();
        let scale = Tensor::from_slice(&self.scale, shape, res.device())?;
        let dx = grad.broadcast_mul(&scale)?;
        if self.relu {
            let positive = res.gt(0.0)?.to_dtype(dx.dtype())?;
            dx * positive
        } else {
            Ok(dx)
        }
        .map(Some)
    }
}

/// Evaluation-mode batch norm of `x` with the running statistics, then ReLU if `relu`.
pub fn batch_norm_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    let [gamma, beta, mean, var] =
        [gamma, beta, running_mean, running_var].map(|t| t.to_dtype(candle_core::DType::F32));
    let (gamma, beta, mean, var) = (
        gamma?.to_vec1::<f32>()?,
        beta?.to_vec1::<f32>()?,
        mean?.to_vec1::<f32>()?,
        var?.to_vec1::<f32>()?,
    );
    let (scale, shift) = (0..gamma.len())
        .map(|c| {
            let a = f64::from(gamma[c]) / (f64::from(var[c]) + eps).sqrt();
            (
                a as f32,
                (f64::from(beta[c]) - f64::from(mean[c]) * a) as f32,
            )
        })
        .unzip();
    x.contiguous()?.apply_op1(Eval { scale, shift, relu })
}

/// Training-mode batch norm of `x` (`(B, C, ...)`, f32, CPU) with the batch's
/// statistics, then ReLU if `relu`; returns the output and the statistics, for the
/// running averages.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchStats)> {
    let stats = Arc::new(Mutex::new(BatchStats::default()));
    let op = Forward {
        eps,
        relu,
        stats: Arc::clone(&stats),
    };
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let stats = stats
        .lock()
        .map(|s| s.clone())
        .map_err(|_| candle_core::Error::Msg("batch_norm: poisoned statistics".into()))?;
    Ok((y, stats))
}
