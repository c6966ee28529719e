//! Reading one experiment file safely: bounded size, text only, parsed on its own so
//! that every error names the right file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::diagnostic::{Diagnostic, Origin};
use super::locate::PositionIndex;
use super::value::ValueProblem;
use super::yaml;

/// Experiment files are small; anything larger is a mistake (a data file passed by
/// accident), refused before parsing so memory stays bounded.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting accepted; the schema's deepest path is far shallower.
pub const MAX_DEPTH: usize = 64;

/// One parsed YAML file with what is needed to point into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// The document as JSON; what JSON cannot hold is `null` here and in `problems`.
    pub value: Value,
    pub index: PositionIndex,
    pub problems: Vec<ValueProblem>,
}

impl SourceFile {
    /// Reads and parses `path`; a problem comes back as a located diagnostic.
    pub fn read(path: &Path) -> Result<SourceFile, Box<Diagnostic>> {
        let whole =
            |message: String| Box::new(Diagnostic::new(Origin::file_start(path), "", message));
        let meta =
            std::fs::metadata(path).map_err(|e| whole(format!("cannot read the file: {e}")))?;
        if meta.is_dir() {
            return Err(whole("is a folder, not an experiment file".into()));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(whole(format!(
                "file is {:.1} MB; experiment files are limited to 1 MiB (is this the right file?)",
                meta.len() as f64 / 1e6
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| whole(format!("cannot read the file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            whole(format!(
                "not a text file: invalid UTF-8 at byte {} (experiment files are YAML text)",
                e.utf8_error().valid_up_to()
            ))
        })?;
        if text.contains('\0') {
            return Err(whole(
                "not a text file: contains NUL bytes (experiment files are YAML text)".into(),
            ));
        }
        SourceFile::parse(path, text)
    }

    /// Parses text already in memory, as if read from `path`.
    pub fn parse(path: &Path, text: String) -> Result<SourceFile, Box<Diagnostic>> {
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(Box::new(Diagnostic::new(
                Origin::file_start(path),
                "",
                "file is empty: an experiment needs at least `name`, `datasets`, `topographies` and `grid`",
            )));
        }
        let parsed = yaml::parse(&text, MAX_DEPTH).map_err(|e| {
            Box::new(Diagnostic::new(
                Origin::in_file(path, &text, e.line, e.col, 1),
                "",
                e.message,
            ))
        })?;
        if !parsed.value.is_object() {
            return Err(Box::new(Diagnostic::new(
                Origin::in_file(path, &text, 1, 0, 1),
                "",
                "expected a mapping of experiment fields (`name:`, `grid:`, ...) at the top of the file",
            )));
        }
        Ok(SourceFile {
            path: path.to_path_buf(),
            text,
            value: parsed.value,
            index: parsed.index,
            problems: parsed.problems,
        })
    }
}
