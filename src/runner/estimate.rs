//! What a plan will cost before it runs (`topo plan FILE --estimate`): per data set and
//! model, the forward-backward FLOPs of one example, this machine's throughput (from runs
//! already done, else a few seeded steps on synthetic inputs of the data set's shape,
//! cached), and the core-hours of the pending runs, in total and per axis.
//!
//! FLOPs count convolutions and linear layers (2 per multiply-add), the backward as twice
//! the forward. Times count training and evaluation at the measured rates; loading,
//! pruning and the topographic loss (a few percent of a step) are left out.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::Batch;
use crate::data::nominal::Nominal;
use crate::kernels::Kernels;
use crate::nn::flops::count_macs;
use crate::plan::RunConfig;
use crate::results::{
    EpochRecord, ExperimentDir, RunState, SplitKind, read_json, read_jsonl, write_json,
};
use crate::train::checkpoint::read_loop_state;
use crate::train::optim::{Sgd, SgdConfig, trainable_vars};
use crate::train::{EngineError, build_model_for, plain_step};

use super::workers::{available_cores, on_pool};

/// The largest training batch measured.
const MEASURE_BATCH: usize = 32;

/// Where a throughput came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The median over this many finished runs' epochs.
    Recorded { runs: usize },
    /// Seeded steps on this machine, now or earlier (the cache).
    Measured { cached: bool },
}

/// Images per second, training and evaluating.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Throughput {
    pub train: f64,
    pub eval: f64,
}

/// One data set and model of the plan.
#[derive(Debug, Clone)]
pub struct Row {
    pub dataset: String,
    pub model: String,
    pub input: [usize; 3],
    /// Forward and backward, one example.
    pub gflops: f64,
    pub throughput: Throughput,
    pub source: Source,
    pub pending: usize,
    pub epochs_left: u64,
    pub core_hours: f64,
}

/// The whole estimate.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub rows: Vec<Row>,
    pub cores: usize,
    pub core_hours: f64,
    /// Axis name, then each value's core-hours, in plan order.
    pub per_axis: Vec<(&'static str, Vec<(String, f64)>)>,
}

/// The estimate of `runs`' pending part; `cache` holds measured throughputs.
pub fn estimate(
    runs: &[&RunConfig],
    dir: &ExperimentDir,
    cache: &Path,
    retry_failed: bool,
) -> Result<Estimate, EngineError> {
    let cores = available_cores();
    let mut cached: BTreeMap<String, Throughput> = if cache.exists() {
        read_json(cache)?
    } else {
        BTreeMap::new()
    };
    let mut groups: Vec<(String, String, Vec<&RunConfig>)> = Vec::new();
    for run in runs {
        let (d, m) = (&run.names.dataset, &run.names.model);
        match groups.iter_mut().find(|(gd, gm, _)| gd == d && gm == m) {
            Some(g) => g.2.push(run),
            None => groups.push((d.clone(), m.clone(), vec![run])),
        }
    }
    let mut rows = Vec::new();
    let mut run_hours: Vec<(&RunConfig, f64)> = Vec::new();
    for (dataset, model, members) in groups {
        let first = members[0];
        let shape = shape_of(first);
        let gflops = forward_backward_gflops(first, &shape)?;
        let recorded = recorded_throughput(&members, dir);
        let (throughput, source) = match recorded {
            Some((t, runs)) => (t, Source::Recorded { runs }),
            None => {
                let key = cache_key(first, &shape, cores);
                match cached.get(&key) {
                    Some(t) => (*t, Source::Measured { cached: true }),
                    None => {
                        crate::log::log(&format!(
                            "measuring {model} on {dataset}'s shape {:?} (a few steps, cached)",
                            shape.input
                        ));
                        let t = measure(first, &shape)?;
                        cached.insert(key, t);
                        write_json(cache, &cached)?;
                        (t, Source::Measured { cached: false })
                    }
                }
            }
        };
        let mut pending = 0;
        let mut epochs = 0;
        let mut hours = 0.0;
        for run in &members {
            let Some(left) = epochs_left(run, dir, retry_failed) else {
                continue;
            };
            let seconds = left as f64
                * (shape.train as f64 / throughput.train
                    + shape.validation as f64 / throughput.eval)
                + shape.test as f64 / throughput.eval;
            let h = seconds / 3600.0 * cores as f64;
            pending += 1;
            epochs += left;
            hours += h;
            run_hours.push((run, h));
        }
        rows.push(Row {
            dataset,
            model,
            input: shape.input,
            gflops,
            throughput,
            source,
            pending,
            epochs_left: epochs,
            core_hours: hours,
        });
    }
    let axis = |name: &'static str, value: fn(&RunConfig) -> String| {
        let mut values: Vec<(String, f64)> = Vec::new();
        for (run, h) in &run_hours {
            let v = value(run);
            match values.iter_mut().find(|(x, _)| *x == v) {
                Some(entry) => entry.1 += h,
                None => values.push((v, *h)),
            }
        }
        (name, values)
    };
    let per_axis = vec![
        axis("dataset", |r| r.names.dataset.clone()),
        axis("model", |r| r.names.model.clone()),
        axis("topography", |r| r.names.topography.clone()),
        axis("lambda", |r| {
            r.objective
                .lambda()
                .map_or("none".into(), |l| l.to_string())
        }),
        axis("seed", |r| r.seed.to_string()),
    ];
    Ok(Estimate {
        core_hours: rows.iter().map(|r| r.core_hours).sum(),
        rows,
        cores,
        per_axis,
    })
}

