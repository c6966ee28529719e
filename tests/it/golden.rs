//! Behaviour pinned before the source is reorganised: run ids of every shipped
//! experiment (a new defaulted field or a changed hash would orphan every result on
//! disk), and the records of one tiny run. gemm's AVX-512 and AVX2 kernels block their
//! sums differently, and two epochs at lr 0.05 amplify that rounding past any useful
//! tolerance, so the records are kept per instruction set (`tests/fixtures/golden/avx2`,
//! `.../avx512`). `BLESS_GOLDEN=1` rewrites the sets the tests ran: after a change that
//! is meant to alter training, or to add a set for a new instruction set.
//!
//! An AVX-512 machine checks and blesses both sets: the AVX2 one by running `topo` under
//! QEMU's Haswell model (`qemu-x86_64 -cpu Haswell`, no AVX-512), whose fused
//! multiply-adds round once, as the hardware's do: it reproduced the set blessed on a
//! real AVX2 machine within this test's tolerance, so its records stand for one. QEMU 7.2
//! has no AVX-512, so an AVX2 machine checks its own set only. Each set is picked by the
//! instruction set the run recorded.

use std::path::Path;

use super::fixtures::write_fashion_mnist;
use serde_json::Value;

use super::common::{metrics_without_timings, topo_command};

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn shipped_experiments_keep_their_run_ids() {
    let pinned: [(&str, &[(usize, &str)]); 4] = [
        (
            "quickstart",
            &[
                (0, "fmnist_resnet18_narrow_base_s0-9e3a0d2b"),
                (1, "fmnist_resnet18_narrow_grid2d_l1_s0-99c02249"),
            ],
        ),
        (
            "table1",
            &[
                (0, "cifar10_densenet121_grid2d_l1e-5_s0-cd755554"),
                (1, "cifar10_densenet121_grid2d_l1e-5_s1-5c27aae9"),
                (730, "cifar10_vgg16_bn_grid2d_l1e-5_s0-3490fb8e"),
                (1095, "cifar100_densenet121_grid2d_l1e-5_s0-1426bd0c"),
                (2189, "cifar100_vgg16_bn_base_s4-8b647556"),
            ],
        ),
        (
            // Changed once, on purpose: audio runs name their normalisation since it
            // became the reference's (per clip), so no result of the old one is reused.
            "table2",
            &[
                (0, "speech_commands_densenet121_grid2d_l1e-5_s0-c8dee132"),
                (1, "speech_commands_densenet121_grid2d_l1e-5_s1-de5397fe"),
                (730, "speech_commands_vgg16_bn_grid2d_l1e-5_s0-a399851a"),
                (1095, "bird_dcase_densenet121_grid2d_l1e-5_s0-fe9e3e4c"),
                (2189, "bird_dcase_vgg16_bn_base_s4-38b402a5"),
            ],
        ),
        (
            "pruning",
            &[
                (0, "cifar10_resnet18_grid2d_l1_s0-586eb559"),
                (1, "cifar10_resnet18_grid2d_l1_s1-9d6be396"),
                (3, "cifar10_resnet18_grid2d_l1_s3-64d6ea94"),
                (5, "cifar10_resnet18_base_s0-28916d16"),
                (9, "cifar10_resnet18_base_s4-caba5517"),
            ],
        ),
    ];
    for (name, ids) in pinned {
        let path = repo(&format!("experiments/{name}.yaml"));
        let loaded = topo::config::load(&path, &topo::config::LoadOptions::default())
            .unwrap_or_else(|d| panic!("{d}"));
        let plan = topo::plan::plan(&loaded.experiment).unwrap();
        for &(i, id) in ids {
            assert_eq!(plan.runs[i].id, id, "{name}: run {i}");
        }
    }
}

/// The golden run: the tiny experiment, pruned at two points by two methods.
fn golden_yaml() -> String {
    format!(
        "extends: {}\nname: golden\npruning: {{ methods: [l2, random], proportions: [0, 0.5] }}\n",
        repo("tests/fixtures/tiny.yaml").display()
    )
}

/// The instruction set `topo` ran on, from the run's own record (under QEMU, the
/// emulated CPU's).
fn isa_of_run(run: &Path) -> String {
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    summary["provenance"]["isa"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no provenance.isa", run.display()))
        .to_owned()
}

/// QEMU's user-mode emulator on a CPU without AVX-512: AVX2 and FMA only.
const AVX2_UNDER_QEMU: [&str; 3] = ["qemu-x86_64", "-cpu", "Haswell"];

/// Whether two records agree: the same keys and strings, numbers within float noise.
fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            (x - y).abs() <= 1e-4 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| close(v, w))
        }
        _ => a == b,
    }
}

