//! The paper's Tables 1 and 2 (mean ± std of test accuracy in %, 5 seeds), to compare
//! regenerated cells with the published numbers.

use crate::config::{
    DatasetKind, LambdaSchedule, LossMethod, ModelKind, PaperTable, Placement, TapPoint, Topography,
};
use crate::topography::{Layout, Norm};

/// A row of the paper's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaperRow {
    Grid2d,
    Circle,
    Nested2d,
    Grid3d,
    Sphere,
    Nested3d,
    Base,
}

impl PaperRow {
    /// The paper's row label.
    pub fn label(self) -> &'static str {
        match self {
            PaperRow::Grid2d => "2D grid",
            PaperRow::Circle => "Circle",
            PaperRow::Nested2d => "2D nested",
            PaperRow::Grid3d => "3D grid",
            PaperRow::Sphere => "Sphere",
            PaperRow::Nested3d => "3D nested",
            PaperRow::Base => "Base",
        }
    }

    /// Position in the paper's tables (top to bottom).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The paper's row a topography is, if any: built-in layouts with the Euclidean
    /// distance in 2 or 3 dimensions, and the baseline.
    pub fn of(topography: &Topography) -> Option<PaperRow> {
        match topography {
            Topography::Baseline => Some(PaperRow::Base),
            Topography::Placed(
                Placement::Builtin {
                    layout,
                    dimension,
                    norm: Norm::Euclidean,
                },
                LossMethod::Poli2023,
                weights,
                TapPoint::Conv,
                LambdaSchedule::Constant,
            ) if weights.is_uniform() => match (layout, dimension) {
                (Layout::Grid, 2) => Some(PaperRow::Grid2d),
                (Layout::Sphere, 2) => Some(PaperRow::Circle),
                (Layout::Nested, 2) => Some(PaperRow::Nested2d),
                (Layout::Grid, 3) => Some(PaperRow::Grid3d),
                (Layout::Sphere, 3) => Some(PaperRow::Sphere),
                (Layout::Nested, 3) => Some(PaperRow::Nested3d),
                _ => None,
            },
            Topography::Placed(..) => None,
        }
    }
}

/// A published cell, in %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperValue {
    pub mean: f64,
    pub std: f64,
}

const fn v(mean: f64, std: f64) -> PaperValue {
    PaperValue { mean, std }
}

/// Columns of each table: two data sets, each with DenseNet-121, ResNet-18, VGG-16.
const MODELS: [ModelKind; 3] = [
    ModelKind::Densenet121,
    ModelKind::Resnet18,
    ModelKind::Vgg16Bn,
];

/// Table 1: CIFAR-10 then CIFAR-100; rows in [`PaperRow`] order.
const TABLE1: [[PaperValue; 6]; 7] = [
    [
        v(93.58, 0.21),
        v(92.55, 0.32),
        v(93.55, 0.10),
        v(73.98, 0.38),
        v(70.86, 0.31),
        v(72.53, 0.28),
    ],
    [
        v(93.46, 0.39),
        v(92.68, 0.26),
        v(93.51, 0.15),
        v(74.05, 0.26),
        v(70.76, 0.48),
        v(72.78, 0.40),
    ],
    [
        v(93.42, 0.18),
        v(92.53, 0.14),
        v(93.45, 0.17),
        v(73.84, 0.38),
        v(70.93, 0.19),
        v(72.87, 0.34),
    ],
    [
        v(93.47, 0.18),
        v(92.38, 0.15),
        v(93.61, 0.19),
        v(74.02, 0.46),
        v(70.43, 0.25),
        v(72.77, 0.28),
    ],
    [
        v(93.55, 0.19),
        v(92.50, 0.09),
        v(93.55, 0.13),
        v(73.97, 0.28),
        v(71.04, 0.41),
        v(72.44, 0.25),
    ],
    [
        v(93.55, 0.17),
        v(92.34, 0.31),
        v(93.53, 0.26),
        v(73.94, 0.50),
        v(70.91, 0.26),
        v(72.59, 0.09),
    ],
    [
        v(93.43, 0.13),
        v(92.45, 0.17),
        v(93.57, 0.18),
        v(74.10, 0.22),
        v(70.76, 0.19),
        v(72.82, 0.26),
    ],
];

