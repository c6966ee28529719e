//! Map figures' common frame: where a 2D layer's channels go in a panel (its layout scaled
//! into the unit square, centred, aspect kept: a 2 x 4 sheet is a band), and the labelled
//! rows of panels every map figure draws.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::layouts::DrawResult;
use super::plot::FAMILY;

/// A panel's side, and the width of the rows' label column, in pixels.
pub const PANEL: u32 = 240;
pub const LABEL: u32 = 200;

/// Where one 2D layer's points go in its panel's unit square, centred, aspect kept.
pub struct Frame {
    origin: (f64, f64),
    span: f64,
    offset: (f64, f64),
}

impl Frame {
    pub fn of(coords: &[f64]) -> Frame {
        let (xs, ys): (Vec<f64>, Vec<f64>) = coords.chunks_exact(2).map(|c| (c[0], c[1])).unzip();
        let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (x0, y0) = (lo(&xs), lo(&ys));
        let (wx, wy) = (hi(&xs) - x0, hi(&ys) - y0);
        let span = wx.max(wy).max(1e-12);
        Frame {
            origin: (x0, y0),
            span,
            offset: ((1.0 - wx / span) / 2.0, (1.0 - wy / span) / 2.0),
        }
    }

    pub fn place(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.offset.0 + (x - self.origin.0) / self.span,
            self.offset.1 + (y - self.origin.1) / self.span,
        )
    }
}

/// Each channel of a 2D layer placed in its panel, and the frame that placed them.
pub fn placed(coords: &[f64]) -> (Vec<(f64, f64)>, Frame) {
    let frame = Frame::of(coords);
    let points = coords
        .chunks_exact(2)
        .map(|c| frame.place(c[0], c[1]))
        .collect();
    (points, frame)
}

/// Draws `rows` (a label and its panels) one below the other in `body`: the label in a
/// column `LABEL` wide, then the panels side by side, as many columns as the widest row.
pub fn draw_rows<DB: DrawingBackend, P>(
    body: &DrawingArea<DB, Shift>,
    rows: &[(&str, &[P])],
    draw: impl Fn(&DrawingArea<DB, Shift>, &P) -> DrawResult,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let columns = rows.iter().map(|r| r.1.len()).max().unwrap_or(1);
    for (&(text, panels), band) in rows.iter().zip(body.split_evenly((rows.len(), 1))) {
        let (label, area) = band.split_horizontally(LABEL);
        label
            .draw_text(
                text,
                &(FAMILY, 17).into_font().color(&BLACK),
                (8, PANEL as i32 / 2 - 8),
            )
            .map_err(e)?;
        for (panel, cell) in panels.iter().zip(area.split_evenly((1, columns))) {
            draw(&cell, panel)?;
        }
    }
    Ok(())
}

/// Where a panel's dots go, in pixels: the unit square `side` wide from `origin`, and the
/// dots' radius for how many there are.
pub struct PanelGeometry {
    side: f64,
    origin: (f64, f64),
    pub radius: i32,
}

impl PanelGeometry {
    /// Writes `title` at the panel's top and returns where its `dots` go.
    pub fn begin<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        title: &str,
        dots: usize,
    ) -> Result<PanelGeometry, String> {
        area.draw_text(title, &(FAMILY, 14).into_font().color(&BLACK), (6, 4))
            .map_err(|e| e.to_string())?;
        let side = PANEL as f64 * 0.72;
        let radius = (side * 0.42 / (dots.max(1) as f64).sqrt())
            .clamp(2.0, 12.0)
            .round() as i32;
        Ok(PanelGeometry {
            side,
            origin: (PANEL as f64 * 0.14, PANEL as f64 * 0.18),
            radius,
        })
    }

    /// The pixel of a point of the unit square (y up).
    pub fn at(&self, x: f64, y: f64) -> (i32, i32) {
        (
            (self.origin.0 + x * self.side).round() as i32,
            (self.origin.1 + (1.0 - y) * self.side).round() as i32,
        )
    }

    /// The square's corners in pixels, `pad` pixels out.
    pub fn frame(&self, pad: f64) -> [(i32, i32); 2] {
        let (ox, oy) = self.origin;
        let corner = |x: f64, y: f64| (x.round() as i32, y.round() as i32);
        [
            corner(ox - pad, oy - pad),
            corner(ox + self.side + pad, oy + self.side + pad),
        ]
    }
}