/// The data set's split sizes and shape: read from its files when it is an image data
/// set that is here (a second), else the full set's nominal ones, cut to the limits.
fn shape_of(run: &RunConfig) -> Nominal {
    let nominal = Nominal::of(&run.dataset);
    // Decoded data sets are not decoded for an estimate: audio's sizes are nominal, an
    // image folder's come from its tree.
    if run.dataset.kind.is_decoded() || !run.dataset.root_or_default().exists() {
        return nominal;
    }
    match crate::data::load(&run.dataset, Path::new("")) {
        Ok(data) => Nominal {
            train: data.train.len(),
            validation: data.validation.len(),
            test: data.test.len(),
            ..nominal
        },
        // Unreadable here: `topo run`'s preflight says why; the estimate goes on.
        Err(_) => nominal,
    }
}

fn synthetic_batch(shape: &Nominal, batch: usize) -> Result<(Tensor, Tensor), EngineError> {
    let [c, h, w] = shape.input;
    let device = Device::Cpu;
    // Seeded, as the README says: the same inputs on every call and machine.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let values: Vec<f32> = (0..batch * c * h * w)
        .map(|_| rng.random_range(-1f32..1f32))
        .collect();
    let xs = Tensor::from_vec(values, (batch, c, h, w), &device)?;
    let labels: Vec<u32> = (0..batch).map(|i| (i % shape.classes) as u32).collect();
    Ok((xs, Tensor::new(labels, &device)?))
}

/// Forward multiply-adds of one example, times 2 (FLOPs) and 3 (forward and backward).
fn forward_backward_gflops(run: &RunConfig, shape: &Nominal) -> Result<f64, EngineError> {
    let (_, model) = build(run, shape)?;
    let (xs, _) = synthetic_batch(shape, 1)?;
    let (out, macs) = count_macs(|| model.forward_t(&xs, false));
    out?;
    Ok(6.0 * macs as f64 / 1e9)
}

/// The run's model, seeded, for `shape`'s inputs, on this crate's CPU kernels.
fn build(
    run: &RunConfig,
    shape: &Nominal,
) -> Result<(candle_nn::VarMap, Box<dyn crate::nn::TopoModel>), EngineError> {
    build_model_for(
        run,
        shape.input[0],
        shape.classes,
        &Device::Cpu,
        Kernels::Fast,
        DType::F32,
    )
}

