//! `topo report DIR`: tables and figures of an experiment's finished runs.

use std::path::PathBuf;

use anyhow::Context;

use crate::report::report;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The experiment's results folder (`results/<experiment>`).
    pub dir: PathBuf,
}

/// Writes the report and prints where it went and the state of the runs.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let outcome =
        report(&args.dir).with_context(|| format!("cannot report on {}", args.dir.display()))?;
    println!("{}", outcome.summary_line());
    if outcome.counts.folders == 0 {
        println!(
            "No runs under {}: run the experiment first (`topo run FILE`).",
            args.dir.join("runs").display()
        );
    }
    for f in &outcome.failed {
        println!(
            "  failed: {} ({})",
            f.id,
            f.reason.lines().next().unwrap_or("")
        );
    }
    for u in &outcome.unreadable {
        println!(
            "  unreadable: {}: {}",
            u.path.display(),
            u.message.lines().next().unwrap_or("")
        );
    }
    if outcome.missing_cells > 0 {
        println!(
            "{} table cells have no finished run yet.",
            outcome.missing_cells
        );
    }
    println!(
        "Wrote {} files under {}",
        outcome.written.len(),
        outcome.report_dir.display()
    );
    println!("Index: {}", outcome.index.display());
    Ok(())
}
