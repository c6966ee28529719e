//! 2D convolution (no dilation, no groups) as im2col + gemm, forward and backward, on
//! the CPU.
//!
//! candle 0.11 computes a conv's input gradient with `conv_transpose2d`, a direct loop
//! several times slower than its matrix multiply, and its weight gradient as a conv whose
//! "kernel" is the whole output gradient. Here all three products are one gemm per image
//! on the unfolded input (`cols`, `K x L` with `K = C_in * kh * kw` and `L = OH * OW`):
//! `y = W cols`, `dcols = W^T dy` folded back onto the input, `dW = sum_n dy_n cols_n^T`.
//! Images are split into one contiguous group per thread, each group summing its own
//! weight gradient, and the groups are added in order: the result does not depend on
//! scheduling, so a resumed run stays bit-identical. A 1x1 stride-1 unpadded conv
//! multiplies the input directly.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::gemm::{Mat, Store, sgemm};

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(x: &Shape, weight: &Shape, stride: usize, padding: usize) -> Result<Geometry> {
        let (batch, c_in, h, w) = x.dims4()?;
        let (c_out, wc_in, kh, kw) = weight.dims4()?;
        if wc_in != c_in {
            bail!("conv2d: input has {c_in} channels, weight expects {wc_in}")
        }
        if stride == 0 || kh == 0 || kw == 0 {
            bail!("conv2d: stride and kernel must be positive")
        }
        let (ph, pw) = (h + 2 * padding, w + 2 * padding);
        if ph < kh || pw < kw {
            bail!("conv2d: input {h}x{w} with padding {padding} is smaller than kernel {kh}x{kw}")
        }
        Ok(Geometry {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
            oh: (ph - kh) / stride + 1,
            ow: (pw - kw) / stride + 1,
        })
    }

    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn l(&self) -> usize {
        self.oh * self.ow
    }

    fn in_plane(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.c_out * self.l()
    }

    /// The input itself is the `K x L` matrix: no unfolding needed.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    /// Input row read by kernel row `ky` for output row `oy`, or `None` in the padding.
    fn source_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&y| y < self.h)
    }

    /// Range of output columns whose tap `kx` lands inside the input, and the input
    /// column of the first: `ox * stride + kx - padding in [0, w)`.
    fn valid_cols(&self, kx: usize) -> (usize, usize) {
        let s = self.stride;
        // First ox with ox * s + kx >= padding.
        let lo = self.padding.saturating_sub(kx).div_ceil(s);
        // One past the last ox with ox * s + kx - padding <= w - 1.
        let Some(last) = (self.w + self.padding).checked_sub(kx + 1) else {
            return (0, 0);
        };
        let hi = (last / s + 1).min(self.ow);
        (lo.min(hi), hi)
    }

    /// Unfolds one image (`C_in x H x W`) into `cols` (`K x L`).
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let l = self.l();
        for c in 0..self.c_in {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * l;
                    let out = &mut cols[row..row + l];
                    let (lo, hi) = self.valid_cols(kx);
                    for oy in 0..self.oh {
                        let line = &mut out[oy * self.ow..(oy + 1) * self.ow];
                        let Some(y) = self.source_row(oy, ky) else {
                            line.fill(0.0);
                            continue;
                        };
                        line[..lo].fill(0.0);
                        line[hi..].fill(0.0);
                        if lo == hi {
                            continue;
                        }
                        let src = &plane[y * self.w..(y + 1) * self.w];
                        let x0 = lo * self.stride + kx - self.padding;
                        if self.stride == 1 {
                            line[lo..hi].copy_from_slice(&src[x0..x0 + hi - lo]);
                        } else {
                            for (i, v) in line[lo..hi].iter_mut().enumerate() {
                                *v = src[x0 + i * self.stride];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Folds `cols` (`K x L`) back onto one image, adding overlapping taps; the adjoint
    /// of [`Geometry::im2col`].
    fn col2im(&self, cols: &[f32], x: &mut [f32]) {
        x.fill(0.0);
        let l = self.l();
        for c in 0..self.c_in {
            let plane = &mut x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * l;
                    let src = &cols[row..row + l];
                    let (lo, hi) = self.valid_cols(kx);
                    for oy in 0..self.oh {
                        let Some(y) = self.source_row(oy, ky).filter(|_| lo < hi) else {
                            continue;
                        };
                        let line = &src[oy * self.ow..(oy + 1) * self.ow];
                        let dst = &mut plane[y * self.w..(y + 1) * self.w];
                        let x0 = lo * self.stride + kx - self.padding;
                        for (i, v) in line[lo..hi].iter().enumerate() {
                            dst[x0 + i * self.stride] += v;
                        }
                    }
                }
            }
        }
    }

    /// Contiguous groups of images, one per thread (fewer when the batch is smaller).
    fn groups(&self) -> Vec<std::ops::Range<usize>> {
        let parts = rayon::current_num_threads().clamp(1, self.batch.max(1));
        let per = self.batch.div_ceil(parts).max(1);
        (0..self.batch)
            .step_by(per)
            .map(|s| s..(s + per).min(self.batch))
            .collect()
    }

    /// Threads left for gemm itself when the batch cannot occupy them all.
    fn gemm_threads(&self) -> usize {
        if self.batch >= rayon::current_num_threads() {
            1
        } else {
            rayon::current_num_threads()
        }
    }
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("conv2d: {what} must be f32, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("conv2d: {what} must be contiguous"),
    }
}

/// `y = conv2d(x, weight)`.
#[derive(Debug, Clone, Copy)]
struct Forward {
    stride: usize,
    padding: usize,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(l1.shape(), l2.shape(), self.stride, self.padding)?;
        let x = f32_slice(s1, l1, "input")?;
        let weight = f32_slice(s2, l2, "weight")?;
        let mut y = vec![0f32; g.batch * g.out_plane()];
        let (k, l) = (g.k(), g.l());
        let threads = g.gemm_threads();
        let scratch = if g.is_pointwise() { 0 } else { k * l };
        y.par_chunks_mut(g.out_plane().max(1))
            .zip(x.par_chunks(g.in_plane().max(1)))
            .try_for_each_init(
                || vec![0f32; scratch],
                |cols, (y, x)| {
                    let cols: &[f32] = if g.is_pointwise() {
                        x
                    } else {
                        g.im2col(x, cols);
                        cols
                    };
                    sgemm(
                        y,
                        Mat::dense(g.c_out, l),
                        weight,
                        Mat::dense(g.c_out, k),
                        cols,
                        Mat::dense(k, l),
                        Store::Overwrite,
                        threads,
                    )
                },
            )?;
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.batch, g.c_out, g.oh, g.ow)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = grad.apply_op2_no_bwd(
            weight,
            &InputGrad {
                conv: *self,
                h: x.dim(2)?,
                w: x.dim(3)?,
            },
        )?;
        let dw = x.apply_op2_no_bwd(
            &grad,
            &WeightGrad {
                conv: *self,
                kh: weight.dim(2)?,
                kw: weight.dim(3)?,
            },
        )?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `dx` from `(dy, weight)`; the input's height and width are not recoverable from the
/// output's, so they travel with the op.
struct InputGrad {
    conv: Forward,
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, _, _, _) = l1.shape().dims4()?;
        let (_, c_in, _, _) = l2.shape().dims4()?;
        let x_shape = Shape::from((batch, c_in, self.h, self.w));
        let g = Geometry::new(&x_shape, l2.shape(), self.conv.stride, self.conv.padding)?;
        if l1.shape().dims() != [batch, g.c_out, g.oh, g.ow] {
            bail!(
                "conv2d backward: gradient shape {:?} does not match output {:?}",
                l1.shape().dims(),
                [batch, g.c_out, g.oh, g.ow]
            )
        }
        let dy = f32_slice(s1, l1, "output gradient")?;
        let weight = f32_slice(s2, l2, "weight")?;
        let (k, l) = (g.k(), g.l());
        let threads = g.gemm_threads();
        let mut dx = vec![0f32; g.batch * g.in_plane()];
        dx.par_chunks_mut(g.in_plane().max(1))
            .zip(dy.par_chunks(g.out_plane().max(1)))
            .try_for_each_init(
                || vec![0f32; if g.is_pointwise() { 0 } else { k * l }],
                |dcols, (dx, dy)| {
                    // W^T (K x C_out) dy (C_out x L), straight into dx when pointwise.
                    let target: &mut [f32] = if g.is_pointwise() { dx } else { dcols };
                    sgemm(
                        target,
                        Mat::dense(k, l),
                        weight,
                        Mat::dense(g.c_out, k).t(),
                        dy,
                        Mat::dense(g.c_out, l),
                        Store::Overwrite,
                        threads,
                    )?;
                    if !g.is_pointwise() {
                        g.col2im(dcols, dx);
                    }
                    Ok::<(), candle_core::Error>(())
                },
            )?;
        Ok((CpuStorage::F32(dx), x_shape))
    }
}

