//! Where each key and value of a YAML file is: figment and serde_yaml keep no
//! positions, so errors found later on a merged value are mapped back to a file's line
//! and column through this index.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

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
    keys: HashMap<String, Pos>,
    /// Position of the node's value.
    values: HashMap<String, Pos>,
}

/// A structural problem met while indexing (too deep, or a syntax error).
#[derive(Debug, Clone)]
pub struct IndexError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl PositionIndex {
    pub fn build(text: &str, max_depth: usize) -> Result<PositionIndex, IndexError> {
        let mut walker = Walker {
            max_depth,
            ..Walker::default()
        };
        let mut parser = Parser::new_from_str(text);
        if let Err(e) = parser.load(&mut walker, false) {
            let m = e.marker();
            let message = if e.info().contains("recursion limit") {
                format!("nesting deeper than {max_depth} levels: experiment files are shallow")
            } else {
                format!("invalid YAML: {}", e.info())
            };
            return Err(IndexError {
                line: m.line(),
                col: m.col(),
                message,
            });
        }
        match walker.too_deep {
            Some(m) => Err(IndexError {
                line: m.line(),
                col: m.col(),
                message: format!(
                    "nesting deeper than {max_depth} levels: experiment files are shallow"
                ),
            }),
            None => Ok(walker.index),
        }
    }

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

#[derive(Debug)]
enum Frame {
    /// In a mapping: the path, and the key just read (waiting for its value).
    Map {
        path: String,
        pending_key: Option<String>,
    },
    /// In a sequence: the path and the next index.
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    index: PositionIndex,
    max_depth: usize,
    too_deep: Option<Marker>,
}

impl Walker {
    /// The path of the node starting now, or `None` if this scalar is a mapping key.
    fn next_node_path(&mut self, key_text: Option<&str>, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = item_path(path, *next);
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                Some(key) => Some(child_path(path, &key)),
                None => {
                    // This node is a key; complex (non-scalar) keys get an empty name.
                    let key = key_text.unwrap_or("").to_string();
                    let len = key.chars().count().max(1);
                    self.index.keys.insert(
                        child_path(path, &key),
                        Pos {
                            line: mark.line(),
                            col: mark.col(),
                            len,
                        },
                    );
                    *pending_key = Some(key);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.too_deep.is_some() {
            return;
        }
        let pos = |len: usize| Pos {
            line: mark.line(),
            col: mark.col(),
            len: len.max(1),
        };
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(path) = self.next_node_path(Some(&text), mark) {
                    self.index.values.insert(path, pos(text.chars().count()));
                }
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_node_path(Some("*alias"), mark) {
                    self.index.values.insert(path, pos(1));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let path = self.next_node_path(None, mark).unwrap_or_default();
                self.index.values.entry(path.clone()).or_insert(pos(1));
                if self.stack.len() >= self.max_depth {
                    self.too_deep = Some(mark);
                    return;
                }
                self.stack.push(if is_map {
                    Frame::Map {
                        path,
                        pending_key: None,
                    }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}
