//! `topo export`: a finished run's best weights under torchvision's names, with what a
//! PyTorch user needs beside them: each tapped layer's channel positions, and how inputs
//! are prepared. `python/topo_torch` loads the folder as a PyTorch model.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::data::stimuli::InputFormat;
use crate::plan::RunConfig;
use crate::results::{
    ChannelPositions, ResultsError, RunDir, RunState, TopographyRecord, read_json, write_json,
};
use crate::train::EngineError;
use crate::train::checkpoint::save_tensors;

/// `config.json`: the model and how to feed it.
#[derive(Debug, Serialize)]
struct ExportConfig<'a> {
    run_id: &'a str,
    model: &'a crate::config::ModelSpec,
    classes: usize,
    in_channels: usize,
    class_names: &'a [String],
    input: Input,
    topography: &'a str,
    lambda: Option<f64>,
}

/// How a split's examples are prepared before the model.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Input {
    /// Pixels scaled to `[0, 1]`, then `(x - mean) / std` per channel.
    Image {
        height: usize,
        width: usize,
        mean: Vec<f32>,
        std: Vec<f32>,
    },
    /// Log-mel features (`logmel`, as `src/data/logmel.rs` computes them), then
    /// `(x - mean) / std`.
    LogMel {
        sample_rate: u32,
        n_fft: usize,
        hop: usize,
        n_mels: usize,
        f_min: f64,
        f_max: f64,
        mean: f32,
        std: f32,
    },
}

/// `positions.json`: the layout and loss, and every tapped layer's positions.
#[derive(Debug, Serialize)]
struct ExportPositions<'a> {
    layout: &'a str,
    loss: Option<crate::config::LossMethod>,
    tap: crate::config::TapPoint,
    layers: Vec<ExportLayer<'a>>,
}

#[derive(Debug, Serialize)]
struct ExportLayer<'a> {
    layer: &'a str,
    channels: usize,
    dim: usize,
    coords: &'a [f64],
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub tensors: usize,
}

/// Exports the finished run in `run_dir` to `to`; `cache_dir` holds audio features.
pub fn export(run_dir: &RunDir, to: &Path, cache_dir: &Path) -> Result<Exported, EngineError> {
    if run_dir.state_on_disk() != RunState::Done {
        return Err(EngineError::Export {
            path: run_dir.path().to_path_buf(),
            message:
                "not a finished run (no summary.json saying done): train it first with `topo run`"
                    .into(),
        });
    }
    let yaml_path = run_dir.run_yaml();
    let text = std::fs::read_to_string(&yaml_path).map_err(|source| ResultsError::Read {
        path: yaml_path.clone(),
        source,
    })?;
    let run: RunConfig =
        crate::config::from_yaml(&text).map_err(|message| EngineError::Export {
            path: yaml_path.clone(),
            message,
        })?;
    let topography: TopographyRecord = read_json(&run_dir.topography())?;
    let data = crate::data::load(&run.dataset, cache_dir)?;
    let best = run_dir.best_checkpoint();
    let mut tensors = candle_core::safetensors::load(&best, &Device::Cpu).map_err(|e| {
        EngineError::Checkpoint {
            path: best.clone(),
            message: e.to_string(),
        }
    })?;
    // torchvision's batch norms count their batches in a buffer of their own.
    let norms: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".running_mean").map(str::to_owned))
        .collect();
    for prefix in norms {
        tensors.insert(
            format!("{prefix}.num_batches_tracked"),
            Tensor::new(0i64, &Device::Cpu)?,
        );
    }
    let input = match data.test.input_format() {
        InputFormat::Image {
            height,
            width,
            norm,
            ..
        } => Input::Image {
            height,
            width,
            mean: norm.mean.clone(),
            std: norm.std.clone(),
        },
        InputFormat::Audio { logmel, stats } => {
            let p = logmel.params();
            Input::LogMel {
                sample_rate: p.sample_rate,
                n_fft: p.n_fft,
                hop: p.hop,
                n_mels: p.n_mels,
                f_min: p.f_min,
                f_max: p.f_max,
                mean: stats.mean,
                std: stats.std,
            }
        }
    };
    std::fs::create_dir_all(to).map_err(|source| ResultsError::Write {
        path: to.to_path_buf(),
        source,
    })?;
    let model = to.join("model.safetensors");
    save_tensors(&model, &tensors)?;
    let config = to.join("config.json");
    write_json(
        &config,
        &ExportConfig {
            run_id: &run.id,
            model: &run.model,
            classes: data.num_classes,
            in_channels: data.in_channels,
            class_names: &data.class_names,
            input,
            topography: &run.names.topography,
            lambda: run.objective.lambda().map(f64::from),
        },
    )?;
    let positions = to.join("positions.json");
    let layers = topography
        .layers
        .iter()
        .filter_map(|l| {
            let ChannelPositions { dim, coords } = l.positions.as_ref()?;
            Some(ExportLayer {
                layer: &l.layer,
                channels: l.channels,
                dim: *dim,
                coords,
            })
        })
        .collect();
    write_json(
        &positions,
        &ExportPositions {
            layout: &topography.layout,
            loss: run.objective.loss(),
            tap: run.objective.tap(),
            layers,
        },
    )?;
    Ok(Exported {
        tensors: tensors.len(),
        files: vec![model, config, positions],
    })
}
