//! Drawing a [`LineFigure`] on any plotters backend.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{Curve, FAMILY as FONT, LegendAt, LineFigure, Panel};

const PANEL_W: u32 = 560;
const PANEL_H: u32 = 420;
const TITLE_H: u32 = 48;
const MIN_W: u32 = 820;

/// A colour-blind-safe palette (Okabe-Ito, then a few more); the baseline is black.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 94, 240),
    RGBColor(150, 75, 0),
    RGBColor(128, 128, 128),
    RGBColor(180, 40, 40),
];

fn colour_of(curve: &Curve) -> RGBColor {
    if curve.baseline {
        BLACK
    } else {
        PALETTE[curve.colour % PALETTE.len()]
    }
}

fn grid_shape(figure: &LineFigure) -> (usize, usize) {
    let columns = figure.columns.clamp(1, figure.panels.len().max(1));
    (figure.panels.len().div_ceil(columns).max(1), columns)
}

/// Pixel size of a figure: a fixed size per panel.
pub fn figure_size(figure: &LineFigure) -> (u32, u32) {
    let (rows, columns) = grid_shape(figure);
    // A single panel is widened so that the figure's title fits.
    (
        (columns as u32 * PANEL_W).max(MIN_W),
        rows as u32 * PANEL_H + TITLE_H,
    )
}

pub fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &LineFigure,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let body = root
        .titled(&figure.title, (FONT, 26))
        .map_err(|e| e.to_string())?;
    let (rows, columns) = grid_shape(figure);
    for (panel, area) in figure.panels.iter().zip(body.split_evenly((rows, columns))) {
        draw_panel(&area, panel).map_err(|e| format!("panel `{}`: {e}", panel.title))?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Axis ranges covering every curve and band, padded by 5%.
fn bounds(panel: &Panel) -> ((f64, f64), (f64, f64)) {
    let mut x = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y = (f64::INFINITY, f64::NEG_INFINITY);
    for p in panel.curves.iter().flat_map(|c| &c.points) {
        let s = p.std.unwrap_or(0.0);
        if !(p.x.is_finite() && p.y.is_finite()) {
            continue;
        }
        x = (x.0.min(p.x), x.1.max(p.x));
        y = (y.0.min(p.y - s), y.1.max(p.y + s));
    }
    let pad = |(lo, hi): (f64, f64)| {
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
        (lo - 0.05 * span, hi + 0.05 * span)
    };
    let (x0, x1) = x;
    let x = if x0.is_finite() && x1 > x0 {
        (x0, x1)
    } else {
        pad(x)
    };
    (x, pad(y))
}

/// A tick label without useless zeros: `80`, `0.25`, `1.5`.
fn tick(v: f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let ((x0, x1), (y0, y1)) = bounds(panel);
    // Whole-number axes (epochs) get one tick per unit when there are few.
    let integral = panel
        .curves
        .iter()
        .flat_map(|c| &c.points)
        .all(|p| p.x.fract() == 0.0);
    let x_ticks = if integral && x1 - x0 <= 12.0 {
        (x1 - x0).round() as usize + 1
    } else {
        6
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 21))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_labels(x_ticks)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.1))
        .draw()
        .map_err(err)?;

    for curve in &panel.curves {
        let colour = colour_of(curve);
        let with_band: Vec<_> = curve.points.iter().filter(|p| p.std.is_some()).collect();
        if with_band.len() >= 2 {
            let upper = with_band.iter().map(|p| (p.x, p.y + p.std.unwrap_or(0.0)));
            let lower = with_band
                .iter()
                .rev()
                .map(|p| (p.x, p.y - p.std.unwrap_or(0.0)));
            let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    colour.mix(0.15).filled(),
                )))
                .map_err(err)?;
        }
        let points: Vec<(f64, f64)> = curve.points.iter().map(|p| (p.x, p.y)).collect();
        let style = colour.stroke_width(2);
        let series = if curve.baseline {
            chart
                .draw_series(DashedLineSeries::new(points, 9, 5, style))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(err)?
        };
        let baseline = curve.baseline;
        series.label(curve.label.as_str()).legend(move |(x, y)| {
            let path = vec![(x, y), (x + 24, y)];
            if baseline {
                DashedPathElement::new(path, 6, 3, style).into_dyn()
            } else {
                PathElement::new(path, style).into_dyn()
            }
        });
    }
    if !panel.curves.is_empty() {
        let position = match panel.legend {
            LegendAt::UpperRight => SeriesLabelPosition::UpperRight,
            LegendAt::LowerLeft => SeriesLabelPosition::LowerLeft,
            LegendAt::LowerRight => SeriesLabelPosition::LowerRight,
        };
        chart
            .configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 14))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
