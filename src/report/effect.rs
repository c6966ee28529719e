//! The pruning effect: how much better a topography's models keep their accuracy than the
//! baseline's when channels are pruned, as one number with its standard error, so that a
//! claim about resistance to pruning states its size and its spread over seeds.
//!
//! Per run, the mean test accuracy over the proportions pruned from 10% to 60% (where
//! figure 3's curves part); per topography, the mean of that over seeds minus the
//! baseline's, with the standard error of a difference of two independent means.

use std::collections::BTreeMap;

use super::ReportError;
use super::curves::{PanelKey, Series};
use super::load::RunFiles;
use super::page::{Align, Block, Grid};
use super::stats::{MeanStd, Samples, mean_std_by_group};
use crate::config::{PruneMethod, StdKind};

/// The proportions pruned that the effect averages over.
pub const WINDOW: (f64, f64) = (0.1, 0.6);

/// One topography against its panel's baseline, for one pruning method.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectRow {
    pub panel: String,
    pub method: PruneMethod,
    /// The series' label: the topography and its lambda.
    pub label: String,
    /// Whether this is the lambda chosen on validation (the table's and the figures').
    pub chosen: bool,
    pub seeds: usize,
    pub baseline_seeds: usize,
    /// Unpruned test accuracy minus the baseline's, in points.
    pub unpruned: f64,
    /// Mean accuracy over the window minus the baseline's, in points.
    pub effect: f64,
    /// Its standard error; `None` with fewer than two seeds on either side.
    pub standard_error: Option<f64>,
}

impl EffectRow {
    /// The effect over its standard error.
    pub fn t(&self) -> Option<f64> {
        self.standard_error
            .filter(|se| *se > 0.0)
            .map(|se| self.effect / se)
    }
}

fn in_window(p: f64) -> bool {
    p >= WINDOW.0 - 1e-9 && p <= WINDOW.1 + 1e-9
}

/// Per method, the (unpruned, window mean) accuracy in % of each of a series' runs.
fn per_run(series: &Series, files: &[RunFiles]) -> BTreeMap<PruneMethod, Vec<[f64; 2]>> {
    let mut out: BTreeMap<PruneMethod, Vec<[f64; 2]>> = BTreeMap::new();
    for f in series.runs.iter().filter_map(|&r| files.get(r)) {
        let mut by_method: BTreeMap<PruneMethod, (Option<f64>, Vec<f64>)> = BTreeMap::new();
        for row in &f.pruning {
            let entry = by_method.entry(row.method).or_default();
            if row.proportion.abs() < 1e-9 {
                entry.0 = Some(100.0 * row.accuracy);
            }
            if in_window(row.proportion) {
                entry.1.push(100.0 * row.accuracy);
            }
        }
        for (method, (unpruned, window)) in by_method {
            if let (Some(u), false) = (unpruned, window.is_empty()) {
                let mean = window.iter().sum::<f64>() / window.len() as f64;
                out.entry(method).or_default().push([u, mean]);
            }
        }
    }
    out
}

/// The runs' count, and the mean and sample standard deviation of both columns.
type Summary = (usize, [MeanStd; 2]);

/// Per method, the summary of a series' runs.
fn summarise(
    series: &Series,
    files: &[RunFiles],
) -> Result<BTreeMap<PruneMethod, Summary>, ReportError> {
    let mut out = BTreeMap::new();
    for (method, values) in per_run(series, files) {
        let mut samples = Samples::new(2);
        for v in &values {
            samples.push(0, v);
        }
        let stats = mean_std_by_group(samples, StdKind::Sample).map_err(|source| {
            ReportError::Aggregate {
                what: "the pruning effect",
                source,
            }
        })?;
        if let Some(g) = stats.first() {
            out.insert(method, (g.n, [g.values[0], g.values[1]]));
        }
    }
    Ok(out)
}

