//! TopoLoss (Deb et al. 2025) of one conv weight as a single CPU op with its backward.
//!
//! The weight's `C` output channels sit on an `h x w` sheet (channel `r * w + c`), each
//! cell holding its `E` flattened weights `x_k`. The blurred sheet is `Y = (Bh ⊗ Bw) X`
//! (shrink then grow back, one matrix per axis). With `a_k = |x_k|^2`, `b_k = |y_k|^2`,
//! `d_k = <x_k, y_k>` and `n_k = sqrt(max(a_k b_k, eps^2))`, the loss is
//! `1 - mean_k d_k / n_k`. With `u_k = -g / C` (`g` the upstream gradient) and `cos_k =
//! d_k / n_k`, the gradient is `Gx + (Bh ⊗ Bw)^T Gy`, where `Gx_k = u_k (y_k / n_k -
//! cos_k x_k / a_k)` and `Gy_k = u_k (x_k / n_k - cos_k y_k / b_k)` (the second terms
//! vanish where the floor holds `n_k`). In candle's ops that was some forty small
//! tensors per layer per step, each with its own allocation and graph node: on a narrow
//! ResNet-18 a fifth of the step for a loss on a few thousand weights.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};

use crate::storage::f32_slice;

/// One layer's sheet: its sides and the blur along each, row-major `h x h` and `w x w`.
#[derive(Debug, Clone)]
pub struct Sheet {
    pub h: usize,
    pub w: usize,
    pub blur_h: Arc<Vec<f32>>,
    pub blur_w: Arc<Vec<f32>>,
    /// The floor of the norms' product is `eps^2`.
    pub eps: f64,
}

impl Sheet {
    /// `(Bh ⊗ Bw) x` (or its transpose) for `x` of `h * w` cells of `e` values.
    fn blur(&self, x: &[f32], e: usize, transpose: bool) -> Vec<f32> {
        let (h, w) = (self.h, self.w);
        let at = |m: &[f32], n: usize, i: usize, j: usize| {
            if transpose {
                m[j * n + i]
            } else {
                m[i * n + j]
            }
        };
        // Rows first, then columns: the blur is separable.
        let mut rows = vec![0f32; x.len()];
        for r in 0..h {
            let out = &mut rows[r * w * e..(r + 1) * w * e];
            for r2 in 0..h {
                let k = at(&self.blur_h, h, r, r2);
                if k != 0.0 {
                    axpy(out, k, &x[r2 * w * e..(r2 + 1) * w * e]);
                }
            }
        }
        let mut out = vec![0f32; x.len()];
        for r in 0..h {
            for c in 0..w {
                let cell = &mut out[(r * w + c) * e..(r * w + c + 1) * e];
                for c2 in 0..w {
                    let k = at(&self.blur_w, w, c, c2);
                    if k != 0.0 {
                        axpy(cell, k, &rows[(r * w + c2) * e..(r * w + c2 + 1) * e]);
                    }
                }
            }
        }
        out
    }

    /// Per cell: `|x|^2`, `|y|^2`, `<x, y>` and whether the floor holds the norm.
    fn cells(&self, x: &[f32], y: &[f32], e: usize) -> Vec<Cell> {
        let floor = self.eps * self.eps;
        x.chunks(e.max(1))
            .zip(y.chunks(e.max(1)))
            .map(|(x, y)| {
                let (mut a, mut b, mut d) = (0f64, 0f64, 0f64);
                for (&p, &q) in x.iter().zip(y) {
                    let (p, q) = (f64::from(p), f64::from(q));
                    a += p * p;
                    b += q * q;
                    d += p * q;
                }
                let floored = a * b <= floor;
                let n = (a * b).max(floor).sqrt();
                Cell {
                    a,
                    b,
                    n,
                    cos: d / n,
                    floored,
                }
            })
            .collect()
    }
}

/// `out += k * x`.
fn axpy(out: &mut [f32], k: f32, x: &[f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o += k * v;
    }
}

struct Cell {
    a: f64,
    b: f64,
    n: f64,
    cos: f64,
    floored: bool,
}

/// `(C, ...)` weight to the layer's loss, a scalar.
struct Loss(Sheet);

fn dims(shape: &Shape, sheet: &Sheet) -> Result<(usize, usize)> {
    let d = shape.dims();
    let c = d.first().copied().unwrap_or(0);
    if c != sheet.h * sheet.w || c == 0 {
        bail!(
            "TopoLoss: a weight of shape {d:?} does not fill a {}x{} sheet",
            sheet.h,
            sheet.w
        )
    }
    Ok((c, d[1..].iter().product()))
}

impl CustomOp1 for Loss {
    fn name(&self) -> &'static str {
        "topoloss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        let (c, e) = dims(layout.shape(), &self.0)?;
        let x = f32_slice(storage, layout, "TopoLoss", "weight")?;
        let y = self.0.blur(x, e, false);
        let mean = self.0.cells(x, &y, e).iter().map(|k| k.cos).sum::<f64>() / c as f64;
        Ok((CpuStorage::F32(vec![(1.0 - mean) as f32]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&grad, &Grad(self.0.clone()))?))
    }
}

/// `(weight, d loss)` to `d weight`.
struct Grad(Sheet);

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        "topoloss-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let (c, e) = dims(l1.shape(), &self.0)?;
        let x = f32_slice(s1, l1, "TopoLoss", "weight")?;
        let &[g] = f32_slice(s2, l2, "TopoLoss", "loss gradient")? else {
            bail!("TopoLoss backward: the loss gradient must be a scalar")
        };
        let y = self.0.blur(x, e, false);
        let cells = self.0.cells(x, &y, e);
        let u = -f64::from(g) / c as f64;
        let mut gx = vec![0f32; x.len()];
        let mut gy = vec![0f32; x.len()];
        for (k, cell) in cells.iter().enumerate() {
            let span = k * e..(k + 1) * e;
            let (xk, yk) = (&x[span.clone()], &y[span.clone()]);
            let inv_n = u / cell.n;
            // The norm's own slope, where the floor does not hold it.
            let (sx, sy) = if cell.floored {
                (0.0, 0.0)
            } else {
                (u * cell.cos / cell.a, u * cell.cos / cell.b)
            };
            for (((gx, gy), &p), &q) in gx[span.clone()]
                .iter_mut()
                .zip(&mut gy[span.clone()])
                .zip(xk)
                .zip(yk)
            {
                let (p, q) = (f64::from(p), f64::from(q));
                *gx = (inv_n * q - sx * p) as f32;
                *gy = (inv_n * p - sy * q) as f32;
            }
        }
        let back = self.0.blur(&gy, e, true);
        for (d, b) in gx.iter_mut().zip(&back) {
            *d += b;
        }
        Ok((CpuStorage::F32(gx), l1.shape().clone()))
    }
}

/// TopoLoss of a conv `weight` `(C, ...)`, f32 on the CPU, on `sheet`: a scalar whose
/// backward reaches the weight.
pub fn topoloss(weight: &Tensor, sheet: &Sheet) -> Result<Tensor> {
    weight.contiguous()?.apply_op1(Loss(sheet.clone()))
}
