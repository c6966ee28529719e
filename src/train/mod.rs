//! Training one planned run: data, model with taps, the topographic loss, SGD with the
//! paper's schedule, a checkpoint per epoch (resumable after any kill), the best epoch
//! by validation accuracy tested at the end.

pub mod checkpoint;
mod error;
mod evaluate;
pub mod layouts;
pub mod optim;
mod progress;
pub mod prune;
pub mod seeds;
pub mod stages;

pub use error::EngineError;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::seq::SliceRandom;

pub use evaluate::{Totals, correct, evaluate, example_logits};
use progress::EpochBar;

use crate::data::{Dataset, load as load_data};
use crate::kernels::Kernels;
use crate::nn::{TopoModel, build_with, seeded_var_builder};
use crate::plan::RunConfig;
use crate::results::{EpochRecord, RunDir, SplitKind, read_jsonl, write_jsonl};
use crate::topography::{TopographicLoss, target_similarity};
use crate::train::checkpoint::{
    LoopState, load_last, load_weights, save_best, save_last, write_state,
};
use crate::train::layouts::layer_positions;
use crate::train::optim::{Sgd, SgdConfig, learning_rate, trainable_vars};
use crate::train::seeds::{Purpose, stream, stream_seed};

/// Where and how a run trains.
#[derive(Debug, Clone)]
pub struct TrainEnv {
    pub dir: RunDir,
    pub device: Device,
    pub kernels: Kernels,
    /// Feature cache shared by runs (audio).
    pub cache_dir: PathBuf,
    /// Folder of the experiment file: custom layouts are relative to it.
    pub config_dir: PathBuf,
    /// Print one line per epoch.
    pub verbose: bool,
}

/// A trained run in memory: what the later stages (test, metrics, pruning) need.
pub struct Trained {
    pub data: Dataset,
    pub varmap: VarMap,
    pub model: Box<dyn TopoModel>,
    pub loss: Option<TopographicLoss>,
    pub records: Vec<EpochRecord>,
    pub state: LoopState,
    pub parameters: usize,
    pub seconds: f64,
}

/// Builds the model of `run` for `data` in a fresh `VarMap` (weights drawn from the run's seed).
pub fn build_model(
    run: &RunConfig,
    data: &Dataset,
    device: &Device,
    kernels: Kernels,
) -> Result<(VarMap, Box<dyn TopoModel>), EngineError> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        stream_seed(run.seed, 0, Purpose::Init),
        DType::F32,
        device,
    );
    let model = build_with(&run.model, data.in_channels, data.num_classes, vb, kernels)?;
    Ok((varmap, model))
}

