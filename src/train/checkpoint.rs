//! Checkpoints: `last.safetensors` holds the weights (batch-norm statistics included),
//! the optimiser's momenta and, in its header, the loop's state, so one atomic rename
//! commits all of it; `best.safetensors` holds the weights of the best epoch;
//! `state.json` says what the run trains with (seed, how randomness is drawn, kernels).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::kernels::Kernels;
use crate::results::{RunDir, read_json, write_atomic_with, write_json};
use crate::train::EngineError;

const MOMENTUM: &str = "__momentum.";
/// The header key of the loop state. One key: the header's map is written in no fixed
/// order, and the checkpoint of a resumed run must equal an uninterrupted run's bytes.
const LOOP_STATE: &str = "loop_state";

/// Where the loop stands after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Epochs completed.
    pub epoch: u32,
    /// Best epoch so far (0: none yet) and its validation accuracy.
    pub best_epoch: u32,
    pub best_accuracy: f64,
}

impl LoopState {
    /// Before the first epoch.
    pub const START: LoopState = LoopState {
        epoch: 0,
        best_epoch: 0,
        best_accuracy: f64::NEG_INFINITY,
    };

    /// A committed state has a best epoch, so its accuracy is finite and writes as JSON
    /// (serde_json writes the shortest text that reads back to the same bits).
    fn to_header(self) -> Result<HashMap<String, String>, EngineError> {
        let text = serde_json::to_string(&self).map_err(|e| EngineError::Serialise {
            what: "the loop state",
            message: e.to_string(),
        })?;
        Ok(HashMap::from([(LOOP_STATE.to_string(), text)]))
    }

    fn from_header(header: &HashMap<String, String>) -> Result<LoopState, String> {
        let text = header
            .get(LOOP_STATE)
            .ok_or_else(|| format!("no `{LOOP_STATE}` in the header"))?;
        serde_json::from_str(text).map_err(|e| format!("`{LOOP_STATE}` in the header: {e}"))
    }
}

/// `state.json`: what the run trains with, written when it starts or resumes.
#[derive(Serialize)]
struct StateFile {
    /// Shuffling, augmentation and dropout are drawn per epoch from (seed, epoch).
    rng: &'static str,
    seed: u64,
    /// A run resumes bit-identically only on the kernels it trained on.
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

/// Writes `state.json`.
pub fn write_state(dir: &RunDir, seed: u64, kernels: Kernels) -> Result<(), EngineError> {
    let file = StateFile {
        rng: "per-epoch streams from (seed, epoch)",
        seed,
        kernels,
    };
    write_json(&dir.state(), &file)?;
    Ok(())
}

/// Every tensor of `varmap` (parameters and batch-norm running statistics), by name.
pub fn weights(varmap: &VarMap) -> Result<HashMap<String, Tensor>, EngineError> {
    let data = crate::sync::lock(varmap.data());
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

/// Writes the best weights.
pub fn save_best(dir: &RunDir, varmap: &VarMap) -> Result<(), EngineError> {
    save_tensors(&dir.best_checkpoint(), &weights(varmap)?)
}

/// Writes `tensors` as one safetensors file, whole or not at all.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), EngineError> {
    write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp).map_err(|e| match e {
            // The disk's own error, not candle's wrapping of it.
            candle_core::Error::Io(io)
            | candle_core::Error::SafeTensor(safetensors::SafeTensorError::IoError(io)) => io,
            other => std::io::Error::other(other.to_string()),
        })
    })?;
    Ok(())
}

/// Commits the end of an epoch: weights, momenta and loop state in one file.
pub fn save_last(
    dir: &RunDir,
    varmap: &VarMap,
    momenta: Vec<(String, Tensor)>,
    state: LoopState,
) -> Result<(), EngineError> {
    let mut tensors = weights(varmap)?;
    for (name, m) in momenta {
        tensors.insert(format!("{MOMENTUM}{name}"), m);
    }
    let header = state.to_header()?;
    write_atomic_with(&dir.last_checkpoint(), |tmp| {
        safetensors::serialize_to_file(&tensors, Some(header.clone()), tmp).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
    })?;
    Ok(())
}

/// The safetensors header's free-form metadata.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "__metadata__", default)]
    metadata: HashMap<String, String>,
}

/// Reads the header of a safetensors file, not its tensors.
fn read_header(path: &Path) -> Result<HashMap<String, String>, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| e.to_string())?;
    let len = usize::try_from(u64::from_le_bytes(len)).map_err(|e| e.to_string())?;
    // The format caps headers at 100 MB; a larger length is a corrupt file.
    if len > 100_000_000 {
        return Err(format!("a header of {len} bytes: not a safetensors file"));
    }
    let mut text = vec![0u8; len];
    file.read_exact(&mut text).map_err(|e| e.to_string())?;
    let header: Header = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    Ok(header.metadata)
}

/// The loop state committed in `last.safetensors`; `None` before the first epoch ends.
pub fn read_loop_state(dir: &RunDir) -> Result<Option<LoopState>, EngineError> {
    let path = dir.last_checkpoint();
    if !path.exists() {
        return Ok(None);
    }
    read_header(&path)
        .and_then(|h| LoopState::from_header(&h))
        .map(Some)
        .map_err(|message| EngineError::Checkpoint { path, message })
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
    let header = read_header(&path).map_err(bad)?;
    let state = if header.contains_key(LOOP_STATE) {
        LoopState::from_header(&header).map_err(bad)?
    } else {
        legacy_state(&tensors).map_err(bad)?
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

/// The loop state as checkpoints before December 2026 wrote it: one-element tensors,
/// so a run interrupted under an older `topo` still resumes.
fn legacy_state(tensors: &HashMap<String, Tensor>) -> Result<LoopState, String> {
    let scalar = |name: &str, dtype: DType| -> Result<Tensor, String> {
        let key = format!("__state.{name}");
        let t = tensors
            .get(&key)
            .ok_or_else(|| format!("no loop state (neither in the header nor `{key}`)"))?;
        t.to_dtype(dtype)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.get(0))
            .map_err(|e| format!("`{key}`: {e}"))
    };
    let u32_of = |name| {
        scalar(name, DType::U32)
            .and_then(|t| t.to_scalar::<u32>().map_err(|e| format!("`{name}`: {e}")))
    };
    Ok(LoopState {
        epoch: u32_of("epoch")?,
        best_epoch: u32_of("best_epoch")?,
        best_accuracy: scalar("best_accuracy", DType::F64)?
            .to_scalar::<f64>()
            .map_err(|e| format!("`best_accuracy`: {e}"))?,
    })
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
    let data = crate::sync::lock(varmap.data());
    for (name, var) in data.iter() {
        let t = tensors
            .get(name)
            .ok_or_else(|| format!("no weights for `{name}`"))?;
        var.set(t).map_err(|e| format!("`{name}`: {e}"))?;
    }
    Ok(())
}
