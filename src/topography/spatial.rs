//! Is a map real? A scalar per channel (d′ for a class, orientation selectivity, a
//! preferred orientation, a preferred frequency) tested against the same values shuffled
//! over the positions:
//!
//! - the smoothness curve: the mean absolute difference of channel pairs per distance
//!   bin (circular for angles), with the null band of the shuffles (2.5th to 97.5th
//!   percentile per bin);
//! - the smoothness index `1 - d_near / d_all`: how much more alike the nearest pairs (the
//!   first non-empty bin) are than all pairs, 0 when no more alike, with the share of
//!   shuffles that reach it as its p-value;
//! - Moran's I with inverse-distance weights, its z-score against the shuffles' mean and
//!   standard deviation, and its permutation p-value. An angle enters as the unit vector at
//!   its phase, `I` then being the real part of the complex form (the vector Moran's I).
//!
//! p-values are one-sided (smoother than chance) and `(1 + #{null >= observed}) / (1 + P)`,
//! never 0.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::circular::circular_difference;
use super::{Norm, Positions, distance};

/// What a map's values are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Quantity {
    /// A value on a line.
    Linear,
    /// An angle repeating every `period` (degrees: 180 for orientations).
    Angle { period: f64 },
}

impl Quantity {
    fn difference(self, a: f64, b: f64) -> f64 {
        match self {
            Quantity::Linear => (a - b).abs(),
            Quantity::Angle { period } => circular_difference(a, b, period),
        }
    }
}

/// How a map is tested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapTest {
    pub bins: usize,
    pub permutations: usize,
    pub seed: u64,
}

/// One distance bin of a smoothness curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmoothnessBin {
    /// Centre of the bin.
    pub distance: f64,
    /// Channel pairs in the bin.
    pub pairs: usize,
    /// Mean absolute difference of the pairs' values; `None` when the bin is empty.
    pub difference: Option<f64>,
    /// The shuffles' mean, 2.5th and 97.5th percentiles.
    pub null_mean: Option<f64>,
    pub null_low: Option<f64>,
    pub null_high: Option<f64>,
}

/// A map's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapStatistics {
    /// Channels with a value (the others are left out of every statistic).
    pub channels: usize,
    pub curve: Vec<SmoothnessBin>,
    pub smoothness: f64,
    pub smoothness_p: f64,
    pub moran: f64,
    /// `(I - mean) / sd` of the shuffles' `I`; `None` when the shuffles do not vary.
    pub moran_z: Option<f64>,
    pub moran_p: f64,
    pub permutations: usize,
}

/// Channel pairs `i < j` of the defined channels: their bin and Moran weight.
struct Pairs {
    i: Vec<u32>,
    j: Vec<u32>,
    bin: Vec<u32>,
    weight: Vec<f64>,
    /// Sum of weights over ordered pairs (twice the pairs' sum).
    s0: f64,
    centres: Vec<f64>,
    counts: Vec<usize>,
}

impl Pairs {
    fn new(points: &[&[f64]], norm: Norm, bins: usize) -> Pairs {
        let n = points.len();
        let mut d = Vec::with_capacity(n * (n - 1) / 2);
        let (mut i, mut j) = (Vec::new(), Vec::new());
        for a in 0..n {
            for b in (a + 1)..n {
                d.push(distance(points[a], points[b], norm));
                i.push(a as u32);
                j.push(b as u32);
            }
        }
        let lo = d.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let width = (hi - lo) / bins as f64;
        let bin: Vec<u32> = d
            .iter()
            .map(|&x| {
                if width > 0.0 {
                    (((x - lo) / width) as usize).min(bins - 1) as u32
                } else {
                    0
                }
            })
            .collect();
        let mut counts = vec![0; bins];
        for &b in &bin {
            counts[b as usize] += 1;
        }
        // Channels at one place have no finite weight; they are left out of Moran's I.
        let weight: Vec<f64> = d
            .iter()
            .map(|&x| if x > 0.0 { 1.0 / x } else { 0.0 })
            .collect();
        Pairs {
            s0: 2.0 * weight.iter().sum::<f64>(),
            centres: (0..bins).map(|k| lo + (k as f64 + 0.5) * width).collect(),
            i,
            j,
            bin,
            weight,
            counts,
        }
    }

    /// Mean difference per bin of `values` (in the pairs' channel order).
    fn curve(&self, values: &[f64], quantity: Quantity) -> Vec<f64> {
        let mut sums = vec![0.0; self.counts.len()];
        for ((&i, &j), &b) in self.i.iter().zip(&self.j).zip(&self.bin) {
            sums[b as usize] += quantity.difference(values[i as usize], values[j as usize]);
        }
        sums.iter()
            .zip(&self.counts)
            .map(|(s, &n)| if n > 0 { s / n as f64 } else { f64::NAN })
            .collect()
    }

