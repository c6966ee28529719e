//! The schema check: every violation of the generated JSON schema, as a located
//! diagnostic with a message a person can act on.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostics, did_you_mean, one_of};
use super::layers::Layers;
use super::locate::child_path;
use super::schema::experiment_schema;
use super::value::{describe, pointer_to_path};

fn validator() -> Result<&'static Validator, &'static str> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| jsonschema::validator_for(&experiment_schema()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(String::as_str)
}

/// Checks `merged` against the schema; returns whether it passed.
pub fn against_schema(merged: &Value, layers: &Layers, diags: &mut Diagnostics) -> bool {
    let schema = experiment_schema();
    let validator = match validator() {
        Ok(v) => v,
        Err(e) => {
            diags.push(layers.diagnostic(
                "",
                format!("internal error: the experiment schema does not compile: {e}"),
                false,
            ));
            return false;
        }
    };
    report(validator, &schema, merged, merged, "", layers, diags)
}

/// Reports the errors of `instance` (found at `base` in `root_instance`) against the
/// schema `validator` compiles from `schema`.
fn report(
    validator: &Validator,
    schema: &Value,
    root_instance: &Value,
    instance_root: &Value,
    base: &str,
    layers: &Layers,
    diags: &mut Diagnostics,
) -> bool {
    let mut ok = true;
    for error in validator.iter_errors(instance_root) {
        ok = false;
        let pointer = format!("{base}{}", error.instance_path().as_str());
        let path = pointer_to_path(root_instance, &pointer);
        let instance = error.instance();
        let node_schema = schema_at(schema, instance_root, error.instance_path().as_str());
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = node_schema.as_ref().map(property_names).unwrap_or_default();
                for name in unexpected {
                    let key_path = child_path(&path, name);
                    let message = match did_you_mean(name, allowed.iter().map(String::as_str)) {
                        Some(s) => format!("unknown field `{name}`, did you mean `{s}`?"),
                        None => format!(
                            "unknown field `{name}`, expected {}",
                            one_of(allowed.iter().map(String::as_str))
                        ),
                    };
                    diags.push(layers.diagnostic(&key_path, message, true));
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or("?");
                let what = node_schema
                    .as_ref()
                    .and_then(|s| s.pointer(&format!("/properties/{name}/description")))
                    .and_then(Value::as_str)
                    .map(|d| format!(" ({})", first_sentence(d)))
                    .unwrap_or_default();
                diags.push(layers.diagnostic(&path, format!("missing field `{name}`{what}"), true));
            }
            ValidationErrorKind::Enum { options } => {
                let names: Vec<&str> = options
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                diags.push(layers.diagnostic(&path, unknown_value(instance, &names), false));
            }
            ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
                // A mapping where one alternative is a mapping (an optional section, or
                // `{ file: ... }`): the errors against that alternative say more.
                let alternative = node_schema
                    .as_ref()
                    .and_then(|n| mapping_alternative(n, schema));
                let sub = match (instance.is_object(), alternative) {
                    (true, Some(alt)) => {
                        let sub_schema = with_defs(alt, schema);
                        // A part that does not compile on its own keeps the general
                        // message, which is still right.
                        match jsonschema::validator_for(&sub_schema) {
                            Ok(v) => Some((v, sub_schema)),
                            Err(_) => None,
                        }
                    }
                    _ => None,
                };
                match sub {
                    Some((v, sub_schema)) => {
                        report(
                            &v,
                            &sub_schema,
                            root_instance,
                            instance,
                            &pointer,
                            layers,
                            diags,
                        );
                    }
                    None => {
                        let message = any_of_message(instance, node_schema.as_ref(), schema);
                        diags.push(layers.diagnostic(&path, message, false));
                    }
                }
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => type_name(*t).to_string(),
                    TypeKind::Multiple(set) => {
                        // `null` is how schemars marks an optional field: not worth saying.
                        let names: Vec<&str> = set
                            .iter()
                            .filter(|t| *t != JsonType::Null)
                            .map(type_name)
                            .collect();
                        names.join(" or ")
                    }
                };
                diags.push(layers.diagnostic(
                    &path,
                    format!("expected {expected}, found {}", describe(instance)),
                    false,
                ));
            }
            ValidationErrorKind::Minimum { limit } => {
                diags.push(layers.diagnostic(
                    &path,
                    format!("must be at least {limit}, found {}", describe(instance)),
                    false,
                ));
            }
            ValidationErrorKind::Maximum { limit } => {
                diags.push(layers.diagnostic(
                    &path,
                    format!("must be at most {limit}, found {}", describe(instance)),
                    false,
                ));
            }
            ValidationErrorKind::ExclusiveMinimum { limit } => {
                diags.push(layers.diagnostic(
                    &path,
                    format!("must be more than {limit}, found {}", describe(instance)),
                    false,
                ));
            }
            ValidationErrorKind::ExclusiveMaximum { limit } => {
                diags.push(layers.diagnostic(
                    &path,
                    format!("must be less than {limit}, found {}", describe(instance)),
                    false,
                ));
            }
            ValidationErrorKind::MinItems { limit } => {
                let s = if *limit == 1 { "" } else { "s" };
                diags.push(layers.diagnostic(
                    &path,
                    format!("must list at least {limit} item{s}"),
                    false,
                ));
            }
            ValidationErrorKind::MinLength { limit } => {
                let s = if *limit == 1 { "" } else { "s" };
                diags.push(layers.diagnostic(
                    &path,
                    format!("must be at least {limit} character{s} long"),
                    false,
                ));
            }
            ValidationErrorKind::MaxLength { limit } => {
                diags.push(layers.diagnostic(
                    &path,
                    format!("must be at most {limit} characters long"),
                    false,
                ));
            }
            _ => diags.push(layers.diagnostic(&path, error.to_string(), false)),
        }
    }
    ok
}

