//! Where each key and value of a YAML file is: errors found later on the merged value
//! are mapped back to a file's line and column through this index (built by `yaml`).

use std::collections::HashMap;

/// A location in a file: 1-based line, 0-based column, and the length to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// Positions of every node, by path (`grid.topography[2]`).
#[derive(Debug, Clone, Default)]
pub struct PositionIndex {
    /// Position of the key naming the node (absent for sequence items and the root).
    pub(super) keys: HashMap<String, Pos>,
    /// Position of the node's value.
    pub(super) values: HashMap<String, Pos>,
}

/// A problem that stops reading a file (a syntax error, too deep, an alias bomb).
#[derive(Debug, Clone)]
pub struct IndexError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl PositionIndex {
    /// Where the key naming `path` is, else where its value is.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }

    /// Where the value at `path` is, else its key.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
    }

    /// Whether the file sets `path` itself.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }
}

/// Builds the path of a child node.
pub fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Builds the path of a sequence item.
pub fn item_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}
