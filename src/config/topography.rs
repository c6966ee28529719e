//! Topographies named in an experiment: the raw form written in YAML and the
//! resolved form the engine uses.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

/// A checked topography, as a grid axis names it: the baseline or a placement. It reads
/// and writes `{ kind: none }` for the baseline and the placement's own form otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topography {
    /// No positions, no topographic loss.
    Baseline,
    Placed(Placement),
}

impl Topography {
    pub fn is_baseline(&self) -> bool {
        matches!(self, Topography::Baseline)
    }

    pub fn placement(&self) -> Option<&Placement> {
        match self {
            Topography::Baseline => None,
            Topography::Placed(p) => Some(p),
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
        match self {
            Topography::Baseline => BaselineForm::None.serialize(s),
            Topography::Placed(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Topography {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // Read once, then by its `kind`, so a bad placement gets the placement's message.
        let value = serde_json::Value::deserialize(d)?;
        if value.get("kind").and_then(serde_json::Value::as_str) == Some("none") {
            BaselineForm::deserialize(value).map_err(D::Error::custom)?;
            Ok(Topography::Baseline)
        } else {
            Placement::deserialize(value)
                .map(Topography::Placed)
                .map_err(D::Error::custom)
        }
    }
}

/// Why a topography spec does not resolve; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopographyProblem {
    #[error(
        "`layout` is required for a topographic topography (or set `kind: none` for the baseline)"
    )]
    MissingLayout,
    #[error("`dimension` is required with `layout: {0}` (1, 2 or 3)")]
    MissingDimension(&'static str),
    #[error("a sphere needs dimension 2 (a circle) or 3, not 1")]
    SphereInOneDimension,
    #[error("dimension must be 1, 2 or 3, not {0}")]
    Dimension(u8),
    #[error("`dimension` comes from the CSV's columns with a custom layout: remove it")]
    CustomDimension,
    #[error("the baseline (`kind: none`) takes no `{0}`")]
    BaselineField(&'static str),
}

impl TopographySpec {
    /// Checks the spec and returns the engine's form.
    pub fn resolve(&self) -> Result<Topography, TopographyProblem> {
        match self.kind {
            TopographyKind::None => {
                if self.layout.is_some() {
                    return Err(TopographyProblem::BaselineField("layout"));
                }
                if self.dimension.is_some() {
                    return Err(TopographyProblem::BaselineField("dimension"));
                }
                Ok(Topography::Baseline)
            }
            TopographyKind::Topographic => match (&self.layout, self.dimension) {
                (None, _) => Err(TopographyProblem::MissingLayout),
                (Some(LayoutSource::File(f)), None) => Ok(Topography::Placed(Placement::Custom {
                    file: f.file.clone(),
                    norm: self.norm,
                })),
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
                (Some(LayoutSource::Builtin(l)), Some(d)) => {
                    Ok(Topography::Placed(Placement::Builtin {
                        layout: *l,
                        dimension: d,
                        norm: self.norm,
                    }))
                }
            },
        }
    }
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Grid => "grid",
        Layout::Nested => "nested",
        Layout::Sphere => "sphere",
    }
}
