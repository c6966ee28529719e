//! Tests of the topographic core against golden values computed independently by
//! `tests/fixtures/topography/generate.py` (numpy, following docs/reference.md), plus
//! gradients against finite differences, agreement of the two loss paths, the CSV
//! reader's messages, the metrics and the figure.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use serde::Deserialize;

use super::common::max_abs_diff;
use topo::topography::{
    ChannelSimilarity, DEFAULT_EPS, LayerReduction, Layout, LossPath, Norm, Positions,
    TopographicLoss, distance_matrix, layer_topography, positions, read_positions,
    read_positions_csv, target_similarity,
};

#[derive(Deserialize)]
struct Golden {
    positions: Vec<GoldenPositions>,
    targets: Vec<GoldenTarget>,
    losses: Vec<GoldenLoss>,
}

#[derive(Deserialize)]
struct GoldenPositions {
    layout: Layout,
    dimension: usize,
    n: usize,
    coords: Vec<f64>,
}

#[derive(Deserialize)]
struct GoldenTarget {
    layout: Layout,
    dimension: usize,
    n: usize,
    norm: Norm,
    target: Vec<f64>,
}

#[derive(Deserialize)]
struct GoldenLayer {
    layout: Layout,
    dimension: usize,
}

#[derive(Deserialize)]
struct GoldenLoss {
    name: String,
    layers: Vec<GoldenLayer>,
    shapes: Vec<[usize; 4]>,
    taps: Vec<Vec<f64>>,
    per_layer: Vec<f64>,
    sum: f64,
    mean: f64,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/topography")
        .join(name)
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(fixture("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn positions_match_the_golden_values() {
    let g = golden();
    assert_eq!(
        g.positions.len(),
        8 * 8,
        "3 layouts x 3 dimensions - sphere 1D, 8 sizes each"
    );
    for case in &g.positions {
        let p = positions(case.layout, case.dimension, case.n).unwrap();
        assert_eq!((p.n(), p.dim()), (case.n, case.dimension));
        let diff = max_abs_diff(p.coords(), &case.coords);
        assert!(
            diff < 1e-12,
            "{:?} {}D n={}: off by {diff}",
            case.layout,
            case.dimension,
            case.n
        );
    }
}

#[test]
fn targets_match_the_golden_values() {
    for case in golden().targets {
        let p = positions(case.layout, case.dimension, case.n).unwrap();
        let diff = max_abs_diff(&target_similarity(&p, case.norm), &case.target);
        assert!(
            diff < 1e-12,
            "{:?} {}D n={} {:?}: off by {diff}",
            case.layout,
            case.dimension,
            case.n,
            case.norm
        );
    }
}

#[test]
fn distances_are_exact_on_a_small_grid() {
    let p = positions(Layout::Grid, 2, 4).unwrap();
    // Points (0,0) (1,0) (0,1) (1,1).
    let e = distance_matrix(&p, Norm::Euclidean);
    let l1 = distance_matrix(&p, Norm::L1);
    assert_eq!(e[3], 2f64.sqrt());
    assert_eq!(l1[3], 2.0);
    assert_eq!(e[1], 1.0);
    assert_eq!(target_similarity(&p, Norm::L1)[3], 1.0 / 3.0);
}

/// The golden case's taps as tensors of `dtype`, and the loss built from its layouts.
fn golden_case(
    case: &GoldenLoss,
    reduction: LayerReduction,
    dtype: DType,
) -> (Vec<Tensor>, TopographicLoss) {
    let dev = Device::Cpu;
    let taps = case
        .taps
        .iter()
        .zip(&case.shapes)
        .map(|(v, s)| {
            Tensor::from_vec(v.clone(), (s[0], s[1], s[2], s[3]), &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        })
        .collect();
    let pos: Vec<Positions> = case
        .layers
        .iter()
        .zip(&case.shapes)
        .map(|(l, s)| positions(l.layout, l.dimension, s[1]).unwrap())
        .collect();
    let loss =
        TopographicLoss::from_positions(&pos, Norm::Euclidean, reduction, DEFAULT_EPS, &dev, dtype)
            .unwrap();
    (taps, loss)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn loss_matches_the_golden_values_on_every_path() {
    for case in golden().losses {
        for path in [LossPath::Reference, LossPath::Fast, LossPath::Auto] {
            for (reduction, expected) in [
                (LayerReduction::Sum, case.sum),
                (LayerReduction::Mean, case.mean),
            ] {
                let (taps, loss) = golden_case(&case, reduction, DType::F64);
                let out = loss.with_path(path).forward(&taps).unwrap();
                let per: Vec<f64> = out.per_layer.iter().map(scalar).collect();
                assert!(
                    max_abs_diff(&per, &case.per_layer) < 1e-12,
                    "{} {path:?}: {per:?}",
                    case.name
                );
                assert!(
                    (scalar(&out.total) - expected).abs() < 1e-12,
                    "{} {path:?} {reduction:?}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn loss_in_f32_is_close_to_the_golden_values() {
    for case in golden().losses {
        let (taps, loss) = golden_case(&case, LayerReduction::Sum, DType::F32);
        let out = loss.forward(&taps).unwrap();
        assert!(
            (scalar(&out.total) - case.sum).abs() < 1e-5,
            "{}",
            case.name
        );
    }
}

#[test]
fn layer_values_combine_into_the_total() {
    let case = golden()
        .losses
        .into_iter()
        .find(|c| c.name == "mixed")
        .unwrap();
    let (taps, sum) = golden_case(&case, LayerReduction::Sum, DType::F64);
    let (_, mean) = golden_case(&case, LayerReduction::Mean, DType::F64);
    let s = sum.forward(&taps).unwrap();
    let m = mean.forward(&taps).unwrap();
    let layers: Vec<f64> = s.per_layer.iter().map(scalar).collect();
    assert_eq!(layers.len(), 3);
    let total: f64 = layers.iter().sum();
    assert!((scalar(&s.total) - total).abs() < 1e-14);
    assert!((scalar(&m.total) - total / 3.0).abs() < 1e-14);
}

/// Random taps of the given shapes, seeded.
fn random_taps(shapes: &[(usize, usize, usize, usize)], dtype: DType, seed: u64) -> Vec<Tensor> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    shapes
        .iter()
        .map(|&s| {
            let n = s.0 * s.1 * s.2 * s.3;
            // Shifted so that channels are correlated, as real activations are.
            let v: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 2.0 - 0.5).collect();
            Tensor::from_vec(v, s, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        })
        .collect()
}

fn grid_loss(channels: &[usize], dtype: DType) -> TopographicLoss {
    let pos: Vec<Positions> = channels
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

#[test]
fn both_paths_agree_in_f32_on_both_gram_sides() {
    // (C > HW: the (HW, HW) Gram) and (C <= HW: the (C, C) one), as on ResNet-18's layers.
    let shapes = [(4, 64, 4, 4), (4, 16, 8, 8), (4, 128, 2, 2), (4, 32, 1, 1)];
    let taps = random_taps(&shapes, DType::F32, 1);
    let loss = grid_loss(&[64, 16, 128, 32], DType::F32);
    let slow = loss
        .clone()
        .with_path(LossPath::Reference)
        .forward(&taps)
        .unwrap();
    let fast = loss.with_path(LossPath::Fast).forward(&taps).unwrap();
    for (a, b) in slow.per_layer.iter().zip(&fast.per_layer) {
        let (a, b) = (scalar(a), scalar(b));
        assert!((a - b).abs() < 1e-5, "reference {a} fast {b}");
        assert!(a > 1e-3, "a loss this small would not test much: {a}");
    }
}

#[test]
fn both_paths_have_the_same_gradient() {
    let taps = random_taps(&[(2, 12, 2, 2), (2, 6, 3, 3)], DType::F64, 2);
    let vars: Vec<Var> = taps.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let loss = grid_loss(&[12, 6], DType::F64);
    let grads = |path| {
        let out = loss.clone().with_path(path).forward(&inputs).unwrap();
        let g = out.total.backward().unwrap();
        vars.iter()
            .map(|v| {
                g.get(v)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (grads(LossPath::Reference), grads(LossPath::Fast));
    for (x, y) in a.iter().zip(&b) {
        assert!(max_abs_diff(x, y) < 1e-12);
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let taps = random_taps(&[(2, 5, 2, 3), (2, 9, 1, 2)], DType::F64, 3);
    let loss = grid_loss(&[5, 9], DType::F64);
    for path in [LossPath::Reference, LossPath::Fast] {
        let loss = loss.clone().with_path(path);
        let vars: Vec<Var> = taps.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let grads = loss.forward(&inputs).unwrap().total.backward().unwrap();
        for (layer, var) in vars.iter().enumerate() {
            let analytic = grads
                .get(var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let base = taps[layer].flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let h = 1e-6;
            for k in 0..base.len() {
                let eval = |delta: f64| {
                    let mut v = base.clone();
                    v[k] += delta;
                    let mut moved = taps.clone();
                    moved[layer] = Tensor::from_vec(v, taps[layer].dims(), &Device::Cpu).unwrap();
                    scalar(&loss.forward(&moved).unwrap().total)
                };
                let numeric = (eval(h) - eval(-h)) / (2.0 * h);
                assert!(
                    (numeric - analytic[k]).abs() < 1e-7,
                    "{path:?} layer {layer} entry {k}: numeric {numeric} analytic {}",
                    analytic[k]
                );
            }
            assert!(
                analytic.iter().any(|g| g.abs() > 1e-4),
                "a zero gradient would not test much"
            );
        }
    }
}

#[test]
fn edge_cases_give_finite_values_and_gradients() {
    let dev = Device::Cpu;
    // One channel: no pairs, loss 0. 1x1 maps. An all-zero channel among others.
    let one = Tensor::ones((3, 1, 2, 2), DType::F32, &dev).unwrap();
    let pixel = random_taps(&[(3, 4, 1, 1)], DType::F32, 4).remove(0);
    let mut dead = random_taps(&[(3, 5, 2, 2)], DType::F32, 5)
        .remove(0)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // Channel 1 of every sample is all zero.
    for sample in 0..3 {
        dead[sample * 20 + 4..sample * 20 + 8]
            .iter_mut()
            .for_each(|x| *x = 0.0);
    }
    let dead = Tensor::from_vec(dead, (3, 5, 2, 2), &dev).unwrap();
    let loss = grid_loss(&[1, 4, 5], DType::F32);
    for path in [LossPath::Reference, LossPath::Fast, LossPath::Auto] {
        let vars: Vec<Var> = [&one, &pixel, &dead]
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = loss.clone().with_path(path).forward(&inputs).unwrap();
        assert_eq!(scalar(&out.per_layer[0]), 0.0);
        assert!(scalar(&out.total).is_finite());
        let grads = out.total.backward().unwrap();
        for v in &vars[1..] {
            let g = grads
                .get(v)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!(g.iter().all(|x| x.is_finite()), "{path:?}: {g:?}");
        }
    }
}

#[test]
fn forward_rejects_taps_that_do_not_fit() {
    let loss = grid_loss(&[4], DType::F32);
    let wrong = Tensor::zeros((2, 5, 1, 1), DType::F32, &Device::Cpu).unwrap();
    let err = loss.forward(&[wrong]).unwrap_err().to_string();
    assert!(
        err.contains("tap 0 has shape [2, 5, 1, 1], expected (B > 0, 4, H, W)"),
        "{err}"
    );
    let err = loss.forward(&[]).unwrap_err().to_string();
    assert!(err.contains("0 taps for 1 layers"), "{err}");
}

// ---- custom layouts from CSV ----

fn csv_err(text: &str) -> String {
    read_positions(text.as_bytes(), "mine.csv")
        .unwrap_err()
        .to_string()
}

#[test]
fn csv_reads_rows_with_an_optional_header_and_comments() {
    let p = read_positions(
        "x,y\n# a comment\n0,0\n\n1, 0.5\n-2e-1,3\n".as_bytes(),
        "mine.csv",
    )
    .unwrap();
    assert_eq!((p.n(), p.dim()), (3, 2));
    assert_eq!(p.coords(), &[0.0, 0.0, 1.0, 0.5, -0.2, 3.0]);
    assert_eq!(
        p.check_channels(4, "mine.csv").unwrap_err().to_string(),
        "mine.csv: 3 positions, but the layer has 4 channels"
    );
    p.check_channels(3, "mine.csv").unwrap();
}

#[test]
fn csv_errors_name_the_file_and_line() {
    assert_eq!(
        csv_err(""),
        "mine.csv: no positions (the file has no data rows)"
    );
    assert_eq!(
        csv_err("x,y\n"),
        "mine.csv: no positions (the file has no data rows)"
    );
    assert_eq!(
        csv_err("0,0\n1,2,3\n"),
        "mine.csv:2: expected 2 coordinates (as on the first row), found 3"
    );
    assert_eq!(
        csv_err("x,y\n0,0\n1,oops\n"),
        "mine.csv:3: column 2: `oops` is not a number"
    );
    assert_eq!(
        csv_err("0,NaN\n"),
        "mine.csv:1: column 2: `NaN` is not finite"
    );
    assert_eq!(
        csv_err("0,0\n# c\ninf,1\n"),
        "mine.csv:3: column 1: `inf` is not finite"
    );
    assert_eq!(csv_err("0,,1\n"), "mine.csv:1: empty field in column 2");
}

#[test]
fn csv_file_reader_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.csv");
    std::fs::write(&path, "0,0,0\n1,1\n").unwrap();
    let err = read_positions_csv(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:2: expected 3 coordinates (as on the first row), found 2",
            path.display()
        )
    );
    let missing = dir.path().join("missing.csv");
    let err = topo::log::chain(&read_positions_csv(&missing).unwrap_err());
    assert!(
        err.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{err}"
    );
}

// ---- metrics ----

/// Channels on a line whose activation is a bump centred at their own position over a 1D
/// "image": neighbours overlap, far channels do not.
fn bump_activations(channels: usize, width: usize, order: &[usize]) -> Tensor {
    let mut v = Vec::with_capacity(2 * channels * width);
    for sample in 0..2 {
        for &c in order {
            let centre = c as f64 / (channels - 1) as f64 * (width - 1) as f64;
            for x in 0..width {
                let d = (x as f64 - centre) / (width as f64 / 4.0);
                v.push((-d * d).exp() * (1.0 + sample as f64));
            }
        }
    }
    Tensor::from_vec(v, (2, channels, 1, width), &Device::Cpu).unwrap()
}

#[test]
fn score_is_high_for_a_topographic_layer_and_near_zero_when_shuffled() {
    let c = 32;
    let p = positions(Layout::Grid, 1, c).unwrap();
    let dist = distance_matrix(&p, Norm::Euclidean);
    let ordered: Vec<usize> = (0..c).collect();
    let topo = layer_topography(&bump_activations(c, 128, &ordered), &dist, 8).unwrap();
    let score = topo.score.unwrap();
    assert!(score > 0.95, "{score}");
    assert_eq!((topo.channels, topo.samples), (32, 2));
    assert_eq!(
        topo.bins.iter().map(|b| b.pairs).sum::<usize>(),
        c * (c - 1) / 2
    );
    // The curve falls with distance.
    let first = topo.bins[0].similarity.unwrap();
    let last = topo.bins[7].similarity.unwrap();
    assert!(first > 0.9 && last < 0.05, "{first} {last}");

    // A fixed permutation (seeded shuffle) of the same activations.
    use rand::{SeedableRng, seq::SliceRandom};
    let mut shuffled = ordered.clone();
    shuffled.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
    let score = layer_topography(&bump_activations(c, 128, &shuffled), &dist, 8)
        .unwrap()
        .score
        .unwrap();
    assert!(score.abs() < 0.2, "{score}");
}

#[test]
fn similarity_accumulates_over_batches() {
    let acts = random_taps(&[(4, 6, 2, 2)], DType::F32, 9).remove(0);
    let dist = distance_matrix(&positions(Layout::Grid, 2, 6).unwrap(), Norm::Euclidean);
    let whole = layer_topography(&acts, &dist, 4).unwrap();
    let mut acc = ChannelSimilarity::new(6);
    acc.add(&acts.narrow(0, 0, 1).unwrap()).unwrap();
    acc.add(&acts.narrow(0, 1, 3).unwrap()).unwrap();
    let parts = acc.topography(&dist, 4).unwrap();
    assert_eq!(parts.samples, 4);
    assert!((parts.score.unwrap() - whole.score.unwrap()).abs() < 1e-12);
    let json = serde_json::to_string(&parts).unwrap();
    let back: topo::topography::LayerTopography = serde_json::from_str(&json).unwrap();
    assert_eq!(back.bins.len(), 4);
}

// ---- figure 2 ----

#[test]
fn figure2_is_written_as_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["figure2.png", "figure2.svg"] {
        let path = dir.path().join(name);
        topo::report::layouts::draw_layouts(&path, 64).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
    }
    let svg = std::fs::read_to_string(dir.path().join("figure2.svg")).unwrap();
    assert!(svg.contains("3D nested grid") && svg.contains("Circle"));
    let err = topo::report::layouts::draw_layouts(&dir.path().join("figure2.jpg"), 64)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("figure2.jpg: unknown image format (use .png or .svg)"),
        "{err}"
    );
    // Only the two figures: no temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// `layout: sheet` is TopoLoss's h x w sheet: the 2D grid on a square channel count, a
/// full rectangle otherwise, and 2D only.
#[test]
fn the_sheet_layout_is_topolosss_rectangle() {
    use topo::topography::{Layout, positions};
    let grid = positions(Layout::Grid, 2, 64).unwrap();
    let sheet = positions(Layout::Sheet, 2, 64).unwrap();
    assert_eq!(grid.coords(), sheet.coords());
    let sheet = positions(Layout::Sheet, 2, 32).unwrap();
    // 4 rows of 8: x takes 8 values, y 4, every cell filled once.
    let xs: std::collections::BTreeSet<u64> = sheet.iter().map(|p| p[0].to_bits()).collect();
    let ys: std::collections::BTreeSet<u64> = sheet.iter().map(|p| p[1].to_bits()).collect();
    assert_eq!((xs.len(), ys.len()), (8, 4));
    assert!(positions(Layout::Sheet, 3, 32).is_err());
}
