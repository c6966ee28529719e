//! The planner: counts, lambda collapse, exclusions, stable run ids.

use std::path::{Path, PathBuf};

use topo::config::{Lambda, LoadOptions, load};
use topo::plan::{Plan, plan};

fn plan_file(path: &Path) -> Plan {
    let loaded = load(path, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"));
    plan(&loaded.experiment).unwrap()
}

fn plan_text(dir: &Path, text: &str) -> Plan {
    let path = dir.join("e.yaml");
    std::fs::write(&path, text).unwrap();
    plan_file(&path)
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn the_papers_experiments_have_the_papers_run_counts() {
    // 2 data sets x 3 models x (1 base + 6 topographies x 12 lambdas) x 5 seeds.
    assert_eq!(
        plan_file(&repo("experiments/table1.yaml")).runs.len(),
        2 * 3 * (1 + 6 * 12) * 5
    );
    assert_eq!(plan_file(&repo("experiments/table2.yaml")).runs.len(), 2190);
    // The published job script: per data set and seed, 3 baselines and 3 models x
    // (3 layouts x 3 dimensions - the 1-D sphere) x 2 norms x 12 lambdas.
    let reference = plan_file(&repo("experiments/reference_grid.yaml"));
    assert_eq!(reference.runs.len(), 4 * 5 * (3 + 3 * (3 * 3 - 1) * 2 * 12));
    assert_eq!(reference.runs.len(), 11_580);
    // ResNet-18 on CIFAR-10, 2D grid at lambda 1 and the baseline, 5 seeds.
    let pruning = plan_file(&repo("experiments/pruning.yaml"));
    assert_eq!(pruning.runs.len(), 10);
    assert!(pruning.runs.iter().all(|r| {
        r.pruning
            .as_ref()
            .is_some_and(|p| p.proportions.values().len() == 101)
    }));
    // The claim at CPU scale: 5 baselines and 2 topographies x 2 lambdas x 5 seeds; the
    // parity check (bench/parity.py) trains its base and 2D grid at lambda 1.
    let cpu = plan_file(&repo("experiments/fmnist_pruning.yaml"));
    assert_eq!(cpu.runs.len(), 5 + 2 * 2 * 5);
    let parity = cpu.runs.iter().filter(|r| {
        r.axes().topography == "base"
            || (r.axes().topography == "grid2d" && r.axes().lambda == Some(Lambda::known(1.0)))
    });
    assert_eq!(parity.count(), 10);
}

const BASE: &str = "name: t
datasets:
  a: { kind: cifar10, epochs: 3 }
  b: { kind: cifar100 }
topographies:
  base: { kind: none }
  grid2d: { layout: grid, dimension: 2 }
grid:
  dataset: [a, b]
  model: [resnet18]
  topography: [base, grid2d]
  lambda: [0.1, 1]
  seed: [0, 1]
training: { epochs: 9 }
";

#[test]
fn lambda_collapses_for_the_baseline_and_epochs_follow_the_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan_text(tmp.path(), BASE);
    // per data set: base 2 seeds + grid2d 2 lambdas x 2 seeds
    assert_eq!(p.runs.len(), 2 * (2 + 4));
    let base: Vec<_> = p
        .runs
        .iter()
        .filter(|r| r.axes().topography == "base")
        .collect();
    assert!(base.iter().all(|r| r.objective.lambda().is_none()));
    assert!(
        p.runs
            .iter()
            .filter(|r| r.axes().dataset == "a")
            .all(|r| r.training.epochs == 3)
    );
    assert!(
        p.runs
            .iter()
            .filter(|r| r.axes().dataset == "b")
            .all(|r| r.training.epochs == 9)
    );
    let ids: std::collections::HashSet<_> = p.runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), p.runs.len(), "run ids are unique");
    assert_eq!(
        p.runs[0].id.split('-').next().unwrap(),
        "a_resnet18_base_s0"
    );
}

#[test]
fn exclude_rules_drop_matching_runs_only() {
    let tmp = tempfile::tempdir().unwrap();
    let text = BASE.to_string()
        + "  exclude:\n    - { dataset: b, topography: grid2d }\n    - { lambda: 1, seed: 1 }\n";
    let text = text.replace("training: { epochs: 9 }\n", "") + "training: { epochs: 9 }\n";
    let p = plan_text(tmp.path(), &text);
    // a: base 2 + grid2d (4 - the lambda 1 seed 1 run) = 5; b: base 2 only.
    assert_eq!(p.runs.len(), 7);
    assert!(
        !p.runs
            .iter()
            .any(|r| r.axes().dataset == "b" && r.axes().topography == "grid2d")
    );
    assert!(
        !p.runs
            .iter()
            .any(|r| r.axes().lambda.map(Lambda::get) == Some(1.0) && r.seed == 1)
    );
}

