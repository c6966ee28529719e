//! Training on a device against the CPU: every op of a training step of the three models
//! on `TEST_DEVICE` (`cuda` is the first GPU; unset or `cpu`, the CPU) against the
//! CPU's fast kernels, within 1e-4 of the largest magnitude.
//!
//! On a GPU these are the kernel tests `just gpu-check` runs. Without one, the device is
//! the CPU running what a GPU runs (convs through their column matrix, candle's batch
//! norms and linear layers, the Frobenius form of the topographic loss, this crate's max
//! pool and SGD), so the comparison still checks the GPU's path through the code.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use topo::config::{ModelKind, ModelSpec};
use topo::kernels::{self, Kernels};
use topo::nn;
use topo::topography::{
    DEFAULT_EPS, LayerReduction, Layout, LossPath, Norm, TopographicLoss, positions,
};
use topo::train::optim::{Sgd, SgdConfig, trainable_vars};

use super::kernels::{flat, rel_diff, values};

const TOLERANCE: f32 = 1e-4;

fn device() -> Device {
    match std::env::var("TEST_DEVICE").as_deref() {
        Err(_) | Ok("") | Ok("cpu") => Device::Cpu,
        Ok("cuda") => {
            Device::new_cuda(0).unwrap_or_else(|e| panic!("TEST_DEVICE=cuda: no GPU: {e}"))
        }
        Ok(other) => panic!("TEST_DEVICE={other}: expected cpu or cuda"),
    }
}

/// The kernels a model runs on `device`, as `topo run` picks them; on the CPU standing in
/// for a GPU, the GPU's (convs through their column matrix, candle's other ops).
fn kernels_on(device: &Device) -> Kernels {
    match device {
        Device::Cpu => Kernels::Unfold,
        other => Kernels::Fast.on(other),
    }
}

/// The loss path on `device`: on the CPU standing in for a GPU, the GPU's (the Frobenius
/// form through batched products).
fn loss_path_on(device: &Device) -> LossPath {
    match device {
        Device::Cpu => LossPath::Fast,
        _ => LossPath::Auto,
    }
}

/// The paper's loss on the 2D grid for layers of `channels`, on `device`.
fn grid_loss(channels: &[usize], device: &Device, dtype: DType, path: LossPath) -> TopographicLoss {
    let layout: Vec<_> = channels
        .iter()
        .map(|&c| positions(Layout::Grid, 2, c).unwrap())
        .collect();
    TopographicLoss::from_positions(
        &layout,
        Norm::Euclidean,
        LayerReduction::Sum,
        DEFAULT_EPS,
        device,
        dtype,
    )
    .unwrap()
    .with_path(path)
}

fn check(what: &str, actual: &[f32], expected: &[f32]) {
    let d = rel_diff(actual, expected);
    assert!(
        d <= TOLERANCE,
        "{what}: device and CPU differ by {d:e} (tolerance {TOLERANCE:e})"
    );
}

