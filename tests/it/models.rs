//! Models with taps, the pooling ops, SGD and the learning-rate schedule.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use topo::config::{ModelKind, ModelSpec, ScheduleKind, ScheduleSpec};
use topo::kernels;
use topo::nn::{self, ModelError, TopoModel};
use topo::train::optim::{self, Sgd, SgdConfig};

fn spec(kind: ModelKind, width: f64) -> ModelSpec {
    ModelSpec {
        kind,
        width,
        taps: None,
        stem: Default::default(),
        init: None,
    }
}

/// A model in a fresh seeded `VarMap`.
fn seeded(
    spec: &ModelSpec,
    in_channels: usize,
    classes: usize,
    seed: u64,
) -> (VarMap, Box<dyn TopoModel>) {
    let varmap = VarMap::new();
    let vb = nn::seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let model = nn::build(spec, in_channels, classes, vb).unwrap();
    (varmap, model)
}

/// `sum(p.numel() for p in model.parameters())`: trainable variables only.
fn parameter_count(spec: &ModelSpec, in_channels: usize, classes: usize) -> usize {
    // candle's own (unseeded, fast) init: only shapes matter here.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    nn::build(spec, in_channels, classes, vb).unwrap();
    optim::trainable_vars(&varmap)
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum()
}

fn conv_bn(cin: usize, cout: usize, k: usize, bias: bool) -> usize {
    cin * cout * k * k + if bias { cout } else { 0 } + 2 * cout
}

fn linear(cin: usize, cout: usize) -> usize {
    cin * cout + cout
}

// torchvision's published counts (its docs, 1000 classes, ImageNet stems): resnet18
// 11,689,512; vgg16_bn 138,365,992; densenet121 7,978,856. The CIFAR stems change the
// first conv from 7x7x3x64 = 9408 weights to 3x3x3x64 = 1728 (ResNet, DenseNet), and 10
// classes remove 990 rows of the classifier.
#[test]
fn resnet18_parameter_count_is_torchvisions() {
    let expected = 11_689_512 - (9408 - 1728) - (512 * 990 + 990);
    assert_eq!(expected, 11_173_962);
    assert_eq!(
        parameter_count(&spec(ModelKind::Resnet18, 1.0), 3, 10),
        11_173_962
    );
    // One input channel: the stem loses 64 * 2 * 9 weights.
    assert_eq!(
        parameter_count(&spec(ModelKind::Resnet18, 1.0), 1, 10),
        11_173_962 - 64 * 2 * 9
    );
}

#[test]
fn vgg16_bn_parameter_count_is_torchvisions() {
    let cfg = [
        64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512,
    ];
    let mut by_formula = 0;
    let mut cin = 3;
    for c in cfg {
        by_formula += conv_bn(cin, c, 3, true);
        cin = c;
    }
    by_formula += linear(512 * 7 * 7, 4096) + linear(4096, 4096) + linear(4096, 10);
    assert_eq!(by_formula, 138_365_992 - (4096 * 990 + 990));
    assert_eq!(
        parameter_count(&spec(ModelKind::Vgg16Bn, 1.0), 3, 10),
        by_formula
    );
}

#[test]
fn densenet121_parameter_count_is_torchvisions() {
    let (growth, bn_size) = (32, 4);
    let mut by_formula = 1728 + 2 * 64; // conv0 (3x3, 3 -> 64) and norm0
    let mut c = 64;
    for (b, n) in [6, 12, 24, 16].into_iter().enumerate() {
        for l in 0..n {
            let cin = c + l * growth;
            // norm1, conv1 (1x1 -> 128), norm2, conv2 (3x3 -> 32)
            by_formula += 2 * cin
                + cin * bn_size * growth
                + 2 * bn_size * growth
                + bn_size * growth * growth * 9;
        }
        c += n * growth;
        if b < 3 {
            by_formula += 2 * c + c * (c / 2); // norm, 1x1 conv
            c /= 2;
        }
    }
    by_formula += 2 * c + linear(c, 10); // norm5, classifier
    assert_eq!(c, 1024);
    assert_eq!(by_formula, 7_978_856 - (9408 - 1728) - (1024 * 990 + 990));
    assert_eq!(
        parameter_count(&spec(ModelKind::Densenet121, 1.0), 3, 10),
        by_formula
    );
}

#[test]
fn width_rounds_every_channel_count() {
    // 64 * 0.3 = 19.2 -> 19; 512 * 0.3 = 153.6 -> 154.
    let (_, model) = seeded(&spec(ModelKind::Resnet18, 0.3), 3, 10, 0);
    assert_eq!(model.tap_channels(), &[19, 19, 38, 77, 154]);
    // growth 32 * 0.3 = 9.6 -> 10.
    let (_, model) = seeded(&spec(ModelKind::Densenet121, 0.3), 3, 10, 0);
    assert_eq!(model.tap_channels(), &[19, 10, 10, 10, 10]);
}

fn shapes(out: &[Tensor]) -> Vec<Vec<usize>> {
    out.iter().map(|t| t.dims().to_vec()).collect()
}

fn input(b: usize, c: usize, h: usize, w: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (b, c, h, w), &Device::Cpu).unwrap()
}

