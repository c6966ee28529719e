//! The layers an experiment is merged from, lowest precedence first: the `extends`
//! chain (base files before the files extending them), `TOPO_` environment variables,
//! then `--set` flags. Each problem found on the merged value is traced back to the
//! highest layer that sets it, so the message points at the line to change.

use std::path::Path;

use serde_json::Value;

use super::diagnostic::{Diagnostic, Origin};
use super::source::SourceFile;

/// One override from the environment or the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// What the user wrote: `training.epochs=2` or `TOPO_TRAINING__EPOCHS`.
    pub written: String,
    /// `training.epochs`.
    pub path: String,
    pub value: Value,
}

/// All layers of one experiment.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// Base first, the file named on the command line last.
    pub files: Vec<SourceFile>,
    pub env: Vec<Override>,
    pub sets: Vec<Override>,
}

impl Layers {
    /// The file named on the command line.
    pub fn leaf(&self) -> Option<&SourceFile> {
        self.files.last()
    }

    /// A diagnostic for `path`, located in the layer that sets it. `on_key` puts the
    /// caret on the key (unknown fields) rather than the value.
    pub fn diagnostic(&self, path: &str, message: impl Into<String>, on_key: bool) -> Diagnostic {
        Diagnostic::new(self.origin(path, on_key), path, message)
    }

    fn origin(&self, path: &str, on_key: bool) -> Origin {
        let covers = |o: &Override| {
            path == o.path
                || path.starts_with(&format!("{}.", o.path))
                || path.starts_with(&format!("{}[", o.path))
        };
        if let Some(o) = self.sets.iter().rev().find(|o| covers(o)) {
            return Origin::Set(o.written.clone());
        }
        if let Some(o) = self.env.iter().rev().find(|o| covers(o)) {
            return Origin::Env(o.written.clone());
        }
        // The file as a whole: its first line.
        if path.is_empty()
            && let Some(f) = self.leaf()
        {
            return Origin::in_file(&f.path, &f.text, 1, 0, 1);
        }
        // The closest node a file sets: the path itself, else its nearest ancestor.
        let mut probe = path.to_string();
        loop {
            if let Some(file) = self.files.iter().rev().find(|f| f.index.contains(&probe)) {
                let pos = if on_key && probe == path {
                    file.index.key(&probe)
                } else {
                    file.index.value(&probe)
                };
                if let Some(p) = pos {
                    return Origin::in_file(&file.path, &file.text, p.line, p.col, p.len);
                }
            }
            match parent(&probe) {
                Some(p) => probe = p,
                None => break,
            }
        }
        match self.leaf() {
            Some(f) => Origin::file_start(&f.path),
            None => Origin::file_start(Path::new("<experiment>")),
        }
    }
}

/// `a.b[2]` -> `a.b`; `a.b` -> `a`; `a` -> `` ; `` -> None.
fn parent(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_string())
}
