//! The tap-by-tap convolution (stride 1 on a plane smaller than the kernel) against the
//! im2col path and finite differences, and when it is chosen.

use candle_core::Shape;

use super::conv_dense::{Case, conv, grads};
use super::kernels::{finite_differences, flat, rel_diff, tensor};
use topo::kernels::ConvAlgorithm;

/// ResNet's 2x2 maps, 1x1 maps, planes that are not square, a 5x5 kernel, no padding,
/// padding wider than the plane (taps that reach no input), and channel counts that
/// send the weight gradient's products through gemm's row-major copy.
const SHAPES: [Case; 8] = [
    (3, 8, 2, 2, 5, 3, 1, 1),
    (2, 4, 1, 1, 3, 3, 1, 1),
    (2, 3, 2, 1, 4, 3, 1, 1),
    (1, 5, 1, 3, 2, 3, 1, 1),
    (2, 2, 3, 4, 3, 5, 1, 2),
    (3, 4, 2, 2, 2, 2, 1, 0),
    (2, 3, 1, 1, 2, 3, 1, 2),
    (2, 40, 2, 2, 36, 3, 1, 1),
];

#[test]
fn tap_conv_matches_im2col_forward_and_backward() {
    for (i, &(b, ci, h, w, co, k, s, p)) in SHAPES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], 140 + i as u64);
        let wt = tensor(&[co, ci, k, k], 150 + i as u64);
        let ours = conv(&x, &wt, s, p, ConvAlgorithm::Taps);
        let plain = conv(&x, &wt, s, p, ConvAlgorithm::Im2col);
        assert_eq!(ours.dims(), plain.dims(), "shape {i}");
        let d = rel_diff(&flat(&ours), &flat(&plain));
        assert!(d < 1e-5, "shape {i}: forward differs by {d}");
        let g = tensor(ours.dims(), 160 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Taps);
        let (px, pw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Im2col);
        let (ex, ew) = (rel_diff(&dx, &px), rel_diff(&dw, &pw));
        assert!(ex < 1e-5 && ew < 1e-5, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn tap_conv_backward_matches_finite_differences() {
    for (i, &(b, ci, h, w, co, k, s, p)) in SHAPES.iter().enumerate().take(7) {
        let x = tensor(&[b, ci, h, w], 170 + i as u64);
        let wt = tensor(&[co, ci, k, k], 180 + i as u64);
        let out = conv(&x, &wt, s, p, ConvAlgorithm::Taps);
        let g = tensor(out.dims(), 190 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Taps);
        let nx = finite_differences(&|x| conv(x, &wt, s, p, ConvAlgorithm::Taps), &x, &g);
        let nw = finite_differences(&|w| conv(&x, w, s, p, ConvAlgorithm::Taps), &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &nx), rel_diff(&dw, &nw));
        assert!(ex < 1e-4 && ew < 1e-4, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn the_tap_conv_takes_the_small_planes_the_dense_layer_is_too_large_for() {
    let choose = |x: (usize, usize, usize, usize), w: (usize, usize, usize, usize), s| {
        ConvAlgorithm::for_conv(&Shape::from(x), &Shape::from(w), s, 1)
    };
    // ResNet-18's and VGG's last stage at 32 px: Wd would be 2048 x 2048.
    assert_eq!(
        choose((32, 512, 2, 2), (512, 512, 3, 3), 1),
        ConvAlgorithm::Taps
    );
    // Small enough for the dense layer, which needs no reordering.
    assert_eq!(
        choose((64, 64, 2, 2), (64, 64, 3, 3), 1),
        ConvAlgorithm::Dense
    );
    // A run of outputs reads a run of inputs only at stride 1.
    assert_ne!(
        choose((32, 512, 2, 2), (512, 512, 3, 3), 2),
        ConvAlgorithm::Taps
    );
    // 9 pixels, 9 taps: nothing to skip.
    assert_ne!(
        choose((32, 512, 3, 3), (512, 512, 3, 3), 1),
        ConvAlgorithm::Taps
    );
}

#[test]
fn the_tap_conv_refuses_a_stride_it_cannot_walk() {
    let x = tensor(&[1, 2, 2, 2], 1);
    let w = tensor(&[2, 2, 3, 3], 2);
    let err = topo::kernels::conv2d_with(&x, &w, 2, 1, ConvAlgorithm::Taps).unwrap_err();
    assert!(err.to_string().contains("stride 1"), "{err}");
}
