//! YAML in and out through one parser, yaml-rust2. A file is read once into a JSON value
//! with the position of every node, and what JSON cannot hold (NaN, infinities, keys that
//! are not names, tags) is reported by path. Values are written as block YAML with their
//! fields in declaration order.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::{YamlEmitter, YamlLoader};

use super::locate::{IndexError, Pos, PositionIndex, child_path, item_path};
use super::source::MAX_DEPTH;
use super::value::ValueProblem;

/// Nodes a file may expand to, aliases included: far above any experiment (a 1 MiB file
/// holds fewer), far below what an alias bomb asks for.
const MAX_NODES: usize = 1_000_000;

/// A parsed YAML document.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The document as JSON; a node JSON cannot hold is `null` and in `problems`.
    pub value: Value,
    pub index: PositionIndex,
    pub problems: Vec<ValueProblem>,
}

/// Parses `text`: a syntax error, nesting deeper than `max_depth`, aliases that expand
/// too far or a second document stop it, with their position.
pub fn parse(text: &str, max_depth: usize) -> Result<Parsed, IndexError> {
    let mut walker = Walker {
        max_depth,
        ..Walker::default()
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut walker, true) {
        let m = e.marker();
        let message = if e.info().contains("recursion limit") {
            too_deep(max_depth)
        } else {
            format!("invalid YAML: {}", e.info())
        };
        return Err(IndexError {
            line: m.line(),
            col: m.col(),
            message,
        });
    }
    if let Some(stop) = walker.stop {
        return Err(stop);
    }
    Ok(Parsed {
        value: walker.root.unwrap_or(Value::Null),
        index: walker.index,
        problems: walker.problems,
    })
}

/// Reads a whole document as `T` (files topo wrote: `run.yaml`, the resolved experiment).
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let parsed = parse(text, MAX_DEPTH)
        .map_err(|e| format!("line {}, column {}: {}", e.line, e.col + 1, e.message))?;
    if let Some(p) = parsed.problems.first() {
        return Err(format!("`{}`: {}", p.path, p.message));
    }
    serde_json::from_value(parsed.value).map_err(|e| e.to_string())
}

/// Writes `value` as block YAML. Its fields keep their order: the JSON text serde writes
/// is YAML too, so yaml-rust2 reads it into its ordered form and emits that.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, String> {
    let json = serde_json::to_string(value).map_err(|e| e.to_string())?;
    let docs = YamlLoader::load_from_str(&json).map_err(|e| e.to_string())?;
    let doc = docs
        .first()
        .ok_or_else(|| "the value wrote no YAML document".to_string())?;
    let mut out = String::new();
    YamlEmitter::new(&mut out)
        .dump(doc)
        .map_err(|e| format!("{e:?}"))?;
    let body = out.strip_prefix("---\n").unwrap_or(&out);
    Ok(format!("{body}\n"))
}

fn too_deep(max_depth: usize) -> String {
    format!("nesting deeper than {max_depth} levels: experiment files are shallow")
}

/// How a plain scalar reads (YAML 1.2 core schema): null, a boolean, an integer, a float,
/// else a string. `Err` holds a float JSON cannot represent.
fn plain_scalar(text: &str) -> Result<Value, f64> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    if let Some(f) = match digits {
        ".inf" | ".Inf" | ".INF" => Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if digits.len() == text.len() => Some(f64::NAN),
        _ => None,
    } {
        return Err(f);
    }
    let radix = |prefix: &str, radix: u32| {
        (digits.len() == text.len())
            .then(|| text.strip_prefix(prefix))
            .flatten()
            .filter(|d| !d.is_empty())
            .and_then(|d| u64::from_str_radix(d, radix).ok())
    };
    if let Some(n) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Ok(Value::Number(n.into()));
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<u64>() {
            return Ok(Value::Number(n.into()));
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
    }
    if is_core_float(digits)
        && let Ok(f) = text.parse::<f64>()
    {
        return Number::from_f64(f).map(Value::Number).ok_or(f);
    }
    Ok(Value::String(text.to_string()))
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already taken off.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn tag_problem(tag: &Tag) -> String {
    format!(
        "YAML tags (`{}{}`) are not used by topo: remove the tag",
        tag.handle, tag.suffix
    )
}

