//! Which implementation the models' layers run on.

use candle_core::Device;
use serde::{Deserialize, Serialize};

/// The kernels behind the models' convs (and any other layer with a fast form).
///
/// All three compute the same function; they differ in float summation order (results agree
/// to about 1e-6 relative, not bit for bit), so a run resumes with the kernels it began
/// with to stay bit-identical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// This crate's CPU kernels (im2col + gemm convolution with its backward); on CUDA
    /// their GPU form ([`Kernels::Unfold`]); on any other device, candle's own.
    #[default]
    Fast,
    /// candle's own ops everywhere, for comparison.
    Candle,
    /// Convolutions through their column matrix and one matrix product
    /// ([`crate::conv2d_unfold`]), whose input gradient is a product and a gather; candle's
    /// batch norm and linear layers. What `Fast` becomes on a GPU, where candle's own conv
    /// backward is a direct transposed convolution; on the CPU, the GPU's path for tests.
    Unfold,
}

impl Kernels {
    /// The name `--kernels` takes and `state.json` records.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Fast => "fast",
            Kernels::Candle => "candle",
            Kernels::Unfold => "unfold",
        }
    }

    /// The kernels that actually run on `device`: the fast ones on the CPU, their GPU
    /// form ([`Kernels::Unfold`]) on CUDA, candle's own elsewhere.
    pub fn on(self, device: &Device) -> Kernels {
        match (self, device) {
            (Kernels::Fast, Device::Cpu) => Kernels::Fast,
            (Kernels::Fast, Device::Cuda(_)) => Kernels::Unfold,
            (Kernels::Fast, _) => Kernels::Candle,
            (other, _) => other,
        }
    }
}
