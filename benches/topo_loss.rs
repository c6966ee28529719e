//! Forward + backward time of the topographic loss on ResNet-18's five tapped layers
//! (32x32 input, 3x3 stride-1 stem, 3x3/2 max pool kept), for the reference and the
//! fast path, at batch 32 and 128. Prints milliseconds per call; asserts nothing.
//!
//! `cargo bench --bench topo_loss`

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use topo::topography::{
    DEFAULT_EPS, LayerReduction, Layout, LossPath, Norm, Positions, TopographicLoss, positions,
};

/// (channels, height, width) of conv1, layer1.1.conv2, ..., layer4.1.conv2.
const RESNET18_TAPS: [(usize, usize, usize); 5] = [
    (64, 32, 32),
    (64, 16, 16),
    (128, 8, 8),
    (256, 4, 4),
    (512, 2, 2),
];

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let pos = RESNET18_TAPS
        .iter()
        .map(|&(c, _, _)| positions(Layout::Grid, 2, c))
        .collect::<Result<Vec<Positions>, _>>()?;
    let loss = TopographicLoss::from_positions(
        &pos,
        Norm::Euclidean,
        LayerReduction::Sum,
        DEFAULT_EPS,
        &dev,
        DType::F32,
    )?;
    println!("topographic loss, forward + backward, ms per call (CPU, f32, 2D grid)");
    println!(
        "{:>6} {:>16} {:>10} {:>10} {:>10}",
        "batch", "layer (C,H,W)", "reference", "fast", "auto"
    );
    for batch in [32, 128] {
        let taps = RESNET18_TAPS
            .iter()
            .map(|&(c, h, w)| {
                Var::from_tensor(&(Tensor::randn(0f32, 1f32, (batch, c, h, w), &dev)? + 0.5)?)
            })
            .collect::<candle_core::Result<Vec<Var>>>()?;
        let reps = if batch == 32 { 5 } else { 2 };
        let mut totals = [0.0; 3];
        for (layer, tap) in taps.iter().enumerate() {
            let single = TopographicLoss::from_positions(
                &pos[layer..=layer],
                Norm::Euclidean,
                LayerReduction::Sum,
                DEFAULT_EPS,
                &dev,
                DType::F32,
            )?;
            let mut row = [0.0; 3];
            for (k, path) in [LossPath::Reference, LossPath::Fast, LossPath::Auto]
                .into_iter()
                .enumerate()
            {
                row[k] = time_ms(
                    &single.clone().with_path(path),
                    std::slice::from_ref(tap),
                    reps,
                )?;
                totals[k] += row[k];
            }
            let (c, h, w) = RESNET18_TAPS[layer];
            let shape = format!("({c},{h},{w})");
            println!(
                "{batch:>6} {shape:>16} {:>10.2} {:>10.2} {:>10.2}",
                row[0], row[1], row[2]
            );
        }
        let all = time_ms(&loss.clone().with_path(LossPath::Auto), &taps, reps)?;
        println!(
            "{batch:>6} {:>16} {:>10.2} {:>10.2} {:>10.2}",
            "sum of layers", totals[0], totals[1], totals[2]
        );
        println!(
            "{batch:>6} {:>16} {:>10} {:>10} {:>10.2}",
            "all five, auto", "", "", all
        );
    }
    Ok(())
}

/// Mean wall time of forward + backward over `reps` calls, after one warm-up call.
fn time_ms(loss: &TopographicLoss, taps: &[Var], reps: usize) -> anyhow::Result<f64> {
    let inputs: Vec<Tensor> = taps.iter().map(|v| v.as_tensor().clone()).collect();
    let call = || -> anyhow::Result<()> {
        let out = loss.forward(&inputs)?;
        let grads = out.total.backward()?;
        // Touch a gradient so nothing is skipped.
        let _g = grads.get(&inputs[0]).map(|g| g.dims().to_vec());
        Ok(())
    };
    call()?;
    let start = Instant::now();
    for _ in 0..reps {
        call()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0 / reps as f64)
}
