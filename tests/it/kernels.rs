//! The fast CPU kernels against candle's own ops and against finite differences.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use topo::config::{ModelKind, ModelSpec};
use topo::kernels::{self, Kernels};
use topo::nn;

/// Deterministic values in [-1, 1) that are not all alike.
pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = (i as u64 * 2654435761 + seed * 40503) % 1000;
            v as f32 / 500.0 - 1.0
        })
        .collect()
}

pub(super) fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(values(n, seed), shape, &Device::Cpu).unwrap()
}

pub(super) fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Largest difference relative to the largest magnitude of `expected` (at least 1).
pub(super) fn rel_diff(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected.iter().fold(1f32, |m, v| m.max(v.abs()));
    actual
        .iter()
        .zip(expected)
        .fold(0f32, |m, (a, e)| m.max((a - e).abs()))
        / scale
}

/// (batch, c_in, h, w, c_out, kernel, stride, padding)
type Case = (usize, usize, usize, usize, usize, usize, usize, usize);

const CASES: [Case; 9] = [
    (2, 3, 8, 8, 4, 3, 1, 1),
    // "Same" size with a kernel wider than the input, on a non-square plane.
    (2, 2, 2, 3, 3, 5, 1, 2),
    (3, 2, 9, 9, 5, 3, 2, 1),
    (1, 4, 6, 6, 3, 1, 1, 0),
    (2, 4, 7, 7, 6, 1, 2, 0),
    (2, 2, 10, 10, 3, 7, 2, 3),
    (5, 3, 5, 5, 2, 3, 1, 0),
    (2, 1, 1, 1, 2, 3, 1, 1),
    (4, 2, 4, 4, 3, 2, 2, 0),
];

#[test]
fn fast_conv_forward_matches_candle() {
    for (i, &(b, ci, h, w, co, k, s, p)) in CASES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], i as u64);
        let wt = tensor(&[co, ci, k, k], 100 + i as u64);
        let ours = kernels::conv2d(&x, &wt, s, p).unwrap();
        let theirs = x.conv2d(&wt, p, s, 1, 1).unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "case {i}");
        let d = rel_diff(&flat(&ours), &flat(&theirs));
        assert!(d < 1e-5, "case {i}: forward differs by {d}");
    }
}

