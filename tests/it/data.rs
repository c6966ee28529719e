//! Tests of the data sets: loaders on fixtures written by `fixtures.rs` (test code only),
//! the log-mel front end against librosa's values, and every bad input named in the brief.

use std::num::NonZeroUsize;
use std::path::Path;

use super::fixtures::{
    self, write_bird_dcase, write_cifar, write_fashion_mnist, write_speech_commands,
};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use topo::config::{DatasetKind, DatasetSpec, Limit, SplitLimits};
use topo::data::cifar::Variant;
use topo::data::frontend::{ClipLength, FrontEnd};
use topo::data::logmel::{LogMel, LogMelParams};
use topo::data::{DataError, Dataset, Split, load};

fn spec(kind: DatasetKind, root: &Path, limit: Option<usize>) -> DatasetSpec {
    DatasetSpec {
        kind,
        root: Some(root.to_path_buf()),
        limit: limit.map(|n| Limit::Each(NonZeroUsize::new(n).unwrap())),
        epochs: None,
        normalisation: None,
        image: None,
    }
}

fn all(split: &dyn Split) -> Vec<usize> {
    (0..split.len()).collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Accuracy of the nearest class mean (fitted on train) on `test`: the classes are learnable.
fn nearest_mean_accuracy(d: &Dataset) -> f64 {
    let train = d.train.batch(&all(&*d.train), None, &Device::Cpu).unwrap();
    let test = d.test.batch(&all(&*d.test), None, &Device::Cpu).unwrap();
    let dim = train.inputs.elem_count() / train.inputs.dim(0).unwrap();
    let xs = values(&train.inputs);
    // One label per input row: an example's label repeated over its windows.
    let ys: Vec<u32> = match &train.windows {
        Some(w) => train
            .labels
            .to_vec1::<u32>()
            .unwrap()
            .iter()
            .zip(w)
            .flat_map(|(&y, &n)| std::iter::repeat_n(y, n))
            .collect(),
        None => train.labels.to_vec1::<u32>().unwrap(),
    };
    let mut means = vec![vec![0f64; dim]; d.num_classes];
    let mut counts = vec![0usize; d.num_classes];
    for (i, &y) in ys.iter().enumerate() {
        counts[y as usize] += 1;
        for k in 0..dim {
            means[y as usize][k] += f64::from(xs[i * dim + k]);
        }
    }
    for (m, &c) in means.iter_mut().zip(&counts) {
        m.iter_mut().for_each(|v| *v /= c.max(1) as f64);
    }
    let (xt, yt) = (values(&test.inputs), test.labels.to_vec1::<u32>().unwrap());
    let windows = test.windows.clone().unwrap_or(vec![1; yt.len()]);
    let mut row = 0;
    let mut correct = 0;
    for (i, &y) in yt.iter().enumerate() {
        // Average distances over an example's windows, as logits would be averaged.
        let mut dist = vec![0f64; d.num_classes];
        for _ in 0..windows[i] {
            for (c, m) in means.iter().enumerate() {
                dist[c] += (0..dim)
                    .map(|k| (f64::from(xt[row * dim + k]) - m[k]).powi(2))
                    .sum::<f64>();
            }
            row += 1;
        }
        let best = (0..d.num_classes)
            .min_by(|&a, &b| dist[a].total_cmp(&dist[b]))
            .unwrap();
        correct += usize::from(best == y as usize);
    }
    correct as f64 / yt.len() as f64
}

#[test]
fn cifar10_splits_normalises_and_augments() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), Variant::Cifar10, 10, 3, 1).unwrap();
    let d = load(&spec(DatasetKind::Cifar10, dir.path(), None), dir.path()).unwrap();
    assert_eq!(
        (d.train.len(), d.validation.len(), d.test.len()),
        (90, 10, 30)
    );
    assert_eq!(
        (d.num_classes, d.in_channels, d.class_names[9].as_str()),
        (10, 3, "truck")
    );
    // Test example 0 is the first record of test_batch.bin, normalised per channel.
    let raw = std::fs::read(dir.path().join("test_batch.bin")).unwrap();
    let b = d.test.batch(&[0], None, &Device::Cpu).unwrap();
    assert_eq!(b.inputs.dims(), &[1, 3, 32, 32]);
    assert_eq!(b.labels.to_vec1::<u32>().unwrap(), vec![u32::from(raw[0])]);
    let v = values(&b.inputs);
    for (k, ch) in [(0usize, 0usize), (5, 0), (1024 + 7, 1), (2048 + 1000, 2)] {
        let (mean, std) = (
            [0.4914f32, 0.4822, 0.4465][ch],
            [0.2023f32, 0.1994, 0.2010][ch],
        );
        assert!((v[k] - (f32::from(raw[1 + k]) / 255.0 - mean) / std).abs() < 1e-5);
    }
    // Augmentation is reproducible from the rng and changes the image.
    let plain = values(&d.train.batch(&[3], None, &Device::Cpu).unwrap().inputs);
    let aug = |seed| {
        values(
            &d.train
                .batch(
                    &[3],
                    Some(&mut ChaCha8Rng::seed_from_u64(seed)),
                    &Device::Cpu,
                )
                .unwrap()
                .inputs,
        )
    };
    assert_eq!(aug(5), aug(5));
    assert!((0..8).any(|s| aug(s) != plain));
    assert!(nearest_mean_accuracy(&d) > 0.9);
}

