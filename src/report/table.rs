//! A results table as the paper lays it out: rows are the topographies then the
//! baseline, columns data set x model, cells the chosen lambda's test accuracy.

use std::collections::{BTreeMap, BTreeSet};

use super::cells::{CellKey, ChosenCell, LambdaStats};
use super::identity::{ExperimentInfo, Kinds};
use super::paper::{PaperRow, PaperValue, paper_value};
use crate::config::{PaperTable, StdKind, TableSpec};

/// A column: a data set and a model, by their names in the experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    pub dataset: String,
    pub model: String,
}

/// A row: a topography, by its name in the experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub topography: String,
    /// The name, followed by the paper's row label when that differs.
    pub label: String,
    pub paper_row: Option<PaperRow>,
    pub baseline: bool,
}

/// A filled cell, in %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableCell {
    pub stats: LambdaStats,
    pub paper: Option<(PaperTable, PaperValue)>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub std: StdKind,
    pub columns: Vec<TableColumn>,
    pub rows: Vec<TableRow>,
    /// `cells[row][column]`; `None` where no run finished.
    pub cells: Vec<Vec<Option<TableCell>>>,
    /// Seeds a full cell has; cells with fewer say how many they have.
    pub expected_seeds: usize,
}

impl Table {
    /// The published tables some cell is compared with, in the paper's order.
    pub fn paper_tables(&self) -> Vec<PaperTable> {
        let used: Vec<PaperTable> = self
            .cells
            .iter()
            .flatten()
            .flatten()
            .filter_map(|c| c.paper.map(|p| p.0))
            .collect();
        [PaperTable::Table1, PaperTable::Table2]
            .into_iter()
            .filter(|t| used.contains(t))
            .collect()
    }

    /// Cells without any finished run.
    pub fn missing(&self) -> Vec<(&TableColumn, &TableRow)> {
        let mut out = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            for (c, column) in self.columns.iter().enumerate() {
                if self.cells[r][c].is_none() {
                    out.push((column, row));
                }
            }
        }
        out
    }
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Names in the experiment's order, then any others found, sorted.
fn ordered(preferred: &[String], found: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = preferred.to_vec();
    let extra: BTreeSet<String> = found.filter(|n| !preferred.contains(n)).collect();
    out.extend(extra);
    out
}

/// Builds the table `spec` from the chosen cells.
pub fn build_table(
    spec: &TableSpec,
    cells: &BTreeMap<CellKey, ChosenCell>,
    kinds: &Kinds,
    info: &ExperimentInfo,
    std: StdKind,
) -> Table {
    let datasets = match &spec.datasets {
        Some(d) => d.clone(),
        None => ordered(
            &info.datasets_order,
            cells.keys().map(|k| k.dataset.clone()),
        ),
    };
    let in_table: Vec<&CellKey> = cells
        .keys()
        .filter(|k| datasets.contains(&k.dataset))
        .collect();
    let models = ordered(&info.models_order, in_table.iter().map(|k| k.model.clone()));
    let topographies = ordered(
        &info.topographies_order,
        in_table.iter().map(|k| k.topography.clone()),
    );

    let columns: Vec<TableColumn> = datasets
        .iter()
        .flat_map(|d| {
            models.iter().map(move |m| TableColumn {
                dataset: d.clone(),
                model: m.clone(),
            })
        })
        .collect();
    let grid_position = |name: &str| {
        info.topographies_order
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    };
    let mut rows: Vec<TableRow> = topographies
        .iter()
        .map(|name| {
            let topography = kinds.topographies.get(name);
            let paper_row = topography.and_then(PaperRow::of);
            let baseline = match topography {
                Some(t) => t.is_baseline(),
                None => in_table
                    .iter()
                    .filter(|k| &k.topography == name)
                    .all(|k| cells[*k].chosen.stats.lambda.is_none()),
            };
            let label = match paper_row {
                Some(p) if normalise(p.label()) != normalise(name) => {
                    format!("{name} ({})", p.label())
                }
                _ => name.clone(),
            };
            TableRow {
                topography: name.clone(),
                label,
                paper_row,
                baseline,
            }
        })
        .collect();
    rows.sort_by_key(|r| {
        let paper = r.paper_row.map_or(PaperRow::Base.index(), PaperRow::index);
        (
            r.baseline,
            paper,
            grid_position(&r.topography),
            r.topography.clone(),
        )
    });

    let grid: Vec<Vec<Option<TableCell>>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| {
                    let key = CellKey {
                        dataset: column.dataset.clone(),
                        model: column.model.clone(),
                        topography: row.topography.clone(),
                    };
                    let cell = cells.get(&key)?;
                    let paper = match (
                        kinds.datasets.get(&column.dataset),
                        kinds.models.get(&column.model),
                        row.paper_row,
                    ) {
                        (Some(&d), Some(&m), Some(r)) => paper_value(spec.paper, d, m, r),
                        _ => None,
                    };
                    Some(TableCell {
                        stats: cell.chosen.stats,
                        paper,
                    })
                })
                .collect()
        })
        .collect();
    let most_seeds = grid
        .iter()
        .flatten()
        .flatten()
        .map(|c| c.stats.seeds)
        .max()
        .unwrap_or(0);
    Table {
        name: spec.name.clone(),
        std,
        columns,
        rows,
        cells: grid,
        expected_seeds: info.seeds.unwrap_or(most_seeds),
    }
}
