//! Band-limited resampling by a windowed sinc (polyphase), after torchaudio's
//! `functional.resample` defaults: 6 zero crossings, roll-off 0.99, Hann window.

/// Zero crossings of the sinc on each side.
const WIDTH: f64 = 6.0;
/// Cut-off as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.99;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Resamples `x` from `from` Hz to `to` Hz; `ceil(len * to / from)` samples come out.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() || from == 0 || to == 0 {
        return x.to_vec();
    }
    let g = gcd(u64::from(from), u64::from(to));
    let (orig, new) = (u64::from(from) / g, u64::from(to) / g);
    // Cut-off in cycles per input sample; the filter reaches `half` input samples each side.
    let cutoff = ROLLOFF * orig.min(new) as f64 / orig as f64 / 2.0;
    let half = (WIDTH / (2.0 * cutoff)).ceil() as i64;
    // One kernel per phase: output j sits at input time j*orig/new = base + phase/new.
    let taps = (2 * half + 1) as usize;
    let kernels: Vec<Vec<f64>> = (0..new)
        .map(|phase| {
            let frac = phase as f64 / new as f64;
            (0..taps)
                .map(|k| {
                    let d = (k as i64 - half) as f64 - frac; // input index minus output time
                    let t = 2.0 * cutoff * d; // in zero crossings
                    if t.abs() > WIDTH {
                        return 0.0;
                    }
                    let window = (std::f64::consts::PI * t / WIDTH / 2.0).cos().powi(2);
                    let sinc = if t == 0.0 {
                        1.0
                    } else {
                        (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t)
                    };
                    2.0 * cutoff * sinc * window
                })
                .collect()
        })
        .collect();
    let n_out = (x.len() as u64 * new).div_ceil(orig) as usize;
    let len = x.len() as i64;
    (0..n_out)
        .map(|j| {
            let pos = j as u64 * orig;
            let base = (pos / new) as i64;
            let kernel = &kernels[(pos % new) as usize];
            let mut acc = 0.0f64;
            for (k, w) in kernel.iter().enumerate() {
                // Outside the signal is silence, as torchaudio pads with zeros.
                let i = base + k as i64 - half;
                if (0..len).contains(&i) {
                    acc += w * f64::from(x[i as usize]);
                }
            }
            acc as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    #[test]
    fn keeps_a_tone_below_nyquist() {
        for from in [44100, 22050, 48000, 8000] {
            let y = resample(&tone(440.0, from, from as usize), from, 16000);
            assert_eq!(y.len(), 16000);
            let want = tone(440.0, 16000, 16000);
            // Away from the edges (where the zero padding bites) the tone is intact.
            let err = (500..15500)
                .map(|i| (y[i] - want[i]).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 2e-3, "{from}: {err}");
        }
    }

    #[test]
    fn removes_a_tone_above_the_new_nyquist() {
        let y = resample(&tone(10_000.0, 48000, 48000), 48000, 16000);
        let rms = (y[500..15500].iter().map(|v| v * v).sum::<f32>() / 15000.0).sqrt();
        assert!(rms < 1e-2, "{rms}");
    }

    #[test]
    fn lengths_and_identity() {
        assert_eq!(resample(&[1.0; 441], 44100, 16000).len(), 160);
        assert_eq!(resample(&[1.0; 7], 8000, 16000).len(), 14);
        assert_eq!(resample(&[0.5, 0.25], 16000, 16000), vec![0.5, 0.25]);
    }
}
