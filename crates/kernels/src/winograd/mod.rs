//! 3x3 convolutions at stride 1 with padding 1 (every 3x3 conv of ResNet-18's blocks,
//! VGG-16 and DenseNet-121's growth layers) by Winograd's minimal filtering F(2x2, 3x3)
//! (Lavin and Gray, 2016), forward and backward, on the CPU.
//!
//! Each 2x2 output tile is `A^T [(G k G^T) . (B^T d B)] A` for its 4x4 input window `d`,
//! summed over input channels: 16 independent gemms, `C_out x C_in` by
//! `C_in x tiles`, one per position `xi` of the transformed tile. That is 16
//! multiplications per 4 outputs and input channel where im2col's gemm does 36: 2.25x
//! fewer. The input and weight gradients are the exact adjoints of this forward (the
//! same 16 products, transposed), so they are the gradients of the function computed.
//!
//! Error bound. Every entry of `B`, `G` and `A` is 0, +-1 or +-1/2 (exact in binary);
//! an input value passes through at most 2 roundings in `B^T d B`, a weight through 4 in
//! `G k G^T`, their product 1, the sum over channels at most `C_in`, and the output
//! transform 4. So, with `u = 2^-24` and `gamma_n = n u / (1 - n u)`, each output `y`
//! of the exact convolution is computed within
//! `gamma_{C_in + 11} * sum_c |A^T| ((|G| |k_c| |G^T|) . (|B^T| |d_c| |B|)) |A|`,
//! the same form as im2col's `gamma_{9 C_in} * sum |k| |d|` with a magnitude term at most
//! 16x larger (F(4x4, 3x3)'s entries reach 8 and its term grows accordingly, which is
//! why this is F(2x2, 3x3)). The bound is tested.
//!
//! As in `conv2d.rs`, gemm splits no sums across threads (here the 16 products run in
//! parallel, each on one thread) and chunks are summed in order, so results do not
//! depend on scheduling.

mod transform;

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::gemm::{Mat, Store, sgemm};
use crate::storage::f32_slice;
use transform::Planes;

use crate::scratch::{Kept, Scratch};

/// Positions of a transformed tile.
const XI: usize = 16;

/// Below this many input channels im2col wins: the products' inner dimension is the
/// channel count, and gemm runs short inner dimensions poorly (the 3-channel stem).
const MIN_CHANNELS: usize = 8;

/// Below this many tiles in a batch im2col wins: the products are `C_out x C_in` by
/// `C_in x tiles`, so with few tiles transforming and packing the 16 weight matrices
/// costs more than the multiplications saved (`benches/conv.rs`: ResNet-18's 512
/// channels at 2x2 take 2.7x longer at batch 32, 32 tiles, and 5% less at batch 128).
const MIN_TILES: usize = 128;

/// Whether this module can compute a conv of weight `(c_out, c_in, kh, kw)` at `stride`
/// and `padding`.
pub(crate) fn fits(weight: &Shape, stride: usize, padding: usize) -> bool {
    matches!(weight.dims(), &[_, _, 3, 3]) && stride == 1 && padding == 1
}

/// Whether it also beats im2col on input `x`.
pub(crate) fn wins(x: &Shape, weight: &Shape, stride: usize, padding: usize) -> bool {
    let enough = match (x.dims(), weight.dims()) {
        (&[batch, _, h, w], &[_, c_in, _, _]) => {
            c_in >= MIN_CHANNELS && batch * h.div_ceil(2) * w.div_ceil(2) >= MIN_TILES
        }
        _ => false,
    };
    enough && fits(weight, stride, padding)
}

/// Shapes of one convolution and its tiling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiling {
    batch: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
}

impl Tiling {
    pub(crate) fn new(x: &Shape, weight: &Shape) -> Result<Tiling> {
        let (batch, c_in, h, w) = x.dims4()?;
        let (c_out, wc_in, kh, kw) = weight.dims4()?;
        if wc_in != c_in {
            bail!("winograd conv: input has {c_in} channels, weight expects {wc_in}")
        }
        if (kh, kw) != (3, 3) {
            bail!("winograd conv: kernel must be 3x3, got {kh}x{kw}")
        }
        Ok(Tiling {
            batch,
            c_in,
            c_out,
            h,
            w,
        })
    }

