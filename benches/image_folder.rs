//! Image-folder throughput, to set against training's: decoding a tree of photo-sized
//! JPEGs (500 x 375, resized to 256 on the shorter side) on every core, reading the
//! decoded cache back, and building training batches (random resized crop to 224, flip,
//! normalise) and evaluation batches (centre crop). Prints figures; compare them with
//! `cargo bench --bench train_step -- --model resnet18 --imagenet-stem --size 224
//! --batch 16 --mode train --steps 3`. Run with `cargo bench --bench image_folder`.

use std::time::Instant;

use candle_core::Device;
use image::{DynamicImage, ImageFormat, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use topo::config::{ImageFolderSpec, Limits};
use topo::data::image_folder::load;

const CLASSES: usize = 4;
const PER_CLASS: usize = 64;
const BATCH: usize = 64;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("photos");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut bytes = 0u64;
    for c in 0..CLASSES {
        let folder = root.join(format!("train/class{c}"));
        std::fs::create_dir_all(&folder)?;
        for i in 0..PER_CLASS {
            // Smooth gradients with noise: JPEG sizes close to photographs' (~60 KB).
            let (a, b) = (rng.random_range(0..8u32), rng.random_range(0..8u32));
            let img = RgbImage::from_fn(500, 375, |x, y| {
                let n = (x * 2654435761u32.wrapping_add(y * 40503)) >> 27;
                image::Rgb([
                    ((x * a / 4 + n) % 256) as u8,
                    ((y * b / 4 + n) % 256) as u8,
                    ((x + y + n) / 4 % 256) as u8,
                ])
            });
            let path = folder.join(format!("{i}.jpg"));
            DynamicImage::ImageRgb8(img).save_with_format(&path, ImageFormat::Jpeg)?;
            bytes += std::fs::metadata(&path)?.len();
        }
    }
    let n = CLASSES * PER_CLASS;
    let spec: ImageFolderSpec = serde_json::from_value(serde_json::json!({
        "size": 224, "resize": 256,
        "augment": ["random_resized_crop", "horizontal_flip"],
        "normalisation": "imagenet",
    }))?;
    let threads = rayon::current_num_threads();
    println!(
        "{n} JPEGs of 500 x 375 ({:.0} KB each), {threads} threads",
        bytes as f64 / n as f64 / 1e3
    );
    let cache = dir.path().join("cache");
    let t = Instant::now();
    let data = load(&root, &spec, Limits::default(), &cache)?;
    let cold = t.elapsed().as_secs_f64();
    println!(
        "decode + resize + cache, cold: {:8.0} images/s",
        n as f64 / cold
    );
    let t = Instant::now();
    load(&root, &spec, Limits::default(), &cache)?;
    let warm = t.elapsed().as_secs_f64();
    println!(
        "load from the cache:           {:8.0} images/s",
        n as f64 / warm
    );
    let train_len = data.train.len();
    let device = Device::Cpu;
    for (name, augment) in [
        ("train batch (crop, flip)", true),
        ("eval batch (centre crop)", false),
    ] {
        let mut draws = ChaCha8Rng::seed_from_u64(1);
        let rounds = 10;
        let t = Instant::now();
        for r in 0..rounds {
            let idx: Vec<usize> = (0..BATCH).map(|i| (r * BATCH + i) % train_len).collect();
            let rng = if augment { Some(&mut draws) } else { None };
            data.train.batch(&idx, rng, &device)?;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name}, 1 thread: {:8.0} images/s",
            (rounds * BATCH) as f64 / s
        );
    }
    Ok(())
}
