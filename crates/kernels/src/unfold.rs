//! A convolution as one matrix product over its column matrix (`unfold`, im2col), whose
//! backward is two matrix products and the column matrix's adjoint (`fold`, col2im): the
//! kernel set [`crate::Kernels::Unfold`], which the fast kernels become on a GPU.
//!
//! candle 0.11 computes a conv's input gradient on CUDA with a direct transposed
//! convolution, one thread per input cell looping over every output channel and tap; here it
//! is cuBLAS's product `W^T dY` and a gather. The column matrix is made again in the backward
//! (for the weight gradient `dY cols^T`) instead of kept from the forward, so a model's
//! columns are never all alive at once. CPU and CUDA (`cuda/unfold.cu`) kernels add in the
//! same order; the CPU ones serve the tests and the GPU check's dry run.
//!
//! Columns: `(C k k, B OH OW)`, row `(c k + ky) k + kx`, column `(b OH + oy) OW + ox`.

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::storage::contiguous;

/// The geometry of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Geometry {
    fn new(x: &Shape, k: usize, stride: usize, padding: usize) -> Result<Geometry> {
        let &[batch, channels, h, w] = x.dims() else {
            bail!(
                "conv2d (unfold): expected a (B, C, H, W) input, got {:?}",
                x.dims()
            )
        };
        if k == 0 || stride == 0 || h + 2 * padding < k || w + 2 * padding < k {
            bail!(
                "conv2d (unfold): a {k}x{k} kernel at stride {stride}, padding {padding} does not fit {h}x{w}"
            )
        }
        let out = |len: usize| (len + 2 * padding - k) / stride + 1;
        Ok(Geometry {
            batch,
            channels,
            h,
            w,
            oh: out(h),
            ow: out(w),
            k,
            stride,
            padding,
        })
    }

    /// Rows and columns of the column matrix.
    pub(crate) fn cols(&self) -> (usize, usize) {
        (
            self.channels * self.k * self.k,
            self.batch * self.oh * self.ow,
        )
    }

    pub(crate) fn input_len(&self) -> usize {
        self.batch * self.channels * self.h * self.w
    }

    /// The input cell column `col` of row `row` reads, if not padding.
    fn source(&self, row: usize, col: usize) -> Option<usize> {
        let (c, ky, kx) = (row / (self.k * self.k), row / self.k % self.k, row % self.k);
        let (b, oy, ox) = (
            col / (self.oh * self.ow),
            col / self.ow % self.oh,
            col % self.ow,
        );
        let y = (oy * self.stride + ky).checked_sub(self.padding)?;
        let x = (ox * self.stride + kx).checked_sub(self.padding)?;
        (y < self.h && x < self.w).then(|| ((b * self.channels + c) * self.h + y) * self.w + x)
    }

    fn unfold_cpu<T: Copy + Default + Send + Sync>(&self, x: &[T]) -> Vec<T> {
        let (rows, width) = self.cols();
        let mut cols = vec![T::default(); rows * width];
        cols.par_chunks_mut(width)
            .enumerate()
            .for_each(|(row, out)| {
                for (col, v) in out.iter_mut().enumerate() {
                    if let Some(i) = self.source(row, col) {
                        *v = x[i];
                    }
                }
            });
        cols
    }

    /// Each input cell: the sum, in (ky, kx) order, of the column entries that read it.
    fn fold_cpu<T: Copy + Default + Send + Sync + std::ops::AddAssign>(
        &self,
        cols: &[T],
    ) -> Vec<T> {
        let (_, width) = self.cols();
        let mut x = vec![T::default(); self.input_len()];
        x.par_chunks_mut(self.h * self.w)
            .enumerate()
            .for_each(|(plane, out)| {
                let (b, c) = (plane / self.channels, plane % self.channels);
                for (cell, v) in out.iter_mut().enumerate() {
                    let (y, xx) = (cell / self.w, cell % self.w);
                    let mut sum = T::default();
                    for ky in 0..self.k {
                        let Some(ty) = (y + self.padding).checked_sub(ky) else {
                            continue;
                        };
                        if ty % self.stride != 0 || ty / self.stride >= self.oh {
                            continue;
                        }
                        for kx in 0..self.k {
                            let Some(tx) = (xx + self.padding).checked_sub(kx) else {
                                continue;
                            };
                            if tx % self.stride != 0 || tx / self.stride >= self.ow {
                                continue;
                            }
                            let row = (c * self.k + ky) * self.k + kx;
                            let col = (b * self.oh + ty / self.stride) * self.ow + tx / self.stride;
                            sum += cols[row * width + col];
                        }
                    }
                    *v = sum;
                }
            });
        x
    }
}

