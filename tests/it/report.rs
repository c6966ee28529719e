//! Tests of `topo report`: golden tables from synthetic run records written with the
//! results writers (means and both standard deviations worked out by hand, lambda chosen
//! by validation while test disagrees, a missing cell, a failed, a half-finished and an
//! unreadable run), the index, the figures, and the empty and absent folders.

// Fixture helpers outside `#[test]` fns: a failed write should stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use topo::config::{Lambda, PruneMethod};
use topo::report::report;
use topo::results::{
    ChannelPositions, EpochRecord, ExperimentDir, Failure, LayerRecord, PruningRow, RunAxes,
    RunStatus, SplitKind, Summary, TopographyRecord, Versions, write_atomic, write_json,
    write_jsonl, write_pruning_csv,
};
use topo::topography::{DistanceBin, NeighbourAgreement, Preference};

const GRID2D_YAML: &str = "dataset: { kind: cifar10 }\nmodel: { kind: MODEL }\n\
                           topography: { kind: builtin, layout: grid, dimension: 2, norm: euclidean }\n";
const BASE_YAML: &str =
    "dataset: { kind: cifar10 }\nmodel: { kind: MODEL }\ntopography: { kind: none }\n";

fn axes(model: &str, topography: &str, lambda: Option<f64>, seed: u64) -> RunAxes {
    RunAxes {
        dataset: "cifar10".into(),
        model: model.into(),
        topography: topography.into(),
        lambda: lambda.map(|l| Lambda::new(l).unwrap()),
        seed,
    }
}

fn run_id(a: &RunAxes) -> String {
    let l = a.lambda.map_or("none".to_string(), |l| l.get().to_string());
    format!(
        "{}-{}-{}-l{l}-s{}",
        a.dataset, a.model, a.topography, a.seed
    )
}

fn summary(a: &RunAxes, status: RunStatus, accuracies: Option<(f64, f64)>) -> Summary {
    Summary {
        run_id: run_id(a),
        status,
        axes: a.clone(),
        epochs: 2,
        epochs_completed: 2,
        best_epoch: accuracies.map(|_| 2),
        validation_accuracy: accuracies.map(|a| a.0),
        test_accuracy: accuracies.map(|a| a.1),
        test_roc_auc: None,
        failure: None,
        parameters: Some(1000),
        seconds: 1.0,
        // As versions before the typed identity wrote them: the report falls back.
        identity: None,
        provenance: None,
        versions: Some(Versions::of_this_build()),
    }
}

fn epoch(epoch: u32, split: SplitKind, loss: f64, accuracy: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        split,
        loss,
        ce: loss,
        topo: None,
        topo_layers: BTreeMap::new(),
        accuracy,
        lr: None,
        lambda: None,
        roc_auc: None,
        seconds: 1.0,
        images_per_second: 100.0,
        wall_time: None,
    }
}