/// `dW` from `(x, dy)`.
struct WeightGrad {
    conv: Forward,
    kh: usize,
    kw: usize,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c_in, _, _) = l1.shape().dims4()?;
        let (_, c_out, _, _) = l2.shape().dims4()?;
        let w_shape = Shape::from((c_out, c_in, self.kh, self.kw));
        let g = Geometry::new(l1.shape(), &w_shape, self.conv.stride, self.conv.padding)?;
        if l2.shape().dims() != [g.batch, c_out, g.oh, g.ow] {
            bail!(
                "conv2d backward: gradient shape {:?} does not match output {:?}",
                l2.shape().dims(),
                [g.batch, c_out, g.oh, g.ow]
            )
        }
        let x = f32_slice(s1, l1, "input")?;
        let dy = f32_slice(s2, l2, "output gradient")?;
        let (k, l) = (g.k(), g.l());
        let threads = g.gemm_threads();
        let partials = g
            .groups()
            .into_par_iter()
            .map(|images| {
                let mut dw = vec![0f32; c_out * k];
                let mut cols = vec![0f32; if g.is_pointwise() { 0 } else { k * l }];
                for (i, n) in images.enumerate() {
                    let x_n = &x[n * g.in_plane()..(n + 1) * g.in_plane()];
                    let dy_n = &dy[n * g.out_plane()..(n + 1) * g.out_plane()];
                    let cols: &[f32] = if g.is_pointwise() {
                        x_n
                    } else {
                        g.im2col(x_n, &mut cols);
                        &cols
                    };
                    // dy_n (C_out x L) cols^T (L x K)
                    let store = if i == 0 {
                        Store::Overwrite
                    } else {
                        Store::Accumulate
                    };
                    sgemm(
                        &mut dw,
                        Mat::dense(c_out, k),
                        dy_n,
                        Mat::dense(c_out, l),
                        cols,
                        Mat::dense(k, l).t(),
                        store,
                        threads,
                    )?;
                }
                Ok(dw)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut parts = partials.into_iter();
        let mut dw = parts.next().unwrap_or_else(|| vec![0f32; c_out * k]);
        for part in parts {
            dw.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        }
        Ok((CpuStorage::F32(dw), w_shape))
    }
}

/// `conv2d(x, weight)` with `x` `(B, C_in, H, W)` and `weight` `(C_out, C_in, kh, kw)`,
/// f32 on the CPU, through the im2col + gemm ops above.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&weight.contiguous()?, Forward { stride, padding })
}
