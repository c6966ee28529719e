//! TDANN's relative spatial correlation loss (Margalit et al. 2024) of one tapped layer
//! as a single CPU op with its backward (`topo::topography::tdann` has the definition).
//!
//! For each neighbourhood of `k` channels, with `C` the channels' centred responses
//! over the batch's images and positions (`k x N`): `G = C C^T`, spreads
//! `s_u = sqrt(G_uu)` (1 where that is 0), `R = clamp(G_uv / (s_u s_v), -1, 1)`, and the
//! loss `(1 - pearson(R_ij, T_ij over pairs i < j)) / 2` with `T` the centred distance
//! target. The layer's loss is the mean over its neighbourhoods. Backward, per
//! neighbourhood: `dR` on the pairs from the Pearson correlation, `dG` and the spreads'
//! share from `dR`, `dC = (dG + dG^T) C`, and centring's adjoint (minus each row's
//! mean). In candle's ops this was some forty graph nodes per layer per step, each a
//! pass over the layer with its own allocation, and more in the backward: on the narrow
//! models a quarter of the step for a loss whose arithmetic is a few `k x k` matrices
//! and two products. The `k x k` parts run in f64; the products in f32, as before.

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::gemm::{Mat, Store, sgemm};
use crate::lanes::f64_sum;
use crate::storage::f32_slice;

/// Lower bound of the squared spread of the pairs' correlations (TDANN's Pearson
/// divides by it).
const EPS: f64 = 1e-12;

/// One neighbourhood: its channels and its target on their pairs.
#[derive(Debug, Clone)]
pub struct Neighbourhood {
    /// The channels, in order.
    pub units: Vec<usize>,
    /// `T_ij - mean T` on pairs `i < j` of `units`, zero elsewhere, row-major `k x k`.
    pub target: Vec<f64>,
    /// The Frobenius norm of `target`.
    pub target_norm: f64,
}

/// What one neighbourhood's forward computes, kept for its backward.
struct Pass {
    /// Centred responses, `k x N` row-major.
    centred: Vec<f32>,
    /// `G = C C^T`.
    gram: Vec<f32>,
    spread: Vec<f64>,
    /// `G_uv / (s_u s_v)` before the clamp.
    raw: Vec<f64>,
    /// The pairs' mean correlation, their sum of squared deviations (unfloored), and
    /// the Pearson denominator.
    mean: f64,
    deviation: f64,
    denom: f64,
    r: f64,
}

/// The layer's `(B, C, ...)` dimensions as `(B, C, plane)`.
fn dims(shape: &Shape) -> Result<(usize, usize, usize)> {
    match shape.dims() {
        [b, c, rest @ ..] => Ok((*b, *c, rest.iter().product())),
        d => bail!("TDANN loss: a tap of shape {d:?} has no channel dimension"),
    }
}

/// The mean of `row`, summed in f64 in 8 partial sums (independent adds, which pipeline
/// and vectorise, where one running sum is a dependent add per value: a third of the
/// loss's time on the narrow models' 50k-value rows), rounded to f32.
#[inline(always)]
fn mean(row: &[f32]) -> f32 {
    (f64_sum(row) / row.len().max(1) as f64) as f32
}

/// `x` clamped to `[-1, 1]` as candle's `clamp` (a maximum, then a minimum) passes
/// gradients: fully inside, half on a bound (a tie), none beyond.
fn clamp_slope(x: f64) -> f64 {
    if x.abs() < 1.0 {
        1.0
    } else if x.abs() == 1.0 {
        0.5
    } else {
        0.0
    }
}

impl Neighbourhood {
    fn k(&self) -> usize {
        self.units.len()
    }

