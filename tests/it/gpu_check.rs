//! `just gpu-check` where there is no GPU: one line that says so, and a failing exit.

use std::process::Command;

#[test]
fn gpu_check_without_a_gpu_refuses_in_one_line() {
    let root = env!("CARGO_MANIFEST_DIR");
    // An `nvidia-smi` that lists no GPU stands first on the PATH, so the refusal is
    // checked on a machine with a GPU too.
    let fake = tempfile::tempdir().unwrap();
    let smi = fake.path().join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/gpu_check.sh"))
        .current_dir(root)
        .env("PATH", path)
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
