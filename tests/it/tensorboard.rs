//! The event files a run writes, read back with TensorBoard's own reader: one run per
//! run folder, every scalar of `metrics.jsonl` at its epoch, the configuration as text.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::common::{TinyExperiment, read_tensorboard};

/// `metrics.jsonl`'s fields and the tag each becomes (`<split>/<tag>`).
const FIELDS: [(&str, &str); 6] = [
    ("loss", "loss"),
    ("ce", "cross_entropy"),
    ("accuracy", "accuracy"),
    ("topo", "topographic"),
    ("lr", "learning_rate"),
    ("lambda", "lambda"),
];

fn scalar(scalars: &Value, tag: &str, step: u64) -> f64 {
    let points = scalars[tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar `{tag}` in {scalars}"));
    let at: Vec<f64> = points
        .iter()
        .filter(|p| p[0].as_u64() == Some(step))
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(at.len(), 1, "`{tag}` at step {step}: {points:?}");
    at[0]
}

fn check_run(run: &Path, events: &Value) {
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let logged = &events["runs"][format!("runs/{id}")];
    assert!(logged.is_object(), "run {id} missing from {events}");
    let scalars = &logged["scalars"];
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let mut checked = 0;
    for line in metrics.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let split = record["split"].as_str().unwrap();
        let step = record["epoch"].as_u64().unwrap();
        let mut expected: Vec<(String, f64)> = FIELDS
            .iter()
            .filter_map(|(field, tag)| {
                record[field]
                    .as_f64()
                    .map(|v| (format!("{split}/{tag}"), v))
            })
            .collect();
        if let Some(layers) = record["topo_layers"].as_object() {
            expected.extend(
                layers
                    .iter()
                    .map(|(l, v)| (format!("{split}/topographic/{l}"), v.as_f64().unwrap())),
            );
        }
        expected.push((
            format!("{split}/images_per_second"),
            record["images_per_second"].as_f64().unwrap(),
        ));
        for (tag, want) in expected {
            let got = scalar(scalars, &tag, step);
            // Scalars are stored as f32.
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{id} {tag} at {step}: {got} against {want}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{id}: only {checked} scalars checked");
    // Every tag holds as many points as its split has records: no epoch twice.
    for (tag, points) in scalars.as_object().unwrap() {
        let split = tag.split('/').next().unwrap();
        let records = metrics
            .lines()
            .filter(|l| l.contains(&format!("\"split\":\"{split}\"")))
            .count();
        assert_eq!(points.as_array().unwrap().len(), records, "{id} {tag}");
    }
    let config = logged["text"]["config"].as_str().unwrap();
    let yaml = std::fs::read_to_string(run.join("run.yaml")).unwrap();
    assert!(config.contains(yaml.trim()), "{id}: config text {config}");
}

#[test]
fn tensorboard_reads_every_run_its_scalars_and_its_config() {
    let tiny = TinyExperiment::new("tb", "");
    tiny.expect("run", &["--no-report"], 0);
    let experiment = tiny.results.join("tb");
    let events = read_tensorboard(&experiment);
    let mut runs: Vec<PathBuf> = std::fs::read_dir(experiment.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2);
    assert_eq!(events["runs"].as_object().unwrap().len(), 2, "{events}");
    for run in &runs {
        check_run(run, &events);
    }
    // The topographic run logs each tapped layer's loss.
    let grid = &events["runs"][format!("runs/{}", runs[1].file_name().unwrap().to_string_lossy())]
        ["scalars"];
    assert!(grid["train/topographic/conv1"].is_array(), "{grid}");
}

/// The ids `topo plan` gives a tiny experiment whose 2D grid has `schedule` (a line of
/// YAML, or nothing).
fn planned_ids(schedule: &str) -> Vec<String> {
    let body = format!(
        "topographies:\n  grid2d: {{ layout: grid, dimension: 2{schedule} }}\ngrid:\n  topography: [grid2d]\n"
    );
    let tiny = TinyExperiment::new("ids", &body);
    let out = tiny.expect("plan", &["--format", "json"], 0);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_lambda_schedule_changes_the_weight_each_epoch_shows_it_and_alone_changes_the_id() {
    let body = "topographies:
  warm: { layout: grid, dimension: 2, lambda_schedule: { kind: linear_warmup, epochs: 2 } }
grid:
  topography: [warm]
  lambda: [0.5]
training: { epochs: 3 }
";
    let tiny = TinyExperiment::new("warm", body);
    tiny.expect("run", &["--no-report"], 0);
    let experiment = tiny.results.join("warm");
    let run = std::fs::read_dir(experiment.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let records: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 0.5 ramped over 2 epochs: a quarter after the first, the whole from the second on.
    for r in &records {
        // The test record carries its best epoch, and that epoch's lambda.
        let want = if r["epoch"].as_u64() == Some(1) {
            0.25
        } else {
            0.5
        };
        let lambda = r["lambda"].as_f64().unwrap();
        assert!((lambda - want).abs() < 1e-12, "{r}");
        // The loss weighs the topographic term by the epoch's lambda.
        let (ce, topo, loss) = (
            r["ce"].as_f64().unwrap(),
            r["topo"].as_f64().unwrap(),
            r["loss"].as_f64().unwrap(),
        );
        assert!((loss - (ce + lambda * topo)).abs() < 1e-9, "{r}");
    }
    let events = read_tensorboard(&experiment);
    check_run(&run, &events);
    // A constant schedule said out loud keeps the id of a file that does not say it; a
    // ramp gives another.
    let plain = planned_ids("");
    assert_eq!(planned_ids(", lambda_schedule: { kind: constant }"), plain);
    assert_ne!(
        planned_ids(", lambda_schedule: { kind: cosine, epochs: 1 }"),
        plain
    );
}

#[test]
fn a_ramp_longer_than_training_is_refused_where_it_is_written() {
    let body = "topographies:
  warm: { layout: grid, dimension: 2, lambda_schedule: { kind: cosine, epochs: 5 } }
grid:
  topography: [warm]
";
    let tiny = TinyExperiment::new("long", body);
    let out = tiny.expect("validate", &[], 2);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("topographies.warm.lambda_schedule.epochs")
            && said.contains("the ramp takes 5 epochs and training 2")
            && said.contains("long.yaml:"),
        "{said}"
    );
}
