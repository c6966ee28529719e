//! The analyses end to end against an independent numpy implementation (bench/analyses.py):
//! a speech fixture (tonotopy) and an image fixture read before batch norm (`at: conv`),
//! the two paths the quickstart's check in CI does not take.

use std::path::Path;
use std::process::Command;

use super::common::{BIN, tiny_yaml};
use super::fixtures;

/// Trains a one-run experiment on `dataset` for one epoch, re-analyses it keeping its raw
/// responses with `sets`, and checks every value with bench/analyses.py.
fn numpy_agrees(dir: &Path, dataset: &str, sets: &[&str]) {
    let yaml = format!(
        "extends: {tiny}
name: numpy
datasets:
  d: {dataset}
grid:
  dataset: [d]
  topography: [grid2d]
  lambda: [0.1]
training:
  epochs: 1
  batch_size: 16
",
        tiny = tiny_yaml()
    );
    let file = dir.join("numpy.yaml");
    std::fs::write(&file, yaml).unwrap();
    let results = dir.join("results");
    let run = Command::new(BIN)
        .args(["run", file.to_str().unwrap(), "--no-report", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let folder = results.join("numpy");
    let mut analyse = Command::new(BIN);
    analyse.args([
        "analyse",
        folder.to_str().unwrap(),
        "--force",
        "--responses",
        "--no-report",
    ]);
    for set in sets {
        analyse.args(["--set", set]);
    }
    let out = analyse.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/analyses.py");
    let check = Command::new("python3")
        .arg(script)
        .arg(&folder)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("1 runs,") && said.contains("maps"), "{said}");
}

#[test]
#[ignore = "needs numpy and safetensors in python3 (`bash bench/setup.sh` installs them)"]
fn tonotopy_of_a_speech_fixture_agrees_with_numpy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sc");
    fixtures::write_speech_commands(&root, &["go", "no", "stop", "yes"], [24, 6, 6]).unwrap();
    numpy_agrees(
        tmp.path(),
        &format!("{{ kind: speech_commands, root: {} }}", root.display()),
        &[],
    );
}

#[test]
#[ignore = "needs numpy and safetensors in python3 (`bash bench/setup.sh` installs them)"]
fn orientation_read_before_batch_norm_agrees_with_numpy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cifar");
    fixtures::write_cifar(&root, topo::data::cifar::Variant::Cifar10, 20, 10, 0).unwrap();
    numpy_agrees(
        tmp.path(),
        &format!("{{ kind: cifar10, root: {} }}", root.display()),
        &["analyses.at=conv"],
    );
}