#[test]
fn max_pool_forward_and_backward_on_the_device_match_the_cpu() {
    let dev = device();
    // The models' pools (ResNet and DenseNet stems, VGG), overlapping and padded ones.
    for (i, (b, c, h, w, k, s, p)) in [
        (2, 3, 9, 9, 3, 2, 1),
        (2, 4, 16, 16, 3, 2, 1),
        (2, 2, 8, 8, 2, 2, 0),
        (1, 2, 7, 6, 3, 1, 1),
        (1, 2, 9, 8, 4, 3, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let x = values(b * c * h * w, i as u64);
        let run = |device: &Device| {
            let xs = Var::from_vec(x.clone(), (b, c, h, w), device).unwrap();
            let ys = kernels::max_pool2d(xs.as_tensor(), k, s, p).unwrap();
            let weights = Tensor::arange(0f32, ys.elem_count() as f32, device)
                .unwrap()
                .reshape(ys.shape())
                .unwrap();
            let grads = (&ys * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            (flat(&ys), flat(grads.get(xs.as_tensor()).unwrap()))
        };
        let (cpu_y, cpu_dx) = run(&Device::Cpu);
        let (y, dx) = run(&dev);
        check(&format!("max pool {i} forward"), &y, &cpu_y);
        check(&format!("max pool {i} backward"), &dx, &cpu_dx);
    }
}

#[test]
fn sgd_steps_on_the_device_match_the_cpu() {
    let dev = device();
    let shapes: [&[usize]; 3] = [&[7, 3, 3, 3], &[10], &[4, 33]];
    let run = |device: &Device| {
        let vars: Vec<(String, Var)> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = s.iter().product();
                (
                    format!("v{i}"),
                    Var::from_vec(values(n, i as u64), *s, device).unwrap(),
                )
            })
            .collect();
        let mut sgd = Sgd::new(
            vars.clone(),
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
        );
        // Three steps: the first makes the momentum buffers, the others update in place.
        for step in 0..3u64 {
            let loss = vars
                .iter()
                .map(|(_, v)| {
                    let t = v.as_tensor();
                    let w = Tensor::from_vec(values(t.elem_count(), 50 + step), t.shape(), device)
                        .unwrap();
                    (t.sqr().unwrap() * w).unwrap().sum_all().unwrap()
                })
                .reduce(|a, b| (a + b).unwrap())
                .unwrap();
            sgd.step(&loss.backward().unwrap()).unwrap();
        }
        vars.iter()
            .map(|(_, v)| flat(v.as_tensor()))
            .collect::<Vec<_>>()
    };
    let cpu = run(&Device::Cpu);
    for (i, (a, b)) in run(&dev).iter().zip(&cpu).enumerate() {
        check(&format!("variable {i} after three steps"), a, b);
    }
}

#[test]
fn topographic_loss_on_the_device_matches_the_cpu_kernel() {
    let dev = device();
    // Few channels on many positions (the kernel's case on the CPU) and many channels on
    // few positions (the Gram form's), as ResNet's early and late taps.
    let shapes = [
        (3usize, 16usize, 6usize, 6usize),
        (3, 64, 2, 2),
        (2, 9, 3, 5),
    ];
    let channels: Vec<usize> = shapes.iter().map(|&(_, c, _, _)| c).collect();
    let run = |device: &Device, path: LossPath| {
        let loss = grid_loss(&channels, device, DType::F32, path);
        let taps: Vec<Var> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(b, c, h, w))| {
                Var::from_vec(values(b * c * h * w, 10 + i as u64), (b, c, h, w), device).unwrap()
            })
            .collect();
        let tensors: Vec<Tensor> = taps.iter().map(|t| t.as_tensor().clone()).collect();
        let out = loss.forward(&tensors).unwrap();
        let grads = out.total.backward().unwrap();
        let per_layer: Vec<f32> = out
            .per_layer
            .iter()
            .map(|l| l.to_scalar::<f32>().unwrap())
            .collect();
        let dx: Vec<Vec<f32>> = taps
            .iter()
            .map(|t| flat(grads.get(t.as_tensor()).unwrap()))
            .collect();
        (per_layer, dx)
    };
    let (cpu_loss, cpu_dx) = run(&Device::Cpu, LossPath::Auto);
    let (loss, dx) = run(&dev, loss_path_on(&dev));
    check("per-layer losses", &loss, &cpu_loss);
    assert!(cpu_loss.iter().all(|l| *l > 0.0), "{cpu_loss:?}");
    for (i, (a, b)) in dx.iter().zip(&cpu_dx).enumerate() {
        check(&format!("gradient of tap {i}"), a, b);
    }
}

