//! ResNet-18 and ResNet-50 as torchvision defines them (basic blocks of two 3x3 convs;
//! bottlenecks of 1x1, 3x3 and 1x1 convs four times wider out, the stride on the 3x3), with
//! the reference's CIFAR stem by default: `conv1`
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

/// A ResNet's depth: its blocks and how many of each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Two basic blocks a stage.
    Eighteen,
    /// 3, 4, 6 and 3 bottlenecks.
    Fifty,
}

impl Depth {
    fn blocks(self) -> [usize; 4] {
        match self {
            Depth::Eighteen => [2, 2, 2, 2],
            Depth::Fifty => [3, 4, 6, 3],
        }
    }

    /// How much wider a block's output is than its planes.
    fn expansion(self) -> usize {
        match self {
            Depth::Eighteen => 1,
            Depth::Fifty => 4,
        }
    }
}

/// Every conv of the ResNet of `depth`, in forward order.
pub(crate) fn conv_names(depth: Depth) -> Vec<String> {
    let mut names = vec!["conv1".to_string()];
    let convs: &[&str] = match depth {
        Depth::Eighteen => &["conv1", "conv2"],
        Depth::Fifty => &["conv1", "conv2", "conv3"],
    };
    for (layer, &count) in depth.blocks().iter().enumerate() {
        for block in 0..count {
            let p = format!("layer{}.{block}", layer + 1);
            names.extend(convs.iter().map(|c| format!("{p}.{c}")));
            // The first block of a stage changes the shape, except ResNet-18's first.
            if block == 0 && (layer > 0 || depth == Depth::Fifty) {
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
        let downsample = downsample(inplanes, planes, stride, plan, vb)?;
        Ok(BasicBlock {
            conv1,
            bn1,
            conv2,
            bn2,
            downsample,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.conv1.forward_bn_relu(xs, &self.bn1, train, taps)?;
        let ys = self.conv2.forward(&ys, taps)?;
        residual(
            &ys,
            xs,
            (&self.conv2, &self.bn2),
            &self.downsample,
            train,
            taps,
        )
    }
}

/// A block's end: its last conv's output `ys` through that conv's batch norm, plus the
/// shortcut of the block's input `xs` (projected where the shape changes), then the ReLU.
/// The last conv and the projection both emit the block's output (TDANN's unit).
fn residual(
    ys: &Tensor,
    xs: &Tensor,
    (last, norm): (&Conv, &Norm),
    downsample: &Option<(Conv, Norm)>,
    train: bool,
    taps: &mut TapSink,
) -> Result<Tensor> {
    let identity = match downsample {
        Some((conv, bn)) => bn.forward_t(&conv.forward(xs, taps)?, train)?,
        None => xs.clone(),
    };
    let out = norm.forward_add_relu_t(ys, &identity, train)?;
    last.emit(&out, taps);
    if let Some((conv, _)) = downsample {
        conv.emit(&out, taps);
    }
    Ok(out)
}

/// The 1x1 projection of a block whose shape changes.
fn downsample(
    inplanes: usize,
    out: usize,
    stride: usize,
    plan: &mut TapPlan,
    vb: VarBuilder,
) -> Result<Option<(Conv, Norm)>> {
    if stride == 1 && inplanes == out {
        return Ok(None);
    }
    let spec = ConvSpec {
        in_channels: inplanes,
        out_channels: out,
        kernel: 1,
        stride,
        padding: 0,
        bias: false,
        init: ConvInit::KaimingFanOut,
    };
    let vb = vb.pp("downsample");
    Ok(Some((
        Conv::new(spec, plan, vb.pp(0))?,
        norm::batch_norm(out, plan.kernels(), vb.pp(1))?,
    )))
}

/// torchvision's `Bottleneck` (v1.5: the stride on the 3x3).
struct Bottleneck {
    conv1: Conv,
    bn1: Norm,
    conv2: Conv,
    bn2: Norm,
    conv3: Conv,
    bn3: Norm,
    downsample: Option<(Conv, Norm)>,
}

impl Bottleneck {
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<Bottleneck> {
        let out = planes * Depth::Fifty.expansion();
        let one = |cin, cout| ConvSpec {
            in_channels: cin,
            out_channels: cout,
            kernel: 1,
            stride: 1,
            padding: 0,
            bias: false,
            init: ConvInit::KaimingFanOut,
        };
        let conv1 = Conv::new(one(inplanes, planes), plan, vb.pp("conv1"))?;
        let bn1 = norm::batch_norm(planes, plan.kernels(), vb.pp("bn1"))?;
        let conv2 = Conv::new(
            conv3(planes, planes, stride, ConvInit::KaimingFanOut),
            plan,
            vb.pp("conv2"),
        )?;
        let bn2 = norm::batch_norm(planes, plan.kernels(), vb.pp("bn2"))?;
        let conv3 = Conv::new(one(planes, out), plan, vb.pp("conv3"))?;
        let bn3 = norm::batch_norm(out, plan.kernels(), vb.pp("bn3"))?;
        Ok(Bottleneck {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            downsample: downsample(inplanes, out, stride, plan, vb)?,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.conv1.forward_bn_relu(xs, &self.bn1, train, taps)?;
        let ys = self.conv2.forward_bn_relu(&ys, &self.bn2, train, taps)?;
        let ys = self.conv3.forward(&ys, taps)?;
        residual(
            &ys,
            xs,
            (&self.conv3, &self.bn3),
            &self.downsample,
            train,
            taps,
        )
    }
}

/// A residual block of either kind.
enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl Block {
    fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        match self {
            Block::Basic(b) => b.forward(xs, train, taps),
            Block::Bottleneck(b) => b.forward(xs, train, taps),
        }
    }
}

/// ResNet-18 or ResNet-50.
pub(crate) struct ResNet {
    conv1: Conv,
    bn1: Norm,
    layers: Vec<Block>,
    fc: Dense,
}

impl ResNet {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        depth: Depth,
        in_channels: usize,
        num_classes: usize,
        width: f64,
        stem: Stem,
        plan: &mut TapPlan,
        vb: VarBuilder,
    ) -> Result<ResNet> {
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
        let mut blocks = Vec::new();
        let mut inplanes = planes[0];
        for (i, (&p, &count)) in planes.iter().zip(&depth.blocks()).enumerate() {
            let vb = vb.pp(format!("layer{}", i + 1));
            for b in 0..count {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let vb = vb.pp(b);
                blocks.push(match depth {
                    Depth::Eighteen => {
                        Block::Basic(BasicBlock::new(inplanes, p, stride, plan, vb)?)
                    }
                    Depth::Fifty => {
                        Block::Bottleneck(Bottleneck::new(inplanes, p, stride, plan, vb)?)
                    }
                });
                inplanes = p * depth.expansion();
            }
        }
        let fc = layers::linear(
            inplanes,
            num_classes,
            LinearInit::TorchDefault,
            plan.kernels(),
            vb.pp("fc"),
        )?;
        Ok(ResNet {
            conv1,
            bn1,
            layers: blocks,
            fc,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor, train: bool, taps: &mut TapSink) -> Result<Tensor> {
        let ys = self.conv1.forward_bn_relu(xs, &self.bn1, train, taps)?;
        let mut ys = kernels::max_pool2d(&ys, 3, 2, 1)?;
        for block in &self.layers {
            ys = block.forward(&ys, train, taps)?;
        }
        let ys = kernels::adaptive_avg_pool2d(&ys, 1, 1)?.flatten_from(1)?;
        self.fc.forward(&ys)
    }
}
