//! What `topo report` draws for an experiment.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The paper's tables, for comparing cells with the published numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaperTable {
    /// Table 1: CIFAR-10 and CIFAR-100.
    Table1,
    /// Table 2: SpeechCommands and BirdDCASE.
    Table2,
}

/// Figures the report can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// Figure 2: the channel layouts.
    Layouts,
    /// Figure 3: test accuracy against the proportion of channels pruned.
    Pruning,
    /// Channel similarity against distance, per tapped layer.
    Topography,
    /// Loss and accuracy per epoch, per run group.
    Training,
}

/// Which standard deviation tables show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StdKind {
    /// Sample standard deviation (divides by n - 1), as numpy's `ddof=1` and pandas.
    #[default]
    Sample,
    /// Population standard deviation (divides by n), numpy's default.
    Population,
}

/// One results table: rows are topographies, columns dataset x model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// File name of the table under `report/`.
    pub name: String,
    /// Data sets shown, in order; all of the grid's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<String>>,
    /// Published table to compare the cells with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<PaperTable>,
}

/// The report section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Tables to write.
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// Figures to draw.
    #[serde(default = "default_figures")]
    pub figures: Vec<FigureKind>,
    /// Standard deviation over seeds.
    #[serde(default)]
    pub std: StdKind,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            tables: Vec::new(),
            figures: default_figures(),
            std: StdKind::Sample,
        }
    }
}

fn default_figures() -> Vec<FigureKind> {
    vec![
        FigureKind::Layouts,
        FigureKind::Pruning,
        FigureKind::Topography,
        FigureKind::Training,
    ]
}
