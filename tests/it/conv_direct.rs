//! The direct conv (few channels on maps of 5 x 5 and more: the stems, the narrow models'
//! first stages) against the im2col path and finite differences, and when it is chosen;
//! and im2col's strided convs, whose gradients the direct kernels take (by parity, and
//! per tap row), against finite differences.

use candle_core::Shape;

use super::conv_dense::{Case, conv, grads};
use super::kernels::{finite_differences, flat, rel_diff, tensor};
use topo::kernels::ConvAlgorithm;

/// The narrow ResNet-18's first stage, maps that are not square or not a whole number
/// of vectors wide, one channel, channel counts that are not a multiple of the 8 output
/// channels computed together, the 16-channel limit of its own weight gradient on both
/// sides, and past it (Winograd's weight gradient) up to the 32-channel limit and the
/// 64-channel one of larger maps, where its own weight gradient comes back (32 x 32).
const SHAPES: [Case; 11] = [
    (2, 8, 14, 14, 8, 3, 1, 1),
    (3, 1, 9, 8, 5, 3, 1, 1),
    (2, 3, 8, 11, 2, 3, 1, 1),
    (1, 16, 10, 9, 16, 3, 1, 1),
    (2, 9, 8, 8, 13, 3, 1, 1),
    (1, 2, 17, 8, 3, 3, 1, 1),
    (2, 5, 12, 20, 7, 3, 1, 1),
    (2, 32, 8, 8, 32, 3, 1, 1),
    (1, 17, 7, 10, 30, 3, 1, 1),
    (1, 64, 16, 17, 48, 3, 1, 1),
    (1, 48, 32, 34, 64, 3, 1, 1),
];