/// A finished run with its records; `with_yaml` writes `run.yaml` too.
fn done_run(exp: &ExperimentDir, a: &RunAxes, validation: f64, test: f64, with_yaml: bool) {
    let run = exp.run(&run_id(a));
    if with_yaml {
        let yaml = if a.lambda.is_some() {
            GRID2D_YAML
        } else {
            BASE_YAML
        };
        write_atomic(&run.run_yaml(), yaml.replace("MODEL", &a.model).as_bytes()).unwrap();
    }
    let shift = a.seed as f64 * 0.01;
    let metrics = vec![
        epoch(1, SplitKind::Train, 2.0 + shift, 0.5),
        epoch(1, SplitKind::Validation, 1.8, 0.6 + shift),
        epoch(2, SplitKind::Train, 1.0 + shift, 0.8),
        epoch(2, SplitKind::Validation, 1.2, validation),
        epoch(2, SplitKind::Test, 1.2, test),
    ];
    write_jsonl(&run.metrics(), &metrics).unwrap();
    let pruning: Vec<PruningRow> = (0..=4)
        .map(|i| PruningRow {
            method: PruneMethod::L2,
            proportion: i as f64 / 4.0,
            channels_pruned: i * 16,
            channels_total: 64,
            accuracy: test * (1.0 - i as f64 / 4.0) + 0.1 * i as f64 / 4.0 - shift,
        })
        .collect();
    write_pruning_csv(&run.pruning(), &pruning).unwrap();
    let bins = (0..5)
        .map(|b| DistanceBin {
            distance: b as f64 * 0.25,
            similarity: Some(0.5 - 0.1 * b as f64 + shift),
            pairs: 10,
        })
        .collect();
    let layer = LayerRecord {
        layer: "layer1.1.conv2".into(),
        channels: 64,
        score: Some(0.4),
        slope: Some(-0.2),
        bins,
        // A 2D grid of 64 channels: the topographic runs' preferences in vertical bands
        // of 16 channels, the baseline's scattered.
        positions: Some(ChannelPositions {
            dim: 2,
            coords: topo::topography::positions(topo::topography::Layout::Grid, 2, 64)
                .unwrap()
                .coords()
                .to_vec(),
        }),
        preferences: (0..64)
            .map(|c| Preference {
                class: if a.lambda.is_some() {
                    (c % 8) / 2
                } else {
                    (c * 7) % 4
                },
                selectivity: 0.2 + 0.01 * c as f64,
            })
            .collect(),
        neighbours: Some(NeighbourAgreement {
            same: 0.6 + shift,
            shuffled: 0.25,
            shuffles: 100,
        }),
    };
    write_json(
        &run.topography(),
        &TopographyRecord {
            layout: "grid d2".into(),
            probe: None,
            at: None,
            layers: vec![layer],
        },
    )
    .unwrap();
    write_json(
        &run.summary(),
        &summary(a, RunStatus::Done, Some((validation, test))),
    )
    .unwrap();
}