/// `x (B, C, H, W)` to its column matrix.
struct Unfold(Geometry);

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "unfold"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        if layout.shape().elem_count() != self.0.input_len() {
            bail!(
                "unfold: input of shape {:?} for {:?}",
                layout.shape().dims(),
                self.0
            )
        }
        let cols = match storage {
            CpuStorage::F32(x) => {
                CpuStorage::F32(self.0.unfold_cpu(contiguous(x, layout, "unfold", "input")?))
            }
            CpuStorage::F64(x) => {
                CpuStorage::F64(self.0.unfold_cpu(contiguous(x, layout, "unfold", "input")?))
            }
            other => bail!("unfold: unsupported dtype {:?}", other.dtype()),
        };
        Ok((cols, Shape::from(self.0.cols())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::unfold(&self.0, storage, layout)
    }
}

/// A column matrix's gradient back onto the input: the adjoint of [`Unfold`].
struct Fold(Geometry);

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "fold"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[layout.dims()]);
        let (rows, width) = self.0.cols();
        if layout.shape().dims() != [rows, width] {
            bail!(
                "fold: columns of shape {:?} for {:?}",
                layout.shape().dims(),
                self.0
            )
        }
        let x = match storage {
            CpuStorage::F32(c) => {
                CpuStorage::F32(self.0.fold_cpu(contiguous(c, layout, "fold", "columns")?))
            }
            CpuStorage::F64(c) => {
                CpuStorage::F64(self.0.fold_cpu(contiguous(c, layout, "fold", "columns")?))
            }
            other => bail!("fold: unsupported dtype {:?}", other.dtype()),
        };
        let g = &self.0;
        Ok((x, Shape::from((g.batch, g.channels, g.h, g.w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::fold(&self.0, storage, layout)
    }
}

/// The convolution `(x, W) -> y`: the weight as an `(O, C k k)` matrix times the columns,
/// laid out as `(B, O, OH, OW)`.
struct Conv(Geometry);

impl Conv {
    /// The product and the layout change, on any backend: `columns` are `x`'s, made by the
    /// backend's own [`Unfold`].
    fn product<S: BackendStorage<Device = D>, D: BackendDevice<Storage = S>>(
        &self,
        weight: &S,
        weight_layout: &Layout,
        columns: &S,
        device: &D,
    ) -> Result<(S, Shape)> {
        let g = &self.0;
        let (rows, width) = g.cols();
        let out = weight_layout.shape().dims()[0];
        let Some((start, _)) = weight_layout.contiguous_offsets() else {
            bail!("conv2d (unfold): the weight must be contiguous")
        };
        let w2 = Layout::contiguous_with_offset((out, rows), start);
        let cols = Layout::contiguous((rows, width));
        // (O, C k k) x (C k k, B OH OW) -> (O, B OH OW).
        let product = weight.matmul(columns, (1, out, width, rows), &w2, &cols)?;
        // Read as (O, B, OH OW) and written out as (B, O, OH OW).
        let shape = Shape::from((g.batch, out, g.oh, g.ow));
        let transposed = Layout::contiguous((out, g.batch, g.oh * g.ow)).transpose(0, 1)?;
        let mut y = device.zeros_impl(&shape, weight.dtype())?;
        product.copy_strided_src(&mut y, 0, &transposed)?;
        Ok((y, shape))
    }
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "conv2d-unfold"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[x_layout.dims(), w_layout.dims()]);
        let (columns, _) = Unfold(self.0).cpu_fwd(x, x_layout)?;
        self.product(w, w_layout, &columns, &candle_core::cpu_backend::CpuDevice)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        w: &candle_core::CudaStorage,
        w_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (columns, _) = Unfold(self.0).cuda_fwd(x, x_layout)?;
        self.product(w, w_layout, &columns, &x.device)
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = &self.0;
        let (rows, width) = g.cols();
        let out = weight.dim(0)?;
        // dY as (O, B OH OW), the product's own layout.
        let dy = grad.transpose(0, 1)?.contiguous()?.reshape((out, width))?;
        let w2 = weight.contiguous()?.reshape((out, rows))?;
        let dx = crate::conv2d::input_grad(x, || w2.t()?.matmul(&dy)?.apply_op1_no_bwd(&Fold(*g)))?;
        let columns = x.contiguous()?.apply_op1_no_bwd(&Unfold(*g))?;
        let dw = dy.matmul(&columns.t()?)?.reshape(weight.shape())?;
        Ok((dx, Some(dw)))
    }
}

