//! End-to-end tests of the training engine: tiny experiments trained through the real
//! `topo` binary (folders complete, exact resume after SIGKILL, failed runs, `--only`,
//! the pruning stage) and the checkpoint round trip through the library.
//!
//! Each experiment is a ResNet-18 at width 0.0625 on a synthetic Fashion-MNIST whose
//! classes can be learned (270 training, 30 validation, 50 test images, balanced), with
//! a constant learning rate: the paper's warmup_cosine trains epoch 0 at lr 0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::fixtures::write_fashion_mnist;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde_json::Value;
use tempfile::TempDir;
use topo::config::{ModelKind, ModelSpec, PruneMethod};
use topo::nn::{build, seeded_var_builder};
use topo::results::RunDir;

use super::common::{metrics_without_timings, read_tensorboard};
use topo::train::checkpoint::{LoopState, load_last, load_weights, read_loop_state, save_last};
use topo::train::optim::{Sgd, SgdConfig, trainable_vars};
use topo::train::prune::prune_varmap;

/// Tapped channels of ResNet-18 at width 0.0625: conv1 4, layer1..4 4, 8, 16, 32.
const TAPPED_CHANNELS: usize = 64;
const TEST_IMAGES: usize = 50;

/// The experiment file: the tiny one with `{tiny}`, `{root}`, `{name}`,
/// `{topographies}`, `{lambda}`, `{epochs}` and `{pruning}` filled in.
const TEMPLATE: &str = "\
extends: {tiny}
name: {name}
datasets:
  fm: { root: {root} }
grid:
  topography: [{topographies}]
  lambda: [{lambda}]
training:
  epochs: {epochs}
{pruning}
";

/// What varies between the tests' experiments.
struct Spec<'a> {
    name: &'a str,
    topographies: &'a str,
    lambda: &'a str,
    epochs: u32,
    pruning: &'a str,
}

/// A temporary folder holding the data fixture, the experiment file and `results/`.
struct Experiment {
    dir: TempDir,
    yaml: PathBuf,
    name: String,
}

impl Experiment {
    fn new(spec: &Spec) -> Experiment {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        write_fashion_mnist(&data, 30, TEST_IMAGES / 10, false).unwrap();
        let yaml = dir.path().join(format!("{}.yaml", spec.name));
        let e = Experiment {
            dir,
            yaml,
            name: spec.name.to_string(),
        };
        e.write(spec);
        e
    }

    /// (Re)writes the experiment file.
    fn write(&self, spec: &Spec) {
        let text = TEMPLATE
            .replace("{tiny}", &super::common::tiny_yaml())
            .replace("{name}", spec.name)
            .replace(
                "{root}",
                &self.dir.path().join("data").display().to_string(),
            )
            .replace("{topographies}", spec.topographies)
            .replace("{lambda}", spec.lambda)
            .replace("{epochs}", &spec.epochs.to_string())
            .replace("{pruning}", spec.pruning);
        std::fs::write(&self.yaml, text).unwrap();
    }

    fn results(&self, which: &str) -> PathBuf {
        self.dir.path().join(which)
    }

    /// `topo <command> FILE --results <which> <extra>`.
    fn command(&self, command: &str, which: &str, extra: &[&str]) -> Command {
        super::common::topo_command(
            self.dir.path(),
            &self.yaml,
            command,
            &self.results(which),
            extra,
        )
    }

    fn topo(&self, command: &str, which: &str, extra: &[&str]) -> Output {
        self.command(command, which, extra).output().unwrap()
    }

    /// The run folders under results `which`, sorted by name.
    fn runs(&self, which: &str) -> Vec<PathBuf> {
        let dir = self.results(which).join(&self.name).join("runs");
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        runs.sort();
        runs
    }

