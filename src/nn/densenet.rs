//! DenseNet-121 as torchvision defines it (growth 32, blocks 6-12-24-16, bottleneck size
//! 4, compression 0.5, no dropout), with the reference's CIFAR stem by default:
//! `features.conv0` is a 3x3, stride-1, padding-1, bias-free conv; with the ImageNet stem it
//! is torchvision's 7x7, stride 2, padding 3. `pool0` (3x3 stride 2 padding 1) follows either.
//! All convs use `kaiming_normal_` (fan in), as torchvision's init loop and the
//! reference's replaced stem do. With a width multiplier, the growth rate and the stem's
//! 64 channels are scaled; transitions still halve (floor) the channel count.

use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::Stem;
use crate::kernels;
use crate::nn::layers::{self, Conv, ConvInit, ConvSpec, Dense, LinearInit, TapPlan, TapSink};
use crate::nn::norm::{self, Norm};

const GROWTH: usize = 32;
const BLOCKS: [usize; 4] = [6, 12, 24, 16];
const BN_SIZE: usize = 4;
const INIT_FEATURES: usize = 64;

/// Every conv of DenseNet-121, in forward order.
pub(crate) fn conv_names() -> Vec<String> {
    let mut names = vec!["features.conv0".to_string()];
    for (b, &n) in BLOCKS.iter().enumerate() {
        for l in 1..=n {
            let p = format!("features.denseblock{}.denselayer{l}", b + 1);
            names.push(format!("{p}.conv1"));
            names.push(format!("{p}.conv2"));
        }
        if b + 1 < BLOCKS.len() {
            names.push(format!("features.transition{}.conv", b + 1));
        }
    }
    names
}

fn conv(in_channels: usize, out_channels: usize, kernel: usize, padding: usize) -> ConvSpec {
    ConvSpec {
        in_channels,
        out_channels,
        kernel,
        stride: 1,
        padding,
        bias: false,
        init: ConvInit::KaimingFanIn,
    }
}

/// BN-ReLU-conv1x1-BN-ReLU-conv3x3, its output concatenated to its input.
struct DenseLayer {
    norm1: Norm,
    conv1: Conv,
    norm2: Norm,
    conv2: Conv,
}

impl DenseLayer {
    fn new(
        in_channels: usize,
        growth: usize,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<DenseLayer> {
        let mid = BN_SIZE * growth;
        Ok(DenseLayer {
            norm1: norm::batch_norm(in_channels, plan.kernels(), vb.pp("norm1"))?,
            conv1: Conv::new(conv(in_channels, mid, 1, 0), plan, vb.pp("conv1"))?,
            norm2: norm::batch_norm(mid, plan.kernels(), vb.pp("norm2"))?,
            conv2: Conv::new(conv(mid, growth, 3, 1), plan, vb.pp("conv2"))?,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.norm1.forward_relu_t(xs, train)?;
        let ys = self.conv1.forward_bn_relu(&ys, &self.norm2, train, taps)?;
        let out = self.conv2.forward(&ys, taps)?;
        // The layer's output is its second conv's: what the block concatenates.
        self.conv2.emit(&out, taps);
        Ok(out)
    }
}

/// BN-ReLU-conv1x1-avgpool2x2.
struct Transition {
    norm: Norm,
    conv: Conv,
}

struct Block {
    layers: Vec<DenseLayer>,
    transition: Option<Transition>,
}

/// DenseNet-121.
pub(crate) struct DenseNet121 {
    conv0: Conv,
    norm0: Norm,
    blocks: Vec<Block>,
    norm5: Norm,
    classifier: Dense,
}

impl DenseNet121 {
    pub(crate) fn new(
        in_channels: usize,
        num_classes: usize,
        width: f64,
        stem: Stem,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<DenseNet121> {
        let growth = layers::scaled(GROWTH, width);
        let fvb = vb.pp("features");
        let mut channels = layers::scaled(INIT_FEATURES, width);
        let first = match stem {
            Stem::Cifar => conv(in_channels, channels, 3, 1),
            Stem::Imagenet => ConvSpec {
                stride: 2,
                ..conv(in_channels, channels, 7, 3)
            },
        };
        let conv0 = Conv::new(first, plan, fvb.pp("conv0"))?;
        let norm0 = norm::batch_norm(channels, plan.kernels(), fvb.pp("norm0"))?;
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        for (b, &n) in BLOCKS.iter().enumerate() {
            let bvb = fvb.pp(format!("denseblock{}", b + 1));
            let mut dense = Vec::with_capacity(n);
            for l in 0..n {
                dense.push(DenseLayer::new(
                    channels + l * growth,
                    growth,
                    plan,
                    bvb.pp(format!("denselayer{}", l + 1)),
                )?);
            }
            channels += n * growth;
            let transition = if b + 1 < BLOCKS.len() {
                let tvb = fvb.pp(format!("transition{}", b + 1));
                let norm = norm::batch_norm(channels, plan.kernels(), tvb.pp("norm"))?;
                let conv = Conv::new(conv(channels, channels / 2, 1, 0), plan, tvb.pp("conv"))?;
                channels /= 2;
                Some(Transition { norm, conv })
            } else {
                None
            };
            blocks.push(Block {
                layers: dense,
                transition,
            });
        }
        let norm5 = norm::batch_norm(channels, plan.kernels(), fvb.pp("norm5"))?;
        let classifier = layers::linear(
            channels,
            num_classes,
            LinearInit::ZeroBias,
            plan.kernels(),
            vb.pp("classifier"),
        )?;
        Ok(DenseNet121 {
            conv0,
            norm0,
            blocks,
            norm5,
            classifier,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.conv0.forward_bn_relu(xs, &self.norm0, train, taps)?;
        let mut ys = kernels::max_pool2d(&ys, 3, 2, 1)?;
        for block in &self.blocks {
            // torchvision concatenates every previous output before each layer; growing one
            // tensor by the new features is the same computation.
            for layer in &block.layers {
                let new = layer.forward(&ys, train, taps)?;
                ys = Tensor::cat(&[&ys, &new], 1)?;
            }
            if let Some(t) = &block.transition {
                let zs = t.norm.forward_relu_t(&ys, train)?;
                let zs = t.conv.forward(&zs, taps)?;
                ys = kernels::avg_pool2d(&zs, 2)?;
                t.conv.emit(&ys, taps);
            }
        }
        let ys = self.norm5.forward_relu_t(&ys, train)?;
        let ys = ys.mean(D::Minus1)?.mean(D::Minus1)?;
        self.classifier.forward(&ys)
    }
}