/// Table 2: SpeechCommands then BirdDCASE; rows in [`PaperRow`] order.
const TABLE2: [[PaperValue; 6]; 7] = [
    [
        v(97.21, 0.07),
        v(97.35, 0.04),
        v(97.18, 0.09),
        v(82.12, 0.29),
        v(82.36, 0.44),
        v(82.51, 0.22),
    ],
    [
        v(97.22, 0.03),
        v(97.35, 0.11),
        v(97.14, 0.08),
        v(82.17, 0.36),
        v(82.44, 0.28),
        v(82.80, 0.49),
    ],
    [
        v(97.27, 0.07),
        v(97.38, 0.09),
        v(97.17, 0.03),
        v(82.48, 0.39),
        v(82.30, 0.37),
        v(82.68, 0.34),
    ],
    [
        v(97.27, 0.11),
        v(97.33, 0.15),
        v(97.28, 0.06),
        v(82.58, 0.08),
        v(82.27, 0.43),
        v(82.50, 0.44),
    ],
    [
        v(97.19, 0.13),
        v(97.34, 0.03),
        v(97.21, 0.06),
        v(82.15, 0.49),
        v(82.40, 0.22),
        v(82.62, 0.39),
    ],
    [
        v(97.19, 0.10),
        v(97.33, 0.07),
        v(97.17, 0.08),
        v(82.27, 0.36),
        v(82.28, 0.16),
        v(82.67, 0.49),
    ],
    [
        v(97.20, 0.08),
        v(97.36, 0.07),
        v(97.19, 0.05),
        v(82.46, 0.31),
        v(82.44, 0.21),
        v(82.49, 0.60),
    ],
];

/// A table's name as the paper prints it.
pub fn table_title(table: PaperTable) -> &'static str {
    match table {
        PaperTable::Table1 => "Table 1",
        PaperTable::Table2 => "Table 2",
    }
}

/// The table a data set's columns are in.
pub fn table_of(dataset: DatasetKind) -> Option<(PaperTable, usize)> {
    match dataset {
        DatasetKind::Cifar10 => Some((PaperTable::Table1, 0)),
        DatasetKind::Cifar100 => Some((PaperTable::Table1, 1)),
        DatasetKind::SpeechCommands => Some((PaperTable::Table2, 0)),
        DatasetKind::BirdDcase => Some((PaperTable::Table2, 1)),
        DatasetKind::FashionMnist | DatasetKind::ImageFolder => None,
    }
}

/// The published cell for a data set, model and row, if the paper has one (and, when
/// `only` is given, if it is in that table).
pub fn paper_value(
    only: Option<PaperTable>,
    dataset: DatasetKind,
    model: ModelKind,
    row: PaperRow,
) -> Option<(PaperTable, PaperValue)> {
    let (table, group) = table_of(dataset)?;
    if only.is_some_and(|t| t != table) {
        return None;
    }
    let m = MODELS.iter().position(|&k| k == model)?;
    let values = match table {
        PaperTable::Table1 => &TABLE1,
        PaperTable::Table2 => &TABLE2,
    };
    Some((table, values[row.index()][group * 3 + m]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_cells_quoted_in_reference_md() {
        let cell = |d, m, r| paper_value(None, d, m, r).map(|(_, v)| (v.mean, v.std));
        assert_eq!(
            cell(DatasetKind::Cifar10, ModelKind::Resnet18, PaperRow::Base),
            Some((92.45, 0.17))
        );
        assert_eq!(
            cell(DatasetKind::Cifar10, ModelKind::Resnet18, PaperRow::Grid2d),
            Some((92.55, 0.32))
        );
        assert_eq!(
            cell(DatasetKind::Cifar100, ModelKind::Vgg16Bn, PaperRow::Base),
            Some((72.82, 0.26))
        );
        assert_eq!(
            cell(
                DatasetKind::SpeechCommands,
                ModelKind::Resnet18,
                PaperRow::Base
            ),
            Some((97.36, 0.07))
        );
        assert_eq!(
            cell(DatasetKind::BirdDcase, ModelKind::Vgg16Bn, PaperRow::Circle),
            Some((82.80, 0.49))
        );
        assert_eq!(
            cell(
                DatasetKind::FashionMnist,
                ModelKind::Vgg16Bn,
                PaperRow::Circle
            ),
            None
        );
        assert_eq!(
            paper_value(
                Some(PaperTable::Table2),
                DatasetKind::Cifar10,
                ModelKind::Resnet18,
                PaperRow::Base
            ),
            None
        );
    }

    #[test]
    fn topographies_map_to_rows() {
        let b = |layout, dimension, norm| {
            Topography::Placed(
                Placement::Builtin {
                    layout,
                    dimension,
                    norm,
                },
                LossMethod::Poli2023,
                Default::default(),
                Default::default(),
                Default::default(),
            )
        };
        assert_eq!(
            PaperRow::of(&b(Layout::Sphere, 2, Norm::Euclidean)),
            Some(PaperRow::Circle)
        );
        assert_eq!(
            PaperRow::of(&b(Layout::Sphere, 3, Norm::Euclidean)),
            Some(PaperRow::Sphere)
        );
        assert_eq!(
            PaperRow::of(&b(Layout::Nested, 3, Norm::Euclidean)),
            Some(PaperRow::Nested3d)
        );
        assert_eq!(PaperRow::of(&b(Layout::Grid, 1, Norm::Euclidean)), None);
        assert_eq!(PaperRow::of(&b(Layout::Grid, 2, Norm::L1)), None);
        assert_eq!(PaperRow::of(&Topography::Baseline), Some(PaperRow::Base));
    }
}
