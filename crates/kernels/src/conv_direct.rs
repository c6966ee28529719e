//! The forward of a convolution with a short reduction (few input channels: the stems on
//! 1-3 channels, the narrow models' 4-16 channel layers and their downsampling convs)
//! computed directly, without unfolding the input.
//!
//! im2col copies every input value `kh kw` times and hands gemm a product whose inner
//! dimension (`C_in kh kw`, 9 on a grey stem) is too short for its packing to pay. Here
//! each image's planes are staged once with their padding, and an output is read in
//! "padded-row" coordinates: at stride 1, output `(y, x)` sits at `y Wp + x`
//! (`Wp = W + 2 padding`), and tap `(ky, kx)` of every output is the staged plane
//! shifted by `ky Wp + kx`. So a vector of consecutive outputs takes each tap as one
//! contiguous load (the `kw - 1` outputs a row spills past its end are computed and
//! dropped), and one load feeds `CB` output channels' fused multiply-adds (`CB / 2` with
//! AVX2, whose 16 registers then hold two vectors of outputs: [`Block`]). At stride `s`
//! the padded plane is staged as `s^2` phase planes (the cells with the same row and
//! column remainders mod `s`), in which a tap's cells for consecutive outputs are again
//! consecutive.
//!
//! Same bits as im2col's gemm: each output is one chain of fused multiply-adds from zero
//! over `(ci, ky, kx)` in order, as gemm's microkernel forms it when the reduction fits
//! one of its blocks, which [`MAX_REDUCTION`] keeps it within. So im2col's op computes
//! its forward here whenever it [`fits`], which changes no result (tested), and keeps its
//! own backward.
//!
//! `ConvAlgorithm::Direct` is the whole conv this way, for the 3x3 stride-1 convs with
//! few channels (see [`wins`]), where Winograd's products run short: this forward, the
//! input gradient as the same forward of the output gradient (the weight flipped and its
//! channel axes swapped), and the weight gradient as passes over a share of images'
//! staged planes, each keeping a block of output channels' row of taps in registers
//! (Winograd's weight gradient instead for many weights on small maps, see
//! [`MAX_OWN_WG_WEIGHTS`]). Its results differ from Winograd's and im2col's by rounding.

use candle_core::{Result, Shape, Tensor};
use pulp::bytemuck;
use rayon::prelude::*;

use crate::conv_rearranged::{self, Rearranged};
use crate::conv2d::Geometry;
use crate::winograd;

/// Output channels computed together: each loaded input vector feeds this many
/// independent accumulators (enough to hide the multiply-add latency).
const CB: usize = 8;

/// Longest reduction (`C_in kh kw`) whose forward im2col's op hands to the direct kernel
/// ([`fits`]): 16 channels of a 3x3 kernel, where it still took half im2col's time (both
/// called on the narrow ResNet-18's 8- and 16-channel maps at batch 64: 0.13 against
/// 0.35-0.44 ms). gemm never splits a reduction this short into blocks (its smallest
/// block is 512), so the order of the sums is its own. The Direct algorithm's own choice
/// ([`wins`]) goes by channels instead.
const MAX_REDUCTION: usize = 144;

/// Fixed shares of the batch the weight gradient's products are split into.
const PARTS: usize = 4;

/// Largest stride computed directly: the downsampling convs' 2.
const MAX_STRIDE: usize = 2;

/// Widest vector any instruction set gives (AVX-512: 16 lanes): the padded-row outputs
/// are rounded up to whole vectors of it.
const MAX_LANES: usize = 16;

/// Smallest map (each side) the direct algorithm takes over from Winograd's. It wins on
/// 7 x 7 maps (3 calls each at batch 32 and 8 channels: forward, input and weight
/// gradients 0.11, 0.11-0.12, 0.15-0.17 ms against Winograd's 0.27-0.29, 0.28-0.32,
/// 0.15-0.16), not on 4 x 4 ones (16 channels: 0.18-0.19, 0.14-0.16, 0.27-0.30 against
/// 0.21-0.23, 0.18-0.19, 0.12-0.13), where its weight gradient's padded rows are
/// mostly padding.
const MIN_SIDE: usize = 5;

/// Whether the direct algorithm (`ConvAlgorithm::Direct`: this forward, the same for the
/// input gradient, and [`weight_grad`]) beats the others on a 3x3 stride-1 conv: few
/// channels on both sides (the input gradient is a direct conv of the output gradient:
/// [`MAX_CHANNELS`], more on large maps) on maps of at least [`MIN_SIDE`]. Winograd's
/// products run short there, and its transforms cost more than the multiplications they
/// save; im2col's (the stems', on 1-3 channels) give gemm a reduction of 9-27 and copy
/// the input nine times.
pub(crate) fn wins(x: &Shape, weight: &Shape, stride: usize, padding: usize) -> bool {
    let (Ok((_, c_in, h, w)), Ok((c_out, ..))) = (x.dims4(), weight.dims4()) else {
        return false;
    };
    let (channels, side) = (c_in.max(c_out), h.min(w));
    winograd::fits(weight, stride, padding)
        && side >= MIN_SIDE
        && (channels <= MAX_CHANNELS || (channels <= MAX_CHANNELS_LARGE && side >= LARGE_SIDE))
}

/// Most channels (in and out) of a conv the Direct algorithm takes on any map. At 32
/// (the width-1/4 ResNet-18's second stage, 8 x 8 maps, batch 64) its forward and input
/// gradient still beat Winograd's (0.60-0.65 against 0.67-0.83 ms a call, 0.55-0.57
/// against 0.77-1.0) but its weight gradient did not (1.07-1.10 against 0.81-0.91):
/// above [`MAX_OWN_WG_WEIGHTS`] the Direct algorithm takes Winograd's weight gradient.
const MAX_CHANNELS: usize = 32;