#[test]
fn cifar_validation_is_fixed_and_limit_balanced() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), Variant::Cifar10, 10, 3, 1).unwrap();
    let labels = |d: &Dataset| {
        d.validation
            .batch(&all(&*d.validation), None, &Device::Cpu)
            .unwrap()
            .labels
            .to_vec1::<u32>()
            .unwrap()
    };
    let a = load(&spec(DatasetKind::Cifar10, dir.path(), None), dir.path()).unwrap();
    let b = load(&spec(DatasetKind::Cifar10, dir.path(), None), dir.path()).unwrap();
    assert_eq!(labels(&a), labels(&b));
    let small = load(
        &spec(DatasetKind::Cifar10, dir.path(), Some(20)),
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        (small.train.len(), small.validation.len(), small.test.len()),
        (20, 10, 20)
    );
    let mut y = small
        .train
        .batch(&all(&*small.train), None, &Device::Cpu)
        .unwrap()
        .labels
        .to_vec1::<u32>()
        .unwrap();
    y.sort_unstable();
    assert_eq!(y, (0..20).map(|i| i / 2).collect::<Vec<u32>>());

    // One limit per split; a split left out is used whole.
    let per_split = DatasetSpec {
        limit: Some(Limit::PerSplit(SplitLimits {
            train: NonZeroUsize::new(30),
            validation: None,
            test: NonZeroUsize::new(5),
        })),
        ..spec(DatasetKind::Cifar10, dir.path(), None)
    };
    let d = load(&per_split, dir.path()).unwrap();
    assert_eq!(
        (d.train.len(), d.validation.len(), d.test.len()),
        (30, a.validation.len(), 5)
    );
}

#[test]
fn cifar100_uses_fine_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), Variant::Cifar100, 2, 1, 2).unwrap();
    let d = load(&spec(DatasetKind::Cifar100, dir.path(), None), dir.path()).unwrap();
    assert_eq!(
        (d.num_classes, d.class_names.len(), d.test.len()),
        (100, 100, 100)
    );
    let raw = std::fs::read(dir.path().join("test.bin")).unwrap();
    let y = d
        .test
        .batch(&[0, 1, 57], None, &Device::Cpu)
        .unwrap()
        .labels
        .to_vec1::<u32>()
        .unwrap();
    let fine = |i: usize| u32::from(raw[i * 3074 + 1]);
    assert_eq!(y, vec![fine(0), fine(1), fine(57)]);
    assert_ne!(fine(57), u32::from(raw[57 * 3074]));
}

#[test]
fn cifar_errors_name_the_file_and_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nope");
    let e = load(&spec(DatasetKind::Cifar10, &root, None), dir.path())
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "CIFAR-10: {} is missing the folder; expected there: data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, \
             data_batch_4.bin, data_batch_5.bin, test_batch.bin. Get the data set from \
             https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (unpacks to cifar-10-batches-bin/)",
            root.display()
        )
    );
    write_cifar(dir.path(), Variant::Cifar10, 5, 1, 1).unwrap();
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let e = load(&spec(DatasetKind::Cifar10, dir.path(), None), dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is missing data_batch_4.bin;"), "{e}");
    write_cifar(dir.path(), Variant::Cifar10, 5, 1, 1).unwrap();
    let path = dir.path().join("data_batch_3.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let e = load(&spec(DatasetKind::Cifar10, dir.path(), None), dir.path())
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: {} bytes, expected a positive multiple of 3073 (records of 1 label byte(s) + 3072 pixels) \
             (truncated or not the right file?)",
            path.display(),
            bytes.len() - 5
        )
    );
}

