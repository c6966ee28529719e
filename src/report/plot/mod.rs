//! Figures made of line panels: typed, already aggregated curves in, PNG and SVG out.
//! Every figure of the report (pruning, training, topography) is a [`LineFigure`].

mod draw;
mod fonts;
mod output;
mod text;

pub use fonts::{FAMILY, ensure_fonts};
pub use text::GlyphText;

pub use output::write_figure;

/// One point of a curve: a mean over seeds and its standard deviation (drawn as a band).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub std: Option<f64>,
}

/// One curve: a run group (a topography at its lambda, or the baseline).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    /// The baseline is drawn black and dashed.
    pub baseline: bool,
    /// Index into the palette, stable across the report's figures.
    pub colour: usize,
    pub points: Vec<Point>,
}

/// Where a panel's legend goes: where its curves leave room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendAt {
    UpperRight,
    LowerLeft,
    LowerRight,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
    pub legend: LegendAt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineFigure {
    pub title: String,
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
}
