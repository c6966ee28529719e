//! How the images of an `image_folder` data set become model inputs: their size, colour,
//! training augmentations, normalisation and the held-out fractions of missing splits.

use std::num::NonZeroU32;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `image:` of an `image_folder` data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageFolderSpec {
    /// The model's input: square images of this many pixels a side.
    pub size: NonZeroU32,
    /// Each image's shorter side is resized to this many pixels (antialiased bilinear)
    /// when it is decoded; evaluation then takes the centre `size` square (torchvision's
    /// `Resize(resize)` then `CenterCrop(size)`). Defaults to `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<NonZeroU32>,
    /// Colour (three channels) or greyscale (one).
    #[serde(default, skip_serializing_if = "is_default")]
    pub colour: Colour,
    /// In a colour data set, greyscale files are replicated to three channels (as
    /// torchvision's `ImageFolder` does) instead of refused.
    #[serde(default, skip_serializing_if = "is_default")]
    pub convert_grey: bool,
    /// Training augmentations, applied in this order; evaluation uses none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub augment: Vec<ImageAugment>,
    /// `(x / 255 - mean) / std` per channel: `computed` on the training split once and
    /// cached (the default), `imagenet`'s statistics, or `{ mean: [...], std: [...] }`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub normalisation: ImageNormalisation,
    /// The fraction of the training images held out for validation when the tree has no
    /// `val/` (or `validation/`) folder; drawn by the data seed, the same for every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub validation: Option<f64>,
    /// The fraction held out for testing when the tree has neither `test/` nor `val/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub test: Option<f64>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The fraction of training images held out for a missing split, unless given.
pub const DEFAULT_HOLD_OUT: f64 = 0.1;

impl ImageFolderSpec {
    /// The shorter side images are stored at.
    pub fn resize_or_size(&self) -> u32 {
        self.resize.unwrap_or(self.size).get()
    }

    pub fn channels(&self) -> usize {
        match self.colour {
            Colour::Rgb => 3,
            Colour::Grey => 1,
        }
    }

    pub fn validation_fraction(&self) -> f64 {
        self.validation.unwrap_or(DEFAULT_HOLD_OUT)
    }

    pub fn test_fraction(&self) -> f64 {
        self.test.unwrap_or(DEFAULT_HOLD_OUT)
    }
}

/// The images' colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    #[default]
    Rgb,
    Grey,
}

/// A training augmentation, with torchvision's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageAugment {
    /// A crop of 8% to 100% of the image's area with an aspect ratio between 3/4 and 4/3
    /// (log-uniform), resized to `size` (torchvision's `RandomResizedCrop(size)`); without
    /// it, training takes the centre crop as evaluation does.
    RandomResizedCrop,
    /// A mirror image with probability 1/2.
    HorizontalFlip,
}

/// How pixels are normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ImageNormalisation {
    Named(NamedNormalisation),
    /// Given statistics, one per channel, of pixels scaled to [0, 1].
    Given {
        mean: Vec<f32>,
        std: Vec<f32>,
    },
}

impl Default for ImageNormalisation {
    fn default() -> Self {
        ImageNormalisation::Named(NamedNormalisation::Computed)
    }
}

/// Normalisations known by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamedNormalisation {
    /// The training split's per-channel mean and standard deviation, computed once.
    Computed,
    /// ImageNet's: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    Imagenet,
}

/// ImageNet's per-channel statistics, as torchvision's models expect.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
