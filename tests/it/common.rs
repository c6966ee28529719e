//! Helpers shared by the tests that drive the `topo` binary.

use std::path::Path;

use serde_json::Value;
use std::process::Command;

/// The tiny experiment every test that trains extends (`extends: <this path>`).
pub fn tiny_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny.yaml")
        .display()
        .to_string()
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_topo");

/// `topo <command> <yaml> --results <results> <extra>`, run from `dir`.
pub fn topo_command(
    dir: &Path,
    yaml: &Path,
    command: &str,
    results: &Path,
    extra: &[&str],
) -> Command {
    let mut c = Command::new(BIN);
    c.arg(command)
        .arg(yaml)
        .arg("--results")
        .arg(results)
        .args(extra)
        .current_dir(dir);
    c
}

/// Runs `script` in python3 with the repository's `python/` package importable and
/// `args` as `sys.argv[1:]`; panics with its output unless it succeeds, else returns stdout.
pub fn python_with_topo_torch(script: &str, args: &[&Path]) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let out = Command::new("python3")
        .env("PYTHONPATH", &python)
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// The fields of a metrics record that depend on the machine's speed.
pub const TIMINGS: [&str; 3] = ["seconds", "images_per_second", "wall_time"];

/// A record with its timings removed.
pub fn without_timings(mut record: Value) -> Value {
    if let Some(map) = record.as_object_mut() {
        for key in TIMINGS {
            map.remove(key);
        }
    }
    record
}

/// A run's `metrics.jsonl` records, timings removed: equal for two runs that trained alike.
pub fn metrics_without_timings(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| without_timings(serde_json::from_str(l).unwrap()))
        .collect()
}

/// The largest absolute value of a tensor of any float type and shape.
pub fn max_abs(t: &candle_core::Tensor) -> f64 {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// The largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// What TensorBoard's own reader (its event multiplexer, as `tensorboard --logdir`
/// loads it) finds under `logdir`: `{"runs": {run: {"scalars": {tag: [[step, value]]},
/// "text": {tag: text}}}}`. Needs the `tensorboard` package (`just test` installs it).
pub fn read_tensorboard(logdir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tensorboard_read.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(logdir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "TensorBoard's reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A temporary folder with the Fashion-MNIST fixture in `data/`, an experiment file
/// extending the tiny one (`name:` plus `body`), and `results/`.
pub struct TinyExperiment {
    pub dir: tempfile::TempDir,
    pub yaml: std::path::PathBuf,
    pub results: std::path::PathBuf,
}

impl TinyExperiment {
    pub fn new(name: &str, body: &str) -> TinyExperiment {
        let dir = tempfile::tempdir().unwrap();
        super::fixtures::write_fashion_mnist(&dir.path().join("data"), 30, 5, false).unwrap();
        let yaml = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &yaml,
            format!("extends: {}\nname: {name}\n{body}", tiny_yaml()),
        )
        .unwrap();
        let results = dir.path().join("results");
        TinyExperiment { dir, yaml, results }
    }

    /// `topo <command> FILE --results results/ <extra>`.
    pub fn command(&self, command: &str, extra: &[&str]) -> Command {
        topo_command(self.dir.path(), &self.yaml, command, &self.results, extra)
    }

    /// The same, run to its end; panics with its stderr unless it exits `code`.
    pub fn expect(&self, command: &str, extra: &[&str], code: i32) -> std::process::Output {
        let out = self.command(command, extra).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "topo {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}
