//! TopoLoss's weight smoothness (`loss: { kind: topoloss }`; Deb et al., TopoNets,
//! ICLR 2025, murtylab/topoloss's `laplacian_pyramid_loss`).
//!
//! A tapped conv's output channels lie on a 2D sheet of `h x w` cells, channel
//! `c = row * w + col`, `h` the largest divisor of `C` at most `sqrt(C)` (TopoLoss's
//! `find_cortical_sheet_size`; for a square `C` this is exactly the 2D grid layout). Each
//! cell holds its channel's flattened weights. The sheet is shrunk by `factor` and grown
//! back with bilinear interpolation (PyTorch's `interpolate`, `align_corners=False`),
//! and the loss is `1 - mean over channels of cosine(weights, blurred weights)`: zero
//! when the weights already vary smoothly over the sheet.

use std::sync::Arc;

use candle_core::{Tensor, Var};

use super::method::{StepInputs, TopographicMethod};
use super::{Positions, PositionsError};

/// PyTorch's `cosine_similarity` bound on the product of norms.
const EPS: f64 = 1e-8;

/// Why the loss cannot be built for a layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopoLossError {
    #[error("the shrink factor must be a finite number of at least 1, found {0}")]
    Factor(f64),
    #[error(
        "`{layer}`: its {channels} channels lie on a {h} x {w} sheet, too small to shrink by {factor}; lower `factor` to at most {h}"
    )]
    SheetTooSmall {
        layer: String,
        channels: usize,
        h: usize,
        w: usize,
        factor: f64,
    },
    #[error("`{layer}`: expected a conv weight (C_out, C_in, kh, kw), found shape {shape:?}")]
    NotAConv { layer: String, shape: Vec<usize> },
}

/// The `h x w` sheet of `channels` cells: `h` the largest divisor at most `sqrt`.
pub fn sheet_size(channels: usize) -> (usize, usize) {
    let mut h = (channels as f64).sqrt() as usize;
    while h > 1 && !channels.is_multiple_of(h) {
        h -= 1;
    }
    let h = h.max(1);
    (h, channels / h)
}

/// The sheet of the tapped conv `layer`'s `channels`, checked to be large enough to
/// shrink by `factor` (TopoLoss asserts the same).
pub fn sheet_for(
    layer: &str,
    channels: usize,
    factor: f64,
) -> Result<(usize, usize), TopoLossError> {
    let (h, w) = sheet_size(channels);
    if factor > h as f64 {
        return Err(TopoLossError::SheetTooSmall {
            layer: layer.to_owned(),
            channels,
            h,
            w,
            factor,
        });
    }
    Ok((h, w))
}

/// Channel positions on the sheet, equally spaced on both axes (`1 / (max(h, w) - 1)`),
/// channel `c` at `(col, row)`: the 2D grid layout's coordinates when `C` is a square.
pub fn sheet_positions(channels: usize) -> Result<Positions, PositionsError> {
    if channels == 0 {
        return Err(PositionsError::NoChannels);
    }
    let (h, w) = sheet_size(channels);
    // Divided, not multiplied by a step, so the coordinates are the grid's to the bit.
    let span = (h.max(w) - 1).max(1) as f64;
    let coords = (0..channels)
        .flat_map(|c| [(c % w) as f64 / span, (c / w) as f64 / span])
        .collect();
    Positions::from_rows(2, coords)
}

/// PyTorch's bilinear (`align_corners=False`) resampling of `input` cells to `output`
/// along one axis as an `output x input` matrix; `scale` is the source step per output
/// cell (`1 / scale_factor` when one is given, else `input / output`).
fn resample(input: usize, output: usize, scale: f64) -> Vec<f64> {
    let mut m = vec![0.0; output * input];
    for o in 0..output {
        let src = (scale * (o as f64 + 0.5) - 0.5).max(0.0);
        let i0 = (src as usize).min(input - 1);
        let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
        let t = (src - i0 as f64).clamp(0.0, 1.0);
        m[o * input + i0] += 1.0 - t;
        m[o * input + i1] += t;
    }
    m
}

/// Shrinking by `factor` then growing back, along one axis of `n` cells: `n x n`.
fn blur(n: usize, factor: f64) -> Vec<f64> {
    // PyTorch: the shrunk size is floor(n * (1 / factor)); the step, 1 / (1 / factor).
    let scale_factor = 1.0 / factor;
    let small = ((n as f64) * scale_factor).floor() as usize;
    let down = resample(n, small, 1.0 / scale_factor);
    let up = resample(small, n, small as f64 / n as f64);
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..small)
                .map(|s| up[i * small + s] * down[s * n + j])
                .sum();
        }
    }
    out
}

/// One layer: its weight and the two axes' blur matrices.
struct Layer {
    weight: Var,
    h: usize,
    w: usize,
    /// `h x h` and `w x w`, row-major.
    blur_h: Vec<f64>,
    blur_w: Vec<f64>,
    /// The same blur for the one-op kernel (f32 weights on the CPU).
    sheet: crate::kernels::topoloss::Sheet,
}

