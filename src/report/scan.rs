//! Reading every run folder once: done, failed, still pending, or unreadable. Nothing
//! here is fatal but listing the folder itself.

use std::io::ErrorKind;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::ReportError;
use super::identity::{ExperimentInfo, RunKinds};
use super::legacy;
use crate::results::{ExperimentDir, ResultsError, RunAxes, RunDir, RunStatus, Summary, read_json};

/// A finished run with both accuracies.
#[derive(Debug, Clone)]
pub struct DoneRun {
    pub dir: RunDir,
    pub summary: Summary,
    pub identity: RunKinds,
    /// Validation accuracy of the best epoch, in [0, 1].
    pub validation: f64,
    /// Test accuracy of the best checkpoint, in [0, 1].
    pub test: f64,
}

/// A run whose summary says it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedRun {
    pub id: String,
    pub axes: RunAxes,
    /// The epoch in flight, if training had started.
    pub epoch: Option<u32>,
    pub reason: String,
}

/// A run folder without a summary: running, interrupted, or not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRun {
    pub id: String,
    /// A lock file is present: probably running now.
    pub locked: bool,
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub path: PathBuf,
    pub message: String,
}

impl Unreadable {
    pub fn from_error(path: PathBuf, e: &ResultsError) -> Unreadable {
        Unreadable {
            path,
            message: crate::log::chain(e),
        }
    }
}

/// Every run folder, sorted by id within each list.
#[derive(Debug, Default)]
pub struct Scan {
    pub folders: usize,
    pub done: Vec<DoneRun>,
    pub failed: Vec<FailedRun>,
    pub pending: Vec<PendingRun>,
    /// Runs whose summary cannot be used.
    pub unreadable_runs: usize,
    pub unreadable: Vec<Unreadable>,
}

enum Read {
    Done(Box<DoneRun>, Option<Unreadable>),
    Failed(FailedRun),
    Pending(PendingRun),
    Unreadable(Unreadable),
}

/// Reads `summary.json` of every run folder (and `run.yaml` of a finished run whose
/// summary predates its identity).
pub fn scan_runs(exp: &ExperimentDir, info: &ExperimentInfo) -> Result<Scan, ReportError> {
    let runs = exp.existing_runs().map_err(|source| ReportError::List {
        path: exp.runs_dir(),
        source,
    })?;
    let reads: Vec<Read> = runs.par_iter().map(|run| read_run(run, info)).collect();
    let mut scan = Scan {
        folders: runs.len(),
        ..Scan::default()
    };
    for read in reads {
        match read {
            Read::Done(run, problem) => {
                scan.done.push(*run);
                scan.unreadable.extend(problem);
            }
            Read::Failed(f) => scan.failed.push(f),
            Read::Pending(p) => scan.pending.push(p),
            Read::Unreadable(u) => {
                scan.unreadable_runs += 1;
                scan.unreadable.push(u);
            }
        }
    }
    Ok(scan)
}

fn read_run(run: &RunDir, info: &ExperimentInfo) -> Read {
    let path = run.summary();
    let summary: Summary = match read_json(&path) {
        Ok(s) => s,
        Err(ResultsError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Read::Pending(PendingRun {
                id: run.id(),
                locked: run.lock().exists(),
            });
        }
        Err(e) => return Read::Unreadable(Unreadable::from_error(path, &e)),
    };
    if summary.status == RunStatus::Failed {
        let (epoch, reason) = match &summary.failure {
            Some(f) => (f.epoch, f.reason.clone()),
            None => (None, "no reason recorded".to_string()),
        };
        return Read::Failed(FailedRun {
            id: run.id(),
            axes: summary.axes,
            epoch,
            reason,
        });
    }
    let (Some(validation), Some(test)) = (summary.validation_accuracy, summary.test_accuracy)
    else {
        let message = "status is done but the validation or test accuracy is missing".to_string();
        return Read::Unreadable(Unreadable { path, message });
    };
    let (identity, problem) = match &summary.identity {
        Some(identity) => (RunKinds::of(identity), None),
        None => legacy::read_kinds(run),
    };
    let identity = identity.or_experiment(info, &summary.axes);
    Read::Done(
        Box::new(DoneRun {
            dir: run.clone(),
            summary,
            identity,
            validation,
            test,
        }),
        problem,
    )
}
