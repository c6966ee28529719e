//! Whether each topography's maps are real, from the runs' `analyses.json`: per layer and
//! map, the smoothness index and Moran's I as means over seeds with 95% confidence
//! intervals, how many seeds beat the shuffles (p < 0.05), and the pinwheel count
//! against shuffled preferences. The d′ maps of the classes are summarised together: per
//! run, their mean index and the share of class maps that beat the shuffles.

use std::collections::BTreeMap;

use super::curves::{PanelKey, Series};
use super::load::RunFiles;
use super::page::{Align, Block, Grid};
use super::plot::{Curve, LegendAt, LineFigure, Panel, Point};
use crate::results::{AnalysesRecord, LayerAnalyses, MapKind, MapRecord};

/// Maps with a p-value under this count as smoother than chance.
const ALPHA: f64 = 0.05;

/// A map family as the tables group it: every d′ map is one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Dprime,
    PreferredOrientation,
    OrientationSelectivity,
    PreferredSpatialFrequency,
    PreferredFrequency,
    TuningWidth,
}

impl Family {
    fn of(kind: &MapKind) -> Family {
        match kind {
            MapKind::Dprime { .. } => Family::Dprime,
            MapKind::PreferredOrientation => Family::PreferredOrientation,
            MapKind::OrientationSelectivity => Family::OrientationSelectivity,
            MapKind::PreferredSpatialFrequency => Family::PreferredSpatialFrequency,
            MapKind::PreferredFrequency => Family::PreferredFrequency,
            MapKind::TuningWidth => Family::TuningWidth,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Dprime => "category d′ (all classes)",
            Family::PreferredOrientation => "preferred orientation",
            Family::OrientationSelectivity => "orientation selectivity",
            Family::PreferredSpatialFrequency => "preferred spatial frequency",
            Family::PreferredFrequency => "preferred frequency",
            Family::TuningWidth => "tuning width",
        }
    }

    fn stem(self) -> &'static str {
        match self {
            Family::Dprime => "dprime",
            Family::PreferredOrientation => "orientation",
            Family::OrientationSelectivity => "orientation_selectivity",
            Family::PreferredSpatialFrequency => "spatial_frequency",
            Family::PreferredFrequency => "frequency",
            Family::TuningWidth => "tuning_width",
        }
    }
}

/// A mean over seeds with its 95% confidence interval (none from one seed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    /// Sample standard deviation; `None` from one value.
    pub sd: Option<f64>,
    pub n: usize,
}

/// Student's t at 0.975 for 1..=30 degrees of freedom; 1.96 beyond.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

impl Estimate {
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            var.sqrt()
        });
        Some(Estimate { mean, sd, n })
    }

    /// Half the 95% confidence interval of the mean (Student's t); `None` from one value.
    pub fn half_width(&self) -> Option<f64> {
        let t = T975.get(self.n.saturating_sub(2)).copied().unwrap_or(1.96);
        self.sd.map(|sd| t * sd / (self.n as f64).sqrt())
    }

    fn cell(&self, digits: usize) -> String {
        match self.half_width() {
            Some(h) => format!(
                "{:.digits$} [{:.digits$}, {:.digits$}]",
                self.mean,
                self.mean - h,
                self.mean + h
            ),
            None => format!("{:.digits$}", self.mean),
        }
    }
}

/// One map family of one layer of one topography, over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisRow {
    pub panel: String,
    pub label: String,
    pub layer: String,
    pub family: Family,
    pub smoothness: Estimate,
    /// Seeds (d′: class maps over all seeds) smoother than chance, and of how many.
    pub significant: (usize, usize),
    pub moran: Option<Estimate>,
    pub moran_z: Option<Estimate>,
    /// Pinwheels (preferred orientation on a lattice): count and the shuffles' mean.
    pub pinwheels: Option<(Estimate, Estimate)>,
}

#[derive(Default)]
struct Gathered {
    smoothness: Vec<f64>,
    significant: usize,
    tested: usize,
    moran: Vec<f64>,
    moran_z: Vec<f64>,
    pinwheels: Vec<f64>,
    shuffled: Vec<f64>,
}

