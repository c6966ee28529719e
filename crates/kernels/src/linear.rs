//! The matrix product of a linear layer, `y = x W^T`, as a CPU op whose backward writes
//! each gradient in its argument's own layout.
//!
//! candle-nn's `Linear` multiplies by the view `W^T`: the backward then produces the
//! weight's gradient transposed and adds it into a zero tensor through a strided pass,
//! single-threaded in effect; for VGG's 25088 x 4096 classifier weight that pass and its
//! page faults took a third of a training step. Here `dW = dy^T x` is one gemm straight
//! into `W`'s row-major layout, and `dx = dy W` another.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};

use crate::gemm::{Mat, Store, sgemm};
use crate::storage::f32_slice;

/// Which product of two row-major matrices `a` (`r x s`) and `b` (`t x u`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    /// `a b^T` (the forward: `x W^T`), with `s == u`.
    ABt,
    /// `a b` (`dx = dy W`), with `s == t`.
    AB,
    /// `a^T b` (`dW = dy^T x`), with `r == t`.
    AtB,
}

impl Product {
    fn run(
        self,
        a: &[f32],
        (r, s): (usize, usize),
        b: &[f32],
        (t, u): (usize, usize),
    ) -> Result<(Vec<f32>, (usize, usize))> {
        let (am, bm) = (Mat::dense(r, s), Mat::dense(t, u));
        let (lhs, rhs) = match self {
            Product::ABt => (am, bm.t()),
            Product::AB => (am, bm),
            Product::AtB => (am.t(), bm),
        };
        if lhs.cols != rhs.rows {
            bail!(
                "linear: {}x{} and {}x{} do not chain",
                lhs.rows,
                lhs.cols,
                rhs.rows,
                rhs.cols
            )
        }
        let mut out = vec![0f32; lhs.rows * rhs.cols];
        sgemm(
            &mut out,
            Mat::dense(lhs.rows, rhs.cols),
            a,
            lhs,
            b,
            rhs,
            Store::Overwrite,
            rayon::current_num_threads(),
        )?;
        Ok((out, (lhs.rows, rhs.cols)))
    }
}

fn dims2(layout: &Layout, what: &str) -> Result<(usize, usize)> {
    match layout.shape().dims() {
        &[r, c] => Ok((r, c)),
        d => bail!("linear: the {what} must be a matrix, got shape {d:?}"),
    }
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        match self {
            Product::ABt => "fast-linear",
            Product::AB => "fast-linear-input-grad",
            Product::AtB => "fast-linear-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _timer = crate::profile::scope_of(self.name(), &[l1.dims(), l2.dims()]);
        let a = f32_slice(s1, l1, "linear", "first operand")?;
        let b = f32_slice(s2, l2, "linear", "second operand")?;
        let (out, dims) = self.run(
            a,
            dims2(l1, "first operand")?,
            b,
            dims2(l2, "second operand")?,
        )?;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if *self != Product::ABt {
            bail!("linear: only the forward product has a backward")
        }
        let grad = grad.contiguous()?;
        let dx = grad.apply_op2_no_bwd(weight, &Product::AB)?;
        let dw = grad.apply_op2_no_bwd(x, &Product::AtB)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `x W^T + b` for `x` `(batch, in)`, `W` `(out, in)`, `b` `(out,)`, f32 on the CPU.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let y = x
        .contiguous()?
        .apply_op2(&weight.contiguous()?, Product::ABt)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}
