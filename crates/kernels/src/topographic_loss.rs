//! One layer's topographic loss per sample as a single CPU op with its backward, for f32
//! taps whose channels all have a squared norm of at least `eps` (the clamp inactive).
//!
//! Per sample, with `Y` the `C x L` tap, `q_i = |y_i|^2`, `G = Y Y^T` and
//! `S_ij = G_ij / sqrt(q_i q_j)`: the loss is `sum_{i<j} (S_ij - T_ij)^2 / P`, `P` the
//! number of pairs. With `R_ij = (S_ij - T_ij) / P` off the diagonal (0 on it) and
//! `M_ij = R_ij / sqrt(q_i q_j)`, its gradient is
//! `dy_i = 2 sum_j M_ij y_j - 2 (sum_j R_ij S_ij) / q_i * y_i`.
//! So a sample costs two `C x C x L` gemms and two passes over its tap, where the tensor
//! form made a dozen passes over taps and `(B, C, C)` tensors, each kept for the backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::lanes::lane_sum;
use crate::storage::f32_slice;

use crate::gemm::{Mat, Store, sgemm};

/// `(batch, channels, positions per channel)` of a `(B, C, ...)` tap.
fn dims(shape: &Shape) -> Result<(usize, usize, usize)> {
    let d = shape.dims();
    if d.len() < 3 {
        bail!("topographic loss: tap must be (B, C, H, W), got {d:?}")
    }
    Ok((d[0], d[1], d[2..].iter().product()))
}

/// Shared by the loss and its gradient: one sample's similarity, computed afresh.
struct Sample {
    q: Vec<f64>,
    /// `1 / |y_i|`.
    inv: Vec<f32>,
    /// `S`, `C x C`.
    s: Vec<f32>,
}

/// The target, `C x C`, symmetric (only `i != j` is read).
#[derive(Clone)]
struct Target {
    channels: usize,
    values: std::sync::Arc<Vec<f32>>,
    pairs: f64,
}

impl Target {
    fn sample(&self, y: &[f32], l: usize) -> Result<Sample> {
        let c = self.channels;
        let q: Vec<f64> = y
            .chunks(l.max(1))
            .map(|row| lane_sum(row, row, row, |v, _, _| v * v))
            .collect();
        let mut s = vec![0f32; c * c];
        sgemm(
            &mut s,
            Mat::dense(c, c),
            y,
            Mat::dense(c, l),
            y,
            Mat::dense(c, l).t(),
            Store::Overwrite,
            1,
        )?;
        let inv: Vec<f32> = q.iter().map(|&q| (1.0 / q.sqrt()) as f32).collect();
        for (row, &a) in s.chunks_mut(c).zip(&inv) {
            for (v, &b) in row.iter_mut().zip(&inv) {
                *v *= a * b;
            }
        }
        Ok(Sample { q, inv, s })
    }

    fn loss(&self, y: &[f32], l: usize) -> Result<f32> {
        let c = self.channels;
        let Sample { s, .. } = self.sample(y, l)?;
        let mut total = 0f64;
        for i in 0..c {
            for j in (i + 1)..c {
                let r = f64::from(s[i * c + j]) - f64::from(self.values[i * c + j]);
                total += r * r;
            }
        }
        Ok((total / self.pairs) as f32)
    }

    /// `scale * d loss / d y` into `dy`.
    fn grad(&self, y: &[f32], l: usize, scale: f32, dy: &mut [f32]) -> Result<()> {
        let c = self.channels;
        let Sample { q, inv, s } = self.sample(y, l)?;
        let mut m = vec![0f32; c * c];
        let mut diag = vec![0f64; c];
        let k = (2.0 * f64::from(scale) / self.pairs) as f32;
        for i in 0..c {
            let (srow, trow) = (&s[i * c..(i + 1) * c], &self.values[i * c..(i + 1) * c]);
            let mrow = &mut m[i * c..(i + 1) * c];
            let mut sum = 0f32;
            for j in 0..c {
                // R_ij * P, zero on the diagonal.
                let r = if i == j { 0.0 } else { srow[j] - trow[j] };
                mrow[j] = k * r * inv[i] * inv[j];
                sum += r * srow[j];
            }
            diag[i] = f64::from(sum) / self.pairs;
        }
        sgemm(
            dy,
            Mat::dense(c, l),
            &m,
            Mat::dense(c, c),
            y,
            Mat::dense(c, l),
            Store::Overwrite,
            1,
        )?;
        for (i, (row, yr)) in dy.chunks_mut(l.max(1)).zip(y.chunks(l.max(1))).enumerate() {
            let k = (2.0 * f64::from(scale) * diag[i] / q[i]) as f32;
            for (d, &v) in row.iter_mut().zip(yr) {
                *d -= k * v;
            }
        }
        Ok(())
    }
}

/// Tap `(B, C, ...)` to the per-sample loss `(B,)`.
struct Loss(Target);

impl CustomOp1 for Loss {
    fn name(&self) -> &'static str {
        "topographic-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, l) = dims(layout.shape())?;
        if c != self.0.channels {
            bail!(
                "topographic loss: tap has {c} channels, target {}",
                self.0.channels
            )
        }
        let y = f32_slice(storage, layout, "topographic loss", "tap")?;
        let out = y
            .par_chunks((c * l).max(1))
            .map(|sample| self.0.loss(sample, l))
            .collect::<Result<Vec<f32>>>()?;
        Ok((CpuStorage::F32(out), Shape::from(b)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&grad, &Grad(self.0.clone()))?))
    }
}

/// `(tap, d loss_b)` to `d tap`.
struct Grad(Target);

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        "topographic-loss-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, l) = dims(l1.shape())?;
        let y = f32_slice(s1, l1, "topographic loss", "tap")?;
        let g = f32_slice(s2, l2, "topographic loss", "loss gradient")?;
        if g.len() != b || c != self.0.channels {
            bail!("topographic loss backward: shapes do not match the forward's")
        }
        let mut dy = vec![0f32; y.len()];
        dy.par_chunks_mut((c * l).max(1))
            .zip(y.par_chunks((c * l).max(1)))
            .zip(g.par_iter())
            .try_for_each(|((dy, y), &g)| self.0.grad(y, l, g, dy))?;
        Ok((CpuStorage::F32(dy), l1.shape().clone()))
    }
}

/// The per-sample loss `(B,)` of `tap` against `target` (`C x C`, row-major, symmetric),
/// through the op above. The caller checks that every channel's squared norm is at
/// least the loss's `eps`.
pub fn layer_samples(tap: &Tensor, target: &std::sync::Arc<Vec<f32>>) -> Result<Tensor> {
    let c = tap.dim(1)?;
    if target.len() != c * c || c < 2 {
        bail!("topographic loss: a {c}-channel tap needs a {c}x{c} target and 2 channels")
    }
    let op = Loss(Target {
        channels: c,
        values: std::sync::Arc::clone(target),
        pairs: (c * (c - 1) / 2) as f64,
    });
    tap.contiguous()?.apply_op1(op)
}
