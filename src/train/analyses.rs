//! The analyses stage: after training (or on a finished run, from its best checkpoint),
//! each tapped layer's responses to the probe set and to stimuli made in code, turned into
//! maps (a value per channel) and tested against shuffles of the same values over the
//! layout. Writes `topography.json` and `analyses.json`; the latter carries a key of the
//! settings and the checkpoint, so the stage is skipped while it stands and redone when
//! either changes (a killed run redoes it; nothing else is lost).

use std::time::Instant;

use candle_core::{DType, Tensor};
use sha2::{Digest, Sha256};

use crate::config::{Measure, ResponsePoint};
use crate::data::Dataset;
use crate::data::stimuli::{Gratings, Tones};
use crate::log::log;
use crate::nn::TopoModel;
use crate::plan::RunConfig;
use crate::results::{
    AnalysesRecord, GratingsRecord, LayerAnalyses, MapKind, MapRecord, ResultsError, read_json,
    write_json,
};
use crate::topography::{
    ClassResponses, Lattice, MapTest, Norm, Positions, count_pinwheels, frequency_tuning,
    map_statistics, orientation_tuning,
};
use crate::train::EngineError;
use crate::train::seeds::{Purpose, stream_seed};

/// Bumped whenever a measure changes, so that records computed before are redone.
const ANALYSES_VERSION: &str = "analyses-v1";
/// Distance bins of the smoothness curves.
const BINS: usize = 10;
/// Tones shown for tonotopy (log-spaced over the front end's range).
const TONES: usize = 48;

/// The key `analyses.json` must carry to stand for `run` as its best checkpoint is now.
pub fn analyses_key(run: &RunConfig, env: &super::TrainEnv) -> Result<String, EngineError> {
    let path = env.dir.best_checkpoint();
    let bytes = std::fs::read(&path).map_err(|e| EngineError::Checkpoint {
        path: path.clone(),
        message: format!("cannot read it to key the analyses: {e}"),
    })?;
    let settings = serde_json::to_string(&run.analyses).map_err(|e| EngineError::Serialise {
        what: "the analyses' settings",
        message: e.to_string(),
    })?;
    let mut h = Sha256::new();
    h.update(ANALYSES_VERSION.as_bytes());
    h.update(settings.as_bytes());
    h.update(run.dataset.kind.name().as_bytes());
    h.update(bytes);
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The key the analyses must be redone under, or `None` while `analyses.json` (and
/// `topography.json`) stand for `run` as it is now: the checkpoint is read and hashed once,
/// and the key handed on to [`analyse_finished`] or the stage.
pub fn stale_analyses(
    run: &RunConfig,
    env: &super::TrainEnv,
) -> Result<Option<String>, EngineError> {
    let key = analyses_key(run, env)?;
    let path = env.dir.analyses();
    if !path.exists() || !env.dir.topography().exists() {
        return Ok(Some(key));
    }
    // A record that does not read (older, torn by hand) is redone, not an error.
    match read_json::<AnalysesRecord>(&path) {
        Ok(r) if r.key == key => Ok(None),
        Ok(_) | Err(ResultsError::Parse { .. }) => Ok(Some(key)),
        Err(e) => Err(e.into()),
    }
}

/// A tapped layer's response averaged over space: `(B, C)` in f64.
fn spatial_means(tap: &Tensor) -> Result<Tensor, EngineError> {
    Ok(tap
        .detach()
        .to_dtype(DType::F64)?
        .flatten_from(2)?
        .mean(2)?)
}

/// Raw responses kept for checking elsewhere: per stimulus set and layer, the spatially
/// averaged response of every input (`inputs x channels`), and the probe's labels.
pub struct Raw {
    keep: bool,
    tensors: std::collections::HashMap<String, Vec<Tensor>>,
}

impl Raw {
    pub fn new(keep: bool) -> Raw {
        Raw {
            keep,
            tensors: Default::default(),
        }
    }

    /// Adds a batch of taps' spatial means under `set.<layer>`.
    pub fn add(&mut self, set: &str, taps: &[Tensor], names: &[String]) -> Result<(), EngineError> {
        if !self.keep {
            return Ok(());
        }
        for (tap, name) in taps.iter().zip(names) {
            self.keep_means(set, name, spatial_means(tap)?);
        }
        Ok(())
    }

    /// Keeps one layer's batch of spatial means under `set.<layer>`, when keeping.
    fn keep_means(&mut self, set: &str, name: &str, means: Tensor) {
        if self.keep {
            self.tensors
                .entry(format!("{set}.{name}"))
                .or_default()
                .push(means);
        }
    }

    /// Adds the probe batch's labels.
    pub fn labels(&mut self, labels: &Tensor) -> Result<(), EngineError> {
        if self.keep {
            let l = labels.to_dtype(DType::F64)?;
            self.tensors
                .entry("probe.labels".into())
                .or_default()
                .push(l);
        }
        Ok(())
    }

    /// Writes what was kept; when nothing was asked, removes responses an earlier
    /// analysis kept, which no longer match.
    pub fn write(&self, path: &std::path::Path) -> Result<(), EngineError> {
        if !self.keep {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ResultsError::Write {
                    path: path.to_path_buf(),
                    source: e,
                }
                .into()),
                _ => Ok(()),
            };
        }
        let mut out = std::collections::HashMap::new();
        for (k, parts) in &self.tensors {
            out.insert(k.clone(), Tensor::cat(parts, 0)?);
        }
        crate::train::checkpoint::save_tensors(path, &out)
    }
}

