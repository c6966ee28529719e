//! With the `cuda` feature: compiles the CUDA kernels in `cuda/` to PTX with nvcc, into
//! `OUT_DIR`, where `src/cuda` embeds them; the driver compiles the PTX for whatever GPU
//! the program meets. Without the feature this does nothing, so the CPU build needs no
//! CUDA toolkit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel sources, each compiled to `<name>.ptx`.
const SOURCES: &[&str] = &["max_pool", "sgd", "unfold"];

/// The oldest architecture CUDA 13 compiles for (Turing); PTX for it runs on every later
/// GPU. `CUDA_COMPUTE_CAP` (as candle's own kernels read it) picks another.
const DEFAULT_COMPUTE_CAP: &str = "75";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cuda");
    for var in ["NVCC", "CUDA_HOME", "CUDA_PATH", "CUDA_COMPUTE_CAP"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    if let Err(message) = compile_all() {
        eprintln!("error: topo-kernels' CUDA kernels: {message}");
        std::process::exit(1);
    }
}

fn compile_all() -> Result<(), String> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let out = std::env::var("OUT_DIR").map_err(|e| e.to_string())?;
    let nvcc = nvcc();
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| DEFAULT_COMPUTE_CAP.into());
    let cap = cap.trim().replace('.', "");
    if cap.is_empty() || !cap.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "CUDA_COMPUTE_CAP is `{cap}`; set it to a compute capability such as 80 or 8.0"
        ));
    }
    let dir = Path::new(&manifest).join("cuda");
    for name in SOURCES {
        let source = dir.join(format!("{name}.cu"));
        let ptx = Path::new(&out).join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .arg("--ptx")
            .arg(format!("-arch=compute_{cap}"))
            .args(["-O3", "-std=c++17", "-I"])
            .arg(&dir)
            .arg("-o")
            .arg(&ptx)
            .arg(&source)
            .status()
            .map_err(|e| {
                format!(
                    "cannot run `{}` ({e}): install the CUDA toolkit, or set NVCC or \
                     CUDA_HOME (`just cuda-check` installs nvcc from NVIDIA's wheels)",
                    nvcc.display()
                )
            })?;
        if !status.success() {
            return Err(format!("nvcc failed on {} ({status})", source.display()));
        }
    }
    Ok(())
}

/// `NVCC`, else `nvcc` under `CUDA_HOME` or `CUDA_PATH`, else `nvcc` on the `PATH`.
fn nvcc() -> PathBuf {
    if let Some(path) = std::env::var_os("NVCC") {
        return PathBuf::from(path);
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = std::env::var_os(var) {
            let candidate = Path::new(&root).join("bin").join("nvcc");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("nvcc")
}