/// Every topography of every panel, at each lambda tried, against the panel's baseline,
/// for each method both were pruned by: `chosen` holds the cells at their chosen lambda,
/// `others` their other lambdas, each series with the records its runs index. Panels
/// without a baseline, or proportions outside the window, give none.
pub fn pruning_effects(
    panels: &[PanelKey],
    chosen: (&[Series], &[RunFiles]),
    others: (&[Series], &[RunFiles]),
) -> Result<Vec<EffectRow>, ReportError> {
    let (series, files) = chosen;
    let mut rows = Vec::new();
    for (p, panel) in panels.iter().enumerate() {
        let Some(base) = series.iter().find(|s| s.panel == p && s.baseline) else {
            continue;
        };
        let base_summary = summarise(base, files)?;
        let topographies = series.iter().filter(|s| s.panel == p && !s.baseline);
        for s in topographies {
            let mut lambdas: Vec<(&Series, &[RunFiles], bool)> = others
                .0
                .iter()
                .filter(|o| o.panel == p && o.topography == s.topography)
                .map(|o| (o, others.1, false))
                .collect();
            lambdas.push((s, files, true));
            lambdas.sort_by_key(|(s, _, _)| s.lambda);
            for (s, files, chosen) in lambdas {
                rows.extend(effect_rows(panel, s, files, chosen, &base_summary)?);
            }
        }
    }
    // One block per method, as the figures are.
    rows.sort_by_key(|r| r.method);
    Ok(rows)
}

/// One series' rows, one per method it shares with the baseline.
fn effect_rows(
    panel: &PanelKey,
    s: &Series,
    files: &[RunFiles],
    chosen: bool,
    base: &BTreeMap<PruneMethod, Summary>,
) -> Result<Vec<EffectRow>, ReportError> {
    let mut rows = Vec::new();
    for (method, (n, [u, w])) in summarise(s, files)? {
        let Some(&(nb, [ub, wb])) = base.get(&method) else {
            continue;
        };
        let standard_error = match (w.std, wb.std) {
            (Some(a), Some(b)) => Some((a * a / n as f64 + b * b / nb as f64).sqrt()),
            _ => None,
        };
        rows.push(EffectRow {
            panel: panel.title(),
            method,
            label: s.label.clone(),
            chosen,
            seeds: n,
            baseline_seeds: nb,
            unpruned: u.mean - ub.mean,
            effect: w.mean - wb.mean,
            standard_error,
        });
    }
    Ok(rows)
}