/// TopoLoss on the weights of every tapped conv.
pub struct TopoLoss {
    layers: Vec<Layer>,
    /// f32 weights on the CPU take the one-op kernel (`topo_kernels::topoloss`).
    kernel: bool,
}

impl TopoLoss {
    /// From each tapped conv's name and weight (in tap order) and the shrink factor.
    pub fn new(weights: &[(String, Var)], factor: f64) -> Result<TopoLoss, TopoLossError> {
        if !(factor.is_finite() && factor >= 1.0) {
            return Err(TopoLossError::Factor(factor));
        }
        let layers = weights
            .iter()
            .map(|(layer, weight)| {
                let shape = weight.dims().to_vec();
                if shape.len() != 4 {
                    return Err(TopoLossError::NotAConv {
                        layer: layer.clone(),
                        shape,
                    });
                }
                let (h, w) = sheet_for(layer, shape[0], factor)?;
                let (blur_h, blur_w) = (blur(h, factor), blur(w, factor));
                let f32s = |v: &[f64]| Arc::new(v.iter().map(|&x| x as f32).collect());
                let sheet = crate::kernels::topoloss::Sheet {
                    h,
                    w,
                    blur_h: f32s(&blur_h),
                    blur_w: f32s(&blur_w),
                    eps: EPS,
                };
                Ok(Layer {
                    weight: weight.clone(),
                    h,
                    w,
                    blur_h,
                    blur_w,
                    sheet,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TopoLoss {
            layers,
            kernel: true,
        })
    }

    /// The same loss in candle's tensor ops only, whatever the weights' type: the
    /// reference the one-op kernel is tested against.
    pub fn in_tensor_ops(mut self) -> TopoLoss {
        self.kernel = false;
        self
    }
}

/// `1 - mean cosine(sheet, blurred sheet)` for one conv weight: one op for f32 weights on
/// the CPU (`kernel`), else candle's tensor ops.
fn layer_loss(layer: &Layer, kernel: bool) -> candle_core::Result<Tensor> {
    let weight = layer.weight.as_tensor();
    if kernel && weight.device().is_cpu() && weight.dtype() == candle_core::DType::F32 {
        return crate::kernels::topoloss::topoloss(weight, &layer.sheet);
    }
    let (device, dtype) = (weight.device(), weight.dtype());
    let (h, w) = (layer.h, layer.w);
    let cells = weight.flatten_from(1)?;
    let e = cells.dim(1)?;
    let matrix = |v: &[f64], n: usize| {
        Tensor::from_vec(v.to_vec(), (n, n), device).and_then(|t| t.to_dtype(dtype))
    };
    // Rows first on (h, w * e), then columns on (w, h * e): the blur is separable.
    let rows = matrix(&layer.blur_h, h)?.matmul(&cells.reshape((h, w * e))?)?;
    let by_col = rows
        .reshape((h, w, e))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((w, h * e))?;
    let blurred = matrix(&layer.blur_w, w)?
        .matmul(&by_col)?
        .reshape((w, h, e))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((h * w, e))?;
    let dot = (&cells * &blurred)?.sum(1)?;
    let norms = (cells.sqr()?.sum(1)? * blurred.sqr()?.sum(1)?)?;
    let cos = dot.div(&norms.maximum(EPS * EPS)?.sqrt()?)?;
    cos.mean_all()?.affine(-1.0, 1.0)
}

impl TopographicMethod for TopoLoss {
    fn layers(&self) -> usize {
        self.layers.len()
    }

    fn layer_losses(&self, _inputs: &StepInputs<'_>) -> candle_core::Result<Vec<Tensor>> {
        self.layers
            .iter()
            .map(|l| layer_loss(l, self.kernel))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_follow_topoloss_and_match_the_grid_on_squares() {
        assert_eq!(sheet_size(64), (8, 8));
        assert_eq!(sheet_size(32), (4, 8));
        assert_eq!(sheet_size(128), (8, 16));
        assert_eq!(sheet_size(7), (1, 7));
        let grid = super::super::positions(super::super::Layout::Grid, 2, 64).unwrap();
        assert_eq!(sheet_positions(64).unwrap().coords(), grid.coords());
    }

    #[test]
    fn the_blur_keeps_constants_and_rows_sum_to_one() {
        for (n, f) in [(8, 2.0), (8, 3.0), (5, 2.5), (4, 1.0)] {
            let b = blur(n, f);
            for i in 0..n {
                let s: f64 = b[i * n..(i + 1) * n].iter().sum();
                assert!((s - 1.0).abs() < 1e-12, "n {n} factor {f} row {i}: {s}");
            }
        }
        // Factor 1: the identity.
        let b = blur(4, 1.0);
        for i in 0..4 {
            assert_eq!(b[i * 4 + i], 1.0);
        }
    }
}
