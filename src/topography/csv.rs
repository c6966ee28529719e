//! Custom layouts: positions read from a CSV file, one row of coordinates per channel.
//!
//! Format: comma-separated numbers, the same count on every row (that count is the
//! dimension). Blank lines and lines starting with `#` are skipped. The first row may be
//! a header of names (a row where no field parses as a number); it is skipped too.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{Positions, PositionsError};

/// Reads positions from the CSV file at `path`.
pub fn read_positions_csv(path: &Path) -> Result<Positions, PositionsError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| PositionsError::Io {
        path: name.clone(),
        source,
    })?;
    read_positions(file, &name)
}

/// Reads positions from CSV text; `source` names the input in errors.
pub fn read_positions(reader: impl Read, source: &str) -> Result<Positions, PositionsError> {
    let mut dim = None;
    let mut coords = Vec::new();
    let mut seen_data_or_header = false;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| PositionsError::Io {
            path: format!("{source}:{number}"),
            source: e,
        })?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if !seen_data_or_header {
            seen_data_or_header = true;
            if fields
                .iter()
                .all(|f| !f.is_empty() && f.parse::<f64>().is_err())
            {
                continue;
            }
        }
        let expected = *dim.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(PositionsError::Ragged {
                path: source.to_owned(),
                line: number,
                expected,
                found: fields.len(),
            });
        }
        for (c, field) in fields.iter().enumerate() {
            let column = c + 1;
            if field.is_empty() {
                return Err(PositionsError::EmptyField {
                    path: source.to_owned(),
                    line: number,
                    column,
                });
            }
            let value: f64 = field.parse().map_err(|_| PositionsError::NotANumber {
                path: source.to_owned(),
                line: number,
                column,
                text: (*field).to_owned(),
            })?;
            if !value.is_finite() {
                return Err(PositionsError::NotFinite {
                    path: source.to_owned(),
                    line: number,
                    column,
                    text: (*field).to_owned(),
                });
            }
            coords.push(value);
        }
    }
    match dim {
        Some(d) => Positions::from_rows(d, coords),
        None => Err(PositionsError::Empty {
            path: source.to_owned(),
        }),
    }
}
