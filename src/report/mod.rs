//! `topo report`: the paper's Tables 1-2 and figures regenerated from
//! `results/<experiment>/`, tolerant of missing, failed and unreadable runs, which it
//! lists.
//!
//! Flow: [`scan`] reads every run's summary once; [`cells`] chooses each cell's lambda by
//! mean validation accuracy (polars, [`stats`]); [`table`] lays the cells out as the paper
//! does and [`render`] writes Markdown, LaTeX and CSV; [`figures`] reads the chosen runs'
//! records and [`curves`] aggregates them into typed curves that [`plot`] draws;
//! [`index`] links everything. Everything goes to `report/`, atomically.

mod analyses;
mod cells;
mod curves;
mod effect;
mod error;
mod figures;
mod frame;
mod headline;
mod html;
mod identity;
mod index;
pub mod layouts;
mod legacy;
mod load;
mod maps;
mod page;
mod paper;
mod plot;
mod render;
mod roc_auc;
mod scan;
mod smoothness;
mod stats;
mod table;
mod tuning_maps;

use std::path::{Path, PathBuf};

pub use cells::{LambdaStats, choose_lambda};
pub use error::ReportError;
pub use paper::{PaperRow, PaperValue, paper_value, table_title};
pub use scan::{FailedRun, PendingRun, Unreadable};
pub use stats::MeanStd;

use crate::config::{Experiment, TableSpec};
use crate::results::{ExperimentDir, write_atomic};
use identity::{ExperimentInfo, Kinds};

/// How many run folders are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub folders: usize,
    pub done: usize,
    pub failed: usize,
    /// No summary yet: running, interrupted, or not started.
    pub pending: usize,
    /// A summary that cannot be used.
    pub unreadable: usize,
}

/// What `topo report` did.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub report_dir: PathBuf,
    pub index: PathBuf,
    pub counts: RunCounts,
    /// Every file written, the index last.
    pub written: Vec<PathBuf>,
    pub failed: Vec<FailedRun>,
    pub pending: Vec<PendingRun>,
    pub unreadable: Vec<Unreadable>,
    /// Table cells without a finished run, over all tables.
    pub missing_cells: usize,
}

impl ReportOutcome {
    /// One line for the terminal.
    pub fn summary_line(&self) -> String {
        index::counts_line(&self.counts)
    }
}

/// A name safe in a file name.
fn file_stem(name: &str) -> String {
    crate::config::safe_file_name(name)
}

fn read_experiment(exp: &ExperimentDir, unreadable: &mut Vec<Unreadable>) -> ExperimentInfo {
    let path = exp.resolved_yaml();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ExperimentInfo::default(),
        Err(e) => {
            unreadable.push(Unreadable {
                path,
                message: crate::log::chain(&e),
            });
            return ExperimentInfo::default();
        }
    };
    match crate::config::from_yaml::<Experiment>(&text) {
        Ok(e) => {
            let (info, problems) = ExperimentInfo::from_experiment(e);
            if !problems.is_empty() {
                let message = format!("read in part: {}", problems.join("; "));
                unreadable.push(Unreadable { path, message });
            }
            info
        }
        Err(e) => {
            let message =
                format!("{e} (using the defaults: all data sets found, all figures, sample std)");
            unreadable.push(Unreadable { path, message });
            ExperimentInfo::default()
        }
    }
}

