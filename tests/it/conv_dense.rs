//! The dense convolution (a plane with fewer pixels than the kernel has taps, as one
//! dense layer) against the im2col path and finite differences, and when it is chosen.

use candle_core::{Shape, Tensor, Var};

use super::kernels::{finite_differences, flat, rel_diff, tensor};
use topo::kernels::{self, ConvAlgorithm};

/// `(batch, c_in, h, w, c_out, kernel, stride, padding)`.
pub(super) type Case = (usize, usize, usize, usize, usize, usize, usize, usize);

/// ResNet's 2x2 maps, 1x1 maps (VGG's last stage), planes that are not square, a
/// stride-2 conv onto one pixel, a 5x5 kernel, and no padding.
const SHAPES: [Case; 7] = [
    (3, 8, 2, 2, 5, 3, 1, 1),
    (2, 4, 1, 1, 3, 3, 1, 1),
    (2, 3, 2, 1, 4, 3, 1, 1),
    (1, 5, 1, 3, 2, 3, 1, 1),
    (2, 3, 2, 2, 3, 3, 2, 1),
    (2, 2, 3, 4, 3, 5, 1, 2),
    (3, 4, 2, 2, 2, 2, 1, 0),
];

pub(super) fn conv(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    a: ConvAlgorithm,
) -> Tensor {
    kernels::conv2d_with(x, w, stride, padding, a).unwrap()
}

/// Gradients of `sum(g * conv(x, w))` with respect to `x` and `w`.
pub(super) fn grads(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    s: usize,
    p: usize,
    a: ConvAlgorithm,
) -> (Vec<f32>, Vec<f32>) {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let loss = (conv(xv.as_tensor(), wv.as_tensor(), s, p, a) * g)
        .unwrap()
        .sum_all()
        .unwrap();
    let store = loss.backward().unwrap();
    (
        flat(store.get(xv.as_tensor()).unwrap()),
        flat(store.get(wv.as_tensor()).unwrap()),
    )
}

#[test]
fn dense_conv_matches_im2col_forward_and_backward() {
    for (i, &(b, ci, h, w, co, k, s, p)) in SHAPES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], 40 + i as u64);
        let wt = tensor(&[co, ci, k, k], 50 + i as u64);
        let ours = conv(&x, &wt, s, p, ConvAlgorithm::Dense);
        let plain = conv(&x, &wt, s, p, ConvAlgorithm::Im2col);
        assert_eq!(ours.dims(), plain.dims(), "shape {i}");
        let d = rel_diff(&flat(&ours), &flat(&plain));
        assert!(d < 1e-5, "shape {i}: forward differs by {d}");
        let g = tensor(ours.dims(), 60 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Dense);
        let (px, pw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Im2col);
        let (ex, ew) = (rel_diff(&dx, &px), rel_diff(&dw, &pw));
        assert!(ex < 1e-5 && ew < 1e-5, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn dense_conv_backward_matches_finite_differences() {
    for (i, &(b, ci, h, w, co, k, s, p)) in SHAPES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], 70 + i as u64);
        let wt = tensor(&[co, ci, k, k], 80 + i as u64);
        let out = conv(&x, &wt, s, p, ConvAlgorithm::Dense);
        let g = tensor(out.dims(), 90 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Dense);
        let nx = finite_differences(&|x| conv(x, &wt, s, p, ConvAlgorithm::Dense), &x, &g);
        let nw = finite_differences(&|w| conv(&x, w, s, p, ConvAlgorithm::Dense), &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &nx), rel_diff(&dw, &nw));
        assert!(ex < 1e-4 && ew < 1e-4, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn the_dense_conv_is_chosen_only_below_the_kernels_taps() {
    let choose = |x: (usize, usize, usize, usize), w: (usize, usize, usize, usize)| {
        ConvAlgorithm::for_conv(&Shape::from(x), &Shape::from(w), 1, 1)
    };
    assert_eq!(choose((64, 64, 2, 2), (64, 64, 3, 3)), ConvAlgorithm::Dense);
    assert_eq!(choose((64, 64, 1, 1), (64, 64, 3, 3)), ConvAlgorithm::Dense);
    // 9 pixels, 9 taps: no fewer products.
    assert_ne!(choose((64, 64, 3, 3), (64, 64, 3, 3)), ConvAlgorithm::Dense);
    // A 1x1 kernel has one tap: a dense map is never smaller.
    assert_ne!(choose((64, 64, 2, 2), (64, 64, 1, 1)), ConvAlgorithm::Dense);
    // 64 channels on 2x2 maps (above): Wd is 256 x 256, built; at 128 channels it is
    // left to the tap walk.
    assert_eq!(
        choose((64, 128, 2, 2), (128, 128, 3, 3)),
        ConvAlgorithm::Taps
    );
}
