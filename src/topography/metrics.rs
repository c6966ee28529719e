//! How topographic a layer is, measured on its activations: the mean cosine similarity of
//! channel pairs as a function of their distance, and one score, the Pearson correlation
//! of pairwise similarity with the target `1 / (d + 1)` over all pairs `i < j`.
//! Works for any model, baselines included (their score should be near 0).

use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use super::DEFAULT_EPS;

/// Why a metric cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("activations of shape {shape:?}: expected (B, {channels}, ...)")]
    Shape { shape: Vec<usize>, channels: usize },
    #[error("no activations were added")]
    NoSamples,
    #[error("a distance matrix of {found} entries for {channels} channels (expected {expected})")]
    Distances {
        found: usize,
        channels: usize,
        expected: usize,
    },
    #[error("at least one distance bin is needed")]
    NoBins,
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// One distance bin of the similarity curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistanceBin {
    /// Centre of the bin.
    pub distance: f64,
    /// Mean similarity of the pairs in the bin; `None` when it is empty.
    pub similarity: Option<f64>,
    /// Number of channel pairs `i < j` in the bin.
    pub pairs: usize,
}

/// How topographic one layer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerTopography {
    pub channels: usize,
    /// Samples the similarity was averaged over.
    pub samples: usize,
    /// Pearson correlation of `S_ij` with `1/(d_ij+1)` over pairs `i < j`; `None` when
    /// undefined (fewer than two pairs, or a constant similarity or distance).
    pub score: Option<f64>,
    /// Least-squares slope of `S_ij` against `d_ij` over pairs `i < j` (negative when
    /// near channels are more alike); `None` when the distances do not vary.
    pub slope: Option<f64>,
    /// Mean similarity against distance, in equal-width bins from the smallest to the
    /// largest pairwise distance.
    pub bins: Vec<DistanceBin>,
}

/// Running sum of the channels' cosine similarity over samples.
#[derive(Debug, Clone)]
pub struct ChannelSimilarity {
    channels: usize,
    sum: Vec<f64>,
    samples: usize,
}

impl ChannelSimilarity {
    pub fn new(channels: usize) -> Self {
        Self {
            channels,
            sum: vec![0.0; channels * channels],
            samples: 0,
        }
    }

