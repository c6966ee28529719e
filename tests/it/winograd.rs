//! Winograd's F(2x2, 3x3) convolution against the im2col path, finite differences and
//! its stated error bound.

use candle_core::{Device, Tensor, Var};

use super::kernels::{finite_differences, flat, rel_diff, tensor, values};
use topo::kernels::{self, ConvAlgorithm};

fn conv(x: &Tensor, w: &Tensor, algorithm: ConvAlgorithm) -> Tensor {
    kernels::conv2d_with(x, w, 1, 1, algorithm).unwrap()
}

/// `(batch, c_in, h, w, c_out)`: square and not, odd sizes (partial tiles), 1x1 and 2x2
/// maps, 11 images (eight side by side, then three one at a time), and (last) 128 channels at 32x32, which the op's budget splits into chunks of
/// 2 images, the last one partial.
const SHAPES: [(usize, usize, usize, usize, usize); 9] = [
    (2, 3, 8, 8, 4),
    (1, 5, 1, 1, 3),
    (2, 4, 2, 2, 3),
    (3, 2, 5, 7, 4),
    (2, 9, 7, 4, 5),
    (1, 16, 3, 6, 2),
    (2, 8, 1, 5, 3),
    (11, 8, 5, 6, 4),
    (5, 128, 32, 32, 3),
];

/// Gradients of `sum(g * conv(x, w))` with respect to `x` and `w`.
fn grads(x: &Tensor, w: &Tensor, g: &Tensor, algorithm: ConvAlgorithm) -> (Vec<f32>, Vec<f32>) {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let loss = (conv(xv.as_tensor(), wv.as_tensor(), algorithm) * g)
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
fn winograd_forward_and_backward_match_im2col() {
    for (i, &(b, ci, h, w, co)) in SHAPES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], i as u64);
        let wt = tensor(&[co, ci, 3, 3], 100 + i as u64);
        let ours = conv(&x, &wt, ConvAlgorithm::Winograd);
        let plain = conv(&x, &wt, ConvAlgorithm::Im2col);
        assert_eq!(ours.dims(), plain.dims(), "shape {i}");
        let d = rel_diff(&flat(&ours), &flat(&plain));
        assert!(d < 1e-5, "shape {i}: forward differs by {d}");
        let g = tensor(ours.dims(), 200 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, ConvAlgorithm::Winograd);
        let (px, pw) = grads(&x, &wt, &g, ConvAlgorithm::Im2col);
        let (ex, ew) = (rel_diff(&dx, &px), rel_diff(&dw, &pw));
        assert!(ex < 1e-5 && ew < 1e-5, "shape {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn winograd_backward_matches_finite_differences() {
    for (i, &(b, ci, h, w, co)) in SHAPES[..8].iter().enumerate() {
        let x = tensor(&[b, ci, h, w], 10 + i as u64);
        let wt = tensor(&[co, ci, 3, 3], 20 + i as u64);
        let g = tensor(&[b, co, h, w], 30 + i as u64);
        let (dx, dw) = grads(&x, &wt, &g, ConvAlgorithm::Winograd);
        let nx = finite_differences(&|x| conv(x, &wt, ConvAlgorithm::Winograd), &x, &g);
        let nw = finite_differences(&|w| conv(&x, w, ConvAlgorithm::Winograd), &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &nx), rel_diff(&dw, &nw));
        assert!(ex < 1e-4 && ew < 1e-4, "shape {i}: dx {ex}, dw {ew}");
    }
}

/// `|M| t |M|^T` of a tile by the entrywise absolute value of a transform matrix.
fn abs_sandwich<const R: usize, const C: usize>(
    m: &[[f64; C]; R],
    t: &[[f64; C]; C],
) -> [[f64; R]; R] {
    let mut out = [[0f64; R]; R];
    for (a, row) in out.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            for i in 0..C {
                for j in 0..C {
                    *v += m[a][i].abs() * t[i][j] * m[b][j].abs();
                }
            }
        }
    }
    out
}

#[test]
fn winograd_error_stays_within_its_stated_bound() {
    // The module's bound: |y - exact| <= gamma_{C_in + 11} *
    // sum_c |A^T| ((|G| |k_c| |G^T|) . (|B^T| |d_c| |B|)) |A|, u = 2^-24.
    let bt = [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, -1.0],
    ];
    let gm = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let at = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];
    let (b, ci, h, w, co) = (2, 64, 6, 5, 3);
    // Values of mixed sign and magnitude, so cancellations happen.
    let xs: Vec<f32> = values(b * ci * h * w, 1)
        .iter()
        .map(|v| v * 37.0 - 3.0)
        .collect();
    let ks: Vec<f32> = values(co * ci * 9, 2)
        .iter()
        .map(|v| v * 0.7 + 0.05)
        .collect();
    let x = Tensor::from_vec(xs.clone(), (b, ci, h, w), &Device::Cpu).unwrap();
    let wt = Tensor::from_vec(ks.clone(), (co, ci, 3, 3), &Device::Cpu).unwrap();
    let ours = flat(&conv(&x, &wt, ConvAlgorithm::Winograd));
    let u = f64::powi(2.0, -24);
    let n = (ci + 11) as f64;
    let gamma = n * u / (1.0 - n * u);
    let px = |n: usize, c: usize, y: isize, x: isize| -> f64 {
        if (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
            f64::from(xs[((n * ci + c) * h + y as usize) * w + x as usize])
        } else {
            0.0
        }
    };
    let mut worst = 0f64;
    for n in 0..b {
        for o in 0..co {
            for oy in 0..h {
                for ox in 0..w {
                    let (ty, tx) = (oy / 2, ox / 2);
                    let (r, s) = (oy % 2, ox % 2);
                    let (mut exact, mut bound) = (0f64, 0f64);
                    for c in 0..ci {
                        let k =
                            |ky: usize, kx: usize| f64::from(ks[((o * ci + c) * 3 + ky) * 3 + kx]);
                        for ky in 0..3 {
                            for kx in 0..3 {
                                exact += k(ky, kx)
                                    * px(n, c, (oy + ky) as isize - 1, (ox + kx) as isize - 1);
                            }
                        }
                        let d: [[f64; 4]; 4] = std::array::from_fn(|i| {
                            std::array::from_fn(|j| {
                                px(n, c, (2 * ty + i) as isize - 1, (2 * tx + j) as isize - 1).abs()
                            })
                        });
                        let kk: [[f64; 3]; 3] =
                            std::array::from_fn(|i| std::array::from_fn(|j| k(i, j).abs()));
                        let (vd, uk) = (abs_sandwich(&bt, &d), abs_sandwich(&gm, &kk));
                        for a in 0..4 {
                            for bb in 0..4 {
                                bound += f64::abs(at[r][a])
                                    * uk[a][bb]
                                    * vd[a][bb]
                                    * f64::abs(at[s][bb]);
                            }
                        }
                    }
                    let got = f64::from(ours[((n * co + o) * h + oy) * w + ox]);
                    let err = (got - exact).abs();
                    assert!(
                        err <= gamma * bound,
                        "output ({n},{o},{oy},{ox}): error {err:e} above the bound {:e}",
                        gamma * bound
                    );
                    worst = worst.max(err / (gamma * bound));
                }
            }
        }
    }
    // The bound is not vacuous: some output uses a visible share of it.
    assert!(worst > 1e-4, "largest error is {worst:e} of the bound");
}

