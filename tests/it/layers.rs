//! The architecture kept true: each top-level module of `src/` refers only to modules
//! below it in the data flow, and unsafe code lives in the kernels crate alone.

use std::path::{Path, PathBuf};

/// Top to bottom: a module may use any module after it, none before it.
const LAYERS: [&str; 13] = [
    "cli",
    "runner",
    "report",
    "train",
    "nn",
    "data",
    "plan",
    "results",
    "config",
    "topography",
    "kernels",
    "log",
    "sync",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The kernels: the workspace's crate `topo-kernels`, re-exported as `topo::kernels`.
fn kernels_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/kernels/src")
}

/// The files of a top-level module: `src/<name>/**.rs` or `src/<name>.rs` (the kernels'
/// crate for `kernels`).
fn module_files(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if name == "kernels" {
        rust_files(&kernels_src(), &mut files);
        return files;
    }
    let dir = src.join(name);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        files.push(file);
    }
    files
}

/// The top-level modules a file names through `crate::<module>`.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        // `topo_crate::` or `$crate::` are not this crate's paths.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

#[test]
fn modules_import_only_down_the_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut declared: Vec<String> = std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("pub use topo_kernels as "))
        })
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    declared.sort();
    let mut layers: Vec<String> = LAYERS.iter().map(|s| s.to_string()).collect();
    layers.sort();
    assert_eq!(
        declared, layers,
        "lib.rs declares other modules than LAYERS lists"
    );

    let mut wrong = Vec::new();
    for (rank, module) in LAYERS.iter().enumerate() {
        let files = module_files(&src, module);
        assert!(!files.is_empty(), "no source for module {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // In the kernels' crate `crate::` is the kernels themselves; that crate cannot
            // name topo's modules at all.
            let targets = if *module == "kernels" {
                Vec::new()
            } else {
                references(&text)
            };
            for target in targets {
                let Some(target_rank) = LAYERS.iter().position(|l| *l == target) else {
                    continue;
                };
                if target_rank < rank {
                    wrong.push(format!(
                        "{}: {module} uses crate::{target}, which is above it",
                        file.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn unsafe_code_lives_in_the_kernels_crate_beside_its_reasons() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for root in ["lib.rs", "main.rs"] {
        let text = std::fs::read_to_string(src.join(root)).unwrap();
        assert!(
            text.lines().any(|l| l == "#![forbid(unsafe_code)]"),
            "src/{root} does not forbid unsafe code"
        );
    }
    let lib = std::fs::read_to_string(kernels_src().join("lib.rs")).unwrap();
    assert!(
        lib.lines().any(|l| l == "#![deny(unsafe_code)]"),
        "the kernels' crate must allow unsafe code block by block"
    );
    let mut files = Vec::new();
    rust_files(&kernels_src(), &mut files);
    let mut unexplained = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let opens = code.starts_with("unsafe {")
                || code.starts_with("unsafe impl")
                || code.contains("= unsafe {")
                || code.contains("(unsafe {");
            let explained = lines[i.saturating_sub(4)..i]
                .iter()
                .any(|l| l.contains("SAFETY"));
            if opens && !explained {
                unexplained.push(format!("{}:{}", file.display(), i + 1));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "unsafe without a `SAFETY:` comment above it: {unexplained:?}"
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    assert_eq!(
        references("use crate::train::Trained;\nlet x = crate::kernels::conv2d(a);\n$crate::no"),
        ["train", "kernels"]
    );
}