    fn plane(&self) -> usize {
        self.h * self.w
    }

    fn tiles(&self) -> usize {
        self.h.div_ceil(2) * self.w.div_ceil(2)
    }

    /// Images transformed at once: as many as keep the wider of the transformed input
    /// and output chunks within 4 MiB, so a chunk stays in cache from its transform to its
    /// product (the same budget as im2col's).
    fn chunk(&self) -> usize {
        const BUDGET: usize = 1 << 20;
        let per_image = XI * self.c_in.max(self.c_out) * self.tiles();
        (BUDGET / per_image.max(1)).clamp(1, self.batch.max(1))
    }

    /// The chunks: `(first image, images)`.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (batch, chunk) = (self.batch, self.chunk());
        (0..batch)
            .step_by(chunk)
            .map(move |first| (first, chunk.min(batch - first)))
    }

    fn planes(&self, nb: usize) -> Planes {
        Planes {
            h: self.h,
            w: self.w,
            nb,
        }
    }

    /// Plane `(image, channel)` of a `(B, channels, H, W)` tensor.
    fn plane_of<'a>(&self, data: &'a [f32], channels: usize, image: usize, c: usize) -> &'a [f32] {
        let start = (image * channels + c) * self.plane();
        &data[start..start + self.plane()]
    }

    /// Values of the whole batch's transformed input (every chunk's `V`).
    fn transformed_len(&self) -> usize {
        XI * self.c_in * self.batch * self.tiles()
    }

    /// Where the chunk from image `first` starts in the whole batch's transformed input.
    fn transformed_offset(&self, first: usize) -> usize {
        XI * self.c_in * first * self.tiles()
    }

    /// `B^T d B` of images `first..first + nb` into `v`, laid out `[c_in][xi][tile][image]`,
    /// in parallel over channels.
    fn transform_inputs(&self, x: &[f32], first: usize, nb: usize, v: &mut [f32]) {
        let (p, t) = (self.planes(nb), nb * self.tiles());
        v[..self.c_in * XI * t]
            .par_chunks_mut((XI * t).max(1))
            .enumerate()
            .for_each_init(
                || Scratch::take(p.padded_len()),
                |staged, (c, block)| {
                    p.stage_input(|i| self.plane_of(x, self.c_in, first + i, c), staged);
                    p.input(staged, block, t);
                },
            );
    }

    /// `A dY A^T` of images `first..first + nb`'s output gradients into `dm`, laid out
    /// `[c_out][xi][tile][image]`, in parallel over channels.
    fn transform_output_grads(&self, dy: &[f32], first: usize, nb: usize, dm: &mut [f32]) {
        let (p, t) = (self.planes(nb), nb * self.tiles());
        dm[..self.c_out * XI * t]
            .par_chunks_mut((XI * t).max(1))
            .enumerate()
            .for_each_init(
                || Scratch::take(p.tiled_len()),
                |staged, (c, block)| {
                    p.stage_output(|i| self.plane_of(dy, self.c_out, first + i, c), staged);
                    p.output_adjoint(staged, block, t);
                },
            );
    }
}

/// The 16 transformed weights `G k G^T`, laid out `[xi][c_out][c_in]`: each kernel's 16
/// values side by side first, then spread out per position, both in parallel.
fn transform_weights(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let n = c_out * c_in;
    let mut per_kernel = vec![0f32; XI * n];
    per_kernel
        .par_chunks_mut(XI * c_in.max(1))
        .zip(weight.par_chunks(9 * c_in.max(1)))
        .for_each(|(out, ks)| {
            for (u, k) in out.chunks_exact_mut(XI).zip(ks.chunks_exact(9)) {
                u.copy_from_slice(&transform::kernel(k));
            }
        });
    let mut u = vec![0f32; XI * n];
    u.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(xi, row)| {
            for (d, kernel) in row.iter_mut().zip(per_kernel.chunks_exact(XI)) {
                *d = kernel[xi];
            }
        });
    u
}

