//! Zeroing the chosen output channels of a model's convs in place.

use candle_core::Tensor;
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::PruneMethod;
use crate::train::prune::select::{scores_of, select_channels};
use crate::train::prune::{PruneError, Result};

/// Channels zeroed by one pruning, over all layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneCount {
    pub pruned: usize,
    pub total: usize,
    /// Each conv's zeroed channels, in the order the convs were given, each increasing.
    pub channels: Vec<Vec<usize>>,
}

/// Zeroes, in every conv `{prefix}.weight` (and `{prefix}.bias` when the conv has one),
/// the output channels [`select_channels`] picks at `proportion`. Layers are pruned
/// independently, each by its own proportion; `Random` draws from one generator seeded
/// by `seed`, layer after layer in the order given.
pub fn prune_varmap(
    varmap: &VarMap,
    conv_prefixes: &[String],
    proportion: f64,
    method: PruneMethod,
    seed: u64,
) -> Result<PruneCount> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vars = crate::sync::lock(varmap.data());
    let mut count = PruneCount {
        pruned: 0,
        total: 0,
        channels: Vec::with_capacity(conv_prefixes.len()),
    };
    for prefix in conv_prefixes {
        let name = format!("{prefix}.weight");
        let weight = vars
            .get(&name)
            .ok_or_else(|| PruneError::MissingParameter { name: name.clone() })?;
        let scores = scores_of(&name, weight.as_tensor(), method)?;
        let chosen = select_channels(&scores, proportion, method, &mut rng);
        count.total += scores.len();
        count.pruned += chosen.len();
        count.channels.push(chosen.clone());
        if chosen.is_empty() {
            continue;
        }
        let mut keep = vec![1f32; scores.len()];
        for &c in &chosen {
            keep[c] = 0.0;
        }
        zero_channels(&name, weight, &keep)?;
        let bias_name = format!("{prefix}.bias");
        if let Some(bias) = vars.get(&bias_name) {
            if bias.dims() != [scores.len()] {
                let shape = bias.dims().to_vec();
                return Err(PruneError::BiasShape {
                    name: bias_name,
                    shape,
                    channels: scores.len(),
                });
            }
            zero_channels(&bias_name, bias, &keep)?;
        }
    }
    Ok(count)
}

/// Multiplies the var by `keep` along its first dimension.
fn zero_channels(name: &str, var: &candle_core::Var, keep: &[f32]) -> Result<()> {
    let t = var.as_tensor();
    let mut mask_shape = vec![1usize; t.rank()];
    mask_shape[0] = keep.len();
    let masked = Tensor::from_slice(keep, mask_shape, t.device())
        .and_then(|m| m.to_dtype(t.dtype()))
        .and_then(|m| t.broadcast_mul(&m))
        .and_then(|m| var.set(&m));
    masked.map_err(|source| PruneError::Tensor {
        name: name.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    /// A conv of 10 output channels whose channel c has all weights equal to `norm_c`
    /// (2 inputs x 1 x 2 kernel = 4 weights) and bias c + 1.
    fn model(norms: &[f32]) -> VarMap {
        let mut vm = VarMap::new();
        let w: Vec<f32> = norms.iter().flat_map(|&n| [n, -n, n, n]).collect();
        let c = norms.len();
        vm.get(
            (c, 2, 1, 2),
            "conv.weight",
            candle_nn::Init::Const(0.),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        vm.get(
            c,
            "conv.bias",
            candle_nn::Init::Const(0.),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        vm.set_one(
            "conv.weight",
            Tensor::from_vec(w, (c, 2, 1, 2), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let b: Vec<f32> = (0..c).map(|i| i as f32 + 1.0).collect();
        vm.set_one("conv.bias", Tensor::from_vec(b, c, &Device::Cpu).unwrap())
            .unwrap();
        vm
    }

    fn zeroed_channels(vm: &VarMap) -> (Vec<usize>, Vec<usize>) {
        let vars = vm.data().lock().unwrap();
        let w = vars["conv.weight"]
            .as_tensor()
            .abs()
            .unwrap()
            .sum((1, 2, 3))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = vars["conv.bias"].as_tensor().to_vec1::<f32>().unwrap();
        let zeros = |v: &[f32]| {
            v.iter()
                .enumerate()
                .filter(|(_, x)| **x == 0.0)
                .map(|(i, _)| i)
                .collect()
        };
        (zeros(&w), zeros(&b))
    }

    #[test]
    fn zeroes_round_p_c_lowest_norm_channels_at_every_proportion() {
        // Distinct norms in a scrambled order; ranking by hand: 4 < 8 < 1 < 6 < 0 < 9 < 3 < 7 < 2 < 5.
        let norms = [0.5f32, 0.3, 0.9, 0.7, 0.05, 1.0, 0.4, 0.8, 0.1, 0.6];
        let ranking = [4usize, 8, 1, 6, 0, 9, 3, 7, 2, 5];
        for step in 0..=20 {
            let p = step as f64 / 20.0;
            let expected_n = (p * 10.0).round_ties_even() as usize;
            let mut expected: Vec<usize> = ranking[..expected_n].to_vec();
            expected.sort();
            for method in [PruneMethod::L2, PruneMethod::L1] {
                let vm = model(&norms);
                let count = prune_varmap(&vm, &["conv".to_string()], p, method, 0).unwrap();
                assert_eq!(
                    count,
                    PruneCount {
                        pruned: expected_n,
                        total: 10,
                        channels: vec![expected.clone()],
                    },
                    "p = {p}"
                );
                let (w, b) = zeroed_channels(&vm);
                assert_eq!(w, expected, "weights at p = {p}, {method:?}");
                assert_eq!(b, expected, "bias at p = {p}, {method:?}");
            }
        }
    }

    #[test]
    fn kept_channels_are_untouched() {
        let vm = model(&[0.5, 0.25, 2.0]);
        prune_varmap(&vm, &["conv".to_string()], 0.34, PruneMethod::L2, 0).unwrap();
        let vars = vm.data().lock().unwrap();
        let w = vars["conv.weight"]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            w,
            vec![0.5, -0.5, 0.5, 0.5, 0., 0., 0., 0., 2.0, -2.0, 2.0, 2.0]
        );
    }

    #[test]
    fn random_is_reproducible_by_seed() {
        let norms = [1f32; 16];
        let run = |seed| {
            let vm = model(&norms);
            prune_varmap(&vm, &["conv".to_string()], 0.5, PruneMethod::Random, seed).unwrap();
            zeroed_channels(&vm).0
        };
        assert_eq!(run(3).len(), 8);
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn a_missing_conv_is_named() {
        let vm = model(&[1.0]);
        let err = prune_varmap(
            &vm,
            &["layer1.0.conv1".to_string()],
            0.5,
            PruneMethod::L2,
            0,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot prune `layer1.0.conv1.weight`: no such parameter in the model"
        );
    }
}
