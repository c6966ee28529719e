//! Which topographic loss a topography trains with: the paper's (the default), TDANN's
//! spatial correlation loss or TopoLoss's weight smoothness. The YAML form names one
//! (`loss: tdann`) or gives its parameters (`loss: { kind: tdann, window: 0.3 }`); the
//! checked form has every parameter set and valid, and records itself in the form runs
//! planned before the newer parameters wrote, so their ids stay.

use std::hash::{Hash, Hasher};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::topography::Neighbourhood;

/// TDANN's window side when neither a window nor a neighbourhood is given: half the
/// layout's extent on each axis.
const DEFAULT_WINDOW: f64 = 0.5;
/// TDANN's smallest neighbourhood (`collapse_and_trim_neighborhoods`' `min_nb_size`).
const DEFAULT_MIN_UNITS: u32 = 25;

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
        /// TDANN's neighbourhoods: axis-aligned square windows of this side, in layout
        /// units (the layouts span 0 to 1), trimmed to a common size. The default (0.5)
        /// when neither `window` nor `neighbourhood` is given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<f64>,
        /// With `window`: the fewest channels a window may keep (TDANN's 25); a layer
        /// with no window that large is one neighbourhood of all its channels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 3))]
        min_units: Option<u32>,
        /// Instead of windows: the `k` channels nearest a centre channel drawn each step,
        /// or `all` for the whole layer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        neighbourhood: Option<NeighbourhoodSize>,
        /// Neighbourhoods per step, averaged (TDANN's `neighborhoods_per_batch`).
        #[serde(default = "one")]
        #[schemars(range(min = 1))]
        neighbourhoods: u32,
    },
    /// TopoLoss averages its layers' losses where `topo` adds them by default: set
    /// `training.topographic.reduction: mean` to use TopoNets' lambdas as they are.
    Topoloss {
        /// How much the sheet is shrunk before it is grown back (TopoLoss's factor).
        #[serde(default = "default_factor")]
        #[schemars(range(min = 1.0))]
        factor: f64,
    },
}

/// `neighbourhood:` as written: a channel count or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NeighbourhoodSize {
    /// The `k` nearest channels (at least 3).
    Count(u32),
    /// Every channel of the layer.
    All(AllChannels),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllChannels {
    All,
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
#[serde(into = "LossRecord", try_from = "LossRecord")]
pub enum LossMethod {
    #[default]
    Poli2023,
    Tdann {
        neighbourhood: Neighbourhood,
        neighbourhoods: u32,
    },
    Topoloss {
        factor: Factor,
    },
}

/// How `run.yaml` writes a loss: TDANN's whole layer with neither `neighbourhood` nor
/// `window` (as runs planned before windows wrote it), the nearest `k` as
/// `neighbourhood: k`, windows as `window` and `min_units`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
enum LossRecord {
    Poli2023,
    Tdann {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        neighbourhood: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_units: Option<u32>,
        neighbourhoods: u32,
    },
    Topoloss {
        factor: Factor,
    },
}

impl From<LossMethod> for LossRecord {
    fn from(m: LossMethod) -> LossRecord {
        match m {
            LossMethod::Poli2023 => LossRecord::Poli2023,
            LossMethod::Tdann {
                neighbourhood,
                neighbourhoods,
            } => {
                let (nearest, window, min_units) = match neighbourhood {
                    Neighbourhood::Layer => (None, None, None),
                    Neighbourhood::Nearest(k) => (Some(k as u32), None, None),
                    Neighbourhood::Window { side, min_units } => {
                        (None, Some(side), Some(min_units as u32))
                    }
                };
                LossRecord::Tdann {
                    neighbourhood: nearest,
                    window,
                    min_units,
                    neighbourhoods,
                }
            }
            LossMethod::Topoloss { factor } => LossRecord::Topoloss { factor },
        }
    }
}

impl TryFrom<LossRecord> for LossMethod {
    type Error = LossProblem;
    fn try_from(r: LossRecord) -> Result<LossMethod, LossProblem> {
        Ok(match r {
            LossRecord::Poli2023 => LossMethod::Poli2023,
            LossRecord::Tdann {
                neighbourhood,
                window,
                min_units,
                neighbourhoods,
            } => LossMethod::Tdann {
                neighbourhood: tdann_neighbourhood(
                    neighbourhood.map(NeighbourhoodSize::Count),
                    window,
                    min_units,
                    Neighbourhood::Layer,
                )?,
                neighbourhoods,
            },
            LossRecord::Topoloss { factor } => LossMethod::Topoloss { factor },
        })
    }
}

/// TDANN's neighbourhood from its parameters; `default` when none is given (windows in
/// an experiment file, the whole layer in a record written before windows).
fn tdann_neighbourhood(
    neighbourhood: Option<NeighbourhoodSize>,
    window: Option<f64>,
    min_units: Option<u32>,
    default: Neighbourhood,
) -> Result<Neighbourhood, LossProblem> {
    match (neighbourhood, window, min_units) {
        (Some(_), Some(_), _) => Err(LossProblem::WindowAndNeighbourhood),
        (Some(_), None, Some(_)) => Err(LossProblem::MinUnitsWithoutWindow),
        (Some(NeighbourhoodSize::Count(k)), None, None) if k < 3 => {
            Err(LossProblem::Neighbourhood(k))
        }
        (Some(NeighbourhoodSize::Count(k)), None, None) => Ok(Neighbourhood::Nearest(k as usize)),
        (Some(NeighbourhoodSize::All(_)), None, None) => Ok(Neighbourhood::Layer),
        (None, None, None) => Ok(default),
        (None, window, min_units) => {
            let side = window.unwrap_or(DEFAULT_WINDOW);
            if !(side.is_finite() && side > 0.0) {
                return Err(LossProblem::Window(side));
            }
            let min_units = min_units.unwrap_or(DEFAULT_MIN_UNITS);
            if min_units < 3 {
                return Err(LossProblem::MinUnits(min_units));
            }
            Ok(Neighbourhood::Window {
                side,
                min_units: min_units as usize,
            })
        }
    }
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
    #[error(
        "`window` must be a positive side length in layout units (they span 0 to 1), found {0}"
    )]
    Window(f64),
    #[error("`min_units` must be at least 3 channels (2 pairs to correlate), found {0}")]
    MinUnits(u32),
    #[error(
        "give `window` (TDANN's square windows) or `neighbourhood` (the nearest channels, or `all`), not both"
    )]
    WindowAndNeighbourhood,
    #[error("`min_units` trims TDANN's windows: it goes with `window`, not `neighbourhood`")]
    MinUnitsWithoutWindow,
}