/// `dst[xi] = lhs[xi] * rhs[xi]` for the 16 positions, in parallel over them; `dst` is
/// dense per position, the operands' views start `lhs_step` and `rhs_step` apart.
#[allow(clippy::too_many_arguments)]
fn products(
    dst: &mut [f32],
    dst_mat: Mat,
    lhs: &[f32],
    lhs_mat: Mat,
    lhs_step: usize,
    rhs: &[f32],
    rhs_mat: Mat,
    rhs_step: usize,
    store: Store,
) -> Result<()> {
    let size = dst_mat.rows * dst_mat.cols;
    dst[..XI * size]
        .par_chunks_mut(size.max(1))
        .enumerate()
        .try_for_each(|(xi, d)| {
            sgemm(
                d,
                dst_mat,
                &lhs[xi * lhs_step..],
                lhs_mat,
                &rhs[xi * rhs_step..],
                rhs_mat,
                store,
                1,
            )
        })
}

/// `y = conv2d(x, weight)`, 3x3, stride 1, padding 1. Keeps the transformed weights for
/// its backward, whose input gradient needs them again.
#[derive(Debug, Default)]
struct Forward {
    weights: OnceLock<Arc<Vec<f32>>>,
    /// Where the transformed input (every chunk's `V`, one after another) is kept for the
    /// weight gradient, if it is (see [`KEPT_INPUT`]).
    kept_input: Option<OnceLock<Arc<Kept>>>,
}

/// Largest transformed input (values, 4x the conv's input) the forward keeps for the
/// weight gradient, which then skips transforming the input again (the same values, so
/// the same result): the narrow models' convs keep theirs (under 0.5M values), a
/// ResNet-18 at batch 128 (8M a conv) transforms again rather than hold ~250 MB more.
const KEPT_INPUT: usize = 1 << 21;

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "winograd-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let g = Tiling::new(l1.shape(), l2.shape())?;
        let x = f32_slice(s1, l1, "winograd conv", "input")?;
        let weight = f32_slice(s2, l2, "winograd conv", "weight")?;
        let u = self
            .weights
            .get_or_init(|| Arc::new(transform_weights(weight, g.c_out, g.c_in)));
        let most = g.chunk() * g.tiles();
        // Each chunk's V goes to the kept whole-batch buffer, or to reused scratch.
        let (kept_len, scratch_len) = match self.kept_input {
            Some(_) => (g.transformed_len(), 0),
            None => (0, XI * g.c_in * most),
        };
        let mut scratch = Scratch::take(scratch_len);
        let mut kept = Kept::take(kept_len);
        let mut m = Scratch::take(XI * g.c_out * most);
        let mut staged = Scratch::take(g.c_out * g.planes(g.chunk()).tiled_len());
        let mut y = vec![0f32; g.batch * g.c_out * g.plane()];
        for (first, nb) in g.chunks() {
            let t = nb * g.tiles();
            let v = match self.kept_input {
                Some(_) => &mut kept[g.transformed_offset(first)..],
                None => &mut scratch[..],
            };
            g.transform_inputs(x, first, nb, v);
            let v = &*v;
            // M[xi] (C_out x t) = U[xi] (C_out x C_in) V[xi] (C_in x t, rows 16 t apart).
            let v_mat = Mat {
                rows: g.c_in,
                cols: t,
                row_stride: XI * t,
                col_stride: 1,
            };
            let u_mat = Mat::dense(g.c_out, g.c_in);
            let m_mat = Mat::dense(g.c_out, t);
            let u_step = g.c_out * g.c_in;
            products(
                &mut m,
                m_mat,
                u,
                u_mat,
                u_step,
                v,
                v_mat,
                t,
                Store::Overwrite,
            )?;
            // Y = A^T M A per output channel into whole staged tiles, then per plane.
            let p = g.planes(nb);
            let tl = p.tiled_len();
            staged[..g.c_out * tl]
                .par_chunks_mut(tl.max(1))
                .enumerate()
                .for_each(|(c, tiled)| p.output(&m[c * t..], g.c_out * t, tiled));
            let out = &mut y[first * g.c_out * g.plane()..(first + nb) * g.c_out * g.plane()];
            let staged = &staged;
            out.par_chunks_mut(g.plane().max(1))
                .enumerate()
                .for_each(|(j, plane)| {
                    let (i, c) = (j / g.c_out, j % g.c_out);
                    p.unstage_output(&staged[c * tl..], i, plane);
                });
        }
        if let Some(slot) = &self.kept_input {
            slot.get_or_init(|| Arc::new(kept));
        }
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.batch, g.c_out, g.h, g.w)),
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
        let input_grad = InputGrad {
            weights: self.weights.get().cloned(),
        };
        let dx = crate::conv2d::input_grad(x, || grad.apply_op2_no_bwd(weight, &input_grad))?;
        let weight_grad = WeightGrad {
            input: self
                .kept_input
                .as_ref()
                .and_then(|slot| slot.get().cloned()),
        };
        let dw = x.apply_op2_no_bwd(&grad, &weight_grad)?;
        Ok((dx, Some(dw)))
    }
}