/// Gradients of `sum(g * conv(x, w))` with respect to `x` and `w`.
fn grads(
    conv: &dyn Fn(&Tensor, &Tensor) -> Tensor,
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
) -> (Vec<f32>, Vec<f32>) {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let loss = (conv(xv.as_tensor(), wv.as_tensor()) * g)
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
fn fast_conv_backward_matches_candle_on_square_inputs() {
    // Square inputs only: candle 0.11's own input gradient is wrong for strided convs
    // whose height and width leave different remainders (see the next test).
    for (i, &(b, ci, h, w, co, k, s, p)) in CASES.iter().enumerate() {
        let x = tensor(&[b, ci, h, w], i as u64);
        let wt = tensor(&[co, ci, k, k], 100 + i as u64);
        let out = kernels::conv2d(&x, &wt, s, p).unwrap();
        let g = tensor(out.dims(), 200 + i as u64);
        let (dx, dw) = grads(&|x, w| kernels::conv2d(x, w, s, p).unwrap(), &x, &wt, &g);
        let (cx, cw) = grads(&|x, w| x.conv2d(w, p, s, 1, 1).unwrap(), &x, &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &cx), rel_diff(&dw, &cw));
        assert!(ex < 1e-5 && ew < 1e-5, "case {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn fast_conv_over_several_chunks_with_a_partial_last_one_matches_candle() {
    // 64 channels, 3x3, 16x16: 147,456 unfolded values per image, so the op's 1M-value
    // budget takes 7 images at a time and 9 images end in a chunk of 2 (this once read
    // past the chunk's rows).
    let x = tensor(&[9, 64, 16, 16], 7);
    let wt = tensor(&[4, 64, 3, 3], 8);
    let out = kernels::conv2d(&x, &wt, 1, 1).unwrap();
    let theirs = x.conv2d(&wt, 1, 1, 1, 1).unwrap();
    let d = rel_diff(&flat(&out), &flat(&theirs));
    assert!(d < 1e-5, "forward differs by {d}");
    let g = tensor(out.dims(), 9);
    let (dx, dw) = grads(&|x, w| kernels::conv2d(x, w, 1, 1).unwrap(), &x, &wt, &g);
    let (cx, cw) = grads(&|x, w| x.conv2d(w, 1, 1, 1, 1).unwrap(), &x, &wt, &g);
    let (ex, ew) = (rel_diff(&dx, &cx), rel_diff(&dw, &cw));
    assert!(ex < 1e-5 && ew < 1e-5, "dx {ex}, dw {ew}");
}

#[test]
fn a_small_weight_gradient_reduced_in_parts_matches_candle() {
    // A stem-like conv (2 input channels, 3 outputs: a 18 x 3 weight gradient) over
    // 9 images of 64 x 64, 36,864 output pixels: reduced in parts of 2 images, the last
    // one image.
    let x = tensor(&[9, 2, 64, 64], 17);
    let wt = tensor(&[3, 2, 3, 3], 18);
    let out = kernels::conv2d(&x, &wt, 1, 1).unwrap();
    let g = tensor(out.dims(), 19);
    let (dx, dw) = grads(&|x, w| kernels::conv2d(x, w, 1, 1).unwrap(), &x, &wt, &g);
    let (cx, cw) = grads(&|x, w| x.conv2d(w, 1, 1, 1, 1).unwrap(), &x, &wt, &g);
    let (ex, ew) = (rel_diff(&dx, &cx), rel_diff(&dw, &cw));
    assert!(ex < 1e-5 && ew < 1e-5, "dx {ex}, dw {ew}");
}

/// `sum(g * f(x))` is linear in `x` (and in `w`), so a central difference with a large
/// step is exact up to rounding: a wrong gradient entry shows at once.
pub(super) fn finite_differences(
    f: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    g: &Tensor,
) -> Vec<f32> {
    let base = flat(x);
    let step = 0.5f32;
    let at = |values: Vec<f32>| -> f64 {
        let t = Tensor::from_vec(values, x.shape(), &Device::Cpu).unwrap();
        (f(&t).to_dtype(DType::F64).unwrap() * g.to_dtype(DType::F64).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    (0..base.len())
        .map(|i| {
            let (mut plus, mut minus) = (base.clone(), base.clone());
            plus[i] += step;
            minus[i] -= step;
            ((at(plus) - at(minus)) / (2.0 * step as f64)) as f32
        })
        .collect()
}

#[test]
fn fast_conv_backward_matches_finite_differences_on_any_shape() {
    // Non-square, strided, padded: the shapes candle's own backward gets wrong.
    for (i, &(b, ci, h, w, co, k, s, p)) in [
        (2, 2, 7, 10, 3, 3, 2, 1),
        (1, 3, 5, 8, 2, 1, 2, 0),
        (2, 2, 6, 5, 2, 3, 1, 1),
        (1, 1, 9, 4, 2, 5, 3, 2),
    ]
    .iter()
    .enumerate()
    {
        let x = tensor(&[b, ci, h, w], i as u64);
        let wt = tensor(&[co, ci, k, k], 50 + i as u64);
        let out = kernels::conv2d(&x, &wt, s, p).unwrap();
        let g = tensor(out.dims(), 60 + i as u64);
        let (dx, dw) = grads(&|x, w| kernels::conv2d(x, w, s, p).unwrap(), &x, &wt, &g);
        let nx = finite_differences(&|x| kernels::conv2d(x, &wt, s, p).unwrap(), &x, &g);
        let nw = finite_differences(&|w| kernels::conv2d(&x, w, s, p).unwrap(), &wt, &g);
        let (ex, ew) = (rel_diff(&dx, &nx), rel_diff(&dw, &nw));
        assert!(ex < 1e-5 && ew < 1e-5, "case {i}: dx {ex}, dw {ew}");
    }
}

#[test]
fn fast_conv_rejects_mismatched_channels_with_a_message() {
    let x = tensor(&[1, 3, 4, 4], 0);
    let w = tensor(&[2, 2, 3, 3], 1);
    let err = kernels::conv2d(&x, &w, 1, 1).unwrap_err().to_string();
    assert!(
        err.contains("input has 3 channels, weight expects 2"),
        "{err}"
    );
}

#[test]
fn both_kernels_train_the_same_model_to_float_rounding() {
    // One forward and backward of a narrow ResNet-18 on each kernel set: same logits,
    // same taps, same gradients, up to summation order.
    let spec = ModelSpec {
        kind: ModelKind::Resnet18,
        width: 0.0625,
        taps: None,
        stem: Default::default(),
        init: None,
    };
    let x = tensor(&[4, 3, 24, 20], 7);
    let run = |kernels: Kernels| {
        let varmap = VarMap::new();
        let vb = nn::seeded_var_builder(&varmap, 3, DType::F32, &Device::Cpu);
        let model =
            nn::build_with(&spec, 3, 10, vb, topo::config::TapPoint::Conv, kernels).unwrap();
        let out = model.forward_t(&x, true).unwrap();
        let loss = (out.logits.sqr().unwrap().sum_all().unwrap()
            + out.taps[2].sqr().unwrap().mean_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        let mut named: Vec<(String, Vec<f32>)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(name, var)| Some((name.clone(), flat(grads.get(var.as_tensor())?))))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        (flat(&out.logits), named)
    };
    let (fast_logits, fast_grads) = run(Kernels::Fast);
    let (plain_logits, plain_grads) = run(Kernels::Candle);
    let d = rel_diff(&fast_logits, &plain_logits);
    assert!(d < 1e-5, "logits differ by {d}");
    assert_eq!(fast_grads.len(), plain_grads.len());
    assert!(fast_grads.len() > 40, "{} gradients", fast_grads.len());
    for ((name, a), (_, b)) in fast_grads.iter().zip(&plain_grads) {
        let d = rel_diff(a, b);
        assert!(d < 1e-4, "{name}: gradients differ by {d}");
    }
}

// ---------------------------------------------------------------- batch norm

/// candle-nn's training-mode batch norm (+ ReLU), with running statistics of its own.
fn candle_bn(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    relu: bool,
) -> (Tensor, Vec<f32>, Vec<f32>) {
    use candle_core::ModuleT;
    let c = x.dim(1).unwrap();
    let rm = Var::ones(c, DType::F32, &Device::Cpu).unwrap();
    let rv = Var::ones(c, DType::F32, &Device::Cpu).unwrap();
    let bn = candle_nn::BatchNorm::new(
        c,
        rm.as_tensor().clone(),
        rv.as_tensor().clone(),
        gamma.clone(),
        beta.clone(),
        1e-5,
    )
    .unwrap();
    let y = bn.forward_t(x, true).unwrap();
    let y = if relu { y.relu().unwrap() } else { y };
    (
        y,
        rm.as_tensor().to_vec1::<f32>().unwrap(),
        rv.as_tensor().to_vec1::<f32>().unwrap(),
    )
}

/// Batch-norm inputs: odd planes, one value per plane, many channels on 2 x 2 planes
/// (summed along the batch, `lanes.rs`) and planes past one vector.
const BATCH_NORM_SHAPES: [[usize; 4]; 5] = [
    [4, 3, 5, 6],
    [2, 5, 3, 3],
    [3, 4, 1, 1],
    [3, 37, 2, 2],
    [2, 3, 91, 93],
];

#[test]
fn fused_batch_norm_matches_candle_forward_backward_and_statistics() {
    for (i, shape) in BATCH_NORM_SHAPES.iter().enumerate() {
        for relu in [false, true] {
            let c = shape[1];
            let x = (tensor(shape, i as u64) * 3.0).unwrap() + 0.5;
            let x = x.unwrap();
            let gamma = (tensor(&[c], 10 + i as u64) + 1.5).unwrap();
            let beta = tensor(&[c], 20 + i as u64);
            let g = tensor(shape, 30 + i as u64);
            let (xv, gv, bv) = (
                Var::from_tensor(&x).unwrap(),
                Var::from_tensor(&gamma).unwrap(),
                Var::from_tensor(&beta).unwrap(),
            );
            let (ours, stats) = kernels::batch_norm_train(
                xv.as_tensor(),
                gv.as_tensor(),
                bv.as_tensor(),
                1e-5,
                relu,
            )
            .unwrap();
            let (theirs, rm, rv) = candle_bn(xv.as_tensor(), gv.as_tensor(), bv.as_tensor(), relu);
            let d = rel_diff(&flat(&ours), &flat(&theirs));
            assert!(
                d < 1e-5,
                "shape {shape:?} relu {relu}: forward differs by {d}"
            );
            // candle's running mean after one step from 1: 0.9 + 0.1 * mean.
            let expected_rm: Vec<f32> = stats.mean.iter().map(|m| 0.9 + 0.1 * m).collect();
            assert!(rel_diff(&expected_rm, &rm) < 1e-5, "running mean");
            let n = stats.count as f32;
            let expected_rv: Vec<f32> = stats
                .var
                .iter()
                .map(|v| 0.9 + 0.1 * v * n / (n - 1.0))
                .collect();
            assert!(rel_diff(&expected_rv, &rv) < 1e-5, "running var");

            let grads_of = |y: &Tensor| {
                let store = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                [&xv, &gv, &bv].map(|v| flat(store.get(v.as_tensor()).unwrap()))
            };
            for (name, a, b) in ["x", "gamma", "beta"]
                .iter()
                .zip(grads_of(&ours))
                .zip(grads_of(&theirs))
                .map(|((n, a), b)| (n, a, b))
            {
                let d = rel_diff(&a, &b);
                assert!(
                    d < 1e-5,
                    "shape {shape:?} relu {relu}: d{name} differs by {d}"
                );
            }
        }
    }
}

#[test]
fn fused_batch_norm_backward_matches_finite_differences() {
    let shape = [3, 2, 3, 4];
    let x = (tensor(&shape, 1) * 2.0).unwrap();
    let gamma = Tensor::new(&[1.3f32, -0.7], &Device::Cpu).unwrap();
    let beta = Tensor::new(&[0.2f32, 0.1], &Device::Cpu).unwrap();
    let g = tensor(&shape, 2);
    let bn = |x: &Tensor, gamma: &Tensor, beta: &Tensor| {
        kernels::batch_norm_train(x, gamma, beta, 1e-5, false)
            .unwrap()
            .0
    };
    let (xv, gv, bv) = (
        Var::from_tensor(&x).unwrap(),
        Var::from_tensor(&gamma).unwrap(),
        Var::from_tensor(&beta).unwrap(),
    );
    let store = (bn(xv.as_tensor(), gv.as_tensor(), bv.as_tensor()) * &g)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (which, var) in [&xv, &gv, &bv].iter().enumerate() {
        let analytic = flat(store.get(var.as_tensor()).unwrap());
        let f = |a: &[Tensor]| bn(&a[0], &a[1], &a[2]);
        let args = [x.clone(), gamma.clone(), beta.clone()];
        let d = rel_diff(&analytic, &numeric_grad(&f, &args, which, &g, 1e-2));
        assert!(
            d < 2e-3,
            "argument {which}: differs from finite differences by {d}"
        );
    }
}

/// Central differences of `sum(g * f(args))` with respect to `args[which]`, in f64.
fn numeric_grad(
    f: &dyn Fn(&[Tensor]) -> Tensor,
    args: &[Tensor],
    which: usize,
    g: &Tensor,
    h: f32,
) -> Vec<f32> {
    let base = flat(&args[which]);
    (0..base.len())
        .map(|i| {
            let at = |delta: f32| -> f64 {
                let mut v = base.clone();
                v[i] += delta;
                let mut a = args.to_vec();
                a[which] = Tensor::from_vec(v, args[which].shape(), &Device::Cpu).unwrap();
                (f(&a).to_dtype(DType::F64).unwrap() * g.to_dtype(DType::F64).unwrap())
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            ((at(h) - at(-h)) / (2.0 * f64::from(h))) as f32
        })
        .collect()
}

/// Checks the autograd gradient of `sum(g * f(args))` with respect to every argument
/// against central differences of step `h`, to `tol`.
fn assert_matches_finite_differences(
    f: &dyn Fn(&[Tensor]) -> Tensor,
    args: &[Tensor],
    g: &Tensor,
    h: f32,
    tol: f32,
) {
    let vars: Vec<Var> = args.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let store = (f(&tensors) * g)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (which, var) in vars.iter().enumerate() {
        let analytic = flat(store.get(var.as_tensor()).unwrap());
        let d = rel_diff(&analytic, &numeric_grad(f, args, which, g, h));
        assert!(
            d < tol,
            "argument {which}: differs from finite differences by {d}"
        );
    }
}

/// `(x, gamma, beta, residual)` for the fused block ending: the residual is +-6, so
/// the sign of every output is its sign, far from the ReLU's kink (finite differences
/// stay exact) and both sides of the mask are exercised.
fn block_ending_args(shape: [usize; 4], seed: u64) -> [Tensor; 4] {
    let c = shape[1];
    let x = (tensor(&shape, seed) * 3.0).unwrap();
    let gamma = (tensor(&[c], seed + 1) + 1.5).unwrap();
    let beta = tensor(&[c], seed + 2);
    let signs = tensor(&shape, seed + 3)
        .ge(0.0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let residual = ((signs * 12.0).unwrap() - 6.0).unwrap();
    [x, gamma, beta, residual]
}

#[test]
fn fused_batch_norm_add_relu_matches_candle_forward_backward_and_statistics() {
    for (i, shape) in BATCH_NORM_SHAPES.into_iter().enumerate() {
        let args = block_ending_args(shape, 40 + 10 * i as u64);
        let vars = args.clone().map(|t| Var::from_tensor(&t).unwrap());
        let [x, gamma, beta, residual] = vars.each_ref().map(|v| v.as_tensor());
        let (ours, stats) =
            kernels::batch_norm_add_relu_train(x, gamma, beta, residual, 1e-5).unwrap();
        let (bn, rm, _) = candle_bn(x, gamma, beta, false);
        let theirs = (bn + residual).unwrap().relu().unwrap();
        let d = rel_diff(&flat(&ours), &flat(&theirs));
        assert!(d < 1e-5, "shape {shape:?}: forward differs by {d}");
        let expected_rm: Vec<f32> = stats.mean.iter().map(|m| 0.9 + 0.1 * m).collect();
        assert!(rel_diff(&expected_rm, &rm) < 1e-5, "running mean");
        let g = tensor(&shape, 99);
        let grads_of = |y: &Tensor| {
            let store = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            vars.each_ref()
                .map(|v| flat(store.get(v.as_tensor()).unwrap()))
        };
        let (a, b) = (grads_of(&ours), grads_of(&theirs));
        for (name, (a, b)) in ["x", "gamma", "beta", "residual"]
            .iter()
            .zip(a.iter().zip(&b))
        {
            let d = rel_diff(a, b);
            assert!(d < 1e-5, "shape {shape:?}: d{name} differs by {d}");
        }
    }
}

#[test]
fn fused_batch_norm_add_relu_backward_matches_finite_differences() {
    let f = |a: &[Tensor]| {
        kernels::batch_norm_add_relu_train(&a[0], &a[1], &a[2], &a[3], 1e-5)
            .unwrap()
            .0
    };
    let g = tensor(&[3, 2, 3, 4], 8);
    assert_matches_finite_differences(&f, &block_ending_args([3, 2, 3, 4], 7), &g, 1e-2, 2e-3);
}

#[test]
fn fused_batch_norm_rejects_a_residual_of_another_shape_with_a_message() {
    let [x, gamma, beta, _] = block_ending_args([2, 3, 4, 4], 1);
    let residual = tensor(&[2, 3, 4, 5], 2);
    let err = kernels::batch_norm_add_relu_train(&x, &gamma, &beta, &residual, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("residual [2, 3, 4, 5] does not match input [2, 3, 4, 4]"),
        "{err}"
    );
}

/// candle-nn's batch norm with fixed statistics, for evaluation mode.
fn candle_eval_bn(
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> candle_nn::BatchNorm {
    let c = gamma.dim(0).unwrap();
    candle_nn::BatchNorm::new(
        c,
        mean.clone(),
        var.clone(),
        gamma.clone(),
        beta.clone(),
        1e-5,
    )
    .unwrap()
}

#[test]
fn fused_batch_norm_in_evaluation_matches_candle() {
    use candle_core::ModuleT;
    let shape = [3, 4, 5, 2];
    let x = (tensor(&shape, 5) * 2.0).unwrap();
    let gamma = (tensor(&[4], 6) + 1.2).unwrap();
    let beta = tensor(&[4], 7);
    let mean = tensor(&[4], 8);
    let var = (tensor(&[4], 9) + 1.5).unwrap();
    let bn = candle_eval_bn(&gamma, &beta, &mean, &var);
    let g = tensor(&shape, 10);
    for relu in [false, true] {
        let xv = Var::from_tensor(&x).unwrap();
        let ours = kernels::batch_norm_eval(xv.as_tensor(), &gamma, &beta, &mean, &var, 1e-5, relu)
            .unwrap();
        let theirs = bn.forward_t(xv.as_tensor(), false).unwrap();
        let theirs = if relu { theirs.relu().unwrap() } else { theirs };
        let d = rel_diff(&flat(&ours), &flat(&theirs));
        assert!(d < 1e-5, "relu {relu}: forward differs by {d}");
        let dx = |y: &Tensor| {
            let store = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            flat(store.get(xv.as_tensor()).unwrap())
        };
        let d = rel_diff(&dx(&ours), &dx(&theirs));
        assert!(d < 1e-5, "relu {relu}: input gradient differs by {d}");
    }
}

#[test]
fn fused_batch_norm_add_relu_in_evaluation_matches_candle() {
    use candle_core::ModuleT;
    let [x, gamma, beta, residual] = block_ending_args([3, 4, 5, 2], 11);
    let mean = tensor(&[4], 8);
    let var = (tensor(&[4], 9) + 1.5).unwrap();
    let bn = candle_eval_bn(&gamma, &beta, &mean, &var);
    let (xv, rv) = (
        Var::from_tensor(&x).unwrap(),
        Var::from_tensor(&residual).unwrap(),
    );
    let ours = kernels::batch_norm_add_relu_eval(
        xv.as_tensor(),
        &gamma,
        &beta,
        &mean,
        &var,
        rv.as_tensor(),
        1e-5,
    )
    .unwrap();
    let theirs = (bn.forward_t(xv.as_tensor(), false).unwrap() + rv.as_tensor())
        .unwrap()
        .relu()
        .unwrap();
    let d = rel_diff(&flat(&ours), &flat(&theirs));
    assert!(d < 1e-5, "forward differs by {d}");
    let g = tensor(&[3, 4, 5, 2], 10);
    let grads = |y: &Tensor| {
        let store = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        [&xv, &rv].map(|v| flat(store.get(v.as_tensor()).unwrap()))
    };
    let analytic = grads(&ours);
    for (name, (a, b)) in ["x", "residual"]
        .iter()
        .zip(analytic.iter().zip(&grads(&theirs)))
    {
        let d = rel_diff(a, b);
        assert!(d < 1e-5, "d{name} differs by {d}");
    }
    let f = |a: &[Tensor]| {
        kernels::batch_norm_add_relu_eval(&a[0], &gamma, &beta, &mean, &var, &a[1], 1e-5).unwrap()
    };
    let args = [x.clone(), residual.clone()];
    for (which, a) in analytic.iter().enumerate() {
        let d = rel_diff(a, &numeric_grad(&f, &args, which, &g, 1e-2));
        assert!(
            d < 2e-3,
            "argument {which}: differs from finite differences by {d}"
        );
    }
}

// ---------------------------------------------------------------- linear

#[test]
fn fast_linear_matches_candle_forward_and_backward() {
    use candle_core::Module;
    for (i, (batch, inputs, outputs)) in [(4, 7, 3), (1, 5, 6), (9, 33, 17)].into_iter().enumerate()
    {
        let seed = 60 + 10 * i as u64;
        let vars = [
            tensor(&[batch, inputs], seed),
            tensor(&[outputs, inputs], seed + 1),
            tensor(&[outputs], seed + 2),
        ]
        .map(|t| Var::from_tensor(&t).unwrap());
        let [x, w, b] = vars.each_ref().map(|v| v.as_tensor());
        let ours = kernels::linear(x, w, Some(b)).unwrap();
        let theirs = candle_nn::Linear::new(w.clone(), Some(b.clone()))
            .forward(x)
            .unwrap();
        let d = rel_diff(&flat(&ours), &flat(&theirs));
        assert!(d < 1e-5, "case {i}: forward differs by {d}");
        let g = tensor(&[batch, outputs], seed + 3);
        let grads = |y: &Tensor| {
            let store = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            vars.each_ref()
                .map(|v| flat(store.get(v.as_tensor()).unwrap()))
        };
        for (name, (a, b)) in ["x", "weight", "bias"]
            .iter()
            .zip(grads(&ours).iter().zip(&grads(&theirs)))
        {
            let d = rel_diff(a, b);
            assert!(d < 1e-5, "case {i}: d{name} differs by {d}");
        }
    }
}

#[test]
fn fast_linear_backward_matches_finite_differences() {
    let args = [tensor(&[3, 5], 1), tensor(&[4, 5], 2), tensor(&[4], 3)];
    let f = |a: &[Tensor]| kernels::linear(&a[0], &a[1], Some(&a[2])).unwrap();
    // Linear in each argument: a large step is exact up to rounding.
    assert_matches_finite_differences(&f, &args, &tensor(&[3, 4], 4), 0.5, 1e-4);
}

#[test]
fn fast_linear_rejects_mismatched_features_with_a_message() {
    let err = kernels::linear(&tensor(&[2, 5], 1), &tensor(&[3, 4], 2), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linear: 2x5 and 4x3 do not chain"), "{err}");
}

// ---------------------------------------------------------------- SGD in place

#[test]
fn in_place_sgd_steps_equal_the_pytorch_rule_in_f32_bit_for_bit() {
    use topo::train::optim::{Sgd, SgdConfig};
    let (lr, mu, wd) = (0.1f32, 0.9f32, 5e-4f32);
    let w0 = values(300, 3);
    let var = Var::from_vec(w0.clone(), 300, &Device::Cpu).unwrap();
    let mut sgd = Sgd::new(
        vec![("w".to_string(), var.clone())],
        SgdConfig {
            lr: f64::from(lr),
            momentum: f64::from(mu),
            weight_decay: f64::from(wd),
        },
    );
    // loss = sum(c * w^2): grad = 2 c w, different at every step.
    let c = tensor(&[300], 4);
    let (mut w, mut buf) = (w0, vec![0f32; 300]);
    let cs = flat(&c);
    for step in 0..4 {
        let loss = (var.as_tensor().sqr().unwrap() * &c)
            .unwrap()
            .sum_all()
            .unwrap();
        sgd.step(&loss.backward().unwrap()).unwrap();
        for i in 0..300 {
            let g = 2.0 * cs[i] * w[i];
            let d = g + w[i] * wd;
            buf[i] = if step == 0 { d } else { buf[i] * mu + d };
            w[i] -= buf[i] * lr;
        }
        assert_eq!(flat(var.as_tensor()), w, "step {step}");
    }
    let momenta = sgd.momenta();
    assert_eq!(flat(&momenta[0].1), buf);
}

// ---------------------------------------------------------------- topographic loss

fn grid_targets(channels: &[usize], dtype: DType) -> topo::topography::TopographicLoss {
    use topo::topography::{DEFAULT_EPS, LayerReduction, Layout, Norm, TopographicLoss, positions};
    let pos: Vec<_> = channels
        .iter()
        .map(|&c| positions(Layout::Grid, 2, c).unwrap())
        .collect();
    TopographicLoss::from_positions(
        &pos,
        Norm::Euclidean,
        LayerReduction::Sum,
        DEFAULT_EPS,
        &Device::Cpu,
        dtype,
    )
    .unwrap()
}

/// Loss and gradients of the taps on one path.
fn loss_and_grads(
    loss: &topo::topography::TopographicLoss,
    path: topo::topography::LossPath,
    taps: &[Tensor],
) -> (f64, Vec<Vec<f64>>) {
    let vars: Vec<Var> = taps.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = loss.clone().with_path(path).forward(&inputs).unwrap();
    let store = out.total.backward().unwrap();
    let value = out
        .total
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let grads = vars
        .iter()
        .map(|v| {
            store
                .get(v.as_tensor())
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        })
        .collect();
    (value, grads)
}

#[test]
fn topographic_loss_kernel_matches_the_reference_value_and_gradient() {
    use topo::topography::LossPath;
    // Both Gram sides (C > HW and C <= HW), as on ResNet-18's taps; values away from 0
    // so no channel is dead.
    let shapes: [&[usize]; 4] = [
        &[3, 64, 4, 4],
        &[3, 16, 8, 8],
        &[2, 128, 2, 2],
        &[3, 32, 2, 1],
    ];
    let taps: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| tensor(s, 40 + i as u64))
        .collect();
    let channels: Vec<usize> = shapes.iter().map(|s| s[1]).collect();
    // The kernel in f32 against the reference in f64 (itself checked against finite
    // differences and golden values in topography.rs).
    let (kv, kg) = loss_and_grads(
        &grid_targets(&channels, DType::F32),
        LossPath::Kernel,
        &taps,
    );
    let taps64: Vec<Tensor> = taps
        .iter()
        .map(|t| t.to_dtype(DType::F64).unwrap())
        .collect();
    let (rv, rg) = loss_and_grads(
        &grid_targets(&channels, DType::F64),
        LossPath::Reference,
        &taps64,
    );
    assert!(rv > 1e-3, "a loss this small would not test much: {rv}");
    assert!(
        (kv - rv).abs() < 1e-5 * rv.max(1.0),
        "kernel {kv}, reference {rv}"
    );
    // Against the largest gradient of all layers. (A 1x1 tap is left out: its
    // similarities are all +-1 whatever each channel's scale, so its true gradient is 0
    // and both f32 paths leave only rounding noise there.)
    let scale = rg.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
    assert!(
        scale > 1e-4,
        "gradients this small would not test much: {scale}"
    );
    for (layer, (k, r)) in kg.iter().zip(&rg).enumerate() {
        let diff = k.iter().zip(r).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff < 1e-5 * scale,
            "layer {layer}: {diff} vs scale {scale}"
        );
    }
    // Auto mixes the kernel (first two layers) and the Frobenius form (the last two).
    let (av, _) = loss_and_grads(&grid_targets(&channels, DType::F32), LossPath::Auto, &taps);
    assert!(
        (av - rv).abs() < 1e-5 * rv.max(1.0),
        "auto {av}, reference {rv}"
    );
}

#[test]
fn topographic_loss_kernel_gradient_matches_finite_differences() {
    use topo::topography::LossPath;
    let tap = tensor(&[2, 6, 3, 2], 77);
    let loss = grid_targets(&[6], DType::F32).with_path(LossPath::Kernel);
    let (_, grads) = loss_and_grads(&loss, LossPath::Kernel, std::slice::from_ref(&tap));
    let base = flat(&tap);
    let h = 1e-2f32;
    let at = |i: usize, delta: f32| -> f64 {
        let mut v = base.clone();
        v[i] += delta;
        let t = Tensor::from_vec(v, tap.shape(), &Device::Cpu).unwrap();
        let out = loss.forward(&[t]).unwrap().total;
        f64::from(out.to_scalar::<f32>().unwrap())
    };
    let numeric: Vec<f64> = (0..base.len())
        .map(|i| (at(i, h) - at(i, -h)) / (2.0 * f64::from(h)))
        .collect();
    let scale = numeric.iter().fold(0f64, |m, v| m.max(v.abs()));
    let diff = grads[0]
        .iter()
        .zip(&numeric)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        scale > 1e-3 && diff < 5e-3 * scale,
        "{diff} vs scale {scale}"
    );
}

#[test]
fn topographic_loss_kernel_refuses_f64_taps_with_a_message() {
    use topo::topography::LossPath;
    let tap = tensor(&[2, 4, 2, 2], 3).to_dtype(DType::F64).unwrap();
    let loss = grid_targets(&[4], DType::F64).with_path(LossPath::Kernel);
    let err = loss.forward(&[tap]).unwrap_err().to_string();
    assert!(
        err.contains("kernel path needs f32 taps on the CPU"),
        "{err}"
    );
}

#[test]
fn unfold_conv_matches_the_fast_conv_forward_and_backward() {
    for (i, &(b, ci, h, w, co, k, s, p)) in CASES.iter().enumerate() {
        let run = |conv: fn(&Tensor, &Tensor, usize, usize) -> candle_core::Result<Tensor>| {
            let x = Var::from_tensor(&tensor(&[b, ci, h, w], i as u64)).unwrap();
            let wt = Var::from_tensor(&tensor(&[co, ci, k, k], 100 + i as u64)).unwrap();
            let y = conv(x.as_tensor(), wt.as_tensor(), s, p).unwrap();
            let g = tensor(y.dims(), 200 + i as u64);
            let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            (
                flat(&y),
                flat(grads.get(x.as_tensor()).unwrap()),
                flat(grads.get(wt.as_tensor()).unwrap()),
            )
        };
        let (y, dx, dw) = run(kernels::conv2d_unfold);
        let (fy, fdx, fdw) = run(kernels::conv2d);
        for (what, a, e) in [
            ("output", &y, &fy),
            ("input gradient", &dx, &fdx),
            ("weight gradient", &dw, &fdw),
        ] {
            let d = rel_diff(a, e);
            assert!(d < 1e-5, "case {i}: {what} differs by {d}");
        }
    }
}

#[test]
fn unfold_then_fold_is_the_adjoint() {
    // <unfold(x), c> = <x, fold(c)> for any x and c.
    let (b, c, h, w, k, s, p) = (2, 3, 7, 6, 3, 2, 1);
    let x = tensor(&[b, c, h, w], 1).to_dtype(DType::F64).unwrap();
    let cols = kernels::unfold2d(&x, k, s, p).unwrap();
    let g = tensor(cols.dims(), 2).to_dtype(DType::F64).unwrap();
    let folded = kernels::fold2d(&g, (b, c, h, w), k, s, p).unwrap();
    let lhs = (cols * &g)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let rhs = (x * folded)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(
        (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
}
