//! Expanding the grid: the cross product of its axes, lambda collapsed for the
//! baseline, exclusion rules applied.

use crate::config::{ExcludeRule, Objective, Resolved, Topography, safe_file_name};
use crate::results::{AxisNames, RunAxes};

use super::RunConfig;
use super::id::IdentityParts;

/// The runs of an experiment, in grid order (data set, model, topography, lambda, seed).
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: String,
    pub runs: Vec<RunConfig>,
}

/// A run's identity could not be serialised, so it has no id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run identity of `{dataset}` / `{model}` / `{topography}`: {message}")]
pub struct PlanError {
    dataset: String,
    model: String,
    topography: String,
    /// serde_json's message (its error is neither `Clone` nor `Eq`).
    message: String,
}

/// Expands a resolved experiment into its runs. Pure: no disk, no device.
pub fn plan(resolved: &Resolved) -> Result<Plan, PlanError> {
    let experiment = &resolved.experiment;
    let grid = &experiment.grid;
    let mut runs = Vec::new();
    for dataset in &resolved.datasets {
        let training = resolved.training_for(&dataset.value);
        for model in &resolved.models {
            for topography in &resolved.topographies {
                let identity =
                    IdentityParts::new(&dataset.value, &model.value, &topography.value, &training)
                        .map_err(|e| PlanError {
                            dataset: dataset.name.clone(),
                            model: model.name.clone(),
                            topography: topography.name.clone(),
                            message: e.to_string(),
                        })?;
                let names = AxisNames {
                    dataset: dataset.name.clone(),
                    model: model.name.clone(),
                    topography: topography.name.clone(),
                };
                // The baseline's lambda collapses; a placement takes every lambda.
                let objectives: Vec<Objective> = match &topography.value {
                    Topography::Baseline => vec![Objective::Baseline],
                    Topography::Placed(placement, loss, weights, tap, schedule) => grid
                        .lambda
                        .iter()
                        .map(|&lambda| Objective::Topographic {
                            placement: placement.clone(),
                            loss: *loss,
                            layer_weights: weights.clone(),
                            tap: *tap,
                            lambda,
                            lambda_schedule: *schedule,
                        })
                        .collect(),
                };
                for objective in objectives {
                    let lambda = objective.lambda();
                    for &seed in &grid.seed {
                        let axes = RunAxes::new(&names, lambda, seed);
                        if grid.exclude.iter().any(|rule| excludes(rule, &axes)) {
                            continue;
                        }
                        let id = format!("{}-{}", slug(&axes), identity.hash(lambda, seed));
                        runs.push(RunConfig {
                            id,
                            experiment: experiment.name.clone(),
                            names: names.clone(),
                            dataset: dataset.value.clone(),
                            model: model.value.clone(),
                            objective: objective.clone(),
                            seed,
                            training: training.clone(),
                            pruning: experiment.pruning.clone(),
                            analyses: experiment.analyses.clone(),
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
    // The file-name rule, and no `.` either: `_` separates the slug's parts.
    let clean = |s: &str| safe_file_name(s).replace('.', "_");
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
