//! Which figures the report draws, from which runs, and where they go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::analyses::{AnalysisRow, analysis_rows, curve_figures, curve_stem};
use super::cells::{CellKey, ChosenCell};
use super::curves::{
    PanelKey, Series, method_name, pruning_figures, topography_figures, training_figures,
};
use super::effect::{EffectRow, pruning_effects};
use super::headline::{HeadlineRow, figure3_headline};
use super::identity::Kinds;
use super::load::{RunFiles, Wanted, load_runs};
use super::maps::{MapRow, draw_maps};
use super::plot::write_figure;
use super::scan::{DoneRun, Unreadable};
use super::smoothness::{SmoothnessRow, smoothness};
use super::table::TableRow;
use super::tuning_maps::{Tuning, TuningRow, draw_tuning_maps};
use super::{ReportError, file_stem, layouts};
use crate::config::{FigureKind, StdKind};
use crate::results::{AnalysesRecord, ResultsError, TopographyRecord, read_json};

/// Channels drawn in figure 2 (ResNet-18's first layer has 64).
const LAYOUT_CHANNELS: usize = 64;

/// A figure written, as PNG and SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureEntry {
    pub kind: FigureKind,
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// Everything the figures need from the rest of the report.
pub struct FigureInputs<'a> {
    pub kinds: &'a [FigureKind],
    pub cells: &'a BTreeMap<CellKey, ChosenCell>,
    pub done: &'a [DoneRun],
    /// Data sets and models in table order, for the panels.
    pub panels: Vec<PanelKey>,
    /// Every topography in table order, for stable colours.
    pub rows: &'a [TableRow],
    /// What each data set and model name is.
    pub names: &'a Kinds,
    pub std: StdKind,
}

/// The report's numbers that come from the runs' records (the tables of figure 3's
/// headline, pruning effects and smoothness) and the records the figures draw: computed
/// whichever figures are asked for, so the tables never depend on them.
pub struct Computed {
    groups: Groups,
    files: Vec<RunFiles>,
    /// Records that could not be read (not fatal).
    pub problems: Vec<Unreadable>,
    /// Figure 3's headline beside this experiment's numbers, when it has that cell.
    pub headline: Option<Vec<HeadlineRow>>,
    /// Each topography's pruning effect against the baseline.
    pub effects: Vec<EffectRow>,
    /// Each topography's smoothness, layer by layer.
    pub smoothness: Vec<SmoothnessRow>,
    /// Whether each topography's maps are real, layer by layer.
    pub analyses: Vec<AnalysisRow>,
    /// The shuffles every analysis was tested against, when they agree.
    pub permutations: Option<usize>,
}

/// What the figures wrote, and what they found.
pub struct Drawn {
    pub entries: Vec<FigureEntry>,
    /// Records that could not be read (not fatal).
    pub problems: Vec<Unreadable>,
    /// Every finished run's own category maps (PNG), in run order.
    pub run_maps: Vec<PathBuf>,
}

/// The run groups the figures draw from.
struct Groups {
    /// One curve per cell, at the cell's chosen lambda; runs index `runs`.
    chosen: Vec<Series>,
    /// Indices into the done runs: the runs whose records the figures read.
    runs: Vec<usize>,
    /// The cells' other lambdas, for the pruning effect (not drawn); runs index `other_runs`.
    others: Vec<Series>,
    /// Indices into the done runs: the runs whose pruning alone is read.
    other_runs: Vec<usize>,
}

fn series(inputs: &FigureInputs) -> Groups {
    let mut all_runs = Vec::new();
    let mut out = Vec::new();
    let mut others = Vec::new();
    let mut other_runs = Vec::new();
    let colours: Vec<&str> = inputs
        .rows
        .iter()
        .filter(|r| !r.baseline)
        .map(|r| r.topography.as_str())
        .collect();
    for row in inputs.rows {
        for (p, panel) in inputs.panels.iter().enumerate() {
            let key = CellKey {
                dataset: panel.dataset.clone(),
                model: panel.model.clone(),
                topography: row.topography.clone(),
            };
            let Some(cell) = inputs.cells.get(&key) else {
                continue;
            };
            let colour = colours
                .iter()
                .position(|t| *t == row.topography)
                .unwrap_or(0);
            for (tried, chosen) in cell.tried() {
                let label = match tried.stats.lambda {
                    Some(l) => format!("{} (λ = {})", row.label, l),
                    None => row.label.clone(),
                };
                let list = if chosen {
                    &mut all_runs
                } else {
                    &mut other_runs
                };
                let start = list.len();
                list.extend(tried.runs.iter().copied());
                let one = Series {
                    panel: p,
                    topography: row.topography.clone(),
                    label,
                    baseline: row.baseline,
                    colour,
                    runs: (start..list.len()).collect(),
                    paper_row: row.paper_row,
                    lambda: tried.stats.lambda,
                };
                if chosen {
                    out.push(one);
                } else {
                    others.push(one);
                }
            }
        }
    }
    Groups {
        chosen: out,
        runs: all_runs,
        others,
        other_runs,
    }
}

