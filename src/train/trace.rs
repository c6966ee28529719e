//! A run's first training steps with everything they compute written to disk (`topo
//! trace`), so that an independent implementation (`bench/steps.py`, in PyTorch) can
//! take the same steps from the same weights on the same batches and compare them number
//! for number.
//!
//! The steps are the engine's own: [`super::gradients`] then [`Sgd::step`], epoch by
//! epoch as `topo run` takes them (the epoch's learning rate, example order, augmentation
//! stream and dropout seed). What the other side cannot draw the same way is written
//! down: the exact inputs and labels after augmentation, VGG's dropout masks and TDANN's
//! neighbourhoods. Only the precision may differ from a run: float64 on candle's kernels
//! checks the arithmetic to rounding, float32 checks the kernels runs train with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use serde::Serialize;

use super::checkpoint::{save_tensors, weights};
use super::optim::{Sgd, SgdConfig, trainable_vars};
use super::{
    EngineError, StepAt, TrainEnv, begin_epoch, build_model_for, build_term, epoch_rate, gradients,
};
use crate::config::{Objective, PruneMethod, PruningSpec};
use crate::data::{Batch, Dataset, load as load_data};
use crate::kernels::Kernels;
use crate::plan::RunConfig;
use crate::results::{SplitKind, write_json};
use crate::topography::Norm;
use crate::train::layouts::layer_positions;
use crate::train::prune::prune_varmap;
use crate::train::stages::model_over;
use crate::train::{correct, example_logits};

/// How many steps to trace, in which precision.
#[derive(Debug, Clone, Copy)]
pub struct TraceOptions {
    pub steps: u32,
    pub dtype: DType,
}

/// `trace.json`: what the steps were taken with and what each measured.
#[derive(Serialize)]
struct TraceFile<'a> {
    /// The run, as `run.yaml` writes it.
    run: &'a RunConfig,
    /// `f32` or `f64`.
    dtype: &'static str,
    /// The kernels that ran, after `fast` becomes `unfold` on a GPU.
    kernels: Kernels,
    /// The data set's input channels and classes, which the model was built for.
    in_channels: usize,
    classes: usize,
    /// The tapped convs, in the order of the per-layer losses.
    taps: Vec<TapRecord>,
    /// How distances between positions are measured (topographic runs).
    norm: Option<Norm>,
    /// Each tapped layer's weight in the topographic loss, in tap order.
    layer_weights: Option<Vec<f64>>,
    steps: Vec<StepRecord>,
    /// The run's pruning points on the weights after the last step, tested on the whole
    /// test split (`test.safetensors`); each point's logits in `prune-NN.safetensors`.
    pruning: Vec<PruneRecord>,
}

/// One pruning point, as the engine's pruning stage takes it.
#[derive(Serialize)]
struct PruneRecord {
    method: PruneMethod,
    proportion: f64,
    /// Per tapped conv, in tap order: the channels zeroed.
    channels: Vec<Vec<usize>>,
    correct: usize,
    examples: usize,
}

#[derive(Serialize)]
struct TapRecord {
    name: String,
    channels: usize,
    /// Each channel's position (topographic runs): one row per channel.
    positions: Option<Vec<Vec<f64>>>,
}

/// One step, as the engine measured it; its tensors are in `step-NNNN.safetensors`.
#[derive(Serialize)]
struct StepRecord {
    /// 1-based, over the whole run.
    step: u64,
    /// 1-based.
    epoch: u32,
    lr: f64,
    examples: usize,
    ce: f64,
    /// The topographic loss, layers combined, before lambda.
    topo: Option<f64>,
    /// Each tapped layer's topographic loss, before its weight.
    topo_layers: Vec<f64>,
    /// The topographic term's weight at this step (lambda times its schedule's share);
    /// absent for the baseline.
    lambda: Option<f64>,
    /// `ce + lambda * topo`.
    total: f64,
    correct: usize,
    /// TDANN's neighbourhoods: per tapped layer, the channels of each.
    neighbourhoods: Option<Vec<Vec<Vec<usize>>>>,
    /// How many dropout masks the step's forward pass drew (`dropout.0`, ...).
    dropout_masks: usize,
}

/// What a trace wrote.
#[derive(Debug, Clone)]
pub struct Traced {
    pub dir: PathBuf,
    pub steps: u64,
}

