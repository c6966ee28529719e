//! Checkpoints: `last.safetensors` holds the weights (batch-norm statistics included),
//! the optimiser's momenta and the loop's state as tensors, so one atomic rename commits
//! all of it; `best.safetensors` holds the weights of the best epoch; `state.json` mirrors
//! the state for people.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::kernels::Kernels;
use crate::results::{RunDir, read_json, write_atomic_with, write_json};
use crate::train::EngineError;

const MOMENTUM: &str = "__momentum.";
const EPOCH: &str = "__state.epoch";
const BEST_EPOCH: &str = "__state.best_epoch";
const BEST_ACCURACY: &str = "__state.best_accuracy";

/// Where the loop stands after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Epochs completed.
    pub epoch: u32,
    /// Best epoch so far (0: none yet) and its validation accuracy.
    pub best_epoch: u32,
    pub best_accuracy: f64,
}

/// `state.json`: the loop state, how randomness is derived, and the kernels the run
/// trains on (a run resumes bit-identically only on the same ones).
#[derive(Serialize)]
struct StateFile {
    #[serde(flatten)]
    state: LoopState,
    /// Shuffling, augmentation and dropout are drawn per epoch from (seed, epoch).
    rng: &'static str,
    seed: u64,
    kernels: Kernels,
}

/// What [`recorded_kernels`] reads back; files older than the field have none.
#[derive(Deserialize)]
struct KernelsField {
    #[serde(default)]
    kernels: Option<Kernels>,
}

/// The kernels a run's `state.json` says it trained on; `None` without a state (a new
/// run) or from a state written before kernels were recorded.
pub fn recorded_kernels(dir: &RunDir) -> Result<Option<Kernels>, EngineError> {
    if !dir.state().exists() {
        return Ok(None);
    }
    Ok(read_json::<KernelsField>(&dir.state())?.kernels)
}

fn save(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), EngineError> {
    write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })?;
    Ok(())
}

fn weights(varmap: &VarMap) -> Result<HashMap<String, Tensor>, EngineError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| EngineError::Other("weights lock poisoned".into()))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

/// Writes the best weights.
pub fn save_best(dir: &RunDir, varmap: &VarMap) -> Result<(), EngineError> {
    save(&dir.best_checkpoint(), &weights(varmap)?)
}

/// Commits the end of an epoch: weights, momenta and loop state in one file.
pub fn save_last(
    dir: &RunDir,
    varmap: &VarMap,
    momenta: Vec<(String, Tensor)>,
    state: LoopState,
    seed: u64,
    kernels: Kernels,
) -> Result<(), EngineError> {
    let mut tensors = weights(varmap)?;
    for (name, m) in momenta {
        tensors.insert(format!("{MOMENTUM}{name}"), m);
    }
    let cpu = Device::Cpu;
    tensors.insert(EPOCH.into(), Tensor::new(&[state.epoch], &cpu)?);
    tensors.insert(BEST_EPOCH.into(), Tensor::new(&[state.best_epoch], &cpu)?);
    tensors.insert(
        BEST_ACCURACY.into(),
        Tensor::new(&[state.best_accuracy], &cpu)?,
    );
    save(&dir.last_checkpoint(), &tensors)?;
    write_state(dir, state, seed, kernels)
}

/// Writes `state.json`, the readable mirror of the state in `last.safetensors`. A kill
/// between the two writes leaves it one epoch behind, so a resumed run writes it again.
pub fn write_state(
    dir: &RunDir,
    state: LoopState,
    seed: u64,
    kernels: Kernels,
) -> Result<(), EngineError> {
    let file = StateFile {
        state,
        rng: "per-epoch streams from (seed, epoch)",
        seed,
        kernels,
    };
    write_json(&dir.state(), &file)?;
    Ok(())
}

/// What `last.safetensors` restores.
pub struct Resumed {
    pub state: LoopState,
    pub momenta: Vec<(String, Tensor)>,
}

/// Loads `last.safetensors` into `varmap` (every variable must be present).
pub fn load_last(dir: &RunDir, varmap: &VarMap, device: &Device) -> Result<Resumed, EngineError> {
    let path = dir.last_checkpoint();
    let bad = |message: String| EngineError::Checkpoint {
        path: path.clone(),
        message,
    };
    let tensors = candle_core::safetensors::load(&path, device).map_err(|e| bad(e.to_string()))?;
    set_vars(varmap, &tensors).map_err(bad)?;
    let scalar_u32 = |name: &str| -> Result<u32, EngineError> {
        let t = tensors
            .get(name)
            .ok_or_else(|| bad(format!("no `{name}`")))?;
        t.to_dtype(DType::U32)?
            .to_vec1::<u32>()?
            .first()
            .copied()
            .ok_or_else(|| bad(format!("`{name}` is empty")))
    };
    let best_accuracy = tensors
        .get(BEST_ACCURACY)
        .ok_or_else(|| bad(format!("no `{BEST_ACCURACY}`")))?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?
        .first()
        .copied()
        .ok_or_else(|| bad(format!("`{BEST_ACCURACY}` is empty")))?;
    let state = LoopState {
        epoch: scalar_u32(EPOCH)?,
        best_epoch: scalar_u32(BEST_EPOCH)?,
        best_accuracy,
    };
    let momenta = tensors
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(MOMENTUM)
                .map(|name| (name.to_string(), v.clone()))
        })
        .collect();
    Ok(Resumed { state, momenta })
}

/// Loads weights from `path` (best or last) into `varmap`.
pub fn load_weights(path: &Path, varmap: &VarMap, device: &Device) -> Result<(), EngineError> {
    let bad = |message: String| EngineError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| bad(e.to_string()))?;
    set_vars(varmap, &tensors).map_err(bad)
}

fn set_vars(varmap: &VarMap, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| "weights lock poisoned".to_string())?;
    for (name, var) in data.iter() {
        let t = tensors
            .get(name)
            .ok_or_else(|| format!("no weights for `{name}`"))?;
        var.set(t).map_err(|e| format!("`{name}`: {e}"))?;
    }
    Ok(())
}