#[test]
fn resnet18_taps_and_shapes() {
    let (_, model) = seeded(&spec(ModelKind::Resnet18, 0.125), 3, 10, 0);
    assert_eq!(
        model.tap_names(),
        &[
            "conv1",
            "layer1.1.conv2",
            "layer2.1.conv2",
            "layer3.1.conv2",
            "layer4.1.conv2"
        ]
    );
    let out = model.forward_t(&input(2, 3, 32, 32), true).unwrap();
    assert_eq!(out.logits.dims(), &[2, 10]);
    let expected = vec![
        vec![2, 8, 32, 32],
        vec![2, 8, 16, 16],
        vec![2, 16, 8, 8],
        vec![2, 32, 4, 4],
        vec![2, 64, 2, 2],
    ];
    assert_eq!(shapes(&out.taps), expected);

    // Spectrograms: 1 channel, 64 mel bands x 101 frames; the pool gives 32 x 51.
    let (_, model) = seeded(&spec(ModelKind::Resnet18, 0.125), 1, 35, 0);
    let out = model.forward_t(&input(2, 1, 64, 101), false).unwrap();
    assert_eq!(out.logits.dims(), &[2, 35]);
    let expected = vec![
        vec![2, 8, 64, 101],
        vec![2, 8, 32, 51],
        vec![2, 16, 16, 26],
        vec![2, 32, 8, 13],
        vec![2, 64, 4, 7],
    ];
    assert_eq!(shapes(&out.taps), expected);
}

#[test]
fn vgg16_bn_taps_every_conv() {
    let (_, model) = seeded(&spec(ModelKind::Vgg16Bn, 0.0625), 3, 100, 0);
    let names: Vec<String> = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
        .iter()
        .map(|i| format!("features.{i}"))
        .collect();
    assert_eq!(model.tap_names(), names.as_slice());
    assert_eq!(
        model.tap_channels(),
        &[4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32]
    );
    let out = model.forward_t(&input(2, 3, 32, 32), true).unwrap();
    assert_eq!(out.logits.dims(), &[2, 100]);
    let sides = [32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2];
    let expected: Vec<Vec<usize>> = sides
        .iter()
        .zip(model.tap_channels())
        .map(|(&s, c)| vec![2, c, s, s])
        .collect();
    assert_eq!(shapes(&out.taps), expected);

    let (_, model) = seeded(&spec(ModelKind::Vgg16Bn, 0.0625), 1, 2, 0);
    let out = model.forward_t(&input(2, 1, 64, 101), false).unwrap();
    assert_eq!(out.logits.dims(), &[2, 2]);
    assert_eq!(out.taps[12].dims(), &[2, 32, 4, 6]); // before the last pool (-> 2x3 -> 7x7)
}

#[test]
fn densenet121_taps_and_shapes() {
    let (_, model) = seeded(&spec(ModelKind::Densenet121, 0.125), 3, 10, 0);
    let names = [
        "features.conv0",
        "features.denseblock1.denselayer6.conv2",
        "features.denseblock2.denselayer12.conv2",
        "features.denseblock3.denselayer24.conv2",
        "features.denseblock4.denselayer16.conv2",
    ];
    assert_eq!(model.tap_names(), &names);
    let out = model.forward_t(&input(2, 3, 32, 32), true).unwrap();
    assert_eq!(out.logits.dims(), &[2, 10]);
    let expected = vec![
        vec![2, 8, 32, 32],
        vec![2, 4, 16, 16],
        vec![2, 4, 8, 8],
        vec![2, 4, 4, 4],
        vec![2, 4, 2, 2],
    ];
    assert_eq!(shapes(&out.taps), expected);

    let (_, model) = seeded(&spec(ModelKind::Densenet121, 0.125), 1, 35, 0);
    let out = model.forward_t(&input(1, 1, 64, 101), true).unwrap();
    assert_eq!(out.logits.dims(), &[1, 35]);
    let expected = vec![
        vec![1, 8, 64, 101],
        vec![1, 4, 32, 51],
        vec![1, 4, 16, 25],
        vec![1, 4, 8, 12],
        vec![1, 4, 4, 6],
    ];
    assert_eq!(shapes(&out.taps), expected);
}

#[test]
fn taps_can_be_chosen_and_are_checked() {
    let mut s = spec(ModelKind::Resnet18, 0.125);
    s.taps = Some(vec!["layer2.0.downsample.0".into(), "conv1".into()]);
    let (_, model) = seeded(&s, 3, 10, 0);
    assert_eq!(model.tap_names(), &["layer2.0.downsample.0", "conv1"]);
    assert_eq!(model.tap_channels(), &[16, 8]);
    let out = model.forward_t(&input(1, 3, 32, 32), false).unwrap();
    assert_eq!(
        shapes(&out.taps),
        vec![vec![1, 16, 8, 8], vec![1, 8, 32, 32]]
    );

    s.taps = Some(vec!["layer1.1.conv3".into()]);
    let err = nn::build(
        &s,
        3,
        10,
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
    )
    .err()
    .unwrap();
    let valid = nn::conv_names(ModelKind::Resnet18).join(", ");
    assert_eq!(
        err.to_string(),
        format!("resnet18: unknown tapped conv `layer1.1.conv3`; valid convs: {valid}")
    );
    assert!(
        valid.starts_with("conv1, layer1.0.conv1, layer1.0.conv2, layer1.1.conv1"),
        "{valid}"
    );
    assert!(matches!(err, ModelError::UnknownTap { .. }));

    s.taps = Some(vec!["conv1".into(), "conv1".into()]);
    let err = nn::build(
        &s,
        3,
        10,
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
    )
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "resnet18: conv `conv1` is tapped twice");
}

#[test]
fn conv_names_are_var_prefixes() {
    for kind in ModelKind::ALL {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        nn::build(&spec(kind, 0.0625), 3, 10, vb).unwrap();
        let data = varmap.data().lock().unwrap();
        let convs = nn::conv_names(kind);
        for name in &convs {
            let w = data
                .get(&format!("{name}.weight"))
                .unwrap_or_else(|| panic!("{kind:?}: no {name}.weight"));
            assert_eq!(w.rank(), 4, "{name}");
        }
        // and nothing else is a 4-D weight
        assert_eq!(
            data.values().filter(|v| v.rank() == 4).count(),
            convs.len(),
            "{kind:?}"
        );
    }
    assert_eq!(nn::conv_names(ModelKind::Resnet18).len(), 20);
    assert_eq!(nn::conv_names(ModelKind::Vgg16Bn).len(), 13);
    assert_eq!(nn::conv_names(ModelKind::Densenet121).len(), 1 + 2 * 58 + 3);
}

