//! Loading an experiment: the `extends` chain, overrides, the merge through figment,
//! then the schema and the checks of meaning. Every problem is collected before failing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::Serialized;
use serde_json::Value;

use super::diagnostic::{Diagnostic, Diagnostics, Origin};
use super::layers::{Layers, Override};
use super::resolve::{Resolved, resolve};
use super::source::SourceFile;
use super::yaml;
use super::{Experiment, check, semantic};

/// Prefix of environment overrides: `TOPO_TRAINING__EPOCHS=2` sets `training.epochs`.
pub const ENV_PREFIX: &str = "TOPO_";

/// Longest `extends` chain followed.
const MAX_EXTENDS: usize = 32;

/// Overrides on top of the files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `key.path=value` pairs from `--set`, applied last.
    pub sets: Vec<String>,
    /// Environment variables (name, value); only `TOPO_` ones are used.
    pub env: Vec<(String, String)>,
}

impl LoadOptions {
    /// `--set` flags plus the process environment.
    pub fn with_process_env(sets: Vec<String>) -> LoadOptions {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        LoadOptions { sets, env }
    }
}

/// A checked, resolved experiment and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub experiment: Resolved,
    /// The files read, base first.
    pub files: Vec<PathBuf>,
    /// Folder of the file named on the command line: custom layouts are relative to it.
    pub dir: PathBuf,
}

/// Loads, merges and checks `path`; every problem at once on failure.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let files = read_chain(path, &mut diags);
    if files.is_empty() {
        return Err(diags.finish());
    }
    let mut layers = Layers {
        files,
        ..Layers::default()
    };

    let mut converted = Vec::new();
    // Values JSON cannot hold become null; the schema would report them again.
    let mut reported: HashSet<String> = HashSet::new();
    for file in &layers.files {
        let mut json = file.value.clone();
        if let Some(obj) = json.as_object_mut() {
            obj.remove("extends");
        }
        for p in &file.problems {
            let pos = p.at.or_else(|| file.index.value(&p.path));
            let origin = match pos {
                Some(pos) => Origin::in_file(&file.path, &file.text, pos.line, pos.col, pos.len),
                None => Origin::file_start(&file.path),
            };
            reported.insert(p.path.clone());
            diags.push(Diagnostic::new(origin, p.path.clone(), p.message.clone()));
        }
        converted.push(json);
    }
    layers.env = options
        .env
        .iter()
        .filter_map(|(k, v)| env_override(k, v, &mut diags))
        .collect();
    layers.sets = options
        .sets
        .iter()
        .filter_map(|s| set_override(s, &mut diags))
        .collect();

    let merged = match merge(&converted, &layers) {
        Ok(v) => v,
        Err(message) => {
            diags.push(Diagnostic::new(Origin::file_start(path), "", message));
            return Err(diags.finish());
        }
    };

    let mut schema_diags = Diagnostics::default();
    let schema_ok = check::against_schema(&merged, &layers, &mut schema_diags);
    for d in schema_diags.0 {
        if !reported.contains(&d.key_path) {
            diags.push(d);
        }
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    semantic::check(&merged, &layers, &dir, &mut diags);
    if !schema_ok {
        return Err(diags.finish());
    }
    let experiment = match serde_json::from_value::<Experiment>(merged.clone()) {
        Ok(experiment) => experiment,
        // The checks of meaning have located what stops it (a lambda that is not one).
        Err(_) if !diags.is_empty() => return Err(diags.finish()),
        Err(e) => {
            diags.push(Diagnostic::new(
                Origin::file_start(path),
                "",
                format!("cannot read the experiment: {e}"),
            ));
            return Err(diags.finish());
        }
    };
    match resolve(experiment) {
        Ok(experiment) if diags.is_empty() => Ok(Loaded {
            experiment,
            files: layers.files.iter().map(|f| f.path.clone()).collect(),
            dir,
        }),
        Ok(_) => Err(diags.finish()),
        Err(unresolved) => {
            // The checks of meaning may have said it already (an undefined name, with
            // a suggestion): one message per key.
            let said: HashSet<String> = diags.0.iter().map(|d| d.key_path.clone()).collect();
            for p in unresolved.problems {
                if !said.contains(&p.path) {
                    diags.push(layers.diagnostic(&p.path, p.message, false));
                }
            }
            Err(diags.finish())
        }
    }
}