/// The golden experiment. resnet18: grid2d at lambda 1e-3 (validation 90, 91, 92; test
/// 90, 92, 94) and at 0.1 (validation lower, test higher: must not be chosen), base
/// (test 93, 92.5, 92). vgg16_bn: base with two seeds (93.5, 94.5); grid2d only a failed
/// and a half-finished run: a missing cell. Plus a run whose summary is not JSON.
fn golden(root: &Path, with_yaml: bool) -> ExperimentDir {
    let exp = ExperimentDir::at(root);
    for (seed, (v, t)) in [(0.90, 0.90), (0.91, 0.92), (0.92, 0.94)]
        .into_iter()
        .enumerate()
    {
        done_run(
            &exp,
            &axes("resnet18", "grid2d", Some(1e-3), seed as u64),
            v,
            t,
            with_yaml,
        );
    }
    for (seed, (v, t)) in [(0.89, 0.99), (0.89, 0.99), (0.90, 0.99)]
        .into_iter()
        .enumerate()
    {
        done_run(
            &exp,
            &axes("resnet18", "grid2d", Some(0.1), seed as u64),
            v,
            t,
            with_yaml,
        );
    }
    for (seed, t) in [0.93, 0.925, 0.92].into_iter().enumerate() {
        done_run(
            &exp,
            &axes("resnet18", "base", None, seed as u64),
            0.90,
            t,
            with_yaml,
        );
    }
    for (seed, t) in [0.935, 0.945].into_iter().enumerate() {
        done_run(
            &exp,
            &axes("vgg16_bn", "base", None, seed as u64),
            0.90,
            t,
            with_yaml,
        );
    }
    let failed = axes("vgg16_bn", "grid2d", Some(1e-3), 0);
    let mut s = summary(&failed, RunStatus::Failed, None);
    s.failure = Some(Failure {
        epoch: Some(3),
        reason: "out of memory".into(),
    });
    write_json(&exp.run(&run_id(&failed)).summary(), &s).unwrap();
    let half = exp.run(&run_id(&axes("vgg16_bn", "grid2d", Some(1e-3), 1)));
    write_jsonl(&half.metrics(), &[epoch(1, SplitKind::Train, 2.0, 0.5)]).unwrap();
    write_atomic(&exp.run("corrupt").summary(), b"{ not json").unwrap();
    exp
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

const CAPTION_SAMPLE: &str = "Mean test accuracy in % (± sample standard deviation, n − 1) over seeds. \
For each data set, model and topography, λ is the one with the best mean validation accuracy over seeds.";

#[test]
fn golden_tables_sample_std_from_run_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let exp = golden(dir.path(), true);
    let outcome = report(exp.path()).unwrap();
    assert_eq!(
        (
            outcome.counts.folders,
            outcome.counts.done,
            outcome.counts.failed
        ),
        (14, 11, 1)
    );
    assert_eq!(
        (
            outcome.counts.pending,
            outcome.counts.unreadable,
            outcome.missing_cells
        ),
        (1, 1, 1)
    );

    let md = read(exp.report_dir().join("tables/results.md"));
    let expected = format!(
        "# Table `results`\n\n{CAPTION_SAMPLE}\n\n\
| Topography | cifar10 / resnet18 | cifar10 / vgg16_bn |\n\
|:---|---:|---:|\n\
| grid2d (2D grid) | 92.00 ± 2.00 | — |\n\
| base | 92.50 ± 0.50 | 94.00 ± 0.71 (n=2) |\n\
\n## λ chosen\n\nλ of each cell and, in parentheses, its number of seeds.\n\n\
| Topography | cifar10 / resnet18 | cifar10 / vgg16_bn |\n\
|:---|---:|---:|\n\
| grid2d (2D grid) | 1e-3 (3) | — |\n\
| base | none (3) | none (2) |\n\
\n## Compared with the paper (Table 1)\n\n\
Our mean minus the paper's, in percentage points; the paper's mean ± std in parentheses.\n\n\
| Topography | cifar10 / resnet18 | cifar10 / vgg16_bn |\n\
|:---|---:|---:|\n\
| grid2d (2D grid) | -0.55 (92.55 ± 0.32) | — |\n\
| base | +0.05 (92.45 ± 0.17) | +0.43 (93.57 ± 0.18) |\n"
    );
    assert_eq!(md, expected);

    let csv = read(exp.report_dir().join("tables/results.csv"));
    assert_eq!(
        csv,
        "table,dataset,model,topography,paper_row,lambda,seeds,validation_mean,test_mean,test_std,std_kind,paper_mean,paper_std,difference\n\
results,cifar10,resnet18,grid2d,2D grid,0.001,3,91.0,92.0,2.0,sample,92.55,0.32,-0.55\n\
results,cifar10,resnet18,base,Base,,3,90.0,92.5,0.5,sample,92.45,0.17,0.05\n\
results,cifar10,vgg16_bn,base,Base,,2,90.0,94.0,0.7071,sample,93.57,0.18,0.43\n"
    );

    // The sweep shows lambda 0.1 had the better test accuracy and was not chosen.
    let sweep = read(exp.report_dir().join("tables/lambdas.csv"));
    assert_eq!(
        sweep,
        "dataset,model,topography,lambda,seeds,validation_mean,test_mean,chosen\n\
cifar10,resnet18,base,,3,90.0,92.5,true\n\
cifar10,resnet18,grid2d,0.001,3,91.0,92.0,true\n\
cifar10,resnet18,grid2d,0.1,3,89.3333,99.0,false\n\
cifar10,vgg16_bn,base,,2,90.0,94.0,true\n"
    );

    let tex = read(exp.report_dir().join("tables/results.tex"));
    assert!(tex.contains("\\multicolumn{2}{c}{cifar10} \\\\"), "{tex}");
    assert!(
        tex.contains("Topography & resnet18 & vgg16\\_bn \\\\"),
        "{tex}"
    );
    assert!(
        tex.contains("grid2d (2D grid) & $92.00 \\pm 2.00$ & -- \\\\"),
        "{tex}"
    );
    assert!(
        tex.contains("base & $92.50 \\pm 0.50$ & $94.00 \\pm 0.71$ \\\\"),
        "{tex}"
    );
    assert!(
        tex.contains("($\\pm$ sample standard deviation, n - 1)"),
        "{tex}"
    );
}