#[test]
fn direct_conv_matches_im2col_forward_and_backward() {
    for (i, &(b, ci, h, w, co, k, s, p)) in SHAPES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], 240 + i as u64);
        let wt = tensor(&[co, ci, k, k], 250 + i as u64);
        let ours = conv(&x, &wt, s, p, ConvAlgorithm::Direct);
        let plain = conv(&x, &wt, s, p, ConvAlgorithm::Im2col);
        assert_eq!(ours.dims(), plain.dims(), "shape {i}");
        let d = rel_diff(&flat(&ours), &flat(&plain));
        assert!(d < 1e-6, "shape {i}: forward differs by {d}");
        let g = tensor(ours.dims(), 260 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Direct);
        let (px, pw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Im2col);
        let (ex, ew) = (rel_diff(&dx, &px), rel_diff(&dw, &pw));
        assert!(ex < 1e-5 && ew < 1e-5, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn direct_conv_backward_matches_finite_differences() {
    // The last: the weight gradient Winograd's computes for the direct conv.
    for i in [1, 2, 3, 8] {
        let (b, ci, h, w, co, k, s, p) = SHAPES[i];
        let x = tensor(&[b, ci, h, w], 270 + i as u64);
        let wt = tensor(&[co, ci, k, k], 280 + i as u64);
        let out = conv(&x, &wt, s, p, ConvAlgorithm::Direct);
        let g = tensor(out.dims(), 290 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, s, p, ConvAlgorithm::Direct);
        let nx = finite_differences(&|x| conv(x, &wt, s, p, ConvAlgorithm::Direct), &x, &g);
        let nw = finite_differences(&|w| conv(&x, w, s, p, ConvAlgorithm::Direct), &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &nx), rel_diff(&dw, &nw));
        assert!(ex < 1e-4 && ew < 1e-4, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn the_direct_conv_takes_few_channels_on_maps_of_5_and_more() {
    use ConvAlgorithm::{Direct, Im2col, Winograd};
    type Dims = (usize, usize, usize, usize);
    let cases: [(Dims, Dims, ConvAlgorithm, &str); 17] = [
        (
            (64, 8, 14, 14),
            (8, 8, 3, 3),
            Direct,
            "the narrow ResNet-18's first stage",
        ),
        (
            (64, 16, 16, 16),
            (16, 16, 3, 3),
            Direct,
            "width 1/4's first stage",
        ),
        (
            (64, 32, 8, 8),
            (32, 32, 3, 3),
            Direct,
            "width 1/4's second stage",
        ),
        (
            (64, 64, 8, 8),
            (64, 64, 3, 3),
            Winograd,
            "more channels: Winograd's products pay",
        ),
        ((64, 32, 8, 8), (64, 32, 3, 3), Winograd, "64 out on 8 x 8"),
        (
            (32, 64, 16, 16),
            (64, 64, 3, 3),
            Winograd,
            "ResNet-18's first stage",
        ),
        (
            (32, 64, 32, 32),
            (64, 64, 3, 3),
            Direct,
            "VGG-16's first stage",
        ),
        (
            (32, 128, 16, 16),
            (128, 128, 3, 3),
            Winograd,
            "128 channels, on no map",
        ),
        (
            (32, 128, 16, 16),
            (32, 128, 3, 3),
            Winograd,
            "DenseNet-121's 3x3 convs",
        ),
        (
            (32, 8, 7, 7),
            (8, 8, 3, 3),
            Direct,
            "7 x 7 maps go direct (`MIN_SIDE`)",
        ),
        (
            (64, 16, 7, 7),
            (16, 16, 3, 3),
            Direct,
            "7 x 7 maps go direct",
        ),
        (
            (32, 16, 4, 4),
            (16, 16, 3, 3),
            Winograd,
            "4 x 4 ones stay on Winograd",
        ),
        (
            (32, 4, 14, 14),
            (4, 4, 3, 3),
            Direct,
            "too few channels for Winograd",
        ),
        ((64, 3, 32, 32), (16, 3, 3, 3), Direct, "a stem"),
        (
            (32, 3, 32, 32),
            (64, 3, 3, 3),
            Direct,
            "the paper's 64-channel stems",
        ),
        (
            (32, 3, 32, 32),
            (128, 3, 3, 3),
            Im2col,
            "more: im2col's (its forward direct)",
        ),
        (
            (32, 1, 28, 28),
            (8, 1, 3, 3),
            Direct,
            "the narrow ResNet-18's grey stem",
        ),
    ];
    for (x, w, want, why) in cases {
        let got = ConvAlgorithm::for_conv(&Shape::from(x), &Shape::from(w), 1, 1);
        assert_eq!(got, want, "{x:?} * {w:?} ({why})");
    }
}

#[test]
fn the_direct_conv_refuses_a_shape_it_does_not_compute() {
    let x = tensor(&[1, 2, 8, 8], 1);
    let w = tensor(&[2, 2, 3, 3], 2);
    let err = topo::kernels::conv2d_with(&x, &w, 2, 1, ConvAlgorithm::Direct).unwrap_err();
    assert!(err.to_string().contains("stride 1"), "{err}");
}

#[test]
fn strided_convs_direct_gradients_match_finite_differences() {
    // Outputs of 5+ a side (where the direct gradients take over), odd and even sides,
    // channel counts past the kernels' blocks.
    for (i, &(b, ci, h, w, co)) in [(2, 3, 11, 10, 5), (1, 9, 9, 12, 10)].iter().enumerate() {
        let x = tensor(&[b, ci, h, w], 300 + i as u64);
        let wt = tensor(&[co, ci, 3, 3], 310 + i as u64);
        let out = conv(&x, &wt, 2, 1, ConvAlgorithm::Im2col);
        assert!(
            out.dims()[2].min(out.dims()[3]) >= 5,
            "shape {i}: outputs too small"
        );
        let g = tensor(out.dims(), 320 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, 2, 1, ConvAlgorithm::Im2col);
        let nx = finite_differences(&|x| conv(x, &wt, 2, 1, ConvAlgorithm::Im2col), &x, &g);
        let nw = finite_differences(&|w| conv(&x, w, 2, 1, ConvAlgorithm::Im2col), &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &nx), rel_diff(&dw, &nw));
        assert!(ex < 1e-4 && ew < 1e-4, "shape {i}: dx {ex}, dw {ew}");
    }
}
