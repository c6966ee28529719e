//! What a run is, as far as the report needs it: the kinds of its data set and model and
//! its topography, from its summary's typed identity (else, for runs of older versions,
//! from their `run.yaml`: see [`super::legacy`]), then from the experiment file.

use std::collections::BTreeMap;

use crate::config::{DatasetKind, Experiment, ModelKind, ReportSpec, Topography, resolve};
use crate::results::{RunAxes, RunIdentity};

/// The kinds behind a run's axes; `None` where they cannot be told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunKinds {
    pub dataset: Option<DatasetKind>,
    pub model: Option<ModelKind>,
    pub topography: Option<Topography>,
}

impl RunKinds {
    /// What a summary's identity says, all of it known.
    pub fn of(identity: &RunIdentity) -> RunKinds {
        RunKinds {
            dataset: Some(identity.dataset.kind),
            model: Some(identity.model.kind),
            topography: Some(identity.topography.clone()),
        }
    }

    /// Fills what the run's records did not say from the experiment's definitions.
    pub fn or_experiment(mut self, info: &ExperimentInfo, axes: &RunAxes) -> RunKinds {
        self.dataset = self
            .dataset
            .or_else(|| info.datasets.get(&axes.dataset).copied());
        self.model = self
            .model
            .or_else(|| info.models.get(&axes.model).copied())
            .or_else(|| ModelKind::from_name(&axes.model));
        self.topography = self
            .topography
            .or_else(|| info.topographies.get(&axes.topography).cloned());
        self
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
    /// The report's view of an experiment, and a message for each name that does not
    /// resolve (its runs are then told from their own records only).
    pub fn from_experiment(e: Experiment) -> (ExperimentInfo, Vec<String>) {
        let (resolved, problems) = match resolve(e) {
            Ok(r) => (r, Vec::new()),
            Err(u) => {
                let problems = u
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect();
                (u.partial, problems)
            }
        };
        let e = &resolved.experiment;
        let info = ExperimentInfo {
            name: Some(e.name.clone()),
            description: e.description.clone(),
            report: e.report.clone(),
            datasets_order: e.grid.dataset.clone(),
            models_order: e.grid.model.clone(),
            topographies_order: e.grid.topography.clone(),
            seeds: Some(e.grid.seed.len()),
            datasets: resolved
                .datasets
                .iter()
                .map(|d| (d.name.clone(), d.value.kind))
                .collect(),
            models: resolved
                .models
                .iter()
                .map(|m| (m.name.clone(), m.value.kind))
                .collect(),
            topographies: resolved
                .topographies
                .into_iter()
                .map(|t| (t.name, t.value))
                .collect(),
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
        runs: impl Iterator<Item = (&'a RunAxes, &'a RunKinds)>,
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