/// Most channels it takes on maps of [`LARGE_SIDE`] and more, where its padded rows waste
/// least: 64 channels on 32 x 32 (VGG-16's first stage, batch 32: the three ops 44-54 ms
/// a step against Winograd's 108-114, in two alternating pairs). Not on 16 x 16
/// (ResNet-18's first stage, batch 32: 44-54 against 39-40 ms in three pairs; a single
/// pair on a busy machine had read the other way) nor 8 x 8; nor 128 channels (lost on
/// 8 x 8, level on 16 x 16).
const MAX_CHANNELS_LARGE: usize = 64;

/// See [`MAX_CHANNELS_LARGE`].
const LARGE_SIDE: usize = 32;

/// Most weights (`C_out C_in`) whose gradient the Direct algorithm computes itself (16
/// channels on both sides) on maps under [`OWN_WG_SIDE`]; Winograd's above (see
/// [`MAX_CHANNELS`]).
const MAX_OWN_WG_WEIGHTS: usize = 256;

/// Smallest map on which the Direct algorithm computes every weight gradient it takes
/// itself: VGG-16's 64 channels on 32 x 32, batch 32, 17-20 ms against Winograd's 41.
const OWN_WG_SIDE: usize = 32;

/// Whether the direct forward computes this conv (and beats im2col's). Not a 1x1
/// kernel: its unfolding is a plain copy and gemm's product is as fast.
pub(crate) fn fits(g: &Geometry) -> bool {
    g.stride <= MAX_STRIDE && g.kh * g.kw > 1 && g.c_in * g.kh * g.kw <= MAX_REDUCTION
}

impl Geometry {
    /// Width of a row of a phase plane: the padded input's columns `x` with the same
    /// `x mod stride`, side by side.
    fn phase_w(&self) -> usize {
        (self.w + 2 * self.padding).div_ceil(self.stride)
    }

    /// Outputs computed per channel: `oh` phase rows, rounded up to whole vectors.
    fn direct_len(&self) -> usize {
        (self.oh * self.phase_w()).div_ceil(MAX_LANES) * MAX_LANES
    }

    /// One phase plane: the padded input's cells `(y, x)` with the same
    /// `(y mod stride, x mod stride)`, at `(y / stride, x / stride)`, with room for the
    /// last vector's taps.
    fn phase_len(&self) -> usize {
        let reach = (self.kh - 1) / self.stride * self.phase_w() + (self.kw - 1) / self.stride;
        let rows = (self.h + 2 * self.padding).div_ceil(self.stride);
        (self.direct_len() + reach).max(rows * self.phase_w())
    }

    /// A staged input channel: its `stride^2` phase planes.
    fn staged_len(&self) -> usize {
        self.stride * self.stride * self.phase_len()
    }

    /// Where tap `t` (`ky kw + kx`) of an output lies from it in a staged channel.
    fn tap_offsets(&self) -> Vec<usize> {
        let s = self.stride;
        (0..self.kh * self.kw)
            .map(|t| {
                let (ky, kx) = (t / self.kw, t % self.kw);
                let phase = (ky % s) * s + kx % s;
                phase * self.phase_len() + (ky / s) * self.phase_w() + kx / s
            })
            .collect()
    }

    /// The conv whose forward is this one's input gradient: from the output gradient to
    /// the input's shape, at stride 1 with padding `k - 1 - padding` (for the direct
    /// algorithm's 3x3 kernels at padding 1: 1).
    fn transposed(&self) -> Geometry {
        Geometry {
            c_in: self.c_out,
            h: self.oh,
            w: self.ow,
            c_out: self.c_in,
            padding: self.kh - 1 - self.padding,
            oh: self.h,
            ow: self.w,
            ..*self
        }
    }

    /// Copies one input plane into its staged channel, whose padding stays as it is
    /// (zero); `columns` are [`Geometry::staged_columns`].
    fn stage(&self, plane: &[f32], staged: &mut [f32], columns: &[usize]) {
        for (row, input) in plane.chunks_exact(self.w).enumerate() {
            let at = self.staged_at(row, 0);
            if self.stride == 1 {
                staged[at..at + self.w].copy_from_slice(input);
            } else {
                for (&col, &v) in columns.iter().zip(input) {
                    staged[at + col] = v;
                }
            }
        }
    }

    /// Where each input column lands in a staged channel, from where its row starts.
    fn staged_columns(&self) -> Vec<usize> {
        (0..self.w)
            .map(|col| self.staged_at(0, col) - self.staged_at(0, 0))
            .collect()
    }

    /// Input value `(y, x)` of a channel: where it goes in the staged channel.
    fn staged_at(&self, y: usize, x: usize) -> usize {
        let (s, p) = (self.stride, self.padding);
        let (py, px) = (y + p, x + p);
        ((py % s) * s + px % s) * self.phase_len() + (py / s) * self.phase_w() + px / s
    }
}

/// Length of the [`blocked_weight`].
fn blocked_len(g: &Geometry) -> usize {
    g.c_out.div_ceil(CB) * g.c_in * g.kh * g.kw * CB
}

/// The weight as `[co block][ci][tap][CB]`, zero past `c_out`: the `CB` weights one
/// input vector meets side by side.
fn blocked_weight(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let kk = g.kh * g.kw;
    blocked(g.c_out, g.c_in, kk, |co, ci, t| {
        weight[(co * g.c_in + ci) * kk + t]
    })
}

