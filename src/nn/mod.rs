//! The paper's three models as candle modules that return the outputs of their
//! topographic convs ("taps") beside the logits.
//!
//! Parameter names follow torchvision (`conv1.weight`, `layer1.1.conv2.weight`,
//! `bn1.running_mean`, `features.0.weight`, `features.denseblock1.denselayer6.conv2.weight`),
//! so a tap's name is also the var-name prefix of its conv. Taps are conv outputs before
//! batch norm, as the reference hooks the convs themselves.
//!
//! Width: every channel count `c` (and VGG's 4096 hidden units, DenseNet's growth rate
//! and stem) becomes `max(1, round(c * width))`, rounding halves away from zero; width 1
//! is exactly torchvision.
//!
//! Randomness: build through [`seeded_var_builder`] for weights drawn from a seeded
//! generator (torchvision's init schemes); VGG's dropout masks come from the model's own
//! generator, seeded 0 at build and reseeded by [`TopoModel::reseed`].

mod densenet;
mod error;
pub mod flops;
mod init;
mod layers;
mod norm;
mod resnet;
mod vgg;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::config::{ModelKind, ModelSpec, Stem, TapPoint};
use layers::{TapPlan, TapSink};

use crate::kernels::Kernels;
pub use error::ModelError;
pub use init::seeded_var_builder;

/// A tapped conv: its name (`layer1.1.conv2`) and output channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    pub name: String,
    pub channels: usize,
}

/// What a forward pass returns.
pub struct ModelOutput {
    /// `(batch, classes)`.
    pub logits: Tensor,
    /// The tapped responses, `(batch, channels, h, w)`, in [`TopoModel::taps`] order: each
    /// conv's output, or its unit's (the model's [`TapPoint`]).
    pub taps: Vec<Tensor>,
}

/// A classifier whose chosen convs are tapped.
pub trait TopoModel: Send + Sync {
    /// Forward pass; `train` selects batch statistics (updating the running ones) and dropout.
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<ModelOutput>;
    /// The tapped convs, in the order of [`ModelOutput::taps`].
    fn taps(&self) -> &[Tap];
    /// Names of the tapped convs, e.g. `layer1.1.conv2`.
    fn tap_names(&self) -> Vec<String> {
        self.taps().iter().map(|t| t.name.clone()).collect()
    }
    /// Output channels of each tapped conv.
    fn tap_channels(&self) -> Vec<usize> {
        self.taps().iter().map(|t| t.channels).collect()
    }
    /// Reseeds the model's own randomness (dropout masks), e.g. once per epoch from the
    /// run's seed so a resumed run draws the same masks. Models without any do nothing.
    fn reseed(&self, _seed: u64) {}
    /// Keeps the dropout masks of every training forward pass from now on, for
    /// [`TopoModel::dropout_masks`]; training never asks (`topo trace` does).
    fn record_dropout_masks(&self) {}
    /// The dropout masks the last training forward pass applied, in forward order (`0` or
    /// `1 / (1 - p)` per element), once recording; empty for models without dropout.
    fn dropout_masks(&self) -> Vec<Tensor> {
        Vec::new()
    }
}