#[test]
fn population_std_and_identity_from_the_experiment_file() {
    let dir = tempfile::tempdir().unwrap();
    let exp = golden(dir.path(), false);
    let experiment = "name: golden\ndescription: Synthetic records.\n\
datasets:\n  cifar10: { kind: cifar10 }\n\
topographies:\n  grid2d: { layout: grid, dimension: 2 }\n  base: { kind: none }\n\
grid:\n  dataset: [cifar10]\n  model: [resnet18, vgg16_bn]\n  topography: [grid2d, base]\n  lambda: [0.001, 0.1]\n  seed: [0, 1, 2]\n\
report:\n  std: population\n";
    write_atomic(&exp.resolved_yaml(), experiment.as_bytes()).unwrap();
    report(exp.path()).unwrap();
    let md = read(exp.report_dir().join("tables/results.md"));
    assert!(
        md.contains("(± population standard deviation, n) over seeds"),
        "{md}"
    );
    // sqrt(8/3) = 1.633, sqrt(0.5/3) = 0.408, sqrt(0.25) = 0.5.
    assert!(md.contains("| grid2d (2D grid) | 92.00 ± 1.63 | — |\n| base | 92.50 ± 0.41 | 94.00 ± 0.50 (n=2) |\n"), "{md}");
    assert!(
        md.contains("| base | +0.05 (92.45 ± 0.17) | +0.43 (93.57 ± 0.18) |"),
        "{md}"
    );
    let index = read(exp.report_dir().join("index.md"));
    assert!(
        index.starts_with("# Report: golden\n\nSynthetic records.\n\n"),
        "{index}"
    );
}

#[test]
fn index_lists_failed_pending_missing_and_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let exp = golden(dir.path(), true);
    let outcome = report(exp.path()).unwrap();
    let index = read(&outcome.index);
    assert!(index.contains(
        "14 run folders: 11 done, 1 failed, 1 in progress or interrupted, 1 unreadable."
    ));
    assert!(index.contains("| `cifar10-vgg16_bn-grid2d-l0.001-s0` | cifar10 | vgg16_bn | grid2d | 1e-3 | 0 | 3 | out of memory |"), "{index}");
    assert!(
        index.contains("- `cifar10-vgg16_bn-grid2d-l0.001-s1`\n"),
        "{index}"
    );
    assert!(
        index.contains("- `results`: cifar10 / vgg16_bn / grid2d\n"),
        "{index}"
    );
    let corrupt = exp.run("corrupt").summary();
    assert!(
        index.contains(&format!(
            "- `{}`: {}:1: not a valid record",
            corrupt.display(),
            corrupt.display()
        )),
        "{index}"
    );
    assert!(
        index.contains("| grid2d (2D grid) | 1e-3 (3) | — |"),
        "{index}"
    );
    assert!(
        index.contains(
            "![Pruning, lowest L2 norm first: mean ± std over seeds](figures/pruning_l2.png)"
        ),
        "{index}"
    );
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].reason, "out of memory");
}

