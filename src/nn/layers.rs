//! Building blocks shared by the three models: tapped convs, batch norm, linear layers,
//! seeded dropout, the width multiplier and the tap plan.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::{Conv2d, Conv2dConfig, Init, Linear, VarBuilder};

use crate::config::TapPoint;
use crate::kernels::{self, Kernels};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `c * width` rounded to the nearest integer (halves away from zero), at least 1; width 1
/// keeps torchvision's counts exactly.
pub(crate) fn scaled(channels: usize, width: f64) -> usize {
    ((channels as f64 * width).round() as usize).max(1)
}

/// How a conv's weight is initialised (torchvision's choices).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConvInit {
    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")` (ResNet, VGG).
    KaimingFanOut,
    /// `kaiming_normal_()` with its defaults, fan in (DenseNet).
    KaimingFanIn,
    /// PyTorch's default for a fresh `nn.Conv2d` (`kaiming_uniform_(a=sqrt(5))`, i.e.
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`): the reference's replaced ResNet stem.
    TorchDefault,
}

impl ConvInit {
    fn hint(self, fan_in: usize) -> Init {
        let kaiming = |fan| Init::Kaiming {
            dist: NormalOrUniform::Normal,
            fan,
            non_linearity: NonLinearity::ReLU,
        };
        match self {
            ConvInit::KaimingFanOut => kaiming(FanInOut::FanOut),
            ConvInit::KaimingFanIn => kaiming(FanInOut::FanIn),
            ConvInit::TorchDefault => torch_default_uniform(fan_in),
        }
    }
}

/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`: PyTorch's default for conv and linear weights
/// and biases.
pub(crate) fn torch_default_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// The convs to tap, in output order, and what the model learns about them while built;
/// also the kernels every layer is built on.
pub(crate) struct TapPlan {
    /// Prefix of the model's own `VarBuilder`, stripped from var paths to get conv names.
    root: String,
    /// Each tap's name, and its output channels once its conv is built.
    taps: Vec<(String, Option<usize>)>,
    /// Where every tap is read.
    point: TapPoint,
    kernels: Kernels,
}

impl TapPlan {
    pub(crate) fn new(
        root: String,
        names: Vec<String>,
        point: TapPoint,
        kernels: Kernels,
    ) -> TapPlan {
        TapPlan {
            root,
            taps: names.into_iter().map(|n| (n, None)).collect(),
            point,
            kernels,
        }
    }

    /// The conv name of a var path prefix (`layer1.1.conv2`), relative to the model root.
    fn conv_name(&self, vb: &VarBuilder) -> String {
        let path = vb.prefix();
        if self.root.is_empty() {
            return path;
        }
        path.strip_prefix(&self.root)
            .map(|p| p.trim_start_matches('.').to_string())
            .unwrap_or(path)
    }

    fn slot(&mut self, name: &str, out_channels: usize) -> Option<usize> {
        let slot = self.taps.iter().position(|(n, _)| n == name)?;
        self.taps[slot].1 = Some(out_channels);
        Some(slot)
    }

    pub(crate) fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The taps, each with its channels; `Err` names one whose conv was never built.
    pub(crate) fn into_taps(self) -> std::result::Result<Vec<super::Tap>, String> {
        self.taps
            .into_iter()
            .map(|(name, channels)| match channels {
                Some(channels) => Ok(super::Tap { name, channels }),
                None => Err(name),
            })
            .collect()
    }
}

/// Tapped outputs collected during one forward pass.
pub(crate) struct TapSink(Vec<Option<Tensor>>);

impl TapSink {
    pub(crate) fn new(len: usize) -> TapSink {
        TapSink(vec![None; len])
    }

    pub(crate) fn finish(self) -> Result<Vec<Tensor>> {
        self.0
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.ok_or_else(|| candle_core::Error::Msg(format!("tap {i} was never reached")))
            })
            .collect()
    }
}

/// A bias-free or biased 2D conv whose output may be tapped.
pub(crate) struct Conv {
    conv: Conv2d,
    /// The tap's slot and where it is read, when this conv is tapped.
    tap: Option<(usize, TapPoint)>,
    kernels: Kernels,
}

/// Shape and init of a conv.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
    pub init: ConvInit,
}