    /// The forward of this neighbourhood on `x`, a `(B, C, plane)` tap.
    fn pass(&self, x: &[f32], (b, c, plane): (usize, usize, usize)) -> Result<Pass> {
        let (k, n) = (self.k(), b * plane);
        if self.target.len() != k * k || self.units.iter().any(|&u| u >= c) {
            bail!("TDANN loss: a neighbourhood does not fit a layer of {c} channels")
        }
        // Row u: channel units[u]'s responses, image by image, minus their mean.
        let mut centred = vec![0f32; k * n];
        centred
            .par_chunks_mut(n.max(1))
            .zip(&self.units)
            .for_each(|(row, &unit)| {
                for (image, dst) in row.chunks_mut(plane.max(1)).enumerate() {
                    let start = (image * c + unit) * plane;
                    dst.copy_from_slice(&x[start..start + plane]);
                }
                crate::simd::vectorized(
                    #[inline(always)]
                    || {
                        let mean = mean(row);
                        for v in row.iter_mut() {
                            *v -= mean;
                        }
                    },
                );
            });
        let mut gram = vec![0f32; k * k];
        sgemm(
            &mut gram,
            Mat::dense(k, k),
            &centred,
            Mat::dense(k, n),
            &centred,
            Mat::dense(k, n).t(),
            Store::Overwrite,
            rayon::current_num_threads(),
        )?;
        // A channel that never varies gets spread 1 (TDANN's `stddev[stddev == 0] = 1`).
        let spread: Vec<f64> = (0..k)
            .map(|u| {
                let ss = f64::from(gram[u * k + u]);
                if ss == 0.0 { 1.0 } else { ss.sqrt() }
            })
            .collect();
        let raw: Vec<f64> = (0..k * k)
            .map(|uv| f64::from(gram[uv]) / (spread[uv / k] * spread[uv % k]))
            .collect();
        let pairs = (k * (k - 1) / 2) as f64;
        let upper = || (0..k).flat_map(move |i| (i + 1..k).map(move |j| i * k + j));
        let corr = |uv: usize| raw[uv].clamp(-1.0, 1.0);
        let mean = upper().map(corr).sum::<f64>() / pairs;
        let deviation = upper().map(|uv| (corr(uv) - mean).powi(2)).sum::<f64>();
        let cov = upper().map(|uv| corr(uv) * self.target[uv]).sum::<f64>();
        let denom = deviation.max(EPS).sqrt() * self.target_norm;
        Ok(Pass {
            centred,
            gram,
            spread,
            raw,
            mean,
            deviation,
            denom,
            r: cov / denom,
        })
    }

    /// `(1 - r) / 2`.
    fn loss(pass: &Pass) -> f64 {
        0.5 - 0.5 * pass.r
    }

    /// Adds `scale * d loss / d x` to `dx`, a `(B, C, plane)` gradient.
    fn backward(
        &self,
        pass: &Pass,
        scale: f64,
        dx: &mut [f32],
        (_, c, plane): (usize, usize, usize),
    ) -> Result<()> {
        let k = self.k();
        let n = pass.centred.len() / k.max(1);
        let dr = -0.5 * scale;
        // The floor holds the deviation below EPS: no slope through it there.
        let floor_slope = if pass.deviation > EPS {
            1.0
        } else if pass.deviation == EPS {
            0.5
        } else {
            0.0
        };
        let s_floored = pass.deviation.max(EPS);
        let mut dgram = vec![0f64; k * k];
        let mut dspread = vec![0f64; k];
        for i in 0..k {
            for j in i + 1..k {
                let uv = i * k + j;
                let corr = pass.raw[uv].clamp(-1.0, 1.0);
                // d r / d R_ij: the covariance's share, then the deviation's (the mean's
                // own slope cancels: the pairs' deviations sum to zero).
                let d_corr = dr
                    * (self.target[uv] / pass.denom
                        - floor_slope * pass.r * (corr - pass.mean) / s_floored);
                let d_raw = d_corr * clamp_slope(pass.raw[uv]);
                let (si, sj) = (pass.spread[i], pass.spread[j]);
                dgram[uv] += d_raw / (si * sj);
                dspread[i] -= d_raw * pass.raw[uv] / si;
                dspread[j] -= d_raw * pass.raw[uv] / sj;
            }
        }
        for u in 0..k {
            // s = sqrt(G_uu), unless G_uu is 0 (then s is the constant 1).
            if f64::from(pass.gram[u * k + u]) != 0.0 {
                dgram[u * k + u] += dspread[u] / (2.0 * pass.spread[u]);
            }
        }
        // dC = (dG + dG^T) C.
        let sym: Vec<f32> = (0..k * k)
            .map(|uv| (dgram[uv] + dgram[(uv % k) * k + uv / k]) as f32)
            .collect();
        let mut dcentred = vec![0f32; k * n];
        sgemm(
            &mut dcentred,
            Mat::dense(k, n),
            &sym,
            Mat::dense(k, k),
            &pass.centred,
            Mat::dense(k, n),
            Store::Overwrite,
            rayon::current_num_threads(),
        )?;
        // Centring's adjoint, then back to the layer's layout (a channel may sit in
        // several neighbourhoods: added).
        for (row, &unit) in dcentred.chunks_mut(n.max(1)).zip(&self.units) {
            let mean = crate::simd::vectorized(
                #[inline(always)]
                || mean(row),
            );
            for (image, src) in row.chunks(plane.max(1)).enumerate() {
                let start = (image * c + unit) * plane;
                for (d, &g) in dx[start..start + plane].iter_mut().zip(src) {
                    *d += g - mean;
                }
            }
        }
        Ok(())
    }
}

