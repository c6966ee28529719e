//! Training-mode batch normalisation, optionally followed by ReLU or by a residual add
//! and ReLU (ResNet's block ending), as one CPU op with its backward.
//!
//! candle-nn's `BatchNorm` in training copies the input into channel-major order, runs a
//! dozen element-wise passes (each result kept for the backward), and copies back; ReLU
//! is one more pass and one more kept tensor, a residual add two more, and each of
//! their backwards several. Here the forward reads the input three times (its mean, its
//! variance around that, the output) and keeps only the input and the output; the
//! backward reads them twice more (its two sums in one pass, then the gradient). The
//! per-channel sums (`lanes::channel_sums`: f32 lanes along each plane, or on small
//! planes along the batch, added up in f64) run in a fixed order, so results do not
//! depend on scheduling.

use std::sync::{Arc, Mutex};

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail,
};
use rayon::prelude::*;

use crate::lanes::{Planes, channel_sums};
use crate::simd::vectorized;
use crate::storage::f32_slice;

/// Per-channel batch statistics of one forward pass.
#[derive(Debug, Clone, Default)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    /// Biased (divided by the element count), as used to normalise.
    pub var: Vec<f32>,
    /// Elements per channel (`batch * height * width`).
    pub count: usize,
}

/// An input's shape, as the per-channel sums take it.
impl Planes {
    fn of(shape: &Shape) -> Result<Planes> {
        let dims = shape.dims();
        if dims.len() < 2 {
            bail!("batch_norm: input must have a channel dimension, got {dims:?}")
        }
        Ok(Planes {
            batch: dims[0],
            channels: dims[1],
            plane: dims[2..].iter().product(),
        })
    }

    fn count(&self) -> usize {
        self.batch * self.plane
    }
}

/// What follows the normalisation, in the same pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epilogue {
    None,
    Relu,
    /// `relu(. + residual)`; the op's arguments are then `(x, [gamma; beta], residual)`.
    AddRelu,
}

impl Epilogue {
    /// Whether the output went through a ReLU (its gradient is masked by `y > 0`).
    fn relu(self) -> bool {
        self != Epilogue::None
    }
}

/// `y = epilogue(gamma * (x - mean) / sqrt(var + eps) + beta)` with the batch's
/// statistics.
struct Forward {
    eps: f64,
    epilogue: Epilogue,
    /// Filled by the forward: read by the layer (running statistics) and the backward.
    stats: Arc<Mutex<BatchStats>>,
}

impl Forward {
    fn new(eps: f64, epilogue: Epilogue) -> Forward {
        Forward {
            eps,
            epilogue,
            stats: Arc::new(Mutex::new(BatchStats::default())),
        }
    }

