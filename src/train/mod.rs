//! Training one planned run: data, model with taps, the topographic loss, SGD with the
//! paper's schedule, a checkpoint per epoch (resumable after any kill), the best epoch
//! by validation accuracy tested at the end.

pub mod analyses;
pub mod checkpoint;
mod error;
mod evaluate;
pub mod export;
pub mod init_weights;
pub mod layouts;
pub mod optim;
mod progress;
pub mod prune;
pub mod seeds;
pub mod stages;
mod term;
pub mod trace;

pub use error::{EngineError, Fault};
pub use term::{TopographicTerm, build_term, check_term};

use std::path::PathBuf;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device};
use candle_nn::VarMap;
use rand::seq::SliceRandom;

use evaluate::read_scalars;
pub use evaluate::{Totals, correct, evaluate, example_logits};
use progress::EpochBar;
pub use progress::EpochHook;

use crate::data::{Batch, Dataset, load as load_data};
use crate::kernels::Kernels;
use crate::nn::{TopoModel, build_with, seeded_var_builder};
use crate::plan::RunConfig;
use crate::results::{EpochRecord, RunDir, SplitKind, read_jsonl, tensorboard, write_jsonl};
use crate::topography::{LayerLosses, StepInputs};
use crate::train::checkpoint::{
    LoopState, load_last, load_weights, save_best, save_last, write_state,
};
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
    /// Told when each epoch is committed (the plan's progress).
    pub on_epoch: Option<EpochHook>,
    /// The analyses also write every layer's raw responses (`responses.safetensors`), so
    /// that their measures can be checked by another implementation.
    pub keep_responses: bool,
}

/// A trained run in memory: what the later stages (test, metrics, pruning) need.
pub struct Trained {
    pub data: Dataset,
    pub varmap: VarMap,
    pub model: Box<dyn TopoModel>,
    /// `None` for the baseline.
    pub term: Option<TopographicTerm>,
    pub records: Vec<EpochRecord>,
    pub state: LoopState,
    pub parameters: usize,
    pub seconds: f64,
}

impl Trained {
    pub fn loss(&self) -> Option<&LayerLosses> {
        self.term.as_ref().map(|t| &t.loss)
    }
}

/// Builds the model of `run` for `data` in a fresh `VarMap` (weights drawn from the run's seed).
pub fn build_model(
    run: &RunConfig,
    data: &Dataset,
    device: &Device,
    kernels: Kernels,
) -> Result<(VarMap, Box<dyn TopoModel>), EngineError> {
    build_model_for(
        run,
        data.in_channels,
        data.num_classes,
        device,
        kernels,
        DType::F32,
    )
}

/// [`build_model`] for inputs of `in_channels` and `num_classes` classes, without data,
/// with parameters of `dtype` (float32 for training; float64 where `topo trace` checks
/// the arithmetic).
pub fn build_model_for(
    run: &RunConfig,
    in_channels: usize,
    num_classes: usize,
    device: &Device,
    kernels: Kernels,
    dtype: DType,
) -> Result<(VarMap, Box<dyn TopoModel>), EngineError> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        stream_seed(run.seed, 0, Purpose::Init),
        dtype,
        device,
    );
    let model = build_with(
        &run.model,
        in_channels,
        num_classes,
        vb,
        run.objective.tap(),
        kernels,
    )?;
    Ok((varmap, model))
}

