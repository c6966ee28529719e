//! `model.init`: training starts from a torchvision-named safetensors file, checked tensor
//! by tensor; one from PyTorch gives PyTorch's logits before any step.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use super::common::TinyExperiment;
use topo::config::{InitSpec, ModelKind, ModelSpec};
use topo::train::init_weights::load_init;

/// The tiny experiment's model (ResNet-18 at width 1/16, 1 channel, 10 classes) with its
/// weights drawn from `seed`, as tensors by name.
fn tiny_weights(seed: u64) -> HashMap<String, Tensor> {
    let varmap = VarMap::new();
    let vb = topo::nn::seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let spec = ModelSpec {
        width: 0.0625,
        ..ModelSpec::of_kind(ModelKind::Resnet18)
    };
    topo::nn::build(&spec, 1, 10, vb).unwrap();
    let data = varmap.data().lock().unwrap();
    data.iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect()
}

fn load(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn equal(a: &Tensor, b: &Tensor) -> bool {
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    flat(a) == flat(b)
}

#[test]
fn training_starts_from_the_file_except_what_it_excludes() {
    let tiny = TinyExperiment::new(
        "init",
        "models:\n  r: { kind: resnet18, width: 0.0625, init: { weights: init.safetensors, exclude: [fc] } }\ngrid: { topography: [grid2d] }\n",
    );
    let mut weights = tiny_weights(7);
    // torchvision's counters are in such files; they are skipped.
    weights.insert(
        "bn1.num_batches_tracked".into(),
        Tensor::new(0i64, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&weights, tiny.dir.path().join("init.safetensors")).unwrap();
    let out = tiny.dir.path().join("trace");
    tiny.expect(
        "trace",
        &["--out", out.to_str().unwrap(), "--steps", "1"],
        0,
    );
    let run = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let initial = load(&run.join("initial.safetensors"));
    for (name, t) in &initial {
        let from_file = equal(t, &weights[name]);
        assert_eq!(from_file, !name.starts_with("fc."), "{name}");
    }
}

#[test]
fn a_file_that_does_not_fit_is_refused_before_anything_runs_naming_every_tensor_at_fault() {
    let tiny = TinyExperiment::new(
        "misfit",
        "models:\n  r: { kind: resnet18, width: 0.0625, init: { weights: init.safetensors } }\ngrid: { topography: [base] }\n",
    );
    let mut weights = tiny_weights(7);
    weights.remove("layer1.0.conv1.weight");
    weights.insert(
        "head.weight".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
    );
    weights.insert(
        "fc.bias".into(),
        Tensor::zeros(7, DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&weights, tiny.dir.path().join("init.safetensors")).unwrap();
    let out = tiny.expect("run", &["--no-report"], 2);
    let said = String::from_utf8_lossy(&out.stderr);
    for part in [
        "init.safetensors",
        "missing `layer1.0.conv1.weight`",
        "unexpected `head.weight`",
        "mis-shaped `fc.bias` ([7] in the file, [10] in the model)",
        "exclude: [fc]",
        "the 1 run(s) starting from it would fail before their first step",
    ] {
        assert!(said.contains(part), "{part} in {said}");
    }
}

#[test]
#[ignore = "needs torch and safetensors in python3 (`bash bench/setup.sh` installs them)"]
fn weights_saved_from_pytorch_give_pytorchs_logits_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let (file, check) = (
        dir.path().join("init.safetensors"),
        dir.path().join("check.safetensors"),
    );
    let script = r#"
import sys
import torch
from safetensors.torch import save_file
from topo_torch.models import ResNet18
torch.manual_seed(3)
model = ResNet18(10, 1, 0.0625)
# Batch-norm statistics away from 0 and 1, so that loading them matters.
for m in model.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
model.eval()
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1])
x = torch.randn(5, 1, 28, 28)
with torch.no_grad():
    save_file({"input": x, "logits": model(x)}, sys.argv[2])
"#;
    super::common::python_with_topo_torch(script, &[&file, &check]);
    let varmap = VarMap::new();
    let vb = topo::nn::seeded_var_builder(&varmap, 0, DType::F32, &Device::Cpu);
    let spec = ModelSpec {
        width: 0.0625,
        ..ModelSpec::of_kind(ModelKind::Resnet18)
    };
    let model = topo::nn::build(&spec, 1, 10, vb).unwrap();
    let init = InitSpec {
        weights: file,
        exclude: Vec::new(),
    };
    let loaded = load_init(&init, &varmap, &Device::Cpu).unwrap();
    assert!(loaded > 50, "{loaded} tensors");
    let check = load(&check);
    let logits = model.forward_t(&check["input"], false).unwrap().logits;
    let diff = (logits - &check["logits"])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    println!("max |logit difference| {diff:.3e}");
    assert!(diff <= 1e-4, "{diff}");
}