#[test]
fn torchvision_parameter_names() {
    let varmap = VarMap::new();
    nn::build(
        &spec(ModelKind::Resnet18, 0.0625),
        3,
        10,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let data = varmap.data().lock().unwrap();
    for name in [
        "conv1.weight",
        "bn1.running_mean",
        "bn1.running_var",
        "layer1.1.conv2.weight",
        "layer4.0.downsample.1.bias",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(data.contains_key(name), "{name}");
    }
    assert!(!data.contains_key("conv1.bias"));
    drop(data);
    let varmap = VarMap::new();
    nn::build(
        &spec(ModelKind::Vgg16Bn, 0.0625),
        3,
        10,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let data = varmap.data().lock().unwrap();
    for name in [
        "features.0.weight",
        "features.0.bias",
        "features.1.running_var",
        "features.41.weight",
        "classifier.0.weight",
        "classifier.3.bias",
        "classifier.6.weight",
    ] {
        assert!(data.contains_key(name), "{name}");
    }
    drop(data);
    let varmap = VarMap::new();
    nn::build(
        &spec(ModelKind::Densenet121, 0.0625),
        3,
        10,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let data = varmap.data().lock().unwrap();
    for name in [
        "features.conv0.weight",
        "features.norm0.weight",
        "features.denseblock1.denselayer6.conv2.weight",
        "features.denseblock4.denselayer16.norm2.running_mean",
        "features.transition3.conv.weight",
        "features.norm5.bias",
        "classifier.weight",
    ] {
        assert!(data.contains_key(name), "{name}");
    }
}

#[test]
fn seeded_init_is_reproducible_and_follows_torchvision() {
    let s = spec(ModelKind::Resnet18, 0.5);
    let (a, _) = seeded(&s, 3, 10, 7);
    let (b, _) = seeded(&s, 3, 10, 7);
    let (c, _) = seeded(&s, 3, 10, 8);
    let get = |m: &VarMap, n: &str| {
        m.data().lock().unwrap()[n]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let w = get(&a, "layer4.1.conv2.weight");
    assert_eq!(w, get(&b, "layer4.1.conv2.weight"));
    assert_ne!(w, get(&c, "layer4.1.conv2.weight"));
    // kaiming normal, fan out: std = sqrt(2 / (256 * 9)) = 0.02946
    let n = w.len() as f64;
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
    let std = (w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 1e-3, "{mean}");
    assert!(
        (std - (2.0f64 / (256.0 * 9.0)).sqrt()).abs() < 5e-4,
        "{std}"
    );
    // PyTorch's default for the replaced stem: U(-1/sqrt(27), 1/sqrt(27)).
    let stem = get(&a, "conv1.weight");
    let bound = 1.0 / 27f32.sqrt();
    assert!(stem.iter().all(|x| x.abs() <= bound));
    assert!(stem.iter().any(|x| x.abs() > 0.9 * bound));
    assert!(get(&a, "bn1.weight").iter().all(|&x| x == 1.0));
    assert!(get(&a, "bn1.running_var").iter().all(|&x| x == 1.0));
}

#[test]
fn batch_norm_trains_and_the_optimiser_leaves_running_statistics_alone() {
    let s = spec(ModelKind::Resnet18, 0.125);
    let (varmap, model) = seeded(&s, 3, 10, 0);
    let names: Vec<String> = optim::trainable_vars(&varmap)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with("running_mean") && !n.ends_with("running_var"))
    );
    assert!(names.contains(&"bn1.weight".to_string()));
    let stat = |n: &str| {
        varmap.data().lock().unwrap()[n]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap()
    };

    let xs = input(4, 3, 16, 16);
    let before = stat("bn1.running_mean");
    model.forward_t(&xs, false).unwrap();
    assert_eq!(
        stat("bn1.running_mean"),
        before,
        "eval must not update running statistics"
    );

    let out = model.forward_t(&xs, true).unwrap();
    // momentum 0.1 from 0: running_mean = 0.1 * batch mean of conv1's output (the tap).
    let batch_mean = out.taps[0]
        .mean_keepdim(0)
        .unwrap()
        .mean_keepdim(2)
        .unwrap()
        .mean_keepdim(3)
        .unwrap();
    let expected = (batch_mean.flatten_all().unwrap() * 0.1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let got = stat("bn1.running_mean");
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-6, "{g} vs {e}");
    }
    // running_var = 0.9 + 0.1 * unbiased variance
    let tap = out.taps[0]
        .transpose(0, 1)
        .unwrap()
        .flatten_from(1)
        .unwrap();
    let n = tap.dim(1).unwrap() as f64;
    let var = tap
        .broadcast_sub(&tap.mean_keepdim(1).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .sum(1)
        .unwrap();
    let expected_var = ((var / (n - 1.0)).unwrap() * 0.1)
        .unwrap()
        .affine(1.0, 0.9)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (g, e) in stat("bn1.running_var").iter().zip(&expected_var) {
        assert!((g - e).abs() < 1e-5, "{g} vs {e}");
    }

    // Training normalises with batch statistics: eval and train outputs differ.
    let eval = model.forward_t(&xs, false).unwrap().logits;
    let train = model.forward_t(&xs, true).unwrap().logits;
    assert!(
        (eval - train)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 1e-4
    );

    let mean = stat("bn1.running_mean");
    let loss = model
        .forward_t(&xs, true)
        .unwrap()
        .logits
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let mean_after_forward = stat("bn1.running_mean");
    assert_ne!(mean_after_forward, mean);
    let var_after_forward = stat("bn1.running_var");
    let grads = loss.backward().unwrap();
    let mut sgd = Sgd::new(
        optim::trainable_vars(&varmap),
        SgdConfig {
            lr: 0.5,
            momentum: 0.9,
            weight_decay: 0.5,
        },
    );
    sgd.step(&grads).unwrap();
    assert_eq!(stat("bn1.running_mean"), mean_after_forward);
    assert_eq!(stat("bn1.running_var"), var_after_forward);
}

#[test]
fn a_tiny_batch_is_overfitted() {
    let (varmap, model) = seeded(&spec(ModelKind::Resnet18, 0.125), 3, 4, 1);
    let xs = input(8, 3, 16, 16);
    let ys = Tensor::new(&[0u32, 1, 2, 3, 0, 1, 2, 3], &Device::Cpu).unwrap();
    let mut sgd = Sgd::new(
        optim::trainable_vars(&varmap),
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
        },
    );
    let mut losses = Vec::new();
    for _ in 0..30 {
        let logits = model.forward_t(&xs, true).unwrap().logits;
        let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        sgd.step(&loss.backward().unwrap()).unwrap();
    }
    let last = *losses.last().unwrap();
    assert!(losses[0] > 1.0 && last < 0.05, "{losses:?}");
    let pred = model
        .forward_t(&xs, true)
        .unwrap()
        .logits
        .argmax(D::Minus1)
        .unwrap();
    assert_eq!(pred.to_vec1::<u32>().unwrap(), ys.to_vec1::<u32>().unwrap());
}

#[test]
fn every_model_takes_a_training_step() {
    for kind in [ModelKind::Vgg16Bn, ModelKind::Densenet121] {
        let (varmap, model) = seeded(&spec(kind, 0.0625), 1, 3, 2);
        model.reseed(3);
        let xs = input(4, 1, 32, 32);
        let ys = Tensor::new(&[0u32, 1, 2, 0], &Device::Cpu).unwrap();
        let mut sgd = Sgd::new(
            optim::trainable_vars(&varmap),
            SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 0.01,
            },
        );
        let loss = candle_nn::loss::cross_entropy(&model.forward_t(&xs, true).unwrap().logits, &ys)
            .unwrap();
        let grads = loss.backward().unwrap();
        // every trainable variable gets a gradient
        for (name, var) in optim::trainable_vars(&varmap) {
            assert!(
                grads.get(var.as_tensor()).is_some(),
                "{kind:?}: no gradient for {name}"
            );
        }
        sgd.step(&grads).unwrap();
        assert_eq!(sgd.momenta().len(), optim::trainable_vars(&varmap).len());
    }
}