#[test]
fn fashion_mnist_reads_gzipped_and_plain_idx() {
    for gzip in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        write_fashion_mnist(dir.path(), 10, 2, gzip).unwrap();
        let d = load(
            &spec(DatasetKind::FashionMnist, dir.path(), None),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            (
                d.train.len(),
                d.validation.len(),
                d.test.len(),
                d.in_channels
            ),
            (90, 10, 20, 1)
        );
        let b = d.test.batch(&[0, 1], None, &Device::Cpu).unwrap();
        assert_eq!(b.inputs.dims(), &[2, 1, 28, 28]);
        assert_eq!(b.labels.to_vec1::<u32>().unwrap(), vec![0, 1]);
        assert!(nearest_mean_accuracy(&d) > 0.9);
    }
}

#[test]
fn fashion_mnist_wrong_size_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_fashion_mnist(dir.path(), 2, 1, false).unwrap();
    let path = dir.path().join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let e = load(
        &spec(DatasetKind::FashionMnist, dir.path(), None),
        dir.path(),
    )
    .err()
    .unwrap()
    .to_string();
    assert_eq!(
        e,
        format!(
            "{}: 7855 bytes, expected 7856 (16 header + 7840 data for dimensions [10, 28, 28], uncompressed) \
             (truncated or not the right file?)",
            path.display()
        )
    );
}

#[test]
fn the_shipped_fashion_mnist_subset_loads_balanced() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset");
    let d = load(&spec(DatasetKind::FashionMnist, &root, None), &root).unwrap();
    assert_eq!(
        (d.train.len(), d.validation.len(), d.test.len()),
        (4500, 500, 1000)
    );
    let y = d
        .test
        .batch(&all(&*d.test), None, &Device::Cpu)
        .unwrap()
        .labels
        .to_vec1::<u32>()
        .unwrap();
    for c in 0..10 {
        assert_eq!(y.iter().filter(|&&l| l == c).count(), 100);
    }
    // Normalised with the data set's mean and std: the training mean is near 0.
    let x = values(
        &d.train
            .batch(&(0..500).collect::<Vec<_>>(), None, &Device::Cpu)
            .unwrap()
            .inputs,
    );
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
    assert!(mean.abs() < 0.1, "{mean}");
}

/// The golden signals of `tests/fixtures/data/make_logmel_golden.py`, rebuilt.
fn golden_signal(case: &str, n: usize) -> Vec<f32> {
    let mut state: u64 = 1;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0;
            let t = i as f64 / 16000.0;
            let pi = std::f64::consts::PI;
            (match case {
                "tones_noise" => {
                    0.5 * (2.0 * pi * 440.0 * t).sin()
                        + 0.25 * (2.0 * pi * 3000.0 * t + 0.3).sin()
                        + 0.1 * noise
                }
                "chirp" => 0.8 * (2.0 * pi * (100.0 * t + 3000.0 * t * t)).sin() + 0.01 * noise,
                other => panic!("unknown case {other}"),
            }) as f32
        })
        .collect()
}

#[test]
fn logmel_matches_librosa_to_a_thousandth_of_a_db() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/logmel_golden.json"),
    )
    .unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lm = LogMel::new(LogMelParams::default());
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let x = golden_signal(name, case["samples"].as_u64().unwrap() as usize);
        let f = lm.compute(&x);
        let want: Vec<Vec<f64>> = serde_json::from_value(case["logmel_db"].clone()).unwrap();
        assert_eq!((f.n_mels, f.frames), (want.len(), want[0].len()), "{name}");
        let mut worst = 0f64;
        for (m, row) in want.iter().enumerate() {
            for (t, &w) in row.iter().enumerate() {
                worst = worst.max((f64::from(f.data[m * f.frames + t]) - w).abs());
            }
        }
        eprintln!("{name}: worst difference {worst:.2e} dB");
        assert!(worst < 1e-3, "{name}: worst difference {worst} dB");
    }
}