/// `[co block][ci][tap][CB]` of `c_out x c_in x taps` weights, `at(co, ci, tap)`, zero past
/// `c_out`: the layout the forward's [`Block`]s read.
fn blocked(
    c_out: usize,
    c_in: usize,
    taps: usize,
    at: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let mut out = vec![0f32; c_out.div_ceil(CB) * c_in * taps * CB];
    for (block, b) in out.chunks_exact_mut(c_in * taps * CB).enumerate() {
        for (ci, per_channel) in b.chunks_exact_mut(taps * CB).enumerate() {
            for (t, per_tap) in per_channel.chunks_exact_mut(CB).enumerate() {
                for (c, v) in per_tap.iter_mut().enumerate() {
                    let co = block * CB + c;
                    if co < c_out {
                        *v = at(co, ci, t);
                    }
                }
            }
        }
    }
    out
}

/// `y = conv2d(x, weight)` for a conv that [`fits`], `(B, C_out, OH, OW)` row-major; in
/// parallel over images.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_on(g, x, &blocked_weight(g, weight), &widest)
}

/// Runs a block on the widest instruction set this CPU has.
fn widest(block: Block<'_>) {
    pulp::Arch::new().dispatch(block)
}

/// Runs a block of output channels: on the widest instruction set this CPU has, or (in
/// the tests) a chosen one.
type Dispatch<'d> = &'d (dyn for<'a> Fn(Block<'a>) + Sync);

/// [`forward`] from the [`blocked_weight`], each block run by `run`.
fn forward_on(g: &Geometry, x: &[f32], blocked: &[f32], run: Dispatch<'_>) -> Vec<f32> {
    let offsets = g.tap_offsets();
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let mut y = vec![0f32; g.batch * g.c_out * out_plane];
    y.par_chunks_mut((g.c_out * out_plane).max(1))
        .zip(x.par_chunks((g.c_in * in_plane).max(1)))
        .for_each_init(
            // Staged planes (their padding stays zero: only the interior is written) and
            // one block's padded-row outputs.
            || {
                (
                    vec![0f32; g.c_in * g.staged_len()],
                    vec![0f32; CB * g.direct_len()],
                )
            },
            |(staged, outputs), (y, x)| image(g, x, (blocked, &offsets), (staged, outputs), y, run),
        );
    y
}

/// `conv2d(x, weight)` by the direct algorithm, for a 3x3 weight at stride 1 and padding
/// 1 (the caller checks); any channel count, though [`wins`] says where it pays.
pub(crate) fn conv2d(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    conv_rearranged::conv2d::<Direct>(x, weight, 1, 1)
}

/// `ConvAlgorithm::Direct`. Its rearranged weight is the forward's [`blocked_weight`]
/// followed by the input gradient's: the input gradient is the direct forward of the
/// output gradient ([`Geometry::transposed`]) with the weight flipped in both axes and
/// its channel axes swapped.
struct Direct;

impl Rearranged for Direct {
    const NAMES: [&'static str; 3] = [
        "direct-conv2d",
        "direct-conv2d-input-grad",
        "direct-conv2d-weight-grad",
    ];
    const WHAT: &'static str = "direct conv";

    fn rearrange(g: &Geometry, weight: &[f32]) -> Vec<f32> {
        let (c_in, kk) = (g.c_in, g.kh * g.kw);
        let mut both = blocked_weight(g, weight);
        // The input gradient's: from output-gradient channel `co` to input channel `ci`,
        // the kernel flipped.
        both.extend(blocked(c_in, g.c_out, kk, |ci, co, t| {
            weight[(co * c_in + ci) * kk + kk - 1 - t]
        }));
        both
    }

    fn forward(g: &Geometry, x: &[f32], both: &[f32]) -> Result<Vec<f32>> {
        Ok(forward_on(g, x, &both[..blocked_len(g)], &widest))
    }

    fn input_grad(g: &Geometry, dy: &[f32], both: &[f32]) -> Result<Vec<f32>> {
        Ok(forward_on(
            &g.transposed(),
            dy,
            &both[blocked_len(g)..],
            &widest,
        ))
    }

    fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        if g.c_in * g.c_out > MAX_OWN_WG_WEIGHTS && g.oh.min(g.ow) < OWN_WG_SIDE {
            let x_shape = Shape::from((g.batch, g.c_in, g.h, g.w));
            let w_shape = Shape::from((g.c_out, g.c_in, g.kh, g.kw));
            return winograd::Tiling::new(&x_shape, &w_shape)?.weight_grad(x, dy, None);
        }
        weight_grad(g, x, dy)
    }
}

/// Images whose output gradients [`input_grad_strided`] stages side by side.
const GROUP: usize = 8;

/// Whether [`input_grad_strided`] computes this conv's input gradient in im2col's op:
/// 3x3 kernels at stride 2 with padding 1 (the downsampling convs) onto outputs of at
/// least [`MIN_SIDE`] a side. Below, each image's parities are a few vectors and the
/// blocks' overhead dominates (narrow ResNet-18, batch 64: 8 -> 16 channels onto 7 x 7,
/// 0.18-0.25 -> 0.14-0.15 ms; 16 -> 32 onto 4 x 4, level; 32 -> 64 onto 2 x 2, 0.18 ->
/// 0.29 ms).
pub(crate) fn fits_input_grad(g: &Geometry) -> bool {
    g.stride == 2 && g.padding == 1 && g.kh == 3 && g.kw == 3 && g.oh.min(g.ow) >= MIN_SIDE
}

