//! What a run is, beyond its axes' names: the kinds of its data set and model and its
//! topography, read defensively from `run.yaml`, else from the experiment file.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{DatasetKind, Experiment, ModelKind, ReportSpec, Topography, TopographySpec};
use crate::results::RunAxes;

/// The kinds behind a run's axes; `None` where they cannot be told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunIdentity {
    pub dataset: Option<DatasetKind>,
    pub model: Option<ModelKind>,
    pub topography: Option<Topography>,
}

impl RunIdentity {
    /// Reads `dataset.kind`, `model.kind` and `topography` from a parsed `run.yaml`. A
    /// field that is absent is unknown; one in another shape is unknown too, and the
    /// messages returned beside say why.
    pub fn from_run_yaml(doc: &Value) -> (RunIdentity, Vec<String>) {
        let mut problems = Vec::new();
        let kind = |key: &str| doc.get(key).and_then(|v| v.get("kind"));
        let identity = RunIdentity {
            dataset: read_field("dataset.kind", kind("dataset"), &mut problems),
            model: read_field("model.kind", kind("model"), &mut problems),
            topography: doc
                .get("topography")
                .and_then(|t| match read_topography(t) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(format!("`topography`: {e}"));
                        None
                    }
                }),
        };
        (identity, problems)
    }

    /// Fills what `run.yaml` did not say from the experiment's definitions of the names.
    pub fn or_experiment(
        mut self,
        info: &ExperimentInfo,
        dataset: &str,
        model: &str,
        topography: &str,
    ) -> RunIdentity {
        self.dataset = self.dataset.or_else(|| info.datasets.get(dataset).copied());
        self.model = self
            .model
            .or_else(|| info.models.get(model).copied())
            .or_else(|| ModelKind::from_name(model));
        self.topography = self
            .topography
            .or_else(|| info.topographies.get(topography).cloned());
        self
    }
}

fn read_field<T: DeserializeOwned>(
    key: &str,
    value: Option<&Value>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match serde_json::from_value::<T>(value?.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(format!("`{key}`: {e}"));
            None
        }
    }
}

/// The resolved form `run.yaml` writes, or the form as written in an experiment (which
/// runs of older versions wrote).
fn read_topography(value: &Value) -> Result<Topography, String> {
    match serde_json::from_value::<Topography>(value.clone()) {
        Ok(t) => Ok(t),
        Err(resolved) => match serde_json::from_value::<TopographySpec>(value.clone()) {
            Ok(spec) => spec.resolve().map_err(|e| e.to_string()),
            // Neither form: the resolved form's message is the one to show.
            Err(_) => Err(resolved.to_string()),
        },
    }
}

/// What the report takes from `experiment.resolved.yaml` (all empty without it).
#[derive(Debug, Clone, Default)]
pub struct ExperimentInfo {
    pub name: Option<String>,
    pub description: Option<String>,
    pub report: ReportSpec,
    /// Axis values in the grid's order.
    pub datasets_order: Vec<String>,
    pub models_order: Vec<String>,
    pub topographies_order: Vec<String>,
    /// Seeds per run group, when known.
    pub seeds: Option<usize>,
    pub datasets: BTreeMap<String, DatasetKind>,
    pub models: BTreeMap<String, ModelKind>,
    pub topographies: BTreeMap<String, Topography>,
}

impl ExperimentInfo {
    /// The report's view of an experiment, and a message for each topography that does
    /// not resolve (it is then told from the runs' own files only).
    pub fn from_experiment(e: &Experiment) -> (ExperimentInfo, Vec<String>) {
        let mut problems = Vec::new();
        let mut topographies = BTreeMap::new();
        for (name, spec) in &e.topographies {
            match spec.resolve() {
                Ok(t) => {
                    topographies.insert(name.clone(), t);
                }
                Err(err) => problems.push(format!("topography `{name}`: {err}")),
            }
        }
        let models = e
            .grid
            .model
            .iter()
            .filter_map(|name| {
                let kind = e
                    .models
                    .get(name)
                    .map(|m| m.kind)
                    .or_else(|| ModelKind::from_name(name))?;
                Some((name.clone(), kind))
            })
            .collect();
        let info = ExperimentInfo {
            name: Some(e.name.clone()),
            description: e.description.clone(),
            report: e.report.clone(),
            datasets_order: e.grid.dataset.clone(),
            models_order: e.grid.model.clone(),
            topographies_order: e.grid.topography.clone(),
            seeds: Some(e.grid.seed.len()),
            datasets: e
                .datasets
                .iter()
                .map(|(n, d)| (n.clone(), d.kind))
                .collect(),
            models,
            topographies,
        };
        (info, problems)
    }
}