#[test]
fn vgg_dropout_is_seeded_and_only_in_training() {
    let (_, model) = seeded(&spec(ModelKind::Vgg16Bn, 0.0625), 3, 10, 0);
    let xs = input(2, 3, 32, 32);
    let eval1 = model
        .forward_t(&xs, false)
        .unwrap()
        .logits
        .to_vec2::<f32>()
        .unwrap();
    let eval2 = model
        .forward_t(&xs, false)
        .unwrap()
        .logits
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(eval1, eval2);
    model.reseed(5);
    let a = model
        .forward_t(&xs, true)
        .unwrap()
        .logits
        .to_vec2::<f32>()
        .unwrap();
    let b = model
        .forward_t(&xs, true)
        .unwrap()
        .logits
        .to_vec2::<f32>()
        .unwrap();
    assert_ne!(a, b, "two training passes draw different masks");
    // Rebuilding the same model and reseeding replays the masks (batch-norm running
    // statistics do not affect training-mode outputs).
    let (_, model2) = seeded(&spec(ModelKind::Vgg16Bn, 0.0625), 3, 10, 0);
    model2.reseed(5);
    assert_eq!(
        model2
            .forward_t(&xs, true)
            .unwrap()
            .logits
            .to_vec2::<f32>()
            .unwrap(),
        a
    );
}

// ---------------------------------------------------------------- ops

fn t64(values: &[f64], shape: (usize, usize, usize, usize)) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap()
}

/// Gradient of `sum(w * f(x))` with respect to `x` by central differences.
fn finite_difference(
    f: &dyn Fn(&Tensor) -> Tensor,
    x: &[f64],
    shape: (usize, usize, usize, usize),
    w: &Tensor,
) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let mut p = x.to_vec();
            p[i] += h;
            let mut m = x.to_vec();
            m[i] -= h;
            let fp = (f(&t64(&p, shape)) * w)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let fm = (f(&t64(&m, shape)) * w)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

