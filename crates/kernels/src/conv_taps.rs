//! A stride-1 convolution on a plane smaller than its kernel, one kernel tap at a time,
//! over the pixels that tap joins (ResNet-18's and VGG's 512-channel convs on 2x2 maps,
//! where the dense map of `conv_dense.rs` is too large to build every step).
//!
//! im2col multiplies by every tap of every output, padding included: on a 2x2 map 20
//! of its 36 tap-pixel pairs are padding. Here, for each tap and output row, the outputs
//! whose tap lands inside the input are a run of columns reading a run of input columns,
//! and with the activations laid out channel, pixel, image (`[c][p][b]`) that run is one
//! product `Y[:, run] += W_tap X[:, run']` of `C_out x C_in` by `C_in x (pixels B)`: only
//! the 16 real pairs are multiplied. The weight is laid out tap-major per output channel
//! (`[co][tap][ci]`) once per step, a local transpose of each output channel's kernels,
//! and kept for the input gradient, `dX[:, run'] += W_tap^T dY[:, run]`; the weight
//! gradient sums `dY[:, run] X[:, run']^T` per tap and is laid back kernel-major.

use candle_core::{Result, Shape, Tensor};
use rayon::prelude::*;

use crate::conv_rearranged::{self, Rearranged};
use crate::conv2d::{Geometry, transpose};
use crate::gemm::{Mat, Store, sgemm};

/// Whether the tap walk applies and wins over im2col: stride 1 (so a run of outputs
/// reads a run of inputs) and fewer input pixels than the kernel has taps.
pub(crate) fn wins(x: &Shape, weight: &Shape, stride: usize, padding: usize) -> bool {
    match Geometry::new(x, weight, stride, padding) {
        Ok(g) => g.stride == 1 && g.h * g.w < g.kh * g.kw,
        Err(_) => false,
    }
}

/// One product of the walk: tap `tap` joins `pixels` outputs from output pixel `out` to
/// as many inputs from input pixel `inp` (row-major pixel indices).
#[derive(Debug, Clone, Copy)]
struct Run {
    tap: usize,
    out: usize,
    inp: usize,
    pixels: usize,
}

impl Geometry {
    /// Every run, taps then output rows in order (the gradients' summation order).
    fn runs(&self) -> Vec<Run> {
        let mut runs = Vec::new();
        for ky in 0..self.kh {
            for kx in 0..self.kw {
                let (lo, hi) = self.valid_cols(kx);
                if lo >= hi {
                    continue;
                }
                for oy in 0..self.oh {
                    if let Some(iy) = self.source_row(oy, ky) {
                        runs.push(Run {
                            tap: ky * self.kw + kx,
                            out: oy * self.ow + lo,
                            // lo >= padding - kx at stride 1, so this is not negative.
                            inp: iy * self.w + lo + kx - self.padding,
                            pixels: hi - lo,
                        });
                    }
                }
            }
        }
        runs
    }

    /// `[co][tap][ci]` from the weight's `[co][ci][tap]`.
    fn tap_major(&self, weight: &[f32]) -> Vec<f32> {
        self.transpose_per_output(weight, self.c_in, self.kh * self.kw)
    }

    /// The weight's `[co][ci][tap]` from `[co][tap][ci]`.
    fn kernel_major(&self, taps: &[f32]) -> Vec<f32> {
        self.transpose_per_output(taps, self.kh * self.kw, self.c_in)
    }

