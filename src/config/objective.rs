//! What a run minimises: the cross-entropy alone (the baseline), or with a topographic
//! loss on a placement weighted by a lambda. A baseline with a lambda, or a placement
//! without one, cannot be built.

use serde::{Deserialize, Serialize};

use super::{Lambda, LambdaSchedule, LayerWeights, LossMethod, Placement, TapPoint, Topography};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "ObjectiveForm", try_from = "ObjectiveForm")]
pub enum Objective {
    Baseline,
    Topographic {
        placement: Placement,
        loss: LossMethod,
        layer_weights: LayerWeights,
        tap: TapPoint,
        lambda: Lambda,
        lambda_schedule: LambdaSchedule,
    },
}

/// How `run.yaml` writes it: the `topography` and `lambda` keys (`null` for the baseline).
#[derive(Serialize, Deserialize)]
struct ObjectiveForm {
    topography: Topography,
    lambda: Option<Lambda>,
}

/// A topography and a lambda that do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectiveError {
    #[error("the baseline (`kind: none`) takes no lambda, found {0}")]
    BaselineLambda(Lambda),
    #[error("a topographic run needs a lambda")]
    MissingLambda,
}

impl Objective {
    pub fn new(topography: &Topography, lambda: Option<Lambda>) -> Result<Self, ObjectiveError> {
        match (topography, lambda) {
            (Topography::Baseline, None) => Ok(Objective::Baseline),
            (Topography::Baseline, Some(l)) => Err(ObjectiveError::BaselineLambda(l)),
            (Topography::Placed(p, loss, weights, tap, schedule), Some(lambda)) => {
                Ok(Objective::Topographic {
                    placement: p.clone(),
                    loss: *loss,
                    layer_weights: weights.clone(),
                    tap: *tap,
                    lambda,
                    lambda_schedule: *schedule,
                })
            }
            (Topography::Placed(..), None) => Err(ObjectiveError::MissingLambda),
        }
    }

    pub fn topography(&self) -> Topography {
        match self {
            Objective::Baseline => Topography::Baseline,
            Objective::Topographic {
                placement,
                loss,
                layer_weights,
                tap,
                lambda_schedule,
                ..
            } => Topography::Placed(
                placement.clone(),
                *loss,
                layer_weights.clone(),
                *tap,
                *lambda_schedule,
            ),
        }
    }

    pub fn lambda(&self) -> Option<Lambda> {
        match self {
            Objective::Baseline => None,
            Objective::Topographic { lambda, .. } => Some(*lambda),
        }
    }

    pub fn placement(&self) -> Option<&Placement> {
        match self {
            Objective::Baseline => None,
            Objective::Topographic { placement, .. } => Some(placement),
        }
    }

    /// How much each tapped layer's loss counts; `None` for the baseline.
    pub fn layer_weights(&self) -> Option<&LayerWeights> {
        match self {
            Objective::Baseline => None,
            Objective::Topographic { layer_weights, .. } => Some(layer_weights),
        }
    }

    /// Where the tapped convs' responses are read; the baseline's at the conv.
    pub fn tap(&self) -> TapPoint {
        match self {
            Objective::Baseline => TapPoint::Conv,
            Objective::Topographic { tap, .. } => *tap,
        }
    }

    /// The weight of the topographic term at a step `elapsed` epochs into training (the
    /// lambda times its schedule's share); `None` for the baseline.
    pub fn lambda_at(&self, elapsed: f64) -> Option<f64> {
        match self {
            Objective::Baseline => None,
            Objective::Topographic {
                lambda,
                lambda_schedule,
                ..
            } => Some(lambda_schedule.weight(*lambda, elapsed)),
        }
    }

    /// Whether lambda changes during training.
    pub fn scheduled(&self) -> bool {
        match self {
            Objective::Baseline => false,
            Objective::Topographic {
                lambda_schedule, ..
            } => !lambda_schedule.is_constant(),
        }
    }

    /// The topographic loss; `None` for the baseline.
    pub fn loss(&self) -> Option<LossMethod> {
        match self {
            Objective::Baseline => None,
            Objective::Topographic { loss, .. } => Some(*loss),
        }
    }

    /// The objective's value from its terms: `ce`, or `ce + lambda * topo`. A baseline
    /// has no topographic term; one measured anyway does not count.
    pub fn total(&self, ce: f64, topo: Option<f64>) -> f64 {
        match (self, topo) {
            (Objective::Topographic { lambda, .. }, Some(t)) => lambda.weigh(ce, t),
            _ => ce,
        }
    }
}

impl From<Objective> for ObjectiveForm {
    fn from(o: Objective) -> Self {
        ObjectiveForm {
            topography: o.topography(),
            lambda: o.lambda(),
        }
    }
}

impl TryFrom<ObjectiveForm> for Objective {
    type Error = ObjectiveError;
    fn try_from(f: ObjectiveForm) -> Result<Self, ObjectiveError> {
        Objective::new(&f.topography, f.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topography::{Layout, Norm};

    fn grid() -> Topography {
        Topography::Placed(
            Placement::Builtin {
                layout: Layout::Grid,
                dimension: 2,
                norm: Norm::Euclidean,
            },
            LossMethod::Poli2023,
            LayerWeights::default(),
            TapPoint::Conv,
            LambdaSchedule::Constant,
        )
    }

    #[test]
    fn a_lambda_goes_with_a_placement_only() {
        let one = Lambda::new(1.0).unwrap();
        assert_eq!(
            Objective::new(&Topography::Baseline, None),
            Ok(Objective::Baseline)
        );
        assert!(Objective::new(&Topography::Baseline, Some(one)).is_err());
        assert!(Objective::new(&grid(), None).is_err());
        let o = Objective::new(&grid(), Some(one)).unwrap();
        assert_eq!(o.topography(), grid());
        assert_eq!(o.total(2.0, Some(0.5)), 2.5);
        assert_eq!(Objective::Baseline.total(2.0, Some(0.5)), 2.0);
    }

    #[test]
    fn it_reads_back_as_run_yaml_writes_it() {
        let o = Objective::new(&grid(), Some(Lambda::new(0.5).unwrap())).unwrap();
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "topography": { "kind": "builtin", "layout": "grid", "dimension": 2, "norm": "euclidean" },
                "lambda": 0.5
            })
        );
        assert_eq!(serde_json::from_value::<Objective>(json).unwrap(), o);
        let bad = serde_json::json!({ "topography": { "kind": "none" }, "lambda": 1.0 });
        let err = serde_json::from_value::<Objective>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("takes no lambda"), "{err}");
    }
}