    /// Moran's I of `values`; `None` when they do not vary.
    fn moran(&self, values: &[f64], quantity: Quantity) -> Option<f64> {
        let n = values.len() as f64;
        // Centred components: one for a line, cosine and sine of the phase for an angle.
        let components: Vec<Vec<f64>> = match quantity {
            Quantity::Linear => vec![values.to_vec()],
            Quantity::Angle { period } => {
                let phase = |v: f64| v / period * std::f64::consts::TAU;
                vec![
                    values.iter().map(|&v| phase(v).cos()).collect(),
                    values.iter().map(|&v| phase(v).sin()).collect(),
                ]
            }
        };
        let mut cross = 0.0;
        let mut spread = 0.0;
        for c in &components {
            let mean = c.iter().sum::<f64>() / n;
            let z: Vec<f64> = c.iter().map(|v| v - mean).collect();
            spread += z.iter().map(|v| v * v).sum::<f64>();
            cross += self
                .i
                .iter()
                .zip(&self.j)
                .zip(&self.weight)
                .map(|((&i, &j), w)| w * z[i as usize] * z[j as usize])
                .sum::<f64>();
        }
        (spread > 0.0 && self.s0 > 0.0).then(|| n / self.s0 * 2.0 * cross / spread)
    }
}

/// Moran's I with inverse-distance weights of the channels with a value; `None` when
/// fewer than 3 have one, or their values do not vary.
pub fn morans_i(
    values: &[Option<f64>],
    positions: &Positions,
    norm: Norm,
    quantity: Quantity,
) -> Option<f64> {
    let (points, defined) = defined(values, positions);
    if defined.len() < 3 {
        return None;
    }
    Pairs::new(&points, norm, 1).moran(&defined, quantity)
}

fn defined<'a>(values: &[Option<f64>], positions: &'a Positions) -> (Vec<&'a [f64]>, Vec<f64>) {
    values
        .iter()
        .enumerate()
        .filter_map(|(c, v)| v.filter(|v| v.is_finite()).map(|v| (positions.point(c), v)))
        .unzip()
}

/// The statistics of a map (one value per channel, `None` where a channel has none);
/// `None` when fewer than 3 channels have a value or the values do not vary.
pub fn map_statistics(
    values: &[Option<f64>],
    positions: &Positions,
    norm: Norm,
    quantity: Quantity,
    test: MapTest,
) -> Option<MapStatistics> {
    let (points, mut v) = defined(values, positions);
    if v.len() < 3 || test.bins == 0 {
        return None;
    }
    let pairs = Pairs::new(&points, norm, test.bins);
    let all = pairs
        .i
        .iter()
        .zip(&pairs.j)
        .map(|(&i, &j)| quantity.difference(v[i as usize], v[j as usize]))
        .sum::<f64>()
        / pairs.i.len() as f64;
    let near_bin = pairs.counts.iter().position(|&n| n > 0)?;
    let smoothness = |curve: &[f64]| 1.0 - curve[near_bin] / all;
    if all.is_nan() || all <= 0.0 {
        return None;
    }
    let curve = pairs.curve(&v, quantity);
    let observed = smoothness(&curve);
    let moran = pairs.moran(&v, quantity)?;
    let mut rng = ChaCha8Rng::seed_from_u64(test.seed);
    let mut null_curves = Vec::with_capacity(test.permutations);
    let mut null_morans = Vec::with_capacity(test.permutations);
    for _ in 0..test.permutations {
        v.shuffle(&mut rng);
        null_curves.push(pairs.curve(&v, quantity));
        // The values vary, so every shuffle of them does too.
        null_morans.push(pairs.moran(&v, quantity).unwrap_or(0.0));
    }
    let p = |hits: usize| (1 + hits) as f64 / (1 + test.permutations) as f64;
    let smoothness_p = p(null_curves
        .iter()
        .filter(|c| smoothness(c) >= observed - 1e-12)
        .count());
    let moran_p = p(null_morans.iter().filter(|&&m| m >= moran - 1e-12).count());
    let moran_z = mean_sd(&null_morans).and_then(|(m, sd)| (sd > 0.0).then(|| (moran - m) / sd));
    let curve = curve
        .iter()
        .enumerate()
        .map(|(k, &d)| {
            let empty = pairs.counts[k] == 0;
            let mut null: Vec<f64> = null_curves.iter().map(|c| c[k]).collect();
            null.sort_by(f64::total_cmp);
            let band = |q: f64| (!empty).then(|| quantile(&null, q)).flatten();
            SmoothnessBin {
                distance: pairs.centres[k],
                pairs: pairs.counts[k],
                difference: (!empty).then_some(d),
                null_mean: (!empty).then(|| mean_sd(&null).map(|(m, _)| m)).flatten(),
                null_low: band(0.025),
                null_high: band(0.975),
            }
        })
        .collect();
    Some(MapStatistics {
        channels: v.len(),
        curve,
        smoothness: observed,
        smoothness_p,
        moran,
        moran_z,
        moran_p,
        permutations: test.permutations,
    })
}

