//! Starting a run from pretrained weights (`model.init`): a safetensors file under
//! torchvision's names loaded over the seeded initialisation, every tensor checked first so
//! that one error lists all that is missing, unexpected or mis-shaped.

use candle_core::Device;
use candle_nn::VarMap;

use crate::config::InitSpec;
use crate::train::EngineError;

/// Loads `spec`'s weights into `varmap` (its excluded tensors left as they are); returns
/// how many tensors were loaded. Nothing is set unless every tensor fits.
pub fn load_init(spec: &InitSpec, varmap: &VarMap, device: &Device) -> Result<usize, EngineError> {
    let path = &spec.weights;
    let fail = |message: String| EngineError::Init {
        path: path.clone(),
        message,
    };
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| {
        fail(format!(
            "{e} (write one from PyTorch with safetensors.torch.save_file(model.state_dict(), ...))"
        ))
    })?;
    let data = crate::sync::lock(varmap.data());
    let mut names: Vec<&String> = data.keys().filter(|n| !spec.excludes(n)).collect();
    names.sort();
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !tensors.contains_key(n.as_str()))
        .map(|n| n.as_str())
        .collect();
    let mut unexpected: Vec<&str> = tensors
        .keys()
        .filter(|k| {
            // torchvision's batch-norm counters have no place in topo's models.
            !k.ends_with(".num_batches_tracked") && !spec.excludes(k) && !data.contains_key(*k)
        })
        .map(String::as_str)
        .collect();
    unexpected.sort();
    let misshaped: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let (t, v) = (tensors.get(n.as_str())?, data.get(n.as_str())?);
            (t.dims() != v.dims()).then(|| {
                format!(
                    "`{n}` ({:?} in the file, {:?} in the model)",
                    t.dims(),
                    v.dims()
                )
            })
        })
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && misshaped.is_empty()) {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing `{}`", missing.join("`, `")));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected `{}`", unexpected.join("`, `")));
        }
        if !misshaped.is_empty() {
            parts.push(format!("mis-shaped {}", misshaped.join(", ")));
        }
        return Err(fail(format!(
            "does not fit the model: {}; `exclude: [fc]` leaves a layer (here the classifier) at its seeded values",
            parts.join("; ")
        )));
    }
    for n in &names {
        if let (Some(t), Some(v)) = (tensors.get(n.as_str()), data.get(n.as_str())) {
            v.set(&t.to_dtype(v.dtype())?)?;
        }
    }
    Ok(names.len())
}
