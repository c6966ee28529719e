//! The preflight of `topo run` and `topo validate --data`: a mistake every run would hit
//! is reported once, before anything runs, with exit 2 and nothing recorded.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::fixtures::{write_fashion_mnist, write_speech_commands};

use super::common::{BIN, topo_command};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn error_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn table1_without_its_data_exits_2_with_one_message_per_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cifar10 = tmp.path().join("cifar-10-batches-bin");
    let cifar100 = tmp.path().join("cifar-100-binary");
    let out = std::process::Command::new(BIN)
        .current_dir(repo)
        .args(["run", "experiments/table1.yaml", "--results"])
        .arg(&results)
        .arg("--set")
        .arg(format!("datasets.cifar10.root={}", cifar10.display()))
        .arg("--set")
        .arg(format!("datasets.cifar100.root={}", cifar100.display()))
        .env_remove("TOPO_RESULTS_ROOT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 2, "{}", stderr(&out));
    assert!(errors[0].starts_with(&format!(
        "error: CIFAR-10: {} is missing the folder; expected there: data_batch_1.bin",
        cifar10.display()
    )));
    assert!(
        errors[0].contains("cifar-10-binary.tar.gz"),
        "{}",
        errors[0]
    );
    assert!(errors[1].starts_with(&format!(
        "error: CIFAR-100: {} is missing the folder",
        cifar100.display()
    )));
    assert!(
        stderr(&out).ends_with(
            "2 problems found before any run started; nothing was trained or recorded\n"
        ),
        "{}",
        stderr(&out)
    );
    // Nothing recorded: no run folder, no resolved experiment.
    assert!(!results.join("table1/runs").exists());
    assert!(!results.join("table1/experiment.resolved.yaml").exists());
}

/// A folder with a SpeechCommands fixture and a two-run experiment on it.
fn speech_experiment(dir: &Path, layout: &str) -> PathBuf {
    let root = dir.join("sc");
    write_speech_commands(&root, &["yes", "no"], [3, 1, 1]).unwrap();
    let yaml = dir.join("speech.yaml");
    std::fs::write(
        &yaml,
        format!(
            "name: speech
datasets:
  sc: {{ kind: speech_commands, root: {} }}
models:
  r: {{ kind: resnet18, width: 0.0625 }}
topographies:
  base: {{ kind: none }}
  mine: {{ layout: {layout} }}
grid:
  dataset: [sc]
  model: [r]
  topography: [base, mine]
  lambda: [1]
  seed: [0]
training: {{ epochs: 1, batch_size: 4 }}
",
            root.display()
        ),
    )
    .unwrap();
    yaml
}

#[test]
fn every_corrupt_clip_and_a_short_layout_file_are_named_once_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = speech_experiment(tmp.path(), "{ file: mine.csv }");
    // Two layout rows for layers of 4 to 32 channels.
    std::fs::write(tmp.path().join("mine.csv"), "x,y\n0,0\n1,1\n").unwrap();
    let bad = [
        tmp.path().join("sc/yes/00000001_nohash_0.wav"),
        tmp.path().join("sc/no/00000004_nohash_0.wav"),
    ];
    for b in &bad {
        std::fs::write(b, b"not a wav at all").unwrap();
    }
    let results = tmp.path().join("results");
    let run = topo_command(tmp.path(), &yaml, "run", &results, &[])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    let errors = error_lines(&run);
    assert_eq!(errors.len(), 3, "{}", stderr(&run));
    for b in &bad {
        let line = format!(
            "error: {}: not a WAV file (expected `RIFF....WAVE` at the start)",
            b.display()
        );
        assert_eq!(
            errors.iter().filter(|e| **e == line).count(),
            1,
            "{errors:?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("mine.csv") && e.contains('2')),
        "{errors:?}"
    );
    assert!(!results.join("speech/runs").exists());

    // `validate --data` runs the same checks without a results folder.
    let validate = topo_command(tmp.path(), &yaml, "validate", &results, &["--data"])
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(2));
    assert_eq!(error_lines(&validate), errors);

    // Mended, the data checks pass (and `validate` without `--data` never read them).
    let good = tmp.path().join("good");
    write_speech_commands(&good, &["yes", "no"], [3, 1, 1]).unwrap();
    for b in &bad {
        let rel = b.strip_prefix(tmp.path().join("sc")).unwrap();
        std::fs::copy(good.join(rel), b).unwrap();
    }
    let rows: String = (0..32).map(|i| format!("{i},{}\n", i % 3)).collect();
    std::fs::write(tmp.path().join("mine.csv"), format!("x,y\n{rows}")).unwrap();
    let validate = topo_command(tmp.path(), &yaml, "validate", &results, &["--data"])
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(0), "{}", stderr(&validate));
    assert!(String::from_utf8_lossy(&validate.stdout).ends_with("ok (2 runs, data checked)\n"));
}

