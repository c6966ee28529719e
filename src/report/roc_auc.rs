//! ROC-AUC of the two-class data sets (BirdDCASE), as the reference reports it beside
//! accuracy: per cell at its chosen lambda, mean ± std over the runs that recorded it.

use std::collections::BTreeMap;

use super::ReportError;
use super::cells::{CellKey, ChosenCell};
use super::page::{Align, Block, Grid};
use super::render::lambda_text;
use super::scan::DoneRun;
use super::stats::{MeanStd, Samples, mean_std_by_group};
use crate::config::StdKind;

/// One cell's test ROC-AUC, in %.
#[derive(Debug, Clone, PartialEq)]
pub struct RocAucCell {
    pub key: CellKey,
    pub lambda: String,
    pub roc_auc: MeanStd,
    pub seeds: usize,
}

/// Every cell whose runs recorded a test ROC-AUC.
pub fn roc_auc_cells(
    cells: &BTreeMap<CellKey, ChosenCell>,
    done: &[DoneRun],
    std: StdKind,
) -> Result<Vec<RocAucCell>, ReportError> {
    let mut samples = Samples::new(1);
    let keys: Vec<&CellKey> = cells.keys().collect();
    for (i, cell) in cells.values().enumerate() {
        for run in cell.chosen.runs.iter().filter_map(|&r| done.get(r)) {
            if let Some(auc) = run.summary.test_roc_auc {
                samples.push(i as u32, &[100.0 * auc]);
            }
        }
    }
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let stats = mean_std_by_group(samples, std).map_err(|source| ReportError::Aggregate {
        what: "ROC-AUC",
        source,
    })?;
    Ok(stats
        .into_iter()
        .filter_map(|g| {
            let key = *keys.get(g.group as usize)?;
            Some(RocAucCell {
                key: key.clone(),
                lambda: lambda_text(cells.get(key)?.chosen.stats.lambda),
                roc_auc: g.values[0],
                seeds: g.n,
            })
        })
        .collect())
}

/// The cells as a section of the index.
pub fn roc_auc_blocks(cells: &[RocAucCell]) -> Vec<Block> {
    use Align::{Left, Right};
    let mut grid = Grid::with(&[
        ("Data set", Left),
        ("Model", Left),
        ("Topography", Left),
        ("λ", Right),
        ("ROC-AUC", Right),
        ("Seeds", Right),
    ]);
    for c in cells {
        let value = match c.roc_auc.std {
            Some(s) => format!("{:.2} ± {s:.2}", c.roc_auc.mean),
            None => format!("{:.2}", c.roc_auc.mean),
        };
        grid.rows.push(vec![
            c.key.dataset.clone(),
            c.key.model.clone(),
            c.key.topography.clone(),
            c.lambda.to_string(),
            value,
            c.seeds.to_string(),
        ]);
    }
    vec![
        Block::heading(2, "ROC-AUC"),
        Block::paragraph(
            "Two-class data sets: test ROC-AUC in % of the predicted classes (as the reference computes it, `roc_auc_score(targets, argmax)`), each cell at its chosen λ, mean ± std over seeds.",
        ),
        Block::Table(grid),
    ]
}
