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
use crate::config::StdKind;

/// One layer of one topography in one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothnessRow {
    pub panel: String,
    pub label: String,
    pub layer: String,
    pub seeds: usize,
    /// Score, slope, neighbours' same-class share, its shuffled share: (mean, SE).
    pub values: [(f64, Option<f64>); 4],
}

/// The rows of every chosen series, in series then layer order.
pub fn smoothness(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
) -> Result<Vec<SmoothnessRow>, ReportError> {
    let mut keys = Interner::new();
    let mut samples = Samples::new(4);
    for (s, one) in series.iter().enumerate() {
        for record in one
            .runs
            .iter()
            .filter_map(|&r| files.get(r).and_then(|f| f.topography.as_ref()))
        {
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
            },
        ));
    }
    // Series order, then layers in the order first met (the taps' order).
    rows.sort_by_key(|(s, g, _)| (*s, *g));
    Ok(rows.into_iter().map(|(_, _, r)| r).collect())
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
    vec![
        Block::heading(3, "Smoothness"),
        Block::paragraph(
            "One yardstick for every method and the baseline (measured on the 2D grid), on the first 256 test examples, at each topography's chosen λ: the score (correlation of channel similarity with 1/(d+1)), the slope of similarity against distance (negative: near channels respond alike), and the share of nearest-neighbour pairs on the layout whose channels prefer the same class, against the same share with the preferences shuffled over the positions (chance; mean of 100 seeded shuffles). Means over seeds ± standard errors.",
        ),
        Block::Table(grid),
    ]
}