#[test]
fn figures_are_written_as_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let exp = golden(dir.path(), true);
    report(exp.path()).unwrap();
    let figures = exp.report_dir().join("figures");
    for stem in [
        "layouts",
        "pruning_l2",
        "training_cifar10_resnet18",
        "topography_cifar10_resnet18",
        "maps_cifar10_resnet18",
    ] {
        let png = std::fs::read(figures.join(format!("{stem}.png"))).unwrap();
        assert!(png.len() > 10_000, "{stem}.png is {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
        let svg = read(figures.join(format!("{stem}.svg")));
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{stem}.svg");
    }
    // vgg16_bn has no records but its baseline's: a training figure of its own.
    assert!(figures.join("training_cifar10_vgg16_bn.png").exists());
    let pruning = read(figures.join("pruning_l2.svg"));
    assert!(
        pruning.contains("grid2d (2D grid) (λ = 1e-3)"),
        "legend names the lambda"
    );
    let maps = read(figures.join("maps_cifar10_resnet18.svg"));
    assert!(
        maps.contains("layer1.1.conv2") && maps.contains("class 3"),
        "maps: panels and legend"
    );
    let index = read(exp.report_dir().join("index.md"));
    assert!(
        index.contains("figures/maps_cifar10_resnet18.png"),
        "maps in the index"
    );
    // And one map per finished run, each listed.
    let per_run: Vec<_> = std::fs::read_dir(figures.join("maps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let done = std::fs::read_dir(exp.runs_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("topography.json").exists())
        .count();
    assert!(done > 0);
    assert_eq!(per_run.len(), done, "{per_run:?}");
    for name in &per_run {
        assert!(
            index.contains(&format!("figures/maps/{name}")),
            "{name} listed"
        );
    }
    let smooth = index
        .split("### Smoothness")
        .nth(1)
        .expect("a smoothness section");
    assert!(
        smooth.contains("| `layer1.1.conv2` |") && smooth.contains("0.25"),
        "{smooth}"
    );
}

#[test]
fn an_empty_folder_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = report(dir.path()).unwrap();
    assert_eq!(outcome.counts.folders, 0);
    let index = read(&outcome.index);
    assert!(
        index.contains("No runs yet: `runs/` is empty or absent."),
        "{index}"
    );
    // The page beside the index says the same.
    let html = outcome.report_dir.join("index.html");
    assert!(read(&html).contains("No runs yet: <code>runs/</code> is empty or absent."));
    assert_eq!(outcome.written, vec![html, outcome.index.clone()]);
}

#[test]
fn an_absent_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = report(&missing).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: no such experiment folder (expected results/<experiment>/ with a runs/ folder)",
            missing.display()
        )
    );
}

#[test]
fn figure_3s_headline_is_compared_when_the_experiment_has_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let exp = ExperimentDir::at(dir.path());
    // ResNet-18 on CIFAR-10 (run.yaml names the kinds): the grid at lambda 1, and the
    // baseline, 2 seeds each, pruned at 0% and 62%.
    for (topography, lambda) in [("grid2d", Some(1.0)), ("base", None)] {
        for seed in 0..2u64 {
            let a = axes("resnet18", topography, lambda, seed);
            done_run(&exp, &a, 0.9, 0.9, true);
            let at = |proportion: f64, accuracy: f64| PruningRow {
                method: PruneMethod::L2,
                proportion,
                channels_pruned: 0,
                channels_total: 64,
                accuracy,
            };
            let (unpruned, pruned) = match (topography, seed) {
                ("grid2d", 0) => (0.91, 0.60),
                ("grid2d", _) => (0.93, 0.64),
                (_, 0) => (0.92, 0.40),
                _ => (0.93, 0.42),
            };
            let rows = [at(0.0, unpruned), at(0.62, pruned)];
            write_pruning_csv(&exp.run(&run_id(&a)).pruning(), &rows).unwrap();
        }
    }
    let index = read(&report(exp.path()).unwrap().index);
    for line in [
        "| 2D grid (λ = 1) | 0% | 92.00 ± 1.41 | 2 | 91.90 |",
        "| base | 0% | 92.50 ± 0.71 | 2 | 92.45 |",
        "| 2D grid (λ = 1) | 62% | 62.00 ± 2.83 | 2 | 62.00 |",
        "| base | 62% | 41.00 ± 1.41 | 2 | 40.60 |",
    ] {
        assert!(index.contains(line), "{line}\n{index}");
    }
    // The golden experiment's grid is at lambda 1e-3, and it prunes at quarters: the
    // baseline's unpruned point alone is compared.
    let other = tempfile::tempdir().unwrap();
    let golden = golden(other.path(), true);
    let index = read(&report(golden.path()).unwrap().index);
    assert!(
        index.contains("| base | 0% | 91.50 ± 1.50 | 3 | 92.45 |"),
        "{index}"
    );
    assert!(
        index.contains("| base | 62% | not measured | 0 | 40.60 |"),
        "{index}"
    );
    assert!(!index.contains("2D grid (λ = 1)"), "{index}");
}

