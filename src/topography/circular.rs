//! Orientation tuning as the field measures it: a channel's responses to gratings at
//! orientations `θ` (degrees, period 180) summed as vectors at `2θ`. The preferred
//! orientation is half the angle of the sum; the selectivity is its length over the sum
//! of responses, `1 - circular variance` (1: responds to one orientation only; 0: to all
//! alike).

use serde::{Deserialize, Serialize};

/// Orientations repeat every 180 degrees.
pub const ORIENTATION_PERIOD: f64 = 180.0;

/// One channel's orientation tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrientationTuning {
    /// Degrees in `[0, 180)`.
    pub preferred: f64,
    /// `1 - circular variance`, in `[0, 1]`.
    pub selectivity: f64,
}

/// The tuning from non-negative `responses` at `orientations` (degrees); `None` when the
/// channel does not respond at all (every response 0) or a response is negative or not
/// finite.
pub fn orientation_tuning(responses: &[f64], orientations: &[f64]) -> Option<OrientationTuning> {
    let total: f64 = responses.iter().sum();
    if total.is_nan() || total <= 0.0 || responses.iter().any(|r| !r.is_finite() || *r < 0.0) {
        return None;
    }
    let (mut x, mut y) = (0.0, 0.0);
    for (r, theta) in responses.iter().zip(orientations) {
        let a = (2.0 * theta).to_radians();
        x += r * a.cos();
        y += r * a.sin();
    }
    let preferred = (y.atan2(x).to_degrees() / 2.0).rem_euclid(ORIENTATION_PERIOD);
    Some(OrientationTuning {
        preferred,
        selectivity: ((x * x + y * y).sqrt() / total).clamp(0.0, 1.0),
    })
}

/// The distance between two angles of period `period`, in `[0, period / 2]`.
pub fn circular_difference(a: f64, b: f64, period: f64) -> f64 {
    let d = (a - b).rem_euclid(period);
    d.min(period - d)
}

/// `a - b` wrapped into `[-period / 2, period / 2)`.
pub fn wrapped_difference(a: f64, b: f64, period: f64) -> f64 {
    (a - b + period / 2.0).rem_euclid(period) - period / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orientations(n: usize) -> Vec<f64> {
        (0..n).map(|k| k as f64 * 180.0 / n as f64).collect()
    }

    #[test]
    fn a_von_mises_tuning_gives_back_its_centre_and_a_sharper_one_is_more_selective() {
        let thetas = orientations(12);
        for centre in [0.0, 17.0, 90.0, 163.0] {
            let tune = |k: f64| -> Vec<f64> {
                thetas
                    .iter()
                    .map(|t| (k * ((2.0 * (t - centre)).to_radians().cos() - 1.0)).exp())
                    .collect()
            };
            let broad = orientation_tuning(&tune(1.0), &thetas).expect("tuned");
            let sharp = orientation_tuning(&tune(4.0), &thetas).expect("tuned");
            // Sampled every 15 degrees, a sharp curve's vector sum leans to the samples.
            assert!(circular_difference(broad.preferred, centre, 180.0) < 0.1);
            assert!(circular_difference(sharp.preferred, centre, 180.0) < 3.0);
            assert!(sharp.selectivity > broad.selectivity);
        }
    }

    #[test]
    fn a_flat_response_has_no_selectivity_and_one_orientation_alone_has_all() {
        let thetas = orientations(8);
        let flat = orientation_tuning(&[2.0; 8], &thetas).expect("tuned");
        assert!(flat.selectivity < 1e-12);
        let mut one = [0.0; 8];
        one[3] = 5.0;
        let t = orientation_tuning(&one, &thetas).expect("tuned");
        assert!((t.selectivity - 1.0).abs() < 1e-12);
        assert!((t.preferred - 67.5).abs() < 1e-9);
        assert!(orientation_tuning(&[0.0; 8], &thetas).is_none());
        assert!(orientation_tuning(&[1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], &thetas).is_none());
    }

    #[test]
    fn differences_wrap_at_the_period() {
        assert!((circular_difference(5.0, 175.0, 180.0) - 10.0).abs() < 1e-12);
        assert!((wrapped_difference(5.0, 175.0, 180.0) - 10.0).abs() < 1e-12);
        assert!((wrapped_difference(175.0, 5.0, 180.0) + 10.0).abs() < 1e-12);
        assert!((circular_difference(30.0, 120.0, 180.0) - 90.0).abs() < 1e-12);
    }
}
