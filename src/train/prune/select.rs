//! Which channels to prune: scores per output channel, then the lowest ones.

use candle_core::{DType, Tensor};
use rand_chacha::ChaCha8Rng;

use crate::config::PruneMethod;
use crate::train::prune::{PruneError, Result};

/// The score of each output channel of a conv weight `(C_out, C_in, kh, kw)` (any
/// rank of at least 1): the L2 or L1 norm of the channel's weights. `Random` ranks
/// nothing, so its scores are all 0.
pub fn channel_scores(weight: &Tensor, method: PruneMethod) -> Result<Vec<f64>> {
    scores_of("weight", weight, method)
}

pub(super) fn scores_of(name: &str, weight: &Tensor, method: PruneMethod) -> Result<Vec<f64>> {
    let dims = weight.dims();
    let channels = match dims.first() {
        Some(&c) if c > 0 => c,
        _ => {
            return Err(PruneError::Shape {
                name: name.to_string(),
                shape: dims.to_vec(),
            });
        }
    };
    let tensor_err = |source| PruneError::Tensor {
        name: name.to_string(),
        source,
    };
    // f64 so that the ranking does not depend on summation rounding in f32/f16.
    let rows = || weight.to_dtype(DType::F64)?.reshape((channels, ()));
    let norms = match method {
        PruneMethod::Random => return Ok(vec![0.0; channels]),
        PruneMethod::L2 => rows().and_then(|r| r.sqr()?.sum(1)?.sqrt()),
        PruneMethod::L1 => rows().and_then(|r| r.abs()?.sum(1)),
    };
    norms.and_then(|n| n.to_vec1::<f64>()).map_err(tensor_err)
}

/// How many of `channels` channels a proportion prunes: `round(p * C)` with ties to
/// even, as Python's `round` in torch's pruning; `p` is clamped to [0, 1] (NaN gives 0).
pub fn channels_to_prune(channels: usize, proportion: f64) -> usize {
    let p = if proportion.is_nan() {
        0.0
    } else {
        proportion.clamp(0.0, 1.0)
    };
    let n = (p * channels as f64).round_ties_even();
    (n as usize).min(channels)
}

/// The channels to zero, in increasing index order: the `round(p * C)` lowest scores
/// (ties broken by the lower index), or as many drawn uniformly from `rng` for `Random`.
pub fn select_channels(
    scores: &[f64],
    proportion: f64,
    method: PruneMethod,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let count = channels_to_prune(scores.len(), proportion);
    let mut chosen = match method {
        PruneMethod::Random => rand::seq::index::sample(rng, scores.len(), count).into_vec(),
        PruneMethod::L1 | PruneMethod::L2 => {
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
            order.truncate(count);
            order
        }
    };
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn norms_are_taken_over_each_output_channel() {
        // Channel 0: (3, 4) -> L2 5, L1 7; channel 1: (-1, 0) -> 1, 1.
        let w = Tensor::from_vec(vec![3f32, -4., -1., 0.], (2, 2, 1, 1), &Device::Cpu).unwrap();
        assert_eq!(channel_scores(&w, PruneMethod::L2).unwrap(), vec![5.0, 1.0]);
        assert_eq!(channel_scores(&w, PruneMethod::L1).unwrap(), vec![7.0, 1.0]);
        assert_eq!(
            channel_scores(&w, PruneMethod::Random).unwrap(),
            vec![0.0, 0.0]
        );
    }

    #[test]
    fn an_empty_weight_is_an_error_not_a_panic() {
        let w = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        let err = channel_scores(&w, PruneMethod::L2).unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot prune `weight`: expected (out_channels, ...) with at least one channel, got shape [0, 3]"
        );
    }

    #[test]
    fn rounding_is_half_to_even_like_python() {
        assert_eq!(channels_to_prune(10, 0.25), 2); // 2.5 -> 2
        assert_eq!(channels_to_prune(10, 0.35), 4); // 3.5 -> 4
        assert_eq!(channels_to_prune(64, 0.62), 40); // 39.68
        assert_eq!(channels_to_prune(3, 1.0), 3);
        assert_eq!(channels_to_prune(3, 1.5), 3);
        assert_eq!(channels_to_prune(3, -0.1), 0);
        assert_eq!(channels_to_prune(3, f64::NAN), 0);
    }

    #[test]
    fn lowest_scores_first_ties_by_index() {
        let rng = ChaCha8Rng::seed_from_u64(0);
        let scores = [0.5, 0.1, 0.5, 0.3, 0.5];
        let pick = |p| select_channels(&scores, p, PruneMethod::L2, &mut rng.clone());
        assert_eq!(pick(0.0), Vec::<usize>::new());
        assert_eq!(pick(0.2), vec![1]);
        assert_eq!(pick(0.4), vec![1, 3]);
        assert_eq!(pick(0.6), vec![0, 1, 3]);
        assert_eq!(pick(0.8), vec![0, 1, 2, 3]);
        assert_eq!(pick(1.0), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn random_is_seeded_and_has_the_right_count() {
        let scores = [0.0; 20];
        let draw = |seed| {
            select_channels(
                &scores,
                0.3,
                PruneMethod::Random,
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
        };
        let a = draw(7);
        assert_eq!(a.len(), 6);
        assert_eq!(a, draw(7));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(a, draw(8));
    }
}