/// One training step (forward, cross-entropy + the topographic loss, backward, SGD) and
/// an evaluation forward of a narrow model: logits, losses, every gradient, every updated
/// weight and the evaluation logits, as f32.
fn step(
    kind: ModelKind,
    device: &Device,
    kernels: Kernels,
    dtype: DType,
    path: LossPath,
) -> Vec<(String, Vec<f32>)> {
    let spec = ModelSpec {
        kind,
        width: 0.125,
        taps: None,
        stem: Default::default(),
        init: None,
    };
    let flat = |t: &Tensor| flat(&t.to_dtype(DType::F32).unwrap());
    let varmap = VarMap::new();
    let vb = nn::seeded_var_builder(&varmap, 5, dtype, device);
    let model = nn::build_with(&spec, 3, 10, vb, topo::config::TapPoint::Conv, kernels).unwrap();
    let loss = grid_loss(&model.tap_channels(), device, dtype, path);
    let batch = 8;
    let x = Tensor::from_vec(normal(batch * 3 * 32 * 32, 21), (batch, 3, 32, 32), device)
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    let labels = Tensor::from_vec(
        (0..batch as u32).map(|i| i * 7 % 10).collect::<Vec<_>>(),
        batch,
        device,
    )
    .unwrap();
    let out = model.forward_t(&x, true).unwrap();
    let ce = candle_nn::loss::cross_entropy(&out.logits, &labels).unwrap();
    let topo = loss.forward(&out.taps).unwrap().total;
    let total = (&ce + &topo).unwrap();
    let grads = total.backward().unwrap();
    let mut record = vec![
        ("logits".to_string(), flat(&out.logits)),
        ("cross-entropy".to_string(), flat(&ce)),
        ("topographic loss".to_string(), flat(&topo)),
    ];
    let vars = trainable_vars(&varmap);
    for (name, var) in &vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            record.push((format!("gradient of {name}"), flat(g)));
        }
    }
    let mut sgd = Sgd::new(
        vars.clone(),
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
        },
    );
    sgd.step(&grads).unwrap();
    for (name, var) in &vars {
        record.push((format!("{name} after the step"), flat(var.as_tensor())));
    }
    let eval = model.forward_t(&x, false).unwrap();
    record.push(("evaluation logits".to_string(), flat(&eval.logits)));
    record
}

/// The device's step and the CPU's, each against the same step in f64 (on the CPU,
/// candle's ops), within 1e-4. Comparing with f64 rather than device with CPU keeps the
/// test about the device: at initialisation a model can amplify rounding (a batch norm
/// over a nearly constant channel divides by sqrt(eps); a weight gradient can be a small
/// sum of large terms), and then two f32 implementations differ by far more than either
/// differs from f64 (DenseNet at batch 4 on constant-pattern inputs: 1.6e-2 between
/// candle's ops and the fast kernels). Batch 8 of normal inputs keeps every model well
/// conditioned: both sides stay within 4e-5 of f64.
fn model_step_matches(kind: ModelKind) {
    let dev = device();
    let reference = step(
        kind,
        &Device::Cpu,
        Kernels::Candle,
        DType::F64,
        LossPath::Auto,
    );
    let cpu = step(
        kind,
        &Device::Cpu,
        Kernels::Fast,
        DType::F32,
        LossPath::Auto,
    );
    let other = step(kind, &dev, kernels_on(&dev), DType::F32, loss_path_on(&dev));
    assert_eq!(cpu.len(), other.len());
    assert_eq!(cpu.len(), reference.len());
    assert!(cpu.len() > 20, "{} records", cpu.len());
    for ((name, f64s), ((_, cpu), (_, dev))) in reference.iter().zip(cpu.iter().zip(&other)) {
        let (cpu_err, dev_err) = (rel_diff(cpu, f64s), rel_diff(dev, f64s));
        assert!(
            cpu_err <= TOLERANCE,
            "{kind:?}: {name}: the CPU is {cpu_err:e} from f64: the test's step is ill-conditioned"
        );
        assert!(
            dev_err <= TOLERANCE,
            "{kind:?}: {name}: the device is {dev_err:e} from f64 (the CPU {cpu_err:e}; tolerance {TOLERANCE:e})"
        );
    }
}

#[test]
fn a_resnet18_training_step_on_the_device_matches_the_cpu() {
    model_step_matches(ModelKind::Resnet18);
}

#[test]
fn a_vgg16_bn_training_step_on_the_device_matches_the_cpu() {
    model_step_matches(ModelKind::Vgg16Bn);
}

#[test]
fn a_densenet121_training_step_on_the_device_matches_the_cpu() {
    model_step_matches(ModelKind::Densenet121);
}

/// Seeded standard normal values (Box-Muller over a ChaCha stream).
fn normal(n: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}
