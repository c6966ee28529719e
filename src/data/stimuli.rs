//! Stimuli made in code for the analyses: sine gratings for image data sets and pure
//! tones for audio ones, rendered through the same pixel format, front end and
//! normalisation as the split's own examples, so the model sees them as it saw training.

use candle_core::{Device, Tensor};

use super::DataError;
use super::audio::{SECOND_FRAMES, Stats};
use super::image::Normalize;
use super::logmel::LogMel;

/// How a split's examples reach a model, for stimuli rendered alike.
pub enum InputFormat<'a> {
    /// Images of `channels x height x width`, pixels in `[0, 1]` then normalised.
    Image {
        channels: usize,
        height: usize,
        width: usize,
        norm: &'a Normalize,
    },
    /// One-second log-mel spectrograms from waveforms, normalised by `stats`.
    Audio { logmel: &'a LogMel, stats: Stats },
}

/// Full-contrast sine gratings: every orientation at every spatial frequency and phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Gratings {
    /// Degrees in `[0, 180)`, counterclockwise from the image's rows: the bars' normal.
    pub orientations: Vec<f64>,
    /// Cycles per image width.
    pub frequencies: Vec<f64>,
    /// Phases per orientation and frequency, evenly spaced over a cycle.
    pub phases: usize,
}

impl Default for Gratings {
    /// 16 orientations, 2, 4 and 8 cycles per image, 4 phases: 192 images.
    fn default() -> Self {
        Gratings {
            orientations: (0..16).map(|k| k as f64 * 180.0 / 16.0).collect(),
            frequencies: vec![2.0, 4.0, 8.0],
            phases: 4,
        }
    }
}

impl Gratings {
    pub fn len(&self) -> usize {
        self.orientations.len() * self.frequencies.len() * self.phases
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of (orientation `o`, frequency `f`, phase `p`) in [`Gratings::render`]'s order.
    pub fn index(&self, o: usize, f: usize, p: usize) -> usize {
        (o * self.frequencies.len() + f) * self.phases + p
    }

    /// The gratings `range` (in [`Gratings::index`] order) as `(N, C, H, W)` inputs;
    /// every channel alike (a grey grating on a colour data set).
    pub fn render(
        &self,
        range: std::ops::Range<usize>,
        format: &InputFormat,
        device: &Device,
    ) -> Result<Tensor, DataError> {
        let &InputFormat::Image {
            channels,
            height,
            width,
            norm,
        } = format
        else {
            return Err(DataError::Stimulus {
                what: "gratings",
                input: "audio",
            });
        };
        let mut out = Vec::with_capacity(range.len() * channels * height * width);
        let (cy, cx) = ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0);
        for k in range.clone() {
            let p = k % self.phases;
            let f = (k / self.phases) % self.frequencies.len();
            let o = k / (self.phases * self.frequencies.len());
            let theta = self.orientations[o].to_radians();
            let cycles = self.frequencies[f] / width as f64;
            let phase = std::f64::consts::TAU * p as f64 / self.phases as f64;
            for ch in 0..channels {
                let (mean, std) = (norm.mean[ch], norm.std[ch]);
                for y in 0..height {
                    for x in 0..width {
                        let along = (x as f64 - cx) * theta.cos() - (y as f64 - cy) * theta.sin();
                        let v = 0.5 + 0.5 * (std::f64::consts::TAU * cycles * along + phase).cos();
                        out.push((v as f32 - mean) / std);
                    }
                }
            }
        }
        Ok(Tensor::from_vec(
            out,
            (range.len(), channels, height, width),
            device,
        )?)
    }
}

/// Pure tones log-spaced over the front end's frequency range.
#[derive(Debug, Clone, PartialEq)]
pub struct Tones {
    /// Hz, ascending.
    pub frequencies: Vec<f64>,
}

/// Peak amplitude of every tone (full scale is 1).
const TONE_AMPLITUDE: f64 = 0.1;

