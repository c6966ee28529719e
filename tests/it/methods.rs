//! TDANN's and TopoLoss's losses against golden values and gradients computed
//! independently by `tests/fixtures/methods/generate.py` (numpy, float64, central
//! differences), against finite differences of their own, and through `topo run`.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use serde::Deserialize;

use super::common::max_abs_diff;
use topo::config::Neighbourhood;
use topo::topography::{
    Norm, Positions, StepInputs, Tdann, TopoLoss, TopographicMethod, positions, sheet_size,
};

#[derive(Deserialize)]
struct Golden {
    tdann: Vec<TdannCase>,
    topoloss: Vec<TopoLossCase>,
}

#[derive(Deserialize)]
struct TdannCase {
    shape: [usize; 4],
    tap: Vec<f64>,
    positions: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct TopoLossCase {
    shape: [usize; 4],
    factor: f64,
    weight: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
}

fn golden() -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/methods/golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The loss of a one-layer method and its gradient with respect to `x`, at step 0.
fn value_and_grad(method: &dyn TopographicMethod, taps: &[Tensor], x: &Var) -> (f64, Vec<f64>) {
    value_and_grad_at(method, taps, x, 0)
}

/// The loss of a one-layer method at `step` and its gradient with respect to `x`, in
/// f64 whatever the tensors' type (zero where `x` gets no gradient).
fn value_and_grad_at(
    method: &dyn TopographicMethod,
    taps: &[Tensor],
    x: &Var,
    step: u64,
) -> (f64, Vec<f64>) {
    let to64 = |t: &Tensor| {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let losses = method.layer_losses(&StepInputs { taps, step }).unwrap();
    let loss = &losses[0];
    let grads = loss.backward().unwrap();
    let g = grads
        .get(x.as_tensor())
        .map(to64)
        .unwrap_or_else(|| vec![0.0; x.elem_count()]);
    (to64(&loss.reshape(1).unwrap())[0], g)
}

fn tdann_of(case: &TdannCase) -> (Tdann, Var) {
    let p = Positions::from_rows(2, case.positions.clone()).unwrap();
    let tdann = Tdann::new(&[p], Norm::Euclidean, Neighbourhood::Layer, 1, 0).unwrap();
    let tap = Var::from_tensor(
        &Tensor::from_vec(case.tap.clone(), case.shape.to_vec(), &Device::Cpu).unwrap(),
    )
    .unwrap();
    (tdann, tap)
}

#[test]
fn tdann_value_and_gradient_match_the_independent_implementation() {
    for case in golden().tdann {
        let (tdann, tap) = tdann_of(&case);
        let (value, grad) = value_and_grad(&tdann, &[tap.as_tensor().clone()], &tap);
        assert!(
            (value - case.loss).abs() < 1e-12,
            "{:?}: loss {value} against {}",
            case.shape,
            case.loss
        );
        // A dead channel's loss is not differentiable (a step off zero gives it a spread
        // of its own), so its central differences are meaningless: compare live ones.
        let [_, c, h, w] = case.shape;
        let plane = h * w;
        let dead = |ch: usize| {
            (0..case.shape[0]).all(|n| {
                case.tap[(n * c + ch) * plane..(n * c + ch + 1) * plane]
                    .iter()
                    .all(|&v| v == 0.0)
            })
        };
        let live: Vec<usize> = (0..case.tap.len())
            .filter(|&i| !dead((i / plane) % c))
            .collect();
        assert!(live.len() >= case.tap.len() / 2);
        let pick = |g: &[f64]| live.iter().map(|&i| g[i]).collect::<Vec<_>>();
        let d = max_abs_diff(&pick(&grad), &pick(&case.grad));
        assert!(d < 1e-7, "{:?}: gradient differs by {d}", case.shape);
    }
}

#[test]
fn topoloss_value_and_gradient_match_the_independent_implementation() {
    for case in golden().topoloss {
        let weight = Var::from_tensor(
            &Tensor::from_vec(case.weight.clone(), case.shape.to_vec(), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let method = TopoLoss::new(&[("w".to_string(), weight.clone())], case.factor).unwrap();
        let (value, grad) = value_and_grad(&method, &[], &weight);
        assert!(
            (value - case.loss).abs() < 1e-12,
            "{:?} factor {}: loss {value} against {}",
            case.shape,
            case.factor,
            case.loss
        );
        let d = max_abs_diff(&grad, &case.grad);
        assert!(d < 1e-7, "{:?}: gradient differs by {d}", case.shape);
    }
}

#[test]
fn topoloss_one_op_kernel_matches_the_tensor_ops() {
    // Square, oblong and one-row sheets, odd factors, and a sheet with a zero cell (the
    // floor holds its norm).
    for (shape, factor, zero_cell) in [
        ([16usize, 3, 3, 3], 2.0, false),
        ([32, 4, 3, 3], 2.0, true),
        ([12, 5, 1, 1], 3.0, false),
        ([7, 2, 3, 3], 1.0, false),
        ([64, 2, 3, 3], 1.5, false),
    ] {
        let mut w = Tensor::randn(0f32, 1.0, shape.to_vec(), &Device::Cpu).unwrap();
        if zero_cell {
            let per = w.elem_count() / shape[0];
            let mut v = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v[3 * per..4 * per].iter_mut().for_each(|x| *x = 0.0);
            w = Tensor::from_vec(v, shape.to_vec(), &Device::Cpu).unwrap();
        }
        let w32 = Var::from_tensor(&w).unwrap();
        let kernel = TopoLoss::new(&[("w".to_string(), w32.clone())], factor).unwrap();
        let (value, grad) = value_and_grad(&kernel, &[], &w32);
        let reference = TopoLoss::new(&[("w".to_string(), w32.clone())], factor)
            .unwrap()
            .in_tensor_ops();
        let (ref_value, ref_grad) = value_and_grad(&reference, &[], &w32);
        // The tensor ops in f64 on the same weights: what both approximate.
        let w64 = Var::from_tensor(&w.to_dtype(DType::F64).unwrap()).unwrap();
        let exact = TopoLoss::new(&[("w".to_string(), w64.clone())], factor).unwrap();
        let (exact_value, exact_grad) = value_and_grad(&exact, &[], &w64);
        // Relative to the largest gradient, with a floor for factor 1 (no blur: zero).
        let scale = exact_grad.iter().fold(1e-2, |m: f64, g| m.max(g.abs()));
        assert!(
            (value - exact_value).abs() < 1e-6,
            "{shape:?}: kernel {value}, f64 {exact_value}"
        );
        assert!(
            max_abs_diff(&grad, &exact_grad) < 1e-5 * scale,
            "{shape:?}: kernel gradient off by {}",
            max_abs_diff(&grad, &exact_grad)
        );
        // No worse than candle's f32 ops.
        assert!((value - exact_value).abs() <= (ref_value - exact_value).abs() + 1e-7);
        assert!(
            max_abs_diff(&grad, &exact_grad) <= max_abs_diff(&ref_grad, &exact_grad) + 1e-6 * scale
        );
    }
}

#[test]
fn tdann_one_op_kernel_matches_the_tensor_ops() {
    // The whole layer, overlapping nearest-channel neighbourhoods, a dead channel, and one
    // position per image.
    let cases: [(&[usize], Neighbourhood, usize, bool); 4] = [
        (&[3, 9, 4, 5], Neighbourhood::Layer, 1, false),
        (&[4, 16, 3, 3], Neighbourhood::Nearest(5), 3, false),
        (&[5, 12, 2, 3], Neighbourhood::Layer, 1, true),
        (&[16, 10, 1, 1], Neighbourhood::Nearest(6), 2, false),
    ];
    for (shape, hood, count, dead) in cases {
        let c = shape[1];
        let p = positions(topo::topography::Layout::Grid, 2, c).unwrap();
        let make =
            || Tdann::new(std::slice::from_ref(&p), Norm::Euclidean, hood, count, 3).unwrap();
        let mut tap = Tensor::randn(0f32, 1.0, shape.to_vec(), &Device::Cpu).unwrap();
        if dead {
            let plane: usize = shape[2..].iter().product();
            let mut v = tap.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for n in 0..shape[0] {
                v[(n * c + 4) * plane..(n * c + 5) * plane]
                    .iter_mut()
                    .for_each(|x| *x = 0.0);
            }
            tap = Tensor::from_vec(v, shape.to_vec(), &Device::Cpu).unwrap();
        }
        let t32 = Var::from_tensor(&tap).unwrap();
        let t64 = Var::from_tensor(&tap.to_dtype(DType::F64).unwrap()).unwrap();
        for step in [0, 1] {
            let (value, grad) = value_and_grad_at(&make(), &[t32.as_tensor().clone()], &t32, step);
            let (ref_value, ref_grad) = value_and_grad_at(
                &make().in_tensor_ops(),
                &[t32.as_tensor().clone()],
                &t32,
                step,
            );
            // The tensor ops in f64 on the same tap: what both approximate.
            let (exact_value, exact_grad) =
                value_and_grad_at(&make(), &[t64.as_tensor().clone()], &t64, step);
            let scale = exact_grad.iter().fold(1e-3, |m: f64, g| m.max(g.abs()));
            assert!(
                (value - exact_value).abs() < 1e-5,
                "{shape:?} step {step}: kernel {value}, f64 {exact_value}, candle f32 {ref_value}"
            );
            let (ours, theirs) = (
                max_abs_diff(&grad, &exact_grad),
                max_abs_diff(&ref_grad, &exact_grad),
            );
            assert!(
                ours < 1e-4 * scale,
                "{shape:?} step {step}: kernel gradient off by {ours} (candle f32: {theirs}, scale {scale})"
            );
        }
    }
}

/// Central differences of the method's own value, against its autograd gradient.
fn check_finite_differences(method: &dyn TopographicMethod, taps: &[Tensor], x: &Var) {
    let (_, grad) = value_and_grad(method, taps, x);
    let base = x
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let shape = x.shape().clone();
    let h = 1e-6;
    for i in 0..base.len() {
        let at = |delta: f64| {
            let mut v = base.clone();
            v[i] += delta;
            x.set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let l = method.layer_losses(&StepInputs { taps, step: 0 }).unwrap();
            l[0].to_scalar::<f64>().unwrap()
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (numeric - grad[i]).abs() < 1e-6,
            "element {i}: finite difference {numeric}, gradient {}",
            grad[i]
        );
    }
    x.set(&Tensor::from_vec(base, shape, &Device::Cpu).unwrap())
        .unwrap();
}

#[test]
fn both_gradients_match_finite_differences() {
    let g = golden();
    let (tdann, tap) = tdann_of(&g.tdann[0]);
    check_finite_differences(&tdann, &[tap.as_tensor().clone()], &tap);
    let case = &g.topoloss[0];
    let weight = Var::from_tensor(
        &Tensor::from_vec(case.weight.clone(), case.shape.to_vec(), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let method = TopoLoss::new(&[("w".to_string(), weight.clone())], case.factor).unwrap();
    check_finite_differences(&method, &[], &weight);
}

#[test]
fn tdann_neighbourhoods_are_seeded_per_step_and_each_is_the_loss_on_its_channels() {
    let p = positions(topo::topography::Layout::Grid, 2, 16).unwrap();
    let method = Tdann::new(
        std::slice::from_ref(&p),
        Norm::Euclidean,
        Neighbourhood::Nearest(5),
        1,
        7,
    )
    .unwrap();
    let again = Tdann::new(
        std::slice::from_ref(&p),
        Norm::Euclidean,
        Neighbourhood::Nearest(5),
        1,
        7,
    )
    .unwrap();
    let draws: Vec<Vec<usize>> = (0..20)
        .map(|s| method.neighbourhoods(0, s)[0].clone())
        .collect();
    assert_eq!(
        draws[3],
        again.neighbourhoods(0, 3)[0],
        "same seed and step, same draw"
    );
    assert!(
        draws.iter().any(|d| d != &draws[0]),
        "steps draw different neighbourhoods"
    );
    let tap = Tensor::randn(0f64, 1.0, (4, 16, 3, 3), &Device::Cpu).unwrap();
    for step in [0, 5] {
        let units = &method.neighbourhoods(0, step)[0];
        assert_eq!(units.len(), 5);
        // The neighbourhood is the 5 channels nearest one of them.
        let d = topo::topography::distance_matrix(&p, Norm::Euclidean);
        let nearest_of = |c: usize| {
            let mut o: Vec<usize> = (0..16).collect();
            o.sort_by(|&a, &b| d[c * 16 + a].total_cmp(&d[c * 16 + b]).then(a.cmp(&b)));
            let mut k = o[..5].to_vec();
            k.sort_unstable();
            k
        };
        assert!(units.iter().any(|&c| &nearest_of(c) == units), "{units:?}");
        // Its loss is the whole-layer loss of the sub-layer those channels form.
        let coords: Vec<f64> = units.iter().flat_map(|&u| p.point(u).to_vec()).collect();
        let sub = Tdann::new(
            &[Positions::from_rows(2, coords).unwrap()],
            Norm::Euclidean,
            Neighbourhood::Layer,
            1,
            0,
        )
        .unwrap();
        let idx = Tensor::new(
            units
                .iter()
                .map(|&u| u as u32)
                .collect::<Vec<_>>()
                .as_slice(),
            &Device::Cpu,
        )
        .unwrap();
        let sub_tap = tap.index_select(&idx, 1).unwrap();
        let whole = |m: &Tdann, t: &Tensor| {
            m.layer_losses(&StepInputs {
                taps: std::slice::from_ref(t),
                step,
            })
            .unwrap()[0]
                .to_scalar::<f64>()
                .unwrap()
        };
        let (a, b) = (whole(&method, &tap), whole(&sub, &sub_tap));
        assert!((a - b).abs() < 1e-12, "step {step}: {a} against {b}");
    }
}

#[test]
fn smooth_weights_cost_less_than_shuffled_ones_and_bad_factors_are_refused() {
    // A sheet whose weights vary slowly over it, and the same cells shuffled.
    let (h, w) = sheet_size(64);
    let smooth: Vec<f64> = (0..64)
        .flat_map(|c| {
            let (r, q) = ((c / w) as f64 / h as f64, (c % w) as f64 / w as f64);
            [1.0 + r, 1.0 + q, 1.0 + r * q, 2.0 - r]
        })
        .collect();
    let mut order: Vec<usize> = (0..64).collect();
    order.reverse();
    order.swap(3, 40);
    order.swap(10, 27);
    let shuffled: Vec<f64> = order
        .iter()
        .flat_map(|&c| smooth[c * 4..c * 4 + 4].to_vec())
        .collect();
    let loss = |v: Vec<f64>| {
        let var =
            Var::from_tensor(&Tensor::from_vec(v, (64, 1, 2, 2), &Device::Cpu).unwrap()).unwrap();
        let m = TopoLoss::new(&[("w".to_string(), var)], 2.0).unwrap();
        m.layer_losses(&StepInputs { taps: &[], step: 0 }).unwrap()[0]
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let (a, b) = (loss(smooth), loss(shuffled));
    assert!(a < 0.01 && b > 4.0 * a, "smooth {a}, shuffled {b}");
    let var = Var::zeros((8, 1, 1, 1), DType::F64, &Device::Cpu).unwrap();
    let err = TopoLoss::new(&[("conv1".to_string(), var)], 3.0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("2 x 4 sheet") && err.contains("at most 2"),
        "{err}"
    );
}

/// A tiny experiment (`tests/fixtures/tiny.yaml` extended by `body`) run by `topo run`
/// on a Fashion-MNIST fixture in a fresh folder.
struct TinyRun {
    _dir: tempfile::TempDir,
    out: std::process::Output,
    results: PathBuf,
}

fn run_tiny(name: &str, body: &str) -> TinyRun {
    let dir = tempfile::tempdir().unwrap();
    super::fixtures::write_fashion_mnist(&dir.path().join("data"), 30, 5, false).unwrap();
    let yaml = dir.path().join(format!("{name}.yaml"));
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny.yaml");
    std::fs::write(
        &yaml,
        format!("extends: {}\nname: {name}\n{body}", tiny.display()),
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = super::common::topo_command(dir.path(), &yaml, "run", &results, &["--no-report"])
        .output()
        .unwrap();
    TinyRun {
        _dir: dir,
        out,
        results,
    }
}

fn run_methods(topoloss: &str) -> TinyRun {
    run_tiny(
        "methods",
        &format!(
            "topographies:\n  tdann: {{ layout: grid, dimension: 2, loss: {{ kind: tdann, neighbourhood: 6 }} }}\n  \
             topoloss: {{ layout: grid, dimension: 2, loss: {topoloss} }}\n\
             grid: {{ topography: [tdann, topoloss] }}\n\
             pruning: {{ methods: [l2], proportions: [0, 0.5] }}\n"
        ),
    )
}

fn run_weighted(weights: &str) -> TinyRun {
    run_tiny(
        "late",
        &format!(
            "topographies:\n  late: {{ layout: grid, dimension: 2, layer_weights: {weights} }}\n\
             grid: {{ topography: [late], lambda: [2] }}\n\
             pruning: {{ methods: [l2], proportions: [0] }}\n"
        ),
    )
}

#[test]
fn each_method_trains_from_yaml_and_records_its_loss_per_layer() {
    let tiny = run_methods("{ kind: topoloss, factor: 2 }");
    let (out, results) = (&tiny.out, &tiny.results);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("methods/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in runs {
        let name = run.file_name().unwrap().to_string_lossy().to_string();
        let (kind, bound) = if name.contains("tdann") {
            ("tdann", 1.0)
        } else {
            ("topoloss", 2.0)
        };
        let spec = std::fs::read_to_string(run.join("run.yaml")).unwrap();
        assert!(spec.contains(&format!("kind: {kind}")), "{name}: {spec}");
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        for line in metrics.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let layers = record["topo_layers"].as_object().unwrap();
            assert_eq!(layers.len(), 5, "{name}: one value per tapped conv");
            for (layer, v) in layers {
                let v = v.as_f64().unwrap();
                assert!((0.0..=bound).contains(&v), "{name} {layer}: {v}");
            }
        }
    }
}

#[test]
fn a_topoloss_factor_too_large_for_a_layer_is_refused_before_anything_runs() {
    let tiny = run_methods("{ kind: topoloss, factor: 3 }");
    let (out, results) = (&tiny.out, &tiny.results);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "topography `topoloss` on model `r`: `conv1`: its 4 channels lie on a 2 x 2 sheet"
        ) && err.contains("lower `factor` to at most 2"),
        "{err}"
    );
    assert!(
        !results.join("methods/runs").exists(),
        "nothing trained: {err}"
    );
}

#[test]
fn layer_weights_train_only_the_layers_named_and_scale_with_lambda() {
    let tiny = run_weighted("{ layer3.1.conv2: 0.5, layer4.1.conv2: 1 }");
    let (out, results) = (&tiny.out, &tiny.results);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_dir(results.join("late/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let spec = std::fs::read_to_string(run.join("run.yaml")).unwrap();
    assert!(
        spec.contains("layer_weights:") && spec.contains("layer3.1.conv2: 0.5"),
        "{spec}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for line in metrics.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let layer = |name: &str| r["topo_layers"][name].as_f64().unwrap();
        // Every tapped layer is still measured; only the named ones count.
        assert!(layer("conv1") > 0.0);
        let weighted = 0.5 * layer("layer3.1.conv2") + layer("layer4.1.conv2");
        let topo = r["topo"].as_f64().unwrap();
        assert!(
            (topo - weighted).abs() < 1e-5 * weighted.max(1.0),
            "{topo} against {weighted}"
        );
        let total = r["ce"].as_f64().unwrap() + 2.0 * topo;
        assert!((r["loss"].as_f64().unwrap() - total).abs() < 1e-4, "{line}");
    }
}

#[test]
fn a_layer_weight_on_a_conv_that_is_not_tapped_is_refused_with_the_taps_named() {
    let tiny = run_weighted("{ layer4.1.cnv2: 1 }");
    let out = &tiny.out;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`layer4.1.cnv2` is not a tapped conv")
            && err.contains("did you mean `layer4.1.conv2`?"),
        "{err}"
    );
    let again = run_weighted("{ conv1: -1 }");
    let out = &again.out;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("late.yaml:") && err.contains("positive finite"),
        "{err}"
    );
}

/// TDANN's windows: every drawn neighbourhood is the channels of one axis-aligned square
/// of the given side (a subset when trimmed), all of one size, at least `min_units`; a
/// layer with no window that large is one neighbourhood of all its channels.
#[test]
fn tdann_windows_are_trimmed_squares_of_one_size() {
    let p = positions(topo::topography::Layout::Grid, 2, 256).unwrap();
    let side = 0.3;
    let window = Neighbourhood::Window { side, min_units: 9 };
    let method = Tdann::new(std::slice::from_ref(&p), Norm::Euclidean, window, 3, 11).unwrap();
    let mut sizes = std::collections::BTreeSet::new();
    for step in 0..30 {
        let draws = method.neighbourhoods(0, step);
        assert_eq!(draws.len(), 3);
        for units in draws {
            sizes.insert(units.len());
            assert!(units.len() >= 9, "{units:?}");
            assert!(units.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
            // Within one square of side `side`: the spread on each axis is at most `side`.
            for axis in 0..2 {
                let (lo, hi) = units.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &u| {
                    (lo.min(p.point(u)[axis]), hi.max(p.point(u)[axis]))
                });
                assert!(hi - lo <= side + 1e-12, "axis {axis}: {lo}..{hi}");
            }
        }
    }
    assert_eq!(sizes.len(), 1, "one common size: {sizes:?}");

    // 16 channels on a 4 x 4 grid: a window of side 0.3 holds at most 4, below 9.
    let small = positions(topo::topography::Layout::Grid, 2, 16).unwrap();
    let method = Tdann::new(std::slice::from_ref(&small), Norm::Euclidean, window, 2, 11).unwrap();
    assert_eq!(
        method.neighbourhoods(0, 4),
        vec![(0..16).collect::<Vec<_>>()]
    );
}
