//! Build-time facts the binary records in every run's summary: the candle version that
//! trained it, read from `Cargo.lock` (no hand-kept copy to drift).

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lock = std::fs::read_to_string(std::path::Path::new(&manifest).join("Cargo.lock"))
        .unwrap_or_default();
    let version = candle_version(&lock).unwrap_or("unknown");
    println!("cargo:rustc-env=BUILD_CANDLE_VERSION={version}");
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
