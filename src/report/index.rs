//! `report/index.md`: every table and figure, the lambda behind each cell, and the runs
//! that are missing, failed or unreadable.

use std::path::{Path, PathBuf};

use super::analyses::{AnalysisRow, analysis_blocks};
use super::effect::{EffectRow, effects_blocks};
use super::figures::FigureEntry;
use super::headline::{HeadlineRow, headline_blocks};
use super::page::{Align, Block, Grid};
use super::render::{lambda_text, table_blocks};
use super::roc_auc::{RocAucCell, roc_auc_blocks};
use super::scan::{FailedRun, PendingRun, Unreadable};
use super::smoothness::{SmoothnessRow, smoothness_blocks};
use super::table::Table;
use super::{RunCounts, file_stem};
use crate::config::FigureKind;

/// What the index shows.
pub struct IndexInputs<'a> {
    pub experiment: Option<&'a str>,
    pub description: Option<&'a str>,
    pub report_dir: &'a Path,
    pub counts: &'a RunCounts,
    pub tables: &'a [Table],
    pub figures: &'a [FigureEntry],
    /// Figure 3's headline beside this experiment's numbers, when it has that cell.
    pub headline: Option<&'a [HeadlineRow]>,
    /// Each topography's pruning effect against the baseline.
    pub effects: &'a [EffectRow],
    /// Each topography's smoothness, layer by layer.
    pub smoothness: &'a [SmoothnessRow],
    /// Whether each topography's maps are real, layer by layer, and the shuffles' count.
    pub analyses: &'a [AnalysisRow],
    pub permutations: Option<usize>,
    /// Every finished run's category maps (PNG).
    pub run_maps: &'a [PathBuf],
    pub roc_auc: &'a [RocAucCell],
    pub failed: &'a [FailedRun],
    pub pending: &'a [PendingRun],
    pub unreadable: &'a [Unreadable],
}

fn relative(report_dir: &Path, path: &Path) -> String {
    path.strip_prefix(report_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn figure_section(kind: FigureKind) -> &'static str {
    match kind {
        FigureKind::Layouts => "Channel layouts (figure 2)",
        FigureKind::Pruning => "Pruning (figure 3)",
        FigureKind::Topography => "Channel similarity against distance",
        FigureKind::Training => "Training curves",
    }
}

pub fn counts_line(c: &RunCounts) -> String {
    format!(
        "{} run folders: {} done, {} failed, {} in progress or interrupted, {} unreadable.",
        c.folders, c.done, c.failed, c.pending, c.unreadable
    )
}

/// The index as blocks, which `index.md` and `index.html` both render.
pub fn index_blocks(i: &IndexInputs) -> Vec<Block> {
    let mut out = vec![Block::heading(
        1,
        format!("Report: {}", i.experiment.unwrap_or("experiment")),
    )];
    if let Some(d) = i.description {
        out.push(Block::paragraph(d));
    }
    out.push(Block::paragraph(counts_line(i.counts)));
    if i.counts.folders == 0 {
        out.push(Block::paragraph(
            "No runs yet: `runs/` is empty or absent. Run the experiment (`topo run FILE`) first.",
        ));
        return out;
    }
    if i.tables.is_empty() {
        out.push(Block::paragraph("No run has finished yet: no table."));
    } else {
        out.push(Block::heading(2, "Tables"));
    }
    for t in i.tables {
        let stem = file_stem(&t.name);
        out.extend(table_blocks(t, 3));
        out.push(Block::paragraph(format!(
            "Files: [Markdown](tables/{stem}.md) · [LaTeX](tables/{stem}.tex) · [CSV](tables/{stem}.csv)"
        )));
    }
    if !i.tables.is_empty() {
        out.push(Block::paragraph(
            "Every λ tried, with its mean validation and test accuracy: [lambdas.csv](tables/lambdas.csv).",
        ));
    }
    if !i.roc_auc.is_empty() {
        out.extend(roc_auc_blocks(i.roc_auc));
    }
    // Tables computed from the runs' records: here whichever figures are drawn.
    if let Some(rows) = i.headline {
        out.extend(headline_blocks(rows));
    }
    if !i.effects.is_empty() {
        out.extend(effects_blocks(i.effects));
    }
    if !i.smoothness.is_empty() {
        out.extend(smoothness_blocks(i.smoothness));
    }
    if !i.analyses.is_empty() {
        out.extend(analysis_blocks(i.analyses, i.permutations));
    }
    if !i.figures.is_empty() {
        out.push(Block::heading(2, "Figures"));
        out.push(Block::paragraph(
            "Curves are the cells of the tables: each topography at its chosen λ, and the baseline.",
        ));
    }
    let mut section = None;
    for f in i.figures {
        if section != Some(f.kind) {
            out.push(Block::heading(3, figure_section(f.kind)));
            section = Some(f.kind);
        }
        out.push(Block::Figure {
            title: f.title.clone(),
            png: relative(i.report_dir, &f.png),
            svg: relative(i.report_dir, &f.svg),
        });
    }
    if !i.run_maps.is_empty() {
        out.push(Block::heading(3, "Category maps of every run"));
        out.push(Block::Gallery(
            i.run_maps
                .iter()
                .map(|png| {
                    let name = png
                        .file_stem()
                        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
                    (name, relative(i.report_dir, png))
                })
                .collect(),
        ));
    }
    let missing: Vec<String> = i
        .tables
        .iter()
        .flat_map(|t| {
            t.missing().into_iter().map(move |(c, r)| {
                format!(
                    "`{}`: {} / {} / {}",
                    t.name, c.dataset, c.model, r.topography
                )
            })
        })
        .collect();
    if !missing.is_empty() {
        out.push(Block::heading(2, "Cells without a finished run"));
        out.push(Block::List(missing));
    }
    if !i.failed.is_empty() {
        use Align::{Left, Right};
        let mut grid = Grid::with(&[
            ("Run", Left),
            ("Data set", Left),
            ("Model", Left),
            ("Topography", Left),
            ("λ", Right),
            ("Seed", Right),
            ("Epoch", Right),
            ("Reason", Left),
        ]);
        for f in i.failed {
            let a = &f.axes;
            grid.rows.push(vec![
                format!("`{}`", f.id),
                a.dataset.clone(),
                a.model.clone(),
                a.topography.clone(),
                lambda_text(a.lambda),
                a.seed.to_string(),
                f.epoch.map_or("—".to_string(), |e| e.to_string()),
                f.reason.clone(),
            ]);
        }
        out.push(Block::heading(2, "Failed runs"));
        out.push(Block::Table(grid));
    }
    if !i.pending.is_empty() {
        out.push(Block::heading(2, "Runs in progress or interrupted"));
        out.push(Block::paragraph("No `summary.json` yet."));
        out.push(Block::List(
            i.pending
                .iter()
                .map(|p| {
                    let note = if p.locked {
                        " (lock present: probably running)"
                    } else {
                        ""
                    };
                    format!("`{}`{note}", p.id)
                })
                .collect(),
        ));
    }
    if !i.unreadable.is_empty() {
        out.push(Block::heading(2, "Unreadable files"));
        out.push(Block::List(
            i.unreadable
                .iter()
                .map(|u| format!("`{}`: {}", u.path.display(), u.message.replace('\n', " ")))
                .collect(),
        ));
    }
    out
}