/// What a mapping waits for next.
#[derive(Debug)]
enum Expect {
    Key,
    /// The rest of a key that is a list or a mapping (reported, then dropped).
    ComplexKey,
    /// The value of this key (`None`: a key that is not a name, whose value is dropped).
    Value(Option<String>),
}

#[derive(Debug)]
enum Frame {
    Map {
        path: String,
        expect: Expect,
        map: Map<String, Value>,
        anchor: usize,
        tagged: bool,
    },
    Seq {
        path: String,
        items: Vec<Value>,
        anchor: usize,
        tagged: bool,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    index: PositionIndex,
    problems: Vec<ValueProblem>,
    /// Anchored values and their node counts, by anchor id.
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<Value>,
    documents: usize,
    max_depth: usize,
    /// The first problem that stops the parse.
    stop: Option<IndexError>,
}

/// Where a node starting now goes.
enum Place {
    /// A mapping key: the key's text goes to the mapping.
    Key,
    /// A value at this path.
    Node(String),
}

impl Walker {
    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(ValueProblem {
            path: path.to_string(),
            message,
            at: None,
        });
    }

    fn stop_at(&mut self, mark: Marker, message: String) {
        if self.stop.is_none() {
            self.stop = Some(IndexError {
                line: mark.line(),
                col: mark.col(),
                message,
            });
        }
    }

    fn place(&mut self) -> Place {
        match self.stack.last_mut() {
            None => Place::Node(String::new()),
            Some(Frame::Seq { path, items, .. }) => Place::Node(item_path(path, items.len())),
            Some(Frame::Map { path, expect, .. }) => match expect {
                Expect::Key => Place::Key,
                Expect::ComplexKey => Place::Node(child_path(path, "")),
                Expect::Value(Some(key)) => Place::Node(child_path(path, key)),
                // The value of a key already reported: indexed under the empty name.
                Expect::Value(None) => Place::Node(child_path(path, "")),
            },
        }
    }

    /// A mapping key read: its text, or `None` when it is not a name.
    fn key(&mut self, key: Option<String>, mark: Marker, len: usize) {
        let Some(Frame::Map {
            path, expect, map, ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        let path = path.clone();
        let named = key.clone().unwrap_or_default();
        let key_path = child_path(&path, &named);
        self.index.keys.insert(
            key_path.clone(),
            Pos {
                line: mark.line(),
                col: mark.col(),
                len: len.max(1),
            },
        );
        let duplicate = key.as_ref().is_some_and(|k| map.contains_key(k));
        *expect = Expect::Value(key);
        if duplicate {
            self.problems.push(ValueProblem {
                path: key_path,
                message: format!("`{named}` is set twice in this mapping: keep one"),
                at: Some(Pos {
                    line: mark.line(),
                    col: mark.col(),
                    len: len.max(1),
                }),
            });
        }
    }

    /// A finished node goes to its parent (or becomes the document).
    fn deliver(&mut self, value: Value, size: usize) {
        self.nodes += size;
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { expect, map, .. }) => match std::mem::replace(expect, Expect::Key) {
                Expect::Value(Some(key)) => {
                    map.insert(key, value);
                }
                Expect::ComplexKey => *expect = Expect::Value(None),
                Expect::Value(None) | Expect::Key => {}
            },
        }
    }

