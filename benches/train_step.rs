//! One configuration of the side-by-side training-speed benchmark, on topo's engine:
//! the same arguments and the same one-line JSON as `bench/pytorch_reference.py`, which
//! `bench/compare.py` (`just bench`) runs next to it.
//!
//! Train step = forward, cross-entropy (+ lambda 1 x a topographic loss on the model's
//! default taps: the paper's on the 2D grid, TDANN's with each layer one neighbourhood on
//! the 2D grid, or TopoLoss's with factor 2; summed over layers, as training combines them),
//! backward, SGD with momentum 0.9 and weight decay 5e-4; eval
//! step = forward in evaluation mode. Random inputs and labels made once; the median of
//! `--steps` timed steps after `--warmup` untimed ones. Peak memory is the process's
//! peak resident set (VmHWM), so run one configuration per process.
//!
//! On `--device cuda` (a build with `--features cuda`) each step ends with a device
//! synchronisation, so its time is the GPU's; peak memory stays the host's.
//!
//! `cargo bench --bench train_step -- --model resnet18 --batch 32 --mode train --topo grid2d`

use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use clap::{Parser, ValueEnum};
use topo::cli::{DeviceChoice, KernelsArg};
use topo::config::{ModelKind, ModelSpec};
use topo::kernels::Kernels;
use topo::nn::{self, TopoModel};
use topo::runner::workers::on_pool;
use topo::topography::{
    DEFAULT_EPS, LayerLosses, LayerReduction, Layout, Neighbourhood, Norm, StepInputs, Tdann,
    TopoLoss, TopographicLoss, TopographicMethod, positions,
};
use topo::train::optim::{Sgd, SgdConfig, trainable_vars};

