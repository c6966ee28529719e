//! The topographic term of a run: its method built for the model's tapped layers (their
//! positions, or for TopoLoss their weights) and its lambda.

use std::path::Path;

use candle_core::{DType, Var};
use candle_nn::VarMap;

use crate::config::Objective;
use crate::config::{
    Lambda, LambdaSchedule, LayerWeights, LossMethod, Neighbourhood, Placement, did_you_mean,
};
use crate::nn::TopoModel;
use crate::plan::RunConfig;
use crate::topography::{
    LayerLosses, Norm, Positions, Tdann, TopoLoss, TopographicLoss, TopographicMethod, sheet_for,
};
use crate::train::layouts::layer_positions;
use crate::train::seeds::{Purpose, stream_seed};
use crate::train::{EngineError, TrainEnv};

/// The topographic term of a run: its loss and weight.
pub struct TopographicTerm {
    pub loss: LayerLosses,
    pub lambda: Lambda,
    pub schedule: LambdaSchedule,
}

impl TopographicTerm {
    /// The term's weight at a step `elapsed` epochs into training.
    pub fn weight(&self, elapsed: f64) -> f64 {
        self.schedule.weight(self.lambda, elapsed)
    }
}

/// The topographic term of `run` for `model`'s taps (weights from `varmap`) in the
/// model's `dtype`; `None` for the baseline.
pub fn build_term(
    run: &RunConfig,
    model: &dyn TopoModel,
    varmap: &VarMap,
    env: &TrainEnv,
    dtype: DType,
) -> Result<Option<TopographicTerm>, EngineError> {
    let Objective::Topographic {
        placement,
        loss,
        layer_weights,
        lambda,
        lambda_schedule,
        ..
    } = &run.objective
    else {
        return Ok(None);
    };
    let (positions, norm) =
        layer_positions(placement, *loss, &model.tap_channels(), &env.config_dir)?;
    let spec = &run.training.topographic;
    let method: Box<dyn TopographicMethod> = match *loss {
        LossMethod::Poli2023 => Box::new(TopographicLoss::from_positions(
            &positions,
            norm,
            spec.reduction,
            spec.eps,
            &env.device,
            dtype,
        )?),
        LossMethod::Tdann {
            neighbourhood,
            neighbourhoods,
        } => Box::new(tdann(
            &positions,
            norm,
            neighbourhood,
            neighbourhoods,
            run.seed,
        )?),
        LossMethod::Topoloss { factor } => {
            let weights: Vec<(String, Var)> = model
                .tap_names()
                .iter()
                .cloned()
                .zip(tap_weights(model, varmap)?)
                .collect();
            Box::new(TopoLoss::new(&weights, factor.get())?)
        }
    };
    let weights = (!layer_weights.is_uniform()).then(|| layer_weights.of(&model.tap_names()));
    Ok(Some(TopographicTerm {
        loss: LayerLosses::new(method, spec.reduction, weights)?,
        lambda: *lambda,
        schedule: *lambda_schedule,
    }))
}

fn tdann(
    positions: &[Positions],
    norm: Norm,
    neighbourhood: Neighbourhood,
    neighbourhoods: u32,
    seed: u64,
) -> Result<Tdann, EngineError> {
    Ok(Tdann::new(
        positions,
        norm,
        neighbourhood,
        neighbourhoods as usize,
        stream_seed(seed, 0, Purpose::Neighbourhood),
    )?)
}

/// The weight of every tapped conv, in tap order: `{tap}.weight` in the var map.
fn tap_weights(model: &dyn TopoModel, varmap: &VarMap) -> Result<Vec<Var>, EngineError> {
    let vars = crate::sync::lock(varmap.data());
    model
        .tap_names()
        .iter()
        .map(|name| {
            vars.get(&format!("{name}.weight"))
                .cloned()
                .ok_or_else(|| EngineError::MissingWeight(name.clone()))
        })
        .collect()
}

/// Checks, before anything trains, what would make every run of a topography fail on
/// a model: its positions (custom layout files) and its loss's needs (TDANN's channel
/// counts, TopoLoss's sheet against its factor). `channels` are the tapped layers'.
pub fn check_term(
    placement: &Placement,
    loss: LossMethod,
    weights: &LayerWeights,
    names: &[String],
    channels: &[usize],
    config_dir: &Path,
) -> Result<(), EngineError> {
    for layer in weights.layers() {
        if !names.iter().any(|n| n == layer) {
            return Err(EngineError::UnknownLayerWeight {
                layer: layer.to_string(),
                hint: did_you_mean(layer, names.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default(),
                taps: names.join(", "),
            });
        }
    }
    let (positions, norm) = layer_positions(placement, loss, channels, config_dir)?;
    match loss {
        LossMethod::Poli2023 => {}
        LossMethod::Tdann {
            neighbourhood,
            neighbourhoods,
        } => {
            tdann(&positions, norm, neighbourhood, neighbourhoods, 0)?;
        }
        LossMethod::Topoloss { factor } => {
            for (name, &c) in names.iter().zip(channels) {
                sheet_for(name, c, factor.get())?;
            }
        }
    }
    Ok(())
}