    fn stats(&self) -> Result<BatchStats> {
        take_stats(&self.stats)
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
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let d = Planes::of(l1.shape())?;
        let x = f32_slice(s1, l1, "batch_norm", "input")?;
        let (gamma, beta, residual) = if self.epilogue == Epilogue::AddRelu {
            let packed = f32_slice(s2, l2, "batch_norm", "weight and bias")?;
            let residual = residual_slice(s3, l3, l1)?;
            let (gamma, beta) = packed.split_at(packed.len() / 2);
            (gamma, beta, Some(residual))
        } else {
            let gamma = f32_slice(s2, l2, "batch_norm", "weight")?;
            let beta = f32_slice(s3, l3, "batch_norm", "bias")?;
            (gamma, beta, None)
        };
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
        let planes = [x, x, x];
        let sums = channel_sums(d, planes, &vec![0f32; d.channels], |_, x, _, _| [x]);
        let means: Vec<f32> = sums.iter().map(|[sum]| (sum / m) as f32).collect();
        // The second pass around the f32 mean: exact enough, and no cancellation.
        let centred = channel_sums(d, planes, &means, |mu, x, _, _| [(x - mu) * (x - mu)]);
        let (mean, var): (Vec<f32>, Vec<f32>) = sums
            .iter()
            .zip(&centred)
            .zip(&means)
            .map(|(([sum], [centred]), &mu)| {
                let shift = f64::from(mu) - sum / m;
                (mu, (centred / m - shift * shift) as f32)
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
        let y = affine_channels(x, d, &scale, &shift, self.epilogue.relu(), residual);
        *lock_stats(&self.stats)? = BatchStats {
            mean,
            var,
            count: d.count(),
        };
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        arg2: &Tensor,
        _arg3: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats()?;
        let channels = stats.mean.len();
        let add = self.epilogue == Epilogue::AddRelu;
        let gamma = if add {
            arg2.narrow(0, 0, channels)?
        } else {
            arg2.clone()
        };
        let op = Backward {
            eps: self.eps,
            relu: self.epilogue.relu(),
            emit_dz: add,
            stats,
            gamma: gamma.to_vec1::<f32>()?,
        };
        let packed = x.apply_op3_no_bwd(res, &grad.contiguous()?, &op)?;
        let n = x.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        if add {
            // The residual's gradient is the one before the ReLU; the weight's and the
            // bias's stay packed, as their argument is.
            let dz = packed.narrow(0, n, n)?.reshape(x.shape())?;
            let dgb = packed.narrow(0, 2 * n, 2 * channels)?;
            return Ok((Some(dx), Some(dgb), Some(dz)));
        }
        let dgamma = packed.narrow(0, n, channels)?;
        let dbeta = packed.narrow(0, n + channels, channels)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// `(x, y, dy)` to `dx`, (`dz`,) `dgamma`, `dbeta`, packed in one flat tensor (an op
/// has one output); `dz` is the gradient before the ReLU, the residual's.
struct Backward {
    eps: f64,
    relu: bool,
    emit_dz: bool,
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
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let d = Planes::of(l1.shape())?;
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
        let dz = |y: f32, dy: f32| if relu && y <= 0.0 { 0.0 } else { dy };
        // dbeta = sum dz, dgamma = sum dz * xhat, in one pass.
        let (dbeta, dgamma): (Vec<f64>, Vec<f64>) =
            channel_sums(d, [x, y, dy], mean, |mu, x, y, dy| {
                let g = dz(y, dy);
                [g, g * (x - mu)]
            })
            .iter()
            .zip(&invstd)
            .map(|(&[dbeta, dxhat], invstd)| (dbeta, dxhat * invstd))
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
        let dz_len = if self.emit_dz { total } else { 0 };
        let mut out = vec![0f32; total + dz_len + 2 * d.channels];
        let (dx, rest) = out.split_at_mut(total);
        let (dz_out, rest) = rest.split_at_mut(dz_len);
        let plane = d.plane.max(1);
        let image = plane * d.channels.max(1);
        // One pass writes dx and, for the residual, dz too; in parallel over images
        // (a plane can be 2 x 2), each image's planes under vector dispatch.
        let x_dy = x
            .par_chunks(image)
            .zip(y.par_chunks(image).zip(dy.par_chunks(image)));
        if self.emit_dz {
            dx.par_chunks_mut(image)
                .zip(dz_out.par_chunks_mut(image))
                .zip(x_dy)
                .for_each(|((dx, dz_out), (x, (y, dy)))| {
                    vectorized(
                        #[inline(always)]
                        || {
                            let planes = dx.chunks_mut(plane).zip(dz_out.chunks_mut(plane));
                            let inputs = x.chunks(plane).zip(y.chunks(plane).zip(dy.chunks(plane)));
                            for (&(k, kb, kg, mu), ((dx, dz_out), (x, (y, dy)))) in
                                coef.iter().zip(planes.zip(inputs))
                            {
                                for (((dx, v), &x), (&y, &dy)) in
                                    dx.iter_mut().zip(dz_out).zip(x).zip(y.iter().zip(dy))
                                {
                                    let g = dz(y, dy);
                                    *v = g;
                                    *dx = k * g - kb - (x - mu) * kg;
                                }
                            }
                        },
                    )
                });
        } else {
            dx.par_chunks_mut(image)
                .zip(x_dy)
                .for_each(|(dx, (x, (y, dy)))| {
                    vectorized(
                        #[inline(always)]
                        || {
                            let inputs = x.chunks(plane).zip(y.chunks(plane).zip(dy.chunks(plane)));
                            for (&(k, kb, kg, mu), (dx, (x, (y, dy)))) in
                                coef.iter().zip(dx.chunks_mut(plane).zip(inputs))
                            {
                                for ((dx, &x), (&y, &dy)) in
                                    dx.iter_mut().zip(x).zip(y.iter().zip(dy))
                                {
                                    *dx = k * dz(y, dy) - kb - (x - mu) * kg;
                                }
                            }
                        },
                    )
                });
        }
        for c in 0..d.channels {
            rest[c] = dgamma[c] as f32;
            rest[d.channels + c] = dbeta[c] as f32;
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// `[relu](x * scale_c + shift_c [+ residual])` for every channel `c`, in parallel over
/// planes.
fn affine_channels(
    x: &[f32],
    d: Planes,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    let plane = d.plane.max(1);
    let image = plane * d.channels.max(1);
    let finish = |v: f32| if relu { v.max(0.0) } else { v };
    // In parallel over images (a plane can be 2 x 2), each image's planes under vector
    // dispatch.
    match residual {
        Some(r) => y
            .par_chunks_mut(image)
            .zip(x.par_chunks(image).zip(r.par_chunks(image)))
            .for_each(|(y, (x, r))| {
                vectorized(
                    #[inline(always)]
                    || {
                        let planes = y
                            .chunks_mut(plane)
                            .zip(x.chunks(plane).zip(r.chunks(plane)));
                        for ((&a, &b), (y, (x, r))) in scale.iter().zip(shift).zip(planes) {
                            for ((y, &x), &r) in y.iter_mut().zip(x).zip(r) {
                                *y = finish(x * a + b + r);
                            }
                        }
                    },
                )
            }),
        None => y
            .par_chunks_mut(image)
            .zip(x.par_chunks(image))
            .for_each(|(y, x)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let planes = y.chunks_mut(plane).zip(x.chunks(plane));
                        for ((&a, &b), (y, x)) in scale.iter().zip(shift).zip(planes) {
                            for (y, &x) in y.iter_mut().zip(x) {
                                *y = finish(x * a + b);
                            }
                        }
                    },
                )
            }),
    }
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

impl Eval {
    /// `grad * scale_c` on every channel: the gradient through the affine map.
    fn scaled(&self, grad: &Tensor) -> Result<Tensor> {
        let shape: Vec<usize> = (0..grad.rank())
            .map(|i| if i == 1 { self.scale.len() } else { 1 })
            .collect();
        grad.broadcast_mul(&Tensor::from_slice(&self.scale, shape, grad.device())?)
    }

    /// The input's dimensions, checked against the layer's channels.
    fn dims(&self, layout: &Layout) -> Result<Planes> {
        let d = Planes::of(layout.shape())?;
        if d.channels != self.scale.len() {
            bail!(
                "batch_norm: input has {} channels, the layer {}",
                d.channels,
                self.scale.len()
            )
        }
        Ok(d)
    }
}

/// The gradient before a ReLU whose output is `y`: `grad` where `y > 0`.
fn relu_grad(y: &Tensor, grad: &Tensor) -> Result<Tensor> {
    grad * y.gt(0.0)?.to_dtype(grad.dtype())?
}

/// The residual's values, checked to have the input's shape.
fn residual_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    input: &Layout,
) -> Result<&'a [f32]> {
    if layout.shape() != input.shape() {
        bail!(
            "batch_norm: residual {:?} does not match input {:?}",
            layout.shape().dims(),
            input.shape().dims()
        )
    }
    f32_slice(storage, layout, "batch_norm", "residual")
}

impl CustomOp1 for Eval {
    fn name(&self) -> &'static str {
        "fast-batch-norm-eval"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        let d = self.dims(layout)?;
        let x = f32_slice(storage, layout, "batch_norm", "input")?;
        let y = affine_channels(x, d, &self.scale, &self.shift, self.relu, None);
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = if self.relu {
            relu_grad(res, grad)?
        } else {
            grad.clone()
        };
        self.scaled(&grad).map(Some)
    }
}

/// Evaluation-mode `relu(batch_norm(x) + residual)`, ResNet's block ending; its backward
/// reaches the input and the residual.
struct EvalAddRelu(Eval);

impl CustomOp2 for EvalAddRelu {
    fn name(&self) -> &'static str {
        "fast-batch-norm-add-relu-eval"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let d = self.0.dims(l1)?;
        let x = f32_slice(s1, l1, "batch_norm", "input")?;
        let r = residual_slice(s2, l2, l1)?;
        let y = affine_channels(x, d, &self.0.scale, &self.0.shift, true, Some(r));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _residual: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dz = relu_grad(res, grad)?;
        Ok((Some(self.0.scaled(&dz)?), Some(dz)))
    }
}