/// Each tapped layer's responses (spatial means per channel) to `count` inputs rendered
/// `batch` at a time: per layer, `count x channels`, row-major; kept in `raw` under `set`.
fn responses(
    model: &dyn TopoModel,
    count: usize,
    batch: usize,
    set: &str,
    raw: &mut Raw,
    mut render: impl FnMut(std::ops::Range<usize>) -> Result<Tensor, EngineError>,
) -> Result<Vec<Vec<f64>>, EngineError> {
    let names = model.tap_names();
    let mut out = vec![Vec::new(); model.tap_channels().len()];
    let mut start = 0;
    while start < count {
        let end = (start + batch.max(1)).min(count);
        let inputs = render(start..end)?;
        let taps = model.forward_t(&inputs, false)?.taps;
        for ((acc, tap), name) in out.iter_mut().zip(&taps).zip(&names) {
            let means = spatial_means(tap)?;
            acc.extend(means.flatten_all()?.to_vec1::<f64>()?);
            raw.keep_means(set, name, means);
        }
        start = end;
    }
    Ok(out)
}

/// Per channel: preferred orientation, orientation selectivity and preferred spatial
/// frequency (log2 cycles per image) from responses to `gratings` (`len x channels`).
/// Orientation is read at the channel's preferred frequency, averaged over phases;
/// responses read before the ReLU (`at: conv`) are taken from the channel's weakest.
pub fn orientation_maps(
    resp: &[f64],
    channels: usize,
    gratings: &Gratings,
    at: ResponsePoint,
) -> [Vec<Option<f64>>; 3] {
    let (no, nf, np) = (
        gratings.orientations.len(),
        gratings.frequencies.len(),
        gratings.phases,
    );
    let mut maps: [Vec<Option<f64>>; 3] = Default::default();
    for c in 0..channels {
        let r = |o: usize, f: usize| -> f64 {
            (0..np)
                .map(|p| resp[gratings.index(o, f, p) * channels + c])
                .sum::<f64>()
                / np as f64
        };
        let by_frequency: Vec<f64> = (0..nf)
            .map(|f| (0..no).map(|o| r(o, f)).sum::<f64>())
            .collect();
        let Some(best) = (0..nf).max_by(|&a, &b| by_frequency[a].total_cmp(&by_frequency[b]))
        else {
            // No frequencies shown: every channel keeps its place, without a value.
            maps.iter_mut().for_each(|m| m.push(None));
            continue;
        };
        let mut tuning: Vec<f64> = (0..no).map(|o| r(o, best)).collect();
        if at == ResponsePoint::Conv {
            let low = tuning.iter().copied().fold(f64::INFINITY, f64::min);
            tuning.iter_mut().for_each(|v| *v -= low);
        }
        let t = orientation_tuning(&tuning, &gratings.orientations);
        maps[0].push(t.map(|t| t.preferred));
        maps[1].push(t.map(|t| t.selectivity));
        maps[2].push(t.map(|_| gratings.frequencies[best].log2()));
    }
    maps
}

