//! The stages after training: topography metrics and analyses on the probe set and
//! stimuli, and pruning.

use candle_nn::VarMap;

use candle_core::DType;

use crate::config::{ClipEvaluation, TapPoint};
use crate::plan::RunConfig;
use crate::results::{ChannelPositions, LayerRecord, TopographyRecord, write_json};
use crate::topography::{
    ChannelSimilarity, ClassResponses, MetricsError, Norm, PROBE_SEED, ProbeSet, distance_matrix,
    neighbour_agreement,
};
use crate::train::EngineError;
use crate::train::analyses::{MapSpace, Raw, analyse, stale_analyses, write};
use crate::train::layouts::{layer_positions, reference_positions};
use crate::train::prune::run_pruning;
use crate::train::seeds::{Purpose, stream_seed};
use crate::train::{TrainEnv, Trained, build_model, evaluate};

/// Distance bins of the similarity curves.
const METRIC_BINS: usize = 10;
/// Shuffles of the preferred classes that give the neighbour agreement's chance level.
const SHUFFLES: usize = 100;

/// Measures a freshly trained run (its best weights loaded): `topography.json` and
/// `analyses.json`, unless the analyses already stand for this checkpoint (a run killed
/// after them and resumed).
pub fn measure_topography(
    trained: &Trained,
    run: &RunConfig,
    env: &TrainEnv,
) -> Result<(), EngineError> {
    match stale_analyses(run, env)? {
        Some(key) => measure(&trained.data, &trained.varmap, run, env, key),
        None => Ok(()),
    }
}

