//! Models named in an experiment.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The paper's three architectures, and ResNet-50 (torchvision definitions, CIFAR stems by
/// default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// ResNet-18 with a 3x3 stride-1 stem; the 3x3 max pool is kept.
    Resnet18,
    /// ResNet-50 (bottleneck blocks), stemmed as ResNet-18.
    Resnet50,
    /// VGG-16 with batch norm.
    Vgg16Bn,
    /// DenseNet-121 with a 3x3 stride-1 stem; pool0 is kept.
    Densenet121,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Resnet18,
        ModelKind::Resnet50,
        ModelKind::Vgg16Bn,
        ModelKind::Densenet121,
    ];

    /// The name used in YAML (`resnet18`, `vgg16_bn`, `densenet121`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Resnet18 => "resnet18",
            ModelKind::Resnet50 => "resnet50",
            ModelKind::Vgg16Bn => "vgg16_bn",
            ModelKind::Densenet121 => "densenet121",
        }
    }

    pub fn from_name(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A model: an architecture, a width multiplier and the convs that carry topography.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The architecture.
    pub kind: ModelKind,
    /// Multiplies every layer's channel count, to scale a model down for a CPU.
    #[serde(default = "default_width")]
    #[schemars(range(min = 0.01, max = 16.0))]
    pub width: f64,
    /// Names of the convs given topography (`layer1.1.conv2`); the reference's choice by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taps: Option<Vec<String>>,
    /// The first layers: `cifar` (the reference's, for 32 x 32 inputs: ResNet-18's `conv1`
    /// a 3x3 stride-1 conv; the default) or `imagenet` (torchvision's, for 224 x 224 inputs:
    /// a 7x7 stride-2 conv), for the ResNets and DenseNet-121. VGG-16-BN has one stem.
    #[serde(default, skip_serializing_if = "Stem::is_cifar")]
    pub stem: Stem,
    /// Weights to start training from instead of the seeded initialisation: a safetensors
    /// file under torchvision's names (a `state_dict` saved with `safetensors.torch`), the
    /// tensors under `exclude` (names or prefixes, such as `fc`) left at their seeded
    /// values. The path is relative to where `topo` runs, as data roots are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
}

/// Pretrained weights to start from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    pub weights: std::path::PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl InitSpec {
    /// Whether the tensor `name` is left at its seeded value.
    pub fn excludes(&self, name: &str) -> bool {
        self.exclude.iter().any(|p| {
            name == p
                || name
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
    }
}

/// A model's first layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    /// The reference's, for small images.
    #[default]
    Cifar,
    /// torchvision's, for ImageNet-sized images.
    Imagenet,
}

impl Stem {
    /// The default, left out of run records so that earlier runs keep their ids.
    pub fn is_cifar(&self) -> bool {
        *self == Stem::Cifar
    }
}

fn default_width() -> f64 {
    1.0
}

impl ModelSpec {
    /// The paper's model of this kind at full width.
    pub fn of_kind(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            kind,
            width: 1.0,
            taps: None,
            stem: Default::default(),
            init: None,
        }
    }
}