/// Per channel: preferred frequency (log2 Hz) and tuning width (octaves) from responses
/// to `tones` (`len x channels`).
pub fn tonotopy_maps(resp: &[f64], channels: usize, tones: &Tones) -> [Vec<Option<f64>>; 2] {
    let mut maps: [Vec<Option<f64>>; 2] = Default::default();
    for c in 0..channels {
        let r: Vec<f64> = (0..tones.len()).map(|k| resp[k * channels + c]).collect();
        let t = frequency_tuning(&r, &tones.frequencies);
        maps[0].push(t.map(|t| t.preferred.log2()));
        maps[1].push(t.map(|t| t.width));
    }
    maps
}

/// Where a layer's maps lie.
pub struct MapSpace<'a> {
    pub positions: &'a Positions,
    pub norm: Norm,
}

/// The analyses of `model` (its taps at the response point asked for) on `data`, with
/// the category responses already gathered on the probe set; `started` is when the
/// stage began (its time is recorded).
#[allow(clippy::too_many_arguments)]
pub(crate) fn analyse(
    model: &dyn TopoModel,
    data: &Dataset,
    spaces: &[MapSpace],
    category: &[ClassResponses],
    layout: &str,
    run: &RunConfig,
    key: String,
    started: Instant,
    raw: &mut Raw,
    env: &super::TrainEnv,
) -> Result<AnalysesRecord, EngineError> {
    let spec = &run.analyses;
    let measures = spec.measures_for(run.dataset.kind);
    let names = model.tap_names();
    let channels = model.tap_channels();
    let mut maps: Vec<Vec<(MapKind, Vec<Option<f64>>)>> = vec![Vec::new(); names.len()];
    let format = data.test.input_format();
    let batch = run.training.eval_batch();
    let device = &env.device;
    let mut gratings_record = None;
    let mut tones_record = None;
    for &measure in &measures {
        match measure {
            Measure::Category => {
                for (layer, resp) in maps.iter_mut().zip(category) {
                    let dprime = resp.dprimes();
                    for (k, name) in data.class_names.iter().enumerate() {
                        let values = dprime.iter().map(|c| c.get(k).copied().flatten());
                        layer.push((
                            MapKind::Dprime {
                                class: k,
                                name: name.clone(),
                            },
                            values.collect(),
                        ));
                    }
                }
            }
            Measure::Orientation => {
                let g = Gratings::default();
                let resp = responses(model, g.len(), batch, "gratings", raw, |r| {
                    Ok(g.render(r, &format, device)?)
                })?;
                for ((layer, r), &c) in maps.iter_mut().zip(&resp).zip(&channels) {
                    let [pref, osi, sf] = orientation_maps(r, c, &g, spec.at);
                    layer.push((MapKind::PreferredOrientation, pref));
                    layer.push((MapKind::OrientationSelectivity, osi));
                    layer.push((MapKind::PreferredSpatialFrequency, sf));
                }
                gratings_record = Some(GratingsRecord {
                    orientations: g.orientations.clone(),
                    frequencies: g.frequencies.clone(),
                    phases: g.phases,
                });
            }
            Measure::Tonotopy => {
                let crate::data::stimuli::InputFormat::Audio { logmel, .. } = &format else {
                    return Err(crate::data::DataError::Stimulus {
                        what: "tones",
                        input: "images",
                    }
                    .into());
                };
                let tones = Tones::over(logmel, TONES);
                let resp = responses(model, tones.len(), batch, "tones", raw, |r| {
                    Ok(tones.render(r, &format, device)?)
                })?;
                for ((layer, r), &c) in maps.iter_mut().zip(&resp).zip(&channels) {
                    let [pref, width] = tonotopy_maps(r, c, &tones);
                    layer.push((MapKind::PreferredFrequency, pref));
                    layer.push((MapKind::TuningWidth, width));
                }
                tones_record = Some(tones.frequencies.clone());
            }
        }
    }
    let mut layers = Vec::with_capacity(names.len());
    for (l, ((name, layer_maps), space)) in names.iter().zip(maps).zip(spaces).enumerate() {
        log(&format!(
            "  analyses: layer {}/{} ({name}): {} maps x {} shuffles",
            l + 1,
            names.len(),
            layer_maps.len(),
            spec.permutations
        ));
        let lattice = Lattice::of(space.positions);
        let mut pinwheels = None;
        let mut records = Vec::with_capacity(layer_maps.len());
        for (m, (kind, values)) in layer_maps.into_iter().enumerate() {
            let seed = stream_seed(run.seed, (l * 1000 + m) as u32, Purpose::Permutation);
            let test = MapTest {
                bins: BINS,
                permutations: spec.permutations,
                seed,
            };
            let statistics =
                map_statistics(&values, space.positions, space.norm, kind.quantity(), test);
            if kind == MapKind::PreferredOrientation
                && let Some(lattice) = &lattice
            {
                pinwheels = Some(count_pinwheels(lattice, &values, spec.permutations, seed));
            }
            records.push(MapRecord {
                map: kind,
                values,
                statistics,
            });
        }
        layers.push(LayerAnalyses {
            layer: name.clone(),
            channels: channels[l],
            maps: records,
            pinwheels,
        });
    }
    Ok(AnalysesRecord {
        key,
        measures,
        at: spec.at,
        permutations: spec.permutations,
        layout: layout.to_string(),
        gratings: gratings_record,
        tones: tones_record,
        layers,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes the record where the run keeps it.
pub(crate) fn write(record: &AnalysesRecord, env: &super::TrainEnv) -> Result<(), EngineError> {
    Ok(write_json(&env.dir.analyses(), record)?)
}

/// A finished run's analyses from its best checkpoint, without training, under `key`
/// ([`analyses_key`], or what [`stale_analyses`] returned).
pub fn analyse_finished(
    run: &RunConfig,
    env: &super::TrainEnv,
    key: String,
) -> Result<(), EngineError> {
    let data = crate::data::load(&run.dataset, &env.cache_dir)?;
    let (varmap, _) = super::build_model(run, &data, &env.device, env.kernels)?;
    crate::train::checkpoint::load_weights(&env.dir.best_checkpoint(), &varmap, &env.device)?;
    super::stages::measure(&data, &varmap, run, env, key)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::data::audio::Stats;
    use crate::data::image::Normalize;
    use crate::data::logmel::{LogMel, LogMelParams};
    use crate::data::stimuli::InputFormat;
    use crate::topography::{Layout, Quantity, circular_difference, positions};

    /// Channel responses as the stage reads them: ReLU of a conv, averaged over space,
    /// `count x channels`.
    fn conv_responses(inputs: &Tensor, weights: &Tensor, pad: usize) -> Vec<f64> {
        inputs
            .conv2d(weights, pad, 1, 1, 1)
            .and_then(|t| t.relu())
            .and_then(|t| t.flatten_from(2))
            .and_then(|t| t.mean(2))
            .and_then(|t| t.to_dtype(DType::F64))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .expect("responses")
    }

    #[test]
    fn gabor_filters_laid_along_a_planted_orientation_map_give_it_back_with_its_pinwheels() {
        // 256 channels on a 16 x 16 grid, their preferred orientation half the angle seen
        // from each of three planted pinwheels (charges +1, -1, +1).
        let p = positions(Layout::Grid, 2, 256).expect("grid");
        let centres = [
            ([0.31, 0.42], 1.0),
            ([0.72, 0.55], -1.0),
            ([0.5, 0.83], 1.0),
        ];
        let planted: Vec<f64> = p
            .iter()
            .map(|x| {
                let a: f64 = centres
                    .iter()
                    .map(|(c, s)| s * (x[1] - c[1]).atan2(x[0] - c[0]).to_degrees() / 2.0)
                    .sum();
                a.rem_euclid(180.0)
            })
            .collect();
        // A Gabor per channel at its orientation, 4 cycles per 16-pixel image, in the
        // gratings' own coordinates.
        let (side, k) = (16usize, 9usize);
        let wavelength = side as f64 / 4.0;
        let mut w = Vec::with_capacity(256 * k * k);
        for theta in &planted {
            let t = theta.to_radians();
            for y in 0..k {
                for x in 0..k {
                    let (dx, dy) = (x as f64 - 4.0, y as f64 - 4.0);
                    let along = dx * t.cos() - dy * t.sin();
                    let envelope = (-(dx * dx + dy * dy) / (2.0 * 2.5 * 2.5)).exp();
                    w.push((envelope * (std::f64::consts::TAU * along / wavelength).cos()) as f32);
                }
            }
        }
        let weights = Tensor::from_vec(w, (256, 1, k, k), &Device::Cpu).expect("weights");
        let norm = Normalize {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let format = InputFormat::Image {
            channels: 1,
            height: side,
            width: side,
            norm: &norm,
        };
        let g = Gratings::default();
        let inputs = g
            .render(0..g.len(), &format, &Device::Cpu)
            .expect("gratings");
        let resp = conv_responses(&inputs, &weights, k / 2);
        let [pref, osi, sf] = orientation_maps(&resp, 256, &g, ResponsePoint::Relu);
        let worst = pref
            .iter()
            .zip(&planted)
            .map(|(got, want)| circular_difference(got.expect("tuned"), *want, 180.0))
            .fold(0.0, f64::max);
        assert!(
            worst < 3.0,
            "worst preferred orientation off by {worst:.2} degrees"
        );
        assert!(osi.iter().all(|s| s.expect("tuned") > 0.3));
        assert!(
            sf.iter().all(|f| *f == Some(2.0)),
            "every channel prefers 4 cycles"
        );
        let lattice = Lattice::of(&p).expect("lattice");
        let count = count_pinwheels(&lattice, &pref, 99, 1);
        let mut charges: Vec<i8> = count.pinwheels.iter().map(|w| w.charge).collect();
        charges.sort();
        assert_eq!(charges, vec![-1, 1, 1], "{:?}", count.pinwheels);
        assert!(count.null_mean > 30.0 && count.p <= 0.01, "{count:?}");
        let test = MapTest {
            bins: 10,
            permutations: 99,
            seed: 3,
        };
        let quantity = Quantity::Angle { period: 180.0 };
        let s = map_statistics(&pref, &p, Norm::Euclidean, quantity, test).expect("stats");
        assert!(
            s.smoothness > 0.5 && s.smoothness_p <= 0.01 && s.moran_p <= 0.01,
            "{s:?}"
        );
    }

    #[test]
    fn channels_reading_planted_mel_bands_are_tuned_to_those_bands_in_order() {
        let logmel = LogMel::new(LogMelParams::default());
        let tones = Tones::over(&logmel, TONES);
        let format = InputFormat::Audio {
            logmel: &logmel,
            stats: Stats {
                mean: -20.0,
                std: 20.0,
            },
        };
        let inputs = tones
            .render(0..tones.len(), &format, &Device::Cpu)
            .expect("tones");
        // Channel c reads mel band 16 + 4c alone, 12 channels up the mel axis (above the
        // lowest bands, which are narrower than the FFT's 40 Hz bins and blur together).
        let bands: Vec<usize> = (0..12).map(|c| 16 + 4 * c).collect();
        let mut w = vec![0f32; 12 * 64];
        for (c, &b) in bands.iter().enumerate() {
            w[c * 64 + b] = 1.0;
        }
        let weights = Tensor::from_vec(w, (12, 1, 64, 1), &Device::Cpu).expect("weights");
        let resp = conv_responses(&inputs, &weights, 0);
        let [pref, width] = tonotopy_maps(&resp, 12, &tones);
        let pref: Vec<f64> = pref.iter().map(|v| v.expect("tuned")).collect();
        // The HTK mel scale from 0 to 8 kHz over 64 bands: band b's centre.
        let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
        let hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
        for (c, &b) in bands.iter().enumerate() {
            let centre = hz(mel(8000.0) * (b + 1) as f64 / 65.0);
            let off = (pref[c] - centre.log2()).abs();
            assert!(
                off < 0.25,
                "channel {c}: {:.0} Hz for band centre {centre:.0} Hz",
                pref[c].exp2()
            );
        }
        assert!(
            pref.windows(2).all(|w| w[1] > w[0]),
            "tonotopic order: {pref:?}"
        );
        assert!(width.iter().all(|w| w.expect("width") > 0.0));
    }
}