    /// The run ids `topo plan --format json` lists, with their status.
    fn plan(&self, which: &str) -> Value {
        let out = self.topo("plan", which, &["--format", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `pruning.csv` as (method, proportion, pruned, total, accuracy) rows.
fn pruning_rows(run: &Path) -> Vec<(String, f64, usize, usize, f64)> {
    let mut reader = csv::Reader::from_path(run.join("pruning.csv")).unwrap();
    reader
        .deserialize::<(String, f64, usize, usize, f64)>()
        .map(Result::unwrap)
        .collect()
}

const RUN_FILES: [&str; 9] = [
    "run.yaml",
    "analyses.json",
    "metrics.jsonl",
    "summary.json",
    "topography.json",
    "checkpoints/best.safetensors",
    "checkpoints/last.safetensors",
    "checkpoints/state.json",
    "pruning.csv",
];

/// Checks a finished run folder: every file (`pruning.csv` when `pruned`), one train and one validation record per
/// epoch then one test record, a summary that agrees with the records.
fn check_complete(run: &Path, epochs: u32, topographic: bool, pruned: bool) {
    for f in RUN_FILES {
        let expected = pruned || f != "pruning.csv";
        assert_eq!(run.join(f).is_file(), expected, "{}: {f}", run.display());
    }
    assert!(!run.join("lock").exists(), "{} still locked", run.display());
    let records = metrics(run);
    assert_eq!(records.len(), 2 * epochs as usize + 1, "{records:#?}");
    for e in 1..=epochs {
        for (k, split) in ["train", "validation"].iter().enumerate() {
            let r = &records[2 * (e as usize - 1) + k];
            assert_eq!(r["epoch"], e, "{r}");
            assert_eq!(r["split"], *split, "{r}");
            assert_eq!(r["lr"].is_number(), *split == "train", "{r}");
            assert_eq!(r["topo"].is_number(), topographic, "{r}");
            let layers = r["topo_layers"].as_object().map_or(0, |m| m.len());
            assert_eq!(layers, if topographic { 5 } else { 0 }, "{r}");
        }
    }
    let test = records.last().unwrap();
    assert_eq!(test["split"], "test");

    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["status"], "done");
    assert_eq!(
        summary["run_id"],
        run.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(summary["epochs_completed"], epochs);
    assert_eq!(summary["test_accuracy"], test["accuracy"]);
    assert_eq!(summary["best_epoch"], test["epoch"]);
    // The best epoch is the last one with the highest validation accuracy.
    let validation: Vec<f64> = records
        .iter()
        .filter(|r| r["split"] == "validation")
        .map(|r| r["accuracy"].as_f64().unwrap())
        .collect();
    let best = validation.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let best_epoch = validation.iter().rposition(|&a| a == best).unwrap() + 1;
    assert_eq!(summary["validation_accuracy"].as_f64(), Some(best));
    assert_eq!(summary["best_epoch"], best_epoch);

    let state = read_loop_state(&RunDir::at(run)).unwrap().unwrap();
    assert_eq!(state.epoch, epochs);
    assert_eq!(state.best_epoch as usize, best_epoch);
    assert!(json(&run.join("checkpoints/state.json"))["kernels"].is_string());

    let yaml: Value =
        topo::config::from_yaml(&std::fs::read_to_string(run.join("run.yaml")).unwrap()).unwrap();
    assert_eq!(yaml["id"], summary["run_id"]);
    assert_eq!(yaml["training"]["epochs"], epochs);

    let topography = json(&run.join("topography.json"));
    let layers = topography["layers"].as_array().unwrap();
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "conv1",
            "layer1.1.conv2",
            "layer2.1.conv2",
            "layer3.1.conv2",
            "layer4.1.conv2"
        ]
    );
}

#[test]
fn a_tiny_experiment_completes_every_run_and_a_second_run_trains_nothing() {
    let e = Experiment::new(&Spec {
        name: "tiny",
        topographies: "base, grid2d",
        lambda: "1",
        epochs: 3,
        pruning: "pruning: { methods: [l2], proportions: [0, 1] }",
    });
    let out = e.topo("run", "results", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 2 trained, 0 already done, 0 running elsewhere, 0 failed"),
        "{}",
        stderr(&out)
    );
    let runs = e.runs("results");
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let topographic = run
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("grid2d");
        check_complete(run, 3, topographic, true);
        let accuracy = json(&run.join("summary.json"))["test_accuracy"]
            .as_f64()
            .unwrap();
        // Chance is 10%.
        assert!(
            accuracy >= 0.3,
            "{}: test accuracy {accuracy}",
            run.display()
        );
        assert_eq!(pruning_rows(run).len(), 2);
    }
    let stamps: Vec<SystemTime> = runs
        .iter()
        .map(|r| {
            std::fs::metadata(r.join("metrics.jsonl"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();

    let again = e.topo("run", "results", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(": 0 trained, 2 already done, 0 running elsewhere, 0 failed"),
        "{}",
        stderr(&again)
    );
    for (run, stamp) in runs.iter().zip(&stamps) {
        let now = std::fs::metadata(run.join("metrics.jsonl"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(now, *stamp, "{} was rewritten", run.display());
    }
    let plan = e.plan("results");
    assert_eq!(plan["total"], 2);
    assert_eq!(plan["counts"]["done"], 2);
    let ids: Vec<&str> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "done", "{r}");
            r["id"].as_str().unwrap()
        })
        .collect();
    let folders: Vec<String> = runs
        .iter()
        .map(|r| r.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut ids: Vec<String> = ids.into_iter().map(String::from).collect();
    ids.sort();
    assert_eq!(ids, folders);
}

/// The epoch `state.json` says is committed, if any.
fn committed_epoch(run_root: &Path) -> Option<u64> {
    let runs = std::fs::read_dir(run_root).ok()?;
    for entry in runs {
        // A checkpoint being renamed into place may not read yet: try again later.
        if let Ok(Some(state)) = read_loop_state(&RunDir::at(&entry.ok()?.path())) {
            return Some(u64::from(state.epoch));
        }
    }
    None
}

/// Kills `child` with SIGKILL and reaps it.
fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Every tensor of a safetensors file, as f64 bit patterns (exact for f32 and u32).
fn tensor_bits(path: &Path) -> HashMap<String, Vec<u64>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t)| {
            let v = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
            (
                k,
                v.to_vec1::<f64>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn a_run_killed_mid_training_resumes_to_the_same_bits() {
    let e = Experiment::new(&Spec {
        name: "resume",
        topographies: "grid2d",
        lambda: "1",
        epochs: 3,
        pruning: "pruning: { methods: [l2], proportions: [0, 0.5] }",
    });
    // The uninterrupted run trains meanwhile, in its own process.
    let straight = e
        .command("run", "straight", &["--no-report"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // A kill at a random early moment (loading, building or the first epoch)...
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let early = Duration::from_millis(100 + u64::from(nanos % 1500));
    eprintln!("first kill after {early:?}");
    let child = e
        .command("run", "killed", &["--no-report"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(early);
    kill(child);
    // ...then one just after epoch 1 (or later) is committed.
    let run_root = e.results("killed").join("resume").join("runs");
    let child = e
        .command("run", "killed", &["--no-report"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_epoch(&run_root).is_none_or(|ep| ep < 1) {
        assert!(Instant::now() < deadline, "epoch 1 never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_after = committed_epoch(&run_root);
    kill(child);
    eprintln!("second kill after epoch {killed_after:?} was committed");
    let resumed = e.topo("run", "killed", &["--no-report"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    if killed_after < Some(3) {
        assert!(
            stderr(&resumed).contains("resuming after epoch"),
            "{}",
            stderr(&resumed)
        );
    }
    let straight = straight.wait_with_output().unwrap();
    assert!(straight.status.success(), "{}", stderr(&straight));

    let (a, b) = (&e.runs("straight")[0], &e.runs("killed")[0]);
    check_complete(b, 3, true, true);
    assert_eq!(
        metrics_without_timings(a),
        metrics_without_timings(b),
        "metrics differ after the resume"
    );
    let summary = |run: &Path| {
        let mut s = json(&run.join("summary.json"));
        // Timings, and the command and times of each session, differ by nature.
        s.as_object_mut().unwrap().remove("seconds");
        s.as_object_mut().unwrap().remove("provenance");
        s
    };
    assert_eq!(summary(a), summary(b));
    for f in ["best.safetensors", "last.safetensors"] {
        let (wa, wb) = (
            tensor_bits(&a.join("checkpoints").join(f)),
            tensor_bits(&b.join("checkpoints").join(f)),
        );
        assert_eq!(wa.len(), wb.len(), "{f}");
        for (name, bits) in &wa {
            assert!(wb.get(name) == Some(bits), "{f}: `{name}` differs");
        }
    }
    for f in ["pruning.csv", "topography.json"] {
        assert_eq!(
            std::fs::read_to_string(a.join(f)).unwrap(),
            std::fs::read_to_string(b.join(f)).unwrap(),
            "{f}"
        );
    }
    // The killed run's event file shows each epoch once, with the uninterrupted values.
    let scalars = |which: &str| {
        let events = read_tensorboard(&e.results(which).join(&e.name));
        let runs = events["runs"].as_object().unwrap().clone();
        assert_eq!(runs.len(), 1, "{which}: {runs:?}");
        let mut scalars = runs.into_iter().next().unwrap().1["scalars"].clone();
        let map = scalars.as_object_mut().unwrap();
        map.retain(|tag, _| !tag.ends_with("/images_per_second"));
        scalars
    };
    let (sa, sb) = (scalars("straight"), scalars("killed"));
    assert_eq!(sa, sb, "event files differ after the resume");
    assert_eq!(
        sb["train/loss"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3],
        "{sb}"
    );
}

#[test]
fn fail_fast_starts_no_run_after_the_first_failure() {
    let e = Experiment::new(&Spec {
        name: "fast",
        topographies: "grid2d, base",
        lambda: "1.0e+39",
        epochs: 1,
        pruning: "",
    });
    let out = e.topo("run", "results", &["--no-report", "--fail-fast"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("[1/2] fm_r_grid2d"), "{err}");
    assert!(err.contains("  failed: fm_r_grid2d"), "{err}");
    assert!(!err.contains("[2/2]"), "{err}");
    assert!(
        err.contains(": 0 trained, 0 already done, 0 running elsewhere, 1 failed"),
        "{err}"
    );
    assert!(err.contains("--fail-fast: 1 run(s) not started"), "{err}");
    assert_eq!(e.runs("results").len(), 1);
    // Without the flag the rest of the plan runs.
    let rest = e.topo("run", "results", &["--no-report"]);
    let err = stderr(&rest);
    assert!(
        err.contains(": 1 trained, 0 already done, 0 running elsewhere, 1 failed"),
        "{err}"
    );
}

#[test]
fn a_non_finite_loss_fails_its_run_only_and_retry_failed_tries_again() {
    // lambda 1e39 overflows f32: the weighted topographic loss is infinite at once.
    let e = Experiment::new(&Spec {
        name: "nan",
        topographies: "base, grid2d",
        lambda: "1.0e+39",
        epochs: 2,
        pruning: "",
    });
    let out = e.topo("run", "results", &["--no-report"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(": 1 trained, 0 already done, 0 running elsewhere, 1 failed"),
        "{err}"
    );
    assert!(err.contains("error: 1 run(s) failed"), "{err}");
    let runs = e.runs("results");
    let (base, grid) = (&runs[0], &runs[1]);
    assert!(
        grid.to_string_lossy().contains("grid2d"),
        "{}",
        grid.display()
    );
    let grid_id = grid.file_name().unwrap().to_str().unwrap();
    assert!(
        err.contains(&format!("  failed: {grid_id}: epoch 1: the ")),
        "{err}"
    );
    check_complete(base, 2, false, false);
    // The failure is told when it happens, before the summary, with the plan's counts.
    let told = err.find("  failed: ").unwrap();
    assert!(told < err.find(": 1 trained,").unwrap(), "{err}");
    assert!(
        err.contains("plan: 1 done, 0 failed, 1 pending; ETA "),
        "{err}"
    );
    assert!(err.contains("plan: 1 done, 1 failed, 0 pending\n"), "{err}");
    let summary = json(&grid.join("summary.json"));
    assert_eq!(summary["status"], "failed", "{summary}");
    assert_eq!(summary["failure"]["epoch"], 1, "{summary}");
    assert_eq!(summary["epochs_completed"], 0, "{summary}");
    let reason = summary["failure"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("epoch 1: the "), "{reason}");
    assert!(reason.contains("(not finite)"), "{reason}");
    assert!(!grid.join("lock").exists());
    let plan = e.plan("results");
    assert_eq!(plan["counts"]["done"], 1);
    assert_eq!(plan["counts"]["failed"], 1);

    // Without the flag the failure is reported again, nothing is trained.
    let again = e.topo("run", "results", &["--no-report"]);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(
        err.contains(": 0 trained, 1 already done, 0 running elsewhere, 1 failed"),
        "{err}"
    );
    assert!(
        err.contains("failed earlier (--retry-failed to try again)"),
        "{err}"
    );
    assert!(!err.contains(&format!("] {grid_id} (2 epochs)")), "{err}");

    // With it the run is tried again (and fails again the same way).
    let retry = e.topo("run", "results", &["--no-report", "--retry-failed"]);
    let err = stderr(&retry);
    assert_eq!(retry.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("[2/2] {grid_id} (2 epochs)")),
        "{err}"
    );
    assert!(
        err.contains(": 0 trained, 1 already done, 0 running elsewhere, 1 failed"),
        "{err}"
    );
    assert_eq!(json(&grid.join("summary.json"))["failure"]["epoch"], 1);
}

#[test]
fn only_runs_the_runs_named_and_an_unknown_id_is_a_usage_error() {
    let e = Experiment::new(&Spec {
        name: "only",
        topographies: "base, grid2d",
        lambda: "0.5, 1",
        epochs: 1,
        pruning: "",
    });
    let bad = e.topo("run", "results", &["--only", "no-such-run"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("error: no run `no-such-run` in "),
        "{}",
        stderr(&bad)
    );
    assert!(!e.results("results").join("only").join("runs").exists());

    let plan = e.plan("results");
    let ids: Vec<String> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    // Two ids, given against plan order.
    let out = e.topo(
        "run",
        "results",
        &["--no-report", "--only", &ids[2], "--only", &ids[1]],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = e.plan("results");
    let states: Vec<&str> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["new", "done", "done"]);
    let runs = e.runs("results");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| !r.ends_with(&ids[0])));
}

#[test]
fn pruning_every_tapped_channel_leaves_chance() {
    let e = Experiment::new(&Spec {
        name: "prune",
        topographies: "base",
        lambda: "1",
        epochs: 3,
        pruning: "pruning: { methods: [l2], proportions: [0, 1] }",
    });
    let out = e.topo("run", "results", &["--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = &e.runs("results")[0];
    let summary = json(&run.join("summary.json"));
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.3, "{accuracy}");
    let rows = pruning_rows(run);
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Nothing pruned: the best checkpoint's test accuracy.
    assert_eq!(rows[0], ("l2".into(), 0.0, 0, TAPPED_CHANNELS, accuracy));
    // Everything pruned: conv1 outputs zeros, every image gives the same logits, one
    // class is predicted for all, a tenth of a balanced test set.
    assert_eq!(
        rows[1],
        ("l2".into(), 1.0, TAPPED_CHANNELS, TAPPED_CHANNELS, 0.1)
    );

    // The weights themselves: every tapped conv is zero after pruning at 1.
    let model = ModelSpec {
        kind: ModelKind::Resnet18,
        width: 0.0625,
        taps: None,
        stem: Default::default(),
        init: None,
    };
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 9, DType::F32, &Device::Cpu);
    let net = build(&model, 1, 10, vb).unwrap();
    load_weights(
        &run.join("checkpoints/best.safetensors"),
        &varmap,
        &Device::Cpu,
    )
    .unwrap();
    let count = prune_varmap(&varmap, &net.tap_names(), 1.0, PruneMethod::L2, 0).unwrap();
    assert_eq!(
        (count.pruned, count.total),
        (TAPPED_CHANNELS, TAPPED_CHANNELS)
    );
    let data = varmap.data().lock().unwrap();
    for name in net.tap_names() {
        let w = data[&format!("{name}.weight")].as_tensor();
        let abs = w
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(abs, 0.0, "{name}");
    }
}

#[test]

fn added_pruning_points_alone_are_computed_for_a_done_run() {
    let spec = |pruning| Spec {
        name: "more",
        topographies: "base",
        lambda: "1",
        epochs: 1,
        pruning,
    };
    let e = Experiment::new(&spec("pruning: { methods: [l2], proportions: [0, 1] }"));
    let out = e.topo("run", "results", &["--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = &e.runs("results")[0];
    let rows = pruning_rows(run);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let modified = |f: &str| std::fs::metadata(run.join(f)).unwrap().modified().unwrap();
    let metrics_stamp = modified("metrics.jsonl");

    e.write(&spec(
        "pruning: { methods: [l2, random], proportions: [0, 0.5, 1] }",
    ));
    let out = e.topo("run", "results", &["--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new_rows = pruning_rows(run);
    assert_eq!(new_rows.len(), 6, "{new_rows:?}");
    // Sorted by method then proportion; the old rows kept exactly.
    assert_eq!(new_rows[0], rows[0]);
    assert_eq!(new_rows[2], rows[1]);
    assert_eq!((new_rows[1].1, new_rows[1].2), (0.5, TAPPED_CHANNELS / 2));
    assert!(
        new_rows[3..].iter().all(|r| r.0 == "random"),
        "{new_rows:?}"
    );
    // Training was not redone.
    assert_eq!(modified("metrics.jsonl"), metrics_stamp);
    assert_eq!(e.plan("results")["counts"]["done"], 1);
}

#[test]
fn topo_analyse_redoes_analyses_that_no_longer_stand_and_skips_the_rest() {
    let e = Experiment::new(&Spec {
        name: "analysed",
        topographies: "grid2d",
        lambda: "1",
        epochs: 1,
        pruning: "",
    });
    let out = e.topo("run", "results", &["--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = &e.runs("results")[0];
    let analyses = || json(&run.join("analyses.json"));
    assert_eq!(analyses()["permutations"], 200);
    let folder = e.results("results").join(&e.name);
    let analyse = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_topo"))
            .current_dir(e.dir.path())
            .arg("analyse")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let dir = folder.to_str().unwrap();
    // Standing analyses are skipped; a results folder is enough to find the runs.
    let said = analyse(&[dir, "--no-report"]);
    assert!(said.contains(": 0 analysed, 1 already current"), "{said}");
    // Other settings: redone, from the checkpoint, without training.
    let metrics = std::fs::metadata(run.join("metrics.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    let said = analyse(&[dir, "--set", "analyses.permutations=20", "--no-report"]);
    assert!(said.contains(": 1 analysed, 0 already current"), "{said}");
    assert_eq!(analyses()["permutations"], 20);
    let said = analyse(&[
        dir,
        "--set",
        "analyses.permutations=20",
        "--force",
        "--responses",
    ]);
    assert!(said.contains(": 1 analysed"), "{said}");
    assert!(run.join("responses.safetensors").is_file());
    // `topo run` with the file's own settings redoes them too, and drops the stale responses.
    std::fs::remove_file(run.join("analyses.json")).unwrap();
    let out = e.topo("run", "results", &["--no-report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("done; computing its analyses"),
        "{}",
        stderr(&out)
    );
    assert_eq!(analyses()["permutations"], 200);
    assert!(!run.join("responses.safetensors").exists());
    let now = std::fs::metadata(run.join("metrics.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(now, metrics, "training was not redone");
    // The report shows the tables, the maps and the curves.
    analyse(&[dir]);
    let index = std::fs::read_to_string(folder.join("report/index.md")).unwrap();
    assert!(index.contains("### Are the maps real?"), "{index}");
    let figures: Vec<String> = std::fs::read_dir(folder.join("report/figures"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for prefix in ["orientation_", "curves_orientation_", "curves_dprime_"] {
        assert!(
            figures
                .iter()
                .any(|f| f.starts_with(prefix) && f.ends_with(".png")),
            "{prefix}*.png in {figures:?}"
        );
    }
}

#[test]
fn a_measure_a_data_set_cannot_take_is_refused_once_naming_both() {
    let e = Experiment::new(&Spec {
        name: "refused",
        topographies: "base",
        lambda: "1",
        epochs: 1,
        pruning: "analyses: { measures: [category, tonotopy] }",
    });
    let out = e.topo("validate", "results", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert_eq!(said.matches("`tonotopy` needs audio").count(), 1, "{said}");
    assert!(
        said.contains("`fm` (Fashion-MNIST)") && said.contains("refused.yaml:"),
        "{said}"
    );
    assert!(said.contains("analyses.measures"), "{said}");
}

#[test]

fn a_non_finite_failure_reports_a_non_finite_value() {
    let e = Experiment::new(&Spec {
        name: "overflow",
        topographies: "grid2d",
        lambda: "1.0e+39",
        epochs: 1,
        pruning: "",
    });
    let out = e.topo("run", "results", &["--no-report"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary = json(&e.runs("results")[0].join("summary.json"));
    let reason = summary["failure"]["reason"].as_str().unwrap();
    let value = reason
        .split(" loss is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no value in {reason:?}"));
    let value: f64 = value.parse().unwrap();
    assert!(!value.is_finite(), "{reason}");
}

/// A deterministic batch of `n` 28x28 one-channel images and labels.
fn batch(n: usize) -> (Tensor, Tensor) {
    let pixels: Vec<f32> = (0..n * 28 * 28)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5)
        .collect();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    (
        Tensor::from_vec(pixels, (n, 1, 28, 28), &Device::Cpu).unwrap(),
        Tensor::from_vec(labels, n, &Device::Cpu).unwrap(),
    )
}

fn var_bits(varmap: &VarMap) -> HashMap<String, Vec<u32>> {
    let data = varmap.data().lock().unwrap();
    data.iter()
        .map(|(k, v)| {
            let t = v.as_tensor().flatten_all().unwrap();
            (
                k.clone(),
                t.to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect(),
            )
        })
        .collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_checkpoint_round_trip_restores_weights_statistics_momenta_and_state() {
    let device = Device::Cpu;
    let spec = ModelSpec {
        kind: ModelKind::Resnet18,
        width: 0.0625,
        taps: None,
        stem: Default::default(),
        init: None,
    };
    let varmap = VarMap::new();
    let model = build(
        &spec,
        1,
        10,
        seeded_var_builder(&varmap, 1, DType::F32, &device),
    )
    .unwrap();
    let mut sgd = Sgd::new(
        trainable_vars(&varmap),
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
        },
    );
    let (x, y) = batch(8);
    for _ in 0..2 {
        let out = model.forward_t(&x, true).unwrap();
        let loss = candle_nn::loss::cross_entropy(&out.logits, &y).unwrap();
        sgd.step(&loss.backward().unwrap()).unwrap();
    }
    let saved = var_bits(&varmap);
    // The batch-norm statistics moved away from their initial 0 and 1.
    let running_var = &saved["bn1.running_var"];
    assert!(running_var.iter().any(|&b| b != 1f32.to_bits()));
    let momenta = sgd.momenta();
    assert_eq!(momenta.len(), trainable_vars(&varmap).len());

    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::at(dir.path());
    std::fs::create_dir_all(run.checkpoints()).unwrap();
    let state = LoopState {
        epoch: 7,
        best_epoch: 5,
        best_accuracy: 0.123_456_789_012_345_67,
    };
    save_last(&run, &varmap, momenta.clone(), state).unwrap();

    let fresh = VarMap::new();
    build(
        &spec,
        1,
        10,
        seeded_var_builder(&fresh, 2, DType::F32, &device),
    )
    .unwrap();
    assert_ne!(var_bits(&fresh)["conv1.weight"], saved["conv1.weight"]);
    let resumed = load_last(&run, &fresh, &device).unwrap();
    assert_eq!(var_bits(&fresh), saved);
    assert_eq!(resumed.state, state);
    let mut got: Vec<(String, Vec<u32>)> = resumed
        .momenta
        .iter()
        .map(|(n, t)| (n.clone(), bits(t)))
        .collect();
    let mut want: Vec<(String, Vec<u32>)> =
        momenta.iter().map(|(n, t)| (n.clone(), bits(t))).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // The restored momenta fit the optimiser of the fresh weights.
    Sgd::new(
        trainable_vars(&fresh),
        SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
        },
    )
    .load_momenta(resumed.momenta)
    .unwrap();
    // The header alone gives the state back, to the bit.
    assert_eq!(read_loop_state(&run).unwrap(), Some(state));

    // A checkpoint written before the state moved into the header (as one-element
    // tensors) still resumes.
    let mut legacy = candle_core::safetensors::load(run.last_checkpoint(), &device).unwrap();
    legacy.insert(
        "__state.epoch".into(),
        Tensor::new(&[3u32], &device).unwrap(),
    );
    legacy.insert(
        "__state.best_epoch".into(),
        Tensor::new(&[2u32], &device).unwrap(),
    );
    legacy.insert(
        "__state.best_accuracy".into(),
        Tensor::new(&[0.5f64], &device).unwrap(),
    );
    candle_core::safetensors::save(&legacy, run.last_checkpoint()).unwrap();
    let old = load_last(&run, &fresh, &device).unwrap();
    assert_eq!(
        old.state,
        LoopState {
            epoch: 3,
            best_epoch: 2,
            best_accuracy: 0.5
        }
    );
    assert_eq!(old.momenta.len(), momenta.len());
    save_last(&run, &varmap, momenta.clone(), state).unwrap();

    // A checkpoint of another model is refused, naming what is missing.
    let wider = VarMap::new();
    let wider_spec = ModelSpec {
        kind: ModelKind::Vgg16Bn,
        width: 0.0625,
        taps: None,
        stem: Default::default(),
        init: None,
    };
    build(
        &wider_spec,
        1,
        10,
        seeded_var_builder(&wider, 3, DType::F32, &device),
    )
    .unwrap();
    let err = load_last(&run, &wider, &device).err().unwrap().to_string();
    assert!(err.contains("last.safetensors: no weights for `"), "{err}");
}
