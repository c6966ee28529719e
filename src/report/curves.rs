//! Curves over seeds with polars: pruning (figure 3), training, and channel similarity
//! against distance. Each run group (a cell at its chosen lambda) becomes one curve.

use std::collections::BTreeMap;

use super::ReportError;
use super::load::RunFiles;
use super::paper::PaperRow;
use super::plot::{Curve, LegendAt, LineFigure, Panel, Point};
use super::stats::{GroupStats, Interner, Samples, mean_std_by_group};
use crate::config::{Lambda, PruneMethod, StdKind};
use crate::results::SplitKind;

/// A panel of the figures: one data set and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelKey {
    pub dataset: String,
    pub model: String,
}

impl PanelKey {
    pub fn title(&self) -> String {
        format!("{} / {}", self.dataset, self.model)
    }
}

/// A curve's runs: one cell at its chosen lambda.
#[derive(Debug, Clone)]
pub struct Series {
    /// Index into the panels.
    pub panel: usize,
    /// The topography's name in the experiment.
    pub topography: String,
    pub label: String,
    pub baseline: bool,
    pub colour: usize,
    /// Indices into the loaded [`RunFiles`].
    pub runs: Vec<usize>,
    /// The paper's row of the topography, and the cell's chosen lambda.
    pub paper_row: Option<PaperRow>,
    pub lambda: Option<Lambda>,
}

pub fn method_name(method: PruneMethod) -> &'static str {
    match method {
        PruneMethod::L2 => "l2",
        PruneMethod::L1 => "l1",
        PruneMethod::Random => "random",
    }
}

fn method_title(method: PruneMethod) -> &'static str {
    match method {
        PruneMethod::L2 => "lowest L2 norm first",
        PruneMethod::L1 => "lowest L1 norm first",
        PruneMethod::Random => "random channels",
    }
}

fn aggregate<K: std::hash::Hash + Eq + Clone>(
    samples: Samples,
    keys: &Interner<K>,
    std: StdKind,
    what: &'static str,
) -> Result<Vec<(K, GroupStats)>, ReportError> {
    let stats = mean_std_by_group(samples, std)
        .map_err(|source| ReportError::Aggregate { what, source })?;
    Ok(stats
        .into_iter()
        .filter_map(|g| Some((keys.key(g.group)?.clone(), g)))
        .collect())
}

fn curve(series: &Series, mut points: Vec<Point>) -> Curve {
    points.sort_by(|a, b| a.x.total_cmp(&b.x));
    Curve {
        label: series.label.clone(),
        baseline: series.baseline,
        colour: series.colour,
        points,
    }
}

/// Proportions are matched to a millionth, so `0.29` and `0.29000000000000004` agree.
fn proportion_key(p: f64) -> i64 {
    (p * 1e6).round() as i64
}

/// Figure 3, one figure per method: test accuracy against the proportion pruned.
pub fn pruning_figures(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
    std: StdKind,
) -> Result<Vec<(PruneMethod, LineFigure)>, ReportError> {
    let mut keys = Interner::new();
    let mut samples = Samples::new(1);
    for (s, one) in series.iter().enumerate() {
        for &r in &one.runs {
            for row in files
                .get(r)
                .map(|f| f.pruning.as_slice())
                .unwrap_or_default()
            {
                let id = keys.id((s, row.method, proportion_key(row.proportion)));
                samples.push(id, &[100.0 * row.accuracy]);
            }
        }
    }
    let mut points: BTreeMap<(PruneMethod, usize), Vec<Point>> = BTreeMap::new();
    for ((s, method, p), g) in aggregate(samples, &keys, std, "pruning curves")? {
        let v = g.values[0];
        points.entry((method, s)).or_default().push(Point {
            x: p as f64 / 1e4,
            y: v.mean,
            std: v.std,
        });
    }
    let mut by_method: BTreeMap<PruneMethod, Vec<Vec<Curve>>> = BTreeMap::new();
    for ((method, s), pts) in points {
        let curves = by_method
            .entry(method)
            .or_insert_with(|| vec![Vec::new(); panels.len()]);
        curves[series[s].panel].push(curve(&series[s], pts));
    }
    Ok(by_method
        .into_iter()
        .map(|(method, curves)| {
            let panels: Vec<Panel> = panels
                .iter()
                .zip(curves)
                .filter(|(_, c)| !c.is_empty())
                .map(|(key, curves)| Panel {
                    title: key.title(),
                    x_label: "Channels pruned in each topographic layer (%)".into(),
                    y_label: "Test accuracy (%)".into(),
                    curves,
                    legend: LegendAt::LowerLeft,
                })
                .collect();
            let title = format!("Pruning, {}: mean ± std over seeds", method_title(method));
            let columns = panels.len().min(3);
            (
                method,
                LineFigure {
                    title,
                    panels,
                    columns,
                },
            )
        })
        .collect())
}

