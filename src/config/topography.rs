//! Topographies named in an experiment: the raw form written in YAML and the
//! resolved form the engine uses.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::config::LambdaSchedule;
use crate::config::layer_weights::{LayerWeightProblem, LayerWeights};
use crate::config::loss::{LossMethod, LossProblem, LossSpec};
use crate::config::tap::TapPoint;
use crate::topography::{Layout, Norm};

/// `none` marks the baseline; `topographic` (the default) needs a layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopographyKind {
    /// No topographic loss: the baseline. `lambda` collapses for it.
    None,
    /// Channels get positions and the topographic loss is added.
    #[default]
    Topographic,
}

/// Where positions come from: a built-in layout or a CSV of coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LayoutSource {
    /// `grid`, `nested` or `sphere`.
    Builtin(Layout),
    /// `{ file: layouts/mine.csv }`: one row of coordinates per channel.
    File(LayoutFile),
}

/// A custom layout read from a CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutFile {
    /// CSV of `n` rows of `d` coordinates, relative to the experiment file.
    pub file: PathBuf,
}

/// A topography as written: `{ kind: none }` or `{ layout: grid, dimension: 2 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopographySpec {
    /// `none` for the baseline; otherwise topographic.
    #[serde(default)]
    pub kind: TopographyKind,
    /// How channel positions are laid out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutSource>,
    /// Dimension of the positions: 1 (a line), 2 or 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3))]
    pub dimension: Option<u8>,
    /// Distance between positions.
    #[serde(default)]
    pub norm: Norm,
    /// The topographic loss: `poli2023` (the paper's, the default), `tdann` or
    /// `topoloss`, by name or with parameters (`{ kind: tdann, neighbourhood: 32 }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossSpec>,
    /// Only these tapped layers are made topographic, each loss weighted by its value
    /// (`{ layer3.1.conv2: 0.5, layer4.1.conv2: 1 }`); every tapped layer at 1 when absent.
    /// The grid's `lambda` scales the whole term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_weights: Option<BTreeMap<String, f64>>,
    /// Where each tapped conv's response is read: `conv` (its output before batch norm,
    /// the paper's reference; the default) or `block` (what its unit emits after batch
    /// norm and ReLU, a residual block's output after the sum: TDANN's units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<TapPoint>,
    /// How lambda changes over training, step by step: `{ kind: constant }` (the default,
    /// the paper's), `{ kind: linear_warmup, epochs: 2 }` or `{ kind: cosine, epochs: 2 }`
    /// (from 0 to the grid's lambda over the first epochs, then lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_schedule: Option<LambdaSchedule>,
}

/// Where a topographic run's channels sit: what the topographic loss needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Placement {
    /// Positions from a built-in layout in `dimension` dimensions.
    Builtin {
        layout: Layout,
        dimension: u8,
        norm: Norm,
    },
    /// Positions read from a CSV file; its column count is the dimension.
    Custom { file: PathBuf, norm: Norm },
}

/// A checked topography, as a grid axis names it: the baseline, or a placement and the
/// loss that organises it. It reads and writes `{ kind: none }` for the baseline and the
/// placement's own form otherwise, with a `loss` key unless the loss is the paper's and a
/// `tap` key unless responses are read at the conv (so runs planned before either could
/// be chosen keep their ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topography {
    /// No positions, no topographic loss.
    Baseline,
    Placed(
        Placement,
        LossMethod,
        LayerWeights,
        TapPoint,
        LambdaSchedule,
    ),
}

impl Topography {
    pub fn is_baseline(&self) -> bool {
        matches!(self, Topography::Baseline)
    }

    pub fn placement(&self) -> Option<&Placement> {
        match self {
            Topography::Baseline => None,
            Topography::Placed(p, ..) => Some(p),
        }
    }

    pub fn loss(&self) -> Option<LossMethod> {
        match self {
            Topography::Baseline => None,
            Topography::Placed(_, l, ..) => Some(*l),
        }
    }
}

/// `{ kind: none }` alone.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
enum BaselineForm {
    None,
}

