//! `topo plan FILE --estimate`: the cost of the pending runs, printed for people.

use crate::runner::estimate::{Estimate, Row, Source};
use crate::runner::progress::human;

/// The estimate as aligned text.
pub fn print(e: &Estimate) {
    println!();
    println!(
        "Cost of the pending runs on this machine ({} cores; FLOPs of convolutions and linear layers, backward = 2 x forward):",
        e.cores
    );
    // Columns as wide as their longest name, and at least their heading.
    let width = |name: fn(&Row) -> &str, heading: &str| {
        e.rows
            .iter()
            .map(|r| name(r).len())
            .fold(heading.len(), usize::max)
    };
    let dw = width(|r| &r.dataset, "dataset");
    let mw = width(|r| &r.model, "model");
    println!(
        "  {:dw$}  {:mw$}  {:>12}  {:>13}  {:>16}  {:<20}  {:>7}  {:>6}  {:>10}",
        "dataset",
        "model",
        "input",
        "GFLOPs/example",
        "train img/s",
        "measured",
        "pending",
        "epochs",
        "core-hours"
    );
    for r in &e.rows {
        let [c, h, w] = r.input;
        let source = match r.source {
            Source::Recorded { runs } => format!("by {runs} run(s) done"),
            Source::Measured { cached: true } => "here (cached)".to_string(),
            Source::Measured { cached: false } => "here, just now".to_string(),
        };
        println!(
            "  {:dw$}  {:mw$}  {:>12}  {:>13.3}  {:>16}  {:<20}  {:>7}  {:>6}  {:>10.2}",
            r.dataset,
            r.model,
            format!("{c}x{h}x{w}"),
            r.gflops,
            format!("{:.0} (eval {:.0})", r.throughput.train, r.throughput.eval),
            source,
            r.pending,
            r.epochs_left,
            r.core_hours
        );
    }
    let wall = std::time::Duration::from_secs_f64(e.core_hours / e.cores.max(1) as f64 * 3600.0);
    println!(
        "Total: {:.2} core-hours ({} of wall time on this machine, one run at a time).",
        e.core_hours,
        human(wall)
    );
    for (axis, values) in &e.per_axis {
        if values.len() < 2 {
            continue;
        }
        let parts: Vec<String> = values.iter().map(|(v, h)| format!("{v} {h:.2}")).collect();
        println!("  per {axis}: {}", parts.join(", "));
    }
}