/// Mean and sample standard deviation (at least 2 values).
fn mean_sd(x: &[f64]) -> Option<(f64, f64)> {
    if x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    Some((m, var.sqrt()))
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let at = q * last as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topography::{Layout, positions};

    fn grid(n: usize) -> Positions {
        positions(Layout::Grid, 2, n).expect("grid")
    }

    fn test(seed: u64) -> MapTest {
        MapTest {
            bins: 8,
            permutations: 199,
            seed,
        }
    }

    #[test]
    fn a_gradient_is_smoother_than_every_shuffle_and_its_moran_is_positive() {
        let p = grid(64);
        let values: Vec<Option<f64>> = p.iter().map(|x| Some(x[0] + 0.5 * x[1])).collect();
        let s =
            map_statistics(&values, &p, Norm::Euclidean, Quantity::Linear, test(1)).expect("stats");
        assert!(s.smoothness > 0.5, "{s:?}");
        assert!((s.smoothness_p - 1.0 / 200.0).abs() < 1e-12);
        assert!(s.moran > 0.2 && s.moran_z.expect("z") > 5.0, "{s:?}");
        assert!((s.moran_p - 1.0 / 200.0).abs() < 1e-12);
        // The curve rises with distance, above the null band near and below it far.
        let near = &s.curve[0];
        assert!(near.difference.expect("d") < near.null_low.expect("band"));
    }

    #[test]
    fn an_angle_map_wraps_so_that_0_and_179_degrees_are_neighbours() {
        let p = grid(64);
        // A smooth rotation across the layout that wraps once: linear differences would
        // see a jump of nearly 180 at the seam; circular ones see a step of a few degrees.
        let values: Vec<Option<f64>> = p.iter().map(|x| Some((x[0] * 180.0) % 180.0)).collect();
        let angle = Quantity::Angle { period: 180.0 };
        let s = map_statistics(&values, &p, Norm::Euclidean, angle, test(2)).expect("stats");
        assert!(s.smoothness_p < 0.01 && s.moran_p < 0.01, "{s:?}");
    }

    #[test]
    fn channels_without_a_value_are_left_out_and_too_few_give_none() {
        let p = grid(9);
        let mut values: Vec<Option<f64>> = (0..9).map(|k| Some(k as f64)).collect();
        values[4] = None;
        let s =
            map_statistics(&values, &p, Norm::Euclidean, Quantity::Linear, test(3)).expect("stats");
        assert_eq!(s.channels, 8);
        let few = [
            Some(1.0),
            None,
            Some(2.0),
            None,
            None,
            None,
            None,
            None,
            None,
        ];
        assert!(map_statistics(&few, &p, Norm::Euclidean, Quantity::Linear, test(3)).is_none());
        let flat = vec![Some(1.0); 9];
        assert!(map_statistics(&flat, &p, Norm::Euclidean, Quantity::Linear, test(3)).is_none());
    }

    #[test]
    fn under_the_null_p_values_are_roughly_uniform_and_z_roughly_standard_normal() {
        use rand::Rng;
        let p = grid(49);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut ps, mut zs) = (Vec::new(), Vec::new());
        for seed in 0..200 {
            let values: Vec<Option<f64>> = (0..49).map(|_| Some(rng.random::<f64>())).collect();
            let s = map_statistics(
                &values,
                &p,
                Norm::Euclidean,
                Quantity::Linear,
                MapTest {
                    bins: 6,
                    permutations: 99,
                    seed,
                },
            )
            .expect("stats");
            ps.push(s.moran_p);
            ps.push(s.smoothness_p);
            zs.push(s.moran_z.expect("z"));
        }
        let below = |q: f64| ps.iter().filter(|&&p| p <= q).count() as f64 / ps.len() as f64;
        for q in [0.1, 0.25, 0.5, 0.75] {
            assert!((below(q) - q).abs() < 0.08, "P(p <= {q}) = {}", below(q));
        }
        let (m, sd) = mean_sd(&zs).expect("z");
        assert!(
            m.abs() < 0.2 && (sd - 1.0).abs() < 0.2,
            "z: mean {m}, sd {sd}"
        );
    }
}
