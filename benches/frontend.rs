//! Audio front end throughput: decode + log-mel of 1 s 16 kHz clips, the feature cache's
//! speed-up on a second pass, and (for the "well under a second" goal) loading a
//! full-size CIFAR-10. Prints figures; run with `cargo bench --bench frontend`.

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use topo::config::{DatasetKind, DatasetSpec};
use topo::data::cifar::Variant;
// The test suite's fixture writers (kept out of the library).
#[allow(dead_code)]
#[path = "../tests/it/fixtures.rs"]
mod fixtures;
use fixtures::{tone, write_cifar, write_wav};
use topo::data::frontend::{ClipLength, FrontEnd};
use topo::data::logmel::LogMelParams;

const CLIPS: usize = 300;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let paths: Vec<PathBuf> = (0..CLIPS)
        .map(|i| {
            let path = dir.path().join(format!("clip{i}.wav"));
            write_wav(
                &path,
                16000,
                &tone(200.0 + i as f64, 1.0, 16000, 0.5, 0.1, &mut rng),
            )
            .map(|_| path)
        })
        .collect::<Result<_, _>>()?;

    let front = FrontEnd::new(
        LogMelParams::default(),
        ClipLength::OneSecond,
        &dir.path().join("cache"),
    );
    let bytes: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let t = Instant::now();
    for (p, b) in paths.iter().zip(&bytes) {
        front.compute(p, b)?;
    }
    let compute = t.elapsed().as_secs_f64();
    println!(
        "decode + log-mel, 1 thread:   {:8.0} clips/s ({:.3} ms/clip)",
        CLIPS as f64 / compute,
        1e3 * compute / CLIPS as f64
    );

    let t = Instant::now();
    for p in &paths {
        front.features(p)?;
    }
    let first = t.elapsed().as_secs_f64();
    println!(
        "first pass (read, hash, compute, write cache): {:8.0} clips/s",
        CLIPS as f64 / first
    );
    let t = Instant::now();
    for p in &paths {
        front.features(p)?;
    }
    let second = t.elapsed().as_secs_f64();
    println!(
        "second pass (read, hash, cache hit):           {:8.0} clips/s",
        CLIPS as f64 / second
    );
    println!("cache speed-up: {:.1}x", first / second);

    let cifar = dir.path().join("cifar");
    write_cifar(&cifar, Variant::Cifar10, 5000, 1000, 0)?;
    let spec = DatasetSpec {
        kind: DatasetKind::Cifar10,
        root: Some(cifar),
        limit: None,
        epochs: None,
        normalisation: None,
        image: None,
    };
    let t = Instant::now();
    let d = topo::data::load(&spec, dir.path())?;
    println!(
        "CIFAR-10 full size ({} + {} + {} images): loaded in {:.3} s",
        d.train.len(),
        d.validation.len(),
        d.test.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
