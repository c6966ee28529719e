//! Each of the paper's tasks trains end to end on a fixture written in its exact format:
//! the loader, the front end, the model (1 or 3 input channels) and the loop together.

use std::path::Path;

use super::fixtures;
use candle_core::Device;
use topo::config::Measure;
use topo::config::{LoadOptions, load};
use topo::plan::plan;
use topo::results::{
    AnalysesRecord, EpochRecord, ExperimentDir, MapKind, RunStatus, SplitKind, Summary,
    TopographyRecord, read_json, read_jsonl,
};
use topo::runner::{RunOptions, run_plan};

/// Trains the one-run experiment `dataset_yaml` describes for `epochs` epochs and
/// returns its records, its summary and its analyses with the classes its probe set holds.
fn train_and_analyse(
    dir: &Path,
    dataset_yaml: &str,
    epochs: u32,
) -> (Vec<EpochRecord>, Summary, Analysed) {
    let yaml = format!(
        "extends: {tiny}
name: task
datasets:
  d: {dataset_yaml}
grid:
  dataset: [d]
  topography: [grid2d]
  lambda: [0.1]
training:
  epochs: {epochs}
  batch_size: 16
  optimizer: {{ weight_decay: 0.0 }}
",
        tiny = super::common::tiny_yaml()
    );
    let file = dir.join("task.yaml");
    std::fs::write(&file, yaml).unwrap();
    let loaded = load(&file, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"));
    let plan = plan(&loaded.experiment).unwrap();
    let experiment_dir = ExperimentDir::new(&dir.join("results"), "task");
    let options = RunOptions {
        kernels: topo::kernels::Kernels::Fast,
        device: Device::Cpu,
        experiment_dir: experiment_dir.clone(),
        config_dir: dir.to_path_buf(),
        cache_dir: dir.join("cache"),
        retry_failed: false,
        fail_fast: false,
    };
    let runs: Vec<_> = plan.runs.iter().collect();
    let report = run_plan(&runs, &options).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let run = experiment_dir.run(&plan.runs[0].id);
    let topography: TopographyRecord = read_json(&run.topography()).unwrap();
    let probe = topography.probe.unwrap();
    let data = topo::data::load(&plan.runs[0].dataset, &dir.join("cache")).unwrap();
    let labels = data.test.labels();
    let mut classes: Vec<u32> = probe.indices.iter().map(|&i| labels[i]).collect();
    classes.sort_unstable();
    classes.dedup();
    (
        read_jsonl(&run.metrics()).unwrap(),
        read_json(&run.summary()).unwrap(),
        Analysed {
            record: read_json(&run.analyses()).unwrap(),
            probe_classes: classes.len(),
            classes: data.num_classes,
        },
    )
}

/// A run's analyses, and the classes of its probe set against the data set's.
struct Analysed {
    record: AnalysesRecord,
    probe_classes: usize,
    classes: usize,
}

/// Checks that every layer has the maps of `measures`, every class in the probe set, and
/// each map statistics where at least 3 channels have a value.
fn check_analyses(a: &Analysed, measures: &[Measure]) {
    assert_eq!(
        a.probe_classes, a.classes,
        "every class is in the probe set"
    );
    assert_eq!(a.record.measures, measures);
    assert_eq!(a.record.layers.len(), 5);
    for layer in &a.record.layers {
        let dprimes = layer
            .maps
            .iter()
            .filter(|m| matches!(m.map, MapKind::Dprime { .. }))
            .count();
        assert_eq!(dprimes, a.classes, "{}", layer.layer);
        for m in &layer.maps {
            assert!(measures.contains(&m.map.measure()), "{:?}", m.map);
            assert_eq!(m.values.len(), layer.channels);
            let defined = m.values.iter().flatten().count();
            if let Some(s) = &m.statistics {
                assert!(s.smoothness_p > 0.0 && s.smoothness_p <= 1.0 && s.moran.is_finite());
                assert_eq!(s.channels, defined);
            }
        }
    }
}

fn check(records: &[EpochRecord], summary: &Summary, epochs: u32, chance: f64) {
    assert_eq!(summary.status, RunStatus::Done);
    let train = records
        .iter()
        .filter(|r| r.split == SplitKind::Train)
        .count();
    let val = records
        .iter()
        .filter(|r| r.split == SplitKind::Validation)
        .count();
    let test = records
        .iter()
        .filter(|r| r.split == SplitKind::Test)
        .count();
    assert_eq!((train, val, test), (epochs as usize, epochs as usize, 1));
    for r in records {
        assert!(r.loss.is_finite() && r.ce.is_finite());
        assert!(
            r.topo.is_some_and(f64::is_finite),
            "the topographic loss is logged"
        );
        assert_eq!(r.topo_layers.len(), 5, "one value per tapped layer");
    }
    let test_accuracy = summary.test_accuracy.unwrap();
    assert!(
        test_accuracy > chance + 0.15,
        "test accuracy {test_accuracy} is not above chance {chance}"
    );
}

#[test]
fn cifar10_trains_on_a_binary_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cifar");
    fixtures::write_cifar(&root, topo::data::cifar::Variant::Cifar10, 20, 10, 0).unwrap();
    let (records, summary, analysed) = train_and_analyse(
        tmp.path(),
        &format!("{{ kind: cifar10, root: {} }}", root.display()),
        3,
    );
    check(&records, &summary, 3, 0.1);
    check_analyses(&analysed, &[Measure::Category, Measure::Orientation]);
    let gratings = analysed.record.gratings.as_ref().unwrap();
    assert_eq!(
        gratings.orientations.len() * gratings.frequencies.len() * gratings.phases,
        192
    );
    // The 2D grid is a lattice: every layer of 4 or more channels has its pinwheel count.
    assert!(analysed.record.layers.iter().all(|l| l.pinwheels.is_some()));
    assert!(records.iter().all(|r| r.roc_auc.is_none()) && summary.test_roc_auc.is_none());
}

