//! Which topographic loss a topography trains with: the paper's (the default), TDANN's
//! spatial correlation loss or TopoLoss's weight smoothness. The YAML form names one
//! (`loss: tdann`) or gives its parameters (`loss: { kind: tdann, neighbourhood: 32 }`);
//! the checked form has every parameter set and valid.

use std::hash::{Hash, Hasher};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A loss by name, with its default parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    /// The paper's: cosine similarity of channel maps against `1 / (d + 1)`, per sample.
    Poli2023,
    /// TDANN's (Margalit et al. 2024): the correlation of response correlations with `1 / (d + 1)`.
    Tdann,
    /// TopoLoss's (Deb et al. 2025): the weights' cosine with their blurred sheet.
    Topoloss,
}

/// A loss with its parameters, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LossForm {
    Poli2023,
    Tdann {
        /// Channels per neighbourhood drawn each step (the `k` nearest a random
        /// centre); every channel when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 3))]
        neighbourhood: Option<u32>,
        /// Neighbourhoods per step, averaged (TDANN's `neighborhoods_per_batch`).
        #[serde(default = "one")]
        #[schemars(range(min = 1))]
        neighbourhoods: u32,
    },
    Topoloss {
        /// How much the sheet is shrunk before it is grown back (TopoLoss's factor).
        #[serde(default = "default_factor")]
        #[schemars(range(min = 1.0))]
        factor: f64,
    },
}

fn one() -> u32 {
    1
}

fn default_factor() -> f64 {
    2.0
}

/// `loss:` in a topography: a name or a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LossSpec {
    Name(LossName),
    Form(LossForm),
}

/// A shrink factor: finite and at least 1; compared and hashed by value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "f64", try_from = "f64")]
pub struct Factor(f64);

impl Factor {
    pub fn new(value: f64) -> Result<Factor, LossProblem> {
        if value.is_finite() && value >= 1.0 {
            Ok(Factor(value))
        } else {
            Err(LossProblem::Factor(value))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Factor {
    type Error = LossProblem;
    fn try_from(value: f64) -> Result<Factor, LossProblem> {
        Factor::new(value)
    }
}

impl From<Factor> for f64 {
    fn from(f: Factor) -> f64 {
        f.0
    }
}

// Finite by construction: equal values have equal bits (no NaN; 0 is excluded).
impl Eq for Factor {}

impl Hash for Factor {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// A checked loss, as a run records it (`run.yaml`, the run id's hash).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LossMethod {
    #[default]
    Poli2023,
    Tdann {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        neighbourhood: Option<u32>,
        neighbourhoods: u32,
    },
    Topoloss {
        factor: Factor,
    },
}

impl LossMethod {
    /// The paper's loss, which run ids written before losses could be chosen imply.
    pub fn is_paper(&self) -> bool {
        *self == LossMethod::Poli2023
    }

    /// As tables and figures name it.
    pub fn label(&self) -> &'static str {
        match self {
            LossMethod::Poli2023 => "poli2023",
            LossMethod::Tdann { .. } => "tdann",
            LossMethod::Topoloss { .. } => "topoloss",
        }
    }
}

/// Why a loss spec does not resolve; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossProblem {
    #[error("`factor` must be a finite number of at least 1, found {0}")]
    Factor(f64),
    #[error("`neighbourhood` must be at least 3 channels (2 pairs to correlate), found {0}")]
    Neighbourhood(u32),
    #[error("`neighbourhoods` must be at least 1")]
    NoNeighbourhoods,
}

impl LossSpec {
    /// Checks the parameters and returns the run's form.
    pub(super) fn method(&self) -> Result<LossMethod, LossProblem> {
        let form = match self {
            LossSpec::Name(LossName::Poli2023) => LossForm::Poli2023,
            LossSpec::Name(LossName::Tdann) => LossForm::Tdann {
                neighbourhood: None,
                neighbourhoods: one(),
            },
            LossSpec::Name(LossName::Topoloss) => LossForm::Topoloss {
                factor: default_factor(),
            },
            LossSpec::Form(f) => f.clone(),
        };
        match form {
            LossForm::Poli2023 => Ok(LossMethod::Poli2023),
            LossForm::Tdann {
                neighbourhood,
                neighbourhoods,
            } => {
                if let Some(k) = neighbourhood
                    && k < 3
                {
                    return Err(LossProblem::Neighbourhood(k));
                }
                if neighbourhoods == 0 {
                    return Err(LossProblem::NoNeighbourhoods);
                }
                Ok(LossMethod::Tdann {
                    neighbourhood,
                    neighbourhoods,
                })
            }
            LossForm::Topoloss { factor } => Ok(LossMethod::Topoloss {
                factor: Factor::new(factor)?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_forms_resolve_with_defaults_and_checks() {
        let yaml = |s: &str| serde_json::from_str::<LossSpec>(s).unwrap().method();
        assert_eq!(yaml("\"poli2023\""), Ok(LossMethod::Poli2023));
        assert_eq!(
            yaml("\"tdann\""),
            Ok(LossMethod::Tdann {
                neighbourhood: None,
                neighbourhoods: 1
            })
        );
        assert_eq!(
            yaml(r#"{"kind":"topoloss","factor":3}"#),
            Ok(LossMethod::Topoloss {
                factor: Factor::new(3.0).unwrap()
            })
        );
        assert_eq!(
            yaml(r#"{"kind":"tdann","neighbourhood":2}"#),
            Err(LossProblem::Neighbourhood(2))
        );
        assert_eq!(
            yaml(r#"{"kind":"topoloss","factor":0.5}"#),
            Err(LossProblem::Factor(0.5))
        );
        assert!(serde_json::from_str::<LossSpec>(r#"{"kind":"tdann","radius":2}"#).is_err());
    }

    #[test]
    fn a_checked_loss_reads_back_as_it_writes() {
        for m in [
            LossMethod::Poli2023,
            LossMethod::Tdann {
                neighbourhood: Some(16),
                neighbourhoods: 2,
            },
            LossMethod::Topoloss {
                factor: Factor::new(2.5).unwrap(),
            },
        ] {
            let json = serde_json::to_value(m).unwrap();
            assert_eq!(serde_json::from_value::<LossMethod>(json).unwrap(), m);
        }
    }
}
