//! A convolution on a plane smaller than its kernel (ResNet's last stage on 28-32 px
//! images: 3x3 kernels on 2x2 maps; VGG's on 1x1 ones) as one dense layer.
//!
//! On such a plane every output sees most of the input, and im2col multiplies by every
//! tap of every output, padding included (5 of 9 taps on a 2x2 map). The convolution is
//! a linear map of each image's `C_in x H x W` values to its `C_out x OH x OW` ones:
//! `y = x Wd^T`, with `Wd[(co, p), (ci, j)] = W[co, ci, tap]` for the tap joining output
//! `p` to input pixel `j` (zero where none does). Per channel pair that is `HW` products
//! per output instead of `kh kw` (16 instead of 36 on a 2x2 map), as one gemm whose sides
//! are the batch and the channels times the plane, where im2col's are 4 wide. The
//! backward is two more gemms, `dx = dy Wd` and `dWd = dy^T x`, and `dW` sums `dWd` back
//! onto the taps in a fixed order.

use candle_core::{Result, Shape, Tensor};
use rayon::prelude::*;

use crate::conv_rearranged::{self, Rearranged};
use crate::conv2d::Geometry;
use crate::gemm::{Mat, Store, sgemm};
use crate::scratch::Scratch;

/// Largest `Wd` (values) the dense algorithm builds. Building it is a pass over `Wd`
/// per step that the tap walk (`conv_taps.rs`, the same products) does not make: at 64
/// channels on 2x2 maps (65k values) the dense layer is still the faster (the narrow
/// ResNet-18's three such convs: 1.2-1.4 ms a step against 1.4-1.6), at 128 (262k) the
/// walk is (width 1/4: 3.2-3.4 ms against 3.8-4.2).
const MAX_DENSE: usize = 1 << 17;

/// Whether the dense map wins over im2col: fewer input pixels than taps (fewer
/// products), and a `Wd` small enough to build every step.
pub(crate) fn wins(x: &Shape, weight: &Shape, stride: usize, padding: usize) -> bool {
    match Geometry::new(x, weight, stride, padding) {
        Ok(g) => g.h * g.w < g.kh * g.kw && g.out_plane() * g.in_plane() <= MAX_DENSE,
        Err(_) => false,
    }
}

impl Geometry {
    /// The kernel tap (`ky kw + kx`) joining output `p` to input pixel `j`, if any, at
    /// `p HW + j`: the same for every channel pair, so worked out once.
    fn taps(&self) -> Vec<Option<usize>> {
        let hw = self.h * self.w;
        (0..self.l() * hw)
            .map(|pj| {
                let (p, j) = (pj / hw, pj % hw);
                let (oy, ox) = (p / self.ow, p % self.ow);
                let (iy, ix) = (j / self.w, j % self.w);
                let ky = (iy + self.padding).checked_sub(oy * self.stride)?;
                let kx = (ix + self.padding).checked_sub(ox * self.stride)?;
                (ky < self.kh && kx < self.kw).then_some(ky * self.kw + kx)
            })
            .collect()
    }

    /// `Wd`, `(C_out OH OW) x (C_in H W)` row-major, from the weight.
    fn dense_weight(&self, weight: &[f32]) -> Vec<f32> {
        let (l, hw, kk) = (self.l(), self.h * self.w, self.kh * self.kw);
        let taps = self.taps();
        let mut wd = vec![0f32; self.out_plane() * self.in_plane()];
        wd.par_chunks_mut(l * self.in_plane())
            .zip(weight.par_chunks(self.c_in * kk))
            .for_each(|(rows, kernels)| {
                for (row, taps) in rows.chunks_mut(self.in_plane()).zip(taps.chunks(hw)) {
                    for (pixels, kernel) in row.chunks_mut(hw).zip(kernels.chunks(kk)) {
                        for (v, tap) in pixels.iter_mut().zip(taps) {
                            if let Some(t) = tap {
                                *v = kernel[*t];
                            }
                        }
                    }
                }
            });
        wd
    }

    /// `dW` from `dWd`: each entry added onto its tap, outputs then pixels in order.
    fn fold_weight_grad(&self, dwd: &[f32]) -> Vec<f32> {
        let (l, hw, kk) = (self.l(), self.h * self.w, self.kh * self.kw);
        let taps = self.taps();
        let mut dw = vec![0f32; self.c_out * self.c_in * kk];
        dw.par_chunks_mut(self.c_in * kk)
            .zip(dwd.par_chunks(l * self.in_plane()))
            .for_each(|(kernels, rows)| {
                for (row, taps) in rows.chunks(self.in_plane()).zip(taps.chunks(hw)) {
                    for (pixels, kernel) in row.chunks(hw).zip(kernels.chunks_mut(kk)) {
                        for (&v, tap) in pixels.iter().zip(taps) {
                            if let Some(t) = tap {
                                kernel[*t] += v;
                            }
                        }
                    }
                }
            });
        dw
    }
}

/// The dense layer: `Wd` is the rearranged weight.
pub(crate) struct Dense;

impl Rearranged for Dense {
    const NAMES: [&'static str; 3] = [
        "dense-conv2d",
        "dense-conv2d-input-grad",
        "dense-conv2d-weight-grad",
    ];
    const WHAT: &'static str = "dense conv";

    fn rearrange(g: &Geometry, weight: &[f32]) -> Vec<f32> {
        g.dense_weight(weight)
    }

    /// `y = x Wd^T`.
    fn forward(g: &Geometry, x: &[f32], wd: &[f32]) -> Result<Vec<f32>> {
        // `Wd^T` as a view: `sgemm` lays it out for gemm (or forms `y^T`), whichever
        // copies less.
        let mut y = vec![0f32; g.batch * g.out_plane()];
        sgemm(
            &mut y,
            Mat::dense(g.batch, g.out_plane()),
            x,
            Mat::dense(g.batch, g.in_plane()),
            wd,
            Mat::dense(g.out_plane(), g.in_plane()).t(),
            Store::Overwrite,
            rayon::current_num_threads(),
        )?;
        Ok(y)
    }

    /// `dx = dy Wd`.
    fn input_grad(g: &Geometry, dy: &[f32], wd: &[f32]) -> Result<Vec<f32>> {
        let mut dx = vec![0f32; g.batch * g.in_plane()];
        sgemm(
            &mut dx,
            Mat::dense(g.batch, g.in_plane()),
            dy,
            Mat::dense(g.batch, g.out_plane()),
            wd,
            Mat::dense(g.out_plane(), g.in_plane()),
            Store::Overwrite,
            rayon::current_num_threads(),
        )?;
        Ok(dx)
    }

    /// `dWd = dy^T x`, folded onto the taps.
    fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let mut dwd = Scratch::take(g.out_plane() * g.in_plane());
        sgemm(
            &mut dwd,
            Mat::dense(g.out_plane(), g.in_plane()),
            dy,
            Mat::dense(g.batch, g.out_plane()).t(),
            x,
            Mat::dense(g.batch, g.in_plane()),
            Store::Overwrite,
            rayon::current_num_threads(),
        )?;
        Ok(g.fold_weight_grad(&dwd))
    }
}

/// `conv2d(x, weight)` as a dense layer, f32 on the CPU.
pub(crate) fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv_rearranged::conv2d::<Dense>(x, weight, stride, padding)
}