#[test]
fn speech_commands_trains_on_a_wav_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sc");
    fixtures::write_speech_commands(&root, &["go", "no", "stop", "yes"], [24, 6, 6]).unwrap();
    let (records, summary, analysed) = train_and_analyse(
        tmp.path(),
        &format!("{{ kind: speech_commands, root: {} }}", root.display()),
        3,
    );
    check(&records, &summary, 3, 0.25);
    check_analyses(&analysed, &[Measure::Category, Measure::Tonotopy]);
    // Preferred frequencies lie among the tones shown, from 80 Hz to 7.6 kHz.
    let tones = analysed.record.tones.as_ref().unwrap();
    let (lo, hi) = (tones[0].log2(), tones[tones.len() - 1].log2());
    assert!((lo - 80f64.log2()).abs() < 1e-9 && (hi - 7600f64.log2()).abs() < 1e-9);
    let preferred = analysed
        .record
        .layers
        .iter()
        .flat_map(|l| &l.maps)
        .filter(|m| m.map == MapKind::PreferredFrequency);
    let values: Vec<f64> = preferred
        .flat_map(|m| m.values.iter().flatten().copied())
        .collect();
    assert!(!values.is_empty() && values.iter().all(|v| (lo - 1e-9..=hi + 1e-9).contains(v)));
}

#[test]
fn bird_dcase_trains_on_three_development_sets() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("birds");
    fixtures::write_bird_dcase(&root, 20, 3.5).unwrap();
    let (records, summary, analysed) = train_and_analyse(
        tmp.path(),
        &format!("{{ kind: bird_dcase, root: {} }}", root.display()),
        3,
    );
    check(&records, &summary, 3, 0.5);
    // Clips of 3.5 s are evaluated in 3 windows; the probe reads each clip whole, one input
    // per labelled clip, so every channel has its d′.
    check_analyses(&analysed, &[Measure::Category, Measure::Tonotopy]);
    for layer in &analysed.record.layers {
        let dprime = layer
            .maps
            .iter()
            .find(|m| matches!(m.map, MapKind::Dprime { .. }));
        let values = &dprime.unwrap().values;
        assert!(
            values.iter().all(Option::is_some),
            "{}: {values:?}",
            layer.layer
        );
    }
    // Two classes: ROC-AUC beside accuracy on the evaluation splits (where both classes
    // are present: the fixture's validation split may hold one), and in the summary.
    for r in &records {
        assert!(r.roc_auc.is_none_or(|a| (0.0..=1.0).contains(&a)), "{r:?}");
        assert!(r.split != SplitKind::Train || r.roc_auc.is_none(), "{r:?}");
    }
    assert!(records.iter().any(|r| r.roc_auc.is_some()), "{records:?}");
    let test = records.iter().find(|r| r.split == SplitKind::Test).unwrap();
    assert_eq!(summary.test_roc_auc, test.roc_auc);
}