/// Traces the first `options.steps` steps of `run` into `out`: `trace.json`,
/// `initial.safetensors` (every weight and batch-norm statistic before the first step)
/// and one `step-NNNN.safetensors` per step with `input`, `label`, `dropout.K`,
/// `grad/NAME` (every trainable tensor's gradient), `after/NAME` (every tensor after the
/// update) and `momentum/NAME`. Stops early at the end of the run's last epoch. With a
/// `pruning:` spec, each of its points on the weights after the last step, tested on the
/// whole test split (`test.safetensors`, each point's logits in `prune-NN.safetensors`).
pub fn trace(
    run: &RunConfig,
    env: &TrainEnv,
    options: TraceOptions,
    out: &Path,
) -> Result<Traced, EngineError> {
    let data = load_data(&run.dataset, &env.cache_dir)?;
    if data.train.is_empty() {
        return Err(EngineError::EmptySplit {
            split: SplitKind::Train,
        });
    }
    let (varmap, model) = build_model_for(
        run,
        data.in_channels,
        data.num_classes,
        &env.device,
        env.kernels,
        options.dtype,
    )?;
    // The steps start where training starts: from the pretrained weights, if any.
    if let Some(init) = &run.model.init {
        super::init_weights::load_init(init, &varmap, &env.device)?;
    }
    let term = build_term(run, model.as_ref(), &varmap, env, options.dtype)?;
    model.record_dropout_masks();
    let mut sgd = Sgd::new(
        trainable_vars(&varmap),
        SgdConfig::from(&run.training.optimizer),
    );
    let (taps, norm) = layers(run, model.as_ref(), env)?;
    let create = |source| crate::results::ResultsError::Write {
        path: out.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(create)?;
    save_tensors(&out.join("initial.safetensors"), &weights(&varmap)?)?;

    let mut record = TraceFile {
        run,
        dtype: if options.dtype == DType::F64 {
            "f64"
        } else {
            "f32"
        },
        kernels: env.kernels.on(&env.device),
        in_channels: data.in_channels,
        classes: data.num_classes,
        taps,
        norm,
        layer_weights: run
            .objective
            .layer_weights()
            .map(|w| w.of(&model.tap_names())),
        steps: Vec::new(),
        pruning: Vec::new(),
    };
    let batch_size = run.training.batch_size;
    let batches = data.train.len().div_ceil(batch_size) as u64;
    'epochs: for epoch in 1..=run.training.epochs {
        let lr = epoch_rate(run, epoch);
        sgd.set_learning_rate(lr);
        let mut draws = begin_epoch(run, model.as_ref(), data.train.len(), epoch);
        for (i, chunk) in draws.order.chunks(batch_size).enumerate() {
            let index = u64::from(epoch - 1) * batches + i as u64;
            let at = StepAt {
                epoch,
                index,
                per_epoch: batches,
            };
            if index >= u64::from(options.steps) {
                break 'epochs;
            }
            let batch = data
                .train
                .batch(chunk, Some(&mut draws.augment), &env.device)?;
            let batch = Batch {
                inputs: batch.inputs.to_dtype(options.dtype)?,
                ..batch
            };
            let (step, grads) = gradients(model.as_ref(), term.as_ref(), &batch, at)?;
            let mut tensors = HashMap::new();
            tensors.insert("input".to_owned(), batch.inputs.clone());
            tensors.insert("label".to_owned(), batch.labels.clone());
            let masks = model.dropout_masks();
            for (k, mask) in masks.iter().enumerate() {
                tensors.insert(format!("dropout.{k}"), mask.clone());
            }
            for (name, var) in trainable_vars(&varmap) {
                if let Some(g) = grads.get(var.as_tensor()) {
                    tensors.insert(format!("grad/{name}"), g.clone());
                }
            }
            sgd.step(&grads)?;
            after_update(&varmap, &sgd, &mut tensors)?;
            save_tensors(
                &out.join(format!("step-{:04}.safetensors", index + 1)),
                &tensors,
            )?;
            let (topo, topo_layers) = match step.topo {
                Some((total, layers)) => (Some(total), layers),
                None => (None, Vec::new()),
            };
            record.steps.push(StepRecord {
                step: index + 1,
                epoch,
                lr,
                examples: chunk.len(),
                ce: step.ce,
                topo,
                topo_layers,
                lambda: term.as_ref().map(|t| t.weight(at.elapsed())),
                total: step.total,
                correct: step.correct,
                // What the loss itself drew, per layer (TDANN's neighbourhoods).
                neighbourhoods: term.as_ref().and_then(|t| {
                    (0..record.taps.len())
                        .map(|layer| t.loss.draws(layer, index))
                        .collect()
                }),
                dropout_masks: masks.len(),
            });
        }
    }
    if let Some(spec) = &run.pruning {
        record.pruning = pruning(
            run,
            env,
            &data,
            &varmap,
            &model.tap_names(),
            spec,
            options.dtype,
            out,
        )?;
    }
    let steps = record.steps.len() as u64;
    write_json(&out.join("trace.json"), &record)?;
    Ok(Traced {
        dir: out.to_path_buf(),
        steps,
    })
}

