//! `topo export` read back by the repository's PyTorch package (python/topo_torch): the same
//! logits from the same weights and inputs, and the channel positions of every tapped layer.

use std::collections::HashMap;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use super::common::TinyExperiment;
use topo::plan::RunConfig;

#[test]
#[ignore = "needs torch and safetensors in python3 (`bash bench/setup.sh` installs them)"]
fn an_exported_run_gives_pytorch_topos_logits_and_positions() {
    exported_logits_agree("");
}

#[test]
#[ignore = "needs torch and safetensors in python3 (`bash bench/setup.sh` installs them)"]
fn an_exported_resnet50_with_the_imagenet_stem_gives_pytorch_topos_logits() {
    exported_logits_agree("models:\n  r: { kind: resnet50, width: 0.0625, stem: imagenet }\n");
}

#[test]
#[ignore = "needs torch and safetensors in python3 (`bash bench/setup.sh` installs them)"]
fn an_exported_densenet121_gives_pytorch_topos_logits() {
    exported_logits_agree("models:\n  r: { kind: densenet121, width: 0.0625 }\n");
}

/// Trains the tiny experiment (with `models` on top) for an epoch, exports its run and
/// checks its logits and positions in PyTorch.
fn exported_logits_agree(models: &str) {
    let tiny = TinyExperiment::new(
        "export",
        &format!("{models}grid: {{ topography: [grid2d] }}\ntraining: {{ epochs: 1 }}\n"),
    );
    tiny.expect("run", &["--no-report"], 0);
    let runs = tiny.results.join("export/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let to = tiny.dir.path().join("exported");
    // From the experiment's folder, as the run was: its data root is relative to it.
    let out = Command::new(super::common::BIN)
        .current_dir(tiny.dir.path())
        .args([
            "export",
            run.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // topo's own logits on seeded inputs, from the run's best weights.
    let config: RunConfig =
        topo::config::from_yaml(&std::fs::read_to_string(run.join("run.yaml")).unwrap()).unwrap();
    let varmap = VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = topo::nn::build(&config.model, 1, 10, vb).unwrap();
    topo::train::checkpoint::load_weights(
        &run.join("checkpoints/best.safetensors"),
        &varmap,
        &Device::Cpu,
    )
    .unwrap();
    let inputs = Tensor::randn(0f32, 1.0, (6, 1, 28, 28), &Device::Cpu).unwrap();
    let logits = model.forward_t(&inputs, false).unwrap().logits;
    let check = tiny.dir.path().join("check.safetensors");
    let tensors: HashMap<String, Tensor> =
        [("input".to_owned(), inputs), ("logits".to_owned(), logits)].into();
    candle_core::safetensors::save(&tensors, &check).unwrap();

    let script = r#"
import json, sys
import torch
from safetensors.torch import load_file
import topo_torch
model, positions, config = topo_torch.load(sys.argv[1])
check = load_file(sys.argv[2])
with torch.no_grad():
    logits = model(check["input"])
diff = (logits - check["logits"]).abs().max().item()
topography = json.load(open(sys.argv[3]))
for layer in topography["layers"]:
    got = positions[layer["layer"]].flatten().tolist()
    assert got == layer["positions"]["coords"], layer["layer"]
print(f"max |logit difference| {diff:.3g} over {tuple(logits.shape)}, largest |logit| {logits.abs().max().item():.3g}")
# Within 1e-4 of the largest logit (float32 sums in another order; a briefly trained
# ResNet-50 on noise gives logits in the thousands).
sys.exit(0 if diff <= 1e-4 * max(1.0, logits.abs().max().item()) else 1)
"#;
    let said =
        super::common::python_with_topo_torch(script, &[&to, &check, &run.join("topography.json")]);
    println!("{said}");
}