#[test]
fn speech_commands_official_split_and_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sc");
    write_speech_commands(&root, &["yes", "no", "up"], [4, 2, 2]).unwrap();
    let cache = dir.path().join("cache");
    let d = load(&spec(DatasetKind::SpeechCommands, &root, None), &cache).unwrap();
    assert_eq!(d.class_names, vec!["no", "up", "yes"]);
    assert_eq!(
        (
            d.train.len(),
            d.validation.len(),
            d.test.len(),
            d.in_channels
        ),
        (12, 6, 6, 1)
    );
    let b = d.train.batch(&all(&*d.train), None, &Device::Cpu).unwrap();
    assert_eq!(b.inputs.dims(), &[12, 1, 64, 101]);
    assert!(b.windows.is_none());
    // Normalised as the reference does: by the mean of the training clips' means and
    // the mean of their standard deviations (n - 1). So over the normalised clips, the
    // clips' means average 0 and their standard deviations average 1.
    let x = values(&b.inputs);
    let clip = 64 * 101;
    let (mut means, mut stds) = (0.0, 0.0);
    for c in x.chunks(clip) {
        let m = c.iter().map(|&v| f64::from(v)).sum::<f64>() / clip as f64;
        let var = c.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / (clip - 1) as f64;
        means += m / 12.0;
        stds += var.sqrt() / 12.0;
    }
    assert!(
        means.abs() < 1e-4 && (stds - 1.0).abs() < 1e-4,
        "{means} {stds}"
    );
    assert!(nearest_mean_accuracy(&d) > 0.99);
    // One cache file per clip; a second load reads them and gives the same batch.
    let cached = walk(&cache.join("logmel"));
    assert_eq!(cached, 24);
    let again = load(&spec(DatasetKind::SpeechCommands, &root, None), &cache).unwrap();
    assert_eq!(
        values(&again.test.batch(&[1], None, &Device::Cpu).unwrap().inputs),
        values(&d.test.batch(&[1], None, &Device::Cpu).unwrap().inputs)
    );
    assert_eq!(walk(&cache.join("logmel")), 24);
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "f32"))
            }
        })
        .sum()
}

#[test]
fn speech_commands_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sc");
    let cache = dir.path().join("cache");
    let load_err = || {
        topo::log::chain(
            &load(&spec(DatasetKind::SpeechCommands, &root, None), &cache)
                .err()
                .unwrap(),
        )
    };
    assert!(load_err().starts_with(&format!(
        "SpeechCommands: {} is missing the folder;",
        root.display()
    )));
    write_speech_commands(&root, &["yes", "no"], [2, 1, 1]).unwrap();
    // A list naming a missing file.
    std::fs::remove_file(root.join("no/00000003_nohash_0.wav")).unwrap();
    assert_eq!(
        load_err(),
        format!(
            "{}:1: `no/00000003_nohash_0.wav` names a missing file ({})",
            root.join("testing_list.txt").display(),
            root.join("no/00000003_nohash_0.wav").display()
        )
    );
    std::fs::write(root.join("testing_list.txt"), "yes/00000003_nohash_0.wav\n").unwrap();
    // An empty class folder.
    std::fs::create_dir(root.join("zebra")).unwrap();
    assert_eq!(
        load_err(),
        format!(
            "{}: class folder holds no .wav file",
            root.join("zebra").display()
        )
    );
    std::fs::remove_dir(root.join("zebra")).unwrap();
    // A file that is not a WAV.
    let bad = root.join("yes/00000000_nohash_0.wav");
    std::fs::write(&bad, b"ID3 this is an mp3").unwrap();
    assert_eq!(
        load_err(),
        format!(
            "{}: not a WAV file (expected `RIFF....WAVE` at the start)",
            bad.display()
        )
    );
    // A clip longer than a second is truncated (with a warning) to 101 frames; a silent one is finite.
    fixtures::write_wav(&bad, 16000, &vec![0.1; 24000]).unwrap();
    fixtures::write_wav(
        &root.join("yes/00000001_nohash_0.wav"),
        16000,
        &[0.0; 16000],
    )
    .unwrap();
    let d = load(&spec(DatasetKind::SpeechCommands, &root, None), &cache).unwrap();
    let b = d.train.batch(&all(&*d.train), None, &Device::Cpu).unwrap();
    assert_eq!(b.inputs.dims(), &[d.train.len(), 1, 64, 101]);
    assert!(values(&b.inputs).iter().all(|v| v.is_finite()));
}

