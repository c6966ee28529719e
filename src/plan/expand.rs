//! Expanding the grid: the cross product of its axes, lambda collapsed for the
//! baseline, exclusion rules applied.

use std::collections::BTreeMap;

use crate::config::{ExcludeRule, Experiment, ModelKind, ModelSpec, Topography, TopographySpec};
use crate::results::RunAxes;

use super::id::IdentityParts;
use super::{Objective, RunConfig};

/// The runs of an experiment, in grid order (data set, model, topography, lambda, seed).
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: String,
    pub runs: Vec<RunConfig>,
}

/// A grid that names something undefined (validation reports these first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("grid names an undefined {what} `{name}`")]
    Undefined { what: &'static str, name: String },
    #[error("topography `{name}`: {message}")]
    Topography { name: String, message: String },
    /// A run's identity could not be serialised, so it has no id.
    #[error("run identity of `{dataset}` / `{model}` / `{topography}`: {message}")]
    Identity {
        dataset: String,
        model: String,
        topography: String,
        /// serde_json's message (its error is neither `Clone` nor `Eq`).
        message: String,
    },
}

/// Expands `experiment` into its runs. Pure: no disk, no device.
pub fn plan(experiment: &Experiment) -> Result<Plan, PlanError> {
    let grid = &experiment.grid;
    let mut topographies: BTreeMap<&str, Topography> = BTreeMap::new();
    for name in &grid.topography {
        let spec: &TopographySpec =
            experiment
                .topographies
                .get(name)
                .ok_or_else(|| PlanError::Undefined {
                    what: "topography",
                    name: name.clone(),
                })?;
        let resolved = spec.resolve().map_err(|e| PlanError::Topography {
            name: name.clone(),
            message: e.to_string(),
        })?;
        topographies.insert(name, resolved);
    }
    let mut runs = Vec::new();
    for dataset_name in &grid.dataset {
        let dataset =
            experiment
                .datasets
                .get(dataset_name)
                .ok_or_else(|| PlanError::Undefined {
                    what: "data set",
                    name: dataset_name.clone(),
                })?;
        let dataset = &dataset.resolved();
        let mut training = experiment.training.clone();
        if let Some(epochs) = dataset.epochs {
            training.epochs = epochs;
        }
        for model_name in &grid.model {
            let model = resolve_model(experiment, model_name)?;
            for topography_name in &grid.topography {
                let Some(topography) = topographies.get(topography_name.as_str()) else {
                    continue;
                };
                let identity =
                    IdentityParts::new(dataset, &model, topography, &training).map_err(|e| {
                        PlanError::Identity {
                            dataset: dataset_name.clone(),
                            model: model_name.clone(),
                            topography: topography_name.clone(),
                            message: e.to_string(),
                        }
                    })?;
                // The baseline's lambda collapses; a placement takes every lambda.
                let objectives: Vec<Objective> = match topography {
                    Topography::Baseline => vec![Objective::Baseline],
                    Topography::Placed(placement, loss, weights) => grid
                        .lambda
                        .iter()
                        .map(|&lambda| Objective::Topographic {
                            placement: placement.clone(),
                            loss: *loss,
                            layer_weights: weights.clone(),
                            lambda,
                        })
                        .collect(),
                };
                for objective in objectives {
                    let lambda = objective.lambda();
                    for &seed in &grid.seed {
                        let axes = RunAxes {
                            dataset: dataset_name.clone(),
                            model: model_name.clone(),
                            topography: topography_name.clone(),
                            lambda,
                            seed,
                        };
                        if grid.exclude.iter().any(|rule| excludes(rule, &axes)) {
                            continue;
                        }
                        let hash = identity.hash(lambda, seed);
                        runs.push(RunConfig {
                            id: format!("{}-{hash}", slug(&axes)),
                            experiment: experiment.name.clone(),
                            axes,
                            dataset: dataset.clone(),
                            model: model.clone(),
                            objective: objective.clone(),
                            seed,
                            training: training.clone(),
                            pruning: experiment.pruning.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(Plan {
        experiment: experiment.name.clone(),
        runs,
    })
}

fn resolve_model(experiment: &Experiment, name: &str) -> Result<ModelSpec, PlanError> {
    if let Some(spec) = experiment.models.get(name) {
        return Ok(spec.clone());
    }
    ModelKind::from_name(name)
        .map(ModelSpec::of_kind)
        .ok_or_else(|| PlanError::Undefined {
            what: "model",
            name: name.to_string(),
        })
}

/// A rule excludes a run when every field it sets matches.
fn excludes(rule: &ExcludeRule, axes: &RunAxes) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&rule.dataset, &axes.dataset)
        && eq(&rule.model, &axes.model)
        && eq(&rule.topography, &axes.topography)
        && rule.lambda.is_none_or(|l| axes.lambda == Some(l))
        && rule.seed.is_none_or(|s| s == axes.seed)
}

/// `cifar10_resnet18_grid2d_l1e-3_s0`: readable in `ls`, safe as a folder name.
fn slug(axes: &RunAxes) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    let lambda = axes.lambda.map(|l| format!("_l{l}")).unwrap_or_default();
    format!(
        "{}_{}_{}{}_s{}",
        clean(&axes.dataset),
        clean(&axes.model),
        clean(&axes.topography),
        lambda,
        axes.seed
    )
}
