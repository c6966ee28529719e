//! ResNet-18 as torchvision defines it, with the reference's CIFAR stem by default: `conv1`
//! is a 3x3, stride-1, padding-1, bias-free conv (PyTorch's default init, as the reference
//! replaces it after torchvision's init loop). With the ImageNet stem it is torchvision's
//! own: 7x7, stride 2, padding 3, kaiming-initialised like every other conv. The 3x3
//! stride-2 padding-1 max pool follows either.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::Stem;
use crate::kernels;
use crate::nn::layers::{self, Conv, ConvInit, ConvSpec, Dense, LinearInit, TapPlan, TapSink};
use crate::nn::norm::{self, Norm};

const PLANES: [usize; 4] = [64, 128, 256, 512];

/// Every conv of ResNet-18, in forward order.
pub(crate) fn conv_names() -> Vec<String> {
    let mut names = vec!["conv1".to_string()];
    for (layer, _) in PLANES.iter().enumerate() {
        for block in 0..2 {
            let p = format!("layer{}.{block}", layer + 1);
            names.push(format!("{p}.conv1"));
            names.push(format!("{p}.conv2"));
            if block == 0 && layer > 0 {
                names.push(format!("{p}.downsample.0"));
            }
        }
    }
    names
}

fn conv3(in_channels: usize, out_channels: usize, stride: usize, init: ConvInit) -> ConvSpec {
    ConvSpec {
        in_channels,
        out_channels,
        kernel: 3,
        stride,
        padding: 1,
        bias: false,
        init,
    }
}

/// torchvision's `BasicBlock`.
struct BasicBlock {
    conv1: Conv,
    bn1: Norm,
    conv2: Conv,
    bn2: Norm,
    downsample: Option<(Conv, Norm)>,
}

impl BasicBlock {
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<BasicBlock> {
        let conv1 = Conv::new(
            conv3(inplanes, planes, stride, ConvInit::KaimingFanOut),
            plan,
            vb.pp("conv1"),
        )?;
        let bn1 = norm::batch_norm(planes, plan.kernels(), vb.pp("bn1"))?;
        let conv2 = Conv::new(
            conv3(planes, planes, 1, ConvInit::KaimingFanOut),
            plan,
            vb.pp("conv2"),
        )?;
        let bn2 = norm::batch_norm(planes, plan.kernels(), vb.pp("bn2"))?;
        let downsample = if stride != 1 || inplanes != planes {
            let spec = ConvSpec {
                in_channels: inplanes,
                out_channels: planes,
                kernel: 1,
                stride,
                padding: 0,
                bias: false,
                init: ConvInit::KaimingFanOut,
            };
            let vb = vb.pp("downsample");
            Some((
                Conv::new(spec, plan, vb.pp(0))?,
                norm::batch_norm(planes, plan.kernels(), vb.pp(1))?,
            ))
        } else {
            None
        };
        Ok(BasicBlock {
            conv1,
            bn1,
            conv2,
            bn2,
            downsample,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.conv1.forward(xs, taps)?;
        let ys = self.bn1.forward_relu_t(&ys, train)?;
        self.conv1.emit(&ys, taps);
        let ys = self.conv2.forward(&ys, taps)?;
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward_t(&conv.forward(xs, taps)?, train)?,
            None => xs.clone(),
        };
        let out = self.bn2.forward_add_relu_t(&ys, &identity, train)?;
        self.conv2.emit(&out, taps);
        if let Some((conv, _)) = &self.downsample {
            conv.emit(&out, taps);
        }
        Ok(out)
    }
}

/// ResNet-18.
pub(crate) struct ResNet18 {
    conv1: Conv,
    bn1: Norm,
    layers: Vec<BasicBlock>,
    fc: Dense,
}

impl ResNet18 {
    pub(crate) fn new(
        in_channels: usize,
        num_classes: usize,
        width: f64,
        stem: Stem,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<ResNet18> {
        let planes = PLANES.map(|p| layers::scaled(p, width));
        let first = match stem {
            Stem::Cifar => conv3(in_channels, planes[0], 1, ConvInit::TorchDefault),
            Stem::Imagenet => ConvSpec {
                in_channels,
                out_channels: planes[0],
                kernel: 7,
                stride: 2,
                padding: 3,
                bias: false,
                init: ConvInit::KaimingFanOut,
            },
        };
        let conv1 = Conv::new(first, plan, vb.pp("conv1"))?;
        let bn1 = norm::batch_norm(planes[0], plan.kernels(), vb.pp("bn1"))?;
        let mut blocks = Vec::with_capacity(8);
        let mut inplanes = planes[0];
        for (i, &p) in planes.iter().enumerate() {
            let stride = if i == 0 { 1 } else { 2 };
            let vb = vb.pp(format!("layer{}", i + 1));
            blocks.push(BasicBlock::new(inplanes, p, stride, plan, vb.pp(0))?);
            blocks.push(BasicBlock::new(p, p, 1, plan, vb.pp(1))?);
            inplanes = p;
        }
        let fc = layers::linear(
            inplanes,
            num_classes,
            LinearInit::TorchDefault,
            plan.kernels(),
            vb.pp("fc"),
        )?;
        Ok(ResNet18 {
            conv1,
            bn1,
            layers: blocks,
            fc,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.conv1.forward(xs, taps)?;
        let ys = self.bn1.forward_relu_t(&ys, train)?;
        self.conv1.emit(&ys, taps);
        let mut ys = kernels::max_pool2d(&ys, 3, 2, 1)?;
        for block in &self.layers {
            ys = block.forward(&ys, train, taps)?;
        }
        let ys = kernels::adaptive_avg_pool2d(&ys, 1, 1)?.flatten_from(1)?;
        self.fc.forward(&ys)
    }
}
