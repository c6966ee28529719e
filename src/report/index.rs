//! `report/index.md`: every table and figure, the lambda behind each cell, and the runs
//! that are missing, failed or unreadable.

use std::path::{Path, PathBuf};

use super::effect::{EffectRow, effects_markdown};
use super::figures::FigureEntry;
use super::headline::{HeadlineRow, headline_markdown};
use super::render::{lambda_text, markdown};
use super::roc_auc::{RocAucCell, roc_auc_markdown};
use super::scan::{FailedRun, PendingRun, Unreadable};
use super::smoothness::{SmoothnessRow, smoothness_markdown};
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

pub fn index_markdown(i: &IndexInputs) -> String {
    let mut out = format!("# Report: {}\n\n", i.experiment.unwrap_or("experiment"));
    if let Some(d) = i.description {
        out.push_str(&format!("{d}\n\n"));
    }
    out.push_str(&format!("{}\n\n", counts_line(i.counts)));
    if i.counts.folders == 0 {
        out.push_str("No runs yet: `runs/` is empty or absent. Run the experiment (`topo run FILE`) first.\n");
        return out;
    }
    if i.tables.is_empty() {
        out.push_str("No run has finished yet: no table.\n\n");
    }
    if !i.tables.is_empty() {
        out.push_str("## Tables\n\n");
    }
    for t in i.tables {
        let stem = file_stem(&t.name);
        out.push_str(&markdown(t, 3));
        out.push_str(&format!(
            "\nFiles: [Markdown](tables/{stem}.md) · [LaTeX](tables/{stem}.tex) · [CSV](tables/{stem}.csv)\n\n"
        ));
    }
    if !i.tables.is_empty() {
        out.push_str("Every λ tried, with its mean validation and test accuracy: [lambdas.csv](tables/lambdas.csv).\n\n");
    }
    if !i.roc_auc.is_empty() {
        out.push_str(&roc_auc_markdown(i.roc_auc));
    }
    // Tables computed from the runs' records: here whichever figures are drawn.
    if let Some(rows) = i.headline {
        out.push_str(&headline_markdown(rows));
    }
    if !i.effects.is_empty() {
        out.push_str(&effects_markdown(i.effects));
    }
    if !i.smoothness.is_empty() {
        out.push_str(&smoothness_markdown(i.smoothness));
    }
    if !i.figures.is_empty() {
        out.push_str("## Figures\n\nCurves are the cells of the tables: each topography at its chosen λ, and the baseline.\n\n");
    }
    let mut section = None;
    for f in i.figures {
        if section != Some(f.kind) {
            out.push_str(&format!("### {}\n\n", figure_section(f.kind)));
            section = Some(f.kind);
        }
        let png = relative(i.report_dir, &f.png);
        let svg = relative(i.report_dir, &f.svg);
        out.push_str(&format!(
            "![{}]({png})\n\n[PNG]({png}) · [SVG]({svg})\n\n",
            f.title
        ));
    }
    if !i.run_maps.is_empty() {
        out.push_str(
            "### Category maps of every run

",
        );
        for png in i.run_maps {
            let name = png
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into_owned());
            out.push_str(&format!("- [{name}]({})\n", relative(i.report_dir, png)));
        }
        out.push('\n');
    }
    let missing: Vec<String> = i
        .tables
        .iter()
        .flat_map(|t| {
            t.missing().into_iter().map(move |(c, r)| {
                format!(
                    "- `{}`: {} / {} / {}",
                    t.name, c.dataset, c.model, r.topography
                )
            })
        })
        .collect();
    if !missing.is_empty() {
        out.push_str("## Cells without a finished run\n\n");
        out.push_str(&missing.join("\n"));
        out.push_str("\n\n");
    }
    if !i.failed.is_empty() {
        out.push_str("## Failed runs\n\n| Run | Data set | Model | Topography | λ | Seed | Epoch | Reason |\n");
        out.push_str("|:---|:---|:---|:---|---:|---:|---:|:---|\n");
        for f in i.failed {
            let a = &f.axes;
            let epoch = f.epoch.map_or("—".to_string(), |e| e.to_string());
            let reason = f.reason.replace('|', "\\|").replace('\n', " ");
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {epoch} | {reason} |\n",
                f.id,
                a.dataset,
                a.model,
                a.topography,
                lambda_text(a.lambda),
                a.seed
            ));
        }
        out.push('\n');
    }
    if !i.pending.is_empty() {
        out.push_str("## Runs in progress or interrupted\n\nNo `summary.json` yet.\n\n");
        for p in i.pending {
            let note = if p.locked {
                " (lock present: probably running)"
            } else {
                ""
            };
            out.push_str(&format!("- `{}`{note}\n", p.id));
        }
        out.push('\n');
    }
    if !i.unreadable.is_empty() {
        out.push_str("## Unreadable files\n\n");
        for u in i.unreadable {
            out.push_str(&format!(
                "- `{}`: {}\n",
                u.path.display(),
                u.message.replace('\n', " ")
            ));
        }
        out.push('\n');
    }
    out
}