#[test]
fn silent_and_long_clips_in_the_front_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    fixtures::write_wav(&path, 8000, &[0.0; 4000]).unwrap();
    let front = FrontEnd::new(LogMelParams::default(), ClipLength::OneSecond, dir.path());
    let (_, f) = front.features(&path).unwrap();
    assert_eq!((f.n_mels, f.frames), (64, 101));
    assert!(f.data.iter().all(|&v| v == -100.0));
    let long = dir.path().join("long.wav");
    fixtures::write_wav(&long, 16000, &vec![0.2; 40000]).unwrap();
    assert_eq!(front.features(&long).unwrap().1.frames, 101);
    let keep = FrontEnd::new(LogMelParams::default(), ClipLength::Whole, dir.path());
    assert_eq!(keep.features(&long).unwrap().1.frames, 251);
    // Whole clips are not padded to a second (their features are, after normalisation).
    let short = dir.path().join("short.wav");
    fixtures::write_wav(&short, 16000, &vec![0.2; 8000]).unwrap();
    assert_eq!(keep.features(&short).unwrap().1.frames, 51);
}

#[test]
fn cache_key_follows_content_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let front = FrontEnd::new(LogMelParams::default(), ClipLength::OneSecond, dir.path());
    let other = FrontEnd::new(
        LogMelParams {
            n_mels: 40,
            ..LogMelParams::default()
        },
        ClipLength::OneSecond,
        dir.path(),
    );
    assert_eq!(front.key(b"abc"), front.key(b"abc"));
    assert_ne!(front.key(b"abc"), front.key(b"abd"));
    assert_ne!(front.key(b"abc"), other.key(b"abc"));
    // Same bytes under two names share one cache entry.
    let x = fixtures::tone(
        500.0,
        1.0,
        16000,
        0.5,
        0.0,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    fixtures::write_wav(&dir.path().join("a.wav"), 16000, &x).unwrap();
    std::fs::copy(dir.path().join("a.wav"), dir.path().join("b.wav")).unwrap();
    let (ka, fa) = front.features(&dir.path().join("a.wav")).unwrap();
    let (kb, fb) = front.features(&dir.path().join("b.wav")).unwrap();
    assert_eq!((ka, fa), (kb, fb));
    assert_eq!(walk(&dir.path().join("logmel")), 1);
}

#[test]
fn bird_dcase_crops_for_training_and_windows_for_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bird");
    write_bird_dcase(&root, 10, 3.0).unwrap();
    let d = load(
        &spec(DatasetKind::BirdDcase, &root, None),
        &dir.path().join("cache"),
    )
    .unwrap();
    assert_eq!(
        (
            d.train.len(),
            d.validation.len(),
            d.test.len(),
            d.num_classes
        ),
        (24, 3, 3, 2)
    );
    let b = d.test.batch(&[0, 2], None, &Device::Cpu).unwrap();
    // 3 s = 301 frames: windows of 101 frames end at 101 and 202, as the reference
    // cuts them; the incomplete tail is dropped.
    assert_eq!(b.windows, Some(vec![2, 2]));
    assert_eq!(b.inputs.dims(), &[4, 1, 64, 101]);
    assert_eq!(b.labels.dims(), &[2]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let t = d
        .train
        .batch(&[0, 1, 2], Some(&mut rng), &Device::Cpu)
        .unwrap();
    assert_eq!((t.inputs.dims(), t.windows), (&[3, 1, 64, 101][..], None));
    // Whole clips (the reference's pruning evaluation): one input of all 301 frames per
    // clip, whose first two seconds are the two windows.
    let whole = d.test.whole_clips().unwrap();
    let w = whole.batch(&[0, 2], None, &Device::Cpu).unwrap();
    assert_eq!((w.inputs.dims(), w.windows), (&[2, 1, 64, 301][..], None));
    let first_window = w.inputs.narrow(3, 0, 101).unwrap().get(0).unwrap();
    let diff = (first_window - b.inputs.get(0).unwrap()).unwrap();
    assert_eq!(super::common::max_abs(&diff), 0.0);
    assert!(d.train.whole_clips().unwrap().len() == d.train.len());
    assert!(nearest_mean_accuracy(&d) > 0.99);
    let small = load(
        &spec(DatasetKind::BirdDcase, &root, Some(4)),
        &dir.path().join("cache"),
    )
    .unwrap();
    assert_eq!(
        (small.train.len(), small.validation.len(), small.test.len()),
        (4, 3, 3)
    );
}