/// The input gradient of a 3x3 conv at stride 2 with padding 1, by the parity of the
/// input's row and column: input row `2a` is reached by kernel row 1 from output row `a`
/// alone, row `2a + 1` by kernel row 2 from `a` and kernel row 0 from `a + 1` (columns
/// alike). So each of the four parities is a stride-1 correlation of the output gradient
/// with 1-4 of the taps, computed by the direct forward's blocks on the output gradient
/// staged with a zero row and column past its end, and written to its interleaved
/// positions. No multiply meets a zero that im2col's unfolding (or a dilated output
/// gradient) would add.
pub(crate) fn input_grad_strided(g: &Geometry, dy: &[f32], weight: &[f32]) -> Result<Vec<f32>> {
    if g.stride != 2 || g.padding != 1 || g.kh != 3 || g.kw != 3 {
        candle_core::bail!(
            "direct strided input gradient: 3x3 kernels at stride 2 and padding 1 only, got {}x{} at stride {} and padding {}",
            g.kh,
            g.kw,
            g.stride,
            g.padding
        )
    }
    // The output gradient's planes with one zero row and column after them, `GROUP`
    // images side by side (`q` apart) so that each block's pass covers them all.
    let pw = g.ow + 1;
    let (rows_of, cols_of) = (|r: usize| (g.h + 1 - r) / 2, |c: usize| (g.w + 1 - c) / 2);
    let q = (g.oh + 1) * pw;
    let len = (GROUP * q).div_ceil(MAX_LANES) * MAX_LANES;
    let sl = len + pw + 1 + MAX_LANES;
    // Per parity (r, c): its taps `(ky, kx, offset)`, and its weights blocked as the
    // forward's (`[ci block][co][tap][CB]`: here the output gradient's channels are the
    // ones reduced over).
    let parities: Vec<(usize, usize, Vec<usize>, Vec<f32>)> = [(0, 0), (0, 1), (1, 0), (1, 1)]
        .into_iter()
        .map(|(r, c)| {
            // Kernel index and the output offset it reads at, per parity.
            let axis = |p: usize| -> Vec<(usize, usize)> {
                if p == 0 {
                    vec![(1, 0)]
                } else {
                    vec![(2, 0), (0, 1)]
                }
            };
            let taps: Vec<(usize, usize, usize)> = axis(r)
                .iter()
                .flat_map(|&(ky, oy)| {
                    axis(c)
                        .into_iter()
                        .map(move |(kx, ox)| (ky, kx, oy * pw + ox))
                })
                .collect();
            let offsets = taps.iter().map(|t| t.2).collect();
            let blocked = blocked(g.c_in, g.c_out, taps.len(), |ci, co, t| {
                let (ky, kx, _) = taps[t];
                weight[((co * g.c_in + ci) * 3 + ky) * 3 + kx]
            });
            (r, c, offsets, blocked)
        })
        .collect();
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let mut dx = vec![0f32; g.batch * g.c_in * in_plane];
    dx.par_chunks_mut((GROUP * g.c_in * in_plane).max(1))
        .zip(dy.par_chunks((GROUP * g.c_out * out_plane).max(1)))
        .for_each_init(
            || (vec![0f32; g.c_out * sl], vec![0f32; CB * len]),
            |(staged, outputs), (dx, dy)| {
                for (i, image) in dy.chunks_exact(g.c_out * out_plane).enumerate() {
                    for (plane, s) in image
                        .chunks_exact(out_plane)
                        .zip(staged.chunks_exact_mut(sl))
                    {
                        for (oy, row) in plane.chunks_exact(g.ow).enumerate() {
                            s[i * q + oy * pw..][..g.ow].copy_from_slice(row);
                        }
                    }
                }
                for (r, c, offsets, blocked) in &parities {
                    let (rows, cols) = (rows_of(*r), cols_of(*c));
                    for (block, weights) in blocked
                        .chunks_exact(g.c_out * offsets.len() * CB)
                        .enumerate()
                    {
                        widest(Block {
                            staged,
                            staged_len: sl,
                            weights,
                            offsets,
                            outputs,
                            len,
                        });
                        let channels = CB.min(g.c_in - block * CB);
                        for (i, image) in dx.chunks_exact_mut(g.c_in * in_plane).enumerate() {
                            let planes = image[block * CB * in_plane..].chunks_exact_mut(in_plane);
                            for (plane, computed) in
                                planes.take(channels).zip(outputs.chunks_exact(len))
                            {
                                let computed = &computed[i * q..];
                                for a in 0..rows {
                                    let to = &mut plane[(2 * a + r) * g.w..(2 * a + r + 1) * g.w];
                                    for b in 0..cols {
                                        to[2 * b + c] = computed[a * pw + b];
                                    }
                                }
                            }
                        }
                    }
                }
            },
        );
    Ok(dx)
}

/// Output channels whose weight gradients one pass accumulates together: each loaded
/// input vector feeds this many channels' multiply-adds for each of a row's taps.
const WG_CB: usize = 4;

/// Taps of one kernel row, accumulated together (the direct algorithm's kernels are 3x3).
const WG_TAPS: usize = 3;

/// `dW` of a 3-wide conv at stride 1 or 2 from its input and output gradient, in
/// padded-row coordinates (of phase planes at stride 2, see the module):
/// `dW[co][ci][t] = sum over images and outputs p of dy[co][p] x[ci][p + offset_t]`, the
/// output gradient staged with zeros where no output is. A share of images is staged
/// side by side, then for every `WG_CB` output channels, input channel and kernel row,
/// one pass over the share's outputs keeps `WG_CB x WG_TAPS` vector accumulators in
/// registers and adds them to per-lane partial sums. The batch is cut into `PARTS` fixed
/// shares, each on one thread, whose lanes are summed and the shares then added in
/// order: the same sums whatever the thread count.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    weight_grad_on(g, x, dy, &widest_wg)
}

