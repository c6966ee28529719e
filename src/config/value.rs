//! YAML values to JSON values, path by path, so that what JSON cannot hold (NaN,
//! infinities, non-string keys, tags) is reported where it stands in the file.

use serde_json::{Map, Number, Value};
use serde_yaml::Value as Yaml;

use super::locate::{child_path, item_path};

/// A value JSON cannot represent, with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    pub path: String,
    pub message: String,
}

/// Converts `yaml`; problems are collected and their values replaced by `null`.
pub fn yaml_to_json(yaml: &Yaml, path: &str, problems: &mut Vec<ValueProblem>) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_u64() {
                Value::Number(i.into())
            } else if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                match Number::from_f64(f) {
                    Some(num) => Value::Number(num),
                    None => {
                        problems.push(ValueProblem {
                            path: path.to_string(),
                            message: format!("`{f}` is not a finite number"),
                        });
                        Value::Null
                    }
                }
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &item_path(path, i), problems))
                .collect(),
        ),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => {
                        problems.push(ValueProblem {
                            path: path.to_string(),
                            message: format!(
                                "keys must be plain names, found {}",
                                describe_yaml(other)
                            ),
                        });
                        continue;
                    }
                };
                let child = yaml_to_json(v, &child_path(path, &key), problems);
                out.insert(key, child);
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            problems.push(ValueProblem {
                path: path.to_string(),
                message: format!(
                    "YAML tags (`{}`) are not used by topo: remove the tag",
                    t.tag
                ),
            });
            Value::Null
        }
    }
}

fn describe_yaml(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
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