impl Serialize for Topography {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self {
            Topography::Baseline => BaselineForm::None.serialize(s),
            Topography::Placed(p, loss, weights, tap, schedule) => {
                let mut value = serde_json::to_value(p).map_err(S::Error::custom)?;
                if let serde_json::Value::Object(map) = &mut value {
                    if !loss.is_paper() {
                        let loss = serde_json::to_value(loss).map_err(S::Error::custom)?;
                        map.insert("loss".into(), loss);
                    }
                    if !weights.is_uniform() {
                        let weights = serde_json::to_value(weights).map_err(S::Error::custom)?;
                        map.insert("layer_weights".into(), weights);
                    }
                    if *tap != TapPoint::Conv {
                        map.insert("tap".into(), tap.name().into());
                    }
                    // Absent when constant, so the runs of files without it keep their ids.
                    if !schedule.is_constant() {
                        let schedule = serde_json::to_value(schedule).map_err(S::Error::custom)?;
                        map.insert("lambda_schedule".into(), schedule);
                    }
                }
                value.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Topography {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // Read once, then by its `kind`, so a bad placement gets the placement's message.
        let mut value = serde_json::Value::deserialize(d)?;
        if value.get("kind").and_then(serde_json::Value::as_str) == Some("none") {
            BaselineForm::deserialize(value).map_err(D::Error::custom)?;
            Ok(Topography::Baseline)
        } else {
            let mut take = |key: &str| value.as_object_mut().and_then(|m| m.remove(key));
            let loss = match take("loss") {
                Some(l) => LossMethod::deserialize(l).map_err(D::Error::custom)?,
                None => LossMethod::Poli2023,
            };
            let weights = match take("layer_weights") {
                Some(w) => LayerWeights::deserialize(w).map_err(D::Error::custom)?,
                None => LayerWeights::default(),
            };
            let tap = match take("tap") {
                Some(t) => TapPoint::deserialize(t).map_err(D::Error::custom)?,
                None => TapPoint::Conv,
            };
            let schedule = match take("lambda_schedule") {
                Some(s) => LambdaSchedule::deserialize(s).map_err(D::Error::custom)?,
                None => LambdaSchedule::Constant,
            };
            Placement::deserialize(value)
                .map(|p| Topography::Placed(p, loss, weights, tap, schedule))
                .map_err(D::Error::custom)
        }
    }
}

/// Why a topography spec does not resolve; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopographyProblem {
    #[error(
        "`layout` is required for a topographic topography (or set `kind: none` for the baseline)"
    )]
    MissingLayout,
    #[error("`dimension` is required with `layout: {0}` (1, 2 or 3)")]
    MissingDimension(&'static str),
    #[error("a sphere needs dimension 2 (a circle) or 3, not 1")]
    SphereInOneDimension,
    #[error("a sheet is 2D (TopoLoss's h x w cortical sheet): use `dimension: 2`, not {0}")]
    SheetNotIn2d(u8),
    #[error("dimension must be 1, 2 or 3, not {0}")]
    Dimension(u8),
    #[error("`dimension` comes from the CSV's columns with a custom layout: remove it")]
    CustomDimension,
    #[error("the baseline (`kind: none`) takes no `{0}`")]
    BaselineField(&'static str),
    #[error("loss: {0}")]
    Loss(LossProblem),
    #[error("layer_weights: {0}")]
    LayerWeights(LayerWeightProblem),
    #[error(
        "TopoLoss lays channels on a 2D sheet: use `layout: sheet` (or `grid`), `dimension: 2` with `loss: topoloss`"
    )]
    TopolossNeedsGrid,
}

impl TopographySpec {
    /// Checks the spec and returns the engine's form.
    pub(super) fn to_topography(&self) -> Result<Topography, TopographyProblem> {
        match self.kind {
            TopographyKind::None => {
                if self.layout.is_some() {
                    return Err(TopographyProblem::BaselineField("layout"));
                }
                if self.dimension.is_some() {
                    return Err(TopographyProblem::BaselineField("dimension"));
                }
                if self.loss.is_some() {
                    return Err(TopographyProblem::BaselineField("loss"));
                }
                if self.layer_weights.is_some() {
                    return Err(TopographyProblem::BaselineField("layer_weights"));
                }
                if self.tap.is_some() {
                    return Err(TopographyProblem::BaselineField("tap"));
                }
                if self.lambda_schedule.is_some() {
                    return Err(TopographyProblem::BaselineField("lambda_schedule"));
                }
                Ok(Topography::Baseline)
            }
            TopographyKind::Topographic => {
                let loss = match &self.loss {
                    Some(l) => l.method().map_err(TopographyProblem::Loss)?,
                    None => LossMethod::Poli2023,
                };
                let placement = self.placement()?;
                let sheet = matches!(
                    placement,
                    Placement::Builtin {
                        layout: Layout::Grid | Layout::Sheet,
                        dimension: 2,
                        ..
                    }
                );
                if matches!(loss, LossMethod::Topoloss { .. }) && !sheet {
                    return Err(TopographyProblem::TopolossNeedsGrid);
                }
                let weights = match &self.layer_weights {
                    Some(w) => LayerWeights::new(w).map_err(TopographyProblem::LayerWeights)?,
                    None => LayerWeights::default(),
                };
                Ok(Topography::Placed(
                    placement,
                    loss,
                    weights,
                    self.tap.unwrap_or_default(),
                    self.lambda_schedule.unwrap_or_default(),
                ))
            }
        }
    }

    /// Where a topographic spec puts its channels.
    fn placement(&self) -> Result<Placement, TopographyProblem> {
        match (&self.layout, self.dimension) {
            (None, _) => Err(TopographyProblem::MissingLayout),
            (Some(LayoutSource::File(f)), None) => Ok(Placement::Custom {
                file: f.file.clone(),
                norm: self.norm,
            }),
            (Some(LayoutSource::File(_)), Some(_)) => Err(TopographyProblem::CustomDimension),
            (Some(LayoutSource::Builtin(l)), None) => {
                Err(TopographyProblem::MissingDimension(layout_name(*l)))
            }
            (Some(LayoutSource::Builtin(_)), Some(d)) if !(1..=3).contains(&d) => {
                Err(TopographyProblem::Dimension(d))
            }
            (Some(LayoutSource::Builtin(Layout::Sphere)), Some(1)) => {
                Err(TopographyProblem::SphereInOneDimension)
            }
            (Some(LayoutSource::Builtin(Layout::Sheet)), Some(d)) if d != 2 => {
                Err(TopographyProblem::SheetNotIn2d(d))
            }
            (Some(LayoutSource::Builtin(l)), Some(d)) => Ok(Placement::Builtin {
                layout: *l,
                dimension: d,
                norm: self.norm,
            }),
        }
    }
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Grid => "grid",
        Layout::Nested => "nested",
        Layout::Sphere => "sphere",
        Layout::Sheet => "sheet",
    }
}
