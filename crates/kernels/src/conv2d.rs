//! 2D convolution (no dilation, no groups) as im2col + gemm, forward and backward, on
//! the CPU.
//!
//! candle 0.11 computes a conv's input gradient with `conv_transpose2d`, a direct loop
//! several times slower than its matrix multiply, and its weight gradient as a conv whose
//! "kernel" is the whole output gradient. Here each is one wide gemm over a chunk of
//! images unfolded side by side (`cols`, `K x (n L)` with `K = C_in * kh * kw` and
//! `L = OH * OW`): `y = W cols`, `dcols = W^T dy` folded back onto the inputs,
//! `dW = dy cols^T`, chunks summed in order. gemm splits its output, never its sums,
//! across threads, so results do not depend on scheduling and a resumed run stays
//! bit-identical.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::scratch::Scratch;
use crate::storage::f32_slice;

use crate::gemm::{Mat, Store, sgemm};
use crate::{conv_dense, conv_direct, conv_taps, winograd};

/// Shapes of one convolution (also the dense layer's and the tap walk's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    pub(crate) fn new(
        x: &Shape,
        weight: &Shape,
        stride: usize,
        padding: usize,
    ) -> Result<Geometry> {
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

    /// An error unless `shape` is this conv's output's: a backward's gradient.
    pub(crate) fn check_output_grad(&self, shape: &Shape, op: &str) -> Result<()> {
        let output = [self.batch, self.c_out, self.oh, self.ow];
        if shape.dims() != output {
            bail!(
                "{op} backward: gradient shape {:?} does not match output {output:?}",
                shape.dims()
            )
        }
        Ok(())
    }

    pub(crate) fn l(&self) -> usize {
        self.oh * self.ow
    }

    pub(crate) fn in_plane(&self) -> usize {
        self.c_in * self.h * self.w
    }

    pub(crate) fn out_plane(&self) -> usize {
        self.c_out * self.l()
    }

    /// Input row read by kernel row `ky` for output row `oy`, or `None` in the padding.
    pub(crate) fn source_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&y| y < self.h)
    }

    /// Range of output columns whose tap `kx` lands inside the input, and the input
    /// column of the first: `ox * stride + kx - padding in [0, w)`.
    pub(crate) fn valid_cols(&self, kx: usize) -> (usize, usize) {
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

    /// Images unfolded at once: as many as fit a budget of unfolded values (4 MiB), so
    /// the products are wide (per-image products of the deep layers, `L` = 4 or 16
    /// columns, leave gemm's kernels mostly idle) while the unfolded chunk stays in
    /// cache between the unfolding and the product (the earlier 128 MiB budget was
    /// no faster per ResNet-18 step and held 30-100 MB more).
    fn chunk(&self) -> usize {
        const BUDGET: usize = 1 << 20;
        (BUDGET / (self.k() * self.l()).max(1)).clamp(1, self.batch.max(1))
    }

    /// Whether the output has the input's size at stride 1 ("same" padding, like every
    /// 3x3 conv of the three models): then each unfolded row is the input plane shifted
    /// by a constant offset, copied in one piece (see [`Geometry::shifted_copy`]).
    fn same_size(&self) -> bool {
        self.stride == 1 && self.oh == self.h && self.ow == self.w
    }

    /// The "same"-size unfolding of one tap `(ky, kx)` of one plane: `out[p] =
    /// plane[p + off]` with `off = dy * w + dx`, then zeros where the tap falls outside
    /// the plane. A position in a row outside the plane reads inside it only through a
    /// column outside it, so clearing those columns after the copy is enough.
    fn shifted_copy(&self, plane: &[f32], ky: usize, kx: usize, out: &mut [f32]) {
        let (lo, hi, from) = self.shift(ky, kx);
        out[..lo].fill(0.0);
        out[hi..].fill(0.0);
        out[lo..hi].copy_from_slice(&plane[from..from + hi - lo]);
        self.clear_outside_columns(kx, out);
    }

    /// For a "same"-size tap: the positions `lo..hi` of the unfolded row whose shifted
    /// source `p + off` lies in the plane, and `lo + off`.
    fn shift(&self, ky: usize, kx: usize) -> (usize, usize, usize) {
        let (w, l) = (self.w as isize, self.l() as isize);
        let off = (ky as isize - self.padding as isize) * w + kx as isize - self.padding as isize;
        let lo = (-off).clamp(0, l);
        let hi = (l - off).clamp(lo, l);
        if lo == hi {
            // The whole tap falls outside the plane.
            return (0, 0, 0);
        }
        (lo as usize, hi as usize, (lo + off) as usize)
    }

    /// Zeros the columns of `rows` (whole output rows, `w` wide) that tap `kx` reads
    /// from outside the plane.
    fn clear_outside_columns(&self, kx: usize, rows: &mut [f32]) {
        let dx = kx as isize - self.padding as isize;
        let cut = dx.unsigned_abs().min(self.w);
        if cut == 0 {
            return;
        }
        for row in rows.chunks_mut(self.w) {
            if dx < 0 {
                row[..cut].fill(0.0);
            } else {
                row[self.w - cut..].fill(0.0);
            }
        }
    }

    /// Unfolds input channel `c` of images `first..first + nb` into its `kh * kw` rows of
    /// the chunk's `K x (nb * L)` matrix (`rows`), image `i` in columns `i * L..`.
    fn im2col_channel(&self, x: &[f32], first: usize, nb: usize, c: usize, rows: &mut [f32]) {
        let (l, width) = (self.l(), nb * self.l());
        for i in 0..nb {
            let start = ((first + i) * self.c_in + c) * self.h * self.w;
            let plane = &x[start..start + self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ky * self.kw + kx) * width + i * l;
                    let out = &mut rows[row..row + l];
                    if self.same_size() {
                        self.shifted_copy(plane, ky, kx, out);
                        continue;
                    }
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
                            for (j, v) in line[lo..hi].iter_mut().enumerate() {
                                *v = src[x0 + j * self.stride];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Unfolds images `first..first + nb` into `cols` (`K x (nb * L)`), in parallel
    /// over input channels.
    fn im2col(&self, x: &[f32], first: usize, nb: usize, cols: &mut [f32]) {
        let per_channel = self.kh * self.kw * nb * self.l();
        cols[..self.c_in * per_channel]
            .par_chunks_mut(per_channel.max(1))
            .enumerate()
            .for_each(|(c, rows)| self.im2col_channel(x, first, nb, c, rows));
    }

    /// Adds image `i`'s columns of `cols` (`K x (nb * L)`) onto its input gradient (`dx`,
    /// `C_in x H x W`, all zeros on entry): the adjoint of the unfolding. For "same"-size
    /// convs `cols` must have gone through [`Geometry::prepare_col2im`].
    fn col2im_image(&self, cols: &[f32], nb: usize, i: usize, dx: &mut [f32]) {
        let (l, width) = (self.l(), nb * self.l());
        for c in 0..self.c_in {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * width + i * l;
                    let src = &cols[row..row + l];
                    if self.same_size() {
                        // One shifted add per tap; the positions reading outside the
                        // plane hold zeros (`prepare_col2im`).
                        let (lo, hi, to) = self.shift(ky, kx);
                        for (d, v) in plane[to..to + hi - lo].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                        continue;
                    }
                    let (lo, hi) = self.valid_cols(kx);
                    for oy in 0..self.oh {
                        let Some(y) = self.source_row(oy, ky).filter(|_| lo < hi) else {
                            continue;
                        };
                        let line = &src[oy * self.ow..(oy + 1) * self.ow];
                        let dst = &mut plane[y * self.w..(y + 1) * self.w];
                        let x0 = lo * self.stride + kx - self.padding;
                        if self.stride == 1 {
                            // Contiguous on both sides: vectorised.
                            for (d, v) in dst[x0..x0 + hi - lo].iter_mut().zip(&line[lo..hi]) {
                                *d += v;
                            }
                        } else {
                            for (j, v) in line[lo..hi].iter().enumerate() {
                                dst[x0 + j * self.stride] += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Zeros, in the chunk's `K x (nb * L)` column gradient, the positions whose tap reads
    /// outside the plane, so that a "same"-size `col2im_image` can add each tap's row in
    /// one shifted piece.
    fn prepare_col2im(&self, dcols: &mut [f32], nb: usize) {
        if !self.same_size() {
            return;
        }
        let width = nb * self.l();
        dcols[..self.k() * width]
            .par_chunks_mut(width.max(1))
            .enumerate()
            .for_each(|(r, row)| self.clear_outside_columns(r % self.kw, row));
    }

    /// Rows of `ys` (`C_out x (nb * L)`, image `i` in columns `i * L..`) into the
    /// images' own `C_out x L` blocks of `out`, in parallel over images.
    fn scatter_images(&self, ys: &[f32], nb: usize, out: &mut [f32]) {
        let (l, width) = (self.l(), nb * self.l());
        out.par_chunks_mut(self.out_plane().max(1))
            .enumerate()
            .for_each(|(i, image)| {
                for (c, dst) in image.chunks_mut(l.max(1)).enumerate() {
                    dst.copy_from_slice(&ys[c * width + i * l..c * width + (i + 1) * l]);
                }
            });
    }

    /// The inverse of [`Geometry::scatter_images`]: images' `C_out x L` blocks of
    /// `images` into the rows of `ys`, in parallel over rows.
    fn gather_images(&self, images: &[f32], nb: usize, ys: &mut [f32]) {
        let l = self.l();
        // `ys` may be longer (sized for a full chunk); only its first `C_out` rows are
        // this chunk's.
        ys[..self.c_out * nb * l]
            .par_chunks_mut((nb * l).max(1))
            .enumerate()
            .for_each(|(c, row)| {
                for (i, dst) in row.chunks_mut(l.max(1)).enumerate() {
                    let start = i * self.out_plane() + c * l;
                    dst.copy_from_slice(&images[start..start + l]);
                }
            });
    }
}

/// Largest weight gradient (values) reduced in parts: below it gemm has too few
/// blocks of `dW` to split over threads while its reduction runs over every pixel of
/// the batch (the stem's 27 x 64 over 32k pixels: 76 GFLOP/s on two threads, where
/// each thread alone runs 106).
const SPLIT_MAX: usize = 1 << 16;

/// Fewest output pixels in a batch (the reduction's length) for the split. Shorter
/// reductions take well under a millisecond either way; this bound also keeps the tiny
/// golden run (32 images of 28 x 28: 25k) on the unsplit summation order, whose AVX2
/// records could not be re-blessed on the AVX-512 machine that added the split.
const MIN_SPLIT_PIXELS: usize = 1 << 15;

/// Parts a small weight gradient's batch is split into (fixed, so that the sum's order
/// does not depend on the thread count).
const PARTS: usize = 8;

impl Geometry {
    /// `dW^T (K x C_out) = cols (K x nb L) dy^T (nb L x C_out)`, summed over chunks in
    /// order: gemm runs this orientation 1.3-3x faster than `dW = dy cols^T` (a wide
    /// transposed operand with a long reduction).
    fn weight_grad_in_chunks(&self, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let (k, l, chunk, c_out) = (self.k(), self.l(), self.chunk(), self.c_out);
        let mut dwt = vec![0f32; k * c_out];
        let mut cols = Scratch::take(k * chunk * l);
        let mut dys = Scratch::take(c_out * chunk * l);
        let threads = rayon::current_num_threads();
        for first in (0..self.batch).step_by(chunk) {
            let nb = chunk.min(self.batch - first);
            let store = if first == 0 {
                Store::Overwrite
            } else {
                Store::Accumulate
            };
            self.weight_grad_of(
                x,
                dy,
                first,
                nb,
                (&mut cols, &mut dys),
                &mut dwt,
                store,
                threads,
            )?;
        }
        Ok(dwt)
    }

    /// [`Geometry::weight_grad_in_chunks`] for a small `dW`: the batch's parts reduced
    /// in parallel, one thread each, then summed in order.
    fn weight_grad_in_parts(&self, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let (k, l, c_out) = (self.k(), self.l(), self.c_out);
        let part = self.chunk().min(self.batch.div_ceil(PARTS));
        let firsts: Vec<usize> = (0..self.batch).step_by(part).collect();
        let partials = firsts
            .par_iter()
            .map(|&first| {
                let nb = part.min(self.batch - first);
                let mut cols = Scratch::take(k * nb * l);
                let mut dys = Scratch::take(c_out * nb * l);
                let mut dwt = vec![0f32; k * c_out];
                self.weight_grad_of(
                    x,
                    dy,
                    first,
                    nb,
                    (&mut cols, &mut dys),
                    &mut dwt,
                    Store::Overwrite,
                    1,
                )?;
                Ok(dwt)
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        let mut parts = partials.into_iter();
        let mut dwt = parts.next().unwrap_or_else(|| vec![0f32; k * c_out]);
        for partial in parts {
            dwt.iter_mut().zip(&partial).for_each(|(a, b)| *a += b);
        }
        Ok(dwt)
    }

    /// `y = conv2d(x, weight)` by unfolding chunks of images and one gemm per chunk.
    pub(crate) fn im2col_forward(&self, x: &[f32], weight: &[f32]) -> Result<Vec<f32>> {
        let mut y = vec![0f32; self.batch * self.out_plane()];
        let (k, l, chunk) = (self.k(), self.l(), self.chunk());
        let mut cols = Scratch::take(k * chunk * l);
        let mut ys = Scratch::take(self.c_out * chunk * l);
        for first in (0..self.batch).step_by(chunk) {
            let nb = chunk.min(self.batch - first);
            let width = nb * l;
            self.im2col(x, first, nb, &mut cols);
            sgemm(
                &mut ys,
                Mat::dense(self.c_out, width),
                weight,
                Mat::dense(self.c_out, k),
                &cols,
                Mat::dense(k, width),
                Store::Overwrite,
                rayon::current_num_threads(),
            )?;
            let out = &mut y[first * self.out_plane()..(first + nb) * self.out_plane()];
            self.scatter_images(&ys, nb, out);
        }
        Ok(y)
    }

    /// `dwt (K x C_out)` = or += the `nb` images from `first`'s `cols dy^T`, on `threads`
    /// threads.
    #[allow(clippy::too_many_arguments)]
    fn weight_grad_of(
        &self,
        x: &[f32],
        dy: &[f32],
        first: usize,
        nb: usize,
        (cols, dys): (&mut [f32], &mut [f32]),
        dwt: &mut [f32],
        store: Store,
        threads: usize,
    ) -> Result<()> {
        let (k, width) = (self.k(), nb * self.l());
        self.im2col(x, first, nb, cols);
        let images = &dy[first * self.out_plane()..(first + nb) * self.out_plane()];
        self.gather_images(images, nb, dys);
        sgemm(
            dwt,
            Mat::dense(k, self.c_out),
            cols,
            Mat::dense(k, width),
            dys,
            Mat::dense(self.c_out, width).t(),
            store,
            threads,
        )
    }
}

/// A conv backward's input gradient, by `f`, unless the input is the network's own
/// (untracked): candle would drop it, after an input-sized product and fold (a sixth of
/// the narrow ResNet-18's stem, all of its backward on 224 x 224 images).
pub(crate) fn input_grad(x: &Tensor, f: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    x.track_op().then(f).transpose()
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
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let g = Geometry::new(l1.shape(), l2.shape(), self.stride, self.padding)?;
        let x = f32_slice(s1, l1, "conv2d", "input")?;
        let weight = f32_slice(s2, l2, "conv2d", "weight")?;
        let y = if conv_direct::fits(&g) {
            // The same bits, without the unfolded copy (`conv_direct.rs`).
            conv_direct::forward(&g, x, weight)
        } else {
            g.im2col_forward(x, weight)?
        };
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
        let dx = input_grad(x, || {
            grad.apply_op2_no_bwd(
                weight,
                &InputGrad {
                    conv: *self,
                    h: x.dim(2)?,
                    w: x.dim(3)?,
                },
            )
        })?;
        let dw = x.apply_op2_no_bwd(
            &grad,
            &WeightGrad {
                conv: *self,
                kh: weight.dim(2)?,
                kw: weight.dim(3)?,
            },
        )?;
        Ok((dx, Some(dw)))
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
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let (batch, _, _, _) = l1.shape().dims4()?;
        let (_, c_in, _, _) = l2.shape().dims4()?;
        let x_shape = Shape::from((batch, c_in, self.h, self.w));
        let g = Geometry::new(&x_shape, l2.shape(), self.conv.stride, self.conv.padding)?;
        g.check_output_grad(l1.shape(), "conv2d")?;
        let dy = f32_slice(s1, l1, "conv2d", "output gradient")?;
        let weight = f32_slice(s2, l2, "conv2d", "weight")?;
        if conv_direct::fits_input_grad(&g) {
            // By the input's parities, without the unfolded copy's zeros (`conv_direct.rs`).
            let dx = conv_direct::input_grad_strided(&g, dy, weight)?;
            return Ok((CpuStorage::F32(dx), x_shape));
        }
        let (k, l, chunk) = (g.k(), g.l(), g.chunk());
        let mut dx = vec![0f32; g.batch * g.in_plane()];
        let mut dys = Scratch::take(g.c_out * chunk * l);
        let mut dcols = Scratch::take(k * chunk * l);
        for first in (0..g.batch).step_by(chunk) {
            let nb = chunk.min(g.batch - first);
            let width = nb * l;
            let images = &dy[first * g.out_plane()..(first + nb) * g.out_plane()];
            g.gather_images(images, nb, &mut dys);
            // W^T (K x C_out) dy (C_out x nb L)
            sgemm(
                &mut dcols,
                Mat::dense(k, width),
                weight,
                Mat::dense(g.c_out, k).t(),
                &dys,
                Mat::dense(g.c_out, width),
                Store::Overwrite,
                rayon::current_num_threads(),
            )?;
            g.prepare_col2im(&mut dcols, nb);
            dx[first * g.in_plane()..(first + nb) * g.in_plane()]
                .par_chunks_mut(g.in_plane().max(1))
                .enumerate()
                .for_each(|(i, dx)| g.col2im_image(&dcols, nb, i, dx));
        }
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
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let (_, c_in, _, _) = l1.shape().dims4()?;
        let (_, c_out, _, _) = l2.shape().dims4()?;
        let w_shape = Shape::from((c_out, c_in, self.kh, self.kw));
        let g = Geometry::new(l1.shape(), &w_shape, self.conv.stride, self.conv.padding)?;
        g.check_output_grad(l2.shape(), "conv2d")?;
        let x = f32_slice(s1, l1, "conv2d", "input")?;
        let dy = f32_slice(s2, l2, "conv2d", "output gradient")?;
        if conv_direct::fits_weight_grad(&g) {
            // Direct passes over the staged planes instead of an unfolded copy and a
            // product with a short side (`conv_direct.rs`).
            return Ok((
                CpuStorage::F32(conv_direct::weight_grad(&g, x, dy)?),
                w_shape,
            ));
        }
        let dwt = if g.k() * c_out <= SPLIT_MAX && g.batch * g.l() >= MIN_SPLIT_PIXELS {
            g.weight_grad_in_parts(x, dy)?
        } else {
            g.weight_grad_in_chunks(x, dy)?
        };
        Ok((CpuStorage::F32(transpose(&dwt, g.k(), c_out)), w_shape))
    }
}

/// The `cols x rows` transpose of a row-major `rows x cols` matrix, in 32 x 32 tiles (a
/// plain loop strides through memory on every read: 10% of a step for the deep layers'
/// 4608 x 512 weight gradients), in parallel over tile rows of the result.
pub(crate) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; rows * cols];
    out.par_chunks_mut((TILE * rows).max(1))
        .enumerate()
        .for_each(|(tile_row, block)| {
            let c0 = tile_row * TILE;
            let height = block.len() / rows.max(1);
            for r0 in (0..rows).step_by(TILE) {
                for c in c0..c0 + height {
                    let dst = &mut block[(c - c0) * rows..(c - c0 + 1) * rows];
                    for r in r0..(r0 + TILE).min(rows) {
                        dst[r] = m[r * cols + c];
                    }
                }
            }
        });
    out
}

/// How a convolution is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Unfold, then one gemm: any shape.
    Im2col,
    /// Winograd's F(2x2, 3x3): 3x3 kernels at stride 1 with padding 1 only.
    Winograd,
    /// One dense layer over each image's whole plane: planes with fewer pixels than
    /// the kernel has taps (`conv_dense.rs`).
    Dense,
    /// Tap by tap over the pixels each joins: stride 1 on planes with fewer pixels than
    /// the kernel has taps, where the dense layer is too large (`conv_taps.rs`).
    Taps,
    /// Direct forward and input gradient: 3x3 kernels at stride 1 with padding 1, chosen
    /// for at most 32 channels in and out (64 on maps of 32 and more), stems included; the
    /// weight gradient direct too up to 16 x 16 channels or on maps of 32 and more,
    /// Winograd's otherwise (`conv_direct.rs`).
    Direct,
}

impl ConvAlgorithm {
    /// The fastest for a conv of `weight` on input `x` at `stride` and `padding`.
    pub fn for_conv(x: &Shape, weight: &Shape, stride: usize, padding: usize) -> ConvAlgorithm {
        if conv_dense::wins(x, weight, stride, padding) {
            ConvAlgorithm::Dense
        } else if conv_taps::wins(x, weight, stride, padding) {
            ConvAlgorithm::Taps
        } else if conv_direct::wins(x, weight, stride, padding) {
            ConvAlgorithm::Direct
        } else if winograd::wins(x, weight, stride, padding) {
            ConvAlgorithm::Winograd
        } else {
            ConvAlgorithm::Im2col
        }
    }
}

/// `conv2d(x, weight)` with `x` `(B, C_in, H, W)` and `weight` `(C_out, C_in, kh, kw)`,
/// f32 on the CPU, by the faster algorithm for its shape.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let algorithm = ConvAlgorithm::for_conv(x.shape(), weight.shape(), stride, padding);
    conv2d_with(x, weight, stride, padding, algorithm)
}

/// [`conv2d`] by a chosen algorithm; Winograd's and the tap walk are refused for a shape
/// they cannot compute.
pub fn conv2d_with(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    algorithm: ConvAlgorithm,
) -> Result<Tensor> {
    match algorithm {
        ConvAlgorithm::Im2col => x
            .contiguous()?
            .apply_op2(&weight.contiguous()?, Forward { stride, padding }),
        ConvAlgorithm::Winograd if winograd::fits(weight.shape(), stride, padding) => {
            winograd::conv2d(x, weight)
        }
        ConvAlgorithm::Dense => conv_dense::conv2d(x, weight, stride, padding),
        ConvAlgorithm::Taps if stride == 1 => conv_taps::conv2d(x, weight, padding),
        ConvAlgorithm::Taps => bail!("conv2d: the tap-by-tap conv needs stride 1, got {stride}"),
        ConvAlgorithm::Direct if winograd::fits(weight.shape(), stride, padding) => {
            conv_direct::conv2d(x, weight)
        }
        ConvAlgorithm::Direct => bail!(
            "conv2d: the direct conv needs a 3x3 kernel at stride 1 with padding 1, got {:?} at stride {stride}, padding {padding}",
            weight.dims()
        ),
        ConvAlgorithm::Winograd => bail!(
            "conv2d: Winograd F(2x2, 3x3) needs a 3x3 kernel at stride 1 with padding 1, got {:?} at stride {stride}, padding {padding}",
            weight.dims()
        ),
    }
}
