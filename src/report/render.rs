//! A [`Table`] as Markdown, LaTeX (booktabs) and CSV.

use std::collections::BTreeMap;

use serde::Serialize;

use super::cells::{CellKey, ChosenCell};

use super::page::{self, Block, Grid};
use super::paper::table_title;
use super::table::{Table, TableCell};
use crate::config::{Lambda, StdKind};

/// A cell's lambda as the run ids write it, or `none` for the baseline.
pub fn lambda_text(lambda: Option<Lambda>) -> String {
    lambda.map_or_else(|| "none".to_string(), |l| l.to_string())
}

fn std_words(std: StdKind) -> &'static str {
    match std {
        StdKind::Sample => "sample standard deviation, n − 1",
        StdKind::Population => "population standard deviation, n",
    }
}

/// The caption shared by every format.
pub fn caption(std: StdKind) -> String {
    format!(
        "Mean test accuracy in % (± {}) over seeds. For each data set, model and topography, \
         λ is the one with the best mean validation accuracy over seeds.",
        std_words(std)
    )
}

const MISSING: &str = "—";

fn accuracy_text(table: &Table, cell: &TableCell) -> String {
    let s = &cell.stats;
    let mut text = match s.test.std {
        Some(std) => format!("{:.2} ± {std:.2}", s.test.mean),
        None => format!("{:.2}", s.test.mean),
    };
    if s.seeds < table.expected_seeds {
        text.push_str(&format!(" (n={})", s.seeds));
    }
    text
}

fn grid(table: &Table, cell_text: impl Fn(&TableCell) -> Option<String>) -> Block {
    let mut header = vec!["Topography".to_string()];
    header.extend(
        table
            .columns
            .iter()
            .map(|c| format!("{} / {}", c.dataset, c.model)),
    );
    let mut grid = Grid::numeric(header);
    for (row, cells) in table.rows.iter().zip(&table.cells) {
        let mut line = vec![row.label.clone()];
        line.extend(cells.iter().map(|cell| {
            cell.as_ref()
                .and_then(&cell_text)
                .unwrap_or_else(|| MISSING.to_string())
        }));
        grid.rows.push(line);
    }
    Block::Table(grid)
}

/// The table, the lambda of each cell and the comparison with the paper, with headings
/// at `level` (1 for a file of its own).
pub fn table_blocks(table: &Table, level: usize) -> Vec<Block> {
    let mut blocks = vec![
        Block::heading(level, format!("Table `{}`", table.name)),
        Block::paragraph(caption(table.std)),
        grid(table, |c| Some(accuracy_text(table, c))),
        Block::heading(level + 1, "λ chosen"),
        Block::paragraph("λ of each cell and, in parentheses, its number of seeds."),
        grid(table, |c| {
            Some(format!(
                "{} ({})",
                lambda_text(c.stats.lambda),
                c.stats.seeds
            ))
        }),
    ];
    let papers = table.paper_tables();
    if !papers.is_empty() {
        let names: Vec<&str> = papers.iter().map(|&t| table_title(t)).collect();
        blocks.push(Block::heading(
            level + 1,
            format!("Compared with the paper ({})", names.join(", ")),
        ));
        blocks.push(Block::paragraph(
            "Our mean minus the paper's, in percentage points; the paper's mean ± std in parentheses.",
        ));
        blocks.push(grid(table, |c| {
            let (_, p) = c.paper?;
            Some(format!(
                "{:+.2} ({:.2} ± {:.2})",
                c.stats.test.mean - p.mean,
                p.mean,
                p.std
            ))
        }));
    }
    blocks
}

/// The table as a Markdown file of its own.
pub fn markdown(table: &Table) -> String {
    page::markdown(&table_blocks(table, 1))
}

fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '±' => out.push_str("$\\pm$"),
            '−' => out.push('-'),
            'λ' => out.push_str("$\\lambda$"),
            _ => out.push(ch),
        }
    }
    out
}

