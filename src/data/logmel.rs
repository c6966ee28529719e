//! The log-mel front end of the reference: torchaudio's
//! `MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=64)` followed by
//! `AmplitudeToDB()`: periodic Hann window, centred frames with reflect padding, power 2,
//! HTK mel scale from 0 to 8 kHz without filter normalisation, `10*log10(max(x, 1e-10))`.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// The front end's parameters; they are part of the feature cache's key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogMelParams {
    pub sample_rate: u32,
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub f_min: f64,
    pub f_max: f64,
}

impl Default for LogMelParams {
    fn default() -> Self {
        LogMelParams {
            sample_rate: 16000,
            n_fft: 400,
            hop: 160,
            n_mels: 64,
            f_min: 0.0,
            f_max: 8000.0,
        }
    }
}

impl LogMelParams {
    /// A stable text naming every parameter, for cache keys.
    pub fn key(&self) -> String {
        format!(
            "logmel-v1 sr={} n_fft={} hop={} n_mels={} f_min={} f_max={} hann-periodic center-reflect power2 htk db-amin1e-10",
            self.sample_rate, self.n_fft, self.hop, self.n_mels, self.f_min, self.f_max
        )
    }
}

/// A log-mel spectrogram, `n_mels x frames`, row-major (one row per mel band).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub n_mels: usize,
    pub frames: usize,
    pub data: Vec<f32>,
}

/// One mel filter: its first FFT bin and its weights from there.
struct Filter {
    start: usize,
    weights: Vec<f64>,
}

/// A reusable front end (window, filters and FFT plan computed once).
pub struct LogMel {
    params: LogMelParams,
    window: Vec<f64>,
    filters: Vec<Filter>,
    fft: Arc<dyn Fft<f64>>,
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// Index into a signal of length `n` reflected at both ends (numpy's `reflect`, repeated).
fn reflect(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let r = i.rem_euclid(period);
    (if r < n as i64 { r } else { period - r }) as usize
}

impl LogMel {
    pub fn new(params: LogMelParams) -> LogMel {
        let n = params.n_fft;
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let n_freqs = n / 2 + 1;
        let nyquist = f64::from(params.sample_rate) / 2.0;
        let freqs: Vec<f64> = (0..n_freqs)
            .map(|k| nyquist * k as f64 / (n_freqs - 1).max(1) as f64)
            .collect();
        let (m_min, m_max) = (hz_to_mel(params.f_min), hz_to_mel(params.f_max));
        let pts: Vec<f64> = (0..params.n_mels + 2)
            .map(|i| mel_to_hz(m_min + (m_max - m_min) * i as f64 / (params.n_mels + 1) as f64))
            .collect();
        let filters = (0..params.n_mels)
            .map(|m| {
                let (lo, mid, hi) = (pts[m], pts[m + 1], pts[m + 2]);
                let w: Vec<f64> = freqs
                    .iter()
                    .map(|&f| ((f - lo) / (mid - lo)).min((hi - f) / (hi - mid)).max(0.0))
                    .collect();
                let start = w.iter().position(|&v| v > 0.0).unwrap_or(0);
                let end = w.iter().rposition(|&v| v > 0.0).map_or(start, |e| e + 1);
                Filter {
                    start,
                    weights: w[start..end].to_vec(),
                }
            })
            .collect();
        let fft = FftPlanner::new().plan_fft_forward(n);
        LogMel {
            params,
            window,
            filters,
            fft,
        }
    }

    pub fn params(&self) -> &LogMelParams {
        &self.params
    }

    /// Frames a signal of `len` samples gives: `1 + len / hop` (101 for one second).
    pub fn frames(&self, len: usize) -> usize {
        1 + len / self.params.hop
    }

    /// The log-mel spectrogram of mono samples at the front end's rate.
    pub fn compute(&self, x: &[f32]) -> Features {
        let (n, hop) = (self.params.n_fft, self.params.hop);
        let frames = self.frames(x.len());
        let n_mels = self.params.n_mels;
        let mut data = vec![0f32; n_mels * frames];
        let mut buf = vec![Complex::new(0.0f64, 0.0); n];
        let mut scratch = vec![Complex::new(0.0f64, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f64; n / 2 + 1];
        let pad = (n / 2) as i64;
        for t in 0..frames {
            for (k, b) in buf.iter_mut().enumerate() {
                let i = (t * hop) as i64 + k as i64 - pad;
                let v = if x.is_empty() {
                    0.0
                } else {
                    f64::from(x[reflect(i, x.len())])
                };
                *b = Complex::new(v * self.window[k], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for (m, f) in self.filters.iter().enumerate() {
                let e: f64 = f
                    .weights
                    .iter()
                    .zip(&power[f.start..])
                    .map(|(w, p)| w * p)
                    .sum();
                data[m * frames + t] = (10.0 * e.max(1e-10).log10()) as f32;
            }
        }
        Features {
            n_mels,
            frames,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_gives_101_frames_and_silence_is_minus_100_db() {
        let lm = LogMel::new(LogMelParams::default());
        let f = lm.compute(&[0.0; 16000]);
        assert_eq!((f.n_mels, f.frames), (64, 101));
        assert!(f.data.iter().all(|&v| v == -100.0));
    }

    #[test]
    fn a_tone_peaks_in_its_mel_band() {
        let lm = LogMel::new(LogMelParams::default());
        let x: Vec<f32> = (0..16000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin())
            .collect();
        let f = lm.compute(&x);
        let col: Vec<f32> = (0..64).map(|m| f.data[m * 101 + 50]).collect();
        let best = (0..64).max_by(|&a, &b| col[a].total_cmp(&col[b])).unwrap();
        // The band whose centre is nearest 1 kHz on the HTK scale.
        let step = hz_to_mel(8000.0) / 65.0;
        let want = (1..=64).min_by(|&a, &b| {
            (mel_to_hz(a as f64 * step) - 1000.0)
                .abs()
                .total_cmp(&(mel_to_hz(b as f64 * step) - 1000.0).abs())
        });
        assert_eq!(Some(best + 1), want);
    }

    #[test]
    fn reflect_matches_numpy() {
        // numpy.pad([0,1,2,3], 3, 'reflect') = [3,2,1,0,1,2,3,2,1,0]
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }
}
