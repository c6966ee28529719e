//! Orientation, tonotopic and category selectivity maps: channels at their 2D layout
//! positions, coloured by what they are tuned to. Orientation: hue is the preferred
//! orientation (0 to 180 degrees once round the colour wheel), saturation the selectivity
//! (relative to the layer's most selective channel), pinwheels marked + (counterclockwise)
//! and o (clockwise). Tonotopy: the preferred frequency from blue (low) to yellow (high).
//! Category: the d′ of one class, red where the channel prefers it, blue where it avoids
//! it, white at 0 (scaled to the row's largest |d′|). Grey: a channel without a value. One
//! row per topography (first seed); one panel per layer, or for category maps one per class
//! of the deepest tapped layer.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{LABEL, PANEL, PanelGeometry, draw_rows, placed};
use super::layouts::{DrawResult, Drawing, LayoutPlotError, render};
use super::plot::FAMILY;
use crate::results::{AnalysesRecord, MapKind, TopographyRecord};
use crate::topography::Pinwheel;

const HEADER: u32 = 40;

/// What the maps show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    Orientation,
    Frequency,
    /// The d′ maps of every class, on the deepest tapped 2D layer.
    Category,
}

struct Dot {
    x: f64,
    y: f64,
    colour: RGBColor,
}

struct Panel {
    layer: String,
    dots: Vec<Dot>,
    /// Pinwheels in the panel's unit square, with their charge.
    marks: Vec<(f64, f64, i8)>,
}

/// One row: a run's label and its layers.
pub struct TuningRow {
    label: String,
    panels: Vec<Panel>,
}

const NONE: RGBColor = RGBColor(225, 225, 225);

fn hsv(h: f64, s: f64, v: f64) -> RGBColor {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let byte = |u: f64| ((u + m).clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

/// A blue-to-yellow ramp (viridis' ends and middle) at `t` in `[0, 1]`.
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 3] = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let k = (t.floor() as usize).min(1);
    let f = t - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Blue through white to red for `t` in `[-1, 1]`.
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let towards = |to: (f64, f64, f64)| {
        let f = t.abs();
        let mix = |c: f64| (255.0 + (c - 255.0) * f).round() as u8;
        RGBColor(mix(to.0), mix(to.1), mix(to.2))
    };
    if t < 0.0 {
        towards((33.0, 102.0, 172.0))
    } else {
        towards((178.0, 24.0, 43.0))
    }
}

impl TuningRow {
    /// The category row of a run's records: the d′ map of every class on its deepest
    /// tapped 2D layer; `None` when it has none.
    fn categories(
        label: &str,
        analyses: &AnalysesRecord,
        topography: &TopographyRecord,
    ) -> Option<TuningRow> {
        let (layer, coords) = analyses.layers.iter().rev().find_map(|layer| {
            let p = topography
                .layers
                .iter()
                .find(|l| l.layer == layer.layer)?
                .positions
                .as_ref()?;
            (p.dim == 2 && p.coords.len() == 2 * layer.channels).then_some((layer, &p.coords))
        })?;
        let maps: Vec<_> = layer
            .maps
            .iter()
            .filter_map(|m| match &m.map {
                MapKind::Dprime { name, .. } => Some((name, &m.values)),
                _ => None,
            })
            .collect();
        let top = maps
            .iter()
            .flat_map(|(_, v)| v.iter().flatten())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        if maps.is_empty() || top <= 0.0 {
            return None;
        }
        let (points, _) = placed(coords);
        let panels = maps
            .into_iter()
            .map(|(name, values)| Panel {
                layer: format!("{}: {name}", layer.layer),
                dots: points
                    .iter()
                    .zip(values)
                    .map(|(&(x, y), v)| Dot {
                        x,
                        y,
                        colour: v.map_or(NONE, |v| diverging(v / top)),
                    })
                    .collect(),
                marks: Vec::new(),
            })
            .collect();
        Some(TuningRow {
            label: format!("{label} (|d′| ≤ {top:.2})"),
            panels,
        })
    }

