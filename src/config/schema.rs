//! The JSON schema of experiment files, generated from the Rust types so the two never
//! drift; `topo schema` writes it to `schemas/`, `topo schema --check` fails when stale.

use std::path::{Path, PathBuf};

use super::Experiment;

/// File name of the experiment schema under `schemas/`.
pub const EXPERIMENT_SCHEMA_FILE: &str = "experiment.schema.json";

/// The schema as JSON.
pub fn experiment_schema() -> serde_json::Value {
    let mut schema = serde_json::Value::from(schemars::schema_for!(Experiment));
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), "topo experiment".into());
    }
    schema
}

/// The schema file's text: pretty JSON with a final newline, stable across runs.
pub fn experiment_schema_text() -> String {
    // `{:#}` is serde_json's pretty printer, which cannot fail on a `Value`.
    let mut text = format!("{:#}", experiment_schema());
    text.push('\n');
    text
}

/// What `topo schema --check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaCheck {
    UpToDate(PathBuf),
    Stale(PathBuf),
    Missing(PathBuf),
}

/// Compares the schema on disk under `dir` with the generated one.
pub fn check_schemas(dir: &Path) -> SchemaCheck {
    let path = dir.join(EXPERIMENT_SCHEMA_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text == experiment_schema_text() => SchemaCheck::UpToDate(path),
        Ok(_) => SchemaCheck::Stale(path),
        Err(_) => SchemaCheck::Missing(path),
    }
}