#[test]
fn bird_dcase_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bird");
    write_bird_dcase(&root, 4, 1.0).unwrap();
    let load_err = || match load(
        &spec(DatasetKind::BirdDcase, &root, None),
        &dir.path().join("cache"),
    ) {
        Err(e @ DataError::Missing { .. })
        | Err(e @ DataError::MissingEntry { .. })
        | Err(e @ DataError::Csv { .. }) => e.to_string(),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    };
    let csv = root.join("ff1010bird/ff1010bird_metadata_2018.csv");
    std::fs::write(
        &csv,
        "itemid,datasetid,hasbird\n200000,ff1010bird,1\n299999,ff1010bird,0\n",
    )
    .unwrap();
    assert_eq!(
        load_err(),
        format!(
            "{}:3: `299999` names a missing file ({})",
            csv.display(),
            root.join("ff1010bird/wav/299999.wav").display()
        )
    );
    std::fs::write(&csv, "itemid,datasetid,hasbird\n200000,ff1010bird,maybe\n").unwrap();
    assert_eq!(
        load_err(),
        format!(
            "{}:2: hasbird is Some(\"maybe\"), expected 0 or 1",
            csv.display()
        )
    );
    std::fs::remove_dir_all(root.join("warblrb10k")).unwrap();
    let e = load_err();
    assert!(
        e.starts_with(&format!(
            "BirdDCASE: {} is missing warblrb10k/;",
            root.display()
        )),
        "{e}"
    );
    assert!(e.contains("dcase.community"), "{e}");
}

#[test]
fn wav_writers_round_trip_through_the_reader() {
    let x = vec![0.0, 0.5, -0.5, 0.25];
    let mut buf = Vec::new();
    fixtures::write_wav_f32(&mut buf, 16000, 1, &x).unwrap();
    assert_eq!(
        topo::data::wav::read_wav(&buf[..]).unwrap(),
        topo::data::wav::Wav {
            sample_rate: 16000,
            samples: x.clone()
        }
    );
    let mut buf = Vec::new();
    fixtures::write_wav_pcm16(&mut buf, 22050, 2, &x).unwrap();
    assert_eq!(
        topo::data::wav::read_wav(&buf[..]).unwrap(),
        topo::data::wav::Wav {
            sample_rate: 22050,
            samples: vec![0.25, -0.125]
        }
    );
}

/// `topo splits`: the examples each split takes, as positions in the data set's files,
/// for another framework to train on the same ones (the PyTorch side of `just parity`).
#[test]
fn splits_names_the_examples_of_each_split() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_topo"))
            .arg("splits")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("TOPO_RESULTS_ROOT")
            .output()
            .unwrap()
    };
    let out = run(&["experiments/quickstart.yaml", "--dataset", "fmnist"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = |k: &str| -> Vec<usize> {
        json[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let (train, validation, test) = (list("train"), list("validation"), list("test"));
    // quickstart: `limit: 2000` on the shipped subset; the loader training uses.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset");
    let tmp = tempfile::tempdir().unwrap();
    let dataset = load(
        &spec(DatasetKind::FashionMnist, &root, Some(2000)),
        tmp.path(),
    )
    .unwrap();
    assert_eq!(dataset.train.source_indices(), Some(&train[..]));
    assert_eq!(dataset.validation.source_indices(), Some(&validation[..]));
    assert_eq!(dataset.test.source_indices(), Some(&test[..]));
    assert_eq!(
        (train.len(), validation.len(), test.len()),
        (2000, 500, 1000)
    );
    assert!(train.windows(2).all(|w| w[0] < w[1]), "sorted, no repeat");
    assert!(train.iter().all(|i| validation.binary_search(i).is_err()));
    assert_eq!(json["kind"], "fashion_mnist");
    assert_eq!(json["root"], "data/fashion-mnist-subset");

    // Audio is refused at once, with the reason, even where its files are absent.
    let audio = run(&["experiments/table2.yaml", "--dataset", "speech_commands"]);
    assert_eq!(audio.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&audio.stderr).contains("`topo splits` serves the image data sets"),
        "{}",
        String::from_utf8_lossy(&audio.stderr)
    );

    let bad = run(&["experiments/quickstart.yaml", "--dataset", "cifar"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("no data set `cifar` in experiments/quickstart.yaml; it names: fmnist"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
