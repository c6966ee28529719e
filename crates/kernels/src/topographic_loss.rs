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

use std::sync::{Arc, OnceLock};

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
    values: Arc<Vec<f32>>,
    pairs: f64,
}

impl Target {
    /// One sample's similarity from its channels `y` (`C x l`) and their squared norms
    /// `q` ([`squared_norms`]).
    fn sample(&self, y: &[f32], l: usize, q: &[f64]) -> Result<Sample> {
        let c = self.channels;
        let q = q.to_vec();
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

    /// The loss of one sample's similarity.
    fn loss(&self, sample: &Sample) -> f32 {
        let c = self.channels;
        let (s, t) = (&sample.s, &self.values);
        // Per row, the pairs right of the diagonal in vectorised f32 partial sums, the
        // rows added in f64.
        let total: f64 = (0..c)
            .map(|i| {
                let (row, target) = (
                    &s[i * c + i + 1..(i + 1) * c],
                    &t[i * c + i + 1..(i + 1) * c],
                );
                lane_sum(row, target, target, |s, t, _| (s - t) * (s - t))
            })
            .sum();
        (total / self.pairs) as f32
    }

    /// `scale * d loss / d y` into `dy`, from the sample's similarity.
    fn grad(&self, y: &[f32], l: usize, sample: &Sample, scale: f32, dy: &mut [f32]) -> Result<()> {
        let c = self.channels;
        let Sample { q, inv, s } = sample;
        let mut m = vec![0f32; c * c];
        let mut diag = vec![0f64; c];
        let k = (2.0 * f64::from(scale) / self.pairs) as f32;
        for i in 0..c {
            let (srow, trow) = (&s[i * c..(i + 1) * c], &self.values[i * c..(i + 1) * c]);
            let mrow = &mut m[i * c..(i + 1) * c];
            let ki = k * inv[i];
            // Every j alike (vectorised), then the diagonal taken out: R_ii = 0.
            for ((mv, (&sv, &tv)), &b) in mrow.iter_mut().zip(srow.iter().zip(trow)).zip(inv) {
                *mv = ki * (sv - tv) * b;
            }
            mrow[i] = 0.0;
            let sum = lane_sum(srow, trow, srow, |s, t, _| (s - t) * s)
                - f64::from((srow[i] - trow[i]) * srow[i]);
            diag[i] = sum / self.pairs;
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

/// Similarities kept from the forward for the backward when a batch's take at most this
/// many values (32 MiB): every tap of ResNet-18 at batch 32 but its last, and its first
/// three at batch 128, where recomputing them was a third of the loss's time.
const CACHED_VALUES: usize = 8 << 20;

/// Tap `(B, C, ...)` to the per-sample loss `(B,)`.
struct Loss {
    target: Target,
    /// Every sample's channels' squared norms, `(B, C)`: computed once, for the clamp's
    /// check, and read by the forward and a backward that recomputes.
    norms: Arc<Vec<f64>>,
    /// Each sample's similarity, when small enough to keep for the backward.
    kept: OnceLock<Arc<Vec<Sample>>>,
}

impl CustomOp1 for Loss {
    fn name(&self) -> &'static str {
        "topographic-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        let (b, c, l) = dims(layout.shape())?;
        let target = &self.target;
        if c != target.channels {
            bail!(
                "topographic loss: tap has {c} channels, target {}",
                target.channels
            )
        }
        let y = f32_slice(storage, layout, "topographic loss", "tap")?;
        if self.norms.len() != b * c {
            bail!("topographic loss: norms of another tap")
        }
        let per_sample = y
            .par_chunks((c * l).max(1))
            .zip(self.norms.par_chunks(c.max(1)));
        let out = if b * c * c <= CACHED_VALUES {
            let samples = per_sample
                .map(|(sample, q)| target.sample(sample, l, q))
                .collect::<Result<Vec<Sample>>>()?;
            let out = samples.iter().map(|s| target.loss(s)).collect();
            // A fresh op is made per call, so nothing was kept before.
            let _kept = self.kept.get_or_init(|| Arc::new(samples));
            out
        } else {
            per_sample
                .map(|(sample, q)| Ok(target.loss(&target.sample(sample, l, q)?)))
                .collect::<Result<Vec<f32>>>()?
        };
        Ok((CpuStorage::F32(out), Shape::from(b)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let op = Grad {
            target: self.target.clone(),
            norms: Arc::clone(&self.norms),
            kept: self.kept.get().cloned(),
        };
        Ok(Some(arg.apply_op2_no_bwd(&grad, &op)?))
    }
}

/// `(tap, d loss_b)` to `d tap`.
struct Grad {
    target: Target,
    norms: Arc<Vec<f64>>,
    kept: Option<Arc<Vec<Sample>>>,
}

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
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let (b, c, l) = dims(l1.shape())?;
        let y = f32_slice(s1, l1, "topographic loss", "tap")?;
        let g = f32_slice(s2, l2, "topographic loss", "loss gradient")?;
        let target = &self.target;
        let kept = self.kept.as_deref().filter(|kept| kept.len() == b);
        if g.len() != b || c != target.channels || self.norms.len() != b * c {
            bail!("topographic loss backward: shapes do not match the forward's")
        }
        let mut dy = vec![0f32; y.len()];
        dy.par_chunks_mut((c * l).max(1))
            .zip(y.par_chunks((c * l).max(1)))
            .zip(g.par_iter())
            .zip(self.norms.par_chunks(c.max(1)))
            .enumerate()
            .try_for_each(|(i, (((dy, y), &g), q))| match kept {
                Some(kept) => target.grad(y, l, &kept[i], g, dy),
                None => target.grad(y, l, &target.sample(y, l, q)?, g, dy),
            })?;
        Ok((CpuStorage::F32(dy), l1.shape().clone()))
    }
}

/// Each row's (one sample's channel's) squared norm, in f32 lanes added in f64.
fn squared_norms(y: &[f32], l: usize) -> Vec<f64> {
    y.par_chunks(l.max(1))
        .map(|row| lane_sum(row, row, row, |v, _, _| v * v))
        .collect()
}

/// The per-sample loss `(B,)` of `tap` against `target` (`C x C`, row-major, symmetric),
/// through the op above; `None` when some channel's squared norm is under the loss's
/// `eps`, where the loss clamps it and the caller's path takes over. The norms are
/// computed once, for this check and for the op.
pub fn layer_samples(
    tap: &Tensor,
    target: &std::sync::Arc<Vec<f32>>,
    eps: f64,
) -> Result<Option<Tensor>> {
    let (_, c, l) = dims(tap.shape())?;
    if target.len() != c * c || c < 2 {
        bail!("topographic loss: a {c}-channel tap needs a {c}x{c} target and 2 channels")
    }
    let tap = tap.contiguous()?;
    let norms = {
        let (storage, layout) = tap.storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else {
            bail!("topographic loss: the kernel needs the tap on the CPU")
        };
        squared_norms(f32_slice(cpu, layout, "topographic loss", "tap")?, l)
    };
    if norms.iter().any(|&q| q < eps) {
        return Ok(None);
    }
    let op = Loss {
        target: Target {
            channels: c,
            values: Arc::clone(target),
            pairs: (c * (c - 1) / 2) as f64,
        },
        norms: Arc::new(norms),
        kept: OnceLock::new(),
    };
    tap.apply_op1(op).map(Some)
}
