//! Figure 3's headline beside this experiment's numbers: ResNet-18 on CIFAR-10, the 2D
//! grid at lambda 1 against the baseline, unpruned and with 62% of the channels of each
//! topographic layer pruned by their L2 norm (docs/reference.md, "Pruning").

use super::ReportError;
use super::curves::{PanelKey, Series};
use super::identity::Kinds;
use super::load::RunFiles;
use super::page::{Block, Grid};
use super::paper::PaperRow;
use super::stats::{MeanStd, Samples, mean_std_by_group};
use crate::config::{DatasetKind, Lambda, ModelKind, PruneMethod, StdKind};

/// The paper's numbers, in %: (row, proportion pruned, test accuracy).
const PAPER: [(PaperRow, f64, f64); 4] = [
    (PaperRow::Grid2d, 0.0, 91.9),
    (PaperRow::Base, 0.0, 92.45),
    (PaperRow::Grid2d, 0.62, 62.0),
    (PaperRow::Base, 0.62, 40.6),
];

/// The topographic side of the headline is at lambda 1.
const LAMBDA: Lambda = Lambda::known(1.0);

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadlineRow {
    pub row: PaperRow,
    pub proportion: f64,
    pub paper: f64,
    /// Mean (± std) over this experiment's seeds, in %; `None` where not measured.
    pub ours: Option<MeanStd>,
    pub seeds: usize,
}

/// The comparison, when the experiment has the headline's panel (CIFAR-10 with ResNet-18)
/// and its baseline or its 2D grid at lambda 1 with L2 pruning.
pub fn figure3_headline(
    panels: &[PanelKey],
    series: &[Series],
    files: &[RunFiles],
    kinds: &Kinds,
    std: StdKind,
) -> Result<Option<Vec<HeadlineRow>>, ReportError> {
    let Some(panel) = panels.iter().position(|p| {
        kinds.datasets.get(&p.dataset) == Some(&DatasetKind::Cifar10)
            && kinds.models.get(&p.model) == Some(&ModelKind::Resnet18)
    }) else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    for (row, proportion, paper) in PAPER {
        let wanted = series.iter().find(|s| {
            s.panel == panel
                && s.paper_row == Some(row)
                && (row == PaperRow::Base || s.lambda == Some(LAMBDA))
        });
        let Some(s) = wanted else {
            continue;
        };
        let mut samples = Samples::new(1);
        for f in s.runs.iter().filter_map(|&r| files.get(r)) {
            let at = f
                .pruning
                .iter()
                .find(|p| p.method == PruneMethod::L2 && (p.proportion - proportion).abs() < 1e-9);
            if let Some(p) = at {
                samples.push(0, &[100.0 * p.accuracy]);
            }
        }
        let stats = mean_std_by_group(samples, std).map_err(|source| ReportError::Aggregate {
            what: "figure 3's headline",
            source,
        })?;
        let group = stats.first();
        rows.push(HeadlineRow {
            row,
            proportion,
            paper,
            ours: group.map(|g| g.values[0]),
            seeds: group.map_or(0, |g| g.n),
        });
    }
    Ok((!rows.is_empty()).then_some(rows))
}

/// The comparison as a section of the index.
pub fn headline_blocks(rows: &[HeadlineRow]) -> Vec<Block> {
    let mut grid = Grid::numeric(
        ["", "Pruned", "This experiment", "Seeds", "Paper"]
            .map(String::from)
            .to_vec(),
    );
    for r in rows {
        let ours = match r.ours {
            Some(MeanStd { mean, std: Some(s) }) => format!("{mean:.2} ± {s:.2}"),
            Some(MeanStd { mean, std: None }) => format!("{mean:.2}"),
            None => "not measured".to_string(),
        };
        let label = match r.row {
            PaperRow::Base => "base".to_string(),
            row => format!("{} (λ = {LAMBDA})", row.label()),
        };
        grid.rows.push(vec![
            label,
            format!("{:.0}%", 100.0 * r.proportion),
            ours,
            r.seeds.to_string(),
            format!("{:.2}", r.paper),
        ]);
    }
    vec![
        Block::heading(3, "Figure 3's headline"),
        Block::paragraph(
            "ResNet-18 on CIFAR-10, channels of every topographic layer pruned by lowest L2 norm, test accuracy in %: this experiment (mean ± std over its seeds) beside the paper's.",
        ),
        Block::Table(grid),
    ]
}
