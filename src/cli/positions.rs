//! `topo positions`: print a layout's channel positions and draw it, to check a layout
//! before training.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use crate::report::layouts::{draw_layouts, draw_positions};
use crate::results::write_atomic;
use crate::topography::{Layout, Norm, Positions, distance_matrix, positions};

/// The built-in layouts, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    Grid,
    Nested,
    Sphere,
    Sheet,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Grid => Layout::Grid,
            LayoutArg::Nested => Layout::Nested,
            LayoutArg::Sphere => Layout::Sphere,
            LayoutArg::Sheet => Layout::Sheet,
        }
    }
}

/// Distances, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NormArg {
    Euclidean,
    L1,
}

impl From<NormArg> for Norm {
    fn from(n: NormArg) -> Self {
        match n {
            NormArg::Euclidean => Norm::Euclidean,
            NormArg::L1 => Norm::L1,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct PositionsArgs {
    /// How channels are laid out.
    #[arg(long, value_enum, default_value = "grid")]
    pub layout: LayoutArg,
    /// Dimension of the positions: 1 (a line), 2 or 3 (a sphere needs 2 or 3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub dimension: u8,
    /// Number of channels (output channels of the layer).
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Also report the pairwise distances and target similarities under this norm (on stderr).
    #[arg(long, value_enum)]
    pub norm: Option<NormArg>,
    /// Write the coordinates as CSV (readable back as a custom layout).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Draw the layout as PNG.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Draw the layout as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Draw the paper's figure 2 (all six layouts for `--channels`), PNG or SVG by extension.
    #[arg(long, value_name = "FILE")]
    pub figure2: Option<PathBuf>,
}

/// Prints the coordinates (one row per channel, index first) and writes the requested files.
pub fn run(args: &PositionsArgs) -> anyhow::Result<()> {
    let layout = Layout::from(args.layout);
    let dim = usize::from(args.dimension);
    let p = positions(layout, dim, args.channels).with_context(|| {
        format!(
            "{:?} layout in {dim}D with {} channels",
            args.layout, args.channels
        )
    })?;
    print!("{}", table(&p, true));
    if let Some(norm) = args.norm {
        eprintln!("{}", distance_summary(&p, norm.into()));
    }
    if let Some(path) = &args.csv {
        write_atomic(path, table(&p, false).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    let title = format!("{:?} {dim}D, {} channels", args.layout, args.channels).to_lowercase();
    for path in [&args.png, &args.svg].into_iter().flatten() {
        draw_positions(path, &p, &title)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.figure2 {
        draw_layouts(path, args.channels)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A header (`channel,x,y,z` or `x,y,z`) and one row per channel.
fn table(p: &Positions, with_index: bool) -> String {
    let axes = ["x", "y", "z"];
    let mut names: Vec<String> = (0..p.dim())
        .map(|a| axes.get(a).map_or(format!("x{a}"), |s| (*s).to_owned()))
        .collect();
    if with_index {
        names.insert(0, "channel".to_owned());
    }
    let mut out = names.join(",");
    out.push('\n');
    for (i, c) in p.iter().enumerate() {
        let coords: Vec<String> = c.iter().map(|v| v.to_string()).collect();
        if with_index {
            let _infallible = write!(out, "{i},");
        }
        out.push_str(&coords.join(","));
        out.push('\n');
    }
    out
}

/// Smallest and largest distance between two channels and the matching targets.
fn distance_summary(p: &Positions, norm: Norm) -> String {
    let n = p.n();
    let d = distance_matrix(p, norm);
    let pairs = (0..n)
        .flat_map(|i| ((i + 1)..n).map(move |j| (i, j)))
        .map(|(i, j)| d[i * n + j]);
    let (lo, hi) = pairs.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if n < 2 {
        return "one channel: no pairs".to_owned();
    }
    format!(
        "{norm:?} distance between channels: {lo:.4} to {hi:.4}; target 1/(d+1): {:.4} to {:.4}",
        1.0 / (hi + 1.0),
        1.0 / (lo + 1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_channels_in_order() {
        let p = positions(Layout::Grid, 2, 3).unwrap();
        assert_eq!(table(&p, true), "channel,x,y\n0,0,0\n1,1,0\n2,0,1\n");
        assert_eq!(table(&p, false), "x,y\n0,0\n1,0\n0,1\n");
        assert_eq!(
            distance_summary(&p, Norm::L1),
            "L1 distance between channels: 1.0000 to 2.0000; target 1/(d+1): 0.3333 to 0.5000"
        );
    }
}
