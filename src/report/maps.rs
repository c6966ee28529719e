//! Category maps: each tapped layer's channels at their layout positions, coloured by
//! the class they prefer (the highest d′ of the analyses) and paler the lower that d′ is
//! against the layer's highest (records without analyses: the class of the highest mean
//! response, paler the less selective) (the look of TDANN's and
//! All-TNN's category maps, for any 2D layout and any data set). One row per run, one
//! panel per layer; baselines are drawn on the 2D grid they are measured on.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{LABEL, PANEL, PanelGeometry, draw_rows, placed};
use super::layouts::{DrawResult, Drawing, LayoutPlotError, paler, render};
use super::plot::FAMILY;
use crate::results::{AnalysesRecord, LayerAnalyses, MapKind, TopographyRecord};
use crate::topography::Preference;

const HEADER: u32 = 40;
const LEGEND: u32 = 50;

/// Matplotlib's tab10: ten classes told apart at a glance.
const CLASS_COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// One channel on a map.
struct Dot {
    x: f64,
    y: f64,
    class: usize,
    selectivity: f64,
}

/// One layer's panel.
struct Panel {
    layer: String,
    /// In the unit square, aspect kept.
    dots: Vec<Dot>,
}

/// One row: a run's label and its layers.
pub struct MapRow {
    pub label: String,
    panels: Vec<Panel>,
    /// The classes' names, where the analyses give them.
    names: Vec<String>,
}

impl MapRow {
    /// The row of a run's records; `None` when it has no 2D positions with preferences
    /// (records written before preferences were measured, 1D and 3D layouts).
    pub fn of(
        label: &str,
        record: &TopographyRecord,
        analyses: Option<&AnalysesRecord>,
    ) -> Option<MapRow> {
        let panels: Vec<Panel> = record
            .layers
            .iter()
            .filter_map(|l| {
                let p = l.positions.as_ref()?;
                let preferences = analyses
                    .and_then(|a| a.layers.iter().find(|a| a.layer == l.layer))
                    .and_then(by_dprime)
                    .unwrap_or_else(|| l.preferences.clone());
                if p.dim != 2 || preferences.len() * 2 != p.coords.len() {
                    return None;
                }
                let (points, _) = placed(&p.coords);
                let dots = points
                    .into_iter()
                    .zip(&preferences)
                    .map(|((x, y), q)| Dot {
                        x,
                        y,
                        class: q.class,
                        selectivity: q.selectivity,
                    })
                    .collect();
                Some(Panel {
                    layer: l.layer.clone(),
                    dots,
                })
            })
            .collect();
        let names = analyses
            .and_then(|a| a.layers.first())
            .map(|l| {
                l.maps
                    .iter()
                    .filter_map(|m| match &m.map {
                        MapKind::Dprime { name, .. } => Some(name.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        (!panels.is_empty()).then(|| MapRow {
            label: label.to_owned(),
            panels,
            names,
        })
    }
}

impl MapRow {
    /// Classes the legend needs: one past the highest class drawn.
    pub fn classes(&self) -> usize {
        self.panels
            .iter()
            .flat_map(|p| &p.dots)
            .map(|d| d.class + 1)
            .max()
            .unwrap_or(1)
    }
}

/// Each channel's class of highest d′, and that d′ over the layer's highest (0 where it
/// is not positive); `None` when the layer has no d′ maps.
fn by_dprime(layer: &LayerAnalyses) -> Option<Vec<Preference>> {
    let maps: Vec<&Vec<Option<f64>>> = layer
        .maps
        .iter()
        .filter(|m| matches!(m.map, MapKind::Dprime { .. }))
        .map(|m| &m.values)
        .collect();
    if maps.is_empty() {
        return None;
    }
    let best: Vec<(usize, f64)> = (0..layer.channels)
        .map(|c| {
            maps.iter()
                .enumerate()
                .filter_map(|(k, v)| Some((k, v.get(c).copied().flatten()?)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0))
        })
        .collect();
    let top = best.iter().map(|b| b.1).fold(0.0, f64::max);
    Some(
        best.into_iter()
            .map(|(class, d)| Preference {
                class,
                selectivity: if top > 0.0 { (d / top).max(0.0) } else { 0.0 },
            })
            .collect(),
    )
}

struct MapFigure<'a> {
    title: &'a str,
    rows: &'a [MapRow],
    classes: usize,
}

/// Colour of a channel preferring `class` with this selectivity (0 is nearly white).
fn dot_colour(class: usize, selectivity: f64) -> RGBColor {
    let (r, g, b) = CLASS_COLOURS[class % CLASS_COLOURS.len()];
    paler(
        RGBColor(r, g, b),
        0.85 * (1.0 - selectivity.clamp(0.0, 1.0)),
    )
}

/// Draws `rows` to `path` (PNG or SVG by extension); `classes` sizes the legend.
pub fn draw_maps(
    path: &Path,
    title: &str,
    rows: &[MapRow],
    classes: usize,
) -> Result<(), LayoutPlotError> {
    let columns = rows.iter().map(|r| r.panels.len()).max().unwrap_or(1) as u32;
    let size = (
        LABEL + columns * PANEL,
        HEADER + rows.len() as u32 * PANEL + LEGEND,
    );
    render(
        path,
        size,
        &MapFigure {
            title,
            rows,
            classes,
        },
    )
}

impl Drawing for MapFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (_, h) = root.dim_in_pixel();
        let (header, rest) = root.split_vertically(HEADER);
        header
            .draw_text(self.title, &(FAMILY, 24).into_font().color(&BLACK), (10, 8))
            .map_err(e)?;
        let (body, legend) = rest.split_vertically(h - HEADER - LEGEND);
        let rows: Vec<(&str, &[Panel])> = self
            .rows
            .iter()
            .map(|r| (r.label.as_str(), r.panels.as_slice()))
            .collect();
        draw_rows(&body, &rows, draw_panel)?;
        let names = self
            .rows
            .iter()
            .map(|r| &r.names)
            .find(|n| n.len() >= self.classes);
        let step = if names.is_some() { 120 } else { 90 };
        for k in 0..self.classes {
            let x = 10 + k as i32 * step;
            legend
                .draw(&Circle::new(
                    (x + 8, LEGEND as i32 / 2),
                    7,
                    dot_colour(k, 1.0).filled(),
                ))
                .map_err(e)?;
            legend
                .draw_text(
                    &names.map_or_else(|| format!("class {k}"), |n| n[k].clone()),
                    &(FAMILY, 15).into_font().color(&BLACK),
                    (x + 20, LEGEND as i32 / 2 - 8),
                )
                .map_err(e)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let geometry = PanelGeometry::begin(area, &panel.layer, panel.dots.len())?;
    let radius = geometry.radius;
    // A faint frame around the layer's square, so neighbouring panels stay apart.
    area.draw(&Rectangle::new(
        geometry.frame(radius as f64 + 4.0),
        RGBColor(215, 215, 215).stroke_width(1),
    ))
    .map_err(e)?;
    for d in &panel.dots {
        let centre = geometry.at(d.x, d.y);
        area.draw(&Circle::new(
            centre,
            radius,
            dot_colour(d.class, d.selectivity).filled(),
        ))
        .map_err(e)?;
        area.draw(&Circle::new(
            centre,
            radius,
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(e)?;
    }
    Ok(())
}
