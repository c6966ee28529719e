//! TDANN's relative spatial correlation loss (`loss: { kind: tdann }`; Margalit et al.,
//! Neuron 2024, neuroailab/TDANN's `spatial_correlation_loss`).
//!
//! For one tapped layer: `R`, the Pearson correlation of every pair of units' responses
//! (zero-variance units correlate 0 with every other, and `R` is clamped to [-1, 1], as
//! TDANN's `corrcoef` does); `S = 1 / (d + 1)` from the units' distances; the loss is
//! `(1 - pearson(R_ij, S_ij over pairs i < j)) / 2`, in [0, 1], averaged over the
//! neighbourhoods a step draws ([`Neighbourhood`]): TDANN's square windows (the default),
//! the `k` channels nearest a centre channel, or the whole layer.
//!
//! How this adapts TDANN's sheet: TDANN gives every unit of a conv output (channel and
//! position) its own place on a cortical sheet and correlates the units' responses over
//! the images of a batch. In `topo` a channel is the unit and sits at its layout
//! position, as in every other method here; a conv channel is one detector applied at
//! every position of every image, so its responses are its values over the batch's
//! images and positions (`B * H * W` observations).
//!
//! TDANN's windows (`spatial_utils.py`, `precompute_neighborhoods` then
//! `collapse_and_trim_neighborhoods`): axis-aligned squares (cubes in 3D) of side `side`
//! whose centres are drawn uniformly so that the window lies within the layout's extent;
//! a window holds the channels inside it, bounds included. Window sizes differ, so all
//! are trimmed to one: the 5th percentile of the sizes (TDANN keeps 95% of its windows),
//! at least `min_units` (TDANN's 25), at most 500; smaller windows are dropped, larger ones
//! keep a random subset. Here a pool of 256 windows per layer is drawn once from the run's
//! seed and each step draws its neighbourhoods from the pool, as TDANN draws from its
//! precomputed set. TDANN's layers have thousands of units; a layer of the narrow models
//! this crate also trains may have no window of `min_units` channels (64 channels on an
//! 8 x 8 grid hold at most 16 in a window of side 0.5): such a layer is one neighbourhood
//! of all its channels, as `trace.json` shows. A layer whose pair correlations are all
//! equal (every channel dead) gets correlation 0 where TDANN's Pearson would divide 0 by 0.

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::method::{StepInputs, TopographicMethod};
use super::{Norm, Positions, distance_matrix};

/// Lower bound of the product of the two spreads in the pairs' Pearson correlation.
const EPS: f64 = 1e-12;

/// Why the loss cannot be built for a layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TdannError {
    #[error("layer {layer}: TDANN's loss needs at least 3 channels (2 pairs), found {channels}")]
    TooFewChannels { layer: usize, channels: usize },
    #[error("a neighbourhood needs at least 3 channels, found {0}")]
    Neighbourhood(usize),
    #[error("at least one neighbourhood per step is needed")]
    NoNeighbourhoods,
    #[error(
        "layer {layer}: every pair of channels is at the same distance, so the target has no spread to correlate with"
    )]
    FlatTarget { layer: usize },
}

/// Windows drawn per layer, from which each step draws its neighbourhoods.
const WINDOW_POOL: usize = 256;
/// TDANN's cap on a neighbourhood's units.
const WINDOW_MAX_UNITS: usize = 500;

/// Which channels each neighbourhood of a step holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Neighbourhood {
    /// Every channel of the layer, one neighbourhood (what `topo` did before windows).
    Layer,
    /// The `k` channels nearest a centre channel drawn per step (ties by index).
    Nearest(usize),
    /// TDANN's square windows of side `side` in layout units, trimmed to a common size of
    /// at least `min_units` (see the module docs).
    Window { side: f64, min_units: usize },
}

// `side` is finite and positive by construction (the configuration checks it), so equal
// values have equal bits.
impl Eq for Neighbourhood {}

impl std::hash::Hash for Neighbourhood {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Neighbourhood::Layer => {}
            Neighbourhood::Nearest(k) => k.hash(state),
            Neighbourhood::Window { side, min_units } => {
                side.to_bits().hash(state);
                min_units.hash(state);
            }
        }
    }
}

/// One layer's channels: their distances, and its pool of windows when it has one.
struct Layer {
    channels: usize,
    /// Row-major `channels x channels`.
    distances: Vec<f64>,
    /// TDANN's trimmed windows, each in channel order; `None`: the whole layer.
    windows: Option<Vec<Vec<usize>>>,
}

/// TDANN's loss on every tapped layer.
pub struct Tdann {
    layers: Vec<Layer>,
    neighbourhood: Neighbourhood,
    /// Neighbourhoods per step, averaged.
    neighbourhoods: usize,
    /// The run's stream for neighbourhood draws; each step's draw is keyed by its index.
    seed: u64,
    /// f32 taps on the CPU take the one-op kernel (`topo_kernels::tdann`).
    kernel: bool,
}

