//! Launching the kernels of `cuda/`: one typed function per kernel, so that a kernel's
//! parameter list is written once, here, beside the unsafe call that relies on it.
//!
//! A launch is unsafe because the driver cannot check its arguments: it reads each one as
//! the type the kernel declares, and the kernel writes as many elements as its `n` says.
//! Every function below therefore (1) pushes exactly the kernel's parameters, in order,
//! with the Rust type of the same size and meaning (`unsigned int` = `u32`, `float` =
//! `f32`, `T*` = a device slice of `T`), and (2) checks that every buffer holds the
//! elements the kernel touches for that `n` before launching. The kernels use grid-stride
//! loops, so any grid is correct; its size only affects speed.

#![allow(unsafe_code)]

use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, CudaView, CudaViewMut, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{Result, bail};

use super::{Float, MAX_POOL, Module, SGD, UNFOLD};

/// Threads per block.
const BLOCK: u32 = 256;
/// Blocks at most; larger sizes loop.
const MAX_GRID: u32 = 1 << 16;

fn config(n: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(BLOCK).clamp(1, MAX_GRID), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The kernel, its module loaded once per device by candle.
fn function(dev: &CudaDevice, module: &Module, kernel: &str) -> Result<CudaFunction> {
    Ok(dev
        .get_or_load_custom_func(kernel, module.name, module.ptx)?
        .into_cuda_function())
}

fn check_len(op: &str, what: &str, len: usize, needed: usize) -> Result<()> {
    if len < needed {
        bail!("{op}: the {what} holds {len} elements, the kernel touches {needed}")
    }
    Ok(())
}

/// The window geometry of a max pool, as the kernels take it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolGeometry {
    pub planes: u32,
    pub h: u32,
    pub w: u32,
    pub oh: u32,
    pub ow: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
}

impl PoolGeometry {
    fn outputs(&self, op: &str) -> Result<u32> {
        super::count(self.planes as usize * (self.oh * self.ow) as usize, op)
    }

    fn inputs(&self, op: &str) -> Result<u32> {
        super::count(self.planes as usize * (self.h * self.w) as usize, op)
    }
}

/// `max_pool2d_fwd_<T>(x, y, argmax, n, h, w, oh, ow, kernel, stride, padding)`.
pub(crate) fn max_pool2d_fwd<T: Float>(
    dev: &CudaDevice,
    x: &CudaView<'_, T>,
    y: &mut CudaSlice<T>,
    argmax: &mut CudaSlice<u32>,
    g: PoolGeometry,
) -> Result<()> {
    let op = "max_pool2d (CUDA)";
    let n = g.outputs(op)?;
    check_len(op, "input", x.len(), g.inputs(op)? as usize)?;
    check_len(op, "output", y.len(), n as usize)?;
    check_len(op, "argmax", argmax.len(), n as usize)?;
    let func = function(dev, &MAX_POOL, &format!("max_pool2d_fwd_{}", T::SUFFIX))?;
    let dims = [n, g.h, g.w, g.oh, g.ow, g.kernel, g.stride, g.padding];
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(x);
    args.arg(y);
    args.arg(argmax);
    for v in &dims {
        args.arg(v);
    }
    // SAFETY: the arguments are the kernel's parameters in order and type, and the buffers
    // hold the `n` outputs and the planes' inputs it touches (checked above).
    unsafe { args.launch(config(n)) }.w()?;
    Ok(())
}

/// `max_pool2d_bwd_<T>(grad, argmax, out, n, h, w, oh, ow, kernel, stride, padding)`.
pub(crate) fn max_pool2d_bwd<T: Float>(
    dev: &CudaDevice,
    grad: &CudaView<'_, T>,
    argmax: &CudaSlice<u32>,
    out: &mut CudaSlice<T>,
    g: PoolGeometry,
) -> Result<()> {
    let op = "max_pool2d backward (CUDA)";
    let n = g.inputs(op)?;
    let outputs = g.outputs(op)? as usize;
    check_len(op, "gradient", grad.len(), outputs)?;
    check_len(op, "argmax", argmax.len(), outputs)?;
    check_len(op, "input gradient", out.len(), n as usize)?;
    let func = function(dev, &MAX_POOL, &format!("max_pool2d_bwd_{}", T::SUFFIX))?;
    let dims = [n, g.h, g.w, g.oh, g.ow, g.kernel, g.stride, g.padding];
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(grad);
    args.arg(argmax);
    args.arg(out);
    for v in &dims {
        args.arg(v);
    }
    // SAFETY: as in `max_pool2d_fwd`, for the backward's parameters and buffers.
    unsafe { args.launch(config(n)) }.w()?;
    Ok(())
}