/// Two timed training steps (after two warm-ups) and two timed evaluation passes, on this
/// machine's cores, at the run's batch sizes capped at [`MEASURE_BATCH`] and twice that:
/// a DenseNet step on 64x101 spectrograms at batch 128 would take a minute, and the rate
/// per image changes little above these sizes (if anything it rises: the estimate errs
/// long).
fn measure(run: &RunConfig, shape: &Nominal) -> Result<Throughput, EngineError> {
    on_pool(|| {
        let (varmap, model) = build(run, shape)?;
        let mut sgd = Sgd::new(
            trainable_vars(&varmap),
            SgdConfig::from(&run.training.optimizer),
        );
        let batch = run.training.batch_size.clamp(1, MEASURE_BATCH);
        let (inputs, labels) = synthetic_batch(shape, batch)?;
        let batch_of = Batch {
            inputs,
            labels,
            windows: None,
        };
        // The engine's own step, as a run takes it (the topographic term aside).
        let mut step = || plain_step(model.as_ref(), &mut sgd, &batch_of);
        // Two warm-ups: the first steps fill the allocator's and the kernels' caches.
        step()?;
        step()?;
        let t0 = Instant::now();
        for _ in 0..2 {
            step()?;
        }
        let train = 2.0 * batch as f64 / t0.elapsed().as_secs_f64();
        let eval_batch = run.training.eval_batch().clamp(1, 2 * MEASURE_BATCH);
        let (xs, _) = synthetic_batch(shape, eval_batch)?;
        model.forward_t(&xs, false)?;
        let t1 = Instant::now();
        for _ in 0..2 {
            model.forward_t(&xs, false)?;
        }
        let eval = 2.0 * eval_batch as f64 / t1.elapsed().as_secs_f64();
        Ok(Throughput { train, eval })
    })
}

/// The median training and validation rates over the epochs of `members` that are done.
fn recorded_throughput(members: &[&RunConfig], dir: &ExperimentDir) -> Option<(Throughput, usize)> {
    let mut train = Vec::new();
    let mut eval = Vec::new();
    let mut runs = 0;
    for run in members {
        let d = dir.run(&run.id);
        if d.state_on_disk() != RunState::Done {
            continue;
        }
        let Ok(records) = read_jsonl::<EpochRecord>(&d.metrics()) else {
            continue;
        };
        runs += 1;
        for r in records {
            match r.split {
                SplitKind::Train => train.push(r.images_per_second),
                SplitKind::Validation => eval.push(r.images_per_second),
                SplitKind::Test => {}
            }
        }
    }
    Some((
        Throughput {
            train: median(&mut train)?,
            eval: median(&mut eval)?,
        },
        runs,
    ))
}

fn median(xs: &mut [f64]) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().filter(|x| *x > 0.0)
}

/// Epochs still to train of a pending run; `None` when it is not pending (done, or
/// failed and not retried).
pub fn epochs_left(run: &RunConfig, dir: &ExperimentDir, retry_failed: bool) -> Option<u64> {
    let d = dir.run(&run.id);
    if !d.state_on_disk().is_pending(retry_failed) {
        return None;
    }
    // An unreadable checkpoint counts as none: the run starts over.
    let done = match read_loop_state(&d) {
        Ok(Some(state)) => state.epoch,
        Ok(None) | Err(_) => 0,
    };
    Some(u64::from(run.training.epochs.saturating_sub(done)))
}

/// What a measurement depends on: the model, the input, the batches, this machine's cores
/// and this build. Not the classes: the classifier is a sliver of the step, so CIFAR-10
/// and CIFAR-100 share one measurement.
fn cache_key(run: &RunConfig, shape: &Nominal, cores: usize) -> String {
    let model = serde_json::to_string(&run.model).unwrap_or_default();
    format!(
        "{model} input={:?} batch={} eval_batch={} cores={cores} topo={}",
        shape.input,
        run.training.batch_size.min(MEASURE_BATCH),
        run.training.eval_batch().min(2 * MEASURE_BATCH),
        env!("CARGO_PKG_VERSION")
    )
}
