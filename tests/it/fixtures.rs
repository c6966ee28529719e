//! Small synthetic data sets written in the real on-disk formats, for the tests and the
//! benches (not part of the library). Their classes can be learned: images differ by
//! colour and pattern per class, clips by tone frequency (words) or by a chirp over noise.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use topo::data::cifar::Variant;

fn create(path: &Path) -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(std::io::BufWriter::new(std::fs::File::create(path)?))
}

/// A `c x size x size` image of class `label`: a class colour, a bright bar whose row
/// depends on the class, and noise.
fn image(label: usize, channels: usize, size: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut px = Vec::with_capacity(channels * size * size);
    for ch in 0..channels {
        let base = ((label * 37 + ch * 71) % 160) as i32 + 40;
        for y in 0..size {
            for _ in 0..size {
                let bar = if y * 10 / size == label % 10 { 80 } else { 0 };
                px.push((base + bar + rng.random_range(-20..=20)).clamp(0, 255) as u8);
            }
        }
    }
    px
}

/// Writes CIFAR binary files in `dir`: `per_class` training and `test_per_class` test
/// images of each class (CIFAR-10's training images spread over its five batches).
pub fn write_cifar(
    dir: &Path,
    variant: Variant,
    per_class: usize,
    test_per_class: usize,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let classes = variant.num_classes();
    let record = |label: usize, rng: &mut ChaCha8Rng| {
        let mut r = match variant {
            Variant::Cifar10 => vec![label as u8],
            Variant::Cifar100 => vec![(label / 5) as u8, label as u8],
        };
        r.extend(image(label, 3, 32, rng));
        r
    };
    let train: Vec<Vec<u8>> = (0..per_class * classes)
        .map(|i| record(i % classes, &mut rng))
        .collect();
    let test: Vec<Vec<u8>> = (0..test_per_class * classes)
        .map(|i| record(i % classes, &mut rng))
        .collect();
    let files: Vec<(String, Vec<&Vec<u8>>)> = match variant {
        Variant::Cifar10 => (0..5)
            .map(|b| {
                (
                    format!("data_batch_{}.bin", b + 1),
                    train.iter().skip(b).step_by(5).collect(),
                )
            })
            .chain([("test_batch.bin".to_string(), test.iter().collect())])
            .collect(),
        Variant::Cifar100 => vec![
            ("train.bin".into(), train.iter().collect()),
            ("test.bin".into(), test.iter().collect()),
        ],
    };
    for (name, records) in files {
        let mut f = create(&dir.join(name))?;
        for r in records {
            f.write_all(r)?;
        }
        f.flush()?;
    }
    Ok(())
}

/// Writes Fashion-MNIST IDX files (gzipped when `gzip`) of synthetic 28x28 images.
pub fn write_fashion_mnist(
    dir: &Path,
    per_class: usize,
    test_per_class: usize,
    gzip: bool,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (prefix, n) in [("train", per_class * 10), ("t10k", test_per_class * 10)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let pixels: Vec<u8> = labels
            .iter()
            .flat_map(|&l| image(usize::from(l), 1, 28, &mut rng))
            .collect();
        write_idx(
            dir,
            &format!("{prefix}-images-idx3-ubyte"),
            &[n, 28, 28],
            &pixels,
            gzip,
        )?;
        write_idx(
            dir,
            &format!("{prefix}-labels-idx1-ubyte"),
            &[n],
            &labels,
            gzip,
        )?;
    }
    Ok(())
}

/// Writes an unsigned-byte IDX file (`name` or `name.gz`).
pub fn write_idx(
    dir: &Path,
    name: &str,
    dims: &[usize],
    data: &[u8],
    gzip: bool,
) -> std::io::Result<()> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(data);
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(
            create(&dir.join(format!("{name}.gz")))?,
            flate2::Compression::fast(),
        );
        gz.write_all(&bytes)?;
        gz.finish()?.flush()
    } else {
        let mut f = create(&dir.join(name))?;
        f.write_all(&bytes)?;
        f.flush()
    }
}

/// A sine of `freq` Hz and amplitude `amp` plus white noise of amplitude `noise`.
pub fn tone(
    freq: f64,
    seconds: f64,
    rate: u32,
    amp: f64,
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let n = (seconds * f64::from(rate)).round() as usize;
    let phase = rng.random_range(0.0..std::f64::consts::TAU);
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (amp * (std::f64::consts::TAU * freq * t + phase).sin()
                + noise * rng.random_range(-1.0..1.0)) as f32
        })
        .collect()
}

/// Writes a mono 16-bit WAV.
pub fn write_wav(path: &Path, rate: u32, samples: &[f32]) -> std::io::Result<()> {
    let mut f = create(path)?;
    write_wav_pcm16(&mut f, rate, 1, samples)?;
    f.flush()
}