/// Trains `run`, resuming from its last checkpoint if there is one.
pub fn train(run: &RunConfig, env: &TrainEnv) -> Result<Trained, EngineError> {
    let started = Instant::now();
    let data = load_data(&run.dataset, &env.cache_dir)?;
    if data.train.is_empty() {
        return Err(EngineError::EmptySplit {
            split: SplitKind::Train,
        });
    }
    if data.validation.is_empty() {
        return Err(EngineError::EmptySplit {
            split: SplitKind::Validation,
        });
    }
    let (varmap, model) = build_model(run, &data, &env.device, env.kernels)?;
    let term = build_term(run, model.as_ref(), &varmap, env, DType::F32)?;
    let vars = trainable_vars(&varmap);
    let parameters = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let mut sgd = Sgd::new(vars, SgdConfig::from(&run.training.optimizer));
    let (mut state, mut records) = resume(run, env, &varmap, &mut sgd)?;

    let session = Session {
        run,
        env,
        data: &data,
        model: model.as_ref(),
        term: term.as_ref(),
    };
    for epoch in state.epoch + 1..=run.training.epochs {
        let [train, validation] = session.epoch(&mut sgd, epoch)?;
        if env.verbose {
            log_epoch(&train, &validation, run.training.epochs);
        }
        let val_accuracy = validation.accuracy;
        records.extend([train, validation]);
        commit(
            env,
            &varmap,
            &sgd,
            &records,
            &mut state,
            epoch,
            val_accuracy,
        )?;
        tensorboard::append(&env.dir.events(), &records[records.len() - 2..])?;
        if let Some(hook) = &env.on_epoch {
            hook.call();
        }
    }
    Ok(Trained {
        data,
        varmap,
        model,
        term,
        records,
        state,
        parameters,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Restores the last checkpoint, if there is one, into the weights and the optimiser;
/// returns where the loop stands and the records of the epochs it keeps.
fn resume(
    run: &RunConfig,
    env: &TrainEnv,
    varmap: &VarMap,
    sgd: &mut Sgd,
) -> Result<(LoopState, Vec<EpochRecord>), EngineError> {
    write_state(&env.dir, run.seed, env.kernels.on(&env.device))?;
    let config = crate::config::to_yaml(run).map_err(|e| EngineError::Serialise {
        what: "the run's configuration",
        message: e.to_string(),
    })?;
    if !env.dir.last_checkpoint().exists() {
        // A fresh run starts from its pretrained weights, if it names any.
        if let Some(init) = &run.model.init {
            init_weights::load_init(init, varmap, &env.device)?;
        }
        tensorboard::rewrite(&env.dir.events(), &config, &[])?;
        return Ok((LoopState::START, Vec::new()));
    }
    let resumed = load_last(&env.dir, varmap, &env.device)?;
    sgd.load_momenta(resumed.momenta)?;
    let state = resumed.state;
    // Records of the epoch in flight when the run stopped are redone.
    let mut records = Vec::new();
    if env.dir.metrics().exists() {
        records = read_jsonl::<EpochRecord>(&env.dir.metrics())?;
        records.retain(|r| r.epoch <= state.epoch && r.split != SplitKind::Test);
    }
    // The event file follows the records kept: epochs redone are not shown twice.
    tensorboard::rewrite(&env.dir.events(), &config, &records)?;
    if env.verbose {
        crate::log::log(&format!(
            "  resuming after epoch {} (best so far: epoch {})",
            state.epoch, state.best_epoch
        ));
    }
    Ok((state, records))
}

/// What one epoch trains and evaluates.
struct Session<'a> {
    run: &'a RunConfig,
    env: &'a TrainEnv,
    data: &'a Dataset,
    model: &'a dyn TopoModel,
    term: Option<&'a TopographicTerm>,
}

impl Session<'_> {
    /// Trains epoch `epoch` (1-based) at its scheduled rate, then evaluates on the
    /// validation split; returns both records.
    fn epoch(&self, sgd: &mut Sgd, epoch: u32) -> Result<[EpochRecord; 2], EngineError> {
        let run = self.run;
        let lr = epoch_rate(run, epoch);
        sgd.set_learning_rate(lr);
        let t0 = Instant::now();
        let train = self.train_epoch(sgd, epoch)?;
        let train_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let validation = evaluate(
            self.model,
            self.data.validation.as_ref(),
            run.training.eval_batch(),
            self.term.map(|t| &t.loss),
            &self.env.device,
        )?;
        let val_seconds = t1.elapsed().as_secs_f64();
        let taps = &self.model.tap_names();
        let lambda = scheduled_lambda(run, epoch);
        Ok([
            record(
                run,
                epoch,
                SplitKind::Train,
                &train,
                (Some(lr), lambda),
                train_seconds,
                taps,
            ),
            record(
                run,
                epoch,
                SplitKind::Validation,
                &validation,
                (None, lambda),
                val_seconds,
                taps,
            ),
        ])
    }

    /// One pass over the training split in the epoch's shuffled order.
    fn train_epoch(&self, sgd: &mut Sgd, epoch: u32) -> Result<Totals, EngineError> {
        let (run, env, data, model, term) = (self.run, self.env, self.data, self.model, self.term);
        let batch_size = run.training.batch_size;
        let EpochDraws { order, mut augment } = begin_epoch(run, model, data.train.len(), epoch);

        let mut bar = EpochBar::new(
            format!("{} {epoch}/{}", run.names.topography, run.training.epochs),
            order.len().div_ceil(batch_size),
            batch_size,
        );
        let mut totals = Totals::default();
        let batches = order.len().div_ceil(batch_size) as u64;
        for (i, chunk) in order.chunks(batch_size).enumerate() {
            let batch = data.train.batch(chunk, Some(&mut augment), &env.device)?;
            let at = StepAt {
                epoch,
                index: u64::from(epoch - 1) * batches + i as u64,
                per_epoch: batches,
            };
            let step = match step(model, term, sgd, &batch, at) {
                Ok(step) => step,
                Err(e) => {
                    bar.finish();
                    return Err(e);
                }
            };
            totals.add(chunk.len(), step.correct, step.ce, step.topo);
            bar.advance(chunk.len(), step.total, totals.accuracy());
        }
        bar.finish();
        Ok(totals)
    }
}

/// The learning rate of `epoch` (1-based) under the run's schedule.
fn epoch_rate(run: &RunConfig, epoch: u32) -> f64 {
    learning_rate(
        &run.training.schedule,
        run.training.optimizer.lr,
        epoch - 1,
        run.training.epochs,
    )
}

/// What an epoch draws from the run's seed before its first step.
struct EpochDraws {
    /// The training examples in the epoch's order.
    order: Vec<usize>,
    /// The stream the epoch's augmentations draw from.
    augment: rand_chacha::ChaCha8Rng,
}

/// Reseeds the model's dropout for `epoch` and draws the epoch's order and augmentation
/// stream: the same for a run, a resumed run and its trace.
fn begin_epoch(run: &RunConfig, model: &dyn TopoModel, examples: usize, epoch: u32) -> EpochDraws {
    model.reseed(stream_seed(run.seed, epoch, Purpose::Dropout));
    let mut order: Vec<usize> = (0..examples).collect();
    order.shuffle(&mut stream(run.seed, epoch, Purpose::Shuffle));
    EpochDraws {
        order,
        augment: stream(run.seed, epoch, Purpose::Augment),
    }
}

/// The line a verbose run prints per epoch.
fn log_epoch(train: &EpochRecord, validation: &EpochRecord, epochs: u32) {
    crate::log::log(&format!(
        "  epoch {}/{epochs}: train loss {:.4} acc {:.2}% | val acc {:.2}% | lr {:.2e} | {:.1} s, {:.0} img/s",
        train.epoch,
        train.loss,
        train.accuracy * 100.0,
        validation.accuracy * 100.0,
        train.lr.unwrap_or(0.0),
        train.seconds,
        train.images_per_second
    ));
}

/// What one optimisation step measured.
struct Step {
    correct: usize,
    ce: f64,
    /// The topographic loss, layers combined and each layer's.
    topo: Option<(f64, Vec<f64>)>,
    total: f64,
}

/// The training step without a topographic term, as a run takes it: what `topo plan
/// --estimate` times.
pub fn plain_step(model: &dyn TopoModel, sgd: &mut Sgd, batch: &Batch) -> Result<(), EngineError> {
    let first = StepAt {
        epoch: 1,
        index: 0,
        per_epoch: 1,
    };
    step(model, None, sgd, batch, first).map(|_| ())
}

/// Where a step falls in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepAt {
    /// 1-based.
    pub epoch: u32,
    /// 0-based over the whole run.
    pub index: u64,
    /// Steps in an epoch.
    pub per_epoch: u64,
}

