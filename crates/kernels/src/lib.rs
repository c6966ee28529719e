//! Tensor operations candle 0.11 lacks, with their backward passes: max pooling with
//! padding and overlapping windows (ResNet's and DenseNet's 3x3 stride-2 stem pool), and
//! PyTorch's adaptive average pooling (VGG's 7x7 pool for any input size), average
//! pooling whose backward is right for odd sizes; and the fast CPU kernels (convolution
//! through Winograd's F(2x2, 3x3), im2col + gemm, or, on planes smaller than the kernel, a
//! dense layer or a tap-by-tap walk; batch norm fused with ReLU) that replace candle's slower ones; the paper's,
//! TDANN's and TopoLoss's losses of a layer as one op each; topo's recycling allocator;
//! and a per-op wall-time profile (`profile`).
//!
//! With the `cuda` feature, the max pool, the SGD update and the convolutions' unfold and
//! fold also run as CUDA kernels of this crate (`cuda/*.cu`, compiled to PTX by
//! `build.rs`), so a GPU step keeps its activations on the GPU.
//!
//! All of topo's unsafe code is here, in `gemm.rs`, `alloc.rs`, `threads.rs` and `cuda/launch.rs`,
//! each block allowed where it stands with the invariant it relies on written above it.

#![deny(unsafe_code)]

mod adaptive_avg_pool;
mod alloc;
mod avg_pool;
mod batch_norm;
mod choice;
mod conv2d;
mod conv_dense;
mod conv_direct;
mod conv_rearranged;
mod conv_taps;
#[cfg(feature = "cuda")]
mod cuda;
pub(crate) mod gemm;
pub(crate) mod lanes;
mod linear;
mod max_pool;
pub mod profile;
mod scratch;
pub mod sgd;
mod simd;
pub(crate) mod storage;
pub mod tdann;
pub mod threads;
pub mod topographic_loss;
pub mod topoloss;
mod unfold;
mod winograd;

pub use alloc::Recycler;

/// Whether this build has the AVX-512 kernels (the `avx512` feature, on by default):
/// without them an AVX-512 CPU runs the AVX2 ones, and computes as an AVX2 machine does.
pub const AVX512_KERNELS: bool = cfg!(feature = "avx512");

pub use adaptive_avg_pool::{adaptive_avg_pool2d, adaptive_windows};
pub use avg_pool::avg_pool2d;
pub use batch_norm::{
    BatchStats, batch_norm_add_relu_eval, batch_norm_add_relu_train, batch_norm_eval,
    batch_norm_train,
};
pub use choice::Kernels;
pub use conv2d::{ConvAlgorithm, conv2d, conv2d_with};
pub use linear::linear;
pub use max_pool::max_pool2d;
pub use unfold::{conv2d_unfold, fold2d, unfold2d};
