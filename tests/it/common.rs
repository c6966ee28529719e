//! Helpers shared by the tests that drive the `topo` binary.

use std::path::Path;
use std::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_topo");

/// `topo <command> <yaml> --results <results> <extra>`, run from `dir`.
pub fn topo_command(
    dir: &Path,
    yaml: &Path,
    command: &str,
    results: &Path,
    extra: &[&str],
) -> Command {
    let mut c = Command::new(BIN);
    c.arg(command)
        .arg(yaml)
        .arg("--results")
        .arg(results)
        .args(extra)
        .current_dir(dir);
    c
}