    fn remember(&mut self, anchor: usize, value: &Value, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
        mark: Marker,
    ) {
        let len = text.chars().count();
        let path = match self.place() {
            Place::Key => {
                let key = match (&tag, style) {
                    (Some(tag), _) => Err(tag_problem(tag)),
                    (None, TScalarStyle::Plain) if plain_scalar(&text) == Ok(Value::Null) => {
                        Err("keys must be plain names, found null".to_string())
                    }
                    (None, _) => Ok(text),
                };
                let path = self.stack_path();
                match key {
                    Ok(k) => self.key(Some(k), mark, len),
                    Err(message) => {
                        self.problem(&path, message);
                        self.key(None, mark, len);
                    }
                }
                return;
            }
            Place::Node(path) => path,
        };
        self.index.values.insert(
            path.clone(),
            Pos {
                line: mark.line(),
                col: mark.col(),
                len: len.max(1),
            },
        );
        let value = match (tag, style) {
            (Some(tag), _) => {
                self.problem(&path, tag_problem(&tag));
                Value::Null
            }
            (None, TScalarStyle::Plain) => match plain_scalar(&text) {
                Ok(v) => v,
                Err(f) => {
                    self.problem(&path, format!("`{f}` is not a finite number"));
                    Value::Null
                }
            },
            (None, _) => Value::String(text),
        };
        self.remember(anchor, &value, 1);
        self.deliver(value, 1);
    }

    /// The path of the innermost container.
    fn stack_path(&self) -> String {
        match self.stack.last() {
            Some(Frame::Map { path, .. } | Frame::Seq { path, .. }) => path.clone(),
            None => String::new(),
        }
    }

    fn alias(&mut self, id: usize, mark: Marker) {
        let (value, size) = self.anchors.get(&id).cloned().unwrap_or((Value::Null, 1));
        match self.place() {
            Place::Key => {
                let path = self.stack_path();
                self.problem(&path, "keys must be plain names, found an alias".into());
                self.key(None, mark, 1);
            }
            Place::Node(path) => {
                if self.nodes + size > MAX_NODES {
                    self.stop_at(
                        mark,
                        "YAML aliases expand too far (an alias bomb?): refuse to expand".into(),
                    );
                    return;
                }
                self.index.values.insert(
                    path,
                    Pos {
                        line: mark.line(),
                        col: mark.col(),
                        len: 1,
                    },
                );
                self.deliver(value, size);
            }
        }
    }

    fn start(&mut self, is_map: bool, anchor: usize, tag: Option<Tag>, mark: Marker) {
        let path = match self.place() {
            Place::Key => {
                let path = self.stack_path();
                let what = if is_map { "a mapping" } else { "a list" };
                self.problem(&path, format!("keys must be plain names, found {what}"));
                if let Some(Frame::Map { expect, .. }) = self.stack.last_mut() {
                    *expect = Expect::ComplexKey;
                }
                // The key's own nodes are read into a container nobody keeps.
                child_path(&path, "")
            }
            Place::Node(path) => path,
        };
        self.index.values.entry(path.clone()).or_insert(Pos {
            line: mark.line(),
            col: mark.col(),
            len: 1,
        });
        if self.stack.len() >= self.max_depth {
            self.stop_at(mark, too_deep(self.max_depth));
            return;
        }
        let tagged = match &tag {
            Some(t) => {
                self.problem(&path, tag_problem(t));
                true
            }
            None => false,
        };
        self.stack.push(if is_map {
            Frame::Map {
                path,
                expect: Expect::Key,
                map: Map::new(),
                anchor,
                tagged,
            }
        } else {
            Frame::Seq {
                path,
                items: Vec::new(),
                anchor,
                tagged,
            }
        });
    }