/// Past 2M transformed values the forward does not keep its transformed input, and the
/// weight gradient transforms the input again, over several chunks.
#[test]
fn a_large_input_is_transformed_again_for_the_weight_gradient() {
    // 16 x 64 x 150 tiles = 154k values per image, 14 images: 2.15M, in chunks of 6.
    let x = tensor(&[14, 64, 20, 30], 31);
    let wt = tensor(&[8, 64, 3, 3], 32);
    let g = tensor(&[14, 8, 20, 30], 33);
    let (dx, dw) = grads(&x, &wt, &g, ConvAlgorithm::Winograd);
    let (px, pw) = grads(&x, &wt, &g, ConvAlgorithm::Im2col);
    let (ex, ew) = (rel_diff(&dx, &px), rel_diff(&dw, &pw));
    assert!(ex < 1e-5 && ew < 1e-5, "dx {ex}, dw {ew}");
}

#[test]
fn winograd_is_refused_for_shapes_it_cannot_compute() {
    let x = tensor(&[1, 8, 6, 6], 0);
    let w = tensor(&[2, 8, 3, 3], 1);
    let err = kernels::conv2d_with(&x, &w, 2, 1, ConvAlgorithm::Winograd)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs a 3x3 kernel at stride 1 with padding 1"),
        "{err}"
    );
    // The default dispatch picks Winograd only where it both fits and wins.
    let s = |d: &[usize]| candle_core::Shape::from(d);
    let pick = |x: &[usize], w: &[usize], stride| ConvAlgorithm::for_conv(&s(x), &s(w), stride, 1);
    let x = [32, 64, 16, 16];
    assert_eq!(
        pick(&[32, 128, 8, 8], &[128, 128, 3, 3], 1),
        ConvAlgorithm::Winograd
    );
    assert_eq!(
        pick(&[32, 3, 16, 16], &[128, 3, 3, 3], 1),
        ConvAlgorithm::Im2col
    );
    assert_eq!(pick(&x, &[64, 64, 3, 3], 2), ConvAlgorithm::Im2col);
    assert_eq!(pick(&x, &[64, 64, 5, 5], 1), ConvAlgorithm::Im2col);
    // 32 tiles (4x4 maps at batch 8) are too few; 128 (batch 32) are enough.
    assert_eq!(
        pick(&[8, 512, 4, 4], &[512, 512, 3, 3], 1),
        ConvAlgorithm::Im2col
    );
    assert_eq!(
        pick(&[32, 512, 4, 4], &[512, 512, 3, 3], 1),
        ConvAlgorithm::Winograd
    );
    // Planes smaller than the kernel go to the dense layer or the tap walk instead
    // (`conv_taps.rs`): one 4x4 tile per 2x2 map multiplies as much as the walk.
    assert_eq!(
        pick(&[128, 512, 2, 2], &[512, 512, 3, 3], 1),
        ConvAlgorithm::Taps
    );
}

/// A conv on a plain tensor (the network's input) gives its weight the same gradient and
/// computes none for the input, by every algorithm.
#[test]
fn a_conv_on_an_untracked_input_skips_its_input_gradient() {
    for algorithm in [
        ConvAlgorithm::Im2col,
        ConvAlgorithm::Winograd,
        ConvAlgorithm::Dense,
        ConvAlgorithm::Taps,
    ] {
        let x = tensor(&[2, 3, 6, 5], 7);
        let wt = tensor(&[4, 3, 3, 3], 8);
        let g = tensor(&[2, 4, 6, 5], 9);
        let (_, tracked_dw) = grads(&x, &wt, &g, algorithm);
        let wv = Var::from_tensor(&wt).unwrap();
        let loss = (conv(&x, wv.as_tensor(), algorithm) * &g)
            .unwrap()
            .sum_all()
            .unwrap();
        let store = loss.backward().unwrap();
        assert!(
            store.get(&x).is_none(),
            "{algorithm:?}: an input gradient was kept"
        );
        let dw = flat(store.get(wv.as_tensor()).unwrap());
        assert_eq!(dw, tracked_dw, "{algorithm:?}: the weight gradient changed");
    }
}
