//! PyTorch's adaptive average pooling over the last two dimensions.
//!
//! Output cell `i` of an axis of length `n` pooled to `m` averages input indices
//! `floor(i*n/m) .. ceil((i+1)*n/m)`, as `torch.nn.AdaptiveAvgPool2d` does; windows may
//! overlap, and an input smaller than the output is repeated (1x1 -> 7x7 copies the cell).
//! A rectangular window's mean is the product of its per-axis means, so the pool is two
//! matrix products with fixed averaging matrices, and candle differentiates it for free.

use candle_core::{Result, Tensor, bail};

/// The `[start, end)` input window of every output cell of one axis.
pub fn adaptive_windows(input: usize, output: usize) -> Vec<(usize, usize)> {
    (0..output)
        .map(|i| {
            let start = i * input / output;
            let end = ((i + 1) * input).div_ceil(output);
            (start, end)
        })
        .collect()
}

/// `(output, input)` matrix whose row `i` averages window `i`.
fn averaging_matrix(input: usize, output: usize, xs: &Tensor) -> Result<Tensor> {
    let mut m = vec![0f64; output * input];
    for (i, (start, end)) in adaptive_windows(input, output).into_iter().enumerate() {
        let weight = 1.0 / (end - start) as f64;
        for j in start..end {
            m[i * input + j] = weight;
        }
    }
    Tensor::from_vec(m, (output, input), xs.device())?.to_dtype(xs.dtype())
}

/// Adaptive average pooling of a `(B, C, H, W)` tensor to `(B, C, out_h, out_w)`.
pub fn adaptive_avg_pool2d(xs: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        bail!("adaptive_avg_pool2d: cannot pool {h}x{w} to {out_h}x{out_w}")
    }
    if out_h == 1 && out_w == 1 {
        return xs.mean_keepdim(3)?.mean_keepdim(2);
    }
    let rows = averaging_matrix(h, out_h, xs)?; // (out_h, h)
    let cols = averaging_matrix(w, out_w, xs)?.t()?; // (w, out_w)
    // (B, C, H, W) x (W, out_w) -> (B, C, H, out_w); then (out_h, H) x that.
    let xs = xs.broadcast_matmul(&cols)?;
    rows.broadcast_matmul(&xs)
}