/// The rows of every chosen series, in series, layer and family order.
pub fn analysis_rows(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
) -> Vec<AnalysisRow> {
    let mut rows = Vec::new();
    for one in series {
        // Layer order as the taps run, then family.
        let mut layers: Vec<String> = Vec::new();
        let mut by: BTreeMap<(usize, Family), Gathered> = BTreeMap::new();
        for record in one
            .runs
            .iter()
            .filter_map(|&r| files.get(r).and_then(|f| f.analyses.as_ref()))
        {
            for layer in &record.layers {
                let l = match layers.iter().position(|x| *x == layer.layer) {
                    Some(l) => l,
                    None => {
                        layers.push(layer.layer.clone());
                        layers.len() - 1
                    }
                };
                gather_layer(layer, l, &mut by);
            }
        }
        for ((l, family), g) in by {
            let Some(smoothness) = Estimate::of(&g.smoothness) else {
                continue;
            };
            let pinwheels = Estimate::of(&g.pinwheels).zip(Estimate::of(&g.shuffled));
            rows.push(AnalysisRow {
                panel: panels.get(one.panel).map_or(String::new(), PanelKey::title),
                label: one.label.clone(),
                layer: layers[l].clone(),
                family,
                smoothness,
                significant: (g.significant, g.tested),
                moran: Estimate::of(&g.moran),
                moran_z: Estimate::of(&g.moran_z),
                pinwheels,
            });
        }
    }
    rows
}

fn gather_layer(layer: &LayerAnalyses, l: usize, by: &mut BTreeMap<(usize, Family), Gathered>) {
    // Per family within this run: d′ maps are averaged into one value per run.
    let mut per_run: BTreeMap<Family, Vec<&MapRecord>> = BTreeMap::new();
    for m in &layer.maps {
        per_run.entry(Family::of(&m.map)).or_default().push(m);
    }
    for (family, maps) in per_run {
        let stats: Vec<_> = maps.iter().filter_map(|m| m.statistics.as_ref()).collect();
        if stats.is_empty() {
            continue;
        }
        let g = by.entry((l, family)).or_default();
        let mean = |f: &dyn Fn(&crate::topography::MapStatistics) -> f64| {
            stats.iter().map(|s| f(s)).sum::<f64>() / stats.len() as f64
        };
        g.smoothness.push(mean(&|s| s.smoothness));
        g.moran.push(mean(&|s| s.moran));
        let zs: Vec<f64> = stats.iter().filter_map(|s| s.moran_z).collect();
        if !zs.is_empty() {
            g.moran_z.push(zs.iter().sum::<f64>() / zs.len() as f64);
        }
        g.significant += stats.iter().filter(|s| s.smoothness_p < ALPHA).count();
        g.tested += stats.len();
        if family == Family::PreferredOrientation
            && let Some(p) = &layer.pinwheels
        {
            g.pinwheels.push(p.pinwheels.len() as f64);
            g.shuffled.push(p.null_mean);
        }
    }
}