#[test]
fn run_ids_survive_reformatting_and_unrelated_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let before = plan_text(tmp.path(), BASE);
    // Same meaning, other key order and flow style, plus a new topography, a new
    // lambda, a description and a pruning section.
    let after = plan_text(
        tmp.path(),
        "grid:
  seed: [0, 1]
  lambda: [0.1, 1, 5]
  topography: [base, grid2d, circle]
  model: [resnet18]
  dataset: [a, b]
training:
  epochs: 9
name: t
description: edited
topographies:
  circle: { layout: sphere, dimension: 2 }
  grid2d:
    dimension: 2
    layout: grid
  base: { kind: none }
datasets:
  b: { kind: cifar100 }
  a: { epochs: 3, kind: cifar10 }
pruning: { proportions: [0, 0.5] }
",
    );
    let new_ids: std::collections::HashSet<_> = after.runs.iter().map(|r| r.id.as_str()).collect();
    for r in &before.runs {
        assert!(new_ids.contains(r.id.as_str()), "{} changed id", r.id);
    }
    assert_eq!(after.runs.len(), 2 * (2 + 2 * 3 * 2));
    // A change that does alter training changes the id.
    let changed = plan_text(tmp.path(), &BASE.replace("epochs: 9", "epochs: 10"));
    let b_before: Vec<_> = before
        .runs
        .iter()
        .filter(|r| r.axes().dataset == "b")
        .map(|r| &r.id)
        .collect();
    let b_after: Vec<_> = changed
        .runs
        .iter()
        .filter(|r| r.axes().dataset == "b")
        .map(|r| &r.id)
        .collect();
    assert!(b_before.iter().zip(&b_after).all(|(x, y)| x != y));
}

fn topo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_topo"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TOPO_RESULTS_ROOT")
        .output()
        .unwrap()
}

#[test]
fn cli_plan_json_counts_the_runs_and_reads_their_status() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().to_str().unwrap();
    let plan_json = || {
        topo(&[
            "plan",
            "experiments/pruning.yaml",
            "--format",
            "json",
            "--results",
            results,
        ])
    };
    let out = plan_json();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["total"], 10);
    assert_eq!(doc["counts"]["new"], 10);
    // A run with a summary saying done shows as done.
    let id = doc["runs"][0]["id"].as_str().unwrap().to_string();
    let run_dir = tmp.path().join("pruning/runs").join(&id);
    std::fs::create_dir_all(&run_dir).unwrap();
    let summary = topo::results::Summary {
        run_id: id.clone(),
        status: topo::results::RunStatus::Done,
        axes: serde_json::from_value(serde_json::json!({
            "dataset": "cifar10", "model": "resnet18", "topography": "grid2d", "lambda": 1.0, "seed": 0
        }))
        .unwrap(),
        epochs: 1,
        epochs_completed: 1,
        best_epoch: Some(1),
        validation_accuracy: Some(0.5),
        test_accuracy: Some(0.5),
        test_roc_auc: None,
        failure: None,
        parameters: Some(1),
        seconds: 1.0,
        identity: None,
        provenance: None,
        versions: Some(topo::results::Versions { topo: "0".into(), candle: "0".into() }),
    };
    topo::results::write_json(&run_dir.join("summary.json"), &summary).unwrap();
    let out = plan_json();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["counts"]["done"], 1);
    assert_eq!(doc["runs"][0]["status"], "done");
    let text = topo(&["plan", "experiments/pruning.yaml", "--results", results]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains(&format!("{id}  cifar10")), "{stdout}");
    assert!(
        stdout.contains("9 new, 0 partial, 1 done, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn cli_validate_exits_2_with_located_messages_and_0_when_valid() {
    let bad = topo(&[
        "validate",
        "tests/fixtures/configs/invalid/many-problems.yaml",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("many-problems.yaml:3:29: datasets.cifar10.limt: unknown field `limt`, did you mean `limit`?"));
    assert!(stderr.ends_with("7 problems found\n"), "{stderr}");
    let good = topo(&["validate", "experiments/table1.yaml"]);
    assert_eq!(good.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&good.stdout),
        "experiments/table1.yaml: ok (2190 runs)\n"
    );
    let missing = topo(&["validate", "experiments/nope.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("experiments/nope.yaml:1:1: cannot read the file")
    );
}

#[test]
fn every_subcommand_has_help() {
    for cmd in [
        "validate",
        "plan",
        "run",
        "report",
        "positions",
        "schema",
        "slurm",
    ] {
        let out = topo(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: topo"),
            "{cmd}"
        );
    }
}

#[test]
fn plan_estimate_measures_once_then_uses_the_cache_then_the_runs_done() {
    let tiny = super::common::TinyExperiment::new("cost", "grid: { seed: [0, 1] }\n");
    let estimate = || String::from_utf8(tiny.expect("plan", &["--estimate"], 0).stdout).unwrap();
    // The fixture's row: its pending runs and epochs are the last columns but one.
    let row = |text: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("fm "))
            .unwrap_or_else(|| panic!("{text}"));
        line.split_whitespace().map(String::from).collect()
    };
    let first = estimate();
    let cols = row(&first);
    // 1x28x28 images; 4 pending runs (base and grid2d, 2 seeds) of 2 epochs.
    assert_eq!(cols[2], "1x28x28", "{cols:?}");
    assert!(first.contains("here, just now"), "{first}");
    let gflops: f64 = cols[3].parse().unwrap();
    assert!(gflops > 0.001 && gflops < 1.0, "{cols:?}");
    assert_eq!(cols[cols.len() - 3..cols.len() - 1], ["4", "8"], "{cols:?}");
    assert!(
        first.contains("Total: ") && first.contains("core-hours"),
        "{first}"
    );
    assert!(first.contains("per topography: base "), "{first}");
    assert!(first.contains("per seed: 0 "), "{first}");
    assert!(estimate().contains("here (cached)"));

    let plan: serde_json::Value =
        serde_json::from_slice(&tiny.expect("plan", &["--format", "json"], 0).stdout).unwrap();
    let id = plan["runs"][0]["id"].as_str().unwrap();
    tiny.expect("run", &["--no-report", "--only", id], 0);
    let after = estimate();
    assert!(after.contains("by 1 run(s) done"), "{after}");
    let cols = row(&after);
    assert_eq!(cols[cols.len() - 3..cols.len() - 1], ["3", "6"], "{cols:?}");
}
