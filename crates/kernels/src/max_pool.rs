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

    /// Each window's first maximum in row-major order (`top`) and its flat index within
    /// the `h x w` plane (`best`), for one plane. A window always overlaps the input when
    /// `2 padding <= kernel` (checked by `max_pool2d`); padding cells never win.
    ///
    /// In two passes, as the window is a product of a row range and a column range:
    /// each input row's maximum over every window's columns (`rows`), then each
    /// window's maximum over its rows' maxima, compared across whole rows of windows
    /// (contiguous, so it vectorises). The first maximum of the first row holding the
    /// window's maximum is its first in row-major order, and a NaN wins over what comes
    /// before it in both passes, so this is the one-window rule exactly; and a row
    /// shared by overlapping windows (stride under the kernel) is scanned once, not
    /// once per window: the narrow ResNet-18's pool (64 x 8 planes of 28 x 28) took
    /// 0.75 ms scanning per window (5% of its step), 0.54 ms so.
    #[inline(always)]
    fn pool_plane<T: Elem>(
        &self,
        plane: &[T],
        (h, w): (usize, usize),
        top: &mut [T],
        best: &mut [u32],
        rows: &mut RowMaxima<T>,
    ) {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let ow = rows.ow;
        for ((row, values), cols) in plane
            .chunks_exact(w)
            .zip(rows.values.chunks_exact_mut(ow))
            .zip(rows.columns.chunks_exact_mut(ow))
        {
            for (ox, (m, at)) in values.iter_mut().zip(cols.iter_mut()).enumerate() {
                // Window `ox`'s columns, clipped to the input: never empty (see above).
                let range = (ox * s).saturating_sub(p)..(ox * s + k - p).min(w);
                let (mut top, mut first) = (row[range.start], range.start);
                for (x, &v) in row.iter().enumerate().take(range.end).skip(range.start + 1) {
                    // Strict `>` keeps the first maximum; a NaN wins, as in PyTorch.
                    // `|`, not `||`: no branch on the data.
                    let take = (v > top) | v.is_nan();
                    // Where the maximum lies is data: selects, not branches that mispredict
                    // (the narrow ResNet-18's pool 0.55 -> 0.50 ms with AVX-512).
                    top = select_unpredictable(take, v, top);
                    first = select_unpredictable(take, x, first);
                }
                *m = top;
                // `h * w` fits in u32 (checked by `dims4`).
                *at = first as u32;
            }
        }
        for (oy, (top, best)) in top.chunks_mut(ow).zip(best.chunks_mut(ow)).enumerate() {
            // Window rows clipped to the input.
            let y0 = (oy * s).saturating_sub(p);
            let y1 = (oy * s + k - p).min(h);
            let values = |y: usize| &rows.values[y * ow..(y + 1) * ow];
            let cols = |y: usize| &rows.columns[y * ow..(y + 1) * ow];
            top.copy_from_slice(values(y0));
            let base = (y0 * w) as u32;
            for (b, &x) in best.iter_mut().zip(cols(y0)) {
                *b = base + x;
            }
            for y in y0 + 1..y1 {
                let base = (y * w) as u32;
                for ((t, b), (&v, &x)) in top
                    .iter_mut()
                    .zip(best.iter_mut())
                    .zip(values(y).iter().zip(cols(y)))
                {
                    let take = (v > *t) | v.is_nan();
                    *t = select_unpredictable(take, v, *t);
                    *b = select_unpredictable(take, base + x, *b);
                }
            }
        }
    }
}

/// One plane's row maxima over every window's columns: `values[y ow + ox]` is the first
/// maximum of input row `y` over window `ox`'s columns, `columns[y ow + ox]` its column.
struct RowMaxima<T> {
    ow: usize,
    values: Vec<T>,
    columns: Vec<u32>,
}

impl<T: Elem> RowMaxima<T> {
    fn new(h: usize, ow: usize) -> Self {
        RowMaxima {
            ow,
            values: vec![T::LOWEST; h * ow],
            columns: vec![0; h * ow],
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
        out.par_chunks_mut(oh * ow)
            .zip(idx.par_chunks_mut(oh * ow))
            .zip(data.par_chunks(h * w))
            .for_each_init(
                || RowMaxima::new(h, ow),
                |rows, ((o, idx), plane)| {
                    crate::simd::vectorized(
                        #[inline(always)]
                        || self.pool.pool_plane(plane, (h, w), o, idx, rows),
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