/// Writes the report of the experiment folder `dir` under `dir/report/`.
pub fn report(dir: &Path) -> Result<ReportOutcome, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::NotFound {
            path: dir.to_path_buf(),
        });
    }
    let exp = ExperimentDir::at(dir);
    let report_dir = exp.report_dir();
    let mut unreadable = Vec::new();
    let info = read_experiment(&exp, &mut unreadable);
    let spec = info.report.clone();
    let scan = scan::scan_runs(&exp, &info)?;
    unreadable.extend(scan.unreadable.iter().cloned());
    let counts = RunCounts {
        folders: scan.folders,
        done: scan.done.len(),
        failed: scan.failed.len(),
        pending: scan.pending.len(),
        unreadable: scan.unreadable_runs,
    };

    let kinds = Kinds::gather(
        scan.done.iter().map(|r| (&r.summary.axes, &r.identity)),
        &info,
    );
    let cells = cells::choose_cells(&scan.done, spec.std)?;
    let roc_auc = roc_auc::roc_auc_cells(&cells, &scan.done, spec.std)?;
    let mut written = Vec::new();
    let mut tables = Vec::new();
    let mut figures = Vec::new();
    let mut headline = None;
    let mut effects = Vec::new();
    let mut smoothness = Vec::new();
    let mut analyses = Vec::new();
    let mut permutations = None;
    let mut run_maps = Vec::new();
    if !cells.is_empty() {
        let default = [TableSpec {
            name: "results".to_string(),
            datasets: None,
            paper: None,
        }];
        let specs = if spec.tables.is_empty() {
            &default[..]
        } else {
            &spec.tables[..]
        };
        for t in specs {
            let table = table::build_table(t, &cells, &kinds, &info, spec.std);
            let stem = report_dir.join("tables").join(file_stem(&table.name));
            let csv = render::csv_bytes(&table).map_err(|message| ReportError::Serialise {
                path: stem.with_extension("csv"),
                message,
            })?;
            for (ext, bytes) in [
                ("md", render::markdown(&table).into_bytes()),
                ("tex", render::latex(&table).into_bytes()),
                ("csv", csv),
            ] {
                let path = stem.with_extension(ext);
                write_atomic(&path, &bytes)?;
                written.push(path);
            }
            tables.push(table);
        }

        let sweep = report_dir.join("tables").join("lambdas.csv");
        let bytes = render::lambdas_csv(&cells).map_err(|message| ReportError::Serialise {
            path: sweep.clone(),
            message,
        })?;
        write_atomic(&sweep, &bytes)?;
        written.push(sweep);

        // Every data set, model and topography, in table order, for panels and colours.
        let all = TableSpec {
            name: "all".to_string(),
            datasets: None,
            paper: None,
        };
        let everything = table::build_table(&all, &cells, &kinds, &info, spec.std);
        let mut panels: Vec<curves::PanelKey> = Vec::new();
        for c in &everything.columns {
            let key = curves::PanelKey {
                dataset: c.dataset.clone(),
                model: c.model.clone(),
            };
            let present = cells
                .keys()
                .any(|k| k.dataset == c.dataset && k.model == c.model);
            if present && !panels.contains(&key) {
                panels.push(key);
            }
        }
        let inputs = figures::FigureInputs {
            kinds: &spec.figures,
            cells: &cells,
            done: &scan.done,
            panels,
            rows: &everything.rows,
            names: &kinds,
            std: spec.std,
        };
        // Compute, then draw: which tables the index holds never depends on the figures.
        let computed = figures::compute(&inputs)?;
        let drawn = figures::draw_figures(&report_dir.join("figures"), &inputs, &computed)?;
        unreadable.extend(computed.problems);
        unreadable.extend(drawn.problems);
        for f in &drawn.entries {
            written.push(f.png.clone());
            written.push(f.svg.clone());
        }
        figures = drawn.entries;
        headline = computed.headline;
        effects = computed.effects;
        smoothness = computed.smoothness;
        analyses = computed.analyses;
        permutations = computed.permutations;
        written.extend(drawn.run_maps.iter().cloned());
        run_maps = drawn.run_maps;
    }

    let index_path = report_dir.join("index.md");
    let blocks = index::index_blocks(&index::IndexInputs {
        experiment: info.name.as_deref(),
        description: info.description.as_deref(),
        report_dir: &report_dir,
        headline: headline.as_deref(),
        effects: &effects,
        smoothness: &smoothness,
        analyses: &analyses,
        permutations,
        run_maps: &run_maps,
        roc_auc: &roc_auc,
        counts: &counts,
        tables: &tables,
        figures: &figures,
        failed: &scan.failed,
        pending: &scan.pending,
        unreadable: &unreadable,
    });
    // Both pages render the same blocks: neither is read back from the other.
    write_atomic(&index_path, page::markdown(&blocks).as_bytes())?;
    let title = format!("Report: {}", info.name.as_deref().unwrap_or("experiment"));
    let html_path = report_dir.join("index.html");
    write_atomic(&html_path, html::index_html(&title, &blocks).as_bytes())?;
    written.push(html_path);
    written.push(index_path.clone());
    Ok(ReportOutcome {
        report_dir,
        index: index_path,
        counts,
        written,
        failed: scan.failed,
        pending: scan.pending,
        unreadable,
        missing_cells: tables.iter().map(|t| t.missing().len()).sum(),
    })
}
