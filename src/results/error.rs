//! Errors reading or writing results; each names the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a valid record: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}
