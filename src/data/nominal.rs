//! What a data set looks like without reading it: the full set's split sizes, one
//! example's shape and the classes, for cost estimates made before the data is here.

use crate::config::{DatasetKind, DatasetSpec};

/// A data set's nominal size and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nominal {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    /// One training example: channels, height, width (audio: 1, mel bands, frames).
    pub input: [usize; 3],
    pub classes: usize,
}

impl Nominal {
    /// The full data set of `kind`, split as the loaders split it; `None` for an image
    /// folder, which is what its tree holds.
    fn of_kind(kind: DatasetKind) -> Option<Nominal> {
        Some(match kind {
            // A tenth of the 60,000 training images is held out for validation.
            DatasetKind::FashionMnist => Nominal {
                train: 54_000,
                validation: 6_000,
                test: 10_000,
                input: [1, 28, 28],
                classes: 10,
            },
            // 5,000 training images are held out.
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Nominal {
                train: 45_000,
                validation: 5_000,
                test: 10_000,
                input: [3, 32, 32],
                classes: if kind == DatasetKind::Cifar10 {
                    10
                } else {
                    100
                },
            },
            // Version 2's lists; 1 s clips, 64 mel bands, 101 frames.
            DatasetKind::SpeechCommands => Nominal {
                train: 84_843,
                validation: 9_981,
                test: 11_005,
                input: [1, 64, 101],
                classes: 35,
            },
            // 35,690 clips of the three development sets, 80/10/10; trained on 1 s crops.
            DatasetKind::BirdDcase => Nominal {
                train: 28_552,
                validation: 3_569,
                test: 3_569,
                input: [1, 64, 101],
                classes: 2,
            },
            DatasetKind::ImageFolder => return None,
        })
    }

    /// The set `spec` asks for: its kind's, each split cut to its `limit`.
    pub fn of(spec: &DatasetSpec) -> Nominal {
        let limits = spec.limits();
        let Some(full) = Nominal::of_kind(spec.kind) else {
            return Nominal::of_folder(spec, limits);
        };
        let cut = |n: usize, limit: Option<usize>| limit.map_or(n, |l| l.min(n));
        Nominal {
            train: cut(full.train, limits.train),
            validation: cut(full.validation, limits.validation),
            test: cut(full.test, limits.test),
            ..full
        }
    }

    /// What a model built for `spec` takes: one example's shape and the classes. Unlike
    /// [`Nominal::of`], an image folder's tree is not walked: its classes are `train/`'s
    /// folders (one where they cannot be listed: the preflight reports why).
    pub fn model_input(spec: &DatasetSpec) -> ([usize; 3], usize) {
        match (Nominal::of_kind(spec.kind), &spec.image) {
            (Some(n), _) => (n.input, n.classes),
            (None, Some(image)) => {
                let size = image.size.get() as usize;
                let classes = crate::data::image_folder::tree::classes(&spec.root_or_default())
                    .map_or(1, |c| c.len().max(1));
                ([image.channels(), size, size], classes)
            }
            (None, None) => ([3, 1, 1], 1),
        }
    }

    /// An image folder's: its tree indexed (directories only), limits applied. A tree
    /// that does not index gives empty splits and one class: the preflight reports why.
    fn of_folder(spec: &DatasetSpec, limits: crate::config::Limits) -> Nominal {
        let Some(image) = &spec.image else {
            return Nominal {
                train: 0,
                validation: 0,
                test: 0,
                input: [3, 1, 1],
                classes: 1,
            };
        };
        let size = image.size.get() as usize;
        let input = [image.channels(), size, size];
        match crate::data::image_folder::plan(&spec.root_or_default(), image, limits) {
            Ok(plan) => Nominal {
                train: plan.train.len(),
                validation: plan.validation.len(),
                test: plan.test.len(),
                input,
                classes: plan.classes.len(),
            },
            Err(_) => Nominal {
                train: 0,
                validation: 0,
                test: 0,
                input,
                classes: 1,
            },
        }
    }
}