/// The one alternative of an `anyOf` that is a mapping with properties, if exactly one is.
/// Nested alternatives count too (an optional field whose type is itself a choice).
fn mapping_alternative(node: &Value, root: &Value) -> Option<Value> {
    let mut objects = Vec::new();
    collect_mappings(node, root, &mut objects, 0);
    match objects.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

fn collect_mappings<'a>(node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    let Some(alts) = node
        .get("anyOf")
        .or_else(|| node.get("oneOf"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for alt in alts.iter().map(|a| deref(a, root)) {
        if alt.get("properties").is_some() {
            out.push(alt);
        } else if depth < 4 {
            collect_mappings(alt, root, out, depth + 1);
        }
    }
}

/// A sub-schema made self-contained with the root's `$defs`.
fn with_defs(mut sub: Value, root: &Value) -> Value {
    if let (Some(obj), Some(defs)) = (sub.as_object_mut(), root.get("$defs")) {
        obj.insert("$defs".into(), defs.clone());
    }
    sub
}

fn first_sentence(text: &str) -> String {
    let s = text
        .split(". ")
        .next()
        .unwrap_or(text)
        .split('\n')
        .next()
        .unwrap_or(text)
        .trim()
        .trim_end_matches('.');
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "a list",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "a mapping",
        JsonType::String => "a string",
    }
}

fn unknown_value(instance: &Value, names: &[&str]) -> String {
    match instance.as_str() {
        Some(word) => match did_you_mean(word, names.iter().copied()) {
            Some(s) => format!("unknown value `{word}`, did you mean `{s}`?"),
            None => format!(
                "unknown value `{word}`, expected {}",
                one_of(names.iter().copied())
            ),
        },
        None => format!(
            "expected {}, found {}",
            one_of(names.iter().copied()),
            describe(instance)
        ),
    }
}

/// For values with several accepted forms (a layout name or `{ file: ... }`; a list of
/// proportions or a range), say which forms are accepted.
fn any_of_message(instance: &Value, node: Option<&Value>, root: &Value) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut forms: Vec<String> = Vec::new();
    if let Some(node) = node {
        collect_forms(node, root, &mut words, &mut forms, 0);
    }
    let mut expected: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    expected.extend(forms);
    let expected = match expected.len() {
        0 => "another form".to_string(),
        1 => expected[0].clone(),
        n => format!("{} or {}", expected[..n - 1].join(", "), expected[n - 1]),
    };
    if let Some(word) = instance.as_str()
        && !words.is_empty()
    {
        if let Some(s) = did_you_mean(word, words.iter().map(String::as_str)) {
            return format!("unknown value `{word}`, did you mean `{s}`?");
        }
        return format!("unknown value `{word}`, expected {expected}");
    }
    format!("expected {expected}, found {}", describe(instance))
}