fn analytic(
    f: &dyn Fn(&Tensor) -> Tensor,
    x: &[f64],
    shape: (usize, usize, usize, usize),
    w: &Tensor,
) -> Vec<f64> {
    let var = Var::from_tensor(&t64(x, shape)).unwrap();
    let loss = (f(var.as_tensor()) * w).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    grads
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn distinct_values(n: usize, seed: u64) -> Vec<f64> {
    // A permutation of 0..n scaled: distinct, so finite differences never straddle a tie.
    let mut v: Vec<f64> = (0..n)
        .map(|i| ((i as u64 * 7919 + seed * 104729) % n as u64) as f64 * 0.1 - 1.0)
        .collect();
    v.dedup();
    assert_eq!(v.len(), n);
    v
}

#[test]
fn max_pool_backward_matches_finite_differences() {
    for (k, s, p, h, w) in [
        (3, 2, 1, 7, 6),
        (3, 1, 1, 4, 5),
        (2, 2, 0, 5, 5),
        (3, 2, 0, 6, 7),
    ] {
        let shape = (2, 2, h, w);
        let x = distinct_values(2 * 2 * h * w, k as u64);
        let f = move |x: &Tensor| kernels::max_pool2d(x, k, s, p).unwrap();
        let out = f(&t64(&x, shape));
        let weights = Tensor::randn(0f64, 1.0, out.shape(), &Device::Cpu).unwrap();
        let a = analytic(&f, &x, shape, &weights);
        let n = finite_difference(&f, &x, shape, &weights);
        for (i, (a, n)) in a.iter().zip(&n).enumerate() {
            assert!((a - n).abs() < 1e-6, "k{k} s{s} p{p}: grad[{i}] {a} vs {n}");
        }
    }
}

#[test]
fn max_pool_agrees_with_candle_where_both_apply() {
    let x = Tensor::from_vec(
        distinct_values(2 * 3 * 8 * 6, 3)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>(),
        (2, 3, 8, 6),
        &Device::Cpu,
    )
    .unwrap();
    for k in [2, 3] {
        let ours = kernels::max_pool2d(&x, k, k, 0).unwrap();
        let theirs = x.max_pool2d(k).unwrap();
        assert_eq!(ours.dims(), theirs.dims());
        assert_eq!(
            ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        if k != 2 {
            continue;
        }
        // candle 0.11's own backward scales the gradient by 1/k^2 (it multiplies by an
        // average of the argmax mask); ours matches finite differences (test above), so
        // the two differ by exactly that factor.
        let var = Var::from_tensor(&x).unwrap();
        let w = Tensor::randn(0f32, 1.0, ours.shape(), &Device::Cpu).unwrap();
        let g_ours = (kernels::max_pool2d(var.as_tensor(), k, k, 0).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (var.as_tensor().max_pool2d(k).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let flat = |g: &candle_core::backprop::GradStore| {
            g.get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let scaled: Vec<f32> = flat(&g_theirs).iter().map(|g| g * (k * k) as f32).collect();
        for (a, b) in flat(&g_ours).iter().zip(&scaled) {
            assert!((a - b).abs() < 1e-5, "k={k}: {a} vs {b}");
        }
    }
}

#[test]
fn max_pool_pads_with_minus_infinity_and_sends_ties_to_the_first_maximum() {
    // All negative: zero padding would make every output 0.
    let x = t64(&[-5.0, -4.0, -3.0, -2.0], (1, 1, 2, 2));
    let y = kernels::max_pool2d(&x, 3, 2, 1).unwrap();
    assert_eq!(
        y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        vec![-2.0]
    );
    // A constant 3x3 plane, 3x3 windows, stride 1, padding 1: each window's first
    // cell in row-major order (clipped to the input) wins.
    let var = Var::from_tensor(&t64(&[1.0; 9], (1, 1, 3, 3))).unwrap();
    let y = kernels::max_pool2d(var.as_tensor(), 3, 1, 1).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let g = g
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    // windows (0,0),(0,1) -> cell 0; (0,2) -> cell 1; (1,0),(1,1) -> cell 0; (1,2) -> 1;
    // (2,0),(2,1) -> cell 3; (2,2) -> cell 4.
    assert_eq!(g, vec![4.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(
        kernels::max_pool2d(&x, 2, 2, 2).is_err(),
        "padding above half the kernel"
    );
}

/// PyTorch's rule, one window at a time: the first maximum in row-major order, a NaN
/// winning over anything before it; `(value, flat index)` per window.
fn max_pool_by_the_rule(
    plane: &[f32],
    (h, w): (usize, usize),
    (k, s, p): (usize, usize, usize),
) -> Vec<(f32, usize)> {
    let out = |n: usize| (n + 2 * p - k) / s + 1;
    let mut windows = Vec::new();
    for oy in 0..out(h) {
        for ox in 0..out(w) {
            let mut win: Option<(f32, usize)> = None;
            for y in (oy * s).saturating_sub(p)..(oy * s + k - p).min(h) {
                for x in (ox * s).saturating_sub(p)..(ox * s + k - p).min(w) {
                    let v = plane[y * w + x];
                    if win.is_none_or(|(top, _)| v > top || v.is_nan()) {
                        win = Some((v, y * w + x));
                    }
                }
            }
            windows.push(win.unwrap());
        }
    }
    windows
}

#[test]
fn max_pool_matches_the_rule_on_odd_shapes_ties_and_nans() {
    for (i, shape) in [
        (28, 28, 3, 2, 1),
        (7, 5, 3, 2, 1),
        (6, 9, 2, 2, 0),
        (5, 5, 3, 1, 1),
        (9, 7, 4, 3, 2),
        (1, 4, 3, 2, 1),
        (8, 8, 5, 1, 2),
        (7, 8, 2, 3, 1),
        (6, 5, 2, 1, 1),
        (9, 9, 3, 3, 1),
        (3, 1, 5, 5, 2),
    ]
    .into_iter()
    .enumerate()
    .flat_map(|(i, shape)| [(2 * i, shape), (2 * i + 1, shape)])
    {
        let (h, w, k, s, p) = shape;
        let plane: Vec<f32> = (0..h * w)
            .map(|j| match (i % 2, (j * 7 + i * 3) % 11) {
                // Few distinct values (ties everywhere), some -inf and NaN.
                (0, 0) => f32::NAN,
                (0, 1) => f32::NEG_INFINITY,
                (0, r) => (r % 4) as f32,
                // -inf but the last cell: windows with padding find their first cell.
                _ if j + 1 == h * w => 1.0,
                _ => f32::NEG_INFINITY,
            })
            .collect();
        let x =
            Var::from_tensor(&Tensor::from_vec(plane.clone(), (1, 1, h, w), &Device::Cpu).unwrap())
                .unwrap();
        let y = kernels::max_pool2d(x.as_tensor(), k, s, p).unwrap();
        let expected = max_pool_by_the_rule(&plane, (h, w), (k, s, p));
        let values = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: Vec<f32> = expected.iter().map(|&(v, _)| v).collect();
        assert_eq!(
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "case {i}: values {values:?} vs {want:?}"
        );
        // The gradient of the sum counts, per cell, the windows it won.
        let g = y.sum_all().unwrap().backward().unwrap();
        let counts = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut want = vec![0f32; h * w];
        for &(_, at) in &expected {
            want[at] += 1.0;
        }
        assert_eq!(counts, want, "case {i}: winners differ");
    }
}

#[test]
fn adaptive_avg_pool_matches_pytorch_windows() {
    // torch: start = floor(i*n/m), end = ceil((i+1)*n/m)
    assert_eq!(
        kernels::adaptive_windows(5, 3),
        vec![(0, 2), (1, 4), (3, 5)]
    );
    assert_eq!(kernels::adaptive_windows(1, 7), vec![(0, 1); 7]);
    assert_eq!(
        kernels::adaptive_windows(14, 7),
        (0..7).map(|i| (2 * i, 2 * i + 2)).collect::<Vec<_>>()
    );
    assert_eq!(
        kernels::adaptive_windows(3, 7),
        vec![(0, 1), (0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 3)]
    );

    let x = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (1, 1, 2, 3));
    let y = kernels::adaptive_avg_pool2d(&x, 1, 2).unwrap();
    // columns (0,2) and (1,3): means of {1,2,4,5} and {2,3,5,6}
    assert_eq!(
        y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        vec![3.0, 4.0]
    );
    let one = t64(&[2.5], (1, 1, 1, 1));
    assert_eq!(
        kernels::adaptive_avg_pool2d(&one, 7, 7)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap(),
        vec![2.5; 49]
    );

    let shape = (1, 2, 5, 3);
    let xv = distinct_values(30, 1);
    let f = |x: &Tensor| kernels::adaptive_avg_pool2d(x, 3, 7).unwrap();
    let w = Tensor::randn(0f64, 1.0, (1, 2, 3, 7), &Device::Cpu).unwrap();
    for (a, n) in analytic(&f, &xv, shape, &w)
        .iter()
        .zip(finite_difference(&f, &xv, shape, &w))
    {
        assert!((a - n).abs() < 1e-6, "{a} vs {n}");
    }
}

#[test]
fn avg_pool_backward_is_right_on_odd_sides() {
    let var = Var::from_tensor(&t64(&[1.0; 15], (1, 1, 3, 5))).unwrap();
    let y = kernels::avg_pool2d(var.as_tensor(), 2).unwrap();
    assert_eq!(y.dims(), &[1, 1, 1, 2]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let g = g
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let q = 0.25;
    assert_eq!(
        g,
        vec![q, q, q, q, 0.0, q, q, q, q, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
}

// ---------------------------------------------------------------- SGD

#[test]
fn sgd_follows_pytorch_rules() {
    let dev = Device::Cpu;
    let a = Var::new(&[1.0f64, -2.0], &dev).unwrap();
    let b = Var::new(&[0.5f64], &dev).unwrap();
    let (lr, mu, wd) = (0.1, 0.9, 0.01);
    let mut sgd = Sgd::new(
        vec![("a".into(), a.clone()), ("b".into(), b.clone())],
        SgdConfig {
            lr,
            momentum: mu,
            weight_decay: wd,
        },
    );

    // step 1: loss = 3 a0 + 4 a1 + 2 b -> grads (3, 4), 2
    let loss = ((a.as_tensor() * &Tensor::new(&[3.0f64, 4.0], &dev).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        + (b.as_tensor() * 2.0).unwrap().sum_all().unwrap())
    .unwrap();
    sgd.step(&loss.backward().unwrap()).unwrap();
    // a0: g = 3 + 0.01*1 = 3.01, buf = 3.01, a0 = 1 - 0.301 = 0.699
    // a1: g = 4 - 0.02 = 3.98, a1 = -2 - 0.398 = -2.398
    // b:  g = 2 + 0.005 = 2.005, b = 0.5 - 0.2005 = 0.2995
    let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(
        close(&a.to_vec1::<f64>().unwrap(), &[0.699, -2.398]),
        "{:?}",
        a.to_vec1::<f64>()
    );
    assert!(close(&b.to_vec1::<f64>().unwrap(), &[0.2995]));

    // step 2, only `a` has a gradient (loss = a0^2): g = 2*0.699 + 0.01*0.699 = 1.40499
    //   buf a0 = 0.9*3.01 + 1.40499 = 4.11399; a0 = 0.699 - 0.411399 = 0.287601
    //   a1: g = 0 + 0.01*(-2.398) = -0.02398; buf = 0.9*3.98 - 0.02398 = 3.55802;
    //       a1 = -2.398 - 0.355802 = -2.753802
    // `b` is skipped: same value, same buffer.
    sgd.set_learning_rate(0.1);
    let loss = a
        .as_tensor()
        .narrow(0, 0, 1)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    sgd.step(&grads).unwrap();
    assert!(
        close(&a.to_vec1::<f64>().unwrap(), &[0.287601, -2.753802]),
        "{:?}",
        a.to_vec1::<f64>()
    );
    assert!(close(&b.to_vec1::<f64>().unwrap(), &[0.2995]));
    let momenta = sgd.momenta();
    assert_eq!(
        momenta.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert!(close(
        &momenta[0].1.to_vec1::<f64>().unwrap(),
        &[4.11399, 3.55802]
    ));
    assert!(close(&momenta[1].1.to_vec1::<f64>().unwrap(), &[2.005]));

    // A fresh optimiser with the saved momenta continues identically.
    let mut resumed = Sgd::new(
        vec![("a".into(), a.clone()), ("b".into(), b.clone())],
        SgdConfig {
            lr: 0.1,
            momentum: mu,
            weight_decay: wd,
        },
    );
    resumed.load_momenta(momenta).unwrap();
    let loss = (b.as_tensor() * 1.0).unwrap().sum_all().unwrap();
    resumed.step(&loss.backward().unwrap()).unwrap();
    // b: g = 1 + 0.002995 = 1.002995; buf = 0.9*2.005 + 1.002995 = 2.807495; b = 0.2995 - 0.2807495
    assert!(
        close(&b.to_vec1::<f64>().unwrap(), &[0.0187505]),
        "{:?}",
        b.to_vec1::<f64>()
    );

    let err = resumed
        .load_momenta(vec![("c".into(), Tensor::new(&[0.0f64], &dev).unwrap())])
        .unwrap_err();
    assert_eq!(err.to_string(), "momentum buffer for unknown variable `c`");
    let err = resumed
        .load_momenta(vec![("a".into(), Tensor::new(&[0.0f64], &dev).unwrap())])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "momentum buffer for `a` has shape [1], the variable has [2]"
    );
}

// ---------------------------------------------------------------- schedule

#[test]
fn schedule_replays_the_reference_scheduler() {
    let warmup_cosine = ScheduleSpec {
        kind: ScheduleKind::WarmupCosine,
        warmup: 0.3,
    };
    let lrs = |epochs: u32| {
        (0..epochs)
            .map(|e| optim::learning_rate(&warmup_cosine, 0.01, e, epochs))
            .collect::<Vec<_>>()
    };
    // SpeechCommands, 12 epochs, warm-up 3.6 epochs: values from an independent Python
    // replay of lightning-bolts' LinearWarmupCosineAnnealingLR (chainable form, start and
    // eta_min 0) stepped once per epoch. Epoch 0 trains at 0; epochs 3 and 4 overshoot.
    let expected12 = [
        0.0,
        0.003846153846153847,
        0.007692307692307694,
        0.01153846153846154,
        0.011619688928064835,
        0.010902201654323793,
        0.009485194128496834,
        0.007564571187390694,
        0.005405863759378596,
        0.0033075185490053123,
        0.001559637033157833,
        0.00040386820584540034,
    ];
    for (e, (got, want)) in lrs(12).iter().zip(expected12).enumerate() {
        assert!((got - want).abs() < 1e-15, "epoch {e}: {got} vs {want}");
    }
    // 10 epochs: warm-up of exactly 3 epochs reaches the base rate, then pure cosine.
    let expected10 = [
        0.0,
        0.005,
        0.01,
        0.01,
        0.009504844339512096,
        0.008117449009293669,
        0.006112604669781573,
    ];
    for (got, want) in lrs(10).iter().zip(expected10) {
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    }
    // cosine over 7 epochs from 0.01: lr_e = 0.005 (1 + cos(pi (e - 3) / 7))
    for e in 3..10 {
        let closed = 0.005 * (1.0 + (std::f64::consts::PI * (e as f64 - 3.0) / 7.0).cos());
        assert!((lrs(10)[e] - closed).abs() < 1e-15);
    }
    // CIFAR's 100 epochs: 0.3 * 100 is 30.000000000000004 in floating point, so epoch 30
    // is still a warm-up step; the last epoch trains at 5.03e-6.
    let l100 = lrs(100);
    assert!((l100[29] - 0.009999999999999995).abs() < 1e-18);
    assert!((l100[30] - 0.01).abs() < 1e-18);
    assert!((l100[31] - 0.009994965332706574).abs() < 1e-15);
    assert!((l100[99] - 5.034667293427056e-06).abs() < 1e-15);
    // Below 4 epochs the warm-up never starts: the reference trains at 0 throughout.
    assert_eq!(lrs(3), vec![0.0; 3]);

    let constant = ScheduleSpec {
        kind: ScheduleKind::Constant,
        warmup: 0.3,
    };
    assert_eq!(optim::learning_rate(&constant, 0.02, 5, 12), 0.02);
}

/// The same seeded model with its taps read at `tap`.
fn seeded_at(
    spec: &ModelSpec,
    in_channels: usize,
    classes: usize,
    tap: topo::config::TapPoint,
) -> (VarMap, Box<dyn TopoModel>) {
    let varmap = VarMap::new();
    let vb = nn::seeded_var_builder(&varmap, 7, DType::F32, &Device::Cpu);
    let model = nn::build_with(
        spec,
        in_channels,
        classes,
        vb,
        tap,
        topo::kernels::Kernels::Fast,
    )
    .unwrap();
    (varmap, model)
}

use super::common::max_abs;

/// `tap: block` reads what each unit emits: ResNet-18's last tap is the output of its
/// last block (pooled and passed through `fc`, it gives the logits), VGG's taps are the
/// conv outputs after batch norm and ReLU, DenseNet's layer taps are the layer outputs.
#[test]
fn block_taps_read_each_units_output() {
    use topo::config::TapPoint;
    let x = input(2, 3, 32, 32);

    let (varmap, model) = seeded_at(&spec(ModelKind::Resnet18, 0.125), 3, 10, TapPoint::Block);
    let out = model.forward_t(&x, false).unwrap();
    for tap in &out.taps {
        let min = tap.flatten_all().unwrap().min(0).unwrap();
        assert!(
            min.to_scalar::<f32>().unwrap() >= 0.0,
            "a block output is rectified"
        );
    }
    let vars = varmap.data().lock().unwrap();
    let pooled = out.taps[4]
        .mean(D::Minus1)
        .unwrap()
        .mean(D::Minus1)
        .unwrap();
    let logits = pooled
        .matmul(&vars["fc.weight"].as_tensor().t().unwrap())
        .unwrap()
        .broadcast_add(vars["fc.bias"].as_tensor())
        .unwrap();
    assert!(max_abs(&(logits - &out.logits).unwrap()) < 1e-5);
    drop(vars);

    // VGG in evaluation: batch norm at its initial statistics (mean 0, variance 1, scale 1,
    // shift 0) is x / sqrt(1 + eps), then the ReLU.
    let vgg = spec(ModelKind::Vgg16Bn, 0.0625);
    let (_, at_conv) = seeded_at(&vgg, 3, 10, TapPoint::Conv);
    let (_, at_block) = seeded_at(&vgg, 3, 10, TapPoint::Block);
    let conv = at_conv.forward_t(&x, false).unwrap().taps;
    let block = at_block.forward_t(&x, false).unwrap().taps;
    assert_eq!(conv.len(), 13);
    for (c, b) in conv.iter().zip(&block) {
        let expected = (c / (1.0f64 + 1e-5).sqrt()).unwrap().relu().unwrap();
        assert!(max_abs(&(expected - b).unwrap()) < 1e-5);
    }

    // DenseNet: a dense layer's second conv is the layer's output either way.
    let dense = ModelSpec {
        taps: Some(vec!["features.denseblock1.denselayer6.conv2".into()]),
        ..spec(ModelKind::Densenet121, 0.125)
    };
    let (_, at_conv) = seeded_at(&dense, 3, 10, TapPoint::Conv);
    let (_, at_block) = seeded_at(&dense, 3, 10, TapPoint::Block);
    let c = &at_conv.forward_t(&x, false).unwrap().taps[0];
    let b = &at_block.forward_t(&x, false).unwrap().taps[0];
    assert_eq!(max_abs(&(c - b).unwrap()), 0.0);
}

#[test]
fn resnet18_with_the_imagenet_stem_has_torchvisions_parameter_count_and_halves_its_input() {
    let imagenet = ModelSpec {
        stem: topo::config::Stem::Imagenet,
        ..spec(ModelKind::Resnet18, 1.0)
    };
    // torchvision's published count for resnet18 (1000 classes): the ImageNet stem exactly.
    assert_eq!(parameter_count(&imagenet, 3, 1000), 11_689_512);
    let narrow = ModelSpec {
        width: 0.0625,
        ..imagenet
    };
    let (_, model) = seeded(&narrow, 3, 7, 0);
    let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).unwrap();
    let out = model.forward_t(&x, false).unwrap();
    assert_eq!(out.logits.dims(), &[2, 7]);
    // conv1 strides by 2 (64 -> 32) where the CIFAR stem keeps 64.
    assert_eq!(out.taps[0].dims(), &[2, 4, 32, 32]);
    let (_, cifar) = seeded(&spec(ModelKind::Resnet18, 0.0625), 3, 7, 0);
    assert_eq!(
        cifar.forward_t(&x, false).unwrap().taps[0].dims(),
        &[2, 4, 64, 64]
    );
    // Other models refuse it rather than build something else.
    let vgg = ModelSpec {
        stem: topo::config::Stem::Imagenet,
        ..spec(ModelKind::Vgg16Bn, 0.0625)
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = nn::build(&vgg, 3, 10, vb).err().expect("refused");
    assert!(matches!(err, ModelError::Stem { .. }), "{err}");
}

#[test]
fn resnet50_has_torchvisions_parameter_count_and_its_taps_emit_block_outputs() {
    let imagenet = ModelSpec {
        stem: topo::config::Stem::Imagenet,
        ..spec(ModelKind::Resnet50, 1.0)
    };
    // torchvision's published count for resnet50 (1000 classes, ImageNet stem).
    assert_eq!(parameter_count(&imagenet, 3, 1000), 25_557_032);
    // The CIFAR stem: a 3x3 conv1 instead of the 7x7.
    let cifar = spec(ModelKind::Resnet50, 1.0);
    assert_eq!(parameter_count(&cifar, 3, 1000), 25_557_032 - (9408 - 1728));
    let (_, model) = seeded(&spec(ModelKind::Resnet50, 0.0625), 1, 10, 0);
    let x = Tensor::randn(0f32, 1.0, (2, 1, 28, 28), &Device::Cpu).unwrap();
    let out = model.forward_t(&x, false).unwrap();
    assert_eq!(out.logits.dims(), &[2, 10]);
    assert_eq!(
        model.tap_names(),
        [
            "conv1",
            "layer1.2.conv3",
            "layer2.3.conv3",
            "layer3.5.conv3",
            "layer4.2.conv3"
        ]
    );
    // Bottlenecks are four times wider out: 16, 32, 64, 128 channels at width 1/16.
    let channels: Vec<usize> = out.taps.iter().map(|t| t.dims()[1]).collect();
    assert_eq!(channels, [4, 16, 32, 64, 128]);
}

#[test]
fn densenet121_with_the_imagenet_stem_has_torchvisions_parameter_count() {
    let imagenet = ModelSpec {
        stem: topo::config::Stem::Imagenet,
        ..spec(ModelKind::Densenet121, 1.0)
    };
    // torchvision's published count for densenet121 (1000 classes).
    assert_eq!(parameter_count(&imagenet, 3, 1000), 7_978_856);
    let (_, model) = seeded(
        &ModelSpec {
            width: 0.125,
            ..imagenet
        },
        3,
        10,
        0,
    );
    let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).unwrap();
    let out = model.forward_t(&x, false).unwrap();
    // conv0 strides by 2: 64 -> 32.
    assert_eq!(out.taps[0].dims(), &[2, 8, 32, 32]);
    assert_eq!(out.logits.dims(), &[2, 10]);
}