    /// Adds a batch of activations `(B, C, ...)`; similarity as in the loss (same clamp).
    pub fn add(&mut self, activations: &Tensor) -> Result<(), MetricsError> {
        let dims = activations.dims();
        if dims.len() < 2 || dims[1] != self.channels {
            return Err(MetricsError::Shape {
                shape: dims.to_vec(),
                channels: self.channels,
            });
        }
        let y = activations.detach().to_dtype(DType::F64)?.flatten_from(2)?;
        let q = y.sqr()?.sum_keepdim(D::Minus1)?;
        let denom = q
            .broadcast_mul(&q.transpose(1, 2)?)?
            .maximum(DEFAULT_EPS * DEFAULT_EPS)?
            .sqrt()?;
        let s = y
            .matmul(&y.transpose(1, 2)?.contiguous()?)?
            .div(&denom)?
            .sum(0)?;
        for (acc, v) in self.sum.iter_mut().zip(s.flatten_all()?.to_vec1::<f64>()?) {
            *acc += v;
        }
        self.samples += dims[0];
        Ok(())
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The mean similarity, `C x C` row-major.
    pub fn mean(&self) -> Result<Vec<f64>, MetricsError> {
        if self.samples == 0 {
            return Err(MetricsError::NoSamples);
        }
        Ok(self.sum.iter().map(|s| s / self.samples as f64).collect())
    }

    /// The layer's topography against a `C x C` distance matrix, in `bins` bins.
    pub fn topography(
        &self,
        distances: &[f64],
        bins: usize,
    ) -> Result<LayerTopography, MetricsError> {
        topography_of(&self.mean()?, distances, self.channels, bins).map(|t| LayerTopography {
            samples: self.samples,
            ..t
        })
    }
}

/// The topography of one batch of activations `(B, C, ...)`.
pub fn layer_topography(
    activations: &Tensor,
    distances: &[f64],
    bins: usize,
) -> Result<LayerTopography, MetricsError> {
    let channels = activations.dims().get(1).copied().unwrap_or(0);
    let mut acc = ChannelSimilarity::new(channels);
    acc.add(activations)?;
    acc.topography(distances, bins)
}

/// The topography from a mean similarity matrix and a distance matrix (both `C x C`);
/// `samples` of the result is 0.
pub fn topography_of(
    similarity: &[f64],
    distances: &[f64],
    channels: usize,
    bins: usize,
) -> Result<LayerTopography, MetricsError> {
    let expected = channels * channels;
    for found in [similarity.len(), distances.len()] {
        if found != expected {
            return Err(MetricsError::Distances {
                found,
                channels,
                expected,
            });
        }
    }
    if bins == 0 {
        return Err(MetricsError::NoBins);
    }
    let pairs: Vec<(f64, f64)> = (0..channels)
        .flat_map(|i| ((i + 1)..channels).map(move |j| (i, j)))
        .map(|(i, j)| (distances[i * channels + j], similarity[i * channels + j]))
        .collect();
    let score = pearson(pairs.iter().map(|&(d, s)| (1.0 / (d + 1.0), s)));
    Ok(LayerTopography {
        channels,
        samples: 0,
        score,
        slope: slope(&pairs),
        bins: binned(&pairs, bins),
    })
}

/// Mean similarity per equal-width distance bin.
fn binned(pairs: &[(f64, f64)], bins: usize) -> Vec<DistanceBin> {
    let lo = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    if pairs.is_empty() {
        return Vec::new();
    }
    let width = (hi - lo) / bins as f64;
    let mut sums = vec![(0.0, 0usize); bins];
    for &(d, s) in pairs {
        // The largest distance closes the last bin; a zero width puts all in the first.
        let k = if width > 0.0 {
            (((d - lo) / width) as usize).min(bins - 1)
        } else {
            0
        };
        sums[k].0 += s;
        sums[k].1 += 1;
    }
    sums.into_iter()
        .enumerate()
        .map(|(k, (sum, n))| DistanceBin {
            distance: lo + (k as f64 + 0.5) * width,
            similarity: (n > 0).then(|| sum / n as f64),
            pairs: n,
        })
        .collect()
}

/// Least-squares slope of `y` on `x` over `(x, y)` pairs; `None` when `x` is constant.
fn slope(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = pairs.iter().fold((0.0, 0.0), |(xy, xx), &(x, y)| {
        (xy + (x - mx) * (y - my), xx + (x - mx) * (x - mx))
    });
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Pearson correlation, `None` when undefined.
fn pearson(values: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let n = values.clone().count() as f64;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = values
        .clone()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx, syy) = values.fold((0.0, 0.0, 0.0), |(xy, xx, yy), (x, y)| {
        let (dx, dy) = (x - mx, y - my);
        (xy + dx * dy, xx + dx * dx, yy + dy * dy)
    });
    let denom = (sxx * syy).sqrt();
    (denom > 0.0 && denom.is_finite()).then(|| sxy / denom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_a_line_is_one_and_undefined_when_constant() {
        let r = pearson([(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)].into_iter()).unwrap();
        assert!((r - 1.0).abs() < 1e-12);
        assert_eq!(pearson([(1.0, 3.0), (2.0, 3.0)].into_iter()), None);
        let r = pearson([(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)].into_iter()).unwrap();
        assert!((r - 0.5).abs() < 1e-12, "{r}");
    }

    #[test]
    fn slope_of_a_line_and_of_a_constant_distance() {
        let s = slope(&[(0.0, 1.0), (1.0, 0.5), (2.0, 0.0)]).unwrap();
        assert!((s + 0.5).abs() < 1e-12);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 0.0)]), None);
    }

    #[test]
    fn bins_cover_the_distance_range() {
        let pairs = [(0.0, 1.0), (1.0, 0.5), (2.0, 0.0), (2.0, 0.2)];
        let b = binned(&pairs, 2);
        assert_eq!(
            b[0],
            DistanceBin {
                distance: 0.5,
                similarity: Some(1.0),
                pairs: 1
            }
        );
        assert_eq!(b[1].pairs, 3);
        assert!((b[1].similarity.unwrap() - 0.7 / 3.0).abs() < 1e-12);
    }
}
