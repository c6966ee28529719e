//! The data sets: Fashion-MNIST, CIFAR-10/100, SpeechCommands and BirdDCASE, served as
//! batches of normalised tensors. Images stay in memory as bytes; audio is decoded once
//! into log-mel features cached on disk (see [`frontend`]).

pub mod audio;
pub mod bird_dcase;
pub mod cifar;
mod error;
pub mod fashion_mnist;
pub mod frontend;
pub mod image;
pub mod image_folder;
pub mod logmel;
pub mod nominal;
pub mod resample;
pub mod speech_commands;
pub mod stimuli;
pub mod subset;
pub mod wav;

use std::path::Path;

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;

use crate::config::{DatasetKind, DatasetSpec};

pub use error::DataError;

/// Inputs and labels of some examples.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `(N, C, H, W)` f32: images (C = 1 or 3) or log-mel spectrograms `(N, 1, 64, 101)`.
    pub inputs: Tensor,
    /// `(B,)` u32, one per example.
    pub labels: Tensor,
    /// Evaluation over windows (BirdDCASE): windows per example, summing to N; the
    /// caller averages the logits of each example's windows. `None`: one input per example.
    pub windows: Option<Vec<usize>>,
}

/// One split of a data set.
pub trait Split: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples at `indices` (positions in this split). `augment` is `Some(rng)` for
    /// training (random crop and flip, random one-second crop), `None` for evaluation.
    fn batch(
        &self,
        indices: &[usize],
        augment: Option<&mut ChaCha8Rng>,
        device: &Device,
    ) -> Result<Batch, DataError>;

    /// Where this split's examples sit in the data set's own files, in split order:
    /// indices into the training files (train and validation) or the test files (test).
    /// For `topo splits`, so another framework can train on the same examples. `None`
    /// for audio, whose examples are files named in the data set's own lists.
    fn source_indices(&self) -> Option<&[usize]>;

    /// Each example's class, in split order.
    fn labels(&self) -> Vec<u32>;

    /// How this split's examples reach the model: pixel format or front end, and
    /// normalisation; the analyses render their stimuli through it.
    fn input_format(&self) -> stimuli::InputFormat<'_>;

    /// The same examples evaluated each whole in one input, for a split evaluated on
    /// windows (BirdDCASE); `None` where every example is one input already.
    fn whole_clips(&self) -> Option<Box<dyn Split>> {
        None
    }
}

/// A data set's three splits and what a model needs to know about it.
pub struct Dataset {
    pub train: Box<dyn Split>,
    pub validation: Box<dyn Split>,
    pub test: Box<dyn Split>,
    pub num_classes: usize,
    pub in_channels: usize,
    pub class_names: Vec<String>,
}

/// Loads the data set `spec` names from its folder; audio features are cached in `cache_dir`.
pub fn load(spec: &DatasetSpec, cache_dir: &Path) -> Result<Dataset, DataError> {
    let root = spec.root_or_default();
    let limits = spec.limits();
    let normalisation = spec.normalisation.unwrap_or_default();
    match spec.kind {
        DatasetKind::FashionMnist => fashion_mnist::load(&root, limits),
        DatasetKind::Cifar10 => cifar::load(cifar::Variant::Cifar10, &root, limits),
        DatasetKind::Cifar100 => cifar::load(cifar::Variant::Cifar100, &root, limits),
        DatasetKind::SpeechCommands => {
            speech_commands::load(&root, cache_dir, limits, normalisation)
        }
        DatasetKind::BirdDcase => bird_dcase::load(&root, cache_dir, limits, normalisation),
        DatasetKind::ImageFolder => {
            image_folder::load(&root, image_spec(spec, &root)?, limits, cache_dir)
        }
    }
}

/// The cheap part of loading: the folders, file lists and labels files of an audio data
/// set, without decoding a clip. Image data sets have nothing cheaper than [`load`],
/// which reads their few files whole in about a second.
pub fn scan(spec: &DatasetSpec) -> Result<(), DataError> {
    let root = spec.root_or_default();
    match spec.kind {
        DatasetKind::SpeechCommands => speech_commands::scan(&root).map(|_| ()),
        DatasetKind::BirdDcase => bird_dcase::scan(&root).map(|_| ()),
        DatasetKind::ImageFolder => {
            let plan = image_folder::plan(&root, image_spec(spec, &root)?, spec.limits())?;
            crate::log::log(&format!(
                "{} ({}): {}",
                spec.kind.name(),
                root.display(),
                plan.describe()
            ));
            Ok(())
        }
        DatasetKind::FashionMnist | DatasetKind::Cifar10 | DatasetKind::Cifar100 => Ok(()),
    }
}

/// Writes a cache file atomically (readers never see half of one), its errors as data
/// errors.
pub(crate) fn write_cache(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    write_cache_with(path, |out| std::io::Write::write_all(out, bytes))
}

/// [`write_cache`] for a file written in parts (large ones, never copied whole first).
pub(crate) fn write_cache_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), DataError> {
    use std::io::Write;
    crate::results::write_atomic_with(path, |tmp| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(tmp)?);
        write(&mut out)?;
        out.flush()
    })
    .map_err(|e| match e {
        crate::results::ResultsError::Write { path, source } => DataError::Io { path, source },
        other => DataError::Format {
            path: path.to_path_buf(),
            what: other.to_string(),
        },
    })
}

/// An image folder's `image:` settings, which validation requires.
fn image_spec<'a>(
    spec: &'a DatasetSpec,
    root: &Path,
) -> Result<&'a crate::config::ImageFolderSpec, DataError> {
    spec.image.as_ref().ok_or_else(|| DataError::Format {
        path: root.to_path_buf(),
        what: "an image_folder data set needs `image: { size: N }`, the model's input size".into(),
    })
}