/// `dx` from `(dy, weight)`: `dV[xi] = U[xi]^T dM[xi]`, then `B dV B^T` added onto the
/// input windows.
struct InputGrad {
    /// The forward's transformed weights, when it kept them.
    weights: Option<Arc<Vec<f32>>>,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "winograd-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let (batch, c_out, h, w) = l1.shape().dims4()?;
        let (_, c_in, _, _) = l2.shape().dims4()?;
        let x_shape = Shape::from((batch, c_in, h, w));
        let g = Tiling::new(&x_shape, l2.shape())?;
        if g.c_out != c_out {
            bail!(
                "winograd conv backward: gradient has {c_out} channels, weight {}",
                g.c_out
            )
        }
        let dy = f32_slice(s1, l1, "winograd conv", "output gradient")?;
        let weight = f32_slice(s2, l2, "winograd conv", "weight")?;
        let u = match &self.weights {
            Some(u) => Arc::clone(u),
            None => Arc::new(transform_weights(weight, g.c_out, g.c_in)),
        };
        let most = g.chunk() * g.tiles();
        let mut dm = Scratch::take(XI * g.c_out * most);
        let mut dv = Scratch::take(XI * g.c_in * most);
        let mut padded = Scratch::take(g.c_in * g.planes(g.chunk()).padded_len());
        let mut dx = vec![0f32; g.batch * g.c_in * g.plane()];
        for (first, nb) in g.chunks() {
            let t = nb * g.tiles();
            g.transform_output_grads(dy, first, nb, &mut dm);
            let dm_mat = Mat {
                rows: g.c_out,
                cols: t,
                row_stride: XI * t,
                col_stride: 1,
            };
            products(
                &mut dv,
                Mat::dense(g.c_in, t),
                &u,
                Mat::dense(g.c_out, g.c_in).t(),
                g.c_out * g.c_in,
                &dm,
                dm_mat,
                t,
                Store::Overwrite,
            )?;
            // B dV B^T per input channel onto its zeroed, padded planes, then per plane.
            let p = g.planes(nb);
            let pl = p.padded_len();
            padded[..g.c_in * pl]
                .par_chunks_mut(pl.max(1))
                .enumerate()
                .for_each(|(c, block)| {
                    block.fill(0.0);
                    p.input_adjoint(&dv[c * t..], g.c_in * t, block);
                });
            let out = &mut dx[first * g.c_in * g.plane()..(first + nb) * g.c_in * g.plane()];
            let padded = &padded;
            out.par_chunks_mut(g.plane().max(1))
                .enumerate()
                .for_each(|(j, plane)| {
                    let (i, c) = (j / g.c_in, j % g.c_in);
                    p.unstage_input(&padded[c * pl..], i, plane);
                });
        }
        Ok((CpuStorage::F32(dx), x_shape))
    }
}