#[test]
fn a_tiny_runs_records_match_the_golden_ones() {
    check_golden_run(None);
}

#[test]
fn a_tiny_runs_records_match_the_avx2_ones_under_qemu() {
    let found = std::process::Command::new(AVX2_UNDER_QEMU[0])
        .arg("--version")
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{} is missing: `apt-get install qemu-user` (scripts/test_deps.sh does, as root)",
        AVX2_UNDER_QEMU[0]
    );
    let isa = check_golden_run(Some(&AVX2_UNDER_QEMU));
    assert_eq!(
        isa, "avx2",
        "QEMU's Haswell model ran on another instruction set"
    );
}

/// Runs the golden experiment, directly or under `runner` (program first), and checks
/// its records against (or, with `BLESS_GOLDEN`, writes) the set of the instruction set
/// it ran on, which it returns.
fn check_golden_run(runner: Option<&[&str]>) -> String {
    let tmp = tempfile::tempdir().unwrap();
    write_fashion_mnist(&tmp.path().join("data"), 30, 5, false).unwrap();
    let yaml = tmp.path().join("golden.yaml");
    std::fs::write(&yaml, golden_yaml()).unwrap();
    let results = tmp.path().join("results");
    let plain = topo_command(tmp.path(), &yaml, "run", &results, &["--no-report"]);
    let mut command = match runner {
        None => plain,
        Some([program, args @ ..]) => {
            let mut c = std::process::Command::new(program);
            c.args(args)
                .arg(plain.get_program())
                .args(plain.get_args())
                .current_dir(tmp.path());
            c
        }
        Some([]) => panic!("an empty runner"),
    };
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let isa = isa_of_run(&results.join("golden/runs/fm_r_base_s0-6327b0b0"));
    let golden_dir = repo("tests/fixtures/golden").join(&isa);
    let bless = std::env::var_os("BLESS_GOLDEN").is_some();
    assert!(
        bless || golden_dir.is_dir(),
        "no golden records for this CPU's instruction set ({isa}): run `BLESS_GOLDEN=1 cargo nextest run --test it golden::a_tiny` on a build known to be right, and commit {}",
        golden_dir.display()
    );
    for id in ["fm_r_base_s0-6327b0b0", "fm_r_grid2d_l1_s0-70f123f8"] {
        let run = results.join("golden/runs").join(id);
        assert!(run.is_dir(), "no run {id}: the run id changed");
        let records = metrics_without_timings(&run);
        let pruning = std::fs::read_to_string(run.join("pruning.csv")).unwrap();
        let metrics_path = golden_dir.join(format!("{id}.metrics.json"));
        let pruning_path = golden_dir.join(format!("{id}.pruning.csv"));
        if bless {
            std::fs::create_dir_all(&golden_dir).unwrap();
            let text = serde_json::to_string_pretty(&records).unwrap();
            std::fs::write(&metrics_path, text + "\n").unwrap();
            std::fs::write(&pruning_path, &pruning).unwrap();
            continue;
        }
        let want: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&metrics_path).unwrap()).unwrap();
        assert!(
            close(&Value::Array(records.clone()), &Value::Array(want.clone())),
            "{id}: metrics differ from {} (BLESS_GOLDEN=1 rewrites them)\n got: {records:#?}\nwant: {want:#?}",
            metrics_path.display()
        );
        let want = std::fs::read_to_string(&pruning_path).unwrap();
        let rows = |text: &str| -> Vec<Vec<String>> {
            text.lines()
                .map(|l| l.split(',').map(str::to_owned).collect())
                .collect()
        };
        let (got_rows, want_rows) = (rows(&pruning), rows(&want));
        assert_eq!(got_rows.len(), want_rows.len(), "{id}: {pruning}");
        for (g, w) in got_rows.iter().zip(&want_rows) {
            let g: Vec<Value> = g.iter().map(|c| cell(c)).collect();
            let w: Vec<Value> = w.iter().map(|c| cell(c)).collect();
            assert!(
                close(&Value::Array(g), &Value::Array(w)),
                "{id}:\n{pruning}\nwant:\n{want}"
            );
        }
    }
    isa
}

/// A CSV cell as a JSON number when it is one, else a string.
fn cell(text: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[test]
fn summaries_record_the_candle_version_of_cargo_lock() {
    let lock = std::fs::read_to_string(repo("Cargo.lock")).unwrap();
    let at = lock.find("name = \"candle-core\"\nversion = \"").unwrap();
    let rest = &lock[at + "name = \"candle-core\"\nversion = \"".len()..];
    let version = &rest[..rest.find('"').unwrap()];
    assert_eq!(topo::results::Versions::of_this_build().candle, version);
}
