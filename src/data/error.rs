//! Why a data set could not be read: every error names the file and what was expected.

use std::path::PathBuf;

use crate::data::wav::WavError;

/// Errors of the data loaders.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Stimuli of one modality asked of a data set of the other (refused by the preflight
    /// before anything runs; this is the engine's own guard).
    #[error("{what} cannot be shown to a model of {input}")]
    Stimulus {
        what: &'static str,
        input: &'static str,
    },
    /// The data set's folder or some of its files are missing.
    #[error(
        "{dataset}: {root} is missing {missing}; expected there: {expected}. Get the data set from {source_hint}"
    )]
    Missing {
        dataset: &'static str,
        root: PathBuf,
        /// What was not found (a file or folder name, or "the folder").
        missing: String,
        /// The files or folders the loader looks for.
        expected: String,
        /// Where to obtain the data set.
        source_hint: &'static str,
    },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A binary file whose size does not fit its format (truncated download, wrong file).
    #[error("{path}: {found} bytes, expected {expected} (truncated or not the right file?)")]
    Size {
        path: PathBuf,
        expected: String,
        found: u64,
    },
    /// A file whose content is not what its name promises.
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },
    #[error("{path}")]
    Wav {
        path: PathBuf,
        #[source]
        source: WavError,
    },
    /// A class folder with no examples: labels would silently shift if it were skipped.
    #[error("{folder}: class folder holds {expected}")]
    EmptyClass {
        folder: PathBuf,
        /// What it lacks: "no .wav file".
        expected: &'static str,
    },
    /// A line of a split list or labels file names a file that does not exist.
    #[error("{list}:{line}: `{entry}` names a missing file ({missing})")]
    MissingEntry {
        list: PathBuf,
        line: usize,
        entry: String,
        missing: PathBuf,
    },
    /// A malformed line of a CSV labels file.
    #[error("{path}:{line}: {what}")]
    Csv {
        path: PathBuf,
        line: usize,
        what: String,
    },
    /// `batch` was given an index past the end of the split.
    #[error("example index {index} out of range for a split of {len}")]
    Index { index: usize, len: usize },
    #[error("building a batch tensor")]
    Tensor(#[from] candle_core::Error),
    /// Several files of one data set failed (every bad clip, not only the first).
    #[error("{} files could not be read:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Many(Vec<DataError>),
}

impl DataError {
    /// `Ok` when `errors` is empty, else [`DataError::from_each`].
    pub fn all(errors: Vec<DataError>) -> Result<(), DataError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DataError::from_each(errors))
        }
    }

    /// The one error, or several as [`DataError::Many`].
    pub fn from_each(mut errors: Vec<DataError>) -> DataError {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            DataError::Many(errors)
        }
    }

    /// The single problems this error holds: one for most, each of [`DataError::Many`].
    pub fn into_each(self) -> Vec<DataError> {
        match self {
            DataError::Many(errors) => errors.into_iter().flat_map(DataError::into_each).collect(),
            e => vec![e],
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