#[test]
fn roc_auc_is_reported_for_the_cells_whose_runs_recorded_it() {
    let dir = tempfile::tempdir().unwrap();
    let exp = golden(dir.path(), true);
    let index = read(&report(exp.path()).unwrap().index);
    assert!(!index.contains("## ROC-AUC"), "{index}");
    for (seed, auc) in [0.8, 0.9, 1.0].into_iter().enumerate() {
        let a = axes("resnet18", "base", None, seed as u64);
        let path = exp.run(&run_id(&a)).summary();
        let mut s: Summary = topo::results::read_json(&path).unwrap();
        s.test_roc_auc = Some(auc);
        write_json(&path, &s).unwrap();
    }
    let index = read(&report(exp.path()).unwrap().index);
    assert!(
        index.contains("| cifar10 | resnet18 | base | none | 90.00 ± 10.00 | 3 |"),
        "{index}"
    );
}

/// The index without its figures' section: what the tables say.
fn index_tables(index: &str) -> String {
    let mut kept = Vec::new();
    let mut in_figures = false;
    for line in index.lines() {
        if line.starts_with("## ") {
            in_figures = line == "## Figures";
        }
        if !in_figures {
            kept.push(line);
        }
    }
    kept.join("\n")
}

#[test]
fn the_tables_do_not_depend_on_which_figures_are_drawn() {
    let experiment = |figures: &str| {
        format!(
            "name: golden\n\
datasets:\n  cifar10: {{ kind: cifar10 }}\n\
topographies:\n  grid2d: {{ layout: grid, dimension: 2 }}\n  base: {{ kind: none }}\n\
grid:\n  dataset: [cifar10]\n  model: [resnet18, vgg16_bn]\n  topography: [grid2d, base]\n  lambda: [0.001, 0.1]\n  seed: [0, 1, 2]\n\
report:\n  figures: {figures}\n"
        )
    };
    let report_of = |figures: &str| {
        let dir = tempfile::tempdir().unwrap();
        let exp = golden(dir.path(), true);
        write_atomic(&exp.resolved_yaml(), experiment(figures).as_bytes()).unwrap();
        report(exp.path()).unwrap();
        let tables: Vec<(String, String)> =
            ["results.md", "results.tex", "results.csv", "lambdas.csv"]
                .iter()
                .map(|f| (f.to_string(), read(exp.report_dir().join("tables").join(f))))
                .collect();
        let here = dir.path().display().to_string();
        let index = read(exp.report_dir().join("index.md")).replace(&here, "DIR");
        (tables, index_tables(&index), index)
    };
    let (all_tables, all_index, full) = report_of("[layouts, pruning, training, topography]");
    let (none_tables, none_index, bare) = report_of("[]");
    assert!(full.contains("## Figures"), "{full}");
    assert!(!bare.contains("## Figures"), "{bare}");
    // The pruning effect and smoothness tables stand without their figures.
    for section in ["Pruning", "### Smoothness"] {
        assert!(bare.contains(section), "{section} missing:\n{bare}");
    }
    assert_eq!(all_tables, none_tables);
    assert_eq!(all_index, none_index);
}
