//! Seeded parameter initialisation.
//!
//! candle's CPU device draws from an unseeded thread-local generator (`Device::set_seed`
//! fails on the CPU in candle 0.11), so a `VarBuilder` over a plain `VarMap` gives
//! different weights on every run. [`seeded_var_builder`] gives a `VarBuilder` that creates
//! each missing variable in the caller's `VarMap` from a ChaCha8 stream seeded by `seed`,
//! following the init hint the model passes (the same hints torchvision uses). Variables
//! are drawn in the order the model asks for them, which is fixed by its definition, so
//! one seed gives the same weights on every machine and device. Variables already in the
//! map (say, loaded from a checkpoint) are returned as they are.

use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor, Var, bail};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sync::lock;

/// A `VarBuilder` that fills `varmap` with weights drawn from a generator seeded by `seed`.
pub fn seeded_var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend = SeededInit {
        varmap: varmap.clone(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

struct SeededInit {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SimpleBackend for SeededInit {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = lock(self.varmap.data());
        if let Some(var) = data.get(name) {
            if var.shape() != &s {
                bail!(
                    "variable `{name}` has shape {:?}, expected {:?}",
                    var.shape(),
                    s
                )
            }
            return Ok(var.as_tensor().clone());
        }
        let values = {
            let mut rng = lock(&self.rng);
            sample(h, &s, &mut rng)
        };
        let tensor = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        data.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        bail!("seeded init cannot create `{name}` without a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        lock(self.varmap.data()).contains_key(name)
    }
}

/// Draws `shape.elem_count()` values following candle's meaning of the hint.
fn sample(h: Init, shape: &Shape, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = shape.elem_count();
    match h {
        Init::Const(c) => vec![c; n],
        Init::Uniform { lo, up } => (0..n)
            .map(|_| lo + (up - lo) * rng.random::<f64>())
            .collect(),
        Init::Randn { mean, stdev } => normals(n, mean, stdev, rng),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let fan = fan.for_shape(shape);
            let std = non_linearity.gain() / (fan.max(1) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normals(n, 0.0, std, rng),
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    (0..n)
                        .map(|_| bound * (2.0 * rng.random::<f64>() - 1.0))
                        .collect()
                }
            }
        }
    }
}

/// Normal draws by the Box-Muller transform (the crate has no `rand_distr`).
fn normals(n: usize, mean: f64, stdev: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push(mean + stdev * r * theta.cos());
        out.push(mean + stdev * r * theta.sin());
    }
    out.truncate(n);
    out
}