impl Conv {
    pub(crate) fn new(spec: ConvSpec, plan: &mut TapPlan, vb: VarBuilder) -> Result<Conv> {
        let ConvSpec {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            bias,
            init,
        } = spec;
        let fan_in = in_channels * kernel * kernel;
        let weight = vb.get_with_hints(
            (out_channels, in_channels, kernel, kernel),
            "weight",
            init.hint(fan_in),
        )?;
        let bias = if bias {
            // torchvision zeroes conv biases (VGG); the reference's audio VGG stem too.
            Some(vb.get_with_hints(out_channels, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        let config = Conv2dConfig {
            padding,
            stride,
            dilation: 1,
            groups: 1,
            cudnn_fwd_algo: None,
        };
        let tap = plan
            .slot(&plan.conv_name(&vb), out_channels)
            .map(|slot| (slot, plan.point));
        Ok(Conv {
            conv: Conv2d::new(weight, bias, config),
            tap,
            kernels: plan.kernels,
        })
    }

    /// This conv, then `bn` and ReLU: the models' common unit, whose rectified output the
    /// conv emits (TDANN's unit).
    pub(crate) fn forward_bn_relu(
        &self,
        xs: &Tensor,
        bn: &super::norm::Norm,
        train: bool,
        taps: &mut TapSink,
    ) -> Result<Tensor> {
        let ys = bn.forward_relu_t(&self.forward(xs, taps)?, train)?;
        self.emit(&ys, taps);
        Ok(ys)
    }

    pub(crate) fn forward(&self, xs: &Tensor, taps: &mut TapSink) -> Result<Tensor> {
        let ys = match self.kernels {
            Kernels::Candle => self.conv.forward(&self.align_for_backward(xs)?)?,
            Kernels::Fast => self.own_conv(xs, kernels::conv2d)?,
            Kernels::Unfold => self.own_conv(xs, kernels::conv2d_unfold)?,
        };
        super::flops::add_macs(|| {
            // Each output element is a dot product over one filter: in_channels x k x k.
            let weight = self.conv.weight();
            let per_output = weight.elem_count() / weight.dim(0).unwrap_or(1).max(1);
            (ys.elem_count() * per_output) as u64
        });
        if let Some((slot, TapPoint::Conv)) = self.tap {
            taps.0[slot] = Some(ys.clone());
        }
        Ok(ys)
    }

    /// Records `unit_output`, what this conv's unit emits, when the conv is tapped at
    /// its block (see [`TapPoint::Block`]); the models call it where that output is.
    pub(crate) fn emit(&self, unit_output: &Tensor, taps: &mut TapSink) {
        if let Some((slot, TapPoint::Block)) = self.tap {
            taps.0[slot] = Some(unit_output.clone());
        }
    }
}

impl Conv {
    /// One of this crate's convs (whose backward needs no alignment), which leave the
    /// bias out.
    fn own_conv(
        &self,
        xs: &Tensor,
        conv: fn(&Tensor, &Tensor, usize, usize) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let config = self.conv.config();
        let ys = conv(xs, self.conv.weight(), config.stride, config.padding)?;
        match self.conv.bias() {
            Some(bias) => ys.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?),
            None => Ok(ys),
        }
    }

    /// candle 0.11's conv2d backward derives the transposed conv's `output_padding` from
    /// the height alone and applies it to the width too, so a strided conv whose height
    /// and width leave different remainders (a 64x101 spectrogram) gets an input gradient
    /// of the wrong width. Zero rows or columns appended past the last one the kernel
    /// reaches leave the output unchanged and make both remainders equal.
    fn align_for_backward(&self, xs: &Tensor) -> Result<Tensor> {
        let config = self.conv.config();
        let stride = config.stride;
        if stride == 1 {
            return Ok(xs.clone());
        }
        let (_, _, h, w) = xs.dims4()?;
        let k = self.conv.weight().dim(2)?;
        let reach = |len: usize| -> usize {
            // Input positions the transposed conv rebuilds from the output size.
            let out = (len + 2 * config.padding).saturating_sub(k) / stride + 1;
            (out - 1) * stride + k - 2 * config.padding
        };
        let (extra_h, extra_w) = (h - reach(h), w - reach(w));
        match extra_h.cmp(&extra_w) {
            std::cmp::Ordering::Equal => Ok(xs.clone()),
            std::cmp::Ordering::Greater => xs.pad_with_zeros(3, 0, extra_h - extra_w),
            std::cmp::Ordering::Less => xs.pad_with_zeros(2, 0, extra_w - extra_h),
        }
    }
}

/// How a linear layer is initialised.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinearInit {
    /// PyTorch's default: weight and bias `U(-1/sqrt(in), 1/sqrt(in))` (ResNet's `fc`).
    TorchDefault,
    /// Default weight, zero bias (DenseNet's classifier).
    ZeroBias,
    /// `N(0, 0.01)` weight, zero bias (VGG's classifier).
    Normal001,
}

/// A linear layer on either kernel set: candle-nn's `Linear`, or on the fast kernels the
/// product `x W^T` as this crate's op (its weight gradient lands in the weight's own
/// layout).
pub(crate) struct Dense {
    linear: Linear,
    kernels: Kernels,
}

impl Dense {
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // Each output element is a dot product over in_features.
        super::flops::add_macs(|| {
            let weight = self.linear.weight();
            let in_features = weight.dim(1).unwrap_or(1).max(1);
            (xs.elem_count() / in_features * weight.elem_count()) as u64
        });
        let fast = self.kernels.on(xs.device()) == Kernels::Fast
            && xs.dtype() == candle_core::DType::F32
            && xs.rank() == 2;
        if fast {
            kernels::linear(xs, self.linear.weight(), self.linear.bias())
        } else {
            self.linear.forward(xs)
        }
    }
}

