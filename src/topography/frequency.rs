//! Frequency tuning of an audio channel: its responses to pure tones at log-spaced
//! frequencies give a preferred frequency (the tone it responds to most) and a tuning
//! width (in octaves, the span around the peak where the response stays at least halfway
//! from the channel's weakest response to its strongest, its edges interpolated).

use serde::{Deserialize, Serialize};

/// One channel's frequency tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrequencyTuning {
    /// Hz.
    pub preferred: f64,
    /// Octaves.
    pub width: f64,
}

/// The tuning from `responses` to tones at `frequencies` (Hz, ascending); `None` when the
/// responses do not vary or are not finite.
pub fn frequency_tuning(responses: &[f64], frequencies: &[f64]) -> Option<FrequencyTuning> {
    if responses.is_empty() || responses.len() != frequencies.len() {
        return None;
    }
    if responses.iter().any(|r| !r.is_finite()) {
        return None;
    }
    let (peak, &high) = responses
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let low = responses.iter().copied().fold(f64::INFINITY, f64::min);
    // Finite, so ordered.
    if high <= low {
        return None;
    }
    let half = low + (high - low) / 2.0;
    let mut first = peak;
    while first > 0 && responses[first - 1] >= half {
        first -= 1;
    }
    let mut last = peak;
    while last + 1 < responses.len() && responses[last + 1] >= half {
        last += 1;
    }
    // Each edge where the response crosses half height, linear in log frequency between
    // the last tone above it and the first below.
    let octave = |k: usize| frequencies[k].log2();
    let edge = |inside: usize, outside: Option<usize>| match outside {
        Some(o) => {
            let t = (responses[inside] - half) / (responses[inside] - responses[o]);
            octave(inside) + t * (octave(o) - octave(inside))
        }
        None => octave(inside),
    };
    let below = edge(first, first.checked_sub(1));
    let above = edge(last, (last + 1 < responses.len()).then_some(last + 1));
    Some(FrequencyTuning {
        preferred: frequencies[peak],
        width: above - below,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gaussian_on_log_frequency_gives_its_centre_and_its_half_height_width() {
        let freqs: Vec<f64> = (0..61)
            .map(|k| 100.0 * 2f64.powf(k as f64 / 10.0))
            .collect();
        // Centred on 800 Hz (3 octaves up), sigma 0.5 octave: full width at half height
        // 2 sqrt(2 ln 2) sigma = 1.18 octaves, sampled every 0.1 octave.
        let r: Vec<f64> = freqs
            .iter()
            .map(|f| (-((f / 800.0).log2()).powi(2) / (2.0 * 0.25)).exp())
            .collect();
        let t = frequency_tuning(&r, &freqs).expect("tuned");
        assert!((t.preferred - 800.0).abs() < 1e-9);
        assert!((t.width - 1.1774).abs() < 0.01, "{t:?}");
        assert!(frequency_tuning(&[1.0; 61], &freqs).is_none());
    }
}
