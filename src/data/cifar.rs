//! CIFAR-10 and CIFAR-100, binary version: fixed-size records of label byte(s) followed
//! by the R, G and B planes of a 32x32 image. Whole files are read at once.

use std::path::Path;
use std::sync::Arc;

use crate::config::Limits;
use crate::data::image::{Augment, ImageSplit, ImageStore, Normalize};
use crate::data::{DataError, Dataset, subset};

const PIXELS: usize = 3 * 32 * 32;
/// The normalisation of the reference.
pub const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const STD: [f32; 3] = [0.2023, 0.1994, 0.2010];

/// Which of the two binary layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "CIFAR-10",
            Variant::Cifar100 => "CIFAR-100",
        }
    }

    /// Label bytes before the pixels: CIFAR-100 stores (coarse, fine).
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    pub fn num_classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }

    fn files(self) -> (&'static [&'static str], &'static str) {
        match self {
            Variant::Cifar10 => (
                &[
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "test_batch.bin",
            ),
            Variant::Cifar100 => (&["train.bin"], "test.bin"),
        }
    }

    fn source(self) -> &'static str {
        match self {
            Variant::Cifar10 => {
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (unpacks to cifar-10-batches-bin/)"
            }
            Variant::Cifar100 => {
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz (unpacks to cifar-100-binary/)"
            }
        }
    }

    fn names_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "batches.meta.txt",
            Variant::Cifar100 => "fine_label_names.txt",
        }
    }
}

/// Parses the records of one binary file into `store`.
pub fn parse_records(
    variant: Variant,
    path: &Path,
    bytes: &[u8],
    store: &mut ImageStore,
) -> Result<(), DataError> {
    let record = variant.label_bytes() + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::Size {
            path: path.to_path_buf(),
            expected: format!(
                "a positive multiple of {record} (records of {} label byte(s) + {PIXELS} pixels)",
                variant.label_bytes()
            ),
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / record;
    store.pixels.reserve(n * PIXELS);
    store.labels.reserve(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[variant.label_bytes() - 1];
        if usize::from(label) >= variant.num_classes() {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                what: format!(
                    "record {i} has label {label}, expected < {}",
                    variant.num_classes()
                ),
            });
        }
        store.labels.push(u32::from(label));
        store
            .pixels
            .extend_from_slice(&rec[variant.label_bytes()..]);
    }
    Ok(())
}

fn read_files(variant: Variant, root: &Path, files: &[&str]) -> Result<ImageStore, DataError> {
    let mut store = ImageStore {
        channels: 3,
        height: 32,
        width: 32,
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    for f in files {
        let path = root.join(f);
        let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
        parse_records(variant, &path, &bytes, &mut store)?;
    }
    Ok(store)
}

fn class_names(variant: Variant, root: &Path) -> Result<Vec<String>, DataError> {
    let path = root.join(variant.names_file());
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if names.len() == variant.num_classes() {
            return Ok(names);
        }
        crate::log::log(&format!(
            "warning: {}: {} names, expected {}; using the built-in names",
            path.display(),
            names.len(),
            variant.num_classes()
        ));
    }
    Ok(match variant {
        Variant::Cifar10 => CIFAR10_NAMES.iter().map(|s| s.to_string()).collect(),
        Variant::Cifar100 => CIFAR100_NAMES.iter().map(|s| s.to_string()).collect(),
    })
}

/// Loads a CIFAR data set from `root`; validation is 5000 training images of the fixed permutation.
pub fn load(variant: Variant, root: &Path, limits: Limits) -> Result<Dataset, DataError> {
    let (train_files, test_file) = variant.files();
    let all: Vec<&str> = train_files.iter().copied().chain([test_file]).collect();
    let missing: Vec<&str> = all
        .iter()
        .copied()
        .filter(|f| !root.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Missing {
            dataset: variant.name(),
            root: root.to_path_buf(),
            missing: if root.is_dir() {
                missing.join(", ")
            } else {
                "the folder".into()
            },
            expected: all.join(", "),
            source_hint: variant.source(),
        });
    }
    let train_store = Arc::new(read_files(variant, root, train_files)?);
    let test_store = Arc::new(read_files(variant, root, &[test_file])?);
    // A tenth of training: exactly the reference's 5000 of 50000 on the full set.
    let held = train_store.len() / 10;
    let (train_idx, val_idx) = subset::hold_out(train_store.len(), held);
    let norm = Normalize {
        mean: MEAN.to_vec(),
        std: STD.to_vec(),
    };
    let pick = |store: &ImageStore, idx: Vec<usize>, limit: Option<usize>| {
        subset::limit_balanced(&idx, |&i| store.labels[i], limit)
    };
    let train = ImageSplit::new(
        train_store.clone(),
        pick(&train_store, train_idx, limits.train),
        norm.clone(),
        Augment::CropFlip { pad: 4 },
    );
    let validation = ImageSplit::new(
        train_store.clone(),
        pick(&train_store, val_idx, limits.validation),
        norm.clone(),
        Augment::None,
    );
    let test_all: Vec<usize> = (0..test_store.len()).collect();
    let test = ImageSplit::new(
        test_store.clone(),
        pick(&test_store, test_all, limits.test),
        norm,
        Augment::None,
    );
    Ok(Dataset {
        train: Box::new(train),
        validation: Box::new(validation),
        test: Box::new(test),
        num_classes: variant.num_classes(),
        in_channels: 3,
        class_names: class_names(variant, root)?,
    })
}

const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const CIFAR100_NAMES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];