/// [`weight_grad`] with each share's products run by `run`.
fn weight_grad_on(g: &Geometry, x: &[f32], dy: &[f32], run: WgDispatch<'_>) -> Result<Vec<f32>> {
    if g.stride > MAX_STRIDE || g.kw != WG_TAPS {
        candle_core::bail!(
            "direct conv weight gradient: strides up to {MAX_STRIDE} and rows of {WG_TAPS} taps only, got stride {} and a {}x{} kernel",
            g.stride,
            g.kh,
            g.kw
        )
    }
    let (sl, pl, pw) = (g.staged_len(), g.phase_len(), g.phase_w());
    let (kk, c_out_blocks) = (g.kh * g.kw, g.c_out.div_ceil(WG_CB));
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let columns = g.staged_columns();
    let lanes_len = c_out_blocks * WG_CB * g.c_in * kk * MAX_LANES;
    // Each phase plane holds the share's images side by side, `q` apart (room for its
    // cells, and for its outputs' taps), so that one pass covers them all; a tap reads
    // its phase's block, shifted.
    let shift = (g.kh - 1) / g.stride * pw + (g.kw - 1) / g.stride;
    let rows = (g.h + 2 * g.padding).div_ceil(g.stride);
    let q = (rows * pw).max(g.oh * pw + shift);
    let share = g.batch.div_ceil(PARTS).max(1);
    let firsts: Vec<usize> = (0..g.batch).step_by(share).collect();
    let parts: Vec<Vec<f32>> = firsts
        .par_iter()
        .map(|&first| {
            let images = first..(first + share).min(g.batch);
            let len = (images.len() * q).div_ceil(MAX_LANES) * MAX_LANES;
            let block = len + shift + MAX_LANES;
            let row = g.stride * g.stride * block;
            let taps: Vec<usize> = (0..kk)
                .map(|t| {
                    let (ky, kx) = (t / g.kw, t % g.kw);
                    let phase = (ky % g.stride) * g.stride + kx % g.stride;
                    phase * block + (ky / g.stride) * pw + kx / g.stride
                })
                .collect();
            let mut staged = vec![0f32; g.c_in * row];
            let mut one = vec![0f32; sl];
            // Zero where no output is, and for channels past `c_out` up to a whole block.
            let mut grads = vec![0f32; c_out_blocks * WG_CB * len];
            for (i, image) in images.enumerate() {
                let x = &x[image * g.c_in * in_plane..][..g.c_in * in_plane];
                for (plane, s) in x.chunks_exact(in_plane).zip(staged.chunks_exact_mut(row)) {
                    g.stage(plane, &mut one, &columns);
                    for (phase, from) in one.chunks_exact(pl).enumerate() {
                        s[phase * block + i * q..][..q].copy_from_slice(&from[..q]);
                    }
                }
                let dy = &dy[image * g.c_out * out_plane..][..g.c_out * out_plane];
                for (plane, outputs) in dy.chunks_exact(out_plane).zip(grads.chunks_exact_mut(len))
                {
                    for (oy, out) in plane.chunks_exact(g.ow).enumerate() {
                        let at = i * q + oy * pw;
                        outputs[at..at + g.ow].copy_from_slice(out);
                    }
                }
            }
            let mut lanes = vec![0f32; lanes_len];
            run(WeightGradImage {
                staged: &staged,
                staged_len: row,
                grads: &grads,
                len,
                offsets: &taps,
                c_in: g.c_in,
                lanes: &mut lanes,
            });
            // Each weight's lanes, in order.
            lanes
                .chunks_exact(MAX_LANES)
                .map(|l| l.iter().sum::<f32>())
                .collect()
        })
        .collect();
    let mut dw = vec![0f32; g.c_out * g.c_in * kk];
    for part in &parts {
        for (d, &p) in dw.iter_mut().zip(part) {
            *d += p;
        }
    }
    Ok(dw)
}

/// Most weights (`C_out C_in`) whose gradient im2col's op leaves to [`weight_grad`]:
/// each keeps `MAX_LANES` partial sums a share.
const MAX_WG_WEIGHTS: usize = 2048;

/// Whether [`weight_grad`] computes this conv's weight gradient in im2col's op: rows of
/// [`WG_TAPS`] taps at stride 1 or 2 (the downsampling convs), few weights, outputs of at
/// least [`MIN_SIDE`] a side. On smaller outputs each pass is short and the per-weight
/// work dominates (narrow ResNet-18 at batch 64, 3x3 and 1x1 weight gradients together:
/// 8 -> 16 channels onto 7 x 7, 0.33-0.37 -> 0.23-0.26 ms; 32 -> 64 onto 2 x 2,
/// 0.31-0.32 -> 0.63-0.70 ms).
pub(crate) fn fits_weight_grad(g: &Geometry) -> bool {
    g.stride <= MAX_STRIDE
        && g.kw == WG_TAPS
        && g.c_in * g.c_out <= MAX_WG_WEIGHTS
        && g.oh.min(g.ow) >= MIN_SIDE
}

/// Runs one share's weight-gradient products: on the widest instruction set this CPU
/// has, or (in the tests) a chosen one.
type WgDispatch<'d> = &'d (dyn for<'a> Fn(WeightGradImage<'a>) + Sync);

fn widest_wg(image: WeightGradImage<'_>) {
    pulp::Arch::new().dispatch(image)
}