/// Each point of `spec` on a copy of `varmap`'s weights, as the pruning stage prunes
/// them, tested in evaluation mode on the whole test split in one batch.
#[allow(clippy::too_many_arguments)]
fn pruning(
    run: &RunConfig,
    env: &TrainEnv,
    data: &Dataset,
    varmap: &VarMap,
    taps: &[String],
    spec: &PruningSpec,
    dtype: DType,
    out: &Path,
) -> Result<Vec<PruneRecord>, EngineError> {
    let all: Vec<usize> = (0..data.test.len()).collect();
    let batch = data.test.batch(&all, None, &env.device)?;
    let batch = Batch {
        inputs: batch.inputs.to_dtype(dtype)?,
        ..batch
    };
    let mut test = HashMap::new();
    test.insert("input".to_owned(), batch.inputs.clone());
    test.insert("label".to_owned(), batch.labels.clone());
    save_tensors(&out.join("test.safetensors"), &test)?;
    let mut records = Vec::new();
    for &method in &spec.methods {
        for proportion in spec.proportions.values() {
            let pruned = VarMap::new();
            {
                let source = crate::sync::lock(varmap.data());
                let mut target = crate::sync::lock(pruned.data());
                for (name, var) in source.iter() {
                    target.insert(name.clone(), Var::from_tensor(&var.as_tensor().copy()?)?);
                }
            }
            let count = prune_varmap(&pruned, taps, proportion, method, spec.seed)?;
            let model = model_over(run, data, &pruned, dtype, run.objective.tap(), env)?;
            let logits = example_logits(&model.forward_t(&batch.inputs, false)?.logits, &batch)?;
            let mut tensors = HashMap::new();
            tensors.insert("logits".to_owned(), logits.clone());
            save_tensors(
                &out.join(format!("prune-{:02}.safetensors", records.len())),
                &tensors,
            )?;
            records.push(PruneRecord {
                method,
                proportion,
                channels: count.channels,
                correct: correct(&logits, &batch.labels)?,
                examples: all.len(),
            });
        }
    }
    Ok(records)
}

/// Every tensor after the update (`after/NAME`, batch-norm statistics included) and the
/// momentum buffers (`momentum/NAME`).
fn after_update(
    varmap: &VarMap,
    sgd: &Sgd,
    tensors: &mut HashMap<String, Tensor>,
) -> Result<(), EngineError> {
    for (name, t) in weights(varmap)? {
        // A copy: the next step updates the variable in place.
        tensors.insert(format!("after/{name}"), t.copy()?);
    }
    for (name, t) in sgd.momenta() {
        tensors.insert(format!("momentum/{name}"), t.copy()?);
    }
    Ok(())
}

/// The tapped layers with their positions (topographic runs), and the distance norm.
fn layers(
    run: &RunConfig,
    model: &dyn crate::nn::TopoModel,
    env: &TrainEnv,
) -> Result<(Vec<TapRecord>, Option<Norm>), EngineError> {
    let placed = match &run.objective {
        Objective::Topographic {
            placement, loss, ..
        } => Some(layer_positions(
            placement,
            *loss,
            &model.tap_channels(),
            &env.config_dir,
        )?),
        Objective::Baseline => None,
    };
    let records = model
        .taps()
        .iter()
        .enumerate()
        .map(|(i, t)| TapRecord {
            name: t.name.clone(),
            channels: t.channels,
            positions: placed
                .as_ref()
                .map(|(positions, _)| positions[i].iter().map(<[f64]>::to_vec).collect()),
        })
        .collect();
    Ok((records, placed.map(|(_, norm)| norm)))
}