/// As in the `topo` binary: training reuses its large buffers.
#[global_allocator]
static ALLOC: topo::kernels::Recycler = topo::kernels::Recycler::new();

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Model {
    Resnet18,
    #[value(name = "vgg16_bn")]
    Vgg16Bn,
    Densenet121,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Train,
    Eval,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Topo {
    None,
    Tdann,
    Topoloss,
    Grid2d,
}

/// Where the steps run: on a thread of the rayon pool, as `topo run` trains, or on the
/// main thread beside it, as earlier versions did.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Caller {
    Worker,
    Outside,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    model: Model,
    #[arg(long)]
    batch: usize,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, value_enum, default_value = "none")]
    topo: Topo,
    /// Run the steps on a pool thread (as `topo run` does) or beside the pool.
    #[arg(long, value_enum, default_value = "worker")]
    caller: Caller,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Threads of the rayon pool candle and the fast kernels use (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value_t = 10)]
    classes: usize,
    #[arg(long, default_value_t = 32)]
    size: usize,
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Channel width multiplier (`resnet18 { width: 0.125 }` is the quickstart's).
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// torchvision's ImageNet stem (ResNet and DenseNet) instead of the CIFAR one.
    #[arg(long)]
    imagenet_stem: bool,
    #[arg(long, value_enum, default_value_t = KernelsArg::Fast)]
    kernels: KernelsArg,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Also print, to stderr, the wall time of every fast op and of the step's phases
    /// over the timed steps (`topo::kernels::profile`).
    #[arg(long)]
    profile: bool,
    /// Cargo passes `--bench` to bench targets; accepted and ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    // As the `topo` binary does (see topo::kernels::threads).
    topo::kernels::threads::candle_elementwise_on_caller();
    let args = Args::parse();
    if args.steps == 0 || args.batch == 0 {
        bail!("--steps and --batch must be positive");
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("rayon pool")?;

    let device = args.device.device()?;
    let kind = match args.model {
        Model::Resnet18 => ModelKind::Resnet18,
        Model::Vgg16Bn => ModelKind::Vgg16Bn,
        Model::Densenet121 => ModelKind::Densenet121,
    };
    let spec = ModelSpec {
        kind,
        width: args.width,
        taps: None,
        stem: if args.imagenet_stem {
            topo::config::Stem::Imagenet
        } else {
            topo::config::Stem::Cifar
        },
        init: None,
    };
    let varmap = VarMap::new();
    let vb = nn::seeded_var_builder(&varmap, 0, DType::F32, &device);
    let kernels = Kernels::from(args.kernels).on(&device);
    let model = nn::build_with(
        &spec,
        args.channels,
        args.classes,
        vb,
        topo::config::TapPoint::Conv,
        kernels,
    )?;
    let grid = || -> anyhow::Result<Vec<_>> {
        Ok(model
            .tap_channels()
            .iter()
            .map(|&c| positions(Layout::Grid, 2, c))
            .collect::<Result<Vec<_>, _>>()?)
    };
    let method: Option<Box<dyn TopographicMethod>> = match args.topo {
        Topo::None => None,
        Topo::Grid2d => Some(Box::new(TopographicLoss::from_positions(
            &grid()?,
            Norm::Euclidean,
            LayerReduction::Sum,
            DEFAULT_EPS,
            &device,
            DType::F32,
        )?)),
        Topo::Tdann => Some(Box::new(Tdann::new(
            &grid()?,
            Norm::Euclidean,
            Neighbourhood::Layer,
            1,
            0,
        )?)),
        Topo::Topoloss => {
            let vars = topo::sync::lock(varmap.data());
            let weights = model
                .tap_names()
                .iter()
                .map(|name| {
                    let var = vars
                        .get(&format!("{name}.weight"))
                        .with_context(|| format!("no weight for tap {name}"))?;
                    Ok((name.clone(), var.clone()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(Box::new(TopoLoss::new(&weights, 2.0)?))
        }
    };
    // Layers combined as training combines them.
    let loss = method
        .map(|m| LayerLosses::new(m, LayerReduction::Sum, None))
        .transpose()?;
    let mut sgd = Sgd::new(
        trainable_vars(&varmap),
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
        },
    );
    let xs = Tensor::randn(
        0f32,
        1.0,
        (args.batch, args.channels, args.size, args.size),
        &device,
    )?;
    let labels: Vec<u32> = (0..args.batch)
        .map(|i| (i * 7 % args.classes) as u32)
        .collect();
    let labels = Tensor::from_vec(labels, args.batch, &device)?;

    if args.profile {
        topo::kernels::profile::enable();
    }
    let mut run = || -> anyhow::Result<Vec<f64>> {
        let mut times = Vec::with_capacity(args.steps);
        for step in 0..args.warmup + args.steps {
            if step == args.warmup {
                // The warm-up's ops stay out of the profile.
                topo::kernels::profile::take();
            }
            let t0 = Instant::now();
            match args.mode {
                Mode::Train => train_step(model.as_ref(), loss.as_ref(), &mut sgd, &xs, &labels)?,
                Mode::Eval => {
                    let out = model.forward_t(&xs, false)?;
                    // Read the logits back so the step is really done.
                    out.logits.sum_all()?.to_scalar::<f32>()?;
                }
            }
            // A GPU queues its work: the step is done when the device says so.
            device.synchronize()?;
            if step >= args.warmup {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        Ok(times)
    };
    let mut times = match args.caller {
        Caller::Worker => on_pool(run)?,
        Caller::Outside => run()?,
    };
    if args.profile {
        eprintln!();
        print_profile(&times);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let line = serde_json::json!({
        "framework": "topo",
        "version": format!("candle {}", topo::results::Versions::of_this_build().candle),
        "kernels": kernels,
        "device": args.device.to_possible_value().map(|v| v.get_name().to_string()),
        "model": args.model.to_possible_value().map(|v| v.get_name().to_string()),
        "batch": args.batch,
        "mode": args.mode.to_possible_value().map(|v| v.get_name().to_string()),
        "topo": args.topo.to_possible_value().map(|v| v.get_name().to_string()),
        "width": args.width,
        "size": args.size,
        "channels": args.channels,
        "threads": threads,
        "caller": args.caller.to_possible_value().map(|v| v.get_name().to_string()),
        "step_ms": median * 1e3,
        "img_per_s": args.batch as f64 / median,
        "peak_rss_mb": peak_rss_mb(),
        "candle_threads": std::env::var("CANDLE_NUM_THREADS").ok(),
        // The kernels' instruction set: AVX2 on an AVX-512 CPU in a build without `avx512`.
        "isa": topo::results::Isa::of_this_cpu().name(),
    });
    println!("{line}");
    Ok(())
}

fn train_step(
    model: &dyn TopoModel,
    loss: Option<&LayerLosses>,
    sgd: &mut Sgd,
    xs: &Tensor,
    labels: &Tensor,
) -> anyhow::Result<()> {
    let forward = topo::kernels::profile::scope("step: forward and loss");
    let out = model.forward_t(xs, true)?;
    let ce = candle_nn::loss::cross_entropy(&out.logits, labels)?;
    let total = match loss {
        Some(l) => {
            let inputs = StepInputs {
                taps: &out.taps,
                step: 0,
            };
            (&ce + l.forward(&inputs)?.total)?
        }
        None => ce,
    };
    drop(forward);
    let backward = topo::kernels::profile::scope("step: backward");
    let grads = total.backward()?;
    drop(backward);
    let _update = topo::kernels::profile::scope("step: sgd");
    sgd.step(&grads)?;
    Ok(())
}

/// The profile of the timed steps, per step: the phases, every op by time, then each op
/// by operand shapes (the model's layers), largest first.
fn print_profile(times: &[f64]) {
    let totals = topo::kernels::profile::take();
    let steps = times.len().max(1) as f64;
    let step_ms = times.iter().sum::<f64>() * 1e3 / steps;
    let mut by_name = std::collections::BTreeMap::<&str, topo::kernels::profile::Total>::new();
    for ((name, _), total) in &totals {
        let sum = by_name.entry(name).or_default();
        sum.time += total.time;
        sum.calls += total.calls;
    }
    let (phases, mut ops): (Vec<_>, Vec<_>) = by_name
        .into_iter()
        .partition(|(name, _)| name.starts_with("step: "));
    ops.sort_by_key(|(_, total)| std::cmp::Reverse(total.time));
    let line = |label: &str, total: &topo::kernels::profile::Total| {
        let ms = total.time.as_secs_f64() * 1e3 / steps;
        eprintln!(
            "  {label:<60} {ms:8.3} ms {:5.1}%  {:5.1} calls",
            100.0 * ms / step_ms,
            total.calls as f64 / steps
        );
    };
    eprintln!("per step (mean of {} steps): {step_ms:.2} ms", times.len());
    for (name, total) in phases.iter().chain(&ops) {
        line(name, total);
    }
    let ops_ms: f64 = ops.iter().map(|(_, t)| t.time.as_secs_f64()).sum::<f64>() * 1e3 / steps;
    eprintln!(
        "  {:<60} {:8.3} ms {:5.1}%  (candle's ops, autograd, allocation)",
        "outside the fast ops",
        step_ms - ops_ms,
        100.0 * (step_ms - ops_ms) / step_ms
    );
    eprintln!("by operand shapes:");
    let mut shaped: Vec<_> = totals
        .iter()
        .filter(|((name, shapes), _)| !name.starts_with("step: ") && !shapes.is_empty())
        .collect();
    shaped.sort_by_key(|(_, total)| std::cmp::Reverse(total.time));
    for ((name, shapes), total) in shaped.iter().take(40) {
        line(&format!("{name} {shapes}"), total);
    }
}

/// Peak resident set of this process in MB, from `/proc/self/status`.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