/// The topographic loss of `run` for `model`'s taps; `None` for the baseline.
pub fn build_loss(
    run: &RunConfig,
    model: &dyn TopoModel,
    env: &TrainEnv,
) -> Result<Option<TopographicLoss>, EngineError> {
    if run.lambda.is_none() {
        return Ok(None);
    }
    let Some((positions, norm)) =
        layer_positions(&run.topography, model.tap_channels(), &env.config_dir)?
    else {
        return Ok(None);
    };
    let targets = positions
        .iter()
        .map(|p| {
            Tensor::from_vec(target_similarity(p, norm), (p.n(), p.n()), &env.device)?
                .to_dtype(DType::F32)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spec = &run.training.topographic;
    Ok(Some(TopographicLoss::new(
        &targets,
        spec.reduction,
        spec.eps,
    )?))
}

/// Trains `run`, resuming from its last checkpoint if there is one.
pub fn train(run: &RunConfig, env: &TrainEnv) -> Result<Trained, EngineError> {
    let started = Instant::now();
    let data = load_data(&run.dataset, &env.cache_dir)?;
    if data.train.is_empty() {
        return Err(EngineError::EmptySplit { split: "training" });
    }
    if data.validation.is_empty() {
        return Err(EngineError::EmptySplit {
            split: "validation",
        });
    }
    let (varmap, model) = build_model(run, &data, &env.device, env.kernels)?;
    let loss = build_loss(run, model.as_ref(), env)?;
    let vars = trainable_vars(&varmap);
    let parameters = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let mut sgd = Sgd::new(vars, SgdConfig::from(&run.training.optimizer));

    let mut state = LoopState {
        epoch: 0,
        best_epoch: 0,
        best_accuracy: f64::NEG_INFINITY,
    };
    let mut records: Vec<EpochRecord> = Vec::new();
    if env.dir.last_checkpoint().exists() {
        let resumed = load_last(&env.dir, &varmap, &env.device)?;
        sgd.load_momenta(resumed.momenta)?;
        state = resumed.state;
        write_state(&env.dir, state, run.seed, env.kernels.on(&env.device))?;
        // Records of the epoch in flight when the run stopped are redone.
        if env.dir.metrics().exists() {
            records = read_jsonl::<EpochRecord>(&env.dir.metrics())?;
            records.retain(|r| r.epoch <= state.epoch && r.split != SplitKind::Test);
        }
        if env.verbose {
            crate::log::log(&format!(
                "  resuming after epoch {} (best so far: epoch {})",
                state.epoch, state.best_epoch
            ));
        }
    }

    let epochs = run.training.epochs;
    let batch_size = run.training.batch_size;
    let eval_batch = run.training.eval_batch_size.unwrap_or(batch_size);
    let lambda = run.lambda.unwrap_or(0.0);
    for epoch in state.epoch + 1..=epochs {
        let t0 = Instant::now();
        let lr = learning_rate(
            &run.training.schedule,
            run.training.optimizer.lr,
            epoch - 1,
            epochs,
        );
        sgd.set_learning_rate(lr);
        model.reseed(stream_seed(run.seed, epoch, Purpose::Dropout));
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        order.shuffle(&mut stream(run.seed, epoch, Purpose::Shuffle));
        let mut augment = stream(run.seed, epoch, Purpose::Augment);

        let batches = order.len().div_ceil(batch_size);
        let mut bar = EpochBar::new(
            format!("{} {epoch}/{epochs}", run.axes.topography),
            batches,
            batch_size,
        );
        let mut totals = Totals::default();
        for chunk in order.chunks(batch_size) {
            let batch = data.train.batch(chunk, Some(&mut augment), &env.device)?;
            let out = model.forward_t(&batch.inputs, true)?;
            let logits = example_logits(&out.logits, &batch)?;
            let ce = candle_nn::loss::cross_entropy(&logits, &batch.labels)?;
            let (total, topo) = match &loss {
                Some(l) => {
                    let t = l.forward(&out.taps)?;
                    let total = (&ce + (&t.total * lambda)?)?;
                    let layers: Vec<f64> = t
                        .per_layer
                        .iter()
                        .map(|x| x.to_scalar::<f32>().map(f64::from))
                        .collect::<Result<_, _>>()?;
                    (
                        total,
                        Some((f64::from(t.total.to_scalar::<f32>()?), layers)),
                    )
                }
                None => (ce.clone(), None),
            };
            let ce_value = f64::from(ce.to_scalar::<f32>()?);
            let total_value = f64::from(total.to_scalar::<f32>()?);
            if !total_value.is_finite() {
                bar.finish();
                // Name the term that is not finite: the cross-entropy, the topographic
                // loss itself, or (a finite loss times a large lambda) the weighted term.
                let (what, value) = match topo.map(|t| t.0) {
                    _ if !ce_value.is_finite() => ("cross-entropy", ce_value),
                    Some(t) if !t.is_finite() => ("topographic", t),
                    _ => ("weighted topographic (lambda x topographic)", total_value),
                };
                return Err(EngineError::NonFinite { epoch, what, value });
            }
            let grads = total.backward()?;
            sgd.step(&grads)?;
            totals.add(
                chunk.len(),
                correct(&logits, &batch.labels)?,
                ce_value,
                topo,
            );
            bar.advance(chunk.len(), total_value, totals.accuracy());
        }
        bar.finish();
        let train_seconds = t0.elapsed().as_secs_f64();
        records.push(record(
            epoch,
            SplitKind::Train,
            &totals,
            lambda,
            Some(lr),
            train_seconds,
            model.tap_names(),
        ));

        let t1 = Instant::now();
        let val = evaluate(
            model.as_ref(),
            data.validation.as_ref(),
            eval_batch,
            loss.as_ref(),
            &env.device,
        )?;
        records.push(record(
            epoch,
            SplitKind::Validation,
            &val,
            lambda,
            None,
            t1.elapsed().as_secs_f64(),
            model.tap_names(),
        ));
        if env.verbose {
            crate::log::log(&format!(
                "  epoch {epoch}/{epochs}: train loss {:.4} acc {:.2}% | val acc {:.2}% | lr {lr:.2e} | {:.1} s, {:.0} img/s",
                totals.mean(totals.ce) + lambda * totals.mean(totals.topo),
                totals.accuracy() * 100.0,
                val.accuracy() * 100.0,
                train_seconds,
                totals.examples as f64 / train_seconds.max(1e-9)
            ));
        }

        // Records first, then the best weights, then the commit point (last): a kill
        // between them only redoes this epoch, identically.
        write_jsonl(&env.dir.metrics(), &records)?;
        // Ties go to the later epoch, as in the reference.
        if val.accuracy() >= state.best_accuracy {
            save_best(&env.dir, &varmap)?;
            state.best_accuracy = val.accuracy();
            state.best_epoch = epoch;
        }
        state.epoch = epoch;
        save_last(
            &env.dir,
            &varmap,
            sgd.momenta(),
            state,
            run.seed,
            env.kernels.on(&env.device),
        )?;
    }
    Ok(Trained {
        data,
        varmap,
        model,
        loss,
        records,
        state,
        parameters,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Tests the best checkpoint; appends the test record (carrying the best epoch).
pub fn test_best(
    trained: &mut Trained,
    env: &TrainEnv,
    run: &RunConfig,
) -> Result<f64, EngineError> {
    load_weights(&env.dir.best_checkpoint(), &trained.varmap, &env.device)?;
    let eval_batch = run
        .training
        .eval_batch_size
        .unwrap_or(run.training.batch_size);
    let t0 = Instant::now();
    let totals = evaluate(
        trained.model.as_ref(),
        trained.data.test.as_ref(),
        eval_batch,
        trained.loss.as_ref(),
        &env.device,
    )?;
    let lambda = run.lambda.unwrap_or(0.0);
    trained.records.retain(|r| r.split != SplitKind::Test);
    trained.records.push(record(
        trained.state.best_epoch,
        SplitKind::Test,
        &totals,
        lambda,
        None,
        t0.elapsed().as_secs_f64(),
        trained.model.tap_names(),
    ));
    write_jsonl(&env.dir.metrics(), &trained.records)?;
    Ok(totals.accuracy())
}

fn record(
    epoch: u32,
    split: SplitKind,
    totals: &Totals,
    lambda: f64,
    lr: Option<f64>,
    seconds: f64,
    tap_names: &[String],
) -> EpochRecord {
    let has_topo = !totals.topo_layers.is_empty();
    let ce = totals.mean(totals.ce);
    let topo = has_topo.then(|| totals.mean(totals.topo));
    EpochRecord {
        epoch,
        split,
        loss: ce + lambda * topo.unwrap_or(0.0),
        ce,
        topo,
        topo_layers: tap_names
            .iter()
            .cloned()
            .zip(totals.topo_layers.iter().map(|s| totals.mean(*s)))
            .collect(),
        accuracy: totals.accuracy(),
        lr,
        seconds,
        images_per_second: totals.examples as f64 / seconds.max(1e-9),
    }
}