/// The rows as a section of the index.
pub fn analysis_blocks(rows: &[AnalysisRow], permutations: Option<usize>) -> Vec<Block> {
    use Align::{Left, Right};
    if rows.is_empty() {
        return Vec::new();
    }
    let mut grid = Grid::with(&[
        ("Panel", Left),
        ("Topography", Left),
        ("Layer", Left),
        ("Map", Left),
        ("Seeds", Right),
        ("Smoothness index [95% CI]", Right),
        ("p < 0.05", Right),
        ("Moran's I [95% CI]", Right),
        ("Moran's z", Right),
        ("Pinwheels (shuffled)", Right),
    ]);
    for r in rows {
        grid.rows.push(vec![
            r.panel.clone(),
            r.label.clone(),
            format!("`{}`", r.layer),
            r.family.name().to_string(),
            r.smoothness.n.to_string(),
            r.smoothness.cell(3),
            format!("{}/{}", r.significant.0, r.significant.1),
            r.moran.map_or("–".into(), |m| m.cell(3)),
            r.moran_z.map_or("–".into(), |m| format!("{:.2}", m.mean)),
            r.pinwheels.map_or("–".into(), |(c, s)| {
                format!("{} ({:.1})", c.cell(1), s.mean)
            }),
        ]);
    }
    let shuffles = permutations.map_or("seeded shuffles".to_string(), |p| {
        format!("{p} seeded shuffles")
    });
    vec![
        Block::heading(3, "Are the maps real?"),
        Block::paragraph(format!(
            "Each map (a value per channel: d′ of each class against the rest on the probe set, preferred orientation, orientation selectivity and preferred spatial frequency from sine gratings, preferred frequency and tuning width from pure tones) is tested against {shuffles} of its values over the layout's positions. Smoothness index: 1 − (mean absolute difference of the nearest pairs) / (that of all pairs), circular for orientation; 0 is no smoother than chance. Moran's I with inverse-distance weights, z against the shuffles. Means over seeds with 95% confidence intervals (Student's t); \"p < 0.05\" counts the seeds (for d′, the class maps of every seed) whose index beats the shuffles at one-sided p < 0.05. Pinwheels: cells of a grid layout around which the preferred orientation turns once, the mean count with preferences shuffled in brackets. The baseline is measured on the 2D grid."
        )),
        Block::Table(grid),
    ]
}

/// A curve over the shuffles' mean, per bin: (distance, ratio), `None` for an empty bin.
type Relative = Vec<Option<(f64, f64)>>;
/// The shuffles' 95% band over their mean, per bin: (low, high).
type Band = Vec<(f64, f64)>;

/// The smoothness curves of each map family of panel `p`: one panel per layer, each
/// topography's curve (first bin nearest) as the mean absolute difference over the
/// shuffles' mean (1: chance), mean over seeds with its standard deviation, and the
/// shuffles' 95% band around 1.
pub fn curve_figures(
    panel: &PanelKey,
    p: usize,
    series: &[Series],
    files: &[RunFiles],
) -> Vec<(Family, LineFigure)> {
    let mut families: BTreeMap<Family, BTreeMap<String, Vec<Curve>>> = BTreeMap::new();
    let mut layer_order: Vec<String> = Vec::new();
    // The shuffles' band, relative to their mean, per family and layer and bin.
    let mut bands: BTreeMap<(Family, String), Vec<Band>> = BTreeMap::new();
    for one in series.iter().filter(|s| s.panel == p) {
        let records: Vec<&AnalysesRecord> = one
            .runs
            .iter()
            .filter_map(|&r| files.get(r).and_then(|f| f.analyses.as_ref()))
            .collect();
        // Per family and layer: per run, the relative curve (d′ averaged over classes).
        let mut curves: BTreeMap<(Family, String), Vec<Relative>> = BTreeMap::new();
        for record in &records {
            for layer in &record.layers {
                if !layer_order.contains(&layer.layer) {
                    layer_order.push(layer.layer.clone());
                }
                let mut per_family: BTreeMap<Family, Vec<Relative>> = BTreeMap::new();
                for m in &layer.maps {
                    let Some(s) = &m.statistics else { continue };
                    let relative: Vec<Option<(f64, f64)>> = s
                        .curve
                        .iter()
                        .map(|b| {
                            let (d, null) = (b.difference?, b.null_mean?);
                            (null > 0.0).then(|| (b.distance, d / null))
                        })
                        .collect();
                    per_family
                        .entry(Family::of(&m.map))
                        .or_default()
                        .push(relative);
                    let band: Vec<(f64, f64)> = s
                        .curve
                        .iter()
                        .filter_map(|b| {
                            let null = b.null_mean.filter(|n| *n > 0.0)?;
                            Some((b.null_low? / null, b.null_high? / null))
                        })
                        .collect();
                    bands
                        .entry((Family::of(&m.map), layer.layer.clone()))
                        .or_default()
                        .push(band);
                }
                for (family, maps) in per_family {
                    curves
                        .entry((family, layer.layer.clone()))
                        .or_default()
                        .push(average(&maps));
                }
            }
        }
        for ((family, layer), runs) in curves {
            let bins = runs.iter().map(Vec::len).max().unwrap_or(0);
            let points: Vec<Point> = (0..bins)
                .filter_map(|k| {
                    let at: Vec<(f64, f64)> = runs
                        .iter()
                        .filter_map(|r| r.get(k).copied().flatten())
                        .collect();
                    let e = Estimate::of(&at.iter().map(|v| v.1).collect::<Vec<_>>())?;
                    let x = at.iter().map(|v| v.0).sum::<f64>() / at.len() as f64;
                    Some(Point {
                        x,
                        y: e.mean,
                        std: e.sd,
                    })
                })
                .collect();
            families
                .entry(family)
                .or_default()
                .entry(layer)
                .or_default()
                .push(Curve {
                    label: one.label.clone(),
                    baseline: one.baseline,
                    colour: one.colour,
                    points,
                });
        }
    }
    families
        .into_iter()
        .map(|(family, layers)| {
            let panels = layer_order
                .iter()
                .filter_map(|layer| {
                    let mut curves = layers.get(layer)?.clone();
                    let x_max = curves
                        .iter()
                        .flat_map(|c| c.points.iter().map(|p| p.x))
                        .fold(0.0, f64::max);
                    if let Some(band) = bands.get(&(family, layer.clone())) {
                        curves.push(chance(band, x_max));
                    }
                    Some(Panel {
                        title: layer.clone(),
                        x_label: "distance on the layout".into(),
                        y_label: "difference / shuffled".into(),
                        curves,
                        legend: LegendAt::LowerRight,
                    })
                })
                .collect::<Vec<_>>();
            let columns = panels.len().clamp(1, 3);
            (
                family,
                LineFigure {
                    title: format!(
                        "{}, {}: pair difference / shuffled, against distance (1: chance; grey: 95% of shuffles)",
                        panel.title(),
                        family.name()
                    ),
                    panels,
                    columns,
                },
            )
        })
        .collect()
}