/// `dW` from `(x, dy)`: `dU[xi]^T = V[xi] dM[xi]^T` summed over chunks in order, then
/// `G^T dU G` per kernel.
struct WeightGrad {
    /// The forward's transformed input, when it kept it.
    input: Option<Arc<Kept>>,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "winograd-conv2d-weight-grad"
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
        let w_shape = Shape::from((c_out, c_in, 3, 3));
        let g = Tiling::new(l1.shape(), &w_shape)?;
        if l2.shape().dims() != [g.batch, c_out, g.h, g.w] {
            bail!(
                "winograd conv backward: gradient shape {:?} does not match output {:?}",
                l2.shape().dims(),
                [g.batch, c_out, g.h, g.w]
            )
        }
        let x = f32_slice(s1, l1, "winograd conv", "input")?;
        let dy = f32_slice(s2, l2, "winograd conv", "output gradient")?;
        let dw = g.weight_grad(x, dy, self.input.as_deref())?;
        Ok((CpuStorage::F32(dw), w_shape))
    }
}

impl Tiling {
    /// The weight gradient `(C_out, C_in, 3, 3)` of input `x` and output gradient `dy`,
    /// from the forward's transformed input when it kept it (`input`).
    pub(crate) fn weight_grad(
        &self,
        x: &[f32],
        dy: &[f32],
        input: Option<&Kept>,
    ) -> Result<Vec<f32>> {
        let most = self.chunk() * self.tiles();
        if let Some(kept) = input
            && kept.len() != self.transformed_len()
        {
            bail!("winograd conv backward: the kept transformed input does not fit the input")
        }
        let mut scratch = Scratch::take(match input {
            Some(_) => 0,
            None => XI * self.c_in * most,
        });
        let mut dm = Scratch::take(XI * self.c_out * most);
        // [xi][c_in][c_out]: gemm runs this orientation (long sums, the narrow operand
        // transposed) faster than dU = dM V^T, as for im2col's weight gradient.
        let mut dut = vec![0f32; XI * self.c_in * self.c_out];
        for (first, nb) in self.chunks() {
            let t = nb * self.tiles();
            let v: &[f32] = match input {
                Some(kept) => &kept[self.transformed_offset(first)..],
                None => {
                    self.transform_inputs(x, first, nb, &mut scratch);
                    &scratch
                }
            };
            self.transform_output_grads(dy, first, nb, &mut dm);
            let strided = |rows| Mat {
                rows,
                cols: t,
                row_stride: XI * t,
                col_stride: 1,
            };
            let store = if first == 0 {
                Store::Overwrite
            } else {
                Store::Accumulate
            };
            products(
                &mut dut,
                Mat::dense(self.c_in, self.c_out),
                v,
                strided(self.c_in),
                t,
                &dm,
                strided(self.c_out).t(),
                t,
                store,
            )?;
        }
        let n = self.c_in * self.c_out;
        let mut dw = vec![0f32; n * 9];
        dw.par_chunks_mut(9 * self.c_in)
            .enumerate()
            .for_each(|(co, kernels)| {
                for (ci, k) in kernels.chunks_exact_mut(9).enumerate() {
                    let du = std::array::from_fn(|xi| dut[xi * n + ci * self.c_out + co]);
                    k.copy_from_slice(&transform::kernel_adjoint(du));
                }
            });
        Ok(dw)
    }
}

/// `conv2d(x, weight)` for a 3x3 weight at stride 1 and padding 1, f32 on the CPU.
pub(crate) fn conv2d(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let g = Tiling::new(x.shape(), weight.shape())?;
    let keep = weight.track_op() && g.transformed_len() <= KEPT_INPUT;
    let forward = Forward {
        kept_input: keep.then(OnceLock::new),
        ..Forward::default()
    };
    x.contiguous()?.apply_op2(&weight.contiguous()?, forward)
}