/// Training curves per panel: loss per epoch (training split) and validation accuracy.
pub fn training_figures(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
    std: StdKind,
) -> Result<Vec<(usize, LineFigure)>, ReportError> {
    let mut keys = Interner::new();
    let mut samples = Samples::new(2);
    for (s, one) in series.iter().enumerate() {
        for &r in &one.runs {
            for rec in files
                .get(r)
                .map(|f| f.metrics.as_slice())
                .unwrap_or_default()
            {
                if matches!(rec.split, SplitKind::Train | SplitKind::Validation) {
                    let id = keys.id((s, rec.split, rec.epoch));
                    samples.push(id, &[rec.loss, 100.0 * rec.accuracy]);
                }
            }
        }
    }
    let mut loss: BTreeMap<usize, Vec<Point>> = BTreeMap::new();
    let mut accuracy: BTreeMap<usize, Vec<Point>> = BTreeMap::new();
    for ((s, split, epoch), g) in aggregate(samples, &keys, std, "training curves")? {
        let x = f64::from(epoch);
        match split {
            SplitKind::Train => loss.entry(s).or_default().push(Point {
                x,
                y: g.values[0].mean,
                std: g.values[0].std,
            }),
            SplitKind::Validation => accuracy.entry(s).or_default().push(Point {
                x,
                y: g.values[1].mean,
                std: g.values[1].std,
            }),
            SplitKind::Test => {}
        }
    }
    let mut figures = Vec::new();
    for (p, key) in panels.iter().enumerate() {
        let of_panel = |m: &BTreeMap<usize, Vec<Point>>| -> Vec<Curve> {
            m.iter()
                .filter(|(s, _)| series[**s].panel == p)
                .map(|(s, pts)| curve(&series[*s], pts.clone()))
                .collect()
        };
        let (loss_curves, accuracy_curves) = (of_panel(&loss), of_panel(&accuracy));
        if loss_curves.is_empty() && accuracy_curves.is_empty() {
            continue;
        }
        let panel = |title: &str, y: &str, curves, legend| Panel {
            title: title.into(),
            x_label: "Epoch".into(),
            y_label: y.into(),
            curves,
            legend,
        };
        let figure = LineFigure {
            title: format!("Training: {} (mean ± std over seeds)", key.title()),
            panels: vec![
                panel(
                    "Training loss",
                    "Loss (cross-entropy + λ · topographic)",
                    loss_curves,
                    LegendAt::UpperRight,
                ),
                panel(
                    "Validation accuracy",
                    "Accuracy (%)",
                    accuracy_curves,
                    LegendAt::LowerRight,
                ),
            ],
            columns: 2,
        };
        figures.push((p, figure));
    }
    Ok(figures)
}

/// Channel similarity against distance, one panel per tapped layer, per data set and model.
pub fn topography_figures(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
    std: StdKind,
) -> Result<Vec<(usize, LineFigure)>, ReportError> {
    let mut keys = Interner::new();
    let mut layers: Vec<Vec<String>> = vec![Vec::new(); panels.len()];
    let mut samples = Samples::new(2);
    for (s, one) in series.iter().enumerate() {
        for &r in &one.runs {
            let Some(record) = files.get(r).and_then(|f| f.topography.as_ref()) else {
                continue;
            };
            for layer in &record.layers {
                let names = &mut layers[one.panel];
                if !names.contains(&layer.layer) {
                    names.push(layer.layer.clone());
                }
                for (b, bin) in layer.bins.iter().enumerate() {
                    let id = keys.id((s, layer.layer.clone(), b));
                    // An empty bin has no similarity: it is no point of the curve.
                    if let Some(similarity) = bin.similarity {
                        samples.push(id, &[bin.distance, similarity]);
                    }
                }
            }
        }
    }
    let mut points: BTreeMap<(usize, String), Vec<Point>> = BTreeMap::new();
    for ((s, layer, _), g) in aggregate(samples, &keys, std, "topography curves")? {
        let point = Point {
            x: g.values[0].mean,
            y: g.values[1].mean,
            std: g.values[1].std,
        };
        points.entry((s, layer)).or_default().push(point);
    }
    let mut figures = Vec::new();
    for (p, key) in panels.iter().enumerate() {
        if layers[p].is_empty() {
            continue;
        }
        let layer_panels: Vec<Panel> = layers[p]
            .iter()
            .map(|layer| Panel {
                title: layer.clone(),
                x_label: "Distance between channel positions".into(),
                y_label: "Mean cosine similarity".into(),
                curves: points
                    .iter()
                    .filter(|((s, l), _)| l == layer && series[*s].panel == p)
                    .map(|((s, _), pts)| curve(&series[*s], pts.clone()))
                    .collect(),
                legend: LegendAt::UpperRight,
            })
            .collect();
        let columns = layer_panels.len().min(4);
        let title = format!("Similarity against distance: {} (mean ± std)", key.title());
        figures.push((
            p,
            LineFigure {
                title,
                panels: layer_panels,
                columns,
            },
        ));
    }
    Ok(figures)
}
