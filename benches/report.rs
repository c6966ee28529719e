//! `topo report` over 10,000 synthetic finished runs, each with a 101-point pruning
//! curve, 10 epochs of metrics and a 5-layer topography record. Prints the wall time
//! (goal: under 2 s). Run with `cargo bench --bench report`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use topo::config::{Lambda, PAPER_LAMBDAS, PruneMethod};
use topo::results::{
    EpochRecord, ExperimentDir, LayerRecord, PruningRow, RunAxes, RunIdentity, RunStatus,
    SplitKind, Summary, TopographyRecord, Versions,
};
use topo::topography::DistanceBin;

const RUNS: usize = 10_000;
const DATASETS: [&str; 4] = ["cifar10", "cifar100", "speech_commands", "bird_dcase"];
const MODELS: [&str; 3] = ["densenet121", "resnet18", "vgg16_bn"];
/// The paper's six organisations then the baseline: (name, YAML of the topography).
const TOPOGRAPHIES: [(&str, &str); 7] = [
    (
        "grid2d",
        "{ kind: builtin, layout: grid, dimension: 2, norm: euclidean }",
    ),
    (
        "circle",
        "{ kind: builtin, layout: sphere, dimension: 2, norm: euclidean }",
    ),
    (
        "nested2d",
        "{ kind: builtin, layout: nested, dimension: 2, norm: euclidean }",
    ),
    (
        "grid3d",
        "{ kind: builtin, layout: grid, dimension: 3, norm: euclidean }",
    ),
    (
        "sphere",
        "{ kind: builtin, layout: sphere, dimension: 3, norm: euclidean }",
    ),
    (
        "nested3d",
        "{ kind: builtin, layout: nested, dimension: 3, norm: euclidean }",
    ),
    ("base", "{ kind: none }"),
];

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A small deterministic noise in [0, 1), so that means and stds are not degenerate.
fn noise(i: usize, k: usize) -> f64 {
    let x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add((k as u64).wrapping_mul(1442695040888963407));
    ((x >> 33) % 10_000) as f64 / 10_000.0
}

fn write(path: &Path, text: &str) -> BenchResult<()> {
    // Plain writes: the fixture is not what is measured.
    std::fs::write(path, text)?;
    Ok(())
}

fn write_run(exp: &ExperimentDir, i: usize, a: &RunAxes, topography_yaml: &str) -> BenchResult<()> {
    let id = format!("run{i:05}");
    let run = exp.run(&id);
    std::fs::create_dir_all(run.path())?;
    // What a run of today records: its identity in its summary, read by the report.
    let identity: RunIdentity = topo::config::from_yaml(&format!(
        "dataset: {{ kind: {} }}\nmodel: {{ kind: {} }}\ntopography: {topography_yaml}\ntraining: {{}}\n",
        a.dataset, a.model
    ))?;
    let test = 0.8 + 0.1 * noise(i, 1);
    let mut metrics = String::new();
    for e in 1..=10u32 {
        for (split, acc) in [(SplitKind::Train, 0.5), (SplitKind::Validation, 0.6)] {
            let rec = EpochRecord {
                epoch: e,
                split,
                loss: 2.0 / f64::from(e) + 0.1 * noise(i, e as usize),
                ce: 2.0 / f64::from(e),
                topo: None,
                topo_layers: BTreeMap::new(),
                accuracy: acc + 0.03 * f64::from(e) * noise(i, 2),
                lr: None,
                lambda: None,
                roc_auc: None,
                seconds: 1.0,
                images_per_second: 1000.0,
                wall_time: None,
            };
            metrics.push_str(&serde_json::to_string(&rec)?);
            metrics.push('\n');
        }
    }
    write(&run.metrics(), &metrics)?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for p in 0..=100 {
        let proportion = p as f64 / 100.0;
        csv.serialize(PruningRow {
            method: PruneMethod::L2,
            proportion,
            channels_pruned: p * 64 / 100,
            channels_total: 64,
            accuracy: test * (1.0 - proportion * proportion) + 0.01 * noise(i, p),
        })?;
    }
    std::fs::write(run.pruning(), csv.into_inner()?)?;
    let layers = (0..5)
        .map(|l| LayerRecord {
            layer: format!("layer{l}"),
            channels: 64,
            score: Some(noise(i, l)),
            bins: (0..20)
                .map(|b| DistanceBin {
                    distance: b as f64 * 0.05,
                    similarity: Some(0.6 - 0.02 * b as f64 + 0.05 * noise(i, b)),
                    pairs: 100,
                })
                .collect(),
            slope: Some(-0.1 + 0.01 * noise(i, l)),
            positions: None,
            preferences: Vec::new(),
            neighbours: None,
        })
        .collect();
    write(
        &run.topography(),
        &serde_json::to_string(&TopographyRecord {
            layout: "grid".into(),
            probe: None,
            at: None,
            layers,
        })?,
    )?;
    let summary = Summary {
        run_id: id,
        status: RunStatus::Done,
        axes: a.clone(),
        epochs: 10,
        epochs_completed: 10,
        best_epoch: Some(10),
        validation_accuracy: Some(0.8 + 0.1 * noise(i, 3)),
        test_accuracy: Some(test),
        test_roc_auc: None,
        failure: None,
        parameters: Some(11_000_000),
        seconds: 100.0,
        identity: Some(identity),
        provenance: None,
        versions: Some(Versions::of_this_build()),
    };
    write(&run.summary(), &serde_json::to_string_pretty(&summary)?)
}

fn main() -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let exp = ExperimentDir::at(dir.path());
    let start = Instant::now();
    let mut i = 0;
    'seeds: for seed in 0u64.. {
        for dataset in DATASETS {
            for model in MODELS {
                for (topography, yaml) in TOPOGRAPHIES {
                    let lambdas: Vec<Option<Lambda>> = if topography == "base" {
                        vec![None]
                    } else {
                        PAPER_LAMBDAS.iter().map(|&l| Some(l)).collect()
                    };
                    for lambda in lambdas {
                        if i == RUNS {
                            break 'seeds;
                        }
                        let a = RunAxes {
                            dataset: dataset.into(),
                            model: model.into(),
                            topography: topography.into(),
                            lambda,
                            seed,
                        };
                        write_run(&exp, i, &a, yaml)?;
                        i += 1;
                    }
                }
            }
        }
    }
    println!(
        "fixture: {RUNS} runs written in {:.2} s",
        start.elapsed().as_secs_f64()
    );

    for pass in ["first (cold report dir)", "second (files cached)"] {
        let start = Instant::now();
        let outcome = topo::report::report(dir.path())?;
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "topo report, {pass}: {seconds:.3} s for {} runs, {} files written (goal: under 2 s)",
            outcome.counts.done,
            outcome.written.len()
        );
    }
    Ok(())
}
