//! `topo trace`: the files a step-level comparison reads, and the update they record.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::common::TinyExperiment;

fn load(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    super::common::max_abs(&(a - b).unwrap())
}

/// The recorded gradients, momenta and weights of two float64 steps obey PyTorch's SGD
/// (`buf = g + wd p` on the first step, `buf = m buf + g + wd p` after, `p -= lr buf`),
/// and every file and field the comparison reads is there.
#[test]
fn a_trace_records_each_step_and_its_update() {
    let tiny = TinyExperiment::new(
        "trace",
        "grid: { topography: [grid2d] }\ntraining: { optimizer: { kind: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.001 } }\n",
    );
    let out = tiny.dir.path().join("trace");
    let out_arg = out.display().to_string();
    tiny.expect(
        "trace",
        &["--out", &out_arg, "--steps", "2", "--precision", "f64"],
        0,
    );
    let runs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("trace.json")).unwrap()).unwrap();
    assert_eq!(record["dtype"], "f64");
    assert_eq!(record["kernels"], "candle");
    let steps = record["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    let taps = record["taps"].as_array().unwrap();
    assert_eq!(taps.len(), 5);
    assert_eq!(
        steps[0]["topo_layers"].as_array().unwrap().len(),
        taps.len()
    );
    // Every tapped layer has one position per channel.
    for tap in taps {
        let channels = tap["channels"].as_u64().unwrap() as usize;
        assert_eq!(tap["positions"].as_array().unwrap().len(), channels);
    }

    let initial = load(&run.join("initial.safetensors"));
    let first = load(&run.join("step-0001.safetensors"));
    let second = load(&run.join("step-0002.safetensors"));
    assert_eq!(first["input"].dtype(), candle_core::DType::F64);
    assert_eq!(first["input"].dims()[0], first["label"].dims()[0]);
    let lr = [
        steps[0]["lr"].as_f64().unwrap(),
        steps[1]["lr"].as_f64().unwrap(),
    ];
    let (momentum, wd) = (0.9, 0.001);
    let mut checked = 0;
    for (name, p0) in &initial {
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            // Moved by the forward pass, not the optimiser.
            assert!(
                max_diff(p0, &first[&format!("after/{name}")]) > 0.0,
                "{name}"
            );
            continue;
        }
        let g1 = &first[&format!("grad/{name}")];
        let m1 = &first[&format!("momentum/{name}")];
        let p1 = &first[&format!("after/{name}")];
        let expected_m1 = (g1 + (p0 * wd).unwrap()).unwrap();
        assert!(max_diff(m1, &expected_m1) < 1e-12, "{name}: first momentum");
        let expected_p1 = (p0 - (m1 * lr[0]).unwrap()).unwrap();
        assert!(max_diff(p1, &expected_p1) < 1e-12, "{name}: first update");

        let g2 = &second[&format!("grad/{name}")];
        let m2 = &second[&format!("momentum/{name}")];
        let p2 = &second[&format!("after/{name}")];
        let expected_m2 = ((m1 * momentum).unwrap() + (g2 + (p1 * wd).unwrap()).unwrap()).unwrap();
        assert!(
            max_diff(m2, &expected_m2) < 1e-12,
            "{name}: second momentum"
        );
        let expected_p2 = (p1 - (m2 * lr[1]).unwrap()).unwrap();
        assert!(max_diff(p2, &expected_p2) < 1e-12, "{name}: second update");
        checked += 1;
    }
    assert!(checked > 20, "only {checked} parameters checked");
}

#[test]
fn float64_on_the_fast_kernels_is_refused_with_the_fix() {
    let tiny = TinyExperiment::new("trace_f64", "");
    let out = tiny.dir.path().join("trace").display().to_string();
    let result = tiny.expect(
        "trace",
        &["--out", &out, "--precision", "f64", "--kernels", "fast"],
        2,
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("float32 only"), "{stderr}");
    assert!(stderr.contains("--kernels candle"), "{stderr}");
}

#[test]
fn an_unknown_run_is_named() {
    let tiny = TinyExperiment::new("trace_only", "");
    let out = tiny.dir.path().join("trace").display().to_string();
    let result = tiny.expect("trace", &["--out", &out, "--only", "nope"], 2);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("no run `nope`"), "{stderr}");
}

/// A ramped lambda weighs each step's loss by the step's own share: 0 at the first step,
/// rising by one step's worth of the ramp after it.
#[test]
fn each_step_is_weighed_by_its_scheduled_lambda() {
    let tiny = TinyExperiment::new(
        "ramp",
        "topographies:\n  ramp: { layout: grid, dimension: 2, lambda_schedule: { kind: linear_warmup, epochs: 1 } }\ngrid: { topography: [ramp], lambda: [2] }\n",
    );
    let out = tiny.dir.path().join("trace");
    let out_arg = out.display().to_string();
    tiny.expect(
        "trace",
        &["--out", &out_arg, "--steps", "3", "--precision", "f64"],
        0,
    );
    let run = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("trace.json")).unwrap()).unwrap();
    let steps = record["steps"].as_array().unwrap();
    // One step's worth of the ramp: 2 over the epoch's steps (the fixture's training
    // split in batches of 32).
    let per_step = steps[1]["lambda"].as_f64().unwrap();
    assert!(per_step > 0.0 && per_step < 2.0, "{per_step}");
    for (k, step) in steps.iter().enumerate() {
        let lambda = step["lambda"].as_f64().unwrap();
        assert!((lambda - per_step * k as f64).abs() < 1e-12, "{step}");
        let (ce, topo, total) = (
            step["ce"].as_f64().unwrap(),
            step["topo"].as_f64().unwrap(),
            step["total"].as_f64().unwrap(),
        );
        assert!((total - (ce + lambda * topo)).abs() < 1e-12, "{step}");
        assert!(topo > 0.0);
    }
}