impl Tdann {
    pub fn new(
        positions: &[Positions],
        norm: Norm,
        neighbourhood: Neighbourhood,
        neighbourhoods: usize,
        seed: u64,
    ) -> Result<Tdann, TdannError> {
        match neighbourhood {
            Neighbourhood::Nearest(k) if k < 3 => return Err(TdannError::Neighbourhood(k)),
            Neighbourhood::Window { min_units, .. } if min_units < 3 => {
                return Err(TdannError::Neighbourhood(min_units));
            }
            _ => {}
        }
        if neighbourhoods == 0 {
            return Err(TdannError::NoNeighbourhoods);
        }
        let layers = positions
            .iter()
            .enumerate()
            .map(|(layer, p)| {
                if p.n() < 3 {
                    return Err(TdannError::TooFewChannels {
                        layer,
                        channels: p.n(),
                    });
                }
                let all: Vec<usize> = (0..p.n()).collect();
                let distances = distance_matrix(p, norm);
                if centred_target(&distances, p.n(), &all).1 == 0.0 {
                    return Err(TdannError::FlatTarget { layer });
                }
                let windows = match neighbourhood {
                    Neighbourhood::Window { side, min_units } => {
                        windows(p, side, min_units, seed ^ ((layer as u64 + 1) << 40))
                    }
                    Neighbourhood::Layer | Neighbourhood::Nearest(_) => None,
                };
                Ok(Layer {
                    channels: p.n(),
                    distances,
                    windows,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Tdann {
            layers,
            neighbourhood,
            neighbourhoods,
            seed,
            kernel: true,
        })
    }

    /// The same loss in candle's tensor ops only, whatever the taps' type: the reference
    /// the one-op kernel is tested against.
    pub fn in_tensor_ops(mut self) -> Tdann {
        self.kernel = false;
        self
    }

    /// The channels of each neighbourhood of `layer` at `step`, each in channel order:
    /// one neighbourhood of every channel when there is no neighbourhood size (or the
    /// layer is no larger).
    pub fn neighbourhoods(&self, layer: usize, step: u64) -> Vec<Vec<usize>> {
        let l = &self.layers[layer];
        let all: Vec<usize> = (0..l.channels).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (layer as u64) << 48,
        );
        if let Some(pool) = &l.windows {
            return (0..self.neighbourhoods)
                .map(|_| pool[rng.random_range(0..pool.len())].clone())
                .collect();
        }
        let k = match self.neighbourhood {
            Neighbourhood::Nearest(k) if k < l.channels => k,
            _ => return vec![all],
        };
        (0..self.neighbourhoods)
            .map(|_| {
                let centre = rng.random_range(0..l.channels);
                let row = &l.distances[centre * l.channels..(centre + 1) * l.channels];
                let mut order = all.clone();
                order.sort_by(|&a, &b| row[a].total_cmp(&row[b]).then(a.cmp(&b)));
                order.truncate(k);
                order.sort_unstable();
                order
            })
            .collect()
    }
}

/// TDANN's trimmed windows of `side` on `positions`, or `None` when no window holds
/// `min_units` channels (the layer is then one neighbourhood).
fn windows(
    positions: &Positions,
    side: f64,
    min_units: usize,
    seed: u64,
) -> Option<Vec<Vec<usize>>> {
    if positions.n() < min_units {
        return None;
    }
    let dim = positions.dim();
    let (lo, hi): (Vec<f64>, Vec<f64>) = (0..dim)
        .map(|a| {
            positions
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                    (lo.min(p[a]), hi.max(p[a]))
                })
        })
        .unzip();
    let half = side / 2.0;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let drawn: Vec<Vec<usize>> = (0..WINDOW_POOL)
        .map(|_| {
            // The centre keeps the window within the extent; an axis narrower than the
            // window centres it.
            let centre: Vec<f64> = (0..dim)
                .map(|a| {
                    let (from, to) = (lo[a] + half, hi[a] - half);
                    if from < to {
                        rng.random_range(from..to)
                    } else {
                        (lo[a] + hi[a]) / 2.0
                    }
                })
                .collect();
            (0..positions.n())
                .filter(|&c| {
                    let p = positions.point(c);
                    (0..dim).all(|a| p[a] >= centre[a] - half && p[a] <= centre[a] + half)
                })
                .collect()
        })
        .collect();
    let mut sizes: Vec<usize> = drawn.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    // SciPy's `scoreatpercentile` (linear interpolation), truncated as TDANN's `int(...)`.
    let at = 0.05 * (sizes.len() - 1) as f64;
    let (below, above) = (sizes[at.floor() as usize], sizes[at.ceil() as usize]);
    let p5 = (below as f64 + (above as f64 - below as f64) * at.fract()) as usize;
    let size = p5.max(min_units).min(WINDOW_MAX_UNITS);
    let kept: Vec<Vec<usize>> = drawn
        .into_iter()
        .filter(|w| w.len() >= size)
        .map(|w| {
            // A random subset of `size`, as TDANN's `np.random.choice(..., replace=False)`.
            let mut subset: Vec<usize> = rand::seq::index::sample(&mut rng, w.len(), size)
                .into_iter()
                .map(|i| w[i])
                .collect();
            subset.sort_unstable();
            subset
        })
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// `(S - mean S)` on pairs `i < j` of `units` (zero elsewhere), row-major `k x k`, and
/// its Frobenius norm.
fn centred_target(distances: &[f64], n: usize, units: &[usize]) -> (Vec<f64>, f64) {
    let k = units.len();
    let pairs = (k * (k - 1) / 2) as f64;
    let s = |i: usize, j: usize| 1.0 / (distances[units[i] * n + units[j]] + 1.0);
    let mean = (0..k)
        .flat_map(|i| ((i + 1)..k).map(move |j| (i, j)))
        .map(|(i, j)| s(i, j))
        .sum::<f64>()
        / pairs;
    let mut out = vec![0.0; k * k];
    let mut sq = 0.0;
    for i in 0..k {
        for j in (i + 1)..k {
            let v = s(i, j) - mean;
            out[i * k + j] = v;
            sq += v * v;
        }
    }
    (out, sq.sqrt())
}

/// The loss of one neighbourhood: `responses` is `(k, N)`, one row per unit.
fn neighbourhood_loss(
    responses: &Tensor,
    target: &[f64],
    target_norm: f64,
) -> candle_core::Result<Tensor> {
    let (k, _) = responses.dims2()?;
    let (device, dtype) = (responses.device(), responses.dtype());
    let centred = responses.broadcast_sub(&responses.mean_keepdim(1)?)?;
    let ss = centred.sqr()?.sum_keepdim(1)?;
    // A unit that never varies gets spread 1 (TDANN's `stddev[stddev == 0] = 1`), so its
    // correlations are 0; the mask is a constant, so the square root's slope stays finite.
    let spread = (&ss + ss.eq(0.0)?.to_dtype(dtype)?)?.sqrt()?;
    let corr = centred
        .matmul(&centred.t()?)?
        .broadcast_div(&spread)?
        .broadcast_div(&spread.t()?)?
        .clamp(-1.0, 1.0)?;
    let pairs = (k * (k - 1) / 2) as f64;
    let mask: Vec<f64> = (0..k * k)
        .map(|p| if p % k > p / k { 1.0 } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, (k, k), device)?.to_dtype(dtype)?;
    let target = Tensor::from_vec(target.to_vec(), (k, k), device)?.to_dtype(dtype)?;
    let upper = (&corr * &mask)?;
    let mean = (upper.sum_all()? / pairs)?;
    let spread_r = corr.broadcast_sub(&mean)?.mul(&mask)?.sqr()?.sum_all()?;
    let cov = (&corr * &target)?.sum_all()?;
    let denom = (spread_r.maximum(EPS)?.sqrt()? * target_norm)?;
    let r = cov.div(&denom)?;
    r.affine(-0.5, 0.5)
}

impl TopographicMethod for Tdann {
    fn layers(&self) -> usize {
        self.layers.len()
    }

