//! VGG-16 with batch norm (torchvision's `vgg16_bn`, configuration "D"): 13 3x3 convs with
//! bias, each followed by batch norm and ReLU, five 2x2 max pools, an adaptive average
//! pool to 7x7 and the classifier `25088-4096-4096-classes` with dropout 0.5. The hidden
//! width 4096 is scaled by the width multiplier like every channel count.

use candle_core::{ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels;
use crate::nn::layers::{
    self, Conv, ConvInit, ConvSpec, Dense, Dropout, LinearInit, TapPlan, TapSink,
};
use crate::nn::norm::{self, Norm};

/// Configuration "D": channel counts, `None` for a max pool.
const CFG: [Option<usize>; 18] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

/// Index in `features` of every conv (a conv, its batch norm and ReLU take three slots,
/// a pool one).
fn conv_indices() -> Vec<usize> {
    let mut index = 0;
    let mut out = Vec::new();
    for layer in CFG {
        match layer {
            Some(_) => {
                out.push(index);
                index += 3;
            }
            None => index += 1,
        }
    }
    out
}

/// Every conv of VGG-16-BN, in forward order (`features.0`, `features.3`, ...).
pub(crate) fn conv_names() -> Vec<String> {
    conv_indices()
        .into_iter()
        .map(|i| format!("features.{i}"))
        .collect()
}

enum Feature {
    Conv(Conv, Norm),
    Pool,
}

/// VGG-16 with batch norm.
pub(crate) struct Vgg16Bn {
    features: Vec<Feature>,
    fc1: Dense,
    fc2: Dense,
    fc3: Dense,
    dropout: Dropout,
}

impl Vgg16Bn {
    pub(crate) fn new(
        in_channels: usize,
        num_classes: usize,
        width: f64,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<Vgg16Bn> {
        let fvb = vb.pp("features");
        let mut features = Vec::with_capacity(CFG.len());
        let mut channels = in_channels;
        let mut index = 0;
        for layer in CFG {
            match layer {
                Some(c) => {
                    let out = layers::scaled(c, width);
                    let spec = ConvSpec {
                        in_channels: channels,
                        out_channels: out,
                        kernel: 3,
                        stride: 1,
                        padding: 1,
                        bias: true,
                        init: ConvInit::KaimingFanOut,
                    };
                    let conv = Conv::new(spec, plan, fvb.pp(index))?;
                    let bn = norm::batch_norm(out, plan.kernels(), fvb.pp(index + 1))?;
                    features.push(Feature::Conv(conv, bn));
                    channels = out;
                    index += 3;
                }
                None => {
                    features.push(Feature::Pool);
                    index += 1;
                }
            }
        }
        let hidden = layers::scaled(4096, width);
        let cvb = vb.pp("classifier");
        let fc1 = layers::linear(
            channels * 49,
            hidden,
            LinearInit::Normal001,
            plan.kernels(),
            cvb.pp(0),
        )?;
        let fc2 = layers::linear(
            hidden,
            hidden,
            LinearInit::Normal001,
            plan.kernels(),
            cvb.pp(3),
        )?;
        let fc3 = layers::linear(
            hidden,
            num_classes,
            LinearInit::Normal001,
            plan.kernels(),
            cvb.pp(6),
        )?;
        Ok(Vgg16Bn {
            features,
            fc1,
            fc2,
            fc3,
            dropout: Dropout::new(0.5),
        })
    }

    pub(crate) fn reseed(&self, seed: u64) {
        self.dropout.reseed(seed);
    }

    /// Keeps the dropout masks of each training forward pass.
    pub(crate) fn record_dropout_masks(&self) {
        self.dropout.record();
    }

    /// The dropout masks of the last training forward pass: after `fc1`, after `fc2`.
    pub(crate) fn dropout_masks(&self) -> Vec<Tensor> {
        self.dropout.masks()
    }

    pub(crate) fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        self.dropout.begin();
        let mut ys = xs.clone();
        for feature in &self.features {
            ys = match feature {
                Feature::Conv(conv, bn) => conv.forward_bn_relu(&ys, bn, train, taps)?,
                Feature::Pool => kernels::max_pool2d(&ys, 2, 2, 0)?,
            };
        }
        let ys = kernels::adaptive_avg_pool2d(&ys, 7, 7)?.flatten_from(1)?;
        let ys = self
            .dropout
            .forward_t(&self.fc1.forward(&ys)?.relu()?, train)?;
        let ys = self
            .dropout
            .forward_t(&self.fc2.forward(&ys)?.relu()?, train)?;
        self.fc3.forward(&ys)
    }
}