/// What each name used in the axes is: from finished runs first, then the experiment.
#[derive(Debug, Clone, Default)]
pub struct Kinds {
    pub datasets: BTreeMap<String, DatasetKind>,
    pub models: BTreeMap<String, ModelKind>,
    pub topographies: BTreeMap<String, Topography>,
}

impl Kinds {
    pub fn gather<'a>(
        runs: impl Iterator<Item = (&'a RunAxes, &'a RunIdentity)>,
        info: &ExperimentInfo,
    ) -> Kinds {
        let mut kinds = Kinds::default();
        for (axes, id) in runs {
            if let Some(d) = id.dataset {
                kinds.datasets.entry(axes.dataset.clone()).or_insert(d);
            }
            if let Some(m) = id.model {
                kinds.models.entry(axes.model.clone()).or_insert(m);
            }
            if let Some(t) = &id.topography {
                kinds
                    .topographies
                    .entry(axes.topography.clone())
                    .or_insert_with(|| t.clone());
            }
        }
        for (n, d) in &info.datasets {
            kinds.datasets.entry(n.clone()).or_insert(*d);
        }
        for (n, m) in &info.models {
            kinds.models.entry(n.clone()).or_insert(*m);
        }
        for (n, t) in &info.topographies {
            kinds
                .topographies
                .entry(n.clone())
                .or_insert_with(|| t.clone());
        }
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Placement;
    use crate::topography::{Layout, Norm};

    fn parse(text: &str) -> RunIdentity {
        parse_with_problems(text).0
    }

    fn parse_with_problems(text: &str) -> (RunIdentity, Vec<String>) {
        RunIdentity::from_run_yaml(&crate::config::from_yaml(text).unwrap())
    }

    #[test]
    fn reads_the_resolved_form() {
        let id = parse(
            "dataset: { kind: cifar100, root: x }\nmodel: { kind: vgg16_bn, width: 0.5 }\n\
             topography: { kind: builtin, layout: sphere, dimension: 3, norm: euclidean }\n",
        );
        assert_eq!(id.dataset, Some(DatasetKind::Cifar100));
        assert_eq!(id.model, Some(ModelKind::Vgg16Bn));
        let sphere = Topography::Placed(
            Placement::Builtin {
                layout: Layout::Sphere,
                dimension: 3,
                norm: Norm::Euclidean,
            },
            crate::config::LossMethod::Poli2023,
            Default::default(),
        );
        assert_eq!(id.topography, Some(sphere));
    }

    #[test]
    fn reads_the_written_form_and_tolerates_garbage() {
        let (id, problems) = parse_with_problems(
            "dataset: cifar10\nmodel: { kind: 7 }\ntopography: { layout: grid, dimension: 2 }\n",
        );
        // A data set without a kind is unknown; a model kind that is not one says so.
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("`model.kind`: "), "{problems:?}");
        assert_eq!(id.dataset, None);
        assert_eq!(id.model, None);
        let grid = Topography::Placed(
            Placement::Builtin {
                layout: Layout::Grid,
                dimension: 2,
                norm: Norm::Euclidean,
            },
            crate::config::LossMethod::Poli2023,
            Default::default(),
        );
        assert_eq!(id.topography, Some(grid));
        assert_eq!(
            parse_with_problems("[1, 2]"),
            (RunIdentity::default(), vec![])
        );
        let (_, problems) = parse_with_problems("topography: { kind: torus }");
        assert!(problems[0].starts_with("`topography`: "), "{problems:?}");
        assert_eq!(
            parse("topography: { kind: none }").topography,
            Some(Topography::Baseline)
        );
    }
}