/// Measures how topographic each tapped layer is (`topography.json`) and analyses its
/// maps (`analyses.json`), all on the weights in `varmap`. The baseline is measured
/// against the paper's 2D grid so its score is comparable.
pub(crate) fn measure(
    data: &crate::data::Dataset,
    varmap: &VarMap,
    run: &RunConfig,
    env: &TrainEnv,
    key: String,
) -> Result<(), EngineError> {
    let started = std::time::Instant::now();
    // The responses are read where the analyses ask, whatever the loss read in training.
    let at = run.analyses.at;
    let model = model_over(run, data, varmap, DType::F32, at.tap(), env)?;
    let channels = &model.tap_channels();
    let (positions, norm, layout) = match (run.objective.placement(), run.objective.loss()) {
        (Some(placement), Some(loss)) => {
            let (p, n) = layer_positions(placement, loss, channels, &env.config_dir)?;
            (p, n, run.names.topography.clone())
        }
        _ => (
            reference_positions(channels)?,
            Norm::Euclidean,
            "grid2d (reference for the baseline)".to_string(),
        ),
    };
    let probe = ProbeSet::draw(
        &data.test.labels(),
        &data.class_names,
        run.analyses.probe.per_class,
        PROBE_SEED,
    )
    .map_err(EngineError::Probe)?;
    let indices = &probe.indices;
    let mut sims: Vec<ChannelSimilarity> = channels
        .iter()
        .map(|&c| ChannelSimilarity::new(c))
        .collect();
    let mut responses: Vec<ClassResponses> = channels
        .iter()
        .map(|&c| ClassResponses::new(c, data.num_classes))
        .collect();
    let mut raw = Raw::new(env.keep_responses);
    let names = model.tap_names();
    // A split evaluated in windows (BirdDCASE) is probed a clip at a time, whole: one
    // response per labelled example, as the measures need.
    let whole = data.test.whole_clips();
    let probed = whole.as_deref().unwrap_or(data.test.as_ref());
    for chunk in indices.chunks(run.training.eval_batch()) {
        let batch = probed.batch(chunk, None, &env.device)?;
        let out = model.forward_t(&batch.inputs, false)?;
        raw.add("probe", &out.taps, &names)?;
        raw.labels(&batch.labels)?;
        // One label per example (audio batches label every window of a clip alike).
        let labels = batch
            .labels
            .to_dtype(candle_core::DType::U32)?
            .to_vec1::<u32>()?;
        for ((sim, resp), tap) in sims.iter_mut().zip(&mut responses).zip(&out.taps) {
            sim.add(tap)?;
            if tap.dim(0)? == labels.len() {
                resp.add(tap, &labels)?;
            }
        }
    }
    let mut layers = Vec::new();
    let shuffle_seed = stream_seed(run.seed, 0, Purpose::Shuffle);
    for (((name, sim), resp), p) in names.iter().zip(&sims).zip(&responses).zip(&positions) {
        let distances = distance_matrix(p, norm);
        let t = sim.topography(&distances, METRIC_BINS)?;
        // No example of a known class reached this layer (an audio batch of windows):
        // the layer gets no preferences, the rest of its record stands.
        let preferences = match resp.preferences() {
            Ok(p) => p,
            Err(MetricsError::NoSamples) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let neighbours = neighbour_agreement(&preferences, &distances, SHUFFLES, shuffle_seed);
        layers.push(LayerRecord {
            layer: name.clone(),
            channels: t.channels,
            score: t.score,
            slope: t.slope,
            positions: Some(ChannelPositions {
                dim: p.dim(),
                coords: p.coords().to_vec(),
            }),
            preferences,
            neighbours,
            bins: t.bins,
        });
    }
    let record = TopographyRecord {
        layout: layout.clone(),
        probe: Some(probe),
        at: Some(at),
        layers,
    };
    let spaces: Vec<MapSpace> = positions
        .iter()
        .map(|positions| MapSpace { positions, norm })
        .collect();
    let analyses = analyse(
        model.as_ref(),
        data,
        &spaces,
        &responses,
        &layout,
        run,
        key,
        started,
        &mut raw,
        env,
    )?;
    // The topography first: a record of analyses on disk means both stand.
    write_json(&env.dir.topography(), &record)?;
    raw.write(&env.dir.responses())?;
    write(&analyses, env)?;
    Ok(())
}

/// `run`'s model over the weights already in `varmap` (trained, or a pruned copy), in
/// `dtype`, its taps read at `tap`.
pub(crate) fn model_over(
    run: &RunConfig,
    data: &crate::data::Dataset,
    varmap: &VarMap,
    dtype: DType,
    tap: TapPoint,
    env: &TrainEnv,
) -> Result<Box<dyn crate::nn::TopoModel>, EngineError> {
    let vb = candle_nn::VarBuilder::from_varmap(varmap, dtype, &env.device);
    Ok(crate::nn::build_with(
        &run.model,
        data.in_channels,
        data.num_classes,
        vb,
        tap,
        env.kernels,
    )?)
}

/// Runs the pruning stage of `run` (only the points `pruning.csv` lacks).
pub fn prune(trained: &Trained, run: &RunConfig, env: &TrainEnv) -> Result<(), EngineError> {
    prune_data(&trained.data, &trained.model.tap_names(), run, env)
}

/// Whether `pruning.csv` lacks a point of `run`'s pruning spec (a done run whose
/// `pruning:` grew after training).
pub fn pruning_incomplete(run: &RunConfig, env: &TrainEnv) -> Result<bool, EngineError> {
    let Some(spec) = &run.pruning else {
        return Ok(false);
    };
    let path = env.dir.pruning();
    let rows = if path.exists() {
        crate::results::read_pruning_csv(&path)?
    } else {
        Vec::new()
    };
    let proportions = spec.proportions.values();
    Ok(spec.methods.iter().any(|&m| {
        proportions.iter().any(|&p| {
            !rows
                .iter()
                .any(|r| r.method == m && (r.proportion - p).abs() < 1e-9)
        })
    }))
}

/// Computes the pruning points a finished run lacks, from its best checkpoint, without
/// training.
pub fn prune_finished(run: &RunConfig, env: &TrainEnv) -> Result<(), EngineError> {
    let data = crate::data::load(&run.dataset, &env.cache_dir)?;
    let (_, model) = build_model(run, &data, &env.device, env.kernels)?;
    prune_data(&data, &model.tap_names(), run, env)
}

fn prune_data(
    data: &crate::data::Dataset,
    tap_names: &[String],
    run: &RunConfig,
    env: &TrainEnv,
) -> Result<(), EngineError> {
    let Some(spec) = &run.pruning else {
        return Ok(());
    };
    let eval_batch = run.training.eval_batch();
    let best = env.dir.best_checkpoint();
    // The reference's pruning script tests BirdDCASE's clips whole; `clips: whole` asks
    // for that, windows (as in training) otherwise.
    let whole = match spec.clips.unwrap_or_default() {
        ClipEvaluation::Whole => data.test.whole_clips(),
        ClipEvaluation::Windows => None,
    };
    let test = whole.as_deref().unwrap_or(data.test.as_ref());
    let fresh = || -> Result<VarMap, EngineError> {
        let (varmap, _) = build_model(run, data, &env.device, env.kernels)?;
        crate::train::checkpoint::load_weights(&best, &varmap, &env.device)?;
        Ok(varmap)
    };
    let evaluate_pruned = |varmap: &VarMap| -> Result<f64, EngineError> {
        let model = model_over(run, data, varmap, DType::F32, run.objective.tap(), env)?;
        let totals = evaluate(model.as_ref(), test, eval_batch, None, &env.device)?;
        Ok(totals.accuracy())
    };
    run_pruning(&env.dir.pruning(), spec, fresh, tap_names, evaluate_pruned)?;
    Ok(())
}
