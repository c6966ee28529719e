//! The SGD update in place on the CPU: two passes over each parameter instead of seven
//! freshly allocated tensors (VGG-16's 134 M parameters made the tensor-op update a large
//! part of its step). Each element goes through the same f32 operations in the same
//! order as the tensor-op form, so both give identical results.

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
}

/// True when the in-place update applies: f32 CPU tensors laid out contiguously.
pub fn applies(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32 && t.is_contiguous())
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