/// A share of images' staged inputs and padded-row output gradients, each channel's
/// images side by side; their products are added into the per-lane partial sums
/// `lanes`, `[co][ci][tap][MAX_LANES]`.
struct WeightGradImage<'a> {
    /// `[ci][staged_len]`: each channel's phase planes, each holding the share's images.
    staged: &'a [f32],
    staged_len: usize,
    /// `[co][len]`, `c_out` rounded up to whole `WG_CB` blocks.
    grads: &'a [f32],
    len: usize,
    /// Where each tap reads in a channel's `staged` row, from an output's position.
    offsets: &'a [usize],
    c_in: usize,
    lanes: &'a mut [f32],
}

impl pulp::WithSimd for WeightGradImage<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, simd: S) {
        // AVX2's 16 registers cannot hold a whole block's `WG_CB x WG_TAPS` sums with the
        // block's output gradients: the sums were spilled to the stack and reloaded every
        // multiply-add. Half a block at a time there (each input load feeds half as many).
        let all = self.grads;
        let blocks = all.chunks_exact(WG_CB * self.len).enumerate();
        if 2 * S::F32_LANES <= MAX_LANES {
            for (block, grads) in blocks {
                for half in 0..2 {
                    self.channels::<S, { WG_CB / 2 }>(simd, block, grads, half * (WG_CB / 2));
                }
            }
        } else {
            for (block, grads) in blocks {
                self.channels::<S, WG_CB>(simd, block, grads, 0);
            }
        }
    }
}

impl WeightGradImage<'_> {
    /// `C` output channels of a block, from its `first`: their products with every input
    /// channel's taps added into `lanes`. Each weight's lanes are the same chain of sums
    /// whatever `C` is, so the same bits.
    #[inline(always)]
    fn channels<S: pulp::Simd, const C: usize>(
        &mut self,
        simd: S,
        block: usize,
        grads: &[f32],
        first: usize,
    ) {
        let n = S::F32_LANES;
        let kk = self.offsets.len();
        let load = |v: &[f32], at: usize| -> S::f32s {
            bytemuck::pod_read_unaligned(bytemuck::cast_slice(&v[at..at + n]))
        };
        let grads: [&[f32]; C] =
            std::array::from_fn(|j| &grads[(first + j) * self.len..][..self.len]);
        for (ci, plane) in self.staged.chunks_exact(self.staged_len).enumerate() {
            for (row, taps) in self.offsets.chunks_exact(WG_TAPS).enumerate() {
                let mut acc = [[simd.splat_f32s(0.0); WG_TAPS]; C];
                // `len` is a multiple of `MAX_LANES`, so of every instruction set's lanes.
                for at in (0..self.len).step_by(n) {
                    let d: [S::f32s; C] = std::array::from_fn(|j| load(grads[j], at));
                    for (k, &offset) in taps.iter().enumerate() {
                        let xv = load(plane, at + offset);
                        for (a, &dv) in acc.iter_mut().zip(&d) {
                            a[k] = simd.mul_add_f32s(dv, xv, a[k]);
                        }
                    }
                }
                for (j, per_co) in acc.iter().enumerate() {
                    let co = block * WG_CB + first + j;
                    for (k, a) in per_co.iter().enumerate() {
                        let t = row * WG_TAPS + k;
                        let at = ((co * self.c_in + ci) * kk + t) * MAX_LANES;
                        let sums = &mut self.lanes[at..at + n];
                        let add = simd.add_f32s(load(sums, 0), *a);
                        sums.copy_from_slice(bytemuck::cast_slice(std::slice::from_ref(&add)));
                    }
                }
            }
        }
    }
}

/// One image: its planes staged, then each block of `CB` output channels.
fn image(
    g: &Geometry,
    x: &[f32],
    (blocked, offsets): (&[f32], &[usize]),
    (staged, outputs): (&mut [f32], &mut [f32]),
    y: &mut [f32],
    run: Dispatch<'_>,
) {
    let (pw, sl, dl) = (g.phase_w(), g.staged_len(), g.direct_len());
    let columns = g.staged_columns();
    for (plane, s) in x.chunks_exact(g.h * g.w).zip(staged.chunks_exact_mut(sl)) {
        g.stage(plane, s, &columns);
    }
    let out_plane = g.oh * g.ow;
    for (block, weights) in blocked
        .chunks_exact(g.c_in * offsets.len() * CB)
        .enumerate()
    {
        run(Block {
            staged,
            staged_len: sl,
            weights,
            offsets,
            outputs,
            len: dl,
        });
        let channels = CB.min(g.c_out - block * CB);
        let planes = y[block * CB * out_plane..].chunks_exact_mut(out_plane.max(1));
        for (plane, computed) in planes.take(channels).zip(outputs.chunks_exact(dl)) {
            for (row, out) in plane.chunks_exact_mut(g.ow).enumerate() {
                out.copy_from_slice(&computed[row * pw..row * pw + g.ow]);
            }
        }
    }
}

/// One block of `CB` output channels of one image, in padded-row coordinates.
struct Block<'a> {
    staged: &'a [f32],
    staged_len: usize,
    /// `[ci][tap][CB]`.
    weights: &'a [f32],
    offsets: &'a [usize],
    /// `[CB][len]`.
    outputs: &'a mut [f32],
    len: usize,
}

impl pulp::WithSimd for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, simd: S) {
        let lanes = S::F32_LANES;
        // `len` is a multiple of `MAX_LANES`, so of every instruction set's lanes, and of
        // two vectors where a vector is at most half of it.
        if 2 * lanes <= MAX_LANES {
            for at in (0..self.len).step_by(2 * lanes) {
                for half in 0..2 {
                    self.tile::<S, 2, { CB / 2 }>(simd, at, half * (CB / 2));
                }
            }
        } else {
            for at in (0..self.len).step_by(lanes) {
                self.tile::<S, 1, CB>(simd, at, 0);
            }
        }
    }
}

