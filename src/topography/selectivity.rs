//! What each channel prefers, and whether neighbours on the layout prefer the same: the
//! yardstick that compares methods with different losses (TDANN's and All-TNN's
//! category maps, for any layout and data set).
//!
//! A channel's response to an example is its activation averaged over positions. Its
//! preferred class is the argmax of its mean response per class; its selectivity,
//! `(r_max - mean_c r_c) / (r_max - min_c r_c)`, is 1 when one class stands out alone and
//! 0 when every class gets the same response. The neighbour agreement of a layer is the
//! share of (channel, nearest channel) pairs with the same preferred class (every
//! channel at the smallest distance counts); against it, the same share with the
//! preferred classes shuffled over the positions, averaged over seeded shuffles.
//!
//! Category selectivity as TDANN and All-TNN publish it: per channel and class, d′ of the
//! class against all the others, `(m_k - m_rest) / sqrt((s_k^2 + s_rest^2) / 2)` with sample
//! variances of the per-example responses.

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::MetricsError;

/// Running per-class sums of every channel's mean response.
#[derive(Debug, Clone)]
pub struct ClassResponses {
    channels: usize,
    classes: usize,
    /// `classes x channels`, row-major.
    sums: Vec<f64>,
    /// Sums of squared responses, as `sums`.
    squares: Vec<f64>,
    counts: Vec<usize>,
}

/// Mean and sample variance from a sum, a sum of squares and a count of at least 2
/// (clamped at 0 against rounding).
fn moments(sum: f64, squares: f64, n: usize) -> (f64, f64) {
    let mean = sum / n as f64;
    let var = ((squares - sum * mean) / (n - 1) as f64).max(0.0);
    (mean, var)
}

/// One channel's preference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    pub class: usize,
    pub selectivity: f64,
}

/// A layer's neighbour agreement and its chance level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeighbourAgreement {
    /// Share of nearest-neighbour pairs with the same preferred class.
    pub same: f64,
    /// The same share with the preferences shuffled over the positions (mean).
    pub shuffled: f64,
    pub shuffles: usize,
}

impl ClassResponses {
    pub fn new(channels: usize, classes: usize) -> ClassResponses {
        ClassResponses {
            channels,
            classes,
            sums: vec![0.0; channels * classes],
            squares: vec![0.0; channels * classes],
            counts: vec![0; classes],
        }
    }

    /// Adds activations `(B, C, ...)` of examples labelled `labels` (`B` of them).
    pub fn add(&mut self, activations: &Tensor, labels: &[u32]) -> Result<(), MetricsError> {
        let dims = activations.dims();
        if dims.len() < 2 || dims[1] != self.channels || dims[0] != labels.len() {
            return Err(MetricsError::Shape {
                shape: dims.to_vec(),
                channels: self.channels,
            });
        }
        let means = activations
            .detach()
            .to_dtype(DType::F64)?
            .flatten_from(2)?
            .mean(2)?
            .to_vec2::<f64>()?;
        for (row, &label) in means.iter().zip(labels) {
            let class = label as usize;
            if class >= self.classes {
                continue;
            }
            self.counts[class] += 1;
            let span = class * self.channels..(class + 1) * self.channels;
            for ((sum, square), v) in self.sums[span.clone()]
                .iter_mut()
                .zip(&mut self.squares[span])
                .zip(row)
            {
                *sum += v;
                *square += v * v;
            }
        }
        Ok(())
    }

    /// Per channel, per class: d′ of the class against all the others; `None` where either
    /// side has fewer than 2 examples or both are constant.
    pub fn dprimes(&self) -> Vec<Vec<Option<f64>>> {
        let total: usize = self.counts.iter().sum();
        (0..self.channels)
            .map(|c| {
                let (all_sum, all_sq) = (0..self.classes).fold((0.0, 0.0), |(s, q), k| {
                    let i = k * self.channels + c;
                    (s + self.sums[i], q + self.squares[i])
                });
                (0..self.classes)
                    .map(|k| {
                        let i = k * self.channels + c;
                        let (n, rest) = (self.counts[k], total - self.counts[k]);
                        if n < 2 || rest < 2 {
                            return None;
                        }
                        let (mean, var) = moments(self.sums[i], self.squares[i], n);
                        let (rest_mean, rest_var) =
                            moments(all_sum - self.sums[i], all_sq - self.squares[i], rest);
                        let spread = ((var + rest_var) / 2.0).sqrt();
                        (spread > 0.0).then(|| (mean - rest_mean) / spread)
                    })
                    .collect()
            })
            .collect()
    }

    /// Each channel's preferred class and selectivity over the classes seen.
    pub fn preferences(&self) -> Result<Vec<Preference>, MetricsError> {
        let seen: Vec<usize> = (0..self.classes).filter(|&k| self.counts[k] > 0).collect();
        if seen.is_empty() {
            return Err(MetricsError::NoSamples);
        }
        Ok((0..self.channels)
            .map(|c| {
                let r: Vec<(usize, f64)> = seen
                    .iter()
                    .map(|&k| (k, self.sums[k * self.channels + c] / self.counts[k] as f64))
                    .collect();
                // Ties go to the lower class: the order is fixed.
                let (class, max) =
                    r.iter()
                        .copied()
                        .fold((r[0].0, f64::NEG_INFINITY), |best, (k, v)| {
                            if v > best.1 { (k, v) } else { best }
                        });
                let min = r.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
                let mean = r.iter().map(|p| p.1).sum::<f64>() / r.len() as f64;
                let selectivity = if max > min {
                    (max - mean) / (max - min)
                } else {
                    0.0
                };
                Preference { class, selectivity }
            })
            .collect())
    }
}

