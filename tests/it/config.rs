//! The experiment language: the invalid corpus with its exact messages, every shipped
//! experiment valid, overrides and their precedence, hostile input.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use topo::config::{Diagnostics, LoadOptions, SchemaCheck, check_schemas, load};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(d: &Diagnostics) -> String {
    format!("{d}\n")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Each invalid file fails with exactly the diagnostics in its `.expected` file
/// (`BLESS=1` rewrites them; review the diff before committing).
#[test]
fn invalid_corpus_gives_exact_messages() {
    let dir = Path::new("tests/fixtures/configs/invalid");
    let files = yaml_files(dir);
    assert!(
        files.len() >= 25,
        "the corpus must hold at least 25 files, found {}",
        files.len()
    );
    let bless = std::env::var_os("BLESS").is_some();
    let mut mismatches = Vec::new();
    for file in &files {
        let diags = match load(file, &LoadOptions::default()) {
            Ok(_) => panic!("{} should be invalid", file.display()),
            Err(d) => d,
        };
        assert!(!diags.is_empty());
        let got = render(&diags);
        let expected_path = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        if got != want {
            mismatches.push(format!(
                "== {}\n-- expected\n{want}-- got\n{got}",
                file.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_shipped_experiment_is_valid_and_declares_the_schema() {
    let dir = repo().join("experiments");
    let files = yaml_files(&dir);
    assert!(files.len() >= 3);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/experiment.schema.json"),
            "{} must start with the schema line",
            file.display()
        );
        if let Err(d) = load(&file, &LoadOptions::default()) {
            panic!("{} is invalid:\n{d}", file.display());
        }
    }
}

#[test]
fn schemas_on_disk_are_up_to_date() {
    match check_schemas(&repo().join("schemas")) {
        SchemaCheck::UpToDate(_) => {}
        other => panic!("{other:?}: run `cargo run -- schema` and commit schemas/"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const SMALL: &str = "name: small
datasets:
  d: { kind: fashion_mnist }
topographies:
  base: { kind: none }
  grid2d: { layout: grid, dimension: 2 }
grid:
  dataset: [d]
  model: [resnet18]
  topography: [base, grid2d]
  lambda: [0.1]
  seed: [0]
training:
  epochs: 7
  batch_size: 32
";

/// Lowest first: base file < extending file < TOPO_ environment < --set.
#[test]
fn precedence_base_then_child_then_env_then_set() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(tmp.path(), "base.yaml", SMALL);
    let child = write(
        tmp.path(),
        "child.yaml",
        "extends: base.yaml\nname: child\ntraining:\n  epochs: 5\n  optimizer: { lr: 0.5 }\n",
    );
    let plain = load(&base, &LoadOptions::default())
        .unwrap()
        .experiment
        .experiment;
    assert_eq!(plain.training.epochs, 7);

    let loaded = load(&child, &LoadOptions::default())
        .unwrap()
        .experiment
        .experiment;
    assert_eq!(loaded.name, "child");
    assert_eq!(loaded.training.epochs, 5, "the child overrides the base");
    assert_eq!(loaded.training.batch_size, 32, "mappings merge key by key");
    assert_eq!(loaded.training.optimizer.lr, 0.5);
    assert_eq!(
        loaded.training.optimizer.momentum, 0.9,
        "defaults fill what no layer sets"
    );

    let env = vec![
        ("TOPO_TRAINING__EPOCHS".to_string(), "3".to_string()),
        ("TOPO_TRAINING__BATCH_SIZE".to_string(), "16".to_string()),
    ];
    let with_env = load(
        &child,
        &LoadOptions {
            sets: vec![],
            env: env.clone(),
        },
    )
    .unwrap()
    .experiment
    .experiment;
    assert_eq!(
        with_env.training.epochs, 3,
        "the environment overrides files"
    );
    assert_eq!(with_env.training.batch_size, 16);

    let sets = vec![
        "training.epochs=2".to_string(),
        "grid.seed=[1, 2]".to_string(),
    ];
    let with_set = load(&child, &LoadOptions { sets, env })
        .unwrap()
        .experiment
        .experiment;
    assert_eq!(
        with_set.training.epochs, 2,
        "--set overrides the environment"
    );
    assert_eq!(
        with_set.training.batch_size, 16,
        "the environment still applies where --set is silent"
    );
    assert_eq!(
        with_set.grid.seed,
        vec![1, 2],
        "lists are replaced, not merged"
    );
}

#[test]
fn bad_overrides_name_their_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "e.yaml", SMALL);
    let options = LoadOptions {
        sets: vec!["training.epochs=0".into(), "oops".into()],
        env: vec![("TOPO_TRAINING__EPOCS".into(), "4".into())],
    };
    let text = load(&file, &options).unwrap_err().to_string();
    assert_eq!(
        text,
        "environment variable TOPO_TRAINING__EPOCS: training.epocs: unknown field `epocs`, did you mean `epochs`?\n\n\
         --set oops: expected KEY.PATH=VALUE, e.g. training.epochs=2\n\n\
         --set training.epochs=0: training.epochs: must be at least 1, found `0`\n\n\
         3 problems found"
    );
}

/// Hostile input ends fast, with a clear message, within bounded memory.
#[test]
fn hostile_files_fail_fast_and_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "name: big\ndescription: ".to_string() + &"x".repeat(10_000_000) + "\n";
    let deep = "name: deep\ngrid: ".to_string() + &"[".repeat(1000) + &"]".repeat(1000) + "\n";
    let mut deep_map = "name: deep\ngrid:\n".to_string();
    for i in 0..1000 {
        deep_map += &format!("{}a{i}:\n", "  ".repeat(i + 1));
    }
    let mut bomb = "name: bomb\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n".to_string();
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        bomb += &format!("{}: &{} [{refs}]\n", w[1], w[1]);
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.yaml", Vec::new(), "file is empty"),
        (
            "binary.yaml",
            vec![0x89, b'P', b'N', b'G', 0, 0xff, 0xfe, 1, 2, 3],
            "not a text file",
        ),
        (
            "big.yaml",
            big.into_bytes(),
            "experiment files are limited to 1 MiB",
        ),
        (
            "deep.yaml",
            deep.into_bytes(),
            "nesting deeper than 64 levels",
        ),
        (
            "deepmap.yaml",
            deep_map.into_bytes(),
            "nesting deeper than 64 levels",
        ),
        ("bomb.yaml", bomb.into_bytes(), "aliases expand too far"),
    ];
    for (name, bytes, want) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let start = Instant::now();
        let err = load(&path, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name} took {:?}",
            start.elapsed()
        );
        assert!(err.contains(want), "{name}: expected `{want}` in:\n{err}");
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: the message names the file:\n{err}"
        );
    }
}

#[test]
fn proportion_ranges_give_the_decimals_a_user_means() {
    let range = |from, to, steps| {
        topo::config::Proportions::Range(topo::config::ProportionRange { from, to, steps })
    };
    let printed: Vec<String> = range(0.0, 0.9, 10)
        .values()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        printed,
        [
            "0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"
        ]
    );
    let hundred = range(0.0, 1.0, 101).values();
    assert_eq!((hundred[7], hundred[29], hundred[100]), (0.07, 0.29, 1.0));
}

#[test]
fn an_imagenet_stem_on_a_model_without_one_is_refused_where_it_is_written() {
    let tiny = super::common::TinyExperiment::new(
        "stem",
        "models:\n  v: { kind: vgg16_bn, width: 0.0625, stem: imagenet }\ngrid: { model: [v] }\n",
    );
    let out = tiny.expect("validate", &[], 2);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("models.v.stem")
            && said.contains("vgg16_bn is torchvision's already, with one stem: remove `stem`")
            && said.contains("stem.yaml:"),
        "{said}"
    );
}