/// Reads the records the tables and figures need and computes the tables' rows.
pub fn compute(inputs: &FigureInputs) -> Result<Computed, ReportError> {
    let wanted = Wanted {
        pruning: true,
        // Per-epoch records feed the training curves alone.
        metrics: inputs.kinds.contains(&FigureKind::Training),
        topography: true,
    };
    let groups = series(inputs);
    let (files, mut problems) = load_runs(inputs.done, &groups.runs, wanted);
    let pruning_only = Wanted {
        pruning: true,
        metrics: false,
        topography: false,
    };
    let (other_files, other_problems) = load_runs(inputs.done, &groups.other_runs, pruning_only);
    problems.extend(other_problems);
    let series = &groups.chosen;
    let headline = figure3_headline(&inputs.panels, series, &files, inputs.names, inputs.std)?;
    let effects = pruning_effects(
        &inputs.panels,
        (series, &files),
        (&groups.others, &other_files),
    )?;
    let smoothness = smoothness(&inputs.panels, series, &files)?;
    let analyses = analysis_rows(&inputs.panels, series, &files);
    let counts: Vec<usize> = files
        .iter()
        .filter_map(|f| f.analyses.as_ref().map(|a| a.permutations))
        .collect();
    let permutations = counts
        .first()
        .copied()
        .filter(|&p| counts.iter().all(|&c| c == p));
    Ok(Computed {
        groups,
        files,
        problems,
        headline,
        effects,
        smoothness,
        analyses,
        permutations,
    })
}

/// Draws the figures asked for under `dir`; unreadable records are returned, not fatal.
pub fn draw_figures(
    dir: &Path,
    inputs: &FigureInputs,
    computed: &Computed,
) -> Result<Drawn, ReportError> {
    let (series, files) = (&computed.groups.chosen, &computed.files);
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut run_maps = Vec::new();
    let mut push = |kind, title: String, stem: PathBuf| {
        entries.push(FigureEntry {
            kind,
            title,
            png: stem.with_extension("png"),
            svg: stem.with_extension("svg"),
        });
    };
    for &kind in inputs.kinds {
        match kind {
            FigureKind::Layouts => {
                for ext in ["png", "svg"] {
                    layouts::draw_layouts(&dir.join(format!("layouts.{ext}")), LAYOUT_CHANNELS)?;
                }
                push(
                    kind,
                    format!("Channel layouts ({LAYOUT_CHANNELS} channels)"),
                    dir.join("layouts"),
                );
            }
            FigureKind::Pruning => {
                for (method, figure) in pruning_figures(&inputs.panels, series, files, inputs.std)?
                {
                    let stem = dir.join(format!("pruning_{}", method_name(method)));
                    write_figure(&figure, &stem)?;
                    push(kind, figure.title.clone(), stem);
                }
            }
            FigureKind::Training => {
                for (p, figure) in training_figures(&inputs.panels, series, files, inputs.std)? {
                    let stem = dir.join(format!("training_{}", panel_stem(&inputs.panels[p])));
                    write_figure(&figure, &stem)?;
                    push(kind, figure.title.clone(), stem);
                }
            }
            FigureKind::Topography => {
                let (maps, unreadable) = every_runs_maps(&dir.join("maps"), inputs.done)?;
                run_maps = maps;
                problems.extend(unreadable);
                for (p, figure) in topography_figures(&inputs.panels, series, files, inputs.std)? {
                    let stem = dir.join(format!("topography_{}", panel_stem(&inputs.panels[p])));
                    write_figure(&figure, &stem)?;
                    push(kind, figure.title.clone(), stem);
                    if let Some((title, stem)) =
                        category_maps(dir, &inputs.panels[p], p, series, files)?
                    {
                        push(kind, title, stem);
                    }
                    for (title, stem) in tuning_figures(dir, &inputs.panels[p], p, series, files)? {
                        push(kind, title, stem);
                    }
                    for (family, figure) in curve_figures(&inputs.panels[p], p, series, files) {
                        let stem = dir.join(format!(
                            "curves_{}_{}",
                            curve_stem(family),
                            panel_stem(&inputs.panels[p])
                        ));
                        write_figure(&figure, &stem)?;
                        push(kind, figure.title.clone(), stem);
                    }
                }
            }
        }
    }
    Ok(Drawn {
        entries,
        problems,
        run_maps,
    })
}

