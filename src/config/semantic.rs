//! Checks of meaning the schema cannot express: names the grid refers to, layouts that
//! exist, lambdas that are positive, names that stay inside `results/`. They run on the
//! merged JSON value part by part, so they report alongside schema errors.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::diagnostic::{Diagnostics, did_you_mean, one_of};
use super::layers::Layers;
use super::locate::{child_path, item_path};
use super::{
    DatasetKind, Lambda, LayoutSource, ModelKind, NotALambda, TopographyKind, TopographySpec,
};

/// Runs every check of meaning on `merged`; `dir` is the experiment file's folder.
pub fn check(merged: &Value, layers: &Layers, dir: &Path, diags: &mut Diagnostics) {
    check_name(merged, layers, diags);
    let datasets = keys(merged, "datasets");
    let topographies = keys(merged, "topographies");
    let models = keys(merged, "models");
    let mut model_names = models.clone();
    model_names.extend(ModelKind::ALL.iter().map(|k| k.name().to_string()));

    check_refs(
        merged,
        layers,
        "grid.dataset",
        &datasets,
        "data set",
        "datasets",
        diags,
    );
    check_refs(
        merged,
        layers,
        "grid.topography",
        &topographies,
        "topography",
        "topographies",
        diags,
    );
    check_refs(
        merged,
        layers,
        "grid.model",
        &model_names,
        "model",
        "models",
        diags,
    );
    check_topographies(merged, layers, dir, diags);
    check_normalisation(merged, layers, diags);
    check_image_folders(merged, layers, diags);
    check_lambdas(merged, layers, diags);
    check_excludes(
        merged,
        layers,
        &datasets,
        &topographies,
        &model_names,
        diags,
    );
    check_pruning(merged, layers, diags);
    check_measures(merged, layers, diags);
    check_schedules(merged, layers, diags);
    check_stems(merged, layers, diags);
    check_report(merged, layers, &datasets, diags);
}

/// `stem: imagenet` on VGG-16-BN, which is torchvision's already.
fn check_stems(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(models) = merged.get("models").and_then(Value::as_object) else {
        return;
    };
    for (name, spec) in models {
        let kind = spec.get("kind").and_then(Value::as_str).unwrap_or_default();
        if spec.get("stem").and_then(Value::as_str) == Some("imagenet") && kind == "vgg16_bn" {
            diags.push(layers.diagnostic(
                &child_path(&child_path("models", name), "stem"),
                format!("{kind} is torchvision's already, with one stem: remove `stem`"),
                false,
            ));
        }
    }
}

/// A lambda schedule longer than training: lambda would never reach its value.
fn check_schedules(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(epochs) = at(merged, "training.epochs").and_then(Value::as_u64) else {
        return;
    };
    let Some(topographies) = merged.get("topographies").and_then(Value::as_object) else {
        return;
    };
    for (name, spec) in topographies {
        let Some(ramp) = spec
            .get("lambda_schedule")
            .and_then(|s| s.get("epochs"))
            .and_then(Value::as_u64)
        else {
            continue;
        };
        if ramp > epochs {
            let path = child_path(
                &child_path(&child_path("topographies", name), "lambda_schedule"),
                "epochs",
            );
            diags.push(layers.diagnostic(
                &path,
                format!(
                    "the ramp takes {ramp} epochs and training {epochs}: lambda would never reach its value; ramp over at most {epochs} epochs"
                ),
                false,
            ));
        }
    }
}

/// A measure asked for that does not apply to a data set of the grid (orientation on
/// audio, tonotopy on images): one error per measure, naming the data sets.
fn check_measures(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(list) = at(merged, "analyses.measures").and_then(Value::as_array) else {
        return;
    };
    let used: Option<BTreeSet<&str>> = at(merged, "grid.dataset")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect());
    let kinds: Vec<(&str, DatasetKind)> = merged
        .get("datasets")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(name, _)| used.as_ref().is_none_or(|u| u.contains(name.as_str())))
        .filter_map(|(name, spec)| {
            // A kind that does not read is the schema's to report.
            match serde_json::from_value::<DatasetKind>(spec.get("kind")?.clone()) {
                Ok(kind) => Some((name.as_str(), kind)),
                Err(_) => None,
            }
        })
        .collect();
    for (i, item) in list.iter().enumerate() {
        // A name that does not read is the schema's to report.
        let Ok(measure) = serde_json::from_value::<super::Measure>(item.clone()) else {
            continue;
        };
        let refused: Vec<String> = kinds
            .iter()
            .filter(|(_, k)| !measure.applies_to(*k))
            .map(|(name, k)| format!("`{name}` ({})", k.name()))
            .collect();
        if !refused.is_empty() {
            diags.push(layers.diagnostic(
                &item_path("analyses.measures", i),
                format!(
                    "`{}` needs {}, and the grid's data set {} has none: remove it from \
                     `analyses.measures` (left out, the measures are those that apply to each \
                     data set)",
                    measure.name(),
                    measure.needs(),
                    refused.join(", ")
                ),
                false,
            ));
        }
    }
}