    /// Each output channel's `rows x cols` block of `m` transposed, in parallel over
    /// output channels (each block is small and stays in cache).
    fn transpose_per_output(&self, m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let block = (rows * cols).max(1);
        let mut out = vec![0f32; self.c_out * rows * cols];
        out.par_chunks_mut(block)
            .zip(m.par_chunks(block))
            .for_each(|(dst, src)| {
                for (r, row) in src.chunks(cols.max(1)).enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        dst[c * rows + r] = v;
                    }
                }
            });
        out
    }

    /// `C x (pixels B)` at `pixel` of a `[c][p][b]` buffer of `plane` pixels.
    fn run_view(&self, channels: usize, plane: usize, pixels: usize) -> Mat {
        Mat {
            rows: channels,
            cols: pixels * self.batch,
            row_stride: plane * self.batch,
            col_stride: 1,
        }
    }

    /// Tap `t`'s `C_out x C_in` block of the tap-major weight starts at `t C_in`.
    fn tap_view(&self) -> Mat {
        Mat {
            rows: self.c_out,
            cols: self.c_in,
            row_stride: self.kh * self.kw * self.c_in,
            col_stride: 1,
        }
    }
}

/// The tap walk: the tap-major weight is the rearranged one.
pub(crate) struct Taps;

impl Rearranged for Taps {
    const NAMES: [&'static str; 3] = [
        "taps-conv2d",
        "taps-conv2d-input-grad",
        "taps-conv2d-weight-grad",
    ];
    const WHAT: &'static str = "tap conv";

    fn rearrange(g: &Geometry, weight: &[f32]) -> Vec<f32> {
        g.tap_major(weight)
    }

    /// `Y[:, run] += W_tap X[:, run']`.
    fn forward(g: &Geometry, x: &[f32], taps: &[f32]) -> Result<Vec<f32>> {
        let (b, plane, l) = (g.batch, g.h * g.w, g.l());
        let xt = transpose(x, b, g.in_plane());
        let mut yt = vec![0f32; g.out_plane() * b];
        for run in g.runs() {
            sgemm(
                &mut yt[run.out * b..],
                g.run_view(g.c_out, l, run.pixels),
                &taps[run.tap * g.c_in..],
                g.tap_view(),
                &xt[run.inp * b..],
                g.run_view(g.c_in, plane, run.pixels),
                Store::Accumulate,
                rayon::current_num_threads(),
            )?;
        }
        Ok(transpose(&yt, g.out_plane(), b))
    }

    /// `dX[:, run'] += W_tap^T dY[:, run]`.
    fn input_grad(g: &Geometry, dy: &[f32], taps: &[f32]) -> Result<Vec<f32>> {
        let (b, plane, l) = (g.batch, g.h * g.w, g.l());
        let dyt = transpose(dy, b, g.out_plane());
        let mut dxt = vec![0f32; g.in_plane() * b];
        for run in g.runs() {
            sgemm(
                &mut dxt[run.inp * b..],
                g.run_view(g.c_in, plane, run.pixels),
                &taps[run.tap * g.c_in..],
                g.tap_view().t(),
                &dyt[run.out * b..],
                g.run_view(g.c_out, l, run.pixels),
                Store::Accumulate,
                rayon::current_num_threads(),
            )?;
        }
        Ok(transpose(&dxt, g.in_plane(), b))
    }

    /// Per tap `dY[:, run] X[:, run']^T` summed over its runs, laid back kernel-major.
    fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let (b, plane, l) = (g.batch, g.h * g.w, g.l());
        let xt = transpose(x, b, g.in_plane());
        let dyt = transpose(dy, b, g.out_plane());
        // A tap no run reaches (all its outputs read padding) has a zero gradient.
        let mut dtaps = vec![0f32; g.c_out * g.kh * g.kw * g.c_in];
        for run in g.runs() {
            sgemm(
                &mut dtaps[run.tap * g.c_in..],
                g.tap_view(),
                &dyt[run.out * b..],
                g.run_view(g.c_out, l, run.pixels),
                &xt[run.inp * b..],
                g.run_view(g.c_in, plane, run.pixels).t(),
                Store::Accumulate,
                rayon::current_num_threads(),
            )?;
        }
        Ok(g.kernel_major(&dtaps))
    }
}

/// `conv2d(x, weight)` at stride 1, tap by tap, f32 on the CPU.
pub(crate) fn conv2d(x: &Tensor, weight: &Tensor, padding: usize) -> Result<Tensor> {
    conv_rearranged::conv2d::<Taps>(x, weight, 1, padding)
}