/// The category maps of panel `p`: one row per topography (its first seed at the chosen
/// lambda), one panel per tapped layer; `None` when no run has 2D maps.
fn category_maps(
    dir: &Path,
    panel: &PanelKey,
    p: usize,
    series: &[Series],
    files: &[RunFiles],
) -> Result<Option<(String, PathBuf)>, ReportError> {
    let mut rows = Vec::new();
    let mut classes = 0;
    for one in series.iter().filter(|s| s.panel == p) {
        let Some(files) = one.runs.first().and_then(|&r| files.get(r)) else {
            continue;
        };
        let Some(record) = files.topography.as_ref() else {
            continue;
        };
        if let Some(row) = MapRow::of(&one.label, record, files.analyses.as_ref()) {
            classes = classes.max(row.classes());
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let title = format!(
        "Category maps, {}: class of highest d′ by colour, paler when that d′ is lower (first seed)",
        panel.title()
    );
    let stem = dir.join(format!("maps_{}", panel_stem(panel)));
    for ext in ["png", "svg"] {
        draw_maps(&stem.with_extension(ext), &title, &rows, classes)?;
    }
    Ok(Some((title, stem)))
}

/// The orientation and tonotopic maps of panel `p`: one row per topography (its first
/// seed at the chosen lambda), one panel per tapped 2D layer.
fn tuning_figures(
    dir: &Path,
    panel: &PanelKey,
    p: usize,
    series: &[Series],
    files: &[RunFiles],
) -> Result<Vec<(String, PathBuf)>, ReportError> {
    let mut out = Vec::new();
    for (tuning, name, heading, what) in [
        (
            Tuning::Orientation,
            "orientation",
            "Orientation maps",
            "preferred orientation as hue, selectivity as saturation, pinwheels + and o",
        ),
        (
            Tuning::Frequency,
            "tonotopy",
            "Tonotopic maps",
            "preferred frequency from blue (low) to yellow (high)",
        ),
        (
            Tuning::Category,
            "dprime",
            "Category selectivity",
            "d′ of each class against the rest on the deepest layer, red where preferred, blue where avoided",
        ),
    ] {
        let rows: Vec<TuningRow> = series
            .iter()
            .filter(|s| s.panel == p)
            .filter_map(|s| {
                let f = files.get(*s.runs.first()?)?;
                TuningRow::of(
                    &s.label,
                    f.analyses.as_ref()?,
                    f.topography.as_ref()?,
                    tuning,
                )
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let title = format!("{heading}, {}: {what} (first seed)", panel.title());
        let stem = dir.join(format!("{name}_{}", panel_stem(panel)));
        for ext in ["png", "svg"] {
            draw_tuning_maps(&stem.with_extension(ext), &title, &rows)?;
        }
        out.push((title, stem));
    }
    Ok(out)
}

/// One map figure per finished run with 2D maps, `dir/<run id>.png`.
fn every_runs_maps(
    dir: &Path,
    done: &[DoneRun],
) -> Result<(Vec<PathBuf>, Vec<Unreadable>), ReportError> {
    let (mut written, mut problems) = (Vec::new(), Vec::new());
    for run in done {
        let path = run.dir.topography();
        let record: TopographyRecord = match read_json(&path) {
            Ok(r) => r,
            Err(ResultsError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => {
                problems.push(Unreadable::from_error(path, &e));
                continue;
            }
        };
        let id = run.dir.id();
        let a = &run.summary.axes;
        let label = match a.lambda {
            Some(l) => format!("{}, λ = {l}, seed {}", a.topography, a.seed),
            None => format!("{}, seed {}", a.topography, a.seed),
        };
        let analyses_path = run.dir.analyses();
        let analyses: Option<AnalysesRecord> = match read_json(&analyses_path) {
            Ok(r) => Some(r),
            Err(ResultsError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => {
                problems.push(Unreadable::from_error(analyses_path, &e));
                None
            }
        };
        let Some(row) = MapRow::of(&label, &record, analyses.as_ref()) else {
            continue;
        };
        let classes = row.classes();
        let png = dir.join(format!("{id}.png"));
        draw_maps(&png, &format!("Category maps: {id}"), &[row], classes)?;
        written.push(png);
    }
    Ok((written, problems))
}

fn panel_stem(panel: &PanelKey) -> String {
    format!("{}_{}", file_stem(&panel.dataset), file_stem(&panel.model))
}