pub(crate) fn linear(
    in_features: usize,
    out_features: usize,
    init: LinearInit,
    kernels: Kernels,
    vb: VarBuilder,
) -> Result<Dense> {
    let uniform = torch_default_uniform(in_features);
    let (w_init, b_init) = match init {
        LinearInit::TorchDefault => (uniform, uniform),
        LinearInit::ZeroBias => (uniform, Init::Const(0.0)),
        LinearInit::Normal001 => (
            Init::Randn {
                mean: 0.0,
                stdev: 0.01,
            },
            Init::Const(0.0),
        ),
    };
    let weight = vb.get_with_hints((out_features, in_features), "weight", w_init)?;
    let bias = vb.get_with_hints(out_features, "bias", b_init)?;
    Ok(Dense {
        linear: Linear::new(weight, Some(bias)),
        kernels,
    })
}

/// Inverted dropout (`torch.nn.Dropout`) drawing its masks from a seeded generator, since
/// candle's CPU generator cannot be seeded.
pub(crate) struct Dropout {
    p: f64,
    rng: Mutex<ChaCha8Rng>,
    /// Whether masks are kept ([`Dropout::record`]): only `topo trace` asks, so a
    /// training step neither locks nor keeps anything for it.
    recording: AtomicBool,
    /// The masks drawn since [`Dropout::begin`], in order, when recording: `topo trace`
    /// writes them so another framework can apply the same ones.
    drawn: Mutex<Vec<Tensor>>,
}

impl Dropout {
    pub(crate) fn new(p: f64) -> Dropout {
        Dropout {
            p,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
            recording: AtomicBool::new(false),
            drawn: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn reseed(&self, seed: u64) {
        let mut rng = crate::sync::lock(&self.rng);
        *rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Keeps the masks of every forward pass from now on, until the next one begins.
    pub(crate) fn record(&self) {
        self.recording.store(true, Ordering::Relaxed);
    }

    fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// Forgets the masks of the previous forward pass.
    pub(crate) fn begin(&self) {
        if self.recording() {
            crate::sync::lock(&self.drawn).clear();
        }
    }

    /// The masks (`0` or `1 / (1 - p)`) drawn since [`Dropout::begin`].
    pub(crate) fn masks(&self) -> Vec<Tensor> {
        crate::sync::lock(&self.drawn).clone()
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        let keep = 1.0 - self.p;
        let mask: Vec<f32> = {
            let mut rng = crate::sync::lock(&self.rng);
            (0..xs.elem_count())
                .map(|_| {
                    if rng.random::<f64>() < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        if self.recording() {
            // A handle, not a copy: the mask is kept until the next forward pass.
            crate::sync::lock(&self.drawn).push(mask.clone());
        }
        xs * mask
    }
}
