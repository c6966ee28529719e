//! Build-time facts the binary records in every run's summary: the candle version that
//! trained it, read from `Cargo.lock` (no hand-kept copy to drift), and the git commit
//! the build came from, with whether the work tree had uncommitted changes.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let root = std::path::Path::new(&manifest);
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let version = candle_version(&lock).unwrap_or("unknown");
    println!("cargo:rustc-env=BUILD_CANDLE_VERSION={version}");

    // A commit or an edit of the sources changes the answer: look again then.
    for watched in [
        ".git/HEAD",
        ".git/index",
        ".git/refs",
        "src",
        "crates",
        "Cargo.toml",
    ] {
        if root.join(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // Outside a checkout (a source tarball, a bundle), no commit is claimed.
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let dirty = !commit.is_empty()
        && git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=BUILD_GIT_DIRTY={dirty}");
}

/// The version of the `candle-core` package in a `Cargo.lock`.
fn candle_version(lock: &str) -> Option<&str> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"candle-core\"" {
            return lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"');
        }
    }
    None
}
