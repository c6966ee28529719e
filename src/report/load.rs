//! The per-epoch, pruning and topography records of the runs the figures draw, read in
//! parallel, each file once. A missing file means the stage has not produced it yet.

use std::path::Path;

use rayon::prelude::*;
use serde::de::DeserializeOwned;

use super::scan::{DoneRun, Unreadable};
use crate::results::{
    AnalysesRecord, EpochRecord, PruningRow, ResultsError, TopographyRecord, read_json, read_jsonl,
    read_pruning_csv,
};

/// Which records to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub pruning: bool,
    pub metrics: bool,
    pub topography: bool,
}

/// What one run left beyond its summary.
#[derive(Debug, Clone, Default)]
pub struct RunFiles {
    pub pruning: Vec<PruningRow>,
    pub metrics: Vec<EpochRecord>,
    pub topography: Option<TopographyRecord>,
    pub analyses: Option<AnalysesRecord>,
}

fn read_optional<T>(
    path: &Path,
    read: impl Fn(&Path) -> Result<T, ResultsError>,
    problems: &mut Vec<Unreadable>,
) -> Option<T> {
    match read(path) {
        Ok(v) => Some(v),
        Err(ResultsError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => {
            problems.push(Unreadable::from_error(path.to_path_buf(), &e));
            None
        }
    }
}

fn json<T: DeserializeOwned>(path: &Path) -> Result<T, ResultsError> {
    read_json(path)
}

/// Reads the wanted records of `runs` (indices into `done`), in that order.
pub fn load_runs(
    done: &[DoneRun],
    runs: &[usize],
    wanted: Wanted,
) -> (Vec<RunFiles>, Vec<Unreadable>) {
    let read: Vec<(RunFiles, Vec<Unreadable>)> = runs
        .par_iter()
        .map(|&i| {
            let mut problems = Vec::new();
            let mut files = RunFiles::default();
            let Some(run) = done.get(i) else {
                return (files, problems);
            };
            let dir = &run.dir;
            if wanted.pruning {
                files.pruning = read_optional(&dir.pruning(), read_pruning_csv, &mut problems)
                    .unwrap_or_default();
            }
            if wanted.metrics {
                files.metrics =
                    read_optional(&dir.metrics(), read_jsonl, &mut problems).unwrap_or_default();
            }
            if wanted.topography {
                files.topography = read_optional(&dir.topography(), json, &mut problems);
                files.analyses = read_optional(&dir.analyses(), json, &mut problems);
            }
            (files, problems)
        })
        .collect();
    let mut problems = Vec::new();
    let files = read
        .into_iter()
        .map(|(f, p)| {
            problems.extend(p);
            f
        })
        .collect();
    (files, problems)
}