/// Reads `path` and the files it extends, base first. Stops at the first unreadable
/// file, a cycle or a chain too long, with a diagnostic at the `extends:` line.
fn read_chain(path: &Path, diags: &mut Diagnostics) -> Vec<SourceFile> {
    let mut chain: Vec<SourceFile> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut next = path.to_path_buf();
    loop {
        let file = match SourceFile::read(&next) {
            Ok(f) => f,
            Err(d) => {
                diags.push(*d);
                return Vec::new();
            }
        };
        seen.insert(std::fs::canonicalize(&next).unwrap_or_else(|_| next.clone()));
        let extends = file.value.get("extends").cloned();
        let at_extends = |file: &SourceFile, message: String| {
            let pos = file.index.value("extends");
            let origin = match pos {
                Some(p) => Origin::in_file(&file.path, &file.text, p.line, p.col, p.len),
                None => Origin::file_start(&file.path),
            };
            Diagnostic::new(origin, "extends", message)
        };
        match extends {
            None | Some(Value::Null) => {
                chain.push(file);
                break;
            }
            Some(Value::String(rel)) => {
                let base_dir = next.parent().map(Path::to_path_buf).unwrap_or_default();
                let target = base_dir.join(&rel);
                let canonical = std::fs::canonicalize(&target);
                let problem = match &canonical {
                    Err(e) => Some(format!(
                        "cannot read `{rel}` (looked for {}): {e}",
                        target.display()
                    )),
                    Ok(c) if seen.contains(c) => {
                        let mut names: Vec<String> = chain
                            .iter()
                            .chain(std::iter::once(&file))
                            .map(|f| f.path.display().to_string())
                            .collect();
                        names.push(target.display().to_string());
                        Some(format!("`extends` cycle: {}", names.join(" -> ")))
                    }
                    Ok(_) if chain.len() + 1 >= MAX_EXTENDS => {
                        Some(format!("`extends` chain longer than {MAX_EXTENDS} files"))
                    }
                    Ok(_) => None,
                };
                if let Some(message) = problem {
                    diags.push(at_extends(&file, message));
                    return Vec::new();
                }
                chain.push(file);
                next = target;
            }
            Some(_) => {
                diags.push(at_extends(
                    &file,
                    "expected the path of another experiment file".into(),
                ));
                return Vec::new();
            }
        }
    }
    chain.reverse();
    chain
}

/// Deep-merges the layers with figment: mappings merge key by key, anything else
/// (lists included) is replaced by the higher layer.
fn merge(files: &[Value], layers: &Layers) -> Result<Value, String> {
    let mut figment = Figment::new();
    for value in files {
        figment = figment.merge(Serialized::defaults(value));
    }
    for o in layers.env.iter().chain(&layers.sets) {
        figment = figment.merge(Serialized::default(&o.path, &o.value));
    }
    figment
        .extract::<Value>()
        .map_err(|e| format!("cannot merge the experiment's layers: {e}"))
}

/// `TOPO_TRAINING__EPOCHS=2` -> `training.epochs = 2`.
fn env_override(name: &str, raw: &str, diags: &mut Diagnostics) -> Option<Override> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let path = rest
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".");
    if !valid_key_path(&path) {
        diags.push(Diagnostic::new(
            Origin::Env(name.to_string()),
            "",
            "expected TOPO_SECTION__FIELD (sections joined by a double underscore)",
        ));
        return None;
    }
    Some(Override {
        written: name.to_string(),
        path,
        value: scalar(raw),
    })
}

/// `training.epochs=2` -> `training.epochs = 2`.
fn set_override(raw: &str, diags: &mut Diagnostics) -> Option<Override> {
    let Some((key, value)) = raw.split_once('=') else {
        diags.push(Diagnostic::new(
            Origin::Set(raw.to_string()),
            "",
            "expected KEY.PATH=VALUE, e.g. training.epochs=2",
        ));
        return None;
    };
    let key = key.trim();
    if !valid_key_path(key) {
        diags.push(Diagnostic::new(
            Origin::Set(raw.to_string()),
            "",
            "expected a dotted key path of names, e.g. training.optimizer.lr",
        ));
        return None;
    }
    Some(Override {
        written: raw.to_string(),
        path: key.to_string(),
        value: scalar(value),
    })
}

fn valid_key_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Values on the command line and in the environment read as YAML (`2`, `1e-3`,
/// `[0, 1]`, `{from: 0, to: 1, steps: 11}`), falling back to the plain string.
fn scalar(raw: &str) -> Value {
    match yaml::parse(raw, super::MAX_DEPTH) {
        Ok(parsed) if parsed.problems.is_empty() => parsed.value,
        // Not YAML, or not a value JSON holds: the text itself.
        _ => Value::String(raw.to_string()),
    }
}
