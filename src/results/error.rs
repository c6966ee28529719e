//! Errors reading or writing results; each names the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A record that cannot be turned into text (a float that JSON cannot hold).
    #[error("cannot serialise the record for {path}: {message}")]
    Serialise { path: PathBuf, message: String },
    #[error("{path}:{line}: not a valid record: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}