impl StepAt {
    /// Epochs of training before this step (fractional).
    pub fn elapsed(self) -> f64 {
        self.index as f64 / self.per_epoch.max(1) as f64
    }
}

/// Forward, the objective, backward and the SGD update on one batch; `index` is the
/// step's over the whole run.
fn step(
    model: &dyn TopoModel,
    term: Option<&TopographicTerm>,
    sgd: &mut Sgd,
    batch: &Batch,
    at: StepAt,
) -> Result<Step, EngineError> {
    let (step, grads) = gradients(model, term, batch, at)?;
    sgd.step(&grads)?;
    Ok(step)
}

/// Forward, the objective and backward on one batch: what the step measured and the
/// gradients the update applies.
fn gradients(
    model: &dyn TopoModel,
    term: Option<&TopographicTerm>,
    batch: &Batch,
    at: StepAt,
) -> Result<(Step, GradStore), EngineError> {
    let StepAt { epoch, index, .. } = at;
    let out = model.forward_t(&batch.inputs, true)?;
    let logits = example_logits(&out.logits, batch)?;
    let ce = candle_nn::loss::cross_entropy(&logits, &batch.labels)?;
    let (total, topo_out) = match term {
        Some(term) => {
            let t = term.loss.forward(&StepInputs {
                taps: &out.taps,
                step: index,
            })?;
            ((&ce + (&t.total * term.weight(at.elapsed()))?)?, Some(t))
        }
        None => (ce.clone(), None),
    };
    let read = read_scalars(&[&ce, &total], topo_out.as_ref())?;
    let (ce_value, total_value, topo) = (read.leading[0], read.leading[1], read.topo);
    if !total_value.is_finite() {
        // Name the term that is not finite: the cross-entropy, the topographic loss
        // itself, or (a finite loss times a large lambda) the weighted term.
        let (what, value) = match topo.as_ref().map(|t| t.0) {
            _ if !ce_value.is_finite() => ("cross-entropy", ce_value),
            Some(t) if !t.is_finite() => ("topographic", t),
            _ => ("weighted topographic (lambda x topographic)", total_value),
        };
        return Err(EngineError::NonFinite { epoch, what, value });
    }
    let grads = total.backward()?;
    let step = Step {
        correct: correct(&logits, &batch.labels)?,
        ce: ce_value,
        topo,
        total: total_value,
    };
    Ok((step, grads))
}

