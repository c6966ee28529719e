//! `just gpu-check` where there is no GPU: one line that says so, and a failing exit.

use std::process::Command;

#[test]
fn gpu_check_without_a_gpu_refuses_in_one_line() {
    let root = env!("CARGO_MANIFEST_DIR");
    // What this checks only happens on a machine without a GPU, as CI's; on one with a
    // GPU, `just gpu-check` itself is the test.
    let has_gpu = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if has_gpu {
        eprintln!("this machine has a GPU: `just gpu-check` would run, not refuse");
        return;
    }
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/gpu_check.sh"))
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("gpu-check: no NVIDIA GPU here") && stderr.contains("--device cpu"),
        "{stderr}"
    );
}