/// The folded per-channel affine map of evaluation mode.
fn fold_eval(
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<Eval> {
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
    Ok(Eval { scale, shift, relu })
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
    let op = fold_eval(gamma, beta, running_mean, running_var, eps, relu)?;
    x.contiguous()?.apply_op1(op)
}

/// Evaluation-mode `relu(batch_norm(x) + residual)` with the running statistics, as one
/// pass.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_add_relu_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    residual: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let op = fold_eval(gamma, beta, running_mean, running_var, eps, false)?;
    x.contiguous()?
        .apply_op2(&residual.contiguous()?, EvalAddRelu(op))
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
    let epilogue = if relu { Epilogue::Relu } else { Epilogue::None };
    let op = Forward::new(eps, epilogue);
    let stats = Arc::clone(&op.stats);
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, take_stats(&stats)?))
}

/// `relu(batch_norm(x) + residual)` in training mode, ResNet's block ending, as one op
/// (forward and backward); returns the output and the batch statistics.
pub fn batch_norm_add_relu_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    residual: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStats)> {
    let op = Forward::new(eps, Epilogue::AddRelu);
    let stats = Arc::clone(&op.stats);
    // The op has three arguments: the weight and bias travel as one (their gradients
    // flow back through the concatenation).
    let packed = Tensor::cat(&[gamma, beta], 0)?;
    let y = x
        .contiguous()?
        .apply_op3(&packed, &residual.contiguous()?, op)?;
    Ok((y, take_stats(&stats)?))
}

fn lock_stats(stats: &Mutex<BatchStats>) -> Result<std::sync::MutexGuard<'_, BatchStats>> {
    stats
        .lock()
        .map_err(|_| candle_core::Error::Msg("batch_norm: poisoned statistics".into()))
}

fn take_stats(stats: &Mutex<BatchStats>) -> Result<BatchStats> {
    lock_stats(stats).map(|s| s.clone())
}