/// Gathers the accepted words (enum values) and shapes of a schema with alternatives.
fn collect_forms(
    node: &Value,
    root: &Value,
    words: &mut Vec<String>,
    forms: &mut Vec<String>,
    depth: usize,
) {
    let node = deref(node, root);
    if depth > 4 {
        return;
    }
    if let Some(word) = node.get("const").and_then(Value::as_str) {
        words.push(word.to_string());
    } else if let Some(options) = node.get("enum").and_then(Value::as_array) {
        words.extend(options.iter().filter_map(Value::as_str).map(str::to_string));
    } else if let Some(alts) = node
        .get("anyOf")
        .or_else(|| node.get("oneOf"))
        .and_then(Value::as_array)
    {
        for alt in alts {
            collect_forms(alt, root, words, forms, depth + 1);
        }
    } else if let Some(props) = node.get("properties").and_then(Value::as_object) {
        let keys: Vec<String> = props.keys().map(|k| format!("{k}: ...")).collect();
        forms.push(format!("`{{ {} }}`", keys.join(", ")));
    } else if node.get("type").and_then(Value::as_str) == Some("array") {
        forms.push("a list".into());
    } else if node.get("type").and_then(Value::as_str) == Some("integer") {
        forms.push(match node.get("minimum").and_then(Value::as_u64) {
            Some(min) if min > 0 => format!("a whole number of at least {min}"),
            _ => "a whole number".into(),
        });
    }
}

/// Follows `$ref` to `#/$defs/...`.
fn deref<'a>(node: &'a Value, root: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..8 {
        match node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(pointer) => match root.pointer(pointer) {
                Some(target) => node = target,
                None => break,
            },
            None => break,
        }
    }
    node
}

/// The sub-schema describing the instance at `pointer`, following properties,
/// additionalProperties, items and `$ref`; for `anyOf`, the alternative with properties.
fn schema_at(root: &Value, instance: &Value, pointer: &str) -> Option<Value> {
    let mut node = deref(root, root);
    let mut inst = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        node = object_alternative(node, root);
        let next = match inst {
            Some(Value::Array(items)) => {
                inst = seg.parse::<usize>().ok().and_then(|i| items.get(i));
                node.get("items")
            }
            _ => {
                inst = inst.and_then(|v| v.get(&seg));
                node.get("properties")
                    .and_then(|p| p.get(&seg))
                    .or_else(|| node.get("additionalProperties"))
            }
        }?;
        node = deref(next, root);
    }
    Some(node.clone())
}

fn object_alternative<'a>(node: &'a Value, root: &'a Value) -> &'a Value {
    let node = deref(node, root);
    match node
        .get("anyOf")
        .or_else(|| node.get("oneOf"))
        .and_then(Value::as_array)
    {
        Some(alts) => alts
            .iter()
            .map(|a| deref(a, root))
            .find(|a| a.get("properties").is_some())
            .unwrap_or(node),
        None => node,
    }
}

fn property_names(node: &Value) -> Vec<String> {
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
