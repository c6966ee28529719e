//! Reading and writing records. Writers go through [`write_atomic`]; readers take
//! a path and name it in every error.

use std::fs;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{PruningRow, ResultsError, write_atomic};

fn read_text(path: &Path) -> Result<String, ResultsError> {
    fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn serialise_error(path: &Path, message: impl ToString) -> ResultsError {
    ResultsError::Serialise {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn parse_error(path: &Path, line: usize, message: impl ToString) -> ResultsError {
    ResultsError::Parse {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    }
}

/// Writes one JSON document, pretty-printed.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ResultsError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| serialise_error(path, e))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads one JSON document.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ResultsError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| parse_error(path, e.line(), e))
}

/// Writes records one per line. The whole file is rewritten atomically: the files are
/// small (one line per epoch) and a reader never sees a torn last line.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), ResultsError> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(|e| serialise_error(path, e))?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Reads records one per line; blank lines are skipped.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ResultsError> {
    let text = read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| parse_error(path, i + 1, e)))
        .collect()
}

/// Writes `pruning.csv`.
pub fn write_pruning_csv(path: &Path, rows: &[PruningRow]) -> Result<(), ResultsError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .map_err(|e| serialise_error(path, e))?;
    }
    let bytes = writer.into_inner().map_err(|e| serialise_error(path, e))?;
    write_atomic(path, &bytes)
}

/// Reads `pruning.csv`.
pub fn read_pruning_csv(path: &Path) -> Result<Vec<PruningRow>, ResultsError> {
    let text = read_text(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| parse_error(path, i + 2, e)))
        .collect()
}