fn keys(merged: &Value, section: &str) -> BTreeSet<String> {
    merged
        .get(section)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn at<'a>(merged: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(merged, |v, k| v.get(k))
}

fn check_name(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(name) = merged.get("name").and_then(Value::as_str) else {
        return;
    };
    let safe = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name.chars().all(super::is_safe_char);
    if !safe {
        diags.push(
            layers
                .diagnostic(
                    "name",
                    format!("`{name}` would write outside `results/<name>/`"),
                    false,
                )
                .with_hint(Some(
                    "use letters, digits, `-`, `_` and `.` (not starting with `.`)".into(),
                )),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn check_refs(
    merged: &Value,
    layers: &Layers,
    axis: &str,
    defined: &BTreeSet<String>,
    what: &str,
    section: &str,
    diags: &mut Diagnostics,
) {
    let Some(items) = at(merged, axis).and_then(Value::as_array) else {
        return;
    };
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let Some(name) = item.as_str() else { continue };
        let path = item_path(axis, i);
        if !seen.insert(name) {
            diags.push(layers.diagnostic(&path, format!("`{name}` is listed twice"), false));
        } else if !defined.contains(name) {
            let message = match did_you_mean(name, defined.iter().map(String::as_str)) {
                Some(s) => format!("unknown {what} `{name}`, did you mean `{s}`?"),
                None if defined.is_empty() => {
                    format!("unknown {what} `{name}`: `{section}` defines none")
                }
                None => format!(
                    "unknown {what} `{name}`, expected {}",
                    one_of(defined.iter().map(String::as_str))
                ),
            };
            diags.push(layers.diagnostic(&path, message, false));
        }
    }
}

fn check_topographies(merged: &Value, layers: &Layers, dir: &Path, diags: &mut Diagnostics) {
    let Some(map) = merged.get("topographies").and_then(Value::as_object) else {
        return;
    };
    for (name, raw) in map {
        let base = child_path("topographies", name);
        // Malformed entries are the schema's to report, unresolvable ones resolution's.
        let Ok(spec) = serde_json::from_value::<TopographySpec>(raw.clone()) else {
            continue;
        };
        if let (TopographyKind::Topographic, Some(LayoutSource::File(f))) =
            (spec.kind, &spec.layout)
        {
            let path = dir.join(&f.file);
            if !path.is_file() {
                diags.push(layers.diagnostic(
                    &child_path(&child_path(&base, "layout"), "file"),
                    format!(
                        "layout file not found: {} (paths are relative to the experiment file)",
                        path.display()
                    ),
                    false,
                ));
            }
        }
    }
}

/// `normalisation` is for the audio data sets' features.
fn check_normalisation(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(datasets) = merged.get("datasets").and_then(Value::as_object) else {
        return;
    };
    for (name, spec) in datasets {
        let Some(kind) = spec.get("kind") else {
            continue;
        };
        // A kind that does not read is the schema's to report.
        let image = match serde_json::from_value::<DatasetKind>(kind.clone()) {
            Ok(k) => !k.is_audio(),
            Err(_) => false,
        };
        if spec.get("normalisation").is_some() && image {
            diags.push(layers.diagnostic(
                &child_path(&child_path("datasets", name), "normalisation"),
                "`normalisation` applies to audio data sets (speech_commands, bird_dcase): remove it",
                false,
            ));
        }
    }
}

/// `image:` belongs to image folders, which need it and a `root`; its sizes and
/// statistics must fit together.
fn check_image_folders(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(datasets) = merged.get("datasets").and_then(Value::as_object) else {
        return;
    };
    for (name, spec) in datasets {
        let at = child_path("datasets", name);
        let folder = spec.get("kind").and_then(Value::as_str) == Some("image_folder");
        let Some(image) = spec.get("image") else {
            if folder {
                diags.push(layers.diagnostic(
                    &at,
                    "an image_folder data set needs `image: { size: N }`, the side in pixels of \
                     the square images the model sees (224 for ImageNet models)",
                    false,
                ));
            }
            continue;
        };
        let image_at = child_path(&at, "image");
        if !folder {
            diags.push(layers.diagnostic(
                &image_at,
                "`image` applies to image_folder data sets: remove it",
                false,
            ));
            continue;
        }
        if spec.get("root").is_none() {
            diags.push(layers.diagnostic(
                &at,
                "an image_folder data set needs `root:`, the folder holding train/<class>/",
                false,
            ));
        }
        let size = image.get("size").and_then(Value::as_u64);
        if let (Some(size), Some(resize)) = (size, image.get("resize").and_then(Value::as_u64))
            && resize < size
        {
            diags.push(layers.diagnostic(
                &child_path(&image_at, "resize"),
                format!(
                    "images resized to {resize} pixels cannot give {size}-pixel crops: make \
                     `resize` at least `size` ({size})"
                ),
                false,
            ));
        }
        let channels = match image.get("colour").and_then(Value::as_str) {
            Some("grey") => 1,
            _ => 3,
        };
        let stats = image.get("normalisation");
        for field in ["mean", "std"] {
            let Some(values) = stats.and_then(|n| n.get(field)).and_then(Value::as_array) else {
                continue;
            };
            let path = child_path(&child_path(&image_at, "normalisation"), field);
            if values.len() != channels {
                diags.push(layers.diagnostic(
                    &path,
                    format!(
                        "{} values for {channels} channel(s): give one per channel",
                        values.len()
                    ),
                    false,
                ));
            }
            if field == "std" && values.iter().any(|v| v.as_f64().is_some_and(|v| v <= 0.0)) {
                diags.push(layers.diagnostic(&path, "standard deviations must be positive", false));
            }
        }
    }
}

fn check_lambdas(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(items) = at(merged, "grid.lambda").and_then(Value::as_array) else {
        return;
    };
    let mut seen: Vec<f64> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = item_path("grid.lambda", i);
        match item.as_f64() {
            Some(l) if Lambda::new(l).is_err() => {
                diags.push(layers.diagnostic(&path, NotALambda(l).to_string(), false));
            }
            Some(l) if seen.contains(&l) => {
                diags.push(layers.diagnostic(&path, format!("`{l}` is listed twice"), false));
            }
            Some(l) => seen.push(l),
            None => {}
        }
    }
    let topographic = merged
        .get("grid")
        .and_then(|g| g.get("topography"))
        .and_then(Value::as_array)
        .map(|names| {
            names.iter().filter_map(Value::as_str).any(|n| {
                merged
                    .get("topographies")
                    .and_then(|t| t.get(n))
                    .and_then(|t| t.get("kind"))
                    .and_then(Value::as_str)
                    != Some("none")
            })
        })
        .unwrap_or(false);
    if items.is_empty() && topographic {
        diags.push(layers.diagnostic(
            "grid.lambda",
            "topographic runs need at least one lambda",
            false,
        ));
    }
}

fn check_excludes(
    merged: &Value,
    layers: &Layers,
    datasets: &BTreeSet<String>,
    topographies: &BTreeSet<String>,
    models: &BTreeSet<String>,
    diags: &mut Diagnostics,
) {
    let Some(rules) = at(merged, "grid.exclude").and_then(Value::as_array) else {
        return;
    };
    for (i, rule) in rules.iter().enumerate() {
        let base = item_path("grid.exclude", i);
        let Some(obj) = rule.as_object() else {
            continue;
        };
        if obj.is_empty() {
            diags.push(layers.diagnostic(&base, "an empty rule would exclude every run", false));
        }
        if let Some(l) = obj.get("lambda").and_then(Value::as_f64)
            && let Err(e) = Lambda::new(l)
        {
            diags.push(layers.diagnostic(&child_path(&base, "lambda"), e.to_string(), false));
        }
        for (field, defined, what) in [
            ("dataset", datasets, "data set"),
            ("topography", topographies, "topography"),
            ("model", models, "model"),
        ] {
            if let Some(name) = obj.get(field).and_then(Value::as_str)
                && !defined.contains(name)
            {
                diags.push(layers.diagnostic(
                    &child_path(&base, field),
                    format!("unknown {what} `{name}`"),
                    false,
                ));
            }
        }
    }
}

fn check_pruning(merged: &Value, layers: &Layers, diags: &mut Diagnostics) {
    let Some(list) = at(merged, "pruning.proportions").and_then(Value::as_array) else {
        return;
    };
    for (i, p) in list.iter().enumerate() {
        if let Some(x) = p.as_f64()
            && !(0.0..=1.0).contains(&x)
        {
            let path = item_path("pruning.proportions", i);
            diags.push(layers.diagnostic(
                &path,
                format!("a proportion is between 0 and 1, found `{x}`"),
                false,
            ));
        }
    }
}

fn check_report(
    merged: &Value,
    layers: &Layers,
    datasets: &BTreeSet<String>,
    diags: &mut Diagnostics,
) {
    let Some(tables) = at(merged, "report.tables").and_then(Value::as_array) else {
        return;
    };
    for (t, table) in tables.iter().enumerate() {
        let base = item_path("report.tables", t);
        if let Some(name) = table.get("name").and_then(Value::as_str)
            && (name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            diags.push(layers.diagnostic(
                &child_path(&base, "name"),
                "a table name is a file name: letters, digits, `-`, `_`",
                false,
            ));
        }
        let Some(list) = table.get("datasets").and_then(Value::as_array) else {
            continue;
        };
        for (i, d) in list.iter().enumerate() {
            if let Some(name) = d.as_str()
                && !datasets.contains(name)
            {
                let path = item_path(&child_path(&base, "datasets"), i);
                diags.push(layers.diagnostic(&path, format!("unknown data set `{name}`"), false));
            }
        }
    }
}