/// `x (B, C, H, W)` convolved with `weight (O, C, k, k)` at `stride` and zero `padding`
/// (no bias, no dilation, one group), through the column matrix; f32 or f64, on the CPU
/// and (with the `cuda` feature) on CUDA.
pub fn conv2d_unfold(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (_, c, k, k2) = weight.dims4()?;
    if k != k2 || x.dim(1)? != c {
        bail!(
            "conv2d (unfold): weight {:?} does not fit input {:?}",
            weight.dims(),
            x.dims()
        )
    }
    if !matches!(x.dtype(), DType::F32 | DType::F64) {
        bail!("conv2d (unfold): unsupported dtype {:?}", x.dtype())
    }
    let g = Geometry::new(x.shape(), k, stride, padding)?;
    x.contiguous()?.apply_op2(&weight.contiguous()?, Conv(g))
}

/// The column matrix `(C k k, B OH OW)` of `x (B, C, H, W)` for a `k x k` kernel at
/// `stride` and zero `padding` (im2col); not differentiable.
pub fn unfold2d(x: &Tensor, k: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let g = Geometry::new(x.shape(), k, stride, padding)?;
    x.contiguous()?.apply_op1_no_bwd(&Unfold(g))
}

/// The adjoint of [`unfold2d`] (col2im): `columns` summed back onto an input of `shape`;
/// not differentiable.
pub fn fold2d(
    columns: &Tensor,
    shape: (usize, usize, usize, usize),
    k: usize,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let g = Geometry::new(&Shape::from(shape), k, stride, padding)?;
    columns.contiguous()?.apply_op1_no_bwd(&Fold(g))
}

/// The CUDA side: buffers for the kernels of `cuda/unfold.cu`.
#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, ValidAsZeroBits};
    use candle_core::cuda_backend::{CudaDevice, CudaStorageSlice};
    use candle_core::{CudaStorage, Layout, Result, Shape, bail};

    use super::Geometry;
    use crate::cuda::Float;
    use crate::cuda::launch::{self, UnfoldGeometry};

    fn geometry(g: &Geometry) -> Result<UnfoldGeometry> {
        let u = |v: usize| crate::cuda::count(v, OP);
        Ok(UnfoldGeometry {
            batch: u(g.batch)?,
            channels: u(g.channels)?,
            h: u(g.h)?,
            w: u(g.w)?,
            oh: u(g.oh)?,
            ow: u(g.ow)?,
            k: u(g.k)?,
            stride: u(g.stride)?,
            padding: u(g.padding)?,
        })
    }

    const OP: &str = "conv2d (unfold, CUDA)";

    /// Which way between an input and its column matrix.
    #[derive(Clone, Copy)]
    enum Pass {
        Unfold,
        Fold,
    }

    fn run<T: Float + ValidAsZeroBits>(
        dev: &CudaDevice,
        src: &CudaSlice<T>,
        layout: &Layout,
        g: UnfoldGeometry,
        pass: Pass,
    ) -> Result<CudaSlice<T>> {
        let (what, len) = match pass {
            Pass::Unfold => ("input", g.columns()?),
            Pass::Fold => ("columns", g.inputs()?),
        };
        let (start, end) = crate::cuda::range(layout, OP, what)?;
        let mut dst = dev.alloc_zeros::<T>(len as usize)?;
        let src = src.slice(start..end);
        match pass {
            Pass::Unfold => launch::unfold(dev, &src, &mut dst, g)?,
            Pass::Fold => launch::fold(dev, &src, &mut dst, g)?,
        }
        Ok(dst)
    }

    fn apply(
        g: &Geometry,
        storage: &CudaStorage,
        layout: &Layout,
        pass: Pass,
        shape: Shape,
    ) -> Result<(CudaStorage, Shape)> {
        let ug = geometry(g)?;
        let dev = &storage.device;
        let slice = match &storage.slice {
            CudaStorageSlice::F32(s) => CudaStorageSlice::F32(run(dev, s, layout, ug, pass)?),
            CudaStorageSlice::F64(s) => CudaStorageSlice::F64(run(dev, s, layout, ug, pass)?),
            _ => bail!(
                "conv2d (unfold, CUDA): unsupported dtype {:?}",
                storage.dtype()
            ),
        };
        Ok((
            CudaStorage {
                slice,
                device: dev.clone(),
            },
            shape,
        ))
    }

    pub(super) fn unfold(
        g: &Geometry,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        apply(g, storage, layout, Pass::Unfold, Shape::from(g.cols()))
    }

    pub(super) fn fold(
        g: &Geometry,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let shape = Shape::from((g.batch, g.channels, g.h, g.w));
        apply(g, storage, layout, Pass::Fold, shape)
    }
}