/// Every channel's nearest channels (all at the smallest distance), from a `C x C`
/// distance matrix.
fn nearest(distances: &[f64], channels: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for i in 0..channels {
        let row = &distances[i * channels..(i + 1) * channels];
        let d = (0..channels)
            .filter(|&j| j != i)
            .map(|j| row[j])
            .fold(f64::INFINITY, f64::min);
        // Distances are computed the same way for every pair: equal ones compare equal,
        // but allow for rounding between symmetric layouts.
        let tolerance = 1e-9 * d.abs().max(1.0);
        pairs.extend(
            (0..channels)
                .filter(|&j| j != i && row[j] <= d + tolerance)
                .map(|j| (i, j)),
        );
    }
    pairs
}

fn share(classes: &[usize], pairs: &[(usize, usize)]) -> f64 {
    let same = pairs
        .iter()
        .filter(|&&(i, j)| classes[i] == classes[j])
        .count();
    same as f64 / pairs.len() as f64
}

/// The layer's neighbour agreement under `distances` (`C x C`), against `shuffles`
/// shuffles drawn from `seed`; `None` for fewer than two channels.
pub fn neighbour_agreement(
    preferences: &[Preference],
    distances: &[f64],
    shuffles: usize,
    seed: u64,
) -> Option<NeighbourAgreement> {
    let channels = preferences.len();
    if channels < 2 || distances.len() != channels * channels || shuffles == 0 {
        return None;
    }
    let pairs = nearest(distances, channels);
    let classes: Vec<usize> = preferences.iter().map(|p| p.class).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut shuffled = classes.clone();
    let chance = (0..shuffles)
        .map(|_| {
            shuffled.shuffle(&mut rng);
            share(&shuffled, &pairs)
        })
        .sum::<f64>()
        / shuffles as f64;
    Some(NeighbourAgreement {
        same: share(&classes, &pairs),
        shuffled: chance,
        shuffles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dprime_is_the_class_mean_difference_over_the_pooled_spread() {
        // One channel; class 0 responds 1, 3 (mean 2, variance 2), class 1 responds
        // -1, 1 (mean 0, variance 2): d′ = 2 / sqrt(2) for class 0, its negative for 1.
        let mut r = ClassResponses::new(1, 3);
        let acts = Tensor::new(&[1f32, 3.0, -1.0, 1.0], &candle_core::Device::Cpu)
            .unwrap()
            .reshape((4, 1, 1, 1))
            .unwrap();
        r.add(&acts, &[0, 0, 1, 1]).unwrap();
        let d = r.dprimes();
        let expected = 2.0 / 2f64.sqrt();
        assert!((d[0][0].unwrap() - expected).abs() < 1e-12, "{d:?}");
        assert!((d[0][1].unwrap() + expected).abs() < 1e-12, "{d:?}");
        // Class 2 has no example: no d′.
        assert_eq!(d[0][2], None);
    }
    use crate::topography::{Layout, Norm, distance_matrix, positions};
    use candle_core::Device;

    /// A 2D grid of 64 channels whose response to class `k` peaks at the channels of
    /// the `k`-th vertical band: a hand-built topographic layer.
    fn banded(shuffle: bool) -> (Vec<Preference>, Vec<f64>) {
        let p = positions(Layout::Grid, 2, 64).unwrap();
        let mut order: Vec<usize> = (0..64).collect();
        if shuffle {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(3));
        }
        let classes = 4;
        let mut acc = ClassResponses::new(64, classes);
        for k in 0..classes {
            let mut values = vec![0f32; 64 * 4];
            for c in 0..64 {
                let x = p.point(order[c])[0];
                let band = ((x * classes as f64) as usize).min(classes - 1);
                let v = if band == k { 1.0 } else { 0.1 };
                values[c * 4..c * 4 + 4].fill(v);
            }
            let t = Tensor::from_vec(values, (1, 64, 2, 2), &Device::Cpu).unwrap();
            acc.add(&t, &[k as u32]).unwrap();
        }
        (
            acc.preferences().unwrap(),
            distance_matrix(&p, Norm::Euclidean),
        )
    }

    #[test]
    fn a_topographic_layer_agrees_with_its_neighbours_and_a_shuffled_one_does_not() {
        let (prefs, d) = banded(false);
        assert!(prefs.iter().all(|p| (p.selectivity - 0.75).abs() < 1e-9));
        let smooth = neighbour_agreement(&prefs, &d, 100, 0).unwrap();
        let (prefs, d) = banded(true);
        let shuffled = neighbour_agreement(&prefs, &d, 100, 0).unwrap();
        assert!(smooth.same > 0.7, "{smooth:?}");
        assert!((smooth.shuffled - 0.24).abs() < 0.08, "{smooth:?}");
        assert!(shuffled.same < 0.45, "{shuffled:?}");
        assert!(smooth.same > smooth.shuffled + 0.4);
    }

    #[test]
    fn flat_responses_have_no_selectivity_and_ties_go_to_the_lower_class() {
        let mut acc = ClassResponses::new(2, 3);
        let t = Tensor::ones((3, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        acc.add(&t, &[0, 1, 2]).unwrap();
        let p = acc.preferences().unwrap();
        assert_eq!(
            p[0],
            Preference {
                class: 0,
                selectivity: 0.0
            }
        );
    }
}