    fn draws(&self, layer: usize, step: u64) -> Option<Vec<Vec<usize>>> {
        (self.neighbourhood != Neighbourhood::Layer).then(|| self.neighbourhoods(layer, step))
    }

    fn layer_losses(&self, inputs: &StepInputs<'_>) -> candle_core::Result<Vec<Tensor>> {
        inputs
            .taps
            .iter()
            .zip(&self.layers)
            .enumerate()
            .map(|(i, (tap, layer))| {
                let dims = tap.dims();
                if dims.len() < 2 || dims[1] != layer.channels {
                    candle_core::bail!(
                        "TDANN loss: tap {i} has shape {dims:?}, expected (B, {}, ...)",
                        layer.channels
                    );
                }
                let hoods = self.neighbourhoods(i, inputs.step);
                if self.kernel && tap.device().is_cpu() && tap.dtype() == DType::F32 {
                    let hoods = hoods
                        .into_iter()
                        .map(|units| {
                            let (target, target_norm) =
                                centred_target(&layer.distances, layer.channels, &units);
                            crate::kernels::tdann::Neighbourhood {
                                units,
                                target,
                                target_norm,
                            }
                        })
                        .collect();
                    return crate::kernels::tdann::tdann_loss(tap, hoods);
                }
                // (C, B * H * W): each channel's responses over the batch's images and
                // positions.
                let flat = tap.flatten_from(2)?;
                let by_channel = flat
                    .transpose(0, 1)?
                    .contiguous()?
                    .reshape((layer.channels, ()))?;
                let losses = hoods
                    .iter()
                    .map(|units| {
                        let (target, norm) =
                            centred_target(&layer.distances, layer.channels, units);
                        let responses = if units.len() == layer.channels {
                            by_channel.clone()
                        } else {
                            let idx: Vec<u32> = units.iter().map(|&u| u as u32).collect();
                            let idx = Tensor::new(idx.as_slice(), tap.device())?;
                            by_channel.index_select(&idx, 0)?
                        };
                        neighbourhood_loss(&responses, &target, norm)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::stack(&losses, 0)?.mean_all()
            })
            .collect()
    }
}
