//! Reading one experiment file safely: bounded size, text only, parsed on its own so
//! that every error names the right file.

use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Origin};
use super::locate::PositionIndex;

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
    pub value: serde_yaml::Value,
    pub index: PositionIndex,
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
        // The position index goes first: it walks events without building values, so it
        // bounds nesting and never expands aliases.
        let index = PositionIndex::build(&text, MAX_DEPTH).map_err(|e| {
            Box::new(Diagnostic::new(
                Origin::in_file(path, &text, e.line, e.col, 1),
                "",
                e.message,
            ))
        })?;
        let value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let message = yaml_message(&e.to_string());
            Box::new(Diagnostic::new(
                Origin::in_file(path, &text, line, col.saturating_sub(1), 1),
                "",
                message,
            ))
        })?;
        if !value.is_mapping() {
            return Err(Box::new(Diagnostic::new(
                Origin::in_file(path, &text, 1, 0, 1),
                "",
                "expected a mapping of experiment fields (`name:`, `grid:`, ...) at the top of the file",
            )));
        }
        Ok(SourceFile {
            path: path.to_path_buf(),
            text,
            value,
            index,
        })
    }
}

/// serde_yaml appends " at line L column C" to its messages; the location is shown
/// separately, so drop it.
fn yaml_message(raw: &str) -> String {
    let message = match raw.find(" at line ") {
        Some(i) => &raw[..i],
        None => raw,
    };
    if message.contains("repetition limit") {
        return "YAML aliases expand too far (an alias bomb?): refuse to expand".into();
    }
    format!("invalid YAML: {message}")
}
