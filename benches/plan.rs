//! Planning the reference code's whole grid: 4 data sets x 5 seeds x 3 models x
//! (1 base + 3 dimensions x 2 norms x 12 lambdas x 3 layouts, no sphere in 1D) = 11,580
//! runs. Prints the time to load and check the file, and to expand the plan.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark program: failing loudly is right

use std::fmt::Write;
use std::time::Instant;

use topo::config::{LoadOptions, load};
use topo::plan::plan;

fn reference_grid() -> String {
    let mut yaml = String::from(
        "name: reference\ndatasets:\n  cifar10: { kind: cifar10 }\n  cifar100: { kind: cifar100 }\n  \
         speech: { kind: speech_commands, epochs: 12 }\n  birds: { kind: bird_dcase, epochs: 36 }\n\
         topographies:\n  base: { kind: none }\n",
    );
    let mut names = vec!["base".to_string()];
    for layout in ["grid", "nested", "sphere"] {
        for dimension in 1..=3 {
            if layout == "sphere" && dimension == 1 {
                continue;
            }
            for norm in ["euclidean", "l1"] {
                let name = format!("{layout}{dimension}d_{norm}");
                let _ = writeln!(
                    yaml,
                    "  {name}: {{ layout: {layout}, dimension: {dimension}, norm: {norm} }}"
                );
                names.push(name);
            }
        }
    }
    let _ = write!(
        yaml,
        "grid:\n  dataset: [cifar10, cifar100, speech, birds]\n  model: [resnet18, vgg16_bn, densenet121]\n  \
         topography: [{}]\n  seed: [0, 1, 2, 3, 4]\n",
        names.join(", ")
    );
    yaml
}

fn main() {
    let dir = std::env::temp_dir().join(format!("topo-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("reference.yaml");
    std::fs::write(&path, reference_grid()).expect("write the grid");
    let mut loads = Vec::new();
    let mut plans = Vec::new();
    let mut runs = 0;
    for _ in 0..7 {
        let t0 = Instant::now();
        let loaded = load(&path, &LoadOptions::default()).unwrap_or_else(|d| panic!("{d}"));
        let t1 = Instant::now();
        let p = plan(&loaded.experiment).expect("plan");
        let t2 = Instant::now();
        runs = p.runs.len();
        loads.push((t1 - t0).as_secs_f64() * 1e3);
        plans.push((t2 - t1).as_secs_f64() * 1e3);
    }
    loads.sort_by(f64::total_cmp);
    plans.sort_by(f64::total_cmp);
    println!("reference grid: {runs} runs");
    println!(
        "  load + schema + checks: median {:.1} ms (min {:.1})",
        loads[3], loads[0]
    );
    println!(
        "  expand the plan:        median {:.1} ms (min {:.1})",
        plans[3], plans[0]
    );
    println!(
        "  total:                  median {:.1} ms (goal: under 200 ms)",
        loads[3] + plans[3]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