    /// The row of a run's records; `None` when it has no 2D layer with the maps asked for.
    pub fn of(
        label: &str,
        analyses: &AnalysesRecord,
        topography: &TopographyRecord,
        tuning: Tuning,
    ) -> Option<TuningRow> {
        if tuning == Tuning::Category {
            return TuningRow::categories(label, analyses, topography);
        }
        let range = analyses.tones.as_ref().and_then(|t| {
            let lo = t.first()?.log2();
            let hi = t.last()?.log2();
            (hi > lo).then_some((lo, hi))
        });
        let panels: Vec<Panel> = analyses
            .layers
            .iter()
            .filter_map(|layer| {
                let positions = topography
                    .layers
                    .iter()
                    .find(|l| l.layer == layer.layer)?
                    .positions
                    .as_ref()?;
                if positions.dim != 2 || positions.coords.len() != 2 * layer.channels {
                    return None;
                }
                let values = |kind: MapKind| {
                    layer
                        .maps
                        .iter()
                        .find(|m| m.map == kind)
                        .map(|m| m.values.clone())
                };
                let colours: Vec<RGBColor> = match tuning {
                    Tuning::Orientation => {
                        let pref = values(MapKind::PreferredOrientation)?;
                        let osi = values(MapKind::OrientationSelectivity)?;
                        let top = osi.iter().flatten().copied().fold(0.0, f64::max);
                        pref.iter()
                            .zip(&osi)
                            .map(|(p, s)| match (p, s) {
                                (Some(p), Some(s)) if top > 0.0 => {
                                    hsv(2.0 * p, (s / top).clamp(0.0, 1.0), 1.0)
                                }
                                _ => NONE,
                            })
                            .collect()
                    }
                    Tuning::Frequency => {
                        let (lo, hi) = range?;
                        values(MapKind::PreferredFrequency)?
                            .iter()
                            .map(|v| v.map_or(NONE, |v| ramp((v - lo) / (hi - lo))))
                            .collect()
                    }
                    Tuning::Category => return None,
                };
                let (points, frame) = placed(&positions.coords);
                let dots = points
                    .into_iter()
                    .zip(colours)
                    .map(|((x, y), colour)| Dot { x, y, colour })
                    .collect();
                let marks = match (&layer.pinwheels, tuning) {
                    (Some(p), Tuning::Orientation) => p
                        .pinwheels
                        .iter()
                        .map(|&Pinwheel { x, y, charge }| {
                            let (x, y) = frame.place(x, y);
                            (x, y, charge)
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Some(Panel {
                    layer: layer.layer.clone(),
                    dots,
                    marks,
                })
            })
            .collect();
        (!panels.is_empty()).then(|| TuningRow {
            label: label.to_owned(),
            panels,
        })
    }
}

struct TuningFigure<'a> {
    title: &'a str,
    rows: &'a [TuningRow],
}

/// Draws `rows` to `path` (PNG or SVG by extension).
pub fn draw_tuning_maps(
    path: &Path,
    title: &str,
    rows: &[TuningRow],
) -> Result<(), LayoutPlotError> {
    let columns = rows.iter().map(|r| r.panels.len()).max().unwrap_or(1) as u32;
    let size = (LABEL + columns * PANEL, HEADER + rows.len() as u32 * PANEL);
    render(path, size, &TuningFigure { title, rows })
}

impl Drawing for TuningFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (header, body) = root.split_vertically(HEADER);
        header
            .draw_text(
                self.title,
                &(FAMILY, 18).into_font().color(&BLACK),
                (10, 10),
            )
            .map_err(e)?;
        let rows: Vec<(&str, &[Panel])> = self
            .rows
            .iter()
            .map(|r| (r.label.as_str(), r.panels.as_slice()))
            .collect();
        draw_rows(&body, &rows, draw_panel)
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let geometry = PanelGeometry::begin(area, &panel.layer, panel.dots.len())?;
    let (radius, at) = (geometry.radius, |x, y| geometry.at(x, y));
    for d in &panel.dots {
        area.draw(&Circle::new(at(d.x, d.y), radius, d.colour.filled()))
            .map_err(e)?;
    }
    let arm = (radius / 2).max(3);
    for &(x, y, charge) in &panel.marks {
        let (cx, cy) = at(x, y);
        if charge > 0 {
            for (dx, dy) in [(arm, 0), (0, arm)] {
                area.draw(&PathElement::new(
                    vec![(cx - dx, cy - dy), (cx + dx, cy + dy)],
                    BLACK.stroke_width(2),
                ))
                .map_err(e)?;
            }
        } else {
            area.draw(&Circle::new((cx, cy), arm, BLACK.stroke_width(2)))
                .map_err(e)?;
        }
    }
    Ok(())
}