/// The accuracy table as a LaTeX `table` float (needs `\usepackage{booktabs}`).
pub fn latex(table: &Table) -> String {
    let n = table.columns.len();
    let mut out = String::from("% Written by `topo report`; needs \\usepackage{booktabs}.\n");
    out.push_str("\\begin{table}[t]\n  \\centering\n");
    out.push_str(&format!(
        "  \\caption{{{}}}\n",
        latex_escape(&caption(table.std))
    ));
    out.push_str(&format!("  \\label{{tab:{}}}\n", table.name));
    out.push_str(&format!(
        "  \\begin{{tabular}}{{l{}}}\n    \\toprule\n",
        "c".repeat(n)
    ));
    // Consecutive columns of one data set share a header.
    let mut spans: Vec<(String, usize, usize)> = Vec::new();
    for (i, c) in table.columns.iter().enumerate() {
        match spans.last_mut() {
            Some((d, _, end)) if *d == c.dataset => *end = i + 2,
            _ => spans.push((c.dataset.clone(), i + 2, i + 2)),
        }
    }
    out.push_str("    ");
    for (d, start, end) in &spans {
        out.push_str(&format!(
            " & \\multicolumn{{{}}}{{c}}{{{}}}",
            end - start + 1,
            latex_escape(d)
        ));
    }
    out.push_str(" \\\\\n    ");
    for (_, start, end) in &spans {
        out.push_str(&format!("\\cmidrule(lr){{{start}-{end}}} "));
    }
    out.push_str("\n    Topography");
    for c in &table.columns {
        out.push_str(&format!(" & {}", latex_escape(&c.model)));
    }
    out.push_str(" \\\\\n    \\midrule\n");
    for (row, cells) in table.rows.iter().zip(&table.cells) {
        out.push_str(&format!("    {}", latex_escape(&row.label)));
        for cell in cells {
            let text = match cell {
                None => "--".to_string(),
                Some(c) => match c.stats.test.std {
                    Some(s) => format!("${:.2} \\pm {s:.2}$", c.stats.test.mean),
                    None => format!("${:.2}$", c.stats.test.mean),
                },
            };
            out.push_str(&format!(" & {text}"));
        }
        out.push_str(" \\\\\n");
    }
    out.push_str("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n");
    out
}

/// One CSV row: a filled cell. Accuracies in %, rounded to 4 decimals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableCsvRow {
    pub table: String,
    pub dataset: String,
    pub model: String,
    pub topography: String,
    pub paper_row: Option<&'static str>,
    pub lambda: Option<Lambda>,
    pub seeds: usize,
    pub validation_mean: f64,
    pub test_mean: f64,
    pub test_std: Option<f64>,
    pub std_kind: StdKind,
    pub paper_mean: Option<f64>,
    pub paper_std: Option<f64>,
    pub difference: Option<f64>,
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

pub fn csv_rows(table: &Table) -> Vec<TableCsvRow> {
    let mut out = Vec::new();
    for (row, cells) in table.rows.iter().zip(&table.cells) {
        for (column, cell) in table.columns.iter().zip(cells) {
            let Some(cell) = cell else { continue };
            let s = &cell.stats;
            let paper = cell.paper.map(|p| p.1);
            out.push(TableCsvRow {
                table: table.name.clone(),
                dataset: column.dataset.clone(),
                model: column.model.clone(),
                topography: row.topography.clone(),
                paper_row: row.paper_row.map(|r| r.label()),
                lambda: s.lambda,
                seeds: s.seeds,
                validation_mean: round4(s.validation.mean),
                test_mean: round4(s.test.mean),
                test_std: s.test.std.map(round4),
                std_kind: table.std,
                paper_mean: paper.map(|p| p.mean),
                paper_std: paper.map(|p| p.std),
                difference: paper.map(|p| round4(s.test.mean - p.mean)),
            });
        }
    }
    out
}

/// The CSV file's bytes.
pub fn csv_bytes(table: &Table) -> Result<Vec<u8>, String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in csv_rows(table) {
        writer.serialize(row).map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}

/// One row of `lambdas.csv`: every lambda tried in a cell, and whether it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaCsvRow {
    pub dataset: String,
    pub model: String,
    pub topography: String,
    pub lambda: Option<Lambda>,
    pub seeds: usize,
    pub validation_mean: f64,
    pub test_mean: f64,
    pub chosen: bool,
}

/// The lambda sweep of every cell, so the choice can be checked.
pub fn lambdas_csv(cells: &BTreeMap<CellKey, ChosenCell>) -> Result<Vec<u8>, String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for (key, cell) in cells {
        for (t, chosen) in cell.tried() {
            let t = &t.stats;
            writer
                .serialize(LambdaCsvRow {
                    dataset: key.dataset.clone(),
                    model: key.model.clone(),
                    topography: key.topography.clone(),
                    lambda: t.lambda,
                    seeds: t.seeds,
                    validation_mean: round4(t.validation.mean),
                    test_mean: round4(t.test.mean),
                    chosen,
                })
                .map_err(|e| e.to_string())?;
        }
    }
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_without_lambda_reads_none() {
        assert_eq!(lambda_text(Some(Lambda::known(5e-3))), "5e-3");
        assert_eq!(lambda_text(None), "none");
    }

    #[test]
    fn latex_escapes_names() {
        assert_eq!(
            latex_escape("vgg16_bn 5% ± λ"),
            "vgg16\\_bn 5\\% $\\pm$ $\\lambda$"
        );
    }
}
