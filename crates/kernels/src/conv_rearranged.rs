//! The candle op plumbing of the convolutions that rearrange their weight once a step
//! (the dense layer of `conv_dense.rs`, the tap walk of `conv_taps.rs`, the direct conv
//! of `conv_direct.rs`): the forward builds the rearranged weight and keeps it for the
//! input gradient; the weight gradient needs only the input and the output gradient.
//! Each algorithm supplies the four computations ([`Rearranged`]).

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use crate::conv2d::{Geometry, input_grad};
use crate::storage::f32_slice;

/// A convolution algorithm over a rearranged weight.
pub(crate) trait Rearranged: Send + Sync + 'static {
    /// The ops' names: forward, input gradient, weight gradient.
    const NAMES: [&'static str; 3];
    /// What errors call it ("dense conv").
    const WHAT: &'static str;
    /// The rearranged weight.
    fn rearrange(g: &Geometry, weight: &[f32]) -> Vec<f32>;
    /// `y` from `x` and the rearranged weight.
    fn forward(g: &Geometry, x: &[f32], rearranged: &[f32]) -> Result<Vec<f32>>;
    /// `dx` from `dy` and the rearranged weight.
    fn input_grad(g: &Geometry, dy: &[f32], rearranged: &[f32]) -> Result<Vec<f32>>;
    /// `dW`, in the weight's own layout, from `x` and `dy`.
    fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Result<Vec<f32>>;
}

/// `y = conv2d(x, weight)`; keeps the rearranged weight for the input gradient.
struct Forward<A> {
    stride: usize,
    padding: usize,
    rearranged: OnceLock<Arc<Vec<f32>>>,
    algorithm: PhantomData<A>,
}

impl<A: Rearranged> CustomOp2 for Forward<A> {
    fn name(&self) -> &'static str {
        A::NAMES[0]
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
        let x = f32_slice(s1, l1, A::WHAT, "input")?;
        let weight = f32_slice(s2, l2, A::WHAT, "weight")?;
        let rearranged = self
            .rearranged
            .get_or_init(|| Arc::new(A::rearrange(&g, weight)));
        Ok((
            CpuStorage::F32(A::forward(&g, x, rearranged)?),
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
        let geometry = Geometry::new(x.shape(), weight.shape(), self.stride, self.padding)?;
        let dx = input_grad(x, || {
            grad.apply_op2_no_bwd(
                weight,
                &InputGrad::<A> {
                    geometry,
                    rearranged: self.rearranged.get().cloned(),
                    algorithm: PhantomData,
                },
            )
        })?;
        let weight_grad = WeightGrad::<A> {
            geometry,
            algorithm: PhantomData,
        };
        let dw = x.apply_op2_no_bwd(&grad, &weight_grad)?;
        Ok((dx, Some(dw)))
    }
}

/// `dx` from `(dy, weight)`.
struct InputGrad<A> {
    geometry: Geometry,
    /// The forward's rearranged weight, when it kept it.
    rearranged: Option<Arc<Vec<f32>>>,
    algorithm: PhantomData<A>,
}

impl<A: Rearranged> CustomOp2 for InputGrad<A> {
    fn name(&self) -> &'static str {
        A::NAMES[1]
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let g = self.geometry;
        g.check_output_grad(l1.shape(), A::WHAT)?;
        let dy = f32_slice(s1, l1, A::WHAT, "output gradient")?;
        let weight = f32_slice(s2, l2, A::WHAT, "weight")?;
        let rebuilt;
        let rearranged = match &self.rearranged {
            Some(kept) => kept.as_slice(),
            None => {
                rebuilt = A::rearrange(&g, weight);
                &rebuilt
            }
        };
        Ok((
            CpuStorage::F32(A::input_grad(&g, dy, rearranged)?),
            Shape::from((g.batch, g.c_in, g.h, g.w)),
        ))
    }
}

/// `dW` from `(x, dy)`.
struct WeightGrad<A> {
    geometry: Geometry,
    algorithm: PhantomData<A>,
}

impl<A: Rearranged> CustomOp2 for WeightGrad<A> {
    fn name(&self) -> &'static str {
        A::NAMES[2]
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let g = self.geometry;
        g.check_output_grad(l2.shape(), A::WHAT)?;
        let x = f32_slice(s1, l1, A::WHAT, "input")?;
        let dy = f32_slice(s2, l2, A::WHAT, "output gradient")?;
        Ok((
            CpuStorage::F32(A::weight_grad(&g, x, dy)?),
            Shape::from((g.c_out, g.c_in, g.kh, g.kw)),
        ))
    }
}

/// `conv2d(x, weight)` by algorithm `A`, f32 on the CPU.
pub(crate) fn conv2d<A: Rearranged>(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        Forward::<A> {
            stride,
            padding,
            rearranged: OnceLock::new(),
            algorithm: PhantomData,
        },
    )
}