/// The convs the reference makes topographic for each model.
pub fn default_taps(kind: ModelKind) -> Vec<String> {
    match kind {
        ModelKind::Resnet18 => [
            "conv1",
            "layer1.1.conv2",
            "layer2.1.conv2",
            "layer3.1.conv2",
            "layer4.1.conv2",
        ]
        .map(String::from)
        .to_vec(),
        // As ResNet-18's: the stem and each stage's last block, whose last conv emits the
        // block's output.
        ModelKind::Resnet50 => [
            "conv1",
            "layer1.2.conv3",
            "layer2.3.conv3",
            "layer3.5.conv3",
            "layer4.2.conv3",
        ]
        .map(String::from)
        .to_vec(),
        // The reference passes no names for VGG, which taps every conv.
        ModelKind::Vgg16Bn => vgg::conv_names(),
        ModelKind::Densenet121 => [
            "features.conv0",
            "features.denseblock1.denselayer6.conv2",
            "features.denseblock2.denselayer12.conv2",
            "features.denseblock3.denselayer24.conv2",
            "features.denseblock4.denselayer16.conv2",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// Every conv of a model, in forward order: the names `taps` may use.
pub fn conv_names(kind: ModelKind) -> Vec<String> {
    match kind {
        ModelKind::Resnet18 => resnet::conv_names(resnet::Depth::Eighteen),
        ModelKind::Resnet50 => resnet::conv_names(resnet::Depth::Fifty),
        ModelKind::Vgg16Bn => vgg::conv_names(),
        ModelKind::Densenet121 => densenet::conv_names(),
    }
}

/// The model's taps: its own list checked against its convs, else the reference's.
fn checked_taps(kind: ModelKind, taps: Option<&[String]>) -> Result<Vec<String>, ModelError> {
    let Some(taps) = taps else {
        return Ok(default_taps(kind));
    };
    let valid = conv_names(kind);
    for (i, name) in taps.iter().enumerate() {
        if !valid.contains(name) {
            return Err(ModelError::UnknownTap {
                model: kind.name(),
                name: name.clone(),
                valid,
            });
        }
        if taps[..i].contains(name) {
            return Err(ModelError::DuplicateTap {
                model: kind.name(),
                name: name.clone(),
            });
        }
    }
    Ok(taps.to_vec())
}

enum Net {
    Resnet(Box<resnet::ResNet>),
    Vgg16Bn(Box<vgg::Vgg16Bn>),
    Densenet121(Box<densenet::DenseNet121>),
}

struct Model {
    net: Net,
    taps: Vec<Tap>,
}

impl TopoModel for Model {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<ModelOutput> {
        let mut taps = TapSink::new(self.taps.len());
        let logits = match &self.net {
            Net::Resnet(m) => m.forward(xs, train, &mut taps)?,
            Net::Vgg16Bn(m) => m.forward(xs, train, &mut taps)?,
            Net::Densenet121(m) => m.forward(xs, train, &mut taps)?,
        };
        Ok(ModelOutput {
            logits,
            taps: taps.finish()?,
        })
    }

    fn taps(&self) -> &[Tap] {
        &self.taps
    }

    fn reseed(&self, seed: u64) {
        if let Net::Vgg16Bn(m) = &self.net {
            m.reseed(seed);
        }
    }

    fn record_dropout_masks(&self) {
        if let Net::Vgg16Bn(m) = &self.net {
            m.record_dropout_masks();
        }
    }

    fn dropout_masks(&self) -> Vec<Tensor> {
        match &self.net {
            Net::Vgg16Bn(m) => m.dropout_masks(),
            Net::Resnet(_) | Net::Densenet121(_) => Vec::new(),
        }
    }
}

/// Whether one example of `input` (channels, height, width) passes through the model
/// `spec` describes: a forward pass of a narrow copy on zeros (how sizes shrink through
/// convs and pools does not depend on the width), so a model too deep for a data set's
/// inputs (VGG-16's five pools on 28 x 28) is found before anything trains.
pub fn check_input(spec: &ModelSpec, input: [usize; 3], classes: usize) -> Result<(), ModelError> {
    let narrow = ModelSpec {
        width: spec.width.min(1.0 / 64.0),
        ..spec.clone()
    };
    let device = candle_core::Device::Cpu;
    let vb = VarBuilder::zeros(candle_core::DType::F32, &device);
    let [c, h, w] = input;
    let model = build_with(&narrow, c, classes, vb, TapPoint::Conv, Kernels::Candle)?;
    let fail = |e: candle_core::Error| ModelError::Input {
        model: spec.kind.name(),
        c,
        h,
        w,
        // The first line: candle appends a backtrace when RUST_BACKTRACE is set.
        message: e.to_string().lines().next().unwrap_or_default().to_owned(),
    };
    let xs = Tensor::zeros((1, c, h, w), candle_core::DType::F32, &device).map_err(fail)?;
    model.forward_t(&xs, false).map_err(fail)?;
    Ok(())
}

/// Builds the model `spec` describes for `in_channels`-channel inputs (1 for
/// spectrograms, 3 for images) and `num_classes` classes, with its parameters in `vb`,
/// on the fast kernels where the device has them.
pub fn build(
    spec: &ModelSpec,
    in_channels: usize,
    num_classes: usize,
    vb: VarBuilder,
) -> Result<Box<dyn TopoModel>, ModelError> {
    build_with(
        spec,
        in_channels,
        num_classes,
        vb,
        TapPoint::Conv,
        Kernels::Fast,
    )
}

/// [`build`] with its taps read at `tap`, on the given kernels (candle's own wherever the
/// fast ones do not exist).
pub fn build_with(
    spec: &ModelSpec,
    in_channels: usize,
    num_classes: usize,
    vb: VarBuilder,
    tap: TapPoint,
    kernels: Kernels,
) -> Result<Box<dyn TopoModel>, ModelError> {
    let kind = spec.kind;
    // VGG-16-BN is torchvision's as it is: it has no other stem.
    if spec.stem != Stem::Cifar && kind == ModelKind::Vgg16Bn {
        return Err(ModelError::Stem { model: kind.name() });
    }
    if !(spec.width.is_finite() && spec.width > 0.0) {
        return Err(ModelError::InvalidWidth {
            model: kind.name(),
            width: spec.width,
        });
    }
    if in_channels == 0 {
        return Err(ModelError::Zero {
            model: kind.name(),
            what: "input channels",
        });
    }
    if num_classes == 0 {
        return Err(ModelError::Zero {
            model: kind.name(),
            what: "number of classes",
        });
    }
    let names = checked_taps(kind, spec.taps.as_deref())?;
    let mut plan = TapPlan::new(vb.prefix(), names, tap, kernels.on(vb.device()));
    let w = spec.width;
    let net = match kind {
        ModelKind::Resnet18 | ModelKind::Resnet50 => {
            let depth = if kind == ModelKind::Resnet18 {
                resnet::Depth::Eighteen
            } else {
                resnet::Depth::Fifty
            };
            resnet::ResNet::new(depth, in_channels, num_classes, w, spec.stem, &mut plan, vb)
                .map(|m| Net::Resnet(Box::new(m)))
        }
        ModelKind::Vgg16Bn => vgg::Vgg16Bn::new(in_channels, num_classes, w, &mut plan, vb)
            .map(|m| Net::Vgg16Bn(Box::new(m))),
        ModelKind::Densenet121 => {
            densenet::DenseNet121::new(in_channels, num_classes, w, spec.stem, &mut plan, vb)
                .map(|m| Net::Densenet121(Box::new(m)))
        }
    }
    .map_err(ModelError::tensor(kind))?;
    let taps = plan.into_taps().map_err(|name| ModelError::UnbuiltTap {
        model: kind.name(),
        name,
    })?;
    Ok(Box::new(Model { net, taps }))
}
