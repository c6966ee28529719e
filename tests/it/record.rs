//! The typed run record: `summary.json` says what a run is (its resolved data set,
//! model, topography and recipe) and where it came from (build, machine, command), the
//! report reads nothing else, and `topo plan` marks a run another build produced.

use serde_json::Value;

use super::common::TinyExperiment;

fn summaries(tiny: &TinyExperiment) -> Vec<(std::path::PathBuf, Value)> {
    let runs = tiny.results.join("record/runs");
    let mut out: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| {
            let dir = e.unwrap().path();
            let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
            (dir, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_summary_holds_the_runs_identity_and_provenance_and_the_report_needs_nothing_else() {
    let tiny = TinyExperiment::new("record", "training: { epochs: 1 }\n");
    tiny.expect("run", &["--no-report"], 0);
    let runs = summaries(&tiny);
    assert_eq!(runs.len(), 2);
    let mut probes = Vec::new();
    for (dir, _) in &runs {
        // The measures read a class-balanced probe set, kept with the record: the
        // fixture's test split has 5 examples of each of 10 classes, so all 50.
        let text = std::fs::read_to_string(dir.join("topography.json")).unwrap();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        let probe = &record["probe"];
        assert_eq!(probe["per_class"], 50, "{probe}");
        assert_eq!(probe["indices"].as_array().unwrap().len(), 50, "{probe}");
        // Read where the field reads responses, after batch norm and ReLU, by default.
        assert_eq!(record["at"], "relu");
        // d′ of each of the 10 classes for every channel of every layer, in the analyses.
        let text = std::fs::read_to_string(dir.join("analyses.json")).unwrap();
        let analyses: serde_json::Value = serde_json::from_str(&text).unwrap();
        for layer in analyses["layers"].as_array().unwrap() {
            let maps = layer["maps"].as_array().unwrap();
            let dprime: Vec<_> = maps
                .iter()
                .filter(|m| m["map"]["kind"] == "dprime")
                .collect();
            assert_eq!(dprime.len(), 10, "{layer}");
            let channels = layer["channels"].as_u64().unwrap() as usize;
            assert!(
                dprime
                    .iter()
                    .all(|m| m["values"].as_array().unwrap().len() == channels)
            );
        }
        probes.push(probe.clone());
    }
    assert_eq!(probes[0], probes[1], "every run reads the same examples");
    for (dir, s) in &runs {
        let id = &s["identity"];
        assert_eq!(id["dataset"]["kind"], "fashion_mnist", "{s:#}");
        assert_eq!(id["model"]["kind"], "resnet18", "{s:#}");
        assert_eq!(id["training"]["epochs"], 1, "{s:#}");
        let kind = id["topography"]["kind"].as_str().unwrap();
        assert_eq!(kind == "none", s["axes"]["lambda"].is_null(), "{s:#}");
        let p = &s["provenance"];
        assert_eq!(p["topo"], env!("CARGO_PKG_VERSION"));
        assert_eq!(p["kernels"], "fast");
        assert_eq!(p["device"], "cpu");
        assert!(["avx512", "avx2", "portable"].contains(&p["isa"].as_str().unwrap()));
        assert!(!p["host"].as_str().unwrap().is_empty());
        let command: Vec<&str> = p["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(command.get(1), Some(&"run"), "{command:?}");
        let (started, ended) = (p["started"].as_str().unwrap(), p["ended"].as_str().unwrap());
        assert!(started.len() == 20 && started.ends_with('Z') && started <= ended);
        // Built from this checkout: its commit, when git can tell.
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match head {
            Some(head) => assert_eq!(p["git"]["commit"], head.as_str(), "{p:#}"),
            None => assert!(p["git"].is_null(), "{p:#}"),
        }
        assert!(
            s.get("versions").is_none(),
            "the versions live in the provenance"
        );
        // The report reads the summary alone.
        std::fs::remove_file(dir.join("run.yaml")).unwrap();
    }
    let out = std::process::Command::new(super::common::BIN)
        .arg("report")
        .arg(tiny.results.join("record"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(tiny.results.join("record/report/index.md")).unwrap();
    assert!(index.contains("grid2d (2D grid)"), "{index}");
    assert!(!index.contains("Unreadable"), "{index}");

    // A run another build produced is marked, not trained again.
    let plan = |format: &str| tiny.expect("plan", &["--format", format], 0).stdout;
    let text = String::from_utf8(plan("text")).unwrap();
    assert!(!text.contains("other build"), "{text}");
    let (dir, mut s) = runs.into_iter().next().unwrap();
    s["provenance"]["git"] = serde_json::json!({ "commit": "0123456789abcdef", "dirty": false });
    s["provenance"]["kernels"] = "candle".into();
    std::fs::write(dir.join("summary.json"), s.to_string()).unwrap();
    let text = String::from_utf8(plan("text")).unwrap();
    assert!(
        text.contains("done (other build: ") && text.contains("kernels candle -> fast"),
        "{text}"
    );
    assert!(
        text.contains("1 done run came from another build"),
        "{text}"
    );
    let json: Value = serde_json::from_slice(&plan("json")).unwrap();
    let marked: Vec<&Value> = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("other_build").is_some())
        .collect();
    assert_eq!(marked.len(), 1, "{json:#}");
    let out = tiny.expect("run", &["--no-report"], 0);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("epochs)"), "nothing trains again: {log}");
}

/// `analyses:` chooses the probe's size and the response point; the report says both.
#[test]
fn the_analyses_section_sets_the_probe_and_the_response_point() {
    let tiny = TinyExperiment::new(
        "probe",
        "training: { epochs: 1 }\nanalyses: { probe: { per_class: 3 }, at: conv }\n",
    );
    tiny.expect("run", &[], 0);
    let runs = tiny.results.join("probe/runs");
    for entry in std::fs::read_dir(&runs).unwrap() {
        let dir = entry.unwrap().path();
        let text = std::fs::read_to_string(dir.join("topography.json")).unwrap();
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(record["at"], "conv");
        assert_eq!(record["probe"]["per_class"], 3);
        assert_eq!(record["probe"]["indices"].as_array().unwrap().len(), 30);
    }
    let report = std::fs::read_to_string(tiny.results.join("probe/report/index.md")).unwrap();
    assert!(report.contains("3 examples per class"), "{report}");
    assert!(report.contains("outputs before batch norm"), "{report}");
}