/// Writes a SpeechCommands tree: per word, `train + validation + test` 1 s 16 kHz clips
/// of a tone whose frequency names the word, the two split lists, and a
/// `_background_noise_` folder (not a class). Returns the class folders in label order.
pub fn write_speech_commands(
    dir: &Path,
    words: &[&str],
    counts: [usize; 3],
) -> std::io::Result<Vec<PathBuf>> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut sorted: Vec<&str> = words.to_vec();
    sorted.sort_unstable();
    let (mut val, mut test) = (String::new(), String::new());
    for (w, word) in sorted.iter().enumerate() {
        let freq = 300.0 * (w + 1) as f64;
        for k in 0..counts.iter().sum::<usize>() {
            let name = format!("{k:08x}_nohash_0.wav");
            // Slightly shorter than a second, as many real clips are.
            write_wav(
                &dir.join(word).join(&name),
                16000,
                &tone(freq, 0.9, 16000, 0.5, 0.05, &mut rng),
            )?;
            if k >= counts[0] + counts[1] {
                test.push_str(&format!("{word}/{name}\n"));
            } else if k >= counts[0] {
                val.push_str(&format!("{word}/{name}\n"));
            }
        }
    }
    write_wav(
        &dir.join("_background_noise_").join("white_noise.wav"),
        16000,
        &tone(0.0, 2.0, 16000, 0.0, 0.3, &mut rng),
    )?;
    std::fs::write(dir.join("validation_list.txt"), val)?;
    std::fs::write(dir.join("testing_list.txt"), test)?;
    Ok(sorted.iter().map(|w| dir.join(w)).collect())
}

/// Writes a BirdDCASE tree: the three development sets with `per_set` clips of
/// `seconds` each, half with a bird (a 4 kHz whistle over noise) and half noise only.
/// The first set uses `labels.csv` and 16 kHz; the others the challenge's file names,
/// a `wav/` folder, 22.05 kHz 16-bit and 32-bit float 44.1 kHz.
pub fn write_bird_dcase(dir: &Path, per_set: usize, seconds: f64) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let sets = [
        ("BirdVox-DCASE-20k", "labels.csv", "", 16000),
        (
            "warblrb10k",
            "warblrb10k_public_metadata_2018.csv",
            "wav",
            22050,
        ),
        ("ff1010bird", "ff1010bird_metadata_2018.csv", "wav", 44100),
    ];
    for (s, (set, csv_name, sub, rate)) in sets.into_iter().enumerate() {
        let mut csv = String::from("itemid,datasetid,hasbird\n");
        for k in 0..per_set {
            // Sets alternate which clips have birds, so that each split holds both.
            let bird = (k + s) % 2;
            let id = format!("{s}{k:05}");
            let x = if bird == 1 {
                tone(4000.0, seconds, rate, 0.3, 0.05, &mut rng)
            } else {
                tone(0.0, seconds, rate, 0.0, 0.05, &mut rng)
            };
            let path = dir.join(set).join(sub).join(format!("{id}.wav"));
            if s == 2 {
                let mut f = create(&path)?;
                write_wav_f32(&mut f, rate, 1, &x)?;
                f.flush()?;
            } else {
                write_wav(&path, rate, &x)?;
            }
            csv.push_str(&format!("{id},{set},{bird}\n"));
        }
        std::fs::write(dir.join(set).join(csv_name), csv)?;
    }
    Ok(())
}

// WAV writers: 16-bit PCM (format tag 1) and 32-bit float (tag 3).

/// Writes mono or interleaved samples as 16-bit PCM (clipped to [-1, 1)).
pub fn write_wav_pcm16(
    mut w: impl Write,
    sample_rate: u32,
    channels: u16,
    samples: &[f32],
) -> std::io::Result<()> {
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|&x| {
            ((x.clamp(-1.0, 1.0) * 32768.0)
                .round()
                .clamp(-32768.0, 32767.0) as i16)
                .to_le_bytes()
        })
        .collect();
    write_header(&mut w, 1, sample_rate, channels, 16, data.len())?;
    w.write_all(&data)
}

/// Writes mono or interleaved samples as 32-bit IEEE float.
pub fn write_wav_f32(
    mut w: impl Write,
    sample_rate: u32,
    channels: u16,
    samples: &[f32],
) -> std::io::Result<()> {
    let data: Vec<u8> = samples.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_header(&mut w, 3, sample_rate, channels, 32, data.len())?;
    w.write_all(&data)
}

fn write_header(
    w: &mut impl Write,
    tag: u16,
    rate: u32,
    channels: u16,
    bits: u16,
    data_len: usize,
) -> std::io::Result<()> {
    let align = channels * bits / 8;
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    h.extend_from_slice(&align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&(data_len as u32).to_le_bytes());
    w.write_all(&h)
}
