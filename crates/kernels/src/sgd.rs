//! The SGD update in place, on the CPU and (with the `cuda` feature) on CUDA: two passes
//! over each parameter instead of seven freshly allocated tensors (VGG-16's 134 M
//! parameters made the tensor-op update a large part of its step). Each element goes
//! through the same f32 operations in the same order as the tensor-op form, so both give
//! identical results, and so do both devices (`cuda/sgd.cu` rounds every step on its own).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor, bail};
use rayon::prelude::*;

use crate::storage::f32_slice;

/// Elements per parallel task.
const CHUNK: usize = 1 << 16;

fn slice_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let dtype = storage.dtype();
    let CpuStorage::F32(data) = storage else {
        bail!("sgd: {what} must be f32, got {dtype:?}")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("sgd: {what} must be contiguous"),
    }
}

/// `buf = buf * momentum + (grad + p * weight_decay)`, in `buf`.
struct Momentum {
    momentum: f32,
    weight_decay: f32,
}

impl InplaceOp3 for Momentum {
    fn name(&self) -> &'static str {
        "sgd-momentum"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let _timer = crate::profile::scope(self.name());
        let buf = slice_mut(s1, l1, "momentum buffer")?;
        let (grad, p) = (
            f32_slice(s2, l2, "sgd", "gradient")?,
            f32_slice(s3, l3, "sgd", "parameter")?,
        );
        if grad.len() != buf.len() || p.len() != buf.len() {
            bail!("sgd: buffer, gradient and parameter sizes differ")
        }
        let (m, wd) = (self.momentum, self.weight_decay);
        buf.par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK).zip(p.par_chunks(CHUNK)))
            .for_each(|(buf, (grad, p))| {
                for ((b, &g), &p) in buf.iter_mut().zip(grad).zip(p) {
                    *b = *b * m + (g + p * wd);
                }
            });
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<()> {
        let dev = s1.device.clone();
        let (grad, p) = (
            cuda::view(s2, l2, "gradient")?,
            cuda::view(s3, l3, "parameter")?,
        );
        let mut buf = cuda::view_mut(s1, l1, "momentum buffer")?;
        crate::cuda::launch::sgd_momentum(
            &dev,
            &mut buf,
            &grad,
            &p,
            self.momentum,
            self.weight_decay,
        )
    }
}

/// `p = p - buf * lr`, in `p`.
struct Descend {
    lr: f32,
}

impl InplaceOp2 for Descend {
    fn name(&self) -> &'static str {
        "sgd-descend"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let _timer = crate::profile::scope(self.name());
        let p = slice_mut(s1, l1, "parameter")?;
        let buf = f32_slice(s2, l2, "sgd", "momentum buffer")?;
        if buf.len() != p.len() {
            bail!("sgd: parameter and buffer sizes differ")
        }
        let lr = self.lr;
        p.par_chunks_mut(CHUNK)
            .zip(buf.par_chunks(CHUNK))
            .for_each(|(p, buf)| {
                for (p, &b) in p.iter_mut().zip(buf) {
                    *p -= b * lr;
                }
            });
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<()> {
        let dev = s1.device.clone();
        let buf = cuda::view(s2, l2, "momentum buffer")?;
        let mut p = cuda::view_mut(s1, l1, "parameter")?;
        crate::cuda::launch::sgd_descend(&dev, &mut p, &buf, self.lr)
    }
}

/// The f32 device views the CUDA kernels read and write.
#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::cuda_backend::CudaStorageSlice;
    use candle_core::cuda_backend::cudarc::driver::{CudaView, CudaViewMut};
    use candle_core::{CudaStorage, Layout, Result, bail};

    pub(super) fn view<'a>(
        storage: &'a CudaStorage,
        layout: &Layout,
        what: &str,
    ) -> Result<CudaView<'a, f32>> {
        let CudaStorageSlice::F32(data) = &storage.slice else {
            bail!("sgd: {what} must be f32")
        };
        let (start, end) = crate::cuda::range(layout, "sgd", what)?;
        Ok(data.slice(start..end))
    }

    pub(super) fn view_mut<'a>(
        storage: &'a mut CudaStorage,
        layout: &Layout,
        what: &str,
    ) -> Result<CudaViewMut<'a, f32>> {
        let CudaStorageSlice::F32(data) = &mut storage.slice else {
            bail!("sgd: {what} must be f32")
        };
        let (start, end) = crate::cuda::range(layout, "sgd", what)?;
        Ok(data.slice_mut(start..end))
    }
}

/// True when the in-place update applies: contiguous f32 tensors on the CPU, or on CUDA
/// in a build with the `cuda` feature.
pub fn applies(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| {
        let device = t.device();
        let here = device.is_cpu() || (cfg!(feature = "cuda") && device.is_cuda());
        here && t.dtype() == candle_core::DType::F32 && t.is_contiguous()
    })
}

/// One momentum step of `p` (the variable's own tensor) in place, `buf` updated first.
pub fn step(
    p: &Tensor,
    grad: &Tensor,
    buf: &Tensor,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
) -> Result<()> {
    buf.inplace_op3(
        grad,
        p,
        &Momentum {
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
        },
    )?;
    p.inplace_op2(buf, &Descend { lr: lr as f32 })
}
