//! How smooth each topography's layers are, by one yardstick for every method and the
//! baseline: the correlation of channel similarity with `1 / (d + 1)` (the score), the
//! slope of similarity against distance, and the share of nearest neighbours on the
//! layout that prefer the same class against that share with positions shuffled. Means
//! over seeds ± standard errors, at each cell's chosen lambda.

use super::ReportError;
use super::curves::{PanelKey, Series};
use super::load::RunFiles;
use super::page::{Align, Block, Grid};
use super::stats::{Interner, Samples, mean_std_by_group};
use crate::config::{ResponsePoint, StdKind};

/// One layer of one topography in one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothnessRow {
    pub panel: String,
    pub label: String,
    pub layer: String,
    pub seeds: usize,
    /// Score, slope, neighbours' same-class share, its shuffled share: (mean, SE).
    pub values: [(f64, Option<f64>); 4],
    /// The examples per class of the probe set every run of the row was measured on;
    /// `None` when some were measured on the test split's first 256 examples (records
    /// written before probe sets).
    pub per_class: Option<usize>,
    /// Where every run of the row read its responses; `None` when some records predate
    /// the choice (each read its own tap) or the runs differ.
    pub at: Option<ResponsePoint>,
}

/// The rows of every chosen series, in series then layer order.
pub fn smoothness(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
) -> Result<Vec<SmoothnessRow>, ReportError> {
    let mut keys = Interner::new();
    let mut samples = Samples::new(4);
    // Per series: the probe's examples per class if every run has the same one.
    let mut probes: Vec<Option<usize>> = Vec::with_capacity(series.len());
    let mut points: Vec<Option<ResponsePoint>> = Vec::with_capacity(series.len());
    for (s, one) in series.iter().enumerate() {
        let records: Vec<_> = one
            .runs
            .iter()
            .filter_map(|&r| files.get(r).and_then(|f| f.topography.as_ref()))
            .collect();
        let per_class: Vec<Option<usize>> = records
            .iter()
            .map(|r| r.probe.as_ref().map(|p| p.per_class))
            .collect();
        probes.push(common(&per_class));
        let at: Vec<Option<ResponsePoint>> = records.iter().map(|r| r.at).collect();
        points.push(common(&at));
        for record in records {
            for layer in &record.layers {
                // Records written before the neighbour shares were measured lack them.
                let (Some(score), Some(slope), Some(n)) =
                    (layer.score, layer.slope, layer.neighbours)
                else {
                    continue;
                };
                let id = keys.id((s, layer.layer.clone()));
                samples.push(id, &[score, slope, n.same, n.shuffled]);
            }
        }
    }
    let stats =
        mean_std_by_group(samples, StdKind::Sample).map_err(|source| ReportError::Aggregate {
            what: "smoothness",
            source,
        })?;
    let mut rows: Vec<(usize, usize, SmoothnessRow)> = Vec::new();
    for g in stats {
        let Some((s, layer)) = keys.key(g.group).cloned() else {
            continue;
        };
        let one = &series[s];
        let se = |i: usize| {
            let v = g.values[i];
            (v.mean, v.std.map(|sd| sd / (g.n as f64).sqrt()))
        };
        rows.push((
            s,
            g.group as usize,
            SmoothnessRow {
                panel: panels.get(one.panel).map_or(String::new(), PanelKey::title),
                label: one.label.clone(),
                layer,
                seeds: g.n,
                values: [se(0), se(1), se(2), se(3)],
                per_class: probes.get(s).copied().flatten(),
                at: points.get(s).copied().flatten(),
            },
        ));
    }
    // Series order, then layers in the order first met (the taps' order).
    rows.sort_by_key(|(s, g, _)| (*s, *g));
    Ok(rows.into_iter().map(|(_, _, r)| r).collect())
}

/// The value every item shares, if they all share one.
fn common<T: Copy + PartialEq>(items: &[Option<T>]) -> Option<T> {
    match items.first() {
        Some(&first) if items.iter().all(|&p| p == first) => first,
        _ => None,
    }
}

fn cell((mean, se): (f64, Option<f64>), digits: usize) -> String {
    match se {
        Some(se) => format!("{mean:.digits$} ± {se:.digits$}"),
        None => format!("{mean:.digits$}"),
    }
}

/// The rows as a section of the index.
pub fn smoothness_blocks(rows: &[SmoothnessRow]) -> Vec<Block> {
    use Align::{Left, Right};
    let mut grid = Grid::with(&[
        ("Panel", Left),
        ("Topography", Left),
        ("Layer", Left),
        ("Seeds", Right),
        ("Score", Right),
        ("Slope", Right),
        ("Same class as nearest", Right),
        ("Shuffled", Right),
    ]);
    for r in rows {
        grid.rows.push(vec![
            r.panel.clone(),
            r.label.clone(),
            format!("`{}`", r.layer),
            r.seeds.to_string(),
            cell(r.values[0], 3),
            cell(r.values[1], 3),
            cell(r.values[2], 2),
            cell(r.values[3], 2),
        ]);
    }
    let probed: Vec<Option<usize>> = rows.iter().map(|r| r.per_class).collect();
    let examples = match probed.first() {
        Some(&Some(k)) if probed.iter().all(|&p| p == Some(k)) => format!(
            "on a seeded, class-balanced probe set of the test split ({k} examples per class, or all a class has; the same examples for every run)"
        ),
        _ if probed.iter().all(Option::is_none) => "on the first 256 test examples".to_owned(),
        _ => "on each run's recorded examples (a class-balanced probe set of the test split, or its first 256 examples for runs measured before probe sets)".to_owned(),
    };
    let at: Vec<Option<ResponsePoint>> = rows.iter().map(|r| r.at).collect();
    let responses = match common(&at) {
        Some(ResponsePoint::Relu) => {
            "of each tapped layer's responses after its batch norm and ReLU"
        }
        Some(ResponsePoint::Conv) => "of each tapped conv's outputs before batch norm",
        None => {
            "of each run's tapped responses (conv outputs before batch norm unless its topography reads `tap: block`, or where its record says)"
        }
    };
    vec![
        Block::heading(3, "Smoothness"),
        Block::paragraph(format!(
            "One yardstick for every method and the baseline (each topography on its own layout, the baseline on the 2D grid), {examples}, at each topography's chosen λ, {responses}: the score (correlation of channel similarity with 1/(d+1)), the slope of similarity against distance (negative: near channels respond alike), and the share of nearest-neighbour pairs on the layout whose channels prefer the same class, against the same share with the preferences shuffled over the positions (chance; mean of 100 seeded shuffles). Means over seeds ± standard errors."
        )),
        Block::Table(grid),
    ]
}
