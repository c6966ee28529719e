//! The planner: counts, lambda collapse, exclusions, stable run ids.

use std::path::{Path, PathBuf};

use topo::config::{LoadOptions, load};
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
    // ResNet-18 on CIFAR-10, 2D grid at lambda 1 and the baseline, 5 seeds.
    let pruning = plan_file(&repo("experiments/pruning.yaml"));
    assert_eq!(pruning.runs.len(), 10);
    assert!(pruning.runs.iter().all(|r| {
        r.pruning
            .as_ref()
            .is_some_and(|p| p.proportions.values().len() == 101)
    }));
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
        .filter(|r| r.axes.topography == "base")
        .collect();
    assert!(base.iter().all(|r| r.lambda.is_none()));
    assert!(
        p.runs
            .iter()
            .filter(|r| r.axes.dataset == "a")
            .all(|r| r.training.epochs == 3)
    );
    assert!(
        p.runs
            .iter()
            .filter(|r| r.axes.dataset == "b")
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
            .any(|r| r.axes.dataset == "b" && r.axes.topography == "grid2d")
    );
    assert!(!p.runs.iter().any(|r| r.lambda == Some(1.0) && r.seed == 1));
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
        .filter(|r| r.axes.dataset == "b")
        .map(|r| &r.id)
        .collect();
    let b_after: Vec<_> = changed
        .runs
        .iter()
        .filter(|r| r.axes.dataset == "b")
        .map(|r| &r.id)
        .collect();
    assert!(b_before.iter().zip(&b_after).all(|(x, y)| x != y));
}
