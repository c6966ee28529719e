//! The event files a run writes, read back with TensorBoard's own reader: one run per
//! run folder, every scalar of `metrics.jsonl` at its epoch, the configuration as text.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::common::{TinyExperiment, read_tensorboard};

/// `metrics.jsonl`'s fields and the tag each becomes (`<split>/<tag>`).
const FIELDS: [(&str, &str); 5] = [
    ("loss", "loss"),
    ("ce", "cross_entropy"),
    ("accuracy", "accuracy"),
    ("topo", "topographic"),
    ("lr", "learning_rate"),
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
