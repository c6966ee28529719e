//! One number per (data set, model, topography): the lambda with the best mean
//! validation accuracy over seeds, and the test accuracy of that lambda's runs.

use std::collections::BTreeMap;

use super::ReportError;
use super::scan::DoneRun;
use super::stats::{Interner, MeanStd, Samples, mean_std_by_group};
use crate::config::{Lambda, StdKind};

/// A table cell's identity: names as in the experiment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub dataset: String,
    pub model: String,
    pub topography: String,
}

/// Runs that differ only by seed: a cell and a lambda (`None` for the baseline, whose
/// lambda collapses).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    cell: CellKey,
    lambda: Option<Lambda>,
}

/// Accuracies of one lambda of a cell over its seeds, in %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LambdaStats {
    pub lambda: Option<Lambda>,
    pub seeds: usize,
    pub validation: MeanStd,
    pub test: MeanStd,
}

/// The lambda with the best mean validation accuracy; on a tie the smaller lambda
/// (the baseline's `None` first). Test accuracy plays no part.
pub fn choose_lambda(candidates: &[LambdaStats]) -> Option<&LambdaStats> {
    candidates.iter().reduce(|best, c| {
        let better = c.validation.mean > best.validation.mean
            || (c.validation.mean == best.validation.mean && c.lambda < best.lambda);
        if better { c } else { best }
    })
}

/// One lambda of a cell and the runs (indices into the done runs) behind it.
#[derive(Debug, Clone)]
pub struct TriedLambda {
    pub stats: LambdaStats,
    pub runs: Vec<usize>,
}

/// A cell: its chosen lambda and the others tried, each with the runs behind it.
#[derive(Debug, Clone)]
pub struct ChosenCell {
    pub chosen: TriedLambda,
    /// The other lambdas tried, in increasing order.
    pub others: Vec<TriedLambda>,
}

impl ChosenCell {
    /// Every lambda tried in increasing order, each with whether it is the chosen one.
    pub fn tried(&self) -> Vec<(&TriedLambda, bool)> {
        let mut all: Vec<(&TriedLambda, bool)> = self.others.iter().map(|t| (t, false)).collect();
        all.push((&self.chosen, true));
        all.sort_by_key(|(t, _)| t.stats.lambda);
        all
    }
}

/// Chooses the lambda of every cell present among `done`.
pub fn choose_cells(
    done: &[DoneRun],
    std: StdKind,
) -> Result<BTreeMap<CellKey, ChosenCell>, ReportError> {
    let mut groups = Interner::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut samples = Samples::new(2);
    for (i, run) in done.iter().enumerate() {
        let axes = &run.summary.axes;
        let cell = CellKey {
            dataset: axes.dataset.clone(),
            model: axes.model.clone(),
            topography: axes.topography.clone(),
        };
        let id = groups.id(GroupKey {
            cell,
            lambda: axes.lambda,
        });
        if members.len() <= id as usize {
            members.push(Vec::new());
        }
        members[id as usize].push(i);
        samples.push(id, &[100.0 * run.validation, 100.0 * run.test]);
    }
    let stats = mean_std_by_group(samples, std).map_err(|source| ReportError::Aggregate {
        what: "accuracies",
        source,
    })?;

    let mut by_cell: BTreeMap<CellKey, Vec<(LambdaStats, u32)>> = BTreeMap::new();
    for g in stats {
        let (Some(key), [validation, test]) = (groups.key(g.group), g.values.as_slice()) else {
            continue;
        };
        let s = LambdaStats {
            lambda: key.lambda,
            seeds: g.n,
            validation: *validation,
            test: *test,
        };
        by_cell
            .entry(key.cell.clone())
            .or_default()
            .push((s, g.group));
    }
    let mut cells = BTreeMap::new();
    for (key, mut candidates) in by_cell {
        candidates.sort_by_key(|c| c.0.lambda);
        let stats: Vec<LambdaStats> = candidates.iter().map(|c| c.0).collect();
        let Some(best) = choose_lambda(&stats).copied() else {
            continue;
        };
        let (mut chosen, mut others) = (None, Vec::new());
        for (stats, group) in candidates {
            let tried = TriedLambda {
                stats,
                runs: members.get(group as usize).cloned().unwrap_or_default(),
            };
            if chosen.is_none() && stats == best {
                chosen = Some(tried);
            } else {
                others.push(tried);
            }
        }
        if let Some(chosen) = chosen {
            cells.insert(key, ChosenCell { chosen, others });
        }
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(lambda: Option<f64>, validation: f64, test: f64) -> LambdaStats {
        let lambda = lambda.map(|l| Lambda::new(l).unwrap());
        let m = |mean| MeanStd { mean, std: None };
        LambdaStats {
            lambda,
            seeds: 1,
            validation: m(validation),
            test: m(test),
        }
    }

    #[test]
    fn best_validation_wins_whatever_test_says() {
        let c = [
            stats(Some(1e-3), 90.0, 95.0),
            stats(Some(0.1), 91.0, 80.0),
            stats(Some(1.0), 89.0, 99.0),
        ];
        assert_eq!(
            choose_lambda(&c).unwrap().lambda.map(Lambda::get),
            Some(0.1)
        );
    }

    #[test]
    fn ties_go_to_the_smaller_lambda() {
        let c = [
            stats(Some(1.0), 91.0, 0.0),
            stats(Some(0.01), 91.0, 0.0),
            stats(Some(0.1), 91.0, 0.0),
        ];
        assert_eq!(
            choose_lambda(&c).unwrap().lambda.map(Lambda::get),
            Some(0.01)
        );
        assert!(choose_lambda(&[]).is_none());
    }
}