impl LossSpec {
    /// Checks the parameters and returns the run's form.
    pub(super) fn method(&self) -> Result<LossMethod, LossProblem> {
        let form = match self {
            LossSpec::Name(LossName::Poli2023) => LossForm::Poli2023,
            LossSpec::Name(LossName::Tdann) => LossForm::Tdann {
                window: None,
                min_units: None,
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
                window,
                min_units,
                neighbourhood,
                neighbourhoods,
            } => {
                let default = Neighbourhood::Window {
                    side: DEFAULT_WINDOW,
                    min_units: DEFAULT_MIN_UNITS as usize,
                };
                let neighbourhood = tdann_neighbourhood(neighbourhood, window, min_units, default)?;
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
                neighbourhood: Neighbourhood::Window {
                    side: 0.5,
                    min_units: 25
                },
                neighbourhoods: 1
            })
        );
        assert_eq!(
            yaml(r#"{"kind":"tdann","neighbourhood":"all"}"#),
            Ok(LossMethod::Tdann {
                neighbourhood: Neighbourhood::Layer,
                neighbourhoods: 1
            })
        );
        assert_eq!(
            yaml(r#"{"kind":"tdann","window":0.3,"min_units":9,"neighbourhoods":2}"#),
            Ok(LossMethod::Tdann {
                neighbourhood: Neighbourhood::Window {
                    side: 0.3,
                    min_units: 9
                },
                neighbourhoods: 2
            })
        );
        assert_eq!(
            yaml(r#"{"kind":"tdann","window":0.3,"neighbourhood":8}"#),
            Err(LossProblem::WindowAndNeighbourhood)
        );
        assert_eq!(
            yaml(r#"{"kind":"tdann","window":-1}"#),
            Err(LossProblem::Window(-1.0))
        );
        assert_eq!(
            yaml(r#"{"kind":"tdann","neighbourhood":8,"min_units":5}"#),
            Err(LossProblem::MinUnitsWithoutWindow)
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
                neighbourhood: Neighbourhood::Nearest(16),
                neighbourhoods: 2,
            },
            LossMethod::Tdann {
                neighbourhood: Neighbourhood::Layer,
                neighbourhoods: 1,
            },
            LossMethod::Tdann {
                neighbourhood: Neighbourhood::Window {
                    side: 0.25,
                    min_units: 25,
                },
                neighbourhoods: 3,
            },
            LossMethod::Topoloss {
                factor: Factor::new(2.5).unwrap(),
            },
        ] {
            let json = serde_json::to_value(m).unwrap();
            assert_eq!(serde_json::from_value::<LossMethod>(json).unwrap(), m);
        }
        // A record written before windows (no `neighbourhood`) is TDANN on the whole layer.
        let old: LossMethod =
            serde_json::from_str(r#"{"kind":"tdann","neighbourhoods":1}"#).unwrap();
        assert_eq!(
            old,
            LossMethod::Tdann {
                neighbourhood: Neighbourhood::Layer,
                neighbourhoods: 1
            }
        );
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"kind":"tdann","neighbourhoods":1}"#
        );
    }
}