/// `sgd_momentum_f32(buf, grad, p, n, momentum, weight_decay)`, in `buf`.
pub(crate) fn sgd_momentum(
    dev: &CudaDevice,
    buf: &mut CudaViewMut<'_, f32>,
    grad: &CudaView<'_, f32>,
    p: &CudaView<'_, f32>,
    momentum: f32,
    weight_decay: f32,
) -> Result<()> {
    let op = "sgd (CUDA)";
    let n = super::count(buf.len(), op)?;
    check_len(op, "gradient", grad.len(), n as usize)?;
    check_len(op, "parameter", p.len(), n as usize)?;
    let func = function(dev, &SGD, "sgd_momentum_f32")?;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(buf);
    args.arg(grad);
    args.arg(p);
    args.arg(&n);
    args.arg(&momentum);
    args.arg(&weight_decay);
    // SAFETY: the kernel's parameters in order and type; the three buffers hold `n`.
    unsafe { args.launch(config(n)) }.w()?;
    Ok(())
}

/// `sgd_descend_f32(p, buf, n, lr)`, in `p`.
pub(crate) fn sgd_descend(
    dev: &CudaDevice,
    p: &mut CudaViewMut<'_, f32>,
    buf: &CudaView<'_, f32>,
    lr: f32,
) -> Result<()> {
    let op = "sgd (CUDA)";
    let n = super::count(p.len(), op)?;
    check_len(op, "momentum buffer", buf.len(), n as usize)?;
    let func = function(dev, &SGD, "sgd_descend_f32")?;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(p);
    args.arg(buf);
    args.arg(&n);
    args.arg(&lr);
    // SAFETY: the kernel's parameters in order and type; both buffers hold `n`.
    unsafe { args.launch(config(n)) }.w()?;
    Ok(())
}

/// The geometry of a convolution's column matrix, as the unfold kernels take it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnfoldGeometry {
    pub batch: u32,
    pub channels: u32,
    pub h: u32,
    pub w: u32,
    pub oh: u32,
    pub ow: u32,
    pub k: u32,
    pub stride: u32,
    pub padding: u32,
}

impl UnfoldGeometry {
    /// Entries of the column matrix, `C k k x B OH OW`.
    pub(crate) fn columns(&self) -> Result<u32> {
        let rows = self.channels as usize * (self.k * self.k) as usize;
        super::count(
            rows * self.batch as usize * (self.oh * self.ow) as usize,
            "unfold (CUDA)",
        )
    }

    /// Cells of the input, `B C H W`.
    pub(crate) fn inputs(&self) -> Result<u32> {
        let plane = (self.h * self.w) as usize;
        super::count(
            self.batch as usize * self.channels as usize * plane,
            "fold (CUDA)",
        )
    }

    fn scalars(&self, n: u32) -> [u32; 9] {
        [
            n,
            self.batch,
            self.h,
            self.w,
            self.oh,
            self.ow,
            self.k,
            self.stride,
            self.padding,
        ]
    }
}

/// `unfold_<T>(x, cols, n, batch, h, w, oh, ow, k, stride, padding)`.
pub(crate) fn unfold<T: Float>(
    dev: &CudaDevice,
    x: &CudaView<'_, T>,
    cols: &mut CudaSlice<T>,
    g: UnfoldGeometry,
) -> Result<()> {
    let op = "unfold (CUDA)";
    let n = g.columns()?;
    check_len(op, "input", x.len(), g.inputs()? as usize)?;
    check_len(op, "columns", cols.len(), n as usize)?;
    let func = function(dev, &UNFOLD, &format!("unfold_{}", T::SUFFIX))?;
    let scalars = g.scalars(n);
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(x);
    args.arg(cols);
    for v in &scalars {
        args.arg(v);
    }
    // SAFETY: the kernel's parameters in order and type; the input holds the `B C H W`
    // cells it reads and the columns the `n` entries it writes (checked above).
    unsafe { args.launch(config(n)) }.w()?;
    Ok(())
}

/// `fold_<T>(cols, x, n, batch, h, w, oh, ow, k, stride, padding)`.
pub(crate) fn fold<T: Float>(
    dev: &CudaDevice,
    cols: &CudaView<'_, T>,
    x: &mut CudaSlice<T>,
    g: UnfoldGeometry,
) -> Result<()> {
    let op = "fold (CUDA)";
    let n = g.inputs()?;
    check_len(op, "columns", cols.len(), g.columns()? as usize)?;
    check_len(op, "input gradient", x.len(), n as usize)?;
    let func = function(dev, &UNFOLD, &format!("fold_{}", T::SUFFIX))?;
    let scalars = g.scalars(n);
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(cols);
    args.arg(x);
    for v in &scalars {
        args.arg(v);
    }
    // SAFETY: the kernel's parameters in order and type; the columns hold the entries it
    // reads and the input gradient the `n` cells it writes (checked above).
    unsafe { args.launch(config(n)) }.w()?;
    Ok(())
}