    fn end(&mut self) {
        let (value, anchor, tagged) = match self.stack.pop() {
            Some(Frame::Map {
                map,
                anchor,
                tagged,
                ..
            }) => (Value::Object(map), anchor, tagged),
            Some(Frame::Seq {
                items,
                anchor,
                tagged,
                ..
            }) => (Value::Array(items), anchor, tagged),
            None => return,
        };
        let value = if tagged { Value::Null } else { value };
        let size = 1 + count_nodes(&value);
        self.remember(anchor, &value, size);
        // The container's own node; its children were counted as they came.
        self.deliver(value, 1);
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Array(items) => items.iter().map(|i| 1 + count_nodes(i)).sum(),
        Value::Object(map) => map.values().map(|i| 1 + count_nodes(i)).sum(),
        _ => 0,
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.stop.is_some() {
            return;
        }
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.stop_at(
                        mark,
                        "a second YAML document (`---`): an experiment file holds one".into(),
                    );
                }
            }
            Event::Scalar(text, style, anchor, tag) => self.scalar(text, style, anchor, tag, mark),
            Event::Alias(id) => self.alias(id, mark),
            Event::MappingStart(anchor, tag) => self.start(true, anchor, tag, mark),
            Event::SequenceStart(anchor, tag) => self.start(false, anchor, tag, mark),
            Event::MappingEnd | Event::SequenceEnd => self.end(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(text: &str) -> Value {
        let p = parse(text, MAX_DEPTH).unwrap();
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        p.value
    }

    #[test]
    fn plain_scalars_read_by_the_core_schema() {
        assert_eq!(
            value(
                "a: 1\nb: -2\nc: 1e-5\nd: .5\ne: 0x1f\nf: true\ng: ~\nh: inf\ni: 1.2.3\nj: '12'\nk: 5.\n"
            ),
            json!({
                "a": 1, "b": -2, "c": 1e-5, "d": 0.5, "e": 31, "f": true, "g": null,
                "h": "inf", "i": "1.2.3", "j": "12", "k": 5.0
            })
        );
    }

    #[test]
    fn what_json_cannot_hold_is_reported_by_path() {
        let p = parse(
            "a: [1, .inf]\n!t b: 1\nc: !t 2\n~: 3\nd: 1\nd: 2\n",
            MAX_DEPTH,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = p
            .problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a[1]", "`inf` is not a finite number"),
                ("", "YAML tags (`!t`) are not used by topo: remove the tag"),
                ("c", "YAML tags (`!t`) are not used by topo: remove the tag"),
                ("", "keys must be plain names, found null"),
                ("d", "`d` is set twice in this mapping: keep one"),
            ]
        );
        assert_eq!(p.value, json!({ "a": [1, null], "c": null, "d": 2 }));
        // A key set twice is shown at its second place.
        assert_eq!(p.problems[4].at.map(|a| (a.line, a.col)), Some((6, 0)));
        assert_eq!(p.index.value("a[1]").map(|p| (p.line, p.col)), Some((1, 7)));
    }

    #[test]
    fn aliases_expand_within_bounds() {
        assert_eq!(
            value("a: &x [1, 2]\nb: *x\n"),
            json!({ "a": [1, 2], "b": [1, 2] })
        );
        let mut bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n".to_string();
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(",");
            bomb += &format!("{}: &{} [{refs}]\n", w[1], w[1]);
        }
        let err = parse(&bomb, MAX_DEPTH).unwrap_err();
        assert!(
            err.message.contains("aliases expand too far"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_second_document_is_refused() {
        let err = parse("a: 1\n---\nb: 2\n", MAX_DEPTH).unwrap_err();
        assert!(
            err.message.contains("second YAML document"),
            "{}",
            err.message
        );
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Run {
        id: String,
        lambda: Option<f64>,
        seed: u64,
        tags: Vec<String>,
        nested: std::collections::BTreeMap<String, f64>,
    }

    #[test]
    fn written_yaml_keeps_field_order_and_reads_back() {
        let run = Run {
            id: "x-1".into(),
            lambda: Some(1e-5),
            seed: 3,
            tags: vec!["true".into(), "12".into(), "a: b".into(), "".into()],
            nested: [("lr".to_string(), 0.05)].into(),
        };
        let text = to_yaml(&run).unwrap();
        assert!(
            text.starts_with("id: x-1\nlambda: 0.00001\nseed: 3\ntags:\n  - \"true\"\n"),
            "{text}"
        );
        assert_eq!(from_yaml::<Run>(&text).unwrap(), run);
    }
}
