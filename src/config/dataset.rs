//! Data sets named in an experiment.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ImageFolderSpec;

/// The data sets `topo` can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Fashion-MNIST, IDX files (gzipped or not); a subset ships in `data/`.
    FashionMnist,
    /// CIFAR-10, binary version (`data_batch_1..5.bin`, `test_batch.bin`).
    Cifar10,
    /// CIFAR-100, binary version (`train.bin`, `test.bin`), fine labels.
    Cifar100,
    /// Speech Commands v0.02: one folder per word, official split lists.
    SpeechCommands,
    /// DCASE 2018 bird audio detection: the three development sets.
    BirdDcase,
    /// Your own images, `root/<split>/<class>/*.jpg|jpeg|png` (ImageNet's layout), with
    /// their size and preprocessing under `image:`.
    ImageFolder,
}

impl DatasetKind {
    /// The data set's name as users know it.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "Fashion-MNIST",
            DatasetKind::Cifar10 => "CIFAR-10",
            DatasetKind::Cifar100 => "CIFAR-100",
            DatasetKind::SpeechCommands => "SpeechCommands",
            DatasetKind::BirdDcase => "BirdDCASE",
            DatasetKind::ImageFolder => "image folder",
        }
    }

    /// Whether its examples are audio clips, decoded and cached as log-mel features.
    pub fn is_audio(self) -> bool {
        matches!(self, DatasetKind::SpeechCommands | DatasetKind::BirdDcase)
    }

    /// Whether its files are decoded on first load and cached (audio clips, image
    /// folders): slow the first time, so checked cheaply before.
    pub fn is_decoded(self) -> bool {
        self.is_audio() || self == DatasetKind::ImageFolder
    }

    /// Where the data set is looked for when `root` is not given.
    pub fn default_root(self) -> PathBuf {
        PathBuf::from(match self {
            DatasetKind::FashionMnist => "data/fashion-mnist-subset",
            DatasetKind::Cifar10 => "data/cifar-10-batches-bin",
            DatasetKind::Cifar100 => "data/cifar-100-binary",
            DatasetKind::SpeechCommands => "data/speech_commands_v0.02",
            DatasetKind::BirdDcase => "data/bird_dcase",
            DatasetKind::ImageFolder => "data/images",
        })
    }
}

/// One data set: what it is, where it lives, and how much of it to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Which data set this is.
    pub kind: DatasetKind,
    /// Folder holding the files, relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Use at most this many examples per split, to scale an experiment down: one
    /// number for every split, or `{ train: 5000, validation: 500, test: 1000 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// Epochs for this data set; defaults to `training.epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub epochs: Option<u32>,
    /// Audio only: the statistics features are normalised by; `per_clip` (the
    /// reference's) unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<AudioNormalisation>,
    /// `image_folder` only, and required there: the input size and preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFolderSpec>,
}

/// How audio features are normalised: `(x - mean) / std` with statistics of the
/// training clips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudioNormalisation {
    /// The reference's: the mean over training clips of each clip's mean, and the mean
    /// of each clip's standard deviation (n - 1).
    #[default]
    PerClip,
    /// Over every value of every training clip: the global mean and the population
    /// standard deviation, which is larger (it adds the spread between clips' means).
    Global,
}

impl DatasetSpec {
    /// The folder to read, `root` or the kind's default.
    pub fn root_or_default(&self) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| self.kind.default_root())
    }

    /// The limit of each split.
    pub fn limits(&self) -> Limits {
        Limits::of(self.limit)
    }
}

/// How many examples of each split to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Limit {
    /// At most this many examples in every split.
    Each(NonZeroUsize),
    /// At most this many in each split named; a split not named is used whole.
    PerSplit(SplitLimits),
}

/// `{ train: 5000, validation: 500, test: 1000 }`, any of them left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<NonZeroUsize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<NonZeroUsize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<NonZeroUsize>,
}

/// The per-split limits of an optional `limit`, as the loaders take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub train: Option<usize>,
    pub validation: Option<usize>,
    pub test: Option<usize>,
}

impl Limits {
    pub fn of(limit: Option<Limit>) -> Limits {
        match limit {
            None => Limits::default(),
            Some(Limit::Each(n)) => Limits {
                train: Some(n.get()),
                validation: Some(n.get()),
                test: Some(n.get()),
            },
            Some(Limit::PerSplit(s)) => Limits {
                train: s.train.map(NonZeroUsize::get),
                validation: s.validation.map(NonZeroUsize::get),
                test: s.test.map(NonZeroUsize::get),
            },
        }
    }
}
