//! 2D max pooling with padding, as PyTorch's `nn.MaxPool2d` (no dilation, floor mode).
//!
//! Padding behaves as `-inf`: a padded cell is never the maximum. The gradient of each
//! output goes to the first maximum of its window in row-major order, as PyTorch does on
//! ties; overlapping windows add their gradients.
//!
//! CPU and CUDA kernels (`cuda/max_pool.cu`, with the `cuda` feature) follow the same
//! rules and add in the same order, so both devices give the same bits.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use std::hint::select_unpredictable;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::storage::contiguous;

/// Window geometry shared by the forward and backward ops.
#[derive(Debug, Clone, Copy)]
struct Pool {
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Pool {
    /// Output length of one spatial axis (floor mode), or an error when the window
    /// never fits.
    fn out_len(&self, len: usize) -> Result<usize> {
        let padded = len + 2 * self.padding;
        if padded < self.kernel {
            bail!(
                "max_pool2d: input length {len} with padding {} is smaller than kernel {}",
                self.padding,
                self.kernel
            )
        }
        Ok((padded - self.kernel) / self.stride + 1)
    }

    /// The phases of the stride that some tap reads: `min(stride, kernel)`.
    fn phases(&self) -> usize {
        self.stride.min(self.kernel)
    }

    /// The taps' furthest reach past a window's first phase cell: `(kernel - 1) / stride`.
    fn reach(&self) -> usize {
        (self.kernel - 1) / self.stride
    }

    /// The input coordinate that slot `j` of phase `r` holds (`j stride + r - padding`), or
    /// `None` where it is padding, on an axis of length `n`.
    fn phase_cell(&self, j: usize, r: usize, n: usize) -> Option<usize> {
        (j * self.stride + r)
            .checked_sub(self.padding)
            .filter(|&at| at < n)
    }

    /// Each window's first maximum in row-major order (`top`) and its flat index within
    /// the `h x w` plane (`best`), for one plane. A window always overlaps the input when
    /// `2 padding <= kernel` (checked by `max_pool2d`).
    ///
    /// In two passes, as the window is a product of a row range and a column range: each
    /// input row's maximum over every window's columns, then each window's maximum over
    /// its rows' maxima. The first maximum of the first row holding the window's maximum
    /// is its first in row-major order, and a NaN wins over what comes before it in both
    /// passes, so this is the one-window rule exactly.
    ///
    /// Each pass is split by the stride's phase (see [`Phases`]) so that one tap of every
    /// window of the plane is a single contiguous slice: a pass is `kernel` elementwise
    /// compare-and-selects over the whole plane, which vectorise. Per window, or per row
    /// of 14 windows, they did not: the compiler's vector loop wants 32 lanes with AVX2,
    /// and the narrow ResNet-18's pool (64 x 8 planes of 28 x 28) ran scalar, 2.2 ms of
    /// its 30 ms step on an AVX2-only EPYC.
    #[inline(always)]
    fn pool_plane<T: Elem>(
        &self,
        plane: &[T],
        (h, w): (usize, usize),
        top: &mut [T],
        best: &mut [u32],
        scratch: &mut Phases<T>,
        column_at: &[u32],
    ) {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (ow, reach) = (scratch.ow, self.reach());
        // Columns: phase r, row y, slot j holds column `j s + r - p` of row y, or -inf
        // padding; `len` slots a row, of which the first `ow` are windows.
        let len = ow + reach;
        let cells = h * len;
        for (r, phase) in scratch.columns.chunks_exact_mut(cells + reach).enumerate() {
            // The slots that hold a column, `p <= j s + r < w + p`: none in a phase past
            // the padded row's end (a kernel and stride wider than the plane).
            let end = (w + p).saturating_sub(r).div_ceil(s).min(len);
            let first = p.saturating_sub(r).div_ceil(s).min(end);
            for (row, slots) in plane.chunks_exact(w).zip(phase.chunks_exact_mut(len)) {
                slots[..first].fill(T::LOWEST);
                slots[end..].fill(T::LOWEST);
                if first < end {
                    gather_strided(&mut slots[first..end], &row[first * s + r - p..], s);
                }
            }
        }
        // Tap `dx` of window `ox` is slot `ox + dx / s` of phase `dx % s`: the whole
        // plane's in one slice (the slots past `ow` are computed and never read).
        let (values, at) = (
            &mut scratch.row_values[..cells],
            &mut scratch.row_at[..cells],
        );
        let spare = (&mut scratch.spare[..cells], &mut scratch.spare_at[..cells]);
        let columns = &scratch.columns;
        first_maxima(
            k,
            |d| {
                let from = (d % s) * (cells + reach) + d / s;
                (&columns[from..from + cells], &column_at[from..from + cells])
            },
            (values, at),
            spare,
        );
        // Rows: the row maxima by phase alike, phase r's slot j holding row `j s + r - p`.
        let rows = (scratch.oh + reach) * ow;
        for (r, (phase, phase_at)) in scratch
            .rows
            .chunks_exact_mut(rows)
            .zip(scratch.rows_at.chunks_exact_mut(rows))
            .enumerate()
        {
            for (j, (slot, slot_at)) in phase
                .chunks_exact_mut(ow)
                .zip(phase_at.chunks_exact_mut(ow))
                .enumerate()
            {
                match self.phase_cell(j, r, h) {
                    Some(y) => {
                        slot.copy_from_slice(&values[y * len..y * len + ow]);
                        slot_at.copy_from_slice(&at[y * len..y * len + ow]);
                    }
                    // Padding above wins only where every cell of the window is -inf,
                    // whose first maximum is then its first cell of row 0; padding
                    // below never wins (a window's first tap is never there).
                    _ => {
                        slot.fill(T::LOWEST);
                        slot_at.copy_from_slice(&at[..ow]);
                    }
                }
            }
        }
        let n = top.len();
        let (by_row, by_row_at) = (&scratch.rows, &scratch.rows_at);
        first_maxima(
            k,
            |d| {
                let from = (d % s) * rows + (d / s) * ow;
                (&by_row[from..from + n], &by_row_at[from..from + n])
            },
            (top, best),
            (&mut scratch.spare[..n], &mut scratch.spare_at[..n]),
        );
    }

    /// Per phase, row and slot as [`Pool::pool_plane`] reads them, the flat index of the
    /// cell a column slot holds; a padding slot holds its row's first cell, which is the
    /// first maximum of a window whose cells are all -inf (padding on the right never
    /// wins: a window's first tap is never there).
    fn column_indices(&self, (h, w): (usize, usize), ow: usize) -> Vec<u32> {
        let reach = self.reach();
        let len = ow + reach;
        let mut at = vec![0u32; self.phases() * (h * len + reach)];
        for (r, phase) in at.chunks_exact_mut(h * len + reach).enumerate() {
            for (y, slots) in phase.chunks_exact_mut(len).take(h).enumerate() {
                for (j, slot) in slots.iter_mut().enumerate() {
                    let x = self.phase_cell(j, r, w).unwrap_or(0);
                    // `h * w` fits in u32 (checked by `dims4`).
                    *slot = (y * w + x) as u32;
                }
            }
        }
        at
    }
}

/// `to[j] = from[j s]`, `from` holding at least `(to.len() - 1) s + 1` values. The
/// common strides as constants, so that the copy vectorises: by `step_by`, this copy
/// took as long as the rest of the pool.
#[inline(always)]
fn gather_strided<T: Copy>(to: &mut [T], from: &[T], s: usize) {
    match s {
        1 => to.copy_from_slice(&from[..to.len()]),
        2 => every::<2, T>(to, from),
        3 => every::<3, T>(to, from),
        _ => {
            for (t, &v) in to.iter_mut().zip(from.iter().step_by(s)) {
                *t = v;
            }
        }
    }
}

/// [`gather_strided`] for a stride known at compile time.
#[inline(always)]
fn every<const S: usize, T: Copy>(to: &mut [T], from: &[T]) {
    let Some(last) = to.len().checked_sub(1) else {
        return;
    };
    for (t, chunk) in to[..last].iter_mut().zip(from.chunks_exact(S)) {
        *t = chunk[0];
    }
    to[last] = from[last * S];
}

/// Elementwise over `taps` slices of values and their flat indices (`tap(d)`, each as
/// long as `out`), the first maximum in tap order into `out`. Merges alternate between
/// `out` and `spare`, the last landing in `out`: a merge that wrote where it read
/// became a masked store, which AMD's cores run slowly (the pool's time doubled).
#[inline(always)]
fn first_maxima<'a, T: Elem + 'a>(
    taps: usize,
    tap: impl Fn(usize) -> (&'a [T], &'a [u32]),
    out: (&mut [T], &mut [u32]),
    spare: (&mut [T], &mut [u32]),
) {
    let (first, first_at) = tap(0);
    if taps == 1 {
        out.0.copy_from_slice(first);
        out.1.copy_from_slice(first_at);
        return;
    }
    let (mut to, mut from) = if taps.is_multiple_of(2) {
        (out, spare)
    } else {
        (spare, out)
    };
    let (v, at) = tap(1);
    merge(to.0, to.1, (first, first_at), (v, at));
    for d in 2..taps {
        std::mem::swap(&mut to, &mut from);
        let (v, at) = tap(d);
        merge(to.0, to.1, (from.0, from.1), (v, at));
    }
}

/// `a` then `b`, elementwise: `b` where it is above `a` or NaN (strict `>` keeps the first
/// maximum, and a NaN wins, as in PyTorch), else `a`. `|`, not `||`, and selects, not
/// branches: where a maximum lies is data.
#[inline(always)]
fn merge<T: Elem>(out: &mut [T], out_at: &mut [u32], a: (&[T], &[u32]), b: (&[T], &[u32])) {
    for ((o, oa), ((&x, &xa), (&v, &va))) in out
        .iter_mut()
        .zip(out_at.iter_mut())
        .zip(a.0.iter().zip(a.1).zip(b.0.iter().zip(b.1)))
    {
        let take = (v > x) | v.is_nan();
        *o = select_unpredictable(take, v, x);
        *oa = select_unpredictable(take, va, xa);
    }
}

/// One thread's buffers for [`Pool::pool_plane`]: a plane's cells split by the stride's
/// phase. Phase `r` holds the cells whose coordinate plus padding is `r` modulo the
/// stride, in order; then a window's tap `d` is slot `window + d / stride` of phase
/// `d % stride`, for every window alike.
struct Phases<T> {
    oh: usize,
    ow: usize,
    /// The input's columns by phase: `[phase][h][ow + reach]`, then `reach` slots.
    columns: Vec<T>,
    /// The row pass's maxima and their flat indices, `[h][ow + reach]`.
    row_values: Vec<T>,
    row_at: Vec<u32>,
    /// The row maxima by phase: `[phase][oh + reach][ow]`, and their flat indices.
    rows: Vec<T>,
    rows_at: Vec<u32>,
    /// Where merges alternate, as long as the longer pass.
    spare: Vec<T>,
    spare_at: Vec<u32>,
}

impl<T: Elem> Phases<T> {
    fn new(pool: &Pool, (h, oh, ow): (usize, usize, usize)) -> Self {
        let (phases, reach) = (pool.phases(), pool.reach());
        let cells = h * (ow + reach);
        let rows = phases * (oh + reach) * ow;
        Phases {
            oh,
            ow,
            columns: vec![T::LOWEST; phases * (cells + reach)],
            row_values: vec![T::LOWEST; cells],
            row_at: vec![0; cells],
            rows: vec![T::LOWEST; rows],
            rows_at: vec![0; rows],
            spare: vec![T::LOWEST; cells.max(oh * ow)],
            spare_at: vec![0; cells.max(oh * ow)],
        }
    }
}

/// The element types the op runs on.
trait Elem: PartialOrd + Copy + Send + Sync + Default + std::ops::AddAssign {
    /// Below every value but NaN: a window's running maximum before its first cell.
    const LOWEST: Self;
    fn is_nan(self) -> bool;
}

impl Elem for f32 {
    const LOWEST: Self = f32::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Elem for f64 {
    const LOWEST: Self = f64::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Dimensions of a contiguous `(B, C, H, W)` input with a non-empty plane.
fn dims4(layout: &Layout) -> Result<(usize, usize, usize, usize)> {
    match layout.shape().dims() {
        &[_, _, h, w] if h == 0 || w == 0 => bail!("max_pool2d: empty spatial dimensions {h}x{w}"),
        &[_, _, h, w] if u32::try_from(h * w).is_err() => {
            bail!("max_pool2d: a {h}x{w} plane is too large")
        }
        &[b, c, h, w] => Ok((b, c, h, w)),
        d => bail!("max_pool2d expects a (batch, channels, height, width) tensor, got shape {d:?}"),
    }
}

/// Each window's argmax (plane-local, `u32`), kept by the forward for its backward, which
/// would otherwise search every window again; it lives where the pooled tensor does.
#[derive(Clone)]
enum Argmax {
    Cpu(Arc<Vec<u32>>),
    #[cfg(feature = "cuda")]
    Cuda(Arc<candle_core::cuda_backend::cudarc::driver::CudaSlice<u32>>),
}

/// The forward op; it keeps the argmax for its backward.
struct MaxPoolForward {
    pool: Pool,
    argmax: Mutex<Option<Argmax>>,
}

impl MaxPoolForward {
    fn keep(&self, argmax: Argmax) -> Result<()> {
        let mut slot = self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("max_pool2d: argmax lock poisoned".into()))?;
        *slot = Some(argmax);
        Ok(())
    }

    fn run<T: Elem>(&self, data: &[T], layout: &Layout) -> Result<(Vec<T>, Shape)> {
        let (b, c, h, w) = dims4(layout)?;
        let data = contiguous(data, layout, "max_pool2d", "input")?;
        let (oh, ow) = (self.pool.out_len(h)?, self.pool.out_len(w)?);
        let mut out = vec![T::default(); b * c * oh * ow];
        let mut idx = vec![0u32; b * c * oh * ow];
        let columns = self.pool.column_indices((h, w), ow);
        out.par_chunks_mut(oh * ow)
            .zip(idx.par_chunks_mut(oh * ow))
            .zip(data.par_chunks(h * w))
            .for_each_init(
                || Phases::new(&self.pool, (h, oh, ow)),
                |scratch, ((o, idx), plane)| {
                    crate::simd::vectorized(
                        #[inline(always)]
                        || {
                            self.pool
                                .pool_plane(plane, (h, w), o, idx, scratch, &columns)
                        },
                    )
                },
            );
        self.keep(Argmax::Cpu(Arc::new(idx)))?;
        Ok((out, Shape::from((b, c, oh, ow))))
    }
}

impl CustomOp1 for MaxPoolForward {
    fn name(&self) -> &'static str {
        "max-pool2d-padded"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        match storage {
            CpuStorage::F32(d) => self.run(d, layout).map(|(v, s)| (CpuStorage::F32(v), s)),
            CpuStorage::F64(d) => self.run(d, layout).map(|(v, s)| (CpuStorage::F64(v), s)),
            other => bail!("max_pool2d: unsupported dtype {:?}", other.dtype()),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(self, storage, layout)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let argmax = self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("max_pool2d: argmax lock poisoned".into()))?
            .clone()
            .ok_or_else(|| candle_core::Error::Msg("max_pool2d: backward before forward".into()))?;
        let op = MaxPoolBackward {
            pool: self.pool,
            argmax,
        };
        let grad = arg.apply_op2_no_bwd(&grad_res.contiguous()?, &op)?;
        Ok(Some(grad))
    }
}

/// Scatters the output gradient onto the argmax of each window, as the forward found
/// it.
struct MaxPoolBackward {
    pool: Pool,
    argmax: Argmax,
}

impl MaxPoolBackward {
    fn run<T: Elem>(&self, data: &[T], l1: &Layout, grad: &[T], l2: &Layout) -> Result<Vec<T>> {
        let (b, c, h, w) = dims4(l1)?;
        let data = contiguous(data, l1, "max_pool2d backward", "input")?;
        let grad = contiguous(grad, l2, "max_pool2d backward", "gradient")?;
        let (oh, ow) = (self.pool.out_len(h)?, self.pool.out_len(w)?);
        if l2.shape().dims() != [b, c, oh, ow] {
            bail!(
                "max_pool2d backward: gradient shape {:?}, expected {:?}",
                l2.shape().dims(),
                [b, c, oh, ow]
            )
        }
        #[allow(irrefutable_let_patterns)]
        let Argmax::Cpu(argmax) = &self.argmax else {
            bail!("max_pool2d backward: the forward ran on another device")
        };
        if argmax.len() != b * c * oh * ow || data.len() != b * c * h * w {
            bail!("max_pool2d backward: input does not match the forward's")
        }
        let mut out = vec![T::default(); b * c * h * w];
        out.par_chunks_mut(h * w)
            .zip(argmax.par_chunks(oh * ow))
            .zip(grad.par_chunks(oh * ow))
            .for_each(|((o, idx), g)| {
                for (&i, &gv) in idx.iter().zip(g) {
                    o[i as usize] += gv;
                }
            });
        Ok(out)
    }
}

impl CustomOp2 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max-pool2d-padded-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let shape = l1.shape().clone();
        match (s1, s2) {
            (CpuStorage::F32(d), CpuStorage::F32(g)) => {
                Ok((CpuStorage::F32(self.run(d, l1, g, l2)?), shape))
            }
            (CpuStorage::F64(d), CpuStorage::F64(g)) => {
                Ok((CpuStorage::F64(self.run(d, l1, g, l2)?), shape))
            }
            (a, g) => bail!(
                "max_pool2d backward: unsupported dtypes {:?} and {:?}",
                a.dtype(),
                g.dtype()
            ),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::backward(self, s1, l1, s2, l2)
    }
}

