//! How the topographic weight changes over training: constant (the paper), or ramped up
//! from 0 to the run's lambda over its first epochs, linearly or along a half cosine (as
//! TopoLoss and All-TNN schedule theirs). Applied at every step.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The schedule of one topography's lambda.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LambdaSchedule {
    /// Lambda at every step.
    #[default]
    Constant,
    /// From 0 at the first step to lambda after `epochs` epochs, linearly, then lambda.
    LinearWarmup {
        #[schemars(range(min = 1))]
        epochs: u32,
    },
    /// From 0 at the first step to lambda after `epochs` epochs along a half cosine
    /// (`(1 - cos(pi t)) / 2`), then lambda.
    Cosine {
        #[schemars(range(min = 1))]
        epochs: u32,
    },
}

impl LambdaSchedule {
    /// The share of lambda applied after `elapsed` epochs of training (fractional: the
    /// step's place in the run), in `[0, 1]`.
    pub fn factor(self, elapsed: f64) -> f64 {
        let progress = |epochs: u32| (elapsed / f64::from(epochs.max(1))).clamp(0.0, 1.0);
        match self {
            LambdaSchedule::Constant => 1.0,
            LambdaSchedule::LinearWarmup { epochs } => progress(epochs),
            LambdaSchedule::Cosine { epochs } => {
                (1.0 - (std::f64::consts::PI * progress(epochs)).cos()) / 2.0
            }
        }
    }

    /// The weight `lambda` takes under this schedule after `elapsed` epochs.
    pub fn weight(self, lambda: super::Lambda, elapsed: f64) -> f64 {
        lambda.get() * self.factor(elapsed)
    }

    pub fn is_constant(self) -> bool {
        self == LambdaSchedule::Constant
    }

    /// Its epochs, where it has any (for checks against the run's).
    pub fn epochs(self) -> Option<u32> {
        match self {
            LambdaSchedule::Constant => None,
            LambdaSchedule::LinearWarmup { epochs } | LambdaSchedule::Cosine { epochs } => {
                Some(epochs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_start_at_zero_reach_lambda_after_their_epochs_and_stay() {
        let linear = LambdaSchedule::LinearWarmup { epochs: 4 };
        let cosine = LambdaSchedule::Cosine { epochs: 4 };
        assert_eq!(linear.factor(0.0), 0.0);
        assert_eq!(cosine.factor(0.0), 0.0);
        assert!((linear.factor(1.0) - 0.25).abs() < 1e-15);
        assert!((cosine.factor(2.0) - 0.5).abs() < 1e-15);
        // The half cosine starts slower than the line and catches it at the middle.
        assert!(cosine.factor(1.0) < linear.factor(1.0));
        for s in [linear, cosine] {
            assert_eq!(s.factor(4.0), 1.0);
            assert_eq!(s.factor(9.5), 1.0);
        }
        assert_eq!(LambdaSchedule::Constant.factor(0.0), 1.0);
    }
}