impl Block<'_> {
    /// `V` vectors of outputs from `at` of `C` of the block's channels from `first`, each
    /// output one chain of fused multiply-adds from zero over `(ci, tap)` in order
    /// (gemm's rounding), whatever `V` and `C`: so the same bits on every instruction set.
    /// AVX-512 takes one vector by the whole block; AVX2 two vectors by half of it, as
    /// its 16 registers cannot hold `CB` sums of two vectors: each weight broadcast then
    /// feeds two multiply-adds and each input load `CB / 2`, a third fewer loads a
    /// multiply-add than one vector by `CB` (which also shuffled registers between them).
    #[inline(always)]
    fn tile<S: pulp::Simd, const V: usize, const C: usize>(
        &mut self,
        simd: S,
        at: usize,
        first: usize,
    ) {
        let lanes = S::F32_LANES;
        let per_channel = self.offsets.len() * CB;
        let mut acc = [[simd.splat_f32s(0.0); V]; C];
        for (plane, weights) in self
            .staged
            .chunks_exact(self.staged_len)
            .zip(self.weights.chunks_exact(per_channel))
        {
            let from = &plane[at..];
            for (&offset, taps) in self.offsets.iter().zip(weights.chunks_exact(CB)) {
                let row = &from[offset..offset + V * lanes];
                let xs: [S::f32s; V] = std::array::from_fn(|v| {
                    bytemuck::pod_read_unaligned(bytemuck::cast_slice(
                        &row[v * lanes..(v + 1) * lanes],
                    ))
                });
                for (a, &w) in acc.iter_mut().zip(&taps[first..first + C]) {
                    let w = simd.splat_f32s(w);
                    for (a, &x) in a.iter_mut().zip(&xs) {
                        *a = simd.mul_add_f32s(w, x, *a);
                    }
                }
            }
        }
        for (a, out) in acc
            .iter()
            .zip(self.outputs.chunks_exact_mut(self.len).skip(first))
        {
            out[at..at + V * lanes].copy_from_slice(bytemuck::cast_slice(a.as_slice()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Shape;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // Distinct magnitudes, so that any other order of the sums shows in the bits.
        (0..n)
            .map(|i| {
                let v = ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32;
                v / (1u32 << 24) as f32 * 2.0 - 1.0 + 1e-3 * (i % 7) as f32
            })
            .collect()
    }

    #[test]
    fn the_direct_forward_gives_im2cols_bits_on_odd_shapes() {
        // (batch, c_in, c_out, h, w, kh, kw, padding, stride)
        for (case, &(b, ci, co, h, w, kh, kw, p, stride)) in [
            (3, 1, 5, 9, 7, 3, 3, 1, 1),
            (2, 3, 9, 8, 8, 3, 3, 1, 1),
            (2, 16, 16, 7, 7, 3, 3, 1, 1),
            (1, 4, 4, 5, 6, 5, 5, 2, 1),
            (2, 2, 3, 6, 5, 3, 3, 0, 1),
            (1, 2, 17, 11, 13, 7, 7, 3, 1),
            (2, 1, 1, 1, 1, 3, 3, 1, 1),
            (1, 3, 8, 4, 9, 3, 1, 1, 1),
            (2, 5, 12, 28, 28, 3, 3, 1, 1),
            (2, 8, 16, 14, 14, 3, 3, 1, 2),
            (3, 16, 9, 7, 7, 3, 3, 1, 2),
            (1, 3, 5, 9, 8, 3, 3, 0, 2),
            (2, 2, 7, 11, 10, 5, 5, 2, 2),
            (1, 1, 3, 2, 3, 3, 3, 1, 2),
        ]
        .iter()
        .enumerate()
        {
            let x_shape = Shape::from((b, ci, h, w));
            let w_shape = Shape::from((co, ci, kh, kw));
            let g = Geometry::new(&x_shape, &w_shape, stride, p).unwrap();
            assert!(fits(&g), "case {case}");
            let x = values(b * ci * h * w, case as u32);
            let weight = values(co * ci * kh * kw, 99 + case as u32);
            let direct = forward(&g, &x, &weight);
            let unfolded = g.im2col_forward(&x, &weight).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&direct), bits(&unfolded), "case {case}");
            // And the convolution itself, in f64 by its definition.
            for (i, &got) in direct.iter().enumerate() {
                let (n, o) = (i / (co * g.oh * g.ow), i % (co * g.oh * g.ow));
                let (c, oy, ox) = (o / (g.oh * g.ow), o % (g.oh * g.ow) / g.ow, o % g.ow);
                let mut want = 0f64;
                for cin in 0..ci {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let (iy, ix) = (
                                (oy * stride + ky).checked_sub(p),
                                (ox * stride + kx).checked_sub(p),
                            );
                            if let (Some(iy), Some(ix)) = (iy, ix)
                                && iy < h
                                && ix < w
                            {
                                want += f64::from(x[((n * ci + cin) * h + iy) * w + ix])
                                    * f64::from(weight[((c * ci + cin) * kh + ky) * kw + kx]);
                            }
                        }
                    }
                }
                assert!(
                    (f64::from(got) - want).abs() < 1e-4,
                    "case {case} output {i}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_avx2_path_gives_im2cols_bits_too() {
        // This machine's widest path is tested above; AVX2 machines take 8-lane vectors.
        let v3 = pulp::x86::V3::try_new().expect("an x86-64 CPU with AVX2 and FMA");
        for (case, &(b, ci, co, hw, stride)) in
            [(2, 8, 8, 14, 1), (3, 3, 16, 9, 1), (2, 8, 16, 14, 2)]
                .iter()
                .enumerate()
        {
            let g = Geometry::new(
                &Shape::from((b, ci, hw, hw)),
                &Shape::from((co, ci, 3, 3)),
                stride,
                1,
            )
            .unwrap();
            let x = values(b * ci * hw * hw, 7 + case as u32);
            let weight = values(co * ci * 9, 70 + case as u32);
            let direct = forward_on(&g, &x, &blocked_weight(&g, &weight), &|block| {
                pulp::Simd::vectorize(v3, block);
            });
            let unfolded = g.im2col_forward(&x, &weight).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&direct), bits(&unfolded), "case {case}");
        }
    }

    #[test]
    fn the_weight_gradient_is_its_definitions_on_both_instruction_sets() {
        // Odd channel counts (a block of `WG_CB` part-filled), maps down to 5 x 5, batches
        // that leave the last share short or empty, and stride 2 on odd and even sides.
        let v3 = pulp::x86::V3::try_new().expect("an x86-64 CPU with AVX2 and FMA");
        for (case, &(b, ci, co, h, w, stride)) in [
            (5, 3, 6, 7, 9, 1),
            (2, 8, 8, 14, 14, 1),
            (3, 16, 5, 5, 5, 1),
            (9, 1, 8, 28, 28, 1),
            (3, 8, 16, 14, 14, 2),
            (2, 5, 7, 7, 9, 2),
        ]
        .iter()
        .enumerate()
        {
            let g = Geometry::new(
                &Shape::from((b, ci, h, w)),
                &Shape::from((co, ci, 3, 3)),
                stride,
                1,
            )
            .unwrap();
            let (oh, ow) = (g.oh, g.ow);
            let x = values(b * ci * h * w, 11 + case as u32);
            let dy = values(b * co * oh * ow, 110 + case as u32);
            let widest = weight_grad(&g, &x, &dy).unwrap();
            let avx2 = weight_grad_on(&g, &x, &dy, &|image| {
                pulp::Simd::vectorize(v3, image);
            })
            .unwrap();
            for (i, (&got, &got2)) in widest.iter().zip(&avx2).enumerate() {
                let (o, c, t) = (i / (ci * 9), i / 9 % ci, i % 9);
                let (ky, kx) = (t / 3, t % 3);
                let mut want = 0f64;
                for n in 0..b {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let (iy, ix) = (
                                (oy * stride + ky).checked_sub(1),
                                (ox * stride + kx).checked_sub(1),
                            );
                            if let (Some(iy), Some(ix)) = (iy, ix)
                                && iy < h
                                && ix < w
                            {
                                want += f64::from(x[((n * ci + c) * h + iy) * w + ix])
                                    * f64::from(dy[((n * co + o) * oh + oy) * ow + ox]);
                            }
                        }
                    }
                }
                for v in [got, got2] {
                    assert!(
                        (f64::from(v) - want).abs() < 1e-4 * want.abs().max(1.0),
                        "case {case} weight {i}: {v} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_strided_input_gradient_is_its_definition() {
        // Odd and even sides, channel counts past one block, one-pixel outputs, and a
        // batch whose last group of images is short.
        for (case, &(b, ci, co, h, w)) in [
            (11, 3, 5, 9, 7),
            (2, 3, 5, 7, 9),
            (3, 9, 4, 8, 8),
            (1, 16, 17, 14, 14),
            (2, 2, 3, 2, 1),
        ]
        .iter()
        .enumerate()
        {
            let g = Geometry::new(
                &Shape::from((b, ci, h, w)),
                &Shape::from((co, ci, 3, 3)),
                2,
                1,
            )
            .unwrap();
            let (oh, ow) = (g.oh, g.ow);
            let dy = values(b * co * oh * ow, 21 + case as u32);
            let weight = values(co * ci * 9, 210 + case as u32);
            let dx = input_grad_strided(&g, &dy, &weight).unwrap();
            for (i, &got) in dx.iter().enumerate() {
                let (n, c, iy, ix) = (i / (ci * h * w), i / (h * w) % ci, i / w % h, i % w);
                let mut want = 0f64;
                for o in 0..co {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            // iy = 2 oy + ky - 1
                            let (ty, tx) = (iy + 1, ix + 1);
                            if ty < ky || tx < kx || (ty - ky) % 2 != 0 || (tx - kx) % 2 != 0 {
                                continue;
                            }
                            let (oy, ox) = ((ty - ky) / 2, (tx - kx) / 2);
                            if oy < oh && ox < ow {
                                want += f64::from(dy[((n * co + o) * oh + oy) * ow + ox])
                                    * f64::from(weight[((o * ci + c) * 3 + ky) * 3 + kx]);
                            }
                        }
                    }
                }
                assert!(
                    (f64::from(got) - want).abs() < 1e-4,
                    "case {case} input {i}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn only_short_reductions_past_1x1_at_strides_1_and_2_go_direct() {
        let g = |ci, k, stride| {
            Geometry::new(
                &Shape::from((2, ci, 8, 8)),
                &Shape::from((4, ci, k, k)),
                stride,
                k / 2,
            )
            .unwrap()
        };
        assert!(fits(&g(16, 3, 1)));
        assert!(!fits(&g(17, 3, 1)));
        assert!(fits(&g(3, 3, 2)));
        assert!(!fits(&g(3, 3, 3)));
        assert!(!fits(&g(8, 1, 1)));
    }
}