/// Max pooling over the last two dimensions of a `(B, C, H, W)` tensor, with square
/// `kernel`, `stride` and zero-free (`-inf`) `padding`, like `torch.nn.MaxPool2d(kernel,
/// stride, padding)`. Differentiable, f32 and f64, on the CPU and (with the `cuda`
/// feature) on CUDA, where forward and backward stay on the GPU.
pub fn max_pool2d(xs: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    if kernel == 0 || stride == 0 {
        bail!("max_pool2d: kernel ({kernel}) and stride ({stride}) must be positive")
    }
    // PyTorch's own rule; it also guarantees every window overlaps the input.
    if 2 * padding > kernel {
        bail!("max_pool2d: padding ({padding}) must be at most half the kernel ({kernel})")
    }
    xs.contiguous()?.apply_op1(MaxPoolForward {
        pool: Pool {
            kernel,
            stride,
            padding,
        },
        argmax: Mutex::new(None),
    })
}

/// The CUDA side of both ops: geometry and buffers for the kernels of
/// `cuda/max_pool.cu`.
#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, ValidAsZeroBits};
    use candle_core::cuda_backend::{CudaDevice, CudaStorageSlice};
    use candle_core::{CudaStorage, Layout, Result, Shape, bail};
    use std::sync::Arc;

    use super::{Argmax, MaxPoolBackward, MaxPoolForward, Pool, dims4};
    use crate::cuda::Float;
    use crate::cuda::launch::{self, PoolGeometry};

    fn geometry(pool: Pool, layout: &Layout) -> Result<PoolGeometry> {
        let (b, c, h, w) = dims4(layout)?;
        let (oh, ow) = (pool.out_len(h)?, pool.out_len(w)?);
        let u = |v: usize| crate::cuda::count(v, OP);
        Ok(PoolGeometry {
            planes: u(b * c)?,
            h: u(h)?,
            w: u(w)?,
            oh: u(oh)?,
            ow: u(ow)?,
            kernel: u(pool.kernel)?,
            stride: u(pool.stride)?,
            padding: u(pool.padding)?,
        })
    }

    const OP: &str = "max_pool2d (CUDA)";

    fn pool<T: Float + ValidAsZeroBits>(
        dev: &CudaDevice,
        x: &CudaSlice<T>,
        layout: &Layout,
        g: PoolGeometry,
        argmax: &mut CudaSlice<u32>,
    ) -> Result<CudaSlice<T>> {
        let (start, end) = crate::cuda::range(layout, OP, "input")?;
        let mut y = dev.alloc_zeros::<T>(argmax.len())?;
        launch::max_pool2d_fwd(dev, &x.slice(start..end), &mut y, argmax, g)?;
        Ok(y)
    }

    pub(super) fn forward(
        op: &MaxPoolForward,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = geometry(op.pool, layout)?;
        let dev = &storage.device;
        let mut argmax = dev.alloc_zeros::<u32>(g.planes as usize * (g.oh * g.ow) as usize)?;
        let slice = match &storage.slice {
            CudaStorageSlice::F32(x) => {
                CudaStorageSlice::F32(pool(dev, x, layout, g, &mut argmax)?)
            }
            CudaStorageSlice::F64(x) => {
                CudaStorageSlice::F64(pool(dev, x, layout, g, &mut argmax)?)
            }
            _ => bail!("max_pool2d: unsupported dtype {:?}", storage.dtype()),
        };
        op.keep(Argmax::Cuda(Arc::new(argmax)))?;
        let (b, c, _, _) = dims4(layout)?;
        let shape = Shape::from((b, c, g.oh as usize, g.ow as usize));
        Ok((
            CudaStorage {
                slice,
                device: dev.clone(),
            },
            shape,
        ))
    }

    fn unpool<T: Float + ValidAsZeroBits>(
        dev: &CudaDevice,
        grad: &CudaSlice<T>,
        layout: &Layout,
        argmax: &CudaSlice<u32>,
        g: PoolGeometry,
    ) -> Result<CudaSlice<T>> {
        let (start, end) = crate::cuda::range(layout, OP, "gradient")?;
        let mut out = dev.alloc_zeros::<T>(g.planes as usize * (g.h * g.w) as usize)?;
        launch::max_pool2d_bwd(dev, &grad.slice(start..end), argmax, &mut out, g)?;
        Ok(out)
    }

    pub(super) fn backward(
        op: &MaxPoolBackward,
        input: &CudaStorage,
        l1: &Layout,
        grad: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let g = geometry(op.pool, l1)?;
        let (b, c, _, _) = dims4(l1)?;
        if l2.shape().dims() != [b, c, g.oh as usize, g.ow as usize] {
            bail!(
                "max_pool2d backward: gradient shape {:?}, expected {:?}",
                l2.shape().dims(),
                [b, c, g.oh as usize, g.ow as usize]
            )
        }
        let Argmax::Cuda(argmax) = &op.argmax else {
            bail!("max_pool2d backward: the forward ran on another device")
        };
        let dev = &input.device;
        let slice = match (&input.slice, &grad.slice) {
            (CudaStorageSlice::F32(_), CudaStorageSlice::F32(gr)) => {
                CudaStorageSlice::F32(unpool(dev, gr, l2, argmax, g)?)
            }
            (CudaStorageSlice::F64(_), CudaStorageSlice::F64(gr)) => {
                CudaStorageSlice::F64(unpool(dev, gr, l2, argmax, g)?)
            }
            _ => bail!(
                "max_pool2d backward: unsupported dtypes {:?} and {:?}",
                input.dtype(),
                grad.dtype()
            ),
        };
        Ok((
            CudaStorage {
                slice,
                device: dev.clone(),
            },
            l1.shape().clone(),
        ))
    }
}