/// The effects as a section of the index.
pub fn effects_blocks(rows: &[EffectRow]) -> Vec<Block> {
    use Align::{Centre, Left, Right};
    let mut grid = Grid::with(&[
        ("Panel", Left),
        ("Pruning", Left),
        ("Topography", Left),
        ("Chosen", Centre),
        ("Seeds (baseline)", Right),
        ("Unpruned", Right),
        ("Effect", Right),
        ("t", Right),
    ]);
    for r in rows {
        let effect = match r.standard_error {
            Some(se) => format!("{:+.2} ± {se:.2}", r.effect),
            None => format!("{:+.2}", r.effect),
        };
        let t = r.t().map_or("n/a".to_string(), |t| format!("{t:+.1}"));
        grid.rows.push(vec![
            r.panel.clone(),
            super::curves::method_name(r.method).to_string(),
            r.label.clone(),
            if r.chosen { "✓" } else { "" }.to_string(),
            format!("{} ({})", r.seeds, r.baseline_seeds),
            format!("{:+.2}", r.unpruned),
            effect,
            t,
        ]);
    }
    vec![
        Block::heading(3, "Pruning effect"),
        Block::paragraph(format!(
            "Each topography against the baseline: test accuracy in points, unpruned and as the mean over {:.0}-{:.0}% of the channels of every topographic layer pruned, mean over seeds minus the baseline's, ± its standard error (sample standard deviations of the two groups); t is the effect over its standard error. Every λ tried is listed; ✓ marks the one chosen on validation, which the tables and figures show.",
            100.0 * WINDOW.0,
            100.0 * WINDOW.1
        )),
        Block::Table(grid),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Lambda;
    use crate::results::PruningRow;

    fn files(curves: &[&[(f64, f64)]]) -> Vec<RunFiles> {
        curves
            .iter()
            .map(|c| RunFiles {
                pruning: c
                    .iter()
                    .map(|&(proportion, accuracy)| PruningRow {
                        method: PruneMethod::L2,
                        proportion,
                        channels_pruned: 0,
                        channels_total: 8,
                        accuracy,
                    })
                    .collect(),
                metrics: Vec::new(),
                topography: None,
                analyses: None,
            })
            .collect()
    }

    fn series(label: &str, baseline: bool, runs: Vec<usize>) -> Series {
        Series {
            panel: 0,
            topography: label.into(),
            label: label.into(),
            baseline,
            colour: 0,
            runs,
            paper_row: None,
            lambda: None,
        }
    }

    #[test]
    fn the_effect_is_the_window_mean_difference_with_its_standard_error() {
        // Base runs: window means 0.40 and 0.60; grid runs: 0.70 and 0.90. The 0.9 point
        // lies outside the window and must not count.
        let f = files(&[
            &[(0.0, 0.9), (0.1, 0.5), (0.6, 0.3), (0.9, 0.1)],
            &[(0.0, 0.9), (0.1, 0.7), (0.6, 0.5), (0.9, 0.1)],
            &[(0.0, 0.8), (0.1, 0.8), (0.6, 0.6), (0.9, 0.5)],
            &[(0.0, 0.8), (0.1, 1.0), (0.6, 0.8), (0.9, 0.5)],
        ]);
        let panels = [PanelKey {
            dataset: "d".into(),
            model: "m".into(),
        }];
        let s = [
            series("base", true, vec![0, 1]),
            series("grid", false, vec![2, 3]),
        ];
        let rows = pruning_effects(&panels, (&s, &f), (&[], &[])).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.seeds, r.baseline_seeds), (2, 2));
        assert!((r.unpruned - -10.0).abs() < 1e-9, "{}", r.unpruned);
        assert!((r.effect - 30.0).abs() < 1e-9, "{}", r.effect);
        // Both groups have sample std sqrt(200) points: SE = sqrt(200/2 + 200/2) = 14.142.
        let se = r.standard_error.unwrap();
        assert!((se - 200f64.sqrt()).abs() < 1e-9, "{se}");
        assert!((r.t().unwrap() - 30.0 / 200f64.sqrt()).abs() < 1e-9);
        let md = super::super::page::markdown(&effects_blocks(&rows));
        assert!(
            md.contains("| d / m | l2 | grid | ✓ | 2 (2) | -10.00 | +30.00 ± 14.14 | +2.1 |"),
            "{md}"
        );

        // Another lambda of the grid, its records in a list of their own: listed after
        // the chosen one's smaller lambda, not chosen; the baseline is still the chosen list's.
        let mut other = series("grid", false, vec![0]);
        other.lambda = Lambda::new(5.0).ok();
        let mut chosen = s.clone();
        chosen[1].lambda = Lambda::new(1.0).ok();
        let other_files = files(&[&[(0.0, 0.5), (0.3, 0.2)]]);
        let rows = pruning_effects(&panels, (&chosen, &f), (&[other], &other_files)).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].chosen && !rows[1].chosen);
        assert_eq!(rows[1].seeds, 1);
        assert!(
            (rows[1].effect - (20.0 - 50.0)).abs() < 1e-9,
            "{}",
            rows[1].effect
        );
        assert!((rows[1].unpruned - (50.0 - 90.0)).abs() < 1e-9);
    }

    #[test]
    fn one_seed_has_no_standard_error_and_no_baseline_gives_no_row() {
        let f = files(&[&[(0.0, 0.9), (0.2, 0.5)], &[(0.0, 0.9), (0.2, 0.6)]]);
        let panels = [PanelKey {
            dataset: "d".into(),
            model: "m".into(),
        }];
        let s = [
            series("base", true, vec![0]),
            series("grid", false, vec![1]),
        ];
        let rows = pruning_effects(&panels, (&s, &f), (&[], &[])).unwrap();
        assert_eq!(rows[0].standard_error, None);
        assert_eq!(rows[0].t(), None);
        assert!(super::super::page::markdown(&effects_blocks(&rows)).contains("| +10.00 | n/a |"));
        let alone = pruning_effects(&panels, (&s[1..], &f), (&[], &[])).unwrap();
        assert!(alone.is_empty());
    }
}