#[test]
fn an_unwritable_results_folder_is_a_preflight_problem() {
    let tmp = tempfile::tempdir().unwrap();
    write_fashion_mnist(&tmp.path().join("fm"), 3, 2, false).unwrap();
    let yaml = tmp.path().join("fm.yaml");
    std::fs::write(
        &yaml,
        format!(
            "name: fm
datasets:
  fm: {{ kind: fashion_mnist, root: {} }}
models:
  r: {{ kind: resnet18, width: 0.0625 }}
topographies:
  base: {{ kind: none }}
grid: {{ dataset: [fm], model: [r], topography: [base], seed: [0] }}
training: {{ epochs: 1, batch_size: 4 }}
",
            tmp.path().join("fm").display()
        ),
    )
    .unwrap();
    // A file where the results folder should be (root ignores permission bits).
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let results = blocker.join("results");
    let out = topo_command(tmp.path(), &yaml, "run", &results, &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    assert!(
        errors[0].starts_with(&format!(
            "error: {}: the results folder cannot be created",
            results.join("fm").display()
        )),
        "{}",
        errors[0]
    );
}

#[test]
fn a_run_begun_on_other_kernels_is_not_resumed_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    write_fashion_mnist(&tmp.path().join("data"), 3, 2, false).unwrap();
    let yaml = tmp.path().join("k.yaml");
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny.yaml");
    std::fs::write(
        &yaml,
        format!(
            "extends: {}\nname: k\ngrid: {{ topography: [base] }}\ntraining: {{ epochs: 1 }}\n",
            tiny.display()
        ),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let run = |extra: &[&str]| {
        let mut args = vec!["--no-report"];
        args.extend_from_slice(extra);
        topo_command(tmp.path(), &yaml, "run", &results, &args)
            .output()
            .unwrap()
    };
    let first = run(&["--kernels", "candle"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("k/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs[0].join("checkpoints/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["kernels"], "candle");
    // Interrupted, as far as `topo run` can tell: no summary yet.
    std::fs::remove_file(runs[0].join("summary.json")).unwrap();

    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let errors = error_lines(&refused);
    assert_eq!(errors.len(), 1, "{}", stderr(&refused));
    assert!(
        errors[0].contains("began on the candle kernels, now asked to resume on the fast ones")
            && errors[0].contains("--kernels candle"),
        "{}",
        errors[0]
    );
    assert!(!runs[0].join("summary.json").exists());

    let resumed = run(&["--kernels", "candle"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(runs[0].join("summary.json").exists());
    std::fs::remove_file(runs[0].join("summary.json")).unwrap();
    let allowed = run(&["--allow-kernel-change"]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}

/// VGG-16's five 2 x 2 pools cannot take Fashion-MNIST's 28 x 28 images: said once for
/// the pair, before anything trains, while the ResNet-18 of the same experiment passes.
#[test]
fn a_model_too_deep_for_the_inputs_is_refused_before_training() {
    let tiny = super::common::TinyExperiment::new(
        "too_deep",
        "models: { vgg: { kind: vgg16_bn, width: 0.0625 } }\ngrid: { model: [r, vgg] }\n",
    );
    let out = tiny.expect("run", &[], 2);
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    let line = &errors[0];
    for part in [
        "model `vgg`",
        "data set `fm`",
        "1 x 28 x 28",
        "the 2 run(s)",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    assert!(!tiny.results.join("too_deep/runs").exists());
}