/// Ends an epoch on disk: records first, then the best weights, then the commit point
/// (last): a kill between them only redoes this epoch, identically.
fn commit(
    env: &TrainEnv,
    varmap: &VarMap,
    sgd: &Sgd,
    records: &[EpochRecord],
    state: &mut LoopState,
    epoch: u32,
    val_accuracy: f64,
) -> Result<(), EngineError> {
    write_jsonl(&env.dir.metrics(), records)?;
    // Ties go to the later epoch, as in the reference.
    if val_accuracy >= state.best_accuracy {
        save_best(&env.dir, varmap)?;
        state.best_accuracy = val_accuracy;
        state.best_epoch = epoch;
    }
    state.epoch = epoch;
    save_last(&env.dir, varmap, sgd.momenta(), *state)
}

/// Tests the best checkpoint; appends the test record (carrying the best epoch) and
/// returns it.
pub fn test_best(
    trained: &mut Trained,
    env: &TrainEnv,
    run: &RunConfig,
) -> Result<EpochRecord, EngineError> {
    load_weights(&env.dir.best_checkpoint(), &trained.varmap, &env.device)?;
    let t0 = Instant::now();
    let totals = evaluate(
        trained.model.as_ref(),
        trained.data.test.as_ref(),
        run.training.eval_batch(),
        trained.loss(),
        &env.device,
    )?;
    trained.records.retain(|r| r.split != SplitKind::Test);
    let test = record(
        run,
        trained.state.best_epoch,
        SplitKind::Test,
        &totals,
        (None, scheduled_lambda(run, trained.state.best_epoch)),
        t0.elapsed().as_secs_f64(),
        &trained.model.tap_names(),
    );
    trained.records.push(test.clone());
    write_jsonl(&env.dir.metrics(), &trained.records)?;
    tensorboard::append(&env.dir.events(), std::slice::from_ref(&test))?;
    Ok(test)
}

/// The topographic weight after `epoch` epochs, where a schedule changes it.
fn scheduled_lambda(run: &RunConfig, epoch: u32) -> Option<f64> {
    run.objective
        .scheduled()
        .then(|| run.objective.lambda_at(f64::from(epoch)))
        .flatten()
}

/// An epoch's record of one split; `rates` are its learning rate (training) and its
/// scheduled lambda.
fn record(
    run: &RunConfig,
    epoch: u32,
    split: SplitKind,
    totals: &Totals,
    (lr, lambda): (Option<f64>, Option<f64>),
    seconds: f64,
    tap_names: &[String],
) -> EpochRecord {
    let ce = totals.mean(totals.ce);
    let topo = totals.has_topo().then(|| totals.mean(totals.topo));
    let loss = match (lambda, topo) {
        (Some(l), Some(t)) => ce + l * t,
        _ => run.objective.total(ce, topo),
    };
    EpochRecord {
        epoch,
        split,
        loss,
        ce,
        topo,
        topo_layers: tap_names
            .iter()
            .cloned()
            .zip(totals.topo_layers.iter().map(|s| totals.mean(*s)))
            .collect(),
        accuracy: totals.accuracy(),
        lr,
        lambda,
        roc_auc: totals.binary.and_then(|b| b.roc_auc()),
        seconds,
        images_per_second: totals.examples as f64 / seconds.max(1e-9),
        wall_time: Some(tensorboard::now()),
    }
}
