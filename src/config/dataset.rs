//! Data sets named in an experiment.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
}

impl DatasetKind {
    /// Epochs of the paper's recipe for this task.
    pub fn paper_epochs(self) -> u32 {
        match self {
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 100,
            DatasetKind::SpeechCommands => 12,
            DatasetKind::BirdDcase => 36,
            DatasetKind::FashionMnist => 10,
        }
    }

    /// Where the data set is looked for when `root` is not given.
    pub fn default_root(self) -> PathBuf {
        PathBuf::from(match self {
            DatasetKind::FashionMnist => "data/fashion-mnist-subset",
            DatasetKind::Cifar10 => "data/cifar-10-batches-bin",
            DatasetKind::Cifar100 => "data/cifar-100-binary",
            DatasetKind::SpeechCommands => "data/speech_commands_v0.02",
            DatasetKind::BirdDcase => "data/bird_dcase",
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
    /// Use at most this many examples per split, to scale an experiment down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit: Option<usize>,
    /// Epochs for this data set; defaults to `training.epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub epochs: Option<u32>,
}

impl DatasetSpec {
    /// The folder to read, `root` or the kind's default.
    pub fn root_or_default(&self) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| self.kind.default_root())
    }
}