/// A tap `(B, C, ...)` to the mean of its neighbourhoods' losses, a scalar. Keeps each
/// neighbourhood's forward for the backward, which would otherwise redo it.
struct Loss {
    hoods: Arc<Vec<Neighbourhood>>,
    passes: OnceLock<Arc<Vec<Pass>>>,
}

impl CustomOp1 for Loss {
    fn name(&self) -> &'static str {
        "tdann-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        let d = dims(layout.shape())?;
        let x = f32_slice(storage, layout, "TDANN loss", "tap")?;
        let passes = self
            .hoods
            .iter()
            .map(|hood| hood.pass(x, d))
            .collect::<Result<Vec<_>>>()?;
        let total: f64 = passes.iter().map(Neighbourhood::loss).sum();
        let mean = total / self.hoods.len().max(1) as f64;
        self.passes.get_or_init(|| Arc::new(passes));
        Ok((CpuStorage::F32(vec![mean as f32]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let op = Grad {
            hoods: self.hoods.clone(),
            passes: self.passes.get().cloned(),
        };
        Ok(Some(arg.apply_op2_no_bwd(&grad, &op)?))
    }
}

/// `(tap, d loss)` to `d tap`.
struct Grad {
    hoods: Arc<Vec<Neighbourhood>>,
    /// The forward's passes, when it kept them.
    passes: Option<Arc<Vec<Pass>>>,
}

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        "tdann-loss-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let d = dims(l1.shape())?;
        let x = f32_slice(s1, l1, "TDANN loss", "tap")?;
        let &[g] = f32_slice(s2, l2, "TDANN loss", "loss gradient")? else {
            bail!("TDANN loss backward: the loss gradient must be a scalar")
        };
        let scale = f64::from(g) / self.hoods.len().max(1) as f64;
        let mut dx = vec![0f32; x.len()];
        for (i, hood) in self.hoods.iter().enumerate() {
            match self.passes.as_ref().and_then(|p| p.get(i)) {
                Some(pass) => hood.backward(pass, scale, &mut dx, d)?,
                None => hood.backward(&hood.pass(x, d)?, scale, &mut dx, d)?,
            }
        }
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// TDANN's loss of a tap `(B, C, ...)`, f32 on the CPU: the mean over `neighbourhoods`,
/// a scalar whose backward reaches the tap.
pub fn tdann_loss(tap: &Tensor, neighbourhoods: Vec<Neighbourhood>) -> Result<Tensor> {
    if neighbourhoods.is_empty() {
        bail!("TDANN loss: no neighbourhood")
    }
    if let Some(small) = neighbourhoods.iter().find(|h| h.k() < 3) {
        bail!(
            "TDANN loss: a neighbourhood of {} channels has fewer than 2 pairs",
            small.k()
        )
    }
    tap.contiguous()?.apply_op1(Loss {
        hoods: Arc::new(neighbourhoods),
        passes: OnceLock::new(),
    })
}
