//! JSON values in messages and paths, and the problems of values JSON cannot hold.

use serde_json::Value;

use super::locate::{Pos, child_path, item_path};

/// A value JSON cannot represent, with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    pub path: String,
    pub message: String,
    /// Where to point, when not at the path's value (a key set twice: its second key).
    pub at: Option<Pos>,
}

/// How a JSON value reads in a message: `"abc"`, `12`, a list, a mapping, null.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) if s.chars().count() > 40 => "a long string".into(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Converts a JSON pointer (`/grid/topography/2`) into our path (`grid.topography[2]`),
/// using the value to tell list indices from keys.
pub fn pointer_to_path(root: &Value, pointer: &str) -> String {
    let mut path = String::new();
    let mut node = Some(root);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match node {
            Some(Value::Array(items)) => {
                let i: usize = seg.parse().unwrap_or(0);
                path = item_path(&path, i);
                node = items.get(i);
            }
            Some(Value::Object(map)) => {
                path = child_path(&path, &seg);
                node = map.get(&seg);
            }
            _ => {
                path = child_path(&path, &seg);
                node = None;
            }
        }
    }
    path
}
