//! The paper's topographic loss (`loss: poli2023`; paper eq. 1-3, docs/reference.md,
//! "Topographic loss") in candle.
//!
//! For one layer and one sample, `y` is `(C, H*W)`; `S_ij = <y_i, y_j> / max(|y_i| |y_j|, eps)`
//! and the loss is the mean over pairs `i < j` of `(S_ij - T_ij)^2`, with `T_ij = 1/(d_ij+1)`.
//! Layers are summed (the reference) or averaged (the paper), then the batch is averaged.
//!
//! Two paths compute the same value:
//! - [`LossPath::Reference`] follows the reference: the `(B, C, C)` similarity, the pairwise
//!   clamp, the upper-triangle mask.
//! - [`LossPath::Fast`] never masks a `(B, C, C)` tensor. With `Yn` the row-normalised
//!   channels and `T` completed into a symmetric matrix with a unit diagonal,
//!   `sum_{i<j} (S-T)^2 = (|S|_F^2 - 2 <S, T> + |T|_F^2) / 2` because `S` and `T` are
//!   symmetric and `S_ii = T_ii = 1`. `|S|_F^2 = |Yn Yn^T|_F^2 = |Yn^T Yn|_F^2` is taken from
//!   the smaller Gram matrix, and when `H*W < C`, `<S, T> = sum_b <T Yn_b, Yn_b>` avoids `S`.
//!   This equals the reference exactly when the clamp never acts, which holds when every
//!   channel's squared norm is at least `eps` (then `|y_i| |y_j| >= eps` for every pair);
//!   otherwise (a dead channel) the layer falls back to the reference path.

use candle_core::{D, DType, Device, Tensor};

use super::method::{StepInputs, TopoLossOutput, TopographicMethod, combine};
use super::{LayerReduction, Norm, Positions, target_similarity};

/// The reference's `eps`.
pub const DEFAULT_EPS: f64 = 1e-8;

/// Which formula computes a layer's loss; all give the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LossPath {
    /// [`LossPath::Kernel`] for f32 taps on the CPU, else [`LossPath::Fast`], where they
    /// are exact; else the reference.
    #[default]
    Auto,
    /// The reference's `(B, C, C)` computation.
    Reference,
    /// The Frobenius identity (falls back to the reference when a channel is ~zero).
    Fast,
    /// One CPU op per layer with its own backward (`kernel.rs`); f32 taps on the CPU only,
    /// the reference when a channel is ~zero.
    Kernel,
}

/// Why the loss cannot be built from the given targets.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error("target {layer}: expected a square (C, C) matrix, found shape {shape:?}")]
    NotSquare { layer: usize, shape: Vec<usize> },
    #[error("target {layer}")]
    Tensor {
        layer: usize,
        #[source]
        source: candle_core::Error,
    },
}

/// One layer's targets, prepared for both paths.
#[derive(Debug, Clone)]
struct LayerTarget {
    channels: usize,
    /// `T_ij` for `i < j`, zero elsewhere (the reference's `triu(T, 1)`).
    upper: Tensor,
    /// 1 for `i < j`, 0 elsewhere.
    mask: Tensor,
    /// The upper triangle mirrored, with a unit diagonal.
    full: Tensor,
    /// `|full|_F^2`.
    full_sq: f64,
    /// `full`'s values, row-major, for the CPU kernel.
    full_values: std::sync::Arc<Vec<f32>>,
}

/// The topographic loss for a fixed list of tapped layers.
#[derive(Debug, Clone)]
pub struct TopographicLoss {
    layers: Vec<LayerTarget>,
    reduction: LayerReduction,
    eps: f64,
    path: LossPath,
}