impl Tones {
    /// `count` tones from the front end's lowest useful frequency (its `f_min`, and at least
    /// two FFT bins up) to 95% of its `f_max` (below Nyquist).
    pub fn over(logmel: &LogMel, count: usize) -> Tones {
        let p = logmel.params();
        let rate = f64::from(p.sample_rate);
        let lo = p.f_min.max(2.0 * rate / p.n_fft as f64);
        let hi = 0.95 * p.f_max.min(rate / 2.0);
        let step = (hi / lo).ln() / (count.max(2) - 1) as f64;
        Tones {
            frequencies: (0..count).map(|k| lo * (step * k as f64).exp()).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.frequencies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frequencies.is_empty()
    }

    /// The tones `range`, one second each, as `(N, 1, n_mels, frames)` inputs.
    pub fn render(
        &self,
        range: std::ops::Range<usize>,
        format: &InputFormat,
        device: &Device,
    ) -> Result<Tensor, DataError> {
        let &InputFormat::Audio { logmel, stats } = format else {
            return Err(DataError::Stimulus {
                what: "tones",
                input: "images",
            });
        };
        let rate = f64::from(logmel.params().sample_rate);
        let n_mels = logmel.params().n_mels;
        let mut out = Vec::with_capacity(range.len() * n_mels * SECOND_FRAMES);
        for &f in &self.frequencies[range.clone()] {
            let wave: Vec<f32> = (0..rate as usize)
                .map(|t| {
                    (TONE_AMPLITUDE * (std::f64::consts::TAU * f * t as f64 / rate).sin()) as f32
                })
                .collect();
            let features = logmel.compute(&wave);
            for m in 0..n_mels {
                let row = &features.data[m * features.frames..(m + 1) * features.frames];
                out.extend(
                    (0..SECOND_FRAMES)
                        .map(|t| row.get(t).map_or(0.0, |v| (v - stats.mean) / stats.std)),
                );
            }
        }
        Ok(Tensor::from_vec(
            out,
            (range.len(), 1, n_mels, SECOND_FRAMES),
            device,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::logmel::LogMelParams;

    #[test]
    fn a_grating_runs_along_its_orientation_and_is_normalised_like_the_data() {
        let norm = Normalize {
            mean: vec![0.5],
            std: vec![0.25],
        };
        let format = InputFormat::Image {
            channels: 1,
            height: 16,
            width: 16,
            norm: &norm,
        };
        let g = Gratings {
            orientations: vec![0.0, 90.0],
            frequencies: vec![4.0],
            phases: 2,
        };
        let x = g.render(0..4, &format, &Device::Cpu).expect("render");
        let v = x
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("values");
        let at = |n: usize, y: usize, x: usize| v[n * 256 + y * 16 + x];
        // Orientation 0: constant down each column; 90: constant along each row.
        assert!((at(0, 0, 3) - at(0, 15, 3)).abs() < 1e-5);
        assert!((at(2, 3, 0) - at(2, 3, 15)).abs() < 1e-5);
        assert!((at(0, 0, 0) - at(0, 0, 2)).abs() > 0.5);
        // Pixels within [0, 1] before normalisation, [-2, 2] after; sampled at half-pixel
        // offsets from the centre, 4 cycles per 16 pixels reach +-0.71 of full contrast.
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(
            lo >= -2.0 - 1e-4 && hi <= 2.0 + 1e-4 && hi - lo > 2.8,
            "{lo} {hi}"
        );
        // Phases half a cycle apart are each other's negatives about the mean.
        assert!((at(0, 5, 5) + at(1, 5, 5)).abs() < 1e-4);
    }

    #[test]
    fn a_tone_lights_up_the_mel_band_of_its_frequency() {
        let logmel = LogMel::new(LogMelParams::default());
        let tones = Tones::over(&logmel, 8);
        assert!((tones.frequencies[0] - 80.0).abs() < 1e-9);
        assert!((tones.frequencies[7] - 7600.0).abs() < 1e-6);
        let format = InputFormat::Audio {
            logmel: &logmel,
            stats: Stats {
                mean: 0.0,
                std: 1.0,
            },
        };
        let x = tones.render(0..8, &format, &Device::Cpu).expect("render");
        assert_eq!(x.dims(), &[8, 1, 64, SECOND_FRAMES]);
        // The band with the most energy rises with the tone's frequency.
        let bands = x
            .mean(3)
            .and_then(|t| t.squeeze(1))
            .and_then(|t| t.argmax(1))
            .and_then(|t| t.to_vec1::<u32>())
            .expect("bands");
        assert!(bands.windows(2).all(|w| w[1] > w[0]), "{bands:?}");
    }
}
