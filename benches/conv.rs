//! Milliseconds per call of the 3x3 stride-1 convolutions of ResNet-18 (32x32 input,
//! stem and max pool as topo builds it) at batch 32 and 128, for im2col + gemm and for
//! Winograd F(2x2, 3x3): forward, and forward + both gradients. Prints; asserts nothing.
//!
//! `cargo bench --bench conv`

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use topo::kernels::{ConvAlgorithm, conv2d_with};

/// As in the `topo` binary.
#[global_allocator]
static ALLOC: topo::kernels::Recycler = topo::kernels::Recycler::new();

/// (channels, height, width) of layer1 .. layer4's 3x3 stride-1 convs.
const SHAPES: [(usize, usize, usize); 4] = [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)];

/// Median milliseconds of each of `fs` over `reps` rounds after one untimed one, the
/// functions taking turns within each round so that a busy spell of a shared machine
/// falls on all of them alike.
fn medians_ms<const N: usize>(
    reps: usize,
    fs: &mut [&mut dyn FnMut() -> anyhow::Result<()>; N],
) -> anyhow::Result<[f64; N]> {
    let mut times = vec![Vec::with_capacity(reps); N];
    for round in 0..=reps {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            f()?;
            if round > 0 {
                t.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(std::array::from_fn(|i| {
        times[i].sort_by(f64::total_cmp);
        times[i][reps / 2]
    }))
}

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    // `-- CHANNELS`: that layer only (for a profiler).
    let only: Option<usize> = std::env::args().skip(1).find_map(|a| a.parse().ok());
    println!("3x3 stride-1 conv, ms per call (CPU, f32)");
    println!(
        "{:>6} {:>14} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}",
        "batch",
        "layer (C,H,W)",
        "im2col fw",
        "wino fw",
        "ratio",
        "im2col f+b",
        "wino f+b",
        "ratio"
    );
    for batch in [32, 128] {
        for &(c, h, w) in SHAPES.iter().filter(|s| only.is_none_or(|c| c == s.0)) {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (batch, c, h, w), &dev)?)?;
            let k = Var::from_tensor(&Tensor::randn(0f32, 0.05, (c, c, 3, 3), &dev)?)?;
            let g = Tensor::randn(0f32, 1.0, (batch, c, h, w), &dev)?;
            let (x, k, g) = (&x, &k, &g);
            let run = |algorithm: ConvAlgorithm, backward: bool| {
                move || -> anyhow::Result<()> {
                    let y = conv2d_with(x.as_tensor(), k.as_tensor(), 1, 1, algorithm)?;
                    if backward {
                        (y * g)?.sum_all()?.backward()?;
                    }
                    Ok(())
                }
            };
            let (mut a, mut b) = (
                run(ConvAlgorithm::Im2col, false),
                run(ConvAlgorithm::Winograd, false),
            );
            let (mut cb, mut d) = (
                run(ConvAlgorithm::Im2col, true),
                run(ConvAlgorithm::Winograd, true),
            );
            let row = medians_ms(15, &mut [&mut a, &mut b, &mut cb, &mut d])?;
            println!(
                "{batch:>6} {:>14} {:>10.2} {:>10.2} {:>7.2} {:>10.2} {:>10.2} {:>7.2}",
                format!("({c},{h},{w})"),
                row[0],
                row[1],
                row[0] / row[1],
                row[2],
                row[3],
                row[2] / row[3]
            );
        }
    }
    Ok(())
}