impl TopographicLoss {
    /// Builds the loss from one `(C, C)` target per layer (only `i < j` is read); the
    /// targets' device and dtype are the model's.
    pub fn new(targets: &[Tensor], reduction: LayerReduction, eps: f64) -> Result<Self, LossError> {
        let layers = targets
            .iter()
            .enumerate()
            .map(|(i, t)| layer_target(i, t))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            layers,
            reduction,
            eps,
            path: LossPath::Auto,
        })
    }

    /// Builds the loss from each layer's positions: targets `1 / (d + 1)` under `norm`.
    pub fn from_positions(
        positions: &[Positions],
        norm: Norm,
        reduction: LayerReduction,
        eps: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, LossError> {
        let targets = positions
            .iter()
            .enumerate()
            .map(|(layer, p)| {
                Tensor::from_vec(target_similarity(p, norm), (p.n(), p.n()), device)
                    .and_then(|t| t.to_dtype(dtype))
                    .map_err(|source| LossError::Tensor { layer, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&targets, reduction, eps)
    }

    /// Forces a computation path (for tests and benchmarks).
    pub fn with_path(mut self, path: LossPath) -> Self {
        self.path = path;
        self
    }

    /// Number of tapped layers expected by [`TopographicLoss::forward`].
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// The loss for one tap per layer, each `(B, C, ...)` with `C` the layer's channels:
    /// each layer's averaged over the batch, then the layers combined.
    pub fn forward(&self, taps: &[Tensor]) -> candle_core::Result<TopoLossOutput> {
        if taps.len() != self.layers.len() || taps.is_empty() {
            candle_core::bail!(
                "topographic loss: {} taps for {} layers",
                taps.len(),
                self.layers.len()
            );
        }
        combine(self.per_layer(taps)?, None, self.reduction)
    }

    fn per_layer(&self, taps: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
        taps.iter()
            .zip(&self.layers)
            .enumerate()
            .map(|(i, (tap, target))| self.layer_samples(i, tap, target)?.mean_all())
            .collect()
    }

    /// One layer's loss for each sample, shape `(B,)`.
    fn layer_samples(
        &self,
        index: usize,
        tap: &Tensor,
        target: &LayerTarget,
    ) -> candle_core::Result<Tensor> {
        let dims = tap.dims();
        if dims.len() < 3 || dims[1] != target.channels || dims[0] == 0 {
            candle_core::bail!(
                "topographic loss: tap {index} has shape {dims:?}, expected (B > 0, {}, H, W)",
                target.channels
            );
        }
        let (b, c) = (dims[0], dims[1]);
        if c < 2 {
            // No pair of channels: nothing to organise (the reference divides 0 by 0).
            return Tensor::zeros(b, tap.dtype(), tap.device());
        }
        let pairs = (c * (c - 1) / 2) as f64;
        let y = tap.flatten_from(2)?;
        let kernel_fits = tap.device().is_cpu() && tap.dtype() == DType::F32;
        let kernel_wanted = match self.path {
            LossPath::Kernel => true,
            // Many channels on few positions (ResNet's layer3 and layer4): the Frobenius
            // identity's small Gram beats the kernel's C x C pass.
            LossPath::Auto => c <= 4 * y.dim(2)?,
            LossPath::Reference | LossPath::Fast => false,
        };
        // The kernel checks the clamp on the norms it computes anyway: no tensor of norms.
        if kernel_wanted
            && kernel_fits
            && let Some(samples) =
                crate::kernels::topographic_loss::layer_samples(tap, &target.full_values, self.eps)?
        {
            return Ok(samples);
        }
        let q = y.sqr()?.sum_keepdim(D::Minus1)?;
        let fast = match self.path {
            LossPath::Reference => false,
            LossPath::Auto | LossPath::Fast | LossPath::Kernel => clamp_inactive(&q, self.eps)?,
        };
        if self.path == LossPath::Kernel && fast && !kernel_fits {
            candle_core::bail!(
                "topographic loss: the kernel path needs f32 taps on the CPU, got {:?} on {:?}",
                tap.dtype(),
                tap.device()
            );
        }
        let cast = |t: &Tensor| t.to_dtype(tap.dtype());
        if fast {
            fast_samples(&y, &q, &cast(&target.full)?, target.full_sq, pairs)
        } else {
            reference_samples(
                &y,
                &q,
                &cast(&target.upper)?,
                &cast(&target.mask)?,
                self.eps,
                pairs,
            )
        }
    }
}

impl TopographicMethod for TopographicLoss {
    fn layers(&self) -> usize {
        self.layers.len()
    }

    fn layer_losses(&self, inputs: &StepInputs<'_>) -> candle_core::Result<Vec<Tensor>> {
        self.per_layer(inputs.taps)
    }
}

/// True when no channel's squared norm is below `eps`, so `max(|y_i| |y_j|, eps)` is
/// always the plain product.
fn clamp_inactive(q: &Tensor, eps: f64) -> candle_core::Result<bool> {
    let min = q.min_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(min >= eps)
}

/// The reference's computation, per sample.
fn reference_samples(
    y: &Tensor,
    q: &Tensor,
    upper: &Tensor,
    mask: &Tensor,
    eps: f64,
    pairs: f64,
) -> candle_core::Result<Tensor> {
    // max(|y_i| |y_j|, eps) as sqrt(max(q_i q_j, eps^2)): same value, and no infinite
    // derivative of the square root at an all-zero channel.
    let qq = q.broadcast_mul(&q.transpose(1, 2)?)?;
    let denom = qq.maximum(eps * eps)?.sqrt()?;
    let s = y.matmul(&y.transpose(1, 2)?)?.div(&denom)?;
    let sq = s.broadcast_sub(upper)?.sqr()?.broadcast_mul(mask)?;
    sq.sum((1, 2))?.affine(1.0 / pairs, 0.0)
}

/// The Frobenius identity, per sample; exact when the clamp is inactive.
fn fast_samples(
    y: &Tensor,
    q: &Tensor,
    full: &Tensor,
    full_sq: f64,
    pairs: f64,
) -> candle_core::Result<Tensor> {
    let (b, c, hw) = y.dims3()?;
    let yn = y.broadcast_div(&q.sqrt()?)?;
    let (s_sq, s_t) = if hw < c {
        let gram = yn.transpose(1, 2)?.matmul(&yn)?;
        let s_sq = gram.sqr()?.sum((1, 2))?;
        // <S, T> = <T Yn, Yn> per sample, all samples in one (C, C) x (C, B*HW) product.
        let by_channel = yn.transpose(0, 1)?.contiguous()?.reshape((c, b * hw))?;
        let t_yn = full.matmul(&by_channel)?;
        let s_t = (t_yn * by_channel)?.reshape((c, b, hw))?.sum((0, 2))?;
        (s_sq, s_t)
    } else {
        let s = yn.matmul(&yn.transpose(1, 2)?)?;
        let s_sq = s.sqr()?.sum((1, 2))?;
        let s_t = s.broadcast_mul(full)?.sum((1, 2))?;
        (s_sq, s_t)
    };
    let total = (s_sq - s_t.affine(2.0, 0.0)?)?.affine(1.0, full_sq)?;
    total.affine(0.5 / pairs, 0.0)
}

/// Prepares one layer's target tensors from a `(C, C)` matrix.
fn layer_target(layer: usize, target: &Tensor) -> Result<LayerTarget, LossError> {
    let shape = target.dims().to_vec();
    if shape.len() != 2 || shape[0] != shape[1] {
        return Err(LossError::NotSquare { layer, shape });
    }
    let c = shape[0];
    let err = |source| LossError::Tensor { layer, source };
    let values = target
        .to_dtype(DType::F64)
        .and_then(|t| t.to_vec2::<f64>())
        .map_err(err)?;
    let mut upper = vec![0.0; c * c];
    let mut mask = vec![0.0; c * c];
    let mut full = vec![1.0; c * c];
    let mut full_sq = c as f64;
    for i in 0..c {
        for j in (i + 1)..c {
            let t = values[i][j];
            upper[i * c + j] = t;
            mask[i * c + j] = 1.0;
            full[i * c + j] = t;
            full[j * c + i] = t;
            full_sq += 2.0 * t * t;
        }
    }
    let (device, dtype) = (target.device(), target.dtype());
    let upload = |v: Vec<f64>| {
        Tensor::from_vec(v, (c, c), device)
            .and_then(|t| t.to_dtype(dtype))
            .map_err(err)
    };
    let full_values = std::sync::Arc::new(full.iter().map(|&v| v as f32).collect());
    Ok(LayerTarget {
        channels: c,
        full_values,
        upper: upload(upper)?,
        mask: upload(mask)?,
        full: upload(full)?,
        full_sq,
    })
}