/// The file stem of a family's curves.
pub fn curve_stem(family: Family) -> &'static str {
    family.stem()
}

/// Pointwise mean of curves (a bin missing from one is averaged over the others).
fn average(curves: &[Vec<Option<(f64, f64)>>]) -> Vec<Option<(f64, f64)>> {
    let bins = curves.iter().map(Vec::len).max().unwrap_or(0);
    (0..bins)
        .map(|k| {
            let at: Vec<(f64, f64)> = curves
                .iter()
                .filter_map(|c| c.get(k).copied().flatten())
                .collect();
            (!at.is_empty()).then(|| {
                let n = at.len() as f64;
                (
                    at.iter().map(|v| v.0).sum::<f64>() / n,
                    at.iter().map(|v| v.1).sum::<f64>() / n,
                )
            })
        })
        .collect()
}

/// Chance: 1 at every distance, its band the mean half-width of the shuffles' 95% bands.
fn chance(bands: &[Vec<(f64, f64)>], x_max: f64) -> Curve {
    let widths: Vec<f64> = bands
        .iter()
        .flatten()
        .map(|(lo, hi)| (hi - lo) / 2.0)
        .collect();
    let half = widths.iter().sum::<f64>() / widths.len().max(1) as f64;
    Curve {
        label: "shuffled positions (95%)".into(),
        baseline: false,
        // The palette's grey.
        colour: 8,
        points: [0.0, x_max]
            .iter()
            .map(|&x| Point {
                x,
                y: 1.0,
                std: Some(half),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confidence_interval_uses_students_t() {
        let e = Estimate::of(&[1.0, 2.0, 3.0]).expect("estimate");
        // sd 1, n 3: t(2) = 4.303, half width 4.303 / sqrt 3.
        assert!((e.mean - 2.0).abs() < 1e-12);
        assert!((e.half_width().expect("ci") - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!(Estimate::of(&[5.0]).expect("one").half_width().is_none());
        assert!(Estimate::of(&[]).is_none());
    }
}
