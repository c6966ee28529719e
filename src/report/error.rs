//! Errors that stop `topo report`. Missing, failed or unreadable runs are not errors:
//! the report lists them.

use std::path::PathBuf;

use crate::results::ResultsError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "{path}: no such experiment folder (expected results/<experiment>/ with a runs/ folder)"
    )]
    NotFound { path: PathBuf },
    #[error("cannot list the runs in {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("aggregating {what} failed")]
    Aggregate {
        what: &'static str,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("cannot serialise {path}: {message}")]
    Serialise { path: PathBuf, message: String },
    #[error("cannot draw {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error(transparent)]
    Layouts(#[from] super::layouts::LayoutPlotError),
    #[error(transparent)]
    Write(#[from] ResultsError),
}
